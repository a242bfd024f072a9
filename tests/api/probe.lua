-- tests/api/probe.lua - a test policy that reports what it sees, for tests/api/run.sh.
-- It schedules like a plain FIFO (priority strategy -> vtime 0, execution_time -> slice)
-- and writes into the file named by $GTHULHU_PROBE (rewritten, atomically, on every
-- on_strategies() call, and from schedule() only when what it reports changes, so that
-- file I/O stays off nearly every batch):
--   policy NAME                       (NAME: $GTHULHU_PROBE_NAME or "probe")
--   strategies N  pid:prio:et ...     the list on_strategies() was given, sorted by pid
--   hit TGID PRIO SLICE               per process, from its latest decision: 1 if
--                                     g.strategy_for() made it priority, and the slice a
--                                     strategy gave (0 = none)
local g = require "gthulhu.sched"
local P = {}
local file = os.getenv("GTHULHU_PROBE")
local name = os.getenv("GTHULHU_PROBE_NAME") or "probe"
local list_text = "strategies 0"
local hits, slices = {}, {}
local seq, dirty = 0, false

local function write()
	if not file then return end
	local lines = { "policy " .. name, list_text }
	local tg, seen = {}, {}
	for k in pairs(hits) do tg[#tg + 1] = k; seen[k] = true end
	for k in pairs(slices) do if not seen[k] then tg[#tg + 1] = k end end
	table.sort(tg)
	for _, k in ipairs(tg) do
		lines[#lines + 1] = string.format("hit %d %d %d", k, hits[k] or 0, slices[k] or 0)
	end
	local f = io.open(file .. ".tmp", "w")
	if not f then return end
	f:write(table.concat(lines, "\n"), "\n")
	f:close()
	os.rename(file .. ".tmp", file)
end

function P.on_strategies(list)
	local items = {}
	for i = 1, #list do
		local e = list[i]
		items[#items + 1] = string.format("%d:%d:%d", e.pid, e.priority and 1 or 0, e.execution_time or 0)
	end
	table.sort(items)
	list_text = "strategies " .. #list .. "  " .. table.concat(items, " ")
	write()
end

function P.schedule(tasks, n, out)
	for i = 0, n - 1 do
		local t, o = tasks[i], out[i]
		seq = seq + 1
		o.pid = t.pid
		o.cpu = g.CPU_ANY
		o.vtime = seq
		o.slice_ns = 0
		local prio, slice = g.strategy_for(t.pid, t.tgid, 0)
		local h = prio and 1 or 0
		if prio then o.vtime = 0 end
		if slice > 0 then o.slice_ns = slice end
		if hits[t.tgid] ~= h or (slices[t.tgid] or 0) ~= slice then
			hits[t.tgid], slices[t.tgid] = h, slice
			dirty = true
		end
	end
	if dirty then
		dirty = false
		write()
	end
	return n
end

return P
