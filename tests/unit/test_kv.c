/*
 * Unit tests of wfvault-sync's KV client (sync/kv*.c): bulk batching,
 * the retry decision for every class of failure, Retry-After parsing,
 * reply envelopes and the serialised items.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "proto.h"
#include "sync.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

/* Batching. */

static void
test_batch_count_limit(void **state)
{
	size_t	sizes[7] = { 10, 10, 10, 10, 10, 10, 10 };

	(void)state;
	assert_int_equal(kv_batch_split(sizes, 7, 3, 1000), 3);
	assert_int_equal(kv_batch_split(sizes, 7, 1, 1000), 1);
	assert_int_equal(kv_batch_split(sizes, 7, 7, 1000), 7);
	assert_int_equal(kv_batch_split(sizes, 7, 10000, 1000), 7);
	assert_int_equal(kv_batch_split(sizes, 2, 3, 1000), 2);
	assert_int_equal(kv_batch_split(sizes, 0, 3, 1000), 0);
}

static void
test_batch_byte_limit(void **state)
{
	size_t	sizes[3] = { 10, 10, 10 };

	(void)state;
	/* "[" 10 "," 10 "," 10 "]" is 34 bytes. */
	assert_int_equal(kv_batch_bytes(sizes, 3), 34);
	assert_int_equal(kv_batch_bytes(sizes, 1), 12);
	assert_int_equal(kv_batch_bytes(sizes, 0), 2);
	/* Exact boundaries: a batch may be exactly max_bytes. */
	assert_int_equal(kv_batch_split(sizes, 3, 100, 34), 3);
	assert_int_equal(kv_batch_split(sizes, 3, 100, 33), 2);
	assert_int_equal(kv_batch_split(sizes, 3, 100, 23), 2);
	assert_int_equal(kv_batch_split(sizes, 3, 100, 22), 1);
	assert_int_equal(kv_batch_split(sizes, 3, 100, 12), 1);
	/* Both limits: the tighter one wins. */
	assert_int_equal(kv_batch_split(sizes, 3, 2, 34), 2);
	assert_int_equal(kv_batch_split(sizes, 3, 3, 23), 2);
}

static void
test_batch_item_too_big(void **state)
{
	size_t	one[1] = { 100 };
	size_t	mid[3] = { 10, 100, 10 };
	size_t	huge[2] = { SIZE_MAX, 1 };
	size_t	almost[2] = { SIZE_MAX - 1, SIZE_MAX - 1 };

	(void)state;
	/* Alone it needs 102 bytes. */
	assert_int_equal(kv_batch_split(one, 1, 10, 101), 0);
	assert_int_equal(kv_batch_split(one, 1, 10, 102), 1);
	/* Stops before the big one; the next split reports it. */
	assert_int_equal(kv_batch_split(mid, 3, 10, 50), 1);
	assert_int_equal(kv_batch_split(mid + 1, 2, 10, 50), 0);
	/* No overflow near SIZE_MAX. */
	assert_int_equal(kv_batch_split(huge, 2, 10, 1000), 0);
	assert_int_equal(kv_batch_split(almost, 2, 10, SIZE_MAX - 1), 0);
	/* Not even "[]" fits. */
	assert_int_equal(kv_batch_split(one, 1, 10, 1), 0);
}

/* For random sizes: the batch fits, and one more item would not. */
static void
test_batch_invariants(void **state)
{
	size_t		sizes[64], k, n, max_items, max_bytes, i;
	unsigned	seed = 12345;
	int		round;

	(void)state;
	for (round = 0; round < 20000; round++) {
		seed = seed * 1103515245 + 12345;
		n = 1 + (seed >> 8) % 64;
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245 + 12345;
			sizes[i] = 1 + (seed >> 8) % 300;
		}
		seed = seed * 1103515245 + 12345;
		max_items = 1 + (seed >> 8) % 70;
		seed = seed * 1103515245 + 12345;
		max_bytes = 2 + (seed >> 8) % 4000;
		k = kv_batch_split(sizes, n, max_items, max_bytes);
		assert_true(k <= n && k <= max_items);
		if (k > 0)
			assert_true(kv_batch_bytes(sizes, k) <= max_bytes);
		if (k < n && k < max_items)
			assert_true(kv_batch_bytes(sizes, k + 1) > max_bytes);
		if (k == 0)
			assert_true(sizes[0] + 2 > max_bytes);
	}
}

/* The items and their splitting agree with the sizes of their JSON. */
static void
test_items(void **state)
{
	struct kv_items	 kis = KV_ITEMS_INIT;
	json_t		*cfg, *item, *value;
	json_error_t	 je;
	size_t		 total;

	(void)state;
	cfg = json_pack("{s:s,s:s,s:i}", "zeta", "z", "alpha", "sk-\"1\"",
	    "n", 3);
	assert_non_null(cfg);
	assert_int_equal(kv_items_add_put(&kis, "pfx:acme", cfg, 7, NULL),
	    0);
	assert_int_equal(kv_items_add_delete(&kis, "pfx:gone\"q"), 0);
	assert_int_equal(kis.kis_n, 2);
	assert_int_equal(kis.kis_v[0].ki_len, strlen(kis.kis_v[0].ki_json));
	assert_int_equal(kis.kis_bytes, kis.kis_v[0].ki_len +
	    kis.kis_v[1].ki_len);
	assert_string_equal(kis.kis_v[0].ki_key, "pfx:acme");
	assert_int_equal(kis.kis_v[0].ki_version, 7);

	/* {"key":..,"value":"<config, sorted keys>","metadata":{..}} */
	item = json_loads(kis.kis_v[0].ki_json, 0, &je);
	assert_non_null(item);
	assert_string_equal(json_string_value(json_object_get(item, "key")),
	    "pfx:acme");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    item, "metadata"), "version")), 7);
	/* The ownership mark: --prune deletes only keys carrying it. */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    item, "metadata"), "wfvault")), 1);
	assert_int_equal(json_object_size(json_object_get(item, "metadata")),
	    2);
	value = json_object_get(item, "value");
	assert_true(json_is_string(value));
	assert_string_equal(json_string_value(value),
	    "{\"alpha\":\"sk-\\\"1\\\"\",\"n\":3,\"zeta\":\"z\"}");
	assert_int_equal(json_object_size(item), 3);
	json_decref(item);
	assert_string_equal(kis.kis_v[1].ki_json, "\"pfx:gone\\\"q\"");

	total = 2 + kis.kis_v[0].ki_len + 1 + kis.kis_v[1].ki_len;
	assert_int_equal(kv_items_split(&kis, 10, total), 2);
	assert_int_equal(kv_items_split(&kis, 10, total - 1), 1);
	assert_int_equal(kv_items_split(&kis, 1, total), 1);
	assert_int_equal(kv_items_split(&kis, 10, 2 + kis.kis_v[0].ki_len - 1),
	    0);

	kv_items_drop(&kis, 1);
	assert_int_equal(kis.kis_n, 1);
	assert_string_equal(kis.kis_v[0].ki_key, "pfx:gone\"q");
	assert_int_equal(kis.kis_bytes, kis.kis_v[0].ki_len);
	kv_items_release(&kis);
	assert_int_equal(kis.kis_n, 0);
	assert_int_equal(kis.kis_bytes, 0);

	/* Not an object: refused. */
	json_decref(cfg);
	cfg = json_string("x");
	assert_int_equal(kv_items_add_put(&kis, "k", cfg, 1, NULL), -1);
	assert_int_equal(kis.kis_n, 0);
	json_decref(cfg);
	kv_items_release(&kis);
}

/* Retry-After. */

static void
test_retry_after_seconds(void **state)
{
	uint64_t	ms;

	(void)state;
	assert_int_equal(kv_retry_after_ms("5", 0, &ms), 0);
	assert_int_equal(ms, 5000);
	assert_int_equal(kv_retry_after_ms(" 12 ", 0, &ms), 0);
	assert_int_equal(ms, 12000);
	/* Clamped to [1 s, 300 s]. */
	assert_int_equal(kv_retry_after_ms("0", 0, &ms), 0);
	assert_int_equal(ms, 1000);
	assert_int_equal(kv_retry_after_ms("300", 0, &ms), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(kv_retry_after_ms("301", 0, &ms), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(kv_retry_after_ms("99999999999999999999999", 0, &ms),
	    0);
	assert_int_equal(ms, 300000);
}

static void
test_retry_after_date(void **state)
{
	const char	*imf = "Wed, 21 Oct 2015 07:28:00 GMT";
	const char	*rfc850 = "Wednesday, 21-Oct-15 07:28:00 GMT";
	time_t		 t;
	uint64_t	 ms;

	(void)state;
	t = curl_getdate(imf, NULL);
	assert_true(t > 0);
	/* In the future. */
	assert_int_equal(kv_retry_after_ms(imf, t - 30, &ms), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(kv_retry_after_ms(rfc850, t - 45, &ms), 0);
	assert_int_equal(ms, 45000);
	/* Far in the future: the cap. */
	assert_int_equal(kv_retry_after_ms(imf, t - 100000, &ms), 0);
	assert_int_equal(ms, 300000);
	/* Now or in the past: the floor. */
	assert_int_equal(kv_retry_after_ms(imf, t, &ms), 0);
	assert_int_equal(ms, 1000);
	assert_int_equal(kv_retry_after_ms(imf, t + 3600, &ms), 0);
	assert_int_equal(ms, 1000);
}

static void
test_retry_after_garbage(void **state)
{
	static const char *const bad[] = { "", "   ", "soon", "-1", "+5",
	    "5s", "1.5", "0x10", "12 34", "Wed, 99 Foo 2015 xx GMT" };
	uint64_t	ms = 42;
	size_t		i;

	(void)state;
	assert_int_equal(kv_retry_after_ms(NULL, 0, &ms), -1);
	for (i = 0; i < NITEMS(bad); i++) {
		if (kv_retry_after_ms(bad[i], 1000, &ms) != -1)
			fail_msg("'%s' was accepted (%llu ms)", bad[i],
			    (unsigned long long)ms);
	}
	assert_int_equal(ms, 42);
}

static void
test_backoff(void **state)
{
	unsigned	a;
	uint64_t	d, full;

	(void)state;
	/* 500 ms * 2^attempt, jittered into [50%, 100%]. */
	assert_int_equal(kv_backoff_ms(0, 0), 250);
	assert_int_equal(kv_backoff_ms(0, 250), 500);
	assert_int_equal(kv_backoff_ms(0, 251), 250);
	assert_int_equal(kv_backoff_ms(3, 0), 2000);
	assert_int_equal(kv_backoff_ms(3, 2000), 4000);
	for (a = 0; a < 200; a++) {
		full = a >= 7 ? 60000 : 500ULL << a;
		d = kv_backoff_ms(a, (uint32_t)(a * 2654435761U));
		assert_true(d >= full / 2 && d <= full);
		assert_true(kv_backoff_ms(a, UINT32_MAX) <= 60000);
	}
	assert_int_equal(kv_backoff_ms(1000, 0), 30000);
}

/* The retry decision. */

static void
outcome(struct kv_outcome *o, long status, int envelope, int success)
{
	memset(o, 0, sizeof(*o));
	o->ko_curl = CURLE_OK;
	o->ko_status = status;
	o->ko_envelope = envelope;
	o->ko_success = success;
	o->ko_items = 10;
	o->ko_now = 1000000;
	o->ko_max_attempts = 0;
}

/* A refusal whose envelope carries codes[0..n) (none: not an envelope). */
static void
outcome_codes(struct kv_outcome *o, long status, const long *codes,
    size_t n)
{
	outcome(o, status, codes != NULL, 0);
	o->ko_codes = codes;
	o->ko_ncodes = n;
	o->ko_error_code = n > 0 ? codes[0] : 0;
}

static void
expect_fatal(const struct kv_outcome *o, const char *const *words)
{
	struct kv_decision	d;

	kv_retry_decide(o, 0, &d);
	if (d.kd_verdict != KV_FATAL)
		fail_msg("HTTP %ld / curl %d: verdict %d, not FATAL (%s)",
		    o->ko_status, (int)o->ko_curl, (int)d.kd_verdict,
		    d.kd_reason);
	for (; *words != NULL; words++) {
		if (strstr(d.kd_reason, *words) == NULL)
			fail_msg("'%s' not in \"%s\"", *words, d.kd_reason);
	}
}

static void
expect_retry(const struct kv_outcome *o, uint64_t min, uint64_t max)
{
	struct kv_decision	d;
	uint32_t		rnd;

	for (rnd = 0; rnd < 5000; rnd += 97) {
		kv_retry_decide(o, rnd, &d);
		if (d.kd_verdict != KV_RETRY)
			fail_msg("HTTP %ld / curl %d: verdict %d, not RETRY "
			    "(%s)", o->ko_status, (int)o->ko_curl,
			    (int)d.kd_verdict, d.kd_reason);
		if (d.kd_delay_ms < min || d.kd_delay_ms > max)
			fail_msg("HTTP %ld / curl %d: delay %llu not in "
			    "[%llu, %llu]", o->ko_status, (int)o->ko_curl,
			    (unsigned long long)d.kd_delay_ms,
			    (unsigned long long)min, (unsigned long long)max);
		assert_true(d.kd_reason[0] != '\0');
	}
}

static void
test_decide_ok(void **state)
{
	struct kv_outcome	o;
	struct kv_decision	d;

	(void)state;
	outcome(&o, 200, 1, 1);
	kv_retry_decide(&o, 0, &d);
	assert_int_equal(d.kd_verdict, KV_OK);
	outcome(&o, 204, 1, 1);
	kv_retry_decide(&o, 0, &d);
	assert_int_equal(d.kd_verdict, KV_OK);
	/* Even at the last attempt, success is success. */
	o.ko_max_attempts = 8;
	o.ko_attempt = 7;
	kv_retry_decide(&o, 0, &d);
	assert_int_equal(d.kd_verdict, KV_OK);
}

static void
test_decide_2xx_not_ok(void **state)
{
	static const char *const base[] = { "cf_api_base", NULL };
	static const char *const ids[] = { "cf_account_id",
	    "cf_namespace_id", "boom", NULL };
	struct kv_outcome	o;

	(void)state;
	/* An HTML page with 200: not the API. */
	outcome(&o, 200, 0, 0);
	expect_fatal(&o, base);
	/* "success": false decides, not the status. */
	outcome(&o, 200, 1, 0);
	o.ko_error_code = 10001;
	o.ko_error_message = "boom";
	expect_fatal(&o, ids);
	/* unsuccessful_keys: send those again after a backoff. */
	outcome(&o, 200, 1, 1);
	o.ko_unsuccessful = 3;
	o.ko_attempt = 2;
	expect_retry(&o, 1000, 2000);
}

static void
test_decide_429(void **state)
{
	static const char *const gave_up[] = { "gave up after 8 attempts",
	    "429", NULL };
	struct kv_outcome	o;
	char			date[64];
	struct tm		tm;
	time_t			t;

	(void)state;
	outcome(&o, 429, 1, 0);
	o.ko_error_code = 971;
	o.ko_retry_after = "7";
	expect_retry(&o, 7000, 7000);
	o.ko_retry_after = "0";
	expect_retry(&o, 1000, 1000);
	o.ko_retry_after = "86400";
	expect_retry(&o, 300000, 300000);
	/* An HTTP-date 20 s ahead of ko_now, and one in the past. */
	t = o.ko_now + 20;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	o.ko_retry_after = date;
	expect_retry(&o, 20000, 20000);
	o.ko_now += 3600;
	expect_retry(&o, 1000, 1000);
	/* Absent or garbage: 5 s, or the backoff when that is longer. */
	o.ko_retry_after = NULL;
	expect_retry(&o, 5000, 5000);
	o.ko_retry_after = "later, please";
	expect_retry(&o, 5000, 5000);
	o.ko_attempt = 6;
	expect_retry(&o, 16000, 32000);
	/* An HTML 429 is still a 429. */
	outcome(&o, 429, 0, 0);
	expect_retry(&o, 5000, 5000);
	/* The one-shot budget. */
	o.ko_max_attempts = 8;
	o.ko_attempt = 7;
	expect_fatal(&o, gave_up);
}

static void
test_decide_server_errors(void **state)
{
	static const long statuses[] = { 500, 502, 503, 504, 520, 522, 524,
	    408 };
	static const char *const gave_up[] = { "gave up after 8 attempts",
	    "HTTP 503", NULL };
	struct kv_outcome	o;
	size_t			i;
	unsigned		a;

	(void)state;
	for (i = 0; i < NITEMS(statuses); i++) {
		/* JSON (500) or HTML (502, 524) bodies alike. */
		outcome(&o, statuses[i], statuses[i] == 500, 0);
		for (a = 0; a < 12; a++) {
			o.ko_attempt = a;
			expect_retry(&o, (a >= 7 ? 60000 : 500ULL << a) / 2,
			    a >= 7 ? 60000 : 500ULL << a);
		}
	}
	/* A Retry-After longer than the backoff is honoured. */
	outcome(&o, 503, 0, 0);
	o.ko_retry_after = "10";
	expect_retry(&o, 10000, 10000);
	o.ko_attempt = 8;
	expect_retry(&o, 30000, 60000);
	/* Budget: attempt 7 of 8 is the last. */
	outcome(&o, 503, 0, 0);
	o.ko_max_attempts = 8;
	o.ko_attempt = 6;
	expect_retry(&o, 16000, 32000);
	o.ko_attempt = 7;
	expect_fatal(&o, gave_up);
	/* No budget: for ever, capped. */
	o.ko_max_attempts = 0;
	o.ko_attempt = 100000;
	expect_retry(&o, 30000, 60000);
}

static void
test_decide_transport(void **state)
{
	static const CURLcode retryable[] = { CURLE_COULDNT_CONNECT,
	    CURLE_OPERATION_TIMEDOUT, CURLE_RECV_ERROR, CURLE_SEND_ERROR,
	    CURLE_GOT_NOTHING, CURLE_COULDNT_RESOLVE_HOST,
	    CURLE_SSL_CONNECT_ERROR, CURLE_PARTIAL_FILE, CURLE_HTTP2,
	    CURLE_HTTP2_STREAM };
	static const CURLcode tls[] = { CURLE_PEER_FAILED_VERIFICATION,
	    CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR,
	    CURLE_SSL_PINNEDPUBKEYNOTMATCH };
	static const char *const ca[] = { "cf_ca_file", "certificate",
	    NULL };
	static const char *const url[] = { "cf_api_base", NULL };
	static const char *const gave_up[] = { "gave up after 8 attempts",
	    "Connection refused", NULL };
	struct kv_outcome	o;
	size_t			i;

	(void)state;
	for (i = 0; i < NITEMS(retryable); i++) {
		outcome(&o, 0, 0, 0);
		o.ko_curl = retryable[i];
		expect_retry(&o, 250, 500);
	}
	for (i = 0; i < NITEMS(tls); i++) {
		outcome(&o, 0, 0, 0);
		o.ko_curl = tls[i];
		expect_fatal(&o, ca);
	}
	outcome(&o, 0, 0, 0);
	o.ko_curl = CURLE_URL_MALFORMAT;
	expect_fatal(&o, url);
	o.ko_curl = CURLE_UNSUPPORTED_PROTOCOL;
	expect_fatal(&o, url);
	/* A reply over our bound. */
	o.ko_curl = CURLE_WRITE_ERROR;
	expect_fatal(&o, url);
	/* curl's own message is quoted. */
	o.ko_curl = CURLE_COULDNT_CONNECT;
	o.ko_curl_error = "Connection refused";
	o.ko_max_attempts = 8;
	o.ko_attempt = 7;
	expect_fatal(&o, gave_up);
}

static void
test_decide_refusals(void **state)
{
	static const char *const w401[] = { "HTTP 401",
	    "check cf_api_token_file", NULL };
	static const char *const w403[] = { "HTTP 403",
	    "Workers KV Storage Write", "cf_account_id", NULL };
	static const char *const w400[] = { "HTTP 400", "Invalid key name",
	    "10021", "check cf_account_id and cf_namespace_id", NULL };
	static const char *const w404[] = { "HTTP 404", "10013",
	    "check cf_namespace_id", NULL };
	static const char *const w413[] = { "413", "too large", NULL };
	static const char *const w3xx[] = { "redirect", "cf_api_base",
	    NULL };
	static const char *const w409[] = { "HTTP 409", NULL };
	struct kv_outcome	o;
	struct kv_decision	d;

	(void)state;
	outcome(&o, 401, 1, 0);
	o.ko_error_code = 10000;
	o.ko_error_message = "Authentication error";
	expect_fatal(&o, w401);
	outcome(&o, 403, 1, 0);
	o.ko_error_code = 10000;
	expect_fatal(&o, w403);
	outcome(&o, 400, 1, 0);
	o.ko_error_code = 10021;
	o.ko_error_message = "Invalid key name";
	expect_fatal(&o, w400);
	outcome(&o, 404, 1, 0);
	o.ko_error_code = 10013;
	o.ko_error_message = "namespace not found";
	expect_fatal(&o, w404);
	/* Refusals are never retried, whatever the budget. */
	o.ko_max_attempts = 0;
	o.ko_attempt = 0;
	expect_fatal(&o, w404);

	/* 413: halve a batch; a single item cannot be halved. */
	outcome(&o, 413, 0, 0);
	o.ko_items = 2;
	kv_retry_decide(&o, 0, &d);
	assert_int_equal(d.kd_verdict, KV_SPLIT);
	o.ko_items = 10000;
	kv_retry_decide(&o, 0, &d);
	assert_int_equal(d.kd_verdict, KV_SPLIT);
	o.ko_items = 1;
	expect_fatal(&o, w413);

	outcome(&o, 301, 0, 0);
	expect_fatal(&o, w3xx);
	outcome(&o, 409, 1, 0);
	expect_fatal(&o, w409);
}

/*
 * Cloudflare's error codes decide before the status, whichever entry of
 * errors[] (or error_chain) carries them, and each names its setting.
 */
static void
test_decide_codes(void **state)
{
	static const long c10000[] = { 10000 }, c9109[] = { 9109 };
	static const long c1000[] = { 1000 }, c6003[] = { 6003, 6111 };
	static const long c6111[] = { 10001, 6111 }, c7003[] = { 7003, 7000 };
	static const long c7000[] = { 7000 }, c10013[] = { 10013 };
	static const long c10048[] = { 971, 10048 }, c10009[] = { 10009 };
	static const struct {
		long		 status;
		const long	*codes;
		size_t		 n;
		int		 challenge;
		const char	*words[3];
		int		 auth, daily, not_found;
	} cases[] = {
		{ 401, c10000, 1, 0, { "cf_api_token_file", "10000" }, 1, 0,
		    0 },
		{ 403, c10000, 1, 0, { "cf_api_token_file",
		    "Workers KV Storage Write" }, 1, 0, 0 },
		{ 403, c9109, 1, 0, { "cf_api_token_file", "9109" }, 1, 0,
		    0 },
		{ 401, c1000, 1, 0, { "cf_api_token_file" }, 1, 0, 0 },
		{ 400, c6003, 2, 0, { "malformed", "cf_api_token_file",
		    "6003" }, 0, 0, 0 },
		/* The second entry counts as much as the first. */
		{ 400, c6111, 2, 0, { "malformed", "cf_api_token_file" }, 0,
		    0, 0 },
		{ 400, c7003, 2, 0, { "cf_account_id", "cf_namespace_id",
		    "7003" }, 0, 0, 0 },
		{ 404, c7000, 1, 0, { "cf_account_id", "cf_namespace_id" },
		    0, 0, 0 },
		{ 404, c10013, 1, 0, { "namespace was not found",
		    "cf_namespace_id" }, 0, 0, 0 },
		/* A 429, but not one to retry: the day's writes are used. */
		{ 429, c10048, 2, 0, { "daily limit", "00:00 UTC",
		    "cf_account_id" }, 0, 1, 0 },
		{ 404, c10009, 1, 0, { "key was not found",
		    "cf_namespace_id" }, 0, 0, 1 },
		/* A challenge page is HTML: no codes, only the header. */
		{ 403, NULL, 0, 1, { "challenge page", "not a token problem",
		    "cf_api_base" }, 0, 0, 0 },
	};
	struct kv_outcome	o;
	struct kv_decision	d;
	size_t			i, w;

	(void)state;
	for (i = 0; i < NITEMS(cases); i++) {
		outcome_codes(&o, cases[i].status, cases[i].codes, cases[i].n);
		o.ko_error_message = "msg";
		o.ko_challenge = cases[i].challenge;
		/* Never retried, even by a service that retries for ever. */
		o.ko_max_attempts = 0;
		kv_retry_decide(&o, 0, &d);
		if (d.kd_verdict != KV_FATAL)
			fail_msg("case %zu: verdict %d (%s)", i,
			    (int)d.kd_verdict, d.kd_reason);
		for (w = 0; w < NITEMS(cases[i].words) &&
		    cases[i].words[w] != NULL; w++) {
			if (strstr(d.kd_reason, cases[i].words[w]) == NULL)
				fail_msg("case %zu: '%s' not in \"%s\"", i,
				    cases[i].words[w], d.kd_reason);
		}
		assert_int_equal(d.kd_auth, cases[i].auth);
		assert_int_equal(d.kd_daily_limit, cases[i].daily);
		assert_int_equal(d.kd_not_found, cases[i].not_found);
		/* The token problem is never blamed for the others. */
		if (!cases[i].auth && cases[i].codes != c6003 &&
		    cases[i].codes != c6111)
			assert_null(strstr(d.kd_reason, "cf_api_token_file"));
	}

	/* A 403 without the challenge header is the token's. */
	outcome(&o, 403, 0, 0);
	kv_retry_decide(&o, 0, &d);
	assert_null(strstr(d.kd_reason, "challenge"));
	/* A plain 429 (971) is still retried. */
	outcome(&o, 429, 1, 0);
	o.ko_codes = c10048;
	o.ko_ncodes = 1;
	expect_retry(&o, 5000, 5000);
	/* A success with codes in it is a success. */
	outcome(&o, 200, 1, 1);
	o.ko_codes = c10048;
	o.ko_ncodes = 2;
	kv_retry_decide(&o, 0, &d);
	assert_int_equal(d.kd_verdict, KV_OK);
}

/*
 * A worker_secrets target's token needs another permission than a KV
 * target's: every refusal of the token names the one of its kind, with
 * the setting that holds the token; the classification is the same.
 */
static void
test_decide_kind(void **state)
{
	static const long c10000[] = { 10000 }, c9109[] = { 9109 };
	static const long c1000[] = { 1000 }, c7003[] = { 7003, 7000 };
	static const struct {
		long		 status;
		const long	*codes;
		size_t		 n;
	} cases[] = {
		{ 401, c10000, 1 }, { 403, c10000, 1 }, { 403, c9109, 1 },
		{ 401, c1000, 1 }, { 403, NULL, 0 },
	};
	struct kv_outcome	o;
	struct kv_decision	d;
	size_t			i;

	(void)state;
	for (i = 0; i < NITEMS(cases); i++) {
		outcome_codes(&o, cases[i].status, cases[i].codes, cases[i].n);
		o.ko_error_message = "Authentication error";
		o.ko_kind = SYNC_KIND_WORKER_SECRETS;
		kv_retry_decide(&o, 0, &d);
		assert_int_equal(d.kd_verdict, KV_FATAL);
		assert_int_equal(d.kd_auth, cases[i].n > 0);
		if (strstr(d.kd_reason, "\"Workers Scripts: Edit\" "
		    "permission (account level)") == NULL ||
		    strstr(d.kd_reason, "cf_api_token_file") == NULL ||
		    strstr(d.kd_reason, "KV") != NULL)
			fail_msg("case %zu (worker_secrets): \"%s\"", i,
			    d.kd_reason);
		o.ko_kind = SYNC_KIND_KV;
		kv_retry_decide(&o, 0, &d);
		if (strstr(d.kd_reason, "\"Workers KV Storage Write\" "
		    "permission") == NULL ||
		    strstr(d.kd_reason, "cf_api_token_file") == NULL ||
		    strstr(d.kd_reason, "Workers Scripts") != NULL)
			fail_msg("case %zu (kv): \"%s\"", i, d.kd_reason);
	}

	/*
	 * A wrong account in the path: a worker_secrets target has no
	 * namespace to blame.
	 */
	outcome_codes(&o, 404, c7003, 2);
	o.ko_error_message = "Could not route";
	o.ko_kind = SYNC_KIND_WORKER_SECRETS;
	kv_retry_decide(&o, 0, &d);
	assert_int_equal(d.kd_verdict, KV_FATAL);
	assert_int_equal(d.kd_no_route, 1);
	assert_non_null(strstr(d.kd_reason, "check cf_account_id"));
	assert_null(strstr(d.kd_reason, "namespace"));
	o.ko_kind = SYNC_KIND_KV;
	kv_retry_decide(&o, 0, &d);
	assert_int_equal(d.kd_no_route, 1);
	assert_non_null(strstr(d.kd_reason, "cf_namespace_id"));
}

/*
 * Targets may each have their own token: a refusal names the file or
 * credential this target's token comes from, and kd_detail holds the
 * refusal alone, for messages that say what to fix in their own words.
 */
static void
test_decide_token_source(void **state)
{
	static const long c10000[] = { 10000 }, c6003[] = { 6003, 6111 };
	static const char *const sources[] = {
		"cf_api_token_file /etc/wfvault/prod.token",
		"cf_api_token_credential cf-prod",
	};
	static const struct {
		long		 status;
		const long	*codes;
		size_t		 n;
	} cases[] = {
		{ 401, c10000, 1 }, { 403, c10000, 1 }, { 400, c6003, 2 },
		{ 401, NULL, 0 }, { 403, NULL, 0 },
	};
	struct kv_outcome	o;
	struct kv_decision	d;
	size_t			i, j;

	(void)state;
	for (i = 0; i < NITEMS(cases); i++) {
		for (j = 0; j < NITEMS(sources); j++) {
			outcome_codes(&o, cases[i].status, cases[i].codes,
			    cases[i].n);
			o.ko_error_message = "Authentication error";
			o.ko_token_source = sources[j];
			kv_retry_decide(&o, 0, &d);
			assert_int_equal(d.kd_verdict, KV_FATAL);
			if (strstr(d.kd_reason, sources[j]) == NULL ||
			    strstr(d.kd_reason, "(or cf_api_token") != NULL)
				fail_msg("case %zu, %s: \"%s\"", i,
				    sources[j], d.kd_reason);
			if (strstr(d.kd_reason, d.kd_detail) == NULL ||
			    strstr(d.kd_detail, "check") != NULL)
				fail_msg("case %zu: detail \"%s\" of \"%s\"", i,
				    d.kd_detail, d.kd_reason);
		}
	}
}

/* The policies around preflight and pruning. */
static void
test_prune_allowed(void **state)
{
	(void)state;
	/* 10% of 100 marked keys: 10 may go, 11 need --force. */
	assert_true(sync_prune_allowed(100, 10, 10));
	assert_false(sync_prune_allowed(100, 11, 10));
	assert_true(sync_prune_allowed(1000, 100, 10));
	assert_false(sync_prune_allowed(1000, 101, 10));
	/* A small namespace may always lose one key... */
	assert_true(sync_prune_allowed(3, 1, 10));
	assert_false(sync_prune_allowed(3, 2, 10));
	assert_true(sync_prune_allowed(0, 0, 10));
	/* ...unless the share is 0: then every delete needs --force. */
	assert_false(sync_prune_allowed(3, 1, 0));
	assert_true(sync_prune_allowed(3, 0, 0));
	assert_true(sync_prune_allowed(5, 5, 100));
	/* No overflow on huge counts. */
	assert_true(sync_prune_allowed(SIZE_MAX, SIZE_MAX / 100 * 10, 10));
}

static void
test_utc_midnight(void **state)
{
	(void)state;
	assert_int_equal(sync_ms_to_utc_midnight(0), 86400000);
	assert_int_equal(sync_ms_to_utc_midnight(86399), 1000);
	assert_int_equal(sync_ms_to_utc_midnight(86400 * 3 + 3600),
	    82800000);
}

/* Which outcomes leave a write's fate unknown, and which mean "too slow". */
static void
test_decide_uncertain(void **state)
{
	static const struct {
		long		status;
		CURLcode	curl;
		int		sent;
		int		uncertain;
		int		slow;
	} cases[] = {
		/* Timed out after sending: may still land; too slow. */
		{ 0, CURLE_OPERATION_TIMEDOUT, 1, 1, 1 },
		/* Timed out connecting: nothing went out. */
		{ 0, CURLE_OPERATION_TIMEDOUT, 0, 0, 0 },
		{ 0, CURLE_RECV_ERROR, 1, 1, 0 },
		{ 0, CURLE_SEND_ERROR, 1, 1, 0 },
		{ 0, CURLE_GOT_NOTHING, 1, 1, 0 },
		{ 0, CURLE_PARTIAL_FILE, 1, 1, 0 },
		{ 0, CURLE_RECV_ERROR, 0, 0, 0 },
		{ 0, CURLE_COULDNT_CONNECT, 1, 0, 0 },
		{ 0, CURLE_COULDNT_RESOLVE_HOST, 1, 0, 0 },
		{ 500, CURLE_OK, 1, 1, 0 },
		{ 502, CURLE_OK, 1, 1, 0 },
		{ 503, CURLE_OK, 1, 1, 0 },
		{ 524, CURLE_OK, 1, 1, 1 },
		{ 408, CURLE_OK, 1, 1, 0 },
		/* Refused before anything was done. */
		{ 429, CURLE_OK, 1, 0, 0 },
		{ 413, CURLE_OK, 1, 0, 0 },
		{ 401, CURLE_OK, 1, 0, 0 },
		{ 200, CURLE_OK, 1, 0, 0 },
	};
	struct kv_outcome	o;
	struct kv_decision	d;
	size_t			i;

	(void)state;
	for (i = 0; i < NITEMS(cases); i++) {
		outcome(&o, cases[i].status, cases[i].status == 200 ||
		    cases[i].status == 500 || cases[i].status == 429 ||
		    cases[i].status == 401, cases[i].status == 200);
		o.ko_curl = cases[i].curl;
		o.ko_sent = cases[i].sent;
		kv_retry_decide(&o, 0, &d);
		if (d.kd_uncertain != cases[i].uncertain ||
		    d.kd_slow != cases[i].slow)
			fail_msg("HTTP %ld / curl %d / sent %d: uncertain %d "
			    "slow %d, want %d %d", cases[i].status,
			    (int)cases[i].curl, cases[i].sent, d.kd_uncertain,
			    d.kd_slow, cases[i].uncertain, cases[i].slow);
	}
	/* Unknown even when it is the last attempt and we give up. */
	outcome(&o, 524, 0, 0);
	o.ko_max_attempts = 8;
	o.ko_attempt = 7;
	kv_retry_decide(&o, 0, &d);
	assert_int_equal(d.kd_verdict, KV_FATAL);
	assert_true(d.kd_uncertain);
	/* unsuccessful_keys: those were certainly not stored. */
	outcome(&o, 200, 1, 1);
	o.ko_unsuccessful = 2;
	kv_retry_decide(&o, 0, &d);
	assert_int_equal(d.kd_verdict, KV_RETRY);
	assert_false(d.kd_uncertain);
}

/* The adaptive batch limit. */
static void
test_limit(void **state)
{
	static const size_t slow_steps[] = { 5000, 2500, 1250, 625, 312, 156,
	    100, 100 };
	struct kv_limit	kl;
	size_t		i;

	(void)state;
	kv_limit_init(&kl, 10000);
	assert_int_equal(kl.kl_items, 10000);
	/* 524s and timeouts halve it down to 100, and it stays there. */
	for (i = 0; i < NITEMS(slow_steps); i++) {
		kv_limit_update(&kl, KV_LIMIT_SLOW, kl.kl_items);
		assert_int_equal(kl.kl_items, slow_steps[i]);
	}
	/* 413s go on down to 1. */
	kv_limit_update(&kl, KV_LIMIT_TOO_LARGE, 100);
	assert_int_equal(kl.kl_items, 50);
	for (i = 0; i < 10; i++)
		kv_limit_update(&kl, KV_LIMIT_TOO_LARGE, kl.kl_items);
	assert_int_equal(kl.kl_items, 1);
	kv_limit_update(&kl, KV_LIMIT_TOO_LARGE, 1);
	assert_int_equal(kl.kl_items, 1);
	/* A 524 never raises it back to its floor. */
	kv_limit_update(&kl, KV_LIMIT_SLOW, 1);
	assert_int_equal(kl.kl_items, 1);

	/* Grows x2 after 10 successes in a row, only then. */
	for (i = 0; i < 9; i++)
		kv_limit_update(&kl, KV_LIMIT_OK, 1);
	assert_int_equal(kl.kl_items, 1);
	kv_limit_update(&kl, KV_LIMIT_OK, 1);
	assert_int_equal(kl.kl_items, 2);
	/* Another failure breaks the run. */
	for (i = 0; i < 9; i++)
		kv_limit_update(&kl, KV_LIMIT_OK, 2);
	kv_limit_update(&kl, KV_LIMIT_FAILED, 2);
	assert_int_equal(kl.kl_items, 2);
	for (i = 0; i < 9; i++)
		kv_limit_update(&kl, KV_LIMIT_OK, 2);
	assert_int_equal(kl.kl_items, 2);
	kv_limit_update(&kl, KV_LIMIT_OK, 2);
	assert_int_equal(kl.kl_items, 4);
	/* ... and never past batch_max_items. */
	for (i = 0; i < 1000; i++)
		kv_limit_update(&kl, KV_LIMIT_OK, kl.kl_items);
	assert_int_equal(kl.kl_items, 10000);

	/* What was sent is halved when it was under the limit. */
	kv_limit_update(&kl, KV_LIMIT_SLOW, 300);
	assert_int_equal(kl.kl_items, 150);
	kv_limit_update(&kl, KV_LIMIT_TOO_LARGE, 30);
	assert_int_equal(kl.kl_items, 15);

	/* A configured limit under the floor is left alone by 524s. */
	kv_limit_init(&kl, 50);
	kv_limit_update(&kl, KV_LIMIT_SLOW, 50);
	assert_int_equal(kl.kl_items, 50);
	kv_limit_init(&kl, 150);
	kv_limit_update(&kl, KV_LIMIT_SLOW, 150);
	assert_int_equal(kl.kl_items, 100);
	for (i = 0; i < 10; i++)
		kv_limit_update(&kl, KV_LIMIT_OK, 100);
	assert_int_equal(kl.kl_items, 150);
	kv_limit_init(&kl, 1);
	kv_limit_update(&kl, KV_LIMIT_TOO_LARGE, 1);
	assert_int_equal(kl.kl_items, 1);
	for (i = 0; i < 10; i++)
		kv_limit_update(&kl, KV_LIMIT_OK, 1);
	assert_int_equal(kl.kl_items, 1);
}

/* Parses a JSON array literal for the unsuccessful_keys tests. */
static json_t *
jarray(const char *text)
{
	json_t	*a;

	a = json_loads(text, JSON_ALLOW_NUL, NULL);
	assert_non_null(a);
	assert_true(json_is_array(a));
	return a;
}

static void
test_unsuccessful_keep(void **state)
{
	struct kv_item	 items[4], *v[4];
	static const char *const keys[] = { "acme", "beta", "gamma",
	    "delta" };
	json_t		*bad;
	size_t		 i;

	(void)state;
	memset(items, 0, sizeof(items));
	for (i = 0; i < 4; i++)
		items[i].ki_key = (char *)keys[i];
#define RESET()	do { for (i = 0; i < 4; i++) v[i] = &items[i]; } while (0)

	/* Only the keys listed, in the order sent. */
	RESET();
	bad = jarray("[\"delta\",\"beta\"]");
	assert_int_equal(kv_unsuccessful_keep(v, 4, bad), 2);
	assert_ptr_equal(v[0], &items[1]);
	assert_ptr_equal(v[1], &items[3]);
	json_decref(bad);
	/* Listed twice is still once. */
	RESET();
	bad = jarray("[\"gamma\",\"gamma\"]");
	assert_int_equal(kv_unsuccessful_keep(v, 4, bad), 1);
	assert_ptr_equal(v[0], &items[2]);
	json_decref(bad);

	/* A key we did not send: the reply cannot be trusted; all again. */
	RESET();
	bad = jarray("[\"beta\",\"omega\"]");
	assert_int_equal(kv_unsuccessful_keep(v, 4, bad), 4);
	for (i = 0; i < 4; i++)
		assert_ptr_equal(v[i], &items[i]);
	json_decref(bad);
	RESET();
	bad = jarray("[\"omega\"]");
	assert_int_equal(kv_unsuccessful_keep(v, 4, bad), 4);
	json_decref(bad);
	/* Not strings: the same. */
	RESET();
	bad = jarray("[\"beta\",{\"key\":\"acme\"}]");
	assert_int_equal(kv_unsuccessful_keep(v, 4, bad), 4);
	json_decref(bad);
	RESET();
	bad = jarray("[null]");
	assert_int_equal(kv_unsuccessful_keep(v, 4, bad), 4);
	json_decref(bad);
	RESET();
	bad = jarray("[\"acme\\u0000x\"]");
	assert_int_equal(kv_unsuccessful_keep(v, 4, bad), 4);
	json_decref(bad);
	/* A key of the batch but not of this request (v[0..2) only). */
	RESET();
	bad = jarray("[\"gamma\"]");
	assert_int_equal(kv_unsuccessful_keep(v, 2, bad), 2);
	json_decref(bad);
#undef RESET
}

/* Which keys a late landing of an abandoned request could spoil. */
static void
test_fate_note(void **state)
{
	json_t	*f;

	(void)state;
	assert_non_null(f = json_object());
	/* A known write of a key never in doubt: nothing to remember. */
	assert_int_equal(kv_fate_note(f, "acme", 3, 0), 0);
	assert_int_equal(json_object_size(f), 0);
	/* In doubt: what went out is remembered... */
	assert_int_equal(kv_fate_note(f, "acme", 3, 1), 0);
	assert_int_equal(json_integer_value(json_object_get(f, "acme")), 3);
	/* ... and the retry that carried the same leaves it harmless. */
	assert_int_equal(kv_fate_note(f, "acme", 3, 0), 0);
	assert_int_equal(kv_fate_note(f, "acme", 3, 1), 0);
	assert_int_equal(json_integer_value(json_object_get(f, "acme")), 3);
	/* Anything else written since: the late one could undo it. */
	assert_int_equal(kv_fate_note(f, "acme", 4, 0), 0);
	assert_int_equal(json_integer_value(json_object_get(f, "acme")),
	    KV_FATE_MIXED);
	/* Mixed stays mixed. */
	assert_int_equal(kv_fate_note(f, "acme", 3, 1), 0);
	assert_int_equal(kv_fate_note(f, "acme", 4, 0), 0);
	assert_int_equal(json_integer_value(json_object_get(f, "acme")),
	    KV_FATE_MIXED);
	/* A delete against a put of the same key. */
	assert_int_equal(kv_fate_note(f, "beta", KV_FATE_DELETE, 1), 0);
	assert_int_equal(kv_fate_note(f, "beta", KV_FATE_DELETE, 0), 0);
	assert_int_equal(json_integer_value(json_object_get(f, "beta")),
	    KV_FATE_DELETE);
	assert_int_equal(kv_fate_note(f, "beta", 1, 1), 0);
	assert_int_equal(json_integer_value(json_object_get(f, "beta")),
	    KV_FATE_MIXED);
	assert_int_equal(json_object_size(f), 2);
	json_decref(f);
}

/* Envelopes. */

static void
test_envelope(void **state)
{
	static const char ok[] = "{\"success\":true,\"errors\":[],"
	    "\"messages\":[],\"result\":{\"successful_key_count\":3,"
	    "\"unsuccessful_keys\":[\"a\",\"b\"]}}";
	static const char bad[] = "{\"success\":false,\"errors\":[{\"code\":"
	    "10013,\"message\":\"namespace\\nnot\\u0007found\"}],"
	    "\"result\":null}";
	static const char html[] = "<!DOCTYPE html>\n<html><title>524: A "
	    "timeout occurred</title></html>";
	static const char nosuccess[] = "{\"result\":[]}";
	static const char many[] = "{\"success\":false,\"errors\":[{\"code\":"
	    "6003,\"message\":\"Invalid request headers\",\"error_chain\":"
	    "[{\"code\":6111,\"message\":\"Invalid format\"}]},{\"code\":"
	    "10048,\"message\":\"x\"},{\"code\":\"nan\"}],\"result\":null}";
	static const char clean[] = "{\"success\":true,\"result\":"
	    "{\"successful_key_count\":3,\"unsuccessful_keys\":[]}}";
	struct kv_envelope	 env;
	json_t			*u;

	(void)state;
	kv_envelope_parse(ok, strlen(ok), &env);
	assert_true(env.ke_parsed);
	assert_true(env.ke_success);
	assert_int_equal(env.ke_code, 0);
	assert_non_null(u = kv_envelope_unsuccessful(&env));
	assert_int_equal(json_array_size(u), 2);
	kv_envelope_release(&env);

	kv_envelope_parse(bad, strlen(bad), &env);
	assert_true(env.ke_parsed);
	assert_false(env.ke_success);
	assert_int_equal(env.ke_code, 10013);
	/* Control characters do not reach the log. */
	assert_string_equal(env.ke_message, "namespace?not?found");
	assert_null(kv_envelope_unsuccessful(&env));
	kv_envelope_release(&env);

	/* Every errors[] entry and its error_chain, in order. */
	kv_envelope_parse(many, strlen(many), &env);
	assert_true(env.ke_parsed);
	assert_int_equal(env.ke_code, 6003);
	assert_int_equal(env.ke_ncodes, 3);
	assert_int_equal(env.ke_codes[0], 6003);
	assert_int_equal(env.ke_codes[1], 10048);
	assert_int_equal(env.ke_codes[2], 6111);
	kv_envelope_release(&env);

	kv_envelope_parse(html, strlen(html), &env);
	assert_false(env.ke_parsed);
	assert_int_equal(env.ke_ncodes, 0);
	kv_envelope_release(&env);
	kv_envelope_parse(nosuccess, strlen(nosuccess), &env);
	assert_false(env.ke_parsed);
	kv_envelope_release(&env);
	kv_envelope_parse(NULL, 0, &env);
	assert_false(env.ke_parsed);
	kv_envelope_release(&env);
	/* Not NUL-terminated: only len bytes count. */
	kv_envelope_parse(clean, strlen(clean) - 1, &env);
	assert_false(env.ke_parsed);
	kv_envelope_release(&env);
	kv_envelope_parse(clean, strlen(clean), &env);
	assert_true(env.ke_parsed);
	assert_null(kv_envelope_unsuccessful(&env));
	kv_envelope_release(&env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_count_limit),
		cmocka_unit_test(test_batch_byte_limit),
		cmocka_unit_test(test_batch_item_too_big),
		cmocka_unit_test(test_batch_invariants),
		cmocka_unit_test(test_items),
		cmocka_unit_test(test_retry_after_seconds),
		cmocka_unit_test(test_retry_after_date),
		cmocka_unit_test(test_retry_after_garbage),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_decide_ok),
		cmocka_unit_test(test_decide_2xx_not_ok),
		cmocka_unit_test(test_decide_429),
		cmocka_unit_test(test_decide_server_errors),
		cmocka_unit_test(test_decide_transport),
		cmocka_unit_test(test_decide_refusals),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_decide_uncertain),
		cmocka_unit_test(test_decide_codes),
		cmocka_unit_test(test_decide_kind),
		cmocka_unit_test(test_decide_token_source),
		cmocka_unit_test(test_prune_allowed),
		cmocka_unit_test(test_utc_midnight),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_unsuccessful_keep),
		cmocka_unit_test(test_fate_note),
	};

	proto_json_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
