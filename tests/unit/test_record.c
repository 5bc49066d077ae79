/*
 * Unit tests of daemon/record.c, the store's record codec, on bytes
 * alone: round trips, flags, and truncated or garbage input refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store_priv.h"

/* A live record with two names, under key generation 1. */
static void
tr_live(MDB_val *out, const unsigned char *wrapped,
    const unsigned char *pending)
{
	struct store_rec	 rec;
	const char		*names[] = { "a", "bb" };

	memset(&rec, 0, sizeof(rec));
	rec.sr_keygen = 1;
	rec.sr_version = 7;
	rec.sr_created = 1000;
	rec.sr_updated = 2000;
	assert_int_equal(record_tenant_encode(&rec, wrapped, pending, names,
	    2, out), STORE_OK);
}

static void
test_be64(void **state)
{
	unsigned char	 b[8];
	const unsigned char want[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	(void)state;
	record_be64_put(b, 0x0102030405060708ULL);
	assert_memory_equal(b, want, sizeof(b));
	assert_true(record_be64_get(b) == 0x0102030405060708ULL);
	record_be64_put(b, UINT64_MAX);
	assert_true(record_be64_get(b) == UINT64_MAX);
}

static void
test_tenant_roundtrip(void **state)
{
	unsigned char		 w[CRYPTO_WRAPPED_BYTES];
	struct store_rec	 rec;
	MDB_val			 val;
	json_t			*f;

	(void)state;
	memset(w, 0xa5, sizeof(w));
	tr_live(&val, w, NULL);
	assert_int_equal(val.mv_size, STORE_REC_HEAD + CRYPTO_WRAPPED_BYTES +
	    2 + 3);
	assert_int_equal(((unsigned char *)val.mv_data)[1], STORE_REC_KEYGEN);
	assert_int_equal(record_tenant_decode(&val, &rec), STORE_OK);
	assert_false(rec.sr_deleted);
	assert_true(rec.sr_keygen);
	assert_true(rec.sr_version == 7);
	assert_true(rec.sr_created == 1000);
	assert_true(rec.sr_updated == 2000);
	assert_non_null(rec.sr_wrapped);
	assert_memory_equal(rec.sr_wrapped, w, sizeof(w));
	assert_null(rec.sr_pending);
	assert_non_null(f = record_fields_json(&rec));
	assert_int_equal(json_array_size(f), 2);
	assert_string_equal(json_string_value(json_array_get(f, 0)), "a");
	assert_string_equal(json_string_value(json_array_get(f, 1)), "bb");
	json_decref(f);
	free(val.mv_data);
}

static void
test_tenant_rekey_flag(void **state)
{
	unsigned char		 w[CRYPTO_WRAPPED_BYTES];
	unsigned char		 p[CRYPTO_WRAPPED_BYTES];
	struct store_rec	 rec;
	MDB_val			 val;

	(void)state;
	memset(w, 0x11, sizeof(w));
	memset(p, 0x22, sizeof(p));
	tr_live(&val, w, p);
	assert_int_equal(((unsigned char *)val.mv_data)[1],
	    STORE_REC_KEYGEN | STORE_REC_REKEY);
	assert_int_equal(record_tenant_decode(&val, &rec), STORE_OK);
	assert_memory_equal(rec.sr_wrapped, w, sizeof(w));
	assert_non_null(rec.sr_pending);
	assert_memory_equal(rec.sr_pending, p, sizeof(p));
	assert_int_equal(rec.sr_fieldslen, 5);
	free(val.mv_data);
}

static void
test_tenant_deleted(void **state)
{
	struct store_rec	 rec, out;
	MDB_val			 val;

	(void)state;
	memset(&rec, 0, sizeof(rec));
	rec.sr_deleted = 1;
	rec.sr_keygen = 1;	/* no key: no generation either */
	rec.sr_version = 9;
	assert_int_equal(record_tenant_encode(&rec, NULL, NULL, NULL, 0,
	    &val), STORE_OK);
	assert_int_equal(val.mv_size, STORE_REC_HEAD);
	assert_int_equal(((unsigned char *)val.mv_data)[1], STORE_REC_DELETED);
	assert_int_equal(record_tenant_decode(&val, &out), STORE_OK);
	assert_true(out.sr_deleted);
	assert_null(out.sr_wrapped);
	assert_null(out.sr_pending);
	assert_true(out.sr_version == 9);
	assert_int_equal(out.sr_fieldslen, 0);
	free(val.mv_data);
}

static void
test_tenant_truncated(void **state)
{
	unsigned char		 w[CRYPTO_WRAPPED_BYTES];
	struct store_rec	 rec;
	MDB_val			 val, cut;
	size_t			 n;

	(void)state;
	memset(w, 0x5a, sizeof(w));
	tr_live(&val, w, w);
	cut.mv_data = val.mv_data;
	for (n = 0; n < val.mv_size; n++) {
		cut.mv_size = n;
		/* A cut right after a name's NUL is a shorter, valid list. */
		if (n == STORE_REC_HEAD + 2 * CRYPTO_WRAPPED_BYTES ||
		    n == STORE_REC_HEAD + 2 * CRYPTO_WRAPPED_BYTES + 2)
			assert_int_equal(record_tenant_decode(&cut, &rec),
			    STORE_OK);
		else
			assert_int_equal(record_tenant_decode(&cut, &rec),
			    STORE_E_INTEGRITY);
	}
	free(val.mv_data);
}

static void
test_tenant_garbage(void **state)
{
	unsigned char		 w[CRYPTO_WRAPPED_BYTES];
	struct store_rec	 rec;
	unsigned char		*b;
	MDB_val			 val;

	(void)state;
	memset(w, 0x33, sizeof(w));
	tr_live(&val, w, NULL);
	b = val.mv_data;
	b[0] = STORE_REC_FORMAT + 1;		/* unknown format */
	assert_int_equal(record_tenant_decode(&val, &rec), STORE_E_INTEGRITY);
	b[0] = STORE_REC_FORMAT;
	b[1] = 0x08;				/* unknown flag */
	assert_int_equal(record_tenant_decode(&val, &rec), STORE_E_INTEGRITY);
	b[1] = STORE_REC_DELETED | STORE_REC_REKEY;
	assert_int_equal(record_tenant_decode(&val, &rec), STORE_E_INTEGRITY);
	/* REKEY says a second key follows: the names are too short for it. */
	b[1] = STORE_REC_REKEY;
	assert_int_equal(record_tenant_decode(&val, &rec), STORE_E_INTEGRITY);
	b[1] = 0;
	b[val.mv_size - 1] = 'x';		/* the last name unterminated */
	assert_int_equal(record_tenant_decode(&val, &rec), STORE_E_INTEGRITY);
	b[val.mv_size - 1] = '\0';
	assert_int_equal(record_tenant_decode(&val, &rec), STORE_OK);
	assert_false(rec.sr_keygen);
	free(val.mv_data);
}

static void
test_tenant_rewrite(void **state)
{
	unsigned char		 w[CRYPTO_WRAPPED_BYTES];
	unsigned char		 w2[CRYPTO_WRAPPED_BYTES];
	unsigned char		 p2[CRYPTO_WRAPPED_BYTES];
	struct store_rec	 rec, out;
	MDB_val			 val, nval, n2;

	(void)state;
	memset(w, 1, sizeof(w));
	memset(w2, 2, sizeof(w2));
	memset(p2, 3, sizeof(p2));
	tr_live(&val, w, NULL);
	assert_int_equal(record_tenant_decode(&val, &rec), STORE_OK);
	/* Generation 0 now, with a pending key: numbers and names kept. */
	assert_int_equal(record_tenant_rewrite(&val, &rec, 0, w2, p2, &nval),
	    STORE_OK);
	assert_int_equal(record_tenant_decode(&nval, &out), STORE_OK);
	assert_false(out.sr_keygen);
	assert_true(out.sr_version == 7 && out.sr_created == 1000 &&
	    out.sr_updated == 2000);
	assert_memory_equal(out.sr_wrapped, w2, sizeof(w2));
	assert_memory_equal(out.sr_pending, p2, sizeof(p2));
	assert_int_equal(out.sr_fieldslen, rec.sr_fieldslen);
	assert_memory_equal(out.sr_fields, "a\0bb\0", 5);
	/* And back: no pending key, generation 1, the REKEY flag gone. */
	assert_int_equal(record_tenant_rewrite(&nval, &out, STORE_REC_KEYGEN,
	    w, NULL, &n2), STORE_OK);
	assert_int_equal(n2.mv_size, val.mv_size);
	assert_memory_equal(n2.mv_data, val.mv_data, val.mv_size);
	free(n2.mv_data);
	free(nval.mv_data);
	free(val.mv_data);
}

static void
test_fields_match(void **state)
{
	unsigned char		 w[CRYPTO_WRAPPED_BYTES];
	struct store_rec	 rec;
	const char		**keys;
	size_t			 n;
	MDB_val			 val;
	json_t			*c;

	(void)state;
	memset(w, 0, sizeof(w));
	tr_live(&val, w, NULL);
	assert_int_equal(record_tenant_decode(&val, &rec), STORE_OK);
	c = json_pack("{s:i, s:i}", "bb", 1, "a", 2);
	assert_non_null(c);
	assert_int_equal(record_config_keys(c, &keys, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(keys[0], "a");
	assert_string_equal(keys[1], "bb");
	free(keys);
	assert_true(record_fields_match(&rec, c));
	json_object_set_new(c, "c", json_integer(3));
	assert_false(record_fields_match(&rec, c));
	json_object_del(c, "c");
	json_object_del(c, "bb");
	assert_false(record_fields_match(&rec, c));
	/* The integrations member is versioned data, not a field name. */
	json_object_set_new(c, "bb", json_integer(1));
	json_object_set_new(c, STORE_INTEGRATIONS, json_pack("[s]", "openai"));
	assert_int_equal(record_config_keys(c, &keys, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(keys[0], "a");
	assert_string_equal(keys[1], "bb");
	free(keys);
	assert_true(record_fields_match(&rec, c));
	json_decref(c);
	c = json_pack("{s:[s]}", STORE_INTEGRATIONS, "openai");
	assert_int_equal(record_config_keys(c, &keys, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_null(keys);
	json_decref(c);
	free(val.mv_data);
}

static void
test_vkey(void **state)
{
	unsigned char	 k[STORE_VKEY_MAX + 1];
	char		 long_name[PROTO_TENANT_MAX + 2];
	uint64_t	 v;
	size_t		 tlen;
	MDB_val		 key;

	(void)state;
	key.mv_data = k;
	key.mv_size = record_vkey("ab", 2, 42, k);
	assert_int_equal(key.mv_size, 2 + 1 + 8);
	assert_int_equal(record_vkey_decode(&key, &tlen, &v), 0);
	assert_int_equal(tlen, 2);
	assert_true(v == 42);
	assert_int_equal(record_vkey_match(&key, "ab", 2, &v), 1);
	assert_true(v == 42);
	/* A tenant whose id is a prefix of this one's is another tenant. */
	assert_int_equal(record_vkey_match(&key, "a", 1, &v), 0);
	assert_int_equal(record_vkey_match(&key, "abc", 3, &v), 0);
	key.mv_size--;				/* the version cut short */
	assert_int_equal(record_vkey_decode(&key, &tlen, &v), -1);
	assert_int_equal(record_vkey_match(&key, "ab", 2, &v), 0);
	memset(k, 'x', sizeof(k));		/* no NUL at all */
	key.mv_size = sizeof(k);
	assert_int_equal(record_vkey_decode(&key, &tlen, &v), -1);
	k[0] = '\0';				/* an empty tenant id */
	key.mv_size = 1 + 8;
	assert_int_equal(record_vkey_decode(&key, &tlen, &v), -1);
	memset(long_name, 'y', sizeof(long_name));
	long_name[PROTO_TENANT_MAX + 1] = '\0';
	{
		unsigned char	 big[PROTO_TENANT_MAX + 2 + 8];

		memcpy(big, long_name, PROTO_TENANT_MAX + 1);
		big[PROTO_TENANT_MAX + 1] = '\0';
		key.mv_data = big;
		key.mv_size = sizeof(big);
		assert_int_equal(record_vkey_decode(&key, &tlen, &v), -1);
	}
}

static void
test_change(void **state)
{
	unsigned char	 kb[9], vb[STORE_CHANGE_MAX + 1];
	const char	*t;
	uint64_t	 seq, version;
	size_t		 tlen;
	int		 op;
	MDB_val		 key, val;

	(void)state;
	record_be64_put(kb, 5);
	key.mv_data = kb;
	key.mv_size = 8;
	val.mv_data = vb;
	val.mv_size = record_change_encode(vb, STORE_OP_DELETE, 3, "acme", 4);
	assert_int_equal(val.mv_size, STORE_CHANGE_HEAD + 4);
	assert_int_equal(record_change_decode(&key, &val, &seq, &op, &version,
	    &t, &tlen), 0);
	assert_true(seq == 5);
	assert_int_equal(op, STORE_OP_DELETE);
	assert_true(version == 3);
	assert_int_equal(tlen, 4);
	assert_memory_equal(t, "acme", 4);
	key.mv_size = 9;			/* a seq is 8 bytes */
	assert_int_equal(record_change_decode(&key, &val, &seq, &op, &version,
	    &t, &tlen), -1);
	key.mv_size = 8;
	val.mv_size = STORE_CHANGE_HEAD;	/* no tenant */
	assert_int_equal(record_change_decode(&key, &val, &seq, &op, &version,
	    &t, &tlen), -1);
	val.mv_size = STORE_CHANGE_MAX + 1;	/* a tenant id too long */
	assert_int_equal(record_change_decode(&key, &val, &seq, &op, &version,
	    &t, &tlen), -1);
}

static void
test_names(void **state)
{
	char	 name[PROTO_TENANT_MAX + 1];
	char	 big[PROTO_TENANT_MAX + 2];
	size_t	 len;
	MDB_val	 key;

	(void)state;
	assert_int_equal(record_name_len("acme", &len), 0);
	assert_int_equal(len, 4);
	assert_int_equal(record_name_len("", &len), -1);
	assert_int_equal(record_name_len(NULL, &len), -1);
	memset(big, 'z', sizeof(big));
	big[PROTO_TENANT_MAX + 1] = '\0';
	assert_int_equal(record_name_len(big, &len), -1);
	big[PROTO_TENANT_MAX] = '\0';
	assert_int_equal(record_name_len(big, &len), 0);

	key.mv_data = "acme";
	key.mv_size = 4;
	assert_int_equal(record_key_name(&key, name), 0);
	assert_string_equal(name, "acme");
	key.mv_data = "ac\0me";
	key.mv_size = 5;
	assert_int_equal(record_key_name(&key, name), -1);
	key.mv_size = 0;
	assert_int_equal(record_key_name(&key, name), -1);
	big[PROTO_TENANT_MAX] = 'z';
	key.mv_data = big;
	key.mv_size = PROTO_TENANT_MAX + 1;
	assert_int_equal(record_key_name(&key, name), -1);
}

static void
test_format(void **state)
{
	unsigned char	 b[5];
	uint32_t	 f;
	MDB_val		 val;

	(void)state;
	record_format_put(b, 0x01020304);
	val.mv_data = b;
	val.mv_size = 4;
	assert_int_equal(record_format_get(&val, &f), 0);
	assert_true(f == 0x01020304);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[3], 4);
	val.mv_size = 5;
	assert_int_equal(record_format_get(&val, &f), -1);
	val.mv_size = 3;
	assert_int_equal(record_format_get(&val, &f), -1);
}

int
main(void)
{
	const struct CMUnitTest	 tests[] = {
		cmocka_unit_test(test_be64),
		cmocka_unit_test(test_tenant_roundtrip),
		cmocka_unit_test(test_tenant_rekey_flag),
		cmocka_unit_test(test_tenant_deleted),
		cmocka_unit_test(test_tenant_truncated),
		cmocka_unit_test(test_tenant_garbage),
		cmocka_unit_test(test_tenant_rewrite),
		cmocka_unit_test(test_fields_match),
		cmocka_unit_test(test_vkey),
		cmocka_unit_test(test_change),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
