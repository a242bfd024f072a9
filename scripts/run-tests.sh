#!/usr/bin/env bash
# run-tests.sh SUITE...: run test suites and sum their results into one closing line.
# Suites: unit (build/tests/test_*, tests/cli/run.sh), spec (busted under LuaJIT), bpfunit
# (the scheduler's BPF helpers in SEC("syscall") programs; root), transport (real BPF
# ringbufs on this kernel; needs root), dryrun (--dry-run end to end), api (HTTP API on
# loopback, driven by curl), host (run loop, signals, output, reloads through --dry-run),
# asan (make asan-build: C tests, transport, --check under ASan+UBSan+LSan), hygiene (the
# bench's no-fault/alloc/syscall-per-task assertions, short run), fuzz (fuzz targets
# replay their corpus), install (make install/uninstall into a DESTDIR), sim (the
# simulator, record and replay: tests/sim), compat (main.bpf.c against every cached
# kernel's BTF), readme (README.md against the code: tests/readme), vm (real sched_ext
# kernel in QEMU), vm-multi (the custody and heartbeat scenarios again on multi-threaded
# TCG: tests/vm/run.sh with VM_ACCEL=multi), all.
# Every suite ends with an "N passed, N failed" line (busted's summary is converted);
# a suite that crashes or prints no such line counts as one failure.
set -uo pipefail
cd "$(dirname "$0")/.."
B=build
total_pass=0 total_fail=0
declare -a summary=() failed_checks=()

record() { # name pass fail
	total_pass=$((total_pass + $2)); total_fail=$((total_fail + $3))
	summary+=("$(printf '%-28s %5d passed, %3d failed' "$1" "$2" "$3")")
}

# run_suite NAME CMD...: run, show output, pick up the last "N passed, N failed" line.
run_suite() {
	local name=$1; shift
	local log; log=$(mktemp)
	echo "=== $name"
	"$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	local line; line=$(grep -E '^([A-Za-z_-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	# The names of failed checks go into the summary too: CI shows only its tail, and a
	# bare "1 failed" there says nothing about which check to look at.
	local f_line
	while IFS= read -r f_line; do
		failed_checks+=("$name: ${f_line:0:200}")
	done < <(grep -E '^(FAIL|not ok)' "$log" | head -n 8)
	rm -f "$log"
	if [ -z "$line" ]; then
		echo "$name: no result line (exit $rc): counted as one failure"
		record "$name" 0 1; return
	fi
	local p f
	p=$(sed -E 's/^([A-Za-z_-]+: )?([0-9]+) passed.*/\2/' <<<"$line")
	f=$(sed -E 's/^([A-Za-z_-]+: )?[0-9]+ passed, ([0-9]+) failed.*/\2/' <<<"$line")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "$name: exited $rc with no failed check: counted as one failure"; f=1
	fi
	record "$name" "$p" "$f"
}

spec() {
	# busted prints "N successes / N failures / N errors / N pending"; turn it into our line.
	local out rc
	out=$(LUA_PATH="$B/gen/?.lua;policies/lib/?.lua;policies/?.lua;spec/?.lua;;" \
		busted --lua=luajit -o utfTerminal spec 2>&1); rc=$?
	printf '%s\n' "$out"
	local s f e
	s=$(grep -oE '[0-9]+ success' <<<"$out" | tail -n 1 | grep -oE '[0-9]+')
	f=$(grep -oE '[0-9]+ failure' <<<"$out" | tail -n 1 | grep -oE '[0-9]+')
	e=$(grep -oE '[0-9]+ error' <<<"$out" | tail -n 1 | grep -oE '[0-9]+')
	[ -n "$s" ] || { echo "spec: busted printed no summary"; return 1; }
	echo "$s passed, $((f + e)) failed"
	return $rc
}

unit() {
	local t
	for t in "$B"/tests/test_*; do
		[ -x "$t" ] || continue
		run_suite "unit/$(basename "$t")" "$t"
	done
	run_suite unit/cli bash tests/cli/run.sh
}

transport() {
	if [ "$(id -u)" != 0 ]; then
		echo "transport: needs root for bpf(): run as root (CI does)"; record transport 0 1; return
	fi
	run_suite transport "$B/tests/transport"
}

bpfunit() {
	if [ "$(id -u)" != 0 ]; then
		echo "bpfunit: needs root for bpf(): run as root (CI does)"; record bpfunit 0 1; return
	fi
	run_suite bpfunit "$B/tests/bpfunit"
}

vm() { run_suite vm bash tests/vm/run.sh; }
# The scenarios that stress custody and the heartbeat once more on multi-threaded TCG, where
# the two vCPUs really run at once (single-threaded TCG interleaves them in coarse slices and
# hides cross-CPU races). A guest crash is retried once and reported as such (tests/vm/run.sh).
VM_MT_SCENARIOS=(attach_gthulhu attach_simple custody_check host_threads starve prio_hog stress_gthulhu stress_simple)
vm-multi() { VM_ACCEL=multi run_suite vm-multi bash tests/vm/run.sh "${VM_MT_SCENARIOS[@]}"; }

dryrun() { run_suite dryrun bash tests/dryrun/run.sh; }
host() { run_suite host bash tests/host/run.sh; }

# asan: the build/asan tree (make asan-build): every unit test, the transport test (root)
# and --check of every shipped policy, each one check: exit 0 and no sanitizer report.
asan_run() {
	local A=$B/asan pass=0 fail=0 t p log
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allow_user_segv_handler=1
	export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
	[ -x $A/gthulhu-lua ] || { echo "asan: $A not built (make asan-build)"; echo "0 passed, 1 failed"; return 1; }
	log=$(mktemp)
	one() { # name cmd...
		local name=$1; shift
		if "$@" >"$log" 2>&1 && ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
			pass=$((pass + 1)); echo "ok   asan: $name"
		else
			fail=$((fail + 1)); echo "FAIL asan: $name"; grep -E -A20 'Sanitizer|runtime error:|FAIL' "$log" | head -n 40
		fi
	}
	for t in $A/tests/test_*; do [ -x "$t" ] && one "$(basename "$t")" "$t"; done
	if [ "$(id -u)" = 0 ]; then one transport $A/tests/transport; else echo "asan: transport skipped (needs root)"; fi
	for p in policies/*.lua; do one "--check $p" $A/gthulhu-lua --check "$p"; done
	one "cli cases" env BIN=$A/gthulhu-lua bash tests/cli/run.sh
	rm -f "$log"
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
}
asan() { run_suite asan asan_run; }
hygiene() { run_suite hygiene bash tests/bench/hygiene.sh; }

api() { run_suite api bash tests/api/run.sh; }

fuzz() { run_suite fuzz-regress make --no-print-directory fuzz-regress; }

sim() { run_suite sim bash tests/sim/run.sh; }

readme() { run_suite readme bash tests/readme/run.sh; }

suites=("$@"); [ ${#suites[@]} -gt 0 ] || suites=(all)
for s in "${suites[@]}"; do
	case $s in
	unit) unit ;;
	spec) run_suite spec spec ;;
	transport) transport ;;
	bpfunit) bpfunit ;;
	vm) vm ;;
	vm-multi) vm-multi ;;
	fuzz) fuzz ;;
	dryrun) dryrun ;;
	install) run_suite install bash tests/install/run.sh ;;
	host) host ;;
	asan) asan ;;
	hygiene) hygiene ;;
	sim) sim ;;
	readme) readme ;;
	api) api ;;
	compat) run_suite bpf-compat bash tests/compat/build.sh ;;
	all) unit; run_suite spec spec; readme; transport; bpfunit; sim; dryrun; api; host; asan; hygiene; fuzz
	     run_suite install bash tests/install/run.sh
	     run_suite bpf-compat bash tests/compat/build.sh; vm; vm-multi ;;
	*) echo "run-tests: unknown suite $s" >&2; exit 2 ;;
	esac
done

echo
echo "=== Summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed_checks[@]} -gt 0 ]; then
	echo "--- failed checks (first lines of each suite's failures):"
	printf '  %s\n' "${failed_checks[@]}"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
