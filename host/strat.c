/* SPDX-License-Identifier: GPL-2.0 */
/*
 * strat.c - scheduling strategies resolved to pids.
 *
 * Rules come from the config (or the API). A rule names a pid, a regex on the process
 * name (comm), or both (then the pid counts only while its comm matches). Every refresh
 * builds the resolved list: first the pid rules, in rule order; then the processes
 * found under PROC whose comm matches a regex-only rule, sorted by pid (so that readdir
 * order never looks like a change). A pid is listed once, with the settings of the
 * first rule (lowest index) that matches it.
 *
 * No allocation per refresh besides opendir's: the new list is built on the stack and
 * compared with the old one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "strat.h"

static void where(const struct cfg_strategy *r, int i, char *buf, size_t len)
{
	if (r->line > 0)
		snprintf(buf, len, "strategy %d (config line %d)", i + 1, r->line);
	else
		snprintf(buf, len, "strategy %d (from the API)", i + 1);
}

/* Compile rules[0..n) into re[]/has_re[]. On error nothing stays compiled. */
static int compile(const struct cfg_strategy *rules, int n, regex_t *re, bool *has_re,
		   char *err, size_t errlen)
{
	char w[64];

	if (n < 0 || n > CFG_MAX_STRATEGIES) {
		set_err(err, errlen, "%d strategies: at most %d are allowed", n, CFG_MAX_STRATEGIES);
		return G_ERR_RANGE;
	}
	for (int i = 0; i < n; i++)
		has_re[i] = false;
	for (int i = 0; i < n; i++) {
		const struct cfg_strategy *r = &rules[i];
		int rc = G_OK;

		where(r, i, w, sizeof(w));
		if (memchr(r->command_regex, '\0', sizeof(r->command_regex)) == NULL) {
			set_err(err, errlen, "%s: command_regex is not NUL-terminated", w);
			rc = G_ERR_RANGE;
		} else if (r->pid < 0) {
			set_err(err, errlen, "%s: bad pid %d", w, r->pid);
			rc = G_ERR_RANGE;
		} else if (r->pid == 0 && !r->command_regex[0]) {
			set_err(err, errlen, "%s: needs a pid or a command_regex", w);
			rc = G_ERR_PARSE;
		} else if (r->command_regex[0]) {
			int e = regcomp(&re[i], r->command_regex, REG_EXTENDED | REG_NOSUB);
			if (e) {
				char msg[128];
				regerror(e, &re[i], msg, sizeof(msg));
				set_err(err, errlen, "%s: bad command_regex '%s': %s", w,
					r->command_regex, msg);
				rc = e == REG_ESPACE ? G_ERR_NOMEM : G_ERR_PARSE;
			} else {
				has_re[i] = true;
			}
		}
		if (rc) {
			for (int j = 0; j < i; j++)
				if (has_re[j])
					regfree(&re[j]);
			for (int j = 0; j < n; j++)
				has_re[j] = false;
			return rc;
		}
	}
	return G_OK;
}

static void release(struct strat *s)
{
	for (int i = 0; i < s->nr_rules && i < CFG_MAX_STRATEGIES; i++) {
		if (s->has_re[i])
			regfree(&s->re[i]);
		s->has_re[i] = false;
	}
	s->nr_rules = 0;
}

int strat_init(struct strat *s, const struct cfg_strategy *rules, int n,
	       const char *proc_root, char *err, size_t errlen)
{
	int rc;

	memset(s, 0, sizeof(*s));
	if (err && errlen)
		err[0] = '\0';
	if (!proc_root || !*proc_root)
		proc_root = "/proc";
	if (strlen(proc_root) >= sizeof(s->proc_root)) {
		set_err(err, errlen, "%s: path too long", proc_root);
		return G_ERR_RANGE;
	}
	strcpy(s->proc_root, proc_root);
	rc = compile(rules, n, s->re, s->has_re, err, errlen);
	if (rc)
		return rc;
	if (n > 0)
		memmove(s->rules, rules, (size_t)n * sizeof(*rules));
	s->nr_rules = n;
	return G_OK;
}

int strat_set(struct strat *s, const struct cfg_strategy *rules, int n, char *err, size_t errlen)
{
	regex_t re[CFG_MAX_STRATEGIES];
	bool has_re[CFG_MAX_STRATEGIES];
	int rc;

	if (err && errlen)
		err[0] = '\0';
	/* Validate first, into scratch space: on error the old rules stay as they are. */
	rc = compile(rules, n, re, has_re, err, errlen);
	if (rc)
		return rc;
	for (int i = 0; i < n; i++)
		if (has_re[i])
			regfree(&re[i]);
	release(s);
	if (n > 0)
		memmove(s->rules, rules, (size_t)n * sizeof(*rules));
	/* Same patterns as just compiled: only running out of memory can fail here. */
	rc = compile(s->rules, n, s->re, s->has_re, err, errlen);
	if (rc)
		return rc;
	s->nr_rules = n;
	return G_OK;
}

/* PROC/pid/comm without its newline into buf; false if the process is gone. */
static bool read_comm(const struct strat *s, int pid, char *buf, size_t len)
{
	char path[sizeof(s->proc_root) + 32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%d/comm", s->proc_root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return true;
}

static int cmp_pid(const void *a, const void *b)
{
	const struct strat_entry *x = a, *y = b;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

static void fill(struct strat_entry *e, int pid, const struct cfg_strategy *r)
{
	e->pid = pid;
	e->priority = r->priority;
	e->execution_time = r->execution_time;
}

bool strat_refresh(struct strat *s)
{
	struct strat_entry nw[STRAT_MAX_RESOLVED];
	int16_t src[STRAT_MAX_RESOLVED];       /* rule each entry came from */
	char comm[64];
	int n = 0, npid, first_re = -1;

	/* 1. pid rules, in order; a pid+regex rule only while the comm matches. */
	for (int i = 0; i < s->nr_rules && n < STRAT_MAX_RESOLVED; i++) {
		const struct cfg_strategy *r = &s->rules[i];
		bool dup = false;

		if (r->pid <= 0) {
			if (s->has_re[i] && first_re < 0)
				first_re = i;
			continue;
		}
		for (int k = 0; k < n && !dup; k++)
			dup = nw[k].pid == r->pid;
		if (dup)
			continue;
		if (s->has_re[i] && (!read_comm(s, r->pid, comm, sizeof(comm)) ||
				     regexec(&s->re[i], comm, 0, NULL, 0)))
			continue;
		memset(&nw[n], 0, sizeof(nw[n]));
		fill(&nw[n], r->pid, r);
		src[n++] = (int16_t)i;
	}
	npid = n;

	/* 2. regex-only rules against every process. */
	DIR *d = first_re >= 0 ? opendir(s->proc_root) : NULL;
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			const char *p = de->d_name;
			long pid = 0;
			if (*p < '1' || *p > '9')
				continue;
			for (; *p >= '0' && *p <= '9' && pid <= INT32_MAX; p++)
				pid = pid * 10 + (*p - '0');
			if (*p || pid > INT32_MAX)
				continue;
			int k = -1;
			for (int j = 0; j < npid; j++)
				if (nw[j].pid == pid) {
					k = j;
					break;
				}
			int limit = k >= 0 ? src[k] : s->nr_rules;
			if (first_re >= limit)
				continue;       /* an earlier pid rule already decides */
			if (!read_comm(s, (int)pid, comm, sizeof(comm)))
				continue;
			for (int i = first_re; i < limit; i++) {
				if (s->rules[i].pid > 0 || !s->has_re[i] ||
				    regexec(&s->re[i], comm, 0, NULL, 0))
					continue;
				if (k >= 0) {
					fill(&nw[k], (int)pid, &s->rules[i]);
					src[k] = (int16_t)i;
				} else if (n < STRAT_MAX_RESOLVED) {
					memset(&nw[n], 0, sizeof(nw[n]));
					fill(&nw[n], (int)pid, &s->rules[i]);
					src[n++] = (int16_t)i;
				} else {
					g_dbg("strategies: more than %d matching pids, pid %ld left out",
					      STRAT_MAX_RESOLVED, pid);
				}
				break;
			}
		}
		closedir(d);
		qsort(nw + npid, (size_t)(n - npid), sizeof(nw[0]), cmp_pid);
	}

	/* 3. changed? */
	bool changed = n != s->nr_resolved;
	for (int i = 0; i < n && !changed; i++)
		changed = nw[i].pid != s->resolved[i].pid ||
			  nw[i].priority != s->resolved[i].priority ||
			  nw[i].execution_time != s->resolved[i].execution_time;
	if (!changed)
		return false;
	if (n > 0)
		memcpy(s->resolved, nw, (size_t)n * sizeof(nw[0]));
	s->nr_resolved = n;
	s->generation++;
	return true;
}

void strat_free(struct strat *s)
{
	release(s);
	s->nr_resolved = 0;
}
