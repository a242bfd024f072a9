-- Test policy: tries to rewrite the task array, as $GTHULHU_TEST_MODE names (read at init).
--   const_write  tasks[0].pid = ... through the const pointer the host hands out (a Lua error)
--   cast_write   the same through ffi.cast to a non-const pointer (the page is read-only:
--                the host reports it and exits)
--   out_past     writes out[batch_max] (a guard page: reported, exit)
--   tasks_past   reads tasks[batch_max] (a guard page: reported, exit)
--   rw_forge     the test binary's test_pol_forge() rewrites pid/enq_cnt of task 0 in the
--                host's own (writable) view during the call, then the policy decides the
--                forged pid: the host validates against its copy, so it is rejected
-- Every mode then decides every task as it now reads it.
local ffi = require "ffi"
local g = require "gthulhu.sched"
local P = {}
local mode, batch_max

function P.init(ctx)
	mode = os.getenv("GTHULHU_TEST_MODE") or "none"
	batch_max = ctx.batch_max
	if mode == "rw_forge" then
		ffi.cdef "void test_pol_forge(int i, int32_t pid, uint64_t enq_cnt);"
	end
end

function P.schedule(tasks, n, out)
	if mode == "const_write" then
		tasks[0].pid = 999999
	elseif mode == "cast_write" then
		local w = ffi.cast("struct queued_task_ctx *", tasks)
		w[0].pid = 999999
		w[0].enq_cnt = 7
	elseif mode == "out_past" then
		out[batch_max].pid = 1
	elseif mode == "tasks_past" then
		local x = tasks[batch_max].pid
		if x == 12345 then n = n + 1 end
	elseif mode == "rw_forge" then
		ffi.C.test_pol_forge(0, 999999, 7)
	end
	for i = 0, n - 1 do
		local o = out[i]
		o.pid = tasks[i].pid
		o.cpu = g.CPU_ANY
		o.vtime = 10
		o.slice_ns = 0
		o.flags = 0
	end
	return n
end

return P
