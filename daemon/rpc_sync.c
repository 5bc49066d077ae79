/*
 * The change feed and sync methods: changes, sync_ack, sync_state and
 * watch, the watchers' notifications and the feed's trimming.
 */
#include <sys/types.h>

#include <event2/event.h>

#include "wfvaultd.h"

/* Feed entries one group commit trims at least, and per write in it. */
#define TRIM_PER_COMMIT		1000
#define TRIM_PER_WRITE		2
/* A longer backlog goes on in transactions of its own, this far apart. */
#define TRIM_AGAIN_MS		10

static int	rpc_change_one(void *, const struct store_change *);
static uint64_t	rpc_last_seq(struct server *);
static void	rpc_trim_cb(evutil_socket_t, short, void *);

static int
rpc_change_one(void *arg, const struct store_change *sc)
{
	json_t	*item;

	item = json_pack("{s:I,s:s,s:I,s:s}", "seq", (json_int_t)sc->sc_seq,
	    "tenant", sc->sc_tenant, "version", (json_int_t)sc->sc_version,
	    "op", sc->sc_op == STORE_OP_DELETE ? "delete" : "put");
	if (item == NULL || json_array_append_new(arg, item) == -1)
		return STORE_E_NOMEM;
	return 0;
}

int
rpc_changes(struct rpc_call *call)
{
	json_t		*changes;
	uint64_t	 last, trimmed;
	int		 rc;

	/* A reader that missed trimmed changes cannot go on from here. */
	if ((rc = store_feed_trimmed(call->rc_srv->srv_store, call->rc_txn,
	    &trimmed)) != STORE_OK)
		return rpc_store_fail(call, rc);
	if (call->rc_args.ra_since < trimmed) {
		call->rc_first_seq = trimmed + 1;
		return rpc_fail(call, PROTO_E_TRIMMED, "the change feed "
		    "before seq %llu was trimmed (since %llu); push every "
		    "tenant's current config, then go on from last_seq",
		    (unsigned long long)trimmed + 1,
		    (unsigned long long)call->rc_args.ra_since);
	}
	if ((changes = json_array()) == NULL)
		return rpc_fail(call, PROTO_E_INTERNAL, "out of memory");
	rc = store_changes(call->rc_srv->srv_store, call->rc_txn,
	    call->rc_args.ra_since, call->rc_args.ra_limit, rpc_change_one,
	    changes);
	if (rc == STORE_OK)
		rc = store_last_seq(call->rc_srv->srv_store, call->rc_txn,
		    &last);
	if (rc != STORE_OK) {
		json_decref(changes);
		return rpc_store_fail(call, rc);
	}
	return rpc_result(call, json_pack("{s:o,s:I}", "changes", changes,
	    "last_seq", (json_int_t)last));
}

int
rpc_sync_ack(struct rpc_call *call)
{
	uint64_t	last;
	int		rc;

	if ((rc = store_last_seq(call->rc_srv->srv_store, call->rc_txn,
	    &last)) != STORE_OK)
		return rpc_store_fail(call, rc);
	if (call->rc_args.ra_seq > last)
		return rpc_fail(call, PROTO_E_PARAMS, "seq %llu is past the "
		    "end of the change feed (%llu)",
		    (unsigned long long)call->rc_args.ra_seq,
		    (unsigned long long)last);
	if ((rc = store_sync_ack(call->rc_srv->srv_store, call->rc_txn,
	    call->rc_args.ra_target, call->rc_args.ra_seq)) != STORE_OK)
		return rpc_store_fail(call, rc);
	return rpc_result(call, json_object());
}

int
rpc_sync_state(struct rpc_call *call)
{
	uint64_t	acked, last;
	int		rc;

	rc = store_sync_get(call->rc_srv->srv_store, call->rc_txn,
	    call->rc_args.ra_target, &acked);
	if (rc != STORE_OK && rc != STORE_E_NOT_FOUND)
		return rpc_store_fail(call, rc);
	if ((rc = store_last_seq(call->rc_srv->srv_store, call->rc_txn,
	    &last)) != STORE_OK)
		return rpc_store_fail(call, rc);
	return rpc_result(call, json_pack("{s:s,s:I,s:I}", "target",
	    call->rc_args.ra_target, "acked_seq", (json_int_t)acked,
	    "last_seq", (json_int_t)last));
}

int
rpc_watch(struct rpc_call *call)
{
	conn_watch(call->rc_conn, call->rc_args.ra_since);
	return rpc_result(call, json_object());
}

void
rpc_notify_watchers(struct server *srv)
{
	uint64_t	last;

	last = rpc_last_seq(srv);
	srv->srv_notified_seq = last;
	conn_notify_watchers(srv, last);
}

static uint64_t
rpc_last_seq(struct server *srv)
{
	MDB_txn		*txn;
	uint64_t	 seq = 0;

	if (store_txn_begin(srv->srv_store, NULL, 0, &txn) != STORE_OK)
		return srv->srv_notified_seq;
	if (store_last_seq(srv->srv_store, txn, &seq) != STORE_OK)
		seq = srv->srv_notified_seq;
	store_txn_abort(txn);
	return seq;
}

/*
 * Trims the change feed a little in every group commit (its own nested
 * transaction, so a failure costs the writes nothing): at most a fixed
 * number of entries plus a few per write, so the feed shrinks faster
 * than writes grow it and no commit walks all of it.
 */
void
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

