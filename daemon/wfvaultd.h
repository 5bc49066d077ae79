/*
 * wfvaultd's private header: the modules of the daemon and what each one
 * offers the others, grouped by file.
 */
#ifndef WFVAULTD_H
#define WFVAULTD_H

#include <sys/types.h>
#include <sys/queue.h>

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <lmdb.h>

#include "log.h"
#include "proto.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

#ifndef __dead
#define __dead __attribute__((__noreturn__))
#endif

/* main.c */
__dead void fatal(const char *, ...)
	    __attribute__((__format__(printf, 1, 2)));
__dead void fatalx(const char *, ...)
	    __attribute__((__format__(printf, 1, 2)));

/* acl.c */
#define ACL_USER	1	/* principal matched against the peer's uid */
#define ACL_GROUP	2	/* matched against its gid and supplementary groups */

struct acl_rule {
	int		 ar_kind;
	uint32_t	 ar_id;
	unsigned	 ar_perms;
	char		**ar_patterns;	/* "*", "prefix*" or an exact id */
	size_t		 ar_npatterns;
};

struct acl {
	struct acl_rule	*acl_rules;
	size_t		 acl_nrules;
	uid_t		 acl_self;	/* the daemon's own uid: admin, like 0 */
};
#define ACL_INIT { NULL, 0, 0 }

/* Who is on the other end of a connection, taken at accept time. */
struct peer {
	uid_t		 p_uid;
	gid_t		 p_gid;
	pid_t		 p_pid;
	gid_t		*p_groups;	/* supplementary groups (malloc'd) */
	int		 p_ngroups;
};
#define PEER_INIT { (uid_t)-1, (gid_t)-1, 0, NULL, 0 }

/*
 * Parses the value of one "allow" line ("user:deploy read,list acme,b-*")
 * and appends the rule.  user:/group: names are resolved now; uid:/gid:
 * take numbers.  Returns 0, -1 with a message in err, or ACL_SKIPPED with
 * a warning in err when the name does not resolve (the rule is left out,
 * so it grants nothing).
 */
#define ACL_SKIPPED	1
int	acl_add_rule(struct acl *acl, const char *line, char *err,
	    size_t errlen);
/* Frees the rules; acl is ACL_INIT afterwards (acl_self kept). */
void	acl_release(struct acl *acl);
/* Moves src's rules into dst (releasing dst's); src becomes empty. */
void	acl_move(struct acl *dst, struct acl *src);
/* 1 if pattern ("*", "pre*", exact) matches tenant. */
int	acl_pattern_match(const char *pattern, const char *tenant);
/*
 * Effective permissions of peer on tenant: the union of the matching rules,
 * with admin implying everything and sync implying read and list; root and
 * acl_self are admin.  Default deny: 0.
 */
unsigned acl_perms(const struct acl *acl, const struct peer *peer,
	    const char *tenant);
/* The union over every rule naming peer, whatever the tenants (for hello). */
unsigned acl_perms_any(const struct acl *acl, const struct peer *peer);
/*
 * 1 if peer holds perm on every possible tenant (a rule with pattern "*"),
 * as the global methods (changes, status) require.
 */
int	acl_perms_all(const struct acl *acl, const struct peer *peer,
	    unsigned perm);
/* Fills peer from SO_PEERCRED and SO_PEERGROUPS of fd.  0 or -1. */
int	peer_from_fd(int fd, struct peer *peer, char *err, size_t errlen);
void	peer_release(struct peer *peer);

/* conf.c */
struct daemon_conf {
	char		*dc_socket;
	uint64_t	 dc_socket_mode;
	char		*dc_socket_group;
	char		*dc_data_dir;
	char		*dc_master_key_file;
	char		*dc_master_key_credential;
	/* The key rotate_master_key moves the store to (keys.c). */
	char		*dc_master_key_next_file;
	char		*dc_master_key_next_credential;
	char		*dc_backup_dir;		/* NULL: no online backups */
	uint64_t	 dc_map_size;
	uint64_t	 dc_max_connections;
	uint64_t	 dc_max_connections_per_uid; /* root, self exempt */
	uint64_t	 dc_max_message_bytes;
	uint64_t	 dc_max_config_bytes;
	uint64_t	 dc_max_output_bytes;	/* queued replies per connection */
	uint64_t	 dc_max_output_total;	/* ... over all of them */
	uint64_t	 dc_idle_timeout;	/* seconds */
	uint64_t	 dc_message_timeout;	/* seconds for one whole line */
	uint64_t	 dc_ungranted_timeout;	/* a peer with no grant */
	uint64_t	 dc_keep_versions;
	uint64_t	 dc_feed_retain;	/* change feed entries kept */
	char		*dc_audit_log;
	struct acl	 dc_acl;
	/* integrations_dir: read after the two defaults (catalog.c). */
	char		**dc_integrations_dirs;
	size_t		 dc_integrations_ndirs;
	int		 dc_integrations_nodefault; /* "none" was given */
};

/*
 * Loads path into conf (defaults first, then the file, then cross-field
 * checks such as "one of master_key_file and master_key_credential").
 * Returns 0 or -1 with "path:line: message" in err; conf is then released.
 */
int	daemon_conf_load(const char *path, struct daemon_conf *conf,
	    char *err, size_t errlen);
/* The same over a buffer (tests, fuzzing); name is used in messages. */
int	daemon_conf_load_buffer(const char *name, const char *buf, size_t len,
	    struct daemon_conf *conf, char *err, size_t errlen);
void	daemon_conf_release(struct daemon_conf *conf);

/* catalog.c */
/* Read first, in this order; either may be missing. */
#define CATALOG_DEFAULT_DIR	"/usr/share/wfvault/integrations"
#define CATALOG_SITE_DIR	"/etc/wfvault/integrations.d"

struct catalog_field {
	const char	*cf_name;	/* these borrow from ci_json */
	const char	*cf_label;
	const char	*cf_format;	/* POSIX extended regex */
	int		 cf_secret;
	regex_t		 cf_re;		/* cf_format, REG_EXTENDED|REG_NOSUB */
	int		 cf_compiled;
};

struct catalog_integration {
	const char		*ci_id;		/* borrow from ci_json */
	const char		*ci_title;
	const char		*ci_kind;	/* api_key, oauth or storage */
	struct catalog_field	*ci_fields;
	size_t			 ci_nfields;
	char			*ci_file;	/* the file it came from */
	json_t			*ci_json;	/* the whole checked file */
};

struct catalog {
	struct catalog_integration	**cat_items;	/* in load order */
	size_t				  cat_n;
};

/* An empty catalog (new; catalog_free), or NULL. */
struct catalog *catalog_new(void);
/*
 * Loads CATALOG_DEFAULT_DIR and CATALOG_SITE_DIR (unless conf said
 * "integrations_dir none"), then conf's integrations_dir in order; a
 * later file replaces an earlier one of the same id.  0 with a new
 * catalog in *out, or -1 with "FILE: MEMBER: reason" in err.
 */
int	catalog_load(const struct daemon_conf *conf, struct catalog **out,
	    char *err, size_t errlen);
/* Adds every *.json of dir (which must exist) to cat; 0 or -1. */
int	catalog_load_dir(struct catalog *cat, const char *dir, char *err,
	    size_t errlen);
/* Borrowed from cat, valid until catalog_free; NULL when unknown. */
const struct catalog_integration *catalog_find(const struct catalog *cat,
	    const char *id);
const struct catalog_field *catalog_field_find(
	    const struct catalog_integration *ci, const char *name);
/* 1 when value matches cf's format, else 0. */
int	catalog_field_match(const struct catalog_field *cf, const char *value);
/* The integrations sorted by id, as the files say (new), or NULL. */
json_t	*catalog_list_json(const struct catalog *cat);
void	catalog_free(struct catalog *cat);

/* crypto.c */
#define CRYPTO_KEY_BYTES	32
#define CRYPTO_WRAPPED_BYTES	(24 + 32 + 16)	/* nonce, key, tag */
#define CRYPTO_SEAL_OVERHEAD	(24 + 16)	/* nonce, tag */
#define CRYPTO_CHECK_BYTES	32

#define CRYPTO_OK		0
#define CRYPTO_ERR		(-1)	/* system or usage error */
#define CRYPTO_INTEGRITY	(-2)	/* authentication failed */

/* sodium_init and friends; 0 or -1. */
int	crypto_init(char *err, size_t errlen);
/* A 32-byte key in guarded sodium_malloc memory, or NULL. */
unsigned char *crypto_key_alloc(void);
/* Wipes and frees a key from crypto_key_alloc.  NULL is fine. */
void	crypto_key_free(unsigned char *key);
/*
 * Creates path (O_EXCL, mode 0400, never overwriting) holding a new random
 * key as one line of base64.  0 or -1 with a message in err.
 */
int	crypto_key_generate_file(const char *path, char *err, size_t errlen);
/*
 * Reads a base64 key from path into key.  With strict, refuses a file
 * that group or others may read.  0 or -1 with a message in err.
 */
int	crypto_key_load_file(const char *path, int strict, unsigned char *key,
	    char *err, size_t errlen);
/* Reads $CREDENTIALS_DIRECTORY/name (systemd credential) into key. */
int	crypto_key_load_credential(const char *name, unsigned char *key,
	    char *err, size_t errlen);
/* The key-check value stored in meta: a keyed hash of a constant. */
void	crypto_key_check(const unsigned char *mk,
	    unsigned char out[CRYPTO_CHECK_BYTES]);
/* A fresh random data key into dek (CRYPTO_KEY_BYTES). */
void	crypto_dek_new(unsigned char *dek);
/* Wraps dek under mk, bound to tenant. */
int	crypto_dek_wrap(const unsigned char *mk, const char *tenant,
	    const unsigned char *dek, unsigned char out[CRYPTO_WRAPPED_BYTES]);
/* Unwraps; CRYPTO_INTEGRITY when in was not made by wrap(mk, tenant). */
int	crypto_dek_unwrap(const unsigned char *mk, const char *tenant,
	    const unsigned char *in, size_t inlen, unsigned char *dek);
/* Seals plain into out (plen + CRYPTO_SEAL_OVERHEAD bytes). */
int	crypto_seal(const unsigned char *dek, const char *tenant,
	    uint64_t version, const unsigned char *plain, size_t plen,
	    unsigned char *out);
/*
 * Opens in into plain (inlen - CRYPTO_SEAL_OVERHEAD bytes, *plen set);
 * CRYPTO_INTEGRITY on any mismatch (tamper, other tenant/version, key).
 */
int	crypto_open(const unsigned char *dek, const char *tenant,
	    uint64_t version, const unsigned char *in, size_t inlen,
	    unsigned char *plain, size_t *plen);

/* store.c */
/*
 * The store's functions return STORE_OK or one of these (each says which).
 * Any function that reads or writes LMDB may also give STORE_E_IO (an
 * LMDB or system error, logged) and STORE_E_NOMEM; writes (and commits)
 * may give STORE_E_FULL and STORE_E_DISK_FULL.
 *
 * Threads: a store belongs to the thread of the event loop.  Only
 * store_copy_fd may be called from another thread (a backup's) while the
 * loop uses the store: it runs in a read transaction of its own (the
 * environment is MDB_NOTLS) and reads nothing of struct store but the
 * environment.  A store opened with store_open_file is its opener's own,
 * so a thread may run store_txn_begin, store_verify, store_txn_abort and
 * store_close on it.  Nothing else may be called from another thread
 * while the loop uses the store: reads and writes unwrap data keys into
 * scratch memory shared in struct store (s_dek), rotations swap its
 * master keys, and LMDB has one write transaction at a time, the loop's
 * group commit.
 */
#define STORE_OK		0
#define STORE_E_IO		(-1)	/* LMDB or system error */
#define STORE_E_NOT_FOUND	(-2)
#define STORE_E_FULL		(-3)	/* MDB_MAP_FULL */
#define STORE_E_INTEGRITY	(-4)	/* a record failed to open */
#define STORE_E_KEY		(-5)	/* master key does not match the store */
#define STORE_E_FORMAT		(-6)	/* unknown on-disk format */
#define STORE_E_NOMEM		(-7)
#define STORE_E_DISK_FULL	(-8)	/* ENOSPC, EDQUOT */

#define STORE_OP_PUT		1
#define STORE_OP_DELETE		2

struct store;

struct store_params {
	const char	*sp_dir;
	uint64_t	 sp_map_size;
	uint64_t	 sp_keep_versions;	/* >= 1 */
	uint64_t	 sp_max_readers;
	/*
	 * The caller holds the environment's lock file itself (the offline
	 * modes, see backup_exclusive), so LMDB's own locking is off.
	 */
	int		 sp_nolock;
};

struct store_stat {
	uint64_t	 ss_tenants;	/* live (not deleted), from a counter */
	uint64_t	 ss_versions;
	uint64_t	 ss_changes;
	uint64_t	 ss_last_seq;
	uint64_t	 ss_trimmed_seq;	/* store_feed_trimmed */
	uint64_t	 ss_map_size;
	uint64_t	 ss_used_bytes;
};

/* A static string for any code, never NULL. */
const char *store_strerror(int code);

/*
 * Opens (creating if needed) the environment in params->sp_dir.  mk is
 * borrowed and must outlive the store.  A new store is stamped with mk's
 * key-check value; an existing one whose check value differs gives
 * STORE_E_KEY.  A format 1 store is moved to format 2 (STORE_E_INTEGRITY
 * when its feed holds a malformed entry).  STORE_OK, STORE_E_KEY,
 * STORE_E_FORMAT (not a store of a format this wfvaultd knows),
 * STORE_E_INTEGRITY, STORE_E_IO, STORE_E_NOMEM, STORE_E_FULL or
 * STORE_E_DISK_FULL, err filled.
 */
int	store_open(struct store **sp, const struct store_params *params,
	    const unsigned char *mk, char *err, size_t errlen);
/*
 * Opens the single-file environment at path (a backup made by
 * store_copy_fd) read-only and without a lock file, and checks its format
 * and mk's key-check value as store_open does.  mk is borrowed.
 * STORE_OK, STORE_E_KEY, STORE_E_FORMAT (also a file cut short),
 * STORE_E_IO or STORE_E_NOMEM, err filled.
 */
int	store_open_file(struct store **sp, const char *path,
	    const unsigned char *mk, char *err, size_t errlen);
/* NULL is fine.  Frees the keys the store owns (store_master_key_set). */
void	store_close(struct store *store);

/*
 * Transactions.  A write transaction may be nested (parent != NULL) so one
 * failed request in a group commit does not undo the others.
 * store_txn_begin: STORE_OK, STORE_E_IO (also a nested read transaction,
 * or no reader slot left) or STORE_E_NOMEM.  store_txn_commit: STORE_OK,
 * STORE_E_FULL, STORE_E_DISK_FULL, STORE_E_NOMEM or STORE_E_IO; the
 * transaction is gone either way.
 */
int	store_txn_begin(struct store *store, MDB_txn *parent, int write,
	    MDB_txn **txn);
int	store_txn_commit(MDB_txn *txn);
void	store_txn_abort(MDB_txn *txn);	/* NULL is fine */

/*
 * Counts and sizes for status.  STORE_OK, STORE_E_INTEGRITY (a malformed
 * counter or feed key), STORE_E_IO or STORE_E_NOMEM.
 */
int	store_stat(struct store *store, MDB_txn *txn, struct store_stat *ss);

/*
 * Writes a compacted copy of the environment to fd, from its own read
 * transaction (mdb_env_copyfd2 with MDB_CP_COMPACT).  Safe to call from
 * another thread while the store is in use; it does not log.  Returns 0
 * or an LMDB/errno code (mdb_strerror() describes both), not a STORE_E_*.
 */
int	store_copy_fd(struct store *store, int fd);

/* store_tenant.c */
/* One tenant's record (never its values). */
struct store_tenant {
	char		 st_tenant[PROTO_TENANT_MAX + 1];
	uint64_t	 st_version;
	uint64_t	 st_created;	/* unix seconds */
	uint64_t	 st_updated;
	int		 st_deleted;
	json_t		*st_fields;	/* array of names; owned, see release */
};
#define STORE_TENANT_INIT { "", 0, 0, 0, 0, NULL }

/*
 * The tenant's record, deleted or not; STORE_E_NOT_FOUND if it never
 * existed (or tenant cannot be an id).  Release it with
 * store_tenant_release.  STORE_OK, STORE_E_NOT_FOUND, STORE_E_INTEGRITY,
 * STORE_E_IO or STORE_E_NOMEM.
 */
int	store_tenant_get(struct store *store, MDB_txn *txn, const char *tenant,
	    struct store_tenant *st);
void	store_tenant_release(struct store_tenant *st);

/*
 * Decrypts the tenant's config at version (0: the current one) into a new
 * JSON object (*config, caller decrefs; jansson wipes on free).
 * STORE_E_NOT_FOUND for a missing or deleted tenant or a version not kept,
 * STORE_E_INTEGRITY when a record fails to authenticate; else STORE_OK,
 * STORE_E_IO or STORE_E_NOMEM.
 */
int	store_config_get(struct store *store, MDB_txn *txn, const char *tenant,
	    uint64_t version, json_t **config, uint64_t *got_version);

/*
 * Beside its fields, a version's object may hold this member: the sorted
 * ids of the integrations the tenant uses, versioned with the fields.  No
 * field name can start with '@', and the tenant record lists field names
 * only (record_config_keys skips it).  A version without it uses none.
 */
#define STORE_INTEGRATIONS	"@integrations"

/*
 * Stores config (an object, borrowed) as the tenant's next version, creating
 * the tenant (and its data key) if needed, pruning versions beyond
 * sp_keep_versions, and appending a put to the change feed.  STORE_OK,
 * STORE_E_IO (also a tenant that cannot be an id, or config not an
 * object), STORE_E_FULL (also the version or seq at their maximum),
 * STORE_E_DISK_FULL, STORE_E_INTEGRITY (the record or its data key) or
 * STORE_E_NOMEM.
 */
int	store_config_put(struct store *store, MDB_txn *txn, const char *tenant,
	    json_t *config, uint64_t *new_version, uint64_t *seq);

/*
 * Deletes the tenant: marks its record deleted with the next version,
 * destroys its data key and every version, appends a delete change.
 * STORE_E_NOT_FOUND if it is absent or already deleted; else STORE_OK,
 * STORE_E_FULL, STORE_E_DISK_FULL, STORE_E_INTEGRITY, STORE_E_IO or
 * STORE_E_NOMEM.
 */
int	store_tenant_delete(struct store *store, MDB_txn *txn,
	    const char *tenant, uint64_t *new_version, uint64_t *seq);

/*
 * Calls cb for each live tenant whose id starts with prefix (NULL: all) and
 * sorts after `after` (NULL: from the start), in byte order.  st is valid
 * during the call only.  cb returns 0 to go on, 1 to stop, <0 to fail (that
 * value is returned).  Else STORE_OK, STORE_E_INTEGRITY (a malformed
 * record), STORE_E_IO or STORE_E_NOMEM.
 */
int	store_list(struct store *store, MDB_txn *txn, const char *prefix,
	    const char *after, int (*cb)(void *, const struct store_tenant *),
	    void *arg);

/*
 * Removes every trace of the tenant the store keeps: its versions, its
 * record (no tombstone, so a later put starts again at version 1) and
 * every change of it but one new delete change, whose version (the old
 * one plus one) and seq are returned.  Works on a deleted tenant too;
 * STORE_E_NOT_FOUND if it has no record at all.  Else STORE_OK,
 * STORE_E_FULL, STORE_E_DISK_FULL, STORE_E_INTEGRITY, STORE_E_IO or
 * STORE_E_NOMEM.
 */
int	store_tenant_purge(struct store *store, MDB_txn *txn,
	    const char *tenant, uint64_t *new_version, uint64_t *seq);

/* feed.c */
struct store_change {
	uint64_t	 sc_seq;
	const char	*sc_tenant;	/* borrowed for the callback only */
	uint64_t	 sc_version;
	int		 sc_op;		/* STORE_OP_* */
};

/*
 * Calls cb for each change with seq > since, up to limit of them (0: no
 * limit); cb returns as store_list's does.  STORE_OK, cb's negative
 * value, STORE_E_INTEGRITY (a malformed entry), STORE_E_IO or
 * STORE_E_NOMEM.
 */
int	store_changes(struct store *store, MDB_txn *txn, uint64_t since,
	    size_t limit, int (*cb)(void *, const struct store_change *),
	    void *arg);
/* The newest seq (0: none).  STORE_OK, STORE_E_INTEGRITY or STORE_E_IO. */
int	store_last_seq(struct store *store, MDB_txn *txn, uint64_t *seq);

/*
 * Records that target has pushed everything up to seq.  STORE_OK,
 * STORE_E_IO (also a target that cannot be a name), STORE_E_FULL,
 * STORE_E_DISK_FULL or STORE_E_NOMEM.
 */
int	store_sync_ack(struct store *store, MDB_txn *txn, const char *target,
	    uint64_t seq);
/*
 * target's acknowledged seq; STORE_E_NOT_FOUND (seq 0) if it has none.
 * Else STORE_OK, STORE_E_INTEGRITY or STORE_E_IO.
 */
int	store_sync_get(struct store *store, MDB_txn *txn, const char *target,
	    uint64_t *seq);
/*
 * Calls cb(arg, target, seq) for each sync target; cb returns as
 * store_list's does.  STORE_OK, cb's negative value, STORE_E_INTEGRITY,
 * STORE_E_IO or STORE_E_NOMEM.
 */
int	store_sync_list(struct store *store, MDB_txn *txn,
	    int (*cb)(void *, const char *, uint64_t), void *arg);

/*
 * Change feed trimming.  Entries with seq <= the trim point may go: the
 * point is the lowest seq every sync target acknowledged, raised to
 * last_seq - retain when that is higher (no target, or one more than
 * retain behind), and always below last_seq (the newest entry stays).
 * store_feed_trim deletes at most max of them, oldest first, and records
 * the highest in meta; *count gets how many.  Both: STORE_OK,
 * STORE_E_INTEGRITY (a malformed entry or position), STORE_E_IO or
 * STORE_E_NOMEM; store_feed_trim also STORE_E_FULL or STORE_E_DISK_FULL.
 */
int	store_feed_trim_point(struct store *store, MDB_txn *txn,
	    uint64_t retain, uint64_t *upto);
int	store_feed_trim(struct store *store, MDB_txn *txn, uint64_t retain,
	    size_t max, size_t *count);
/*
 * The highest seq trimmed from the feed (0: none): a reader whose
 * position is below it has missed changes and must resync in full.
 * STORE_OK, STORE_E_INTEGRITY or STORE_E_IO.
 */
int	store_feed_trimmed(struct store *store, MDB_txn *txn, uint64_t *seq);

/*
 * The seq of tenant's newest change left in the feed (0: none left, or
 * no such tenant), from the feed index.  STORE_OK, STORE_E_INTEGRITY or
 * STORE_E_IO.
 */
int	store_tenant_last_seq(struct store *store, MDB_txn *txn,
	    const char *tenant, uint64_t *seq);

/* store_test.c */
/*
 * Records the outcome of the live test of integration (1..PROTO_FIELD_MAX
 * bytes) for the live tenant, replacing the one before.  outcome
 * (borrowed) is {"at", "result", "status", "reason", "version", "uid"}
 * as docs/protocol.md's test_result says.  STORE_E_NOT_FOUND for a
 * missing or deleted tenant, STORE_E_IO (also an outcome of another
 * shape), STORE_E_FULL, STORE_E_DISK_FULL or STORE_E_NOMEM.  The tenant's
 * delete and purge remove its outcomes.
 */
int	store_test_put(struct store *store, MDB_txn *txn, const char *tenant,
	    const char *integration, json_t *outcome);
/*
 * The tenant's outcomes as a new object, integration id -> outcome
 * (caller decrefs; empty when none).  STORE_OK, STORE_E_INTEGRITY (a
 * malformed entry), STORE_E_IO or STORE_E_NOMEM.
 */
int	store_tests_get(struct store *store, MDB_txn *txn, const char *tenant,
	    json_t **out);

/* store_keys.c */
/*
 * Re-wraps every live tenant's data key under newmk and replaces the
 * key-check value in meta, in txn (the offline rotation: all in one go,
 * also finishing one a daemon left under way, which must then be to
 * newmk); *count gets the number of live tenants.  The store goes on
 * using its current key until store_master_key_set.  STORE_OK,
 * STORE_E_KEY (a rotation to another key is under way),
 * STORE_E_INTEGRITY (a data key does not open), STORE_E_FULL,
 * STORE_E_DISK_FULL, STORE_E_IO or STORE_E_NOMEM.
 */
int	store_rewrap(struct store *store, MDB_txn *txn,
	    const unsigned char *newmk, uint64_t *count);
/* The master key the store uses now (borrowed). */
const unsigned char *store_master_key(struct store *store);
/*
 * Makes mk (from crypto_key_alloc) the store's master key, once the
 * transaction of store_rewrap committed.  The store owns mk from now on
 * and frees it at store_close or at the next call; the key passed to
 * store_open stays its caller's.
 */
void	store_master_key_set(struct store *store, unsigned char *mk);

/*
 * A master key rotation in steps, so the loop serves clients between them.
 * store_rotate_begin records in meta (in txn) that the store moves to
 * newmk (borrowed); nothing when that rotation is under way already,
 * STORE_E_KEY when one to another key is.  Once that committed (or at
 * open, when store_rotating says a rotation was left under way),
 * store_rotate_next_set hands the store newmk (it owns it from then on;
 * STORE_E_KEY, and the key stays the caller's, when it is not the key the
 * rotation moves to).  From then on new and rewritten records wrap their
 * data key under newmk and each record says which key it is under.
 * store_rotate_step re-wraps up to limit tenant records from pos (""
 * at first; updated to where the next step starts) in txn, adding the live
 * ones it saw to *count; with the last record it makes newmk the key of
 * meta (*finished = 1), after whose commit store_master_key_set(store,
 * the key) ends the rotation.  A crash in between leaves a store that
 * opens with the current key and resumes with the next one.
 * store_rotate_begin: STORE_OK, STORE_E_KEY, STORE_E_FULL,
 * STORE_E_DISK_FULL, STORE_E_IO or STORE_E_NOMEM.  store_rotate_next_set:
 * STORE_OK or STORE_E_KEY.  store_rotate_step: STORE_OK, STORE_E_KEY (no
 * next key given), STORE_E_INTEGRITY (a data key does not open),
 * STORE_E_FULL, STORE_E_DISK_FULL, STORE_E_IO or STORE_E_NOMEM.
 */
int	store_rotate_begin(struct store *store, MDB_txn *txn,
	    const unsigned char *newmk);
int	store_rotate_next_set(struct store *store, unsigned char *newmk);
int	store_rotate_step(struct store *store, MDB_txn *txn,
	    char pos[PROTO_TENANT_MAX + 1], size_t limit, uint64_t *count,
	    int *finished);
/*
 * 1 while a master key rotation is under way: meta said so at open, or
 * store_rotate_next_set was called; 0 again after store_master_key_set.
 */
int	store_rotating(struct store *store);
/* The key a rotation moves to (borrowed), NULL when none was given. */
const unsigned char *store_next_key(struct store *store);

/* store_rekey.c */
/*
 * Gives the live tenant a new random data key and re-seals every kept
 * version under it (same version numbers and additional data); the record
 * keeps its version and no change is appended.  *count gets the number of
 * versions re-sealed.  STORE_E_NOT_FOUND for a missing or deleted tenant.
 * Finishes a rotation of the tenant's key left under way.  Else
 * STORE_OK, STORE_E_INTEGRITY (a key or version does not open),
 * STORE_E_FULL, STORE_E_DISK_FULL, STORE_E_IO or STORE_E_NOMEM.
 */
int	store_tenant_rekey(struct store *store, MDB_txn *txn,
	    const char *tenant, uint64_t *count);

/*
 * The same in steps, each in a write transaction of its own (or all in
 * one).  store_rekey_begin puts a new data key into the tenant's record
 * next to the current one (or takes the one of a rotation left under way)
 * and notes the versions there are (*rkp: free with store_rekey_free):
 * from then on puts seal under the new key and reads open a version under
 * either.  store_rekey_step re-seals up to limit more of those versions
 * (skipping those pruned or sealed under the new key meanwhile); with the
 * last one the new key replaces the old in the record (*done).  A crash in
 * between leaves every version readable, and the next store_rekey_begin
 * goes on with the same new key.  STORE_E_NOT_FOUND when the tenant was
 * deleted (or purged and made again) meanwhile.  Both return as
 * store_tenant_rekey does.
 */
struct store_rekey;
int	store_rekey_begin(struct store *store, MDB_txn *txn,
	    const char *tenant, struct store_rekey **rkp);
int	store_rekey_step(struct store *store, MDB_txn *txn,
	    struct store_rekey *rk, size_t limit, int *done);
/* The versions rk's steps re-sealed so far. */
uint64_t store_rekey_count(const struct store_rekey *rk);
void	store_rekey_free(struct store_rekey *rk);	/* NULL is fine */
/* The tenant rk rekeys (borrowed from rk). */
const char *store_rekey_tenant(const struct store_rekey *rk);

/* verify.c */
/* What store_verify found. */
struct store_verify {
	uint64_t	 sv_tenants;	/* live tenants whose data key opened */
	uint64_t	 sv_versions;	/* versions that opened to an object */
	char		 sv_tenant[PROTO_TENANT_MAX + 1]; /* first failing */
};

/*
 * Checks that every record opens: each live tenant's data key unwraps,
 * each kept version decrypts to a JSON object, the current one is there
 * and holds exactly the field names the record lists, no version belongs
 * to a missing tenant, the feed and sync records parse.
 * STORE_OK, or STORE_E_INTEGRITY, STORE_E_IO or STORE_E_NOMEM with the
 * first failing tenant (if any) in sv_tenant and a message in err.
 * Values are wiped, never reported.  May run on another thread on a store
 * of its own (store_open_file).
 */
int	store_verify(struct store *store, MDB_txn *txn,
	    struct store_verify *sv, char *err, size_t errlen);

/* audit.c */
struct audit;

/* Opens (O_APPEND, 0600) path; NULL path gives an audit that logs nothing. */
int	audit_open(struct audit **ap, const char *path, char *err,
	    size_t errlen);
/* Reopens the file (after log rotation); keeps the old one on failure. */
int	audit_reopen(struct audit *a, char *err, size_t errlen);
void	audit_close(struct audit *a);
/*
 * Writes one JSON line: time, uid, gid, pid, method, tenant (may be NULL),
 * fields (array of names, borrowed, may be NULL), outcome ("ok" or an error
 * kind).  Never values.
 */
void	audit_log(struct audit *a, const struct peer *peer, const char *method,
	    const char *tenant, json_t *fields, const char *outcome);
/*
 * A request a peer could repeat in a loop: one that failed (code is its
 * PROTO_E_*), or a hello (code 0).  The first AUDIT_BURST of peer's uid in
 * an AUDIT_INTERVAL are written in full (as audit_log does) and 1
 * returned, so the caller may log them too; the ones after them in the
 * interval are only counted per outcome (0 returned) and audit_flush
 * writes one line per outcome with its number.
 */
#define AUDIT_INTERVAL	1	/* seconds */
#define AUDIT_BURST	10
int	audit_limited(struct audit *a, const struct peer *peer,
	    const char *method, const char *tenant, json_t *fields, int code);
/*
 * Writes the counts whose interval has ended (all of them with all set,
 * as audit_close does).  Returns 1 while counts remain.
 */
int	audit_flush(struct audit *a, int all);
/*
 * Lines that could not be written since audit_open (never fatal); *last_errno
 * (may be NULL) gets the errno of the latest failure, 0 if none.
 */
uint64_t audit_failures(const struct audit *a, int *last_errno);

/* server.c */
struct event_base;
struct event;
struct bufferevent;
struct evconnlistener;
struct rpc_write;
struct evbuffer_cb_entry;
struct refusal;

/*
 * One client connection; conn.c owns it.  Others hold it (conn_hold,
 * conn_wait_begin) while they owe it a reply; it is freed once closed
 * and nothing holds it, on a later loop turn.
 */
struct conn {
	TAILQ_ENTRY(conn)	 c_entry;
	struct server		*c_srv;
	uint64_t		 c_id;
	int			 c_fd;
	struct bufferevent	*c_bev;
	struct event		*c_deadline;	/* for one whole message */
	struct event		*c_ungranted;	/* a peer with no grant */
	int			 c_ungranted_told; /* ... was told, closing */
	struct evbuffer_cb_entry *c_output_cb;	/* srv_output_total */
	struct peer		 c_peer;
	int			 c_waiting;	/* queued writes not answered */
	int			 c_blocked;	/* a line waits for them */
	int			 c_closing;	/* close once output drained */
	int			 c_eof;		/* the peer stopped sending */
	int			 c_watching;
	uint64_t		 c_watch_seq;	/* last seq notified */
	int			 c_refs;	/* holders (conn_hold) */
	int			 c_dead;	/* closed: replies dropped */
};
TAILQ_HEAD(conn_list, conn);
TAILQ_HEAD(rpc_write_list, rpc_write);
TAILQ_HEAD(refusal_list, refusal);

struct server {
	struct event_base	*srv_base;
	struct daemon_conf	*srv_conf;
	const char		*srv_conf_path;
	struct store		*srv_store;
	struct audit		*srv_audit;
	struct evconnlistener	*srv_listener;
	struct event		*srv_listen_retry;
	struct event		*srv_commit_ev;
	struct event		*srv_sigs[4];
	struct event		*srv_stop_timer;
	struct conn_list	 srv_conns;
	struct conn_list	 srv_dead;	/* closed, to be freed */
	struct event		*srv_reap_ev;	/* frees them (conn.c) */
	size_t			 srv_nconns;
	uint64_t		 srv_output_total; /* queued in all conns */
	struct refusal_list	 srv_refused;	/* turned away */
	size_t			 srv_nrefused;
	struct event		*srv_audit_ev;	/* audit counts */
	uint64_t		 srv_next_id;
	time_t			 srv_started;
	int			 srv_stopping;
	int			 srv_bound;	/* we created the socket file */
	struct rpc_write_list	 srv_writes;	/* the pending group commit */
	uint64_t		 srv_notified_seq;
	/* The master key main loaded; wiped once a rotation replaces it. */
	unsigned char		*srv_boot_mk;
	struct backup		*srv_backup;	/* the running one (backup.c) */
	struct event		*srv_trim_ev;	/* more feed to trim (rpc.c) */
	struct rotate		*srv_rotate;	/* key rotations (rotate.c) */
	struct catalog		*srv_catalog;	/* replaced at reload */
};

/*
 * Creates the listening socket (a stale socket file is replaced, a live one
 * refused), installs the signal handlers.  0 or -1 with err filled.
 */
int	server_init(struct server *srv, struct event_base *base,
	    struct daemon_conf *conf, const char *conf_path,
	    struct store *store, struct audit *audit, char *err,
	    size_t errlen);
/* Closes every connection and the listener, removes the socket file. */
void	server_release(struct server *srv);
/* Ensures rpc_commit() runs at the end of this loop turn. */
void	server_schedule_commit(struct server *srv);
/* Ensures audit_flush() runs once the requests counted now are due. */
void	server_schedule_audit(struct server *srv);

/* conn.c */
/* Sets up srv's connection list and its deferred frees.  0 or -1. */
int	conn_init(struct server *srv);
/*
 * Serves a new connection on fd from peer (both taken over, even on
 * failure: fd closed, peer released).  0 or -1.
 */
int	conn_open(struct server *srv, int fd, struct peer *peer);
/* At shutdown: every connection closes once its replies are written. */
void	conn_stop_all(struct server *srv);
/*
 * Starts ungranted_timeout for conn when its peer holds no permission
 * now (at accept, and for every connection after a reload).
 */
void	conn_check_granted(struct conn *conn);
/* At exit: closes every connection, frees those nothing holds. */
void	conn_close_all(struct server *srv);
/*
 * Holding keeps conn's memory (and c_peer) valid after it closed; the
 * last conn_release of a closed connection frees it on a later turn.
 */
void	conn_hold(struct conn *conn);
void	conn_release(struct conn *conn);
/*
 * A reply conn is owed that is answered later (a queued write, a backup,
 * a rotation): holds conn, and its lines that may not overtake the reply
 * wait.  conn_wait_end after the reply was sent (or dropped).
 */
void	conn_wait_begin(struct conn *conn);
void	conn_wait_end(struct conn *conn);
/* conn watches the change feed from seq on. */
void	conn_watch(struct conn *conn, uint64_t seq);
/* Sends "changed" (seq last) to every watcher behind it. */
void	conn_notify_watchers(struct server *srv, uint64_t last);
/* Queues msg (stolen) as one line of conn's output; dropped if closed. */
void	server_send(struct conn *conn, json_t *msg);
/* Sends msg then closes conn once it has been written. */
void	server_send_close(struct conn *conn, json_t *msg);
/*
 * Processes conn's buffered lines again when they waited for replies (or
 * its peer half-closed) and no reply is owed any more.
 */
void	server_conn_resume(struct conn *conn);
/* server_conn_resume on every connection. */
void	server_conns_resume(struct server *srv);

/* notify.c */
/* Reads $NOTIFY_SOCKET (systemd Type=notify); without it all is a no-op. */
void	notify_init(void);
/* Sends one notification ("READY=1", "STOPPING=1", "STATUS=..."). */
void	notify_send(const char *, ...)
	    __attribute__((__format__(printf, 1, 2)));
/* Starts the watchdog pings (and STATUS updates) on base.  0 or -1. */
int	notify_start(struct event_base *base, struct server *srv);
void	notify_stop(void);

/* keys.c */
#define KEYS_CURRENT	0	/* master_key_file or master_key_credential */
#define KEYS_NEXT	1	/* master_key_next_file or ..._credential */

/* 1 when conf names that key, else 0. */
int	keys_configured(const struct daemon_conf *conf, int which);
/*
 * Loads that key into new guarded memory, made read-only (*keyp: free it
 * with crypto_key_free).  The next key gets the same checks as the
 * current one.  0, or -1 with a message in err.
 */
int	keys_load(const struct daemon_conf *conf, int which,
	    unsigned char **keyp, char *err, size_t errlen);
/*
 * Opens the store with the master key; when the store does not match it
 * but matches the next key (a rotation committed and the key files were
 * not swapped yet), opens it with that one and logs so.  *mkp gets the
 * key the store borrows: free it after store_close.  Returns STORE_OK or
 * a STORE_E_* code with err filled.
 */
int	keys_store_open(struct store **sp, const struct store_params *params,
	    const struct daemon_conf *conf, unsigned char **mkp, char *err,
	    size_t errlen);
/*
 * A store left in the middle of a master key rotation (store_rotating)
 * holds data keys under both keys: loads the next key and hands it to the
 * store.  0 (also when no rotation is under way), or -1 with err saying
 * what to configure; where names the store in messages.
 */
int	keys_store_resume(struct store *store, const char *where,
	    const struct daemon_conf *conf, char *err, size_t errlen);
/*
 * wfvaultd --rotate-master-key: with no daemon using the store, re-wraps
 * every data key under the next key in one transaction.  Prints what it
 * did; returns the exit status (0 or 1).
 */
int	keys_rotate_offline(const struct daemon_conf *conf);

/* backup.c */
struct backup;

/* How a backup ended, for the rpc layer. */
struct backup_result {
	int		 br_code;	/* 0, or a PROTO_E_* code */
	char		 br_msg[512];	/* what went wrong */
	char		 br_path[4096];	/* backup_dir/NAME */
	uint64_t	 br_bytes;
};

/*
 * Starts copying the store into backup_dir/name (NULL: a name made of the
 * UTC time) in a thread; the loop keeps serving.  When the copy is on disk
 * (or failed), done(srv, arg, result) runs from the loop.  Returns 0, or
 * -1 with result filled when it could not start (no backup_dir, one
 * already running, the name taken, ...); done is then not called.
 */
int	backup_start(struct server *srv, const char *name,
	    void (*done)(struct server *, struct rpc_write *,
	    const struct backup_result *), struct rpc_write *arg,
	    struct backup_result *result);
/* The request the running backup answers (borrowed), NULL when none runs. */
struct rpc_write *backup_pending(struct server *srv);
/*
 * At exit, after server_release: waits for a running backup to finish
 * and calls its done as usual.  Nothing to do when none runs.
 */
void	backup_release(struct server *srv);
/*
 * For the offline modes: fails (err says why) when a wfvaultd answers on
 * conf's socket or any process has the LMDB environment in data_dir open;
 * else *lockfd holds the environment's lock (-1 when data_dir has none
 * yet) until backup_exclusive_end.  0 or -1.
 */
int	backup_exclusive(const struct daemon_conf *conf, int *lockfd,
	    char *err, size_t errlen);
void	backup_exclusive_end(int lockfd);
/*
 * wfvaultd --restore PATH: verifies the backup at path with the configured
 * key and, only if every record opens, installs it as data_dir/data.mdb
 * (keeping the old one).  Prints what it did; returns the exit status.
 */
int	backup_restore(const struct daemon_conf *conf, const char *path);

/* rotate.c */
struct rotate;

/* How a rotation ended, for the rpc layer. */
struct rotate_result {
	int		 rr_store;	/* STORE_OK or a STORE_E_* code */
	int		 rr_stopped;	/* wfvaultd stops first */
	uint64_t	 rr_count;	/* keys re-wrapped, versions resealed */
};

/*
 * Starts rotating the master key to next (the store owns it from now; NULL
 * resumes the rotation the store was opened in), in steps between which
 * the loop serves clients; done(srv, arg, result) runs from the loop when
 * it ended (done may be NULL).  A request while a rotation resumed at
 * start-up runs, naming the same key, waits for that one.  0, or -1 with
 * err filled (next freed) when it could not start.
 */
int	rotate_master_start(struct server *srv, unsigned char *next,
	    void (*done)(struct server *, void *, const struct rotate_result *),
	    void *arg, char *err, size_t errlen);
/*
 * Starts rotating tenant's data key in steps (store_rekey_begin now, in
 * its own transaction).  STORE_OK, or a STORE_E_* code (done is then not
 * called).
 */
int	rotate_tenant_start(struct server *srv, const char *tenant,
	    void (*done)(struct server *, void *, const struct rotate_result *),
	    void *arg);
/* Calls cb(arg, ctx) with the arg of every running rotation that has one. */
void	rotate_foreach(struct server *srv, void (*cb)(void *, void *),
	    void *ctx);
/* 1 while a rotation runs. */
int	rotate_running(struct server *srv);
/*
 * At exit: ends every rotation (done sees rr_stopped); a master key
 * rotation resumes at the next start.
 */
void	rotate_release(struct server *srv);

/* rpc_args.c */
/* The checked params of a request; strings are borrowed from its params. */
/* At most this many integrations per tenant (put's param). */
#define RPC_INTEGRATIONS_MAX	64
/* The longest reason test_result stores. */
#define RPC_REASON_MAX		160

struct rpc_args {
	const char	*ra_tenant;
	const char	*ra_field;
	json_t		*ra_fields;
	json_t		*ra_integrations;	/* put: array of ids, or NULL */
	uint64_t	 ra_cas;
	int		 ra_has_cas;
	int		 ra_replace;
	uint64_t	 ra_version;
	const char	*ra_prefix;
	const char	*ra_cursor;
	uint64_t	 ra_limit;
	uint64_t	 ra_since;
	const char	*ra_target;
	uint64_t	 ra_seq;
	int		 ra_purge;
	const char	*ra_name;	/* backup */
	/* test_result */
	const char	*ra_integration;
	const char	*ra_result;	/* "pass" or "fail" */
	const char	*ra_reason;	/* printable ASCII */
	int		 ra_status;	/* an HTTP status, when ra_has_status */
	int		 ra_has_status;
};

/*
 * Checks the params (an object, borrowed) of method id and fills a
 * (cleared first; its strings borrow from params).  0, or -1 with the
 * reason in err.  Touches nothing else.
 */
int	rpc_args_check(enum proto_method id, json_t *params,
	    struct rpc_args *a, char *err, size_t errlen);

/* rpc.c */
#define RPC_DONE	0	/* the line was handled */
#define RPC_BLOCKED	1	/* not consumed: wait for conn's queued writes */

/* One request being answered. */
struct rpc_call {
	struct server			*rc_srv;
	struct conn			*rc_conn;	/* held while queued */
	struct peer			 rc_peer;	/* groups: rc_conn's */
	const struct proto_method_info	*rc_method;
	struct rpc_args			 rc_args;
	MDB_txn				*rc_txn;
	json_t				*rc_result;	/* owned */
	json_t				*rc_names;	/* field names to audit */
	int				 rc_code;
	char				 rc_msg[512];
	uint64_t			 rc_seq;	/* change appended */
	uint64_t			 rc_first_seq;	/* feed_trimmed */
};

/*
 * A request answered later: a write waiting for the group commit, a
 * backup or a key rotation.  It holds its connection (conn_wait_begin)
 * until rpc_write_answer.
 */
struct rpc_write {
	TAILQ_ENTRY(rpc_write)	 w_entry;
	json_t			*w_id;		/* owned; NULL: no reply */
	json_t			*w_params;	/* owned; rc_args point in */
	struct rpc_call		 w_call;
};

/*
 * Handles one request line of conn.  Reads are answered at once; writes are
 * queued for the group commit that runs at the end of the loop turn.  While
 * conn has writes queued, any line that is not itself a valid write is left
 * unconsumed (RPC_BLOCKED) so replies go out in request order.
 */
int	rpc_handle_line(struct server *srv, struct conn *conn,
	    const char *line, size_t len);
/* Runs the queued writes in one transaction and answers them. */
void	rpc_commit(struct server *srv);
/* Sets call's error (code, message); returns -1. */
int	rpc_fail(struct rpc_call *call, int code, const char *fmt, ...)
	    __attribute__((__format__(printf, 3, 4)));
/* A STORE_E_* code as the client sees it (rpc_fail); returns -1. */
int	rpc_store_fail(struct rpc_call *call, int rc);
/*
 * Makes result (stolen; NULL when building it ran out of memory) call's
 * result: 0, or -1 with an "out of memory" error.
 */
int	rpc_result(struct rpc_call *call, json_t *result);
/*
 * Notes the field names a request touches, for the audit line: the first
 * RPC_AUDIT_FIELDS, then one "+N more".
 */
#define RPC_AUDIT_FIELDS	64
void	rpc_note_fields(struct rpc_call *call, json_t *fields,
	    const char *field);
/*
 * A new rpc_write for call (copied; its names are the write's from now),
 * keeping id and params (borrowed) alive; the connection is not held yet.
 * NULL with call's error when out of memory.
 */
struct rpc_write *rpc_write_new(struct rpc_call *call, json_t *id,
	    json_t *params);
/* Frees a write that was never queued (its connection not held). */
void	rpc_write_free(struct rpc_write *w);
/*
 * Audits w and sends its reply (dropped when the connection has gone),
 * lets the connection go (conn_wait_end) and frees w.
 */
void	rpc_write_answer(struct rpc_write *w);

/*
 * The handlers, by subject; each fills call->rc_result or fails with
 * rpc_fail, in call->rc_txn (a read or a nested write transaction).
 */
/* rpc_tenant.c */
int	rpc_put(struct rpc_call *call);
int	rpc_get(struct rpc_call *call);
int	rpc_list(struct rpc_call *call);
int	rpc_delete(struct rpc_call *call);

/* rpc_sync.c */
int	rpc_changes(struct rpc_call *call);
int	rpc_sync_ack(struct rpc_call *call);
int	rpc_sync_state(struct rpc_call *call);
int	rpc_watch(struct rpc_call *call);
/* Sends "changed" notifications to the watchers behind the feed's end. */
void	rpc_notify_watchers(struct server *srv);
/* Trims the change feed a little in a group commit's transaction. */
void	rpc_feed_trim(struct server *srv, MDB_txn *parent, size_t nwrites);

/* rpc_check.c */
int	rpc_test_result(struct rpc_call *call);
int	rpc_check(struct rpc_call *call);

/* rpc_admin.c */
int	rpc_hello(struct rpc_call *call);
int	rpc_status(struct rpc_call *call);
int	rpc_integrations(struct rpc_call *call);
/*
 * Start a backup or a key rotation for call in the background; its reply
 * (and conn's next lines) wait for it.  0 when started, else -1 with
 * call's error.
 */
int	rpc_backup_begin(struct server *srv, struct conn *conn, json_t *id,
	    json_t *params, struct rpc_call *call);
int	rpc_rotate_begin(struct server *srv, struct conn *conn, json_t *id,
	    json_t *params, struct rpc_call *call);
/* 1 when a backup or a rotation of conn's is still running. */
int	rpc_admin_waits(struct server *srv, struct conn *conn);

#endif /* WFVAULTD_H */
