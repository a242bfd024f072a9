/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pol/pol_int.h - what the policy bridge's files share (not an interface: pol/pol.h is).
 * bridge.c: open, close, the batch call, the strategies. state.c: building a state and
 * every call into one (the one pcall wrapper). reload.c: the reload worker and the
 * lend/reclaim protocol. selftest.c: the self-test. heap.c: the Lua heap cap. err.c: error
 * notes and the traceback. guard.c: the batch arrays. validate.c: checking the policy's
 * decisions and the built-in C decision. watchdog.c: interrupting a call that runs too
 * long. Calls go down only: bridge -> reload -> selftest -> state -> heap -> err.
 *
 * Ownership: struct pol is allocated by pol_open() (bridge.c) and owns everything below.
 *
 * Threads. The scheduling thread (the one calling pol_schedule) owns the running state
 * p->st, with one hand-off for a reload's save(). pol_reload_start() sets `saving`; from
 * then on each pol_schedule() takes p->st for its call with st_owner (CAS FREE -> SCHED,
 * back to FREE after it). The reload worker, once it runs, sets st_want and takes st_owner
 * (FREE -> WORKER) as soon as the batch in progress, if any, is over; it runs the old
 * policy's save() on p->st (watchdog slot 1), frees st_owner, stores lend_done and never
 * touches p->st again. A pol_schedule() that sees st_want, or loses the CAS, leaves p->st
 * alone and gives every task the built-in C decision (pol_validate with no policy
 * decision); so the scheduling thread never waits, and the C decisions last the save() and
 * at most one batch. While `saving`, strategies are kept and handed over at reclaim,
 * pol_save()/pol_restore() wait for lend_done. The first pol_schedule() or
 * pol_reload_poll() that sees lend_done (acquire) ends `saving` (reclaim). The state being
 * built (build.ns) is the worker's until `done`; the state a swap replaced (p->old) is the
 * worker's from the swap on, and it closes it.
 */
#ifndef GTHULHU_POL_INT_H
#define GTHULHU_POL_INT_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <lua.h>

#include "pol.h"

#define POL_SOFT_MS_DEFAULT 200u
#define POL_SLOW_FACTOR 25u     /* limits x25 for load, init, save/restore (not the hot path) */
#define POL_HARD_MS_DEFAULT 3000u
/* The first calls of a fresh state (load, reload, restart) record and compile LuaJIT
 * traces for every path the batches take: many times a warm call's cost, and on an
 * emulated or slow CPU past the soft limit (seen after a hot reload under load in the
 * TCG VM). They get the slow limits, like load and init. */
#define POL_WARM_CALLS 64u
#define POL_WORKER_NICE 10       /* the reload worker's nice above the process's (reload.c) */
#define POL_REG_KEY "gthulhu.pol"   /* registry: lightuserdata of the struct pol */
#define POL_ERR_MAX 4096
/* Sent by the watchdog to the thread running an overdue call (see watchdog.c). */
#define POL_WD_SIGNAL (SIGRTMIN + 2)

/* A state's allocator: LuaJIT's own, counted and capped (pol_env.lua_heap_max). */
struct pol_heap {
	lua_Alloc f;
	void *ud;
	lua_State *L;         /* the state (for the hook) */
	size_t used, max;     /* bytes; max 0 = no cap */
	bool hit;             /* passed the cap since the last check */
	bool hooked;          /* heap_hook armed */
	bool disabled;        /* live data stayed over the cap: the policy is not called */
};

enum { POL_ST_FREE = 0, POL_ST_SCHED = 1, POL_ST_WORKER = 2 };   /* pol.st_owner */

/* One loaded policy state; a reload builds a second one and swaps. */
struct pol_state {
	lua_State *L;
	struct pol_heap *heap;   /* owned; freed after lua_close */
	int tb_ref;      /* traceback message handler */
	int g_ref;       /* the gthulhu.sched module table */
	int P_ref;       /* the policy table */
	int sched_ref;   /* closure: function(n) return P.schedule(tasks, n, out) end */
	int test_ref;    /* the same over the scratch arrays (self-tests) */
	unsigned calls;  /* schedule() calls so far: the first POL_WARM_CALLS compile traces */
};

/* A call into Lua under the watchdog's eye: one per thread that calls (watchdog.c). */
#define POL_WD_SLOTS 2
struct pol_call {
	uint64_t start;              /* ns of the running call's start, 0 = no call */
	pthread_t thread;            /* the thread running it (signalled past soft_ms) */
	clockid_t cpuclock;          /* that thread's CPU-time clock (0: wall time) */
	uint64_t seen_start;         /* watchdog: the call it is timing (its start) */
	uint64_t seen_cpu;           /* ... timed from this CPU-clock sample */
	uint64_t last_cpu;           /* ... the sample of its previous tick */
	uint64_t fired_start;        /* the call the watchdog judged over its limit */
	unsigned fired_ms;           /* ... and that limit (slow limits included) */
	const char *what;
	int hooked;
	bool hot;                    /* the call is schedule() (the hot path) */
};

/* One set of batch arrays (guard.c). tasks is the host's writable view, tasks_ro the same
 * pages read-only (what Lua gets); out is shared. Each Lua-visible array sits between
 * PROT_NONE guards. */
struct pol_arrays {
	struct queued_task_ctx *tasks;
	const struct queued_task_ctx *tasks_ro;
	struct dispatched_task_ctx *out;
	char *tasks_rw_map, *tasks_ro_map, *out_map;
	size_t tasks_bytes, out_bytes;   /* the array pages (guards not included) */
	int guard_slot[2];
};

/* What validation trusts about task i: copied from tasks[i] before the policy runs. */
struct pol_key {
	int32_t pid;
	bool placed;            /* RL_ENQ_PLACED: the policy is told, no decision is sent */
	bool stale;             /* a later record of the same pid follows in this batch */
	uint64_t enq_cnt;
	uint64_t vtime;
};

struct pol_slot {        /* open-addressing hash: pid -> task index, valid if gen matches */
	int32_t pid;
	int32_t idx;
	uint32_t gen;
	uint32_t twin;   /* == gen: the pid also came as an earlier record (placed, or
				 * queued and superseded): a second decision is not an error */
};

/* Validation scratch, sized once from batch_max; one per thread that validates. */
struct pol_vs {
	struct pol_slot *slots;
	uint32_t slot_mask;
	uint32_t *decided;      /* per task index: == gen when decided this batch */
	struct pol_key *keys;   /* per task index: pid, enq_cnt, vtime as received */
	uint16_t *task_of;      /* per decision sent: the index of the task it decides */
	uint32_t gen;
	uint32_t last_bad_gen;  /* batch whose first rejected decision is in last_bad */
	char last_bad[160];
};

struct pol {
	char path[PATH_MAX];
	char lib_dir[PATH_MAX];
	bool lib_dir_given;
	struct pol_env env;

	/* guard.c: two sets of batch arrays. live: what the loop receives into and sends
	 * from; scratch: self-test batches (a reload's new state is tested there, so the live
	 * decisions the loop may still be sending are never touched). */
	struct pol_arrays live, scratch;

	struct pol_state st;

	/* hot reload (reload.c): the state being built on the reload worker, and the one a
	 * swap replaced, closed there */
	struct pol_build {
		bool started;            /* a build was started and not yet polled */
		int done;                /* atomic: the builder finished */
		int rc;
		bool save;               /* the worker runs save() on p->st first (st_owner) */
		struct pol_state ns;
		char path[PATH_MAX], lib[PATH_MAX];
		char err[POL_ERR_MAX];
		char *saved;             /* the old policy's save(), serialized (owned) */
		size_t saved_len;
		struct strat_entry *strat;   /* the strategies when it started (owned) */
		int nr_strat;
		uint64_t strat_gen;
		uint64_t start_ns;       /* when pol_reload_start() handed it over */
		uint64_t wait_ns, save_ns, build_ns, restore_ns;   /* (pol_reload_cost) */
	} build;
	struct pol_state old;            /* replaced by a swap, closed by the worker */
	struct pol_worker {              /* the reload worker thread (reload.c) */
		pthread_t thread;
		bool started;
		pthread_mutex_t mu;
		pthread_cond_t cv;       /* jobs queued, job done */
		bool build_req, stop;
		/* atomic, set by the scheduling thread without waking the worker (a wake-up in
		 * the swap let the worker preempt it): 1 = swapped (or refused), p->old is to be
		 * closed. The worker polls for it after a build (see worker_main). */
		int resolved;
	} worker;

	/* p->st during a reload's save() (see the header comment) */
	bool saving;                 /* scheduling thread only: start .. reclaim */
	int st_owner;                /* atomic: POL_ST_FREE / POL_ST_SCHED / POL_ST_WORKER */
	int st_want;                 /* atomic: the worker waits for p->st (no more SCHED) */
	int lend_done;               /* atomic: the worker's save() returned */
	bool strat_pending;          /* strategies came while saving: sent at reclaim */
	uint64_t lent_at;            /* the first batch given the C decisions (0: none) */
	struct pol_reload_cost cost; /* the last reload's (pol_reload_cost) */

	/* validation scratch: vs for the live batches (scheduling thread), tvs for self-tests
	 * (which may run on the reload builder thread meanwhile) */
	struct pol_vs vs, tvs;

	struct strat_entry *strat;   /* last strategy list, re-sent on reload */
	int nr_strat;
	uint64_t strat_gen;          /* bumped when the list changes */

	struct pol_stats stats;
	char last_error[POL_ERR_MAX];
	uint64_t err_log_ns;         /* when an error was last printed */
	uint64_t err_suppressed;     /* errors not printed since then */

	/* watchdog (fields shared with the thread are accessed with __atomic builtins) */
	pthread_t wd_thread;
	bool wd_inited, wd_started;
	pthread_mutex_t wd_lock;     /* with wd_cond: the watchdog's timed wait and stop */
	pthread_cond_t wd_cond;
	bool wd_stop;
	struct pol_call calls[POL_WD_SLOTS];   /* [0] scheduling thread, [1] reload builder */
	unsigned soft_ms, hard_ms;
};

/* err.c: keep `msg` as the last error and log it: the first one in full, later ones at
 * most one summary line a second. */
void pol_note_error(struct pol *p, const char *msg);
/* err.c: the message handler: error value -> "message\nstack traceback: ..." */
int pol_traceback(lua_State *L);

/* heap.c: every allocation of a state, counted and capped (see heap.c). */
void *pol_capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* heap.c: a full GC (a lua_CFunction, for lua_cpcall). */
int pol_gc_full(lua_State *L);
/* heap.c: after every call of the running state: over the cap, collect; live data still
 * over it switches the policy off until a reload. */
void pol_heap_check(struct pol *p);

/* state.c: the library directory for a policy file (the pol_env's, else paths.h's). */
void pol_pick_lib_dir(const struct pol *p, const char *policy_path, char *out, size_t len);
/* state.c: the label of the hot-path call; compared by address in pol_pcall(). */
extern const char pol_call_schedule[];
/* state.c: call the function below `nargs` arguments on s's stack with the traceback
 * handler and the watchdog armed; on error the message goes to errbuf, G_ERR. */
int pol_pcall(struct pol *p, struct pol_state *s, int nargs, int nres, const char *what,
	      char *errbuf, size_t errlen);
/* state.c: build a complete state for `path` into *s (closed again on error). */
int pol_state_open(struct pol *p, struct pol_state *s, const char *path, const char *lib,
		   char *err, size_t errlen);
void pol_state_close(struct pol *p, struct pol_state *s);
/* state.c: one batch of n tasks in arrays a through closure `ref` of state s. */
int pol_state_schedule(struct pol *p, struct pol_state *s, int ref, struct pol_arrays *a,
		       struct pol_vs *vs, int n, struct pol_stats *st, bool live, char *errbuf,
		       size_t errlen);
/* state.c: g.set_strategies(list) then P.on_strategies(list) in state s. */
int pol_send_strategies(struct pol *p, struct pol_state *s, const struct strat_entry *e, int n,
			char *err, size_t errlen);
/* state.c: P.save() of s serialized into a malloc'd *buf; P.restore() of such a buffer. */
int pol_save_state(struct pol *p, struct pol_state *s, const char *path, char **buf,
		   size_t *len, char *err, size_t errlen);
int pol_restore_state(struct pol *p, struct pol_state *s, const char *path, const char *buf,
		      size_t len, char *err, size_t errlen);

/* selftest.c: two batches of synthetic tasks through state s on the scratch arrays. */
int pol_selftest_state(struct pol *p, struct pol_state *s, const char *path, char *err,
		       size_t errlen);

/* reload.c (scheduling thread): the worker's save() returned, p->st is ours again;
 * pol_lend_wait() waits for that first. pol_build_abandon(): at pol_close(), wait for a
 * build still running, throw it away and stop the worker. */
void pol_reclaim(struct pol *p);
void pol_lend_wait(struct pol *p);
void pol_build_abandon(struct pol *p);

/* guard.c: map / unmap one set of batch arrays (see guard.c). */
int pol_arrays_open(struct pol *p, struct pol_arrays *a, char *err, size_t errlen);
void pol_arrays_close(struct pol_arrays *a);

/* validate.c: before the policy runs, copy what validation trusts (pid, enq_cnt, vtime)
 * out of tasks[0..n) and index the pids, so nothing the policy does to the task array
 * changes which tasks it may decide. */
void pol_batch_begin(struct pol *p, struct pol_vs *vs, const struct queued_task_ctx *t, int n);
/* validate.c: after it ran, check out[0..m) against that copy, compact the valid
 * decisions to the front, add the built-in C decision for every task left undecided: out[0..n) valid. */
/* Returns the number of decisions to send (tasks flagged RL_ENQ_PLACED get none);
 * vs->task_of[0..m) pairs each with its task. */
int pol_validate(struct pol *p, struct pol_vs *vs, struct dispatched_task_ctx *out, int n,
		 int m, struct pol_stats *st);

/* watchdog.c */
int pol_wd_start(struct pol *p);
void pol_wd_stop(struct pol *p);
/* Around every call into Lua (hot: the call is schedule()). */
void pol_wd_enter(struct pol *p, lua_State *L, const char *what, bool hot);
void pol_wd_leave(struct pol *p, lua_State *L);
/* The calling thread's slot: 0 (default) for the scheduling thread, 1 for the builder. */
void pol_wd_set_slot(int slot);

#endif
