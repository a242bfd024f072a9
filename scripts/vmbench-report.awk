# vmbench-report.awk - turns the console log of `scripts/vm.sh bench` (the BENCH* lines of
# tests/vm/bench.sh) into build/vmbench/results.json and results.md. POSIX awk (Debian's
# mawk works); no python needed on the build host.
#   awk -v json=FILE -v md=FILE -v date=... -v commit=... -v cmd=... -v status=... [-v crash_note=...] -f vmbench-report.awk LOG
#
# The emulator: scripts/vm.sh's first log line "VM-HOST qemu=VERSION accel=multi|single".
# Host CPU per task: the host's CPU time (utime + stime) over the tasks it decided
# (nr_tasks), both as deltas over a workload's runs; a block's figure sums its workloads'
# deltas (so the start-up, policy load and BPF verification before the first workload,
# seconds of CPU under TCG, are left out).
#
# Ratios: a scheduler's median / the mean of the two EEVDF blocks' medians (first and
# last EEVDF block of the boot; one if only one exists). "better" says which way is good.
# Drift: the last EEVDF block's median / the first's.

function kvparse(line, arr,    n, i, f, k, p) {
	# key=value words; a quoted value ("...") may hold spaces.
	n = 0
	while (match(line, /[A-Za-z0-9_]+=("[^"]*"|[^ ]*)/)) {
		f = substr(line, RSTART, RLENGTH)
		line = substr(line, RSTART + RLENGTH)
		p = index(f, "=")
		k = substr(f, 1, p - 1)
		arr[k] = substr(f, p + 1)
		if (arr[k] ~ /^".*"$/) arr[k] = substr(arr[k], 2, length(arr[k]) - 2)
		keys[++n] = k
	}
	return n
}
function isnum(v) { return v ~ /^-?[0-9]+(\.[0-9]+)?$/ }
function jstr(s) {
	gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, " ", s)
	return "\"" s "\""
}
function jnum(v) { return isnum(v) ? v + 0 : "null" }
function fmt(v) {
	if (v == "") return "-"
	if (v >= 1000) return sprintf("%.0f", v)
	if (v >= 10) return sprintf("%.1f", v)
	return sprintf("%.3g", v)
}
# cnt(ARR, KEY): ARR[KEY] or 0, without creating the element (awk creates on reference).
function cnt(arr, key) { return (key in arr) ? arr[key] + 0 : 0 }
function r2(v) { return v == "" ? "-" : sprintf("%.2f", v) }
# sort_vals "a b c" -> sorted into S[1..n]; returns n
function sort_vals(str,    n, i, j, t) {
	n = split(str, S, " ")
	for (i = 2; i <= n; i++) {
		t = S[i] + 0
		for (j = i - 1; j >= 1 && S[j] + 0 > t; j--) S[j + 1] = S[j]
		S[j + 1] = t
	}
	return n
}
function median(str,    n) {
	n = sort_vals(str)
	if (!n) return ""
	return n % 2 ? S[(n + 1) / 2] : (S[n / 2] + S[n / 2 + 1]) / 2
}
function vmin(str) { return sort_vals(str) ? S[1] : "" }
function vmax(str,    n) { n = sort_vals(str); return n ? S[n] : "" }

BEGIN { nb = 0; nrow = 0 }
{ sub(/\r$/, "") }
/^GUEST-READY kernel=/ { delete A; kvparse($0, A); kernel = A["kernel"]; cpus = A["cpus"] }
/^VM-HOST qemu=/ { delete A; kvparse($0, A); qemu = A["qemu"]; accel = A["accel"] }
/^BENCH-CONFIG / { config = substr($0, 14) }
/^BENCH-BLOCK-BEGIN / {
	delete A; kvparse($0, A)
	b = A["block"]; sched[b] = A["sched"]; border[++nb] = b
}
/^BENCHV / {
	delete A; kvparse($0, A)
	b = A["block"]; k = b SUBSEP A["wl"] SUBSEP A["metric"]
	if (!isnum(A["value"])) next
	if (k in vals) vals[k] = vals[k] " " A["value"]
	else { vals[k] = A["value"]; rowb[++nrow] = b; roww[nrow] = A["wl"]; rowm[nrow] = A["metric"] }
	better[A["wl"] SUBSEP A["metric"]] = A["better"]
	if (A["censored"] == 1) cens[k]++
	wm = A["wl"] SUBSEP A["metric"]
	if (!(wm in wmseen) && sched[b] != "warmup") { wmseen[wm] = 1; wmorder[++nwm] = wm }
}
/^BENCHS / {
	delete A; kvparse($0, A)
	if (!isnum(A["bogo_ops"])) next
	k = A["block"] SUBSEP A["stressor"]
	ssum[k] += A["bogo_ops"]; scnt[k]++
	if (!(A["stressor"] in sseen)) { sseen[A["stressor"]] = 1; sorder[++nst] = A["stressor"] }
}
/^BENCHF / {
	delete A; kvparse($0, A)
	k = A["block"] SUBSEP A["wl"]
	if (A["skipped"] == 1) skipped[k]++; else failed[k]++
	fmsg[k] = A["msg"]
}
/^BENCHA / {
	delete A; kvparse($0, A)
	k = A["block"] SUBSEP A["wl"]
	if (!(k in att) || A["attached"] == 0) att[k] = A["attached"]
}
/^BENCHH / {
	delete A; delete keys; n = kvparse($0, A)
	k = A["block"] SUBSEP A["wl"] SUBSEP A["phase"]
	hline[k] = $0
}
/^BENCH-BLOCK-END / {
	delete A; kvparse($0, A)
	bend[A["block"]] = $0
}
/^BENCH-DONE / { done = 1 }

# The host figures of one (block, workload): end - begin of every numeric stats key.
function host_json(b, w,    kb, ke, n, i, k, out, B, E, dt, db) {
	kb = b SUBSEP w SUBSEP "begin"; ke = b SUBSEP w SUBSEP "end"
	if (!(ke in hline) || !(kb in hline)) return "null"
	delete B; delete keys; kvparse(hline[kb], B)
	delete E; delete keys; n = kvparse(hline[ke], E)
	out = ""
	for (i = 1; i <= n; i++) {
		k = keys[i]
		if (k == "block" || k == "sched" || k == "wl" || k == "phase" || !isnum(E[k])) continue
		out = out (out == "" ? "" : ", ") jstr(k) ": " (isnum(B[k]) ? E[k] - B[k] : "null")
	}
	dt = E["nr_tasks"] - B["nr_tasks"]; db = E["nr_batches"] - B["nr_batches"]
	return "{\"delta\": {" out "}, \"tasks_per_batch\": " (db > 0 ? sprintf("%.2f", dt / db) : "null") \
		", \"max_batch\": " jnum(E["max_batch"]) ", \"attached\": " (((b SUBSEP w) in att) ? att[b SUBSEP w] + 0 : "null") \
		", \"host_cpu_ms\": " ((B["host_cpu_ms"] >= 0 && E["host_cpu_ms"] >= 0) ? E["host_cpu_ms"] - B["host_cpu_ms"] : "null") \
		", \"host_cpu_us_per_task\": " jnum(wl_us_task(b, w)) "}"
}
# us_task CPU_MS TASKS: host CPU microseconds per task decided, "" when not defined.
function us_task(ms, n) { return (isnum(ms) && ms >= 0 && isnum(n) && n > 0) ? sprintf("%.2f", ms * 1000 / n) : "" }
# wl_us_task(B, W): host CPU us per task over workload W's runs in block B ("" if unknown).
function wl_us_task(b, w,    kb, ke) {
	kb = b SUBSEP w SUBSEP "begin"; ke = b SUBSEP w SUBSEP "end"
	if (!(kb in hline) || !(ke in hline)) return ""
	delete WB; delete keys; kvparse(hline[kb], WB)
	delete WE; delete keys; kvparse(hline[ke], WE)
	if (!(WB["host_cpu_ms"] >= 0 && WE["host_cpu_ms"] >= 0)) return ""
	WL_MS = WE["host_cpu_ms"] - WB["host_cpu_ms"]; WL_N = WE["nr_tasks"] - WB["nr_tasks"]
	return us_task(WL_MS, WL_N)
}
# blk_us_task(B): block B's figure, over the workloads whose begin and end were both seen
# with the same host (a workload across a restart has fewer tasks at its end: left out).
function blk_us_task(b,    i, w, ms, n, seen) {
	ms = 0; n = 0
	for (i = 1; i <= nwm; i++) {
		split(wmorder[i], P2, SUBSEP); w = P2[1]
		if (w in seen) continue
		seen[w] = 1
		if (wl_us_task(b, w) == "" || WL_MS < 0 || WL_N <= 0) continue
		ms += WL_MS; n += WL_N
	}
	return us_task(ms, n)
}

END {
	# EEVDF blocks: first and last.
	ef = ""; el = ""
	for (i = 1; i <= nb; i++) if (sched[border[i]] == "eevdf") { if (ef == "") ef = border[i]; el = border[i] }
	for (i = 1; i <= nwm; i++) {
		wm = wmorder[i]
		m1 = (ef != "" && (ef SUBSEP wm) in vals) ? median(vals[ef SUBSEP wm]) : ""
		m2 = (el != "" && el != ef && (el SUBSEP wm) in vals) ? median(vals[el SUBSEP wm]) : ""
		if (m1 != "" && m2 != "") base[wm] = (m1 + m2) / 2
		else if (m1 != "") base[wm] = m1
		else if (m2 != "") base[wm] = m2
		if (m1 != "" && m2 != "" && m1 > 0) drift[wm] = m2 / m1
	}

	# stress-ng: geometric mean over stressors of (ops in the block / mean EEVDF ops);
	# stressors with no ops in either EEVDF block, or none in the block, are left out.
	for (i = 1; i <= nb; i++) {
		b = border[i]
		if (sched[b] == "warmup") continue
		ls = 0; n = 0
		for (j = 1; j <= nst; j++) {
			st = sorder[j]
			e = 0; ne = 0
			if ((ef SUBSEP st) in scnt) { e += ssum[ef SUBSEP st] / scnt[ef SUBSEP st]; ne++ }
			if (el != ef && (el SUBSEP st) in scnt) { e += ssum[el SUBSEP st] / scnt[el SUBSEP st]; ne++ }
			if (!ne || e <= 0 || !((b SUBSEP st) in scnt) || ssum[b SUBSEP st] <= 0) continue
			ls += log(ssum[b SUBSEP st] / scnt[b SUBSEP st] / (e / ne)); n++
		}
		if (n) { sgeo[b] = exp(ls / n); sgeon[b] = n }
	}
	if (ef != "" && el != ef) {
		ls = 0; n = 0
		for (j = 1; j <= nst; j++) {
			st = sorder[j]
			if (!((ef SUBSEP st) in scnt) || !((el SUBSEP st) in scnt) || ssum[ef SUBSEP st] <= 0 || ssum[el SUBSEP st] <= 0) continue
			ls += log((ssum[el SUBSEP st] / scnt[el SUBSEP st]) / (ssum[ef SUBSEP st] / scnt[ef SUBSEP st])); n++
		}
		if (n) sdrift = exp(ls / n)
	}

	# ------------------------------------------------------------ JSON
	printf "{\n  \"date\": %s,\n  \"commit\": %s,\n  \"command\": %s,\n  \"kernel\": %s,\n  \"vcpus\": %s,\n  \"qemu\": %s,\n  \"accel\": %s,\n  \"crash_note\": %s,\n  \"status\": %s,\n  \"complete\": %s,\n  \"config\": %s,\n", \
		jstr(date), jstr(commit), jstr(cmd), jstr(kernel), jnum(cpus), jstr(qemu), jstr(accel), (crash_note == "" ? "null" : jstr(crash_note)), \
		jstr(status), done ? "true" : "false", jstr(config) > json
	printf "  \"drift\": {" > json
	sep = ""
	for (i = 1; i <= nwm; i++) if (wmorder[i] in drift) {
		split(wmorder[i], P, SUBSEP)
		printf "%s%s: %.3f", sep, jstr(P[1] "." P[2]), drift[wmorder[i]] > json; sep = ", "
	}
	printf "},\n  \"blocks\": [\n" > json
	for (i = 1; i <= nb; i++) {
		b = border[i]
		delete E; delete keys; n = kvparse(bend[b], E)
		st = ""
		for (j = 1; j <= n; j++) {
			k = keys[j]
			if (k ~ /^(block|sched|attached|attach_ms|host_cpu_ms|host_rc|secs|exit|restarts)$/) continue
			st = st (st == "" ? "" : ", ") jstr(k) ": " (isnum(E[k]) ? E[k] + 0 : jstr(E[k]))
		}
		tpb = (E["nr_batches"] > 0) ? sprintf("%.2f", E["nr_tasks"] / E["nr_batches"]) : "null"
		printf "    {\"block\": %d, \"sched\": %s, \"ended\": %s, \"attached\": %s, \"restarts\": %s, \"attach_ms\": %s, \"host_cpu_ms\": %s, \"host_cpu_us_per_task\": %s, \"host_rc\": %s, \"secs\": %s, \"exit\": %s, \"tasks_per_batch\": %s, \"stats\": {%s}}%s\n", \
			b, jstr(sched[b]), (b in bend) ? "true" : "false", jnum(E["attached"]), jnum(E["restarts"]), jnum(E["attach_ms"]), jnum(E["host_cpu_ms"]), \
			jnum(blk_us_task(b)), jnum(E["host_rc"]), jnum(E["secs"]), jstr(E["exit"]), tpb, st, i < nb ? "," : "" > json
	}
	printf "  ],\n  \"results\": [\n" > json
	first = 1
	for (r = 1; r <= nrow; r++) {
		b = rowb[r]; w = roww[r]; m = rowm[r]
		if (sched[b] == "warmup") continue
		k = b SUBSEP w SUBSEP m; wm = w SUBSEP m
		med = median(vals[k]); lo = vmin(vals[k]); hi = vmax(vals[k])
		runs = vals[k]; gsub(/ /, ", ", runs)
		ratio = (wm in base && base[wm] > 0) ? sprintf("%.3f", med / base[wm]) : "null"
		rlo = (wm in base && base[wm] > 0) ? sprintf("%.3f", lo / base[wm]) : "null"
		rhi = (wm in base && base[wm] > 0) ? sprintf("%.3f", hi / base[wm]) : "null"
		printf "%s    {\"sched\": %s, \"block\": %d, \"workload\": %s, \"metric\": %s, \"better\": %s, \"runs\": [%s], \"median\": %s, \"min\": %s, \"max\": %s, \"ratio_to_eevdf\": %s, \"ratio_min\": %s, \"ratio_max\": %s, \"censored\": %d, \"failed\": %d, \"skipped\": %d, \"host\": %s}", \
			first ? "" : ",\n", jstr(sched[b]), b, jstr(w), jstr(m), jstr(better[wm]), runs, med, lo, hi, ratio, rlo, rhi, \
			cnt(cens, k), cnt(failed, b SUBSEP w), cnt(skipped, b SUBSEP w), \
			(sched[b] == "eevdf") ? "null" : host_json(b, w) > json
		first = 0
	}
	for (i = 1; i <= nb; i++) {
		b = border[i]
		if (!(b in sgeo)) continue
		printf "%s    {\"sched\": %s, \"block\": %d, \"workload\": \"stressng\", \"metric\": \"bogo_ops_geomean_ratio\", \"better\": \"higher\", \"runs\": [], \"median\": null, \"min\": null, \"max\": null, \"ratio_to_eevdf\": %.3f, \"stressors\": %d, \"host\": null}", \
			first ? "" : ",\n", jstr(sched[b]), b, sgeo[b], sgeon[b] > json
		first = 0
	}
	printf "\n  ],\n  \"stressng_drift_geomean\": %s\n}\n", (sdrift != "" ? sprintf("%.3f", sdrift) : "null") > json

	# ------------------------------------------------------------ Markdown
	ns = 0
	for (i = 1; i <= nb; i++) { b = border[i]; if (sched[b] != "eevdf" && sched[b] != "warmup") sx[++ns] = b }
	printf "%s, commit %s, kernel %s, %s vCPUs (QEMU %s TCG thread=%s), `%s`%s%s\n\n", date, commit, kernel, cpus, \
		(qemu == "" ? "?" : qemu), (accel == "" ? "?" : accel), cmd, \
		(status == "ok" && done) ? "" : " -- INCOMPLETE RUN: " status, (crash_note == "" ? "" : " -- " crash_note) > md
	hdr = "| workload | metric | better | EEVDF median (first / last) | drift last/first |"
	sep = "|---|---|---|---|---|"
	for (i = 1; i <= ns; i++) { hdr = hdr " " sched[sx[i]] " ratio (min-max) |"; sep = sep "---|" }
	print hdr > md; print sep > md
	for (i = 1; i <= nwm; i++) {
		wm = wmorder[i]; split(wm, P, SUBSEP); w = P[1]; m = P[2]
		e1 = (ef SUBSEP wm) in vals ? fmt(median(vals[ef SUBSEP wm])) : "-"
		e2 = (el != ef && (el SUBSEP wm) in vals) ? fmt(median(vals[el SUBSEP wm])) : "-"
		line = "| " w " | " m " | " better[wm] " | " e1 " / " e2 " | " ((wm in drift) ? r2(drift[wm]) : "-") " |"
		for (j = 1; j <= ns; j++) {
			b = sx[j]; k = b SUBSEP wm
			if (!(k in vals) || !(wm in base) || base[wm] <= 0) {
				c = (b SUBSEP w) in failed ? "failed" : ((b SUBSEP w) in skipped ? "skipped" : "-")
			} else {
				c = (cnt(cens, k) ? ">=" : "") r2(median(vals[k]) / base[wm]) " (" r2(vmin(vals[k]) / base[wm]) "-" r2(vmax(vals[k]) / base[wm]) ")"
				if ((b SUBSEP w) in failed) c = c " " failed[b SUBSEP w] " failed"
				if ((b SUBSEP w) in skipped) c = c " " skipped[b SUBSEP w] " skipped"
			}
			if (((b SUBSEP w) in att) && att[b SUBSEP w] == 0) c = c " DETACHED"
			line = line " " c " |"
		}
		print line > md
	}
	if (nst) {
		line = "| stressng | bogo-ops per stressor, geometric mean of ratios | higher | - | " (sdrift != "" ? r2(sdrift) : "-") " |"
		for (j = 1; j <= ns; j++) line = line " " ((sx[j] in sgeo) ? r2(sgeo[sx[j]]) " (" sgeon[sx[j]] " stressors)" : "-") " |"
		print line > md
	}
	# Attachment: which workloads ended with the scheduler detached (BENCHA checks).
	line = "| (all) | attached through every workload | higher | - | - |"
	for (j = 1; j <= ns; j++) {
		b = sx[j]; c = ""
		for (i = 1; i <= nwm; i++) {
			split(wmorder[i], P, SUBSEP); w = P[1]
			if (((b SUBSEP w) in att) && att[b SUBSEP w] == 0 && !((b SUBSEP w) in detl)) { detl[b SUBSEP w] = 1; c = c (c == "" ? "" : ", ") w }
		}
		if (!(b in bend)) c = "block did not end"
		line = line " " (c == "" ? "yes" : "NO: " c) " |"
	}
	print line > md
	print "" > md
	print "Ratios: median / mean of the two EEVDF blocks' medians; below 1 is better for \"lower\", above 1 for \"higher\". `>=`: a run hit its time limit (the real figure is larger). DETACHED: the scheduler was ejected (or its host exited) during that workload; it is started again before the next one. Host figures come from the host's 1 s `stats:` lines (up to 1 s off at a workload's edges); host CPU and counters of the table below are those of the block's last host process when it restarted. Host CPU µs/task: the host's CPU time over the tasks it decided during the workloads (its start-up, policy load and the BPF verifier left out)." > md
	print "" > md
	print "| sched_ext block | attached whole block (restarts) | attach ms | host CPU s | host CPU µs/task | batches | tasks | tasks/batch | max batch | other non-zero counters (last stats line) | exit |" > md
	print "|---|---|---|---|---|---|---|---|---|---|---|" > md
	for (i = 1; i <= ns; i++) {
		b = sx[i]
		delete E; delete keys; n = kvparse(bend[b], E)
		other = ""
		for (j = 1; j <= n; j++) {
			k = keys[j]
			if (k ~ /^(block|sched|attached|attach_ms|host_cpu_ms|host_rc|secs|exit|restarts|nr_batches|nr_tasks|max_batch|nr_online_cpus|nr_queued|nr_scheduled|nr_running|nr_pending)$/) continue
			if (isnum(E[k]) && E[k] != 0) other = other (other == "" ? "" : " ") k "=" E[k]
		}
		c = blk_us_task(b)
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", sched[b], \
			(b in bend) ? (E["attached"] == 1 ? "yes" : "NO (" (E["restarts"] + 0) ")") : "block did not end", E["attach_ms"], \
			(isnum(E["host_cpu_ms"]) && E["host_cpu_ms"] >= 0 ? sprintf("%.1f", E["host_cpu_ms"] / 1000) : "-"), (c == "" ? "-" : fmt(c)), \
			E["nr_batches"], E["nr_tasks"], (E["nr_batches"] > 0) ? sprintf("%.2f", E["nr_tasks"] / E["nr_batches"]) : "-", \
			E["max_batch"], other, E["exit"] > md
	}
	print "" > md
	# Per workload: tasks per batch, host CPU seconds and host CPU us per task (deltas over
	# that workload's runs).
	hdr = "| host per workload: tasks/batch, host CPU s, host CPU µs/task |"; sep = "|---|"
	for (i = 1; i <= ns; i++) { hdr = hdr " " sched[sx[i]] " |"; sep = sep "---|" }
	print hdr > md; print sep > md
	for (i = 1; i <= nwm; i++) {
		split(wmorder[i], P, SUBSEP); w = P[1]
		if (w in wdone) continue
		wdone[w] = 1
		line = "| " w " |"
		for (j = 1; j <= ns; j++) {
			b = sx[j]; kb = b SUBSEP w SUBSEP "begin"; ke = b SUBSEP w SUBSEP "end"
			if (!(kb in hline) || !(ke in hline)) { line = line " - |"; continue }
			delete B; delete keys; kvparse(hline[kb], B)
			delete E; delete keys; kvparse(hline[ke], E)
			db = E["nr_batches"] - B["nr_batches"]
			c = wl_us_task(b, w)
			line = line " " (db > 0 ? sprintf("%.2f", (E["nr_tasks"] - B["nr_tasks"]) / db) : "-") ", " \
				((B["host_cpu_ms"] >= 0 && E["host_cpu_ms"] >= 0) ? sprintf("%.1f", (E["host_cpu_ms"] - B["host_cpu_ms"]) / 1000) : "-") ", " \
				(c == "" ? "-" : fmt(c)) " |"
		}
		print line > md
	}
}
