-- Test policy: schedule() never returns, in interpreted code (jit.off), so the
-- watchdog's soft limit can interrupt it.
local function spin()
	local x = 0
	while true do x = x + 1 end
end
jit.off(spin)
return { schedule = function(tasks, n, out) spin() return n end }
