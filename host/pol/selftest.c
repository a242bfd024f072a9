/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pol/selftest.c - the self-test: two batches of synthetic tasks through a state on the
 * scratch arrays (--check at start, and every reload's new state before its swap).
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "pol_int.h"

/* Two batches of synthetic tasks through state s on the scratch arrays: G_OK if every
 * decision was valid and every task decided, else G_ERR naming what went wrong. Counts
 * nothing in p->stats and leaves the live arrays alone. */
int pol_selftest_state(struct pol *p, struct pol_state *s, const char *path, char *err,
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
		pol_state_schedule(p, s, s->test_ref, &p->scratch, &p->tvs, n, &st, false, msg, sizeof(msg));
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
	rc = pol_state_open(p, &t, p->path, p->lib_dir, err, errlen);
	if (rc != G_OK)
		return rc;
	rc = pol_selftest_state(p, &t, p->path, err, errlen);
	pol_state_close(p, &t);
	return rc;
}
