/* SPDX-License-Identifier: GPL-2.0 *
 * Limits are CPU time of the thread running the call, not wall time: a host starved of CPU
 * (real-time tasks above SCHED_EXT, a stressed or emulated machine) is not the policy's
 * fault, and stopping its call would only turn good decisions into fallbacks. The call
 * costs nothing extra: the watchdog samples the thread's CPU clock at each of its ticks and
 * times a call from the last sample before it saw it (at most one tick too much).
 */
/*
 * pol/watchdog.c - a call into the policy that runs too long. A thread per pol watches
 * `call_start`. Past the soft limit it signals the thread running the call (pthread_kill,
 * POL_WD_SIGNAL), whose handler installs a count hook that raises an error: LuaJIT allows
 * lua_sethook from a signal handler on the running thread (as luajit.c's laction does),
 * not from another thread. The hook works while the policy runs interpreted code. Past
 * the hard limit (stuck in a compiled trace, which ignores hooks) the watchdog ends the
 * process with EXIT_POLICY, so the BPF link goes away and the kernel's scheduler takes over.
 *
 * The watchdog thread blocks every signal, so process signals (SIGINT, SIGHUP, ...) land on
 * the scheduling thread.
 */
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "common.h"
#include "pol_int.h"

static int hook_slot(void);

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
	struct pol_call *c = &p->calls[hook_slot()];
	uint64_t start = __atomic_load_n(&c->start, __ATOMIC_ACQUIRE);
	unsigned soft = __atomic_load_n(&p->soft_ms, __ATOMIC_RELAXED);
	if (start == 0 || __atomic_load_n(&c->fired_start, __ATOMIC_ACQUIRE) != start)
		return;   /* left over from a call that already ended */
	const char *what = __atomic_load_n(&c->what, __ATOMIC_RELAXED);
	unsigned limit = __atomic_load_n(&c->fired_ms, __ATOMIC_RELAXED);
	if (limit && limit != soft)
		luaL_error(L, "policy %s exceeded %u ms (the slow limit of a first call, "
			   "loading, init, save or restore)", what ? what : "call", limit);
	luaL_error(L, "policy %s exceeded %u ms", what ? what : "call", soft);
}

/* CPU time of a thread (its clock from pthread_getcpuclockid), 0 if it cannot be read. */
static uint64_t thread_cpu_ns(clockid_t c)
{
	struct timespec ts;

	if (!c || clock_gettime(c, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The state the calling thread is running a watched call in (NULL between calls), and
 * its slot in pol.calls. */
static __thread lua_State *wd_cur_L;
static __thread int wd_slot;

void pol_wd_set_slot(int slot)
{
	wd_slot = slot;
}

static int hook_slot(void)
{
	return wd_slot;
}

static void on_wd_signal(int sig)
{
	lua_State *L = wd_cur_L;

	(void)sig;
	if (L)
		lua_sethook(L, runaway_hook, LUA_MASKCOUNT, 1);
}

static pthread_once_t wd_sig_once = PTHREAD_ONCE_INIT;

static void wd_sig_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_wd_signal;
	sa.sa_flags = SA_RESTART;   /* a late signal must not fail the loop's epoll_wait */
	sigemptyset(&sa.sa_mask);
	sigaction(POL_WD_SIGNAL, &sa, NULL);
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
		g_deadline_ms(&ts, (long)tick);
		pthread_cond_timedwait(&p->wd_cond, &p->wd_lock, &ts);
		if (p->wd_stop)
			break;

		for (int i = 0; i < POL_WD_SLOTS; i++) {
			struct pol_call *c = &p->calls[i];
			unsigned s = soft, h = hard;
			uint64_t start = __atomic_load_n(&c->start, __ATOMIC_ACQUIRE);
			uint64_t cpu = thread_cpu_ns(__atomic_load_n(&c->cpuclock, __ATOMIC_RELAXED));
			uint64_t prev = c->last_cpu;
			c->last_cpu = cpu;
			if (start == 0)
				continue;
			if (start != c->seen_start) {   /* a new call: time it from our last sample */
				c->seen_start = start;
				c->seen_cpu = prev && prev <= cpu ? prev : cpu;
			}
			/* CPU time since the sample before we saw the call (at most one tick too
			 * much), but never more than the wall time since the call began: when this
			 * thread itself got no CPU for a while, that sample is old, and what the
			 * scheduling thread ran before the call is not the call's (tests/
			 * test_watchdog.c). Wall time only without a CPU clock. */
			uint64_t wall = g_now_ns() - start;
			uint64_t ran = cpu && cpu >= c->seen_cpu ? cpu - c->seen_cpu : wall;
			if ((int64_t)wall < 0)
				wall = 0;
			if (ran > wall)
				ran = wall;
			/* Loading, init, save/restore run once, off the hot path, maybe on a slow
			 * (emulated) machine: they get POL_SLOW_FACTOR times the limits. */
			if (!__atomic_load_n(&c->hot, __ATOMIC_RELAXED)) {
				s *= POL_SLOW_FACTOR;
				h *= POL_SLOW_FACTOR;
			}
			if (ran >= (uint64_t)h * 1000000ull) {
				const char *what = __atomic_load_n(&c->what, __ATOMIC_RELAXED);
				g_err_now("policy %s: %s has run for %u ms and does not stop (stuck in "
					  "compiled code, which cannot be interrupted); exiting so the "
					  "kernel's scheduler takes over", p->path, what ? what : "a call",
					  (unsigned)(ran / 1000000ull));
				_exit(EXIT_POLICY);
			}
			if (ran >= (uint64_t)s * 1000000ull &&
			    !__atomic_load_n(&c->hooked, __ATOMIC_ACQUIRE)) {
				__atomic_store_n(&c->fired_ms, s, __ATOMIC_RELAXED);
				__atomic_store_n(&c->fired_start, start, __ATOMIC_RELEASE);
				__atomic_store_n(&c->hooked, 1, __ATOMIC_RELEASE);
				pthread_kill(__atomic_load_n(&c->thread, __ATOMIC_RELAXED), POL_WD_SIGNAL);
			}
		}
	}
	pthread_mutex_unlock(&p->wd_lock);
	return NULL;
}

int pol_wd_start(struct pol *p)
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

	sigset_t all, old;

	pthread_once(&wd_sig_once, wd_sig_install);
	pthread_attr_init(&ta);
	pthread_attr_setstacksize(&ta, 256 * 1024);
	sigfillset(&all);       /* the thread inherits this mask: it takes no signal */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&p->wd_thread, &ta, watchdog_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&ta);
	if (rc != 0)
		return G_ERR;
	p->wd_started = true;
	return G_OK;
}

void pol_wd_stop(struct pol *p)
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

void pol_wd_enter(struct pol *p, lua_State *L, const char *what, bool hot)
{
	struct pol_call *c = &p->calls[wd_slot];

	wd_cur_L = L;
	if (!pthread_equal(c->thread, pthread_self()) || !c->cpuclock) {
		/* Once per thread (not per call): its CPU clock, for the limits. */
		clockid_t ck;
		if (pthread_getcpuclockid(pthread_self(), &ck) == 0)
			__atomic_store_n(&c->cpuclock, ck, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&c->thread, pthread_self(), __ATOMIC_RELAXED);
	__atomic_store_n(&c->what, what, __ATOMIC_RELAXED);
	__atomic_store_n(&c->hot, hot, __ATOMIC_RELAXED);
	__atomic_store_n(&c->start, g_now_ns(), __ATOMIC_RELEASE);
}

void pol_wd_leave(struct pol *p, lua_State *L)
{
	struct pol_call *c = &p->calls[wd_slot];

	__atomic_store_n(&c->start, 0, __ATOMIC_RELEASE);
	wd_cur_L = NULL;
	/* A hook the handler set (or is about to: then it finds wd_cur_L NULL, or removes
	 * itself at the next call's first count) must not stay on this state. */
	if (__atomic_exchange_n(&c->hooked, 0, __ATOMIC_ACQ_REL))
		lua_sethook(L, NULL, 0, 0);
}
