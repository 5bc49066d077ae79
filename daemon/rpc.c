/*
 * What each request means: the dispatcher (checks, access decision, reply
 * ordering), the group commit that runs the writes of a loop turn
 * together, the mapping of store errors and the audit line of every
 * request.  The methods themselves are in rpc_tenant.c, rpc_sync.c and
 * rpc_admin.c, their parameter checks in rpc_args.c.
 */
#include <sys/types.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wfvaultd.h"

struct rpc_handler {
	int	(*rh_run)(struct rpc_call *);
};

static int	rpc_allowed(struct rpc_call *);
static void	rpc_audit(struct rpc_call *, const char *);
static void	rpc_reply(struct conn *, json_t *, struct rpc_call *);
static void	rpc_call_release(struct rpc_call *);
static void	rpc_run_write(struct server *, MDB_txn *, struct rpc_write *);

/*
 * The handler of each method.  A new method takes its entry in proto.c's
 * method table, its checker in rpc_args.c and its handler in the file of
 * its subject (tenant data: rpc_tenant.c; the feed and sync: rpc_sync.c;
 * administration: rpc_admin.c), named here.
 */
static const struct rpc_handler rpc_handlers[PM__COUNT] = {
	[PM_HELLO] = { rpc_hello },
	[PM_PUT] = { rpc_put },
	[PM_GET] = { rpc_get },
	[PM_LIST] = { rpc_list },
	[PM_DELETE] = { rpc_delete },
	[PM_CHANGES] = { rpc_changes },
	[PM_SYNC_ACK] = { rpc_sync_ack },
	[PM_WATCH] = { rpc_watch },
	[PM_STATUS] = { rpc_status },
	[PM_SYNC_STATE] = { rpc_sync_state },
	/* Not run here: rpc_backup_begin starts it, rpc_admin.c answers. */
	[PM_BACKUP] = { NULL },
	/*
	 * Not run in the group commit either: rpc_rotate_begin starts them
	 * in rotate.c's steps, rpc_admin.c answers.
	 */
	[PM_ROTATE_MASTER_KEY] = { NULL },
	[PM_ROTATE_TENANT_KEY] = { NULL },
	[PM_INTEGRATIONS] = { rpc_integrations },
	/* Readiness (rpc_check.c). */
	[PM_TEST_RESULT] = { rpc_test_result },
	[PM_CHECK] = { rpc_check },
};

int
rpc_handle_line(struct server *srv, struct conn *conn, const char *line,
    size_t len)
{
	struct proto_request	 req = PROTO_REQUEST_INIT;
	struct rpc_write	*w;
	struct rpc_call		 call;
	int			 code;

	memset(&call, 0, sizeof(call));
	call.rc_srv = srv;
	call.rc_conn = conn;
	call.rc_peer = conn->c_peer;
	/* Its backup's or key rotation's reply comes first. */
	if (rpc_admin_waits(srv, conn))
		return RPC_BLOCKED;
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
	if (rpc_args_check(req.pr_method->pm_id, req.pr_params, &call.rc_args,
	    call.rc_msg, sizeof(call.rc_msg)) == -1) {
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
		/* rc_args borrow from params: the write keeps them alive. */
		if ((w = rpc_write_new(&call, req.pr_id,
		    req.pr_params)) == NULL)
			goto answer;
		TAILQ_INSERT_TAIL(&srv->srv_writes, w, w_entry);
		conn_wait_begin(conn);
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
	rpc_handlers[req.pr_method->pm_id].rh_run(&call);
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
	return RPC_DONE;

blocked:
	/*
	 * Replies go out in request order, so while this connection has
	 * writes waiting for the group commit only another valid, permitted
	 * write may join them; anything else (a read, any error) waits and is
	 * handled again once they are answered.
	 */
	rpc_call_release(&call);
	proto_request_release(&req);
	return RPC_BLOCKED;
}

/*
 * The group commit: every write queued in this loop turn runs in its own
 * nested transaction inside one parent, so a write that fails (a conflict,
 * a full map) is undone alone, and the parent commits once, with one
 * fsync, before any of them is answered.
 */
void
rpc_commit(struct server *srv)
{
	struct rpc_write_list	 batch;
	struct rpc_write	*w;
	MDB_txn			*txn = NULL;
	uint64_t		 last = 0;
	size_t			 n = 0;
	int			 rc;

	TAILQ_INIT(&batch);
	TAILQ_CONCAT(&batch, &srv->srv_writes, w_entry);
	if (TAILQ_EMPTY(&batch))
		return;

	rc = store_txn_begin(srv->srv_store, NULL, 1, &txn);
	TAILQ_FOREACH(w, &batch, w_entry) {
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
		TAILQ_FOREACH(w, &batch, w_entry) {
			if (w->w_call.rc_code == 0) {
				json_decref(w->w_call.rc_result);
				w->w_call.rc_result = NULL;
				rpc_store_fail(&w->w_call, rc);
			}
		}
	}

	while ((w = TAILQ_FIRST(&batch)) != NULL) {
		TAILQ_REMOVE(&batch, w, w_entry);
		if (w->w_call.rc_code == 0 && w->w_call.rc_seq > last)
			last = w->w_call.rc_seq;
		rpc_write_answer(w);
	}

	/*
	 * Lines that waited for these replies can go on now; a half-closed
	 * peer whose last write was a notification is done.
	 */
	server_conns_resume(srv);
	if (last > srv->srv_notified_seq)
		rpc_notify_watchers(srv);
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

int
rpc_fail(struct rpc_call *call, int code, const char *fmt, ...)
{
	va_list	ap;

	call->rc_code = code;
	va_start(ap, fmt);
	vsnprintf(call->rc_msg, sizeof(call->rc_msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* Store errors as the client sees them: what happened and what to do. */
int
rpc_store_fail(struct rpc_call *call, int rc)
{
	struct daemon_conf	*conf = call->rc_srv->srv_conf;

	switch (rc) {
	case STORE_E_NOT_FOUND:
		if (call->rc_args.ra_tenant != NULL)
			return rpc_fail(call, PROTO_E_NOT_FOUND,
			    "no tenant '%s'", call->rc_args.ra_tenant);
		return rpc_fail(call, PROTO_E_NOT_FOUND, "not found");
	case STORE_E_FULL:
		return rpc_fail(call, PROTO_E_UNAVAILABLE, "the store is "
		    "full (map_size %llu bytes); raise map_size in the "
		    "configuration and restart wfvaultd; reads still work",
		    (unsigned long long)conf->dc_map_size);
	case STORE_E_INTEGRITY:
		log_warnx("a record of tenant '%s' failed authentication",
		    call->rc_args.ra_tenant != NULL ?
		    call->rc_args.ra_tenant : "?");
		return rpc_fail(call, PROTO_E_INTEGRITY, "a stored record "
		    "of tenant '%s' failed authentication (tampered with, or "
		    "another master key)", call->rc_args.ra_tenant != NULL ?
		    call->rc_args.ra_tenant : "?");
	case STORE_E_DISK_FULL:
		log_warnx("the disk holding %s is full", conf->dc_data_dir);
		return rpc_fail(call, PROTO_E_UNAVAILABLE, "no space left on "
		    "the disk holding the store; free some and try again; "
		    "reads still work");
	case STORE_E_NOMEM:
		return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	default:
		log_warnx("store error: %s", store_strerror(rc));
		return rpc_fail(call, PROTO_E_INTERNAL, "store error: %s",
		    store_strerror(rc));
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
		return 1;
	if (m->pm_id == PM_LIST)
		ok = (acl_perms_any(acl, &call->rc_peer) & m->pm_perm) ==
		    m->pm_perm;
	else if (m->pm_tenant)
		ok = (acl_perms(acl, &call->rc_peer, call->rc_args.ra_tenant) &
		    m->pm_perm) == m->pm_perm;
	else
		ok = acl_perms_all(acl, &call->rc_peer, m->pm_perm);
	if (ok)
		return 1;

	proto_perms_format(m->pm_perm, perm, sizeof(perm));
	if (m->pm_tenant)
		rpc_fail(call, PROTO_E_DENIED, "permission denied: uid %u "
		    "has no '%s' permission on tenant '%s'",
		    (unsigned)call->rc_peer.p_uid, perm,
		    call->rc_args.ra_tenant);
	else
		rpc_fail(call, PROTO_E_DENIED, "permission denied: uid %u "
		    "has no '%s' permission%s", (unsigned)call->rc_peer.p_uid,
		    perm, m->pm_id == PM_LIST ? "" : " on every tenant");
	return 0;
}

static void
rpc_audit(struct rpc_call *call, const char *method)
{
	struct audit	*audit = call->rc_srv->srv_audit;
	const char	*name = method != NULL ? method : "invalid";

	/* What a granted peer did with tenant data is never left out. */
	if (call->rc_code == 0 && call->rc_method->pm_id != PM_HELLO &&
	    call->rc_method->pm_id != PM_INTEGRATIONS) {
		audit_log(audit, &call->rc_peer, name, call->rc_args.ra_tenant,
		    call->rc_names, "ok");
		return;
	}
	/*
	 * Failures, hellos and catalog reads (no tenant data) repeated in a
	 * loop are counted, not written.
	 */
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

int
rpc_result(struct rpc_call *call, json_t *result)
{
	if ((call->rc_result = result) == NULL)
		return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	return 0;
}

struct rpc_write *
rpc_write_new(struct rpc_call *call, json_t *id, json_t *params)
{
	struct rpc_write	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
		return NULL;
	}
	w->w_id = id != NULL ? json_incref(id) : NULL;
	w->w_params = json_incref(params);
	w->w_call = *call;
	call->rc_names = NULL;	/* now the write's */
	return w;
}

void
rpc_write_answer(struct rpc_write *w)
{
	struct conn	*conn = w->w_call.rc_conn;

	rpc_audit(&w->w_call, w->w_call.rc_method->pm_name);
	rpc_reply(conn, w->w_id, &w->w_call);
	rpc_write_free(w);
	conn_wait_end(conn);
}

void
rpc_write_free(struct rpc_write *w)
{
	rpc_call_release(&w->w_call);
	json_decref(w->w_id);
	json_decref(w->w_params);
	free(w);
}

/* Names of the fields a request touches, for the audit line. */
void
rpc_note_fields(struct rpc_call *call, json_t *fields, const char *field)
{
	const char	*key;
	json_t		*value;

	if ((fields == NULL && field == NULL) ||
	    (call->rc_names = json_array()) == NULL)
		return;
	if (field != NULL)
		json_array_append_new(call->rc_names, json_string(field));
	if (fields == NULL)
		return;
	json_object_foreach(fields, key, value) {
		/* One line stays small however many fields were sent. */
		if (json_array_size(call->rc_names) == RPC_AUDIT_FIELDS) {
			json_array_append_new(call->rc_names, json_sprintf(
			    "+%zu more", json_object_size(fields) -
			    RPC_AUDIT_FIELDS));
			break;
		}
		json_array_append_new(call->rc_names, json_string(key));
	}
}
