/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cfg.h - configuration: one declarative table of options (cfg.c) drives YAML parsing,
 * defaults, range checks, `--help` text and the API's view of the config (GET/PUT
 * /api/v1/config reads and sets keys by name through it: cfg_get_text, cfg_set_text).
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
#include "../bpf/bounds.bpf.h"   /* the watchdog bounds shared with BPF and the simulator */

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
	uint32_t host_poll_us;
	uint32_t wake_batch;               /* wake the host at this many records (0: adaptive) */
	uint32_t wake_delay_us;            /* ... or when the oldest has waited this long */             /* poll the ringbuf this long before sleeping */
	bool     host_last;                /* serve the host after the DSQs (rustland-like) */
	bool     wakeup_preempt;           /* a woken task with an earlier vtime preempts its CPU */
	bool     partial;                  /* SCX_OPS_SWITCH_PARTIAL: only SCHED_EXT tasks */
	bool     debug;                    /* BPF side prints trace events (bpf_printk) */
	uint32_t batch_max;                /* most tasks per policy call (1..MAX_BATCH) */
	uint32_t stall_timeout_ms;         /* host silent this long with tasks pending: BPF rescues them */
	uint32_t watchdog_timeout_ms;      /* sched_ext watchdog (0 = kernel default) */
	uint32_t lua_heap_max_mb;          /* Lua heap cap of the policy (0 = none) */
	char     topology_root[CFG_PATH_MAX]; /* normally /sys/devices/system/cpu */

	/* api.* (host/api/: the HTTP API server and the decision-maker client) */
	bool     api_enabled;
	char     api_listen[CFG_STR_MAX];  /* address to bind, e.g. 127.0.0.1 */
	uint32_t api_port;
	char     api_public_key[CFG_PATH_MAX]; /* PEM: verifies tokens; client mode sends it */
	char     api_private_key[CFG_PATH_MAX];/* PEM: signs the tokens the server issues */
	uint32_t api_token_ttl_s;
	bool     api_auth;                 /* /api/v1 routes need a Bearer token */
	uint32_t api_max_body_bytes;
	uint32_t api_max_connections;
	char     api_tls_cert[CFG_PATH_MAX];   /* PEM: serve HTTPS ("" = plain HTTP) */
	char     api_tls_key[CFG_PATH_MAX];
	char     api_policy_dir[CFG_PATH_MAX]; /* PUT /api/v1/policy may switch to files in it */
	bool     api_allow_policy_upload;
	char     api_url[CFG_STR_MAX];     /* client mode: a Gthulhu decision maker ("" = off) */
	uint32_t api_interval;             /* client mode: seconds between fetches */

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

/* The sched_ext watchdog timeout in force: watchdog_timeout_ms, or the kernel's default
 * (30 s) when it is 0. */
uint32_t cfg_watchdog_ms(const struct cfg *c);

/* The longest slice anything may get (config, strategy, policy; BPF clamps to it too):
 * 1/8 of the watchdog timeout, at most 1 s, so a task waiting behind one slice is far from being
 * reported as stalled. stall_timeout_ms is at most half the watchdog, for the same
 * reason: a held task is rescued well before the watchdog fires. */
uint64_t cfg_slice_max_ns(const struct cfg *c);

#define CFG_KERNEL_WATCHDOG_MS BOUNDS_KERNEL_WATCHDOG_MS /* the kernel's SCX_WATCHDOG_MAX_TIMEOUT */
#define CFG_SLICE_MAX_NS BOUNDS_SLICE_MAX_NS   /* no slice longer than 1 s, whatever the watchdog */

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

/* The option table, for the API's GET/PUT /api/v1/config and SIGHUP's comparison.
 * Index i in [0, cfg_nr_keys()). A live key may change while the scheduler runs; the
 * others need a restart. */
enum cfg_kind { CFG_BOOL, CFG_INT, CFG_STRING };
int cfg_nr_keys(void);
const char *cfg_key(int i);
enum cfg_kind cfg_key_kind(int i);
bool cfg_key_live(int i);
int cfg_find_key(const char *key);                 /* index, or -1 */
/* The value as text (what a YAML file would hold, unquoted). */
void cfg_get_text(const struct cfg *c, int i, char *buf, size_t len);
/* Set from text with the table's checks; on error *c is untouched and why says what is
 * wrong, "(expected ...)" included. */
int cfg_set_text(struct cfg *c, int i, const char *text, char *why, size_t whylen);
/* Same for one field of a strategy (pid, command_regex, cgroup, pod_uid, container_id,
 * priority, execution_time). G_ERR_PARSE for an unknown field. */
int cfg_strategy_set_text(struct cfg_strategy *s, const char *field, const char *text,
			  char *why, size_t whylen);

/* Print every option (dotted key, type, default, bounds, description) for --help. */
void cfg_print_help(FILE *out);

/* Print the effective configuration as YAML (for -v and --check). */
void cfg_dump(const struct cfg *c, FILE *out);

#endif
