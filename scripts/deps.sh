#!/usr/bin/env bash
# deps.sh: install everything gthulhu-lua needs to build, run and test, from Debian's
# archive only. Idempotent: packages already present are not touched, and apt is not
# even updated when nothing is missing, so a warm machine pays nothing.
#
# Debian 12 (bookworm): libbpf-dev and bpftool come from bookworm-backports (bookworm's own
# 1.1 / 7.1 are too old for struct_ops links and kfunc prototypes), and so does QEMU >= 10
# (bookworm's 7.2 oopsed the guest now and then under multi-threaded TCG while sched_ext
# was being enabled; scripts/vm.sh runs multi-threaded TCG for `make vmbench`); the
# backports suite is added with the same URI and keyring that the machine's own
# debian.sources already uses. Debian 13 (trixie) and later: everything, libbpf-dev 1.5,
# bpftool 7.5 and QEMU 10 included, comes from the main suite; no source is added.
# (`make distcheck` proves it in a trixie chroot.) Versions are checked on what is
# installed (qemu-system-x86_64 --version), not only on the package name.
set -euo pipefail

PKGS=(make gcc pkg-config clang-19 llvm-19 libelf-dev zlib1g-dev libzstd-dev
      libluajit-5.1-dev luajit libyaml-dev libmicrohttpd-dev libjansson-dev libjwt-dev
      lua-busted busybox-static cpio zstd gzip binutils valgrind curl
      libclang-rt-19-dev strace rt-tests stress-ng linux-perf libcurl4-openssl-dev libssl-dev openssl
      jq librsvg2-bin python3 perl
      flex bison bc dwarves debootstrap)   # kernel-src.sh (6.12 test kernel), make distcheck
BPO_PKGS=(libbpf-dev bpftool)
NEED_LIBBPF="1.4"
QEMU_PKG=qemu-system-x86   # checked and installed on its own (qemu_ok): bookworm takes it from backports
NEED_QEMU=10

codename=$( . /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")
case $codename in
bookworm) BPO=1 ;;
trixie|forky|sid) BPO=0; PKGS+=("${BPO_PKGS[@]}" "$QEMU_PKG") ;;
*) echo "deps: Debian '${codename:-unknown}' is not one this script knows (bookworm, trixie): trying it like trixie" >&2
   BPO=0; PKGS+=("${BPO_PKGS[@]}" "$QEMU_PKG") ;;
esac

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

libbpf_ok() {
	local v
	v=$(dpkg-query -W -f='${Version}' libbpf-dev 2>/dev/null) || return 1
	dpkg --compare-versions "${v#*:}" ge "$NEED_LIBBPF" && command -v bpftool >/dev/null &&
		bpftool version 2>/dev/null | grep -q 'libbpf'
}

# qemu_ok: the qemu-system-x86_64 on PATH is QEMU >= NEED_QEMU (its own --version).
qemu_ok() {
	local v
	v=$(qemu-system-x86_64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\)\..*/\1/p' | head -n 1)
	[ -n "$v" ] && [ "$v" -ge "$NEED_QEMU" ]
}

if [ ${#missing[@]} -eq 0 ] && libbpf_ok && qemu_ok; then
	echo "deps: all present"
	exit 0
fi

if [ $BPO = 0 ]; then
	$SUDO apt-get update -q
	[ ${#missing[@]} -eq 0 ] || $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
	libbpf_ok || { echo "deps: libbpf-dev >= $NEED_LIBBPF and bpftool did not install from $codename" >&2; exit 1; }
	qemu_ok || $SUDO apt-get install -y -q --no-install-recommends "$QEMU_PKG"
	qemu_ok || { echo "deps: QEMU >= $NEED_QEMU did not install from $codename (qemu-system-x86_64 --version: $(qemu-system-x86_64 --version 2>&1 | head -n 1))" >&2; exit 1; }
	echo "deps: installed ($codename)"
	exit 0
fi

# Find the URI and keyring of the main Debian suite, whichever format the machine uses.
uri="" key=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
	uri=$(awk '/^URIs:/{u=$2} /^Suites:/ && /bookworm( |$)/{print u; exit}' /etc/apt/sources.list.d/debian.sources)
	key=$(awk '/^Signed-By:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
	uri=$(awk '$1=="deb" && $0 ~ / bookworm / {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
fi
[ -n "$uri" ] || { echo "deps: cannot find the Debian archive URI in /etc/apt/sources.list{,.d/debian.sources}" >&2; exit 1; }
[ -n "$key" ] || key=/usr/share/keyrings/debian-archive-keyring.gpg

bpo=/etc/apt/sources.list.d/gthulhu-bookworm-backports.sources
if [ ! -f "$bpo" ]; then
	echo "deps: adding bookworm-backports from $uri"
	$SUDO tee "$bpo" >/dev/null <<SRC
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: $key
SRC
fi

$SUDO apt-get update -q
[ ${#missing[@]} -eq 0 ] || $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
libbpf_ok || $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports "${BPO_PKGS[@]}"
libbpf_ok || { echo "deps: libbpf >= $NEED_LIBBPF and bpftool from bookworm-backports did not install" >&2; exit 1; }
# With -t, QEMU's own dependencies (qemu-system-data, -common...) come from backports too.
qemu_ok || $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports "$QEMU_PKG"
qemu_ok || { echo "deps: QEMU >= $NEED_QEMU from bookworm-backports did not install (qemu-system-x86_64 --version: $(qemu-system-x86_64 --version 2>&1 | head -n 1))" >&2; exit 1; }
echo "deps: installed"
