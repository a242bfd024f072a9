/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test_log.c - output that never blocks (host/log.c): a reader that never reads costs
 * dropped messages, not a blocked caller; a reader that left (EPIPE) costs nothing else,
 * SIGPIPE included; log_stop() returns even when the writer is stuck.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#pragma GCC diagnostic ignored "-Wformat-zero-length"  /* CHECK(cond) without a message */
#include "common.h"
#include "log.h"

int g_verbose;

int main(void)
{
	int saved = dup(1), p[2];
	char err[256];

	alarm(20);   /* a blocked g_logf() would hang the test: SIGALRM fails it instead */
	CHECK(pipe(p) == 0);
	CHECK(log_start(err, sizeof(err)) == G_OK, "%s", err);
	dup2(p[1], 1);                 /* stdout: a pipe nobody reads (64 KiB, then full) */
	close(p[1]);
	uint64_t t0 = g_now_ns();
	for (int i = 0; i < 20000; i++)   /* ~2 MB: far more than pipe + buffer */
		g_logf(1, "stats: line %06d %s\n", i, "................................................................................");
	uint64_t ms = (g_now_ns() - t0) / 1000000;
	CHECK(log_dropped() > 0, "a full pipe drops messages: %llu dropped",
	      (unsigned long long)log_dropped());
	fprintf(stderr, "test_log: 20000 messages into a full pipe in %llu ms, %llu dropped\n",
		(unsigned long long)ms, (unsigned long long)log_dropped());

	/* the reader goes away: EPIPE for the writer, and this process lives on */
	close(p[0]);
	for (int i = 0; i < 500 && log_write_errors() == 0; i++) {
		/* something to write, should the writer have had nothing queued when the
		 * reader left (seen once on a loaded machine) */
		g_logf(1, "poke %d\n", i);
		usleep(10000);
	}
	CHECK(log_write_errors() > 0, "write errors counted after the reader left");
	g_logf(1, "after EPIPE\n");
	g_logf(2, "test_log: stderr still works after stdout's reader left\n");
	log_stop(1000);

	dup2(saved, 1);
	close(saved);
	return CHECK_DONE();
}
