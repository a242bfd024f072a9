/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sim_model.c - the event model of the kernel side (see sim.h). It follows bpf/main.bpf.c
 * callback by callback, with the kernel's sched_ext core around it reduced to what decides
 * who runs when; the bounds' arithmetic comes from bpf/bounds.bpf.h and the idle-sibling walk
 * from bpf/idle.bpf.h, shared with BPF.
 *
 *  - the fast path (early_processing, the master switch): a decision flagged RL_DISP_FAST
 *    grants the task its next wake-ups, with bounds_fast_slice(); one without denies it; a
 *    task never decided has none. A placement runs on a CPU's local DSQ at once with that
 *    slice, at bounds_placed_vtime(), stands for a decision (keep_prev), and the policy gets
 *    a quiet RL_ENQ_PLACED record (nr_placed; a full ring: nr_placed_untold).
 *  - select_cpu (wakeups of tasks allowed on more than one CPU), granted tasks only: on a
 *    sync wake-up (the waker wakes it through a channel and blocks in the same step) the
 *    waker's CPU if nothing waits in its local or own DSQ, but an idle prev CPU sharing its
 *    L3 first (nr_sync_wakeups); else prev if idle, an idle L2 sibling, then L3 (random
 *    start), then any idle CPU, claimed. An ungranted task claims nothing: prev is
 *    returned (its CPU wakes if idle) and the host's decision picks and kicks a CPU.
 *  - enqueue: per-CPU kthreads to their local DSQ; a granted wake-up select_cpu did not
 *    place (allowed on one CPU, or none idle then) on its own CPU if that is idle now;
 *    other kthreads to the shared DSQ at vtime 0 with slice_ns_min, a preempted decided
 *    task with slice left back in-kernel (resume_preempted), user tasks to the host (a
 *    record in the `queued` ring, enq_cnt bumped, custody entry); ring full -> in-kernel
 *    (nr_sched_congested).
 *  - the ring's wake-ups (bpf/rings.bpf.h): a custody record wakes a sleeping host when
 *    it is at the consumer position, or while a quiet record before it may be unread;
 *    quiet records wake it only when the unread ones fill 1/RINGS_QUIET_WAKE_DIV of it.
 *  - the host's thread: woken wake_ns after a record arrives while it sleeps, queued in
 *    SCHED_DSQ (kicking, or preempting, a CPU), taken by the next ops.dispatch; on its CPU
 *    each loop_step() takes up to batch_max records, runs the policy (real Lua, virtual
 *    clock) and holds the CPU for host.batch_ns + n * host.task_ns (or the measured cost),
 *    then the decisions are applied; preempted at its slice's end like any task.
 *  - decisions: custody/enq_cnt check (cancel), slice clamp, affinity bounce, vtime-ordered
 *    per-CPU and shared DSQs, priority (vtime 0) to the head of a CPU's local DSQ with
 *    preemption unless the CPU's priority budget is spent, idle CPUs kicked.
 *  - dispatch (local DSQ empty): rescue, starvation scan, the host, keep_prev at slice
 *    expiry (bounded), else the earlier head of the CPU's DSQ and the shared one; nothing
 *    there and prev still runnable: prev keeps running (the kernel's default).
 *  - slices expire at the first timer tick (1/HZ) at or after their end, as the kernel's
 *    tick-driven slice accounting does; a task that blocks earlier switches at once.
 *  - heartbeat: overdue custody entries flag a rescue, the starvation epoch moves on, a
 *    runnable task that has not run for watchdog_timeout ends the run as a stall.
 *  - timer slack: a timed wake-up (sleep, period, the host's epoll_wait timeout) fires up
 *    to the task's timer slack after it is due (timer_fire() below); lateness counts from
 *    the due time.
 * Not modelled: CPU hotplug, dispatch slots, yields, wakeup_preempt, builtin_idle, the
 * host's helper threads; SCX_WAKE_SYNC only where the waker then blocks (the kernel sets
 * it for every pipe write).
 *
 * Events live in one binary heap ordered by (time, sequence); arrays grow by doubling,
 * nothing is allocated per event.
 */
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "loop.h"
#include "sim.h"

enum { EV_WAKE, EV_BURST, EV_EXPIRE, EV_RESCHED, EV_HOST_WAKE, EV_HOST_TIMEOUT, EV_HOST_DONE,
       EV_HEARTBEAT,
       EV_END };

enum { T_NEW, T_SLEEP, T_WAITCH, T_HOST, T_DSQ, T_LOCAL, T_RUN, T_EXIT };

#define SCX_SLICE_DFL 20000000ull
#define HOST_WAIT_NS 100000000ull   /* the live host's longest epoll_wait (main.c RUN_WAIT_MS) */
/* The `queued` ringbuf: records rounded up to 8 bytes, plus the ringbuf's 8-byte header. */
#define RING_REC_BYTES ((sizeof(struct queued_task_ctx) + 7) / 8 * 8 + 8)
#define RING_CAP (QUEUED_RING_BYTES / RING_REC_BYTES)
#define NO_TASK (-1)
#define HOST_TASK (-2)       /* the host's thread, on a CPU or in a local DSQ */

struct ev {
	uint64_t t, seq;
	int32_t type, id;
	uint32_t gen, pad;
};

struct dsq {
	int32_t *h;
	int n, cap;
	uint64_t qmin;           /* <= every queued_at in it (the starvation scan's shortcut) */
};

struct task {
	int32_t pid, tgid;
	int group;
	int inst;
	char comm[16];
	uint8_t state;
	uint8_t kthread;
	bool fresh, decided, pending, waking, ran, waiting;
	uint64_t weight;
	const uint64_t *aff;
	int nr_allowed;
	/* program */
	int pc, sp;
	struct { int op; uint64_t left; } loops[8];
	uint64_t remaining;      /* ns of the current run step left (UINT64_MAX forever) */
	uint64_t pnext;          /* next period boundary */
	uint64_t timer_due;      /* when its pending timed wake-up (sleep, period, start) is due */
	uint64_t slack;          /* its timer slack (timer_slack_ns; 0 = exact wake-ups) */
	int32_t wnext;           /* channel waiter list */
	uint64_t sig_left;       /* tokens of the current signal step still to post */
	/* BPF task_ctx and sched_ext fields */
	uint64_t enq_cnt, start_ts, stop_ts, exec_runtime, run_start, slice_dec;
	uint64_t dsq_vtime, slice, dsq_seq;
	uint64_t queued_at;      /* when last inserted into a DSQ (task_ctx.queued_at; 0 never) */
	uint64_t stint_slice;    /* slice it had when it last started running */
	uint64_t slice_left;     /* slice left when it last stopped while still runnable */
	bool prio;               /* placed by a priority decision: charged to the CPU's budget */
	bool placed;             /* running under a fast-path placement (vtime advances) */
	bool fast;               /* its last decision granted the fast path (RL_DISP_FAST) */
	bool fast_queue;         /* ... also with no idle CPU (RL_DISP_FAST_QUEUE) */
	uint64_t fast_slice;     /* ... with this slice (bounds_fast_slice) */
	int cpu;                 /* scx_bpf_task_cpu() */
	int last_ran;            /* CPU it last ran on (migrations) */
	uint64_t pend_enq, pend_at;
	int heap_idx;
	int dsq_id;              /* -1 shared, else CPU */
	/* metrics */
	uint64_t wake_ts, runnable_since;
	struct sim_task_stats st;
	struct sim_hist *hist;
};

struct cpu {
	int cur;
	uint32_t bgen, sgen;
	uint64_t seg_start;      /* when the running task's current run segment began */
	bool resched, preempt;
	int32_t *local;          /* local DSQ: FIFO, head inserts for priority */
	int nlocal, cap_local;
	struct dsq dsq;
	__u64 prio_period_start, prio_runtime;      /* cpu_ctx: the priority budget */
	uint64_t scan_epoch;                        /* starve_epoch of the last starvation scan */
	uint32_t scan_cursor;                       /* the other CPUs the next scan looks at */
};

struct chan {
	uint64_t tokens, cap;       /* cap 0: unbounded */
	int32_t whead, wtail;       /* tasks waiting for a token */
	int32_t shead, stail;       /* tasks waiting for room (the channel was full) */
};

struct sim {
	const struct sim_wl *w;
	uint64_t now;            /* the virtual clock (pol_env.clock points here) */
	uint64_t seq;
	uint64_t rng;
	uint64_t rng_slack;      /* timer slack draws: their own stream of the same seed */
	uint64_t tick_ns;
	int nr_cpus;
	struct topo *topo;
	volatile uint64_t idle_mask[MAX_CPUS / 64];   /* what the policy sees (update_idle) */
	uint64_t claim[MAX_CPUS / 64];                /* the kernel's idle mask (claims) */
	int nclaim;                                   /* bits set in claim */
	int pick_cursor;
	struct cpu *cpus;
	struct dsq shared;
	struct task *tasks;
	int ntasks, cap_tasks;
	int32_t next_pid;
	struct chan *chans;
	struct ev *heap;
	int nev, cap_ev;
	/* the queued ring */
	struct queued_task_ctx *ring;
	int ring_head, ring_n;
	uint64_t ring_cons;      /* records the host has taken (the consumer position) */
	uint64_t quiet_end;      /* producer position just after the last quiet record */
	/* wake-ups a task's program made through channels, run when its step ends (sync) */
	int32_t *wakeq;
	int nwakeq, cap_wakeq;
	/* the host */
	struct loop lp;
	bool host_busy, host_wake_pending, host_sent;
	uint32_t host_sleep_gen;    /* its epoll_wait timeout is for the current sleep only */
	/* The host's thread (tgid == host_tgid in BPF): queued in SCHED_DSQ, which every CPU
	 * consumes before its own DSQs, or running on host_cpu while it decides batches. */
	bool host_queued, host_on_cpu;
	int host_cpu, host_last_cpu;
	uint64_t host_run_start, host_last_run;
	struct task host_t;                           /* its affinity (all CPUs) for the walks */
	uint64_t host_aff[MAX_CPUS / 64];
	int npending;                                 /* tasks in custody (nr_pending) */
	uint64_t pending_since;                       /* when npending last rose from 0 */
	uint64_t host_hb;                             /* host_hb_ns: the host's last loop turn */
	bool host_stalled;                            /* BPF's stalled-host mode */
	uint64_t host_done_at, host_left;             /* the batch in flight: ends / ns left */
	uint32_t host_done_gen;                       /* a preempted host's EV_HOST_DONE is stale */
	struct dispatched_task_ctx *inflight;
	int ninflight;
	uint64_t cost_t0;
	uint64_t vtime_floor;
	uint64_t vtime_now;      /* largest vtime of a decided task that started running (BPF's) */
	uint64_t slice_max_ns, wait_bound_ns, hb_ns;   /* bpf/bounds.bpf.h, from the watchdog */
	bool rescue_needed;
	uint64_t starve_epoch;   /* bumped by the heartbeat: CPUs scan for starved tasks */
	struct sim_counters c;
	struct sim_trace *trace;
	bool stalled;
	char stall_msg[256];
	bool ended;
};

static bool host_start(struct sim *s, int cpu);
static void host_preempted(struct sim *s);

/* ---- small things ------------------------------------------------------------------ */
static uint64_t rnd_next(uint64_t *state)   /* splitmix64 */
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct sim *s) { return rnd_next(&s->rng); }

static uint64_t rnd_range(struct sim *s, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + rnd(s) % (hi - lo + 1);
}

/* ---- timer slack --------------------------------------------------------------------
 * What the kernel does (kernel/time/hrtimer.c, include/linux/hrtimer.h, fs/select.c,
 * kernel/sys.c, include/linux/sched.h, init/init_task.c): every task has timer_slack_ns
 * (and default_timer_slack_ns, what prctl(PR_SET_TIMERSLACK, 0) restores), 50 us in
 * init_task and inherited at fork; a task given a real-time policy gets 0. nanosleep/clock_nanosleep (hrtimer_nanosleep)
 * arm their hrtimer with hrtimer_set_expires_range_ns(timer, t, timer_slack_ns): a soft
 * expiry t and a hard one t + slack. The CPU's clock event is programmed for the earliest
 * hard expiry, and an hrtimer interrupt (__hrtimer_run_queues) expires every queued timer
 * whose soft expiry has passed: a sleeper wakes at t + slack unless another hrtimer on its
 * CPU (the tick of a busy CPU, another task's sleep, ...) fires inside [t, t + slack]
 * first. poll/select/epoll_wait timeouts get max(timer_slack_ns, 0.1% of the timeout)
 * (select_estimate_accuracy; 0.5% for nice > 0; capped at 100 ms; 0 for real-time tasks).
 *
 * The model draws the delay uniform in [0, slack]. Where in the window a real timer fires
 * depends on the other timers of its CPU, which the model does not keep: a lone sleeper on
 * an idle (NOHZ) CPU wakes near t + slack, one among many timers earlier. Uniform is a
 * first approximation that does what matters most here: it spreads the wake-ups over the
 * window, as the real mix of timers does, so sleepers, ticks and the host's wake-ups no
 * longer phase-lock (a fixed t + slack would only shift the lock). Its draws come from
 * their own stream of the seed (rng_slack), so they do not shift the sequence the
 * workload's run lengths, start times and CPU walks draw from; the run stays a function
 * of workload and seed. Lateness (the wakeup latency metric) counts from t, as a sleeper
 * measuring now - deadline sees it; a period is missed only by its due time. */
static uint64_t timer_fire(struct sim *s, uint64_t due, uint64_t slack)
{
	return slack ? due + rnd_next(&s->rng_slack) % (slack + 1) : due;
}

static bool grow(void **p, int *cap, int need, size_t elem)
{
	if (need <= *cap)
		return true;
	int nc = *cap ? *cap : 16;
	while (nc < need)
		nc *= 2;
	void *n = realloc(*p, (size_t)nc * elem);
	if (!n)
		return false;
	*p = n;
	*cap = nc;
	return true;
}

static inline bool bit_test(const volatile uint64_t *m, int c) { return m[c / 64] >> (c % 64) & 1; }
static inline void bit_set(volatile uint64_t *m, int c) { m[c / 64] |= 1ull << (c % 64); }
static inline void bit_clr(volatile uint64_t *m, int c) { m[c / 64] &= ~(1ull << (c % 64)); }

static inline bool allowed(const struct task *t, int cpu)
{
	return cpu >= 0 && bit_test(t->aff, cpu);
}

/* ---- event heap -------------------------------------------------------------------- */
static inline bool ev_before(const struct ev *a, const struct ev *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void ev_push(struct sim *s, uint64_t t, int type, int id, uint32_t gen)
{
	if (!grow((void **)&s->heap, &s->cap_ev, s->nev + 1, sizeof(*s->heap))) {
		g_err("simulate: out of memory for events");
		exit(EXIT_FAILURE);
	}
	struct ev e = { .t = t, .seq = s->seq++, .type = type, .id = id, .gen = gen };
	int i = s->nev++;
	while (i > 0) {
		int p = (i - 1) / 2;
		if (!ev_before(&e, &s->heap[p]))
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = e;
}

static struct ev ev_pop(struct sim *s)
{
	struct ev top = s->heap[0], last = s->heap[--s->nev];
	int i = 0, n = s->nev;

	while (1) {
		int l = 2 * i + 1, r = l + 1, m = i;
		const struct ev *best = &last;
		if (l < n && ev_before(&s->heap[l], best)) {
			m = l;
			best = &s->heap[l];
		}
		if (r < n && ev_before(&s->heap[r], best))
			m = r;
		if (m == i)
			break;
		s->heap[i] = s->heap[m];
		i = m;
	}
	if (n > 0)
		s->heap[i] = last;
	return top;
}

/* ---- DSQs (vtime-ordered heaps of task ids; ties FIFO) ------------------------------ */
static inline bool dq_before(const struct sim *s, int a, int b)
{
	const struct task *x = &s->tasks[a], *y = &s->tasks[b];
	/* the kernel compares vtimes with time_before(): a signed difference */
	int64_t d = (int64_t)(x->dsq_vtime - y->dsq_vtime);
	return d < 0 || (d == 0 && x->dsq_seq < y->dsq_seq);
}

static void dq_up(struct sim *s, struct dsq *q, int i)
{
	int id = q->h[i];
	while (i > 0) {
		int p = (i - 1) / 2;
		if (!dq_before(s, id, q->h[p]))
			break;
		q->h[i] = q->h[p];
		s->tasks[q->h[i]].heap_idx = i;
		i = p;
	}
	q->h[i] = id;
	s->tasks[id].heap_idx = i;
}

static void dq_down(struct sim *s, struct dsq *q, int i)
{
	int id = q->h[i];
	while (1) {
		int l = 2 * i + 1, r = l + 1, m = -1;
		int best = id;
		if (l < q->n && dq_before(s, q->h[l], best)) {
			m = l;
			best = q->h[l];
		}
		if (r < q->n && dq_before(s, q->h[r], best))
			m = r;
		if (m < 0)
			break;
		q->h[i] = q->h[m];
		s->tasks[q->h[i]].heap_idx = i;
		i = m;
	}
	q->h[i] = id;
	s->tasks[id].heap_idx = i;
}

static void dq_push(struct sim *s, struct dsq *q, int id)
{
	if (!grow((void **)&q->h, &q->cap, q->n + 1, sizeof(*q->h))) {
		g_err("simulate: out of memory for a DSQ");
		exit(EXIT_FAILURE);
	}
	q->h[q->n] = id;
	dq_up(s, q, q->n++);
}

static void dq_remove(struct sim *s, struct dsq *q, int i)
{
	int last = q->h[--q->n];
	if (i == q->n)
		return;
	q->h[i] = last;
	s->tasks[last].heap_idx = i;
	dq_up(s, q, i);
	dq_down(s, q, s->tasks[last].heap_idx);
}

static uint64_t dq_head_vtime(const struct sim *s, const struct dsq *q)
{
	return q->n ? s->tasks[q->h[0]].dsq_vtime : ~0ull;
}

/* The first task of q this CPU may run (the kernel's consume skips the others). */
static int dq_take(struct sim *s, struct dsq *q, int cpu)
{
	int best = -1;

	if (!q->n)
		return NO_TASK;
	if (allowed(&s->tasks[q->h[0]], cpu)) {
		best = 0;
	} else {
		for (int i = 1; i < q->n; i++)
			if (allowed(&s->tasks[q->h[i]], cpu) &&
			    (best < 0 || dq_before(s, q->h[i], q->h[best])))
				best = i;
		if (best < 0)
			return NO_TASK;
	}
	int id = q->h[best];
	dq_remove(s, q, best);
	return id;
}

/* ---- local DSQs -------------------------------------------------------------------- */
static void local_push(struct sim *s, int cpu, int id, bool head)
{
	struct cpu *c = &s->cpus[cpu];
	if (!grow((void **)&c->local, &c->cap_local, c->nlocal + 1, sizeof(*c->local))) {
		g_err("simulate: out of memory for a local DSQ");
		exit(EXIT_FAILURE);
	}
	if (head) {
		memmove(c->local + 1, c->local, (size_t)c->nlocal * sizeof(*c->local));
		c->local[0] = id;
	} else {
		c->local[c->nlocal] = id;
	}
	c->nlocal++;
	if (id >= 0)
		s->tasks[id].state = T_LOCAL;
}

static int local_pop(struct sim *s, int cpu)
{
	struct cpu *c = &s->cpus[cpu];
	int id;

	if (!c->nlocal)
		return NO_TASK;
	id = c->local[0];
	memmove(c->local, c->local + 1, (size_t)(c->nlocal - 1) * sizeof(*c->local));
	c->nlocal--;
	return id;
}

/* ---- kicks and idle CPUs ----------------------------------------------------------- */
static void resched(struct sim *s, int cpu, bool preempt)
{
	struct cpu *c = &s->cpus[cpu];

	if (preempt)
		c->preempt = true;
	if (c->resched)
		return;
	c->resched = true;
	ev_push(s, s->now, EV_RESCHED, cpu, 0);
}

static void claim_set(struct sim *s, int cpu)
{
	if (!bit_test(s->claim, cpu)) {
		bit_set(s->claim, cpu);
		s->nclaim++;
	}
}

static void claim_clr(struct sim *s, int cpu)
{
	if (bit_test(s->claim, cpu)) {
		bit_clr(s->claim, cpu);
		s->nclaim--;
	}
}

static bool test_and_clear_idle(struct sim *s, int cpu)
{
	if (!bit_test(s->claim, cpu))
		return false;
	claim_clr(s, cpu);
	return true;
}

/* scx_bpf_pick_idle_cpu(): an idle CPU of t's (whole idle cores first with SMT), spread
 * by a rotating start (cpumask_any_and_distribute). */
static int pick_idle_any(struct sim *s, const struct task *t)
{
	int n = s->nr_cpus, smt = s->w->smt;

	if (!s->nclaim)
		return -1;   /* the usual case under load: no scan */
	for (int pass = smt > 1 ? 0 : 1; pass < 2; pass++) {
		for (int k = 1; k <= n; k++) {
			int cpu = (s->pick_cursor + k) % n;
			if (!allowed(t, cpu) || !bit_test(s->claim, cpu))
				continue;
			if (pass == 0) {
				int base = cpu / smt * smt;
				bool whole = true;
				for (int j = base; j < base + smt; j++)
					whole &= bit_test(s->claim, j);
				if (!whole)
					continue;
			}
			claim_clr(s, cpu);
			s->pick_cursor = cpu;
			return cpu;
		}
	}
	return -1;
}

/* The sibling-list walk is the BPF side's own (bpf/idle.bpf.h), over the model's idle
 * mask: p is the simulator and the task. */
struct idle_walk {
	struct sim *s;
	const struct task *t;
};
#define IDLE_TASK struct idle_walk
#define IDLE_ALLOWED(p, cpu) ((cpu) < (p)->s->nr_cpus && allowed((p)->t, (cpu)))
#define IDLE_CLAIM_TASK(p, cpu) test_and_clear_idle((p)->s, (cpu))
#include "../../bpf/idle.bpf.h"   /* pick_from(): the walk, shared with BPF */

static int pick_idle_topo(struct sim *s, const struct task *t, int prev)
{
	if (allowed(t, prev) && test_and_clear_idle(s, prev))
		return prev;
	if (t->nr_allowed == 1)
		return -1;
	const struct cpu_topo *ct = &s->topo->cpu[prev];
	const struct idle_walk w = { s, t };
	uint32_t start = (uint32_t)rnd(s);
	int cpu = pick_from(&w, ct->l2, ct->nr_l2, start);
	if (cpu >= 0)
		return cpu;
	cpu = pick_from(&w, ct->l3, ct->nr_l3, start);
	if (cpu >= 0)
		return cpu;
	return pick_idle_any(s, t);
}

/* kick_for() of main.bpf.c */
static void kick_for(struct sim *s, struct task *t, int cpu, bool preempt)
{
	if (cpu >= 0) {
		if (preempt || s->cpus[cpu].cur == NO_TASK)
			resched(s, cpu, preempt);
		return;
	}
	cpu = pick_idle_any(s, t);
	if (cpu >= 0) {
		resched(s, cpu, false);
		return;
	}
	if (!preempt)
		return;
	/* no idle CPU: preempt the task's last CPU, unless the host runs there (it would be
	 * dispatched again first); then a neighbour it may use */
	cpu = t->cpu;
	if (cpu == s->host_last_cpu && s->nr_cpus > 1 && allowed(t, (cpu + 1) % s->nr_cpus))
		cpu = (cpu + 1) % s->nr_cpus;
	resched(s, cpu, true);
}

/* ---- records and inserts ---------------------------------------------------------- */
/* fill_record() of main.bpf.c, into the next slot of the `queued` ring (room checked). */
static void fill_record(struct sim *s, const struct task *t, uint64_t flags, int cpu,
			uint64_t exec_runtime)
{
	struct queued_task_ctx *r = &s->ring[(s->ring_head + s->ring_n++) % RING_CAP];

	memset(r, 0, sizeof(*r));
	r->pid = t->pid;
	r->tgid = t->tgid;
	r->cpu = cpu;
	r->nr_cpus_allowed = t->nr_allowed;
	r->flags = flags;
	r->start_ts = t->start_ts;
	r->stop_ts = t->stop_ts;
	r->exec_runtime = exec_runtime;
	r->weight = t->weight;
	r->vtime = t->dsq_vtime;
	r->enq_cnt = t->enq_cnt;
	memcpy(r->comm, t->comm, sizeof(r->comm));
}

/* bpf_ktime_get_ns() is never 0; virtual time starts at 0, and queued_at 0 means unknown. */
static inline uint64_t stamp(const struct sim *s)
{
	return s->now ? s->now : 1;
}

/* Every insert into one of our DSQs stamps queued_at, as main.bpf.c's callers do. */
static void dsq_insert(struct sim *s, int id, int dsq, uint64_t slice, uint64_t vtime)
{
	struct task *t = &s->tasks[id];
	struct dsq *q = dsq < 0 ? &s->shared : &s->cpus[dsq].dsq;

	t->dsq_vtime = vtime;
	t->slice = slice;
	t->dsq_seq = s->seq++;
	t->dsq_id = dsq;
	t->state = T_DSQ;
	t->queued_at = stamp(s);
	if (!q->n || t->queued_at < q->qmin)
		q->qmin = t->queued_at;
	dq_push(s, q, id);
}

static void kernel_dispatch(struct sim *s, int id)
{
	s->tasks[id].prio = false;
	dsq_insert(s, id, -1, s->w->slice_ns_default, s->vtime_floor);
	s->c.nr_kernel_dispatches++;
	kick_for(s, &s->tasks[id], -1, false);
}

/* resume_preempted() of main.bpf.c: the decision still stands, with what is left of its
 * slice, on the task's CPU (a priority one at the head of its local DSQ again). */
static void resume_preempted(struct sim *s, int id)
{
	struct task *t = &s->tasks[id];
	uint64_t left = t->slice_left;
	int cpu = t->cpu;

	t->slice_left = 0;
	s->c.nr_resumed++;
	if (t->prio && allowed(t, cpu)) {
		t->queued_at = stamp(s);
		t->slice = left;
		local_push(s, cpu, id, true);
		return;
	}
	if (allowed(t, cpu)) {
		dsq_insert(s, id, cpu, left, t->dsq_vtime);
		kick_for(s, t, cpu, false);
	} else {
		dsq_insert(s, id, -1, left, t->dsq_vtime);
		kick_for(s, t, -1, false);
	}
}

/* ---- the ring's wake-ups (bpf/rings.bpf.h) ------------------------------------------
 * The kernel's ringbuf wakes the host when a record is committed at the consumer position
 * (the host has read everything before it), unless the record is quiet. A custody record
 * (rings_submit_urgent) also forces the wake-up while a quiet record before it may still
 * be unread; quiet records (told-only: a fast-path placement) wake the host only once the
 * unread ones fill 1/RINGS_QUIET_WAKE_DIV of the ring. A host already awake (on its CPU,
 * queued for one, or its wake-up under way) needs none. */
static void ring_wake_host(struct sim *s)
{
	if (!s->host_on_cpu && !s->host_queued && !s->host_wake_pending) {
		s->host_wake_pending = true;
		ev_push(s, s->now + s->w->host_wake_ns, EV_HOST_WAKE, 0, 0);
	}
}

/* at_cons: the ring held no unread record before this one. */
static void ring_submit_urgent(struct sim *s, bool at_cons)
{
	if (at_cons || s->ring_cons < s->quiet_end)
		ring_wake_host(s);
}

static void ring_submit_quiet(struct sim *s)
{
	/* BPF_RB_AVAIL_DATA counts the record just reserved */
	bool force = (uint64_t)s->ring_n * RING_REC_BYTES >=
		     QUEUED_RING_BYTES / RINGS_QUIET_WAKE_DIV;

	s->quiet_end = s->ring_cons + (uint64_t)s->ring_n;
	if (force)
		ring_wake_host(s);
}

/* ---- the fast path ------------------------------------------------------------------ */
/* fast_granted() of main.bpf.c: the task's last decision granted it the fast path
 * (RL_DISP_FAST), early_processing is on and the host is not stalled. Never decided: no
 * grant. The model's tasks are never the host's threads. */
static bool fast_granted(const struct sim *s, const struct task *t)
{
	return s->w->early_processing && !s->host_stalled && !t->kthread && t->fast;
}

/* place_fast() of main.bpf.c: run the task on cpu's local DSQ now, with the slice its
 * policy granted, at its last decided vtime pulled up to vtime_now - slice_ns_default (a
 * stale or zero one would keep it first in keep_prev until the wait bound), and tell the
 * policy afterwards:
 * a quiet record flagged RL_ENQ_PLACED (no custody, no decision expected) that carries the
 * vtime before the placement. The placement stands for a decision (keep_prev applies at
 * its expiry). rec_cpu/exec_runtime: what the record reports (select_cpu runs before
 * ops.runnable resets exec_runtime). */
#define PLACE_LOCAL (-2)   /* place_fast(): cpu's local DSQ */
#define PLACE_SHARED (-1)  /* ... the shared DSQ (RL_DISP_FAST_QUEUE); >= 0: that CPU's DSQ */
static void place_fast(struct sim *s, int id, int cpu, int rec_cpu, uint64_t exec_runtime,
		       int dsq)
{
	struct task *t = &s->tasks[id];
	bool told = s->ring_n < (int)RING_CAP;

	if (told)
		fill_record(s, t, SIM_ENQ_WAKEUP | RL_ENQ_PLACED, rec_cpu, exec_runtime);
	t->fresh = true;
	t->decided = true;
	t->placed = true;
	t->slice_dec = t->fast_slice;
	t->queued_at = stamp(s);
	t->prio = false;
	t->slice_left = 0;
	t->dsq_vtime = bounds_placed_vtime(t->dsq_vtime, s->vtime_now, s->w->slice_ns_default);
	t->slice = t->fast_slice;
	t->runnable_since = s->now;
	t->waiting = true;
	if (dsq == PLACE_LOCAL)
		local_push(s, cpu, id, false);
	else   /* a sync waker's CPU's own DSQ (pick_sync), the shared one: in vtime order */
		dsq_insert(s, id, dsq, t->fast_slice, t->dsq_vtime);
	s->c.nr_placed++;
	if (!told) {
		s->c.nr_placed_untold++;
		return;
	}
	ring_submit_quiet(s);
}

/* cpus_share_l3() of main.bpf.c: is b in a's L3 sibling list? */
static bool cpus_share_l3(const struct sim *s, int a, int b)
{
	const struct cpu_topo *ct = &s->topo->cpu[a];
	uint32_t n = ct->nr_l3 < MAX_SIBLINGS ? ct->nr_l3 : MAX_SIBLINGS;

	for (uint32_t i = 0; i < n; i++)
		if (ct->l3[i] == b)
			return true;
	return false;
}

/* pick_sync() of main.bpf.c, for a sync wake-up by a task on CPU `here` that is about to
 * block: here, when t may run there and nothing waits in its local DSQ or its own DSQ; but
 * first prev, if it is idle (claimed, *idle set) and shares here's L3. -1: neither. The
 * wakee goes to here's own DSQ, in vtime order, not its local DSQ: so ops.dispatch runs
 * when the waker blocks and weighs it against what waits (a chain of hand-offs through
 * the local DSQ starved the DSQs' tasks until the starvation scan). */
static int pick_sync(struct sim *s, const struct task *t, int prev, int here, bool *idle)
{
	*idle = false;
	if (!allowed(t, here) || s->cpus[here].nlocal || s->cpus[here].dsq.n)
		return -1;
	if (prev != here && allowed(t, prev) && cpus_share_l3(s, prev, here) &&
	    test_and_clear_idle(s, prev)) {
		*idle = true;
		return prev;
	}
	return here;
}

/* ---- enqueue ----------------------------------------------------------------------- */
static void enqueue(struct sim *s, int id, uint64_t flags)
{
	struct task *t = &s->tasks[id];
	bool at_cons;

	t->runnable_since = s->now;
	t->waiting = true;
	if (t->kthread == SIM_KT_PERCPU) {
		t->slice = s->w->slice_ns_default;
		local_push(s, t->cpu, id, false);
		s->c.nr_kernel_dispatches++;
		if (s->cpus[t->cpu].cur == NO_TASK)
			resched(s, t->cpu, false);
		return;
	}
	if ((flags & SIM_ENQ_WAKEUP) && fast_granted(s, t) && allowed(t, t->cpu) &&
	    test_and_clear_idle(s, t->cpu)) {
		/* a granted wake-up select_cpu did not place (a task allowed on one CPU, or no
		 * CPU idle then): its own CPU, idle now, kicked */
		place_fast(s, id, t->cpu, t->cpu, t->exec_runtime, PLACE_LOCAL);
		resched(s, t->cpu, false);
		return;
	}
	if (t->decided && !(flags & SIM_ENQ_WAKEUP) && !s->host_stalled &&
	    t->slice_left >= RESUME_LEFT_MIN_NS && !t->kthread) {
		resume_preempted(s, id);
		return;
	}
	t->fresh = true;
	t->decided = false;
	if (t->kthread == SIM_KT_SHARED) {
		t->prio = false;
		dsq_insert(s, id, -1, s->w->slice_ns_min, 0);
		s->c.nr_kernel_dispatches++;
		kick_for(s, t, -1, false);
		return;
	}
	if (s->host_stalled) {      /* stalled-host mode: no task goes to the host */
		kernel_dispatch(s, id);
		return;
	}
	if (s->ring_n >= (int)RING_CAP) {
		s->c.nr_sched_congested++;
		kernel_dispatch(s, id);
		return;
	}
	t->enq_cnt++;
	t->pending = true;
	if (s->npending++ == 0)
		s->pending_since = s->now;
	t->pend_enq = t->enq_cnt;
	t->pend_at = s->now;
	t->state = T_HOST;

	at_cons = s->ring_n == 0;
	fill_record(s, t, flags, t->cpu, t->exec_runtime);
	ring_submit_urgent(s, at_cons);
}

/* A task becomes runnable: select_cpu, ops.runnable, enqueue. The kernel calls select_cpu
 * only for a task that may run on more than one CPU (select_task_rq()); the others are
 * queued on their CPU, which wakes if it is idle. waker_cpu >= 0: a sync wake-up
 * (SCX_WAKE_SYNC) by the task running there, which blocks at once (see step()). */
static void wake_from(struct sim *s, int id, uint64_t wake_ts, int waker_cpu)
{
	struct task *t = &s->tasks[id];
	uint64_t ran = t->exec_runtime;   /* what select_cpu's record reports */
	int cpu, prev = t->cpu;

	t->exec_runtime = 0;              /* ops.runnable */
	t->waking = true;
	t->wake_ts = wake_ts;
	t->st.wakeups++;
	if (t->kthread == SIM_KT_PERCPU) {
		enqueue(s, id, SIM_ENQ_WAKEUP);
		return;
	}
	if (t->nr_allowed > 1 && fast_granted(s, t)) {
		/* select_cpu, granted: the sync waker's CPU, else an idle CPU (claimed) */
		bool idle = true;

		cpu = waker_cpu >= 0 ? pick_sync(s, t, prev, waker_cpu, &idle) : -1;
		if (cpu >= 0)
			s->c.nr_sync_wakeups++;
		else
			cpu = pick_idle_topo(s, t, prev);
		if (cpu >= 0) {
			t->cpu = cpu;
			place_fast(s, id, cpu, prev, ran, idle ? PLACE_LOCAL : cpu);
			if (s->cpus[cpu].cur == NO_TASK)
				resched(s, cpu, false);   /* an idle CPU wakes for it */
			return;
		}
		if (t->fast_queue) {
			/* RL_DISP_FAST_QUEUE: no idle CPU, queued by BPF in the shared DSQ */
			place_fast(s, id, prev, prev, ran, PLACE_SHARED);
			s->c.nr_fast_queued++;
			return;
		}
	}
	/* select_cpu claims nothing (not granted: the host's decision picks and kicks a CPU;
	 * or no CPU idle) and returns prev: queued on prev's runqueue, which wakes if idle */
	if (allowed(t, t->cpu) && s->cpus[t->cpu].cur == NO_TASK)
		resched(s, t->cpu, false);
	enqueue(s, id, SIM_ENQ_WAKEUP);
}

static void wake(struct sim *s, int id, uint64_t wake_ts)
{
	wake_from(s, id, wake_ts, -1);
}

/* ---- programs ---------------------------------------------------------------------- */
enum { A_RUN, A_BLOCK, A_EXIT };

static int new_task(struct sim *s, int group, int inst, int parent, uint64_t start);

/* FIFO lists of tasks threaded through task.wnext (a task waits on one list at most). */
static void list_push(struct sim *s, int32_t *head, int32_t *tail, int id)
{
	s->tasks[id].wnext = -1;
	if (*tail >= 0)
		s->tasks[*tail].wnext = id;
	else
		*head = id;
	*tail = id;
}

static int list_pop(struct sim *s, int32_t *head, int32_t *tail)
{
	int id = *head;
	if (id >= 0) {
		*head = s->tasks[id].wnext;
		if (*head < 0)
			*tail = -1;
	}
	return id;
}

/* A wake-up through a channel (a reader given a token, a writer given room): made when
 * the waker's step ends (step()), when it is known whether the waker blocks. */
static void defer_wake(struct sim *s, int id)
{
	if (!grow((void **)&s->wakeq, &s->cap_wakeq, s->nwakeq + 1, sizeof(*s->wakeq))) {
		g_err("simulate: out of memory for wake-ups");
		exit(EXIT_FAILURE);
	}
	s->wakeq[s->nwakeq++] = id;
}

/* Run the task's program from pc until it needs the CPU (a run step), blocks or exits.
 * Runs while the task is on a CPU, in zero time. */
static int advance(struct sim *s, int id)
{
	const struct sim_wl *w = s->w;
	const struct sim_group *g = &w->groups[s->tasks[id].group];
	int steps = 0;

	for (;;) {
		struct task *t = &s->tasks[id];   /* new_task() may move the array */
		if (t->pc >= g->nops)
			return A_EXIT;
		if (++steps > 100000) {
			g_err("simulate: %s:%d: task %s (pid %d) ran 100000 steps without taking "
			      "time; ending it", w->file, w->ops[g->op0 + t->pc].line, t->comm, t->pid);
			return A_EXIT;
		}
		const struct sim_op *op = &w->ops[g->op0 + t->pc];
		t->pc++;
		switch (op->kind) {
		case OP_RUN:
			t->remaining = op->lo == UINT64_MAX ? UINT64_MAX : rnd_range(s, op->lo, op->hi);
			if (t->remaining == 0)
				continue;
			return A_RUN;
		case OP_SLEEP: {
			uint64_t d = rnd_range(s, op->lo, op->hi);
			t->state = T_SLEEP;
			t->timer_due = s->now + d;
			ev_push(s, timer_fire(s, t->timer_due, t->slack), EV_WAKE, id, 0);
			return A_BLOCK;
		}
		case OP_PERIOD:
			t->st.periods++;
			if (t->pnext == 0) {
				t->pnext = s->now + op->lo;
			} else {
				t->pnext += op->lo;
				while (t->pnext < s->now) {
					t->pnext += op->lo;
					t->st.missed++;
				}
			}
			if (t->pnext <= s->now)
				continue;
			t->state = T_SLEEP;
			t->timer_due = t->pnext;   /* clock_nanosleep(TIMER_ABSTIME) to it */
			ev_push(s, timer_fire(s, t->pnext, t->slack), EV_WAKE, id, 1);
			return A_BLOCK;
		case OP_WAIT: {
			struct chan *ch = &s->chans[op->chan + t->inst % op->chan_n];
			if (ch->tokens) {
				ch->tokens--;
				/* room again: a writer blocked on the full channel retries */
				int sid = list_pop(s, &ch->shead, &ch->stail);
				if (sid >= 0)
					defer_wake(s, sid);
				continue;
			}
			t->state = T_WAITCH;
			list_push(s, &ch->whead, &ch->wtail, id);
			return A_BLOCK;
		}
		case OP_SIGNAL: {
			struct chan *ch = &s->chans[op->chan + t->inst % op->chan_n];
			if (!t->sig_left)
				t->sig_left = op->lo;
			while (t->sig_left) {
				int wid = list_pop(s, &ch->whead, &ch->wtail);
				if (wid >= 0) {
					defer_wake(s, wid);    /* straight to a reader */
				} else if (!ch->cap || ch->tokens < ch->cap) {
					ch->tokens++;
				} else {
					/* full: block, and run this step again when there is room */
					t->pc--;
					t->state = T_WAITCH;
					list_push(s, &ch->shead, &ch->stail, id);
					return A_BLOCK;
				}
				t->sig_left--;
			}
			continue;
		}
		case OP_FORK:
			new_task(s, op->arg, -1, id, s->now);
			continue;
		case OP_LOOP:
			if (t->sp >= 8)
				return A_EXIT;   /* the loader allows 8 levels */
			t->loops[t->sp].op = (int)(op - w->ops) - g->op0;
			t->loops[t->sp].left = op->lo;   /* 0 = forever */
			t->sp++;
			continue;
		case OP_END:
			if (t->sp > 0) {
				uint64_t *left = &t->loops[t->sp - 1].left;
				if (*left == 0 || --*left > 0) {
					t->pc = t->loops[t->sp - 1].op + 1;
					continue;
				}
				t->sp--;
			}
			continue;
		case OP_EXIT:
		default:
			return A_EXIT;
		}
	}
}

/* advance() the task running on cpu, then make the wake-ups its channel steps made, still
 * on its CPU (as the kernel does them, from the waker). A waker that then blocks in the
 * same step (a pipe writer waiting for the answer) makes sync wake-ups (SCX_WAKE_SYNC):
 * its CPU is about to be free. One that goes on running, or exits, makes ordinary ones. */
static int step(struct sim *s, int id, int cpu)
{
	int a = advance(s, id);
	int n = s->nwakeq;

	s->nwakeq = 0;   /* wake_from() never defers: the queue is not refilled below */
	for (int i = 0; i < n; i++)
		wake_from(s, s->wakeq[i], s->now, a == A_BLOCK ? cpu : -1);
	return a;
}

/* ---- running and stopping ---------------------------------------------------------- */
static uint64_t tick_after(struct sim *s, uint64_t t)
{
	uint64_t k = (t + s->tick_ns - 1) / s->tick_ns;
	return k * s->tick_ns;
}

static void arm(struct sim *s, int cpu, uint64_t slice)
{
	struct cpu *c = &s->cpus[cpu];

	c->sgen++;
	ev_push(s, tick_after(s, s->now + (slice ? slice : 1)), EV_EXPIRE, cpu, c->sgen);
}

static void arm_burst(struct sim *s, int cpu)
{
	struct cpu *c = &s->cpus[cpu];
	struct task *t = &s->tasks[c->cur];

	c->bgen++;
	c->seg_start = s->now;
	if (t->remaining != UINT64_MAX)
		ev_push(s, s->now + t->remaining, EV_BURST, cpu, c->bgen);
}

/* Switch t in (ops.running). */
static void start_running(struct sim *s, int cpu, int id)
{
	struct cpu *c = &s->cpus[cpu];
	struct task *t = &s->tasks[id];

	if (c->cur == NO_TASK) {
		bit_clr(s->idle_mask, cpu);     /* update_idle(cpu, false) */
		claim_clr(s, cpu);
	}
	c->cur = id;
	t->state = T_RUN;
	t->run_start = s->now;
	/* ops.running's vtime_advance(): the policy's clock as BPF sees it */
	if (t->decided && !t->prio && !t->kthread && (int64_t)(t->dsq_vtime - s->vtime_now) > 0)
		s->vtime_now = t->dsq_vtime;
	if (t->fresh) {
		t->start_ts = s->now;
		t->fresh = false;
	} else {
		t->start_ts = bounds_resume_start(t->start_ts, t->stop_ts, s->now);
	}
	if (t->ran && t->last_ran != cpu)
		t->st.migrations++;
	t->ran = true;
	t->last_ran = cpu;
	t->cpu = cpu;
	if (t->waking) {
		uint64_t lat = s->now - t->wake_ts;
		sim_hist_add(t->hist, lat);
		t->waking = false;
	}
	if (t->waiting && s->now - t->runnable_since > t->st.wait_max)
		t->st.wait_max = s->now - t->runnable_since;
	t->waiting = false;
	t->stint_slice = t->slice;
	arm(s, cpu, t->slice);
	c->bgen++;
	c->seg_start = s->now;
}

/* Has cpu spent its priority budget (prio_throttled() of main.bpf.c)? */
static bool prio_throttled(const struct sim *s, int cpu)
{
	const struct cpu *c = &s->cpus[cpu];

	return bounds_prio_spent(c->prio_period_start, c->prio_runtime, s->now);
}

/* The running task leaves the CPU (ops.stopping); involuntary = still runnable. */
static void stop_running(struct sim *s, int cpu, bool involuntary)
{
	struct cpu *c = &s->cpus[cpu];
	struct task *t = &s->tasks[c->cur];
	uint64_t ran = s->now - t->run_start;

	if (t->remaining && t->remaining != UINT64_MAX) {
		uint64_t done = s->now - c->seg_start;
		t->remaining -= done < t->remaining ? done : t->remaining;
		t->st.work_ns += done;
	} else if (t->remaining == UINT64_MAX) {
		t->st.work_ns += s->now - c->seg_start;
	}
	t->stop_ts = s->now;
	t->exec_runtime += ran;
	if (t->prio && ran)
		bounds_prio_charge(&c->prio_period_start, &c->prio_runtime, ran, s->now);
	t->slice_left = bounds_slice_left(involuntary, t->stint_slice, ran);
	if (t->placed && ran)   /* ops.stopping: a placed task's vtime advances with its run */
		t->dsq_vtime = bounds_prev_vtime(t->dsq_vtime, ran, t->weight);
	t->st.cpu_ns += ran;
	t->st.csw++;
	if (involuntary)
		t->st.preempted++;
	if (s->trace && ran)
		sim_trace_slice(s->trace, cpu, t->run_start, s->now, t->comm, t->pid);
	c->cur = NO_TASK;
	c->bgen++;
	c->sgen++;
}

static void go_idle(struct sim *s, int cpu)
{
	bit_set(s->idle_mask, cpu);    /* update_idle(cpu, true) */
	claim_set(s, cpu);
}

/* keep_prev() of main.bpf.c: prev's vtime against the earlier head (head_vt, and since
 * when that head has waited: head_qat), never past the wait bound or a spent budget. */
static bool keep_prev(struct sim *s, struct task *prev, int cpu, uint64_t head_vt,
		      uint64_t head_qat)
{
	if (!prev->decided || !prev->slice_dec || s->host_stalled)
		return false;
	if (bounds_prev_vtime(prev->dsq_vtime, s->now - prev->start_ts, prev->weight) > head_vt)
		return false;
	if (bounds_waited_past(head_qat, s->now, s->wait_bound_ns) ||
	    (prev->prio && prio_throttled(s, cpu))) {
		s->c.nr_keep_bounded++;
		return false;
	}
	s->c.nr_kept++;
	return true;
}

/* ops.dispatch's consume part: the earlier head of this CPU's DSQ and the shared one. */
static int consume(struct sim *s, int cpu, uint64_t vt_cpu, uint64_t vt_sh)
{
	struct dsq *mine = &s->cpus[cpu].dsq;
	int id;

	if (vt_sh < vt_cpu) {
		id = dq_take(s, &s->shared, cpu);
		if (id == NO_TASK)
			id = dq_take(s, mine, cpu);
	} else {
		id = dq_take(s, mine, cpu);
		if (id == NO_TASK)
			id = dq_take(s, &s->shared, cpu);
	}
	return id;
}

/* rescue_pending() of main.bpf.c: every task in custody for stall_timeout goes to the
 * shared DSQ, its enq_cnt bumped so the host's late decision is cancelled. */
static void rescue_pending(struct sim *s)
{
	for (int i = 0; i < s->ntasks; i++) {
		struct task *t = &s->tasks[i];
		if (t->state != T_HOST || !t->pending ||
		    !bounds_rescue_takes(t->pend_at, s->now, s->w->stall_timeout_ns, s->host_stalled))
			continue;
		t->enq_cnt++;
		t->decided = false;
		t->prio = false;
		t->pending = false;
		s->npending--;
		dsq_insert(s, i, -1, s->w->slice_ns_default, s->vtime_floor);
		s->c.nr_rescued++;
		s->c.nr_kernel_dispatches++;
	}
	s->rescue_needed = false;
}

/* run_starved() of main.bpf.c: the tasks of q that waited past the bound and may run here,
 * in q's (vtime) order, at most STARVE_MOVE_MAX, to this CPU's local DSQ. A DSQ whose
 * oldest entry is younger than the bound (qmin) is not looked through. */
static uint32_t run_starved(struct sim *s, int cpu, struct dsq *q)
{
	int32_t pick[STARVE_MOVE_MAX];
	uint32_t moved = 0;

	if (!q->n || s->now - q->qmin <= s->wait_bound_ns)
		return 0;
	while (moved < STARVE_MOVE_MAX) {
		int best = -1;
		for (int i = 0; i < q->n; i++) {
			int id = q->h[i];
			const struct task *t = &s->tasks[id];
			if (!bounds_waited_past(t->queued_at, s->now, s->wait_bound_ns) ||
			    !allowed(t, cpu))
				continue;
			if (best < 0 || dq_before(s, id, q->h[best]))
				best = i;
		}
		if (best < 0)
			break;
		pick[moved++] = q->h[best];
		dq_remove(s, q, best);
	}
	for (uint32_t k = 0; k < moved; k++)
		local_push(s, cpu, pick[k], false);
	q->qmin = UINT64_MAX;
	for (int i = 0; i < q->n; i++)
		if (s->tasks[q->h[i]].queued_at < q->qmin)
			q->qmin = s->tasks[q->h[i]].queued_at;
	s->c.nr_starved += moved;
	return moved;
}

/* scan_starved() of main.bpf.c: once per heartbeat period, this CPU's DSQ, the shared one
 * and up to STARVE_SCAN_OTHERS other CPUs' DSQs in turn. */
static bool scan_starved(struct sim *s, int cpu)
{
	struct cpu *c = &s->cpus[cpu];
	uint32_t moved, n;

	if (c->scan_epoch == s->starve_epoch)
		return false;
	c->scan_epoch = s->starve_epoch;
	moved = run_starved(s, cpu, &c->dsq) + run_starved(s, cpu, &s->shared);
	n = bounds_scan_nr_others((uint32_t)s->nr_cpus);
	for (uint32_t j = 0; j < n; j++) {
		uint32_t other = bounds_scan_other((uint32_t)cpu, c->scan_cursor, j,
						   (uint32_t)s->nr_cpus);
		if ((int)other != cpu)
			moved += run_starved(s, cpu, &s->cpus[other].dsq);
	}
	c->scan_cursor += n;
	return moved > 0;
}

/* ops.dispatch (the CPU's local DSQ is empty): rescue, starved tasks, keep_prev for a
 * runnable prev at slice expiry, else the earlier head of this CPU's DSQ and the shared
 * one, moved to the local DSQ. true: prev keeps the CPU. */
static bool dispatch(struct sim *s, int cpu, struct task *prev)
{
	struct dsq *mine = &s->cpus[cpu].dsq;
	uint64_t vt_cpu, vt_sh, qat;
	int head, id;

	if (s->rescue_needed)
		rescue_pending(s);
	if (scan_starved(s, cpu))
		return false;
	if (s->host_queued) {   /* then the host: it is what makes everything else move */
		s->host_queued = false;
		local_push(s, cpu, HOST_TASK, false);
		return false;
	}
	vt_cpu = dq_head_vtime(s, mine);
	vt_sh = dq_head_vtime(s, &s->shared);
	head = vt_cpu < vt_sh ? mine->h[0] : (s->shared.n ? s->shared.h[0] : NO_TASK);
	qat = head == NO_TASK ? 0 : s->tasks[head].queued_at;
	if (prev && keep_prev(s, prev, cpu, vt_cpu < vt_sh ? vt_cpu : vt_sh, qat))
		return true;
	id = consume(s, cpu, vt_cpu, vt_sh);
	if (id != NO_TASK)
		local_push(s, cpu, id, false);
	return false;
}

/* Give an empty CPU its next task, or let it go idle. Tasks whose program blocks or exits
 * as soon as they run leave again at once (in zero time), so this loops. */
static void fill_cpu(struct sim *s, int cpu)
{
	for (;;) {
		if (!s->cpus[cpu].nlocal)
			dispatch(s, cpu, NULL);
		int id = local_pop(s, cpu);
		if (id == NO_TASK) {
			go_idle(s, cpu);
			return;
		}
		if (id == HOST_TASK) {
			if (host_start(s, cpu))
				return;
			continue;
		}
		start_running(s, cpu, id);
		struct task *t = &s->tasks[id];
		if (t->remaining) {
			arm_burst(s, cpu);
			return;
		}
		int a = step(s, id, cpu);
		t = &s->tasks[id];
		if (a == A_RUN) {
			arm_burst(s, cpu);
			return;
		}
		stop_running(s, cpu, false);
		if (a == A_EXIT)
			{ t->state = T_EXIT; t->st.exit_ns = s->now ? s->now : 1; }
	}
}

/* Slice expiry (or a preemption kick) of the running task: the kernel's balance with
 * prev still runnable. Its local DSQ first; if that is empty, ops.dispatch (keep_prev);
 * if that finds nothing either, the kernel keeps prev with the default slice. Otherwise
 * prev is re-enqueued (put_prev_task_scx(): flags 0; resumed in-kernel if it was
 * preempted with slice left) and the CPU takes its local DSQ's head. */
static void expire(struct sim *s, int cpu, bool preempted)
{
	struct cpu *c = &s->cpus[cpu];
	int pid = c->cur;
	struct task *prev;

	if (pid == HOST_TASK) {
		/* keep_prev never keeps the host; the kernel keeps it if nothing else waits */
		if (!c->nlocal) {
			dispatch(s, cpu, NULL);
			if (!c->nlocal) {
				arm(s, cpu, SCX_SLICE_DFL);
				return;
			}
		}
		if (preempted)
			s->c.nr_preempt++;
		host_preempted(s);
		fill_cpu(s, cpu);
		return;
	}
	prev = &s->tasks[pid];
	if (!c->nlocal) {
		if (dispatch(s, cpu, prev)) {
			prev->slice = prev->slice_dec;
			arm(s, cpu, prev->slice);
			return;
		}
		if (!c->nlocal) {
			arm(s, cpu, SCX_SLICE_DFL);
			return;
		}
	}
	if (preempted)
		s->c.nr_preempt++;
	stop_running(s, cpu, true);
	enqueue(s, pid, 0);
	fill_cpu(s, cpu);
}

/* ---- decisions --------------------------------------------------------------------- */
static int find_pid(struct sim *s, int32_t pid)
{
	int i = pid - 1000;   /* pids are 1000 + index */
	return i >= 0 && i < s->ntasks ? i : -1;
}

static void apply_decision(struct sim *s, const struct dispatched_task_ctx *d)
{
	int id = find_pid(s, d->pid);
	struct task *t;
	uint64_t slice = d->slice_ns ? d->slice_ns : s->w->slice_ns_default;
	uint64_t vtime = d->vtime;
	int cpu = d->cpu, dsq;

	if (id < 0 || !s->tasks[id].pending || s->tasks[id].pend_enq != d->enq_cnt) {
		s->c.nr_cancel_dispatches++;
		return;
	}
	/* whatever the host let through: no slice beyond the watchdog's bound */
	if (slice > s->slice_max_ns) {
		slice = s->slice_max_ns;
		s->c.nr_slice_clamped++;
	}
	t = &s->tasks[id];
	t->pending = false;
	s->npending--;
	t->slice_dec = slice;
	t->decided = true;
	t->placed = false;
	t->queued_at = stamp(s);
	t->prio = false;
	/* the policy grants (or denies) the fast path for the task's next wake-ups */
	t->fast = d->flags & RL_DISP_FAST;
	t->fast_queue = t->fast && (d->flags & RL_DISP_FAST_QUEUE);
	t->fast_slice = bounds_fast_slice(d->flags, slice, s->slice_max_ns);
	if (cpu == RL_CPU_ANY) {
		dsq = -1;
		cpu = -1;
	} else if (cpu >= 0 && cpu < s->nr_cpus && allowed(t, cpu)) {
		dsq = cpu;
	} else {
		s->c.nr_bounce_dispatches++;
		cpu = t->cpu;
		if (allowed(t, cpu)) {
			dsq = cpu;
		} else {
			dsq = -1;
			cpu = -1;
		}
	}
	if (vtime == 0) {
		/* priority: the CPU chosen, else the task's own (BPF takes the applying CPU's
		 * if allowed: the host's, which is not modelled). A CPU whose priority budget is
		 * spent takes it as an ordinary decision, behind what is queued now. */
		if (cpu < 0)
			cpu = s->host_on_cpu && allowed(t, s->host_cpu) ? s->host_cpu : t->cpu;
		if (prio_throttled(s, cpu)) {
			s->c.nr_prio_throttled++;
			vtime = s->vtime_floor ? s->vtime_floor : 1;
			if (dsq >= 0)
				dsq = allowed(t, cpu) ? cpu : -1;
		}
	}
	if (vtime == 0) {
		t->prio = true;
		if (allowed(t, cpu)) {
			/* the host's own CPU runs it as soon as the host sleeps: no kick */
			t->slice = slice;
			local_push(s, cpu, id, true);
			resched(s, cpu, !(s->host_on_cpu && cpu == s->host_cpu));
		} else {
			dsq_insert(s, id, -1, slice, 0);
			kick_for(s, t, -1, true);
		}
	} else {
		dsq_insert(s, id, dsq, slice, vtime);
		if ((int64_t)(vtime - s->vtime_floor) > 0)
			s->vtime_floor = vtime;
		kick_for(s, t, dsq < 0 ? -1 : cpu, false);
	}
	s->c.nr_user_dispatches++;
}

/* ---- the host as a loop_src --------------------------------------------------------- */
static int src_recv(void *ctx, struct queued_task_ctx *buf, int max)
{
	struct sim *s = ctx;
	int n = s->ring_n < max ? s->ring_n : max;

	for (int i = 0; i < n; i++) {
		buf[i] = s->ring[s->ring_head];
		s->ring_head = (s->ring_head + 1) % (int)RING_CAP;
	}
	s->ring_n -= n;
	s->ring_cons += (uint64_t)n;
	return n;
}

static void src_holding(void *ctx, int n)
{
	struct sim *s = ctx;
	if (n)
		s->cost_t0 = g_now_ns();
}

/* The batch's decisions (n of them) land when the host's latency has passed. */
static void host_done_after(struct sim *s, int n)
{
	uint64_t cost = g_now_ns() - s->cost_t0;
	uint64_t lat;

	s->c.cost_ns += cost;
	s->host_sent = true;
	if (s->w->host_measured)
		lat = (uint64_t)((double)cost * s->w->host_scale);
	else
		lat = s->w->host_batch_ns + (uint64_t)n * s->w->host_task_ns;
	s->c.host_busy_ns += lat;
	s->host_done_at = s->now + lat;
	ev_push(s, s->host_done_at, EV_HOST_DONE, 0, s->host_done_gen);
}

static int src_send(void *ctx, const struct dispatched_task_ctx *d, int n)
{
	struct sim *s = ctx;

	memcpy(s->inflight, d, (size_t)n * sizeof(*d));
	s->ninflight = n;
	s->c.nr_decisions += (uint64_t)n;
	host_done_after(s, n);
	return n;
}

static int src_wait(void *ctx, int timeout_ms)
{
	struct sim *s = ctx;
	return s->ring_n > 0;
}

static void host_turn(struct sim *s)
{
	int n;

	s->host_hb = s->now;   /* loop_step() stamps host_hb_ns at every turn */
	s->host_sent = false;
	n = loop_step(&s->lp, 0);
	if (n > 0 && !s->host_sent)
		host_done_after(s, 0);   /* only RL_ENQ_PLACED records: nothing to send */
	if (n > 0) {
		s->host_busy = true;
		s->c.nr_batches++;
		s->c.nr_tasks += (uint64_t)n;
		if ((uint64_t)n > s->c.max_batch)
			s->c.max_batch = (uint64_t)n;
	} else {
		s->host_busy = false;
	}
}

/* The host's thread leaves its CPU for epoll_wait. */
static void host_off(struct sim *s)
{
	int cpu = s->host_cpu;

	s->cpus[cpu].cur = NO_TASK;
	s->host_on_cpu = false;
	s->c.host_cpu_ns += s->now - s->host_run_start;
	if (s->trace && s->now > s->host_run_start)
		sim_trace_slice(s->trace, cpu, s->host_run_start, s->now, "gthulhu-lua", 0);
}

/* ... into epoll_wait, which returns by itself after RUN_WAIT_MS (main.c): the host then
 * takes a turn (its heartbeat, RL_ENQ_PLACED records) even when no record woke it. */
static void host_sleep_timer(struct sim *s)
{
	/* epoll_wait's slack: max(timer_slack, 0.1% of the timeout), as select_estimate_accuracy
	 * gives a nice-0 task (the workload's timer_slack is the host's; 0: exact) */
	uint64_t slack = s->w->timer_slack_ns;
	if (slack && slack < HOST_WAIT_NS / 1000)
		slack = HOST_WAIT_NS / 1000;
	ev_push(s, timer_fire(s, s->now + HOST_WAIT_NS, slack), EV_HOST_TIMEOUT, 0,
		++s->host_sleep_gen);
}

/* The host's thread wakes (records wait): select_cpu (the kernel's default choice for
 * it: prev if idle, else any idle CPU), then enqueue into SCHED_DSQ and kick_for(-1,
 * preempting when tasks wait for it). */
static void host_runnable(struct sim *s)
{
	int cpu = -1;

	s->lp.told_only = false;   /* its epoll_wait returned: the next turn reads */
	if (test_and_clear_idle(s, s->host_last_cpu))
		cpu = s->host_last_cpu;
	else
		cpu = pick_idle_any(s, &s->host_t);
	s->host_t.cpu = cpu >= 0 ? cpu : s->host_last_cpu;
	if (cpu >= 0)
		resched(s, cpu, false);   /* woken on that CPU's runqueue */
	s->host_queued = true;
	kick_for(s, &s->host_t, -1, s->npending > 0 || s->host_stalled);
}

/* A CPU takes the host's thread (from SCHED_DSQ): it decides a batch, and keeps the CPU
 * for the batch's latency. false: nothing to decide, it sleeps again at once. */
static bool host_start(struct sim *s, int cpu)
{
	struct cpu *c = &s->cpus[cpu];

	bit_clr(s->idle_mask, cpu);
	claim_clr(s, cpu);
	c->cur = HOST_TASK;
	c->bgen++;
	s->host_on_cpu = true;
	s->host_cpu = s->host_last_cpu = cpu;
	s->host_run_start = s->host_last_run = s->now;
	if (s->host_busy) {
		/* preempted in the middle of a batch: the rest of its latency from now */
		s->host_done_at = s->now + s->host_left;
		ev_push(s, s->host_done_at, EV_HOST_DONE, 0, s->host_done_gen);
	} else {
		host_turn(s);
	}
	if (!s->host_busy) {
		host_off(s);
		host_sleep_timer(s);
		return false;
	}
	arm(s, cpu, s->w->slice_ns_default);   /* SCHED_DSQ's slice */
	return true;
}

/* More records wait after a batch: the host yields (xport.c, published), so its CPU's
 * ops.dispatch runs now. If that finds a task, the host goes back to SCHED_DSQ (and kicks
 * a CPU, preempting when tasks are pending) and the task takes its CPU; else the kernel
 * keeps the host running. true: the host left its CPU. */
static bool host_yield(struct sim *s)
{
	int cpu = s->host_cpu;
	struct cpu *c = &s->cpus[cpu];

	if (!c->nlocal)
		dispatch(s, cpu, NULL);
	if (!c->nlocal)
		return false;
	host_off(s);
	c->sgen++;
	s->host_queued = true;
	s->host_t.cpu = cpu;
	kick_for(s, &s->host_t, -1, s->npending > 0 || s->host_stalled);
	fill_cpu(s, cpu);
	return true;
}

/* The host's thread loses its CPU with a batch in flight (slice expiry with tasks
 * waiting, a priority task): the batch pauses, the thread goes back to SCHED_DSQ
 * (ops.enqueue for the host: kick_for(-1), preempting only for a wake-up, which this is
 * not: a preempted host thread is already first in line). */
static void host_preempted(struct sim *s)
{
	int cpu = s->host_cpu;

	if (s->host_busy) {
		s->host_left = s->host_done_at > s->now ? s->host_done_at - s->now : 0;
		s->host_done_gen++;
	}
	host_off(s);
	s->cpus[cpu].sgen++;
	s->host_queued = true;
	s->host_t.cpu = cpu;
	kick_for(s, &s->host_t, -1, false);
}

/* ---- heartbeat: rescue, starvation scan, the watchdog --------------------------- */
static void heartbeat(struct sim *s)
{
	bool due = false;

	for (int i = 0; i < s->ntasks; i++) {
		struct task *t = &s->tasks[i];
		/* custody_census(): judged by each entry's own age */
		if (t->state == T_HOST && t->pending &&
		    bounds_overdue(t->pend_at, s->now, s->w->stall_timeout_ns))
			due = true;
		if (t->waiting && t->state != T_RUN &&
		    s->now - t->runnable_since > s->w->watchdog_timeout_ns && !s->stalled) {
			s->stalled = true;
			snprintf(s->stall_msg, sizeof(s->stall_msg), "simulated stall at %.3f s: "
				 "task %s (pid %d) runnable for %.0f ms without running (watchdog "
				 "%.0f ms)", s->now / 1e9, t->comm, t->pid,
				 (s->now - t->runnable_since) / 1e6, s->w->watchdog_timeout_ns / 1e6);
		}
	}
	/* stalled-host mode: tasks pending and the host silent for stall_timeout; it ends
	 * when the host's heartbeat is fresh again */
	if (!s->host_stalled) {
		if (bounds_stall_enter((__u64)s->npending, s->host_hb, s->pending_since, s->now,
				       s->w->stall_timeout_ns)) {
			s->host_stalled = true;
			s->rescue_needed = true;
			s->c.nr_host_stalls++;
		} else if (due) {
			s->rescue_needed = true;
		}
	} else if (bounds_stall_leave(s->host_hb, s->now, s->w->stall_timeout_ns)) {
		s->host_stalled = false;
	}
	if (s->rescue_needed) {
		/* idle CPUs do the rescue in their dispatch; also preempt one busy CPU (BPF: the
		 * host's last CPU, not modelled: CPU 0) in case none is idle */
		for (int c = 0; c < s->nr_cpus; c++)
			if (s->cpus[c].cur == NO_TASK)
				resched(s, c, false);
		resched(s, s->host_last_cpu, true);
	}
	/* every CPU that dispatches scans for starved tasks once per period; an idle CPU
	 * with tasks in its own DSQ is woken so it dispatches at all */
	s->starve_epoch++;
	for (int c = 0; c < s->nr_cpus; c++)
		if (s->cpus[c].dsq.n && s->cpus[c].cur == NO_TASK)
			resched(s, c, false);
	/* the host is runnable but has not had a CPU for a while: make room for it */
	if (s->host_queued && s->now - s->host_last_run > s->hb_ns)
		resched(s, s->host_last_cpu, true);
}

/* ---- setup ------------------------------------------------------------------------- */
static int new_task(struct sim *s, int group, int inst, int parent, uint64_t start)
{
	const struct sim_group *g = &s->w->groups[group];
	struct task *t;

	if (!grow((void **)&s->tasks, &s->cap_tasks, s->ntasks + 1, sizeof(*s->tasks))) {
		g_err("simulate: out of memory for tasks");
		exit(EXIT_FAILURE);
	}
	int id = s->ntasks++;
	t = &s->tasks[id];
	memset(t, 0, sizeof(*t));
	t->pid = 1000 + id;
	t->tgid = t->pid;
	t->group = group;
	t->inst = inst >= 0 ? inst : id;
	memcpy(t->comm, g->comm, sizeof(t->comm));
	t->kthread = (uint8_t)g->kthread;
	t->weight = g->weight;
	t->aff = g->aff;
	t->nr_allowed = g->nr_allowed;
	t->slack = g->timer_slack_ns;
	t->timer_due = start;        /* its start is not a timer: no slack */
	t->wnext = -1;
	t->dsq_id = -1;
	t->state = T_NEW;
	t->hist = calloc(1, sizeof(*t->hist));
	if (!t->hist) {
		g_err("simulate: out of memory for tasks");
		exit(EXIT_FAILURE);
	}
	/* first CPU: the parent's if allowed, else the first allowed one */
	int cpu = parent >= 0 ? s->tasks[parent].cpu : (int)(rnd(s) % (uint64_t)s->nr_cpus);
	if (!allowed(t, cpu))
		for (cpu = 0; cpu < s->nr_cpus && !allowed(t, cpu); cpu++)
			;
	t->cpu = t->last_ran = cpu;
	if (parent >= 0)
		t->tgid = s->tasks[parent].tgid;
	if (start <= s->now && s->ntasks > 0 && parent >= 0)
		wake(s, id, s->now);
	else
		ev_push(s, start, EV_WAKE, id, 0);
	return id;
}

static void build_topo(struct sim *s)
{
	const struct sim_wl *w = s->w;
	struct topo *t = s->topo;

	t->nr_cpus = s->nr_cpus;
	for (int c = 0; c < s->nr_cpus; c++) {
		struct cpu_topo *ct = &t->cpu[c];
		int core = c / w->smt * w->smt, llc = c / w->llc * w->llc;
		t->online[c] = 1;
		ct->nr_l2 = 0;
		for (int j = core; j < core + w->smt && j < s->nr_cpus; j++)
			ct->l2[ct->nr_l2++] = (uint16_t)j;
		ct->nr_l3 = 0;
		for (int j = llc; j < llc + w->llc && j < s->nr_cpus && ct->nr_l3 < MAX_SIBLINGS; j++)
			ct->l3[ct->nr_l3++] = (uint16_t)j;
	}
}

int sim_open(struct sim **out, const struct sim_wl *w, uint64_t seed, char *err, size_t errlen)
{
	struct sim *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		goto oom;
	s->w = w;
	s->rng = seed;
	s->rng_slack = seed ^ 0x74696d6572736c6bull;   /* "timerslk": a stream of its own */
	s->nr_cpus = w->nr_cpus;
	s->tick_ns = 1000000000ull / (uint64_t)w->hz;
	s->slice_max_ns = bounds_slice_max_ns(w->watchdog_ms);
	s->wait_bound_ns = bounds_wait_ns(w->watchdog_ms);
	s->hb_ns = bounds_hb_period_ns(w->stall_timeout_ns);
	s->topo = calloc(1, sizeof(*s->topo));
	s->cpus = calloc((size_t)w->nr_cpus, sizeof(*s->cpus));
	s->chans = calloc((size_t)w->nchans + 1, sizeof(*s->chans));
	s->ring = calloc(RING_CAP, sizeof(*s->ring));
	s->inflight = calloc((size_t)w->batch_max, sizeof(*s->inflight));
	if (!s->topo || !s->cpus || !s->chans || !s->ring || !s->inflight)
		goto oom;
	for (int i = 0; i < w->nchans; i++) {
		s->chans[i].whead = s->chans[i].wtail = s->chans[i].shead = s->chans[i].stail = -1;
		s->chans[i].cap = w->chan_cap ? w->chan_cap[i] : 0;
	}
	build_topo(s);
	for (int c = 0; c < s->nr_cpus; c++)
		bit_set(s->host_aff, c);
	s->host_t.aff = s->host_aff;
	s->host_t.nr_allowed = s->nr_cpus;
	for (int c = 0; c < s->nr_cpus; c++) {
		s->cpus[c].cur = NO_TASK;
		go_idle(s, c);
	}
	for (int g = 0; g < w->ngroups; g++)
		for (int i = 0; i < w->groups[g].count; i++) {
			int id = new_task(s, g, i, -1,
					  rnd_range(s, w->groups[g].start_lo, w->groups[g].start_hi));
			if (i > 0)   /* the tasks of a group are the threads of one process */
				s->tasks[id].tgid = s->tasks[id - i].pid;
		}
	*out = s;
	return G_OK;
oom:
	set_err(err, errlen, "simulate: out of memory");
	sim_close(s);
	return G_ERR_NOMEM;
}

void sim_close(struct sim *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->ntasks; i++)
		free(s->tasks[i].hist);
	if (s->cpus)
		for (int c = 0; c < s->nr_cpus; c++) {
			free(s->cpus[c].local);
			free(s->cpus[c].dsq.h);
		}
	free(s->shared.h);
	free(s->cpus);
	free(s->tasks);
	free(s->chans);
	free(s->heap);
	free(s->ring);
	free(s->wakeq);
	free(s->inflight);
	free(s->topo);
	free(s);
}

void sim_pol_env(struct sim *s, struct pol_env *env)
{
	memset(env, 0, sizeof(*env));
	env->nr_cpus = s->nr_cpus;
	env->slice_ns_default = s->w->slice_ns_default;
	env->slice_ns_min = s->w->slice_ns_min;
	env->slice_ns_max = s->slice_max_ns;   /* the host clamps as in a live run */
	env->batch_max = s->w->batch_max;
	env->topo = s->topo;
	env->idle = s->idle_mask;
	env->clock = &s->now;
}

const volatile uint64_t *sim_clock(struct sim *s) { return &s->now; }

int sim_strategies(struct sim *s, struct strat_entry *out, int max)
{
	int n = 0;

	for (int k = 0; k < s->w->nstrat; k++)
		for (int i = 0; i < s->ntasks && n < max; i++)
			if (s->tasks[i].group == s->w->strat[k].group) {
				out[n].pid = s->tasks[i].pid;
				out[n].priority = s->w->strat[k].priority;
				out[n].execution_time = s->w->strat[k].execution_time;
				n++;
			}
	return n;
}

/* ---- the run ----------------------------------------------------------------------- */
int sim_run(struct sim *s, struct pol *pol, struct sim_trace *tr, loop_rec_fn *rec_batch,
	    void *rec_ctx, char *err, size_t errlen)
{
	struct loop_src src;
	uint64_t hb = s->hb_ns;

	memset(&src, 0, sizeof(src));
	src.ctx = s;
	src.recv = src_recv;
	src.send = src_send;
	src.wait = src_wait;
	src.holding = src_holding;
	src.sleep_after_told = true;   /* as the live transport: told-only records in bulk */
	loop_init(&s->lp, pol, &src, s->w->batch_max, NULL);
	s->lp.rec.batch = rec_batch;
	s->lp.rec.ctx = rec_ctx;
	s->trace = tr;
	ev_push(s, hb, EV_HEARTBEAT, 0, 0);
	ev_push(s, s->w->duration_ns, EV_END, 0, 0);
	host_sleep_timer(s);   /* the host starts in epoll_wait */

	while (s->nev && !s->ended && !s->stalled) {
		struct ev e = ev_pop(s);
		struct cpu *c;
		s->now = e.t;
		s->c.nr_events++;
		switch (e.type) {
		case EV_WAKE: {
			struct task *t = &s->tasks[e.id];
			if (t->state != T_NEW && t->state != T_SLEEP)
				break;
			wake(s, e.id, t->timer_due);   /* lateness from the due time */
			break;
		}
		case EV_BURST: {
			c = &s->cpus[e.id];
			if (c->cur == NO_TASK || e.gen != c->bgen)
				break;
			struct task *t = &s->tasks[c->cur];
			t->st.work_ns += s->now - c->seg_start;
			t->st.bursts++;
			t->remaining = 0;
			c->seg_start = s->now;
			int id = c->cur;
			int a = step(s, id, e.id);
			t = &s->tasks[id];
			if (a == A_RUN) {
				arm_burst(s, e.id);
				break;
			}
			stop_running(s, e.id, false);
			if (a == A_EXIT)
				{ t->state = T_EXIT; t->st.exit_ns = s->now ? s->now : 1; }
			fill_cpu(s, e.id);
			break;
		}
		case EV_EXPIRE:
			c = &s->cpus[e.id];
			if (c->cur == NO_TASK || e.gen != c->sgen)
				break;
			expire(s, e.id, false);
			break;
		case EV_RESCHED: {
			c = &s->cpus[e.id];
			bool pre = c->preempt;
			c->resched = c->preempt = false;
			if (c->cur == NO_TASK)
				fill_cpu(s, e.id);
			else if (pre)
				expire(s, e.id, true);
			break;
		}
		case EV_HOST_WAKE:
			s->host_wake_pending = false;
			if (!s->host_on_cpu && !s->host_queued)
				host_runnable(s);
			break;
		case EV_HOST_TIMEOUT:
			if (e.gen == s->host_sleep_gen && !s->host_on_cpu && !s->host_queued)
				host_runnable(s);
			break;
		case EV_HOST_DONE:
			if (e.gen != s->host_done_gen || !s->host_on_cpu)
				break;   /* paused: its host was preempted */
			for (int i = 0; i < s->ninflight; i++)
				apply_decision(s, &s->inflight[i]);
			s->ninflight = 0;
			s->host_busy = false;
			if (s->ring_n && host_yield(s))
				break;
			if (s->ring_n)
				host_turn(s);
			if (!s->host_busy && s->host_on_cpu) {
				int cpu = s->host_cpu;
				host_off(s);
				host_sleep_timer(s);
				fill_cpu(s, cpu);
			}
			break;
		case EV_HEARTBEAT:
			heartbeat(s);
			ev_push(s, s->now + hb, EV_HEARTBEAT, 0, 0);
			break;
		case EV_END:
			s->ended = true;
			break;
		}
	}
	/* account the tasks still on a CPU */
	for (int cpu = 0; cpu < s->nr_cpus; cpu++) {
		struct cpu *c = &s->cpus[cpu];
		if (c->cur == NO_TASK)
			continue;
		if (c->cur == HOST_TASK) {
			s->c.host_cpu_ns += s->now - s->host_run_start;
			if (s->trace && s->now > s->host_run_start)
				sim_trace_slice(s->trace, cpu, s->host_run_start, s->now, "gthulhu-lua", 0);
			continue;
		}
		struct task *t = &s->tasks[c->cur];
		t->st.cpu_ns += s->now - t->run_start;
		t->st.work_ns += s->now - c->seg_start;
		if (s->trace && s->now > t->run_start)
			sim_trace_slice(s->trace, cpu, t->run_start, s->now, t->comm, t->pid);
	}
	if (s->stalled) {
		set_err(err, errlen, "%s", s->stall_msg);
		return SIM_EXIT_STALL;
	}
	return G_OK;
}

int sim_nr_tasks(const struct sim *s) { return s->ntasks; }
const char *sim_task_comm(const struct sim *s, int i) { return s->tasks[i].comm; }
int sim_task_pid(const struct sim *s, int i) { return s->tasks[i].pid; }
int sim_task_group(const struct sim *s, int i) { return s->tasks[i].group; }
uint64_t sim_task_weight(const struct sim *s, int i) { return s->tasks[i].weight; }
const struct sim_task_stats *sim_task_stats(const struct sim *s, int i) { return &s->tasks[i].st; }
const struct sim_hist *sim_task_hist(const struct sim *s, int i) { return s->tasks[i].hist; }
const struct sim_counters *sim_counters(const struct sim *s) { return &s->c; }
uint64_t sim_elapsed(const struct sim *s) { return s->now; }
