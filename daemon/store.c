/*
 * wfvaultd's store: one LMDB environment holding the tenants' records,
 * their sealed config versions, the change feed and the sync targets'
 * positions; this file opens it (format checks and migration), runs its
 * transactions and walks its tables.  Nothing returned points into LMDB
 * memory past a call.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "store_priv.h"

#define STORE_MAX_DBS		10
#define STORE_DEFAULT_READERS	126

static int	store_meta_check(struct store *, MDB_txn *, int,
		    const char *, const char *, uint32_t *, char *, size_t);
static int	store_meta_rotation(struct store *, MDB_txn *);
static struct store *store_alloc(const unsigned char *, uint64_t);
static void	store_free(struct store *);
static int	store_file_short(struct store *, const char *, const char *,
		    char *, size_t);
static int	store_setup(struct store *, const char *, const char *,
		    unsigned, uint64_t, uint64_t, char *, size_t);

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

uint64_t
store_now(void)
{
	time_t	 t = time(NULL);

	return t < 0 ? 0 : (uint64_t)t;
}

/* Turns an LMDB error into a STORE_E_* code; what names the operation. */
int
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

int
store_walk(struct store *store, MDB_txn *txn, MDB_dbi dbi,
    const MDB_val *start, int (*cb)(void *, MDB_cursor *, const MDB_val *,
    const MDB_val *), void *arg)
{
	MDB_cursor	*cur;
	MDB_val		 key, val;
	MDB_cursor_op	 op;
	int		 rc = STORE_OK, mrc, seek = 1;

	if ((mrc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return store_mdb_code(mrc, "open cursor");
	for (;;) {
		if (seek) {
			/* Both the first look and a callback's "again". */
			if (start != NULL) {
				key = *start;
				op = MDB_SET_RANGE;
			} else
				op = MDB_FIRST;
			seek = 0;
		} else
			op = MDB_NEXT;
		if ((mrc = mdb_cursor_get(cur, &key, &val, op)) != 0)
			break;
		rc = cb(arg, cur, &key, &val);
		if (rc == STORE_WALK_AGAIN)
			seek = 1;
		else if (rc != STORE_WALK_NEXT)
			break;
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND)
		rc = store_mdb_code(mrc, "walk");
	else if (mrc == MDB_NOTFOUND)
		rc = STORE_OK;
	mdb_cursor_close(cur);
	return rc;
}

/* A u64 kept in meta under name; STORE_E_NOT_FOUND when absent. */
int
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
	*v = record_be64_get(val.mv_data);
	return STORE_OK;
}

int
store_walk_ret(int r)
{
	if (r < 0)
		return r;
	return r > 0 ? STORE_WALK_STOP : STORE_WALK_NEXT;
}

int
store_meta_put(struct store *store, MDB_txn *txn, const char *name,
    const void *data, size_t size)
{
	MDB_val	 key, val;

	key.mv_data = (void *)name;
	key.mv_size = strlen(name);
	val.mv_data = (void *)data;
	val.mv_size = size;
	return store_mdb_code(mdb_put(txn, store->s_meta, &key, &val, 0),
	    name);
}

int
store_meta_u64_put(struct store *store, MDB_txn *txn, const char *name,
    uint64_t v)
{
	unsigned char	 vbuf[8];

	record_be64_put(vbuf, v);
	return store_meta_put(store, txn, name, vbuf, sizeof(vbuf));
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
		record_format_put(fbuf, STORE_FORMAT);
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
	if (rc == MDB_NOTFOUND || record_format_get(&val, &format) == -1) {
		snprintf(err, errlen, "%s %s holds no readable store "
		    "format", what, dir);
		return STORE_E_FORMAT;
	}
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
		store->s_gen = record_be64_get(val.mv_data);
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

/*
 * Opens the environment at path with flags (MDB_RDONLY: an existing store
 * only, nothing created or stamped), its databases, and checks its meta.
 */
static int
store_setup(struct store *store, const char *path, const char *what,
    unsigned flags, uint64_t map_size, uint64_t max_readers, char *err,
    size_t errlen)
{
	MDB_txn		*txn = NULL;
	struct stat	 st;
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
	/*
	 * A file (a backup) shorter than LMDB's two meta pages is no store;
	 * LMDB itself would only say "Bad file descriptor" of an empty one.
	 */
	if ((flags & MDB_NOSUBDIR) && stat(path, &st) == 0 &&
	    S_ISREG(st.st_mode) && st.st_size < STORE_MIN_FILE) {
		snprintf(err, errlen, "%s %s is %lld bytes: too short to hold "
		    "a store (an empty or incomplete copy)", what, path,
		    (long long)st.st_size);
		return STORE_E_FORMAT;
	}
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
	/* Outcomes of live tests: a backup from before has none. */
	mrc = mdb_dbi_open(txn, STORE_TESTS_DB, dbflags, &store->s_tests);
	if (mrc == 0)
		store->s_has_tests = 1;
	else if (mrc != MDB_NOTFOUND || !rdonly)
		goto mdbfail;
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
store_count_live(void *arg, MDB_cursor *cur, const MDB_val *key,
    const MDB_val *val)
{
	struct store_rec	 rec;
	uint64_t		*n = arg;

	if (record_tenant_decode(val, &rec) == STORE_OK && !rec.sr_deleted)
		(*n)++;
	return STORE_WALK_NEXT;
}

int
store_stat(struct store *store, MDB_txn *txn, struct store_stat *ss)
{
	MDB_envinfo		 info;
	MDB_stat		 ms, es;
	int			 rc;

	memset(ss, 0, sizeof(*ss));
	/* The counter; a read-only store from before it is counted. */
	rc = store_meta_u64(store, txn, STORE_META_LIVE, &ss->ss_tenants);
	if (rc != STORE_OK && rc != STORE_E_NOT_FOUND)
		return rc;
	if (rc == STORE_E_NOT_FOUND && (rc = store_walk(store, txn,
	    store->s_tenants, NULL, store_count_live,
	    &ss->ss_tenants)) != STORE_OK)
		return rc;

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
