-- nofast.lua - policies/simple.lua that never grants the fast path (flags 0 in every
-- decision): every wake-up of its tasks comes to the policy (the negative control of the
-- fast-path cases).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local P = dofile(dir .. "../../../policies/simple.lua")
local schedule = P.schedule
function P.schedule(tasks, n, out)
	local m = schedule(tasks, n, out)
	for i = 0, m - 1 do out[i].flags = 0 end
	return m
end
return P
