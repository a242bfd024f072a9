/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wakelat - wakeup-latency probe: periodic sleepers beside CPU hogs.
 *   wakelat [--name COMM] [-d SECONDS] [--threads N] [--hogs H] [--period-us US] [--warmup-ms MS]
 * N SCHED_OTHER threads (default 4) sleep to absolute deadlines PERIOD apart
 * (clock_nanosleep TIMER_ABSTIME on CLOCK_MONOTONIC, default 1000 us) with a 1 ns timer
 * slack (PR_SET_TIMERSLACK: the default 50 us is timer coalescing, not scheduling), while
 * H forked CPU hogs (default 4) spin. Lateness = wakeup time - deadline. When a wakeup is
 * a whole period or more late, the periods it slept through are counted as missed and
 * skipped, so each sample is one real sleep. Samples of the first MS ms (default 250)
 * are dropped (start-up). Prints:
 *   WL wakelat name=... threads=N hogs=H count=N missed=N mean_us=X p50_us=X p99_us=X
 *      p999_us=X max_us=X
 * (microseconds with one decimal). Exits 0 when it got samples.
 */
#include "wl.h"
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

struct sl {
	pthread_t th;
	uint64_t start, end, warm_end, period;
	uint64_t *late;
	size_t n, cap, missed;
	int err;
};

static void *sleeper(void *arg)
{
	struct sl *s = arg;
	uint64_t next = s->start + s->period;

	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	while (next < s->end) {
		struct timespec ts = { .tv_sec = next / 1000000000ull, .tv_nsec = next % 1000000000ull };
		int rc;
		while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR)
			;
		if (rc) {
			s->err = rc;
			break;
		}
		uint64_t now = wl_now_ns(), l = now > next ? now - next : 0;
		/* Periods slept through: counted, skipped; the next deadline is the next one
		 * still ahead on the same grid. */
		uint64_t skip = l / s->period;
		if (next >= s->warm_end) {
			if (s->n < s->cap)
				s->late[s->n++] = l;
			s->missed += skip;
		}
		next += (skip + 1) * s->period;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct wl_common c = { .duration = 5 };
	long nthreads = 4, nhogs = 4, period_us = 1000, warm_ms = 250;
	argc = wl_parse_common(argc, argv, &c);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = atol(argv[++i]);
		else if (!strcmp(argv[i], "--hogs") && i + 1 < argc)
			nhogs = atol(argv[++i]);
		else if (!strcmp(argv[i], "--period-us") && i + 1 < argc)
			period_us = atol(argv[++i]);
		else if (!strcmp(argv[i], "--warmup-ms") && i + 1 < argc)
			warm_ms = atol(argv[++i]);
		else
			wl_die("wakelat: unknown argument '%s'", argv[i]);
	}
	if (c.duration <= 0 || c.duration > 3600 || period_us < 10 || period_us > 1000000 ||
	    nthreads < 1 || nthreads > 256 || nhogs < 0 || nhogs > 256 || warm_ms < 0 ||
	    warm_ms >= c.duration * 1000)
		wl_die("wakelat: duration, period, threads, hogs or warm-up out of range");
	wl_apply(&c);

	pid_t *hogs = calloc((size_t)nhogs + 1, sizeof(*hogs));
	struct sl *s = calloc((size_t)nthreads, sizeof(*s));
	if (!hogs || !s)
		wl_die("wakelat: out of memory");
	for (long i = 0; i < nhogs; i++) {
		hogs[i] = fork();
		if (hogs[i] < 0)
			wl_die("wakelat: fork: %s", strerror(errno));
		if (hogs[i] == 0) {
			prctl(PR_SET_NAME, "wakelat_hog", 0, 0, 0);
			prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			wl_burn(c.duration + 1, NULL); /* killed at the end; bounded anyway */
			_exit(0);
		}
	}
	uint64_t period = (uint64_t)period_us * 1000, start = wl_now_ns();
	size_t cap = (size_t)(c.duration * 1e9 / (double)period) + 16;
	for (long i = 0; i < nthreads; i++) {
		s[i].start = start;
		s[i].end = start + (uint64_t)(c.duration * 1e9);
		s[i].warm_end = start + (uint64_t)warm_ms * 1000000ull;
		s[i].period = period;
		s[i].cap = cap;
		s[i].late = calloc(cap, sizeof(uint64_t));
		if (!s[i].late)
			wl_die("wakelat: out of memory");
		int rc = pthread_create(&s[i].th, NULL, sleeper, &s[i]);
		if (rc)
			wl_die("wakelat: pthread_create: %s", strerror(rc));
	}
	size_t total = 0, missed = 0;
	for (long i = 0; i < nthreads; i++) {
		pthread_join(s[i].th, NULL);
		if (s[i].err)
			wl_die("wakelat: clock_nanosleep: %s", strerror(s[i].err));
		total += s[i].n;
		missed += s[i].missed;
	}
	for (long i = 0; i < nhogs; i++)
		kill(hogs[i], SIGKILL);
	for (long i = 0; i < nhogs; i++)
		waitpid(hogs[i], NULL, 0);

	uint64_t *all = calloc(total + 1, sizeof(uint64_t)), sum = 0;
	if (!all)
		wl_die("wakelat: out of memory");
	size_t k = 0;
	for (long i = 0; i < nthreads; i++)
		for (size_t j = 0; j < s[i].n; j++) {
			all[k++] = s[i].late[j];
			sum += s[i].late[j];
		}
	qsort(all, total, sizeof(*all), wl_cmp_u64);
	printf("WL wakelat name=%s threads=%ld hogs=%ld count=%zu missed=%zu mean_us=%.1f p50_us=%.1f "
	       "p99_us=%.1f p999_us=%.1f max_us=%.1f\n",
	       wl_comm(), nthreads, nhogs, total, missed, total ? (double)sum / (double)total / 1000.0 : 0.0,
	       wl_pct(all, total, 0.50), wl_pct(all, total, 0.99), wl_pct(all, total, 0.999),
	       total ? (double)all[total - 1] / 1000.0 : 0.0);
	return total ? 0 : 1;
}
