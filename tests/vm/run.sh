#!/usr/bin/env bash
# tests/vm/run.sh [SCENARIO...] - the VM end-to-end suite (`make vmtest`).
#
# Builds the VM image and boots it (scripts/vm.sh test), then reads the console log:
# one "RESULT <name> PASS|FAIL key=value ... [reason=...]" line per scenario. Prints a table
# and ends with "N passed, N failed". Never hangs: vm.sh bounds the boot, each scenario
# (in the guest) and the whole QEMU run.
#
# A guest kernel crash (panic/oops on the console: a problem of the VM or emulator, not a
# scheduler assertion) is never a scheduler verdict: the scenario it happened in, and the
# ones after it that did not run, are run again in a new boot (gthulhu.retry=1 on its
# kernel command line); the results of the scenarios before it are kept. A scenario is
# retried once: a crash in its retry too makes it fail as a guest crash. Its line in the
# table says it was retried. A crash before any scenario began retries the boot once.
# A scenario with no RESULT line counts as failed, and the message says why: boot timeout,
# guest kernel crash, or the guest hung / ran out of time in that scenario.
# Files: build/vm/console.log (raw console of the last boot; a boot that crashed is kept as
# build/vm/console.bootN.log), build/vm/results.txt (the RESULT lines and the summary).
# Env: as for scripts/vm.sh (VM_ACCEL, VM_SMP, ...).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=build/vm
LOG=$OUT/console.log
RES=$OUT/results.txt
mapfile -t ALL < <(bash scripts/vm.sh list)   # one list of scenarios: scripts/vm.sh
scen=("$@"); [ ${#scen[@]} -gt 0 ] || scen=("${ALL[@]}")
# The kernel's own crash lines (scripts/vm.sh's CRASH_RE, read from there: one definition).
CRASH_RE=$(sed -n "s/^CRASH_RE='\(.*\)'$/\1/p" scripts/vm.sh)
[ -n "$CRASH_RE" ] || { echo "vmtest: no CRASH_RE in scripts/vm.sh"; echo "0 passed, ${#scen[@]} failed"; exit 1; }

mkdir -p "$OUT"
rm -f "$OUT"/console.boot*.log
t0=$SECONDS
declare -A line_of secs_of why_of retried note_of
todo=("${scen[@]}") boot=0 boot_s="" boot_crash_retried=0 crashes=()
while [ ${#todo[@]} -gt 0 ]; do
	boot=$((boot + 1))
	retry_arg=""; [ $boot -gt 1 ] && retry_arg="gthulhu.retry=1"
	EXTRA_APPEND=$retry_arg bash scripts/vm.sh test "${todo[@]}"
	vmrc=$?
	if [ ! -s "$LOG" ]; then
		for s in "${todo[@]}"; do why_of[$s]="no console log ($LOG): the VM could not be started (vm.sh exit $vmrc)"; done
		break
	fi
	[ -n "$boot_s" ] || boot_s=$(grep -m1 'GUEST-READY kernel=' "$LOG" | sed -n 's/.*uptime=\([0-9.]*\).*/\1/p')
	crash=$(grep -m1 -nE "$CRASH_RE" "$LOG" || true)
	boot_to=$(grep -c '^VM-HOST boot-timeout' "$LOG")
	ready=$(grep -c 'GUEST-READY kernel=' "$LOG")
	# The scenario the crash happened in: the last one that began before the crash line.
	crashed=""
	[ -n "$crash" ] && crashed=$(head -n "${crash%%:*}" "$LOG" | grep -o 'SCENARIO-BEGIN [^ ]*' | tail -n 1 | cut -d' ' -f2)
	blog=$LOG
	if [ -n "$crash" ]; then
		blog=$OUT/console.boot$boot.log
		mv "$LOG" "$blog"
		crashes+=("boot $boot: ${crash#*:} (line ${crash%%:*} of $blog${crashed:+, during $crashed})")
	fi
	next=()
	for s in "${todo[@]}"; do
		if [ -n "$crash" ] && [ "$s" = "$crashed" ]; then
			if [ -z "${retried[$s]:-}" ]; then
				retried[$s]=1; next+=("$s")
				note_of[$s]="retried in a new boot after a guest kernel crash during it in boot $boot"
				echo "vmtest: GUEST KERNEL CRASH during $s (${crash#*:}; $blog): a VM/emulator problem, not a scheduler result; $s and the scenarios after it run again in a new boot"
			else
				why_of[$s]="GUEST KERNEL CRASH during this scenario in its retry boot too (${crash#*:}): a VM/emulator problem, not a scheduler assertion"
			fi
			continue
		fi
		line=$(grep -m1 -o "RESULT $s .*" "$blog" || true)
		if [ -n "$line" ]; then
			line_of[$s]=$line
			secs_of[$s]=$(grep -m1 -o "SCENARIO-END $s .*" "$blog" | sed -n 's/.*ms=\([0-9]*\).*/\1/p')
		elif [ -n "$crash" ] && [ -z "$crashed" ] && [ $boot_crash_retried = 0 ]; then
			next+=("$s")   # the guest crashed before any scenario: one more boot
		elif [ -n "$crash" ] && [ -n "$crashed" ]; then
			next+=("$s")   # after the crashed scenario: not run yet
		elif [ -n "$crash" ]; then
			why_of[$s]="not run: the guest kernel crashed before any scenario, in the retry boot too (${crash#*:})"
		elif [ "$boot_to" -gt 0 ] || [ "$ready" -eq 0 ]; then
			why_of[$s]="VM did not boot (boot timeout or QEMU failure; see $blog): not a scheduler result"
		elif grep -q "SCENARIO-BEGIN $s " "$blog"; then
			why_of[$s]="no result: the guest hung or ran out of time in this scenario (whole-VM limit hit)"
		else
			why_of[$s]="not run: the VM stopped before reaching it (time limit or hang in an earlier scenario)"
		fi
	done
	if [ -n "$crash" ] && [ -z "$crashed" ]; then
		[ $boot_crash_retried = 0 ] && echo "vmtest: GUEST KERNEL CRASH before any scenario (${crash#*:}; $blog): booting once more"
		boot_crash_retried=1
	fi
	todo=("${next[@]}")
done
elapsed=$((SECONDS - t0))

pass=0 fail=0
failed=()
: > "$RES"
printf '\n%-16s %-5s %7s  %s\n' SCENARIO RESULT SECONDS "KEY FIGURES / REASON" | tee -a "$RES"
for s in "${scen[@]}"; do
	ms=${secs_of[$s]:-}
	secs=$([ -n "$ms" ] && awk -v m="$ms" 'BEGIN{printf "%.1f", m/1000}' || echo -)
	line=${line_of[$s]:-}
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
		why=${why_of[$s]:-no result line}
		printf '%-16s %-5s %7s  %s\n' "$s" FAIL "$secs" "$why" | tee -a "$RES"
		failed+=("FAIL $s: $why")
	fi
	[ -n "${note_of[$s]:-}" ] && printf '%-16s %-5s %7s  note: %s\n' "" "" "" "${note_of[$s]}" | tee -a "$RES"
done
echo | tee -a "$RES"
echo "vmtest: boot to guest init ${boot_s:-?} s (guest uptime), $boot boot(s), whole VM run ${elapsed} s; console log $LOG, results $RES" | tee -a "$RES"
for c in "${crashes[@]}"; do
	echo "vmtest: WARNING: the guest kernel crashed, $c: a VM/emulator problem, not a scheduler failure" | tee -a "$RES"
done
# One line per failed scenario with its reason (scripts/run-tests.sh carries "FAIL" lines
# into its summary).
[ ${#failed[@]} -eq 0 ] || printf '%s\n' "${failed[@]}" | tee -a "$RES"
echo "$pass passed, $fail failed" | tee -a "$RES"
[ "$fail" -eq 0 ]
