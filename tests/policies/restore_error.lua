-- Test policy: a fine schedule() (it passes the reload self-test), but restore() raises
-- (a reload onto it must fail).
local P = {}
function P.schedule(tasks, n, out)
	for i = 0, n - 1 do
		out[i].pid = tasks[i].pid
		out[i].cpu = 0
	end
	return n
end
function P.restore(s) error("restore failed on purpose") end
return P
