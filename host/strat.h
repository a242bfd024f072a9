/* SPDX-License-Identifier: GPL-2.0 */
/*
 * strat.h - scheduling strategies resolved to pids.
 *
 * A strategy names tasks by pid and/or by selectors: a regex on the process name (comm),
 * a cgroup path prefix, a Kubernetes pod UID or container id (parsed from kubepods cgroup
 * paths, systemd or cgroupfs layout). Policies look strategies up by pid on the hot path,
 * so selectors are resolved here, off the hot path, by scanning PROC/[0-9]* /comm and
 * /cgroup (PROC normally /proc) every refresh; the result is a flat list of
 * (pid, priority, execution_time) entries handed to the policy's on_strategies() only
 * when it changed.
 *
 * Ownership: struct strat owns its compiled regexes (strat_free releases them); the
 * resolved array lives inside the struct (fixed size, no per-refresh allocation).
 */
#ifndef GTHULHU_STRAT_H
#define GTHULHU_STRAT_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include "cfg.h"

#define STRAT_MAX_RESOLVED 4096

struct strat_entry {
	int32_t  pid;            /* matches task pid or tgid */
	bool     priority;
	int16_t  rule;           /* index of the rule it came from (not shown to policies) */
	uint64_t execution_time; /* ns, 0 = policy default */
};

struct strat {
	struct cfg_strategy rules[CFG_MAX_STRATEGIES];
	regex_t  re[CFG_MAX_STRATEGIES];
	bool     has_re[CFG_MAX_STRATEGIES];
	int      nr_rules;
	struct strat_entry resolved[STRAT_MAX_RESOLVED];
	int      nr_resolved;
	uint64_t generation;     /* bumped whenever `resolved` changes */
	char     proc_root[256];
};

/* Compile the rules (copies them). A bad regex: G_ERR_PARSE, message names the rule's
 * config line and the regex. */
int strat_init(struct strat *s, const struct cfg_strategy *rules, int n,
	       const char *proc_root, char *err, size_t errlen);
/* Replace the rules (API updates); same errors; on error the old rules stay. */
int strat_set(struct strat *s, const struct cfg_strategy *rules, int n, char *err, size_t errlen);
/* Re-resolve regex rules against PROC. Returns true if `resolved` changed. pid rules are
 * always present; when a pid matches several rules, the first rule wins. */
bool strat_refresh(struct strat *s);
/* Pod UID and container id in one cgroup path (kubepods, systemd or cgroupfs layout).
 * The UID is normalised to dashes, lower case. False if the path names no pod. */
bool strat_valid_pod_uid(const char *uid);          /* 8-4-4-4-12 hex, '-' or '_' */
bool strat_valid_container_id(const char *cid);    /* 12..64 hex digits */
bool strat_parse_kubepods(const char *path, char *uid, size_t uidlen, char *cid, size_t cidlen);
void strat_free(struct strat *s);

#endif
