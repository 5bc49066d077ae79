/*
 * store_verify: checks that every record of a store opens and that its
 * tables agree with each other (wfvaultd --verify, backups, restores).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "store_priv.h"

static int	store_verify_tenant(struct store *, MDB_txn *, const char *,
		    size_t, const MDB_val *, struct store_verify *, char *,
		    size_t);
struct store_verify_ctx;
static int	store_verify_orphans(struct store_verify_ctx *);
static int	store_verify_counts(struct store *, MDB_txn *,
		    struct store_verify *, char *, size_t);
static int	store_verify_nop(void *, const struct store_change *);
static int	store_verify_nop_sync(void *, const char *, uint64_t);

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
	    record_tenant_decode(val, &rec) != STORE_OK) {
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
		key.mv_size = record_vkey(name, tlen, vers[i], kbuf);
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
		    !record_fields_match(&rec, obj)) {
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

/* store_verify's walks. */
struct store_verify_ctx {
	struct store		*vc_store;
	MDB_txn			*vc_txn;
	struct store_verify	*vc_sv;
	char			*vc_err;
	size_t			 vc_errlen;
	char			 vc_name[PROTO_TENANT_MAX + 1];
	int			 vc_said;	/* a callback filled err */
};

/* Fails on a version whose tenant is missing or deleted. */
static int
store_verify_orphan(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_verify_ctx	*vc = arg;
	struct store_verify	*sv = vc->vc_sv;
	struct store_rec	 rec;
	uint64_t		 version;
	size_t			 tlen;
	int			 rc;

	if (record_vkey_decode(key, &tlen, &version) == -1) {
		snprintf(vc->vc_err, vc->vc_errlen, "the versions table holds "
		    "a malformed key");
		return STORE_E_INTEGRITY;
	}
	memcpy(sv->sv_tenant, key->mv_data, tlen);
	sv->sv_tenant[tlen] = '\0';
	rc = store_rec_get(vc->vc_store, vc->vc_txn, sv->sv_tenant, tlen,
	    &rec);
	if (rc == STORE_OK && !rec.sr_deleted)
		return STORE_WALK_NEXT;
	if (rc == STORE_OK || rc == STORE_E_NOT_FOUND) {
		snprintf(vc->vc_err, vc->vc_errlen, "a version is stored for "
		    "tenant '%s', which does not exist", sv->sv_tenant);
		rc = STORE_E_INTEGRITY;
	} else
		snprintf(vc->vc_err, vc->vc_errlen, "cannot read the record "
		    "of tenant '%s': %s", sv->sv_tenant, store_strerror(rc));
	return rc;
}

/* Checks one tenant's record and versions. */
static int
store_verify_one(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_verify_ctx	*vc = arg;
	int			 rc;

	if (record_key_name(key, vc->vc_name) == -1) {
		snprintf(vc->vc_err, vc->vc_errlen, "the tenants table holds "
		    "a malformed tenant id");
		vc->vc_said = 1;
		return STORE_E_INTEGRITY;
	}
	if ((rc = store_verify_tenant(vc->vc_store, vc->vc_txn, vc->vc_name,
	    key->mv_size, val, vc->vc_sv, vc->vc_err,
	    vc->vc_errlen)) != STORE_OK) {
		memcpy(vc->vc_sv->sv_tenant, vc->vc_name, key->mv_size + 1);
		vc->vc_said = 1;
		return rc;
	}
	return STORE_WALK_NEXT;
}

/* Names the first version whose tenant is missing or deleted. */
static int
store_verify_orphans(struct store_verify_ctx *vc)
{
	int	 rc;

	rc = store_walk(vc->vc_store, vc->vc_txn, vc->vc_store->s_versions,
	    NULL, store_verify_orphan, vc);
	if (rc == STORE_OK) {
		/* Every version belongs to a live tenant after all. */
		vc->vc_sv->sv_tenant[0] = '\0';
	}
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

/*
 * One live test outcome: well formed.  An outcome of a tenant that is
 * gone is no harm (check shows a tenant's only while it lives) and an
 * older wfvaultd of the same format leaves them on delete: accepted.
 */
static int
store_verify_test(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	if (store_test_entry_valid(key, val) == -1)
		return STORE_E_INTEGRITY;
	return STORE_WALK_NEXT;
}

int
store_verify(struct store *store, MDB_txn *txn, struct store_verify *sv,
    char *err, size_t errlen)
{
	struct store_verify_ctx	 vc;
	MDB_stat		 ms;
	int			 rc, mrc;

	memset(sv, 0, sizeof(*sv));
	memset(&vc, 0, sizeof(vc));
	vc.vc_store = store;
	vc.vc_txn = txn;
	vc.vc_sv = sv;
	vc.vc_err = err;
	vc.vc_errlen = errlen;
	rc = store_walk(store, txn, store->s_tenants, NULL, store_verify_one,
	    &vc);
	if (rc != STORE_OK) {
		/* A callback's failure said what failed; LMDB's did not. */
		if (!vc.vc_said)
			snprintf(err, errlen, "cannot read the tenants after "
			    "'%s': %s", vc.vc_name, store_strerror(rc));
		return rc;
	}

	if ((mrc = mdb_stat(txn, store->s_versions, &ms)) != 0) {
		snprintf(err, errlen, "cannot read the versions: %s",
		    mdb_strerror(mrc));
		return store_mdb_code(mrc, "stat versions");
	}
	if (ms.ms_entries != sv->sv_versions &&
	    (rc = store_verify_orphans(&vc)) != STORE_OK)
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
	/* A store from before live test outcomes were kept has none. */
	if (store->s_has_tests && (rc = store_walk(store, txn,
	    store->s_tests, NULL, store_verify_test, NULL)) != STORE_OK) {
		snprintf(err, errlen, "the live test outcomes hold a "
		    "malformed entry");
		return rc;
	}
	return STORE_OK;
}
