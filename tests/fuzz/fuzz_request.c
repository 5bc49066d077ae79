/*
 * libFuzzer target for the protocol decoders: bytes are split into lines
 * and fed through request parsing, the daemon's parameter checks, the
 * reply builders and the encoder as the daemon does, then through the
 * client's reader.
 */

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "wfvaultd.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Small, so that TOO_LONG is reached as well as whole lines. */
#define FUZZ_MAX_LINE	4096

/* Crashes (which libFuzzer reports) when an invariant does not hold. */
static void
fuzz_check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* A message must encode as one line that parses back to itself. */
static void
fuzz_encode(json_t *msg)
{
	json_error_t	 je;
	json_t		*back;
	char		*buf;
	size_t		 len;

	if (msg == NULL)
		return;
	if ((buf = proto_encode(msg, &len)) != NULL) {
		fuzz_check(len > 0 && buf[len - 1] == '\n');
		fuzz_check(memchr(buf, '\n', len) == buf + len - 1);
		fuzz_check(proto_frame_find(buf, len, len) == (ssize_t)len - 1);
		back = json_loadb(buf, len - 1, JSON_REJECT_DUPLICATES, &je);
		fuzz_check(back != NULL && json_equal(back, msg));
		json_decref(back);
		proto_buf_free(buf, len);
	}
	json_decref(msg);
}

/*
 * The daemon's parameter checks (rpc_args.c), called as rpc.c calls them,
 * and what they promise the handlers when they pass.
 */
static void
fuzz_params(struct proto_request *req)
{
	struct rpc_args	 a;
	char		 err[256];
	const char	*key;
	json_t		*v;

	err[0] = '\0';
	if (rpc_args_check(req->pr_method->pm_id, req->pr_params, &a, err,
	    sizeof(err)) == -1) {
		fuzz_check(err[0] != '\0' && strchr(err, '\n') == NULL);
		return;
	}
	/* rpc_allowed checks the tenant of exactly these methods. */
	fuzz_check(req->pr_method->pm_tenant == (a.ra_tenant != NULL));
	if (a.ra_tenant != NULL)
		fuzz_check(proto_tenant_valid(a.ra_tenant, NULL, 0) == 0);
	if (a.ra_cursor != NULL)
		fuzz_check(proto_tenant_valid(a.ra_cursor, NULL, 0) == 0);
	if (a.ra_target != NULL)
		fuzz_check(proto_tenant_valid(a.ra_target, NULL, 0) == 0);
	if (a.ra_prefix != NULL)
		fuzz_check(proto_prefix_valid(a.ra_prefix, "prefix", NULL,
		    0) == 0);
	if (a.ra_field != NULL)
		fuzz_check(proto_field_valid(a.ra_field, NULL, 0) == 0);
	if (a.ra_name != NULL)
		fuzz_check(proto_backup_name_valid(a.ra_name, NULL, 0) == 0);
	if (a.ra_fields != NULL) {
		fuzz_check(json_is_object(a.ra_fields) &&
		    json_object_size(a.ra_fields) > 0);
		json_object_foreach(a.ra_fields, key, v)
			fuzz_check(proto_field_valid(key, NULL, 0) == 0);
	}
	fuzz_check(!a.ra_has_cas || a.ra_cas <= INT64_MAX);
	fuzz_check(a.ra_field == NULL || !a.ra_purge);
}

/* The daemon's side of one line: parse, check, answer, encode. */
static void
fuzz_line(const char *line, size_t len)
{
	struct proto_request	 req = PROTO_REQUEST_INIT;
	char			 err[256];
	int			 r;

	err[0] = '\0';
	r = proto_request_parse(line, len, &req, err, sizeof(err));
	if (r != 0) {
		fuzz_check(r == PROTO_E_PARSE || r == PROTO_E_INVALID_REQUEST ||
		    r == PROTO_E_METHOD || r == PROTO_E_PARAMS ||
		    r == PROTO_E_INTERNAL);
		fuzz_check(err[0] != '\0' && strchr(err, '\n') == NULL);
		fuzz_check(proto_err_code(proto_err_kind(r)) == r);
		fuzz_encode(proto_reply_error(req.pr_id, r, err, NULL));
	} else {
		fuzz_check(req.pr_method != NULL &&
		    json_is_object(req.pr_params));
		fuzz_check(req.pr_id == NULL || json_is_integer(req.pr_id) ||
		    json_is_string(req.pr_id));
		fuzz_params(&req);
		fuzz_encode(proto_reply_result(req.pr_id,
		    json_deep_copy(req.pr_params)));
		fuzz_encode(proto_notification(req.pr_method->pm_name,
		    json_incref(req.pr_params)));
	}
	proto_request_release(&req);
}

/* The client's side: the same bytes as if wfvaultd had sent them. */
static void
fuzz_client(const uint8_t *data, size_t size)
{
	struct proto_client	 c = PROTO_CLIENT_INIT;
	struct proto_error	 err;
	json_t			*res;
	int			 sv[2], i, r;

	/* The input must fit in the socket buffer: nobody reads the rest. */
	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		return;
	if (size > 0 && send(sv[1], data, size, MSG_DONTWAIT) !=
	    (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	shutdown(sv[1], SHUT_WR);
	c.pc_fd = sv[0];
	c.pc_max = FUZZ_MAX_LINE;
	c.pc_timeout_ms = 1000;
	r = proto_client_call(&c, "hello", NULL, &res, &err);
	if (r == PROTO_CALL_OK)
		json_decref(res);
	else
		fuzz_check(strchr(err.pe_message, '\n') == NULL);
	for (i = 0; i < 64 && c.pc_fd != -1; i++) {
		if (proto_client_next(&c, 0, &res, &err) != PROTO_CALL_OK)
			break;
		fuzz_check(json_is_object(res));
		json_decref(res);
	}
	proto_client_close(&c);
	close(sv[1]);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	proto_json_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*p = (const char *)data;
	size_t		 left = size;
	ssize_t		 n;

	/* Every line as the daemon's reader would cut them. */
	while (left > 0) {
		n = proto_frame_find(p, left, FUZZ_MAX_LINE);
		if (n == PROTO_FRAME_TOO_LONG || n == PROTO_FRAME_MORE) {
			/* The last, unterminated line is parsed all the same. */
			if (left <= FUZZ_MAX_LINE)
				fuzz_line(p, left);
			break;
		}
		fuzz_line(p, (size_t)n);
		p += n + 1;
		left -= (size_t)n + 1;
	}
	fuzz_client(data, size);
	return 0;
}
