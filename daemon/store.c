/*
 * wfvaultd's store: one LMDB environment holding the tenants' records,
 * their sealed config versions, the change feed and the sync targets'
 * positions.  Nothing returned points into LMDB memory past a call.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "wfvaultd.h"

/*
 * meta "format".  Format 2 adds the feed index and the live-tenant
 * counter; a format 1 store is moved to 2 when opened for writing, and an
 * older wfvaultd, which would not keep them, then refuses it.
 */
#define STORE_FORMAT		2
#define STORE_FORMAT_OLDEST	1
#define STORE_MAX_DBS		10
#define STORE_DEFAULT_READERS	126

/*
 * Tenant record: format byte, flags byte, version, created, updated (three
 * u64 BE), then for a live tenant the wrapped data key (and, while its
 * data key is being rotated, the new one), then each field name followed
 * by a NUL, in byte order.
 */
#define STORE_REC_FORMAT	1
#define STORE_REC_DELETED	0x01
/*
 * The parity of the master key generation the data key is wrapped under
 * (meta "key_gen" counts completed rotations): during a rotation the
 * records not yet re-wrapped have the current parity, the others the
 * next one, so a finished rotation needs no second pass to clear them.
 */
#define STORE_REC_KEYGEN	0x02
/*
 * The tenant's data key is being rotated: a second wrapped key follows the
 * first, and each version is sealed under one of the two until the last
 * one is re-sealed and the new key replaces the old.
 */
#define STORE_REC_REKEY		0x04
#define STORE_REC_HEAD		(1 + 1 + 8 + 8 + 8)

/* versions key: tenant, NUL, version u64 BE. */
#define STORE_VKEY_MAX		(PROTO_TENANT_MAX + 1 + 8)

/* changes value: op byte, version u64 BE, tenant. */
#define STORE_CHANGE_HEAD	(1 + 8)

/*
 * feed_tenants (dupsort): tenant -> seq u64 BE of each of its changes, so
 * a purge finds them without walking the feed.  Meta keeps
 * "live_tenants", the count of live tenants (so status walks nothing;
 * absent means 0 in a store of format 2), and "feed_trimmed", the highest
 * seq trimmed from the feed.
 */
#define STORE_META_LIVE		"live_tenants"
#define STORE_META_TRIMMED	"feed_trimmed"

struct store {
	MDB_env			*s_env;
	MDB_dbi			 s_meta;
	MDB_dbi			 s_tenants;
	MDB_dbi			 s_versions;
	MDB_dbi			 s_changes;
	MDB_dbi			 s_sync;
	MDB_dbi			 s_feedidx;	/* see STORE_META_LIVE */
	int			 s_has_index;	/* 0: a read-only format 1 */
	const unsigned char	*s_mk;		/* borrowed, or s_mk_own */
	unsigned char		*s_mk_own;	/* from store_master_key_set */
	unsigned char		*s_dek;		/* scratch data key, guarded */
	uint64_t		 s_keep;
	uint64_t		 s_gen;		/* meta "key_gen" of s_mk */
	/*
	 * A master key rotation under way (meta "key_next_check"): the key
	 * it moves to, NULL until store_rotate_next_set gave it.
	 */
	int			 s_rotating;
	unsigned char		 s_next_check[CRYPTO_CHECK_BYTES];
	const unsigned char	*s_next;
	unsigned char		*s_next_own;
};

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

/*
 * A decoded tenant record.  sr_wrapped and sr_fields point into the LMDB
 * value it came from and die with the next write or the transaction.
 */
struct store_rec {
	int			 sr_deleted;
	int			 sr_keygen;	/* STORE_REC_KEYGEN set */
	uint64_t		 sr_version;
	uint64_t		 sr_created;
	uint64_t		 sr_updated;
	const unsigned char	*sr_wrapped;	/* NULL when deleted */
	const unsigned char	*sr_pending;	/* the new key in a rekey */
	const char		*sr_fields;
	size_t			 sr_fieldslen;
};

static void	store_be64_put(unsigned char *, uint64_t);
static uint64_t	store_be64_get(const unsigned char *);
static uint64_t	store_now(void);
static int	store_mdb_code(int, const char *);
static int	store_name_len(const char *, size_t *);
static int	store_key_name(const MDB_val *, char [PROTO_TENANT_MAX + 1]);
static int	store_sealed_get(struct store *, MDB_txn *, const char *,
		    size_t, uint64_t, MDB_val *);
static int	store_rec_parse(const MDB_val *, struct store_rec *);
static int	store_rec_get(struct store *, MDB_txn *, const char *, size_t,
		    struct store_rec *);
static int	store_rec_put(struct store *, MDB_txn *, const char *, size_t,
		    const struct store_rec *, const unsigned char *,
		    const unsigned char *, const char **, size_t);
static const unsigned char *store_wrap_key(const struct store *);
static unsigned	store_wrap_gen(const struct store *);
static int	store_dek_open(const struct store *, const char *,
		    const struct store_rec *, unsigned char *);
static int	store_wrapped_open(const struct store *, const char *,
		    const struct store_rec *, const unsigned char *,
		    unsigned char *);
static int	store_wrapped_move(const struct store *, const char *,
		    const struct store_rec *, const unsigned char *,
		    const unsigned char *, unsigned char *);
static int	store_dek_rewrap(const struct store *, const char *,
		    const struct store_rec *, unsigned char *, unsigned char *,
		    unsigned char *, int *);
static int	store_version_open(struct store *, const char *,
		    const struct store_rec *, uint64_t, const MDB_val *,
		    unsigned char *, size_t *);
static int	store_meta_rotation(struct store *, MDB_txn *);
static int	store_rewrap_batch(struct store *, MDB_txn *,
		    const unsigned char *, char *, size_t, uint64_t *, int *);
static json_t	*store_fields_json(const struct store_rec *);
static size_t	store_vkey(const char *, size_t, uint64_t, unsigned char *);
static int	store_versions_prune(struct store *, MDB_txn *, const char *,
		    size_t, uint64_t);
static int	store_change_append(struct store *, MDB_txn *, int, uint64_t,
		    const char *, size_t, uint64_t *);
static int	store_keys_cmp(const void *, const void *);
static int	store_config_keys(json_t *, const char ***, size_t *);
static int	store_meta_check(struct store *, MDB_txn *, int,
		    const char *, const char *, uint32_t *, char *, size_t);
static struct store *store_alloc(const unsigned char *, uint64_t);
static void	store_free(struct store *);
static int	store_setup(struct store *, const char *, const char *,
		    unsigned, uint64_t, uint64_t, char *, size_t);
static int	store_rec_rewrite(struct store *, MDB_txn *, const char *,
		    size_t, const unsigned char *, const unsigned char *);
static int	store_versions_list(struct store *, MDB_txn *, const char *,
		    size_t, uint64_t **, size_t *);
static int	store_fields_match(const struct store_rec *, json_t *);
static int	store_verify_tenant(struct store *, MDB_txn *, const char *,
		    size_t, const MDB_val *, struct store_verify *, char *,
		    size_t);
static int	store_verify_orphans(struct store *, MDB_txn *,
		    struct store_verify *, char *, size_t);
static int	store_verify_nop(void *, const struct store_change *);
static int	store_verify_counts(struct store *, MDB_txn *,
		    struct store_verify *, char *, size_t);
static int	store_meta_u64(struct store *, MDB_txn *, const char *,
		    uint64_t *);
static int	store_meta_u64_put(struct store *, MDB_txn *, const char *,
		    uint64_t);
static int	store_live_add(struct store *, MDB_txn *, int);
static int	store_index_build(struct store *, MDB_txn *, char *, size_t);
static int	store_change_tenant(const MDB_val *, const MDB_val *,
		    uint64_t *, const char **, size_t *);
static int	store_verify_nop_sync(void *, const char *, uint64_t);

const char *
store_strerror(int code)
{
	switch (code) {
	case STORE_OK:
		return "success";
	case STORE_E_IO:
		return "store input/output error";
	case STORE_E_NOT_FOUND:
		return "not found";
	case STORE_E_FULL:
		return "the store is full (raise map_size)";
	case STORE_E_INTEGRITY:
		return "a stored record failed authentication";
	case STORE_E_KEY:
		return "the master key does not match the store";
	case STORE_E_FORMAT:
		return "unknown store format";
	case STORE_E_NOMEM:
		return "out of memory";
	case STORE_E_DISK_FULL:
		return "no space left on the disk holding data_dir";
	}
	return "unknown store error";
}

static void
store_be64_put(unsigned char *p, uint64_t v)
{
	int	 i;

	for (i = 7; i >= 0; i--) {
		p[i] = (unsigned char)v;
		v >>= 8;
	}
}

static uint64_t
store_be64_get(const unsigned char *p)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t
store_now(void)
{
	time_t	 t = time(NULL);

	return t < 0 ? 0 : (uint64_t)t;
}

/* Turns an LMDB error into a STORE_E_* code; what names the operation. */
static int
store_mdb_code(int rc, const char *what)
{
	switch (rc) {
	case 0:
		return STORE_OK;
	case MDB_NOTFOUND:
		return STORE_E_NOT_FOUND;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		/* Both mean "too much data for the configured store". */
		return STORE_E_FULL;
	case ENOMEM:
		return STORE_E_NOMEM;
	case ENOSPC:
	case EDQUOT:
		return STORE_E_DISK_FULL;
	}
	log_warnx("store: %s: %s", what, mdb_strerror(rc));
	return STORE_E_IO;
}

/*
 * Copies a tenant id or target name stored as a key into name, NUL
 * terminated; -1 when the key cannot be one (a damaged table).
 */
static int
store_key_name(const MDB_val *key, char name[PROTO_TENANT_MAX + 1])
{
	if (key->mv_size == 0 || key->mv_size > PROTO_TENANT_MAX ||
	    memchr(key->mv_data, '\0', key->mv_size) != NULL)
		return -1;
	memcpy(name, key->mv_data, key->mv_size);
	name[key->mv_size] = '\0';
	return 0;
}

/* Tenant ids and target names: 1..PROTO_TENANT_MAX bytes. */
static int
store_name_len(const char *name, size_t *len)
{
	if (name == NULL)
		return -1;
	*len = strlen(name);
	if (*len == 0 || *len > PROTO_TENANT_MAX)
		return -1;
	return 0;
}

static int
store_rec_parse(const MDB_val *val, struct store_rec *rec)
{
	const unsigned char	*p = val->mv_data;
	size_t			 off;

	memset(rec, 0, sizeof(*rec));
	if (val->mv_size < STORE_REC_HEAD || p[0] != STORE_REC_FORMAT ||
	    (p[1] & ~(STORE_REC_DELETED | STORE_REC_KEYGEN |
	    STORE_REC_REKEY)) != 0 || (p[1] & STORE_REC_DELETED &&
	    p[1] & STORE_REC_REKEY))
		return STORE_E_INTEGRITY;
	rec->sr_deleted = (p[1] & STORE_REC_DELETED) != 0;
	rec->sr_keygen = (p[1] & STORE_REC_KEYGEN) != 0;
	rec->sr_version = store_be64_get(p + 2);
	rec->sr_created = store_be64_get(p + 10);
	rec->sr_updated = store_be64_get(p + 18);
	off = STORE_REC_HEAD;
	if (!rec->sr_deleted) {
		if (val->mv_size - off < CRYPTO_WRAPPED_BYTES)
			return STORE_E_INTEGRITY;
		rec->sr_wrapped = p + off;
		off += CRYPTO_WRAPPED_BYTES;
		if (p[1] & STORE_REC_REKEY) {
			if (val->mv_size - off < CRYPTO_WRAPPED_BYTES)
				return STORE_E_INTEGRITY;
			rec->sr_pending = p + off;
			off += CRYPTO_WRAPPED_BYTES;
		}
	}
	rec->sr_fields = (const char *)p + off;
	rec->sr_fieldslen = val->mv_size - off;
	/* Every name ends in NUL, so the last byte must be one. */
	if (rec->sr_fieldslen > 0 && rec->sr_fields[rec->sr_fieldslen - 1] !=
	    '\0')
		return STORE_E_INTEGRITY;
	return STORE_OK;
}

static int
store_rec_get(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, struct store_rec *rec)
{
	MDB_val	 key, val;
	int	 rc;

	key.mv_data = (void *)tenant;
	key.mv_size = tlen;
	if ((rc = mdb_get(txn, store->s_tenants, &key, &val)) != 0)
		return store_mdb_code(rc, "get tenant");
	return store_rec_parse(&val, rec);
}

/* The key new data keys are wrapped under: the next one in a rotation. */
static const unsigned char *
store_wrap_key(const struct store *store)
{
	return store->s_next != NULL ? store->s_next : store->s_mk;
}

/* The record flag that goes with store_wrap_key. */
static unsigned
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
static int
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
static int
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
static int
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
static int
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
static int
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
	unsigned char	*buf, *p;
	MDB_val		 key, val;
	size_t		 len, i, n;
	int		 rc;

	if (wrapped == NULL)
		pending = NULL;
	len = STORE_REC_HEAD + (wrapped != NULL ? CRYPTO_WRAPPED_BYTES : 0) +
	    (pending != NULL ? CRYPTO_WRAPPED_BYTES : 0);
	for (i = 0; i < nnames; i++)
		len += strlen(names[i]) + 1;
	if ((buf = malloc(len)) == NULL)
		return STORE_E_NOMEM;
	p = buf;
	*p++ = STORE_REC_FORMAT;
	*p++ = rec->sr_deleted ? STORE_REC_DELETED : wrapped != NULL ?
	    store_wrap_gen(store) | (pending != NULL ? STORE_REC_REKEY : 0) :
	    0;
	store_be64_put(p, rec->sr_version);
	store_be64_put(p + 8, rec->sr_created);
	store_be64_put(p + 16, rec->sr_updated);
	p += 24;
	if (wrapped != NULL) {
		memcpy(p, wrapped, CRYPTO_WRAPPED_BYTES);
		p += CRYPTO_WRAPPED_BYTES;
	}
	if (pending != NULL) {
		memcpy(p, pending, CRYPTO_WRAPPED_BYTES);
		p += CRYPTO_WRAPPED_BYTES;
	}
	for (i = 0; i < nnames; i++) {
		n = strlen(names[i]) + 1;
		memcpy(p, names[i], n);
		p += n;
	}
	key.mv_data = (void *)tenant;
	key.mv_size = tlen;
	val.mv_data = buf;
	val.mv_size = len;
	rc = store_mdb_code(mdb_put(txn, store->s_tenants, &key, &val, 0),
	    "put tenant");
	free(buf);
	return rc;
}

/* The record's field names as a new JSON array, or NULL. */
static json_t *
store_fields_json(const struct store_rec *rec)
{
	json_t	*a;
	size_t	 off, n;

	if ((a = json_array()) == NULL)
		return NULL;
	for (off = 0; off < rec->sr_fieldslen; off += n + 1) {
		n = strlen(rec->sr_fields + off);
		if (json_array_append_new(a, json_stringn(rec->sr_fields + off,
		    n)) == -1) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static size_t
store_vkey(const char *tenant, size_t tlen, uint64_t version,
    unsigned char *key)
{
	memcpy(key, tenant, tlen);
	key[tlen] = '\0';
	store_be64_put(key + tlen + 1, version);
	return tlen + 1 + 8;
}

/*
 * The sealed record of one version into val (LMDB's memory, valid until
 * the next write or the end of txn); too short to be sealed is integrity.
 */
static int
store_sealed_get(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, uint64_t version, MDB_val *val)
{
	unsigned char	kbuf[STORE_VKEY_MAX];
	MDB_val		key;
	int		mrc;

	key.mv_size = store_vkey(tenant, tlen, version, kbuf);
	key.mv_data = kbuf;
	if ((mrc = mdb_get(txn, store->s_versions, &key, val)) != 0)
		return store_mdb_code(mrc, "get version");
	if (val->mv_size < CRYPTO_SEAL_OVERHEAD)
		return STORE_E_INTEGRITY;
	return STORE_OK;
}

/* Deletes the tenant's versions numbered upto or less. */
static int
store_versions_prune(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, uint64_t upto)
{
	unsigned char	 kbuf[STORE_VKEY_MAX];
	MDB_cursor	*cur;
	MDB_val		 key, val;
	int		 rc, mrc;

	if ((mrc = mdb_cursor_open(txn, store->s_versions, &cur)) != 0)
		return store_mdb_code(mrc, "open versions cursor");
	for (;;) {
		/* The oldest left is always the first at or after version 0. */
		key.mv_size = store_vkey(tenant, tlen, 0, kbuf);
		key.mv_data = kbuf;
		mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
		if (mrc == MDB_NOTFOUND) {
			rc = STORE_OK;
			break;
		}
		if (mrc != 0) {
			rc = store_mdb_code(mrc, "seek versions");
			break;
		}
		if (key.mv_size != tlen + 1 + 8 ||
		    memcmp(key.mv_data, kbuf, tlen + 1) != 0 ||
		    store_be64_get((unsigned char *)key.mv_data + tlen + 1) >
		    upto) {
			rc = STORE_OK;
			break;
		}
		if ((mrc = mdb_cursor_del(cur, 0)) != 0) {
			rc = store_mdb_code(mrc, "delete version");
			break;
		}
	}
	mdb_cursor_close(cur);
	return rc;
}

/* Appends one change with the next sequence number, given in *seq. */
static int
store_change_append(struct store *store, MDB_txn *txn, int op,
    uint64_t version, const char *tenant, size_t tlen, uint64_t *seq)
{
	unsigned char	 kbuf[8], vbuf[STORE_CHANGE_HEAD + PROTO_TENANT_MAX];
	MDB_val		 key, val;
	uint64_t	 last;
	int		 rc;

	if ((rc = store_last_seq(store, txn, &last)) != STORE_OK)
		return rc;
	if (last == UINT64_MAX)
		return STORE_E_FULL;
	store_be64_put(kbuf, last + 1);
	vbuf[0] = (unsigned char)op;
	store_be64_put(vbuf + 1, version);
	memcpy(vbuf + STORE_CHANGE_HEAD, tenant, tlen);
	key.mv_data = kbuf;
	key.mv_size = sizeof(kbuf);
	val.mv_data = vbuf;
	val.mv_size = STORE_CHANGE_HEAD + tlen;
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

/* A u64 kept in meta under name; STORE_E_NOT_FOUND when absent. */
static int
store_meta_u64(struct store *store, MDB_txn *txn, const char *name,
    uint64_t *v)
{
	MDB_val	 key, val;
	int	 mrc;

	*v = 0;
	key.mv_data = (void *)name;
	key.mv_size = strlen(name);
	if ((mrc = mdb_get(txn, store->s_meta, &key, &val)) != 0)
		return mrc == MDB_NOTFOUND ? STORE_E_NOT_FOUND :
		    store_mdb_code(mrc, "get meta");
	if (val.mv_size != 8)
		return STORE_E_INTEGRITY;
	*v = store_be64_get(val.mv_data);
	return STORE_OK;
}

static int
store_meta_u64_put(struct store *store, MDB_txn *txn, const char *name,
    uint64_t v)
{
	unsigned char	 vbuf[8];
	MDB_val		 key, val;

	store_be64_put(vbuf, v);
	key.mv_data = (void *)name;
	key.mv_size = strlen(name);
	val.mv_data = vbuf;
	val.mv_size = sizeof(vbuf);
	return store_mdb_code(mdb_put(txn, store->s_meta, &key, &val, 0),
	    "put meta");
}

/* Counts a tenant coming to life (+1) or going (-1), in txn. */
static int
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

/* A feed entry's seq and tenant (pointing into val); -1 if malformed. */
static int
store_change_tenant(const MDB_val *key, const MDB_val *val, uint64_t *seq,
    const char **tenant, size_t *tlen)
{
	if (key->mv_size != 8 || val->mv_size <= STORE_CHANGE_HEAD ||
	    val->mv_size > STORE_CHANGE_HEAD + PROTO_TENANT_MAX)
		return -1;
	*seq = store_be64_get(key->mv_data);
	*tenant = (const char *)val->mv_data + STORE_CHANGE_HEAD;
	*tlen = val->mv_size - STORE_CHANGE_HEAD;
	return 0;
}

/*
 * Moves a format 1 store to format 2 in the transaction that opens it:
 * builds feed_tenants and live_tenants with one walk of the feed and the
 * tenants, once.
 */
static int
store_index_build(struct store *store, MDB_txn *txn, char *err,
    size_t errlen)
{
	struct store_rec	 rec;
	const char		*tenant;
	unsigned char		 kbuf[8], fbuf[4];
	MDB_cursor		*cur;
	MDB_val			 key, val, ikey, ival;
	MDB_cursor_op		 op;
	uint64_t		 seq, live = 0;
	size_t			 tlen;
	int			 rc = STORE_OK, mrc;

	if ((mrc = mdb_cursor_open(txn, store->s_changes, &cur)) != 0)
		goto mdbfail;
	for (op = MDB_FIRST; (mrc = mdb_cursor_get(cur, &key, &val,
	    op)) == 0; op = MDB_NEXT) {
		if (store_change_tenant(&key, &val, &seq, &tenant,
		    &tlen) == -1) {
			rc = STORE_E_INTEGRITY;
			break;
		}
		store_be64_put(kbuf, seq);
		ikey.mv_data = (void *)tenant;
		ikey.mv_size = tlen;
		ival.mv_data = kbuf;
		ival.mv_size = sizeof(kbuf);
		if ((mrc = mdb_put(txn, store->s_feedidx, &ikey, &ival,
		    0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != STORE_OK) {
		snprintf(err, errlen, "the change feed holds a malformed "
		    "entry");
		return rc;
	}
	if (mrc != MDB_NOTFOUND)
		goto mdbfail;
	if ((mrc = mdb_cursor_open(txn, store->s_tenants, &cur)) != 0)
		goto mdbfail;
	for (op = MDB_FIRST; (mrc = mdb_cursor_get(cur, &key, &val,
	    op)) == 0; op = MDB_NEXT) {
		if (store_rec_parse(&val, &rec) == STORE_OK &&
		    !rec.sr_deleted)
			live++;
	}
	mdb_cursor_close(cur);
	if (mrc != MDB_NOTFOUND)
		goto mdbfail;
	fbuf[0] = fbuf[1] = fbuf[2] = 0;
	fbuf[3] = STORE_FORMAT;
	key.mv_data = (void *)"format";
	key.mv_size = strlen("format");
	val.mv_data = fbuf;
	val.mv_size = sizeof(fbuf);
	if ((rc = store_meta_u64_put(store, txn, STORE_META_LIVE,
	    live)) != STORE_OK ||
	    (rc = store_mdb_code(mdb_put(txn, store->s_meta, &key, &val, 0),
	    "put format")) != STORE_OK) {
		snprintf(err, errlen, "cannot index the change feed: %s",
		    store_strerror(rc));
		return rc;
	}
	return STORE_OK;
mdbfail:
	snprintf(err, errlen, "cannot index the change feed: %s",
	    mdb_strerror(mrc));
	return store_mdb_code(mrc, "index feed");
}

static int
store_keys_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* config's keys (borrowed from it), sorted, in a new array. */
static int
store_config_keys(json_t *config, const char ***keysp, size_t *np)
{
	const char	**keys;
	const char	 *k;
	json_t		 *v;
	size_t		  n = 0;

	*keysp = NULL;
	*np = 0;
	if (json_object_size(config) == 0)
		return STORE_OK;
	keys = calloc(json_object_size(config), sizeof(*keys));
	if (keys == NULL)
		return STORE_E_NOMEM;
	json_object_foreach(config, k, v)
		keys[n++] = k;
	qsort(keys, n, sizeof(*keys), store_keys_cmp);
	*keysp = keys;
	*np = n;
	return STORE_OK;
}

/*
 * Stamps a new store (when create), or checks an existing one's format and
 * key.  what names the environment in messages ("data_dir", "the backup"),
 * dir is its path.
 */
static int
store_meta_check(struct store *store, MDB_txn *txn, int create,
    const char *what, const char *dir, uint32_t *formatp, char *err,
    size_t errlen)
{
	unsigned char	 check[CRYPTO_CHECK_BYTES], fbuf[4];
	MDB_val		 key, val, ckey, cval;
	uint32_t	 format = 0;
	int		 rc, crc;

	crypto_key_check(store->s_mk, check);
	key.mv_data = (void *)"format";
	key.mv_size = strlen("format");
	ckey.mv_data = (void *)"key_check";
	ckey.mv_size = strlen("key_check");

	rc = mdb_get(txn, store->s_meta, &key, &val);
	crc = mdb_get(txn, store->s_meta, &ckey, &cval);
	if (rc == MDB_NOTFOUND && crc == MDB_NOTFOUND && create) {
		fbuf[0] = 0;
		fbuf[1] = 0;
		fbuf[2] = 0;
		fbuf[3] = STORE_FORMAT;
		val.mv_data = fbuf;
		val.mv_size = sizeof(fbuf);
		cval.mv_data = check;
		cval.mv_size = sizeof(check);
		if ((rc = mdb_put(txn, store->s_meta, &key, &val, 0)) != 0 ||
		    (rc = mdb_put(txn, store->s_meta, &ckey, &cval, 0)) != 0) {
			snprintf(err, errlen, "cannot initialise the store in "
			    "%s: %s", dir, mdb_strerror(rc));
			return store_mdb_code(rc, "stamp meta");
		}
		*formatp = STORE_FORMAT;
		return STORE_OK;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		snprintf(err, errlen, "cannot read the store in %s: %s", dir,
		    mdb_strerror(rc));
		return store_mdb_code(rc, "get format");
	}
	if (crc != 0 && crc != MDB_NOTFOUND) {
		snprintf(err, errlen, "cannot read the store in %s: %s", dir,
		    mdb_strerror(crc));
		return store_mdb_code(crc, "get key_check");
	}
	if (rc == MDB_NOTFOUND || val.mv_size != sizeof(fbuf)) {
		snprintf(err, errlen, "%s %s holds no readable store "
		    "format", what, dir);
		return STORE_E_FORMAT;
	}
	memcpy(fbuf, val.mv_data, sizeof(fbuf));
	format = (uint32_t)fbuf[0] << 24 | (uint32_t)fbuf[1] << 16 |
	    (uint32_t)fbuf[2] << 8 | fbuf[3];
	if (format < STORE_FORMAT_OLDEST || format > STORE_FORMAT) {
		snprintf(err, errlen, "%s holds store format %u; this "
		    "wfvaultd knows %u to %u", what, (unsigned)format,
		    STORE_FORMAT_OLDEST, STORE_FORMAT);
		return STORE_E_FORMAT;
	}
	*formatp = format;
	if (crc == MDB_NOTFOUND || cval.mv_size != sizeof(check)) {
		snprintf(err, errlen, "%s %s holds no master key check "
		    "value", what, dir);
		return STORE_E_FORMAT;
	}
	if (sodium_memcmp(cval.mv_data, check, sizeof(check)) != 0) {
		snprintf(err, errlen, "the master key does not match the one "
		    "this store was created with (%s)", dir);
		return STORE_E_KEY;
	}
	return STORE_OK;
}

/*
 * Reads the master key generation and whether a rotation is under way
 * (and to which key) from meta.
 */
static int
store_meta_rotation(struct store *store, MDB_txn *txn)
{
	MDB_val	 key, val;
	int	 rc;

	store->s_gen = 0;
	store->s_rotating = 0;
	key.mv_data = (void *)"key_gen";
	key.mv_size = strlen("key_gen");
	/* Stores made before rotations counted generations are at 0. */
	if ((rc = mdb_get(txn, store->s_meta, &key, &val)) == 0) {
		if (val.mv_size != 8)
			return STORE_E_FORMAT;
		store->s_gen = store_be64_get(val.mv_data);
	} else if (rc != MDB_NOTFOUND)
		return store_mdb_code(rc, "get key_gen");
	key.mv_data = (void *)"key_next_check";
	key.mv_size = strlen("key_next_check");
	if ((rc = mdb_get(txn, store->s_meta, &key, &val)) == 0) {
		if (val.mv_size != CRYPTO_CHECK_BYTES)
			return STORE_E_FORMAT;
		memcpy(store->s_next_check, val.mv_data, CRYPTO_CHECK_BYTES);
		store->s_rotating = 1;
	} else if (rc != MDB_NOTFOUND)
		return store_mdb_code(rc, "get key_next_check");
	return STORE_OK;
}

static struct store *
store_alloc(const unsigned char *mk, uint64_t keep)
{
	struct store	*store;

	if ((store = calloc(1, sizeof(*store))) == NULL)
		return NULL;
	store->s_mk = mk;
	/* Unwrapped data keys live only here, in guarded, locked memory. */
	if ((store->s_dek = crypto_key_alloc()) == NULL) {
		free(store);
		return NULL;
	}
	store->s_keep = keep > 0 ? keep : 1;
	return store;
}

static void
store_free(struct store *store)
{
	if (store->s_env != NULL)
		mdb_env_close(store->s_env);
	crypto_key_free(store->s_dek);
	crypto_key_free(store->s_mk_own);
	crypto_key_free(store->s_next_own);
	free(store);
}

/*
 * Opens the environment at path with flags (MDB_RDONLY: an existing store
 * only, nothing created or stamped), its databases, and checks its meta.
 */
/* 1 (err filled) when the file at path is shorter than its meta page says. */
static int
store_file_short(struct store *store, const char *path, const char *what,
    char *err, size_t errlen)
{
	MDB_envinfo	info;
	MDB_stat	ms;
	struct stat	st;

	if (mdb_env_info(store->s_env, &info) != 0 ||
	    mdb_env_stat(store->s_env, &ms) != 0 || stat(path, &st) == -1) {
		snprintf(err, errlen, "cannot read the size of %s", what);
		return 1;
	}
	if ((uint64_t)st.st_size < ((uint64_t)info.me_last_pgno + 1) *
	    ms.ms_psize) {
		snprintf(err, errlen, "%s is truncated (%lld bytes, its meta "
		    "page needs %llu): an incomplete copy", what,
		    (long long)st.st_size, (unsigned long long)
		    (((uint64_t)info.me_last_pgno + 1) * ms.ms_psize));
		return 1;
	}
	return 0;
}

static int
store_setup(struct store *store, const char *path, const char *what,
    unsigned flags, uint64_t map_size, uint64_t max_readers, char *err,
    size_t errlen)
{
	MDB_txn		*txn = NULL;
	unsigned	 dbflags;
	uint32_t	 format = 0;
	int		 rc, mrc, dead, rdonly = (flags & MDB_RDONLY) != 0;

	if ((mrc = mdb_env_create(&store->s_env)) != 0) {
		store->s_env = NULL;
		goto mdbfail;
	}
	if ((mrc = mdb_env_set_maxdbs(store->s_env, STORE_MAX_DBS)) != 0)
		goto mdbfail;
	if (map_size > 0) {
		if (map_size > SIZE_MAX) {
			snprintf(err, errlen, "map_size is too large for this "
			    "machine");
			return STORE_E_IO;
		}
		if ((mrc = mdb_env_set_mapsize(store->s_env,
		    (size_t)map_size)) != 0)
			goto mdbfail;
	}
	mrc = mdb_env_set_maxreaders(store->s_env,
	    max_readers > 0 && max_readers <= UINT_MAX ?
	    (unsigned)max_readers : STORE_DEFAULT_READERS);
	if (mrc != 0)
		goto mdbfail;
	/*
	 * Default, synced flags: a write is answered only once on disk, and
	 * nested transactions rule out MDB_WRITEMAP anyway.  MDB_NOTLS lets
	 * one thread hold more than one read transaction, and a backup's
	 * thread hold one of its own.
	 */
	if ((mrc = mdb_env_open(store->s_env, path, flags | MDB_NOTLS,
	    0600)) != 0)
		goto mdbfail;
	/* Free reader slots a crashed process left behind. */
	mdb_reader_check(store->s_env, &dead);
	/*
	 * A single file (a backup) cut short would map pages past its end
	 * and fault on the first read of one; its meta page says how long
	 * it must be, so that is checked before anything is read.
	 */
	if ((flags & MDB_NOSUBDIR) && store_file_short(store, path, what,
	    err, errlen))
		return STORE_E_FORMAT;

	if ((mrc = mdb_txn_begin(store->s_env, NULL, rdonly ? MDB_RDONLY : 0,
	    &txn)) != 0)
		goto mdbfail;
	dbflags = rdonly ? 0 : MDB_CREATE;
	if ((mrc = mdb_dbi_open(txn, "meta", dbflags,
	    &store->s_meta)) != 0 ||
	    (mrc = mdb_dbi_open(txn, "tenants", dbflags,
	    &store->s_tenants)) != 0 ||
	    (mrc = mdb_dbi_open(txn, "versions", dbflags,
	    &store->s_versions)) != 0 ||
	    (mrc = mdb_dbi_open(txn, "changes", dbflags,
	    &store->s_changes)) != 0 ||
	    (mrc = mdb_dbi_open(txn, "sync", dbflags,
	    &store->s_sync)) != 0) {
		if (mrc == MDB_NOTFOUND) {
			snprintf(err, errlen, "%s %s holds no wfvault store",
			    what, path);
			mdb_txn_abort(txn);
			return STORE_E_FORMAT;
		}
		goto mdbfail;
	}
	if ((rc = store_meta_check(store, txn, !rdonly, what, path, &format,
	    err, errlen)) != STORE_OK ||
	    (rc = store_meta_rotation(store, txn)) != STORE_OK) {
		if (rc != STORE_E_KEY && rc != STORE_E_FORMAT)
			snprintf(err, errlen, "cannot read the key state of "
			    "%s %s: %s", what, path, store_strerror(rc));
		mdb_txn_abort(txn);
		return rc;
	}
	/* A read-only format 1 store (an old backup) goes without. */
	if (!rdonly || format >= 2) {
		if ((mrc = mdb_dbi_open(txn, "feed_tenants", dbflags |
		    MDB_DUPSORT | MDB_DUPFIXED, &store->s_feedidx)) != 0) {
			if (mrc == MDB_NOTFOUND) {
				snprintf(err, errlen, "%s %s lacks its change "
				    "feed index", what, path);
				mdb_txn_abort(txn);
				return STORE_E_FORMAT;
			}
			goto mdbfail;
		}
		store->s_has_index = 1;
	}
	if (!rdonly && format < 2 && (rc = store_index_build(store, txn, err,
	    errlen)) != STORE_OK) {
		mdb_txn_abort(txn);
		return rc;
	}
	/* A read-only transaction too: the handles live on only if it commits. */
	mrc = mdb_txn_commit(txn);
	txn = NULL;
	if (mrc != 0)
		goto mdbfail;
	return STORE_OK;

mdbfail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rdonly)
		snprintf(err, errlen, "cannot open %s %s: %s", what, path,
		    mdb_strerror(mrc));
	else
		snprintf(err, errlen, "cannot open the store in %s: %s", path,
		    mdb_strerror(mrc));
	return store_mdb_code(mrc, "open");
}

int
store_open(struct store **sp, const struct store_params *params,
    const unsigned char *mk, char *err, size_t errlen)
{
	struct store	*store;
	const char	*dir = params->sp_dir;
	int		 rc;

	*sp = NULL;
	if ((store = store_alloc(mk, params->sp_keep_versions)) == NULL) {
		snprintf(err, errlen, "cannot allocate guarded memory for "
		    "data keys");
		return STORE_E_NOMEM;
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir,
		    strerror(errno));
		store_free(store);
		return STORE_E_IO;
	}
	rc = store_setup(store, dir, "data_dir",
	    params->sp_nolock ? MDB_NOLOCK : 0, params->sp_map_size,
	    params->sp_max_readers, err, errlen);
	if (rc != STORE_OK) {
		store_free(store);
		return rc;
	}
	*sp = store;
	return STORE_OK;
}

int
store_open_file(struct store **sp, const char *path,
    const unsigned char *mk, char *err, size_t errlen)
{
	struct store	*store;
	int		 rc;

	*sp = NULL;
	if ((store = store_alloc(mk, 1)) == NULL) {
		snprintf(err, errlen, "cannot allocate guarded memory for "
		    "data keys");
		return STORE_E_NOMEM;
	}
	/*
	 * Nobody writes a backup, so no lock file is made next to it (its
	 * directory may well be read-only).
	 */
	rc = store_setup(store, path, "the backup",
	    MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0, 0, err, errlen);
	if (rc != STORE_OK) {
		store_free(store);
		return rc;
	}
	*sp = store;
	return STORE_OK;
}

void
store_close(struct store *store)
{
	if (store == NULL)
		return;
	store_free(store);
}

int
store_txn_begin(struct store *store, MDB_txn *parent, int write,
    MDB_txn **txn)
{
	int	 rc;

	*txn = NULL;
	/* LMDB nests write transactions only. */
	if (parent != NULL && !write)
		return STORE_E_IO;
	rc = mdb_txn_begin(store->s_env, parent, write ? 0 : MDB_RDONLY, txn);
	if (rc != 0) {
		*txn = NULL;
		return store_mdb_code(rc, "begin transaction");
	}
	return STORE_OK;
}

int
store_txn_commit(MDB_txn *txn)
{
	return store_mdb_code(mdb_txn_commit(txn), "commit");
}

void
store_txn_abort(MDB_txn *txn)
{
	if (txn != NULL)
		mdb_txn_abort(txn);
}

int
store_tenant_get(struct store *store, MDB_txn *txn, const char *tenant,
    struct store_tenant *st)
{
	struct store_rec	 rec;
	size_t			 tlen;
	int			 rc;

	st->st_fields = NULL;
	if (store_name_len(tenant, &tlen) == -1)
		return STORE_E_NOT_FOUND;
	if ((rc = store_rec_get(store, txn, tenant, tlen, &rec)) != STORE_OK)
		return rc;
	if ((st->st_fields = store_fields_json(&rec)) == NULL)
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
	if (store_name_len(tenant, &tlen) == -1)
		return STORE_E_NOT_FOUND;
	if ((rc = store_rec_get(store, txn, tenant, tlen, &rec)) != STORE_OK)
		return rc;
	if (rec.sr_deleted)
		return STORE_E_NOT_FOUND;
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
	unsigned char		 kbuf[STORE_VKEY_MAX];
	const char		**keys = NULL;
	unsigned char		*sealed = NULL;
	char			*plain = NULL;
	size_t			 tlen, plen = 0, nkeys = 0;
	uint64_t		 version, created, now = store_now();
	MDB_val			 key, val;
	int			 rc, rekeying = 0;

	if (store_name_len(tenant, &tlen) == -1 || !json_is_object(config))
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

	key.mv_size = store_vkey(tenant, tlen, version, kbuf);
	key.mv_data = kbuf;
	val.mv_data = sealed;
	val.mv_size = plen + CRYPTO_SEAL_OVERHEAD;
	if ((rc = mdb_put(txn, store->s_versions, &key, &val, 0)) != 0) {
		rc = store_mdb_code(rc, "put version");
		goto done;
	}
	if (version > store->s_keep && (rc = store_versions_prune(store, txn,
	    tenant, tlen, version - store->s_keep)) != STORE_OK)
		goto done;

	if ((rc = store_config_keys(config, &keys, &nkeys)) != STORE_OK)
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

	if (store_name_len(tenant, &tlen) == -1)
		return STORE_E_NOT_FOUND;
	if ((rc = store_rec_get(store, txn, tenant, tlen, &rec)) != STORE_OK)
		return rc;
	if (rec.sr_deleted)
		return STORE_E_NOT_FOUND;
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
	if ((rc = store_change_append(store, txn, STORE_OP_DELETE,
	    nrec.sr_version, tenant, tlen, seq)) != STORE_OK)
		return rc;
	if (new_version != NULL)
		*new_version = nrec.sr_version;
	return STORE_OK;
}

int
store_list(struct store *store, MDB_txn *txn, const char *prefix,
    const char *after, int (*cb)(void *, const struct store_tenant *),
    void *arg)
{
	struct store_tenant	 st = STORE_TENANT_INIT;
	struct store_rec	 rec;
	MDB_cursor		*cur;
	MDB_val			 key, val;
	const char		*start;
	size_t			 plen = 0, alen = 0;
	MDB_cursor_op		 op;
	int			 rc = STORE_OK, mrc, r;

	if (prefix != NULL && *prefix == '\0')
		prefix = NULL;
	if (after != NULL && *after == '\0')
		after = NULL;
	if (prefix != NULL)
		plen = strlen(prefix);
	if (after != NULL)
		alen = strlen(after);
	/* Start at the later of the two bounds. */
	start = prefix;
	if (after != NULL && (prefix == NULL || strcmp(after, prefix) > 0))
		start = after;

	if ((mrc = mdb_cursor_open(txn, store->s_tenants, &cur)) != 0)
		return store_mdb_code(mrc, "open tenants cursor");
	if (start != NULL) {
		key.mv_data = (void *)start;
		key.mv_size = strlen(start);
		op = MDB_SET_RANGE;
	} else
		op = MDB_FIRST;
	for (; (mrc = mdb_cursor_get(cur, &key, &val, op)) == 0;
	    op = MDB_NEXT) {
		if (prefix != NULL && (key.mv_size < plen ||
		    memcmp(key.mv_data, prefix, plen) != 0))
			break;
		if (after != NULL && key.mv_size == alen &&
		    memcmp(key.mv_data, after, alen) == 0)
			continue;
		if (store_key_name(&key, st.st_tenant) == -1 ||
		    store_rec_parse(&val, &rec) != STORE_OK) {
			rc = STORE_E_INTEGRITY;
			break;
		}
		if (rec.sr_deleted)
			continue;
		st.st_version = rec.sr_version;
		st.st_created = rec.sr_created;
		st.st_updated = rec.sr_updated;
		st.st_deleted = 0;
		if ((st.st_fields = store_fields_json(&rec)) == NULL) {
			rc = STORE_E_NOMEM;
			break;
		}
		r = cb(arg, &st);
		store_tenant_release(&st);
		if (r < 0) {
			rc = r;
			break;
		}
		if (r > 0)
			break;
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND)
		rc = store_mdb_code(mrc, "walk tenants");
	mdb_cursor_close(cur);
	return rc;
}

int
store_changes(struct store *store, MDB_txn *txn, uint64_t since,
    size_t limit, int (*cb)(void *, const struct store_change *), void *arg)
{
	struct store_change	 sc;
	char			 tenant[PROTO_TENANT_MAX + 1];
	unsigned char		 kbuf[8];
	const unsigned char	*p;
	MDB_cursor		*cur;
	MDB_val			 key, val;
	MDB_cursor_op		 op = MDB_SET_RANGE;
	size_t			 n = 0, tlen;
	int			 rc = STORE_OK, mrc, r;

	if (since == UINT64_MAX)
		return STORE_OK;
	if ((mrc = mdb_cursor_open(txn, store->s_changes, &cur)) != 0)
		return store_mdb_code(mrc, "open changes cursor");
	store_be64_put(kbuf, since + 1);
	key.mv_data = kbuf;
	key.mv_size = sizeof(kbuf);
	for (; (limit == 0 || n < limit) &&
	    (mrc = mdb_cursor_get(cur, &key, &val, op)) == 0; op = MDB_NEXT) {
		p = val.mv_data;
		if (key.mv_size != 8 || val.mv_size <= STORE_CHANGE_HEAD ||
		    val.mv_size > STORE_CHANGE_HEAD + PROTO_TENANT_MAX ||
		    (p[0] != STORE_OP_PUT && p[0] != STORE_OP_DELETE)) {
			rc = STORE_E_INTEGRITY;
			break;
		}
		tlen = val.mv_size - STORE_CHANGE_HEAD;
		memcpy(tenant, p + STORE_CHANGE_HEAD, tlen);
		tenant[tlen] = '\0';
		sc.sc_seq = store_be64_get(key.mv_data);
		sc.sc_tenant = tenant;
		sc.sc_version = store_be64_get(p + 1);
		sc.sc_op = p[0];
		n++;
		if ((r = cb(arg, &sc)) < 0) {
			rc = r;
			break;
		}
		if (r > 0)
			break;
	}
	if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = store_mdb_code(mrc, "walk changes");
	mdb_cursor_close(cur);
	return rc;
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
		*seq = store_be64_get(key.mv_data);
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

	if (store_name_len(target, &len) == -1)
		return STORE_E_IO;
	store_be64_put(vbuf, seq);
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
	if (store_name_len(target, &len) == -1)
		return STORE_E_NOT_FOUND;
	key.mv_data = (void *)target;
	key.mv_size = len;
	if ((mrc = mdb_get(txn, store->s_sync, &key, &val)) == MDB_NOTFOUND)
		return STORE_E_NOT_FOUND;
	if (mrc != 0)
		return store_mdb_code(mrc, "get sync");
	if (val.mv_size != 8)
		return STORE_E_INTEGRITY;
	*seq = store_be64_get(val.mv_data);
	return STORE_OK;
}

int
store_sync_list(struct store *store, MDB_txn *txn,
    int (*cb)(void *, const char *, uint64_t), void *arg)
{
	char		 target[PROTO_TENANT_MAX + 1];
	MDB_cursor	*cur;
	MDB_val		 key, val;
	MDB_cursor_op	 op = MDB_FIRST;
	int		 rc = STORE_OK, mrc, r;

	if ((mrc = mdb_cursor_open(txn, store->s_sync, &cur)) != 0)
		return store_mdb_code(mrc, "open sync cursor");
	for (; (mrc = mdb_cursor_get(cur, &key, &val, op)) == 0;
	    op = MDB_NEXT) {
		if (store_key_name(&key, target) == -1 || val.mv_size != 8) {
			rc = STORE_E_INTEGRITY;
			break;
		}
		if ((r = cb(arg, target, store_be64_get(val.mv_data))) < 0) {
			rc = r;
			break;
		}
		if (r > 0)
			break;
	}
	if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = store_mdb_code(mrc, "walk sync");
	mdb_cursor_close(cur);
	return rc;
}

struct store_trim_ctx {
	uint64_t	tc_min;
	int		tc_any;
};

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

int
store_feed_trim(struct store *store, MDB_txn *txn, uint64_t retain,
    size_t max, size_t *count)
{
	const char	*tenant;
	unsigned char	 kbuf[8];
	MDB_cursor	*cur;
	MDB_val		 key, val, ikey, ival;
	uint64_t	 upto, trimmed, seq, done = 0;
	size_t		 tlen;
	int		 rc, mrc;

	*count = 0;
	if ((rc = store_feed_trim_point(store, txn, retain, &upto)) !=
	    STORE_OK)
		return rc;
	if ((rc = store_meta_u64(store, txn, STORE_META_TRIMMED,
	    &trimmed)) != STORE_OK && rc != STORE_E_NOT_FOUND)
		return rc;
	rc = STORE_OK;
	if ((mrc = mdb_cursor_open(txn, store->s_changes, &cur)) != 0)
		return store_mdb_code(mrc, "open changes cursor");
	/* From the oldest entry on, so each call does at most max deletes. */
	while (*count < max &&
	    (mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST)) == 0) {
		if (store_change_tenant(&key, &val, &seq, &tenant,
		    &tlen) == -1) {
			rc = STORE_E_INTEGRITY;
			break;
		}
		if (seq > upto)
			break;
		store_be64_put(kbuf, seq);
		ikey.mv_data = (void *)tenant;
		ikey.mv_size = tlen;
		ival.mv_data = kbuf;
		ival.mv_size = sizeof(kbuf);
		if ((mrc = mdb_del(txn, store->s_feedidx, &ikey, &ival)) != 0 &&
		    mrc != MDB_NOTFOUND) {
			rc = store_mdb_code(mrc, "delete feed index");
			break;
		}
		if ((mrc = mdb_cursor_del(cur, 0)) != 0) {
			rc = store_mdb_code(mrc, "trim change");
			break;
		}
		done = seq;
		(*count)++;
	}
	if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = store_mdb_code(mrc, "walk changes");
	mdb_cursor_close(cur);
	if (rc == STORE_OK && done > trimmed)
		rc = store_meta_u64_put(store, txn, STORE_META_TRIMMED, done);
	return rc;
}

int
store_feed_trimmed(struct store *store, MDB_txn *txn, uint64_t *seq)
{
	int	 rc;

	rc = store_meta_u64(store, txn, STORE_META_TRIMMED, seq);
	return rc == STORE_E_NOT_FOUND ? STORE_OK : rc;
}

int
store_stat(struct store *store, MDB_txn *txn, struct store_stat *ss)
{
	struct store_rec	 rec;
	MDB_envinfo		 info;
	MDB_stat		 ms, es;
	MDB_cursor		*cur;
	MDB_val			 key, val;
	MDB_cursor_op		 op = MDB_FIRST;
	int			 rc;

	memset(ss, 0, sizeof(*ss));
	/* The counter; a read-only store from before it is counted. */
	rc = store_meta_u64(store, txn, STORE_META_LIVE, &ss->ss_tenants);
	if (rc != STORE_OK && rc != STORE_E_NOT_FOUND)
		return rc;
	if (rc == STORE_E_NOT_FOUND) {
		if ((rc = mdb_cursor_open(txn, store->s_tenants, &cur)) != 0)
			return store_mdb_code(rc, "open tenants cursor");
		for (; (rc = mdb_cursor_get(cur, &key, &val, op)) == 0;
		    op = MDB_NEXT) {
			if (store_rec_parse(&val, &rec) == STORE_OK &&
			    !rec.sr_deleted)
				ss->ss_tenants++;
		}
		mdb_cursor_close(cur);
		if (rc != MDB_NOTFOUND)
			return store_mdb_code(rc, "walk tenants");
	}

	if ((rc = mdb_stat(txn, store->s_versions, &ms)) != 0)
		return store_mdb_code(rc, "stat versions");
	ss->ss_versions = ms.ms_entries;
	if ((rc = mdb_stat(txn, store->s_changes, &ms)) != 0)
		return store_mdb_code(rc, "stat changes");
	ss->ss_changes = ms.ms_entries;
	if ((rc = store_last_seq(store, txn, &ss->ss_last_seq)) != STORE_OK ||
	    (rc = store_feed_trimmed(store, txn, &ss->ss_trimmed_seq)) !=
	    STORE_OK)
		return rc;
	if ((rc = mdb_env_info(store->s_env, &info)) != 0)
		return store_mdb_code(rc, "env info");
	if ((rc = mdb_env_stat(store->s_env, &es)) != 0)
		return store_mdb_code(rc, "env stat");
	ss->ss_map_size = info.me_mapsize;
	ss->ss_used_bytes = ((uint64_t)info.me_last_pgno + 1) * es.ms_psize;
	return STORE_OK;
}

int
store_copy_fd(struct store *store, int fd)
{
	/* Its own read transaction: writers go on, the copy is one snapshot. */
	return mdb_env_copyfd2(store->s_env, fd, MDB_CP_COMPACT);
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
	MDB_val		 key, val;

	crypto_key_check(newmk, check);
	if (store->s_rotating)
		return sodium_memcmp(check, store->s_next_check,
		    sizeof(check)) == 0 ? STORE_OK : STORE_E_KEY;
	key.mv_data = (void *)"key_next_check";
	key.mv_size = strlen("key_next_check");
	val.mv_data = check;
	val.mv_size = sizeof(check);
	return store_mdb_code(mdb_put(txn, store->s_meta, &key, &val, 0),
	    "put key_next_check");
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
	struct store_rec	 rec;
	unsigned char		 check[CRYPTO_CHECK_BYTES], gbuf[8];
	unsigned char		 wrapped[CRYPTO_WRAPPED_BYTES];
	char			 tenant[PROTO_TENANT_MAX + 1];
	unsigned char		*dek = store->s_dek, *buf = NULL;
	unsigned		 newgen;
	size_t			 cap = 0, seen = 0;
	MDB_cursor		*cur;
	MDB_val			 key, val, nkey, nval;
	MDB_cursor_op		 op;
	int			 rc = STORE_OK, mrc;

	*finished = 0;
	newgen = ((store->s_gen + 1) & 1) ? STORE_REC_KEYGEN : 0;
	if ((mrc = mdb_cursor_open(txn, store->s_tenants, &cur)) != 0)
		return store_mdb_code(mrc, "open tenants cursor");
	if (pos[0] != '\0') {
		key.mv_data = pos;
		key.mv_size = strlen(pos);
		op = MDB_SET_RANGE;
	} else
		op = MDB_FIRST;
	for (; (mrc = mdb_cursor_get(cur, &key, &val, op)) == 0;
	    op = MDB_NEXT) {
		if (store_key_name(&key, tenant) == -1 ||
		    store_rec_parse(&val, &rec) != STORE_OK) {
			rc = STORE_E_INTEGRITY;
			break;
		}
		if (seen++ == limit) {
			/* The next batch starts here. */
			memcpy(pos, tenant, key.mv_size + 1);
			break;
		}
		if (rec.sr_deleted)
			continue;
		(*count)++;
		if ((rec.sr_keygen ? STORE_REC_KEYGEN : 0) == newgen)
			continue;
		if (crypto_dek_unwrap(store->s_mk, tenant, rec.sr_wrapped,
		    CRYPTO_WRAPPED_BYTES, dek) != CRYPTO_OK) {
			log_warnx("store: the data key of tenant '%s' does "
			    "not open with the master key", tenant);
			rc = STORE_E_INTEGRITY;
			break;
		}
		if (crypto_dek_wrap(newmk, tenant, dek, wrapped) !=
		    CRYPTO_OK) {
			rc = STORE_E_IO;
			break;
		}
		if (val.mv_size > cap) {
			free(buf);
			cap = val.mv_size;
			if ((buf = malloc(cap)) == NULL) {
				rc = STORE_E_NOMEM;
				break;
			}
		}
		memcpy(buf, val.mv_data, val.mv_size);
		buf[1] = (buf[1] & ~STORE_REC_KEYGEN) | newgen;
		memcpy(buf + STORE_REC_HEAD, wrapped, sizeof(wrapped));
		/* A tenant key rotation's new key moves along. */
		if (rec.sr_pending != NULL && (crypto_dek_unwrap(store->s_mk,
		    tenant, rec.sr_pending, CRYPTO_WRAPPED_BYTES, dek) !=
		    CRYPTO_OK || crypto_dek_wrap(newmk, tenant, dek,
		    buf + STORE_REC_HEAD + CRYPTO_WRAPPED_BYTES) != CRYPTO_OK)) {
			log_warnx("store: the new data key of tenant '%s' "
			    "does not open with the master key", tenant);
			rc = STORE_E_INTEGRITY;
			break;
		}
		nkey.mv_data = tenant;
		nkey.mv_size = key.mv_size;
		nval.mv_data = buf;
		nval.mv_size = val.mv_size;
		/* Same size, in place: the walk goes on from here. */
		if ((mrc = mdb_cursor_put(cur, &nkey, &nval,
		    MDB_CURRENT)) != 0) {
			rc = store_mdb_code(mrc, "rewrap tenant");
			break;
		}
	}
	if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = store_mdb_code(mrc, "walk tenants");
	mdb_cursor_close(cur);
	sodium_memzero(dek, CRYPTO_KEY_BYTES);
	free(buf);
	if (rc != STORE_OK || mrc == 0)
		return rc;

	/* Past the last record: the rotation is complete with this txn. */
	crypto_key_check(newmk, check);
	key.mv_data = (void *)"key_check";
	key.mv_size = strlen("key_check");
	val.mv_data = check;
	val.mv_size = sizeof(check);
	if ((mrc = mdb_put(txn, store->s_meta, &key, &val, 0)) != 0)
		return store_mdb_code(mrc, "put key_check");
	store_be64_put(gbuf, store->s_gen + 1);
	key.mv_data = (void *)"key_gen";
	key.mv_size = strlen("key_gen");
	val.mv_data = gbuf;
	val.mv_size = sizeof(gbuf);
	if ((mrc = mdb_put(txn, store->s_meta, &key, &val, 0)) != 0)
		return store_mdb_code(mrc, "put key_gen");
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

/* The numbers of the tenant's stored versions, ascending, in a new array. */
static int
store_versions_list(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, uint64_t **versp, size_t *np)
{
	unsigned char	 kbuf[STORE_VKEY_MAX];
	uint64_t	*vers = NULL, *nv;
	size_t		 n = 0, cap = 0;
	MDB_cursor	*cur;
	MDB_val		 key, val;
	MDB_cursor_op	 op = MDB_SET_RANGE;
	int		 rc = STORE_OK, mrc;

	*versp = NULL;
	*np = 0;
	if ((mrc = mdb_cursor_open(txn, store->s_versions, &cur)) != 0)
		return store_mdb_code(mrc, "open versions cursor");
	key.mv_size = store_vkey(tenant, tlen, 0, kbuf);
	key.mv_data = kbuf;
	for (; (mrc = mdb_cursor_get(cur, &key, &val, op)) == 0;
	    op = MDB_NEXT) {
		if (key.mv_size != tlen + 1 + 8 ||
		    memcmp(key.mv_data, tenant, tlen) != 0 ||
		    ((unsigned char *)key.mv_data)[tlen] != '\0')
			break;
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if ((nv = reallocarray(vers, cap,
			    sizeof(*vers))) == NULL) {
				rc = STORE_E_NOMEM;
				break;
			}
			vers = nv;
		}
		vers[n++] = store_be64_get((unsigned char *)key.mv_data +
		    tlen + 1);
	}
	if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = store_mdb_code(mrc, "walk versions");
	mdb_cursor_close(cur);
	if (rc != STORE_OK) {
		free(vers);
		return rc;
	}
	*versp = vers;
	*np = n;
	return STORE_OK;
}

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
	unsigned char		*buf, *p;
	MDB_val			 key, val;
	size_t			 len;
	int			 rc;

	key.mv_data = (void *)tenant;
	key.mv_size = tlen;
	if ((rc = mdb_get(txn, store->s_tenants, &key, &val)) != 0)
		return store_mdb_code(rc, "get tenant");
	if ((rc = store_rec_parse(&val, &rec)) != STORE_OK)
		return rc;
	if (rec.sr_deleted)
		return STORE_E_NOT_FOUND;
	/* val points into a page the put below may replace. */
	len = STORE_REC_HEAD + CRYPTO_WRAPPED_BYTES + (pending != NULL ?
	    CRYPTO_WRAPPED_BYTES : 0) + rec.sr_fieldslen;
	if ((buf = malloc(len)) == NULL)
		return STORE_E_NOMEM;
	memcpy(buf, val.mv_data, STORE_REC_HEAD);
	buf[1] = (buf[1] & ~(STORE_REC_KEYGEN | STORE_REC_REKEY)) |
	    store_wrap_gen(store) | (pending != NULL ? STORE_REC_REKEY : 0);
	p = buf + STORE_REC_HEAD;
	memcpy(p, wrapped, CRYPTO_WRAPPED_BYTES);
	p += CRYPTO_WRAPPED_BYTES;
	if (pending != NULL) {
		memcpy(p, pending, CRYPTO_WRAPPED_BYTES);
		p += CRYPTO_WRAPPED_BYTES;
	}
	memcpy(p, rec.sr_fields, rec.sr_fieldslen);
	val.mv_data = buf;
	val.mv_size = len;
	rc = store_mdb_code(mdb_put(txn, store->s_tenants, &key, &val, 0),
	    "put tenant");
	free(buf);
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
	if (store_name_len(tenant, &tlen) == -1)
		return STORE_E_NOT_FOUND;
	if ((rc = store_rec_get(store, txn, tenant, tlen, &rec)) != STORE_OK)
		return rc;
	if (rec.sr_deleted)
		return STORE_E_NOT_FOUND;
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
	unsigned char	 kbuf[STORE_VKEY_MAX];
	unsigned char	*plain = NULL, *sealed = NULL;
	size_t		 slen, plen;
	MDB_val		 key, val;
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
	key.mv_size = store_vkey(rk->rk_tenant, rk->rk_tlen, version, kbuf);
	key.mv_data = kbuf;
	val.mv_data = sealed;
	val.mv_size = plen + CRYPTO_SEAL_OVERHEAD;
	if ((rc = mdb_put(txn, store->s_versions, &key, &val, 0)) != 0) {
		rc = store_mdb_code(rc, "put version");
		goto done;
	}
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

/*
 * Deletes every change of tenant whose seq is below before, found through
 * feed_tenants: the work grows with the tenant's own changes only.
 */
static int
store_changes_forget(struct store *store, MDB_txn *txn, const char *tenant,
    size_t tlen, uint64_t before)
{
	MDB_cursor	*cur;
	MDB_val		 key, val, ckey;
	MDB_cursor_op	 op = MDB_SET_KEY;
	unsigned char	 kbuf[8];
	uint64_t	 seq;
	int		 rc = STORE_OK, mrc;

	if ((mrc = mdb_cursor_open(txn, store->s_feedidx, &cur)) != 0)
		return store_mdb_code(mrc, "open feed index cursor");
	key.mv_data = (void *)tenant;
	key.mv_size = tlen;
	/* Always the first of its seqs left: each one is deleted in turn. */
	while ((mrc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
		if (val.mv_size != 8) {
			rc = STORE_E_INTEGRITY;
			break;
		}
		if ((seq = store_be64_get(val.mv_data)) >= before)
			break;
		store_be64_put(kbuf, seq);
		ckey.mv_data = kbuf;
		ckey.mv_size = sizeof(kbuf);
		if ((mrc = mdb_del(txn, store->s_changes, &ckey, NULL)) != 0 &&
		    mrc != MDB_NOTFOUND) {
			rc = store_mdb_code(mrc, "delete change");
			break;
		}
		if ((mrc = mdb_cursor_del(cur, 0)) != 0) {
			rc = store_mdb_code(mrc, "delete feed index");
			break;
		}
		key.mv_data = (void *)tenant;
		key.mv_size = tlen;
		op = MDB_SET_KEY;
	}
	if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = store_mdb_code(mrc, "walk feed index");
	mdb_cursor_close(cur);
	return rc;
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

	if (store_name_len(tenant, &tlen) == -1)
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

/* 1 if the record names exactly config's keys, in byte order. */
static int
store_fields_match(const struct store_rec *rec, json_t *config)
{
	const char	**keys = NULL;
	size_t		  nkeys, i, off = 0, n;
	int		  ok = 0;

	if (store_config_keys(config, &keys, &nkeys) != STORE_OK)
		return 0;
	for (i = 0; i < nkeys; i++) {
		if (off >= rec->sr_fieldslen)
			goto done;
		n = strlen(rec->sr_fields + off);
		if (strcmp(rec->sr_fields + off, keys[i]) != 0)
			goto done;
		off += n + 1;
	}
	ok = off == rec->sr_fieldslen;
done:
	free(keys);
	return ok;
}

/* One tenant's record and versions; name is its id, val its record. */
static int
store_verify_tenant(struct store *store, MDB_txn *txn, const char *name,
    size_t tlen, const MDB_val *val, struct store_verify *sv, char *err,
    size_t errlen)
{
	struct store_rec	 rec;
	unsigned char		 kbuf[STORE_VKEY_MAX];
	unsigned char		*dek = store->s_dek, *plain = NULL;
	uint64_t		*vers = NULL;
	size_t			 n = 0, i, plen, pcap = 0;
	json_error_t		 jerr;
	json_t			*obj;
	MDB_val			 key, vval;
	int			 rc, mrc, current = 0;

	if (proto_tenant_valid(name, err, errlen) == -1 ||
	    store_rec_parse(val, &rec) != STORE_OK) {
		snprintf(err, errlen, "the record of tenant '%s' is malformed",
		    name);
		return STORE_E_INTEGRITY;
	}
	/* A deleted tenant keeps no versions; store_verify_orphans checks. */
	if (rec.sr_deleted)
		return STORE_OK;
	if (store_dek_open(store, name, &rec, dek) != STORE_OK) {
		snprintf(err, errlen, "the data key of tenant '%s' does not "
		    "open with this master key (tampered with, or another "
		    "key)", name);
		rc = STORE_E_INTEGRITY;
		goto done;
	}
	if ((rc = store_versions_list(store, txn, name, tlen, &vers,
	    &n)) != STORE_OK) {
		snprintf(err, errlen, "cannot read the versions of tenant "
		    "'%s': %s", name, store_strerror(rc));
		goto done;
	}
	for (i = 0; i < n; i++) {
		if (vers[i] == 0 || vers[i] > rec.sr_version) {
			snprintf(err, errlen, "tenant '%s' holds version %llu, "
			    "beyond its current version %llu", name,
			    (unsigned long long)vers[i],
			    (unsigned long long)rec.sr_version);
			rc = STORE_E_INTEGRITY;
			goto done;
		}
		if (vers[i] == rec.sr_version)
			current = 1;
		key.mv_size = store_vkey(name, tlen, vers[i], kbuf);
		key.mv_data = kbuf;
		if ((mrc = mdb_get(txn, store->s_versions, &key,
		    &vval)) != 0) {
			rc = store_mdb_code(mrc, "get version");
			snprintf(err, errlen, "cannot read version %llu of "
			    "tenant '%s': %s", (unsigned long long)vers[i],
			    name, mdb_strerror(mrc));
			goto done;
		}
		if (vval.mv_size < CRYPTO_SEAL_OVERHEAD)
			goto bad;
		if (vval.mv_size - CRYPTO_SEAL_OVERHEAD + 1 > pcap) {
			if (plain != NULL) {
				sodium_memzero(plain, pcap);
				free(plain);
			}
			pcap = vval.mv_size - CRYPTO_SEAL_OVERHEAD + 1;
			if ((plain = malloc(pcap)) == NULL) {
				snprintf(err, errlen, "out of memory");
				rc = STORE_E_NOMEM;
				goto done;
			}
		}
		if (store_version_open(store, name, &rec, vers[i], &vval,
		    plain, &plen) != STORE_OK)
			goto bad;
		obj = json_loadb((const char *)plain, plen,
		    JSON_REJECT_DUPLICATES, &jerr);
		sodium_memzero(&jerr, sizeof(jerr));
		sodium_memzero(plain, plen);
		if (obj == NULL || !json_is_object(obj)) {
			json_decref(obj);
			goto bad;
		}
		/*
		 * The names in the record are not sealed: they must be the
		 * current config's, or fields and get would disagree.
		 */
		if (vers[i] == rec.sr_version &&
		    !store_fields_match(&rec, obj)) {
			json_decref(obj);
			snprintf(err, errlen, "the field names in the record "
			    "of tenant '%s' are not those of its current "
			    "config (tampered with)", name);
			rc = STORE_E_INTEGRITY;
			goto done;
		}
		json_decref(obj);
		sv->sv_versions++;
	}
	if (!current) {
		snprintf(err, errlen, "tenant '%s' lacks its current version "
		    "%llu", name, (unsigned long long)rec.sr_version);
		rc = STORE_E_INTEGRITY;
		goto done;
	}
	sv->sv_tenants++;
	rc = STORE_OK;
	goto done;
bad:
	snprintf(err, errlen, "version %llu of tenant '%s' does not open "
	    "(tampered with, or another key)", (unsigned long long)vers[i],
	    name);
	rc = STORE_E_INTEGRITY;
done:
	sodium_memzero(dek, CRYPTO_KEY_BYTES);
	if (plain != NULL) {
		sodium_memzero(plain, pcap);
		free(plain);
	}
	free(vers);
	return rc;
}

/* Names the first version whose tenant is missing or deleted. */
static int
store_verify_orphans(struct store *store, MDB_txn *txn,
    struct store_verify *sv, char *err, size_t errlen)
{
	struct store_rec	 rec;
	const char		*nul;
	MDB_cursor		*cur;
	MDB_val			 key, val;
	MDB_cursor_op		 op = MDB_FIRST;
	size_t			 tlen;
	int			 rc = STORE_OK, mrc;

	if ((mrc = mdb_cursor_open(txn, store->s_versions, &cur)) != 0)
		return store_mdb_code(mrc, "open versions cursor");
	for (; (mrc = mdb_cursor_get(cur, &key, &val, op)) == 0;
	    op = MDB_NEXT) {
		nul = memchr(key.mv_data, '\0', key.mv_size);
		tlen = nul == NULL ? 0 : (size_t)(nul - (char *)key.mv_data);
		if (tlen == 0 || tlen > PROTO_TENANT_MAX ||
		    key.mv_size != tlen + 1 + 8) {
			snprintf(err, errlen, "the versions table holds a "
			    "malformed key");
			rc = STORE_E_INTEGRITY;
			break;
		}
		memcpy(sv->sv_tenant, key.mv_data, tlen);
		sv->sv_tenant[tlen] = '\0';
		rc = store_rec_get(store, txn, sv->sv_tenant, tlen, &rec);
		if (rc == STORE_OK && !rec.sr_deleted)
			continue;
		if (rc == STORE_OK || rc == STORE_E_NOT_FOUND) {
			snprintf(err, errlen, "a version is stored for tenant "
			    "'%s', which does not exist", sv->sv_tenant);
			rc = STORE_E_INTEGRITY;
		} else
			snprintf(err, errlen, "cannot read the record of "
			    "tenant '%s': %s", sv->sv_tenant,
			    store_strerror(rc));
		break;
	}
	if (rc == STORE_OK && mrc != MDB_NOTFOUND)
		rc = store_mdb_code(mrc, "walk versions");
	if (rc == STORE_OK) {
		/* Every version belongs to a live tenant after all. */
		sv->sv_tenant[0] = '\0';
	}
	mdb_cursor_close(cur);
	return rc;
}

/*
 * The live-tenant counter and the feed index agree with what they count
 * (a store from before them has neither, and is not checked for them).
 */
static int
store_verify_counts(struct store *store, MDB_txn *txn,
    struct store_verify *sv, char *err, size_t errlen)
{
	MDB_stat	 fs, is;
	uint64_t	 live;
	int		 rc, mrc;

	rc = store_meta_u64(store, txn, STORE_META_LIVE, &live);
	if (rc == STORE_OK && live != sv->sv_tenants) {
		snprintf(err, errlen, "the store counts %llu live tenants "
		    "but holds %llu", (unsigned long long)live,
		    (unsigned long long)sv->sv_tenants);
		return STORE_E_INTEGRITY;
	}
	if (rc != STORE_OK && rc != STORE_E_NOT_FOUND) {
		snprintf(err, errlen, "the live tenant count is malformed");
		return rc;
	}
	if (!store->s_has_index)
		return STORE_OK;
	if ((mrc = mdb_stat(txn, store->s_changes, &fs)) != 0 ||
	    (mrc = mdb_stat(txn, store->s_feedidx, &is)) != 0) {
		snprintf(err, errlen, "cannot read the change feed: %s",
		    mdb_strerror(mrc));
		return store_mdb_code(mrc, "stat feed");
	}
	if (fs.ms_entries != is.ms_entries) {
		snprintf(err, errlen, "the change feed holds %zu entries but "
		    "its tenant index %zu", fs.ms_entries, is.ms_entries);
		return STORE_E_INTEGRITY;
	}
	return STORE_OK;
}

static int
store_verify_nop(void *arg, const struct store_change *sc)
{
	return 0;
}

static int
store_verify_nop_sync(void *arg, const char *target, uint64_t seq)
{
	return 0;
}

int
store_verify(struct store *store, MDB_txn *txn, struct store_verify *sv,
    char *err, size_t errlen)
{
	char		 name[PROTO_TENANT_MAX + 1];
	MDB_cursor	*cur;
	MDB_val		 key, val;
	MDB_stat	 ms;
	MDB_cursor_op	 op = MDB_FIRST;
	int		 rc = STORE_OK, mrc;

	memset(sv, 0, sizeof(*sv));
	name[0] = '\0';
	if ((mrc = mdb_cursor_open(txn, store->s_tenants, &cur)) != 0) {
		snprintf(err, errlen, "cannot read the tenants: %s",
		    mdb_strerror(mrc));
		return store_mdb_code(mrc, "open tenants cursor");
	}
	for (; (mrc = mdb_cursor_get(cur, &key, &val, op)) == 0;
	    op = MDB_NEXT) {
		if (store_key_name(&key, name) == -1) {
			snprintf(err, errlen, "the tenants table holds a "
			    "malformed tenant id");
			rc = STORE_E_INTEGRITY;
			break;
		}
		if ((rc = store_verify_tenant(store, txn, name, key.mv_size,
		    &val, sv, err, errlen)) != STORE_OK) {
			memcpy(sv->sv_tenant, name, key.mv_size + 1);
			break;
		}
	}
	if (rc == STORE_OK && mrc != MDB_NOTFOUND) {
		snprintf(err, errlen, "cannot read the tenants after '%s': %s",
		    name, mdb_strerror(mrc));
		rc = store_mdb_code(mrc, "walk tenants");
	}
	mdb_cursor_close(cur);
	if (rc != STORE_OK)
		return rc;

	if ((mrc = mdb_stat(txn, store->s_versions, &ms)) != 0) {
		snprintf(err, errlen, "cannot read the versions: %s",
		    mdb_strerror(mrc));
		return store_mdb_code(mrc, "stat versions");
	}
	if (ms.ms_entries != sv->sv_versions &&
	    (rc = store_verify_orphans(store, txn, sv, err,
	    errlen)) != STORE_OK)
		return rc;
	if ((rc = store_changes(store, txn, 0, 0, store_verify_nop,
	    NULL)) != STORE_OK) {
		snprintf(err, errlen, "the change feed holds a malformed "
		    "entry");
		return rc;
	}
	if ((rc = store_verify_counts(store, txn, sv, err, errlen)) !=
	    STORE_OK)
		return rc;
	if ((rc = store_sync_list(store, txn, store_verify_nop_sync,
	    NULL)) != STORE_OK) {
		snprintf(err, errlen, "the sync positions hold a malformed "
		    "entry");
		return rc;
	}
	return STORE_OK;
}
