/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dryrun.h - `gthulhu-lua --dry-run`: a synthetic task source in place of the BPF side.
 *
 * It plugs into the real run loop as a struct loop_src (loop.h), so everything but the
 * kernel runs for real: the policy, its reloads, strategies, stats, the API. No root, no
 * sched_ext, no BPF.
 *
 * The model (documented in the README, "Without sched_ext"): dryrun.tasks synthetic
 * threads split over the classes of dryrun.mix, one process (tgid) per class; nr_cpus
 * simulated CPUs in wall-clock time. A decision puts its task on the CPU it names (or the
 * CPU that frees up first for RL_CPU_ANY) for min(slice, the class's burst); the task is
 * runnable again when that run ends (plus the class's sleep). Records are handed out no
 * faster than dryrun.rate per second. Every decision is checked like the BPF side does:
 * unknown pid or stale enq_cnt -> nr_cancel_dispatches, CPU out of range ->
 * nr_bounce_dispatches (and the task runs anywhere).
 *
 * Each synthetic process also appears in a private fake /proc tree (PID/comm, PID/stat,
 * PID/cgroup with a v2 line /gthulhu-dryrun/CLASS and a v1-style kubepods line for pod
 * 00000000-0000-4000-8000-00000000000N, N = the class's position in the mix + 1) so that
 * command_regex, cgroup and pod strategies, Gthulhu intents and GET /api/v1/pods/pids
 * resolve in a dry run as on a real host.
 *
 * Ownership: struct dryrun is caller-owned (large: keep it static); dryrun_open() creates
 * the fake /proc tree and the task array, dryrun_close() removes and frees them
 * (NULL-safe, idempotent).
 */
#ifndef GTHULHU_DRYRUN_H
#define GTHULHU_DRYRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "../bpf/intf.h"
#include "cfg.h"
#include "loop.h"

#define DRYRUN_MAX_CLASSES 8

struct dryrun_class {
	const char *name;        /* cpu, io, heavy, light */
	uint64_t weight;         /* 100 = nice 0 */
	uint64_t burst_ns;       /* longest run before it blocks or is preempted; 0 = whole slice */
	uint64_t sleep_ns;       /* sleep after each run (0 = runnable again at once) */
};

struct dryrun_task;

struct dryrun_group {          /* one class of the mix = one synthetic process */
	const struct dryrun_class *cls;
	int32_t tgid;              /* = pid of its first thread */
	int first, nr;             /* tasks[first .. first+nr) */
	uint64_t dispatched, prio, slice_sum;   /* decisions applied to it */
};

struct dryrun {
	int nr_cpus;
	uint64_t rate;             /* records per second */
	uint64_t slice_ns_default;
	uint64_t duration_ns;      /* 0 = until a signal */
	uint64_t t0, tokens_at;    /* start; token bucket: time the bucket was last filled */
	double tokens;
	int burst;                 /* bucket size */
	struct dryrun_task *tasks;
	int nr_tasks;
	int cursor;                /* round-robin start of the next scan */
	struct dryrun_group grp[DRYRUN_MAX_CLASSES];
	int nr_groups;
	uint64_t busy_until[MAX_CPUS];
	volatile uint64_t idle[MAX_CPUS / 64];
	char proc_root[256];       /* fake /proc ("" when none) */
	int holding;
	/* the counters of the stats line that a dry run has */
	uint64_t nr_queued, nr_custody, nr_user_dispatches, nr_cancel_dispatches,
		 nr_bounce_dispatches;
};

/* Set up from cfg (dryrun.* keys, scheduler.slice_ns_default) for nr_cpus CPUs.
 * A bad dryrun.mix: G_ERR_PARSE, the message names the key and the bad part. */
int dryrun_open(struct dryrun *d, const struct cfg *c, int nr_cpus, char *err, size_t errlen);
void dryrun_close(struct dryrun *d);

/* Fill *src with the synthetic source's callbacks (ctx = d). */
void dryrun_src(struct dryrun *d, struct loop_src *src);

/* The fake /proc root that strategies are resolved against. */
const char *dryrun_proc_root(const struct dryrun *d);
/* Idle-CPU bitmap the policy reads (MAX_CPUS/64 words), updated once per batch. */
volatile uint64_t *dryrun_idle_mask(struct dryrun *d);
/* dryrun.duration_s has passed. */
bool dryrun_done(const struct dryrun *d);

/* The same keys, in the same order, as sched_format_stats() of the live scheduler. */
int dryrun_format_stats(const struct dryrun *d, char *buf, size_t len);
/* One line per synthetic process: pids, comm, decisions, priority ones, mean slice. */
void dryrun_print_layout(const struct dryrun *d, FILE *out);
void dryrun_print_summary(const struct dryrun *d, FILE *out);

#endif
