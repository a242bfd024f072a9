/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fuzz_api.c - libFuzzer target for what the HTTP API parses from a client: JSON bodies
 * (host/api/json.c) and Bearer tokens (host/api/token.c).
 *
 * Input: byte 0 picks the mode, the rest is the payload.
 *   0-5  the payload is a request body, given to api_json_parse() and then to one parser:
 *        0 our strategies, 1 token request, 2 Gthulhu intents (then their merkle root),
 *        3 node intents (merkle root), 4 metrics, 5 a decision maker's strategy list
 *   6    the payload is a token, verified against a key pair made at start-up
 *   7    a fresh valid token is issued, then the payload's bytes (pairs: position, value)
 *        overwrite bytes of it before verification: near-valid tokens
 * Invariants (abort() on violation):
 *   - a parser either fails with a non-empty message or returns 0 <= n <= max;
 *   - strategies a parser accepts are accepted by strat_init() too (the API never hands
 *     the run loop a rule the resolver refuses) and have a pid or a selector;
 *   - a failed verification says why; an unmodified fresh token verifies (mode 7 with
 *     an empty payload), and one with its alg rewritten to none/HS256 never does;
 *   - no leak (LeakSanitizer), no crash, no hang.
 * Seeds: tests/fuzz/corpus/fuzz_api/. Run: make fuzz FUZZ_TARGETS=fuzz_api.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common.h"
#include "api/internal.h"

int g_verbose;

#define DIE(...) do { fprintf(stderr, "fuzz_api: " __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

static struct api_keys keys;
static struct strat S;
static struct cfg_strategy rules[CFG_MAX_STRATEGIES];
static struct api_intent intents[API_MAX_INTENTS];
static struct api_node_policy nodepol[API_MAX_INTENTS];

static char *pem_of(EVP_PKEY *k, bool priv)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	if (priv ? !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) : !PEM_write_bio_PUBKEY(b, k))
		DIE("PEM write");
	n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];
	EVP_PKEY *k = EVP_RSA_gen(2048);

	if (!k)
		DIE("RSA keygen");
	char *priv = pem_of(k, true), *pub = pem_of(k, false);
	if (api_keys_from_pem(&keys, priv, pub, err, sizeof(err)))
		DIE("keys: %s", err);
	free(priv);
	free(pub);
	EVP_PKEY_free(k);
	return 0;
}

static void check_rules(int rc, int n, int max, const char *err, const char *what)
{
	char e2[512];

	if (rc) {
		if (!err[0])
			DIE("%s: failed without a message", what);
		return;
	}
	if (n < 0 || n > max)
		DIE("%s: n=%d", what, n);
	for (int i = 0; i < n; i++)
		if (rules[i].pid <= 0 && !rules[i].command_regex[0] && !rules[i].cgroup[0] &&
		    !rules[i].pod_uid[0] && !rules[i].container_id[0])
			DIE("%s: rule %d has neither pid nor selector", what, i);
	if (strat_init(&S, rules, n, "/nonexistent", e2, sizeof(e2)))
		DIE("%s: accepted rules refused by strat_init: %s", what, e2);
	strat_free(&S);
}

static void body_mode(int mode, const char *p, size_t len)
{
	char err[1024] = "";
	json_t *j = api_json_parse(p, len, err, sizeof(err));
	int n = -1, rc;
	bool rep;

	if (!j) {
		if (!err[0])
			DIE("api_json_parse failed without a message");
		return;
	}
	err[0] = '\0';
	switch (mode) {
	case 0:
		rc = api_parse_strategies(j, rules, CFG_MAX_STRATEGIES, &n, &rep, err, sizeof(err));
		check_rules(rc, n, CFG_MAX_STRATEGIES, err, "strategies");
		for (int i = 0; !rc && i < n; i++)
			json_decref(api_strategy_json(&rules[i]));
		break;
	case 1: {
		const char *pem, *cid;
		char why[512] = "";
		if (api_parse_token_req(j, &pem, &cid, err, sizeof(err))) {
			if (!err[0])
				DIE("token request: no message");
		} else if (!api_key_matches(&keys, pem, strlen(pem), why, sizeof(why)) && !why[0]) {
			DIE("key mismatch without a message");
		}
		break;
	}
	case 2: {
		char root[65];
		rc = api_parse_intents(j, intents, API_MAX_INTENTS, &n, err, sizeof(err));
		if (rc && !err[0])
			DIE("intents: no message");
		if (!rc) {
			if (n < 0 || n > API_MAX_INTENTS)
				DIE("intents: n=%d", n);
			api_intents_root(intents, n, root);
			if (strlen(root) != 64)
				DIE("intents root '%s'", root);
			for (int i = 0; i < n; i++)
				json_decref(intents[i].labels_obj);
		}
		break;
	}
	case 3: {
		char root[65];
		rc = api_parse_node_policies(j, nodepol, API_MAX_INTENTS, &n, err, sizeof(err));
		if (rc && !err[0])
			DIE("node intents: no message");
		if (!rc) {
			api_nodepol_root(nodepol, n, root);
			if (strlen(root) != 64)
				DIE("node root '%s'", root);
		}
		break;
	}
	case 4: {
		uint64_t v[11];
		if (api_parse_metrics(j, v, err, sizeof(err)) && !err[0])
			DIE("metrics: no message");
		break;
	}
	default:
		rc = api_parse_remote_strategies(j, rules, CFG_MAX_STRATEGIES, &n, err, sizeof(err));
		check_rules(rc, n, CFG_MAX_STRATEGIES, err, "remote strategies");
		break;
	}
	json_decref(j);
}

static void verify(const char *tok, bool must_fail)
{
	char cid[64], why[512] = "";
	int rc = api_token_verify(&keys, tok, time(NULL), cid, sizeof(cid), why, sizeof(why));

	if (rc && !why[0])
		DIE("verify failed without saying why");
	if (!rc && must_fail)
		DIE("verified a token that must fail: %s", tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int mode = data[0] & 7;
	const char *p = (const char *)data + 1;
	size_t len = size - 1;

	if (mode <= 5) {
		body_mode(mode, p, len);
		return 0;
	}
	if (mode == 6) {
		char *tok = strndup(p, len);
		verify(tok, false);
		free(tok);
		return 0;
	}
	char *tok = NULL, err[256];
	time_t exp;
	if (api_token_issue(&keys, "fuzz", 600, time(NULL), &tok, &exp, err, sizeof(err)))
		DIE("issue: %s", err);
	size_t tl = strlen(tok);
	if (len == 0) {
		char cid[64], why[512];
		if (api_token_verify(&keys, tok, time(NULL), cid, sizeof(cid), why, sizeof(why)) ||
		    strcmp(cid, "fuzz"))
			DIE("a fresh token does not verify: %s", why);
	}
	for (size_t i = 0; i + 1 < len; i += 2)
		tok[(size_t)(uint8_t)p[i] * 7 % tl] = p[i + 1] ? (char)p[i + 1] : 'A';
	verify(tok, false);
	/* the same claims and signature under alg none / HS256 must never pass */
	const char *dot = strchr(tok, '.');
	if (dot) {
		static const char *const hdr[] = { "eyJhbGciOiJub25lIn0", "eyJhbGciOiJIUzI1NiJ9" };
		for (int h = 0; h < 2; h++) {
			size_t rest = strlen(dot);
			char *t2 = malloc(strlen(hdr[h]) + rest + 1);
			memcpy(t2, hdr[h], strlen(hdr[h]));
			memcpy(t2 + strlen(hdr[h]), dot, rest + 1);
			verify(t2, true);
			free(t2);
		}
	}
	free(tok);
	return 0;
}
