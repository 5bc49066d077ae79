/*
 * The byte layout of the store's records (tenant records, versions keys,
 * feed entries, meta numbers): pure encoding and decoding, no LMDB
 * environment and no keys, so it is unit-tested on bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "store_priv.h"

void
record_be64_put(unsigned char *p, uint64_t v)
{
	int	 i;

	for (i = 7; i >= 0; i--) {
		p[i] = (unsigned char)v;
		v >>= 8;
	}
}

uint64_t
record_be64_get(const unsigned char *p)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

int
record_key_name(const MDB_val *key, char name[PROTO_TENANT_MAX + 1])
{
	if (key->mv_size == 0 || key->mv_size > PROTO_TENANT_MAX ||
	    memchr(key->mv_data, '\0', key->mv_size) != NULL)
		return -1;
	memcpy(name, key->mv_data, key->mv_size);
	name[key->mv_size] = '\0';
	return 0;
}

int
record_name_len(const char *name, size_t *len)
{
	if (name == NULL)
		return -1;
	*len = strlen(name);
	if (*len == 0 || *len > PROTO_TENANT_MAX)
		return -1;
	return 0;
}

int
record_tenant_decode(const MDB_val *val, struct store_rec *rec)
{
	const unsigned char	*p = val->mv_data;
	size_t			 off;

	memset(rec, 0, sizeof(*rec));
	if (val->mv_size < STORE_REC_HEAD || p[0] != STORE_REC_FORMAT ||
	    (p[1] & ~(STORE_REC_DELETED | STORE_REC_KEYGEN |
	    STORE_REC_REKEY)) != 0 || (p[1] & STORE_REC_DELETED &&
	    p[1] & STORE_REC_REKEY))
		return STORE_E_INTEGRITY;
	rec->sr_deleted = (p[1] & STORE_REC_DELETED) != 0;
	rec->sr_keygen = (p[1] & STORE_REC_KEYGEN) != 0;
	rec->sr_version = record_be64_get(p + 2);
	rec->sr_created = record_be64_get(p + 10);
	rec->sr_updated = record_be64_get(p + 18);
	off = STORE_REC_HEAD;
	if (!rec->sr_deleted) {
		if (val->mv_size - off < CRYPTO_WRAPPED_BYTES)
			return STORE_E_INTEGRITY;
		rec->sr_wrapped = p + off;
		off += CRYPTO_WRAPPED_BYTES;
		if (p[1] & STORE_REC_REKEY) {
			if (val->mv_size - off < CRYPTO_WRAPPED_BYTES)
				return STORE_E_INTEGRITY;
			rec->sr_pending = p + off;
			off += CRYPTO_WRAPPED_BYTES;
		}
	}
	rec->sr_fields = (const char *)p + off;
	rec->sr_fieldslen = val->mv_size - off;
	/* Every name ends in NUL, so the last byte must be one. */
	if (rec->sr_fieldslen > 0 && rec->sr_fields[rec->sr_fieldslen - 1] !=
	    '\0')
		return STORE_E_INTEGRITY;
	return STORE_OK;
}

int
record_tenant_encode(const struct store_rec *rec,
    const unsigned char *wrapped, const unsigned char *pending,
    const char **names, size_t nnames, MDB_val *out)
{
	unsigned char	*buf, *p;
	size_t		 len, i, n;

	out->mv_data = NULL;
	out->mv_size = 0;
	if (wrapped == NULL)
		pending = NULL;
	len = STORE_REC_HEAD + (wrapped != NULL ? CRYPTO_WRAPPED_BYTES : 0) +
	    (pending != NULL ? CRYPTO_WRAPPED_BYTES : 0);
	for (i = 0; i < nnames; i++)
		len += strlen(names[i]) + 1;
	if ((buf = malloc(len)) == NULL)
		return STORE_E_NOMEM;
	p = buf;
	*p++ = STORE_REC_FORMAT;
	*p++ = rec->sr_deleted ? STORE_REC_DELETED : wrapped != NULL ?
	    (rec->sr_keygen ? STORE_REC_KEYGEN : 0) |
	    (pending != NULL ? STORE_REC_REKEY : 0) : 0;
	record_be64_put(p, rec->sr_version);
	record_be64_put(p + 8, rec->sr_created);
	record_be64_put(p + 16, rec->sr_updated);
	p += 24;
	if (wrapped != NULL) {
		memcpy(p, wrapped, CRYPTO_WRAPPED_BYTES);
		p += CRYPTO_WRAPPED_BYTES;
	}
	if (pending != NULL) {
		memcpy(p, pending, CRYPTO_WRAPPED_BYTES);
		p += CRYPTO_WRAPPED_BYTES;
	}
	for (i = 0; i < nnames; i++) {
		n = strlen(names[i]) + 1;
		memcpy(p, names[i], n);
		p += n;
	}
	out->mv_data = buf;
	out->mv_size = len;
	return STORE_OK;
}

int
record_tenant_rewrite(const MDB_val *val, const struct store_rec *rec,
    unsigned keygen, const unsigned char *wrapped,
    const unsigned char *pending, MDB_val *out)
{
	unsigned char	*buf, *p;
	size_t		 len;

	out->mv_data = NULL;
	out->mv_size = 0;
	len = STORE_REC_HEAD + CRYPTO_WRAPPED_BYTES + (pending != NULL ?
	    CRYPTO_WRAPPED_BYTES : 0) + rec->sr_fieldslen;
	if ((buf = malloc(len)) == NULL)
		return STORE_E_NOMEM;
	memcpy(buf, val->mv_data, STORE_REC_HEAD);
	buf[1] = (buf[1] & ~(STORE_REC_KEYGEN | STORE_REC_REKEY)) |
	    (keygen & STORE_REC_KEYGEN) | (pending != NULL ? STORE_REC_REKEY :
	    0);
	p = buf + STORE_REC_HEAD;
	memcpy(p, wrapped, CRYPTO_WRAPPED_BYTES);
	p += CRYPTO_WRAPPED_BYTES;
	if (pending != NULL) {
		memcpy(p, pending, CRYPTO_WRAPPED_BYTES);
		p += CRYPTO_WRAPPED_BYTES;
	}
	if (rec->sr_fieldslen > 0)
		memcpy(p, rec->sr_fields, rec->sr_fieldslen);
	out->mv_data = buf;
	out->mv_size = len;
	return STORE_OK;
}

json_t *
record_fields_json(const struct store_rec *rec)
{
	json_t	*a;
	size_t	 off, n;

	if ((a = json_array()) == NULL)
		return NULL;
	for (off = 0; off < rec->sr_fieldslen; off += n + 1) {
		n = strlen(rec->sr_fields + off);
		if (json_array_append_new(a, json_stringn(rec->sr_fields + off,
		    n)) == -1) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int
record_keys_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
record_config_keys(json_t *config, const char ***keysp, size_t *np)
{
	const char	**keys;
	const char	 *k;
	json_t		 *v;
	size_t		  n = 0;

	*keysp = NULL;
	*np = 0;
	if (json_object_size(config) == 0)
		return STORE_OK;
	keys = calloc(json_object_size(config), sizeof(*keys));
	if (keys == NULL)
		return STORE_E_NOMEM;
	/* Members that are not field names (STORE_INTEGRATIONS) are not listed. */
	json_object_foreach(config, k, v)
		if (k[0] != '@')
			keys[n++] = k;
	if (n == 0) {
		free(keys);
		return STORE_OK;
	}
	qsort(keys, n, sizeof(*keys), record_keys_cmp);
	*keysp = keys;
	*np = n;
	return STORE_OK;
}

int
record_fields_match(const struct store_rec *rec, json_t *config)
{
	const char	**keys = NULL;
	size_t		  nkeys, i, off = 0, n;
	int		  ok = 0;

	if (record_config_keys(config, &keys, &nkeys) != STORE_OK)
		return 0;
	for (i = 0; i < nkeys; i++) {
		if (off >= rec->sr_fieldslen)
			goto done;
		n = strlen(rec->sr_fields + off);
		if (strcmp(rec->sr_fields + off, keys[i]) != 0)
			goto done;
		off += n + 1;
	}
	ok = off == rec->sr_fieldslen;
done:
	free(keys);
	return ok;
}

size_t
record_vkey(const char *tenant, size_t tlen, uint64_t version,
    unsigned char key[STORE_VKEY_MAX])
{
	memcpy(key, tenant, tlen);
	key[tlen] = '\0';
	record_be64_put(key + tlen + 1, version);
	return tlen + 1 + 8;
}

int
record_vkey_decode(const MDB_val *key, size_t *tlen, uint64_t *version)
{
	const char	*nul;

	nul = memchr(key->mv_data, '\0', key->mv_size);
	*tlen = nul == NULL ? 0 : (size_t)(nul - (char *)key->mv_data);
	if (*tlen == 0 || *tlen > PROTO_TENANT_MAX ||
	    key->mv_size != *tlen + 1 + 8)
		return -1;
	*version = record_be64_get((unsigned char *)key->mv_data + *tlen + 1);
	return 0;
}

int
record_vkey_match(const MDB_val *key, const char *tenant, size_t tlen,
    uint64_t *version)
{
	if (key->mv_size != tlen + 1 + 8 ||
	    memcmp(key->mv_data, tenant, tlen) != 0 ||
	    ((unsigned char *)key->mv_data)[tlen] != '\0')
		return 0;
	*version = record_be64_get((unsigned char *)key->mv_data + tlen + 1);
	return 1;
}

size_t
record_change_encode(unsigned char buf[STORE_CHANGE_MAX], int op,
    uint64_t version, const char *tenant, size_t tlen)
{
	buf[0] = (unsigned char)op;
	record_be64_put(buf + 1, version);
	memcpy(buf + STORE_CHANGE_HEAD, tenant, tlen);
	return STORE_CHANGE_HEAD + tlen;
}

int
record_change_decode(const MDB_val *key, const MDB_val *val, uint64_t *seq,
    int *op, uint64_t *version, const char **tenant, size_t *tlen)
{
	const unsigned char	*p = val->mv_data;

	if (key->mv_size != 8 || val->mv_size <= STORE_CHANGE_HEAD ||
	    val->mv_size > STORE_CHANGE_MAX)
		return -1;
	*seq = record_be64_get(key->mv_data);
	*op = p[0];
	*version = record_be64_get(p + 1);
	*tenant = (const char *)p + STORE_CHANGE_HEAD;
	*tlen = val->mv_size - STORE_CHANGE_HEAD;
	return 0;
}

void
record_format_put(unsigned char buf[4], uint32_t format)
{
	buf[0] = (unsigned char)(format >> 24);
	buf[1] = (unsigned char)(format >> 16);
	buf[2] = (unsigned char)(format >> 8);
	buf[3] = (unsigned char)format;
}

int
record_format_get(const MDB_val *val, uint32_t *format)
{
	const unsigned char	*p = val->mv_data;

	if (val->mv_size != 4)
		return -1;
	*format = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	return 0;
}
