/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pol/validate.c - the decisions a policy returned, checked in C (see pol.h): a pid of
 * this batch, not decided twice, a valid CPU. Everything the policy did not decide validly
 * gets the built-in decision (shared DSQ, the task's own vtime, default slice). A slice
 * longer than slice_ns_max (the watchdog's safety bound) is clamped and counted, not
 * rejected: the BPF side clamps again, but the host's count is the one a policy author
 * sees. Short slices are harmless (they end at the next tick) and pass unchanged. Tasks
 * flagged RL_ENQ_PLACED (BPF already runs them) get no decision at all, nor does a record
 * superseded by a later record of the same pid in the batch (stale: BPF would cancel it);
 * a policy that decides both records of such a pid is not wrong, the first decision goes
 * out with the later record's enq_cnt. vs->task_of[k] names the task of decision k (the
 * record host/rec pairs it with).
 *
 * Cost: one pass to hash the batch's pids (open addressing, generation-stamped so nothing
 * is cleared per batch), one pass over the decisions, one pass for the leftovers.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "pol_int.h"

_Static_assert(MAX_BATCH <= 65536, "pol_vs.task_of holds a task index in 16 bits");

static inline uint32_t pid_hash(int32_t pid)
{
	return (uint32_t)pid * 0x9e3779b1u;
}

void pol_batch_begin(struct pol *p, struct pol_vs *vs, const struct queued_task_ctx *t, int n)
{
	struct pol_key *key = vs->keys;
	uint32_t gen, mask = vs->slot_mask;

	if (++vs->gen == 0) {   /* wrapped: stamps from 2^32 batches ago could match again */
		memset(vs->slots, 0, (size_t)(mask + 1) * sizeof(*vs->slots));
		memset(vs->decided, 0, (size_t)p->env.batch_max * sizeof(*vs->decided));
		vs->gen = 1;
	}
	gen = vs->gen;

	for (int i = 0; i < n; i++) {   /* pid -> index; a later duplicate pid takes over */
		int32_t pid = t[i].pid;
		key[i].pid = pid;
		key[i].enq_cnt = t[i].enq_cnt;
		key[i].vtime = t[i].vtime;
		key[i].placed = (t[i].flags & RL_ENQ_PLACED) != 0;
		key[i].stale = false;
		uint32_t h = pid_hash(pid) & mask;
		while (vs->slots[h].gen == gen && vs->slots[h].pid != pid)
			h = (h + 1) & mask;
		if (vs->slots[h].gen == gen) {
			/* Told it ran, then queued again; or queued, dequeued (custody dropped) and
			 * queued again before we read the first record, which is stale now: BPF
			 * would cancel a decision for it, so it gets none. */
			vs->slots[h].twin = gen;
			key[vs->slots[h].idx].stale = !key[vs->slots[h].idx].placed;
		}
		vs->slots[h].gen = gen;
		vs->slots[h].pid = pid;
		vs->slots[h].idx = i;
	}
}

int pol_validate(struct pol *p, struct pol_vs *vs, struct dispatched_task_ctx *o, int n,
		 int m, struct pol_stats *st)
{
	const struct pol_key *key = vs->keys;
	const int nr_cpus = p->env.nr_cpus;
	const uint64_t slice_max = p->env.slice_ns_max;
	const uint32_t gen = vs->gen, mask = vs->slot_mask;
	int k = 0;

	for (int j = 0; j < m; j++) {
		int32_t pid = o[j].pid;
		int32_t cpu = o[j].cpu;
		const char *why;
		if (pid <= 0) {
			why = "pid is not a task's (zero or negative)";
			goto bad;
		}
		uint32_t h = pid_hash(pid) & mask;
		while (vs->slots[h].gen == gen && vs->slots[h].pid != pid)
			h = (h + 1) & mask;
		if (vs->slots[h].gen != gen) {
			why = "pid is not a task of this batch";
			goto bad;
		}
		int idx = vs->slots[h].idx;
		if (vs->decided[idx] == gen) {
			/* A pid the batch holds twice (placed or stale, then queued again) is
			 * decided twice by a policy that decides every record: not an error. */
			if (vs->slots[h].twin == gen)
				continue;
			why = "task decided twice";
			goto bad;
		}
		if (cpu != RL_CPU_ANY && (cpu < 0 || cpu >= nr_cpus)) {
			why = "cpu is neither a CPU id below nr_cpus nor CPU_ANY";
			goto bad;
		}
		vs->decided[idx] = gen;
		if (key[idx].placed)   /* already running: the policy was only told */
			continue;
		o[j].enq_cnt = key[idx].enq_cnt;
		if (slice_max && o[j].slice_ns > slice_max) {
			o[j].slice_ns = slice_max;
			st->slices_clamped++;
		}
		if (k != j)
			o[k] = o[j];
		vs->task_of[k++] = (uint16_t)idx;
		continue;
bad:
		st->bad_decisions++;
		if (vs->last_bad_gen != gen) {   /* the first rejection of a batch, for messages */
			vs->last_bad_gen = gen;
			snprintf(vs->last_bad, sizeof(vs->last_bad), "out[%d] pid=%d cpu=%d: %s", j,
				 (int)pid, (int)cpu, why);
		}
	}

	for (int i = 0; i < n; i++) {
		if (vs->decided[i] == gen || key[i].placed || key[i].stale)
			continue;
		vs->task_of[k] = (uint16_t)i;
		struct dispatched_task_ctx *d = &o[k++];
		d->pid = key[i].pid;
		d->cpu = RL_CPU_ANY;
		d->flags = 0;
		d->slice_ns = 0;
		d->vtime = key[i].vtime ? key[i].vtime : 1;
		d->enq_cnt = key[i].enq_cnt;
		st->fallbacks++;
	}
	assert(k <= n);
	return k;
}
