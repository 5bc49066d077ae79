/*
 * wfvault-sync's engine: it reads the daemon's change feed from the
 * acknowledged seq, turns it into bulk KV writes and deletes, waits out
 * requests of unknown fate, and acknowledges what KV holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "proto.h"
#include "sync.h"
#include "util.h"

#define SYNC_CHANGES_LIMIT	10000	/* the most the daemon sends at once */

/* KV key = prefix + tenant id; both were checked, so it fits. */
void
sync_key(const struct sync_target *st, const char *tenant, char *key,
    size_t len)
{
	snprintf(key, len, "%s%s", st->st_key_prefix != NULL ?
	    st->st_key_prefix : "", tenant);
}

/* Writes s for a terminal: KV keys from a listing may hold anything. */
void
sync_print_key(FILE *out, const char *s)
{
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f ?
		    *s : '?', out);
}

int
sync_kv_rc(int rc)
{
	return rc == KV_E_STOP ? SYNC_E_STOP : SYNC_E_FAIL;
}

/* The tenant whose KV key is key (a pointer into it), or NULL. */
static const char *
sync_key_tenant(const struct sync_target *st, const char *key)
{
	size_t	plen;

	plen = st->st_key_prefix != NULL ? strlen(st->st_key_prefix) : 0;
	if (strncmp(key, st->st_key_prefix != NULL ? st->st_key_prefix : "",
	    plen) != 0 || proto_tenant_valid(key + plen, NULL, 0) == -1)
		return NULL;
	return key + plen;
}

/*
 * Records what items[0..n) did to their keys in sx_uncertain: those sent
 * in a request of unknown fate, and (when the batch is done, ok) every
 * write since to a key already there.  Returns 0, or -1 when out of
 * memory.
 */
static int
sync_note_fates(struct sync_ctx *ctx, const struct kv_item *items, size_t n,
    int del, int ok)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (!items[i].ki_uncertain && (!ok || ctx->sx_uncertain == NULL))
			continue;
		if (ctx->sx_uncertain == NULL &&
		    (ctx->sx_uncertain = json_object()) == NULL)
			return -1;
		if (kv_fate_note(ctx->sx_uncertain, items[i].ki_key, del ?
		    KV_FATE_DELETE : (json_int_t)items[i].ki_version,
		    items[i].ki_uncertain) == -1)
			return -1;
	}
	return 0;
}

/*
 * Sends full batches of kis (all: every item) to KV, or prints them in
 * dry-run.  A batch is full when one more item would pass
 * batch_max_items or batch_max_bytes; so at most one batch and one item
 * are held at a time.
 */
int
sync_flush(struct sync_ctx *ctx, struct kv_items *kis, int del, int all,
    struct sync_report *rep, char *err, size_t errlen)
{
	const struct sync_target *st = ctx->sx_target;
	size_t			 k, i, bytes;
	int			 rc, noted;

	while (kis->kis_n > 0) {
		bytes = 2 + kis->kis_bytes + kis->kis_n - 1;
		if (!all && kis->kis_n < st->st_batch_max_items &&
		    bytes <= st->st_batch_max_bytes)
			break;
		k = kv_items_split(kis, st->st_batch_max_items,
		    st->st_batch_max_bytes);
		if (k == 0) {
			snprintf(err, errlen, "KV key '%s' needs a %zu-byte "
			    "request, more than batch_max_bytes (%llu): raise "
			    "batch_max_bytes", kis->kis_v[0].ki_key,
			    kis->kis_v[0].ki_len + 2,
			    (unsigned long long)st->st_batch_max_bytes);
			return SYNC_E_FAIL;
		}
		if (ctx->sx_dry_run) {
			for (i = 0; i < k; i++) {
				fprintf(ctx->sx_out, "%s%s", ctx->sx_pfx,
				    del ? "delete " : "put ");
				sync_print_key(ctx->sx_out,
				    kis->kis_v[i].ki_key);
				if (!del)
					fprintf(ctx->sx_out, " version %llu",
					    (unsigned long long)
					    kis->kis_v[i].ki_version);
				fputc('\n', ctx->sx_out);
			}
		} else {
			log_debug("%s: %s %zu keys", __func__,
			    del ? "deleting" : "writing", k);
			if (del)
				rc = kv_bulk_delete(ctx->sx_kv, kis->kis_v, k,
				    err, errlen);
			else
				rc = kv_bulk_put(ctx->sx_kv, kis->kis_v, k,
				    err, errlen);
			/* Failed or not, what went out may yet land. */
			noted = sync_note_fates(ctx, kis->kis_v, k, del,
			    rc == 0);
			if (rc != 0)
				return sync_kv_rc(rc);
			if (noted == -1) {
				snprintf(err, errlen, "out of memory");
				return SYNC_E_FAIL;
			}
		}
		if (del)
			rep->sr_deleted += k;
		else
			rep->sr_written += k;
		/* Drops the values of this batch, wiping them. */
		kv_items_drop(kis, k);
	}
	return 0;
}

int
sync_add_put(struct sync_ctx *ctx, struct kv_items *puts, const char *key,
    json_t *fields, uint64_t version, struct sync_report *rep, char *err,
    size_t errlen)
{
	const struct sync_target *st = ctx->sx_target;
	json_t			*sealed = NULL;
	const char		*tenant;
	char			 kid[SEAL_KID_LEN + 1];
	int			 r;

	/* A sealed target writes the envelope in the config's place. */
	if (st->st_seal_key != NULL) {
		if ((tenant = sync_key_tenant(st, key)) == NULL ||
		    (sealed = seal_config(st->st_seal_key, tenant, version,
		    fields)) == NULL) {
			snprintf(err, errlen, "cannot seal the config of KV "
			    "key '%s' (out of memory?)", key);
			return SYNC_E_FAIL;
		}
		seal_key_id(st->st_seal_key, kid);
	}
	r = kv_items_add_put(puts, key, sealed != NULL ? sealed : fields,
	    version, sealed != NULL ? kid : NULL);
	json_decref(sealed);
	if (r == -1) {
		snprintf(err, errlen, "cannot serialise the config of KV key "
		    "'%s' (out of memory?)", key);
		return SYNC_E_FAIL;
	}
	return sync_flush(ctx, puts, 0, 0, rep, err, errlen);
}

int
sync_add_delete(struct sync_ctx *ctx, struct kv_items *dels, const char *key,
    struct sync_report *rep, char *err, size_t errlen)
{
	if (kv_items_add_delete(dels, key) == -1) {
		snprintf(err, errlen, "out of memory");
		return SYNC_E_FAIL;
	}
	return sync_flush(ctx, dels, 1, 0, rep, err, errlen);
}

/* The latest change of each tenant in one page of the feed. */
struct sync_change {
	char		sch_tenant[PROTO_TENANT_MAX + 1];
	int		sch_delete;
};

struct sync_page {
	struct sync_change	*sp_v;
	size_t			 sp_n;
	json_t			*sp_index;	/* tenant -> index in sp_v */
	uint64_t		 sp_upto;	/* covers the feed to here */
	uint64_t		 sp_last;	/* the daemon's last seq */
	int			 sp_more;	/* the page was full */
};

static void
sync_page_release(struct sync_page *sp)
{
	free(sp->sp_v);
	json_decref(sp->sp_index);
	memset(sp, 0, sizeof(*sp));
}

/* Reads the changes after since and collapses them per tenant. */
static int
sync_page_read(struct sync_ctx *ctx, uint64_t since, struct sync_page *sp,
    char *err, size_t errlen)
{
	struct proto_error	 pe;
	struct sync_change	*ch;
	json_t			*res, *changes, *c, *idx;
	const char		*tenant, *op;
	uint64_t		 seq, version, prev = since;
	size_t			 i, n;
	int			 rc;

	memset(sp, 0, sizeof(*sp));
	rc = sync_call(ctx, "changes", json_pack("{s:I,s:i}", "since",
	    (json_int_t)since, "limit", SYNC_CHANGES_LIMIT), &res, &pe, err,
	    errlen);
	if (rc == SYNC_E_FAIL && pe.pe_code == PROTO_E_TRIMMED)
		return SYNC_E_TRIMMED;
	if (rc != 0)
		return rc;
	changes = json_object_get(res, "changes");
	if (!json_is_array(changes) ||
	    sync_get_uint(res, "last_seq", &sp->sp_last) == -1)
		goto bad;
	n = json_array_size(changes);
	if ((sp->sp_index = json_object()) == NULL ||
	    (n > 0 && (sp->sp_v = calloc(n, sizeof(*sp->sp_v))) == NULL)) {
		snprintf(err, errlen, "out of memory");
		rc = SYNC_E_FAIL;
		goto done;
	}
	json_array_foreach(changes, i, c) {
		tenant = json_string_value(json_object_get(c, "tenant"));
		op = json_string_value(json_object_get(c, "op"));
		if (sync_get_uint(c, "seq", &seq) == -1 || seq <= prev ||
		    sync_get_uint(c, "version", &version) == -1 ||
		    tenant == NULL || proto_tenant_valid(tenant, NULL, 0) ==
		    -1 || op == NULL || (strcmp(op, "put") != 0 &&
		    strcmp(op, "delete") != 0))
			goto bad;
		prev = seq;
		/* Many changes to one tenant become one write. */
		if ((idx = json_object_get(sp->sp_index, tenant)) != NULL)
			ch = &sp->sp_v[json_integer_value(idx)];
		else {
			ch = &sp->sp_v[sp->sp_n];
			snprintf(ch->sch_tenant, sizeof(ch->sch_tenant), "%s",
			    tenant);
			if (json_object_set_new(sp->sp_index, tenant,
			    json_integer((json_int_t)sp->sp_n)) == -1) {
				snprintf(err, errlen, "out of memory");
				rc = SYNC_E_FAIL;
				goto done;
			}
			sp->sp_n++;
		}
		ch->sch_delete = strcmp(op, "delete") == 0;
	}
	/*
	 * A page read in one daemon transaction that is not full holds
	 * everything up to last_seq; a full one ends at its last change.
	 */
	sp->sp_more = n >= SYNC_CHANGES_LIMIT;
	sp->sp_upto = sp->sp_more || prev > sp->sp_last ? prev : sp->sp_last;
	rc = 0;
	goto done;
bad:
	snprintf(err, errlen, "wfvaultd sent a malformed reply to changes");
	rc = SYNC_E_FAIL;
done:
	json_decref(res);
	if (rc != 0)
		sync_page_release(sp);
	return rc;
}

/* Pushes one collapsed page: writes first, then deletes. */
static int
sync_page_push(struct sync_ctx *ctx, struct sync_page *sp,
    struct sync_report *rep, char *err, size_t errlen)
{
	struct kv_items	 puts = KV_ITEMS_INIT, dels = KV_ITEMS_INIT;
	json_t		*fields;
	char		 key[KV_KEY_MAX + 1];
	uint64_t	 version;
	size_t		 i;
	int		 rc = 0, r;

	for (i = 0; i < sp->sp_n && rc == 0; i++) {
		if (sync_stopped()) {
			rc = SYNC_E_STOP;
			break;
		}
		/* Another target's tenant: acknowledged with the rest. */
		if (!sync_target_wants(ctx->sx_target,
		    sp->sp_v[i].sch_tenant))
			continue;
		sync_key(ctx->sx_target, sp->sp_v[i].sch_tenant, key,
		    sizeof(key));
		if (!sp->sp_v[i].sch_delete) {
			r = sync_fetch(ctx, sp->sp_v[i].sch_tenant, &fields,
			    &version, err, errlen);
			if (r < 0) {
				rc = r;
				break;
			}
			if (r == 0) {
				rc = sync_add_put(ctx, &puts, key, fields,
				    version, rep, err, errlen);
				json_decref(fields);
				continue;
			}
			/* Deleted since the change: delete it from KV too. */
		}
		rc = sync_add_delete(ctx, &dels, key, rep, err, errlen);
	}
	if (rc == 0)
		rc = sync_flush(ctx, &puts, 0, 1, rep, err, errlen);
	if (rc == 0)
		rc = sync_flush(ctx, &dels, 1, 1, rep, err, errlen);
	kv_items_release(&puts);
	kv_items_release(&dels);
	return rc;
}

/*
 * A request abandoned after a timeout, or answered with a 5xx or a 524,
 * may still be carried out by Cloudflare later, over whatever was written
 * since.  So before the feed is acknowledged (after which newer configs
 * go out), wait settle_time from the last such request.  A key written
 * only with what that request carried is then right whenever it landed;
 * one written with something else too (the page was pushed again after a
 * lost daemon) gets its tenant's current config again, and that write
 * may need settling in turn.  Keys not settled stay in sx_uncertain.
 */
int
sync_settle(struct sync_ctx *ctx, struct sync_report *rep, char *err,
    size_t errlen)
{
	struct kv_items	 puts = KV_ITEMS_INIT, dels = KV_ITEMS_INIT;
	json_t		*todo, *v, *fields;
	const char	*key, *tenant;
	uint64_t	 version;
	int64_t		 wait;
	size_t		 n;
	int		 rc, r;

	while (ctx->sx_uncertain != NULL &&
	    (n = json_object_size(ctx->sx_uncertain)) > 0) {
		wait = ctx->sx_kv->kc_uncertain_ms +
		    (int64_t)ctx->sx_target->st_settle_time * 1000 -
		    util_now_ms();
		if (wait > 0) {
			log_info("%zu KV key%s went out in a request that "
			    "may still be applied; waiting %.1f s "
			    "(settle_time) before acknowledging", n,
			    n == 1 ? "" : "s", (double)wait / 1000);
			if (sync_sleep((uint64_t)wait) == -1)
				return SYNC_E_STOP;
		}
		todo = ctx->sx_uncertain;
		ctx->sx_uncertain = NULL;
		rc = 0;
		json_object_foreach(todo, key, v) {
			if (json_integer_value(v) != KV_FATE_MIXED ||
			    (tenant = sync_key_tenant(ctx->sx_target, key)) ==
			    NULL)
				continue;
			if (sync_stopped()) {
				rc = SYNC_E_STOP;
				break;
			}
			log_debug("%s: %s: writing the current config again",
			    __func__, key);
			r = sync_fetch(ctx, tenant, &fields, &version, err,
			    errlen);
			if (r < 0) {
				rc = r;
				break;
			}
			if (r == 0) {
				rc = sync_add_put(ctx, &puts, key, fields,
				    version, rep, err, errlen);
				json_decref(fields);
			} else
				rc = sync_add_delete(ctx, &dels, key, rep, err,
				    errlen);
			if (rc != 0)
				break;
			rep->sr_repushed++;
		}
		if (rc == 0)
			rc = sync_flush(ctx, &puts, 0, 1, rep, err, errlen);
		if (rc == 0)
			rc = sync_flush(ctx, &dels, 1, 1, rep, err, errlen);
		kv_items_release(&puts);
		kv_items_release(&dels);
		if (rc != 0) {
			/* The mixed ones are still owed to the next pass. */
			json_object_foreach(todo, key, v) {
				if (json_integer_value(v) == KV_FATE_MIXED &&
				    ((ctx->sx_uncertain == NULL &&
				    (ctx->sx_uncertain = json_object()) ==
				    NULL) || kv_fate_note(ctx->sx_uncertain,
				    key, KV_FATE_MIXED, 1) == -1)) {
					log_warnx("out of memory");
					break;
				}
			}
			json_decref(todo);
			return rc;
		}
		json_decref(todo);
	}
	return 0;
}

/* Records that KV holds everything of the feed up to seq. */
static int
sync_ack(struct sync_ctx *ctx, uint64_t seq, char *err, size_t errlen)
{
	struct proto_error	 pe;
	json_t			*res;
	int			 rc;

	rc = sync_call(ctx, "sync_ack", json_pack("{s:s,s:I}", "target",
	    ctx->sx_target->st_name, "seq", (json_int_t)seq), &res, &pe, err,
	    errlen);
	if (rc == 0)
		json_decref(res);
	return rc;
}

int
sync_state(struct sync_ctx *ctx, uint64_t *acked, uint64_t *last, char *err,
    size_t errlen)
{
	struct proto_error	 pe;
	json_t			*res;
	int			 rc;

	rc = sync_call(ctx, "sync_state", json_pack("{s:s}", "target",
	    ctx->sx_target->st_name), &res, &pe, err, errlen);
	if (rc != 0)
		return rc;
	if (sync_get_uint(res, "acked_seq", acked) == -1 ||
	    sync_get_uint(res, "last_seq", last) == -1) {
		json_decref(res);
		snprintf(err, errlen, "wfvaultd sent a malformed reply to "
		    "sync_state");
		return SYNC_E_FAIL;
	}
	json_decref(res);
	return 0;
}

/*
 * The full pass after the feed was trimmed past the target: the feed's
 * last seq first (*upto), so every change after the listings below is
 * still in the feed after it; then KV and the vault are compared as
 * --reconcile does, and keys the vault wrote whose tenant is gone (its
 * delete was among the trimmed changes) are deleted.
 */
static int
sync_resync(struct sync_ctx *ctx, struct sync_report *rep, uint64_t *upto,
    char *err, size_t errlen)
{
	uint64_t	 acked;
	int		 rc;

	if ((rc = sync_state(ctx, &acked, upto, err, errlen)) != 0)
		return rc;
	return sync_repair(ctx, rep, SYNC_REPAIR_RESYNC, err, errlen);
}

int
sync_engine_run(struct sync_ctx *ctx, struct sync_report *rep, char *err,
    size_t errlen)
{
	struct sync_page	 sp;
	uint64_t		 acked, last, since, requests0;
	int			 rc, more;

	memset(rep, 0, sizeof(*rep));
	requests0 = ctx->sx_kv != NULL ? ctx->sx_kv->kc_requests : 0;
	if ((rc = sync_state(ctx, &acked, &last, err, errlen)) != 0)
		return rc;
	since = acked;
	rep->sr_seq = acked;
	if (acked >= last) {
		/* Nothing new, but an earlier pass may still owe a settle. */
		if (!ctx->sx_dry_run &&
		    (rc = sync_settle(ctx, rep, err, errlen)) != 0)
			return rc;
		goto done;
	}

	/*
	 * One page at a time: push it whole, then acknowledge its end.  A
	 * large backlog so holds one page of tenant ids and one batch of
	 * values at a time, and a restart repeats at most one page.
	 */
	for (;;) {
		rc = sync_page_read(ctx, since, &sp, err, errlen);
		if (rc == SYNC_E_TRIMMED) {
			log_info("the change feed was trimmed past target "
			    "'%s' (at seq %llu): a full pass over every "
			    "tenant", ctx->sx_target->st_name,
			    (unsigned long long)since);
			if ((rc = sync_resync(ctx, rep, &since, err,
			    errlen)) != 0)
				return rc;
			rep->sr_full = 1;
			if (!ctx->sx_dry_run && (rc = sync_ack(ctx, since, err,
			    errlen)) != 0)
				return rc;
			rep->sr_seq = since;
			continue;
		}
		if (rc != 0)
			return rc;
		log_debug("%s: changes after %llu: %zu tenants, up to %llu",
		    __func__, (unsigned long long)since, sp.sp_n,
		    (unsigned long long)sp.sp_upto);
		rc = sync_page_push(ctx, &sp, rep, err, errlen);
		since = sp.sp_upto;
		more = sp.sp_more;
		sync_page_release(&sp);
		if (rc != 0)
			return rc;
		if (!ctx->sx_dry_run &&
		    (rc = sync_settle(ctx, rep, err, errlen)) != 0)
			return rc;
		if (!ctx->sx_dry_run && since > rep->sr_seq &&
		    (rc = sync_ack(ctx, since, err, errlen)) != 0)
			return rc;
		rep->sr_seq = since;
		if (!more)
			break;
	}
done:
	if (ctx->sx_kv != NULL)
		rep->sr_requests = ctx->sx_kv->kc_requests - requests0;
	return 0;
}
