/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fuzz_strat.c - libFuzzer target for the strategy resolver (host/strat.c).
 *
 * Once per process, two fake /proc trees are made in a temp dir (removed at exit):
 *   small: a few dozen entries with odd comm files (empty, no newline, two lines, longer
 *          than a comm buffer, a pid dir without comm, a plain file, "007", "0", "self",
 *          2147483647 and 2147483648, ...);
 *   big:   4200 pids, more than STRAT_MAX_RESOLVED, to exercise the cap.
 * Input:
 *   byte 0      0xff: the big tree, else the small one
 *   byte 1      number of rules: mostly 0..23; 250..255 give -1, 256, 257 and the like
 *   byte 2      bit 0: afterwards replace the rules with strat_set() (a second rule list
 *               read from the rest of the input), then refresh and check again
 *   rules       per rule a flag byte, then as the flags say:
 *                 bit 0 priority; bits 1-2 pid: 0 none, 1 a pid of the tree (next byte
 *                 picks it), 2 raw int32 (4 bytes), 3 small (1 byte, 1..256);
 *                 bit 3 a regex: a length byte (% 40), then that many bytes;
 *                 bit 4 execution_time raw u64 (8 bytes), else one byte * 1000;
 *                 bit 5 command_regex fills all 256 bytes with no NUL (must be refused)
 *               missing bytes read as 0.
 * Invariants (abort() on violation), checked against an independent model of the rules
 * written from strat.h/strat.c's documented semantics:
 *   - strat_init/strat_set fail exactly when some rule is invalid (n out of range, pid < 0,
 *     neither pid nor regex, a regex regcomp refuses, no NUL in command_regex); on a
 *     strat_set failure the old rules stay (a refresh reports no change);
 *   - after strat_refresh: 0 <= nr_resolved <= STRAT_MAX_RESOLVED, every pid > 0 and
 *     listed once, each entry has the settings of the first rule matching that pid, the
 *     pid-rule entries come first in rule order and the rest ascending by pid; the count
 *     is exactly min(model, STRAT_MAX_RESOLVED); the return value says whether it changed;
 *   - a second refresh with nothing changed returns false and keeps the generation;
 *   - strat_free leaves no regex allocated (LeakSanitizer checks).
 * Run: make fuzz, or build/fuzz/fuzz_strat DIR...
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "strat.h"

int g_verbose;

#define DIE(...) do { fprintf(stderr, "fuzz_strat: " __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

/* ------------------------------------------------------------------------------------ */
/* the fake /proc trees */

struct fake_ent {
	const char *name;     /* directory entry */
	const char *comm;     /* content of name/comm; NULL = no comm file */
	bool plain_file;      /* name is a regular file, not a directory */
};

static const struct fake_ent small_ents[] = {
	{ "1", "init\n" }, { "2", "kthreadd\n" }, { "10", "bash\n" }, { "11", "bash\n" },
	{ "12", "sshd\n" }, { "100", "python3\n" }, { "101", "a\n" }, { "102", "\n" },
	{ "103", "0123456789abcde\n" }, { "104", "no-newline" }, { "105", "two\nlines\n" },
	{ "106", NULL }, { "108", "" }, { "109", "sp ace\n" }, { "110", "[brackets]\n" },
	{ "111", "\xc3\xa9t\xc3\xa9\n" }, { "112", "bash\n" },
	{ "107", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n" },
	{ "200", NULL, true },
	{ "4194304", "bigpid\n" }, { "2147483647", "maxpid\n" },
	/* not canonical pids: never resolved by a regex */
	{ "2147483648", "toobig\n" }, { "99999999999", "toobig\n" }, { "007", "bash\n" },
	{ "0", "bash\n" }, { "self", "bash\n" }, { "12a", "bash\n" }, { "-5", "bash\n" },
};
#define NR_SMALL ((int)(sizeof(small_ents) / sizeof(small_ents[0])))
#define NR_BIG 4200

struct tree {
	char root[256];
	int n;
	int32_t pid[NR_BIG];          /* canonical pid of entry i, or 0 */
	char comm[NR_BIG][64];        /* what strat.c reads as the comm */
	bool has_comm[NR_BIG];
};
static struct tree small_tree, big_tree;
static char top[256];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f))
		DIE("cannot write %s: %s", path, strerror(errno));
}

/* What reading a comm file yields: at most 63 bytes, one trailing newline dropped. */
static void comm_of(const char *text, char *out)
{
	size_t n = strlen(text);
	if (n > 63)
		n = 63;
	memcpy(out, text, n);
	out[n] = '\0';
	if (n > 0 && out[n - 1] == '\n')
		out[n - 1] = '\0';
}

static int32_t canonical_pid(const char *name)
{
	long long v = 0;
	if (name[0] < '1' || name[0] > '9')
		return 0;
	for (const char *p = name; *p; p++) {
		if (*p < '0' || *p > '9' || v > INT32_MAX)
			return 0;
		v = v * 10 + (*p - '0');
	}
	return v > INT32_MAX ? 0 : (int32_t)v;
}

static void add_ent(struct tree *t, const char *name, const char *comm, bool plain)
{
	char path[512];
	int i = t->n++;

	snprintf(path, sizeof(path), "%s/%s", t->root, name);
	if (plain) {
		write_file(path, "not a dir\n");
	} else {
		if (mkdir(path, 0755))
			DIE("mkdir %s: %s", path, strerror(errno));
		if (comm) {
			snprintf(path, sizeof(path), "%s/%s/comm", t->root, name);
			write_file(path, comm);
		}
	}
	t->pid[i] = canonical_pid(name);
	t->has_comm[i] = comm && !plain;
	if (t->has_comm[i])
		comm_of(comm, t->comm[i]);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void cleanup(void)
{
	if (top[0])
		nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_trees(void)
{
	char name[32], comm[32];

	snprintf(top, sizeof(top), "%s/fuzz_strat.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(top))
		DIE("mkdtemp: %s", strerror(errno));
	atexit(cleanup);
	snprintf(small_tree.root, sizeof(small_tree.root), "%s/small", top);
	snprintf(big_tree.root, sizeof(big_tree.root), "%s/big", top);
	if (mkdir(small_tree.root, 0755) || mkdir(big_tree.root, 0755))
		DIE("mkdir: %s", strerror(errno));
	for (int i = 0; i < NR_SMALL; i++)
		add_ent(&small_tree, small_ents[i].name, small_ents[i].comm, small_ents[i].plain_file);
	for (int i = 0; i < NR_BIG; i++) {
		snprintf(name, sizeof(name), "%d", 1000 + i);
		snprintf(comm, sizeof(comm), "w%d\n", i % 10);
		add_ent(&big_tree, name, comm, false);
	}
}

/* ------------------------------------------------------------------------------------ */
/* input */

struct rd { const uint8_t *p; size_t n; };

static uint8_t u8(struct rd *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static uint64_t raw(struct rd *r, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)u8(r) << (8 * i);
	return v;
}

static int read_count(struct rd *r)
{
	static const int odd[] = { -1, 256, 257, -2147483647 - 1, 255, 1000 };
	uint8_t b = u8(r);
	return b >= 250 ? odd[b - 250] : b % 24;
}

/* Rules into rules[0..min(n, CFG_MAX_STRATEGIES)). */
static void read_rules(struct rd *r, const struct tree *t, struct cfg_strategy *rules, int n)
{
	int m = n < 0 ? 0 : n > CFG_MAX_STRATEGIES ? CFG_MAX_STRATEGIES : n;

	memset(rules, 0, sizeof(*rules) * CFG_MAX_STRATEGIES);
	for (int i = 0; i < m; i++) {
		struct cfg_strategy *s = &rules[i];
		uint8_t f = u8(r);
		s->line = i + 1;
		s->priority = f & 1;
		switch ((f >> 1) & 3) {
		case 0: s->pid = 0; break;
		case 1: s->pid = t->pid[u8(r) % t->n]; break;
		case 2: s->pid = (int32_t)(uint32_t)raw(r, 4); break;
		case 3: s->pid = 1 + u8(r); break;
		}
		if (f & 8) {
			int len = u8(r) % 40;
			for (int k = 0; k < len; k++)
				s->command_regex[k] = (char)u8(r);
			s->command_regex[len] = '\0';
		}
		s->execution_time = (f & 16) ? raw(r, 8) : (uint64_t)u8(r) * 1000;
		if (f & 32)
			memset(s->command_regex, 'a', sizeof(s->command_regex));
	}
}

/* ------------------------------------------------------------------------------------ */
/* the model */

struct model {
	int n;                       /* rules */
	regex_t re[CFG_MAX_STRATEGIES];
	bool has_re[CFG_MAX_STRATEGIES];
	bool valid;
};

static bool model_compile(struct model *m, const struct cfg_strategy *rules, int n)
{
	memset(m, 0, sizeof(*m));
	m->n = n;
	if (n < 0 || n > CFG_MAX_STRATEGIES)
		return m->valid = false;
	m->valid = true;
	for (int i = 0; i < n && m->valid; i++) {
		const struct cfg_strategy *s = &rules[i];
		if (!memchr(s->command_regex, '\0', sizeof(s->command_regex)) || s->pid < 0 ||
		    (s->pid == 0 && !s->command_regex[0]))
			m->valid = false;
		else if (s->command_regex[0]) {
			if (regcomp(&m->re[i], s->command_regex, REG_EXTENDED | REG_NOSUB))
				m->valid = false;
			else
				m->has_re[i] = true;
		}
	}
	return m->valid;
}

static void model_free(struct model *m)
{
	for (int i = 0; i < CFG_MAX_STRATEGIES; i++)
		if (m->has_re[i])
			regfree(&m->re[i]);
	memset(m->has_re, 0, sizeof(m->has_re));
}

/* Entry of tree t for pid (canonical pid dirs only), or -1. */
static int tree_find(const struct tree *t, int32_t pid)
{
	for (int i = 0; i < t->n; i++)
		if (t->pid[i] == pid)
			return i;
	return -1;
}

/* Pid rule i matches its pid: no regex, or the pid's comm (if any) matches it. */
static bool pid_rule_matches(const struct model *m, const struct cfg_strategy *rules,
			     const struct tree *t, int i)
{
	if (!m->has_re[i])
		return true;
	int e = tree_find(t, rules[i].pid);
	return e >= 0 && t->has_comm[e] && !regexec(&m->re[i], t->comm[e], 0, NULL, 0);
}

/* First rule matching pid, or -1. */
static int model_match(const struct model *m, const struct cfg_strategy *rules,
		       const struct tree *t, int32_t pid)
{
	int e = tree_find(t, pid);
	const char *comm = e >= 0 && t->has_comm[e] ? t->comm[e] : NULL;

	for (int i = 0; i < m->n; i++) {
		const struct cfg_strategy *s = &rules[i];
		if (s->pid > 0) {
			/* A pid rule needs the comm only for its regex: any pid, in the tree or not. */
			if (s->pid != pid)
				continue;
			if (pid_rule_matches(m, rules, t, i))
				return i;
			continue;
		}
		if (m->has_re[i] && e >= 0 && comm && !regexec(&m->re[i], comm, 0, NULL, 0))
			return i;
	}
	return -1;
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

/* Check s->resolved against the model of rules on tree t. */
static void check_resolved(const struct strat *s, const struct model *m,
			   const struct cfg_strategy *rules, const struct tree *t)
{
	static int32_t want_pid[NR_BIG + CFG_MAX_STRATEGIES], rest[NR_BIG];
	int npid = 0, nrest = 0;

	if (s->nr_resolved < 0 || s->nr_resolved > STRAT_MAX_RESOLVED)
		DIE("nr_resolved %d", s->nr_resolved);
	/* pid-rule entries, in rule order, each pid once */
	for (int i = 0; i < m->n; i++) {
		int32_t pid = rules[i].pid;
		bool dup = false;
		if (pid <= 0)
			continue;
		for (int k = 0; k < npid && !dup; k++)
			dup = want_pid[k] == pid;
		if (dup || !pid_rule_matches(m, rules, t, i))
			continue;
		want_pid[npid++] = pid;   /* at the first pid rule for it that matches */
	}
	/* tree pids matched by a regex-only rule and not listed above */
	for (int e = 0; e < t->n; e++) {
		int32_t pid = t->pid[e];
		bool listed = false;
		if (pid <= 0)
			continue;
		for (int k = 0; k < npid && !listed; k++)
			listed = want_pid[k] == pid;
		if (!listed && model_match(m, rules, t, pid) >= 0)
			rest[nrest++] = pid;
	}
	qsort(rest, (size_t)nrest, sizeof(rest[0]), cmp_i32);

	int want = npid + nrest < STRAT_MAX_RESOLVED ? npid + nrest : STRAT_MAX_RESOLVED;
	if (s->nr_resolved != want)
		DIE("%d entries resolved, the model says %d (%d by pid, %d by regex)",
		    s->nr_resolved, want, npid, nrest);
	for (int k = 0; k < s->nr_resolved; k++) {
		const struct strat_entry *en = &s->resolved[k];
		if (en->pid <= 0)
			DIE("entry %d: pid %d", k, en->pid);
		for (int j = 0; j < k; j++)
			if (s->resolved[j].pid == en->pid)
				DIE("pid %d listed twice (entries %d and %d)", en->pid, j, k);
		if (k < npid && en->pid != want_pid[k])
			DIE("entry %d: pid %d, the model says %d", k, en->pid, want_pid[k]);
		if (k > npid && en->pid <= s->resolved[k - 1].pid)
			DIE("entries %d, %d: regex pids not ascending (%d, %d)", k - 1, k,
			    s->resolved[k - 1].pid, en->pid);
		if (k >= npid && npid + nrest <= STRAT_MAX_RESOLVED && en->pid != rest[k - npid])
			DIE("entry %d: pid %d, the model says %d", k, en->pid, rest[k - npid]);
		int r = model_match(m, rules, t, en->pid);
		if (r < 0)
			DIE("entry %d: pid %d matches no rule", k, en->pid);
		if (en->priority != rules[r].priority || en->execution_time != rules[r].execution_time)
			DIE("entry %d: pid %d has the settings of another rule than %d", k, en->pid, r);
	}
}

/* ------------------------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct strat s;
	static struct cfg_strategy rules[CFG_MAX_STRATEGIES], rules2[CFG_MAX_STRATEGIES];
	static struct model m, m2;
	static bool inited;
	char err[512];
	struct rd r = { data, size };

	if (!inited) {
		make_trees();
		inited = true;
	}
	const struct tree *t = u8(&r) == 0xff ? &big_tree : &small_tree;
	int n = read_count(&r);
	uint8_t opt = u8(&r);
	read_rules(&r, t, rules, n);

	bool ok = model_compile(&m, rules, n);
	memset(err, 0, sizeof(err));
	int rc = strat_init(&s, rules, n, t->root, err, sizeof(err));
	if ((rc == G_OK) != ok)
		DIE("strat_init returned %d (%s), the model says %s", rc, err, ok ? "valid" : "invalid");
	if (rc != G_OK) {
		if (!err[0])
			DIE("strat_init failed with no message");
		strat_free(&s);
		model_free(&m);
		return 0;
	}

	bool changed = strat_refresh(&s);
	check_resolved(&s, &m, rules, t);
	if (changed != (s.nr_resolved > 0))
		DIE("first refresh returned %d with %d entries", changed, s.nr_resolved);
	uint64_t gen = s.generation;
	if (strat_refresh(&s) || s.generation != gen)
		DIE("a second refresh with nothing changed reported a change");
	check_resolved(&s, &m, rules, t);

	if (opt & 1) {
		int n2 = read_count(&r);
		read_rules(&r, t, rules2, n2);
		bool ok2 = model_compile(&m2, rules2, n2);
		int old_n = s.nr_rules;
		rc = strat_set(&s, rules2, n2, err, sizeof(err));
		if ((rc == G_OK) != ok2)
			DIE("strat_set returned %d (%s), the model says %s", rc, err,
			    ok2 ? "valid" : "invalid");
		if (rc != G_OK) {
			if (s.nr_rules != old_n || strat_refresh(&s))
				DIE("a failed strat_set changed the rules");
			check_resolved(&s, &m, rules, t);
		} else {
			strat_refresh(&s);
			check_resolved(&s, &m2, rules2, t);
		}
		model_free(&m2);
	}
	strat_free(&s);
	model_free(&m);
	return 0;
}
