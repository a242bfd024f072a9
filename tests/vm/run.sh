#!/usr/bin/env bash
# tests/vm/run.sh [SCENARIO...] - the VM end-to-end suite (`make vmtest`).
#
# Builds the VM image and boots it (scripts/vm.sh test), then reads the console log:
# one "RESULT <name> PASS|FAIL key=value ... [reason=...]" line per scenario. Prints a table
# and ends with "N passed, N failed". Never hangs: vm.sh bounds the boot, each scenario
# (in the guest) and the whole QEMU run.
#
# A scenario with no RESULT line counts as failed, and the message says why: boot timeout,
# guest kernel crash (panic/oops: a problem of the VM or emulator, not a scheduler
# assertion), or the guest hung / ran out of time in that scenario.
# Files: build/vm/console.log (raw console), build/vm/results.txt (the RESULT lines and
# the summary).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=build/vm
LOG=$OUT/console.log
RES=$OUT/results.txt
mapfile -t ALL < <(bash scripts/vm.sh list)   # one list of scenarios: scripts/vm.sh
scen=("$@"); [ ${#scen[@]} -gt 0 ] || scen=("${ALL[@]}")

mkdir -p "$OUT"
t0=$SECONDS
bash scripts/vm.sh test "${scen[@]}"
vmrc=$?
elapsed=$((SECONDS - t0))

if [ ! -s "$LOG" ]; then
	echo "vmtest: no console log ($LOG): the VM could not be started (vm.sh exit $vmrc)"
	echo "0 passed, ${#scen[@]} failed"
	exit 1
fi

crash=$(grep -m1 -nE '\[ *[0-9]+\.[0-9]+\] .*(Kernel panic|Oops|BUG: |general protection fault|invalid opcode:|kernel BUG)' "$LOG" || true)
boot_to=$(grep -c '^VM-HOST boot-timeout' "$LOG")
ready=$(grep -c 'GUEST-READY kernel=' "$LOG")
boot_s=$(grep -m1 'GUEST-READY kernel=' "$LOG" | sed -n 's/.*uptime=\([0-9.]*\).*/\1/p')

pass=0 fail=0
failed=()
: > "$RES"
printf '\n%-16s %-5s %7s  %s\n' SCENARIO RESULT SECONDS "KEY FIGURES / REASON" | tee -a "$RES"
for s in "${scen[@]}"; do
	line=$(grep -m1 -o "RESULT $s .*" "$LOG" || true)
	ms=$(grep -m1 -o "SCENARIO-END $s .*" "$LOG" | sed -n 's/.*ms=\([0-9]*\).*/\1/p')
	secs=$([ -n "$ms" ] && awk -v m="$ms" 'BEGIN{printf "%.1f", m/1000}' || echo -)
	if [ -n "$line" ]; then
		verdict=$(awk '{print $3}' <<<"$line")
		rest=$(cut -d' ' -f4- <<<"$line")
		[ "$verdict" = PASS ] && pass=$((pass + 1)) || { verdict=FAIL; fail=$((fail + 1)); }
		figures=${rest%%reason=*}
		reason=""; [[ $rest == *reason=* ]] && reason=${rest#*reason=}
		printf '%-16s %-5s %7s  %s\n' "$s" "$verdict" "$secs" "$figures" | tee -a "$RES"
		[ -n "$reason" ] && printf '%-16s %-5s %7s  reason: %s\n' "" "" "" "$reason" | tee -a "$RES"
		[ "$verdict" = PASS ] || failed+=("FAIL $s: ${reason:-$figures}")
	else
		fail=$((fail + 1))
		if [ "$boot_to" -gt 0 ] || [ "$ready" -eq 0 ]; then
			why="VM did not boot (boot timeout or QEMU failure; see $LOG): not a scheduler result"
		elif [ -n "$crash" ] && grep -q "SCENARIO-BEGIN $s " "$LOG"; then
			why="GUEST KERNEL CRASH during this scenario (${crash#*:}): a VM/emulator problem, not a scheduler assertion"
		elif [ -n "$crash" ]; then
			why="not run: the guest kernel crashed earlier (${crash#*:})"
		elif grep -q "SCENARIO-BEGIN $s " "$LOG"; then
			why="no result: the guest hung or ran out of time in this scenario (whole-VM limit hit)"
		else
			why="not run: the VM stopped before reaching it (time limit or hang in an earlier scenario)"
		fi
		printf '%-16s %-5s %7s  %s\n' "$s" FAIL "$secs" "$why" | tee -a "$RES"
		failed+=("FAIL $s: $why")
	fi
done
echo | tee -a "$RES"
echo "vmtest: boot to guest init ${boot_s:-?} s (guest uptime), whole VM run ${elapsed} s; console log $LOG, results $RES" | tee -a "$RES"
if [ -n "$crash" ]; then
	echo "vmtest: WARNING: the guest kernel crashed (line ${crash%%:*} of $LOG): this is a VM/emulator problem, not a scheduler failure" | tee -a "$RES"
fi
# One line per failed scenario with its reason (scripts/run-tests.sh carries "FAIL" lines
# into its summary).
[ ${#failed[@]} -eq 0 ] || printf '%s\n' "${failed[@]}" | tee -a "$RES"
echo "$pass passed, $fail failed" | tee -a "$RES"
[ "$fail" -eq 0 ]
