/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test_topo.c - topology from fake sysfs trees built in a temp dir, and the cpulist parser.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common.h"
#include "topo.h"

int g_verbose;
static char root[256];

/* Write `text` to root/relpath, creating the directories on the way. */
static void put(const char *rel, const char *text)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *p = path + strlen(root) + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	}
	FILE *f = fopen(path, "w");
	CHECK(f != NULL, "cannot write %s: %s", path, strerror(errno));
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void mkd(const char *rel)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	mkdir(path, 0755);
}

static void cache(int cpu, int idx, int level, const char *list)
{
	char rel[256], txt[32];
	snprintf(rel, sizeof(rel), "cpu%d/cache/index%d/level", cpu, idx);
	snprintf(txt, sizeof(txt), "%d\n", level);
	put(rel, txt);
	snprintf(rel, sizeof(rel), "cpu%d/cache/index%d/shared_cpu_list", cpu, idx);
	put(rel, list);
}

/* The usual layout: index0/1 = L1d/L1i (self), index2 = L2, index3 = L3. */
static void std_caches(int cpu, const char *l2, const char *l3)
{
	char self[16];
	snprintf(self, sizeof(self), "%d\n", cpu);
	cache(cpu, 0, 1, self);
	cache(cpu, 1, 1, self);
	cache(cpu, 2, 2, l2);
	cache(cpu, 3, 3, l3);
}

static void new_root(void)
{
	strcpy(root, "/tmp/gthulhu-topo-XXXXXX");
	CHECK(mkdtemp(root) != NULL, "mkdtemp: %s", strerror(errno));
}

static void rm_root(void)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	CHECK(system(cmd) == 0, "%s", cmd);
}

/* "a,b,c" view of a list, for messages and comparisons. */
static const char *fmt_list(const uint16_t *l, uint32_t n)
{
	static char buf[8][1024];
	static int k;
	char *b = buf[k++ % 8];
	size_t o = 0;
	b[0] = '\0';
	for (uint32_t i = 0; i < n && o < 1000; i++)
		o += (size_t)snprintf(b + o, 1024 - o, "%s%u", i ? "," : "", l[i]);
	return b;
}

#define CHECK_LIST(l, n, want) do {                                         \
	const char *got_ = fmt_list((l), (n));                              \
	CHECK(!strcmp(got_, (want)), "%s: got [%s], want [%s]", #l, got_, (want)); \
} while (0)

static void test_eight_cpus(void)
{
	struct topo t;
	char err[512];

	new_root();
	/* 10 possible CPUs, 8 present; 2 per L2, 4 per L3. */
	put("possible", "0-9\n");
	put("online", "0-4,6-7\n");
	mkd("cpufreq");
	mkd("cpuidle");
	put("cpu0/topology/core_id", "0\n");             /* cpu0: no online file */
	std_caches(0, "0-1\n", "0-3\n");
	put("cpu1/online", "1\n");
	std_caches(1, "0-1\n", "0-3\n");
	put("cpu2/online", "1\n");
	/* cpu2: unusual numbering: index5 is the L3, index7 the L2, index3 an L1. */
	cache(2, 3, 1, "2\n");
	cache(2, 5, 3, " 0-3 \n");
	cache(2, 7, 2, "2,3\n");
	put("cpu3/online", "1\n");
	/* cpu3: index2 says level 3 and index3 says level 2. */
	cache(3, 0, 1, "3\n");
	cache(3, 2, 3, "0-3\n");
	cache(3, 3, 2, "2-3\n");
	put("cpu4/online", "1\n");
	/* cpu4: the kernel's L3 list without cpu4 itself (self is added back). */
	std_caches(4, "4-5\n", "5-7\n");
	put("cpu5/online", "0\n");                        /* offline: no cache dir */
	put("cpu6/online", "1\n");
	/* cpu6: ids beyond nr_cpus are dropped. */
	std_caches(6, "6-7\n", "4-7,12\n");
	put("cpu7/online", "1\n");                        /* online, but no cache dir */
	mkd("cpu7/cache");                                /* ...an empty one */

	int rc = topo_read(&t, root, err, sizeof(err));
	CHECK(rc == G_OK, "topo_read: %d %s", rc, err);
	CHECK(t.nr_cpus == 10, "nr_cpus %d", t.nr_cpus);
	static const int want_online[10] = { 1, 1, 1, 1, 1, 0, 1, 1, 0, 0 };
	for (int i = 0; i < 10; i++)
		CHECK(t.online[i] == want_online[i], "online[%d] = %d", i, t.online[i]);

	CHECK_LIST(t.cpu[0].l2, t.cpu[0].nr_l2, "0,1");
	CHECK_LIST(t.cpu[0].l3, t.cpu[0].nr_l3, "0,1,2,3");
	CHECK_LIST(t.cpu[1].l2, t.cpu[1].nr_l2, "0,1");
	CHECK_LIST(t.cpu[1].l3, t.cpu[1].nr_l3, "0,1,2,3");
	CHECK_LIST(t.cpu[2].l2, t.cpu[2].nr_l2, "2,3");
	CHECK_LIST(t.cpu[2].l3, t.cpu[2].nr_l3, "0,1,2,3");
	CHECK_LIST(t.cpu[3].l2, t.cpu[3].nr_l2, "2,3");
	CHECK_LIST(t.cpu[3].l3, t.cpu[3].nr_l3, "0,1,2,3");
	CHECK_LIST(t.cpu[4].l2, t.cpu[4].nr_l2, "4,5");
	CHECK_LIST(t.cpu[4].l3, t.cpu[4].nr_l3, "4,5,6,7");
	CHECK_LIST(t.cpu[5].l2, t.cpu[5].nr_l2, "5");
	CHECK_LIST(t.cpu[5].l3, t.cpu[5].nr_l3, "5");
	CHECK_LIST(t.cpu[6].l2, t.cpu[6].nr_l2, "6,7");
	CHECK_LIST(t.cpu[6].l3, t.cpu[6].nr_l3, "4,5,6,7");
	CHECK_LIST(t.cpu[7].l2, t.cpu[7].nr_l2, "7");
	CHECK_LIST(t.cpu[7].l3, t.cpu[7].nr_l3, "7");
	CHECK_LIST(t.cpu[8].l2, t.cpu[8].nr_l2, "8");
	CHECK_LIST(t.cpu[9].l3, t.cpu[9].nr_l3, "9");
	CHECK(t.cpu[10].nr_l2 == 0 && t.cpu[10].nr_l3 == 0, "beyond nr_cpus: untouched");

	/* Without `possible`, nr_cpus is the highest cpuN + 1. */
	char p[512];
	snprintf(p, sizeof(p), "%s/possible", root);
	unlink(p);
	rc = topo_read(&t, root, err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(t.nr_cpus == 8, "nr_cpus %d", t.nr_cpus);
	CHECK_LIST(t.cpu[6].l3, t.cpu[6].nr_l3, "4,5,6,7");

	/* Errors name the file. */
	put("cpu1/cache/index2/shared_cpu_list", "0-x\n");
	rc = topo_read(&t, root, err, sizeof(err));
	CHECK(rc == G_ERR_PARSE, "rc %d", rc);
	CHECK_STR_CONTAINS(err, "/cpu1/cache/index2/shared_cpu_list: bad cpu list '0-x'");
	CHECK(!strncmp(err, root, strlen(root)), "%s", err);
	put("cpu1/cache/index2/shared_cpu_list", "0-1\n");

	put("cpu6/cache/index3/level", "three\n");
	rc = topo_read(&t, root, err, sizeof(err));
	CHECK(rc == G_ERR_PARSE, "rc %d", rc);
	CHECK_STR_CONTAINS(err, "/cpu6/cache/index3/level: bad cache level 'three'");
	put("cpu6/cache/index3/level", "3\n");

	put("cpu4/online", "2\n");
	rc = topo_read(&t, root, err, sizeof(err));
	CHECK(rc == G_ERR_PARSE, "rc %d", rc);
	CHECK_STR_CONTAINS(err, "/cpu4/online: expected 0 or 1, got '2'");
	put("cpu4/online", "1\n");

	snprintf(p, sizeof(p), "%s/cpu0/cache/index3/shared_cpu_list", root);
	unlink(p);
	rc = topo_read(&t, root, err, sizeof(err));
	CHECK(rc == G_ERR_IO, "rc %d", rc);
	CHECK_STR_CONTAINS(err, "/cpu0/cache/index3/shared_cpu_list: No such file or directory");
	put("cpu0/cache/index3/shared_cpu_list", "0-3\n");

	put("possible", "0-2000\n");
	rc = topo_read(&t, root, err, sizeof(err));
	CHECK(rc == G_ERR_PARSE, "rc %d", rc);
	CHECK_STR_CONTAINS(err, "/possible: bad cpu list '0-2000'");
	put("possible", "0-7\n");

	rc = topo_read(&t, root, err, sizeof(err));
	CHECK(rc == G_OK, "back to valid: %s", err);
	rm_root();
}

static void test_big_l3(void)
{
	struct topo t;
	char err[512], rel[64];

	/* 100 CPUs on one L3: lists are capped at 64, around the CPU itself. */
	new_root();
	for (int c = 0; c < 100; c++) {
		char l2[32];
		snprintf(l2, sizeof(l2), "%d-%d\n", c & ~1, (c & ~1) + 1);
		std_caches(c, l2, "0-99\n");
		snprintf(rel, sizeof(rel), "cpu%d/online", c);
		if (c)
			put(rel, "1\n");
	}
	int rc = topo_read(&t, root, err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(t.nr_cpus == 100, "%d", t.nr_cpus);
	for (int c = 0; c < 100; c++) {
		const struct cpu_topo *ct = &t.cpu[c];
		bool self = false, sorted = true;
		CHECK(ct->nr_l3 == MAX_SIBLINGS, "cpu%d nr_l3 %u", c, ct->nr_l3);
		for (uint32_t i = 0; i < ct->nr_l3; i++) {
			self |= ct->l3[i] == c;
			if (i && ct->l3[i] <= ct->l3[i - 1])
				sorted = false;
		}
		CHECK(self && sorted, "cpu%d: %s", c, fmt_list(ct->l3, ct->nr_l3));
		CHECK(ct->nr_l2 == 2, "cpu%d nr_l2 %u", c, ct->nr_l2);
	}
	CHECK(t.cpu[0].l3[0] == 0 && t.cpu[0].l3[63] == 63, " ");
	CHECK(t.cpu[99].l3[0] == 36 && t.cpu[99].l3[63] == 99, " ");
	CHECK(t.cpu[50].l3[0] == 18 && t.cpu[50].l3[63] == 81, "%s",
	      fmt_list(t.cpu[50].l3, t.cpu[50].nr_l3));
	rm_root();
}

static void test_root_errors(void)
{
	struct topo t;
	char err[512];

	int rc = topo_read(&t, "/nonexistent/gthulhu/cpu", err, sizeof(err));
	CHECK(rc == G_ERR_IO, "rc %d", rc);
	CHECK(!strcmp(err, "/nonexistent/gthulhu/cpu: No such file or directory"), "%s", err);

	new_root();
	mkd("cpufreq");
	rc = topo_read(&t, root, err, sizeof(err));
	CHECK(rc == G_ERR_IO, "rc %d", rc);
	CHECK_STR_CONTAINS(err, ": no cpuN directories");

	mkd("cpu1024");
	rc = topo_read(&t, root, err, sizeof(err));
	CHECK(rc == G_ERR_RANGE, "rc %d", rc);
	CHECK_STR_CONTAINS(err, "/cpu1024: CPU id beyond the supported 1024");
	rm_root();

	/* A single CPU with nothing but its directory. */
	new_root();
	mkd("cpu0");
	rc = topo_read(&t, root, err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(t.nr_cpus == 1 && t.online[0] == 1, " ");
	CHECK_LIST(t.cpu[0].l2, t.cpu[0].nr_l2, "0");
	CHECK_LIST(t.cpu[0].l3, t.cpu[0].nr_l3, "0");
	rm_root();
}

static void test_real_sysfs(void)
{
	struct topo t;
	char err[512];

	/* Whatever this machine is, reading it must work and give sane lists. */
	if (access("/sys/devices/system/cpu/cpu0", F_OK))
		return;
	int rc = topo_read(&t, "/sys/devices/system/cpu", err, sizeof(err));
	CHECK(rc == G_OK, "%s", err);
	CHECK(t.nr_cpus >= 1 && t.nr_cpus <= MAX_CPUS, "%d", t.nr_cpus);
	CHECK(t.online[0] == 1, " ");
	for (int c = 0; c < t.nr_cpus; c++)
		CHECK(t.cpu[c].nr_l2 >= 1 && t.cpu[c].nr_l3 >= 1, "cpu%d", c);
}

/* cpulist: want is "a,b,c" or "ERR". */
static void cl(const char *in, int max, const char *want)
{
	uint16_t ids[MAX_CPUS];
	int n = topo_parse_cpulist(in, ids, max);
	const char *got = n < 0 ? "ERR" : fmt_list(ids, (uint32_t)n);
	CHECK(!strcmp(got, want), "cpulist '%s' (max %d): got [%s], want [%s]", in, max, got, want);
}

static void test_cpulist(void)
{
	cl("0-3,8,10-11", MAX_CPUS, "0,1,2,3,8,10,11");
	cl("0-3,8,10-11\n", MAX_CPUS, "0,1,2,3,8,10,11");
	cl("5\n", MAX_CPUS, "5");
	cl(" 1 , 3 - 4 \n", MAX_CPUS, "1,3,4");
	cl("\t7\t\n", MAX_CPUS, "7");
	cl("", MAX_CPUS, "");
	cl("\n", MAX_CPUS, "");
	cl("1023", MAX_CPUS, "1023");
	cl("1020-1023", MAX_CPUS, "1020,1021,1022,1023");
	cl("0-3,2", MAX_CPUS, "0,1,2,3");
	cl("4,4,4", MAX_CPUS, "4");
	cl("0-4", 5, "0,1,2,3,4");
	cl("0-5", 5, "ERR");
	cl("1024", MAX_CPUS, "ERR");
	cl("0-1024", MAX_CPUS, "ERR");
	cl("99999999999999999999999", MAX_CPUS, "ERR");
	cl("3-1", MAX_CPUS, "ERR");
	cl("a", MAX_CPUS, "ERR");
	cl("0-x", MAX_CPUS, "ERR");
	cl("1,,2", MAX_CPUS, "ERR");
	cl("1-", MAX_CPUS, "ERR");
	cl("-1", MAX_CPUS, "ERR");
	cl("1,2,", MAX_CPUS, "ERR");
	cl(",1", MAX_CPUS, "ERR");
	cl("1 2", MAX_CPUS, "ERR");
	cl("1\n2", MAX_CPUS, "ERR");
	cl("0x3", MAX_CPUS, "ERR");
	cl("1-2-3", MAX_CPUS, "ERR");
	cl("+1", MAX_CPUS, "ERR");
	CHECK(topo_parse_cpulist(NULL, NULL, 0) == -1, " ");
	uint16_t all[MAX_CPUS];
	CHECK(topo_parse_cpulist("0-1023", all, MAX_CPUS) == MAX_CPUS, " ");
	CHECK(all[0] == 0 && all[1023] == 1023, " ");
}

int main(void)
{
	test_cpulist();
	test_eight_cpus();
	test_big_l3();
	test_root_errors();
	test_real_sysfs();
	return CHECK_DONE();
}
