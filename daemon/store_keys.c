/*
 * The store's keys: opening and moving the tenants' wrapped data keys, and
 * the master key rotation (in steps, or all in one go offline).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "store_priv.h"

static int	store_rewrap_batch(struct store *, MDB_txn *,
		    const unsigned char *, char *, size_t, uint64_t *, int *);

/* The key new data keys are wrapped under: the next one in a rotation. */
const unsigned char *
store_wrap_key(const struct store *store)
{
	return store->s_next != NULL ? store->s_next : store->s_mk;
}

/* The record flag that goes with store_wrap_key. */
unsigned
store_wrap_gen(const struct store *store)
{
	uint64_t	gen = store->s_gen + (store->s_next != NULL ? 1 : 0);

	return (gen & 1) ? STORE_REC_KEYGEN : 0;
}

/*
 * Unwraps w, one of the live record's wrapped data keys, into dek with
 * whichever master key the record says it is under.  STORE_E_INTEGRITY
 * when it does not open, or is under the next key and the store was not
 * given that one.
 */
int
store_wrapped_open(const struct store *store, const char *tenant,
    const struct store_rec *rec, const unsigned char *w, unsigned char *dek)
{
	const unsigned char	*mk;

	if (w == NULL)
		return STORE_E_INTEGRITY;
	mk = rec->sr_keygen == (int)(store->s_gen & 1) ? store->s_mk :
	    store->s_next;
	if (mk == NULL || crypto_dek_unwrap(mk, tenant, w,
	    CRYPTO_WRAPPED_BYTES, dek) != CRYPTO_OK)
		return STORE_E_INTEGRITY;
	return STORE_OK;
}

/* The record's (current) data key into dek. */
int
store_dek_open(const struct store *store, const char *tenant,
    const struct store_rec *rec, unsigned char *dek)
{
	return store_wrapped_open(store, tenant, rec, rec->sr_wrapped, dek);
}

/*
 * out gets dek, which w of rec wraps, wrapped under store_wrap_key (w's
 * own bytes when it is under that key already), for a record about to be
 * written again.
 */
int
store_wrapped_move(const struct store *store, const char *tenant,
    const struct store_rec *rec, const unsigned char *w,
    const unsigned char *dek, unsigned char *out)
{
	if ((rec->sr_keygen ? STORE_REC_KEYGEN : 0) == store_wrap_gen(store)) {
		memcpy(out, w, CRYPTO_WRAPPED_BYTES);
		return STORE_OK;
	}
	if (crypto_dek_wrap(store_wrap_key(store), tenant, dek,
	    out) != CRYPTO_OK)
		return STORE_E_IO;
	return STORE_OK;
}

/*
 * For a put on the live record: wrapped gets its data key moved under
 * store_wrap_key (mid-rotation, a record written again goes to the next
 * master key) and dek the key to seal the new version with: the record's
 * own, or while its data key is being rotated the new one, whose wrapped
 * form goes to pending (*rekeying = 1).
 */
int
store_dek_rewrap(const struct store *store, const char *tenant,
    const struct store_rec *rec, unsigned char *dek, unsigned char *wrapped,
    unsigned char *pending, int *rekeying)
{
	int	rc;

	*rekeying = 0;
	if ((rc = store_dek_open(store, tenant, rec, dek)) != STORE_OK ||
	    (rc = store_wrapped_move(store, tenant, rec, rec->sr_wrapped, dek,
	    wrapped)) != STORE_OK)
		return rc;
	if (rec->sr_pending == NULL)
		return STORE_OK;
	if ((rc = store_wrapped_open(store, tenant, rec, rec->sr_pending,
	    dek)) != STORE_OK || (rc = store_wrapped_move(store, tenant, rec,
	    rec->sr_pending, dek, pending)) != STORE_OK)
		return rc;
	*rekeying = 1;
	return STORE_OK;
}

/*
 * Opens the sealed version val of the live record into plain (*plen set):
 * under its data key, or while that is being rotated under the new one.
 * Uses store->s_dek.  STORE_E_INTEGRITY when neither opens it.
 */
int
store_version_open(struct store *store, const char *tenant,
    const struct store_rec *rec, uint64_t version, const MDB_val *val,
    unsigned char *plain, size_t *plen)
{
	unsigned char	*dek = store->s_dek;
	int		 rc = STORE_E_INTEGRITY;

	if (store_dek_open(store, tenant, rec, dek) == STORE_OK &&
	    crypto_open(dek, tenant, version, val->mv_data, val->mv_size,
	    plain, plen) == CRYPTO_OK)
		rc = STORE_OK;
	else if (rec->sr_pending != NULL && store_wrapped_open(store, tenant,
	    rec, rec->sr_pending, dek) == STORE_OK &&
	    crypto_open(dek, tenant, version, val->mv_data, val->mv_size,
	    plain, plen) == CRYPTO_OK)
		rc = STORE_OK;
	sodium_memzero(dek, CRYPTO_KEY_BYTES);
	return rc;
}

const unsigned char *
store_master_key(struct store *store)
{
	return store->s_mk;
}

void
store_master_key_set(struct store *store, unsigned char *mk)
{
	unsigned char	*old = store->s_mk_own;

	store->s_mk = mk;
	store->s_mk_own = mk;
	/* The rotation that committed moved meta to the next generation. */
	store->s_gen++;
	store->s_rotating = 0;
	store->s_next = NULL;
	if (store->s_next_own != mk)
		crypto_key_free(store->s_next_own);
	store->s_next_own = NULL;
	/* A key the store was given by a previous rotation goes now. */
	if (old != mk)
		crypto_key_free(old);
}

int
store_rotating(struct store *store)
{
	return store->s_rotating;
}

const unsigned char *
store_next_key(struct store *store)
{
	return store->s_next;
}

int
store_rotate_begin(struct store *store, MDB_txn *txn,
    const unsigned char *newmk)
{
	unsigned char	 check[CRYPTO_CHECK_BYTES];

	crypto_key_check(newmk, check);
	if (store->s_rotating)
		return sodium_memcmp(check, store->s_next_check,
		    sizeof(check)) == 0 ? STORE_OK : STORE_E_KEY;
	return store_meta_put(store, txn, "key_next_check", check,
	    sizeof(check));
}

int
store_rotate_next_set(struct store *store, unsigned char *newmk)
{
	unsigned char	check[CRYPTO_CHECK_BYTES];

	crypto_key_check(newmk, check);
	if (store->s_rotating && sodium_memcmp(check, store->s_next_check,
	    sizeof(check)) != 0)
		return STORE_E_KEY;
	memcpy(store->s_next_check, check, sizeof(check));
	store->s_rotating = 1;
	if (store->s_next_own != newmk)
		crypto_key_free(store->s_next_own);
	store->s_next = newmk;
	store->s_next_own = newmk;
	return STORE_OK;
}

int
store_rotate_step(struct store *store, MDB_txn *txn,
    char pos[PROTO_TENANT_MAX + 1], size_t limit, uint64_t *count,
    int *finished)
{
	if (store->s_next == NULL)
		return STORE_E_KEY;
	return store_rewrap_batch(store, txn, store->s_next, pos, limit,
	    count, finished);
}

/* A master key rotation's walk of the tenants (store_rewrap_batch). */
struct store_rewrap_ctx {
	struct store		*wc_store;
	const unsigned char	*wc_newmk;
	unsigned		 wc_newgen;	/* newmk's record flag */
	char			*wc_pos;
	size_t			 wc_limit;
	size_t			 wc_seen;
	uint64_t		*wc_count;
};

/* Re-wraps one tenant record under wc_newmk, in place. */
static int
store_rewrap_one(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_rewrap_ctx	*wc = arg;
	struct store		*store = wc->wc_store;
	struct store_rec	 rec;
	unsigned char		 wrapped[CRYPTO_WRAPPED_BYTES];
	unsigned char		 pending[CRYPTO_WRAPPED_BYTES];
	char			 tenant[PROTO_TENANT_MAX + 1];
	unsigned char		*dek = store->s_dek;
	MDB_val			 nkey, nval;
	int			 rc, mrc;

	if (record_key_name(key, tenant) == -1 ||
	    record_tenant_decode(val, &rec) != STORE_OK)
		return STORE_E_INTEGRITY;
	if (wc->wc_seen++ == wc->wc_limit) {
		/* The next batch starts here. */
		memcpy(wc->wc_pos, tenant, key->mv_size + 1);
		return STORE_WALK_STOP;
	}
	if (rec.sr_deleted)
		return STORE_WALK_NEXT;
	(*wc->wc_count)++;
	if ((rec.sr_keygen ? STORE_REC_KEYGEN : 0) == wc->wc_newgen)
		return STORE_WALK_NEXT;
	if (crypto_dek_unwrap(store->s_mk, tenant, rec.sr_wrapped,
	    CRYPTO_WRAPPED_BYTES, dek) != CRYPTO_OK) {
		log_warnx("store: the data key of tenant '%s' does "
		    "not open with the master key", tenant);
		return STORE_E_INTEGRITY;
	}
	if (crypto_dek_wrap(wc->wc_newmk, tenant, dek, wrapped) != CRYPTO_OK)
		return STORE_E_IO;
	/* A tenant key rotation's new key moves along. */
	if (rec.sr_pending != NULL && (crypto_dek_unwrap(store->s_mk,
	    tenant, rec.sr_pending, CRYPTO_WRAPPED_BYTES, dek) !=
	    CRYPTO_OK || crypto_dek_wrap(wc->wc_newmk, tenant, dek,
	    pending) != CRYPTO_OK)) {
		log_warnx("store: the new data key of tenant '%s' "
		    "does not open with the master key", tenant);
		return STORE_E_INTEGRITY;
	}
	if ((rc = record_tenant_rewrite(val, &rec, wc->wc_newgen, wrapped,
	    rec.sr_pending != NULL ? pending : NULL, &nval)) != STORE_OK)
		return rc;
	nkey.mv_data = tenant;
	nkey.mv_size = key->mv_size;
	/* Same size, in place: the walk goes on from here. */
	mrc = mdb_cursor_put(cur, &nkey, &nval, MDB_CURRENT);
	free(nval.mv_data);
	if (mrc != 0)
		return store_mdb_code(mrc, "rewrap tenant");
	return STORE_WALK_NEXT;
}

/*
 * Re-wraps under newmk the data keys of up to limit tenant records from
 * pos on (pos: the first name to look at, "" from the start; the name to
 * go on from afterwards) that are still under the current key; *count
 * grows by the live records looked at.  Past the last record, meta moves
 * to newmk and its generation (*finished = 1): every record written since
 * the rotation began is under newmk already.
 */
static int
store_rewrap_batch(struct store *store, MDB_txn *txn,
    const unsigned char *newmk, char *pos, size_t limit, uint64_t *count,
    int *finished)
{
	struct store_rewrap_ctx	 wc;
	unsigned char		 check[CRYPTO_CHECK_BYTES];
	MDB_val			 key, start;
	int			 rc, mrc;

	*finished = 0;
	memset(&wc, 0, sizeof(wc));
	wc.wc_store = store;
	wc.wc_newmk = newmk;
	wc.wc_newgen = ((store->s_gen + 1) & 1) ? STORE_REC_KEYGEN : 0;
	wc.wc_pos = pos;
	wc.wc_limit = limit;
	wc.wc_count = count;
	if (pos[0] != '\0') {
		start.mv_data = pos;
		start.mv_size = strlen(pos);
	}
	rc = store_walk(store, txn, store->s_tenants, pos[0] != '\0' ?
	    &start : NULL, store_rewrap_one, &wc);
	sodium_memzero(store->s_dek, CRYPTO_KEY_BYTES);
	if (rc == STORE_WALK_STOP)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;

	/* Past the last record: the rotation is complete with this txn. */
	crypto_key_check(newmk, check);
	if ((rc = store_meta_put(store, txn, "key_check", check,
	    sizeof(check))) != STORE_OK ||
	    (rc = store_meta_u64_put(store, txn, "key_gen",
	    store->s_gen + 1)) != STORE_OK)
		return rc;
	key.mv_data = (void *)"key_next_check";
	key.mv_size = strlen("key_next_check");
	mrc = mdb_del(txn, store->s_meta, &key, NULL);
	if (mrc != 0 && mrc != MDB_NOTFOUND)
		return store_mdb_code(mrc, "delete key_next_check");
	*finished = 1;
	return STORE_OK;
}

int
store_rewrap(struct store *store, MDB_txn *txn, const unsigned char *newmk,
    uint64_t *count)
{
	char	pos[PROTO_TENANT_MAX + 1] = "";
	int	rc, finished;

	*count = 0;
	if ((rc = store_rotate_begin(store, txn, newmk)) != STORE_OK)
		return rc;
	return store_rewrap_batch(store, txn, newmk, pos, SIZE_MAX, count,
	    &finished);
}
