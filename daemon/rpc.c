/*
 * What each request means: parameter checks, access decisions, the read
 * methods answered at once, the write methods run together in one group
 * commit at the end of the loop turn, the audit line of every request and
 * the change notifications of watchers.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "wfvaultd.h"

#define LIST_DEFAULT_LIMIT	100
#define LIST_MAX_LIMIT		1000
#define CHANGES_DEFAULT_LIMIT	1000
#define CHANGES_MAX_LIMIT	10000
/* Feed entries one group commit trims at least, and per write in it. */
#define TRIM_PER_COMMIT		1000
#define TRIM_PER_WRITE		2
/* A longer backlog goes on in transactions of its own, this far apart. */
#define TRIM_AGAIN_MS		10

/* The checked params of a request; strings are borrowed from its params. */
struct rpc_args {
	const char	*ra_tenant;
	const char	*ra_field;
	json_t		*ra_fields;
	uint64_t	 ra_cas;
	int		 ra_has_cas;
	int		 ra_replace;
	uint64_t	 ra_version;
	const char	*ra_prefix;
	const char	*ra_cursor;
	uint64_t	 ra_limit;
	uint64_t	 ra_since;
	const char	*ra_target;
	uint64_t	 ra_seq;
	int		 ra_purge;
	const char	*ra_name;	/* backup */
};

/* One request being answered. */
struct rpc_call {
	struct server			*rc_srv;
	struct conn			*rc_conn;	/* NULL once it has gone */
	struct peer			 rc_peer;	/* borrowed groups */
	const struct proto_method_info	*rc_method;
	struct rpc_args			 rc_args;
	MDB_txn				*rc_txn;
	json_t				*rc_result;	/* owned */
	json_t				*rc_names;	/* field names to audit */
	int				 rc_code;
	char				 rc_msg[512];
	uint64_t			 rc_seq;	/* change appended */
	uint64_t			 rc_first_seq;	/* feed_trimmed */
};

/* A write waiting for the group commit. */
struct rpc_write {
	TAILQ_ENTRY(rpc_write)	 w_entry;
	json_t			*w_id;		/* owned; NULL: no reply */
	json_t			*w_params;	/* owned; rc_args point in */
	struct rpc_call		 w_call;
};

struct rpc_handler {
	int	(*rh_args)(json_t *, struct rpc_args *, char *, size_t);
	int	(*rh_run)(struct rpc_call *);
	int	 rh_alone;	/* a write that needs a transaction of its own */
};

static int	args_none(json_t *, struct rpc_args *, char *, size_t);
static int	args_put(json_t *, struct rpc_args *, char *, size_t);
static int	args_get(json_t *, struct rpc_args *, char *, size_t);
static int	args_list(json_t *, struct rpc_args *, char *, size_t);
static int	args_delete(json_t *, struct rpc_args *, char *, size_t);
static int	args_changes(json_t *, struct rpc_args *, char *, size_t);
static int	args_sync_ack(json_t *, struct rpc_args *, char *, size_t);
static int	args_watch(json_t *, struct rpc_args *, char *, size_t);
static int	run_hello(struct rpc_call *);
static int	run_put(struct rpc_call *);
static int	run_get(struct rpc_call *);
static int	run_list(struct rpc_call *);
static int	run_delete(struct rpc_call *);
static int	run_changes(struct rpc_call *);
static int	run_sync_ack(struct rpc_call *);
static int	run_watch(struct rpc_call *);
static int	run_status(struct rpc_call *);
static int	args_sync_state(json_t *, struct rpc_args *, char *, size_t);
static int	run_sync_state(struct rpc_call *);
static int	args_backup(json_t *, struct rpc_args *, char *, size_t);
static int	args_tenant_only(json_t *, struct rpc_args *, char *, size_t);
static int	rpc_rotate_begin(struct server *, struct conn *, json_t *,
		    json_t *, struct rpc_call *);
static void	rpc_rotate_done(struct server *, void *,
		    const struct rotate_result *);
static int	rpc_rotate_waits(struct server *, struct conn *);
/* Which connection rpc_rotate_match looks for, and whether it found it. */
struct rpc_rotate_find {
	struct conn	*rf_conn;
	int		 rf_found;
};
static void	rpc_rotate_match(void *, void *);
static void	rpc_rotate_forget(void *, void *);
static int	rpc_backup_begin(struct server *, struct conn *, json_t *,
		    json_t *, struct rpc_call *);
static void	rpc_backup_done(struct server *, void *,
		    const struct backup_result *);
static void	rpc_commit_txn(struct server *, struct rpc_write_list *,
		    struct rpc_write_list *);
static int	rpc_fail(struct rpc_call *, int, const char *, ...)
		    __attribute__((__format__(printf, 3, 4)));
static int	rpc_store_fail(struct rpc_call *, int);
static int	rpc_allowed(struct rpc_call *);
static void	rpc_note_fields(struct rpc_call *, json_t *, const char *);
static void	rpc_audit(struct rpc_call *, const char *);
static void	rpc_reply(struct conn *, json_t *, struct rpc_call *);
static void	rpc_call_release(struct rpc_call *);
static void	rpc_write_free(struct rpc_write *);
static void	rpc_run_write(struct server *, MDB_txn *, struct rpc_write *);
static uint64_t	rpc_last_seq(struct server *);
static void	rpc_feed_trim(struct server *, MDB_txn *, size_t);
static void	rpc_trim_cb(evutil_socket_t, short, void *);

static const struct rpc_handler rpc_handlers[PM__COUNT] = {
	[PM_HELLO] = { args_none, run_hello, 0 },
	[PM_PUT] = { args_put, run_put, 0 },
	[PM_GET] = { args_get, run_get, 0 },
	[PM_LIST] = { args_list, run_list, 0 },
	[PM_DELETE] = { args_delete, run_delete, 0 },
	[PM_CHANGES] = { args_changes, run_changes, 0 },
	[PM_SYNC_ACK] = { args_sync_ack, run_sync_ack, 0 },
	[PM_WATCH] = { args_watch, run_watch, 0 },
	[PM_STATUS] = { args_none, run_status, 0 },
	[PM_SYNC_STATE] = { args_sync_state, run_sync_state, 0 },
	/* Not run here: rpc_handle_line starts it, rpc_backup_done answers. */
	[PM_BACKUP] = { args_backup, NULL, 0 },
	/*
	 * Not run in the group commit either: rpc_rotate_begin starts them
	 * in rotate.c's steps, rpc_rotate_done answers.
	 */
	[PM_ROTATE_MASTER_KEY] = { args_none, NULL, 0 },
	[PM_ROTATE_TENANT_KEY] = { args_tenant_only, NULL, 0 },
};

int
rpc_handle_line(struct server *srv, struct conn *conn, const char *line,
    size_t len)
{
	struct proto_request		 req = PROTO_REQUEST_INIT;
	struct rpc_write		*w = NULL;
	struct rpc_call			 call;
	const struct rpc_handler	*h;
	int				 code;

	memset(&call, 0, sizeof(call));
	call.rc_srv = srv;
	call.rc_conn = conn;
	call.rc_peer = conn->c_peer;
	/* Its backup's reply comes first; everything else waits for it. */
	if ((w = backup_pending(srv)) != NULL && w->w_call.rc_conn == conn)
		return (RPC_BLOCKED);
	/* So does its key rotation's. */
	if (rpc_rotate_waits(srv, conn))
		return (RPC_BLOCKED);
	w = NULL;
	code = proto_request_parse(line, len, &req, call.rc_msg,
	    sizeof(call.rc_msg));

	if (code != 0) {
		if (conn->c_waiting > 0)
			goto blocked;
		call.rc_code = code;
		rpc_audit(&call, req.pr_method_name != NULL &&
		    req.pr_method != NULL ? req.pr_method_name : "invalid");
		rpc_reply(conn, req.pr_id, &call);
		goto done;
	}
	call.rc_method = req.pr_method;
	h = &rpc_handlers[req.pr_method->pm_id];
	if (h->rh_args(req.pr_params, &call.rc_args, call.rc_msg,
	    sizeof(call.rc_msg)) == -1) {
		call.rc_code = PROTO_E_PARAMS;
		goto answer;
	}
	/* Named in the audit line whether the request is granted or not. */
	rpc_note_fields(&call, call.rc_args.ra_fields, call.rc_args.ra_field);
	if (srv->srv_stopping) {
		rpc_fail(&call, PROTO_E_UNAVAILABLE, "wfvaultd is shutting "
		    "down; try again when it is back");
		goto answer;
	}
	if (!rpc_allowed(&call))
		goto answer;

	if (req.pr_method->pm_id == PM_ROTATE_MASTER_KEY ||
	    req.pr_method->pm_id == PM_ROTATE_TENANT_KEY) {
		if (conn->c_waiting > 0)
			goto blocked;
		if (rpc_rotate_begin(srv, conn, req.pr_id, req.pr_params,
		    &call) == 0)
			goto done;
		goto answer;
	}
	if (req.pr_method->pm_write) {
		if ((w = calloc(1, sizeof(*w))) == NULL) {
			rpc_fail(&call, PROTO_E_INTERNAL, "out of memory");
			goto answer;
		}
		w->w_id = req.pr_id != NULL ? json_incref(req.pr_id) : NULL;
		/* rc_args borrow from params: keep them alive with the write. */
		w->w_params = json_incref(req.pr_params);
		w->w_call = call;
		call.rc_names = NULL;	/* now the write's */
		TAILQ_INSERT_TAIL(&srv->srv_writes, w, w_entry);
		conn->c_waiting++;
		server_schedule_commit(srv);
		goto done;
	}

	if (conn->c_waiting > 0)
		goto blocked;
	if (req.pr_method->pm_id == PM_BACKUP) {
		if (rpc_backup_begin(srv, conn, req.pr_id, req.pr_params,
		    &call) == 0)
			goto done;
		goto answer;
	}
	if (store_txn_begin(srv->srv_store, NULL, 0, &call.rc_txn) !=
	    STORE_OK) {
		rpc_fail(&call, PROTO_E_UNAVAILABLE, "cannot read the store");
		goto answer;
	}
	h->rh_run(&call);
	store_txn_abort(call.rc_txn);
	call.rc_txn = NULL;
answer:
	if (conn->c_waiting > 0)
		goto blocked;
	rpc_audit(&call, req.pr_method_name);
	rpc_reply(conn, req.pr_id, &call);
	/* A watcher hears at once of changes it has not seen. */
	if (call.rc_code == 0 && call.rc_method->pm_id == PM_WATCH)
		rpc_notify_watchers(srv);
done:
	rpc_call_release(&call);
	proto_request_release(&req);
	return (RPC_DONE);

blocked:
	/*
	 * Replies go out in request order, so while this connection has
	 * writes waiting for the group commit only another valid, permitted
	 * write may join them; anything else (a read, any error) waits and is
	 * handled again once they are answered.
	 */
	rpc_call_release(&call);
	proto_request_release(&req);
	return (RPC_BLOCKED);
}

/*
 * The group commit: every write queued in this loop turn runs in its own
 * nested transaction inside one parent, so a write that fails (a conflict,
 * a full map) is undone alone, and the parent commits once, with one
 * fsync, before any of them is answered.  A write that must be alone
 * (rh_alone; none is now that key rotations run in rotate.c's steps) would
 * get a transaction of its own between the others.
 */
void
rpc_commit(struct server *srv)
{
	struct rpc_write_list	 batch, done;
	struct rpc_write	*w;
	struct conn		*conn, *next;
	uint64_t		 last = 0;

	TAILQ_INIT(&batch);
	TAILQ_INIT(&done);
	TAILQ_CONCAT(&batch, &srv->srv_writes, w_entry);
	if (TAILQ_EMPTY(&batch))
		return;
	while (!TAILQ_EMPTY(&batch))
		rpc_commit_txn(srv, &batch, &done);

	while ((w = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, w, w_entry);
		if (w->w_call.rc_code == 0 && w->w_call.rc_seq > last)
			last = w->w_call.rc_seq;
		rpc_audit(&w->w_call, w->w_call.rc_method->pm_name);
		if ((conn = w->w_call.rc_conn) != NULL) {
			rpc_reply(conn, w->w_id, &w->w_call);
			conn->c_waiting--;
		}
		rpc_write_free(w);
	}

	/*
	 * Lines that waited for these replies can go on now; a half-closed
	 * peer whose last write was a notification is done.
	 */
	TAILQ_FOREACH_SAFE(conn, &srv->srv_conns, c_entry, next) {
		if (conn->c_waiting == 0 && (conn->c_blocked || conn->c_eof))
			server_conn_resume(conn);
	}
	if (last > srv->srv_notified_seq)
		rpc_notify_watchers(srv);
}

/*
 * Runs the writes at the head of batch in one transaction and moves them
 * to done: all of them up to the first that must be alone, or that one.
 */
static void
rpc_commit_txn(struct server *srv, struct rpc_write_list *batch,
    struct rpc_write_list *done)
{
	struct rpc_write_list	 txw;
	struct rpc_write	*w;
	MDB_txn			*txn = NULL;
	size_t			 n;
	int			 rc, alone;

	TAILQ_INIT(&txw);
	while ((w = TAILQ_FIRST(batch)) != NULL) {
		alone = rpc_handlers[w->w_call.rc_method->pm_id].rh_alone;
		if (alone && !TAILQ_EMPTY(&txw))
			break;
		TAILQ_REMOVE(batch, w, w_entry);
		TAILQ_INSERT_TAIL(&txw, w, w_entry);
		if (alone)
			break;
	}

	rc = store_txn_begin(srv->srv_store, NULL, 1, &txn);
	n = 0;
	TAILQ_FOREACH(w, &txw, w_entry) {
		if (rc != STORE_OK)
			rpc_store_fail(&w->w_call, rc);
		else
			rpc_run_write(srv, txn, w);
		n++;
	}
	if (rc == STORE_OK)
		rpc_feed_trim(srv, txn, n);
	if (rc == STORE_OK && (rc = store_txn_commit(txn)) != STORE_OK) {
		log_warnx("group commit failed: %s", store_strerror(rc));
		TAILQ_FOREACH(w, &txw, w_entry) {
			if (w->w_call.rc_code == 0) {
				json_decref(w->w_call.rc_result);
				w->w_call.rc_result = NULL;
				rpc_store_fail(&w->w_call, rc);
			}
		}
	}
	TAILQ_CONCAT(done, &txw, w_entry);
}

/*
 * Trims the change feed a little in every group commit (its own nested
 * transaction, so a failure costs the writes nothing): at most a fixed
 * number of entries plus a few per write, so the feed shrinks faster
 * than writes grow it and no commit walks all of it.
 */
static void
rpc_feed_trim(struct server *srv, MDB_txn *parent, size_t nwrites)
{
	MDB_txn	*txn;
	size_t	 count;
	int	 rc;

	if (store_txn_begin(srv->srv_store, parent, 1, &txn) != STORE_OK)
		return;
	rc = store_feed_trim(srv->srv_store, txn, srv->srv_conf->dc_feed_retain,
	    TRIM_PER_COMMIT + TRIM_PER_WRITE * nwrites, &count);
	if (rc == STORE_OK)
		rc = store_txn_commit(txn);
	else
		store_txn_abort(txn);
	if (rc != STORE_OK) {
		log_warnx("trimming the change feed failed: %s",
		    store_strerror(rc));
		return;
	}
	if (count > 0)
		log_debug("%s: %zu feed entries trimmed", __func__, count);
	/*
	 * More to trim (a target caught up, an upgraded store): the rest
	 * goes in small transactions between loop turns, never holding up
	 * clients for long.
	 */
	if (count == TRIM_PER_COMMIT + TRIM_PER_WRITE * nwrites &&
	    !srv->srv_stopping) {
		struct timeval	 tv = { 0, TRIM_AGAIN_MS * 1000 };

		if (srv->srv_trim_ev == NULL)
			srv->srv_trim_ev = evtimer_new(srv->srv_base,
			    rpc_trim_cb, srv);
		if (srv->srv_trim_ev != NULL &&
		    !evtimer_pending(srv->srv_trim_ev, NULL))
			evtimer_add(srv->srv_trim_ev, &tv);
	}
}

static void
rpc_trim_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct server	*srv = arg;
	MDB_txn		*txn;
	int		 rc;

	if (srv->srv_stopping ||
	    store_txn_begin(srv->srv_store, NULL, 1, &txn) != STORE_OK)
		return;
	rpc_feed_trim(srv, txn, 0);
	if ((rc = store_txn_commit(txn)) != STORE_OK)
		log_warnx("trimming the change feed failed: %s",
		    store_strerror(rc));
}

static void
rpc_run_write(struct server *srv, MDB_txn *parent, struct rpc_write *w)
{
	struct rpc_call	*call = &w->w_call;
	int		 rc;

	if ((rc = store_txn_begin(srv->srv_store, parent, 1,
	    &call->rc_txn)) != STORE_OK) {
		rpc_store_fail(call, rc);
		return;
	}
	if (rpc_handlers[call->rc_method->pm_id].rh_run(call) == 0)
		rc = store_txn_commit(call->rc_txn);
	else {
		store_txn_abort(call->rc_txn);
		rc = STORE_OK;
	}
	call->rc_txn = NULL;
	if (rc != STORE_OK) {
		json_decref(call->rc_result);
		call->rc_result = NULL;
		rpc_store_fail(call, rc);
	}
}

void
rpc_conn_gone(struct server *srv, struct conn *conn)
{
	struct rpc_write	*w;

	TAILQ_FOREACH(w, &srv->srv_writes, w_entry) {
		if (w->w_call.rc_conn == conn) {
			w->w_call.rc_conn = NULL;
			/* The audit line outlives the connection's groups. */
			w->w_call.rc_peer.p_groups = NULL;
			w->w_call.rc_peer.p_ngroups = 0;
		}
	}
	if ((w = backup_pending(srv)) != NULL && w->w_call.rc_conn == conn) {
		w->w_call.rc_conn = NULL;
		w->w_call.rc_peer.p_groups = NULL;
		w->w_call.rc_peer.p_ngroups = 0;
	}
	rotate_foreach(srv, rpc_rotate_forget, conn);
	conn->c_waiting = 0;
}

void
rpc_notify_watchers(struct server *srv)
{
	struct conn	*conn;
	uint64_t	 last;

	last = rpc_last_seq(srv);
	srv->srv_notified_seq = last;
	TAILQ_FOREACH(conn, &srv->srv_conns, c_entry) {
		if (!conn->c_watching || conn->c_closing ||
		    conn->c_watch_seq >= last)
			continue;
		conn->c_watch_seq = last;
		server_send(conn, proto_notification("changed",
		    json_pack("{s:I}", "seq", (json_int_t)last)));
	}
}

static uint64_t
rpc_last_seq(struct server *srv)
{
	MDB_txn		*txn;
	uint64_t	 seq = 0;

	if (store_txn_begin(srv->srv_store, NULL, 0, &txn) != STORE_OK)
		return (srv->srv_notified_seq);
	if (store_last_seq(srv->srv_store, txn, &seq) != STORE_OK)
		seq = srv->srv_notified_seq;
	store_txn_abort(txn);
	return (seq);
}

static int
rpc_fail(struct rpc_call *call, int code, const char *fmt, ...)
{
	va_list	ap;

	call->rc_code = code;
	va_start(ap, fmt);
	vsnprintf(call->rc_msg, sizeof(call->rc_msg), fmt, ap);
	va_end(ap);
	return (-1);
}

/* Store errors as the client sees them: what happened and what to do. */
static int
rpc_store_fail(struct rpc_call *call, int rc)
{
	struct daemon_conf	*conf = call->rc_srv->srv_conf;

	switch (rc) {
	case STORE_E_NOT_FOUND:
		if (call->rc_args.ra_tenant != NULL)
			return (rpc_fail(call, PROTO_E_NOT_FOUND,
			    "no tenant '%s'", call->rc_args.ra_tenant));
		return (rpc_fail(call, PROTO_E_NOT_FOUND, "not found"));
	case STORE_E_FULL:
		return (rpc_fail(call, PROTO_E_UNAVAILABLE, "the store is "
		    "full (map_size %llu bytes); raise map_size in the "
		    "configuration and restart wfvaultd; reads still work",
		    (unsigned long long)conf->dc_map_size));
	case STORE_E_INTEGRITY:
		log_warnx("a record of tenant '%s' failed authentication",
		    call->rc_args.ra_tenant != NULL ?
		    call->rc_args.ra_tenant : "?");
		return (rpc_fail(call, PROTO_E_INTEGRITY, "a stored record "
		    "of tenant '%s' failed authentication (tampered with, or "
		    "another master key)", call->rc_args.ra_tenant != NULL ?
		    call->rc_args.ra_tenant : "?"));
	case STORE_E_DISK_FULL:
		log_warnx("the disk holding %s is full", conf->dc_data_dir);
		return (rpc_fail(call, PROTO_E_UNAVAILABLE, "no space left on "
		    "the disk holding the store; free some and try again; "
		    "reads still work"));
	case STORE_E_NOMEM:
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	default:
		log_warnx("store error: %s", store_strerror(rc));
		return (rpc_fail(call, PROTO_E_INTERNAL, "store error: %s",
		    store_strerror(rc)));
	}
}

/*
 * Default deny.  Tenant methods need the permission on that tenant, list
 * needs it somewhere (it then shows only those tenants), the feed and
 * status need it on every tenant.
 */
static int
rpc_allowed(struct rpc_call *call)
{
	const struct acl		*acl = &call->rc_srv->srv_conf->dc_acl;
	const struct proto_method_info	*m = call->rc_method;
	char				 perm[64];
	int				 ok;

	if (m->pm_perm == 0)
		return (1);
	if (m->pm_id == PM_LIST)
		ok = (acl_perms_any(acl, &call->rc_peer) & m->pm_perm) ==
		    m->pm_perm;
	else if (call->rc_args.ra_tenant != NULL)
		ok = (acl_perms(acl, &call->rc_peer, call->rc_args.ra_tenant) &
		    m->pm_perm) == m->pm_perm;
	else
		ok = acl_perms_all(acl, &call->rc_peer, m->pm_perm);
	if (ok)
		return (1);

	proto_perms_format(m->pm_perm, perm, sizeof(perm));
	if (call->rc_args.ra_tenant != NULL)
		rpc_fail(call, PROTO_E_DENIED, "permission denied: uid %u "
		    "has no '%s' permission on tenant '%s'",
		    (unsigned)call->rc_peer.p_uid, perm,
		    call->rc_args.ra_tenant);
	else
		rpc_fail(call, PROTO_E_DENIED, "permission denied: uid %u "
		    "has no '%s' permission%s", (unsigned)call->rc_peer.p_uid,
		    perm, m->pm_id == PM_LIST ? "" : " on every tenant");
	return (0);
}

static void
rpc_audit(struct rpc_call *call, const char *method)
{
	struct audit	*audit = call->rc_srv->srv_audit;
	const char	*name = method != NULL ? method : "invalid";

	/* What a granted peer did with tenant data is never left out. */
	if (call->rc_code == 0 && call->rc_method->pm_id != PM_HELLO) {
		audit_log(audit, &call->rc_peer, name, call->rc_args.ra_tenant,
		    call->rc_names, "ok");
		return;
	}
	/* Failures and hellos repeated in a loop are counted, not written. */
	if (!audit_limited(audit, &call->rc_peer, name,
	    call->rc_args.ra_tenant, call->rc_names, call->rc_code))
		server_schedule_audit(call->rc_srv);
	else if (call->rc_code == PROTO_E_DENIED)
		log_info("denied: uid %u gid %u pid %d %s%s%s",
		    (unsigned)call->rc_peer.p_uid,
		    (unsigned)call->rc_peer.p_gid, (int)call->rc_peer.p_pid,
		    name, call->rc_args.ra_tenant != NULL ? " tenant " : "",
		    call->rc_args.ra_tenant != NULL ?
		    call->rc_args.ra_tenant : "");
}

/* Sends the result or error of call; a notification (no id) gets none. */
static void
rpc_reply(struct conn *conn, json_t *id, struct rpc_call *call)
{
	json_t	*data;

	if (id == NULL && call->rc_code != PROTO_E_PARSE &&
	    call->rc_code != PROTO_E_INVALID_REQUEST)
		return;
	if (call->rc_code == 0) {
		server_send(conn, proto_reply_result(id, call->rc_result));
		call->rc_result = NULL;
		return;
	}
	data = json_pack("{s:s}", "kind", proto_err_kind(call->rc_code));
	if (data != NULL && call->rc_code == PROTO_E_TRIMMED)
		json_object_set_new(data, "first_seq",
		    json_integer((json_int_t)call->rc_first_seq));
	server_send(conn, proto_reply_error(id, call->rc_code, call->rc_msg,
	    data));
}

static void
rpc_call_release(struct rpc_call *call)
{
	json_decref(call->rc_result);
	json_decref(call->rc_names);
	call->rc_result = call->rc_names = NULL;
}

static void
rpc_write_free(struct rpc_write *w)
{
	rpc_call_release(&w->w_call);
	json_decref(w->w_id);
	json_decref(w->w_params);
	free(w);
}

/* Parameter checks: types, ranges, names; unknown params are refused. */

static int
args_tenant(json_t *params, const char *name, int req, const char **out,
    char *err, size_t errlen)
{
	if (proto_param_string(params, name, req, out, err, errlen) == -1)
		return (-1);
	if (*out != NULL && proto_tenant_valid(*out, err, errlen) == -1)
		return (-1);
	return (0);
}

static int
args_none(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { NULL };

	return (proto_params_check(params, allowed, err, errlen));
}

static int
args_put(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "tenant", "fields", "cas",
	    "replace", NULL };
	const char	*key;
	json_t		*value;
	int		 present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    args_tenant(params, "tenant", 1, &a->ra_tenant, err,
	    errlen) == -1 ||
	    proto_param_uint(params, "cas", 0, 0, INT64_MAX, &a->ra_cas,
	    &a->ra_has_cas, err, errlen) == -1 ||
	    proto_param_bool(params, "replace", &a->ra_replace, &present, err,
	    errlen) == -1)
		return (-1);
	a->ra_fields = json_object_get(params, "fields");
	if (a->ra_fields == NULL) {
		snprintf(err, errlen, "missing param 'fields'");
		return (-1);
	}
	if (!json_is_object(a->ra_fields)) {
		snprintf(err, errlen, "param 'fields' must be an object");
		return (-1);
	}
	if (json_object_size(a->ra_fields) == 0) {
		snprintf(err, errlen, "param 'fields' is empty; nothing to "
		    "store");
		return (-1);
	}
	json_object_foreach(a->ra_fields, key, value) {
		if (proto_field_valid(key, err, errlen) == -1)
			return (-1);
	}
	return (0);
}

static int
args_get(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "tenant", "field", "version",
	    NULL };
	int	present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    args_tenant(params, "tenant", 1, &a->ra_tenant, err,
	    errlen) == -1 ||
	    proto_param_string(params, "field", 0, &a->ra_field, err,
	    errlen) == -1 ||
	    proto_param_uint(params, "version", 0, 1, INT64_MAX,
	    &a->ra_version, &present, err, errlen) == -1)
		return (-1);
	if (a->ra_field != NULL &&
	    proto_field_valid(a->ra_field, err, errlen) == -1)
		return (-1);
	return (0);
}

static int
args_list(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "prefix", "cursor", "limit",
	    NULL };
	const char	*p;
	int		 present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    proto_param_string(params, "prefix", 0, &a->ra_prefix, err,
	    errlen) == -1 ||
	    args_tenant(params, "cursor", 0, &a->ra_cursor, err,
	    errlen) == -1 ||
	    proto_param_uint(params, "limit", 0, 1, LIST_MAX_LIMIT,
	    &a->ra_limit, &present, err, errlen) == -1)
		return (-1);
	if (!present)
		a->ra_limit = LIST_DEFAULT_LIMIT;
	if (a->ra_prefix != NULL) {
		if (strlen(a->ra_prefix) > PROTO_TENANT_MAX) {
			snprintf(err, errlen, "param 'prefix' is longer than "
			    "a tenant id can be");
			return (-1);
		}
		for (p = a->ra_prefix; *p != '\0'; p++) {
			if (!((*p >= 'a' && *p <= 'z') ||
			    (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '.' ||
			    *p == '_' || *p == '-')) {
				snprintf(err, errlen, "param 'prefix' may "
				    "hold only letters, digits, '.', '_' and "
				    "'-'");
				return (-1);
			}
		}
	}
	return (0);
}

static int
args_delete(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "tenant", "field", "cas",
	    "purge", NULL };
	int	present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    args_tenant(params, "tenant", 1, &a->ra_tenant, err,
	    errlen) == -1 ||
	    proto_param_string(params, "field", 0, &a->ra_field, err,
	    errlen) == -1 ||
	    proto_param_uint(params, "cas", 0, 0, INT64_MAX, &a->ra_cas,
	    &a->ra_has_cas, err, errlen) == -1 ||
	    proto_param_bool(params, "purge", &a->ra_purge, &present, err,
	    errlen) == -1)
		return (-1);
	if (a->ra_field != NULL &&
	    proto_field_valid(a->ra_field, err, errlen) == -1)
		return (-1);
	if (a->ra_field != NULL && a->ra_purge) {
		snprintf(err, errlen, "purge removes a whole tenant; it "
		    "cannot go with 'field'");
		return (-1);
	}
	return (0);
}

static int
args_tenant_only(json_t *params, struct rpc_args *a, char *err,
    size_t errlen)
{
	static const char *const allowed[] = { "tenant", NULL };

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    args_tenant(params, "tenant", 1, &a->ra_tenant, err,
	    errlen) == -1)
		return (-1);
	return (0);
}

static int
args_backup(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "name", NULL };

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    proto_param_string(params, "name", 0, &a->ra_name, err,
	    errlen) == -1)
		return (-1);
	if (a->ra_name != NULL &&
	    proto_backup_name_valid(a->ra_name, err, errlen) == -1)
		return (-1);
	return (0);
}

static int
args_changes(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "since", "limit", NULL };
	int	present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    proto_param_uint(params, "since", 1, 0, INT64_MAX, &a->ra_since,
	    &present, err, errlen) == -1 ||
	    proto_param_uint(params, "limit", 0, 1, CHANGES_MAX_LIMIT,
	    &a->ra_limit, &present, err, errlen) == -1)
		return (-1);
	if (!present)
		a->ra_limit = CHANGES_DEFAULT_LIMIT;
	return (0);
}

/* Target names follow the tenant id rules. */
static int
args_target(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	if (proto_param_string(params, "target", 1, &a->ra_target, err,
	    errlen) == -1)
		return (-1);
	if (proto_tenant_valid(a->ra_target, err, errlen) == -1) {
		snprintf(err, errlen, "param 'target' must be 1-128 letters, "
		    "digits, '.', '_' or '-'");
		return (-1);
	}
	return (0);
}

static int
args_sync_ack(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "target", "seq", NULL };
	int	present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    args_target(params, a, err, errlen) == -1 ||
	    proto_param_uint(params, "seq", 1, 0, INT64_MAX, &a->ra_seq,
	    &present, err, errlen) == -1)
		return (-1);
	return (0);
}

static int
args_sync_state(json_t *params, struct rpc_args *a, char *err,
    size_t errlen)
{
	static const char *const allowed[] = { "target", NULL };

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    args_target(params, a, err, errlen) == -1)
		return (-1);
	return (0);
}

static int
args_watch(json_t *params, struct rpc_args *a, char *err, size_t errlen)
{
	static const char *const allowed[] = { "since", NULL };
	int	present;

	if (proto_params_check(params, allowed, err, errlen) == -1 ||
	    proto_param_uint(params, "since", 1, 0, INT64_MAX, &a->ra_since,
	    &present, err, errlen) == -1)
		return (-1);
	return (0);
}

/* The methods. */

static int
run_hello(struct rpc_call *call)
{
	const struct acl	*acl = &call->rc_srv->srv_conf->dc_acl;
	json_t			*perms;
	unsigned		 bits, bit;

	bits = acl_perms_any(acl, &call->rc_peer);
	if ((perms = json_array()) == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	for (bit = 1; bit <= PERM_ADMIN; bit <<= 1)
		if (bits & bit)
			json_array_append_new(perms,
			    json_string(proto_perm_name(bit)));
	call->rc_result = json_pack("{s:s,s:s,s:i,s:I,s:I,s:I,s:o}",
	    "server", PROTO_SERVER_NAME, "version", PROTO_SERVER_VERSION,
	    "protocol", PROTO_VERSION,
	    "uid", (json_int_t)call->rc_peer.p_uid,
	    "gid", (json_int_t)call->rc_peer.p_gid,
	    "pid", (json_int_t)call->rc_peer.p_pid,
	    "permissions", perms);
	if (call->rc_result == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	return (0);
}

/* Names of the fields a request touches, for the audit line. */
static void
rpc_note_fields(struct rpc_call *call, json_t *fields, const char *field)
{
	const char	*key;
	json_t		*value;

	if ((fields == NULL && field == NULL) ||
	    (call->rc_names = json_array()) == NULL)
		return;
	if (field != NULL)
		json_array_append_new(call->rc_names, json_string(field));
	if (fields != NULL)
		json_object_foreach(fields, key, value)
			json_array_append_new(call->rc_names,
			    json_string(key));
}

/*
 * Reads the tenant's current version (0 when it does not exist or was
 * deleted) and, when want_config, its config; then applies cas.
 */
static int
rpc_current(struct rpc_call *call, json_t **config, uint64_t *version)
{
	struct store_tenant	 st = STORE_TENANT_INIT;
	struct rpc_args		*a = &call->rc_args;
	int			 rc;

	*version = 0;
	if (config != NULL)
		*config = NULL;
	rc = store_tenant_get(call->rc_srv->srv_store, call->rc_txn,
	    a->ra_tenant, &st);
	if (rc == STORE_OK && !st.st_deleted)
		*version = st.st_version;
	store_tenant_release(&st);
	if (rc != STORE_OK && rc != STORE_E_NOT_FOUND)
		return (rpc_store_fail(call, rc));

	if (a->ra_has_cas && a->ra_cas != *version) {
		if (*version == 0)
			return (rpc_fail(call, PROTO_E_CONFLICT, "tenant '%s' "
			    "does not exist, expected version %llu",
			    a->ra_tenant, (unsigned long long)a->ra_cas));
		return (rpc_fail(call, PROTO_E_CONFLICT, "tenant '%s' is at "
		    "version %llu, expected %llu", a->ra_tenant,
		    (unsigned long long)*version,
		    (unsigned long long)a->ra_cas));
	}
	if (config == NULL || *version == 0)
		return (0);
	rc = store_config_get(call->rc_srv->srv_store, call->rc_txn,
	    a->ra_tenant, 0, config, version);
	if (rc != STORE_OK)
		return (rpc_store_fail(call, rc));
	return (0);
}

/* Stores config as the tenant's next version, within max_config_bytes. */
static int
rpc_store_config(struct rpc_call *call, json_t *config)
{
	struct daemon_conf	*conf = call->rc_srv->srv_conf;
	const char		*tenant = call->rc_args.ra_tenant;
	uint64_t		 version;
	size_t			 size;
	int			 rc;

	size = json_dumpb(config, NULL, 0, JSON_COMPACT);
	if (size > conf->dc_max_config_bytes)
		return (rpc_fail(call, PROTO_E_TOO_LARGE, "config too large: "
		    "tenant '%s' would be over max_config_bytes (%llu)",
		    tenant, (unsigned long long)conf->dc_max_config_bytes));
	rc = store_config_put(call->rc_srv->srv_store, call->rc_txn, tenant,
	    config, &version, &call->rc_seq);
	if (rc != STORE_OK)
		return (rpc_store_fail(call, rc));
	call->rc_result = json_pack("{s:s,s:I}", "tenant", tenant, "version",
	    (json_int_t)version);
	if (call->rc_result == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	return (0);
}

static int
run_put(struct rpc_call *call)
{
	struct rpc_args	*a = &call->rc_args;
	json_t		*config = NULL, *current = NULL, *value, *old;
	const char	*key;
	uint64_t	 version;
	int		 ret = -1, changed = 0, may_read;

	/*
	 * "No new version when nothing changes" tells the caller whether its
	 * values equal the stored ones, so it is kept for callers who may
	 * read them anyway: for a write-only caller every put is a new
	 * version, whatever is stored.
	 */
	may_read = (acl_perms(&call->rc_srv->srv_conf->dc_acl, &call->rc_peer,
	    a->ra_tenant) & PERM_READ) != 0;
	if (rpc_current(call, !a->ra_replace || may_read ? &current : NULL,
	    &version) == -1)
		goto out;
	if (!a->ra_replace && current != NULL)
		config = json_incref(current);
	else if ((config = json_object()) == NULL) {
		rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	json_object_foreach(a->ra_fields, key, value) {
		old = json_object_get(config, key);
		if (json_is_null(value)) {
			if (old != NULL) {
				json_object_del(config, key);
				changed = 1;
			}
		} else if (old == NULL || !json_equal(old, value)) {
			if (json_object_set(config, key, value) == -1) {
				rpc_fail(call, PROTO_E_INTERNAL,
				    "out of memory");
				goto out;
			}
			changed = 1;
		}
	}
	if (version == 0 && json_object_size(config) == 0) {
		rpc_fail(call, PROTO_E_PARAMS, "nothing to store: tenant '%s' "
		    "does not exist and every field given is null",
		    a->ra_tenant);
		goto out;
	}
	/* A replace changes something when the result is another config. */
	if (a->ra_replace)
		changed = current == NULL || !json_equal(config, current);
	/*
	 * A put that changes nothing is not a new version: no write, no
	 * change for the sync agent to push again.
	 */
	if (may_read && version != 0 && !changed) {
		call->rc_result = json_pack("{s:s,s:I}", "tenant",
		    a->ra_tenant, "version", (json_int_t)version);
		if (call->rc_result == NULL)
			rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
		else
			ret = 0;
		goto out;
	}
	ret = rpc_store_config(call, config);
out:
	json_decref(config);
	json_decref(current);
	return (ret);
}

/*
 * delete with purge: no tombstone and no older change of the tenant is
 * left, only one delete change for the sync agent.  A deleted tenant can
 * be purged too.
 */
static int
rpc_purge(struct rpc_call *call)
{
	struct rpc_args	*a = &call->rc_args;
	uint64_t	 version;
	int		 rc;

	if (rpc_current(call, NULL, &version) == -1)
		return (-1);
	rc = store_tenant_purge(call->rc_srv->srv_store, call->rc_txn,
	    a->ra_tenant, &version, &call->rc_seq);
	if (rc != STORE_OK)
		return (rpc_store_fail(call, rc));
	call->rc_result = json_pack("{s:s,s:I,s:b}", "tenant", a->ra_tenant,
	    "version", (json_int_t)version, "purged", 1);
	if (call->rc_result == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	return (0);
}

static int
run_delete(struct rpc_call *call)
{
	struct rpc_args	*a = &call->rc_args;
	json_t		*config = NULL;
	uint64_t	 version;
	int		 rc, ret = -1;

	if (a->ra_purge)
		return (rpc_purge(call));
	if (rpc_current(call, a->ra_field != NULL ? &config : NULL,
	    &version) == -1)
		goto out;
	if (version == 0) {
		rpc_fail(call, PROTO_E_NOT_FOUND, "no tenant '%s'",
		    a->ra_tenant);
		goto out;
	}
	if (a->ra_field == NULL) {
		rc = store_tenant_delete(call->rc_srv->srv_store, call->rc_txn,
		    a->ra_tenant, &version, &call->rc_seq);
		if (rc != STORE_OK) {
			rpc_store_fail(call, rc);
			goto out;
		}
		call->rc_result = json_pack("{s:s,s:I}", "tenant",
		    a->ra_tenant, "version", (json_int_t)version);
		if (call->rc_result == NULL)
			rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
		else
			ret = 0;
		goto out;
	}
	if (json_object_get(config, a->ra_field) == NULL) {
		rpc_fail(call, PROTO_E_NOT_FOUND, "tenant '%s' has no field "
		    "'%s'", a->ra_tenant, a->ra_field);
		goto out;
	}
	json_object_del(config, a->ra_field);
	ret = rpc_store_config(call, config);
out:
	json_decref(config);
	return (ret);
}

static int
run_get(struct rpc_call *call)
{
	struct rpc_args	*a = &call->rc_args;
	json_t		*config = NULL, *value;
	uint64_t	 version;
	int		 rc;

	rc = store_config_get(call->rc_srv->srv_store, call->rc_txn,
	    a->ra_tenant, a->ra_version, &config, &version);
	if (rc == STORE_E_NOT_FOUND && a->ra_version != 0)
		return (rpc_fail(call, PROTO_E_NOT_FOUND, "tenant '%s' has "
		    "no version %llu (only the last keep_versions are kept)",
		    a->ra_tenant, (unsigned long long)a->ra_version));
	if (rc != STORE_OK)
		return (rpc_store_fail(call, rc));
	if (a->ra_field == NULL) {
		/* The audit line names every field whose value went out. */
		json_decref(call->rc_names);
		call->rc_names = NULL;
		rpc_note_fields(call, config, NULL);
		call->rc_result = json_pack("{s:s,s:I,s:o}", "tenant",
		    a->ra_tenant, "version", (json_int_t)version, "fields",
		    config);
	} else {
		if ((value = json_object_get(config, a->ra_field)) == NULL) {
			json_decref(config);
			return (rpc_fail(call, PROTO_E_NOT_FOUND, "tenant "
			    "'%s' has no field '%s'", a->ra_tenant,
			    a->ra_field));
		}
		call->rc_result = json_pack("{s:s,s:I,s:s,s:O}", "tenant",
		    a->ra_tenant, "version", (json_int_t)version, "field",
		    a->ra_field, "value", value);
		json_decref(config);
	}
	if (call->rc_result == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	return (0);
}

struct rpc_list_ctx {
	struct rpc_call	*lc_call;
	json_t		*lc_tenants;
	uint64_t	 lc_count;
	int		 lc_more;
};

static void
rpc_time(uint64_t t, char *buf, size_t len)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "1970-01-01T00:00:00Z");
}

static int
rpc_list_one(void *arg, const struct store_tenant *st)
{
	struct rpc_list_ctx	*lc = arg;
	struct rpc_call		*call = lc->lc_call;
	char			 when[32];
	json_t			*item;

	if (!(acl_perms(&call->rc_srv->srv_conf->dc_acl, &call->rc_peer,
	    st->st_tenant) & PERM_LIST))
		return (0);
	if (lc->lc_count == call->rc_args.ra_limit) {
		lc->lc_more = 1;
		return (1);
	}
	rpc_time(st->st_updated, when, sizeof(when));
	item = json_pack("{s:s,s:I,s:s,s:O}", "tenant", st->st_tenant,
	    "version", (json_int_t)st->st_version, "updated_at", when,
	    "fields", st->st_fields);
	if (item == NULL || json_array_append_new(lc->lc_tenants, item) == -1)
		return (STORE_E_NOMEM);
	lc->lc_count++;
	return (0);
}

static int
run_list(struct rpc_call *call)
{
	struct rpc_list_ctx	 lc;
	json_t			*last;
	int			 rc;

	memset(&lc, 0, sizeof(lc));
	lc.lc_call = call;
	if ((lc.lc_tenants = json_array()) == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	rc = store_list(call->rc_srv->srv_store, call->rc_txn,
	    call->rc_args.ra_prefix, call->rc_args.ra_cursor, rpc_list_one,
	    &lc);
	if (rc < 0) {
		json_decref(lc.lc_tenants);
		return (rpc_store_fail(call, rc));
	}
	call->rc_result = json_pack("{s:o}", "tenants", lc.lc_tenants);
	if (call->rc_result == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	if (lc.lc_more && lc.lc_count > 0) {
		last = json_array_get(lc.lc_tenants, lc.lc_count - 1);
		json_object_set(call->rc_result, "cursor",
		    json_object_get(last, "tenant"));
	}
	return (0);
}

static int
rpc_change_one(void *arg, const struct store_change *sc)
{
	json_t	*item;

	item = json_pack("{s:I,s:s,s:I,s:s}", "seq", (json_int_t)sc->sc_seq,
	    "tenant", sc->sc_tenant, "version", (json_int_t)sc->sc_version,
	    "op", sc->sc_op == STORE_OP_DELETE ? "delete" : "put");
	if (item == NULL || json_array_append_new(arg, item) == -1)
		return (STORE_E_NOMEM);
	return (0);
}

static int
run_changes(struct rpc_call *call)
{
	json_t		*changes;
	uint64_t	 last, trimmed;
	int		 rc;

	/* A reader that missed trimmed changes cannot go on from here. */
	if ((rc = store_feed_trimmed(call->rc_srv->srv_store, call->rc_txn,
	    &trimmed)) != STORE_OK)
		return (rpc_store_fail(call, rc));
	if (call->rc_args.ra_since < trimmed) {
		call->rc_first_seq = trimmed + 1;
		return (rpc_fail(call, PROTO_E_TRIMMED, "the change feed "
		    "before seq %llu was trimmed (since %llu); push every "
		    "tenant's current config, then go on from last_seq",
		    (unsigned long long)trimmed + 1,
		    (unsigned long long)call->rc_args.ra_since));
	}
	if ((changes = json_array()) == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	rc = store_changes(call->rc_srv->srv_store, call->rc_txn,
	    call->rc_args.ra_since, call->rc_args.ra_limit, rpc_change_one,
	    changes);
	if (rc == STORE_OK)
		rc = store_last_seq(call->rc_srv->srv_store, call->rc_txn,
		    &last);
	if (rc != STORE_OK) {
		json_decref(changes);
		return (rpc_store_fail(call, rc));
	}
	call->rc_result = json_pack("{s:o,s:I}", "changes", changes,
	    "last_seq", (json_int_t)last);
	if (call->rc_result == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	return (0);
}

static int
run_sync_ack(struct rpc_call *call)
{
	uint64_t	last;
	int		rc;

	if ((rc = store_last_seq(call->rc_srv->srv_store, call->rc_txn,
	    &last)) != STORE_OK)
		return (rpc_store_fail(call, rc));
	if (call->rc_args.ra_seq > last)
		return (rpc_fail(call, PROTO_E_PARAMS, "seq %llu is past the "
		    "end of the change feed (%llu)",
		    (unsigned long long)call->rc_args.ra_seq,
		    (unsigned long long)last));
	if ((rc = store_sync_ack(call->rc_srv->srv_store, call->rc_txn,
	    call->rc_args.ra_target, call->rc_args.ra_seq)) != STORE_OK)
		return (rpc_store_fail(call, rc));
	if ((call->rc_result = json_object()) == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	return (0);
}

static int
run_sync_state(struct rpc_call *call)
{
	uint64_t	acked, last;
	int		rc;

	rc = store_sync_get(call->rc_srv->srv_store, call->rc_txn,
	    call->rc_args.ra_target, &acked);
	if (rc != STORE_OK && rc != STORE_E_NOT_FOUND)
		return (rpc_store_fail(call, rc));
	if ((rc = store_last_seq(call->rc_srv->srv_store, call->rc_txn,
	    &last)) != STORE_OK)
		return (rpc_store_fail(call, rc));
	call->rc_result = json_pack("{s:s,s:I,s:I}", "target",
	    call->rc_args.ra_target, "acked_seq", (json_int_t)acked,
	    "last_seq", (json_int_t)last);
	if (call->rc_result == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	return (0);
}

static int
run_watch(struct rpc_call *call)
{
	call->rc_conn->c_watching = 1;
	call->rc_conn->c_watch_seq = call->rc_args.ra_since;
	if ((call->rc_result = json_object()) == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	return (0);
}

struct rpc_status_ctx {
	json_t		*sc_targets;
	uint64_t	 sc_last;
};

static int
rpc_status_target(void *arg, const char *target, uint64_t seq)
{
	struct rpc_status_ctx	*sc = arg;
	json_t			*item;

	item = json_pack("{s:s,s:I,s:I}", "target", target, "acked_seq",
	    (json_int_t)seq, "lag",
	    (json_int_t)(sc->sc_last > seq ? sc->sc_last - seq : 0));
	if (item == NULL || json_array_append_new(sc->sc_targets, item) == -1)
		return (STORE_E_NOMEM);
	return (0);
}

static int
run_status(struct rpc_call *call)
{
	struct server		*srv = call->rc_srv;
	struct store_stat	 ss;
	struct rpc_status_ctx	 sc;
	int			 rc;

	if ((rc = store_stat(srv->srv_store, call->rc_txn, &ss)) != STORE_OK)
		return (rpc_store_fail(call, rc));
	sc.sc_last = ss.ss_last_seq;
	if ((sc.sc_targets = json_array()) == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	if ((rc = store_sync_list(srv->srv_store, call->rc_txn,
	    rpc_status_target, &sc)) != STORE_OK) {
		json_decref(sc.sc_targets);
		return (rpc_store_fail(call, rc));
	}
	call->rc_result = json_pack("{s:s,s:s,s:i,s:I,s:I,s:I,"
	    "s:{s:I,s:I,s:I,s:I,s:I,s:I},s:o}",
	    "server", PROTO_SERVER_NAME, "version", PROTO_SERVER_VERSION,
	    "protocol", PROTO_VERSION,
	    "uptime", (json_int_t)(time(NULL) - srv->srv_started),
	    "connections", (json_int_t)srv->srv_nconns,
	    "tenants", (json_int_t)ss.ss_tenants,
	    "store", "map_size", (json_int_t)ss.ss_map_size,
	    "used_bytes", (json_int_t)ss.ss_used_bytes,
	    "last_seq", (json_int_t)ss.ss_last_seq,
	    "versions", (json_int_t)ss.ss_versions,
	    "changes", (json_int_t)ss.ss_changes,
	    "trimmed_seq", (json_int_t)ss.ss_trimmed_seq,
	    "sync", sc.sc_targets);
	if (call->rc_result == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	return (0);
}

/*
 * Starts a backup for call; its reply (and the connection's next lines)
 * wait for rpc_backup_done.  0 when started, else -1 with call's error.
 */
static int
rpc_backup_begin(struct server *srv, struct conn *conn, json_t *id,
    json_t *params, struct rpc_call *call)
{
	struct backup_result	 res;
	struct rpc_write	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	w->w_id = id != NULL ? json_incref(id) : NULL;
	/* ra_name borrows from params. */
	w->w_params = json_incref(params);
	w->w_call = *call;
	if (backup_start(srv, call->rc_args.ra_name, rpc_backup_done, w,
	    &res) == -1) {
		json_decref(w->w_id);
		json_decref(w->w_params);
		free(w);
		return (rpc_fail(call, res.br_code, "%s", res.br_msg));
	}
	call->rc_names = NULL;	/* now the backup's */
	conn->c_waiting++;
	return (0);
}

/* The backup's copy is on disk (or failed): audit and answer it. */
static void
rpc_backup_done(struct server *srv, void *arg,
    const struct backup_result *res)
{
	struct rpc_write	*w = arg;
	struct rpc_call		*call = &w->w_call;
	struct conn		*conn = call->rc_conn;

	if (res->br_code != 0)
		rpc_fail(call, res->br_code, "%s", res->br_msg);
	else if ((call->rc_result = json_pack("{s:s,s:I}", "path",
	    res->br_path, "bytes", (json_int_t)res->br_bytes)) == NULL)
		rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	rpc_audit(call, call->rc_method->pm_name);
	if (conn != NULL) {
		rpc_reply(conn, w->w_id, call);
		conn->c_waiting--;
	}
	rpc_write_free(w);
	/* A notification's backup owes no reply: a half-closed peer is done. */
	if (conn != NULL && conn->c_waiting == 0 &&
	    (conn->c_blocked || conn->c_eof))
		server_conn_resume(conn);
}

/*
 * Starts a key rotation for call: the master key's, to the next master key
 * named by the configuration file as it is now (so naming it needs no
 * restart), or a tenant's.  Its reply (and the connection's next lines)
 * wait for rpc_rotate_done; other connections are served meanwhile.  0
 * when started, else -1 with call's error.
 */
static int
rpc_rotate_begin(struct server *srv, struct conn *conn, json_t *id,
    json_t *params, struct rpc_call *call)
{
	struct daemon_conf	 fresh;
	struct rpc_write	*w;
	unsigned char		*next = NULL;
	char			 err[512];
	int			 rc;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return (rpc_fail(call, PROTO_E_INTERNAL, "out of memory"));
	w->w_id = id != NULL ? json_incref(id) : NULL;
	/* ra_tenant borrows from params. */
	w->w_params = json_incref(params);
	w->w_call = *call;
	if (call->rc_method->pm_id == PM_ROTATE_TENANT_KEY) {
		if ((rc = rotate_tenant_start(srv, call->rc_args.ra_tenant,
		    rpc_rotate_done, w)) != STORE_OK) {
			rpc_store_fail(call, rc);
			goto fail;
		}
		goto started;
	}

	memset(&fresh, 0, sizeof(fresh));
	if (daemon_conf_load(srv->srv_conf_path, &fresh, err,
	    sizeof(err)) == -1) {
		rpc_fail(call, PROTO_E_UNAVAILABLE, "cannot re-read the "
		    "configuration: %s", err);
		goto fail;
	}
	if (!keys_configured(&fresh, KEYS_NEXT)) {
		daemon_conf_release(&fresh);
		rpc_fail(call, PROTO_E_UNAVAILABLE, "set master_key_next_file "
		    "(or master_key_next_credential) in %s to a new key "
		    "(wfvaultd --gen-key PATH) first", srv->srv_conf_path);
		goto fail;
	}
	rc = keys_load(&fresh, KEYS_NEXT, &next, err, sizeof(err));
	daemon_conf_release(&fresh);
	if (rc == -1) {
		rpc_fail(call, PROTO_E_UNAVAILABLE, "%s", err);
		goto fail;
	}
	if (sodium_memcmp(next, store_master_key(srv->srv_store),
	    CRYPTO_KEY_BYTES) == 0) {
		crypto_key_free(next);
		rpc_fail(call, PROTO_E_UNAVAILABLE, "the next master key is "
		    "the one the store is sealed with already; put a new key "
		    "there (wfvaultd --gen-key PATH)");
		goto fail;
	}
	/* next is rotate.c's from here, whatever happens. */
	if (rotate_master_start(srv, next, rpc_rotate_done, w, err,
	    sizeof(err)) == -1) {
		rpc_fail(call, PROTO_E_UNAVAILABLE, "%s", err);
		goto fail;
	}
started:
	call->rc_names = NULL;	/* now the rotation's */
	conn->c_waiting++;
	return (0);
fail:
	json_decref(w->w_id);
	json_decref(w->w_params);
	free(w);
	return (-1);
}

/* A key rotation ended: audit and answer it. */
static void
rpc_rotate_done(struct server *srv, void *arg,
    const struct rotate_result *res)
{
	struct rpc_write	*w = arg;
	struct rpc_call		*call = &w->w_call;
	struct conn		*conn = call->rc_conn;
	int			 master;

	master = call->rc_method->pm_id == PM_ROTATE_MASTER_KEY;
	if (res->rr_stopped)
		rpc_fail(call, PROTO_E_UNAVAILABLE, "wfvaultd is shutting "
		    "down; %s", master ? "the rotation resumes when it starts "
		    "again" : "run it again to finish it when it is back");
	else if (res->rr_store == STORE_E_INTEGRITY && master)
		rpc_fail(call, PROTO_E_INTEGRITY, "a tenant's data key failed "
		    "authentication (see wfvaultd's log); the rotation stopped "
		    "there and resumes with the next rotate_master_key");
	else if (res->rr_store != STORE_OK)
		rpc_store_fail(call, res->rr_store);
	else if (master)
		call->rc_result = json_pack("{s:I}", "rewrapped",
		    (json_int_t)res->rr_count);
	else
		call->rc_result = json_pack("{s:s,s:I}", "tenant",
		    call->rc_args.ra_tenant, "resealed",
		    (json_int_t)res->rr_count);
	if (call->rc_code == 0 && call->rc_result == NULL)
		rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	rpc_audit(call, call->rc_method->pm_name);
	if (conn != NULL) {
		rpc_reply(conn, w->w_id, call);
		conn->c_waiting--;
	}
	rpc_write_free(w);
	if (conn != NULL && conn->c_waiting == 0 && conn->c_blocked)
		server_conn_resume(conn);
}

/* 1 when one of conn's rotations is still running. */
static int
rpc_rotate_waits(struct server *srv, struct conn *conn)
{
	struct rpc_rotate_find	 f = { conn, 0 };

	rotate_foreach(srv, rpc_rotate_match, &f);
	return (f.rf_found);
}

static void
rpc_rotate_match(void *arg, void *ctx)
{
	struct rpc_write	*w = arg;
	struct rpc_rotate_find	*f = ctx;

	if (w->w_call.rc_conn == f->rf_conn)
		f->rf_found = 1;
}

/* conn is going away: its rotation goes on, unanswered. */
static void
rpc_rotate_forget(void *arg, void *ctx)
{
	struct rpc_write	*w = arg;

	if (w->w_call.rc_conn == ctx) {
		w->w_call.rc_conn = NULL;
		/* The audit line outlives the connection's groups. */
		w->w_call.rc_peer.p_groups = NULL;
		w->w_call.rc_peer.p_ngroups = 0;
	}
}
