-- gthulhu-queue.lua - vmbench A/B: policies/gthulhu.lua with g.FAST_QUEUE added to every
-- grant (a wake-up that finds no idle CPU is queued by BPF too, not sent to the policy).
-- Loaded from the repository root (the VM's /g).
local g = require "gthulhu.sched"
local P = dofile("policies/gthulhu.lua")
local schedule = P.schedule
local QUEUE = g.FAST_QUEUE

function P.schedule(tasks, n, out)
	local m = schedule(tasks, n, out)
	for i = 0, m - 1 do
		local o = out[i]
		if o.flags == g.FAST then o.flags = g.FAST + QUEUE end
	end
	return m
end

return P
