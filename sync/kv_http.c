/*
 * The HTTP side of wfvault-sync's KV client: libcurl with a wiping
 * allocator, one attempt of a request, and the parsed reply envelope.
 */
#include <errno.h>
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

int
kv_global_init(char *err, size_t errlen)
{
	return util_curl_init(err, errlen);
}

void
kv_global_cleanup(void)
{
	curl_global_cleanup();
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

/* Appends the integer codes of the objects in errs to env's list. */
static void
kv_envelope_codes(json_t *errs, struct kv_envelope *env)
{
	json_t	*e, *c;
	size_t	 i;

	json_array_foreach(errs, i, e) {
		c = json_object_get(e, "code");
		if (json_is_integer(c) && env->ke_ncodes < KV_CODES_MAX)
			env->ke_codes[env->ke_ncodes++] =
			    (long)json_integer_value(c);
	}
}

void
kv_envelope_parse(const char *body, size_t len, struct kv_envelope *env)
{
	json_t	*root, *v, *e, *errs;
	size_t	 i;

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
	/*
	 * Every entry counts, and the error_chain under each: 6003 "Invalid
	 * request headers" says what is wrong only in its chain (6111).
	 */
	errs = json_object_get(root, "errors");
	kv_envelope_codes(errs, env);
	json_array_foreach(errs, i, e)
		kv_envelope_codes(json_object_get(e, "error_chain"), env);
	e = json_array_get(errs, 0);
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
		kr->kr_challenge = 0;
		kr->kr_has_ratelimit = 0;
		kr->kr_ratelimit[0] = '\0';
	} else if (n > 13 && strncasecmp(data, "cf-mitigated:", 13) == 0) {
		for (i = 13; i < n && (data[i] == ' ' || data[i] == '\t'); i++)
			;
		kr->kr_challenge = n - i >= 9 &&
		    strncasecmp(data + i, "challenge", 9) == 0;
	} else if (n > 10 && strncasecmp(data, "ratelimit:", 10) == 0) {
		for (i = 10; i < n && (data[i] == ' ' || data[i] == '\t'); i++)
			;
		for (j = 0; i < n && j + 1 < sizeof(kr->kr_ratelimit) &&
		    data[i] != '\r' && data[i] != '\n'; i++)
			kr->kr_ratelimit[j++] =
			    (unsigned char)data[i] >= 0x20 &&
			    (unsigned char)data[i] < 0x7f ? data[i] : '?';
		kr->kr_ratelimit[j] = '\0';
		kr->kr_has_ratelimit = 1;
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

/*
 * The timing of an attempt.  While the body goes out, a stall of
 * KV_LOW_SPEED_TIME without a byte ends it (the network is gone); once
 * it is out, Cloudflare may take its time to apply a large bulk write
 * (its edge gives up after 100 s with a 524), so the reply gets
 * request_timeout.  libcurl calls this at least once a second.
 */
static int
kv_progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct kv_client	*kc = arg;
	int64_t			 now;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;	/* 0 until libcurl starts sending: kc_body_len */
	if (kc->kc_stopped != NULL && kc->kc_stopped()) {
		kc->kc_abort = KV_ABORT_STOP;
		return 1;
	}
	now = util_now_ms();
	if (ulnow > kc->kc_ulnow) {
		kc->kc_ulnow = ulnow;
		kc->kc_progress_ms = now;
	}
	if (kc->kc_sent_ms == 0 && ulnow >= kc->kc_body_len)
		kc->kc_sent_ms = now;
	if (kc->kc_sent_ms == 0) {
		if (now - kc->kc_progress_ms >= KV_LOW_SPEED_TIME * 1000) {
			kc->kc_abort = KV_ABORT_STALLED;
			return 1;
		}
	} else if (now - kc->kc_sent_ms >= (int64_t)kc->kc_timeout * 1000) {
		kc->kc_abort = KV_ABORT_TIMEOUT;
		return 1;
	}
	return 0;
}

int
kv_client_init(struct kv_client *kc, const struct sync_conf *sc,
    const struct sync_target *st, const char *token, char *err,
    size_t errlen)
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
	kv_limit_init(&kc->kc_limit, (size_t)st->st_batch_max_items);
	kc->kc_timeout = (long)st->st_request_timeout;
	kc->kc_protocols = sc->sc_api_plain_http ? "http,https" : "https";
	kc->kc_kind = st->st_kind;
	/* Refusals name the one source this target's token comes from. */
	if ((st->st_token_credential != NULL ? asprintf(&kc->kc_token_source,
	    "cf_api_token_credential %s", st->st_token_credential) :
	    asprintf(&kc->kc_token_source, "cf_api_token_file %s",
	    st->st_token_file != NULL ? st->st_token_file : "")) == -1) {
		kc->kc_token_source = NULL;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((kc->kc_curl = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot initialise libcurl");
		goto fail;
	}
	if (st->st_namespace_id != NULL && asprintf(&kc->kc_ns_url,
	    "%s/accounts/%s/storage/kv/namespaces/%s", sc->sc_api_base,
	    st->st_account_id, st->st_namespace_id) == -1) {
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
	/* curl_slist_append copies h (wiped when freed: curlwipe.c). */
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
	free(kc->kc_token_source);
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
	/* No CURLOPT_TIMEOUT or LOW_SPEED: kv_progress_cb times it. */
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
	} else {
		KV_SET(CURLOPT_HTTPGET, 1L);
		/* A DELETE without a body (a Worker secret). */
		if (strcmp(method, "GET") != 0)
			KV_SET(CURLOPT_CUSTOMREQUEST, method);
	}
#undef KV_SET
	return cc;
}

/*
 * Waits until the shared budget lets a request start, and counts it.
 * Returns 0, or -1 when the agent is told to stop meanwhile.
 */
static int
kv_budget_wait(struct kv_client *kc)
{
	struct kv_budget	*kb = kc->kc_budget;
	uint64_t		 ms;
	int			 waited = 0, ratelimited = 0;

	if (kb == NULL)
		return 0;
	while ((ms = kv_budget_take(kb, util_now_ms(), waited,
	    &ratelimited, &kc->kc_budget_slot)) > 0) {
		if (!waited && ratelimited)
			log_info("waiting %.1f s for Cloudflare's rate limit "
			    "(its Ratelimit header) before the next API "
			    "request", (double)ms / 1000);
		else if (!waited)
			log_info("request budget used up (request_budget %zu "
			    "in %lld s): waiting %.1f s before the next API "
			    "request", kb->kb_max,
			    (long long)(kb->kb_window_ms / 1000),
			    (double)ms / 1000);
		waited = 1;
		if (kv_wait(kc, ms) == -1)
			return -1;
	}
	return 0;
}

/* Cloudflare's Ratelimit header: r=0 pauses every target for t s. */
static void
kv_budget_ratelimit(struct kv_client *kc)
{
	struct kv_reply	*kr = &kc->kc_reply;
	uint64_t	 ms;

	if (kc->kc_budget == NULL || !kr->kr_has_ratelimit)
		return;
	switch (kv_ratelimit_parse(kr->kr_ratelimit, &ms)) {
	case 1:
		log_info("Cloudflare's rate limit is used up (Ratelimit: %s): "
		    "no API request for %.0f s", kr->kr_ratelimit,
		    (double)ms / 1000);
		kv_budget_block(kc->kc_budget, util_now_ms() + (int64_t)ms);
		break;
	case -1:
		log_debug("%s: unparsed Ratelimit header: %s", __func__,
		    kr->kr_ratelimit);
		break;
	}
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
	kr->kr_challenge = 0;
	kr->kr_curl_error[0] = '\0';
	kr->kr_ratelimit[0] = '\0';
	kr->kr_has_ratelimit = 0;
	if (kv_budget_wait(kc) == -1)
		return CURLE_ABORTED_BY_CALLBACK;
	if ((cc = kv_setup(kc, method, url, body, len)) != CURLE_OK)
		return cc;
	log_debug("%s: %s %s (%zu bytes)", __func__, method, url, len);
	kc->kc_start_ms = kc->kc_progress_ms = util_now_ms();
	kc->kc_sent_ms = 0;
	kc->kc_ulnow = 0;
	kc->kc_body_len = body != NULL ? (curl_off_t)len : 0;
	kc->kc_abort = 0;
	cc = curl_easy_perform(kc->kc_curl);
	kc->kc_requests++;
	if (kc->kc_budget != NULL)
		kv_budget_done(kc->kc_budget, kc->kc_budget_slot,
		    util_now_ms());
	if (curl_easy_getinfo(kc->kc_curl, CURLINFO_RESPONSE_CODE,
	    &kr->kr_status) != CURLE_OK)
		kr->kr_status = 0;
	/* Our own timeouts are timeouts to the retry decision. */
	if (cc == CURLE_ABORTED_BY_CALLBACK && (kc->kc_abort ==
	    KV_ABORT_STALLED || kc->kc_abort == KV_ABORT_TIMEOUT)) {
		cc = CURLE_OPERATION_TIMEDOUT;
		if (kc->kc_abort == KV_ABORT_STALLED)
			snprintf(kr->kr_curl_error, sizeof(kr->kr_curl_error),
			    "sending the request stalled for %ld s",
			    KV_LOW_SPEED_TIME);
		else
			snprintf(kr->kr_curl_error, sizeof(kr->kr_curl_error),
			    "no reply within %s (%ld s) after the request "
			    "was sent", kc->kc_timeout_what != NULL ?
			    kc->kc_timeout_what : "request_timeout",
			    kc->kc_timeout);
	}
	kv_budget_ratelimit(kc);
	log_debug("%s: curl %d, HTTP %ld, %zu bytes back", __func__, (int)cc,
	    kr->kr_status, kr->kr_len);
	return cc;
}

int
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

int
kv_is_stopped(struct kv_client *kc)
{
	return kc->kc_stopped != NULL && kc->kc_stopped();
}

/*
 * One attempt: performs the request, parses the reply into env (the
 * caller releases it) and decides.  *bad is the borrowed
 * unsuccessful_keys array of a successful bulk reply, or NULL.
 */
CURLcode
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
	o.ko_codes = env->ke_codes;
	o.ko_ncodes = env->ke_ncodes;
	o.ko_challenge = kc->kc_reply.kr_challenge;
	o.ko_retry_after = kc->kc_reply.kr_has_retry_after ?
	    kc->kc_reply.kr_retry_after : NULL;
	o.ko_now = time(NULL);
	o.ko_unsuccessful = json_array_size(*bad);
	o.ko_items = items;
	o.ko_attempt = attempt;
	o.ko_max_attempts = kc->kc_max_attempts;
	o.ko_kind = kc->kc_kind;
	o.ko_token_source = kc->kc_token_source;
	kv_retry_decide(&o, arc4random(), d);
	if (d->kd_daily_limit)
		kc->kc_daily_limit = 1;
	return cc;
}
