#!/usr/bin/env bash
# tests/install/run.sh - `make install` / `make uninstall` into a DESTDIR, for real:
# the installed binary runs --check from another directory with no policy argument (it must
# find its default policy and library in the install), the systemd unit is what the README
# says and passes `systemd-analyze verify` (when systemd-analyze exists), PREFIX=/usr puts
# the config in /etc, a config the user changed survives install and uninstall, and
# uninstall leaves no file behind. Needs a built build/gthulhu-lua. Ends with
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

[ -x build/gthulhu-lua ] || { echo "install: build/gthulhu-lua missing (make all)"; echo "0 passed, 1 failed"; exit 1; }
tmp=$(mktemp -d /tmp/gthulhu-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
D=$tmp/root P=/usr/local

make -s --no-print-directory install DESTDIR="$D" > "$tmp/install.log" 2>&1
check "make install DESTDIR=... exits 0" [ $? -eq 0 ] || cat "$tmp/install.log"
for f in bin/gthulhu-lua share/gthulhu-lua/policies/gthulhu.lua share/gthulhu-lua/policies/simple.lua \
	 share/gthulhu-lua/policies/lib/gthulhu/sched.lua etc/gthulhu-lua/config.yaml \
	 lib/systemd/system/gthulhu-lua.service; do
	check "installed $P/$f" [ -s "$D$P/$f" ]
done
check "installed binary is executable" [ -x "$D$P/bin/gthulhu-lua" ]

# The installed binary, from another directory, no policy argument: the config's default
# scheduler.policy (policies/gthulhu.lua, relative) resolves to the installed one.
out=$(cd / && "$D$P/bin/gthulhu-lua" --check 2>&1); rc=$?
check "installed --check from / with no policy exits 0 (rc=$rc)" [ $rc -eq 0 ]
check "it used the installed policy" grep -q "policy $D$P/bin/../share/gthulhu-lua/policies/gthulhu.lua" <<<"$out"
out=$(cd / && "$D$P/bin/gthulhu-lua" -c "$D$P/etc/gthulhu-lua/config.yaml" --check 2>&1); rc=$?
check "installed --check with the installed config exits 0 (rc=$rc)" [ $rc -eq 0 ] || echo "$out"
# A policy given on the command line is never replaced by the installed one.
out=$(cd / && "$D$P/bin/gthulhu-lua" --check policies/gthulhu.lua 2>&1); rc=$?
check "an explicit missing policy still fails (rc=$rc, expected 4)" [ $rc -eq 4 ]
check "with a message naming it" grep -q "policy policies/gthulhu.lua: No such file" <<<"$out"

# --version of the installed binary: every line a bug report needs.
v=$("$D$P/bin/gthulhu-lua" --version 2>&1); rc=$?
check "--version exits 0" [ $rc -eq 0 ]
check "--version: program version" grep -qE '^gthulhu-lua [0-9]+\.[0-9]+\.[0-9]+$' <<<"$v"
check "--version: libbpf run-time and build-time versions" grep -qE '^libbpf [0-9]+\.[0-9]+ \(built with [0-9]+\.[0-9]+\)$' <<<"$v"
check "--version: LuaJIT" grep -qE '^LuaJIT 2\.' <<<"$v"
check "--version: the running kernel" grep -qxF "kernel $(uname -s) $(uname -r) $(uname -m)" <<<"$v"
if [ -d /sys/kernel/sched_ext ]; then
	check "--version: sched_ext available" grep -q '^sched_ext: available, state=' <<<"$v"
else
	check "--version: sched_ext not available, and why" grep -q '^sched_ext: not available (/sys/kernel/sched_ext is missing' <<<"$v"
fi

unit=$D$P/lib/systemd/system/gthulhu-lua.service
check "unit: ExecStart is the installed binary with the installed config" \
	grep -qx "ExecStart=$P/bin/gthulhu-lua -c $P/etc/gthulhu-lua/config.yaml" "$unit"
check "unit: Restart=on-failure" grep -qx 'Restart=on-failure' "$unit"
check "unit: ExecReload sends SIGHUP" grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$unit"
check "unit: CapabilityBoundingSet" grep -qx 'CapabilityBoundingSet=CAP_BPF CAP_PERFMON' "$unit"
check "unit: no @placeholders@ left" bash -c "! grep -q '@[A-Z]*@' '$unit'"
if command -v systemd-analyze >/dev/null; then
	# verify checks that ExecStart exists: point it at the DESTDIR copy of the binary.
	mkdir -p "$tmp/v"
	sed "s|^ExecStart=$P/|ExecStart=$D$P/|" "$unit" > "$tmp/v/gthulhu-lua.service"
	v=$(systemd-analyze verify "$tmp/v/gthulhu-lua.service" 2>&1); rc=$?
	check "systemd-analyze verify the unit (rc=$rc)" [ $rc -eq 0 ] || echo "$v"
else
	echo "note: systemd-analyze not installed: unit not verified by systemd"
fi

# PREFIX=/usr: config in /etc, unit in /usr/lib/systemd/system (dry run: the rule only).
n=$(make -s -n --no-print-directory install PREFIX=/usr DESTDIR=/DEST 2>&1)
check "PREFIX=/usr: config goes to DESTDIR/etc/gthulhu-lua" grep -q "/DEST/etc/gthulhu-lua/config.yaml" <<<"$n"
check "PREFIX=/usr: unit goes to DESTDIR/usr/lib/systemd/system" grep -q "/DEST/usr/lib/systemd/system/gthulhu-lua.service" <<<"$n"
check "PREFIX=/usr: unit runs /usr/bin/gthulhu-lua -c /etc/..." grep -q "s|@BINDIR@|/usr/bin|g' -e 's|@SYSCONFDIR@|/etc|g'" <<<"$n"

# A config the user changed is kept by install (new one beside it) and by uninstall.
echo "# changed by the admin" >> "$D$P/etc/gthulhu-lua/config.yaml"
make -s --no-print-directory install DESTDIR="$D" > "$tmp/install2.log" 2>&1
check "re-install keeps a changed config" grep -q 'changed by the admin' "$D$P/etc/gthulhu-lua/config.yaml"
check "re-install puts the new config beside it" cmp -s config/config.yaml "$D$P/etc/gthulhu-lua/config.yaml.new"
make -s --no-print-directory uninstall DESTDIR="$D" > "$tmp/uninstall.log" 2>&1
check "uninstall keeps the changed config and says so" grep -q 'keeping .*config.yaml (changed)' "$tmp/uninstall.log"
check "... and the file is still there" [ -f "$D$P/etc/gthulhu-lua/config.yaml" ]
rm -f "$D$P/etc/gthulhu-lua/config.yaml"

# A clean install + uninstall leaves no file and none of our directories.
make -s --no-print-directory install DESTDIR="$D" > /dev/null 2>&1
make -s --no-print-directory uninstall DESTDIR="$D" > "$tmp/uninstall.log" 2>&1
check "make uninstall exits 0" [ $? -eq 0 ]
left=$(find "$D" -type f -o -type l; find "$D" -name 'gthulhu*')
check "uninstall leaves nothing behind${left:+: $left}" [ -z "$left" ]

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
