/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fuzz_cpulist.c - libFuzzer target for topo_parse_cpulist() (host/topo.c).
 *
 * Input: byte 0 (and 1) choose `max`, the room in the ids array (0 .. MAX_CPUS + 7); the
 * rest is the cpulist text (a NUL-terminated copy, so a NUL byte inside ends the string
 * exactly as it would for sysfs text). The ids array is malloc'ed with exactly `max`
 * entries, so ASan catches any write past it.
 *
 * Invariants (abort() on violation):
 *   - the result is -1 or in [0, max];
 *   - every id is < MAX_CPUS, and no id is listed twice;
 *   - parsing again with max = MAX_CPUS agrees: same ids when the first call succeeded;
 *     when it failed but the second succeeds, the list really was longer than max;
 *   - parsing is deterministic (same text, same result).
 *
 * Run: make fuzz (all targets) or build/fuzz/fuzz_cpulist build/fuzz/corpus-fuzz_cpulist
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topo.h"

#define DIE(...) do { fprintf(stderr, "fuzz_cpulist: " __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

int g_verbose;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint16_t all[MAX_CPUS], all2[MAX_CPUS];
	int max;

	if (size < 2)
		return 0;
	max = (int)((data[0] | (unsigned)data[1] << 8) % (MAX_CPUS + 8));
	data += 2;
	size -= 2;

	char *s = malloc(size + 1);
	uint16_t *ids = malloc((size_t)(max ? max : 1) * sizeof(*ids));
	if (!s || !ids)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';

	int r = topo_parse_cpulist(s, ids, max);
	if (r < -1 || r > max)
		DIE("result %d for max %d", r, max);
	for (int i = 0; i < r; i++) {
		if (ids[i] >= MAX_CPUS)
			DIE("id %u >= MAX_CPUS", ids[i]);
		for (int j = 0; j < i; j++)
			if (ids[i] == ids[j])
				DIE("id %u listed twice", ids[i]);
	}

	int r2 = topo_parse_cpulist(s, all, MAX_CPUS);
	if (r >= 0) {
		if (r2 != r || memcmp(all, ids, (size_t)r * sizeof(*ids)))
			DIE("max %d gave %d ids, max MAX_CPUS gave %d or other ids", max, r, r2);
	} else if (r2 >= 0 && r2 <= max) {
		DIE("max %d failed, but max MAX_CPUS gave %d ids", max, r2);
	}
	int r3 = topo_parse_cpulist(s, all2, MAX_CPUS);
	if (r3 != r2 || (r2 > 0 && memcmp(all, all2, (size_t)r2 * sizeof(*all))))
		DIE("not deterministic");
	if (topo_parse_cpulist(NULL, all, MAX_CPUS) != -1)
		DIE("NULL text did not give -1");

	free(ids);
	free(s);
	return 0;
}
