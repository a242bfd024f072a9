/* SPDX-License-Identifier: GPL-2.0 */
/*
 * internal.h - what the API's files share: the mailbox (struct api), the JSON body
 * parsers (json.c), Gthulhu intents and their merkle roots (intents.c), the server
 * (server.c: routes; reply.c, gthulhu.c, prom.c, own.c: the endpoints) and the client
 * (client.c). Not for the rest of the host: see api.h.
 *
 * Locking: everything in struct api below `mu` is guarded by it; `gen_rules`,
 * `req_pending` and `cfg_pending` are also read without it (atomics) so api_poll() costs
 * three loads when nothing is pending.
 */
#ifndef GTHULHU_API_INTERNAL_H
#define GTHULHU_API_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>

#include "cfg.h"
#include "loop.h"
#include "strat.h"
#include "token.h"
#include "api.h"

#define API_MAX_INTENTS 256
#define API_POLICY_WAIT_S 10
/* Stacks of the API's threads. Small on purpose: the live scheduler runs under
 * mlockall(MCL_CURRENT | MCL_FUTURE), so every thread stack is locked in RAM (default
 * 8 MiB x api.max_connections otherwise). The handlers need a few tens of KiB. */
#define API_THREAD_STACK (256u << 10)

/* A Gthulhu pod intent (POST /api/v1/intents), as the Manager sends it. */
struct api_intent {
	char pod_name[128], pod_id[64], node_id[128], ns[128];
	char command_regex[CFG_STR_MAX];
	long long priority, execution_time;
	char labels[1024];          /* "k=v" sorted, joined by ',' (merkle form) */
	json_t *labels_obj;         /* as sent, for the selectors of the strategies list */
};

/* A Gthulhu node intent (POST /api/v1/node-intents). */
struct api_node_policy {
	char policy_id[128], node_id[128];
	char command_regex[CFG_STR_MAX];
	long long priority, execution_time;
};

struct api_own {                    /* one of our own strategies, with its id */
	uint32_t id;
	struct cfg_strategy r;
};

enum api_req_kind { REQ_NONE, REQ_RELOAD, REQ_SWITCH };

struct api {
	struct cfg cfg;             /* copy taken at start; live keys updated under mu */
	char proc_root[256];
	struct api_keys keys;
	struct MHD_Daemon *mhd;
	char *tls_mem[2];           /* cert, key PEM (kept while the daemon runs) */
	pthread_t client_thr;
	bool client_running;
	atomic_bool stopping;

	pthread_mutex_t mu;
	pthread_cond_t cv;          /* a policy request was answered */
	pthread_mutex_t req_mu;     /* one policy request at a time */

	/* rules (merged by api_merge_rules) */
	atomic_uint_fast64_t gen_rules;   /* bumped on every change */
	uint64_t gen_rules_seen;          /* run loop's */
	struct api_own own[CFG_MAX_STRATEGIES];
	int nr_own;
	uint32_t next_id;
	struct api_intent *intents;       /* API_MAX_INTENTS */
	int nr_intents;
	struct api_node_policy *nodepol;  /* API_MAX_INTENTS */
	int nr_nodepol;
	char intents_root[65], nodepol_root[65];  /* merkle roots ("" = never set) */
	struct cfg_strategy remote[CFG_MAX_STRATEGIES];
	int nr_remote;
	int nr_cfg_rules;                 /* last merge's config part (for GET) */
	struct cfg_strategy cfg_rules[CFG_MAX_STRATEGIES];

	/* the run loop's view, published by api_poll */
	bool attached;
	uint64_t snap_at_ns;              /* run loop's only */
	uint64_t last_run_ns;             /* = snap_at_ns, under mu */
	struct api_counters counters;
	struct loop_stats loop;
	bool have_loop;
	char policy_path[CFG_PATH_MAX];
	char policy_sha256[65];
	time_t policy_loaded_at;
	uint64_t reloads, reload_errors, last_reloads_seen, last_rerr_seen;
	char policy_error[2048];
	struct strat_entry *resolved;     /* STRAT_MAX_RESOLVED */
	int nr_resolved;
	struct cfg_strategy resolved_rules[CFG_MAX_STRATEGIES]; /* rules the entries index */
	int nr_resolved_rules;

	/* policy request (REQ_*) handed to the run loop */
	atomic_int req_pending;
	enum api_req_kind req_kind;
	char req_path[CFG_PATH_MAX];
	bool req_done;
	int req_rc;
	char req_msg[2048];

	/* pending live config changes */
	atomic_int cfg_pending;
	struct cfg cfg_next;              /* the live keys to apply */
	bool cfg_rules_pending;           /* PUT /api/v1/config with "strategies" */
	struct cfg_strategy cfg_rules_next[CFG_MAX_STRATEGIES];
	int nr_cfg_rules_next;

	/* metrics reported to us (POST /api/v1/metrics) */
	bool have_reported;
	uint64_t reported[11];
	time_t reported_at;

	/* client mode */
	char client_state[256];           /* last state logged */
	uint64_t client_fetches, client_errors, client_auths;
};

extern const char *const api_metric_names[11];   /* the 11 counters, Gthulhu's names */

/* ---- json.c: request bodies. Every error names the field, e.g. "strategies[2].pid". */
json_t *api_json_parse(const char *body, size_t len, char *err, size_t errlen);
/* One strategy object of ours into *r. `where` prefixes field names in errors. */
int api_parse_strategy(json_t *o, const char *where, struct cfg_strategy *r, char *err,
		       size_t errlen);
/* {"strategies":[...], "replace":bool} or one strategy object. */
int api_parse_strategies(json_t *root, struct cfg_strategy *out, int max, int *n,
			 bool *replace, char *err, size_t errlen);
int api_parse_token_req(json_t *root, const char **pem, const char **client_id, char *err,
			size_t errlen);
int api_parse_intents(json_t *root, struct api_intent *out, int max, int *n, char *err,
		      size_t errlen);
int api_parse_node_policies(json_t *root, struct api_node_policy *out, int max, int *n,
			    char *err, size_t errlen);
int api_parse_metrics(json_t *root, uint64_t out[11], char *err, size_t errlen);
/* Gthulhu's GET /api/v1/scheduling/strategies answer (client mode) into rules. */
int api_parse_remote_strategies(json_t *root, struct cfg_strategy *out, int max, int *n,
				char *err, size_t errlen);
/* Our strategy as JSON (GET). */
json_t *api_strategy_json(const struct cfg_strategy *r);

/* ---- intents.c */
void api_intents_root(const struct api_intent *in, int n, char out[65]);
void api_nodepol_root(const struct api_node_policy *in, int n, char out[65]);
/* Rules for the merge: pod intents (pod_uid + regex; invalid POSIX regexes skipped with
 * a warning, as Gthulhu skips invalid ones) and node intents (regex). */
int api_intent_rules(const struct api *a, struct cfg_strategy *out, int max);
json_t *api_pods_json(const char *proc_root);

/* ---- reply.c: an endpoint's answer (server.c sends it) */
struct reply {
	int status;
	json_t *json;            /* or text */
	char *text;
	const char *ctype;
	const char *allow;       /* 405 */
};
void api_rfc3339(time_t t, char *buf, size_t len);
/* o.timestamp = now (RFC 3339). */
void api_stamp(json_t *o);
/* {"success":false,"error":MSG} with that status. */
void api_fail(struct reply *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Gthulhu's envelope: {"success":true,"data":DATA,"timestamp":...}; data NULL: omitted. */
void api_ok(struct reply *r, json_t *data);
/* Rules held by every source (a->mu held); bump the rules' generation after a change. */
int api_rules_in_use(const struct api *a);
void api_rules_changed(struct api *a);

/* ---- gthulhu.c: Gthulhu's decision-maker endpoints (body: the parsed JSON, or NULL) */
void api_h_health(struct api *a, struct reply *r);
void api_h_version(struct api *a, struct reply *r);
void api_h_token(struct api *a, json_t *body, struct reply *r);
void api_h_sched_strategies(struct api *a, struct reply *r);
void api_h_intents_post(struct api *a, json_t *body, struct reply *r);
void api_h_intents_delete(struct api *a, json_t *body, struct reply *r);
void api_h_merkle(struct api *a, bool node, struct reply *r);
void api_h_nodepol_post(struct api *a, json_t *body, struct reply *r);
void api_h_nodepol_delete(struct api *a, json_t *body, struct reply *r);
void api_h_metrics_post(struct api *a, json_t *body, struct reply *r);
void api_h_pods(struct api *a, struct reply *r);

/* ---- prom.c: GET /metrics */
void api_h_prom(struct api *a, struct reply *r);

/* ---- own.c: our endpoints */
void api_h_strategies_get(struct api *a, struct reply *r);
void api_h_strategies_post(struct api *a, json_t *body, struct reply *r);
void api_h_strategies_delete(struct api *a, const char *id_text, struct reply *r);
void api_h_policy_get(struct api *a, struct reply *r);
void api_h_policy_put(struct api *a, json_t *body, struct reply *r);
/* Hand a policy request (reload, switch) to the run loop and wait for its answer. */
void api_policy_request(struct api *a, enum api_req_kind kind, const char *path,
			struct reply *r);
void api_h_config_get(struct api *a, struct reply *r);
void api_h_config_put(struct api *a, json_t *body, struct reply *r);

/* ---- server.c */
int api_server_start(struct api *a, char *err, size_t errlen);
void api_server_stop(struct api *a);

/* ---- client.c */
int api_client_start(struct api *a, char *err, size_t errlen);
void api_client_stop(struct api *a);

#endif
