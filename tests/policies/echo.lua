-- Test policy: decides every task, in reverse order, with values the test can predict.
-- slice_ns = 1000 + task index, vtime = weight * 7 + 1, cpu = the task's cpu,
-- flags = calls + 65536 * (strategies seen); a strategy overrides slice/vtime/cpu.
local g = require "gthulhu.sched"
local P = { calls = 0, nstrat = 0 }

function P.init(ctx)
	assert(ctx.nr_cpus == g.nr_cpus(), "ctx.nr_cpus")
	assert(ctx.batch_max >= 1, "ctx.batch_max")
	for c = 0, ctx.nr_cpus - 1 do
		local t = ctx.topology[c]
		assert(type(t) == "table" and #t.l2 >= 1 and #t.l3 >= 1, "ctx.topology")
	end
	P.ctx = ctx
end

function P.schedule(tasks, n, out)
	P.calls = P.calls + 1
	local flags = P.calls + 65536 * P.nstrat
	for i = 0, n - 1 do
		local t = tasks[i]
		local o = out[n - 1 - i]
		o.pid = t.pid
		o.cpu = t.cpu
		o.slice_ns = 1000 + i
		o.vtime = t.weight * 7 + 1
		o.flags = flags
		o.enq_cnt = 0
		local s = g.strategy(t.pid, t.tgid)
		if s then
			o.cpu = g.CPU_ANY
			o.slice_ns = s.execution_time
			if s.priority then o.vtime = 0 end
		end
	end
	return n
end

function P.on_strategies(list) P.nstrat = #list end

function P.save() return { calls = P.calls, nstrat = P.nstrat, blob = "a\0b\255" } end

function P.restore(s)
	assert(s.blob == "a\0b\255", "state blob survived")
	P.calls = s.calls
end

return P
