/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpfunit.bpf.c - the scheduler's own helpers (bpf/custody.bpf.h, bpf/idle.bpf.h) in
 * SEC("syscall") programs, so they can be tested on a kernel without sched_ext: the very
 * code main.bpf.c runs, with its kernel-only inputs (idle state, affinity) replaced by
 * arrays the test fills.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "intf.h"
#include "bpfunit.h"

char _license[] SEC("license") = "GPL";

/* What custody.bpf.h expects from its includer (in .bss, so the test can set them). */
volatile u64 nr_pending;
u64 pending_since;
u64 stall_timeout_ns = 1000000000ULL;
#include "custody.bpf.h"

/* What idle.bpf.h expects: a fake idle mask and affinity. */
u8 test_idle[MAX_CPUS];
u8 test_allowed[MAX_CPUS];
u32 pick_count[MAX_CPUS];
struct cpu_topo test_topo;

static __always_inline bool test_allowed_cpu(s32 cpu)
{
	return cpu >= 0 && cpu < MAX_CPUS && test_allowed[cpu];
}

static __always_inline bool test_claim(s32 cpu)
{
	if (cpu < 0 || cpu >= MAX_CPUS || !test_idle[cpu])
		return false;
	test_idle[cpu] = 0;
	return true;
}

#define IDLE_ALLOWED(p, cpu) test_allowed_cpu(cpu)
#define IDLE_CLAIM(cpu) test_claim(cpu)
#include "idle.bpf.h"

SEC("syscall")
int claim_race(struct race_args *a)
{
	u32 i, n = a->n, keys = a->nr_keys;

	if (keys < 1 || keys > 64)
		keys = 8;
	bpf_for(i, 0, n) {
		s32 pid = a->pid_base + (s32)(i % keys);
		u64 enq = i / keys + 1;

		if (!custody_put(pid, enq, i))
			a->puts_ok++;
		if (custody_claim(pid, enq))
			a->claims_ok++;
	}
	return 0;
}

u64 census_sent_at[CENSUS_MAX];   /* (a context may not be indexed by a variable) */

SEC("syscall")
int census(struct census_args *a)
{
	struct custody_census c;
	u32 i, nr = a->nr;

	if (nr > CENSUS_MAX)
		return -1;
	bpf_for(i, 0, nr) {
		if (i >= CENSUS_MAX || custody_put(a->pid_base + (s32)i, 1, census_sent_at[i]))
			return -1;
	}
	custody_census(a->now, &c);
	a->entries = c.entries;
	a->oldest_ns = c.oldest_ns;
	a->overdue = c.overdue;
	bpf_for(i, 0, nr)
		custody_drop(a->pid_base + (s32)i, 1);
	return 0;
}

/* supersede: removed[enq_cnt] counts how often the entry of that hand-out left the table
 * (a claim, or the owner's drop); sup_last is the newest hand-out, sup_done ends the
 * decider. An exact claim never takes a later hand-out's entry: each count stays <= 1. */
u32 removed[SUPERSEDE_MAX];
volatile u64 sup_last;
volatile u32 sup_done;
volatile u32 sup_spin;

/* The task's side: handed out (enq_cnt i), then it leaves (dequeue) before any decision
 * unless a claim took it first; then enqueued again with the next enq_cnt. */
SEC("syscall")
int sup_owner(struct supersede_args *a)
{
	u32 i, k, n = a->n;

	if (n > SUPERSEDE_MAX)
		n = SUPERSEDE_MAX;
	bpf_for(i, 1, n) {
		if (custody_put(a->pid, i, i))
			continue;
		a->puts_ok++;
		sup_last = i;
		/* a moment in custody, for the decider to see the hand-out */
		bpf_for(k, 0, 64)
			sup_spin += k;
		if (custody_drop(a->pid, i)) {
			a->drops_ok++;
			if (i < SUPERSEDE_MAX)
				__sync_fetch_and_add(&removed[i], 1);
		}
	}
	sup_done = 1;
	return 0;
}

/* The host's decisions (or the rescue): claim the newest hand-out it has seen. */
SEC("syscall")
int sup_decider(struct supersede_args *a)
{
	u32 i;

	bpf_for(i, 0, a->n) {
		u64 enq = sup_last;

		if (sup_done)
			break;

		if (enq && enq < SUPERSEDE_MAX && custody_claim(a->pid, enq)) {
			a->claims_ok++;
			__sync_fetch_and_add(&removed[enq], 1);
		}
	}
	return 0;
}

SEC("syscall")
int pick(struct pick_args *a)
{
	u32 it, c, iters = a->iters, nr = a->nr;

	bpf_for(it, 0, iters) {
		s32 cpu;

		bpf_for(c, 0, 64)
			test_idle[c] = (a->idle_mask >> c) & 1;
		cpu = pick_from(NULL, test_topo.l2, nr, bpf_get_prandom_u32());
		if (cpu >= 0 && cpu < MAX_CPUS)
			pick_count[cpu]++;
		else
			a->none++;
	}
	return 0;
}
