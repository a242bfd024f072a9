-- simple.lua specifics: vtime = vruntime, default slice, FIFO mode.
local H = require "helpers.sim"
local g, ffi = H.g, H.ffi

local SLICE_MIN, SLICE_DEF = 1e6, 20e6

local function decide(P, list)
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

describe("simple policy", function()
	local clock, idle
	before_each(function()
		clock = H.clock()
		idle = ffi.new("uint64_t[16]")
	end)
	local function make(fifo)
		return H.policy("simple", { now = clock.now, nr_cpus = 4, idle = idle, fifo = fifo,
			slice_ns_min = SLICE_MIN, slice_ns_default = SLICE_DEF })
	end

	it("is weighted (not FIFO) by default", function()
		local P = make(nil)
		assert.is_false(P.fifo)
	end)

	it("returns the vruntime as vtime, with the default slice", function()
		local P = make(false)
		decide(P, { { pid = 1, weight = 100 }, { pid = 2, weight = 25 } })
		local d = decide(P, {
			{ pid = 1, weight = 100, vtime = 1, start_ts = 1e9, stop_ts = 1e9 + 2e6, exec_runtime = 50e6 },
			{ pid = 2, weight = 25, vtime = 1, start_ts = 1e9, stop_ts = 1e9 + 2e6 },
		})
		assert.are.equal(P.vruntime(1), d[1].vtime)
		assert.are.equal(P.vruntime(2), d[2].vtime)
		assert.are.equal(6e6, d[2].vtime - d[1].vtime)
		assert.are.equal(SLICE_DEF, d[1].slice)
		assert.are.equal(SLICE_DEF, d[2].slice)
	end)

	it("uses the previous CPU when idle, once per batch, else RL_CPU_ANY", function()
		local P = make(false)
		idle[0] = 0x2
		local d = decide(P, { { pid = 1, cpu = 1 }, { pid = 2, cpu = 1 }, { pid = 3, cpu = 0 } })
		assert.are.equal(1, d[1].cpu)
		assert.are.equal(g.CPU_ANY, d[2].cpu)
		assert.are.equal(g.CPU_ANY, d[3].cpu)
	end)

	describe("in FIFO mode", function()
		it("orders decisions by arrival, across batches, whatever the weights", function()
			local P = make(true)
			assert.is_true(P.fifo)
			local last = 0
			for b = 1, 20 do
				local list = {}
				for i = 1, 7 do
					list[i] = { pid = b * 10 + i, weight = ({ 1, 10000, 100, 33 })[i % 4 + 1], vtime = (8 - i) * 1e9,
						start_ts = 0, stop_ts = i * 1e9, exec_runtime = i * 1e6 }
				end
				local d = decide(P, list)
				for i = 1, 7 do
					assert.is_true(d[i].vtime > last, "vtime not increasing with arrival")
					last = d[i].vtime
					assert.are.equal(SLICE_DEF, d[i].slice)
				end
			end
		end)

		it("can be switched on with P.fifo", function()
			local P = make(false)
			P.fifo = true
			local d = decide(P, { { pid = 1, weight = 10000, vtime = 5 }, { pid = 2, weight = 1, vtime = 5 } })
			assert.is_true(d[1].vtime < d[2].vtime)
		end)

		it("still honours strategies", function()
			local P = make(true)
			g.set_strategies({ { pid = 40, priority = true }, { pid = 50, execution_time = 3e6 } })
			local d = decide(P, { { pid = 41, tgid = 40 }, { pid = 50 }, { pid = 60 } })
			assert.are.equal(0, d[1].vtime)
			assert.are.equal(3e6, d[2].slice)
			assert.is_true(d[2].vtime > 0 and d[3].vtime > d[2].vtime)
			g.set_strategies({})
		end)

		it("runs hogs round-robin: equal CPU whatever the weight", function()
			local P = make(true)
			local s = H.sim(P, clock, { { pid = 1, weight = 916 }, { pid = 2, weight = 33 }, { pid = 3, weight = 100 } },
				{ slice_ns_default = SLICE_DEF })
			s:run_for(3e9)
			local a, b, c = s.tasks[1].runtime, s.tasks[2].runtime, s.tasks[3].runtime
			assert.is_true(math.abs(a - b) <= SLICE_DEF and math.abs(b - c) <= SLICE_DEF)
		end)

		it("carries its arrival counter across save/restore", function()
			local P = make(true)
			local d = decide(P, { { pid = 1 }, { pid = 2 }, { pid = 3 } })
			local Q = H.load("simple")
			Q.init(g.ctx)
			Q.restore(g.deserialize(g.serialize(P.save())))
			local d2 = decide(Q, { { pid = 4 } })
			assert.are.equal(d[3].vtime + 1, d2[1].vtime)
		end)
	end)
end)
