/*
 * The commands scripts use around a tenant's whole config: import from an
 * .env file or a JSON object, export for a pipe or a file, and run a
 * command with the fields in its environment.  Values only ever travel
 * through files, pipes and the environment, never argv.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "wfvault.h"

#define JSON_OUT_FLAGS	(JSON_INDENT(2) | JSON_SORT_KEYS)
#define JSON_VALUE_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS)
/* The status of run when CMD cannot be executed, as in sh(1). */
#define RUN_EXIT_NOEXEC	127

/*
 * The tenant's current fields: *fields is a new reference (an empty
 * object when missing_ok and the tenant does not exist).
 */
static int
script_fields_get(struct cli_args *args, const char *tenant, int missing_ok,
    json_t **fields, struct cli_error *err)
{
	json_t	*result, *f;

	*fields = NULL;
	if (conn_call_once(args, "get", json_pack("{s:s}", "tenant", tenant), 0,
	    &result, err) == -1) {
		if (missing_ok && err->ce_status == CLI_EXIT_NOT_FOUND) {
			err->ce_status = CLI_EXIT_OK;
			err->ce_msg[0] = '\0';
			if ((*fields = json_object()) == NULL)
				return cli_fail(err, CLI_EXIT_ERROR,
				    "out of memory");
			return 0;
		}
		return -1;
	}
	if (!json_is_object(f = json_object_get(result, "fields"))) {
		json_decref(result);
		return cli_fail(err, CLI_EXIT_ERROR,
		    "wfvaultd's reply to get has no fields");
	}
	*fields = json_incref(f);
	json_decref(result);
	return 0;
}

/* A JSON object of fields; the parser's text may quote a secret. */
static int
json_fields_parse(const char *buf, size_t len, json_t **out,
    struct cli_error *err)
{
	json_error_t	 jerr;
	json_t		*obj, *value;
	const char	*key;
	char		 msg[256];

	*out = NULL;
	if ((obj = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL)
		return cli_fail(err, CLI_EXIT_USAGE, "the input is not a valid "
		    "JSON object (line %d, column %d); nothing stored",
		    jerr.line, jerr.column);
	if (json_object_size(obj) == 0) {
		json_decref(obj);
		return cli_fail(err, CLI_EXIT_USAGE, "the JSON object has no "
		    "fields; nothing stored");
	}
	json_object_foreach(obj, key, value) {
		if (proto_field_valid(key, msg, sizeof(msg)) == -1) {
			json_decref(obj);
			return cli_fail(err, CLI_EXIT_USAGE, "%s; nothing "
			    "stored", msg);
		}
	}
	*out = obj;
	return 0;
}

/* Appends key to the array of what kind of change it is. */
static int
diff_add(json_t *diff, const char *kind, const char *key,
    struct cli_error *err)
{
	if (json_array_append_new(json_object_get(diff, kind),
	    json_string(key)) == -1)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	return 0;
}

/*
 * What importing fields onto cur would do, by name only: a new object of
 * four sorted arrays, add, change, remove and unchanged.
 */
static json_t *
diff_make(json_t *cur, json_t *fields, int replace, struct cli_error *err)
{
	json_t		*diff, *v, *old;
	const char	*key, *kind;

	if ((diff = json_pack("{s:[],s:[],s:[],s:[]}", "add", "change",
	    "remove", "unchanged")) == NULL) {
		cli_fail(err, CLI_EXIT_ERROR, "out of memory");
		return NULL;
	}
	json_object_foreach(fields, key, v) {
		old = json_object_get(cur, key);
		if (json_is_null(v))
			kind = old != NULL ? "remove" : NULL;
		else if (old == NULL)
			kind = "add";
		else
			kind = json_equal(old, v) ? "unchanged" : "change";
		if (kind != NULL && diff_add(diff, kind, key, err) == -1)
			goto fail;
	}
	json_object_foreach(cur, key, v) {
		if (replace && json_object_get(fields, key) == NULL &&
		    diff_add(diff, "remove", key, err) == -1)
			goto fail;
	}
	return diff;
fail:
	json_decref(diff);
	return NULL;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The names of obj's members, sorted: a new array of borrowed strings
 * (live as long as obj), or NULL when out of memory.
 */
static const char **
names_sorted(json_t *obj)
{
	const char	**names, *key;
	json_t		 *v;
	size_t		  n = 0;

	if ((names = calloc(json_object_size(obj) + 1, sizeof(*names))) ==
	    NULL)
		return NULL;
	json_object_foreach(obj, key, v)
		names[n++] = key;
	qsort(names, n, sizeof(*names), name_cmp);
	return names;
}

static int
diff_print(json_t *diff, struct cli_error *err)
{
	static const char	*kinds[] = { "add", "change", "remove" };
	json_t			*names, *name;
	size_t			 k, i, total = 0;

	for (k = 0; k < 3; k++) {
		names = json_object_get(diff, kinds[k]);
		json_array_foreach(names, i, name) {
			if (out_printf(err, "%-6s  %s\n", kinds[k],
			    json_string_value(name)) == -1)
				return -1;
			total++;
		}
	}
	if (total == 0)
		return out_puts("nothing would change\n", err);
	return 0;
}

/* Sorts each array of diff in place, so the output is stable. */
static void
diff_sort(json_t *diff)
{
	static const char	*kinds[] = { "add", "change", "remove",
				    "unchanged" };
	json_t			*arr, *copy;
	const char		**v;
	size_t			 k, i, n;

	for (k = 0; k < 4; k++) {
		arr = json_object_get(diff, kinds[k]);
		n = json_array_size(arr);
		if (n < 2 || (v = calloc(n, sizeof(*v))) == NULL)
			continue;
		if ((copy = json_copy(arr)) == NULL) {
			free(v);
			continue;
		}
		for (i = 0; i < n; i++)
			v[i] = json_string_value(json_array_get(copy, i));
		qsort(v, n, sizeof(*v), name_cmp);
		json_array_clear(arr);
		for (i = 0; i < n; i++)
			json_array_append_new(arr, json_string(v[i]));
		free(v);
		json_decref(copy);
	}
}

int
cmd_import(struct cli_args *args, struct cli_error *err)
{
	const char	*tenant = args->ca_operands[0], *path = NULL, *p;
	struct value	 in = VALUE_INIT;
	json_t		*fields = NULL, *params = NULL, *result = NULL;
	json_t		*cur = NULL, *diff = NULL;
	int		 rv = -1;

	if (args->ca_noperands == 2 && strcmp(args->ca_operands[1], "-") != 0)
		path = args->ca_operands[1];
	if (cli_tenant_check(tenant, err) == -1)
		return -1;
	if (path != NULL) {
		if (value_read_file(&in, path, CLI_JSON_MAX, err) == -1)
			goto out;
	} else if (value_read_stdin(&in, CLI_JSON_MAX, err) == -1)
		goto out;

	for (p = in.v_buf; p < in.v_buf + in.v_len && isspace((unsigned char)
	    *p); p++)
		;
	if (p < in.v_buf + in.v_len && *p == '{') {
		if (json_fields_parse(in.v_buf, in.v_len, &fields, err) == -1)
			goto out;
	} else if (env_parse(in.v_buf, in.v_len, &fields, err) == -1)
		goto out;
	value_free(&in);

	if (args->ca_dry_run) {
		if (script_fields_get(args, tenant, 1, &cur, err) == -1)
			goto out;
		if ((diff = diff_make(cur, fields, args->ca_replace, err)) ==
		    NULL)
			goto out;
		diff_sort(diff);
		if (args->ca_json)
			rv = out_json(diff, JSON_OUT_FLAGS, err);
		else
			rv = diff_print(diff, err);
		goto out;
	}

	if ((params = json_pack("{s:s,s:O}", "tenant", tenant, "fields",
	    fields)) == NULL) {
		cli_fail(err, CLI_EXIT_ERROR, "out of memory");
		goto out;
	}
	if (((args->ca_given & CLI_OPT_CAS) && json_object_set_new(params,
	    "cas", json_integer(args->ca_cas)) == -1) ||
	    (args->ca_replace && json_object_set_new(params, "replace",
	    json_true()) == -1)) {
		cli_fail(err, CLI_EXIT_ERROR, "out of memory");
		goto out;
	}
	rv = conn_call_once(args, "put", params, 0, &result, err);
	params = NULL;
	if (rv == -1)
		goto out;
	if (args->ca_json)
		rv = out_json(result, JSON_OUT_FLAGS, err);
	else
		rv = out_printf(err, "%s: %zu field%s imported, version "
		    "%lld\n", tenant, json_object_size(fields),
		    json_object_size(fields) == 1 ? "" : "s",
		    (long long)json_integer_value(json_object_get(result,
		    "version")));
out:
	value_free(&in);
	json_decref(diff);
	json_decref(cur);
	json_decref(params);
	json_decref(result);
	json_decref(fields);
	return rv;
}

/*
 * One value as a double-quoted string that sh(1) and import read back as
 * the same bytes: \ " $ ` escaped, newlines kept as they are (both accept
 * them inside double quotes).
 */
static int
export_quoted(const char *s, size_t len, struct cli_error *err)
{
	size_t	i, start = 0;

	if (out_write("\"", 1, err) == -1)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] != '\\' && s[i] != '"' && s[i] != '$' && s[i] != '`')
			continue;
		if (out_write(s + start, i - start, err) == -1 ||
		    out_write("\\", 1, err) == -1)
			return -1;
		start = i;
	}
	if (out_write(s + start, len - start, err) == -1)
		return -1;
	return out_write("\"\n", 2, err);
}

static int
export_env(json_t *fields, struct cli_error *err)
{
	const char	**names;
	json_t		 *v;
	char		 *text, upper[PROTO_FIELD_MAX + 1];
	size_t		  i, k;
	int		  rv = -1, r;

	if ((names = names_sorted(fields)) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	for (i = 0; names[i] != NULL; i++) {
		for (k = 0; names[i][k] != '\0' && k < PROTO_FIELD_MAX; k++)
			upper[k] = toupper((unsigned char)names[i][k]);
		upper[k] = '\0';
		if (out_printf(err, "%s=", upper) == -1)
			goto out;
		v = json_object_get(fields, names[i]);
		if (json_is_string(v)) {
			if (export_quoted(json_string_value(v),
			    json_string_length(v), err) == -1)
				goto out;
			continue;
		}
		/* Not a string: its JSON text, which import reads as one. */
		if ((text = json_dumps(v, JSON_VALUE_FLAGS)) == NULL) {
			cli_fail(err, CLI_EXIT_ERROR, "out of memory");
			goto out;
		}
		r = export_quoted(text, strlen(text), err);
		explicit_bzero(text, strlen(text));
		free(text);
		if (r == -1)
			goto out;
	}
	rv = 0;
out:
	free(names);
	return rv;
}

int
cmd_export(struct cli_args *args, struct cli_error *err)
{
	const char	*tenant = args->ca_operands[0];
	json_t		*fields = NULL;
	int		 rv;

	if (cli_tenant_check(tenant, err) == -1)
		return -1;
	/* Before connecting: a terminal keeps what it shows. */
	if (isatty(STDOUT_FILENO) && !args->ca_force)
		return cli_fail(err, CLI_EXIT_USAGE, "export prints secrets: "
		    "refusing to write them to a terminal; redirect or pipe "
		    "the output, or add --force");
	if (script_fields_get(args, tenant, 0, &fields, err) == -1)
		return -1;
	if (args->ca_format != NULL && strcmp(args->ca_format, "json") == 0)
		rv = out_json(fields, JSON_OUT_FLAGS, err);
	else
		rv = export_env(fields, err);
	json_decref(fields);
	return rv;
}

/*
 * Keeps only the fields --only names (comma-separated); a name that is
 * not a field is an error, so a typo does not run CMD without it.
 */
static int
run_only(json_t *fields, const char *only, struct cli_error *err)
{
	json_t		*keep, *v;
	const char	*p, *comma;
	char		 name[PROTO_FIELD_MAX + 1], msg[256];
	size_t		 n;
	int		 rv = -1;

	if ((keep = json_object()) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	for (p = only;; p = comma + 1) {
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n == 0 || n > PROTO_FIELD_MAX) {
			cli_fail(err, CLI_EXIT_USAGE, "--only needs field "
			    "names separated by commas");
			goto out;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		if (proto_field_valid(name, msg, sizeof(msg)) == -1) {
			cli_fail(err, CLI_EXIT_USAGE, "--only: invalid field "
			    "name");
			goto out;
		}
		if ((v = json_object_get(fields, name)) == NULL) {
			cli_fail(err, CLI_EXIT_NOT_FOUND, "--only: the tenant "
			    "has no field %s", name);
			goto out;
		}
		if (json_object_set(keep, name, v) == -1) {
			cli_fail(err, CLI_EXIT_ERROR, "out of memory");
			goto out;
		}
		if (comma == NULL)
			break;
	}
	if (json_object_clear(fields) == -1 ||
	    json_object_update(fields, keep) == -1) {
		cli_fail(err, CLI_EXIT_ERROR, "out of memory");
		goto out;
	}
	rv = 0;
out:
	json_decref(keep);
	return rv;
}

/* Puts every field in our environment as NAME=value, for execvp. */
static int
run_setenv(json_t *fields, struct cli_error *err)
{
	const char	*key;
	json_t		*v;
	char		 upper[PROTO_FIELD_MAX + 1], *text;
	size_t		 k;
	int		 r;

	json_object_foreach(fields, key, v) {
		for (k = 0; key[k] != '\0' && k < PROTO_FIELD_MAX; k++)
			upper[k] = toupper((unsigned char)key[k]);
		upper[k] = '\0';
		if (json_is_string(v)) {
			/* A NUL inside would cut the value short: refuse. */
			if (strlen(json_string_value(v)) !=
			    json_string_length(v))
				return cli_fail(err, CLI_EXIT_ERROR, "field "
				    "%s holds a NUL byte and cannot be passed "
				    "in the environment", key);
			r = setenv(upper, json_string_value(v), 1);
		} else {
			if ((text = json_dumps(v, JSON_VALUE_FLAGS)) == NULL)
				return cli_fail(err, CLI_EXIT_ERROR,
				    "out of memory");
			r = setenv(upper, text, 1);
			explicit_bzero(text, strlen(text));
			free(text);
		}
		if (r == -1)
			return cli_fail(err, CLI_EXIT_ERROR, "cannot set %s in "
			    "the environment: %s", upper, strerror(errno));
	}
	return 0;
}

int
cmd_run(struct cli_args *args, struct cli_error *err)
{
	const char	*tenant = args->ca_operands[0];
	json_t		*fields = NULL;
	int		 saved_errno;

	if (args->ca_nexec == 0)
		return cli_fail(err, CLI_EXIT_USAGE, "usage: wfvault run "
		    "TENANT [--only F1,F2] -- CMD [ARGS...]");
	if (cli_tenant_check(tenant, err) == -1)
		return -1;
	if (script_fields_get(args, tenant, 0, &fields, err) == -1)
		return -1;
	if ((args->ca_only != NULL && run_only(fields, args->ca_only,
	    err) == -1) || run_setenv(fields, err) == -1) {
		json_decref(fields);
		return -1;
	}
	/* Our allocator wipes what jansson frees: only environ keeps them. */
	json_decref(fields);
	out_wipe();
	/* wfvault ignores SIGPIPE; CMD should get the default back. */
	(void)signal(SIGPIPE, SIG_DFL);
	execvp(args->ca_exec[0], args->ca_exec);
	saved_errno = errno;
	(void)signal(SIGPIPE, SIG_IGN);
	return cli_fail(err, RUN_EXIT_NOEXEC, "cannot run %s: %s",
	    args->ca_exec[0], strerror(saved_errno));
}
