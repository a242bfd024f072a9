/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scxmon - records every moment a sched_ext scheduler was not attached. Runs SCHED_FIFO
 * (real-time tasks are never handed to a sched_ext scheduler, so the observer does not
 * depend on the scheduler it watches) and samples /sys/kernel/sched_ext/state, root/ops
 * and enable_seq every MS milliseconds until SIGTERM/SIGINT or SECONDS have passed.
 *   scxmon --ops NAME [--interval-ms MS] [-d SECONDS]
 * Prints a line on every change of what it sees (flushed at once, so another process can
 * count them while it runs):
 *   CHANGE t_ms=N state=S ops=O seq=N attached=0|1
 * and at the end:
 *   WL scxmon name=... samples=N detached=N first_detached_ms=N|-1 seq_changes=N attached_all=0|1
 * "attached" = state is "enabled", ops is NAME and enable_seq is still the first value seen
 * (a detach and re-attach between two samples still shows as a changed enable_seq).
 * Exits 0 when it was attached at every sample, 1 when not.
 */
#include "wl.h"      /* first: it defines _GNU_SOURCE */
#include <signal.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	buf[0] = '\0';
	if (!f) {
		snprintf(buf, len, "none");
		return;
	}
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

int main(int argc, char **argv)
{
	struct wl_common c = { .duration = 3600 };
	struct sched_param sp = { .sched_priority = 50 };
	const char *ops_want = NULL;
	long interval_ms = 200;
	argc = wl_parse_common(argc, argv, &c);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			ops_want = argv[++i];
		else if (!strcmp(argv[i], "--interval-ms") && i + 1 < argc)
			interval_ms = atol(argv[++i]);
		else
			wl_die("scxmon: unknown argument '%s'", argv[i]);
	}
	if (!ops_want || interval_ms <= 0 || c.duration <= 0)
		wl_die("scxmon: --ops NAME is required; interval and duration must be positive");
	wl_apply(&c);
	if (sched_setscheduler(0, SCHED_FIFO, &sp))
		wl_die("sched_setscheduler(SCHED_FIFO): %s", strerror(errno));
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	char state[64], ops[128], seq[32], seq0[32] = "", prev_seq[32] = "", last[256] = "";
	uint64_t t0 = wl_now_ns(), end = t0 + (uint64_t)(c.duration * 1e9);
	long samples = 0, detached = 0, first_ms = -1, seq_changes = 0;
	struct timespec iv = { .tv_sec = interval_ms / 1000, .tv_nsec = (interval_ms % 1000) * 1000000 };
	while (!stop && wl_now_ns() < end) {
		read_line("/sys/kernel/sched_ext/state", state, sizeof(state));
		read_line("/sys/kernel/sched_ext/root/ops", ops, sizeof(ops));
		read_line("/sys/kernel/sched_ext/enable_seq", seq, sizeof(seq));
		if (!samples)
			snprintf(seq0, sizeof(seq0), "%s", seq);
		else if (strcmp(seq, prev_seq))
			seq_changes++;
		snprintf(prev_seq, sizeof(prev_seq), "%s", seq);
		samples++;
		int att = !strcmp(state, "enabled") && !strcmp(ops, ops_want) && !strcmp(seq, seq0);
		long t_ms = (long)((wl_now_ns() - t0) / 1000000ull);
		if (!att) {
			detached++;
			if (first_ms < 0)
				first_ms = t_ms;
		}
		char now[256];
		snprintf(now, sizeof(now), "state=%s ops=%s seq=%s attached=%d", state, ops, seq, att);
		if (strcmp(now, last)) {
			printf("CHANGE t_ms=%ld %s\n", t_ms, now);
			fflush(stdout);
			snprintf(last, sizeof(last), "%s", now);
		}
		nanosleep(&iv, NULL);
	}
	printf("WL scxmon name=%s samples=%ld detached=%ld first_detached_ms=%ld seq_changes=%ld attached_all=%d\n",
	       wl_comm(), samples, detached, first_ms, seq_changes, samples > 0 && !detached);
	return samples > 0 && !detached ? 0 : 1;
}
