/*
 * wfvault's private header: the parsed command line, the error a command
 * hands back to main, and what each of the CLI's files offers the others.
 */
#ifndef WFVAULT_H
#define WFVAULT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto.h"

/* Exit statuses of wfvault (README.md "Exit codes"). */
#define CLI_EXIT_OK		0
#define CLI_EXIT_ERROR		1
#define CLI_EXIT_USAGE		2
#define CLI_EXIT_NOT_FOUND	3
#define CLI_EXIT_DENIED		4
#define CLI_EXIT_CONFLICT	5
#define CLI_EXIT_UNREACHABLE	6
/* wfvault test: a live test failed (its line says which and why). */
#define CLI_EXIT_TEST_FAILED	7
/* wfvault check: a tenant is not ready (its lines say why). */
#define CLI_EXIT_NOT_READY	8

/* The largest value put accepts from stdin, a file or the terminal. */
#define CLI_VALUE_MAX		(1024 * 1024)
/* The largest JSON document put --json accepts on stdin. */
#define CLI_JSON_MAX		(1024 * 1024)
/* Per read/write on the daemon's socket, so a wedged daemon cannot hang us. */
#define CLI_TIMEOUT_MS		60000

/*
 * What went wrong, for main to print and exit with.  An empty ce_msg means
 * "exit quietly" (a closed stdout, for one).
 */
struct cli_error {
	int	ce_status;		/* CLI_EXIT_* */
	char	ce_msg[768];
	int	ce_code;		/* the daemon's error code, else 0 */
	char	ce_kind[32];		/* the daemon's error kind, else "" */
};

/* The options a command may accept. */
#define CLI_OPT_CAS	0x01
#define CLI_OPT_FILE	0x02
#define CLI_OPT_JSON	0x04
#define CLI_OPT_REPLACE	0x08
#define CLI_OPT_VERSION	0x10
#define CLI_OPT_PURGE	0x20
/* Those of import, export, run and get -n (cli_script.c). */
#define CLI_OPT_DRY_RUN		0x1000
#define CLI_OPT_FORMAT		0x2000
#define CLI_OPT_FORCE		0x4000
#define CLI_OPT_ONLY		0x8000
#define CLI_OPT_NO_NEWLINE	0x10000
/* rm TENANT without the question on a terminal. */
#define CLI_OPT_YES		0x20000
/* put --integrations (cli_cmd.c). */
#define CLI_OPT_INTEGRATIONS	0x100000
/* onboard (cli_onboard.c). */
#define CLI_OPT_FROM_ENV	0x200000
#define CLI_OPT_PARTIAL		0x400000
#define CLI_OPT_TEST		0x800000

/* test TENANT [INTEGRATION...] takes the most. */
#define CLI_MAX_OPERANDS	32

struct cli_args;

struct cli_command {
	const char	*cc_name;
	int		 cc_min;	/* operands */
	int		 cc_max;
	unsigned	 cc_opts;	/* CLI_OPT_* accepted */
	int		(*cc_run)(struct cli_args *, struct cli_error *);
	const char	*cc_synopsis;	/* one line, for usage errors */
	const char	*cc_usage;	/* lines for the help text */
};

/* The command line once parsed; the strings are borrowed from argv. */
struct cli_args {
	const char			*ca_socket;
	const struct cli_command	*ca_cmd;
	const char			*ca_operands[CLI_MAX_OPERANDS];
	int				 ca_noperands;
	unsigned			 ca_given;	/* CLI_OPT_* seen */
	const char			*ca_file;
	uint64_t			 ca_cas;
	uint64_t			 ca_version;
	int				 ca_json;
	int				 ca_replace;
	int				 ca_purge;
	const char			*ca_format;	/* export */
	const char			*ca_only;	/* run */
	const char			*ca_integrations; /* put: ID,ID */
	int				 ca_dry_run;
	int				 ca_force;
	int				 ca_no_newline;
	int				 ca_yes;	/* rm */
	char				**ca_exec;	/* run: after "--" */
	int				 ca_nexec;
	const char			*ca_from_env;	/* onboard */
	int				 ca_partial;	/* onboard */
	int				 ca_test;	/* onboard */
};

/* wfvault.c */
/* Fills err and returns -1, so callers can write "return cli_fail(...)". */
/*
 * A tenant id operand of the commands that never repeat it (history,
 * run, onboard, test: a misplaced word may be a secret): 0, or -1 with a
 * usage error that does not echo it.
 */
int	cli_tenant_check(const char *tenant, struct cli_error *err);
int	cli_fail(struct cli_error *err, int status, const char *fmt, ...)
	    __attribute__((__format__(printf, 3, 4)));

/* cli_cmd.c */
int	cmd_put(struct cli_args *, struct cli_error *);
int	cmd_get(struct cli_args *, struct cli_error *);
int	cmd_list(struct cli_args *, struct cli_error *);
int	cmd_fields(struct cli_args *, struct cli_error *);
int	cmd_rm(struct cli_args *, struct cli_error *);
int	cmd_status(struct cli_args *, struct cli_error *);
int	cmd_backup(struct cli_args *, struct cli_error *);
int	cmd_rotate_master_key(struct cli_args *, struct cli_error *);
int	cmd_rotate_key(struct cli_args *, struct cli_error *);

/* cli_catalog.c */
int	cmd_integrations(struct cli_args *, struct cli_error *);
/*
 * Whether an operand meant as an integration id may be repeated in an
 * error: a short plain word, as the catalog's ids are; anything else may
 * be a secret typed in the wrong place.
 */
int	cli_id_echoable(const char *s);
/* cli_test.c */
int	cmd_test(struct cli_args *, struct cli_error *);
/* cli_history.c */
int	cmd_history(struct cli_args *, struct cli_error *);
int	cmd_rollback(struct cli_args *, struct cli_error *);
/*
 * Runs the catalog's live tests for tenant over c (an open connection,
 * left open): those of the integrations named in ids (an array of id
 * strings; NULL or empty: each one with a test whose fields the tenant
 * all holds), and records each pass or fail in wfvaultd with test_result
 * for the version get returned (when that fails, one warning on stderr,
 * nothing else changes).  *results is a new array of {"integration",
 * "result": "pass"|"fail"|"skipped", "status": N|null, "reason"}, in
 * the order run.  Returns the number of failed tests (0: all passed or
 * were skipped), or -1 with err filled (*results NULL): a usage error
 * for an id not in the catalog, not found when nothing can be tested,
 * the daemon's errors.  Prints nothing on stdout.
 */
int	test_run(struct proto_client *c, const char *tenant, json_t *ids,
	    json_t **results, struct cli_error *err);
/* cli_check.c */
int	cmd_check(struct cli_args *, struct cli_error *);
/* cli_onboard.c */
int	cmd_onboard(struct cli_args *, struct cli_error *);
/* cli_dotenv.c */
/*
 * Parses an .env text into *out, a new object of string fields (names
 * lower-cased, each a valid field name, none twice).  0, or -1 with err
 * naming the line, never the value.
 */
int	env_parse(const char *buf, size_t len, json_t **out,
	    struct cli_error *err);

/* cli_script.c */
int	cmd_import(struct cli_args *, struct cli_error *);
int	cmd_export(struct cli_args *, struct cli_error *);
int	cmd_run(struct cli_args *, struct cli_error *);

/* cli_conn.c */
/* Connects to args->ca_socket; on failure err says what to do (exit 6). */
int	conn_open(struct cli_args *args, struct proto_client *c,
	    struct cli_error *err);
/*
 * Calls method(params) (params stolen) and maps a failure to an exit
 * status and message in err.  *result is a new reference on success.
 */
int	conn_call(struct proto_client *c, const char *method, json_t *params,
	    json_t **result, struct cli_error *err);
/*
 * Connects, makes one conn_call (params stolen; NULL: out of memory) and
 * closes.  timeout_ms > 0 waits that long for the reply instead of the
 * client's default.
 */
int	conn_call_once(struct cli_args *args, const char *method,
	    json_t *params, int timeout_ms, json_t **result,
	    struct cli_error *err);

/* cli_input.c */
/*
 * A value read for put: v_buf is malloc'd, holds v_len bytes plus a NUL,
 * and is wiped by value_free().
 */
struct value {
	char	*v_buf;
	size_t	 v_len;
	size_t	 v_cap;
};
#define VALUE_INIT { NULL, 0, 0 }

/* What tty_read_line read. */
#define TTY_LINE_OK	0
#define TTY_LINE_EOF	1	/* ^D on an empty line */
#define TTY_LINE_LONG	2	/* longer than cap - 1 bytes: nothing kept */
#define TTY_LINE_SIGNAL	3	/* *signo: the caller wipes, then raises it */
/*
 * Writes prompt to ofd and reads one line from the terminal fd into buf
 * (cap bytes; NUL-terminated, without the newline, length in *lenp), with
 * echo off unless echo.  The terminal and the signal handlers are as
 * before when it returns; a stop (^Z) prompts again.  Returns TTY_LINE_*,
 * or -1 with errno set.
 */
int	tty_read_line(int fd, int ofd, const char *prompt, int echo, char *buf,
	    size_t cap, size_t *lenp, int *signo);
/* Writes s to the terminal fd, best effort (a prompt is not essential). */
void	tty_write(int fd, const char *s);

/*
 * Reads the value of tenant.field from path (when not NULL), else stdin,
 * else (stdin a terminal) a prompt without echo on /dev/tty.  One trailing
 * newline is dropped; an empty value, one over CLI_VALUE_MAX bytes and one
 * that is not UTF-8 text are refused.
 */
int	value_read(struct value *v, const char *path, const char *tenant,
	    const char *field, struct cli_error *err);
/*
 * Reads all of stdin (at most max bytes, else a too-large error) into v,
 * without the text checks.
 */
int	value_read_stdin(struct value *v, size_t max, struct cli_error *err);
/*
 * Reads all of path (at most max bytes, else a too-large error) into v,
 * without the text checks.
 */
int	value_read_file(struct value *v, const char *path, size_t max,
	    struct cli_error *err);
/* Wipes and frees v's buffer; v is VALUE_INIT afterwards. */
void	value_free(struct value *v);
/* 1 when buf[0..len) is UTF-8 without NUL bytes (RFC 3629), else 0. */
int	value_utf8_valid(const char *buf, size_t len);

/* cli_output.c */
/*
 * Buffered writes to stdout through a buffer of our own that is wiped at
 * the end (values pass through it).  Each returns 0, or -1 with err set.
 */
int	out_write(const void *buf, size_t len, struct cli_error *err);
int	out_puts(const char *s, struct cli_error *err);
int	out_printf(struct cli_error *err, const char *fmt, ...)
	    __attribute__((__format__(printf, 2, 3)));
/* Prints json (JSON_* flags of jansson) and a newline. */
int	out_json(json_t *json, size_t flags, struct cli_error *err);
/* The same without the newline. */
int	out_json_raw(json_t *json, size_t flags, struct cli_error *err);
/* Writes out what is buffered. */
int	out_flush(struct cli_error *err);
/* Wipes the output buffer; nothing is written. */
void	out_wipe(void);

#endif /* WFVAULT_H */
