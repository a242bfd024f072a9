/* SPDX-License-Identifier: GPL-2.0 */
/*
 * capdrop - run a command with a reduced capability bounding set, the way systemd applies
 * CapabilityBoundingSet= (tests the capabilities the service unit grants).
 *   capdrop --keep N[,N...] -- COMMAND [ARGS...]
 * Drops every capability not listed (numbers, as in <linux/capability.h>) from the bounding
 * set, then execs COMMAND: for root, the permitted and effective sets after exec are the
 * bounding set (the inheritable set of a root shell is empty). Exits 2 on a setup error.
 */
#include "wl.h"
#include <sys/prctl.h>

int main(int argc, char **argv)
{
	unsigned long long keep = 0;
	int i = 1;

	if (argc < 4 || strcmp(argv[1], "--keep"))
		wl_die("usage: capdrop --keep N[,N...] -- COMMAND [ARGS...]");
	for (char *s = argv[2]; *s; ) {
		char *end;
		long n = strtol(s, &end, 10);

		if (end == s || n < 0 || n > 63)
			wl_die("capdrop: bad capability list '%s'", argv[2]);
		keep |= 1ull << n;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			wl_die("capdrop: bad capability list '%s'", argv[2]);
	}
	i = 3;
	if (strcmp(argv[i], "--"))
		wl_die("capdrop: expected -- before the command");
	i++;
	for (int cap = 0; cap <= 63; cap++) {
		if (keep & (1ull << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
			wl_die("capdrop: PR_CAPBSET_DROP %d: %s", cap, strerror(errno));
	}
	execvp(argv[i], argv + i);
	wl_die("capdrop: exec %s: %s", argv[i], strerror(errno));
	return 2;
}
