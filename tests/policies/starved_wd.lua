-- Test policy for tests/test_watchdog.c: when the test arms it (test_wd_armed() true),
-- schedule() lets the watchdog thread run again (test_wd_release(): the test held its lock
-- while the scheduling thread used CPU outside any call, as a watchdog starved of CPU
-- would see it), then blocks 60 ms without using CPU, then decides every task.
local ffi = require "ffi"
local g = require "gthulhu.sched"
pcall(ffi.cdef, [[
int usleep(unsigned int usec);
int test_wd_armed(void);
void test_wd_release(void);
]])
local C = ffi.C
local P = {}

function P.schedule(tasks, n, out)
	if C.test_wd_armed() ~= 0 then
		C.test_wd_release()
		C.usleep(60000)
	end
	for i = 0, n - 1 do
		local o = out[i]
		o.pid = tasks[i].pid
		o.cpu = g.CPU_ANY
		o.slice_ns = 0
		o.vtime = 10
		o.flags = 0
	end
	return n
end

return P
