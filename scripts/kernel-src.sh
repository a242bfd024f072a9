#!/usr/bin/env bash
# kernel-src.sh: build a VM test kernel with sched_ext from Debian's linux-source-SERIES
# package, for kernel series whose Debian binary kernels have CONFIG_SCHED_CLASS_EXT off
# (6.12: trixie main). The package is fetched with a private apt state (scripts/apt-private.sh;
# the system's apt sources and lists stay untouched), configured with `make allnoconfig`
# plus scripts/kernel-src.config, and built with `nice -n 19 make -j$JOBS`. Prints the
# cache directory, which holds (like scripts/kernel.sh's):
#   vmlinuz  bzImage      vmlinux  ELF with .BTF (debug info stripped)
#   config   the .config  version  kernel release (uname -r)
#   build-seconds  how long the build took
# A result is reused while the Debian version and the config fragment are unchanged.
# Usage: scripts/kernel-src.sh [SERIES]   (default 6.12)
# Env: GTHULHU_CACHE (default ~/.cache/gthulhu-lua), KERNEL_SRC_SUITE (trixie), JOBS (2),
#      KERNEL_SRC_OFFLINE=1 (use the newest cached build of SERIES without asking apt).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${GTHULHU_CACHE:-${HOME:-/root}/.cache/gthulhu-lua}
SERIES=${1:-6.12}
SUITE=${KERNEL_SRC_SUITE:-trixie}
JOBS=${JOBS:-2}
FRAG=$ROOT/scripts/kernel-src.config
log() { echo "kernel-src: $*" >&2; }
die() { echo "kernel-src: error: $*" >&2; exit 1; }
. "$ROOT/scripts/apt-private.sh"

newest_cached() { ls -1d "$CACHE"/built/"$SERIES".*/ 2>/dev/null | sed 's:/$::' | sort -V | tail -n 1; }
if [ "${KERNEL_SRC_OFFLINE:-0}" = 1 ]; then
	d=$(newest_cached); [ -n "$d" ] && [ -s "$d/vmlinuz" ] || die "no cached $SERIES build"
	echo "$d"; exit 0
fi

for t in gcc make flex bison bc pahole xz perl; do
	command -v $t >/dev/null || die "$t missing (scripts/deps.sh installs it)"
done
apt_private apt-$SUITE "$SUITE main"
pkg=linux-source-$SERIES
timeout 300 apt-get "${APT_O[@]}" -q update >"$CACHE/apt-$SUITE/update.log" 2>&1 ||
	die "apt update of $SUITE failed (see $CACHE/apt-$SUITE/update.log)"
debver=$(apt-cache "${APT_O[@]}" policy "$pkg" 2>/dev/null | awk '/Candidate:/{print $2}')
[ -n "$debver" ] && [ "$debver" != "(none)" ] || die "$pkg has no candidate in $SUITE"
upver=${debver%%-*}      # 6.12.117-1 -> 6.12.117
fsum=$(sha256sum "$FRAG" | cut -c1-12)
out=$CACHE/built/$upver
if [ -s "$out/vmlinuz" ] && [ -s "$out/vmlinux" ] && [ "$(cat "$out/fragment.sha" 2>/dev/null)" = "$fsum" ]; then
	echo "$out"; exit 0
fi

src=$CACHE/src/linux-source-$debver
if [ ! -f "$src/Makefile" ]; then
	log "fetching $pkg $debver from $SUITE"
	tmp=$(mktemp -d "$CACHE/.src.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	( cd "$tmp" && timeout 1200 apt-get "${APT_O[@]}" -q download "$pkg=$debver" >&2 &&
	  dpkg-deb -x ./*.deb root )
	tarball=$(ls "$tmp"/root/usr/src/linux-source-"$SERIES".tar.* 2>/dev/null | head -n 1)
	[ -n "$tarball" ] || die "no linux-source tarball in $pkg"
	mkdir -p "$tmp/src"
	tar -C "$tmp/src" -xf "$tarball"
	rm -rf "$src"; mkdir -p "$CACHE/src"
	mv "$tmp/src/linux-source-$SERIES" "$src"
	rm -rf "$tmp"; trap - EXIT
fi

bld=$CACHE/build/linux-$debver
mkdir -p "$bld"
# One build at a time in a build tree (the matrix and a user may both ask).
exec 9> "$bld.lock"
flock 9
if [ -s "$out/vmlinuz" ] && [ "$(cat "$out/fragment.sha" 2>/dev/null)" = "$fsum" ]; then
	echo "$out"; exit 0    # built by whoever held the lock
fi
K=(make -C "$src" O="$bld" ARCH=x86_64)
log "configuring $upver (allnoconfig + $(basename "$FRAG")) in $bld"
KCONFIG_ALLCONFIG=$FRAG "${K[@]}" -s allnoconfig >&2
# Every option of the fragment must have survived Kconfig's dependency checks.
bad=0
while IFS= read -r l; do
	case $l in CONFIG_*=*) ;; *) continue ;; esac
	grep -qxF -- "$l" "$bld/.config" || { log "config: $l did not stick ($(grep "^${l%%=*}=\|# ${l%%=*} is" "$bld/.config" || echo unset))"; bad=1; }
done < "$FRAG"
[ $bad = 0 ] || die "config fragment does not apply to $upver: fix $FRAG"

log "building $upver: nice -n 19 make -j$JOBS (log: $bld/build.log)"
t0=$SECONDS
nice -n 19 "${K[@]}" -j"$JOBS" bzImage > "$bld/build.log" 2>&1 || { tail -n 30 "$bld/build.log" >&2; die "kernel build failed"; }
secs=$((SECONDS - t0))
# (no `| grep -q`: with pipefail, readelf's SIGPIPE would fail the test)
readelf -S "$bld/vmlinux" | grep '\.BTF' >/dev/null || die "built vmlinux has no .BTF section"

tmpo=$(mktemp -d "$CACHE/built/.tmp.XXXXXX" 2>/dev/null || { mkdir -p "$CACHE/built"; mktemp -d "$CACHE/built/.tmp.XXXXXX"; })
chmod 755 "$tmpo"
cp "$bld/arch/x86/boot/bzImage" "$tmpo/vmlinuz"
objcopy --strip-debug "$bld/vmlinux" "$tmpo/vmlinux"
cp "$bld/.config" "$tmpo/config"
"${K[@]}" -s kernelrelease > "$tmpo/version"
echo "$secs" > "$tmpo/build-seconds"
echo "$fsum" > "$tmpo/fragment.sha"
rm -rf "$out"; mv "$tmpo" "$out"
log "built $(cat "$out/version") in ${secs}s; cached in $out"
echo "$out"
