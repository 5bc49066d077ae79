/*
 * The Cloudflare Workers KV requests of wfvault-sync: bulk writes and
 * deletes with their retries and splits, the fate of uncertain writes,
 * and the key listing.  One attempt is kv_http.c's, the verdict on it
 * kv_retry.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "log.h"
#include "proto.h"
#include "sync.h"
#include "util.h"

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
kv_list_page(json_t *root, json_t *keys, json_t *kids, char **next,
    char *err, size_t errlen)
{
	json_t		*result, *e, *name, *meta, *ver, *mark, *cur, *kid;
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
		/*
		 * Only a version with the mark is ours: a key written
		 * before the mark existed reads as null, so --reconcile
		 * rewrites it (adding the mark) and nothing deletes it.
		 */
		meta = json_object_get(e, "metadata");
		ver = json_object_get(meta, "version");
		mark = json_object_get(meta, KV_MARK_NAME);
		if (!json_is_integer(mark) ||
		    json_integer_value(mark) != KV_MARK_VALUE)
			ver = NULL;
		if (json_object_set_new(keys, json_string_value(name),
		    json_is_integer(ver) ?
		    json_integer(json_integer_value(ver)) : json_null()) ==
		    -1) {
			snprintf(err, errlen, "out of memory");
			return KV_E_FAIL;
		}
		kid = json_object_get(json_object_get(e, "metadata"), "kid");
		if (kids != NULL && json_is_string(kid) &&
		    json_object_set(kids, json_string_value(name), kid) == -1) {
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
    json_t *kids, char *err, size_t errlen)
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
		rc = kv_list_page(env.ke_root, keys, kids, &next, err,
		    errlen);
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
