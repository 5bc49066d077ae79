/*
 * The administration methods: hello, status, integrations, and the glue
 * that starts a backup (backup.c) or a key rotation (rotate.c) and
 * answers it when it ends.
 */
#include <sys/types.h>

#include <string.h>
#include <time.h>

#include <sodium.h>

#include "wfvaultd.h"

static int	rpc_status_target(void *, const char *, uint64_t);
static void	rpc_backup_done(struct server *, struct rpc_write *,
		    const struct backup_result *);
static void	rpc_rotate_done(struct server *, void *,
		    const struct rotate_result *);
/* Which connection rpc_rotate_match looks for, and whether it found it. */
struct rpc_rotate_find {
	struct conn	*rf_conn;
	int		 rf_found;
};
static void	rpc_rotate_match(void *, void *);
static void	rpc_admin_answer(struct rpc_write *);

int
rpc_hello(struct rpc_call *call)
{
	const struct acl	*acl = &call->rc_srv->srv_conf->dc_acl;
	json_t			*perms;
	unsigned		 bits, bit;

	bits = acl_perms_any(acl, &call->rc_peer);
	if ((perms = json_array()) == NULL)
		return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	for (bit = 1; bit <= PERM_ADMIN; bit <<= 1)
		if (bits & bit)
			json_array_append_new(perms,
			    json_string(proto_perm_name(bit)));
	return rpc_result(call, json_pack("{s:s,s:s,s:i,s:I,s:I,s:I,s:o}",
	    "server", PROTO_SERVER_NAME, "version", PROTO_SERVER_VERSION,
	    "protocol", PROTO_VERSION,
	    "uid", (json_int_t)call->rc_peer.p_uid,
	    "gid", (json_int_t)call->rc_peer.p_gid,
	    "pid", (json_int_t)call->rc_peer.p_pid,
	    "permissions", perms));
}

/* The catalog as the files say it: it holds no secret (catalog.c). */
int
rpc_integrations(struct rpc_call *call)
{
	json_t	*list;

	if ((list = catalog_list_json(call->rc_srv->srv_catalog)) == NULL)
		return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	return rpc_result(call, json_pack("{s:o}", "integrations", list));
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
		return STORE_E_NOMEM;
	return 0;
}

int
rpc_status(struct rpc_call *call)
{
	struct server		*srv = call->rc_srv;
	struct store_stat	 ss;
	struct rpc_status_ctx	 sc;
	int			 rc;

	if ((rc = store_stat(srv->srv_store, call->rc_txn, &ss)) != STORE_OK)
		return rpc_store_fail(call, rc);
	sc.sc_last = ss.ss_last_seq;
	if ((sc.sc_targets = json_array()) == NULL)
		return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	if ((rc = store_sync_list(srv->srv_store, call->rc_txn,
	    rpc_status_target, &sc)) != STORE_OK) {
		json_decref(sc.sc_targets);
		return rpc_store_fail(call, rc);
	}
	return rpc_result(call, json_pack("{s:s,s:s,s:i,s:I,s:I,s:I,"
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
	    "sync", sc.sc_targets));
}

/*
 * Starts a backup for call; its reply (and the connection's next lines)
 * wait for rpc_backup_done.
 */
int
rpc_backup_begin(struct server *srv, struct conn *conn, json_t *id,
    json_t *params, struct rpc_call *call)
{
	struct backup_result	 res;
	struct rpc_write	*w;

	/* ra_name borrows from params, which w keeps. */
	if ((w = rpc_write_new(call, id, params)) == NULL)
		return -1;
	if (backup_start(srv, w->w_call.rc_args.ra_name, rpc_backup_done, w,
	    &res) == -1) {
		/* call's names went to w: give them back for the audit. */
		call->rc_names = w->w_call.rc_names;
		w->w_call.rc_names = NULL;
		rpc_write_free(w);
		return rpc_fail(call, res.br_code, "%s", res.br_msg);
	}
	conn_wait_begin(conn);
	return 0;
}

/* The backup's copy is on disk (or failed): audit and answer it. */
static void
rpc_backup_done(struct server *srv, struct rpc_write *w,
    const struct backup_result *res)
{
	struct rpc_call		*call = &w->w_call;

	if (res->br_code != 0)
		rpc_fail(call, res->br_code, "%s", res->br_msg);
	else
		rpc_result(call, json_pack("{s:s,s:I}", "path", res->br_path,
		    "bytes", (json_int_t)res->br_bytes));
	rpc_admin_answer(w);
}

/*
 * Starts a key rotation for call: the master key's, to the next master key
 * named by the configuration file as it is now (so naming it needs no
 * restart), or a tenant's.  Its reply (and the connection's next lines)
 * wait for rpc_rotate_done; other connections are served meanwhile.
 */
int
rpc_rotate_begin(struct server *srv, struct conn *conn, json_t *id,
    json_t *params, struct rpc_call *call)
{
	struct daemon_conf	 fresh;
	struct rpc_write	*w;
	unsigned char		*next = NULL;
	char			 err[512];
	int			 rc;

	/* ra_tenant borrows from params, which w keeps. */
	if ((w = rpc_write_new(call, id, params)) == NULL)
		return -1;
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
	conn_wait_begin(conn);
	return 0;
fail:
	/* call's names went to w: give them back for the audit. */
	call->rc_names = w->w_call.rc_names;
	w->w_call.rc_names = NULL;
	rpc_write_free(w);
	return -1;
}

/* A key rotation ended: audit and answer it. */
static void
rpc_rotate_done(struct server *srv, void *arg,
    const struct rotate_result *res)
{
	struct rpc_write	*w = arg;
	struct rpc_call		*call = &w->w_call;
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
		rpc_result(call, json_pack("{s:I}", "rewrapped",
		    (json_int_t)res->rr_count));
	else
		rpc_result(call, json_pack("{s:s,s:I}", "tenant",
		    call->rc_args.ra_tenant, "resealed",
		    (json_int_t)res->rr_count));
	rpc_admin_answer(w);
}

/*
 * Answers w; the lines its connection sent meanwhile go on (a half-closed
 * peer that is owed nothing more is done).
 */
static void
rpc_admin_answer(struct rpc_write *w)
{
	struct conn	*conn = w->w_call.rc_conn;

	conn_hold(conn);
	rpc_write_answer(w);
	server_conn_resume(conn);
	conn_release(conn);
}

int
rpc_admin_waits(struct server *srv, struct conn *conn)
{
	struct rpc_rotate_find	 f = { conn, 0 };
	struct rpc_write	*w;

	if ((w = backup_pending(srv)) != NULL && w->w_call.rc_conn == conn)
		return 1;
	rotate_foreach(srv, rpc_rotate_match, &f);
	return f.rf_found;
}

static void
rpc_rotate_match(void *arg, void *ctx)
{
	struct rpc_write	*w = arg;
	struct rpc_rotate_find	*f = ctx;

	if (w->w_call.rc_conn == f->rf_conn)
		f->rf_found = 1;
}
