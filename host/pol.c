/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pol.c - the policy bridge: one LuaJIT state running one policy file (see pol.h).
 *
 * Hot path: pol_schedule() = lua_rawgeti(closure) + lua_pushinteger(n) + one lua_pcall
 * through pol_pcall(), then a validation pass in C over preallocated arrays. The closure
 * was built once at load by BOOT_LUA, holding the batch arrays as FFI pointers in upvalues.
 *
 * Every call into Lua goes through pol_pcall(): a traceback message handler kept in the
 * registry, the watchdog armed around the call, the stack restored on every path.
 *
 * Watchdog: a thread per pol watches `call_start`. Past the soft limit it installs a count
 * hook that raises an error (works while the policy runs interpreted code); past the hard
 * limit (stuck in a compiled trace, which ignores hooks) it ends the process with
 * EXIT_POLICY, so the BPF link goes away and the kernel's scheduler takes over.
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
#include <sys/stat.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>

#include "common.h"
#include "pol.h"
#include "cdef_lua.h"

#ifndef GTHULHU_DATADIR
#define GTHULHU_DATADIR "/usr/local/share/gthulhu-lua"
#endif

#define POL_SOFT_MS_DEFAULT 200u
#define POL_SLOW_FACTOR 25u     /* limits x25 for load, init, save/restore (not the hot path) */
#define POL_HARD_MS_DEFAULT 3000u
#define POL_REG_KEY "gthulhu.pol"   /* registry: lightuserdata of the struct pol */
#define POL_ERR_MAX 4096

/* One loaded policy state; a reload builds a second one and swaps. */
struct pol_state {
	lua_State *L;
	int tb_ref;      /* traceback message handler */
	int g_ref;       /* the gthulhu.sched module table */
	int P_ref;       /* the policy table */
	int sched_ref;   /* closure: function(n) return P.schedule(tasks, n, out) end */
};

struct pol_slot {        /* open-addressing hash: pid -> task index, valid if gen matches */
	int32_t pid;
	int32_t idx;
	uint32_t gen;
};

struct pol {
	char path[PATH_MAX];
	char lib_dir[PATH_MAX];
	bool lib_dir_given;
	struct pol_env env;

	struct queued_task_ctx *tasks;
	struct dispatched_task_ctx *out;
	size_t tasks_bytes, out_bytes;

	struct pol_state st;

	/* validation scratch, sized once from batch_max */
	struct pol_slot *slots;
	uint32_t slot_mask;
	uint32_t *decided;      /* per task index: == gen when decided this batch */
	uint32_t gen;

	struct strat_entry *strat;   /* last strategy list, re-sent on reload */
	int nr_strat;

	struct pol_stats stats;
	char last_error[POL_ERR_MAX];
	uint64_t err_log_ns;         /* when an error was last printed */
	uint64_t err_suppressed;     /* errors not printed since then */

	/* watchdog (fields shared with the thread are accessed with __atomic builtins) */
	pthread_t wd_thread;
	bool wd_inited, wd_started;
	pthread_mutex_t wd_lock;     /* held by the thread around lua_sethook, by us around lua_close */
	pthread_cond_t wd_cond;
	bool wd_stop;
	uint64_t call_start;         /* ns of the running call's start, 0 = no call */
	lua_State *call_L;
	const char *call_what;
	int hooked;
	unsigned soft_ms, hard_ms;
	uint32_t last_bad_gen;       /* batch whose first rejected decision is in last_bad */
	char last_bad[160];
	bool call_hot;               /* the call under watch is schedule() (the hot path) */
};

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

/* Where gthulhu/sched.lua comes from, first match wins: $GTHULHU_LIB; <policy dir>/lib
 * (the repository's policies/); <executable dir>/../policies/lib (build/gthulhu-lua run
 * on a policy kept anywhere else); the installed GTHULHU_DATADIR/policies/lib. */
static void pick_lib_dir(struct pol *p, const char *policy_path)
{
	char dir[PATH_MAX], exe[PATH_MAX], probe[PATH_MAX + 64];
	const char *env = getenv("GTHULHU_LIB");
	ssize_t n;

	if (p->lib_dir_given)
		return;
	if (env && env[0]) {
		snprintf(p->lib_dir, sizeof(p->lib_dir), "%s", env);
		return;
	}
	dir_of(policy_path, dir, sizeof(dir));
	snprintf(probe, sizeof(probe), "%s/lib/gthulhu/sched.lua", dir);
	if (file_exists(probe)) {
		snprintf(p->lib_dir, sizeof(p->lib_dir), "%.4000s/lib", dir);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		dir_of(exe, dir, sizeof(dir));
		snprintf(probe, sizeof(probe), "%s/../policies/lib/gthulhu/sched.lua", dir);
		if (file_exists(probe)) {
			snprintf(p->lib_dir, sizeof(p->lib_dir), "%.4000s/../policies/lib", dir);
			return;
		}
	}
	snprintf(p->lib_dir, sizeof(p->lib_dir), "%s", GTHULHU_DATADIR "/policies/lib");
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
/* watchdog                                                                           */

/* Runs on the policy's thread: raise if the running call is really over the soft limit
 * (the hook may be left over from a call that already ended; then just remove it). */
static void runaway_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_getfield(L, LUA_REGISTRYINDEX, POL_REG_KEY);      /* stack: ... p */
	struct pol *p = lua_touserdata(L, -1);
	lua_pop(L, 1);                                         /* stack: ... */
	lua_sethook(L, NULL, 0, 0);
	if (!p)
		return;
	uint64_t start = __atomic_load_n(&p->call_start, __ATOMIC_ACQUIRE);
	unsigned soft = __atomic_load_n(&p->soft_ms, __ATOMIC_RELAXED);
	if (start == 0 || g_now_ns() - start < (uint64_t)soft * 1000000ull)
		return;
	const char *what = __atomic_load_n(&p->call_what, __ATOMIC_RELAXED);
	luaL_error(L, "policy %s exceeded %u ms", what ? what : "call", soft);
}

static void *watchdog_main(void *arg)
{
	struct pol *p = arg;

	pthread_mutex_lock(&p->wd_lock);
	while (!p->wd_stop) {
		unsigned soft = __atomic_load_n(&p->soft_ms, __ATOMIC_RELAXED);
		unsigned hard = __atomic_load_n(&p->hard_ms, __ATOMIC_RELAXED);
		unsigned tick = soft / 4;
		if (tick < 1)
			tick = 1;
		if (tick > 50)
			tick = 50;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)tick * 1000000L;
		while (ts.tv_nsec >= 1000000000L) {
			ts.tv_nsec -= 1000000000L;
			ts.tv_sec++;
		}
		pthread_cond_timedwait(&p->wd_cond, &p->wd_lock, &ts);
		if (p->wd_stop)
			break;

		uint64_t start = __atomic_load_n(&p->call_start, __ATOMIC_ACQUIRE);
		if (start == 0)
			continue;
		uint64_t ran = g_now_ns() - start;
		/* Loading, init, save/restore run once, off the hot path, maybe on a slow
		 * (emulated) machine: they get POL_SLOW_FACTOR times the limits. */
		if (!__atomic_load_n(&p->call_hot, __ATOMIC_RELAXED)) {
			soft *= POL_SLOW_FACTOR;
			hard *= POL_SLOW_FACTOR;
		}
		if (ran >= (uint64_t)hard * 1000000ull) {
			const char *what = __atomic_load_n(&p->call_what, __ATOMIC_RELAXED);
			g_err("policy %s: %s has run for %u ms and does not stop (stuck in compiled "
			      "code, which cannot be interrupted); exiting so the kernel's scheduler "
			      "takes over", p->path, what ? what : "a call",
			      (unsigned)(ran / 1000000ull));
			_exit(EXIT_POLICY);
		}
		if (ran >= (uint64_t)soft * 1000000ull && !__atomic_load_n(&p->hooked, __ATOMIC_ACQUIRE)) {
			lua_State *L = __atomic_load_n(&p->call_L, __ATOMIC_ACQUIRE);
			if (L) {
				__atomic_store_n(&p->hooked, 1, __ATOMIC_RELEASE);
				/* lua_sethook may be called asynchronously (it is meant for signal
				 * handlers); wd_lock keeps L from being closed meanwhile. */
				lua_sethook(L, runaway_hook, LUA_MASKCOUNT, 1);
			}
		}
	}
	pthread_mutex_unlock(&p->wd_lock);
	return NULL;
}

static int watchdog_start(struct pol *p)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&p->wd_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->wd_cond, &ca);
	pthread_condattr_destroy(&ca);
	p->wd_inited = true;
	/* A small stack: the host mlockall()s, which would fault in and pin the default 8 MiB
	 * (and a dying host would spend time unpinning it before its BPF link detaches). */
	pthread_attr_t ta;
	int rc;

	pthread_attr_init(&ta);
	pthread_attr_setstacksize(&ta, 256 * 1024);
	rc = pthread_create(&p->wd_thread, &ta, watchdog_main, p);
	pthread_attr_destroy(&ta);
	if (rc != 0)
		return G_ERR;
	p->wd_started = true;
	return G_OK;
}

static void watchdog_stop(struct pol *p)
{
	if (!p->wd_started)
		return;
	pthread_mutex_lock(&p->wd_lock);
	p->wd_stop = true;
	pthread_cond_signal(&p->wd_cond);
	pthread_mutex_unlock(&p->wd_lock);
	pthread_join(p->wd_thread, NULL);
	p->wd_started = false;
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

	__atomic_store_n(&p->call_what, what, __ATOMIC_RELAXED);
	__atomic_store_n(&p->call_hot, what == call_schedule, __ATOMIC_RELAXED);
	__atomic_store_n(&p->call_L, L, __ATOMIC_RELEASE);
	__atomic_store_n(&p->call_start, g_now_ns(), __ATOMIC_RELEASE);
	int rc = lua_pcall(L, nargs, nres, fidx);            /* stack: ... tb res | ... tb err */
	__atomic_store_n(&p->call_start, 0, __ATOMIC_RELEASE);
	if (__atomic_exchange_n(&p->hooked, 0, __ATOMIC_ACQ_REL))
		lua_sethook(L, NULL, 0, 0);

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

/* Called with (P, g, ctx, tasks, out): sets up the library and the policy, then returns
 * the per-batch closure. The arrays are cast to FFI pointers here, once. */
static const char BOOT_LUA[] =
	"local P, g, ctx, tasks_p, out_p = ...\n"
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
	"local tasks = ffi.cast('struct queued_task_ctx *', tasks_p)\n"
	"local out = ffi.cast('struct dispatched_task_ctx *', out_p)\n"
	/* A quiet machine sends long runs of 1-task batches, and LuaJIT builds its traces
	 * around that: when load comes, schedule()'s loop then runs through side traces and
	 * partly interpreted, up to ~8x slower and allocating per task (tests/bench,
	 * gthulhu-b1). So when big batches follow a long quiet spell, drop the traces once and
	 * let them be rebuilt for the new shape (a few ms; after 1000 small batches in a
	 * row, at most once every 10 s).
	 * Not a tail call either: that form fared worse still. */
	"local small, flushed_at, jit_flush = 0, -1e300, jit.flush\n"
	"return function(n)\n"
	"  if n < 16 then\n"
	"    small = small + 1\n"
	"  else\n"
	"    if small >= 1000 then\n"
	"      local t = g.now()\n"
	"      if t - flushed_at > 10e9 then flushed_at = t; jit_flush() end\n"
	"    end\n"
	"    small = 0\n"
	"  end\n"
	"  local m = P.schedule(tasks, n, out)\n"
	"  return m\n"
	"end\n";

/* Called with (P, g): returns the serialized P.save() or nil if there is no save. */
static const char SAVE_LUA[] =
	"local P, g = ...\n"
	"if type(P.save) ~= 'function' then return nil end\n"
	"return g.serialize(P.save())\n";

/* Called with (P, g, s): hands the deserialized state to P.restore, if it has one. */
static const char RESTORE_LUA[] =
	"local P, g, s = ...\n"
	"if type(P.restore) == 'function' then P.restore(g.deserialize(s)) end\n";

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
	if (!s->L)
		return;
	if (p->wd_started)
		pthread_mutex_lock(&p->wd_lock);
	lua_close(s->L);
	s->L = NULL;
	if (p->wd_started)
		pthread_mutex_unlock(&p->wd_lock);
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
static int state_open(struct pol *p, struct pol_state *s, const char *path, char *err, size_t errlen)
{
	char buf[3 * PATH_MAX + 64], dir[PATH_MAX];
	lua_State *L;

	memset(s, 0, sizeof(*s));
	s->tb_ref = s->g_ref = s->P_ref = s->sched_ref = LUA_NOREF;
	L = luaL_newstate();
	if (!L) {
		set_err(err, errlen, "%s: cannot create a Lua state (out of memory)", path);
		return G_ERR_NOMEM;
	}
	s->L = L;
	luaL_openlibs(L);                                     /* stack: (empty) */
	luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_ON);

	lua_pushcfunction(L, traceback_handler);              /* stack: tb */
	s->tb_ref = luaL_ref(L, LUA_REGISTRYINDEX);           /* stack: (empty) */
	lua_pushlightuserdata(L, p);                          /* stack: p */
	lua_setfield(L, LUA_REGISTRYINDEX, POL_REG_KEY);      /* stack: (empty) */

	/* package.path and package.preload["gthulhu.cdef"] */
	dir_of(path, dir, sizeof(dir));
	lua_getglobal(L, "package");                          /* stack: package */
	lua_getfield(L, -1, "path");                          /* stack: package oldpath */
	snprintf(buf, sizeof(buf), "%s/?.lua;%s/?/init.lua;%s/?.lua;", p->lib_dir, p->lib_dir, dir);
	lua_pushstring(L, buf);                               /* stack: package oldpath prefix */
	lua_insert(L, -2);                                    /* stack: package prefix oldpath */
	lua_concat(L, 2);                                     /* stack: package newpath */
	lua_setfield(L, -2, "path");                          /* stack: package */
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
			path, p->lib_dir, buf);
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
	lua_pushlightuserdata(L, p->tasks);                   /* stack: boot P g ctx tasks */
	lua_pushlightuserdata(L, p->out);                     /* stack: boot P g ctx tasks out */
	if (pol_pcall(p, s, 5, 1, "init()", buf, sizeof(buf))) {
		set_err(err, errlen, "%s", buf);
		goto fail;                                    /* stack: (empty) */
	}
	if (!lua_isfunction(L, -1)) {                         /* stack: closure */
		lua_pop(L, 1);
		set_err(err, errlen, "internal: bootstrap returned no closure");
		goto fail;
	}
	s->sched_ref = luaL_ref(L, LUA_REGISTRYINDEX);        /* stack: (empty) */
	assert(lua_gettop(L) == 0);
	return G_OK;

fail:
	assert(lua_gettop(L) == 0);
	state_close(p, s);
	return G_ERR;
}

/* ---------------------------------------------------------------------------------- */
/* public API                                                                         */

static void *alloc_pages(size_t bytes, size_t *rounded)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	size_t n = (bytes + page - 1) / page * page;
	void *m = NULL;

	if (n == 0)
		n = page;
	if (posix_memalign(&m, page, n) != 0)
		return NULL;
	memset(m, 0, n);   /* pre-fault: no page faults on the hot path */
	*rounded = n;
	return m;
}

/* Touch every page for writing (volatile: a compiler may drop a memset of calloc'ed
 * memory as a dead store). */
static void prefault(void *mem, size_t len)
{
	volatile char *c = mem;

	for (size_t off = 0; off < len; off += 4096)
		c[off] = 0;
}

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
	snprintf(p->path, sizeof(p->path), "%s", path);
	p->env = *env;
	if (env->lib_dir) {
		snprintf(p->lib_dir, sizeof(p->lib_dir), "%s", env->lib_dir);
		p->lib_dir_given = true;
	}
	p->env.lib_dir = p->lib_dir;
	p->soft_ms = POL_SOFT_MS_DEFAULT;
	p->hard_ms = POL_HARD_MS_DEFAULT;
	pick_lib_dir(p, path);

	p->tasks = alloc_pages(sizeof(*p->tasks) * (size_t)env->batch_max, &p->tasks_bytes);
	p->out = alloc_pages(sizeof(*p->out) * (size_t)env->batch_max, &p->out_bytes);
	uint32_t nslots = 1;
	while (nslots < 2u * (uint32_t)env->batch_max)
		nslots <<= 1;
	p->slots = calloc(nslots, sizeof(*p->slots));
	p->slot_mask = nslots - 1;
	p->decided = calloc((size_t)env->batch_max, sizeof(*p->decided));
	if (!p->tasks || !p->out || !p->slots || !p->decided) {
		set_err(err, errlen, "%s: out of memory for the batch arrays", path);
		pol_close(p);
		return G_ERR_NOMEM;
	}
	/* calloc may hand back untouched zero pages: write them now, so the validation
	 * scratch never page-faults on the hot path (mlockall covers it once attached). */
	prefault(p->slots, nslots * sizeof(*p->slots));
	prefault(p->decided, (size_t)env->batch_max * sizeof(*p->decided));
	if (watchdog_start(p) != G_OK) {
		set_err(err, errlen, "%s: cannot start the watchdog thread: %s", path, strerror(errno));
		pol_close(p);
		return G_ERR;
	}
	rc = state_open(p, &p->st, p->path, err, errlen);
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
	watchdog_stop(p);
	state_close(p, &p->st);
	if (p->wd_inited) {
		pthread_cond_destroy(&p->wd_cond);
		pthread_mutex_destroy(&p->wd_lock);
	}
	free(p->tasks);
	free(p->out);
	free(p->slots);
	free(p->decided);
	free(p->strat);
	free(p);
}

struct queued_task_ctx *pol_tasks(struct pol *p) { return p->tasks; }
struct dispatched_task_ctx *pol_out(struct pol *p) { return p->out; }
const struct pol_stats *pol_stats(const struct pol *p) { return &p->stats; }
const char *pol_path(const struct pol *p) { return p->path; }
const char *pol_last_error(const struct pol *p) { return p->last_error; }

void pol_set_limits(struct pol *p, unsigned soft_ms, unsigned hard_ms)
{
	__atomic_store_n(&p->soft_ms, soft_ms ? soft_ms : POL_SOFT_MS_DEFAULT, __ATOMIC_RELAXED);
	__atomic_store_n(&p->hard_ms, hard_ms ? hard_ms : POL_HARD_MS_DEFAULT, __ATOMIC_RELAXED);
}

int pol_lua_top(const struct pol *p)
{
	return p->st.L ? lua_gettop(p->st.L) : -1;
}

static inline uint32_t pid_hash(int32_t pid)
{
	return (uint32_t)pid * 0x9e3779b1u;
}

/* Validate out[0..m) against tasks[0..n), compact the valid ones to the front and add the
 * built-in decision for every task left undecided. */
static void validate(struct pol *p, int n, int m)
{
	struct queued_task_ctx *t = p->tasks;
	struct dispatched_task_ctx *o = p->out;
	const int nr_cpus = p->env.nr_cpus;
	uint32_t gen, mask = p->slot_mask;
	int k = 0;

	if (++p->gen == 0) {   /* wrapped: stamps from 2^32 batches ago could match again */
		memset(p->slots, 0, (size_t)(mask + 1) * sizeof(*p->slots));
		memset(p->decided, 0, (size_t)p->env.batch_max * sizeof(*p->decided));
		p->gen = 1;
	}
	gen = p->gen;

	for (int i = 0; i < n; i++) {   /* pid -> index; a later duplicate pid takes over */
		uint32_t h = pid_hash(t[i].pid) & mask;
		while (p->slots[h].gen == gen && p->slots[h].pid != t[i].pid)
			h = (h + 1) & mask;
		p->slots[h].gen = gen;
		p->slots[h].pid = t[i].pid;
		p->slots[h].idx = i;
	}

	for (int j = 0; j < m; j++) {
		int32_t pid = o[j].pid;
		int32_t cpu = o[j].cpu;
		const char *why;
		if (pid <= 0) {
			why = "pid is not a task's (zero or negative)";
			goto bad;
		}
		uint32_t h = pid_hash(pid) & mask;
		while (p->slots[h].gen == gen && p->slots[h].pid != pid)
			h = (h + 1) & mask;
		if (p->slots[h].gen != gen) {
			why = "pid is not a task of this batch";
			goto bad;
		}
		int idx = p->slots[h].idx;
		if (p->decided[idx] == gen) {
			why = "task decided twice";
			goto bad;
		}
		if (cpu != RL_CPU_ANY && (cpu < 0 || cpu >= nr_cpus)) {
			why = "cpu is neither a CPU id below nr_cpus nor CPU_ANY";
			goto bad;
		}
		p->decided[idx] = gen;
		o[j].enq_cnt = t[idx].enq_cnt;
		if (k != j)
			o[k] = o[j];
		k++;
		continue;
bad:
		p->stats.bad_decisions++;
		if (p->last_bad_gen != gen) {   /* the first rejection of a batch, for messages */
			p->last_bad_gen = gen;
			snprintf(p->last_bad, sizeof(p->last_bad), "out[%d] pid=%d cpu=%d: %s", j,
				 (int)pid, (int)cpu, why);
		}
	}

	for (int i = 0; i < n; i++) {
		if (p->decided[i] == gen)
			continue;
		struct dispatched_task_ctx *d = &o[k++];
		d->pid = t[i].pid;
		d->cpu = RL_CPU_ANY;
		d->flags = 0;
		d->slice_ns = 0;
		d->vtime = t[i].vtime ? t[i].vtime : 1;
		d->enq_cnt = t[i].enq_cnt;
		p->stats.fallbacks++;
	}
	assert(k == n);
}

int pol_schedule(struct pol *p, int n)
{
	lua_State *L = p->st.L;
	int m = 0;

	if (n <= 0)
		return 0;
	if (n > p->env.batch_max)
		n = p->env.batch_max;
	p->stats.batches++;
	p->stats.tasks += (uint64_t)n;

	lua_rawgeti(L, LUA_REGISTRYINDEX, p->st.sched_ref);  /* stack: closure */
	lua_pushinteger(L, n);                               /* stack: closure n */
	if (pol_pcall(p, &p->st, 1, 1, call_schedule, p->last_error, sizeof(p->last_error))) {
		p->stats.errors++;                           /* stack: (empty) */
		note_error(p, p->last_error);
	} else if (lua_type(L, -1) != LUA_TNUMBER) {          /* stack: m */
		char msg[PATH_MAX + 128];
		snprintf(msg, sizeof(msg), "%s: schedule() returned a %s, not the number of "
			 "decisions", p->path, luaL_typename(L, -1));
		lua_pop(L, 1);                               /* stack: (empty) */
		p->stats.errors++;
		note_error(p, msg);
	} else {
		lua_Number d = lua_tonumber(L, -1);
		lua_pop(L, 1);                               /* stack: (empty) */
		if (!(d > 0))          /* negative or NaN */
			m = 0;
		else if (d > n) {
			double cap = d > p->env.batch_max ? p->env.batch_max : d;
			p->stats.bad_decisions += (uint64_t)cap - (uint64_t)n;
			snprintf(p->last_bad, sizeof(p->last_bad), "schedule() returned %.0f for %d "
				 "tasks: the decisions past %d were dropped", cap, n, n);
			p->last_bad_gen = p->gen + 1;  /* validate() below keeps its own first */
			m = n;
		} else
			m = (int)d;
	}
	assert(lua_gettop(L) == 0);
	validate(p, n, m);
	return n;
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

/* g.set_strategies(list) then P.on_strategies(list) in state s. */
static int send_strategies(struct pol *p, struct pol_state *s, const struct strat_entry *e, int n,
			   char *err, size_t errlen)
{
	lua_State *L = s->L;
	int rc = G_OK;

	push_strategies(L, e, n);                             /* stack: list */
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->g_ref);          /* stack: list g */
	lua_getfield(L, -1, "set_strategies");                /* stack: list g fn */
	lua_remove(L, -2);                                    /* stack: list fn */
	lua_pushvalue(L, -2);                                 /* stack: list fn list */
	if (pol_pcall(p, s, 1, 0, "g.set_strategies()", err, errlen)) {
		rc = G_ERR;                                   /* stack: list */
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
	if (pol_pcall(p, s, 1, 0, "on_strategies()", err, errlen))
		rc = G_ERR;                                   /* stack: list */
out:
	lua_pop(L, 1);                                        /* stack: (empty) */
	assert(lua_gettop(L) == 0);
	return rc;
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
	}
	if (send_strategies(p, &p->st, e, n, p->last_error, sizeof(p->last_error)) != G_OK) {
		p->stats.errors++;
		note_error(p, p->last_error);
		return G_ERR;
	}
	return G_OK;
}

int pol_reload(struct pol *p, const char *path, char *err, size_t errlen)
{
	struct pol_state ns;
	char newpath[PATH_MAX], saved_lib[PATH_MAX], buf[POL_ERR_MAX];
	int rc;

	snprintf(newpath, sizeof(newpath), "%s", path ? path : p->path);
	snprintf(saved_lib, sizeof(saved_lib), "%s", p->lib_dir);
	pick_lib_dir(p, newpath);

	rc = state_open(p, &ns, newpath, err, errlen);
	if (rc != G_OK)
		goto fail;

	/* old P.save() -> string -> new P.restore() */
	lua_State *OL = p->st.L, *NL = ns.L;
	if (push_chunk(OL, SAVE_LUA, sizeof(SAVE_LUA) - 1, "=gthulhu/save", err, errlen))
		goto fail_close;                              /* old stack: save */
	lua_rawgeti(OL, LUA_REGISTRYINDEX, p->st.P_ref);      /* old stack: save P */
	lua_rawgeti(OL, LUA_REGISTRYINDEX, p->st.g_ref);      /* old stack: save P g */
	if (pol_pcall(p, &p->st, 2, 1, "save()", buf, sizeof(buf))) {
		set_err(err, errlen, "%s: save() of the running policy failed: %s", p->path, buf);
		goto fail_close;                              /* old stack: (empty) */
	}                                                     /* old stack: s|nil */
	if (lua_type(OL, -1) == LUA_TSTRING) {
		size_t len;
		const char *s = lua_tolstring(OL, -1, &len);
		if (push_chunk(NL, RESTORE_LUA, sizeof(RESTORE_LUA) - 1, "=gthulhu/restore",
			       err, errlen)) {
			lua_pop(OL, 1);
			goto fail_close;
		}                                             /* new stack: restore */
		lua_rawgeti(NL, LUA_REGISTRYINDEX, ns.P_ref); /* new stack: restore P */
		lua_rawgeti(NL, LUA_REGISTRYINDEX, ns.g_ref); /* new stack: restore P g */
		lua_pushlstring(NL, s, len);                  /* new stack: restore P g s */
		lua_pop(OL, 1);                               /* old stack: (empty) */
		if (pol_pcall(p, &ns, 3, 0, "restore()", buf, sizeof(buf))) {
			set_err(err, errlen, "%s: restore() failed: %s", newpath, buf);
			goto fail_close;                      /* new stack: (empty) */
		}
	} else {
		lua_pop(OL, 1);                               /* old stack: (empty) */
	}

	if (send_strategies(p, &ns, p->strat, p->nr_strat, buf, sizeof(buf)) != G_OK) {
		set_err(err, errlen, "%s: on_strategies() failed: %s", newpath, buf);
		goto fail_close;
	}

	assert(lua_gettop(OL) == 0 && lua_gettop(NL) == 0);
	state_close(p, &p->st);
	p->st = ns;
	snprintf(p->path, sizeof(p->path), "%s", newpath);
	p->stats.reloads++;
	return G_OK;

fail_close:
	state_close(p, &ns);
fail:
	snprintf(p->lib_dir, sizeof(p->lib_dir), "%s", saved_lib);
	p->stats.reload_errors++;
	return rc != G_OK ? rc : G_ERR;
}

int pol_selftest(struct pol *p, char *err, size_t errlen)
{
	static const char *const comms[] = { "bash", "kworker/0:1", "firefox", "Web Content",
					     "gcc", "cc1", "stress-ng", "Xorg" };
	int n = p->env.batch_max < 64 ? p->env.batch_max : 64;
	struct pol_stats before = p->stats;
	uint64_t now = g_now_ns();

	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < n; i++) {
			struct queued_task_ctx *t = &p->tasks[i];
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
		if (pol_schedule(p, n) != n) {
			set_err(err, errlen, "%s: self-test: schedule did not return %d decisions", p->path, n);
			return G_ERR;
		}
	}
	uint64_t errs = p->stats.errors - before.errors;
	uint64_t bad = p->stats.bad_decisions - before.bad_decisions;
	uint64_t fb = p->stats.fallbacks - before.fallbacks;
	if (errs) {
		set_err(err, errlen, "%s: self-test: schedule() raised %llu error(s): %s", p->path,
			(unsigned long long)errs, p->last_error);
		return G_ERR;
	}
	if (bad || fb) {
		set_err(err, errlen, "%s: self-test: over 2 batches of %d tasks the policy made %llu "
			"invalid decision(s) and left %llu task(s) undecided%s%s", p->path, n,
			(unsigned long long)bad, (unsigned long long)fb,
			bad ? "; first rejected: " : "", bad ? p->last_bad : "");
		return G_ERR;
	}
	return G_OK;
}
