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
--                runs before every other task) and .flags. enq_cnt is filled in by the host.
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

local ffi = require "ffi"
local bit = require "bit"
require "gthulhu.cdef"

local C = ffi.C
local band, lshift, rshift = bit.band, bit.lshift, bit.rshift
local floor, huge = math.floor, math.huge
local type, pairs, tostring, tonumber = type, pairs, tostring, tonumber
local sformat, concat = string.format, table.concat

-- clock_gettime with our own struct name, so we never clash with another cdef of timespec.
pcall(ffi.cdef, "typedef struct { long sec; long nsec; } gthulhu_timespec_t;")
pcall(ffi.cdef, "int clock_gettime(int clk, gthulhu_timespec_t *tp);")

local g = {}

g.ffi = ffi
g.CPU_ANY = tonumber(C.RL_CPU_ANY)
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

-- Bit `cpu` of the 64-bit-word bitmap, read as 32-bit words (no 64-bit boxing).
local function cpu_idle(cpu)
	if idle32 == nil or cpu < 0 or cpu >= nr_cpus then return false end
	local w = rshift(cpu, 5)
	if not little then w = w + 1 - 2 * band(w, 1) end   -- swap the halves of each u64
	return band(idle32[w], lshift(1, band(cpu, 31))) ~= 0
end
g.cpu_idle = cpu_idle

local function idle_in(list, skip)
	if list == nil then return -1 end
	for i = 1, #list do
		local c = list[i]
		if c ~= skip and cpu_idle(c) then return c end
	end
	return -1
end

-- prev if idle, else an idle L2 sibling, then L3 sibling, then any idle CPU, else -1.
function g.pick_idle_cpu(prev)
	if idle32 == nil then return -1 end
	if prev ~= nil and prev >= 0 and prev < nr_cpus then
		if cpu_idle(prev) then return prev end
		local t = topology and topology[prev]
		if t then
			local c = idle_in(t.l2, prev)
			if c >= 0 then return c end
			c = idle_in(t.l3, prev)
			if c >= 0 then return c end
		end
	end
	local words = rshift(nr_cpus + 31, 5)
	for w = 0, words - 1 do
		local idx = w
		if not little then idx = w + 1 - 2 * band(w, 1) end
		local v = idle32[idx]
		if v ~= 0 then
			for b = 0, 31 do
				if band(v, lshift(1, b)) ~= 0 then
					local c = w * 32 + b
					if c < nr_cpus then return c end
					return -1
				end
			end
		end
	end
	return -1
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
