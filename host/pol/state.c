/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pol/state.c - one LuaJIT state running one policy file: building it (libraries, the FFI
 * layout check, the policy, init, the batch closures of BOOT_LUA), closing it, and every
 * call into it: a batch (pol_state_schedule), the strategies, save() and restore().
 *
 * Every call into Lua goes through pol_pcall(): a traceback message handler kept in the
 * registry, the watchdog armed around the call, the stack restored on every path.
 *
 * Ownership: a struct pol_state is its owner's (p->st, a reload's build, a self-test's
 * scratch state); pol_state_open() fills it, pol_state_close() frees it (idempotent).
 */
#include <assert.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>

#include "common.h"
#include "paths.h"
#include "pol_int.h"
#include "cdef_lua.h"

/* The library directory for `policy_path`: the pol_env's lib_dir when one was given, else
 * path_lib_dir() (paths.h). */
void pol_pick_lib_dir(const struct pol *p, const char *policy_path, char *out, size_t len)
{
	if (p->lib_dir_given) {
		if (out != p->lib_dir)
			snprintf(out, len, "%s", p->lib_dir);
		return;
	}
	path_lib_dir(policy_path, out, len);
}

/* ---------------------------------------------------------------------------------- */
/* the one pcall wrapper                                                              */

/* Call the function below `nargs` arguments on L's stack, with the traceback handler and
 * the watchdog armed. On success the function and arguments are replaced by `nres`
 * results; on error they are removed, the message (with traceback) is copied to errbuf
 * if given, and G_ERR is returned. Either way nothing else on the stack changes. */
/* The label of the hot-path call; compared by address to tell it from the others. */
const char pol_call_schedule[] = "schedule()";

int pol_pcall(struct pol *p, struct pol_state *s, int nargs, int nres, const char *what,
	      char *errbuf, size_t errlen)
{
	lua_State *L = s->L;
	int fidx = lua_gettop(L) - nargs;                    /* stack: ... f args */

	lua_rawgeti(L, LUA_REGISTRYINDEX, s->tb_ref);        /* stack: ... f args tb */
	lua_insert(L, fidx);                                  /* stack: ... tb f args */

	/* Hot: schedule() of a warmed-up state; its first calls have the slow limits. */
	pol_wd_enter(p, L, what, what == pol_call_schedule && ++s->calls > POL_WARM_CALLS);
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

void pol_state_close(struct pol *p, struct pol_state *s)
{
	if (s->L) {
		lua_close(s->L);
		s->L = NULL;
	}
	free(s->heap);
	s->heap = NULL;
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

	lua_pushcfunction(L, pol_traceback);              /* stack: tb */
	s->tb_ref = luaL_ref(L, LUA_REGISTRYINDEX);           /* stack: (empty) */
	lua_pushlightuserdata(L, p);                          /* stack: p */
	lua_setfield(L, LUA_REGISTRYINDEX, POL_REG_KEY);      /* stack: (empty) */

	/* package.path (library, policy dir, then the absolute system entries), package.cpath
	 * (absolute entries only) and package.preload["gthulhu.cdef"] */
	path_dir_of(path, dir, sizeof(dir));
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
int pol_state_open(struct pol *p, struct pol_state *s, const char *path, const char *lib,
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
		pol_state_close(p, s);
		return G_ERR_NOMEM;
	}
	s->L = L;
	lua_atpanic(L, on_panic);
	s->heap->f = lua_getallocf(L, &s->heap->ud);
	s->heap->used = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
	s->heap->max = p->env.lua_heap_max;
	s->heap->L = L;
	lua_setallocf(L, pol_capped_alloc, s->heap);

	int rc = lua_cpcall(L, state_build, &a);
	if (rc != 0) {
		const char *msg = lua_tostring(L, -1);
		set_err(err, errlen, "%s: building the Lua state failed: %s%s", path,
			rc == LUA_ERRMEM ? "not enough memory" : msg ? msg : "unknown error",
			s->heap->hit ? " (scheduler.lua_heap_max_mb is too small)" : "");
		pol_state_close(p, s);
		return rc == LUA_ERRMEM ? G_ERR_NOMEM : G_ERR;
	}
	if (a.rc != G_OK) {
		if (s->heap->hit && !strstr(err, "memory"))
			set_err(err + strlen(err), errlen - strlen(err),
				" (out of memory: scheduler.lua_heap_max_mb is too small)");
		pol_state_close(p, s);
		return a.rc;
	}
	assert(lua_gettop(L) == 0);
	return G_OK;
}

/* ---------------------------------------------------------------------------------- */
/* calls into a state: a batch, the strategies, save(), restore()                      */

/* One batch of n tasks in arrays a through closure `ref` of state s; counts into *st and,
 * when `live`, logs errors and checks the heap (the running policy); a self-test keeps its
 * messages in errbuf. Leaves one valid decision per task in a->out (none for tasks BPF
 * placed itself) and returns their count. */
int pol_state_schedule(struct pol *p, struct pol_state *s, int ref, struct pol_arrays *a,
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
	if (pol_pcall(p, s, 1, 1, pol_call_schedule, errbuf, errlen)) {
		st->errors++;                                /* stack: (empty) */
		if (live)
			pol_note_error(p, errbuf);
	} else if (lua_type(L, -1) != LUA_TNUMBER) {          /* stack: m */
		snprintf(errbuf, errlen, "%.3000s: schedule() returned a %s, not the number of "
			 "decisions", p->path, luaL_typename(L, -1));
		lua_pop(L, 1);                               /* stack: (empty) */
		st->errors++;
		if (live)
			pol_note_error(p, errbuf);
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
		pol_heap_check(p);
	return pol_validate(p, vs, a->out, n, m, st);
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
int pol_send_strategies(struct pol *p, struct pol_state *s, const struct strat_entry *e, int n,
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

/* P.save() of state s, serialized into a malloc'd *buf (NULL: no save). Runs on whichever
 * thread owns s (the scheduling thread for pol_save, the worker for a reload), under the
 * watchdog of that thread's slot. */
int pol_save_state(struct pol *p, struct pol_state *s, const char *path, char **buf,
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

int pol_restore_state(struct pol *p, struct pol_state *s, const char *path, const char *buf,
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
