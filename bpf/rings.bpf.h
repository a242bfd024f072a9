/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rings.bpf.h - the two ringbufs between the BPF side and the host, defined once for
 * every BPF object that speaks the wire format: the scheduler (main.bpf.c) and the
 * transport test's programs (tests/transport/transport.bpf.c), so the test exercises
 * exactly the maps the scheduler uses.
 *   queued      BPF ringbuf, BPF -> host, struct queued_task_ctx records
 *   dispatched  user ringbuf, host -> BPF, struct dispatched_task_ctx records
 * Sizes: 1 MiB holds ~10900 queued records (88 bytes + 8 header), well over MAX_BATCH;
 * 512 KiB holds ~10900 decisions (40 + 8). Loaders may shrink them before load (tests do).
 */
#ifndef GTHULHU_RINGS_BPF_H
#define GTHULHU_RINGS_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, QUEUED_RING_BYTES);
} queued SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 1 << 19);
} dispatched SEC(".maps");

/*
 * Waking the host. The kernel's ringbuf wakes the consumer when a record is committed at
 * the consumer position (the host has read everything before it), unless the record says
 * BPF_RB_NO_WAKEUP. Records that only inform the host (a task BPF placed itself) are
 * submitted quietly: the host reads them with its next batch. But a quiet record at the
 * consumer position takes that one wake-up away from every record behind it, and a record
 * the host must act on (a task in custody) would then wait for the host's epoll timeout
 * (100 ms). So: an urgent record committed while a quiet one may still be unread forces
 * the wake-up; and quiet records wake the host by themselves once they fill
 * RINGS_QUIET_WAKE_DIV-th of the ring (bpf/intf.h), so they never overflow it.
 */
static __u64 rings_quiet_end;   /* a producer position at or after the end of the last quiet record */
static __u64 rings_quiet_busy;  /* quiet records between their reserve and their submit */

/* Reserve a quiet record: announced (rings_quiet_busy) before it takes its place, so an
 * urgent record reserved behind it, whenever that one commits, sees it (below). */
static __always_inline void *rings_reserve_quiet(__u64 size)
{
	void *r;

	__sync_fetch_and_add(&rings_quiet_busy, 1);
	r = bpf_ringbuf_reserve(&queued, size, 0);
	if (!r)
		__sync_fetch_and_sub(&rings_quiet_busy, 1);
	return r;
}

/* Submit a record from rings_reserve_quiet(). */
static __always_inline void rings_submit_quiet(void *r)
{
	__u64 flags = BPF_RB_NO_WAKEUP, end;

	if (bpf_ringbuf_query(&queued, BPF_RB_AVAIL_DATA) >=
	    bpf_ringbuf_query(&queued, BPF_RB_RING_SIZE) / RINGS_QUIET_WAKE_DIV)
		flags = BPF_RB_FORCE_WAKEUP;
	/* Its end is at or before the producer position now: published before the record
	 * (and before it stops counting as busy), so no urgent record behind it misses it. */
	end = bpf_ringbuf_query(&queued, BPF_RB_PROD_POS);
	if ((__s64)(end - rings_quiet_end) > 0)
		rings_quiet_end = end;
	bpf_ringbuf_submit(r, flags);
	__sync_fetch_and_sub(&rings_quiet_busy, 1);
}

/* flags: 0 (the ringbuf's own wake-up rule) or BPF_RB_NO_WAKEUP (batched wake-ups). A quiet
 * record still being written, or one the host may not have read yet, may sit between the
 * consumer and this one: then the wake-up is forced. */
static __always_inline void rings_submit_urgent(void *r, __u64 flags)
{
	if (!flags && (rings_quiet_busy ||
		       bpf_ringbuf_query(&queued, BPF_RB_CONS_POS) < rings_quiet_end))
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(r, flags);
}

#endif
