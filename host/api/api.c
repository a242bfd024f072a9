/* SPDX-License-Identifier: GPL-2.0 */
/*
 * api.c - start/stop, and the run loop's side of the mailbox: api_poll(),
 * api_merge_rules(), api_publish_resolved(). See api.h for the threading rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "common.h"
#include "internal.h"
#include "pol/pol.h"

#define SNAPSHOT_NS 100000000ull   /* publish the counters at most every 100 ms */

int api_start(struct api **out, const struct cfg *c, const char *proc_root, char *err,
	      size_t errlen)
{
	struct api *a;

	*out = NULL;
	if (!c->api_enabled && !c->api_url[0])
		return G_OK;
	a = calloc(1, sizeof(*a));
	if (!a || !(a->intents = calloc(API_MAX_INTENTS, sizeof(*a->intents))) ||
	    !(a->nodepol = calloc(API_MAX_INTENTS, sizeof(*a->nodepol))) ||
	    !(a->resolved = calloc(STRAT_MAX_RESOLVED, sizeof(*a->resolved)))) {
		set_err(err, errlen, "api: out of memory");
		goto fail_free;
	}
	memcpy(&a->cfg, c, sizeof(*c));
	snprintf(a->proc_root, sizeof(a->proc_root), "%s", proc_root && *proc_root ? proc_root : "/proc");
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->req_mu, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_cond_init(&a->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	api_intents_root(NULL, 0, a->intents_root);   /* Gthulhu: SHA-256("") at first */
	a->nodepol_root[0] = '\0';                      /* Gthulhu: "" until first set */
	if (api_keys_load(&a->keys, c->api_private_key, c->api_public_key, err, errlen))
		goto fail;
	if (c->api_enabled && c->api_auth && !a->keys.priv_pem) {
		set_err(err, errlen, "api.auth is on but api.private_key is not set (it signs the "
			"tokens; or set api.auth: false)");
		goto fail;
	}
	if (c->api_url[0] && !a->keys.pub_pem) {
		set_err(err, errlen, "api.url (client mode) needs api.public_key: its PEM is "
			"exchanged for a token");
		goto fail;
	}
	if (c->api_policy_dir[0] && access(c->api_policy_dir, R_OK | X_OK)) {
		set_err(err, errlen, "api.policy_dir: %s: %s", c->api_policy_dir, strerror(errno));
		goto fail;
	}
	if (c->api_enabled && api_server_start(a, err, errlen))
		goto fail;
	if (c->api_url[0] && api_client_start(a, err, errlen)) {
		api_server_stop(a);
		goto fail;
	}
	if (c->api_enabled)
		fprintf(stderr, "gthulhu-lua: API on %s://%s:%u%s\n", c->api_tls_cert[0] ? "https" : "http",
			c->api_listen, c->api_port, c->api_auth ? "" : " (api.auth off: no tokens needed)");
	*out = a;
	return G_OK;
fail:
	api_keys_free(&a->keys);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->req_mu);
	pthread_cond_destroy(&a->cv);
fail_free:
	if (a) {
		free(a->intents);
		free(a->nodepol);
		free(a->resolved);
	}
	free(a);
	return G_ERR;
}

void api_stop(struct api *a)
{
	if (!a)
		return;
	atomic_store(&a->stopping, true);
	pthread_mutex_lock(&a->mu);
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	api_client_stop(a);
	api_server_stop(a);
	for (int i = 0; i < a->nr_intents; i++)
		json_decref(a->intents[i].labels_obj);
	api_keys_free(&a->keys);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->req_mu);
	pthread_cond_destroy(&a->cv);
	free(a->intents);
	free(a->nodepol);
	free(a->resolved);
	free(a);
}

void api_set_attached(struct api *a, bool attached)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->attached = attached;
	pthread_mutex_unlock(&a->mu);
}

static void file_sha256(const char *path, char out[65])
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	unsigned char md[32], buf[8192];
	unsigned int mdlen = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	out[0] = '\0';
	if (fd < 0 || !m || !EVP_DigestInit_ex(m, EVP_sha256(), NULL))
		goto out;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(m, buf, (size_t)n);
	if (n == 0 && EVP_DigestFinal_ex(m, md, &mdlen))
		for (int i = 0; i < 32; i++)
			snprintf(out + 2 * i, 3, "%02x", md[i]);
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(m);
}

/* The policy's identity, recomputed (on the loop thread) when it reloaded or switched. */
static void note_policy(struct api *a, struct pol *pol, const char *err)
{
	const struct pol_stats *ps = pol_stats(pol);
	bool changed = strcmp(a->policy_path, pol_path(pol)) || ps->reloads != a->reloads ||
		       !a->policy_loaded_at;
	bool failed = ps->reload_errors != a->reload_errors;
	char sha[65];

	if (!changed && !failed && !err)
		return;
	if (changed)
		file_sha256(pol_path(pol), sha);
	pthread_mutex_lock(&a->mu);
	if (changed) {
		snprintf(a->policy_path, sizeof(a->policy_path), "%s", pol_path(pol));
		memcpy(a->policy_sha256, sha, sizeof(sha));
		a->policy_loaded_at = time(NULL);
	}
	if (err)
		snprintf(a->policy_error, sizeof(a->policy_error), "%s", err);
	else if (failed)
		snprintf(a->policy_error, sizeof(a->policy_error), "%s", pol_last_error(pol));
	a->reloads = ps->reloads;
	a->reload_errors = ps->reload_errors;
	pthread_mutex_unlock(&a->mu);
}

unsigned api_poll(struct api *a, struct pol *pol, struct cfg *c,
		  void (*fill)(struct api_counters *out, void *ctx), void *ctx)
{
	unsigned out = 0;

	if (!a)
		return 0;
	if (atomic_load_explicit(&a->req_pending, memory_order_acquire)) {
		enum api_req_kind kind;
		char path[CFG_PATH_MAX], msg[2048] = "";

		pthread_mutex_lock(&a->mu);
		kind = a->req_kind;
		snprintf(path, sizeof(path), "%s", a->req_path);
		a->req_kind = REQ_NONE;
		atomic_store(&a->req_pending, 0);
		pthread_mutex_unlock(&a->mu);
		if (kind != REQ_NONE) {
			int rc = pol_reload(pol, kind == REQ_SWITCH ? path : NULL, msg, sizeof(msg));
			if (rc)
				g_err("policy %s rejected (API), the old policy keeps running: %s",
				      kind == REQ_SWITCH ? "switch" : "reload", msg);
			else if (kind == REQ_SWITCH)
				fprintf(stderr, "gthulhu-lua: policy switched to %s (API)\n", pol_path(pol));
			else
				fprintf(stderr, "gthulhu-lua: policy %s reloaded (API)\n", pol_path(pol));
			note_policy(a, pol, rc ? msg : NULL);
			pthread_mutex_lock(&a->mu);
			a->req_rc = rc;
			snprintf(a->req_msg, sizeof(a->req_msg), "%s", msg);
			if (!rc)
				a->policy_error[0] = '\0';
			a->req_done = true;
			pthread_cond_broadcast(&a->cv);
			pthread_mutex_unlock(&a->mu);
			if (!rc && kind == REQ_SWITCH)
				out |= API_POLICY_SWITCHED;
		}
	}
	uint64_t g = atomic_load_explicit(&a->gen_rules, memory_order_acquire);
	if (g != a->gen_rules_seen) {
		a->gen_rules_seen = g;
		out |= API_RULES_CHANGED;
	}
	if (atomic_load_explicit(&a->cfg_pending, memory_order_acquire)) {
		char text[CFG_PATH_MAX], why[256];

		pthread_mutex_lock(&a->mu);
		for (int i = 0; i < cfg_nr_keys(); i++) {
			if (!cfg_key_live(i))
				continue;
			cfg_get_text(&a->cfg_next, i, text, sizeof(text));
			cfg_set_text(c, i, text, why, sizeof(why));      /* validated by the API */
			cfg_set_text(&a->cfg, i, text, why, sizeof(why));
		}
		if (a->cfg_rules_pending) {
			memcpy(c->strategies, a->cfg_rules_next,
			       (size_t)a->nr_cfg_rules_next * sizeof(c->strategies[0]));
			c->nr_strategies = a->nr_cfg_rules_next;
			a->cfg_rules_pending = false;
			out |= API_RULES_CHANGED;
		}
		atomic_store(&a->cfg_pending, 0);
		pthread_mutex_unlock(&a->mu);
		out |= API_CFG_CHANGED;
	}
	uint64_t now = g_now_ns();
	if (fill && now - a->snap_at_ns >= SNAPSHOT_NS) {
		struct api_counters tmp;

		a->snap_at_ns = now;
		memset(&tmp, 0, sizeof(tmp));
		fill(&tmp, ctx);
		note_policy(a, pol, NULL);
		pthread_mutex_lock(&a->mu);
		a->last_run_ns = now;
		memcpy(a->counters.stats_line, tmp.stats_line, sizeof(tmp.stats_line));
		if (tmp.loop) {
			a->loop = *tmp.loop;
			a->have_loop = true;
		}
		pthread_mutex_unlock(&a->mu);
	}
	return out;
}

int api_merge_rules(struct api *a, const struct cfg_strategy *cfg_rules, int n_cfg,
		    struct cfg_strategy *out, int max, char *err, size_t errlen)
{
	int n = 0;

	if (!a) {
		if (n_cfg > max) {
			set_err(err, errlen, "%d strategies, at most %d", n_cfg, max);
			return G_ERR_RANGE;
		}
		memmove(out, cfg_rules, (size_t)n_cfg * sizeof(*out));
		return n_cfg;
	}
	pthread_mutex_lock(&a->mu);
	for (int i = 0; i < a->nr_own && n < max; i++)
		out[n++] = a->own[i].r;
	n += api_intent_rules(a, out + n, max - n);
	for (int i = 0; i < a->nr_remote && n < max; i++)
		out[n++] = a->remote[i];
	if (n + n_cfg > max) {
		pthread_mutex_unlock(&a->mu);
		set_err(err, errlen, "strategies: %d from the API and %d from the config: more than %d",
			n, n_cfg, max);
		return G_ERR_RANGE;
	}
	memcpy(a->cfg_rules, cfg_rules, (size_t)n_cfg * sizeof(*out));
	a->nr_cfg_rules = n_cfg;
	memcpy(out + n, cfg_rules, (size_t)n_cfg * sizeof(*out));
	n += n_cfg;
	memcpy(a->resolved_rules, out, (size_t)n * sizeof(*out));
	a->nr_resolved_rules = n;
	pthread_mutex_unlock(&a->mu);
	return n;
}

void api_publish_resolved(struct api *a, const struct strat *s)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	memcpy(a->resolved, s->resolved, (size_t)s->nr_resolved * sizeof(s->resolved[0]));
	a->nr_resolved = s->nr_resolved;
	pthread_mutex_unlock(&a->mu);
}

void api_config_reloaded(struct api *a, const struct cfg *c)
{
	char text[CFG_PATH_MAX], why[256];

	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	for (int i = 0; i < cfg_nr_keys(); i++) {
		if (!cfg_key_live(i))
			continue;
		cfg_get_text(c, i, text, sizeof(text));
		cfg_set_text(&a->cfg, i, text, why, sizeof(why));
	}
	pthread_mutex_unlock(&a->mu);
}
