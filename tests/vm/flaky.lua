-- flaky.lua - VM test policy: policies/gthulhu.lua, except that every Nth schedule() call
-- raises a Lua error. The host must fall back to its built-in decision for that batch,
-- count nr_policy_errors / nr_policy_fallbacks, and keep the scheduler attached.
--
-- The host loads gthulhu.sched from <policy dir>/lib: tests/vm/lib is a symlink to
-- ../../policies/lib (scripts/vm.sh makes the same link in the VM image). The wrapped policy
-- is ../../policies/gthulhu.lua relative to this file, or $GTHULHU_POLICY_DIR/gthulhu.lua.

local FAIL_EVERY = tonumber(os.getenv("FLAKY_EVERY") or "") or 7

local here = (debug.getinfo(1, "S").source or ""):match("^@(.*)/[^/]*$") or "."
local pdir = os.getenv("GTHULHU_POLICY_DIR") or (here .. "/../../policies")
package.path = pdir .. "/lib/?.lua;" .. package.path

local P = dofile(pdir .. "/gthulhu.lua")
assert(type(P) == "table" and type(P.schedule) == "function",
	"flaky.lua: " .. pdir .. "/gthulhu.lua did not return a policy table")

local inner = P.schedule
local calls = 0
local W = {}
for k, v in pairs(P) do W[k] = v end

function W.schedule(tasks, n, out)
	calls = calls + 1
	if calls % FAIL_EVERY == 0 then
		error("flaky.lua: deliberate failure in batch " .. calls)
	end
	return inner(tasks, n, out)
end

return W
