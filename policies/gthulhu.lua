-- gthulhu.lua - the default policy: weighted virtual runtime with deadlines.
--
-- Every task has a vruntime that grows by the CPU time it used, scaled by 100/weight
-- (weight 100 = nice 0), so heavier tasks age slower and get a proportionally larger
-- share of the CPU. The scheduler keeps a global vtime_now: the vruntime of the tasks it
-- has been running lately (it only moves forward). A task new to the scheduler starts at
-- vtime_now; a task coming back after sleeping is pulled up to vtime_now - slice_ns_default,
-- so sleeping earns at most one (default) slice of credit. The default slice, not the
-- task's own: with ~1 ms slices and a 4 ms timer tick, a runnable task that merely waited
-- its turn behind a lower-weight one would otherwise lose the credit its weight earned.
--
-- The decision's vtime is a deadline: vruntime plus the CPU time the task used since it
-- last slept (in virtual time, capped at 100 minimum slices). A task that runs briefly
-- and sleeps (interactive) keeps a small offset and goes ahead of a CPU hog with the same
-- vruntime. The cap is expressed in virtual time so that hogs of different weights get
-- the same offset and their CPU shares still follow their weights; for nice-0 tasks it is
-- exactly min(exec_runtime, 100 * slice).
--
-- Slice: slice_ns_min * weight / 100, clamped to [slice_ns_min / 8, slice_ns_default],
-- unless a strategy sets execution_time. A strategy with priority gets vtime 0 (runs
-- before everything else).
--
-- CPU: an idle CPU (prev first, then cache neighbours, then any) when the task may run
-- there, else RL_CPU_ANY and BPF picks. One idle CPU is handed out at most once per batch.
-- Every decision grants the fast path (g.FAST): a wake-up that finds an idle CPU (or a
-- sync waker's CPU) runs there at once with the task's slice; its record comes afterwards
-- flagged g.PLACED and is charged like any other.
--
-- State: vtime_now and a table pid -> vruntime (plus pid -> last time seen). Entries not
-- seen for PRUNE_NS are dropped a few per batch, so the table stays bounded without a
-- full scan. save()/restore() carry both across a hot reload.
--
-- Hot path: no allocation per task (the per-pid tables only grow when a new pid shows up).

local g = require "gthulhu.sched"

local tonumber, type = tonumber, type

local CPU_ANY = g.CPU_ANY
local FAST = g.FAST
local claim_idle_cpu = g.claim_idle_cpu
local begin_batch = g.begin_batch
local strategy_for = g.strategy_for
local now = g.now

local PRUNE_NS = 30e9        -- forget a pid not seen for this long
local EXEC_CAP_SLICES = 100  -- deadline offset cap, in minimum slices of virtual time

local P = {}

-- Policy state (see save/restore).
local vtime_now = 0
local tasks_vr = g.pid_table(PRUNE_NS)
local vruntime = tasks_vr.value   -- pid -> vruntime (ns, virtual)
local last_seen = tasks_vr.seen   -- pid -> g.now() of the last batch the pid was in

-- Settings cached by init().
local nr_cpus = 1
local slice_min = 5e5
local slice_max = 2e7
local slice_floor = 5e5 / 8
local exec_cap = 100 * 5e5


function P.init(ctx)
	nr_cpus = g.nr_cpus()
	slice_min = g.slice_ns_min()
	slice_max = g.slice_ns_default()
	if slice_min <= 0 then slice_min = 5e5 end
	if slice_max < slice_min then slice_max = slice_min end
	slice_floor = slice_min / 8
	exec_cap = EXEC_CAP_SLICES * slice_min
end

function P.schedule(tasks, n, out)
	local t_now = now()
	begin_batch()
	local vnow = vtime_now
	for i = 0, n - 1 do
		local task = tasks[i]
		local pid = task.pid
		local w = tonumber(task.weight)
		if w <= 0 then w = 100 end

		local slice = slice_min * w / 100
		if slice < slice_floor then slice = slice_floor elseif slice > slice_max then slice = slice_max end
		local prio
		prio, slice = strategy_for(pid, task.tgid, slice)

		-- vruntime before charging the last run.
		local v
		if task.vtime == 0 then
			v = vnow
		else
			v = vruntime[pid]
			if v == nil then
				v = vnow
			elseif v < vnow - slice_max then
				v = vnow - slice_max
			end
		end
		-- The task was picked to run at about vruntime v: the scheduler's clock has reached
		-- it (priority tasks run out of order and do not move the clock).
		if not prio and v > vnow then vnow = v end

		local start, stop = tonumber(task.start_ts), tonumber(task.stop_ts)
		if stop > start then v = v + (stop - start) * 100 / w end
		vruntime[pid] = v
		last_seen[pid] = t_now

		local o = out[i]
		o.pid = pid
		o.flags = FAST   -- its next wake-ups may take the fast path (g.FAST)
		o.slice_ns = slice
		if prio then
			o.vtime = 0
		else
			local vexec = tonumber(task.exec_runtime) * 100 / w
			if vexec > exec_cap then vexec = exec_cap end
			local d = v + vexec
			if d < 1 then d = 1 end
			o.vtime = d
		end

		-- An idle CPU (each given to one task per batch): its own, or any for a task
		-- that may run everywhere; else the shared queue.
		local cpu = claim_idle_cpu(task.cpu, task.nr_cpus_allowed >= nr_cpus)
		o.cpu = cpu >= 0 and cpu or CPU_ANY
	end
	vtime_now = vnow
	tasks_vr:prune(t_now)
	return n
end

-- Hot reload: a plain table, numbers only.
function P.save()
	return { vtime_now = vtime_now, tasks = tasks_vr:save() }
end

function P.restore(s)
	if type(s) ~= "table" then return end
	if type(s.vtime_now) == "number" and s.vtime_now > vtime_now then vtime_now = s.vtime_now end
	tasks_vr:restore(s.tasks, now())
end

-- For tests and stats: current state without copying.
function P.vruntime(pid) return vruntime[pid] end
function P.vtime_now() return vtime_now end
function P.nr_tracked() return tasks_vr:count() end

return P
