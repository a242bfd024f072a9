/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cfg.h - configuration: one declarative table of options (cfg.c) drives YAML parsing,
 * defaults, range checks, `--help` text and (later) the API's view of the config.
 *
 * Ownership: struct cfg is a plain value owned by the caller; cfg_* never allocate
 * anything the caller must free (strings are fixed-size arrays inside the struct).
 */
#ifndef GTHULHU_CFG_H
#define GTHULHU_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_PATH_MAX     4096
#define CFG_STR_MAX      256
#define CFG_MAX_STRATEGIES 256

/* One scheduling strategy: which tasks (pid, and/or selectors: processes whose comm
 * matches a POSIX extended regex, whose cgroup path starts with `cgroup`, that belong to a
 * Kubernetes pod or container), and what they get. A strategy matches every thread of a
 * process: pid is compared with both the task's pid and its tgid. Every selector that is
 * set must match. */
struct cfg_strategy {
	int32_t  pid;                      /* 0 = not set */
	char     command_regex[CFG_STR_MAX]; /* "" = not set */
	char     cgroup[CFG_STR_MAX];      /* cgroup path prefix (/proc/PID/cgroup); "" = not set */
	char     pod_uid[40];              /* Kubernetes pod UID from a kubepods cgroup path; "" = not set */
	char     container_id[72];         /* container id (prefix, >= 12 hex) from the cgroup path */
	bool     priority;                 /* vtime 0: runs before everything else */
	uint64_t execution_time;           /* time slice in ns; 0 = the policy's own */
	int      line;                     /* line in the config file it came from, 0 = API */
};

struct cfg {
	char     file[CFG_PATH_MAX];       /* where it was loaded from; "" = built-in defaults */

	/* scheduler.* */
	char     policy[CFG_PATH_MAX];     /* default policy when none is given on the CLI */
	uint64_t slice_ns_default;         /* BPF default time slice */
	uint64_t slice_ns_min;             /* smallest slice a policy should give */
	bool     builtin_idle;             /* select_cpu uses the kernel's idle picking */
	bool     early_processing;         /* idle CPU found at wakeup: dispatch there in BPF */
	bool     debug;                    /* BPF side prints trace events (bpf_printk) */
	uint32_t batch_max;                /* most tasks per policy call (1..MAX_BATCH) */
	uint32_t stall_timeout_ms;         /* host silent this long with tasks pending: BPF rescues them */
	uint32_t watchdog_timeout_ms;      /* sched_ext watchdog (0 = kernel default) */
	char     topology_root[CFG_PATH_MAX]; /* normally /sys/devices/system/cpu */

	/* api.* (served by the API module) */
	bool     api_enabled;
	char     api_listen[CFG_STR_MAX];  /* address to bind, e.g. 127.0.0.1 */
	uint32_t api_port;
	char     api_public_key[CFG_PATH_MAX]; /* PEM file for JWT verification ("" = none) */
	char     api_private_key[CFG_PATH_MAX];/* PEM file for issuing tokens ("" = none) */
	uint32_t api_token_ttl_s;

	/* dryrun.* (--dry-run: the synthetic task source, host/dryrun.c) */
	uint32_t dryrun_rate;              /* most task records per second */
	uint32_t dryrun_tasks;             /* synthetic threads */
	char     dryrun_mix[CFG_STR_MAX];  /* CLASS[:SHARE],... */
	uint32_t dryrun_duration_s;        /* 0 = until SIGINT/SIGTERM */
	uint32_t dryrun_pid_base;          /* pid of the first synthetic thread */

	/* strategies: initial list */
	struct cfg_strategy strategies[CFG_MAX_STRATEGIES];
	int      nr_strategies;
};

/* Fill *c with the built-in defaults (a complete, valid configuration). */
void cfg_defaults(struct cfg *c);

/* Parse YAML file `path` over the values already in *c (call cfg_defaults first).
 * Unknown keys: a warning on `warn` (may be NULL) naming file:line and the key, then go on.
 * Wrong type, out of range, bad YAML: returns G_ERR_PARSE / G_ERR_RANGE / G_ERR_IO and
 * writes "FILE:LINE: KEY: what is wrong\n    the line itself" into err. */
int cfg_load_file(struct cfg *c, const char *path, FILE *warn, char *err, size_t errlen);

/* Same, from a buffer; `name` is used in messages in place of a file name. */
int cfg_load_buffer(struct cfg *c, const char *name, const char *buf, size_t len,
		    FILE *warn, char *err, size_t errlen);

/* Print every option (dotted key, type, default, bounds, description) for --help. */
void cfg_print_help(FILE *out);

/* Print the effective configuration as YAML (for -v and --check). */
void cfg_dump(const struct cfg *c, FILE *out);

#endif
