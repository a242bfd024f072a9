#!/usr/bin/env bash
# vmbench.sh - `make vmbench`: every scheduler in ONE boot of the sched_ext VM (Debian's
# cloud kernel, QEMU with multi-threaded TCG, 2 vCPUs: scripts/vm.sh's VM_ACCEL, default
# multi here), as ratios to EEVDF measured before and after them:
#
#   warm-up (EEVDF) | EEVDF | gthulhu.lua | simple.lua | EEVDF
#
# Workloads (each run bounded; >= 3 runs per block): hackbench with pipes and with sockets,
# a wakeup-latency probe (4 periodic 1 ms sleepers beside 4 CPU hogs: p50/p99/p99.9/max,
# missed periods), request/response wake-up latency (tests/workloads/reqlat.c: p50/p99,
# requests/s), a fork/exec storm, CPU-bound batch throughput, pipe ping-pong with 1 and
# with 2 pairs, perf bench sched messaging / pipe, and stress-ng's scheduler class
# (completed, attached, bogo-ops). Each sched_ext block also reports the host's CPU time
# per task it decided (per workload and for the block).
# The guest side is tests/vm/bench.sh; this script boots it (scripts/vm.sh bench) and turns
# the console log into build/vmbench/results.json and results.md
# (scripts/vmbench-report.awk).
#
# Knobs (environment; they reach the guest through the kernel command line):
#   VMBENCH_SCHEDS="gthulhu simple"   sched_ext blocks, in order (NAME = policies/NAME.lua,
#                                     or a policy path relative to the repository)
#   VMBENCH_WORKLOADS="hackbench_pipe wakelat"   subset of hackbench_pipe hackbench_sock
#                                     wakelat reqlat storm batch pingpong pingpong2
#                                     perf_messaging perf_pipe stressng (default: all)
#   VMBENCH_RUNS=3                    runs per workload and block (stressng: VMBENCH_STRESS_RUNS=1)
#   VMBENCH_TIMEOUT=30                seconds one run may take (then killed, shown as ">=")
#   VMBENCH_BUDGET=840                seconds for the guest's whole run (sched_ext runs are
#                                     skipped past it, keeping time for the last EEVDF block)
#   VMBENCH_WARMUP="hackbench_pipe hackbench_sock batch"   workloads of the warm-up ("" = none)
#   VMBENCH_HOST_ARGS="-c,config/x.yaml"  extra gthulhu-lua options (commas = spaces)
#   VMBENCH_STRESS_SECS=10, VMBENCH_HB_LOOPS=500, VMBENCH_HB_SOCK_LOOPS=300,
#   VMBENCH_STORM_N=600, VMBENCH_BATCH_MLOOPS=1500, VMBENCH_PP_SECS=3, VMBENCH_PM_LOOPS=100,
#   VMBENCH_PPIPE_LOOPS=10000, VMBENCH_WAKE_SECS=5, VMBENCH_REQ_SECS=5   workload sizes
#   GTHULHU_BIN_B=PATH                a second gthulhu-lua build in the image: a block named
#                                     NAME@b (e.g. VMBENCH_SCHEDS="gthulhu@b gthulhu") runs
#                                     policy NAME with it, for A/B runs of two builds in one boot;
#                                     NAME+CFG runs policy NAME with -c tests/vm/bench-CFG.yaml
#   VM_ACCEL (multi), VM_SMP (2), VM_MEM, VM_TIMEOUT, GTHULHU_BIN: as for scripts/vm.sh
#   VMBENCH_TEST_PANIC=1              the guest panics on purpose after its first EEVDF block
#                                     (tests the retry below)
#
# A guest kernel crash (panic/oops: the emulator's or the VM's problem, never a
# scheduler's result) reruns the whole boot once (VMBENCH_RETRY=1 in the guest); the
# crashed boot's console is kept as build/vmbench/console.crash.log and none of its figures
# is used. A second crash writes no results (results.json says why).
#
# Exit status: 0 the run completed and the results are written; 1 otherwise (the message
# says why: boot timeout, guest kernel crash twice, guest did not finish, a block that
# could not attach); partial results are still written when there are any, except after a
# crash.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=build/vmbench
LOG=$OUT/console.log
mkdir -p "$OUT"
command -v awk >/dev/null || { echo "vmbench: error: awk missing" >&2; exit 1; }
[ -x "${GTHULHU_BIN:-build/gthulhu-lua}" ] || { echo "vmbench: error: ${GTHULHU_BIN:-build/gthulhu-lua} not built (run make)" >&2; exit 1; }

knobs=$(env | grep -E '^(VMBENCH_|VM_SMP=|VM_ACCEL=)' | grep -v '^VMBENCH_RETRY=' | sort | tr '\n' ' ')
cmdline="${knobs}make vmbench"
t0=$SECONDS
rm -f "$OUT/console.crash.log"
crash_note=""
for boot in 1 2; do
	bash scripts/vm.sh bench
	rc=$?
	[ $rc = 4 ] || break
	crash=$(grep -m1 -E "$(sed -n "s/^CRASH_RE='\(.*\)'$/\1/p" scripts/vm.sh)" "$LOG" | cut -c1-200)
	if [ $boot = 1 ]; then
		mv "$LOG" "$OUT/console.crash.log"
		crash_note="boot 1 crashed (guest kernel: ${crash:-panic/oops}; $OUT/console.crash.log), none of its figures used; these are boot 2's"
		echo "vmbench: GUEST KERNEL CRASH in boot 1 (${crash:-panic/oops}): a VM/emulator problem, not a scheduler result; its figures are dropped and the whole boot is run again" >&2
		export VMBENCH_RETRY=1
	else
		crash_note="$crash_note; boot 2 crashed too (${crash:-panic/oops})"
	fi
done
elapsed=$((SECONDS - t0))
qemu_line=$(grep -m1 '^VM-HOST qemu=' "$LOG" 2>/dev/null)
if [ $rc = 4 ]; then
	# Never a number from a broken boot: no results, only why.
	rm -f "$OUT/results.md"
	printf '{\n  "status": "guest kernel crashed in both boots (a VM/emulator problem, not a scheduler result)",\n  "complete": false,\n  "crashes": "%s",\n  "host": "%s",\n  "results": []\n}\n' \
		"$(printf %s "$crash_note" | tr '"\\' "'/")" "${qemu_line#VM-HOST }" > "$OUT/results.json"
	echo "vmbench: error: the guest kernel crashed in both boots ($crash_note): a VM/emulator problem; no results (consoles: $OUT/console.crash.log, $LOG)" >&2
	exit 1
fi

status=ok
case $rc in
0) ;;
3) status="VM did not boot (boot timeout, or QEMU ended first)" ;;
5) status="the guest did not finish in time (hung or over VM_TIMEOUT)" ;;
*) status="scripts/vm.sh bench failed (exit $rc)" ;;
esac
if [ ! -s "$LOG" ] || ! grep -q '^BENCH-BLOCK-BEGIN ' "$LOG"; then
	echo "vmbench: error: no benchmark output in $LOG: $status" >&2
	exit 1
fi
[ "$status" = ok ] && ! grep -q '^BENCH-DONE ' "$LOG" && status="the guest did not reach BENCH-DONE"

awk -v json="$OUT/results.json" -v md="$OUT/results.md" \
	-v date="$(date -u '+%Y-%m-%d %H:%M UTC')" \
	-v commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +dirty)" \
	-v cmd="$cmdline" -v status="$status" -v crash_note="$crash_note" -f scripts/vmbench-report.awk "$LOG" ||
	{ echo "vmbench: error: parsing $LOG failed" >&2; exit 1; }
echo "Whole run: ${elapsed} s (boot, all blocks, shutdown)." >> "$OUT/results.md"

echo
cat "$OUT/results.md"
echo
echo "vmbench: $OUT/results.json, $OUT/results.md, console $LOG; ${elapsed} s"
# A sched_ext block that could not attach, or was ejected, is a result, not a harness
# failure: it shows in the table (DETACHED / attached NO). Only a broken run fails.
if [ "$status" != ok ]; then
	echo "vmbench: error: $status (partial results above)" >&2
	exit 1
fi
if grep -q '^BENCH-BLOCK-END .* attached=0 attach_ms=-1 ' "$LOG"; then
	echo "vmbench: error: a sched_ext block never attached (see the 'exit=' of its BENCH-BLOCK-END line in $LOG)" >&2
	exit 1
fi
exit 0
