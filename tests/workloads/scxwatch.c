/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scxwatch - an observer that does not depend on the scheduler under test: it switches
 * itself to SCHED_FIFO (real-time tasks are never handed to a sched_ext scheduler), sends
 * a signal to PID, and polls /sys/kernel/sched_ext/state every millisecond until it reads
 * STATE, timing from the signal on CLOCK_MONOTONIC.
 *   scxwatch --pid PID [--signal N] --until STATE [--timeout-ms MS]
 *   WL scxwatch name=... ms=N state=STATE reached=0|1
 * Exits 0 when STATE was reached in time, 1 when not.
 */
#include "wl.h"      /* first: it defines _GNU_SOURCE */
#include <signal.h>

static int read_state(char *buf, size_t len)
{
	FILE *f = fopen("/sys/kernel/sched_ext/state", "r");

	if (!f)
		return -1;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int main(int argc, char **argv)
{
	struct wl_common c = { 0 };
	struct sched_param sp = { .sched_priority = 50 };
	const char *until = NULL;
	long pid = 0, timeout_ms = 5000;
	int sig = SIGKILL, reached = 0;
	char state[64] = "";
	uint64_t t0, now;

	argc = wl_parse_common(argc, argv, &c);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--pid") && i + 1 < argc)
			pid = atol(argv[++i]);
		else if (!strcmp(argv[i], "--signal") && i + 1 < argc)
			sig = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--until") && i + 1 < argc)
			until = argv[++i];
		else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
			timeout_ms = atol(argv[++i]);
		else
			wl_die("scxwatch: unknown argument '%s'", argv[i]);
	}
	if (pid <= 0 || !until)
		wl_die("scxwatch: --pid PID and --until STATE are required");
	wl_apply(&c);
	if (sched_setscheduler(0, SCHED_FIFO, &sp))
		wl_die("sched_setscheduler(SCHED_FIFO): %s", strerror(errno));

	t0 = wl_now_ns();
	if (kill((pid_t)pid, sig))
		wl_die("kill(%ld, %d): %s", pid, sig, strerror(errno));
	for (;;) {
		now = wl_now_ns();
		if (read_state(state, sizeof(state)) == 0 && !strcmp(state, until)) {
			reached = 1;
			break;
		}
		if (now - t0 > (uint64_t)timeout_ms * 1000000ull)
			break;
		usleep(1000);
	}
	printf("WL scxwatch name=%s ms=%llu state=%s reached=%d\n", wl_comm(),
	       (unsigned long long)((now - t0) / 1000000ull), state, reached);
	return reached ? 0 : 1;
}
