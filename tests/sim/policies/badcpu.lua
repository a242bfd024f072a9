-- badcpu.lua - names the last CPU for every task, whatever its affinity: decisions for
-- tasks that may not run there must be bounced (nr_bounce_dispatches) and affinity kept.
-- P.cpu is the CPU named (reject.lua sets one past the last).
local g = require "gthulhu.sched"
local P = {}
function P.init(ctx) P.cpu = g.nr_cpus() - 1 end
function P.schedule(tasks, n, out)
	local cpu = P.cpu
	for i = 0, n - 1 do
		local t, o = tasks[i], out[i]
		o.pid = t.pid; o.flags = 0; o.slice_ns = 0
		o.cpu = cpu
		o.vtime = t.vtime + 1
	end
	return n
end
return P
