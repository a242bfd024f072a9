-- probe.lua - checks, from inside the policy, what the simulator promises: the topology
-- (ctx.topology, for the idle-CPU search), g.now() is the
-- virtual clock (it starts near 0 and never passes the workload's duration, unlike
-- CLOCK_MONOTONIC), it never goes backwards, and the idle bitmap shows idle CPUs (4 CPUs,
-- one hog: some CPU is idle in every batch). Any violation raises, which fails the run.
local g = require "gthulhu.sched"
local P = {}
local last = -1

-- The workload of its case has 4 CPUs, SMT 2, one LLC: the policy must see that topology.
local function same(a, b)
	if #a ~= #b then return false end
	for i = 1, #a do if a[i] ~= b[i] then return false end end
	return true
end
function P.init(ctx)
	local t = ctx.topology
	if not (t and same(t[0].l2, {0, 1}) and same(t[3].l2, {2, 3}) and same(t[1].l3, {0, 1, 2, 3})) then
		error("ctx.topology is not the simulated one (4 CPUs, smt 2, llc 4)")
	end
	if g.nr_cpus() ~= 4 then error("nr_cpus " .. g.nr_cpus()) end
end
function P.schedule(tasks, n, out)
	local t = g.now()
	if t < last then error("g.now() went backwards") end
	if t > 1.5e9 then error("g.now() is not the virtual clock: " .. t) end
	last = t
	local idle = g.begin_batch()
	if idle < 1 then error("no idle CPU in the bitmap with 4 CPUs and 1 hog") end
	for i = 0, n - 1 do
		local task, o = tasks[i], out[i]
		o.pid = task.pid; o.flags = 0; o.slice_ns = 0; o.cpu = g.CPU_ANY
		o.vtime = task.vtime + 1
	end
	return n
end
return P
