/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cfg.c - configuration. Everything about an option (its dotted key, type, place in
 * struct cfg, bounds, default and description) is written once, in opts[] below; the
 * defaults, the YAML parser, the range checks, --help and the YAML dump all walk that
 * table. Strategy entries have their own little table, sopts[], with offsets into
 * struct cfg_strategy.
 *
 * Parsing uses libyaml's event API so that every value keeps its line number. The file
 * is parsed into a scratch copy of the configuration and copied back only on success:
 * a failed load leaves the caller's struct untouched.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common.h"
#include "cfg.h"
#include "../bpf/intf.h"

enum opt_type { OT_BOOL, OT_U32, OT_U64, OT_I32, OT_STR, OT_PATH };

#define OF_ZERO_OK 0x1 /* 0 is accepted besides [min, max] */
#define OF_REGEX   0x2 /* string must compile as a POSIX extended regex */
#define OF_LIVE    0x4 /* may change while the scheduler runs (API, SIGHUP) */

struct opt {
	const char   *key;   /* dotted key; for strategies just the field name */
	enum opt_type type;
	size_t        off;   /* offsetof into struct cfg (or struct cfg_strategy) */
	size_t        size;  /* for strings: the array size, terminating NUL included */
	uint64_t      min, max;
	unsigned      flags;
	const char   *def;   /* default, as the text a config file would hold */
	const char   *desc;
};

#define C_OFF(f)  offsetof(struct cfg, f)
#define C_SZ(f)   sizeof(((struct cfg *)0)->f)
#define S_OFF(f)  offsetof(struct cfg_strategy, f)
#define S_SZ(f)   sizeof(((struct cfg_strategy *)0)->f)

static const struct opt opts[] = {
	{ "scheduler.policy", OT_PATH, C_OFF(policy), C_SZ(policy), 0, 0, 0,
	  "policies/gthulhu.lua", "Lua policy script used when none is given on the command line" },
	{ "scheduler.slice_ns_default", OT_U64, C_OFF(slice_ns_default), 0,
	  100000, 1000000000, 0, "20000000",
	  "default time slice in ns, used when a policy leaves the slice at 0" },
	{ "scheduler.slice_ns_min", OT_U64, C_OFF(slice_ns_min), 0,
	  10000, 1000000000, 0, "1000000",
	  "smallest time slice in ns a policy should give (policies read it; BPF gives it to the kernel threads it runs first); must be <= slice_ns_default" },
	{ "scheduler.builtin_idle", OT_BOOL, C_OFF(builtin_idle), 0, 0, 1, 0, "false",
	  "select_cpu uses the kernel's built-in idle CPU selection" },
	{ "scheduler.early_processing", OT_BOOL, C_OFF(early_processing), 0, 0, 1, 0, "true",
	  "the fast path: a waking task its policy granted it (RL_DISP_FAST) runs at once on an idle CPU (or a sync waker's CPU) in BPF, and the policy is told afterwards (RL_ENQ_PLACED); false: every wake-up goes to the policy" },
	{ "scheduler.host_poll_us", OT_U32, C_OFF(host_poll_us), 0, 0, 10000, 0, "0",
	  "after each batch the host polls the ringbuf this many us before it sleeps (0: never): records arriving meanwhile cost no wake-up, the polling costs CPU time" },
	{ "scheduler.wake_batch", OT_U32, C_OFF(wake_batch), 0, 0, 4096, 0, "0",
	  "batch the host's wake-ups: BPF wakes it when this many records wait or the oldest has waited wake_delay_us (0: the ringbuf wakes the host whenever it has caught up)" },
	{ "scheduler.wake_delay_us", OT_U32, C_OFF(wake_delay_us), 0, 1, 1000000, 0, "1000",
	  "with wake_batch: the longest a record waits for the host's wake-up (checked at each enqueue and dispatch)" },
	{ "scheduler.host_last", OT_BOOL, C_OFF(host_last), 0, 0, 1, 0, "false",
	  "experiment: a CPU serves the host's queue after its own and the shared DSQ (as scx_rustland_core does), unless a host thread has waited slice_ns_min" },
	{ "scheduler.wakeup_preempt", OT_BOOL, C_OFF(wakeup_preempt), 0, 0, 1, 0, "false",
	  "a woken task whose decided vtime is earlier (by more than slice_ns_min) than that of the task running on its CPU preempts it; the preempted task keeps its decision and the slice it has left" },
	{ "scheduler.partial", OT_BOOL, C_OFF(partial), 0, 0, 1, 0, "false",
	  "partial switch (SCX_OPS_SWITCH_PARTIAL): only tasks set to SCHED_EXT are scheduled by the policy, the rest stay with the kernel's scheduler" },
	{ "scheduler.debug", OT_BOOL, C_OFF(debug), 0, 0, 1, 0, "false",
	  "the BPF side prints trace events (bpf_printk)" },
	{ "scheduler.batch_max", OT_U32, C_OFF(batch_max), 0, 1, MAX_BATCH, 0, "4096",
	  "most tasks handed to the policy in one call" },
	{ "scheduler.stall_timeout_ms", OT_U32, C_OFF(stall_timeout_ms), 0, 50, 60000, 0, "1000",
	  "ms the host may stay silent with tasks pending before BPF dispatches them itself" },
	{ "scheduler.watchdog_timeout_ms", OT_U32, C_OFF(watchdog_timeout_ms), 0,
	  500, 30000, OF_ZERO_OK, "0",
	  "sched_ext watchdog timeout in ms; 0 = the kernel default" },
	{ "scheduler.lua_heap_max_mb", OT_U32, C_OFF(lua_heap_max_mb), 0, 8, 65536, OF_ZERO_OK, "256",
	  "MiB the policy's Lua heap may hold; past it the host decides every task itself until a reload; 0 = no cap" },
	{ "scheduler.topology_root", OT_PATH, C_OFF(topology_root), C_SZ(topology_root), 0, 0, 0,
	  "/sys/devices/system/cpu", "sysfs directory the CPU cache topology is read from" },

	{ "api.enabled", OT_BOOL, C_OFF(api_enabled), 0, 0, 1, 0, "false",
	  "serve the HTTP API" },
	{ "api.listen", OT_STR, C_OFF(api_listen), C_SZ(api_listen), 0, 0, 0, "127.0.0.1",
	  "IPv4 or IPv6 address the API binds to (loopback by default)" },
	{ "api.port", OT_U32, C_OFF(api_port), 0, 1, 65535, 0, "8080",
	  "TCP port the API listens on" },
	{ "api.public_key", OT_PATH, C_OFF(api_public_key), C_SZ(api_public_key), 0, 0, 0, "",
	  "RSA public key PEM (PKIX): verifies tokens (default: derived from private_key); client mode sends it for a token" },
	{ "api.private_key", OT_PATH, C_OFF(api_private_key), C_SZ(api_private_key), 0, 0, 0, "",
	  "RSA private key PEM that signs the tokens the API issues (needed when api.auth is on)" },
	{ "api.token_ttl_s", OT_U32, C_OFF(api_token_ttl_s), 0, 1, 86400, OF_LIVE, "3600",
	  "lifetime in seconds of the tokens the API issues" },
	{ "api.auth", OT_BOOL, C_OFF(api_auth), 0, 0, 1, 0, "true",
	  "/api/v1 routes (all but auth/token) need an RS256 Bearer token" },
	{ "api.max_body_bytes", OT_U32, C_OFF(api_max_body_bytes), 0, 1024, 67108864, 0, "1048576",
	  "largest request body accepted (larger: 413)" },
	{ "api.max_connections", OT_U32, C_OFF(api_max_connections), 0, 1, 1024, 0, "64",
	  "most concurrent API connections (one thread each)" },
	{ "api.tls_cert", OT_PATH, C_OFF(api_tls_cert), C_SZ(api_tls_cert), 0, 0, 0, "",
	  "PEM certificate: serve HTTPS (with api.tls_key); \"\" = plain HTTP" },
	{ "api.tls_key", OT_PATH, C_OFF(api_tls_key), C_SZ(api_tls_key), 0, 0, 0, "",
	  "PEM private key of api.tls_cert" },
	{ "api.policy_dir", OT_PATH, C_OFF(api_policy_dir), C_SZ(api_policy_dir), 0, 0, 0, "",
	  "PUT /api/v1/policy may switch only to .lua files inside this directory; \"\" = switching off" },
	{ "api.allow_policy_upload", OT_BOOL, C_OFF(api_allow_policy_upload), 0, 0, 1, 0, "false",
	  "PUT /api/v1/policy may upload policy source into api.policy_dir (policies run as root)" },
	{ "api.url", OT_STR, C_OFF(api_url), C_SZ(api_url), 0, 0, 0, "",
	  "client mode: base URL of a Gthulhu decision maker to fetch strategies from and report metrics to; \"\" = off" },
	{ "api.interval", OT_U32, C_OFF(api_interval), 0, 1, 3600, OF_LIVE, "10",
	  "client mode: seconds between strategy fetches / metric reports" },

	{ "dryrun.rate", OT_U32, C_OFF(dryrun_rate), 0, 1, 10000000, OF_LIVE, "20000",
	  "--dry-run: most synthetic task records handed to the policy per second" },
	{ "dryrun.tasks", OT_U32, C_OFF(dryrun_tasks), 0, 1, MAX_BATCH, 0, "32",
	  "--dry-run: number of synthetic threads, split over the classes of dryrun.mix" },
	{ "dryrun.mix", OT_STR, C_OFF(dryrun_mix), C_SZ(dryrun_mix), 0, 0, 0, "cpu:1,io:1",
	  "--dry-run: CLASS[:SHARE],... with classes cpu (nice 0, whole slices), io (50 us "
	  "bursts, 2 ms sleeps), heavy (nice -5), light (nice 5); one process per class" },
	{ "dryrun.duration_s", OT_U32, C_OFF(dryrun_duration_s), 0, 0, 86400, 0, "0",
	  "--dry-run: stop after this many seconds; 0 = run until SIGINT/SIGTERM" },
	{ "dryrun.pid_base", OT_U32, C_OFF(dryrun_pid_base), 0, 2, 2000000000, 0, "100000",
	  "--dry-run: pid (and tgid) of the first synthetic thread; the others follow" },
};
#define NR_OPTS ((int)(sizeof(opts) / sizeof(opts[0])))

static const struct opt sopts[] = {
	{ "pid", OT_I32, S_OFF(pid), 0, 1, INT32_MAX, 0, "0",
	  "process id: matches the process and all its threads (pid or tgid); 0 = not set" },
	{ "command_regex", OT_STR, S_OFF(command_regex), S_SZ(command_regex), 0, 0, OF_REGEX, "",
	  "POSIX extended regex matched against the process name (/proc/PID/comm); \"\" = not set" },
	{ "cgroup", OT_STR, S_OFF(cgroup), S_SZ(cgroup), 0, 0, 0, "",
	  "cgroup path prefix (as in /proc/PID/cgroup, e.g. /system.slice/nginx.service); \"\" = not set" },
	{ "pod_uid", OT_STR, S_OFF(pod_uid), S_SZ(pod_uid), 0, 0, 0, "",
	  "Kubernetes pod UID, matched in kubepods cgroup paths (its pause process excluded); \"\" = not set" },
	{ "container_id", OT_STR, S_OFF(container_id), S_SZ(container_id), 0, 0, 0, "",
	  "container id or a prefix of >= 12 hex digits, matched in kubepods cgroup paths; \"\" = not set" },
	{ "priority", OT_BOOL, S_OFF(priority), 0, 0, 1, 0, "false",
	  "matching tasks run before all others (vtime 0)" },
	{ "execution_time", OT_U64, S_OFF(execution_time), 0, 10000, 1000000000ull, OF_ZERO_OK, "0",
	  "time slice in ns for matching tasks; 0 = the policy's own; at most 1/8 of the watchdog timeout" },
};
#define NR_SOPTS ((int)(sizeof(sopts) / sizeof(sopts[0])))

static const char *type_name(enum opt_type t)
{
	switch (t) {
	case OT_BOOL: return "bool";
	case OT_U32:  return "u32";
	case OT_U64:  return "u64";
	case OT_I32:  return "int";
	case OT_STR:  return "string";
	case OT_PATH: return "path";
	}
	return "?";
}

/* "(expected ...)" text: what a valid value of this option looks like. */
static void expect_text(const struct opt *o, char *buf, size_t len)
{
	switch (o->type) {
	case OT_BOOL:
		snprintf(buf, len, "expected bool: true/false, yes/no, on/off");
		break;
	case OT_U32: case OT_U64: case OT_I32:
		if (o->flags & OF_ZERO_OK)
			snprintf(buf, len, "expected %s: 0 or in [%" PRIu64 ", %" PRIu64 "]",
				 type_name(o->type), o->min, o->max);
		else
			snprintf(buf, len, "expected %s in [%" PRIu64 ", %" PRIu64 "]",
				 type_name(o->type), o->min, o->max);
		break;
	case OT_STR: case OT_PATH:
		snprintf(buf, len, "expected %s%s of at most %zu bytes", type_name(o->type),
			 (o->flags & OF_REGEX) ? " (POSIX extended regex)" : "", o->size - 1);
		break;
	}
}

static bool is_null_text(const char *s)
{
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

/* Strict decimal: digits only, no sign, no spaces, no overflow. Returns G_OK, or
 * G_ERR_PARSE (not a number) / G_ERR_RANGE (negative, too large) with *why set. */
static int parse_dec(const char *s, uint64_t *out, const char **why)
{
	uint64_t v = 0;
	const char *p = s;
	bool neg = false;

	if (*p == '-') {
		neg = true;
		p++;
	}
	if (!*p) {
		*why = "not a decimal integer";
		return G_ERR_PARSE;
	}
	for (; *p; p++) {
		if (*p < '0' || *p > '9') {
			*why = "not a decimal integer";
			return G_ERR_PARSE;
		}
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10) {
			*why = neg ? "negative" : "too large";
			return G_ERR_RANGE;
		}
		v = v * 10 + d;
	}
	if (neg) {
		*why = "negative";
		return G_ERR_RANGE;
	}
	*out = v;
	return G_OK;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };

	for (int i = 0; i < 3; i++) {
		if (!strcasecmp(s, yes[i])) { *out = true; return 0; }
		if (!strcasecmp(s, no[i])) { *out = false; return 0; }
	}
	return -1;
}

/* Convert text and store it at base + o->off. On failure, fill why[] (without the
 * "(expected ...)" part) and return G_ERR_PARSE or G_ERR_RANGE. `plain_null` says the
 * scalar was an unquoted empty/~/null. */
static int set_value(const struct opt *o, void *base, const char *text, bool plain_null,
		     char *why, size_t whylen)
{
	char *dst = (char *)base + o->off;
	const char *reason;
	uint64_t v;
	bool b;
	int rc;

	switch (o->type) {
	case OT_BOOL:
		if (plain_null) { snprintf(why, whylen, "missing value"); return G_ERR_PARSE; }
		if (parse_bool(text, &b)) {
			snprintf(why, whylen, "'%s' is not a boolean", text);
			return G_ERR_PARSE;
		}
		*(bool *)dst = b;
		return G_OK;
	case OT_U32: case OT_U64: case OT_I32:
		if (plain_null) { snprintf(why, whylen, "missing value"); return G_ERR_PARSE; }
		if ((rc = parse_dec(text, &v, &reason))) {
			snprintf(why, whylen, "'%s' is %s", text, reason);
			return rc;
		}
		if (v > o->max) {
			snprintf(why, whylen, "%" PRIu64 " is too large", v);
			return G_ERR_RANGE;
		}
		if (v < o->min && !(v == 0 && (o->flags & OF_ZERO_OK))) {
			snprintf(why, whylen, "%" PRIu64 " is too small", v);
			return G_ERR_RANGE;
		}
		if (o->type == OT_U32)
			*(uint32_t *)dst = (uint32_t)v;
		else if (o->type == OT_I32)
			*(int32_t *)dst = (int32_t)v;
		else
			*(uint64_t *)dst = v;
		return G_OK;
	case OT_STR: case OT_PATH: {
		if (plain_null)
			text = "";
		size_t n = strlen(text);
		if (n >= o->size) {
			snprintf(why, whylen, "value is %zu bytes long", n);
			return G_ERR_RANGE;
		}
		if ((o->flags & OF_REGEX) && n) {
			regex_t re;
			int rrc = regcomp(&re, text, REG_EXTENDED | REG_NOSUB);
			if (rrc) {
				char msg[128];
				regerror(rrc, &re, msg, sizeof(msg));
				snprintf(why, whylen, "'%s' is not a valid regex: %s", text, msg);
				return G_ERR_PARSE;
			}
			regfree(&re);
		}
		memcpy(dst, text, n + 1);
		return G_OK;
	}
	}
	return G_ERR;
}

void cfg_defaults(struct cfg *c)
{
	char why[256];

	memset(c, 0, sizeof(*c));
	for (int i = 0; i < NR_OPTS; i++) {
		/* The table's defaults are valid by construction (tests/test_cfg.c checks). */
		if (set_value(&opts[i], c, opts[i].def, false, why, sizeof(why)))
			g_err("cfg: bad built-in default for %s: %s", opts[i].key, why);
	}
}

/* ------------------------------------------------------------------------------------ */
/* Parser */

struct pctx {
	yaml_parser_t p;
	const char   *name;
	const char   *buf;
	size_t        len;
	FILE         *warn;
	char         *err;
	size_t        errlen;
	struct cfg   *c;              /* scratch copy being filled */
	int           line[NR_OPTS];  /* line each option was set on, 0 = not in this file */
	bool          yaml_failed;    /* libyaml reported an error: message already written */
};

/* Append "\n    <text of line `line`>" to err. */
static void append_line_text(struct pctx *x, int line)
{
	const char *s = x->buf, *end = x->buf + x->len;
	size_t used = strlen(x->err);

	if (line < 1 || !s)
		return;
	for (int l = 1; l < line && s < end; s++)
		if (*s == '\n')
			l++;
	if (s >= end && line > 1)
		return;
	const char *e = memchr(s, '\n', (size_t)(end - s));
	if (!e)
		e = end;
	if (e > s && e[-1] == '\r')
		e--;
	if (used < x->errlen)
		snprintf(x->err + used, x->errlen - used, "\n    %.*s", (int)(e - s), s);
}

static int fail(struct pctx *x, int rc, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct pctx *x, int rc, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!x->err || !x->errlen)
		return rc;
	if (line > 0)
		n = snprintf(x->err, x->errlen, "%s:%d: ", x->name, line);
	else
		n = snprintf(x->err, x->errlen, "%s: ", x->name);
	if (n < 0 || (size_t)n >= x->errlen)
		return rc;
	va_start(ap, fmt);
	vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	append_line_text(x, line);
	return rc;
}

static void warnf(struct pctx *x, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void warnf(struct pctx *x, int line, const char *fmt, ...)
{
	va_list ap;

	if (!x->warn)
		return;
	fprintf(x->warn, "%s:%d: ", x->name, line);
	va_start(ap, fmt);
	vfprintf(x->warn, fmt, ap);
	va_end(ap);
	fputc('\n', x->warn);
}

static int next(struct pctx *x, yaml_event_t *ev)
{
	if (yaml_parser_parse(&x->p, ev))
		return G_OK;
	int line = (int)x->p.problem_mark.line + 1;
	const char *problem = x->p.problem ? x->p.problem : "unknown error";
	x->yaml_failed = true;
	if (x->p.context)
		return fail(x, G_ERR_PARSE, line, "malformed YAML: %s %s", problem, x->p.context);
	return fail(x, G_ERR_PARSE, line, "malformed YAML: %s", problem);
}

static int ev_line(const yaml_event_t *ev)
{
	return (int)ev->start_mark.line + 1;
}

static const char *ev_kind(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_MAPPING_START_EVENT:  return "a mapping";
	case YAML_SEQUENCE_START_EVENT: return "a sequence";
	case YAML_SCALAR_EVENT:         return "a scalar";
	case YAML_ALIAS_EVENT:          return "an alias";
	default:                        return "nothing";
	}
}

static bool ev_plain_null(const yaml_event_t *ev)
{
	return ev->type == YAML_SCALAR_EVENT &&
	       ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       is_null_text((const char *)ev->data.scalar.value);
}

/* Skip the rest of a node whose first event is `ev` (already consumed). */
static int skip_node(struct pctx *x, const yaml_event_t *first)
{
	int depth = (first->type == YAML_MAPPING_START_EVENT ||
		     first->type == YAML_SEQUENCE_START_EVENT) ? 1 : 0;
	yaml_event_t ev;

	while (depth > 0) {
		int rc = next(x, &ev);
		if (rc)
			return rc;
		if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT)
			depth++;
		else if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT)
			depth--;
		yaml_event_delete(&ev);
	}
	return G_OK;
}

/* Read the value node of option o (key seen on key_line) into base. */
static int parse_value(struct pctx *x, const struct opt *o, const char *key, int key_line,
		       void *base)
{
	char why[512], exp[128];
	yaml_event_t ev;
	int rc = next(x, &ev);

	if (rc)
		return rc;
	expect_text(o, exp, sizeof(exp));
	if (ev.type != YAML_SCALAR_EVENT) {
		rc = fail(x, G_ERR_PARSE, key_line, "%s: %s where a scalar was expected (%s)",
			  key, ev_kind(&ev), exp);
		yaml_event_delete(&ev);
		return rc;
	}
	rc = set_value(o, base, (const char *)ev.data.scalar.value, ev_plain_null(&ev),
		       why, sizeof(why));
	if (rc)
		rc = fail(x, rc, ev_line(&ev), "%s: %s (%s)", key, why, exp);
	yaml_event_delete(&ev);
	return rc;
}

static const struct opt *find_opt(const struct opt *tab, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(tab[i].key, key))
			return &tab[i];
	return NULL;
}

/* scheduler: / api: — a mapping of option names below `section`. */
static int parse_section(struct pctx *x, const char *section, int sec_line)
{
	yaml_event_t ev;
	char key[256];
	int rc = next(x, &ev);

	if (rc)
		return rc;
	if (ev_plain_null(&ev)) {           /* "scheduler:" with nothing below */
		yaml_event_delete(&ev);
		return G_OK;
	}
	if (ev.type != YAML_MAPPING_START_EVENT) {
		rc = fail(x, G_ERR_PARSE, sec_line, "%s: %s where a mapping was expected",
			  section, ev_kind(&ev));
		yaml_event_delete(&ev);
		return rc;
	}
	yaml_event_delete(&ev);
	for (;;) {
		if ((rc = next(x, &ev)))
			return rc;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return G_OK;
		}
		int line = ev_line(&ev);
		if (ev.type != YAML_SCALAR_EVENT) {
			rc = fail(x, G_ERR_PARSE, line, "%s: keys must be scalars, got %s",
				  section, ev_kind(&ev));
			yaml_event_delete(&ev);
			return rc;
		}
		snprintf(key, sizeof(key), "%.64s.%.180s", section, (const char *)ev.data.scalar.value);
		yaml_event_delete(&ev);
		const struct opt *o = find_opt(opts, NR_OPTS, key);
		if (o) {
			if ((rc = parse_value(x, o, key, line, x->c)))
				return rc;
			x->line[o - opts] = line;
		} else {
			warnf(x, line, "unknown key '%s' (ignored)", key);
			if ((rc = next(x, &ev)))
				return rc;
			rc = skip_node(x, &ev);
			yaml_event_delete(&ev);
			if (rc)
				return rc;
		}
	}
}

static int parse_strategy(struct pctx *x, int idx, int item_line)
{
	struct cfg_strategy *s = &x->c->strategies[idx];
	yaml_event_t ev;
	char key[256];
	int rc;

	memset(s, 0, sizeof(*s));
	s->line = item_line;
	for (;;) {
		if ((rc = next(x, &ev)))
			return rc;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		int line = ev_line(&ev);
		if (ev.type != YAML_SCALAR_EVENT) {
			rc = fail(x, G_ERR_PARSE, line, "strategies[%d]: keys must be scalars, got %s",
				  idx, ev_kind(&ev));
			yaml_event_delete(&ev);
			return rc;
		}
		snprintf(key, sizeof(key), "strategies[%d].%s", idx,
			 (const char *)ev.data.scalar.value);
		const struct opt *o = find_opt(sopts, NR_SOPTS, (const char *)ev.data.scalar.value);
		yaml_event_delete(&ev);
		/* Unlike an unknown option, an unknown strategy key is an error: a misspelt
		 * "priority" would silently give a strategy other effects than intended. */
		if (!o)
			return fail(x, G_ERR_PARSE, line, "%s: unknown strategy key (expected pid, "
				    "command_regex, cgroup, pod_uid, container_id, priority or "
				    "execution_time)", key);
		if ((rc = parse_value(x, o, key, line, s)))
			return rc;
	}
	if (s->pid <= 0 && !s->command_regex[0] && !s->cgroup[0] && !s->pod_uid[0] &&
	    !s->container_id[0])
		return fail(x, G_ERR_PARSE, item_line, "strategies[%d]: a strategy needs a pid, "
			    "a command_regex, a cgroup, a pod_uid or a container_id", idx);
	return G_OK;
}

static int parse_strategies(struct pctx *x, int key_line)
{
	yaml_event_t ev;
	int rc = next(x, &ev);

	if (rc)
		return rc;
	x->c->nr_strategies = 0;            /* the file's list replaces the previous one */
	if (ev_plain_null(&ev)) {
		yaml_event_delete(&ev);
		return G_OK;
	}
	if (ev.type != YAML_SEQUENCE_START_EVENT) {
		rc = fail(x, G_ERR_PARSE, key_line, "strategies: %s where a sequence of "
			  "mappings was expected", ev_kind(&ev));
		yaml_event_delete(&ev);
		return rc;
	}
	yaml_event_delete(&ev);
	for (int i = 0;; i++) {
		if ((rc = next(x, &ev)))
			return rc;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return G_OK;
		}
		int line = ev_line(&ev);
		if (i >= CFG_MAX_STRATEGIES) {
			yaml_event_delete(&ev);
			return fail(x, G_ERR_RANGE, line, "strategies: more than %d strategies",
				    CFG_MAX_STRATEGIES);
		}
		if (ev.type != YAML_MAPPING_START_EVENT) {
			rc = fail(x, G_ERR_PARSE, line, "strategies[%d]: %s where a mapping was "
				  "expected (keys pid, command_regex, priority, execution_time)",
				  i, ev_kind(&ev));
			yaml_event_delete(&ev);
			return rc;
		}
		yaml_event_delete(&ev);
		if ((rc = parse_strategy(x, i, line)))
			return rc;
		x->c->nr_strategies = i + 1;
	}
}

static int parse_top(struct pctx *x)
{
	yaml_event_t ev;
	int rc;

	for (;;) {
		if ((rc = next(x, &ev)))
			return rc;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return G_OK;
		}
		int line = ev_line(&ev);
		if (ev.type != YAML_SCALAR_EVENT) {
			rc = fail(x, G_ERR_PARSE, line, "keys must be scalars, got %s", ev_kind(&ev));
			yaml_event_delete(&ev);
			return rc;
		}
		char key[256];
		snprintf(key, sizeof(key), "%s", (const char *)ev.data.scalar.value);
		yaml_event_delete(&ev);
		if (!strcmp(key, "scheduler") || !strcmp(key, "api") || !strcmp(key, "dryrun")) {
			rc = parse_section(x, key, line);
		} else if (!strcmp(key, "strategies")) {
			rc = parse_strategies(x, line);
		} else {
			warnf(x, line, "unknown key '%s' (ignored)", key);
			if ((rc = next(x, &ev)))
				return rc;
			rc = skip_node(x, &ev);
			yaml_event_delete(&ev);
		}
		if (rc)
			return rc;
	}
}

static int parse_stream(struct pctx *x)
{
	yaml_event_t ev;
	int rc, docs = 0;

	for (;;) {
		if ((rc = next(x, &ev)))
			return rc;
		yaml_event_type_t t = ev.type;
		int line = ev_line(&ev);
		yaml_event_delete(&ev);
		if (t == YAML_STREAM_END_EVENT)
			return G_OK;
		if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_END_EVENT)
			continue;
		if (t != YAML_DOCUMENT_START_EVENT)
			return fail(x, G_ERR_PARSE, line, "malformed YAML: unexpected event");
		if (++docs > 1)
			return fail(x, G_ERR_PARSE, line, "only one YAML document is allowed");
		if ((rc = next(x, &ev)))
			return rc;
		line = ev_line(&ev);
		if (ev.type == YAML_MAPPING_START_EVENT) {
			yaml_event_delete(&ev);
			if ((rc = parse_top(x)))
				return rc;
		} else if (ev_plain_null(&ev)) {
			yaml_event_delete(&ev);        /* "---" alone: an empty config */
		} else {
			rc = fail(x, G_ERR_PARSE, line, "the top level must be a mapping, got %s",
				  ev_kind(&ev));
			yaml_event_delete(&ev);
			return rc;
		}
	}
}

uint32_t cfg_watchdog_ms(const struct cfg *c)
{
	return bounds_watchdog_ms(c->watchdog_timeout_ms);
}

uint64_t cfg_slice_max_ns(const struct cfg *c)
{
	return bounds_slice_max_ns(c->watchdog_timeout_ms);
}

static int opt_index(size_t off)
{
	for (int i = 0; i < NR_OPTS; i++)
		if (opts[i].off == off)
			return i;
	return 0;
}

/* Checks between options, after the whole file is read. A violated pair is reported at
 * the line of the option this file set (the first one if it set both). */
static int cross_check(struct pctx *x)
{
	const struct cfg *c = x->c;
	int imin = opt_index(C_OFF(slice_ns_min)), idef = opt_index(C_OFF(slice_ns_default));
	int istall = opt_index(C_OFF(stall_timeout_ms));
	int iwd = opt_index(C_OFF(watchdog_timeout_ms));
	uint32_t wd = cfg_watchdog_ms(c);
	uint64_t smax = cfg_slice_max_ns(c);

	if (c->slice_ns_min > c->slice_ns_default) {
		int line = x->line[imin] ? x->line[imin] : x->line[idef];
		const char *key = x->line[imin] || !x->line[idef] ? opts[imin].key : opts[idef].key;
		return fail(x, G_ERR_RANGE, line, "%s: scheduler.slice_ns_min (%" PRIu64 ") must "
			    "be <= scheduler.slice_ns_default (%" PRIu64 ")", key,
			    c->slice_ns_min, c->slice_ns_default);
	}
	if (c->slice_ns_default > smax) {
		if (!x->line[idef] && x->line[iwd])
			return fail(x, G_ERR_RANGE, x->line[iwd], "%s: scheduler.slice_ns_default "
				    "(%" PRIu64 " ns) is more than 1/8 of it (%u ms): raise the "
				    "watchdog or lower slice_ns_default to at most %" PRIu64,
				    opts[iwd].key, c->slice_ns_default, wd, smax);
		return fail(x, G_ERR_RANGE, x->line[idef], "%s: %" PRIu64 " ns is more than 1/8 of "
			    "scheduler.watchdog_timeout_ms (%u ms): at most %" PRIu64, opts[idef].key,
			    c->slice_ns_default, wd, smax);
	}
	if ((uint64_t)c->stall_timeout_ms * 2 > wd) {
		if (!x->line[istall] && x->line[iwd])
			return fail(x, G_ERR_RANGE, x->line[iwd], "%s: scheduler.stall_timeout_ms "
				    "(%u ms) is more than half of it (%u ms): raise the watchdog or "
				    "lower stall_timeout_ms to at most %u", opts[iwd].key,
				    c->stall_timeout_ms, wd, wd / 2);
		return fail(x, G_ERR_RANGE, x->line[istall], "%s: %u ms is more than half of "
			    "scheduler.watchdog_timeout_ms (%u ms): at most %u", opts[istall].key,
			    c->stall_timeout_ms, wd, wd / 2);
	}
	for (int i = 0; i < c->nr_strategies; i++) {
		const struct cfg_strategy *st = &c->strategies[i];

		if (st->execution_time > smax)
			return fail(x, G_ERR_RANGE, st->line, "strategies[%d].execution_time: %" PRIu64
				    " ns is more than 1/8 of scheduler.watchdog_timeout_ms (%u ms): "
				    "at most %" PRIu64, i, st->execution_time, wd, smax);
	}
	return G_OK;
}

int cfg_load_buffer(struct cfg *c, const char *name, const char *buf, size_t len,
		    FILE *warn, char *err, size_t errlen)
{
	struct pctx x;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	memset(&x, 0, sizeof(x));
	x.name = name ? name : "<config>";
	x.buf = buf;
	x.len = len;
	x.warn = warn;
	x.err = err;
	x.errlen = errlen;
	x.c = malloc(sizeof(*c));
	if (!x.c) {
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", x.name);
		return G_ERR_NOMEM;
	}
	memcpy(x.c, c, sizeof(*c));
	if (!yaml_parser_initialize(&x.p)) {
		free(x.c);
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot initialize the YAML parser", x.name);
		return G_ERR_NOMEM;
	}
	yaml_parser_set_input_string(&x.p, (const unsigned char *)(buf ? buf : ""), buf ? len : 0);
	rc = parse_stream(&x);
	if (!rc)
		rc = cross_check(&x);
	if (!rc) {
		snprintf(x.c->file, sizeof(x.c->file), "%s", x.name);
		memcpy(c, x.c, sizeof(*c));
	}
	yaml_parser_delete(&x.p);
	free(x.c);
	return rc;
}

int cfg_load_file(struct cfg *c, const char *path, FILE *warn, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc;

	if (!f) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return G_ERR_IO;
	}
	for (;;) {
		if (len + 4096 + 1 > cap) {
			size_t ncap = cap ? cap * 2 : 16384;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				fclose(f);
				if (err && errlen)
					snprintf(err, errlen, "%s: out of memory", path);
				return G_ERR_NOMEM;
			}
			buf = nb;
			cap = ncap;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		int e = errno;
		free(buf);
		fclose(f);
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(e ? e : EIO));
		return G_ERR_IO;
	}
	fclose(f);
	buf[len] = '\0';
	rc = cfg_load_buffer(c, path, buf, len, warn, err, errlen);
	free(buf);
	return rc;
}

/* ------------------------------------------------------------------------------------ */
/* The table, for the API */

int cfg_nr_keys(void) { return NR_OPTS; }
const char *cfg_key(int i) { return i >= 0 && i < NR_OPTS ? opts[i].key : NULL; }
bool cfg_key_live(int i) { return i >= 0 && i < NR_OPTS && (opts[i].flags & OF_LIVE); }

enum cfg_kind cfg_key_kind(int i)
{
	switch (opts[i].type) {
	case OT_BOOL: return CFG_BOOL;
	case OT_U32: case OT_U64: case OT_I32: return CFG_INT;
	default: return CFG_STRING;
	}
}

int cfg_find_key(const char *key)
{
	const struct opt *o = find_opt(opts, NR_OPTS, key);
	return o ? (int)(o - opts) : -1;
}

static void value_text(const struct opt *o, const void *base, char *buf, size_t len)
{
	const char *p = (const char *)base + o->off;

	switch (o->type) {
	case OT_BOOL: snprintf(buf, len, "%s", *(const bool *)p ? "true" : "false"); break;
	case OT_U32:  snprintf(buf, len, "%" PRIu32, *(const uint32_t *)p); break;
	case OT_U64:  snprintf(buf, len, "%" PRIu64, *(const uint64_t *)p); break;
	case OT_I32:  snprintf(buf, len, "%" PRId32, *(const int32_t *)p); break;
	case OT_STR: case OT_PATH: snprintf(buf, len, "%s", p); break;
	}
}

void cfg_get_text(const struct cfg *c, int i, char *buf, size_t len)
{
	value_text(&opts[i], c, buf, len);
}

static int set_checked(const struct opt *o, void *base, size_t size, const char *text,
		       char *why, size_t whylen)
{
	char exp[128], w[512];
	char *scratch = malloc(size);
	int rc;

	if (!scratch) {
		snprintf(why, whylen, "out of memory");
		return G_ERR_NOMEM;
	}
	memcpy(scratch, base, size);
	rc = set_value(o, scratch, text, false, w, sizeof(w));
	if (rc) {
		expect_text(o, exp, sizeof(exp));
		snprintf(why, whylen, "%s (%s)", w, exp);
	} else {
		memcpy(base, scratch, size);
	}
	free(scratch);
	return rc;
}

int cfg_set_text(struct cfg *c, int i, const char *text, char *why, size_t whylen)
{
	if (i < 0 || i >= NR_OPTS) {
		snprintf(why, whylen, "unknown key");
		return G_ERR_PARSE;
	}
	struct cfg *t = malloc(sizeof(*t));
	int rc;

	if (!t) {
		snprintf(why, whylen, "out of memory");
		return G_ERR_NOMEM;
	}
	memcpy(t, c, sizeof(*t));
	rc = set_checked(&opts[i], t, sizeof(*t), text, why, whylen);
	if (!rc && t->slice_ns_min > t->slice_ns_default) {
		snprintf(why, whylen, "scheduler.slice_ns_min (%" PRIu64 ") must be <= "
			 "scheduler.slice_ns_default (%" PRIu64 ")", t->slice_ns_min,
			 t->slice_ns_default);
		rc = G_ERR_RANGE;
	}
	if (!rc)
		memcpy(c, t, sizeof(*c));
	free(t);
	return rc;
}

int cfg_strategy_set_text(struct cfg_strategy *s, const char *field, const char *text,
			  char *why, size_t whylen)
{
	const struct opt *o = find_opt(sopts, NR_SOPTS, field);

	if (!o) {
		snprintf(why, whylen, "unknown strategy field");
		return G_ERR_PARSE;
	}
	return set_checked(o, s, sizeof(*s), text, why, whylen);
}

/* ------------------------------------------------------------------------------------ */
/* Help and dump */

static void bounds_text(const struct opt *o, char *buf, size_t len)
{
	switch (o->type) {
	case OT_U32: case OT_U64: case OT_I32:
		snprintf(buf, len, "%s[%" PRIu64 ", %" PRIu64 "]",
			 (o->flags & OF_ZERO_OK) ? "0 or " : "", o->min, o->max);
		break;
	case OT_STR: case OT_PATH:
		snprintf(buf, len, "at most %zu bytes", o->size - 1);
		break;
	case OT_BOOL:
		snprintf(buf, len, "true/false, yes/no, on/off");
		break;
	}
}

static void help_line(FILE *out, const char *key, const struct opt *o)
{
	const char *q = (o->type == OT_STR || o->type == OT_PATH) ? "\"" : "";
	char b[96];

	bounds_text(o, b, sizeof(b));
	fprintf(out, "  %-30s %-6s default %s%s%s  %s%s\n      %s\n", key, type_name(o->type),
		q, o->def, q, b, (o->flags & OF_LIVE) ? "  (live)" : "", o->desc);
}

void cfg_print_help(FILE *out)
{
	char key[128];

	fprintf(out, "Configuration keys (YAML file, dotted key = nesting):\n");
	for (int i = 0; i < NR_OPTS; i++)
		help_line(out, opts[i].key, &opts[i]);
	fprintf(out, "  strategies: a list (at most %d) of mappings with the keys below; each "
		"needs a pid or a selector (command_regex, cgroup, pod_uid, container_id)\n",
		CFG_MAX_STRATEGIES);
	for (int i = 0; i < NR_SOPTS; i++) {
		snprintf(key, sizeof(key), "strategies[].%s", sopts[i].key);
		help_line(out, key, &sopts[i]);
	}
}

/* A YAML double-quoted scalar. */
static void put_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p == '\t')
			fputs("\\t", out);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			/* U+0080..U+009F (C1 controls, NEL among them): not printable in YAML,
			 * and a raw NEL would read back as a line break. */
			fprintf(out, "\\u%04x", p[1]);
			p++;
		} else if (p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf)) {
			fprintf(out, "\\u%04x", 0xffc0 | (p[2] & 0x3f));   /* U+FFFE, U+FFFF */
			p += 2;
		} else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void put_value(FILE *out, const struct opt *o, const void *base)
{
	const char *p = (const char *)base + o->off;

	switch (o->type) {
	case OT_BOOL: fputs(*(const bool *)p ? "true" : "false", out); break;
	case OT_U32:  fprintf(out, "%" PRIu32, *(const uint32_t *)p); break;
	case OT_U64:  fprintf(out, "%" PRIu64, *(const uint64_t *)p); break;
	case OT_I32:  fprintf(out, "%" PRId32, *(const int32_t *)p); break;
	case OT_STR: case OT_PATH: put_quoted(out, p); break;
	}
}

void cfg_dump(const struct cfg *c, FILE *out)
{
	const char *section = NULL;
	size_t seclen = 0;

	fprintf(out, "# gthulhu-lua effective configuration (%s)\n",
		c->file[0] ? c->file : "built-in defaults");
	for (int i = 0; i < NR_OPTS; i++) {
		const char *dot = strchr(opts[i].key, '.');
		size_t n = (size_t)(dot - opts[i].key);
		if (!section || n != seclen || strncmp(section, opts[i].key, n)) {
			section = opts[i].key;
			seclen = n;
			fprintf(out, "%.*s:\n", (int)n, section);
		}
		fprintf(out, "  %s: ", dot + 1);
		put_value(out, &opts[i], c);
		fputc('\n', out);
	}
	if (c->nr_strategies <= 0) {
		fputs("strategies: []\n", out);
		return;
	}
	fputs("strategies:\n", out);
	for (int s = 0; s < c->nr_strategies && s < CFG_MAX_STRATEGIES; s++) {
		const struct cfg_strategy *st = &c->strategies[s];
		bool first = true;
		for (int i = 0; i < NR_SOPTS; i++) {
			/* pid 0 and "" mean "not set": leave them out (pid 0 is not valid input). */
			if (sopts[i].off == S_OFF(pid) && st->pid <= 0)
				continue;
			if (sopts[i].type == OT_STR && !((const char *)st + sopts[i].off)[0])
				continue;
			fprintf(out, "  %s %s: ", first ? "-" : " ", sopts[i].key);
			put_value(out, &sopts[i], st);
			fputc('\n', out);
			first = false;
		}
	}
}
