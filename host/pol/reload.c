/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pol/reload.c - hot reload: the reload worker thread builds and self-tests the next state
 * while the old policy schedules on, and the scheduling thread swaps it in between two
 * batches; the lend/reclaim protocol that lets the worker run the old policy's save() on
 * p->st (see pol_int.h), and pol_save()/pol_restore(), which wait for it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>

#include "common.h"
#include "pol_int.h"

int pol_save(struct pol *p, char **buf, size_t *len, char *err, size_t errlen)
{
	pol_lend_wait(p);
	return pol_save_state(p, &p->st, p->path, buf, len, err, errlen);
}

int pol_restore(struct pol *p, const char *buf, size_t len, char *err, size_t errlen)
{
	pol_lend_wait(p);
	return pol_restore_state(p, &p->st, p->path, buf, len, err, errlen);
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
		if (p->env.urgent_tid)   /* run ahead of everything while the batches wait on us */
			*p->env.urgent_tid = (uint64_t)syscall(SYS_gettid);
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
		b->rc = pol_save_state(p, &p->st, p->path, &b->saved, &b->saved_len, b->err,
				       sizeof(b->err));
		t1 = g_now_ns();
		b->save_ns = t1 - t0;
		t0 = t1;
		__atomic_store_n(&p->st_owner, POL_ST_FREE, __ATOMIC_RELEASE);
		__atomic_store_n(&p->lend_done, 1, __ATOMIC_RELEASE);   /* p->st is back */
		if (p->env.urgent_tid)
			*p->env.urgent_tid = 0;
		pthread_mutex_lock(&w->mu);                             /* for pol_lend_wait() */
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
		pol_state_close(p, &p->old);
		t0 = g_now_ns();
	}
	b->rc = pol_state_open(p, &b->ns, b->path, b->lib, b->err, sizeof(b->err));
	if (b->rc != G_OK)
		goto out;
	b->rc = G_ERR;
	if (pol_selftest_state(p, &b->ns, b->path, b->err, sizeof(b->err)) != G_OK)
		goto fail;
	/* The self-test's synthetic tasks are in the tested state's tables now (a real task
	 * with one of their pids would inherit them): schedule with a fresh state of the
	 * same file. Loading twice costs this worker, not the scheduling thread. */
	pol_state_close(p, &b->ns);
	b->rc = pol_state_open(p, &b->ns, b->path, b->lib, b->err, sizeof(b->err));
	if (b->rc != G_OK)
		goto out;
	b->rc = G_ERR;
	t1 = g_now_ns();
	b->build_ns = t1 - t0;
	t0 = t1;
	if (pol_restore_state(p, &b->ns, b->path, b->saved, b->saved_len, b->err,
			      sizeof(b->err)) != G_OK)
		goto fail;
	if (pol_send_strategies(p, &b->ns, b->strat, b->nr_strat, buf, sizeof(buf)) != G_OK) {
		set_err(b->err, sizeof(b->err), "%s: on_strategies() failed: %s", b->path, buf);
		goto fail;
	}
	/* Collect here what loading and restore() left (the decoded state is garbage now):
	 * otherwise the new state's first batches pay that GC debt on the scheduling thread
	 * (bench: its first batch p50 0.39 ms, 0.07 ms with this). */
	lua_cpcall(b->ns.L, pol_gc_full, NULL);
	lua_settop(b->ns.L, 0);
	b->restore_ns = g_now_ns() - t0;
	b->rc = G_OK;
	goto out;
fail:
	pol_state_close(p, &b->ns);
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
			pol_state_close(p, &p->old);
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
void pol_reclaim(struct pol *p)
{
	p->saving = false;
	__atomic_store_n(&p->st_want, 0, __ATOMIC_RELAXED);
	p->cost.lent_ns = p->lent_at ? g_now_ns() - p->lent_at : 0;
	pol_heap_check(p);             /* save() ran on this state's heap */
	if (p->strat_pending) {
		p->strat_pending = false;
		if (pol_send_strategies(p, &p->st, p->strat, p->nr_strat, p->last_error,
					sizeof(p->last_error)) != G_OK) {
			p->stats.errors++;
			pol_note_error(p, p->last_error);
		}
	}
}

/* A caller that needs p->st now (pol_save, pol_restore, pol_close...): wait for the
 * worker's save() to return, then take the state back. */
void pol_lend_wait(struct pol *p)
{
	struct pol_worker *w = &p->worker;

	if (!p->saving)
		return;
	pthread_mutex_lock(&w->mu);
	while (!__atomic_load_n(&p->lend_done, __ATOMIC_ACQUIRE))
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	pol_reclaim(p);
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
	pol_pick_lib_dir(p, b->path, b->lib, sizeof(b->lib));
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
		pol_reclaim(p);
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
	    pol_send_strategies(p, ns, p->strat, p->nr_strat, buf, sizeof(buf)) != G_OK) {
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
			pol_reclaim(p);
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
void pol_build_abandon(struct pol *p)
{
	worker_idle(p);
	worker_stop(p);
	p->saving = false;         /* the build is done, so its save() returned */
	pol_state_close(p, &p->old);
	if (!p->build.started)
		return;
	p->build.started = false;
	pol_state_close(p, &p->build.ns);
	build_free(&p->build);
}
