/* SPDX-License-Identifier: GPL-2.0 */
/* loop.c - the hot loop; see loop.h. */
#include <errno.h>
#include <string.h>
#include "common.h"
#include "loop.h"

void loop_init(struct loop *l, struct pol *pol, const struct loop_src *src, int batch_max,
	       volatile uint64_t *heartbeat)
{
	memset(l, 0, sizeof(*l));
	l->pol = pol;
	l->src = *src;
	l->batch_max = batch_max > MAX_BATCH ? MAX_BATCH : batch_max < 1 ? 1 : batch_max;
	l->heartbeat = heartbeat;
}

/* Send what is left of the current batch. Returns remaining count, or < 0 on error. */
static int flush(struct loop *l)
{
	const struct dispatched_task_ctx *out = pol_out(l->pol);
	int sent;

	while (l->backlog_n > 0) {
		sent = l->src.send(l->src.ctx, out + l->backlog_off, l->backlog_n);
		if (sent < 0)
			return sent;
		l->st.sent += sent;
		l->backlog_off += sent;
		l->backlog_n -= sent;
		if (sent == 0) {
			/* Full: let the consumer make room, then try again on the next turn. */
			l->st.send_full++;
			if (l->src.congested)
				l->src.congested(l->src.ctx);
			break;
		}
	}
	return l->backlog_n;
}

static inline int hist_bucket(uint64_t v, uint64_t base)
{
	int k = 0;

	while (k < LOOP_HIST_BUCKETS - 1 && v >= base << k)
		k++;
	return k;
}

int loop_step(struct loop *l, int timeout_ms)
{
	struct queued_task_ctx *tasks = pol_tasks(l->pol);
	int n, m, left;

	l->st.turns++;
	if (l->heartbeat)
		*l->heartbeat = g_now_ns();

	if (l->backlog_n) {
		left = flush(l);
		if (left != 0)
			return left < 0 ? left : 0;
		if (l->src.holding)
			l->src.holding(l->src.ctx, 0);
		if (l->src.published)
			l->src.published(l->src.ctx, 0);
	}

	if (l->told_only) {
		/* see loop_src.sleep_after_told: wait for a wake-up before reading again */
		l->told_only = false;
		n = 0;
		if (timeout_ms == 0)
			return 0;
	} else {
		n = l->src.recv(l->src.ctx, tasks, l->batch_max);
	}
	if (n == 0 && timeout_ms != 0) {
		int w = l->src.wait(l->src.ctx, timeout_ms);

		if (w < 0 && w != -EINTR)
			return w;
		if (l->heartbeat)
			*l->heartbeat = g_now_ns();
		n = l->src.recv(l->src.ctx, tasks, l->batch_max);
	}
	if (n <= 0)
		return n;

	if (l->src.holding)
		l->src.holding(l->src.ctx, n);
	uint64_t t0 = g_now_ns();
	m = pol_schedule(l->pol, n);   /* m <= n valid decisions in pol_out() */
	uint64_t dt = g_now_ns() - t0;
	l->st.pol_ns += dt;
	l->st.hist_batch[hist_bucket(dt, LOOP_HIST_BATCH_BASE_NS)]++;
	l->st.hist_task[hist_bucket(dt / (uint64_t)n, LOOP_HIST_TASK_BASE_NS)] += (uint64_t)n;
	if (l->rec.batch)
		l->rec.batch(l->rec.ctx, tasks, n, pol_out(l->pol), pol_out_task(l->pol), m);
	l->st.batches++;
	l->st.tasks += n;
	if ((uint64_t)n > l->st.max_batch)
		l->st.max_batch = n;

	l->told_only = l->src.sleep_after_told && m == 0 && n < l->batch_max;
	l->backlog_off = 0;
	l->backlog_n = m;
	left = flush(l);
	if (left < 0)
		return left;
	if (left == 0) {
		if (l->src.holding)
			l->src.holding(l->src.ctx, 0);
		if (l->src.published)
			l->src.published(l->src.ctx, m);
	}
	return n;
}
