/*
 * Unit tests of wfvault-sync's worker_secrets target (sync/secrets.c):
 * the secret name of a field and the secrets URL of a script.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "proto.h"
#include "sync.h"

static void
test_name(void **state)
{
	char	name[PROTO_FIELD_MAX + 1], small[4];

	(void)state;
	secrets_name("openai_api_key", name, sizeof(name));
	assert_string_equal(name, "OPENAI_API_KEY");
	secrets_name("x2_y", name, sizeof(name));
	assert_string_equal(name, "X2_Y");
	secrets_name("", name, sizeof(name));
	assert_string_equal(name, "");
	/* Cut to the buffer, always terminated. */
	secrets_name("region", small, sizeof(small));
	assert_string_equal(small, "REG");
}

static void
test_state(void **state)
{
	struct secrets_state	ss;
	char			err[256];
	static const unsigned char zero[32];

	(void)state;
	assert_int_equal(secrets_state_init(&ss, "https://api.example/v4",
	    "0123456789abcdef0123456789abcdef", "my-worker", err,
	    sizeof(err)), 0);
	assert_string_equal(ss.ss_url, "https://api.example/v4/accounts/"
	    "0123456789abcdef0123456789abcdef/workers/scripts/my-worker/"
	    "secrets");
	/* Nothing pushed yet, and a random key for the hashes. */
	assert_null(ss.ss_pushed);
	assert_int_equal(ss.ss_synced, 0);
	assert_memory_not_equal(ss.ss_key, zero, sizeof(zero));
	secrets_state_release(&ss);
	assert_null(ss.ss_url);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
