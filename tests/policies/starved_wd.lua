-- Test policy for tests/test_watchdog.c: when the test arms it (test_wd_armed() true),
-- schedule() lets the watchdog thread run again (test_wd_release(): the test held its lock
-- while the scheduling thread used CPU outside any call, as a watchdog starved of CPU
-- would see it), then blocks 60 ms without using CPU; it decides as
-- tests/transport/echo.lua does. (Loaded from the repository root.)
local ffi = require "ffi"
pcall(ffi.cdef, [[
int usleep(unsigned int usec);
int test_wd_armed(void);
void test_wd_release(void);
]])
local C = ffi.C
local P = dofile("tests/transport/echo.lua")
local echo_schedule = P.schedule

function P.schedule(tasks, n, out)
	if C.test_wd_armed() ~= 0 then
		C.test_wd_release()
		C.usleep(60000)
	end
	return echo_schedule(tasks, n, out)
end

return P
