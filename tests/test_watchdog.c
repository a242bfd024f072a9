/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test_watchdog.c - the policy watchdog's arithmetic when the watchdog thread itself was
 * kept from running (host/pol/watchdog.c). It times a call in CPU time from its last sample
 * of the scheduling thread's CPU clock before it saw the call. A watchdog thread that got
 * no CPU for a while (a loaded machine, real-time tasks, or a scheduler that runs the
 * host's helper threads like any task) has an old sample: everything the scheduling thread
 * ran since, outside the call, was charged to it, and a call of a few ms was cut as over
 * the limit. A call cannot have used more CPU than the wall time since it began.
 *
 * The starvation is made exact: the test holds the watchdog's lock while the scheduling
 * thread burns 300 ms of CPU outside any call, and the policy (tests/policies/starved_wd.lua)
 * releases it from inside its call, which then blocks 60 ms: under the 100 ms soft limit.
 * Run from the repository root.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "common.h"
#include "pol/pol.h"
#include "pol/pol_int.h"

int g_verbose;

static struct pol *cur;
static int armed;

/* Called by the policy through the FFI (the binary exports its symbols: -rdynamic). */
int test_wd_armed(void);
void test_wd_release(void);

int test_wd_armed(void)
{
	return armed;
}

void test_wd_release(void)
{
	if (armed) {
		armed = 0;
		pthread_mutex_unlock(&cur->wd_lock);
	}
}

static uint64_t thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fill(struct pol *p, int n)
{
	struct queued_task_ctx *t = pol_tasks(p);

	for (int i = 0; i < n; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].pid = 100 + i;
		t[i].tgid = 100 + i;
		t[i].nr_cpus_allowed = 4;
		t[i].weight = 100;
		t[i].enq_cnt = 7 + (uint64_t)i;
	}
}

int main(void)
{
	struct pol_env env = { .nr_cpus = 4, .slice_ns_default = 20000000, .slice_ns_min = 1000000,
			       .batch_max = 64, .lib_dir = "policies/lib" };
	char err[2048];
	struct timespec nap = { 0, 100 * 1000000L };

	if (pol_open(&cur, "tests/policies/starved_wd.lua", &env, err, sizeof(err))) {
		CHECK(0, "open: %s", err);
		return CHECK_DONE();
	}
	pol_set_limits(cur, 100, 5000);
	/* Past the warm-up calls (they get the slow limits), and let the watchdog sample the
	 * scheduling thread's clock. */
	for (unsigned i = 0; i <= POL_WARM_CALLS + 1; i++) {
		fill(cur, 8);
		pol_schedule(cur, 8);
	}
	CHECK(pol_stats(cur)->errors == 0, "warm-up: %s", pol_last_error(cur));
	nanosleep(&nap, NULL);

	for (int round = 0; round < 3; round++) {
		uint64_t t0, errors = pol_stats(cur)->errors;

		pthread_mutex_lock(&cur->wd_lock);     /* the watchdog cannot tick now */
		t0 = thread_cpu_ms();
		while (thread_cpu_ms() - t0 < 300)    /* 300 ms of CPU outside any call */
			;
		armed = 1;
		fill(cur, 8);
		CHECK(pol_schedule(cur, 8) == 8, "round %d: a decision per task", round);
		CHECK(!armed, "round %d: the policy did not release the watchdog", round);
		CHECK(pol_stats(cur)->errors == errors,
		      "round %d: a call of 60 ms wall time (~0 CPU) was cut as over the 100 ms CPU "
		      "limit after the watchdog thread missed 300 ms: %s", round, pol_last_error(cur));
		nanosleep(&nap, NULL);
	}
	/* The limit still works: a real runaway is cut (tests/test_pol.c covers the rest). */
	pol_close(cur);
	return CHECK_DONE();
}
