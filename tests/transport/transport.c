/* SPDX-License-Identifier: GPL-2.0 */
/*
 * transport.c - the BPF transport test, on this machine's real kernel (no sched_ext
 * needed): the real `queued` BPF ringbuf and `dispatched` user ringbuf, fed and drained by
 * SEC("syscall") programs (transport.bpf.c) through BPF_PROG_TEST_RUN, with the host's
 * real transport (xport.c), hot loop (loop.c) and policy bridge (pol/) running real Lua
 * policies in between.
 *
 * Asserts, for batches of 1 to 4096 tasks and with either ringbuf full: every task
 * produced is dispatched exactly once, with exactly the values the policy wrote, and
 * enq_cnt echoed; nothing stray, nothing lost.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "check.h"
#include "common.h"
#include "loop.h"
#include "pol/pol.h"
#include "xport.h"
#include "rec/rec.h"
typedef __u64 u64;
typedef __u32 u32;
typedef __s32 s32;
#include "transport.skel.h"
#include "transport.h"

int g_verbose;

#define NCPU 4
#define ECHO "tests/transport/echo.lua"




struct rig {
	struct transport_bpf *skel;
	struct xport xp;
	bool xp_open;
	struct pol *pol;
	struct loop lp;
};

static void rig_close(struct rig *r)
{
	if (r->xp_open)
		xport_close(&r->xp);
	pol_close(r->pol);
	transport_bpf__destroy(r->skel);
	memset(r, 0, sizeof(*r));
}

/* Staged: open, size the ringbufs, load, transport, policy, loop. */
static int rig_open(struct rig *r, const char *policy, __u32 q_size, __u32 d_size, int batch_max)
{
	struct pol_env env = { .nr_cpus = NCPU, .slice_ns_default = 20000000,
			       .slice_ns_min = 1000000, .batch_max = MAX_BATCH,
			       .lib_dir = "policies/lib" };
	struct loop_src src;
	char err[2048];

	memset(r, 0, sizeof(*r));
	r->skel = transport_bpf__open();
	if (!r->skel) {
		fprintf(stderr, "open: %s\n", strerror(errno));
		goto fail;
	}
	if (q_size)
		bpf_map__set_max_entries(r->skel->maps.queued, q_size);
	if (d_size)
		bpf_map__set_max_entries(r->skel->maps.dispatched, d_size);
	if (transport_bpf__load(r->skel)) {
		fprintf(stderr, "load: %s\n", strerror(errno));
		goto fail;
	}
	if (xport_open(&r->xp, bpf_map__fd(r->skel->maps.queued),
		       bpf_map__fd(r->skel->maps.dispatched), err, sizeof(err))) {
		fprintf(stderr, "xport: %s\n", err);
		goto fail;
	}
	r->xp_open = true;
	if (pol_open(&r->pol, policy, &env, err, sizeof(err))) {
		fprintf(stderr, "policy: %s\n", err);
		goto fail;
	}
	xport_src(&r->xp, &src);
	loop_init(&r->lp, r->pol, &src, batch_max, NULL);
	return 0;
fail:
	rig_close(r);
	return -1;
}

static int run_prog(struct bpf_program *prog, void *args, size_t len)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = args, .ctx_size_in = len);
	int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);

	return err ? err : (int)o.retval;
}

static void clear_seen(struct rig *r, int n)
{
	struct seen z = { 0 };
	int fd = bpf_map__fd(r->skel->maps.seen);

	for (__u32 i = 0; i < (__u32)n; i++)
		bpf_map_update_elem(fd, &i, &z, BPF_ANY);
}

/* Run the host loop (and the BPF consumer whenever the host has a backlog) until
 * `expect` tasks went through the policy and every decision was sent and drained. */
static int drive(struct rig *r, int pid_base, int expect, struct consume_args *ca)
{
	int got = 0, spins = 0;

	memset(ca, 0, sizeof(*ca));
	ca->pid_base = pid_base;
	while (spins++ < 100000) {
		int k = loop_step(&r->lp, 0);

		if (k < 0)
			return k;
		got += k;
		if (loop_backlog(&r->lp) || k > 0)
			run_prog(r->skel->progs.consume, ca, sizeof(*ca));
		if (got >= expect && !loop_backlog(&r->lp))
			break;
	}
	run_prog(r->skel->progs.consume, ca, sizeof(*ca));
	return got;
}

/* Check every seen[] entry: exactly once, enq_cnt echoed, values as `echo` predicts
 * (or merely valid for a real policy). Returns the number of wrong entries. */
static int verify(struct rig *r, int pid_base, __u64 enq_base, int produced, int span, bool echo)
{
	int fd = bpf_map__fd(r->skel->maps.seen), bad = 0;

	for (int i = 0; i < span; i++) {
		struct seen s;
		__u32 k = i;
		int pid = pid_base + i;
		__u64 weight = 1 + ((__u64)i * 37) % 10000;

		if (bpf_map_lookup_elem(fd, &k, &s)) {
			bad++;
			continue;
		}
		if (i >= produced) {
			if (s.count)
				bad++;
			continue;
		}
		if (s.count != 1 || s.enq_cnt != enq_base + i) {
			if (bad < 5)
				fprintf(stderr, "  task %d: count=%u enq_cnt=%llu (want 1, %llu)\n", pid,
					s.count, (unsigned long long)s.enq_cnt,
					(unsigned long long)(enq_base + i));
			bad++;
			continue;
		}
		if (echo) {
			if (s.cpu != pid % NCPU || s.slice_ns != 1000ull + pid ||
			    s.vtime != weight * 1000 + pid || s.flags != (enq_base + i) % 7) {
				if (bad < 5)
					fprintf(stderr, "  task %d: cpu=%d slice=%llu vtime=%llu flags=%llu\n",
						pid, s.cpu, (unsigned long long)s.slice_ns,
						(unsigned long long)s.vtime, (unsigned long long)s.flags);
				bad++;
			}
		} else if (!(s.cpu == RL_CPU_ANY || (s.cpu >= 0 && s.cpu < NCPU))) {
			bad++;
		}
	}
	return bad;
}

/* One round: produce n, drive, verify. */
static void round_trip(struct rig *r, const char *what, int n, int pid_base, bool echo)
{
	struct produce_args pa = { .n = n, .pid_base = pid_base, .enq_base = 7000000 + n };
	struct consume_args ca;
	int got, bad;

	clear_seen(r, n + 8);
	CHECK(run_prog(r->skel->progs.produce, &pa, sizeof(pa)) == 0, "%s: produce failed", what);
	CHECK(pa.produced == (__u32)n && pa.dropped == 0, "%s n=%d: produced %u dropped %u", what,
	      n, pa.produced, pa.dropped);
	got = drive(r, pid_base, n, &ca);
	CHECK(got == n, "%s n=%d: the loop took %d tasks", what, n, got);
	CHECK(ca.drained == (__u32)n && ca.stray == 0 && ca.bad_size == 0,
	      "%s n=%d: drained %u stray %u bad %u", what, n, ca.drained, ca.stray, ca.bad_size);
	bad = verify(r, pid_base, pa.enq_base, n, n + 8, echo);
	CHECK(bad == 0, "%s n=%d: %d tasks not dispatched exactly once with the policy's values",
	      what, n, bad);
	CHECK(pol_stats(r->pol)->fallbacks == 0 && pol_stats(r->pol)->errors == 0,
	      "%s n=%d: fallbacks %llu errors %llu", what, n,
	      (unsigned long long)pol_stats(r->pol)->fallbacks,
	      (unsigned long long)pol_stats(r->pol)->errors);
	printf("  ok  %-28s n=%-5d batches=%llu\n", what, n,
	       (unsigned long long)r->lp.st.batches);
}

static void test_batches(void)
{
	static const int sizes[] = { 1, 2, 7, 64, 511, 512, 513, 1000, 4096 };
	struct rig r;

	if (rig_open(&r, ECHO, 0, 0, MAX_BATCH)) {
		CHECK(0, "rig with echo.lua");
		return;
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		round_trip(&r, "echo, batch<=4096", sizes[i], 1000, true);
	/* The host took each round in as few batches as the ringbuf allowed: check the
	 * 4096 round was not split into tiny batches. */
	CHECK(r.lp.st.max_batch == 4096, "max batch %llu", (unsigned long long)r.lp.st.max_batch);
	rig_close(&r);

	if (rig_open(&r, ECHO, 0, 0, 512)) {
		CHECK(0, "rig with batch_max 512");
		return;
	}
	round_trip(&r, "echo, batch_max=512", 4096, 1000, true);
	CHECK(r.lp.st.batches == 8 && r.lp.st.max_batch == 512, "4096 in %llu batches (max %llu)",
	      (unsigned long long)r.lp.st.batches, (unsigned long long)r.lp.st.max_batch);
	rig_close(&r);
}

static void test_real_policies(void)
{
	static const char *const pols[] = { "policies/gthulhu.lua", "policies/simple.lua" };

	for (size_t i = 0; i < 2; i++) {
		struct rig r;

		if (rig_open(&r, pols[i], 0, 0, MAX_BATCH)) {
			CHECK(0, "rig with %s", pols[i]);
			continue;
		}
		round_trip(&r, pols[i], 1, 2000, false);
		round_trip(&r, pols[i], 4096, 2000, false);
		round_trip(&r, pols[i], 777, 2000, false);
		rig_close(&r);
	}
}

/* `queued` too small for the burst: the producer sees it full (the BPF side counts those
 * as congested and schedules them in-kernel); every record that got in is dispatched
 * once; once drained, the ring takes records again. */
static void test_queued_full(void)
{
	struct produce_args pa = { .n = 1000, .pid_base = 3000, .enq_base = 11 };
	struct consume_args ca;
	struct rig r;
	int got;

	if (rig_open(&r, ECHO, 16384, 0, MAX_BATCH)) {
		CHECK(0, "rig with a 16 KiB queued ringbuf");
		return;
	}
	clear_seen(&r, 1000);
	run_prog(r.skel->progs.produce, &pa, sizeof(pa));
	CHECK(pa.dropped > 0 && pa.produced + pa.dropped == 1000 && pa.produced > 100,
	      "full queued: produced %u dropped %u", pa.produced, pa.dropped);
	got = drive(&r, 3000, pa.produced, &ca);
	CHECK(got == (int)pa.produced, "full queued: loop took %d of %u", got, pa.produced);
	CHECK(verify(&r, 3000, 11, pa.produced, 1000, true) == 0,
	      "full queued: a produced task was not dispatched exactly once");
	printf("  ok  %-28s produced=%u dropped=%u\n", "queued ringbuf full", pa.produced,
	       pa.dropped);
	/* Drained: room again. */
	round_trip(&r, "queued after full", 100, 5000, true);
	rig_close(&r);
}

/* `dispatched` too small for a batch: the host keeps the rest as a backlog, sends it as
 * the BPF side drains; nothing is dropped or sent twice. */
static void test_dispatched_full(void)
{
	struct rig r;

	if (rig_open(&r, ECHO, 0, 4096, MAX_BATCH)) {
		CHECK(0, "rig with a 4 KiB dispatched ringbuf");
		return;
	}
	round_trip(&r, "dispatched ringbuf full", 1000, 6000, true);
	CHECK(r.lp.st.send_full > 0, "the small user ringbuf never filled (send_full=%llu)",
	      (unsigned long long)r.lp.st.send_full);
	round_trip(&r, "dispatched full, 4096", 4096, 6000, true);
	printf("  ok  %-28s send_full=%llu\n", "backlog resends", (unsigned long long)r.lp.st.send_full);
	rig_close(&r);
}

/* A policy that fails mid-stream: its tasks still all come out (C fallback). */
static void test_failing_policy(void)
{
	struct produce_args pa = { .n = 600, .pid_base = 9000, .enq_base = 1 };
	struct consume_args ca;
	struct rig r;
	int got;

	if (rig_open(&r, "tests/transport/failing.lua", 0, 0, 256)) {
		CHECK(0, "rig with failing.lua");
		return;
	}
	clear_seen(&r, 600);
	run_prog(r.skel->progs.produce, &pa, sizeof(pa));
	got = drive(&r, 9000, 600, &ca);
	CHECK(got == 600 && ca.drained == 600, "failing policy: took %d drained %u", got, ca.drained);
	CHECK(verify(&r, 9000, 1, 600, 600, false) == 0, "failing policy: a task was lost or duplicated");
	CHECK(pol_stats(r.pol)->errors > 0 && pol_stats(r.pol)->fallbacks > 0,
	      "failing policy: errors %llu fallbacks %llu",
	      (unsigned long long)pol_stats(r.pol)->errors,
	      (unsigned long long)pol_stats(r.pol)->fallbacks);
	printf("  ok  %-28s errors=%llu fallbacks=%llu\n", "failing policy",
	       (unsigned long long)pol_stats(r.pol)->errors,
	       (unsigned long long)pol_stats(r.pol)->fallbacks);
	rig_close(&r);
}

/* --record on the live path: the loop's record hook over the real ringbufs. The file
 * read back holds every batch the loop ran, every task once, each with the decision the
 * policy made (the host's own enq_cnt echoed), and passes the reader's checksums. */
static void test_record(void)
{
	static struct queued_task_ctx t[MAX_BATCH];
	static struct dispatched_task_ctx d[MAX_BATCH];
	static uint16_t task[MAX_BATCH];
	static uint64_t idle[MAX_CPUS / 64];
	struct rec_batch b = { .t = t, .d = d, .task = task, .idle = idle };
	const char *path = "build/tests/transport.rec";
	struct rec_info ri = { .nr_cpus = NCPU, .batch_max = MAX_BATCH, .source = "live",
			       .policy = "policies/gthulhu.lua" };
	struct rec_writer *w;
	struct rec_reader *rd;
	char err[1024];
	struct rig r;
	uint64_t tasks = 0, batches = 0, last_ts = 0;
	int rc, bad = 0;

	if (rig_open(&r, "policies/gthulhu.lua", 0, 0, MAX_BATCH)) {
		CHECK(0, "rig for --record");
		return;
	}
	w = rec_writer_open(path, &ri, NULL, NULL, err, sizeof(err));
	CHECK(w != NULL, "writer: %s", err);
	if (!w) {
		rig_close(&r);
		return;
	}
	r.lp.rec.batch = rec_writer_batch;
	r.lp.rec.ctx = w;
	round_trip(&r, "recorded gthulhu.lua", 1, 5000, false);
	round_trip(&r, "recorded gthulhu.lua", 4096, 5000, false);
	round_trip(&r, "recorded gthulhu.lua", 777, 5000, false);
	CHECK(rec_writer_close(w, err, sizeof(err)) == 0, "writer close: %s", err);
	rd = rec_reader_open(path, err, sizeof(err));
	CHECK(rd != NULL, "reader: %s", err);
	if (!rd) {
		rig_close(&r);
		return;
	}
	while ((rc = rec_reader_next(rd, &b, err, sizeof(err))) > 0) {
		for (int i = 0; i < b.n; i++)
			bad += t[i].pid < 5000 || t[i].pid >= 5000 + 4096;
		for (int j = 0; j < b.m; j++)
			bad += d[j].enq_cnt != t[task[j]].enq_cnt;
		bad += b.m != b.n;   /* no placed or stale records here: every one decided */
		bad += b.ts < last_ts;
		last_ts = b.ts;
		tasks += (uint64_t)b.n;
		batches++;
	}
	CHECK(rc == 0, "reading back: %s", err);
	CHECK(batches == r.lp.st.batches && tasks == 1 + 4096 + 777,
	      "record holds %llu batches / %llu tasks; the loop ran %llu / %d",
	      (unsigned long long)batches, (unsigned long long)tasks,
	      (unsigned long long)r.lp.st.batches, 1 + 4096 + 777);
	CHECK(bad == 0, "%d bad records or timestamps going backwards", bad);
	rec_reader_close(rd);
	unlink(path);
	rig_close(&r);
}

/* epoll on the ringbuf, as the host sleeps: 1 if it was woken within ms. */
static int woken(struct rig *r, int ms)
{
	struct epoll_event ev;

	return epoll_wait(r->xp.epfd, &ev, 1, ms);
}

/* Drain everything queued and let epoll forget it: the host has caught up and sleeps. */
static void catch_up(struct rig *r)
{
	struct consume_args ca = { 0 };

	while (loop_step(&r->lp, 0) > 0 || loop_backlog(&r->lp))
		run_prog(r->skel->progs.consume, &ca, sizeof(ca));
	while (woken(r, 0) > 0)
		;
}

/* Wake-ups: a told-only record (a task the fast path placed) does not wake the host; a
 * custody record behind it must, though the told-only one sits at the consumer position
 * (the kernel wakes only for a record committed there, and a quiet one took that turn:
 * custody tasks then waited for the host's 100 ms epoll timeout); and told-only records
 * wake the host by themselves before they fill the ring. */
static void test_wakeups(void)
{
	struct produce_args pa = { .n = 1, .pid_base = 9000, .enq_base = 1, .quiet = 1 };
	struct rig r;
	int w;

	if (rig_open(&r, ECHO, 0, 0, MAX_BATCH)) {
		CHECK(0, "rig for the wake-up test");
		return;
	}
	catch_up(&r);
	run_prog(r.skel->progs.produce, &pa, sizeof(pa));
	w = woken(&r, 200);
	CHECK(pa.produced == 1 && w == 0, "a told-only record woke the host (epoll_wait gave %d)", w);
	/* The quiet record still unread: an urgent record behind it. */
	pa = (struct produce_args){ .n = 1, .pid_base = 9001, .enq_base = 2, .quiet = 0 };
	run_prog(r.skel->progs.produce, &pa, sizeof(pa));
	w = woken(&r, 1000);
	CHECK(w == 1, "a custody record behind an unread told-only record did not wake the host "
	      "(epoll_wait gave %d after 1 s)", w);
	catch_up(&r);
	/* Caught up: an urgent record alone wakes it, as before. */
	pa = (struct produce_args){ .n = 1, .pid_base = 9002, .enq_base = 3, .quiet = 0 };
	run_prog(r.skel->progs.produce, &pa, sizeof(pa));
	CHECK(woken(&r, 1000) == 1, "a custody record on an empty ring did not wake the host");
	catch_up(&r);
	/* Told-only records alone: they wake the host before they fill an eighth of the ring
	 * (1 MiB / 96-byte records: ~1365). */
	pa = (struct produce_args){ .n = 2000, .pid_base = 10000, .enq_base = 4, .quiet = 2000 };
	run_prog(r.skel->progs.produce, &pa, sizeof(pa));
	w = woken(&r, 1000);
	CHECK(pa.produced == 2000 && w == 1, "2000 told-only records never woke the host "
	      "(produced %u, epoll_wait gave %d)", pa.produced, w);
	catch_up(&r);
	printf("  ok  %-28s\n", "ringbuf wake-ups");
	rig_close(&r);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "transport: needs root for bpf()\n");
		printf("0 passed, 1 failed\n");
		return 1;
	}
	test_batches();
	test_real_policies();
	test_queued_full();
	test_dispatched_full();
	test_failing_policy();
	test_record();
	test_wakeups();
	return CHECK_DONE();
}
