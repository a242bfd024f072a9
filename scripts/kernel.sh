#!/usr/bin/env bash
# kernel.sh: fetch the newest Debian kernel that has sched_ext (CONFIG_SCHED_CLASS_EXT=y),
# with a private apt state so the system's apt sources and lists stay untouched, and cache
# it. Prints the cache directory, which holds:
#   vmlinuz   the kernel the VM tests boot
#   vmlinux   the ELF with .BTF, extracted from vmlinuz (for vmlinux.h)
#   config    the kernel's config (checked for CONFIG_SCHED_CLASS_EXT=y)
#   version   the kernel release string
#   sched_ext how sched_ext was confirmed: the config line, or (for kernels whose
#             linux-base package with the config cannot be downloaded) the BTF's
#             struct sched_ext_ops
# Only trixie-backports' cloud kernels (6.19 .. 7.x) have sched_ext among Debian's builds.
#
#   scripts/kernel.sh            the newest kernel of KERNEL_PKG (what CI boots)
#   scripts/kernel.sh SERIES     the newest downloadable kernel of one series, e.g. 7.2
#   scripts/kernel.sh series     the series whose kernels are downloadable, one a line
# Env: GTHULHU_CACHE (default ~/.cache/gthulhu-lua), KERNEL_SUITE (default trixie-backports),
#      KERNEL_PKG (default linux-image-cloud-amd64), KERNEL_FLAVOUR (default cloud-amd64).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${GTHULHU_CACHE:-${HOME:-/root}/.cache/gthulhu-lua}
SUITE=${KERNEL_SUITE:-trixie-backports}
META=${KERNEL_PKG:-linux-image-cloud-amd64}
FLAVOUR=${KERNEL_FLAVOUR:-cloud-amd64}
ARG=${1:-}
log() { echo "kernel: $*" >&2; }
die() { echo "kernel: error: $*" >&2; exit 1; }
. scripts/apt-private.sh

mkdir -p "$CACHE/kernels"
apt_private apt "$SUITE main"
O=("${APT_O[@]}")

# newest_cached [SERIES]
newest_cached() { ls -1d "$CACHE"/kernels/${1:+$1.}*/ 2>/dev/null | sed 's:/$::' | sort -V | tail -n 1; }
# has_candidate PKG: apt can download it (the index lists kernels whose pool files are gone).
has_candidate() { apt-cache "${O[@]}" policy "$1" 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null; }
# Kernel versions (VER as in linux-binary-VER) of this flavour, oldest first.
binary_versions() {
	apt-cache "${O[@]}" pkgnames linux-binary- 2>/dev/null |
		sed -n "s/^linux-binary-\([0-9][0-9.]*+[a-z0-9]*-$FLAVOUR\)$/\1/p" | sort -V
}

# The cache (and its apt lists) may be shared by several checkouts: wait for their lock;
# if the update still fails, the lists of the last update (if any) are used.
updated=0
for try in 1 2 3 4 5 6; do
	if timeout 300 apt-get "${O[@]}" -o DPkg::Lock::Timeout=60 -q update >"$CACHE/apt/update.log" 2>&1; then
		updated=1; break
	fi
	grep -q 'Could not get lock\|Unable to lock' "$CACHE/apt/update.log" || break
	sleep 10
done
if [ $updated = 0 ]; then
	log "apt update of $SUITE failed (see $CACHE/apt/update.log)"
	ls "$CACHE"/apt/lists/*_Packages >/dev/null 2>&1 && { updated=1; log "using the lists of the last update"; }
fi

if [ "$ARG" = series ]; then
	[ $updated = 1 ] || die "cannot list the series without the $SUITE index"
	for v in $(binary_versions); do has_candidate "linux-binary-$v" && echo "${v%.*+*}"; done | sort -uV
	exit 0
fi

ver=""
if [ $updated = 1 ] && [ -n "$ARG" ]; then
	for v in $(binary_versions | grep "^$ARG\." | sort -rV); do
		has_candidate "linux-binary-$v" && { ver=$v; break; }
	done
	[ -n "$ver" ] || log "no downloadable $FLAVOUR kernel of series $ARG in $SUITE"
elif [ $updated = 1 ]; then
	# The meta package depends on the versioned image; the image depends on linux-binary-VER.
	img=$(apt-cache "${O[@]}" depends "$META" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2}' | sort -V | tail -n 1)
	[ -n "$img" ] && ver=${img#linux-image-}
	[ -n "$ver" ] || log "could not resolve $META in $SUITE"
fi

if [ -z "$ver" ]; then
	d=$(newest_cached "$ARG")
	[ -n "$d" ] || die "no sched_ext kernel${ARG:+ of series $ARG} cached and none could be fetched from $SUITE"
	log "using cached $(basename "$d")"
	echo "$d"; exit 0
fi

dir="$CACHE/kernels/$ver"
if [ -s "$dir/vmlinuz" ] && [ -s "$dir/vmlinux" ] && { [ -s "$dir/config" ] || [ -s "$dir/sched_ext" ]; }; then
	echo "$dir"; exit 0
fi

log "fetching $ver from $SUITE"
tmp=$(mktemp -d "$CACHE/kernels/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp"
  pkgs=()
  for p in "linux-binary-$ver" "linux-base-$ver" "linux-image-$ver"; do
	has_candidate "$p" && pkgs+=("$p")
  done
  [ ${#pkgs[@]} -gt 0 ] || die "no package carries kernel $ver"
  timeout 600 apt-get "${O[@]}" -q download "${pkgs[@]}" >&2
  for d in *.deb; do dpkg-deb -x "$d" root; done )

vmlinuz=$(find "$tmp/root" -name vmlinuz -o -name "vmlinuz-$ver" | head -n 1)
config=$(find "$tmp/root" -name config -path "*$ver*" -o -name "config-$ver" | head -n 1)
[ -n "$vmlinuz" ] || die "no vmlinuz in the packages of $ver"
if [ -n "$config" ]; then
	grep -q '^CONFIG_SCHED_CLASS_EXT=y' "$config" || die "$ver lacks CONFIG_SCHED_CLASS_EXT=y ($config)"
	scx_how="config: CONFIG_SCHED_CLASS_EXT=y"
else
	log "$ver: no downloadable config (linux-base-$ver); sched_ext is checked in its BTF"
fi

# vmlinuz embeds a zstd-compressed vmlinux: find the zstd frame magic and decompress from it
# (zstd complains about the trailing bytes after the frame; the ELF is whole regardless).
off=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$vmlinuz" | head -n 1 | cut -d: -f1) || true
[ -n "$off" ] || die "no zstd payload in $vmlinuz"
tail -c +$((off + 1)) "$vmlinuz" | zstd -dc 2>/dev/null > "$tmp/vmlinux" || true
readelf -S "$tmp/vmlinux" 2>/dev/null | grep '\.BTF' >/dev/null || die "extracted vmlinux has no .BTF section"
if [ -z "$config" ]; then
	bpftool btf dump file "$tmp/vmlinux" format raw 2>/dev/null | grep "STRUCT 'sched_ext_ops'" >/dev/null ||
		die "$ver: its BTF has no struct sched_ext_ops (no sched_ext)"
	scx_how="BTF: struct sched_ext_ops (config package not downloadable)"
fi

mkdir -p "$tmp/out"
cp "$vmlinuz" "$tmp/out/vmlinuz"; mv "$tmp/vmlinux" "$tmp/out/vmlinux"
[ -z "$config" ] || cp "$config" "$tmp/out/config"
echo "$scx_how" > "$tmp/out/sched_ext"
echo "$ver" > "$tmp/out/version"
rm -rf "$dir"; mv "$tmp/out" "$dir"
log "cached $ver in $dir"
echo "$dir"
