#!/usr/bin/env bash
# regress.sh FZDIR TARGET...: replay every committed input of each fuzz target once
# (tests/fuzz/corpus/TARGET/* and tests/fuzz/regress/TARGET/*, libFuzzer's run-these-files
# mode, -runs=0 = once each). Prints "N passed, N failed": N inputs replayed by targets that
# did not crash / N targets that crashed (or could not run). `make fuzz-regress` runs it.
set -uo pipefail
cd "$(dirname "$0")/../.."
fz=$1; shift
passed=0 failed=0
for t in "$@"; do
	files=()
	for d in tests/fuzz/corpus/"$t" tests/fuzz/regress/"$t"; do
		[ -d "$d" ] || continue
		for f in "$d"/*; do [ -f "$f" ] && files+=("$f"); done
	done
	if [ ! -x "$fz/$t" ]; then
		echo "fuzz-regress: $t: $fz/$t not built"; failed=$((failed + 1)); continue
	fi
	# No files would make libFuzzer fuzz forever.
	[ ${#files[@]} -gt 0 ] || { echo "fuzz-regress: $t: no inputs"; continue; }
	log=$(mktemp)
	if "$fz/$t" -runs=0 -timeout=10 "${files[@]}" >"$log" 2>&1; then
		echo "fuzz-regress: $t: ${#files[@]} inputs replayed"
		passed=$((passed + ${#files[@]}))
	else
		echo "fuzz-regress: $t: FAILED"
		grep -E '^Running: ' "$log" | tail -n 1
		grep -vE '^(Running|Executed) ' "$log" | tail -n 40
		failed=$((failed + 1))
	fi
	rm -f "$log"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
