/*
 * Unit tests of daemon/store.c against real LMDB environments in
 * temporary directories, including tampering with the raw records.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "support.h"
#include "wfvaultd.h"

static void
ts_reopen(struct test_store *ts)
{
	char	 err[512];

	if (test_store_reopen(ts, NULL, err, sizeof(err)) != STORE_OK)
		fail_msg("store_open: %s", err);
}

/* Stores the JSON text as tenant's next version in its own transaction. */
static int
ts_put(struct test_store *ts, const char *tenant, const char *text,
    uint64_t *version)
{
	json_error_t	 jerr;
	json_t		*config;
	MDB_txn		*txn;
	uint64_t	 v = 0, seq = 0;
	int		 rc;

	config = json_loads(text, 0, &jerr);
	assert_non_null(config);
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &txn),
	    STORE_OK);
	rc = store_config_put(ts->ts_store, txn, tenant, config, &v, &seq);
	json_decref(config);
	if (rc != STORE_OK) {
		store_txn_abort(txn);
		return rc;
	}
	if ((rc = store_txn_commit(txn)) != STORE_OK)
		return rc;
	assert_true(v > 0);
	assert_true(seq > 0);
	if (version != NULL)
		*version = v;
	return STORE_OK;
}

static int
ts_delete(struct test_store *ts, const char *tenant, uint64_t *version)
{
	MDB_txn		*txn;
	uint64_t	 seq = 0;
	int		 rc;

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &txn),
	    STORE_OK);
	rc = store_tenant_delete(ts->ts_store, txn, tenant, version, &seq);
	if (rc != STORE_OK) {
		store_txn_abort(txn);
		return rc;
	}
	return store_txn_commit(txn);
}

/* support.c's reader, under the name this file's other helpers have. */
static int
ts_get(struct test_store *ts, const char *tenant, uint64_t version,
    const char *want, uint64_t *got_version)
{
	return test_store_get(ts, tenant, version, want, got_version);
}

/* The store's environment opened directly, as an attacker with the files. */
struct ts_raw {
	MDB_env	*tr_env;
	MDB_txn	*tr_txn;
	MDB_dbi	 tr_dbi;
};

static void
ts_raw_open(struct test_store *ts, const char *db, struct ts_raw *raw)
{
	test_store_raw_open(ts, &raw->tr_env, &raw->tr_txn);
	assert_int_equal(mdb_dbi_open(raw->tr_txn, db, 0, &raw->tr_dbi), 0);
}

static void
ts_raw_close(struct test_store *ts, struct ts_raw *raw)
{
	test_store_raw_close(ts, raw->tr_env, raw->tr_txn);
}

/* A malloc'd copy of the value at key. */
static unsigned char *
ts_raw_get(struct ts_raw *raw, const void *k, size_t klen, size_t *len)
{
	MDB_val		 key, val;
	unsigned char	*copy;

	key.mv_data = (void *)k;
	key.mv_size = klen;
	assert_int_equal(mdb_get(raw->tr_txn, raw->tr_dbi, &key, &val), 0);
	copy = malloc(val.mv_size);
	assert_non_null(copy);
	memcpy(copy, val.mv_data, val.mv_size);
	*len = val.mv_size;
	return copy;
}

static void
ts_raw_put(struct ts_raw *raw, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	MDB_val	 key, val;

	key.mv_data = (void *)k;
	key.mv_size = klen;
	val.mv_data = (void *)v;
	val.mv_size = vlen;
	assert_int_equal(mdb_put(raw->tr_txn, raw->tr_dbi, &key, &val, 0), 0);
}

static void
test_open_reopen(void **state)
{
	struct test_store	*ts = *state;
	struct store	*other = NULL;
	unsigned char	*mk2;
	char		 path[1100], err[512], want[PATH_MAX + 128];
	struct stat	 st;

	assert_int_equal(stat(ts->ts_dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/data.mdb", ts->ts_dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(ts_put(ts, "acme", "{\"k\":\"v\"}", NULL), STORE_OK);
	ts_reopen(ts);
	assert_int_equal(ts_get(ts, "acme", 0, "{\"k\":\"v\"}", NULL),
	    STORE_OK);

	/* Another master key is refused at open, with a clear message. */
	mk2 = crypto_key_alloc();
	assert_non_null(mk2);
	randombytes_buf(mk2, CRYPTO_KEY_BYTES);
	store_close(ts->ts_store);
	ts->ts_store = NULL;
	assert_int_equal(store_open(&other, &ts->ts_params, mk2, err,
	    sizeof(err)), STORE_E_KEY);
	assert_null(other);
	snprintf(want, sizeof(want), "the master key does not match the one "
	    "this store was created with (%s)", ts->ts_dir);
	assert_string_equal(err, want);
	crypto_key_free(mk2);

	/* The right key still opens it. */
	ts_reopen(ts);
	assert_int_equal(ts_get(ts, "acme", 0, "{\"k\":\"v\"}", NULL),
	    STORE_OK);

	/* A data_dir that cannot be created. */
	snprintf(path, sizeof(path), "%s/no/such", ts->ts_tmp);
	ts->ts_params.sp_dir = path;
	assert_int_equal(store_open(&other, &ts->ts_params, ts->ts_mk, err,
	    sizeof(err)), STORE_E_IO);
	assert_null(other);
	assert_non_null(strstr(err, "cannot create"));
	ts->ts_params.sp_dir = ts->ts_dir;
}

static void
test_format(void **state)
{
	struct test_store	*ts = *state;
	struct ts_raw	 raw;
	struct store	*other = NULL;
	const unsigned char three[4] = { 0, 0, 0, 3 };
	char		 err[512];

	ts_raw_open(ts, "meta", &raw);
	ts_raw_put(&raw, "format", 6, three, sizeof(three));
	assert_int_equal(mdb_txn_commit(raw.tr_txn), 0);
	mdb_env_close(raw.tr_env);

	assert_int_equal(store_open(&other, &ts->ts_params, ts->ts_mk, err,
	    sizeof(err)), STORE_E_FORMAT);
	assert_null(other);
	assert_string_equal(err, "data_dir holds store format 3; this "
	    "wfvaultd knows 1 to 2");
	assert_string_equal(store_strerror(STORE_E_FORMAT),
	    "unknown store format");
}

static void
test_put_get(void **state)
{
	struct test_store		*ts = *state;
	struct store_tenant	 st = STORE_TENANT_INIT;
	MDB_txn			*txn;
	uint64_t		 v = 0, got = 0;

	assert_int_equal(ts_put(ts, "acme", "{\"a\":\"1\"}", &v), STORE_OK);
	assert_int_equal(v, 1);
	assert_int_equal(ts_put(ts, "acme", "{\"b\":\"x\",\"a\":\"2\"}", &v),
	    STORE_OK);
	assert_int_equal(v, 2);
	assert_int_equal(ts_put(ts, "beta", "{}", &v), STORE_OK);
	assert_int_equal(v, 1);

	assert_int_equal(ts_get(ts, "acme", 0, "{\"a\":\"2\",\"b\":\"x\"}",
	    &got), STORE_OK);
	assert_int_equal(got, 2);
	assert_int_equal(ts_get(ts, "acme", 1, "{\"a\":\"1\"}", &got),
	    STORE_OK);
	assert_int_equal(got, 1);
	assert_int_equal(ts_get(ts, "beta", 0, "{}", &got), STORE_OK);
	assert_int_equal(ts_get(ts, "acme", 3, NULL, NULL), STORE_E_NOT_FOUND);
	assert_int_equal(ts_get(ts, "nobody", 0, NULL, NULL),
	    STORE_E_NOT_FOUND);
	assert_int_equal(ts_get(ts, "acm", 0, NULL, NULL), STORE_E_NOT_FOUND);

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_get(ts->ts_store, txn, "acme", &st),
	    STORE_OK);
	assert_string_equal(st.st_tenant, "acme");
	assert_int_equal(st.st_version, 2);
	assert_int_equal(st.st_deleted, 0);
	assert_true(st.st_created > 0);
	assert_true(st.st_created <= st.st_updated);
	assert_int_equal(json_array_size(st.st_fields), 2);
	assert_string_equal(json_string_value(json_array_get(st.st_fields, 0)),
	    "a");
	assert_string_equal(json_string_value(json_array_get(st.st_fields, 1)),
	    "b");
	store_tenant_release(&st);
	assert_null(st.st_fields);
	assert_int_equal(store_tenant_get(ts->ts_store, txn, "nobody", &st),
	    STORE_E_NOT_FOUND);
	store_txn_abort(txn);

	/* Values of any JSON type survive the round trip. */
	assert_int_equal(ts_put(ts, "types", "{\"n\":42,\"o\":{\"x\":[1,null,"
	    "true]},\"s\":\"\\u00e9\\n\"}", NULL), STORE_OK);
	assert_int_equal(ts_get(ts, "types", 0, "{\"n\":42,\"o\":{\"x\":[1,"
	    "null,true]},\"s\":\"\xc3\xa9\\n\"}", NULL), STORE_OK);
}

static void
test_put_aborted(void **state)
{
	struct test_store	*ts = *state;
	json_t		*config;
	MDB_txn		*txn;
	uint64_t	 v, seq;

	config = json_pack("{s:s}", "k", "v");
	assert_non_null(config);
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_config_put(ts->ts_store, txn, "acme", config,
	    &v, &seq), STORE_OK);
	store_txn_abort(txn);
	json_decref(config);
	assert_int_equal(ts_get(ts, "acme", 0, NULL, NULL), STORE_E_NOT_FOUND);
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_last_seq(ts->ts_store, txn, &seq), STORE_OK);
	assert_int_equal(seq, 0);
	store_txn_abort(txn);

	/* Not an object: refused. */
	config = json_array();
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_not_equal(store_config_put(ts->ts_store, txn, "acme",
	    config, &v, &seq), STORE_OK);
	store_txn_abort(txn);
	json_decref(config);
}

static void
test_keep_versions(void **state)
{
	struct test_store		*ts = *state;
	struct store_stat	 ss;
	MDB_txn			*txn;
	char			 text[64];
	uint64_t		 v = 0, i;

	for (i = 1; i <= 5; i++) {
		snprintf(text, sizeof(text), "{\"v\":\"%llu\"}",
		    (unsigned long long)i);
		assert_int_equal(ts_put(ts, "acme", text, &v), STORE_OK);
		assert_int_equal(v, i);
	}
	assert_int_equal(ts_put(ts, "beta", "{\"x\":\"1\"}", NULL), STORE_OK);
	assert_int_equal(ts_get(ts, "acme", 1, NULL, NULL), STORE_E_NOT_FOUND);
	assert_int_equal(ts_get(ts, "acme", 2, NULL, NULL), STORE_E_NOT_FOUND);
	assert_int_equal(ts_get(ts, "acme", 3, "{\"v\":\"3\"}", NULL),
	    STORE_OK);
	assert_int_equal(ts_get(ts, "acme", 4, "{\"v\":\"4\"}", NULL),
	    STORE_OK);
	assert_int_equal(ts_get(ts, "acme", 5, "{\"v\":\"5\"}", NULL),
	    STORE_OK);
	/* Pruning one tenant leaves the neighbour alone. */
	assert_int_equal(ts_get(ts, "beta", 1, "{\"x\":\"1\"}", NULL),
	    STORE_OK);

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_stat(ts->ts_store, txn, &ss), STORE_OK);
	store_txn_abort(txn);
	assert_int_equal(ss.ss_versions, TEST_STORE_KEEP + 1);

	/* A lower keep_versions at the next open prunes on the next put. */
	ts->ts_params.sp_keep_versions = 1;
	ts_reopen(ts);
	assert_int_equal(ts_put(ts, "acme", "{\"v\":\"6\"}", &v), STORE_OK);
	assert_int_equal(v, 6);
	assert_int_equal(ts_get(ts, "acme", 5, NULL, NULL), STORE_E_NOT_FOUND);
	assert_int_equal(ts_get(ts, "acme", 3, NULL, NULL), STORE_E_NOT_FOUND);
	assert_int_equal(ts_get(ts, "acme", 0, "{\"v\":\"6\"}", NULL),
	    STORE_OK);
}

static void
test_delete_recreate(void **state)
{
	struct test_store		*ts = *state;
	struct store_tenant	 st = STORE_TENANT_INIT;
	struct store_stat	 ss;
	MDB_txn			*txn;
	uint64_t		 v = 0;

	assert_int_equal(ts_put(ts, "acme", "{\"a\":\"1\"}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "acme", "{\"a\":\"2\"}", NULL), STORE_OK);
	assert_int_equal(ts_delete(ts, "acme", &v), STORE_OK);
	assert_int_equal(v, 3);
	assert_int_equal(ts_get(ts, "acme", 0, NULL, NULL), STORE_E_NOT_FOUND);
	assert_int_equal(ts_get(ts, "acme", 2, NULL, NULL), STORE_E_NOT_FOUND);
	assert_int_equal(ts_delete(ts, "acme", &v), STORE_E_NOT_FOUND);
	assert_int_equal(ts_delete(ts, "nobody", &v), STORE_E_NOT_FOUND);

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_get(ts->ts_store, txn, "acme", &st),
	    STORE_OK);
	assert_int_equal(st.st_deleted, 1);
	assert_int_equal(st.st_version, 3);
	assert_int_equal(json_array_size(st.st_fields), 0);
	store_tenant_release(&st);
	assert_int_equal(store_stat(ts->ts_store, txn, &ss), STORE_OK);
	assert_int_equal(ss.ss_tenants, 0);
	assert_int_equal(ss.ss_versions, 0);
	store_txn_abort(txn);

	/* Recreated: the numbering goes on, old versions stay gone. */
	assert_int_equal(ts_put(ts, "acme", "{\"b\":\"new\"}", &v), STORE_OK);
	assert_int_equal(v, 4);
	assert_int_equal(ts_get(ts, "acme", 0, "{\"b\":\"new\"}", &v),
	    STORE_OK);
	assert_int_equal(v, 4);
	assert_int_equal(ts_get(ts, "acme", 2, NULL, NULL), STORE_E_NOT_FOUND);
	assert_int_equal(ts_get(ts, "acme", 3, NULL, NULL), STORE_E_NOT_FOUND);
}

static int	ts_verify(struct test_store *);

/* Records an outcome (JSON text) of tenant's integration in a transaction. */
static int
ts_test_put(struct test_store *ts, const char *tenant, const char *id,
    const char *text)
{
	json_t	*o;
	MDB_txn	*txn;
	int	 rc;

	assert_non_null(o = json_loads(text, 0, NULL));
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &txn),
	    STORE_OK);
	rc = store_test_put(ts->ts_store, txn, tenant, id, o);
	json_decref(o);
	if (rc != STORE_OK) {
		store_txn_abort(txn);
		return rc;
	}
	return store_txn_commit(txn);
}

/* The ids of tenant's recorded outcomes, comma-separated, into buf. */
static const char *
ts_tests_ids(struct test_store *ts, const char *tenant, char *buf,
    size_t len)
{
	const char	*id;
	json_t		*all, *v;
	MDB_txn		*txn;
	size_t		 n = 0;

	buf[0] = '\0';
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_tests_get(ts->ts_store, txn, tenant, &all),
	    STORE_OK);
	store_txn_abort(txn);
	json_object_foreach(all, id, v) {
		n += snprintf(buf + n, len - n, "%s%s", n > 0 ? "," : "", id);
		assert_true(n < len);
	}
	json_decref(all);
	return buf;
}

/*
 * Live test outcomes: one per tenant and integration, only for a live
 * tenant, of one shape; gone with the tenant (and only that tenant, not
 * one whose id it starts), checked by verify.
 */
static void
test_tests(void **state)
{
	static const char pass[] = "{\"at\":1,\"result\":\"pass\","
	    "\"status\":200,\"reason\":\"200 OK\",\"version\":1,\"uid\":0}";
	static const char fail[] = "{\"at\":2,\"result\":\"fail\","
	    "\"status\":null,\"reason\":\"\",\"version\":1,\"uid\":7}";
	struct test_store	*ts = *state;
	struct ts_raw		 raw;
	char			 ids[256];
	uint64_t		 v, seq;
	MDB_txn			*txn;

	assert_int_equal(ts_put(ts, "acme", "{\"a\":\"1\"}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "acme-x", "{\"a\":\"1\"}", NULL),
	    STORE_OK);
	assert_string_equal(ts_tests_ids(ts, "acme", ids, sizeof(ids)), "");
	assert_int_equal(ts_test_put(ts, "acme", "openai", pass), STORE_OK);
	assert_int_equal(ts_test_put(ts, "acme", "stripe", pass), STORE_OK);
	assert_int_equal(ts_test_put(ts, "acme", "openai", fail), STORE_OK);
	assert_int_equal(ts_test_put(ts, "acme-x", "openai", pass), STORE_OK);
	assert_int_equal(ts_test_put(ts, "nobody", "openai", pass),
	    STORE_E_NOT_FOUND);
	/* Of another shape: refused. */
	assert_int_equal(ts_test_put(ts, "acme", "openai", "{\"at\":1}"),
	    STORE_E_IO);
	assert_int_equal(ts_test_put(ts, "acme", "", pass), STORE_E_IO);
	assert_string_equal(ts_tests_ids(ts, "acme", ids, sizeof(ids)),
	    "openai,stripe");
	assert_string_equal(ts_tests_ids(ts, "acme-x", ids, sizeof(ids)),
	    "openai");
	assert_int_equal(ts_verify(ts), STORE_OK);

	/* Deleted: its outcomes go, acme-x's stay. */
	assert_int_equal(ts_delete(ts, "acme", &v), STORE_OK);
	assert_string_equal(ts_tests_ids(ts, "acme", ids, sizeof(ids)), "");
	assert_string_equal(ts_tests_ids(ts, "acme-x", ids, sizeof(ids)),
	    "openai");
	assert_int_equal(ts_test_put(ts, "acme", "openai", pass),
	    STORE_E_NOT_FOUND);
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_purge(ts->ts_store, txn, "acme-x", &v,
	    &seq), STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	assert_string_equal(ts_tests_ids(ts, "acme-x", ids, sizeof(ids)), "");
	assert_int_equal(ts_verify(ts), STORE_OK);

	/* A malformed entry fails verify. */
	ts_raw_open(ts, "tests", &raw);
	ts_raw_put(&raw, "zz\0openai", 9, "{\"at\":1}", 8);
	ts_raw_close(ts, &raw);
	assert_int_equal(ts_verify(ts), STORE_E_INTEGRITY);
}

struct ts_change {
	uint64_t	 tc_seq;
	char		 tc_tenant[PROTO_TENANT_MAX + 1];
	uint64_t	 tc_version;
	int		 tc_op;
};

struct ts_changes {
	struct ts_change tcs_c[16];
	size_t		 tcs_n;
	int		 tcs_ret;	/* what the callback returns */
};

static int
ts_change_cb(void *arg, const struct store_change *sc)
{
	struct ts_changes	*tcs = arg;
	struct ts_change	*tc;

	assert_true(tcs->tcs_n < 16);
	tc = &tcs->tcs_c[tcs->tcs_n++];
	tc->tc_seq = sc->sc_seq;
	snprintf(tc->tc_tenant, sizeof(tc->tc_tenant), "%s", sc->sc_tenant);
	tc->tc_version = sc->sc_version;
	tc->tc_op = sc->sc_op;
	return tcs->tcs_ret;
}

static void
ts_changes(struct test_store *ts, uint64_t since, size_t limit,
    struct ts_changes *tcs, int want)
{
	MDB_txn	*txn;

	tcs->tcs_n = 0;
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_changes(ts->ts_store, txn, since, limit,
	    ts_change_cb, tcs), want);
	store_txn_abort(txn);
}

static void
ts_expect_change(const struct ts_change *tc, uint64_t seq, const char *t,
    uint64_t version, int op)
{
	assert_int_equal(tc->tc_seq, seq);
	assert_string_equal(tc->tc_tenant, t);
	assert_int_equal(tc->tc_version, version);
	assert_int_equal(tc->tc_op, op);
}

static void
test_changes(void **state)
{
	struct test_store		*ts = *state;
	struct ts_changes	 tcs;
	MDB_txn			*txn;
	uint64_t		 seq = 99;

	memset(&tcs, 0, sizeof(tcs));
	ts_changes(ts, 0, 100, &tcs, STORE_OK);
	assert_int_equal(tcs.tcs_n, 0);
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_last_seq(ts->ts_store, txn, &seq), STORE_OK);
	assert_int_equal(seq, 0);
	store_txn_abort(txn);

	assert_int_equal(ts_put(ts, "acme", "{\"a\":\"1\"}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "beta", "{\"b\":\"1\"}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "acme", "{\"a\":\"2\"}", NULL), STORE_OK);
	assert_int_equal(ts_delete(ts, "beta", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "beta", "{\"b\":\"2\"}", NULL), STORE_OK);

	ts_changes(ts, 0, 100, &tcs, STORE_OK);
	assert_int_equal(tcs.tcs_n, 5);
	ts_expect_change(&tcs.tcs_c[0], 1, "acme", 1, STORE_OP_PUT);
	ts_expect_change(&tcs.tcs_c[1], 2, "beta", 1, STORE_OP_PUT);
	ts_expect_change(&tcs.tcs_c[2], 3, "acme", 2, STORE_OP_PUT);
	ts_expect_change(&tcs.tcs_c[3], 4, "beta", 2, STORE_OP_DELETE);
	ts_expect_change(&tcs.tcs_c[4], 5, "beta", 3, STORE_OP_PUT);

	ts_changes(ts, 2, 100, &tcs, STORE_OK);
	assert_int_equal(tcs.tcs_n, 3);
	assert_int_equal(tcs.tcs_c[0].tc_seq, 3);
	ts_changes(ts, 1, 2, &tcs, STORE_OK);
	assert_int_equal(tcs.tcs_n, 2);
	assert_int_equal(tcs.tcs_c[0].tc_seq, 2);
	assert_int_equal(tcs.tcs_c[1].tc_seq, 3);
	ts_changes(ts, 5, 100, &tcs, STORE_OK);
	assert_int_equal(tcs.tcs_n, 0);
	ts_changes(ts, 1000, 100, &tcs, STORE_OK);
	assert_int_equal(tcs.tcs_n, 0);
	ts_changes(ts, UINT64_MAX, 100, &tcs, STORE_OK);
	assert_int_equal(tcs.tcs_n, 0);

	/* The callback stops (1) or fails (<0) the walk. */
	tcs.tcs_ret = 1;
	ts_changes(ts, 0, 100, &tcs, STORE_OK);
	assert_int_equal(tcs.tcs_n, 1);
	tcs.tcs_ret = -42;
	ts_changes(ts, 0, 100, &tcs, -42);
	assert_int_equal(tcs.tcs_n, 1);

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_last_seq(ts->ts_store, txn, &seq), STORE_OK);
	assert_int_equal(seq, 5);
	store_txn_abort(txn);

	/* The feed survives a reopen and goes on from its last seq. */
	ts_reopen(ts);
	assert_int_equal(ts_put(ts, "gamma", "{}", NULL), STORE_OK);
	tcs.tcs_ret = 0;
	ts_changes(ts, 5, 100, &tcs, STORE_OK);
	assert_int_equal(tcs.tcs_n, 1);
	ts_expect_change(&tcs.tcs_c[0], 6, "gamma", 1, STORE_OP_PUT);
}

struct ts_sync {
	char		 tsy_target[4][PROTO_TENANT_MAX + 1];
	uint64_t	 tsy_seq[4];
	size_t		 tsy_n;
};

static int
ts_sync_cb(void *arg, const char *target, uint64_t seq)
{
	struct ts_sync	*tsy = arg;

	assert_true(tsy->tsy_n < 4);
	snprintf(tsy->tsy_target[tsy->tsy_n], PROTO_TENANT_MAX + 1, "%s",
	    target);
	tsy->tsy_seq[tsy->tsy_n++] = seq;
	return 0;
}

static void
test_sync(void **state)
{
	struct test_store	*ts = *state;
	struct ts_sync	 tsy;
	MDB_txn		*txn;

	memset(&tsy, 0, sizeof(tsy));
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_sync_list(ts->ts_store, txn, ts_sync_cb, &tsy),
	    STORE_OK);
	store_txn_abort(txn);
	assert_int_equal(tsy.tsy_n, 0);

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_sync_ack(ts->ts_store, txn, "kv-prod", 3),
	    STORE_OK);
	assert_int_equal(store_sync_ack(ts->ts_store, txn, "kv-staging", 1),
	    STORE_OK);
	assert_int_equal(store_sync_ack(ts->ts_store, txn, "kv-prod", 4),
	    STORE_OK);
	assert_int_not_equal(store_sync_ack(ts->ts_store, txn, "", 4),
	    STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);

	ts_reopen(ts);
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_sync_list(ts->ts_store, txn, ts_sync_cb, &tsy),
	    STORE_OK);
	store_txn_abort(txn);
	assert_int_equal(tsy.tsy_n, 2);
	assert_string_equal(tsy.tsy_target[0], "kv-prod");
	assert_int_equal(tsy.tsy_seq[0], 4);
	assert_string_equal(tsy.tsy_target[1], "kv-staging");
	assert_int_equal(tsy.tsy_seq[1], 1);
}

struct ts_list {
	char		 tl_names[512];	/* "a,b,c" */
	char		 tl_fields[512];
	size_t		 tl_n;
	size_t		 tl_stop;	/* stop after this many; 0: never */
};

static int
ts_list_cb(void *arg, const struct store_tenant *st)
{
	struct ts_list	*tl = arg;
	size_t		 i;
	char		 buf[256];

	assert_int_equal(st->st_deleted, 0);
	assert_true(json_is_array(st->st_fields));
	if (tl->tl_n > 0)
		strcat(tl->tl_names, ",");
	strcat(tl->tl_names, st->st_tenant);
	snprintf(buf, sizeof(buf), "%s:", st->st_tenant);
	strcat(tl->tl_fields, buf);
	for (i = 0; i < json_array_size(st->st_fields); i++) {
		snprintf(buf, sizeof(buf), "%s%s", i > 0 ? "+" : "",
		    json_string_value(json_array_get(st->st_fields, i)));
		strcat(tl->tl_fields, buf);
	}
	strcat(tl->tl_fields, ";");
	tl->tl_n++;
	return tl->tl_stop != 0 && tl->tl_n >= tl->tl_stop ? 1 : 0;
}

static const char *
ts_list(struct test_store *ts, const char *prefix, const char *after,
    size_t stop)
{
	static struct ts_list	 tl;
	MDB_txn			*txn;

	memset(&tl, 0, sizeof(tl));
	tl.tl_stop = stop;
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_list(ts->ts_store, txn, prefix, after,
	    ts_list_cb, &tl), STORE_OK);
	store_txn_abort(txn);
	return tl.tl_names;
}

static void
test_list(void **state)
{
	struct test_store	*ts = *state;
	struct ts_list	 tl;
	MDB_txn		*txn;

	assert_string_equal(ts_list(ts, NULL, NULL, 0), "");
	assert_int_equal(ts_put(ts, "zeta", "{\"z\":\"1\"}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "acme-us", "{\"u\":\"1\"}", NULL),
	    STORE_OK);
	assert_int_equal(ts_put(ts, "acme", "{\"b\":\"1\",\"a\":\"1\"}",
	    NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "acme-eu", "{}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "beta", "{}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "ac", "{}", NULL), STORE_OK);
	assert_int_equal(ts_delete(ts, "acme-eu", NULL), STORE_OK);

	assert_string_equal(ts_list(ts, NULL, NULL, 0),
	    "ac,acme,acme-us,beta,zeta");
	assert_string_equal(ts_list(ts, "acme", NULL, 0), "acme,acme-us");
	assert_string_equal(ts_list(ts, "acme", "acme", 0), "acme-us");
	assert_string_equal(ts_list(ts, "acme", "ac", 0), "acme,acme-us");
	assert_string_equal(ts_list(ts, "acme-", NULL, 0), "acme-us");
	assert_string_equal(ts_list(ts, "acme-eu", NULL, 0), "");
	assert_string_equal(ts_list(ts, NULL, "beta", 0), "zeta");
	assert_string_equal(ts_list(ts, NULL, "b", 0), "beta,zeta");
	assert_string_equal(ts_list(ts, "b", "a", 0), "beta");
	assert_string_equal(ts_list(ts, "a", "b", 0), "");
	assert_string_equal(ts_list(ts, NULL, "zeta", 0), "");
	assert_string_equal(ts_list(ts, "q", NULL, 0), "");

	/* Paging: a page of two, then on from the last one seen. */
	assert_string_equal(ts_list(ts, NULL, NULL, 2), "ac,acme");
	assert_string_equal(ts_list(ts, NULL, "acme", 2), "acme-us,beta");
	assert_string_equal(ts_list(ts, NULL, "beta", 2), "zeta");

	/* Field names come sorted; values never appear. */
	memset(&tl, 0, sizeof(tl));
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_list(ts->ts_store, txn, "acme", NULL,
	    ts_list_cb, &tl), STORE_OK);
	store_txn_abort(txn);
	assert_string_equal(tl.tl_fields, "acme:a+b;acme-us:u;");
}

static int
ts_fail_cb(void *arg, const struct store_tenant *st)
{
	(void)arg;
	(void)st;
	return -7;
}

static void
test_list_fail(void **state)
{
	struct test_store	*ts = *state;
	MDB_txn		*txn;

	assert_int_equal(ts_put(ts, "acme", "{}", NULL), STORE_OK);
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_list(ts->ts_store, txn, NULL, NULL, ts_fail_cb,
	    NULL), -7);
	store_txn_abort(txn);
}

static void
test_stat(void **state)
{
	struct test_store		*ts = *state;
	struct store_stat	 ss, ss2;
	MDB_txn			*txn;

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_stat(ts->ts_store, txn, &ss), STORE_OK);
	store_txn_abort(txn);
	assert_int_equal(ss.ss_tenants, 0);
	assert_int_equal(ss.ss_versions, 0);
	assert_int_equal(ss.ss_changes, 0);
	assert_int_equal(ss.ss_last_seq, 0);
	assert_int_equal(ss.ss_map_size, TEST_STORE_MAP_SIZE);
	assert_true(ss.ss_used_bytes > 0);

	assert_int_equal(ts_put(ts, "a", "{\"x\":\"1\"}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "a", "{\"x\":\"2\"}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "b", "{\"x\":\"1\"}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "c", "{\"x\":\"1\"}", NULL), STORE_OK);
	assert_int_equal(ts_delete(ts, "c", NULL), STORE_OK);

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_stat(ts->ts_store, txn, &ss2), STORE_OK);
	store_txn_abort(txn);
	assert_int_equal(ss2.ss_tenants, 2);
	assert_int_equal(ss2.ss_versions, 3);
	assert_int_equal(ss2.ss_changes, 5);
	assert_int_equal(ss2.ss_last_seq, 5);
	assert_int_equal(ss2.ss_map_size, TEST_STORE_MAP_SIZE);
	assert_true(ss2.ss_used_bytes > ss.ss_used_bytes);
	assert_true(ss2.ss_used_bytes <= ss2.ss_map_size);
}

static void
test_nested(void **state)
{
	struct test_store		*ts = *state;
	struct ts_changes	 tcs;
	json_t			*ca, *cb;
	MDB_txn			*parent, *child;
	uint64_t		 v, seq;

	ca = json_pack("{s:s}", "k", "a");
	cb = json_pack("{s:s}", "k", "b");
	assert_non_null(ca);
	assert_non_null(cb);
	assert_int_equal(ts_put(ts, "old", "{\"k\":\"1\"}", NULL), STORE_OK);

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &parent),
	    STORE_OK);
	/* A read transaction cannot nest. */
	assert_int_not_equal(store_txn_begin(ts->ts_store, parent, 0, &child),
	    STORE_OK);
	assert_null(child);

	assert_int_equal(store_txn_begin(ts->ts_store, parent, 1, &child),
	    STORE_OK);
	assert_int_equal(store_config_put(ts->ts_store, child, "a", ca, &v,
	    &seq), STORE_OK);
	assert_int_equal(seq, 2);
	assert_int_equal(store_txn_commit(child), STORE_OK);

	/* The second request fails and is undone on its own. */
	assert_int_equal(store_txn_begin(ts->ts_store, parent, 1, &child),
	    STORE_OK);
	assert_int_equal(store_config_put(ts->ts_store, child, "b", cb, &v,
	    &seq), STORE_OK);
	assert_int_equal(store_tenant_delete(ts->ts_store, child, "old", &v,
	    &seq), STORE_OK);
	store_txn_abort(child);

	assert_int_equal(store_txn_begin(ts->ts_store, parent, 1, &child),
	    STORE_OK);
	assert_int_equal(store_config_put(ts->ts_store, child, "a", cb, &v,
	    &seq), STORE_OK);
	assert_int_equal(v, 2);
	assert_int_equal(seq, 3);
	assert_int_equal(store_txn_commit(child), STORE_OK);
	assert_int_equal(store_txn_commit(parent), STORE_OK);
	json_decref(ca);
	json_decref(cb);

	assert_int_equal(ts_get(ts, "a", 1, "{\"k\":\"a\"}", NULL), STORE_OK);
	assert_int_equal(ts_get(ts, "a", 0, "{\"k\":\"b\"}", NULL), STORE_OK);
	assert_int_equal(ts_get(ts, "b", 0, NULL, NULL), STORE_E_NOT_FOUND);
	assert_int_equal(ts_get(ts, "old", 0, "{\"k\":\"1\"}", NULL),
	    STORE_OK);

	memset(&tcs, 0, sizeof(tcs));
	ts_changes(ts, 0, 100, &tcs, STORE_OK);
	assert_int_equal(tcs.tcs_n, 3);
	ts_expect_change(&tcs.tcs_c[0], 1, "old", 1, STORE_OP_PUT);
	ts_expect_change(&tcs.tcs_c[1], 2, "a", 1, STORE_OP_PUT);
	ts_expect_change(&tcs.tcs_c[2], 3, "a", 2, STORE_OP_PUT);
}

/* A config of about size bytes of (random, so incompressible) text. */
static json_t *
ts_big_config(size_t size)
{
	unsigned char	*raw;
	char		*hex;
	json_t		*config;

	raw = malloc(size / 2);
	hex = malloc(size + 1);
	assert_non_null(raw);
	assert_non_null(hex);
	randombytes_buf(raw, size / 2);
	sodium_bin2hex(hex, size + 1, raw, size / 2);
	config = json_pack("{s:s}", "blob", hex);
	assert_non_null(config);
	free(raw);
	free(hex);
	return config;
}

static void
test_map_full(void **state)
{
	struct test_store	*ts = *state;
	json_t		*config, *small;
	MDB_txn		*txn, *child;
	char		 tenant[32];
	uint64_t	 v, seq, last = 0;
	int		 i, rc = STORE_OK, full = 0;

	ts->ts_params.sp_map_size = 256 * 1024;
	store_close(ts->ts_store);
	ts->ts_store = NULL;
	test_rmtree(ts->ts_dir);
	ts_reopen(ts);

	assert_int_equal(ts_put(ts, "first", "{\"k\":\"kept\"}", NULL),
	    STORE_OK);
	config = ts_big_config(16 * 1024);
	for (i = 0; i < 100 && !full; i++) {
		snprintf(tenant, sizeof(tenant), "t%03d", i);
		assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &txn),
		    STORE_OK);
		rc = store_config_put(ts->ts_store, txn, tenant, config, &v,
		    &seq);
		if (rc == STORE_OK) {
			rc = store_txn_commit(txn);
			if (rc == STORE_OK)
				last = seq;
		} else
			store_txn_abort(txn);
		if (rc == STORE_E_FULL)
			full = 1;
		else
			assert_int_equal(rc, STORE_OK);
	}
	assert_true(full);
	assert_true(last > 1);
	assert_string_equal(store_strerror(STORE_E_FULL),
	    "the store is full (raise map_size)");

	/* Reads work and what was committed is intact. */
	assert_int_equal(ts_get(ts, "first", 0, "{\"k\":\"kept\"}", NULL),
	    STORE_OK);
	assert_int_equal(ts_get(ts, "t000", 0, NULL, NULL), STORE_OK);
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_last_seq(ts->ts_store, txn, &seq), STORE_OK);
	assert_int_equal(seq, last);
	store_txn_abort(txn);

	/*
	 * In a group commit, the request that fills the map is undone and
	 * the parent still commits the small one before it.
	 */
	small = json_pack("{s:s}", "k", "small");
	assert_non_null(small);
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_txn_begin(ts->ts_store, txn, 1, &child),
	    STORE_OK);
	assert_int_equal(store_config_put(ts->ts_store, child, "first", small,
	    &v, &seq), STORE_OK);
	assert_int_equal(store_txn_commit(child), STORE_OK);
	rc = STORE_OK;
	for (i = 0; i < 20 && rc == STORE_OK; i++) {
		assert_int_equal(store_txn_begin(ts->ts_store, txn, 1, &child),
		    STORE_OK);
		snprintf(tenant, sizeof(tenant), "big%02d", i);
		rc = store_config_put(ts->ts_store, child, tenant, config, &v,
		    &seq);
		if (rc == STORE_OK)
			store_txn_abort(child);	/* keep the parent small */
	}
	assert_int_equal(rc, STORE_E_FULL);
	store_txn_abort(child);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	assert_int_equal(ts_get(ts, "first", 0, "{\"k\":\"small\"}", &v),
	    STORE_OK);
	assert_int_equal(v, 2);
	json_decref(small);
	json_decref(config);

	/* A larger map_size at the next open makes room again. */
	ts->ts_params.sp_map_size = TEST_STORE_MAP_SIZE;
	ts_reopen(ts);
	config = ts_big_config(16 * 1024);
	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_config_put(ts->ts_store, txn, "after", config,
	    &v, &seq), STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	json_decref(config);
	assert_int_equal(ts_get(ts, "t000", 0, NULL, NULL), STORE_OK);
}

static void
test_tamper_flip(void **state)
{
	struct test_store	*ts = *state;
	struct ts_raw	 raw;
	unsigned char	 key[PROTO_TENANT_MAX + 9];
	unsigned char	*val;
	size_t		 klen, vlen;

	assert_int_equal(ts_put(ts, "acme", "{\"k\":\"v1\"}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "acme", "{\"k\":\"v2\"}", NULL), STORE_OK);

	/* One flipped bit in the middle of the newest sealed config. */
	ts_raw_open(ts, "versions", &raw);
	klen = test_store_vkey("acme", 2, key);
	val = ts_raw_get(&raw, key, klen, &vlen);
	val[vlen / 2] ^= 0x01;
	ts_raw_put(&raw, key, klen, val, vlen);
	free(val);
	ts_raw_close(ts, &raw);

	assert_int_equal(ts_get(ts, "acme", 0, NULL, NULL), STORE_E_INTEGRITY);
	assert_int_equal(ts_get(ts, "acme", 2, NULL, NULL), STORE_E_INTEGRITY);
	assert_int_equal(ts_get(ts, "acme", 1, "{\"k\":\"v1\"}", NULL),
	    STORE_OK);

	/* A truncated record. */
	ts_raw_open(ts, "versions", &raw);
	klen = test_store_vkey("acme", 1, key);
	val = ts_raw_get(&raw, key, klen, &vlen);
	ts_raw_put(&raw, key, klen, val, 10);
	free(val);
	ts_raw_close(ts, &raw);
	assert_int_equal(ts_get(ts, "acme", 1, NULL, NULL), STORE_E_INTEGRITY);

	/* A flipped bit in the tenant's wrapped data key. */
	assert_int_equal(ts_put(ts, "beta", "{\"k\":\"v\"}", NULL), STORE_OK);
	ts_raw_open(ts, "tenants", &raw);
	val = ts_raw_get(&raw, "beta", 4, &vlen);
	assert_true(vlen > 26 + CRYPTO_WRAPPED_BYTES);
	val[26 + 30] ^= 0x10;
	ts_raw_put(&raw, "beta", 4, val, vlen);
	free(val);
	ts_raw_close(ts, &raw);
	assert_int_equal(ts_get(ts, "beta", 0, NULL, NULL), STORE_E_INTEGRITY);
	/* And a write refuses to carry on with a key it cannot open. */
	assert_int_equal(ts_put(ts, "beta", "{}", NULL), STORE_E_INTEGRITY);
	assert_string_equal(store_strerror(STORE_E_INTEGRITY),
	    "a stored record failed authentication");
}

static void
test_tamper_move(void **state)
{
	struct test_store	*ts = *state;
	struct ts_raw	 raw;
	unsigned char	 ka[PROTO_TENANT_MAX + 9], kb[PROTO_TENANT_MAX + 9];
	unsigned char	*val;
	size_t		 kalen, kblen, vlen;

	assert_int_equal(ts_put(ts, "a", "{\"k\":\"of-a\"}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "b", "{\"k\":\"of-b\"}", NULL), STORE_OK);

	/* a's sealed config under b's key: another data key, another AD. */
	ts_raw_open(ts, "versions", &raw);
	kalen = test_store_vkey("a", 1, ka);
	kblen = test_store_vkey("b", 1, kb);
	val = ts_raw_get(&raw, ka, kalen, &vlen);
	ts_raw_put(&raw, kb, kblen, val, vlen);
	free(val);
	ts_raw_close(ts, &raw);
	assert_int_equal(ts_get(ts, "b", 0, NULL, NULL), STORE_E_INTEGRITY);
	assert_int_equal(ts_get(ts, "a", 0, "{\"k\":\"of-a\"}", NULL),
	    STORE_OK);

	/* Even with a's wrapped data key copied along, b's AD differs. */
	ts_raw_open(ts, "tenants", &raw);
	val = ts_raw_get(&raw, "a", 1, &vlen);
	ts_raw_put(&raw, "b", 1, val, vlen);
	free(val);
	ts_raw_close(ts, &raw);
	assert_int_equal(ts_get(ts, "b", 0, NULL, NULL), STORE_E_INTEGRITY);
}

static void
test_tamper_version(void **state)
{
	struct test_store	*ts = *state;
	struct ts_raw	 raw;
	unsigned char	 k1[PROTO_TENANT_MAX + 9], k2[PROTO_TENANT_MAX + 9];
	unsigned char	*val;
	size_t		 k1len, k2len, vlen;

	assert_int_equal(ts_put(ts, "acme", "{\"k\":\"old\"}", NULL),
	    STORE_OK);
	assert_int_equal(ts_put(ts, "acme", "{\"k\":\"new\"}", NULL),
	    STORE_OK);

	/* Rolling back by copying version 1 over version 2 is detected. */
	ts_raw_open(ts, "versions", &raw);
	k1len = test_store_vkey("acme", 1, k1);
	k2len = test_store_vkey("acme", 2, k2);
	val = ts_raw_get(&raw, k1, k1len, &vlen);
	ts_raw_put(&raw, k2, k2len, val, vlen);
	free(val);
	ts_raw_close(ts, &raw);
	assert_int_equal(ts_get(ts, "acme", 0, NULL, NULL), STORE_E_INTEGRITY);
	assert_int_equal(ts_get(ts, "acme", 1, "{\"k\":\"old\"}", NULL),
	    STORE_OK);
}

static void
test_canary(void **state)
{
	struct test_store	*ts = *state;
	const char	 canary[] = "CANARY-7f3a9c-do-not-store-me";
	char		 text[256], path[1100];
	char		*data;
	struct stat	 st;
	ssize_t		 n;
	size_t		 off;
	int		 fd;

	snprintf(text, sizeof(text), "{\"openai_api_key\":\"%s\"}", canary);
	assert_int_equal(ts_put(ts, "canary-tenant", text, NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "canary-tenant", text, NULL), STORE_OK);
	store_close(ts->ts_store);
	ts->ts_store = NULL;

	snprintf(path, sizeof(path), "%s/data.mdb", ts->ts_dir);
	fd = open(path, O_RDONLY);
	assert_true(fd != -1);
	assert_int_equal(fstat(fd, &st), 0);
	data = malloc((size_t)st.st_size);
	assert_non_null(data);
	for (off = 0; off < (size_t)st.st_size; off += (size_t)n) {
		n = read(fd, data + off, (size_t)st.st_size - off);
		assert_true(n > 0);
	}
	close(fd);
	/* The file is searchable: ids and field names are in it in clear. */
	assert_non_null(memmem(data, off, "canary-tenant", 13));
	assert_non_null(memmem(data, off, "openai_api_key", 14));
	/* The value never is. */
	assert_null(memmem(data, off, canary, strlen(canary)));
	assert_null(memmem(data, off, "CANARY", 6));
	free(data);
	ts_reopen(ts);
	assert_int_equal(ts_get(ts, "canary-tenant", 0, text, NULL), STORE_OK);
}

static void
test_strerror(void **state)
{
	int	 codes[] = { STORE_OK, STORE_E_IO, STORE_E_NOT_FOUND,
	    STORE_E_FULL, STORE_E_INTEGRITY, STORE_E_KEY, STORE_E_FORMAT,
	    STORE_E_NOMEM };
	size_t	 i, j;
	(void)state;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_non_null(store_strerror(codes[i]));
		for (j = 0; j < i; j++)
			assert_string_not_equal(store_strerror(codes[i]),
			    store_strerror(codes[j]));
	}
	assert_string_equal(store_strerror(12345), "unknown store error");
}

static int
ts_verify(struct test_store *ts)
{
	struct store_verify	 sv;
	MDB_txn			*txn;
	char			 err[512];
	int			 rc;

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	rc = store_verify(ts->ts_store, txn, &sv, err, sizeof(err));
	store_txn_abort(txn);
	return rc;
}

/* Trims the feed with retain, at most max entries; returns how many. */
static size_t
ts_trim(struct test_store *ts, uint64_t retain, size_t max)
{
	MDB_txn	*txn;
	size_t	 count = 0;

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_feed_trim(ts->ts_store, txn, retain, max,
	    &count), STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	return count;
}

static uint64_t
ts_trimmed(struct test_store *ts)
{
	MDB_txn		*txn;
	uint64_t	 seq = 99;

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_feed_trimmed(ts->ts_store, txn, &seq),
	    STORE_OK);
	store_txn_abort(txn);
	return seq;
}

static void
ts_ack(struct test_store *ts, const char *target, uint64_t seq)
{
	MDB_txn	*txn;

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_sync_ack(ts->ts_store, txn, target, seq),
	    STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
}

static void
ts_stat(struct test_store *ts, struct store_stat *ss)
{
	MDB_txn	*txn;

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_stat(ts->ts_store, txn, ss), STORE_OK);
	store_txn_abort(txn);
}

static void
ts_purge(struct test_store *ts, const char *tenant)
{
	MDB_txn		*txn;
	uint64_t	 version, seq;

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_purge(ts->ts_store, txn, tenant,
	    &version, &seq), STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
}

static void
test_feed_trim(void **state)
{
	struct test_store		*ts = *state;
	struct ts_changes	 tcs;
	struct store_stat	 ss;
	int			 i;

	memset(&tcs, 0, sizeof(tcs));
	/* seq 1..10: acme at the odd ones, beta at the even ones. */
	for (i = 0; i < 5; i++) {
		assert_int_equal(ts_put(ts, "acme", i % 2 ? "{\"a\":\"1\"}" :
		    "{\"a\":\"2\"}", NULL), STORE_OK);
		assert_int_equal(ts_put(ts, "beta", i % 2 ? "{\"b\":\"1\"}" :
		    "{\"b\":\"2\"}", NULL), STORE_OK);
	}
	assert_int_equal(ts_trimmed(ts), 0);

	/* No target: the newest 4 stay, at most max go per call. */
	assert_int_equal(ts_trim(ts, 4, 2), 2);
	assert_int_equal(ts_trimmed(ts), 2);
	assert_int_equal(ts_trim(ts, 4, 100), 4);
	assert_int_equal(ts_trim(ts, 4, 100), 0);
	assert_int_equal(ts_trimmed(ts), 6);
	ts_stat(ts, &ss);
	assert_int_equal(ss.ss_changes, 4);
	assert_int_equal(ss.ss_last_seq, 10);
	ts_changes(ts, 6, 100, &tcs, STORE_OK);
	assert_int_equal(tcs.tcs_n, 4);
	assert_int_equal(tcs.tcs_c[0].tc_seq, 7);

	/* A target: what it acknowledged goes, the newest entry stays. */
	ts_ack(ts, "kv", 8);
	assert_int_equal(ts_trim(ts, 4, 100), 2);
	assert_int_equal(ts_trimmed(ts), 8);
	ts_ack(ts, "kv", 10);
	assert_int_equal(ts_trim(ts, 4, 100), 1);
	assert_int_equal(ts_trimmed(ts), 9);
	ts_stat(ts, &ss);
	assert_int_equal(ss.ss_changes, 1);
	assert_int_equal(ss.ss_last_seq, 10);

	/* A second target far behind holds the feed back to retain only. */
	ts_ack(ts, "stale", 0);
	for (i = 0; i < 5; i++) {
		assert_int_equal(ts_put(ts, "gamma", i % 2 ?
		    "{\"g\":\"1\"}" : "{\"g\":\"2\"}", NULL), STORE_OK);
		assert_int_equal(ts_put(ts, "acme", i % 2 ?
		    "{\"a\":\"1\"}" : "{\"a\":\"2\"}", NULL), STORE_OK);
	}
	assert_int_equal(ts_trim(ts, 4, 100), 7);
	assert_int_equal(ts_trimmed(ts), 16);
	ts_stat(ts, &ss);
	assert_int_equal(ss.ss_changes, 4);
	assert_int_equal(ss.ss_tenants, 3);

	/* A purge finds acme's entries through the index, nothing else. */
	ts_purge(ts, "acme");
	ts_changes(ts, 16, 100, &tcs, STORE_OK);
	assert_int_equal(tcs.tcs_n, 3);
	ts_expect_change(&tcs.tcs_c[0], 17, "gamma", 4, STORE_OP_PUT);
	ts_expect_change(&tcs.tcs_c[1], 19, "gamma", 5, STORE_OP_PUT);
	ts_expect_change(&tcs.tcs_c[2], 21, "acme", 11, STORE_OP_DELETE);
	ts_stat(ts, &ss);
	assert_int_equal(ss.ss_tenants, 2);
	assert_int_equal(ss.ss_changes, 3);
	/* Trimming what the purge already took is fine. */
	assert_int_equal(ts_trim(ts, 1, 100), 2);
	assert_int_equal(ts_trimmed(ts), 19);
	assert_int_equal(ts_verify(ts), STORE_OK);
}

/* A store from before the feed index and the tenant counter. */
static void
test_feed_migrate(void **state)
{
	struct test_store		*ts = *state;
	struct ts_changes	 tcs;
	struct store_stat	 ss;
	struct ts_raw		 raw;
	MDB_dbi			 idx;
	MDB_val			 key;

	memset(&tcs, 0, sizeof(tcs));
	assert_int_equal(ts_put(ts, "acme", "{\"a\":\"1\"}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "beta", "{\"b\":\"1\"}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "gone", "{\"c\":\"1\"}", NULL), STORE_OK);
	assert_int_equal(ts_put(ts, "acme", "{\"a\":\"2\"}", NULL), STORE_OK);
	assert_int_equal(ts_delete(ts, "gone", NULL), STORE_OK);

	ts_raw_open(ts, "meta", &raw);
	assert_int_equal(mdb_dbi_open(raw.tr_txn, "feed_tenants", 0, &idx), 0);
	assert_int_equal(mdb_drop(raw.tr_txn, idx, 1), 0);
	ts_raw_put(&raw, "format", 6, "\0\0\0\1", 4);
	key.mv_data = (void *)"live_tenants";
	key.mv_size = strlen("live_tenants");
	assert_int_equal(mdb_del(raw.tr_txn, raw.tr_dbi, &key, NULL), 0);
	ts_raw_close(ts, &raw);		/* reopens: builds both */

	ts_stat(ts, &ss);
	assert_int_equal(ss.ss_tenants, 2);
	assert_int_equal(ss.ss_changes, 5);
	ts_purge(ts, "acme");
	ts_changes(ts, 0, 100, &tcs, STORE_OK);
	assert_int_equal(tcs.tcs_n, 4);
	ts_expect_change(&tcs.tcs_c[0], 2, "beta", 1, STORE_OP_PUT);
	ts_expect_change(&tcs.tcs_c[3], 6, "acme", 3, STORE_OP_DELETE);
	ts_stat(ts, &ss);
	assert_int_equal(ss.ss_tenants, 1);
	/* Opened again, nothing is built twice. */
	ts_reopen(ts);
	ts_stat(ts, &ss);
	assert_int_equal(ss.ss_tenants, 1);
	assert_int_equal(ss.ss_changes, 4);
	assert_int_equal(ts_verify(ts), STORE_OK);

	/* A counter that disagrees with the records fails verification. */
	ts_raw_open(ts, "meta", &raw);
	key.mv_data = (void *)"live_tenants";
	key.mv_size = strlen("live_tenants");
	ts_raw_put(&raw, key.mv_data, key.mv_size,
	    "\0\0\0\0\0\0\0\7", 8);
	ts_raw_close(ts, &raw);
	assert_int_equal(ts_verify(ts), STORE_E_INTEGRITY);
}

#define TS_TEST(f) cmocka_unit_test_setup_teardown(f, test_store_setup, \
    test_store_teardown)

int
main(void)
{
	char			 err[256];
	const struct CMUnitTest	 tests[] = {
		TS_TEST(test_open_reopen),
		TS_TEST(test_format),
		TS_TEST(test_put_get),
		TS_TEST(test_put_aborted),
		TS_TEST(test_keep_versions),
		TS_TEST(test_delete_recreate),
		TS_TEST(test_tests),
		TS_TEST(test_changes),
		TS_TEST(test_sync),
		TS_TEST(test_list),
		TS_TEST(test_list_fail),
		TS_TEST(test_stat),
		TS_TEST(test_nested),
		TS_TEST(test_map_full),
		TS_TEST(test_tamper_flip),
		TS_TEST(test_tamper_move),
		TS_TEST(test_tamper_version),
		TS_TEST(test_canary),
		TS_TEST(test_feed_trim),
		TS_TEST(test_feed_migrate),
		cmocka_unit_test(test_strerror),
	};

	proto_json_init();
	if (crypto_init(err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
