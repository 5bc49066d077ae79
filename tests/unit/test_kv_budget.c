/*
 * Unit tests of the request budget every target shares (sync/kv_budget.c):
 * at most N request starts in any window, the pause Cloudflare's
 * Ratelimit header asks for, and that header's parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sync.h"

static void
test_budget_window(void **state)
{
	struct kv_budget	kb;

	(void)state;
	assert_int_equal(kv_budget_init(&kb, 3, 1), 0);
	/* Three go at once. */
	assert_int_equal(kv_budget_delay(&kb, 0), 0);
	kv_budget_note(&kb, 0);
	kv_budget_note(&kb, 10);
	assert_int_equal(kv_budget_delay(&kb, 20), 0);
	kv_budget_note(&kb, 20);
	/* The fourth waits until the first is a window old. */
	assert_int_equal(kv_budget_delay(&kb, 30), 970);
	assert_int_equal(kv_budget_delay(&kb, 999), 1);
	assert_int_equal(kv_budget_delay(&kb, 1000), 0);
	kv_budget_note(&kb, 1000);
	/* Then the second's turn: any window holds at most three. */
	assert_int_equal(kv_budget_delay(&kb, 1000), 10);
	kv_budget_note(&kb, 1010);
	assert_int_equal(kv_budget_delay(&kb, 1010), 10);
	assert_int_equal(kv_budget_delay(&kb, 5000), 0);
	assert_int_equal(kb.kb_requests, 5);
	kv_budget_release(&kb);
	kv_budget_release(&kb);

	assert_int_equal(kv_budget_init(&kb, 0, 1), -1);
	assert_int_equal(kv_budget_init(&kb, 1, 0), -1);
}

static void
test_budget_block(void **state)
{
	struct kv_budget	kb;

	(void)state;
	assert_int_equal(kv_budget_init(&kb, 600, 300), 0);
	kv_budget_block(&kb, 30000);
	assert_int_equal(kv_budget_delay(&kb, 1000), 29000);
	/* An earlier end never shortens the pause. */
	kv_budget_block(&kb, 2000);
	assert_int_equal(kv_budget_delay(&kb, 1000), 29000);
	assert_int_equal(kv_budget_delay(&kb, 30000), 0);
	kv_budget_release(&kb);

	/* The later of the two waits wins. */
	assert_int_equal(kv_budget_init(&kb, 1, 10), 0);
	kv_budget_note(&kb, 0);
	kv_budget_block(&kb, 5000);
	assert_int_equal(kv_budget_delay(&kb, 0), 10000);
	kv_budget_block(&kb, 20000);
	assert_int_equal(kv_budget_delay(&kb, 0), 20000);
	kv_budget_release(&kb);
}

static void
test_ratelimit_parse(void **state)
{
	static const struct {
		const char	*value;
		int		 rc;
		uint64_t	 ms;
	} cases[] = {
		{ "\"default\";r=0;t=30", 1, 30000 },
		{ "\"default\";r=12;t=30", 0, 0 },
		{ "\"default\";r=0;t=0", 1, 0 },
		{ "default;r=0;t=7", 1, 7000 },
		{ "\"default\"; r=0; t=5", 1, 5000 },
		{ "\"a\";r=5;t=1, \"b\";r=0;t=60", 1, 60000 },
		{ "\"a\";r=0;t=9,\"b\";r=0;t=4", 1, 9000 },
		{ "\"default\";q=1200;w=300", 0, 0 },
		{ "\"default\";r=0;t=86400", 1, 300000 },
		{ "\"default\";r=0", 0, 0 },
		{ "\"default\";pk=:abc=:;r=0;t=2", 1, 2000 },
		{ "\"de\\\"f\";r=0;t=3", 1, 3000 },
		{ "\"default\";r=;t=3", -1, 0 },
		{ "\"default\";r=0;t=x", -1, 0 },
		{ "\"default\";r=0;t=1234567890", -1, 0 },
		{ "\"unterminated;r=0;t=3", -1, 0 },
		{ "\"a\" \"b\"", -1, 0 },
	};
	uint64_t	ms;
	size_t		i;
	int		rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ms = 0;
		rc = kv_ratelimit_parse(cases[i].value, &ms);
		if (rc != cases[i].rc || (rc == 1 && ms != cases[i].ms))
			fail_msg("%s: %d %llu, not %d %llu", cases[i].value, rc,
			    (unsigned long long)ms, cases[i].rc,
			    (unsigned long long)cases[i].ms);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_window),
		cmocka_unit_test(test_budget_block),
		cmocka_unit_test(test_ratelimit_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
