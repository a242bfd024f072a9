/* SPDX-License-Identifier: GPL-2.0 */
/*
 * stats.h - the counters' line ("stats: ..."): one format for --stats and the API
 * (see stats.c). No state.
 */
#ifndef GTHULHU_STATS_H
#define GTHULHU_STATS_H

#include <stddef.h>
#include "dryrun.h"
#include "loop.h"
#include "pol/pol.h"
#include "sched_bpf.h"

/* The counters of the stats: line (without "stats: "): the dry run's source counters
 * when dry has tasks, else the BPF side's (sch), then the loop's and the policy's. */
void stats_format(const struct loop *lp, const struct pol *pol, const struct dryrun *dry,
		  const struct sched *sch, char *out, size_t len);
/* "stats: " and that line, through the log queue. */
void stats_print(const struct loop *lp, const struct pol *pol, const struct dryrun *dry,
		 const struct sched *sch);

#endif
