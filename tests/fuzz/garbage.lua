-- garbage.lua - the policy of the fuzz_pol target (tests/fuzz/fuzz_pol.c). It decides
-- nothing itself: every call, it copies the raw decisions the fuzzer prepared in the
-- exported C global `fuzz_pol_plan` into `out`, and returns what the plan says (a number
-- that may be negative, fractional, NaN, larger than n; or nil, a string, a table, a
-- boxed uint64, no value at all, or an error after writing). Nothing is checked here.
local ffi = require "ffi"
require "gthulhu.cdef"
local C = ffi.C

ffi.cdef [[
struct fuzz_pol_plan {
	int32_t action;
	int32_t nwrite;
	double ret;
	struct dispatched_task_ctx dec[64];   /* 64 = FZ_BATCH in fuzz_pol.c; init checks the size */
};
struct fuzz_pol_plan fuzz_pol_plan;
const uint32_t fuzz_pol_plan_size;
]]

local P = {}
local plan, DSZ

function P.init(ctx)
	plan = C.fuzz_pol_plan
	DSZ = ffi.sizeof("struct dispatched_task_ctx")
	assert(ffi.sizeof("struct fuzz_pol_plan") == C.fuzz_pol_plan_size,
	       "struct fuzz_pol_plan differs between fuzz_pol.c and garbage.lua")
end

function P.schedule(tasks, n, out)
	local w = plan.nwrite
	if w > 0 then ffi.copy(out, plan.dec, w * DSZ) end
	local a = plan.action
	if a == 0 then return plan.ret
	elseif a == 1 then return nil
	elseif a == 2 then return "many"
	elseif a == 3 then error("fuzz_pol: an error after writing " .. w .. " decisions")
	elseif a == 4 then return
	elseif a == 5 then return {}
	elseif a == 6 then return plan.dec[0].vtime   -- a uint64_t cdata, not a number
	end
	return plan.ret, "a second value"
end

return P
