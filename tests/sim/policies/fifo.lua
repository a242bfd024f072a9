-- fifo.lua - policies/simple.lua in FIFO mode: no weights, first come first served (the
-- negative control of the comparisons: it must be told apart from the weighted policies).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local P = dofile(dir .. "../../../policies/simple.lua")
P.fifo = true
return P
