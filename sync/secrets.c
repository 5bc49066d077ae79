/*
 * The Worker secrets target of wfvault-sync: the fields of one tenant
 * become the secrets of a Worker script (openai_api_key ->
 * env.OPENAI_API_KEY) through Cloudflare's Workers secrets API, one PUT
 * or DELETE a secret, with kv_http.c's attempts and kv_retry.c's one
 * retry decision.
 *
 * Secrets are write-only: the API lists names, never values.  So the
 * agent keeps, in memory, a keyed BLAKE2b hash of each value it pushed
 * (never the value) and sends only the fields whose hash changed.  After
 * a restart it knows nothing, pushes every field again, and deletes only
 * names that were fields of the tenant in a kept version (the daemon's
 * history) and are on the script's list: never a secret it did not write.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "log.h"
#include "proto.h"
#include "sync.h"
#include "util.h"

#define SECRETS_HASH_BYTES	32

/* Cloudflare's error codes of the secrets API. */
#define CF_E_BINDING_IN_USE	10053
#define CF_E_NOT_DEPLOYED	10215	/* the latest version is not deployed */

void
secrets_name(const char *field, char *name, size_t len)
{
	size_t	i;

	for (i = 0; field[i] != '\0' && i + 1 < len; i++)
		name[i] = (char)toupper((unsigned char)field[i]);
	if (len > 0)
		name[i] = '\0';
}

int
secrets_state_init(struct secrets_state *ss, const char *api_base,
    const char *account, const char *script, char *err, size_t errlen)
{
	memset(ss, 0, sizeof(*ss));
	if (sodium_init() == -1) {
		snprintf(err, errlen, "cannot initialise libsodium");
		return -1;
	}
	if (asprintf(&ss->ss_url, "%s/accounts/%s/workers/scripts/%s/secrets",
	    api_base, account, script) == -1) {
		ss->ss_url = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	randombytes_buf(ss->ss_key, sizeof(ss->ss_key));
	return 0;
}

void
secrets_state_release(struct secrets_state *ss)
{
	free(ss->ss_url);
	json_decref(ss->ss_pushed);
	json_decref(ss->ss_uncertain);
	sodium_memzero(ss, sizeof(*ss));
}

/*
 * The reason of a refusal of the secrets API, naming the setting to fix;
 * kv_retry_decide's own words for anything else.
 */
static void
secrets_reason(struct kv_client *kc, const struct kv_envelope *env,
    const struct kv_decision *d, char *buf, size_t len)
{
	long	st = kc->kc_reply.kr_status;
	char	detail[320];

	if (env->ke_message[0] != '\0')
		snprintf(detail, sizeof(detail), "HTTP %ld: %s [code %ld]", st,
		    env->ke_message, env->ke_code);
	else
		snprintf(detail, sizeof(detail), "HTTP %ld", st);
	if (env->ke_code == CF_E_SCRIPT_NOT_FOUND)
		snprintf(buf, len, "the Worker script does not exist (%s): "
		    "check cf_script_name (deploy the Worker first) and "
		    "cf_account_id", detail);
	else if (env->ke_code == CF_E_BINDING_IN_USE)
		snprintf(buf, len, "the Worker already has a binding of "
		    "another type by that name (%s): rename the field or the "
		    "Worker's binding", detail);
	else if (env->ke_code == CF_E_NOT_DEPLOYED)
		snprintf(buf, len, "the Worker's latest version is not "
		    "deployed, and Cloudflare changes secrets only then (%s): "
		    "deploy it (wrangler versions deploy)", detail);
	else if (d->kd_auth || d->kd_no_route)
		/* kv_retry_decide names this kind's setting to fix. */
		snprintf(buf, len, "%s", d->kd_reason);
	else if (st == 403 && !kc->kc_reply.kr_challenge)
		snprintf(buf, len, "the API token may not do this (%s): give "
		    "the token in %s the \"Workers Scripts: Edit\" "
		    "permission (account level) on the account in "
		    "cf_account_id", detail, kc->kc_token_source);
	else if (st == 404)
		snprintf(buf, len, "the account or script was not found "
		    "(%s): check cf_account_id and cf_script_name", detail);
	else if (st == 400 || st == 413 || (st >= 200 && st <= 299 &&
	    env->ke_parsed && !env->ke_success))
		snprintf(buf, len, "Cloudflare refused the request (%s)",
		    detail);
	else
		snprintf(buf, len, "%s", d->kd_reason);
}

/*
 * One request, again until it is done.  A DELETE answered 10056 (no such
 * secret) is done too (*gone set).  On 0, env holds the reply (the caller
 * releases it).  uncertain (or NULL) is set when an attempt's fate is
 * unknown.  Returns 0, KV_E_FAIL or KV_E_STOP.
 */
static int
secrets_request(struct kv_client *kc, const char *method, const char *url,
    const char *body, size_t len, const char *what, struct kv_envelope *env,
    int *gone, int *uncertain, char *err, size_t errlen)
{
	struct kv_decision	 d;
	json_t			*bad;
	char			 why[1024];
	unsigned		 attempt;
	CURLcode		 cc;

	if (gone != NULL)
		*gone = 0;
	for (attempt = 0;; attempt++) {
		if (kv_is_stopped(kc))
			return KV_E_STOP;
		cc = kv_attempt(kc, method, url, body, len, 1, attempt, env,
		    &bad, &d);
		if (d.kd_uncertain) {
			kc->kc_uncertain_ms = util_now_ms();
			if (uncertain != NULL)
				*uncertain = 1;
		}
		if (d.kd_verdict == KV_OK)
			return 0;
		if (gone != NULL && kc->kc_reply.kr_status == 404 &&
		    env->ke_code == CF_E_BINDING_NOT_FOUND) {
			*gone = 1;
			return 0;
		}
		if (d.kd_verdict == KV_RETRY) {
			kv_envelope_release(env);
			log_warnx("%s: %s; retrying in %.1f s", what,
			    d.kd_reason, (double)d.kd_delay_ms / 1000);
			if (kv_wait(kc, d.kd_delay_ms) == -1)
				return KV_E_STOP;
			continue;
		}
		if (cc == CURLE_ABORTED_BY_CALLBACK && kv_is_stopped(kc)) {
			kv_envelope_release(env);
			return KV_E_STOP;
		}
		secrets_reason(kc, env, &d, why, sizeof(why));
		kv_envelope_release(env);
		snprintf(err, errlen, "%s: %s", what, why);
		return KV_E_FAIL;
	}
}

int
secrets_list(struct kv_client *kc, const char *url, json_t *names,
    char *err, size_t errlen)
{
	struct kv_envelope	 env;
	json_t			*result, *e, *name;
	size_t			 i;
	int			 rc;

	if ((rc = secrets_request(kc, "GET", url, NULL, 0,
	    "listing the Worker's secrets", &env, NULL, NULL, err,
	    errlen)) != 0)
		return rc;
	result = json_object_get(env.ke_root, "result");
	if (!json_is_array(result)) {
		kv_envelope_release(&env);
		snprintf(err, errlen, "listing the Worker's secrets: the reply "
		    "has no result array: check cf_api_base");
		return KV_E_FAIL;
	}
	json_array_foreach(result, i, e) {
		name = json_object_get(e, "name");
		if (!json_is_string(name) || json_string_length(name) !=
		    strlen(json_string_value(name)))
			continue;
		if (json_object_set_new(names, json_string_value(name),
		    json_true()) == -1) {
			kv_envelope_release(&env);
			snprintf(err, errlen, "out of memory");
			return KV_E_FAIL;
		}
	}
	kv_envelope_release(&env);
	return 0;
}

int
secrets_put(struct kv_client *kc, const char *url, const char *name,
    const char *text, size_t textlen, int *uncertain, char *err,
    size_t errlen)
{
	struct kv_envelope	 env;
	json_t			*o;
	char			*body, what[128];
	int			 rc;

	/* The body holds the value: jansson's allocator wipes it. */
	o = json_pack("{s:s,s:s%,s:s}", "name", name, "text", text, textlen,
	    "type", "secret_text");
	if (o == NULL || (body = json_dumps(o, JSON_COMPACT)) == NULL) {
		json_decref(o);
		snprintf(err, errlen, "cannot build the request for Worker "
		    "secret %s (out of memory, or not UTF-8)", name);
		return KV_E_FAIL;
	}
	json_decref(o);
	snprintf(what, sizeof(what), "writing Worker secret %s", name);
	rc = secrets_request(kc, "PUT", url, body, strlen(body), what, &env,
	    NULL, uncertain, err, errlen);
	proto_wipe_free(body);
	if (rc == 0)
		kv_envelope_release(&env);
	return rc;
}

int
secrets_delete(struct kv_client *kc, const char *url, const char *name,
    int *uncertain, char *err, size_t errlen)
{
	struct kv_envelope	 env;
	char			*u, what[128];
	int			 rc, gone;

	/* Names are [A-Z0-9_]: nothing to escape. */
	if (asprintf(&u, "%s/%s", url, name) == -1) {
		snprintf(err, errlen, "out of memory");
		return KV_E_FAIL;
	}
	snprintf(what, sizeof(what), "deleting Worker secret %s", name);
	rc = secrets_request(kc, "DELETE", u, NULL, 0, what, &env, &gone,
	    uncertain, err, errlen);
	free(u);
	if (rc == 0) {
		if (gone)
			log_debug("%s: %s was not there", __func__, name);
		kv_envelope_release(&env);
	}
	return rc;
}

/* Notes that field's secret went out in a request of unknown fate. */
static int
secrets_note_uncertain(struct secrets_state *ss, const char *field)
{
	if (ss->ss_uncertain == NULL &&
	    (ss->ss_uncertain = json_object()) == NULL)
		return -1;
	return json_object_set_new(ss->ss_uncertain, field, json_true());
}

/*
 * The text of a field's secret: a string as it is, anything else as
 * compact JSON.  *text points into value or is new (*owned); NULL when
 * out of memory.
 */
static const char *
secrets_text(json_t *value, size_t *len, char **owned)
{
	*owned = NULL;
	if (json_is_string(value)) {
		*len = json_string_length(value);
		return json_string_value(value);
	}
	if ((*owned = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS |
	    JSON_ENCODE_ANY)) == NULL)
		return NULL;
	*len = strlen(*owned);
	return *owned;
}

/* The keyed hash of name and text as hex into hex[65]. */
static void
secrets_hash(const struct secrets_state *ss, const char *name,
    const char *text, size_t len, char *hex)
{
	crypto_generichash_state	st;
	unsigned char			h[SECRETS_HASH_BYTES];

	crypto_generichash_init(&st, ss->ss_key, sizeof(ss->ss_key),
	    sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)name,
	    strlen(name) + 1);
	crypto_generichash_update(&st, (const unsigned char *)text, len);
	crypto_generichash_final(&st, h, sizeof(h));
	sodium_bin2hex(hex, SECRETS_HASH_BYTES * 2 + 1, h, sizeof(h));
	sodium_memzero(&st, sizeof(st));
}

/*
 * Adds to names the field names of every kept version of tenant (the
 * daemon's history; never a value).  A tenant the daemon no longer has
 * adds nothing (*known 0).  Returns 0 or SYNC_E_*.
 */
static int
secrets_history(struct sync_ctx *ctx, const char *tenant, json_t *names,
    int *known, char *err, size_t errlen)
{
	struct proto_error	 pe;
	json_t			*res, *v, *f;
	size_t			 i, j;
	int			 rc;

	*known = 0;
	rc = sync_call(ctx, "history", json_pack("{s:s}", "tenant", tenant),
	    &res, &pe, err, errlen);
	if (rc == SYNC_E_FAIL && pe.pe_code == PROTO_E_NOT_FOUND)
		return 0;
	if (rc != 0)
		return rc;
	json_array_foreach(json_object_get(res, "versions"), i, v) {
		json_array_foreach(json_object_get(v, "fields"), j, f) {
			if (!json_is_string(f) ||
			    proto_field_valid(json_string_value(f), NULL, 0) ==
			    -1)
				continue;
			if (json_object_set_new(names, json_string_value(f),
			    json_true()) == -1) {
				json_decref(res);
				snprintf(err, errlen, "out of memory");
				return SYNC_E_FAIL;
			}
		}
	}
	json_decref(res);
	*known = 1;
	return 0;
}

/*
 * Makes the Worker's secrets match tenant's fields: the fields whose
 * value differs from what this process pushed last go out, and secrets
 * of fields the tenant no longer has (all of them when it is deleted) are
 * deleted.  Returns 0 or SYNC_E_*.
 */
static int
secrets_push(struct sync_ctx *ctx, struct kv_client *kc,
    struct secrets_state *ss, const char *tenant, struct sync_report *rep,
    char *err, size_t errlen)
{
	json_t		*fields = NULL, *cand = NULL, *listed = NULL, *v;
	const char	*field, *text;
	char		 name[PROTO_FIELD_MAX + 1], hex[SECRETS_HASH_BYTES * 2 + 1];
	char		*owned;
	uint64_t	 version = 0;
	size_t		 len;
	int		 rc, r, known = 1, from_history = 0, unc;
	json_t		*tmp;

	if (ss->ss_pushed == NULL && (ss->ss_pushed = json_object()) == NULL)
		goto oom;
	r = sync_fetch(ctx, tenant, &fields, &version, err, errlen);
	if (r < 0)
		return r;
	if ((cand = json_object()) == NULL)
		goto oom;

	/* The fields whose value changed since the last push. */
	if (r == 0) {
		json_object_foreach(fields, field, v) {
			if (proto_field_valid(field, NULL, 0) == -1)
				continue;
			if (sync_stopped()) {
				rc = SYNC_E_STOP;
				goto done;
			}
			if ((text = secrets_text(v, &len, &owned)) == NULL)
				goto oom;
			secrets_hash(ss, field, text, len, hex);
			if (json_is_string(json_object_get(ss->ss_pushed,
			    field)) && strcmp(json_string_value(
			    json_object_get(ss->ss_pushed, field)), hex) == 0) {
				proto_wipe_free(owned);
				continue;
			}
			secrets_name(field, name, sizeof(name));
			if (ctx->sx_dry_run) {
				fprintf(ctx->sx_out, "%sput secret %s version "
				    "%llu\n", ctx->sx_pfx, name,
				    (unsigned long long)version);
				rc = 0;
			} else {
				unc = 0;
				rc = secrets_put(kc, ss->ss_url, name, text,
				    len, &unc, err, errlen);
				if (unc && secrets_note_uncertain(ss, field) == -1)
					rc = KV_E_FAIL;
			}
			proto_wipe_free(owned);
			if (rc != 0) {
				rc = sync_kv_rc(rc);
				goto done;
			}
			rep->sr_written++;
			if (!ctx->sx_dry_run && json_object_set_new(
			    ss->ss_pushed, field, json_string(hex)) == -1)
				goto oom;
		}
	}

	/*
	 * Secrets to delete: those this process pushed for fields now gone,
	 * and until one push went through, the fields of the kept versions
	 * (secrets it may have written before a restart).
	 */
	json_object_foreach(ss->ss_pushed, field, v) {
		if (json_object_get(fields, field) == NULL &&
		    json_object_set_new(cand, field, json_false()) == -1)
			goto oom;
	}
	if (!ss->ss_synced) {
		if ((tmp = json_object()) == NULL)
			goto oom;
		if ((rc = secrets_history(ctx, tenant, tmp, &known, err,
		    errlen)) != 0) {
			json_decref(tmp);
			goto done;
		}
		json_object_foreach(tmp, field, v) {
			if (json_object_get(fields, field) == NULL &&
			    json_object_get(cand, field) == NULL) {
				if (json_object_set_new(cand, field,
				    json_true()) == -1) {
					json_decref(tmp);
					goto oom;
				}
				from_history = 1;
			}
		}
		json_decref(tmp);
		if (r == 1 && !known && json_object_size(cand) == 0)
			log_warnx("tenant '%s' is gone and its history with "
			    "it: the Worker secrets it had before this agent "
			    "started are not known, so none is deleted; "
			    "delete them by hand if they should go", tenant);
	}
	if (from_history) {
		/* Only names the script has: one list, not a delete each. */
		if ((listed = json_object()) == NULL)
			goto oom;
		if ((rc = secrets_list(kc, ss->ss_url, listed, err, errlen)) !=
		    0) {
			rc = sync_kv_rc(rc);
			goto done;
		}
	}
	json_object_foreach(cand, field, v) {
		secrets_name(field, name, sizeof(name));
		if (json_is_true(v) && json_object_get(listed, name) == NULL)
			continue;
		if (sync_stopped()) {
			rc = SYNC_E_STOP;
			goto done;
		}
		if (ctx->sx_dry_run) {
			fprintf(ctx->sx_out, "%sdelete secret %s\n",
			    ctx->sx_pfx, name);
			rep->sr_deleted++;
			continue;
		}
		unc = 0;
		rc = secrets_delete(kc, ss->ss_url, name, &unc, err, errlen);
		if (unc && secrets_note_uncertain(ss, field) == -1)
			rc = KV_E_FAIL;
		if (rc != 0) {
			rc = sync_kv_rc(rc);
			goto done;
		}
		rep->sr_deleted++;
		json_object_del(ss->ss_pushed, field);
	}
	if (!ctx->sx_dry_run)
		ss->ss_synced = 1;
	else {
		/* A dry run changes nothing, what it knows included. */
		json_decref(ss->ss_pushed);
		ss->ss_pushed = NULL;
	}
	rc = 0;
	goto done;
oom:
	snprintf(err, errlen, "out of memory");
	rc = SYNC_E_FAIL;
done:
	json_decref(fields);
	json_decref(cand);
	json_decref(listed);
	return rc;
}

/*
 * A request of unknown fate may still be carried out later, over a newer
 * value: wait settle_time from the last one, then push those fields again
 * (their hashes forgotten, so they go out whatever they hold).
 */
static int
secrets_settle(struct sync_ctx *ctx, struct kv_client *kc,
    struct secrets_state *ss, const char *tenant, uint64_t settle_time,
    struct sync_report *rep, char *err, size_t errlen)
{
	json_t		*todo, *v;
	const char	*field;
	int64_t		 wait;
	int		 rc;

	while (ss->ss_uncertain != NULL &&
	    json_object_size(ss->ss_uncertain) > 0) {
		wait = kc->kc_uncertain_ms + (int64_t)settle_time * 1000 -
		    util_now_ms();
		if (wait > 0) {
			log_info("%zu Worker secret%s went out in a request "
			    "that may still be applied; waiting %.1f s "
			    "(settle_time) before acknowledging",
			    json_object_size(ss->ss_uncertain),
			    json_object_size(ss->ss_uncertain) == 1 ? "" : "s",
			    (double)wait / 1000);
			if (sync_sleep((uint64_t)wait) == -1)
				return SYNC_E_STOP;
		}
		todo = ss->ss_uncertain;
		ss->ss_uncertain = NULL;
		json_object_foreach(todo, field, v) {
			json_object_del(ss->ss_pushed, field);
			rep->sr_repushed++;
		}
		json_decref(todo);
		if ((rc = secrets_push(ctx, kc, ss, tenant, rep, err,
		    errlen)) != 0)
			return rc;
	}
	return 0;
}

/*
 * Reads the feed after *since: *touched when a change of tenant is among
 * it; *since moves to what the pages cover.  A feed trimmed past *since
 * touches everything and covers up to the feed's last seq before the
 * full push.  Returns 0 or SYNC_E_*.
 */
static int
secrets_feed_read(struct sync_ctx *ctx, const char *tenant, uint64_t *since,
    int *touched, char *err, size_t errlen)
{
	struct proto_error	 pe;
	json_t			*res, *changes, *c;
	const char		*t;
	uint64_t		 seq, prev, last, acked;
	size_t			 i, n;
	int			 rc;

	for (;;) {
		rc = sync_call(ctx, "changes", json_pack("{s:I,s:i}", "since",
		    (json_int_t)*since, "limit", SECRETS_CHANGES_LIMIT), &res,
		    &pe, err, errlen);
		if (rc == SYNC_E_FAIL && pe.pe_code == PROTO_E_TRIMMED) {
			*touched = 1;
			return sync_state(ctx, &acked, since, err, errlen);
		}
		if (rc != 0)
			return rc;
		changes = json_object_get(res, "changes");
		if (!json_is_array(changes) ||
		    sync_get_uint(res, "last_seq", &last) == -1)
			goto bad;
		prev = *since;
		json_array_foreach(changes, i, c) {
			t = json_string_value(json_object_get(c, "tenant"));
			if (sync_get_uint(c, "seq", &seq) == -1 ||
			    seq <= prev || t == NULL)
				goto bad;
			prev = seq;
			if (strcmp(t, tenant) == 0)
				*touched = 1;
		}
		n = json_array_size(changes);
		json_decref(res);
		/* As sync_engine.c: a page that is not full ends at last. */
		*since = n >= SECRETS_CHANGES_LIMIT || prev > last ? prev :
		    last;
		if (n < SECRETS_CHANGES_LIMIT)
			return 0;
	}
bad:
	json_decref(res);
	snprintf(err, errlen, "wfvaultd sent a malformed reply to changes");
	return SYNC_E_FAIL;
}

/*
 * The state of each worker_secrets target, found by name: what a target
 * pushed must outlive the pass.  Lives as long as the process.  Each
 * target runs in a thread of its own, so only that thread uses its
 * state; the list itself is shared (secrets_lock).
 */
struct secrets_slot {
	struct secrets_slot	*sl_next;
	char			*sl_target;
	struct secrets_state	 sl_state;
};
static struct secrets_slot	*secrets_slots;
static pthread_mutex_t		 secrets_lock = PTHREAD_MUTEX_INITIALIZER;

static struct secrets_state *
secrets_state_of(struct sync_ctx *ctx, char *err, size_t errlen)
{
	const struct sync_target	*st = ctx->sx_target;
	struct secrets_slot		*sl;

	pthread_mutex_lock(&secrets_lock);
	for (sl = secrets_slots; sl != NULL; sl = sl->sl_next)
		if (strcmp(sl->sl_target, st->st_name) == 0)
			goto done;
	if ((sl = calloc(1, sizeof(*sl))) == NULL ||
	    (sl->sl_target = strdup(st->st_name)) == NULL) {
		free(sl);
		snprintf(err, errlen, "out of memory");
		sl = NULL;
		goto done;
	}
	if (secrets_state_init(&sl->sl_state, ctx->sx_conf->sc_api_base,
	    st->st_account_id, st->st_script_name, err, errlen) == -1) {
		free(sl->sl_target);
		free(sl);
		sl = NULL;
		goto done;
	}
	sl->sl_next = secrets_slots;
	secrets_slots = sl;
done:
	pthread_mutex_unlock(&secrets_lock);
	return sl != NULL ? &sl->sl_state : NULL;
}

void
secrets_release_all(void)
{
	struct secrets_slot	*sl;

	/* After every target's thread has ended. */
	while ((sl = secrets_slots) != NULL) {
		secrets_slots = sl->sl_next;
		secrets_state_release(&sl->sl_state);
		free(sl->sl_target);
		free(sl);
	}
}

/*
 * What a start with nothing pending knows without pushing: the Worker
 * holds fields (read before the feed showed no change of the tenant past
 * the acknowledged seq, so they are what was pushed), and nothing of a
 * removed field (its delete was acknowledged too).  Returns 0, or -1 when
 * out of memory.
 */
static int
secrets_adopt(struct secrets_state *ss, json_t *fields)
{
	json_t		*v;
	const char	*field, *text;
	char		 hex[SECRETS_HASH_BYTES * 2 + 1], *owned;
	size_t		 len;

	if (ss->ss_pushed == NULL && (ss->ss_pushed = json_object()) == NULL)
		return -1;
	json_object_foreach(fields, field, v) {
		if (proto_field_valid(field, NULL, 0) == -1)
			continue;
		if ((text = secrets_text(v, &len, &owned)) == NULL)
			return -1;
		secrets_hash(ss, field, text, len, hex);
		proto_wipe_free(owned);
		if (json_object_set_new(ss->ss_pushed, field,
		    json_string(hex)) == -1)
			return -1;
	}
	ss->ss_synced = 1;
	return 0;
}

int
secrets_engine_run(struct sync_ctx *ctx, struct sync_report *rep, char *err,
    size_t errlen)
{
	const struct sync_target	*st = ctx->sx_target;
	struct kv_client		*kc = ctx->sx_kv;
	struct secrets_state		*ss;
	struct proto_error		 pe;
	json_t				*res, *fields = NULL;
	uint64_t			 acked, last, upto, requests0, version;
	int				 rc, touched, gone = 1;

	memset(rep, 0, sizeof(*rep));
	if ((ss = secrets_state_of(ctx, err, errlen)) == NULL)
		return SYNC_E_FAIL;
	requests0 = kc->kc_requests;
	/* Before the feed is read: see secrets_adopt. */
	if (!ss->ss_synced && !ctx->sx_dry_run &&
	    (gone = sync_fetch(ctx, st->st_secrets_tenant, &fields, &version,
	    err, errlen)) < 0)
		return gone;
	if ((rc = sync_state(ctx, &acked, &last, err, errlen)) != 0)
		goto done;
	upto = acked;
	/*
	 * Only a change of the tenant past the acknowledged seq: each push
	 * of a secret deploys a new version of the Worker, so a start, or
	 * --once from cron, with nothing pending pushes nothing (--reconcile
	 * repairs a secret changed by hand).  The first push of a process
	 * sends every field, as it knows no hash yet.
	 */
	touched = 0;
	if (acked < last && (rc = secrets_feed_read(ctx,
	    st->st_secrets_tenant, &upto, &touched, err, errlen)) != 0)
		goto done;
	if (!touched && !ss->ss_synced && !ctx->sx_dry_run &&
	    secrets_adopt(ss, gone == 0 ? fields : NULL) == -1) {
		snprintf(err, errlen, "out of memory");
		rc = SYNC_E_FAIL;
		goto done;
	}
	json_decref(fields);
	fields = NULL;
	if (touched) {
		log_debug("%s: target '%s': pushing tenant '%s'", __func__,
		    st->st_name, st->st_secrets_tenant);
		if ((rc = secrets_push(ctx, kc, ss, st->st_secrets_tenant, rep,
		    err, errlen)) != 0)
			return rc;
		if (!ctx->sx_dry_run && (rc = secrets_settle(ctx, kc, ss,
		    st->st_secrets_tenant, st->st_settle_time, rep, err,
		    errlen)) != 0)
			return rc;
	}
	if (!ctx->sx_dry_run && upto > acked) {
		rc = sync_call(ctx, "sync_ack", json_pack("{s:s,s:I}",
		    "target", st->st_name, "seq", (json_int_t)upto), &res, &pe,
		    err, errlen);
		if (rc != 0)
			return rc;
		json_decref(res);
	}
	rep->sr_seq = upto;
	rep->sr_requests = kc->kc_requests - requests0;
	return 0;
done:
	json_decref(fields);
	return rc;
}

int
secrets_engine_reconcile(struct sync_ctx *ctx, struct sync_report *rep,
    char *err, size_t errlen)
{
	const struct sync_target	*st = ctx->sx_target;
	struct kv_client		*kc = ctx->sx_kv;
	struct secrets_state		*ss;
	uint64_t			 requests0;
	int				 rc;

	memset(rep, 0, sizeof(*rep));
	if ((ss = secrets_state_of(ctx, err, errlen)) == NULL)
		return SYNC_E_FAIL;
	requests0 = kc->kc_requests;
	/* As after a start: every field, and deletes from the history. */
	json_decref(ss->ss_pushed);
	ss->ss_pushed = NULL;
	ss->ss_synced = 0;
	rc = secrets_push(ctx, kc, ss, st->st_secrets_tenant, rep, err,
	    errlen);
	if (rc == 0 && !ctx->sx_dry_run)
		rc = secrets_settle(ctx, kc, ss, st->st_secrets_tenant,
		    st->st_settle_time, rep, err, errlen);
	rep->sr_vault_tenants = 1;
	rep->sr_requests = kc->kc_requests - requests0;
	return rc;
}
