/*
 * wfvault history and rollback: a tenant's kept versions (who, when,
 * which field names changed; never values) and making an older one
 * current again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "wfvault.h"

#define JSON_OUT_FLAGS	(JSON_INDENT(2) | JSON_SORT_KEYS)

/* Prints " +a +b" for the names of list with mark before each. */
static int
hist_print_names(json_t *list, const char *mark, struct cli_error *err)
{
	json_t	*name;
	size_t	 i;

	json_array_foreach(list, i, name) {
		if (!json_is_string(name))
			continue;
		if (out_printf(err, " %s%s", mark, json_string_value(name)) ==
		    -1)
			return -1;
	}
	return 0;
}

/*
 * One line: version, time, uid and what changed.  A version whose
 * predecessor is not kept any more has no diff: its field names are
 * shown as they are.
 */
static int
hist_print_one(json_t *item, struct cli_error *err)
{
	json_t		*v, *at, *uid, *of;
	char		 who[32];
	size_t		 before;

	v = json_object_get(item, "version");
	at = json_object_get(item, "at");
	uid = json_object_get(item, "uid");
	of = json_object_get(item, "rollback_of");
	if (!json_is_integer(v))
		return cli_fail(err, CLI_EXIT_ERROR,
		    "wfvaultd's reply to history is malformed");
	if (json_is_integer(uid))
		snprintf(who, sizeof(who), "%lld",
		    (long long)json_integer_value(uid));
	else
		snprintf(who, sizeof(who), "-");
	if (out_printf(err, "%-8lld %-20s  %-6s ",
	    (long long)json_integer_value(v),
	    json_is_string(at) ? json_string_value(at) : "-", who) == -1)
		return -1;
	if (json_object_get(item, "added") != NULL) {
		before = json_array_size(json_object_get(item, "added")) +
		    json_array_size(json_object_get(item, "changed")) +
		    json_array_size(json_object_get(item, "removed"));
		if (hist_print_names(json_object_get(item, "added"), "+",
		    err) == -1 ||
		    hist_print_names(json_object_get(item, "changed"), "~",
		    err) == -1 ||
		    hist_print_names(json_object_get(item, "removed"), "-",
		    err) == -1)
			return -1;
		if (before == 0 && out_puts(" (no field changed)", err) == -1)
			return -1;
	} else if (out_puts(" fields:", err) == -1 ||
	    hist_print_names(json_object_get(item, "fields"), "", err) == -1)
		return -1;
	if (json_is_integer(of) && out_printf(err, " (rollback of %lld)",
	    (long long)json_integer_value(of)) == -1)
		return -1;
	return out_write("\n", 1, err);
}

int
cmd_history(struct cli_args *args, struct cli_error *err)
{
	const char	*tenant = args->ca_operands[0];
	json_t		*result = NULL, *list, *item;
	size_t		 i;
	int		 rv = -1;

	if (cli_tenant_check(tenant, err) == -1)
		return -1;
	if (conn_call_once(args, "history", json_pack("{s:s}", "tenant",
	    tenant), 0, &result, err) == -1)
		return -1;
	if (args->ca_json) {
		rv = out_json(result, JSON_OUT_FLAGS, err);
		goto out;
	}
	if (!json_is_array(list = json_object_get(result, "versions"))) {
		cli_fail(err, CLI_EXIT_ERROR,
		    "wfvaultd's reply to history has no versions");
		goto out;
	}
	if (out_printf(err, "%-8s %-20s  %-6s  CHANGES\n", "VERSION", "TIME",
	    "UID") == -1)
		goto out;
	json_array_foreach(list, i, item)
		if (hist_print_one(item, err) == -1)
			goto out;
	rv = 0;
out:
	json_decref(result);
	return rv;
}

/* VERSION: a decimal number from 1 to INT64_MAX. */
static int
hist_version_parse(const char *s, uint64_t *out, struct cli_error *err)
{
	unsigned long long	 n;
	char			*end;

	if (s[0] < '0' || s[0] > '9')
		goto bad;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || n == 0 || n > INT64_MAX)
		goto bad;
	*out = n;
	return 0;
bad:
	return cli_fail(err, CLI_EXIT_USAGE, "VERSION must be a version "
	    "number (1 or more; wfvault history lists them)");
}

int
cmd_rollback(struct cli_args *args, struct cli_error *err)
{
	const char	*tenant = args->ca_operands[0];
	json_t		*params, *result = NULL, *v;
	uint64_t	 version = 0;
	int		 rv = -1;

	if (cli_tenant_check(tenant, err) == -1 ||
	    hist_version_parse(args->ca_operands[1], &version, err) == -1)
		return -1;
	params = json_pack("{s:s,s:I}", "tenant", tenant, "version",
	    (json_int_t)version);
	if (params != NULL && (args->ca_given & CLI_OPT_CAS) &&
	    json_object_set_new(params, "cas",
	    json_integer((json_int_t)args->ca_cas)) == -1) {
		json_decref(params);
		params = NULL;
	}
	if (conn_call_once(args, "rollback", params, 0, &result, err) == -1)
		return -1;
	if (args->ca_json)
		rv = out_json(result, JSON_OUT_FLAGS, err);
	else if (!json_is_integer(v = json_object_get(result, "version")))
		cli_fail(err, CLI_EXIT_ERROR,
		    "wfvaultd's reply to rollback is malformed");
	else
		rv = out_printf(err, "%s: version %lld (rollback of %llu)\n",
		    tenant, (long long)json_integer_value(v),
		    (unsigned long long)version);
	json_decref(result);
	return rv;
}
