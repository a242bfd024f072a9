/* SPDX-License-Identifier: GPL-2.0 */
/*
 * batch - CPU-bound batch throughput: a fixed amount of work split over P processes.
 *   batch [--name COMM] [-n MEGALOOPS] [-p PROCS] [-d MAX_SECONDS]
 * MEGALOOPS million LCG steps in total (default 200), split evenly over PROCS forked
 * processes (default 2 x the CPUs this process may run on). Times from the first fork to
 * the last exit; children still running after about MAX_SECONDS (default 120) are killed. Prints:
 *   WL batch name=... procs=P megaloops=N ok=N wall_us=N
 * Exits 0 when every child finished its share.
 */
#include "wl.h"
#include <signal.h>
#include <sys/wait.h>

static volatile sig_atomic_t timed_out;
static void on_alarm(int sig) { (void)sig; timed_out = 1; }

int main(int argc, char **argv)
{
	struct wl_common c = { .duration = 120 };
	long mloops = 200, procs = 0;
	argc = wl_parse_common(argc, argv, &c);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			mloops = atol(argv[++i]);
		else if (!strcmp(argv[i], "-p") && i + 1 < argc)
			procs = atol(argv[++i]);
		else
			wl_die("batch: unknown argument '%s'", argv[i]);
	}
	wl_apply(&c);
	if (procs == 0) {
		cpu_set_t set;
		procs = sched_getaffinity(0, sizeof(set), &set) ? 2 : 2 * CPU_COUNT(&set);
	}
	if (mloops <= 0 || mloops > 1000000 || procs <= 0 || procs > 1024 || c.duration <= 0)
		wl_die("batch: work, procs or duration out of range");

	uint64_t share = (uint64_t)mloops * 1000000ull / (uint64_t)procs;
	pid_t *pid = calloc((size_t)procs, sizeof(*pid));
	if (!pid)
		wl_die("batch: out of memory");
	uint64_t t0 = wl_now_ns();
	for (long i = 0; i < procs; i++) {
		pid[i] = fork();
		if (pid[i] < 0)
			wl_die("batch: fork: %s", strerror(errno));
		if (pid[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			volatile uint64_t x = (uint64_t)i + 1;
			for (uint64_t k = 0; k < share; k++)
				x = x * 6364136223846793005ull + 1442695040888963407ull;
			_exit(0);
		}
	}
	/* Bounded wait without polling: SIGALRM (no SA_RESTART) interrupts wait() at
	 * MAX_SECONDS, then the rest are killed. */
	struct sigaction sa = { .sa_handler = on_alarm };
	sigaction(SIGALRM, &sa, NULL);
	alarm((unsigned)c.duration + 1);
	long left = procs, ok = 0;
	while (left > 0) {
		int st;
		pid_t p = wait(&st);
		if (p > 0) {
			left--;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
				ok++;
			continue;
		}
		if (errno == EINTR && !timed_out)
			continue;
		for (long i = 0; i < procs; i++)
			kill(pid[i], SIGKILL);
		while (wait(NULL) > 0)
			;
		break;
	}
	alarm(0);
	printf("WL batch name=%s procs=%ld megaloops=%ld ok=%ld wall_us=%llu\n", wl_comm(), procs,
	       mloops, ok, (unsigned long long)((wl_now_ns() - t0) / 1000));
	return ok == procs ? 0 : 1;
}
