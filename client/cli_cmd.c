/*
 * The commands of wfvault: each one checks its names locally, builds the
 * request, calls the daemon once (list pages until done) and prints the
 * result for people or, with --json, for programs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "proto.h"
#include "wfvault.h"

/* How --json output and whole configs are printed. */
#define JSON_OUT_FLAGS	(JSON_INDENT(2) | JSON_SORT_KEYS)
/* How one non-string value is printed by get TENANT FIELD. */
#define JSON_VALUE_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS)
/* Tenants asked for per list call (the protocol's maximum). */
#define LIST_PAGE	1000
/*
 * The daemon answers a backup once the copy is on disk and a master key
 * rotation once every data key is re-wrapped: both may take a while.
 */
#define BACKUP_TIMEOUT_MS	(60 * 60 * 1000)
#define ROTATE_TIMEOUT_MS	(10 * 60 * 1000)

/*
 * The validators quote the name they refuse.  A word in the wrong place
 * can be a secret (`wfvault put acme sk-...`), so the CLI repeats only the
 * reason, never the word.
 */
static int
name_fail(const char *what, const char *msg, struct cli_error *err)
{
	const char	*reason;

	if ((reason = strstr(msg, "': ")) != NULL)
		reason += 3;
	else if ((reason = strstr(msg, ": ")) != NULL)
		reason += 2;
	else
		reason = msg;
	return cli_fail(err, CLI_EXIT_USAGE, "invalid %s: %s", what, reason);
}

static int
tenant_check(const char *tenant, struct cli_error *err)
{
	char	msg[512];

	if (proto_tenant_valid(tenant, msg, sizeof(msg)) == -1)
		return name_fail("tenant id", msg, err);
	return 0;
}

int
cli_tenant_check(const char *tenant, struct cli_error *err)
{
	char	msg[512];

	if (proto_tenant_valid(tenant, msg, sizeof(msg)) == -1)
		return cli_fail(err, CLI_EXIT_USAGE, "invalid tenant id "
		    "(1-128 bytes of A-Z a-z 0-9 . _ -, not starting with . "
		    "or -)");
	return 0;
}

static int
field_check(const char *field, struct cli_error *err)
{
	char	msg[512];

	if (proto_field_valid(field, msg, sizeof(msg)) == -1)
		return name_fail("field name", msg, err);
	return 0;
}

/* json_object_set_new that reports a failed allocation. */
static int
set_new(json_t *obj, const char *key, json_t *value, struct cli_error *err)
{
	if (value == NULL || json_object_set_new(obj, key, value) == -1)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	return 0;
}

/*
 * put TENANT --json: stdin holds a JSON object of fields.  The parser's
 * own error text is not shown: it may quote the input, i.e. a secret.
 */
static int
put_json_fields(json_t **fields, struct cli_error *err)
{
	struct value	 v = VALUE_INIT;
	json_error_t	 jerr;
	json_t		*obj = NULL, *value;
	const char	*key;
	char		 msg[256];
	int		 rv = -1;

	*fields = NULL;
	if (value_read_stdin(&v, CLI_JSON_MAX, err) == -1)
		goto out;
	/* DECODE_ANY: a lone string gets "must hold an object", not a parse error. */
	if ((obj = json_loadb(v.v_buf, v.v_len,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr)) == NULL) {
		if (json_error_code(&jerr) == json_error_duplicate_key)
			cli_fail(err, CLI_EXIT_USAGE, "the JSON object on "
			    "stdin names a field twice (line %d, column %d); "
			    "nothing stored", jerr.line, jerr.column);
		else
			cli_fail(err, CLI_EXIT_USAGE, "stdin is not valid "
			    "JSON (line %d, column %d); nothing stored",
			    jerr.line, jerr.column);
		goto out;
	}
	if (!json_is_object(obj)) {
		cli_fail(err, CLI_EXIT_USAGE, "stdin must hold a JSON object "
		    "of fields, like {\"api_key\":\"...\"}; nothing stored");
		goto out;
	}
	if (json_object_size(obj) == 0) {
		cli_fail(err, CLI_EXIT_USAGE, "the JSON object on stdin has "
		    "no fields; nothing stored");
		goto out;
	}
	json_object_foreach(obj, key, value) {
		if (proto_field_valid(key, msg, sizeof(msg)) == -1) {
			cli_fail(err, CLI_EXIT_USAGE, "%s; nothing stored",
			    msg);
			goto out;
		}
	}
	*fields = obj;
	obj = NULL;
	rv = 0;
out:
	json_decref(obj);
	value_free(&v);
	return rv;
}

/* put TENANT FIELD: one string value from a file, stdin or the terminal. */
static int
put_one_field(struct cli_args *args, const char *tenant, const char *field,
    json_t **fields, struct cli_error *err)
{
	struct value	 v = VALUE_INIT;
	json_t		*obj = NULL;
	int		 rv = -1;

	*fields = NULL;
	/* "--file -" is stdin, as most tools read it. */
	if (value_read(&v, args->ca_file != NULL &&
	    strcmp(args->ca_file, "-") == 0 ? NULL : args->ca_file, tenant,
	    field, err) == -1)
		goto out;
	if ((obj = json_object()) == NULL) {
		cli_fail(err, CLI_EXIT_ERROR, "out of memory");
		goto out;
	}
	if (set_new(obj, field, json_stringn(v.v_buf, v.v_len), err) == -1)
		goto out;
	*fields = obj;
	obj = NULL;
	rv = 0;
out:
	json_decref(obj);
	value_free(&v);
	return rv;
}

/*
 * --integrations ID,ID as a new JSON array (*out); the daemon checks the
 * ids against its catalog.
 */
static int
put_integrations(const char *list, json_t **out, struct cli_error *err)
{
	const char	*p = list, *comma;
	size_t		 n;

	if ((*out = json_array()) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	for (;;) {
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n == 0 || n > PROTO_FIELD_MAX) {
			json_decref(*out);
			*out = NULL;
			return cli_fail(err, CLI_EXIT_USAGE, "--integrations "
			    "takes integration ids separated by commas, like "
			    "openai,stripe (wfvault integrations lists them)");
		}
		if (json_array_append_new(*out, json_stringn(p, n)) == -1) {
			json_decref(*out);
			*out = NULL;
			return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
		}
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

int
cmd_put(struct cli_args *args, struct cli_error *err)
{
	const char	*tenant = args->ca_operands[0], *field = NULL;
	json_t		*params = NULL, *fields = NULL, *result = NULL;
	json_t		*ints = NULL;
	int		 rv = -1;

	if (args->ca_noperands == 2)
		field = args->ca_operands[1];
	if (field == NULL && !args->ca_json && args->ca_integrations == NULL)
		return cli_fail(err, CLI_EXIT_USAGE, "put needs TENANT FIELD, "
		    "or TENANT --json to read a JSON object of fields from "
		    "stdin, or TENANT --integrations ID,ID");
	if (field == NULL && args->ca_file != NULL)
		return cli_fail(err, CLI_EXIT_USAGE, "--file needs "
		    "put TENANT FIELD --file PATH");
	if ((field != NULL || !args->ca_json) && args->ca_replace)
		return cli_fail(err, CLI_EXIT_USAGE, "--replace needs "
		    "put TENANT --json (a whole config on stdin)");
	if (tenant_check(tenant, err) == -1)
		return -1;
	if (field != NULL && field_check(field, err) == -1)
		return -1;

	if (args->ca_integrations != NULL &&
	    put_integrations(args->ca_integrations, &ints, err) == -1)
		return -1;

	/* Read the value before connecting: a prompt may take a while. */
	if (field == NULL && !args->ca_json) {
		/* Only the integrations: no field changes. */
		if ((fields = json_object()) == NULL) {
			json_decref(ints);
			return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
		}
	} else if (field == NULL) {
		if (put_json_fields(&fields, err) == -1) {
			json_decref(ints);
			return -1;
		}
	} else if (put_one_field(args, tenant, field, &fields, err) == -1) {
		json_decref(ints);
		return -1;
	}

	if ((params = json_object()) == NULL) {
		json_decref(fields);
		json_decref(ints);
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	}
	/* fields first: set_new always takes it, even when it fails. */
	if (set_new(params, "fields", fields, err) == -1 ||
	    set_new(params, "tenant", json_string(tenant), err) == -1)
		goto out;
	if (ints != NULL) {
		rv = set_new(params, "integrations", ints, err);
		ints = NULL;
		if (rv == -1)
			goto out;
		rv = -1;
	}
	if ((args->ca_given & CLI_OPT_CAS) &&
	    set_new(params, "cas", json_integer(args->ca_cas), err) == -1)
		goto out;
	if (args->ca_replace &&
	    set_new(params, "replace", json_true(), err) == -1)
		goto out;

	rv = conn_call_once(args, "put", params, 0, &result, err);
	params = NULL;
	if (rv == 0 && args->ca_json)
		rv = out_json(result, JSON_OUT_FLAGS, err);
out:
	json_decref(params);
	json_decref(result);
	return rv;
}

int
cmd_get(struct cli_args *args, struct cli_error *err)
{
	const char	*tenant = args->ca_operands[0], *field = NULL;
	json_t		*params, *result = NULL, *value;
	int		 rv = -1;

	if (args->ca_noperands == 2)
		field = args->ca_operands[1];
	if (field == NULL && args->ca_no_newline)
		return cli_fail(err, CLI_EXIT_USAGE, "-n needs "
		    "get TENANT FIELD (one value)");
	if (tenant_check(tenant, err) == -1)
		return -1;
	if (field != NULL && field_check(field, err) == -1)
		return -1;

	if ((params = json_object()) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	if (set_new(params, "tenant", json_string(tenant), err) == -1 ||
	    (field != NULL &&
	    set_new(params, "field", json_string(field), err) == -1) ||
	    ((args->ca_given & CLI_OPT_VERSION) &&
	    set_new(params, "version", json_integer(args->ca_version),
	    err) == -1)) {
		json_decref(params);
		return -1;
	}
	if (conn_call_once(args, "get", params, 0, &result, err) == -1)
		return -1;

	if (args->ca_json)
		rv = out_json(result, JSON_OUT_FLAGS, err);
	else if (field != NULL) {
		if ((value = json_object_get(result, "value")) == NULL)
			cli_fail(err, CLI_EXIT_ERROR,
			    "wfvaultd's reply to get has no value");
		else if (json_is_string(value)) {
			if ((rv = out_write(json_string_value(value),
			    json_string_length(value), err)) == 0 &&
			    !args->ca_no_newline)
				rv = out_write("\n", 1, err);
		} else if (args->ca_no_newline)
			rv = out_json_raw(value, JSON_VALUE_FLAGS, err);
		else
			rv = out_json(value, JSON_VALUE_FLAGS, err);
	} else {
		if (!json_is_object(value = json_object_get(result, "fields")))
			cli_fail(err, CLI_EXIT_ERROR,
			    "wfvaultd's reply to get has no fields");
		else
			rv = out_json(value, JSON_OUT_FLAGS, err);
	}
	json_decref(result);
	return rv;
}

/*
 * Walks every page of list for prefix.  fn is called for each tenant
 * entry; it returns 0 to go on, 1 to stop, -1 on error.
 */
static int
list_walk(struct cli_args *args, const char *prefix,
    int (*fn)(json_t *, void *, struct cli_error *), void *arg,
    struct cli_error *err)
{
	struct proto_client	 c = PROTO_CLIENT_INIT;
	json_t			*params, *result = NULL, *tenants, *entry;
	json_t			*cursor = NULL, *next;
	size_t			 i;
	int			 rv = -1, r;

	if (conn_open(args, &c, err) == -1)
		return -1;
	for (;;) {
		if ((params = json_object()) == NULL) {
			cli_fail(err, CLI_EXIT_ERROR, "out of memory");
			goto out;
		}
		if ((prefix != NULL &&
		    set_new(params, "prefix", json_string(prefix), err) == -1) ||
		    (cursor != NULL &&
		    set_new(params, "cursor", json_incref(cursor), err) == -1) ||
		    set_new(params, "limit", json_integer(LIST_PAGE),
		    err) == -1) {
			json_decref(params);
			goto out;
		}
		if (conn_call(&c, "list", params, &result, err) == -1)
			goto out;
		if (!json_is_array(tenants = json_object_get(result,
		    "tenants"))) {
			cli_fail(err, CLI_EXIT_ERROR,
			    "wfvaultd's reply to list has no tenants");
			goto out;
		}
		json_array_foreach(tenants, i, entry) {
			if (!json_is_object(entry) || !json_is_string(
			    json_object_get(entry, "tenant"))) {
				cli_fail(err, CLI_EXIT_ERROR,
				    "wfvaultd's reply to list is malformed");
				goto out;
			}
			if ((r = fn(entry, arg, err)) == -1)
				goto out;
			if (r == 1) {
				rv = 0;
				goto out;
			}
		}
		next = json_object_get(result, "cursor");
		if (next == NULL || json_is_null(next))
			break;
		/* A cursor that does not move would loop forever. */
		if (!json_is_string(next) || (cursor != NULL &&
		    json_equal(cursor, next))) {
			cli_fail(err, CLI_EXIT_ERROR,
			    "wfvaultd's reply to list has a bad cursor");
			goto out;
		}
		json_decref(cursor);
		cursor = json_incref(next);
		json_decref(result);
		result = NULL;
	}
	rv = 0;
out:
	json_decref(cursor);
	json_decref(result);
	proto_client_close(&c);
	return rv;
}

static int
list_print(json_t *entry, void *arg, struct cli_error *err)
{
	json_t	*all = arg;

	if (all != NULL) {
		if (json_array_append(all, entry) == -1)
			return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
		return 0;
	}
	if (out_puts(json_string_value(json_object_get(entry, "tenant")),
	    err) == -1)
		return -1;
	return out_write("\n", 1, err);
}

int
cmd_list(struct cli_args *args, struct cli_error *err)
{
	const char	*prefix = NULL;
	json_t		*all = NULL, *obj;
	char		 msg[256];
	int		 rv;

	/* The daemon's rule for a prefix, so a refusal comes before a call. */
	if (args->ca_noperands == 1 && args->ca_operands[0][0] != '\0') {
		prefix = args->ca_operands[0];
		if (proto_prefix_valid(prefix, "it", msg, sizeof(msg)) == -1)
			return cli_fail(err, CLI_EXIT_USAGE,
			    "invalid prefix: %s", msg);
	}
	if (args->ca_json && (all = json_array()) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	rv = list_walk(args, prefix, list_print, all, err);
	if (rv == 0 && all != NULL) {
		if ((obj = json_pack("{s:O}", "tenants", all)) == NULL)
			rv = cli_fail(err, CLI_EXIT_ERROR, "out of memory");
		else {
			rv = out_json(obj, JSON_OUT_FLAGS, err);
			json_decref(obj);
		}
	}
	json_decref(all);
	return rv;
}

struct fields_find {
	const char	*ff_tenant;
	json_t		*ff_fields;	/* borrowed until ff_entry goes */
	json_t		*ff_entry;	/* new reference */
};

static int
fields_match(json_t *entry, void *arg, struct cli_error *err)
{
	struct fields_find	*ff = arg;

	if (strcmp(json_string_value(json_object_get(entry, "tenant")),
	    ff->ff_tenant) != 0)
		return 0;
	ff->ff_fields = json_object_get(entry, "fields");
	if (!json_is_array(ff->ff_fields))
		return cli_fail(err, CLI_EXIT_ERROR,
		    "wfvaultd's reply to list has no fields");
	ff->ff_entry = json_incref(entry);
	return 1;
}

int
cmd_fields(struct cli_args *args, struct cli_error *err)
{
	struct fields_find	 ff = { args->ca_operands[0], NULL, NULL };
	json_t			*name;
	size_t			 i;
	int			 rv = -1;

	if (tenant_check(ff.ff_tenant, err) == -1)
		return -1;
	/* list, not get: names only, so no value is ever fetched. */
	if (list_walk(args, ff.ff_tenant, fields_match, &ff, err) == -1)
		goto out;
	if (ff.ff_entry == NULL) {
		cli_fail(err, CLI_EXIT_NOT_FOUND, "no tenant '%s' (or you may "
		    "not list it)", ff.ff_tenant);
		goto out;
	}
	/* An object like every other --json output: list's entry for it. */
	if (args->ca_json) {
		rv = out_json(ff.ff_entry, JSON_OUT_FLAGS, err);
		goto out;
	}
	json_array_foreach(ff.ff_fields, i, name) {
		if (!json_is_string(name)) {
			cli_fail(err, CLI_EXIT_ERROR,
			    "wfvaultd's reply to list is malformed");
			goto out;
		}
		if (out_puts(json_string_value(name), err) == -1 ||
		    out_write("\n", 1, err) == -1)
			goto out;
	}
	rv = 0;
out:
	json_decref(ff.ff_entry);
	return rv;
}

/*
 * Asks on the terminal whether to remove a whole tenant: 1 for y or yes,
 * else 0 (EOF and errors included).  The answer is read from /dev/tty,
 * as the question is written there, not to the output a script may read.
 */
static int
rm_confirm(const char *tenant)
{
	char	q[PROTO_TENANT_MAX + 64], ans[16];
	size_t	len = 0;
	ssize_t	n;
	int	fd, ofd, own, yes = 0;
	char	c;

	if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) != -1) {
		ofd = fd;
		own = 1;
	} else {
		fd = STDIN_FILENO;
		ofd = STDERR_FILENO;
		own = 0;
	}
	snprintf(q, sizeof(q), "remove tenant '%s' and every version of "
	    "it? [y/N] ", tenant);
	if (write(ofd, q, strlen(q)) == -1)
		goto out;
	for (;;) {
		if ((n = read(fd, &c, 1)) == -1 && errno == EINTR)
			continue;
		if (n <= 0 || c == '\n')
			break;
		if (len + 1 < sizeof(ans))
			ans[len++] = c;
	}
	ans[len] = '\0';
	if (len > 0 && ans[len - 1] == '\r')
		ans[--len] = '\0';
	yes = strcasecmp(ans, "y") == 0 || strcasecmp(ans, "yes") == 0;
out:
	if (own)
		close(fd);
	return yes;
}

int
cmd_rm(struct cli_args *args, struct cli_error *err)
{
	const char	*tenant = args->ca_operands[0], *field = NULL;
	json_t		*params, *result = NULL;
	int		 rv = 0;

	if (args->ca_noperands == 2)
		field = args->ca_operands[1];
	if (field != NULL && args->ca_purge)
		return cli_fail(err, CLI_EXIT_USAGE, "--purge removes a whole "
		    "tenant: rm TENANT --purge");
	if (tenant_check(tenant, err) == -1)
		return -1;
	if (field != NULL && field_check(field, err) == -1)
		return -1;
	/* A person at a terminal is asked; a script (stdin not one) is not. */
	if (field == NULL && !args->ca_yes && isatty(STDIN_FILENO) &&
	    !rm_confirm(tenant))
		return cli_fail(err, CLI_EXIT_ERROR, "tenant '%s' not removed "
		    "(--yes removes it without asking)", tenant);

	if ((params = json_object()) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	if (set_new(params, "tenant", json_string(tenant), err) == -1 ||
	    (field != NULL &&
	    set_new(params, "field", json_string(field), err) == -1) ||
	    ((args->ca_given & CLI_OPT_CAS) &&
	    set_new(params, "cas", json_integer(args->ca_cas), err) == -1) ||
	    (args->ca_purge &&
	    set_new(params, "purge", json_true(), err) == -1)) {
		json_decref(params);
		return -1;
	}
	if (conn_call_once(args, "delete", params, 0, &result, err) == -1)
		return -1;
	if (args->ca_json)
		rv = out_json(result, JSON_OUT_FLAGS, err);
	json_decref(result);
	return rv;
}

/* An integer member, or -1 when it is missing or not a number. */
static int
status_int(json_t *obj, const char *key, json_int_t *out)
{
	json_t	*v = json_object_get(obj, key);

	if (!json_is_integer(v))
		return -1;
	*out = json_integer_value(v);
	return 0;
}

static void
status_bytes(char *buf, size_t len, json_int_t n)
{
	static const char	*units[] = { "KiB", "MiB", "GiB", "TiB" };
	double			 d = n;
	size_t			 u;

	if (n < 1024) {
		snprintf(buf, len, "%lld B", (long long)n);
		return;
	}
	for (u = 0, d /= 1024; d >= 1024 && u + 1 < 4; u++)
		d /= 1024;
	snprintf(buf, len, "%.1f %s", d, units[u]);
}

static void
status_duration(char *buf, size_t len, json_int_t s)
{
	long long	d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;

	if (d > 0)
		snprintf(buf, len, "%lldd %lldh %lldm %llds", d, h, m,
		    (long long)(s % 60));
	else if (h > 0)
		snprintf(buf, len, "%lldh %lldm %llds", h, m,
		    (long long)(s % 60));
	else if (m > 0)
		snprintf(buf, len, "%lldm %llds", m, (long long)(s % 60));
	else
		snprintf(buf, len, "%llds", (long long)s);
}

static int
status_print(json_t *st, struct cli_error *err)
{
	json_t		*store, *sync, *t;
	json_int_t	 n, used, map, seq, lag;
	const char	*name, *version;
	char		 a[32], b[32];
	size_t		 i;

	name = json_string_value(json_object_get(st, "server"));
	version = json_string_value(json_object_get(st, "version"));
	if (out_printf(err, "server:      %s %s", name ? name : "wfvaultd",
	    version ? version : "(unknown version)") == -1)
		return -1;
	if (status_int(st, "protocol", &n) == 0 &&
	    out_printf(err, " (protocol %lld)", (long long)n) == -1)
		return -1;
	if (out_write("\n", 1, err) == -1)
		return -1;
	if (status_int(st, "uptime", &n) == 0) {
		status_duration(a, sizeof(a), n);
		if (out_printf(err, "uptime:      %s\n", a) == -1)
			return -1;
	}
	if (status_int(st, "connections", &n) == 0 &&
	    out_printf(err, "connections: %lld\n", (long long)n) == -1)
		return -1;
	if (status_int(st, "tenants", &n) == 0 &&
	    out_printf(err, "tenants:     %lld\n", (long long)n) == -1)
		return -1;

	store = json_object_get(st, "store");
	if (status_int(store, "used_bytes", &used) == 0 &&
	    status_int(store, "map_size", &map) == 0 && map > 0) {
		status_bytes(a, sizeof(a), used);
		status_bytes(b, sizeof(b), map);
		if (out_printf(err, "store:       %s used of %s map (%.1f%%)\n",
		    a, b, 100.0 * used / map) == -1)
			return -1;
	}
	if (status_int(store, "versions", &n) == 0 &&
	    out_printf(err, "versions:    %lld\n", (long long)n) == -1)
		return -1;
	if (status_int(store, "changes", &n) == 0 &&
	    out_printf(err, "changes:     %lld\n", (long long)n) == -1)
		return -1;
	if (status_int(store, "last_seq", &n) == 0 &&
	    out_printf(err, "last_seq:    %lld\n", (long long)n) == -1)
		return -1;

	sync = json_object_get(st, "sync");
	if (json_array_size(sync) == 0)
		return out_puts("sync: no targets have acknowledged yet\n", err);
	json_array_foreach(sync, i, t) {
		name = json_string_value(json_object_get(t, "target"));
		if (name == NULL || status_int(t, "acked_seq", &seq) == -1)
			continue;
		if (status_int(t, "lag", &lag) == -1)
			lag = 0;
		if (out_printf(err, "target %s: acked seq %lld, lag %lld\n",
		    name, (long long)seq, (long long)lag) == -1)
			return -1;
	}
	return 0;
}

int
cmd_status(struct cli_args *args, struct cli_error *err)
{
	json_t	*result;
	int	 rv;

	if (conn_call_once(args, "status", json_object(), 0, &result,
	    err) == -1)
		return -1;
	if (args->ca_json)
		rv = out_json(result, JSON_OUT_FLAGS, err);
	else
		rv = status_print(result, err);
	json_decref(result);
	return rv;
}

int
cmd_backup(struct cli_args *args, struct cli_error *err)
{
	const char	*name = NULL;
	json_t		*params, *result = NULL, *path;
	char		 msg[512];
	int		 rv = -1;

	/* Only a name: the daemon writes into its own backup_dir, nowhere else. */
	if (args->ca_noperands == 1) {
		name = args->ca_operands[0];
		if (proto_backup_name_valid(name, msg, sizeof(msg)) == -1)
			return name_fail("backup name", msg, err);
	}
	if ((params = json_object()) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	if (name != NULL &&
	    set_new(params, "name", json_string(name), err) == -1) {
		json_decref(params);
		return -1;
	}
	if (conn_call_once(args, "backup", params, BACKUP_TIMEOUT_MS, &result,
	    err) == -1)
		return -1;
	if (args->ca_json)
		rv = out_json(result, JSON_OUT_FLAGS, err);
	else if (!json_is_string(path = json_object_get(result, "path")))
		cli_fail(err, CLI_EXIT_ERROR,
		    "wfvaultd's reply to backup has no path");
	else if ((rv = out_puts(json_string_value(path), err)) == 0)
		rv = out_write("\n", 1, err);
	json_decref(result);
	/* On stderr, so stdout is only the path; "wfvault:" marks errors. */
	if (rv == 0)
		fprintf(stderr, "note: this backup is useless without the "
		    "master key; keep a copy of the key, separately from the "
		    "backup\n");
	return rv;
}

int
cmd_rotate_master_key(struct cli_args *args, struct cli_error *err)
{
	json_t		*params, *result = NULL, *n;
	int		 rv = -1;

	/* No key material on the socket: the daemon reads its own config. */
	if ((params = json_object()) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	if (conn_call_once(args, "rotate_master_key", params, ROTATE_TIMEOUT_MS,
	    &result, err) == -1)
		return -1;
	if (args->ca_json)
		rv = out_json(result, JSON_OUT_FLAGS, err);
	else if (!json_is_integer(n = json_object_get(result, "rewrapped")))
		cli_fail(err, CLI_EXIT_ERROR,
		    "wfvaultd's reply to rotate_master_key is malformed");
	else
		rv = out_printf(err, "re-wrapped %lld tenant data keys under "
		    "the next master key; install that key as "
		    "master_key_file now\n", (long long)json_integer_value(n));
	json_decref(result);
	return rv;
}

int
cmd_rotate_key(struct cli_args *args, struct cli_error *err)
{
	const char	*tenant = args->ca_operands[0];
	json_t		*params, *result = NULL, *n;
	int		 rv = -1;

	if (tenant_check(tenant, err) == -1)
		return -1;
	if ((params = json_object()) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	if (set_new(params, "tenant", json_string(tenant), err) == -1) {
		json_decref(params);
		return -1;
	}
	if (conn_call_once(args, "rotate_tenant_key", params, ROTATE_TIMEOUT_MS,
	    &result, err) == -1)
		return -1;
	if (args->ca_json)
		rv = out_json(result, JSON_OUT_FLAGS, err);
	else if (!json_is_integer(n = json_object_get(result, "resealed")))
		cli_fail(err, CLI_EXIT_ERROR,
		    "wfvaultd's reply to rotate_tenant_key is malformed");
	else
		rv = out_printf(err, "%s: new data key, %lld version%s "
		    "re-sealed\n", tenant, (long long)json_integer_value(n),
		    json_integer_value(n) == 1 ? "" : "s");
	json_decref(result);
	return rv;
}
