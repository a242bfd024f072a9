/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wl.h - shared bits of the VM test workloads: option parsing for the options every
 * workload has (--name, --nice, -d/--duration, --cpus, --sched-ext), clocks, and the
 * result line printer.
 *
 * Every workload prints exactly one result line on stdout:
 *   WL <kind> name=<comm> key=value ...
 * and exits 0 when it did its bounded job, non-zero on a setup error.
 */
#ifndef WL_H
#define WL_H

#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct wl_common {
	const char *name;   /* comm to set; NULL keeps the program name */
	int nice;           /* applied with setpriority when has_nice */
	int has_nice;
	double duration;    /* seconds; meaning depends on the workload */
	const char *cpus;   /* CPU list for sched_setaffinity, NULL = leave alone */
	int sched_ext;      /* --sched-ext: switch to SCHED_EXT (partial switch mode tests) */
};

#define WL_SCHED_EXT 7      /* the SCHED_EXT policy number (glibc has no name for it) */

static inline uint64_t wl_clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline uint64_t wl_now_ns(void) { return wl_clock_ns(CLOCK_MONOTONIC); }

static inline void wl_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("workload: error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* Parse "0,2-3" into a cpu_set_t; returns the number of CPUs set, -1 on a syntax error. */
static inline int wl_parse_cpus(const char *s, cpu_set_t *set)
{
	int n = 0;
	CPU_ZERO(set);
	while (*s) {
		char *end;
		long a = strtol(s, &end, 10), b;
		if (end == s || a < 0 || a >= CPU_SETSIZE)
			return -1;
		b = a;
		s = end;
		if (*s == '-') {
			s++;
			b = strtol(s, &end, 10);
			if (end == s || b < a || b >= CPU_SETSIZE)
				return -1;
			s = end;
		}
		for (long i = a; i <= b; i++) {
			CPU_SET(i, set);
			n++;
		}
		if (*s == ',')
			s++;
		else if (*s)
			return -1;
	}
	return n;
}

/* Consume the common options from argv (in place); leaves the others for the caller.
 * Returns the new argc. */
static inline int wl_parse_common(int argc, char **argv, struct wl_common *c)
{
	int out = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--name") && i + 1 < argc)
			c->name = argv[++i];
		else if (!strcmp(a, "--nice") && i + 1 < argc) {
			c->nice = atoi(argv[++i]);
			c->has_nice = 1;
		} else if ((!strcmp(a, "-d") || !strcmp(a, "--duration")) && i + 1 < argc)
			c->duration = atof(argv[++i]);
		else if (!strcmp(a, "--cpus") && i + 1 < argc)
			c->cpus = argv[++i];
		else if (!strcmp(a, "--sched-ext"))
			c->sched_ext = 1;
		else
			argv[out++] = argv[i];
	}
	argv[out] = NULL;
	return out;
}

/* Apply name, nice and affinity to the calling process. */
static inline void wl_apply(const struct wl_common *c)
{
	if (c->name && prctl(PR_SET_NAME, c->name, 0, 0, 0))
		wl_die("prctl(PR_SET_NAME, %s): %s", c->name, strerror(errno));
	if (c->has_nice && setpriority(PRIO_PROCESS, 0, c->nice))
		wl_die("setpriority(%d): %s", c->nice, strerror(errno));
	if (c->cpus) {
		cpu_set_t set;
		if (wl_parse_cpus(c->cpus, &set) <= 0)
			wl_die("bad CPU list '%s'", c->cpus);
		if (sched_setaffinity(0, sizeof(set), &set))
			wl_die("sched_setaffinity(%s): %s", c->cpus, strerror(errno));
	}
	if (c->sched_ext) {
		struct sched_param sp = { .sched_priority = 0 };

		if (sched_setscheduler(0, WL_SCHED_EXT, &sp))
			wl_die("sched_setscheduler(SCHED_EXT=%d): %s (kernel without sched_ext?)",
			       WL_SCHED_EXT, strerror(errno));
	}
}

static inline const char *wl_comm(void)
{
	static char buf[17];
	if (prctl(PR_GET_NAME, buf, 0, 0, 0))
		strcpy(buf, "?");
	return buf;
}

/* Longest wall-clock time one burn loop took (~ the longest time the burner did not run),
 * set by wl_burn and printed as max_gap_us by wl_report_burn. */
static uint64_t wl_burn_max_gap_ns;

/* Burn CPU until `secs` of wall time have passed. Returns the thread CPU time used (ns). */
static inline uint64_t wl_burn(double secs, uint64_t *loops_out)
{
	uint64_t t0 = wl_now_ns(), c0 = wl_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	uint64_t end = t0 + (uint64_t)(secs * 1e9), loops = 0, last = t0, now;
	volatile uint64_t x = 1;
	for (;;) {
		for (int i = 0; i < 20000; i++)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		loops++;
		now = wl_now_ns();
		if (now - last > wl_burn_max_gap_ns)
			wl_burn_max_gap_ns = now - last;
		last = now;
		if (now >= end)
			break;
	}
	if (loops_out)
		*loops_out = loops;
	return wl_clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
}

/* Print the result line of a CPU burner (hog, pinned). */
static inline void wl_report_burn(const char *kind, double secs, uint64_t cpu_ns, uint64_t loops,
				  uint64_t wall_ns, const char *extra)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	uint64_t ru_us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ull +
			 (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
	printf("WL %s name=%s pid=%d nice=%d duration_s=%.1f cpu_us=%llu rusage_us=%llu wall_us=%llu "
	       "loops=%llu nvcsw=%ld nivcsw=%ld max_gap_us=%llu%s\n",
	       kind, wl_comm(), (int)getpid(), getpriority(PRIO_PROCESS, 0), secs,
	       (unsigned long long)(cpu_ns / 1000), (unsigned long long)ru_us,
	       (unsigned long long)(wall_ns / 1000), (unsigned long long)loops,
	       ru.ru_nvcsw, ru.ru_nivcsw, (unsigned long long)(wl_burn_max_gap_ns / 1000),
	       extra ? extra : "");
	fflush(stdout);
}

/* Latency samples (ns): sort them with qsort(v, n, sizeof(*v), wl_cmp_u64), then
 * wl_pct(v, n, 0.99) is the 99th percentile in microseconds (0 when there is none). */
static inline int wl_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}
static inline double wl_pct(const uint64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)n);
	return (double)v[i < n ? i : n - 1] / 1000.0;
}

#endif
