/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rec.c - what recording costs the hot loop: loop_step() over an in-memory loop_src (a
 * synthetic stream of tasks, copied into the policy's array as the ringbuf transport
 * does) running policies/gthulhu.lua, with the record hook off and on (writing a real file
 * under build/bench/), interleaved. Two figures per batch size (64, 512, 4096), medians of
 * REPS, ns per task:
 *   paced:     CPU time of the loop's thread inside loop_step() (CLOCK_THREAD_CPUTIME_ID,
 *              so time the thread spends preempted on a busy machine is left out) while
 *              tasks arrive at 1 M/s (a busy large machine; the writer thread keeps up):
 *              what recording adds to each batch;
 *   saturated: wall time per task with tasks arriving as fast as the loop takes them:
 *              then the disk is the limit and the loop waits for the writer (backpressure).
 * Prints "REC n paced_off paced_on sat_off sat_on". Run from the repository root by
 * tests/bench/run.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "common.h"
#include "loop.h"
#include "pol/pol.h"
#include "rec/rec.h"

int g_verbose;

#define POOL 8192
static struct queued_task_ctx pool[POOL];
static uint64_t idle_map[MAX_CPUS / 64];
static int cursor, want;

static int m_recv(void *ctx, struct queued_task_ctx *buf, int max)
{
	int n = want < max ? want : max;
	for (int i = 0; i < n; i++) {
		buf[i] = pool[cursor];
		buf[i].enq_cnt++;
		pool[cursor].enq_cnt++;
		cursor = (cursor + 1) % POOL;
	}
	idle_map[0] = (idle_map[0] * 6364136223846793005ull + 1442695040888963407ull) & 0xff;
	return n;
}
static int m_send(void *ctx, const struct dispatched_task_ctx *d, int n) { return n; }
static int m_wait(void *ctx, int ms) { return 1; }

static uint64_t thread_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 5;
	int tasks = argc > 2 ? atoi(argv[2]) : 1 << 17;
	static const int sizes[] = { 64, 512, 4096 };
	char err[2048];

	for (int i = 0; i < POOL; i++) {
		struct queued_task_ctx *t = &pool[i];
		t->pid = 2000 + i;
		t->tgid = 2000 + i / 8 * 8;
		t->cpu = i % 8;
		t->nr_cpus_allowed = 8;
		t->weight = i % 7 ? 100 : 335;
		t->start_ts = 1000000ull * (uint64_t)i;
		t->stop_ts = t->start_ts + 50000 + (uint64_t)(i % 13) * 100000;
		t->exec_runtime = (uint64_t)(i % 5) * 300000;
		t->vtime = i % 50 ? 5000000ull + (uint64_t)i : 0;
		snprintf(t->comm, sizeof(t->comm), "task%d", i % 100);
	}
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		int n = sizes[k];
		double off[64], on[64], soff[64], son[64];
		struct pol_env env = { .nr_cpus = 8, .slice_ns_default = 20000000,
				       .slice_ns_min = 1000000, .batch_max = n, .idle = idle_map };
		struct pol *pol;
		if (pol_open(&pol, "policies/gthulhu.lua", &env, err, sizeof(err))) {
			fprintf(stderr, "rec bench: %s\n", err);
			return 1;
		}
		struct loop_src src = { .recv = m_recv, .send = m_send, .wait = m_wait };
		struct loop lp;
		loop_init(&lp, pol, &src, n, NULL);
		want = n;
		for (int i = 0; i < 2000; i++)   /* warm-up: JIT traces */
			loop_step(&lp, 0);
		struct rec_info ri = { .nr_cpus = 8, .batch_max = (uint32_t)n, .source = "bench",
				       .policy = "policies/gthulhu.lua" };
		for (int r = 0; r < reps && r < 64; r++) {
			for (int mode = 0; mode < 2; mode++) {
				struct rec_writer *w = NULL;
				if (mode) {
					w = rec_writer_open(getenv("REC_OUT") ? getenv("REC_OUT") : "build/bench/rec.out", &ri, NULL, idle_map,
							    err, sizeof(err));
					if (!w) {
						fprintf(stderr, "rec bench: %s\n", err);
						return 1;
					}
					lp.rec.batch = rec_writer_batch;
					lp.rec.ctx = w;
				}
				/* paced: 1 task per us */
				uint64_t inside = 0, t0 = g_now_ns(), next = t0;
				for (int done = 0; done < tasks; done += n) {
					while (g_now_ns() < next)
						;
					uint64_t a = thread_ns();
					loop_step(&lp, 0);
					inside += thread_ns() - a;
					next += (uint64_t)n * 1000;
				}
				/* saturated */
				t0 = g_now_ns();
				for (int done = 0; done < tasks; done += n)
					loop_step(&lp, 0);
				uint64_t t1 = g_now_ns();
				if (w && rec_writer_close(w, err, sizeof(err))) {
					fprintf(stderr, "rec bench: %s\n", err);
					return 1;
				}
				lp.rec.batch = NULL;
				(mode ? on : off)[r] = (double)inside / tasks;
				(mode ? son : soff)[r] = (double)(t1 - t0) / tasks;
			}
		}
		int m = reps < 64 ? reps : 64;
		qsort(off, (size_t)m, sizeof(double), cmp_d);
		qsort(on, (size_t)m, sizeof(double), cmp_d);
		qsort(soff, (size_t)m, sizeof(double), cmp_d);
		qsort(son, (size_t)m, sizeof(double), cmp_d);
		printf("REC %d %.1f %.1f %.1f %.1f\n", n, off[m / 2], on[m / 2], soff[m / 2], son[m / 2]);
		pol_close(pol);
	}
	return 0;
}
