/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pingpong - pairs of processes bouncing one byte over a pair of pipes.
 *   pingpong [--name COMM] [--nice N] [--cpus LIST] [-n ROUNDS] [-d MAX_SECONDS] [--pairs P]
 * Each of P pairs (default 1) does ROUNDS round trips (default 1000) or stops at
 * MAX_SECONDS (default 30), whichever comes first. One pair is this process and a child;
 * with P > 1 every pair is a forked process and its child, all started together. Prints:
 *   WL pingpong name=... pairs=P rounds=N done=N complete=0|1 wall_us=N rate_per_s=N
 * done is summed over the pairs, wall_us is the longest pair's, rate_per_s is the sum of
 * the pairs' rates (round trips per second). Exits 0 when every process ended cleanly
 * (complete=0 means the time bound cut a pair short).
 */
#include "wl.h"
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

struct pair_res {
	long done;
	uint64_t wall_ns;
	int ok;
};

/* One pair: this process and a forked child. Fills *r; never exits on its own. */
static void run_pair(long rounds, double duration, struct pair_res *r)
{
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
	uint64_t t0 = wl_now_ns(), deadline = t0 + (uint64_t)(duration * 1e9);
	long done = 0;
	char b = 'x';
	while (done < rounds) {
		if (write(ab[1], &b, 1) != 1 || read(ba[0], &b, 1) != 1)
			wl_die("pingpong: pipe I/O failed after %ld rounds", done);
		done++;
		if ((done & 15) == 0 && wl_now_ns() >= deadline)
			break;
	}
	r->wall_ns = wl_now_ns() - t0;
	r->done = done;
	close(ab[1]);
	close(ba[0]);
	int st = 0;
	if (waitpid(pid, &st, 0) != pid)
		wl_die("pingpong: waitpid: %s", strerror(errno));
	r->ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv)
{
	struct wl_common c = { .duration = 30 };
	long rounds = 1000, pairs = 1;
	argc = wl_parse_common(argc, argv, &c);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			rounds = atol(argv[++i]);
		else if (!strcmp(argv[i], "--pairs") && i + 1 < argc)
			pairs = atol(argv[++i]);
		else
			wl_die("pingpong: unknown argument '%s'", argv[i]);
	}
	if (rounds <= 0 || c.duration <= 0)
		wl_die("pingpong: rounds and duration must be positive");
	if (pairs < 1 || pairs > 64)
		wl_die("pingpong: --pairs must be 1 to 64");
	wl_apply(&c);

	/* The pairs' results, in memory shared with the forked pair leaders. */
	struct pair_res *res = mmap(NULL, sizeof(*res) * (size_t)pairs, PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		wl_die("pingpong: mmap: %s", strerror(errno));
	int ok = 1;
	if (pairs == 1) {
		run_pair(rounds, c.duration, &res[0]);
	} else {
		pid_t *lead = calloc((size_t)pairs, sizeof(*lead));
		if (!lead)
			wl_die("pingpong: out of memory");
		for (long i = 0; i < pairs; i++) {
			lead[i] = fork();
			if (lead[i] < 0)
				wl_die("pingpong: fork: %s", strerror(errno));
			if (lead[i] == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
				run_pair(rounds, c.duration, &res[i]);
				_exit(0);
			}
		}
		for (long i = 0; i < pairs; i++) {
			int st = 0;
			if (waitpid(lead[i], &st, 0) != lead[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
				ok = 0;
		}
		free(lead);
	}
	long done = 0;
	uint64_t wall = 0, rate = 0;
	int complete = 1;
	for (long i = 0; i < pairs; i++) {
		done += res[i].done;
		if (res[i].wall_ns > wall)
			wall = res[i].wall_ns;
		if (res[i].wall_ns)
			rate += (uint64_t)res[i].done * 1000000000ull / res[i].wall_ns;
		complete &= res[i].done == rounds;
		ok &= res[i].ok;
	}
	printf("WL pingpong name=%s pairs=%ld rounds=%ld done=%ld complete=%d wall_us=%llu rate_per_s=%llu\n",
	       wl_comm(), pairs, rounds, done, complete, (unsigned long long)(wall / 1000),
	       (unsigned long long)rate);
	return ok ? 0 : 1;
}
