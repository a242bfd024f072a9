-- Test policy: init() raises (line 4).
local P = {}
function P.init(ctx)
	error("init failed on purpose")
end
function P.schedule(tasks, n, out) return 0 end
return P
