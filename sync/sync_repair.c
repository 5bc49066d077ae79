/*
 * wfvault-sync's repairs of drift between the vault and KV: --reconcile,
 * and the full pass after the change feed was trimmed past the target.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "proto.h"
#include "sync.h"

#define SYNC_LIST_LIMIT		1000

/* Every tenant of the vault: tenant -> version. */
static int
sync_vault_list(struct sync_ctx *ctx, json_t *vault, char *err,
    size_t errlen)
{
	struct proto_error	 pe;
	json_t			*params, *res, *t, *c;
	const char		*tenant;
	char			*cursor = NULL;
	uint64_t		 version;
	size_t			 i;
	int			 rc;

	for (;;) {
		if (sync_stopped()) {
			rc = SYNC_E_STOP;
			break;
		}
		params = json_pack("{s:i}", "limit", SYNC_LIST_LIMIT);
		if (params != NULL && cursor != NULL)
			json_object_set_new(params, "cursor",
			    json_string(cursor));
		if ((rc = sync_call(ctx, "list", params, &res, &pe, err,
		    errlen)) != 0)
			break;
		if (!json_is_array(json_object_get(res, "tenants")))
			goto bad;
		json_array_foreach(json_object_get(res, "tenants"), i, t) {
			tenant = json_string_value(json_object_get(t,
			    "tenant"));
			if (tenant == NULL || sync_get_uint(t, "version",
			    &version) == -1)
				goto bad;
			/* Another target's tenant is not in this one's KV. */
			if (!sync_target_wants(ctx->sx_target, tenant))
				continue;
			if (json_object_set_new(vault, tenant,
			    json_integer((json_int_t)version)) == -1) {
				json_decref(res);
				snprintf(err, errlen, "out of memory");
				rc = SYNC_E_FAIL;
				break;
			}
		}
		if (rc != 0)
			break;
		c = json_object_get(res, "cursor");
		if (c == NULL || json_is_null(c)) {
			json_decref(res);
			break;
		}
		if (!json_is_string(c))
			goto bad;
		/*
		 * The daemon lists in key order and the cursor is the last
		 * tenant sent, so each one sorts after the one before; any
		 * other would start a cycle.
		 */
		if (cursor != NULL && strcmp(json_string_value(c), cursor) <=
		    0) {
			json_decref(res);
			free(cursor);
			snprintf(err, errlen, "wfvaultd's list cursor did not "
			    "move forward, so the listing would never end; "
			    "giving up");
			return SYNC_E_FAIL;
		}
		free(cursor);
		if ((cursor = strdup(json_string_value(c))) == NULL) {
			json_decref(res);
			snprintf(err, errlen, "out of memory");
			rc = SYNC_E_FAIL;
			break;
		}
		json_decref(res);
	}
	free(cursor);
	return rc;
bad:
	json_decref(res);
	free(cursor);
	snprintf(err, errlen, "wfvaultd sent a malformed reply to list");
	return SYNC_E_FAIL;
}

/*
 * A key this target wrote: the key of a tenant it pushes, under its
 * prefix, whose metadata carries the ownership mark (kv_list_keys gives
 * its version then).  Another target sharing the namespace and prefix
 * with other tenants keeps its keys.
 */
static int
sync_key_ours(const struct sync_target *st, const char *prefix, size_t plen,
    const char *key, json_t *v)
{
	return strncmp(key, prefix, plen) == 0 &&
	    proto_tenant_valid(key + plen, NULL, 0) == 0 &&
	    json_is_integer(v) && sync_target_wants(st, key + plen);
}

/* How many keys this target wrote, and how many of those the vault lacks. */
static void
sync_prune_count(const struct sync_target *st, json_t *kvkeys, json_t *vault,
    size_t *marked, size_t *stale)
{
	const char	*prefix, *key;
	json_t		*v;
	size_t		 plen;

	prefix = st->st_key_prefix != NULL ? st->st_key_prefix : "";
	plen = strlen(prefix);
	*marked = *stale = 0;
	json_object_foreach(kvkeys, key, v) {
		if (!sync_key_ours(st, prefix, plen, key, v))
			continue;
		(*marked)++;
		if (json_object_get(vault, key + plen) == NULL)
			(*stale)++;
	}
}

/*
 * --prune without --force: refuses (printing each key it would delete)
 * when the marked keys of tenants the vault lacks are more than
 * prune_max_share of all marked keys under the prefix.  That many going
 * at once is more likely a wrong socket or a restored vault than real
 * deletions.  Returns 0 or SYNC_E_FAIL.
 */
static int
sync_prune_check(struct sync_ctx *ctx, json_t *kvkeys, json_t *vault,
    char *err, size_t errlen)
{
	const struct sync_conf	*sc = ctx->sx_conf;
	const struct sync_target *st = ctx->sx_target;
	const char		*prefix, *key;
	json_t			*v;
	size_t			 plen, marked, stale;

	prefix = st->st_key_prefix != NULL ? st->st_key_prefix : "";
	plen = strlen(prefix);
	sync_prune_count(st, kvkeys, vault, &marked, &stale);
	if (sync_prune_allowed(marked, stale, sc->sc_prune_max_share))
		return 0;
	json_object_foreach(kvkeys, key, v) {
		if (!sync_key_ours(st, prefix, plen, key, v) ||
		    json_object_get(vault, key + plen) != NULL)
			continue;
		fprintf(ctx->sx_out, "%swould delete ", ctx->sx_pfx);
		sync_print_key(ctx->sx_out, key);
		fputc('\n', ctx->sx_out);
	}
	snprintf(err, errlen, "refusing to delete %zu of the %zu keys "
	    "wfvault wrote (more than prune_max_share, %u%%); nothing was "
	    "changed: check that socket names the right vault, then run "
	    "again with --force to delete them", stale, marked,
	    sc->sc_prune_max_share);
	return SYNC_E_FAIL;
}

int
sync_engine_reconcile(struct sync_ctx *ctx, struct sync_report *rep,
    char *err, size_t errlen)
{
	uint64_t	 requests0;
	int		 rc;

	memset(rep, 0, sizeof(*rep));
	requests0 = ctx->sx_kv->kc_requests;
	rc = sync_repair(ctx, rep, SYNC_REPAIR_RECONCILE, err, errlen);
	rep->sr_requests = ctx->sx_kv->kc_requests - requests0;
	return rc;
}

/*
 * Lists KV and the vault, writes what is missing or at another version
 * in KV, and deals with keys of tenants the vault does not have: reported
 * (deleted with --prune) in a reconcile, deleted in a resync when the
 * vault wrote them (the ownership mark in their metadata), left alone
 * otherwise.
 */
int
sync_repair(struct sync_ctx *ctx, struct sync_report *rep, int mode,
    char *err, size_t errlen)
{
	const struct sync_target *st = ctx->sx_target;
	struct kv_items		 puts = KV_ITEMS_INIT, dels = KV_ITEMS_INIT;
	json_t			*kvkeys, *vault, *v, *kvv, *fields, *kids;
	const char		*tenant, *key, *prefix, *kvkid;
	char			 k[KV_KEY_MAX + 1], kid[SEAL_KID_LEN + 1];
	uint64_t		 version;
	size_t			 plen, marked, stale;
	int			 rc, r, keep_stale = 0;

	prefix = st->st_key_prefix != NULL ? st->st_key_prefix : "";
	plen = strlen(prefix);
	kvkeys = json_object();
	vault = json_object();
	kids = json_object();
	if (kvkeys == NULL || vault == NULL || kids == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = SYNC_E_FAIL;
		goto done;
	}
	/* The daemon first: no point in listing KV without it. */
	if ((rc = sync_reach(ctx, err, errlen)) != 0)
		goto done;
	/*
	 * KV before the vault: a tenant created and pushed in between is
	 * then in both lists, never taken for a stale key.
	 */
	if ((rc = kv_list_keys(ctx->sx_kv, st->st_key_prefix, kvkeys, kids,
	    err, errlen)) != 0) {
		rc = sync_kv_rc(rc);
		goto done;
	}
	if ((rc = sync_vault_list(ctx, vault, err, errlen)) != 0)
		goto done;
	rep->sr_kv_keys = json_object_size(kvkeys);
	rep->sr_vault_tenants = json_object_size(vault);
	/* A mass delete is refused before anything is written. */
	if (mode == SYNC_REPAIR_RECONCILE && ctx->sx_prune && !ctx->sx_force &&
	    (rc = sync_prune_check(ctx, kvkeys, vault, err, errlen)) != 0)
		goto done;

	/*
	 * Missing, at another version or sealed under another key (or sealed
	 * when the target no longer seals, or the other way round) in KV:
	 * write the current config.  So a rotation re-seals every value.
	 */
	if (st->st_seal_key != NULL)
		seal_key_id(st->st_seal_key, kid);
	json_object_foreach(vault, tenant, v) {
		if (sync_stopped()) {
			rc = SYNC_E_STOP;
			goto done;
		}
		sync_key(st, tenant, k, sizeof(k));
		kvv = json_object_get(kvkeys, k);
		kvkid = json_string_value(json_object_get(kids, k));
		if (json_is_integer(kvv) &&
		    json_integer_value(kvv) == json_integer_value(v) &&
		    (st->st_seal_key == NULL ? kvkid == NULL :
		    kvkid != NULL && strcmp(kvkid, kid) == 0))
			continue;
		log_debug("%s: %s: KV has %s, the vault version %lld",
		    __func__, k, kvv == NULL ? "nothing" :
		    json_is_integer(kvv) && json_integer_value(kvv) ==
		    json_integer_value(v) ? "another seal" : "another version",
		    (long long)json_integer_value(v));
		r = sync_fetch(ctx, tenant, &fields, &version, err, errlen);
		if (r < 0) {
			rc = r;
			goto done;
		}
		if (r == 1)	/* deleted meanwhile; the feed has it */
			continue;
		rc = sync_add_put(ctx, &puts, k, fields, version, rep, err,
		    errlen);
		json_decref(fields);
		if (rc != 0)
			goto done;
	}
	if ((rc = sync_flush(ctx, &puts, 0, 1, rep, err, errlen)) != 0)
		goto done;

	/*
	 * A full pass deletes what the vault lost meanwhile, but not more
	 * than --prune would without --force: that many at once more likely
	 * means another vault (a wrong socket) than real deletions.
	 */
	if (mode == SYNC_REPAIR_RESYNC) {
		sync_prune_count(st, kvkeys, vault, &marked, &stale);
		if (!sync_prune_allowed(marked, stale,
		    ctx->sx_conf->sc_prune_max_share)) {
			log_warnx("target '%s': the vault lacks %zu of the %zu "
			    "keys wfvault wrote under the prefix (more than "
			    "prune_max_share): kept them all; check that "
			    "socket names the right vault, then delete them "
			    "with --reconcile --prune --force", st->st_name,
			    stale, marked);
			keep_stale = 1;
		}
	}

	/* In KV but not in the vault: stale; removed only with --prune. */
	json_object_foreach(kvkeys, key, v) {
		if (strncmp(key, prefix, plen) == 0 &&
		    proto_tenant_valid(key + plen, NULL, 0) == 0 &&
		    json_object_get(vault, key + plen) != NULL)
			continue;
		if (mode == SYNC_REPAIR_RESYNC) {
			/*
			 * Only what the vault wrote: a tenant's key with its
			 * version.  Anything else is not ours to delete.
			 */
			if (keep_stale || !sync_key_ours(st, prefix, plen,
			    key, v))
				continue;
			log_debug("%s: %s: tenant gone from the vault",
			    __func__, key);
			if ((rc = sync_add_delete(ctx, &dels, key, rep, err,
			    errlen)) != 0)
				goto done;
			continue;
		}
		rep->sr_stale++;
		fprintf(ctx->sx_out, "%sstale ", ctx->sx_pfx);
		sync_print_key(ctx->sx_out, key);
		if (!sync_key_ours(st, prefix, plen, key, v)) {
			/*
			 * Not this target's to delete, ever.  Without the
			 * mark, a key is not wfvault's at all: the stronger
			 * reason.  With it, the key is another target's (or
			 * another prefix's), or its tenant one this target
			 * leaves out; the vault may have that tenant, so "not
			 * in the vault" is not said then.
			 */
			if (!json_is_integer(v))
				fputs(" (not written by wfvault, kept)\n",
				    ctx->sx_out);
			else if (strncmp(key, prefix, plen) == 0 &&
			    proto_tenant_valid(key + plen, NULL, 0) == 0)
				fputs(" (a tenant outside this target's "
				    "tenants, kept)\n", ctx->sx_out);
			else
				fputs(" (written by wfvault, but not a tenant "
				    "key of this target's prefix, kept)\n",
				    ctx->sx_out);
			continue;
		}
		rep->sr_prunable++;
		fputs(" (not in the vault)\n", ctx->sx_out);
		if (ctx->sx_prune && (rc = sync_add_delete(ctx, &dels, key,
		    rep, err, errlen)) != 0)
			goto done;
	}
	if ((rc = sync_flush(ctx, &dels, 1, 1, rep, err, errlen)) != 0)
		goto done;
	if (!ctx->sx_dry_run)
		rc = sync_settle(ctx, rep, err, errlen);
done:
	kv_items_release(&puts);
	kv_items_release(&dels);
	json_decref(kvkeys);
	json_decref(vault);
	json_decref(kids);
	return rc;
}
