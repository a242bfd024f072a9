#!/usr/bin/env bash
# tests/dryrun/run.sh - `gthulhu-lua --dry-run`: the whole host on synthetic tasks, no BPF,
# no root. Checks the stats line (same keys as the live scheduler's), that every synthetic
# record gets exactly one applied decision, the rate limit, the mix, strategies by pid, by
# command_regex and by cgroup path reaching the policy, reload by SIGHUP and by saving the
# file, a rejected reload, config errors, and a run as an unprivileged user.
# Ends with "N passed, N failed". Every run is bounded (dryrun.duration_s, timeout).
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/gthulhu-lua}
T=$(mktemp -d /tmp/gthulhu-dryrun-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | tail -n 20 | sed 's/^/     /'; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name" "$(cat "$T/err" "$T/out" 2>/dev/null)"; fi; }
# last value of KEY on the last stats line of $T/out
stat() { grep '^stats:' "$T/out" | tail -n 1 | grep -oE "(^| )$1=[0-9]+" | cut -d= -f2; }
cls()  { grep "^dryrun: class=$1 " "$T/out" | grep -oE " $2=[0-9]+" | cut -d= -f2; }

[ -x "$BIN" ] || { echo "dryrun: $BIN not built"; echo "0 passed, 1 failed"; exit 1; }

run() { # CONFIG-FILE POLICY [extra args]: bounded dry run, output in $T/out, $T/err
	local c=$1 p=$2; shift 2
	timeout -s KILL 30 "$BIN" --dry-run -s -c "$c" "$@" "$p" >"$T/out" 2>"$T/err"
}

# 1. The stats line has exactly the live scheduler's keys, in order.
cat >"$T/a.yaml" <<Y
dryrun:
  duration_s: 2
  tasks: 16
  mix: "cpu:1,io:2,heavy:1"
Y
run "$T/a.yaml" policies/gthulhu.lua; rc=$?
check "exit 0 after dryrun.duration_s" [ "$rc" = 0 ]
live_keys=$( (grep -oE '[a-z_]+=%llu' host/sched_bpf.c; grep -oE '[a-z_]+=%llu' host/stats.c) | cut -d= -f1 | tr '\n' ' ')
dry_keys=$(grep '^stats:' "$T/out" | tail -n 1 | sed 's/^stats: //' | grep -oE '[a-z_]+=' | tr -d = | tr '\n' ' ')
check "stats keys are the live scheduler's ($(wc -w <<<"$live_keys") keys)" [ -n "$dry_keys" -a "$dry_keys" = "$live_keys" ]
check "a stats line every second (>= 2)" [ "$(grep -c '^stats:' "$T/out")" -ge 2 ]
tasks=$(stat nr_tasks); disp=$(stat nr_user_dispatches)
check "records were scheduled ($tasks)" [ "${tasks:-0}" -gt 100 ]
check "one applied decision per record ($disp = $tasks)" [ "$disp" = "$tasks" ]
check "no cancelled/bounced decisions, no fallbacks" [ "$(stat nr_cancel_dispatches)$(stat nr_bounce_dispatches)$(stat nr_policy_fallbacks)$(stat nr_policy_errors)" = 0000 ]
check "online CPUs = this machine's ($(nproc))" [ "$(stat nr_online_cpus)" = "$(nproc)" ]
check "layout printed: 3 processes" [ "$(grep -c 'dry run: process dry-' "$T/err")" = 3 ]
check "mix split 4/8/4" grep -q 'dry-io tgid 100004, 8 threads (pids 100004-100011)' "$T/err"
sum=$(( $(cls cpu dispatched) + $(cls io dispatched) + $(cls heavy dispatched) ))
check "per-class summary adds up ($sum)" [ "$sum" = "$disp" ]
# heavy (weight 305) gets slice_ns_min*305/100 from gthulhu.lua, cpu (100) slice_ns_min
check "weights reach the policy (heavy slice 3050000, cpu 1000000)" \
	[ "$(cls heavy mean_slice_ns)" = 3050000 -a "$(cls cpu mean_slice_ns)" = 1000000 ]

# 2. Rate limit: io tasks want far more than 300 records/s.
cat >"$T/rate.yaml" <<Y
dryrun:
  duration_s: 2
  rate: 300
  tasks: 64
  mix: io
Y
run "$T/rate.yaml" policies/simple.lua
tasks=$(stat nr_tasks)
check "dryrun.rate 300/s for 2 s: $tasks records (300..640)" [ "${tasks:-0}" -ge 300 -a "${tasks:-0}" -le 640 ]

# 3. Strategies: by tgid (pid key), by command_regex on the fake /proc, both reach the policy.
cat >"$T/s.yaml" <<Y
dryrun:
  duration_s: 2
  tasks: 12
  mix: "cpu,io,light"
strategies:
  - command_regex: "^dry-io\$"
    priority: true
  - pid: 100000
    execution_time: 3000000
Y
run "$T/s.yaml" policies/gthulhu.lua
check "command_regex strategy: every io decision is priority" \
	[ "$(cls io priority)" -gt 0 -a "$(cls io priority)" = "$(cls io dispatched)" ]
check "pid strategy (tgid 100000): cpu class slice 3000000" [ "$(cls cpu mean_slice_ns)" = 3000000 ]
check "no strategy: light class no priority" [ "$(cls light priority)" = 0 ]

# 4. Reloads: SIGHUP, saving the file, a rejected one; the run goes on.
cp policies/simple.lua "$T/p.lua"; mkdir -p "$T/lib"; cp -r policies/lib/gthulhu "$T/lib/"
cat >"$T/r.yaml" <<Y
dryrun:
  duration_s: 6
Y
timeout -s KILL 30 "$BIN" --dry-run -s -c "$T/r.yaml" "$T/p.lua" >"$T/out" 2>"$T/err" &
pid=$!
sleep 1.2; kill -HUP $pid
sleep 1.2; touch -d '+5 seconds' "$T/p.lua"                  # "saved": new mtime
sleep 1.5; echo 'return {' >>"$T/p.lua"; touch -d '+10 seconds' "$T/p.lua"   # broken
wait $pid; rc=$?
check "reload run exits 0" [ "$rc" = 0 ]
check "SIGHUP and a save reloaded the policy (nr_reloads=2)" [ "$(stat nr_reloads)" = 2 ]
check "policy reloaded message twice" [ "$(grep -c 'policy .* reloaded' "$T/err")" = 2 ]
check "SIGHUP also reloaded the config" grep -q "config $T/r.yaml reloaded" "$T/err"
check "broken policy rejected with file:line, old one kept" grep -q "reload rejected, the old policy keeps running: .*p.lua:[0-9]" "$T/err"
check "still scheduling after the rejected reload" [ "$(stat nr_user_dispatches)" = "$(stat nr_tasks)" -a "$(stat nr_policy_fallbacks)" = 0 ]

# 5. SIGINT stops a run without duration.
cat >"$T/i.yaml" <<Y
dryrun:
  tasks: 4
Y
timeout -s KILL 30 "$BIN" --dry-run -s -c "$T/i.yaml" policies/simple.lua >"$T/out" 2>"$T/err" &
pid=$!; sleep 1; kill -INT $pid; wait $pid; rc=$?
check "SIGINT: exit 0 with a final stats line" [ "$rc" = 0 -a -n "$(stat nr_tasks)" ]

# 6. A policy that raises: every task still decided (fallbacks).
cat >"$T/raise.lua" <<'L'
return { schedule = function(tasks, n, out) error("boom") end }
L
cat >"$T/d1.yaml" <<Y
dryrun:
  duration_s: 1
Y
run "$T/d1.yaml" "$T/raise.lua"
check "raising policy: all decided by fallback" [ "$(stat nr_policy_fallbacks)" = "$(stat nr_tasks)" -a "$(stat nr_user_dispatches)" = "$(stat nr_tasks)" -a "$(stat nr_tasks)" -gt 0 ]

# 7. Config errors name the key.
for bad in "mix: gpu:1|dryrun.mix: 'gpu:1': unknown class" "mix: 'cpu:0'|dryrun.mix: 'cpu:0': the share" \
	   "mix: 'cpu,'|dryrun.mix: trailing" "mix: 'cpu,cpu'|listed twice" "tasks: 1
  mix: 'cpu,io'|dryrun.tasks: 1 tasks cannot fill the 2 classes" "rate: 0|dryrun.rate: 0 is too small"; do
	printf 'dryrun:\n  %s\n' "${bad%%|*}" >"$T/bad.yaml"
	run "$T/bad.yaml" policies/simple.lua; rc=$?
	check "bad config '${bad%%|*}': exit 3, message" eval '[ "$rc" = 3 ] && grep -qF -- "${bad#*|}" "$T/err"'
done
mkdir -p "$T/tmp"
TMPDIR="$T/tmp" run "$T/d1.yaml" policies/simple.lua
check "the fake /proc was used and removed at exit" [ "$(stat nr_tasks)" -gt 0 -a -z "$(ls -A "$T/tmp")" ]

# 8. No root needed.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	chmod 755 "$T"; chmod 644 "$T/d1.yaml"
	setpriv --reuid=65534 --regid=65534 --clear-groups timeout -s KILL 30 "$BIN" --dry-run -s \
		-c "$T/d1.yaml" policies/gthulhu.lua >"$T/out" 2>"$T/err"; rc=$?
	check "runs as uid 65534 (nobody)" [ "$rc" = 0 -a "$(stat nr_tasks)" -gt 0 ]
elif [ "$(id -u)" != 0 ]; then
	run "$T/d1.yaml" policies/gthulhu.lua; rc=$?
	check "runs as uid $(id -u)" [ "$rc" = 0 -a "$(stat nr_tasks)" -gt 0 ]
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
