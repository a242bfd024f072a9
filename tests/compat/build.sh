#!/usr/bin/env bash
# tests/compat/build.sh [KERNEL_DIR...] - bpf/main.bpf.c builds against the BTF of every
# kernel given (default: every kernel cached by scripts/kernel.sh and kernel-src.sh under
# ~/.cache/gthulhu-lua), with the flags of the real build, and the objects import the
# same kfuncs (weak for the renamed ones, bpf/compat.bpf.h) whatever vmlinux.h they were
# compiled with. Loading them is the VM matrix's job (make vmtest KERNELS=all).
# `make bpf-compat`; ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
CACHE=${GTHULHU_CACHE:-${HOME:-/root}/.cache/gthulhu-lua}
CLANG=${CLANG:-clang-19}
BPFTOOL=${BPFTOOL:-bpftool}
ARCH=$(uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/')
OUT=build/compat
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

[ -f build/gen/gthulhu/cdef.lua ] || make -s build/gen/gthulhu/cdef.lua >/dev/null
dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || mapfile -t dirs < <(ls -1d "$CACHE"/kernels/*/ "$CACHE"/built/*/ 2>/dev/null | sed 's:/$::')
[ ${#dirs[@]} -gt 0 ] || { echo "compat: no cached kernel (scripts/kernel.sh)"; echo "0 passed, 1 failed"; exit 1; }

ref=""
for d in "${dirs[@]}"; do
	v=$(cat "$d/version" 2>/dev/null || basename "$d")
	o=$OUT/$v; mkdir -p "$o"
	if ! "$BPFTOOL" btf dump file "$d/vmlinux" format c > "$o/vmlinux.h" 2> "$o/btf.log"; then
		bad "$v: no BTF in $d/vmlinux"; continue
	fi
	if "$CLANG" -g -O2 -target bpf -D__TARGET_ARCH_$ARCH -I"$o" -Ibuild/gen -Ibpf \
		-Wno-missing-declarations -Wno-compare-distinct-pointer-types -Wno-microsoft-anon-tag \
		-c bpf/main.bpf.c -o "$o/main.bpf.o" 2> "$o/clang.log"; then
		ok "$v: main.bpf.c compiles against its vmlinux.h"
	else
		bad "$v: main.bpf.c does not compile against its vmlinux.h"; grep -m5 error "$o/clang.log"; continue
	fi
	# Imports (kfuncs and ksyms, weak or not): the same whichever kernel's types were used.
	llvm-readelf-19 -s "$o/main.bpf.o" 2>/dev/null | awk '$7 == "UND" && $8 != "" {print $5, $8}' | sort > "$o/imports.txt"
	if [ -z "$ref" ]; then ref=$o; continue; fi
	if cmp -s "$ref/imports.txt" "$o/imports.txt"; then ok "$v: same kfunc imports as $(basename "$ref")"
	else bad "$v: kfunc imports differ from $(basename "$ref")"; diff "$ref/imports.txt" "$o/imports.txt" | head; fi
done
for s in scx_bpf_dispatch scx_bpf_dsq_insert scx_bpf_dsq_peek __scx_bpf_dsq_insert_vtime scx_bpf_consume; do
	grep -q "^WEAK $s$" "$ref/imports.txt" && ok "$s is a weak import (resolved at load)" ||
		bad "$s is not a weak import: $(grep " $s$" "$ref/imports.txt")"
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
