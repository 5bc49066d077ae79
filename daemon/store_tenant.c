/*
 * The store's tenant data: records, sealed config versions, and the reads
 * and writes of a tenant (get, put, delete, list, purge).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "store_priv.h"

static int	store_rec_put(struct store *, MDB_txn *, const char *, size_t,
		    const struct store_rec *, const unsigned char *,
		    const unsigned char *, const char **, size_t);

int
store_rec_get(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, struct store_rec *rec)
{
	MDB_val	 key, val;
	int	 rc;

	key.mv_data = (void *)tenant;
	key.mv_size = tlen;
	if ((rc = mdb_get(txn, store->s_tenants, &key, &val)) != 0)
		return store_mdb_code(rc, "get tenant");
	return record_tenant_decode(&val, rec);
}

/*
 * The live tenant's record (tenant's length in *tlen); STORE_E_NOT_FOUND
 * for a name that cannot be a tenant's, a missing or a deleted tenant.
 */
int
store_rec_live(struct store *store, MDB_txn *txn, const char *tenant,
    size_t *tlen, struct store_rec *rec)
{
	int	 rc;

	if (record_name_len(tenant, tlen) == -1)
		return STORE_E_NOT_FOUND;
	if ((rc = store_rec_get(store, txn, tenant, *tlen, rec)) != STORE_OK)
		return rc;
	if (rec->sr_deleted)
		return STORE_E_NOT_FOUND;
	return STORE_OK;
}

/*
 * The sealed record of one version into val (LMDB's memory, valid until
 * the next write or the end of txn); too short to be sealed is integrity.
 */
int
store_sealed_get(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, uint64_t version, MDB_val *val)
{
	unsigned char	kbuf[STORE_VKEY_MAX];
	MDB_val		key;
	int		mrc;

	key.mv_size = record_vkey(tenant, tlen, version, kbuf);
	key.mv_data = kbuf;
	if ((mrc = mdb_get(txn, store->s_versions, &key, val)) != 0)
		return store_mdb_code(mrc, "get version");
	if (val->mv_size < CRYPTO_SEAL_OVERHEAD)
		return STORE_E_INTEGRITY;
	return STORE_OK;
}

/*
 * Writes the tenant's record from rec's numbers, wrapped (NULL for a
 * deleted tenant; else made under store_wrap_key), pending (NULL, or the
 * new data key of a rotation under way, under the same key) and the
 * sorted names.
 */
static int
store_rec_put(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, const struct store_rec *rec, const unsigned char *wrapped,
    const unsigned char *pending, const char **names, size_t nnames)
{
	struct store_rec	 nrec = *rec;
	MDB_val			 key, val;
	int			 rc;

	nrec.sr_keygen = store_wrap_gen(store) != 0;
	if ((rc = record_tenant_encode(&nrec, wrapped, pending, names, nnames,
	    &val)) != STORE_OK)
		return rc;
	key.mv_data = (void *)tenant;
	key.mv_size = tlen;
	rc = store_mdb_code(mdb_put(txn, store->s_tenants, &key, &val, 0),
	    "put tenant");
	free(val.mv_data);
	return rc;
}

/* Counts a tenant coming to life (+1) or going (-1), in txn. */
int
store_live_add(struct store *store, MDB_txn *txn, int delta)
{
	uint64_t	 n;
	int		 rc;

	rc = store_meta_u64(store, txn, STORE_META_LIVE, &n);
	if (rc != STORE_OK && rc != STORE_E_NOT_FOUND)
		return rc;
	if (delta < 0 && n == 0)
		return STORE_E_INTEGRITY;
	return store_meta_u64_put(store, txn, STORE_META_LIVE,
	    delta < 0 ? n - 1 : n + 1);
}

/* Stores sealed (len bytes) as the tenant's version. */
int
store_sealed_put(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, uint64_t version, const unsigned char *sealed, size_t len)
{
	unsigned char	kbuf[STORE_VKEY_MAX];
	MDB_val		key, val;

	key.mv_size = record_vkey(tenant, tlen, version, kbuf);
	key.mv_data = kbuf;
	val.mv_data = (void *)sealed;
	val.mv_size = len;
	return store_mdb_code(mdb_put(txn, store->s_versions, &key, &val, 0),
	    "put version");
}

/* A walk over one tenant's versions (store_versions_prune, _list). */
struct store_vers_ctx {
	const char	*vc_tenant;
	size_t		 vc_tlen;
	uint64_t	 vc_upto;	/* prune: the last to delete */
	uint64_t	*vc_vers;	/* list: the versions found */
	size_t		 vc_n;
	size_t		 vc_cap;
};

static int
store_versions_del(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_vers_ctx	*vc = arg;
	uint64_t		 version;
	int			 mrc;

	if (!record_vkey_match(key, vc->vc_tenant, vc->vc_tlen, &version) ||
	    version > vc->vc_upto)
		return STORE_WALK_STOP;
	if ((mrc = mdb_cursor_del(cur, 0)) != 0)
		return store_mdb_code(mrc, "delete version");
	/* The oldest left is always the first at or after version 0. */
	return STORE_WALK_AGAIN;
}

static int
store_versions_add(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_vers_ctx	*vc = arg;
	uint64_t		*nv, version;

	if (!record_vkey_match(key, vc->vc_tenant, vc->vc_tlen, &version))
		return STORE_WALK_STOP;
	if (vc->vc_n == vc->vc_cap) {
		vc->vc_cap = vc->vc_cap == 0 ? 16 : vc->vc_cap * 2;
		if ((nv = reallocarray(vc->vc_vers, vc->vc_cap,
		    sizeof(*nv))) == NULL)
			return STORE_E_NOMEM;
		vc->vc_vers = nv;
	}
	vc->vc_vers[vc->vc_n++] = version;
	return STORE_WALK_NEXT;
}

/* Calls cb with vc (tenant filled in) for the tenant's versions. */
static int
store_versions_walk(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, int (*cb)(void *, MDB_cursor *, const MDB_val *,
    const MDB_val *), struct store_vers_ctx *vc)
{
	unsigned char	 kbuf[STORE_VKEY_MAX];
	MDB_val		 start;
	int		 rc;

	vc->vc_tenant = tenant;
	vc->vc_tlen = tlen;
	start.mv_size = record_vkey(tenant, tlen, 0, kbuf);
	start.mv_data = kbuf;
	rc = store_walk(store, txn, store->s_versions, &start, cb, vc);
	return rc == STORE_WALK_STOP ? STORE_OK : rc;
}

/* Deletes the tenant's versions numbered upto or less. */
int
store_versions_prune(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, uint64_t upto)
{
	struct store_vers_ctx	 vc;

	memset(&vc, 0, sizeof(vc));
	vc.vc_upto = upto;
	return store_versions_walk(store, txn, tenant, tlen, store_versions_del,
	    &vc);
}

/* The numbers of the tenant's stored versions, ascending, in a new array. */
int
store_versions_list(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, uint64_t **versp, size_t *np)
{
	struct store_vers_ctx	 vc;
	int			 rc;

	*versp = NULL;
	*np = 0;
	memset(&vc, 0, sizeof(vc));
	if ((rc = store_versions_walk(store, txn, tenant, tlen,
	    store_versions_add, &vc)) != STORE_OK) {
		free(vc.vc_vers);
		return rc;
	}
	*versp = vc.vc_vers;
	*np = vc.vc_n;
	return STORE_OK;
}

int
store_tenant_get(struct store *store, MDB_txn *txn, const char *tenant,
    struct store_tenant *st)
{
	struct store_rec	 rec;
	size_t			 tlen;
	int			 rc;

	st->st_fields = NULL;
	if (record_name_len(tenant, &tlen) == -1)
		return STORE_E_NOT_FOUND;
	if ((rc = store_rec_get(store, txn, tenant, tlen, &rec)) != STORE_OK)
		return rc;
	if ((st->st_fields = record_fields_json(&rec)) == NULL)
		return STORE_E_NOMEM;
	memcpy(st->st_tenant, tenant, tlen + 1);
	st->st_version = rec.sr_version;
	st->st_created = rec.sr_created;
	st->st_updated = rec.sr_updated;
	st->st_deleted = rec.sr_deleted;
	return STORE_OK;
}

void
store_tenant_release(struct store_tenant *st)
{
	json_decref(st->st_fields);
	st->st_fields = NULL;
}

int
store_config_get(struct store *store, MDB_txn *txn, const char *tenant,
    uint64_t version, json_t **config, uint64_t *got_version)
{
	struct store_rec	 rec;
	unsigned char		*dek = store->s_dek;
	unsigned char		*plain = NULL;
	size_t			 tlen, plen = 0, pcap = 0;
	json_error_t		 jerr;
	json_t			*obj;
	MDB_val			 val;
	int			 rc;

	*config = NULL;
	if ((rc = store_rec_live(store, txn, tenant, &tlen, &rec)) != STORE_OK)
		return rc;
	if (version == 0)
		version = rec.sr_version;
	else if (version > rec.sr_version)
		return STORE_E_NOT_FOUND;

	if ((rc = store_dek_open(store, tenant, &rec, dek)) != STORE_OK)
		goto done;
	if ((rc = store_sealed_get(store, txn, tenant, tlen, version,
	    &val)) != STORE_OK)
		goto done;
	/* The plaintext goes to our own buffer, never into LMDB's pages. */
	pcap = val.mv_size - CRYPTO_SEAL_OVERHEAD;
	if ((plain = malloc(pcap > 0 ? pcap : 1)) == NULL) {
		rc = STORE_E_NOMEM;
		goto done;
	}
	/* Under the tenant's data key, or the new one in a key rotation. */
	if ((rc = store_version_open(store, tenant, &rec, version, &val, plain,
	    &plen)) != STORE_OK)
		goto done;
	obj = json_loadb((const char *)plain, plen, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (obj == NULL) {
		rc = json_error_code(&jerr) == json_error_out_of_memory ?
		    STORE_E_NOMEM : STORE_E_INTEGRITY;
		goto done;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		rc = STORE_E_INTEGRITY;
		goto done;
	}
	*config = obj;
	if (got_version != NULL)
		*got_version = version;
	rc = STORE_OK;
done:
	/* The parser's message may quote a piece of the plaintext. */
	sodium_memzero(&jerr, sizeof(jerr));
	sodium_memzero(dek, CRYPTO_KEY_BYTES);
	if (plain != NULL) {
		sodium_memzero(plain, pcap);
		free(plain);
	}
	return rc;
}

int
store_config_put(struct store *store, MDB_txn *txn, const char *tenant,
    json_t *config, uint64_t *new_version, uint64_t *seq)
{
	struct store_rec	 rec;
	unsigned char		*dek = store->s_dek;
	unsigned char		 wrapped[CRYPTO_WRAPPED_BYTES];
	unsigned char		 pending[CRYPTO_WRAPPED_BYTES];
	const char		**keys = NULL;
	unsigned char		*sealed = NULL;
	char			*plain = NULL;
	size_t			 tlen, plen = 0, nkeys = 0;
	uint64_t		 version, created, now = store_now();
	int			 rc, rekeying = 0;

	if (record_name_len(tenant, &tlen) == -1 || !json_is_object(config))
		return STORE_E_IO;

	rc = store_rec_get(store, txn, tenant, tlen, &rec);
	if (rc == STORE_OK && !rec.sr_deleted) {
		/* Mid-rotation, a record written again goes to the next key. */
		if ((rc = store_dek_rewrap(store, tenant, &rec, dek, wrapped,
		    pending, &rekeying)) != STORE_OK)
			goto done;
		version = rec.sr_version;
		created = rec.sr_created;
	} else if (rc == STORE_OK || rc == STORE_E_NOT_FOUND) {
		/* New, or recreated: a new data key, versions go on. */
		version = rc == STORE_OK ? rec.sr_version : 0;
		created = now;
		crypto_dek_new(dek);
		if (crypto_dek_wrap(store_wrap_key(store), tenant, dek,
		    wrapped) != CRYPTO_OK) {
			rc = STORE_E_IO;
			goto done;
		}
		if ((rc = store_live_add(store, txn, 1)) != STORE_OK)
			goto done;
	} else
		goto done;
	if (version == UINT64_MAX) {
		rc = STORE_E_FULL;
		goto done;
	}
	version++;

	/*
	 * json_dumpb writes straight into our buffer, so no grown-and-freed
	 * copies of the plaintext are left in the heap.
	 */
	plen = json_dumpb(config, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
	if (plen == 0) {
		rc = STORE_E_NOMEM;
		goto done;
	}
	if ((plain = malloc(plen)) == NULL ||
	    (sealed = malloc(plen + CRYPTO_SEAL_OVERHEAD)) == NULL) {
		rc = STORE_E_NOMEM;
		goto done;
	}
	if (json_dumpb(config, plain, plen, JSON_COMPACT |
	    JSON_SORT_KEYS) != plen) {
		rc = STORE_E_NOMEM;
		goto done;
	}
	if (crypto_seal(dek, tenant, version, (unsigned char *)plain, plen,
	    sealed) != CRYPTO_OK) {
		rc = STORE_E_IO;
		goto done;
	}
	sodium_memzero(plain, plen);

	if ((rc = store_sealed_put(store, txn, tenant, tlen, version, sealed,
	    plen + CRYPTO_SEAL_OVERHEAD)) != STORE_OK)
		goto done;
	if (version > store->s_keep && (rc = store_versions_prune(store, txn,
	    tenant, tlen, version - store->s_keep)) != STORE_OK)
		goto done;

	if ((rc = record_config_keys(config, &keys, &nkeys)) != STORE_OK)
		goto done;
	memset(&rec, 0, sizeof(rec));
	rec.sr_version = version;
	rec.sr_created = created;
	rec.sr_updated = now;
	if ((rc = store_rec_put(store, txn, tenant, tlen, &rec, wrapped,
	    rekeying ? pending : NULL, keys, nkeys)) != STORE_OK)
		goto done;
	if ((rc = store_change_append(store, txn, STORE_OP_PUT, version,
	    tenant, tlen, seq)) != STORE_OK)
		goto done;
	if (new_version != NULL)
		*new_version = version;
	rc = STORE_OK;
done:
	sodium_memzero(dek, CRYPTO_KEY_BYTES);
	if (plain != NULL) {
		sodium_memzero(plain, plen);
		free(plain);
	}
	free(sealed);
	free(keys);
	return rc;
}

int
store_tenant_delete(struct store *store, MDB_txn *txn, const char *tenant,
    uint64_t *new_version, uint64_t *seq)
{
	struct store_rec	 rec, nrec;
	size_t			 tlen;
	int			 rc;

	if ((rc = store_rec_live(store, txn, tenant, &tlen, &rec)) != STORE_OK)
		return rc;
	if (rec.sr_version == UINT64_MAX)
		return STORE_E_FULL;
	/* rec points into LMDB pages that the writes below may move. */
	memset(&nrec, 0, sizeof(nrec));
	nrec.sr_deleted = 1;
	nrec.sr_version = rec.sr_version + 1;
	nrec.sr_created = rec.sr_created;
	nrec.sr_updated = store_now();

	if ((rc = store_versions_prune(store, txn, tenant, tlen,
	    UINT64_MAX)) != STORE_OK)
		return rc;
	/* Without its wrapped data key the tenant's old records are gone. */
	if ((rc = store_rec_put(store, txn, tenant, tlen, &nrec, NULL, NULL,
	    NULL, 0)) != STORE_OK)
		return rc;
	if ((rc = store_live_add(store, txn, -1)) != STORE_OK)
		return rc;
	if ((rc = store_tests_forget(store, txn, tenant, tlen)) != STORE_OK)
		return rc;
	if ((rc = store_change_append(store, txn, STORE_OP_DELETE,
	    nrec.sr_version, tenant, tlen, seq)) != STORE_OK)
		return rc;
	if (new_version != NULL)
		*new_version = nrec.sr_version;
	return STORE_OK;
}

/* store_list's walk: its bounds and its caller's callback. */
struct store_list_ctx {
	const char	 *lc_prefix;
	size_t		  lc_plen;
	const char	 *lc_after;
	size_t		  lc_alen;
	int		(*lc_cb)(void *, const struct store_tenant *);
	void		 *lc_arg;
};

static int
store_list_one(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_list_ctx	*lc = arg;
	struct store_tenant	 st = STORE_TENANT_INIT;
	struct store_rec	 rec;
	int			 r;

	if (lc->lc_prefix != NULL && (key->mv_size < lc->lc_plen ||
	    memcmp(key->mv_data, lc->lc_prefix, lc->lc_plen) != 0))
		return STORE_WALK_STOP;
	if (lc->lc_after != NULL && key->mv_size == lc->lc_alen &&
	    memcmp(key->mv_data, lc->lc_after, lc->lc_alen) == 0)
		return STORE_WALK_NEXT;
	if (record_key_name(key, st.st_tenant) == -1 ||
	    record_tenant_decode(val, &rec) != STORE_OK)
		return STORE_E_INTEGRITY;
	if (rec.sr_deleted)
		return STORE_WALK_NEXT;
	st.st_version = rec.sr_version;
	st.st_created = rec.sr_created;
	st.st_updated = rec.sr_updated;
	st.st_deleted = 0;
	if ((st.st_fields = record_fields_json(&rec)) == NULL)
		return STORE_E_NOMEM;
	r = lc->lc_cb(lc->lc_arg, &st);
	store_tenant_release(&st);
	return store_walk_ret(r);
}

int
store_list(struct store *store, MDB_txn *txn, const char *prefix,
    const char *after, int (*cb)(void *, const struct store_tenant *),
    void *arg)
{
	struct store_list_ctx	 lc;
	MDB_val			 key;
	const char		*start;
	int			 rc;

	if (prefix != NULL && *prefix == '\0')
		prefix = NULL;
	if (after != NULL && *after == '\0')
		after = NULL;
	memset(&lc, 0, sizeof(lc));
	lc.lc_prefix = prefix;
	lc.lc_after = after;
	if (prefix != NULL)
		lc.lc_plen = strlen(prefix);
	if (after != NULL)
		lc.lc_alen = strlen(after);
	lc.lc_cb = cb;
	lc.lc_arg = arg;
	/* Start at the later of the two bounds. */
	start = prefix;
	if (after != NULL && (prefix == NULL || strcmp(after, prefix) > 0))
		start = after;
	if (start != NULL) {
		key.mv_data = (void *)start;
		key.mv_size = strlen(start);
	}
	rc = store_walk(store, txn, store->s_tenants, start != NULL ? &key :
	    NULL, store_list_one, &lc);
	return rc == STORE_WALK_STOP ? STORE_OK : rc;
}

int
store_tenant_purge(struct store *store, MDB_txn *txn, const char *tenant,
    uint64_t *new_version, uint64_t *seq)
{
	struct store_rec	 rec;
	MDB_val			 key;
	uint64_t		 version, last;
	size_t			 tlen;
	int			 rc;

	if (record_name_len(tenant, &tlen) == -1)
		return STORE_E_NOT_FOUND;
	if ((rc = store_rec_get(store, txn, tenant, tlen, &rec)) != STORE_OK)
		return rc;
	if (rec.sr_version == UINT64_MAX)
		return STORE_E_FULL;
	version = rec.sr_version + 1;
	if (!rec.sr_deleted && (rc = store_live_add(store, txn, -1)) !=
	    STORE_OK)
		return rc;

	if ((rc = store_versions_prune(store, txn, tenant, tlen,
	    UINT64_MAX)) != STORE_OK)
		return rc;
	/* The record and its wrapped data key: no tombstone is left. */
	key.mv_data = (void *)tenant;
	key.mv_size = tlen;
	if ((rc = mdb_del(txn, store->s_tenants, &key, NULL)) != 0)
		return store_mdb_code(rc, "delete tenant");
	if ((rc = store_tests_forget(store, txn, tenant, tlen)) != STORE_OK)
		return rc;
	/*
	 * The delete change goes in first, so the feed's last seq never moves
	 * back when the tenant's older changes (the last one maybe) go.
	 */
	if ((rc = store_change_append(store, txn, STORE_OP_DELETE, version,
	    tenant, tlen, &last)) != STORE_OK)
		return rc;
	if ((rc = store_changes_forget(store, txn, tenant, tlen,
	    last)) != STORE_OK)
		return rc;
	if (new_version != NULL)
		*new_version = version;
	if (seq != NULL)
		*seq = last;
	return STORE_OK;
}
