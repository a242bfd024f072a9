/* SPDX-License-Identifier: GPL-2.0 */
/*
 * log.h - output that never blocks the scheduling thread.
 *
 * Before log_start() (tests, --check, fuzz targets) g_logf() writes straight to stdout or
 * stderr. After it, a message is copied into a bounded buffer per stream (LOG_BUF_BYTES)
 * and a writer thread does the write(2), which may block on a full pipe or a slow
 * terminal without holding anyone up; a message that does not fit is dropped whole and
 * counted (log_dropped()). A reader that went away (EPIPE: `--stats | head -1`) costs
 * the output, never the scheduler: SIGPIPE is ignored from log_start() on.
 *
 * Ownership: one process-wide writer; log_start()/log_stop() pair (log_stop NULL-safe to
 * call without a start). The writer thread blocks every signal.
 */
#ifndef GTHULHU_LOG_H
#define GTHULHU_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_BUF_BYTES (64 * 1024)

int log_start(char *err, size_t errlen);
/* Stop the writer after it wrote what is queued, waiting at most wait_ms for it. */
void log_stop(unsigned wait_ms);

/* fd: 1 (stdout) or 2 (stderr). One call = one message (kept or dropped whole). */
void g_logf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void g_vlogf(int fd, const char *fmt, va_list ap);

/* stdout through the queue (the stats line). */
#define g_printf(...) g_logf(1, __VA_ARGS__)

/* Wait (at most wait_ms) until everything queued is written: before output that goes to
 * a FILE directly (exit info, summaries), so lines stay in order. */
void log_flush(unsigned wait_ms);

/* Messages dropped because a buffer was full, and bytes lost to write errors (EPIPE...). */
uint64_t log_dropped(void);
uint64_t log_write_errors(void);

#endif
