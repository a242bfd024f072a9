/* SPDX-License-Identifier: GPL-2.0 */
/*
 * custody.bpf.h - the custody table: every task handed to user space has one entry in the
 * `pending` hash until exactly one party claims it: the host's decision (handle_decision),
 * the rescue (a decision that did not come in time), or the task leaving the scheduler
 * (dequeue, exit). Shared by main.bpf.c and the BPF unit tests (tests/bpfunit), which run
 * these very functions from SEC("syscall") programs on a kernel without sched_ext.
 *
 * The includer defines, before including: `volatile u64 nr_pending` (entries now),
 * `u64 pending_since` (when nr_pending last rose from 0) and `stall_timeout_ns`.
 */
#ifndef GTHULHU_CUSTODY_BPF_H
#define GTHULHU_CUSTODY_BPF_H

#include "bounds.bpf.h"  /* bounds_age_ns */

#ifndef PENDING_MAX
#define PENDING_MAX 16384
#endif
#ifndef EEXIST
#define EEXIST 17
#endif

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

/* Record that (pid, enq_cnt) went to user space at `now`. 0, or -errno (table full).
 * A task re-enqueued while still pending keeps its one entry with the new enq_cnt; only
 * a new entry counts in nr_pending. */
static __always_inline long custody_put(s32 pid, u64 enq_cnt, u64 now)
{
	struct pending_val pv = { .enq_cnt = enq_cnt, .sent_at = now };
	long err;

	err = bpf_map_update_elem(&pending, &pid, &pv, BPF_NOEXIST);
	if (err == -EEXIST)
		err = bpf_map_update_elem(&pending, &pid, &pv, BPF_EXIST);
	else if (!err && __sync_fetch_and_add(&nr_pending, 1) == 0)
		pending_since = now;
	return err;
}

/* Take (pid, enq_cnt) out of custody to apply its decision or rescue it. The delete is
 * the claim: of the CPUs racing for one entry (a decision being applied, rescues on
 * several CPUs), only the one whose delete succeeds may act on the task and count it;
 * the others leave it alone. true: the caller owns the task. */
static __always_inline bool custody_claim(s32 pid, u64 enq_cnt)
{
	struct pending_val *pv = bpf_map_lookup_elem(&pending, &pid);

	if (!pv || pv->enq_cnt != enq_cnt)
		return false;
	if (bpf_map_delete_elem(&pending, &pid))
		return false;
	__sync_fetch_and_sub(&nr_pending, 1);
	return true;
}

/* The task left the scheduler without a decision: forget whatever it had pending. */
static __always_inline void custody_drop(s32 pid)
{
	if (!bpf_map_delete_elem(&pending, &pid))
		__sync_fetch_and_sub(&nr_pending, 1);
}

/* What one walk of the table found (custody_census). */
struct custody_census {
	u64 now;        /* in: the walk's clock */
	u64 entries;    /* entries in the table */
	u64 oldest_ns;  /* age of the oldest one (0 if none) */
	bool overdue;   /* some entry is older than stall_timeout_ns: rescue due */
};

static long census_one(struct bpf_map *map, s32 *key, struct pending_val *pv,
		       struct custody_census *c)
{
	/* Signed: an entry another CPU stamped after c->now is age 0, not ~2^64. */
	u64 sent_at = pv->sent_at, age = bounds_age_ns(sent_at, c->now);

	c->entries++;
	if (age > c->oldest_ns)
		c->oldest_ns = age;
	if (bounds_overdue(sent_at, c->now, stall_timeout_ns))
		c->overdue = true;
	return 0;
}

/* Walk the whole table at `now`: how many entries, how old the oldest, and is some task
 * overdue, i.e. handed out more than stall_timeout_ns ago? Judged by each entry's own
 * age: a host that keeps deciding other tasks but lost this one must not keep it from
 * being rescued (the sched_ext watchdog would eject us). The heartbeat runs it once per
 * period, whatever nr_pending says (a counter that drifted must not hide the table), and
 * publishes entries and age (pending_entries, pending_oldest_ms): the exact state of
 * custody, where nr_pending is only the counter. */
static __always_inline void custody_census(u64 now, struct custody_census *c)
{
	c->now = now;
	c->entries = 0;
	c->oldest_ns = 0;
	c->overdue = false;
	bpf_for_each_map_elem(&pending, census_one, c, 0);
}

#endif
