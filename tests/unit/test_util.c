/*
 * Unit tests of common/util.c: the shared monotonic clock and the wiping
 * reallocator libevent and libcurl are given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

static void
test_now_ms_monotonic(void **state)
{
	int64_t	a, b;
	int	i;

	(void)state;
	a = util_now_ms();
	assert_true(a >= 0);
	for (i = 0; i < 1000; i++) {
		b = util_now_ms();
		assert_true(b >= a);
		a = b;
	}
}

static void
test_wipe_realloc(void **state)
{
	unsigned char	*p, *q;
	size_t		 i;

	(void)state;
	/* From NULL it is malloc. */
	assert_non_null(p = util_wipe_realloc(NULL, 16));
	for (i = 0; i < 16; i++)
		p[i] = (unsigned char)i;
	/* Growing keeps the bytes there were. */
	assert_non_null(q = util_wipe_realloc(p, 4096));
	for (i = 0; i < 16; i++)
		assert_int_equal(q[i], i);
	/* Shrinking keeps the first n. */
	assert_non_null(p = util_wipe_realloc(q, 4));
	for (i = 0; i < 4; i++)
		assert_int_equal(p[i], i);
	/* Zero bytes is still a block: NULL means only failure. */
	assert_non_null(q = util_wipe_realloc(p, 0));
	free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_now_ms_monotonic),
		cmocka_unit_test(test_wipe_realloc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
