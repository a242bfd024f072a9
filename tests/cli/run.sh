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
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
