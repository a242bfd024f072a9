-- probe.lua - the bench's Lua memory probe. Loads the policy named by $BENCH_POLICY and
-- returns that same table (so schedule() is the policy's own, no extra layer), with
-- on_strategies wrapped: the bench calls pol_set_strategies() as a side door into the
-- policy's Lua state, and the probe answers through two FFI functions of the bench binary.
--   command 1: full collect, report live KB     2: full collect, stop the GC, report KB
--   command 3: report KB (no collect)           4: restart the GC, report KB
local ffi = require "ffi"
ffi.cdef [[
int bench_probe_cmd(void);
void bench_probe_report(double kb);
]]
local C = ffi.C

local path = os.getenv("BENCH_POLICY")
assert(path, "probe.lua: set BENCH_POLICY to the policy file")
local P = dofile(path)
local inner = P.on_strategies

function P.on_strategies(list)
	if inner then inner(list) end
	local cmd = C.bench_probe_cmd()
	if cmd == 1 or cmd == 2 then collectgarbage("collect") end
	if cmd == 2 then collectgarbage("stop") end
	if cmd == 4 then collectgarbage("restart") end
	C.bench_probe_report(collectgarbage("count"))
end

return P
