/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xport.h - the ringbuf transport: a loop_src over a BPF ringbuf of queued_task_ctx
 * (BPF -> host) and a BPF user ringbuf of dispatched_task_ctx (host -> BPF), given their
 * map fds. The live scheduler uses it on its skeleton's maps, the transport test on its
 * test programs' maps: the same code both ways.
 *
 * Both ringbufs are mmapped: receiving and sending touch shared memory only; the only
 * syscalls are epoll_wait when idle and the optional yield after a published batch.
 * With poll_us (scheduler.host_poll_us) the host first polls the ring for that long, so a
 * record that arrives soon after a batch costs no wake-up (at the price of the CPU time).
 *
 * Ownership: xport_open() creates libbpf ring objects that xport_close() frees
 * (NULL-safe, idempotent). The map fds stay the caller's.
 */
#ifndef GTHULHU_XPORT_H
#define GTHULHU_XPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../bpf/intf.h"
#include "loop.h"

struct ring_buffer;
struct user_ring_buffer;

struct xport {
	struct ring_buffer *rb;
	struct user_ring_buffer *urb;
	int epfd;
	int queued_fd;                   /* the `queued` ringbuf map (edge-triggered poll_fd) */
	/* recv target of the ringbuf callback */
	struct queued_task_ctx *dst;
	int dst_n, dst_max;
	volatile uint64_t *nr_scheduled; /* BPF .bss counter the host keeps true, or NULL */
	bool yield_after_publish;        /* live scheduler: let this CPU drain the decisions */
	uint32_t poll_us;                /* before sleeping, poll the ring this long (0: never) */
	uint64_t nr_recv, nr_sent, nr_bad_records;
};

int xport_open(struct xport *x, int queued_fd, int dispatched_fd, char *err, size_t errlen);
void xport_close(struct xport *x);

/* Fill *src with this transport's callbacks (ctx = x). */
void xport_src(struct xport *x, struct loop_src *src);

#endif
