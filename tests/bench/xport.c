/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xport.c - transport throughput on this machine's real BPF ringbufs (needs root; no
 * sched_ext needed). It reuses the transport test's SEC("syscall") programs
 * (tests/transport/transport.bpf.c, build/gen/transport.skel.h): `produce` writes N
 * queued records into the BPF ringbuf as ops.enqueue does, the host's real loop takes
 * them (xport recv -> pol_schedule -> xport send into the user ringbuf), and `consume`
 * drains the decisions with bpf_user_ringbuf_drain as ops.dispatch does.
 *
 *   xport time [REPS] [TASKS]    tasks/s of the whole cycle for echo and gthulhu at
 *                                batch 64/512/4096, interleaved; "XPORT policy n median
 *                                min max" (tasks/s).
 *   xport count POLICY N CYCLES  warm up, then exactly CYCLES cycles; prints how many
 *                                BPF_PROG_TEST_RUN calls the bench itself made, so
 *                                run.sh can take them out of strace's count.
 * Every cycle checks that all N decisions were drained and none was stray.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "common.h"
#include "loop.h"
#include "pol/pol.h"
#include "xport.h"
typedef __u64 u64;
typedef __u32 u32;
typedef __s32 s32;
#include "transport.skel.h"
#include "transport.h"

int g_verbose;

#define NCPU 4
#define PID_BASE 1000

/* argument layouts of the transport test's syscall programs */


struct rig {
	const char *name;
	struct transport_bpf *skel;
	struct xport xp;
	struct pol *pol;
	struct loop lp;
	__u64 enq;
};

static long prog_runs;   /* BPF_PROG_TEST_RUN syscalls made by the bench */

static const char *const NAMES[] = { "echo", "gthulhu" };
static const char *const PATHS[] = { "tests/transport/echo.lua", "policies/gthulhu.lua" };
static const int SIZES[] = { 64, 512, 4096 };

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench xport: %s: %s\n", what, why);
	exit(2);
}

static void rig_open(struct rig *r, const char *name, const char *policy)
{
	struct pol_env env = { .nr_cpus = NCPU, .slice_ns_default = 20000000,
			       .slice_ns_min = 1000000, .batch_max = MAX_BATCH,
			       .lib_dir = "policies/lib" };
	struct loop_src src;
	char err[2048];

	memset(r, 0, sizeof(*r));
	r->name = name;
	r->skel = transport_bpf__open_and_load();
	if (!r->skel)
		die("transport_bpf__open_and_load", strerror(errno));
	if (xport_open(&r->xp, bpf_map__fd(r->skel->maps.queued),
		       bpf_map__fd(r->skel->maps.dispatched), err, sizeof(err)))
		die("xport_open", err);
	if (pol_open(&r->pol, policy, &env, err, sizeof(err)))
		die(policy, err);
	xport_src(&r->xp, &src);
	loop_init(&r->lp, r->pol, &src, MAX_BATCH, NULL);
}

static void rig_close(struct rig *r)
{
	xport_close(&r->xp);
	pol_close(r->pol);
	transport_bpf__destroy(r->skel);
}

static void run_prog(struct bpf_program *prog, void *args, size_t len)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = args, .ctx_size_in = len);

	prog_runs++;
	if (bpf_prog_test_run_opts(bpf_program__fd(prog), &o) || o.retval)
		die(bpf_program__name(prog), "BPF_PROG_TEST_RUN failed");
}

/* produce n -> loop until all n went through the policy and were sent -> drain. */
static void cycle(struct rig *r, int n)
{
	struct produce_args pa = { .n = (__u32)n, .pid_base = PID_BASE, .enq_base = r->enq };
	struct consume_args ca = { .pid_base = PID_BASE };
	int got = 0, spins = 0;

	r->enq += (__u64)n;
	run_prog(r->skel->progs.produce, &pa, sizeof(pa));
	if (pa.produced != (__u32)n)
		die(r->name, "produce: the queued ringbuf was full");
	while (got < n || loop_backlog(&r->lp)) {
		int k = loop_step(&r->lp, 0);

		if (k < 0)
			die(r->name, strerror(-k));
		got += k;
		if (loop_backlog(&r->lp))
			run_prog(r->skel->progs.consume, &ca, sizeof(ca));
		if (++spins > 1000000)
			die(r->name, "the loop does not make progress");
	}
	run_prog(r->skel->progs.consume, &ca, sizeof(ca));
	if (ca.drained != (__u32)n || ca.stray || ca.bad_size)
		die(r->name, "not every decision came back exactly once");
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int check_pol(struct rig *r)
{
	const struct pol_stats *s = pol_stats(r->pol);

	if (s->errors || s->fallbacks || s->bad_decisions) {
		fprintf(stderr, "bench xport: %s: errors %llu fallbacks %llu bad %llu: %s\n", r->name,
			(unsigned long long)s->errors, (unsigned long long)s->fallbacks,
			(unsigned long long)s->bad_decisions, pol_last_error(r->pol));
		return 1;
	}
	return 0;
}

static int mode_time(int reps, long tasks)
{
	struct rig r[2];
	double tps[2][64];
	int rc = 0;

	if (reps > 64)
		reps = 64;
	for (int i = 0; i < 2; i++)
		rig_open(&r[i], NAMES[i], PATHS[i]);
	for (int s = 0; s < 3; s++) {
		int n = SIZES[s];
		long k = tasks / n;

		for (int i = 0; i < 2; i++)
			for (long c = 0; c < 16384 / n + 16; c++)
				cycle(&r[i], n);
		for (int rep = 0; rep < reps; rep++) {
			for (int i = 0; i < 2; i++) {
				uint64_t t0 = now_ns();
				for (long c = 0; c < k; c++)
					cycle(&r[i], n);
				tps[i][rep] = (double)k * n * 1e9 / (double)(now_ns() - t0);
			}
		}
		for (int i = 0; i < 2; i++) {
			qsort(tps[i], (size_t)reps, sizeof(double), cmp_dbl);
			printf("XPORT %s %d %.0f %.0f %.0f\n", NAMES[i], n, tps[i][reps / 2], tps[i][0],
			       tps[i][reps - 1]);
		}
		fflush(stdout);
	}
	for (int i = 0; i < 2; i++) {
		rc |= check_pol(&r[i]);
		rig_close(&r[i]);
	}
	return rc;
}

static int mode_count(const char *name, int n, long cycles)
{
	int i = !strcmp(name, "echo") ? 0 : !strcmp(name, "gthulhu") ? 1 : -1;
	struct rig r;
	long before;
	int rc;

	if (i < 0)
		die(name, "unknown policy (echo, gthulhu)");
	rig_open(&r, NAMES[i], PATHS[i]);
	for (long c = 0; c < 16384 / n + 16; c++)
		cycle(&r, n);
	before = prog_runs;
	for (long c = 0; c < cycles; c++)
		cycle(&r, n);
	printf("PROG_RUNS %ld\n", prog_runs - before);
	fflush(stdout);
	rc = check_pol(&r);
	rig_close(&r);
	return rc;
}

int main(int argc, char **argv)
{
	if (geteuid() != 0) {
		fprintf(stderr, "bench xport: needs root for bpf()\n");
		return 3;
	}
	if (argc >= 2 && !strcmp(argv[1], "time"))
		return mode_time(argc > 2 ? atoi(argv[2]) : 7, argc > 3 ? atol(argv[3]) : 1L << 18);
	if (argc >= 5 && !strcmp(argv[1], "count"))
		return mode_count(argv[2], atoi(argv[3]), atol(argv[4]));
	fprintf(stderr, "usage: xport time [REPS] [TASKS] | count POLICY N CYCLES\n");
	return 2;
}
