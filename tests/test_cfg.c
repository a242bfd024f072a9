/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test_cfg.c - config tests. Most cases are data: tests/cfg/cases.txt holds a list of
 * YAML bodies with the expected result (values, or the exact error text, and the exact
 * warnings); see the header of that file for the format. The rest (files, help, dump
 * round trips, generated inputs) is below. Run from the repository root.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common.h"
#include "cfg.h"

#define CASES "tests/cfg/cases.txt"
#define NAME  "t.yaml"

int g_verbose;

/* Every option key, as the test knows them (independent of cfg.c's table: this is how a
 * wrong offsetof there gets caught). */
static const char *const all_keys[] = {
	"scheduler.policy", "scheduler.slice_ns_default", "scheduler.slice_ns_min",
	"scheduler.builtin_idle", "scheduler.early_processing", "scheduler.wakeup_preempt",
	"scheduler.host_last", "scheduler.host_poll_us", "scheduler.wake_batch", "scheduler.wake_delay_us",
	"scheduler.partial", "scheduler.debug",
	"scheduler.batch_max", "scheduler.stall_timeout_ms", "scheduler.watchdog_timeout_ms",
	"scheduler.lua_heap_max_mb", "scheduler.topology_root", "api.enabled", "api.listen", "api.port", "api.public_key",
	"api.private_key", "api.token_ttl_s", "api.auth", "api.max_body_bytes",
	"api.max_connections", "api.tls_cert", "api.tls_key", "api.policy_dir",
	"api.allow_policy_upload", "api.url", "api.interval",
	"dryrun.rate", "dryrun.tasks", "dryrun.mix", "dryrun.duration_s", "dryrun.pid_base",
};
#define NR_KEYS ((int)(sizeof(all_keys) / sizeof(all_keys[0])))

/* Text of one value of *c by dotted key; false if the key is unknown to the test. */
static bool get(const struct cfg *c, const char *key, char *out, size_t len)
{
#define B(k, f) if (!strcmp(key, k)) { snprintf(out, len, "%s", (f) ? "true" : "false"); return true; }
#define U(k, f) if (!strcmp(key, k)) { snprintf(out, len, "%" PRIu64, (uint64_t)(f)); return true; }
#define S(k, f) if (!strcmp(key, k)) { snprintf(out, len, "%s", f); return true; }
	S("file", c->file)
	S("scheduler.policy", c->policy)
	U("scheduler.slice_ns_default", c->slice_ns_default)
	U("scheduler.slice_ns_min", c->slice_ns_min)
	B("scheduler.builtin_idle", c->builtin_idle)
	B("scheduler.early_processing", c->early_processing)
	B("scheduler.wakeup_preempt", c->wakeup_preempt)
	B("scheduler.host_last", c->host_last)
	U("scheduler.host_poll_us", c->host_poll_us)
	U("scheduler.wake_batch", c->wake_batch)
	U("scheduler.wake_delay_us", c->wake_delay_us)
	B("scheduler.partial", c->partial)
	B("scheduler.debug", c->debug)
	U("scheduler.batch_max", c->batch_max)
	U("scheduler.stall_timeout_ms", c->stall_timeout_ms)
	U("scheduler.watchdog_timeout_ms", c->watchdog_timeout_ms)
	U("scheduler.lua_heap_max_mb", c->lua_heap_max_mb)
	S("scheduler.topology_root", c->topology_root)
	B("api.enabled", c->api_enabled)
	S("api.listen", c->api_listen)
	U("api.port", c->api_port)
	S("api.public_key", c->api_public_key)
	S("api.private_key", c->api_private_key)
	U("api.token_ttl_s", c->api_token_ttl_s)
	B("api.auth", c->api_auth)
	U("api.max_body_bytes", c->api_max_body_bytes)
	U("api.max_connections", c->api_max_connections)
	S("api.tls_cert", c->api_tls_cert)
	S("api.tls_key", c->api_tls_key)
	S("api.policy_dir", c->api_policy_dir)
	B("api.allow_policy_upload", c->api_allow_policy_upload)
	S("api.url", c->api_url)
	U("api.interval", c->api_interval)
	U("dryrun.rate", c->dryrun_rate)
	U("dryrun.tasks", c->dryrun_tasks)
	S("dryrun.mix", c->dryrun_mix)
	U("dryrun.duration_s", c->dryrun_duration_s)
	U("dryrun.pid_base", c->dryrun_pid_base)
	U("strategies.count", c->nr_strategies)
	int i, n = 0;
	char field[64];
	if (sscanf(key, "strategies[%d].%63s%n", &i, field, &n) == 2 && i >= 0 &&
	    i < CFG_MAX_STRATEGIES) {
		const struct cfg_strategy *s = &c->strategies[i];
		if (!strcmp(field, "pid")) { snprintf(out, len, "%d", s->pid); return true; }
		if (!strcmp(field, "command_regex")) { snprintf(out, len, "%s", s->command_regex); return true; }
		if (!strcmp(field, "cgroup")) { snprintf(out, len, "%s", s->cgroup); return true; }
		if (!strcmp(field, "pod_uid")) { snprintf(out, len, "%s", s->pod_uid); return true; }
		if (!strcmp(field, "container_id")) { snprintf(out, len, "%s", s->container_id); return true; }
		if (!strcmp(field, "priority")) { snprintf(out, len, "%s", s->priority ? "true" : "false"); return true; }
		if (!strcmp(field, "execution_time")) { snprintf(out, len, "%" PRIu64, s->execution_time); return true; }
		if (!strcmp(field, "line")) { snprintf(out, len, "%d", s->line); return true; }
	}
	return false;
#undef B
#undef U
#undef S
}

/* cfg_dump into a malloc'd string. */
static char *dump(const struct cfg *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cfg_dump(c, f);
	fclose(f);
	return buf;
}

/* Dump, load the dump back over defaults, dump again: both dumps must be equal. */
static void check_round_trip(const struct cfg *c, const char *what)
{
	struct cfg back;
	char err[1024];
	char *d1 = dump(c);

	cfg_defaults(&back);
	int rc = cfg_load_buffer(&back, c->file[0] ? c->file : "", d1, strlen(d1), NULL,
				 err, sizeof(err));
	CHECK(rc == G_OK, "%s: dump does not load back: %s\n%s", what, err, d1);
	char *d2 = dump(&back);
	CHECK(!strcmp(d1, d2), "%s: round trip differs:\n%s---\n%s", what, d1, d2);
	free(d1);
	free(d2);
}

static int rc_code(const char *s)
{
	if (!strcmp(s, "PARSE")) return G_ERR_PARSE;
	if (!strcmp(s, "RANGE")) return G_ERR_RANGE;
	if (!strcmp(s, "IO")) return G_ERR_IO;
	return G_ERR;
}

struct tcase {
	char name[256];
	int  line;            /* in cases.txt */
	char *body; size_t body_len, body_cap;
	char *checks; size_t checks_len, checks_cap;   /* "key = value" lines */
	char *warn; size_t warn_len, warn_cap;
	char *error; size_t error_len, error_cap;
	bool expect_ok, expect_err;
	int  err_rc;
};

static void app(char **b, size_t *len, size_t *cap, const char *s)
{
	size_t n = strlen(s);
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*b = realloc(*b, *cap);
	}
	memcpy(*b + *len, s, n + 1);
	*len += n;
}

static void run_case(struct tcase *t)
{
	struct cfg c, before;
	char err[2048], *wbuf = NULL;
	size_t wlen = 0;
	const char *body = t->body ? t->body : "";

	cfg_defaults(&c);
	cfg_defaults(&before);
	FILE *w = open_memstream(&wbuf, &wlen);
	int rc = cfg_load_buffer(&c, NAME, body, strlen(body), w, err, sizeof(err));
	fclose(w);

	const char *want_warn = t->warn ? t->warn : "";
	CHECK(!strcmp(wbuf, want_warn), "case '%s' (cases.txt:%d): warnings\n got: [%s]\nwant: [%s]",
	      t->name, t->line, wbuf, want_warn);
	free(wbuf);

	if (t->expect_err) {
		/* The expected text in the file ends with a newline; the message does not. */
		if (t->error_len && t->error[t->error_len - 1] == '\n')
			t->error[--t->error_len] = '\0';
		CHECK(rc == t->err_rc, "case '%s' (cases.txt:%d): rc %d, want %d (err: %s)",
		      t->name, t->line, rc, t->err_rc, err);
		CHECK(!strcmp(err, t->error ? t->error : ""),
		      "case '%s' (cases.txt:%d): error\n got: [%s]\nwant: [%s]",
		      t->name, t->line, err, t->error ? t->error : "");
		/* A failed load leaves the struct as it was. */
		char *d1 = dump(&c), *d2 = dump(&before);
		CHECK(!strcmp(d1, d2), "case '%s': failed load changed the config", t->name);
		free(d1);
		free(d2);
		return;
	}
	CHECK(rc == G_OK, "case '%s' (cases.txt:%d): rc %d: %s", t->name, t->line, rc, err);
	if (rc)
		return;
	char *save = NULL, *line;
	for (line = t->checks ? strtok_r(t->checks, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		char key[256], val[CFG_PATH_MAX + 64] = "", got[CFG_PATH_MAX + 64];
		char *eq = strstr(line, " = ");
		if (!eq) {
			CHECK(0, "cases.txt: case '%s': bad check line '%s'", t->name, line);
			continue;
		}
		snprintf(key, sizeof(key), "%.*s", (int)(eq - line), line);
		snprintf(val, sizeof(val), "%s", eq + 3);
		if (!get(&c, key, got, sizeof(got))) {
			CHECK(0, "cases.txt: case '%s': unknown key '%s'", t->name, key);
			continue;
		}
		CHECK(!strcmp(got, val), "case '%s' (cases.txt:%d): %s = [%s], want [%s]",
		      t->name, t->line, key, got, val);
	}
	check_round_trip(&c, t->name);
}

static void free_case(struct tcase *t)
{
	free(t->body);
	free(t->checks);
	free(t->warn);
	free(t->error);
	memset(t, 0, sizeof(*t));
}

/* Format of cases.txt: lines outside "%% case" .. "%% end" are comments.
 *   %% case NAME        starts a case; the lines after it are the YAML body
 *   %% ok               then "key = value" lines to check (keys as in get())
 *   %% error PARSE|RANGE then the exact error text (may span lines)
 *   %% warn             then the exact warning output (no section: no warnings)
 *   %% end */
static int run_cases(void)
{
	FILE *f = fopen(CASES, "r");
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, nr = 0;
	enum { OUT, BODY, OK, ERR, WARN } st = OUT;
	struct tcase t;

	memset(&t, 0, sizeof(t));
	CHECK(f != NULL, "cannot open %s (run from the repository root)", CASES);
	if (!f)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		lineno++;
		if (!strncmp(line, "%% ", 3)) {
			char *cmd = line + 3;
			cmd[strcspn(cmd, "\n")] = '\0';
			if (!strncmp(cmd, "case ", 5)) {
				CHECK(st == OUT, "cases.txt:%d: case inside a case", lineno);
				free_case(&t);
				snprintf(t.name, sizeof(t.name), "%s", cmd + 5);
				t.line = lineno;
				st = BODY;
			} else if (!strcmp(cmd, "ok")) {
				t.expect_ok = true;
				st = OK;
			} else if (!strncmp(cmd, "error ", 6)) {
				t.expect_err = true;
				t.err_rc = rc_code(cmd + 6);
				st = ERR;
			} else if (!strcmp(cmd, "warn")) {
				st = WARN;
			} else if (!strcmp(cmd, "end")) {
				CHECK(t.expect_ok != t.expect_err,
				      "cases.txt:%d: case '%s' needs exactly one of ok/error", lineno, t.name);
				run_case(&t);
				nr++;
				st = OUT;
			} else {
				CHECK(0, "cases.txt:%d: unknown directive '%s'", lineno, cmd);
			}
			continue;
		}
		switch (st) {
		case OUT: break;
		case BODY: app(&t.body, &t.body_len, &t.body_cap, line); break;
		case OK: if (line[0] != '\n') app(&t.checks, &t.checks_len, &t.checks_cap, line); break;
		case ERR: app(&t.error, &t.error_len, &t.error_cap, line); break;
		case WARN: app(&t.warn, &t.warn_len, &t.warn_cap, line); break;
		}
	}
	CHECK(st == OUT, "cases.txt: unterminated case '%s'", t.name);
	free_case(&t);
	free(line);
	fclose(f);
	return nr;
}

static void test_defaults(void)
{
	struct cfg c;
	char v[256];

	cfg_defaults(&c);
	CHECK(c.file[0] == '\0', " ");
	CHECK(!strcmp(c.policy, "policies/gthulhu.lua"), " ");
	CHECK(c.slice_ns_default == 20000000, " ");
	CHECK(c.slice_ns_min == 1000000, " ");
	CHECK(!c.builtin_idle && c.early_processing && !c.partial && !c.debug, " ");
	CHECK(c.batch_max == 4096, " ");
	CHECK(c.stall_timeout_ms == 1000, " ");
	CHECK(c.watchdog_timeout_ms == 0, " ");
	CHECK(!strcmp(c.topology_root, "/sys/devices/system/cpu"), " ");
	CHECK(!c.api_enabled, " ");
	CHECK(!strcmp(c.api_listen, "127.0.0.1"), " ");
	CHECK(c.api_port == 8080, " ");
	CHECK(c.api_public_key[0] == '\0' && c.api_private_key[0] == '\0', " ");
	CHECK(c.api_token_ttl_s == 3600, " ");
	CHECK(c.nr_strategies == 0, " ");
	for (int i = 0; i < NR_KEYS; i++)
		CHECK(get(&c, all_keys[i], v, sizeof(v)), "%s", all_keys[i]);
	check_round_trip(&c, "defaults");
}

static void test_files(void)
{
	struct cfg c, d;
	char err[2048], *wbuf = NULL;
	size_t wlen = 0;
	int rc;

	/* Missing file: G_ERR_IO, "FILE: strerror". */
	cfg_defaults(&c);
	rc = cfg_load_file(&c, "tests/cfg/no-such-file.yaml", NULL, err, sizeof(err));
	CHECK(rc == G_ERR_IO, "rc %d", rc);
	CHECK(!strcmp(err, "tests/cfg/no-such-file.yaml: No such file or directory"), "%s", err);

	/* A directory opens but does not read. */
	cfg_defaults(&c);
	rc = cfg_load_file(&c, "tests/cfg", NULL, err, sizeof(err));
	CHECK(rc == G_ERR_IO, "rc %d", rc);
	CHECK(!strcmp(err, "tests/cfg: Is a directory"), "%s", err);

	/* Empty file: valid, defaults, file recorded. */
	cfg_defaults(&c);
	rc = cfg_load_file(&c, "tests/cfg/empty.yaml", stderr, err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(!strcmp(c.file, "tests/cfg/empty.yaml"), "%s", c.file);
	cfg_defaults(&d);
	strcpy(d.file, c.file);
	char *d1 = dump(&c), *d2 = dump(&d);
	CHECK(!strcmp(d1, d2), "empty file differs from defaults:\n%s", d1);
	free(d1);
	free(d2);

	/* A file with an error: the message names the path, line, key and line text. */
	cfg_defaults(&c);
	rc = cfg_load_file(&c, "tests/cfg/bad.yaml", NULL, err, sizeof(err));
	CHECK(rc == G_ERR_RANGE, "rc %d: %s", rc, err);
	CHECK(!strcmp(err, "tests/cfg/bad.yaml:4: api.port: 70000 is too large "
		      "(expected u32 in [1, 65535])\n      port: 70000   # one too many digits"),
	      "%s", err);

	/* config/config.yaml: no warning, and exactly the defaults. */
	cfg_defaults(&c);
	FILE *w = open_memstream(&wbuf, &wlen);
	rc = cfg_load_file(&c, "config/config.yaml", w, err, sizeof(err));
	fclose(w);
	CHECK(rc == G_OK, "config/config.yaml: %s", err);
	CHECK(wlen == 0, "config/config.yaml warnings: %s", wbuf);
	free(wbuf);
	cfg_defaults(&d);
	strcpy(d.file, "config/config.yaml");
	d1 = dump(&c);
	d2 = dump(&d);
	CHECK(!strcmp(d1, d2), "config/config.yaml is not the defaults:\n%s---\n%s", d1, d2);
	free(d1);
	free(d2);

	/* Loading over a non-default config keeps what the file does not set. */
	cfg_defaults(&c);
	c.api_port = 9999;
	c.debug = true;
	rc = cfg_load_buffer(&c, NAME, "scheduler:\n  batch_max: 7\n", 26, NULL, err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(c.api_port == 9999 && c.debug && c.batch_max == 7, " ");
}

static void test_strategy_limit(void)
{
	struct cfg c;
	char err[2048], line[64];
	char *body = NULL;
	size_t len = 0, cap = 0;

	app(&body, &len, &cap, "strategies:\n");
	for (int i = 1; i <= CFG_MAX_STRATEGIES; i++) {
		snprintf(line, sizeof(line), "  - pid: %d\n", i);
		app(&body, &len, &cap, line);
	}
	cfg_defaults(&c);
	int rc = cfg_load_buffer(&c, NAME, body, len, NULL, err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(c.nr_strategies == CFG_MAX_STRATEGIES, " ");
	CHECK(c.strategies[CFG_MAX_STRATEGIES - 1].pid == CFG_MAX_STRATEGIES, " ");
	CHECK(c.strategies[CFG_MAX_STRATEGIES - 1].line == CFG_MAX_STRATEGIES + 1, " ");
	check_round_trip(&c, "256 strategies");

	app(&body, &len, &cap, "  - command_regex: one-too-many\n");
	cfg_defaults(&c);
	rc = cfg_load_buffer(&c, NAME, body, len, NULL, err, sizeof(err));
	CHECK(rc == G_ERR_RANGE, "rc %d", rc);
	snprintf(line, sizeof(line), "t.yaml:%d: ", CFG_MAX_STRATEGIES + 2);
	CHECK(!strncmp(err, line, strlen(line)), "%s", err);
	CHECK(!strcmp(strchr(err, ' ') + 1,
		      "strategies: more than 256 strategies\n      - command_regex: one-too-many"),
	      "%s", err);
	CHECK(c.nr_strategies == 0, " ");
	free(body);
}

static void test_dump_tricky(void)
{
	struct cfg c;

	cfg_defaults(&c);
	strcpy(c.file, "tricky");
	strcpy(c.policy, "dir with spaces/it's \"quoted\" \\ #not-a-comment: x.lua");
	strcpy(c.api_listen, "::1");
	strcpy(c.api_public_key, "tab\there");
	strcpy(c.topology_root, "yes");   /* would be a bool if not quoted */
	c.nr_strategies = 3;
	c.strategies[0] = (struct cfg_strategy){ .pid = 42, .priority = true, .line = 9 };
	c.strategies[1] = (struct cfg_strategy){ .execution_time = 625000000ull };
	strcpy(c.strategies[1].command_regex, "^(a|b)\\.[[:digit:]]+\"$");
	c.strategies[2] = (struct cfg_strategy){ .pid = 7, .execution_time = 10000 };
	strcpy(c.strategies[2].command_regex, "x: y # z");
	check_round_trip(&c, "tricky strings");

	char *d = dump(&c);
	struct cfg back;
	char err[1024];
	cfg_defaults(&back);
	CHECK(cfg_load_buffer(&back, "d", d, strlen(d), NULL, err, sizeof(err)) == G_OK, "%s", err);
	CHECK(!strcmp(back.policy, c.policy), "%s", back.policy);
	CHECK(!strcmp(back.api_public_key, "tab\there"), " ");
	CHECK(!strcmp(back.topology_root, "yes"), " ");
	CHECK(back.nr_strategies == 3, " ");
	CHECK(back.strategies[0].pid == 42 && back.strategies[0].priority, " ");
	CHECK(!strcmp(back.strategies[1].command_regex, c.strategies[1].command_regex),
	      "%s", back.strategies[1].command_regex);
	CHECK(back.strategies[1].execution_time == 625000000ull, " ");
	CHECK(back.strategies[2].pid == 7 && !strcmp(back.strategies[2].command_regex, "x: y # z"), " ");
	free(d);
}

static void test_help(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cfg_print_help(f);
	fclose(f);
	for (int i = 0; i < NR_KEYS; i++)
		CHECK_STR_CONTAINS(buf, all_keys[i]);
	static const char *const more[] = {
		"strategies[].pid", "strategies[].command_regex", "strategies[].priority",
		"strategies[].execution_time", "default 20000000", "[100000, 1000000000]",
		"0 or [500, 30000]", "[1, 4096]", "default \"policies/gthulhu.lua\"",
		"[1, 65535]", "0 or [10000, 1000000000]",
		/* what cfg.c's validation accepts (it said "a pid or a command_regex") */
		"needs a pid or a selector (command_regex, cgroup, pod_uid, container_id)",
	};
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		CHECK_STR_CONTAINS(buf, more[i]);
	free(buf);
}

static void test_small_err_buffer(void)
{
	struct cfg c;
	char err[24];

	memset(err, 'x', sizeof(err));
	cfg_defaults(&c);
	int rc = cfg_load_buffer(&c, NAME, "api:\n  port: 0\n", 15, NULL, err, 16);
	CHECK(rc == G_ERR_RANGE, " ");
	CHECK(strlen(err) == 15, "%zu", strlen(err));
	CHECK(err[17] == 'x', " ");
	/* NULL err is allowed too. */
	CHECK(cfg_load_buffer(&c, NAME, "api:\n  port: 0\n", 15, NULL, NULL, 0) == G_ERR_RANGE, " ");
}

int main(void)
{
	int nr = run_cases();
	CHECK(nr >= 60, "only %d cases in %s", nr, CASES);
	test_defaults();
	test_files();
	test_strategy_limit();
	test_dump_tricky();
	test_help();
	test_small_err_buffer();
	printf("test_cfg: %d data cases\n", nr);
	return CHECK_DONE();
}
