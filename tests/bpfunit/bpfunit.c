/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpfunit.c - BPF unit tests: the scheduler's custody and idle-CPU helpers (the headers
 * main.bpf.c includes) run in the kernel here through SEC("syscall") programs
 * (bpfunit.bpf.c) and BPF_PROG_TEST_RUN. Needs root (bpf()), not sched_ext.
 *
 *   custody   concurrent hand-out/claim from two threads on the same pids: nr_pending
 *             must equal the entries left in the table (a claim is the delete that
 *             succeeded; a lost race must not count)
 *   supersede one task handed out again and again (put, drop) while another thread
 *             claims the newest hand-out it saw: no claim takes a later hand-out's
 *             entry; each entry leaves the table exactly once
 *   census    the heartbeat's walk of the table: entries counted, the oldest entry's
 *             age, a task the host lost while it keeps deciding others due for rescue
 *             by its own age, a young one not, and an entry stamped after the walk's
 *             clock (another CPU) of age 0, not ~2^64
 *   pick      the sibling-list walk only returns CPUs of the list, spreads over them,
 *             and finds the one idle sibling from any start
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "check.h"
#include "common.h"
#include "intf.h"
typedef __u64 u64;
typedef __u32 u32;
typedef __s32 s32;
typedef __u8 u8;
typedef __u16 u16;
#include "bpfunit.skel.h"
#include "bpfunit.h"

int g_verbose;

static struct bpfunit_bpf *skel;

static int run(struct bpf_program *prog, void *ctx, size_t len)
{
	/* SEC("syscall") programs write their context back in place (ctx_in). */
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = ctx, .ctx_size_in = len);
	int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);

	if (err)
		return -errno;
	return (int)o.retval;
}

static int count_entries(int fd)
{
	struct custody_key key, next;
	int n = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		n++;
	}
	return n;
}

static void clear_table(int fd)
{
	struct custody_key key;

	while (!bpf_map_get_next_key(fd, NULL, &key))
		bpf_map_delete_elem(fd, &key);
}

struct racer {
	pthread_t th;
	struct race_args a;
	int rc;
};

static void *race_thread(void *arg)
{
	struct racer *r = arg;

	r->rc = run(skel->progs.claim_race, &r->a, sizeof(r->a));
	return NULL;
}

static void test_custody(void)
{
	int fd = bpf_map__fd(skel->maps.pending);

	/* One thread: every hand-out is claimed exactly once. */
	struct race_args a = { .n = 10000, .pid_base = 1000, .nr_keys = 8 };
	CHECK(run(skel->progs.claim_race, &a, sizeof(a)) == 0, "program claim_race failed");
	CHECK(a.puts_ok == a.n && a.claims_ok == a.n, "puts %u claims %u of %u", a.puts_ok,
	      a.claims_ok, a.n);
	CHECK(skel->bss->nr_pending == 0, "nr_pending %llu", (unsigned long long)skel->bss->nr_pending);

	/* Two threads on the same pids: each entry claimed by one of them only. */
	for (int round = 0; round < 8; round++) {
		struct racer r[2];
		int left;

		memset(r, 0, sizeof(r));
		for (int i = 0; i < 2; i++) {
			r[i].a = (struct race_args){ .n = 200000, .pid_base = 2000, .nr_keys = 4 };
			pthread_create(&r[i].th, NULL, race_thread, &r[i]);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(r[i].th, NULL);
		left = count_entries(fd);
		CHECK(r[0].rc == 0 && r[1].rc == 0, "claim_race: %d %d", r[0].rc, r[1].rc);
		CHECK(skel->bss->nr_pending == (u64)left,
		      "round %d: nr_pending %llu but %d entries in the table (claims %u+%u)", round,
		      (unsigned long long)skel->bss->nr_pending, left, r[0].a.claims_ok,
		      r[1].a.claims_ok);
		/* Start the next round from a clean table and counter. */
		clear_table(fd);
		skel->bss->nr_pending = 0;
	}
}

struct sup_thread {
	pthread_t th;
	struct bpf_program *prog;
	struct supersede_args a;
	int rc;
};

static void *sup_thread(void *arg)
{
	struct sup_thread *t = arg;

	t->rc = run(t->prog, &t->a, sizeof(t->a));
	return NULL;
}

/* One task handed out again and again (put, then dequeued: drop) on one thread while
 * another claims the newest hand-out it saw: no claim may take a later hand-out's entry
 * (a claim that looked up enq_cnt j and then deleted by pid took j+1's: the old decision
 * applied, the task left with no custody entry). Each hand-out's entry leaves the table
 * exactly once. */
static void test_supersede(void)
{
	int fd = bpf_map__fd(skel->maps.pending);
	u64 twice = 0, never = 0, claims = 0, first_twice = 0;

	skel->bss->nr_pending = 0;
	for (int round = 0; round < 6; round++) {
		struct sup_thread t[2];

		memset(skel->bss->removed, 0, sizeof(skel->bss->removed));
		skel->bss->sup_last = 0;
		skel->bss->sup_done = 0;
		memset(t, 0, sizeof(t));
		t[0].prog = skel->progs.sup_owner;
		t[0].a = (struct supersede_args){ .n = SUPERSEDE_MAX, .pid = 3000 };
		t[1].prog = skel->progs.sup_decider;
		/* (at most BPF_MAX_LOOPS, 8M: past it bpf_for runs no iteration at all) */
		t[1].a = (struct supersede_args){ .n = 8u << 20, .pid = 3000 };
		for (int i = 1; i >= 0; i--)
			pthread_create(&t[i].th, NULL, sup_thread, &t[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i].th, NULL);
		CHECK(t[0].rc == 0 && t[1].rc == 0, "sup programs: %d %d", t[0].rc, t[1].rc);
		CHECK(t[0].a.puts_ok == SUPERSEDE_MAX - 1, "round %d: %u of %u hand-outs recorded",
		      round, t[0].a.puts_ok, SUPERSEDE_MAX - 1);
		claims += t[1].a.claims_ok;
		for (u32 e = 1; e < SUPERSEDE_MAX; e++) {
			u32 r = skel->bss->removed[e];
			if (r > 1 && !first_twice)
				first_twice = e;
			twice += r > 1;
			never += r == 0;
		}
		CHECK(count_entries(fd) == 0 && skel->bss->nr_pending == 0,
		      "round %d: %d entries left, nr_pending %llu", round, count_entries(fd),
		      (unsigned long long)skel->bss->nr_pending);
		skel->bss->nr_pending = 0;
	}
	if (g_verbose || twice || never)
		fprintf(stderr, "supersede: %llu claims won over %d hand-outs\n",
			(unsigned long long)claims, 6 * (SUPERSEDE_MAX - 1));
	CHECK(twice == 0, "%llu hand-outs' entries removed twice (first: enq_cnt %llu): a claim "
	      "for a superseded enq_cnt took a later hand-out's entry", (unsigned long long)twice,
	      (unsigned long long)first_twice);
	CHECK(never == 0, "%llu hand-outs' entries never removed (taken by a stale claim)",
	      (unsigned long long)never);
}

static struct census_args census_of(u64 now, int nr, const u64 *sent_at)
{
	struct census_args c = { .now = now, .nr = (u32)nr, .pid_base = 500 };

	for (int i = 0; i < nr; i++)
		skel->bss->census_sent_at[i] = sent_at[i];
	CHECK(run(skel->progs.census, &c, sizeof(c)) == 0, "program census failed");
	return c;
}

static void test_census(void)
{
	const u64 sec = 1000000000ull, ms = 1000000ull;
	struct census_args c;

	skel->data->stall_timeout_ns = sec;
	skel->bss->nr_pending = 0;

	/* An empty table: nothing counted, no age, nothing due. */
	c = census_of(20 * sec, 0, NULL);
	CHECK(c.entries == 0 && c.oldest_ns == 0 && !c.overdue, "empty: %llu entries, oldest %llu ns",
	      (unsigned long long)c.entries, (unsigned long long)c.oldest_ns);

	/* The host decides other tasks all the time but lost one 10 s ago: counted, its age
	 * is the oldest, and it is due for rescue by its own age. */
	c = census_of(20 * sec, 3, (u64[]){ 20 * sec - 2 * ms, 10 * sec, 20 * sec - 300 * ms });
	CHECK(c.entries == 3, "%llu entries counted of 3", (unsigned long long)c.entries);
	CHECK(c.oldest_ns == 10 * sec, "oldest %llu ns, expected 10 s", (unsigned long long)c.oldest_ns);
	CHECK(c.overdue, "a task pending for 10 s with a 1 s timeout is not due for rescue");

	/* Handed out 0.5 s ago: not due. */
	c = census_of(20 * sec, 1, (u64[]){ 20 * sec - sec / 2 });
	CHECK(c.oldest_ns == sec / 2 && !c.overdue, "0.5 s old: oldest %llu ns, overdue %u",
	      (unsigned long long)c.oldest_ns, c.overdue);

	/* Exactly the timeout is not overdue yet (older than it is). */
	c = census_of(20 * sec, 1, (u64[]){ 19 * sec });
	CHECK(c.oldest_ns == sec && !c.overdue, "1 s old: overdue %u", c.overdue);

	/* Stamped by another CPU after the walk took its clock (sent_at > now): age 0, not
	 * ~2^64, and not due; beside it a 40 ms old entry is the oldest. */
	c = census_of(20 * sec, 2, (u64[]){ 20 * sec + 5 * ms, 20 * sec - 40 * ms });
	CHECK(c.entries == 2, "%llu entries counted of 2", (unsigned long long)c.entries);
	CHECK(c.oldest_ns == 40 * ms, "oldest %llu ns with an entry newer than now, expected 40 ms",
	      (unsigned long long)c.oldest_ns);
	CHECK(!c.overdue, "an entry stamped after now is due for rescue");
	CHECK(skel->bss->nr_pending == 0, "nr_pending %llu", (unsigned long long)skel->bss->nr_pending);
}

static void test_pick(void)
{
	struct pick_args p;
	u32 *cnt = skel->bss->pick_count;

	memset(skel->bss->test_allowed, 1, sizeof(skel->bss->test_allowed));

	/* Two L2 siblings 4 and 5, both idle: only they are picked, about evenly. */
	memset(&skel->bss->test_topo, 0, sizeof(skel->bss->test_topo));
	skel->bss->test_topo.l2[0] = 4;
	skel->bss->test_topo.l2[1] = 5;
	memset(cnt, 0, sizeof(skel->bss->pick_count));
	p = (struct pick_args){ .nr = 2, .iters = 2000, .idle_mask = (1ull << 4) | (1ull << 5) };
	CHECK(run(skel->progs.pick, &p, sizeof(p)) == 0, "program pick failed");
	CHECK(cnt[4] + cnt[5] == 2000 && p.none == 0,
	      "picked 4: %u, 5: %u, CPU 0 (not a sibling): %u, none: %u", cnt[4], cnt[5], cnt[0],
	      p.none);
	CHECK(cnt[4] > 600 && cnt[5] > 600, "not spread: 4: %u, 5: %u", cnt[4], cnt[5]);

	/* Four siblings, only CPU 6 idle: found from every start. */
	for (int i = 0; i < 4; i++)
		skel->bss->test_topo.l2[i] = (u16)(4 + i);
	memset(cnt, 0, sizeof(skel->bss->pick_count));
	p = (struct pick_args){ .nr = 4, .iters = 2000, .idle_mask = 1ull << 6 };
	CHECK(run(skel->progs.pick, &p, sizeof(p)) == 0, "program pick failed");
	CHECK(cnt[6] == 2000 && p.none == 0, "idle CPU 6 found %u of 2000 times (none %u, 0: %u)",
	      cnt[6], p.none, cnt[0]);

	/* 64 siblings (the most a list holds), one idle: found from every start. */
	for (int i = 0; i < 64; i++)
		skel->bss->test_topo.l2[i] = (u16)i;
	memset(cnt, 0, sizeof(skel->bss->pick_count));
	p = (struct pick_args){ .nr = 64, .iters = 500, .idle_mask = 1ull << 63 };
	CHECK(run(skel->progs.pick, &p, sizeof(p)) == 0, "program pick failed");
	CHECK(cnt[63] == 500, "idle CPU 63 of 64 found %u of 500 times", cnt[63]);

	/* Not allowed: never picked even when idle. */
	skel->bss->test_allowed[5] = 0;
	skel->bss->test_topo.l2[0] = 4;
	skel->bss->test_topo.l2[1] = 5;
	memset(cnt, 0, sizeof(skel->bss->pick_count));
	p = (struct pick_args){ .nr = 2, .iters = 200, .idle_mask = 1ull << 5 };
	CHECK(run(skel->progs.pick, &p, sizeof(p)) == 0, "program pick failed");
	CHECK(cnt[5] == 0 && p.none == 200, "CPU 5 outside the affinity picked %u times", cnt[5]);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "bpfunit: needs root (bpf())\n");
		printf("0 passed, 1 failed\n");
		return 1;
	}
	skel = bpfunit_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "bpfunit: loading the test programs failed: %s\n", strerror(errno));
		printf("0 passed, 1 failed\n");
		return 1;
	}
	test_custody();
	test_census();
	test_supersede();
	test_pick();
	bpfunit_bpf__destroy(skel);
	return CHECK_DONE();
}
