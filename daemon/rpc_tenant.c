/*
 * The methods on tenant data: put, get, list and delete (with purge), and
 * what rpc_history.c shares with them.
 */
#include <sys/types.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "wfvaultd.h"

static int	rpc_put_integrations(struct rpc_call *, json_t *, json_t **);
static int	rpc_purge(struct rpc_call *);
static int	rpc_list_one(void *, const struct store_tenant *);

/*
 * Reads the tenant's current version (0 when it does not exist or was
 * deleted) and, when want_config, its config; then applies cas.  Who made
 * the version is not part of the config put compares and keeps.
 */
int
rpc_current(struct rpc_call *call, json_t **config, uint64_t *version)
{
	struct store_tenant	 st = STORE_TENANT_INIT;
	struct rpc_args		*a = &call->rc_args;
	int			 rc;

	*version = 0;
	if (config != NULL)
		*config = NULL;
	rc = store_tenant_get(call->rc_srv->srv_store, call->rc_txn,
	    a->ra_tenant, &st);
	if (rc == STORE_OK && !st.st_deleted)
		*version = st.st_version;
	store_tenant_release(&st);
	if (rc != STORE_OK && rc != STORE_E_NOT_FOUND)
		return rpc_store_fail(call, rc);

	if (a->ra_has_cas && a->ra_cas != *version) {
		if (*version == 0)
			return rpc_fail(call, PROTO_E_CONFLICT, "tenant '%s' "
			    "does not exist, expected version %llu",
			    a->ra_tenant, (unsigned long long)a->ra_cas);
		return rpc_fail(call, PROTO_E_CONFLICT, "tenant '%s' is at "
		    "version %llu, expected %llu", a->ra_tenant,
		    (unsigned long long)*version,
		    (unsigned long long)a->ra_cas);
	}
	if (config == NULL || *version == 0)
		return 0;
	rc = store_config_get(call->rc_srv->srv_store, call->rc_txn,
	    a->ra_tenant, 0, config, version);
	if (rc != STORE_OK)
		return rpc_store_fail(call, rc);
	json_object_del(*config, STORE_META);
	return 0;
}

/*
 * For a caller who may not read the tenant: the names of the fields its
 * write set (all of them for a replace or a rollback), into meta's
 * "blind_set".  history reports those as changed without comparing
 * values, which would tell such a caller whether a value it wrote equals
 * the stored one.  0 or -1 (out of memory).
 */
static int
rpc_meta_blind(struct rpc_call *call, json_t *config, uint64_t rollback_of,
    json_t *meta)
{
	struct rpc_args	*a = &call->rc_args;
	json_t		*set, *v;
	const char	*key;

	if ((set = json_array()) == NULL)
		return -1;
	json_object_foreach(config, key, v) {
		if (key[0] == '@')
			continue;
		if (rollback_of == 0 && !a->ra_replace &&
		    json_object_get(a->ra_fields, key) == NULL)
			continue;
		if (json_array_append_new(set, json_string(key)) == -1) {
			json_decref(set);
			return -1;
		}
	}
	return json_object_set_new(meta, "blind_set", set);
}

/*
 * Stores config as the tenant's next version, within max_config_bytes
 * (which counts what callers store, not STORE_META), with who made it and
 * when, so that history can say so.
 */
int
rpc_store_config(struct rpc_call *call, json_t *config, uint64_t rollback_of)
{
	struct daemon_conf	*conf = call->rc_srv->srv_conf;
	const char		*tenant = call->rc_args.ra_tenant;
	json_t			*meta;
	time_t			 now = time(NULL);
	uint64_t		 version;
	size_t			 size;
	int			 rc;

	size = json_dumpb(config, NULL, 0, JSON_COMPACT);
	if (size > conf->dc_max_config_bytes)
		return rpc_fail(call, PROTO_E_TOO_LARGE, "config too large: "
		    "tenant '%s' would be over max_config_bytes (%llu)",
		    tenant, (unsigned long long)conf->dc_max_config_bytes);
	meta = json_pack("{s:I,s:I}", "uid", (json_int_t)call->rc_peer.p_uid,
	    "at", (json_int_t)(now < 0 ? 0 : now));
	if (meta == NULL || (rollback_of != 0 && json_object_set_new(meta,
	    "rollback_of", json_integer((json_int_t)rollback_of)) == -1) ||
	    ((acl_perms(&conf->dc_acl, &call->rc_peer, tenant) &
	    PERM_READ) == 0 && rpc_meta_blind(call, config, rollback_of,
	    meta) == -1) ||
	    json_object_set_new(config, STORE_META, meta) == -1)
		return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	rc = store_config_put(call->rc_srv->srv_store, call->rc_txn, tenant,
	    config, &version, &call->rc_seq);
	json_object_del(config, STORE_META);
	if (rc != STORE_OK)
		return rpc_store_fail(call, rc);
	call->rc_version = version;
	if (rollback_of != 0)
		return rpc_result(call, json_pack("{s:s,s:I,s:I}", "tenant",
		    tenant, "version", (json_int_t)version, "rollback_of",
		    (json_int_t)rollback_of));
	return rpc_result(call, json_pack("{s:s,s:I}", "tenant", tenant,
	    "version", (json_int_t)version));
}

static int
rpc_id_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The integrations the tenant uses after this put: the stored ones
 * (current's, or none), plus the ones given, or only the given ones on a
 * replace.  Every id given must be in the catalog.  0 with a new sorted
 * array without repeats in *out, or -1 (answered).
 */
static int
rpc_put_integrations(struct rpc_call *call, json_t *current, json_t **out)
{
	struct rpc_args	*a = &call->rc_args;
	const char	*ids[2 * RPC_INTEGRATIONS_MAX], *id;
	json_t		*stored, *v;
	char		 unknown[256];
	size_t		 n = 0, i, len = 0;

	*out = NULL;
	stored = current != NULL ? json_object_get(current,
	    STORE_INTEGRATIONS) : NULL;
	if (json_is_array(stored) && (a->ra_integrations == NULL ||
	    !a->ra_replace))
		json_array_foreach(stored, i, v)
			if (json_is_string(v) && n < sizeof(ids) / sizeof(ids[0]))
				ids[n++] = json_string_value(v);
	unknown[0] = '\0';
	json_array_foreach(a->ra_integrations, i, v) {
		id = json_string_value(v);
		if (catalog_find(call->rc_srv->srv_catalog, id) == NULL) {
			/* Ids are short strings checked by rpc_args. */
			len += snprintf(unknown + len, len < sizeof(unknown) ?
			    sizeof(unknown) - len : 0, "%s'%s'", len > 0 ?
			    ", " : "", id);
			if (len >= sizeof(unknown))
				len = sizeof(unknown);
			continue;
		}
		if (n < sizeof(ids) / sizeof(ids[0]))
			ids[n++] = id;
	}
	if (unknown[0] != '\0')
		return rpc_fail(call, PROTO_E_PARAMS, "unknown integration %s: "
		    "not in the catalog (wfvault integrations lists it); "
		    "nothing stored", unknown);
	qsort(ids, n, sizeof(ids[0]), rpc_id_cmp);
	if ((*out = json_array()) == NULL)
		return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(ids[i], ids[i - 1]) == 0)
			continue;
		if (json_array_size(*out) == RPC_INTEGRATIONS_MAX) {
			json_decref(*out);
			*out = NULL;
			return rpc_fail(call, PROTO_E_PARAMS, "tenant '%s' "
			    "would use more than %d integrations; nothing "
			    "stored", a->ra_tenant, RPC_INTEGRATIONS_MAX);
		}
		if (json_array_append_new(*out, json_string(ids[i])) == -1) {
			json_decref(*out);
			*out = NULL;
			return rpc_fail(call, PROTO_E_INTERNAL,
			    "out of memory");
		}
	}
	return 0;
}

/*
 * Every field of config named by an integration the tenant uses must be
 * a string matching the field's format; a missing one is fine (it is
 * collected later).  The message names the field and the format, never
 * the value: it may be a secret.  An integration gone from the catalog
 * (a reload dropped it) checks nothing, with a warning.
 */
int
rpc_enforce(struct rpc_call *call, json_t *config)
{
	const struct catalog_integration	*ci;
	const struct catalog_field		*cf;
	json_t					*ids, *id, *v;
	size_t					 i, j;

	ids = json_object_get(config, STORE_INTEGRATIONS);
	json_array_foreach(ids, i, id) {
		ci = catalog_find(call->rc_srv->srv_catalog,
		    json_string_value(id));
		if (ci == NULL) {
			log_warnx("tenant '%s' uses integration '%s', which "
			    "is not in the catalog: its formats are not "
			    "checked", call->rc_args.ra_tenant,
			    json_string_value(id));
			continue;
		}
		for (j = 0; j < ci->ci_nfields; j++) {
			cf = &ci->ci_fields[j];
			if ((v = json_object_get(config, cf->cf_name)) == NULL)
				continue;
			/* A NUL inside would hide the rest from the regex. */
			if (json_is_string(v) && strlen(json_string_value(v)) ==
			    json_string_length(v) &&
			    catalog_field_match(cf, json_string_value(v)))
				continue;
			return rpc_fail(call, PROTO_E_PARAMS, "field '%s' does "
			    "not match the format of integration '%s' (%s); "
			    "nothing stored", cf->cf_name, ci->ci_id,
			    cf->cf_format);
		}
	}
	return 0;
}

int
rpc_put(struct rpc_call *call)
{
	struct rpc_args	*a = &call->rc_args;
	json_t		*config = NULL, *current = NULL, *value, *old;
	json_t		*ints = NULL, *was = NULL;
	const char	*key;
	uint64_t	 version;
	int		 ret = -1, changed = 0, may_read;

	/*
	 * "No new version when nothing changes" tells the caller whether its
	 * values equal the stored ones, so it is kept for callers who may
	 * read them anyway: for a write-only caller every put is a new
	 * version, whatever is stored.
	 */
	may_read = (acl_perms(&call->rc_srv->srv_conf->dc_acl, &call->rc_peer,
	    a->ra_tenant) & PERM_READ) != 0;
	/* Even a write-only replace keeps the integrations stored. */
	if (rpc_current(call, &current, &version) == -1)
		goto out;
	if (rpc_put_integrations(call, current, &ints) == -1)
		goto out;
	if (current != NULL)
		was = json_incref(json_object_get(current, STORE_INTEGRATIONS));
	if (!a->ra_replace && current != NULL)
		config = json_incref(current);
	else if ((config = json_object()) == NULL) {
		rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	json_object_foreach(a->ra_fields, key, value) {
		old = json_object_get(config, key);
		if (json_is_null(value)) {
			if (old != NULL) {
				json_object_del(config, key);
				changed = 1;
			}
		} else if (old == NULL || !json_equal(old, value)) {
			if (json_object_set(config, key, value) == -1) {
				rpc_fail(call, PROTO_E_INTERNAL,
				    "out of memory");
				goto out;
			}
			changed = 1;
		}
	}
	if (json_array_size(ints) > 0) {
		if (json_object_set(config, STORE_INTEGRATIONS, ints) == -1) {
			rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
			goto out;
		}
	} else
		json_object_del(config, STORE_INTEGRATIONS);
	if (was != NULL ? !json_equal(was, ints) : json_array_size(ints) > 0)
		changed = 1;
	if (rpc_enforce(call, config) == -1)
		goto out;
	if (version == 0 && json_object_size(config) == 0) {
		rpc_fail(call, PROTO_E_PARAMS, "nothing to store: tenant '%s' "
		    "does not exist and every field given is null",
		    a->ra_tenant);
		goto out;
	}
	/* A replace changes something when the result is another config. */
	if (a->ra_replace)
		changed = current == NULL || !json_equal(config, current);
	/*
	 * A put that changes nothing is not a new version: no write, no
	 * change for the sync agent to push again.
	 */
	if (may_read && version != 0 && !changed) {
		call->rc_version = version;
		ret = rpc_result(call, json_pack("{s:s,s:I}", "tenant",
		    a->ra_tenant, "version", (json_int_t)version));
		goto out;
	}
	ret = rpc_store_config(call, config, 0);
out:
	json_decref(ints);
	json_decref(was);
	json_decref(config);
	json_decref(current);
	return ret;
}

/*
 * delete with purge: no tombstone and no older change of the tenant is
 * left, only one delete change for the sync agent.  A deleted tenant can
 * be purged too.
 */
static int
rpc_purge(struct rpc_call *call)
{
	struct rpc_args	*a = &call->rc_args;
	uint64_t	 version;
	int		 rc;

	if (rpc_current(call, NULL, &version) == -1)
		return -1;
	rc = store_tenant_purge(call->rc_srv->srv_store, call->rc_txn,
	    a->ra_tenant, &version, &call->rc_seq);
	if (rc != STORE_OK)
		return rpc_store_fail(call, rc);
	call->rc_version = version;
	return rpc_result(call, json_pack("{s:s,s:I,s:b}", "tenant",
	    a->ra_tenant, "version", (json_int_t)version, "purged", 1));
}

int
rpc_delete(struct rpc_call *call)
{
	struct rpc_args	*a = &call->rc_args;
	json_t		*config = NULL;
	uint64_t	 version;
	int		 rc, ret = -1;

	if (a->ra_purge)
		return rpc_purge(call);
	if (rpc_current(call, a->ra_field != NULL ? &config : NULL,
	    &version) == -1)
		goto out;
	if (version == 0) {
		rpc_fail(call, PROTO_E_NOT_FOUND, "no tenant '%s'",
		    a->ra_tenant);
		goto out;
	}
	if (a->ra_field == NULL) {
		rc = store_tenant_delete(call->rc_srv->srv_store, call->rc_txn,
		    a->ra_tenant, &version, &call->rc_seq);
		if (rc != STORE_OK) {
			rpc_store_fail(call, rc);
			goto out;
		}
		call->rc_version = version;
		ret = rpc_result(call, json_pack("{s:s,s:I}", "tenant",
		    a->ra_tenant, "version", (json_int_t)version));
		goto out;
	}
	if (json_object_get(config, a->ra_field) == NULL) {
		rpc_fail(call, PROTO_E_NOT_FOUND, "tenant '%s' has no field "
		    "'%s'", a->ra_tenant, a->ra_field);
		goto out;
	}
	json_object_del(config, a->ra_field);
	ret = rpc_store_config(call, config, 0);
out:
	json_decref(config);
	return ret;
}

int
rpc_get(struct rpc_call *call)
{
	struct rpc_args	*a = &call->rc_args;
	json_t		*config = NULL, *value, *ints, *v;
	const char	*key;
	void		*tmp;
	uint64_t	 version;
	int		 rc;

	rc = store_config_get(call->rc_srv->srv_store, call->rc_txn,
	    a->ra_tenant, a->ra_version, &config, &version);
	if (rc == STORE_E_NOT_FOUND && a->ra_version != 0)
		return rpc_fail(call, PROTO_E_NOT_FOUND, "tenant '%s' has "
		    "no version %llu (only the last keep_versions are kept)",
		    a->ra_tenant, (unsigned long long)a->ra_version);
	if (rc != STORE_OK)
		return rpc_store_fail(call, rc);
	/*
	 * The integrations go beside fields, not in it: fields is exactly
	 * what the sync agent pushes to Workers KV.
	 */
	ints = json_incref(json_object_get(config, STORE_INTEGRATIONS));
	/* Nor any other member that is not a field (STORE_META, ...). */
	json_object_foreach_safe(config, tmp, key, v)
		if (key[0] == '@')
			json_object_del(config, key);
	if (ints == NULL && (ints = json_array()) == NULL) {
		json_decref(config);
		return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	}
	if (a->ra_field == NULL) {
		/* The audit line names every field whose value went out. */
		json_decref(call->rc_names);
		call->rc_names = NULL;
		rpc_note_fields(call, config, NULL);
		return rpc_result(call, json_pack("{s:s,s:I,s:o,s:o}",
		    "tenant", a->ra_tenant, "version", (json_int_t)version,
		    "fields", config, "integrations", ints));
	}
	json_decref(ints);
	if ((value = json_object_get(config, a->ra_field)) == NULL) {
		json_decref(config);
		return rpc_fail(call, PROTO_E_NOT_FOUND, "tenant '%s' has no "
		    "field '%s'", a->ra_tenant, a->ra_field);
	}
	rc = rpc_result(call, json_pack("{s:s,s:I,s:s,s:O}", "tenant",
	    a->ra_tenant, "version", (json_int_t)version, "field",
	    a->ra_field, "value", value));
	json_decref(config);
	return rc;
}

struct rpc_list_ctx {
	struct rpc_call	*lc_call;
	json_t		*lc_tenants;
	uint64_t	 lc_count;
	int		 lc_more;
};

void
rpc_time(uint64_t t, char *buf, size_t len)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "1970-01-01T00:00:00Z");
}

static int
rpc_list_one(void *arg, const struct store_tenant *st)
{
	struct rpc_list_ctx	*lc = arg;
	struct rpc_call		*call = lc->lc_call;
	char			 when[32];
	json_t			*item;

	if (!(acl_perms(&call->rc_srv->srv_conf->dc_acl, &call->rc_peer,
	    st->st_tenant) & PERM_LIST))
		return 0;
	if (lc->lc_count == call->rc_args.ra_limit) {
		lc->lc_more = 1;
		return 1;
	}
	rpc_time(st->st_updated, when, sizeof(when));
	item = json_pack("{s:s,s:I,s:s,s:O}", "tenant", st->st_tenant,
	    "version", (json_int_t)st->st_version, "updated_at", when,
	    "fields", st->st_fields);
	if (item == NULL || json_array_append_new(lc->lc_tenants, item) == -1)
		return STORE_E_NOMEM;
	lc->lc_count++;
	return 0;
}

int
rpc_list(struct rpc_call *call)
{
	struct rpc_list_ctx	 lc;
	json_t			*last;
	int			 rc;

	memset(&lc, 0, sizeof(lc));
	lc.lc_call = call;
	if ((lc.lc_tenants = json_array()) == NULL)
		return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	rc = store_list(call->rc_srv->srv_store, call->rc_txn,
	    call->rc_args.ra_prefix, call->rc_args.ra_cursor, rpc_list_one,
	    &lc);
	if (rc < 0) {
		json_decref(lc.lc_tenants);
		return rpc_store_fail(call, rc);
	}
	if (rpc_result(call, json_pack("{s:o}", "tenants",
	    lc.lc_tenants)) == -1)
		return -1;
	if (lc.lc_more && lc.lc_count > 0) {
		last = json_array_get(lc.lc_tenants, lc.lc_count - 1);
		json_object_set(call->rc_result, "cursor",
		    json_object_get(last, "tenant"));
	}
	return 0;
}

