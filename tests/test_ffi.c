/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test_ffi.c - the wire structs have one layout for C and LuaJIT: sizeof/offsetof of every
 * field agree between gcc and ffi (build/gen/gthulhu/cdef.lua loaded into a bare state),
 * and the generated cdef names the same fields, in the same order, as bpf/intf.h.
 * Run from the repository root.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "check.h"
#pragma GCC diagnostic ignored "-Wformat-zero-length"  /* CHECK(cond) without a message */
#include "common.h"
#include "../bpf/intf.h"

int g_verbose __attribute__((weak));

#define CDEF_LUA "build/gen/gthulhu/cdef.lua"
#define INTF_H   "bpf/intf.h"

struct fld {
	const char *st, *field;   /* field "" = sizeof the struct */
	size_t value;
};
#define SZ(s)     { #s, "", sizeof(struct s) }
#define OFF(s, f) { #s, #f, offsetof(struct s, f) }
static const struct fld fields[] = {
	SZ(queued_task_ctx),
	OFF(queued_task_ctx, pid), OFF(queued_task_ctx, tgid), OFF(queued_task_ctx, cpu),
	OFF(queued_task_ctx, nr_cpus_allowed), OFF(queued_task_ctx, flags),
	OFF(queued_task_ctx, start_ts), OFF(queued_task_ctx, stop_ts),
	OFF(queued_task_ctx, exec_runtime), OFF(queued_task_ctx, weight),
	OFF(queued_task_ctx, vtime), OFF(queued_task_ctx, enq_cnt), OFF(queued_task_ctx, comm),
	SZ(dispatched_task_ctx),
	OFF(dispatched_task_ctx, pid), OFF(dispatched_task_ctx, cpu),
	OFF(dispatched_task_ctx, flags), OFF(dispatched_task_ctx, slice_ns),
	OFF(dispatched_task_ctx, vtime), OFF(dispatched_task_ctx, enq_cnt),
	SZ(cpu_topo),
	OFF(cpu_topo, nr_l2), OFF(cpu_topo, nr_l3), OFF(cpu_topo, l2), OFF(cpu_topo, l3),
};
#define NFIELDS ((int)(sizeof(fields) / sizeof(fields[0])))

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += r;
		if (len + 1 == cap) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				buf = NULL;
			}
			buf = nb;
		}
	}
	fclose(f);
	if (buf)
		buf[len] = 0;
	return buf;
}

/* Field names of every struct in `text`, as "struct.field" lines appended to out.
 * Understands the plain declarations allowed between the FFI markers. */
static void field_names(const char *text, char *out, size_t outlen)
{
	char st[64] = "";
	bool in_struct = false;
	const char *line = text;

	out[0] = 0;
	while (*line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char buf[256];
		snprintf(buf, sizeof(buf), "%.*s", (int)(len < 255 ? len : 255), line);
		char *cm = strstr(buf, "/*");
		if (cm)
			*cm = 0;
		char name[64];
		if (sscanf(buf, " struct %63[A-Za-z0-9_] {", name) == 1) {
			snprintf(st, sizeof(st), "%s", name);
			in_struct = true;
		} else if (in_struct && strchr(buf, '}')) {
			in_struct = false;
		} else if (in_struct && strchr(buf, ';')) {
			/* last identifier before '[' or ';' */
			char *stop = strpbrk(buf, "[;");
			char *q = stop;
			while (q > buf && isspace((unsigned char)q[-1]))
				q--;
			char *s = q;
			while (s > buf && (isalnum((unsigned char)s[-1]) || s[-1] == '_'))
				s--;
			size_t used = strlen(out);
			snprintf(out + used, outlen - used, "%s.%.*s\n", st, (int)(q - s), s);
		}
		line = end ? end + 1 : line + len;
	}
}

static void test_layout(void)
{
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	/* stack: (empty) */
	int rc = luaL_dofile(L, CDEF_LUA);                   /* stack: text | err */
	CHECK(rc == 0, "%s: %s (run `make build/gen/cdef_lua.h` first)", CDEF_LUA,
	      rc ? lua_tostring(L, -1) : "");
	if (rc) {
		lua_close(L);
		return;
	}
	lua_pop(L, 1);                                       /* stack: (empty) */
	/* loading it twice is harmless (it defines the structs once per state) */
	CHECK(luaL_dofile(L, CDEF_LUA) == 0);
	lua_settop(L, 0);

	CHECK(luaL_dostring(L, "local ffi = require 'ffi'\n"
			       "return function(st, f)\n"
			       "  if f == '' then return ffi.sizeof('struct ' .. st) end\n"
			       "  return ffi.offsetof('struct ' .. st, f)\n"
			       "end") == 0);                 /* stack: fn */
	for (int i = 0; i < NFIELDS; i++) {
		lua_pushvalue(L, 1);                         /* stack: fn fn */
		lua_pushstring(L, fields[i].st);
		lua_pushstring(L, fields[i].field);          /* stack: fn fn st f */
		if (lua_pcall(L, 2, 1, 0) != 0) {            /* stack: fn res|err */
			CHECK(0, "%s.%s: %s", fields[i].st, fields[i].field, lua_tostring(L, -1));
		} else {
			bool num = lua_isnumber(L, -1);
			size_t got = num ? (size_t)lua_tonumber(L, -1) : (size_t)-1;
			CHECK(num && got == fields[i].value, "%s %s%s: C %zu, LuaJIT %s",
			      fields[i].st, fields[i].field[0] ? "." : "(size)", fields[i].field,
			      fields[i].value, num ? lua_tostring(L, -1) : "missing");
		}
		lua_pop(L, 1);                               /* stack: fn */
	}

	/* the enum constants agree too */
	CHECK(luaL_dostring(L, "local ffi = require 'ffi'\n"
			       "return ffi.C.RL_CPU_ANY, ffi.C.MAX_CPUS, ffi.C.MAX_SIBLINGS, ffi.C.MAX_BATCH") == 0);
	CHECK(lua_tointeger(L, -4) == RL_CPU_ANY && lua_tointeger(L, -3) == MAX_CPUS &&
	      lua_tointeger(L, -2) == MAX_SIBLINGS && lua_tointeger(L, -1) == MAX_BATCH);
	lua_settop(L, 0);

	/* and the struct arrays are as long as the C ones */
	CHECK(luaL_dostring(L, "local ffi = require 'ffi'\n"
			       "local t = ffi.new('struct cpu_topo')\n"
			       "local q = ffi.new('struct queued_task_ctx')\n"
			       "return ffi.sizeof(t.l2), ffi.sizeof(t.l3), ffi.sizeof(q.comm)") == 0);
	struct cpu_topo ct;
	struct queued_task_ctx qt;
	CHECK((size_t)lua_tointeger(L, -3) == sizeof(ct.l2) && (size_t)lua_tointeger(L, -2) == sizeof(ct.l3) &&
	      (size_t)lua_tointeger(L, -1) == sizeof(qt.comm));
	lua_close(L);
}

static void test_names(void)
{
	char *intf = slurp(INTF_H), *cdef = slurp(CDEF_LUA);
	static char a[8192], b[8192];

	CHECK(intf && cdef, "cannot read %s or %s", INTF_H, CDEF_LUA);
	if (intf && cdef) {
		char *s = strstr(intf, "/* FFI-BEGIN */"), *e = strstr(intf, "/* FFI-END */");
		CHECK(s && e && s < e, "FFI markers in " INTF_H);
		if (s && e && s < e) {
			*e = 0;
			field_names(s, a, sizeof(a));
			field_names(cdef, b, sizeof(b));
			CHECK(strcmp(a, b) == 0, "field names differ:\n--- intf.h\n%s--- cdef.lua\n%s", a, b);
			/* every field the C layout check knows is among them, and vice versa */
			int nlines = 0, known = 0;
			for (const char *l = a; *l; l = strchr(l, '\n') + 1)
				nlines++;
			for (int i = 0; i < NFIELDS; i++) {
				if (!fields[i].field[0])
					continue;
				char want[128];
				snprintf(want, sizeof(want), "%s.%s\n", fields[i].st, fields[i].field);
				CHECK(strstr(b, want) != NULL, "%s not in the generated cdef", want);
				known++;
			}
			CHECK(known == nlines, "intf.h has %d fields, the layout check knows %d: "
			      "add new fields to tests/test_ffi.c and host/pol/state.c", nlines, known);
		}
	}
	free(intf);
	free(cdef);
}

int main(void)
{
	test_layout();
	test_names();
	return CHECK_DONE();
}
