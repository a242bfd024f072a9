-- The parts of gthulhu.sched the policies rely on.
local H = require "helpers.sim"
local g, ffi = H.g, H.ffi
local bit = require "bit"

local function bitmap(cpus)
	local b = ffi.new("uint64_t[16]")
	for _, c in ipairs(cpus) do
		local w = math.floor(c / 64)
		b[w] = bit.bor(b[w], bit.lshift(1ULL, c % 64))
	end
	return b
end

describe("gthulhu.sched", function()
	it("exports the wire constants", function()
		assert.are.equal(2 ^ 20, g.CPU_ANY)
		assert.are.equal(4096, g.MAX_BATCH)
		assert.are.equal(1024, g.MAX_CPUS)
		assert.are.equal(ffi, g.ffi)
		assert.are.equal(1, g.FAST)
		assert.are.equal(2 ^ 30, g.PLACED)
	end)

	it("fast_path carries a slice cap in whole microseconds above bit 31", function()
		local o = ffi.new("struct dispatched_task_ctx")
		o.flags = g.fast_path(2.5e6)
		assert.are.equal(1ULL + 2500ULL * 2 ^ 32, o.flags)
		o.flags = g.fast_path(10)             -- below 1 us: 1 us
		assert.are.equal(1ULL + 2 ^ 32, o.flags)
		o.flags = g.fast_path(1e15)           -- above every slice: 2^20 us, still exact
		assert.are.equal(1ULL + 2ULL ^ 52, o.flags)
		assert.are.equal(1, tonumber(bit.band(o.flags, 1ULL)), "the grant bit survives")
	end)

	it("setup exposes ctx values and the clock", function()
		local clock = H.clock(123e9)
		H.setup({ nr_cpus = 8, slice_ns_default = 5e6, slice_ns_min = 2e5, now = clock.now })
		assert.are.equal(8, g.nr_cpus())
		assert.are.equal(5e6, g.slice_ns_default())
		assert.are.equal(2e5, g.slice_ns_min())
		assert.are.equal(123e9, g.now())
		clock.t = clock.t + 5
		assert.are.equal(123e9 + 5, g.now())
		assert.are.equal(8, g.ctx.nr_cpus)
	end)

	it("reads the idle bitmap per CPU, including CPUs past 64", function()
		local b = bitmap({ 1, 63, 64, 130 })
		H.setup({ nr_cpus = 200, idle = b })
		for c = 0, 199 do
			local want = (c == 1 or c == 63 or c == 64 or c == 130)
			assert.are.equal(want, g.cpu_idle(c), "cpu " .. c)
		end
		assert.is_false(g.cpu_idle(-1))
		assert.is_false(g.cpu_idle(200))
	end)

	it("sees bitmap changes made after setup (the host updates it in place)", function()
		local b = bitmap({})
		H.setup({ nr_cpus = 4, idle = b })
		assert.is_false(g.cpu_idle(2))
		assert.are.equal(-1, g.pick_idle_cpu(0))
		b[0] = 4
		assert.is_true(g.cpu_idle(2))
		assert.are.equal(2, g.pick_idle_cpu(0))
	end)

	it("picks prev, then an L2 sibling, then an L3 sibling, then any idle CPU", function()
		local topo = {}
		for c = 0, 7 do
			local l2base = c - c % 2
			local l3base = c - c % 4
			topo[c] = { l2 = { l2base, l2base + 1 }, l3 = { l3base, l3base + 1, l3base + 2, l3base + 3 } }
		end
		local b = bitmap({ 5, 6, 7 })
		H.setup({ nr_cpus = 8, idle = b, topology = topo })
		assert.are.equal(5, g.pick_idle_cpu(5))      -- prev idle
		assert.are.equal(6, g.pick_idle_cpu(6))
		b[0] = bitmap({ 3, 5, 6 })[0]
		assert.are.equal(5, g.pick_idle_cpu(4))      -- L2 sibling of 4
		b[0] = bitmap({ 1, 6 })[0]
		assert.are.equal(6, g.pick_idle_cpu(4))      -- L3 sibling of 4 (not 1)
		b[0] = bitmap({ 1 })[0]
		assert.are.equal(1, g.pick_idle_cpu(4))      -- any idle
		b[0] = 0
		assert.are.equal(-1, g.pick_idle_cpu(4))
	end)

	it("pick_idle_cpu returns -1 without a bitmap and never a CPU >= nr_cpus", function()
		H.setup({ nr_cpus = 4 })
		assert.are.equal(-1, g.pick_idle_cpu(0))
		local b = bitmap({ 10 })
		H.setup({ nr_cpus = 4, idle = b })
		assert.are.equal(-1, g.pick_idle_cpu(0))
		assert.are.equal(-1, g.pick_idle_cpu(10))
	end)

	it("claims each idle CPU once per batch, nearest first, from a snapshot", function()
		local topo = {}
		for c = 0, 7 do
			local l2base = c - c % 2
			local l3base = c - c % 4
			topo[c] = { l2 = { l2base, l2base + 1 }, l3 = { l3base, l3base + 1, l3base + 2, l3base + 3 } }
		end
		local b = bitmap({ 1, 5, 6 })
		H.setup({ nr_cpus = 8, idle = b, topology = topo })
		assert.are.equal(3, g.begin_batch())
		b[0] = 0                                         -- the snapshot, not the live map
		assert.are.equal(5, g.claim_idle_cpu(5, true))   -- its own CPU
		assert.are.equal(-1, g.claim_idle_cpu(5, false)) -- taken; may not migrate
		assert.are.equal(6, g.claim_idle_cpu(4, true))   -- L3 sibling before far CPU 1
		assert.are.equal(1, g.claim_idle_cpu(4, true))   -- any idle
		assert.are.equal(-1, g.claim_idle_cpu(0, true))  -- none left
		b[0] = bitmap({ 2 })[0]
		assert.are.equal(1, g.begin_batch())            -- a new batch sees the new map
		assert.are.equal(2, g.claim_idle_cpu(3, true))   -- L2 sibling of 3
	end)

	it("begin_batch ignores bits past nr_cpus and works without a bitmap", function()
		H.setup({ nr_cpus = 4 })
		assert.are.equal(0, g.begin_batch())
		assert.are.equal(-1, g.claim_idle_cpu(0, true))
		local b = bitmap({ 2, 10, 40 })
		H.setup({ nr_cpus = 4, idle = b })
		assert.are.equal(1, g.begin_batch())
		assert.are.equal(2, g.claim_idle_cpu(0, true))
		assert.are.equal(-1, g.claim_idle_cpu(0, true))
	end)

	it("strategy_for gives priority and slice, by pid then tgid", function()
		H.setup({})
		g.set_strategies({
			{ pid = 1000, priority = true, execution_time = 0 },
			{ pid = 2000, priority = false, execution_time = 3e6 },
		})
		local prio, slice = g.strategy_for(1000, 1000, 5e6)
		assert.is_true(prio); assert.are.equal(5e6, slice)
		prio, slice = g.strategy_for(2003, 2000, 5e6)       -- a thread of process 2000
		assert.is_false(prio); assert.are.equal(3e6, slice)
		prio, slice = g.strategy_for(7, 7, 5e6)
		assert.is_false(prio); assert.are.equal(5e6, slice)
	end)

	it("pid_table forgets entries not seen for a while, a few per prune", function()
		local t = g.pid_table(100, 3)
		for pid = 1, 10 do t.value[pid] = pid * 10; t.seen[pid] = pid <= 5 and 0 or 1000 end
		t:prune(1050)                       -- examines 3 entries
		assert.is_true(t:count() >= 7)
		for _ = 1, 5 do t:prune(1050) end   -- goes round: all 5 stale ones gone
		assert.are.equal(5, t:count())
		for pid = 6, 10 do assert.are.equal(pid * 10, t.value[pid]) end
		local saved = g.deserialize(g.serialize(t:save()))
		local u = g.pid_table(100)
		local keep = u.value
		u:restore(saved, 5)
		assert.are.equal(keep, u.value)     -- same table: upvalues stay valid
		assert.are.equal(80, u.value[8]); assert.are.equal(1000, u.seen[8])
	end)

	it("looks strategies up by pid, then by tgid", function()
		H.setup({})
		g.set_strategies({
			{ pid = 1000, priority = true, execution_time = 0 },
			{ pid = 1001, priority = false, execution_time = 3e6 },
		})
		assert.is_true(g.strategy(1000, 1000).priority)
		-- a thread of process 1000
		local e = g.strategy(1005, 1000)
		assert.is_not_nil(e)
		assert.is_true(e.priority)
		-- its own pid entry wins over its process's
		e = g.strategy(1001, 1000)
		assert.are.equal(3e6, e.execution_time)
		assert.is_false(e.priority)
		assert.is_nil(g.strategy(2000, 2000))
		g.set_strategies({})
		assert.is_nil(g.strategy(1000, 1000))
	end)

	it("serializes plain values and reads them back", function()
		local v = { vtime_now = 123456789012345, tasks = { [17] = 5.5, [4194304] = 2 ^ 52 }, s = "a\"b\n", f = false }
		local back = g.deserialize(g.serialize(v))
		assert.are.same(v, back)
		assert.has_error(function() g.serialize({ f = function() end }) end)
	end)
end)
