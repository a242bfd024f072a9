-- leak.lua: the hygiene suite's negative control (tests/bench/hygiene.sh). Decides as
-- tests/transport/echo.lua does, and keeps one small table per batch forever: the leak
-- the bridge's Lua live-heap check must report. (Loaded from the repository root.)
local P = dofile("tests/transport/echo.lua")
local echo_schedule = P.schedule
local kept = {}

function P.schedule(tasks, n, out)
	local m = echo_schedule(tasks, n, out)
	kept[#kept + 1] = { n }
	return m
end

return P
