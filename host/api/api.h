/* SPDX-License-Identifier: GPL-2.0 */
/*
 * api.h - the HTTP API (server on libmicrohttpd, tokens with libjwt, JSON with jansson)
 * and the client mode toward a Gthulhu decision maker (libcurl). What the run loop sees.
 *
 * Threads: the server runs in libmicrohttpd's threads (one per connection), the client
 * in a thread of its own. Neither ever touches the policy, the strategies or the config
 * of the run loop: every change is posted into a mailbox (a mutex-protected struct with
 * a generation counter read without the lock) that the run loop polls once per turn with
 * api_poll(), at a batch boundary. A slow or hostile client can hold an API thread, never
 * the scheduling thread: api_poll() takes the mailbox lock only when something is
 * pending or to publish a snapshot (at most every 100 ms), and never waits for a client.
 *
 * Strategies in effect = the merge, in this order (the first rule matching a task wins):
 *   1. our own API's (POST /api/v1/strategies),
 *   2. Gthulhu intents and node intents pushed to us (POST /api/v1/intents, node-intents),
 *   3. those fetched in client mode from a decision maker (api.url),
 *   4. the config file's `strategies:` (replaced by SIGHUP or PUT /api/v1/config).
 * At most CFG_MAX_STRATEGIES rules in all; a change that would exceed it is refused.
 *
 * Ownership: api_start() returns a struct that api_stop() stops and frees (NULL-safe).
 */
#ifndef GTHULHU_API_H
#define GTHULHU_API_H

#include <stdbool.h>
#include <stddef.h>
#include "cfg.h"

struct api;
struct pol;
struct loop_stats;

/* What api_poll() tells the run loop to do. */
enum {
	API_RULES_CHANGED = 1,   /* re-merge the rules (api_merge_rules) and push them */
	API_CFG_CHANGED = 2,     /* live config keys were changed in the caller's cfg */
	API_POLICY_SWITCHED = 4, /* pol now runs another file (pol_path) */
};

/* The run loop's counters for GET /metrics and client-mode reports. */
struct api_counters {
	char stats_line[2048];           /* the `stats:` line's key=value pairs */
	const struct loop_stats *loop;   /* histograms (copied by api_poll) */
};

/* Start the server (when api.enabled) and the client (when api.url is set). The config
 * is copied; proc_root is where pods and processes are looked up (/proc, or the dry
 * run's). Errors (key files, bind, TLS) return G_ERR with a message naming the key. */
int api_start(struct api **out, const struct cfg *c, const char *proc_root, char *err,
	      size_t errlen);
void api_stop(struct api *a);

/* The scheduler is attached (policy reloads and switches can be served) or not (503). */
void api_set_attached(struct api *a, bool attached);

/* Once per run-loop turn, on the scheduling thread. Applies pending policy requests to
 * pol, pending live config changes to *c, publishes a snapshot (fill() is called at most
 * every 100 ms). Returns a mask of API_*. NULL-safe (returns 0). */
unsigned api_poll(struct api *a, struct pol *pol, struct cfg *c,
		  void (*fill)(struct api_counters *out, void *ctx), void *ctx);

/* The rules in effect: the API's own, intents, client-mode ones, then cfg_rules.
 * Returns their count (<= max) or G_ERR_RANGE with a message. a may be NULL. */
int api_merge_rules(struct api *a, const struct cfg_strategy *cfg_rules, int n_cfg,
		    struct cfg_strategy *out, int max, char *err, size_t errlen);

/* The run loop resolved a new set of pids (for GET /api/v1/scheduling/strategies). */
struct strat;
void api_publish_resolved(struct api *a, const struct strat *s);

/* The config file was reloaded (SIGHUP): the API takes its live keys. */
void api_config_reloaded(struct api *a, const struct cfg *c);

#endif
