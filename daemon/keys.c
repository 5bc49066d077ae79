/*
 * The master key's life cycle: loading the current and the next key the
 * configuration names, opening the store with whichever one it is sealed
 * with, and rotating it offline (wfvaultd --rotate-master-key).
 */
#include <sys/stat.h>

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "wfvaultd.h"

static const char *keys_name(const struct daemon_conf *, int);

int
keys_configured(const struct daemon_conf *conf, int which)
{
	if (which == KEYS_NEXT)
		return conf->dc_master_key_next_file != NULL ||
		    conf->dc_master_key_next_credential != NULL;
	return conf->dc_master_key_file != NULL ||
	    conf->dc_master_key_credential != NULL;
}

/* The setting that names the key, for messages. */
static const char *
keys_name(const struct daemon_conf *conf, int which)
{
	if (which == KEYS_NEXT)
		return conf->dc_master_key_next_file != NULL ?
		    "master_key_next_file" : "master_key_next_credential";
	return conf->dc_master_key_file != NULL ? "master_key_file" :
	    "master_key_credential";
}

int
keys_load(const struct daemon_conf *conf, int which, unsigned char **keyp,
    char *err, size_t errlen)
{
	unsigned char	*key;
	const char	*file, *cred;
	char		 msg[512];
	int		 rc;

	*keyp = NULL;
	file = which == KEYS_NEXT ? conf->dc_master_key_next_file :
	    conf->dc_master_key_file;
	cred = which == KEYS_NEXT ? conf->dc_master_key_next_credential :
	    conf->dc_master_key_credential;
	if (file == NULL && cred == NULL) {
		snprintf(err, errlen, "set %s (or %s) in the configuration",
		    which == KEYS_NEXT ? "master_key_next_file" :
		    "master_key_file", which == KEYS_NEXT ?
		    "master_key_next_credential" : "master_key_credential");
		return -1;
	}
	if ((key = crypto_key_alloc()) == NULL) {
		snprintf(err, errlen, "cannot allocate guarded memory for the "
		    "master key");
		return -1;
	}
	/* The same checks for both: the next key becomes the current one. */
	if (file != NULL)
		rc = crypto_key_load_file(file, 1, key, msg, sizeof(msg));
	else
		rc = crypto_key_load_credential(cred, key, msg, sizeof(msg));
	if (rc == -1) {
		crypto_key_free(key);
		if (which == KEYS_NEXT)
			snprintf(err, errlen, "%s: %s", keys_name(conf, which),
			    msg);
		else
			snprintf(err, errlen, "%s", msg);
		return -1;
	}
	/* Only this process reads the key page from now on. */
	sodium_mprotect_readonly(key);
	*keyp = key;
	return 0;
}

int
keys_store_open(struct store **sp, const struct store_params *params,
    const struct daemon_conf *conf, unsigned char **mkp, char *err,
    size_t errlen)
{
	unsigned char	*mk, *next;
	char		 nerr[512];
	int		 rc, nrc;

	*sp = NULL;
	*mkp = NULL;
	if (keys_load(conf, KEYS_CURRENT, &mk, err, errlen) == -1)
		return STORE_E_KEY;
	rc = store_open(sp, params, mk, err, errlen);
	if (rc == STORE_OK) {
		if (keys_store_resume(*sp, params->sp_dir, conf, err,
		    errlen) == -1) {
			store_close(*sp);
			*sp = NULL;
			crypto_key_free(mk);
			return STORE_E_KEY;
		}
		*mkp = mk;
		return STORE_OK;
	}
	crypto_key_free(mk);
	if (rc != STORE_E_KEY || !keys_configured(conf, KEYS_NEXT))
		return rc;

	/*
	 * A rotation committed, and the key files were not swapped yet (or
	 * the daemon died before it could say so): the next key is the one.
	 */
	if (keys_load(conf, KEYS_NEXT, &next, nerr, sizeof(nerr)) == -1) {
		log_warnx("%s", nerr);
		return rc;
	}
	nrc = store_open(sp, params, next, nerr, sizeof(nerr));
	if (nrc != STORE_OK) {
		crypto_key_free(next);
		if (nrc != STORE_E_KEY)
			snprintf(err, errlen, "%s", nerr);
		else
			snprintf(err, errlen, "neither the master key nor "
			    "the next master key matches the store in %s",
			    params->sp_dir);
		return nrc;
	}
	if (store_rotating(*sp)) {
		/* Only the key after next could go on with it. */
		store_close(*sp);
		*sp = NULL;
		crypto_key_free(next);
		snprintf(err, errlen, "the store in %s is sealed with %s and "
		    "being rotated to yet another key; name the key it is "
		    "sealed with as %s and the one it moves to as %s",
		    params->sp_dir, keys_name(conf, KEYS_NEXT),
		    keys_name(conf, KEYS_CURRENT), keys_name(conf, KEYS_NEXT));
		return STORE_E_KEY;
	}
	log_warnx("the store is sealed with %s: the rotation completed; "
	    "install that key as %s", keys_name(conf, KEYS_NEXT),
	    keys_name(conf, KEYS_CURRENT));
	*mkp = next;
	return STORE_OK;
}

int
keys_store_resume(struct store *store, const char *where,
    const struct daemon_conf *conf, char *err, size_t errlen)
{
	unsigned char	*next;
	char		 nerr[512];

	if (!store_rotating(store))
		return 0;
	if (!keys_configured(conf, KEYS_NEXT)) {
		snprintf(err, errlen, "a master key rotation is under way in "
		    "%s and its data keys are under two keys: set "
		    "master_key_next_file (or master_key_next_credential) to "
		    "the key it rotates to; wfvaultd then finishes it (or run "
		    "wfvaultd --rotate-master-key)", where);
		return -1;
	}
	if (keys_load(conf, KEYS_NEXT, &next, nerr, sizeof(nerr)) == -1) {
		snprintf(err, errlen, "a master key rotation is under way in "
		    "%s: %s", where, nerr);
		return -1;
	}
	if (store_rotate_next_set(store, next) != STORE_OK) {
		crypto_key_free(next);
		snprintf(err, errlen, "a master key rotation is under way in "
		    "%s to another key than %s names; set it to the key the "
		    "rotation was started with", where,
		    keys_name(conf, KEYS_NEXT));
		return -1;
	}
	log_info("a master key rotation to %s is under way in %s",
	    keys_name(conf, KEYS_NEXT), where);
	return 0;
}

int
keys_rotate_offline(const struct daemon_conf *conf)
{
	struct store_params	 sp;
	struct store		*store = NULL;
	unsigned char		*mk = NULL, *next = NULL;
	MDB_txn			*txn = NULL;
	uint64_t		 count = 0;
	struct stat		 st;
	char			 err[1024], path[4096];
	int			 lockfd = -1, rc, n, status = 1;

	if (crypto_init(err, sizeof(err)) == -1)
		goto fail;
	if (keys_load(conf, KEYS_NEXT, &next, err, sizeof(err)) == -1)
		goto fail;
	if (backup_exclusive(conf, &lockfd, err, sizeof(err)) == -1)
		goto fail;
	n = snprintf(path, sizeof(path), "%s/data.mdb", conf->dc_data_dir);
	if (n < 0 || (size_t)n >= sizeof(path) || stat(path, &st) == -1) {
		snprintf(err, sizeof(err), "there is no store in %s to rotate",
		    conf->dc_data_dir);
		goto fail;
	}

	memset(&sp, 0, sizeof(sp));
	sp.sp_dir = conf->dc_data_dir;
	sp.sp_map_size = conf->dc_map_size;
	sp.sp_keep_versions = conf->dc_keep_versions;
	/* Held by us: a daemon starting now waits until we are done. */
	sp.sp_nolock = lockfd != -1;
	if ((rc = keys_store_open(&store, &sp, conf, &mk, err,
	    sizeof(err))) != STORE_OK)
		goto fail;
	if (sodium_memcmp(store_master_key(store), next,
	    CRYPTO_KEY_BYTES) == 0) {
		printf("the store is already sealed with %s; install that key "
		    "as %s\n", keys_name(conf, KEYS_NEXT),
		    keys_name(conf, KEYS_CURRENT));
		status = 0;
		goto done;
	}
	/*
	 * One transaction (finishing one a daemon left under way): a crash
	 * leaves the store as it was.
	 */
	if ((rc = store_txn_begin(store, NULL, 1, &txn)) != STORE_OK ||
	    (rc = store_rewrap(store, txn, next, &count)) != STORE_OK) {
		snprintf(err, sizeof(err), "cannot re-wrap the data keys in "
		    "%s: %s; nothing was changed", conf->dc_data_dir,
		    store_strerror(rc));
		goto fail;
	}
	rc = store_txn_commit(txn);
	txn = NULL;
	if (rc != STORE_OK) {
		snprintf(err, sizeof(err), "cannot commit the rotation in %s: "
		    "%s; nothing was changed", conf->dc_data_dir,
		    store_strerror(rc));
		goto fail;
	}
	store_close(store);
	store = NULL;
	/*
	 * Opened once more with LMDB's locking on: it checks the new key and
	 * resets the lock file to the new state for the daemon to come.
	 */
	sp.sp_nolock = 0;
	if ((rc = store_open(&store, &sp, next, err,
	    sizeof(err))) != STORE_OK)
		goto fail;
	printf("re-wrapped %llu tenant data keys under %s.\n"
	    "Now install that key as %s (and remove %s), then start "
	    "wfvaultd.\nDestroy the old key only once no backup you keep "
	    "needs it.\n", (unsigned long long)count,
	    keys_name(conf, KEYS_NEXT), keys_name(conf, KEYS_CURRENT),
	    keys_name(conf, KEYS_NEXT));
	status = 0;
	goto done;
fail:
	fprintf(stderr, "wfvaultd: %s\n", err);
done:
	store_txn_abort(txn);
	store_close(store);
	backup_exclusive_end(lockfd);
	crypto_key_free(mk);
	crypto_key_free(next);
	return status;
}
