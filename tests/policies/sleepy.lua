-- Test policy: schedule() blocks 300 ms without using CPU (as a host starved of CPU by
-- real-time tasks would appear), then decides every task. The watchdog's limits are CPU
-- time: this call must not be interrupted.
local ffi = require "ffi"
local g = require "gthulhu.sched"
pcall(ffi.cdef, "int usleep(unsigned int usec);")
local P = {}

function P.schedule(tasks, n, out)
	ffi.C.usleep(300000)
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
