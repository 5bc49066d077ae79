/*
 * libcurl's allocator for the programs that link it (wfvault-sync and
 * wfvault-test): every block libcurl frees or moves is wiped first, since
 * the headers and requests it builds carry credentials.  Linked only into
 * those programs, so the daemon and the CLI never pull in libcurl.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "util.h"

static void
curlwipe_free(void *p)
{
	if (p == NULL)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

static char *
curlwipe_strdup(const char *s)
{
	size_t	 n = strlen(s) + 1;
	char	*p;

	if ((p = malloc(n)) != NULL)
		memcpy(p, s, n);
	return p;
}

int
util_curl_init(char *err, size_t errlen)
{
	CURLcode	cc;

	cc = curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, curlwipe_free,
	    util_wipe_realloc, curlwipe_strdup, calloc);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "cannot initialise libcurl: %s",
		    curl_easy_strerror(cc));
		return -1;
	}
	return 0;
}
