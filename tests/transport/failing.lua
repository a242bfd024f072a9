-- failing.lua: decides like echo.lua, but raises an error on every second batch, so the
-- transport test can check that a failing policy loses and duplicates no task.
local P = {}
local calls = 0

function P.init(ctx) end

function P.schedule(tasks, n, out)
	calls = calls + 1
	if calls % 2 == 0 then
		error("failing.lua: planned failure on batch " .. calls)
	end
	for i = 0, n - 1 do
		local t, o = tasks[i], out[i]
		o.pid = t.pid
		o.cpu = 0
		o.slice_ns = 0
		o.vtime = t.enq_cnt + 1
		o.flags = 0
	end
	return n
end

return P
