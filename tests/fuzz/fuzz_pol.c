/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fuzz_pol.c - libFuzzer target for the policy bridge's decision validator (host/pol/validate.c).
 *
 * One pol is opened once (batch_max FZ_BATCH, FZ_CPUS CPUs) on tests/fuzz/garbage.lua, a
 * policy that copies whatever this target put in the exported global `fuzz_pol_plan`
 * into `out` and returns what the plan says. So the fuzzer controls every byte of every
 * decision, how many are written (up to batch_max, past n too), and what schedule()
 * returns: any double (negative, fractional, NaN, inf, m > n), nil, a string, a table, a
 * uint64 cdata, nothing, two values, or an error raised after writing.
 *
 * Input:
 *   byte 0   n (0 .. FZ_BATCH + 3: past batch_max too)
 *   byte 1   < 128: return plan.ret; else the action (byte - 128) % 8, see garbage.lua
 *   byte 2   how plan.ret is made: % 4 = 0 small signed int (1 byte), 1 raw double bits
 *            (8 bytes), 2 n + small signed int (1 byte), 3 the number of decisions written
 *   byte 3   decisions written (% (FZ_BATCH + 1))
 *   tasks    per task a flag byte; pid by bits 0-1: 0 unique (1000 + i), 1 small (1..8:
 *            duplicate pids), 2 raw int32 (4 bytes), 3 zero or negative (1 byte); bit 2:
 *            vtime 0, else 1 byte; cpu 1 byte; enq_cnt = a 2-byte value with the task
 *            index in the high bits (so every task's enq_cnt is distinct)
 *   decisions per decision a control byte and 32 raw bytes (the whole struct); then bit 0:
 *            pid = the pid of a task chosen by the raw pid, bit 1: cpu = -2 .. FZ_CPUS + 1
 *            (1 byte), bit 2: cpu = RL_CPU_ANY
 *   missing bytes read as 0.
 * Invariants after pol_schedule(p, n) (abort() on violation):
 *   - it returns min(n, batch_max) (0 for n = 0), the Lua stack is empty;
 *   - pol_out()[0..ret) holds one decision per task: each task (pid and its own enq_cnt)
 *     exactly once, so duplicate task pids are each decided once too;
 *   - every cpu is RL_CPU_ANY or in [0, nr_cpus);
 *   - every decision is either one the policy wrote (pid, cpu, flags, slice_ns, vtime as
 *     written) or the built-in one (RL_CPU_ANY, flags 0, slice 0, the task's vtime or 1).
 * Run: make fuzz, or build/fuzz/fuzz_pol DIR... (from anywhere: paths are built in).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "pol/pol.h"

#ifndef FUZZ_ROOT
#define FUZZ_ROOT "."
#endif
#define FZ_BATCH 64
#define FZ_CPUS  8

#define DIE(...) do { fprintf(stderr, "fuzz_pol: " __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

int g_verbose;

/* Read by garbage.lua through ffi.C (the binary is linked with -rdynamic). */
struct fuzz_pol_plan {
	int32_t action;
	int32_t nwrite;
	double ret;
	struct dispatched_task_ctx dec[FZ_BATCH];
};
struct fuzz_pol_plan fuzz_pol_plan;
const uint32_t fuzz_pol_plan_size = sizeof(struct fuzz_pol_plan);

static struct pol *pol;

static void close_pol(void)
{
	pol_close(pol);
}

struct rd { const uint8_t *p; size_t n; };

static uint8_t u8(struct rd *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static void bytes(struct rd *r, void *dst, size_t len)
{
	uint8_t *d = dst;
	for (size_t i = 0; i < len; i++)
		d[i] = u8(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_pol_plan *pl = &fuzz_pol_plan;
	struct rd r = { data, size };
	char err[4096];

	if (!pol) {
		struct pol_env env = {
			.nr_cpus = FZ_CPUS, .slice_ns_default = 5000000, .slice_ns_min = 100000,
			.batch_max = FZ_BATCH, .lib_dir = FUZZ_ROOT "/policies/lib",
		};
		if (pol_open(&pol, FUZZ_ROOT "/tests/fuzz/garbage.lua", &env, err, sizeof(err)))
			DIE("cannot open the policy: %s", err);
		atexit(close_pol);
	}

	int n = u8(&r) % (FZ_BATCH + 4);
	uint8_t a = u8(&r);
	uint8_t rk = u8(&r) % 4;
	int8_t small = 0;
	uint64_t bits = 0;
	if (rk == 0 || rk == 2)
		small = (int8_t)u8(&r);
	else if (rk == 1)
		bytes(&r, &bits, sizeof(bits));
	memset(pl, 0, sizeof(*pl));
	pl->action = a < 128 ? 0 : (a - 128) % 8;
	pl->nwrite = u8(&r) % (FZ_BATCH + 1);
	switch (rk) {
	case 0: pl->ret = small; break;
	case 1: memcpy(&pl->ret, &bits, sizeof(bits)); break;
	case 2: pl->ret = n + small; break;
	case 3: pl->ret = pl->nwrite; break;
	}

	int nt = n < FZ_BATCH ? n : FZ_BATCH;
	struct queued_task_ctx *t = pol_tasks(pol);
	memset(t, 0, sizeof(*t) * FZ_BATCH);
	for (int i = 0; i < nt; i++) {
		uint8_t f = u8(&r);
		switch (f & 3) {
		case 0: t[i].pid = 1000 + i; break;
		case 1: t[i].pid = 1 + u8(&r) % 8; break;
		case 2: { uint32_t v; bytes(&r, &v, 4); t[i].pid = (int32_t)v; break; }
		case 3: t[i].pid = -(int32_t)u8(&r); break;
		}
		t[i].tgid = t[i].pid;
		t[i].vtime = (f & 4) ? 0 : u8(&r);
		t[i].cpu = u8(&r) % FZ_CPUS;
		t[i].nr_cpus_allowed = FZ_CPUS;
		t[i].weight = 100;
		t[i].enq_cnt = ((uint64_t)(i + 1) << 40) | (uint64_t)u8(&r) << 8 | u8(&r);
		snprintf(t[i].comm, sizeof(t[i].comm), "t%d", i);
	}
	for (int j = 0; j < pl->nwrite; j++) {
		struct dispatched_task_ctx *d = &pl->dec[j];
		uint8_t c = u8(&r);
		bytes(&r, d, sizeof(*d));
		if ((c & 1) && nt > 0)
			d->pid = t[(uint32_t)d->pid % (uint32_t)nt].pid;
		if (c & 2)
			d->cpu = (int)(u8(&r) % (FZ_CPUS + 4)) - 2;
		if (c & 4)
			d->cpu = RL_CPU_ANY;
	}
	/* pol_out() keeps the last batch: scribble on it so stale decisions cannot pass. */
	memset(pol_out(pol), 0xa5, sizeof(struct dispatched_task_ctx) * FZ_BATCH);

	int ret = pol_schedule(pol, n);

	/* A record followed by a later one of the same pid is stale and gets no decision;
	 * every other record gets exactly one. */
	bool stale[FZ_BATCH] = { false };
	int nlive = 0;
	for (int i = 0; i < nt; i++) {
		for (int j = i + 1; j < nt && !stale[i]; j++)
			stale[i] = t[j].pid == t[i].pid;
		nlive += !stale[i];
	}
	if (ret != nlive)
		DIE("pol_schedule(%d) returned %d, want %d (%d records, %d stale)", n, ret, nlive,
		    nt, nt - nlive);
	if (pol_lua_top(pol) != 0)
		DIE("Lua stack not empty after pol_schedule: %d", pol_lua_top(pol));
	const struct dispatched_task_ctx *o = pol_out(pol);
	bool used[FZ_BATCH] = { false };
	for (int k = 0; k < ret; k++) {
		const struct dispatched_task_ctx *d = &o[k];
		if (d->cpu != RL_CPU_ANY && (d->cpu < 0 || d->cpu >= FZ_CPUS))
			DIE("decision %d (pid %d): cpu %d", k, d->pid, d->cpu);
		int i;
		for (i = 0; i < nt; i++)
			if (!used[i] && !stale[i] && t[i].pid == d->pid && t[i].enq_cnt == d->enq_cnt)
				break;
		if (i == nt)
			DIE("decision %d (pid %d, enq_cnt %#llx) is for no task left undecided",
			    k, d->pid, (unsigned long long)d->enq_cnt);
		used[i] = true;
		bool builtin = d->cpu == RL_CPU_ANY && d->flags == 0 && d->slice_ns == 0 &&
			       d->vtime == (t[i].vtime ? t[i].vtime : 1);
		bool written = false;
		for (int j = 0; j < pl->nwrite && !written; j++)
			written = pl->dec[j].pid == d->pid && pl->dec[j].cpu == d->cpu &&
				  pl->dec[j].flags == d->flags && pl->dec[j].slice_ns == d->slice_ns &&
				  pl->dec[j].vtime == d->vtime;
		if (!builtin && !written)
			DIE("decision %d (pid %d) is neither one the policy wrote nor the built-in one",
			    k, d->pid);
	}
	/* ret decisions each used a distinct live record out of nlive == ret: every task
	 * decided once, no stale record decided. */
	return 0;
}
