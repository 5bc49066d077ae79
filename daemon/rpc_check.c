/*
 * Whether a tenant is ready: test_result records a live test's outcome,
 * check says per integration what is missing, malformed or failing and
 * whether the sync agents pushed the tenant's last change.  The values
 * are decrypted here and never leave the daemon.
 */
#include <sys/types.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "wfvaultd.h"

static void	check_time(json_int_t, char *, size_t);
static json_t	*check_where(const struct catalog_integration *,
		    const char *);
static int	check_integration(struct rpc_call *, json_t *, const char *,
		    json_t *, uint64_t, json_t **);
static int	check_sync_one(void *, const char *, uint64_t);

static void
check_time(json_int_t t, char *buf, size_t len)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "1970-01-01T00:00:00Z");
}

int
rpc_test_result(struct rpc_call *call)
{
	struct store_tenant	 st = STORE_TENANT_INIT;
	struct rpc_args		*a = &call->rc_args;
	json_t			*outcome;
	char			 when[32];
	uint64_t		 now = (uint64_t)time(NULL);
	int			 rc;

	/* The id is not echoed: only its length was checked. */
	if (catalog_find(call->rc_srv->srv_catalog, a->ra_integration) ==
	    NULL)
		return rpc_fail(call, PROTO_E_PARAMS, "param 'integration' "
		    "names no integration of the catalog (wfvault "
		    "integrations lists them)");
	rc = store_tenant_get(call->rc_srv->srv_store, call->rc_txn,
	    a->ra_tenant, &st);
	if (rc == STORE_OK && st.st_deleted)
		rc = STORE_E_NOT_FOUND;
	if (rc != STORE_OK) {
		store_tenant_release(&st);
		return rpc_store_fail(call, rc);
	}
	if (a->ra_version > st.st_version) {
		rc = rpc_fail(call, PROTO_E_PARAMS, "tenant '%s' is at version "
		    "%llu; version %llu was never stored", a->ra_tenant,
		    (unsigned long long)st.st_version,
		    (unsigned long long)a->ra_version);
		store_tenant_release(&st);
		return rc;
	}
	store_tenant_release(&st);
	outcome = json_pack("{s:I,s:s,s:o,s:s,s:I,s:I}", "at",
	    (json_int_t)now, "result", a->ra_result, "status",
	    a->ra_has_status ? json_integer(a->ra_status) : json_null(),
	    "reason", a->ra_reason, "version", (json_int_t)a->ra_version,
	    "uid", (json_int_t)call->rc_peer.p_uid);
	if (outcome == NULL)
		return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	rc = store_test_put(call->rc_srv->srv_store, call->rc_txn,
	    a->ra_tenant, a->ra_integration, outcome);
	json_decref(outcome);
	if (rc != STORE_OK)
		return rpc_store_fail(call, rc);
	check_time((json_int_t)now, when, sizeof(when));
	return rpc_result(call, json_pack("{s:s,s:s,s:s}", "tenant",
	    a->ra_tenant, "integration", a->ra_integration, "at", when));
}

/* The catalog's steps to get field name (a new reference), or NULL. */
static json_t *
check_where(const struct catalog_integration *ci, const char *name)
{
	json_t	*f;
	size_t	 i;

	json_array_foreach(json_object_get(ci->ci_json, "fields"), i, f)
		if (json_is_string(json_object_get(f, "name")) &&
		    strcmp(json_string_value(json_object_get(f, "name")),
		    name) == 0)
			return json_incref(json_object_get(f, "where"));
	return NULL;
}

/*
 * One integration of the tenant: its fields against the catalog and its
 * last live test.  *out is new; 0, or -1 (answered).
 */
static int
check_integration(struct rpc_call *call, json_t *config, const char *id,
    json_t *tests, uint64_t version, json_t **out)
{
	const struct catalog_integration	*ci;
	const struct catalog_field		*cf;
	json_t					*item, *missing, *malformed;
	json_t					*v, *lt = NULL, *where;
	const char				*state = "ok";
	char					 when[32];
	size_t					 j;

	*out = NULL;
	ci = catalog_find(call->rc_srv->srv_catalog, id);
	missing = json_array();
	malformed = json_array();
	if (missing == NULL || malformed == NULL)
		goto nomem;
	for (j = 0; ci != NULL && j < ci->ci_nfields; j++) {
		cf = &ci->ci_fields[j];
		if ((v = json_object_get(config, cf->cf_name)) == NULL) {
			if ((where = check_where(ci, cf->cf_name)) == NULL &&
			    (where = json_array()) == NULL)
				goto nomem;
			if (json_array_append_new(missing, json_pack(
			    "{s:s,s:s,s:o}", "name", cf->cf_name, "label",
			    cf->cf_label, "where", where)) == -1)
				goto nomem;
			continue;
		}
		/* As rpc_enforce: a NUL would hide the rest from the regex. */
		if (json_is_string(v) && strlen(json_string_value(v)) ==
		    json_string_length(v) &&
		    catalog_field_match(cf, json_string_value(v)))
			continue;
		if (json_array_append_new(malformed, json_pack("{s:s,s:s}",
		    "name", cf->cf_name, "format", cf->cf_format)) == -1)
			goto nomem;
	}
	if ((v = json_object_get(tests, id)) != NULL) {
		check_time(json_integer_value(json_object_get(v, "at")), when,
		    sizeof(when));
		lt = json_pack("{s:s,s:O,s:O,s:O,s:O,s:O,s:b}", "at", when,
		    "result", json_object_get(v, "result"), "status",
		    json_object_get(v, "status"), "reason",
		    json_object_get(v, "reason"), "version",
		    json_object_get(v, "version"), "uid",
		    json_object_get(v, "uid"), "stale",
		    (uint64_t)json_integer_value(json_object_get(v,
		    "version")) != version);
		if (lt == NULL)
			goto nomem;
	}
	/* The first that applies; a failure stands until a test passes. */
	if (ci == NULL)
		state = "unknown";
	else if (json_array_size(malformed) > 0)
		state = "malformed";
	else if (json_array_size(missing) > 0)
		state = "incomplete";
	else if (lt != NULL && strcmp(json_string_value(json_object_get(lt,
	    "result")), "fail") == 0)
		state = "failing";
	item = json_pack("{s:s,s:s?,s:s,s:o,s:o,s:o}", "id", id, "title",
	    ci != NULL ? ci->ci_title : NULL, "state", state, "missing",
	    missing, "malformed", malformed, "last_test",
	    lt != NULL ? lt : json_null());
	if (item == NULL)
		return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	*out = item;
	return 0;
nomem:
	json_decref(lt);
	json_decref(missing);
	json_decref(malformed);
	return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
}

/* check's walk of the sync targets. */
struct check_sync_ctx {
	json_t		*cs_list;
	uint64_t	 cs_change;	/* 0: no change of the tenant left */
	uint64_t	 cs_trimmed;	/* the feed's highest trimmed seq */
};

static int
check_sync_one(void *arg, const char *target, uint64_t seq)
{
	struct check_sync_ctx	*cs = arg;
	json_t			*item, *pushed;

	/*
	 * With no change of the tenant left in the feed, its last one was
	 * trimmed: a target that acknowledged the trimmed part pushed it.
	 */
	if (cs->cs_change != 0)
		pushed = json_boolean(seq >= cs->cs_change);
	else if (cs->cs_trimmed != 0 && seq >= cs->cs_trimmed)
		pushed = json_true();
	else
		pushed = json_null();
	item = json_pack("{s:s,s:I,s:o}", "target", target, "acked_seq",
	    (json_int_t)seq, "pushed", pushed);
	if (item == NULL || json_array_append_new(cs->cs_list, item) == -1)
		return STORE_E_NOMEM;
	return 0;
}

int
rpc_check(struct rpc_call *call)
{
	struct rpc_args		*a = &call->rc_args;
	struct store		*store = call->rc_srv->srv_store;
	struct check_sync_ctx	 cs;
	json_t			*config = NULL, *tests = NULL, *list = NULL;
	json_t			*ids, *id, *item;
	uint64_t		 version;
	size_t			 i;
	int			 rc, ready = 1, ret = -1;

	memset(&cs, 0, sizeof(cs));
	if ((rc = store_config_get(store, call->rc_txn, a->ra_tenant, 0,
	    &config, &version)) != STORE_OK ||
	    (rc = store_tests_get(store, call->rc_txn, a->ra_tenant,
	    &tests)) != STORE_OK ||
	    (rc = store_tenant_last_seq(store, call->rc_txn, a->ra_tenant,
	    &cs.cs_change)) != STORE_OK ||
	    (rc = store_feed_trimmed(store, call->rc_txn,
	    &cs.cs_trimmed)) != STORE_OK) {
		rpc_store_fail(call, rc);
		goto out;
	}
	if ((list = json_array()) == NULL ||
	    (cs.cs_list = json_array()) == NULL) {
		rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	ids = json_object_get(config, STORE_INTEGRATIONS);
	json_array_foreach(ids, i, id) {
		if (!json_is_string(id))
			continue;
		if (check_integration(call, config, json_string_value(id),
		    tests, version, &item) == -1)
			goto out;
		if (strcmp(json_string_value(json_object_get(item, "state")),
		    "ok") != 0)
			ready = 0;
		if (json_array_append_new(list, item) == -1) {
			rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
			goto out;
		}
	}
	if ((rc = store_sync_list(store, call->rc_txn, check_sync_one,
	    &cs)) != STORE_OK) {
		rpc_store_fail(call, rc);
		goto out;
	}
	ret = rpc_result(call, json_pack("{s:s,s:I,s:b,s:O,s:O,s:o}",
	    "tenant", a->ra_tenant, "version", (json_int_t)version, "ready",
	    ready, "integrations", list, "sync", cs.cs_list, "change_seq",
	    cs.cs_change == 0 ? json_null() :
	    json_integer((json_int_t)cs.cs_change)));
out:
	json_decref(cs.cs_list);
	json_decref(list);
	json_decref(tests);
	json_decref(config);	/* the values: wiped by the allocator */
	return ret;
}
