/* SPDX-License-Identifier: GPL-2.0 */
/*
 * storm - many short-lived processes.
 *   storm [--name COMM] [-n COUNT] [--exec PATH] [-d MAX_SECONDS]
 * Forks COUNT children (default 200); each exits at once, or execs PATH (e.g. /bin/true)
 * when --exec is given. Waits for all of them and prints:
 *   WL storm name=... count=N ok=N failed=N wall_us=N
 * Exits 0 only if every child was created and exited 0.
 */
#include "wl.h"
#include <sys/wait.h>

int main(int argc, char **argv)
{
	struct wl_common c = { .duration = 60 };
	long count = 200;
	const char *exe = NULL;
	argc = wl_parse_common(argc, argv, &c);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			count = atol(argv[++i]);
		else if (!strcmp(argv[i], "--exec") && i + 1 < argc)
			exe = argv[++i];
		else
			wl_die("storm: unknown argument '%s'", argv[i]);
	}
	if (count <= 0 || count > 100000)
		wl_die("storm: count out of range");
	wl_apply(&c);

	uint64_t t0 = wl_now_ns();
	long started = 0, ok = 0, failed = 0;
	for (long i = 0; i < count; i++) {
		pid_t p = fork();
		if (p < 0) {
			failed++;
			continue;
		}
		if (p == 0) {
			if (exe) {
				execl(exe, exe, (char *)NULL);
				_exit(127);
			}
			_exit(0);
		}
		started++;
	}
	for (long i = 0; i < started; i++) {
		int st;
		if (wait(&st) < 0) {
			failed += started - i;
			break;
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
		else
			failed++;
	}
	printf("WL storm name=%s count=%ld ok=%ld failed=%ld wall_us=%llu\n", wl_comm(), count, ok,
	       failed, (unsigned long long)((wl_now_ns() - t0) / 1000));
	return ok == count ? 0 : 1;
}
