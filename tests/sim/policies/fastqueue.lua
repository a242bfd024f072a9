-- fastqueue.lua - policies/simple.lua granting g.FAST + g.FAST_QUEUE in every decision: a
-- wake-up that finds no idle CPU is queued by BPF too (the fast-path queue case).
local g = require "gthulhu.sched"
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local P = dofile(dir .. "../../../policies/simple.lua")
local schedule = P.schedule
function P.schedule(tasks, n, out)
	local m = schedule(tasks, n, out)
	for i = 0, m - 1 do out[i].flags = g.FAST + g.FAST_QUEUE end
	return m
end
return P
