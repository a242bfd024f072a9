-- Test policy: a syntax error on line 3.
return {
	schedule = function(tasks, n, out) return n end end,
}
