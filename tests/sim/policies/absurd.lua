-- absurd.lua - policies/simple.lua, except that every decision asks for an absurd slice
-- (-1, i.e. 2^64-1 ns: "forever"). The host clamps it to the watchdog's bound (1/8 of
-- watchdog_timeout_ms: slices_clamped), as in a live run; without the clamp one hog would
-- hold the CPU until the simulated watchdog ends the run.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local P = dofile(dir .. "../../../policies/simple.lua")
local inner = P.schedule
function P.schedule(tasks, n, out)
	local m = inner(tasks, n, out)
	for i = 0, m - 1 do out[i].slice_ns = -1 end
	return m
end
return P
