/* SPDX-License-Identifier: GPL-2.0 */
/*
 * loop.h - the hot loop: take a batch of queued tasks from a source, run the policy once
 * on the whole batch, hand the decisions back to the source.
 *
 * The loop does not know where tasks come from: the BPF ringbufs of the live scheduler
 * (xport.c), the transport test's ringbufs, and any simulator or replay file plug in
 * through struct loop_src. Batches are received straight into the policy's preallocated
 * task array (pol_tasks) and sent from its decision array (pol_out): no copy beyond the
 * ringbuf read, no allocation, no syscall per task.
 *
 * Decisions the source could not take yet (user ringbuf full) stay in a backlog that the
 * next loop_step() sends first, before taking new tasks: nothing is dropped.
 *
 * Ownership: struct loop is caller-owned and holds no resources of its own; the pol and
 * the source must outlive it.
 */
#ifndef GTHULHU_LOOP_H
#define GTHULHU_LOOP_H

#include <stdint.h>
#include "../bpf/intf.h"
#include "pol/pol.h"

struct loop_src {
	void *ctx;
	/* Take up to max queued tasks into buf without blocking. >= 0: count; < 0: -errno. */
	int (*recv)(void *ctx, struct queued_task_ctx *buf, int max);
	/* Hand over decisions. Returns how many were taken (0..n; fewer when full), < 0 error. */
	int (*send)(void *ctx, const struct dispatched_task_ctx *d, int n);
	/* Block until tasks may be available or timeout. > 0 maybe, 0 timeout, < 0 -errno. */
	int (*wait)(void *ctx, int timeout_ms);
	/* Optional: n tasks are now held by the host, undecided (n = 0 when published). */
	void (*holding)(void *ctx, int n);
	/* Optional: decisions were published; let the consumer run (e.g. sched_yield). */
	void (*published)(void *ctx, int n);
	/* Optional: the send side was full; make room (e.g. yield so BPF drains). */
	void (*congested)(void *ctx);
	/* Optional: an fd that polls readable when tasks may be available, so the run loop
	 * can wait on it in one epoll set with its signal and timer fds (-1 or NULL: none;
	 * the loop then uses wait()). */
	int (*poll_fd)(void *ctx);
	/* poll_fd is edge-triggered: readable when the source wakes the loop, not whenever
	 * something is unread (the loop reads everything before it waits anyway). */
	bool poll_edge;
	/* After a batch of told-only records (RL_ENQ_PLACED: no decision to send) that emptied
	 * the source, do not read again until the source wakes the loop (its wait() or poll_fd
	 * event) or the timeout passes: the fast path's records are read in bulk, not one
	 * batch each as they arrive (a host awake beside a pipe ping-pong otherwise looped on
	 * them and took a CPU). The source must wake the loop for every record it must act on
	 * (bpf/rings.bpf.h does). Replay and tests leave it off: every turn reads. */
	bool sleep_after_told;
};

/* Policy call time histograms (for /metrics): log2 buckets, bucket k counts calls that
 * took < LOOP_HIST_BATCH_BASE_NS << k (per batch) or whose time per task was
 * < LOOP_HIST_TASK_BASE_NS << k (per task, weighted by the batch's task count); the
 * last bucket takes the rest. Two clock reads per batch (vDSO, no syscall). */
#define LOOP_HIST_BUCKETS 16
#define LOOP_HIST_BATCH_BASE_NS 256ull
#define LOOP_HIST_TASK_BASE_NS 16ull

struct loop_stats {
	uint64_t turns;
	uint64_t pol_ns;        /* total time in pol_schedule() */
	uint64_t hist_batch[LOOP_HIST_BUCKETS];
	uint64_t hist_task[LOOP_HIST_BUCKETS];
	uint64_t batches;
	uint64_t tasks;
	uint64_t max_batch;
	uint64_t sent;
	uint64_t send_full;     /* times the send side took fewer than offered */
};

/* Optional record hook (host/rec): sees every batch (t[0..n)) and its decisions (d[0..m),
 * d[j] for task t[task[j]]: pol_out_task()) after the policy ran, before they are sent.
 * Off (batch == NULL) by default: one branch per batch. */
typedef void loop_rec_fn(void *ctx, const struct queued_task_ctx *t, int n,
			 const struct dispatched_task_ctx *d, const uint16_t *task, int m);
struct loop_rec {
	void *ctx;
	loop_rec_fn *batch;
};

struct loop {
	struct pol *pol;
	struct loop_src src;
	int batch_max;
	int backlog_off;        /* decisions pol_out()[off .. off+n) not yet sent */
	int backlog_n;
	volatile uint64_t *heartbeat; /* stamped every turn (BPF host_hb_ns), or NULL */
	struct loop_rec rec;          /* set by the caller after loop_init(); zero = off */
	bool told_only;               /* the last batch was told-only and emptied the source */
	struct loop_stats st;
};

void loop_init(struct loop *l, struct pol *pol, const struct loop_src *src, int batch_max,
	       volatile uint64_t *heartbeat);

/* One turn: flush the backlog; else take a batch (waiting up to timeout_ms if none),
 * schedule it, send it. Returns the number of tasks scheduled (0 on timeout or while a
 * backlog remains), or < 0 on a source error. */
int loop_step(struct loop *l, int timeout_ms);

/* Decisions still waiting to be sent. */
static inline int loop_backlog(const struct loop *l) { return l->backlog_n; }

#endif
