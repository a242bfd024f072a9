/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bounds.bpf.h - the arithmetic of the BPF side's bounds against the sched_ext watchdog,
 * in one place for the three that need it: bpf/main.bpf.c (which applies them), the host
 * (host/cfg.c, host/sched_bpf.c: the values it loads into rodata) and the simulator's event
 * model (host/sim/sim_model.c, which must apply them the same way). Pure functions of
 * their arguments: no maps, no helpers, no globals, so they compile as BPF and as C.
 * Types: __u64/__u32 from vmlinux.h in BPF, from <linux/types.h> elsewhere.
 */
#ifndef GTHULHU_BOUNDS_BPF_H
#define GTHULHU_BOUNDS_BPF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#include <stdbool.h>
#endif
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define BOUNDS_NS_PER_MS	1000000ULL
#define BOUNDS_KERNEL_WATCHDOG_MS 30000U  /* ops.timeout_ms 0: SCX_WATCHDOG_MAX_TIMEOUT */
#define BOUNDS_SLICE_MAX_NS	(1000 * BOUNDS_NS_PER_MS)  /* no slice past 1 s, whatever the watchdog */
#define BOUNDS_WAIT_MAX_NS	(500 * BOUNDS_NS_PER_MS)   /* wait bound: at most 500 ms */
/* Priority (vtime 0) decisions may use at most PRIO_BUDGET_NS of each PRIO_PERIOD_NS of a
 * CPU, like RT throttling; past it they are applied as ordinary decisions until the
 * period ends, so a CPU-bound priority task cannot hold a CPU until the watchdog fires. */
#define PRIO_PERIOD_NS		(100 * BOUNDS_NS_PER_MS)
#define PRIO_BUDGET_NS		(80 * BOUNDS_NS_PER_MS)
#define RESUME_LEFT_MIN_NS	50000ULL  /* less slice left than this: expired, not preempted */
#define STARVE_MOVE_MAX		32        /* starved tasks one CPU takes per scan and DSQ */
#define STARVE_SCAN_OTHERS	8         /* other CPUs' DSQs one scan looks through */

/* The watchdog timeout in force for a configured timeout_ms (0 = the kernel's default). */
static __always_inline __u32 bounds_watchdog_ms(__u32 timeout_ms)
{
	return timeout_ms ? timeout_ms : BOUNDS_KERNEL_WATCHDOG_MS;
}

/* The longest slice: 1/8 of the watchdog, at most 1 s (BPF's slice_ns_max). */
static __always_inline __u64 bounds_slice_max_ns(__u32 timeout_ms)
{
	__u64 w8 = (__u64)bounds_watchdog_ms(timeout_ms) * BOUNDS_NS_PER_MS / 8;

	return w8 < BOUNDS_SLICE_MAX_NS ? w8 : BOUNDS_SLICE_MAX_NS;
}

/* How long a waiter may wait behind a task that stays first in vtime order, and after which
 * a DSQ's task runs out of order: watchdog/10, at most 500 ms (BPF's wait_bound_ns). */
static __always_inline __u64 bounds_wait_ns(__u32 timeout_ms)
{
	__u64 w10 = (__u64)bounds_watchdog_ms(timeout_ms) * BOUNDS_NS_PER_MS / 10;

	return w10 < BOUNDS_WAIT_MAX_NS ? w10 : BOUNDS_WAIT_MAX_NS;
}

/* The heartbeat's period: stall_timeout/4, within [1 ms, 100 ms]. */
static __always_inline __u64 bounds_hb_period_ns(__u64 stall_timeout_ns)
{
	__u64 period = stall_timeout_ns / 4;

	if (period > 100 * BOUNDS_NS_PER_MS)
		period = 100 * BOUNDS_NS_PER_MS;
	if (period < BOUNDS_NS_PER_MS)
		period = BOUNDS_NS_PER_MS;
	return period;
}

/* How long ago `stamp` was at `now`, never negative. A stamp another CPU wrote after the
 * reader took `now` is newer than it: unsigned, now - stamp would be ~2^64 (an entry
 * "overdue" the moment it is made); signed and clamped it is 0. Read the stamp before
 * `now` where the code allows; this covers the rest. */
static __always_inline __u64 bounds_age_ns(__u64 stamp, __u64 now)
{
	__s64 d = (__s64)(now - stamp);

	return d > 0 ? (__u64)d : 0;
}

/* Custody and the stalled-host mode, judged the same way by the BPF heartbeat and rescue
 * (main.bpf.c, custody.bpf.h) and the simulator. Each stamp is written by other CPUs. */

/* A task handed out at sent_at is overdue: in custody longer than the stall timeout (the
 * heartbeat then flags a rescue). */
static __always_inline bool bounds_overdue(__u64 sent_at, __u64 now, __u64 stall_timeout_ns)
{
	return bounds_age_ns(sent_at, now) > stall_timeout_ns;
}

/* The rescue takes a custody entry: any in stalled mode, else one at least the stall
 * timeout old. */
static __always_inline bool bounds_rescue_takes(__u64 sent_at, __u64 now,
						__u64 stall_timeout_ns, bool stalled)
{
	return stalled || bounds_age_ns(sent_at, now) >= stall_timeout_ns;
}

/* Enter the stalled-host mode: tasks pending, the host's last loop turn (hb) and the
 * moment custody last became non-empty (since) both older than the stall timeout. */
static __always_inline bool bounds_stall_enter(__u64 nr_pending, __u64 hb, __u64 since,
					       __u64 now, __u64 stall_timeout_ns)
{
	return nr_pending && bounds_age_ns(hb, now) > stall_timeout_ns &&
	       bounds_age_ns(since, now) > stall_timeout_ns;
}

/* Leave it: the host's heartbeat is fresh again (younger than half the timeout). */
static __always_inline bool bounds_stall_leave(__u64 hb, __u64 now, __u64 stall_timeout_ns)
{
	return bounds_age_ns(hb, now) < stall_timeout_ns / 2;
}

/* Has waited past the bound (queued_at 0: unknown, never). */
static __always_inline bool bounds_waited_past(__u64 queued_at, __u64 now, __u64 bound)
{
	return queued_at && bounds_age_ns(queued_at, now) > bound;
}

/* A CPU's priority budget: spent in the period that began at period_start? (Read for
 * another CPU: its period may have begun after this reader's now.) */
static __always_inline bool bounds_prio_spent(__u64 period_start, __u64 runtime, __u64 now)
{
	return bounds_age_ns(period_start, now) < PRIO_PERIOD_NS && runtime >= PRIO_BUDGET_NS;
}

/* Charge `ran` ns of priority runtime at `now` (a new period starts when the last ended). */
static __always_inline void bounds_prio_charge(__u64 *period_start, __u64 *runtime, __u64 ran,
					       __u64 now)
{
	if (bounds_age_ns(*period_start, now) >= PRIO_PERIOD_NS) {
		*period_start = now;
		*runtime = 0;
	}
	*runtime += ran;
}

/* keep_prev's vtime of a running task: its decided vtime advanced by what it ran since,
 * scaled by 100/weight (the vtime clock the policies use). */
static __always_inline __u64 bounds_prev_vtime(__u64 dsq_vtime, __u64 ran, __u64 weight)
{
	return dsq_vtime + ran * 100 / (weight ? weight : 100);
}

/* start_ts when a task starts a later stint of the same record (resumed after a
 * preemption, with no new decision): moved on by the time it waited since it stopped, so
 * that stop_ts - start_ts, what policies charge, stays the CPU time it ran under this
 * decision rather than also the wait (which overcharged a task the host preempted:
 * simple.lua gave a nice-0/nice-5 pair 53.6:1 in the simulator, not 3:1). */
static __always_inline __u64 bounds_resume_start(__u64 start_ts, __u64 stop_ts, __u64 now)
{
	return stop_ts >= start_ts && now > stop_ts ? start_ts + (now - stop_ts) : start_ts;
}

/* Slice left when a task stops: only a runnable task that did not use it up has any. */
static __always_inline __u64 bounds_slice_left(bool runnable, __u64 stint_slice, __u64 ran)
{
	return runnable && stint_slice > ran ? stint_slice - ran : 0;
}

/* The slice of a fast-path placement (a wake-up BPF runs at once on an idle CPU): the cap
 * the policy's last decision carried in its flags (RL_DISP_FAST_SLICE_SHIFT: bits 32..63, in
 * microseconds; 0: none), else that decision's slice; never above slice_max. */
static __always_inline __u64 bounds_fast_slice(__u64 flags, __u64 slice, __u64 slice_max)
{
	__u64 cap = (flags >> 32) * 1000;

	if (cap && cap < slice)
		slice = cap;
	return slice < slice_max ? slice : slice_max;
}

/* The vtime a fast-path placement runs with: the task's last decided vtime (0 if it never
 * had one), pulled up to vtime_now - lag, where vtime_now is the vtime of the decided task
 * that last started running (the policy's clock as BPF sees it) and lag the credit a
 * sleeper may keep (slice_ns_default, as gthulhu.lua gives). At slice expiry keep_prev
 * compares it with the waiters' vtimes: a stale or zero one would keep the task first, on
 * its CPU, until the wait bound; this one for at most about `lag` of virtual time. And a
 * waking task competes with the one running (wake-up preemption) at this vtime. Wrap-safe
 * (vtimes are compared as signed distances). */
static __always_inline __u64 bounds_placed_vtime(__u64 vtime, __u64 vtime_now, __u64 lag)
{
	__u64 lo = vtime_now > lag ? vtime_now - lag : 0;

	return (__s64)(lo - vtime) > 0 ? lo : vtime;
}

/* How many other CPUs' DSQs one starvation scan looks through. */
static __always_inline __u32 bounds_scan_nr_others(__u32 nr_cpu_ids)
{
	__u32 n = nr_cpu_ids > 1 ? nr_cpu_ids - 1 : 0;

	return n > STARVE_SCAN_OTHERS ? STARVE_SCAN_OTHERS : n;
}

/* The j-th other CPU a scan from `cpu` looks at, `cursor` scans on (never cpu itself;
 * nr_cpu_ids > 1). */
static __always_inline __u32 bounds_scan_other(__u32 cpu, __u32 cursor, __u32 j, __u32 nr_cpu_ids)
{
	__u32 other = cpu + 1 + (cursor + j) % (nr_cpu_ids - 1);

	if (other >= nr_cpu_ids)
		other -= nr_cpu_ids;
	return other;
}

#endif
