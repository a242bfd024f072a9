/* SPDX-License-Identifier: GPL-2.0 */
/*
 * api/own.c - our own endpoints: /api/v1/strategies (rules of our own), /api/v1/policy
 * (which policy runs, switching and uploading it, reload) and /api/v1/config (live keys).
 * Policy reloads and switches are handed to the run loop and waited for (at most
 * API_POLICY_WAIT_S), never run here.
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

void api_h_strategies_get(struct api *a, struct reply *r)
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
	api_ok(r, d);
}

void api_h_strategies_post(struct api *a, json_t *body, struct reply *r)
{
	struct cfg_strategy *tmp = calloc(CFG_MAX_STRATEGIES, sizeof(*tmp));
	char why[768];
	bool replace;
	int n;

	if (!tmp) {
		api_fail(r, 503, "out of memory");
		return;
	}
	if (api_parse_strategies(body, tmp, CFG_MAX_STRATEGIES, &n, &replace, why, sizeof(why))) {
		api_fail(r, 400, "%s", why);
		free(tmp);
		return;
	}
	/* The same safety bound as the config file's (1/8 of the watchdog). */
	for (int i = 0; i < n; i++) {
		if (tmp[i].execution_time > cfg_slice_max_ns(&a->cfg)) {
			api_fail(r, 400, "%sexecution_time: %llu ns is more than 1/8 of "
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
	if (api_rules_in_use(a) - a->nr_own + keep + n > CFG_MAX_STRATEGIES) {
		pthread_mutex_unlock(&a->mu);
		free(tmp);
		api_fail(r, 400, "strategies: %d more would make more than %d strategies in effect", n,
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
	api_rules_changed(a);
	json_t *d = own_list_json(a);
	json_object_set_new(d, "added", ids);
	pthread_mutex_unlock(&a->mu);
	free(tmp);
	api_ok(r, d);
}

void api_h_strategies_delete(struct api *a, const char *id_text, struct reply *r)
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
			api_fail(r, 400, "/api/v1/strategies/%s: the id must be a number", id_text);
			return;
		}
		for (int i = 0; i < a->nr_own; i++)
			if (a->own[i].id != id)
				a->own[m++] = a->own[i];
		a->nr_own = m;
		if (m == was) {
			pthread_mutex_unlock(&a->mu);
			api_fail(r, 404, "/api/v1/strategies/%lu: no strategy with that id", id);
			return;
		}
	}
	api_rules_changed(a);
	json_t *d = own_list_json(a);
	pthread_mutex_unlock(&a->mu);
	api_ok(r, d);
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

void api_h_policy_get(struct api *a, struct reply *r)
{
	pthread_mutex_lock(&a->mu);
	json_t *d = policy_json(a);
	pthread_mutex_unlock(&a->mu);
	api_ok(r, d);
}

/* Hand a reload (path NULL) or switch to the run loop and wait for its answer. */
void api_policy_request(struct api *a, enum api_req_kind kind, const char *path,
			struct reply *r)
{
	struct timespec dl;
	int rc;

	pthread_mutex_lock(&a->req_mu);
	pthread_mutex_lock(&a->mu);
	if (!a->attached) {
		pthread_mutex_unlock(&a->mu);
		pthread_mutex_unlock(&a->req_mu);
		api_fail(r, 503, "the scheduler is not attached: no policy to reload");
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
		api_fail(r, 503, "the scheduler did not take the request within %d s", API_POLICY_WAIT_S);
		return;
	}
	if (a->req_rc) {
		char msg[sizeof(a->req_msg)];
		snprintf(msg, sizeof(msg), "%s", a->req_msg);
		pthread_mutex_unlock(&a->mu);
		pthread_mutex_unlock(&a->req_mu);
		api_fail(r, 400, "policy rejected, the old one keeps running: %s", msg);
		return;
	}
	json_t *d = policy_json(a);
	pthread_mutex_unlock(&a->mu);
	pthread_mutex_unlock(&a->req_mu);
	api_ok(r, d);
}

/* path inside the policy dir (no "..", symlinks resolved, a regular .lua file) -> real. */
static bool policy_path_ok(struct api *a, const char *path, char *real, struct reply *r)
{
	char dir[PATH_MAX], joined[PATH_MAX * 2];
	struct stat st;
	size_t dl;

	if (!a->cfg.api_policy_dir[0]) {
		api_fail(r, 403, "path: switching policies is off (set api.policy_dir)");
		return false;
	}
	if (!realpath(a->cfg.api_policy_dir, dir)) {
		api_fail(r, 503, "api.policy_dir %s: %s", a->cfg.api_policy_dir, strerror(errno));
		return false;
	}
	for (const char *p = path; *p;) {             /* no ".." component, however spelt */
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			api_fail(r, 400, "path: '..' is not allowed");
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
		api_fail(r, 400, "path: %s: %s", path, strerror(errno));
		return false;
	}
	dl = strlen(dir);
	if (strncmp(real, dir, dl) || real[dl] != '/') {
		api_fail(r, 400, "path: %s is outside api.policy_dir %s (symlinks resolved)", path, dir);
		return false;
	}
	if (stat(real, &st) || !S_ISREG(st.st_mode)) {
		api_fail(r, 400, "path: %s is not a regular file", path);
		return false;
	}
	if (strlen(real) < 5 || strcmp(real + strlen(real) - 4, ".lua")) {
		api_fail(r, 400, "path: %s is not a .lua file", path);
		return false;
	}
	return true;
}

void api_h_policy_put(struct api *a, json_t *body, struct reply *r)
{
	json_t *p = json_object_get(body, "path"), *src = json_object_get(body, "source");
	json_t *name = json_object_get(body, "name");
	char real[PATH_MAX + 160], dir[PATH_MAX], tmp[PATH_MAX + 160];
	const char *k;
	json_t *v;

	json_object_foreach(body, k, v)
		if (strcmp(k, "path") && strcmp(k, "source") && strcmp(k, "name")) {
			api_fail(r, 400, "%.64s: unknown field (expected path, or name and source)", k);
			return;
		}
	if (p && src) {
		api_fail(r, 400, "path: give path, or name and source, not both");
		return;
	}
	if (p) {
		if (!json_is_string(p) || !json_string_length(p)) {
			api_fail(r, 400, "path: must be a non-empty string");
			return;
		}
		if (policy_path_ok(a, json_string_value(p), real, r))
			api_policy_request(a, REQ_SWITCH, real, r);
		return;
	}
	if (!src) {
		api_fail(r, 400, "path: required (or name and source to upload)");
		return;
	}
	if (!a->cfg.api_allow_policy_upload) {
		api_fail(r, 403, "source: policy upload is off (api.allow_policy_upload: false)");
		return;
	}
	if (!json_is_string(src) || !json_string_length(src)) {
		api_fail(r, 400, "source: must be a non-empty string (the policy's Lua source)");
		return;
	}
	const char *nm = json_is_string(name) ? json_string_value(name) : "";
	size_t nl = strlen(nm);
	bool good = nl > 4 && nl < 128 && nm[0] != '.' && !strcmp(nm + nl - 4, ".lua");
	for (size_t i = 0; good && i < nl; i++)
		good = (nm[i] >= 'a' && nm[i] <= 'z') || (nm[i] >= 'A' && nm[i] <= 'Z') ||
		       (nm[i] >= '0' && nm[i] <= '9') || nm[i] == '_' || nm[i] == '-' || nm[i] == '.';
	if (!good) {
		api_fail(r, 400, "name: a file name like my_policy.lua ([A-Za-z0-9._-], no '/', not "
			 "starting with '.')");
		return;
	}
	if (!a->cfg.api_policy_dir[0] || !realpath(a->cfg.api_policy_dir, dir)) {
		api_fail(r, 403, "name: uploading needs api.policy_dir");
		return;
	}
	snprintf(real, sizeof(real), "%s/%s", dir, nm);
	snprintf(tmp, sizeof(tmp), "%s/.%s.upload", dir, nm);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		api_fail(r, 503, "name: cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	size_t len = json_string_length(src);
	bool wrote = write(fd, json_string_value(src), len) == (ssize_t)len;
	if (close(fd) || !wrote) {
		unlink(tmp);
		api_fail(r, 503, "name: cannot write %s", tmp);
		return;
	}
	/* A new name only: an upload never overwrites a file (link fails if it exists). */
	if (link(tmp, real)) {
		int e = errno;
		unlink(tmp);
		api_fail(r, e == EEXIST ? 400 : 503, "name: %s: %s", nm,
			 e == EEXIST ? "exists (uploads never replace a file)" : strerror(e));
		return;
	}
	unlink(tmp);
	api_policy_request(a, REQ_SWITCH, real, r);
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

void api_h_config_get(struct api *a, struct reply *r)
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
	api_ok(r, d);
}

void api_h_config_put(struct api *a, json_t *body, struct reply *r)
{
	struct cfg *next = malloc(sizeof(*next));
	struct cfg_strategy *rules = NULL;
	json_t *applied = json_array(), *restart = json_array();
	char why[768], text[CFG_PATH_MAX];
	int nrules = -1;
	const char *k;
	json_t *v;

	if (!next) {
		api_fail(r, 503, "out of memory");
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
				api_fail(r, 400, "%s", rc == G_ERR_NOMEM ? "out of memory" : why);
				goto out;
			}
			json_array_append_new(applied, json_string("strategies"));
			continue;
		}
		int i = cfg_find_key(k);
		if (i < 0) {
			api_fail(r, 400, "%.128s: unknown config key", k);
			goto out;
		}
		if (json_is_boolean(v) && cfg_key_kind(i) == CFG_BOOL)
			snprintf(text, sizeof(text), "%s", json_is_true(v) ? "true" : "false");
		else if (json_is_integer(v) && cfg_key_kind(i) == CFG_INT)
			snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		else if (json_is_string(v) && cfg_key_kind(i) == CFG_STRING)
			snprintf(text, sizeof(text), "%s", json_string_value(v));
		else {
			api_fail(r, 400, "%s: must be a %s", k, cfg_key_kind(i) == CFG_BOOL ? "boolean" :
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
			api_fail(r, 400, "%s: %s", k, why);
			goto out;
		}
		json_array_append_new(applied, json_string(k));
	}
	pthread_mutex_lock(&a->mu);
	if (nrules >= 0 && api_rules_in_use(a) - a->nr_cfg_rules + nrules > CFG_MAX_STRATEGIES) {
		pthread_mutex_unlock(&a->mu);
		api_fail(r, 400, "strategies: %d would make more than %d strategies in effect", nrules,
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
	api_ok(r, json_pack("{s:O,s:O}", "applied", applied, "restart_required", restart));
out:
	json_decref(applied);
	json_decref(restart);
	free(rules);
	free(next);
}
