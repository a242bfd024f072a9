/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pol/bridge.c - the policy bridge: one LuaJIT state running one policy file (see pol.h):
 * opening and closing a struct pol, and the batch call. Building a state and calling into
 * it is state.c, hot reload reload.c, the self-test selftest.c, the heap cap heap.c,
 * errors err.c; decisions are checked in validate.c, long calls interrupted by watchdog.c.
 *
 * Hot path: pol_schedule() = lua_rawgeti(closure) + lua_pushinteger(n) + one lua_pcall
 * through pol_pcall(), then a validation pass in C over preallocated arrays. The closure
 * was built once at load by BOOT_LUA, holding the batch arrays as FFI pointers in upvalues.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "common.h"
#include "pol_int.h"

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
	pol_pick_lib_dir(p, path, p->lib_dir, sizeof(p->lib_dir));

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
	rc = pol_state_open(p, &p->st, p->path, p->lib_dir, err, errlen);
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
	pol_build_abandon(p);
	pol_wd_stop(p);
	pol_state_close(p, &p->st);
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
			m = pol_state_schedule(p, &p->st, p->st.sched_ref, &p->live, &p->vs, n, &p->stats,
					       true, p->last_error, sizeof(p->last_error));
			__atomic_store_n(&p->st_owner, POL_ST_FREE, __ATOMIC_RELEASE);
			return m;
		}
		pol_reclaim(p);
	}
	return pol_state_schedule(p, &p->st, p->st.sched_ref, &p->live, &p->vs, n, &p->stats, true,
				  p->last_error, sizeof(p->last_error));
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
	if (pol_send_strategies(p, &p->st, p->strat, p->nr_strat, p->last_error,
				sizeof(p->last_error)) != G_OK) {
		p->stats.errors++;
		pol_note_error(p, p->last_error);
		return G_ERR;
	}
	return G_OK;
}
