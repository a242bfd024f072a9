/* SPDX-License-Identifier: GPL-2.0 */
/*
 * watch.h - hot reload trigger: inotify on the policy file's directory (only its name
 * counts) and on the policy library's directory and its subdirectories (*.lua), so saving
 * in place, saving by rename (most editors), `touch` and a library edit all count.
 *
 * Debounced: a change is due once nothing happened for WATCH_QUIET_MS, and only when the
 * policy file exists and is not empty (an editor between truncate and write), or after
 * WATCH_MAX_MS whatever the file looks like (the reload then says what is wrong). A burst
 * of events is one reload.
 *
 * Ownership: watch_open() creates the inotify fd that watch_close() closes (NULL-safe,
 * idempotent). The fd is non-blocking; the caller polls it (epoll) and calls watch_read().
 */
#ifndef GTHULHU_WATCH_H
#define GTHULHU_WATCH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WATCH_QUIET_MS 200
#define WATCH_MAX_MS 2000
#define WATCH_MAX_DIRS 16

struct watch {
	int fd;
	int policy_wd;                  /* the policy's directory */
	int lib_wd[WATCH_MAX_DIRS];     /* the library directory and its subdirectories */
	int nr_lib;
	char policy[PATH_MAX];
	char policy_name[256];          /* basename: the only name that counts in policy_wd */
	uint64_t first_ns, last_ns;     /* pending change: first and latest event; 0 = none */
	uint64_t nr_events;             /* relevant events seen (for tests and -v) */
};

int watch_open(struct watch *w, const char *policy, const char *lib_dir, char *err, size_t errlen);
void watch_close(struct watch *w);
/* Drain the fd; note relevant events at time now. */
void watch_read(struct watch *w, uint64_t now);
/* A change is pending and has settled (see above): true once, then it is cleared. */
bool watch_due(struct watch *w, uint64_t now);

#endif
