/*
 * The store's change feed (appends, walks, trimming, its tenant index) and
 * the sync targets' positions in it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_priv.h"

struct store_trim_ctx {
	uint64_t	tc_min;
	int		tc_any;
};

static int	store_trim_target(void *, const char *, uint64_t);

/* Appends one change with the next sequence number, given in *seq. */
int
store_change_append(struct store *store, MDB_txn *txn, int op,
    uint64_t version, const char *tenant, size_t tlen, uint64_t *seq)
{
	unsigned char	 kbuf[8], vbuf[STORE_CHANGE_MAX];
	MDB_val		 key, val;
	uint64_t	 last;
	int		 rc;

	if ((rc = store_last_seq(store, txn, &last)) != STORE_OK)
		return rc;
	if (last == UINT64_MAX)
		return STORE_E_FULL;
	record_be64_put(kbuf, last + 1);
	key.mv_data = kbuf;
	key.mv_size = sizeof(kbuf);
	val.mv_data = vbuf;
	val.mv_size = record_change_encode(vbuf, op, version, tenant, tlen);
	rc = mdb_put(txn, store->s_changes, &key, &val, MDB_APPEND);
	if (rc != 0)
		return store_mdb_code(rc, "append change");
	key.mv_data = (void *)tenant;
	key.mv_size = tlen;
	val.mv_data = kbuf;
	val.mv_size = sizeof(kbuf);
	if ((rc = mdb_put(txn, store->s_feedidx, &key, &val, 0)) != 0)
		return store_mdb_code(rc, "index change");
	if (seq != NULL)
		*seq = last + 1;
	return STORE_OK;
}

/* A walk of the feed that writes (index build, trim, forget). */
struct store_feed_ctx {
	struct store	*fc_store;
	MDB_txn		*fc_txn;
	uint64_t	 fc_upto;	/* trim: the last seq to delete */
	size_t		 fc_max;	/* trim: deletes at most */
	size_t		 fc_count;	/* trim: deleted so far */
	uint64_t	 fc_done;	/* trim: the last seq deleted */
	const char	*fc_tenant;	/* forget: whose changes */
	size_t		 fc_tlen;
};

/*
 * A feed entry's seq and its feed_tenants entry (ikey: the tenant, in val;
 * ival: the seq, in kbuf); -1 if the entry is malformed.
 */
static int
store_feed_index_entry(const MDB_val *key, const MDB_val *val,
    unsigned char kbuf[8], MDB_val *ikey, MDB_val *ival, uint64_t *seq)
{
	const char	*tenant;
	uint64_t	 version;
	size_t		 tlen;
	int		 op;

	if (record_change_decode(key, val, seq, &op, &version, &tenant,
	    &tlen) == -1)
		return -1;
	record_be64_put(kbuf, *seq);
	ikey->mv_data = (void *)tenant;
	ikey->mv_size = tlen;
	ival->mv_data = kbuf;
	ival->mv_size = 8;
	return 0;
}

/* Indexes one feed entry under its tenant. */
static int
store_index_one(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_feed_ctx	*fc = arg;
	unsigned char		 kbuf[8];
	MDB_val			 ikey, ival;
	uint64_t		 seq;
	int			 mrc;

	if (store_feed_index_entry(key, val, kbuf, &ikey, &ival, &seq) == -1)
		return STORE_E_INTEGRITY;
	if ((mrc = mdb_put(fc->fc_txn, fc->fc_store->s_feedidx, &ikey, &ival,
	    0)) != 0)
		return store_mdb_code(mrc, "index feed");
	return STORE_WALK_NEXT;
}

/*
 * Moves a format 1 store to format 2 in the transaction that opens it:
 * builds feed_tenants and live_tenants with one walk of the feed and the
 * tenants, once.
 */
int
store_index_build(struct store *store, MDB_txn *txn, char *err,
    size_t errlen)
{
	struct store_feed_ctx	 fc;
	unsigned char		 fbuf[4];
	uint64_t		 live = 0;
	int			 rc;

	memset(&fc, 0, sizeof(fc));
	fc.fc_store = store;
	fc.fc_txn = txn;
	if ((rc = store_walk(store, txn, store->s_changes, NULL,
	    store_index_one, &fc)) != STORE_OK) {
		if (rc == STORE_E_INTEGRITY)
			snprintf(err, errlen, "the change feed holds a "
			    "malformed entry");
		else
			snprintf(err, errlen, "cannot index the change feed: "
			    "%s", store_strerror(rc));
		return rc;
	}
	if ((rc = store_walk(store, txn, store->s_tenants, NULL,
	    store_count_live, &live)) != STORE_OK) {
		snprintf(err, errlen, "cannot index the change feed: %s",
		    store_strerror(rc));
		return rc;
	}
	record_format_put(fbuf, STORE_FORMAT);
	if ((rc = store_meta_u64_put(store, txn, STORE_META_LIVE,
	    live)) != STORE_OK || (rc = store_meta_put(store, txn, "format",
	    fbuf, sizeof(fbuf))) != STORE_OK) {
		snprintf(err, errlen, "cannot index the change feed: %s",
		    store_strerror(rc));
		return rc;
	}
	return STORE_OK;
}

/* store_changes' walk: its limit and its caller's callback. */
struct store_changes_ctx {
	size_t		  cc_limit;
	size_t		  cc_n;
	int		(*cc_cb)(void *, const struct store_change *);
	void		 *cc_arg;
};

static int
store_changes_one(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_changes_ctx *cc = arg;
	struct store_change	 sc;
	char			 tenant[PROTO_TENANT_MAX + 1];
	const char		*t;
	size_t			 tlen;
	int			 r;

	if (record_change_decode(key, val, &sc.sc_seq, &sc.sc_op,
	    &sc.sc_version, &t, &tlen) == -1 ||
	    (sc.sc_op != STORE_OP_PUT && sc.sc_op != STORE_OP_DELETE))
		return STORE_E_INTEGRITY;
	memcpy(tenant, t, tlen);
	tenant[tlen] = '\0';
	sc.sc_tenant = tenant;
	cc->cc_n++;
	r = store_walk_ret(cc->cc_cb(cc->cc_arg, &sc));
	if (r == STORE_WALK_NEXT && cc->cc_limit != 0 &&
	    cc->cc_n >= cc->cc_limit)
		return STORE_WALK_STOP;
	return r;
}

int
store_changes(struct store *store, MDB_txn *txn, uint64_t since,
    size_t limit, int (*cb)(void *, const struct store_change *), void *arg)
{
	struct store_changes_ctx cc;
	unsigned char		 kbuf[8];
	MDB_val			 start;
	int			 rc;

	if (since == UINT64_MAX)
		return STORE_OK;
	memset(&cc, 0, sizeof(cc));
	cc.cc_limit = limit;
	cc.cc_cb = cb;
	cc.cc_arg = arg;
	record_be64_put(kbuf, since + 1);
	start.mv_data = kbuf;
	start.mv_size = sizeof(kbuf);
	rc = store_walk(store, txn, store->s_changes, &start,
	    store_changes_one, &cc);
	return rc == STORE_WALK_STOP ? STORE_OK : rc;
}

int
store_last_seq(struct store *store, MDB_txn *txn, uint64_t *seq)
{
	MDB_cursor	*cur;
	MDB_val		 key, val;
	int		 rc;

	*seq = 0;
	if ((rc = mdb_cursor_open(txn, store->s_changes, &cur)) != 0)
		return store_mdb_code(rc, "open changes cursor");
	rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
	if (rc == 0 && key.mv_size == 8)
		*seq = record_be64_get(key.mv_data);
	else if (rc == 0)
		rc = STORE_E_INTEGRITY;
	else if (rc == MDB_NOTFOUND)
		rc = STORE_OK;
	else
		rc = store_mdb_code(rc, "last change");
	mdb_cursor_close(cur);
	return rc;
}

int
store_sync_ack(struct store *store, MDB_txn *txn, const char *target,
    uint64_t seq)
{
	unsigned char	 vbuf[8];
	MDB_val		 key, val;
	size_t		 len;

	if (record_name_len(target, &len) == -1)
		return STORE_E_IO;
	record_be64_put(vbuf, seq);
	key.mv_data = (void *)target;
	key.mv_size = len;
	val.mv_data = vbuf;
	val.mv_size = sizeof(vbuf);
	return store_mdb_code(mdb_put(txn, store->s_sync, &key, &val, 0),
	    "put sync");
}

int
store_sync_get(struct store *store, MDB_txn *txn, const char *target,
    uint64_t *seq)
{
	MDB_val		 key, val;
	size_t		 len;
	int		 mrc;

	*seq = 0;
	if (record_name_len(target, &len) == -1)
		return STORE_E_NOT_FOUND;
	key.mv_data = (void *)target;
	key.mv_size = len;
	if ((mrc = mdb_get(txn, store->s_sync, &key, &val)) == MDB_NOTFOUND)
		return STORE_E_NOT_FOUND;
	if (mrc != 0)
		return store_mdb_code(mrc, "get sync");
	if (val.mv_size != 8)
		return STORE_E_INTEGRITY;
	*seq = record_be64_get(val.mv_data);
	return STORE_OK;
}

/* store_sync_list's walk: its caller's callback. */
struct store_sync_ctx {
	int		(*yc_cb)(void *, const char *, uint64_t);
	void		 *yc_arg;
};

static int
store_sync_one(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_sync_ctx	*yc = arg;
	char			 target[PROTO_TENANT_MAX + 1];

	if (record_key_name(key, target) == -1 || val->mv_size != 8)
		return STORE_E_INTEGRITY;
	return store_walk_ret(yc->yc_cb(yc->yc_arg, target,
	    record_be64_get(val->mv_data)));
}

int
store_sync_list(struct store *store, MDB_txn *txn,
    int (*cb)(void *, const char *, uint64_t), void *arg)
{
	struct store_sync_ctx	 yc;
	int			 rc;

	yc.yc_cb = cb;
	yc.yc_arg = arg;
	rc = store_walk(store, txn, store->s_sync, NULL, store_sync_one, &yc);
	return rc == STORE_WALK_STOP ? STORE_OK : rc;
}

static int
store_trim_target(void *arg, const char *target, uint64_t seq)
{
	struct store_trim_ctx	*tc = arg;

	if (!tc->tc_any || seq < tc->tc_min)
		tc->tc_min = seq;
	tc->tc_any = 1;
	return 0;
}

int
store_feed_trim_point(struct store *store, MDB_txn *txn, uint64_t retain,
    uint64_t *upto)
{
	struct store_trim_ctx	 tc;
	uint64_t		 last, point;
	int			 rc;

	*upto = 0;
	memset(&tc, 0, sizeof(tc));
	if ((rc = store_last_seq(store, txn, &last)) != STORE_OK ||
	    (rc = store_sync_list(store, txn, store_trim_target,
	    &tc)) != STORE_OK)
		return rc;
	if (last == 0)
		return STORE_OK;
	point = last > retain ? last - retain : 0;
	if (tc.tc_any && tc.tc_min > point)
		point = tc.tc_min;
	/* The newest entry stays: it is what last_seq is read from. */
	*upto = point < last ? point : last - 1;
	return STORE_OK;
}

/* Deletes the oldest feed entry and its index entry, up to fc_upto. */
static int
store_trim_one(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_feed_ctx	*fc = arg;
	unsigned char		 kbuf[8];
	MDB_val			 ikey, ival;
	uint64_t		 seq;
	int			 mrc;

	if (fc->fc_count >= fc->fc_max)
		return STORE_WALK_STOP;
	if (store_feed_index_entry(key, val, kbuf, &ikey, &ival, &seq) == -1)
		return STORE_E_INTEGRITY;
	if (seq > fc->fc_upto)
		return STORE_WALK_STOP;
	if ((mrc = mdb_del(fc->fc_txn, fc->fc_store->s_feedidx, &ikey,
	    &ival)) != 0 && mrc != MDB_NOTFOUND)
		return store_mdb_code(mrc, "delete feed index");
	if ((mrc = mdb_cursor_del(cur, 0)) != 0)
		return store_mdb_code(mrc, "trim change");
	fc->fc_done = seq;
	fc->fc_count++;
	return STORE_WALK_AGAIN;
}

int
store_feed_trim(struct store *store, MDB_txn *txn, uint64_t retain,
    size_t max, size_t *count)
{
	struct store_feed_ctx	 fc;
	uint64_t		 trimmed;
	int			 rc;

	*count = 0;
	memset(&fc, 0, sizeof(fc));
	fc.fc_store = store;
	fc.fc_txn = txn;
	fc.fc_max = max;
	if ((rc = store_feed_trim_point(store, txn, retain, &fc.fc_upto)) !=
	    STORE_OK)
		return rc;
	if ((rc = store_meta_u64(store, txn, STORE_META_TRIMMED,
	    &trimmed)) != STORE_OK && rc != STORE_E_NOT_FOUND)
		return rc;
	/* From the oldest entry on, so each call does at most max deletes. */
	rc = store_walk(store, txn, store->s_changes, NULL, store_trim_one,
	    &fc);
	if (rc == STORE_WALK_STOP)
		rc = STORE_OK;
	*count = fc.fc_count;
	if (rc == STORE_OK && fc.fc_done > trimmed)
		rc = store_meta_u64_put(store, txn, STORE_META_TRIMMED,
		    fc.fc_done);
	return rc;
}

int
store_feed_trimmed(struct store *store, MDB_txn *txn, uint64_t *seq)
{
	int	 rc;

	rc = store_meta_u64(store, txn, STORE_META_TRIMMED, seq);
	return rc == STORE_E_NOT_FOUND ? STORE_OK : rc;
}

/* Deletes the tenant's first change left below fc_upto, and its index. */
static int
store_forget_one(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_feed_ctx	*fc = arg;
	unsigned char		 kbuf[8];
	MDB_val			 ckey;
	uint64_t		 seq;
	int			 mrc;

	if (key->mv_size != fc->fc_tlen ||
	    memcmp(key->mv_data, fc->fc_tenant, fc->fc_tlen) != 0)
		return STORE_WALK_STOP;
	if (val->mv_size != 8)
		return STORE_E_INTEGRITY;
	if ((seq = record_be64_get(val->mv_data)) >= fc->fc_upto)
		return STORE_WALK_STOP;
	record_be64_put(kbuf, seq);
	ckey.mv_data = kbuf;
	ckey.mv_size = sizeof(kbuf);
	if ((mrc = mdb_del(fc->fc_txn, fc->fc_store->s_changes, &ckey,
	    NULL)) != 0 && mrc != MDB_NOTFOUND)
		return store_mdb_code(mrc, "delete change");
	if ((mrc = mdb_cursor_del(cur, 0)) != 0)
		return store_mdb_code(mrc, "delete feed index");
	/* Always the first of its seqs left: each one is deleted in turn. */
	return STORE_WALK_AGAIN;
}

/*
 * Deletes every change of tenant whose seq is below before, found through
 * feed_tenants: the work grows with the tenant's own changes only.
 */
int
store_changes_forget(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, uint64_t before)
{
	struct store_feed_ctx	 fc;
	MDB_val			 start;
	int			 rc;

	memset(&fc, 0, sizeof(fc));
	fc.fc_store = store;
	fc.fc_txn = txn;
	fc.fc_tenant = tenant;
	fc.fc_tlen = tlen;
	fc.fc_upto = before;
	start.mv_data = (void *)tenant;
	start.mv_size = tlen;
	rc = store_walk(store, txn, store->s_feedidx, &start,
	    store_forget_one, &fc);
	return rc == STORE_WALK_STOP ? STORE_OK : rc;
}

int
store_tenant_last_seq(struct store *store, MDB_txn *txn, const char *tenant,
    uint64_t *seq)
{
	MDB_cursor	*cur;
	MDB_val		 key, val;
	size_t		 tlen;
	int		 rc;

	*seq = 0;
	if (!store->s_has_index || record_name_len(tenant, &tlen) == -1)
		return STORE_OK;
	if ((rc = mdb_cursor_open(txn, store->s_feedidx, &cur)) != 0)
		return store_mdb_code(rc, "open feed index cursor");
	key.mv_data = (void *)tenant;
	key.mv_size = tlen;
	/* The seqs are big-endian: the last duplicate is the newest. */
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);
	if (rc == 0)
		rc = mdb_cursor_get(cur, &key, &val, MDB_LAST_DUP);
	if (rc == 0 && val.mv_size == 8)
		*seq = record_be64_get(val.mv_data);
	else if (rc == 0)
		rc = STORE_E_INTEGRITY;
	else if (rc == MDB_NOTFOUND)
		rc = STORE_OK;
	else
		rc = store_mdb_code(rc, "last change of tenant");
	mdb_cursor_close(cur);
	return rc;
}
