/*
 * The listening socket of wfvaultd: binding or socket activation,
 * accepting (or turning away) connections, signals, reload and orderly
 * shutdown.  A connection's lifetime is conn.c's, what a request means
 * rpc.c's.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "wfvaultd.h"

static void	server_accept(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
static void	server_accept_error(struct evconnlistener *, void *);
static void	server_listen_retry(evutil_socket_t, short, void *);
static void	server_signal(evutil_socket_t, short, void *);
static void	server_commit_cb(evutil_socket_t, short, void *);
static void	server_stop_timeout(evutil_socket_t, short, void *);
static void	server_refuse(struct server *, int, const char *);
static void	server_refused_read(evutil_socket_t, short, void *);
static void	refusal_free(struct refusal *);
static void	server_audit_cb(evutil_socket_t, short, void *);
static void	server_stop(struct server *);
static void	server_reload(struct server *);
static int	server_bind(struct server *, char *, size_t);
static int	server_activated(char *, size_t);

/*
 * A connection turned away gets its error, then is held (reading and
 * dropping what it sent) until its peer closes or REFUSED_LINGER_SECS
 * pass: closing a socket with unread data resets it, and the peer would
 * lose the error.  At most REFUSED_MAX wait so; the others are closed at
 * once.
 */
#define REFUSED_LINGER_SECS	2
#define REFUSED_MAX		64

/* A connection that was turned away, waiting for its peer to close. */
struct refusal {
	TAILQ_ENTRY(refusal)	 rf_entry;
	struct server		*rf_srv;
	int			 rf_fd;
	struct event		*rf_ev;
	time_t			 rf_until;	/* CLOCK_MONOTONIC */
};

int
server_init(struct server *srv, struct event_base *base,
    struct daemon_conf *conf, const char *conf_path, struct store *store,
    struct audit *audit, char *err, size_t errlen)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	size_t		 i;
	int		 fd;

	memset(srv, 0, sizeof(*srv));
	TAILQ_INIT(&srv->srv_conns);
	TAILQ_INIT(&srv->srv_writes);
	TAILQ_INIT(&srv->srv_refused);
	srv->srv_base = base;
	srv->srv_conf = conf;
	srv->srv_conf_path = conf_path;
	srv->srv_store = store;
	srv->srv_audit = audit;
	srv->srv_started = time(NULL);
	srv->srv_next_id = 1;

	if ((fd = server_activated(err, errlen)) == -2 &&
	    (fd = server_bind(srv, err, errlen)) == -1)
		return -1;
	if (fd == -1)
		return -1;
	srv->srv_listener = evconnlistener_new(base, server_accept, srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (srv->srv_listener == NULL) {
		snprintf(err, errlen, "cannot listen on %s: %s",
		    conf->dc_socket, strerror(errno));
		close(fd);
		return -1;
	}
	evconnlistener_set_error_cb(srv->srv_listener, server_accept_error);

	srv->srv_commit_ev = event_new(base, -1, 0, server_commit_cb, srv);
	srv->srv_listen_retry = evtimer_new(base, server_listen_retry, srv);
	srv->srv_audit_ev = evtimer_new(base, server_audit_cb, srv);
	if (srv->srv_commit_ev == NULL || srv->srv_listen_retry == NULL ||
	    srv->srv_audit_ev == NULL || conn_init(srv) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		srv->srv_sigs[i] = evsignal_new(base, sigs[i], server_signal,
		    srv);
		if (srv->srv_sigs[i] == NULL ||
		    evsignal_add(srv->srv_sigs[i], NULL) == -1) {
			snprintf(err, errlen, "cannot handle signal %d",
			    sigs[i]);
			return -1;
		}
	}
	return 0;
}

/*
 * Socket activation (wfvaultd.socket): systemd passes the listening socket
 * as fd 3 with LISTEN_PID/LISTEN_FDS.  Returns it, -2 when not activated,
 * or -1 when what was passed is not one listening Unix stream socket.
 * systemd owns that socket file, so it is not removed at exit.
 */
static int
server_activated(char *err, size_t errlen)
{
	const char		*pid, *fds;
	char			*end;
	unsigned long long	 v;
	int			 type = 0, listening = 0, flags;
	struct sockaddr_un	 sun;
	socklen_t		 len;

	if ((pid = getenv("LISTEN_PID")) == NULL ||
	    (fds = getenv("LISTEN_FDS")) == NULL)
		return -2;
	errno = 0;
	v = strtoull(pid, &end, 10);
	if (errno != 0 || *end != '\0' || v != (unsigned long long)getpid())
		return -2;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	errno = 0;
	v = strtoull(fds, &end, 10);
	if (errno != 0 || *end != '\0' || v != 1) {
		snprintf(err, errlen, "socket activation passed %s sockets; "
		    "wfvaultd takes exactly one", fds);
		return -1;
	}
	len = sizeof(type);
	if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_STREAM) {
		snprintf(err, errlen, "socket activation: fd 3 is not a "
		    "stream socket");
		return -1;
	}
	len = sizeof(listening);
	if (getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == -1 ||
	    !listening) {
		snprintf(err, errlen, "socket activation: fd 3 is not "
		    "listening");
		return -1;
	}
	len = sizeof(sun);
	if (getsockname(3, (struct sockaddr *)&sun, &len) == -1 ||
	    sun.sun_family != AF_UNIX) {
		snprintf(err, errlen, "socket activation: fd 3 is not a Unix "
		    "socket");
		return -1;
	}
	if ((flags = fcntl(3, F_GETFL)) == -1 ||
	    fcntl(3, F_SETFL, flags | O_NONBLOCK) == -1 ||
	    fcntl(3, F_SETFD, FD_CLOEXEC) == -1) {
		snprintf(err, errlen, "socket activation: fcntl: %s",
		    strerror(errno));
		return -1;
	}
	log_info("using the socket passed by systemd");
	return 3;
}

/*
 * Binds the Unix socket: the path must fit, a live daemon on it is refused,
 * a stale socket file is removed (anything else at the path is left alone),
 * the file is created under a tight umask, then given socket_mode and
 * socket_group, so it is never reachable with looser rights.
 */
static int
server_bind(struct server *srv, char *err, size_t errlen)
{
	struct daemon_conf	*conf = srv->srv_conf;
	struct sockaddr_un	 sun;
	struct stat		 st;
	struct group		*gr;
	mode_t			 old;
	int			 fd, probe;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(conf->dc_socket) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path too long (%zu bytes, at "
		    "most %zu)", strlen(conf->dc_socket),
		    sizeof(sun.sun_path) - 1);
		return -1;
	}
	memcpy(sun.sun_path, conf->dc_socket, strlen(conf->dc_socket));

	if (lstat(conf->dc_socket, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket; "
			    "refusing to replace it", conf->dc_socket);
			return -1;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe != -1 && connect(probe, (struct sockaddr *)&sun,
		    sizeof(sun)) == 0) {
			close(probe);
			snprintf(err, errlen, "another wfvaultd is already "
			    "listening on %s", conf->dc_socket);
			return -1;
		}
		if (probe != -1)
			close(probe);
		if (unlink(conf->dc_socket) == -1) {
			snprintf(err, errlen, "cannot remove stale socket %s: "
			    "%s", conf->dc_socket, strerror(errno));
			return -1;
		}
		log_info("removed stale socket %s", conf->dc_socket);
	}

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		snprintf(err, errlen, "cannot bind %s: %s", conf->dc_socket,
		    strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	srv->srv_bound = 1;

	if (conf->dc_socket_group != NULL) {
		if ((gr = getgrnam(conf->dc_socket_group)) == NULL) {
			snprintf(err, errlen, "socket_group: no group '%s'",
			    conf->dc_socket_group);
			goto fail;
		}
		if (chown(conf->dc_socket, (uid_t)-1, gr->gr_gid) == -1) {
			snprintf(err, errlen, "cannot give %s to group %s: %s",
			    conf->dc_socket, conf->dc_socket_group,
			    strerror(errno));
			goto fail;
		}
	}
	if (chmod(conf->dc_socket, (mode_t)conf->dc_socket_mode) == -1) {
		snprintf(err, errlen, "cannot chmod %s: %s", conf->dc_socket,
		    strerror(errno));
		goto fail;
	}
	if (listen(fd, 128) == -1) {
		snprintf(err, errlen, "listen: %s", strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	unlink(conf->dc_socket);
	srv->srv_bound = 0;
	return -1;
}

void
server_release(struct server *srv)
{
	struct refusal	*rf;
	size_t		 i;

	conn_close_all(srv);
	while ((rf = TAILQ_FIRST(&srv->srv_refused)) != NULL)
		refusal_free(rf);
	if (srv->srv_listener != NULL)
		evconnlistener_free(srv->srv_listener);
	srv->srv_listener = NULL;
	if (srv->srv_bound)
		unlink(srv->srv_conf->dc_socket);
	srv->srv_bound = 0;
	for (i = 0; i < sizeof(srv->srv_sigs) / sizeof(srv->srv_sigs[0]); i++)
		if (srv->srv_sigs[i] != NULL)
			event_free(srv->srv_sigs[i]);
	if (srv->srv_commit_ev != NULL)
		event_free(srv->srv_commit_ev);
	if (srv->srv_listen_retry != NULL)
		event_free(srv->srv_listen_retry);
	if (srv->srv_stop_timer != NULL)
		event_free(srv->srv_stop_timer);
	if (srv->srv_trim_ev != NULL)
		event_free(srv->srv_trim_ev);
	srv->srv_trim_ev = NULL;
	if (srv->srv_audit_ev != NULL)
		event_free(srv->srv_audit_ev);
	memset(srv->srv_sigs, 0, sizeof(srv->srv_sigs));
	srv->srv_commit_ev = srv->srv_listen_retry = srv->srv_stop_timer = NULL;
	srv->srv_audit_ev = NULL;
}

static void
server_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct server		*srv = arg;
	struct daemon_conf	*conf = srv->srv_conf;
	struct peer		 peer = PEER_INIT;
	struct conn		*c;
	uint64_t		 same = 0;
	char			 err[256];

	if (srv->srv_stopping) {
		close(fd);
		return;
	}
	/* Turned away at once, so the connections already served go on. */
	if (srv->srv_nconns >= conf->dc_max_connections) {
		server_refuse(srv, fd, "too many connections; try again later");
		log_debug("%s: connection refused: max_connections %llu "
		    "reached", __func__,
		    (unsigned long long)conf->dc_max_connections);
		return;
	}
	if (peer_from_fd(fd, &peer, err, sizeof(err)) == -1) {
		log_warnx("refusing a connection: %s", err);
		close(fd);
		return;
	}
	/*
	 * One uid cannot take every slot; root and the daemon's own uid (the
	 * administrator, the sync agent) are never counted out.
	 */
	if (peer.p_uid != 0 && peer.p_uid != conf->dc_acl.acl_self) {
		TAILQ_FOREACH(c, &srv->srv_conns, c_entry)
			if (c->c_peer.p_uid == peer.p_uid)
				same++;
		if (same >= conf->dc_max_connections_per_uid) {
			snprintf(err, sizeof(err), "too many connections from "
			    "uid %u (max_connections_per_uid %llu); close "
			    "some or try again later", (unsigned)peer.p_uid,
			    (unsigned long long)
			    conf->dc_max_connections_per_uid);
			log_debug("%s: connection refused: %s", __func__, err);
			peer_release(&peer);
			server_refuse(srv, fd, err);
			return;
		}
	}
	/* fd and peer are the connection's from here, whatever happens. */
	conn_open(srv, fd, &peer);
}

/*
 * Turns fd away with an "unavailable" error built like every reply.  Its
 * write side is shut so the peer reads the error then EOF; what the peer
 * sent is read and dropped until it closes (see REFUSED_LINGER_SECS).
 */
static void
server_refuse(struct server *srv, int fd, const char *msg)
{
	struct refusal	*rf = NULL;
	struct timeval	 tv = { REFUSED_LINGER_SECS, 0 };
	struct timespec	 now;
	json_t		*reply;
	char		*buf = NULL, drop[4096];
	size_t		 len;

	reply = proto_reply_error(NULL, PROTO_E_UNAVAILABLE, msg,
	    json_pack("{s:s}", "kind", proto_err_kind(PROTO_E_UNAVAILABLE)));
	if (reply != NULL)
		buf = proto_encode(reply, &len);
	json_decref(reply);
	/* Small: it fits the socket's empty send buffer in one go. */
	if (buf != NULL) {
		(void)send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		proto_buf_free(buf, len);
	}
	(void)shutdown(fd, SHUT_WR);
	if (srv->srv_nrefused < REFUSED_MAX && !srv->srv_stopping &&
	    (rf = calloc(1, sizeof(*rf))) != NULL) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		rf->rf_srv = srv;
		rf->rf_fd = fd;
		rf->rf_until = now.tv_sec + REFUSED_LINGER_SECS;
		rf->rf_ev = event_new(srv->srv_base, fd, EV_READ | EV_PERSIST,
		    server_refused_read, rf);
		if (rf->rf_ev != NULL && event_add(rf->rf_ev, &tv) == 0) {
			TAILQ_INSERT_TAIL(&srv->srv_refused, rf, rf_entry);
			srv->srv_nrefused++;
			return;
		}
		if (rf->rf_ev != NULL)
			event_free(rf->rf_ev);
		free(rf);
	}
	/* Too many waiting: drop what already came, at least. */
	while (recv(fd, drop, sizeof(drop), MSG_DONTWAIT) > 0)
		continue;
	close(fd);
}

static void
server_refused_read(evutil_socket_t fd, short ev, void *arg)
{
	struct refusal	*rf = arg;
	struct timespec	 now;
	char		 drop[4096];
	ssize_t		 n;

	/* A peer that keeps sending does not hold its place for ever. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((ev & EV_READ) && now.tv_sec <= rf->rf_until) {
		while ((n = recv(fd, drop, sizeof(drop), MSG_DONTWAIT)) > 0)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
	}
	/* EOF, an error, or the peer kept it open too long. */
	refusal_free(rf);
}

static void
refusal_free(struct refusal *rf)
{
	struct server	*srv = rf->rf_srv;

	TAILQ_REMOVE(&srv->srv_refused, rf, rf_entry);
	srv->srv_nrefused--;
	event_free(rf->rf_ev);
	close(rf->rf_fd);
	free(rf);
}

/* Out of descriptors: pause accepting for a second rather than spin. */
static void
server_accept_error(struct evconnlistener *l, void *arg)
{
	struct server	*srv = arg;
	struct timeval	 tv = { 1, 0 };

	log_warn("accept");
	evconnlistener_disable(l);
	evtimer_add(srv->srv_listen_retry, &tv);
}

static void
server_listen_retry(evutil_socket_t fd, short ev, void *arg)
{
	struct server	*srv = arg;

	if (srv->srv_listener != NULL && !srv->srv_stopping)
		evconnlistener_enable(srv->srv_listener);
}

static void
server_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct server	*srv = arg;

	switch (sig) {
	case SIGHUP:
		server_reload(srv);
		break;
	default:
		log_info("received %s, shutting down",
		    sig == SIGTERM ? "SIGTERM" : "SIGINT");
		server_stop(srv);
		break;
	}
}

/*
 * SIGHUP re-reads the access rules and the integration catalog (and
 * reopens the audit log).  A file that no longer parses keeps the rules
 * in force, a malformed integration file the catalog, and says why; the
 * other settings need a restart.
 */
static void
server_reload(struct server *srv)
{
	struct conn		*conn;
	struct daemon_conf	 fresh;
	struct catalog		*cat;
	char			 err[512];

	memset(&fresh, 0, sizeof(fresh));
	if (daemon_conf_load(srv->srv_conf_path, &fresh, err,
	    sizeof(err)) == -1) {
		log_warnx("reload failed, keeping the current rules: %s", err);
		return;
	}
	fresh.dc_acl.acl_self = srv->srv_conf->dc_acl.acl_self;
	acl_move(&srv->srv_conf->dc_acl, &fresh.dc_acl);
	/* A connection whose last grant went is timed out like a new one. */
	TAILQ_FOREACH(conn, &srv->srv_conns, c_entry)
		conn_check_granted(conn);
	log_info("reloaded %zu allow rules from %s",
	    srv->srv_conf->dc_acl.acl_nrules, srv->srv_conf_path);
	/* The catalog alone: a broken file keeps the current one. */
	if (catalog_load(&fresh, &cat, err, sizeof(err)) == -1) {
		log_warnx("reload failed, keeping the current integration "
		    "catalog: %s", err);
	} else {
		catalog_free(srv->srv_catalog);
		srv->srv_catalog = cat;
		log_info("reloaded %zu integrations", cat->cat_n);
	}
	daemon_conf_release(&fresh);
	if (audit_reopen(srv->srv_audit, err, sizeof(err)) == -1)
		log_warnx("audit log: %s", err);
}

/*
 * Orderly stop: no new connections, the pending group commit finished and
 * answered, then every connection closed once its replies are written (or
 * after two seconds), then the loop ends and main closes the store.
 */
static void
server_stop(struct server *srv)
{
	struct timeval	 tv = { 2, 0 };

	if (srv->srv_stopping)
		return;
	srv->srv_stopping = 1;
	notify_send("STOPPING=1");
	if (srv->srv_listener != NULL) {
		evconnlistener_free(srv->srv_listener);
		srv->srv_listener = NULL;
	}
	if (srv->srv_bound) {
		unlink(srv->srv_conf->dc_socket);
		srv->srv_bound = 0;
	}
	if (!TAILQ_EMPTY(&srv->srv_writes))
		rpc_commit(srv);
	conn_stop_all(srv);
	if (TAILQ_EMPTY(&srv->srv_conns)) {
		event_base_loopbreak(srv->srv_base);
		return;
	}
	srv->srv_stop_timer = evtimer_new(srv->srv_base, server_stop_timeout,
	    srv);
	if (srv->srv_stop_timer == NULL ||
	    evtimer_add(srv->srv_stop_timer, &tv) == -1)
		event_base_loopbreak(srv->srv_base);
}

static void
server_stop_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct server	*srv = arg;
	struct timeval	 tv = { 1, 0 };

	/* A backup under way is finished and answered, however long. */
	if (srv->srv_backup != NULL) {
		evtimer_add(srv->srv_stop_timer, &tv);
		return;
	}
	log_info("closing %zu connections that did not read their replies",
	    srv->srv_nconns);
	event_base_loopbreak(srv->srv_base);
}

void
server_schedule_commit(struct server *srv)
{
	/*
	 * event_active appends to the queue of this loop turn, behind every
	 * read callback the poll produced: the writes of one turn share a
	 * transaction (and an fsync).
	 */
	if (!event_pending(srv->srv_commit_ev, EV_TIMEOUT, NULL))
		event_active(srv->srv_commit_ev, EV_TIMEOUT, 0);
}

static void
server_commit_cb(evutil_socket_t fd, short ev, void *arg)
{
	rpc_commit(arg);
}

void
server_schedule_audit(struct server *srv)
{
	struct timeval	tv = { AUDIT_INTERVAL, 0 };

	if (!evtimer_pending(srv->srv_audit_ev, NULL))
		evtimer_add(srv->srv_audit_ev, &tv);
}

/* Writes the audit counts now due; audit_close writes the rest at exit. */
static void
server_audit_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct server	*srv = arg;

	if (audit_flush(srv->srv_audit, 0))
		server_schedule_audit(srv);
}
