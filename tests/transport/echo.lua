-- echo.lua: a transport-test policy whose decisions are a pure function of each task, so
-- the test can check that every value the policy wrote reached the BPF side intact.
local P = {}
local ncpu = 1

function P.init(ctx) ncpu = ctx.nr_cpus end

function P.schedule(tasks, n, out)
	for i = 0, n - 1 do
		local t, o = tasks[i], out[i]
		o.pid = t.pid
		o.cpu = t.pid % ncpu
		o.slice_ns = 1000 + t.pid
		o.vtime = t.weight * 1000 + t.pid
		o.flags = t.enq_cnt % 7
	end
	return n
end

return P
