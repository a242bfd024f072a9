/* SPDX-License-Identifier: GPL-2.0 */
/*
 * replay.c - `gthulhu-lua replay [--max-diffs N] FILE POLICY.lua`: feed a recorded queued
 * stream open-loop to a policy, batch by batch, through the same host loop (a loop_src
 * over the record file) and Lua bridge, with g.now() reading the recorded timestamps and
 * the idle bitmap the recorded policy saw. Reports, per field, how many decisions differ
 * from the recorded ones, whether the vtime order within batches agrees, the first
 * differences, and the new policy's measured cost per task. A new decision is compared
 * with the recorded one for the same record (the file's task indexes, pol_out_task()),
 * never by position: records without a decision (placed, stale) and the policy's own
 * order would shift a positional pairing.
 *
 * Open loop: the new policy's decisions do not change what happens next (the recorded
 * tasks still arrive as they did), so this compares decisions, not outcomes; `simulate`
 * compares outcomes.
 *
 * Exit codes: 0 ok (differences are results, not errors), 2 usage, 4 the policy does not
 * load or raised, 11 the file is truncated or corrupt (what was read before is reported).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "loop.h"
#include "pol/pol.h"
#include "rec.h"
#include "../sim/sim.h"

struct replay {
	struct rec_reader *r;
	struct rec_batch b;              /* the recorded batch and its decisions */
	uint64_t clock;
	uint64_t idle[MAX_CPUS / 64];
	int err_rc;
	char err[1024];
	uint64_t t0, cost_ns;
	int32_t *rec_of;                 /* per record of the batch: its recorded decision, or -1 */
	/* results */
	uint64_t batches, records, tasks, rec_tasks, same, d_cpu, d_vtime, d_slice, d_flags;
	uint64_t rec_only, new_only;
	uint64_t pairs, pairs_agree;
	int max_diffs, shown;
	double *key;
	int *ord;
};

static int rp_recv(void *ctx, struct queued_task_ctx *buf, int max)
{
	struct replay *p = ctx;
	int rc;

	if (p->err_rc)
		return 0;
	rc = rec_reader_next(p->r, &p->b, p->err, sizeof(p->err));
	if (rc < 0) {
		p->err_rc = SIM_EXIT_BADREC;
		return 0;
	}
	if (rc == 0)
		return 0;
	if (p->b.n > max) {   /* cannot happen: the loop takes MAX_BATCH */
		p->b.n = max;
		p->b.m = 0;
	}
	p->clock = p->b.ts;
	memcpy(buf, p->b.t, (size_t)p->b.n * sizeof(*buf));
	return p->b.n;
}

static void rp_holding(void *ctx, int n)
{
	struct replay *p = ctx;
	if (n)
		p->t0 = g_now_ns();
}

static int cmp_ord(const void *a, const void *b, void *k)
{
	const double *key = k;
	double x = key[*(const int *)a], y = key[*(const int *)b];
	return x < y ? -1 : x > y ? 1 : *(const int *)a - *(const int *)b;
}

static void diff_line(struct replay *p, const struct queued_task_ctx *t,
		      const struct dispatched_task_ctx *o, const struct dispatched_task_ctx *d)
{
	printf("  batch %llu t=%.6f s pid %d (%.16s):", (unsigned long long)p->b.seq,
	       p->b.ts / 1e9, d->pid, t->comm);
	if (o->cpu != d->cpu) {
		char a[16], b[16];
		snprintf(a, sizeof(a), o->cpu == RL_CPU_ANY ? "any" : "%d", o->cpu);
		snprintf(b, sizeof(b), d->cpu == RL_CPU_ANY ? "any" : "%d", d->cpu);
		printf(" cpu %s -> %s;", a, b);
	}
	if (o->vtime != d->vtime)
		printf(" vtime %llu -> %llu;", (unsigned long long)o->vtime, (unsigned long long)d->vtime);
	if (o->slice_ns != d->slice_ns)
		printf(" slice %llu -> %llu;", (unsigned long long)o->slice_ns,
		       (unsigned long long)d->slice_ns);
	if (o->flags != d->flags)
		printf(" flags %#llx -> %#llx;", (unsigned long long)o->flags,
		       (unsigned long long)d->flags);
	printf("\n");
}

/* The loop's record hook: the new policy's decisions d[0..m) for the batch it was given
 * (the recorded records t[0..n)), d[j] for t[task[j]], each compared with the recorded
 * decision for the same record. */
static void rp_compare(void *ctx, const struct queued_task_ctx *t, int n,
		       const struct dispatched_task_ctx *d, const uint16_t *task, int m)
{
	struct replay *p = ctx;
	int k = 0, matched = 0;

	p->cost_ns += g_now_ns() - p->t0;
	p->batches++;
	p->records += (uint64_t)n;
	p->tasks += (uint64_t)m;
	p->rec_tasks += (uint64_t)p->b.m;
	for (int i = 0; i < n; i++)
		p->rec_of[i] = -1;
	for (int j = 0; j < p->b.m; j++)
		p->rec_of[p->b.task[j]] = j;
	for (int i = 0; i < m; i++) {
		int j = p->rec_of[task[i]];
		if (j < 0) {   /* the recording has no decision for this record */
			p->new_only++;
			continue;
		}
		matched++;
		const struct dispatched_task_ctx *o = &p->b.d[j];
		bool dc = o->cpu != d[i].cpu, dv = o->vtime != d[i].vtime;
		bool ds = o->slice_ns != d[i].slice_ns, df = o->flags != d[i].flags;
		p->d_cpu += dc;
		p->d_vtime += dv;
		p->d_slice += ds;
		p->d_flags += df;
		if (!dc && !dv && !ds && !df)
			p->same++;
		else if (p->shown < p->max_diffs) {
			if (!p->shown)
				printf("first differences (recorded -> %s):\n", "replayed");
			diff_line(p, &t[task[i]], o, &d[i]);
			p->shown++;
		}
		/* vtime order: recorded order of this batch, then is the new order the same for
		 * neighbours in it? */
		p->key[k] = (double)o->vtime;
		p->key[MAX_BATCH + k] = (double)d[i].vtime;
		p->ord[k] = k;
		k++;
	}
	p->rec_only += (uint64_t)(p->b.m - matched);
	qsort_r(p->ord, (size_t)k, sizeof(int), cmp_ord, p->key);
	for (int j = 0; j + 1 < k; j++) {
		double a = p->key[MAX_BATCH + p->ord[j]], b = p->key[MAX_BATCH + p->ord[j + 1]];
		if (p->key[p->ord[j]] == p->key[p->ord[j + 1]])
			continue;   /* a tie in the recording says nothing about order */
		p->pairs++;
		p->pairs_agree += a <= b;
	}
}

static int rp_send(void *ctx, const struct dispatched_task_ctx *d, int n) { return n; }

static int rp_wait(void *ctx, int timeout_ms) { return 0; }

static void usage(FILE *f)
{
	fprintf(f, "Usage: gthulhu-lua replay [--max-diffs N] FILE POLICY.lua\n"
		"\n"
		"Feed a record file (gthulhu-lua --record FILE, or simulate --record FILE) to a\n"
		"policy, open loop, and report where its decisions differ from the recorded ones and\n"
		"what it costs per task. Exit codes: 0 ok, 2 usage, 4 policy error, 11 truncated or\n"
		"corrupt record file.\n");
}

int rec_replay_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "max-diffs", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct replay p;
	struct pol_env env;
	struct pol *pol = NULL;
	struct loop_src src;
	struct loop lp;
	const struct rec_info *ri;
	char err[4096];
	int c, rc = 0;

	memset(&p, 0, sizeof(p));
	p.max_diffs = 10;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'm': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 1000000) {
				g_err("replay: --max-diffs %s: expected a count in [0, 1000000]", optarg);
				return EXIT_USAGE;
			}
			p.max_diffs = (int)v;
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		g_err("replay: needs a record file and a policy; try 'gthulhu-lua replay --help'");
		return EXIT_USAGE;
	}
	p.r = rec_reader_open(argv[optind], err, sizeof(err));
	if (!p.r) {
		g_err("replay: %s", err);
		return SIM_EXIT_BADREC;
	}
	ri = rec_reader_info(p.r);
	p.b.t = calloc(MAX_BATCH, sizeof(*p.b.t));
	p.b.d = calloc(MAX_BATCH, sizeof(*p.b.d));
	p.b.task = calloc(MAX_BATCH, sizeof(*p.b.task));
	p.b.idle = p.idle;
	p.rec_of = calloc(MAX_BATCH, sizeof(*p.rec_of));
	p.key = calloc(2 * MAX_BATCH, sizeof(*p.key));
	p.ord = calloc(MAX_BATCH, sizeof(*p.ord));
	if (!p.b.t || !p.b.d || !p.b.task || !p.rec_of || !p.key || !p.ord) {
		g_err("replay: out of memory");
		rc = EXIT_FAILURE;
		goto out;
	}
	memset(&env, 0, sizeof(env));
	env.nr_cpus = (int)ri->nr_cpus;
	env.slice_ns_default = ri->slice_ns_default;
	env.slice_ns_min = ri->slice_ns_min;
	/* The host clamps slices to the watchdog's bound before they are recorded; the file
	 * does not carry the watchdog, so replay clamps as a default live run (1 s). */
	env.slice_ns_max = bounds_slice_max_ns(0);
	env.batch_max = MAX_BATCH;
	env.topo = NULL;          /* not recorded: every CPU its own L2/L3 */
	env.idle = p.idle;
	env.clock = &p.clock;
	p.clock = ri->created;
	if (pol_open(&pol, argv[optind + 1], &env, err, sizeof(err))) {
		g_err("%s", err);
		rc = EXIT_POLICY;
		goto out;
	}
	pol_set_limits(pol, 5000, 20000);   /* as simulate: wall-clock limits, kept wide */
	printf("replay %s (%s, recorded with %s, %u CPUs) against %s\n", argv[optind],
	       ri->source, ri->policy, ri->nr_cpus, argv[optind + 1]);
	memset(&src, 0, sizeof(src));
	src.ctx = &p;
	src.recv = rp_recv;
	src.send = rp_send;
	src.wait = rp_wait;
	src.holding = rp_holding;
	loop_init(&lp, pol, &src, MAX_BATCH, NULL);
	lp.rec.ctx = &p;
	lp.rec.batch = rp_compare;
	while (loop_step(&lp, 0) > 0)
		;
	const struct pol_stats *ps = pol_stats(pol);
	printf("batches %llu, records %llu, decisions %llu: identical %llu (%.2f%%); cpu differs "
	       "%llu, vtime %llu, slice %llu, flags %llu; not matched %llu (recorded only %llu, "
	       "replayed only %llu)\n", (unsigned long long)p.batches,
	       (unsigned long long)p.records, (unsigned long long)p.tasks,
	       (unsigned long long)p.same, p.tasks ? 100.0 * p.same / p.tasks : 100.0,
	       (unsigned long long)p.d_cpu, (unsigned long long)p.d_vtime,
	       (unsigned long long)p.d_slice, (unsigned long long)p.d_flags,
	       (unsigned long long)(p.rec_only + p.new_only), (unsigned long long)p.rec_only,
	       (unsigned long long)p.new_only);
	printf("vtime order within batches: %.2f%% of %llu neighbour pairs agree\n",
	       p.pairs ? 100.0 * p.pairs_agree / p.pairs : 100.0, (unsigned long long)p.pairs);
	printf("policy errors %llu, fallbacks %llu\n", (unsigned long long)ps->errors,
	       (unsigned long long)ps->fallbacks);
	fflush(stdout);
	fprintf(stderr, "gthulhu-lua: replay: policy %.1f ns/task (measured, %llu batches)\n",
		p.records ? (double)p.cost_ns / p.records : 0, (unsigned long long)p.batches);
	if (p.err_rc) {
		g_err("replay: %s", p.err);
		rc = p.err_rc;
	} else if (ps->errors) {
		rc = EXIT_POLICY;
	}
out:
	pol_close(pol);
	rec_reader_close(p.r);
	free(p.b.t);
	free(p.b.d);
	free(p.b.task);
	free(p.rec_of);
	free(p.key);
	free(p.ord);
	return rc;
}
