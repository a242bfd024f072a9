#!/usr/bin/env bash
# run.sh [POLICY] - run gthulhu-lua here, or in a VM when this kernel lacks sched_ext.
#   scripts/run.sh policies/gthulhu.lua      (make run POLICY=...)
# With /sys/kernel/sched_ext: runs build/gthulhu-lua --stats=1 POLICY (through sudo when
# not root); Ctrl-C detaches it. Without: says so and runs the demo VM (scripts/vm.sh run).
set -euo pipefail
cd "$(dirname "$0")/.."
POLICY=${1:-policies/gthulhu.lua}
shift || true

if [ -d /sys/kernel/sched_ext ]; then
	[ -x build/gthulhu-lua ] || { echo "run: build/gthulhu-lua is missing: run make first" >&2; exit 1; }
	[ -r "$POLICY" ] || { echo "run: no policy file $POLICY" >&2; exit 1; }
	echo "run: starting gthulhu-lua with $POLICY (Ctrl-C detaches it)"
	if [ "$(id -u)" = 0 ]; then
		exec build/gthulhu-lua --stats=1 "$@" "$POLICY"
	fi
	exec sudo build/gthulhu-lua --stats=1 "$@" "$POLICY"
fi

echo "run: this kernel has no sched_ext (CONFIG_SCHED_CLASS_EXT); running it in a VM instead"
[ "$POLICY" = policies/gthulhu.lua ] ||
	echo "run: note: the VM demo runs policies/gthulhu.lua, not $POLICY"
exec bash scripts/vm.sh run
