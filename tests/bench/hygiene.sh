#!/usr/bin/env bash
# tests/bench/hygiene.sh - the bench's hot-path hygiene assertions on a short run, for
# `make test` (suite "hygiene"): no page fault, C-heap growth, Lua live-heap growth or Lua
# allocation per task in steady state (build/bench/bridge hygiene, every policy and batch
# size), and no syscall per task through the real ringbufs (strace -c of build/bench/xport,
# root only). Performance figures stay in `make bench`; these are pass/fail properties.
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
B=build/bench
pass=0 fail=0
[ -x $B/bridge ] || { echo "hygiene: $B/bridge not built (make bench-bins)"; echo "0 passed, 1 failed"; exit 1; }

out=$($B/bridge hygiene 2>&1); rc=$?
printf '%s\n' "$out" | grep -E '^(FAIL|hygiene:)'
rows=$(grep -cE '^(floor|echo|simple|gthulhu|gthulhu-b1) +[0-9]+ ' <<<"$out")
bad=$(grep -c '^FAIL' <<<"$out")
if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
pass=$((pass + rows - bad)); fail=$((fail + bad))
echo "hygiene: bridge: $rows policy x batch rows checked, $bad violations"

# Negative control: a policy that keeps one table per batch must be reported as a leak.
leak=$(HYGIENE_ONLY=tests/bench/leak.lua $B/bridge hygiene 2>&1)
if grep -q '^FAIL echo batch 512: Lua live heap grew .* (a leak)' <<<"$leak"; then
	pass=$((pass + 1)); echo "ok   hygiene: a policy leaking a table per batch is reported"
else
	fail=$((fail + 1)); echo "FAIL hygiene: tests/bench/leak.lua (a table per batch) was not reported as a leak:"
	printf '%s\n' "$leak" | tail -n 5 | sed 's/^/     /'
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "hygiene: syscall count skipped (needs root for bpf())"
elif ! command -v strace >/dev/null; then
	echo "hygiene: FAIL syscall count: strace not installed (scripts/deps.sh installs it)"; fail=$((fail + 1))
else
	count() { # policy n cycles -> "syscalls progruns"
		local log pr
		log=$(mktemp)
		pr=$(strace -c -o "$log" $B/xport count "$1" "$2" "$3" | awk '/^PROG_RUNS/ { print $2 }')
		echo "$(awk '$NF == "total" { print $4 }' "$log") ${pr:-0}"
		rm -f "$log"
	}
	for p in echo gthulhu; do
		n=512 c=64
		read -r a0 _ < <(count $p $n 0); read -r a1 pr < <(count $p $n $c)
		s=$((a1 - a0 - pr))
		pt=$(awk -v s=$s -v c=$c -v n=$n 'BEGIN { printf "%.5f", s / (c * n) }')
		if awk -v x="$pt" 'BEGIN { exit !(x < 0.01) }'; then
			pass=$((pass + 1)); echo "ok   hygiene: $p batch $n: $pt syscalls per task"
		else
			fail=$((fail + 1)); echo "FAIL hygiene: $p batch $n: $pt syscalls per task (limit 0.01)"
		fi
	done
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
