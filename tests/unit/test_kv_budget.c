/*
 * Unit tests of the request budget every target shares (sync/kv_budget.c):
 * at most N request starts in any window, the pause Cloudflare's
 * Ratelimit header asks for, and that header's parser; and that targets
 * taking from it in threads of their own never share a slot.
 */
#include <pthread.h>
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

/*
 * A request counts from its end: the next one past the budget waits a
 * window from there, not from the start, and an end never moves a slot
 * back.
 */
static void
test_budget_done(void **state)
{
	struct kv_budget	kb;
	size_t			a, b;
	int			rl = 0;

	(void)state;
	assert_int_equal(kv_budget_init(&kb, 2, 10), 0);
	assert_int_equal(kv_budget_take(&kb, 0, 0, &rl, &a), 0);
	assert_int_equal(kv_budget_take(&kb, 100, 0, &rl, &b), 0);
	assert_true(a != b);
	/* Full: the first start frees its slot at 10 s ... */
	assert_int_equal(kv_budget_delay(&kb, 10050), 0);
	/* ... unless the request ended later, at 3 s: then at 13 s. */
	kv_budget_done(&kb, a, 3000);
	assert_int_equal(kv_budget_delay(&kb, 10050), 2950);
	kv_budget_done(&kb, b, 50);
	assert_int_equal(kb.kb_starts[b], 100);
	assert_int_equal(kv_budget_take(&kb, 10050, 0, &rl, &a), 2950);
	assert_int_equal(kv_budget_take(&kb, 13000, 1, &rl, &a), 0);
	assert_int_equal(kb.kb_waits, 1);
	kv_budget_release(&kb);
}

/*
 * Eight threads, let go at once, take from a budget of a million starts
 * an hour as fast as they can, a million tries each (long enough to run
 * on every core at once): exactly a million may start, never more,
 * however the threads interleave.  Without kb_lock this fails.
 */
#define TAKERS		8
#define TAKE_BUDGET	1000000
#define TAKE_TRIES	1000000

struct taker {
	struct kv_budget	*t_kb;
	pthread_barrier_t	*t_go;
	unsigned		 t_started;
};

static void *
taker_run(void *arg)
{
	struct taker	*t = arg;
	size_t		 slot;
	int		 rl, i;

	pthread_barrier_wait(t->t_go);
	for (i = 0; i < TAKE_TRIES; i++)
		if (kv_budget_take(t->t_kb, 1000, 0, &rl, &slot) == 0)
			t->t_started++;
	return NULL;
}

static void
test_budget_threads(void **state)
{
	struct kv_budget	kb;
	struct taker		t[TAKERS];
	pthread_t		th[TAKERS];
	pthread_barrier_t	go;
	unsigned		total = 0;
	int			i;

	(void)state;
	assert_int_equal(kv_budget_init(&kb, TAKE_BUDGET, 3600), 0);
	assert_int_equal(pthread_barrier_init(&go, NULL, TAKERS), 0);
	for (i = 0; i < TAKERS; i++) {
		t[i].t_kb = &kb;
		t[i].t_go = &go;
		t[i].t_started = 0;
		assert_int_equal(pthread_create(&th[i], NULL, taker_run, &t[i]),
		    0);
	}
	for (i = 0; i < TAKERS; i++) {
		pthread_join(th[i], NULL);
		total += t[i].t_started;
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(total, TAKE_BUDGET);
	assert_int_equal(kb.kb_requests, TAKE_BUDGET);
	assert_int_equal(kb.kb_n, TAKE_BUDGET);
	kv_budget_release(&kb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_window),
		cmocka_unit_test(test_budget_block),
		cmocka_unit_test(test_ratelimit_parse),
		cmocka_unit_test(test_budget_done),
		cmocka_unit_test(test_budget_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
