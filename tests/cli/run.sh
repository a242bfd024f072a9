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
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
