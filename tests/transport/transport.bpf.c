/* SPDX-License-Identifier: GPL-2.0 */
/*
 * transport.bpf.c - the scheduler's two ringbufs, driven from SEC("syscall") programs so
 * the host's real transport and loop can be tested on a kernel without sched_ext.
 *
 *   produce: writes N queued_task_ctx records into `queued` exactly as ops.enqueue does,
 *            with values derived from the index (so the test can predict each decision);
 *            the first `quiet` of them as the fast path submits its told-only records.
 *   consume: drains `dispatched` with bpf_user_ringbuf_drain, as ops.dispatch does, and
 *            records every decision in `seen` (indexed by pid - pid_base), counting
 *            duplicates and strays.
 * Map sizes are set by the test before load (small ones to test full ringbufs).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "intf.h"

char _license[] SEC("license") = "GPL";

#include "rings.bpf.h"   /* the scheduler's own queued and dispatched maps */
#include "transport.h"   /* struct seen, produce_args, consume_args */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SEEN_MAX);
	__type(key, __u32);
	__type(value, struct seen);
} seen SEC(".maps");

SEC("syscall")
int produce(struct produce_args *a)
{
	__u32 i, n = a->n;

	bpf_for(i, 0, n) {
		struct queued_task_ctx *r = i < a->quiet ? rings_reserve_quiet(sizeof(*r)) :
						   bpf_ringbuf_reserve(&queued, sizeof(*r), 0);

		if (!r) {
			a->dropped++;
			continue;
		}
		r->pid = a->pid_base + (__s32)i;
		r->tgid = a->pid_base + (__s32)(i & ~3u);   /* threads in groups of 4 */
		r->cpu = i % 4;
		r->nr_cpus_allowed = (i % 5) ? 4 : 1;
		r->flags = i & 1;
		r->start_ts = 1000000ull * (i + 1);
		r->stop_ts = r->start_ts + 1000ull * (i % 50);
		r->exec_runtime = 500ull * (i % 200);
		r->weight = 1 + (i * 37) % 10000;
		r->vtime = (i % 3) ? 1000ull * i : 0;
		r->enq_cnt = a->enq_base + i;
		__builtin_memset(r->comm, 0, sizeof(r->comm));
		r->comm[0] = 't';
		r->comm[1] = '0' + (i % 10);
		/* As the scheduler submits them: told-only records quietly, custody ones urgently. */
		if (i < a->quiet)
			rings_submit_quiet(r);
		else
			rings_submit_urgent(r, 0);
		a->produced++;
	}
	return 0;
}

static long on_decision(struct bpf_dynptr *dynptr, struct consume_args *a)
{
	struct dispatched_task_ctx d;
	struct seen *s;
	__u32 idx;

	if (bpf_dynptr_read(&d, sizeof(d), dynptr, 0, 0)) {
		a->bad_size++;
		return 0;
	}
	a->drained++;
	idx = (__u32)(d.pid - a->pid_base);
	s = bpf_map_lookup_elem(&seen, &idx);
	if (!s || d.pid < a->pid_base) {
		a->stray++;
		return 0;
	}
	s->count++;
	s->cpu = d.cpu;
	s->vtime = d.vtime;
	s->slice_ns = d.slice_ns;
	s->enq_cnt = d.enq_cnt;
	s->flags = d.flags;
	return 0;
}

SEC("syscall")
int consume(struct consume_args *a)
{
	struct consume_args c = *a;   /* the drain callback's context must be on the stack */
	long n = bpf_user_ringbuf_drain(&dispatched, on_decision, &c, 0);

	*a = c;
	return n < 0 ? (int)n : 0;
}
