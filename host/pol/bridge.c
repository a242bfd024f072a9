/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pol/bridge.c - the policy bridge: one LuaJIT state running one policy file (see pol.h).
 * Decisions are checked in validate.c, long calls interrupted by watchdog.c.
 *
 * Hot path: pol_schedule() = lua_rawgeti(closure) + lua_pushinteger(n) + one lua_pcall
 * through pol_pcall(), then a validation pass in C over preallocated arrays. The closure
 * was built once at load by BOOT_LUA, holding the batch arrays as FFI pointers in upvalues.
 *
 * Every call into Lua goes through pol_pcall(): a traceback message handler kept in the
 * registry, the watchdog armed around the call, the stack restored on every path.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>

#include "common.h"
#include "pol_int.h"
#include "cdef_lua.h"

#ifndef GTHULHU_DATADIR
#define GTHULHU_DATADIR "/usr/local/share/gthulhu-lua"
#endif

/* ---------------------------------------------------------------------------------- */
/* small helpers                                                                      */

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void dir_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, len, ".");
	else if (slash == path)
		snprintf(dir, len, "/");
	else
		snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/* Where gthulhu/sched.lua comes from, first match wins: the pol_env's lib_dir; $GTHULHU_LIB; <policy dir>/lib
 * (the repository's policies/); <executable dir>/../policies/lib (build/gthulhu-lua run
 * on a policy kept anywhere else); the installed GTHULHU_DATADIR/policies/lib. */
static void pick_lib_dir_into(const struct pol *p, const char *policy_path, char *out, size_t len)
{
	char dir[PATH_MAX], exe[PATH_MAX], probe[PATH_MAX + 64];
	const char *env = getenv("GTHULHU_LIB");
	ssize_t n;

	if (p->lib_dir_given) {
		if (out != p->lib_dir)
			snprintf(out, len, "%s", p->lib_dir);
		return;
	}
	if (env && env[0]) {
		snprintf(out, len, "%s", env);
		return;
	}
	dir_of(policy_path, dir, sizeof(dir));
	snprintf(probe, sizeof(probe), "%s/lib/gthulhu/sched.lua", dir);
	if (file_exists(probe)) {
		snprintf(out, len, "%.4000s/lib", dir);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		dir_of(exe, dir, sizeof(dir));
		snprintf(probe, sizeof(probe), "%s/../policies/lib/gthulhu/sched.lua", dir);
		if (file_exists(probe)) {
			snprintf(out, len, "%.4000s/../policies/lib", dir);
			return;
		}
	}
	snprintf(out, len, "%s", GTHULHU_DATADIR "/policies/lib");
}

/* ---------------------------------------------------------------------------------- */
/* error reporting                                                                    */

/* Keep `msg` as the last error and log it: the first one in full, later ones at most one
 * summary line a second. */
static void note_error(struct pol *p, const char *msg)
{
	uint64_t now = g_now_ns();

	if (msg != p->last_error)
		snprintf(p->last_error, sizeof(p->last_error), "%s", msg);
	if (p->err_log_ns == 0) {
		g_err("policy %s: %s", p->path, msg);
		p->err_log_ns = now;
		return;
	}
	p->err_suppressed++;
	if (now - p->err_log_ns >= 1000000000ull) {
		const char *nl = strchr(msg, '\n');
		g_err("policy %s: %llu more policy errors (last: %.*s)", p->path,
		      (unsigned long long)p->err_suppressed,
		      nl ? (int)(nl - msg) : (int)strlen(msg), msg);
		p->err_suppressed = 0;
		p->err_log_ns = now;
	}
}

/* Message handler: error value -> "message\nstack traceback: ..." */
static int traceback_handler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);                 /* stack: err */
	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_isstring(L, -1))
			msg = lua_tostring(L, -1);                 /* stack: err str */
		else
			msg = lua_pushfstring(L, "(error object is a %s value)",
					      luaL_typename(L, 1)); /* stack: err ... str */
	}
	luaL_traceback(L, L, msg, 1);                         /* stack: err ... tb */
	return 1;
}

/* ---------------------------------------------------------------------------------- */
/* the one pcall wrapper                                                              */

/* Call the function below `nargs` arguments on L's stack, with the traceback handler and
 * the watchdog armed. On success the function and arguments are replaced by `nres`
 * results; on error they are removed, the message (with traceback) is copied to errbuf
 * if given, and G_ERR is returned. Either way nothing else on the stack changes. */
/* The label of the hot-path call; compared by address to tell it from the others. */
static const char call_schedule[] = "schedule()";

static int pol_pcall(struct pol *p, struct pol_state *s, int nargs, int nres, const char *what,
		     char *errbuf, size_t errlen)
{
	lua_State *L = s->L;
	int fidx = lua_gettop(L) - nargs;                    /* stack: ... f args */

	lua_rawgeti(L, LUA_REGISTRYINDEX, s->tb_ref);        /* stack: ... f args tb */
	lua_insert(L, fidx);                                  /* stack: ... tb f args */

	/* Hot: schedule() of a warmed-up state; its first calls have the slow limits. */
	pol_wd_enter(p, L, what, what == call_schedule && ++s->calls > POL_WARM_CALLS);
	int rc = lua_pcall(L, nargs, nres, fidx);            /* stack: ... tb res | ... tb err */
	pol_wd_leave(p, L);

	if (rc != 0) {
		const char *msg = lua_tostring(L, -1);
		if (!msg)
			msg = rc == LUA_ERRMEM ? "not enough memory" : "error in error handling";
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "%s", msg);
		lua_pop(L, 2);                                /* stack: ... */
		return G_ERR;
	}
	lua_remove(L, fidx);                                  /* stack: ... res */
	return G_OK;
}

/* ---------------------------------------------------------------------------------- */
/* loading                                                                            */

/* package.preload["gthulhu.cdef"]: run the generated module embedded at build time. */
static int cdef_loader(lua_State *L)
{
	if (luaL_loadbuffer(L, gthulhu_cdef_lua, sizeof(gthulhu_cdef_lua) - 1,
			    "=gthulhu/cdef.lua") != 0)               /* stack: ... chunk|err */
		return lua_error(L);
	lua_call(L, 0, 1);                                    /* stack: ... text */
	return 1;
}

struct layout_field {
	const char *st, *field;  /* field "" = the struct's size */
	size_t value;
};
#define LSZ(s)    { #s, "", sizeof(struct s) }
#define LOFF(s, f) { #s, #f, offsetof(struct s, f) }
static const struct layout_field layout[] = {
	LSZ(queued_task_ctx),
	LOFF(queued_task_ctx, pid), LOFF(queued_task_ctx, tgid), LOFF(queued_task_ctx, cpu),
	LOFF(queued_task_ctx, nr_cpus_allowed), LOFF(queued_task_ctx, flags),
	LOFF(queued_task_ctx, start_ts), LOFF(queued_task_ctx, stop_ts),
	LOFF(queued_task_ctx, exec_runtime), LOFF(queued_task_ctx, weight),
	LOFF(queued_task_ctx, vtime), LOFF(queued_task_ctx, enq_cnt), LOFF(queued_task_ctx, comm),
	LSZ(dispatched_task_ctx),
	LOFF(dispatched_task_ctx, pid), LOFF(dispatched_task_ctx, cpu),
	LOFF(dispatched_task_ctx, flags), LOFF(dispatched_task_ctx, slice_ns),
	LOFF(dispatched_task_ctx, vtime), LOFF(dispatched_task_ctx, enq_cnt),
	LSZ(cpu_topo),
	LOFF(cpu_topo, nr_l2), LOFF(cpu_topo, nr_l3), LOFF(cpu_topo, l2), LOFF(cpu_topo, l3),
};

/* Called with a flat list { struct, field, C value, ... }; raises on the first mismatch. */
static const char LAYOUT_LUA[] =
	"local ffi = require 'ffi'\n"
	"require 'gthulhu.cdef'\n"
	"local list = ...\n"
	"for i = 1, #list, 3 do\n"
	"  local st, f, want = list[i], list[i + 1], list[i + 2]\n"
	"  local ok, got\n"
	"  if f == '' then ok, got = pcall(ffi.sizeof, 'struct ' .. st)\n"
	"  else ok, got = pcall(ffi.offsetof, 'struct ' .. st, f) end\n"
	"  if not ok or got ~= want then\n"
	"    local what = f == '' and ('sizeof(struct ' .. st .. ')') or\n"
	"                 ('offsetof(struct ' .. st .. ', ' .. f .. ')')\n"
	"    error(string.format('FFI layout mismatch: %s is %s in LuaJIT but %d in C '\n"
	"      .. '(rebuild: the generated cdef does not match bpf/intf.h)', what,\n"
	"      tostring(got), want), 0)\n"
	"  end\n"
	"end\n";

/* Called with (P, g, ctx, tasks, out, scratch tasks, scratch out): sets up the library and
 * the policy, then returns the per-batch closures. The arrays are cast to FFI pointers
 * here, once. */
static const char BOOT_LUA[] =
	"local P, g, ctx, tasks_p, out_p, stasks_p, sout_p = ...\n"
	"local ffi = require 'ffi'\n"
	"if ctx.idle ~= nil then ctx.idle = ffi.cast('const volatile uint64_t *', ctx.idle) end\n"
	/* pol_env.clock (simulator, replay): g.now() reads the virtual clock */
	"if ctx.clock ~= nil then\n"
	"  local cp = ffi.cast('const volatile uint64_t *', ctx.clock)\n"
	"  ctx.clock = nil\n"
	"  ctx.now = function() return tonumber(cp[0]) end\n"
	"end\n"
	"g.setup(ctx)\n"
	"if P.init ~= nil then P.init(ctx) end\n"
	/* A quiet machine sends long runs of 1-task batches, and LuaJIT builds its traces
	 * around that: when load comes, schedule()'s loop then runs through side traces and
	 * partly interpreted, up to ~8x slower and allocating per task (tests/bench,
	 * gthulhu-b1). So when big batches follow a long quiet spell, drop the traces once and
	 * let them be rebuilt for the new shape (a few ms; after 1000 small batches in a
	 * row, at most once every 10 s).
	 * Not a tail call either: that form fared worse still.
	 * Two closures: over the live arrays (the hot path) and over the scratch arrays
	 * (self-tests), each with the arrays in upvalues, cast once. */
	"local jit_flush = jit.flush\n"
	"local function make(tasks_p, out_p)\n"
	"  local tasks = ffi.cast('const struct queued_task_ctx *', tasks_p)\n"
	"  local out = ffi.cast('struct dispatched_task_ctx *', out_p)\n"
	"  local small, flushed_at = 0, -1e300\n"
	"  return function(n)\n"
	"    if n < 16 then\n"
	"      small = small + 1\n"
	"    else\n"
	"      if small >= 1000 then\n"
	"        local t = g.now()\n"
	"        if t - flushed_at > 10e9 then flushed_at = t; jit_flush() end\n"
	"      end\n"
	"      small = 0\n"
	"    end\n"
	"    local m = P.schedule(tasks, n, out)\n"
	"    return m\n"
	"  end\n"
	"end\n"
	"return make(tasks_p, out_p), make(stasks_p, sout_p)\n";

/* Called with (P, g): returns the serialized P.save() or nil if there is no save. The form
 * is LuaJIT's string.buffer encoding ("B" + encoded: in C, ~45x faster than g.serialize
 * on gthulhu.lua's 8192 tasks), or g.serialize's Lua text ("L" + text) on a LuaJIT
 * without string.buffer. Only this process reads it back (reload, restart). */
static const char SAVE_LUA[] =
	"local P, g = ...\n"
	"if type(P.save) ~= 'function' then return nil end\n"
	"local v = P.save()\n"
	"local ok, sb = pcall(require, 'string.buffer')\n"
	"if not ok then return 'L' .. g.serialize(v) end\n"
	"local b = sb.new()\n"
	"b:put('B')\n"
	"local ok2, e = pcall(b.encode, b, v)\n"
	"if not ok2 then error('the value save() returned cannot be carried over: ' .. tostring(e), 0) end\n"
	"return b:tostring()\n";

/* Called with (P, g, s): hands the decoded state to P.restore, if it has one. */
static const char RESTORE_LUA[] =
	"local P, g, s = ...\n"
	"if type(P.restore) ~= 'function' then return end\n"
	"local v\n"
	"if s:byte(1) == 66 then v = require('string.buffer').new():set(s):skip(1):decode()\n"
	"else v = g.deserialize(s:sub(2)) end\n"
	"P.restore(v)\n";

/* Push the chunk `src` compiled (stack: ... chunk). On a compile error (our bug) raise. */
static int push_chunk(lua_State *L, const char *src, size_t len, const char *name,
		      char *err, size_t errlen)
{
	if (luaL_loadbuffer(L, src, len, name) != 0) {       /* stack: ... err */
		set_err(err, errlen, "internal: %s", lua_tostring(L, -1));
		lua_pop(L, 1);                                /* stack: ... */
		return G_ERR;
	}
	return G_OK;                                          /* stack: ... chunk */
}

static void state_close(struct pol *p, struct pol_state *s)
{
	if (s->L) {
		lua_close(s->L);
		s->L = NULL;
	}
	free(s->heap);
	s->heap = NULL;
}

/* ---------------------------------------------------------------------------------- */
/* the Lua heap cap                                                                   */

/* Raised from the count hook capped_alloc() sets when the heap passes the cap (works
 * while the policy runs interpreted code; compiled code is caught after the call). */
static void heap_hook(lua_State *L, lua_Debug *ar)
{
	struct pol_heap *h;

	(void)ar;
	lua_getallocf(L, (void **)&h);
	lua_sethook(L, NULL, 0, 0);
	h->hooked = false;
	if (h->used > h->max)
		luaL_error(L, "the policy's Lua heap passed scheduler.lua_heap_max_mb (%d MiB)",
			   (int)(h->max >> 20));
}

/* Every allocation of a state goes through here, counted. Past heap->max a count hook is
 * armed (see heap_hook) and the call is checked after it returns (heap_check): refusing
 * memory at the cap would be neater, but LuaJIT 2.1.0-beta3 can crash when an allocation
 * fails inside compiled code, so only growth past twice the cap is refused (the last
 * line against one call allocating without end). Under mlockall(MCL_FUTURE) an unbounded
 * heap would pin memory without limit. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct pol_heap *h = ud;

	if (nsize > osize && h->max) {
		size_t after = h->used + (nsize - osize);
		if (after > h->max && !h->hooked && h->L) {
			h->hooked = true;
			h->hit = true;
			lua_sethook(h->L, heap_hook, LUA_MASKCOUNT, 1);  /* async-safe in LuaJIT */
		}
		if (after > 2 * h->max) {
			h->hit = true;
			return NULL;
		}
	}
	void *r = h->f(h->ud, ptr, osize, nsize);
	if (r || nsize == 0)
		h->used = h->used + nsize - osize;
	return r;
}

/* Last resort: an error outside any protected call (every call that can allocate runs
 * under lua_pcall or lua_cpcall, so this is a bug). Say so and let the kernel's scheduler
 * take over, rather than LuaJIT's exit(1). */
static int on_panic(lua_State *L)
{
	const char *msg = lua_tostring(L, -1);
	static const char pre[] = "gthulhu-lua: error: Lua panic (error outside a protected call): ";
	ssize_t r = write(2, pre, sizeof(pre) - 1);
	if (msg)
		r = write(2, msg, strlen(msg));
	r = write(2, "\n", 1);
	(void)r;
	_exit(EXIT_POLICY);
}

static int gc_full(lua_State *L)
{
	lua_gc(L, LUA_GCCOLLECT, 0);
	return 0;
}

/* After every call: over the cap means collect; still over 3/4 of the cap after a full
 * GC means live data (a leak), and the policy is switched off until a reload: every
 * batch gets the C decisions, reported once. Two loads when under the cap. */
static void heap_check(struct pol *p)
{
	struct pol_heap *h = p->st.heap;

	if (!h->max || (h->used <= h->max && !h->hit))
		return;
	if (h->hooked) {
		lua_sethook(p->st.L, NULL, 0, 0);
		h->hooked = false;
	}
	h->hit = false;
	p->stats.lua_heap_hits++;
	lua_cpcall(p->st.L, gc_full, NULL);
	lua_settop(p->st.L, 0);
	if (h->used <= h->max / 4 * 3)
		return;
	h->disabled = true;
	p->stats.lua_heap_disabled = 1;
	char msg[PATH_MAX + 256];
	snprintf(msg, sizeof(msg), "its Lua heap passed scheduler.lua_heap_max_mb (%zu MiB) and "
		 "stays at %zu KiB after a full GC: the host decides every task itself (built-in "
		 "C decisions) until the policy is reloaded", h->max >> 20, h->used >> 10);
	p->err_log_ns = 0;   /* always printed */
	note_error(p, msg);
}

/* Push the ctx table for g.setup / P.init (stack: ... ctx). */
static void push_ctx(struct pol *p, lua_State *L)
{
	const struct pol_env *e = &p->env;

	lua_createtable(L, 0, 8);                             /* stack: ... ctx */
	lua_pushinteger(L, e->nr_cpus);
	lua_setfield(L, -2, "nr_cpus");
	lua_pushnumber(L, (lua_Number)e->slice_ns_default);
	lua_setfield(L, -2, "slice_ns_default");
	lua_pushnumber(L, (lua_Number)e->slice_ns_min);
	lua_setfield(L, -2, "slice_ns_min");
	lua_pushinteger(L, e->batch_max);
	lua_setfield(L, -2, "batch_max");
	if (e->idle) {
		lua_pushlightuserdata(L, (void *)(uintptr_t)e->idle);  /* stack: ... ctx idle */
		lua_setfield(L, -2, "idle");                   /* cast to cdata by BOOT_LUA */
	}
	if (e->clock) {
		lua_pushlightuserdata(L, (void *)(uintptr_t)e->clock); /* stack: ... ctx clock */
		lua_setfield(L, -2, "clock");                  /* made ctx.now by BOOT_LUA */
	}

	lua_createtable(L, 0, e->nr_cpus);                    /* stack: ... ctx topo */
	for (int c = 0; c < e->nr_cpus; c++) {
		lua_createtable(L, 0, 2);                     /* stack: ... ctx topo t */
		for (int lvl = 0; lvl < 2; lvl++) {
			int nr = 1;
			const uint16_t *ids = NULL;
			if (e->topo) {
				const struct cpu_topo *ct = &e->topo->cpu[c];
				nr = (int)(lvl == 0 ? ct->nr_l2 : ct->nr_l3);
				ids = lvl == 0 ? ct->l2 : ct->l3;
				if (nr > MAX_SIBLINGS)
					nr = MAX_SIBLINGS;
			}
			lua_createtable(L, nr, 0);            /* stack: ... ctx topo t list */
			if (!ids) {
				lua_pushinteger(L, c);
				lua_rawseti(L, -2, 1);
			} else {
				for (int i = 0; i < nr; i++) {
					lua_pushinteger(L, ids[i]);
					lua_rawseti(L, -2, i + 1);
				}
			}
			lua_setfield(L, -2, lvl == 0 ? "l2" : "l3"); /* stack: ... ctx topo t */
		}
		lua_rawseti(L, -2, c);                        /* stack: ... ctx topo */
	}
	lua_setfield(L, -2, "topology");                      /* stack: ... ctx */
}

/* Build a complete state for `path` into *s: libraries, layout check, policy, init,
 * the batch closure. On error, *s is left closed and err holds the message. */
struct build_args {
	struct pol *p;
	struct pol_state *s;
	const char *path;
	const char *lib;
	char *err;
	size_t errlen;
	int rc;
};

/* Drop every entry of a search path that is not absolute ("./?.lua", "?.so", "" from
 * LUA_PATH): the host runs as root, and its working directory is nobody's promise.
 * Stack: ... path -> ... filtered. */
static void push_absolute_entries(lua_State *L, const char *list)
{
	luaL_Buffer b;
	const char *e = list;

	luaL_buffinit(L, &b);
	while (*e) {
		size_t len = strcspn(e, ";");
		if (len && e[0] == '/') {
			luaL_addlstring(&b, e, len);
			luaL_addchar(&b, ';');
		}
		e += len;
		if (*e == ';')
			e++;
	}
	luaL_pushresult(&b);
}

/* Runs under lua_cpcall (an out-of-memory anywhere in here is an error code, not a
 * panic). Stack inside: empty apart from what it pushes. */
static int state_build(lua_State *L)
{
	struct build_args *a = lua_touserdata(L, 1);
	struct pol *p = a->p;
	struct pol_state *s = a->s;
	const char *path = a->path;
	char *err = a->err;
	size_t errlen = a->errlen;
	char buf[3 * PATH_MAX + 64], dir[PATH_MAX], absdir[PATH_MAX], abslib[PATH_MAX];

	lua_pop(L, 1);                                        /* stack: (empty) */
	a->rc = G_ERR;
	luaL_openlibs(L);                                     /* stack: (empty) */
	luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_ON);

	lua_pushcfunction(L, traceback_handler);              /* stack: tb */
	s->tb_ref = luaL_ref(L, LUA_REGISTRYINDEX);           /* stack: (empty) */
	lua_pushlightuserdata(L, p);                          /* stack: p */
	lua_setfield(L, LUA_REGISTRYINDEX, POL_REG_KEY);      /* stack: (empty) */

	/* package.path (library, policy dir, then the absolute system entries), package.cpath
	 * (absolute entries only) and package.preload["gthulhu.cdef"] */
	dir_of(path, dir, sizeof(dir));
	if (!realpath(dir, absdir))
		snprintf(absdir, sizeof(absdir), "%s", dir);
	if (!realpath(a->lib, abslib))
		snprintf(abslib, sizeof(abslib), "%s", a->lib);
	lua_getglobal(L, "package");                          /* stack: package */
	snprintf(buf, sizeof(buf), "%s/?.lua;%s/?/init.lua;%s/?.lua;", abslib, abslib, absdir);
	lua_pushstring(L, buf);                               /* stack: package prefix */
	lua_getfield(L, -2, "path");                          /* stack: package prefix oldpath */
	push_absolute_entries(L, lua_tostring(L, -1));        /* stack: package prefix old sys */
	lua_remove(L, -2);                                    /* stack: package prefix sys */
	lua_concat(L, 2);                                     /* stack: package newpath */
	push_absolute_entries(L, lua_tostring(L, -1));        /* stack: package newpath abs */
	lua_remove(L, -2);                                    /* stack: package abs */
	lua_setfield(L, -2, "path");                          /* stack: package */
	lua_getfield(L, -1, "cpath");                         /* stack: package oldcpath */
	push_absolute_entries(L, lua_tostring(L, -1));        /* stack: package oldcpath abs */
	lua_remove(L, -2);                                    /* stack: package abs */
	lua_setfield(L, -2, "cpath");                         /* stack: package */
	lua_getfield(L, -1, "preload");                       /* stack: package preload */
	lua_pushcfunction(L, cdef_loader);                    /* stack: package preload loader */
	lua_setfield(L, -2, "gthulhu.cdef");                  /* stack: package preload */
	lua_pop(L, 2);                                        /* stack: (empty) */

	/* FFI layout check */
	if (push_chunk(L, LAYOUT_LUA, sizeof(LAYOUT_LUA) - 1, "=gthulhu/layout", err, errlen))
		goto fail;                                    /* stack: chunk */
	int nl = (int)(sizeof(layout) / sizeof(layout[0]));
	lua_createtable(L, nl * 3, 0);                        /* stack: chunk list */
	for (int i = 0; i < nl; i++) {
		lua_pushstring(L, layout[i].st);
		lua_rawseti(L, -2, 3 * i + 1);
		lua_pushstring(L, layout[i].field);
		lua_rawseti(L, -2, 3 * i + 2);
		lua_pushinteger(L, (lua_Integer)layout[i].value);
		lua_rawseti(L, -2, 3 * i + 3);
	}
	if (pol_pcall(p, s, 1, 0, "layout check", buf, sizeof(buf))) { /* stack: (empty) */
		set_err(err, errlen, "%s: %s", path, buf);
		goto fail;
	}

	/* the library */
	lua_getglobal(L, "require");                          /* stack: require */
	lua_pushstring(L, "gthulhu.sched");                   /* stack: require name */
	if (pol_pcall(p, s, 1, 1, "require 'gthulhu.sched'", buf, sizeof(buf))) {
		set_err(err, errlen, "%s: cannot load the policy library gthulhu.sched (lib dir %s): %s",
			path, a->lib, buf);
		goto fail;                                    /* stack: (empty) */
	}
	if (!lua_istable(L, -1)) {                            /* stack: g */
		lua_pop(L, 1);
		set_err(err, errlen, "%s: module gthulhu.sched did not return a table", path);
		goto fail;
	}
	s->g_ref = luaL_ref(L, LUA_REGISTRYINDEX);            /* stack: (empty) */

	/* the policy file */
	if (luaL_loadfile(L, path) != 0) {                    /* stack: err */
		set_err(err, errlen, "%s", lua_tostring(L, -1));
		lua_pop(L, 1);                                /* stack: (empty) */
		goto fail;
	}                                                     /* stack: chunk */
	if (pol_pcall(p, s, 0, 1, "the policy's main chunk", buf, sizeof(buf))) {
		set_err(err, errlen, "%s", buf);
		goto fail;                                    /* stack: (empty) */
	}                                                     /* stack: P */
	if (!lua_istable(L, -1)) {
		set_err(err, errlen, "%s: the policy must return a table with a schedule function "
			"(it returned a %s)", path, luaL_typename(L, -1));
		lua_pop(L, 1);                                /* stack: (empty) */
		goto fail;
	}
	lua_getfield(L, -1, "schedule");                      /* stack: P schedule */
	if (!lua_isfunction(L, -1)) {
		set_err(err, errlen, "%s: the policy table has no schedule function "
			"(P.schedule is a %s)", path, luaL_typename(L, -1));
		lua_pop(L, 2);                                /* stack: (empty) */
		goto fail;
	}
	lua_pop(L, 1);                                        /* stack: P */
	s->P_ref = luaL_ref(L, LUA_REGISTRYINDEX);            /* stack: (empty) */

	/* bootstrap: setup, init, closure */
	if (push_chunk(L, BOOT_LUA, sizeof(BOOT_LUA) - 1, "=gthulhu/boot", err, errlen))
		goto fail;                                    /* stack: boot */
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->P_ref);          /* stack: boot P */
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->g_ref);          /* stack: boot P g */
	push_ctx(p, L);                                       /* stack: boot P g ctx */
	lua_pushlightuserdata(L, (void *)p->live.tasks_ro);   /* stack: boot P g ctx tasks */
	lua_pushlightuserdata(L, p->live.out);                /* stack: boot P g ctx tasks out */
	lua_pushlightuserdata(L, (void *)p->scratch.tasks_ro);/* stack: ... out stasks */
	lua_pushlightuserdata(L, p->scratch.out);             /* stack: ... out stasks sout */
	if (pol_pcall(p, s, 7, 2, "init()", buf, sizeof(buf))) {
		set_err(err, errlen, "%s", buf);
		goto fail;                                    /* stack: (empty) */
	}
	if (!lua_isfunction(L, -1) || !lua_isfunction(L, -2)) { /* stack: closure test */
		lua_pop(L, 2);
		set_err(err, errlen, "internal: bootstrap returned no closure");
		goto fail;
	}
	s->test_ref = luaL_ref(L, LUA_REGISTRYINDEX);         /* stack: closure */
	s->sched_ref = luaL_ref(L, LUA_REGISTRYINDEX);        /* stack: (empty) */
	assert(lua_gettop(L) == 0);
	a->rc = G_OK;
	return 0;

fail:
	assert(lua_gettop(L) == 0);
	return 0;
}

/* Build a complete state for `path` into *s: a capped heap, libraries, layout check,
 * policy, init, the batch closure. On error, *s is left closed and err holds the
 * message. */
static int state_open(struct pol *p, struct pol_state *s, const char *path, const char *lib,
		      char *err, size_t errlen)
{
	struct build_args a = { p, s, path, lib, err, errlen, G_ERR };
	lua_State *L;

	memset(s, 0, sizeof(*s));
	s->tb_ref = s->g_ref = s->P_ref = s->sched_ref = s->test_ref = LUA_NOREF;
	s->heap = calloc(1, sizeof(*s->heap));
	L = s->heap ? luaL_newstate() : NULL;
	if (!L) {
		set_err(err, errlen, "%s: cannot create a Lua state (out of memory)", path);
		state_close(p, s);
		return G_ERR_NOMEM;
	}
	s->L = L;
	lua_atpanic(L, on_panic);
	s->heap->f = lua_getallocf(L, &s->heap->ud);
	s->heap->used = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
	s->heap->max = p->env.lua_heap_max;
	s->heap->L = L;
	lua_setallocf(L, capped_alloc, s->heap);

	int rc = lua_cpcall(L, state_build, &a);
	if (rc != 0) {
		const char *msg = lua_tostring(L, -1);
		set_err(err, errlen, "%s: building the Lua state failed: %s%s", path,
			rc == LUA_ERRMEM ? "not enough memory" : msg ? msg : "unknown error",
			s->heap->hit ? " (scheduler.lua_heap_max_mb is too small)" : "");
		state_close(p, s);
		return rc == LUA_ERRMEM ? G_ERR_NOMEM : G_ERR;
	}
	if (a.rc != G_OK) {
		if (s->heap->hit && !strstr(err, "memory"))
			set_err(err + strlen(err), errlen - strlen(err),
				" (out of memory: scheduler.lua_heap_max_mb is too small)");
		state_close(p, s);
		return a.rc;
	}
	assert(lua_gettop(L) == 0);
	return G_OK;
}

/* ---------------------------------------------------------------------------------- */
/* public API                                                                         */

/* Touch every page for writing (volatile: a compiler may drop a memset of calloc'ed
 * memory as a dead store). */
static void prefault(void *mem, size_t len)
{
	volatile char *c = mem;

	for (size_t off = 0; off < len; off += 4096)
		c[off] = 0;
}

static int vs_alloc(struct pol_vs *vs, int batch_max)
{
	uint32_t nslots = 1;

	while (nslots < 2u * (uint32_t)batch_max)
		nslots <<= 1;
	vs->slots = calloc(nslots, sizeof(*vs->slots));
	vs->slot_mask = nslots - 1;
	vs->decided = calloc((size_t)batch_max, sizeof(*vs->decided));
	vs->keys = calloc((size_t)batch_max, sizeof(*vs->keys));
	vs->task_of = calloc((size_t)batch_max, sizeof(*vs->task_of));
	if (!vs->slots || !vs->decided || !vs->keys || !vs->task_of)
		return G_ERR_NOMEM;
	/* calloc may hand back untouched zero pages: write them now, so the validation
	 * scratch never page-faults on the hot path (mlockall covers it once attached). */
	prefault(vs->slots, nslots * sizeof(*vs->slots));
	prefault(vs->decided, (size_t)batch_max * sizeof(*vs->decided));
	prefault(vs->keys, (size_t)batch_max * sizeof(*vs->keys));
	prefault(vs->task_of, (size_t)batch_max * sizeof(*vs->task_of));
	return G_OK;
}

static void vs_free(struct pol_vs *vs)
{
	free(vs->slots);
	free(vs->decided);
	free(vs->keys);
	free(vs->task_of);
	memset(vs, 0, sizeof(*vs));
}

static void build_abandon(struct pol *p);
static void reclaim(struct pol *p);

int pol_open(struct pol **out, const char *path, const struct pol_env *env,
	     char *err, size_t errlen)
{
	struct pol *p;
	int rc;

	*out = NULL;
	if (!path || !env) {
		set_err(err, errlen, "pol_open: no policy path or environment");
		return G_ERR;
	}
	if (env->batch_max < 1 || env->batch_max > MAX_BATCH || env->nr_cpus < 1 ||
	    env->nr_cpus > MAX_CPUS) {
		set_err(err, errlen, "%s: batch_max %d (1..%d) or nr_cpus %d (1..%d) out of range",
			path, env->batch_max, MAX_BATCH, env->nr_cpus, MAX_CPUS);
		return G_ERR_RANGE;
	}
	if (strlen(path) >= PATH_MAX) {
		set_err(err, errlen, "policy path too long");
		return G_ERR_RANGE;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		set_err(err, errlen, "%s: out of memory", path);
		return G_ERR_NOMEM;
	}
	p->live.guard_slot[0] = p->live.guard_slot[1] = -1;
	p->scratch.guard_slot[0] = p->scratch.guard_slot[1] = -1;
	snprintf(p->path, sizeof(p->path), "%s", path);
	p->env = *env;
	if (env->lib_dir) {
		snprintf(p->lib_dir, sizeof(p->lib_dir), "%s", env->lib_dir);
		p->lib_dir_given = true;
	}
	p->env.lib_dir = p->lib_dir;
	p->soft_ms = POL_SOFT_MS_DEFAULT;
	p->hard_ms = POL_HARD_MS_DEFAULT;
	pick_lib_dir_into(p, path, p->lib_dir, sizeof(p->lib_dir));

	rc = pol_arrays_open(p, &p->live, err, errlen);
	if (rc == G_OK)
		rc = pol_arrays_open(p, &p->scratch, err, errlen);
	if (rc != G_OK) {
		pol_close(p);
		return rc;
	}
	if (vs_alloc(&p->vs, env->batch_max) || vs_alloc(&p->tvs, env->batch_max)) {
		set_err(err, errlen, "%s: out of memory for the batch arrays", path);
		pol_close(p);
		return G_ERR_NOMEM;
	}
	if (pol_wd_start(p) != G_OK) {
		set_err(err, errlen, "%s: cannot start the watchdog thread: %s", path, strerror(errno));
		pol_close(p);
		return G_ERR;
	}
	rc = state_open(p, &p->st, p->path, p->lib_dir, err, errlen);
	if (rc != G_OK) {
		pol_close(p);
		return rc;
	}
	*out = p;
	return G_OK;
}

void pol_close(struct pol *p)
{
	if (!p)
		return;
	build_abandon(p);
	pol_wd_stop(p);
	state_close(p, &p->st);
	if (p->wd_inited) {
		pthread_cond_destroy(&p->wd_cond);
		pthread_mutex_destroy(&p->wd_lock);
	}
	pol_arrays_close(&p->live);
	pol_arrays_close(&p->scratch);
	vs_free(&p->vs);
	vs_free(&p->tvs);
	free(p->strat);
	free(p);
}

struct queued_task_ctx *pol_tasks(struct pol *p) { return p->live.tasks; }
struct dispatched_task_ctx *pol_out(struct pol *p) { return p->live.out; }
const uint16_t *pol_out_task(const struct pol *p) { return p->vs.task_of; }
const struct pol_stats *pol_stats(const struct pol *p) { return &p->stats; }
const char *pol_path(const struct pol *p) { return p->path; }
const char *pol_lib_dir(const struct pol *p) { return p->lib_dir; }
const char *pol_last_error(const struct pol *p) { return p->last_error; }
const char *pol_last_rejected(const struct pol *p) { return p->vs.last_bad; }

void pol_set_limits(struct pol *p, unsigned soft_ms, unsigned hard_ms)
{
	__atomic_store_n(&p->soft_ms, soft_ms ? soft_ms : POL_SOFT_MS_DEFAULT, __ATOMIC_RELAXED);
	__atomic_store_n(&p->hard_ms, hard_ms ? hard_ms : POL_HARD_MS_DEFAULT, __ATOMIC_RELAXED);
}

int pol_lua_top(const struct pol *p)
{
	return p->st.L ? lua_gettop(p->st.L) : -1;
}


/* One batch of n tasks in arrays a through closure `ref` of state s; counts into *st and,
 * when `live`, logs errors and checks the heap (the running policy); a self-test keeps its
 * messages in errbuf. Leaves one valid decision per task in a->out (none for tasks BPF
 * placed itself) and returns their count. */
static int schedule_on(struct pol *p, struct pol_state *s, int ref, struct pol_arrays *a,
			struct pol_vs *vs, int n, struct pol_stats *st, bool live, char *errbuf,
			size_t errlen)
{
	lua_State *L = s->L;
	int m = 0;

	st->batches++;
	st->tasks += (uint64_t)n;
	pol_batch_begin(p, vs, a->tasks, n);   /* before the policy runs: what validation trusts */

	if (s->heap->disabled) {   /* over the Lua heap cap: C decisions only */
		return pol_validate(p, vs, a->out, n, 0, st);
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);              /* stack: closure */
	lua_pushinteger(L, n);                               /* stack: closure n */
	if (pol_pcall(p, s, 1, 1, call_schedule, errbuf, errlen)) {
		st->errors++;                                /* stack: (empty) */
		if (live)
			note_error(p, errbuf);
	} else if (lua_type(L, -1) != LUA_TNUMBER) {          /* stack: m */
		snprintf(errbuf, errlen, "%.3000s: schedule() returned a %s, not the number of "
			 "decisions", p->path, luaL_typename(L, -1));
		lua_pop(L, 1);                               /* stack: (empty) */
		st->errors++;
		if (live)
			note_error(p, errbuf);
	} else {
		lua_Number d = lua_tonumber(L, -1);
		lua_pop(L, 1);                               /* stack: (empty) */
		if (!(d > 0))          /* negative or NaN */
			m = 0;
		else if (d > n) {
			double cap = d > p->env.batch_max ? p->env.batch_max : d;
			st->bad_decisions += (uint64_t)cap - (uint64_t)n;
			snprintf(vs->last_bad, sizeof(vs->last_bad), "schedule() returned %.0f for %d "
				 "tasks: the decisions past %d were dropped", cap, n, n);
			vs->last_bad_gen = vs->gen;  /* pol_validate() below keeps this one first */
			m = n;
		} else
			m = (int)d;
	}
	assert(lua_gettop(L) == 0);
	if (live)
		heap_check(p);
	return pol_validate(p, vs, a->out, n, m, st);
}

/* p->st is the worker's (its save() runs): the built-in C decision for every task,
 * counted apart from the policy's fallbacks. */
static int schedule_lent(struct pol *p, int n)
{
	uint64_t fb = p->stats.fallbacks;
	int m;

	if (!p->lent_at)
		p->lent_at = g_now_ns();

	pol_batch_begin(p, &p->vs, p->live.tasks, n);
	m = pol_validate(p, &p->vs, p->live.out, n, 0, &p->stats);
	p->stats.reload_c_tasks += p->stats.fallbacks - fb;
	p->cost.lent_tasks += p->stats.fallbacks - fb;
	p->stats.fallbacks = fb;
	return m;
}

int pol_schedule(struct pol *p, int n)
{
	if (n <= 0)
		return 0;
	if (n > p->env.batch_max)
		n = p->env.batch_max;
	if (p->saving) {   /* a reload's save() is pending: p->st is taken per call */
		if (!__atomic_load_n(&p->lend_done, __ATOMIC_ACQUIRE)) {
			int st_free = POL_ST_FREE, m;
			if (__atomic_load_n(&p->st_want, __ATOMIC_SEQ_CST) ||
			    !__atomic_compare_exchange_n(&p->st_owner, &st_free, POL_ST_SCHED, false,
							 __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
				return schedule_lent(p, n);
			m = schedule_on(p, &p->st, p->st.sched_ref, &p->live, &p->vs, n, &p->stats,
					true, p->last_error, sizeof(p->last_error));
			__atomic_store_n(&p->st_owner, POL_ST_FREE, __ATOMIC_RELEASE);
			return m;
		}
		reclaim(p);
	}
	return schedule_on(p, &p->st, p->st.sched_ref, &p->live, &p->vs, n, &p->stats, true,
			   p->last_error, sizeof(p->last_error));
}

/* Push a Lua list of the strategies (stack: ... list). */
static void push_strategies(lua_State *L, const struct strat_entry *e, int n)
{
	lua_createtable(L, n, 0);                             /* stack: ... list */
	for (int i = 0; i < n; i++) {
		lua_createtable(L, 0, 3);                     /* stack: ... list ent */
		lua_pushinteger(L, e[i].pid);
		lua_setfield(L, -2, "pid");
		lua_pushboolean(L, e[i].priority);
		lua_setfield(L, -2, "priority");
		lua_pushnumber(L, (lua_Number)e[i].execution_time);
		lua_setfield(L, -2, "execution_time");
		lua_rawseti(L, -2, i + 1);                    /* stack: ... list */
	}
}

struct strat_args {
	struct pol *p;
	struct pol_state *s;
	const struct strat_entry *e;
	int n;
	char *err;
	size_t errlen;
	int rc;
};

/* Under lua_cpcall: building the list allocates. */
static int send_strategies_cp(lua_State *L)
{
	struct strat_args *a = lua_touserdata(L, 1);
	struct pol_state *s = a->s;

	lua_pop(L, 1);                                        /* stack: (empty) */
	a->rc = G_OK;
	push_strategies(L, a->e, a->n);                       /* stack: list */
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->g_ref);          /* stack: list g */
	lua_getfield(L, -1, "set_strategies");                /* stack: list g fn */
	lua_remove(L, -2);                                    /* stack: list fn */
	lua_pushvalue(L, -2);                                 /* stack: list fn list */
	if (pol_pcall(a->p, s, 1, 0, "g.set_strategies()", a->err, a->errlen)) {
		a->rc = G_ERR;                                /* stack: list */
		goto out;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->P_ref);          /* stack: list P */
	lua_getfield(L, -1, "on_strategies");                 /* stack: list P fn */
	lua_remove(L, -2);                                    /* stack: list fn */
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);                                /* stack: list */
		goto out;
	}
	lua_pushvalue(L, -2);                                 /* stack: list fn list */
	if (pol_pcall(a->p, s, 1, 0, "on_strategies()", a->err, a->errlen))
		a->rc = G_ERR;                                /* stack: list */
out:
	lua_pop(L, 1);                                        /* stack: (empty) */
	return 0;
}

/* g.set_strategies(list) then P.on_strategies(list) in state s. */
static int send_strategies(struct pol *p, struct pol_state *s, const struct strat_entry *e, int n,
			   char *err, size_t errlen)
{
	struct strat_args a = { p, s, e, n, err, errlen, G_ERR };

	if (lua_cpcall(s->L, send_strategies_cp, &a) != 0) {  /* stack: err */
		set_err(err, errlen, "handing the strategies over: %s", lua_tostring(s->L, -1));
		lua_settop(s->L, 0);
		return G_ERR;
	}
	assert(lua_gettop(s->L) == 0);
	return a.rc;
}

int pol_set_strategies(struct pol *p, const struct strat_entry *e, int n)
{
	if (n < 0)
		n = 0;
	if (n != p->nr_strat || (n && memcmp(p->strat, e, (size_t)n * sizeof(*e)) != 0)) {
		struct strat_entry *copy = NULL;
		if (n) {
			copy = malloc((size_t)n * sizeof(*e));
			if (!copy)
				return G_ERR_NOMEM;
			memcpy(copy, e, (size_t)n * sizeof(*e));
		}
		free(p->strat);
		p->strat = copy;
		p->nr_strat = n;
		p->strat_gen++;
	}
	if (p->saving) {           /* the worker may run save() on p->st: sent at reclaim */
		p->strat_pending = true;
		return G_OK;
	}
	if (send_strategies(p, &p->st, p->strat, p->nr_strat, p->last_error,
			    sizeof(p->last_error)) != G_OK) {
		p->stats.errors++;
		note_error(p, p->last_error);
		return G_ERR;
	}
	return G_OK;
}

static int selftest_state(struct pol *p, struct pol_state *s, const char *path, char *err,
			  size_t errlen);

/* P.save() of state s, serialized into a malloc'd *buf (NULL: no save). Runs on whichever
 * thread owns s (the scheduling thread for pol_save, the worker for a reload), under the
 * watchdog of that thread's slot. */
static int save_state(struct pol *p, struct pol_state *s, const char *path, char **buf,
		      size_t *len, char *err, size_t errlen)
{
	lua_State *L = s->L;
	char msg[POL_ERR_MAX];

	*buf = NULL;
	*len = 0;
	if (push_chunk(L, SAVE_LUA, sizeof(SAVE_LUA) - 1, "=gthulhu/save", err, errlen))
		return G_ERR;                                 /* stack: save */
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->P_ref);          /* stack: save P */
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->g_ref);          /* stack: save P g */
	if (pol_pcall(p, s, 2, 1, "save()", msg, sizeof(msg))) {
		set_err(err, errlen, "%s: save() failed: %s", path, msg);
		return G_ERR;                                 /* stack: (empty) */
	}                                                     /* stack: s|nil */
	if (lua_type(L, -1) == LUA_TSTRING) {
		const char *str = lua_tolstring(L, -1, len);
		*buf = malloc(*len ? *len : 1);
		if (*buf)
			memcpy(*buf, str, *len);
	}
	lua_pop(L, 1);                                        /* stack: (empty) */
	if (*len && !*buf) {
		set_err(err, errlen, "%s: save(): out of memory", path);
		return G_ERR_NOMEM;
	}
	return G_OK;
}

static void lend_wait(struct pol *p);

int pol_save(struct pol *p, char **buf, size_t *len, char *err, size_t errlen)
{
	lend_wait(p);
	return save_state(p, &p->st, p->path, buf, len, err, errlen);
}

struct restore_args {
	struct pol *p;
	struct pol_state *s;
	const char *saved;
	size_t len;
	char *err;
	size_t errlen;
	int rc;
};

/* Under lua_cpcall on the new state: P.restore(decoded saved state). */
static int restore_cp(lua_State *L)
{
	struct restore_args *a = lua_touserdata(L, 1);

	lua_pop(L, 1);                                        /* stack: (empty) */
	a->rc = G_ERR;
	if (push_chunk(L, RESTORE_LUA, sizeof(RESTORE_LUA) - 1, "=gthulhu/restore", a->err,
		       a->errlen))
		return 0;                                     /* stack: restore */
	lua_rawgeti(L, LUA_REGISTRYINDEX, a->s->P_ref);       /* stack: restore P */
	lua_rawgeti(L, LUA_REGISTRYINDEX, a->s->g_ref);       /* stack: restore P g */
	lua_pushlstring(L, a->saved, a->len);                 /* stack: restore P g s */
	if (pol_pcall(a->p, a->s, 3, 0, "restore()", a->err, a->errlen) == G_OK)
		a->rc = G_OK;                                 /* stack: (empty) */
	return 0;
}

static int restore_state(struct pol *p, struct pol_state *s, const char *path, const char *buf,
			 size_t len, char *err, size_t errlen)
{
	char msg[POL_ERR_MAX];
	struct restore_args ra = { p, s, buf, len, msg, sizeof(msg), G_ERR };

	if (!buf)
		return G_OK;
	if (lua_cpcall(s->L, restore_cp, &ra) != 0) {        /* stack: (empty) | err */
		set_err(err, errlen, "%s: restore(): %s", path, lua_tostring(s->L, -1));
		lua_settop(s->L, 0);
		return G_ERR;
	}
	if (ra.rc != G_OK) {
		set_err(err, errlen, "%s: restore() failed: %s", path, msg);
		return G_ERR;
	}
	return G_OK;
}

int pol_restore(struct pol *p, const char *buf, size_t len, char *err, size_t errlen)
{
	lend_wait(p);
	return restore_state(p, &p->st, p->path, buf, len, err, errlen);
}

/* ---------------------------------------------------------------------------------- */
/* hot reload: built and self-tested on a builder thread, swapped in on ours          */

static void build_free(struct pol_build *b)
{
	free(b->saved);
	free(b->strat);
	b->saved = NULL;
	b->strat = NULL;
	b->saved_len = 0;
	b->nr_strat = 0;
}

/* On the reload worker: the old policy's save() on p->st, taken between two batches and
 * then given back (see pol_int.h), the new state, its self-test (scratch arrays, tvs,
 * watchdog slot 1), restore(), strategies. Touches nothing else the scheduling thread
 * uses meanwhile. */
static void build_one(struct pol *p)
{
	struct pol_build *b = &p->build;
	struct pol_worker *w = &p->worker;
	char buf[POL_ERR_MAX];
	uint64_t t0 = g_now_ns(), t1;

	if (b->save) {
		/* Take p->st: from st_want on the scheduling thread starts no call in it, so
		 * this waits for the batch in progress at most (see pol_int.h). */
		int st_free = POL_ST_FREE;
		__atomic_store_n(&p->st_want, 1, __ATOMIC_SEQ_CST);
		while (!__atomic_compare_exchange_n(&p->st_owner, &st_free, POL_ST_WORKER, false,
						    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
			struct timespec ts = { 0, 20000 };
			st_free = POL_ST_FREE;
			nanosleep(&ts, NULL);
		}
		t0 = g_now_ns();
		b->wait_ns = t0 - b->start_ns;
		/* p->path is the old policy's: only a swap changes it, and none can happen
		 * before this build is done */
		b->rc = save_state(p, &p->st, p->path, &b->saved, &b->saved_len, b->err,
				   sizeof(b->err));
		t1 = g_now_ns();
		b->save_ns = t1 - t0;
		t0 = t1;
		__atomic_store_n(&p->st_owner, POL_ST_FREE, __ATOMIC_RELEASE);
		__atomic_store_n(&p->lend_done, 1, __ATOMIC_RELEASE);   /* p->st is back */
		pthread_mutex_lock(&w->mu);                             /* for lend_wait() */
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		if (b->rc != G_OK)
			goto out;
	}
	else
		b->wait_ns = t0 - b->start_ns;
	/* The previous swap's old state, if the worker has not closed it yet: after the save
	 * (which the scheduling thread waits for), before the new state (which needs p->old
	 * free at its swap). */
	if (__atomic_exchange_n(&w->resolved, 0, __ATOMIC_ACQ_REL)) {
		state_close(p, &p->old);
		t0 = g_now_ns();
	}
	b->rc = state_open(p, &b->ns, b->path, b->lib, b->err, sizeof(b->err));
	if (b->rc != G_OK)
		goto out;
	b->rc = G_ERR;
	if (selftest_state(p, &b->ns, b->path, b->err, sizeof(b->err)) != G_OK)
		goto fail;
	/* The self-test's synthetic tasks are in the tested state's tables now (a real task
	 * with one of their pids would inherit them): schedule with a fresh state of the
	 * same file. Loading twice costs this worker, not the scheduling thread. */
	state_close(p, &b->ns);
	b->rc = state_open(p, &b->ns, b->path, b->lib, b->err, sizeof(b->err));
	if (b->rc != G_OK)
		goto out;
	b->rc = G_ERR;
	t1 = g_now_ns();
	b->build_ns = t1 - t0;
	t0 = t1;
	if (restore_state(p, &b->ns, b->path, b->saved, b->saved_len, b->err,
			  sizeof(b->err)) != G_OK)
		goto fail;
	if (send_strategies(p, &b->ns, b->strat, b->nr_strat, buf, sizeof(buf)) != G_OK) {
		set_err(b->err, sizeof(b->err), "%s: on_strategies() failed: %s", b->path, buf);
		goto fail;
	}
	/* Collect here what loading and restore() left (the decoded state is garbage now):
	 * otherwise the new state's first batches pay that GC debt on the scheduling thread
	 * (bench: its first batch p50 0.39 ms, 0.07 ms with this). */
	lua_cpcall(b->ns.L, gc_full, NULL);
	lua_settop(b->ns.L, 0);
	b->restore_ns = g_now_ns() - t0;
	b->rc = G_OK;
	goto out;
fail:
	state_close(p, &b->ns);
out:
	build_free(b);     /* here, not in the swap: freeing a big saved state is not free */
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
}

/* The worker's CPU time must not come out of the scheduling thread's: at the same nice, a
 * worker woken by pol_reload_start() on a busy machine preempted the scheduling thread and
 * ran the whole save() there (bench: pol_reload_start() p50 1.7 ms, no batch in between).
 * POL_WORKER_NICE above the process (Linux nice is per thread) makes the scheduler (CFS/
 * EEVDF) prefer the scheduling thread; when no CPU is free the save() waits longer and the
 * batches get the C decisions meanwhile. Best effort: raising one's nice needs no right. */
static void worker_nice(void)
{
	id_t tid = (id_t)syscall(SYS_gettid);
	int now;

	errno = 0;
	now = getpriority(PRIO_PROCESS, tid);
	if (errno == 0 && now < 19)
		setpriority(PRIO_PROCESS, tid, now + POL_WORKER_NICE > 19 ? 19 : now + POL_WORKER_NICE);
}

/* The reload worker, one per pol, started at the first reload: runs save() and builds the
 * next state, then closes the state its swap replaced (freeing a big heap takes a while).
 * The swap does not wake it (the scheduling thread makes no system call there): after a
 * build it checks `resolved` at 1, 2, 4 .. 32 ms. It always closes the previous swap's old
 * state before the next build (after the next save(), if that one is already asked for),
 * so a swap never finds p->old still in use. */
static void *worker_main(void *arg)
{
	struct pol *p = arg;
	struct pol_worker *w = &p->worker;
	bool awaiting = false;       /* a build was handed over: wait for its swap or refusal */
	unsigned poll_ms = 1;

	pol_wd_set_slot(1);
	worker_nice();
	pthread_mutex_lock(&w->mu);
	for (;;) {
		/* a save() the scheduling thread waits for goes before closing (build_one) */
		if (!w->build_req && __atomic_exchange_n(&w->resolved, 0, __ATOMIC_ACQ_REL)) {
			awaiting = false;
			pthread_mutex_unlock(&w->mu);
			state_close(p, &p->old);
			pthread_mutex_lock(&w->mu);
			pthread_cond_broadcast(&w->cv);
			continue;
		}
		if (w->build_req) {
			w->build_req = false;
			pthread_mutex_unlock(&w->mu);
			build_one(p);
			pthread_mutex_lock(&w->mu);
			awaiting = p->build.rc == G_OK;   /* a refused build was closed already */
			poll_ms = 1;
			pthread_cond_broadcast(&w->cv);
			continue;
		}
		if (w->stop)
			break;
		if (!awaiting) {
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		struct timespec ts;
		g_deadline_ms(&ts, (long)poll_ms);
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		if (poll_ms < 32)
			poll_ms *= 2;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void worker_kick(struct pol_worker *w)
{
	pthread_mutex_lock(&w->mu);
	w->build_req = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Wait until the worker has no build queued or running. */
static void worker_idle(struct pol *p)
{
	struct pol_worker *w = &p->worker;

	if (!w->started)
		return;
	pthread_mutex_lock(&w->mu);
	while (w->build_req ||
	       (p->build.started && !__atomic_load_n(&p->build.done, __ATOMIC_ACQUIRE)))
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

static void worker_stop(struct pol *p)
{
	struct pol_worker *w = &p->worker;

	if (!w->started)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	w->started = false;
}

/* Scheduling thread: the worker's save() returned; p->st is ours again for good. */
static void reclaim(struct pol *p)
{
	p->saving = false;
	__atomic_store_n(&p->st_want, 0, __ATOMIC_RELAXED);
	p->cost.lent_ns = p->lent_at ? g_now_ns() - p->lent_at : 0;
	heap_check(p);             /* save() ran on this state's heap */
	if (p->strat_pending) {
		p->strat_pending = false;
		if (send_strategies(p, &p->st, p->strat, p->nr_strat, p->last_error,
				    sizeof(p->last_error)) != G_OK) {
			p->stats.errors++;
			note_error(p, p->last_error);
		}
	}
}

/* A caller that needs p->st now (pol_save, pol_restore, pol_close...): wait for the
 * worker's save() to return, then take the state back. */
static void lend_wait(struct pol *p)
{
	struct pol_worker *w = &p->worker;

	if (!p->saving)
		return;
	pthread_mutex_lock(&w->mu);
	while (!__atomic_load_n(&p->lend_done, __ATOMIC_ACQUIRE))
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	reclaim(p);
}

/* Start a thread with every signal blocked but the watchdog's (its calls are watched). */
static int spawn(pthread_t *t, void *(*fn)(void *), void *arg, size_t stack)
{
	sigset_t set, old;
	pthread_attr_t ta;
	int rc;

	sigfillset(&set);
	sigdelset(&set, POL_WD_SIGNAL);
	pthread_attr_init(&ta);
	pthread_attr_setstacksize(&ta, stack);
	pthread_sigmask(SIG_SETMASK, &set, &old);
	rc = pthread_create(t, &ta, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&ta);
	return rc;
}

struct has_save_args {
	struct pol_state *s;
	bool r;
};

/* Under lua_cpcall (the key string may allocate). */
static int has_save_cp(lua_State *L)
{
	struct has_save_args *a = lua_touserdata(L, 1);

	lua_pop(L, 1);                                        /* stack: (empty) */
	lua_rawgeti(L, LUA_REGISTRYINDEX, a->s->P_ref);       /* stack: P */
	lua_getfield(L, -1, "save");                          /* stack: P save */
	a->r = lua_isfunction(L, -1);
	lua_pop(L, 2);                                        /* stack: (empty) */
	return 0;
}

/* Does the running policy have a save function to run? (Lent only then: without one there
 * is nothing to run, and no batch needs the C decisions.) Not for a state switched off for
 * holding more than its heap cap: serializing that data would need as much again, past
 * the cap, and the reload that is its way back would always fail. If it cannot be told
 * (out of memory), lend: the worker's save() will say what is wrong. */
static bool has_save(struct pol_state *s)
{
	struct has_save_args a = { s, true };

	if (s->heap->disabled)
		return false;

	if (lua_cpcall(s->L, has_save_cp, &a) != 0) {
		lua_settop(s->L, 0);
		return true;
	}
	return a.r;
}

int pol_reload_start(struct pol *p, const char *path, char *err, size_t errlen)
{
	struct pol_build *b = &p->build;
	int rc = G_OK;

	if (b->started) {
		set_err(err, errlen, "%s: a reload is being built already", p->path);
		return G_ERR_BUSY;
	}
	memset(&b->ns, 0, sizeof(b->ns));
	b->ns.tb_ref = b->ns.g_ref = b->ns.P_ref = b->ns.sched_ref = b->ns.test_ref = LUA_NOREF;
	snprintf(b->path, sizeof(b->path), "%s", path ? path : p->path);
	pick_lib_dir_into(p, b->path, b->lib, sizeof(b->lib));
	b->err[0] = '\0';
	b->done = 0;
	b->rc = G_ERR;
	b->wait_ns = b->save_ns = b->build_ns = b->restore_ns = 0;
	if (p->nr_strat) {
		b->strat = malloc((size_t)p->nr_strat * sizeof(*p->strat));
		if (b->strat)
			memcpy(b->strat, p->strat, (size_t)p->nr_strat * sizeof(*p->strat));
		else
			rc = G_ERR_NOMEM;
	}
	b->nr_strat = b->strat ? p->nr_strat : 0;
	b->strat_gen = p->strat_gen;
	if (rc == G_OK && !p->worker.started) {
		pthread_condattr_t ca;

		pthread_mutex_init(&p->worker.mu, NULL);
		/* The worker's timed waits take CLOCK_MONOTONIC deadlines (g_deadline_ms): on
		 * the default CLOCK_REALTIME every wait returned at once and it spun. */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&p->worker.cv, &ca);
		pthread_condattr_destroy(&ca);
		if (spawn(&p->worker.thread, worker_main, p, 1024 * 1024)) {
			set_err(err, errlen, "%s: cannot start the reload thread: %s", b->path,
				strerror(errno));
			pthread_cond_destroy(&p->worker.cv);
			pthread_mutex_destroy(&p->worker.mu);
			rc = G_ERR;
		} else {
			p->worker.started = true;
		}
	}
	if (rc != G_OK) {
		build_free(b);
		p->stats.reload_errors++;
		return rc;
	}
	/* The running policy's state is taken by the worker when it runs: from then until its
	 * save() returns, the batches get the C decisions. Decisions the old policy makes
	 * after that are not in the state; the new policy meets those tasks again at their
	 * next enqueue. */
	b->save = has_save(&p->st);
	memset(&p->cost, 0, sizeof(p->cost));
	if (b->save) {
		p->saving = true;
		p->st_owner = POL_ST_FREE;
		p->st_want = 0;
		p->lend_done = 0;
		p->lent_at = 0;
	}
	b->started = true;
	b->start_ns = g_now_ns();
	worker_kick(&p->worker);
	return G_OK;
}

/* Scheduling thread, the new state built, tested, restored: the swap (this is the whole
 * pause between the old policy's last batch and the new one's first): no system call, no
 * free, and no Lua call unless the strategies changed while it was built. Not inlined:
 * the bench's callgrind run counts its instructions. */
static __attribute__((noinline)) int reload_finish(struct pol *p, char *err, size_t errlen)
{
	struct pol_build *b = &p->build;
	struct pol_state *ns = &b->ns;
	char buf[POL_ERR_MAX];

	if (p->saving)             /* done implies lend_done: the save ran before the build */
		reclaim(p);
	p->cost.wait_ns = b->wait_ns;
	p->cost.save_ns = b->save_ns;
	p->cost.build_ns = b->build_ns;
	p->cost.restore_ns = b->restore_ns;
	if (b->rc != G_OK) {
		set_err(err, errlen, "%s", b->err);
		p->stats.reload_errors++;
		return b->rc;
	}
	/* strategies changed while it was built: the new state gets the current list */
	if (b->strat_gen != p->strat_gen &&
	    send_strategies(p, ns, p->strat, p->nr_strat, buf, sizeof(buf)) != G_OK) {
		set_err(err, errlen, "%s: on_strategies() failed: %s", b->path, buf);
		p->old = *ns;          /* refused: the worker closes it */
		memset(ns, 0, sizeof(*ns));
		__atomic_store_n(&p->worker.resolved, 1, __ATOMIC_RELEASE);
		p->stats.reload_errors++;
		return G_ERR;
	}
	/* The worker closed the previous swap's old state before it built this one. */
	p->old = p->st;
	p->st = *ns;
	memset(ns, 0, sizeof(*ns));
	__atomic_store_n(&p->worker.resolved, 1, __ATOMIC_RELEASE);   /* no wake-up: it polls */
	p->stats.lua_heap_disabled = 0;
	snprintf(p->path, sizeof(p->path), "%s", b->path);
	snprintf(p->lib_dir, sizeof(p->lib_dir), "%s", b->lib);
	p->stats.reloads++;
	return G_OK;
}

int pol_reload_poll(struct pol *p, char *err, size_t errlen)
{
	struct pol_build *b = &p->build;

	if (!b->started)
		return POL_RELOAD_IDLE;
	if (!__atomic_load_n(&b->done, __ATOMIC_ACQUIRE)) {
		if (p->saving && __atomic_load_n(&p->lend_done, __ATOMIC_ACQUIRE))
			reclaim(p);
		return POL_RELOAD_BUILDING;
	}
	b->started = false;
	return reload_finish(p, err, errlen);
}

const struct pol_reload_cost *pol_reload_cost(const struct pol *p) { return &p->cost; }

int pol_reload(struct pol *p, const char *path, char *err, size_t errlen)
{
	int rc = pol_reload_start(p, path, err, errlen);

	if (rc != G_OK)
		return rc;
	worker_idle(p);
	p->build.started = false;
	return reload_finish(p, err, errlen);
}

/* A build still running (pol_close): wait for it and throw its state away; the worker
 * is stopped, so what it would have closed is closed here. */
static void build_abandon(struct pol *p)
{
	worker_idle(p);
	worker_stop(p);
	p->saving = false;         /* the build is done, so its save() returned */
	state_close(p, &p->old);
	if (!p->build.started)
		return;
	p->build.started = false;
	state_close(p, &p->build.ns);
	build_free(&p->build);
}

/* Two batches of synthetic tasks through state s on the scratch arrays: G_OK if every
 * decision was valid and every task decided, else G_ERR naming what went wrong. Counts
 * nothing in p->stats and leaves the live arrays alone. */
static int selftest_state(struct pol *p, struct pol_state *s, const char *path, char *err,
			  size_t errlen)
{
	static const char *const comms[] = { "bash", "kworker/0:1", "firefox", "Web Content",
					     "gcc", "cc1", "stress-ng", "Xorg" };
	int n = p->env.batch_max < 64 ? p->env.batch_max : 64;
	struct pol_stats st = { 0 };
	char first_err[POL_ERR_MAX] = "", msg[POL_ERR_MAX];
	uint64_t now = g_now_ns();

	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < n; i++) {
			struct queued_task_ctx *t = &p->scratch.tasks[i];
			static const uint64_t weights[] = { 1, 3, 15, 36, 100, 100, 100, 335,
							    1024, 2501, 7000, 10000 };
			memset(t, 0, sizeof(*t));
			t->pid = 1000 + i;
			t->tgid = 1000 + (i / 4) * 4;      /* groups of 4 threads */
			t->cpu = i % p->env.nr_cpus;
			t->nr_cpus_allowed = (i % 5 == 0) ? 1 : p->env.nr_cpus;
			t->flags = (uint64_t)(i % 3);
			t->weight = weights[i % (sizeof(weights) / sizeof(weights[0]))];
			t->exec_runtime = (uint64_t)(i % 7) * 1500000ull;
			t->stop_ts = now - (uint64_t)i * 100000ull;
			t->start_ts = t->stop_ts - t->exec_runtime - 1000;
			t->vtime = (i % 2) ? 0 : now / 1000 + (uint64_t)i * 12345ull;
			t->enq_cnt = (uint64_t)(round * 1000 + i + 1);
			snprintf(t->comm, sizeof(t->comm), "%s", comms[i % 8]);
		}
		uint64_t errs = st.errors;
		msg[0] = '\0';
		schedule_on(p, s, s->test_ref, &p->scratch, &p->tvs, n, &st, false, msg, sizeof(msg));
		if (st.errors > errs && !first_err[0])
			snprintf(first_err, sizeof(first_err), "%s", msg);
	}
	if (st.errors) {
		set_err(err, errlen, "%s: self-test: schedule() raised %llu error(s): %s", path,
			(unsigned long long)st.errors, first_err);
		return G_ERR;
	}
	if (st.bad_decisions || st.fallbacks) {
		set_err(err, errlen, "%s: self-test: over 2 batches of %d tasks the policy made %llu "
			"invalid decision(s) and left %llu task(s) undecided%s%s", path, n,
			(unsigned long long)st.bad_decisions, (unsigned long long)st.fallbacks,
			st.bad_decisions ? "; first rejected: " : "", st.bad_decisions ? p->tvs.last_bad : "");
		return G_ERR;
	}
	return G_OK;
}

int pol_selftest(struct pol *p, char *err, size_t errlen)
{
	struct pol_state t;
	int rc;

	/* On a scratch state of the same file, not the live one: the synthetic tasks would
	 * stay in the live state's tables (a real task with one of their pids would inherit
	 * their history). */
	rc = state_open(p, &t, p->path, p->lib_dir, err, errlen);
	if (rc != G_OK)
		return rc;
	rc = selftest_state(p, &t, p->path, err, errlen);
	state_close(p, &t);
	return rc;
}
