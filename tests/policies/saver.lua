-- Test policy for where and how save() runs on a hot reload. Decides every task:
-- slice_ns = execution_time of the task's strategy, else 1000 + task index;
-- flags = calls (carried over save/restore); vtime = 1 + the thread id save() ran on, as
-- restored (1 if nothing was restored). save() does what $GTHULHU_SAVE_MODE says:
--   (unset) returns its state      gate: waits (sleeping) until the test binary's
--   test_save_gate() returns 1 or more, at most 2 s, then returns its state (and the
--   new state's restore() waits for 2 or more)
--   raise: raises                   fn: returns a function (cannot be carried over)
--   loop: never returns, interpreted (the watchdog's soft limit can stop it)
--   loop_jit: never returns, in a compiled trace (only the hard limit stops it)
local ffi = require "ffi"
local g = require "gthulhu.sched"
pcall(ffi.cdef, "int gettid(void);")
pcall(ffi.cdef, "int usleep(unsigned int usec);")
pcall(ffi.cdef, "int test_save_gate(void);")
local C = ffi.C
local P = { calls = 0, tid = 0 }

function P.schedule(tasks, n, out)
	P.calls = P.calls + 1
	for i = 0, n - 1 do
		local t, o = tasks[i], out[i]
		o.pid = t.pid
		o.cpu = g.CPU_ANY
		local _, slice = g.strategy_for(t.pid, t.tgid, 1000 + i)
		o.slice_ns = slice
		o.vtime = 1 + P.tid
		o.flags = P.calls
		o.enq_cnt = t.enq_cnt
	end
	return n
end

local function spin()
	local x = 0
	while true do x = x + 1 end
end
jit.off(spin)

local function spin_jit()
	local x = 0
	while true do x = x + 1 end
end

function P.save()
	local mode = os.getenv("GTHULHU_SAVE_MODE") or ""
	if mode == "gate" then
		for _ = 1, 2000 do
			if C.test_save_gate() ~= 0 then break end
			C.usleep(1000)
		end
	elseif mode == "raise" then
		error("save failed on purpose")
	elseif mode == "fn" then
		return { calls = P.calls, f = print }
	elseif mode == "loop" then
		spin()
	elseif mode == "loop_jit" then
		spin_jit()
	end
	return { calls = P.calls, tid = C.gettid() }
end

function P.restore(s)
	if os.getenv("GTHULHU_SAVE_MODE") == "gate" then   -- and the new state's restore() 2
		for _ = 1, 2000 do
			if C.test_save_gate() >= 2 then break end
			C.usleep(1000)
		end
	end
	P.calls = s.calls
	P.tid = s.tid
end

return P
