/*
 * The store's private header: its struct, the on-disk record layout and
 * the helpers the store's files (store.c, store_tenant.c, feed.c,
 * store_keys.c, store_rekey.c, store_test.c, verify.c) share.  The rest of the daemon
 * sees only wfvaultd.h.
 */
#ifndef STORE_PRIV_H
#define STORE_PRIV_H

#include "wfvaultd.h"

/*
 * meta "format".  Format 2 adds the feed index and the live-tenant
 * counter; a format 1 store is moved to 2 when opened for writing, and an
 * older wfvaultd, which would not keep them, then refuses it.
 */
#define STORE_FORMAT		2
#define STORE_FORMAT_OLDEST	1
/* LMDB's two meta pages at the smallest page size it runs with. */
#define STORE_MIN_FILE		(2 * 4096)

/*
 * feed_tenants (dupsort): tenant -> seq u64 BE of each of its changes, so
 * a purge finds them without walking the feed.  Meta keeps
 * "live_tenants", the count of live tenants (so status walks nothing;
 * absent means 0 in a store of format 2), and "feed_trimmed", the highest
 * seq trimmed from the feed.
 */
#define STORE_META_LIVE		"live_tenants"
#define STORE_META_TRIMMED	"feed_trimmed"

/*
 * The live tests' outcomes: key tenant, NUL, integration id; value a
 * small JSON object (store_test_put).  A named database an older wfvaultd
 * of the same format never opens, so the format stays 2; a read-only
 * store (a backup) made before it has none and has no outcomes.
 */
#define STORE_TESTS_DB		"tests"
#define STORE_TKEY_MAX		(PROTO_TENANT_MAX + 1 + PROTO_FIELD_MAX)

struct store {
	MDB_env			*s_env;
	MDB_dbi			 s_meta;
	MDB_dbi			 s_tenants;
	MDB_dbi			 s_versions;
	MDB_dbi			 s_changes;
	MDB_dbi			 s_sync;
	MDB_dbi			 s_feedidx;	/* see STORE_META_LIVE */
	int			 s_has_index;	/* 0: a read-only format 1 */
	MDB_dbi			 s_tests;	/* see STORE_TESTS_DB */
	int			 s_has_tests;	/* 0: a backup from before */
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

/* record.c: the records' byte layout; no LMDB environment, no keys. */

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
#define STORE_CHANGE_MAX	(STORE_CHANGE_HEAD + PROTO_TENANT_MAX)

/*
 * A decoded tenant record.  sr_wrapped and sr_fields point into the bytes
 * it came from (for an LMDB value: until the next write or the end of the
 * transaction).
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

void	 record_be64_put(unsigned char *p, uint64_t v);
uint64_t record_be64_get(const unsigned char *p);
/* Tenant ids and target names: 1..PROTO_TENANT_MAX bytes; 0 or -1. */
int	 record_name_len(const char *name, size_t *len);
/*
 * Copies a tenant id or target name stored as a key into name, NUL
 * terminated; -1 when the key cannot be one (a damaged table).
 */
int	 record_key_name(const MDB_val *key, char name[PROTO_TENANT_MAX + 1]);
/* Decodes a tenant record; STORE_OK or STORE_E_INTEGRITY. */
int	 record_tenant_decode(const MDB_val *val, struct store_rec *rec);
/*
 * Encodes a tenant record from rec's numbers and flags (sr_deleted, or
 * sr_keygen for a live one), wrapped (NULL for a deleted tenant), pending
 * (NULL, or the new data key of a rotation under way) and the sorted
 * names, into out->mv_data (new, caller frees).  STORE_OK or
 * STORE_E_NOMEM.
 */
int	 record_tenant_encode(const struct store_rec *rec,
	    const unsigned char *wrapped, const unsigned char *pending,
	    const char **names, size_t nnames, MDB_val *out);
/*
 * The live record val (decoded in rec) with its wrapped keys replaced by
 * wrapped and pending (NULL: none) under key generation keygen (0 or
 * STORE_REC_KEYGEN), numbers and names kept, into out->mv_data (new,
 * caller frees).  STORE_OK or STORE_E_NOMEM.
 */
int	 record_tenant_rewrite(const MDB_val *val, const struct store_rec *rec,
	    unsigned keygen, const unsigned char *wrapped,
	    const unsigned char *pending, MDB_val *out);
/* The record's field names as a new JSON array, or NULL. */
json_t	*record_fields_json(const struct store_rec *rec);
/*
 * config's field names (borrowed from it), sorted, in a new array (*keysp;
 * NULL when none): members starting with '@' are not fields.
 */
int	 record_config_keys(json_t *config, const char ***keysp, size_t *np);
/* 1 if the record names exactly config's keys, in byte order. */
int	 record_fields_match(const struct store_rec *rec, json_t *config);
/* The versions key of tenant's version into key; returns its length. */
size_t	 record_vkey(const char *tenant, size_t tlen, uint64_t version,
	    unsigned char key[STORE_VKEY_MAX]);
/* A versions key's tenant length and version; -1 if malformed. */
int	 record_vkey_decode(const MDB_val *key, size_t *tlen,
	    uint64_t *version);
/* 1 if key is a versions key of tenant (its version in *version). */
int	 record_vkey_match(const MDB_val *key, const char *tenant, size_t tlen,
	    uint64_t *version);
/* A change's value into buf; returns its length. */
size_t	 record_change_encode(unsigned char buf[STORE_CHANGE_MAX], int op,
	    uint64_t version, const char *tenant, size_t tlen);
/*
 * A feed entry's seq, op, version and tenant (pointing into val, not NUL
 * terminated); -1 if its sizes are wrong (the op is the caller's to check).
 */
int	 record_change_decode(const MDB_val *key, const MDB_val *val,
	    uint64_t *seq, int *op, uint64_t *version, const char **tenant,
	    size_t *tlen);
/* meta "format", a u32 BE. */
void	 record_format_put(unsigned char buf[4], uint32_t format);
int	 record_format_get(const MDB_val *val, uint32_t *format);

/* store.c */
uint64_t store_now(void);
/* Turns an LMDB error into a STORE_E_* code; what names the operation. */
int	 store_mdb_code(int rc, const char *what);

/*
 * What a store_walk callback returns: go on with the next entry, stop
 * (store_walk returns STORE_WALK_STOP), or seek the start again (after it
 * deleted the entry it was given); or a negative STORE_E_* code, which
 * ends the walk and is returned.
 */
#define STORE_WALK_NEXT		0
#define STORE_WALK_STOP		1
#define STORE_WALK_AGAIN	2
/*
 * Calls cb(arg, cur, key, val) for each entry of dbi from the first at or
 * after start (NULL: the first) on, in key order.  key and val are LMDB's
 * memory, valid until the next write through cur or in txn.  Returns
 * STORE_OK at the end of the table, STORE_WALK_STOP, or a STORE_E_* code
 * (the callback's or LMDB's).
 */
int	 store_walk(struct store *store, MDB_txn *txn, MDB_dbi dbi,
	    const MDB_val *start, int (*cb)(void *, MDB_cursor *,
	    const MDB_val *, const MDB_val *), void *arg);
/* A caller's callback result (0 go on, >0 stop, <0 fail) for a walk. */
int	 store_walk_ret(int r);
/* A walk callback counting live tenant records into *(uint64_t *)arg. */
int	 store_count_live(void *arg, MDB_cursor *cur, const MDB_val *key,
	    const MDB_val *val);
/* A u64 kept in meta under name; STORE_E_NOT_FOUND when absent. */
int	 store_meta_u64(struct store *store, MDB_txn *txn, const char *name,
	    uint64_t *v);
int	 store_meta_u64_put(struct store *store, MDB_txn *txn,
	    const char *name, uint64_t v);
int	 store_meta_put(struct store *store, MDB_txn *txn, const char *name,
	    const void *data, size_t size);

/* store_tenant.c */
/* The tenant's record, decoded (pointing into LMDB's memory). */
int	 store_rec_get(struct store *store, MDB_txn *txn, const char *tenant,
	    size_t tlen, struct store_rec *rec);
/*
 * The live tenant's record (tenant's length in *tlen); STORE_E_NOT_FOUND
 * for a name that cannot be a tenant's, a missing or a deleted tenant.
 */
int	 store_rec_live(struct store *store, MDB_txn *txn, const char *tenant,
	    size_t *tlen, struct store_rec *rec);
/*
 * The sealed record of one version into val (LMDB's memory, valid until
 * the next write or the end of txn); too short to be sealed is integrity.
 */
int	 store_sealed_get(struct store *store, MDB_txn *txn,
	    const char *tenant, size_t tlen, uint64_t version, MDB_val *val);
/* Stores sealed (len bytes) as the tenant's version. */
int	 store_sealed_put(struct store *store, MDB_txn *txn,
	    const char *tenant, size_t tlen, uint64_t version,
	    const unsigned char *sealed, size_t len);
/* Counts a tenant coming to life (+1) or going (-1), in txn. */
int	 store_live_add(struct store *store, MDB_txn *txn, int delta);
/* Deletes the tenant's versions numbered upto or less. */
int	 store_versions_prune(struct store *store, MDB_txn *txn,
	    const char *tenant, size_t tlen, uint64_t upto);
/* The numbers of the tenant's stored versions, ascending, in a new array. */
int	 store_versions_list(struct store *store, MDB_txn *txn,
	    const char *tenant, size_t tlen, uint64_t **versp, size_t *np);

/* feed.c */
/* Appends one change with the next sequence number, given in *seq. */
int	 store_change_append(struct store *store, MDB_txn *txn, int op,
	    uint64_t version, const char *tenant, size_t tlen, uint64_t *seq);
/* Moves a format 1 store to format 2: builds its feed index and counter. */
int	 store_index_build(struct store *store, MDB_txn *txn, char *err,
	    size_t errlen);
/* Deletes every change of tenant whose seq is below before. */
int	 store_changes_forget(struct store *store, MDB_txn *txn,
	    const char *tenant, size_t tlen, uint64_t before);

/* store_test.c */
/* Deletes every outcome of the tenant (delete, purge). */
int	 store_tests_forget(struct store *store, MDB_txn *txn,
	    const char *tenant, size_t tlen);
/*
 * Checks one entry of the tests table (verify): its key names a tenant
 * and an integration, its value is an outcome.  0 or -1.
 */
int	 store_test_entry_valid(const MDB_val *key, const MDB_val *val);

/*
 * store_keys.c: a record's data keys.  store_wrapped_open, store_dek_open
 * and store_dek_rewrap leave a data key in dek (guarded memory, such as
 * s_dek), which the caller wipes; store_version_open uses and wipes s_dek.
 */
/* The key new data keys are wrapped under: the next one in a rotation. */
const unsigned char *store_wrap_key(const struct store *store);
unsigned store_wrap_gen(const struct store *store);
int	 store_wrapped_open(const struct store *store, const char *tenant,
	    const struct store_rec *rec, const unsigned char *w,
	    unsigned char *dek);
int	 store_dek_open(const struct store *store, const char *tenant,
	    const struct store_rec *rec, unsigned char *dek);
int	 store_wrapped_move(const struct store *store, const char *tenant,
	    const struct store_rec *rec, const unsigned char *w,
	    const unsigned char *dek, unsigned char *out);
int	 store_dek_rewrap(const struct store *store, const char *tenant,
	    const struct store_rec *rec, unsigned char *dek,
	    unsigned char *wrapped, unsigned char *pending, int *rekeying);
int	 store_version_open(struct store *store, const char *tenant,
	    const struct store_rec *rec, uint64_t version, const MDB_val *val,
	    unsigned char *plain, size_t *plen);

#endif /* STORE_PRIV_H */
