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
 *    (pid -> enq_cnt, sent_at). A decision applies only if it matches the pending entry
 *    (same enq_cnt); anything else is cancelled (nr_cancel_dispatches). A decision whose
 *    CPU the task may not use is bounced to an allowed CPU (nr_bounce_dispatches).
 *  - Stalled host: the host stamps host_hb_ns (in .bss, mmapped) at every loop turn. A
 *    heartbeat bpf_timer checks it: if tasks are pending and the host has been silent for
 *    stall_timeout_ns, the scheduler enters "stalled" mode (nr_host_stalls): new tasks are
 *    scheduled in-kernel (SHARED_DSQ), and ops.dispatch rescues every pending task older
 *    than the timeout from the `pending` hash into SHARED_DSQ (nr_rescued), bumping its
 *    enq_cnt so the host's late decision is cancelled. Tasks the host lost are rescued the
 *    same way even when it is alive. When the heartbeat is fresh again, tasks flow to user
 *    space again. So a stopped or wedged host never stalls the machine, and the sched_ext
 *    watchdog never sees a stranded task.
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
const volatile bool debug;
const volatile u64 stall_timeout_ns = 1000 * NSEC_PER_MSEC;
const volatile u32 nr_cpu_ids_max = 1;   /* CPU ids are < this (the host reads sysfs) */
/* Fault injection for the test suite only (GTHULHU_FAULT, see host/sched_bpf.c); 0 in any
 * real run, where the verifier removes the dead branches. */
const volatile u32 fault_inject;
#define FAULT_STARVE_HOST 1      /* never dispatch the host's threads */

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
volatile u64 nr_pending;            /* tasks in user-space custody now */
volatile u64 host_hb_ns;            /* host heartbeat (host writes, every loop turn) */
volatile u64 host_stalled;          /* 1 while in stalled mode */
volatile u64 nr_kept;               /* slice expiries where prev stayed first in vtime order */
volatile u64 idle_mask[MAX_CPUS / 64]; /* idle-CPU hints for the policy */

struct user_exit_info uei;          /* exit info, read by the host after detach */

static u64 vtime_floor;             /* newest vtime applied from the host */
static u64 last_decision_at;
static u64 pending_since;           /* when nr_pending last rose from 0 */
static bool rescue_needed;
static bool host_dead;              /* the host's main thread is exiting: stalled for good */
static s32 host_last_cpu;

/* --- Maps ------------------------------------------------------------------------------ */
#include "rings.bpf.h"   /* queued, dispatched */

struct pending_val {
	u64 enq_cnt;
	u64 sent_at;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PENDING_MAX);
	__type(key, s32);
	__type(value, struct pending_val);
} pending SEC(".maps");

struct task_ctx {
	u64 enq_cnt;
	u64 start_ts;      /* first time on a CPU since the last enqueue (reported) */
	u64 stop_ts;
	u64 exec_runtime;  /* CPU time since the task last woke up */
	u64 run_start;     /* start of the current stint on a CPU */
	u64 slice;         /* slice of the last decision applied */
	bool fresh;        /* enqueued since it last ran: the next run sets start_ts */
	bool decided;      /* placed by a host decision (not in-kernel) */
};

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
static __always_inline bool is_host_task(const struct task_struct *p)
{
	return host_tgid && p->tgid == host_tgid;
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
	g_insert_vtime(p, SHARED_DSQ, slice_ns_default, vtime_floor, enq_flags);
	__sync_fetch_and_add(&nr_kernel_dispatches, 1);
	kick_for(p, -1, false);
}

static __always_inline void update_nr_queued(void)
{
	nr_queued = bpf_ringbuf_query(&queued, BPF_RB_AVAIL_DATA) / (sizeof(struct queued_task_ctx) + 8);
}

/* --- Idle CPU selection ---------------------------------------------------------------- */
/* Walk a sibling list, starting after `self` so wakeups spread, claiming an idle CPU. */
static __always_inline s32 pick_from(const struct task_struct *p, const __u16 *ids, u32 nr,
				     u32 start)
{
	u32 i;

	if (nr > MAX_SIBLINGS)
		nr = MAX_SIBLINGS;
	bpf_for(i, 0, nr) {
		u32 k = (start + i) % MAX_SIBLINGS;
		s32 cpu;

		if (k >= nr)
			k -= nr;
		if (k >= MAX_SIBLINGS)
			break;
		cpu = ids[k];
		if (!cpu_ok(cpu) || !bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		if (scx_bpf_test_and_clear_cpu_idle(cpu))
			return cpu;
	}
	return -1;
}

/* prev_cpu if idle, else an idle L2 sibling, else an idle L3 sibling, else any idle CPU. */
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

s32 BPF_STRUCT_OPS(gthulhu_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu;

	if (builtin_idle || is_host_task(p)) {
		cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	} else {
		cpu = pick_idle_topo(p, prev_cpu);
		is_idle = cpu >= 0;
		if (!is_idle)
			cpu = prev_cpu;
	}

	/* early_processing: a task that found an idle CPU runs there now, no round trip. */
	if (is_idle && early_processing && !is_host_task(p) && !host_stalled) {
		g_insert(p, SCX_DSQ_LOCAL, slice_ns_default, 0);
		__sync_fetch_and_add(&nr_kernel_dispatches, 1);
	}
	return cpu;
}

/* --- Enqueue: to user space, or kept in the kernel ------------------------------------- */
void BPF_STRUCT_OPS(gthulhu_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct queued_task_ctx *r;
	struct pending_val pv;
	struct task_ctx *tctx;
	s32 pid = p->pid;
	long err;
	u64 now;

	if (is_host_task(p)) {
		/* The host woke because tasks wait for it: get it a CPU now, preempting if
		 * no CPU is idle. */
		g_insert(p, SCHED_DSQ, slice_ns_default, enq_flags);
		kick_for(p, -1, nr_pending > 0 || host_stalled);
		return;
	}
	if (is_critical_kthread(p)) {
		g_insert(p, SCX_DSQ_LOCAL, slice_ns_default, enq_flags);
		__sync_fetch_and_add(&nr_kernel_dispatches, 1);
		return;
	}
	tctx = lookup_tctx(p);
	if (tctx) {
		tctx->fresh = true;
		tctx->decided = false;
	}
	if (p->flags & PF_KTHREAD) {
		/* Other kernel threads: in-kernel, ahead of user tasks (they are short and
		 * others wait on them: RCU, writeback, the sched_ext helper itself), with the
		 * minimum slice so that going first never means holding a CPU for long. */
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
	pv.enq_cnt = tctx->enq_cnt;
	pv.sent_at = now;
	/* A task re-enqueued while still pending (dequeued for a property change) keeps its
	 * one custody entry with the new enq_cnt; only a new entry counts in nr_pending. */
	err = bpf_map_update_elem(&pending, &pid, &pv, BPF_NOEXIST);
	if (err == -EEXIST)
		err = bpf_map_update_elem(&pending, &pid, &pv, BPF_EXIST);
	else if (!err && __sync_fetch_and_add(&nr_pending, 1) == 0)
		pending_since = now;
	if (err) {
		/* Custody table full: never hand out a task we could not rescue. */
		bpf_ringbuf_discard(r, 0);
		__sync_fetch_and_add(&nr_sched_congested, 1);
		kernel_dispatch(p, enq_flags);
		return;
	}

	r->pid = pid;
	r->tgid = p->tgid;
	r->cpu = scx_bpf_task_cpu(p);
	r->nr_cpus_allowed = p->nr_cpus_allowed;
	r->flags = enq_flags;
	r->start_ts = tctx->start_ts;
	r->stop_ts = tctx->stop_ts;
	r->exec_runtime = tctx->exec_runtime;
	r->weight = p->scx.weight;
	r->vtime = p->scx.dsq_vtime;
	r->enq_cnt = tctx->enq_cnt;
	__builtin_memcpy(r->comm, p->comm, sizeof(r->comm));
	bpf_ringbuf_submit(r, 0);
	update_nr_queued();
}

/* --- Applying the host's decisions ----------------------------------------------------- */
static void apply_decision(struct task_struct *p, const struct dispatched_task_ctx *d)
{
	u64 slice = d->slice_ns ? d->slice_ns : slice_ns_default;
	struct task_ctx *tctx = lookup_tctx(p);
	s32 cpu = d->cpu;
	u64 dsq;

	if (tctx) {
		tctx->slice = slice;
		tctx->decided = true;
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

	if (d->vtime == 0) {
		/* Priority: straight to the head of a CPU's local DSQ, preempting whatever runs
		 * there. The CPU the policy chose, else the one applying the decision (it is in
		 * ops.dispatch, so it runs the task next: no IPI round trip), else the task's
		 * own. */
		s32 here = bpf_get_smp_processor_id();

		if (cpu < 0)
			cpu = bpf_cpumask_test_cpu(here, p->cpus_ptr) ? here : scx_bpf_task_cpu(p);
		if (cpu_usable(p, cpu)) {
			g_insert(p, SCX_DSQ_LOCAL_ON | cpu, slice, SCX_ENQ_HEAD | SCX_ENQ_PREEMPT);
			if (cpu != here)
				scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
		} else {
			g_insert_vtime(p, SHARED_DSQ, slice, 0, 0);
			kick_for(p, -1, true);
		}
	} else {
		g_insert_vtime(p, dsq, slice, d->vtime, 0);
		if ((s64)(d->vtime - vtime_floor) > 0)
			vtime_floor = d->vtime;
		kick_for(p, cpu, false);
	}
	__sync_fetch_and_add(&nr_user_dispatches, 1);
}

static long handle_decision(struct bpf_dynptr *dynptr, void *ctx)
{
	struct dispatched_task_ctx d;
	struct pending_val *pv;
	struct task_struct *p;
	s32 pid;

	if (bpf_dynptr_read(&d, sizeof(d), dynptr, 0, 0)) {
		__sync_fetch_and_add(&nr_failed_dispatches, 1);
		return 0;
	}
	pid = d.pid;
	last_decision_at = bpf_ktime_get_ns();

	pv = bpf_map_lookup_elem(&pending, &pid);
	if (!pv || pv->enq_cnt != d.enq_cnt) {
		/* Not in our custody with this enq_cnt: stale, rescued, or bogus. */
		__sync_fetch_and_add(&nr_cancel_dispatches, 1);
		dbg("gthulhu: cancel pid=%d enq_cnt=%llu", pid, d.enq_cnt);
		return 0;
	}
	bpf_map_delete_elem(&pending, &pid);
	__sync_fetch_and_sub(&nr_pending, 1);

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

static long rescue_one(struct bpf_map *map, s32 *key, struct pending_val *pv,
		       struct rescue_ctx *rc)
{
	struct task_struct *p;
	struct task_ctx *tctx;
	s32 pid = *key;

	if (rc->now - pv->sent_at < stall_timeout_ns && !host_stalled)
		return 0;
	if (!scx_bpf_dispatch_nr_slots()) {
		rescue_left++;
		return 1;
	}
	p = bpf_task_from_pid(pid);
	if (!p) {
		bpf_map_delete_elem(map, key);
		__sync_fetch_and_sub(&nr_pending, 1);
		return 0;
	}
	tctx = lookup_tctx(p);
	if (tctx && tctx->enq_cnt == pv->enq_cnt) {
		/* Bump enq_cnt: the host's late decision for this task will be cancelled. */
		tctx->enq_cnt++;
		tctx->decided = false;
		g_insert_vtime(p, SHARED_DSQ, slice_ns_default, vtime_floor, 0);
		__sync_fetch_and_add(&nr_rescued, 1);
		__sync_fetch_and_add(&nr_kernel_dispatches, 1);
	}
	bpf_task_release(p);
	bpf_map_delete_elem(map, key);
	__sync_fetch_and_sub(&nr_pending, 1);
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
/* vtime of the first task in a DSQ, or ~0 when it is empty. */
static __always_inline u64 head_vtime(u64 dsq)
{
	struct task_struct *p;
	u64 vt = ~0ULL;

	if (bpf_ksym_exists(scx_bpf_dsq_peek)) {
		p = scx_bpf_dsq_peek(dsq);
		if (p)
			vt = p->scx.dsq_vtime;
		return vt;
	}
	bpf_for_each(scx_dsq, p, dsq, 0) {
		vt = p->scx.dsq_vtime;
		break;
	}
	return vt;
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
static bool keep_prev(struct task_struct *prev, u64 head)
{
	struct task_ctx *tctx;
	u64 w, vt, now;

	if (!prev || !(prev->scx.flags & SCX_TASK_QUEUED) || is_host_task(prev) || host_stalled)
		return false;
	tctx = lookup_tctx(prev);
	if (!tctx || !tctx->decided || !tctx->slice)
		return false;
	now = bpf_ktime_get_ns();
	w = prev->scx.weight ? prev->scx.weight : 100;
	vt = prev->scx.dsq_vtime + (now - tctx->start_ts) * 100 / w;
	if (vt > head)
		return false;
	prev->scx.slice = tctx->slice;
	__sync_fetch_and_add(&nr_kept, 1);
	return true;
}

/* --- Dispatch ------------------------------------------------------------------------- */
void BPF_STRUCT_OPS(gthulhu_dispatch, s32 cpu, struct task_struct *prev)
{
	u64 vt_cpu, vt_shared;

	if (rescue_needed || host_stalled)
		rescue_pending();

	/* Apply the host's decisions first: they wake the CPUs they target, so the work
	 * spreads instead of waiting for this CPU. */
	if (scx_bpf_dispatch_nr_slots())
		bpf_user_ringbuf_drain(&dispatched, handle_decision, NULL, 0);
	update_nr_queued();

	/* Then the host: it is what makes everything else move, and after a stall it must
	 * get a CPU to come back at all. It mostly sleeps in epoll_wait, so first place
	 * costs the others little; a busy host holds at most one CPU per thread. */
	if (!(fault_inject & FAULT_STARVE_HOST) && g_move_to_local(SCHED_DSQ))
		return;

	/* This CPU's DSQ and the shared one are both vtime-ordered: serve whichever head
	 * comes first, so a priority task (vtime 0) in the shared DSQ does not wait behind
	 * tasks placed on this CPU. */
	vt_cpu = head_vtime(cpu);
	vt_shared = head_vtime(SHARED_DSQ);
	if (keep_prev(prev, vt_cpu < vt_shared ? vt_cpu : vt_shared))
		return;
	if (vt_shared < vt_cpu) {
		if (g_move_to_local(SHARED_DSQ) || g_move_to_local(cpu))
			return;
	} else {
		if (g_move_to_local(cpu) || g_move_to_local(SHARED_DSQ))
			return;
	}
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
	if (is_host_task(p)) {
		usersched_last_run_at = now;
		host_last_cpu = scx_bpf_task_cpu(p);
	}
	tctx = lookup_tctx(p);
	if (!tctx)
		return;
	tctx->run_start = now;
	if (tctx->fresh) {
		tctx->start_ts = now;
		tctx->fresh = false;
	}
}

void BPF_STRUCT_OPS(gthulhu_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx;
	u64 now = bpf_ktime_get_ns();

	__sync_fetch_and_sub(&nr_running, 1);
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
		if (now > tctx->run_start)
			tctx->exec_runtime += now - tctx->run_start;
	}
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

/* The task left our custody without a decision (property change, class change, exit):
 * forget it, so nr_pending stays true and the rescue does not chase it. A decision that
 * still arrives for it is cancelled (no pending entry). */
void BPF_STRUCT_OPS(gthulhu_dequeue, struct task_struct *p, u64 deq_flags)
{
	s32 pid = p->pid;

	if (!bpf_map_delete_elem(&pending, &pid))
		__sync_fetch_and_sub(&nr_pending, 1);
}

s32 BPF_STRUCT_OPS(gthulhu_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	if (!bpf_task_storage_get(&task_ctx_stor, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
		return -ENOMEM;
	return 0;
}

void BPF_STRUCT_OPS(gthulhu_exit_task, struct task_struct *p, struct scx_exit_task_args *args)
{
	s32 pid = p->pid;

	if (!bpf_map_delete_elem(&pending, &pid))
		__sync_fetch_and_sub(&nr_pending, 1);
}

/* --- Heartbeat -------------------------------------------------------------------------- */
static int heartbeat(void *map, int *key, struct bpf_timer *timer)
{
	u64 now = bpf_ktime_get_ns();
	u64 hb = host_hb_ns, since = pending_since, last = last_decision_at;
	u64 period = stall_timeout_ns / 4;

	if (period > 100 * NSEC_PER_MSEC)
		period = 100 * NSEC_PER_MSEC;
	if (period < NSEC_PER_MSEC)
		period = NSEC_PER_MSEC;

	if (!host_stalled) {
		if (nr_pending && now - hb > stall_timeout_ns && now - since > stall_timeout_ns) {
			host_stalled = 1;
			rescue_needed = true;
			__sync_fetch_and_add(&nr_host_stalls, 1);
			dbg("gthulhu: host silent for %llu ms, %llu tasks pending: stalled mode",
			    (now - hb) / NSEC_PER_MSEC, nr_pending);
		} else if (nr_pending && now - last > stall_timeout_ns &&
			   now - since > stall_timeout_ns) {
			/* The host is alive but some task waits too long: rescue the old ones. */
			rescue_needed = true;
		}
	} else if (!host_dead && now - hb < stall_timeout_ns / 2) {
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

	/* The host is runnable but has not had a CPU for a while: make room for it. */
	if (scx_bpf_dsq_nr_queued(SCHED_DSQ) > 0 && now - usersched_last_run_at > period) {
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
	u64 now = bpf_ktime_get_ns();

	g_dump("gthulhu_lua: host_tgid=%u host_last_cpu=%d host_stalled=%llu host_dead=%d "
	       "hb_age_ms=%llu host_last_run_ms_ago=%llu\n",
	       host_tgid, host_last_cpu, host_stalled, host_dead,
	       (now - host_hb_ns) / NSEC_PER_MSEC, (now - usersched_last_run_at) / NSEC_PER_MSEC);
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
