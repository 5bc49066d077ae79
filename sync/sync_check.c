/*
 * wfvault-sync's preflight (--check, and the start of the long-running
 * mode): real API requests that prove a target's token, account and
 * namespace before anything is written; and the small policies around
 * it: how much --prune may delete, and when the free plan's day ends.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "log.h"
#include "proto.h"
#include "sync.h"

int
sync_prune_allowed(size_t marked, size_t stale, unsigned share_pct)
{
	size_t	limit;

	if (share_pct > 100)
		share_pct = 100;
	limit = marked / 100 * share_pct + marked % 100 * share_pct / 100;
	/* A small namespace can lose one key without --force. */
	if (limit == 0 && share_pct > 0)
		limit = 1;
	return stale <= limit;
}

uint64_t
sync_ms_to_utc_midnight(time_t now)
{
	time_t	next;

	if (now < 0)
		now = 0;
	next = (now / 86400 + 1) * 86400;
	return (uint64_t)(next - now) * 1000;
}

/*
 * A preflight request is tiny: an endpoint that does not answer it in
 * 30 s will not answer the sync's, and a check that waited 8 times the
 * target's request_timeout (150 s by default) would take 20 minutes.
 */
#define SYNC_PREFLIGHT_ATTEMPTS	3
#define SYNC_PREFLIGHT_TIMEOUT	30	/* seconds, at most request_timeout */

/*
 * One request, retried as kv_retry_decide says, but at most
 * SYNC_PREFLIGHT_ATTEMPTS times with a reply timeout of at most
 * SYNC_PREFLIGHT_TIMEOUT; kc's own limits are restored before it
 * returns.  what says what the request checks, for the retry log line.
 * Returns 0 with the reply in env (the caller releases it), KV_E_FAIL
 * with the decision in d (env released, but for its ke_code), or
 * KV_E_STOP.
 */
static int
sync_preflight_request(struct kv_client *kc, const char *what,
    const char *method, const char *url, const char *body, size_t len,
    struct kv_envelope *env, struct kv_decision *d)
{
	json_t		*bad;
	const char	*timeout_what;
	unsigned	 attempt, max_attempts;
	long		 code, timeout;
	CURLcode	 cc;
	int		 rc;

	max_attempts = kc->kc_max_attempts;
	timeout = kc->kc_timeout;
	timeout_what = kc->kc_timeout_what;
	if (kc->kc_max_attempts == 0 ||
	    kc->kc_max_attempts > SYNC_PREFLIGHT_ATTEMPTS)
		kc->kc_max_attempts = SYNC_PREFLIGHT_ATTEMPTS;
	if (kc->kc_timeout > SYNC_PREFLIGHT_TIMEOUT) {
		kc->kc_timeout = SYNC_PREFLIGHT_TIMEOUT;
		kc->kc_timeout_what = "a check's limit";
	}
	for (attempt = 0;; attempt++) {
		if (kv_is_stopped(kc)) {
			rc = KV_E_STOP;
			break;
		}
		cc = kv_attempt(kc, method, url, body, len, body != NULL ? 1 :
		    0, attempt, env, &bad, d);
		if (d->kd_verdict == KV_OK) {
			rc = 0;
			break;
		}
		/* A refusal's code can be the answer (10056: no secret). */
		code = env->ke_code;
		kv_envelope_release(env);
		env->ke_code = code;
		if (d->kd_verdict != KV_RETRY) {
			if (cc == CURLE_ABORTED_BY_CALLBACK && kv_is_stopped(kc))
				rc = KV_E_STOP;
			else
				rc = KV_E_FAIL;
			break;
		}
		log_warnx("preflight: %s (%s %s): %s; retrying in %.1f s", what,
		    method, url, d->kd_reason, (double)d->kd_delay_ms / 1000);
		if (kv_wait(kc, d->kd_delay_ms) == -1) {
			rc = KV_E_STOP;
			break;
		}
	}
	kc->kc_max_attempts = max_attempts;
	kc->kc_timeout = timeout;
	kc->kc_timeout_what = timeout_what;
	return rc;
}

/* The token's status from a verify reply: "active", or what it is. */
static const char *
sync_token_status(const struct kv_envelope *env)
{
	const char	*s;

	s = json_string_value(json_object_get(json_object_get(env->ke_root,
	    "result"), "status"));
	return s != NULL ? s : "of unknown status";
}

/*
 * The token: user-owned tokens verify at /user/tokens/verify, tokens an
 * account owns only at /accounts/{id}/tokens/verify (the first refuses
 * them with 1000 "Invalid API Token").  *owner is "user" or "account".
 */
static int
sync_preflight_token(struct kv_client *kc, const char *api_base,
    const char *account_id, const char **owner, char *msg, size_t msglen)
{
	struct kv_envelope	 env;
	struct kv_decision	 d, d_user;
	const char		*status;
	char			*url;
	int			 rc;

	if (asprintf(&url, "%s/user/tokens/verify", api_base) == -1) {
		snprintf(msg, msglen, "out of memory");
		return KV_E_FAIL;
	}
	rc = sync_preflight_request(kc, "verifying the API token", "GET",
	    url, NULL, 0, &env, &d_user);
	free(url);
	if (rc == KV_E_STOP)
		return rc;
	*owner = "user";
	if (rc != 0) {
		/* Only a token refused as such may be the account's. */
		if (!d_user.kd_auth) {
			snprintf(msg, msglen, "verifying the API token: %s",
			    d_user.kd_reason);
			return KV_E_FAIL;
		}
		if (asprintf(&url, "%s/accounts/%s/tokens/verify", api_base,
		    account_id) == -1) {
			snprintf(msg, msglen, "out of memory");
			return KV_E_FAIL;
		}
		rc = sync_preflight_request(kc, "verifying the API token as "
		    "the account's", "GET", url, NULL, 0, &env, &d);
		free(url);
		if (rc == KV_E_STOP)
			return rc;
		if (rc != 0) {
			snprintf(msg, msglen, "the API token is neither a valid "
			    "user token nor a token of the account in "
			    "cf_account_id (%s): %s", account_id,
			    d.kd_auth ? d_user.kd_reason : d.kd_reason);
			return KV_E_FAIL;
		}
		*owner = "account";
	}
	status = sync_token_status(&env);
	if (strcmp(status, "active") != 0) {
		snprintf(msg, msglen, "the API token is %s, not active: put an "
		    "active token in %s", status, kc->kc_token_source);
		kv_envelope_release(&env);
		return KV_E_FAIL;
	}
	kv_envelope_release(&env);
	return 0;
}

int
sync_preflight(struct kv_client *kc, const char *api_base,
    const char *account_id, const char *namespace_id, const char *prefix,
    char *msg, size_t msglen)
{
	struct kv_envelope	 env;
	struct kv_decision	 d;
	json_t			*body = NULL;
	const char		*owner, *title;
	char			*url = NULL, *json = NULL, *key = NULL;
	char			 name[128];
	size_t			 i;
	int			 rc;

	if ((rc = sync_preflight_token(kc, api_base, account_id, &owner, msg,
	    msglen)) != 0)
		return rc;

	/* The namespace, in the account. */
	rc = sync_preflight_request(kc, "reading the KV namespace", "GET",
	    kc->kc_ns_url, NULL, 0, &env, &d);
	if (rc == KV_E_STOP)
		return rc;
	if (rc != 0) {
		if (d.kd_auth)
			snprintf(msg, msglen, "the API token is valid but may "
			    "not read KV namespace %s of account %s (%s): give "
			    "the token in %s \"Workers KV Storage\" permission "
			    "on the account in cf_account_id, or check "
			    "cf_account_id", namespace_id, account_id,
			    d.kd_detail, kc->kc_token_source);
		else
			snprintf(msg, msglen, "KV namespace %s: %s",
			    namespace_id, d.kd_reason);
		return KV_E_FAIL;
	}
	title = json_string_value(json_object_get(json_object_get(
	    env.ke_root, "result"), "title"));
	/* The title goes to the terminal: printable only. */
	snprintf(name, sizeof(name), "%s", title != NULL ? title :
	    namespace_id);
	for (i = 0; name[i] != '\0'; i++) {
		if ((unsigned char)name[i] < 0x20 ||
		    (unsigned char)name[i] >= 0x7f)
			name[i] = '?';
	}
	kv_envelope_release(&env);

	/* Writing: deleting a key no tenant has proves it, changing nothing. */
	rc = KV_E_FAIL;
	if (asprintf(&key, "%s%s", prefix != NULL ? prefix : "",
	    SYNC_PREFLIGHT_KEY) == -1) {
		key = NULL;
		snprintf(msg, msglen, "out of memory");
		goto done;
	}
	if ((body = json_pack("[s]", key)) == NULL ||
	    (json = json_dumps(body, JSON_COMPACT)) == NULL ||
	    asprintf(&url, "%s/bulk/delete", kc->kc_ns_url) == -1) {
		url = NULL;
		snprintf(msg, msglen, "out of memory");
		goto done;
	}
	rc = sync_preflight_request(kc, "proving write access to the KV "
	    "namespace", "POST", url, json, strlen(json), &env, &d);
	if (rc == KV_E_STOP)
		goto done;
	if (rc != 0) {
		if (d.kd_auth)
			snprintf(msg, msglen, "the API token may read KV "
			    "namespace %s but not write to it (%s): give the "
			    "token in %s the \"Workers KV Storage Write\" "
			    "(Edit) permission", namespace_id, d.kd_detail,
			    kc->kc_token_source);
		else
			snprintf(msg, msglen, "writing to KV namespace %s: %s",
			    namespace_id, d.kd_reason);
		goto done;
	}
	kv_envelope_release(&env);
	snprintf(msg, msglen, "ok (%s token active, namespace %s, write "
	    "allowed)", owner, name);
	rc = 0;
done:
	free(url);
	free(json);
	free(key);
	json_decref(body);
	return rc;
}

/* Whether the secrets listed in a reply's result include name. */
static int
sync_secrets_listed(const struct kv_envelope *env, const char *name)
{
	json_t	*e;
	size_t	 i;

	json_array_foreach(json_object_get(env->ke_root, "result"), i, e) {
		if (json_is_string(json_object_get(e, "name")) &&
		    strcmp(json_string_value(json_object_get(e, "name")),
		    name) == 0)
			return 1;
	}
	return 0;
}

int
sync_preflight_secrets(struct kv_client *kc, const char *api_base,
    const char *account_id, const char *script, char *msg, size_t msglen)
{
	struct kv_envelope	 env;
	struct kv_decision	 d;
	const char		*owner;
	char			*url, *del, *es;
	size_t			 n;
	int			 rc;

	if ((rc = sync_preflight_token(kc, api_base, account_id, &owner, msg,
	    msglen)) != 0)
		return rc;
	if ((es = curl_easy_escape(kc->kc_curl, script, 0)) == NULL) {
		snprintf(msg, msglen, "out of memory");
		return KV_E_FAIL;
	}
	rc = asprintf(&url, "%s/accounts/%s/workers/scripts/%s/secrets",
	    api_base, account_id, es);
	curl_free(es);
	if (rc == -1) {
		snprintf(msg, msglen, "out of memory");
		return KV_E_FAIL;
	}
	rc = sync_preflight_request(kc, "listing the Worker script's secrets",
	    "GET", url, NULL, 0, &env, &d);
	if (rc == KV_E_STOP)
		goto done;
	if (rc != 0) {
		/*
		 * The codes tell a missing script (10007) from a wrong
		 * account id in the path (7003, 7000): both are 404s.
		 */
		if (d.kd_no_route)
			snprintf(msg, msglen, "listing the secrets of Worker "
			    "script '%s' in account %s: %s", script,
			    account_id, d.kd_reason);
		else if (env.ke_code == CF_E_SCRIPT_NOT_FOUND)
			snprintf(msg, msglen, "the Worker script '%s' was not "
			    "found in account %s: check cf_script_name (and "
			    "cf_account_id)", script, account_id);
		else
			snprintf(msg, msglen, "listing the secrets of Worker "
			    "script '%s': %s", script, d.kd_reason);
		goto done;
	}
	n = json_array_size(json_object_get(env.ke_root, "result"));
	if (sync_secrets_listed(&env, SYNC_PREFLIGHT_SECRET)) {
		/* Someone made it: the check deletes nothing it did not make. */
		kv_envelope_release(&env);
		snprintf(msg, msglen, "ok (%s token active, script %s, %zu "
		    "secrets; write not proven: the script has a secret "
		    "named %s, which the check does not delete)", owner,
		    script, n, SYNC_PREFLIGHT_SECRET);
		rc = 0;
		goto done;
	}
	kv_envelope_release(&env);

	/*
	 * Writing: deleting a secret no field can map to proves it and
	 * changes nothing (a write would deploy a new version).
	 */
	if (asprintf(&del, "%s/%s", url, SYNC_PREFLIGHT_SECRET) == -1) {
		snprintf(msg, msglen, "out of memory");
		rc = KV_E_FAIL;
		goto done;
	}
	rc = sync_preflight_request(kc, "proving write access to the Worker "
	    "script's secrets", "DELETE", del, NULL, 0, &env, &d);
	free(del);
	if (rc == KV_E_STOP)
		goto done;
	if (rc == 0)
		kv_envelope_release(&env);
	else if (kc->kc_reply.kr_status == 404 &&
	    env.ke_code == CF_E_BINDING_NOT_FOUND)
		rc = 0;		/* no such secret: the token may delete */
	else {
		if (d.kd_auth)
			snprintf(msg, msglen, "the API token may list the "
			    "secrets of Worker script '%s' but not change "
			    "them (%s): give the token in %s the \"Workers "
			    "Scripts: Edit\" permission (account level) on the "
			    "account in cf_account_id", script, d.kd_detail,
			    kc->kc_token_source);
		else
			snprintf(msg, msglen, "deleting a secret of Worker "
			    "script '%s': %s", script, d.kd_reason);
		goto done;
	}
	snprintf(msg, msglen, "ok (%s token active, script %s, %zu secrets; "
	    "write allowed)", owner, script, n);
done:
	free(url);
	return rc;
}

int
sync_preflight_target(const struct sync_conf *sc,
    const struct sync_target *st, struct kv_client *kc, char *msg,
    size_t msglen)
{
	if (st->st_kind == SYNC_KIND_WORKER_SECRETS)
		return sync_preflight_secrets(kc, sc->sc_api_base,
		    st->st_account_id, st->st_script_name, msg, msglen);
	return sync_preflight(kc, sc->sc_api_base, st->st_account_id,
	    st->st_namespace_id, st->st_key_prefix, msg, msglen);
}
