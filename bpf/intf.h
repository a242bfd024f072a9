/* SPDX-License-Identifier: GPL-2.0 */
/*
 * intf.h - the wire format between the BPF scheduler and the host, and the one source of
 * truth for it. Included by the BPF programs (with vmlinux.h), by the C host (with
 * <linux/types.h>), and turned into LuaJIT ffi.cdef text at build time by
 * scripts/gen-cdef.sh, which copies everything between the FFI-BEGIN and FFI-END markers.
 * So: inside the markers, only plain C that LuaJIT's parser accepts (fixed-size,
 * pointer-free structs, enums with constant expressions; no #define, no #if).
 *
 * Both structs are multiples of 8 bytes with every field naturally aligned, so the layout
 * is the same for clang -target bpf, gcc x86_64 and LuaJIT; the host still checks
 * sizeof/offsetof against LuaJIT at every policy load (pol.c) and refuses a mismatch.
 */
#ifndef GTHULHU_INTF_H
#define GTHULHU_INTF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* FFI-BEGIN */
enum {
	RL_CPU_ANY       = 1 << 20,  /* dispatched_task_ctx.cpu: any CPU (the shared DSQ) */
	MAX_CPUS         = 1024,     /* highest CPU id + 1 that the BPF side and host handle */
	MAX_SIBLINGS     = 64,       /* per cache level, per CPU, in struct cpu_topo */
	MAX_BATCH        = 4096,     /* most tasks the host takes in one policy call */
	RL_ENQ_PLACED    = 1 << 30,  /* queued_task_ctx.flags: BPF already placed the task */
	RL_DISP_FAST     = 1 << 0,   /* dispatched_task_ctx.flags: grant the fast path */
	RL_DISP_FAST_QUEUE = 1 << 1, /* ... and with no idle CPU, queue the wake-up in BPF too */
	RL_DISP_FAST_SLICE_SHIFT = 32, /* ... flags >> this: its slice cap in us (0: the decision's) */
};

/* queued_task_ctx.flags are the kernel's enqueue flags (SCX_ENQ_*), passed through, plus
 * RL_ENQ_PLACED: the task woke up while a CPU it may use was idle (or, on a sync wake-up,
 * its waker's CPU was about to be free), and BPF ran it there at once: the fast path, which
 * the policy granted the task in its last decision (RL_DISP_FAST; scheduler.early_processing
 * switches it off for all). The record only tells the policy (so its accounting, e.g.
 * vruntime, stays true); the host sends no decision for it.
 *
 * dispatched_task_ctx.flags: RL_DISP_FAST grants the task the fast path for its next
 * wake-ups (without it they all come to the host), with the decision's slice, or the cap in
 * bits 32..63 (microseconds) when that is smaller. RL_DISP_FAST_QUEUE (with RL_DISP_FAST)
 * widens it to wake-ups that find no idle CPU: BPF queues them itself, in the shared DSQ at
 * their placed vtime, instead of asking the policy. The other bits are passed through. */

/* BPF -> host, one record per runnable task, over the BPF ringbuf "queued". */
struct queued_task_ctx {
	__s32 pid;
	__s32 tgid;
	__s32 cpu;             /* CPU the task last ran on */
	__s32 nr_cpus_allowed;
	__u64 flags;           /* enqueue flags */
	__u64 start_ts;        /* when it first ran under its last decision (ns, CLOCK_MONOTONIC),
				* moved on by any wait between stints: stop_ts - start_ts = CPU time */
	__u64 stop_ts;         /* when it last stopped running */
	__u64 exec_runtime;    /* CPU time since the task last slept (ns) */
	__u64 weight;          /* 100 = nice 0 (kernel weight / 10.24 scale: 1..10000) */
	__u64 vtime;           /* p->scx.dsq_vtime */
	__u64 enq_cnt;         /* bumped at every enqueue; echo it back in the decision */
	char  comm[16];
};

/* host -> BPF, one record per decision, over the user ringbuf "dispatched". */
struct dispatched_task_ctx {
	__s32 pid;
	__s32 cpu;             /* a CPU id, or RL_CPU_ANY */
	__u64 flags;           /* RL_DISP_FAST (+ slice cap), else passed through */
	__u64 slice_ns;        /* 0 = the default slice */
	__u64 vtime;           /* 0 = priority task: runs before everything else */
	__u64 enq_cnt;         /* copied from the queued record; stale values are cancelled */
};

/* Topology of one CPU, as the host read it from sysfs (BPF array map "cpu_topo"). */
struct cpu_topo {
	__u32 nr_l2;
	__u32 nr_l3;
	__u16 l2[64];          /* CPU ids sharing this CPU's L2 (itself included) */
	__u16 l3[64];          /* CPU ids sharing this CPU's L3 (itself included) */
};
/* FFI-END */

/* Exit info carried from ops.exit() to the host (in .bss of the skeleton). dump is the
 * text the kernel writes on an error exit (task and CPU states, then ops.dump's lines);
 * ops.exit_dump_len = UEI_DUMP_LEN, so the kernel truncates it to what fits here. */
#define UEI_REASON_LEN 128
#define UEI_MSG_LEN    1024
#define UEI_DUMP_LEN   16384
struct user_exit_info {
	__s32 kind;            /* enum scx_exit_kind; 0 = still running */
	__s32 pad;
	__s64 exit_code;
	char  reason[UEI_REASON_LEN];
	char  msg[UEI_MSG_LEN];
	char  dump[UEI_DUMP_LEN];
};

/* Key of the BPF `pending` hash (bpf/custody.bpf.h): one custody entry per hand-out of a
 * task (pid, enq_cnt); pad is always 0 (the key is compared bytewise). The host walks
 * the keys after detach (sched_print_custody). */
struct custody_key {
	__s32 pid;
	__u32 pad;
	__u64 enq_cnt;
};

/* Which kfunc each kernel-compatibility wrapper of main.bpf.c calls on this kernel
 * (.bss compat_paths, set at init, printed by the host with -v; bpf/compat.bpf.h). */
/* Test-suite fault injection (hidden --test-fault=NAME; rodata fault_inject of
 * main.bpf.c), bits shared by the BPF side and host/sched_bpf.c. */
#define FAULT_STARVE_HOST  (1u << 0)  /* never dispatch the host's threads ("starve-host") */
#define FAULT_LEAK_CUSTODY (1u << 1)  /* one phantom in nr_pending, no map entry ("leak-custody") */

#define COMPAT_DSQ_INSERT       (1u << 0)  /* scx_bpf_dsq_insert, else scx_bpf_dispatch (6.12) */
#define COMPAT_INSERT_VTIME     (1u << 1)  /* scx_bpf_dsq_insert_vtime */
#define COMPAT_INSERT_VTIME_ARGS (1u << 2) /* __scx_bpf_dsq_insert_vtime(p, &args) */
#define COMPAT_MOVE_TO_LOCAL    (1u << 3)  /* scx_bpf_dsq_move_to_local, else scx_bpf_consume */
#define COMPAT_DSQ_PEEK         (1u << 4)  /* scx_bpf_dsq_peek, else a DSQ iterator */
#define COMPAT_EXIT_DUMP        (1u << 5)  /* scx_exit_info has the dump buffer */
#define COMPAT_DSQ_MOVE         (1u << 6)  /* scx_bpf_dsq_move, else scx_bpf_dispatch_from_dsq */
#define COMPAT_RECORDED         (1u << 31) /* init ran (the other bits are valid) */

/* The `queued` ringbuf (bpf/rings.bpf.h): its size in bytes, and the share of it that
 * quiet (told-only) records may fill before they wake the host by themselves (1/this).
 * Shared with the simulator's model of the ring (host/sim/sim_model.c). */
#define QUEUED_RING_BYTES    (1 << 20)
#define RINGS_QUIET_WAKE_DIV 8

/* Well-known DSQ ids (per-CPU DSQs use the CPU id). */
#define SHARED_DSQ 0x10000ULL
#define SCHED_DSQ  0x10001ULL

#endif /* GTHULHU_INTF_H */
