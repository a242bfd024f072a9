/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fuzz_cfg.c - libFuzzer target for the YAML config loader (host/cfg.c).
 *
 * Input: the bytes of a config file. cfg_defaults(), then cfg_load_buffer() on them, with
 * warnings going to /dev/null. It must never crash, leak or hang, and:
 *   - on failure the struct is left exactly as it was (the defaults) and err holds a
 *     non-empty, NUL-terminated message;
 *   - on success, cfg_dump() of the result (into an open_memstream buffer) loads back
 *     over fresh defaults with no error and no warning, and dumps byte for byte the same
 *     (round trip), and loading it changes no field of the struct either.
 * A violation abort()s with both dumps on stderr.
 *
 * Found by this target and fixed: cfg_dump wrote C1 control characters (U+0080..U+009F,
 * e.g. "\u0080" or "\N" in a double-quoted scalar) raw, so the dump did not load back;
 * reproducers in tests/fuzz/regress/fuzz_cfg/, and a case in tests/cfg/cases.txt.
 *
 * Seeds: tests/fuzz/corpus/fuzz_cfg/ (config/config.yaml, every case body of
 * tests/cfg/cases.txt extracted by tests/fuzz/extract-cfg-cases.sh, some malformed YAML);
 * dictionary tests/fuzz/cfg.dict.
 * Run: make fuzz, or build/fuzz/fuzz_cfg -dict=tests/fuzz/cfg.dict DIR...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "cfg.h"

int g_verbose;

#define NAME "fuzz.yaml"

static FILE *devnull;

static char *dump(const struct cfg *c, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		abort();
	cfg_dump(c, f);
	if (fclose(f))
		abort();
	return buf;
}

/* Every option and strategy field equal (strategy config lines and the file name apart). */
static int same(const struct cfg *a, const struct cfg *b)
{
#define F(f) if (a->f != b->f) return 0;
#define S(f) if (strcmp(a->f, b->f)) return 0;
	S(policy) F(slice_ns_default) F(slice_ns_min) F(builtin_idle) F(early_processing)
	F(debug) F(batch_max) F(stall_timeout_ms) F(watchdog_timeout_ms) S(topology_root)
	F(api_enabled) S(api_listen) F(api_port) S(api_public_key) S(api_private_key)
	F(api_token_ttl_s) F(nr_strategies)
	for (int i = 0; i < a->nr_strategies; i++) {
		F(strategies[i].pid) S(strategies[i].command_regex) F(strategies[i].priority)
		F(strategies[i].execution_time)
	}
#undef F
#undef S
	return 1;
}

static void die(const char *what, const char *d1, const char *d2, const char *err)
{
	fprintf(stderr, "fuzz_cfg: %s\n--- first dump:\n%s\n--- second dump:\n%s\n--- error: %s\n",
		what, d1 ? d1 : "", d2 ? d2 : "", err ? err : "");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cfg c, defaults, c2;
	static char err[1024], err2[1024];

	if (!devnull && !(devnull = fopen("/dev/null", "w")))
		abort();

	cfg_defaults(&defaults);
	cfg_defaults(&c);
	/* A copy of exactly `size` bytes: ASan sees any read past the end. */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		abort();
	memcpy(buf, data, size);
	memset(err, 0x55, sizeof(err));
	int rc = cfg_load_buffer(&c, NAME, buf, size, devnull, err, sizeof(err));
	free(buf);

	if (rc != G_OK) {
		if (!memchr(err, '\0', sizeof(err)) || !err[0])
			die("failed load left no error message", NULL, NULL, NULL);
		if (memcmp(&c, &defaults, sizeof(c)))
			die("failed load changed the struct", NULL, NULL, err);
		return 0;
	}
	if (c.nr_strategies < 0 || c.nr_strategies > CFG_MAX_STRATEGIES)
		die("nr_strategies out of range", NULL, NULL, NULL);

	size_t len1 = 0, len2 = 0;
	char *d1 = dump(&c, &len1);

	/* Load the dump back: no error, no warning, identical dump. */
	char *wbuf = NULL;
	size_t wlen = 0;
	FILE *w = open_memstream(&wbuf, &wlen);
	if (!w)
		abort();
	cfg_defaults(&c2);
	rc = cfg_load_buffer(&c2, NAME, d1, len1, w, err2, sizeof(err2));
	fclose(w);
	if (rc != G_OK)
		die("the dump does not load back", d1, NULL, err2);
	if (wlen)
		die("the dump loads back with warnings", d1, NULL, wbuf);
	char *d2 = dump(&c2, &len2);
	if (len1 != len2 || memcmp(d1, d2, len1))
		die("the dump does not round-trip", d1, d2, NULL);
	if (!same(&c, &c2))
		die("the dump loads back as another configuration", d1, d2, NULL);
	free(d2);
	free(wbuf);
	free(d1);
	return 0;
}
