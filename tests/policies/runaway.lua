-- Test policy: schedule() never returns, in interpreted code (jit.off), so the
-- watchdog's soft limit can interrupt it. With RUNAWAY_AFTER=N in the environment the
-- first N calls decide every task normally (so the state is past its warm-up calls,
-- which have the slow limits) and the ones after run away.
local g = require "gthulhu.sched"
local after = tonumber(os.getenv("RUNAWAY_AFTER") or "") or 0
local calls = 0
local function spin()
	local x = 0
	while true do x = x + 1 end
end
jit.off(spin)
return { schedule = function(tasks, n, out)
	calls = calls + 1
	if calls > after then spin() end
	for i = 0, n - 1 do
		local o = out[i]
		o.pid = tasks[i].pid
		o.cpu = g.CPU_ANY
		o.slice_ns = 0
		o.vtime = 10
		o.flags = 0
	end
	return n
end }
