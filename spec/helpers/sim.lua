-- spec/helpers/sim.lua - test helpers for policy specs: fresh policy instances, hand-made
-- batches, a virtual clock, a decision validity checker and a one-CPU simulator.
--   local H = require "helpers.sim"
local g = require "gthulhu.sched"
local ffi = g.ffi

local H = {}
H.g = g
H.ffi = ffi

-- A fresh copy of a policy file (require would share one instance between specs).
function H.load(name)
	local path = assert(package.searchpath(name, package.path))
	return dofile(path)
end

-- A virtual clock: clock.t in ns; clock.now() reads it.
function H.clock(t0)
	local c = { t = t0 or 1e9 }
	function c.now() return c.t end
	return c
end

-- g.setup with defaults suited to specs; returns ctx (opts override fields).
function H.setup(opts)
	opts = opts or {}
	local ctx = {
		nr_cpus = opts.nr_cpus or 4,
		slice_ns_default = opts.slice_ns_default or 20e6,
		slice_ns_min = opts.slice_ns_min or 1e6,
		batch_max = opts.batch_max or g.MAX_BATCH,
		topology = opts.topology,
		idle = opts.idle,
		now = opts.now,
		fifo = opts.fifo,
	}
	g.setup(ctx)
	g.set_strategies({})
	return ctx
end

-- Policy instance, set up and initialised.
function H.policy(name, opts)
	local ctx = H.setup(opts)
	local P = H.load(name)
	P.init(ctx)
	return P, ctx
end

function H.batch(n)
	local cap = n > 0 and n or 1
	return ffi.new("struct queued_task_ctx[?]", cap), ffi.new("struct dispatched_task_ctx[?]", cap)
end

-- Fill tasks[i] from a table of fields (defaults: a nice-0 task on CPU 0, any CPU allowed).
function H.task(tasks, i, f)
	local t = tasks[i]
	t.pid = f.pid
	t.tgid = f.tgid or f.pid
	t.cpu = f.cpu or 0
	t.nr_cpus_allowed = f.nr_cpus_allowed or 1024
	t.flags = f.flags or 0
	t.start_ts = f.start_ts or 0
	t.stop_ts = f.stop_ts or 0
	t.exec_runtime = f.exec_runtime or 0
	t.weight = f.weight or 100
	t.vtime = f.vtime or 0
	t.enq_cnt = f.enq_cnt or 0
	return t
end

-- Poison the output so a field the policy forgot to write shows up.
function H.poison(out, n)
	for i = 0, n - 1 do
		local o = out[i]
		o.pid = -7; o.cpu = -7; o.flags = 0xdead; o.slice_ns = 0xdead; o.vtime = 0xdead
		o.enq_cnt = 4242
	end
end

-- Check that decisions out[0..m) are exactly one valid decision per task of tasks[0..n).
-- Returns nil or a message describing the first problem.
function H.check(tasks, n, out, m, nr_cpus)
	if m ~= n then return ("returned %s decisions for %d tasks"):format(tostring(m), n) end
	local want = {}
	for i = 0, n - 1 do want[tasks[i].pid] = (want[tasks[i].pid] or 0) + 1 end
	for i = 0, m - 1 do
		local o = out[i]
		local pid = o.pid
		if not want[pid] or want[pid] == 0 then return ("decision %d: pid %d not owed"):format(i, pid) end
		want[pid] = want[pid] - 1
		local cpu = o.cpu
		if not (cpu == g.CPU_ANY or (cpu >= 0 and cpu < nr_cpus)) then
			return ("decision %d (pid %d): bad cpu %d"):format(i, pid, cpu)
		end
		-- flags: nothing, or the fast-path grant (g.FAST, g.FAST_QUEUE) with an optional slice
		-- cap above bit 31
		if require("bit").band(o.flags, 0xfffffffcULL) ~= 0 then
			return ("decision %d: flags %s"):format(i, tostring(o.flags))
		end
		if o.slice_ns > 10e9 then return ("decision %d: slice %s"):format(i, tostring(o.slice_ns)) end
		if o.vtime >= 2ULL^53 then return ("decision %d: vtime %s"):format(i, tostring(o.vtime)) end
		if o.enq_cnt ~= 4242 then return ("decision %d: enq_cnt was touched"):format(i) end
	end
	return nil
end

-- Decisions by pid: { [pid] = {cpu=, slice=, vtime=} } (numbers).
function H.decisions(out, m)
	local r = {}
	for i = 0, m - 1 do
		local o = out[i]
		r[o.pid] = { cpu = o.cpu, slice = tonumber(o.slice_ns), vtime = tonumber(o.vtime) }
	end
	return r
end

------------------------------------------------------------------------------------------
-- One-CPU simulator. Tasks: { pid=, tgid=, weight=, run=ns|nil, sleep=ns|nil }.
--   run == nil: a CPU hog (always runnable). Otherwise the task runs `run` ns of CPU, then
--   sleeps `sleep` ns, then wakes (exec_runtime reset to 0).
-- Each tick: every task that became runnable is sent to the policy in one batch; then the
-- CPU runs the queued task with the smallest decided vtime (vtime 0 first; ties: the one
-- queued first) for its slice (0 = default), or less if it goes to sleep.
local Sim = {}
Sim.__index = Sim

function H.sim(P, clock, tasks, opts)
	opts = opts or {}
	local s = setmetatable({
		P = P, clock = clock, opts = opts,
		nr_cpus = opts.nr_cpus or 4,
		slice_default = opts.slice_ns_default or 20e6,
		tasks = {}, pending = {}, queue = {}, sleeping = {}, seq = 0,
		tbuf = nil, obuf = nil, cap = 0,
		history = {},  -- pid -> list of decided vtimes (if opts.history)
		ticks = 0,
	}, Sim)
	for _, d in ipairs(tasks) do s:add(d) end
	return s
end

function Sim:add(d)
	local t = {
		pid = d.pid, tgid = d.tgid or d.pid, weight = d.weight or 100,
		run = d.run, sleep = d.sleep or 0,
		start_ts = 0, stop_ts = 0, exec_runtime = 0, vtime = 0, cpu = 0,
		burst = 0, runtime = 0, runs = 0, enq_cnt = 0,
		wait_total = 0, wait_max = 0, wakeups = 0, woke_at = nil,
	}
	self.tasks[d.pid] = t
	self.pending[#self.pending + 1] = t
	return t
end

function Sim:ensure(n)
	if n > self.cap then
		self.cap = n * 2
		self.tbuf, self.obuf = H.batch(self.cap)
	end
end

-- Send pending tasks to the policy; check the decisions; queue the tasks.
function Sim:dispatch()
	local n = #self.pending
	if n == 0 then return end
	self:ensure(n)
	local tb, ob = self.tbuf, self.obuf
	for i = 0, n - 1 do
		local t = self.pending[i + 1]
		t.enq_cnt = t.enq_cnt + 1
		H.task(tb, i, {
			pid = t.pid, tgid = t.tgid, cpu = t.cpu, weight = t.weight,
			start_ts = t.start_ts, stop_ts = t.stop_ts, exec_runtime = t.exec_runtime,
			vtime = t.vtime, enq_cnt = t.enq_cnt,
		})
	end
	H.poison(ob, n)
	local m = self.P.schedule(tb, n, ob)
	local err = H.check(tb, n, ob, m, self.nr_cpus)
	if err then error("sim: bad decisions: " .. err, 2) end
	for i = 0, m - 1 do
		local o = ob[i]
		local t = self.tasks[o.pid]
		t.vtime = tonumber(o.vtime)
		t.slice = tonumber(o.slice_ns)
		if t.slice == 0 then t.slice = self.slice_default end
		self.seq = self.seq + 1
		t.qseq = self.seq
		t.queued_at = self.clock.t
		self.queue[#self.queue + 1] = t
		if self.opts.history then
			local h = self.history[t.pid]
			if not h then h = {}; self.history[t.pid] = h end
			h[#h + 1] = t.vtime
		end
	end
	self.pending = {}
end

local function before(a, b)
	if a.vtime ~= b.vtime then return a.vtime < b.vtime end
	return a.qseq < b.qseq
end

-- One tick: wake sleepers, dispatch, run one task. Returns the task that ran (or nil).
function Sim:tick()
	local now = self.clock.t
	local still = {}
	for _, t in ipairs(self.sleeping) do
		if t.wake_at <= now then
			t.exec_runtime = 0
			t.woke_at = t.wake_at
			self.pending[#self.pending + 1] = t
		else
			still[#still + 1] = t
		end
	end
	self.sleeping = still
	self:dispatch()
	self.ticks = self.ticks + 1
	if #self.queue == 0 then
		-- idle: jump to the next wakeup
		local nxt
		for _, t in ipairs(self.sleeping) do
			if not nxt or t.wake_at < nxt then nxt = t.wake_at end
		end
		if nxt then self.clock.t = nxt end
		return nil
	end
	local bi = 1
	for i = 2, #self.queue do
		if before(self.queue[i], self.queue[bi]) then bi = i end
	end
	local t = table.remove(self.queue, bi)
	if t.woke_at then
		local wait = now - t.woke_at   -- wakeup latency, from the moment it woke
		t.wait_total = t.wait_total + wait
		t.wakeups = t.wakeups + 1
		if wait > t.wait_max then t.wait_max = wait end
		t.woke_at = nil
	end
	local ran = t.slice
	local sleeps = false
	if t.run then
		local left = t.run - t.burst
		if left <= ran then ran = left; sleeps = true end
	end
	t.start_ts = now
	self.clock.t = now + ran
	t.stop_ts = self.clock.t
	t.exec_runtime = t.exec_runtime + ran
	t.runtime = t.runtime + ran
	t.runs = t.runs + 1
	t.cpu = 0
	if sleeps then
		t.burst = 0
		t.wake_at = self.clock.t + t.sleep
		self.sleeping[#self.sleeping + 1] = t
	else
		t.burst = t.burst + ran
		self.pending[#self.pending + 1] = t
	end
	return t
end

function Sim:run_for(ns)
	local stop = self.clock.t + ns
	while self.clock.t < stop do self:tick() end
end

function Sim:reset_stats()
	for _, t in pairs(self.tasks) do
		t.runtime = 0; t.runs = 0; t.wait_total = 0; t.wait_max = 0; t.wakeups = 0
	end
end

H.Sim = Sim
return H
