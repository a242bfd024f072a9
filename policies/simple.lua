-- simple.lua - weighted virtual time, or FIFO.
--
-- Weighted vtime mode (the default): each task's vruntime grows by the CPU time it used
-- times 100/weight (weight 100 = nice 0); the decision's vtime is that vruntime, so BPF
-- runs the task that is furthest behind first and CPU shares follow weights. A task new
-- to the scheduler starts at vtime_now (the vruntime of the tasks that ran lately, which
-- only moves forward); a task returning from sleep is pulled up to vtime_now - slice, so
-- sleeping earns at most one slice of credit.
--
-- FIFO mode: decisions get an increasing counter as vtime, so tasks run in the order they
-- became runnable; slice = slice_ns_default. Turn it on with
--   * the FIFO constant below (the file's default),
--   * ctx.fifo = true when the host (or a spec) calls init(ctx),
--   * or P.fifo = true at any time (checked once per batch).
--
-- Both modes honour strategies: priority -> vtime 0 (runs before everything else),
-- execution_time -> slice.
--
-- CPU: the task's previous CPU if it is idle (cache-warm) and no other task of the batch
-- got it, else RL_CPU_ANY. Every decision grants the fast path (g.FAST): a wake-up that
-- finds an idle CPU runs there at once and the policy is told afterwards.
--
-- State carried across a hot reload (save/restore): vtime_now, the pid -> vruntime table,
-- the FIFO counter.

local FIFO = false   -- true: this file schedules FIFO by default

local g = require "gthulhu.sched"

local tonumber, type = tonumber, type

local CPU_ANY = g.CPU_ANY
local FAST = g.FAST
local claim_idle_cpu = g.claim_idle_cpu
local begin_batch = g.begin_batch
local strategy_for = g.strategy_for
local now = g.now

local PRUNE_NS = 30e9   -- forget a pid not seen for this long

local P = { fifo = FIFO }

local vtime_now = 0
local fifo_seq = 0      -- last FIFO vtime handed out
local tasks_vr = g.pid_table(PRUNE_NS)
local vruntime = tasks_vr.value   -- pid -> vruntime
local last_seen = tasks_vr.seen   -- pid -> g.now() when last scheduled

local nr_cpus = 1
local slice_def = 2e7

function P.init(ctx)
	nr_cpus = g.nr_cpus()
	slice_def = g.slice_ns_default()
	if slice_def <= 0 then slice_def = 2e7 end
	if ctx ~= nil and ctx.fifo ~= nil then P.fifo = not not ctx.fifo end
end

function P.schedule(tasks, n, out)
	local fifo = P.fifo
	local vnow = vtime_now
	local seq = fifo_seq
	local t_now = now()
	begin_batch()
	for i = 0, n - 1 do
		local task = tasks[i]
		local pid = task.pid
		local o = out[i]
		o.pid = pid
		o.flags = FAST   -- its next wake-ups may take the fast path (g.FAST)

		local prio, slice = strategy_for(pid, task.tgid, slice_def)
		o.slice_ns = slice

		if fifo then
			if prio then
				o.vtime = 0
			else
				seq = seq + 1
				o.vtime = seq
			end
		else
			local w = tonumber(task.weight)
			if w <= 0 then w = 100 end
			local v
			if task.vtime == 0 then
				v = vnow
			else
				v = vruntime[pid]
				if v == nil then
					v = vnow
				elseif v < vnow - slice then
					v = vnow - slice
				end
			end
			if not prio and v > vnow then vnow = v end
			local start, stop = tonumber(task.start_ts), tonumber(task.stop_ts)
			if stop > start then v = v + (stop - start) * 100 / w end
			vruntime[pid] = v
			last_seen[pid] = t_now
			if prio then
				o.vtime = 0
			else
				o.vtime = v >= 1 and v or 1
			end
		end

		-- Its previous CPU if idle (each idle CPU goes to one task per batch).
		local cpu = claim_idle_cpu(task.cpu, false)
		o.cpu = cpu >= 0 and cpu or CPU_ANY
	end
	vtime_now = vnow
	fifo_seq = seq
	if not fifo then tasks_vr:prune(t_now) end
	return n
end

function P.save()
	return { vtime_now = vtime_now, fifo_seq = fifo_seq, tasks = tasks_vr:save() }
end

function P.restore(s)
	if type(s) ~= "table" then return end
	if type(s.vtime_now) == "number" and s.vtime_now > vtime_now then vtime_now = s.vtime_now end
	if type(s.fifo_seq) == "number" and s.fifo_seq > fifo_seq then fifo_seq = s.fifo_seq end
	tasks_vr:restore(s.tasks, now())
end

function P.vruntime(pid) return vruntime[pid] end
function P.vtime_now() return vtime_now end
function P.nr_tracked() return tasks_vr:count() end

return P
