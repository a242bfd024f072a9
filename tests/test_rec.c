/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test_rec.c - record files (host/rec): a batch recorded through the real host loop and
 * Lua bridge, read back and replayed. The batch holds records that get no decision (one
 * flagged RL_ENQ_PLACED, one stale: its pid comes again later in the batch), and the
 * policy (tests/policies/echo.lua) decides in reverse order, so decision j is not for task
 * j: the file must still pair every decision with its own task, and replay must compare
 * each with the new decision for the same task.
 * Run from the repository root.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#pragma GCC diagnostic ignored "-Wformat-zero-length"  /* CHECK(cond) without a message */
#include "common.h"
#include "loop.h"
#include "pol/pol.h"
#include "rec/rec.h"

int g_verbose __attribute__((weak));

#define NR_CPUS 4
#define N 6

static uint64_t idle_map[MAX_CPUS / 64] = { 0x5 };

/* The batch: i = 0 placed (BPF ran it; the policy is told), i = 2 stale (pid 102 comes
 * again at i = 4 with a later enq_cnt), the rest plain. echo.lua decides every record,
 * out[n-1-i] for task i, with slice_ns = 1000 + i: so a decision names its task's index.
 * Validation keeps 4 decisions, in this order: tasks 5, 4, 3, 1. */
static const struct { int32_t pid; uint64_t enq_cnt, flags; } batch[N] = {
	{ 100, 7, RL_ENQ_PLACED }, { 101, 8, 1 }, { 102, 9, 1 },
	{ 103, 10, 0 }, { 102, 11, 1 }, { 104, 12, 1 },
};

struct src {
	int given;
};

static int src_recv(void *ctx, struct queued_task_ctx *buf, int max)
{
	struct src *s = ctx;

	if (s->given || max < N)
		return 0;
	s->given = 1;
	for (int i = 0; i < N; i++) {
		memset(&buf[i], 0, sizeof(buf[i]));
		buf[i].pid = batch[i].pid;
		buf[i].tgid = batch[i].pid;
		buf[i].cpu = i % NR_CPUS;
		buf[i].nr_cpus_allowed = NR_CPUS;
		buf[i].weight = 100;
		buf[i].vtime = 1000 + (uint64_t)i;
		buf[i].enq_cnt = batch[i].enq_cnt;
		buf[i].flags = batch[i].flags;
		snprintf(buf[i].comm, sizeof(buf[i].comm), "t%d", i);
	}
	return N;
}

static int src_send(void *ctx, const struct dispatched_task_ctx *d, int n) { return n; }
static int src_wait(void *ctx, int timeout_ms) { return 0; }

/* Record the batch through loop_step() into path. Returns the number of decisions sent. */
static int record(const char *path)
{
	struct pol_env env = {
		.nr_cpus = NR_CPUS, .slice_ns_default = 20000000, .slice_ns_min = 1000000,
		.batch_max = MAX_BATCH, .idle = idle_map, .lib_dir = "policies/lib",
	};
	struct rec_info ri = { .nr_cpus = NR_CPUS, .batch_max = MAX_BATCH,
			       .slice_ns_default = 20000000, .slice_ns_min = 1000000,
			       .source = "test", .policy = "echo.lua" };
	struct pol *p = NULL;
	struct src s = { 0 };
	struct loop_src src = { .ctx = &s, .recv = src_recv, .send = src_send, .wait = src_wait };
	struct loop lp;
	uint64_t clock = 5000;
	char err[4096] = "";
	int sent = -1;

	env.slice_ns_max = bounds_slice_max_ns(0);
	CHECK(pol_open(&p, "tests/policies/echo.lua", &env, err, sizeof(err)) == G_OK, "%s", err);
	struct rec_writer *w = rec_writer_open(path, &ri, &clock, idle_map, err, sizeof(err));
	CHECK(w != NULL, "%s", err);
	if (p && w) {
		loop_init(&lp, p, &src, MAX_BATCH, NULL);
		lp.rec.ctx = w;
		lp.rec.batch = rec_writer_batch;
		CHECK(loop_step(&lp, 0) == N);
		sent = (int)lp.st.sent;
	}
	CHECK(rec_writer_close(w, err, sizeof(err)) == G_OK, "%s", err);
	pol_close(p);
	return sent;
}

static struct queued_task_ctx t[MAX_BATCH];
static struct dispatched_task_ctx d[MAX_BATCH];
static uint16_t task[MAX_BATCH];
static uint64_t idle[MAX_CPUS / 64];

/* The file holds the whole batch, and every decision with its own task. */
static void check_file(const char *path, int sent)
{
	char err[1024] = "";
	struct rec_reader *r = rec_reader_open(path, err, sizeof(err));
	struct rec_batch b = { .t = t, .d = d, .task = task, .idle = idle };
	int rc;

	CHECK(r != NULL, "%s", err);
	if (!r)
		return;
	rc = rec_reader_next(r, &b, err, sizeof(err));
	CHECK(rc == 1, "%s", err);
	int n = rc == 1 ? b.n : 0, m = rc == 1 ? b.m : 0;
	CHECK(n == N, "the file holds all %d records of the batch, not %d", N, n);
	CHECK(m == sent && sent == 4, "the file holds the %d decisions sent, not %d", sent, m);
	for (int i = 0; i < n && i < N; i++)
		CHECK(t[i].pid == batch[i].pid && t[i].enq_cnt == batch[i].enq_cnt,
		      "record %d as received", i);
	for (int j = 0; j < m; j++) {
		int i = task[j];   /* the task the file pairs decision j with */
		CHECK(i >= 0 && i < n && d[j].pid == t[i].pid && d[j].enq_cnt == t[i].enq_cnt &&
		      d[j].slice_ns == 1000u + (unsigned)i,
		      "decision %d (pid %d enq_cnt %llu, made for task %llu) is paired with task %d "
		      "(pid %d enq_cnt %llu)", j, d[j].pid, (unsigned long long)d[j].enq_cnt,
		      (unsigned long long)d[j].slice_ns - 1000, i, i >= 0 && i < n ? t[i].pid : -1,
		      i >= 0 && i < n ? (unsigned long long)t[i].enq_cnt : 0ULL);
	}
	CHECK(rec_reader_next(r, &b, err, sizeof(err)) == 0, "%s", err);
	rec_reader_close(r);
}

/* Replaying with the policy that recorded it: every recorded decision meets the new one
 * made for the same task, and they are identical. */
static void check_replay(const char *path)
{
	char out[] = "/tmp/test_rec_out_XXXXXX";
	int fd = mkstemp(out), saved = dup(1);
	char *argv[] = { "replay", (char *)path, "tests/policies/echo.lua", NULL };
	char buf[4096] = "";

	CHECK(fd >= 0 && saved >= 0);
	fflush(stdout);
	dup2(fd, 1);
	int rc = rec_replay_main(3, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	ssize_t got = read(fd, buf, sizeof(buf) - 1);
	buf[got > 0 ? got : 0] = '\0';
	close(fd);
	unlink(out);
	CHECK(rc == 0, "replay exit %d:\n%s", rc, buf);
	CHECK_STR_CONTAINS(buf, "records 6, decisions 4: identical 4 (100.00%)");
	CHECK_STR_CONTAINS(buf, "not matched 0");
}

int main(void)
{
	char path[] = "/tmp/test_rec_XXXXXX";
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	close(fd);
	setenv("GTHULHU_LIB", "policies/lib", 1);   /* replay's policy finds gthulhu.sched */
	int sent = record(path);
	check_file(path, sent);
	check_replay(path);
	unlink(path);
	return CHECK_DONE();
}
