/* SPDX-License-Identifier: GPL-2.0 */
/*
 * transport.h - what the transport test's BPF programs (transport.bpf.c) and their
 * drivers (transport.c, tests/bench/xport.c) share: the `seen` record of each decision
 * drained, and the context structs of the SEC("syscall") programs (passed as ctx_in of
 * BPF_PROG_TEST_RUN and written back).
 */
#ifndef GTHULHU_TRANSPORT_H
#define GTHULHU_TRANSPORT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SEEN_MAX 16384   /* decisions recorded, indexed by pid - pid_base */

struct seen {
	__u32 count;
	__s32 cpu;
	__u64 vtime;
	__u64 slice_ns;
	__u64 enq_cnt;
	__u64 flags;
};

struct produce_args {
	__u32 n;
	__s32 pid_base;
	__u64 enq_base;
	__u32 produced;
	__u32 dropped;
	__u32 quiet;      /* the first `quiet` records are submitted as the fast path's (no wake-up) */
	__u32 pad;
};

struct consume_args {
	__s32 pid_base;
	__u32 drained;
	__u32 stray;
	__u32 bad_size;
};

#endif
