/* SPDX-License-Identifier: GPL-2.0 */
/*
 * api/gthulhu.c - the endpoints of Gthulhu's decision maker, answered as it answers them:
 * /health, /version, the token exchange, scheduling strategies, pod and node intents with
 * their merkle roots, metrics, pods' pids. Handlers only read and write the mailbox
 * (struct api, under a->mu).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "internal.h"

/* ---------------------------------------------------------------------------------- */
/* Gthulhu endpoints */

void api_h_health(struct api *a, struct reply *r)
{
	char ts[32];

	api_rfc3339(time(NULL), ts, sizeof(ts));
	r->status = 200;
	r->json = json_pack("{s:s,s:s,s:s}", "status", "healthy", "timestamp", ts, "service",
			    "gthulhu-lua");
}

void api_h_version(struct api *a, struct reply *r)
{
	r->status = 200;
	r->json = json_pack("{s:s,s:s,s:s}", "message", "gthulhu-lua API", "version",
			    GTHULHU_VERSION, "endpoints",
			    "/health, /version, /metrics, POST_/api/v1/auth/token, "
			    "GET_/api/v1/scheduling/strategies, POST_/api/v1/intents, "
			    "POST_/api/v1/node-intents, POST_/api/v1/metrics, GET_/api/v1/pods/pids, "
			    "/api/v1/strategies, /api/v1/policy, /api/v1/config");
}

void api_h_token(struct api *a, json_t *body, struct reply *r)
{
	const char *pem, *cid;
	char why[512], *tok = NULL;
	time_t exp;
	unsigned ttl;

	if (api_parse_token_req(body, &pem, &cid, why, sizeof(why))) {
		api_fail(r, 400, "Invalid request payload: %s", why);
		return;
	}
	if (!api_key_matches(&a->keys, pem, strlen(pem), why, sizeof(why))) {
		api_fail(r, 401, "Public key verification failed: %s", why);
		return;
	}
	pthread_mutex_lock(&a->mu);
	ttl = a->cfg.api_token_ttl_s;
	pthread_mutex_unlock(&a->mu);
	if (api_token_issue(&a->keys, cid, ttl, time(NULL), &tok, &exp, why, sizeof(why))) {
		api_fail(r, 503, "%s", why);
		return;
	}
	api_ok(r, json_pack("{s:s,s:I}", "token", tok, "expired_at", (json_int_t)exp));
	free(tok);
}

void api_h_sched_strategies(struct api *a, struct reply *r)
{
	json_t *list = json_array();

	pthread_mutex_lock(&a->mu);
	for (int i = 0; i < a->nr_resolved; i++) {
		const struct strat_entry *e = &a->resolved[i];
		json_t *o = json_object();
		json_object_set_new(o, "priority", json_integer(e->priority ? 1 : 0));
		json_object_set_new(o, "execution_time", json_integer((json_int_t)e->execution_time));
		json_object_set_new(o, "pid", json_integer(e->pid));
		if (e->rule >= 0 && e->rule < a->nr_resolved_rules &&
		    a->resolved_rules[e->rule].command_regex[0])
			json_object_set_new(o, "command_regex",
					    json_string(a->resolved_rules[e->rule].command_regex));
		json_array_append_new(list, o);
	}
	pthread_mutex_unlock(&a->mu);
	r->status = 200;
	r->json = json_object();
	json_object_set_new(r->json, "success", json_true());
	json_object_set_new(r->json, "message", json_string("Scheduling strategies retrieved successfully"));
	api_stamp(r->json);
	json_object_set_new(r->json, "scheduling", list);
}

static void free_intents(struct api_intent *t, int n)
{
	for (int i = 0; i < n; i++) {
		json_decref(t[i].labels_obj);
		t[i].labels_obj = NULL;
	}
}

void api_h_intents_post(struct api *a, json_t *body, struct reply *r)
{
	struct api_intent *tmp = calloc(API_MAX_INTENTS, sizeof(*tmp));
	char why[512];
	int n;

	if (!tmp) {
		api_fail(r, 503, "out of memory");
		return;
	}
	if (api_parse_intents(body, tmp, API_MAX_INTENTS, &n, why, sizeof(why))) {
		api_fail(r, 400, "Invalid request payload: %s", why);
		free(tmp);
		return;
	}
	pthread_mutex_lock(&a->mu);
	if (api_rules_in_use(a) - a->nr_intents + n > CFG_MAX_STRATEGIES) {
		pthread_mutex_unlock(&a->mu);
		free_intents(tmp, n);
		free(tmp);
		api_fail(r, 400, "intents: %d would make more than %d strategies in effect", n,
			 CFG_MAX_STRATEGIES);
		return;
	}
	free_intents(a->intents, a->nr_intents);
	memcpy(a->intents, tmp, (size_t)n * sizeof(*tmp));
	a->nr_intents = n;
	api_intents_root(a->intents, n, a->intents_root);
	api_rules_changed(a);
	pthread_mutex_unlock(&a->mu);
	free(tmp);
	g_info("api: %d intents stored", n);
	api_ok(r, NULL);
}

void api_h_intents_delete(struct api *a, json_t *body, struct reply *r)
{
	json_t *all = json_object_get(body, "all"), *pod = json_object_get(body, "podId");
	json_t *pid = json_object_get(body, "pid");

	if ((all && !json_is_boolean(all)) || (pod && !json_is_string(pod)) ||
	    (pid && !json_is_integer(pid) && !json_is_null(pid))) {
		api_fail(r, 400, "Invalid request payload: %s", all && !json_is_boolean(all) ?
			 "all: must be a boolean" : pod && !json_is_string(pod) ?
			 "podId: must be a string" : "pid: must be an integer");
		return;
	}
	pthread_mutex_lock(&a->mu);
	if (json_is_true(all)) {
		free_intents(a->intents, a->nr_intents);
		a->nr_intents = 0;
	} else if (!pod || !json_string_length(pod)) {
		pthread_mutex_unlock(&a->mu);
		api_fail(r, 400, "PodID is required when 'all' is false (podId)");
		return;
	} else if (!pid || json_is_null(pid)) {
		int m = 0;
		for (int i = 0; i < a->nr_intents; i++) {
			if (!strcmp(a->intents[i].pod_id, json_string_value(pod))) {
				json_decref(a->intents[i].labels_obj);
				continue;
			}
			a->intents[m++] = a->intents[i];
		}
		a->nr_intents = m;
	}
	/* podId + pid: like Gthulhu, it drops only the resolved entry, which the next
	 * resolution (every second here) brings back while the intent stays. */
	api_intents_root(a->intents, a->nr_intents, a->intents_root);
	api_rules_changed(a);
	pthread_mutex_unlock(&a->mu);
	api_ok(r, NULL);
}

void api_h_merkle(struct api *a, bool node, struct reply *r)
{
	pthread_mutex_lock(&a->mu);
	json_t *d = json_pack("{s:s}", "rootHash", node ? a->nodepol_root : a->intents_root);
	pthread_mutex_unlock(&a->mu);
	api_ok(r, d);
}

void api_h_nodepol_post(struct api *a, json_t *body, struct reply *r)
{
	struct api_node_policy *tmp = calloc(API_MAX_INTENTS, sizeof(*tmp));
	char why[512];
	int n;

	if (!tmp) {
		api_fail(r, 503, "out of memory");
		return;
	}
	if (api_parse_node_policies(body, tmp, API_MAX_INTENTS, &n, why, sizeof(why))) {
		api_fail(r, 400, "Invalid request payload: %s", why);
		free(tmp);
		return;
	}
	pthread_mutex_lock(&a->mu);
	if (api_rules_in_use(a) - a->nr_nodepol + n > CFG_MAX_STRATEGIES) {
		pthread_mutex_unlock(&a->mu);
		free(tmp);
		api_fail(r, 400, "policies: %d would make more than %d strategies in effect", n,
			 CFG_MAX_STRATEGIES);
		return;
	}
	memcpy(a->nodepol, tmp, (size_t)n * sizeof(*tmp));
	a->nr_nodepol = n;
	api_nodepol_root(a->nodepol, n, a->nodepol_root);
	api_rules_changed(a);
	pthread_mutex_unlock(&a->mu);
	free(tmp);
	api_ok(r, NULL);
}

void api_h_nodepol_delete(struct api *a, json_t *body, struct reply *r)
{
	json_t *all = json_object_get(body, "all"), *id = json_object_get(body, "policyId");

	if ((all && !json_is_boolean(all)) || (id && !json_is_string(id))) {
		api_fail(r, 400, "Invalid request payload: %s", all && !json_is_boolean(all) ?
			 "all: must be a boolean" : "policyId: must be a string");
		return;
	}
	if (!json_is_true(all) && (!id || !json_string_length(id))) {
		api_fail(r, 400, "policyId is required when 'all' is false");
		return;
	}
	pthread_mutex_lock(&a->mu);
	if (json_is_true(all)) {
		a->nr_nodepol = 0;
	} else {
		int m = 0;
		for (int i = 0; i < a->nr_nodepol; i++)
			if (strcmp(a->nodepol[i].policy_id, json_string_value(id)))
				a->nodepol[m++] = a->nodepol[i];
		a->nr_nodepol = m;
	}
	api_nodepol_root(a->nodepol, a->nr_nodepol, a->nodepol_root);
	api_rules_changed(a);
	pthread_mutex_unlock(&a->mu);
	api_ok(r, NULL);
}

void api_h_metrics_post(struct api *a, json_t *body, struct reply *r)
{
	uint64_t v[11];
	char why[256];

	if (api_parse_metrics(body, v, why, sizeof(why))) {
		api_fail(r, 400, "Invalid request payload: %s", why);
		return;
	}
	pthread_mutex_lock(&a->mu);
	memcpy(a->reported, v, sizeof(v));
	a->have_reported = true;
	a->reported_at = time(NULL);
	pthread_mutex_unlock(&a->mu);
	api_ok(r, NULL);
}

void api_h_pods(struct api *a, struct reply *r)
{
	char host[256] = "", ts[32];
	const char *env = getenv("NODE_NAME");

	gethostname(host, sizeof(host) - 1);
	api_rfc3339(time(NULL), ts, sizeof(ts));
	json_t *d = json_object();
	json_object_set_new(d, "pods", api_pods_json(a->proc_root));
	json_object_set_new(d, "timestamp", json_string(ts));
	json_object_set_new(d, "node_name", json_string(env && *env ? env : host));
	api_ok(r, d);
}
