/* SPDX-License-Identifier: GPL-2.0 */
/* paths.c - installed data files; see paths.h. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
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
