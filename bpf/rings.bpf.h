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
	__uint(max_entries, 1 << 20);
} queued SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 1 << 19);
} dispatched SEC(".maps");

#endif
