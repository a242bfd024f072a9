/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpfunit.h - what the BPF unit tests' programs (bpfunit.bpf.c) and their driver
 * (bpfunit.c) share: the context structs of the SEC("syscall") programs.
 */
#ifndef GTHULHU_BPFUNIT_H
#define GTHULHU_BPFUNIT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

struct race_args {          /* custody_put/custody_claim hammered from several threads */
	__u32 n;                /* iterations */
	__s32 pid_base;
	__u32 nr_keys;          /* distinct pids cycled through (1..64) */
	__u32 puts_ok;
	__u32 claims_ok;
};

#define CENSUS_MAX 8
struct census_args {        /* custody_census over entries the program puts first */
	__u64 now;
	__u32 nr;                   /* entries (<= CENSUS_MAX): entry i is pid pid_base + i,
				     * handed out at census_sent_at[i] (.bss) */
	__s32 pid_base;
	__u64 entries;              /* out: what the walk counted */
	__u64 oldest_ns;            /* out: the oldest entry's age */
	__u32 overdue;              /* out: rescue due */
};

#define SUPERSEDE_MAX 65536
struct supersede_args {     /* the same pid handed out again and again while claims race */
	__u32 n;                /* owner: hand-outs (enq_cnt 1..n-1); decider: claim tries */
	__s32 pid;
	__u32 puts_ok;          /* out (owner) */
	__u32 drops_ok;         /* out (owner) */
	__u32 claims_ok;        /* out (decider) */
};

struct pick_args {          /* pick_from over test_topo's l2 list */
	__u32 nr;               /* siblings in the list */
	__u32 iters;            /* picks, each from a random start */
	__u64 idle_mask;        /* CPUs (< 64) made idle before every pick */
	__u32 none;             /* out: picks that found nothing */
};

#endif
