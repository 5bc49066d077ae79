/*
 * The Cloudflare Workers KV REST client of wfvault-sync: libcurl requests,
 * reply parsing, bulk batching, and kv_retry_decide(), the one function
 * that decides what happens after every attempt.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "log.h"
#include "proto.h"
#include "sync.h"
#include "util.h"

#define KV_USER_AGENT	SYNC_PROG "/" PROTO_SERVER_VERSION
#define KV_MESSAGE_MAX	200	/* of Cloudflare's error text we quote */

/*
 * libcurl's allocator.  Every block it frees or moves is wiped first: the
 * Authorization header and the request it builds carry the token.
 */
static void *
kv_malloc(size_t n)
{
	return malloc(n);
}

static void
kv_free(void *p)
{
	proto_wipe_free(p);
}

static char *
kv_strdup(const char *s)
{
	size_t	 n = strlen(s) + 1;
	char	*p;

	if ((p = malloc(n)) != NULL)
		memcpy(p, s, n);
	return p;
}

static void *
kv_calloc(size_t nmemb, size_t size)
{
	return calloc(nmemb, size);
}

int
kv_global_init(char *err, size_t errlen)
{
	CURLcode	cc;

	cc = curl_global_init_mem(CURL_GLOBAL_DEFAULT, kv_malloc, kv_free,
	    util_wipe_realloc, kv_strdup, kv_calloc);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "cannot initialise libcurl: %s",
		    curl_easy_strerror(cc));
		return -1;
	}
	return 0;
}

void
kv_global_cleanup(void)
{
	curl_global_cleanup();
}

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
	have_ra = kv_retry_after_ms(o->ko_retry_after, o->ko_now, &ra) == 0;

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
		    "was refused (%s): check cf_api_token_file (or "
		    "cf_api_token_credential)", detail);
		return;
	} else if (st == 403) {
		snprintf(d->kd_reason, sizeof(d->kd_reason), "the API token "
		    "may not do this (%s): give it the \"Workers KV Storage "
		    "Write\" permission on the account in cf_account_id",
		    detail);
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

/* Batching. */

/* The split over n sizes found at base + i * stride + off. */
static size_t
kv_split_core(const void *base, size_t stride, size_t off, size_t n,
    size_t max_items, size_t max_bytes)
{
	const char	*p = base;
	size_t		 k, bytes = 2, sz, add;

	if (max_bytes < 2)
		return 0;
	for (k = 0; k < n && k < max_items; k++) {
		memcpy(&sz, p + k * stride + off, sizeof(sz));
		if (sz > max_bytes)
			break;
		add = sz + (k > 0 ? 1 : 0);
		if (add > max_bytes - bytes)
			break;
		bytes += add;
	}
	return k;
}

size_t
kv_batch_split(const size_t *sizes, size_t n, size_t max_items,
    size_t max_bytes)
{
	return kv_split_core(sizes, sizeof(*sizes), 0, n, max_items,
	    max_bytes);
}

size_t
kv_batch_bytes(const size_t *sizes, size_t n)
{
	size_t	i, bytes = 2;

	for (i = 0; i < n; i++)
		bytes += sizes[i] + (i > 0 ? 1 : 0);
	return bytes;
}

void
kv_limit_init(struct kv_limit *kl, size_t max_items)
{
	kl->kl_max = max_items > 0 ? max_items : 1;
	kl->kl_items = kl->kl_max;
	kl->kl_streak = 0;
}

void
kv_limit_update(struct kv_limit *kl, enum kv_limit_event ev, size_t sent)
{
	size_t	base, half;

	/* Halve what was actually sent: it may be under the limit. */
	base = sent > 0 && sent < kl->kl_items ? sent : kl->kl_items;
	half = base / 2;
	switch (ev) {
	case KV_LIMIT_OK:
		if (++kl->kl_streak < KV_GROW_AFTER)
			return;
		kl->kl_streak = 0;
		kl->kl_items = kl->kl_items > kl->kl_max / 2 ? kl->kl_max :
		    kl->kl_items * 2;
		return;
	case KV_LIMIT_TOO_LARGE:
		kl->kl_items = half < 1 ? 1 : half;
		break;
	case KV_LIMIT_SLOW:
		/* Smaller, but never below the floor by this alone. */
		if (half < KV_SLOW_MIN_ITEMS)
			half = KV_SLOW_MIN_ITEMS;
		if (half < kl->kl_items)
			kl->kl_items = half;
		break;
	case KV_LIMIT_FAILED:
		break;
	}
	kl->kl_streak = 0;
}

size_t
kv_items_split(const struct kv_items *kis, size_t max_items,
    size_t max_bytes)
{
	return kv_split_core(kis->kis_v, sizeof(*kis->kis_v),
	    offsetof(struct kv_item, ki_len), kis->kis_n, max_items,
	    max_bytes);
}

/* Items. */

static int
kv_items_push(struct kv_items *kis, const char *key, char *json,
    uint64_t version)
{
	struct kv_item	*nv;
	size_t		 ncap;
	char		*k;

	if (kis->kis_n == kis->kis_cap) {
		ncap = kis->kis_cap == 0 ? 64 : kis->kis_cap * 2;
		if ((nv = reallocarray(kis->kis_v, ncap, sizeof(*nv))) == NULL)
			return -1;
		kis->kis_v = nv;
		kis->kis_cap = ncap;
	}
	if ((k = strdup(key)) == NULL)
		return -1;
	kis->kis_v[kis->kis_n].ki_key = k;
	kis->kis_v[kis->kis_n].ki_json = json;
	kis->kis_v[kis->kis_n].ki_len = strlen(json);
	kis->kis_v[kis->kis_n].ki_version = version;
	kis->kis_v[kis->kis_n].ki_uncertain = 0;
	kis->kis_bytes += kis->kis_v[kis->kis_n].ki_len;
	kis->kis_n++;
	return 0;
}

int
kv_items_add_put(struct kv_items *kis, const char *key, json_t *config,
    uint64_t version)
{
	json_t	*item;
	char	*value, *json;

	if (!json_is_object(config) || version > INT64_MAX)
		return -1;
	/* Sorted keys: the same config always makes the same value. */
	if ((value = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS)) ==
	    NULL)
		return -1;
	item = json_pack("{s:s,s:s,s:{s:I}}", "key", key, "value", value,
	    "metadata", "version", (json_int_t)version);
	proto_wipe_free(value);
	if (item == NULL)
		return -1;
	json = json_dumps(item, JSON_COMPACT);
	json_decref(item);
	if (json == NULL)
		return -1;
	if (kv_items_push(kis, key, json, version) == -1) {
		proto_wipe_free(json);
		return -1;
	}
	return 0;
}

int
kv_items_add_delete(struct kv_items *kis, const char *key)
{
	json_t	*s;
	char	*json;

	if ((s = json_string(key)) == NULL)
		return -1;
	json = json_dumps(s, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(s);
	if (json == NULL)
		return -1;
	if (kv_items_push(kis, key, json, 0) == -1) {
		proto_wipe_free(json);
		return -1;
	}
	return 0;
}

void
kv_items_drop(struct kv_items *kis, size_t n)
{
	size_t	i;

	if (n > kis->kis_n)
		n = kis->kis_n;
	for (i = 0; i < n; i++) {
		kis->kis_bytes -= kis->kis_v[i].ki_len;
		proto_wipe_free(kis->kis_v[i].ki_json);
		free(kis->kis_v[i].ki_key);
	}
	if (kis->kis_n > n)
		memmove(kis->kis_v, kis->kis_v + n, (kis->kis_n - n) *
		    sizeof(*kis->kis_v));
	kis->kis_n -= n;
}

void
kv_items_release(struct kv_items *kis)
{
	kv_items_drop(kis, kis->kis_n);
	free(kis->kis_v);
	kis->kis_v = NULL;
	kis->kis_n = kis->kis_cap = kis->kis_bytes = 0;
}

/* Replies. */

/* Copies s into buf as printable ASCII: it ends up in logs. */
static void
kv_printable(char *buf, size_t len, const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0' && i + 1 < len && i < KV_MESSAGE_MAX; i++)
		buf[i] = (unsigned char)s[i] >= 0x20 &&
		    (unsigned char)s[i] < 0x7f ? s[i] : '?';
	if (len > 0)
		buf[i] = '\0';
}

void
kv_envelope_parse(const char *body, size_t len, struct kv_envelope *env)
{
	json_t	*root, *v, *e;

	memset(env, 0, sizeof(*env));
	if (body == NULL || len == 0)
		return;
	if ((root = json_loadb(body, len, 0, NULL)) == NULL)
		return;
	if (!json_is_object(root)) {
		json_decref(root);
		return;
	}
	env->ke_root = root;
	v = json_object_get(root, "success");
	if (!json_is_boolean(v))
		return;
	env->ke_parsed = 1;
	env->ke_success = json_is_true(v);
	e = json_array_get(json_object_get(root, "errors"), 0);
	if (json_is_object(e)) {
		v = json_object_get(e, "code");
		if (json_is_integer(v))
			env->ke_code = (long)json_integer_value(v);
		v = json_object_get(e, "message");
		if (json_is_string(v))
			kv_printable(env->ke_message, sizeof(env->ke_message),
			    json_string_value(v));
	}
}

void
kv_envelope_release(struct kv_envelope *env)
{
	json_decref(env->ke_root);
	memset(env, 0, sizeof(*env));
}

json_t *
kv_envelope_unsuccessful(const struct kv_envelope *env)
{
	json_t	*a;

	if (!env->ke_parsed || !env->ke_success)
		return NULL;
	a = json_object_get(json_object_get(env->ke_root, "result"),
	    "unsuccessful_keys");
	if (!json_is_array(a) || json_array_size(a) == 0)
		return NULL;
	return a;
}

/* The client. */

static size_t
kv_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct kv_reply	*kr = arg;
	size_t		 n = size * nmemb, ncap;
	char		*nb;

	if (n > KV_REPLY_MAX - kr->kr_len)
		return 0;	/* CURLE_WRITE_ERROR */
	if (kr->kr_len + n + 1 > kr->kr_cap) {
		ncap = kr->kr_cap == 0 ? 16384 : kr->kr_cap;
		while (ncap < kr->kr_len + n + 1)
			ncap *= 2;
		if ((nb = realloc(kr->kr_body, ncap)) == NULL)
			return 0;
		kr->kr_body = nb;
		kr->kr_cap = ncap;
	}
	memcpy(kr->kr_body + kr->kr_len, data, n);
	kr->kr_len += n;
	kr->kr_body[kr->kr_len] = '\0';
	return n;
}

static size_t
kv_header_cb(char *data, size_t size, size_t nitems, void *arg)
{
	struct kv_reply	*kr = arg;
	size_t		 n = size * nitems, i, j;

	/* Each response (after a 100 Continue, say) starts afresh. */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		kr->kr_has_retry_after = 0;
		kr->kr_retry_after[0] = '\0';
	} else if (n > 12 && strncasecmp(data, "retry-after:", 12) == 0) {
		for (i = 12; i < n && (data[i] == ' ' || data[i] == '\t'); i++)
			;
		for (j = 0; i < n && j + 1 < sizeof(kr->kr_retry_after) &&
		    data[i] != '\r' && data[i] != '\n'; i++)
			kr->kr_retry_after[j++] =
			    (unsigned char)data[i] >= 0x20 &&
			    (unsigned char)data[i] < 0x7f ? data[i] : '?';
		while (j > 0 && (kr->kr_retry_after[j - 1] == ' ' ||
		    kr->kr_retry_after[j - 1] == '\t'))
			j--;
		kr->kr_retry_after[j] = '\0';
		kr->kr_has_retry_after = 1;
	}
	return n;
}

static int
kv_progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct kv_client	*kc = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return kc->kc_stopped != NULL && kc->kc_stopped() ? 1 : 0;
}

int
kv_client_init(struct kv_client *kc, const struct sync_conf *sc,
    const char *token, char *err, size_t errlen)
{
	static const char	 auth[] = "Authorization: Bearer ";
	static const char *const fixed[] = {
		"Content-Type: application/json",
		"Accept: application/json",
		"Expect:",	/* no 1 s wait for a 100 Continue */
		NULL
	};
	struct curl_slist	*l;
	char			*h;
	size_t			 hlen, i;

	memset(kc, 0, sizeof(*kc));
	kc->kc_max_attempts = KV_ONCE_ATTEMPTS;
	kv_limit_init(&kc->kc_limit, (size_t)sc->sc_batch_max_items);
	kc->kc_timeout = (long)sc->sc_request_timeout;
	kc->kc_protocols = sc->sc_api_plain_http ? "http,https" : "https";
	if ((kc->kc_curl = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot initialise libcurl");
		goto fail;
	}
	if (asprintf(&kc->kc_ns_url, "%s/accounts/%s/storage/kv/namespaces/"
	    "%s", sc->sc_api_base, sc->sc_account_id,
	    sc->sc_namespace_id) == -1) {
		kc->kc_ns_url = NULL;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (sc->sc_ca_file != NULL &&
	    (kc->kc_ca_file = strdup(sc->sc_ca_file)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	hlen = sizeof(auth) + strlen(token);
	if ((h = malloc(hlen)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	snprintf(h, hlen, "%s%s", auth, token);
	/* curl_slist_append copies h with kv_strdup; h is wiped here. */
	l = curl_slist_append(kc->kc_headers, h);
	explicit_bzero(h, hlen);
	free(h);
	if (l == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	kc->kc_headers = l;
	for (i = 0; fixed[i] != NULL; i++) {
		if ((l = curl_slist_append(kc->kc_headers, fixed[i])) ==
		    NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		kc->kc_headers = l;
	}
	return 0;
fail:
	kv_client_release(kc);
	return -1;
}

void
kv_client_release(struct kv_client *kc)
{
	if (kc->kc_curl != NULL)
		curl_easy_cleanup(kc->kc_curl);
	curl_slist_free_all(kc->kc_headers);
	free(kc->kc_ns_url);
	free(kc->kc_ca_file);
	if (kc->kc_reply.kr_body != NULL) {
		explicit_bzero(kc->kc_reply.kr_body, kc->kc_reply.kr_cap);
		free(kc->kc_reply.kr_body);
	}
	memset(kc, 0, sizeof(*kc));
}

/* Every option, every time: curl_easy_reset keeps only the connections. */
static CURLcode
kv_setup(struct kv_client *kc, const char *method, const char *url,
    const char *body, size_t len)
{
	CURL		*c = kc->kc_curl;
	CURLcode	 cc = CURLE_OK;

#define KV_SET(opt, val) do {						\
	if (cc == CURLE_OK)						\
		cc = curl_easy_setopt(c, opt, val);			\
} while (0)
	curl_easy_reset(c);
	KV_SET(CURLOPT_URL, url);
	KV_SET(CURLOPT_PROTOCOLS_STR, kc->kc_protocols);
	KV_SET(CURLOPT_FOLLOWLOCATION, 0L);
	KV_SET(CURLOPT_NOSIGNAL, 1L);
	KV_SET(CURLOPT_CONNECTTIMEOUT, KV_CONNECT_TIMEOUT);
	KV_SET(CURLOPT_TIMEOUT, kc->kc_timeout);
	KV_SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	KV_SET(CURLOPT_LOW_SPEED_TIME, KV_LOW_SPEED_TIME);
	KV_SET(CURLOPT_SSL_VERIFYPEER, 1L);
	KV_SET(CURLOPT_SSL_VERIFYHOST, 2L);
	KV_SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (kc->kc_ca_file != NULL)
		KV_SET(CURLOPT_CAINFO, kc->kc_ca_file);
	/* A proxy from the environment never sees loopback traffic. */
	KV_SET(CURLOPT_NOPROXY, "127.0.0.1,::1,localhost");
	KV_SET(CURLOPT_HTTPHEADER, kc->kc_headers);
	KV_SET(CURLOPT_USERAGENT, KV_USER_AGENT);
	KV_SET(CURLOPT_ACCEPT_ENCODING, "");
	KV_SET(CURLOPT_ERRORBUFFER, kc->kc_reply.kr_curl_error);
	KV_SET(CURLOPT_WRITEFUNCTION, kv_write_cb);
	KV_SET(CURLOPT_WRITEDATA, &kc->kc_reply);
	KV_SET(CURLOPT_HEADERFUNCTION, kv_header_cb);
	KV_SET(CURLOPT_HEADERDATA, &kc->kc_reply);
	KV_SET(CURLOPT_NOPROGRESS, 0L);
	KV_SET(CURLOPT_XFERINFOFUNCTION, kv_progress_cb);
	KV_SET(CURLOPT_XFERINFODATA, kc);
	if (body != NULL) {
		KV_SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		KV_SET(CURLOPT_POSTFIELDS, body);
		if (strcmp(method, "POST") != 0)
			KV_SET(CURLOPT_CUSTOMREQUEST, method);
	} else
		KV_SET(CURLOPT_HTTPGET, 1L);
#undef KV_SET
	return cc;
}

static CURLcode
kv_perform(struct kv_client *kc, const char *method, const char *url,
    const char *body, size_t len)
{
	struct kv_reply	*kr = &kc->kc_reply;
	CURLcode	 cc;

	kr->kr_status = 0;
	kr->kr_len = 0;
	if (kr->kr_body != NULL)
		kr->kr_body[0] = '\0';
	kr->kr_retry_after[0] = '\0';
	kr->kr_has_retry_after = 0;
	kr->kr_curl_error[0] = '\0';
	if ((cc = kv_setup(kc, method, url, body, len)) != CURLE_OK)
		return cc;
	log_debug("%s: %s %s (%zu bytes)", __func__, method, url, len);
	cc = curl_easy_perform(kc->kc_curl);
	kc->kc_requests++;
	if (curl_easy_getinfo(kc->kc_curl, CURLINFO_RESPONSE_CODE,
	    &kr->kr_status) != CURLE_OK)
		kr->kr_status = 0;
	log_debug("%s: curl %d, HTTP %ld, %zu bytes back", __func__, (int)cc,
	    kr->kr_status, kr->kr_len);
	return cc;
}

static int
kv_wait(struct kv_client *kc, uint64_t ms)
{
	struct timespec	ts;

	if (kc->kc_sleep != NULL)
		return kc->kc_sleep(ms);
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	return 0;
}

static int
kv_is_stopped(struct kv_client *kc)
{
	return kc->kc_stopped != NULL && kc->kc_stopped();
}

/*
 * One attempt: performs the request, parses the reply into env (the
 * caller releases it) and decides.  *bad is the borrowed
 * unsuccessful_keys array of a successful bulk reply, or NULL.
 */
static CURLcode
kv_attempt(struct kv_client *kc, const char *method, const char *url,
    const char *body, size_t len, size_t items, unsigned attempt,
    struct kv_envelope *env, json_t **bad, struct kv_decision *d)
{
	struct kv_outcome	 o;
	curl_off_t		 up = 0;
	long			 reqsize = 0;
	CURLcode		 cc;

	cc = kv_perform(kc, method, url, body, len);
	kv_envelope_parse(kc->kc_reply.kr_body, kc->kc_reply.kr_len, env);
	*bad = cc == CURLE_OK && kc->kc_reply.kr_status >= 200 &&
	    kc->kc_reply.kr_status <= 299 ? kv_envelope_unsuccessful(env) :
	    NULL;

	memset(&o, 0, sizeof(o));
	o.ko_curl = cc;
	o.ko_curl_error = kc->kc_reply.kr_curl_error;
	o.ko_status = kc->kc_reply.kr_status;
	/* Headers or body bytes out: the server may have the request. */
	if (curl_easy_getinfo(kc->kc_curl, CURLINFO_REQUEST_SIZE, &reqsize) !=
	    CURLE_OK || curl_easy_getinfo(kc->kc_curl,
	    CURLINFO_SIZE_UPLOAD_T, &up) != CURLE_OK)
		o.ko_sent = 1;
	else
		o.ko_sent = reqsize > 0 || up > 0;
	o.ko_envelope = env->ke_parsed;
	o.ko_success = env->ke_success;
	o.ko_error_code = env->ke_code;
	o.ko_error_message = env->ke_message;
	o.ko_retry_after = kc->kc_reply.kr_has_retry_after ?
	    kc->kc_reply.kr_retry_after : NULL;
	o.ko_now = time(NULL);
	o.ko_unsuccessful = json_array_size(*bad);
	o.ko_items = items;
	o.ko_attempt = attempt;
	o.ko_max_attempts = kc->kc_max_attempts;
	kv_retry_decide(&o, arc4random(), d);
	return cc;
}

size_t
kv_unsuccessful_keep(struct kv_item **v, size_t m, json_t *bad)
{
	json_t		*sent, *k;
	size_t		 i, j, kept = 0;

	if ((sent = json_object()) == NULL)
		return m;	/* send them all again: writes are idempotent */
	for (i = 0; i < m; i++) {
		if (json_object_set_new(sent, v[i]->ki_key, json_false()) ==
		    -1) {
			json_decref(sent);
			return m;
		}
	}
	/* Mark what bad names; anything else means we cannot tell. */
	json_array_foreach(bad, j, k) {
		if (!json_is_string(k) || json_string_length(k) !=
		    strlen(json_string_value(k)) ||
		    json_object_get(sent, json_string_value(k)) == NULL ||
		    json_object_set_new(sent, json_string_value(k),
		    json_true()) == -1) {
			json_decref(sent);
			return m;
		}
	}
	for (i = 0; i < m; i++) {
		if (json_is_true(json_object_get(sent, v[i]->ki_key)))
			v[kept++] = v[i];
	}
	json_decref(sent);
	return kept > 0 ? kept : m;
}

int
kv_fate_note(json_t *fates, const char *key, json_int_t wrote,
    int uncertain)
{
	json_t	*cur;

	cur = json_object_get(fates, key);
	if (cur == NULL) {
		if (!uncertain)
			return 0;
		return json_object_set_new(fates, key, json_integer(wrote));
	}
	if (json_integer_value(cur) == wrote)
		return 0;
	return json_integer_set(cur, KV_FATE_MIXED);
}

static char *
kv_body(struct kv_item **v, size_t m, size_t *len)
{
	size_t	 i, total = 2, off = 0;
	char	*b;

	for (i = 0; i < m; i++)
		total += v[i]->ki_len + (i > 0 ? 1 : 0);
	if ((b = malloc(total + 1)) == NULL)
		return NULL;
	b[off++] = '[';
	for (i = 0; i < m; i++) {
		if (i > 0)
			b[off++] = ',';
		memcpy(b + off, v[i]->ki_json, v[i]->ki_len);
		off += v[i]->ki_len;
	}
	b[off++] = ']';
	b[off] = '\0';
	*len = off;
	return b;
}

static int	kv_bulk_ptrs(struct kv_client *, int, const char *,
		    struct kv_item **, size_t, char *, size_t);

/* Notes that v[0..m) went out in a request whose fate is unknown. */
static void
kv_mark_uncertain(struct kv_client *kc, struct kv_item **v, size_t m)
{
	size_t	i;

	for (i = 0; i < m; i++)
		v[i]->ki_uncertain = 1;
	kc->kc_uncertain_ms = util_now_ms();
}

/*
 * Sends v[0..m) as one request, again and again until it is done.  When
 * the batch limit drops under m meanwhile, the rest goes back through
 * kv_bulk_ptrs in smaller requests.
 */
static int
kv_bulk_request(struct kv_client *kc, int del, const char *url,
    struct kv_item **v, size_t m, char *err, size_t errlen)
{
	struct kv_envelope	 env;
	struct kv_decision	 d;
	json_t			*bad;
	const char		*what = del ? "deleting" : "writing";
	char			*body;
	size_t			 len, before;
	unsigned		 attempt = 0;
	CURLcode		 cc;

	for (;;) {
		if (kv_is_stopped(kc))
			return KV_E_STOP;
		if ((body = kv_body(v, m, &len)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return KV_E_FAIL;
		}
		cc = kv_attempt(kc, del ? "POST" : "PUT", url, body, len, m,
		    attempt, &env, &bad, &d);
		proto_wipe_free(body);
		if (d.kd_uncertain)
			kv_mark_uncertain(kc, v, m);
		switch (d.kd_verdict) {
		case KV_OK:
			kv_envelope_release(&env);
			kv_limit_update(&kc->kc_limit, KV_LIMIT_OK, m);
			return 0;
		case KV_RETRY:
			if (bad != NULL)
				m = kv_unsuccessful_keep(v, m, bad);
			kv_envelope_release(&env);
			before = kc->kc_limit.kl_items;
			kv_limit_update(&kc->kc_limit, d.kd_slow ?
			    KV_LIMIT_SLOW : KV_LIMIT_FAILED, m);
			if (kc->kc_limit.kl_items < before)
				log_warnx("%s %zu KV key%s: %s; retrying in "
				    "%.1f s, at most %zu keys a request from "
				    "now on", what, m, m == 1 ? "" : "s",
				    d.kd_reason, (double)d.kd_delay_ms / 1000,
				    kc->kc_limit.kl_items);
			else
				log_warnx("%s %zu KV key%s: %s; retrying in "
				    "%.1f s", what, m, m == 1 ? "" : "s",
				    d.kd_reason, (double)d.kd_delay_ms / 1000);
			if (kv_wait(kc, d.kd_delay_ms) == -1)
				return KV_E_STOP;
			/* Smaller requests are new ones, with a new budget. */
			if (m > kc->kc_limit.kl_items)
				return kv_bulk_ptrs(kc, del, url, v, m, err,
				    errlen);
			attempt++;
			break;
		case KV_SPLIT:
			kv_envelope_release(&env);
			kv_limit_update(&kc->kc_limit, KV_LIMIT_TOO_LARGE, m);
			log_warnx("%s %zu KV keys: %s; at most %zu keys a "
			    "request from now on", what, m, d.kd_reason,
			    kc->kc_limit.kl_items);
			return kv_bulk_ptrs(kc, del, url, v, m, err, errlen);
		case KV_FATAL:
			kv_envelope_release(&env);
			if (cc == CURLE_ABORTED_BY_CALLBACK &&
			    kv_is_stopped(kc))
				return KV_E_STOP;
			if (m == 1 && kc->kc_reply.kr_status == 413)
				snprintf(err, errlen, "KV key '%s' (%zu "
				    "bytes): %s", v[0]->ki_key, v[0]->ki_len,
				    d.kd_reason);
			else
				snprintf(err, errlen, "%s %zu KV key%s: %s",
				    what, m, m == 1 ? "" : "s", d.kd_reason);
			return KV_E_FAIL;
		}
	}
}

/* v[0..m) in requests of at most the current batch limit each. */
static int
kv_bulk_ptrs(struct kv_client *kc, int del, const char *url,
    struct kv_item **v, size_t m, char *err, size_t errlen)
{
	size_t	off = 0, k;
	int	rc;

	while (off < m) {
		k = m - off;
		if (k > kc->kc_limit.kl_items)
			k = kc->kc_limit.kl_items;
		if ((rc = kv_bulk_request(kc, del, url, v + off, k, err,
		    errlen)) != 0)
			return rc;
		off += k;
	}
	return 0;
}

static int
kv_bulk(struct kv_client *kc, int del, struct kv_item *items, size_t n,
    char *err, size_t errlen)
{
	struct kv_item	**v;
	char		 *url;
	size_t		  i;
	int		  rc;

	if (n == 0)
		return 0;
	if ((v = calloc(n, sizeof(*v))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return KV_E_FAIL;
	}
	if (asprintf(&url, "%s/%s", kc->kc_ns_url, del ? "bulk/delete" :
	    "bulk") == -1) {
		free(v);
		snprintf(err, errlen, "out of memory");
		return KV_E_FAIL;
	}
	for (i = 0; i < n; i++)
		v[i] = &items[i];
	rc = kv_bulk_ptrs(kc, del, url, v, n, err, errlen);
	free(url);
	free(v);
	return rc;
}

int
kv_bulk_put(struct kv_client *kc, struct kv_item *items, size_t n,
    char *err, size_t errlen)
{
	return kv_bulk(kc, 0, items, n, err, errlen);
}

int
kv_bulk_delete(struct kv_client *kc, struct kv_item *items, size_t n,
    char *err, size_t errlen)
{
	return kv_bulk(kc, 1, items, n, err, errlen);
}

/* The URL of one page of the key listing. */
static char *
kv_list_url(struct kv_client *kc, const char *prefix, const char *cursor)
{
	char	*ep = NULL, *ec = NULL, *url = NULL;

	if (prefix != NULL && (ep = curl_easy_escape(kc->kc_curl, prefix,
	    0)) == NULL)
		goto done;
	if (cursor != NULL && (ec = curl_easy_escape(kc->kc_curl, cursor,
	    0)) == NULL)
		goto done;
	if (asprintf(&url, "%s/keys?limit=%d%s%s%s%s", kc->kc_ns_url,
	    KV_LIST_LIMIT, ep != NULL ? "&prefix=" : "", ep != NULL ? ep : "",
	    ec != NULL ? "&cursor=" : "", ec != NULL ? ec : "") == -1)
		url = NULL;
done:
	curl_free(ep);
	curl_free(ec);
	return url;
}

/*
 * Adds one page's keys to keys; *next is the page's cursor (new, caller
 * frees) or NULL on the last page.
 */
static int
kv_list_page(json_t *root, json_t *keys, char **next, char *err,
    size_t errlen)
{
	json_t		*result, *e, *name, *ver, *cur;
	size_t		 i;

	*next = NULL;
	result = json_object_get(root, "result");
	if (!json_is_array(result)) {
		snprintf(err, errlen, "the key listing has no result array: "
		    "check cf_api_base");
		return KV_E_FAIL;
	}
	json_array_foreach(result, i, e) {
		name = json_object_get(e, "name");
		if (!json_is_string(name) || json_string_length(name) !=
		    strlen(json_string_value(name))) {
			log_warnx("ignoring a KV key that is not a plain "
			    "string");
			continue;
		}
		ver = json_object_get(json_object_get(e, "metadata"),
		    "version");
		if (json_object_set_new(keys, json_string_value(name),
		    json_is_integer(ver) ?
		    json_integer(json_integer_value(ver)) : json_null()) ==
		    -1) {
			snprintf(err, errlen, "out of memory");
			return KV_E_FAIL;
		}
	}
	cur = json_object_get(json_object_get(root, "result_info"), "cursor");
	if (json_is_string(cur) && json_string_length(cur) > 0 &&
	    (*next = strdup(json_string_value(cur))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return KV_E_FAIL;
	}
	return 0;
}

int
kv_list_keys(struct kv_client *kc, const char *prefix, json_t *keys,
    char *err, size_t errlen)
{
	struct kv_envelope	 env;
	struct kv_decision	 d;
	json_t			*bad, *seen;
	char			*url = NULL, *cursor = NULL, *next;
	size_t			 keys0, pages = 0;
	unsigned		 attempt;
	CURLcode		 cc;
	int			 rc = KV_E_FAIL;

	/* Every cursor handed out so far: one seen again is a cycle. */
	if ((seen = json_object()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return KV_E_FAIL;
	}
	keys0 = json_object_size(keys);
	for (;;) {
		if ((url = kv_list_url(kc, prefix, cursor)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto done;
		}
		for (attempt = 0;; attempt++) {
			if (kv_is_stopped(kc)) {
				rc = KV_E_STOP;
				goto done;
			}
			cc = kv_attempt(kc, "GET", url, NULL, 0, 0, attempt,
			    &env, &bad, &d);
			if (d.kd_verdict == KV_OK)
				break;
			kv_envelope_release(&env);
			if (d.kd_verdict != KV_RETRY) {
				if (cc == CURLE_ABORTED_BY_CALLBACK &&
				    kv_is_stopped(kc))
					rc = KV_E_STOP;
				else
					snprintf(err, errlen, "listing KV "
					    "keys: %s", d.kd_reason);
				goto done;
			}
			log_warnx("listing KV keys: %s; retrying in %.1f s",
			    d.kd_reason, (double)d.kd_delay_ms / 1000);
			if (kv_wait(kc, d.kd_delay_ms) == -1) {
				rc = KV_E_STOP;
				goto done;
			}
		}
		rc = kv_list_page(env.ke_root, keys, &next, err, errlen);
		kv_envelope_release(&env);
		if (rc != 0)
			goto done;
		rc = KV_E_FAIL;
		free(url);
		url = NULL;
		/*
		 * An empty page with a cursor is not the end (KV has them);
		 * only no cursor is.  A cursor handed out before would loop
		 * for ever, and so would fresh cursors on pages that bring
		 * no new keys: pages are bounded by the keys they brought.
		 */
		pages++;
		if (next == NULL)
			break;
		if (json_object_get(seen, next) != NULL) {
			free(next);
			snprintf(err, errlen, "listing KV keys: the API "
			    "returned a cursor it had returned before (page "
			    "%zu), so the listing would never end; giving up",
			    pages);
			goto done;
		}
		if (pages > (json_object_size(keys) - keys0) / KV_LIST_LIMIT +
		    KV_LIST_SLACK_PAGES) {
			free(next);
			snprintf(err, errlen, "listing KV keys: %zu pages "
			    "brought only %zu keys, so the listing would never "
			    "end; giving up", pages,
			    json_object_size(keys) - keys0);
			goto done;
		}
		if (json_object_set_new(seen, next, json_true()) == -1) {
			free(next);
			snprintf(err, errlen, "out of memory");
			goto done;
		}
		free(cursor);
		cursor = next;
	}
	rc = 0;
done:
	free(url);
	free(cursor);
	json_decref(seen);
	return rc;
}
