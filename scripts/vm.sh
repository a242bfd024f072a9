#!/usr/bin/env bash
# vm.sh - boot gthulhu-lua in a QEMU VM that runs a kernel with sched_ext.
#
#   scripts/vm.sh test [SCENARIO...]   run VM test scenarios (default: all of them); the
#                                      console goes to build/vm/console.log and is echoed
#   scripts/vm.sh run                  demo: gthulhu-lua --stats=1 policies/gthulhu.lua under
#                                      a mixed load for ~30 s, then detach and power off
#   scripts/vm.sh bench                the benchmark of `make vmbench` (tests/vm/bench.sh in the
#                                      guest; console in build/vmbench/console.log; knobs:
#                                      the VMBENCH_* variables of scripts/vmbench.sh)
#   scripts/vm.sh shell                interactive busybox shell in the VM (Ctrl-A X quits)
#   scripts/vm.sh image                only build the initramfs
#   scripts/vm.sh list                 the scenarios `test` runs by default
#
# The kernel is Debian's (scripts/kernel.sh fetches and caches it). The initramfs holds
# busybox-static, build/gthulhu-lua with every library ldd lists (same paths), policies/,
# config/, tests/vm/ and the workloads of tests/workloads/ (built here with gcc), all
# under /g in the guest, plus Debian's hackbench (rt-tests) and stress-ng, and for `bench`
# perf (linux-perf), each with its libraries. QEMU runs under TCG (no KVM needed):
#   VM_ACCEL=multi   -accel tcg,thread=multi: each vCPU on its own host thread, in parallel,
#                    so a wake-up for another vCPU costs what it costs (default of `bench`)
#   VM_ACCEL=single  -accel tcg,thread=single: every vCPU on one host thread, which flatters
#                    a user-space scheduler's throughput and delays cross-CPU wake-ups
#                    (default of `test`, `run` and `shell` for now)
# QEMU 7.2's multi-threaded TCG oopsed the guest now and then while kernel text was patched
# (enabling sched_ext); scripts/deps.sh installs QEMU >= 10. The accelerator and the QEMU
# version go to the console log ("VM-HOST qemu=VERSION accel=MODE") and are printed.
#
# Exit status of `test`: 0 the guest finished (results are in the log), 3 boot timeout,
# 4 guest kernel crash (panic/oops), 5 the guest did not finish in time, 1 setup error.
# Env: VM_KERNEL_DIR (kernel to boot, default: scripts/kernel.sh's), GTHULHU_BIN (the scheduler binary, default build/gthulhu-lua), GTHULHU_BIN_B (a second one, bench A/B), VM_SMP (4; 2 for bench), VM_MEM (2048), VM_BOOT_TIMEOUT (90 s), SCENARIO_BUDGET (85 s per scenario;
#      the stress_* scenarios have their own, STRESS_BUDGET, 240 s),
#      VM_TIMEOUT (total, default boot + the scenarios' budgets + 30, at most 900 s; bench: VMBENCH_BUDGET + boot + 60),
#      QEMU (qemu-system-x86_64), VM_ACCEL (multi|single, above).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
cmd=${1:-test}; shift || true
# The bench has its own image and log, so a benchmark and the test suite can run side by side.
OUT=$ROOT/build/vm
[ "$cmd" = bench ] && OUT=$ROOT/build/vmbench
IMG=$OUT/root
ALL_SCENARIOS=(attach_gthulhu attach_simple weights priority crash stall policy_failure hotplug watchdog
	partial service_caps api nice_pin prio_hog absurd_slices starve host_threads custody_check stress_gthulhu stress_simple)
SMP=${VM_SMP:-4}
[ "$cmd" = bench ] && SMP=${VM_SMP:-2}
STRESS_BUDGET=${STRESS_BUDGET:-240}
# scenario_budget NAME: seconds the guest gives the scenario before killing it.
scenario_budget() {
	case $1 in
	stress_*) echo "$STRESS_BUDGET" ;;
	*) echo "$BUDGET" ;;
	esac
}
MEM=${VM_MEM:-2048}
BOOT_TIMEOUT=${VM_BOOT_TIMEOUT:-90}
BUDGET=${SCENARIO_BUDGET:-85}
QEMU=${QEMU:-qemu-system-x86_64}
# TCG threading (see the top): multi for the bench, single for the rest unless VM_ACCEL says.
ACCEL=${VM_ACCEL:-single}
[ "$cmd" = bench ] && ACCEL=${VM_ACCEL:-multi}
case $ACCEL in multi|single) ;; *) echo "vm: error: VM_ACCEL='$ACCEL': multi or single" >&2; exit 1 ;; esac
WORKLOADS=(hog pinned sleeper pingpong storm progress scxwatch scxmon wakelat batch capdrop reqlat)
BIN=${GTHULHU_BIN:-build/gthulhu-lua}
# Kernel console lines that mean the guest kernel itself crashed (not a scheduler verdict).
CRASH_RE='\[ *[0-9]+\.[0-9]+\] .*(Kernel panic|Oops|BUG: |general protection fault|invalid opcode:|kernel BUG)'

say() { echo "vm: $*" >&2; }
die() { echo "vm: error: $*" >&2; exit 1; }

# copy_with_libs FILE: copy FILE to the same path under $IMG, plus every library ldd lists.
copy_with_libs() {
	local f=$1 lib
	mkdir -p "$IMG$(dirname "$f")"
	cp -L "$f" "$IMG$f"
	while read -r lib; do
		[ -n "$lib" ] && [ -e "$lib" ] || continue
		[ -e "$IMG$lib" ] && continue
		mkdir -p "$IMG$(dirname "$lib")"
		cp -L "$lib" "$IMG$lib"
	done < <(ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^[ \t]*\//{print $1}')
}

build_workloads() {
	mkdir -p "$OUT/bin"
	local w
	for w in "${WORKLOADS[@]}"; do
		if [ ! -x "$OUT/bin/$w" ] || [ "tests/workloads/$w.c" -nt "$OUT/bin/$w" ] ||
		   [ tests/workloads/wl.h -nt "$OUT/bin/$w" ]; then
			${CC:-gcc} -O2 -Wall -Wextra -pthread -o "$OUT/bin/$w" "tests/workloads/$w.c" ||
				die "building workload $w failed"
		fi
	done
}

build_image() {
	command -v busybox >/dev/null || die "busybox (busybox-static) missing: run scripts/deps.sh"
	command -v cpio >/dev/null || die "cpio missing: run scripts/deps.sh"
	build_workloads
	rm -rf "$IMG"
	mkdir -p "$IMG"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,root,g/bin,g/build}
	local bb
	bb=$(command -v busybox-static 2>/dev/null || true)
	[ -n "$bb" ] || bb=/bin/busybox
	file -L "$bb" 2>/dev/null | grep -q 'statically linked' || [ -f /usr/share/doc/busybox-static/copyright ] ||
		say "warning: $bb may not be the static busybox"
	cp -L "$bb" "$IMG/bin/busybox"
	local a
	for a in $("$IMG/bin/busybox" --list); do
		[ -e "$IMG/bin/$a" ] || ln -s busybox "$IMG/bin/$a"
	done
	cp tests/vm/init.sh "$IMG/init"; chmod 755 "$IMG/init"
	echo "root:x:0:0:root:/root:/bin/sh" > "$IMG/etc/passwd"
	# The scheduler (if built), with its libraries and the dynamic loader.
	if [ -x "$BIN" ]; then
		local bin; bin=$(realpath "$BIN")
		copy_with_libs "$bin"
		mkdir -p "$IMG/g/build"
		mv "$IMG$bin" "$IMG/g/build/gthulhu-lua"
		rm -rf "${IMG:?}$ROOT"
		[ -d build/gen/gthulhu ] && { mkdir -p "$IMG/g/build/gen"; cp -r build/gen/gthulhu "$IMG/g/build/gen/"; }
	else
		say "warning: $BIN does not exist; scenarios that need it will FAIL (run make)"
	fi
	# A second binary for A/B runs in one boot (vmbench: VMBENCH_SCHEDS="gthulhu@b ...").
	if [ -n "${GTHULHU_BIN_B:-}" ]; then
		[ -x "$GTHULHU_BIN_B" ] || die "GTHULHU_BIN_B=$GTHULHU_BIN_B is not an executable"
		local binb; binb=$(realpath "$GTHULHU_BIN_B")
		copy_with_libs "$binb"
		mv "$IMG$binb" "$IMG/g/build/gthulhu-lua-b"
		rm -rf "${IMG:?}$(dirname "$binb")"
	fi
	for w in "${WORKLOADS[@]}"; do
		copy_with_libs "$OUT/bin/$w"
		mv "$IMG$OUT/bin/$w" "$IMG/g/bin/$w"
	done
	rm -rf "${IMG:?}$ROOT"
	# Debian's load generators, at their own paths (PATH has /usr/bin).
	local tool
	for tool in hackbench stress-ng; do
		if command -v $tool >/dev/null; then copy_with_libs "$(command -v $tool)"
		else say "warning: $tool missing (run scripts/deps.sh): the workloads that need it are skipped or FAIL"; fi
	done
	if [ "${WITH_PERF:-0}" = 1 ]; then
		local perf; perf=$(perf_bin)
		if [ -n "$perf" ]; then
			copy_with_libs "$perf"
			[ "$perf" = /usr/bin/perf ] || ln -sf "$(basename "$perf")" "$IMG/usr/bin/perf"
		else
			say "warning: no perf binary (linux-perf): the perf_* workloads are skipped"
		fi
	fi
	# curl (and its libraries) for the api scenario, which drives the HTTP API from inside.
	if command -v curl >/dev/null; then copy_with_libs "$(command -v curl)"
	else say "warning: curl missing: the api scenario will FAIL (scripts/deps.sh installs it)"; fi
	cp -r policies config "$IMG/g/"
	mkdir -p "$IMG/g/tests/vm"
	cp tests/vm/*.sh tests/vm/*.lua tests/vm/*.yaml "$IMG/g/tests/vm/" 2>/dev/null || true
	# flaky.lua needs <its dir>/lib (the host loads gthulhu.sched from there).
	ln -sfn ../../policies/lib "$IMG/g/tests/vm/lib"
	# Uncompressed: unpacking a compressed archive costs more than loading it under TCG.
	(cd "$IMG" && find . -print0 | cpio --null -o -H newc --quiet) > "$OUT/initramfs.cpio"
	say "initramfs $(du -h "$OUT/initramfs.cpio" | cut -f1) in $OUT/initramfs.cpio"
}

# perf_bin: the real perf executable. Debian's /usr/bin/perf is either the binary itself
# (bookworm-backports) or a script that runs perf_<version> for the running kernel; the
# guest runs another kernel, so take the newest perf_<version> then.
perf_bin() {
	local p=/usr/bin/perf
	[ -e $p ] || return 0
	if [ "$(head -c 4 $p | tail -c 3)" = ELF ]; then echo $p; return; fi
	ls -v /usr/bin/perf_[0-9]* 2>/dev/null | tail -n 1
}

# The kernel to boot: VM_KERNEL_DIR (a directory with vmlinuz, as scripts/kernel.sh and
# scripts/kernel-src.sh cache them; the KERNELS=all matrix sets it), else the newest
# Debian sched_ext kernel (scripts/kernel.sh).
kernel_dir() {
	local k=${VM_KERNEL_DIR:-}
	if [ -z "$k" ]; then
		k=$(bash scripts/kernel.sh) || die "no sched_ext kernel (scripts/kernel.sh failed)"
	fi
	[ -s "$k/vmlinuz" ] || die "no vmlinuz in $k (VM_KERNEL_DIR=${VM_KERNEL_DIR:-unset})"
	echo "$k"
}

# qemu_version: e.g. 10.0.2 (the first line of $QEMU --version).
qemu_version() {
	"$QEMU" --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9][0-9.]*\).*/\1/p' | head -n 1
}

# boot MODE SCENARIOS LOG: run QEMU; echo the console; watch for boot timeout, crashes and
# the end of the guest's work. Returns the exit status described at the top.
boot() {
	local mode=$1 scen=$2 log=$3 total=$4 k
	k=$(kernel_dir)
	command -v "$QEMU" >/dev/null || die "$QEMU missing: run scripts/deps.sh"
	# no_timer_check: under TCG on a loaded host the early IO-APIC timer check can miss its
	# ticks and panic ("IO-APIC + timer doesn't work", seen at nice 19 beside other VMs).
	local append="console=ttyS0 quiet panic=-1 oops=panic softlockup_panic=0 no_timer_check gthulhu.mode=$mode"
	[ -n "$scen" ] && append="$append gthulhu.scenarios=$scen gthulhu.budget=$BUDGET gthulhu.budgets=$STRESS_BUDGETS_ARG"
	append="$append${EXTRA_APPEND:+ $EXTRA_APPEND}"
	local pidf=$OUT/qemu.pid
	rm -f "$pidf" "$log"
	local qv; qv=$(qemu_version)
	[ "$ACCEL" = multi ] && [ "${qv%%.*}" -lt 10 ] 2>/dev/null &&
		say "warning: QEMU $qv with multi-threaded TCG oopsed the guest now and then (kernel text patching); scripts/deps.sh installs QEMU >= 10"
	echo "VM-HOST qemu=${qv:-unknown} accel=$ACCEL smp=$SMP" > "$log"
	say "booting $(cat "$k/version" 2>/dev/null || basename "$k") (-smp $SMP, QEMU ${qv:-?} TCG thread=$ACCEL), mode=$mode${scen:+, scenarios=$scen}; limit ${total}s"
	local t0=$SECONDS
	# (rc= ... || rc=$?: under set -e a failing QEMU would end the subshell before the echo)
	( rc=0; timeout -k 5 "$total" "$QEMU" -smp "$SMP" -m "$MEM" -nographic -no-reboot \
		-accel tcg,thread=$ACCEL -kernel "$k/vmlinuz" -initrd "$OUT/initramfs.cpio" \
		-append "$append" -pidfile "$pidf" < /dev/null 2>&1 || rc=$?; echo "VM-HOST qemu-exit=$rc" ) |
		sed -u 's/\r$//; s/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1b[()][0-9A-Za-z]//g; s/\x1bc//g' >> "$log" &
	local ppid=$! shown=0 ready=0 done_at=0 status=0 n
	while kill -0 $ppid 2>/dev/null; do
		sleep 1
		n=$(wc -l < "$log")
		if [ "$n" -gt "$shown" ]; then sed -n "$((shown + 1)),${n}p" "$log"; shown=$n; fi
		if [ $ready = 0 ] && grep -q 'GUEST-READY kernel=' "$log"; then
			ready=1; say "guest up after $((SECONDS - t0)) s"
		fi
		if [ $ready = 0 ] && [ $((SECONDS - t0)) -ge "$BOOT_TIMEOUT" ]; then
			say "BOOT TIMEOUT: no GUEST-READY from the guest within ${BOOT_TIMEOUT}s"
			echo "VM-HOST boot-timeout" >> "$log"; status=3
			[ -s "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null
			break
		fi
		if [ $done_at = 0 ] && grep -q 'GUEST-DONE uptime=' "$log"; then done_at=$SECONDS; fi
		# poweroff -f normally ends QEMU at once; do not wait long if it does not.
		if [ $done_at != 0 ] && [ $((SECONDS - done_at)) -ge 10 ]; then
			[ -s "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null
		fi
	done
	wait $ppid 2>/dev/null || true
	n=$(wc -l < "$log"); [ "$n" -gt "$shown" ] && sed -n "$((shown + 1)),${n}p" "$log"
	echo "VM-HOST elapsed=$((SECONDS - t0))" >> "$log"
	if [ $status = 0 ]; then
		if grep -qE "$CRASH_RE" "$log"; then
			status=4; say "GUEST KERNEL CRASH (panic/oops) - see $log"
		elif ! grep -q 'GUEST-READY kernel=' "$log"; then
			status=3; say "QEMU ended before the guest was up ($(grep -o 'qemu-exit=[0-9]*' "$log" | tail -n 1)) - see $log"
		elif ! grep -q 'GUEST-DONE uptime=' "$log"; then
			status=5; say "the guest did not finish within ${total}s (hung?) - see $log"
		fi
	fi
	say "VM run took $((SECONDS - t0)) s; console log: $log"
	return $status
}

mkdir -p "$OUT"
case $cmd in
list)
	printf '%s\n' "${ALL_SCENARIOS[@]}" ;;
image)
	build_image ;;
test)
	scen=("$@"); [ ${#scen[@]} -gt 0 ] || scen=("${ALL_SCENARIOS[@]}")
	build_image
	# The whole suite must stay under 15 minutes: scenarios that do not fit are reported
	# as "not run" by tests/vm/run.sh. (Budgets are limits; most scenarios take 15-30 s.)
	total=$((BOOT_TIMEOUT + 30)) STRESS_BUDGETS_ARG=""
	for s in "${scen[@]}"; do
		b=$(scenario_budget "$s"); total=$((total + b))
		[ "$b" = "$BUDGET" ] || STRESS_BUDGETS_ARG="${STRESS_BUDGETS_ARG:+$STRESS_BUDGETS_ARG,}$s:$b"
	done
	[ $total -le 900 ] || total=900
	total=${VM_TIMEOUT:-$total}
	list=$(IFS=,; echo "${scen[*]}")
	boot test "$list" "$OUT/console.log" "$total" ;;
bench)
	WITH_PERF=1 build_image
	# Every VMBENCH_* variable goes to the guest as gthulhu.bench_name=a,b (no spaces on
	# the kernel command line); tests/vm/init.sh turns it back into VMBENCH_NAME="a b".
	EXTRA_APPEND=""
	for v in $(compgen -v VMBENCH_); do
		val=${!v}; val=${val// /,}
		[[ $val =~ ^[A-Za-z0-9_.,/:=+@-]*$ ]] || die "$v='${!v}': only letters, digits and _.,/:=+-@ (and spaces) can go to the guest"
		n=${v#VMBENCH_}; EXTRA_APPEND="$EXTRA_APPEND gthulhu.bench_${n,,}=$val"
	done
	EXTRA_APPEND=${EXTRA_APPEND# }
	budget=${VMBENCH_BUDGET:-840}
	boot bench "" "$OUT/console.log" "${VM_TIMEOUT:-$((BOOT_TIMEOUT + budget + 60))}" ;;
run)
	build_image
	boot run "" "$OUT/run.log" "${VM_TIMEOUT:-$((BOOT_TIMEOUT + 120))}" ;;
shell)
	build_image
	k=$(kernel_dir)
	say "QEMU $(qemu_version) TCG thread=$ACCEL"
	exec "$QEMU" -smp "$SMP" -m "$MEM" -nographic -no-reboot -accel tcg,thread=$ACCEL \
		-kernel "$k/vmlinuz" -initrd "$OUT/initramfs.cpio" \
		-append "console=ttyS0 quiet panic=-1 gthulhu.mode=shell" ;;
-h|--help|help)
	awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" | sed 's/^# \{0,1\}//' ;;
*)
	die "unknown command '$cmd' (test, bench, run, shell, image, list)" ;;
esac
