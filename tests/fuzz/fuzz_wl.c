/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fuzz_wl.c - libFuzzer target for the simulator's workload loader (host/sim/sim_wl.c,
 * YAML; and sim_rtapp.c when byte 0 is '{', rt-app JSON).
 *
 * The loader picks the parser by the file name, so a YAML input is loaded from a memfd
 * (/proc/self/fd/N) and an input starting with '{' from a per-process temp file ending
 * in .json.
 * Invariants (abort() on violation):
 *   - no crash, no out-of-bounds access, no leak, on any input;
 *   - a refused workload has a message that names the file;
 *   - an accepted one is consistent: 1 <= cpus <= MAX_CPUS, every group's program in the
 *     op array, its timer slack in range (the workload's unless it has its own), every
 *     loop's END pointing back to it, channel ids in range, every fork to a group,
 *     affinity non-empty and within cpus; and the machine can be built from it
 *     (sim_open/sim_close; the run itself needs a policy and is tested in tests/sim).
 * Run: make fuzz, or build/fuzz/fuzz_wl DIR...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "sim/sim.h"

#define DIE(...) do { fprintf(stderr, "fuzz_wl: " __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

int g_verbose;

static void check(const struct sim_wl *w)
{
	if (w->nr_cpus < 1 || w->nr_cpus > MAX_CPUS || w->ngroups < 1)
		DIE("cpus %d groups %d", w->nr_cpus, w->ngroups);
	for (int g = 0; g < w->ngroups; g++) {
		const struct sim_group *G = &w->groups[g];
		if (G->op0 < 0 || G->nops < 1 || G->op0 + G->nops > w->nops)
			DIE("group %d program [%d, +%d) of %d ops", g, G->op0, G->nops, w->nops);
		if (G->nr_allowed < 1 || G->nr_allowed > w->nr_cpus)
			DIE("group %d allows %d CPUs", g, G->nr_allowed);
		if (G->timer_slack_ns > SIM_SLACK_MAX_NS ||
		    (!G->slack_set && G->timer_slack_ns != w->timer_slack_ns))
			DIE("group %d timer slack %llu (workload's %llu)", g,
			    (unsigned long long)G->timer_slack_ns,
			    (unsigned long long)w->timer_slack_ns);
		for (int c = w->nr_cpus; c < MAX_CPUS; c++)
			if (G->aff[c / 64] >> (c % 64) & 1)
				DIE("group %d allows CPU %d >= cpus", g, c);
		for (int i = G->op0; i < G->op0 + G->nops; i++) {
			const struct sim_op *op = &w->ops[i];
			if (op->kind == OP_LOOP && (op->arg <= i || op->arg >= G->op0 + G->nops ||
						    w->ops[op->arg].kind != OP_END || w->ops[op->arg].arg != i))
				DIE("loop at %d ends at %d", i, op->arg);
			if ((op->kind == OP_WAIT || op->kind == OP_SIGNAL) &&
			    (op->chan < 0 || op->chan_n < 1 || op->chan + op->chan_n > w->nchans))
				DIE("channel %d+%d of %d", op->chan, op->chan_n, w->nchans);
			if (op->kind == OP_FORK && (op->arg < 0 || op->arg >= w->ngroups))
				DIE("fork to group %d", op->arg);
			if (op->kind == OP_RUN && op->hi < op->lo)
				DIE("run range");
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], err[2048];
	struct sim_wl w;
	bool json = size > 0 && data[0] == '{';
	int fd = memfd_create("wl", 0);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	if (json) {
		snprintf(path, sizeof(path), "/tmp/fuzz_wl_%d.json", (int)getpid());
		FILE *f = fopen(path, "wb");
		if (!f) {
			close(fd);
			return 0;
		}
		fwrite(data, 1, size, f);
		fclose(f);
	} else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	err[0] = '\0';
	int rc = sim_wl_load(&w, path, err, sizeof(err));
	if (rc) {
		if (!strstr(err, path))
			DIE("message does not name the file: %s", err);
	} else {
		check(&w);
		/* keep the machine small enough to build quickly */
		uint64_t tasks = 0;
		for (int g = 0; g < w.ngroups; g++)
			tasks += (uint64_t)w.groups[g].count;
		if (tasks <= 2000) {
			struct sim *s;
			if (sim_open(&s, &w, w.seed, err, sizeof(err)) == 0)
				sim_close(s);
		}
		sim_wl_free(&w);
	}
	if (json)
		unlink(path);
	close(fd);
	return 0;
}
