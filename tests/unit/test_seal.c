/*
 * Unit tests of sealed values (sync/seal.c): the known-answer vector the
 * Worker module's tests share (tests/worker/test_edge.mjs), the binding of
 * the tenant id and version, the key id, and the key file.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "proto.h"
#include "sync.h"

/*
 * The shared vector: key bytes 0..31, nonce a0..ab, tenant "acme",
 * version 7.  The same numbers are in tests/worker/test_edge.mjs; the
 * ciphertext was computed apart from this code (node's crypto).
 */
#define KAT_TENANT	"acme"
#define KAT_VERSION	7
#define KAT_PLAIN	"{\"anthropic_api_key\":\"sk-ant-test-0001\"," \
			"\"openai_api_key\":\"sk-test-0001\"}"
#define KAT_KID		"d2041b96f9199aea"
#define KAT_NONCE	"oKGio6Slpqeoqaqr"
#define KAT_CT		"nTodQzGjcNASDOSMZgqpgRvJIDKolTEHsW9I8lLfEHKmW3fPnxNxEX" \
			"3zdK1nG+qmJmsvFwm1Y1x7fHg1iQTgw8CRtV8AlMadoiFHobIIAxzx" \
			"4eRg74brng=="

static int
setup(void **state)
{
	char	err[256];

	(void)state;
	proto_json_init();
	if (seal_init(err, sizeof(err)) == -1) {
		/* Only where AES-NI is missing: say so rather than fail. */
		fprintf(stderr, "# %s\n", err);
		return -1;
	}
	return 0;
}

static void
kat_key(unsigned char *key)
{
	int	i;

	for (i = 0; i < SYNC_SEAL_KEY_LEN; i++)
		key[i] = (unsigned char)i;
}

static void
kat_nonce(unsigned char *nonce)
{
	int	i;

	for (i = 0; i < SEAL_NONCE_LEN; i++)
		nonce[i] = (unsigned char)(0xa0 + i);
}

static json_t *
kat_config(void)
{
	json_t	*c;

	/* Out of order on purpose: the plaintext has sorted keys. */
	c = json_pack("{s:s,s:s}", "openai_api_key", "sk-test-0001",
	    "anthropic_api_key", "sk-ant-test-0001");
	assert_non_null(c);
	return c;
}

static void
test_known_answer(void **state)
{
	unsigned char	 key[SYNC_SEAL_KEY_LEN], nonce[SEAL_NONCE_LEN];
	json_t		*cfg, *env;
	char		*plain;

	(void)state;
	kat_key(key);
	kat_nonce(nonce);
	cfg = kat_config();
	env = seal_config_nonce(key, KAT_TENANT, KAT_VERSION, cfg, nonce);
	assert_non_null(env);
	assert_int_equal(json_integer_value(json_object_get(env,
	    "wfvault_sealed")), 1);
	assert_string_equal(json_string_value(json_object_get(env, "kid")),
	    KAT_KID);
	assert_int_equal(json_integer_value(json_object_get(env, "v")),
	    KAT_VERSION);
	assert_string_equal(json_string_value(json_object_get(env, "nonce")),
	    KAT_NONCE);
	assert_string_equal(json_string_value(json_object_get(env, "ct")),
	    KAT_CT);
	assert_int_equal(json_object_size(env), 5);
	assert_int_equal(seal_open(key, KAT_TENANT, KAT_VERSION, env, &plain),
	    0);
	assert_string_equal(plain, KAT_PLAIN);
	proto_wipe_free(plain);
	json_decref(env);
	json_decref(cfg);
}

static void
test_key_id(void **state)
{
	unsigned char	key[SYNC_SEAL_KEY_LEN];
	char		kid[SEAL_KID_LEN + 1];

	(void)state;
	kat_key(key);
	seal_key_id(key, kid);
	assert_string_equal(kid, KAT_KID);
	key[31] ^= 1;
	seal_key_id(key, kid);
	assert_string_not_equal(kid, KAT_KID);
}

/* A value moved to another tenant or version, or under another key. */
static void
test_binding(void **state)
{
	unsigned char	 key[SYNC_SEAL_KEY_LEN], other[SYNC_SEAL_KEY_LEN];
	json_t		*cfg, *env, *forged;
	char		*plain;

	(void)state;
	kat_key(key);
	cfg = kat_config();
	env = seal_config(key, KAT_TENANT, KAT_VERSION, cfg);
	assert_non_null(env);
	assert_int_equal(seal_open(key, KAT_TENANT, KAT_VERSION, env, &plain),
	    0);
	assert_string_equal(plain, KAT_PLAIN);
	proto_wipe_free(plain);

	assert_int_equal(seal_open(key, "globex", KAT_VERSION, env, &plain),
	    -1);
	assert_null(plain);
	assert_int_equal(seal_open(key, "acm", KAT_VERSION, env, &plain), -1);
	assert_int_equal(seal_open(key, KAT_TENANT, KAT_VERSION + 1, env,
	    &plain), -1);
	assert_int_equal(seal_open(key, KAT_TENANT, 70, env, &plain), -1);

	/* Another key: its id differs, and forging the id does not help. */
	memcpy(other, key, sizeof(other));
	other[0] ^= 0x80;
	assert_int_equal(seal_open(other, KAT_TENANT, KAT_VERSION, env,
	    &plain), -1);
	forged = json_deep_copy(env);
	{
		char	kid[SEAL_KID_LEN + 1];

		seal_key_id(other, kid);
		json_object_set_new(forged, "kid", json_string(kid));
	}
	assert_int_equal(seal_open(other, KAT_TENANT, KAT_VERSION, forged,
	    &plain), -1);
	json_decref(forged);

	/* Two seals of the same config differ (random nonces). */
	forged = seal_config(key, KAT_TENANT, KAT_VERSION, cfg);
	assert_string_not_equal(json_string_value(json_object_get(forged,
	    "nonce")), json_string_value(json_object_get(env, "nonce")));
	json_decref(forged);
	json_decref(env);
	json_decref(cfg);
}

/* A sealed put: the envelope as the value, the key id in the metadata. */
static void
test_sealed_item(void **state)
{
	struct kv_items	 kis = KV_ITEMS_INIT;
	unsigned char	 key[SYNC_SEAL_KEY_LEN];
	json_t		*cfg, *env, *item, *meta, *value;
	json_error_t	 je;

	(void)state;
	kat_key(key);
	cfg = kat_config();
	env = seal_config(key, KAT_TENANT, KAT_VERSION, cfg);
	assert_non_null(env);
	assert_int_equal(kv_items_add_put(&kis, "pfx:acme", env, KAT_VERSION,
	    KAT_KID), 0);
	assert_null(strstr(kis.kis_v[0].ki_json, "sk-test-0001"));
	assert_null(strstr(kis.kis_v[0].ki_json, "openai_api_key"));
	item = json_loads(kis.kis_v[0].ki_json, 0, &je);
	assert_non_null(item);
	meta = json_object_get(item, "metadata");
	assert_int_equal(json_integer_value(json_object_get(meta, "version")),
	    KAT_VERSION);
	assert_string_equal(json_string_value(json_object_get(meta, "kid")),
	    KAT_KID);
	value = json_loads(json_string_value(json_object_get(item, "value")),
	    0, &je);
	assert_non_null(value);
	assert_true(json_equal(value, env));
	json_decref(value);
	json_decref(item);
	kv_items_release(&kis);
	json_decref(env);
	json_decref(cfg);
}

static void
test_key_file(void **state)
{
	char			 dir[] = "/tmp/wfvault-seal.XXXXXX", path[256];
	char			 kid[SEAL_KID_LEN + 1], kid2[SEAL_KID_LEN + 1];
	char			 err[512];
	struct stat		 sb;
	struct sync_target	 st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/seal.key", dir);
	assert_int_equal(seal_key_generate(path, kid, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0400);
	assert_int_equal(sb.st_size, 45);
	/* Never over an existing key. */
	assert_int_equal(seal_key_generate(path, kid2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "never overwritten"));
	/* What the configuration reads is the key whose id was printed. */
	memset(&st, 0, sizeof(st));
	st.st_seal_key_file = path;
	assert_int_equal(sync_seal_key_load(&st, err, sizeof(err)), 0);
	seal_key_id(st.st_seal_key, kid2);
	assert_string_equal(kid, kid2);
	sodium_free(st.st_seal_key);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_key_id),
		cmocka_unit_test(test_binding),
		cmocka_unit_test(test_sealed_item),
		cmocka_unit_test(test_key_file),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
