-- gthulhu.lua specifics: weighted slices, deadlines, idle CPU selection.
local H = require "helpers.sim"
local g, ffi = H.g, H.ffi

local SLICE_MIN, SLICE_DEF = 1e6, 20e6

describe("gthulhu policy", function()
	local P, clock, idle

	before_each(function()
		clock = H.clock()
		idle = ffi.new("uint64_t[16]")
		P = H.policy("gthulhu", { now = clock.now, nr_cpus = 4, idle = idle,
			slice_ns_min = SLICE_MIN, slice_ns_default = SLICE_DEF })
	end)

	local function decide(list)
		local n = #list
		local tb, ob = H.batch(n)
		for i = 1, n do H.task(tb, i - 1, list[i]) end
		H.poison(ob, n)
		local m = P.schedule(tb, n, ob)
		assert.is_nil(H.check(tb, n, ob, m, 4))
		local r = {}
		for i = 0, m - 1 do
			r[i + 1] = { pid = ob[i].pid, cpu = ob[i].cpu, slice = tonumber(ob[i].slice_ns), vtime = tonumber(ob[i].vtime) }
		end
		return r
	end

	it("gives slice_ns_min * weight / 100, clamped to [min/8, default]", function()
		local ws = { 100, 33, 916, 1, 10000, 200 }
		local list = {}
		for i, w in ipairs(ws) do list[i] = { pid = i, weight = w } end
		local d = decide(list)
		assert.are.equal(1e6, d[1].slice)
		assert.are.equal(0.33e6, d[2].slice)
		assert.are.equal(9.16e6, d[3].slice)
		assert.are.equal(SLICE_MIN / 8, d[4].slice)
		assert.are.equal(SLICE_DEF, d[5].slice)
		assert.are.equal(2e6, d[6].slice)
	end)

	it("sets the deadline to vruntime + min(exec_runtime, 100 slices), in virtual time", function()
		decide({ { pid = 1, weight = 100 }, { pid = 2, weight = 50 } })
		local v1, v2 = P.vruntime(1), P.vruntime(2)
		local d = decide({
			{ pid = 1, weight = 100, vtime = 1, exec_runtime = 3e6 },
			{ pid = 2, weight = 50, vtime = 1, exec_runtime = 3e6 },
		})
		assert.are.equal(v1 + 3e6, d[1].vtime)
		assert.are.equal(v2 + 6e6, d[2].vtime)
		d = decide({ { pid = 1, weight = 100, vtime = 1, exec_runtime = 10e9 } })
		assert.are.equal(v1 + 100 * SLICE_MIN, d[1].vtime)
	end)

	it("puts a short-running interactive task ahead of a CPU hog of the same weight", function()
		decide({ { pid = 1 }, { pid = 2 } })
		-- both ran 0.5 ms last time; the hog has been running for 80 ms without sleeping
		local d = decide({
			{ pid = 1, vtime = 1, start_ts = 1e9, stop_ts = 1e9 + 0.5e6, exec_runtime = 0.5e6 },
			{ pid = 2, vtime = 1, start_ts = 1e9, stop_ts = 1e9 + 0.5e6, exec_runtime = 80e6 },
		})
		assert.are.equal(P.vruntime(1), P.vruntime(2))
		assert.is_true(d[1].vtime < d[2].vtime)
		assert.are.equal(79.5e6, d[2].vtime - d[1].vtime)
	end)

	it("keeps wakeup latency of an interactive task within a hog slice", function()
		local s = H.sim(P, clock, { { pid = 1 }, { pid = 2 }, { pid = 3, run = 0.2e6, sleep = 3.3e6 } })
		s:run_for(0.5e9); s:reset_stats(); s:run_for(3e9)
		local t = s.tasks[3]
		assert.is_true(t.wakeups > 500)
		assert.is_true(t.wait_max <= SLICE_MIN, "max wakeup latency " .. t.wait_max)
		-- and it got all the CPU it asked for: 0.2 of every 3.5 ms
		assert.is_true(math.abs(t.runtime / 3e9 - 0.2 / 3.5) < 0.01)
	end)

	it("uses the idle previous CPU", function()
		idle[0] = 0x4   -- CPU 2 idle
		local d = decide({ { pid = 1, cpu = 2, nr_cpus_allowed = 1 } })
		assert.are.equal(2, d[1].cpu)
	end)

	it("moves a task that may run anywhere to another idle CPU, but not a pinned one", function()
		idle[0] = 0x8   -- CPU 3 idle, prev CPU 1 busy
		local d = decide({ { pid = 1, cpu = 1, nr_cpus_allowed = 4 } })
		assert.are.equal(3, d[1].cpu)
		d = decide({ { pid = 2, cpu = 1, nr_cpus_allowed = 2 } })
		assert.are.equal(g.CPU_ANY, d[1].cpu)
	end)

	it("hands an idle CPU to one task of the batch only", function()
		idle[0] = 0x1
		local d = decide({ { pid = 1, cpu = 0 }, { pid = 2, cpu = 0 }, { pid = 3, cpu = 1 } })
		assert.are.equal(0, d[1].cpu)
		assert.are.equal(g.CPU_ANY, d[2].cpu)
		assert.are.equal(g.CPU_ANY, d[3].cpu)
		-- next batch: CPU 0 is free to give again
		d = decide({ { pid = 2, cpu = 0, vtime = 1 } })
		assert.are.equal(0, d[1].cpu)
	end)

	it("leaves the CPU to BPF when nothing is idle", function()
		idle[0] = 0
		local d = decide({ { pid = 1, cpu = 3 } })
		assert.are.equal(g.CPU_ANY, d[1].cpu)
	end)

	it("does not let a priority task move vtime_now", function()
		g.set_strategies({ { pid = 9, priority = true } })
		local before = P.vtime_now()
		for k = 1, 50 do
			decide({ { pid = 9, vtime = 1, start_ts = k * 1e9, stop_ts = k * 1e9 + 50e6 } })
		end
		assert.are.equal(before, P.vtime_now())
		g.set_strategies({})
	end)
end)
