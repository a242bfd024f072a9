/* SPDX-License-Identifier: GPL-2.0 */
/* dryrun.c - the synthetic task source of --dry-run; see dryrun.h. */
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "dryrun.h"

/* Weights follow the kernel's nice table scaled to 100 = nice 0 (1024 / 10.24). */
static const struct dryrun_class classes[] = {
	{ "cpu",   100, 0,        0 },         /* CPU-bound, nice 0: uses its whole slice */
	{ "io",    100, 50000,    2000000 },   /* interactive: 50 us bursts, 2 ms sleeps */
	{ "heavy", 305, 0,        0 },         /* CPU-bound, nice -5 */
	{ "light", 33,  0,        0 },         /* CPU-bound, nice 5 */
};
#define NR_CLASSES ((int)(sizeof(classes) / sizeof(classes[0])))

struct dryrun_task {
	int32_t pid;
	int16_t grp;
	bool custody;          /* handed to the host, no decision yet */
	bool woke;             /* runnable after a sleep (SCX_ENQ_WAKEUP) */
	int32_t cpu;
	uint64_t ready_at;     /* runnable from then on (when not in custody) */
	uint64_t sent_at;      /* handed to the host then (in custody) */
	uint64_t enq_cnt, vtime, exec_runtime, start_ts, stop_ts;
};

#define SCX_ENQ_WAKEUP_ 1ull

static const struct dryrun_class *find_class(const char *name, size_t n)
{
	for (int i = 0; i < NR_CLASSES; i++)
		if (strlen(classes[i].name) == n && !strncmp(classes[i].name, name, n))
			return &classes[i];
	return NULL;
}

/* "cpu:1,io:2": class:share pairs (share defaults to 1). Fills d->grp[].cls and shares. */
static int parse_mix(struct dryrun *d, const char *mix, unsigned *share, char *err,
		     size_t errlen)
{
	const char *p = mix;

	d->nr_groups = 0;
	while (*p) {
		const char *e = p + strcspn(p, ",");
		const char *colon = memchr(p, ':', (size_t)(e - p));
		size_t nlen = (size_t)((colon ? colon : e) - p);
		const struct dryrun_class *c = find_class(p, nlen);
		unsigned long v = 1;

		if (!c) {
			set_err(err, errlen, "dryrun.mix: '%.*s': unknown class (expected cpu, io, "
				"heavy or light, as CLASS[:SHARE],...)", (int)(e - p), p);
			return G_ERR_PARSE;
		}
		if (colon) {
			char *end;
			errno = 0;
			v = strtoul(colon + 1, &end, 10);
			if (errno || end != e || colon + 1 == e || v < 1 || v > 4096) {
				set_err(err, errlen, "dryrun.mix: '%.*s': the share must be a whole "
					"number in [1, 4096]", (int)(e - p), p);
				return G_ERR_PARSE;
			}
		}
		for (int i = 0; i < d->nr_groups; i++)
			if (d->grp[i].cls == c) {
				set_err(err, errlen, "dryrun.mix: class '%s' is listed twice", c->name);
				return G_ERR_PARSE;
			}
		if (d->nr_groups >= DRYRUN_MAX_CLASSES) {
			set_err(err, errlen, "dryrun.mix: more than %d classes", DRYRUN_MAX_CLASSES);
			return G_ERR_PARSE;
		}
		share[d->nr_groups] = (unsigned)v;
		d->grp[d->nr_groups++].cls = c;
		p = *e ? e + 1 : e;
		if (*e && !*p) {
			set_err(err, errlen, "dryrun.mix: trailing ','");
			return G_ERR_PARSE;
		}
	}
	if (!d->nr_groups) {
		set_err(err, errlen, "dryrun.mix: empty (expected CLASS[:SHARE],... with classes "
			"cpu, io, heavy, light)");
		return G_ERR_PARSE;
	}
	return G_OK;
}

static int write_file(const char *dir, int pid, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/%s", dir, pid, name);
	f = fopen(path, "w");
	if (!f)
		return G_ERR_IO;
	fputs(text, f);
	return fclose(f) ? G_ERR_IO : G_OK;
}

/* The fake /proc: one directory per synthetic process with comm and cgroup. */
static int make_proc(struct dryrun *d, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	char path[512], text[256];

	snprintf(d->proc_root, sizeof(d->proc_root), "%s/gthulhu-dryrun-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(d->proc_root)) {
		set_err(err, errlen, "dry run: cannot create %s: %s", d->proc_root, strerror(errno));
		d->proc_root[0] = '\0';
		return G_ERR_IO;
	}
	for (int g = 0; g < d->nr_groups; g++) {
		const struct dryrun_group *gr = &d->grp[g];

		snprintf(path, sizeof(path), "%s/%d", d->proc_root, gr->tgid);
		if (mkdir(path, 0755)) {
			set_err(err, errlen, "dry run: %s: %s", path, strerror(errno));
			return G_ERR_IO;
		}
		snprintf(text, sizeof(text), "dry-%s\n", gr->cls->name);
		if (write_file(d->proc_root, gr->tgid, "comm", text))
			goto io;
		/* cgroup v2 line, and a v1-style line putting the process in a Kubernetes pod
		 * (a hybrid hierarchy), so pod and container strategies and Gthulhu intents
		 * resolve in a dry run: pod UID 00000000-0000-4000-8000-00000000000N, container
		 * id N repeated 64 times (hex), N = class position in dryrun.mix + 1. */
		char cid[65];
		memset(cid, "123456789abcdef"[g % 15], 64);
		cid[64] = '\0';
		snprintf(text, sizeof(text), "0::/gthulhu-dryrun/%s\n1:cpu:/kubepods/besteffort/"
			 "pod00000000-0000-4000-8000-%012x/%s\n", gr->cls->name, g + 1, cid);
		if (write_file(d->proc_root, gr->tgid, "cgroup", text))
			goto io;
		snprintf(text, sizeof(text), "%d (dry-%s) S 1 %d %d 0 -1\n", gr->tgid, gr->cls->name,
			 gr->tgid, gr->tgid);
		if (write_file(d->proc_root, gr->tgid, "stat", text))
			goto io;
	}
	return G_OK;
io:
	set_err(err, errlen, "dry run: cannot write into %s: %s", d->proc_root, strerror(errno));
	return G_ERR_IO;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int dryrun_open(struct dryrun *d, const struct cfg *c, int nr_cpus, char *err, size_t errlen)
{
	unsigned share[DRYRUN_MAX_CLASSES], total = 0;
	int rc, at = 0;

	memset(d, 0, sizeof(*d));
	d->nr_cpus = nr_cpus < 1 ? 1 : nr_cpus > MAX_CPUS ? MAX_CPUS : nr_cpus;
	d->rate = c->dryrun_rate;
	d->slice_ns_default = c->slice_ns_default;
	d->duration_ns = (uint64_t)c->dryrun_duration_s * 1000000000ull;
	rc = parse_mix(d, c->dryrun_mix, share, err, errlen);
	if (rc)
		return rc;
	d->nr_tasks = (int)c->dryrun_tasks;
	if (d->nr_tasks < d->nr_groups) {
		set_err(err, errlen, "dryrun.tasks: %d tasks cannot fill the %d classes of "
			"dryrun.mix (one task each at least)", d->nr_tasks, d->nr_groups);
		return G_ERR_RANGE;
	}
	d->tasks = calloc((size_t)d->nr_tasks, sizeof(*d->tasks));
	if (!d->tasks) {
		set_err(err, errlen, "dry run: out of memory");
		return G_ERR_NOMEM;
	}
	for (int g = 0; g < d->nr_groups; g++)
		total += share[g];
	/* Split the tasks by share: every class gets at least one, the last takes the rest. */
	for (int g = 0; g < d->nr_groups; g++) {
		int left = d->nr_tasks - at - (d->nr_groups - g - 1);
		int n = g == d->nr_groups - 1 ? d->nr_tasks - at
			: (int)((uint64_t)d->nr_tasks * share[g] / total);
		if (n < 1)
			n = 1;
		if (n > left)
			n = left;
		d->grp[g].first = at;
		d->grp[g].nr = n;
		d->grp[g].tgid = (int32_t)(c->dryrun_pid_base + (uint32_t)at);
		for (int i = at; i < at + n; i++) {
			struct dryrun_task *t = &d->tasks[i];
			t->pid = (int32_t)(c->dryrun_pid_base + (uint32_t)i);
			t->grp = (int16_t)g;
			t->cpu = i % d->nr_cpus;
		}
		at += n;
	}
	/* Bucket: 10 ms worth of records (at least 1, at most one batch). */
	d->burst = (int)(d->rate / 100 < 1 ? 1 : d->rate / 100 > c->batch_max ? c->batch_max
			 : d->rate / 100);
	d->t0 = d->tokens_at = g_now_ns();
	d->tokens = d->burst;
	rc = make_proc(d, err, errlen);
	if (rc) {
		dryrun_close(d);
		return rc;
	}
	return G_OK;
}

void dryrun_close(struct dryrun *d)
{
	if (!d)
		return;
	if (d->proc_root[0])
		nftw(d->proc_root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	d->proc_root[0] = '\0';
	free(d->tasks);
	d->tasks = NULL;
	d->nr_tasks = 0;
}

const char *dryrun_proc_root(const struct dryrun *d) { return d->proc_root; }
volatile uint64_t *dryrun_idle_mask(struct dryrun *d) { return d->idle; }

bool dryrun_done(const struct dryrun *d)
{
	return d->duration_ns && g_now_ns() - d->t0 >= d->duration_ns;
}

static void refill(struct dryrun *d, uint64_t now)
{
	d->tokens += (double)(now - d->tokens_at) * (double)d->rate / 1e9;
	if (d->tokens > d->burst)
		d->tokens = d->burst;
	d->tokens_at = now;
}

static void update_idle(struct dryrun *d, uint64_t now)
{
	for (int w = 0; w < (d->nr_cpus + 63) / 64; w++) {
		uint64_t bits = 0;
		for (int b = 0; b < 64 && w * 64 + b < d->nr_cpus; b++)
			if (d->busy_until[w * 64 + b] <= now)
				bits |= 1ull << b;
		d->idle[w] = bits;
	}
}

static int dr_recv(void *ctx, struct queued_task_ctx *buf, int max)
{
	struct dryrun *d = ctx;
	uint64_t now = g_now_ns();
	int n = 0, queued = 0;

	refill(d, now);
	update_idle(d, now);
	int take = (int)d->tokens;
	if (take > max)
		take = max;
	for (int k = 0; k < d->nr_tasks; k++) {
		int i = (d->cursor + k) % d->nr_tasks;
		struct dryrun_task *t = &d->tasks[i];
		const struct dryrun_group *g = &d->grp[t->grp];
		struct queued_task_ctx *q;

		if (t->custody || t->ready_at > now)
			continue;
		if (n >= take) {
			queued++;
			continue;
		}
		q = &buf[n++];
		memset(q, 0, sizeof(*q));
		q->pid = t->pid;
		q->tgid = g->tgid;
		q->cpu = t->cpu;
		q->nr_cpus_allowed = d->nr_cpus;
		q->flags = t->woke ? SCX_ENQ_WAKEUP_ : 0;
		q->start_ts = t->start_ts;
		q->stop_ts = t->stop_ts;
		q->exec_runtime = t->exec_runtime;
		q->weight = g->cls->weight;
		q->vtime = t->vtime;
		q->enq_cnt = ++t->enq_cnt;
		snprintf(q->comm, sizeof(q->comm), "dry-%s", g->cls->name);
		t->custody = true;
		t->sent_at = now;
		d->nr_custody++;
	}
	if (n)
		d->cursor = (d->cursor + 1) % d->nr_tasks;
	d->tokens -= n;
	d->nr_queued = (uint64_t)queued;
	return n;
}

/* The CPU that frees up first (RL_CPU_ANY, the shared queue). */
static int first_free_cpu(const struct dryrun *d)
{
	int best = 0;

	for (int c = 1; c < d->nr_cpus; c++)
		if (d->busy_until[c] < d->busy_until[best])
			best = c;
	return best;
}

static int dr_send(void *ctx, const struct dispatched_task_ctx *dd, int n)
{
	struct dryrun *d = ctx;
	uint64_t now = g_now_ns();

	for (int k = 0; k < n; k++) {
		const struct dispatched_task_ctx *x = &dd[k];
		int64_t i = (int64_t)x->pid - (int64_t)(d->nr_tasks ? d->tasks[0].pid : 0);
		struct dryrun_task *t;
		struct dryrun_group *g;
		int cpu;

		if (i < 0 || i >= d->nr_tasks || !d->tasks[i].custody ||
		    d->tasks[i].enq_cnt != x->enq_cnt) {
			d->nr_cancel_dispatches++;
			continue;
		}
		t = &d->tasks[i];
		g = &d->grp[t->grp];
		cpu = (int)x->cpu;
		if (x->cpu == RL_CPU_ANY) {
			cpu = first_free_cpu(d);
		} else if (x->cpu < 0 || x->cpu >= d->nr_cpus) {
			d->nr_bounce_dispatches++;
			cpu = first_free_cpu(d);
		}
		uint64_t slice = x->slice_ns ? x->slice_ns : d->slice_ns_default;
		uint64_t run = g->cls->burst_ns && g->cls->burst_ns < slice ? g->cls->burst_ns : slice;
		uint64_t start = d->busy_until[cpu] > now ? d->busy_until[cpu] : now;
		if (x->vtime == 0)
			start = now;   /* priority: preempts (the preempted run just goes on later) */
		d->busy_until[cpu] = (d->busy_until[cpu] > start ? d->busy_until[cpu] : start) + run;
		t->start_ts = start;
		t->stop_ts = start + run;
		t->cpu = cpu;
		t->vtime = x->vtime + run * 100 / g->cls->weight;
		t->woke = g->cls->sleep_ns != 0;
		t->exec_runtime = t->woke ? run : t->exec_runtime + run;
		t->ready_at = t->stop_ts + g->cls->sleep_ns;
		t->custody = false;
		d->nr_custody--;
		d->nr_user_dispatches++;
		g->dispatched++;
		g->prio += x->vtime == 0;
		g->slice_sum += slice;
	}
	return n;
}

/* Sleep until the next task is runnable and a token is there, at most timeout_ms. */
static int dr_wait(void *ctx, int timeout_ms)
{
	struct dryrun *d = ctx;
	uint64_t now = g_now_ns(), next = UINT64_MAX;
	uint64_t limit = now + (uint64_t)(timeout_ms < 0 ? 1000 : timeout_ms) * 1000000ull;
	struct timespec ts;

	for (int i = 0; i < d->nr_tasks; i++)
		if (!d->tasks[i].custody && d->tasks[i].ready_at < next)
			next = d->tasks[i].ready_at;
	if (next != UINT64_MAX) {
		refill(d, now);
		if (d->tokens < 1) {
			uint64_t t = now + (uint64_t)((1 - d->tokens) * 1e9 / (double)d->rate) + 1;
			if (t > next)
				next = t;
		}
	}
	if (next <= now)
		return 1;
	if (next > limit)
		next = limit;
	ts.tv_sec = (time_t)(next / 1000000000ull);
	ts.tv_nsec = (long)(next % 1000000000ull);
	int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	if (r == EINTR)
		return -EINTR;
	return next < limit ? 1 : 0;
}

static void dr_holding(void *ctx, int n)
{
	((struct dryrun *)ctx)->holding = n;
}

void dryrun_src(struct dryrun *d, struct loop_src *src)
{
	memset(src, 0, sizeof(*src));
	src->ctx = d;
	src->recv = dr_recv;
	src->send = dr_send;
	src->wait = dr_wait;
	src->holding = dr_holding;
}

int dryrun_format_stats(const struct dryrun *d, char *buf, size_t len)
{
	uint64_t now = g_now_ns(), running = 0, oldest = 0;

	for (int c = 0; c < d->nr_cpus; c++)
		running += d->busy_until[c] > now;
	/* pending_oldest_ms: the task held longest (once per stats line, not per batch) */
	for (int i = 0; i < d->nr_tasks; i++)
		if (d->tasks[i].custody && bounds_age_ns(d->tasks[i].sent_at, now) > oldest)
			oldest = bounds_age_ns(d->tasks[i].sent_at, now);
	return snprintf(buf, len,
		"nr_queued=%llu nr_scheduled=%llu nr_running=%llu nr_online_cpus=%llu "
		"nr_user_dispatches=%llu nr_kernel_dispatches=0 nr_cancel_dispatches=%llu "
		"nr_bounce_dispatches=%llu nr_failed_dispatches=0 nr_sched_congested=0 "
		"nr_host_stalls=0 nr_rescued=0 nr_pending=%llu pending_entries=%llu "
		"pending_oldest_ms=%llu host_stalled=0 nr_kept=0 "
		"nr_slice_clamped=0 nr_keep_bounded=0 nr_prio_throttled=0 nr_resumed=0 "
		"nr_placed=0 nr_placed_untold=0 nr_starved=0 nr_wakeup_preempts=0 nr_host_wakes=0 nr_sync_wakeups=0 nr_fast_queued=0",
		(unsigned long long)d->nr_queued, (unsigned long long)d->holding,
		(unsigned long long)running, (unsigned long long)d->nr_cpus,
		(unsigned long long)d->nr_user_dispatches,
		(unsigned long long)d->nr_cancel_dispatches,
		(unsigned long long)d->nr_bounce_dispatches,
		(unsigned long long)d->nr_custody, (unsigned long long)d->nr_custody,
		(unsigned long long)(oldest / 1000000));
}

void dryrun_print_layout(const struct dryrun *d, FILE *out)
{
	for (int g = 0; g < d->nr_groups; g++) {
		const struct dryrun_group *gr = &d->grp[g];
		fprintf(out, "gthulhu-lua: dry run: process dry-%s tgid %d, %d threads (pids %d-%d), "
			"weight %llu, cgroup /gthulhu-dryrun/%s, pod 00000000-0000-4000-8000-%012x\n",
			gr->cls->name, gr->tgid, gr->nr, d->tasks[gr->first].pid,
			d->tasks[gr->first + gr->nr - 1].pid, (unsigned long long)gr->cls->weight,
			gr->cls->name, g + 1);
	}
}

void dryrun_print_summary(const struct dryrun *d, FILE *out)
{
	for (int g = 0; g < d->nr_groups; g++) {
		const struct dryrun_group *gr = &d->grp[g];
		fprintf(out, "dryrun: class=%s tgid=%d dispatched=%llu priority=%llu "
			"mean_slice_ns=%llu\n", gr->cls->name, gr->tgid,
			(unsigned long long)gr->dispatched, (unsigned long long)gr->prio,
			(unsigned long long)(gr->dispatched ? gr->slice_sum / gr->dispatched : 0));
	}
	fflush(out);
}
