/* SPDX-License-Identifier: GPL-2.0 */
/*
 * server.c - the HTTP server (libmicrohttpd, one thread per connection) and every
 * endpoint. Handlers only read and write the mailbox (struct api, under a->mu); policy
 * reloads and switches are handed to the run loop and waited for (at most
 * API_POLICY_WAIT_S), never run here.
 *
 * Errors: {"success":false,"error":"..."} naming the field or the endpoint; 400 bad JSON
 * or field, 401 token, 403 a feature that is off (api.policy_dir, upload), 404 no such
 * route, 405 wrong method (Allow header), 413 body over api.max_body_bytes, 503 the
 * scheduler is not attached (or did not answer).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <microhttpd.h>

#include "common.h"
#include "internal.h"

struct conn {
	char *body;
	size_t len, cap;
	bool too_big;
	bool started;
};

struct reply {
	int status;
	json_t *json;            /* or text */
	char *text;
	const char *ctype;
	const char *allow;       /* 405 */
};

void api_rfc3339(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void stamp(json_t *o)
{
	char ts[32];

	api_rfc3339(time(NULL), ts, sizeof(ts));
	json_object_set_new(o, "timestamp", json_string(ts));
}

static void fail(struct reply *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct reply *r, int status, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->status = status;
	r->json = json_pack("{s:b,s:s}", "success", 0, "error", msg);
}

/* Gthulhu's envelope: {"success":true,"data":DATA,"timestamp":...}; data NULL: omitted. */
static void ok(struct reply *r, json_t *data)
{
	r->status = 200;
	r->json = json_object();
	json_object_set_new(r->json, "success", json_true());
	if (data)
		json_object_set_new(r->json, "data", data);
	stamp(r->json);
}

/* ---------------------------------------------------------------------------------- */
/* rules bookkeeping */

static int rules_in_use(const struct api *a)
{
	return a->nr_own + a->nr_intents + a->nr_nodepol + a->nr_remote + a->nr_cfg_rules;
}

static void rules_changed(struct api *a)
{
	atomic_fetch_add(&a->gen_rules, 1);
}

/* ---------------------------------------------------------------------------------- */
/* Gthulhu endpoints */

static void h_health(struct api *a, struct reply *r)
{
	char ts[32];

	api_rfc3339(time(NULL), ts, sizeof(ts));
	r->status = 200;
	r->json = json_pack("{s:s,s:s,s:s}", "status", "healthy", "timestamp", ts, "service",
			    "gthulhu-lua");
}

static void h_version(struct api *a, struct reply *r)
{
	r->status = 200;
	r->json = json_pack("{s:s,s:s,s:s}", "message", "gthulhu-lua API", "version",
			    GTHULHU_VERSION, "endpoints",
			    "/health, /version, /metrics, POST_/api/v1/auth/token, "
			    "GET_/api/v1/scheduling/strategies, POST_/api/v1/intents, "
			    "POST_/api/v1/node-intents, POST_/api/v1/metrics, GET_/api/v1/pods/pids, "
			    "/api/v1/strategies, /api/v1/policy, /api/v1/config");
}

static void h_token(struct api *a, json_t *body, struct reply *r)
{
	const char *pem, *cid;
	char why[512], *tok = NULL;
	time_t exp;
	unsigned ttl;

	if (api_parse_token_req(body, &pem, &cid, why, sizeof(why))) {
		fail(r, 400, "Invalid request payload: %s", why);
		return;
	}
	if (!api_key_matches(&a->keys, pem, strlen(pem), why, sizeof(why))) {
		fail(r, 401, "Public key verification failed: %s", why);
		return;
	}
	pthread_mutex_lock(&a->mu);
	ttl = a->cfg.api_token_ttl_s;
	pthread_mutex_unlock(&a->mu);
	if (api_token_issue(&a->keys, cid, ttl, time(NULL), &tok, &exp, why, sizeof(why))) {
		fail(r, 503, "%s", why);
		return;
	}
	ok(r, json_pack("{s:s,s:I}", "token", tok, "expired_at", (json_int_t)exp));
	free(tok);
}

static void h_sched_strategies(struct api *a, struct reply *r)
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
	stamp(r->json);
	json_object_set_new(r->json, "scheduling", list);
}

static void free_intents(struct api_intent *t, int n)
{
	for (int i = 0; i < n; i++) {
		json_decref(t[i].labels_obj);
		t[i].labels_obj = NULL;
	}
}

static void h_intents_post(struct api *a, json_t *body, struct reply *r)
{
	struct api_intent *tmp = calloc(API_MAX_INTENTS, sizeof(*tmp));
	char why[512];
	int n;

	if (!tmp) {
		fail(r, 503, "out of memory");
		return;
	}
	if (api_parse_intents(body, tmp, API_MAX_INTENTS, &n, why, sizeof(why))) {
		fail(r, 400, "Invalid request payload: %s", why);
		free(tmp);
		return;
	}
	pthread_mutex_lock(&a->mu);
	if (rules_in_use(a) - a->nr_intents + n > CFG_MAX_STRATEGIES) {
		pthread_mutex_unlock(&a->mu);
		free_intents(tmp, n);
		free(tmp);
		fail(r, 400, "intents: %d would make more than %d strategies in effect", n,
		     CFG_MAX_STRATEGIES);
		return;
	}
	free_intents(a->intents, a->nr_intents);
	memcpy(a->intents, tmp, (size_t)n * sizeof(*tmp));
	a->nr_intents = n;
	api_intents_root(a->intents, n, a->intents_root);
	rules_changed(a);
	pthread_mutex_unlock(&a->mu);
	free(tmp);
	g_info("api: %d intents stored", n);
	ok(r, NULL);
}

static void h_intents_delete(struct api *a, json_t *body, struct reply *r)
{
	json_t *all = json_object_get(body, "all"), *pod = json_object_get(body, "podId");
	json_t *pid = json_object_get(body, "pid");

	if ((all && !json_is_boolean(all)) || (pod && !json_is_string(pod)) ||
	    (pid && !json_is_integer(pid) && !json_is_null(pid))) {
		fail(r, 400, "Invalid request payload: %s", all && !json_is_boolean(all) ?
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
		fail(r, 400, "PodID is required when 'all' is false (podId)");
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
	rules_changed(a);
	pthread_mutex_unlock(&a->mu);
	ok(r, NULL);
}

static void h_merkle(struct api *a, bool node, struct reply *r)
{
	pthread_mutex_lock(&a->mu);
	json_t *d = json_pack("{s:s}", "rootHash", node ? a->nodepol_root : a->intents_root);
	pthread_mutex_unlock(&a->mu);
	ok(r, d);
}

static void h_nodepol_post(struct api *a, json_t *body, struct reply *r)
{
	struct api_node_policy *tmp = calloc(API_MAX_INTENTS, sizeof(*tmp));
	char why[512];
	int n;

	if (!tmp) {
		fail(r, 503, "out of memory");
		return;
	}
	if (api_parse_node_policies(body, tmp, API_MAX_INTENTS, &n, why, sizeof(why))) {
		fail(r, 400, "Invalid request payload: %s", why);
		free(tmp);
		return;
	}
	pthread_mutex_lock(&a->mu);
	if (rules_in_use(a) - a->nr_nodepol + n > CFG_MAX_STRATEGIES) {
		pthread_mutex_unlock(&a->mu);
		free(tmp);
		fail(r, 400, "policies: %d would make more than %d strategies in effect", n,
		     CFG_MAX_STRATEGIES);
		return;
	}
	memcpy(a->nodepol, tmp, (size_t)n * sizeof(*tmp));
	a->nr_nodepol = n;
	api_nodepol_root(a->nodepol, n, a->nodepol_root);
	rules_changed(a);
	pthread_mutex_unlock(&a->mu);
	free(tmp);
	ok(r, NULL);
}

static void h_nodepol_delete(struct api *a, json_t *body, struct reply *r)
{
	json_t *all = json_object_get(body, "all"), *id = json_object_get(body, "policyId");

	if ((all && !json_is_boolean(all)) || (id && !json_is_string(id))) {
		fail(r, 400, "Invalid request payload: %s", all && !json_is_boolean(all) ?
		     "all: must be a boolean" : "policyId: must be a string");
		return;
	}
	if (!json_is_true(all) && (!id || !json_string_length(id))) {
		fail(r, 400, "policyId is required when 'all' is false");
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
	rules_changed(a);
	pthread_mutex_unlock(&a->mu);
	ok(r, NULL);
}

static void h_metrics_post(struct api *a, json_t *body, struct reply *r)
{
	uint64_t v[11];
	char why[256];

	if (api_parse_metrics(body, v, why, sizeof(why))) {
		fail(r, 400, "Invalid request payload: %s", why);
		return;
	}
	pthread_mutex_lock(&a->mu);
	memcpy(a->reported, v, sizeof(v));
	a->have_reported = true;
	a->reported_at = time(NULL);
	pthread_mutex_unlock(&a->mu);
	ok(r, NULL);
}

static void h_pods(struct api *a, struct reply *r)
{
	char host[256] = "", ts[32];
	const char *env = getenv("NODE_NAME");

	gethostname(host, sizeof(host) - 1);
	api_rfc3339(time(NULL), ts, sizeof(ts));
	json_t *d = json_object();
	json_object_set_new(d, "pods", api_pods_json(a->proc_root));
	json_object_set_new(d, "timestamp", json_string(ts));
	json_object_set_new(d, "node_name", json_string(env && *env ? env : host));
	ok(r, d);
}

/* ---------------------------------------------------------------------------------- */
/* GET /metrics: Prometheus text exposition */

struct buf {
	char *s;
	size_t len, cap;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (b->s && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t nc = (b->cap ? b->cap * 2 : 8192) + (size_t)n;
		char *ns = realloc(b->s, nc);
		if (!ns)
			return;
		b->s = ns;
		b->cap = nc;
	}
}

static void label_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			bprintf(b, "\\%c", *s);
		else if (*s == '\n')
			bprintf(b, "\\n");
		else
			bprintf(b, "%c", *s);
	}
}

static bool is_gauge(const char *k)
{
	static const char *const g[] = { "nr_queued", "nr_scheduled", "nr_running",
					 "nr_online_cpus", "nr_pending", "pending_entries",
					 "pending_oldest_ms", "host_stalled", "max_batch" };
	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++)
		if (!strcmp(k, g[i]))
			return true;
	return false;
}

static void histogram(struct buf *b, const char *name, const char *help, const uint64_t *h,
		      uint64_t base, uint64_t count, uint64_t sum_ns)
{
	uint64_t cum = 0;

	bprintf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (int k = 0; k < LOOP_HIST_BUCKETS - 1; k++) {
		cum += h[k];
		bprintf(b, "%s_bucket{le=\"%.9g\"} %" PRIu64 "\n", name, (double)(base << k) / 1e9, cum);
	}
	cum += h[LOOP_HIST_BUCKETS - 1];
	bprintf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.9f\n%s_count %" PRIu64 "\n",
		name, cum, name, (double)sum_ns / 1e9, name, count);
}

static void h_prom(struct api *a, struct reply *r)
{
	struct buf b = { 0 };
	char line[sizeof(a->counters.stats_line)];

	pthread_mutex_lock(&a->mu);
	snprintf(line, sizeof(line), "%s", a->counters.stats_line);
	bprintf(&b, "# HELP gthulhu_up 1 while the scheduler is attached (or a dry run runs)\n"
		"# TYPE gthulhu_up gauge\ngthulhu_up %d\n", a->attached ? 1 : 0);
	/* every key=value of the stats: line */
	for (char *save = NULL, *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(t, '=');
		if (!eq || eq == t)
			continue;
		*eq = '\0';
		bprintf(&b, "# HELP gthulhu_%s the stats: line's %s\n# TYPE gthulhu_%s %s\n"
			"gthulhu_%s %s\n", t, t, t, is_gauge(t) ? "gauge" : "counter", t, eq + 1);
	}
	bprintf(&b, "# HELP gthulhu_policy_info the policy running now\n"
		"# TYPE gthulhu_policy_info gauge\ngthulhu_policy_info{policy=\"");
	label_escape(&b, a->policy_path);
	bprintf(&b, "\",sha256=\"%s\"} 1\n", a->policy_sha256);
	bprintf(&b, "# HELP gthulhu_policy_reloads_total successful policy reloads and switches\n"
		"# TYPE gthulhu_policy_reloads_total counter\ngthulhu_policy_reloads_total %" PRIu64 "\n"
		"# HELP gthulhu_policy_reload_errors_total rejected reloads (the old policy kept running)\n"
		"# TYPE gthulhu_policy_reload_errors_total counter\n"
		"gthulhu_policy_reload_errors_total %" PRIu64 "\n", a->reloads, a->reload_errors);
	if (a->have_loop) {
		histogram(&b, "gthulhu_policy_batch_seconds", "time of one policy call (one batch)",
			  a->loop.hist_batch, LOOP_HIST_BATCH_BASE_NS, a->loop.batches, a->loop.pol_ns);
		histogram(&b, "gthulhu_policy_task_seconds", "policy call time per task of its batch",
			  a->loop.hist_task, LOOP_HIST_TASK_BASE_NS, a->loop.tasks, a->loop.pol_ns);
	}
	bprintf(&b, "# HELP gthulhu_strategies_resolved pids that strategies apply to now\n"
		"# TYPE gthulhu_strategies_resolved gauge\ngthulhu_strategies_resolved %d\n"
		"# HELP gthulhu_strategy_rules rules in effect, by source\n"
		"# TYPE gthulhu_strategy_rules gauge\n"
		"gthulhu_strategy_rules{source=\"api\"} %d\n"
		"gthulhu_strategy_rules{source=\"intents\"} %d\n"
		"gthulhu_strategy_rules{source=\"node_intents\"} %d\n"
		"gthulhu_strategy_rules{source=\"decision_maker\"} %d\n"
		"gthulhu_strategy_rules{source=\"config\"} %d\n",
		a->nr_resolved, a->nr_own, a->nr_intents, a->nr_nodepol, a->nr_remote,
		a->nr_cfg_rules);
	if (a->cfg.api_url[0])
		bprintf(&b, "# HELP gthulhu_client_fetches_total client mode: good strategy fetches\n"
			"# TYPE gthulhu_client_fetches_total counter\ngthulhu_client_fetches_total %" PRIu64 "\n"
			"# HELP gthulhu_client_errors_total client mode: failed exchanges\n"
			"# TYPE gthulhu_client_errors_total counter\ngthulhu_client_errors_total %" PRIu64 "\n"
			"# HELP gthulhu_client_auths_total client mode: tokens obtained\n"
			"# TYPE gthulhu_client_auths_total counter\ngthulhu_client_auths_total %" PRIu64 "\n",
			a->client_fetches, a->client_errors, a->client_auths);
	if (a->have_reported)
		for (int i = 0; i < 11; i++)
			bprintf(&b, "# HELP gthulhu_reported_%s last POST /api/v1/metrics value\n"
				"# TYPE gthulhu_reported_%s gauge\ngthulhu_reported_%s %" PRIu64 "\n",
				api_metric_names[i], api_metric_names[i], api_metric_names[i],
				a->reported[i]);
	pthread_mutex_unlock(&a->mu);
	r->status = 200;
	r->text = b.s ? b.s : strdup("");
	r->ctype = "text/plain; version=0.0.4; charset=utf-8";
}

/* ---------------------------------------------------------------------------------- */
/* our strategies */

static json_t *own_list_json(struct api *a)
{
	json_t *own = json_array(), *d = json_object();

	for (int i = 0; i < a->nr_own; i++) {
		json_t *o = api_strategy_json(&a->own[i].r);
		json_object_set_new(o, "id", json_integer(a->own[i].id));
		json_array_append_new(own, o);
	}
	json_object_set_new(d, "strategies", own);
	return d;
}

static void h_strategies_get(struct api *a, struct reply *r)
{
	pthread_mutex_lock(&a->mu);
	json_t *d = own_list_json(a);
	json_t *cfgl = json_array(), *rem = json_array(), *res = json_array();
	for (int i = 0; i < a->nr_cfg_rules; i++)
		json_array_append_new(cfgl, api_strategy_json(&a->cfg_rules[i]));
	for (int i = 0; i < a->nr_remote; i++)
		json_array_append_new(rem, api_strategy_json(&a->remote[i]));
	for (int i = 0; i < a->nr_resolved; i++)
		json_array_append_new(res, json_pack("{s:i,s:i,s:I}", "pid", a->resolved[i].pid,
						     "priority", a->resolved[i].priority ? 1 : 0,
						     "execution_time",
						     (json_int_t)a->resolved[i].execution_time));
	json_object_set_new(d, "config", cfgl);
	json_object_set_new(d, "decision_maker", rem);
	json_object_set_new(d, "intents", json_integer(a->nr_intents));
	json_object_set_new(d, "node_intents", json_integer(a->nr_nodepol));
	json_object_set_new(d, "resolved", res);
	pthread_mutex_unlock(&a->mu);
	ok(r, d);
}

static void h_strategies_post(struct api *a, json_t *body, struct reply *r)
{
	struct cfg_strategy *tmp = calloc(CFG_MAX_STRATEGIES, sizeof(*tmp));
	char why[768];
	bool replace;
	int n;

	if (!tmp) {
		fail(r, 503, "out of memory");
		return;
	}
	if (api_parse_strategies(body, tmp, CFG_MAX_STRATEGIES, &n, &replace, why, sizeof(why))) {
		fail(r, 400, "%s", why);
		free(tmp);
		return;
	}
	/* The same safety bound as the config file's (1/8 of the watchdog). */
	for (int i = 0; i < n; i++) {
		if (tmp[i].execution_time > cfg_slice_max_ns(&a->cfg)) {
			fail(r, 400, "%sexecution_time: %llu ns is more than 1/8 of "
			     "scheduler.watchdog_timeout_ms (%u ms): at most %llu",
			     n > 1 || json_object_get(body, "strategies") ? (snprintf(why, sizeof(why),
			     "strategies[%d].", i), why) : "", (unsigned long long)tmp[i].execution_time,
			     cfg_watchdog_ms(&a->cfg), (unsigned long long)cfg_slice_max_ns(&a->cfg));
			free(tmp);
			return;
		}
	}
	pthread_mutex_lock(&a->mu);
	int keep = replace ? 0 : a->nr_own;
	if (rules_in_use(a) - a->nr_own + keep + n > CFG_MAX_STRATEGIES) {
		pthread_mutex_unlock(&a->mu);
		free(tmp);
		fail(r, 400, "strategies: %d more would make more than %d strategies in effect", n,
		     CFG_MAX_STRATEGIES);
		return;
	}
	a->nr_own = keep;
	json_t *ids = json_array();
	for (int i = 0; i < n; i++) {
		a->own[a->nr_own].id = ++a->next_id;
		a->own[a->nr_own].r = tmp[i];
		json_array_append_new(ids, json_integer(a->next_id));
		a->nr_own++;
	}
	rules_changed(a);
	json_t *d = own_list_json(a);
	json_object_set_new(d, "added", ids);
	pthread_mutex_unlock(&a->mu);
	free(tmp);
	ok(r, d);
}

static void h_strategies_delete(struct api *a, const char *id_text, struct reply *r)
{
	pthread_mutex_lock(&a->mu);
	if (!id_text) {
		a->nr_own = 0;
	} else {
		char *end;
		unsigned long id = strtoul(id_text, &end, 10);
		int m = 0, was = a->nr_own;
		if (*end || !*id_text) {
			pthread_mutex_unlock(&a->mu);
			fail(r, 400, "/api/v1/strategies/%s: the id must be a number", id_text);
			return;
		}
		for (int i = 0; i < a->nr_own; i++)
			if (a->own[i].id != id)
				a->own[m++] = a->own[i];
		a->nr_own = m;
		if (m == was) {
			pthread_mutex_unlock(&a->mu);
			fail(r, 404, "/api/v1/strategies/%lu: no strategy with that id", id);
			return;
		}
	}
	rules_changed(a);
	json_t *d = own_list_json(a);
	pthread_mutex_unlock(&a->mu);
	ok(r, d);
}

/* ---------------------------------------------------------------------------------- */
/* policy */

static json_t *policy_json(struct api *a)
{
	char ts[32] = "";

	if (a->policy_loaded_at)
		api_rfc3339(a->policy_loaded_at, ts, sizeof(ts));
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:b}", "path", a->policy_path,
			 "sha256", a->policy_sha256, "loaded_at", ts, "reloads",
			 (json_int_t)a->reloads, "reload_errors", (json_int_t)a->reload_errors,
			 "last_error", a->policy_error, "policy_dir", a->cfg.api_policy_dir,
			 "allow_policy_upload", a->cfg.api_allow_policy_upload);
}

static void h_policy_get(struct api *a, struct reply *r)
{
	pthread_mutex_lock(&a->mu);
	json_t *d = policy_json(a);
	pthread_mutex_unlock(&a->mu);
	ok(r, d);
}

/* Hand a reload (path NULL) or switch to the run loop and wait for its answer. */
static void policy_request(struct api *a, enum api_req_kind kind, const char *path,
			   struct reply *r)
{
	struct timespec dl;
	int rc;

	pthread_mutex_lock(&a->req_mu);
	pthread_mutex_lock(&a->mu);
	if (!a->attached) {
		pthread_mutex_unlock(&a->mu);
		pthread_mutex_unlock(&a->req_mu);
		fail(r, 503, "the scheduler is not attached: no policy to reload");
		return;
	}
	a->req_kind = kind;
	snprintf(a->req_path, sizeof(a->req_path), "%s", path ? path : "");
	a->req_done = false;
	atomic_store(&a->req_pending, 1);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += API_POLICY_WAIT_S;
	rc = 0;
	while (!a->req_done && rc != ETIMEDOUT && !atomic_load(&a->stopping))
		rc = pthread_cond_timedwait(&a->cv, &a->mu, &dl);
	if (!a->req_done) {
		a->req_kind = REQ_NONE;          /* the loop ignores it if it has not started */
		atomic_store(&a->req_pending, 0);
		pthread_mutex_unlock(&a->mu);
		pthread_mutex_unlock(&a->req_mu);
		fail(r, 503, "the scheduler did not take the request within %d s", API_POLICY_WAIT_S);
		return;
	}
	if (a->req_rc) {
		char msg[sizeof(a->req_msg)];
		snprintf(msg, sizeof(msg), "%s", a->req_msg);
		pthread_mutex_unlock(&a->mu);
		pthread_mutex_unlock(&a->req_mu);
		fail(r, 400, "policy rejected, the old one keeps running: %s", msg);
		return;
	}
	json_t *d = policy_json(a);
	pthread_mutex_unlock(&a->mu);
	pthread_mutex_unlock(&a->req_mu);
	ok(r, d);
}

/* path inside the policy dir (no "..", symlinks resolved, a regular .lua file) -> real. */
static bool policy_path_ok(struct api *a, const char *path, char *real, struct reply *r)
{
	char dir[PATH_MAX], joined[PATH_MAX * 2];
	struct stat st;
	size_t dl;

	if (!a->cfg.api_policy_dir[0]) {
		fail(r, 403, "path: switching policies is off (set api.policy_dir)");
		return false;
	}
	if (!realpath(a->cfg.api_policy_dir, dir)) {
		fail(r, 503, "api.policy_dir %s: %s", a->cfg.api_policy_dir, strerror(errno));
		return false;
	}
	for (const char *p = path; *p;) {             /* no ".." component, however spelt */
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			fail(r, 400, "path: '..' is not allowed");
			return false;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	if (path[0] == '/')
		snprintf(joined, sizeof(joined), "%s", path);
	else
		snprintf(joined, sizeof(joined), "%s/%s", dir, path);
	if (!realpath(joined, real)) {
		fail(r, 400, "path: %s: %s", path, strerror(errno));
		return false;
	}
	dl = strlen(dir);
	if (strncmp(real, dir, dl) || real[dl] != '/') {
		fail(r, 400, "path: %s is outside api.policy_dir %s (symlinks resolved)", path, dir);
		return false;
	}
	if (stat(real, &st) || !S_ISREG(st.st_mode)) {
		fail(r, 400, "path: %s is not a regular file", path);
		return false;
	}
	if (strlen(real) < 5 || strcmp(real + strlen(real) - 4, ".lua")) {
		fail(r, 400, "path: %s is not a .lua file", path);
		return false;
	}
	return true;
}

static void h_policy_put(struct api *a, json_t *body, struct reply *r)
{
	json_t *p = json_object_get(body, "path"), *src = json_object_get(body, "source");
	json_t *name = json_object_get(body, "name");
	char real[PATH_MAX + 160], dir[PATH_MAX], tmp[PATH_MAX + 160];
	const char *k;
	json_t *v;

	json_object_foreach(body, k, v)
		if (strcmp(k, "path") && strcmp(k, "source") && strcmp(k, "name")) {
			fail(r, 400, "%.64s: unknown field (expected path, or name and source)", k);
			return;
		}
	if (p && src) {
		fail(r, 400, "path: give path, or name and source, not both");
		return;
	}
	if (p) {
		if (!json_is_string(p) || !json_string_length(p)) {
			fail(r, 400, "path: must be a non-empty string");
			return;
		}
		if (policy_path_ok(a, json_string_value(p), real, r))
			policy_request(a, REQ_SWITCH, real, r);
		return;
	}
	if (!src) {
		fail(r, 400, "path: required (or name and source to upload)");
		return;
	}
	if (!a->cfg.api_allow_policy_upload) {
		fail(r, 403, "source: policy upload is off (api.allow_policy_upload: false)");
		return;
	}
	if (!json_is_string(src) || !json_string_length(src)) {
		fail(r, 400, "source: must be a non-empty string (the policy's Lua source)");
		return;
	}
	const char *nm = json_is_string(name) ? json_string_value(name) : "";
	size_t nl = strlen(nm);
	bool good = nl > 4 && nl < 128 && nm[0] != '.' && !strcmp(nm + nl - 4, ".lua");
	for (size_t i = 0; good && i < nl; i++)
		good = (nm[i] >= 'a' && nm[i] <= 'z') || (nm[i] >= 'A' && nm[i] <= 'Z') ||
		       (nm[i] >= '0' && nm[i] <= '9') || nm[i] == '_' || nm[i] == '-' || nm[i] == '.';
	if (!good) {
		fail(r, 400, "name: a file name like my_policy.lua ([A-Za-z0-9._-], no '/', not "
		     "starting with '.')");
		return;
	}
	if (!a->cfg.api_policy_dir[0] || !realpath(a->cfg.api_policy_dir, dir)) {
		fail(r, 403, "name: uploading needs api.policy_dir");
		return;
	}
	snprintf(real, sizeof(real), "%s/%s", dir, nm);
	snprintf(tmp, sizeof(tmp), "%s/.%s.upload", dir, nm);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		fail(r, 503, "name: cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	size_t len = json_string_length(src);
	bool wrote = write(fd, json_string_value(src), len) == (ssize_t)len;
	if (close(fd) || !wrote) {
		unlink(tmp);
		fail(r, 503, "name: cannot write %s", tmp);
		return;
	}
	/* A new name only: an upload never overwrites a file (link fails if it exists). */
	if (link(tmp, real)) {
		int e = errno;
		unlink(tmp);
		fail(r, e == EEXIST ? 400 : 503, "name: %s: %s", nm,
		     e == EEXIST ? "exists (uploads never replace a file)" : strerror(e));
		return;
	}
	unlink(tmp);
	policy_request(a, REQ_SWITCH, real, r);
	if (r->status != 200)
		unlink(real);                 /* rejected: the upload leaves nothing behind */
}

/* ---------------------------------------------------------------------------------- */
/* config */

static json_t *value_json(const struct cfg *c, int i)
{
	char text[CFG_PATH_MAX];

	cfg_get_text(c, i, text, sizeof(text));
	switch (cfg_key_kind(i)) {
	case CFG_BOOL: return json_boolean(!strcmp(text, "true"));
	case CFG_INT: return json_integer((json_int_t)strtoull(text, NULL, 10));
	default: return json_string(text);
	}
}

static void h_config_get(struct api *a, struct reply *r)
{
	json_t *keys = json_object(), *live = json_array(), *restart = json_array();

	pthread_mutex_lock(&a->mu);
	for (int i = 0; i < cfg_nr_keys(); i++) {
		json_object_set_new(keys, cfg_key(i), value_json(&a->cfg, i));
		json_array_append_new(cfg_key_live(i) ? live : restart, json_string(cfg_key(i)));
	}
	json_t *st = json_array();
	for (int i = 0; i < a->nr_cfg_rules; i++)
		json_array_append_new(st, api_strategy_json(&a->cfg_rules[i]));
	json_object_set_new(keys, "strategies", st);
	json_array_append_new(live, json_string("strategies"));
	json_t *d = json_pack("{s:o,s:o,s:o,s:s}", "config", keys, "live", live, "restart_only",
			      restart, "file", a->cfg.file);
	pthread_mutex_unlock(&a->mu);
	ok(r, d);
}

static void h_config_put(struct api *a, json_t *body, struct reply *r)
{
	struct cfg *next = malloc(sizeof(*next));
	struct cfg_strategy *rules = NULL;
	json_t *applied = json_array(), *restart = json_array();
	char why[768], text[CFG_PATH_MAX];
	int nrules = -1;
	const char *k;
	json_t *v;

	if (!next) {
		fail(r, 503, "out of memory");
		goto out;
	}
	pthread_mutex_lock(&a->mu);
	memcpy(next, atomic_load(&a->cfg_pending) ? &a->cfg_next : &a->cfg, sizeof(*next));
	pthread_mutex_unlock(&a->mu);
	json_object_foreach(body, k, v) {
		if (!strcmp(k, "strategies")) {
			bool rep;
			rules = calloc(CFG_MAX_STRATEGIES, sizeof(*rules));
			json_t *wrap = json_pack("{s:O}", "strategies", v);
			int rc = rules ? api_parse_strategies(wrap, rules, CFG_MAX_STRATEGIES, &nrules,
							      &rep, why, sizeof(why)) : G_ERR_NOMEM;
			json_decref(wrap);
			if (rc) {
				fail(r, 400, "%s", rc == G_ERR_NOMEM ? "out of memory" : why);
				goto out;
			}
			json_array_append_new(applied, json_string("strategies"));
			continue;
		}
		int i = cfg_find_key(k);
		if (i < 0) {
			fail(r, 400, "%.128s: unknown config key", k);
			goto out;
		}
		if (json_is_boolean(v) && cfg_key_kind(i) == CFG_BOOL)
			snprintf(text, sizeof(text), "%s", json_is_true(v) ? "true" : "false");
		else if (json_is_integer(v) && cfg_key_kind(i) == CFG_INT)
			snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		else if (json_is_string(v) && cfg_key_kind(i) == CFG_STRING)
			snprintf(text, sizeof(text), "%s", json_string_value(v));
		else {
			fail(r, 400, "%s: must be a %s", k, cfg_key_kind(i) == CFG_BOOL ? "boolean" :
			     cfg_key_kind(i) == CFG_INT ? "integer" : "string");
			goto out;
		}
		char cur[CFG_PATH_MAX];
		cfg_get_text(next, i, cur, sizeof(cur));
		if (!cfg_key_live(i)) {
			if (strcmp(cur, text))
				json_array_append_new(restart, json_string(k));
			continue;
		}
		if (cfg_set_text(next, i, text, why, sizeof(why))) {
			fail(r, 400, "%s: %s", k, why);
			goto out;
		}
		json_array_append_new(applied, json_string(k));
	}
	pthread_mutex_lock(&a->mu);
	if (nrules >= 0 && rules_in_use(a) - a->nr_cfg_rules + nrules > CFG_MAX_STRATEGIES) {
		pthread_mutex_unlock(&a->mu);
		fail(r, 400, "strategies: %d would make more than %d strategies in effect", nrules,
		     CFG_MAX_STRATEGIES);
		goto out;
	}
	memcpy(&a->cfg_next, next, sizeof(*next));
	if (nrules >= 0) {
		memcpy(a->cfg_rules_next, rules, (size_t)nrules * sizeof(*rules));
		a->nr_cfg_rules_next = nrules;
		a->cfg_rules_pending = true;
	}
	atomic_store(&a->cfg_pending, 1);
	pthread_mutex_unlock(&a->mu);
	if (json_array_size(restart))
		g_warn("api: PUT /api/v1/config: not applied, need a restart: %s",
		       json_string_value(json_array_get(restart, 0)));
	ok(r, json_pack("{s:O,s:O}", "applied", applied, "restart_required", restart));
out:
	json_decref(applied);
	json_decref(restart);
	free(rules);
	free(next);
}

/* ---------------------------------------------------------------------------------- */
/* routing */

enum { M_GET = 1, M_POST = 2, M_PUT = 4, M_DELETE = 8 };

struct route {
	const char *path;
	unsigned methods;
	bool auth;           /* needs a token (when api.auth is on) */
	bool prefix;         /* path + "/ID" */
};

static const struct route routes[] = {
	{ "/health", M_GET, false, false },
	{ "/version", M_GET, false, false },
	{ "/metrics", M_GET, false, false },
	{ "/api/v1/auth/token", M_POST, false, false },
	{ "/api/v1/scheduling/strategies", M_GET, true, false },
	{ "/api/v1/intents", M_POST | M_DELETE, true, false },
	{ "/api/v1/intents/merkle", M_GET, true, false },
	{ "/api/v1/node-intents", M_POST | M_DELETE, true, false },
	{ "/api/v1/node-intents/merkle", M_GET, true, false },
	{ "/api/v1/metrics", M_POST, true, false },
	{ "/api/v1/pods/pids", M_GET, true, false },
	{ "/api/v1/strategies", M_GET | M_POST | M_DELETE, true, false },
	{ "/api/v1/strategies", M_DELETE, true, true },
	{ "/api/v1/policy", M_GET | M_PUT, true, false },
	{ "/api/v1/policy/reload", M_POST, true, false },
	{ "/api/v1/config", M_GET | M_PUT, true, false },
};

static const char *allow_text(unsigned m)
{
	static const char *const t[16] = {
		"", "GET", "POST", "GET, POST", "PUT", "GET, PUT", "POST, PUT", "GET, POST, PUT",
		"DELETE", "GET, DELETE", "POST, DELETE", "GET, POST, DELETE", "PUT, DELETE",
		"GET, PUT, DELETE", "POST, PUT, DELETE", "GET, POST, PUT, DELETE" };
	return t[m & 15];
}

static void dispatch(struct api *a, struct MHD_Connection *c, const char *url,
		     const char *method, struct conn *cn, struct reply *r)
{
	unsigned m = !strcmp(method, "GET") ? M_GET : !strcmp(method, "POST") ? M_POST :
		     !strcmp(method, "PUT") ? M_PUT : !strcmp(method, "DELETE") ? M_DELETE : 0;
	const struct route *rt = NULL;
	const char *id = NULL;
	unsigned allowed = 0;
	char why[512];

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *x = &routes[i];
		size_t pl = strlen(x->path);
		bool match = x->prefix ? !strncmp(url, x->path, pl) && url[pl] == '/' && url[pl + 1]
				       : !strcmp(url, x->path);
		if (!match)
			continue;
		allowed |= x->methods;
		if (m & x->methods) {
			rt = x;
			id = x->prefix ? url + pl + 1 : NULL;
			break;
		}
	}
	if (!allowed) {
		fail(r, 404, "%s: no such endpoint", url);
		return;
	}
	if (!rt) {
		fail(r, 405, "%s %s: method not allowed (allowed: %s)", method, url, allow_text(allowed));
		r->allow = allow_text(allowed);
		return;
	}
	if (cn->too_big) {
		fail(r, 413, "%s: request body larger than api.max_body_bytes (%u)", url,
		     a->cfg.api_max_body_bytes);
		return;
	}
	if (rt->auth && a->cfg.api_auth) {
		const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
		char cid[128];
		if (!h || !*h) {
			fail(r, 401, "Authorization header is required");
			return;
		}
		if (strncmp(h, "Bearer ", 7)) {
			fail(r, 401, "Authorization header must start with 'Bearer '");
			return;
		}
		if (api_token_verify(&a->keys, h + 7, time(NULL), cid, sizeof(cid), why, sizeof(why))) {
			fail(r, 401, "Invalid or expired token: %s", why);
			return;
		}
	}
	json_t *body = NULL;
	bool needs_body = m == M_POST || m == M_PUT ||
			  (m == M_DELETE && (!strcmp(rt->path, "/api/v1/intents") ||
					     !strcmp(rt->path, "/api/v1/node-intents")));
	if (needs_body && strcmp(rt->path, "/api/v1/policy/reload")) {
		body = api_json_parse(cn->body, cn->len, why, sizeof(why));
		if (!body) {
			fail(r, 400, "Invalid request payload: %s", why);
			return;
		}
	}
	const char *p = rt->path;
	if (!strcmp(p, "/health")) h_health(a, r);
	else if (!strcmp(p, "/version")) h_version(a, r);
	else if (!strcmp(p, "/metrics")) h_prom(a, r);
	else if (!strcmp(p, "/api/v1/auth/token")) h_token(a, body, r);
	else if (!strcmp(p, "/api/v1/scheduling/strategies")) h_sched_strategies(a, r);
	else if (!strcmp(p, "/api/v1/intents")) m == M_POST ? h_intents_post(a, body, r) : h_intents_delete(a, body, r);
	else if (!strcmp(p, "/api/v1/intents/merkle")) h_merkle(a, false, r);
	else if (!strcmp(p, "/api/v1/node-intents")) m == M_POST ? h_nodepol_post(a, body, r) : h_nodepol_delete(a, body, r);
	else if (!strcmp(p, "/api/v1/node-intents/merkle")) h_merkle(a, true, r);
	else if (!strcmp(p, "/api/v1/metrics")) h_metrics_post(a, body, r);
	else if (!strcmp(p, "/api/v1/pods/pids")) h_pods(a, r);
	else if (!strcmp(p, "/api/v1/strategies")) {
		if (m == M_GET) h_strategies_get(a, r);
		else if (m == M_POST) h_strategies_post(a, body, r);
		else h_strategies_delete(a, id, r);
	}
	else if (!strcmp(p, "/api/v1/policy")) m == M_GET ? h_policy_get(a, r) : h_policy_put(a, body, r);
	else if (!strcmp(p, "/api/v1/policy/reload")) policy_request(a, REQ_RELOAD, NULL, r);
	else if (!strcmp(p, "/api/v1/config")) m == M_GET ? h_config_get(a, r) : h_config_put(a, body, r);
	json_decref(body);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct reply *r)
{
	char *text = r->text;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!text) {
		text = r->json ? json_dumps(r->json, JSON_COMPACT) : NULL;
		if (text) {
			size_t l = strlen(text);
			char *t2 = realloc(text, l + 2);
			if (t2) {
				text = t2;
				text[l] = '\n';
				text[l + 1] = '\0';
			}
		}
		r->ctype = "application/json";
	}
	if (!text)
		text = strdup("{\"success\":false,\"error\":\"out of memory\"}\n");
	if (!text)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", r->ctype);
	if (r->allow)
		MHD_add_response_header(resp, "Allow", r->allow);
	ret = MHD_queue_response(c, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	json_decref(r->json);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct api *a = cls;
	struct conn *cn = *con_cls;
	struct reply r = { 0 };

	if (!cn) {
		cn = calloc(1, sizeof(*cn));
		if (!cn)
			return MHD_NO;
		*con_cls = cn;
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > a->cfg.api_max_body_bytes) {
			/* Answer at once: the body is never read (MHD closes the connection). */
			cn->too_big = true;
			dispatch(a, c, url, method, cn, &r);
			return send_reply(c, &r);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		if (cn->too_big || cn->len + n > a->cfg.api_max_body_bytes) {
			cn->too_big = true;            /* read and drop the rest */
			free(cn->body);
			cn->body = NULL;
			cn->len = cn->cap = 0;
			return MHD_YES;
		}
		if (cn->len + n + 1 > cn->cap) {
			size_t nc = (cn->len + n + 1) * 2;
			char *nb = realloc(cn->body, nc);
			if (!nb)
				return MHD_NO;
			cn->body = nb;
			cn->cap = nc;
		}
		memcpy(cn->body + cn->len, upload_data, n);
		cn->len += n;
		cn->body[cn->len] = '\0';
		return MHD_YES;
	}
	dispatch(a, c, url, method, cn, &r);
	return send_reply(c, &r);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	struct conn *cn = *con_cls;

	if (cn) {
		free(cn->body);
		free(cn);
	}
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	if (g_verbose < 1)
		return;
	fprintf(stderr, "gthulhu-lua: api: ");
	vfprintf(stderr, fmt, ap);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = n >= 0 && n < (1 << 20) ? malloc((size_t)n + 1) : NULL;
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[n] = '\0';
	fclose(f);
	return buf;
}

int api_server_start(struct api *a, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_ERROR_LOG;
	char *cert = NULL, *key = NULL;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, a->cfg.api_listen, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)a->cfg.api_port);
	} else if (inet_pton(AF_INET6, a->cfg.api_listen, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)a->cfg.api_port);
		flags |= MHD_USE_IPv6;
	} else {
		set_err(err, errlen, "api.listen: '%s' is not an IPv4 or IPv6 address", a->cfg.api_listen);
		return G_ERR;
	}
	if (a->cfg.api_tls_cert[0] || a->cfg.api_tls_key[0]) {
		if (!a->cfg.api_tls_cert[0] || !a->cfg.api_tls_key[0]) {
			set_err(err, errlen, "api.tls_cert and api.tls_key: set both or neither");
			return G_ERR;
		}
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			set_err(err, errlen, "api.tls_cert: this libmicrohttpd has no TLS support");
			return G_ERR;
		}
		if (!(cert = slurp(a->cfg.api_tls_cert))) {
			set_err(err, errlen, "api.tls_cert: %s: %s", a->cfg.api_tls_cert, strerror(errno));
			return G_ERR;
		}
		if (!(key = slurp(a->cfg.api_tls_key))) {
			set_err(err, errlen, "api.tls_key: %s: %s", a->cfg.api_tls_key, strerror(errno));
			free(cert);
			return G_ERR;
		}
		flags |= MHD_USE_TLS;
	}
	if (cert)
		a->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, a,
			MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned)a->cfg.api_max_connections,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
			MHD_OPTION_THREAD_STACK_SIZE, (size_t)API_THREAD_STACK,
			MHD_OPTION_NOTIFY_COMPLETED, on_done, a,
			MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a,
			MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_CERT, cert,
			MHD_OPTION_END);
	else
		a->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, a,
			MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned)a->cfg.api_max_connections,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
			MHD_OPTION_THREAD_STACK_SIZE, (size_t)API_THREAD_STACK,
			MHD_OPTION_NOTIFY_COMPLETED, on_done, a,
			MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a,
			MHD_OPTION_END);
	a->tls_mem[0] = cert;        /* freed by api_server_stop() */
	a->tls_mem[1] = key;
	if (!a->mhd) {
		set_err(err, errlen, "api.listen/api.port: cannot serve on %s port %u%s (address in "
			"use, or a bad TLS key/cert)", a->cfg.api_listen, a->cfg.api_port,
			(flags & MHD_USE_TLS) ? " with TLS" : "");
		return G_ERR;
	}
	return G_OK;
}

void api_server_stop(struct api *a)
{
	if (a->mhd)
		MHD_stop_daemon(a->mhd);
	a->mhd = NULL;
	free(a->tls_mem[0]);
	free(a->tls_mem[1]);
	a->tls_mem[0] = a->tls_mem[1] = NULL;
}
