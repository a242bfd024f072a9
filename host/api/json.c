/* SPDX-License-Identifier: GPL-2.0 */
/*
 * json.c - request and answer bodies of the API, parsed with jansson. Every error names
 * the offending field ("strategies[2].execution_time: ..."). Our own endpoints are strict
 * (an unknown field is an error: a misspelt "priority" must not silently do nothing);
 * Gthulhu's are as lenient as Gthulhu's Go decoder (unknown fields ignored), but a field
 * of the wrong type is still an error.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"

const char *const api_metric_names[11] = {
	"usersched_last_run_at", "nr_queued", "nr_scheduled", "nr_running", "nr_online_cpus",
	"nr_user_dispatches", "nr_kernel_dispatches", "nr_cancel_dispatches",
	"nr_bounce_dispatches", "nr_failed_dispatches", "nr_sched_congested",
};

json_t *api_json_parse(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t e;
	json_t *j;

	if (!body || !len) {
		set_err(err, errlen, "empty body (expected a JSON object)");
		return NULL;
	}
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (!j) {
		set_err(err, errlen, "malformed JSON at line %d column %d: %s", e.line, e.column,
			e.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		set_err(err, errlen, "the body must be a JSON object");
		json_decref(j);
		return NULL;
	}
	return j;
}

/* Optional string field; false (err set) when present with another type or too long. */
static bool get_str(json_t *o, const char *where, const char *k, char *dst, size_t size,
		    char *err, size_t errlen)
{
	json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v))
		return true;
	if (!json_is_string(v)) {
		set_err(err, errlen, "%s%s: must be a string", where, k);
		return false;
	}
	if (json_string_length(v) >= size || strlen(json_string_value(v)) != json_string_length(v)) {
		set_err(err, errlen, "%s%s: at most %zu bytes, no NUL", where, k, size - 1);
		return false;
	}
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return true;
}

/* Optional integer field within [lo, hi]. */
static bool get_int(json_t *o, const char *where, const char *k, long long lo, long long hi,
		    long long *dst, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v))
		return true;
	if (!json_is_integer(v)) {
		set_err(err, errlen, "%s%s: must be an integer", where, k);
		return false;
	}
	long long x = json_integer_value(v);
	if (x < lo || x > hi) {
		set_err(err, errlen, "%s%s: %lld is out of range [%lld, %lld]", where, k, x, lo, hi);
		return false;
	}
	*dst = x;
	return true;
}

int api_parse_strategy(json_t *o, const char *where, struct cfg_strategy *r, char *err,
		       size_t errlen)
{
	static const char *const known[] = { "pid", "tgid", "command_regex", "cgroup", "pod_uid",
					     "container_id", "priority", "execution_time", "id",
					     "source" };
	char why[512], text[CFG_STR_MAX];
	const char *k;
	json_t *v;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(o)) {
		size_t wl = strlen(where);
		set_err(err, errlen, "%.*s: must be an object", wl ? (int)wl - 1 : 8,
			wl ? where : "strategy");
		return G_ERR_PARSE;
	}
	json_object_foreach(o, k, v) {
		bool ok = false;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !ok; i++)
			ok = !strcmp(k, known[i]);
		if (!ok) {
			set_err(err, errlen, "%s%.64s: unknown field (expected pid, tgid, "
				"command_regex, cgroup, pod_uid, container_id, priority, "
				"execution_time)", where, k);
			return G_ERR_PARSE;
		}
	}
	long long pid = 0, tgid = 0, prio = 0, et = 0;
	if (!get_int(o, where, "pid", 1, INT32_MAX, &pid, err, errlen) ||
	    !get_int(o, where, "tgid", 1, INT32_MAX, &tgid, err, errlen))
		return G_ERR_PARSE;
	if (pid && tgid && pid != tgid) {
		set_err(err, errlen, "%stgid: %lld conflicts with pid %lld (both name the whole "
			"process; give one)", where, tgid, pid);
		return G_ERR_PARSE;
	}
	r->pid = (int32_t)(pid ? pid : tgid);
	v = json_object_get(o, "priority");
	if (json_is_boolean(v)) {
		prio = json_is_true(v);
	} else if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			set_err(err, errlen, "%spriority: must be true/false or an integer >= 0 "
				"(0 = normal, > 0 = runs before every other task)", where);
			return G_ERR_PARSE;
		}
		prio = json_integer_value(v);
	}
	r->priority = prio > 0;
	v = json_object_get(o, "execution_time");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			set_err(err, errlen, "%sexecution_time: must be an integer (ns)", where);
			return G_ERR_PARSE;
		}
		et = json_integer_value(v);
		snprintf(text, sizeof(text), "%lld", et);
		if (cfg_strategy_set_text(r, "execution_time", text, why, sizeof(why))) {
			set_err(err, errlen, "%sexecution_time: %s", where, why);
			return G_ERR_RANGE;
		}
	}
	static const char *const strs[] = { "command_regex", "cgroup", "pod_uid", "container_id" };
	for (size_t i = 0; i < 4; i++) {
		text[0] = '\0';
		if (!get_str(o, where, strs[i], text, sizeof(text), err, errlen))
			return G_ERR_PARSE;
		if (!text[0])
			continue;
		if (cfg_strategy_set_text(r, strs[i], text, why, sizeof(why))) {
			set_err(err, errlen, "%s%s: %s", where, strs[i], why);
			return G_ERR_PARSE;
		}
	}
	if (r->pod_uid[0] && !strat_valid_pod_uid(r->pod_uid)) {
		set_err(err, errlen, "%spod_uid: '%s' is not a pod UID (8-4-4-4-12 hex digits)",
			where, r->pod_uid);
		return G_ERR_PARSE;
	}
	if (r->container_id[0] && !strat_valid_container_id(r->container_id)) {
		set_err(err, errlen, "%scontainer_id: '%s' is not 12 to 64 hex digits", where,
			r->container_id);
		return G_ERR_PARSE;
	}
	if (r->cgroup[0] && r->cgroup[0] != '/') {
		set_err(err, errlen, "%scgroup: '%s' must be an absolute cgroup path", where,
			r->cgroup);
		return G_ERR_PARSE;
	}
	if (!r->pid && !r->command_regex[0] && !r->cgroup[0] && !r->pod_uid[0] &&
	    !r->container_id[0]) {
		set_err(err, errlen, "%s%s: needs pid (or tgid), command_regex, cgroup, pod_uid or "
			"container_id", where, *where ? "selector" : "strategy");
		return G_ERR_PARSE;
	}
	return G_OK;
}

int api_parse_strategies(json_t *root, struct cfg_strategy *out, int max, int *n,
			 bool *replace, char *err, size_t errlen)
{
	json_t *list = json_object_get(root, "strategies"), *rep = json_object_get(root, "replace");
	char where[64];
	size_t i;
	json_t *v;

	*n = 0;
	*replace = false;
	if (rep && !json_is_boolean(rep)) {
		set_err(err, errlen, "replace: must be true or false");
		return G_ERR_PARSE;
	}
	*replace = json_is_true(rep);
	if (!list) {                         /* one strategy object */
		json_t *copy = json_deep_copy(root);
		json_object_del(copy, "replace");
		int rc = api_parse_strategy(copy, "", &out[0], err, errlen);
		json_decref(copy);
		if (rc)
			return rc;
		*n = 1;
		return G_OK;
	}
	if (!json_is_array(list)) {
		set_err(err, errlen, "strategies: must be an array");
		return G_ERR_PARSE;
	}
	if (json_array_size(list) > (size_t)max) {
		set_err(err, errlen, "strategies: %zu entries, at most %d", json_array_size(list), max);
		return G_ERR_RANGE;
	}
	json_array_foreach(list, i, v) {
		snprintf(where, sizeof(where), "strategies[%zu].", i);
		int rc = api_parse_strategy(v, where, &out[i], err, errlen);
		if (rc)
			return rc;
	}
	*n = (int)json_array_size(list);
	return G_OK;
}

json_t *api_strategy_json(const struct cfg_strategy *r)
{
	json_t *o = json_object();

	if (r->pid > 0)
		json_object_set_new(o, "pid", json_integer(r->pid));
	if (r->command_regex[0])
		json_object_set_new(o, "command_regex", json_string(r->command_regex));
	if (r->cgroup[0])
		json_object_set_new(o, "cgroup", json_string(r->cgroup));
	if (r->pod_uid[0])
		json_object_set_new(o, "pod_uid", json_string(r->pod_uid));
	if (r->container_id[0])
		json_object_set_new(o, "container_id", json_string(r->container_id));
	json_object_set_new(o, "priority", json_integer(r->priority ? 1 : 0));
	json_object_set_new(o, "execution_time", json_integer((json_int_t)r->execution_time));
	return o;
}

int api_parse_token_req(json_t *root, const char **pem, const char **client_id, char *err,
			size_t errlen)
{
	json_t *k = json_object_get(root, "public_key"), *c = json_object_get(root, "client_id");
	json_t *e = json_object_get(root, "expired_at");

	if (!json_is_string(k) || !json_string_length(k)) {
		set_err(err, errlen, "public_key: required, a PEM string");
		return G_ERR_PARSE;
	}
	if (c && !json_is_null(c) && !json_is_string(c)) {
		set_err(err, errlen, "client_id: must be a string");
		return G_ERR_PARSE;
	}
	if (e && !json_is_null(e) && !json_is_integer(e)) {
		set_err(err, errlen, "expired_at: must be an integer (unix seconds)");
		return G_ERR_PARSE;
	}
	*pem = json_string_value(k);
	*client_id = json_is_string(c) ? json_string_value(c) : "";
	return G_OK;
}

/* "k=v" pairs of a labels object, sorted, joined by ','. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool labels_text(json_t *obj, const char *where, char *out, size_t size, char *err,
			size_t errlen)
{
	size_t n = json_object_size(obj), i = 0, used = 0;
	char **items = calloc(n ? n : 1, sizeof(*items));
	const char *k;
	json_t *v;
	bool ok = items != NULL;

	out[0] = '\0';
	json_object_foreach(obj, k, v) {
		if (!ok)
			break;
		if (!json_is_string(v)) {
			set_err(err, errlen, "%spodLabels.%.64s: must be a string", where, k);
			ok = false;
			break;
		}
		size_t l = strlen(k) + json_string_length(v) + 2;
		items[i] = malloc(l);
		if (!items[i]) {
			ok = false;
			break;
		}
		snprintf(items[i++], l, "%s=%s", k, json_string_value(v));
	}
	if (ok) {
		qsort(items, i, sizeof(*items), cmp_str);
		for (size_t j = 0; j < i && ok; j++) {
			int w = snprintf(out + used, size - used, "%s%s", j ? "," : "", items[j]);
			if (w < 0 || (size_t)w >= size - used) {
				set_err(err, errlen, "%spodLabels: longer than %zu bytes", where, size - 1);
				ok = false;
			} else {
				used += (size_t)w;
			}
		}
	}
	for (size_t j = 0; j < i; j++)
		free(items[j]);
	free(items);
	if (!ok && err && !err[0])
		set_err(err, errlen, "%spodLabels: out of memory", where);
	return ok;
}

int api_parse_intents(json_t *root, struct api_intent *out, int max, int *n, char *err,
		      size_t errlen)
{
	json_t *list = json_object_get(root, "intents"), *v;
	char where[48];
	size_t i;

	*n = 0;
	if (list && !json_is_null(list) && !json_is_array(list)) {
		set_err(err, errlen, "intents: must be an array");
		return G_ERR_PARSE;
	}
	if (json_array_size(list) > (size_t)max) {
		set_err(err, errlen, "intents: %zu entries, at most %d", json_array_size(list), max);
		return G_ERR_RANGE;
	}
	json_array_foreach(list, i, v) {
		struct api_intent *t = &out[i];
		memset(t, 0, sizeof(*t));
		snprintf(where, sizeof(where), "intents[%zu].", i);
		if (!json_is_object(v)) {
			set_err(err, errlen, "intents[%zu]: must be an object", i);
			goto fail;
		}
		if (!get_str(v, where, "podName", t->pod_name, sizeof(t->pod_name), err, errlen) ||
		    !get_str(v, where, "podID", t->pod_id, sizeof(t->pod_id), err, errlen) ||
		    !get_str(v, where, "nodeID", t->node_id, sizeof(t->node_id), err, errlen) ||
		    !get_str(v, where, "k8sNamespace", t->ns, sizeof(t->ns), err, errlen) ||
		    !get_str(v, where, "commandRegex", t->command_regex, sizeof(t->command_regex),
			     err, errlen) ||
		    !get_int(v, where, "priority", INT32_MIN, INT32_MAX, &t->priority, err, errlen) ||
		    !get_int(v, where, "executionTime", LLONG_MIN, LLONG_MAX, &t->execution_time,
			     err, errlen))
			goto fail;
		json_t *l = json_object_get(v, "podLabels");
		if (l && !json_is_null(l)) {
			if (!json_is_object(l)) {
				set_err(err, errlen, "%spodLabels: must be an object", where);
				goto fail;
			}
			if (!labels_text(l, where, t->labels, sizeof(t->labels), err, errlen))
				goto fail;
			t->labels_obj = json_incref(l);
		}
		*n = (int)i + 1;
	}
	return G_OK;
fail:
	for (int j = 0; j <= (int)i && j < max; j++) {
		json_decref(out[j].labels_obj);
		out[j].labels_obj = NULL;
	}
	*n = 0;
	return G_ERR_PARSE;
}

int api_parse_node_policies(json_t *root, struct api_node_policy *out, int max, int *n,
			    char *err, size_t errlen)
{
	json_t *list = json_object_get(root, "policies"), *v;
	char where[48];
	size_t i;

	*n = 0;
	if (list && !json_is_null(list) && !json_is_array(list)) {
		set_err(err, errlen, "policies: must be an array");
		return G_ERR_PARSE;
	}
	if (json_array_size(list) > (size_t)max) {
		set_err(err, errlen, "policies: %zu entries, at most %d", json_array_size(list), max);
		return G_ERR_RANGE;
	}
	json_array_foreach(list, i, v) {
		struct api_node_policy *t = &out[i];
		memset(t, 0, sizeof(*t));
		snprintf(where, sizeof(where), "policies[%zu].", i);
		if (!json_is_object(v)) {
			set_err(err, errlen, "policies[%zu]: must be an object", i);
			return G_ERR_PARSE;
		}
		if (!get_str(v, where, "policyID", t->policy_id, sizeof(t->policy_id), err, errlen) ||
		    !get_str(v, where, "nodeID", t->node_id, sizeof(t->node_id), err, errlen) ||
		    !get_str(v, where, "commandRegex", t->command_regex, sizeof(t->command_regex),
			     err, errlen) ||
		    !get_int(v, where, "priority", INT32_MIN, INT32_MAX, &t->priority, err, errlen) ||
		    !get_int(v, where, "executionTime", LLONG_MIN, LLONG_MAX, &t->execution_time,
			     err, errlen))
			return G_ERR_PARSE;
	}
	*n = (int)json_array_size(list);
	return G_OK;
}

int api_parse_metrics(json_t *root, uint64_t out[11], char *err, size_t errlen)
{
	for (int i = 0; i < 11; i++) {
		json_t *v = json_object_get(root, api_metric_names[i]);
		out[i] = 0;
		if (!v || json_is_null(v))
			continue;
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			set_err(err, errlen, "%s: must be an integer >= 0", api_metric_names[i]);
			return G_ERR_PARSE;
		}
		out[i] = (uint64_t)json_integer_value(v);
	}
	return G_OK;
}

int api_parse_remote_strategies(json_t *root, struct cfg_strategy *out, int max, int *n,
				char *err, size_t errlen)
{
	json_t *ok = json_object_get(root, "success"), *list = json_object_get(root, "scheduling");
	char where[48], why[256], text[32];
	size_t i;
	json_t *v;

	*n = 0;
	if (!json_is_true(ok)) {
		set_err(err, errlen, "success: not true");
		return G_ERR_PARSE;
	}
	if (list && !json_is_null(list) && !json_is_array(list)) {
		set_err(err, errlen, "scheduling: must be an array");
		return G_ERR_PARSE;
	}
	if (json_array_size(list) > (size_t)max) {
		set_err(err, errlen, "scheduling: %zu entries, at most %d", json_array_size(list), max);
		return G_ERR_RANGE;
	}
	json_array_foreach(list, i, v) {
		struct cfg_strategy *r = &out[i];
		long long pid = 0, prio = 0, et = 0;

		memset(r, 0, sizeof(*r));
		snprintf(where, sizeof(where), "scheduling[%zu].", i);
		if (!json_is_object(v)) {
			set_err(err, errlen, "scheduling[%zu]: must be an object", i);
			return G_ERR_PARSE;
		}
		if (!get_int(v, where, "pid", 0, INT32_MAX, &pid, err, errlen) ||
		    !get_int(v, where, "priority", INT32_MIN, INT32_MAX, &prio, err, errlen) ||
		    !get_int(v, where, "execution_time", 0, LLONG_MAX, &et, err, errlen) ||
		    !get_str(v, where, "command_regex", r->command_regex, sizeof(r->command_regex),
			     err, errlen))
			return G_ERR_PARSE;
		r->pid = (int32_t)pid;
		if (pid > 0)
			r->command_regex[0] = '\0';   /* the decision maker resolved it already */
		r->priority = prio > 0;
		snprintf(text, sizeof(text), "%lld", et);
		if (cfg_strategy_set_text(r, "execution_time", text, why, sizeof(why))) {
			set_err(err, errlen, "%sexecution_time: %s", where, why);
			return G_ERR_RANGE;
		}
		if (r->command_regex[0] &&
		    cfg_strategy_set_text(r, "command_regex", r->command_regex, why, sizeof(why))) {
			set_err(err, errlen, "%scommand_regex: %s", where, why);
			return G_ERR_PARSE;
		}
		if (!r->pid && !r->command_regex[0]) {
			set_err(err, errlen, "%s: neither pid nor command_regex", where);
			return G_ERR_PARSE;
		}
	}
	*n = (int)json_array_size(list);
	return G_OK;
}
