/*
 * Small helpers every wfvault program shares: the monotonic clock and the
 * reallocator for memory that may hold secrets.  Nothing here logs.
 */
#ifndef WFVAULT_UTIL_H
#define WFVAULT_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t	util_now_ms(void);
/*
 * realloc() for libraries given our allocator (libevent, libcurl): the
 * old block is wiped before it is freed, so no copy of a secret is left
 * behind when a buffer grows.  Returns a new block (the caller frees it),
 * or NULL with p untouched.
 */
void	*util_wipe_realloc(void *p, size_t n);

/* curlwipe.c (linked only into the programs that link libcurl) */
/*
 * curl_global_init with an allocator that wipes every block libcurl frees
 * or moves.  0, or -1 with a message in err.
 */
int	util_curl_init(char *err, size_t errlen);

#endif /* WFVAULT_UTIL_H */
