/*
 * The outcomes of live tests (test_result, check): one small JSON object
 * per tenant and integration in the "tests" table, nothing secret in it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_priv.h"

/* The tests key of tenant and integration into key; returns its length. */
static size_t
store_tkey(const char *tenant, size_t tlen, const char *integration,
    size_t ilen, unsigned char key[STORE_TKEY_MAX])
{
	memcpy(key, tenant, tlen);
	key[tlen] = '\0';
	memcpy(key + tlen + 1, integration, ilen);
	return tlen + 1 + ilen;
}

/* 1 if key is a tests key of tenant (its integration's length in *ilen). */
static int
store_tkey_match(const MDB_val *key, const char *tenant, size_t tlen,
    size_t *ilen)
{
	const unsigned char	*k = key->mv_data;

	if (key->mv_size <= tlen + 1 || memcmp(k, tenant, tlen) != 0 ||
	    k[tlen] != '\0')
		return 0;
	*ilen = key->mv_size - tlen - 1;
	return 1;
}

/* 0 when outcome has the shape test_result stores, else -1. */
static int
store_outcome_valid(json_t *o)
{
	json_t		*v;
	const char	*s;

	if (!json_is_object(o) || json_object_size(o) != 6)
		return -1;
	if (!json_is_integer(v = json_object_get(o, "at")) ||
	    json_integer_value(v) < 0)
		return -1;
	if ((s = json_string_value(json_object_get(o, "result"))) == NULL ||
	    (strcmp(s, "pass") != 0 && strcmp(s, "fail") != 0))
		return -1;
	v = json_object_get(o, "status");
	if (v == NULL || (!json_is_null(v) && (!json_is_integer(v) ||
	    json_integer_value(v) < 100 || json_integer_value(v) > 599)))
		return -1;
	if (!json_is_string(v = json_object_get(o, "reason")) ||
	    json_string_length(v) > RPC_REASON_MAX)
		return -1;
	if (!json_is_integer(v = json_object_get(o, "version")) ||
	    json_integer_value(v) < 1)
		return -1;
	if (!json_is_integer(v = json_object_get(o, "uid")) ||
	    json_integer_value(v) < 0)
		return -1;
	return 0;
}

int
store_test_put(struct store *store, MDB_txn *txn, const char *tenant,
    const char *integration, json_t *outcome)
{
	struct store_rec	 rec;
	unsigned char		 kbuf[STORE_TKEY_MAX];
	MDB_val			 key, val;
	size_t			 tlen, ilen;
	char			*text;
	int			 rc;

	if ((rc = store_rec_live(store, txn, tenant, &tlen, &rec)) !=
	    STORE_OK)
		return rc;
	ilen = strlen(integration);
	if (!store->s_has_tests || ilen == 0 || ilen > PROTO_FIELD_MAX ||
	    store_outcome_valid(outcome) == -1)
		return STORE_E_IO;
	if ((text = json_dumps(outcome, JSON_COMPACT | JSON_SORT_KEYS)) ==
	    NULL)
		return STORE_E_NOMEM;
	key.mv_size = store_tkey(tenant, tlen, integration, ilen, kbuf);
	key.mv_data = kbuf;
	val.mv_data = text;
	val.mv_size = strlen(text);
	rc = store_mdb_code(mdb_put(txn, store->s_tests, &key, &val, 0),
	    "put test");
	free(text);
	return rc;
}

/* A walk over one tenant's outcomes: gather them, or delete them. */
struct store_tests_ctx {
	const char	*tc_tenant;
	size_t		 tc_tlen;
	json_t		*tc_out;	/* get: integration -> outcome */
};

static int
store_tests_one(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_tests_ctx	*tc = arg;
	char			 id[PROTO_FIELD_MAX + 1];
	size_t			 ilen;
	json_t			*o;

	if (!store_tkey_match(key, tc->tc_tenant, tc->tc_tlen, &ilen))
		return STORE_WALK_STOP;
	if (ilen > PROTO_FIELD_MAX)
		return STORE_E_INTEGRITY;
	memcpy(id, (const char *)key->mv_data + tc->tc_tlen + 1, ilen);
	id[ilen] = '\0';
	if (strlen(id) != ilen)
		return STORE_E_INTEGRITY;
	o = json_loadb(val->mv_data, val->mv_size, JSON_REJECT_DUPLICATES,
	    NULL);
	if (store_outcome_valid(o) == -1) {
		json_decref(o);
		return STORE_E_INTEGRITY;
	}
	if (json_object_set_new(tc->tc_out, id, o) == -1)
		return STORE_E_NOMEM;
	return STORE_WALK_NEXT;
}

static int
store_tests_del(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_tests_ctx	*tc = arg;
	size_t			 ilen;
	int			 mrc;

	if (!store_tkey_match(key, tc->tc_tenant, tc->tc_tlen, &ilen))
		return STORE_WALK_STOP;
	if ((mrc = mdb_cursor_del(cur, 0)) != 0)
		return store_mdb_code(mrc, "delete test");
	/* The next one is the first left at or after the tenant's start. */
	return STORE_WALK_AGAIN;
}

/* Walks the tenant's entries with cb; tc's tenant is filled in. */
static int
store_tests_walk(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, int (*cb)(void *, MDB_cursor *, const MDB_val *,
    const MDB_val *), struct store_tests_ctx *tc)
{
	unsigned char	 kbuf[STORE_TKEY_MAX];
	MDB_val		 start;
	int		 rc;

	if (!store->s_has_tests)
		return STORE_OK;
	tc->tc_tenant = tenant;
	tc->tc_tlen = tlen;
	/* tenant NUL sorts before every key of tenant NUL integration. */
	start.mv_size = store_tkey(tenant, tlen, "", 0, kbuf);
	start.mv_data = kbuf;
	rc = store_walk(store, txn, store->s_tests, &start, cb, tc);
	return rc == STORE_WALK_STOP ? STORE_OK : rc;
}

int
store_tests_get(struct store *store, MDB_txn *txn, const char *tenant,
    json_t **out)
{
	struct store_tests_ctx	 tc;
	size_t			 tlen;
	int			 rc;

	*out = NULL;
	if (record_name_len(tenant, &tlen) == -1)
		return STORE_E_NOT_FOUND;
	memset(&tc, 0, sizeof(tc));
	if ((tc.tc_out = json_object()) == NULL)
		return STORE_E_NOMEM;
	if ((rc = store_tests_walk(store, txn, tenant, tlen, store_tests_one,
	    &tc)) != STORE_OK) {
		json_decref(tc.tc_out);
		return rc;
	}
	*out = tc.tc_out;
	return STORE_OK;
}

int
store_tests_forget(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen)
{
	struct store_tests_ctx	 tc;

	memset(&tc, 0, sizeof(tc));
	return store_tests_walk(store, txn, tenant, tlen, store_tests_del,
	    &tc);
}

int
store_test_entry_valid(const MDB_val *key, const MDB_val *val)
{
	const char	*k = key->mv_data, *nul;
	char		 tenant[PROTO_TENANT_MAX + 1], err[128];
	size_t		 tlen, ilen;
	json_t		*o;
	int		 rv;

	if (key->mv_size > STORE_TKEY_MAX ||
	    (nul = memchr(k, '\0', key->mv_size)) == NULL)
		return -1;
	tlen = nul - k;
	ilen = key->mv_size - tlen - 1;
	if (tlen == 0 || tlen > PROTO_TENANT_MAX || ilen == 0 ||
	    ilen > PROTO_FIELD_MAX || memchr(nul + 1, '\0', ilen) != NULL)
		return -1;
	memcpy(tenant, k, tlen);
	tenant[tlen] = '\0';
	if (proto_tenant_valid(tenant, err, sizeof(err)) == -1)
		return -1;
	o = json_loadb(val->mv_data, val->mv_size, JSON_REJECT_DUPLICATES,
	    NULL);
	rv = store_outcome_valid(o);
	json_decref(o);
	return rv;
}
