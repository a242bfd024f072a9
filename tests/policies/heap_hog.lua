-- Test policy: keeps 64 KiB more live Lua data at every call (a leak), so it passes any
-- Lua heap cap; it decides every task first, so only the cap makes its batches fall back.
-- Its save() would hand all that data over: a reload must not ask a state the host switched
-- off for its heap to save it (serializing it needs as much again, past the cap).
local g = require "gthulhu.sched"
local P, keep, calls = {}, {}, 0
function P.schedule(tasks, n, out)
	for i = 0, n - 1 do
		out[i].pid = tasks[i].pid
		out[i].cpu = g.CPU_ANY
	end
	calls = calls + 1
	keep[#keep + 1] = string.rep("x", 65536) .. calls
	return n
end
function P.save() return { keep = keep, calls = calls } end
return P
