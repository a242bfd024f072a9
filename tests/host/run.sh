#!/usr/bin/env bash
# tests/host/run.sh - the whole host (run loop, signals, output, reloads) through
# `gthulhu-lua --dry-run` (no BPF side, no root). Ends with "N passed, N failed".
# Every run is bounded (dryrun.duration_s, timeout -s KILL).
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/gthulhu-lua}
T=$(mktemp -d /tmp/gthulhu-host-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | tail -n 20 | sed 's/^/     /'; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name" "$(cat "$T/err" "$T/out" 2>/dev/null)"; fi; }
[ -x "$BIN" ] || { echo "host: $BIN not built"; echo "0 passed, 1 failed"; exit 1; }
# start_bg ARGS...: the host in the background (pid in $pid, signals go to it directly),
# killed after 20 s whatever happens.
start_bg() {
	"$BIN" "$@" >"$T/out" 2>"$T/err" &
	pid=$!
	( sleep 20; kill -9 $pid 2>/dev/null ) >/dev/null 2>&1 &
	guard=$!
}
stop_guard() { kill $guard 2>/dev/null; wait $guard 2>/dev/null; }

cat >"$T/d3.yaml" <<Y
dryrun:
  duration_s: 3
Y
cat >"$T/d30.yaml" <<Y
dryrun:
  duration_s: 30
  rate: 200000
Y

# 1. stdout's reader leaves (`--stats | head -1`): the scheduler runs on to the end.
timeout -s KILL 20 "$BIN" --dry-run -s -c "$T/d3.yaml" policies/simple.lua 2>"$T/err" | head -n 1 >"$T/out"
rc=${PIPESTATUS[0]}
check "--stats | head -1: exit 0 at the end of the run, not SIGPIPE (exit $rc)" [ "$rc" = 0 ]
check "head got the first stats line" grep -q '^stats: ' "$T/out"

# 2. SIGINT while busy: handled on the scheduling thread from the signalfd, prompt exit 0
# with the final stats line.
start_bg --dry-run -s -c "$T/d30.yaml" policies/gthulhu.lua
sleep 1.5
# every thread but the scheduling one blocks the signals; the scheduling one blocks the
# ones it reads from its signalfd (SIGINT 2, SIGHUP 1, SIGTERM 15: mask 0x4003)
blk_ok=1 nthr=0
for s in /proc/$pid/task/*/status; do
	nthr=$((nthr + 1))
	m=$(awk '/^SigBlk:/ { print $2 }' "$s")
	(( (0x$m & 0x4003) == 0x4003 )) || blk_ok=0
done
check "all $nthr threads block SIGINT/SIGHUP/SIGTERM (read through the signalfd)" [ "$blk_ok" = 1 -a "$nthr" -ge 3 ]
t0=$(date +%s%N)
kill -INT $pid
wait $pid; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
stop_guard
check "SIGINT under load: exit 0 (exit $rc)" [ "$rc" = 0 ]
check "SIGINT under load: stopped within 2 s (took $ms ms)" [ "$ms" -lt 2000 ]
check "final stats line written" grep -q '^stats: .*nr_tasks=[1-9]' "$T/out"

# 3. stdout a pipe that is full from the start (4 KiB, filled before the host starts, not
# read for 6 s): stats lines cannot be written; the scheduling thread must go on
# scheduling (output is queued), and SIGINT still ends the run at once. Then the pipe is
# drained: the final stats line must show ~6 s of scheduling, not ~1 s (at least twice the first line's count; where the first
# blocking write would have stopped it).
python3 - "$BIN" "$T" <<'PY'
import fcntl, os, re, signal, subprocess, sys, time
binp, t = sys.argv[1], sys.argv[2]
r, w = os.pipe()
fcntl.fcntl(w, 1031, 4096)          # F_SETPIPE_SZ: the smallest pipe
fcntl.fcntl(w, fcntl.F_SETFL, os.O_NONBLOCK)
try:
    while True: os.write(w, b"#" * 512)
except BlockingIOError:
    pass
fcntl.fcntl(w, fcntl.F_SETFL, 0)
err = open(t + "/err", "w")
p = subprocess.Popen([binp, "--dry-run", "-s", "-c", t + "/d30.yaml", "policies/gthulhu.lua"],
                     stdout=w, stderr=err)
os.close(w)
time.sleep(6)
t0 = time.time()
p.send_signal(signal.SIGINT)
out = b""
deadline = time.time() + 10
while time.time() < deadline:       # drain until EOF (the host exited) or 10 s
    chunk = os.read(r, 65536)
    if not chunk: break
    out += chunk
try:
    rc = p.wait(timeout=1)
except subprocess.TimeoutExpired:
    p.kill(); rc = "hung"
ms = int((time.time() - t0) * 1000)
tasks = [int(x) for x in re.findall(rb"^stats: .*? nr_tasks=([0-9]+)", out, re.M)]
open(t + "/full.txt", "w").write("%s %d %d %d %d\n" % (rc, ms, len(tasks),
    tasks[0] if tasks else 0, tasks[-1] if tasks else 0))
PY
read -r rc ms nlines first last <"$T/full.txt"
check "stdout full: SIGINT ends the run (exit $rc)" [ "$rc" = 0 ]
check "stdout full: all within 3 s of SIGINT ($ms ms)" [ "${ms:-99999}" -lt 3000 ]
check "stdout full: the queued stats lines arrive afterwards ($nlines lines)" [ "${nlines:-0}" -ge 4 ]
check "stdout full: scheduling went on (nr_tasks $first at 1 s, $last at the end)" \
	[ "${last:-0}" -ge $(( ${first:-1} * 2 )) ]

# 4. SIGHUP storms: every one is a reload, the run goes on.
start_bg --dry-run -s -c "$T/d3.yaml" policies/simple.lua
sleep 0.5
for i in 1 2 3; do kill -HUP $pid; sleep 0.3; done
wait $pid; rc=$?
stop_guard
check "SIGHUP x3: exit 0 (exit $rc)" [ "$rc" = 0 ]
n=$(grep '^stats:' "$T/out" | tail -n 1 | grep -oE 'nr_reloads=[0-9]+' | cut -d= -f2)
check "SIGHUP x3: 3 reloads (nr_reloads=$n)" [ "${n:-0}" = 3 ]

# 5. Hot reload by inotify: saving by rename (editors), a library edit, a file briefly
# empty (truncate, then write), a burst of writes: one reload each, none rejected.
mkdir -p "$T/w/lib"; cp policies/simple.lua "$T/w/p.lua"; cp -r policies/lib/gthulhu "$T/w/lib/"
cat >"$T/d9.yaml" <<Y
dryrun:
  duration_s: 9
Y
start_bg --dry-run -s -c "$T/d9.yaml" "$T/w/p.lua"
sleep 1
{ cat policies/simple.lua; echo "-- saved by rename"; } >"$T/w/p.lua.tmp"; mv "$T/w/p.lua.tmp" "$T/w/p.lua"
sleep 1.5
echo "-- a library edit" >>"$T/w/lib/gthulhu/sched.lua"
sleep 1.5
: >"$T/w/p.lua"; sleep 0.1; cat policies/simple.lua >"$T/w/p.lua"      # briefly empty
sleep 1.5
for i in 1 2 3 4 5; do echo "-- burst $i" >>"$T/w/p.lua"; sleep 0.02; done
wait $pid; rc=$?
stop_guard
n=$(grep '^stats:' "$T/out" | tail -n 1 | grep -oE 'nr_reloads=[0-9]+' | cut -d= -f2)
check "inotify: exit 0 (exit $rc)" [ "$rc" = 0 ]
check "inotify: rename, library edit, empty-then-written, burst = 4 reloads (nr_reloads=$n)" [ "${n:-0}" = 4 ]
check "inotify: no reload rejected" [ "$(grep -c 'rejected' "$T/err")" = 0 ]
check "inotify: 4 'reloaded (file changed)' messages" [ "$(grep -c 'reloaded (file changed)' "$T/err")" = 4 ]

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
