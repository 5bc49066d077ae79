/*
 * Sealed values: a tenant's config encrypted (AES-256-GCM) with a key only
 * the Worker holds, bound to the tenant id and version, so KV holds
 * ciphertext.  edge/wfvault-config.js opens what this file seals.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "proto.h"
#include "sync.h"

#define SEAL_AD_PREFIX		"wfvault-sealed-v1\n"
#define SEAL_KID_CONTEXT	"wfvault-seal-key-id"

int
seal_init(char *err, size_t errlen)
{
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return -1;
	}
	/* libsodium's AES-GCM needs the CPU's AES-NI and CLMUL. */
	if (crypto_aead_aes256gcm_is_available() == 0) {
		snprintf(err, errlen, "sealed values need AES-256-GCM, which "
		    "libsodium offers only on CPUs with AES-NI and CLMUL; this "
		    "CPU has neither: remove seal_key_file or run "
		    "wfvault-sync on another host");
		return -1;
	}
	return 0;
}

void
seal_key_id(const unsigned char *key, char kid[SEAL_KID_LEN + 1])
{
	crypto_hash_sha256_state	st;
	unsigned char			h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)SEAL_KID_CONTEXT,
	    strlen(SEAL_KID_CONTEXT));
	crypto_hash_sha256_update(&st, key, SYNC_SEAL_KEY_LEN);
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(kid, SEAL_KID_LEN + 1, h, SEAL_KID_LEN / 2);
	sodium_memzero(&st, sizeof(st));
}

/* AD = "wfvault-sealed-v1\n" TENANT "\n" VERSION: a new string or NULL. */
static char *
seal_ad(const char *tenant, uint64_t version, size_t *len)
{
	char	*ad;
	int	 n;

	if ((n = asprintf(&ad, SEAL_AD_PREFIX "%s\n%llu", tenant,
	    (unsigned long long)version)) == -1)
		return NULL;
	*len = (size_t)n;
	return ad;
}

/* Base64 (with padding) of b[len] as a new JSON string, or NULL. */
static json_t *
seal_b64(const unsigned char *b, size_t len)
{
	json_t	*s;
	char	*txt;
	size_t	 tlen;

	tlen = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	if ((txt = malloc(tlen)) == NULL)
		return NULL;
	sodium_bin2base64(txt, tlen, b, len, sodium_base64_VARIANT_ORIGINAL);
	s = json_string(txt);
	free(txt);
	return s;
}

json_t *
seal_config_nonce(const unsigned char *key, const char *tenant,
    uint64_t version, json_t *config, const unsigned char *nonce)
{
	json_t			*env = NULL;
	unsigned char		*ct = NULL;
	unsigned long long	 ctlen;
	char			*plain = NULL, *ad = NULL;
	char			 kid[SEAL_KID_LEN + 1];
	size_t			 plen, adlen;

	if (!json_is_object(config) || version > INT64_MAX)
		return NULL;
	/* Exactly the bytes an unsealed value holds. */
	if ((plain = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS)) ==
	    NULL)
		return NULL;
	plen = strlen(plain);
	if ((ad = seal_ad(tenant, version, &adlen)) == NULL)
		goto done;
	if ((ct = malloc(plen + crypto_aead_aes256gcm_ABYTES)) == NULL)
		goto done;
	if (crypto_aead_aes256gcm_encrypt(ct, &ctlen,
	    (const unsigned char *)plain, plen, (const unsigned char *)ad,
	    adlen, NULL, nonce, key) != 0)
		goto done;
	seal_key_id(key, kid);
	env = json_pack("{s:i,s:s,s:I,s:o,s:o}", "wfvault_sealed", 1,
	    "kid", kid, "v", (json_int_t)version,
	    "nonce", seal_b64(nonce, SEAL_NONCE_LEN),
	    "ct", seal_b64(ct, (size_t)ctlen));
done:
	proto_wipe_free(plain);
	free(ad);
	free(ct);
	return env;
}

json_t *
seal_config(const unsigned char *key, const char *tenant, uint64_t version,
    json_t *config)
{
	unsigned char	nonce[SEAL_NONCE_LEN];

	/* Random 96-bit nonces: far below 2^32 seals per key in practice. */
	randombytes_buf(nonce, sizeof(nonce));
	return seal_config_nonce(key, tenant, version, config, nonce);
}

/* Decodes the base64 string member name of env into a new buffer. */
static unsigned char *
seal_unb64(json_t *env, const char *name, size_t *len)
{
	const char	*s;
	unsigned char	*b;
	size_t		 slen;

	if ((s = json_string_value(json_object_get(env, name))) == NULL)
		return NULL;
	slen = strlen(s);
	if ((b = malloc(slen / 4 * 3 + 3)) == NULL)
		return NULL;
	if (sodium_base642bin(b, slen / 4 * 3 + 3, s, slen, NULL, len, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(b);
		return NULL;
	}
	return b;
}

int
seal_open(const unsigned char *key, const char *tenant, uint64_t version,
    json_t *env, char **plain)
{
	unsigned char		*nonce = NULL, *ct = NULL, *pt = NULL;
	unsigned long long	 ptlen;
	char			*ad = NULL;
	char			 kid[SEAL_KID_LEN + 1];
	size_t			 nlen, ctlen, adlen;
	int			 rc = -1;

	*plain = NULL;
	seal_key_id(key, kid);
	if (json_integer_value(json_object_get(env, "wfvault_sealed")) != 1 ||
	    !json_is_string(json_object_get(env, "kid")) ||
	    strcmp(json_string_value(json_object_get(env, "kid")), kid) != 0)
		return -1;
	if ((nonce = seal_unb64(env, "nonce", &nlen)) == NULL ||
	    nlen != SEAL_NONCE_LEN ||
	    (ct = seal_unb64(env, "ct", &ctlen)) == NULL ||
	    ctlen < crypto_aead_aes256gcm_ABYTES ||
	    (ad = seal_ad(tenant, version, &adlen)) == NULL ||
	    (pt = malloc(ctlen - crypto_aead_aes256gcm_ABYTES + 1)) == NULL)
		goto done;
	if (crypto_aead_aes256gcm_decrypt(pt, &ptlen, NULL, ct, ctlen,
	    (const unsigned char *)ad, adlen, nonce, key) != 0)
		goto done;
	pt[ptlen] = '\0';
	*plain = (char *)pt;
	pt = NULL;
	rc = 0;
done:
	free(nonce);
	free(ct);
	free(ad);
	free(pt);
	return rc;
}

int
seal_key_generate(const char *path, char kid[SEAL_KID_LEN + 1], char *err,
    size_t errlen)
{
	unsigned char	*key;
	char		 b64[sodium_base64_ENCODED_LEN(SYNC_SEAL_KEY_LEN,
			    sodium_base64_VARIANT_ORIGINAL) + 1];
	size_t		 len, off = 0;
	ssize_t		 n;
	int		 fd, rc = -1;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return -1;
	}
	if ((key = sodium_malloc(SYNC_SEAL_KEY_LEN)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	randombytes_buf(key, SYNC_SEAL_KEY_LEN);
	sodium_bin2base64(b64, sizeof(b64) - 1, key, SYNC_SEAL_KEY_LEN,
	    sodium_base64_VARIANT_ORIGINAL);
	len = strlen(b64);
	b64[len++] = '\n';
	/* Never over an existing key: that one may still be in use. */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0400)) == -1) {
		snprintf(err, errlen, "cannot create the seal key %s: %s%s",
		    path, strerror(errno), errno == EEXIST ? " (a key is "
		    "never overwritten: choose another file)" : "");
		goto done;
	}
	while (off < len) {
		if ((n = write(fd, b64 + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)n;
	}
	if (off < len || fsync(fd) == -1) {
		snprintf(err, errlen, "cannot write the seal key %s: %s", path,
		    strerror(errno));
		close(fd);
		unlink(path);
		goto done;
	}
	if (close(fd) == -1) {
		snprintf(err, errlen, "cannot write the seal key %s: %s", path,
		    strerror(errno));
		unlink(path);
		goto done;
	}
	seal_key_id(key, kid);
	rc = 0;
done:
	sodium_memzero(b64, sizeof(b64));
	sodium_free(key);	/* wipes it */
	return rc;
}
