/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sleeper - periodic sleeper that measures wakeup lateness.
 *   sleeper [--name COMM] [--nice N] [--cpus LIST] [-d SECONDS] [--period-us US] [--delay SECONDS]
 * Sleeps until absolute deadlines PERIOD apart (clock_nanosleep TIMER_ABSTIME on
 * CLOCK_MONOTONIC, default 1000 us) for SECONDS (default 5), after an unmeasured DELAY
 * (default 0; lets a strategy that matches the new name take effect first). Lateness = wakeup time minus
 * deadline. If it falls more than a period behind, the next deadline restarts from now.
 *   WL sleeper name=... count=N mean_us=N p50_us=N p99_us=N max_us=N sd_us=N
 */
#include "wl.h"

/* sqrt without libm (the VM build links no -lm). */
static double sqrt_newton(double x)
{
	double r = x > 1 ? x : 1;

	if (x <= 0)
		return 0;
	for (int i = 0; i < 200 && r * r - x > x * 1e-12; i++)
		r = (r + x / r) / 2;
	return r;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct wl_common c = { .duration = 5 };
	long period_us = 1000;
	double delay = 0;
	argc = wl_parse_common(argc, argv, &c);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--period-us") && i + 1 < argc)
			period_us = atol(argv[++i]);
		else if (!strcmp(argv[i], "--delay") && i + 1 < argc)
			delay = atof(argv[++i]);
		else
			wl_die("sleeper: unknown argument '%s'", argv[i]);
	}
	if (c.duration <= 0 || c.duration > 3600 || period_us < 10 || period_us > 1000000)
		wl_die("sleeper: duration or period out of range");
	wl_apply(&c);
	if (delay > 0) {
		struct timespec d = { .tv_sec = (time_t)delay, .tv_nsec = (long)((delay - (time_t)delay) * 1e9) };
		nanosleep(&d, NULL);
	}

	uint64_t period = (uint64_t)period_us * 1000;
	size_t cap = (size_t)(c.duration * 1e9 / period) + 16, n = 0;
	uint64_t *late = calloc(cap, sizeof(*late));
	if (!late)
		wl_die("sleeper: out of memory");
	uint64_t start = wl_now_ns(), end = start + (uint64_t)(c.duration * 1e9);
	uint64_t next = start + period, sum = 0;
	while (next < end && n < cap) {
		struct timespec ts = { .tv_sec = next / 1000000000ull, .tv_nsec = next % 1000000000ull };
		int rc;
		while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR)
			;
		if (rc)
			wl_die("sleeper: clock_nanosleep: %s", strerror(rc));
		uint64_t now = wl_now_ns();
		uint64_t l = now > next ? now - next : 0;
		late[n++] = l;
		sum += l;
		next += period;
		if (next <= now)
			next = now + period;
	}
	qsort(late, n, sizeof(*late), cmp_u64);
	uint64_t p50 = n ? late[n / 2] : 0;
	uint64_t p99 = n ? late[n * 99 / 100 < n ? n * 99 / 100 : n - 1] : 0;
	uint64_t max = n ? late[n - 1] : 0;
	/* Standard deviation (us), so two sleepers' means can be compared with their
	 * standard errors (tests/vm/guest.sh: lower_by_3se). */
	double mean = n ? (double)sum / n : 0, var = 0;
	for (size_t i = 0; i < n; i++)
		var += ((double)late[i] - mean) * ((double)late[i] - mean);
	double sd_us = n > 1 ? sqrt_newton(var / (n - 1)) / 1000 : 0;
	printf("WL sleeper name=%s pid=%d nice=%d count=%zu mean_us=%llu p50_us=%llu p99_us=%llu max_us=%llu sd_us=%llu\n",
	       wl_comm(), (int)getpid(), getpriority(PRIO_PROCESS, 0), n,
	       (unsigned long long)(n ? sum / n / 1000 : 0), (unsigned long long)(p50 / 1000),
	       (unsigned long long)(p99 / 1000), (unsigned long long)(max / 1000),
	       (unsigned long long)(sd_us + 0.5));
	free(late);
	return n ? 0 : 1;
}
