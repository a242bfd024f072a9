/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test_bounds.c - the watchdog bounds' arithmetic (bpf/bounds.bpf.h), which the BPF side,
 * the host and the simulator share: a table of cases, then the stateful ones (the
 * priority budget's periods, the starvation scan's walk over the other CPUs).
 */
#include <stdint.h>

#include "check.h"
#pragma GCC diagnostic ignored "-Wformat-zero-length"  /* CHECK(cond) without a message */
#include "../bpf/bounds.bpf.h"

int g_verbose;   /* the host objects linked in want it */

#define MS 1000000ULL

static const struct {
	uint32_t watchdog_ms;           /* as configured: 0 = the kernel's default */
	uint32_t in_force_ms;
	uint64_t slice_max, wait;
} wd_cases[] = {
	{ 0,     30000, 1000 * MS, 500 * MS },   /* 30 s: both capped */
	{ 500,   500,   62500000,  50 * MS },    /* the smallest the config allows */
	{ 800,   800,   100 * MS,  80 * MS },
	{ 5000,  5000,  625 * MS,  500 * MS },   /* the BPF object's own timeout_ms */
	{ 8000,  8000,  1000 * MS, 500 * MS },   /* 1/8 exactly at the cap */
	{ 30000, 30000, 1000 * MS, 500 * MS },
};

static const struct {
	uint64_t stall, period;
} hb_cases[] = {
	{ 50 * MS, 12500000 }, { 200 * MS, 50 * MS }, { 400 * MS, 100 * MS },
	{ 1000 * MS, 100 * MS }, { 2 * MS, 1 * MS }, { 0, 1 * MS },
};

int main(void)
{
	for (unsigned i = 0; i < sizeof(wd_cases) / sizeof(wd_cases[0]); i++) {
		uint32_t ms = wd_cases[i].watchdog_ms;
		CHECK(bounds_watchdog_ms(ms) == wd_cases[i].in_force_ms, "watchdog %u", ms);
		CHECK(bounds_slice_max_ns(ms) == wd_cases[i].slice_max, "watchdog %u: %llu", ms,
		      (unsigned long long)bounds_slice_max_ns(ms));
		CHECK(bounds_wait_ns(ms) == wd_cases[i].wait, "watchdog %u: %llu", ms,
		      (unsigned long long)bounds_wait_ns(ms));
	}
	for (unsigned i = 0; i < sizeof(hb_cases) / sizeof(hb_cases[0]); i++)
		CHECK(bounds_hb_period_ns(hb_cases[i].stall) == hb_cases[i].period, "stall %llu",
		      (unsigned long long)hb_cases[i].stall);

	/* waited past: strictly more than the bound; 0 = unknown, never */
	CHECK(!bounds_waited_past(0, 10000 * MS, 500 * MS));
	CHECK(!bounds_waited_past(100 * MS, 600 * MS, 500 * MS));
	CHECK(bounds_waited_past(100 * MS, 600 * MS + 1, 500 * MS));

	/* Stamps written by another CPU after the reader took `now` (queued_at, sent_at, the
	 * host's heartbeat > now): age 0, never ~2^64. Unsigned, a task was starved the moment
	 * it was queued, a fresh custody entry rescued (its decision cancelled), the host
	 * "silent" for 584 years: stalled mode. */
	CHECK(bounds_age_ns(10 * MS, 10 * MS + 3) == 3);
	CHECK(bounds_age_ns(10 * MS + 3, 10 * MS) == 0, "%llu",
	      (unsigned long long)bounds_age_ns(10 * MS + 3, 10 * MS));
	CHECK(!bounds_waited_past(10 * MS + 1, 10 * MS, 500 * MS), "queued after now: starved");
	CHECK(!bounds_overdue(10 * MS + 1, 10 * MS, 1000 * MS), "sent after now: overdue");
	CHECK(bounds_overdue(10 * MS, 1010 * MS + 1, 1000 * MS));
	CHECK(!bounds_overdue(10 * MS, 1010 * MS, 1000 * MS), "exactly the timeout: not yet");
	CHECK(!bounds_rescue_takes(10 * MS + 1, 10 * MS, 1000 * MS, false),
	      "sent after now: rescued (a fresh decision cancelled)");
	CHECK(bounds_rescue_takes(10 * MS + 1, 10 * MS, 1000 * MS, true), "stalled: any");
	CHECK(bounds_rescue_takes(10 * MS, 1010 * MS, 1000 * MS, false), "the timeout: taken");
	CHECK(!bounds_rescue_takes(10 * MS, 1010 * MS - 1, 1000 * MS, false));
	/* stall: pending, host silent and custody non-empty both past the timeout */
	CHECK(bounds_stall_enter(1, 0, 0, 1000 * MS + 1, 1000 * MS));
	CHECK(!bounds_stall_enter(0, 0, 0, 5000 * MS, 1000 * MS), "nothing pending");
	CHECK(!bounds_stall_enter(1, 4500 * MS, 0, 5000 * MS, 1000 * MS), "host turned 0.5 s ago");
	CHECK(!bounds_stall_enter(1, 0, 4500 * MS, 5000 * MS, 1000 * MS), "pending for 0.5 s");
	CHECK(!bounds_stall_enter(1, 5000 * MS + 1, 0, 5000 * MS, 1000 * MS),
	      "host stamped after now: stalled");
	CHECK(!bounds_stall_enter(1, 0, 5000 * MS + 1, 5000 * MS, 1000 * MS),
	      "custody began after now: stalled");
	CHECK(bounds_stall_leave(5000 * MS + 1, 5000 * MS, 1000 * MS),
	      "host stamped after now: not fresh");
	CHECK(bounds_stall_leave(4600 * MS, 5000 * MS, 1000 * MS));
	CHECK(!bounds_stall_leave(4500 * MS, 5000 * MS, 1000 * MS));

	/* keep_prev's vtime: ran scaled by 100/weight; weight 0 counts as 100 */
	CHECK(bounds_prev_vtime(1000, 300, 100) == 1300);
	CHECK(bounds_prev_vtime(1000, 300, 300) == 1100);
	CHECK(bounds_prev_vtime(1000, 300, 0) == 1300);

	/* a record's later stint: start_ts moves on by the wait, stop - start = CPU time run
	 * (3 ms, a 10 ms wait, 2 ms more: 5 ms) */
	{
		__u64 start = 100 * MS, stop = start + 3 * MS, now = stop + 10 * MS;
		start = bounds_resume_start(start, stop, now);
		stop = now + 2 * MS;
		CHECK(stop - start == 5 * MS, "charged %llu ns", (unsigned long long)(stop - start));
		CHECK(bounds_resume_start(50, 40, 60) == 50);  /* stop before start: untouched */
		CHECK(bounds_resume_start(50, 70, 70) == 50);  /* no wait */
	}

	/* slice left: only a runnable task that did not use it up */
	CHECK(bounds_slice_left(true, 20 * MS, 5 * MS) == 15 * MS);
	CHECK(bounds_slice_left(true, 20 * MS, 25 * MS) == 0);
	CHECK(bounds_slice_left(false, 20 * MS, 5 * MS) == 0);

	/* the priority budget: 80 ms per 100 ms, a period starting at the first charge after
	 * the last one ended */
	{
		__u64 start = 0, rt = 0, t0 = 1000 * MS;
		CHECK(!bounds_prio_spent(start, rt, t0));
		bounds_prio_charge(&start, &rt, 40 * MS, t0);
		CHECK(start == t0 && rt == 40 * MS);
		CHECK(!bounds_prio_spent(start, rt, t0 + 10 * MS));
		bounds_prio_charge(&start, &rt, 40 * MS, t0 + 50 * MS);
		CHECK(start == t0 && rt == 80 * MS);
		CHECK(bounds_prio_spent(start, rt, t0 + 99 * MS));
		CHECK(!bounds_prio_spent(start, rt, t0 + 100 * MS), "the period ended");
		bounds_prio_charge(&start, &rt, 5 * MS, t0 + 130 * MS);
		CHECK(start == t0 + 130 * MS && rt == 5 * MS, "a new period");
		/* another CPU's period began after this reader's now: still in it, spent */
		CHECK(bounds_prio_spent(t0 + 1, 80 * MS, t0), "period started after now: not spent");
	}

	/* the starvation scan's walk: never the scanning CPU, every other one in turn */
	CHECK(bounds_scan_nr_others(1) == 0);
	CHECK(bounds_scan_nr_others(4) == 3);
	CHECK(bounds_scan_nr_others(256) == STARVE_SCAN_OTHERS);
	for (uint32_t nr = 2; nr <= 40; nr += 19) {
		for (uint32_t cpu = 0; cpu < nr; cpu++) {
			unsigned char seen[64] = { 0 };
			uint32_t cursor = 0, n = bounds_scan_nr_others(nr), rounds = 0;
			int bad = 0;
			/* enough scans to go round once */
			while (rounds * n < nr - 1) {
				for (uint32_t j = 0; j < n; j++) {
					uint32_t o = bounds_scan_other(cpu, cursor, j, nr);
					if (o >= nr || o == cpu)
						bad++;
					else
						seen[o] = 1;
				}
				cursor += n;
				rounds++;
			}
			int missing = 0;
			for (uint32_t o = 0; o < nr; o++)
				missing += o != cpu && !seen[o];
			CHECK(!bad && !missing, "nr %u cpu %u: %d out of range or itself, %d never "
			      "scanned", nr, cpu, bad, missing);
		}
	}
	/* The fast path's slice: the decision's, or the smaller cap in the flags' high bits
	 * (us), never above slice_max. */
	CHECK(bounds_fast_slice(1, 4 * MS, 625 * MS) == 4 * MS, "no cap: the decision's slice");
	CHECK(bounds_fast_slice(1 | (500ULL << 32), 4 * MS, 625 * MS) == 500000, "cap 500 us");
	CHECK(bounds_fast_slice(1 | (9000ULL << 32), 4 * MS, 625 * MS) == 4 * MS, "a cap above the slice");
	CHECK(bounds_fast_slice(1, 900 * MS, 625 * MS) == 625 * MS, "slice_max");

	/* A fast-path placement runs at vtime_now - lag at least: with its stale vtime (here
	 * 0, never decided, or one from long ago) keep_prev would keep it first, on its CPU,
	 * against a waiter decided at the current vtime, until the wait bound. */
	{
		__u64 vnow = 5000 * MS, lag = 20 * MS, waiter = vnow, ran = 4 * MS;

		CHECK(bounds_placed_vtime(0, vnow, lag) == vnow - lag);
		CHECK(bounds_placed_vtime(100 * MS, vnow, lag) == vnow - lag);
		CHECK(bounds_placed_vtime(vnow - 7, vnow, lag) == vnow - 7, "within the lag: kept");
		CHECK(bounds_placed_vtime(vnow + 7, vnow, lag) == vnow + 7, "a later vtime stays");
		CHECK(bounds_placed_vtime(3, 10, lag) == 3, "vtime_now below the lag");
		CHECK(bounds_placed_vtime(5, (__u64)-3, 1) == 5, "wrap-safe: -4 is before 5");
		/* kept at most about the lag: after running lag of virtual time it is behind */
		CHECK(bounds_prev_vtime(bounds_placed_vtime(0, vnow, lag), ran, 100) <= waiter,
		      "a placed task still within its lag stays first");
		CHECK(bounds_prev_vtime(bounds_placed_vtime(0, vnow, lag), lag + 1, 100) > waiter,
		      "a placed task that ran past its lag is behind a waiter at vtime_now");
	}
	return CHECK_DONE();
}
