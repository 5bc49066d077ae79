/*
 * A client connection's lifetime: reading and framing its lines, the
 * limits on it (message size, deadline, idle time, queued output), its
 * replies, and who holds it.  A connection is closed when its peer is
 * done or gone, but its memory is freed only once nothing holds it (a
 * queued write, a backup, a rotation), on a later loop turn, so no
 * callback frees the object it runs for and nothing keeps a pointer that
 * must be swept.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "wfvaultd.h"

static void	conn_read(struct bufferevent *, void *);
static void	conn_write(struct bufferevent *, void *);
static void	conn_event(struct bufferevent *, short, void *);
static void	conn_deadline(evutil_socket_t, short, void *);
static void	conn_ungranted(evutil_socket_t, short, void *);
static void	conn_notify(struct conn *, uint64_t);
static void	conn_output_cb(struct evbuffer *,
		    const struct evbuffer_cb_info *, void *);
static int	conn_peer_gone(struct conn *);
static void	conn_process(struct conn *);
static ssize_t	conn_frame(struct evbuffer *, size_t);
static void	conn_close(struct conn *);
static void	conn_free(struct conn *);
static void	conn_destroy(struct conn *);
static void	conn_reap_cb(evutil_socket_t, short, void *);
static void	conn_update_reading(struct conn *);
static int	conn_finished(struct conn *);
static int	conn_output_full(struct conn *, size_t *);

/* Stops reading a client whose unread replies exceed this share. */
#define OUTPUT_RESUME_DIVISOR	2
/* Buffer segments looked at per evbuffer_peek while framing. */
#define FRAME_PEEK_VECS		8
/* Replies a peer with no grant may still have on their way at its end. */
#define UNGRANTED_OWED_BYTES	(64 * 1024)


int
conn_init(struct server *srv)
{
	TAILQ_INIT(&srv->srv_dead);
	if ((srv->srv_reap_ev = evtimer_new(srv->srv_base, conn_reap_cb,
	    srv)) == NULL)
		return -1;
	return 0;
}

int
conn_open(struct server *srv, int fd, struct peer *peer)
{
	struct daemon_conf	*conf = srv->srv_conf;
	struct conn		*conn;
	struct timeval		 tv;

	if ((conn = calloc(1, sizeof(*conn))) == NULL) {
		log_warn("%s: calloc", __func__);
		peer_release(peer);
		close(fd);
		return -1;
	}
	conn->c_srv = srv;
	conn->c_fd = fd;
	conn->c_id = srv->srv_next_id++;
	conn->c_peer = *peer;
	*peer = (struct peer)PEER_INIT;
	conn->c_bev = bufferevent_socket_new(srv->srv_base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	conn->c_deadline = evtimer_new(srv->srv_base, conn_deadline, conn);
	conn->c_ungranted = evtimer_new(srv->srv_base, conn_ungranted, conn);
	if (conn->c_bev == NULL || conn->c_deadline == NULL ||
	    conn->c_ungranted == NULL || (conn->c_output_cb = evbuffer_add_cb(
	    bufferevent_get_output(conn->c_bev), conn_output_cb,
	    srv)) == NULL) {
		log_warnx("%s: out of memory", __func__);
		if (conn->c_bev != NULL)
			bufferevent_free(conn->c_bev);
		else
			close(fd);
		if (conn->c_deadline != NULL)
			event_free(conn->c_deadline);
		if (conn->c_ungranted != NULL)
			event_free(conn->c_ungranted);
		peer_release(&conn->c_peer);
		free(conn);
		return -1;
	}
	bufferevent_setcb(conn->c_bev, conn_read, conn_write, conn_event,
	    conn);
	/* Reading stops at one message more than allowed; see conn_process. */
	bufferevent_setwatermark(conn->c_bev, EV_READ, 0,
	    conf->dc_max_message_bytes + 1);
	tv.tv_sec = (time_t)conf->dc_idle_timeout;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(conn->c_bev, &tv, &tv);
	bufferevent_enable(conn->c_bev, EV_READ | EV_WRITE);
	/*
	 * A peer no rule names can only say hello and be denied: it gets a
	 * fixed time from now, whatever it sends, so it cannot hold a slot.
	 */
	conn_check_granted(conn);

	TAILQ_INSERT_TAIL(&srv->srv_conns, conn, c_entry);
	srv->srv_nconns++;
	log_debug("%s: connection %llu from uid %u gid %u pid %d", __func__,
	    (unsigned long long)conn->c_id, (unsigned)conn->c_peer.p_uid,
	    (unsigned)conn->c_peer.p_gid, (int)conn->c_peer.p_pid);
	return 0;
}

void
conn_hold(struct conn *conn)
{
	conn->c_refs++;
}

void
conn_release(struct conn *conn)
{
	if (--conn->c_refs == 0 && conn->c_dead)
		conn_free(conn);
}

void
conn_wait_begin(struct conn *conn)
{
	conn_hold(conn);
	conn->c_waiting++;
}

void
conn_wait_end(struct conn *conn)
{
	conn->c_waiting--;
	conn_release(conn);
}

void
conn_watch(struct conn *conn, uint64_t seq)
{
	conn->c_watching = 1;
	conn->c_watch_seq = seq;
}

void
conn_notify_watchers(struct server *srv, uint64_t last)
{
	struct conn	*conn;

	TAILQ_FOREACH(conn, &srv->srv_conns, c_entry)
		conn_notify(conn, last);
}

/*
 * A watcher is told of the newest seq only while it has nothing unread:
 * one "changed" it has not read yet already sends it to the feed, which
 * it then reads to the end, so a watcher that does not read costs one
 * notification, not one per commit.  conn_write catches it up once its
 * output has drained.
 */
static void
conn_notify(struct conn *conn, uint64_t last)
{
	if (!conn->c_watching || conn->c_closing || conn->c_dead ||
	    conn->c_watch_seq >= last ||
	    evbuffer_get_length(bufferevent_get_output(conn->c_bev)) > 0)
		return;
	conn->c_watch_seq = last;
	server_send(conn, proto_notification("changed",
	    json_pack("{s:I}", "seq", (json_int_t)last)));
}

void
server_conns_resume(struct server *srv)
{
	struct conn	*conn, *next;

	TAILQ_FOREACH_SAFE(conn, &srv->srv_conns, c_entry, next)
		server_conn_resume(conn);
}

void
conn_stop_all(struct server *srv)
{
	struct conn	*conn, *next;

	TAILQ_FOREACH_SAFE(conn, &srv->srv_conns, c_entry, next) {
		conn->c_closing = 1;
		bufferevent_disable(conn->c_bev, EV_READ);
		/* A running backup's client waits for its answer. */
		if (conn_finished(conn))
			conn_close(conn);
	}
}

void
conn_close_all(struct server *srv)
{
	struct conn	*conn;

	while ((conn = TAILQ_FIRST(&srv->srv_conns)) != NULL)
		conn_close(conn);
	/* No loop turn is left to free them: the unheld ones go now. */
	if (srv->srv_reap_ev != NULL)
		event_free(srv->srv_reap_ev);
	srv->srv_reap_ev = NULL;
	while ((conn = TAILQ_FIRST(&srv->srv_dead)) != NULL) {
		TAILQ_REMOVE(&srv->srv_dead, conn, c_entry);
		conn_destroy(conn);
	}
}

void
server_send(struct conn *conn, json_t *msg)
{
	struct evbuffer	*out;
	char		*buf;
	size_t		 len;

	/* Nobody is left to read it. */
	if (conn->c_dead) {
		json_decref(msg);
		return;
	}

	if (msg == NULL) {
		log_warnx("%s: out of memory building a reply", __func__);
		conn->c_closing = 1;
		return;
	}
	buf = proto_encode(msg, &len);
	json_decref(msg);
	if (buf == NULL) {
		log_warnx("%s: cannot encode a reply", __func__);
		conn->c_closing = 1;
		return;
	}
	out = bufferevent_get_output(conn->c_bev);
	if (evbuffer_add(out, buf, len) == -1) {
		log_warnx("%s: out of memory queueing a reply", __func__);
		conn->c_closing = 1;
	}
	proto_buf_free(buf, len);
	conn_update_reading(conn);
}

void
server_send_close(struct conn *conn, json_t *msg)
{
	server_send(conn, msg);
	if (conn->c_dead)
		return;
	conn->c_closing = 1;
	bufferevent_disable(conn->c_bev, EV_READ);
}

/*
 * Reading is on only when the connection can take another request: not
 * closing, not waiting for its writes, and not sitting on more unread
 * replies than max_output_bytes (a client that does not read its replies
 * gets no more of them).  Watchers have no idle timeout.
 */
static void
conn_update_reading(struct conn *conn)
{
	struct daemon_conf	*conf = conn->c_srv->srv_conf;
	struct evbuffer		*in = bufferevent_get_input(conn->c_bev);
	struct timeval		 tv;
	size_t			 limit;
	int			 full;

	full = conn_output_full(conn, &limit);
	if (conn->c_closing || conn->c_blocked || conn->c_eof || full) {
		bufferevent_disable(conn->c_bev, EV_READ);
		/* A message we stopped reading is not the client's delay. */
		evtimer_del(conn->c_deadline);
	} else {
		bufferevent_enable(conn->c_bev, EV_READ);
		/* The deadline runs while part of a message is buffered. */
		if (evbuffer_get_length(in) == 0)
			evtimer_del(conn->c_deadline);
		else if (!evtimer_pending(conn->c_deadline, NULL)) {
			tv.tv_sec = (time_t)conf->dc_message_timeout;
			tv.tv_usec = 0;
			evtimer_add(conn->c_deadline, &tv);
		}
	}
	/* Ask for conn_write once the backlog has shrunk enough. */
	bufferevent_setwatermark(conn->c_bev, EV_WRITE, full ?
	    limit / OUTPUT_RESUME_DIVISOR : 0, 0);
}

/*
 * More unread replies queued than this connection may hold: over
 * max_output_bytes, or, while all connections together hold more than
 * max_output_total, over its even share of that.  A connection with
 * nothing queued is never full, so every peer that reads its replies
 * keeps being served whatever the others do.  *limitp (may be NULL) gets
 * the bound that applies.
 */
static int
conn_output_full(struct conn *conn, size_t *limitp)
{
	struct server		*srv = conn->c_srv;
	struct daemon_conf	*conf = srv->srv_conf;
	uint64_t		 limit = conf->dc_max_output_bytes, share;

	if (srv->srv_output_total > conf->dc_max_output_total &&
	    srv->srv_nconns > 0) {
		share = conf->dc_max_output_total / srv->srv_nconns;
		if (share < limit)
			limit = share;
	}
	if (limitp != NULL)
		*limitp = (size_t)limit;
	return evbuffer_get_length(bufferevent_get_output(conn->c_bev)) >
	    limit;
}

/* Keeps srv_output_total, the bytes queued in every connection. */
static void
conn_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct server	*srv = arg;

	srv->srv_output_total += info->n_added;
	srv->srv_output_total -= info->n_deleted;
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
	conn_process(arg);
}

void
server_conn_resume(struct conn *conn)
{
	if (conn->c_dead || conn->c_waiting > 0 ||
	    (!conn->c_blocked && !conn->c_eof))
		return;
	conn->c_blocked = 0;
	conn_process(conn);
}

/*
 * Hands every complete line to rpc.c, in order, until one must wait for
 * the connection's queued writes.  A line over max_message_bytes ends the
 * connection with a too_large error; a partial line starts the deadline.
 */
static void
conn_process(struct conn *conn)
{
	struct server		*srv = conn->c_srv;
	struct daemon_conf	*conf = srv->srv_conf;
	struct evbuffer		*in = bufferevent_get_input(conn->c_bev);
	const char		*line;
	ssize_t			 n;
	size_t			 len;
	int			 consumed = 0;

	while (!conn->c_closing && !conn->c_blocked &&
	    !conn_output_full(conn, NULL)) {
		/* A line of max_message_bytes and its '\n' are accepted. */
		n = conn_frame(in, conf->dc_max_message_bytes + 1);
		if (n == PROTO_FRAME_TOO_LONG)
			goto too_long;
		if (n == PROTO_FRAME_MORE)
			break;
		len = (size_t)n;
		if ((line = (const char *)evbuffer_pullup(in,
		    (ev_ssize_t)(len + 1))) == NULL) {
			log_warnx("%s: out of memory", __func__);
			conn->c_closing = 1;
			break;
		}
		if (rpc_handle_line(srv, conn, line, len) == RPC_BLOCKED) {
			conn->c_blocked = 1;
			break;
		}
		evbuffer_drain(in, len + 1);
		consumed = 1;
	}
	/*
	 * message_timeout is for the line now at the head of the input: a
	 * pipelining client always has a partial line buffered, and must
	 * not be cut off for the time its earlier lines took.
	 */
	if (consumed)
		evtimer_del(conn->c_deadline);
	goto done;

too_long:
	/* Its error must not overtake the replies to queued writes. */
	if (conn->c_waiting > 0) {
		conn->c_blocked = 1;
		goto done;
	}
	evbuffer_drain(in, evbuffer_get_length(in));
	log_debug("%s: connection %llu sent a line over max_message_bytes",
	    __func__, (unsigned long long)conn->c_id);
	server_send_close(conn, proto_reply_error(NULL, PROTO_E_TOO_LARGE,
	    "message too large: over max_message_bytes; closing the "
	    "connection", NULL));
done:
	if (conn_finished(conn)) {
		conn_close(conn);
		return;
	}
	conn_update_reading(conn);
}

/*
 * proto_frame_find over the input as it lies in the buffer's segments,
 * so a line is found without copying it: its length, PROTO_FRAME_MORE or
 * PROTO_FRAME_TOO_LONG (no '\n' within max bytes).
 */
static ssize_t
conn_frame(struct evbuffer *in, size_t max)
{
	struct evbuffer_iovec	 v[FRAME_PEEK_VECS];
	struct evbuffer_ptr	 at;
	size_t			 seen = 0, total;
	ssize_t			 n;
	int			 i, nv;

	total = evbuffer_get_length(in);
	while (seen < total) {
		if (evbuffer_ptr_set(in, &at, seen, EVBUFFER_PTR_SET) == -1)
			break;
		nv = evbuffer_peek(in, -1, &at, v, FRAME_PEEK_VECS);
		if (nv > FRAME_PEEK_VECS)
			nv = FRAME_PEEK_VECS;
		if (nv <= 0)
			break;
		for (i = 0; i < nv; i++) {
			n = proto_frame_find(v[i].iov_base, v[i].iov_len,
			    max - seen);
			if (n >= 0)
				return (ssize_t)seen + n;
			if (n == PROTO_FRAME_TOO_LONG)
				return PROTO_FRAME_TOO_LONG;
			seen += v[i].iov_len;
		}
	}
	return PROTO_FRAME_MORE;
}

/*
 * A connection ends once nothing is owed to its peer: no write waiting for
 * the group commit, no reply unwritten, and either it is being closed or
 * the peer half-closed and every complete line it sent has been answered.
 */
static int
conn_finished(struct conn *conn)
{
	if (conn->c_waiting > 0 ||
	    evbuffer_get_length(bufferevent_get_output(conn->c_bev)) > 0)
		return 0;
	return conn->c_closing || (conn->c_eof && !conn->c_blocked);
}

static void
conn_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct conn	*conn = arg;

	log_debug("%s: connection %llu did not finish a message within "
	    "message_timeout", __func__, (unsigned long long)conn->c_id);
	evbuffer_drain(bufferevent_get_input(conn->c_bev),
	    evbuffer_get_length(bufferevent_get_input(conn->c_bev)));
	server_send_close(conn, proto_reply_error(NULL, PROTO_E_INVALID_REQUEST,
	    "message not completed within message_timeout; closing the "
	    "connection", NULL));
}

/*
 * A peer no rule names can only say hello and be denied: it gets a fixed
 * time from now (accept, or the reload that took its last grant away),
 * whatever it sends, so it cannot hold a slot.
 */
void
conn_check_granted(struct conn *conn)
{
	struct daemon_conf	*conf = conn->c_srv->srv_conf;
	struct timeval		 tv;

	if (conn->c_closing || conn->c_dead ||
	    acl_perms_any(&conf->dc_acl, &conn->c_peer) != 0 ||
	    evtimer_pending(conn->c_ungranted, NULL))
		return;
	tv.tv_sec = (time_t)conf->dc_ungranted_timeout;
	tv.tv_usec = 0;
	evtimer_add(conn->c_ungranted, &tv);
}

/*
 * ungranted_timeout after accept, a peer that still holds no permission
 * anywhere (a reload may have granted one since) is told so and closed.
 */
static void
conn_ungranted(evutil_socket_t fd, short ev, void *arg)
{
	struct conn		*conn = arg;
	struct daemon_conf	*conf = conn->c_srv->srv_conf;
	struct timeval		 tv;
	char			 msg[256];

	/* Told, and still not gone a second timeout later: closed now. */
	if (conn->c_ungranted_told) {
		conn_close(conn);
		return;
	}
	if (conn->c_closing ||
	    acl_perms_any(&conf->dc_acl, &conn->c_peer) != 0)
		return;
	log_debug("%s: connection %llu of uid %u holds no permission; closed "
	    "after ungranted_timeout", __func__,
	    (unsigned long long)conn->c_id, (unsigned)conn->c_peer.p_uid);
	/*
	 * One that does not read its replies is not owed them; one that
	 * does (a reply or two still on their way) gets the reason after
	 * them, and at most one more ungranted_timeout to take it.
	 */
	if (evbuffer_get_length(bufferevent_get_output(conn->c_bev)) >
	    UNGRANTED_OWED_BYTES || conn->c_waiting > 0) {
		conn_close(conn);
		return;
	}
	evbuffer_drain(bufferevent_get_input(conn->c_bev),
	    evbuffer_get_length(bufferevent_get_input(conn->c_bev)));
	snprintf(msg, sizeof(msg), "uid %u has no permission on any tenant; "
	    "closing the connection after ungranted_timeout (%llu s)",
	    (unsigned)conn->c_peer.p_uid,
	    (unsigned long long)conf->dc_ungranted_timeout);
	server_send_close(conn, proto_reply_error(NULL, PROTO_E_DENIED, msg,
	    json_pack("{s:s}", "kind", proto_err_kind(PROTO_E_DENIED))));
	if (conn_finished(conn)) {
		conn_close(conn);
		return;
	}
	conn->c_ungranted_told = 1;
	tv.tv_sec = (time_t)conf->dc_ungranted_timeout;
	tv.tv_usec = 0;
	evtimer_add(conn->c_ungranted, &tv);
}

/*
 * 1 when the peer closed its socket altogether (not only its write side):
 * nobody is left to read a reply.
 */
static int
conn_peer_gone(struct conn *conn)
{
	struct pollfd	pfd;

	pfd.fd = conn->c_fd;
	pfd.events = 0;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR));
}

static void
conn_write(struct bufferevent *bev, void *arg)
{
	struct conn	*conn = arg;

	if (conn_finished(conn)) {
		conn_close(conn);
		return;
	}
	if (conn->c_closing)
		return;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_notify(conn, conn->c_srv->srv_notified_seq);
	conn_update_reading(conn);
	/* Lines read while the output was over its bound wait in the input. */
	if (!conn->c_blocked &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		conn_process(conn);
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*conn = arg;

	/*
	 * A half-close (socat, shell pipes) still gets the replies to what
	 * was sent before it; a partial last line is dropped.
	 */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		conn->c_eof = 1;
		evtimer_del(conn->c_deadline);
		/*
		 * A peer that closed (not half-closed) while a write or a
		 * backup of its runs is not waited for: they finish
		 * unanswered and the slot is free now.
		 */
		if (conn_finished(conn) || conn_peer_gone(conn))
			conn_close(conn);
		else
			conn_update_reading(conn);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		/* Watchers wait for notifications, so idle is normal there. */
		if (conn->c_watching && (what & BEV_EVENT_READING) &&
		    !conn->c_closing) {
			bufferevent_enable(bev, EV_READ);
			return;
		}
		log_debug("%s: connection %llu timed out %s", __func__,
		    (unsigned long long)conn->c_id,
		    (what & BEV_EVENT_WRITING) ? "writing" : "idle");
	} else if (what & BEV_EVENT_ERROR)
		log_debug("%s: connection %llu: %s", __func__,
		    (unsigned long long)conn->c_id, strerror(errno));
	conn_close(conn);
}

/*
 * Ends the connection now (its slot, socket and events go), but its
 * memory stays while something holds it (a write's reply is then
 * dropped), and is freed on a later loop turn in any case.
 */
static void
conn_close(struct conn *conn)
{
	struct server	*srv = conn->c_srv;

	if (conn->c_dead)
		return;
	conn->c_dead = 1;
	conn->c_closing = 1;
	TAILQ_REMOVE(&srv->srv_conns, conn, c_entry);
	srv->srv_nconns--;
	event_free(conn->c_deadline);
	event_free(conn->c_ungranted);
	conn->c_deadline = conn->c_ungranted = NULL;
	evbuffer_remove_cb_entry(bufferevent_get_output(conn->c_bev),
	    conn->c_output_cb);
	srv->srv_output_total -= evbuffer_get_length(
	    bufferevent_get_output(conn->c_bev));
	bufferevent_free(conn->c_bev);
	conn->c_bev = NULL;
	conn->c_fd = -1;
	log_debug("%s: connection %llu closed", __func__,
	    (unsigned long long)conn->c_id);
	if (conn->c_refs == 0)
		conn_free(conn);
	if (srv->srv_stopping && TAILQ_EMPTY(&srv->srv_conns))
		event_base_loopbreak(srv->srv_base);
}

/*
 * A closed connection nothing holds: freed from conn_reap_cb, after the
 * callback that let it go has returned; at once when the loop is gone.
 */
static void
conn_free(struct conn *conn)
{
	struct server	*srv = conn->c_srv;
	struct timeval	 tv = { 0, 0 };

	if (srv->srv_reap_ev == NULL) {
		conn_destroy(conn);
		return;
	}
	TAILQ_INSERT_TAIL(&srv->srv_dead, conn, c_entry);
	evtimer_add(srv->srv_reap_ev, &tv);
}

static void
conn_reap_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct server	*srv = arg;
	struct conn	*conn;

	while ((conn = TAILQ_FIRST(&srv->srv_dead)) != NULL) {
		TAILQ_REMOVE(&srv->srv_dead, conn, c_entry);
		conn_destroy(conn);
	}
}

static void
conn_destroy(struct conn *conn)
{
	peer_release(&conn->c_peer);
	free(conn);
}
