-- cpu0.lua - decides every task to CPU 0 (FIFO order) without granting the fast path, and
-- checks that the kernel side reports a wake-up on the CPU the task last ran on: a task not
-- granted the fast path must not be moved (nor an idle CPU claimed for it) by select_cpu;
-- the policy's decision picks its CPU. A violation raises (policy_errors).
local g = require "gthulhu.sched"
local ffi = g.ffi
local P = {}
local seq = 0
local decided = {}
function P.schedule(tasks, n, out)
	for i = 0, n - 1 do
		local t, o = tasks[i], out[i]
		if decided[t.pid] and t.cpu ~= 0 then
			error(("pid %d (%s) woke reported on CPU %d, it last ran on CPU 0"):format(
				t.pid, ffi.string(t.comm), t.cpu))
		end
		decided[t.pid] = true
		seq = seq + 1
		o.pid = t.pid
		o.flags = 0
		o.slice_ns = 0
		o.cpu = 0
		o.vtime = seq
	end
	return n
end
return P
