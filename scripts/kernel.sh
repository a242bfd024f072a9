#!/usr/bin/env bash
# kernel.sh: fetch the newest Debian kernel that has sched_ext (CONFIG_SCHED_CLASS_EXT=y),
# with a private apt state so the system's apt sources and lists stay untouched, and cache
# it. Prints the cache directory, which holds:
#   vmlinuz   the kernel the VM tests boot
#   vmlinux   the ELF with .BTF, extracted from vmlinuz (for vmlinux.h)
#   config    the kernel's config (checked for CONFIG_SCHED_CLASS_EXT=y)
#   version   the kernel release string
# Only trixie-backports' 7.x cloud kernels have sched_ext among Debian's builds today.
# Env: GTHULHU_CACHE (default ~/.cache/gthulhu-lua), KERNEL_SUITE (default trixie-backports),
#      KERNEL_PKG (default linux-image-cloud-amd64).
set -euo pipefail

CACHE=${GTHULHU_CACHE:-${HOME:-/root}/.cache/gthulhu-lua}
SUITE=${KERNEL_SUITE:-trixie-backports}
META=${KERNEL_PKG:-linux-image-cloud-amd64}
log() { echo "kernel: $*" >&2; }
die() { echo "kernel: error: $*" >&2; exit 1; }

mkdir -p "$CACHE/apt/lists/partial" "$CACHE/apt/archives/partial" "$CACHE/kernels"
src=/etc/apt/sources.list.d/debian.sources
uri="" key=""
if [ -f "$src" ]; then
	uri=$(awk '/^URIs:/{u=$2} /^Suites:/ && /bookworm( |$)/{print u; exit}' "$src")
	key=$(awk '/^Signed-By:/{print $2; exit}' "$src")
fi
[ -n "$uri" ] || uri=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$uri" ] || die "cannot find the Debian archive URI in $src or /etc/apt/sources.list"
[ -n "$key" ] || key=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb [signed-by=$key] $uri $SUITE main" > "$CACHE/apt/sources.list"

O=(-o "Dir::Etc::SourceList=$CACHE/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
   -o "Dir::State::Lists=$CACHE/apt/lists" -o "Dir::Cache::Archives=$CACHE/apt/archives"
   -o Dir::State::Status=/var/lib/dpkg/status -o APT::Sandbox::User=root)

newest_cached() { ls -1d "$CACHE"/kernels/*/ 2>/dev/null | sed 's:/$::' | sort -V | tail -n 1; }

ver=""
if timeout 300 apt-get "${O[@]}" -q update >"$CACHE/apt/update.log" 2>&1; then
	# The meta package depends on the versioned image; the image depends on linux-binary-VER.
	img=$(apt-cache "${O[@]}" depends "$META" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2}' | sort -V | tail -n 1)
	[ -n "$img" ] && ver=${img#linux-image-}
	[ -n "$ver" ] || log "could not resolve $META in $SUITE"
else
	log "apt update of $SUITE failed (see $CACHE/apt/update.log)"
fi

if [ -z "$ver" ]; then
	d=$(newest_cached)
	[ -n "$d" ] || die "no sched_ext kernel cached and none could be fetched from $SUITE"
	log "using cached $(basename "$d")"
	echo "$d"; exit 0
fi

dir="$CACHE/kernels/$ver"
if [ -s "$dir/vmlinuz" ] && [ -s "$dir/vmlinux" ] && [ -s "$dir/config" ]; then
	echo "$dir"; exit 0
fi

log "fetching $ver from $SUITE"
tmp=$(mktemp -d "$CACHE/kernels/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp"
  pkgs=()
  for p in "linux-binary-$ver" "linux-base-$ver" "linux-image-$ver"; do
	apt-cache "${O[@]}" show "$p" >/dev/null 2>&1 && pkgs+=("$p")
  done
  [ ${#pkgs[@]} -gt 0 ] || die "no package carries kernel $ver"
  timeout 600 apt-get "${O[@]}" -q download "${pkgs[@]}" >&2
  for d in *.deb; do dpkg-deb -x "$d" root; done )

vmlinuz=$(find "$tmp/root" -name vmlinuz -o -name "vmlinuz-$ver" | head -n 1)
config=$(find "$tmp/root" -name config -path "*$ver*" -o -name "config-$ver" | head -n 1)
[ -n "$vmlinuz" ] || die "no vmlinuz in the packages of $ver"
[ -n "$config" ] || die "no kernel config in the packages of $ver"
grep -q '^CONFIG_SCHED_CLASS_EXT=y' "$config" || die "$ver lacks CONFIG_SCHED_CLASS_EXT=y ($config)"

# vmlinuz embeds a zstd-compressed vmlinux: find the zstd frame magic and decompress from it
# (zstd complains about the trailing bytes after the frame; the ELF is whole regardless).
off=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$vmlinuz" | head -n 1 | cut -d: -f1) || true
[ -n "$off" ] || die "no zstd payload in $vmlinuz"
tail -c +$((off + 1)) "$vmlinuz" | zstd -dc 2>/dev/null > "$tmp/vmlinux" || true
readelf -S "$tmp/vmlinux" 2>/dev/null | grep -q '\.BTF' || die "extracted vmlinux has no .BTF section"

mkdir -p "$tmp/out"
cp "$vmlinuz" "$tmp/out/vmlinuz"; cp "$config" "$tmp/out/config"; mv "$tmp/vmlinux" "$tmp/out/vmlinux"
echo "$ver" > "$tmp/out/version"
rm -rf "$dir"; mv "$tmp/out" "$dir"
log "cached $ver in $dir"
echo "$dir"
