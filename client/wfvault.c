/*
 * wfvault, the command-line client of wfvaultd: parses the command line,
 * hardens the process (it handles secrets), runs one command and turns its
 * outcome into one line on stderr and an exit status.
 */
#include <sys/prctl.h>
#include <sys/resource.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "wfvault.h"

static int	cmd_help(struct cli_args *, struct cli_error *);

static const struct cli_command commands[] = {
	{ "put", 1, 2, CLI_OPT_CAS | CLI_OPT_FILE | CLI_OPT_JSON |
	    CLI_OPT_REPLACE | CLI_OPT_INTEGRATIONS, cmd_put,
	    "put TENANT FIELD, or put TENANT --json",
	    "  put TENANT FIELD [--cas N] [--json]\n"
	    "        store one value read from stdin (one trailing newline\n"
	    "        dropped), or typed at a prompt without echo on a terminal\n"
	    "  put TENANT FIELD --file PATH [--cas N] [--json]\n"
	    "        store the contents of PATH (one trailing newline\n"
	    "        dropped); PATH - is stdin\n"
	    "  put TENANT --json [--replace] [--cas N]\n"
	    "        merge a JSON object of fields read from stdin, atomically;\n"
	    "        a null value removes that field, --replace replaces the\n"
	    "        whole config\n"
	    "  put TENANT [FIELD|--json] --integrations ID,ID [--replace]\n"
	    "        record the catalog's integrations the tenant uses (added\n"
	    "        to its list; with --json --replace, the whole list); its\n"
	    "        writes are then checked against their formats\n" },
	{ "get", 1, 2, CLI_OPT_JSON | CLI_OPT_VERSION | CLI_OPT_NO_NEWLINE,
	    cmd_get, "get TENANT [FIELD]",
	    "  get TENANT FIELD [--version N] [-n] [--json]\n"
	    "        print one value (a string raw, else compact JSON) and a\n"
	    "        newline; with -n (--no-newline) the value alone\n"
	    "  get TENANT [--version N] [--json]\n"
	    "        print the tenant's config as a JSON object\n" },
	{ "list", 0, 1, CLI_OPT_JSON, cmd_list, "list [PREFIX]",
	    "  list [PREFIX] [--json]\n"
	    "        print the tenant ids (starting with PREFIX), one per line\n" },
	{ "fields", 1, 1, CLI_OPT_JSON, cmd_fields, "fields TENANT",
	    "  fields TENANT [--json]\n"
	    "        print a tenant's field names, one per line\n" },
	{ "rm", 1, 2, CLI_OPT_CAS | CLI_OPT_JSON | CLI_OPT_PURGE |
	    CLI_OPT_YES, cmd_rm,
	    "rm TENANT [FIELD], or rm TENANT --purge",
	    "  rm TENANT [FIELD] [--cas N] [--yes] [--json]\n"
	    "        delete one field, or the whole tenant (asked first when\n"
	    "        stdin is a terminal, unless --yes)\n"
	    "  rm TENANT --purge [--cas N] [--yes] [--json]\n"
	    "        delete the whole tenant and every trace the vault keeps\n"
	    "        of it (no tombstone, no older change-feed entries)\n" },
	{ "status", 0, 0, CLI_OPT_JSON, cmd_status, "status",
	    "  status [--json]\n"
	    "        show the daemon's and the sync targets' status\n" },
	{ "backup", 0, 1, CLI_OPT_JSON, cmd_backup, "backup [NAME]",
	    "  backup [NAME] [--json]\n"
	    "        have wfvaultd write a consistent copy of the store into\n"
	    "        its backup_dir (as NAME, default wfvault-TIME.mdb) and\n"
	    "        print the path\n" },
	{ "rotate-master-key", 0, 0, CLI_OPT_JSON, cmd_rotate_master_key,
	    "rotate-master-key",
	    "  rotate-master-key [--json]\n"
	    "        re-wrap every tenant's data key under the key that\n"
	    "        master_key_next_file names in wfvaultd's configuration\n" },
	{ "rotate-key", 1, 1, CLI_OPT_JSON, cmd_rotate_key,
	    "rotate-key TENANT",
	    "  rotate-key TENANT [--json]\n"
	    "        give TENANT a new data key and re-seal its kept versions\n" },
	{ "history", 1, 1, CLI_OPT_JSON, cmd_history, "history TENANT",
	    "  history TENANT [--json]\n"
	    "        list the tenant's kept versions, newest first: time, uid\n"
	    "        and the field names added (+), changed (~) or removed\n"
	    "        (-); never values\n" },
	{ "rollback", 2, 2, CLI_OPT_CAS | CLI_OPT_JSON, cmd_rollback,
	    "rollback TENANT VERSION",
	    "  rollback TENANT VERSION [--cas N] [--json]\n"
	    "        store version VERSION's fields and integrations again as\n"
	    "        a new version (checked against today's formats)\n" },
	{ "integrations", 0, 0, CLI_OPT_JSON, cmd_integrations,
	    "integrations",
	    "  integrations [--json]\n"
	    "        list the integration catalog: each provider's id, kind,\n"
	    "        title and the fields a tenant needs ((secret) marked)\n" },
	{ "test", 1, CLI_MAX_OPERANDS, CLI_OPT_JSON, cmd_test,
	    "test TENANT [INTEGRATION...]",
	    "  test TENANT [INTEGRATION...] [--json]\n"
	    "        run the catalog's live test of each integration named\n"
	    "        (default: each one whose fields the tenant holds) and\n"
	    "        print pass or FAIL with the HTTP status; exit 7 if one\n"
	    "        failed\n" },
	{ "check", 0, CLI_MAX_OPERANDS, CLI_OPT_JSON, cmd_check,
	    "check [TENANT|PATTERN...]",
	    "  check [TENANT|PATTERN...] [--json]\n"
	    "        say whether each tenant (default: every one you may\n"
	    "        list; a PATTERN has * ? or [) is ready: per integration\n"
	    "        the fields missing (and where to get them), malformed\n"
	    "        (and their format), the last live test; exit 8 if one\n"
	    "        is not ready\n" },
	{ "onboard", 2, CLI_MAX_OPERANDS, CLI_OPT_CAS | CLI_OPT_JSON |
	    CLI_OPT_FROM_ENV | CLI_OPT_PARTIAL | CLI_OPT_TEST, cmd_onboard,
	    "onboard TENANT INTEGRATION...",
	    "  onboard TENANT INTEGRATION... [--partial] [--test] [--cas N]\n"
	    "        record the integrations and ask at the terminal for each\n"
	    "        field the tenant lacks (where to get it, its format; no\n"
	    "        echo for secrets), then store them as one new version\n"
	    "  onboard TENANT INTEGRATION... --from-env FILE|--json [...]\n"
	    "        the same without a terminal: the values from an .env\n"
	    "        FILE or a JSON object on stdin; nothing is stored unless\n"
	    "        every missing field is there and valid (or --partial)\n" },
	{ "import", 1, 2, CLI_OPT_CAS | CLI_OPT_JSON | CLI_OPT_REPLACE |
	    CLI_OPT_DRY_RUN, cmd_import, "import TENANT [FILE|-]",
	    "  import TENANT [FILE|-] [--replace] [--cas N] [--dry-run] [--json]\n"
	    "        store the fields of an .env file (KEY=value, OPENAI_KEY\n"
	    "        becomes openai_key) or a JSON object, read from FILE or\n"
	    "        stdin, as one new version; --dry-run prints the names\n"
	    "        it would add, change or remove, never values\n" },
	{ "export", 1, 1, CLI_OPT_FORMAT | CLI_OPT_FORCE, cmd_export,
	    "export TENANT [--format env|json]",
	    "  export TENANT [--format env|json] [--force]\n"
	    "        print the config as KEY=\"value\" lines (env, the\n"
	    "        default; import reads them back exactly) or a JSON\n"
	    "        object; refused on a terminal unless --force\n" },
	{ "run", 1, 1, CLI_OPT_ONLY, cmd_run,
	    "run TENANT [--only F1,F2] -- CMD [ARGS...]",
	    "  run TENANT [--only F1,F2] -- CMD [ARGS...]\n"
	    "        execute CMD (no shell) with the tenant's fields in its\n"
	    "        environment as upper-case names (FIELD_NAME=value);\n"
	    "        the exit status is CMD's, 127 if it cannot be run\n" },
	{ "help", 0, 1, 0, cmd_help, "help [COMMAND]",
	    "  help [COMMAND]\n"
	    "        show this help\n" },
};
#define NCOMMANDS	(sizeof(commands) / sizeof(commands[0]))

/* Every option; none takes a secret (README.md "Security model"). */
static const struct cli_option {
	const char	*co_name;
	unsigned	 co_bit;	/* CLI_OPT_*; 0 for -s and -h */
	int		 co_value;	/* takes a value */
} options[] = {
	{ "-h", 0, 0 },
	{ "--help", 0, 0 },
	{ "-s", 0, 1 },
	{ "--socket", 0, 1 },
	{ "--cas", CLI_OPT_CAS, 1 },
	{ "--file", CLI_OPT_FILE, 1 },
	{ "--json", CLI_OPT_JSON, 0 },
	{ "--replace", CLI_OPT_REPLACE, 0 },
	{ "--version", CLI_OPT_VERSION, 1 },
	{ "--purge", CLI_OPT_PURGE, 0 },
	{ "--dry-run", CLI_OPT_DRY_RUN, 0 },
	{ "--format", CLI_OPT_FORMAT, 1 },
	{ "--force", CLI_OPT_FORCE, 0 },
	{ "--only", CLI_OPT_ONLY, 1 },
	{ "--integrations", CLI_OPT_INTEGRATIONS, 1 },
	{ "--from-env", CLI_OPT_FROM_ENV, 1 },
	{ "--partial", CLI_OPT_PARTIAL, 0 },
	{ "--test", CLI_OPT_TEST, 0 },
	{ "-n", CLI_OPT_NO_NEWLINE, 0 },
	{ "--no-newline", CLI_OPT_NO_NEWLINE, 0 },
	{ "-y", CLI_OPT_YES, 0 },
	{ "--yes", CLI_OPT_YES, 0 },
	{ NULL, 0, 0 }
};

static const char help_head[] =
    "usage: wfvault [-s SOCKET] COMMAND [OPERANDS] [OPTIONS]\n"
    "\n"
    "The command-line client of wfvaultd, the multi-tenant credential vault.\n"
    "\n"
    "Commands:\n";

static const char help_tail[] =
    "\n"
    "Options (before or after the operands):\n"
    "  -s, --socket PATH  the daemon's socket; else $WFVAULT_SOCKET, else\n"
    "                     " PROTO_DEFAULT_SOCKET "; or ssh://[user@]host\n"
    "                     [:port][/socket] through ssh ($WFVAULT_SSH)\n"
    "  --cas N            put, rm, import, rollback, onboard: only if the\n"
    "                     tenant's current version is N (0: only if it\n"
    "                     does not exist yet)\n"
    "  --file PATH        put: read the value from PATH (at most 1 MiB;\n"
    "                     - is stdin)\n"
    "  --json             machine-readable JSON output (and, for\n"
    "                     put TENANT --json and onboard without\n"
    "                     --from-env, JSON input); errors then\n"
    "                     come as one JSON object on stderr\n"
    "  --replace          put --json, import: replace the whole config\n"
    "  --version N        get: read version N instead of the current one\n"
    "  --purge            rm: remove every trace of the tenant\n"
    "  --dry-run          import: print what would change, store nothing\n"
    "  --format env|json  export: the output format (default env)\n"
    "  --force            export: print secrets to a terminal too\n"
    "  --only F1,F2       run: pass only these fields\n"
    "  --integrations ID,ID  put: the integrations the tenant uses\n"
    "  --from-env FILE    onboard: read the values from an .env file\n"
    "  --partial          onboard: store the valid values even when\n"
    "                     others are missing or malformed\n"
    "  --test             onboard: run the live tests after storing\n"
    "  -n, --no-newline   get TENANT FIELD: no newline after the value\n"
    "  -y, --yes          rm TENANT: do not ask on a terminal\n"
    "  -h, --help         show this help\n"
    "  --version          (alone, without a command) print wfvault's\n"
    "                     version\n"
    "\n"
    "Values are read from stdin, a file or the terminal, never from the\n"
    "command line.\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  other error\n"
    "  2  usage error (an invalid tenant id or field name included)\n"
    "  3  not found\n"
    "  4  permission denied\n"
    "  5  conflict: the --cas version did not match, or a backup of that\n"
    "     name exists\n"
    "  6  daemon unreachable (cannot connect, or the connection was lost)\n"
    "  7  test: a live test failed (also onboard --test)\n"
    "  8  check: a tenant is not ready\n"
    "run exits with CMD's own status, or 127 when CMD cannot be run.\n";

int
cli_fail(struct cli_error *err, int status, const char *fmt, ...)
{
	va_list	ap;

	err->ce_status = status;
	err->ce_code = 0;
	err->ce_kind[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->ce_msg, sizeof(err->ce_msg), fmt, ap);
	va_end(ap);
	return -1;
}

static const struct cli_command *
command_lookup(const char *name)
{
	size_t	i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].cc_name, name) == 0)
			return &commands[i];
	return NULL;
}

/*
 * Whether a word may be echoed in an error: an unknown command or option
 * could be a mistyped secret, so only short plain words are repeated.
 */
static int
word_echoable(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || len > 24)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '-'))
			return 0;
	return 1;
}

/* Parses a decimal version number: digits only, at most INT64_MAX. */
static int
number_parse(const char *opt, const char *s, uint64_t *out,
    struct cli_error *err)
{
	unsigned long long	 n;
	char			*end;

	if (s[0] < '0' || s[0] > '9')
		goto bad;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || n > INT64_MAX)
		goto bad;
	*out = n;
	return 0;
bad:
	return cli_fail(err, CLI_EXIT_USAGE,
	    "%s needs a version number (a non-negative integer)", opt);
}

/* What main does instead of a command (-h, --help, --version). */
#define WANT_HELP	0x01
#define WANT_VERSION	0x02

/*
 * One option at argv[*i].  Long options take their value as "--opt=value"
 * or as the next word.  Sets WANT_HELP in *want for -h/--help, and
 * WANT_VERSION for a --version with nothing after it.
 */
static int
option_parse(int argc, char **argv, int *i, struct cli_args *args, int *want,
    struct cli_error *err)
{
	const struct cli_option	*o;
	const char		*arg = argv[*i], *name, *eq, *value = NULL;
	size_t			 namelen;
	unsigned		 bit;
	int			 takes_value;

	name = arg;
	if ((eq = strchr(arg, '=')) != NULL && arg[1] == '-') {
		namelen = eq - arg;
		value = eq + 1;
	} else
		namelen = strlen(arg);

	for (o = options; o->co_name != NULL; o++)
		if (namelen == strlen(o->co_name) &&
		    strncmp(name, o->co_name, namelen) == 0)
			break;
	if (o->co_name == NULL) {
		if (word_echoable(name, namelen))
			return cli_fail(err, CLI_EXIT_USAGE,
			    "unknown option '%.*s' (see 'wfvault help')",
			    (int)namelen, name);
		return cli_fail(err, CLI_EXIT_USAGE,
		    "unknown option (see 'wfvault help')");
	}
	bit = o->co_bit;
	takes_value = o->co_value;
	if (strcmp(o->co_name, "-h") == 0 || strcmp(o->co_name, "--help") == 0)
		*want |= WANT_HELP;

	if (!takes_value && value != NULL)
		return cli_fail(err, CLI_EXIT_USAGE, "%.*s takes no value",
		    (int)namelen, name);
	if (takes_value && value == NULL) {
		/* Whether it is get's or the program's is known at the end. */
		if (*i + 1 >= argc && bit == CLI_OPT_VERSION) {
			*want |= WANT_VERSION;
			return 0;
		}
		if (*i + 1 >= argc)
			return cli_fail(err, CLI_EXIT_USAGE,
			    "%.*s needs a value", (int)namelen, name);
		value = argv[++*i];
	}
	args->ca_given |= bit;

	switch (bit) {
	case 0:
		if (takes_value) {
			if (*value == '\0')
				return cli_fail(err, CLI_EXIT_USAGE,
				    "the socket path is empty");
			args->ca_socket = value;
		}
		break;
	case CLI_OPT_CAS:
		return number_parse("--cas", value, &args->ca_cas, err);
	case CLI_OPT_VERSION:
		return number_parse("--version", value, &args->ca_version,
		    err);
	case CLI_OPT_FILE:
		if (*value == '\0')
			return cli_fail(err, CLI_EXIT_USAGE,
			    "--file needs a path");
		args->ca_file = value;
		break;
	case CLI_OPT_JSON:
		args->ca_json = 1;
		break;
	case CLI_OPT_REPLACE:
		args->ca_replace = 1;
		break;
	case CLI_OPT_PURGE:
		args->ca_purge = 1;
		break;
	case CLI_OPT_DRY_RUN:
		args->ca_dry_run = 1;
		break;
	case CLI_OPT_FORMAT:
		if (strcmp(value, "env") != 0 && strcmp(value, "json") != 0)
			return cli_fail(err, CLI_EXIT_USAGE,
			    "--format is env or json");
		args->ca_format = value;
		break;
	case CLI_OPT_FORCE:
		args->ca_force = 1;
		break;
	case CLI_OPT_ONLY:
		args->ca_only = value;
		break;
	case CLI_OPT_INTEGRATIONS:
		args->ca_integrations = value;
		break;
	case CLI_OPT_NO_NEWLINE:
		args->ca_no_newline = 1;
		break;
	case CLI_OPT_FROM_ENV:
		if (*value == '\0')
			return cli_fail(err, CLI_EXIT_USAGE,
			    "--from-env needs a path");
		args->ca_from_env = value;
		break;
	case CLI_OPT_PARTIAL:
		args->ca_partial = 1;
		break;
	case CLI_OPT_TEST:
		args->ca_test = 1;
		break;
	case CLI_OPT_YES:
		args->ca_yes = 1;
		break;
	}
	return 0;
}

/* A word that is neither an option nor the command: an operand. */
static void
operand_add(char *arg, struct cli_args *args, int *nextra)
{
	const struct cli_command	*cmd = args->ca_cmd;

	if (args->ca_noperands < cmd->cc_max) {
		args->ca_operands[args->ca_noperands++] = arg;
		return;
	}
	/*
	 * An extra word after put TENANT FIELD is most likely the secret:
	 * blank it in our argv so /proc/PID/cmdline stops showing it.
	 */
	if (strcmp(cmd->cc_name, "put") == 0)
		explicit_bzero(arg, strlen(arg));
	(*nextra)++;
}

/* Options may come before or after the command and its operands. */
static int
args_parse(int argc, char **argv, struct cli_args *args, int *want,
    struct cli_error *err)
{
	const struct cli_command	*cmd;
	const struct cli_option		*o;
	char				*arg;
	int				 i, dashdash = 0, nextra = 0, failed = 0;
	struct cli_error		 first = { 0, "", 0, "" }, later;

	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (!dashdash && strcmp(arg, "--") == 0) {
			/* run: the rest is the command, options included. */
			if (args->ca_cmd != NULL &&
			    strcmp(args->ca_cmd->cc_name, "run") == 0) {
				args->ca_exec = argv + i + 1;
				args->ca_nexec = argc - i - 1;
				break;
			}
			dashdash = 1;
			continue;
		}
		if (!dashdash && arg[0] == '-' && arg[1] != '\0') {
			/* Keep looking for -h after an error. */
			if (option_parse(argc, argv, &i, args, want,
			    failed ? &later : &first) == -1)
				failed = 1;
			continue;
		}
		if (args->ca_cmd == NULL) {
			if ((cmd = command_lookup(arg)) != NULL)
				args->ca_cmd = cmd;
			else if (!failed) {
				failed = 1;
				if (word_echoable(arg, strlen(arg)))
					cli_fail(&first, CLI_EXIT_USAGE,
					    "unknown command '%s' (see "
					    "'wfvault help')", arg);
				else
					cli_fail(&first, CLI_EXIT_USAGE,
					    "unknown command (see "
					    "'wfvault help')");
			}
			continue;
		}
		operand_add(arg, args, &nextra);
	}
	if (*want & WANT_HELP)
		return 0;
	if (failed) {
		*err = first;
		return -1;
	}
	/* "wfvault --version" alone; after a command it is get's option. */
	if (*want & WANT_VERSION) {
		if (args->ca_cmd == NULL)
			return 0;
		return cli_fail(err, CLI_EXIT_USAGE, "--version needs a value");
	}

	if ((cmd = args->ca_cmd) == NULL)
		return cli_fail(err, CLI_EXIT_USAGE,
		    "no command given (see 'wfvault help')");
	if (nextra > 0 && strcmp(cmd->cc_name, "put") == 0)
		return cli_fail(err, CLI_EXIT_USAGE,
		    "put takes the value on stdin or --file, never on the "
		    "command line");
	if (nextra > 0 || args->ca_noperands < cmd->cc_min)
		return cli_fail(err, CLI_EXIT_USAGE,
		    "usage: wfvault %s (see 'wfvault help %s')",
		    cmd->cc_synopsis, cmd->cc_name);
	if (args->ca_given & ~cmd->cc_opts) {
		for (o = options; o->co_name != NULL; o++)
			if (args->ca_given & ~cmd->cc_opts & o->co_bit)
				break;
		return cli_fail(err, CLI_EXIT_USAGE,
		    "%s does not take %s (see 'wfvault help %s')",
		    cmd->cc_name, o->co_name, cmd->cc_name);
	}
	return 0;
}

static int
help_print(const struct cli_command *only, struct cli_error *err)
{
	size_t	i;

	if (only != NULL) {
		if (out_printf(err, "usage: wfvault [-s SOCKET] %s ...\n%s",
		    only->cc_name, only->cc_usage) == -1)
			return -1;
		return out_puts(help_tail, err);
	}
	if (out_puts(help_head, err) == -1)
		return -1;
	for (i = 0; i < NCOMMANDS; i++)
		if (out_puts(commands[i].cc_usage, err) == -1)
			return -1;
	return out_puts(help_tail, err);
}

static int
cmd_help(struct cli_args *args, struct cli_error *err)
{
	const struct cli_command	*cmd = NULL;
	const char			*name;

	if (args->ca_noperands == 1) {
		name = args->ca_operands[0];
		if ((cmd = command_lookup(name)) == NULL) {
			if (word_echoable(name, strlen(name)))
				return cli_fail(err, CLI_EXIT_USAGE,
				    "unknown command '%s' (see "
				    "'wfvault help')", name);
			return cli_fail(err, CLI_EXIT_USAGE,
			    "unknown command (see 'wfvault help')");
		}
	}
	return help_print(cmd, err);
}

/*
 * Whether --json is on the command line (before a "--"), decided apart
 * from the parser so that a usage error found before or after it is
 * reported as JSON too.
 */
static int
json_wanted(int argc, char **argv)
{
	int	i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--json") == 0)
			return 1;
	}
	return 0;
}

/*
 * The error as one line of JSON on stderr (README.md "Exit codes"):
 * {"error":{"code":N,"kind":K,"message":M,"exit":S}}, code and kind only
 * when the daemon sent them.  Falls back to the text line if jansson
 * cannot build it.
 */
static void
error_print_json(const struct cli_error *err)
{
	json_t	*e, *top;
	char	*s = NULL;

	if ((e = json_object()) == NULL ||
	    (err->ce_code != 0 &&
	    json_object_set_new(e, "code", json_integer(err->ce_code)) == -1) ||
	    (err->ce_kind[0] != '\0' &&
	    json_object_set_new(e, "kind", json_string(err->ce_kind)) == -1) ||
	    json_object_set_new(e, "message", json_string(err->ce_msg)) == -1 ||
	    json_object_set_new(e, "exit", json_integer(err->ce_status)) == -1) {
		json_decref(e);
		goto text;
	}
	if ((top = json_pack("{s:o}", "error", e)) == NULL)
		goto text;
	s = json_dumps(top, JSON_COMPACT);
	json_decref(top);
	if (s == NULL)
		goto text;
	fprintf(stderr, "%s\n", s);
	free(s);
	return;
text:
	fprintf(stderr, "wfvault: %s\n", err->ce_msg);
}

/*
 * wfvault holds secrets in memory: no core dumps, no ptrace by other users'
 * processes, and a closed stdout is an error to report, not a signal.
 */
static void
harden(void)
{
	struct rlimit	rl = { 0, 0 };

	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)signal(SIGPIPE, SIG_IGN);
}

int
main(int argc, char **argv)
{
	struct cli_args		 args;
	struct cli_error	 err = { CLI_EXIT_OK, "", 0, "" };
	const char		*env;
	int			 want = 0;

	proto_json_init();
	harden();
	memset(&args, 0, sizeof(args));

	if (args_parse(argc, argv, &args, &want, &err) == -1)
		goto done;
	if (want & WANT_HELP) {
		if (help_print(args.ca_cmd == NULL ||
		    strcmp(args.ca_cmd->cc_name, "help") == 0 ? NULL :
		    args.ca_cmd, &err) == -1)
			goto done;
	} else if (want & WANT_VERSION) {
		if (out_printf(&err, "wfvault %s\n", PROTO_SERVER_VERSION) ==
		    -1)
			goto done;
	} else {
		if (args.ca_socket == NULL) {
			env = getenv("WFVAULT_SOCKET");
			args.ca_socket = env != NULL && *env != '\0' ? env :
			    PROTO_DEFAULT_SOCKET;
		}
		if (args.ca_cmd->cc_run(&args, &err) == -1)
			goto done;
	}
	(void)out_flush(&err);

done:
	out_wipe();
	if (err.ce_status != CLI_EXIT_OK && err.ce_msg[0] != '\0') {
		if (json_wanted(argc, argv))
			error_print_json(&err);
		else
			fprintf(stderr, "wfvault: %s\n", err.ce_msg);
	}
	return err.ce_status;
}
