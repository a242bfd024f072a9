/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pingpong - two processes bouncing one byte over a pair of pipes.
 *   pingpong [--name COMM] [--nice N] [--cpus LIST] [-n ROUNDS] [-d MAX_SECONDS]
 * Does ROUNDS round trips (default 1000) or stops at MAX_SECONDS (default 30), whichever
 * comes first, and prints:
 *   WL pingpong name=... rounds=N done=N complete=0|1 wall_us=N rate_per_s=N
 * Exits 0 when the child ended cleanly (complete=0 means the time bound cut it short).
 */
#include "wl.h"
#include <signal.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
	struct wl_common c = { .duration = 30 };
	long rounds = 1000;
	argc = wl_parse_common(argc, argv, &c);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			rounds = atol(argv[++i]);
		else
			wl_die("pingpong: unknown argument '%s'", argv[i]);
	}
	if (rounds <= 0 || c.duration <= 0)
		wl_die("pingpong: rounds and duration must be positive");
	wl_apply(&c);

	int ab[2], ba[2];
	if (pipe(ab) || pipe(ba))
		wl_die("pingpong: pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		wl_die("pingpong: fork: %s", strerror(errno));
	if (pid == 0) {
		char b;
		close(ab[1]);
		close(ba[0]);
		while (read(ab[0], &b, 1) == 1)
			if (write(ba[1], &b, 1) != 1)
				_exit(1);
		_exit(0);
	}
	close(ab[0]);
	close(ba[1]);
	uint64_t t0 = wl_now_ns(), deadline = t0 + (uint64_t)(c.duration * 1e9);
	long done = 0;
	char b = 'x';
	while (done < rounds) {
		if (write(ab[1], &b, 1) != 1 || read(ba[0], &b, 1) != 1)
			wl_die("pingpong: pipe I/O failed after %ld rounds", done);
		done++;
		if ((done & 15) == 0 && wl_now_ns() >= deadline)
			break;
	}
	uint64_t wall = wl_now_ns() - t0;
	close(ab[1]);
	int st = 0;
	if (waitpid(pid, &st, 0) != pid)
		wl_die("pingpong: waitpid: %s", strerror(errno));
	printf("WL pingpong name=%s rounds=%ld done=%ld complete=%d wall_us=%llu rate_per_s=%llu\n",
	       wl_comm(), rounds, done, done == rounds, (unsigned long long)(wall / 1000),
	       (unsigned long long)(wall ? (uint64_t)done * 1000000000ull / wall : 0));
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
