#!/usr/bin/env bash
# distcheck.sh - build and test gthulhu-lua on a fresh Debian 13 (trixie) in a chroot
# (`make distcheck`; not part of `make test`). Proves that scripts/deps.sh installs what
# is needed there from trixie's main suite, that the tree builds with trixie's compilers
# and libraries (libbpf 1.5, LuaJIT 2.1 openresty, gcc 14), and that the suites that need
# no sched_ext kernel pass: unit, spec, fuzz regressions, install, and transport (real BPF
# ringbufs: the chroot shares this machine's kernel; we are root).
#
# Steps: debootstrap --variant=minbase trixie (mirror = the URI of this machine's
# debian.sources, package cache in ~/.cache/gthulhu-lua/debootstrap), the tracked files of
# this tree (`git ls-files`, working-tree contents) copied to /src, scripts/deps.sh, make,
# scripts/run-tests.sh. vmlinux.h comes from the cached VM kernel's BTF (VMLINUX_BTF) so
# nothing is downloaded twice. Prints the time of each step; ends with the chroot's
# "N passed, N failed". The chroot is removed afterwards (DISTCHECK_KEEP=1 keeps it).
# Env: DISTCHECK_SUITE (trixie), DISTCHECK_DIR (a fresh temp dir under the cache), JOBS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${GTHULHU_CACHE:-${HOME:-/root}/.cache/gthulhu-lua}
SUITE=${DISTCHECK_SUITE:-trixie}
JOBS=${JOBS:-2}
say() { echo "distcheck: $*" >&2; }
die() { echo "distcheck: error: $*" >&2; echo "0 passed, 1 failed"; exit 1; }
. scripts/apt-private.sh

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts)"
command -v debootstrap >/dev/null || die "debootstrap missing (scripts/deps.sh installs it)"
apt_private apt-distcheck "$SUITE main" || die "no Debian mirror URI found"
mirror=$APT_URI
key=$(awk '/^Signed-By:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$key" ] || key=/usr/share/keyrings/debian-archive-keyring.gpg

kdir=$(bash scripts/kernel.sh) || die "no cached VM kernel for vmlinux.h (scripts/kernel.sh)"
mkdir -p "$CACHE/debootstrap"
R=${DISTCHECK_DIR:-$(mktemp -d "$CACHE/distcheck.XXXXXX")}
mounted=()
cleanup() {
	local m
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
	# Never remove through a mount that is still there (it would reach the host's /dev).
	for m in "${mounted[@]}"; do
		mountpoint -q "$m" 2>/dev/null && { say "$m still mounted: chroot $R not removed"; return; }
	done
	if [ "${DISTCHECK_KEEP:-0}" = 1 ]; then say "chroot kept in $R"; else rm -rf --one-file-system "$R"; fi
}
trap cleanup EXIT
t_all=$SECONDS

t=$SECONDS
say "debootstrap $SUITE (minbase) from $mirror into $R"
debootstrap --variant=minbase --keyring="$key" --cache-dir="$CACHE/debootstrap" \
	"$SUITE" "$R" "$mirror" > "$R.debootstrap.log" 2>&1 ||
	{ tail -n 20 "$R.debootstrap.log" >&2; die "debootstrap failed (log: $R.debootstrap.log)"; }
rm -f "$R.debootstrap.log"
t_boot=$((SECONDS - t))
say "debootstrap took ${t_boot}s"

for m in proc sys dev dev/pts; do
	mkdir -p "$R/$m"
	case $m in
	proc) mount -t proc proc "$R/proc" ;;
	sys) mount --rbind /sys "$R/sys" ;;
	*) mount --bind "/$m" "$R/$m" ;;
	esac
	mounted+=("$R/$m")
done
cp -L /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true

mkdir -p "$R/src" "$R/kernel"
git ls-files -z | tar --null -T - -cf - | tar -C "$R/src" -xf -
cp "$kdir/vmlinux" "$R/kernel/vmlinux"
in_chroot() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
	LANG=C.UTF-8 TERM=dumb GTHULHU_CACHE=/root/.cache/gthulhu-lua bash -c "cd /src && $1"; }

t=$SECONDS
say "scripts/deps.sh in the chroot"
in_chroot "bash scripts/deps.sh" > "$R/deps.log" 2>&1 || { tail -n 30 "$R/deps.log" >&2; die "deps.sh failed on $SUITE"; }
grep -E '^deps:' "$R/deps.log" >&2 || true
t_deps=$((SECONDS - t))
say "deps.sh took ${t_deps}s; $(in_chroot 'dpkg-query -W -f "\${Package} \${Version}\n" libbpf-dev bpftool luajit gcc clang-19' | tr '\n' ';')"

t=$SECONDS
say "make -j$JOBS all + tests (VMLINUX_BTF = the cached $(cat "$kdir/version" 2>/dev/null) kernel)"
in_chroot "nice -n 10 make -j$JOBS VMLINUX_BTF=/kernel/vmlinux all \$(ls tests/test_*.c | sed 's|tests/\(.*\)\.c|build/tests/\1|') build/tests/transport" \
	> "$R/build.log" 2>&1 || { tail -n 40 "$R/build.log" >&2; die "build failed on $SUITE"; }
t_build=$((SECONDS - t))
say "build took ${t_build}s"

t=$SECONDS
in_chroot "nice -n 10 bash scripts/run-tests.sh unit spec fuzz install transport" 2>&1 | tee "$R/test.log" |
	grep -E '^(=== |[A-Za-z/_-]+ +[0-9]+ passed|FAIL|ok +installed --check)' || true
t_test=$((SECONDS - t))
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$R/test.log" | tail -n 1)
[ -n "$line" ] || { tail -n 30 "$R/test.log" >&2; die "the tests printed no result line"; }
say "$SUITE: debootstrap ${t_boot}s, deps ${t_deps}s, build ${t_build}s, tests ${t_test}s, total $((SECONDS - t_all))s"
echo "$line"
case $line in *" 0 failed") exit 0 ;; *) exit 1 ;; esac
