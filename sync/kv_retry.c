/*
 * kv_retry_decide(), the one function that decides what happens after
 * every attempt of a KV request, and the backoff and Retry-After waits
 * it picks from.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "sync.h"

/* The retry decision. */

uint64_t
kv_backoff_ms(unsigned attempt, uint32_t rnd)
{
	uint64_t	d, half;

	d = attempt >= 20 ? KV_BACKOFF_CAP_MS :
	    (uint64_t)KV_BACKOFF_BASE_MS << attempt;
	if (d > KV_BACKOFF_CAP_MS)
		d = KV_BACKOFF_CAP_MS;
	half = d / 2;
	return half + rnd % (d - half + 1);
}

int
kv_retry_after_ms(const char *value, time_t now, uint64_t *ms)
{
	const char	*p, *e;
	uint64_t	 secs = 0;
	time_t		 t;
	int		 digits = 1;

	if (value == NULL)
		return -1;
	for (p = value; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '\0')
		return -1;
	for (e = p; *e >= '0' && *e <= '9'; e++)
		;
	if (e == p)
		digits = 0;
	for (; *e == ' ' || *e == '\t'; e++)
		;
	if (digits && *e == '\0') {
		/* delta-seconds; anything over the cap is the cap. */
		for (; *p >= '0' && *p <= '9'; p++) {
			secs = secs * 10 + (uint64_t)(*p - '0');
			if (secs > KV_RETRY_AFTER_MAX_MS / 1000) {
				secs = KV_RETRY_AFTER_MAX_MS / 1000;
				break;
			}
		}
	} else {
		/* An HTTP-date; a sign or bare words are garbage. */
		if (*p == '-' || *p == '+' || digits)
			return -1;
		if ((t = curl_getdate(p, NULL)) == -1)
			return -1;
		secs = t > now ? (uint64_t)(t - now) : 0;
		if (secs > KV_RETRY_AFTER_MAX_MS / 1000)
			secs = KV_RETRY_AFTER_MAX_MS / 1000;
	}
	*ms = secs * 1000;
	if (*ms < KV_RETRY_AFTER_MIN_MS)
		*ms = KV_RETRY_AFTER_MIN_MS;
	return 0;
}

/* " (HTTP 400: message [code 10001])" style detail of a refusal. */
static void
kv_detail(const struct kv_outcome *o, char *buf, size_t len)
{
	if (o->ko_error_message != NULL && o->ko_error_message[0] != '\0' &&
	    o->ko_error_code != 0)
		snprintf(buf, len, "HTTP %ld: %s [code %ld]", o->ko_status,
		    o->ko_error_message, o->ko_error_code);
	else if (o->ko_error_message != NULL && o->ko_error_message[0] != '\0')
		snprintf(buf, len, "HTTP %ld: %s", o->ko_status,
		    o->ko_error_message);
	else if (o->ko_error_code != 0)
		snprintf(buf, len, "HTTP %ld, code %ld", o->ko_status,
		    o->ko_error_code);
	else
		snprintf(buf, len, "HTTP %ld", o->ko_status);
}

static const char *
kv_curl_text(const struct kv_outcome *o)
{
	if (o->ko_curl_error != NULL && o->ko_curl_error[0] != '\0')
		return o->ko_curl_error;
	return curl_easy_strerror(o->ko_curl);
}

/* Whether the reply carries Cloudflare error code c anywhere. */
static int
kv_has_code(const struct kv_outcome *o, long c)
{
	size_t	i;

	if (o->ko_ncodes == 0)
		return o->ko_error_code == c;
	for (i = 0; i < o->ko_ncodes; i++) {
		if (o->ko_codes[i] == c)
			return 1;
	}
	return 0;
}

/*
 * The permission a refused token lacks: each kind of target writes
 * through another API, and naming the KV one to a worker_secrets target
 * sends its owner to the wrong checkbox.
 */
static const char *
kv_permission(const struct kv_outcome *o)
{
	if (o->ko_kind == SYNC_KIND_WORKER_SECRETS)
		return "\"Workers Scripts: Edit\" permission (account level)";
	return "\"Workers KV Storage Write\" permission";
}

/* The setting that holds the token: the target's own, when known. */
static const char *
kv_token_source(const struct kv_outcome *o)
{
	if (o->ko_token_source != NULL)
		return o->ko_token_source;
	return "cf_api_token_file (or cf_api_token_credential)";
}

/*
 * Refusals told apart by Cloudflare's error codes, which say more than
 * the status: a 429 can be the day's write limit, a 400 a token file
 * that holds no token, a 403 a challenge page meant for browsers.
 * Returns 1 with d filled (never retried), or 0 to go on by the status.
 */
static int
kv_decide_codes(const struct kv_outcome *o, const char *detail,
    struct kv_decision *d)
{
	long	st = o->ko_status;

	if (st >= 200 && st <= 299 && o->ko_envelope && o->ko_success)
		return 0;
	if (st == 403 && o->ko_challenge) {
		snprintf(d->kd_reason, sizeof(d->kd_reason), "Cloudflare "
		    "answered with a challenge page (HTTP 403, cf-mitigated: "
		    "challenge), meant for browsers: this is not a token "
		    "problem; the requests come from an address or through a "
		    "proxy that Cloudflare challenges, or cf_api_base is not "
		    "the API (%s)", SYNC_DEFAULT_API_BASE);
		return 1;
	}
	if (kv_has_code(o, 10048)) {
		d->kd_daily_limit = 1;
		snprintf(d->kd_reason, sizeof(d->kd_reason), "the daily limit "
		    "of KV writes of the free plan is used up (%s): nothing "
		    "more can be written until 00:00 UTC; the account in "
		    "cf_account_id needs the Workers Paid plan to lift it",
		    detail);
		return 1;
	}
	if (kv_has_code(o, 6003) || kv_has_code(o, 6111)) {
		snprintf(d->kd_reason, sizeof(d->kd_reason), "Cloudflare "
		    "found the Authorization header malformed (%s): %s does "
		    "not hold an API token alone (quotes around it? a Global "
		    "API Key instead of a token?)", detail, kv_token_source(o));
		return 1;
	}
	if (kv_has_code(o, 9109) || kv_has_code(o, 10000) ||
	    kv_has_code(o, 1000)) {
		d->kd_auth = 1;
		snprintf(d->kd_reason, sizeof(d->kd_reason), "the API token "
		    "was refused (%s): check %s: the token is invalid or "
		    "expired, or lacks the %s on the account in cf_account_id",
		    detail, kv_token_source(o), kv_permission(o));
		return 1;
	}
	if (kv_has_code(o, 7003) || kv_has_code(o, 7000)) {
		d->kd_no_route = 1;
		/* A worker_secrets target has no namespace to blame. */
		if (o->ko_kind == SYNC_KIND_WORKER_SECRETS)
			snprintf(d->kd_reason, sizeof(d->kd_reason),
			    "Cloudflare has no such account (%s): check "
			    "cf_account_id (32 hex characters, as the "
			    "dashboard shows it)", detail);
		else
			snprintf(d->kd_reason, sizeof(d->kd_reason),
			    "Cloudflare has no such account or namespace "
			    "(%s): check cf_account_id and cf_namespace_id "
			    "(32 hex characters each, as the dashboard shows "
			    "them)", detail);
		return 1;
	}
	if (kv_has_code(o, 10013)) {
		snprintf(d->kd_reason, sizeof(d->kd_reason), "the KV "
		    "namespace was not found (%s): check cf_namespace_id (a "
		    "namespace of the account in cf_account_id)", detail);
		return 1;
	}
	if (kv_has_code(o, 10009)) {
		d->kd_not_found = 1;
		snprintf(d->kd_reason, sizeof(d->kd_reason), "the key was not "
		    "found (%s): check cf_namespace_id and kv_key_prefix",
		    detail);
		return 1;
	}
	return 0;
}

void
kv_retry_decide(const struct kv_outcome *o, uint32_t rnd,
    struct kv_decision *d)
{
	char		 detail[384], why[448];
	uint64_t	 ra;
	long		 st = o->ko_status;
	int		 have_ra;

	memset(d, 0, sizeof(*d));
	d->kd_verdict = KV_FATAL;
	why[0] = '\0';
	kv_detail(o, detail, sizeof(detail));
	snprintf(d->kd_detail, sizeof(d->kd_detail), "%s", detail);
	have_ra = kv_retry_after_ms(o->ko_retry_after, o->ko_now, &ra) == 0;

	if (o->ko_curl == CURLE_OK && kv_decide_codes(o, detail, d))
		return;
	if (o->ko_curl != CURLE_OK) {
		switch (o->ko_curl) {
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_CRL_BADFILE:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
		case CURLE_SSL_CERTPROBLEM:
			snprintf(d->kd_reason, sizeof(d->kd_reason), "TLS "
			    "certificate verification failed (%s): check "
			    "cf_ca_file (the CA bundle that signs the API's "
			    "certificate) and cf_api_base", kv_curl_text(o));
			return;
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
			snprintf(d->kd_reason, sizeof(d->kd_reason), "cannot "
			    "use the API URL (%s): check cf_api_base",
			    kv_curl_text(o));
			return;
		case CURLE_ABORTED_BY_CALLBACK:
			snprintf(d->kd_reason, sizeof(d->kd_reason),
			    "interrupted");
			return;
		case CURLE_WRITE_ERROR:
			snprintf(d->kd_reason, sizeof(d->kd_reason), "the "
			    "API's reply is larger than %d MiB: check "
			    "cf_api_base",
			    KV_REPLY_MAX >> 20);
			return;
		case CURLE_OUT_OF_MEMORY:
		case CURLE_FAILED_INIT:
		case CURLE_NOT_BUILT_IN:
		case CURLE_UNKNOWN_OPTION:
		case CURLE_BAD_FUNCTION_ARGUMENT:
			snprintf(d->kd_reason, sizeof(d->kd_reason), "libcurl "
			    "cannot make the request: %s", kv_curl_text(o));
			return;
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
			/* Nothing reached the server. */
			snprintf(why, sizeof(why), "%s", kv_curl_text(o));
			d->kd_delay_ms = kv_backoff_ms(o->ko_attempt, rnd);
			break;
		default:
			/*
			 * A timeout, a reset: the network.  Once the request
			 * went out, the server may still carry it out.
			 */
			snprintf(why, sizeof(why), "%s", kv_curl_text(o));
			d->kd_delay_ms = kv_backoff_ms(o->ko_attempt, rnd);
			d->kd_uncertain = o->ko_sent;
			d->kd_slow = o->ko_sent &&
			    o->ko_curl == CURLE_OPERATION_TIMEDOUT;
			break;
		}
	} else if (st >= 200 && st <= 299) {
		if (!o->ko_envelope) {
			snprintf(d->kd_reason, sizeof(d->kd_reason), "HTTP "
			    "%ld but the reply is not a Cloudflare API reply: "
			    "check cf_api_base", st);
			return;
		}
		if (!o->ko_success) {
			snprintf(d->kd_reason, sizeof(d->kd_reason),
			    "Cloudflare reported a failure (%s): check "
			    "cf_account_id and cf_namespace_id", detail);
			return;
		}
		if (o->ko_unsuccessful == 0) {
			d->kd_verdict = KV_OK;
			snprintf(d->kd_reason, sizeof(d->kd_reason), "HTTP %ld",
			    st);
			return;
		}
		snprintf(why, sizeof(why), "%zu of %zu keys were not stored "
		    "(unsuccessful_keys)", o->ko_unsuccessful, o->ko_items);
		d->kd_delay_ms = kv_backoff_ms(o->ko_attempt, rnd);
	} else if (st == 429) {
		snprintf(why, sizeof(why), "rate limited (%s)", detail);
		if (have_ra)
			d->kd_delay_ms = ra;
		else {
			d->kd_delay_ms = kv_backoff_ms(o->ko_attempt, rnd);
			if (d->kd_delay_ms < KV_RETRY_AFTER_DEF_MS)
				d->kd_delay_ms = KV_RETRY_AFTER_DEF_MS;
		}
	} else if (st == 408 || (st >= 500 && st <= 599)) {
		snprintf(why, sizeof(why), "server error (%s)", detail);
		d->kd_delay_ms = kv_backoff_ms(o->ko_attempt, rnd);
		if (have_ra && ra > d->kd_delay_ms)
			d->kd_delay_ms = ra;
		/* A 524 means the origin is still at it. */
		d->kd_uncertain = 1;
		d->kd_slow = st == 524;
	} else if (st == 413) {
		if (o->ko_items > 1) {
			d->kd_verdict = KV_SPLIT;
			snprintf(d->kd_reason, sizeof(d->kd_reason), "the "
			    "request is too large (HTTP 413)");
			return;
		}
		snprintf(d->kd_reason, sizeof(d->kd_reason), "the API refused "
		    "a single item as too large (HTTP 413): the tenant's "
		    "config is over what KV accepts in one request");
		return;
	} else if (st == 401) {
		snprintf(d->kd_reason, sizeof(d->kd_reason), "the API token "
		    "was refused (%s): check %s", detail, kv_token_source(o));
		return;
	} else if (st == 403) {
		snprintf(d->kd_reason, sizeof(d->kd_reason), "the API token "
		    "may not do this (%s): give the token in %s the %s on the "
		    "account in cf_account_id", detail, kv_token_source(o),
		    kv_permission(o));
		return;
	} else if (st == 400) {
		snprintf(d->kd_reason, sizeof(d->kd_reason), "Cloudflare "
		    "refused the request (%s): check cf_account_id and "
		    "cf_namespace_id", detail);
		return;
	} else if (st == 404) {
		snprintf(d->kd_reason, sizeof(d->kd_reason), "the namespace "
		    "or account was not found (%s): check cf_namespace_id / "
		    "cf_account_id (and cf_api_base)", detail);
		return;
	} else if (st >= 300 && st <= 399) {
		snprintf(d->kd_reason, sizeof(d->kd_reason), "the API answered "
		    "with a redirect (HTTP %ld), which is not followed: check "
		    "cf_api_base", st);
		return;
	} else if (st == 0) {
		snprintf(why, sizeof(why), "no HTTP reply");
		d->kd_delay_ms = kv_backoff_ms(o->ko_attempt, rnd);
		d->kd_uncertain = o->ko_sent;
	} else {
		snprintf(d->kd_reason, sizeof(d->kd_reason), "Cloudflare "
		    "refused the request (%s)", detail);
		return;
	}

	/* Only the retryable cases get here, with why and kd_delay_ms set. */
	if (o->ko_max_attempts != 0 &&
	    o->ko_attempt + 1 >= o->ko_max_attempts) {
		snprintf(d->kd_reason, sizeof(d->kd_reason), "gave up after %u "
		    "attempts: %s", o->ko_attempt + 1, why);
		d->kd_delay_ms = 0;
		return;
	}
	d->kd_verdict = KV_RETRY;
	snprintf(d->kd_reason, sizeof(d->kd_reason), "%s", why);
}
