/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test_sched.c - what the host writes into the BPF object before load (sched_open):
 * the watchdog timeout (0 must reach the kernel as 0, its own default, not the object's
 * built-in 5000) and the safety bounds derived from it. Opening the object needs neither
 * root nor sched_ext.
 */
#include <string.h>
#include "check.h"
#include "cfg.h"
#include "common.h"
#include "sched_bpf.h"
#include "topo.h"
typedef __u64 u64;
typedef __u32 u32;
typedef __s32 s32;
typedef __s64 s64;
#include "main.skel.h"

int g_verbose;

static struct sched sch;
static struct topo topo;

static void open_with(uint32_t watchdog_ms, uint32_t *timeout_ms, uint64_t *slice_max,
		      uint64_t *wait_bound)
{
	struct cfg c;
	char err[512];

	cfg_defaults(&c);
	c.watchdog_timeout_ms = watchdog_ms;
	CHECK(sched_open(&sch, &c, &topo, err, sizeof(err)) == G_OK, "%s", err);
	*timeout_ms = sch.skel->struct_ops.gthulhu_lua_ops->timeout_ms;
	*slice_max = sch.skel->rodata->slice_ns_max;
	*wait_bound = sch.skel->rodata->wait_bound_ns;
	sched_free(&sch);
}

int main(void)
{
	uint32_t t;
	uint64_t smax, wb;

	topo.nr_cpus = 2;
	open_with(0, &t, &smax, &wb);
	CHECK(t == 0, "watchdog_timeout_ms 0 reached the ops as %u (want 0: the kernel default)", t);
	CHECK(smax == 1000000000ull, "slice_ns_max %llu with the kernel's 30 s watchdog (1 s cap)",
	      (unsigned long long)smax);
	CHECK(wb == 500000000ull, "wait_bound_ns %llu", (unsigned long long)wb);

	open_with(700, &t, &smax, &wb);
	CHECK(t == 700, "timeout_ms %u, want 700", t);
	CHECK(smax == 87500000ull, "slice_ns_max %llu, want 700 ms / 8", (unsigned long long)smax);
	CHECK(wb == 70000000ull, "wait_bound_ns %llu, want watchdog / 10",
	      (unsigned long long)wb);

	open_with(5000, &t, &smax, &wb);
	CHECK(t == 5000 && smax == 625000000ull && wb == 500000000ull, "%u %llu %llu", t,
	      (unsigned long long)smax, (unsigned long long)wb);
	return CHECK_DONE();
}
