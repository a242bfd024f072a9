/* SPDX-License-Identifier: GPL-2.0 */
/*
 * client.c - client mode (api.url): act toward a Gthulhu decision maker as Gthulhu's own
 * scheduler does. Every api.interval seconds, in this thread:
 *   1. a token from POST {url}/api/v1/auth/token {"public_key": PEM of api.public_key}
 *      when there is none or it expires within 5 s;
 *   2. GET {url}/api/v1/scheduling/strategies with "Authorization: Bearer TOKEN"; a 401
 *      drops the token, authenticates again and retries once;
 *   3. POST {url}/api/v1/metrics with the 11 counters of Gthulhu's BssData.
 * A good strategy list replaces the client-mode part of the rules (merged at the next
 * batch); anything else (down, timeout, HTTP error, garbage) keeps the last good set.
 * Each change of state is logged once ("ok", or what went wrong); failures back off
 * (the wait doubles, up to 8 intervals or 5 minutes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

#include "common.h"
#include "internal.h"

struct rbuf {
	char *s;
	size_t len;
	bool overflow;
};

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
	struct rbuf *b = ud;
	size_t add = sz * n;

	if (b->overflow || b->len + add > (8u << 20)) {
		b->overflow = true;
		return add;
	}
	char *ns = realloc(b->s, b->len + add + 1);
	if (!ns)
		return 0;
	b->s = ns;
	memcpy(b->s + b->len, p, add);
	b->len += add;
	b->s[b->len] = '\0';
	return add;
}

struct client {
	struct api *a;
	CURL *c;
	char url[CFG_STR_MAX];
	char *token;
	time_t token_exp;
};

/* One request. Returns the HTTP status (0: no answer, with why set), body in *out. */
static long request(struct client *cl, const char *method, const char *path, const char *body,
		    bool auth, struct rbuf *out, char *why, size_t whylen)
{
	char url[CFG_STR_MAX + 64], hdr[8192];
	struct curl_slist *h = NULL;
	long status = 0;
	CURLcode rc;

	memset(out, 0, sizeof(*out));
	snprintf(url, sizeof(url), "%s%s", cl->url, path);
	curl_easy_reset(cl->c);
	curl_easy_setopt(cl->c, CURLOPT_URL, url);
	curl_easy_setopt(cl->c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cl->c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(cl->c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(cl->c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(cl->c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(cl->c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(cl->c, CURLOPT_PROTOCOLS_STR, "http,https");
	h = curl_slist_append(h, "Content-Type: application/json");
	if (auth && cl->token) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", cl->token);
		h = curl_slist_append(h, hdr);
	}
	curl_easy_setopt(cl->c, CURLOPT_HTTPHEADER, h);
	if (body) {
		curl_easy_setopt(cl->c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(cl->c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	rc = curl_easy_perform(cl->c);
	curl_slist_free_all(h);
	if (rc != CURLE_OK) {
		set_err(why, whylen, "%s %s: %s", method, path, curl_easy_strerror(rc));
		free(out->s);
		out->s = NULL;
		return 0;
	}
	curl_easy_getinfo(cl->c, CURLINFO_RESPONSE_CODE, &status);
	if (out->overflow) {
		set_err(why, whylen, "%s %s: answer larger than 8 MiB", method, path);
		free(out->s);
		out->s = NULL;
		return 0;
	}
	return status;
}

static int authenticate(struct client *cl, char *why, size_t whylen)
{
	struct api *a = cl->a;
	struct rbuf b;
	json_t *req = json_pack("{s:s%}", "public_key", a->keys.pub_pem, a->keys.pub_len);
	char *body = json_dumps(req, JSON_COMPACT);
	long st;
	int rc = G_ERR;

	json_decref(req);
	free(cl->token);
	cl->token = NULL;
	st = request(cl, "POST", "/api/v1/auth/token", body, false, &b, why, whylen);
	free(body);
	if (st == 0)
		return G_ERR;
	json_t *j = b.s ? json_loads(b.s, 0, NULL) : NULL;
	json_t *d = json_object_get(j, "data");
	json_t *t = json_object_get(d, "token"), *e = json_object_get(d, "expired_at");
	if (st != 200) {
		json_t *m = json_object_get(j, "error");
		set_err(why, whylen, "POST /api/v1/auth/token: HTTP %ld%s%s", st, m ? ": " : "",
			json_is_string(m) ? json_string_value(m) : "");
	} else if (!json_is_true(json_object_get(j, "success")) || !json_is_string(t) ||
		   !json_string_length(t) || !json_is_integer(e)) {
		set_err(why, whylen, "POST /api/v1/auth/token: no token in the answer");
	} else {
		cl->token = strdup(json_string_value(t));
		cl->token_exp = (time_t)json_integer_value(e);
		pthread_mutex_lock(&a->mu);
		a->client_auths++;
		pthread_mutex_unlock(&a->mu);
		rc = cl->token ? G_OK : G_ERR;
	}
	json_decref(j);
	free(b.s);
	return rc;
}

/* An authenticated request; a 401 authenticates again and retries once. */
static long authed(struct client *cl, const char *method, const char *path, const char *body,
		   struct rbuf *b, char *why, size_t whylen)
{
	bool auth = true;   /* as Gthulhu's scheduler with auth on: always a token */

	if (auth && (!cl->token || time(NULL) + 5 >= cl->token_exp) &&
	    authenticate(cl, why, whylen))
		return 0;
	long st = request(cl, method, path, body, auth, b, why, whylen);
	if (st == 401 && auth) {
		free(b->s);
		b->s = NULL;
		if (authenticate(cl, why, whylen))
			return 0;
		st = request(cl, method, path, body, auth, b, why, whylen);
	}
	return st;
}

static int fetch(struct client *cl, char *why, size_t whylen)
{
	struct api *a = cl->a;
	struct cfg_strategy *rules = calloc(CFG_MAX_STRATEGIES, sizeof(*rules));
	struct rbuf b;
	char perr[512];
	int n, rc = G_ERR;

	if (!rules) {
		set_err(why, whylen, "out of memory");
		return G_ERR;
	}
	long st = authed(cl, "GET", "/api/v1/scheduling/strategies", NULL, &b, why, whylen);
	if (st == 0)
		goto out;
	if (st != 200) {
		set_err(why, whylen, "GET /api/v1/scheduling/strategies: HTTP %ld", st);
		goto out;
	}
	json_t *j = b.s ? json_loads(b.s, 0, NULL) : NULL;
	if (!json_is_object(j)) {
		set_err(why, whylen, "GET /api/v1/scheduling/strategies: not a JSON object");
	} else if (api_parse_remote_strategies(j, rules, CFG_MAX_STRATEGIES, &n, perr, sizeof(perr))) {
		set_err(why, whylen, "GET /api/v1/scheduling/strategies: %s", perr);
	} else {
		pthread_mutex_lock(&a->mu);
		int others = a->nr_own + a->nr_intents + a->nr_nodepol + a->nr_cfg_rules;
		if (others + n > CFG_MAX_STRATEGIES) {
			set_err(why, whylen, "GET /api/v1/scheduling/strategies: %d strategies would "
				"make more than %d in effect", n, CFG_MAX_STRATEGIES);
		} else {
			bool same = n == a->nr_remote &&
				    !memcmp(a->remote, rules, (size_t)n * sizeof(*rules));
			memcpy(a->remote, rules, (size_t)n * sizeof(*rules));
			a->nr_remote = n;
			a->client_fetches++;
			if (!same)
				atomic_fetch_add(&a->gen_rules, 1);
			rc = G_OK;
		}
		pthread_mutex_unlock(&a->mu);
	}
	json_decref(j);
out:
	free(b.s);
	free(rules);
	return rc;
}

/* The 11 counters of Gthulhu's BssData, from the stats line. */
static int report(struct client *cl, char *why, size_t whylen)
{
	struct api *a = cl->a;
	char line[sizeof(a->counters.stats_line)];
	json_t *o = json_object();
	struct rbuf b;

	pthread_mutex_lock(&a->mu);
	snprintf(line, sizeof(line), "%s", a->counters.stats_line);
	uint64_t last_run = a->last_run_ns;
	pthread_mutex_unlock(&a->mu);
	/* Gthulhu's BPF side stamps CLOCK_MONOTONIC ns when the user-space scheduler last
	 * ran; ours: the run loop's last snapshot (at most 100 ms old while it runs). */
	json_object_set_new(o, api_metric_names[0], json_integer((json_int_t)last_run));
	for (int i = 1; i < 11; i++) {
		char key[64];
		const char *p;
		snprintf(key, sizeof(key), "%s=", api_metric_names[i]);
		p = strstr(line, key);
		while (p && p != line && p[-1] != ' ')
			p = strstr(p + 1, key);
		json_object_set_new(o, api_metric_names[i],
				    json_integer(p ? (json_int_t)strtoull(p + strlen(key), NULL, 10) : 0));
	}
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	long st = authed(cl, "POST", "/api/v1/metrics", body, &b, why, whylen);
	free(body);
	free(b.s);
	if (st == 0)
		return G_ERR;
	if (st != 200) {
		set_err(why, whylen, "POST /api/v1/metrics: HTTP %ld", st);
		return G_ERR;
	}
	return G_OK;
}

static void state(struct api *a, const char *s, bool bad)
{
	pthread_mutex_lock(&a->mu);
	bool changed = strcmp(a->client_state, s) != 0;
	if (changed)
		snprintf(a->client_state, sizeof(a->client_state), "%s", s);
	if (bad)
		a->client_errors++;
	pthread_mutex_unlock(&a->mu);
	if (!changed)
		return;
	if (bad)
		g_warn("decision maker %s: %s; keeping the last good strategies, backing off",
		       a->cfg.api_url, s);
	else
		fprintf(stderr, "gthulhu-lua: decision maker %s: %s\n", a->cfg.api_url, s);
}

static void *client_main(void *arg)
{
	struct client cl = { .a = arg };
	struct api *a = cl.a;
	unsigned backoff = 0;
	char why[1024];

	snprintf(cl.url, sizeof(cl.url), "%s", a->cfg.api_url);
	for (size_t l = strlen(cl.url); l && cl.url[l - 1] == '/'; l--)
		cl.url[l - 1] = '\0';
	cl.c = curl_easy_init();
	while (cl.c && !atomic_load(&a->stopping)) {
		int rc = fetch(&cl, why, sizeof(why));
		if (!rc)
			rc = report(&cl, why, sizeof(why));
		if (!rc) {
			char okmsg[128];
			pthread_mutex_lock(&a->mu);
			snprintf(okmsg, sizeof(okmsg), "ok (%d strategies)", a->nr_remote);
			pthread_mutex_unlock(&a->mu);
			state(a, okmsg, false);
			backoff = 0;
		} else {
			state(a, why, true);
			backoff = backoff ? backoff * 2 : 2;
		}
		pthread_mutex_lock(&a->mu);
		unsigned iv = a->cfg.api_interval;
		pthread_mutex_unlock(&a->mu);
		uint64_t wait_ms = (uint64_t)iv * 1000;
		if (backoff) {
			uint64_t cap = (uint64_t)iv * 8000 < 300000 ? (uint64_t)iv * 8000 : 300000;
			wait_ms = (uint64_t)iv * 1000 * backoff / 2;
			if (wait_ms > cap)
				wait_ms = cap;
			if (wait_ms < (uint64_t)iv * 1000)
				wait_ms = (uint64_t)iv * 1000;
		}
		for (uint64_t t = 0; t < wait_ms && !atomic_load(&a->stopping); t += 100)
			usleep(100000);
	}
	if (cl.c)
		curl_easy_cleanup(cl.c);
	free(cl.token);
	return NULL;
}

int api_client_start(struct api *a, char *err, size_t errlen)
{
	if (strncmp(a->cfg.api_url, "http://", 7) && strncmp(a->cfg.api_url, "https://", 8)) {
		set_err(err, errlen, "api.url: '%s' must start with http:// or https://", a->cfg.api_url);
		return G_ERR;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 2 * API_THREAD_STACK);   /* libcurl + TLS: a bit more */
	int prc = pthread_create(&a->client_thr, &at, client_main, a);
	pthread_attr_destroy(&at);
	if (prc) {
		set_err(err, errlen, "api.url: cannot start the client thread");
		return G_ERR;
	}
	a->client_running = true;
	return G_OK;
}

void api_client_stop(struct api *a)
{
	if (!a->client_running)
		return;
	pthread_join(a->client_thr, NULL);
	a->client_running = false;
	curl_global_cleanup();
}
