/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pinned - CPU burner restricted to a CPU list with sched_setaffinity.
 *   pinned --cpus LIST [--name COMM] [--nice N] [-d SECONDS]
 * Checks after the burn that the process only ever ran on allowed CPUs (the CPU it is on
 * is sampled every loop) and prints:
 *   WL pinned name=... cpu_us=N ... cpus=LIST outside=0
 * Exits 1 if it was seen running on a CPU outside the list.
 */
#include "wl.h"

int main(int argc, char **argv)
{
	struct wl_common c = { .duration = 5 };
	argc = wl_parse_common(argc, argv, &c);
	if (argc > 1)
		wl_die("pinned: unknown argument '%s'", argv[1]);
	if (!c.cpus)
		wl_die("pinned: --cpus LIST is required");
	if (c.duration <= 0 || c.duration > 3600)
		wl_die("pinned: duration out of range");
	wl_apply(&c);

	cpu_set_t allowed;
	wl_parse_cpus(c.cpus, &allowed);
	uint64_t t0 = wl_now_ns(), c0 = wl_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	uint64_t end = t0 + (uint64_t)(c.duration * 1e9), loops = 0, outside = 0;
	volatile uint64_t x = 1;
	do {
		for (int i = 0; i < 20000; i++)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		loops++;
		int cpu = sched_getcpu();
		if (cpu >= 0 && !CPU_ISSET(cpu, &allowed))
			outside++;
	} while (wl_now_ns() < end);
	uint64_t cpu_ns = wl_clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
	char extra[96];
	snprintf(extra, sizeof(extra), " cpus=%s outside=%llu", c.cpus, (unsigned long long)outside);
	wl_report_burn("pinned", c.duration, cpu_ns, loops, wl_now_ns() - t0, extra);
	return outside ? 1 : 0;
}
