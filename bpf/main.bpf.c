/* SPDX-License-Identifier: GPL-2.0 */
/*
 * main.bpf.c - gthulhu_lua: a sched_ext scheduler with no policy of its own.
 *
 * Design
 * ------
 * Every runnable task that is not kept in the kernel (below) is sent to the host over the
 * BPF ringbuf `queued` (struct queued_task_ctx). The host runs the Lua policy on a batch
 * and sends one decision per task back over the user ringbuf `dispatched`
 * (struct dispatched_task_ctx): CPU (or RL_CPU_ANY), vtime (0 = priority), slice.
 * ops.dispatch drains `dispatched` and inserts each task, vtime-ordered, into the DSQ of the
 * chosen CPU (id = cpu) or into SHARED_DSQ (a priority decision goes to the head of a CPU's
 * local DSQ and preempts), then runs, in order: the host's threads, the previous task if
 * it is still first in vtime order (see keep_prev), then whichever of this CPU's DSQ and
 * SHARED_DSQ has the earlier head.
 *
 * Safety, because a user-space scheduler can be slow, stopped, buggy or dead:
 *  - The host's own threads (tgid == host_tgid) never go to user space: they wait in
 *    SCHED_DSQ, which every CPU consumes first (right after applying decisions), and a
 *    waking host thread preempts a CPU when tasks wait for it, so the scheduler can
 *    always run, and a host that was stopped gets a CPU back at once.
 *  - Per-CPU kthreads, kswapd, kcompactd and khugepaged go straight to their CPU's local
 *    DSQ (starving them can deadlock the host: memory reclaim, per-CPU work); every other
 *    kthread stays in the kernel too, in SHARED_DSQ. Kernel threads never wait on Lua.
 *  - Ringbuf full: the task goes to SHARED_DSQ with the default slice (nr_sched_congested).
 *  - Custody: every task handed to user space is recorded in the `pending` hash
 *    ({pid, enq_cnt} -> sent_at). A decision applies only if its {pid, enq_cnt} entry is
 *    still there (deleting it is the claim); anything else is cancelled
 *    (nr_cancel_dispatches). A decision whose
 *    CPU the task may not use is bounced to an allowed CPU (nr_bounce_dispatches).
 *  - Stalled host: the host stamps host_hb_ns (in .bss, mmapped) at every loop turn. A
 *    heartbeat bpf_timer checks it: if tasks are pending and the host has been silent for
 *    stall_timeout_ns, the scheduler enters "stalled" mode (nr_host_stalls): new tasks are
 *    scheduled in-kernel (SHARED_DSQ), and ops.dispatch rescues every pending task older
 *    than the timeout from the `pending` hash into SHARED_DSQ (nr_rescued), bumping its
 *    enq_cnt so the host's late decision is cancelled. Tasks the host lost are rescued the
 *    same way even when it is alive. When the heartbeat is fresh again, tasks flow to user
 *    space again. So a stopped or wedged host never stalls the machine, and the sched_ext
 *    watchdog never sees a stranded task. Each period the heartbeat walks the whole hash
 *    and publishes its size and its oldest entry's age (pending_entries,
 *    pending_oldest_ms): the stats' exact view of custody.
 *  - The timer also kicks a CPU when the host's threads wait in SCHED_DSQ for too long.
 *  - If the host process dies, its struct_ops link goes with it: the kernel's default
 *    scheduler takes over. Until the kernel has finished unregistering us, the dying
 *    host's main thread flips the scheduler into stalled mode for good (ops.stopping sees
 *    PF_EXITING), so no task is handed to a process that is gone.
 *
 * DSQs are all vtime-ordered except SCHED_DSQ (FIFO): the kernel refuses to mix FIFO and
 * vtime inserts in one DSQ, so kernel-decided tasks use vtime_floor (the newest vtime
 * applied from the host), which keeps them in line with the policy's own ordering.
 *
 * Kernels 6.12 .. 7.x: kfuncs renamed since 6.12 are called through g_*() wrappers that
 * pick what the running kernel has with bpf_ksym_exists() (dead branches are removed by
 * the verifier), no #ifdef.
 */
#include "compat.bpf.h"   /* vmlinux.h's types + every kfunc we call, for any kernel >= 6.12 */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "intf.h"
#include "bounds.bpf.h"  /* the bounds' arithmetic, shared with the host and the simulator */

char _license[] SEC("license") = "GPL";

#define BPF_STRUCT_OPS(name, args...) SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define BPF_STRUCT_OPS_SLEEPABLE(name, args...) SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)

#define PF_KTHREAD	0x00200000
#define PF_EXITING	0x00000004
#define NSEC_PER_MSEC	1000000ULL
#define PENDING_MAX	16384
#define ENOMEM		12
#define ESRCH		3
#define EEXIST		17
#define CLOCK_MONOTONIC	1

/* --- Tunables: rodata, set by the host before load ------------------------------------ */
const volatile u64 slice_ns_default = 20 * NSEC_PER_MSEC;
const volatile u64 slice_ns_min = NSEC_PER_MSEC;
const volatile u32 host_tgid;
const volatile bool builtin_idle;
const volatile bool early_processing;
const volatile bool wakeup_preempt;
/* Batched host wake-ups (scheduler.wake_batch, wake_delay_us): records are submitted
 * without waking the host until wake_batch of them wait or the oldest has waited
 * wake_delay_ns (checked at every enqueue and dispatch). 0: the ringbuf's own adaptive
 * wake-up (the host is woken when it has caught up). */
const volatile u32 wake_batch;
/* scheduler.host_last: serve the host's queue after this CPU's and the shared DSQ (as
 * scx_rustland_core runs its user-space scheduler when no other task needs the CPU), so
 * the host runs when the queued work is done and finds a larger backlog; it still goes
 * first once it has waited slice_ns_min. false: the host first (the default). */
const volatile bool host_last;
const volatile u64 wake_delay_ns = 1000000;
const volatile bool debug;
const volatile u64 stall_timeout_ns = 1000 * NSEC_PER_MSEC;
const volatile u32 nr_cpu_ids_max = 1;   /* CPU ids are < this (the host reads sysfs) */
/* Safety bounds against the sched_ext watchdog (host: cfg_slice_max_ns()): no slice is
 * longer than slice_ns_max, and prev never keeps its CPU past a waiter that has waited
 * wait_bound_ns. */
const volatile u64 slice_ns_max = 625 * NSEC_PER_MSEC;
const volatile u64 wait_bound_ns = 500 * NSEC_PER_MSEC;
/* Priority decisions: PRIO_BUDGET_NS of each PRIO_PERIOD_NS of a CPU (bounds.bpf.h). */
/* Fault injection for the test suite only (GTHULHU_FAULT, see host/sched_bpf.c); 0 in any
 * real run, where the verifier removes the dead branches. */
const volatile u32 fault_inject;

/* --- Stats: .bss, read by the host (Gthulhu's names) ---------------------------------- */
volatile u64 nr_queued;             /* records waiting in the `queued` ringbuf */
volatile u64 nr_scheduled;          /* tasks the host holds, not yet decided (host writes) */
volatile u64 nr_running;            /* tasks on a CPU now */
volatile u64 nr_online_cpus;
volatile u64 nr_user_dispatches;    /* decisions applied */
volatile u64 nr_kernel_dispatches;  /* tasks scheduled in-kernel (kthreads, host, stalls) */
volatile u64 nr_cancel_dispatches;  /* stale decisions dropped */
volatile u64 nr_bounce_dispatches;  /* decisions whose CPU the task may not use */
volatile u64 nr_failed_dispatches;  /* decisions for tasks that are gone, malformed records */
volatile u64 nr_sched_congested;    /* ringbuf full: scheduled in-kernel */
volatile u64 usersched_last_run_at; /* when a host thread last got a CPU */
volatile u64 nr_host_stalls;        /* times the stalled-host mode was entered */
volatile u64 nr_rescued;            /* pending tasks scheduled in-kernel by the rescue */
volatile u64 nr_pending;            /* tasks in user-space custody now (the counter) */
volatile u64 pending_entries;       /* entries in the `pending` map (the heartbeat's walk) */
volatile u64 pending_oldest_ms;     /* ... age of the oldest of them then */
volatile u64 host_hb_ns;            /* host heartbeat (host writes, every loop turn) */
volatile u64 host_stalled;          /* 1 while in stalled mode */
volatile u64 nr_kept;               /* slice expiries where prev stayed first in vtime order */
volatile u64 nr_slice_clamped;      /* decisions whose slice was beyond slice_ns_max */
volatile u64 nr_keep_bounded;       /* prev first in vtime order but not kept: a waiter waited too long */
volatile u64 nr_prio_throttled;     /* priority decisions applied as ordinary ones (budget spent) */
volatile u64 nr_resumed;            /* preempted tasks put back in-kernel with the slice they had left */
volatile u64 nr_placed;             /* waking tasks BPF ran on an idle CPU at once (policy told) */
volatile u64 nr_starved;            /* tasks run out of vtime order: waited past wait_bound_ns in a DSQ */
volatile u64 nr_placed_untold;      /* ... whose record did not fit in the ringbuf */
volatile u64 nr_wakeup_preempts;    /* woken tasks whose decision preempted a later-vtime task */
volatile u64 nr_host_wakes;         /* wake_batch: forced wake-ups of the host */
volatile u64 nr_sync_wakeups;       /* fast-path wake-ups placed on the waker's CPU (or its idle sibling) */
volatile u64 nr_fast_queued;        /* fast-path wake-ups with no idle CPU queued in BPF (RL_DISP_FAST_QUEUE) */
volatile u64 idle_mask[MAX_CPUS / 64]; /* idle-CPU hints for the policy */
volatile u64 host_urgent_tid;       /* a host thread holding the policy's state (reload save()): host writes */

struct user_exit_info uei;          /* exit info, read by the host after detach */

static u64 vtime_floor;             /* newest vtime applied from the host */
static u64 vtime_now;               /* largest vtime of a decided task that started running */
static u64 pending_since;           /* when nr_pending last rose from 0 */
static bool rescue_needed;
static u64 starve_epoch;            /* bumped by the heartbeat: CPUs scan for starved tasks */
static bool host_dead;              /* the host's main thread is exiting: stalled for good */
static s32 host_last_cpu;
static u64 unwoken_since;           /* wake_batch: oldest record submitted without a wake-up */
static u64 host_queued_at;          /* host_last: when a host thread was last put in SCHED_DSQ */

/* --- Maps ------------------------------------------------------------------------------ */
#include "rings.bpf.h"   /* queued, dispatched */
#include "custody.bpf.h" /* pending: custody_put / _claim / _drop / _census */

struct task_ctx {
	u64 enq_cnt;
	u64 start_ts;      /* first time on a CPU since the last enqueue, moved on by any wait
			    * between stints (bounds_resume_start): stop_ts - start_ts is the
			    * CPU time run since (reported) */
	u64 stop_ts;
	u64 exec_runtime;  /* CPU time since the task last woke up */
	u64 run_start;     /* start of the current stint on a CPU */
	u64 slice;         /* slice of the last decision applied */
	u64 queued_at;     /* when it was last inserted into one of our DSQs */
	u64 stint_slice;   /* slice it had when it last started running */
	u64 slice_left;    /* slice left when it last stopped while still runnable */
	bool fresh;        /* enqueued since it last ran: the next run sets start_ts */
	bool decided;      /* placed by a host decision (not in-kernel) */
	bool prio;         /* placed by a priority decision: its runtime counts against the budget */
	bool woke;         /* its last enqueue was a wake-up (for wakeup_preempt) */
	u64 prio_charged_to; /* priority runtime of this stint charged up to here */
	bool placed;       /* running under a fast-path placement, not a decision: its vtime
			    * advances with the CPU time it uses (bounds_prev_vtime at stopping) */
	bool fast;         /* its last decision granted the fast path (RL_DISP_FAST) */
	bool fast_queue;   /* ... also when no CPU is idle (RL_DISP_FAST_QUEUE) */
	u64 fast_slice;    /* ... with this slice */
};

/* Per CPU: priority runtime in the current throttling period. */
struct cpu_ctx {
	u64 prio_period_start;
	u64 prio_runtime;
	u64 scan_epoch;        /* starve_epoch of this CPU's last starvation scan */
	u32 scan_cursor;       /* which other CPUs' DSQs the next scan looks through */
	/* What runs on this CPU now, for wakeup_preempt: a task placed by an ordinary host
	 * decision (run_vt valid), or anything else (host, kernel thread, priority: never
	 * preempted by a wake-up). */
	u64 run_vt;            /* its vtime when it started running */
	u64 run_start;
	u64 run_w;             /* its weight (100 = nice 0) */
	bool run_user;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct cpu_ctx);
} cpu_ctx_stor SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctx_stor SEC(".maps");

/* Filled by the host from sysfs before attach. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct cpu_topo);
} cpu_topo SEC(".maps");

struct hb_timer {
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct hb_timer);
} hb_timer SEC(".maps");

/* --- Kernel compatibility (6.12 .. 7.x; declarations in compat.bpf.h) ----------------- */
volatile u32 compat_paths;          /* COMPAT_* (intf.h): what the wrappers call here */

/* Record once, at init, which kfunc each wrapper below resolved to (the host prints it). */
static __always_inline void g_compat_record(void)
{
	u32 f = COMPAT_RECORDED;

	if (bpf_ksym_exists(scx_bpf_dsq_insert))
		f |= COMPAT_DSQ_INSERT;
	if (bpf_ksym_exists(scx_bpf_dsq_insert_vtime))
		f |= COMPAT_INSERT_VTIME;
	if (bpf_ksym_exists(__scx_bpf_dsq_insert_vtime))
		f |= COMPAT_INSERT_VTIME_ARGS;
	if (bpf_ksym_exists(scx_bpf_dsq_move_to_local))
		f |= COMPAT_MOVE_TO_LOCAL;
	if (bpf_ksym_exists(scx_bpf_dsq_peek))
		f |= COMPAT_DSQ_PEEK;
	if (bpf_ksym_exists(scx_bpf_dsq_move))
		f |= COMPAT_DSQ_MOVE;
	if (bpf_core_field_exists(struct scx_exit_info, dump))
		f |= COMPAT_EXIT_DUMP;
	compat_paths = f;
}

static __always_inline void g_insert(struct task_struct *p, u64 dsq, u64 slice, u64 flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert))
		scx_bpf_dsq_insert(p, dsq, slice, flags);
	else
		scx_bpf_dispatch(p, dsq, slice, flags);
}

static __always_inline void g_insert_vtime(struct task_struct *p, u64 dsq, u64 slice,
					   u64 vtime, u64 flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert_vtime)) {
		scx_bpf_dsq_insert_vtime(p, dsq, slice, vtime, flags);
	} else if (bpf_ksym_exists(__scx_bpf_dsq_insert_vtime)) {
		struct scx_bpf_dsq_insert_vtime_args___compat args = {
			.dsq_id = dsq, .slice = slice, .vtime = vtime, .enq_flags = flags,
		};
		__scx_bpf_dsq_insert_vtime(p, &args);
	} else {
		scx_bpf_dispatch_vtime(p, dsq, slice, vtime, flags);
	}
}

static __always_inline bool g_move_to_local(u64 dsq)
{
	if (bpf_ksym_exists(scx_bpf_dsq_move_to_local))
		return scx_bpf_dsq_move_to_local(dsq);
	return scx_bpf_consume(dsq);
}

/* Move the task an scx_dsq iterator is on (6.12: scx_bpf_dispatch_from_dsq). */
static __always_inline bool g_dsq_move(struct bpf_iter_scx_dsq *it, struct task_struct *p,
				       u64 dsq, u64 flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_move))
		return scx_bpf_dsq_move(it, p, dsq, flags);
	return scx_bpf_dispatch_from_dsq(it, p, dsq, flags);
}

/* scx_bpf_error_bstr() with printf-style arguments: ejects the scheduler with a message. */
#define g_error(fmt, args...) ({					\
	static char ___fmt[] = fmt;					\
	unsigned long long ___param[___bpf_narg(args)];			\
	___bpf_fill(___param, args);					\
	scx_bpf_error_bstr(___fmt, ___param, sizeof(___param));		\
})

/* scx_bpf_dump_bstr() with printf-style arguments: a line of the exit dump (ops.dump). */
#define g_dump(fmt, args...) ({						\
	static char ___fmt[] = fmt;					\
	unsigned long long ___param[___bpf_narg(args)];			\
	___bpf_fill(___param, args);					\
	scx_bpf_dump_bstr(___fmt, ___param, sizeof(___param));		\
})

#define dbg(fmt, args...) do { if (debug) bpf_printk(fmt, ##args); } while (0)

/* --- Helpers --------------------------------------------------------------------------- */
/* The host's scheduling thread (its main thread: the run loop never leaves it). Only it
 * goes ahead of everything (SCHED_DSQ), and the reload worker while it holds the running
 * policy's state (host_urgent_tid: the batches get C decisions until it gives it back);
 * the host's other threads (API connections, the reload worker otherwise, the log writer,
 * the recorder) are scheduled in-kernel like any task that must not wait on the policy
 * (is_host_helper). */
static __always_inline bool is_host_task(const struct task_struct *p)
{
	u64 urgent = host_urgent_tid;

	return host_tgid && p->tgid == host_tgid &&
	       (p->pid == host_tgid || (urgent && p->pid == (s32)urgent));
}

static __always_inline bool is_host_helper(const struct task_struct *p)
{
	return host_tgid && p->tgid == host_tgid && !is_host_task(p);
}

static __always_inline bool comm_starts(const struct task_struct *p, const char *pfx, int n)
{
	for (int i = 0; i < n && i < 16; i++)
		if (p->comm[i] != pfx[i])
			return false;
	return true;
}

/* Kernel threads whose starvation can deadlock the host: run them where they are. */
static __always_inline bool is_critical_kthread(const struct task_struct *p)
{
	if (!(p->flags & PF_KTHREAD))
		return false;
	if (p->nr_cpus_allowed == 1)
		return true;
	return comm_starts(p, "kswapd", 6) || comm_starts(p, "kcompactd", 9) ||
	       comm_starts(p, "khugepaged", 10);
}

static __always_inline struct task_ctx *lookup_tctx(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
}

static __always_inline bool cpu_ok(s32 cpu)
{
	return cpu >= 0 && (u32)cpu < nr_cpu_ids_max && cpu < MAX_CPUS;
}

extern struct rq runqueues __ksym;

/* May p be queued on cpu's own DSQ: a valid id, in p's affinity, and a CPU sched_ext runs
 * ops.dispatch on (SCX_RQ_ONLINE: set at CPU activation, cleared before it goes down; a
 * CPU being brought up is already in cpu_online_mask, and idle, well before that). A DSQ
 * no CPU consumes would hold the task until the watchdog ejects us. */
static __always_inline bool cpu_usable(const struct task_struct *p, s32 cpu)
{
	struct rq *rq;

	if (!cpu_ok(cpu) || !bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
		return false;
	rq = bpf_per_cpu_ptr(&runqueues, cpu);
	return rq && (rq->scx.flags & SCX_RQ_ONLINE);
}

/* Wake an idle CPU that may run p (prefer `cpu`), so it consumes what we just queued. */
static __always_inline void kick_for(struct task_struct *p, s32 cpu, bool preempt)
{
	if (cpu_ok(cpu)) {
		scx_bpf_kick_cpu(cpu, preempt ? SCX_KICK_PREEMPT : SCX_KICK_IDLE);
		return;
	}
	cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (cpu >= 0) {
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		return;
	}
	if (!preempt)
		return;
	/* No idle CPU: preempt the task's last CPU, unless the host runs there (it would
	 * just be dispatched again first); then a neighbour it may use. */
	cpu = scx_bpf_task_cpu(p);
	if (cpu == host_last_cpu && nr_cpu_ids_max > 1) {
		s32 next = (s32)(((u32)cpu + 1) % nr_cpu_ids_max);

		if (cpu_ok(next) && bpf_cpumask_test_cpu(next, p->cpus_ptr))
			cpu = next;
	}
	scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
}

/* In-kernel placement: shared DSQ, in line with the policy's current vtime. */
static __always_inline void kernel_dispatch(struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = lookup_tctx(p);

	if (tctx) {
		tctx->queued_at = bpf_ktime_get_ns();
		tctx->prio = false;
	}
	g_insert_vtime(p, SHARED_DSQ, slice_ns_default, vtime_floor, enq_flags);
	__sync_fetch_and_add(&nr_kernel_dispatches, 1);
	kick_for(p, -1, false);
}

static __always_inline void update_nr_queued(void)
{
	nr_queued = bpf_ringbuf_query(&queued, BPF_RB_AVAIL_DATA) / (sizeof(struct queued_task_ctx) + 8);
}

/* vtime_now = max(vtime_now, vt), atomically: CPUs start tasks concurrently. */
static __always_inline void vtime_advance(u64 vt)
{
	u32 i;

	bpf_for(i, 0, 4) {
		u64 cur = vtime_now;

		if ((s64)(vt - cur) <= 0 ||
		    __sync_val_compare_and_swap(&vtime_now, cur, vt) == cur)
			break;
	}
}

/* --- Records to the host ---------------------------------------------------------------- */
static __always_inline void fill_record(struct queued_task_ctx *r, struct task_struct *p,
					const struct task_ctx *tctx, u64 flags)
{
	r->pid = p->pid;
	r->tgid = p->tgid;
	r->cpu = scx_bpf_task_cpu(p);
	r->nr_cpus_allowed = p->nr_cpus_allowed;
	r->flags = flags;
	r->start_ts = tctx->start_ts;
	r->stop_ts = tctx->stop_ts;
	r->exec_runtime = tctx->exec_runtime;
	r->weight = p->scx.weight;
	r->vtime = p->scx.dsq_vtime;
	r->enq_cnt = tctx->enq_cnt;
	__builtin_memcpy(r->comm, p->comm, sizeof(r->comm));
}

/* The fast path: run p on `cpu`'s local DSQ now (it is idle, or the waker's CPU about to
 * be given up), with the slice its policy granted, and tell the policy afterwards (no
 * custody, no decision expected). Not urgent: a quiet record, the host reads it with its
 * next batch (rings_submit_quiet). */
static __always_inline void place_fast(struct task_struct *p, struct task_ctx *tctx, u64 dsq,
				       u64 enq_flags)
{
	struct queued_task_ctx *r;

	/* The record first: it carries the vtime of the task's last decision, as any record. */
	r = rings_reserve_quiet(sizeof(*r));
	if (r)
		fill_record(r, p, tctx, SCX_ENQ_WAKEUP | RL_ENQ_PLACED);
	/* The placement stands for a decision: at slice expiry the task competes in vtime
	 * order like a decided task (keep_prev), at its last vtime pulled up to the policy's
	 * clock less one default slice of credit (bounds_placed_vtime). A stale vtime (or 0,
	 * never decided) would keep it first until the wait bound. */
	tctx->fresh = true;
	tctx->decided = true;
	tctx->placed = true;
	tctx->slice = tctx->fast_slice;
	tctx->queued_at = bpf_ktime_get_ns();
	tctx->prio = false;
	tctx->slice_left = 0;
	tctx->woke = true;
	p->scx.dsq_vtime = bounds_placed_vtime(p->scx.dsq_vtime, vtime_now, slice_ns_default);
	if (dsq == SCX_DSQ_LOCAL || (dsq & SCX_DSQ_LOCAL_ON) == SCX_DSQ_LOCAL_ON)
		g_insert(p, dsq, tctx->fast_slice, enq_flags);
	else   /* a CPU's own DSQ, the shared one: in vtime order with what the policy queued */
		g_insert_vtime(p, dsq, tctx->fast_slice, p->scx.dsq_vtime, enq_flags);
	__sync_fetch_and_add(&nr_placed, 1);
	if (!r) {
		__sync_fetch_and_add(&nr_placed_untold, 1);
		return;
	}
	rings_submit_quiet(r);
}

/* wake_batch: wake the host now. A record reserved and discarded with FORCE_WAKEUP wakes
 * the consumer without giving it anything to read (libbpf skips discarded records). */
static __always_inline void wake_host_now(void)
{
	struct queued_task_ctx *r;

	unwoken_since = 0;
	r = bpf_ringbuf_reserve(&queued, sizeof(*r), 0);
	if (!r)
		return;     /* full: the host has plenty to read and was woken before */
	bpf_ringbuf_discard(r, BPF_RB_FORCE_WAKEUP);
	__sync_fetch_and_add(&nr_host_wakes, 1);
}

static __always_inline void wake_host_if_due(void)
{
	u64 since = unwoken_since;

	if (wake_batch && since && bounds_age_ns(since, bpf_ktime_get_ns()) >= wake_delay_ns)
		wake_host_now();
}

/* --- Idle CPU selection ---------------------------------------------------------------- */
#define IDLE_ALLOWED(p, cpu) (cpu_ok(cpu) && bpf_cpumask_test_cpu(cpu, (p)->cpus_ptr))
#define IDLE_CLAIM(cpu) scx_bpf_test_and_clear_cpu_idle(cpu)
#include "idle.bpf.h"    /* pick_from: the sibling-list walk */

/* prev_cpu if idle, else an idle L2 sibling, else an idle L3 sibling, else any idle CPU.
 * Claims the CPU it returns (its idle state is cleared): only for a task that will run
 * there now. */
static s32 pick_idle_topo(struct task_struct *p, s32 prev_cpu)
{
	struct cpu_topo *t;
	u32 key = prev_cpu;
	s32 cpu;

	if (cpu_ok(prev_cpu) && bpf_cpumask_test_cpu(prev_cpu, p->cpus_ptr) &&
	    scx_bpf_test_and_clear_cpu_idle(prev_cpu))
		return prev_cpu;
	if (p->nr_cpus_allowed == 1)
		return -1;

	t = bpf_map_lookup_elem(&cpu_topo, &key);
	if (t) {
		u32 start = bpf_get_prandom_u32();
		cpu = pick_from(p, t->l2, t->nr_l2, start);
		if (cpu >= 0)
			return cpu;
		cpu = pick_from(p, t->l3, t->nr_l3, start);
		if (cpu >= 0)
			return cpu;
	}
	return scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
}

static __always_inline bool wakeup_beats(s32 cpu, u64 vt, u64 now);

/* Do CPUs a and b share a last-level cache (the host's topology map)? */
static __always_inline bool cpus_share_l3(s32 a, s32 b)
{
	u32 key = a, i, n;
	struct cpu_topo *t = bpf_map_lookup_elem(&cpu_topo, &key);

	if (!t)
		return false;
	n = t->nr_l3 < MAX_SIBLINGS ? t->nr_l3 : MAX_SIBLINGS;
	bpf_for(i, 0, n) {
		if (i >= MAX_SIBLINGS)
			break;
		if (t->l3[i] == b)
			return true;
	}
	return false;
}

/* May p take the fast path now: its policy granted it, and the host is there to be told. */
static __always_inline struct task_ctx *fast_granted(struct task_struct *p)
{
	struct task_ctx *tctx;

	if (!early_processing || host_stalled || (p->flags & PF_KTHREAD) || !host_tgid)
		return NULL;
	tctx = lookup_tctx(p);
	return tctx && tctx->fast ? tctx : NULL;
}

/*
 * Sync wake-up (SCX_WAKE_SYNC: the waker is about to sleep, as a pipe or socket writer
 * waiting for the answer): the waker's CPU, when p may run there and nothing else waits for
 * it, as the kernel's fair class does; a hand-off then costs no IPI and no idle exit. But an
 * idle prev_cpu sharing the waker's cache is better still (p runs at once, nothing waits).
 */
static __always_inline s32 pick_sync(struct task_struct *p, s32 prev_cpu, bool *idle)
{
	s32 here = bpf_get_smp_processor_id();
	struct task_struct *cur = (void *)bpf_get_current_task_btf();

	*idle = false;
	if (!cpu_usable(p, here) || (cur->flags & PF_EXITING) ||
	    scx_bpf_dsq_nr_queued(SCX_DSQ_LOCAL) || scx_bpf_dsq_nr_queued(here) ||
	    is_host_task(cur))
		return -1;
	if (prev_cpu != here && cpu_usable(p, prev_cpu) && cpus_share_l3(prev_cpu, here) &&
	    scx_bpf_test_and_clear_cpu_idle(prev_cpu)) {
		*idle = true;
		return prev_cpu;
	}
	return here;
}

s32 BPF_STRUCT_OPS(gthulhu_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct task_ctx *tctx;
	bool is_idle = false;
	s32 cpu;

	if (is_host_task(p) || is_host_helper(p)) {
		cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
		if (is_idle && is_host_helper(p)) {
			g_insert(p, SCX_DSQ_LOCAL, slice_ns_default, 0);
			__sync_fetch_and_add(&nr_kernel_dispatches, 1);
		}
		return cpu;
	}
	/* Not granted the fast path: the task goes to the host, whose decision picks and
	 * kicks a CPU. Claiming an idle CPU here would wake it twice (once for nothing). */
	tctx = fast_granted(p);
	if (!tctx)
		return prev_cpu;
	if (wake_flags & SCX_WAKE_SYNC) {
		cpu = pick_sync(p, prev_cpu, &is_idle);
		if (cpu >= 0) {
			/* An idle prev_cpu: its local DSQ, it runs at once. The waker's CPU: its
			 * own DSQ, in vtime order, so that when the waker sleeps ops.dispatch
			 * chooses between the wakee and whatever waits there or in the shared DSQ
			 * (in its local DSQ, a chain of hand-offs never let ops.dispatch run: tasks
			 * waiting in the DSQs starved until the starvation scan, 500 ms). */
			place_fast(p, tctx, is_idle ? SCX_DSQ_LOCAL : (u64)cpu, 0);
			__sync_fetch_and_add(&nr_sync_wakeups, 1);
			return cpu;
		}
	}
	if (builtin_idle) {
		cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	} else {
		cpu = pick_idle_topo(p, prev_cpu);
		is_idle = cpu >= 0;
	}
	if (is_idle) {
		place_fast(p, tctx, SCX_DSQ_LOCAL, 0);
		return cpu;
	}
	/* No idle CPU. scheduler.wakeup_preempt: run it now on prev_cpu all the same if it
	 * comes first in vtime order there by more than a minimum slice (wakeup_beats), as
	 * EEVDF's wake-up preemption does; the task running there keeps its decision and the
	 * slice it has left (resume_preempted). Compared without the sleeper's credit (its
	 * vtime pulled up to vtime_now itself): with it every wake-up beat the running task
	 * and hackbench drowned in preemptions (7.6x EEVDF's time). */
	if (wakeup_preempt && cpu_usable(p, prev_cpu) &&
	    wakeup_beats(prev_cpu, bounds_placed_vtime(p->scx.dsq_vtime, vtime_now, 0),
			 bpf_ktime_get_ns())) {
		place_fast(p, tctx, SCX_DSQ_LOCAL, SCX_ENQ_PREEMPT);
		__sync_fetch_and_add(&nr_wakeup_preempts, 1);
	} else if (tctx->fast_queue) {
		/* RL_DISP_FAST_QUEUE: queued here, in the shared DSQ at its placed vtime (any CPU
		 * takes it at its next dispatch, in vtime order), not sent to the policy. */
		place_fast(p, tctx, SHARED_DSQ, 0);
		__sync_fetch_and_add(&nr_fast_queued, 1);
	}
	return prev_cpu;
}

/* Has `cpu` spent its priority budget in the current period? */
static __always_inline bool prio_throttled(s32 cpu, u64 now)
{
	u32 key = 0;
	struct cpu_ctx *c = bpf_map_lookup_percpu_elem(&cpu_ctx_stor, &key, cpu);

	return c && bounds_prio_spent(c->prio_period_start, c->prio_runtime, now);
}

/* --- Enqueue: to user space, or kept in the kernel ------------------------------------- */
static __always_inline void resume_preempted(struct task_struct *p, struct task_ctx *tctx,
					     u64 enq_flags)
{
	s32 cpu = scx_bpf_task_cpu(p);
	u64 left = tctx->slice_left;

	tctx->slice_left = 0;
	tctx->queued_at = bpf_ktime_get_ns();
	__sync_fetch_and_add(&nr_resumed, 1);
	if (tctx->prio && cpu_usable(p, cpu)) {
		if (!prio_throttled(cpu, tctx->queued_at)) {
			/* Behind whatever was queued there directly (the priority task that
			 * preempted it, if one did), not at the head: in front, it would take the
			 * CPU back from its preemptor at once. */
			g_insert(p, SCX_DSQ_LOCAL_ON | cpu, left, enq_flags);
			return;
		}
		/* The CPU's priority budget is spent (ops.tick ended its slice): an ordinary
		 * task until the period ends, behind what is queued (its vtime 0 would put it
		 * first in any DSQ). */
		tctx->prio = false;
		p->scx.dsq_vtime = vtime_floor ? vtime_floor : 1;
		__sync_fetch_and_add(&nr_prio_throttled, 1);
	}
	if (cpu_usable(p, cpu)) {
		g_insert_vtime(p, cpu, left, p->scx.dsq_vtime, enq_flags);
		kick_for(p, cpu, false);
	} else {
		g_insert_vtime(p, SHARED_DSQ, left, p->scx.dsq_vtime, enq_flags);
		kick_for(p, -1, false);
	}
}

void BPF_STRUCT_OPS(gthulhu_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct queued_task_ctx *r;
	struct task_ctx *tctx;
	s32 pid = p->pid;
	long err;
	u64 now;

	if (is_host_task(p)) {
		/* The host woke because tasks wait for it: get it a CPU now, preempting if
		 * no CPU is idle. Only on a wake-up: a host thread that was preempted is
		 * already first in line (SCHED_DSQ), and kicking for it preempted whatever
		 * ran, often another host thread, which came back here and kicked in turn: a
		 * storm of preemptions among the host's threads (two of them swapped a CPU
		 * every 8 us for 70 ms in a trace of the wakeup-latency probe). */
		host_queued_at = bpf_ktime_get_ns();
		g_insert(p, SCHED_DSQ, slice_ns_default, enq_flags);
		kick_for(p, -1, (enq_flags & SCX_ENQ_WAKEUP) && (nr_pending > 0 || host_stalled));
		return;
	}
	if (is_critical_kthread(p)) {
		g_insert(p, SCX_DSQ_LOCAL, slice_ns_default, enq_flags);
		__sync_fetch_and_add(&nr_kernel_dispatches, 1);
		return;
	}
	if (is_host_helper(p)) {
		/* The host's other threads: in-kernel, in line with the policy's tasks. */
		kernel_dispatch(p, enq_flags);
		return;
	}
	tctx = lookup_tctx(p);
	if ((enq_flags & SCX_ENQ_WAKEUP) && tctx && fast_granted(p)) {
		/* A wake-up select_cpu did not see (a task allowed on one CPU only) or that
		 * found no idle CPU then: its own CPU, if it is idle now. */
		s32 cpu = scx_bpf_task_cpu(p);

		if (cpu_usable(p, cpu) && scx_bpf_test_and_clear_cpu_idle(cpu)) {
			place_fast(p, tctx, SCX_DSQ_LOCAL_ON | cpu, enq_flags);
			scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
			return;
		}
	}
	if (tctx && tctx->decided && !(enq_flags & SCX_ENQ_WAKEUP) && !host_stalled &&
	    tctx->slice_left >= RESUME_LEFT_MIN_NS && !(p->flags & PF_KTHREAD)) {
		/* Preempted (by the host waking up, a priority task, a higher sched class)
		 * with slice left: the policy's decision still stands. Back on its CPU's DSQ
		 * with its vtime and what is left of its slice, no round trip: otherwise every
		 * host wake-up that preempts a CPU sends one more task to the host. */
		resume_preempted(p, tctx, enq_flags);
		return;
	}
	if (tctx) {
		tctx->fresh = true;
		tctx->decided = false;
		tctx->woke = enq_flags & SCX_ENQ_WAKEUP;
	}
	if (p->flags & PF_KTHREAD) {
		/* Other kernel threads: in-kernel, ahead of user tasks (they are short and
		 * others wait on them: RCU, writeback, the sched_ext helper itself), with the
		 * minimum slice so that going first never means holding a CPU for long. */
		if (tctx) {
			tctx->queued_at = bpf_ktime_get_ns();
			tctx->prio = false;
		}
		g_insert_vtime(p, SHARED_DSQ, slice_ns_min, 0, enq_flags);
		__sync_fetch_and_add(&nr_kernel_dispatches, 1);
		kick_for(p, -1, false);
		return;
	}
	if (!tctx || host_stalled || !host_tgid) {
		kernel_dispatch(p, enq_flags);
		return;
	}

	r = bpf_ringbuf_reserve(&queued, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&nr_sched_congested, 1);
		kernel_dispatch(p, enq_flags);
		return;
	}
	now = bpf_ktime_get_ns();
	tctx->enq_cnt++;
	err = custody_put(pid, tctx->enq_cnt, now);
	if (err) {
		/* Custody table full: never hand out a task we could not rescue. */
		bpf_ringbuf_discard(r, 0);
		__sync_fetch_and_add(&nr_sched_congested, 1);
		kernel_dispatch(p, enq_flags);
		return;
	}

	fill_record(r, p, tctx, enq_flags & ~(u64)RL_ENQ_PLACED);
	if (!wake_batch) {
		rings_submit_urgent(r, 0);
		update_nr_queued();
		return;
	}
	rings_submit_urgent(r, BPF_RB_NO_WAKEUP);
	update_nr_queued();
	if (!unwoken_since)
		unwoken_since = now;
	/* (another CPU may have set unwoken_since after this one's now) */
	if (nr_queued >= wake_batch || bounds_age_ns(unwoken_since, now) >= wake_delay_ns)
		wake_host_now();
}

/* --- Applying the host's decisions ----------------------------------------------------- */

/* Charge what a priority task ran since it was last charged to this CPU's budget: at
 * ops.stopping, and also at every tick and at slice expiry while keep_prev keeps it (the
 * kernel calls no ops.stopping for a task that keeps its CPU: charged only there, a
 * CPU-bound priority task ran until the wait bound, 500 ms, against a budget of 80 ms in
 * every 100 ms). */
static __always_inline void prio_charge(struct task_ctx *tctx, u64 now)
{
	u32 key = 0;
	struct cpu_ctx *c;
	s64 ran = (s64)(now - tctx->prio_charged_to);

	tctx->prio_charged_to = now;
	if (!tctx->prio || ran <= 0)
		return;
	c = bpf_map_lookup_elem(&cpu_ctx_stor, &key);
	if (c)
		bounds_prio_charge(&c->prio_period_start, &c->prio_runtime, (u64)ran, now);
}

/* --- Wake-up preemption (scheduler.wakeup_preempt) ----------------------------------------
 * A decision only queues a task; without this, a woken task waits for whatever runs on its
 * CPU to use up its slice (at a tick: up to 4 ms at HZ=250), however early its vtime. With
 * it, like EEVDF's wake-up preemption, a woken task whose decided vtime is earlier, by more
 * than one minimum slice of virtual time, than the current vtime of the ordinary task
 * running on the CPU it is queued for preempts that task. The preempted task keeps its
 * decision and the slice it has left (resume_preempted), so this costs no extra round trip. */
static __always_inline void note_running(struct task_struct *p, const struct task_ctx *tctx,
					 u64 now)
{
	u32 key = 0;
	struct cpu_ctx *c = bpf_map_lookup_elem(&cpu_ctx_stor, &key);

	if (!c)
		return;
	c->run_user = p && tctx && tctx->decided && !tctx->prio && !is_host_task(p) &&
		      !(p->flags & PF_KTHREAD);
	if (!c->run_user)
		return;
	c->run_vt = p->scx.dsq_vtime;
	c->run_start = now;
	c->run_w = p->scx.weight ? p->scx.weight : 100;
}

/* Would a task of vtime vt, queued now, run before what runs on cpu? */
static __always_inline bool wakeup_beats(s32 cpu, u64 vt, u64 now)
{
	u32 key = 0;
	struct cpu_ctx *c;
	u64 cur;

	if (!cpu_ok(cpu))
		return false;
	c = bpf_map_lookup_percpu_elem(&cpu_ctx_stor, &key, cpu);
	if (!c || !c->run_user)
		return false;
	cur = c->run_vt + (now > c->run_start ? (now - c->run_start) * 100 / c->run_w : 0);
	return vt + slice_ns_min < cur;
}

static __always_inline bool try_wakeup_preempt(struct task_struct *p, s32 cpu, u64 vt, u64 now)
{
	s32 here = bpf_get_smp_processor_id();

	if (cpu < 0)
		cpu = scx_bpf_task_cpu(p);
	/* The CPU applying the decision is in ops.dispatch: it picks by vtime next anyway. */
	if (cpu == here || !bpf_cpumask_test_cpu(cpu, p->cpus_ptr) || !wakeup_beats(cpu, vt, now))
		return false;
	scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
	__sync_fetch_and_add(&nr_wakeup_preempts, 1);
	return true;
}

static void apply_decision(struct task_struct *p, const struct dispatched_task_ctx *d)
{
	u64 slice = d->slice_ns ? d->slice_ns : slice_ns_default;
	struct task_ctx *tctx = lookup_tctx(p);
	u64 vtime = d->vtime, now = bpf_ktime_get_ns();
	s32 cpu = d->cpu;
	u64 dsq;

	/* Whatever the host let through: no slice beyond the watchdog's safety bound. */
	if (slice > slice_ns_max) {
		slice = slice_ns_max;
		__sync_fetch_and_add(&nr_slice_clamped, 1);
	}
	if (tctx) {
		tctx->slice = slice;
		tctx->decided = true;
		tctx->queued_at = now;
		tctx->prio = false;
		tctx->placed = false;
		/* The policy grants (or denies) the fast path for the task's next wake-ups. */
		tctx->fast = d->flags & RL_DISP_FAST;
		tctx->fast_queue = tctx->fast && (d->flags & RL_DISP_FAST_QUEUE);
		tctx->fast_slice = bounds_fast_slice(d->flags, slice, slice_ns_max);
	}
	if (cpu == RL_CPU_ANY) {
		dsq = SHARED_DSQ;
		cpu = -1;
	} else if (cpu_usable(p, cpu)) {
		dsq = cpu;
	} else {
		/* Bounce: the policy chose a CPU the task may not use (not in its affinity,
		 * offline, or no CPU at all). */
		__sync_fetch_and_add(&nr_bounce_dispatches, 1);
		dbg("gthulhu: bounce pid=%d cpu=%d", p->pid, cpu);
		cpu = scx_bpf_task_cpu(p);
		if (cpu_usable(p, cpu)) {
			dsq = cpu;
		} else {
			dsq = SHARED_DSQ;
			cpu = -1;
		}
	}

	if (vtime == 0) {
		/* Priority: straight to the head of a CPU's local DSQ, preempting whatever runs
		 * there. The CPU the policy chose, else the one applying the decision (it is in
		 * ops.dispatch, so it runs the task next: no IPI round trip), else the task's
		 * own. A CPU whose priority budget is spent takes it as an ordinary decision
		 * (vtime_floor: behind what is queued now). */
		s32 here = bpf_get_smp_processor_id();

		if (cpu < 0)
			cpu = bpf_cpumask_test_cpu(here, p->cpus_ptr) ? here : scx_bpf_task_cpu(p);
		if (cpu_ok(cpu) && prio_throttled(cpu, now)) {
			__sync_fetch_and_add(&nr_prio_throttled, 1);
			vtime = vtime_floor ? vtime_floor : 1;
			if (dsq != SHARED_DSQ)
				dsq = cpu_usable(p, cpu) ? (u64)cpu : SHARED_DSQ;
		}
	}
	if (vtime == 0) {
		s32 here = bpf_get_smp_processor_id();

		if (tctx)
			tctx->prio = true;
		if (cpu_usable(p, cpu)) {
			g_insert(p, SCX_DSQ_LOCAL_ON | cpu, slice, SCX_ENQ_HEAD | SCX_ENQ_PREEMPT);
			if (cpu != here)
				scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
		} else {
			g_insert_vtime(p, SHARED_DSQ, slice, 0, 0);
			kick_for(p, -1, true);
		}
	} else {
		bool woke = tctx && tctx->woke;

		g_insert_vtime(p, dsq, slice, vtime, 0);
		if ((s64)(vtime - vtime_floor) > 0)
			vtime_floor = vtime;
		if (!(wakeup_preempt && woke &&
		      try_wakeup_preempt(p, dsq == SHARED_DSQ ? -1 : cpu, vtime, now)))
			kick_for(p, dsq == SHARED_DSQ ? -1 : cpu, false);
	}
	__sync_fetch_and_add(&nr_user_dispatches, 1);
}

static long handle_decision(struct bpf_dynptr *dynptr, void *ctx)
{
	struct dispatched_task_ctx d;
	struct task_struct *p;
	s32 pid;

	if (bpf_dynptr_read(&d, sizeof(d), dynptr, 0, 0)) {
		__sync_fetch_and_add(&nr_failed_dispatches, 1);
		return 0;
	}
	pid = d.pid;

	if (!custody_claim(pid, d.enq_cnt)) {
		/* Not in our custody with this enq_cnt: stale, rescued (maybe right now, on
		 * another CPU), or bogus. */
		__sync_fetch_and_add(&nr_cancel_dispatches, 1);
		dbg("gthulhu: cancel pid=%d enq_cnt=%llu", pid, d.enq_cnt);
		return 0;
	}

	p = bpf_task_from_pid(pid);
	if (!p) {
		__sync_fetch_and_add(&nr_failed_dispatches, 1);
		return 0;
	}
	apply_decision(p, &d);
	bpf_task_release(p);

	/* Each insert takes a dispatch slot; the record we stop on is already consumed. */
	return scx_bpf_dispatch_nr_slots() ? 0 : 1;
}

/* --- Rescue: pending tasks the host has not decided in time ---------------------------- */
struct rescue_ctx {
	u64 now;
};

/* Stale entries seen but not rescued (no dispatch slot left). A global, not a field of
 * the callback context: a counter on the stack would make every callback iteration a new
 * verifier state and the loop would never converge. */
static u32 rescue_left;

static long rescue_one(struct bpf_map *map, struct custody_key *key, struct pending_val *pv,
		       struct rescue_ctx *rc)
{
	struct task_struct *p;
	struct task_ctx *tctx;
	s32 pid = key->pid;
	u64 enq_cnt = key->enq_cnt;

	if (!bounds_rescue_takes(pv->sent_at, rc->now, stall_timeout_ns, host_stalled))
		return 0;
	if (!scx_bpf_dispatch_nr_slots()) {
		rescue_left++;
		return 1;
	}
	/* Only the CPU whose claim succeeds rescues: another CPU's rescue or the host's
	 * decision may be taking this very entry. */
	if (!custody_claim(pid, enq_cnt))
		return 0;
	p = bpf_task_from_pid(pid);
	if (!p)
		return 0;
	tctx = lookup_tctx(p);
	if (tctx && tctx->enq_cnt == enq_cnt) {
		/* Bump enq_cnt: the host's late decision for this task will be cancelled. */
		tctx->enq_cnt++;
		tctx->decided = false;
		tctx->prio = false;
		tctx->queued_at = rc->now;
		g_insert_vtime(p, SHARED_DSQ, slice_ns_default, vtime_floor, 0);
		__sync_fetch_and_add(&nr_rescued, 1);
		__sync_fetch_and_add(&nr_kernel_dispatches, 1);
	}
	bpf_task_release(p);
	return 0;
}

static void rescue_pending(void)
{
	struct rescue_ctx rc = { .now = bpf_ktime_get_ns() };

	rescue_left = 0;
	bpf_for_each_map_elem(&pending, rescue_one, &rc, 0);
	if (!rescue_left)
		rescue_needed = false;
}

/* --- Slice expiry ---------------------------------------------------------------------- */
/* The first task in a DSQ: its vtime (~0 when the DSQ is empty) and since when it has
 * been waiting there (0 if unknown). */
struct head {
	u64 vt;
	u64 queued_at;
};

static __always_inline void head_of(u64 dsq, struct head *h)
{
	struct task_struct *p;
	struct task_ctx *tctx;

	h->vt = ~0ULL;
	h->queued_at = 0;
	if (bpf_ksym_exists(scx_bpf_dsq_peek)) {
		p = scx_bpf_dsq_peek(dsq);
		if (p) {
			h->vt = p->scx.dsq_vtime;
			tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
			if (tctx)
				h->queued_at = tctx->queued_at;
		}
		return;
	}
	bpf_for_each(scx_dsq, p, dsq, 0) {
		h->vt = p->scx.dsq_vtime;
		tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
		if (tctx)
			h->queued_at = tctx->queued_at;
		break;
	}
}

/*
 * prev used up its slice and is still runnable. Whoever waits in this CPU's DSQ or the
 * shared DSQ was decided while prev ran, so by itself the CPU would simply alternate,
 * whatever the vtimes, and weights would only act through slices (which the tick rounds
 * up: 4 ms at HZ=250). Instead prev competes in the same vtime order: its decided vtime
 * advanced by the time it ran since, scaled by 100/weight (the vtime clock the policies
 * use). If it is still first, it keeps the CPU for another slice of the policy's length;
 * otherwise it goes back to the policy with everything it ran reported.
 */
static bool keep_prev(struct task_struct *prev, s32 cpu, const struct head *h)
{
	struct task_ctx *tctx;
	u64 vt, now, start;

	if (!prev || !(prev->scx.flags & SCX_TASK_QUEUED) || is_host_task(prev) || host_stalled)
		return false;
	tctx = lookup_tctx(prev);
	if (!tctx || !tctx->decided || !tctx->slice)
		return false;
	start = tctx->start_ts;
	now = bpf_ktime_get_ns();
	prio_charge(tctx, now);
	vt = bounds_prev_vtime(prev->scx.dsq_vtime, bounds_age_ns(start, now), prev->scx.weight);
	if (vt > h->vt)
		return false;
	/* First in vtime order, but never past a waiter that has waited wait_bound_ns (a
	 * nice -20 task against a nice 0 one, or a large lag, would hold the CPU for
	 * seconds), nor as a priority task on a CPU whose priority budget is spent. */
	if (bounds_waited_past(h->queued_at, now, wait_bound_ns) ||
	    (tctx->prio && prio_throttled(cpu, now))) {
		__sync_fetch_and_add(&nr_keep_bounded, 1);
		return false;
	}
	prev->scx.slice = tctx->slice;
	__sync_fetch_and_add(&nr_kept, 1);
	return true;
}

/* --- Starvation ------------------------------------------------------------------------ */
/*
 * A vtime-ordered DSQ starves a task whose vtime stays above those of newer arrivals: with
 * deadlines of up to 100 minimum slices ahead (gthulhu.lua) and 160 hackbench tasks on
 * 2 CPUs, one task waited 5 s and the watchdog ejected us. Safety cannot depend on the
 * policy's arithmetic, so once per heartbeat period every CPU that dispatches looks
 * through its own DSQ and the shared one for a task that has waited past wait_bound_ns
 * and runs the first one it finds next, out of vtime order.
 */
/* The iterator bpf_for_each() declares (libbpf names it ___it), for scx_bpf_dsq_move(). */
#ifndef BPF_FOR_EACH_ITER
#define BPF_FOR_EACH_ITER (&___it)
#endif

/* Move every task of `dsq` that waited past the bound (at most STARVE_MOVE_MAX, and the
 * dispatch slots left) to this CPU's local DSQ, oldest-queued order kept: a flood of
 * starved tasks (stress-ng's loadavg: thousands of nice 19 threads) must drain faster
 * than it ages. Returns how many moved. */
static __always_inline u32 run_starved(s32 cpu, u64 dsq, u64 now)
{
	struct task_struct *p;
	struct task_ctx *tctx;
	u32 moved = 0;

	bpf_for_each(scx_dsq, p, dsq, 0) {
		if (moved >= STARVE_MOVE_MAX || !scx_bpf_dispatch_nr_slots())
			break;
		tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
		if (!tctx || !bounds_waited_past(tctx->queued_at, now, wait_bound_ns))
			continue;
		if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		if (g_dsq_move(BPF_FOR_EACH_ITER, p, SCX_DSQ_LOCAL, 0))
			moved++;
	}
	if (moved)
		__sync_fetch_and_add(&nr_starved, moved);
	return moved;
}

static __always_inline bool scan_starved(s32 cpu)
{
	u32 key = 0;
	struct cpu_ctx *c = bpf_map_lookup_elem(&cpu_ctx_stor, &key);
	u64 now, epoch = starve_epoch;

	u32 moved, j, n, other;

	if (!c || c->scan_epoch == epoch)
		return false;
	c->scan_epoch = epoch;
	now = bpf_ktime_get_ns();
	moved = run_starved(cpu, cpu, now) + run_starved(cpu, SHARED_DSQ, now);
	/* Also a few other CPUs' DSQs, in turn: a CPU monopolized by real-time tasks hardly
	 * dispatches at all, and what waits in its DSQ must not wait for it. */
	n = bounds_scan_nr_others(nr_cpu_ids_max);
	bpf_for(j, 0, n) {
		other = bounds_scan_other((u32)cpu, c->scan_cursor, j, nr_cpu_ids_max);
		if (other < MAX_CPUS && (s32)other != cpu)
			moved += run_starved(cpu, other, now);
	}
	c->scan_cursor += n;
	return moved > 0;
}

/* --- Dispatch ------------------------------------------------------------------------- */
/* host_last: the host's thread has waited slice_ns_min in SCHED_DSQ (stamped by the CPU
 * that queued it: read before the clock). */
static __always_inline bool host_waited_enough(void)
{
	u64 queued_at = host_queued_at;

	return bounds_age_ns(queued_at, bpf_ktime_get_ns()) >= slice_ns_min;
}

void BPF_STRUCT_OPS(gthulhu_dispatch, s32 cpu, struct task_struct *prev)
{
	struct head hc, hs;
	u64 vt_cpu, vt_shared;

	if (rescue_needed || host_stalled)
		rescue_pending();

	/* Apply the host's decisions first: they wake the CPUs they target, so the work
	 * spreads instead of waiting for this CPU. */
	if (scx_bpf_dispatch_nr_slots())
		/* NO_WAKEUP: the host never sleeps waiting for room in `dispatched` (it retries
		 * on its next turn), so the irq_work a wake-up costs per drain buys nothing. */
		bpf_user_ringbuf_drain(&dispatched, handle_decision, NULL, BPF_RB_NO_WAKEUP);
	update_nr_queued();
	wake_host_if_due();

	/* Tasks that waited past the bound go first, even before the host: a host that is
	 * runnable all the time (busy) would otherwise hold this CPU against everyone in
	 * the DSQs, kernel threads included (stress-ng: the sched_ext watchdog's own
	 * kworker "failed to check in for 5 s"). Once per heartbeat period. */
	if (scan_starved(cpu))
		return;

	/* Then the host: it is what makes everything else move, and after a stall it must
	 * get a CPU to come back at all. It mostly sleeps in epoll_wait, so first place
	 * costs the others little; a busy host holds at most one CPU per thread. */
	if (!(fault_inject & FAULT_STARVE_HOST) && (!host_last || host_waited_enough()) &&
	    g_move_to_local(SCHED_DSQ))
		return;

	/* This CPU's DSQ and the shared one are both vtime-ordered: serve whichever head
	 * comes first, so a priority task (vtime 0) in the shared DSQ does not wait behind
	 * tasks placed on this CPU. */
	head_of(cpu, &hc);
	head_of(SHARED_DSQ, &hs);
	vt_cpu = hc.vt;
	vt_shared = hs.vt;
	if (keep_prev(prev, cpu, vt_cpu < vt_shared ? &hc : &hs))
		return;
	if (vt_shared < vt_cpu) {
		if (g_move_to_local(SHARED_DSQ) || g_move_to_local(cpu))
			return;
	} else {
		if (g_move_to_local(cpu) || g_move_to_local(SHARED_DSQ))
			return;
	}
	if (host_last && !(fault_inject & FAULT_STARVE_HOST))
		g_move_to_local(SCHED_DSQ);
}

/* --- Task lifecycle and accounting ------------------------------------------------------ */
void BPF_STRUCT_OPS(gthulhu_runnable, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = lookup_tctx(p);

	/* Woke up: CPU time "since the task last slept" starts again. */
	if (tctx)
		tctx->exec_runtime = 0;
}

void BPF_STRUCT_OPS(gthulhu_running, struct task_struct *p)
{
	struct task_ctx *tctx;
	u64 now = bpf_ktime_get_ns();

	__sync_fetch_and_add(&nr_running, 1);
	if (host_tgid && p->pid == host_tgid) {   /* the scheduling thread only */
		usersched_last_run_at = now;
		host_last_cpu = scx_bpf_task_cpu(p);
	}
	tctx = lookup_tctx(p);
	if (wakeup_preempt)
		note_running(p, tctx, now);
	if (!tctx)
		return;
	if (tctx->decided && !tctx->prio && !(p->flags & PF_KTHREAD))
		vtime_advance(p->scx.dsq_vtime);
	tctx->run_start = now;
	tctx->prio_charged_to = now;
	tctx->stint_slice = p->scx.slice;
	if (tctx->fresh) {
		tctx->start_ts = now;
		tctx->fresh = false;
	} else {
		tctx->start_ts = bounds_resume_start(tctx->start_ts, tctx->stop_ts, now);
	}
}

void BPF_STRUCT_OPS(gthulhu_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx;
	u64 now = bpf_ktime_get_ns();

	__sync_fetch_and_sub(&nr_running, 1);
	if (wakeup_preempt)
		note_running(NULL, NULL, now);
	if (p->pid == host_tgid && host_tgid && (p->flags & PF_EXITING) && !host_dead) {
		/* The host's main thread is dying (killed: a clean exit detaches first). Until
		 * the kernel finishes unregistering us, schedule in-kernel and give back every
		 * task it held, rather than hand more tasks to a process that is gone. */
		host_dead = true;
		host_stalled = 1;
		rescue_needed = true;
		__sync_fetch_and_add(&nr_host_stalls, 1);
		dbg("gthulhu: host exiting: in-kernel scheduling until unregistered");
	}
	tctx = lookup_tctx(p);
	if (tctx) {
		tctx->stop_ts = now;
		u64 ran = now > tctx->run_start ? now - tctx->run_start : 0;

		tctx->exec_runtime += ran;
		prio_charge(tctx, now);
		/* A placed task's vtime is no decision of the policy's: it advances with the
		 * CPU time used, as the policies' vruntime does, until the next decision. Else a
		 * task that only ever takes the fast path (a ping-pong) kept the same vtime
		 * forever and came first against everything in the DSQs. */
		if (tctx->placed && ran)
			p->scx.dsq_vtime = bounds_prev_vtime(p->scx.dsq_vtime, ran, p->scx.weight);
		/* Still runnable with slice left: it is being preempted (see resume_preempted). */
		tctx->slice_left = bounds_slice_left(runnable, tctx->stint_slice, ran);
	}
}

/* A priority task's budget is charged while it runs (see prio_charge): once the CPU's is
 * spent, its slice ends now, and keep_prev lets the others run. */
void BPF_STRUCT_OPS(gthulhu_tick, struct task_struct *p)
{
	struct task_ctx *tctx = lookup_tctx(p);
	u64 now;

	if (!tctx || !tctx->prio)
		return;
	now = bpf_ktime_get_ns();
	prio_charge(tctx, now);
	if (prio_throttled(bpf_get_smp_processor_id(), now))
		p->scx.slice = 0;
}

void BPF_STRUCT_OPS(gthulhu_update_idle, s32 cpu, bool idle)
{
	u32 w = (u32)cpu / 64;

	if (w >= MAX_CPUS / 64)
		return;
	if (idle)
		__sync_fetch_and_or(&idle_mask[w], 1ULL << (cpu & 63));
	else
		__sync_fetch_and_and(&idle_mask[w], ~(1ULL << (cpu & 63)));
}

/* Forget p's custody entry, the one of its current hand-out (enq_cnt). */
static __always_inline void drop_custody(struct task_struct *p)
{
	struct task_ctx *tctx = lookup_tctx(p);

	if (tctx)
		custody_drop(p->pid, tctx->enq_cnt);
}

/* The task left our custody without a decision (property change, class change, exit):
 * forget it, so nr_pending stays true and the rescue does not chase it. A decision that
 * still arrives for it is cancelled (no pending entry). */
void BPF_STRUCT_OPS(gthulhu_dequeue, struct task_struct *p, u64 deq_flags)
{
	drop_custody(p);
}

s32 BPF_STRUCT_OPS(gthulhu_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	struct task_ctx *tctx, *ptctx;
	struct task_struct *parent;

	tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!tctx)
		return -ENOMEM;
	/* A child inherits its parent's fast-path grant (the policy's word on the parent
	 * until it decides the child itself): a fork storm's children do not each wait for a
	 * round trip before their first run on an idle CPU. */
	if (args->fork) {
		parent = bpf_get_current_task_btf();
		ptctx = bpf_task_storage_get(&task_ctx_stor, parent, 0, 0);
		if (ptctx && !(p->flags & PF_KTHREAD)) {
			tctx->fast = ptctx->fast;
			tctx->fast_slice = ptctx->fast_slice;
		}
	}
	return 0;
}

void BPF_STRUCT_OPS(gthulhu_exit_task, struct task_struct *p, struct scx_exit_task_args *args)
{
	drop_custody(p);
}

/* --- Heartbeat -------------------------------------------------------------------------- */
static int heartbeat(void *map, int *key, struct bpf_timer *timer)
{
	/* The stamps other CPUs write first, then the clock (and signed ages besides). */
	u64 hb = host_hb_ns, since = pending_since, host_ran = usersched_last_run_at;
	u64 now = bpf_ktime_get_ns();
	u64 period = bounds_hb_period_ns(stall_timeout_ns);
	struct custody_census cs;

	/* Every period: what custody holds and how old its oldest entry is, for the stats
	 * and for the rescue below. */
	custody_census(now, &cs);
	pending_entries = cs.entries;
	pending_oldest_ms = cs.oldest_ns / NSEC_PER_MSEC;

	if (!host_stalled) {
		if (bounds_stall_enter(nr_pending, hb, since, now, stall_timeout_ns)) {
			host_stalled = 1;
			rescue_needed = true;
			__sync_fetch_and_add(&nr_host_stalls, 1);
			dbg("gthulhu: host silent for %llu ms, %llu tasks pending: stalled mode",
			    bounds_age_ns(hb, now) / NSEC_PER_MSEC, nr_pending);
		} else if (cs.overdue) {
			/* The host is alive but some task has waited too long for its decision
			 * (lost, or the host is slow): rescue the overdue ones. */
			rescue_needed = true;
		}
	} else if (!host_dead && bounds_stall_leave(hb, now, stall_timeout_ns)) {
		host_stalled = 0;
		dbg("gthulhu: host heartbeat back: leaving stalled mode");
	}

	if (rescue_needed) {
		/* Idle CPUs do the rescue in their dispatch (SCX_KICK_IDLE wakes only idle
		 * ones); also preempt one busy CPU in case none is idle. No counter in the
		 * loop: a changing stack value would keep the verifier from converging. */
		s32 i;

		bpf_for(i, 0, nr_cpu_ids_max) {
			if (i >= MAX_CPUS)
				break;
			scx_bpf_kick_cpu(i, SCX_KICK_IDLE);
		}
		scx_bpf_kick_cpu(cpu_ok(host_last_cpu) ? host_last_cpu : 0, SCX_KICK_PREEMPT);
	}

	/* Starvation scan (see run_starved) once per period on every CPU that dispatches;
	 * an idle CPU with tasks in its own DSQ is woken so it dispatches at all. */
	starve_epoch++;
	{
		s32 i;

		bpf_for(i, 0, nr_cpu_ids_max) {
			if (i >= MAX_CPUS)
				break;
			if (scx_bpf_dsq_nr_queued(i) > 0)
				scx_bpf_kick_cpu(i, SCX_KICK_IDLE);
		}
	}

	/* The host is runnable but has not had a CPU for a while: make room for it. */
	if (scx_bpf_dsq_nr_queued(SCHED_DSQ) > 0 && bounds_age_ns(host_ran, now) > period) {
		if (cpu_ok(host_last_cpu))
			scx_bpf_kick_cpu(host_last_cpu, SCX_KICK_PREEMPT);
	}

	bpf_timer_start(timer, period, 0);
	return 0;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(gthulhu_init)
{
	struct bpf_timer *timer;
	const struct cpumask *online;
	u32 key = 0;
	s32 err, i;

	g_compat_record();
	if (fault_inject & FAULT_LEAK_CUSTODY)
		__sync_fetch_and_add(&nr_pending, 1);
	err = scx_bpf_create_dsq(SHARED_DSQ, -1);
	if (err)
		return err;
	err = scx_bpf_create_dsq(SCHED_DSQ, -1);
	if (err)
		return err;
	bpf_for(i, 0, nr_cpu_ids_max) {
		if (i >= MAX_CPUS)
			break;
		err = scx_bpf_create_dsq(i, -1);
		if (err) {
			g_error("failed to create DSQ for CPU %d: %d", i, err);
			return err;
		}
	}

	online = scx_bpf_get_online_cpumask();
	nr_online_cpus = bpf_cpumask_weight(online);
	scx_bpf_put_cpumask(online);

	host_hb_ns = bpf_ktime_get_ns();
	timer = bpf_map_lookup_elem(&hb_timer, &key);
	if (!timer)
		return -ESRCH;
	bpf_timer_init(timer, &hb_timer, CLOCK_MONOTONIC);
	bpf_timer_set_callback(timer, heartbeat);
	err = bpf_timer_start(timer, NSEC_PER_MSEC, 0);
	if (err)
		g_error("heartbeat timer: %d", err);
	return err;
}

/* Our part of the kernel's exit dump (error exits, SysRq-D): the host-facing state. */
void BPF_STRUCT_OPS(gthulhu_dump, struct scx_dump_ctx *dctx)
{
	u64 hb = host_hb_ns, host_ran = usersched_last_run_at, now = bpf_ktime_get_ns();

	g_dump("gthulhu_lua: host_tgid=%u host_last_cpu=%d host_stalled=%llu host_dead=%d "
	       "hb_age_ms=%llu host_last_run_ms_ago=%llu\n",
	       host_tgid, host_last_cpu, host_stalled, host_dead,
	       bounds_age_ns(hb, now) / NSEC_PER_MSEC, bounds_age_ns(host_ran, now) / NSEC_PER_MSEC);
	g_dump("gthulhu_lua: nr_pending=%llu nr_queued=%llu nr_scheduled=%llu nr_rescued=%llu "
	       "nr_host_stalls=%llu nr_user_dispatches=%llu nr_kernel_dispatches=%llu\n",
	       nr_pending, nr_queued, nr_scheduled, nr_rescued, nr_host_stalls,
	       nr_user_dispatches, nr_kernel_dispatches);
	g_dump("gthulhu_lua: SCHED_DSQ=%d SHARED_DSQ=%d queued; compat_paths=0x%x\n",
	       scx_bpf_dsq_nr_queued(SCHED_DSQ), scx_bpf_dsq_nr_queued(SHARED_DSQ), compat_paths);
}

void BPF_STRUCT_OPS(gthulhu_exit, struct scx_exit_info *ei)
{
	char *dump = g_exit_dump(ei);

	uei.kind = ei->kind;
	uei.exit_code = ei->exit_code;
	bpf_probe_read_kernel_str(uei.reason, sizeof(uei.reason), ei->reason);
	bpf_probe_read_kernel_str(uei.msg, sizeof(uei.msg), ei->msg);
	if (dump)
		bpf_probe_read_kernel_str(uei.dump, sizeof(uei.dump), dump);
}

SEC(".struct_ops.link")
struct sched_ext_ops gthulhu_lua_ops = {
	.select_cpu	= (void *)gthulhu_select_cpu,
	.enqueue	= (void *)gthulhu_enqueue,
	.dequeue	= (void *)gthulhu_dequeue,
	.dispatch	= (void *)gthulhu_dispatch,
	.runnable	= (void *)gthulhu_runnable,
	.running	= (void *)gthulhu_running,
	.stopping	= (void *)gthulhu_stopping,
	.tick		= (void *)gthulhu_tick,
	.update_idle	= (void *)gthulhu_update_idle,
	.init_task	= (void *)gthulhu_init_task,
	.exit_task	= (void *)gthulhu_exit_task,
	.init		= (void *)gthulhu_init,
	.exit		= (void *)gthulhu_exit,
	.dump		= (void *)gthulhu_dump,
	/* SCX_OPS_SWITCH_PARTIAL is added by the host before load (scheduler.partial). */
	.flags		= SCX_OPS_KEEP_BUILTIN_IDLE,
	.exit_dump_len	= UEI_DUMP_LEN,
	.dispatch_max_batch = 256,
	.timeout_ms	= 5000,
	.name		= "gthulhu_lua",
};
