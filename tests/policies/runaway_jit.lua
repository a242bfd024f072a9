-- Test policy: schedule() never returns, in a compiled trace that ignores hooks, so only
-- the watchdog's hard limit (process exit) can end it.
return { schedule = function(tasks, n, out) while true do end end }
