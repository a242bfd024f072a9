/* SPDX-License-Identifier: GPL-2.0 */
/*
 * reqlat - request/response wake-up latency (in the style of schbench): message threads
 * wake worker threads, each worker does a short CPU burst and replies.
 *   reqlat [--name COMM] [-d SECONDS] [--msg M] [--workers W] [--burst-us US] [--warmup-ms MS]
 * M message threads (default 2) each own W workers (default 4). A round: the message
 * thread stamps the time and wakes each of its workers (a futex per worker), then sleeps
 * on its own futex until every worker has replied. A worker, woken, records
 * now - stamp (the wake-up-to-run latency), spins US microseconds of CPU (default 50;
 * wall clock, so a preempted burst ends on time) and replies (the last one of the round
 * wakes the message thread). Runs SECONDS (default 5); samples of the first MS ms
 * (default 250) are dropped. Every futex wait has a 100 ms timeout, so a lost wake-up or
 * a starved thread cannot make it run past SECONDS + 1. Prints:
 *   WL reqlat name=... msg=M workers=W burst_us=US count=N capped=N requests=N rps=X
 *      p50_us=X p99_us=X p999_us=X max_us=X
 * (count: latency samples; capped: samples past a worker's buffer of one per 10 us of run
 * time, not recorded; requests: completed replies, warm-up included; rps: requests per
 * second of the whole run; latencies in microseconds with one decimal). Exits 0 when it
 * got samples.
 */
#include "wl.h"
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>

struct msg;

struct worker {
	pthread_t th;
	struct msg *m;
	_Atomic uint32_t req;    /* request number: the futex the worker sleeps on */
	_Atomic uint64_t stamp;  /* when the message thread woke it (ns) */
	uint64_t *lat;
	size_t n, cap, capped;
};

struct msg {
	pthread_t th;
	struct worker *w;
	long nw;
	_Atomic uint32_t pending;   /* replies still due this round: the futex it sleeps on */
	uint64_t requests;
};

static _Atomic int stop;
static uint64_t t_end, t_warm, burst_ns;

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 100 * 1000 * 1000 };
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}
static void futex_wake(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint32_t seen = 0;
	volatile uint64_t x = 1;

	for (;;) {
		uint32_t r;
		while ((r = atomic_load(&w->req)) == seen && !atomic_load(&stop))
			futex_wait(&w->req, seen);
		if (atomic_load(&stop))
			break;
		uint64_t now = wl_now_ns(), st = atomic_load(&w->stamp);
		if (st >= t_warm) {
			if (w->n < w->cap)
				w->lat[w->n++] = now > st ? now - st : 0;
			else
				w->capped++;
		}
		seen = r;
		while (wl_now_ns() - now < burst_ns)
			for (int i = 0; i < 200; i++)
				x = x * 6364136223846793005ull + 1442695040888963407ull;
		if (atomic_fetch_sub(&w->m->pending, 1) == 1)
			futex_wake(&w->m->pending);
	}
	return NULL;
}

static void *msg_main(void *arg)
{
	struct msg *m = arg;
	while (!atomic_load(&stop) && wl_now_ns() < t_end) {
		atomic_store(&m->pending, (uint32_t)m->nw);
		for (long i = 0; i < m->nw; i++) {
			struct worker *w = &m->w[i];
			atomic_store(&w->stamp, wl_now_ns());
			atomic_fetch_add(&w->req, 1);
			futex_wake(&w->req);
		}
		uint32_t p;
		while ((p = atomic_load(&m->pending)) != 0 && wl_now_ns() < t_end + 1000000000ull)
			futex_wait(&m->pending, p);
		if (p != 0)
			break;   /* a worker never replied within a second of the end */
		m->requests += (uint64_t)m->nw;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct wl_common c = { .duration = 5 };
	long nmsg = 2, nwork = 4, burst_us = 50, warm_ms = 250;
	argc = wl_parse_common(argc, argv, &c);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--msg") && i + 1 < argc)
			nmsg = atol(argv[++i]);
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			nwork = atol(argv[++i]);
		else if (!strcmp(argv[i], "--burst-us") && i + 1 < argc)
			burst_us = atol(argv[++i]);
		else if (!strcmp(argv[i], "--warmup-ms") && i + 1 < argc)
			warm_ms = atol(argv[++i]);
		else
			wl_die("reqlat: unknown argument '%s'", argv[i]);
	}
	if (c.duration <= 0 || c.duration > 3600 || nmsg < 1 || nmsg > 64 || nwork < 1 || nwork > 64 ||
	    burst_us < 0 || burst_us > 1000000 || warm_ms < 0 || warm_ms >= c.duration * 1000)
		wl_die("reqlat: duration, message threads, workers, burst or warm-up out of range");
	wl_apply(&c);

	struct msg *m = calloc((size_t)nmsg, sizeof(*m));
	if (!m)
		wl_die("reqlat: out of memory");
	uint64_t start = wl_now_ns();
	t_end = start + (uint64_t)(c.duration * 1e9);
	t_warm = start + (uint64_t)warm_ms * 1000000ull;
	burst_ns = (uint64_t)burst_us * 1000;
	/* At most one sample per worker per 10 us of run time: enough for any rate here. */
	size_t cap = (size_t)(c.duration * 1e5) + 16;
	for (long i = 0; i < nmsg; i++) {
		m[i].nw = nwork;
		m[i].w = calloc((size_t)nwork, sizeof(struct worker));
		if (!m[i].w)
			wl_die("reqlat: out of memory");
		for (long j = 0; j < nwork; j++) {
			struct worker *w = &m[i].w[j];
			w->m = &m[i];
			w->cap = cap;
			w->lat = calloc(cap, sizeof(uint64_t));
			if (!w->lat)
				wl_die("reqlat: out of memory");
			int rc = pthread_create(&w->th, NULL, worker_main, w);
			if (rc)
				wl_die("reqlat: pthread_create: %s", strerror(rc));
		}
	}
	for (long i = 0; i < nmsg; i++) {
		int rc = pthread_create(&m[i].th, NULL, msg_main, &m[i]);
		if (rc)
			wl_die("reqlat: pthread_create: %s", strerror(rc));
	}
	uint64_t requests = 0;
	for (long i = 0; i < nmsg; i++) {
		pthread_join(m[i].th, NULL);
		requests += m[i].requests;
	}
	uint64_t wall = wl_now_ns() - start;
	atomic_store(&stop, 1);
	size_t total = 0, capped = 0;
	for (long i = 0; i < nmsg; i++)
		for (long j = 0; j < nwork; j++) {
			futex_wake(&m[i].w[j].req);
			pthread_join(m[i].w[j].th, NULL);
			total += m[i].w[j].n;
			capped += m[i].w[j].capped;
		}
	uint64_t *all = calloc(total + 1, sizeof(uint64_t));
	if (!all)
		wl_die("reqlat: out of memory");
	size_t k = 0;
	for (long i = 0; i < nmsg; i++)
		for (long j = 0; j < nwork; j++)
			for (size_t s = 0; s < m[i].w[j].n; s++)
				all[k++] = m[i].w[j].lat[s];
	qsort(all, total, sizeof(*all), wl_cmp_u64);
	printf("WL reqlat name=%s msg=%ld workers=%ld burst_us=%ld count=%zu capped=%zu requests=%llu rps=%.0f "
	       "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n",
	       wl_comm(), nmsg, nwork, burst_us, total, capped, (unsigned long long)requests,
	       wall ? (double)requests * 1e9 / (double)wall : 0.0, wl_pct(all, total, 0.50),
	       wl_pct(all, total, 0.99), wl_pct(all, total, 0.999), total ? (double)all[total - 1] / 1000.0 : 0.0);
	return total ? 0 : 1;
}
