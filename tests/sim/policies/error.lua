-- error.lua - a policy whose schedule() always raises: the host's fallback decides every
-- task, the run completes, and simulate exits 4 (policy error).
local P = {}
function P.schedule(tasks, n, out)
	error("deliberate failure in schedule()")
end
return P
