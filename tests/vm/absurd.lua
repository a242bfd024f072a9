-- absurd.lua - VM test policy: policies/gthulhu.lua, except that every other decision
-- asks for an absurd slice (2^64-1 ns, "forever"). The host clamps them to the watchdog's
-- safety bound (nr_slices_clamped) and BPF would clamp again: nothing may hold a CPU long
-- enough for the sched_ext watchdog to eject the scheduler.
local here = (debug.getinfo(1, "S").source or ""):match("^@(.*)/[^/]*$") or "."
local pdir = os.getenv("GTHULHU_POLICY_DIR") or (here .. "/../../policies")
package.path = pdir .. "/lib/?.lua;" .. package.path

local P = dofile(pdir .. "/gthulhu.lua")
local inner = P.schedule
local W = {}
for k, v in pairs(P) do W[k] = v end

function W.schedule(tasks, n, out)
	local m = inner(tasks, n, out)
	for i = 0, m - 1, 2 do out[i].slice_ns = -1 end
	return m
end

return W
