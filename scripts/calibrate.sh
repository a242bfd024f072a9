#!/usr/bin/env bash
# calibrate.sh: the simulator against the real kernel. Runs the calibration load in the
# sched_ext VM (scenarios calib_gthulhu and calib_simple of tests/vm/guest.sh, one boot)
# and the same load in the simulator (config/workloads/calib-lat.yaml and calib-fair.yaml,
# the two phases of the VM scenarios), then compares.
#
# Load v2 (since 2026-12-01 13:55 UTC, commit 25d6b8b): one busy vCPU at a time. Load v1 (all four vCPUs
# busy at once, config/workloads/calib.yaml up to commit c089c35) failed 4 of 6
# checks, latency because the emulated VM's own floor (7 ms p50 under the kernel's own
# scheduler) hid the scheduler; see the README. The tolerances below are v1's, unchanged,
# and were fixed before v2 was run.
#
# Tolerances, fixed before any data was looked at:
#   fairness   CPU time ratio nice-0 / nice-5 hog sharing one CPU: VM within +-15% of the
#              simulator's (the ratio of the weights, 3.06, for a fair policy)
#   latency    p99 wakeup lateness of the 1 ms periodic sleeper beside 3 hogs (v2: on one
#              CPU): VM / sim in
#              [0.5, 2.0] (TCG timing moves p99 10-20% between boots; the VM also runs the
#              host and kernel threads, which the model does not)
#   control    simple.lua (20 ms slices) against gthulhu.lua (1 ms slices): the sleeper's p99
#              must be >= 2x higher under simple.lua in the VM AND in the simulator (both
#              must tell the policies apart, the same way round)
# Reference (no check): the same load under the kernel's own scheduler (scenario
# calib_eevdf, first and last in the boot), the floor the emulated machine sets by itself.
# Prints a table and "N passed, N failed"; exit 1 if any check fails. Needs root for
# nothing; the VM needs minutes of CPU: run it under nice. Usage: nice -n 10 scripts/calibrate.sh
# CALIB_SKIP_VM=1 compares against the console log of the last run (build/calib).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=build/calib
mkdir -p $OUT
pass=0 fail=0
check() { # name cond-description ok(0/1)
	if [ "$3" = 1 ]; then pass=$((pass + 1)); echo "ok   $1: $2"; else fail=$((fail + 1)); echo "FAIL $1: $2"; fi
}

echo "calibrate: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo +changes), load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${CALIB_SKIP_VM:-0}" != 1 ]; then
	bash scripts/vm.sh test calib_eevdf calib_gthulhu calib_simple calib_eevdf > $OUT/vm.log 2>&1
	cp build/vm/console.log $OUT/console.log 2>/dev/null
	echo "calibrate: VM done $(date -u '+%H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
fi
# N = 1: the first RESULT line of the scenario, else the last
vmv() { grep -a "^RESULT calib_$1 " $OUT/console.log | { [ "${3:-}" = 1 ] && head -n 1 || tail -n 1; } | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
for p in gthulhu simple; do
	grep -aq "^RESULT calib_$p PASS" $OUT/console.log || { echo "FAIL: VM scenario calib_$p did not pass:"; grep -a "^RESULT calib_$p" $OUT/console.log; fail=$((fail + 1)); }
done
for half in lat fair; do
	build/gthulhu-lua simulate --json config/workloads/calib-$half.yaml policies/gthulhu.lua policies/simple.lua > $OUT/sim-$half.json 2> $OUT/sim.err || { echo "FAIL: simulate calib-$half.yaml"; cat $OUT/sim.err; exit 1; }
done
simv() { # lat|fair run-index jq-expr (groups: lat 0 chog, 1 csleep; fair 0 cw0, 1 cw5)
	jq -r ".runs[$2] | $3" $OUT/sim-$1.json
}
printf '%-34s %12s %12s %12s %12s\n' figure "VM gthulhu" "sim gthulhu" "VM simple" "sim simple"
row() { printf '%-34s %12s %12s %12s %12s\n' "$@"; }
vg50=$(vmv gthulhu sleep_p50_us); vg99=$(vmv gthulhu sleep_p99_us); vgw=$(vmv gthulhu w_ratio_x1000)
vs50=$(vmv simple sleep_p50_us); vs99=$(vmv simple sleep_p99_us); vsw=$(vmv simple w_ratio_x1000)
sg50=$(simv lat 0 '.groups[1].lat_p50_ns / 1000 | floor'); sg99=$(simv lat 0 '.groups[1].lat_p99_ns / 1000 | floor')
ss50=$(simv lat 1 '.groups[1].lat_p50_ns / 1000 | floor'); ss99=$(simv lat 1 '.groups[1].lat_p99_ns / 1000 | floor')
sgw=$(simv fair 0 '(.groups[0].cpu_ns * 1000 / .groups[1].cpu_ns) | floor'); ssw=$(simv fair 1 '(.groups[0].cpu_ns * 1000 / .groups[1].cpu_ns) | floor')
row "sleeper p50 lateness (us)" "${vg50:-?}" "$sg50" "${vs50:-?}" "$ss50"
row "sleeper p99 lateness (us)" "${vg99:-?}" "$sg99" "${vs99:-?}" "$ss99"
row "nice0/nice5 CPU ratio (x1000)" "${vgw:-?}" "$sgw" "${vsw:-?}" "$ssw"
row "sleeper wakeups" "$(vmv gthulhu sleep_count)" "$(simv lat 0 '.groups[1].wakeups')" "$(vmv simple sleep_count)" "$(simv lat 1 '.groups[1].wakeups')"
echo "reference, no check: VM under EEVDF (first / last block): sleeper p50 $(vmv eevdf sleep_p50_us 1) / $(vmv eevdf sleep_p50_us) us, p99 $(vmv eevdf sleep_p99_us 1) / $(vmv eevdf sleep_p99_us) us, wakeups $(vmv eevdf sleep_count 1) / $(vmv eevdf sleep_count), nice0/nice5 x1000 $(vmv eevdf w_ratio_x1000 1) / $(vmv eevdf w_ratio_x1000)"
within() { awk -v a="$1" -v b="$2" -v lo="$3" -v hi="$4" 'BEGIN { exit !(a != "" && b > 0 && a / b >= lo && a / b <= hi) }' && echo 1 || echo 0; }
for p in gthulhu simple; do
	if [ $p = gthulhu ]; then vw=$vgw sw=$sgw v99=$vg99 s99=$sg99; else vw=$vsw sw=$ssw v99=$vs99 s99=$ss99; fi
	check "fairness ($p)" "VM ratio $vw vs sim $sw within +-15%" "$(within "${vw:-}" "$sw" 0.85 1.15)"
	check "latency ($p)" "VM p99 $v99 us / sim p99 $s99 us in [0.5, 2.0]" "$(within "${v99:-}" "$s99" 0.5 2.0)"
done
check "control (VM)" "simple p99 ${vs99:-?} >= 2 x gthulhu p99 ${vg99:-?}" "$(within "${vs99:-}" "${vg99:-0}" 2 1e9)"
check "control (sim)" "simple p99 $ss99 >= 2 x gthulhu p99 $sg99" "$(within "$ss99" "$sg99" 2 1e9)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
