/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test_strat.c - strategies resolved against a fake /proc tree in a temp dir.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common.h"
#include "strat.h"

int g_verbose;
static char proc[256];
static struct strat S;   /* big: keep it off the stack */

static void proc_add(int pid, const char *comm)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%d", proc, pid);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%d/comm", proc, pid);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL, "%s: %s", path, strerror(errno));
	if (f) {
		fprintf(f, "%s\n", comm);
		fclose(f);
	}
}

static void proc_del(int pid)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%d/comm", proc, pid);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%d", proc, pid);
	rmdir(path);
}

static struct cfg_strategy R(int pid, const char *re, bool prio, uint64_t exec, int line)
{
	struct cfg_strategy r;
	memset(&r, 0, sizeof(r));
	r.pid = pid;
	snprintf(r.command_regex, sizeof(r.command_regex), "%s", re ? re : "");
	r.priority = prio;
	r.execution_time = exec;
	r.line = line;
	return r;
}

/* "pid:P/E" per entry (P = 1 if priority, E = execution_time), comma-separated. */
static const char *resolved(const struct strat *s)
{
	static char buf[8192];
	size_t o = 0;
	buf[0] = '\0';
	for (int i = 0; i < s->nr_resolved && o < sizeof(buf) - 64; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%d:%d/%llu", i ? "," : "",
				      s->resolved[i].pid, s->resolved[i].priority,
				      (unsigned long long)s->resolved[i].execution_time);
	return buf;
}

#define CHECK_RESOLVED(s, want) do {                                          \
	const char *got_ = resolved(s);                                       \
	CHECK(!strcmp(got_, (want)), "resolved [%s], want [%s]", got_, (want)); \
} while (0)

static void setup_proc(void)
{
	strcpy(proc, "/tmp/gthulhu-proc-XXXXXX");
	CHECK(mkdtemp(proc) != NULL, "mkdtemp: %s", strerror(errno));
	proc_add(1, "systemd");
	proc_add(100, "ffmpeg");
	proc_add(101, "x264");
	proc_add(200, "bash");
	proc_add(300, "java");
	proc_add(4000, "ffmpeg-worker");
	/* Things a scan must skip. */
	char path[512];
	snprintf(path, sizeof(path), "%s/self", proc);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/12a", proc);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/0", proc);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/uptime", proc);
	FILE *f = fopen(path, "w");
	if (f) {
		fputs("1.0 2.0\n", f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/500", proc);   /* a process dir without comm */
	mkdir(path, 0755);
}

static void test_resolve_and_changes(void)
{
	struct cfg_strategy rules[4];
	char err[512];

	rules[0] = R(200, NULL, true, 0, 10);
	rules[1] = R(0, "^(ffmpeg|x264)$", false, 5000000, 12);
	rules[2] = R(999, NULL, false, 1000000, 14);    /* no such process: still listed */
	rules[3] = R(0, "^java$", true, 0, 15);
	int rc = strat_init(&S, rules, 4, proc, err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(S.nr_rules == 4 && S.generation == 0 && S.nr_resolved == 0, " ");

	CHECK(strat_refresh(&S), "first refresh changes");
	CHECK(S.generation == 1, "%llu", (unsigned long long)S.generation);
	CHECK_RESOLVED(&S, "200:1/0,999:0/1000000,100:0/5000000,101:0/5000000,300:1/0");

	CHECK(!strat_refresh(&S), "nothing changed");
	CHECK(!strat_refresh(&S), "nothing changed");
	CHECK(S.generation == 1, " ");

	proc_add(150, "ffmpeg");
	CHECK(strat_refresh(&S), "new process");
	CHECK(S.generation == 2, " ");
	CHECK_RESOLVED(&S, "200:1/0,999:0/1000000,100:0/5000000,101:0/5000000,150:0/5000000,300:1/0");

	proc_del(101);
	CHECK(strat_refresh(&S), "process gone");
	CHECK_RESOLVED(&S, "200:1/0,999:0/1000000,100:0/5000000,150:0/5000000,300:1/0");

	proc_add(300, "javac");    /* comm changed: no longer matches */
	CHECK(strat_refresh(&S), "comm changed");
	CHECK_RESOLVED(&S, "200:1/0,999:0/1000000,100:0/5000000,150:0/5000000");
	CHECK(S.generation == 4, "%llu", (unsigned long long)S.generation);

	proc_add(200, "java");     /* pid rule still listed once, first rule wins */
	CHECK(!strat_refresh(&S), "pid 200 is already there by its pid rule");
	CHECK(S.generation == 4, " ");

	/* Restore. */
	proc_add(101, "x264");
	proc_add(300, "java");
	proc_add(200, "bash");
	proc_del(150);

	/* strat_set with a bad regex: error, old rules stay, nothing changes. */
	struct cfg_strategy bad[2] = { R(1, NULL, true, 0, 0), R(0, "(x264", false, 0, 0) };
	rc = strat_set(&S, bad, 2, err, sizeof(err));
	CHECK(rc == G_ERR_PARSE, "rc %d", rc);
	CHECK_STR_CONTAINS(err, "strategy 2 (from the API)");
	CHECK_STR_CONTAINS(err, "'(x264'");
	CHECK(S.nr_rules == 4 && S.rules[0].pid == 200 && S.rules[1].line == 12, " ");
	CHECK(strat_refresh(&S), "restored processes");
	CHECK_RESOLVED(&S, "200:1/0,999:0/1000000,100:0/5000000,101:0/5000000,300:1/0");
	CHECK(!strat_refresh(&S), " ");

	/* A valid strat_set replaces the rules; the next refresh reports the change. */
	struct cfg_strategy good[1] = { R(0, "^systemd$", true, 20000, 0) };
	uint64_t gen = S.generation;
	rc = strat_set(&S, good, 1, err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(S.nr_rules == 1, " ");
	CHECK(strat_refresh(&S), " ");
	CHECK(S.generation == gen + 1, " ");
	CHECK_RESOLVED(&S, "1:1/20000");

	/* To no rules at all: a change to the empty list, then quiet. */
	rc = strat_set(&S, NULL, 0, err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(strat_refresh(&S), " ");
	CHECK(S.nr_resolved == 0, " ");
	CHECK(!strat_refresh(&S), " ");
	strat_free(&S);
}

static void test_first_rule_wins(void)
{
	struct cfg_strategy rules[6];
	char err[512];

	rules[0] = R(0, "^ff", true, 0, 1);
	rules[1] = R(100, NULL, false, 7000000, 2);     /* loses to rule 0 for pid 100 */
	rules[2] = R(0, "mpeg", false, 9000000, 3);     /* loses to rule 0 everywhere */
	rules[3] = R(200, NULL, false, 30000, 4);
	rules[4] = R(200, NULL, true, 40000, 5);        /* duplicate pid: rule 3 wins */
	rules[5] = R(0, "^(bash|x264)$", true, 50000, 6); /* pid 200: rule 3 wins */
	int rc = strat_init(&S, rules, 6, proc, err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(strat_refresh(&S), " ");
	CHECK_RESOLVED(&S, "100:1/0,200:0/30000,101:1/50000,4000:1/0");
	strat_free(&S);
	CHECK(S.nr_rules == 0, " ");
}

static void test_pid_and_regex(void)
{
	struct cfg_strategy rules[2];
	char err[512];

	/* Both set: the pid, while its comm matches. */
	rules[0] = R(200, "^bash$", true, 0, 3);
	rules[1] = R(300, "^python", false, 0, 4);
	int rc = strat_init(&S, rules, 2, proc, err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(strat_refresh(&S), " ");
	CHECK_RESOLVED(&S, "200:1/0");
	proc_add(200, "zsh");
	CHECK(strat_refresh(&S), " ");
	CHECK_RESOLVED(&S, "");
	proc_add(200, "bash");
	CHECK(strat_refresh(&S), " ");
	CHECK_RESOLVED(&S, "200:1/0");
	strat_free(&S);
}

static void test_errors(void)
{
	struct cfg_strategy rules[3];
	char err[512];

	rules[0] = R(5, NULL, false, 0, 10);
	rules[1] = R(0, "a(", false, 0, 12);
	int rc = strat_init(&S, rules, 2, proc, err, sizeof(err));
	CHECK(rc == G_ERR_PARSE, "rc %d", rc);
	CHECK(!strncmp(err, "strategy 2 (config line 12): bad command_regex 'a(': ", 53), "%s", err);
	CHECK(S.nr_rules == 0, " ");
	strat_free(&S);

	rules[1] = R(0, "[[:nope:]]", false, 0, 7);
	rc = strat_init(&S, rules, 2, proc, err, sizeof(err));
	CHECK(rc == G_ERR_PARSE, "rc %d", rc);
	CHECK_STR_CONTAINS(err, "config line 7");
	CHECK_STR_CONTAINS(err, "[[:nope:]]");
	strat_free(&S);

	rules[1] = R(0, NULL, true, 0, 9);
	rc = strat_init(&S, rules, 2, proc, err, sizeof(err));
	CHECK(rc == G_ERR_PARSE, "rc %d", rc);
	CHECK(!strcmp(err, "strategy 2 (config line 9): needs a pid, a command_regex, a cgroup, a pod_uid or a container_id"), "%s", err);
	strat_free(&S);

	rc = strat_init(&S, rules, CFG_MAX_STRATEGIES + 1, proc, err, sizeof(err));
	CHECK(rc == G_ERR_RANGE, "rc %d", rc);
	strat_free(&S);

	/* No rules: nothing to resolve, nothing changes. */
	rc = strat_init(&S, NULL, 0, proc, err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(!strat_refresh(&S), " ");
	CHECK(S.generation == 0, " ");
	strat_free(&S);

	/* A PROC that does not exist: regex rules resolve to nothing, pid rules stay. */
	rules[0] = R(42, NULL, false, 0, 1);
	rules[1] = R(0, ".", false, 0, 2);
	rc = strat_init(&S, rules, 2, "/nonexistent/proc", err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(strat_refresh(&S), " ");
	CHECK_RESOLVED(&S, "42:0/0");
	strat_free(&S);
}

static void test_many(void)
{
	struct cfg_strategy rules[1];
	char err[512], want[8192];
	size_t o = 0;

	/* Many matches, created in a scrambled order: the list comes out sorted. */
	for (int i = 0; i < 60; i++)
		proc_add(10000 + (i * 37) % 60, "worker");
	for (int i = 0; i < 60; i++)
		o += (size_t)snprintf(want + o, sizeof(want) - o, "%s%d:0/0", i ? "," : "", 10000 + i);
	rules[0] = R(0, "^worker$", false, 0, 1);
	int rc = strat_init(&S, rules, 1, proc, err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(strat_refresh(&S), " ");
	CHECK_RESOLVED(&S, want);
	CHECK(!strat_refresh(&S), " ");
	strat_free(&S);
}

static void test_real_proc(void)
{
	struct cfg_strategy rules[1];
	char err[512];

	rules[0] = R(0, ".", false, 0, 1);
	int rc = strat_init(&S, rules, 1, NULL, err, sizeof(err));   /* NULL: /proc */
	CHECK(rc == G_OK, "%s", err);
	CHECK(!strcmp(S.proc_root, "/proc"), "%s", S.proc_root);
	CHECK(strat_refresh(&S), " ");
	bool self = false;
	for (int i = 0; i < S.nr_resolved; i++)
		self |= S.resolved[i].pid == getpid();
	CHECK(self, "own pid %d not found among %d", getpid(), S.nr_resolved);
	strat_free(&S);
}

static void cg_write(int pid, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%d/cgroup", proc, pid);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL, "%s: %s", path, strerror(errno));
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* cgroup path prefix, pod UID (systemd and cgroupfs layouts), container id; the pod's
 * pause process is never matched; selectors combine (all must match). */
static void test_cgroup_selectors(void)
{
	char err[512], uid[40], cid[72];
	struct cfg_strategy rules[5];
	const char *sysd = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-"
		"pod20da609e_6973_4463_a1f9_2db9bcc5becc.slice/cri-containerd-"
		"10ec3c89629f71226b227e6510b2d465168b24005bbdcc5d7940517080830635.scope\n";

	CHECK(strat_parse_kubepods(sysd + 3, uid, sizeof(uid), cid, sizeof(cid)), "systemd layout");
	CHECK(!strcmp(uid, "20da609e-6973-4463-a1f9-2db9bcc5becc"), "%s", uid);
	CHECK(!strcmp(cid, "10ec3c89629f71226b227e6510b2d465168b24005bbdcc5d7940517080830635"), "%s", cid);
	CHECK(strat_parse_kubepods("/kubepods/burstable/pod31E4E721-a5a0-421a-ae1d-b7971ae30d6e/"
				   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
				   uid, sizeof(uid), cid, sizeof(cid)), "cgroupfs layout");
	CHECK(!strcmp(uid, "31e4e721-a5a0-421a-ae1d-b7971ae30d6e"), "%s", uid);
	CHECK(!strcmp(cid, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), "%s", cid);
	CHECK(!strat_parse_kubepods("/system.slice/pod20da609e_6973_4463_a1f9_2db9bcc5becc", uid,
				    sizeof(uid), cid, sizeof(cid)), "no kubepods: no pod");

	proc_add(700, "nginx");
	cg_write(700, "0::/system.slice/nginx.service\n");
	proc_add(701, "nginx");
	cg_write(701, "0::/system.slice/nginx.service.d\n");    /* not below the prefix */
	proc_add(702, "app");
	cg_write(702, sysd);
	proc_add(703, "pause");
	cg_write(703, sysd);
	proc_add(704, "sidecar");
	cg_write(704, "12:cpu:/kubepods/burstable/pod31e4e721-a5a0-421a-ae1d-b7971ae30d6e/"
		 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");

	rules[0] = R(0, NULL, true, 0, 0);
	strcpy(rules[0].cgroup, "/system.slice/nginx.service");
	rules[1] = R(0, NULL, false, 2000000, 0);
	strcpy(rules[1].pod_uid, "20DA609E-6973-4463-A1F9-2DB9BCC5BECC");
	rules[2] = R(0, NULL, false, 3000000, 0);
	strcpy(rules[2].container_id, "0123456789ab");
	rules[3] = R(0, "^side", false, 4000000, 0);             /* never reached for 704 */
	strcpy(rules[3].pod_uid, "31e4e721-a5a0-421a-ae1d-b7971ae30d6e");
	CHECK(strat_init(&S, rules, 4, proc, err, sizeof(err)) == G_OK, "%s", err);
	strat_refresh(&S);
	CHECK_RESOLVED(&S, "700:1/0,702:0/2000000,704:0/3000000");
	CHECK(S.resolved[1].rule == 1 && S.resolved[2].rule == 2, "rule index kept");

	/* both selectors must match: pod + regex */
	rules[0] = R(0, "^app$", true, 0, 0);
	strcpy(rules[0].pod_uid, "20da609e_6973_4463_a1f9_2db9bcc5becc");
	CHECK(strat_set(&S, rules, 1, err, sizeof(err)) == G_OK, "%s", err);
	strat_refresh(&S);
	CHECK_RESOLVED(&S, "702:1/0");

	/* bad selectors are refused, naming the rule and the field */
	rules[0] = R(0, NULL, true, 0, 0);
	strcpy(rules[0].pod_uid, "not-a-uid");
	CHECK(strat_set(&S, rules, 1, err, sizeof(err)) == G_ERR_PARSE, "bad pod_uid");
	CHECK(strstr(err, "pod_uid 'not-a-uid'") != NULL, "%s", err);
	rules[0] = R(0, NULL, true, 0, 0);
	strcpy(rules[0].container_id, "abc");
	CHECK(strat_set(&S, rules, 1, err, sizeof(err)) == G_ERR_PARSE, "bad container_id");
	CHECK(strstr(err, "container_id 'abc'") != NULL, "%s", err);
	rules[0] = R(0, NULL, true, 0, 0);
	strcpy(rules[0].cgroup, "system.slice");
	CHECK(strat_set(&S, rules, 1, err, sizeof(err)) == G_ERR_PARSE, "relative cgroup");
	CHECK(strstr(err, "cgroup 'system.slice' must be an absolute") != NULL, "%s", err);
	CHECK_RESOLVED(&S, "702:1/0");                         /* old rules kept */
	strat_free(&S);
	for (int p = 700; p <= 704; p++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%d/cgroup", proc, p);
		unlink(path);
		proc_del(p);
	}
}

int main(void)
{
	setup_proc();
	test_resolve_and_changes();
	test_first_rule_wins();
	test_pid_and_regex();
	test_errors();
	test_many();
	test_real_proc();
	test_cgroup_selectors();
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", proc);
	CHECK(system(cmd) == 0, "%s", cmd);
	return CHECK_DONE();
}
