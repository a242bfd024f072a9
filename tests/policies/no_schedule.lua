-- Test policy: returns a table without a schedule function.
return { init = function(ctx) end, shedule = function() return 0 end }
