/*
 * wfvault's connection to the daemon: connects and calls through proto/,
 * and turns each failure into an exit status and a message that says what
 * to do about it.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "wfvault.h"

/* The daemon's message on one line, without control characters. */
static void
message_clean(char *dst, size_t len, const char *src)
{
	size_t	i;

	for (i = 0; i + 1 < len && src[i] != '\0'; i++)
		dst[i] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ?
		    '?' : src[i];
	if (len > 0)
		dst[i] = '\0';
}

int
conn_open(struct cli_args *args, struct proto_client *c,
    struct cli_error *err)
{
	struct proto_error	 pe;
	struct stat		 st;
	const char		*hint;
	char			 msg[sizeof(pe.pe_message)];

	c->pc_timeout_ms = CLI_TIMEOUT_MS;
	memset(&pe, 0, sizeof(pe));
	if (proto_client_connect(c, args->ca_socket, &pe) == PROTO_CALL_OK)
		return 0;

	/* Look at the socket ourselves to say which fix is likely. */
	if (proto_client_is_ssh(args->ca_socket))
		hint = "does `ssh HOST` work non-interactively? see "
		    "\"Remote clients over SSH\" in the README";
	else if (stat(args->ca_socket, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    access(args->ca_socket, W_OK) == -1 && errno == EACCES)
		hint = "you may not use this socket: ask to be added to its "
		    "group, see socket_group in wfvaultd's config";
	else
		hint = "is wfvaultd running? set -s or $WFVAULT_SOCKET";
	message_clean(msg, sizeof(msg), pe.pe_message[0] != '\0' ?
	    pe.pe_message : "cannot connect");
	return cli_fail(err, CLI_EXIT_UNREACHABLE, "%s (%s)", msg, hint);
}

/* JSON-RPC and wfvault error codes to exit statuses. */
static int
conn_status(int code)
{
	switch (code) {
	case PROTO_E_PARAMS:
		return CLI_EXIT_USAGE;
	case PROTO_E_NOT_FOUND:
		return CLI_EXIT_NOT_FOUND;
	case PROTO_E_DENIED:
		return CLI_EXIT_DENIED;
	case PROTO_E_CONFLICT:
		return CLI_EXIT_CONFLICT;
	default:
		/* too_large, unavailable, integrity, internal, ... */
		return CLI_EXIT_ERROR;
	}
}

int
conn_call(struct proto_client *c, const char *method, json_t *params,
    json_t **result, struct cli_error *err)
{
	struct proto_error	pe;
	char			msg[sizeof(pe.pe_message)];
	int			rv;

	*result = NULL;
	memset(&pe, 0, sizeof(pe));
	rv = proto_client_call(c, method, params, result, &pe);
	if (rv == PROTO_CALL_OK) {
		if (*result != NULL && json_is_object(*result))
			return 0;
		json_decref(*result);
		*result = NULL;
		return cli_fail(err, CLI_EXIT_ERROR,
		    "wfvaultd sent an unexpected reply to %s", method);
	}
	if (rv == PROTO_CALL_REMOTE) {
		if (pe.pe_message[0] != '\0')
			message_clean(msg, sizeof(msg), pe.pe_message);
		else
			snprintf(msg, sizeof(msg), "%s failed: %s", method,
			    pe.pe_kind[0] != '\0' ? pe.pe_kind : "error");
		(void)cli_fail(err, conn_status(pe.pe_code), "%s", msg);
		/* For --json's error object on stderr. */
		err->ce_code = pe.pe_code;
		message_clean(err->ce_kind, sizeof(err->ce_kind), pe.pe_kind);
		return -1;
	}
	message_clean(msg, sizeof(msg), pe.pe_message[0] != '\0' ?
	    pe.pe_message : "lost the connection to wfvaultd");
	return cli_fail(err, CLI_EXIT_UNREACHABLE,
	    "%s (did wfvaultd stop? see its log)", msg);
}

int
conn_call_once(struct cli_args *args, const char *method, json_t *params,
    int timeout_ms, json_t **result, struct cli_error *err)
{
	struct proto_client	c = PROTO_CLIENT_INIT;
	int			rv;

	*result = NULL;
	if (params == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	if (conn_open(args, &c, err) == -1) {
		json_decref(params);
		return -1;
	}
	if (timeout_ms > 0)
		c.pc_timeout_ms = timeout_ms;
	rv = conn_call(&c, method, params, result, err);
	proto_client_close(&c);
	return rv;
}
