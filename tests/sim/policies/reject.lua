-- reject.lua - badcpu.lua naming a CPU id past the last CPU for every task: the host
-- rejects every decision and gives each task its built-in one. The run looks like a plain
-- (slow) policy unless simulate says so: it must warn and mark the policy.
local g = require "gthulhu.sched"
local P = require "badcpu"
function P.init(ctx) P.cpu = g.nr_cpus() + 7 end
return P
