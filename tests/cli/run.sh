#!/usr/bin/env bash
# tests/cli/run.sh - the command line, data-driven (tests/cli/cases.txt): exit code and a
# piece of the output per case. Ends with "N passed, N failed". No root needed.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/gthulhu-lua}
pass=0 fail=0
while IFS='|' read -r want text args; do
	want=${want// /}
	case $want in ''|'#'*) continue ;; esac
	text=$(sed -E 's/^ +//; s/ +$//' <<<"$text")
	# shellcheck disable=SC2086
	out=$($BIN $args 2>&1); rc=$?
	if [ "$rc" = "$want" ] && { [ -z "$text" ] || grep -qF -- "$text" <<<"$out"; }; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL: gthulhu-lua $args: exit $rc (want $want), output:"
		sed 's/^/    /' <<<"$out"
		echo "    (wanted: $text)"
	fi
done < tests/cli/cases.txt
# The default policy (scheduler.policy, relative) is found from any working directory:
# next to the executable (this checkout), or in the installed data directory.
# (Only for the checkout's build/gthulhu-lua: build/asan/gthulhu-lua has no policies/ next
# to its directory's parent.)
abs=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
if [ -d "$(dirname "$abs")/../policies" ]; then
	out=$(cd /tmp && "$abs" --check 2>&1); rc=$?
	if [ "$rc" = 0 ] && grep -q 'check OK: .*policy /.*policies/gthulhu.lua' <<<"$out"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1)); echo "FAIL: default policy from /tmp: exit $rc: $out"
	fi
else
	echo "skip: default policy from /tmp ($BIN is not in a checkout's build/)"
fi
out=$(cd /tmp && "$abs" --check no-such-dir/p.lua 2>&1); rc=$?
if [ "$rc" = 4 ] && grep -q 'no-such-dir/p.lua' <<<"$out"; then
	pass=$((pass + 1))
else
	fail=$((fail + 1)); echo "FAIL: a missing explicit policy is named: exit $rc: $out"
fi
# --record to a path that cannot be written, with the API on: exit 2 naming the file, and
# every exit path tears down what startup built (the API included: its port, its threads,
# its memory). Under ASan (the asan suite runs this file with build/asan/gthulhu-lua),
# LeakSanitizer then finds nothing the host allocated (globals and thread stacks not
# counted as roots, so what a still-running API holds shows up; library noise is ignored).
T=$(mktemp -d /tmp/gthulhu-cli-test.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'api:\n  enabled: true\n  auth: false\n  port: %s\n' "$port" >"$T/api.yaml"
out=$(ASAN_OPTIONS=detect_leaks=0 timeout -s KILL 20 "$BIN" --dry-run -c "$T/api.yaml" \
	--record "$T/no-such-dir/x.rec" policies/simple.lua 2>&1); rc=$?
if [ "$rc" = 2 ] && grep -qF -- "--record: $T/no-such-dir/x.rec: No such file or directory" <<<"$out"; then
	pass=$((pass + 1))
else
	fail=$((fail + 1)); echo "FAIL: --record unwritable with the API on: exit $rc (want 2): $out"
fi
if grep -qa __asan_init "$BIN"; then
	out=$(ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=use_globals=0:use_stacks=0:use_tls=0 \
		timeout -s KILL 20 "$BIN" --dry-run -c "$T/api.yaml" --record "$T/no-such-dir/x.rec" \
		policies/simple.lua 2>&1)
	if grep -qE '^    #[0-9]+ .* host/' <<<"$out"; then
		fail=$((fail + 1))
		echo "FAIL: --record unwritable with the API on: the host's memory is left at exit:"
		grep -E '^    #[0-9]+ .* host/' <<<"$out" | sort -u | head -n 8 | sed 's/^/    /'
	else
		pass=$((pass + 1))
	fi
fi
rm -rf "$T"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
