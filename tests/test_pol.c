/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test_pol.c - the policy bridge: batches through small test policies (tests/policies),
 * every way a policy can fail, watchdog, strategies, hot reload, self-test.
 * Run from the repository root.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#pragma GCC diagnostic ignored "-Wformat-zero-length"  /* CHECK(cond) without a message */
#include "common.h"
#include "pol/pol.h"
#include <lua.h>

/* Linked with -Wl,--wrap=lua_sethook (Makefile): every lua_sethook of the bridge passes
 * here, so the test sees which thread set a hook. LuaJIT allows it only on the thread
 * running the state (or in a signal handler there), never from the watchdog thread. */
static pthread_t main_thread;
static int sethook_calls, sethook_foreign;
void __real_lua_sethook(lua_State *L, lua_Hook f, int mask, int count);
void __wrap_lua_sethook(lua_State *L, lua_Hook f, int mask, int count);
void __wrap_lua_sethook(lua_State *L, lua_Hook f, int mask, int count)
{
	__atomic_add_fetch(&sethook_calls, 1, __ATOMIC_RELAXED);
	if (!pthread_equal(pthread_self(), main_thread))
		__atomic_add_fetch(&sethook_foreign, 1, __ATOMIC_RELAXED);
	__real_lua_sethook(L, f, mask, count);
}

/* Also wrapped (Makefile): the locks and wake-ups of the bridge, counted on the main thread
 * while `in_swap` is set, so a test sees that the swap makes no system call (a wake-up
 * there let the woken reload worker preempt the scheduling thread in the swap). */
static int in_swap, swap_sync_calls;
int __real_pthread_mutex_lock(pthread_mutex_t *m);
int __wrap_pthread_mutex_lock(pthread_mutex_t *m);
int __wrap_pthread_mutex_lock(pthread_mutex_t *m)
{
	if (in_swap && pthread_equal(pthread_self(), main_thread))
		swap_sync_calls++;
	return __real_pthread_mutex_lock(m);
}
int __real_pthread_cond_broadcast(pthread_cond_t *c);
int __wrap_pthread_cond_broadcast(pthread_cond_t *c);
int __wrap_pthread_cond_broadcast(pthread_cond_t *c)
{
	if (in_swap && pthread_equal(pthread_self(), main_thread))
		swap_sync_calls++;
	return __real_pthread_cond_broadcast(c);
}
int __real_pthread_cond_signal(pthread_cond_t *c);
int __wrap_pthread_cond_signal(pthread_cond_t *c);
int __wrap_pthread_cond_signal(pthread_cond_t *c)
{
	if (in_swap && pthread_equal(pthread_self(), main_thread))
		swap_sync_calls++;
	return __real_pthread_cond_signal(c);
}

/* tests/policies/saver.lua's save() in "gate" mode waits until this returns non-zero. */
static int save_gate;
int test_save_gate(void);
int test_save_gate(void) { return __atomic_load_n(&save_gate, __ATOMIC_ACQUIRE); }

int g_verbose __attribute__((weak));

#define TP "tests/policies/"
#define NR_CPUS 4

static struct topo topo;
static uint64_t idle_map[MAX_CPUS / 64];
static volatile uint64_t urgent_tid;   /* pol_env.urgent_tid: the BPF side's, in a real run */

static struct pol_env env_for(int batch_max)
{
	struct pol_env e = {
		.nr_cpus = NR_CPUS,
		.slice_ns_default = 20000000,
		.slice_ns_min = 1000000,
		.batch_max = batch_max,
		.topo = &topo,
		.idle = idle_map,
		.lib_dir = "policies/lib",
		.urgent_tid = &urgent_tid,
	};
	return e;
}

static struct pol *open_ok(const char *path, int batch_max)
{
	struct pol_env env = env_for(batch_max);
	struct pol *p = NULL;
	char err[4096] = "";
	int rc = pol_open(&p, path, &env, err, sizeof(err));
	CHECK(rc == G_OK && p, "pol_open %s: %s", path, err);
	return rc == G_OK ? p : NULL;
}

/* Reap a forked child, killing it after 60 s (a safety bound, not the test's outcome).
 * Returns the ms waited; *status is waitpid's. */
static int wait_child(pid_t pid, int *status)
{
	int waited = 0;

	while (waitpid(pid, status, WNOHANG) == 0) {
		if (waited > 60000) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			break;
		}
		usleep(10000);
		waited += 10;
	}
	return waited;
}

/* Fill tasks 0..n-1: pid 100+i, tgid = pid, cpu i % NR_CPUS, weights, vtimes, enq_cnt. */
static void fill(struct pol *p, int n)
{
	struct queued_task_ctx *t = pol_tasks(p);
	for (int i = 0; i < n; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].pid = 100 + i;
		t[i].tgid = 100 + i;
		t[i].cpu = i % NR_CPUS;
		t[i].nr_cpus_allowed = NR_CPUS;
		t[i].weight = 1 + (uint64_t)(i * 37) % 10000;
		t[i].vtime = (i % 3 == 0) ? 0 : 1000000 + (uint64_t)i;
		t[i].enq_cnt = 50000 + (uint64_t)i * 3;
		snprintf(t[i].comm, sizeof(t[i].comm), "task%d", i);
	}
}

/* Every task exactly once in out[0..n): same (pid, enq_cnt), valid cpu. Returns 1 if ok. */
static int complete(struct pol *p, int n)
{
	const struct queued_task_ctx *t = pol_tasks(p);
	const struct dispatched_task_ctx *o = pol_out(p);
	static unsigned char seen[MAX_BATCH];
	int ok = 1;

	memset(seen, 0, sizeof(seen));
	for (int j = 0; j < n; j++) {
		int found = -1;
		for (int i = 0; i < n; i++)
			if (!seen[i] && t[i].pid == o[j].pid && t[i].enq_cnt == o[j].enq_cnt) {
				found = i;
				break;
			}
		if (found < 0 || !(o[j].cpu == RL_CPU_ANY || (o[j].cpu >= 0 && o[j].cpu < NR_CPUS))) {
			ok = 0;
			break;
		}
		seen[found] = 1;
	}
	return ok;
}

static int is_fallback(const struct dispatched_task_ctx *d, const struct queued_task_ctx *t)
{
	return d->pid == t->pid && d->cpu == RL_CPU_ANY && d->slice_ns == 0 && d->flags == 0 &&
	       d->vtime == (t->vtime ? t->vtime : 1) && d->enq_cnt == t->enq_cnt;
}

static void test_echo_sizes(void)
{
	struct pol *p = open_ok(TP "echo.lua", MAX_BATCH);
	static const int sizes[] = { 1, 7, 512, 4096 };
	uint64_t calls = 0;

	if (!p)
		return;
	CHECK(pol_lua_top(p) == 0);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int n = sizes[s];
		fill(p, n);
		memset(pol_out(p), 0xab, sizeof(struct dispatched_task_ctx) * (size_t)n);
		CHECK(pol_schedule(p, n) == n, "n=%d", n);
		calls++;
		const struct queued_task_ctx *t = pol_tasks(p);
		const struct dispatched_task_ctx *o = pol_out(p);
		int good = 1;
		for (int i = 0; i < n; i++) {
			const struct dispatched_task_ctx *d = &o[n - 1 - i];
			if (d->pid != t[i].pid || d->cpu != t[i].cpu || d->slice_ns != 1000u + (unsigned)i ||
			    d->vtime != t[i].weight * 7 + 1 || d->flags != calls || d->enq_cnt != t[i].enq_cnt) {
				good = 0;
				fprintf(stderr, "n=%d task %d: pid %d cpu %d slice %llu vtime %llu flags %llu enq %llu\n",
					n, i, d->pid, d->cpu, (unsigned long long)d->slice_ns,
					(unsigned long long)d->vtime, (unsigned long long)d->flags,
					(unsigned long long)d->enq_cnt);
				break;
			}
		}
		CHECK(good, "n=%d: decisions come back as the policy set them", n);
		CHECK(complete(p, n), "n=%d", n);
		CHECK(pol_lua_top(p) == 0);
	}
	const struct pol_stats *st = pol_stats(p);
	CHECK(st->batches == 4 && st->tasks == 1 + 7 + 512 + 4096);
	CHECK(st->errors == 0 && st->fallbacks == 0 && st->bad_decisions == 0,
	      "errors %llu fallbacks %llu bad %llu", (unsigned long long)st->errors,
	      (unsigned long long)st->fallbacks, (unsigned long long)st->bad_decisions);
	CHECK(pol_schedule(p, 0) == 0);
	CHECK(strcmp(pol_last_error(p), "") == 0);
	CHECK(strcmp(pol_path(p), TP "echo.lua") == 0);

	/* a pid twice in one batch: the later record owns it; the earlier one is stale (BPF
	 * would cancel a decision for it) and gets none; echo deciding both is no error */
	fill(p, 8);
	pol_tasks(p)[5].pid = pol_tasks(p)[3].pid;
	CHECK(pol_schedule(p, 8) == 7);
	CHECK(st->bad_decisions == 0 && st->fallbacks == 0, "bad %llu fallbacks %llu",
	      (unsigned long long)st->bad_decisions, (unsigned long long)st->fallbacks);
	int stale_sent = 0;
	for (int j = 0; j < 7; j++)
		stale_sent += pol_out(p)[j].enq_cnt == pol_tasks(p)[3].enq_cnt;
	CHECK(stale_sent == 0, "a decision went out for the stale record");
	pol_close(p);
}

struct bad_case {
	const char *mode;
	int n;
	uint64_t errors, fallbacks, bad;
};

/* Absurd slices from a policy are valid decisions, clamped to slice_ns_max and counted;
 * a short slice and 0 (the default) pass unchanged. */
static void test_slice_clamp(void)
{
	struct pol_env env = env_for(MAX_BATCH);
	struct pol *p = NULL;
	char err[4096] = "";

	env.slice_ns_max = 625000000ull;
	setenv("GTHULHU_TEST_MODE", "slice_absurd", 1);
	CHECK(pol_open(&p, TP "bad.lua", &env, err, sizeof(err)) == G_OK, "%s", err);
	if (!p)
		return;
	fill(p, 5);
	CHECK(pol_schedule(p, 5) == 5, " ");
	const struct dispatched_task_ctx *o = pol_out(p);
	const struct pol_stats *st = pol_stats(p);
	CHECK(st->fallbacks == 0 && st->bad_decisions == 0, "fallbacks %llu bad %llu",
	      (unsigned long long)st->fallbacks, (unsigned long long)st->bad_decisions);
	CHECK(o[0].slice_ns == 625000000ull, "slice -1 became %llu", (unsigned long long)o[0].slice_ns);
	CHECK(o[1].slice_ns == 625000000ull, "slice 1e13 became %llu", (unsigned long long)o[1].slice_ns);
	CHECK(o[2].slice_ns == 1, "slice 1 became %llu", (unsigned long long)o[2].slice_ns);
	CHECK(o[3].slice_ns == 0, "slice 0 (default) became %llu", (unsigned long long)o[3].slice_ns);
	CHECK(st->slices_clamped == 2, "slices_clamped %llu", (unsigned long long)st->slices_clamped);
	CHECK(complete(p, 5), "a task stranded");
	pol_close(p);
	unsetenv("GTHULHU_TEST_MODE");
}

/* Tasks BPF already placed (RL_ENQ_PLACED) reach the policy but get no decision, whether
 * the policy decided them, left them out, or raised. */
static void test_placed(void)
{
	static const char *modes[] = { "good", "fewer", "raise" };

	for (size_t c = 0; c < sizeof(modes) / sizeof(modes[0]); c++) {
		setenv("GTHULHU_TEST_MODE", modes[c], 1);
		struct pol *p = open_ok(TP "bad.lua", MAX_BATCH);
		if (!p)
			continue;
		fill(p, 6);
		struct queued_task_ctx *t = pol_tasks(p);
		t[1].flags |= RL_ENQ_PLACED;
		t[4].flags |= RL_ENQ_PLACED;
		int m = pol_schedule(p, 6);
		CHECK(m == 4, "mode %s: %d decisions for 6 tasks, 2 of them placed", modes[c], m);
		const struct dispatched_task_ctx *o = pol_out(p);
		int seen = 0;
		for (int j = 0; j < m && j < 6; j++) {
			CHECK(o[j].pid != t[1].pid && o[j].pid != t[4].pid,
			      "mode %s: a decision for placed pid %d", modes[c], o[j].pid);
			for (int i = 0; i < 6; i++)
				if (o[j].pid == t[i].pid && o[j].enq_cnt == t[i].enq_cnt)
					seen |= 1 << i;
		}
		CHECK(seen == (1 << 0 | 1 << 2 | 1 << 3 | 1 << 5), "mode %s: decided set %#x", modes[c], seen);
		CHECK(pol_stats(p)->bad_decisions == 0, "mode %s: %llu bad decisions", modes[c],
		      (unsigned long long)pol_stats(p)->bad_decisions);

		/* The same task told as placed, then queued again in the same batch: one
		 * decision (for the queued record), no "decided twice". */
		fill(p, 4);
		t[3].pid = t[1].pid;
		t[3].tgid = t[1].tgid;
		t[1].flags |= RL_ENQ_PLACED;
		uint64_t bad0 = pol_stats(p)->bad_decisions;
		m = pol_schedule(p, 4);
		CHECK(m == 3, "mode %s: %d decisions for 4 records of 3 tasks, one told placed", modes[c], m);
		int n3 = 0;
		for (int j = 0; j < m && j < 4; j++)
			n3 += o[j].pid == t[3].pid && o[j].enq_cnt == t[3].enq_cnt;
		CHECK(n3 == 1, "mode %s: %d decisions for the re-queued task", modes[c], n3);
		CHECK(pol_stats(p)->bad_decisions == bad0, "mode %s: twin counted as bad", modes[c]);
		pol_close(p);
	}
	unsetenv("GTHULHU_TEST_MODE");
}

static void test_bad_modes(void)
{
	static const struct bad_case cases[] = {
		{ "good", 10, 0, 0, 0 },
		{ "raise", 10, 1, 10, 0 },
		{ "nil", 10, 1, 10, 0 },
		{ "string", 10, 1, 10, 0 },
		{ "negative", 10, 0, 10, 0 },
		{ "toomany", 10, 0, 0, 5 },
		{ "cpu_neg", 10, 0, 1, 1 },
		{ "cpu_nr", 10, 0, 1, 1 },
		{ "cpu_huge", 10, 0, 1, 1 },
		{ "zero_pid", 10, 0, 1, 1 },
		{ "unknown_pid", 10, 0, 1, 1 },
		{ "dup", 10, 0, 1, 1 },
		{ "fewer", 10, 0, 5, 0 },
		{ "fewer", 1, 0, 1, 0 },
		{ "raise", 4096, 1, 4096, 0 },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct bad_case *k = &cases[c];
		setenv("GTHULHU_TEST_MODE", k->mode, 1);
		struct pol *p = open_ok(TP "bad.lua", MAX_BATCH);
		if (!p)
			continue;
		fill(p, k->n);
		CHECK(pol_schedule(p, k->n) == k->n, "%s", k->mode);
		const struct pol_stats *st = pol_stats(p);
		CHECK(st->errors == k->errors && st->fallbacks == k->fallbacks && st->bad_decisions == k->bad,
		      "mode %s: errors %llu fallbacks %llu bad %llu", k->mode,
		      (unsigned long long)st->errors, (unsigned long long)st->fallbacks,
		      (unsigned long long)st->bad_decisions);
		CHECK(complete(p, k->n), "mode %s: a task stranded or decided twice", k->mode);
		CHECK(pol_lua_top(p) == 0, "mode %s", k->mode);
		if (k->errors && strcmp(k->mode, "raise") == 0) {
			CHECK_STR_CONTAINS(pol_last_error(p), "bad.lua:22: schedule failed on purpose");
			CHECK_STR_CONTAINS(pol_last_error(p), "stack traceback");
		}
		if (k->errors && strcmp(k->mode, "nil") == 0)
			CHECK_STR_CONTAINS(pol_last_error(p), "returned a nil");
		if (k->fallbacks == (uint64_t)k->n) {
			int all = 1;
			for (int i = 0; i < k->n; i++)
				all &= is_fallback(&pol_out(p)[i], &pol_tasks(p)[i]);
			CHECK(all, "mode %s: all tasks get the C decision in order", k->mode);
		}
		char err[1024];
		int rc = pol_selftest(p, err, sizeof(err));
		if (k->errors == 0 && k->fallbacks == 0 && k->bad == 0)
			CHECK(rc == G_OK, "mode %s: %s", k->mode, err);
		else if (!(k->fallbacks == 1 && k->n == 1)) {
			CHECK(rc != G_OK, "mode %s: self-test should fail", k->mode);
			CHECK_STR_CONTAINS(err, "bad.lua");
			if (rc != G_OK && k->bad && !k->errors)   /* names the first bad decision */
				CHECK(strstr(err, "first rejected: out[") || strstr(err, "first rejected: schedule() returned"), "%s", err);
		}
		CHECK(pol_lua_top(p) == 0);
		pol_close(p);
	}

	/* every third call raises: exactly those batches fall back */
	setenv("GTHULHU_TEST_MODE", "raise_nth", 1);
	struct pol *p = open_ok(TP "bad.lua", 64);
	if (p) {
		int ok = 1;
		for (int call = 1; call <= 9; call++) {
			fill(p, 16);
			pol_schedule(p, 16);
			ok &= complete(p, 16);
			ok &= pol_lua_top(p) == 0;
		}
		const struct pol_stats *st = pol_stats(p);
		CHECK(ok);
		CHECK(st->errors == 3 && st->fallbacks == 3 * 16 && st->bad_decisions == 0,
		      "errors %llu fallbacks %llu", (unsigned long long)st->errors,
		      (unsigned long long)st->fallbacks);
		CHECK_STR_CONTAINS(pol_last_error(p), "every third call fails");
		/* more than batch_max is clamped */
		fill(p, 64);
		CHECK(pol_schedule(p, 1000) == 64);
		pol_close(p);
	}
	unsetenv("GTHULHU_TEST_MODE");
}

static void test_open_errors(void)
{
	struct pol_env env = env_for(64);
	struct pol *p = (struct pol *)1;
	char err[4096];

	CHECK(pol_open(&p, TP "syntax.lua", &env, err, sizeof(err)) != G_OK && p == NULL);
	CHECK_STR_CONTAINS(err, TP "syntax.lua:3:");

	CHECK(pol_open(&p, TP "init_error.lua", &env, err, sizeof(err)) != G_OK && p == NULL);
	CHECK_STR_CONTAINS(err, "init_error.lua:4: init failed on purpose");

	CHECK(pol_open(&p, TP "no_schedule.lua", &env, err, sizeof(err)) != G_OK && p == NULL);
	CHECK_STR_CONTAINS(err, "no_schedule.lua");
	CHECK_STR_CONTAINS(err, "schedule function");

	CHECK(pol_open(&p, TP "does_not_exist.lua", &env, err, sizeof(err)) != G_OK && p == NULL);
	CHECK_STR_CONTAINS(err, "does_not_exist.lua");

	env.lib_dir = "tests/policies/no-such-lib";
	CHECK(pol_open(&p, TP "echo.lua", &env, err, sizeof(err)) != G_OK && p == NULL);
	CHECK_STR_CONTAINS(err, "gthulhu.sched");

	env = env_for(0);
	CHECK(pol_open(&p, TP "echo.lua", &env, err, sizeof(err)) == G_ERR_RANGE);
	pol_close(NULL);
}

static void test_runaway(void)
{
	/* A fresh state's first calls compile traces: they get the slow limits (x25). */
	setenv("RUNAWAY_AFTER", "0", 1);
	struct pol *p = open_ok(TP "runaway.lua", 64);
	if (p) {
		pol_set_limits(p, 20, 5000);
		fill(p, 10);
		CHECK(pol_schedule(p, 10) == 10);
		CHECK(pol_stats(p)->errors == 1 && pol_stats(p)->fallbacks == 10);
		CHECK_STR_CONTAINS(pol_last_error(p), "exceeded 500 ms (the slow limit of a first call");
		pol_close(p);
	}

	/* Past the warm-up calls, the soft limit itself. */
	setenv("RUNAWAY_AFTER", "64", 1);
	p = open_ok(TP "runaway.lua", 64);
	unsetenv("RUNAWAY_AFTER");
	if (!p)
		return;
	pol_set_limits(p, 50, 5000);
	for (int i = 0; i < 64; i++) {
		fill(p, 10);
		pol_schedule(p, 10);
	}
	CHECK(pol_stats(p)->errors == 0, "warm-up calls failed: %s", pol_last_error(p));
	fill(p, 10);
	uint64_t t0 = g_now_ns();
	CHECK(pol_schedule(p, 10) == 10);
	uint64_t ms = (g_now_ns() - t0) / 1000000;
	const struct pol_stats *st = pol_stats(p);
	CHECK(ms >= 50, "cut after %llu ms, before the 50 ms limit", (unsigned long long)ms);
	CHECK(st->errors == 1 && st->fallbacks == 10);
	CHECK(complete(p, 10));
	CHECK_STR_CONTAINS(pol_last_error(p), "exceeded 50 ms");
	CHECK(pol_lua_top(p) == 0);
	/* and again: the hook is re-armed for the next call */
	CHECK(pol_schedule(p, 10) == 10);
	CHECK(st->errors == 2 && st->fallbacks == 20);
	pol_close(p);

	/* a good policy is not disturbed by a left-over hook or short limits */
	p = open_ok(TP "echo.lua", 64);
	if (p) {
		pol_set_limits(p, 20, 5000);
		int ok = 1;
		for (int i = 0; i < 50; i++) {
			fill(p, 64);
			ok &= pol_schedule(p, 64) == 64;
		}
		CHECK(ok && pol_stats(p)->errors == 0 && pol_stats(p)->fallbacks == 0);
		pol_close(p);
	}
	/* The limits are CPU time: a call that blocks (a host starved of CPU) for 3x the
	 * soft limit is not interrupted. */
	p = open_ok(TP "sleepy.lua", 64);
	if (p) {
		pol_set_limits(p, 100, 5000);
		fill(p, 8);
		CHECK(pol_schedule(p, 8) == 8);
		CHECK(pol_stats(p)->errors == 0 && pol_stats(p)->fallbacks == 0,
		      "a call blocked 300 ms (no CPU) was cut at a 100 ms CPU limit: %s",
		      pol_last_error(p));
		pol_close(p);
	}
}

/* Stuck in compiled code: only the hard limit helps, and it ends the process. */
static void test_runaway_hard(void)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct pol_env env = env_for(64);
		struct pol *p = NULL;
		char err[1024];
		if (pol_open(&p, TP "runaway_jit.lua", &env, err, sizeof(err)) != G_OK)
			_exit(100);
		pol_set_limits(p, 20, 300);
		fill(p, 4);
		pol_schedule(p, 4);
		_exit(101);
	}
	CHECK(pid > 0);
	if (pid <= 0)
		return;
	int status = 0, waited = wait_child(pid, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_POLICY,
	      "child status %#x after %d ms", status, waited);
	/* The limit is CPU time: on a loaded machine the wall time to reach it varies, so no
	 * wall-clock bound here beyond the 60 s safety kill above (the outcome is the test). */
}

static void test_strategies(void)
{
	struct pol *p = open_ok(TP "echo.lua", 64);
	if (!p)
		return;
	struct strat_entry e[] = {
		{ .pid = 101, .priority = true, .execution_time = 5000 },
		{ .pid = 900, .priority = false, .execution_time = 7000 },
	};
	CHECK(pol_set_strategies(p, e, 2) == G_OK);
	CHECK(pol_lua_top(p) == 0);
	fill(p, 16);
	for (int i = 10; i < 13; i++)
		pol_tasks(p)[i].tgid = 900;   /* threads of process 900 */
	CHECK(pol_schedule(p, 16) == 16);
	const struct dispatched_task_ctx *o = pol_out(p);
	const struct dispatched_task_ctx *d = &o[16 - 1 - 1];     /* task 1 = pid 101 */
	CHECK(d->pid == 101 && d->vtime == 0 && d->slice_ns == 5000 && d->cpu == RL_CPU_ANY);
	CHECK(d->flags == 1 + 65536 * 2, "on_strategies saw the list: flags %llu",
	      (unsigned long long)d->flags);
	int ok = 1;
	for (int i = 10; i < 13; i++) {
		d = &o[16 - 1 - i];
		ok &= d->pid == 100 + i && d->slice_ns == 7000 && d->vtime != 0;
	}
	CHECK(ok, "tgid match");
	d = &o[16 - 1 - 2];
	CHECK(d->slice_ns == 1002, "no strategy for pid 102");

	/* replaced, not merged */
	CHECK(pol_set_strategies(p, e + 1, 1) == G_OK);
	fill(p, 4);
	pol_schedule(p, 4);
	CHECK(o[4 - 1 - 1].slice_ns == 1001 && o[4 - 1 - 1].vtime != 0);
	CHECK(pol_set_strategies(p, NULL, 0) == G_OK);
	CHECK(pol_lua_top(p) == 0);
	pol_close(p);
}

static void test_reload(void)
{
	struct pol *p = open_ok(TP "echo.lua", 64);
	char err[4096];
	if (!p)
		return;
	struct strat_entry e = { .pid = 101, .priority = true, .execution_time = 5000 };
	pol_set_strategies(p, &e, 1);
	for (int i = 0; i < 3; i++) {
		fill(p, 8);
		pol_schedule(p, 8);
	}
	CHECK(pol_reload(p, NULL, err, sizeof(err)) == G_OK, "%s", err);
	CHECK(pol_lua_top(p) == 0);
	fill(p, 8);
	pol_schedule(p, 8);
	const struct dispatched_task_ctx *d = &pol_out(p)[8 - 1 - 1];
	CHECK(d->flags == 4 + 65536, "state and strategies carried over: flags %llu",
	      (unsigned long long)d->flags);
	CHECK(d->vtime == 0 && d->slice_ns == 5000, "g.strategy answers after reload");

	/* broken reloads keep the old policy */
	CHECK(pol_reload(p, TP "syntax.lua", err, sizeof(err)) != G_OK);
	CHECK_STR_CONTAINS(err, "syntax.lua:3:");
	CHECK(pol_reload(p, TP "init_error.lua", err, sizeof(err)) != G_OK);
	CHECK_STR_CONTAINS(err, "init failed on purpose");
	CHECK(pol_reload(p, TP "restore_error.lua", err, sizeof(err)) != G_OK);
	CHECK_STR_CONTAINS(err, "restore failed on purpose");
	CHECK(pol_lua_top(p) == 0);
	CHECK(strcmp(pol_path(p), TP "echo.lua") == 0);
	fill(p, 8);
	pol_schedule(p, 8);
	d = &pol_out(p)[8 - 1 - 3];
	CHECK(d->flags == 5 + 65536 && d->slice_ns == 1003, "old policy still runs");
	const struct pol_stats *st = pol_stats(p);
	CHECK(st->reloads == 1 && st->reload_errors == 3 && st->errors == 0 && st->fallbacks == 0);

	/* a reload self-tests the new state before the swap, on scratch arrays: a policy
	 * whose schedule() always raises is rejected, and the decisions of the last batch (the
	 * backlog the loop may still be sending) stay as they were, either way */
	fill(p, 8);
	pol_schedule(p, 8);
	struct dispatched_task_ctx keep[8];
	memcpy(keep, pol_out(p), sizeof(keep));
	setenv("GTHULHU_TEST_MODE", "raise", 1);
	CHECK(pol_reload(p, TP "bad.lua", err, sizeof(err)) != G_OK, "a raising policy was swapped in");
	CHECK_STR_CONTAINS(err, "self-test");
	CHECK_STR_CONTAINS(err, "schedule failed on purpose");
	CHECK(strcmp(pol_path(p), TP "echo.lua") == 0);
	CHECK(memcmp(keep, pol_out(p), sizeof(keep)) == 0, "backlog untouched by a rejected reload");
	setenv("GTHULHU_TEST_MODE", "cpu_nr", 1);
	CHECK(pol_reload(p, TP "bad.lua", err, sizeof(err)) != G_OK, "invalid decisions swapped in");
	CHECK_STR_CONTAINS(err, "first rejected: out[");
	CHECK(st->reloads == 1 && st->reload_errors == 5 && st->bad_decisions == 0 && st->errors == 0,
	      "self-test batches do not count: reloads %llu errors %llu bad %llu",
	      (unsigned long long)st->reloads, (unsigned long long)st->errors,
	      (unsigned long long)st->bad_decisions);
	CHECK(pol_reload(p, NULL, err, sizeof(err)) == G_OK, "%s", err);
	CHECK(memcmp(keep, pol_out(p), sizeof(keep)) == 0, "backlog untouched by a reload");

	/* reload onto another file: it has no restore, and works */
	setenv("GTHULHU_TEST_MODE", "good", 1);
	CHECK(pol_reload(p, TP "bad.lua", err, sizeof(err)) == G_OK, "%s", err);
	CHECK(strcmp(pol_path(p), TP "bad.lua") == 0);
	fill(p, 8);
	pol_schedule(p, 8);
	CHECK(pol_out(p)[0].vtime == 10 && complete(p, 8));
	unsetenv("GTHULHU_TEST_MODE");
	pol_close(p);
}

static void test_selftest_real(void)
{
	static const char *const files[] = { "policies/gthulhu.lua", "policies/simple.lua" };
	for (size_t i = 0; i < 2; i++) {
		if (access(files[i], R_OK) != 0) {
			printf("skip: %s does not exist\n", files[i]);
			continue;
		}
		struct pol *p = open_ok(files[i], MAX_BATCH);
		if (!p)
			continue;
		char err[4096] = "";
		CHECK(pol_selftest(p, err, sizeof(err)) == G_OK, "%s", err);
		fill(p, 4096);
		CHECK(pol_schedule(p, 4096) == 4096 && complete(p, 4096));
		CHECK(pol_stats(p)->errors == 0, "%s", pol_last_error(p));
		CHECK(pol_lua_top(p) == 0);
		pol_close(p);

		/* lib_dir NULL: found next to the policy */
		struct pol_env env = env_for(64);
		env.lib_dir = NULL;
		p = NULL;
		CHECK(pol_open(&p, files[i], &env, err, sizeof(err)) == G_OK, "%s", err);
		pol_close(p);
	}
}

/* Called by forge.lua (mode rw_forge) during schedule(): rewrites a task in the host's own
 * writable view, as a policy that could write the task array would. */
static struct pol *forge_pol;
void test_pol_forge(int i, int32_t pid, uint64_t enq_cnt);
void test_pol_forge(int i, int32_t pid, uint64_t enq_cnt)
{
	pol_tasks(forge_pol)[i].pid = pid;
	pol_tasks(forge_pol)[i].enq_cnt = enq_cnt;
}

/* Run forge.lua in `mode` in a child; return its wait status and its stderr in buf. */
static int forge_child(const char *mode, char *buf, size_t len)
{
	char path[] = "/tmp/gthulhu-test-pol-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	unlink(path);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd, 2);
		setenv("GTHULHU_TEST_MODE", mode, 1);
		struct pol_env env = env_for(64);
		struct pol *p = NULL;
		char err[1024];
		if (pol_open(&p, TP "forge.lua", &env, err, sizeof(err)) != G_OK)
			_exit(100);
		fill(p, 8);
		pol_schedule(p, 8);
		_exit(101);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	ssize_t r = pread(fd, buf, len - 1, 0);
	buf[r > 0 ? r : 0] = '\0';
	close(fd);
	return status;
}

/* The task array is const to Lua and read-only in memory; out and tasks have guard
 * pages; pid/enq_cnt are validated against the host's copy taken before the call. */
static void test_forge(void)
{
	char msg[4096];
	int st;

	setenv("GTHULHU_TEST_MODE", "const_write", 1);
	struct pol *p = open_ok(TP "forge.lua", 64);
	if (p) {
		fill(p, 8);
		CHECK(pol_schedule(p, 8) == 8);
		CHECK(pol_stats(p)->errors == 1 && pol_stats(p)->fallbacks == 8,
		      "a write through the const tasks pointer raises: errors %llu fallbacks %llu",
		      (unsigned long long)pol_stats(p)->errors, (unsigned long long)pol_stats(p)->fallbacks);
		CHECK(complete(p, 8));
		pol_close(p);
	}

	setenv("GTHULHU_TEST_MODE", "rw_forge", 1);
	p = forge_pol = open_ok(TP "forge.lua", 64);
	if (p) {
		fill(p, 8);
		CHECK(pol_schedule(p, 8) == 8);
		const struct dispatched_task_ctx *o = pol_out(p);
		int forged = 0, orig = 0;
		for (int j = 0; j < 8; j++) {
			forged += o[j].pid == 999999 || o[j].enq_cnt == 7;
			orig += o[j].pid == 100 && o[j].enq_cnt == 50000;
		}
		CHECK(forged == 0, "no decision for the forged pid or enq_cnt");
		CHECK(orig == 1, "task 0 decided once with its real pid and enq_cnt");
		CHECK(pol_stats(p)->bad_decisions == 1 && pol_stats(p)->fallbacks == 1,
		      "bad %llu fallbacks %llu", (unsigned long long)pol_stats(p)->bad_decisions,
		      (unsigned long long)pol_stats(p)->fallbacks);
		pol_close(p);
	}
	unsetenv("GTHULHU_TEST_MODE");

	static const struct { const char *mode, *says; } faults[] = {
		{ "cast_write", "wrote to the read-only task array" },
		{ "out_past", "past the end of out[]" },
		{ "tasks_past", "past the end of tasks[]" },
	};
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		st = forge_child(faults[i].mode, msg, sizeof(msg));
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == EXIT_POLICY, "%s: child status %#x: %s",
		      faults[i].mode, st, msg);
		CHECK_STR_CONTAINS(msg, faults[i].says);
		CHECK_STR_CONTAINS(msg, "forge.lua");
	}
}

/* package.path/cpath hold no entry relative to the working directory. */
static void test_search_path(void)
{
	struct pol *p = open_ok(TP "paths.lua", 64);
	pol_close(p);
}

/* The Lua heap cap: a leaking policy is switched to the C decisions (reported, every task
 * still decided), garbage is not a leak, an OOM while building the state is an error. */
static void test_heap_cap(void)
{
	struct pol_env env = env_for(64);
	struct pol *p = NULL;
	char err[4096] = "";

	env.lua_heap_max = 4u << 20;
	CHECK(pol_open(&p, TP "heap_hog.lua", &env, err, sizeof(err)) == G_OK, "%s", err);
	if (p) {
		int ok = 1, i;
		for (i = 0; i < 400 && !pol_stats(p)->lua_heap_disabled; i++) {
			fill(p, 8);
			ok &= pol_schedule(p, 8) == 8 && complete(p, 8) && pol_lua_top(p) == 0;
		}
		const struct pol_stats *st = pol_stats(p);
		CHECK(ok, "every batch complete while the heap grows");
		CHECK(st->lua_heap_disabled == 1 && st->lua_heap_hits >= 1 && i > 10 && i < 100,
		      "disabled %llu hits %llu after %d batches", (unsigned long long)st->lua_heap_disabled,
		      (unsigned long long)st->lua_heap_hits, i);
		CHECK_STR_CONTAINS(pol_last_error(p), "lua_heap_max");
		uint64_t fb = st->fallbacks, errs = st->errors;
		fill(p, 8);
		CHECK(pol_schedule(p, 8) == 8 && complete(p, 8));
		CHECK(st->fallbacks == fb + 8 && st->errors == errs, "disabled: C decisions, no call");
		/* a reload gives the policy a fresh state and a new chance */
		CHECK(pol_reload(p, TP "heap_garbage.lua", err, sizeof(err)) == G_OK, "%s", err);
		CHECK(st->lua_heap_disabled == 0);
		fb = st->fallbacks;
		ok = 1;
		for (i = 0; i < 300; i++) {
			fill(p, 8);
			ok &= pol_schedule(p, 8) == 8 && complete(p, 8);
		}
		CHECK(ok && st->fallbacks == fb && st->lua_heap_disabled == 0,
		      "garbage is collected, not capped: fallbacks +%llu", (unsigned long long)(st->fallbacks - fb));
		pol_close(p);
	}

	p = (struct pol *)1;
	env.lua_heap_max = 64u << 10;    /* too small to even open the libraries */
	CHECK(pol_open(&p, TP "echo.lua", &env, err, sizeof(err)) != G_OK && p == NULL);
	CHECK_STR_CONTAINS(err, "echo.lua");
	CHECK_STR_CONTAINS(err, "memory");
}

/* Helper threads (the watchdog) block every signal, so SIGINT/SIGHUP/SIGTERM land on the
 * scheduling thread; and the watchdog never sets a hook from its own thread. */
static void test_threads(void)
{
	struct pol *p = open_ok(TP "echo.lua", 64);
	char path[300], line[256];
	int others = 0, blocked = 0;
	DIR *d;
	struct dirent *de;

	usleep(50000);   /* past pthread_create's own startup, which blocks everything briefly */
	d = opendir("/proc/self/task");
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || atoi(de->d_name) == getpid())
			continue;
		others++;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		FILE *f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f)) {
			unsigned long long m;
			if (sscanf(line, "SigBlk: %llx", &m) == 1) {
				unsigned long long want = (1ull << (SIGINT - 1)) | (1ull << (SIGHUP - 1)) |
					(1ull << (SIGTERM - 1)) | (1ull << (SIGPIPE - 1)) | (1ull << (SIGUSR1 - 1));
				blocked += (m & want) == want;
			}
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	CHECK(others >= 1 && blocked == others, "%d helper threads, %d block the signals", others, blocked);
	pol_close(p);
	CHECK(sethook_calls > 0 && sethook_foreign == 0,
	      "lua_sethook: %d calls, %d from another thread than the scheduling one",
	      sethook_calls, sethook_foreign);
}

/* pol_save/pol_restore: the state crosses a restart of the host side (CPU hotplug). */
static void test_save_restore(void)
{
	struct pol *p = open_ok(TP "echo.lua", 64), *q;
	char *buf = NULL, err[1024];
	size_t len = 0;

	if (!p)
		return;
	for (int i = 0; i < 3; i++) {
		fill(p, 8);
		pol_schedule(p, 8);
	}
	CHECK(pol_save(p, &buf, &len, err, sizeof(err)) == G_OK && buf && len > 0, "%s", err);
	pol_close(p);
	q = open_ok(TP "echo.lua", 64);
	if (q) {
		CHECK(pol_restore(q, buf, len, err, sizeof(err)) == G_OK, "%s", err);
		fill(q, 8);
		pol_schedule(q, 8);
		CHECK(pol_out(q)[0].flags == 4, "calls carried over: flags %llu",
		      (unsigned long long)pol_out(q)[0].flags);
		CHECK(pol_lua_top(q) == 0);
		pol_close(q);
	}
	q = open_ok(TP "restore_error.lua", 64);
	if (q) {
		CHECK(pol_restore(q, buf, len, err, sizeof(err)) != G_OK);
		CHECK_STR_CONTAINS(err, "restore failed on purpose");
		CHECK(pol_restore(q, NULL, 0, err, sizeof(err)) == G_OK, "nothing saved: nothing to do");
		pol_close(q);
	}
	free(buf);
}

/* Reload built on another thread: the old policy schedules meanwhile, the swap happens in
 * pol_reload_poll(), a second start while building is refused, a bad build is reported
 * there and changes nothing. */
static void test_reload_async(void)
{
	struct pol *p = open_ok(TP "echo.lua", 64);
	char err[4096];
	int r, batches = 0, turns = 0;

	if (!p)
		return;
	CHECK(pol_reload_poll(p, err, sizeof(err)) == POL_RELOAD_IDLE);
	setenv("GTHULHU_TEST_MODE", "good", 1);
	CHECK(pol_reload_start(p, TP "bad.lua", err, sizeof(err)) == G_OK, "%s", err);
	CHECK(pol_reload_start(p, TP "bad.lua", err, sizeof(err)) == G_ERR_BUSY);
	int lent = 0;
	while ((r = pol_reload_poll(p, err, sizeof(err))) == POL_RELOAD_BUILDING) {
		uint64_t c0 = pol_stats(p)->reload_c_tasks;
		fill(p, 8);
		pol_schedule(p, 8);      /* the old policy (echo: slice 1000 + i) still decides, */
		batches += pol_out(p)[7].slice_ns == 1000;
		/* ... but while its save() runs on the worker, the C decisions */
		if (pol_stats(p)->reload_c_tasks == c0 + 8 && complete(p, 8) &&
		    is_fallback(&pol_out(p)[0], &pol_tasks(p)[0]))
			lent++;
		turns++;
		usleep(1000);
	}
	CHECK(r == G_OK, "swap: %s", err);
	CHECK(strcmp(pol_path(p), TP "bad.lua") == 0);
	fill(p, 8);
	pol_schedule(p, 8);
	CHECK(pol_out(p)[0].vtime == 10 && complete(p, 8), "the new policy decides after the swap");
	CHECK(batches + lent == turns, "%d of %d batches during the build decided by the old "
	      "policy, %d by the C decisions during its save()", batches, turns, lent);
	fprintf(stderr, "test_pol: %d batches by the old policy while the new one was built\n", batches);

	setenv("GTHULHU_TEST_MODE", "raise", 1);
	CHECK(pol_reload_start(p, TP "echo.lua", err, sizeof(err)) == G_OK);
	CHECK(pol_reload_start(p, TP "syntax.lua", err, sizeof(err)) == G_ERR_BUSY);
	while ((r = pol_reload_poll(p, err, sizeof(err))) == POL_RELOAD_BUILDING)
		usleep(1000);
	CHECK(r == G_OK, "%s", err);    /* echo.lua ignores the mode */
	CHECK(pol_reload_start(p, TP "syntax.lua", err, sizeof(err)) == G_OK);
	while ((r = pol_reload_poll(p, err, sizeof(err))) == POL_RELOAD_BUILDING)
		usleep(1000);
	CHECK(r < 0, "a broken build is rejected at the poll");
	CHECK_STR_CONTAINS(err, "syntax.lua:3:");
	CHECK(strcmp(pol_path(p), TP "echo.lua") == 0, "the old policy runs on");
	CHECK(pol_reload_poll(p, err, sizeof(err)) == POL_RELOAD_IDLE);
	/* closing with a build in flight waits for it and throws it away */
	CHECK(pol_reload_start(p, NULL, err, sizeof(err)) == G_OK);
	pol_close(p);
	unsetenv("GTHULHU_TEST_MODE");
}


/* One batch of 8 during a reload of saver.lua: every task decided, either by the old policy
 * (slice 1000 + i, or the strategy's) or, while its save() runs on the worker, by the C
 * decision (counted in reload_c_tasks). Returns 1 for a C-decided batch, 0 for the policy's,
 * -1 for anything else. */
static int saver_batch(struct pol *p)
{
	uint64_t c0 = pol_stats(p)->reload_c_tasks;
	int m;

	fill(p, 8);
	m = pol_schedule(p, 8);
	if (m != 8 || !complete(p, 8))
		return -1;
	if (pol_stats(p)->reload_c_tasks == c0 + 8) {
		for (int i = 0; i < 8; i++)
			if (!is_fallback(&pol_out(p)[i], &pol_tasks(p)[i]))
				return -1;
		return 1;
	}
	return pol_stats(p)->reload_c_tasks == c0 && pol_out(p)[0].flags > 0 ? 0 : -1;
}

/* The old policy's save() runs on the reload worker, not on the scheduling thread: while
 * it runs (held by the gate), the batches go on with the C decisions; strategies pushed
 * meanwhile reach the old policy when it is back; the state it saved reaches the new one;
 * the swap takes no lock and wakes no thread. */
static void test_reload_save_on_worker(void)
{
	struct pol *p = open_ok(TP "saver.lua", 64);
	char err[4096];
	int r, lent = 0, old = 0, bad = 0;
	pid_t me = (pid_t)syscall(SYS_gettid);

	if (!p)
		return;
	for (int i = 0; i < 5; i++)
		CHECK(saver_batch(p) == 0);
	setenv("GTHULHU_SAVE_MODE", "gate", 1);
	__atomic_store_n(&save_gate, 0, __ATOMIC_RELEASE);
	CHECK(pol_reload_start(p, NULL, err, sizeof(err)) == G_OK, "%s", err);
	/* The old policy decides until the worker takes its state; then, the gate shut,
	 * save() cannot return, so every batch is the C decisions (with save() on this thread,
	 * pol_reload_start() would have waited 2 s for the gate, and no batch would be). */
	int pre = 0;             /* the old policy's batches before the worker took its state */
	for (int i = 0; i < 20000 && !lent; i++) {
		r = saver_batch(p);
		lent += r == 1;
		pre += r == 0;
		bad += r < 0;
		if (!lent)
			usleep(100);
	}
	for (int i = 0; i < 5; i++) {
		r = saver_batch(p);
		lent += r == 1;
		bad += r < 0;
	}
	CHECK(lent == 6 && bad == 0, "while save() runs: %d of 6 batches by the C decisions, %d bad",
	      lent, bad);
	/* While the worker holds the state, it says so (the BPF side runs it ahead of
	 * everything then): its own thread id, not the scheduling thread's. */
	CHECK(urgent_tid != 0 && urgent_tid != (uint64_t)me,
	      "urgent_tid is %llu while save() runs on the worker (scheduling thread %d)",
	      (unsigned long long)urgent_tid, (int)me);
	CHECK(pol_reload_poll(p, err, sizeof(err)) == POL_RELOAD_BUILDING);
	struct strat_entry e = { .pid = 103, .priority = false, .execution_time = 7777 };
	CHECK(pol_set_strategies(p, &e, 1) == G_OK, "strategies while lent are kept");
	__atomic_store_n(&save_gate, 1, __ATOMIC_RELEASE);
	/* save() returns, the new state's restore() is held: the old policy decides again */
	unsigned flags_before = 0, flags_new = 0;
	int early_swap = 0, strat_ok = 0, notold = 0;
	for (int turns = 0; turns < 20000 && !old; turns++) {
		early_swap += pol_reload_poll(p, err, sizeof(err)) != POL_RELOAD_BUILDING;
		int k = saver_batch(p);
		if (k == 0) {
			old++;
			flags_before = (unsigned)pol_out(p)[0].flags;
			strat_ok = pol_out(p)[3].slice_ns == 7777;
		}
		lent += k == 1;
		bad += k < 0;
		usleep(200);
	}
	CHECK(old == 1 && !early_swap, "the old policy is back after its save()");
	CHECK(strat_ok, "the old policy got the strategies at reclaim");
	__atomic_store_n(&save_gate, 2, __ATOMIC_RELEASE);
	for (int turns = 0; turns < 20000; turns++) {
		in_swap = 1;
		swap_sync_calls = 0;
		r = pol_reload_poll(p, err, sizeof(err));
		in_swap = 0;
		if (r != POL_RELOAD_BUILDING)
			break;
		int k = saver_batch(p);
		old += k == 0;
		notold += k != 0;
		bad += k < 0;
		usleep(200);
	}
	CHECK(notold == 0, "after reclaim only the old policy decides (%d batches not)", notold);
	CHECK(urgent_tid == 0, "urgent_tid still %llu after save() returned",
	      (unsigned long long)urgent_tid);
	CHECK(r == G_OK, "swap: %s", err);
	CHECK(swap_sync_calls == 0, "the swap took %d locks / wake-ups", swap_sync_calls);
	CHECK(bad == 0, "%d batches not fully decided during the reload", bad);
	CHECK(saver_batch(p) == 0, "the new policy decides after the swap");
	flags_new = (unsigned)pol_out(p)[0].flags;
	uint64_t tid = pol_out(p)[0].vtime - 1;
	CHECK(tid != 0 && tid != (uint64_t)me, "save() ran on thread %llu, the scheduling thread is %d",
	      (unsigned long long)tid, (int)me);
	/* saved when the worker took the state: 5 + pre calls (the old policy's batches after
	 * its save() are not in it) + 1 for this batch */
	CHECK(flags_new == 6u + (unsigned)pre, "calls carried over: %u, want %d (the old policy "
	      "reached %u)", flags_new, 6 + pre, flags_before);
	/* that thread (the reload worker) runs 10 nice levels below the scheduling thread, so
	 * its save() and builds never preempt it (field 19 of /proc/.../stat: nice) */
	char sp[96], sl[1024];
	int nice_w = -100, nice_me = -100;
	for (int k = 0; k < 2; k++) {
		snprintf(sp, sizeof(sp), "/proc/self/task/%llu/stat",
			 k ? (unsigned long long)me : (unsigned long long)tid);
		FILE *sf = fopen(sp, "r");
		if (sf && fgets(sl, sizeof(sl), sf)) {
			const char *q = strrchr(sl, ')');
			int field = 2, v = 0;
			for (; q && *q; q++)
				if (*q == ' ' && ++field == 19) {
					sscanf(q + 1, "%d", &v);
					*(k ? &nice_me : &nice_w) = v;
					break;
				}
		}
		if (sf)
			fclose(sf);
	}
	CHECK(nice_w == (nice_me + 10 > 19 ? 19 : nice_me + 10),
	      "reload worker nice %d, scheduling thread %d", nice_w, nice_me);
	CHECK(pol_out(p)[3].slice_ns == 7777, "the new policy has the strategies");
	const struct pol_reload_cost *c = pol_reload_cost(p);
	CHECK(c->lent_tasks == (uint64_t)lent * 8 && c->lent_tasks == pol_stats(p)->reload_c_tasks,
	      "lent tasks %llu, %d lent batches", (unsigned long long)c->lent_tasks, lent);
	CHECK(c->save_ns > 0 && c->lent_ns > 0 && c->build_ns > 0,
	      "cost: save %llu lent %llu build %llu ns", (unsigned long long)c->save_ns,
	      (unsigned long long)c->lent_ns, (unsigned long long)c->build_ns);
	const struct pol_stats *st = pol_stats(p);
	CHECK(st->reloads == 1 && st->reload_errors == 0 && st->errors == 0 && st->fallbacks == 0);
	fprintf(stderr, "test_pol: reload with a held save(): %d batches by the C decisions, %d by "
		"the old policy after it, save() on thread %llu\n", lent, old, (unsigned long long)tid);

	/* The blocking pol_reload() lends too, and a policy without save() is never lent. */
	unsetenv("GTHULHU_SAVE_MODE");
	CHECK(pol_reload(p, NULL, err, sizeof(err)) == G_OK, "%s", err);
	CHECK(saver_batch(p) == 0 && pol_out(p)[0].flags == flags_new + 1,
	      "blocking reload carries the state: %llu", (unsigned long long)pol_out(p)[0].flags);
	setenv("GTHULHU_TEST_MODE", "good", 1);
	CHECK(pol_reload(p, TP "bad.lua", err, sizeof(err)) == G_OK, "%s", err);
	CHECK(pol_reload_start(p, TP "saver.lua", err, sizeof(err)) == G_OK, "%s", err);
	fill(p, 8);
	uint64_t c0 = pol_stats(p)->reload_c_tasks;
	pol_schedule(p, 8);
	CHECK(pol_stats(p)->reload_c_tasks == c0 && pol_out(p)[0].vtime == 10,
	      "no save(): the old policy decides at once");
	while ((r = pol_reload_poll(p, err, sizeof(err))) == POL_RELOAD_BUILDING)
		usleep(1000);
	CHECK(r == G_OK, "%s", err);
	unsetenv("GTHULHU_TEST_MODE");
	pol_close(p);
}

/* Reload of saver.lua with save() in `mode`: rejected with a message containing `want`,
 * every batch meanwhile fully decided, and the old policy deciding again afterwards. */
static void reload_save_fails(const char *mode, const char *want, unsigned soft_ms)
{
	struct pol *p = open_ok(TP "saver.lua", 64);
	char err[4096] = "";
	int r, bad = 0, lent = 0;

	if (!p)
		return;
	if (soft_ms)
		pol_set_limits(p, soft_ms, 60000);
	for (int i = 0; i < 3; i++)
		saver_batch(p);
	setenv("GTHULHU_SAVE_MODE", mode, 1);
	CHECK(pol_reload_start(p, NULL, err, sizeof(err)) == G_OK, "%s", err);
	for (int turns = 0; turns < 60000; turns++) {
		if ((r = pol_reload_poll(p, err, sizeof(err))) != POL_RELOAD_BUILDING)
			break;
		int k = saver_batch(p);
		bad += k < 0;
		lent += k == 1;
		usleep(500);
	}
	unsetenv("GTHULHU_SAVE_MODE");
	CHECK(r < 0, "save() mode %s: the reload was not rejected", mode);
	CHECK_STR_CONTAINS(err, "save() failed");
	CHECK_STR_CONTAINS(err, want);
	CHECK(bad == 0, "mode %s: %d batches not fully decided", mode, bad);
	CHECK(saver_batch(p) == 0 && pol_out(p)[0].flags >= 4 && pol_out(p)[0].vtime == 1,
	      "mode %s: the old policy runs on", mode);
	const struct pol_stats *st = pol_stats(p);
	CHECK(st->reloads == 0 && st->reload_errors == 1 && st->errors == 0 && st->fallbacks == 0,
	      "mode %s: reloads %llu errors %llu", mode, (unsigned long long)st->reloads,
	      (unsigned long long)st->reload_errors);
	CHECK(pol_lua_top(p) == 0);
	fprintf(stderr, "test_pol: save() %s: rejected; %d batches by the C decisions meanwhile\n",
		mode, lent);
	if (soft_ms)
		CHECK(lent > 0, "save() %s ran %u ms x25 without the scheduling thread waiting", mode,
		      soft_ms);
	pol_close(p);
}

/* A save() that raises, returns what cannot be carried over, or loops: bounded, reported,
 * and the old policy keeps running; one stuck in compiled code ends the process (hard limit
 * x25) while the scheduling thread keeps deciding. */
static void test_reload_save_errors(void)
{
	reload_save_fails("raise", "save failed on purpose", 0);
	reload_save_fails("fn", "cannot be carried over", 0);
	reload_save_fails("loop", "save() exceeded 500 ms (the slow limit", 20);

	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct pol_env env = env_for(64);
		struct pol *p = NULL;
		char err[1024];
		if (pol_open(&p, TP "saver.lua", &env, err, sizeof(err)) != G_OK)
			_exit(100);
		pol_set_limits(p, 4, 12);            /* save(): soft 100 ms, hard 300 ms CPU */
		setenv("GTHULHU_SAVE_MODE", "loop_jit", 1);
		if (pol_reload_start(p, NULL, err, sizeof(err)) != G_OK)
			_exit(102);
		for (;;) {                           /* every task decided until the exit */
			if (saver_batch(p) < 0)
				_exit(103);
			usleep(1000);
		}
	}
	CHECK(pid > 0);
	if (pid <= 0)
		return;
	int status = 0, waited = wait_child(pid, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_POLICY,
	      "save() stuck in compiled code: child status %#x after %d ms", status, waited);
}

/* After building a reload, the worker waits for the scheduling thread to swap it in (its
 * next loop turn: up to the 1 s tick on an idle host). It must sleep meanwhile: its timed
 * wait used a CLOCK_MONOTONIC deadline on a condition variable on CLOCK_REALTIME, so every
 * wait returned at once and the worker spun on a CPU until the swap. */
static void test_reload_worker_sleeps(void)
{
	struct pol *p = open_ok(TP "echo.lua", 64);
	char err[4096];
	struct timespec c0, c1;

	if (!p)
		return;
	CHECK(pol_reload_start(p, NULL, err, sizeof(err)) == G_OK, "%s", err);
	usleep(300000);                       /* the build is done well within this */
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	usleep(300000);                       /* the worker awaits the swap here */
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	double cpu_ms = (double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;
	CHECK(cpu_ms < 60, "the process used %.0f ms of CPU in 300 ms while the reload worker "
	      "waited for the swap: it spins", cpu_ms);
	int r;
	while ((r = pol_reload_poll(p, err, sizeof(err))) == POL_RELOAD_BUILDING)
		usleep(1000);
	CHECK(r == G_OK, "%s", err);
	pol_close(p);
}

/* A task queued twice in one batch (dequeued and enqueued again before the host read its
 * first record: stress-ng's scheduler class does it thousands of times): the earlier record
 * is stale. A policy that decides every record is not wrong: no bad decision, no fallback,
 * and one decision goes out, with the later record's enq_cnt (the earlier one BPF would
 * cancel). In the VM bench this counted 30117 bad decisions, fallbacks and cancels. */
static void test_queued_twin(void)
{
	static const char *modes[] = { "good", "fewer" };

	for (size_t c = 0; c < sizeof(modes) / sizeof(modes[0]); c++) {
		setenv("GTHULHU_TEST_MODE", modes[c], 1);
		struct pol *p = open_ok(TP "bad.lua", MAX_BATCH);
		if (!p)
			continue;
		fill(p, 4);
		struct queued_task_ctx *t = pol_tasks(p);
		t[3].pid = t[1].pid;
		t[3].tgid = t[1].tgid;
		t[3].enq_cnt = t[1].enq_cnt + 1;
		int m = pol_schedule(p, 4);
		const struct dispatched_task_ctx *o = pol_out(p);
		int later = 0, earlier = 0;
		for (int j = 0; j < m && j < 4; j++) {
			later += o[j].pid == t[3].pid && o[j].enq_cnt == t[3].enq_cnt;
			earlier += o[j].pid == t[1].pid && o[j].enq_cnt == t[1].enq_cnt;
		}
		CHECK(m == 3 && later == 1 && earlier == 0, "mode %s: %d decisions, %d for the later "
		      "record, %d for the stale one (want 3, 1, 0)", modes[c], m, later, earlier);
		CHECK(pol_stats(p)->bad_decisions == 0, "mode %s: %llu bad decisions for a task "
		      "queued twice", modes[c], (unsigned long long)pol_stats(p)->bad_decisions);
		/* good: every record decided, no fallback; fewer (the first 2 of 4 decided):
		 * record 2 gets one, the stale record 1 none (its decision went to record 3) */
		uint64_t want_fb = c == 0 ? 0 : 1;
		CHECK(pol_stats(p)->fallbacks == want_fb, "mode %s: %llu fallbacks (want %llu)",
		      modes[c], (unsigned long long)pol_stats(p)->fallbacks,
		      (unsigned long long)want_fb);
		pol_close(p);
	}
	unsetenv("GTHULHU_TEST_MODE");
}

/* The self-test's synthetic tasks (pids 1000..1063) must leave no trace in the state that
 * schedules real tasks: tests/policies/seen.lua gives a pid it decided before a 2 ms slice.
 * At start (pol_selftest, as main.c runs it) and after a reload. */
static void test_selftest_leaves_no_trace(void)
{
	struct pol *p = open_ok(TP "seen.lua", 64);
	char err[4096] = "";

	if (!p)
		return;
	CHECK(pol_selftest(p, err, sizeof(err)) == G_OK, "%s", err);
	fill(p, 1);
	pol_tasks(p)[0].pid = 1000;
	CHECK(pol_schedule(p, 1) == 1 && complete(p, 1));
	CHECK(pol_out(p)[0].slice_ns == 1000000, "pid 1000 was known to the live state after the "
	      "self-test (slice %llu): the synthetic tasks were scheduled on it",
	      (unsigned long long)pol_out(p)[0].slice_ns);
	CHECK(pol_reload(p, NULL, err, sizeof(err)) == G_OK, "%s", err);
	fill(p, 1);
	pol_tasks(p)[0].pid = 1001;
	CHECK(pol_schedule(p, 1) == 1 && complete(p, 1));
	CHECK(pol_out(p)[0].slice_ns == 1000000, "pid 1001 was known to the reloaded state "
	      "(slice %llu): its self-test ran on it", (unsigned long long)pol_out(p)[0].slice_ns);
	pol_close(p);
}

int main(void)
{
	main_thread = pthread_self();
	topo.nr_cpus = NR_CPUS;
	for (int c = 0; c < NR_CPUS; c++) {
		topo.online[c] = 1;
		topo.cpu[c].nr_l2 = 2;
		topo.cpu[c].l2[0] = (uint16_t)(c & ~1);
		topo.cpu[c].l2[1] = (uint16_t)(c | 1);
		topo.cpu[c].nr_l3 = NR_CPUS;
		for (int i = 0; i < NR_CPUS; i++)
			topo.cpu[c].l3[i] = (uint16_t)i;
	}
	idle_map[0] = 0x5;

	test_echo_sizes();
	test_bad_modes();
	test_slice_clamp();
	test_placed();
	test_queued_twin();
	test_open_errors();
	test_runaway();
	test_runaway_hard();
	test_strategies();
	test_reload();
	test_selftest_real();
	test_selftest_leaves_no_trace();
	test_forge();
	test_threads();
	test_save_restore();
	test_reload_async();
	test_reload_worker_sleeps();
	test_reload_save_on_worker();
	test_reload_save_errors();
	test_search_path();
	test_heap_cap();
	return CHECK_DONE();
}
