/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hog - CPU burner.
 *   hog [--name COMM] [--nice N] [--cpus LIST] [-d SECONDS]
 * Spins for SECONDS of wall time (default 5) and prints the CPU time it got:
 *   WL hog name=... cpu_us=N rusage_us=N wall_us=N ...
 */
#include "wl.h"

int main(int argc, char **argv)
{
	struct wl_common c = { .duration = 5 };
	argc = wl_parse_common(argc, argv, &c);
	if (argc > 1)
		wl_die("hog: unknown argument '%s'", argv[1]);
	if (c.duration <= 0 || c.duration > 3600)
		wl_die("hog: duration out of range");
	wl_apply(&c);
	uint64_t loops, t0 = wl_now_ns();
	uint64_t cpu = wl_burn(c.duration, &loops);
	wl_report_burn("hog", c.duration, cpu, loops, wl_now_ns() - t0, NULL);
	return 0;
}
