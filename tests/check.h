/* SPDX-License-Identifier: GPL-2.0 */
/*
 * check.h - the C test harness: CHECK() counts, a failure prints file:line and why, and
 * CHECK_DONE() prints the closing "N passed, N failed" line that scripts/run-tests.sh sums.
 */
#ifndef GTHULHU_CHECK_H
#define GTHULHU_CHECK_H
#include <stdio.h>
#include <string.h>

static int chk_pass, chk_fail;

#define CHECK(cond, ...) do {                                                   \
	if (cond) { chk_pass++; }                                               \
	else {                                                                  \
		chk_fail++;                                                     \
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, "" __VA_ARGS__);                                \
		fputc('\n', stderr);                                            \
	}                                                                       \
} while (0)

#define CHECK_STR_CONTAINS(hay, needle) \
	CHECK(strstr((hay), (needle)) != NULL, "'%s' not in '%s'", (needle), (hay))

#define CHECK_DONE() (printf("%d passed, %d failed\n", chk_pass, chk_fail), chk_fail ? 1 : 0)

#endif
