/*
 * wfvault-sync's side of wfvaultd: the connection and its requests, the
 * "changed" notifications, and the signals that cut every wait short.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "proto.h"
#include "sync.h"
#include "util.h"

#define SYNC_CALL_TIMEOUT_MS	60000	/* per daemon request */

/*
 * Signals: a flag, and a pipe so waits in poll() wake up at once.  The
 * flag is read by every target's thread: an atomic (lock-free, so a
 * signal handler may set it).
 */
static atomic_int		sync_stop_flag;
static int			sync_wake[2] = { -1, -1 };

static void
sync_on_signal(int sig)
{
	int	saved = errno;
	ssize_t	n;

	(void)sig;
	atomic_store(&sync_stop_flag, 1);
	if (sync_wake[1] != -1) {
		n = write(sync_wake[1], "", 1);
		(void)n;
	}
	errno = saved;
}

int
sync_signals_init(void)
{
	struct sigaction	sa;

	if (sync_wake[0] == -1 && pipe2(sync_wake, O_CLOEXEC | O_NONBLOCK) ==
	    -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = sync_on_signal;
	/* No SA_RESTART: a blocked poll() should return and look. */
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1)
		return -1;
	/* libcurl with CURLOPT_NOSIGNAL leaves SIGPIPE to us. */
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) == -1)
		return -1;
	return 0;
}

int
sync_stopped(void)
{
	return atomic_load(&sync_stop_flag) != 0;
}

void
sync_stop(void)
{
	sync_on_signal(0);
}

int
sync_sleep(uint64_t ms)
{
	struct pollfd	pfd;
	int64_t		deadline, left;

	deadline = util_now_ms() + (ms > INT64_MAX / 2 ? INT64_MAX / 2 :
	    (int64_t)ms);
	while (!sync_stopped()) {
		if ((left = deadline - util_now_ms()) <= 0)
			return 0;
		pfd.fd = sync_wake[0];
		pfd.events = POLLIN;
		pfd.revents = 0;
		/* A negative fd (no pipe yet) makes poll a plain sleep. */
		(void)poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
	}
	return -1;
}

/* The daemon connection. */

/* Whether the hello reply grants sync (admin includes it). */
static int
sync_hello_may_sync(json_t *hello)
{
	json_t	*p;
	size_t	 i;

	json_array_foreach(json_object_get(hello, "permissions"), i, p) {
		if (json_is_string(p) &&
		    (strcmp(json_string_value(p), "sync") == 0 ||
		    strcmp(json_string_value(p), "admin") == 0))
			return 1;
	}
	return 0;
}

static void
sync_denied_hint(char *buf, size_t len)
{
	struct passwd	 pwd, *pw = NULL;
	char		 pwbuf[4096];

	/* Any target's thread may ask: not getpwuid's static buffer. */
	if (getpwuid_r(geteuid(), &pwd, pwbuf, sizeof(pwbuf), &pw) == 0 &&
	    pw != NULL)
		snprintf(buf, len, "add 'allow user:%s sync *' to wfvaultd's "
		    "config", pw->pw_name);
	else
		snprintf(buf, len, "give uid %u the sync permission in "
		    "wfvaultd's config", (unsigned)geteuid());
}

int
sync_link_init(struct sync_link *sl)
{
	memset(sl, 0, sizeof(*sl));
	sl->sl_conn = (struct proto_client)PROTO_CLIENT_INIT;
	if ((errno = pthread_mutex_init(&sl->sl_lock, NULL)) != 0)
		return -1;
	return 0;
}

void
sync_link_release(struct sync_link *sl)
{
	proto_client_close(&sl->sl_conn);
	pthread_mutex_destroy(&sl->sl_lock);
}

/* Connects (once, or again after a loss) and checks the peer.  Locked. */
static int
sync_connect(struct sync_ctx *ctx, char *err, size_t errlen)
{
	struct sync_link	*sl = ctx->sx_link;
	struct proto_error	 pe;
	json_t			*hello = NULL, *v;
	char			 hint[256];
	int			 r;

	proto_client_close(&sl->sl_conn);
	if (proto_client_connect(&sl->sl_conn, ctx->sx_conf->sc_socket,
	    &pe) != PROTO_CALL_OK) {
		snprintf(err, errlen, "%s", pe.pe_message);
		return SYNC_E_DAEMON;
	}
	sl->sl_conn.pc_timeout_ms = SYNC_CALL_TIMEOUT_MS;
	r = proto_client_call(&sl->sl_conn, "hello", NULL, &hello, &pe);
	if (r == PROTO_CALL_IO) {
		snprintf(err, errlen, "%s", pe.pe_message);
		proto_client_close(&sl->sl_conn);
		return SYNC_E_DAEMON;
	}
	if (r == PROTO_CALL_REMOTE) {
		snprintf(err, errlen, "wfvaultd refused hello: %s",
		    pe.pe_message);
		goto fail;
	}
	v = json_object_get(hello, "protocol");
	if (!json_is_integer(v) || json_integer_value(v) != PROTO_VERSION) {
		snprintf(err, errlen, "wfvaultd speaks protocol %lld; this "
		    "wfvault-sync speaks %d", json_is_integer(v) ?
		    (long long)json_integer_value(v) : -1LL, PROTO_VERSION);
		goto fail;
	}
	if (!sync_hello_may_sync(hello)) {
		sync_denied_hint(hint, sizeof(hint));
		snprintf(err, errlen, "wfvaultd does not give this process "
		    "the sync permission: %s", hint);
		goto fail;
	}
	json_decref(hello);
	if (!sl->sl_connected_once)
		log_debug("%s: connected to %s", __func__,
		    ctx->sx_conf->sc_socket);
	sl->sl_connected_once = 1;
	return 0;
fail:
	json_decref(hello);
	proto_client_close(&sl->sl_conn);
	return SYNC_E_FAIL;
}

int
sync_reach(struct sync_ctx *ctx, char *err, size_t errlen)
{
	int	rc = 0;

	pthread_mutex_lock(&ctx->sx_link->sl_lock);
	if (ctx->sx_link->sl_conn.pc_fd == -1)
		rc = sync_connect(ctx, err, errlen);
	pthread_mutex_unlock(&ctx->sx_link->sl_lock);
	return rc;
}

void
sync_disconnect(struct sync_ctx *ctx)
{
	pthread_mutex_lock(&ctx->sx_link->sl_lock);
	proto_client_close(&ctx->sx_link->sl_conn);
	pthread_mutex_unlock(&ctx->sx_link->sl_lock);
}

/*
 * One request to the daemon.  A lost connection (the daemon restarted, or
 * closed us while KV kept us busy) is reconnected once: every request the
 * agent makes can be repeated.  params is stolen.  Returns 0 with *result,
 * SYNC_E_DAEMON, or SYNC_E_FAIL (pe->pe_code the daemon's error, or 0).
 */
int
sync_call(struct sync_ctx *ctx, const char *method, json_t *params,
    json_t **result, struct proto_error *pe, char *err, size_t errlen)
{
	char	hint[256];
	int	r, rc, tries;

	*result = NULL;
	memset(pe, 0, sizeof(*pe));
	if (params == NULL && (params = json_object()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return SYNC_E_FAIL;
	}
	pthread_mutex_lock(&ctx->sx_link->sl_lock);
	for (tries = 0;; tries++) {
		if (ctx->sx_link->sl_conn.pc_fd == -1 &&
		    (rc = sync_connect(ctx, err, errlen)) != 0) {
			pthread_mutex_unlock(&ctx->sx_link->sl_lock);
			json_decref(params);
			return rc;
		}
		r = proto_client_call(&ctx->sx_link->sl_conn, method,
		    json_incref(params), result, pe);
		if (r != PROTO_CALL_IO || tries > 0 || sync_stopped())
			break;
		log_debug("%s: %s: %s; reconnecting", __func__, method,
		    pe->pe_message);
	}
	pthread_mutex_unlock(&ctx->sx_link->sl_lock);
	json_decref(params);
	if (r == PROTO_CALL_OK)
		return 0;
	if (r == PROTO_CALL_IO) {
		snprintf(err, errlen, "%s", pe->pe_message);
		return SYNC_E_DAEMON;
	}
	if (pe->pe_code == PROTO_E_UNAVAILABLE) {
		/* Shutting down, say: come back like after a restart. */
		snprintf(err, errlen, "wfvaultd cannot answer %s now: %s",
		    method, pe->pe_message);
		return SYNC_E_DAEMON;
	}
	if (pe->pe_code == PROTO_E_DENIED) {
		sync_denied_hint(hint, sizeof(hint));
		snprintf(err, errlen, "wfvaultd refused %s: %s (%s)", method,
		    pe->pe_message, hint);
	} else
		snprintf(err, errlen, "wfvaultd refused %s: %s", method,
		    pe->pe_message);
	return SYNC_E_FAIL;
}

/* A non-negative integer member, or -1. */
int
sync_get_uint(json_t *obj, const char *name, uint64_t *out)
{
	json_t	*v = json_object_get(obj, name);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/*
 * Reads a tenant's current config.  Returns 0 with *fields (new reference)
 * and *version, 1 when the tenant no longer exists, or SYNC_E_*.
 */
int
sync_fetch(struct sync_ctx *ctx, const char *tenant, json_t **fields,
    uint64_t *version, char *err, size_t errlen)
{
	struct proto_error	 pe;
	json_t			*res, *f;
	int			 rc;

	*fields = NULL;
	rc = sync_call(ctx, "get", json_pack("{s:s}", "tenant", tenant), &res,
	    &pe, err, errlen);
	if (rc == SYNC_E_FAIL && pe.pe_code == PROTO_E_NOT_FOUND)
		return 1;
	if (rc != 0)
		return rc;
	f = json_object_get(res, "fields");
	if (!json_is_object(f) || sync_get_uint(res, "version", version) ==
	    -1) {
		json_decref(res);
		snprintf(err, errlen, "wfvaultd sent a malformed reply to get "
		    "'%s'", tenant);
		return SYNC_E_FAIL;
	}
	*fields = json_incref(f);
	json_decref(res);
	return 0;
}

int
sync_wait_changed(struct proto_client *c, int timeout_ms, uint64_t *seq,
    char *err, size_t errlen)
{
	struct proto_error	 pe;
	struct pollfd		 pfd[2];
	json_t			*msg, *m, *s;
	int64_t			 deadline, left;
	int			 r, wait;

	deadline = timeout_ms < 0 ? -1 : util_now_ms() + timeout_ms;
	for (;;) {
		if (sync_stopped())
			return SYNC_E_STOP;
		/* What is queued or buffered first, without blocking. */
		r = proto_client_next(c, 0, &msg, &pe);
		if (r == PROTO_CALL_OK) {
			m = json_object_get(msg, "method");
			s = json_object_get(json_object_get(msg, "params"),
			    "seq");
			if (json_is_string(m) &&
			    strcmp(json_string_value(m), "changed") == 0 &&
			    json_is_integer(s) && json_integer_value(s) >= 0) {
				*seq = (uint64_t)json_integer_value(s);
				json_decref(msg);
				return 0;
			}
			json_decref(msg);
			continue;
		}
		if (r == PROTO_CALL_IO) {
			snprintf(err, errlen, "%s", pe.pe_message);
			return SYNC_E_DAEMON;
		}
		wait = -1;
		if (deadline >= 0) {
			if ((left = deadline - util_now_ms()) <= 0)
				return 1;
			wait = left > INT_MAX ? INT_MAX : (int)left;
		}
		pfd[0].fd = c->pc_fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = sync_wake[0];
		pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		if (poll(pfd, 2, wait) == -1 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return SYNC_E_DAEMON;
		}
	}
}
