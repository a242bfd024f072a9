/* SPDX-License-Identifier: GPL-2.0 */
/* xport.c - ringbuf transport; see xport.h. */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "common.h"
#include "xport.h"

/* Sentinel returned by the ringbuf callback when the batch is full. libbpf has already
 * advanced past the record it stops on, so the callback copies it first: nothing lost. */
#define XP_FULL (-E2BIG)

static int on_queued(void *ctx, void *data, size_t size)
{
	struct xport *x = ctx;

	if (size != sizeof(struct queued_task_ctx)) {
		x->nr_bad_records++;
		return 0;
	}
	memcpy(&x->dst[x->dst_n++], data, sizeof(struct queued_task_ctx));
	return x->dst_n >= x->dst_max ? XP_FULL : 0;
}

int xport_open(struct xport *x, int queued_fd, int dispatched_fd, char *err, size_t errlen)
{
	memset(x, 0, sizeof(*x));
	x->epfd = -1;
	x->rb = ring_buffer__new(queued_fd, on_queued, x, NULL);
	if (!x->rb) {
		snprintf(err, errlen, "ring_buffer__new(queued): %s", strerror(errno));
		goto fail;
	}
	x->urb = user_ring_buffer__new(dispatched_fd, NULL);
	if (!x->urb) {
		snprintf(err, errlen, "user_ring_buffer__new(dispatched): %s", strerror(errno));
		goto fail;
	}
	x->epfd = ring_buffer__epoll_fd(x->rb);
	x->queued_fd = queued_fd;
	return G_OK;
fail:
	xport_close(x);
	return G_ERR;
}

void xport_close(struct xport *x)
{
	if (!x)
		return;
	ring_buffer__free(x->rb);          /* NULL-safe */
	user_ring_buffer__free(x->urb);    /* NULL-safe */
	x->rb = NULL;
	x->urb = NULL;
	x->epfd = -1;
}

static int xp_recv(void *ctx, struct queued_task_ctx *buf, int max)
{
	struct xport *x = ctx;
	int err;

	x->dst = buf;
	x->dst_n = 0;
	x->dst_max = max;
	err = ring_buffer__consume(x->rb);
	if (err < 0 && err != XP_FULL)
		return err;
	x->nr_recv += x->dst_n;
	return x->dst_n;
}

static int xp_send(void *ctx, const struct dispatched_task_ctx *d, int n)
{
	struct xport *x = ctx;
	int i;

	for (i = 0; i < n; i++) {
		void *slot = user_ring_buffer__reserve(x->urb, sizeof(*d));

		if (!slot) {
			if (errno == ENOSPC || errno == ENODATA)
				break;          /* full: the caller keeps the rest */
			return -errno;
		}
		memcpy(slot, &d[i], sizeof(*d));
		user_ring_buffer__submit(x->urb, slot);
	}
	x->nr_sent += i;
	return i;
}

/* Poll the ring for up to x->poll_us: true when a record arrived. Reads shared memory
 * and the vDSO clock only: no syscall. */
static bool xp_poll(struct xport *x)
{
	struct ring *ring = ring_buffer__ring(x->rb, 0);
	uint64_t end = g_now_ns() + (uint64_t)x->poll_us * 1000;
	unsigned int i = 0;

	for (;;) {
		if (ring__avail_data_size(ring) > 0)
			return true;
		if (++i % 64 == 0 && g_now_ns() >= end)
			return false;
	}
}

static int xp_wait(void *ctx, int timeout_ms)
{
	struct xport *x = ctx;
	struct epoll_event ev;
	int r;

	if (x->poll_us && timeout_ms != 0 && xp_poll(x))
		return 1;
	r = epoll_wait(x->epfd, &ev, 1, timeout_ms);
	if (r < 0)
		return -errno;
	return r;
}

static void xp_holding(void *ctx, int n)
{
	struct xport *x = ctx;

	if (x->nr_scheduled)
		*x->nr_scheduled = n;
}

static void xp_published(void *ctx, int n)
{
	struct xport *x = ctx;

	/* Let this CPU's ops.dispatch drain the decisions now rather than when another CPU
	 * next dispatches, but only when more records wait (we would keep running): with the
	 * ring empty we are about to sleep in epoll_wait, which goes through ops.dispatch on
	 * this CPU anyway, and a yield would be one more syscall and trip through the
	 * scheduler per batch for nothing. A polling host does not sleep soon: yield. */
	if (x->yield_after_publish &&
	    (x->poll_us || ring__avail_data_size(ring_buffer__ring(x->rb, 0)) > 0))
		sched_yield();
}

static void xp_congested(void *ctx)
{
	struct xport *x = ctx;

	if (x->yield_after_publish)
		sched_yield();
}

/* The run loop's epoll set watches the ringbuf map itself, edge-triggered (poll_edge):
 * it wakes only when BPF wakes it (a custody record; told-only records are quiet until
 * they fill 1/8 of the ring, bpf/rings.bpf.h), not whenever unread records exist. Level-
 * triggered, a host that is awake while the fast path places tasks never slept at all:
 * each told-only record made epoll_wait return at once. */
static int xp_poll_fd(void *ctx)
{
	return ((struct xport *)ctx)->queued_fd;
}

void xport_src(struct xport *x, struct loop_src *src)
{
	memset(src, 0, sizeof(*src));
	src->ctx = x;
	src->recv = xp_recv;
	src->send = xp_send;
	src->wait = xp_wait;
	src->holding = xp_holding;
	src->published = xp_published;
	src->congested = xp_congested;
	src->poll_fd = xp_poll_fd;
	src->poll_edge = true;
	src->sleep_after_told = true;
}
