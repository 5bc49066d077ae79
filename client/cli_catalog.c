/*
 * wfvault integrations: the daemon's integration catalog, as a table for
 * people or, with --json, as the method's result.
 */
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "wfvault.h"

#define CATALOG_JSON_FLAGS	(JSON_INDENT(2) | JSON_SORT_KEYS)

int
cli_id_echoable(const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		    s[i] == '-'))
			return 0;
	return i > 0 && i <= 24;
}

/* A string member of obj, or "?" when the daemon sent something else. */
static const char *
catalog_str(json_t *obj, const char *key)
{
	const char	*s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : "?";
}

/* "name (secret), name": what a tenant using it must hold. */
static int
catalog_print_fields(json_t *fields, struct cli_error *err)
{
	json_t	*f;
	size_t	 i;

	json_array_foreach(fields, i, f) {
		if (out_printf(err, "%s%s%s", i > 0 ? ", " : "",
		    catalog_str(f, "name"),
		    json_is_true(json_object_get(f, "secret")) ?
		    " (secret)" : "") == -1)
			return -1;
	}
	return out_write("\n", 1, err);
}

static int
catalog_print(json_t *list, struct cli_error *err)
{
	json_t	*it;
	size_t	 i, wid = 2, wkind = 4, wtitle = 5, n;

	json_array_foreach(list, i, it) {
		if ((n = strlen(catalog_str(it, "id"))) > wid)
			wid = n;
		if ((n = strlen(catalog_str(it, "kind"))) > wkind)
			wkind = n;
		if ((n = strlen(catalog_str(it, "title"))) > wtitle)
			wtitle = n;
	}
	if (out_printf(err, "%-*s  %-*s  %-*s  FIELDS\n", (int)wid, "ID",
	    (int)wkind, "KIND", (int)wtitle, "TITLE") == -1)
		return -1;
	json_array_foreach(list, i, it) {
		if (out_printf(err, "%-*s  %-*s  %-*s  ", (int)wid,
		    catalog_str(it, "id"), (int)wkind, catalog_str(it, "kind"),
		    (int)wtitle, catalog_str(it, "title")) == -1 ||
		    catalog_print_fields(json_object_get(it, "fields"),
		    err) == -1)
			return -1;
	}
	return 0;
}

int
cmd_integrations(struct cli_args *args, struct cli_error *err)
{
	json_t	*result, *list;
	int	 rv;

	if (conn_call_once(args, "integrations", json_object(), 0, &result,
	    err) == -1)
		return -1;
	if (args->ca_json)
		rv = out_json(result, CATALOG_JSON_FLAGS, err);
	else if (!json_is_array(list = json_object_get(result,
	    "integrations")))
		rv = cli_fail(err, CLI_EXIT_ERROR, "wfvaultd's reply to "
		    "integrations has no list");
	else
		rv = catalog_print(list, err);
	json_decref(result);
	return rv;
}
