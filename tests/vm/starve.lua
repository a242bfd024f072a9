-- starve.lua - VM test policy: policies/gthulhu.lua, except that tasks named "victim" get
-- an absurdly late vtime (2^60), so in a vtime-ordered DSQ every other task always goes
-- first. BPF must still run the victim before the sched_ext watchdog would eject the
-- scheduler: after wait_bound_ns it runs out of vtime order (nr_starved).
local ffi = require "ffi"
local here = (debug.getinfo(1, "S").source or ""):match("^@(.*)/[^/]*$") or "."
local pdir = os.getenv("GTHULHU_POLICY_DIR") or (here .. "/../../policies")
package.path = pdir .. "/lib/?.lua;" .. package.path

local P = dofile(pdir .. "/gthulhu.lua")
local inner = P.schedule
local W = {}
for k, v in pairs(P) do W[k] = v end
local LATE = 2^60

function W.schedule(tasks, n, out)
	local m = inner(tasks, n, out)
	for i = 0, n - 1 do
		if ffi.string(tasks[i].comm) == "victim" then
			for j = 0, m - 1 do
				if out[j].pid == tasks[i].pid then out[j].vtime = LATE end
			end
		end
	end
	return m
end

return W
