#!/usr/bin/env bash
# tests/sim/run.sh [--update] [NAME...]: the simulator's data-driven tests (tests/sim/cases.txt).
# Each case runs build/gthulhu-lua with its args and checks the exit code, jq expressions
# on its JSON stdout, a golden stdout file (tests/sim/golden/), the exact stderr, and shell
# checks. --update rewrites the golden files from the current output (review the diff!).
# Ends with "N passed, N failed". `make test` runs it (scripts/run-tests.sh sim).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=$ROOT/build/gthulhu-lua
CASES=tests/sim/cases.txt
update=0
[ "${1:-}" = --update ] && { update=1; shift; }
only=("$@")
pass=0 fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

subst() { sed -e "s|@ROOT@|$ROOT|g" -e "s|@TMP@|$tmp/case|g" -e "s|@T@|$tmp/case/t.yaml|g" <<<"$1"; }

run_case() { # uses: name args exitc yaml jqs golden stderr_exp shs
	rm -rf "$tmp/case"; mkdir -p "$tmp/case"
	[ -n "$yaml" ] && printf '%s' "$yaml" > "$tmp/case/t.yaml"
	local a; a=$(subst "$args")
	local rc
	# shellcheck disable=SC2086
	(cd "$tmp/case" && eval "\"$BIN\" $a" > out.raw 2> err.raw); rc=$?
	# paths relative to the repository, so the golden files hold in any checkout
	sed "s|$tmp/case/||g; s|$ROOT/||g" "$tmp/case/out.raw" > "$tmp/case/out.txt"
	# the measured-cost lines vary run to run: everything else must match exactly
	grep -v ' simulated in .* real, ' "$tmp/case/err.raw" | sed "s|$tmp/case/||g; s|$ROOT/||g" > "$tmp/case/err.txt"
	local why=""
	[ "$rc" = "$exitc" ] || why="exit $rc, expected $exitc"
	local j
	while IFS= read -r j; do
		[ -n "$j" ] || continue
		[ -z "$why" ] || break
		r=$(jq -e "$(subst "$j")" "$tmp/case/out.txt" 2>&1) || why="jq '$j' -> $r"
	done <<<"$jqs"
	if [ -z "$why" ] && [ -n "$golden" ]; then
		if [ $update = 1 ]; then cp "$tmp/case/out.txt" "tests/sim/golden/$golden"
		elif ! diff -u "tests/sim/golden/$golden" "$tmp/case/out.txt" > "$tmp/diff" 2>&1; then
			why="stdout differs from tests/sim/golden/$golden:"$'\n'"$(head -n 20 "$tmp/diff")"
		fi
	fi
	if [ -z "$why" ] && [ -n "$stderr_exp" ]; then
		if [ "$(cat "$tmp/case/err.txt")" != "$stderr_exp" ]; then
			why="stderr differs:"$'\n'"--- expected"$'\n'"$stderr_exp"$'\n'"--- got"$'\n'"$(cat "$tmp/case/err.txt")"
		fi
	fi
	while IFS= read -r j; do
		[ -n "$j" ] || continue
		[ -z "$why" ] || break
		(cd "$tmp/case" && eval "$(subst "$j")") > "$tmp/sh.txt" 2>&1 || why="check failed: $j"$'\n'"$(tail -n 5 "$tmp/sh.txt")"
	done <<<"$shs"
	if [ -z "$why" ]; then
		pass=$((pass + 1)); echo "ok   $name"
	else
		fail=$((fail + 1)); echo "FAIL $name: $why"
		head -n 5 "$tmp/case/err.raw" | sed 's/^/     stderr: /'
	fi
}

name="" mode=""
while IFS= read -r line || [ -n "$line" ]; do
	case $line in
	'%% case '*) name=${line#%% case }; args="" exitc=0 yaml="" jqs="" golden="" stderr_exp="" shs="" mode="";;
	'%% args '*) args=${line#%% args }; mode="";;
	'%% exit '*) exitc=${line#%% exit }; mode="";;
	'%% jq '*) jqs+=${line#%% jq }$'\n'; mode="";;
	'%% sh '*) shs+=${line#%% sh }$'\n'; mode="";;
	'%% stdout '*) golden=${line#%% stdout }; mode="";;
	'%% yaml') mode=yaml;;
	'%% stderr') mode=stderr;;
	'%% end')
		[ -n "$stderr_exp" ] && stderr_exp=${stderr_exp%$'\n'}
		if [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" $name "* ]]; then run_case; fi
		name="" mode="";;
	*)
		if [ -n "$name" ] && [ "$mode" = yaml ]; then yaml+=$line$'\n'
		elif [ -n "$name" ] && [ "$mode" = stderr ]; then stderr_exp+=$line$'\n'
		fi;;
	esac
done < "$CASES"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
