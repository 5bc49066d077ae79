/*
 * Key rotations in the background of the event loop: a master key
 * rotation re-wraps a bounded batch of tenants' data keys per loop turn,
 * and a tenant key rotation re-seals a bounded number of versions per
 * turn, each batch in its own transaction, so no client waits longer than
 * one batch.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <sodium.h>

#include "wfvaultd.h"

#define ROTATE_MASTER_BATCH	1000	/* tenant records per step */
#define ROTATE_TENANT_BATCH	16	/* versions per step */
/* How often a held rotation (tests only) looks at its hold file again. */
#define ROTATE_HOLD_USEC	20000

struct rotate_job {
	TAILQ_ENTRY(rotate_job)	 j_entry;
	int			 j_master;	/* else a tenant's key */
	void			(*j_done)(struct server *, void *,
				    const struct rotate_result *);
	void			*j_arg;		/* NULL: nobody waits */
	uint64_t		 j_steps;
	uint64_t		 j_longest;	/* usec, the longest step */
	/* master */
	char			 j_pos[PROTO_TENANT_MAX + 1];
	uint64_t		 j_count;
	/* tenant */
	struct store_rekey	*j_rk;
};
TAILQ_HEAD(rotate_jobs, rotate_job);

struct rotate {
	struct server		*r_srv;
	struct event		*r_ev;
	struct rotate_jobs	 r_jobs;
	size_t			 r_master_batch;
	size_t			 r_tenant_batch;
	const char		*r_hold;	/* tests: wait while it is */
};

static struct rotate *rotate_get(struct server *);
static size_t	rotate_env_size(const char *, size_t);
static void	rotate_schedule(struct rotate *, int);
static void	rotate_cb(evutil_socket_t, short, void *);
static int	rotate_master_step(struct rotate *, struct rotate_job *,
		    struct rotate_result *);
static int	rotate_tenant_step(struct rotate *, struct rotate_job *,
		    struct rotate_result *);
static void	rotate_job_end(struct rotate *, struct rotate_job *,
		    const struct rotate_result *);
static void	rotate_job_free(struct rotate_job *);
static struct rotate_job *rotate_master_job(struct rotate *);

/*
 * Batch sizes can be made small for tests only (so a test can see a
 * rotation span many loop turns), through the environment: no setting
 * an operator would need.
 */
static size_t
rotate_env_size(const char *name, size_t def)
{
	const char		*s;
	char			*end;
	unsigned long long	 v;

	if ((s = getenv(name)) == NULL || *s == '\0')
		return def;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > 1000000) {
		log_warnx("ignoring %s=%s: not a number in 1..1000000", name,
		    s);
		return def;
	}
	return (size_t)v;
}

/* The server's rotation state, made at first use; NULL without memory. */
static struct rotate *
rotate_get(struct server *srv)
{
	struct rotate	*r;
	const char	*hold;

	if (srv->srv_rotate != NULL)
		return srv->srv_rotate;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->r_srv = srv;
	TAILQ_INIT(&r->r_jobs);
	if ((r->r_ev = evtimer_new(srv->srv_base, rotate_cb, r)) == NULL) {
		free(r);
		return NULL;
	}
	r->r_master_batch = rotate_env_size("WFVAULTD_TEST_ROTATE_BATCH",
	    ROTATE_MASTER_BATCH);
	r->r_tenant_batch = rotate_env_size("WFVAULTD_TEST_ROTATE_BATCH",
	    ROTATE_TENANT_BATCH);
	if ((hold = getenv("WFVAULTD_TEST_ROTATE_HOLD")) != NULL &&
	    *hold != '\0')
		r->r_hold = hold;
	srv->srv_rotate = r;
	return r;
}

/*
 * The next step runs in a later loop turn, after the reads that turn's
 * poll found: a zero timeout is activated only after the I/O callbacks.
 */
static void
rotate_schedule(struct rotate *r, int held)
{
	struct timeval	tv = { 0, 0 };

	if (TAILQ_EMPTY(&r->r_jobs) || evtimer_pending(r->r_ev, NULL))
		return;
	if (held)
		tv.tv_usec = ROTATE_HOLD_USEC;
	evtimer_add(r->r_ev, &tv);
}

static struct rotate_job *
rotate_master_job(struct rotate *r)
{
	struct rotate_job	*j;

	TAILQ_FOREACH(j, &r->r_jobs, j_entry)
		if (j->j_master)
			return j;
	return NULL;
}

int
rotate_master_start(struct server *srv, unsigned char *next,
    void (*done)(struct server *, void *, const struct rotate_result *),
    void *arg, char *err, size_t errlen)
{
	struct store		*store = srv->srv_store;
	struct rotate		*r;
	struct rotate_job	*j;
	MDB_txn			*txn = NULL;
	int			 rc;

	if ((r = rotate_get(srv)) == NULL)
		goto nomem;
	if ((j = rotate_master_job(r)) != NULL) {
		/* One resumed at start-up: this request waits for it. */
		if (j->j_arg == NULL && next != NULL &&
		    store_next_key(store) != NULL &&
		    sodium_memcmp(next, store_next_key(store),
		    CRYPTO_KEY_BYTES) == 0) {
			crypto_key_free(next);
			j->j_done = done;
			j->j_arg = arg;
			return 0;
		}
		snprintf(err, errlen, "a master key rotation is already "
		    "running");
		goto fail;
	}
	if (next != NULL) {
		if ((rc = store_txn_begin(store, NULL, 1, &txn)) != STORE_OK ||
		    (rc = store_rotate_begin(store, txn, next)) != STORE_OK) {
			store_txn_abort(txn);
			if (rc == STORE_E_KEY)
				snprintf(err, errlen, "a master key rotation "
				    "to another key is under way; set "
				    "master_key_next_file to the key it was "
				    "started with");
			else
				snprintf(err, errlen, "cannot start the "
				    "rotation: %s", store_strerror(rc));
			goto fail;
		}
		if ((rc = store_txn_commit(txn)) != STORE_OK) {
			snprintf(err, errlen, "cannot start the rotation: %s",
			    store_strerror(rc));
			goto fail;
		}
		/* The store holds the next key already when it resumed. */
		if (store_next_key(store) == NULL) {
			if (store_rotate_next_set(store, next) != STORE_OK) {
				snprintf(err, errlen, "the rotation under way "
				    "moves to another key");
				goto fail;
			}
		} else
			crypto_key_free(next);
		next = NULL;
	} else if (store_next_key(store) == NULL) {
		snprintf(err, errlen, "no master key rotation to resume");
		return -1;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		goto nomem;
	j->j_master = 1;
	j->j_done = done;
	j->j_arg = arg;
	TAILQ_INSERT_TAIL(&r->r_jobs, j, j_entry);
	log_info("master key rotation %s: re-wrapping %zu tenants' data "
	    "keys per step", arg != NULL ? "started" : "resumed",
	    r->r_master_batch);
	rotate_schedule(r, 0);
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	crypto_key_free(next);
	return -1;
}

int
rotate_tenant_start(struct server *srv, const char *tenant,
    void (*done)(struct server *, void *, const struct rotate_result *),
    void *arg)
{
	struct rotate		*r;
	struct rotate_job	*j;
	MDB_txn			*txn;
	int			 rc;

	if ((r = rotate_get(srv)) == NULL ||
	    (j = calloc(1, sizeof(*j))) == NULL)
		return STORE_E_NOMEM;
	if ((rc = store_txn_begin(srv->srv_store, NULL, 1,
	    &txn)) != STORE_OK) {
		free(j);
		return rc;
	}
	if ((rc = store_rekey_begin(srv->srv_store, txn, tenant,
	    &j->j_rk)) == STORE_OK)
		rc = store_txn_commit(txn);
	else
		store_txn_abort(txn);
	if (rc != STORE_OK) {
		rotate_job_free(j);
		return rc;
	}
	j->j_done = done;
	j->j_arg = arg;
	TAILQ_INSERT_TAIL(&r->r_jobs, j, j_entry);
	log_info("tenant '%s': data key rotation started",
	    store_rekey_tenant(j->j_rk));
	rotate_schedule(r, 0);
	return STORE_OK;
}

/* One step of the job at the head, which then goes to the back. */
static void
rotate_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct rotate		*r = arg;
	struct rotate_job	*j;
	struct rotate_result	 res;
	struct stat		 st;
	struct timespec		 t0, t1;
	uint64_t		 usec;
	int			 end;

	if ((j = TAILQ_FIRST(&r->r_jobs)) == NULL)
		return;
	if (r->r_hold != NULL && stat(r->r_hold, &st) == 0) {
		rotate_schedule(r, 1);
		return;
	}
	memset(&res, 0, sizeof(res));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	end = j->j_master ? rotate_master_step(r, j, &res) :
	    rotate_tenant_step(r, j, &res);
	/* What the other clients waited at most, for the log. */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	usec = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000 +
	    (uint64_t)(t1.tv_nsec / 1000) - (uint64_t)(t0.tv_nsec / 1000);
	j->j_steps++;
	if (usec > j->j_longest)
		j->j_longest = usec;
	if (end)
		log_info("%s: %llu steps, the longest %llu.%03llu ms",
		    j->j_master ? "master key rotation" : "tenant key rotation",
		    (unsigned long long)j->j_steps,
		    (unsigned long long)(j->j_longest / 1000),
		    (unsigned long long)(j->j_longest % 1000));
	TAILQ_REMOVE(&r->r_jobs, j, j_entry);
	if (end)
		rotate_job_end(r, j, &res);
	else
		TAILQ_INSERT_TAIL(&r->r_jobs, j, j_entry);
	rotate_schedule(r, 0);
}

/* 1 when the job ended (res filled), 0 when it goes on. */
static int
rotate_master_step(struct rotate *r, struct rotate_job *j,
    struct rotate_result *res)
{
	struct server	*srv = r->r_srv;
	struct store	*store = srv->srv_store;
	MDB_txn		*txn;
	uint64_t	 count = 0;
	int		 rc, finished = 0;

	if ((rc = store_txn_begin(store, NULL, 1, &txn)) == STORE_OK &&
	    (rc = store_rotate_step(store, txn, j->j_pos, r->r_master_batch,
	    &count, &finished)) == STORE_OK)
		rc = store_txn_commit(txn);
	else
		store_txn_abort(txn);
	if (rc != STORE_OK) {
		/* Meta still says "under way": a retry or restart resumes. */
		log_warnx("master key rotation stopped: %s; it resumes with "
		    "the next rotate_master_key or start", store_strerror(rc));
		res->rr_store = rc;
		return 1;
	}
	j->j_count += count;
	if (!finished)
		return 0;

	/* Committed: from now on the store is sealed with the new key. */
	store_master_key_set(store, (unsigned char *)store_next_key(store));
	/*
	 * The old key opens nothing current any more, and a rotation is
	 * often done because it may have leaked: wiped now, its page freed
	 * by main at exit.
	 */
	if (srv->srv_boot_mk != NULL) {
		sodium_mprotect_readwrite(srv->srv_boot_mk);
		sodium_memzero(srv->srv_boot_mk, CRYPTO_KEY_BYTES);
		sodium_mprotect_noaccess(srv->srv_boot_mk);
		srv->srv_boot_mk = NULL;
	}
	log_info("master key rotated (%llu data keys): the store is sealed "
	    "with the next master key now; install it as the master key",
	    (unsigned long long)j->j_count);
	res->rr_store = STORE_OK;
	res->rr_count = j->j_count;
	return 1;
}

/* 1 when the job ended (res filled), 0 when it goes on. */
static int
rotate_tenant_step(struct rotate *r, struct rotate_job *j,
    struct rotate_result *res)
{
	struct store	*store = r->r_srv->srv_store;
	MDB_txn		*txn;
	int		 rc, done = 0;

	if ((rc = store_txn_begin(store, NULL, 1, &txn)) == STORE_OK &&
	    (rc = store_rekey_step(store, txn, j->j_rk, r->r_tenant_batch,
	    &done)) == STORE_OK)
		rc = store_txn_commit(txn);
	else
		store_txn_abort(txn);
	if (rc == STORE_OK && !done)
		return 0;
	/*
	 * A failed step leaves every version readable under one of the two
	 * keys; the next rotate_tenant_key goes on from there.
	 */
	res->rr_store = rc;
	res->rr_count = store_rekey_count(j->j_rk);
	return 1;
}

static void
rotate_job_end(struct rotate *r, struct rotate_job *j,
    const struct rotate_result *res)
{
	if (j->j_done != NULL)
		j->j_done(r->r_srv, j->j_arg, res);
	rotate_job_free(j);
}

static void
rotate_job_free(struct rotate_job *j)
{
	store_rekey_free(j->j_rk);
	free(j);
}

void
rotate_foreach(struct server *srv, void (*cb)(void *, void *), void *ctx)
{
	struct rotate_job	*j;

	if (srv->srv_rotate == NULL)
		return;
	TAILQ_FOREACH(j, &srv->srv_rotate->r_jobs, j_entry)
		if (j->j_arg != NULL)
			cb(j->j_arg, ctx);
}

int
rotate_running(struct server *srv)
{
	return srv->srv_rotate != NULL &&
	    !TAILQ_EMPTY(&srv->srv_rotate->r_jobs);
}

void
rotate_release(struct server *srv)
{
	struct rotate		*r = srv->srv_rotate;
	struct rotate_job	*j;
	struct rotate_result	 res;

	if (r == NULL)
		return;
	memset(&res, 0, sizeof(res));
	res.rr_stopped = 1;
	while ((j = TAILQ_FIRST(&r->r_jobs)) != NULL) {
		TAILQ_REMOVE(&r->r_jobs, j, j_entry);
		if (j->j_master)
			log_info("stopping with the master key rotation under "
			    "way: it resumes at the next start");
		rotate_job_end(r, j, &res);
	}
	event_free(r->r_ev);
	free(r);
	srv->srv_rotate = NULL;
}
