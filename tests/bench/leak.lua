-- leak.lua: the hygiene suite's negative control (tests/bench/hygiene.sh). Decides like
-- tests/transport/echo.lua, and keeps one small table per batch forever: the leak the
-- bridge's Lua live-heap check must report.
local P = {}
local ncpu = 1
local kept = {}

function P.init(ctx) ncpu = ctx.nr_cpus end

function P.schedule(tasks, n, out)
	for i = 0, n - 1 do
		local t, o = tasks[i], out[i]
		o.pid = t.pid
		o.cpu = t.pid % ncpu
		o.slice_ns = 1000 + t.pid
		o.vtime = t.weight * 1000 + t.pid
		o.flags = 0
	end
	kept[#kept + 1] = { n }
	return n
end

return P
