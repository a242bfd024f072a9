-- Properties both policies (gthulhu.lua, simple.lua in weighted mode) must have.
local H = require "helpers.sim"
local g, ffi = H.g, H.ffi

local SLICE_MIN, SLICE_DEF = 1e6, 20e6

-- The slice each policy charges lag against for a task of weight w.
local lag_slice = {
	gthulhu = function(w) return SLICE_DEF end,
	simple = function(w) return SLICE_DEF end,
}

local function ratio_of(s, a, b) return s.tasks[a].runtime / s.tasks[b].runtime end

for _, name in ipairs({ "gthulhu", "simple" }) do
	describe(name .. " policy", function()
		local P, clock

		before_each(function()
			clock = H.clock()
			P = H.policy(name, { now = clock.now, nr_cpus = 4, slice_ns_min = SLICE_MIN, slice_ns_default = SLICE_DEF })
		end)

		-- Schedule one task alone; returns its decision.
		local function one(f)
			local tb, ob = H.batch(1)
			H.task(tb, 0, f)
			H.poison(ob, 1)
			local m = P.schedule(tb, 1, ob)
			assert.is_nil(H.check(tb, 1, ob, m, 4))
			return H.decisions(ob, m)[f.pid]
		end

		-- Push vtime_now up by running a hog for a while.
		local function warm(ns)
			local s = H.sim(P, clock, { { pid = 9000, weight = 100 } }, { slice_ns_default = SLICE_DEF })
			s:run_for(ns or 200e6)
			assert.is_true(P.vtime_now() > 0)
			return s
		end

		it("returns 0 for an empty batch and writes nothing", function()
			local tb, ob = H.batch(4)
			H.poison(ob, 4)
			assert.are.equal(0, P.schedule(tb, 0, ob))
			for i = 0, 3 do assert.are.equal(-7, ob[i].pid) end
		end)

		it("decides every task of a mixed batch exactly once and validly", function()
			local n = 300
			local tb, ob = H.batch(n)
			for i = 0, n - 1 do
				H.task(tb, i, {
					pid = 100 + i, tgid = 100 + i - i % 3, cpu = i % 4, weight = ({ 1, 33, 100, 916, 10000, 0 })[i % 6 + 1],
					start_ts = 1e9 + i * 1000, stop_ts = 1e9 + i * 1000 + (i % 5) * 1e5,
					exec_runtime = (i % 7) * 1e6, vtime = (i % 2) * (1e6 + i), nr_cpus_allowed = 1 + i % 4,
				})
			end
			H.poison(ob, n)
			local m = P.schedule(tb, n, ob)
			assert.is_nil(H.check(tb, n, ob, m, 4))
			for i = 0, n - 1 do
				assert.are.equal(tb[i].pid, ob[i].pid)
				assert.is_true(ob[i].vtime > 0, "vtime 0 without a priority strategy")
				assert.is_true(ob[i].slice_ns > 0)
				assert.are.equal(g.FAST, tonumber(ob[i].flags), "every decision grants the fast path")
			end
		end)

		it("handles a full batch of 4096 tasks", function()
			local n = g.MAX_BATCH
			local tb, ob = H.batch(n)
			for i = 0, n - 1 do
				H.task(tb, i, { pid = 1 + i, weight = 1 + i % 200, start_ts = 5, stop_ts = 5 + i, cpu = i % 4 })
			end
			H.poison(ob, n)
			local m = P.schedule(tb, n, ob)
			assert.are.equal(n, m)
			assert.is_nil(H.check(tb, n, ob, m, 4))
		end)

		it("survives weight 0 and stop_ts < start_ts", function()
			local d = one({ pid = 5, weight = 0, start_ts = 2e9, stop_ts = 1e9, vtime = 77, exec_runtime = 1e6 })
			assert.is_true(d.vtime > 0 and d.vtime < 2 ^ 53)
			assert.is_true(P.vruntime(5) == P.vruntime(5))   -- not NaN
			local before = P.vruntime(5)
			one({ pid = 5, weight = 0, start_ts = 3e9, stop_ts = 3e9 + 1e6, vtime = d.vtime })
			assert.is_true(P.vruntime(5) > before and P.vruntime(5) < before + 1e9)
		end)

		it("charges runtime * 100 / weight", function()
			warm()
			local vnow = P.vtime_now()
			one({ pid = 7, weight = 50, start_ts = 0, stop_ts = 0 })          -- new: at vtime_now
			assert.are.equal(vnow, P.vruntime(7))
			one({ pid = 7, weight = 50, start_ts = 1e9, stop_ts = 1e9 + 2e6, vtime = 1 })
			assert.are.equal(vnow + 4e6, P.vruntime(7))
			one({ pid = 7, weight = 400, start_ts = 2e9, stop_ts = 2e9 + 2e6, vtime = 1 })
			assert.are.equal(vnow + 4e6 + 0.5e6, P.vruntime(7))
		end)

		it("starts a new task at vtime_now", function()
			warm()
			local vnow = P.vtime_now()
			local d = one({ pid = 11, weight = 100 })
			assert.are.equal(vnow, P.vruntime(11))
			assert.are.equal(vnow, d.vtime)
		end)

		it("treats vtime 0 as a new task even if the pid is known (pid reuse)", function()
			one({ pid = 12, weight = 100, start_ts = 0, stop_ts = 0 })
			warm()
			-- pid 12 is behind now; as a new task it must not keep any lag credit
			local vnow = P.vtime_now()
			one({ pid = 12, weight = 100, vtime = 0 })
			assert.are.equal(vnow, P.vruntime(12))
		end)

		it("gives a long sleeper at most one slice of lag credit", function()
			for _, w in ipairs({ 100, 33, 916 }) do
				local pid = 20 + w
				one({ pid = pid, weight = w })
				local old = P.vruntime(pid)
				warm(500e6)
				local vnow = P.vtime_now()
				assert.is_true(vnow - old > 10 * lag_slice[name](w), "warm-up did not move vtime_now enough")
				local d = one({ pid = pid, weight = w, vtime = 1234, start_ts = 0, stop_ts = 0 })
				assert.are.equal(vnow - lag_slice[name](w), P.vruntime(pid))
				assert.are.equal(vnow - lag_slice[name](w), d.vtime)
			end
		end)

		it("does not pull a task that is ahead of vtime_now back", function()
			warm()
			local vnow = P.vtime_now()
			one({ pid = 30, weight = 100 })
			-- it runs 50 ms: far ahead
			one({ pid = 30, weight = 100, start_ts = 1e9, stop_ts = 1e9 + 50e6, vtime = 1 })
			assert.are.equal(vnow + 50e6, P.vruntime(30))
			one({ pid = 30, weight = 100, start_ts = 2e9, stop_ts = 2e9, vtime = 1 })
			assert.are.equal(vnow + 50e6, P.vruntime(30))
		end)

		it("keeps vtime_now and each hog's vtime monotonic", function()
			local s = H.sim(P, clock, {
				{ pid = 1, weight = 100 }, { pid = 2, weight = 33 }, { pid = 3, weight = 916 },
				{ pid = 4, weight = 100, run = 0.3e6, sleep = 3e6 },
			}, { history = true })
			local last = -1
			for _ = 1, 3000 do
				s:tick()
				local v = P.vtime_now()
				assert.is_true(v >= last, "vtime_now went back")
				last = v
			end
			assert.is_true(last > 0)
			for pid = 1, 3 do
				local h = s.history[pid]
				assert.is_true(#h > 10)
				for i = 2, #h do
					assert.is_true(h[i] >= h[i - 1], ("pid %d vtime went back at %d: %s < %s"):format(pid, i, h[i], h[i - 1]))
				end
			end
		end)

		local function share(w1, w2, expect)
			local s = H.sim(P, clock, { { pid = 1, weight = w1 }, { pid = 2, weight = w2 } })
			s:run_for(2e9)
			s:reset_stats()
			s:run_for(10e9)
			local r = ratio_of(s, 1, 2)
			assert.is_true(r > expect * 0.85 and r < expect * 1.15,
				("weights %d:%d got CPU ratio %.3f, want %.3f +-15%%"):format(w1, w2, r, expect))
		end

		it("shares the CPU by weight: 100 vs 33", function() share(100, 33, 100 / 33) end)
		it("shares the CPU by weight: 916 vs 100", function() share(916, 100, 9.16) end)
		it("shares the CPU equally between equal weights (3 hogs)", function()
			local s = H.sim(P, clock, { { pid = 1 }, { pid = 2 }, { pid = 3 } })
			s:run_for(1e9); s:reset_stats(); s:run_for(6e9)
			for pid = 1, 3 do
				local r = s.tasks[pid].runtime / 2e9
				assert.is_true(r > 0.9 and r < 1.1, ("pid %d got %.3f of its fair share"):format(pid, r))
			end
		end)

		it("applies strategies: priority, execution_time, and tgid matching", function()
			warm()
			g.set_strategies({
				{ pid = 500, priority = true, execution_time = 0 },
				{ pid = 600, priority = false, execution_time = 7e6 },
				{ pid = 700, priority = true, execution_time = 3e6 },
			})
			if P.on_strategies then P.on_strategies({}) end
			local tb, ob = H.batch(5)
			H.task(tb, 0, { pid = 500, vtime = 10 })
			H.task(tb, 1, { pid = 600, vtime = 10 })
			H.task(tb, 2, { pid = 701, tgid = 700, vtime = 10 })   -- a thread of process 700
			H.task(tb, 3, { pid = 800, tgid = 800, vtime = 10 })   -- no strategy
			H.task(tb, 4, { pid = 601, tgid = 600, vtime = 10 })   -- a thread of process 600
			H.poison(ob, 5)
			local m = P.schedule(tb, 5, ob)
			assert.is_nil(H.check(tb, 5, ob, m, 4))
			local d = H.decisions(ob, m)
			assert.are.equal(0, d[500].vtime)
			assert.are.equal(7e6, d[600].slice)
			assert.is_true(d[600].vtime > 0)
			assert.are.equal(0, d[701].vtime)
			assert.are.equal(3e6, d[701].slice)
			assert.is_true(d[800].vtime > 0)
			assert.are.equal(7e6, d[601].slice)
			g.set_strategies({})
		end)

		it("runs a priority task before everything else in the simulator", function()
			-- a weight-1 hog would get ~0.5% of the CPU next to two nice-0 hogs; with
			-- priority it must get all of it once it is queued
			g.set_strategies({ { pid = 3, priority = true, execution_time = 0 } })
			local s = H.sim(P, clock, { { pid = 1 }, { pid = 2 }, { pid = 3, weight = 1 } })
			s:run_for(100e6)
			s:reset_stats()
			s:run_for(1e9)
			assert.are.equal(1e9, s.tasks[3].runtime)
			g.set_strategies({})
			s:reset_stats()
			s:run_for(1e9)
			assert.is_true(s.tasks[3].runtime < 0.05e9, "still runs like a priority task: " .. s.tasks[3].runtime)
		end)

		it("round-trips its state through save/restore (and g.serialize)", function()
			local s = H.sim(P, clock, { { pid = 1 }, { pid = 2, weight = 33 }, { pid = 3, weight = 500, run = 1e6, sleep = 2e6 } })
			s:run_for(300e6)
			local saved = g.deserialize(g.serialize(P.save()))
			local Q = H.load(name)
			Q.init(g.ctx)
			Q.restore(saved)
			assert.are.equal(P.vtime_now(), Q.vtime_now())
			for pid = 1, 3 do
				assert.is_number(P.vruntime(pid))
				assert.are.equal(P.vruntime(pid), Q.vruntime(pid))
			end
			-- the same next batch gets the same decisions from both
			local tb, ob1 = H.batch(3)
			local _, ob2 = H.batch(3)
			for i = 0, 2 do
				local t = s.tasks[i + 1]
				H.task(tb, i, { pid = t.pid, weight = t.weight, start_ts = clock.t, stop_ts = clock.t + 1e6 * (i + 1),
					exec_runtime = t.exec_runtime, vtime = t.vtime })
			end
			H.poison(ob1, 3); H.poison(ob2, 3)
			P.schedule(tb, 3, ob1)
			Q.schedule(tb, 3, ob2)
			for i = 0, 2 do
				assert.are.equal(ob1[i].vtime, ob2[i].vtime)
				assert.are.equal(ob1[i].slice_ns, ob2[i].slice_ns)
			end
			-- a fresh instance without restore does not know them (the test can fail)
			local R = H.load(name); R.init(g.ctx)
			assert.is_nil(R.vruntime(1))
		end)

		it("forgets tasks not seen for a long time, a few per batch", function()
			local n = 1000
			local tb, ob = H.batch(n)
			for i = 0, n - 1 do H.task(tb, i, { pid = 10000 + i }) end
			P.schedule(tb, n, ob)
			assert.are.equal(n, P.nr_tracked())
			clock.t = clock.t + 120e9
			local t1, o1 = H.batch(1)
			for _ = 1, 20 do
				H.task(t1, 0, { pid = 1, vtime = 5 })
				P.schedule(t1, 1, o1)
			end
			local left = P.nr_tracked()
			assert.is_true(left < n and left > n - 300, "pruned " .. (n - left) .. " in 20 batches")
			for _ = 1, 2000 do P.schedule(t1, 1, o1) end
			assert.are.equal(1, P.nr_tracked())
			assert.is_number(P.vruntime(1))
		end)

		it("keeps recently seen tasks while pruning", function()
			local tb, ob = H.batch(50)
			for i = 0, 49 do H.task(tb, i, { pid = 300 + i }) end
			for _ = 1, 500 do
				clock.t = clock.t + 1e6
				P.schedule(tb, 50, ob)
			end
			assert.are.equal(50, P.nr_tracked())
		end)

		it("allocates nothing per task in steady state (1000 batches of 512)", function()
			local n = 512
			local tb, ob = H.batch(n)
			for i = 0, n - 1 do
				H.task(tb, i, { pid = 1 + i, tgid = 1 + i - i % 4, cpu = i % 4, weight = 50 + i % 100,
					vtime = 1, exec_runtime = 1e6 })
			end
			g.set_strategies({ { pid = 5, priority = true, execution_time = 2e6 } })
			local function run(batches)
				for _ = 1, batches do
					local t = clock.t
					for i = 0, n - 1 do
						local task = tb[i]
						task.start_ts = t
						task.stop_ts = t + 1000 + i
					end
					clock.t = t + 1e6
					P.schedule(tb, n, ob)
				end
			end
			run(200)   -- warm up: the pid tables reach their size, traces compile
			collectgarbage(); collectgarbage()
			collectgarbage("stop")
			local before = collectgarbage("count")
			run(1000)
			local grown = collectgarbage("count") - before
			collectgarbage("restart")
			g.set_strategies({})
			assert.is_true(grown < 64, ("grew %.1f KB over 512000 tasks"):format(grown))
		end)
	end)
end
