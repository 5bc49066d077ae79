/*
 * Unit tests of the store's maintenance operations against real LMDB
 * environments in temporary directories: master key re-wrapping (at once
 * and in steps, across a crash), tenant data key rotation (at once and in
 * steps), rotate.c's steps on an event loop, purging, the online backup
 * copy and its verification, the offline-mode lock, and the configuration
 * keywords they use.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <sodium.h>

#include "support.h"
#include "wfvaultd.h"

#define RT_REC_HEAD	(1 + 1 + 8 + 8 + 8)	/* store.c's record head */

/* Reopens the store with mk (the test's key when NULL); the open's code. */
static int
rt_reopen(struct test_store *rt, const unsigned char *mk)
{
	char	 err[512];

	return test_store_reopen(rt, mk, err, sizeof(err));
}

static void
rt_put(struct test_store *rt, const char *tenant, const char *text)
{
	json_error_t	 jerr;
	json_t		*config;
	MDB_txn		*txn;
	uint64_t	 v, seq;

	config = json_loads(text, 0, &jerr);
	assert_non_null(config);
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_config_put(rt->ts_store, txn, tenant, config,
	    &v, &seq), STORE_OK);
	json_decref(config);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
}

/* tenant's config at version (0: current) as compact sorted JSON. */
static int
rt_get(struct test_store *rt, const char *tenant, uint64_t version,
    const char *want)
{
	return test_store_get(rt, tenant, version, want, NULL);
}

static uint64_t
rt_last_seq(struct test_store *rt)
{
	MDB_txn		*txn;
	uint64_t	 seq;

	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_last_seq(rt->ts_store, txn, &seq), STORE_OK);
	store_txn_abort(txn);
	return seq;
}

/* The change feed as "seq:tenant:version:op," text. */
struct rt_feed {
	char	rf_text[4096];
};

static int
rt_feed_one(void *arg, const struct store_change *sc)
{
	struct rt_feed	*rf = arg;
	size_t		 len = strlen(rf->rf_text);

	snprintf(rf->rf_text + len, sizeof(rf->rf_text) - len,
	    "%llu:%s:%llu:%s,", (unsigned long long)sc->sc_seq, sc->sc_tenant,
	    (unsigned long long)sc->sc_version,
	    sc->sc_op == STORE_OP_DELETE ? "delete" : "put");
	return 0;
}

static const char *
rt_feed(struct test_store *rt, struct rt_feed *rf)
{
	MDB_txn	*txn;

	rf->rf_text[0] = '\0';
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_changes(rt->ts_store, txn, 0, 0, rt_feed_one,
	    rf), STORE_OK);
	store_txn_abort(txn);
	return rf->rf_text;
}

/* Raw access to the closed store's files, as someone holding them. */
struct rt_raw {
	MDB_env	*rr_env;
	MDB_txn	*rr_txn;
};

static void
rt_raw_open(struct test_store *rt, struct rt_raw *raw)
{
	test_store_raw_open(rt, &raw->rr_env, &raw->rr_txn);
}

static void
rt_raw_close(struct test_store *rt, struct rt_raw *raw)
{
	test_store_raw_close(rt, raw->rr_env, raw->rr_txn);
}

/* A copy of db's value at key into buf (at most len bytes); its size. */
static size_t
rt_raw_get(struct rt_raw *raw, const char *db, const void *k, size_t klen,
    unsigned char *buf, size_t len)
{
	MDB_dbi	 dbi;
	MDB_val	 key, val;

	assert_int_equal(mdb_dbi_open(raw->rr_txn, db, 0, &dbi), 0);
	key.mv_data = (void *)k;
	key.mv_size = klen;
	assert_int_equal(mdb_get(raw->rr_txn, dbi, &key, &val), 0);
	assert_true(val.mv_size <= len);
	memcpy(buf, val.mv_data, val.mv_size);
	return val.mv_size;
}

static void
rt_raw_put(struct rt_raw *raw, const char *db, const void *k, size_t klen,
    const void *v, size_t vlen)
{
	MDB_dbi	 dbi;
	MDB_val	 key, val;

	assert_int_equal(mdb_dbi_open(raw->rr_txn, db, 0, &dbi), 0);
	key.mv_data = (void *)k;
	key.mv_size = klen;
	val.mv_data = (void *)v;
	val.mv_size = vlen;
	assert_int_equal(mdb_put(raw->rr_txn, dbi, &key, &val, 0), 0);
}

/* A new guarded random key. */
static unsigned char *
rt_key_new(void)
{
	unsigned char	*k = crypto_key_alloc();

	assert_non_null(k);
	randombytes_buf(k, CRYPTO_KEY_BYTES);
	return k;
}

static void
test_rewrap(void **state)
{
	struct test_store	*rt = *state;
	unsigned char	*mk2, *mine;
	MDB_txn		*txn;
	uint64_t	 count, seq, v;

	rt_put(rt, "acme", "{\"a\":\"1\"}");
	rt_put(rt, "acme", "{\"a\":\"2\"}");
	rt_put(rt, "beta", "{\"b\":\"x\"}");
	rt_put(rt, "gone", "{\"g\":\"x\"}");
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_delete(rt->ts_store, txn, "gone", &v,
	    &seq), STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	seq = rt_last_seq(rt);
	mk2 = rt_key_new();

	/* Aborted: nothing changes. */
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_rewrap(rt->ts_store, txn, mk2, &count),
	    STORE_OK);
	assert_int_equal(count, 2);	/* the deleted tenant has no key */
	store_txn_abort(txn);
	assert_int_equal(rt_get(rt, "acme", 0, "{\"a\":\"2\"}"), STORE_OK);
	assert_int_equal(rt_reopen(rt, mk2), STORE_E_KEY);
	assert_null(rt->ts_store);
	assert_int_equal(rt_reopen(rt, NULL), STORE_OK);

	/* Committed: the store needs the new key, and gets it. */
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_rewrap(rt->ts_store, txn, mk2, &count),
	    STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 0, NULL), STORE_E_INTEGRITY);
	mine = rt_key_new();
	memcpy(mine, mk2, CRYPTO_KEY_BYTES);
	store_master_key_set(rt->ts_store, mine);	/* the store's now */
	assert_ptr_equal(store_master_key(rt->ts_store), mine);
	assert_int_equal(rt_get(rt, "acme", 0, "{\"a\":\"2\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 1, "{\"a\":\"1\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "beta", 0, "{\"b\":\"x\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "gone", 0, NULL), STORE_E_NOT_FOUND);
	/* Nothing in the feed: values did not change. */
	assert_int_equal(rt_last_seq(rt), seq);
	/* New tenants get their key wrapped under the new master key. */
	rt_put(rt, "gamma", "{\"c\":\"y\"}");

	assert_int_equal(rt_reopen(rt, NULL), STORE_E_KEY);
	assert_int_equal(rt_reopen(rt, mk2), STORE_OK);
	assert_int_equal(rt_get(rt, "gamma", 0, "{\"c\":\"y\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 1, "{\"a\":\"1\"}"), STORE_OK);
	/* The teardown closes it with mk2 freed first: reopen on ours. */
	store_close(rt->ts_store);
	rt->ts_store = NULL;
	memcpy(rt->ts_mk, mk2, CRYPTO_KEY_BYTES);
	crypto_key_free(mk2);
	assert_int_equal(rt_reopen(rt, NULL), STORE_OK);
}

static void
test_rewrap_tampered(void **state)
{
	struct test_store	*rt = *state;
	struct rt_raw	 raw;
	unsigned char	 rec[512], *mk2;
	MDB_txn		*txn;
	uint64_t	 count;
	size_t		 len;

	rt_put(rt, "acme", "{\"a\":\"1\"}");
	rt_put(rt, "beta", "{\"b\":\"1\"}");
	rt_raw_open(rt, &raw);
	len = rt_raw_get(&raw, "tenants", "beta", 4, rec, sizeof(rec));
	rec[RT_REC_HEAD + 30] ^= 0x01;
	rt_raw_put(&raw, "tenants", "beta", 4, rec, len);
	rt_raw_close(rt, &raw);

	/* A key that does not open stops the whole rotation. */
	mk2 = rt_key_new();
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_rewrap(rt->ts_store, txn, mk2, &count),
	    STORE_E_INTEGRITY);
	store_txn_abort(txn);
	crypto_key_free(mk2);
	assert_int_equal(rt_get(rt, "acme", 0, "{\"a\":\"1\"}"), STORE_OK);
}

static void
test_rekey(void **state)
{
	struct test_store	*rt = *state;
	struct rt_raw	 raw;
	struct store_tenant st = STORE_TENANT_INIT;
	unsigned char	 oldrec[512], newrec[512], ct[3][256], oldct[256];
	unsigned char	 key[160], dek[CRYPTO_KEY_BYTES], plain[256];
	MDB_txn		*txn;
	uint64_t	 count, seq, v;
	size_t		 oldlen, newlen, ctlen[3], klen, plen;

	rt_put(rt, "acme", "{\"k\":\"one\"}");
	rt_put(rt, "acme", "{\"k\":\"two\"}");
	rt_put(rt, "acme", "{\"k\":\"three\"}");
	rt_put(rt, "acme", "{\"k\":\"four\"}");	/* version 1 pruned */
	rt_put(rt, "beta", "{\"b\":\"x\"}");
	seq = rt_last_seq(rt);

	rt_raw_open(rt, &raw);
	oldlen = rt_raw_get(&raw, "tenants", "acme", 4, oldrec,
	    sizeof(oldrec));
	klen = test_store_vkey("acme", 3, key);
	rt_raw_get(&raw, "versions", key, klen, oldct, sizeof(oldct));
	rt_raw_close(rt, &raw);

	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_rekey(rt->ts_store, txn, "acme",
	    &count), STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	assert_int_equal(count, 3);

	/* Every kept version reads as before; nothing else moved. */
	assert_int_equal(rt_get(rt, "acme", 2, "{\"k\":\"two\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 3, "{\"k\":\"three\"}"),
	    STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 4, "{\"k\":\"four\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 1, NULL), STORE_E_NOT_FOUND);
	assert_int_equal(rt_get(rt, "beta", 0, "{\"b\":\"x\"}"), STORE_OK);
	assert_int_equal(rt_last_seq(rt), seq);
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_get(rt->ts_store, txn, "acme", &st),
	    STORE_OK);
	store_txn_abort(txn);
	assert_int_equal(st.st_version, 4);
	store_tenant_release(&st);

	rt_raw_open(rt, &raw);
	newlen = rt_raw_get(&raw, "tenants", "acme", 4, newrec,
	    sizeof(newrec));
	for (v = 2; v <= 4; v++) {
		klen = test_store_vkey("acme", v, key);
		ctlen[v - 2] = rt_raw_get(&raw, "versions", key, klen,
		    ct[v - 2], sizeof(ct[0]));
	}
	rt_raw_close(rt, &raw);

	/* Same record but for the wrapped key, which is new. */
	assert_int_equal(newlen, oldlen);
	assert_memory_equal(newrec, oldrec, RT_REC_HEAD);
	assert_memory_equal(newrec + RT_REC_HEAD + CRYPTO_WRAPPED_BYTES,
	    oldrec + RT_REC_HEAD + CRYPTO_WRAPPED_BYTES,
	    oldlen - RT_REC_HEAD - CRYPTO_WRAPPED_BYTES);
	assert_memory_not_equal(newrec + RT_REC_HEAD, oldrec + RT_REC_HEAD,
	    CRYPTO_WRAPPED_BYTES);
	assert_memory_not_equal(ct[1], oldct, CRYPTO_SEAL_OVERHEAD);

	/* The old data key opens none of the new ciphertexts. */
	assert_int_equal(crypto_dek_unwrap(rt->ts_mk, "acme",
	    oldrec + RT_REC_HEAD, CRYPTO_WRAPPED_BYTES, dek), CRYPTO_OK);
	for (v = 2; v <= 4; v++)
		assert_int_equal(crypto_open(dek, "acme", v, ct[v - 2],
		    ctlen[v - 2], plain, &plen), CRYPTO_INTEGRITY);
	/* It did open the old one (so the check above can fail). */
	assert_int_equal(crypto_open(dek, "acme", 3, oldct, ctlen[1], plain,
	    &plen), CRYPTO_OK);
	/* And the new wrapped key opens the new ones. */
	assert_int_equal(crypto_dek_unwrap(rt->ts_mk, "acme",
	    newrec + RT_REC_HEAD, CRYPTO_WRAPPED_BYTES, dek), CRYPTO_OK);
	assert_int_equal(crypto_open(dek, "acme", 3, ct[1], ctlen[1], plain,
	    &plen), CRYPTO_OK);
	assert_int_equal(plen, strlen("{\"k\":\"three\"}"));
	assert_memory_equal(plain, "{\"k\":\"three\"}", plen);
	sodium_memzero(dek, sizeof(dek));

	/* Later puts use the new key. */
	rt_put(rt, "acme", "{\"k\":\"five\"}");
	assert_int_equal(rt_get(rt, "acme", 5, "{\"k\":\"five\"}"), STORE_OK);

	/* Deleted and unknown tenants have no key to rotate. */
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_delete(rt->ts_store, txn, "beta", &v,
	    &seq), STORE_OK);
	assert_int_equal(store_tenant_rekey(rt->ts_store, txn, "beta",
	    &count), STORE_E_NOT_FOUND);
	assert_int_equal(store_tenant_rekey(rt->ts_store, txn, "nobody",
	    &count), STORE_E_NOT_FOUND);
	store_txn_abort(txn);
}

static void
test_purge(void **state)
{
	struct test_store		*rt = *state;
	struct rt_feed		 rf;
	struct store_tenant	 st = STORE_TENANT_INIT;
	MDB_txn			*txn;
	uint64_t		 v, seq;

	rt_put(rt, "acme", "{\"a\":\"1\"}");		/* seq 1 */
	rt_put(rt, "beta", "{\"b\":\"1\"}");		/* seq 2 */
	rt_put(rt, "acme", "{\"a\":\"2\"}");		/* seq 3 */
	rt_put(rt, "acme-us", "{\"a\":\"3\"}");	/* seq 4 */
	rt_put(rt, "acme", "{\"a\":\"4\"}");		/* seq 5: the last */

	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_purge(rt->ts_store, txn, "acme", &v,
	    &seq), STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	assert_int_equal(v, 4);
	/* After the last seq ever given, even though that entry is gone. */
	assert_int_equal(seq, 6);
	assert_string_equal(rt_feed(rt, &rf),
	    "2:beta:1:put,4:acme-us:1:put,6:acme:4:delete,");
	assert_int_equal(rt_last_seq(rt), 6);

	/* No record, no versions: it never existed. */
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_get(rt->ts_store, txn, "acme", &st),
	    STORE_E_NOT_FOUND);
	store_txn_abort(txn);
	assert_int_equal(rt_get(rt, "acme", 3, NULL), STORE_E_NOT_FOUND);
	assert_int_equal(rt_get(rt, "acme-us", 0, "{\"a\":\"3\"}"), STORE_OK);

	/* A new tenant by that name starts at version 1. */
	rt_put(rt, "acme", "{\"a\":\"new\"}");
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_get(rt->ts_store, txn, "acme", &st),
	    STORE_OK);
	store_txn_abort(txn);
	assert_int_equal(st.st_version, 1);
	store_tenant_release(&st);

	/* A deleted tenant's tombstone goes too. */
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_delete(rt->ts_store, txn, "beta", &v,
	    &seq), STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_purge(rt->ts_store, txn, "beta", &v,
	    &seq), STORE_OK);
	assert_int_equal(v, 3);
	assert_int_equal(store_tenant_purge(rt->ts_store, txn, "beta", &v,
	    &seq), STORE_E_NOT_FOUND);
	assert_int_equal(store_tenant_purge(rt->ts_store, txn, "nobody", &v,
	    &seq), STORE_E_NOT_FOUND);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	assert_string_equal(rt_feed(rt, &rf),
	    "4:acme-us:1:put,6:acme:4:delete,7:acme:1:put,9:beta:3:delete,");
}

/* Writes a compacted copy of the store into path; returns its size. */
static off_t
rt_copy(struct test_store *rt, const char *path)
{
	struct stat	 st;
	int		 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd != -1);
	assert_int_equal(store_copy_fd(rt->ts_store, fd), 0);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	return st.st_size;
}

/* Verifies the backup at path with mk; the code, sv and err filled. */
static int
rt_verify(const char *path, const unsigned char *mk, struct store_verify *sv,
    char *err, size_t errlen)
{
	struct store	*b = NULL;
	MDB_txn		*txn;
	int		 rc;

	memset(sv, 0, sizeof(*sv));
	if ((rc = store_open_file(&b, path, mk, err, errlen)) != STORE_OK) {
		assert_null(b);
		return rc;
	}
	assert_int_equal(store_txn_begin(b, NULL, 0, &txn), STORE_OK);
	rc = store_verify(b, txn, sv, err, errlen);
	store_txn_abort(txn);
	store_close(b);
	return rc;
}

/* Flips one bit at off in the file at path. */
static void
rt_flip(const char *path, off_t off)
{
	unsigned char	 c;
	int		 fd;

	fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd != -1);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x01;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* The offset of the first occurrence of needle in the file at path. */
static off_t
rt_find(const char *path, const void *needle, size_t nlen)
{
	unsigned char	*buf, *p;
	struct stat	 st;
	off_t		 off;
	int		 fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd != -1);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	p = memmem(buf, (size_t)st.st_size, needle, nlen);
	assert_non_null(p);
	off = p - buf;
	free(buf);
	return off;
}

static void
test_copy_verify(void **state)
{
	struct test_store		*rt = *state;
	struct store_verify	 sv;
	struct store		*b = NULL;
	unsigned char		*other;
	MDB_txn			*txn, *wtxn;
	json_t			*config;
	char			 path[1100], err[1200];
	uint64_t		 v, seq;
	int			 i;

	rt_put(rt, "acme", "{\"marker_field_one\":\"1\"}");
	rt_put(rt, "acme", "{\"marker_field_one\":\"2\"}");
	rt_put(rt, "beta", "{\"b\":\"x\"}");
	rt_put(rt, "gone", "{\"g\":\"x\"}");
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_delete(rt->ts_store, txn, "gone", &v,
	    &seq), STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	for (i = 0; i < 200; i++) {
		snprintf(path, sizeof(path), "t%03d", i);
		rt_put(rt, path, "{\"k\":\"v\"}");
	}

	/* A write in progress is not in the copy: one committed snapshot. */
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &wtxn),
	    STORE_OK);
	config = json_pack("{s:s}", "late", "x");
	assert_int_equal(store_config_put(rt->ts_store, wtxn, "late", config,
	    &v, &seq), STORE_OK);
	json_decref(config);
	snprintf(path, sizeof(path), "%s/copy.mdb", rt->ts_tmp);
	assert_true(rt_copy(rt, path) > 0);
	assert_int_equal(store_txn_commit(wtxn), STORE_OK);

	assert_int_equal(rt_verify(path, rt->ts_mk, &sv, err, sizeof(err)),
	    STORE_OK);
	assert_int_equal(sv.sv_tenants, 202);
	assert_int_equal(sv.sv_versions, 203);
	assert_int_equal(store_open_file(&b, path, rt->ts_mk, err,
	    sizeof(err)), STORE_OK);
	assert_int_equal(store_txn_begin(b, NULL, 0, &txn), STORE_OK);
	config = NULL;
	assert_int_equal(store_config_get(b, txn, "late", 0, &config, NULL),
	    STORE_E_NOT_FOUND);
	assert_int_equal(store_config_get(b, txn, "acme", 1, &config, NULL),
	    STORE_OK);
	assert_string_equal(json_string_value(json_object_get(config,
	    "marker_field_one")), "1");
	json_decref(config);
	store_txn_abort(txn);
	store_close(b);
	/* Opening it left nothing next to it (no lock file). */
	snprintf(err, sizeof(err), "%s-lock", path);
	assert_int_equal(access(err, F_OK), -1);

	/* Another key is refused up front. */
	other = rt_key_new();
	assert_int_equal(rt_verify(path, other, &sv, err, sizeof(err)),
	    STORE_E_KEY);
	crypto_key_free(other);

	/* The byte before a field name is the last of the wrapped key. */
	rt_flip(path, rt_find(path, "marker_field_one", 16) - 1);
	assert_int_equal(rt_verify(path, rt->ts_mk, &sv, err, sizeof(err)),
	    STORE_E_INTEGRITY);
	assert_string_equal(sv.sv_tenant, "acme");
	assert_non_null(strstr(err, "'acme'"));
	assert_int_equal(unlink(path), 0);

	/* A flipped bit in one sealed version names that tenant too. */
	assert_true(rt_copy(rt, path) > 0);
	{
		unsigned char	vkey[160];
		size_t		klen = test_store_vkey("beta", 1, vkey);

		rt_flip(path, rt_find(path, vkey, klen) + (off_t)klen + 30);
	}
	assert_int_equal(rt_verify(path, rt->ts_mk, &sv, err, sizeof(err)),
	    STORE_E_INTEGRITY);
	assert_string_equal(sv.sv_tenant, "beta");
	assert_int_equal(unlink(path), 0);

	/* Not a store at all. */
	assert_int_equal(rt_verify(rt->ts_dir, rt->ts_mk, &sv, err,
	    sizeof(err)), STORE_E_IO);
}

static void
test_verify_orphan(void **state)
{
	struct test_store		*rt = *state;
	struct store_verify	 sv;
	struct rt_raw		 raw;
	unsigned char		 key[160], val[256];
	char			 path[1100], err[1024];
	size_t			 klen, vlen;

	rt_put(rt, "acme", "{\"a\":\"1\"}");
	rt_put(rt, "beta", "{\"b\":\"1\"}");
	/* A sealed version left under a tenant that has no record. */
	rt_raw_open(rt, &raw);
	klen = test_store_vkey("beta", 1, key);
	vlen = rt_raw_get(&raw, "versions", key, klen, val, sizeof(val));
	klen = test_store_vkey("ghost", 1, key);
	rt_raw_put(&raw, "versions", key, klen, val, vlen);
	rt_raw_close(rt, &raw);

	snprintf(path, sizeof(path), "%s/orphan.mdb", rt->ts_tmp);
	assert_true(rt_copy(rt, path) > 0);
	assert_int_equal(rt_verify(path, rt->ts_mk, &sv, err, sizeof(err)),
	    STORE_E_INTEGRITY);
	assert_string_equal(sv.sv_tenant, "ghost");
	assert_non_null(strstr(err, "ghost"));
}

/* The online backup: a thread copies, the loop hears when it is done. */
struct rt_done {
	struct rpc_write	 rd_w;		/* first: what backup.c holds */
	struct event_base	*rd_base;
	struct backup_result	 rd_res;
	int			 rd_calls;
};

static void
rt_backup_done(struct server *srv, struct rpc_write *w,
    const struct backup_result *res)
{
	struct rt_done	*rd = (struct rt_done *)w;

	rd->rd_res = *res;
	rd->rd_calls++;
	event_base_loopbreak(rd->rd_base);
}

static void
test_backup_thread(void **state)
{
	struct test_store		*rt = *state;
	struct daemon_conf	 conf;
	struct server		 srv;
	struct backup_result	 res;
	struct store_verify	 sv;
	struct rt_done		 rd;
	struct stat		 st;
	char			 dir[1100], path[1200], err[1200];
	int			 i;

	for (i = 0; i < 300; i++) {
		snprintf(path, sizeof(path), "tenant-%03d", i);
		rt_put(rt, path, "{\"api_key\":\"sk-0123456789\"}");
	}
	memset(&conf, 0, sizeof(conf));
	memset(&srv, 0, sizeof(srv));
	memset(&rd, 0, sizeof(rd));
	srv.srv_conf = &conf;
	srv.srv_store = rt->ts_store;
	srv.srv_base = rd.rd_base = event_base_new();
	assert_non_null(srv.srv_base);

	/* Without backup_dir there is none. */
	assert_int_equal(backup_start(&srv, NULL, rt_backup_done, &rd.rd_w,
	    &res), -1);
	assert_int_equal(res.br_code, PROTO_E_UNAVAILABLE);
	assert_string_equal(res.br_msg, "set backup_dir in the configuration");

	snprintf(dir, sizeof(dir), "%s/backups", rt->ts_tmp);
	conf.dc_backup_dir = dir;
	assert_int_equal(backup_start(&srv, "../escape", rt_backup_done,
	    &rd.rd_w, &res), -1);
	assert_int_equal(res.br_code, PROTO_E_PARAMS);

	assert_int_equal(backup_start(&srv, "one.mdb", rt_backup_done, &rd.rd_w,
	    &res), 0);
	assert_ptr_equal(backup_pending(&srv), &rd.rd_w);
	/* One at a time. */
	assert_int_equal(backup_start(&srv, "two.mdb", rt_backup_done, &rd.rd_w,
	    &res), -1);
	assert_int_equal(res.br_code, PROTO_E_UNAVAILABLE);
	assert_string_equal(res.br_msg, "a backup is already running");
	/* The loop runs while the copy is made; done comes from it. */
	rt_put(rt, "during", "{\"x\":\"y\"}");
	assert_int_equal(event_base_dispatch(srv.srv_base), 0);
	assert_int_equal(rd.rd_calls, 1);
	assert_int_equal(rd.rd_res.br_code, 0);
	assert_null(backup_pending(&srv));
	snprintf(path, sizeof(path), "%s/one.mdb", dir);
	assert_string_equal(rd.rd_res.br_path, path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal((uint64_t)st.st_size, rd.rd_res.br_bytes);
	assert_int_equal(rt_verify(path, rt->ts_mk, &sv, err, sizeof(err)),
	    STORE_OK);
	assert_true(sv.sv_tenants == 300 || sv.sv_tenants == 301);

	/* A name already there is never overwritten. */
	assert_int_equal(backup_start(&srv, "one.mdb", rt_backup_done, &rd.rd_w,
	    &res), -1);
	assert_int_equal(res.br_code, PROTO_E_CONFLICT);
	/* Nor is a link followed. */
	snprintf(err, sizeof(err), "%s/victim", rt->ts_tmp);
	snprintf(path, sizeof(path), "%s/link.mdb", dir);
	assert_int_equal(symlink(err, path), 0);
	assert_int_equal(backup_start(&srv, "link.mdb", rt_backup_done,
	    &rd.rd_w, &res), -1);
	assert_int_equal(access(err, F_OK), -1);

	/* At exit, a running backup is waited for and still answered. */
	assert_int_equal(backup_start(&srv, NULL, rt_backup_done, &rd.rd_w,
	    &res), 0);
	assert_non_null(strstr(res.br_path, "/wfvault-"));
	backup_release(&srv);
	assert_int_equal(rd.rd_calls, 2);
	assert_int_equal(rd.rd_res.br_code, 0);
	assert_null(backup_pending(&srv));
	assert_int_equal(rt_verify(rd.rd_res.br_path, rt->ts_mk, &sv, err,
	    sizeof(err)), STORE_OK);
	assert_int_equal(sv.sv_tenants, 301);
	event_base_free(srv.srv_base);
}

static void
test_exclusive(void **state)
{
	struct test_store		*rt = *state;
	struct daemon_conf	 conf;
	struct sockaddr_un	 sun;
	MDB_env			*env;
	char			 sock[1100], err[1024], c;
	int			 lockfd, up[2], down[2], fd, status;
	pid_t			 pid;

	/* The parent's own store would share its locks: close it. */
	store_close(rt->ts_store);
	rt->ts_store = NULL;
	memset(&conf, 0, sizeof(conf));
	snprintf(sock, sizeof(sock), "%s/s", rt->ts_tmp);
	conf.dc_socket = sock;
	conf.dc_data_dir = rt->ts_dir;

	assert_int_equal(backup_exclusive(&conf, &lockfd, err, sizeof(err)),
	    0);
	assert_true(lockfd != -1);
	backup_exclusive_end(lockfd);

	/* Another process with the environment open. */
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	if ((pid = fork()) == 0) {
		if (mdb_env_create(&env) != 0 ||
		    mdb_env_set_maxdbs(env, 8) != 0 ||
		    mdb_env_open(env, rt->ts_dir, 0, 0600) != 0)
			_exit(1);
		c = 1;
		if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(1);
		mdb_env_close(env);
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(read(up[0], &c, 1), 1);
	assert_int_equal(backup_exclusive(&conf, &lockfd, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "has the store in"));
	c = 1;
	assert_int_equal(write(down[1], &c, 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	assert_int_equal(backup_exclusive(&conf, &lockfd, err, sizeof(err)),
	    0);
	backup_exclusive_end(lockfd);

	/* A daemon answering on the socket. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd != -1);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_true(strlen(sock) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, sock, strlen(sock));
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(backup_exclusive(&conf, &lockfd, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "is running on"));
	close(fd);

	assert_int_equal(rt_reopen(rt, NULL), STORE_OK);
}

static void
test_conf(void **state)
{
	struct daemon_conf	 conf;
	char			 err[512];
	const char		*ok =
	    "master_key_file /k\n"
	    "master_key_next_file /k2\n"
	    "backup_dir /var/backups/wfvault\n";
	const char		*cred =
	    "master_key_credential mk\n"
	    "master_key_next_credential mk-next\n";

	assert_int_equal(daemon_conf_load_buffer("t", ok, strlen(ok), &conf,
	    err, sizeof(err)), 0);
	assert_string_equal(conf.dc_master_key_next_file, "/k2");
	assert_string_equal(conf.dc_backup_dir, "/var/backups/wfvault");
	assert_true(keys_configured(&conf, KEYS_NEXT));
	daemon_conf_release(&conf);

	assert_int_equal(daemon_conf_load_buffer("t", cred, strlen(cred),
	    &conf, err, sizeof(err)), 0);
	assert_string_equal(conf.dc_master_key_next_credential, "mk-next");
	assert_null(conf.dc_backup_dir);
	daemon_conf_release(&conf);

	/* Errors. */
#define RT_BAD(text, want) do {						\
	assert_int_equal(daemon_conf_load_buffer("t", text, strlen(text),	\
	    &conf, err, sizeof(err)), -1);				\
	assert_non_null(strstr(err, want));				\
} while (0)
	RT_BAD("master_key_file /k\nbackup_dir relative/dir\n", "t:2:");
	RT_BAD("master_key_file /k\nmaster_key_next_file /k\n",
	    "another file");
	RT_BAD("master_key_credential a\nmaster_key_next_credential a\n",
	    "another credential");
	RT_BAD("master_key_file /k\nmaster_key_next_file /a\n"
	    "master_key_next_credential b\n", "only one of");
	RT_BAD("master_key_file /k\nmaster_key_next_credential a/b\n",
	    "t:2:");
	RT_BAD("master_key_file /k\nbackup_dir /a\nbackup_dir /b\n", "t:3:");
#undef RT_BAD
}

static void
test_backup_names(void **state)
{
	char	err[256];
	char	longname[PROTO_BACKUP_NAME_MAX + 2];

	assert_int_equal(proto_backup_name_valid("wfvault-1.mdb", err,
	    sizeof(err)), 0);
	assert_int_equal(proto_backup_name_valid("-x_y.Z", err, sizeof(err)),
	    0);
	assert_int_equal(proto_backup_name_valid("a/b", err, sizeof(err)),
	    -1);
	assert_int_equal(proto_backup_name_valid("..", err, sizeof(err)), -1);
	assert_int_equal(proto_backup_name_valid(".hidden", err, sizeof(err)),
	    -1);
	assert_int_equal(proto_backup_name_valid("", err, sizeof(err)), -1);
	assert_int_equal(proto_backup_name_valid("a b", err, sizeof(err)),
	    -1);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(proto_backup_name_valid(longname, err, sizeof(err)),
	    -1);
	longname[PROTO_BACKUP_NAME_MAX] = '\0';
	assert_int_equal(proto_backup_name_valid(longname, err, sizeof(err)),
	    0);
}

/* Stores tenants t-0000.. (field k = "v-I") in one transaction. */
static void
rt_load(struct test_store *rt, int n)
{
	json_t	*config;
	MDB_txn	*txn;
	uint64_t v, seq;
	char	 name[32], val[32];
	int	 i;

	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "t-%04d", i);
		snprintf(val, sizeof(val), "v-%d", i);
		config = json_pack("{s:s}", "k", val);
		assert_non_null(config);
		assert_int_equal(store_config_put(rt->ts_store, txn, name,
		    config, &v, &seq), STORE_OK);
		json_decref(config);
	}
	assert_int_equal(store_txn_commit(txn), STORE_OK);
}

/* Every tenant t-I of want (NULL: deleted) reads its value. */
static void
rt_check(struct test_store *rt, char **want, int n)
{
	char	name[32], text[64];
	int	i;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "t-%04d", i);
		if (want[i] == NULL) {
			assert_int_equal(rt_get(rt, name, 0, NULL),
			    STORE_E_NOT_FOUND);
			continue;
		}
		snprintf(text, sizeof(text), "{\"k\":\"%s\"}", want[i]);
		assert_int_equal(rt_get(rt, name, 0, text), STORE_OK);
	}
}

static char **
rt_want(int n)
{
	char	**want;
	int	  i;

	want = calloc(n, sizeof(*want));
	assert_non_null(want);
	for (i = 0; i < n; i++) {
		want[i] = malloc(32);
		assert_non_null(want[i]);
		snprintf(want[i], 32, "v-%d", i);
	}
	return want;
}

static void
rt_want_free(char **want, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		free(want[i]);
	free(want);
}

/* One step of the rotation, committed; 1 when it was the last. */
static int
rt_step(struct test_store *rt, char *pos, size_t limit, uint64_t *count)
{
	MDB_txn	*txn;
	int	 finished;

	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_rotate_step(rt->ts_store, txn, pos, limit,
	    count, &finished), STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	return finished;
}

/* Begins a rotation to a copy of mk (the store's from then on). */
static void
rt_rotate_begin(struct test_store *rt, const unsigned char *mk)
{
	unsigned char	*copy = rt_key_new();
	MDB_txn		*txn;

	memcpy(copy, mk, CRYPTO_KEY_BYTES);
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_rotate_begin(rt->ts_store, txn, copy),
	    STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	assert_int_equal(store_rotate_next_set(rt->ts_store, copy), STORE_OK);
	assert_true(store_rotating(rt->ts_store));
}

/* The rotation finished: the store switches keys, the test follows. */
static void
rt_rotate_end(struct test_store *rt, const unsigned char *mk)
{
	store_master_key_set(rt->ts_store,
	    (unsigned char *)store_next_key(rt->ts_store));
	assert_false(store_rotating(rt->ts_store));
	assert_null(store_next_key(rt->ts_store));
	/* The old key no longer opens the store, the new one does. */
	assert_int_equal(rt_reopen(rt, NULL), STORE_E_KEY);
	memcpy(rt->ts_mk, mk, CRYPTO_KEY_BYTES);
	assert_int_equal(rt_reopen(rt, NULL), STORE_OK);
	assert_false(store_rotating(rt->ts_store));
}

static void
rt_verify_all(struct test_store *rt)
{
	struct store_verify	 sv;
	MDB_txn			*txn;
	char			 err[512];

	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 0, &txn),
	    STORE_OK);
	assert_int_equal(store_verify(rt->ts_store, txn, &sv, err,
	    sizeof(err)), STORE_OK);
	store_txn_abort(txn);
}

/*
 * A rotation of many tenants in steps, with puts, deletes, new tenants and
 * a tenant key rotation between the steps: every tenant opens throughout.
 */
static void
test_rotate_steps(void **state)
{
	struct test_store	*rt = *state;
	char		**want, pos[PROTO_TENANT_MAX + 1] = "", name[32];
	char		 text[64];
	unsigned char	*mk2;
	MDB_txn		*txn;
	uint64_t	 count = 0, v, seq, n;
	int		 nt = 1000, step = 0, i, finished;

	rt_load(rt, nt);
	want = rt_want(nt);
	mk2 = rt_key_new();
	rt_rotate_begin(rt, mk2);
	rt_check(rt, want, nt);

	do {
		finished = rt_step(rt, pos, 64, &count);
		step++;
		/* Ahead of the walk and behind it, under either key. */
		for (i = 0; i < nt; i += 97) {
			if (want[i] == NULL)
				continue;
			snprintf(name, sizeof(name), "t-%04d", i);
			snprintf(want[i], 32, "s%d-%d", step, i);
			snprintf(text, sizeof(text), "{\"k\":\"%s\"}",
			    want[i]);
			rt_put(rt, name, text);
		}
		if (step == 3) {
			assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1,
			    &txn), STORE_OK);
			assert_int_equal(store_tenant_delete(rt->ts_store, txn,
			    "t-0500", &v, &seq), STORE_OK);
			assert_int_equal(store_tenant_delete(rt->ts_store, txn,
			    "t-0010", &v, &seq), STORE_OK);
			assert_int_equal(store_txn_commit(txn), STORE_OK);
			free(want[500]);
			free(want[10]);
			want[500] = want[10] = NULL;
		}
		if (step == 4) {
			/* Recreated behind the walk: under the next key. */
			rt_put(rt, "t-0010", "{\"k\":\"again\"}");
			want[10] = strdup("again");
			assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1,
			    &txn), STORE_OK);
			assert_int_equal(store_tenant_rekey(rt->ts_store, txn,
			    "t-0998", &n), STORE_OK);
			assert_int_equal(store_tenant_rekey(rt->ts_store, txn,
			    "t-0001", &n), STORE_OK);
			assert_int_equal(store_txn_commit(txn), STORE_OK);
		}
		/* New tenants on both sides of the walk. */
		snprintf(name, sizeof(name), "a-%d", step);
		rt_put(rt, name, "{\"n\":\"a\"}");
		snprintf(name, sizeof(name), "z-%d", step);
		rt_put(rt, name, "{\"n\":\"z\"}");
		rt_check(rt, want, nt);
		rt_verify_all(rt);
	} while (!finished);
	/* 1000 records and the new ones, 64 a step. */
	assert_true(step >= nt / 64);
	assert_true(count >= (uint64_t)nt - 1);

	rt_rotate_end(rt, mk2);
	rt_check(rt, want, nt);
	for (i = 1; i <= step; i++) {
		snprintf(name, sizeof(name), "a-%d", i);
		assert_int_equal(rt_get(rt, name, 0, "{\"n\":\"a\"}"),
		    STORE_OK);
		snprintf(name, sizeof(name), "z-%d", i);
		assert_int_equal(rt_get(rt, name, 0, "{\"n\":\"z\"}"),
		    STORE_OK);
	}
	/* Older versions too. */
	assert_int_equal(rt_get(rt, "t-0001", 1, "{\"k\":\"v-1\"}"),
	    STORE_OK);
	rt_verify_all(rt);

	/* A second rotation flips every record back: no clean-up pass. */
	memcpy(pos, "", 1);
	randombytes_buf(mk2, CRYPTO_KEY_BYTES);
	rt_rotate_begin(rt, mk2);
	count = 0;
	while (!rt_step(rt, pos, 300, &count))
		rt_check(rt, want, nt);
	rt_rotate_end(rt, mk2);
	rt_check(rt, want, nt);
	rt_verify_all(rt);
	crypto_key_free(mk2);
	rt_want_free(want, nt);
}

/*
 * The store closed in the middle of a rotation (a crash): it opens with
 * the current key, needs the next one for what was re-wrapped, refuses
 * any other, and the rotation finishes after the restart.
 */
static void
test_rotate_crash(void **state)
{
	struct test_store	*rt = *state;
	char		**want, pos[PROTO_TENANT_MAX + 1] = "";
	unsigned char	*mk2, *other, *copy;
	MDB_txn		*txn;
	uint64_t	 count = 0;
	int		 nt = 300;

	rt_load(rt, nt);
	want = rt_want(nt);
	mk2 = rt_key_new();
	rt_rotate_begin(rt, mk2);
	assert_false(rt_step(rt, pos, 50, &count));
	assert_false(rt_step(rt, pos, 50, &count));
	rt_put(rt, "new", "{\"n\":\"1\"}");

	/* "Crash": what is committed is all there is. */
	assert_int_equal(rt_reopen(rt, NULL), STORE_OK);
	assert_true(store_rotating(rt->ts_store));
	assert_null(store_next_key(rt->ts_store));
	/* Without the next key, what was re-wrapped does not open. */
	assert_int_equal(rt_get(rt, "t-0000", 0, NULL), STORE_E_INTEGRITY);
	assert_int_equal(rt_get(rt, "new", 0, NULL), STORE_E_INTEGRITY);
	assert_int_equal(rt_get(rt, "t-0299", 0, "{\"k\":\"v-299\"}"),
	    STORE_OK);
	/* Nor does a rotation to another key start over it. */
	other = rt_key_new();
	assert_int_equal(store_rotate_next_set(rt->ts_store, other),
	    STORE_E_KEY);
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_rotate_begin(rt->ts_store, txn, other),
	    STORE_E_KEY);
	store_txn_abort(txn);
	crypto_key_free(other);
	/* The next key opens everything again. */
	copy = rt_key_new();
	memcpy(copy, mk2, CRYPTO_KEY_BYTES);
	assert_int_equal(store_rotate_next_set(rt->ts_store, copy), STORE_OK);
	rt_check(rt, want, nt);
	assert_int_equal(rt_get(rt, "new", 0, "{\"n\":\"1\"}"), STORE_OK);
	rt_verify_all(rt);

	/* Resumed from the start, it skips what is done and finishes. */
	memcpy(pos, "", 1);
	count = 0;
	while (!rt_step(rt, pos, 64, &count))
		rt_check(rt, want, nt);
	assert_int_equal(count, nt + 1);
	rt_rotate_end(rt, mk2);
	rt_check(rt, want, nt);
	assert_int_equal(rt_get(rt, "new", 0, "{\"n\":\"1\"}"), STORE_OK);

	/* Crashed before the first step, or just after the last: fine. */
	randombytes_buf(mk2, CRYPTO_KEY_BYTES);
	rt_rotate_begin(rt, mk2);
	assert_int_equal(rt_reopen(rt, NULL), STORE_OK);
	assert_true(store_rotating(rt->ts_store));
	rt_check(rt, want, nt);
	crypto_key_free(mk2);
	rt_want_free(want, nt);
}

/*
 * keys_store_open on a store left mid-rotation: refused with only the
 * current key configured (the message says what to set), opened with
 * both, refused when the next key is another one; the offline mode
 * finishes it.
 */
static void
test_rotate_keys_conf(void **state)
{
	struct test_store		*rt = *state;
	struct daemon_conf	 conf;
	struct store_params	 sp;
	struct store		*store = NULL;
	unsigned char		*k1, *k2;
	char			 f1[1100], f2[1100], f3[1100], dir[1100];
	char			 sock[1100];
	char			 err[1024], pos[PROTO_TENANT_MAX + 1] = "";
	MDB_txn			*txn;
	uint64_t		 count = 0;
	int			 finished;

	snprintf(f1, sizeof(f1), "%s/k1", rt->ts_tmp);
	snprintf(f2, sizeof(f2), "%s/k2", rt->ts_tmp);
	snprintf(f3, sizeof(f3), "%s/k3", rt->ts_tmp);
	snprintf(dir, sizeof(dir), "%s/kdata", rt->ts_tmp);
	assert_int_equal(crypto_key_generate_file(f1, err, sizeof(err)), 0);
	assert_int_equal(crypto_key_generate_file(f2, err, sizeof(err)), 0);
	assert_int_equal(crypto_key_generate_file(f3, err, sizeof(err)), 0);
	memset(&conf, 0, sizeof(conf));
	snprintf(sock, sizeof(sock), "%s/nobody.sock", rt->ts_tmp);
	conf.dc_socket = sock;
	conf.dc_data_dir = dir;
	conf.dc_master_key_file = f1;
	conf.dc_map_size = TEST_STORE_MAP_SIZE;
	conf.dc_keep_versions = TEST_STORE_KEEP;
	memset(&sp, 0, sizeof(sp));
	sp.sp_dir = dir;
	sp.sp_map_size = TEST_STORE_MAP_SIZE;
	sp.sp_keep_versions = TEST_STORE_KEEP;

	/* A store with tenants, left with a rotation to k2 half done. */
	assert_int_equal(keys_store_open(&store, &sp, &conf, &k1, err,
	    sizeof(err)), STORE_OK);
	store_close(rt->ts_store);
	rt->ts_store = store;
	rt_load(rt, 100);
	assert_int_equal(keys_load(&conf, KEYS_CURRENT, &k2, err,
	    sizeof(err)), 0);
	crypto_key_free(k2);
	conf.dc_master_key_next_file = f2;
	assert_int_equal(keys_load(&conf, KEYS_NEXT, &k2, err, sizeof(err)),
	    0);
	assert_int_equal(store_txn_begin(store, NULL, 1, &txn), STORE_OK);
	assert_int_equal(store_rotate_begin(store, txn, k2), STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	assert_int_equal(store_rotate_next_set(store, k2), STORE_OK);
	assert_int_equal(store_txn_begin(store, NULL, 1, &txn), STORE_OK);
	assert_int_equal(store_rotate_step(store, txn, pos, 40, &count,
	    &finished), STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	assert_false(finished);
	store_close(store);
	rt->ts_store = store = NULL;
	crypto_key_free(k1);

	/* Only the current key: refused, naming what to configure. */
	conf.dc_master_key_next_file = NULL;
	assert_int_equal(keys_store_open(&store, &sp, &conf, &k1, err,
	    sizeof(err)), STORE_E_KEY);
	assert_null(store);
	assert_non_null(strstr(err, "rotation is under way"));
	assert_non_null(strstr(err, "master_key_next_file"));
	/* Another next key: refused too. */
	conf.dc_master_key_next_file = f3;
	assert_int_equal(keys_store_open(&store, &sp, &conf, &k1, err,
	    sizeof(err)), STORE_E_KEY);
	assert_non_null(strstr(err, "another key"));
	/* Both: every tenant opens. */
	conf.dc_master_key_next_file = f2;
	assert_int_equal(keys_store_open(&store, &sp, &conf, &k1, err,
	    sizeof(err)), STORE_OK);
	assert_true(store_rotating(store));
	assert_non_null(store_next_key(store));
	rt->ts_store = store;
	assert_int_equal(rt_get(rt, "t-0000", 0, "{\"k\":\"v-0\"}"),
	    STORE_OK);
	assert_int_equal(rt_get(rt, "t-0099", 0, "{\"k\":\"v-99\"}"),
	    STORE_OK);
	store_close(store);
	rt->ts_store = store = NULL;
	crypto_key_free(k1);

	/* The offline mode finishes it. */
	assert_int_equal(keys_rotate_offline(&conf), 0);
	conf.dc_master_key_file = f2;
	conf.dc_master_key_next_file = NULL;
	assert_int_equal(keys_store_open(&store, &sp, &conf, &k1, err,
	    sizeof(err)), STORE_OK);
	assert_false(store_rotating(store));
	rt->ts_store = store;
	assert_int_equal(rt_get(rt, "t-0000", 0, "{\"k\":\"v-0\"}"),
	    STORE_OK);
	assert_int_equal(rt_get(rt, "t-0099", 0, "{\"k\":\"v-99\"}"),
	    STORE_OK);
	rt_verify_all(rt);
	store_close(store);
	rt->ts_store = NULL;
	crypto_key_free(k1);
	assert_int_equal(rt_reopen(rt, NULL), STORE_OK);
}

/* One step of rk, committed; its done flag. */
static int
rt_rekey_step(struct test_store *rt, struct store_rekey *rk, size_t limit)
{
	MDB_txn	*txn;
	int	 done;

	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_rekey_step(rt->ts_store, txn, rk, limit,
	    &done), STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	return done;
}

static struct store_rekey *
rt_rekey_begin(struct test_store *rt, const char *tenant)
{
	struct store_rekey	*rk;
	MDB_txn			*txn;

	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_rekey_begin(rt->ts_store, txn, tenant, &rk),
	    STORE_OK);
	assert_int_equal(store_txn_commit(txn), STORE_OK);
	assert_string_equal(store_rekey_tenant(rk), tenant);
	return rk;
}

/*
 * A tenant key rotation in steps, each committed: every version reads
 * between the steps (under the old key or the new), puts meanwhile seal
 * under the new key, a crash leaves it resumable, and at the end the old
 * data key opens nothing.
 */
static void
test_rekey_steps(void **state)
{
	struct test_store		*rt = *state;
	struct rt_raw		 raw;
	struct store_rekey	*rk, *rk2;
	unsigned char		 oldrec[512], newrec[512], ct[256], key[160];
	unsigned char		 dek[CRYPTO_KEY_BYTES], plain[256], *mk2;
	char			 pos[PROTO_TENANT_MAX + 1] = "";
	MDB_txn			*txn;
	uint64_t		 v, seq, count = 0;
	size_t			 oldlen, newlen, klen, ctlen, plen;
	int			 done;

	rt_put(rt, "acme", "{\"k\":\"1\"}");
	rt_put(rt, "acme", "{\"k\":\"2\"}");
	rt_put(rt, "acme", "{\"k\":\"3\"}");
	rt_put(rt, "acme", "{\"k\":\"4\"}");	/* 1 pruned: 2, 3, 4 kept */
	rt_raw_open(rt, &raw);
	oldlen = rt_raw_get(&raw, "tenants", "acme", 4, oldrec,
	    sizeof(oldrec));
	rt_raw_close(rt, &raw);

	rk = rt_rekey_begin(rt, "acme");
	assert_false(rt_rekey_step(rt, rk, 1));
	/* Version 2 under the new key, 3 and 4 under the old. */
	assert_int_equal(rt_get(rt, "acme", 2, "{\"k\":\"2\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 3, "{\"k\":\"3\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 4, "{\"k\":\"4\"}"), STORE_OK);
	rt_verify_all(rt);
	/* A put meanwhile: sealed under the new key, 2 pruned. */
	rt_put(rt, "acme", "{\"k\":\"5\"}");
	assert_int_equal(rt_get(rt, "acme", 5, "{\"k\":\"5\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 2, NULL), STORE_E_NOT_FOUND);

	/* "Crash": the rotation is left under way, every version reads. */
	store_rekey_free(rk);
	assert_int_equal(rt_reopen(rt, NULL), STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 3, "{\"k\":\"3\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 5, "{\"k\":\"5\"}"), STORE_OK);
	rt_verify_all(rt);

	/* Begun again: the same new key; two requests at once both end. */
	rk = rt_rekey_begin(rt, "acme");
	rk2 = rt_rekey_begin(rt, "acme");
	while (!rt_rekey_step(rt, rk, 1))
		assert_int_equal(rt_get(rt, "acme", 4, "{\"k\":\"4\"}"),
		    STORE_OK);
	/* 3 and 4 (5 was sealed under the new key by its put). */
	assert_int_equal(store_rekey_count(rk), 2);
	assert_true(rt_rekey_step(rt, rk2, 1));
	assert_int_equal(store_rekey_count(rk2), 0);
	store_rekey_free(rk);
	store_rekey_free(rk2);
	assert_int_equal(rt_get(rt, "acme", 3, "{\"k\":\"3\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 4, "{\"k\":\"4\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 5, "{\"k\":\"5\"}"), STORE_OK);
	rt_verify_all(rt);

	/* One key in the record again; the old one opens no version. */
	rt_raw_open(rt, &raw);
	newlen = rt_raw_get(&raw, "tenants", "acme", 4, newrec,
	    sizeof(newrec));
	klen = test_store_vkey("acme", 3, key);
	ctlen = rt_raw_get(&raw, "versions", key, klen, ct, sizeof(ct));
	rt_raw_close(rt, &raw);
	assert_int_equal(newlen, oldlen);
	assert_int_equal(newrec[1], oldrec[1]);
	assert_int_equal(crypto_dek_unwrap(rt->ts_mk, "acme",
	    oldrec + RT_REC_HEAD, CRYPTO_WRAPPED_BYTES, dek), CRYPTO_OK);
	assert_int_equal(crypto_open(dek, "acme", 3, ct, ctlen, plain, &plen),
	    CRYPTO_INTEGRITY);
	assert_int_equal(crypto_dek_unwrap(rt->ts_mk, "acme",
	    newrec + RT_REC_HEAD, CRYPTO_WRAPPED_BYTES, dek), CRYPTO_OK);
	assert_int_equal(crypto_open(dek, "acme", 3, ct, ctlen, plain, &plen),
	    CRYPTO_OK);
	sodium_memzero(dek, sizeof(dek));

	/* Deleted meanwhile: the rotation ends with not found. */
	rt_put(rt, "beta", "{\"b\":\"1\"}");
	rk = rt_rekey_begin(rt, "beta");
	assert_int_equal(store_txn_begin(rt->ts_store, NULL, 1, &txn),
	    STORE_OK);
	assert_int_equal(store_tenant_delete(rt->ts_store, txn, "beta", &v,
	    &seq), STORE_OK);
	assert_int_equal(store_rekey_step(rt->ts_store, txn, rk, 1, &done),
	    STORE_E_NOT_FOUND);
	store_txn_abort(txn);
	store_rekey_free(rk);
	rt_verify_all(rt);

	/*
	 * A master key rotation over a tenant key rotation under way: both
	 * of the record's data keys move to the new master key.
	 */
	rt_put(rt, "gamma", "{\"g\":\"1\"}");
	rt_put(rt, "gamma", "{\"g\":\"2\"}");
	rk = rt_rekey_begin(rt, "gamma");
	assert_false(rt_rekey_step(rt, rk, 1));
	rt_put(rt, "gamma", "{\"g\":\"3\"}");
	mk2 = rt_key_new();
	rt_rotate_begin(rt, mk2);
	while (!rt_step(rt, pos, 1, &count))
		assert_int_equal(rt_get(rt, "gamma", 1, "{\"g\":\"1\"}"),
		    STORE_OK);
	assert_true(rt_rekey_step(rt, rk, 10));
	store_rekey_free(rk);
	rt_rotate_end(rt, mk2);
	assert_int_equal(rt_get(rt, "gamma", 2, "{\"g\":\"2\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "gamma", 3, "{\"g\":\"3\"}"), STORE_OK);
	assert_int_equal(rt_get(rt, "acme", 5, "{\"k\":\"5\"}"), STORE_OK);
	rt_verify_all(rt);
	crypto_key_free(mk2);
}

struct rt_rot {
	struct rotate_result	rr_res;
	int			rr_calls;
};

static void
rt_rotate_done(struct server *srv, void *arg, const struct rotate_result *res)
{
	struct rt_rot	*rr = arg;

	rr->rr_res = *res;
	rr->rr_calls++;
}

/*
 * rotate.c's steps on a real event loop: with 10 tenants a step, a
 * rotation of 300 takes at least 30 loop turns, and between them every
 * tenant reads and new ones are written; a tenant key rotation interleaves
 * with writes to its tenant.
 */
static void
test_rotate_loop(void **state)
{
	struct test_store	*rt = *state;
	struct server	 srv;
	struct rt_rot	 master, tenant;
	char		**want, err[512], name[32], text[64];
	unsigned char	*mk2, *copy;
	int		 nt = 300, turns = 0;

	rt_load(rt, nt);
	want = rt_want(nt);
	memset(&srv, 0, sizeof(srv));
	memset(&master, 0, sizeof(master));
	memset(&tenant, 0, sizeof(tenant));
	srv.srv_store = rt->ts_store;
	srv.srv_base = event_base_new();
	assert_non_null(srv.srv_base);
	setenv("WFVAULTD_TEST_ROTATE_BATCH", "10", 1);

	/* No rotation was left under way: nothing to resume. */
	assert_int_equal(rotate_master_start(&srv, NULL, rt_rotate_done,
	    &master, err, sizeof(err)), -1);
	mk2 = rt_key_new();
	copy = rt_key_new();
	memcpy(copy, mk2, CRYPTO_KEY_BYTES);
	assert_int_equal(rotate_master_start(&srv, copy, rt_rotate_done,
	    &master, err, sizeof(err)), 0);
	assert_true(rotate_running(&srv));
	assert_int_equal(rotate_tenant_start(&srv, "t-0005", rt_rotate_done,
	    &tenant), STORE_OK);
	assert_int_equal(rotate_tenant_start(&srv, "nobody", rt_rotate_done,
	    &tenant), STORE_E_NOT_FOUND);
	while (master.rr_calls == 0 || tenant.rr_calls == 0) {
		assert_int_equal(event_base_loop(srv.srv_base, EVLOOP_ONCE),
		    0);
		turns++;
		/* Between steps: the tenant being rekeyed written. */
		if (turns <= 2) {
			snprintf(want[5], 32, "w%d", turns);
			snprintf(text, sizeof(text), "{\"k\":\"%s\"}",
			    want[5]);
			rt_put(rt, "t-0005", text);
		}
		snprintf(name, sizeof(name), "n-%d", turns);
		rt_put(rt, name, "{\"n\":\"1\"}");
		rt_check(rt, want, nt);
	}
	assert_true(turns >= nt / 10);
	assert_int_equal(master.rr_calls, 1);
	assert_int_equal(master.rr_res.rr_store, STORE_OK);
	assert_true(master.rr_res.rr_count >= (uint64_t)nt);
	assert_int_equal(tenant.rr_calls, 1);
	assert_int_equal(tenant.rr_res.rr_store, STORE_OK);
	/* Version 1; those put meanwhile were sealed under the new key. */
	assert_int_equal(tenant.rr_res.rr_count, 1);
	assert_false(rotate_running(&srv));
	assert_false(store_rotating(rt->ts_store));
	rt_check(rt, want, nt);
	rotate_release(&srv);
	event_base_free(srv.srv_base);
	unsetenv("WFVAULTD_TEST_ROTATE_BATCH");

	/* The store is sealed with mk2 now. */
	assert_int_equal(rt_reopen(rt, NULL), STORE_E_KEY);
	memcpy(rt->ts_mk, mk2, CRYPTO_KEY_BYTES);
	assert_int_equal(rt_reopen(rt, NULL), STORE_OK);
	rt_check(rt, want, nt);
	rt_verify_all(rt);
	crypto_key_free(mk2);
	rt_want_free(want, nt);
}

#define RT_TEST(f) cmocka_unit_test_setup_teardown(f, test_store_setup, \
    test_store_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		RT_TEST(test_rewrap),
		RT_TEST(test_rewrap_tampered),
		RT_TEST(test_rekey),
		RT_TEST(test_purge),
		RT_TEST(test_copy_verify),
		RT_TEST(test_verify_orphan),
		RT_TEST(test_backup_thread),
		RT_TEST(test_exclusive),
		RT_TEST(test_rotate_steps),
		RT_TEST(test_rotate_crash),
		RT_TEST(test_rotate_keys_conf),
		RT_TEST(test_rekey_steps),
		RT_TEST(test_rotate_loop),
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_backup_names),
	};

	proto_json_init();
	log_init("test_rotate", 0);
	signal(SIGPIPE, SIG_IGN);
	if (crypto_init(NULL, 0) == -1)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
