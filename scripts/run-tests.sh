#!/usr/bin/env bash
# run-tests.sh SUITE...: run test suites and sum their results into one closing line.
# Suites: unit (build/tests/test_*), spec (busted under LuaJIT), transport (real BPF
# ringbufs on this kernel; needs root), fuzz (fuzz targets replay their corpus),
# install (make install/uninstall into a DESTDIR), compat (main.bpf.c against every cached
# kernel's BTF), vm (real sched_ext kernel in QEMU), all.
# Every suite ends with an "N passed, N failed" line (busted's summary is converted);
# a suite that crashes or prints no such line counts as one failure.
set -uo pipefail
cd "$(dirname "$0")/.."
B=build
total_pass=0 total_fail=0
declare -a summary=()

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
}

transport() {
	if [ "$(id -u)" != 0 ]; then
		echo "transport: needs root for bpf(): run as root (CI does)"; record transport 0 1; return
	fi
	run_suite transport "$B/tests/transport"
}

vm() { run_suite vm bash tests/vm/run.sh; }

fuzz() { run_suite fuzz-regress make --no-print-directory fuzz-regress; }

suites=("$@"); [ ${#suites[@]} -gt 0 ] || suites=(all)
for s in "${suites[@]}"; do
	case $s in
	unit) unit ;;
	spec) run_suite spec spec ;;
	transport) transport ;;
	vm) vm ;;
	fuzz) fuzz ;;
	install) run_suite install bash tests/install/run.sh ;;
	compat) run_suite bpf-compat bash tests/compat/build.sh ;;
	all) unit; run_suite spec spec; transport; fuzz; run_suite install bash tests/install/run.sh
	     run_suite bpf-compat bash tests/compat/build.sh; vm ;;
	*) echo "run-tests: unknown suite $s" >&2; exit 2 ;;
	esac
done

echo
echo "=== Summary"
printf '%s\n' "${summary[@]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
