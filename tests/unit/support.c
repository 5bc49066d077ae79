/*
 * The helpers of support.h, shared by the unit tests so each fixture and
 * each check of an example config is written once.
 */
#include <sys/stat.h>

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "support.h"

int
test_tmpdir(char *buf, size_t len, const char *tag)
{
	const char	*tmp;
	int		 n;

	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	n = snprintf(buf, len, "%s/wfvault-%s-XXXXXX", tmp, tag);
	if (n < 0 || (size_t)n >= len || mkdtemp(buf) == NULL) {
		if (len > 0)
			buf[0] = '\0';
		return -1;
	}
	return 0;
}

static int
test_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
test_rmtree(const char *path)
{
	nftw(path, test_rm, 16, FTW_DEPTH | FTW_PHYS);
}

int
test_store_setup(void **state)
{
	struct test_store	*ts;
	char			 err[512];

	if ((ts = calloc(1, sizeof(*ts))) == NULL)
		return -1;
	if (test_tmpdir(ts->ts_tmp, sizeof(ts->ts_tmp), "store") == -1)
		goto fail;
	/* The store creates its data_dir itself. */
	snprintf(ts->ts_dir, sizeof(ts->ts_dir), "%s/data", ts->ts_tmp);
	if ((ts->ts_mk = crypto_key_alloc()) == NULL)
		goto fail;
	randombytes_buf(ts->ts_mk, CRYPTO_KEY_BYTES);
	ts->ts_params.sp_dir = ts->ts_dir;
	ts->ts_params.sp_map_size = TEST_STORE_MAP_SIZE;
	ts->ts_params.sp_keep_versions = TEST_STORE_KEEP;
	ts->ts_params.sp_max_readers = 0;
	if (store_open(&ts->ts_store, &ts->ts_params, ts->ts_mk, err,
	    sizeof(err)) != STORE_OK) {
		fprintf(stderr, "store_open: %s\n", err);
		goto fail;
	}
	*state = ts;
	return 0;
fail:
	if (ts->ts_tmp[0] != '\0')
		test_rmtree(ts->ts_tmp);
	crypto_key_free(ts->ts_mk);
	free(ts);
	return -1;
}

int
test_store_teardown(void **state)
{
	struct test_store	*ts = *state;

	store_close(ts->ts_store);
	test_rmtree(ts->ts_tmp);
	crypto_key_free(ts->ts_mk);
	free(ts);
	return 0;
}

int
test_store_reopen(struct test_store *ts, const unsigned char *mk, char *err,
    size_t errlen)
{
	store_close(ts->ts_store);
	ts->ts_store = NULL;
	return store_open(&ts->ts_store, &ts->ts_params,
	    mk != NULL ? mk : ts->ts_mk, err, errlen);
}

int
test_store_get(struct test_store *ts, const char *tenant, uint64_t version,
    const char *want, uint64_t *got_version)
{
	json_t	*config = NULL;
	MDB_txn	*txn;
	char	*text;
	int	 rc;

	assert_int_equal(store_txn_begin(ts->ts_store, NULL, 0, &txn),
	    STORE_OK);
	rc = store_config_get(ts->ts_store, txn, tenant, version, &config,
	    got_version);
	store_txn_abort(txn);
	if (rc != STORE_OK) {
		assert_null(config);
		return rc;
	}
	assert_true(json_is_object(config));
	if (want != NULL) {
		text = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
		assert_non_null(text);
		assert_string_equal(text, want);
		free(text);
	}
	json_decref(config);
	return STORE_OK;
}

size_t
test_store_vkey(const char *tenant, uint64_t version, unsigned char *buf)
{
	size_t	 tlen = strlen(tenant);
	int	 i;

	memcpy(buf, tenant, tlen);
	buf[tlen] = '\0';
	for (i = 0; i < 8; i++)
		buf[tlen + 1 + i] = (unsigned char)(version >> (56 - 8 * i));
	return tlen + 9;
}

void
test_store_raw_open(struct test_store *ts, MDB_env **env, MDB_txn **txn)
{
	store_close(ts->ts_store);
	ts->ts_store = NULL;
	assert_int_equal(mdb_env_create(env), 0);
	assert_int_equal(mdb_env_set_maxdbs(*env, 8), 0);
	assert_int_equal(mdb_env_open(*env, ts->ts_dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(*env, NULL, 0, txn), 0);
}

void
test_store_raw_close(struct test_store *ts, MDB_env *env, MDB_txn *txn)
{
	char	 err[512];

	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	if (test_store_reopen(ts, NULL, err, sizeof(err)) != STORE_OK)
		fail_msg("store_open: %s", err);
}

void
test_source_path(const char *rel, char *buf, size_t len)
{
	const char	*me = __FILE__, *top;
	const char	*tail = "tests/unit/support.c";
	size_t		 n = strlen(me), t = strlen(tail);

	if ((top = getenv("WFVAULT_SRCDIR")) != NULL && *top != '\0')
		snprintf(buf, len, "%s/%s", top, rel);
	else if (n >= t && strcmp(me + n - t, tail) == 0)
		snprintf(buf, len, "%.*s%s", (int)(n - t), me, rel);
	else
		snprintf(buf, len, "%s", rel);
}

size_t
test_example_lines(const char *path,
    void (*check)(const char *line, void *arg), void *arg)
{
	char	 line[1024];
	FILE	*f;
	size_t	 checked = 0;

	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] != '#' || line[1] < 'a' || line[1] > 'z' ||
		    strchr(line, '\t') == NULL)
			continue;
		check(line, arg);
		checked++;
	}
	fclose(f);
	return checked;
}
