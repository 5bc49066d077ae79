/*
 * wfvault check: whether tenants are ready, per integration what is
 * missing (and where to get it), malformed (and the format) or failing
 * its live test, and whether the sync agents pushed the last change.
 * wfvaultd works it out (check); values never reach this program.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "wfvault.h"

#define CHECK_LIST_PAGE		1000
#define CHECK_JSON_FLAGS	(JSON_INDENT(2) | JSON_SORT_KEYS)

/* An operand with * ? or [ is an fnmatch pattern over the tenant ids. */
static int
check_is_pattern(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/*
 * Appends to ids (an array of strings) every tenant the caller may list,
 * page by page over c.
 */
static int
check_list_all(struct proto_client *c, json_t *ids, struct cli_error *err)
{
	json_t	*params, *result = NULL, *tenants, *entry, *cursor = NULL;
	size_t	 i;
	int	 rv = -1;

	for (;;) {
		params = json_pack("{s:i}", "limit", CHECK_LIST_PAGE);
		if (params != NULL && cursor != NULL &&
		    json_object_set(params, "cursor", cursor) == -1) {
			json_decref(params);
			params = NULL;
		}
		if (params == NULL) {
			cli_fail(err, CLI_EXIT_ERROR, "out of memory");
			goto out;
		}
		json_decref(result);
		result = NULL;
		if (conn_call(c, "list", params, &result, err) == -1)
			goto out;
		if (!json_is_array(tenants = json_object_get(result,
		    "tenants"))) {
			cli_fail(err, CLI_EXIT_ERROR, "wfvaultd's reply to "
			    "list has no tenants");
			goto out;
		}
		json_array_foreach(tenants, i, entry) {
			if (!json_is_string(json_object_get(entry, "tenant")) ||
			    json_array_append(ids, json_object_get(entry,
			    "tenant")) == -1) {
				cli_fail(err, CLI_EXIT_ERROR, "wfvaultd's reply "
				    "to list is malformed");
				goto out;
			}
		}
		cursor = json_object_get(result, "cursor");
		if (!json_is_string(cursor))
			break;
	}
	rv = 0;
out:
	json_decref(result);
	return rv;
}

/* Adds id to want (an array) unless seen (an object of ids) has it. */
static int
check_want(json_t *want, json_t *seen, const char *id, struct cli_error *err)
{
	if (json_object_get(seen, id) != NULL)
		return 0;
	if (json_object_set_new(seen, id, json_true()) == -1 ||
	    json_array_append_new(want, json_string(id)) == -1)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	return 0;
}

/*
 * The tenants to check, in the order asked: every listed one without
 * operands; else each exact id as given, and the listed ids each pattern
 * matches (a pattern matching none is not found).
 */
static int
check_targets(struct cli_args *args, struct proto_client *c, json_t *want,
    struct cli_error *err)
{
	json_t		*listed = NULL, *seen, *v;
	const char	*op;
	char		 msg[512];
	size_t		 j;
	int		 i, any, rv = -1;

	if ((seen = json_object()) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	for (i = 0; i < args->ca_noperands; i++) {
		op = args->ca_operands[i];
		if (!check_is_pattern(op) &&
		    proto_tenant_valid(op, msg, sizeof(msg)) == -1) {
			cli_fail(err, CLI_EXIT_USAGE, "invalid tenant id or "
			    "pattern (a tenant id is 1-128 bytes of A-Z a-z "
			    "0-9 . _ -, not starting with . or -)");
			goto out;
		}
	}
	for (i = 0; i < args->ca_noperands || (i == 0 &&
	    args->ca_noperands == 0); i++) {
		op = args->ca_noperands > 0 ? args->ca_operands[i] : "*";
		if (!check_is_pattern(op)) {
			if (check_want(want, seen, op, err) == -1)
				goto out;
			continue;
		}
		if (listed == NULL && ((listed = json_array()) == NULL ||
		    check_list_all(c, listed, err) == -1)) {
			if (listed == NULL)
				cli_fail(err, CLI_EXIT_ERROR, "out of memory");
			goto out;
		}
		any = 0;
		json_array_foreach(listed, j, v) {
			if (fnmatch(op, json_string_value(v), 0) != 0)
				continue;
			any = 1;
			if (check_want(want, seen, json_string_value(v),
			    err) == -1)
				goto out;
		}
		/* Without operands, no tenant at all is nothing to check. */
		if (!any && args->ca_noperands > 0) {
			cli_fail(err, CLI_EXIT_NOT_FOUND, "no tenant you may "
			    "list matches pattern %d ('wfvault list' shows "
			    "them)", i + 1);
			goto out;
		}
	}
	rv = 0;
out:
	json_decref(listed);
	json_decref(seen);
	return rv;
}

/* "pass (200 OK) at TIME [stale: tested version N]" and so on. */
static int
check_print_test(json_t *lt, struct cli_error *err)
{
	const char	*result, *reason, *at;
	json_t		*status;

	if (!json_is_object(lt))
		return out_puts("    last live test: none recorded\n", err);
	result = json_string_value(json_object_get(lt, "result"));
	reason = json_string_value(json_object_get(lt, "reason"));
	at = json_string_value(json_object_get(lt, "at"));
	status = json_object_get(lt, "status");
	if (out_printf(err, "    last live test: %s", result != NULL &&
	    strcmp(result, "pass") == 0 ? "pass" : "FAIL") == -1)
		return -1;
	if (reason != NULL && reason[0] != '\0') {
		if (out_printf(err, " (%s)", reason) == -1)
			return -1;
	} else if (json_is_integer(status) && out_printf(err, " (%lld)",
	    (long long)json_integer_value(status)) == -1)
		return -1;
	if (out_printf(err, " at %s", at != NULL ? at : "?") == -1)
		return -1;
	if (json_is_true(json_object_get(lt, "stale")) &&
	    out_printf(err, " [stale: tested version %lld]", (long long)
	    json_integer_value(json_object_get(lt, "version"))) == -1)
		return -1;
	return out_puts("\n", err);
}

static int
check_print_integration(json_t *it, struct cli_error *err)
{
	const char	*title, *state;
	json_t		*m, *step;
	size_t		 i, j;

	title = json_string_value(json_object_get(it, "title"));
	state = json_string_value(json_object_get(it, "state"));
	if (out_printf(err, "  %s%s%s%s: %s\n",
	    json_string_value(json_object_get(it, "id")),
	    title != NULL ? " (" : "", title != NULL ? title : "",
	    title != NULL ? ")" : "", state != NULL ? state : "?") == -1)
		return -1;
	if (state != NULL && strcmp(state, "unknown") == 0 &&
	    out_puts("    not in the catalog: ask the administrator, or "
	    "change the tenant's integrations\n", err) == -1)
		return -1;
	json_array_foreach(json_object_get(it, "missing"), i, m) {
		if (out_printf(err, "    missing %s (%s); where to get it:\n",
		    json_string_value(json_object_get(m, "name")),
		    json_string_value(json_object_get(m, "label"))) == -1)
			return -1;
		json_array_foreach(json_object_get(m, "where"), j, step)
			if (out_printf(err, "      %zu. %s\n", j + 1,
			    json_string_value(step)) == -1)
				return -1;
	}
	json_array_foreach(json_object_get(it, "malformed"), i, m)
		if (out_printf(err, "    malformed %s: does not match %s\n",
		    json_string_value(json_object_get(m, "name")),
		    json_string_value(json_object_get(m, "format"))) == -1)
			return -1;
	if (state != NULL && strcmp(state, "unknown") == 0)
		return 0;
	return check_print_test(json_object_get(it, "last_test"), err);
}

static int
check_print(json_t *r, struct cli_error *err)
{
	json_t		*list, *it, *pushed;
	size_t		 i;

	list = json_object_get(r, "integrations");
	if (out_printf(err, "%s: %s (version %lld%s)\n",
	    json_string_value(json_object_get(r, "tenant")),
	    json_is_true(json_object_get(r, "ready")) ? "ready" : "NOT READY",
	    (long long)json_integer_value(json_object_get(r, "version")),
	    json_array_size(list) == 0 ? ", uses no integration" : "") == -1)
		return -1;
	json_array_foreach(list, i, it)
		if (check_print_integration(it, err) == -1)
			return -1;
	json_array_foreach(json_object_get(r, "sync"), i, it) {
		pushed = json_object_get(it, "pushed");
		if (out_printf(err, "  sync %s: %s (acked seq %lld)\n",
		    json_string_value(json_object_get(it, "target")),
		    json_is_true(pushed) ? "pushed" : json_is_false(pushed) ?
		    "NOT pushed yet" : "unknown (its last change left the feed before this "
		    "target had it)",
		    (long long)json_integer_value(json_object_get(it,
		    "acked_seq"))) == -1)
			return -1;
	}
	return 0;
}

int
cmd_check(struct cli_args *args, struct cli_error *err)
{
	struct proto_client	 c = PROTO_CLIENT_INIT;
	json_t			*want = NULL, *all = NULL, *r = NULL, *v;
	size_t			 i;
	int			 ready = 1, rv = -1;

	if ((want = json_array()) == NULL || (all = json_array()) == NULL) {
		cli_fail(err, CLI_EXIT_ERROR, "out of memory");
		goto done;
	}
	if (conn_open(args, &c, err) == -1 ||
	    check_targets(args, &c, want, err) == -1)
		goto done;
	json_array_foreach(want, i, v) {
		if (conn_call(&c, "check", json_pack("{s:O}", "tenant", v), &r,
		    err) == -1)
			goto done;
		if (!json_is_boolean(json_object_get(r, "ready")) ||
		    !json_is_array(json_object_get(r, "integrations"))) {
			cli_fail(err, CLI_EXIT_ERROR, "wfvaultd's reply to "
			    "check is malformed");
			goto done;
		}
		if (!json_is_true(json_object_get(r, "ready")))
			ready = 0;
		if (!args->ca_json && check_print(r, err) == -1)
			goto done;
		if (json_array_append_new(all, r) == -1) {
			r = NULL;
			cli_fail(err, CLI_EXIT_ERROR, "out of memory");
			goto done;
		}
		r = NULL;
	}
	proto_client_close(&c);
	if (args->ca_json) {
		if ((r = json_pack("{s:O}", "tenants", all)) == NULL) {
			cli_fail(err, CLI_EXIT_ERROR, "out of memory");
			goto done;
		}
		if (out_json(r, CHECK_JSON_FLAGS, err) == -1)
			goto done;
	}
	if (!ready) {
		(void)out_flush(err);
		/* The output says why; exit 8 says that one is not ready. */
		cli_fail(err, CLI_EXIT_NOT_READY, "%s", "");
		goto done;
	}
	rv = 0;
done:
	proto_client_close(&c);
	json_decref(r);
	json_decref(all);
	json_decref(want);
	return rv;
}
