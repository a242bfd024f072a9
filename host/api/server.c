/* SPDX-License-Identifier: GPL-2.0 */
/*
 * server.c - the HTTP server (libmicrohttpd, one thread per connection): the route table,
 * authentication, request bodies, and the handlers' replies sent. The handlers are in
 * gthulhu.c (Gthulhu's endpoints), prom.c (/metrics) and own.c (ours); replies reply.c.
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
		api_fail(r, 404, "%s: no such endpoint", url);
		return;
	}
	if (!rt) {
		api_fail(r, 405, "%s %s: method not allowed (allowed: %s)", method, url, allow_text(allowed));
		r->allow = allow_text(allowed);
		return;
	}
	if (cn->too_big) {
		api_fail(r, 413, "%s: request body larger than api.max_body_bytes (%u)", url,
			 a->cfg.api_max_body_bytes);
		return;
	}
	if (rt->auth && a->cfg.api_auth) {
		const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
		char cid[128];
		if (!h || !*h) {
			api_fail(r, 401, "Authorization header is required");
			return;
		}
		if (strncmp(h, "Bearer ", 7)) {
			api_fail(r, 401, "Authorization header must start with 'Bearer '");
			return;
		}
		if (api_token_verify(&a->keys, h + 7, time(NULL), cid, sizeof(cid), why, sizeof(why))) {
			api_fail(r, 401, "Invalid or expired token: %s", why);
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
			api_fail(r, 400, "Invalid request payload: %s", why);
			return;
		}
	}
	const char *p = rt->path;
	if (!strcmp(p, "/health")) api_h_health(a, r);
	else if (!strcmp(p, "/version")) api_h_version(a, r);
	else if (!strcmp(p, "/metrics")) api_h_prom(a, r);
	else if (!strcmp(p, "/api/v1/auth/token")) api_h_token(a, body, r);
	else if (!strcmp(p, "/api/v1/scheduling/strategies")) api_h_sched_strategies(a, r);
	else if (!strcmp(p, "/api/v1/intents")) m == M_POST ? api_h_intents_post(a, body, r) : api_h_intents_delete(a, body, r);
	else if (!strcmp(p, "/api/v1/intents/merkle")) api_h_merkle(a, false, r);
	else if (!strcmp(p, "/api/v1/node-intents")) m == M_POST ? api_h_nodepol_post(a, body, r) : api_h_nodepol_delete(a, body, r);
	else if (!strcmp(p, "/api/v1/node-intents/merkle")) api_h_merkle(a, true, r);
	else if (!strcmp(p, "/api/v1/metrics")) api_h_metrics_post(a, body, r);
	else if (!strcmp(p, "/api/v1/pods/pids")) api_h_pods(a, r);
	else if (!strcmp(p, "/api/v1/strategies")) {
		if (m == M_GET) api_h_strategies_get(a, r);
		else if (m == M_POST) api_h_strategies_post(a, body, r);
		else api_h_strategies_delete(a, id, r);
	}
	else if (!strcmp(p, "/api/v1/policy")) m == M_GET ? api_h_policy_get(a, r) : api_h_policy_put(a, body, r);
	else if (!strcmp(p, "/api/v1/policy/reload")) api_policy_request(a, REQ_RELOAD, NULL, r);
	else if (!strcmp(p, "/api/v1/config")) m == M_GET ? api_h_config_get(a, r) : api_h_config_put(a, body, r);
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
