/* SPDX-License-Identifier: GPL-2.0 */
/*
 * token.h - the API's RSA key pair and its RS256 tokens (libjwt 1.10 API, OpenSSL for
 * the key comparison).
 *
 * Tokens are what Gthulhu's decision maker issues: RS256, claims client_id, iss, sub,
 * iat, nbf, exp. Verification accepts RS256 only: the header is checked before libjwt
 * sees the token, because libjwt 1.10 would verify an "HS256" token with the public key
 * PEM as the HMAC secret (the classic algorithm confusion) and would take "none". exp
 * is required, nbf and iat are honoured (libjwt 1.10 checks neither).
 *
 * Ownership: struct api_keys owns its PEM copies and the parsed public key;
 * api_keys_free() releases them (NULL-safe, idempotent).
 */
#ifndef GTHULHU_API_TOKEN_H
#define GTHULHU_API_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct evp_pkey_st;

struct api_keys {
	char *priv_pem;            /* NULL: cannot issue tokens */
	size_t priv_len;
	char *pub_pem;             /* PKIX "PUBLIC KEY" PEM that verifies; NULL: none */
	size_t pub_len;
	struct evp_pkey_st *pub;   /* parsed pub_pem */
};

#define API_TOKEN_ISSUER "gthulhu-lua"

/* Load the private key (may be "" = none) and the public key (may be "": derived from the
 * private key). Both given: they must be one pair. Messages name the config key. */
int api_keys_load(struct api_keys *k, const char *priv_path, const char *pub_path,
		  char *err, size_t errlen);
/* From PEM text (tests, fuzzing). */
int api_keys_from_pem(struct api_keys *k, const char *priv_pem, const char *pub_pem,
		      char *err, size_t errlen);
void api_keys_free(struct api_keys *k);

/* Is `pem` (PKIX public key PEM) the public half of our pair? */
bool api_key_matches(const struct api_keys *k, const char *pem, size_t len, char *why,
		     size_t whylen);

/* A new token for client_id valid from now for ttl_s seconds. *out is malloc'd. */
int api_token_issue(const struct api_keys *k, const char *client_id, unsigned ttl_s,
		    time_t now, char **out, time_t *exp, char *err, size_t errlen);

/* G_OK if tok is an RS256 token signed by our key, not expired, already valid. The
 * client_id claim is copied out (may be ""). why says what is wrong otherwise. */
int api_token_verify(const struct api_keys *k, const char *tok, time_t now,
		     char *client_id, size_t idlen, char *why, size_t whylen);

#endif
