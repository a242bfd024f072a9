-- SPDX-License-Identifier: GPL-2.0
--
-- gthulhu.sched - the library every policy shares:   local g = require "gthulhu.sched"
--
-- POLICY CONTRACT
--   A policy file returns a table P:
--     P.init(ctx)                optional. Called once after the host called g.setup(ctx).
--     P.schedule(tasks, n, out)  required. Returns m, the number of decisions written.
--         tasks  `struct queued_task_ctx *`, 0-based, n entries (tasks[0] .. tasks[n-1]):
--                pid, tgid, cpu (last CPU), nr_cpus_allowed, flags (enqueue flags),
--                start_ts, stop_ts, exec_runtime, weight (100 = nice 0), vtime, enq_cnt, comm.
--         out    `struct dispatched_task_ctx *`, room for ctx.batch_max entries.
--                For each decision i in 0 .. m-1 set out[i].pid, .cpu (a CPU id or g.CPU_ANY
--                for the shared queue), .slice_ns (0 = default slice), .vtime (0 = priority:
--                runs before every other task) and .flags (g.FAST or g.fast_path(ns): grant
--                the task the fast path, below; 0: deny it). enq_cnt is filled in by the host.
--         The fast path: a task granted it whose next wake-up finds an idle CPU it may use (or
--         whose waker is about to sleep on a CPU it may use) runs there at once, in BPF, with
--         the decision's slice (or the smaller one given to g.fast_path), without waiting for
--         the policy; the policy then gets its record with RL_ENQ_PLACED set in .flags and no
--         decision is sent for it. A policy that never grants it decides every wake-up.
--         The host validates every decision (pid of this batch, not decided twice, CPU in
--         range) and decides every task the policy left out itself (shared queue, the task's
--         own vtime, default slice). An error in schedule() costs quality, never a task.
--     P.on_strategies(list)      optional. list = { {pid=, priority=bool, execution_time=ns}, ...}.
--                                The host calls g.set_strategies(list) first, so g.strategy()
--                                already answers with the new list.
--     P.save() -> value          optional. Hot reload: the old policy's state, as plain Lua
--                                data (see g.serialize for what may be in it).
--     P.restore(value)           optional. Hot reload: the new policy gets that value.
--   schedule() runs on the scheduler's hot path: avoid allocating per task (no tables, no
--   string building, no closures); call only FFI functions in loops. A schedule() call that
--   runs longer than the host's soft limit (200 ms) is interrupted with an error (in
--   interpreted code); one stuck in compiled code past the hard limit (3 s) ends the
--   process, and the kernel's own scheduler takes over.
--
-- ctx (g.setup): nr_cpus, slice_ns_default, slice_ns_min, batch_max (numbers);
--   topology = { [cpu] = { l2 = {cpu, ...}, l3 = {cpu, ...} } } with 0-based cpu keys, or nil
--   (every CPU alone); idle = `const volatile uint64_t *` bitmap of MAX_CPUS/64 words, or nil;
--   now = optional function returning ns (a simulator's virtual clock).
--
-- API: g.CPU_ANY, g.FAST, g.FAST_QUEUE, g.fast_path(slice_ns), g.PLACED, g.MAX_BATCH, g.MAX_CPUS, g.ffi, g.ctx; g.setup(ctx); g.now(); g.nr_cpus();
--   g.slice_ns_default(); g.slice_ns_min(); g.cpu_idle(cpu); g.pick_idle_cpu(prev);
--   g.begin_batch() then g.claim_idle_cpu(prev, may_migrate) per task (idle CPUs from a
--   per-batch snapshot, each to one task); g.set_strategies(list); g.strategy(pid, tgid);
--   g.strategy_for(pid, tgid, slice) -> priority, slice; g.pid_table(forget_ns);
--   g.serialize(v); g.deserialize(s).

local ffi = require "ffi"
local bit = require "bit"
require "gthulhu.cdef"

local C = ffi.C
local band, lshift, rshift = bit.band, bit.lshift, bit.rshift
local floor, huge = math.floor, math.huge
local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local next, setmetatable = next, setmetatable
local sformat, concat = string.format, table.concat

-- clock_gettime with our own struct name, so we never clash with another cdef of timespec.
pcall(ffi.cdef, "typedef struct { long sec; long nsec; } gthulhu_timespec_t;")
pcall(ffi.cdef, "int clock_gettime(int clk, gthulhu_timespec_t *tp);")

local g = {}

g.ffi = ffi
g.CPU_ANY = tonumber(C.RL_CPU_ANY)
g.FAST = tonumber(C.RL_DISP_FAST)       -- decision flags: grant the fast path (decision's slice)
g.FAST_QUEUE = tonumber(C.RL_DISP_FAST_QUEUE)  -- ... also queue busy wake-ups in BPF (add to g.FAST)
g.PLACED = tonumber(C.RL_ENQ_PLACED)    -- task flags: BPF ran it on the fast path already
local FAST_SLICE_UNIT = 2 ^ tonumber(C.RL_DISP_FAST_SLICE_SHIFT)

-- Decision flags that grant the fast path with a slice of at most slice_ns there (rounded
-- down to whole microseconds, within [1 us, 2^20 us]: above every slice BPF allows, and
-- the flags stay exact in a Lua number).
function g.fast_path(slice_ns)
	local us = floor((tonumber(slice_ns) or 0) / 1000)
	if us < 1 then us = 1 elseif us > 1048576 then us = 1048576 end
	return g.FAST + us * FAST_SLICE_UNIT
end
g.MAX_BATCH = tonumber(C.MAX_BATCH)
g.MAX_CPUS = tonumber(C.MAX_CPUS)

local MAX_CPUS = g.MAX_CPUS
local CLOCK_MONOTONIC = 1
local ts = ffi.new("gthulhu_timespec_t")   -- preallocated: g.now() allocates nothing

-- State set by g.setup(); upvalues so the hot functions do no table lookups on g.
local nr_cpus, slice_default, slice_min = 1, 20e6, 1e6
local topology = nil
local idle32 = nil       -- the idle bitmap seen as 32-bit words (plain Lua numbers on read)
local little = ffi.abi("le")
local now_fn = nil

g.ctx = nil

local function mono_now()
	C.clock_gettime(CLOCK_MONOTONIC, ts)
	return tonumber(ts.sec) * 1e9 + tonumber(ts.nsec)
end

local build_pref   -- defined with the idle-CPU code below

function g.setup(ctx)
	ctx = ctx or {}
	if type(ctx.nr_cpus) ~= "number" or ctx.nr_cpus < 1 then ctx.nr_cpus = 1 end
	if ctx.nr_cpus > MAX_CPUS then ctx.nr_cpus = MAX_CPUS end
	if type(ctx.slice_ns_default) ~= "number" or ctx.slice_ns_default <= 0 then
		ctx.slice_ns_default = 20e6
	end
	if type(ctx.slice_ns_min) ~= "number" or ctx.slice_ns_min <= 0 then ctx.slice_ns_min = 1e6 end
	if type(ctx.batch_max) ~= "number" or ctx.batch_max < 1 then ctx.batch_max = 4096 end
	nr_cpus = floor(ctx.nr_cpus)
	slice_default = ctx.slice_ns_default
	slice_min = ctx.slice_ns_min
	topology = type(ctx.topology) == "table" and ctx.topology or nil
	build_pref()
	if ctx.idle ~= nil then
		idle32 = ffi.cast("const volatile uint32_t *", ctx.idle)
	else
		idle32 = nil
	end
	now_fn = type(ctx.now) == "function" and ctx.now or nil
	g.ctx = ctx
	return ctx
end

function g.now()
	if now_fn then return now_fn() end
	return mono_now()
end

function g.nr_cpus() return nr_cpus end
function g.slice_ns_default() return slice_default end
function g.slice_ns_min() return slice_min end

-- Idle CPUs. The host's bitmap is MAX_CPUS/64 uint64 words; we read it as 32-bit words
-- (no 64-bit boxing). wordidx(w) maps logical 32-bit word w (CPUs 32w..32w+31) to its
-- index in that view: the same on little-endian, the halves swapped on big-endian.
local function wordidx(w)
	if little then return w end
	return w + 1 - 2 * band(w, 1)
end

-- Bit `cpu` of the live bitmap.
local function cpu_idle(cpu)
	if idle32 == nil or cpu < 0 or cpu >= nr_cpus then return false end
	return band(idle32[wordidx(rshift(cpu, 5))], lshift(1, band(cpu, 31))) ~= 0
end
g.cpu_idle = cpu_idle

-- Cache neighbourhoods as bitmasks, built once in g.setup(): for CPU c, word w of its L2
-- mask is l2m[c * nwords + w] (likewise l3m); allm has a bit for every CPU < nr_cpus.
-- The search below is then a few AND operations over nwords 32-bit words (1 up to 32
-- CPUs): loops whose trip count never changes, which LuaJIT compiles into the policy's own
-- loop. (A walk over sibling lists, with a different length each time, kept the policy's
-- loop from compiling cleanly: side traces, aborts, allocations per task.)
local nwords = 1
local l2m = ffi.new("uint32_t[1]")
local l3m = ffi.new("uint32_t[1]")
local allm = ffi.new("uint32_t[1]")

-- Bit position of a 32-bit value with one bit set (keys are bit.band results, so 1<<31
-- is the negative number bit.lshift gives).
local bitpos = {}
for b = 0, 31 do bitpos[lshift(1, b)] = b end

build_pref = function()
	nwords = rshift(nr_cpus + 31, 5)
	l2m = ffi.new("uint32_t[?]", nr_cpus * nwords)
	l3m = ffi.new("uint32_t[?]", nr_cpus * nwords)
	allm = ffi.new("uint32_t[?]", nwords)
	local function set(arr, base, x)
		if type(x) == "number" and x >= 0 and x < nr_cpus then
			local w = base + rshift(x, 5)
			arr[w] = bit.bor(arr[w], lshift(1, band(x, 31)))
		end
	end
	for c = 0, nr_cpus - 1 do
		set(allm, 0, c)
		local base = c * nwords
		set(l2m, base, c)
		set(l3m, base, c)
		local t = topology and topology[c]
		if type(t) == "table" then
			for _, x in ipairs(type(t.l2) == "table" and t.l2 or {}) do set(l2m, base, x) end
			for _, x in ipairs(type(t.l3) == "table" and t.l3 or {}) do set(l3m, base, x) end
		end
	end
end

-- Lowest idle CPU in `bits` (32-bit words; `live`: the host's bitmap, else logical order)
-- within `mask` (words base .. base + nwords - 1), or -1.
local function first_in(bits, live, mask, base)
	for w = 0, nwords - 1 do
		local v = band(bits[live and wordidx(w) or w], mask[base + w])
		if v ~= 0 then return w * 32 + bitpos[band(v, -v)] end
	end
	return -1
end

-- prev if idle; if `any`, else an idle CPU sharing its L2, then its L3, then any; or -1.
local function search(bits, live, prev, any)
	if prev >= 0 and prev < nr_cpus then
		local wi = rshift(prev, 5)
		if live then wi = wordidx(wi) end
		if band(bits[wi], lshift(1, band(prev, 31))) ~= 0 then return prev end
		if not any then return -1 end
		local base = prev * nwords
		local c = first_in(bits, live, l2m, base)
		if c >= 0 then return c end
		c = first_in(bits, live, l3m, base)
		if c >= 0 then return c end
	elseif not any then
		return -1
	end
	return first_in(bits, live, allm, 0)
end

-- prev if idle, else an idle L2 sibling, then L3 sibling, then any idle CPU, else -1.
-- Reads the live bitmap and claims nothing (see g.claim_idle_cpu for batches).
function g.pick_idle_cpu(prev)
	if idle32 == nil then return -1 end
	if prev == nil then prev = -1 end
	return search(idle32, true, prev, true)
end

-- Per-batch idle CPUs: g.begin_batch() snapshots the bitmap once; g.claim_idle_cpu()
-- then hands each idle CPU to at most one task of the batch. With no idle CPU left (the
-- usual case under load) a claim costs one comparison: no loop at all.
local snap = ffi.new("uint32_t[?]", MAX_CPUS / 32)
local nidle = 0
local popcnt8 = ffi.new("uint8_t[256]")
for i = 1, 255 do popcnt8[i] = popcnt8[rshift(i, 1)] + band(i, 1) end

function g.begin_batch()
	nidle = 0
	if idle32 == nil then return 0 end
	for w = 0, nwords - 1 do
		local v = idle32[wordidx(w)]
		if w == nwords - 1 and band(nr_cpus, 31) ~= 0 then
			v = band(v, lshift(1, band(nr_cpus, 31)) - 1)   -- no bits past nr_cpus
		end
		snap[w] = v
		if v ~= 0 then
			nidle = nidle + popcnt8[band(v, 255)] + popcnt8[band(rshift(v, 8), 255)]
				+ popcnt8[band(rshift(v, 16), 255)] + popcnt8[rshift(v, 24)]
		end
	end
	return nidle
end

-- An idle CPU for a task last on `prev`, from this batch's snapshot: prev itself if idle;
-- if `may_migrate`, else its nearest idle sibling (L2, then L3) or any idle CPU. The CPU is
-- removed from the snapshot. -1 if none.
function g.claim_idle_cpu(prev, may_migrate)
	if nidle == 0 then return -1 end
	local c = search(snap, false, prev, may_migrate)
	if c >= 0 then
		local w = rshift(c, 5)
		snap[w] = band(snap[w], bit.bnot(lshift(1, band(c, 31))))
		nidle = nidle - 1
	end
	return c
end

-- Strategies: pid -> entry; a task matches by its pid, then by its process (tgid).
local strat_by_pid = {}

function g.set_strategies(list)
	local t = {}
	if type(list) == "table" then
		for i = 1, #list do
			local e = list[i]
			if type(e) == "table" and type(e.pid) == "number" and t[e.pid] == nil then
				t[e.pid] = e
			end
		end
	end
	strat_by_pid = t
end

function g.strategy(pid, tgid)
	local e = strat_by_pid[pid]
	if e ~= nil then return e end
	if tgid ~= nil then return strat_by_pid[tgid] end
	return nil
end

-- What the task's strategy (if any) makes of it: priority (boolean) and the slice, which
-- is `slice` unless the strategy sets an execution_time. Two return values, no table.
function g.strategy_for(pid, tgid, slice)
	local e = strat_by_pid[pid]
	if e == nil then e = strat_by_pid[tgid] end
	if e == nil then return false, slice end
	local et = e.execution_time
	if et ~= nil and et > 0 then slice = et end
	return e.priority == true, slice
end

-- Per-task numbers keyed by pid that forget tasks not seen for `forget_ns`:
--   local vr = g.pid_table(30e9)
--   vr.value[pid] = v; vr.seen[pid] = g.now()   -- plain tables: index them in schedule()
--   vr:prune(g.now())                            -- once per batch: checks a few entries
-- so the tables stay bounded on a machine that runs millions of short-lived processes,
-- without ever scanning them whole. vr:save() / vr:restore(s, now) carry them across a
-- hot reload (restore fills the same tables, so upvalues holding them stay valid);
-- vr:count() counts the entries.
local PT = {}
PT.__index = PT

function g.pid_table(forget_ns, per_batch)
	return setmetatable({ value = {}, seen = {}, forget_ns = forget_ns or 30e9,
			      per_batch = per_batch or 8, cursor = nil }, PT)
end

-- The cursor is the key examined last and never the one removed (next() from it reaches
-- the successor of a removed entry), so it is always a live key: next() stays valid even
-- after inserts resized the table.
function PT:prune(t)
	local value, seen, forget = self.value, self.seen, self.forget_ns
	local k = self.cursor
	if k ~= nil and value[k] == nil then k = nil end
	for _ = 1, self.per_batch do
		local nk = next(value, k)
		if nk == nil then k = nil; break end  -- end of the table: restart next batch
		local s = seen[nk]
		if s == nil or t - s > forget then
			value[nk] = nil
			seen[nk] = nil
		else
			k = nk
		end
	end
	self.cursor = k
end

function PT:save()
	local v, s = {}, {}
	for pid, x in next, self.value do v[pid] = x end
	for pid, x in next, self.seen do s[pid] = x end
	return { value = v, seen = s }
end

function PT:restore(saved, t)
	if type(saved) ~= "table" or type(saved.value) ~= "table" then return end
	local seen = type(saved.seen) == "table" and saved.seen or {}
	for pid, x in next, saved.value do
		if type(pid) == "number" and type(x) == "number" then
			self.value[pid] = x
			self.seen[pid] = type(seen[pid]) == "number" and seen[pid] or t
		end
	end
	self.cursor = nil
end

function PT:count()
	local c = 0
	for _ in next, self.value do c = c + 1 end
	return c
end

-- Serialization for hot reload: a Lua expression that rebuilds the value exactly.
local function ser_number(v)
	if v ~= v then return "0/0" end
	if v == huge then return "1/0" end
	if v == -huge then return "-1/0" end
	if v == 0 and 1 / v < 0 then return "-0.0" end
	if v == floor(v) and v > -2^53 and v < 2^53 then return sformat("%d", v) end
	return sformat("%.17g", v)
end

local function ser(v, buf, visiting)
	local tv = type(v)
	if tv == "nil" then buf[#buf + 1] = "nil"
	elseif tv == "boolean" then buf[#buf + 1] = v and "true" or "false"
	elseif tv == "number" then buf[#buf + 1] = ser_number(v)
	elseif tv == "string" then buf[#buf + 1] = sformat("%q", v)
	elseif tv == "table" then
		if visiting[v] then error("serialize: cycle in table", 0) end
		visiting[v] = true
		buf[#buf + 1] = "{"
		for k, x in pairs(v) do
			local tk = type(k)
			if tk ~= "number" and tk ~= "string" then
				error("serialize: table key of type " .. tk, 0)
			end
			buf[#buf + 1] = "["
			ser(k, buf, visiting)
			buf[#buf + 1] = "]="
			ser(x, buf, visiting)
			buf[#buf + 1] = ","
		end
		buf[#buf + 1] = "}"
		visiting[v] = nil
	else
		error("serialize: cannot serialize a " .. tv, 0)
	end
end

function g.serialize(v)
	local buf = {}
	ser(v, buf, {})
	return concat(buf)
end

function g.deserialize(s)
	if type(s) ~= "string" then error("deserialize: expected a string, got " .. type(s), 2) end
	local f, err = loadstring("return " .. s, "=serialized state")
	if not f then error("deserialize: " .. tostring(err), 2) end
	setfenv(f, {})
	return f()
end

return g
