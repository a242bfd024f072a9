/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sim.h - the simulator: a deterministic discrete-event model of the kernel side
 * (bpf/main.bpf.c on a sched_ext kernel) that plugs into the same host loop (loop.h, as a
 * struct loop_src) and the same Lua bridge (pol.c) as a live run.
 *
 *   sim_wl.c      workload files (YAML; rt-app JSON import) -> struct sim_wl
 *   sim_model.c   the event model: CPUs, tasks, DSQs, slices, the host as batch latency
 *   sim_report.c  metrics -> table, JSON, SVG, Chrome/Perfetto trace
 *   sim_main.c    `gthulhu-lua simulate`
 *
 * Virtual time (ns) runs the machine; the policy reads it through pol_env.clock. The
 * policy's real CPU cost is measured too, but kept out of the deterministic output unless
 * asked for (--measure).
 *
 * Ownership: sim_wl_load() fills a caller-owned struct sim_wl whose arrays sim_wl_free()
 * frees (NULL-safe). sim_open() returns a struct sim the caller frees with sim_close();
 * it borrows the workload and the pol, which must outlive it.
 */
#ifndef GTHULHU_SIM_H
#define GTHULHU_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "../../bpf/intf.h"
#include "../../bpf/bounds.bpf.h"
#include "../loop.h"
#include "../pol/pol.h"
#include "../topo.h"

/* Exit codes of `simulate` / `replay` beyond common.h's (documented in README). */
enum {
	SIM_EXIT_STALL = 10,     /* a runnable task was not run within the watchdog timeout */
	SIM_EXIT_BADREC = 11,    /* replay: the record file is truncated or corrupt */
};

/* Enqueue flags in queued_task_ctx.flags (the kernel's values). */
#define SIM_ENQ_WAKEUP  0x1ULL

/* ---- workload ---------------------------------------------------------------------- */
enum sim_op_kind {
	OP_RUN,       /* lo..hi ns of CPU work (hi = ~0: forever) */
	OP_SLEEP,     /* lo..hi ns */
	OP_PERIOD,    /* wait for the next multiple of lo since the task started */
	OP_WAIT,      /* take a token from channel chan (block until there is one) */
	OP_SIGNAL,    /* put lo tokens on channel chan, waking waiters (blocks while it is full) */
	OP_FORK,      /* start a task running group arg's program */
	OP_LOOP,      /* lo iterations (0 = forever) of ops up to arg (its OP_END) */
	OP_END,       /* end of the loop starting at arg */
	OP_EXIT,
};

struct sim_op {
	uint8_t kind;
	int32_t arg;         /* OP_FORK: group; OP_LOOP: index of its OP_END; OP_END: of OP_LOOP */
	int32_t chan;        /* OP_WAIT/OP_SIGNAL: first channel id */
	int32_t chan_n;      /* 1, or the instance count for "{i}" channels (id = chan + i % n) */
	uint64_t lo, hi;
	int line;            /* workload line, for messages */
};

enum { SIM_KT_NONE, SIM_KT_PERCPU, SIM_KT_SHARED };

struct sim_group {
	char name[64];
	char comm[16];
	int count;            /* tasks started at `start` (0: a template for fork only) */
	uint64_t weight;      /* 100 = nice 0 */
	int nice;
	int kthread;          /* SIM_KT_*: kept in the kernel, as the BPF side does */
	uint64_t *aff;        /* allowed CPUs, MAX_CPUS bits */
	int nr_allowed;
	uint64_t start_lo, start_hi;
	int op0, nops;        /* program: ops[op0 .. op0 + nops) */
	int line;
	bool periodic;        /* has an OP_PERIOD (missed periods are reported) */
	bool slack_set;       /* timer_slack given for the group (else the workload's) */
	uint64_t timer_slack_ns;   /* its tasks' timer slack (sim_wl_finish resolves it) */
};

struct sim_strat {
	int group;
	bool priority;
	uint64_t execution_time;
};

struct sim_wl {
	char file[512];
	char name[64];
	uint64_t seed;
	uint64_t duration_ns;
	int nr_cpus, smt, llc;
	int hz;
	uint64_t timer_slack_ns;  /* top-level timer_slack: the default of every group and the
				   * host's (0 = exact wake-ups; the kernel's default 50 us) */
	uint64_t slice_ns_default, slice_ns_min;
	int batch_max;
	uint64_t stall_timeout_ns;
	uint32_t watchdog_ms;          /* scheduler.watchdog_timeout_ms as given: 0 = the kernel's */
	uint64_t watchdog_timeout_ns;  /* the one in force (sim_wl_finish) */
	bool early_processing;
	uint64_t host_batch_ns, host_task_ns, host_wake_ns;
	bool host_measured;   /* latency = measured real cost * host_scale (not deterministic) */
	double host_scale;
	struct sim_group *groups;
	int ngroups;
	struct sim_op *ops;
	int nops, ops_cap;
	int nchans;
	struct sim_strat *strat;
	int nstrat;
	char (*chan_names)[64];  /* nchans names, for messages */
	int *chan_size;          /* per id: the size of the block starting there (0 inside) */
	uint64_t *chan_cap;      /* per id: tokens it holds before signal blocks; 0 = no limit */
};

/* Load a workload (.yaml/.yml, or rt-app .json). Errors: "FILE:LINE: FIELD: what". */
int sim_wl_load(struct sim_wl *w, const char *path, char *err, size_t errlen);
int sim_wl_load_rtapp(struct sim_wl *w, const char *path, char *err, size_t errlen);
void sim_wl_free(struct sim_wl *w);
/* Nice (-20..19) -> weight (100 = nice 0), the kernel's table scaled as sched_ext does. */
uint64_t sim_nice_weight(int nice);
/* "10ms", "1.5us", "3s", "250ns", or a number of ns. G_OK or G_ERR. */
int sim_parse_duration(const char *s, uint64_t *ns);
/* The kernel's default timer slack (init_task.timer_slack_ns) and the loader's limit. */
#define SIM_SLACK_DEFAULT_NS 50000ull
#define SIM_SLACK_MAX_NS 1000000000ull
/* Add an op (grows the array). Returns its index or -1. */
int sim_wl_add_op(struct sim_wl *w, const struct sim_op *op);
/* Channel id for a name: a block of n ids when new; *size gets the block's size (an
 * existing name keeps the size it was created with). -1 when out of memory. */
int sim_wl_chan(struct sim_wl *w, const char *name, int n, int *size);
/* Fill defaults. */
void sim_wl_defaults(struct sim_wl *w);
/* Checks shared by both loaders (after parsing). */
int sim_wl_finish(struct sim_wl *w, char *err, size_t errlen);

/* ---- metrics ------------------------------------------------------------------------ */
/* Log-linear latency histogram: 16 sub-buckets per power of two (<= 6.25% error). */
#define SIM_H_SUB 16
#define SIM_H_EXP 42
#define SIM_H_N (SIM_H_SUB * SIM_H_EXP)
struct sim_hist {
	uint64_t n, max, sum;
	uint32_t b[SIM_H_N];
};
void sim_hist_add(struct sim_hist *h, uint64_t v);
void sim_hist_merge(struct sim_hist *dst, const struct sim_hist *src);
uint64_t sim_hist_pct(const struct sim_hist *h, double q);   /* q in [0,1] */

struct sim_task_stats {
	uint64_t cpu_ns, work_ns, bursts, wakeups, csw, migrations, missed, periods;
	uint64_t preempted;   /* involuntary switches */
	uint64_t exit_ns;     /* when the task exited (virtual), 0 = still alive at the end */
	uint64_t wait_max;    /* longest stretch runnable without running (what the watchdog sees) */
};

/* ---- the model ---------------------------------------------------------------------- */
struct sim;

struct sim_counters {     /* the BPF side's stats, same names */
	uint64_t nr_user_dispatches, nr_kernel_dispatches, nr_cancel_dispatches;
	uint64_t nr_bounce_dispatches, nr_sched_congested, nr_rescued, nr_kept;
	uint64_t nr_slice_clamped, nr_keep_bounded, nr_prio_throttled, nr_resumed;
	uint64_t nr_placed, nr_placed_untold, nr_starved;
	uint64_t nr_sync_wakeups;  /* fast-path wake-ups placed on a sync waker's CPU (or its idle sibling) */
	uint64_t nr_fast_queued;   /* fast-path wake-ups with no idle CPU queued in BPF (RL_DISP_FAST_QUEUE) */
	uint64_t nr_host_stalls;   /* times the stalled-host mode was entered */
	uint64_t nr_batches, nr_tasks, max_batch, nr_events, nr_preempt;
	uint64_t nr_decisions;     /* decisions the host sent (records get none when placed
				    * or stale); the policy's fallbacks are a share of these */
	uint64_t host_busy_ns;
	uint64_t host_cpu_ns;  /* time the host's thread held a CPU */
	uint64_t cost_ns;      /* measured real time in pol_schedule (+validation) */
};

struct sim_trace;          /* sim_report.c */

/* Build the machine for w (topology, tasks at their start times), seed `seed`. */
int sim_open(struct sim **out, const struct sim_wl *w, uint64_t seed, char *err, size_t errlen);
void sim_close(struct sim *s);
/* What the pol needs: nr_cpus, topo, idle bitmap, clock. */
void sim_pol_env(struct sim *s, struct pol_env *env);
/* Strategy list resolved to pids (for pol_set_strategies); returns the count. */
int sim_strategies(struct sim *s, struct strat_entry *out, int max);
/* Run to the workload's duration with pol (through loop_step). rec_batch/rec_ctx: an
 * optional record hook. Returns G_OK, or SIM_EXIT_STALL (message in err). */
int sim_run(struct sim *s, struct pol *pol, struct sim_trace *tr, loop_rec_fn *rec_batch,
	    void *rec_ctx, char *err, size_t errlen);
const volatile uint64_t *sim_clock(struct sim *s);

/* Results, read after sim_run. */
int sim_nr_tasks(const struct sim *s);
const char *sim_task_comm(const struct sim *s, int i);
int sim_task_pid(const struct sim *s, int i);
int sim_task_group(const struct sim *s, int i);
uint64_t sim_task_weight(const struct sim *s, int i);
const struct sim_task_stats *sim_task_stats(const struct sim *s, int i);
const struct sim_hist *sim_task_hist(const struct sim *s, int i);
const struct sim_counters *sim_counters(const struct sim *s);
uint64_t sim_elapsed(const struct sim *s);

/* ---- reports ------------------------------------------------------------------------ */
struct sim_result;        /* one policy's summarized run */
struct sim_result *sim_result_new(const struct sim *s, const struct sim_wl *w,
				  const char *policy, const struct pol_stats *ps,
				  int exit_code, const char *exit_msg);
void sim_result_free(struct sim_result *r);
/* A run where at least this share of the decisions fell back to the built-in one (the
 * policy's were rejected, or it raised) is flagged: a warning on stderr, a marker in the
 * table. Below it, the fallbacks count of the summary line tells. */
#define SIM_FALLBACK_WARN 0.01
/* The share of r's decisions that were the built-in fallback, not the policy's. */
double sim_result_fallback_share(const struct sim_result *r);
/* "P% of its decisions (F of D) fell back to the built-in one" into buf. */
void sim_result_fallback_text(const struct sim_result *r, char *buf, size_t len);
void sim_report_table(FILE *f, const struct sim_wl *w, struct sim_result **r, int n,
		      bool measured);
void sim_report_json(FILE *f, const struct sim_wl *w, struct sim_result **r, int n,
		     bool measured);
int sim_report_svg(const char *path, const struct sim_wl *w, struct sim_result **r, int n,
		   char *err, size_t errlen);

/* Chrome/Perfetto trace (JSON array format), written while the simulation runs. */
struct sim_trace *sim_trace_open(const char *path, char *err, size_t errlen);
void sim_trace_begin_policy(struct sim_trace *t, int idx, const char *policy, int nr_cpus);
void sim_trace_slice(struct sim_trace *t, int cpu, uint64_t start, uint64_t end,
		     const char *comm, int pid);
int sim_trace_close(struct sim_trace *t);   /* NULL-safe; G_ERR on a write error */

/* `gthulhu-lua simulate ...` (argv[0] = "simulate"). Returns the process exit code. */
int sim_main(int argc, char **argv);

#endif
