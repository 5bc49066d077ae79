/*
 * The parameter checks of every method: types, ranges, names; unknown
 * params are refused.  Pure (no store, no connection, no server), so the
 * unit tests and the fuzzer call it as the daemon does.
 */
#include <sys/types.h>

#include <stdio.h>
#include <string.h>

#include "wfvaultd.h"

#define LIST_DEFAULT_LIMIT	100
#define LIST_MAX_LIMIT		1000
#define CHANGES_DEFAULT_LIMIT	1000
#define CHANGES_MAX_LIMIT	10000

static int	args_none(json_t *, struct rpc_args *, char *, size_t);
static int	args_put(json_t *, struct rpc_args *, char *, size_t);
static int	args_get(json_t *, struct rpc_args *, char *, size_t);
static int	args_list(json_t *, struct rpc_args *, char *, size_t);
static int	args_delete(json_t *, struct rpc_args *, char *, size_t);
static int	args_changes(json_t *, struct rpc_args *, char *, size_t);
static int	args_sync_ack(json_t *, struct rpc_args *, char *, size_t);
static int	args_sync_state(json_t *, struct rpc_args *, char *, size_t);
static int	args_watch(json_t *, struct rpc_args *, char *, size_t);
static int	args_backup(json_t *, struct rpc_args *, char *, size_t);
static int	args_tenant_only(json_t *, struct rpc_args *, char *, size_t);
static int	args_test_result(json_t *, struct rpc_args *, char *, size_t);

/* The checker of each method of proto.c's table. */
static int (*const rpc_args_checkers[PM__COUNT])(json_t *, struct rpc_args *,
    char *, size_t) = {
	[PM_HELLO] = args_none,
	[PM_PUT] = args_put,
	[PM_GET] = args_get,
	[PM_LIST] = args_list,
	[PM_DELETE] = args_delete,
	[PM_CHANGES] = args_changes,
	[PM_SYNC_ACK] = args_sync_ack,
	[PM_WATCH] = args_watch,
	[PM_STATUS] = args_none,
	[PM_SYNC_STATE] = args_sync_state,
	[PM_BACKUP] = args_backup,
	[PM_ROTATE_MASTER_KEY] = args_none,
	[PM_ROTATE_TENANT_KEY] = args_tenant_only,
	[PM_INTEGRATIONS] = args_none,
	[PM_TEST_RESULT] = args_test_result,
	[PM_CHECK] = args_tenant_only,
};

int
rpc_args_check(enum proto_method id, json_t *params, struct rpc_args *a,
    char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	if ((unsigned)id >= PM__COUNT || rpc_args_checkers[id] == NULL) {
		snprintf(err, errlen, "no parameter check for this method");
		return -1;
	}
	/*
	 * What failed its check is not the request's: nothing of it (a
	 * tenant id of a megabyte, say) reaches the audit line.
	 */
	if (rpc_args_checkers[id](params, a, err, errlen) == -1) {
		memset(a, 0, sizeof(*a));
		return -1;
	}
	return 0;
}

static int
args_tenant(json_t *params, const char *name, int req, const char **out,
    char *err, size_t errlen)
{
	if (proto_param_string(params, name, req, out, err, errlen) == -1)
		return -1;
	if (*out != NULL && proto_tenant_valid(*out, err, errlen) == -1)
		return -1;
	return 0;
}

static int
args_none(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { NULL };

	return proto_params_check(params, allowed, err, errlen);
}

static int
args_put(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "tenant", "fields", "cas",
	    "replace", "integrations", NULL };
	const char	*key;
	json_t		*value;
	size_t		 i;
	int		 present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    args_tenant(params, "tenant", 1, &a->ra_tenant, err,
	    errlen) == -1 ||
	    proto_param_uint(params, "cas", 0, 0, INT64_MAX, &a->ra_cas,
	    &a->ra_has_cas, err, errlen) == -1 ||
	    proto_param_bool(params, "replace", &a->ra_replace, &present, err,
	    errlen) == -1)
		return -1;
	a->ra_fields = json_object_get(params, "fields");
	if (a->ra_fields == NULL) {
		snprintf(err, errlen, "missing param 'fields'");
		return -1;
	}
	if (!json_is_object(a->ra_fields)) {
		snprintf(err, errlen, "param 'fields' must be an object");
		return -1;
	}
	/*
	 * The integrations a tenant uses are ids the catalog knows (rpc_put
	 * checks that); here only their shape.  fields may then be empty:
	 * onboarding records the integrations before any value.
	 */
	a->ra_integrations = json_object_get(params, "integrations");
	if (a->ra_integrations != NULL) {
		if (!json_is_array(a->ra_integrations) ||
		    json_array_size(a->ra_integrations) > RPC_INTEGRATIONS_MAX) {
			snprintf(err, errlen, "param 'integrations' must be an "
			    "array of at most %d integration ids",
			    RPC_INTEGRATIONS_MAX);
			return -1;
		}
		json_array_foreach(a->ra_integrations, i, value) {
			if (!json_is_string(value) ||
			    json_string_length(value) == 0 ||
			    json_string_length(value) > PROTO_FIELD_MAX ||
			    strlen(json_string_value(value)) !=
			    json_string_length(value)) {
				snprintf(err, errlen, "param 'integrations' "
				    "must hold integration ids (strings of 1 "
				    "to %d bytes)", PROTO_FIELD_MAX);
				return -1;
			}
		}
	}
	if (json_object_size(a->ra_fields) == 0 &&
	    (a->ra_integrations == NULL || a->ra_replace)) {
		snprintf(err, errlen, "param 'fields' is empty; nothing to "
		    "store");
		return -1;
	}
	json_object_foreach(a->ra_fields, key, value) {
		if (proto_field_valid(key, err, errlen) == -1)
			return -1;
	}
	return 0;
}

static int
args_get(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "tenant", "field", "version",
	    NULL };
	int	present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    args_tenant(params, "tenant", 1, &a->ra_tenant, err,
	    errlen) == -1 ||
	    proto_param_string(params, "field", 0, &a->ra_field, err,
	    errlen) == -1 ||
	    proto_param_uint(params, "version", 0, 1, INT64_MAX,
	    &a->ra_version, &present, err, errlen) == -1)
		return -1;
	if (a->ra_field != NULL &&
	    proto_field_valid(a->ra_field, err, errlen) == -1)
		return -1;
	return 0;
}

static int
args_list(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "prefix", "cursor", "limit",
	    NULL };
	int	present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    proto_param_string(params, "prefix", 0, &a->ra_prefix, err,
	    errlen) == -1 ||
	    args_tenant(params, "cursor", 0, &a->ra_cursor, err,
	    errlen) == -1 ||
	    proto_param_uint(params, "limit", 0, 1, LIST_MAX_LIMIT,
	    &a->ra_limit, &present, err, errlen) == -1)
		return -1;
	if (!present)
		a->ra_limit = LIST_DEFAULT_LIMIT;
	if (a->ra_prefix != NULL &&
	    proto_prefix_valid(a->ra_prefix, "param 'prefix'", err,
	    errlen) == -1)
		return -1;
	return 0;
}

static int
args_delete(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "tenant", "field", "cas",
	    "purge", NULL };
	int	present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    args_tenant(params, "tenant", 1, &a->ra_tenant, err,
	    errlen) == -1 ||
	    proto_param_string(params, "field", 0, &a->ra_field, err,
	    errlen) == -1 ||
	    proto_param_uint(params, "cas", 0, 0, INT64_MAX, &a->ra_cas,
	    &a->ra_has_cas, err, errlen) == -1 ||
	    proto_param_bool(params, "purge", &a->ra_purge, &present, err,
	    errlen) == -1)
		return -1;
	if (a->ra_field != NULL &&
	    proto_field_valid(a->ra_field, err, errlen) == -1)
		return -1;
	if (a->ra_field != NULL && a->ra_purge) {
		snprintf(err, errlen, "purge removes a whole tenant; it "
		    "cannot go with 'field'");
		return -1;
	}
	return 0;
}

static int
args_tenant_only(json_t *params, struct rpc_args *a, char *err,
    size_t errlen)
{
	static const char *const allowed[] = { "tenant", NULL };

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    args_tenant(params, "tenant", 1, &a->ra_tenant, err,
	    errlen) == -1)
		return -1;
	return 0;
}

static int
args_backup(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "name", NULL };

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    proto_param_string(params, "name", 0, &a->ra_name, err,
	    errlen) == -1)
		return -1;
	if (a->ra_name != NULL &&
	    proto_backup_name_valid(a->ra_name, err, errlen) == -1)
		return -1;
	return 0;
}

static int
args_changes(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "since", "limit", NULL };
	int	present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    proto_param_uint(params, "since", 1, 0, INT64_MAX, &a->ra_since,
	    &present, err, errlen) == -1 ||
	    proto_param_uint(params, "limit", 0, 1, CHANGES_MAX_LIMIT,
	    &a->ra_limit, &present, err, errlen) == -1)
		return -1;
	if (!present)
		a->ra_limit = CHANGES_DEFAULT_LIMIT;
	return 0;
}

/* Target names follow the tenant id rules. */
static int
args_target(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	if (proto_param_string(params, "target", 1, &a->ra_target, err,
	    errlen) == -1)
		return -1;
	if (proto_tenant_valid(a->ra_target, err, errlen) == -1) {
		snprintf(err, errlen, "param 'target' must be 1-128 letters, "
		    "digits, '.', '_' or '-'");
		return -1;
	}
	return 0;
}

static int
args_sync_ack(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "target", "seq", NULL };
	int	present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    args_target(params, a, err, errlen) == -1 ||
	    proto_param_uint(params, "seq", 1, 0, INT64_MAX, &a->ra_seq,
	    &present, err, errlen) == -1)
		return -1;
	return 0;
}

static int
args_sync_state(json_t *params, struct rpc_args *a, char *err,
    size_t errlen)
{
	static const char *const allowed[] = { "target", NULL };

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    args_target(params, a, err, errlen) == -1)
		return -1;
	return 0;
}

static int
args_watch(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "since", NULL };
	int	present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    proto_param_uint(params, "since", 1, 0, INT64_MAX, &a->ra_since,
	    &present, err, errlen) == -1)
		return -1;
	return 0;
}


/*
 * A live test's outcome.  Everything is stored and shown to others
 * (check), so each member is held to a small, plain shape: the reason is
 * printable ASCII that cannot forge a line or carry much.
 */
static int
args_test_result(json_t *params, struct rpc_args *a, char *err,
    size_t errlen)
{
	static const char *const allowed[] = { "tenant", "integration",
	    "result", "status", "reason", "version", NULL };
	json_t		*v;
	size_t		 i, len;
	int		 present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    args_tenant(params, "tenant", 1, &a->ra_tenant, err,
	    errlen) == -1 ||
	    proto_param_string(params, "integration", 1, &a->ra_integration,
	    err, errlen) == -1 ||
	    proto_param_string(params, "result", 1, &a->ra_result, err,
	    errlen) == -1 ||
	    proto_param_string(params, "reason", 1, &a->ra_reason, err,
	    errlen) == -1 ||
	    proto_param_uint(params, "version", 1, 1, INT64_MAX,
	    &a->ra_version, &present, err, errlen) == -1)
		return -1;
	len = strlen(a->ra_integration);
	if (len == 0 || len > PROTO_FIELD_MAX) {
		snprintf(err, errlen, "param 'integration' must be an "
		    "integration id (1 to %d bytes)", PROTO_FIELD_MAX);
		return -1;
	}
	if (strcmp(a->ra_result, "pass") != 0 &&
	    strcmp(a->ra_result, "fail") != 0) {
		snprintf(err, errlen, "param 'result' must be \"pass\" or "
		    "\"fail\"");
		return -1;
	}
	len = strlen(a->ra_reason);
	if (len > RPC_REASON_MAX) {
		snprintf(err, errlen, "param 'reason' must be at most %d "
		    "bytes", RPC_REASON_MAX);
		return -1;
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)a->ra_reason[i] < 0x20 ||
		    (unsigned char)a->ra_reason[i] > 0x7e) {
			snprintf(err, errlen, "param 'reason' must be "
			    "printable ASCII");
			return -1;
		}
	/* null: the request got no HTTP answer at all. */
	if ((v = json_object_get(params, "status")) == NULL) {
		snprintf(err, errlen, "missing param 'status'");
		return -1;
	}
	if (!json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 100 ||
		    json_integer_value(v) > 599) {
			snprintf(err, errlen, "param 'status' must be an HTTP "
			    "status (100 to 599) or null");
			return -1;
		}
		a->ra_status = (int)json_integer_value(v);
		a->ra_has_status = 1;
	}
	return 0;
}
