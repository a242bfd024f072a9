-- Test policy: remembers every pid it has decided. slice_ns = 1 ms for a pid new to the
-- state, 2 ms for one it decided before (test_pol: the self-test's synthetic tasks, pids
-- 1000..1063, must not be remembered by a state that then schedules real tasks).
local g = require "gthulhu.sched"
local P = {}
local seen = {}

function P.schedule(tasks, n, out)
	for i = 0, n - 1 do
		local t, o = tasks[i], out[i]
		local pid = t.pid
		o.pid = pid
		o.cpu = g.CPU_ANY
		o.slice_ns = seen[pid] and 2e6 or 1e6
		o.vtime = 1
		o.flags = 0
		o.enq_cnt = t.enq_cnt
		seen[pid] = true
	end
	return n
end

return P
