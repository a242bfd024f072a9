/* SPDX-License-Identifier: GPL-2.0 */
/*
 * topo.h - CPU cache topology read from sysfs
 * (ROOT/cpuN/cache/index{2,3}/shared_cpu_list, ROOT normally /sys/devices/system/cpu).
 * The result fills the BPF "cpu_topo" map (select_cpu walks L2 then L3 siblings) and is
 * handed to Lua as ctx.topology.
 *
 * Ownership: struct topo is a caller-owned value; no heap memory behind it.
 */
#ifndef GTHULHU_TOPO_H
#define GTHULHU_TOPO_H

#include <stddef.h>
#include <stdint.h>
#include "../bpf/intf.h"

struct topo {
	int nr_cpus;                      /* highest possible CPU id + 1 (<= MAX_CPUS) */
	uint8_t online[MAX_CPUS];         /* 1 if ROOT/cpuN exists and is online */
	struct cpu_topo cpu[MAX_CPUS];    /* per CPU: L2 and L3 sibling lists (self included) */
};

/* Read the topology under root. CPUs without cache info get themselves as their only
 * sibling. Returns G_OK, or G_ERR_IO / G_ERR_PARSE with a message naming the file. */
int topo_read(struct topo *t, const char *root, char *err, size_t errlen);

/* Parse a kernel cpulist ("0-3,8,10-11") into ids[] (at most max). Returns the count,
 * or -1 on a malformed list or an id >= MAX_CPUS. */
int topo_parse_cpulist(const char *s, uint16_t *ids, int max);

#endif
