/*
 * A tenant's kept versions: history says who made each one, when, and
 * which field names it added, changed or removed (never a value);
 * rollback makes a new version equal to an older one.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wfvaultd.h"

static int	hist_name_cmp(const void *, const void *);
static json_t	*hist_names(json_t *);
static json_t	*hist_item(uint64_t, json_t *);
static json_t	*hist_set(json_t *);
static int	hist_diff(json_t *, json_t *, json_t *);

static int
hist_name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * config's field names, sorted, as a new array (NULL when out of
 * memory); members starting with '@' are not fields.
 */
static json_t *
hist_names(json_t *config)
{
	const char	**keys, *key;
	json_t		 *out, *v;
	size_t		  n = 0, i;

	if ((out = json_array()) == NULL)
		return NULL;
	if (json_object_size(config) == 0)
		return out;
	if ((keys = calloc(json_object_size(config), sizeof(*keys))) == NULL) {
		json_decref(out);
		return NULL;
	}
	json_object_foreach(config, key, v)
		if (key[0] != '@')
			keys[n++] = key;
	qsort(keys, n, sizeof(*keys), hist_name_cmp);
	for (i = 0; i < n; i++) {
		if (json_array_append_new(out, json_string(keys[i])) == -1) {
			json_decref(out);
			out = NULL;
			break;
		}
	}
	free(keys);
	return out;
}

/*
 * The entry of version (config borrowed): what its STORE_META says (null
 * for a version stored before there was one), its field names and the
 * integrations it uses.  New, or NULL when out of memory.
 */
static json_t *
hist_item(uint64_t version, json_t *config)
{
	json_t	*meta, *ints, *item, *at, *uid, *names, *of;
	char	 when[32];

	meta = json_object_get(config, STORE_META);
	at = json_object_get(meta, "at");
	uid = json_object_get(meta, "uid");
	of = json_object_get(meta, "rollback_of");
	if (json_is_integer(at) && json_integer_value(at) >= 0) {
		rpc_time((uint64_t)json_integer_value(at), when, sizeof(when));
		at = json_string(when);
	} else
		at = json_null();
	uid = json_is_integer(uid) ? json_incref(uid) : json_null();
	ints = json_object_get(config, STORE_INTEGRATIONS);
	ints = json_is_array(ints) ? json_incref(ints) : json_array();
	if ((names = hist_names(config)) == NULL) {
		json_decref(at);
		json_decref(uid);
		json_decref(ints);
		return NULL;
	}
	item = json_pack("{s:I,s:o,s:o,s:o,s:o}", "version",
	    (json_int_t)version, "at", at, "uid", uid, "fields", names,
	    "integrations", ints);
	if (item != NULL && json_is_integer(of) &&
	    json_object_set(item, "rollback_of", of) == -1) {
		json_decref(item);
		return NULL;
	}
	return item;
}

/*
 * The names of a blind write's set (see below) as the keys of a new
 * object, so each lookup is a hash, not a walk; NULL when out of memory.
 */
static json_t *
hist_set(json_t *set)
{
	json_t	*keys, *v;
	size_t	 i;

	if ((keys = json_object()) == NULL)
		return NULL;
	json_array_foreach(set, i, v)
		if (json_is_string(v) && json_object_set(keys,
		    json_string_value(v), json_true()) == -1) {
			json_decref(keys);
			return NULL;
		}
	return keys;
}

/*
 * Adds to item (of config, borrowed) the field names added, changed and
 * removed since older (NULL: the tenant's first version, where every
 * field is added).  Values are compared, never copied; but a version
 * written by a caller who could not read the tenant (its STORE_META has
 * "blind_set") has every field it set as changed, equal or not, so
 * history is no oracle on the values such a caller tries.  0 or -1.
 */
static int
hist_diff(json_t *item, json_t *config, json_t *older)
{
	json_t		*added, *changed, *removed, *names, *name, *old;
	json_t		*gone = NULL, *set, *blind = NULL;
	const char	*key;
	size_t		 i;
	int		 rv = -1;

	set = json_object_get(json_object_get(config, STORE_META),
	    "blind_set");
	if (json_is_array(set) && (blind = hist_set(set)) == NULL)
		return -1;
	added = json_array();
	changed = json_array();
	removed = json_array();
	names = json_object_get(item, "fields");
	if (added == NULL || changed == NULL || removed == NULL)
		goto out;
	json_array_foreach(names, i, name) {
		key = json_string_value(name);
		old = older != NULL ? json_object_get(older, key) : NULL;
		if (old == NULL) {
			if (json_array_append(added, name) == -1)
				goto out;
		} else if ((blind != NULL ? json_object_get(blind, key) != NULL :
		    !json_equal(old, json_object_get(config, key))) &&
		    json_array_append(changed, name) == -1)
			goto out;
	}
	if (older != NULL) {
		if ((gone = hist_names(older)) == NULL)
			goto out;
		json_array_foreach(gone, i, name)
			if (json_object_get(config, json_string_value(name)) ==
			    NULL && json_array_append(removed, name) == -1)
				goto out;
	}
	if (json_object_set(item, "added", added) == -1 ||
	    json_object_set(item, "changed", changed) == -1 ||
	    json_object_set(item, "removed", removed) == -1)
		goto out;
	rv = 0;
out:
	json_decref(blind);
	json_decref(gone);
	json_decref(added);
	json_decref(changed);
	json_decref(removed);
	return rv;
}

/*
 * Walks the kept versions down from the current one, holding two configs
 * at a time: each entry gets its diff once the version before it is read.
 */
int
rpc_history(struct rpc_call *call)
{
	struct store	*store = call->rc_srv->srv_store;
	const char	*tenant = call->rc_args.ra_tenant;
	json_t		*list, *config = NULL, *newer = NULL, *item;
	json_t		*newer_item = NULL;
	uint64_t	 current, v, keep, n = 0;
	int		 rc, ret = -1;

	keep = call->rc_srv->srv_conf->dc_keep_versions;
	if ((list = json_array()) == NULL)
		return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	rc = store_config_get(store, call->rc_txn, tenant, 0, &config,
	    &current);
	if (rc != STORE_OK) {
		rpc_store_fail(call, rc);
		goto out;
	}
	for (v = current; v >= 1 && n < keep; v--, n++) {
		if (v != current) {
			rc = store_config_get(store, call->rc_txn, tenant, v,
			    &config, NULL);
			if (rc == STORE_E_NOT_FOUND)
				break;
			if (rc != STORE_OK) {
				rpc_store_fail(call, rc);
				goto out;
			}
		}
		if ((item = hist_item(v, config)) == NULL ||
		    json_array_append_new(list, item) == -1 ||
		    (newer != NULL && hist_diff(newer_item, newer,
		    config) == -1)) {
			rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
			goto out;
		}
		json_decref(newer);
		newer = config;
		newer_item = item;
		config = NULL;
	}
	/* The first version: everything in it was added. */
	if (newer != NULL && v == 0 && hist_diff(newer_item, newer,
	    NULL) == -1) {
		rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	ret = rpc_result(call, json_pack("{s:s,s:I,s:O}", "tenant", tenant,
	    "version", (json_int_t)current, "versions", list));
out:
	json_decref(config);
	json_decref(newer);
	json_decref(list);
	return ret;
}

/*
 * A new version holding version N's fields and integrations, checked
 * against today's formats as a put is; like put, none when the current
 * version already holds them and the caller may read.
 */
int
rpc_rollback(struct rpc_call *call)
{
	struct rpc_args	*a = &call->rc_args;
	json_t		*current = NULL, *old = NULL;
	uint64_t	 version;
	int		 rc, ret = -1, may_read;

	may_read = (acl_perms(&call->rc_srv->srv_conf->dc_acl, &call->rc_peer,
	    a->ra_tenant) & PERM_READ) != 0;
	if (rpc_current(call, &current, &version) == -1)
		goto out;
	if (version == 0) {
		rpc_fail(call, PROTO_E_NOT_FOUND, "no tenant '%s'",
		    a->ra_tenant);
		goto out;
	}
	rc = store_config_get(call->rc_srv->srv_store, call->rc_txn,
	    a->ra_tenant, a->ra_version, &old, NULL);
	if (rc == STORE_E_NOT_FOUND) {
		rpc_fail(call, PROTO_E_NOT_FOUND, "tenant '%s' has no version "
		    "%llu (only the last keep_versions are kept)",
		    a->ra_tenant, (unsigned long long)a->ra_version);
		goto out;
	}
	if (rc != STORE_OK) {
		rpc_store_fail(call, rc);
		goto out;
	}
	json_object_del(old, STORE_META);
	if (rpc_enforce(call, old) == -1)
		goto out;
	if (may_read && json_equal(old, current)) {
		call->rc_version = version;
		ret = rpc_result(call, json_pack("{s:s,s:I,s:I}", "tenant",
		    a->ra_tenant, "version", (json_int_t)version,
		    "rollback_of", (json_int_t)a->ra_version));
		goto out;
	}
	ret = rpc_store_config(call, old, a->ra_version);
out:
	json_decref(old);
	json_decref(current);
	return ret;
}
