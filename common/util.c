/*
 * The helpers of util.h: one monotonic clock and one wiping reallocator
 * for the daemon, the CLI and the sync agent.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

int64_t
util_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Never realloc() itself: it may move the block and free the old one
 * unwiped.  n == 0 still gets a block, so NULL always means failure.
 */
void *
util_wipe_realloc(void *p, size_t n)
{
	void	*q;
	size_t	 old;

	if (p == NULL)
		return malloc(n);
	old = malloc_usable_size(p);
	if ((q = malloc(n == 0 ? 1 : n)) == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	explicit_bzero(p, old);
	free(p);
	return q;
}
