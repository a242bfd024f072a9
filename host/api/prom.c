/* SPDX-License-Identifier: GPL-2.0 */
/*
 * api/prom.c - GET /metrics: the Prometheus text exposition of the scheduler's counters
 * (the stats: line's keys, the policy call time histograms).
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

void api_h_prom(struct api *a, struct reply *r)
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
