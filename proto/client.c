/* The blocking client connection that wfvault and wfvault-sync use. */

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "proto_priv.h"
#include "util.h"

/* First size of the read buffer; it doubles up to pc_max + 1. */
#define CLIENT_BUF_START	4096
/* pe_kind of a transport failure (pe_code 0). */
#define CLIENT_IO_KIND		"io_error"

static void client_disconnect(struct proto_client *);
static void client_error(struct proto_error *, int, const char *,
    const char *, ...) __attribute__((__format__(printf, 4, 5)));

static void
client_error(struct proto_error *err, int code, const char *kind,
    const char *fmt, ...)
{
	char	tmp[sizeof(err->pe_message)];
	va_list	ap;

	if (err == NULL)
		return;
	err->pe_code = code;
	snprintf(err->pe_kind, sizeof(err->pe_kind), "%s", kind);
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	proto_line_copy(err->pe_message, sizeof(err->pe_message), tmp);
}

/*
 * A transport or protocol failure: the stream can no longer be trusted to
 * be in step, so the connection is closed (later calls say so).  Queued
 * notifications stay readable.
 */
static void client_fail(struct proto_client *, struct proto_error *,
    const char *, ...) __attribute__((__format__(printf, 3, 4)));

static void
client_fail(struct proto_client *c, struct proto_error *err,
    const char *fmt, ...)
{
	char	tmp[sizeof(err->pe_message)];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	client_error(err, 0, CLIENT_IO_KIND, "%s", tmp);
	client_disconnect(c);
}

/* The deadline timeout_ms from now; -1 (none) for a negative timeout. */
static int64_t
client_deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	return util_now_ms() + timeout_ms;
}

/* Waits for events on fd until deadline: 1 ready, 0 timed out, -1 error. */
static int
client_poll(int fd, short events, int64_t deadline)
{
	struct pollfd	pfd;
	int64_t		left;
	int		n, wait;

	for (;;) {
		wait = -1;
		if (deadline >= 0) {
			left = deadline - util_now_ms();
			if (left < 0)
				left = 0;
			wait = left > INT_MAX ? INT_MAX : (int)left;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		if ((n = poll(&pfd, 1, wait)) > 0)
			return 1;
		if (n == 0) {
			if (deadline >= 0 && util_now_ms() >= deadline)
				return 0;
			continue;
		}
		if (errno != EINTR)
			return -1;
	}
}

/* The longest line accepted, within what proto_frame_find can report. */
static size_t
client_max(const struct proto_client *c)
{
	size_t	max;

	max = c->pc_max != 0 ? c->pc_max : PROTO_DEFAULT_MAX_MESSAGE * 16;
	if (max > (size_t)SSIZE_MAX - 1)
		max = (size_t)SSIZE_MAX - 1;
	return max;
}

int
proto_client_connect(struct proto_client *c, const char *path,
    struct proto_error *err)
{
	struct sockaddr_un	 sun;
	socklen_t		 slen;
	int			 fd, soerr;

	/* A new connection: nothing queued on an old one still applies. */
	proto_client_close(c);
	if (path == NULL)
		path = PROTO_DEFAULT_SOCKET;
	if (proto_client_is_ssh(path)) {
		if (proto_client_ssh_connect(path, c->pc_timeout_ms, &fd,
		    &c->pc_ssh_pid, err != NULL ? err->pe_message : NULL,
		    err != NULL ? sizeof(err->pe_message) : 0) == -1) {
			client_error(err, 0, CLIENT_IO_KIND, "%s",
			    err != NULL ? err->pe_message : "");
			return PROTO_CALL_IO;
		}
		goto connected;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		client_error(err, 0, CLIENT_IO_KIND, "cannot connect to "
		    "wfvaultd: socket path too long (%zu bytes; at most %zu)",
		    strlen(path), sizeof(sun.sun_path) - 1);
		return PROTO_CALL_IO;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		client_error(err, 0, CLIENT_IO_KIND, "cannot connect to %s: "
		    "socket: %s", path, strerror(errno));
		return PROTO_CALL_IO;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		soerr = errno;
		/* Interrupted, the connect goes on: wait for its outcome. */
		if (soerr == EINTR && client_poll(fd, POLLOUT, -1) == 1) {
			slen = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
			    &slen) == -1)
				soerr = errno;
		}
		if (soerr != 0) {
			client_error(err, 0, CLIENT_IO_KIND, "cannot connect "
			    "to %s: %s", path, strerror(soerr));
			close(fd);
			return PROTO_CALL_IO;
		}
	}
connected:
	c->pc_fd = fd;
	if (c->pc_max == 0)
		c->pc_max = PROTO_DEFAULT_MAX_MESSAGE * 16;
	if (c->pc_next_id < 1)
		c->pc_next_id = 1;
	return PROTO_CALL_OK;
}

/*
 * Sends buf whole.  MSG_DONTWAIT keeps the timeout in force even on a
 * blocking socket; MSG_NOSIGNAL turns SIGPIPE into EPIPE.
 */
static int
client_send_all(struct proto_client *c, const char *buf, size_t len,
    struct proto_error *err)
{
	int64_t	deadline;
	ssize_t	n;
	size_t	off = 0;
	int	r;

	deadline = client_deadline(c->pc_timeout_ms);
	while (off < len) {
		if ((r = client_poll(c->pc_fd, POLLOUT, deadline)) == 0) {
			client_fail(c, err, "timed out sending to wfvaultd");
			return -1;
		} else if (r == -1) {
			client_fail(c, err, "cannot send to wfvaultd: %s",
			    strerror(errno));
			return -1;
		}
		n = send(c->pc_fd, buf + off, len - off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				client_fail(c, err, "connection closed by "
				    "wfvaultd");
			else
				client_fail(c, err, "cannot send to "
				    "wfvaultd: %s", strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/*
 * Makes room to read into.  The old buffer is copied, then wiped, since
 * replies carry secret values.
 */
static int
client_grow(struct proto_client *c, size_t limit, struct proto_error *err)
{
	char	*nbuf;
	size_t	 ncap;

	ncap = c->pc_cap == 0 ? CLIENT_BUF_START : c->pc_cap * 2;
	if (ncap > limit || ncap < c->pc_cap)
		ncap = limit;
	if ((nbuf = malloc(ncap)) == NULL) {
		client_fail(c, err, "out of memory reading from wfvaultd");
		return -1;
	}
	if (c->pc_len > 0)
		memcpy(nbuf, c->pc_buf, c->pc_len);
	if (c->pc_buf != NULL) {
		explicit_bzero(c->pc_buf, c->pc_cap);
		free(c->pc_buf);
	}
	c->pc_buf = nbuf;
	c->pc_cap = ncap;
	return 0;
}

/*
 * Reads the next whole line into *msg (a JSON object, new reference).
 * Returns PROTO_CALL_OK, 1 when deadline passed first, or PROTO_CALL_IO
 * (err filled, connection closed).
 */
static int
client_read_msg(struct proto_client *c, int64_t deadline, json_t **msg,
    struct proto_error *err)
{
	json_error_t	 je;
	json_t		*m;
	ssize_t		 n;
	size_t		 max, rest;
	int		 r;

	*msg = NULL;
	max = client_max(c);
	for (;;) {
		n = proto_frame_find(c->pc_buf, c->pc_len, max + 1);
		if (n >= 0)
			break;
		if (n == PROTO_FRAME_TOO_LONG) {
			client_fail(c, err, "protocol error: a message from "
			    "wfvaultd is longer than %zu bytes", max);
			return PROTO_CALL_IO;
		}
		if (c->pc_len == c->pc_cap && client_grow(c, max + 1,
		    err) == -1)
			return PROTO_CALL_IO;
		if ((r = client_poll(c->pc_fd, POLLIN, deadline)) == 0)
			return 1;
		if (r == -1) {
			client_fail(c, err, "cannot read from wfvaultd: %s",
			    strerror(errno));
			return PROTO_CALL_IO;
		}
		n = recv(c->pc_fd, c->pc_buf + c->pc_len,
		    c->pc_cap - c->pc_len, MSG_DONTWAIT);
		if (n == 0 || (n == -1 && errno == ECONNRESET)) {
			client_fail(c, err, "connection closed by wfvaultd");
			return PROTO_CALL_IO;
		}
		if (n == -1) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			client_fail(c, err, "cannot read from wfvaultd: %s",
			    strerror(errno));
			return PROTO_CALL_IO;
		}
		c->pc_len += (size_t)n;
	}

	m = json_loadb(c->pc_buf, (size_t)n, JSON_REJECT_DUPLICATES, &je);
	/* Consume the line and wipe the bytes freed at the end. */
	rest = c->pc_len - (size_t)n - 1;
	memmove(c->pc_buf, c->pc_buf + n + 1, rest);
	explicit_bzero(c->pc_buf + rest, (size_t)n + 1);
	c->pc_len = rest;
	if (m == NULL || !json_is_object(m)) {
		json_decref(m);
		client_fail(c, err, "protocol error: wfvaultd sent a line "
		    "that is not a JSON object");
		return PROTO_CALL_IO;
	}
	*msg = m;
	return PROTO_CALL_OK;
}

/* A notification is a message with a method and no id. */
static int
client_is_notification(json_t *m)
{
	return json_object_get(m, "id") == NULL &&
	    json_is_string(json_object_get(m, "method"));
}

/* Fills err from an error object of a reply. */
static int
client_remote_error(json_t *error, struct proto_error *err)
{
	json_t		*code, *message, *kind;
	const char	*k, *s;
	json_int_t	 iv;
	size_t		 i, n;

	code = json_object_get(error, "code");
	if (!json_is_integer(code))
		return -1;
	iv = json_integer_value(code);
	if (iv < INT_MIN || iv > INT_MAX)
		return -1;
	if (err == NULL)
		return 0;
	err->pe_code = (int)iv;

	k = proto_err_kind(err->pe_code);
	kind = json_object_get(json_object_get(error, "data"), "kind");
	/* Take the daemon's kind only if it is a plain word that fits. */
	if (json_is_string(kind)) {
		s = json_string_value(kind);
		n = json_string_length(kind);
		for (i = 0; i < n; i++)
			if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
				break;
		if (n > 0 && i == n && n < sizeof(err->pe_kind))
			k = s;
	}
	snprintf(err->pe_kind, sizeof(err->pe_kind), "%s", k);

	message = json_object_get(error, "message");
	proto_line_copy(err->pe_message, sizeof(err->pe_message),
	    json_is_string(message) ? json_string_value(message) : k);
	return 0;
}

int
proto_client_call(struct proto_client *c, const char *method, json_t *params,
    json_t **result, struct proto_error *err)
{
	json_t	*req = NULL, *m = NULL, *id, *v, *error;
	char	*buf;
	size_t	 len;
	int64_t	 myid;
	int	 r;

	*result = NULL;
	if (params == NULL && (params = json_object()) == NULL) {
		client_error(err, 0, CLIENT_IO_KIND, "out of memory");
		return PROTO_CALL_IO;
	}
	if (c->pc_fd == -1) {
		json_decref(params);
		client_error(err, 0, CLIENT_IO_KIND, "not connected to "
		    "wfvaultd");
		return PROTO_CALL_IO;
	}
	myid = c->pc_next_id++;
	if (method == NULL || (req = json_object()) == NULL ||
	    json_object_set_new(req, "jsonrpc", json_string("2.0")) == -1 ||
	    json_object_set_new(req, "id", json_integer(myid)) == -1 ||
	    json_object_set_new(req, "method", json_string(method)) == -1) {
		json_decref(params);
		json_decref(req);
		client_error(err, 0, CLIENT_IO_KIND, "cannot build the "
		    "request");
		return PROTO_CALL_IO;
	}
	if (json_object_set_new(req, "params", params) == -1 ||
	    (buf = proto_encode(req, &len)) == NULL) {
		json_decref(req);
		client_error(err, 0, CLIENT_IO_KIND, "cannot encode the "
		    "request (out of memory or invalid UTF-8)");
		return PROTO_CALL_IO;
	}
	json_decref(req);
	r = client_send_all(c, buf, len, err);
	proto_buf_free(buf, len);
	if (r == -1)
		return PROTO_CALL_IO;

	for (;;) {
		r = client_read_msg(c, client_deadline(c->pc_timeout_ms), &m,
		    err);
		if (r == 1) {
			client_fail(c, err, "timed out after %d ms waiting "
			    "for wfvaultd", c->pc_timeout_ms);
			return PROTO_CALL_IO;
		}
		if (r != PROTO_CALL_OK)
			return PROTO_CALL_IO;
		if (!client_is_notification(m))
			break;
		if (c->pc_pending == NULL &&
		    (c->pc_pending = json_array()) == NULL) {
			json_decref(m);
			client_fail(c, err, "out of memory");
			return PROTO_CALL_IO;
		}
		if (json_array_append_new(c->pc_pending, m) == -1) {
			client_fail(c, err, "out of memory");
			return PROTO_CALL_IO;
		}
	}

	id = json_object_get(m, "id");
	error = json_object_get(m, "error");
	v = json_object_get(m, "jsonrpc");
	if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
		client_fail(c, err, "protocol error: a reply from wfvaultd "
		    "lacks \"jsonrpc\": \"2.0\"");
		goto fail;
	}
	/*
	 * With one request in flight, an error with a null id (the daemon
	 * could not read ours, e.g. the line was too long) answers it.
	 */
	if (!(json_is_integer(id) && json_integer_value(id) == myid) &&
	    !(json_is_null(id) && error != NULL)) {
		if (json_is_integer(id))
			client_fail(c, err, "protocol error: reply to request "
			    "%lld while waiting for %lld",
			    (long long)json_integer_value(id),
			    (long long)myid);
		else
			client_fail(c, err, "protocol error: reply with an "
			    "unexpected id while waiting for %lld",
			    (long long)myid);
		goto fail;
	}
	if (error != NULL) {
		if (json_object_get(m, "result") != NULL ||
		    client_remote_error(error, err) == -1) {
			client_fail(c, err, "protocol error: malformed error "
			    "reply from wfvaultd");
			goto fail;
		}
		json_decref(m);
		return PROTO_CALL_REMOTE;
	}
	if ((v = json_object_get(m, "result")) == NULL) {
		client_fail(c, err, "protocol error: a reply from wfvaultd "
		    "has neither result nor error");
		goto fail;
	}
	*result = json_incref(v);
	json_decref(m);
	return PROTO_CALL_OK;

fail:
	json_decref(m);
	return PROTO_CALL_IO;
}

int
proto_client_next(struct proto_client *c, int timeout_ms, json_t **msg,
    struct proto_error *err)
{
	json_t	*m;
	int	 r;

	*msg = NULL;
	if (json_array_size(c->pc_pending) > 0) {
		*msg = json_incref(json_array_get(c->pc_pending, 0));
		json_array_remove(c->pc_pending, 0);
		return PROTO_CALL_OK;
	}
	if (c->pc_fd == -1) {
		client_error(err, 0, CLIENT_IO_KIND, "not connected to "
		    "wfvaultd");
		return PROTO_CALL_IO;
	}
	r = client_read_msg(c, client_deadline(timeout_ms), &m, err);
	if (r != PROTO_CALL_OK)
		return r;
	if (!client_is_notification(m)) {
		json_decref(m);
		client_fail(c, err, "protocol error: wfvaultd sent a reply "
		    "while no request was outstanding");
		return PROTO_CALL_IO;
	}
	*msg = m;
	return PROTO_CALL_OK;
}

/* Closes the socket and wipes the read buffer, keeping pc_pending. */
static void
client_disconnect(struct proto_client *c)
{
	if (c->pc_fd != -1) {
		close(c->pc_fd);
		c->pc_fd = -1;
	}
	/* The ssh:// forwarder goes with its connection. */
	if (c->pc_ssh_pid > 0)
		proto_client_ssh_reap(c->pc_ssh_pid);
	c->pc_ssh_pid = -1;
	if (c->pc_buf != NULL) {
		explicit_bzero(c->pc_buf, c->pc_cap);
		free(c->pc_buf);
	}
	c->pc_buf = NULL;
	c->pc_len = 0;
	c->pc_cap = 0;
}

void
proto_client_close(struct proto_client *c)
{
	client_disconnect(c);
	json_decref(c->pc_pending);
	c->pc_pending = NULL;
}
