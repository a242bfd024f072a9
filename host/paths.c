/* SPDX-License-Identifier: GPL-2.0 */
/* paths.c - installed data files and the policy library's directory; see paths.h. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "paths.h"

#ifndef GTHULHU_DATADIR
#define GTHULHU_DATADIR "/usr/local/share/gthulhu-lua"
#endif

static bool readable(const char *p) { return access(p, R_OK) == 0; }

bool path_find_data(const char *rel, char *out, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n;

	out[0] = '\0';
	if (!rel[0] || rel[0] == '/')
		return false;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			if ((size_t)snprintf(out, len, "%s/../share/gthulhu-lua/%s", exe, rel) < len &&
			    readable(out))
				return true;
			/* A checkout's build/gthulhu-lua run from elsewhere: the checkout's file. */
			if ((size_t)snprintf(out, len, "%s/../%s", exe, rel) < len && readable(out))
				return true;
		}
	}
	if ((size_t)snprintf(out, len, "%s/%s", GTHULHU_DATADIR, rel) < len && readable(out))
		return true;
	out[0] = '\0';
	return false;
}

void path_dir_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, len, ".");
	else if (slash == path)
		snprintf(dir, len, "/");
	else
		snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void path_lib_dir(const char *policy_path, char *out, size_t len)
{
	static const char probe_in_lib[] = "/gthulhu/sched.lua";
	char dir[PATH_MAX], probe[PATH_MAX + 64];
	const char *env = getenv("GTHULHU_LIB");

	if (env && env[0]) {
		snprintf(out, len, "%s", env);
		return;
	}
	path_dir_of(policy_path, dir, sizeof(dir));
	snprintf(probe, sizeof(probe), "%s/lib%s", dir, probe_in_lib);
	if (file_exists(probe)) {
		snprintf(out, len, "%.4000s/lib", dir);
		return;
	}
	if (path_find_data("policies/lib/gthulhu/sched.lua", probe, sizeof(probe))) {
		probe[strlen(probe) - (sizeof(probe_in_lib) - 1)] = '\0';
		snprintf(out, len, "%s", probe);
		return;
	}
	snprintf(out, len, "%s", GTHULHU_DATADIR "/policies/lib");
}
