-- Test policy: a fine schedule(), but restore() raises (a reload onto it must fail).
local P = {}
function P.schedule(tasks, n, out) return 0 end
function P.restore(s) error("restore failed on purpose") end
return P
