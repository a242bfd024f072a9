-- Test policy: misbehaves in the way $GTHULHU_TEST_MODE names (read at init).
local g = require "gthulhu.sched"
local P = { calls = 0 }
local mode

function P.init(ctx) mode = os.getenv("GTHULHU_TEST_MODE") or "good" end

local function decide_all(tasks, n, out)
	for i = 0, n - 1 do
		local o = out[i]
		o.pid = tasks[i].pid
		o.cpu = g.CPU_ANY
		o.slice_ns = 0
		o.vtime = 10
		o.flags = 0
	end
end

function P.schedule(tasks, n, out)
	P.calls = P.calls + 1
	decide_all(tasks, n, out)
	if mode == "raise" then error("schedule failed on purpose") end
	if mode == "raise_nth" and P.calls % 3 == 0 then error("every third call fails") end
	if mode == "nil" then return nil end
	if mode == "string" then return "lots" end
	if mode == "negative" then return -1 end
	if mode == "toomany" then return n + 5 end
	if mode == "cpu_neg" then out[0].cpu = -1 end
	if mode == "cpu_nr" then out[0].cpu = g.nr_cpus() end
	if mode == "cpu_huge" then out[0].cpu = 0x7fffffff end
	if mode == "zero_pid" then out[0].pid = 0 end
	if mode == "unknown_pid" then out[0].pid = tasks[0].pid + 1000000 end
	if mode == "dup" and n >= 2 then out[1].pid = tasks[0].pid end
	if mode == "fewer" then return math.floor(n / 2) end
	if mode == "slice_absurd" and n >= 3 then
		out[0].slice_ns = -1          -- 2^64 - 1 as the uint64 field: "forever"
		out[1].slice_ns = 1e13        -- 10 000 s
		out[2].slice_ns = 1           -- 1 ns
	end
	return n
end

return P
