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

struct due_args {           /* custody_rescue_due on a prepared table */
	__u64 now;
	__u64 sent_at;          /* the one pending entry's hand-out time */
	__s32 pid;
	__u32 due;              /* out */
};

struct pick_args {          /* pick_from over test_topo's l2 list */
	__u32 nr;               /* siblings in the list */
	__u32 iters;            /* picks, each from a random start */
	__u64 idle_mask;        /* CPUs (< 64) made idle before every pick */
	__u32 none;             /* out: picks that found nothing */
};

#endif
