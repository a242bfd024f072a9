#!/usr/bin/env bash
# tests/readme/run.sh - suite "readme": README.md checked against the code by
# tests/readme/check.py (config keys, HTTP routes, test suites, VM scenarios, make
# targets, repository paths, --help options, the stats: line, exit codes, the policy
# API, required sections; see its header), then
# the same checker on mutated copies of the README (and of the code), each of which must
# fail naming the problem: a check that cannot fail does not count. No root; seconds.
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/gthulhu-lua}
CHECK=tests/readme/check.py
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0

# 1. The README itself: every item the checker looks at is one check.
out=$(python3 $CHECK --bin "$BIN" README.md 2>&1); rc=$?
printf '%s\n' "$out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$out" | tail -n 1)
if [ -z "$line" ]; then
	echo "FAIL readme: $CHECK printed no result line (exit $rc)"; fail=$((fail + 1))
else
	p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
	pass=$((pass + p)); fail=$((fail + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL readme: $CHECK exited $rc with no failure"; fail=$((fail + 1))
	fi
fi

# 2. Negative tests. mutant NAME 'EXPECTED ERE'... -- CMD...: CMD turns README.md (stdin)
# into the mutant (stdout); the checker must exit 1 and print every EXPECTED pattern.
# ROOT (default: this checkout) and MBIN (default: $BIN) are the checker's --root, --bin;
# SKIP its --skip (default: stats, whose 1 s dry run only the stats mutants need).
mutant() {
	local name=$1; shift
	local -a want=()
	while [ "$1" != -- ]; do want+=("$1"); shift; done; shift
	"$@" <README.md >"$T/README.md"
	if cmp -s README.md "$T/README.md" && [ -z "${ROOT:-}${MBIN:-}" ]; then
		echo "FAIL readme negative: $name: the mutation changed nothing"; fail=$((fail + 1)); return
	fi
	local o r w missing=""
	o=$(python3 $CHECK --root "${ROOT:-.}" --bin "${MBIN:-$BIN}" --skip "${SKIP-stats}" "$T/README.md" 2>&1); r=$?
	for w in "${want[@]}"; do grep -qE -- "$w" <<<"$o" || missing+=" [$w]"; done
	if [ "$r" = 1 ] && [ -z "$missing" ]; then
		echo "ok   readme negative: $name"; pass=$((pass + 1))
	else
		echo "FAIL readme negative: $name: exit $r (want 1), missing$missing; it said:"
		grep -E '^(FAIL|skip)' <<<"$o" | sed 's/^/    /' | head -n 20
		fail=$((fail + 1))
	fi
}
R='README\.md:[0-9]+: '   # a README reference names the line

# Sections and suites.
mutant "the Tests section removed" \
	"no '## Tests' section" "no suite table .* in ## Tests" \
	-- awk '/^## /{skip = ($0 == "## Tests")} !skip'
mutant "a required section renamed" "no '## Troubleshooting' section" \
	-- sed 's/^## Troubleshooting$/## Trouble/'
mutant "a suite's row removed" "suite 'hygiene' of scripts/run-tests.sh .* has no row" \
	-- sed '/^| hygiene |/d'
mutant "a row for a suite that does not exist" "${R}suite 'nosuchsuite' is not one" \
	-- sed 's/^| hygiene |/| nosuchsuite | x | y |\n&/'
mutant "run-tests.sh with a suite it does not have" "${R}\`scripts/run-tests.sh nosuchsuite\`" \
	-- sed '$a Run `bash scripts/run-tests.sh unit nosuchsuite`.'

# The real incident: the README of commit 1316e55, where a script updating a benchmark
# table had cut 198 lines (the calibration results, the whole Tests section, the start of
# Benchmarks) and nothing noticed. (Skipped, not counted, in a clone without that commit.)
if git cat-file -e 1316e55:README.md 2>/dev/null; then
	mutant "the README of 1316e55 (198 lines cut)" "no '## Tests' section" "no '## Benchmarks' section" \
		-- git show 1316e55:README.md
else
	echo "skip readme negative: the README of 1316e55: that commit is not in this clone"
fi

# Config keys.
mutant "a config key removed" 'config key `scheduler.host_poll_us` \(host/cfg\.c:[0-9]+\) has no row' \
	-- sed '/^| `scheduler.host_poll_us` |/d'
mutant "an api key removed from the HTTP API table" 'config key `api.max_connections` \(host/cfg\.c:[0-9]+\)' \
	-- sed '/^| `api.max_connections` |/d'
mutant "a config key renamed in the docs only" \
	'config key `scheduler.wake_delay_us` \(host/cfg\.c:[0-9]+\) has no row' \
	"${R}config key \`scheduler.wake_delay_ms\` is not in host/cfg.c" \
	-- sed 's/^| `scheduler.wake_delay_us` |/| `scheduler.wake_delay_ms` |/'
mutant "a wrong default" "${R}\`dryrun.rate\` has default '2000' in the README, '20000' in host/cfg.c:[0-9]+" \
	-- sed 's/^| `dryrun.rate` | u32 | 20000 |/| `dryrun.rate` | u32 | 2000 |/'
mutant "a wrong type" "${R}\`scheduler.partial\` has type 'u32' in the README, 'bool'" \
	-- sed 's/^| `scheduler.partial` | bool |/| `scheduler.partial` | u32 |/'
mutant "a strategy key removed from the example" 'strategy key `execution_time` \(host/cfg\.c:[0-9]+\) is not in the strategies example' \
	-- sed '/^    execution_time: /d'
mutant "a dotted key in prose that does not exist" "${R}\`scheduler.no_such_key\` is named as a config key" \
	-- sed '$a Set `scheduler.no_such_key: 1` for that.'

# Routes.
mutant "a route removed" 'route GET /api/v1/pods/pids \(host/api/server\.c:[0-9]+\) is not in the README' \
	-- sed '/localhost:8080\/api\/v1\/pods\/pids/d'
mutant "a route's method changed" 'route DELETE /api/v1/strategies/ID \(host/api/server\.c:[0-9]+\)' \
	"${R}GET /api/v1/strategies/2 is not a route" \
	-- sed 's|-X DELETE localhost:8080/api/v1/strategies/2|localhost:8080/api/v1/strategies/2|'
mutant "a route that is not served" "${R}DELETE /api/v1/config is not a route" \
	-- sed '$a Then `DELETE /api/v1/config` resets it.'

# VM scenarios, make targets, paths.
mutant "a VM scenario no longer named" "VM scenario 'prio_hog' \(scripts/vm\.sh ALL_SCENARIOS\) is not named" \
	-- sed 's/prio_hog/prio-h0g/g'
mutant "a bogus make target" "${R}\`make nosuchtarget\`: the Makefile has no target" \
	-- sed '$a Run `make nosuchtarget` first.'
mutant "a bogus make target in a code block" "${R}\`make nosuchtarget2\`" \
	-- sed '$a ```sh\nsudo make nosuchtarget2 PREFIX=/usr   # comment\n```'
mutant "a path that does not exist" "${R}\`tests/vm/nosuch\.sh\` does not exist" \
	-- sed '$a See `tests/vm/nosuch.sh`.'
mutant "a path in a code block that does not exist" "${R}\`config/workloads/nosuch\.yaml\` does not exist" \
	-- sed 's|simulate config/workloads/mix.yaml policies/gthulhu.lua policies/simple.lua|simulate config/workloads/nosuch.yaml policies/gthulhu.lua policies/simple.lua|'
mutant "a file of the past named with a commit it is not in" "${R}\`tests/vm/nosuch\.lua\` does not exist" \
	-- sed "\$a (\`tests/vm/nosuch.lua\` in commit $(git rev-parse --short HEAD 2>/dev/null || echo 0000000))"

# Command-line options.
mutant "an option --help prints removed" "\`--verbose\` \(printed by \`gthulhu-lua --help\`\) is not in" \
	-- sed 's/`-v, --verbose`/`-v`/'
mutant "an option --help does not print" "${R}option \`--no-such-option\` is not one" \
	-- sed 's/^| `--check` |/| `--no-such-option` | gone |\n&/'
mutant "a simulate option removed" "\`--measure\` \(printed by \`gthulhu-lua simulate --help\`\)" \
	-- sed 's/ \[--measure\]//; s/`--measure`/`--meas`/g; s/--measure//g'
# The stats: line.
SKIP= mutant "a stats: key no longer described" 'stats: key `nr_kept` \(printed: .*\) is not described' \
	-- sed 's/^`nr_kept` (slice expiries/nr_kept (slice expiries/; s/, `nr_kept` (slice expiries/, nr_kept (slice expiries/'
SKIP= mutant "a stats: key that is not printed" "${R}\`nr_bogus\` is described as a stats: key" \
	-- sed 's/`nr_log_dropped` (stats/`nr_bogus` (never), `nr_log_dropped` (stats/'

# Exit codes.
mutant "an exit code no longer listed" "exit code 7 \(EXIT_SCX_BUSY, host/common\.h:[0-9]+\) is not in" \
	-- sed 's/ · 7 another sched_ext scheduler is loaded (named in the message)//'
mutant "an exit code that does not exist" "${R}exit code 12 is not one of host/common\.h's" \
	-- sed 's/^attach failed · 9 the kernel ejected the scheduler with an error\./& · 12 lost/'

# The policy API.
mutant "a library function no longer listed" 'g\.pid_table \(policies/lib/gthulhu/sched\.lua:[0-9]+\) is not in the library list' \
	-- sed 's/`g.pid_table(forget_ns, per_batch)`/`pid_table`/'
mutant "a library function that does not exist" "${R}g\.no_such_fn is not defined in policies/lib/gthulhu/sched\.lua" \
	-- sed '$a Call `g.no_such_fn()` once per batch.'
mutant "a callback row removed" 'callback P\.on_strategies \(host/pol/\*\.c calls it\) has no row' \
	-- sed '/^| `P.on_strategies(list)` |/d'
mutant "a callback the host does not call" "${R}callback P\.on_tick is not one host/pol/\*\.c calls" \
	-- sed 's/^| `P.on_strategies(list)` |/| `P.on_tick()` | optional |\n&/'

MBIN=/nonexistent/gthulhu-lua mutant "the binary missing counts as failed" \
	"/nonexistent/gthulhu-lua is missing \(make all\)" -- cat

# The code side: the checker reads the tables themselves, not a copy. A copy of the tree
# (tracked files) with a key, a route, a scenario, a suite and a library function added
# that the README lacks.
mkdir -p "$T/tree"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z | tar --null -T - -cf - | tar -C "$T/tree" -xf -
else
	tar --exclude=./build --exclude=./.git -cf - . | tar -C "$T/tree" -xf -
fi
if [ -f "$T/tree/host/cfg.c" ] && [ -f "$T/tree/host/api/server.c" ] && [ -f "$T/tree/scripts/vm.sh" ]; then
	sed -i 's|^\t{ "dryrun.rate",|\t{ "dryrun.burst", OT_U32, C_OFF(dryrun_rate), 0, 1, 10, 0, "1",\n\t  "test key" },\n&|' "$T/tree/host/cfg.c"
	sed -i 's|^\t{ "/api/v1/config", |\t{ "/api/v1/nosuch", M_GET, true, false },\n&|' "$T/tree/host/api/server.c"
	sed -i 's|^ALL_SCENARIOS=(|&no_such_scenario |' "$T/tree/scripts/vm.sh"
	sed -i 's|^\tsim) sim ;;$|&\n\tnosuch) run_suite nosuch true ;;|' "$T/tree/scripts/run-tests.sh"
	sed -i 's|^function g.now()|function g.no_such_fn() end\n&|' "$T/tree/policies/lib/gthulhu/sched.lua"
	ROOT=$T/tree mutant "a key, route, scenario, suite, library function added to the code only" \
		'config key `dryrun.burst` \(host/cfg\.c:[0-9]+\) has no row' \
		'route GET /api/v1/nosuch \(host/api/server\.c:[0-9]+\)' \
		"VM scenario 'no_such_scenario'" \
		"suite 'nosuch' of scripts/run-tests.sh \(reported as nosuch\) has no row" \
		"suite 'nosuch' is not run by scripts/run-tests.sh all" \
		'g\.no_such_fn \(policies/lib/gthulhu/sched\.lua:[0-9]+\) is not in the library list' -- cat
else
	echo "FAIL readme negative: could not copy the tree to $T/tree"; fail=$((fail + 1))
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
