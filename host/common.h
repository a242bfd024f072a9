/* SPDX-License-Identifier: GPL-2.0 */
/*
 * common.h - small things every host module shares: return codes, logging, clocks.
 * No state lives here.
 */
#ifndef GTHULHU_COMMON_H
#define GTHULHU_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "log.h"

#define GTHULHU_VERSION "0.1.0"

/* Module return codes: 0 is success; everything else is a distinct failure. */
enum {
	G_OK = 0,
	G_ERR = -1,       /* generic failure; the message is in the caller's err buffer */
	G_ERR_NOMEM = -2,
	G_ERR_IO = -3,
	G_ERR_PARSE = -4,
	G_ERR_RANGE = -5,
	G_ERR_BUSY = -6,  /* already in progress */
};

/* Process exit codes of gthulhu-lua (documented in README "Exit codes"). */
enum {
	EXIT_OK_ = 0,
	EXIT_USAGE = 2,        /* bad command line */
	EXIT_CONFIG = 3,       /* config file error */
	EXIT_POLICY = 4,       /* policy syntax/runtime error */
	EXIT_NOT_ROOT = 5,     /* needs root (CAP_SYS_ADMIN + CAP_BPF) */
	EXIT_NO_SCX = 6,       /* kernel has no sched_ext */
	EXIT_SCX_BUSY = 7,     /* another sched_ext scheduler is loaded */
	EXIT_BPF = 8,          /* BPF open/load/attach failed (verifier, ...) */
	EXIT_SCX_ERROR = 9,    /* the kernel ejected the scheduler with an error */
};

extern int g_verbose; /* -v count; 0 = warnings and errors only */

/* Through log.c: never blocks the scheduling thread once log_start() ran. */
#define g_err(fmt, ...)  g_logf(2, "gthulhu-lua: error: " fmt "\n", ##__VA_ARGS__)
#define g_warn(fmt, ...) g_logf(2, "gthulhu-lua: warning: " fmt "\n", ##__VA_ARGS__)
#define g_info(fmt, ...) do { if (g_verbose >= 1) g_logf(2, "gthulhu-lua: " fmt "\n", ##__VA_ARGS__); } while (0)
#define g_dbg(fmt, ...)  do { if (g_verbose >= 2) g_logf(2, "gthulhu-lua: debug: " fmt "\n", ##__VA_ARGS__); } while (0)
/* For a message right before _exit(): straight to stderr (the queue dies with us). */
#define g_err_now(fmt, ...) fprintf(stderr, "gthulhu-lua: error: " fmt "\n", ##__VA_ARGS__)

/* Write a message into a caller's error buffer (err may be NULL or errlen 0: no-op). */
static inline void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* CLOCK_MONOTONIC in ns: the same clock as bpf_ktime_get_ns(), so host and BPF agree. */
static inline uint64_t g_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* *ts = CLOCK_MONOTONIC now + ms, for pthread_cond_timedwait on a condition variable set
 * to that clock (pthread_condattr_setclock). */
static inline void g_deadline_ms(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_nsec -= 1000000000L;
		ts->tv_sec++;
	}
}

#endif
