/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sim_report.c - what a simulation run measured, and how it is shown: a table, JSON
 * (schema in README), an SVG (latency CDFs and CPU shares, every policy side by side,
 * written by hand) and a Chrome/Perfetto trace. Everything printed by default comes from
 * virtual time, so the same workload and seed give byte-identical output; the measured
 * real cost of the policy appears only with `measured` (--measure).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "sim.h"

/* ---- histogram --------------------------------------------------------------------- */
static int hbucket(uint64_t v)
{
	if (v < SIM_H_SUB)
		return (int)v;
	int e = 63 - __builtin_clzll(v);          /* v in [2^e, 2^(e+1)) */
	int sub = (int)((v >> (e - 4)) & (SIM_H_SUB - 1));   /* the 4 bits after the top one */
	int b = (e - 3) * SIM_H_SUB + sub;
	return b < SIM_H_N ? b : SIM_H_N - 1;
}

/* Lower bound of bucket b and its width. */
static void hbounds(int b, uint64_t *lo, uint64_t *w)
{
	if (b < SIM_H_SUB) {
		*lo = (uint64_t)b;
		*w = 1;
		return;
	}
	int e = b / SIM_H_SUB + 3, sub = b % SIM_H_SUB;
	*w = 1ull << (e - 4);
	*lo = (1ull << e) + (uint64_t)sub * *w;
}

void sim_hist_add(struct sim_hist *h, uint64_t v)
{
	h->b[hbucket(v)]++;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

void sim_hist_merge(struct sim_hist *dst, const struct sim_hist *src)
{
	for (int i = 0; i < SIM_H_N; i++)
		dst->b[i] += src->b[i];
	dst->n += src->n;
	dst->sum += src->sum;
	if (src->max > dst->max)
		dst->max = src->max;
}

/* The q-quantile: the midpoint of the bucket holding it, never above the exact max. */
uint64_t sim_hist_pct(const struct sim_hist *h, double q)
{
	uint64_t rank, acc = 0, lo, w;

	if (!h->n)
		return 0;
	rank = (uint64_t)ceil(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < SIM_H_N; b++) {
		acc += h->b[b];
		if (acc >= rank) {
			hbounds(b, &lo, &w);
			uint64_t v = lo + w / 2;
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

/* ---- results ----------------------------------------------------------------------- */
struct rtask {
	int pid, group;
	char comm[16];
	uint64_t weight;
	struct sim_task_stats st;
	uint64_t p50, p99, p999, max;
};

struct rgroup {
	char name[64];
	int ntasks;
	uint64_t weight_sum;
	struct sim_task_stats st;
	struct sim_hist h;
	double jain, share, wshare;
	bool periodic;
};

struct sim_result {
	char policy[512];
	int exit_code;
	char exit_msg[512];
	uint64_t elapsed;
	int nr_cpus;
	struct sim_counters c;
	struct pol_stats ps;
	int ntasks, ngroups;
	struct rtask *t;
	struct rgroup *g;
	struct sim_hist all;
	double jain_all;
};

static double jain(const double *x, int n)
{
	double s = 0, s2 = 0;
	for (int i = 0; i < n; i++) {
		s += x[i];
		s2 += x[i] * x[i];
	}
	return s2 > 0 ? s * s / (n * s2) : 1.0;
}

struct sim_result *sim_result_new(const struct sim *s, const struct sim_wl *w, const char *policy,
				  const struct pol_stats *ps, int exit_code, const char *exit_msg)
{
	struct sim_result *r = calloc(1, sizeof(*r));
	int n = sim_nr_tasks(s);
	double *x;

	if (!r)
		return NULL;
	snprintf(r->policy, sizeof(r->policy), "%s", policy);
	r->exit_code = exit_code;
	snprintf(r->exit_msg, sizeof(r->exit_msg), "%s", exit_msg ? exit_msg : "");
	r->elapsed = sim_elapsed(s);
	r->nr_cpus = w->nr_cpus;
	r->c = *sim_counters(s);
	if (ps)
		r->ps = *ps;
	r->ntasks = n;
	r->ngroups = w->ngroups;
	r->t = calloc((size_t)n + 1, sizeof(*r->t));
	r->g = calloc((size_t)w->ngroups, sizeof(*r->g));
	x = calloc((size_t)n + 1, sizeof(*x));
	if (!r->t || !r->g || !x) {
		free(x);
		sim_result_free(r);
		return NULL;
	}
	uint64_t wsum = 0;
	for (int i = 0; i < n; i++)
		wsum += sim_task_weight(s, i);
	double cap = (double)r->elapsed * w->nr_cpus;
	for (int gi = 0; gi < w->ngroups; gi++) {
		snprintf(r->g[gi].name, sizeof(r->g[gi].name), "%s", w->groups[gi].name);
		r->g[gi].periodic = w->groups[gi].periodic;
	}
	for (int i = 0; i < n; i++) {
		struct rtask *t = &r->t[i];
		const struct sim_hist *h = sim_task_hist(s, i);
		t->pid = sim_task_pid(s, i);
		t->group = sim_task_group(s, i);
		snprintf(t->comm, sizeof(t->comm), "%s", sim_task_comm(s, i));
		t->weight = sim_task_weight(s, i);
		t->st = *sim_task_stats(s, i);
		t->p50 = sim_hist_pct(h, 0.50);
		t->p99 = sim_hist_pct(h, 0.99);
		t->p999 = sim_hist_pct(h, 0.999);
		t->max = h->max;
		struct rgroup *g = &r->g[t->group];
		g->ntasks++;
		g->weight_sum += t->weight;
		g->st.cpu_ns += t->st.cpu_ns;
		g->st.work_ns += t->st.work_ns;
		g->st.bursts += t->st.bursts;
		g->st.wakeups += t->st.wakeups;
		g->st.csw += t->st.csw;
		g->st.preempted += t->st.preempted;
		g->st.migrations += t->st.migrations;
		g->st.missed += t->st.missed;
		g->st.periods += t->st.periods;
		if (t->st.wait_max > g->st.wait_max)
			g->st.wait_max = t->st.wait_max;
		/* the group's end: when its last task exited; 0 while any is alive */
		if (g->ntasks == 1)
			g->st.exit_ns = t->st.exit_ns;
		else if (!t->st.exit_ns || !g->st.exit_ns)
			g->st.exit_ns = 0;
		else if (t->st.exit_ns > g->st.exit_ns)
			g->st.exit_ns = t->st.exit_ns;
		sim_hist_merge(&g->h, h);
		sim_hist_merge(&r->all, h);
		x[i] = (double)t->st.cpu_ns / (double)t->weight;
	}
	r->jain_all = jain(x, n);
	for (int gi = 0; gi < w->ngroups; gi++) {
		struct rgroup *g = &r->g[gi];
		int k = 0;
		for (int i = 0; i < n; i++)
			if (r->t[i].group == gi)
				x[k++] = (double)r->t[i].st.cpu_ns / (double)r->t[i].weight;
		g->jain = k ? jain(x, k) : 1.0;
		g->share = cap > 0 ? g->st.cpu_ns / cap : 0;
		g->wshare = wsum ? (double)g->weight_sum / (double)wsum : 0;
	}
	free(x);
	return r;
}

void sim_result_free(struct sim_result *r)
{
	if (!r)
		return;
	free(r->t);
	free(r->g);
	free(r);
}

double sim_result_fallback_share(const struct sim_result *r)
{
	uint64_t d = r->c.nr_decisions, f = r->ps.fallbacks;

	return d ? (f >= d ? 1.0 : (double)f / (double)d) : 0.0;
}

void sim_result_fallback_text(const struct sim_result *r, char *buf, size_t len)
{
	snprintf(buf, len, "%.1f%% of its decisions (%llu of %llu) fell back to the built-in one",
		 sim_result_fallback_share(r) * 100, (unsigned long long)r->ps.fallbacks,
		 (unsigned long long)r->c.nr_decisions);
}

static bool flagged(const struct sim_result *r)
{
	return sim_result_fallback_share(r) >= SIM_FALLBACK_WARN;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

/* ---- table ------------------------------------------------------------------------- */
static void fmt_us(char *b, size_t n, uint64_t ns)
{
	snprintf(b, n, "%.1f", ns / 1e3);
}

static void row(FILE *f, const char *name, int ntasks, const struct sim_task_stats *st,
		const struct sim_hist *h, uint64_t p50, uint64_t p99, uint64_t p999, uint64_t max,
		double share, double wshare, double jn, bool periodic)
{
	char a[24], b[24], c[24], d[24], miss[32], end[24];
	fmt_us(a, sizeof(a), p50);
	fmt_us(b, sizeof(b), p99);
	fmt_us(c, sizeof(c), p999);
	fmt_us(d, sizeof(d), max);
	if (periodic)
		snprintf(miss, sizeof(miss), "%llu/%llu", (unsigned long long)st->missed,
			 (unsigned long long)st->periods);
	else
		snprintf(miss, sizeof(miss), "-");
	if (st->exit_ns)
		snprintf(end, sizeof(end), "%.3f", st->exit_ns / 1e6);
	else
		snprintf(end, sizeof(end), "-");
	fprintf(f, "%-16.16s %5d %8llu %9s %9s %9s %9s %9.1f %6.2f %6.2f %5.3f %9.1f %7llu %6llu %9s %9s\n",
		name, ntasks, (unsigned long long)h->n, a, b, c, d, st->cpu_ns / 1e6, share * 100,
		wshare * 100, jn, st->work_ns / 1e6, (unsigned long long)st->csw,
		(unsigned long long)st->migrations, miss, end);
}

static void hdr(FILE *f, const char *first)
{
	fprintf(f, "%-16s %5s %8s %9s %9s %9s %9s %9s %6s %6s %5s %9s %7s %6s %9s %9s\n", first, "tasks",
		"wakeups", "p50_us", "p99_us", "p999_us", "max_us", "cpu_ms", "cpu%", "wt%", "jain",
		"work_ms", "csw", "migr", "missed", "end_ms");
}

void sim_report_table(FILE *f, const struct sim_wl *w, struct sim_result **rs, int n, bool measured)
{
	fprintf(f, "workload %s (%s): %d CPUs (smt %d, llc %d), HZ %d, %.3f s, seed %llu\n",
		w->name, w->file, w->nr_cpus, w->smt, w->llc, w->hz, w->duration_ns / 1e9,
		(unsigned long long)w->seed);
	for (int k = 0; k < n; k++) {
		struct sim_result *r = rs[k];
		const struct sim_counters *c = &r->c;
		double cap = (double)r->elapsed * r->nr_cpus;
		uint64_t busy = 0;
		for (int i = 0; i < r->ntasks; i++)
			busy += r->t[i].st.cpu_ns;
		fprintf(f, "\n== policy %s\n", r->policy);
		if (r->exit_code)
			fprintf(f, "!! %s\n", r->exit_msg);
		if (flagged(r)) {
			char fb[160];
			sim_result_fallback_text(r, fb, sizeof(fb));
			fprintf(f, "!! %s: %llu rejected, %llu raised batches\n", fb,
				(unsigned long long)r->ps.bad_decisions, (unsigned long long)r->ps.errors);
		}
		hdr(f, "group");
		for (int g = 0; g < r->ngroups; g++) {
			struct rgroup *G = &r->g[g];
			row(f, G->name, G->ntasks, &G->st, &G->h, sim_hist_pct(&G->h, 0.5),
			    sim_hist_pct(&G->h, 0.99), sim_hist_pct(&G->h, 0.999), G->h.max, G->share,
			    G->wshare, G->jain, G->periodic);
		}
		if (r->ntasks <= 32) {
			hdr(f, "task");
			uint64_t wsum = 0;
			for (int i = 0; i < r->ntasks; i++)
				wsum += r->t[i].weight;
			for (int i = 0; i < r->ntasks; i++) {
				struct rtask *t = &r->t[i];
				struct sim_hist h = { .n = t->st.wakeups };
				char name[40];
				snprintf(name, sizeof(name), "%s/%d", t->comm, t->pid);
				h.n = t->st.wakeups;
				row(f, name, 1, &t->st, &h, t->p50, t->p99, t->p999, t->max,
				    cap > 0 ? t->st.cpu_ns / cap : 0, wsum ? (double)t->weight / wsum : 0,
				    1.0, r->g[t->group].periodic);
			}
		}
		fprintf(f, "busy %.1f%%  jain(all) %.3f  batches %llu (avg %.1f, max %llu)  "
			"user_dispatches %llu  kernel_dispatches %llu  kept %llu  preempt %llu  "
			"bounce %llu  cancel %llu  rescued %llu  congested %llu  fallbacks %llu  "
			"policy_errors %llu  events %llu\n",
			cap > 0 ? busy * 100.0 / cap : 0, r->jain_all, (unsigned long long)c->nr_batches,
			c->nr_batches ? (double)c->nr_tasks / c->nr_batches : 0,
			(unsigned long long)c->max_batch, (unsigned long long)c->nr_user_dispatches,
			(unsigned long long)c->nr_kernel_dispatches, (unsigned long long)c->nr_kept,
			(unsigned long long)c->nr_preempt, (unsigned long long)c->nr_bounce_dispatches,
			(unsigned long long)c->nr_cancel_dispatches, (unsigned long long)c->nr_rescued,
			(unsigned long long)c->nr_sched_congested, (unsigned long long)r->ps.fallbacks,
			(unsigned long long)r->ps.errors, (unsigned long long)c->nr_events);
		/* The watchdog bounds of bpf/bounds.bpf.h (BPF's nr_* counters; slices_clamped is
		 * the host's own clamp, nr_slices_clamped of a live run). */
		fprintf(f, "host_cpu %.1f ms  host_stalls %llu  bounds: slices_clamped %llu  "
			"slice_clamped %llu  keep_bounded %llu  prio_throttled %llu  starved %llu  "
			"resumed %llu  placed %llu  sync_wakeups %llu\n",
			c->host_cpu_ns / 1e6, (unsigned long long)c->nr_host_stalls,
			(unsigned long long)r->ps.slices_clamped, (unsigned long long)c->nr_slice_clamped,
			(unsigned long long)c->nr_keep_bounded, (unsigned long long)c->nr_prio_throttled,
			(unsigned long long)c->nr_starved, (unsigned long long)c->nr_resumed,
			(unsigned long long)c->nr_placed, (unsigned long long)c->nr_sync_wakeups);
		if (measured)
			fprintf(f, "policy cost (measured, real CPU): %.1f ns/task, %.1f us/batch\n",
				c->nr_tasks ? (double)c->cost_ns / c->nr_tasks : 0,
				c->nr_batches ? (double)c->cost_ns / c->nr_batches / 1e3 : 0);
	}
	if (n > 1) {
		fprintf(f, "\n== comparison (wakeup latency p99 us / cpu%%)\n%-16s", "group");
		for (int k = 0; k < n; k++) {
			char h[32];
			/* (!): most of its decisions were the built-in one (footnote below) */
			snprintf(h, sizeof(h), flagged(rs[k]) ? "%.18s (!)" : "%.22s",
				 base_name(rs[k]->policy));
			fprintf(f, " %22s", h);
		}
		fputc('\n', f);
		for (int g = 0; g < rs[0]->ngroups; g++) {
			fprintf(f, "%-16.16s", rs[0]->g[g].name);
			for (int k = 0; k < n; k++) {
				char cell[64];
				snprintf(cell, sizeof(cell), "%.1f / %.2f",
					 sim_hist_pct(&rs[k]->g[g].h, 0.99) / 1e3, rs[k]->g[g].share * 100);
				fprintf(f, " %22s", cell);
			}
			fputc('\n', f);
		}
		for (int k = 0; k < n; k++)
			if (flagged(rs[k]))
				fprintf(f, "(!) %s: %.1f%% of its decisions fell back to the built-in one "
					"(see its section)\n", base_name(rs[k]->policy),
					sim_result_fallback_share(rs[k]) * 100);
	}
}

/* ---- JSON -------------------------------------------------------------------------- */
static void jstr(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void jstats(FILE *f, const struct sim_task_stats *st, const struct sim_hist *h,
		   uint64_t p50, uint64_t p99, uint64_t p999, uint64_t max)
{
	fprintf(f, "\"wakeups\": %llu, \"lat_p50_ns\": %llu, \"lat_p99_ns\": %llu, "
		"\"lat_p999_ns\": %llu, \"lat_max_ns\": %llu, \"cpu_ns\": %llu, \"work_ns\": %llu, "
		"\"bursts\": %llu, \"csw\": %llu, \"preempted\": %llu, \"migrations\": %llu, "
		"\"periods\": %llu, \"missed_periods\": %llu, \"exit_ns\": %llu, \"wait_max_ns\": %llu",
		(unsigned long long)h->n, (unsigned long long)p50, (unsigned long long)p99,
		(unsigned long long)p999, (unsigned long long)max, (unsigned long long)st->cpu_ns,
		(unsigned long long)st->work_ns, (unsigned long long)st->bursts,
		(unsigned long long)st->csw, (unsigned long long)st->preempted,
		(unsigned long long)st->migrations, (unsigned long long)st->periods,
		(unsigned long long)st->missed, (unsigned long long)st->exit_ns,
		(unsigned long long)st->wait_max);
}

void sim_report_json(FILE *f, const struct sim_wl *w, struct sim_result **rs, int n, bool measured)
{
	fprintf(f, "{\n  \"schema\": \"gthulhu-lua/simulate/1\",\n  \"workload\": {\"name\": ");
	jstr(f, w->name);
	fprintf(f, ", \"file\": ");
	jstr(f, w->file);
	fprintf(f, ", \"cpus\": %d, \"smt\": %d, \"llc\": %d, \"hz\": %d, \"duration_ns\": %llu, "
		"\"seed\": %llu, \"timer_slack_ns\": %llu},\n  \"runs\": [\n", w->nr_cpus, w->smt,
		w->llc, w->hz, (unsigned long long)w->duration_ns, (unsigned long long)w->seed,
		(unsigned long long)w->timer_slack_ns);
	for (int k = 0; k < n; k++) {
		struct sim_result *r = rs[k];
		const struct sim_counters *c = &r->c;
		fprintf(f, "    {\"policy\": ");
		jstr(f, r->policy);
		fprintf(f, ", \"exit_code\": %d, \"message\": ", r->exit_code);
		jstr(f, r->exit_msg);
		fprintf(f, ", \"elapsed_ns\": %llu, \"jain_all\": %.4f,\n", (unsigned long long)r->elapsed,
			r->jain_all);
		fprintf(f, "     \"counters\": {\"batches\": %llu, \"tasks\": %llu, \"max_batch\": %llu, "
			"\"user_dispatches\": %llu, \"kernel_dispatches\": %llu, \"kept\": %llu, "
			"\"preempt\": %llu, \"bounce\": %llu, \"cancel\": %llu, \"rescued\": %llu, "
			"\"congested\": %llu, \"events\": %llu, \"host_busy_ns\": %llu, \"host_cpu_ns\": %llu, "
			"\"policy_errors\": %llu, \"fallbacks\": %llu, \"bad_decisions\": %llu, "
			"\"slices_clamped\": %llu, \"slice_clamped\": %llu, \"keep_bounded\": %llu, "
			"\"prio_throttled\": %llu, \"starved\": %llu, \"resumed\": %llu, "
			"\"placed\": %llu, \"placed_untold\": %llu, \"sync_wakeups\": %llu, "
			"\"fast_queued\": %llu, \"host_stalls\": %llu},\n",
			(unsigned long long)c->nr_batches, (unsigned long long)c->nr_tasks,
			(unsigned long long)c->max_batch, (unsigned long long)c->nr_user_dispatches,
			(unsigned long long)c->nr_kernel_dispatches, (unsigned long long)c->nr_kept,
			(unsigned long long)c->nr_preempt, (unsigned long long)c->nr_bounce_dispatches,
			(unsigned long long)c->nr_cancel_dispatches, (unsigned long long)c->nr_rescued,
			(unsigned long long)c->nr_sched_congested, (unsigned long long)c->nr_events,
			(unsigned long long)c->host_busy_ns, (unsigned long long)c->host_cpu_ns,
			(unsigned long long)r->ps.errors,
			(unsigned long long)r->ps.fallbacks, (unsigned long long)r->ps.bad_decisions,
			(unsigned long long)r->ps.slices_clamped, (unsigned long long)c->nr_slice_clamped,
			(unsigned long long)c->nr_keep_bounded, (unsigned long long)c->nr_prio_throttled,
			(unsigned long long)c->nr_starved, (unsigned long long)c->nr_resumed,
			(unsigned long long)c->nr_placed, (unsigned long long)c->nr_placed_untold,
			(unsigned long long)c->nr_sync_wakeups, (unsigned long long)c->nr_fast_queued,
			(unsigned long long)c->nr_host_stalls);
		if (measured)
			fprintf(f, "     \"measured\": {\"policy_ns_per_task\": %.1f, \"policy_ns\": %llu},\n",
				c->nr_tasks ? (double)c->cost_ns / c->nr_tasks : 0,
				(unsigned long long)c->cost_ns);
		fprintf(f, "     \"groups\": [\n");
		for (int g = 0; g < r->ngroups; g++) {
			struct rgroup *G = &r->g[g];
			fprintf(f, "       {\"name\": ");
			jstr(f, G->name);
			fprintf(f, ", \"tasks\": %d, \"timer_slack_ns\": %llu, \"weight_sum\": %llu, "
				"\"cpu_share\": %.6f, \"weight_share\": %.6f, \"jain\": %.4f, ", G->ntasks,
				(unsigned long long)w->groups[g].timer_slack_ns,
				(unsigned long long)G->weight_sum, G->share, G->wshare, G->jain);
			jstats(f, &G->st, &G->h, sim_hist_pct(&G->h, 0.5), sim_hist_pct(&G->h, 0.99),
			       sim_hist_pct(&G->h, 0.999), G->h.max);
			fprintf(f, "}%s\n", g + 1 < r->ngroups ? "," : "");
		}
		fprintf(f, "     ],\n     \"tasks\": [\n");
		for (int i = 0; i < r->ntasks; i++) {
			struct rtask *t = &r->t[i];
			struct sim_hist h = { .n = t->st.wakeups };
			fprintf(f, "       {\"pid\": %d, \"comm\": ", t->pid);
			jstr(f, t->comm);
			fprintf(f, ", \"group\": ");
			jstr(f, r->g[t->group].name);
			fprintf(f, ", \"weight\": %llu, ", (unsigned long long)t->weight);
			jstats(f, &t->st, &h, t->p50, t->p99, t->p999, t->max);
			fprintf(f, "}%s\n", i + 1 < r->ntasks ? "," : "");
		}
		fprintf(f, "     ]}%s\n", k + 1 < n ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
}

/* ---- SVG --------------------------------------------------------------------------- */
static const char *const colors[] = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
				      "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22" };
#define NCOL (int)(sizeof(colors) / sizeof(colors[0]))

static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '"')
			fputs("&quot;", f);
		else
			fputc(*s, f);
	}
}

int sim_report_svg(const char *path, const struct sim_wl *w, struct sim_result **rs, int n,
		   char *err, size_t errlen)
{
	const int PW = 440, PH = 300, BH = 220, M = 50, TOP = 60;
	int width = n * PW + 20, height = TOP + PH + BH + 90 + 18 * ((w->ngroups + 3) / 4);
	FILE *f = fopen(path, "w");
	uint64_t maxlat = 10000;

	if (!f) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return G_ERR_IO;
	}
	for (int k = 0; k < n; k++)
		for (int g = 0; g < rs[k]->ngroups; g++)
			if (rs[k]->g[g].h.max > maxlat)
				maxlat = rs[k]->g[g].h.max;
	/* x axis: log10(ns) from 100 ns to the next decade above the largest latency */
	double x0 = 2, x1 = ceil(log10((double)maxlat) + 1e-9);
	double maxshare = 0;
	for (int k = 0; k < n; k++)
		for (int g = 0; g < rs[k]->ngroups; g++) {
			if (rs[k]->g[g].share > maxshare)
				maxshare = rs[k]->g[g].share;
			if (rs[k]->g[g].wshare > maxshare)
				maxshare = rs[k]->g[g].wshare;
		}
	/* headroom above the tallest bar for its label */
	maxshare = maxshare <= 0 ? 1 : ceil(maxshare * 1.12 * 10) / 10;

	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
		width, height, width, height);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"10\" y=\"22\" font-size=\"16\">workload ");
	xml_text(f, w->name);
	fprintf(f, ": %d CPUs, %.3f s, seed %llu</text>\n", w->nr_cpus, w->duration_ns / 1e9,
		(unsigned long long)w->seed);
	for (int k = 0; k < n; k++) {
		struct sim_result *r = rs[k];
		int ox = 10 + k * PW, oy = TOP;
		int pw = PW - M - 20, ph = PH - 60;
		int px = ox + M, py = oy + 20;
		const char *b = strrchr(r->policy, '/');
		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"bold\">", ox, oy);
		xml_text(f, b ? b + 1 : r->policy);
		fprintf(f, "%s</text>\n", r->exit_code ? " (failed)" : "");
		/* CDF panel */
		fprintf(f, "<text x=\"%d\" y=\"%d\">wakeup latency CDF</text>\n", px, py - 4);
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
			"stroke=\"#444\"/>\n", px, py, pw, ph);
		for (int d = (int)x0; d <= (int)x1; d++) {
			double x = px + (d - x0) / (x1 - x0) * pw;
			static const char *const lab[] = { "1ns", "10ns", "100ns", "1us", "10us",
							   "100us", "1ms", "10ms", "100ms", "1s",
							   "10s", "100s", "1000s" };
			fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n",
				x, py, x, py + ph);
			fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\">%s"
				"</text>\n", x, py + ph + 14, d >= 0 && d <= 12 ? lab[d] : "?");
		}
		for (int q = 0; q <= 4; q++) {
			double y = py + ph - q / 4.0 * ph;
			fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>\n"
				"<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"10\">%.2f</text>\n",
				px, y, px + pw, y, px - 4, y + 4, q / 4.0);
		}
		for (int g = 0; g < r->ngroups; g++) {
			const struct sim_hist *h = &r->g[g].h;
			uint64_t acc = 0;
			if (!h->n)
				continue;
			fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" points=\"",
				colors[g % NCOL]);
			double lastx = px;
			fprintf(f, "%.1f,%.1f", (double)px, (double)(py + ph));
			for (int bk = 0; bk < SIM_H_N; bk++) {
				if (!h->b[bk])
					continue;
				uint64_t lo, wd;
				hbounds(bk, &lo, &wd);
				double v = (double)(lo + wd);
				if (v > (double)h->max)
					v = (double)h->max;
				double lx = v > 0 ? log10(v) : x0;
				if (lx < x0)
					lx = x0;
				double x = px + (lx - x0) / (x1 - x0) * pw;
				double yprev = py + ph - (double)acc / h->n * ph;
				acc += h->b[bk];
				double y = py + ph - (double)acc / h->n * ph;
				fprintf(f, " %.1f,%.1f %.1f,%.1f", x, yprev, x, y);
				lastx = x;
			}
			(void)lastx;
			fprintf(f, "\"/>\n");
		}
		/* CPU share panel: bars (measured) and ticks (weight share) */
		int by = oy + PH + 10, bh = BH - 50;
		fprintf(f, "<text x=\"%d\" y=\"%d\">CPU share (bar) vs weight share (mark)</text>\n",
			px, by - 4);
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
			"stroke=\"#444\"/>\n", px, by, pw, bh);
		for (int q = 0; q <= 4; q++) {
			double y = by + bh - q / 4.0 * bh;
			fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"10\">%.0f%%"
				"</text>\n", px - 4, y + 4, maxshare * q / 4.0 * 100);
		}
		int ng = r->ngroups;
		double slot = (double)pw / (ng ? ng : 1);
		for (int g = 0; g < ng; g++) {
			double hgt = r->g[g].share / maxshare * bh;
			double x = px + g * slot + slot * 0.15, bw = slot * 0.7;
			double wy = by + bh - r->g[g].wshare / maxshare * bh;
			fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
				x, by + bh - hgt, bw, hgt, colors[g % NCOL]);
			fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\" "
				"stroke-width=\"2\" stroke-dasharray=\"4,2\"/>\n", x - 3, wy, x + bw + 3, wy);
			fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">"
				"%.1f%%</text>\n", x + bw / 2, by + bh - hgt - 3, r->g[g].share * 100);
		}
	}
	/* legend */
	int ly = TOP + PH + BH + 40;
	for (int g = 0; g < w->ngroups; g++) {
		int lx = 10 + (g % 4) * 200, yy = ly + (g / 4) * 18;
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"10\" fill=\"%s\"/>"
			"<text x=\"%d\" y=\"%d\">", lx, yy - 9, colors[g % NCOL], lx + 20, yy);
		xml_text(f, w->groups[g].name);
		fprintf(f, "</text>\n");
	}
	fprintf(f, "</svg>\n");
	if (fclose(f)) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return G_ERR_IO;
	}
	return G_OK;
}

/* ---- trace ------------------------------------------------------------------------- */
struct sim_trace {
	FILE *f;
	int pid;
	bool first;
	char path[512];
};

struct sim_trace *sim_trace_open(const char *path, char *err, size_t errlen)
{
	struct sim_trace *t = calloc(1, sizeof(*t));
	if (!t || !(t->f = fopen(path, "w"))) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		free(t);
		return NULL;
	}
	snprintf(t->path, sizeof(t->path), "%s", path);
	fputs("{\"displayTimeUnit\": \"ns\", \"traceEvents\": [\n", t->f);
	t->first = true;
	return t;
}

static void sep(struct sim_trace *t)
{
	if (!t->first)
		fputs(",\n", t->f);
	t->first = false;
}

void sim_trace_begin_policy(struct sim_trace *t, int idx, const char *policy, int nr_cpus)
{
	if (!t)
		return;
	t->pid = idx + 1;
	sep(t);
	fprintf(t->f, "{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": %d, \"args\": {\"name\": ",
		t->pid);
	jstr(t->f, policy);
	fputs("}}", t->f);
	for (int c = 0; c < nr_cpus; c++) {
		sep(t);
		fprintf(t->f, "{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": %d, \"tid\": %d, "
			"\"args\": {\"name\": \"CPU %d\"}}", t->pid, c, c);
	}
}

void sim_trace_slice(struct sim_trace *t, int cpu, uint64_t start, uint64_t end, const char *comm,
		     int pid)
{
	sep(t);
	fprintf(t->f, "{\"ph\": \"X\", \"pid\": %d, \"tid\": %d, \"ts\": %.3f, \"dur\": %.3f, "
		"\"name\": ", t->pid, cpu, start / 1e3, (end - start) / 1e3);
	jstr(t->f, comm);
	fprintf(t->f, ", \"args\": {\"pid\": %d}}", pid);
}

int sim_trace_close(struct sim_trace *t)
{
	int rc = G_OK;

	if (!t)
		return G_OK;
	fputs("\n]}\n", t->f);
	if (ferror(t->f) | fclose(t->f))
		rc = G_ERR_IO;
	free(t);
	return rc;
}
