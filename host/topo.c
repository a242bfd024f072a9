/* SPDX-License-Identifier: GPL-2.0 */
/*
 * topo.c - CPU cache topology from sysfs.
 *
 * For each ROOT/cpuN: online state from ROOT/cpuN/online (no such file = online, as for
 * cpu0 on most machines), then every ROOT/cpuN/cache/indexK whose `level` file says 2 or
 * 3 (the index numbers are not trusted to mean a level) gives that level's
 * shared_cpu_list. Lists are sorted, hold the CPU itself, and are capped at MAX_SIBLINGS:
 * when a cache is shared by more CPUs, the ones with the nearest ids are kept.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "topo.h"

/* Read a small sysfs file into buf (NUL-terminated). 0, or -errno. */
static int read_small(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	if (ferror(f)) {
		int e = errno ? errno : EIO;
		fclose(f);
		return -e;
	}
	fclose(f);
	buf[n] = '\0';
	return 0;
}

int topo_parse_cpulist(const char *s, uint16_t *ids, int max)
{
	uint8_t seen[MAX_CPUS / 8];
	int n = 0;
	const char *p = s;

	if (!s)
		return -1;
	memset(seen, 0, sizeof(seen));
	while (isspace((unsigned char)*p))
		p++;
	if (!*p)
		return 0;                   /* an empty list (the kernel writes "\n") */
	for (;;) {
		unsigned long a, b;
		char *end;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		errno = 0;
		a = strtoul(p, &end, 10);
		if (errno || a >= MAX_CPUS)
			return -1;
		p = end;
		b = a;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '-') {
			p++;
			while (*p == ' ' || *p == '\t')
				p++;
			if (!isdigit((unsigned char)*p))
				return -1;
			errno = 0;
			b = strtoul(p, &end, 10);
			if (errno || b >= MAX_CPUS || b < a)
				return -1;
			p = end;
		}
		for (unsigned long id = a; id <= b; id++) {
			if (seen[id / 8] & (1u << (id % 8)))
				continue;           /* listed twice: count it once */
			if (n >= max)
				return -1;
			seen[id / 8] |= (uint8_t)(1u << (id % 8));
			ids[n++] = (uint16_t)id;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == ',') {
			p++;
			continue;
		}
		while (isspace((unsigned char)*p))
			p++;
		return *p ? -1 : n;
	}
}

static int cmp_u16(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* Sorted, self included, ids >= nr_cpus dropped, at most MAX_SIBLINGS (nearest ids kept). */
static uint32_t make_list(uint16_t *out, const uint16_t *in, int n, int self, int nr_cpus)
{
	uint16_t tmp[MAX_CPUS];
	int m = 0;
	bool has_self = false;

	for (int i = 0; i < n; i++) {
		if (in[i] >= nr_cpus)
			continue;
		if (in[i] == self)
			has_self = true;
		tmp[m++] = in[i];
	}
	if (!has_self)
		tmp[m++] = (uint16_t)self;
	qsort(tmp, (size_t)m, sizeof(tmp[0]), cmp_u16);
	if (m <= MAX_SIBLINGS) {
		memcpy(out, tmp, (size_t)m * sizeof(tmp[0]));
		return (uint32_t)m;
	}
	/* Too many: take a window of MAX_SIBLINGS ids around self in the sorted list. */
	int pos = 0;
	while (tmp[pos] != self)
		pos++;
	int lo = pos, hi = pos;       /* window [lo, hi] */
	while (hi - lo + 1 < MAX_SIBLINGS) {
		bool can_lo = lo > 0, can_hi = hi < m - 1;
		if (can_lo && (!can_hi || self - tmp[lo - 1] <= tmp[hi + 1] - self))
			lo--;
		else
			hi++;
	}
	memcpy(out, tmp + lo, MAX_SIBLINGS * sizeof(tmp[0]));
	return MAX_SIBLINGS;
}

/* Read cpuN's cache dir: fill l2/l3 lists. Missing cache dir: the CPU alone. */
static int read_caches(struct topo *t, const char *root, int cpu, char *err, size_t errlen)
{
	char path[4096 + 64], buf[8192];
	uint16_t ids[MAX_CPUS];
	struct cpu_topo *ct = &t->cpu[cpu];
	int best_idx[4] = { -1, -1, -1, -1 };   /* lowest indexK per level 2, 3 */
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/cpu%d/cache", root, cpu);
	d = opendir(path);
	if (d) {
		while ((de = readdir(d))) {
			char *end;
			if (strncmp(de->d_name, "index", 5) || !isdigit((unsigned char)de->d_name[5]))
				continue;
			long k = strtol(de->d_name + 5, &end, 10);
			if (*end || k < 0 || k > 1000)
				continue;
			snprintf(path, sizeof(path), "%s/cpu%d/cache/index%ld/level", root, cpu, k);
			int rc = read_small(path, buf, sizeof(buf));
			if (rc == -ENOENT)
				continue;       /* no level: not a cache we can place */
			if (rc) {
				closedir(d);
				set_err(err, errlen, "%s: %s", path, strerror(-rc));
				return G_ERR_IO;
			}
			long lvl = strtol(buf, &end, 10);
			while (isspace((unsigned char)*end))
				end++;
			if (end == buf || *end || lvl < 0) {
				closedir(d);
				buf[strcspn(buf, "\n")] = '\0';
				set_err(err, errlen, "%s: bad cache level '%s'", path, buf);
				return G_ERR_PARSE;
			}
			if ((lvl == 2 || lvl == 3) && (best_idx[lvl] < 0 || k < best_idx[lvl]))
				best_idx[lvl] = (int)k;
		}
		closedir(d);
	}
	for (int lvl = 2; lvl <= 3; lvl++) {
		uint16_t *list = lvl == 2 ? ct->l2 : ct->l3;
		uint32_t *nr = lvl == 2 ? &ct->nr_l2 : &ct->nr_l3;
		int n = 0;

		if (best_idx[lvl] >= 0) {
			snprintf(path, sizeof(path), "%s/cpu%d/cache/index%d/shared_cpu_list",
				 root, cpu, best_idx[lvl]);
			int rc = read_small(path, buf, sizeof(buf));
			if (rc) {
				set_err(err, errlen, "%s: %s", path, strerror(-rc));
				return G_ERR_IO;
			}
			n = topo_parse_cpulist(buf, ids, MAX_CPUS);
			if (n < 0) {
				buf[strcspn(buf, "\n")] = '\0';
				set_err(err, errlen, "%s: bad cpu list '%.64s' (ids must be < %d)",
					path, buf, MAX_CPUS);
				return G_ERR_PARSE;
			}
		}
		*nr = make_list(list, ids, n, cpu, t->nr_cpus);
	}
	return G_OK;
}

int topo_read(struct topo *t, const char *root, char *err, size_t errlen)
{
	char path[4096 + 64], buf[8192];
	uint16_t ids[MAX_CPUS];
	uint8_t present[MAX_CPUS];
	int max_id = -1;
	DIR *d;
	struct dirent *de;

	memset(t, 0, sizeof(*t));
	memset(present, 0, sizeof(present));
	if (err && errlen)
		err[0] = '\0';
	d = opendir(root);
	if (!d) {
		set_err(err, errlen, "%s: %s", root, strerror(errno));
		return G_ERR_IO;
	}
	while ((de = readdir(d))) {
		const char *s = de->d_name;
		char *end;
		if (strncmp(s, "cpu", 3) || !isdigit((unsigned char)s[3]))
			continue;
		errno = 0;
		unsigned long id = strtoul(s + 3, &end, 10);
		if (*end)
			continue;               /* cpufreq, cpuidle, ... */
		if (errno || id >= MAX_CPUS) {
			set_err(err, errlen, "%s/%s: CPU id beyond the supported %d", root, s, MAX_CPUS);
			closedir(d);        /* after set_err: s points into d */
			return G_ERR_RANGE;
		}
		present[id] = 1;
		if ((int)id > max_id)
			max_id = (int)id;
	}
	closedir(d);

	/* ROOT/possible bounds nr_cpus from above: CPUs that may come online later. */
	snprintf(path, sizeof(path), "%s/possible", root);
	int rc = read_small(path, buf, sizeof(buf));
	if (rc && rc != -ENOENT) {
		set_err(err, errlen, "%s: %s", path, strerror(-rc));
		return G_ERR_IO;
	}
	if (!rc) {
		int n = topo_parse_cpulist(buf, ids, MAX_CPUS);
		if (n < 0) {
			buf[strcspn(buf, "\n")] = '\0';
			set_err(err, errlen, "%s: bad cpu list '%.64s' (ids must be < %d)", path, buf,
				MAX_CPUS);
			return G_ERR_PARSE;
		}
		for (int i = 0; i < n; i++)
			if (ids[i] > max_id)
				max_id = ids[i];
	}
	if (max_id < 0) {
		set_err(err, errlen, "%s: no cpuN directories", root);
		return G_ERR_IO;
	}
	t->nr_cpus = max_id + 1;

	for (int cpu = 0; cpu < t->nr_cpus; cpu++) {
		struct cpu_topo *ct = &t->cpu[cpu];
		if (!present[cpu]) {
			ct->nr_l2 = ct->nr_l3 = 1;
			ct->l2[0] = ct->l3[0] = (uint16_t)cpu;
			continue;
		}
		snprintf(path, sizeof(path), "%s/cpu%d/online", root, cpu);
		rc = read_small(path, buf, sizeof(buf));
		if (rc == -ENOENT) {
			t->online[cpu] = 1;
		} else if (rc) {
			set_err(err, errlen, "%s: %s", path, strerror(-rc));
			return G_ERR_IO;
		} else {
			buf[strcspn(buf, " \t\r\n")] = '\0';
			if (strcmp(buf, "0") && strcmp(buf, "1")) {
				set_err(err, errlen, "%s: expected 0 or 1, got '%.32s'", path, buf);
				return G_ERR_PARSE;
			}
			t->online[cpu] = buf[0] == '1';
		}
		if ((rc = read_caches(t, root, cpu, err, errlen)))
			return rc;
	}
	return G_OK;
}
