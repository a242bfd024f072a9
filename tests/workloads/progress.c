/* SPDX-License-Identifier: GPL-2.0 */
/*
 * progress - a ticker that proves tasks keep running.
 *   progress --file PATH [--name COMM] [-d SECONDS] [--interval-ms MS]
 * Every MS milliseconds (default 10) for SECONDS (default 10) it increments a counter and
 * rewrites PATH with it (fixed width, one pwrite, so a reader never sees half a number).
 * Another process can read PATH while, say, the scheduler's host is stopped.
 *   WL progress name=... ticks=N
 */
#include "wl.h"
#include <fcntl.h>

int main(int argc, char **argv)
{
	struct wl_common c = { .duration = 10 };
	const char *path = NULL;
	long interval_ms = 10;
	argc = wl_parse_common(argc, argv, &c);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--file") && i + 1 < argc)
			path = argv[++i];
		else if (!strcmp(argv[i], "--interval-ms") && i + 1 < argc)
			interval_ms = atol(argv[++i]);
		else
			wl_die("progress: unknown argument '%s'", argv[i]);
	}
	if (!path)
		wl_die("progress: --file PATH is required");
	if (interval_ms <= 0 || c.duration <= 0)
		wl_die("progress: interval and duration must be positive");
	wl_apply(&c);

	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		wl_die("progress: open %s: %s", path, strerror(errno));
	uint64_t end = wl_now_ns() + (uint64_t)(c.duration * 1e9), ticks = 0;
	struct timespec iv = { .tv_sec = interval_ms / 1000, .tv_nsec = (interval_ms % 1000) * 1000000 };
	char buf[32];
	do {
		ticks++;
		int len = snprintf(buf, sizeof(buf), "%020llu\n", (unsigned long long)ticks);
		if (pwrite(fd, buf, len, 0) != len)
			wl_die("progress: write %s: %s", path, strerror(errno));
		nanosleep(&iv, NULL);
	} while (wl_now_ns() < end);
	close(fd);
	printf("WL progress name=%s ticks=%llu\n", wl_comm(), (unsigned long long)ticks);
	return 0;
}
