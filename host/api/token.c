/* SPDX-License-Identifier: GPL-2.0 */
/* token.c - the API's key pair and RS256 tokens; see token.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common.h"
#include "token.h"

static char *read_all(const char *path, size_t *len, char *err, size_t errlen, const char *key)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f) {
		set_err(err, errlen, "%s: %s: %s", key, path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (n + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
			if (!nb || cap > (1u << 20)) {
				free(nb ? nb : buf);
				fclose(f);
				set_err(err, errlen, "%s: %s: too large for a PEM key", key, path);
				return NULL;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (!r)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static EVP_PKEY *parse_pub(const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}

static EVP_PKEY *parse_priv(const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}

static char *pub_pem_of(EVP_PKEY *k, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (b && PEM_write_bio_PUBKEY(b, k) == 1 && (n = BIO_get_mem_data(b, &data)) > 0 &&
	    (out = malloc((size_t)n + 1))) {
		memcpy(out, data, (size_t)n);
		out[n] = '\0';
		*len = (size_t)n;
	}
	BIO_free(b);
	return out;
}

void api_keys_free(struct api_keys *k)
{
	if (!k)
		return;
	free(k->priv_pem);
	free(k->pub_pem);
	EVP_PKEY_free((EVP_PKEY *)k->pub);
	memset(k, 0, sizeof(*k));
}

static int keys_setup(struct api_keys *k, char *err, size_t errlen)
{
	EVP_PKEY *priv = NULL;

	if (k->priv_pem) {
		priv = parse_priv(k->priv_pem, k->priv_len);
		if (!priv || EVP_PKEY_base_id(priv) != EVP_PKEY_RSA) {
			set_err(err, errlen, "api.private_key: not an RSA private key in PEM");
			goto fail;
		}
	}
	if (k->pub_pem) {
		k->pub = (struct evp_pkey_st *)parse_pub(k->pub_pem, k->pub_len);
		if (!k->pub || EVP_PKEY_base_id((EVP_PKEY *)k->pub) != EVP_PKEY_RSA) {
			set_err(err, errlen, "api.public_key: not an RSA public key in PEM "
				"(PKIX \"BEGIN PUBLIC KEY\")");
			goto fail;
		}
		if (priv && EVP_PKEY_eq(priv, (EVP_PKEY *)k->pub) != 1) {
			set_err(err, errlen, "api.public_key is not the public half of "
				"api.private_key");
			goto fail;
		}
	} else if (priv) {
		k->pub_pem = pub_pem_of(priv, &k->pub_len);
		k->pub = k->pub_pem ? (struct evp_pkey_st *)parse_pub(k->pub_pem, k->pub_len) : NULL;
		if (!k->pub) {
			set_err(err, errlen, "api.private_key: cannot derive its public key");
			goto fail;
		}
	}
	EVP_PKEY_free(priv);
	return G_OK;
fail:
	EVP_PKEY_free(priv);
	api_keys_free(k);
	return G_ERR;
}

int api_keys_load(struct api_keys *k, const char *priv_path, const char *pub_path,
		  char *err, size_t errlen)
{
	memset(k, 0, sizeof(*k));
	if (priv_path && *priv_path &&
	    !(k->priv_pem = read_all(priv_path, &k->priv_len, err, errlen, "api.private_key")))
		return G_ERR;
	if (pub_path && *pub_path &&
	    !(k->pub_pem = read_all(pub_path, &k->pub_len, err, errlen, "api.public_key"))) {
		api_keys_free(k);
		return G_ERR;
	}
	return keys_setup(k, err, errlen);
}

int api_keys_from_pem(struct api_keys *k, const char *priv_pem, const char *pub_pem,
		      char *err, size_t errlen)
{
	memset(k, 0, sizeof(*k));
	if (priv_pem) {
		k->priv_pem = strdup(priv_pem);
		k->priv_len = strlen(priv_pem);
	}
	if (pub_pem) {
		k->pub_pem = strdup(pub_pem);
		k->pub_len = strlen(pub_pem);
	}
	return keys_setup(k, err, errlen);
}

bool api_key_matches(const struct api_keys *k, const char *pem, size_t len, char *why,
		     size_t whylen)
{
	EVP_PKEY *p;
	bool ok;

	if (!k->pub) {
		set_err(why, whylen, "the server has no key pair (api.private_key)");
		return false;
	}
	if (!pem || !len || len > 65536) {
		set_err(why, whylen, "public_key: missing or not a PEM");
		return false;
	}
	p = parse_pub(pem, len);
	if (!p) {
		set_err(why, whylen, "public_key: not a PKIX public key PEM (\"BEGIN PUBLIC KEY\")");
		return false;
	}
	ok = EVP_PKEY_eq(p, (EVP_PKEY *)k->pub) == 1;
	EVP_PKEY_free(p);
	if (!ok)
		set_err(why, whylen, "public_key: does not match the server's key pair");
	return ok;
}

int api_token_issue(const struct api_keys *k, const char *client_id, unsigned ttl_s,
		    time_t now, char **out, time_t *exp, char *err, size_t errlen)
{
	jwt_t *j = NULL;
	int rc = G_ERR;

	*out = NULL;
	if (!k->priv_pem) {
		set_err(err, errlen, "no api.private_key: this server cannot issue tokens");
		return G_ERR;
	}
	if (jwt_new(&j))
		goto out;
	if (jwt_add_grant(j, "client_id", client_id) || jwt_add_grant(j, "iss", API_TOKEN_ISSUER) ||
	    jwt_add_grant(j, "sub", client_id) || jwt_add_grant_int(j, "iat", (long)now) ||
	    jwt_add_grant_int(j, "nbf", (long)now) ||
	    jwt_add_grant_int(j, "exp", (long)now + (long)ttl_s))
		goto out;
	if (jwt_set_alg(j, JWT_ALG_RS256, (const unsigned char *)k->priv_pem, (int)k->priv_len))
		goto out;
	*out = jwt_encode_str(j);
	if (*out) {
		*exp = now + (time_t)ttl_s;
		rc = G_OK;
	}
out:
	if (rc)
		set_err(err, errlen, "cannot sign a token with api.private_key");
	jwt_free(j);
	return rc;
}

/* base64url without padding -> bytes (NUL-terminated). */
static char *b64url_decode(const char *s, size_t n, size_t *outlen)
{
	static const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n * 3 / 4 + 4);
	unsigned acc = 0;
	int bits = 0;
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *p = s[i] ? strchr(tab, s[i]) : NULL;
		if (!p) {
			if (s[i] == '=' && i >= n - 2)
				break;
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)(p - tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

static bool json_int_of(json_t *o, const char *k, long long *v)
{
	json_t *x = json_object_get(o, k);

	if (json_is_integer(x)) {
		*v = json_integer_value(x);
		return true;
	}
	if (json_is_real(x)) {
		*v = (long long)json_real_value(x);
		return true;
	}
	return false;
}

int api_token_verify(const struct api_keys *k, const char *tok, time_t now,
		     char *client_id, size_t idlen, char *why, size_t whylen)
{
	const char *d1, *d2;
	char *hdr = NULL, *claims = NULL;
	json_t *h = NULL, *c = NULL;
	jwt_t *j = NULL;
	size_t hl;
	long long exp, nbf, iat;
	int rc = G_ERR;

	if (idlen)
		client_id[0] = '\0';
	if (!k->pub_pem) {
		set_err(why, whylen, "the server has no key to verify tokens");
		return G_ERR;
	}
	if (!tok || !(d1 = strchr(tok, '.')) || !(d2 = strchr(d1 + 1, '.')) || strchr(d2 + 1, '.') ||
	    d2 == d1 + 1 || strlen(tok) > 16384) {
		set_err(why, whylen, "malformed token (expected header.payload.signature)");
		return G_ERR;
	}
	hdr = b64url_decode(tok, (size_t)(d1 - tok), &hl);
	h = hdr ? json_loadb(hdr, hl, JSON_REJECT_DUPLICATES, NULL) : NULL;
	json_t *alg = json_object_get(h, "alg");
	if (!json_is_object(h) || !json_is_string(alg)) {
		set_err(why, whylen, "malformed token header");
		goto out;
	}
	if (strcmp(json_string_value(alg), "RS256")) {
		set_err(why, whylen, "token algorithm '%.32s' refused (only RS256)",
			json_string_value(alg));
		goto out;
	}
	if (jwt_decode(&j, tok, (const unsigned char *)k->pub_pem, (int)k->pub_len) || !j ||
	    jwt_get_alg(j) != JWT_ALG_RS256) {
		set_err(why, whylen, "token signature does not verify");
		goto out;
	}
	claims = jwt_get_grants_json(j, NULL);
	c = claims ? json_loads(claims, 0, NULL) : NULL;
	if (!json_is_object(c)) {
		set_err(why, whylen, "malformed token claims");
		goto out;
	}
	if (!json_int_of(c, "exp", &exp)) {
		set_err(why, whylen, "token has no exp claim");
		goto out;
	}
	if ((long long)now >= exp) {
		set_err(why, whylen, "token expired");
		goto out;
	}
	if (json_int_of(c, "nbf", &nbf) && (long long)now < nbf) {
		set_err(why, whylen, "token not valid yet (nbf)");
		goto out;
	}
	if (json_int_of(c, "iat", &iat) && (long long)now + 60 < iat) {
		set_err(why, whylen, "token issued in the future (iat)");
		goto out;
	}
	json_t *cid = json_object_get(c, "client_id");
	if (json_is_string(cid) && idlen)
		snprintf(client_id, idlen, "%s", json_string_value(cid));
	rc = G_OK;
out:
	json_decref(h);
	json_decref(c);
	free(hdr);
	free(claims);
	jwt_free(j);
	return rc;
}
