/*
 * A tenant's data key rotation: a new data key and every kept version
 * re-sealed under it, in steps or all in one go.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "store_priv.h"

/* A tenant key rotation in steps (store_rekey_*). */
struct store_rekey {
	char			 rk_tenant[PROTO_TENANT_MAX + 1];
	size_t			 rk_tlen;
	unsigned char		*rk_old;	/* guarded */
	unsigned char		*rk_new;	/* guarded */
	uint64_t		*rk_vers;	/* the versions when begun */
	size_t			 rk_n;
	size_t			 rk_done;	/* of rk_vers, looked at */
	uint64_t		 rk_count;	/* re-sealed by this rotation */
};

static int	store_rec_rewrite(struct store *, MDB_txn *, const char *,
		    size_t, const unsigned char *, const unsigned char *);
static int	store_rekey_one(struct store *, MDB_txn *, struct store_rekey *,
		    uint64_t, int *);

/*
 * Replaces the wrapped data keys (made under store_wrap_key; pending NULL
 * for none) in the live tenant's record, leaving its numbers and names as
 * they are.
 */
static int
store_rec_rewrite(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, const unsigned char *wrapped, const unsigned char *pending)
{
	struct store_rec	 rec;
	MDB_val			 key, val, nval;
	int			 rc;

	key.mv_data = (void *)tenant;
	key.mv_size = tlen;
	if ((rc = mdb_get(txn, store->s_tenants, &key, &val)) != 0)
		return store_mdb_code(rc, "get tenant");
	if ((rc = record_tenant_decode(&val, &rec)) != STORE_OK)
		return rc;
	if (rec.sr_deleted)
		return STORE_E_NOT_FOUND;
	/* val points into a page the put below may replace. */
	if ((rc = record_tenant_rewrite(&val, &rec, store_wrap_gen(store),
	    wrapped, pending, &nval)) != STORE_OK)
		return rc;
	rc = store_mdb_code(mdb_put(txn, store->s_tenants, &key, &nval, 0),
	    "put tenant");
	free(nval.mv_data);
	return rc;
}

int
store_rekey_begin(struct store *store, MDB_txn *txn, const char *tenant,
    struct store_rekey **rkp)
{
	struct store_rekey	*rk;
	struct store_rec	 rec;
	unsigned char		 wrapped[CRYPTO_WRAPPED_BYTES];
	unsigned char		 pending[CRYPTO_WRAPPED_BYTES];
	size_t			 tlen;
	int			 rc;

	*rkp = NULL;
	if ((rc = store_rec_live(store, txn, tenant, &tlen, &rec)) != STORE_OK)
		return rc;
	if ((rk = calloc(1, sizeof(*rk))) == NULL)
		return STORE_E_NOMEM;
	memcpy(rk->rk_tenant, tenant, tlen + 1);
	rk->rk_tlen = tlen;
	if ((rk->rk_old = crypto_key_alloc()) == NULL ||
	    (rk->rk_new = crypto_key_alloc()) == NULL) {
		rc = STORE_E_NOMEM;
		goto fail;
	}
	if (rec.sr_pending != NULL) {
		/* One under way (a crash, another request): go on with it. */
		if ((rc = store_wrapped_open(store, tenant, &rec,
		    rec.sr_pending, rk->rk_new)) != STORE_OK)
			goto fail;
	} else {
		if ((rc = store_dek_open(store, tenant, &rec,
		    rk->rk_old)) != STORE_OK ||
		    (rc = store_wrapped_move(store, tenant, &rec,
		    rec.sr_wrapped, rk->rk_old, wrapped)) != STORE_OK)
			goto fail;
		crypto_dek_new(rk->rk_new);
		if (crypto_dek_wrap(store_wrap_key(store), tenant, rk->rk_new,
		    pending) != CRYPTO_OK) {
			rc = STORE_E_IO;
			goto fail;
		}
		/* From now on puts seal under the new key, reads try both. */
		if ((rc = store_rec_rewrite(store, txn, tenant, tlen, wrapped,
		    pending)) != STORE_OK)
			goto fail;
	}
	if ((rc = store_versions_list(store, txn, tenant, tlen, &rk->rk_vers,
	    &rk->rk_n)) != STORE_OK)
		goto fail;
	sodium_memzero(rk->rk_old, CRYPTO_KEY_BYTES);
	*rkp = rk;
	return STORE_OK;
fail:
	store_rekey_free(rk);
	return rc;
}

/*
 * Re-seals under the new key the version of rk's tenant unless it is gone
 * (pruned) or sealed under the new key already (a put, or a step before a
 * crash).  *resealed says whether it did.
 */
static int
store_rekey_one(struct store *store, MDB_txn *txn, struct store_rekey *rk,
    uint64_t version, int *resealed)
{
	unsigned char	*plain = NULL, *sealed = NULL;
	size_t		 slen, plen;
	MDB_val		 val;
	int		 rc;

	*resealed = 0;
	rc = store_sealed_get(store, txn, rk->rk_tenant, rk->rk_tlen, version,
	    &val);
	if (rc == STORE_E_NOT_FOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	slen = val.mv_size;
	if ((plain = malloc(slen - CRYPTO_SEAL_OVERHEAD + 1)) == NULL ||
	    (sealed = malloc(slen)) == NULL) {
		rc = STORE_E_NOMEM;
		goto done;
	}
	if (crypto_open(rk->rk_old, rk->rk_tenant, version, val.mv_data, slen,
	    plain, &plen) != CRYPTO_OK) {
		sodium_memzero(plain, slen - CRYPTO_SEAL_OVERHEAD + 1);
		rc = crypto_open(rk->rk_new, rk->rk_tenant, version,
		    val.mv_data, slen, plain, &plen) == CRYPTO_OK ? STORE_OK :
		    STORE_E_INTEGRITY;
		goto done;
	}
	if (crypto_seal(rk->rk_new, rk->rk_tenant, version, plain, plen,
	    sealed) != CRYPTO_OK) {
		rc = STORE_E_IO;
		goto done;
	}
	if ((rc = store_sealed_put(store, txn, rk->rk_tenant, rk->rk_tlen,
	    version, sealed, plen + CRYPTO_SEAL_OVERHEAD)) != STORE_OK)
		goto done;
	*resealed = 1;
	rc = STORE_OK;
done:
	if (plain != NULL) {
		sodium_memzero(plain, slen - CRYPTO_SEAL_OVERHEAD + 1);
		free(plain);
	}
	free(sealed);
	return rc;
}

int
store_rekey_step(struct store *store, MDB_txn *txn, struct store_rekey *rk,
    size_t limit, int *done)
{
	struct store_rec	 rec;
	unsigned char		 wrapped[CRYPTO_WRAPPED_BYTES];
	size_t			 i;
	int			 rc, same, resealed;

	*done = 0;
	if ((rc = store_rec_get(store, txn, rk->rk_tenant, rk->rk_tlen,
	    &rec)) != STORE_OK)
		return rc;
	if (rec.sr_deleted)
		return STORE_E_NOT_FOUND;
	if (rec.sr_pending == NULL) {
		/* Another request finished this rotation: done too. */
		if ((rc = store_dek_open(store, rk->rk_tenant, &rec,
		    rk->rk_old)) != STORE_OK)
			return rc;
		same = sodium_memcmp(rk->rk_old, rk->rk_new,
		    CRYPTO_KEY_BYTES) == 0;
		sodium_memzero(rk->rk_old, CRYPTO_KEY_BYTES);
		if (!same)
			return STORE_E_NOT_FOUND;
		*done = 1;
		return STORE_OK;
	}
	if ((rc = store_dek_open(store, rk->rk_tenant, &rec,
	    rk->rk_old)) != STORE_OK)
		return rc;
	/* Recreated with a rotation of its own since: not ours. */
	if ((rc = store_wrapped_open(store, rk->rk_tenant, &rec,
	    rec.sr_pending, store->s_dek)) != STORE_OK)
		goto done;
	same = sodium_memcmp(store->s_dek, rk->rk_new, CRYPTO_KEY_BYTES) == 0;
	sodium_memzero(store->s_dek, CRYPTO_KEY_BYTES);
	if (!same) {
		rc = STORE_E_NOT_FOUND;
		goto done;
	}
	/* rec points into pages the puts below may move: no use after. */
	for (i = 0; i < limit && rk->rk_done < rk->rk_n; i++) {
		if ((rc = store_rekey_one(store, txn, rk,
		    rk->rk_vers[rk->rk_done], &resealed)) != STORE_OK)
			goto done;
		rk->rk_done++;
		rk->rk_count += resealed;
	}
	if (rk->rk_done < rk->rk_n) {
		rc = STORE_OK;
		goto done;
	}
	/*
	 * Every version is under the new key (those written meanwhile were
	 * sealed with it): it replaces the old one, which goes.
	 */
	if ((rc = store_rec_get(store, txn, rk->rk_tenant, rk->rk_tlen,
	    &rec)) != STORE_OK ||
	    (rc = store_wrapped_move(store, rk->rk_tenant, &rec,
	    rec.sr_pending, rk->rk_new, wrapped)) != STORE_OK ||
	    (rc = store_rec_rewrite(store, txn, rk->rk_tenant, rk->rk_tlen,
	    wrapped, NULL)) != STORE_OK)
		goto done;
	*done = 1;
done:
	sodium_memzero(rk->rk_old, CRYPTO_KEY_BYTES);
	return rc;
}

uint64_t
store_rekey_count(const struct store_rekey *rk)
{
	return rk->rk_count;
}

void
store_rekey_free(struct store_rekey *rk)
{
	if (rk == NULL)
		return;
	crypto_key_free(rk->rk_old);
	crypto_key_free(rk->rk_new);
	free(rk->rk_vers);
	free(rk);
}

const char *
store_rekey_tenant(const struct store_rekey *rk)
{
	return rk->rk_tenant;
}

int
store_tenant_rekey(struct store *store, MDB_txn *txn, const char *tenant,
    uint64_t *count)
{
	struct store_rekey	*rk;
	int			 rc, done;

	*count = 0;
	if ((rc = store_rekey_begin(store, txn, tenant, &rk)) != STORE_OK)
		return rc;
	if ((rc = store_rekey_step(store, txn, rk, SIZE_MAX,
	    &done)) == STORE_OK)
		*count = rk->rk_count;
	store_rekey_free(rk);
	return rc;
}
