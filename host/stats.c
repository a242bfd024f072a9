/* SPDX-License-Identifier: GPL-2.0 */
/*
 * stats.c - the counters' line: the task source's counters (the BPF side's or the dry
 * run's), then the loop's and the policy's, as KEY=VALUE words. --stats prints it through
 * the log queue once every SEC seconds and at exit; the API serves the same line.
 */
#include <stdio.h>
#include "common.h"
#include "log.h"
#include "stats.h"

void stats_format(const struct loop *lp, const struct pol *pol, const struct dryrun *dry,
		  const struct sched *sch, char *out, size_t len)
{
	const struct pol_stats *ps = pol_stats(pol);
	char line[1024];

	if (dry && dry->tasks)
		dryrun_format_stats(dry, line, sizeof(line));
	else
		sched_format_stats(sch, line, sizeof(line));
	snprintf(out, len, "%s nr_batches=%llu nr_tasks=%llu max_batch=%llu nr_policy_errors=%llu "
		 "nr_policy_fallbacks=%llu nr_bad_decisions=%llu nr_slices_clamped=%llu nr_reloads=%llu "
		 "nr_lua_heap_hits=%llu lua_heap_off=%llu nr_reload_c_tasks=%llu nr_log_dropped=%llu",
		 line, (unsigned long long)lp->st.batches, (unsigned long long)lp->st.tasks,
		 (unsigned long long)lp->st.max_batch, (unsigned long long)ps->errors,
		 (unsigned long long)ps->fallbacks, (unsigned long long)ps->bad_decisions,
		 (unsigned long long)ps->slices_clamped, (unsigned long long)ps->reloads,
		 (unsigned long long)ps->lua_heap_hits, (unsigned long long)ps->lua_heap_disabled,
		 (unsigned long long)ps->reload_c_tasks, (unsigned long long)log_dropped());
}

void stats_print(const struct loop *lp, const struct pol *pol, const struct dryrun *dry,
		 const struct sched *sch)
{
	char line[2048];

	stats_format(lp, pol, dry, sch, line, sizeof(line));
	/* Through the log queue: a full or closed stdout never holds the scheduler up. */
	g_printf("stats: %s\n", line);
}
