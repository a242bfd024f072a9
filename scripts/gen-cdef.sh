#!/usr/bin/env bash
# gen-cdef.sh INTF_H OUT_DIR: turn the FFI-BEGIN..FFI-END part of bpf/intf.h into
#   OUT_DIR/gthulhu/cdef.lua  a Lua module that ffi.cdef()s the wire structs once
#   OUT_DIR/cdef_lua.h        the same module source as a C string (embedded in the host)
# so Lua and C can never disagree on the layout: there is one hand-written copy.
set -euo pipefail
in=$1; out=$2
mkdir -p "$out/gthulhu"
body=$(awk '/^\/\* FFI-BEGIN \*\/$/{on=1; next} /^\/\* FFI-END \*\/$/{on=0} on' "$in" |
	sed -e 's/__s32/int32_t/g; s/__u32/uint32_t/g; s/__u64/uint64_t/g; s/__s64/int64_t/g; s/__u16/uint16_t/g; s/__u8/uint8_t/g')
grep -q 'struct queued_task_ctx' <<<"$body" || { echo "gen-cdef: no FFI-BEGIN/FFI-END block in $in" >&2; exit 1; }
{
	echo "-- Generated from $in by scripts/gen-cdef.sh. Do not edit."
	echo "local ffi = require 'ffi'"
	echo "local text = [==["
	printf '%s\n' "$body"
	echo "]==]"
	echo "-- Define once per Lua state (ffi.cdef refuses to redefine a struct)."
	echo "if not pcall(ffi.typeof, \"struct queued_task_ctx\") then ffi.cdef(text) end"
	echo "return text"
} > "$out/gthulhu/cdef.lua.tmp"
mv "$out/gthulhu/cdef.lua.tmp" "$out/gthulhu/cdef.lua"
{
	echo "/* Generated from $in by scripts/gen-cdef.sh. Do not edit. */"
	echo "static const char gthulhu_cdef_lua[] ="
	sed -e 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$/\\n"/' "$out/gthulhu/cdef.lua"
	echo ";"
} > "$out/cdef_lua.h.tmp"
mv "$out/cdef_lua.h.tmp" "$out/cdef_lua.h"
