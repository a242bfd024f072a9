/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pol/pol.h - the policy bridge: one LuaJIT state running one policy file.
 *
 * The batch arrays (tasks in, decisions out) are owned by struct pol, allocated and
 * pre-faulted once in pol_open(); Lua casts their addresses to FFI pointers once, at load,
 * and keeps them in upvalues, so a batch costs one lua_pcall and no copy or allocation.
 *
 * pol_schedule() always leaves exactly n valid decisions, one per task, in pol_out():
 * whatever the policy returned that passed validation (a task of this batch, not decided
 * twice, a valid CPU), and the built-in C decision (shared DSQ, the task's own vtime,
 * default slice) for every task it did not decide, on error included. So a broken policy
 * costs scheduling quality, never a stranded task.
 *
 * Ownership: pol_open() returns a struct the caller frees with pol_close() (NULL-safe).
 * pol_env is copied; topo and idle pointers must outlive the pol.
 */
#ifndef GTHULHU_POL_H
#define GTHULHU_POL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../../bpf/intf.h"
#include "strat.h"
#include "topo.h"

struct pol_env {
	int nr_cpus;
	uint64_t slice_ns_default;
	uint64_t slice_ns_min;
	uint64_t slice_ns_max;            /* longest slice a decision may carry (0 = no bound) */
	int batch_max;                    /* capacity of the batch arrays (<= MAX_BATCH) */
	const struct topo *topo;          /* NULL: every CPU its own L2/L3 */
	const volatile uint64_t *idle;    /* idle-CPU bitmap, MAX_CPUS/64 words; NULL: none */
	const char *lib_dir;              /* directory holding gthulhu/sched.lua (policies/lib) */
	size_t lua_heap_max;              /* bytes one Lua state may hold; 0 = no cap */
	/* Virtual clock for g.now() (ns), read through this pointer at every call: the
	 * simulator and replay pass their own time. NULL: CLOCK_MONOTONIC. */
	const volatile uint64_t *clock;
	/* Where the reload worker writes its thread id while it holds the running policy's
	 * state (its save()) and clears it after: the BPF side then runs that thread ahead of
	 * everything, like the scheduling thread, for as long as the batches get C decisions.
	 * NULL: nowhere (simulator, tests). */
	volatile uint64_t *urgent_tid;
};

struct pol_stats {
	uint64_t batches;        /* policy calls */
	uint64_t tasks;          /* tasks handed to the policy */
	uint64_t errors;         /* calls that raised a Lua error */
	uint64_t fallbacks;      /* tasks decided by the built-in C decision */
	uint64_t bad_decisions;  /* decisions rejected: unknown/zero pid, duplicate, bad CPU, extra */
	uint64_t slices_clamped; /* valid decisions whose slice was outside [10 us, slice_ns_max] */
	uint64_t reloads;        /* successful hot reloads */
	uint64_t reload_errors;  /* rejected reloads (old policy kept) */
	uint64_t lua_heap_hits;  /* calls that failed because the Lua heap cap refused memory */
	uint64_t lua_heap_disabled; /* gauge: 1 while the policy is off for holding more than
				     * the cap after a full GC (C decisions until a reload) */
	uint64_t reload_c_tasks; /* tasks given the built-in C decision while the old policy's
				  * save() ran on the reload worker (not in fallbacks) */
};

/* Where the last reload's time went (ns): from pol_reload_start() until the worker had
 * the running state (wait: its wake-up, and the batch in progress), the old policy's
 * save() on the reload worker, the scheduling thread's time without the policy meanwhile
 * (lent: from its first batch given the C decisions to the one after save() returned; 0
 * if none), loading and self-testing the new state, and its restore() + strategies + a
 * full GC (on the worker). */
struct pol_reload_cost {
	uint64_t wait_ns, save_ns, lent_ns, build_ns, restore_ns;
	uint64_t lent_tasks;     /* tasks given the C decision while save() ran */
};

struct pol;

/* Load `path`, run its init(ctx). Errors (syntax, runtime in init, missing schedule,
 * FFI layout mismatch) return G_ERR with "FILE:LINE: message" in err. */
int pol_open(struct pol **out, const char *path, const struct pol_env *env,
	     char *err, size_t errlen);
void pol_close(struct pol *p);

struct queued_task_ctx *pol_tasks(struct pol *p);      /* batch_max entries */
struct dispatched_task_ctx *pol_out(struct pol *p);    /* batch_max entries */
/* After pol_schedule() returned m: pol_out_task()[j] (j < m) is the index in pol_tasks()
 * of the task pol_out()[j] decides. The decisions come in the policy's order, then the
 * built-in ones, so j and that index differ in general (see pol_schedule). */
const uint16_t *pol_out_task(const struct pol *p);

/* Run the policy on pol_tasks()[0..n) and validate. Returns m <= n: pol_out()[0..m) holds
 * one valid decision per task, for every task but those flagged RL_ENQ_PLACED (BPF already
 * runs them; the policy only hears of them) and stale records (an earlier record of a pid
 * the batch holds again later: the later one is decided). The policy's valid decisions
 * come first, in its order, then the built-in one for each task it left undecided, in
 * task order (pol_out_task() names each decision's task). Never fails. */
int pol_schedule(struct pol *p, int n);

/* Hand the resolved strategy list to the policy (on_strategies). G_ERR if it raised. */
int pol_set_strategies(struct pol *p, const struct strat_entry *e, int n);

/* Hot reload: load `path` (NULL = the same file) into a new state, self-test it on scratch
 * arrays, carry the old state over with save()/restore(), swap. On any error (save()
 * included) the old policy keeps running. pol_reload() does it all at once (blocking);
 * pol_reload_start() hands the work to the reload worker thread and returns: the worker,
 * once it runs, takes the old state between two batches and runs its save() (meanwhile
 * pol_schedule() gives every task the built-in C decision, counted in reload_c_tasks; it
 * never waits), then loads, self-tests and restores the new state while the old policy
 * schedules again. pol_reload_poll(), called by the scheduling thread between batches,
 * finishes it when it is ready: a pointer swap, no system call, and no Lua call unless
 * the strategies changed meanwhile (then the new state gets them first; the replaced
 * state is closed on the worker). */
int pol_reload(struct pol *p, const char *path, char *err, size_t errlen);
int pol_reload_start(struct pol *p, const char *path, char *err, size_t errlen);  /* G_ERR_BUSY: one is being built */
enum { POL_RELOAD_IDLE = 1, POL_RELOAD_BUILDING = 2 };
/* POL_RELOAD_IDLE (none started), POL_RELOAD_BUILDING, G_OK (swapped in), or < 0 (rejected:
 * err says why; the old policy runs on). */
int pol_reload_poll(struct pol *p, char *err, size_t errlen);
const struct pol_reload_cost *pol_reload_cost(const struct pol *p);   /* the last reload's */

/* Carry the policy's state over a restart of the whole host side (CPU hotplug): the
 * running policy's P.save(), serialized (malloc'd, *buf NULL if it has no save), and
 * P.restore() of that into a freshly opened pol. G_ERR with a message if either raised.
 * The serialized form (LuaJIT's string.buffer encoding) is for this process only. */
int pol_save(struct pol *p, char **buf, size_t *len, char *err, size_t errlen);
int pol_restore(struct pol *p, const char *buf, size_t len, char *err, size_t errlen);

/* Load the policy again into a scratch state, run init and two self-test batches of
 * synthetic tasks there, and check that every decision was valid and complete (for
 * --check and at start); the live state never sees the synthetic tasks. G_ERR with a
 * message if not. */
int pol_selftest(struct pol *p, char *err, size_t errlen);

/* Watchdog limits for one call into the policy (defaults 200 ms / 3000 ms; 0 = default).
 * Past soft_ms a call running interpreted Lua is interrupted with an error (its batch
 * falls back); past hard_ms (stuck in compiled code, which ignores the interrupt) the
 * process exits with EXIT_POLICY so the kernel's scheduler takes over. */
void pol_set_limits(struct pol *p, unsigned soft_ms, unsigned hard_ms);

/* Lua stack depth of the running state between calls (always 0; for tests; not while a
 * reload's save() may run on the worker). */
int pol_lua_top(const struct pol *p);

const struct pol_stats *pol_stats(const struct pol *p);
const char *pol_path(const struct pol *p);
const char *pol_lib_dir(const struct pol *p);      /* where gthulhu/sched.lua was found */
const char *pol_last_error(const struct pol *p);   /* last Lua error with traceback, or "" */
/* The first rejected decision of the last batch that had one ("out[j] pid=P cpu=C: why"),
 * or "". */
const char *pol_last_rejected(const struct pol *p);

#endif
