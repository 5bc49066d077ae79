/*
 * wfvault onboard: collects the fields a tenant's integrations still need
 * -- at a terminal, field by field with the catalog's instructions, or
 * from an .env file or a JSON object -- checks them against the catalog's
 * formats and stores them with the integrations as one new version.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "wfvault.h"

#define ONBOARD_JSON_FLAGS	(JSON_INDENT(2) | JSON_SORT_KEYS)
/* One answer at the terminal; a canonical-mode line is shorter anyway. */
#define ONBOARD_LINE_MAX	8192

/* One field of a named integration that the tenant does not hold. */
struct onboard_field {
	json_t		*of_integ;	/* borrowed from ob_catalog */
	json_t		*of_field;	/* borrowed from ob_catalog */
	const char	*of_name;	/* borrowed from of_field */
};

/* One onboarding session; every json_t is a reference of its own. */
struct onboard {
	const char		*ob_tenant;	/* from argv */
	json_t			*ob_catalog;	/* integrations' result */
	json_t			*ob_integs;	/* the named ones, in order */
	json_t			*ob_ids;	/* their ids, for put */
	json_t			*ob_present;	/* the tenant's names */
	struct onboard_field	*ob_missing;	/* what to collect */
	size_t			 ob_nmissing;
	json_t			*ob_values;	/* name: value, to store */
	json_t			*ob_stored;	/* their names, once put */
	json_t			*ob_kept;	/* present, not asked */
	json_t			*ob_ignored;	/* input names unused */
	json_t			*ob_problems;	/* [{name, ...}] */
	json_t			*ob_tests;	/* test_run's results */
	json_t			*ob_check;	/* check's, or NULL */
	json_int_t		 ob_version;	/* after the put */
	struct cli_error	 ob_test_err;	/* why no tests ran */
	int			 ob_stopped;	/* ^D at the terminal */
};

static void
onboard_release(struct onboard *ob)
{
	json_decref(ob->ob_check);
	json_decref(ob->ob_tests);
	json_decref(ob->ob_problems);
	json_decref(ob->ob_ignored);
	json_decref(ob->ob_kept);
	json_decref(ob->ob_stored);
	/* The values: jansson's allocator wipes them (proto_json_init). */
	json_decref(ob->ob_values);
	free(ob->ob_missing);
	json_decref(ob->ob_present);
	json_decref(ob->ob_ids);
	json_decref(ob->ob_integs);
	json_decref(ob->ob_catalog);
}

static const char *
onboard_str(json_t *obj, const char *key)
{
	const char	*s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : "";
}

static int
onboard_oom(struct cli_error *err)
{
	return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
}

/*
 * The catalog and the entries of the integrations named on the command
 * line, in that order (an id named twice counts once).  Every unknown id
 * is named in one error.
 */
static int
onboard_catalog(struct cli_args *args, struct onboard *ob,
    struct cli_error *err)
{
	json_t		*list, *it, *found;
	const char	*id;
	char		 unknown[512];
	size_t		 i, len = 0;
	int		 k, nunknown = 0, hidden = 0;

	if (conn_call_once(args, "integrations", json_object(), 0,
	    &ob->ob_catalog, err) == -1)
		return -1;
	if (!json_is_array(list = json_object_get(ob->ob_catalog,
	    "integrations")))
		return cli_fail(err, CLI_EXIT_ERROR, "wfvaultd's reply to "
		    "integrations has no list");
	if ((ob->ob_integs = json_array()) == NULL ||
	    (ob->ob_ids = json_array()) == NULL)
		return onboard_oom(err);
	unknown[0] = '\0';
	for (k = 1; k < args->ca_noperands; k++) {
		id = args->ca_operands[k];
		found = NULL;
		json_array_foreach(list, i, it)
			if (strcmp(onboard_str(it, "id"), id) == 0) {
				found = it;
				break;
			}
		if (found == NULL) {
			nunknown++;
			if (!cli_id_echoable(id))
				hidden++;
			else if (len < sizeof(unknown))
				len += snprintf(unknown + len,
				    sizeof(unknown) - len, "%s'%s'",
				    len > 0 ? ", " : "", id);
			continue;
		}
		json_array_foreach(ob->ob_ids, i, it)
			if (strcmp(json_string_value(it), id) == 0)
				break;
		if (i < json_array_size(ob->ob_ids))
			continue;
		if (json_array_append(ob->ob_integs, found) == -1 ||
		    json_array_append_new(ob->ob_ids, json_string(id)) == -1)
			return onboard_oom(err);
	}
	if (nunknown > 0 && hidden == 0)
		return cli_fail(err, CLI_EXIT_USAGE, "no integration %s in the "
		    "catalog (see 'wfvault integrations'); nothing stored",
		    unknown);
	if (nunknown > 0)
		return cli_fail(err, CLI_EXIT_USAGE, "no integration %s%s%d "
		    "more (ids not shown) in the catalog (see 'wfvault "
		    "integrations'); nothing stored", unknown, len > 0 ?
		    " nor " : "", hidden);
	return 0;
}

/*
 * The tenant's field names, from its list entry (names only: no value
 * leaves the daemon for this); none for a tenant that does not exist.
 * The first id in byte order with the tenant as prefix is the tenant.
 */
static int
onboard_present(struct cli_args *args, struct onboard *ob,
    struct cli_error *err)
{
	json_t	*result, *entry, *names;

	if (conn_call_once(args, "list", json_pack("{s:s,s:i}", "prefix",
	    ob->ob_tenant, "limit", 1), 0, &result, err) == -1) {
		if (err->ce_status == CLI_EXIT_DENIED)
			return cli_fail(err, CLI_EXIT_DENIED, "onboard needs "
			    "the 'list' permission on tenant '%s' to see which "
			    "fields it holds", ob->ob_tenant);
		return -1;
	}
	entry = json_array_get(json_object_get(result, "tenants"), 0);
	if (entry != NULL && strcmp(onboard_str(entry, "tenant"),
	    ob->ob_tenant) == 0) {
		if (!json_is_array(names = json_object_get(entry, "fields"))) {
			json_decref(result);
			return cli_fail(err, CLI_EXIT_ERROR, "wfvaultd's reply "
			    "to list has no fields");
		}
		ob->ob_present = json_incref(names);
	} else
		ob->ob_present = json_array();
	json_decref(result);
	if (ob->ob_present == NULL)
		return onboard_oom(err);
	return 0;
}

static int
onboard_name_in(json_t *names, const char *name)
{
	json_t	*n;
	size_t	 i;

	json_array_foreach(names, i, n)
		if (json_is_string(n) && strcmp(json_string_value(n), name) ==
		    0)
			return 1;
	return 0;
}

/* The integration that names field, among those named; NULL if none. */
static struct onboard_field *
onboard_missing_find(struct onboard *ob, const char *name)
{
	size_t	i;

	for (i = 0; i < ob->ob_nmissing; i++)
		if (strcmp(ob->ob_missing[i].of_name, name) == 0)
			return &ob->ob_missing[i];
	return NULL;
}

/*
 * Splits the named integrations' fields into those to collect (in the
 * order of the command line and of each catalog file) and those the
 * tenant holds already, which are not asked again.
 */
static int
onboard_plan(struct onboard *ob, struct cli_error *err)
{
	json_t		*it, *f;
	const char	*name;
	size_t		 i, j, n = 0;

	json_array_foreach(ob->ob_integs, i, it)
		n += json_array_size(json_object_get(it, "fields"));
	if ((ob->ob_missing = calloc(n + 1, sizeof(*ob->ob_missing))) ==
	    NULL || (ob->ob_kept = json_array()) == NULL ||
	    (ob->ob_values = json_object()) == NULL ||
	    (ob->ob_ignored = json_array()) == NULL ||
	    (ob->ob_problems = json_array()) == NULL)
		return onboard_oom(err);
	json_array_foreach(ob->ob_integs, i, it) {
		json_array_foreach(json_object_get(it, "fields"), j, f) {
			if ((name = json_string_value(json_object_get(f,
			    "name"))) == NULL)
				continue;
			if (onboard_name_in(ob->ob_present, name)) {
				if (!onboard_name_in(ob->ob_kept, name) &&
				    json_array_append_new(ob->ob_kept,
				    json_string(name)) == -1)
					return onboard_oom(err);
				continue;
			}
			/* Two integrations may share a field: ask once. */
			if (onboard_missing_find(ob, name) != NULL)
				continue;
			ob->ob_missing[ob->ob_nmissing].of_integ = it;
			ob->ob_missing[ob->ob_nmissing].of_field = f;
			ob->ob_missing[ob->ob_nmissing].of_name = name;
			ob->ob_nmissing++;
		}
	}
	return 0;
}

/*
 * Whether value suits the field: UTF-8 text and, as the daemon checks it
 * again, a match of the catalog's format (a POSIX ERE).  Returns NULL, or
 * why not (a static string that never quotes the value).
 */
static const char *
onboard_match(const struct onboard_field *of, const char *value, size_t len)
{
	regex_t		 re;
	const char	*format;
	int		 ok;

	if (len == 0)
		return "is empty";
	if (!value_utf8_valid(value, len))
		return "is not valid UTF-8 text";
	format = json_string_value(json_object_get(of->of_field, "format"));
	/* The daemon compiled it at start-up; if we cannot, it decides. */
	if (format == NULL || regcomp(&re, format, REG_EXTENDED | REG_NOSUB) !=
	    0)
		return NULL;
	ok = regexec(&re, value, 0, NULL, 0) == 0;
	regfree(&re);
	return ok ? NULL : "does not match the format";
}

/* "sk-… (^sk-...$)", or the format alone when there is no example. */
static void
onboard_format(const struct onboard_field *of, char *buf, size_t len)
{
	const char	*example, *format;

	example = json_string_value(json_object_get(of->of_field, "example"));
	format = onboard_str(of->of_field, "format");
	if (example != NULL)
		snprintf(buf, len, "%s (%s)", example, format);
	else
		snprintf(buf, len, "%s", format);
}

/*
 * Catalog text on the terminal: control characters become '?', so a
 * site's catalog file cannot send escape sequences.
 */
static void
onboard_tty_printf(int fd, const char *fmt, ...)
    __attribute__((__format__(printf, 2, 3)));

static void
onboard_tty_printf(int fd, const char *fmt, ...)
{
	char	buf[2048];
	size_t	i;
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (i = 0; buf[i] != '\0'; i++)
		if (((unsigned char)buf[i] < 0x20 && buf[i] != '\n') ||
		    buf[i] == 0x7f)
			buf[i] = '?';
	tty_write(fd, buf);
}

/* The block a person can act on, before the prompt for one field. */
static void
onboard_block(int ofd, struct onboard *ob, const struct onboard_field *of)
{
	json_t	*step;
	char	 format[1024];
	size_t	 i;

	onboard_format(of, format, sizeof(format));
	onboard_tty_printf(ofd, "\nWAITING FOR INPUT\n"
	    "Task: %s for tenant %s\n"
	    "What I need: %s (%s)\n"
	    "Where to get it:\n",
	    onboard_str(of->of_integ, "title"), ob->ob_tenant,
	    onboard_str(of->of_field, "label"), of->of_name);
	json_array_foreach(json_object_get(of->of_field, "where"), i, step)
		onboard_tty_printf(ofd, "  %zu. %s\n", i + 1,
		    json_string_value(step) != NULL ?
		    json_string_value(step) : "");
	onboard_tty_printf(ofd, "Format: %s\n", format);
}

/* Empties ob_values, wiping what they held (jansson's allocator does). */
static void
onboard_values_clear(struct onboard *ob)
{
	(void)json_object_clear(ob->ob_values);
}

/*
 * Asks for one field until a valid value is in buf (*lenp bytes): 0, or 1
 * at ^D, or -1 with err set.  A signal wipes every value and is raised
 * again: we die of it unless it was ignored when we started.
 */
static int
onboard_ask_one(int fd, int ofd, struct onboard *ob,
    const struct onboard_field *of, char *buf, size_t *lenp,
    struct cli_error *err)
{
	const char	*why;
	char		 prompt[256], format[1024];
	int		 secret, r, signo;

	/* Only false is not secret: a file that says nothing hides. */
	secret = !json_is_false(json_object_get(of->of_field, "secret"));
	onboard_block(ofd, ob, of);
	snprintf(prompt, sizeof(prompt), "%s%s: ", of->of_name,
	    secret ? " (input hidden)" : "");
	for (;;) {
		r = tty_read_line(fd, ofd, prompt, !secret, buf,
		    ONBOARD_LINE_MAX, lenp, &signo);
		if (r == -1)
			return cli_fail(err, CLI_EXIT_ERROR, "cannot read from "
			    "the terminal: %s; nothing stored",
			    strerror(errno));
		if (r == TTY_LINE_SIGNAL) {
			explicit_bzero(buf, ONBOARD_LINE_MAX);
			onboard_values_clear(ob);
			(void)kill(getpid(), signo);
			return cli_fail(err, CLI_EXIT_ERROR, "interrupted; "
			    "nothing stored");
		}
		if (r == TTY_LINE_EOF)
			return 1;
		if (r == TTY_LINE_LONG) {
			onboard_tty_printf(ofd, "%s: the value is longer than "
			    "%d bytes; try again\n", of->of_name,
			    ONBOARD_LINE_MAX - 1);
			continue;
		}
		if (*lenp == 0) {
			onboard_tty_printf(ofd, "%s is needed: enter it, or "
			    "press Ctrl-D to stop\n", of->of_name);
			continue;
		}
		if ((why = onboard_match(of, buf, *lenp)) == NULL)
			return 0;
		explicit_bzero(buf, *lenp);
		onboard_format(of, format, sizeof(format));
		onboard_tty_printf(ofd, "%s %s %s; try again\n", of->of_name,
		    why, format);
	}
}

/*
 * At the terminal (/dev/tty, else stdin and stderr): each field to
 * collect in turn.  ^D stops: what was collected is stored only with
 * --partial.
 */
static int
onboard_ask(struct cli_args *args, struct onboard *ob, struct cli_error *err)
{
	char	*buf;
	size_t	 i, len = 0;
	int	 fd, ofd, opened, r = 0, rv = -1;

	if ((buf = calloc(1, ONBOARD_LINE_MAX)) == NULL)
		return onboard_oom(err);
	if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) != -1) {
		opened = 1;
		ofd = fd;
	} else {
		opened = 0;
		fd = STDIN_FILENO;
		ofd = STDERR_FILENO;
	}
	for (i = 0; i < ob->ob_nmissing; i++) {
		if ((r = onboard_ask_one(fd, ofd, ob, &ob->ob_missing[i], buf,
		    &len, err)) == -1)
			goto out;
		if (r == 1)
			break;
		if (json_object_set_new(ob->ob_values,
		    ob->ob_missing[i].of_name, json_stringn(buf, len)) == -1) {
			onboard_oom(err);
			goto out;
		}
		explicit_bzero(buf, len);
	}
	if (r == 1) {
		ob->ob_stopped = 1;
		if (!args->ca_partial) {
			onboard_values_clear(ob);
			cli_fail(err, CLI_EXIT_USAGE, "input ended before %s; "
			    "nothing stored (--partial stores the fields "
			    "entered)", ob->ob_missing[i].of_name);
			goto out;
		}
	}
	rv = 0;
out:
	if (opened)
		close(fd);
	explicit_bzero(buf, ONBOARD_LINE_MAX);
	free(buf);
	return rv;
}

static int
onboard_problem(struct onboard *ob, const struct onboard_field *of,
    const char *problem, struct cli_error *err)
{
	if (json_array_append_new(ob->ob_problems, json_pack("{s:s,s:s,s:s,"
	    "s:s}", "name", of->of_name, "integration",
	    onboard_str(of->of_integ, "id"), "problem", problem, "format",
	    onboard_str(of->of_field, "format"))) == -1)
		return onboard_oom(err);
	return 0;
}

/*
 * Without a terminal: the values come from in (an .env file's fields or a
 * JSON object).  Names that are no field to collect are set aside by
 * name; every missing or malformed field is one problem.
 */
static int
onboard_take(struct onboard *ob, json_t *in, struct cli_error *err)
{
	const struct onboard_field	*of;
	const char			*key, *why;
	json_t				*v;
	char				 msg[256];
	size_t				 i;
	int				 invalid = 0;

	json_object_foreach(in, key, v) {
		if (onboard_missing_find(ob, key) != NULL)
			continue;
		if (proto_field_valid(key, msg, sizeof(msg)) == -1) {
			/* Not a name we repeat: it may be a pasted value. */
			invalid++;
			continue;
		}
		if (onboard_name_in(ob->ob_kept, key))
			continue;
		if (json_array_append_new(ob->ob_ignored, json_string(key)) ==
		    -1)
			return onboard_oom(err);
	}
	if (invalid > 0 && json_array_append_new(ob->ob_ignored,
	    json_sprintf("(%d entr%s with an invalid field name)", invalid,
	    invalid == 1 ? "y" : "ies")) == -1)
		return onboard_oom(err);

	for (i = 0; i < ob->ob_nmissing; i++) {
		of = &ob->ob_missing[i];
		v = json_object_get(in, of->of_name);
		if (v == NULL || json_is_null(v) || (json_is_string(v) &&
		    json_string_length(v) == 0)) {
			if (onboard_problem(ob, of, "missing", err) == -1)
				return -1;
			continue;
		}
		if (!json_is_string(v)) {
			if (onboard_problem(ob, of, "not a string", err) == -1)
				return -1;
			continue;
		}
		if ((why = onboard_match(of, json_string_value(v),
		    json_string_length(v))) != NULL) {
			if (onboard_problem(ob, of, why, err) == -1)
				return -1;
			continue;
		}
		if (json_object_set(ob->ob_values, of->of_name, v) == -1)
			return onboard_oom(err);
	}
	return 0;
}

/* The input object of --from-env FILE or --json: a new reference. */
static int
onboard_input(struct cli_args *args, json_t **in, struct cli_error *err)
{
	struct value	 buf = VALUE_INIT;
	json_error_t	 jerr;
	int		 rv = -1;

	*in = NULL;
	if (args->ca_from_env != NULL) {
		if (value_read_file(&buf, args->ca_from_env, CLI_JSON_MAX,
		    err) == -1)
			goto out;
		/* Its errors name the line, never what is on it. */
		rv = env_parse(buf.v_buf, buf.v_len, in, err);
		goto out;
	}
	if (value_read_stdin(&buf, CLI_JSON_MAX, err) == -1)
		goto out;
	/* jansson's error text may quote the input: only where it is. */
	if ((*in = json_loadb(buf.v_buf, buf.v_len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL) {
		cli_fail(err, CLI_EXIT_USAGE, "stdin is not a valid JSON "
		    "object (line %d, column %d); nothing stored", jerr.line,
		    jerr.column);
		goto out;
	}
	if (!json_is_object(*in)) {
		json_decref(*in);
		*in = NULL;
		cli_fail(err, CLI_EXIT_USAGE, "stdin holds JSON but not an "
		    "object of fields; nothing stored");
		goto out;
	}
	rv = 0;
out:
	value_free(&buf);
	return rv;
}

/* Every problem of the input, one line each on stderr (names, formats). */
static void
onboard_problems_print(struct onboard *ob, const char *lead)
{
	json_t	*p;
	size_t	 i;

	json_array_foreach(ob->ob_problems, i, p)
		fprintf(stderr, "wfvault: %s%s (%s): %s; format %s\n", lead,
		    onboard_str(p, "name"), onboard_str(p, "integration"),
		    onboard_str(p, "problem"), onboard_str(p, "format"));
}

/* The names of ob_values in the order they were asked: a new array. */
static json_t *
onboard_stored_names(struct onboard *ob)
{
	json_t		*names;
	const char	*key;
	size_t		 i;

	if ((names = json_array()) == NULL)
		return NULL;
	for (i = 0; i < ob->ob_nmissing; i++) {
		key = ob->ob_missing[i].of_name;
		if (json_object_get(ob->ob_values, key) != NULL &&
		    json_array_append_new(names, json_string(key)) == -1) {
			json_decref(names);
			return NULL;
		}
	}
	return names;
}

/* One put: the values and the integrations, one version. */
static int
onboard_store(struct cli_args *args, struct onboard *ob,
    struct cli_error *err)
{
	json_t	*params, *result, *v;

	if ((ob->ob_stored = onboard_stored_names(ob)) == NULL)
		return onboard_oom(err);
	if ((params = json_pack("{s:s,s:O,s:O}", "tenant", ob->ob_tenant,
	    "fields", ob->ob_values, "integrations", ob->ob_ids)) == NULL)
		return onboard_oom(err);
	if ((args->ca_given & CLI_OPT_CAS) && json_object_set_new(params,
	    "cas", json_integer(args->ca_cas)) == -1) {
		json_decref(params);
		return onboard_oom(err);
	}
	if (conn_call_once(args, "put", params, 0, &result, err) == -1)
		return -1;
	v = json_object_get(result, "version");
	ob->ob_version = json_is_integer(v) ? json_integer_value(v) : -1;
	json_decref(result);
	return 0;
}

/*
 * The live tests of the integrations onboarded, through wfvault test's
 * test_run (which records each outcome in the vault).  A failure to run
 * them is reported in the summary; the values are stored by then.
 */
static int
onboard_test(struct cli_args *args, struct onboard *ob, int *failed,
    struct cli_error *err)
{
	struct proto_client	 c = PROTO_CLIENT_INIT;
	struct cli_error	 terr = { CLI_EXIT_OK, "", 0, "" };
	json_t			*r;
	size_t			 i;

	*failed = 0;
	if (conn_open(args, &c, &terr) == -1 ||
	    test_run(&c, ob->ob_tenant, ob->ob_ids, &ob->ob_tests,
	    &terr) == -1) {
		proto_client_close(&c);
		goto fail;
	}
	proto_client_close(&c);
	json_array_foreach(ob->ob_tests, i, r)
		if (strcmp(onboard_str(r, "result"), "fail") == 0)
			*failed = 1;
	return 0;
fail:
	ob->ob_test_err = terr;
	json_decref(ob->ob_tests);
	ob->ob_tests = json_pack("{s:s}", "error", terr.ce_msg);
	return ob->ob_tests == NULL ? onboard_oom(err) : 0;
}

/*
 * check's view of the tenant after the put: what is still missing and
 * whether the sync agent pushed it.  NULL (unknown) when the daemon has
 * no check method or the caller may not use it.
 */
static void
onboard_check(struct cli_args *args, struct onboard *ob)
{
	struct cli_error	 cerr = { CLI_EXIT_OK, "", 0, "" };

	if (conn_call_once(args, "check", json_pack("{s:s}", "tenant",
	    ob->ob_tenant), 0, &ob->ob_check, &cerr) == -1)
		ob->ob_check = NULL;
}

/* "a, b, c" of an array of strings; "none" when empty. */
static int
onboard_print_names(const char *lead, json_t *names, struct cli_error *err)
{
	json_t	*n;
	size_t	 i;

	if (out_puts(lead, err) == -1)
		return -1;
	if (json_array_size(names) == 0)
		return out_puts("none\n", err);
	json_array_foreach(names, i, n)
		if (out_printf(err, "%s%s", i > 0 ? ", " : "",
		    json_string_value(n) != NULL ? json_string_value(n) :
		    "?") == -1)
			return -1;
	return out_write("\n", 1, err);
}

/*
 * Whether the sync agent has pushed the tenant's newest change: from
 * check's "sync"; "unknown" without it.
 */
static int
onboard_print_sync(struct onboard *ob, struct cli_error *err)
{
	json_t	*sync, *t, *pushed;
	size_t	 i;

	if (ob->ob_check == NULL ||
	    !json_is_array(sync = json_object_get(ob->ob_check, "sync")))
		return out_puts("sync: unknown (this daemon has no check "
		    "method, or you may not use it)\n", err);
	if (json_array_size(sync) == 0)
		return out_puts("sync: not pushed yet (no sync target has "
		    "acknowledged a change so far)\n", err);
	json_array_foreach(sync, i, t) {
		pushed = json_object_get(t, "pushed");
		if (out_printf(err, "sync: %s: %s\n", onboard_str(t, "target"),
		    json_is_true(pushed) ? "pushed" : json_is_false(pushed) ?
		    "not pushed yet" : "unknown") == -1)
			return -1;
	}
	return 0;
}

/* What the tenant still lacks, from check, else from what we know. */
static int
onboard_print_missing(struct onboard *ob, struct cli_error *err)
{
	json_t	*list, *it, *m;
	size_t	 i, j, k, shown = 0;

	if (ob->ob_check != NULL && json_is_array(list =
	    json_object_get(ob->ob_check, "integrations"))) {
		json_array_foreach(list, i, it) {
			if (strcmp(onboard_str(it, "state"), "ok") == 0)
				continue;
			if (out_printf(err, "%s  %s: %s", shown++ == 0 ?
			    "still to do:\n" : "", onboard_str(it, "id"),
			    onboard_str(it, "state")) == -1)
				return -1;
			json_array_foreach(json_object_get(it, "missing"), j,
			    m)
				if (out_printf(err, "%s%s (%s)", j == 0 ?
				    "; missing " : ", ", onboard_str(m, "name"),
				    onboard_str(m, "label")) == -1)
					return -1;
			json_array_foreach(json_object_get(it, "malformed"),
			    j, m)
				if (out_printf(err, "%s%s (format %s)", j == 0 ?
				    "; malformed " : ", ", onboard_str(m,
				    "name"), onboard_str(m, "format")) == -1)
					return -1;
			if (out_write("\n", 1, err) == -1)
				return -1;
		}
		if (shown == 0)
			return out_printf(err, "still to do: nothing, tenant "
			    "'%s' is ready\n", ob->ob_tenant);
		return 0;
	}
	for (k = 0; k < ob->ob_nmissing; k++) {
		if (onboard_name_in(ob->ob_stored, ob->ob_missing[k].of_name))
			continue;
		if (out_printf(err, "%s%s (%s)", shown++ == 0 ?
		    "still missing (of the integrations named): " : ", ",
		    ob->ob_missing[k].of_name, onboard_str(
		    ob->ob_missing[k].of_integ, "id")) == -1)
			return -1;
	}
	return out_puts(shown == 0 ? "still missing (of the integrations "
	    "named): nothing\n" : "\n", err);
}

static int
onboard_print_tests(struct onboard *ob, struct cli_error *err)
{
	json_t		*r;
	const char	*result;
	size_t		 i;

	if (ob->ob_tests == NULL)
		return 0;
	if (json_is_object(ob->ob_tests))
		return out_printf(err, "live tests: not run: %s\n",
		    onboard_str(ob->ob_tests, "error"));
	if (out_puts("live tests:\n", err) == -1)
		return -1;
	/* As wfvault test prints them. */
	json_array_foreach(ob->ob_tests, i, r) {
		result = onboard_str(r, "result");
		if (out_printf(err, "  %s: %s (%s)\n", onboard_str(r,
		    "integration"), strcmp(result, "pass") == 0 ? "pass" :
		    strcmp(result, "fail") == 0 ? "FAIL" : "skipped",
		    onboard_str(r, "reason")) == -1)
			return -1;
	}
	return 0;
}

static int
onboard_summary_json(struct onboard *ob, struct cli_error *err)
{
	json_t	*stored = ob->ob_stored;
	json_t	*sum;
	int	 rv;

	/* stored NULL: nothing was. */
	sum = json_pack("{s:s,s:O,s:o,s:O,s:O,s:O}", "tenant", ob->ob_tenant,
	    "integrations", ob->ob_ids, "stored", stored != NULL ?
	    json_incref(stored) : json_array(), "already_present",
	    ob->ob_kept, "ignored", ob->ob_ignored, "problems",
	    ob->ob_problems);
	if (sum == NULL)
		return onboard_oom(err);
	if ((ob->ob_version > 0 && json_object_set_new(sum, "version",
	    json_integer(ob->ob_version)) == -1) ||
	    (ob->ob_tests != NULL && json_object_set(sum, "tests",
	    ob->ob_tests) == -1) ||
	    json_object_set_new(sum, "check", ob->ob_check != NULL ?
	    json_incref(ob->ob_check) : json_null()) == -1) {
		json_decref(sum);
		return onboard_oom(err);
	}
	rv = out_json(sum, ONBOARD_JSON_FLAGS, err);
	json_decref(sum);
	return rv;
}

/* The summary a person can act on: names and versions, never values. */
static int
onboard_summary(struct cli_args *args, struct onboard *ob,
    struct cli_error *err)
{
	if (args->ca_json)
		return onboard_summary_json(ob, err);
	if (onboard_print_names("onboarded: ", ob->ob_ids, err) == -1 ||
	    out_printf(err, "tenant: %s, version %lld\n", ob->ob_tenant,
	    (long long)ob->ob_version) == -1 ||
	    onboard_print_names("stored: ", ob->ob_stored, err) == -1)
		return -1;
	if (json_array_size(ob->ob_kept) > 0 && onboard_print_names(
	    "already present, not asked again: ", ob->ob_kept, err) == -1)
		return -1;
	if (json_array_size(ob->ob_ignored) > 0 && onboard_print_names(
	    "ignored (not a field of these integrations): ", ob->ob_ignored,
	    err) == -1)
		return -1;
	if (onboard_print_tests(ob, err) == -1 ||
	    onboard_print_sync(ob, err) == -1 ||
	    onboard_print_missing(ob, err) == -1)
		return -1;
	return 0;
}

int
cmd_onboard(struct cli_args *args, struct cli_error *err)
{
	struct onboard	 ob;
	json_t		*in = NULL;
	int		 interactive, failed = 0, rv = -1;

	memset(&ob, 0, sizeof(ob));
	ob.ob_tenant = args->ca_operands[0];
	ob.ob_version = -1;
	if (cli_tenant_check(ob.ob_tenant, err) == -1)
		return -1;
	interactive = args->ca_from_env == NULL && !args->ca_json;

	if (onboard_catalog(args, &ob, err) == -1 ||
	    onboard_present(args, &ob, err) == -1 ||
	    onboard_plan(&ob, err) == -1)
		goto out;
	/* With nothing to ask, the integrations are recorded anyway. */
	if (interactive && ob.ob_nmissing > 0 && !isatty(STDIN_FILENO)) {
		cli_fail(err, CLI_EXIT_USAGE, "onboard asks for the values at "
		    "a terminal; without one, give them with --from-env FILE "
		    "or as a JSON object on stdin with --json; nothing "
		    "stored");
		goto out;
	}
	if (interactive) {
		if (onboard_ask(args, &ob, err) == -1)
			goto out;
	} else {
		if (onboard_input(args, &in, err) == -1 ||
		    onboard_take(&ob, in, err) == -1)
			goto out;
		json_decref(in);	/* wiped by jansson's allocator */
		in = NULL;
		if (json_array_size(ob.ob_problems) > 0 && !args->ca_partial) {
			onboard_values_clear(&ob);
			/* main discards stdout on an error: flush it here. */
			if (args->ca_json)
				(void)(onboard_summary_json(&ob, err) == 0 &&
				    out_flush(err) == 0);
			else
				onboard_problems_print(&ob, "");
			cli_fail(err, CLI_EXIT_USAGE, "%zu problem%s with the "
			    "input for tenant '%s' (%s); nothing stored "
			    "(--partial stores the valid fields)",
			    json_array_size(ob.ob_problems),
			    json_array_size(ob.ob_problems) == 1 ? "" : "s",
			    ob.ob_tenant, args->ca_json ? "see \"problems\"" :
			    "listed above");
			goto out;
		}
		if (!args->ca_json)
			onboard_problems_print(&ob, "not stored: ");
	}

	if (onboard_store(args, &ob, err) == -1)
		goto out;
	/* Stored: from here on nothing changes the exit status but a test. */
	onboard_values_clear(&ob);
	if (args->ca_test && onboard_test(args, &ob, &failed, err) == -1)
		goto out;
	onboard_check(args, &ob);
	if (onboard_summary(args, &ob, err) == -1)
		goto out;
	if (failed) {
		(void)out_flush(err);
		cli_fail(err, CLI_EXIT_TEST_FAILED, "tenant '%s' is stored as "
		    "version %lld, but a live test failed (see above)",
		    ob.ob_tenant, (long long)ob.ob_version);
		goto out;
	}
	if (ob.ob_test_err.ce_status != CLI_EXIT_OK) {
		(void)out_flush(err);
		cli_fail(err, ob.ob_test_err.ce_status, "tenant '%s' is stored "
		    "as version %lld, but the live tests did not run: %s",
		    ob.ob_tenant, (long long)ob.ob_version,
		    ob.ob_test_err.ce_msg);
		goto out;
	}
	rv = 0;
out:
	json_decref(in);
	onboard_release(&ob);
	return rv;
}
