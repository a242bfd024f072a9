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

/* One entry per hand-out, keyed by {pid, enq_cnt} (struct custody_key, bpf/intf.h): a
 * claim or drop deletes exactly the hand-out it names. Keyed by pid alone, a claim had to
 * look up, compare enq_cnt, then delete by pid: if in between another CPU dropped the
 * task (dequeue) and handed it out again, the claim deleted the NEW entry and applied the
 * old decision, leaving the task with no custody entry. */
struct pending_val {
	u64 sent_at;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PENDING_MAX);
	__type(key, struct custody_key);
	__type(value, struct pending_val);
} pending SEC(".maps");

/* Record that (pid, enq_cnt) went to user space at `now`. 0, or -errno (table full).
 * A task re-enqueued while still pending (enq_cnt - 1 still in custody) keeps one entry:
 * the previous hand-out's goes, and only a new entry counts in nr_pending. */
static __always_inline long custody_put(s32 pid, u64 enq_cnt, u64 now)
{
	struct custody_key k = { .pid = pid, .pad = 0, .enq_cnt = enq_cnt };
	struct custody_key prev = { .pid = pid, .pad = 0, .enq_cnt = enq_cnt - 1 };
	struct pending_val pv = { .sent_at = now };
	bool replaced = !bpf_map_delete_elem(&pending, &prev);
	long err;

	err = bpf_map_update_elem(&pending, &k, &pv, BPF_NOEXIST);
	if (!err) {
		if (!replaced && __sync_fetch_and_add(&nr_pending, 1) == 0)
			pending_since = now;
		return 0;
	}
	/* No new entry: the previous one went for nothing. The same hand-out recorded
	 * again (already counted) is refreshed. */
	if (replaced)
		__sync_fetch_and_sub(&nr_pending, 1);
	if (err == -EEXIST)
		err = bpf_map_update_elem(&pending, &k, &pv, BPF_EXIST);
	return err;
}

/* Take (pid, enq_cnt) out of custody to apply its decision or rescue it. The delete of
 * that very key is the claim: of the CPUs racing for one entry (a decision being applied,
 * rescues on several CPUs, the task's own dequeue), only the one whose delete succeeds
 * may act on the task and count it; the others leave it alone, and no claim can take a
 * later hand-out's entry. true: the caller owns the task. */
static __always_inline bool custody_claim(s32 pid, u64 enq_cnt)
{
	struct custody_key k = { .pid = pid, .pad = 0, .enq_cnt = enq_cnt };

	if (bpf_map_delete_elem(&pending, &k))
		return false;
	__sync_fetch_and_sub(&nr_pending, 1);
	return true;
}

/* The task left the scheduler without a decision: forget its current hand-out (enq_cnt:
 * the task's own count, from its task storage). true: there was one. */
static __always_inline bool custody_drop(s32 pid, u64 enq_cnt)
{
	return custody_claim(pid, enq_cnt);
}

/* What one walk of the table found (custody_census). */
struct custody_census {
	u64 now;        /* in: the walk's clock */
	u64 entries;    /* entries in the table */
	u64 oldest_ns;  /* age of the oldest one (0 if none) */
	bool overdue;   /* some entry is older than stall_timeout_ns: rescue due */
};

static long census_one(struct bpf_map *map, struct custody_key *key, struct pending_val *pv,
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
