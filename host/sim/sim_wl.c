/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sim_wl.c - workload files for the simulator (YAML, libyaml's document API, so every
 * node knows its line). The schema is documented in README ("Simulator, record and
 * replay") and config/workloads/README.md; errors read "FILE:LINE: FIELD: what is wrong".
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "common.h"
#include "sim.h"

/* The kernel's sched_prio_to_weight[] (nice -20 .. 19). */
static const uint32_t prio_to_weight[40] = {
	88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
	9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
	1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
	110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
};

/* sched_ext: p->scx.weight = clamp(DIV_ROUND_CLOSEST(weight * 100, 1024), 1, 10000). */
uint64_t sim_nice_weight(int nice)
{
	uint64_t w;

	if (nice < -20)
		nice = -20;
	if (nice > 19)
		nice = 19;
	w = ((uint64_t)prio_to_weight[nice + 20] * 100 + 512) / 1024;
	return w < 1 ? 1 : w > 10000 ? 10000 : w;
}

int sim_parse_duration(const char *s, uint64_t *ns)
{
	char *end;
	double v, mul = 1;

	while (isspace((unsigned char)*s))
		s++;
	if (!*s || *s == '-')
		return G_ERR;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !(v >= 0) || isinf(v))
		return G_ERR;
	while (isspace((unsigned char)*end))
		end++;
	if (!strcmp(end, "") || !strcmp(end, "ns"))
		mul = 1;
	else if (!strcmp(end, "us"))
		mul = 1e3;
	else if (!strcmp(end, "ms"))
		mul = 1e6;
	else if (!strcmp(end, "s"))
		mul = 1e9;
	else
		return G_ERR;
	v *= mul;
	if (v > 1e15)     /* ~11 days: surely a typo */
		return G_ERR;
	*ns = (uint64_t)llround(v);
	return G_OK;
}

void sim_wl_defaults(struct sim_wl *w)
{
	memset(w, 0, sizeof(*w));
	w->seed = 1;
	w->duration_ns = 1000000000ull;
	w->nr_cpus = 4;
	w->smt = 1;
	w->llc = 0;              /* 0: all CPUs (at most MAX_SIBLINGS) */
	w->hz = 250;
	w->timer_slack_ns = SIM_SLACK_DEFAULT_NS;
	w->slice_ns_default = 20000000ull;
	w->slice_ns_min = 1000000ull;
	w->batch_max = 4096;
	w->stall_timeout_ns = 1000000000ull;
	w->watchdog_ms = 0;      /* the kernel's default, as in config/config.yaml */
	w->early_processing = true;   /* the fast path, on as in host/cfg.c */
	w->host_batch_ns = 20000;
	w->host_task_ns = 200;
	w->host_wake_ns = 5000;
	w->host_scale = 1.0;
}

void sim_wl_free(struct sim_wl *w)
{
	if (!w)
		return;
	for (int i = 0; i < w->ngroups; i++)
		free(w->groups[i].aff);
	free(w->groups);
	free(w->ops);
	free(w->strat);
	free(w->chan_names);
	free(w->chan_size);
	free(w->chan_cap);
	w->chan_size = NULL;
	w->chan_cap = NULL;
	w->groups = NULL;
	w->ops = NULL;
	w->strat = NULL;
	w->chan_names = NULL;
	w->ngroups = w->nops = w->nstrat = w->nchans = 0;
}

int sim_wl_add_op(struct sim_wl *w, const struct sim_op *op)
{
	if (w->nops == w->ops_cap) {
		int cap = w->ops_cap ? w->ops_cap * 2 : 64;
		struct sim_op *n = realloc(w->ops, (size_t)cap * sizeof(*n));
		if (!n)
			return -1;
		w->ops = n;
		w->ops_cap = cap;
	}
	w->ops[w->nops] = *op;
	return w->nops++;
}

int sim_wl_chan(struct sim_wl *w, const char *name, int n, int *size)
{
	for (int i = 0; i < w->nchans; i++)
		if (w->chan_size[i] && !strcmp(w->chan_names[i], name)) {
			*size = w->chan_size[i];
			return i;
		}
	/* a channel with n instances takes n ids: id, id+1, ... (names "x{i}" + "#k") */
	char (*nn)[64] = realloc(w->chan_names, (size_t)(w->nchans + n) * sizeof(*nn));
	if (!nn)
		return -1;
	w->chan_names = nn;
	int *ns = realloc(w->chan_size, (size_t)(w->nchans + n) * sizeof(*ns));
	if (!ns)
		return -1;
	w->chan_size = ns;
	uint64_t *nc = realloc(w->chan_cap, (size_t)(w->nchans + n) * sizeof(*nc));
	if (!nc)
		return -1;
	w->chan_cap = nc;
	for (int k = 0; k < n; k++)
		nc[w->nchans + k] = 0;
	int id = w->nchans;
	for (int k = 0; k < n; k++) {
		snprintf(nn[id + k], sizeof(nn[0]), k ? "%.50s#%d" : "%.60s", name, k);
		ns[id + k] = k ? 0 : n;
	}
	w->nchans += n;
	*size = n;
	return id;
}

/* ---- YAML ------------------------------------------------------------------------ */
struct yctx {
	yaml_document_t doc;
	struct sim_wl *w;
	char *err;
	size_t errlen;
};

#define LINE(n) ((int)(n)->start_mark.line + 1)

static int yerr(struct yctx *y, yaml_node_t *n, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int yerr(struct yctx *y, yaml_node_t *n, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_err(y->err, y->errlen, "%s:%d: %s: %s", y->w->file, n ? LINE(n) : 0, field, msg);
	return G_ERR_PARSE;
}

static yaml_node_t *node(struct yctx *y, int id) { return yaml_document_get_node(&y->doc, id); }

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_u64(struct yctx *y, yaml_node_t *n, const char *field, uint64_t lo, uint64_t hi,
		   uint64_t *out)
{
	const char *s = scalar(n);
	char *end;
	unsigned long long v;

	if (!s)
		return yerr(y, n, field, "expected a number");
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-')
		return yerr(y, n, field, "'%s' is not a whole number", s);
	if (v < lo || v > hi)
		return yerr(y, n, field, "%llu is out of range [%llu, %llu]", v,
			    (unsigned long long)lo, (unsigned long long)hi);
	*out = v;
	return G_OK;
}

static int get_int(struct yctx *y, yaml_node_t *n, const char *field, long lo, long hi, int *out)
{
	const char *s = scalar(n);
	char *end;
	long v;

	if (!s)
		return yerr(y, n, field, "expected a number");
	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end)
		return yerr(y, n, field, "'%s' is not a whole number", s);
	if (v < lo || v > hi)
		return yerr(y, n, field, "%ld is out of range [%ld, %ld]", v, lo, hi);
	*out = (int)v;
	return G_OK;
}

static int get_bool(struct yctx *y, yaml_node_t *n, const char *field, bool *out)
{
	const char *s = scalar(n);

	if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")))
		*out = true;
	else if (s && (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")))
		*out = false;
	else
		return yerr(y, n, field, "expected true or false");
	return G_OK;
}

static int get_dur(struct yctx *y, yaml_node_t *n, const char *field, uint64_t *out)
{
	const char *s = scalar(n);

	if (!s || sim_parse_duration(s, out))
		return yerr(y, n, field, "'%s' is not a duration (e.g. 250us, 10ms, 2s, or ns)",
			    s ? s : "(not a scalar)");
	return G_OK;
}

/* timer_slack (top level or per group): a duration in [0, 1s]; 0 = exact wake-ups. */
static int get_slack(struct yctx *y, yaml_node_t *n, const char *field, uint64_t *out)
{
	if (get_dur(y, n, field, out))
		return G_ERR_PARSE;
	if (*out > SIM_SLACK_MAX_NS)
		return yerr(y, n, field, "must be in [0, 1s] (the kernel's default is 50us; 0 = "
			    "exact wake-ups)");
	return G_OK;
}

/* A duration or a [min, max] range (uniform). */
static int get_range(struct yctx *y, yaml_node_t *n, const char *field, uint64_t *lo, uint64_t *hi)
{
	if (n->type == YAML_SEQUENCE_NODE) {
		yaml_node_item_t *it = n->data.sequence.items.start;
		if (n->data.sequence.items.top - it != 2)
			return yerr(y, n, field, "a range is [min, max]");
		if (get_dur(y, node(y, it[0]), field, lo) || get_dur(y, node(y, it[1]), field, hi))
			return G_ERR_PARSE;
		if (*hi < *lo)
			return yerr(y, n, field, "range max is below its min");
		return G_OK;
	}
	if (get_dur(y, n, field, lo))
		return G_ERR_PARSE;
	*hi = *lo;
	return G_OK;
}

#define FOR_PAIRS(n, p) \
	for (yaml_node_pair_t *p = (n)->data.mapping.pairs.start; p < (n)->data.mapping.pairs.top; p++)
#define FOR_ITEMS(n, it) \
	for (yaml_node_item_t *it = (n)->data.sequence.items.start; it < (n)->data.sequence.items.top; it++)

static int parse_cpus(struct yctx *y, yaml_node_t *n, const char *field, struct sim_group *g)
{
	static uint16_t ids[MAX_CPUS];
	const char *s = scalar(n);
	int k;

	if (!s)
		return yerr(y, n, field, "expected a CPU list such as \"0-3,6\"");
	k = topo_parse_cpulist(s, ids, MAX_CPUS);
	if (k <= 0)
		return yerr(y, n, field, "'%s' is not a CPU list (e.g. \"0-3,6\")", s);
	memset(g->aff, 0, MAX_CPUS / 8);
	g->nr_allowed = 0;
	for (int i = 0; i < k; i++) {
		if (ids[i] >= y->w->nr_cpus)
			return yerr(y, n, field, "CPU %d is not below cpus (%d)", ids[i], y->w->nr_cpus);
		if (!(g->aff[ids[i] / 64] & (1ull << (ids[i] % 64))))
			g->nr_allowed++;
		g->aff[ids[i] / 64] |= 1ull << (ids[i] % 64);
	}
	return G_OK;
}

static int parse_program(struct yctx *y, yaml_node_t *seq, const char *path, int depth);

/* A channel name; "{i}" anywhere makes it per instance of the group: one channel per
 * task of the first group that names it; other groups' task i uses channel i % that. */
static int chan_of(struct yctx *y, yaml_node_t *n, const char *field, int count, struct sim_op *op)
{
	const char *s = scalar(n);

	if (!s || !s[0] || strlen(s) > 48)
		return yerr(y, n, field, "expected a channel name (1..48 characters)");
	op->chan = sim_wl_chan(y->w, s, strstr(s, "{i}") ? (count > 0 ? count : 1) : 1,
			       &op->chan_n);
	if (op->chan < 0)
		return yerr(y, n, field, "out of memory");
	return G_OK;
}

static int cur_count;        /* count of the group being parsed (for "{i}" channels) */

static int parse_op(struct yctx *y, yaml_node_t *n, const char *path, int depth)
{
	struct sim_op op;
	char f[320];

	memset(&op, 0, sizeof(op));
	op.line = LINE(n);
	if (n->type == YAML_SCALAR_NODE && !strcmp(scalar(n), "exit")) {
		op.kind = OP_EXIT;
		return sim_wl_add_op(y->w, &op) < 0 ? yerr(y, n, path, "out of memory") : G_OK;
	}
	if (n->type != YAML_MAPPING_NODE || n->data.mapping.pairs.top - n->data.mapping.pairs.start != 1)
		return yerr(y, n, path, "a step is one of run, sleep, period, wait, signal, fork, "
			    "loop, exit (one key per list item)");
	yaml_node_pair_t *p = n->data.mapping.pairs.start;
	const char *k = scalar(node(y, p->key));
	yaml_node_t *v = node(y, p->value);

	snprintf(f, sizeof(f), "%s.%s", path, k ? k : "?");
	if (!k)
		return yerr(y, n, path, "step key must be a plain word");
	if (!strcmp(k, "run")) {
		op.kind = OP_RUN;
		if (scalar(v) && !strcmp(scalar(v), "forever")) {
			op.lo = op.hi = UINT64_MAX;
		} else if (get_range(y, v, f, &op.lo, &op.hi)) {
			return G_ERR_PARSE;
		}
	} else if (!strcmp(k, "sleep")) {
		op.kind = OP_SLEEP;
		if (get_range(y, v, f, &op.lo, &op.hi))
			return G_ERR_PARSE;
	} else if (!strcmp(k, "period")) {
		op.kind = OP_PERIOD;
		if (get_dur(y, v, f, &op.lo))
			return G_ERR_PARSE;
		if (op.lo < 1000)
			return yerr(y, v, f, "a period is at least 1us");
		y->w->groups[y->w->ngroups - 1].periodic = true;
	} else if (!strcmp(k, "wait")) {
		op.kind = OP_WAIT;
		if (chan_of(y, v, f, cur_count, &op))
			return G_ERR_PARSE;
	} else if (!strcmp(k, "signal")) {
		op.kind = OP_SIGNAL;
		op.lo = 1;
		if (v->type == YAML_MAPPING_NODE) {
			yaml_node_t *cn = NULL;
			FOR_PAIRS(v, q) {
				const char *kk = scalar(node(y, q->key));
				char ff[400];
				snprintf(ff, sizeof(ff), "%s.%s", f, kk ? kk : "?");
				if (kk && !strcmp(kk, "chan"))
					cn = node(y, q->value);
				else if (kk && !strcmp(kk, "count")) {
					if (get_u64(y, node(y, q->value), ff, 1, 1000000, &op.lo))
						return G_ERR_PARSE;
				} else
					return yerr(y, node(y, q->key), ff, "unknown key (chan, count)");
			}
			if (!cn)
				return yerr(y, v, f, "needs chan");
			v = cn;
		}
		if (chan_of(y, v, f, cur_count, &op))
			return G_ERR_PARSE;
	} else if (!strcmp(k, "fork")) {
		op.kind = OP_FORK;
		op.arg = -1;
		const char *g = scalar(v);
		if (!g)
			return yerr(y, v, f, "expected a group name");
		/* resolved in sim_wl_finish(): groups may be defined later in the file */
		char fk[80];
		int sz;
		snprintf(fk, sizeof(fk), "fork:%.60s", g);   /* the name table, not a channel */
		op.chan = sim_wl_chan(y->w, fk, 1, &sz);
		op.chan_n = -1;
	} else if (!strcmp(k, "loop")) {
		yaml_node_t *body = v;
		op.kind = OP_LOOP;
		if (v->type == YAML_MAPPING_NODE) {
			body = NULL;
			FOR_PAIRS(v, q) {
				const char *kk = scalar(node(y, q->key));
				char ff[400];
				snprintf(ff, sizeof(ff), "%s.%s", f, kk ? kk : "?");
				if (kk && !strcmp(kk, "count")) {
					if (get_u64(y, node(y, q->value), ff, 1, 1000000000, &op.lo))
						return G_ERR_PARSE;
				} else if (kk && !strcmp(kk, "do"))
					body = node(y, q->value);
				else
					return yerr(y, node(y, q->key), ff, "unknown key (count, do)");
			}
			if (!body)
				return yerr(y, v, f, "needs do: [steps]");
		}
		if (body->type != YAML_SEQUENCE_NODE)
			return yerr(y, body, f, "expected a list of steps");
		if (depth >= 8)
			return yerr(y, v, f, "loops nest at most 8 deep");
		int at = sim_wl_add_op(y->w, &op);
		if (at < 0)
			return yerr(y, n, f, "out of memory");
		if (parse_program(y, body, f, depth + 1))
			return G_ERR_PARSE;
		/* a forever loop must take time, or the task would spin in zero time */
		if (op.lo == 0) {
			bool timed = false;
			for (int i = at + 1; i < y->w->nops; i++)
				timed |= y->w->ops[i].kind == OP_RUN || y->w->ops[i].kind == OP_SLEEP ||
					 y->w->ops[i].kind == OP_PERIOD || y->w->ops[i].kind == OP_WAIT;
			if (!timed)
				return yerr(y, v, f, "a loop without count needs a run, sleep, period "
					    "or wait step");
		}
		struct sim_op e = { .kind = OP_END, .arg = at, .line = op.line };
		int end = sim_wl_add_op(y->w, &e);
		if (end < 0)
			return yerr(y, n, f, "out of memory");
		y->w->ops[at].arg = end;
		return G_OK;
	} else if (!strcmp(k, "exit")) {
		op.kind = OP_EXIT;
	} else {
		return yerr(y, node(y, p->key), f, "unknown step (run, sleep, period, wait, signal, "
			    "fork, loop, exit)");
	}
	return sim_wl_add_op(y->w, &op) < 0 ? yerr(y, n, f, "out of memory") : G_OK;
}

static int parse_program(struct yctx *y, yaml_node_t *seq, const char *path, int depth)
{
	char f[300];
	int i = 0;

	if (seq->type != YAML_SEQUENCE_NODE)
		return yerr(y, seq, path, "expected a list of steps");
	FOR_ITEMS(seq, it) {
		snprintf(f, sizeof(f), "%s[%d]", path, i++);
		if (parse_op(y, node(y, *it), f, depth))
			return G_ERR_PARSE;
	}
	return G_OK;
}

static int parse_group(struct yctx *y, yaml_node_t *n, int gi)
{
	struct sim_wl *w = y->w;
	struct sim_group *g = &w->groups[gi];
	yaml_node_t *prog = NULL, *cpus = NULL;
	char path[64], f[128];
	bool have_nice = false, have_weight = false;

	snprintf(path, sizeof(path), "groups[%d]", gi);
	memset(g, 0, sizeof(*g));
	g->line = LINE(n);
	g->count = 1;
	g->weight = 100;
	g->aff = calloc(MAX_CPUS / 64, sizeof(uint64_t));
	if (!g->aff)
		return yerr(y, n, path, "out of memory");
	if (n->type != YAML_MAPPING_NODE)
		return yerr(y, n, path, "expected a mapping (name, count, program, ...)");
	FOR_PAIRS(n, p) {
		const char *k = scalar(node(y, p->key));
		yaml_node_t *v = node(y, p->value);
		snprintf(f, sizeof(f), "%s.%s", path, k ? k : "?");
		if (!k)
			return yerr(y, node(y, p->key), path, "keys must be plain words");
		if (!strcmp(k, "name")) {
			const char *s = scalar(v);
			if (!s || !s[0] || strlen(s) >= sizeof(g->name))
				return yerr(y, v, f, "expected a name (1..63 characters)");
			snprintf(g->name, sizeof(g->name), "%s", s);
		} else if (!strcmp(k, "comm")) {
			const char *s = scalar(v);
			if (!s || !s[0] || strlen(s) > 15)
				return yerr(y, v, f, "expected a command name (1..15 characters)");
			snprintf(g->comm, sizeof(g->comm), "%s", s);
		} else if (!strcmp(k, "count")) {
			if (get_int(y, v, f, 0, 100000, &g->count))
				return G_ERR_PARSE;
		} else if (!strcmp(k, "nice")) {
			if (get_int(y, v, f, -20, 19, &g->nice))
				return G_ERR_PARSE;
			have_nice = true;
		} else if (!strcmp(k, "weight")) {
			if (get_u64(y, v, f, 1, 10000, &g->weight))
				return G_ERR_PARSE;
			have_weight = true;
		} else if (!strcmp(k, "cpus")) {
			cpus = v;
		} else if (!strcmp(k, "kthread")) {
			const char *s = scalar(v);
			if (s && !strcmp(s, "percpu"))
				g->kthread = SIM_KT_PERCPU;
			else if (s && !strcmp(s, "shared"))
				g->kthread = SIM_KT_SHARED;
			else if (s && (!strcmp(s, "no") || !strcmp(s, "false")))
				g->kthread = SIM_KT_NONE;
			else
				return yerr(y, v, f, "expected percpu, shared or no");
		} else if (!strcmp(k, "start")) {
			if (get_range(y, v, f, &g->start_lo, &g->start_hi))
				return G_ERR_PARSE;
		} else if (!strcmp(k, "timer_slack")) {
			if (get_slack(y, v, f, &g->timer_slack_ns))
				return G_ERR_PARSE;
			g->slack_set = true;
		} else if (!strcmp(k, "program")) {
			prog = v;
		} else {
			return yerr(y, node(y, p->key), f, "unknown key (name, comm, count, nice, "
				    "weight, cpus, kthread, start, timer_slack, program)");
		}
	}
	if (!g->name[0])
		return yerr(y, n, path, "needs a name");
	for (int i = 0; i < gi; i++)
		if (!strcmp(w->groups[i].name, g->name))
			return yerr(y, n, path, "group name '%s' is used twice (line %d)", g->name,
				    w->groups[i].line);
	if (have_nice && have_weight)
		return yerr(y, n, path, "give nice or weight, not both");
	if (have_nice)
		g->weight = sim_nice_weight(g->nice);
	if (!g->comm[0])
		snprintf(g->comm, sizeof(g->comm), "%.15s", g->name);
	if (cpus) {
		snprintf(f, sizeof(f), "%s.cpus", path);
		if (parse_cpus(y, cpus, f, g))
			return G_ERR_PARSE;
	} else {
		for (int c = 0; c < w->nr_cpus; c++)
			g->aff[c / 64] |= 1ull << (c % 64);
		g->nr_allowed = w->nr_cpus;
	}
	if (g->kthread == SIM_KT_PERCPU && g->nr_allowed != 1)
		return yerr(y, n, path, "a percpu kthread needs cpus: with exactly one CPU");
	if (!prog)
		return yerr(y, n, path, "needs a program (a list of steps)");
	snprintf(f, sizeof(f), "%s.program", path);
	g->op0 = w->nops;
	cur_count = g->count;
	if (parse_program(y, prog, f, 0))
		return G_ERR_PARSE;
	g->nops = w->nops - g->op0;
	if (!g->nops)
		return yerr(y, prog, f, "the program is empty");
	return G_OK;
}

static int parse_section(struct yctx *y, yaml_node_t *n, const char *sec)
{
	struct sim_wl *w = y->w;
	char f[128];

	if (n->type != YAML_MAPPING_NODE)
		return yerr(y, n, sec, "expected a mapping");
	FOR_PAIRS(n, p) {
		const char *k = scalar(node(y, p->key));
		yaml_node_t *v = node(y, p->value);
		uint64_t u;
		int rc = G_OK;
		snprintf(f, sizeof(f), "%s.%s", sec, k ? k : "?");
		if (!k)
			return yerr(y, node(y, p->key), sec, "keys must be plain words");
		if (!strcmp(sec, "scheduler")) {
			if (!strcmp(k, "slice_ns_default"))
				rc = get_u64(y, v, f, 100000, 1000000000, &w->slice_ns_default);
			else if (!strcmp(k, "slice_ns_min"))
				rc = get_u64(y, v, f, 10000, 1000000000, &w->slice_ns_min);
			else if (!strcmp(k, "batch_max")) {
				rc = get_u64(y, v, f, 1, MAX_BATCH, &u);
				w->batch_max = (int)u;
			} else if (!strcmp(k, "stall_timeout_ms")) {
				rc = get_u64(y, v, f, 50, 60000, &u);
				w->stall_timeout_ns = u * 1000000ull;
			} else if (!strcmp(k, "watchdog_timeout_ms")) {
				/* 0 = the kernel's default (30 s), as for the live host */
				rc = scalar(v) && !strcmp(scalar(v), "0") ? (u = 0, G_OK) :
					get_u64(y, v, f, 500, 30000, &u);
				w->watchdog_ms = (uint32_t)u;
			} else if (!strcmp(k, "early_processing"))
				rc = get_bool(y, v, f, &w->early_processing);
			else
				return yerr(y, node(y, p->key), f, "unknown key (slice_ns_default, "
					    "slice_ns_min, batch_max, stall_timeout_ms, "
					    "watchdog_timeout_ms, early_processing)");
		} else if (!strcmp(sec, "host")) {
			if (!strcmp(k, "batch_ns"))
				rc = get_dur(y, v, f, &w->host_batch_ns);
			else if (!strcmp(k, "task_ns"))
				rc = get_dur(y, v, f, &w->host_task_ns);
			else if (!strcmp(k, "wake_ns"))
				rc = get_dur(y, v, f, &w->host_wake_ns);
			else if (!strcmp(k, "latency")) {
				const char *s = scalar(v);
				if (s && !strcmp(s, "model"))
					w->host_measured = false;
				else if (s && !strcmp(s, "measured"))
					w->host_measured = true;
				else
					rc = yerr(y, v, f, "expected model or measured");
			} else if (!strcmp(k, "scale")) {
				const char *s = scalar(v);
				char *end;
				double d = s ? strtod(s, &end) : -1;
				if (!s || end == s || *end || !(d > 0 && d <= 1e6))
					rc = yerr(y, v, f, "expected a factor in (0, 1e6]");
				else
					w->host_scale = d;
			} else
				return yerr(y, node(y, p->key), f, "unknown key (batch_ns, task_ns, "
					    "wake_ns, latency, scale)");
		} else if (!strcmp(sec, "topology")) {
			if (!strcmp(k, "smt"))
				rc = get_int(y, v, f, 1, 8, &w->smt);
			else if (!strcmp(k, "llc"))
				rc = get_int(y, v, f, 1, MAX_SIBLINGS, &w->llc);
			else
				return yerr(y, node(y, p->key), f, "unknown key (smt, llc)");
		}
		if (rc)
			return rc;
	}
	return G_OK;
}

/* channels: {NAME: {capacity: N}}: a pipe that holds N tokens; a signal blocks while it
 * is full (hackbench's writers). Parsed after the groups, so NAME must be used there. */
static int parse_channels(struct yctx *y, yaml_node_t *n)
{
	char f[160];

	if (n->type != YAML_MAPPING_NODE)
		return yerr(y, n, "channels", "expected a mapping of channel names");
	FOR_PAIRS(n, p) {
		const char *name = scalar(node(y, p->key));
		yaml_node_t *v = node(y, p->value);
		int id = -1;
		uint64_t cap = 0;
		snprintf(f, sizeof(f), "channels.%.60s", name ? name : "?");
		for (int i = 0; name && i < y->w->nchans; i++)
			if (y->w->chan_size[i] && !strcmp(y->w->chan_names[i], name))
				id = i;
		if (id < 0 || !strncmp(name, "fork:", 5))
			return yerr(y, node(y, p->key), f, "no wait or signal step uses this channel");
		if (v->type != YAML_MAPPING_NODE)
			return yerr(y, v, f, "expected {capacity: N}");
		FOR_PAIRS(v, q) {
			const char *k = scalar(node(y, q->key));
			char ff[200];
			snprintf(ff, sizeof(ff), "%s.%s", f, k ? k : "?");
			if (!k || strcmp(k, "capacity"))
				return yerr(y, node(y, q->key), ff, "unknown key (capacity)");
			if (get_u64(y, node(y, q->value), ff, 1, 1000000000, &cap))
				return G_ERR_PARSE;
		}
		for (int k = 0; k < y->w->chan_size[id]; k++)
			y->w->chan_cap[id + k] = cap;
	}
	return G_OK;
}

static int parse_strategies(struct yctx *y, yaml_node_t *n, yaml_node_t **names)
{
	struct sim_wl *w = y->w;
	char f[128];
	int i = 0;

	if (n->type != YAML_SEQUENCE_NODE)
		return yerr(y, n, "strategies", "expected a list");
	w->strat = calloc((size_t)(n->data.sequence.items.top - n->data.sequence.items.start) + 1,
			  sizeof(*w->strat));
	if (!w->strat)
		return yerr(y, n, "strategies", "out of memory");
	FOR_ITEMS(n, it) {
		yaml_node_t *e = node(y, *it);
		struct sim_strat *s = &w->strat[i];
		char path[32];
		snprintf(path, sizeof(path), "strategies[%d]", i);
		if (e->type != YAML_MAPPING_NODE)
			return yerr(y, e, path, "expected a mapping (group, priority, execution_time)");
		s->group = -1;
		names[i] = NULL;
		FOR_PAIRS(e, p) {
			const char *k = scalar(node(y, p->key));
			yaml_node_t *v = node(y, p->value);
			snprintf(f, sizeof(f), "%s.%s", path, k ? k : "?");
			if (k && !strcmp(k, "group"))
				names[i] = v;
			else if (k && !strcmp(k, "priority")) {
				if (get_bool(y, v, f, &s->priority))
					return G_ERR_PARSE;
			} else if (k && !strcmp(k, "execution_time")) {
				if (get_dur(y, v, f, &s->execution_time))
					return G_ERR_PARSE;
			} else
				return yerr(y, node(y, p->key), f, "unknown key (group, priority, "
					    "execution_time)");
		}
		if (!names[i])
			return yerr(y, e, path, "needs group");
		i++;
	}
	w->nstrat = i;
	return G_OK;
}

int sim_wl_finish(struct sim_wl *w, char *err, size_t errlen)
{
	if (w->ngroups == 0) {
		set_err(err, errlen, "%s: no groups: a workload needs at least one group of tasks",
			w->file);
		return G_ERR_PARSE;
	}
	if (w->slice_ns_min > w->slice_ns_default) {
		set_err(err, errlen, "%s: scheduler.slice_ns_min (%llu) is above slice_ns_default "
			"(%llu)", w->file, (unsigned long long)w->slice_ns_min,
			(unsigned long long)w->slice_ns_default);
		return G_ERR_RANGE;
	}
	/* The live config's cross-checks (host/cfg.c), so a workload runs what a live
	 * configuration could: the watchdog bounds of bpf/bounds.bpf.h. */
	w->watchdog_timeout_ns = (uint64_t)bounds_watchdog_ms(w->watchdog_ms) * 1000000ull;
	if (w->slice_ns_default > bounds_slice_max_ns(w->watchdog_ms)) {
		set_err(err, errlen, "%s: scheduler.slice_ns_default (%llu ns) is more than 1/8 of "
			"scheduler.watchdog_timeout_ms (%u ms): at most %llu", w->file,
			(unsigned long long)w->slice_ns_default, bounds_watchdog_ms(w->watchdog_ms),
			(unsigned long long)bounds_slice_max_ns(w->watchdog_ms));
		return G_ERR_RANGE;
	}
	if (w->stall_timeout_ns / 1000000ull * 2 > bounds_watchdog_ms(w->watchdog_ms)) {
		set_err(err, errlen, "%s: scheduler.stall_timeout_ms (%llu ms) is more than half of "
			"scheduler.watchdog_timeout_ms (%u ms): at most %u", w->file,
			(unsigned long long)(w->stall_timeout_ns / 1000000ull),
			bounds_watchdog_ms(w->watchdog_ms), bounds_watchdog_ms(w->watchdog_ms) / 2);
		return G_ERR_RANGE;
	}
	if (w->nr_cpus % w->smt) {
		set_err(err, errlen, "%s: topology.smt (%d) does not divide cpus (%d)", w->file,
			w->smt, w->nr_cpus);
		return G_ERR_RANGE;
	}
	if (w->llc == 0)
		w->llc = w->nr_cpus < MAX_SIBLINGS ? w->nr_cpus : MAX_SIBLINGS;
	if (w->llc % w->smt) {
		set_err(err, errlen, "%s: topology.llc (%d) is not a multiple of smt (%d)", w->file,
			w->llc, w->smt);
		return G_ERR_RANGE;
	}
	/* a group without its own timer_slack has the workload's (the model has no
	 * real-time tasks, whose slack the kernel sets to 0) */
	for (int g = 0; g < w->ngroups; g++)
		if (!w->groups[g].slack_set)
			w->groups[g].timer_slack_ns = w->timer_slack_ns;
	/* fork targets: names -> group ids */
	for (int i = 0; i < w->nops; i++) {
		struct sim_op *op = &w->ops[i];
		if (op->kind != OP_FORK || op->chan_n != -1)
			continue;
		const char *name = w->chan_names[op->chan] + 5;   /* after "fork:" */
		op->arg = -1;
		for (int g = 0; g < w->ngroups; g++)
			if (!strcmp(w->groups[g].name, name))
				op->arg = g;
		if (op->arg < 0) {
			set_err(err, errlen, "%s:%d: fork: no group named '%s'", w->file, op->line, name);
			return G_ERR_PARSE;
		}
		op->chan = -1;
		op->chan_n = 0;
	}
	return G_OK;
}

int sim_wl_load(struct sim_wl *w, const char *path, char *err, size_t errlen)
{
	struct yctx y;
	yaml_parser_t parser;
	yaml_node_t *root;
	yaml_node_t *groups = NULL, *strats = NULL, *chans = NULL;
	yaml_node_t *snames[4096];
	FILE *f;
	int rc = G_ERR_PARSE;
	size_t len = strlen(path);

	if (len > 5 && !strcmp(path + len - 5, ".json"))
		return sim_wl_load_rtapp(w, path, err, errlen);
	sim_wl_defaults(w);
	snprintf(w->file, sizeof(w->file), "%s", path);
	f = fopen(path, "r");
	if (!f) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return G_ERR_IO;
	}
	memset(&y, 0, sizeof(y));
	y.w = w;
	y.err = err;
	y.errlen = errlen;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &y.doc)) {
		set_err(err, errlen, "%s:%d: YAML syntax error: %s", path,
			(int)parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
		yaml_parser_delete(&parser);
		fclose(f);
		return G_ERR_PARSE;
	}
	yaml_parser_delete(&parser);
	fclose(f);
	root = yaml_document_get_root_node(&y.doc);
	if (!root) {
		set_err(err, errlen, "%s: empty workload file", path);
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		yerr(&y, root, "(top level)", "expected a mapping (cpus, duration, groups, ...)");
		goto out;
	}
	/* cpus first: group cpu lists are checked against it */
	FOR_PAIRS(root, p) {
		const char *k = scalar(node(&y, p->key));
		if (k && !strcmp(k, "cpus") && get_int(&y, node(&y, p->value), "cpus", 1, MAX_CPUS,
						       &w->nr_cpus))
			goto out;
	}
	snprintf(w->name, sizeof(w->name), "%.63s", strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
	FOR_PAIRS(root, p) {
		const char *k = scalar(node(&y, p->key));
		yaml_node_t *v = node(&y, p->value);
		if (!k) {
			yerr(&y, node(&y, p->key), "(top level)", "keys must be plain words");
			goto out;
		}
		if (!strcmp(k, "cpus"))
			continue;
		if (!strcmp(k, "name")) {
			if (!scalar(v) || strlen(scalar(v)) >= sizeof(w->name)) {
				yerr(&y, v, k, "expected a name (up to 63 characters)");
				goto out;
			}
			snprintf(w->name, sizeof(w->name), "%s", scalar(v));
		} else if (!strcmp(k, "seed")) {
			if (get_u64(&y, v, k, 0, UINT64_MAX, &w->seed))
				goto out;
		} else if (!strcmp(k, "duration")) {
			if (get_dur(&y, v, k, &w->duration_ns))
				goto out;
			if (w->duration_ns < 1000000 || w->duration_ns > 3600000000000ull) {
				yerr(&y, v, k, "must be in [1ms, 1h]");
				goto out;
			}
		} else if (!strcmp(k, "hz")) {
			if (get_int(&y, v, k, 100, 10000, &w->hz))
				goto out;
		} else if (!strcmp(k, "timer_slack")) {
			if (get_slack(&y, v, k, &w->timer_slack_ns))
				goto out;
		} else if (!strcmp(k, "scheduler") || !strcmp(k, "host") || !strcmp(k, "topology")) {
			if (parse_section(&y, v, k))
				goto out;
		} else if (!strcmp(k, "groups")) {
			groups = v;
		} else if (!strcmp(k, "strategies")) {
			strats = v;
		} else if (!strcmp(k, "channels")) {
			chans = v;
		} else {
			yerr(&y, node(&y, p->key), k, "unknown key (name, seed, duration, cpus, "
			     "topology, hz, timer_slack, scheduler, host, groups, channels, "
			     "strategies)");
			goto out;
		}
	}
	if (!groups) {
		yerr(&y, root, "groups", "missing: a workload needs a list of task groups");
		goto out;
	}
	if (groups->type != YAML_SEQUENCE_NODE) {
		yerr(&y, groups, "groups", "expected a list");
		goto out;
	}
	int ng = (int)(groups->data.sequence.items.top - groups->data.sequence.items.start);
	w->groups = calloc((size_t)ng + 1, sizeof(*w->groups));
	if (!w->groups) {
		set_err(err, errlen, "%s: out of memory", path);
		goto out;
	}
	FOR_ITEMS(groups, it) {
		w->ngroups++;
		if (parse_group(&y, node(&y, *it), w->ngroups - 1))
			goto out;
	}
	if (chans && parse_channels(&y, chans))
		goto out;
	if (strats) {
		if (strats->type == YAML_SEQUENCE_NODE &&
		    strats->data.sequence.items.top - strats->data.sequence.items.start > 4096) {
			yerr(&y, strats, "strategies", "at most 4096 entries");
			goto out;
		}
		if (parse_strategies(&y, strats, snames))
			goto out;
		for (int i = 0; i < w->nstrat; i++) {
			const char *gn = scalar(snames[i]);
			for (int g = 0; gn && g < w->ngroups; g++)
				if (!strcmp(w->groups[g].name, gn))
					w->strat[i].group = g;
			if (w->strat[i].group < 0) {
				char f[64];
				snprintf(f, sizeof(f), "strategies[%d].group", i);
				yerr(&y, snames[i], f, "no group named '%s'", gn ? gn : "?");
				goto out;
			}
		}
	}
	rc = sim_wl_finish(w, err, errlen);
out:
	yaml_document_delete(&y.doc);
	if (rc)
		sim_wl_free(w);
	return rc;
}
