/* SPDX-License-Identifier: GPL-2.0 */
/*
 * run.h - the run loop (run.c): the host's state, the epoll set that the scheduling
 * thread waits on, and one attach-run-detach cycle.
 *
 * Ownership: g_host is one static instance (run.c); main.c fills it at startup (config,
 * topology, strategies, dry run, API, recorder) and tears it down; run_once() opens and
 * closes the BPF side and the policy each cycle. run_open() must be called before any
 * thread exists (the signal mask is inherited); run_close() is idempotent.
 */
#ifndef GTHULHU_RUN_H
#define GTHULHU_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include "cfg.h"
#include "api/api.h"
#include "dryrun.h"
#include "loop.h"
#include "pol/pol.h"
#include "sched_bpf.h"
#include "strat.h"
#include "topo.h"
#include "watch.h"
#include "rec/rec.h"

/* The command line (main.c parses it). */
struct opts {
	const char *cfg_file;
	const char *policy;
	bool check;
	bool dry_run;
	int stats_sec;      /* 0 = no stats */
	const char *record; /* --record FILE */
};

/* Large, fixed-size state: static, so it is never on the stack and never allocated. */
struct host {
	struct cfg cfg;
	struct topo topo;
	struct strat strat;
	struct dryrun dry;          /* --dry-run: synthetic tasks in place of the BPF side */
	struct api *api;            /* HTTP API / decision-maker client, NULL when off */
	struct rec_writer *recw;    /* --record FILE (host/rec), or NULL */
};
extern struct host g_host;

/* The policy's environment from g_host (idle: the idle-CPU mask, or NULL). */
void run_pol_env(struct pol_env *env, volatile uint64_t *idle);
/* Re-resolve the strategies (or force it) and hand them to the policy and the API. */
void run_push_strategies(struct pol *pol, bool force);

/* Block the signals the loop reads and build the epoll set; run_close() undoes it. */
int run_open(char *err, size_t errlen);
void run_close(void);
/* SIGINT/SIGTERM was read. */
bool run_stopping(void);

/* One attach-run-detach cycle. Sets *restart when the kernel asks for a restart; then the
 * policy's save() is in *carry (malloc'd) for the next cycle's restore(). */
int run_once(const struct opts *o, const char *policy, bool *restart, char **carry,
	     size_t *carry_len);

#endif
