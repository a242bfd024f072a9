/* SPDX-License-Identifier: GPL-2.0 */
/*
 * version.c - `gthulhu-lua --version`: this program's version, the versions of the
 * libraries it runs with (libbpf at run time and at build time, LuaJIT), the running
 * kernel, and whether that kernel has sched_ext (and what it is doing now), so a bug
 * report carries all of it. Reads only uname() and /sys; needs no root.
 */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <luajit.h>
#include "common.h"
#include "version.h"

#define SCX_SYSFS "/sys/kernel/sched_ext"

static void read_first_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	buf[0] = '\0';
	if (!f)
		return;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

void version_print(FILE *out)
{
	char state[64], ops[64];
	struct utsname u;

	fprintf(out, "gthulhu-lua %s\n", GTHULHU_VERSION);
	fprintf(out, "libbpf %u.%u (built with %d.%d)\n", libbpf_major_version(),
		libbpf_minor_version(), LIBBPF_MAJOR_VERSION, LIBBPF_MINOR_VERSION);
	fprintf(out, "%s\n", LUAJIT_VERSION);
	if (uname(&u) == 0)
		fprintf(out, "kernel %s %s %s\n", u.sysname, u.release, u.machine);
	else
		fprintf(out, "kernel unknown (uname failed)\n");
	if (access(SCX_SYSFS, F_OK)) {
		fprintf(out, "sched_ext: not available (%s is missing: the kernel needs "
			"CONFIG_SCHED_CLASS_EXT=y)\n", SCX_SYSFS);
		return;
	}
	read_first_line(SCX_SYSFS "/state", state, sizeof(state));
	read_first_line(SCX_SYSFS "/root/ops", ops, sizeof(ops));
	fprintf(out, "sched_ext: available, state=%s%s%s%s\n", state[0] ? state : "unknown",
		ops[0] ? " (scheduler '" : "", ops, ops[0] ? "')" : "");
	if (access("/sys/kernel/btf/vmlinux", R_OK))
		fprintf(out, "sched_ext: but the kernel exposes no BTF (/sys/kernel/btf/vmlinux)\n");
}
