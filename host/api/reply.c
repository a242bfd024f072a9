/* SPDX-License-Identifier: GPL-2.0 */
/*
 * api/reply.c - what every endpoint answers with: Gthulhu's envelope (api_ok), the error
 * body (api_fail), RFC 3339 time stamps; and the rules bookkeeping the endpoints that
 * change rules share. Below the handlers: calls none of them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "common.h"
#include "internal.h"

void api_rfc3339(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void api_stamp(json_t *o)
{
	char ts[32];

	api_rfc3339(time(NULL), ts, sizeof(ts));
	json_object_set_new(o, "timestamp", json_string(ts));
}

void api_fail(struct reply *r, int status, const char *fmt, ...)
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
void api_ok(struct reply *r, json_t *data)
{
	r->status = 200;
	r->json = json_object();
	json_object_set_new(r->json, "success", json_true());
	if (data)
		json_object_set_new(r->json, "data", data);
	api_stamp(r->json);
}

/* ---------------------------------------------------------------------------------- */
/* rules bookkeeping */

int api_rules_in_use(const struct api *a)
{
	return a->nr_own + a->nr_intents + a->nr_nodepol + a->nr_remote + a->nr_cfg_rules;
}

void api_rules_changed(struct api *a)
{
	atomic_fetch_add(&a->gen_rules, 1);
}
