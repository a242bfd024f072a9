-- starve.lua - gives tasks named "hog" vtime 1 and every other task a huge vtime: at each
-- slice expiry the hog is still first in vtime order (keep_prev), so it keeps the CPU and
-- the other task never runs. The simulated sched_ext watchdog must catch it (exit 10),
-- as the kernel's would.
local g = require "gthulhu.sched"
local ffi = g.ffi
local P = {}
function P.schedule(tasks, n, out)
	for i = 0, n - 1 do
		local t, o = tasks[i], out[i]
		o.pid = t.pid
		o.flags = 0
		o.slice_ns = 0
		o.cpu = g.CPU_ANY
		o.vtime = ffi.string(t.comm) == "hog" and 1 or 1e18
	end
	return n
end
return P
