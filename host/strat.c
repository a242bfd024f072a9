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
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common.h"
#include "strat.h"

static bool needs_cgroup(const struct cfg_strategy *r);

bool strat_valid_pod_uid(const char *u)
{
	if (strlen(u) != 36)
		return false;
	for (int j = 0; j < 36; j++) {
		bool sep = j == 8 || j == 13 || j == 18 || j == 23;
		if (sep ? (u[j] != '-' && u[j] != '_') : !isxdigit((unsigned char)u[j]))
			return false;
	}
	return true;
}

bool strat_valid_container_id(const char *c)
{
	size_t n = strlen(c);

	if (n < 12 || n > 64)
		return false;
	for (size_t j = 0; j < n; j++)
		if (!isxdigit((unsigned char)c[j]))
			return false;
	return true;
}

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
		} else if (!memchr(r->cgroup, '\0', sizeof(r->cgroup)) ||
			   !memchr(r->pod_uid, '\0', sizeof(r->pod_uid)) ||
			   !memchr(r->container_id, '\0', sizeof(r->container_id))) {
			set_err(err, errlen, "%s: a selector is not NUL-terminated", w);
			rc = G_ERR_RANGE;
		} else if (r->pid == 0 && !r->command_regex[0] && !needs_cgroup(r)) {
			set_err(err, errlen, "%s: needs a pid, a command_regex, a cgroup, a pod_uid "
				"or a container_id", w);
			rc = G_ERR_PARSE;
		} else if (r->pod_uid[0] && !strat_valid_pod_uid(r->pod_uid)) {
			set_err(err, errlen, "%s: pod_uid '%s' is not a pod UID (8-4-4-4-12 hex digits)",
				w, r->pod_uid);
			rc = G_ERR_PARSE;
		} else if (r->container_id[0] && !strat_valid_container_id(r->container_id)) {
			set_err(err, errlen, "%s: container_id '%s' is not 12 to 64 hex digits", w,
				r->container_id);
			rc = G_ERR_PARSE;
		} else if (r->cgroup[0] && r->cgroup[0] != '/') {
			set_err(err, errlen, "%s: cgroup '%s' must be an absolute cgroup path (/...)", w,
				r->cgroup);
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

static void fill(struct strat_entry *e, int pid, const struct cfg_strategy *r, int rule)
{
	e->pid = pid;
	e->priority = r->priority;
	e->rule = (int16_t)rule;
	e->execution_time = r->execution_time;
}

static bool needs_cgroup(const struct cfg_strategy *r)
{
	return r->cgroup[0] || r->pod_uid[0] || r->container_id[0];
}

static bool has_selector(const struct strat *s, int i)
{
	return s->has_re[i] || needs_cgroup(&s->rules[i]);
}

/* What one refresh read about one process, read lazily and at most once. */
struct pinfo {
	int pid;
	signed char comm_state, cg_state;   /* 0 unread, 1 ok, -1 gone */
	char comm[64];
	char cg[2048];
};

static bool pinfo_comm(const struct strat *s, struct pinfo *pi)
{
	if (!pi->comm_state)
		pi->comm_state = read_comm(s, pi->pid, pi->comm, sizeof(pi->comm)) ? 1 : -1;
	return pi->comm_state > 0;
}

static bool pinfo_cgroup(const struct strat *s, struct pinfo *pi)
{
	char path[sizeof(s->proc_root) + 32];
	ssize_t n = -1;
	int fd;

	if (pi->cg_state)
		return pi->cg_state > 0;
	snprintf(path, sizeof(path), "%s/%d/cgroup", s->proc_root, pi->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, pi->cg, sizeof(pi->cg) - 1);
		close(fd);
	}
	pi->cg_state = n >= 0 ? 1 : -1;
	pi->cg[n > 0 ? n : 0] = '\0';
	return pi->cg_state > 0;
}

bool strat_parse_kubepods(const char *path, char *uid, size_t uidlen, char *cid, size_t cidlen)
{
	static const char *const cprefix[] = { "cri-containerd-", "docker-", "crio-", "containerd-" };
	const char *p = path, *k = strstr(path, "kubepods");
	bool found = false;

	if (uidlen)
		uid[0] = '\0';
	if (cidlen)
		cid[0] = '\0';
	if (!k)
		return false;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		/* pod<uid>: 8-4-4-4-12 hex with '-' (cgroupfs) or '_' (systemd) */
		for (size_t i = 0; i + 3 + 36 <= len; i++) {
			if (strncmp(p + i, "pod", 3))
				continue;
			const char *u = p + i + 3;
			bool ok = true;
			for (int j = 0; j < 36 && ok; j++) {
				bool sep = j == 8 || j == 13 || j == 18 || j == 23;
				ok = sep ? (u[j] == '-' || u[j] == '_') : isxdigit((unsigned char)u[j]);
			}
			if (ok && uidlen > 36) {
				for (int j = 0; j < 36; j++)
					uid[j] = u[j] == '_' ? '-' : (char)tolower((unsigned char)u[j]);
				uid[36] = '\0';
				found = true;
				break;
			}
		}
		/* the container: <prefix><id>.scope (systemd) or a bare 64-hex component */
		size_t hl = 0, off = 0;
		for (size_t c = 0; c < sizeof(cprefix) / sizeof(cprefix[0]); c++) {
			size_t pl = strlen(cprefix[c]);
			if (len > pl && !strncmp(p, cprefix[c], pl)) {
				off = pl;
				break;
			}
		}
		while (off + hl < len && isxdigit((unsigned char)p[off + hl]))
			hl++;
		if (hl >= 12 && (off + hl == len || !strncmp(p + off + hl, ".scope", 6)) &&
		    (off || hl == 64) && cidlen > hl) {
			for (size_t j = 0; j < hl; j++)
				cid[j] = (char)tolower((unsigned char)p[off + j]);
			cid[hl] = '\0';
		}
		p += len;
		if (*p == '/')
			p++;
	}
	return found;
}

/* Pod UIDs are equal ignoring case and '-' vs '_' (systemd writes underscores). */
static bool uid_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a == '_' ? '-' : (char)tolower((unsigned char)*a);
		char y = *b == '_' ? '-' : (char)tolower((unsigned char)*b);
		if (x != y)
			return false;
	}
	return !*a && !*b;
}

/* Do the cgroup selectors of r match one line "ID:CONTROLLERS:PATH"? */
static bool cg_line_matches(const struct cfg_strategy *r, const char *line, size_t len)
{
	char path[2048], uid[40], cid[72];
	const char *c1 = memchr(line, ':', len), *c2;

	if (!c1 || !(c2 = memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line))))
		return false;
	size_t pl = len - (size_t)(c2 + 1 - line);
	if (pl >= sizeof(path))
		return false;
	memcpy(path, c2 + 1, pl);
	path[pl] = '\0';
	if (r->cgroup[0]) {
		size_t n = strlen(r->cgroup);
		while (n > 1 && r->cgroup[n - 1] == '/')
			n--;
		if (strncmp(path, r->cgroup, n) || (path[n] && path[n] != '/' && r->cgroup[n - 1] != '/'))
			return false;
	}
	if (r->pod_uid[0] || r->container_id[0]) {
		strat_parse_kubepods(path, uid, sizeof(uid), cid, sizeof(cid));
		if (r->pod_uid[0] && !uid_eq(uid, r->pod_uid))
			return false;
		if (r->container_id[0] && (!cid[0] || strncasecmp(cid, r->container_id,
								  strlen(r->container_id))))
			return false;
	}
	return true;
}

/* Every selector rule i sets matches process pi. */
static bool selectors_match(const struct strat *s, int i, struct pinfo *pi)
{
	const struct cfg_strategy *r = &s->rules[i];

	if (s->has_re[i] || r->pod_uid[0]) {
		if (!pinfo_comm(s, pi))
			return false;
		if (s->has_re[i] && regexec(&s->re[i], pi->comm, 0, NULL, 0))
			return false;
		if (r->pod_uid[0] && !strcmp(pi->comm, "pause"))   /* the pod sandbox, as Gthulhu */
			return false;
	}
	if (!needs_cgroup(r))
		return true;
	if (!pinfo_cgroup(s, pi))
		return false;
	for (const char *l = pi->cg; *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		if (cg_line_matches(r, l, len))
			return true;
		l += len + (e ? 1 : 0);
	}
	return false;
}

bool strat_refresh(struct strat *s)
{
	struct strat_entry nw[STRAT_MAX_RESOLVED];
	int16_t src[STRAT_MAX_RESOLVED];       /* rule each entry came from */
	struct pinfo pi;
	int n = 0, npid, first_sel = -1;

	/* 1. pid rules, in order; a pid+selector rule only while its selectors match. */
	for (int i = 0; i < s->nr_rules && n < STRAT_MAX_RESOLVED; i++) {
		const struct cfg_strategy *r = &s->rules[i];
		bool dup = false;

		if (r->pid <= 0) {
			if (has_selector(s, i) && first_sel < 0)
				first_sel = i;
			continue;
		}
		for (int k = 0; k < n && !dup; k++)
			dup = nw[k].pid == r->pid;
		if (dup)
			continue;
		if (has_selector(s, i)) {
			pi.pid = r->pid;
			pi.comm_state = pi.cg_state = 0;
			if (!selectors_match(s, i, &pi))
				continue;
		}
		memset(&nw[n], 0, sizeof(nw[n]));
		fill(&nw[n], r->pid, r, i);
		src[n++] = (int16_t)i;
	}
	npid = n;

	/* 2. selector-only rules against every process. */
	DIR *d = first_sel >= 0 ? opendir(s->proc_root) : NULL;
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
			if (first_sel >= limit)
				continue;       /* an earlier pid rule already decides */
			pi.pid = (int)pid;
			pi.comm_state = pi.cg_state = 0;
			for (int i = first_sel; i < limit; i++) {
				if (s->rules[i].pid > 0 || !has_selector(s, i) ||
				    !selectors_match(s, i, &pi))
					continue;
				if (k >= 0) {
					fill(&nw[k], (int)pid, &s->rules[i], i);
					src[k] = (int16_t)i;
				} else if (n < STRAT_MAX_RESOLVED) {
					memset(&nw[n], 0, sizeof(nw[n]));
					fill(&nw[n], (int)pid, &s->rules[i], i);
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
			  nw[i].rule != s->resolved[i].rule ||
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
