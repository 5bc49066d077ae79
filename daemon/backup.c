/*
 * Backups of the store: the online copy, a compacted LMDB snapshot that a
 * thread writes into backup_dir while the event loop goes on serving, and
 * the offline restore, which verifies a backup before it replaces the
 * store.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "wfvaultd.h"

#define BACKUP_PATH_MAX		4096
#define BACKUP_COPY_CHUNK	(256 * 1024)
/* Default names tried in one second: STAMP.mdb, then STAMP_2.mdb, ... */
#define BACKUP_DEFAULT_TRIES	100

/* The running backup.  The loop owns it; the thread writes b_rc only. */
struct backup {
	struct server	*b_srv;
	struct store	*b_store;
	void		(*b_done)(struct server *, struct rpc_write *,
			    const struct backup_result *);
	struct rpc_write *b_arg;
	char		 b_name[PROTO_BACKUP_NAME_MAX + 1];
	char		 b_part[PROTO_BACKUP_NAME_MAX + 16];	/* while written */
	char		 b_path[BACKUP_PATH_MAX];
	int		 b_dirfd;	/* backup_dir */
	int		 b_fd;		/* the new file in it */
	int		 b_pipe[2];	/* the thread's "done" to the loop */
	struct event	*b_ev;
	pthread_t	 b_thread;
	/* Set by the thread before it writes to b_pipe[1]. */
	int		 b_rc;		/* 0, an LMDB code or an errno */
	const char	*b_what;	/* the step that failed */
};

static int	backup_fail(struct backup_result *, int, const char *, ...)
		    __attribute__((__format__(printf, 3, 4)));
static void	*backup_thread(void *);
static void	backup_finished(evutil_socket_t, short, void *);
static void	backup_end(struct backup *, struct backup_result *);
static void	backup_free(struct backup *);
static void	backup_give(int, const struct stat *);
static int	backup_copy_file(const char *, const char *,
		    const struct stat *, char *, size_t);
static int	backup_path(char *, size_t, const char *, const char *);
static int	backup_name_set(struct backup *, const char *, const char *,
		    struct backup_result *);

static int
backup_fail(struct backup_result *res, int code, const char *fmt, ...)
{
	va_list	ap;

	res->br_code = code;
	va_start(ap, fmt);
	vsnprintf(res->br_msg, sizeof(res->br_msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* b's file names and path (and res's path) for name in dir. */
static int
backup_name_set(struct backup *b, const char *dir, const char *name,
    struct backup_result *res)
{
	if (backup_path(res->br_path, sizeof(res->br_path), dir, name) == -1)
		return backup_fail(res, PROTO_E_PARAMS, "backup_dir/NAME is "
		    "too long a path");
	snprintf(b->b_name, sizeof(b->b_name), "%s", name);
	/* Client names never start with '.', so this cannot be one. */
	snprintf(b->b_part, sizeof(b->b_part), ".%s.partial", name);
	snprintf(b->b_path, sizeof(b->b_path), "%s", res->br_path);
	return 0;
}

/* dir/name into buf; -1 when it does not fit. */
static int
backup_path(char *buf, size_t len, const char *dir, const char *name)
{
	int	n;

	n = snprintf(buf, len, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
backup_start(struct server *srv, const char *name,
    void (*done)(struct server *, struct rpc_write *,
    const struct backup_result *), struct rpc_write *arg,
    struct backup_result *res)
{
	struct daemon_conf	*conf = srv->srv_conf;
	const char		*dir = conf->dc_backup_dir;
	struct backup		*b = NULL;
	sigset_t		 all, old;
	struct tm		 tm;
	time_t			 now;
	char			 stamp[64], defname[80], msg[256];
	int			 rc, created = 0, n;

	memset(res, 0, sizeof(*res));
	if (dir == NULL)
		return backup_fail(res, PROTO_E_UNAVAILABLE,
		    "set backup_dir in the configuration");
	if (srv->srv_backup != NULL)
		return backup_fail(res, PROTO_E_UNAVAILABLE,
		    "a backup is already running");
	if (name == NULL) {
		now = time(NULL);
		if (gmtime_r(&now, &tm) == NULL || strftime(stamp,
		    sizeof(stamp), "wfvault-%Y%m%dT%H%M%SZ", &tm) == 0)
			return backup_fail(res, PROTO_E_INTERNAL,
			    "cannot format the time");
		snprintf(defname, sizeof(defname), "%s.mdb", stamp);
	} else if (proto_backup_name_valid(name, msg, sizeof(msg)) == -1)
		return backup_fail(res, PROTO_E_PARAMS, "%s", msg);
	if (backup_path(res->br_path, sizeof(res->br_path), dir,
	    name != NULL ? name : defname) == -1)
		return backup_fail(res, PROTO_E_PARAMS, "backup_dir/NAME is "
		    "too long a path");

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return backup_fail(res, PROTO_E_INTERNAL, "out of memory");
	b->b_srv = srv;
	b->b_store = srv->srv_store;
	b->b_done = done;
	b->b_arg = arg;
	b->b_dirfd = b->b_fd = b->b_pipe[0] = b->b_pipe[1] = -1;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		backup_fail(res, PROTO_E_UNAVAILABLE, "cannot create "
		    "backup_dir %s: %s", dir, strerror(errno));
		goto fail;
	}
	if ((b->b_dirfd = open(dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		backup_fail(res, PROTO_E_UNAVAILABLE, "cannot open backup_dir "
		    "%s: %s", dir, strerror(errno));
		goto fail;
	}
	/*
	 * Only ever a new plain file right in backup_dir: no path from the
	 * client, no following a link, no overwriting.  It is written under
	 * a hidden name and gets its own only once complete and synced, so
	 * a copy cut short by a crash never looks like a backup.  A default
	 * name that is taken (a backup earlier in the same second) gets a
	 * suffix instead: the client did not choose it, so it is no conflict.
	 */
	for (n = 1;; n++) {
		if (name == NULL && n > 1)
			snprintf(defname, sizeof(defname), "%s_%d.mdb", stamp,
			    n);
		if (backup_name_set(b, dir, name != NULL ? name : defname,
		    res) == -1)
			goto fail;
		if (faccessat(b->b_dirfd, b->b_name, F_OK,
		    AT_SYMLINK_NOFOLLOW) == 0) {
			if (name == NULL && n < BACKUP_DEFAULT_TRIES)
				continue;
			backup_fail(res, PROTO_E_CONFLICT, "backup_dir "
			    "already holds %s; choose another name",
			    b->b_name);
			goto fail;
		}
		if ((b->b_fd = openat(b->b_dirfd, b->b_part, O_WRONLY |
		    O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) != -1)
			break;
		if (errno == EEXIST && name == NULL &&
		    n < BACKUP_DEFAULT_TRIES)
			continue;
		if (errno == EEXIST)
			backup_fail(res, PROTO_E_CONFLICT, "a backup named %s "
			    "is being written, or one was cut short (remove "
			    "%s/%s)", b->b_name, dir, b->b_part);
		else
			backup_fail(res, PROTO_E_UNAVAILABLE, "cannot create "
			    "%s: %s", b->b_path, strerror(errno));
		goto fail;
	}
	created = 1;
	if (pipe2(b->b_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		backup_fail(res, PROTO_E_INTERNAL, "pipe: %s",
		    strerror(errno));
		goto fail;
	}
	b->b_ev = event_new(srv->srv_base, b->b_pipe[0], EV_READ,
	    backup_finished, b);
	if (b->b_ev == NULL || event_add(b->b_ev, NULL) == -1) {
		backup_fail(res, PROTO_E_INTERNAL, "out of memory");
		goto fail;
	}
	/* Signals are the loop's business: the thread takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&b->b_thread, NULL, backup_thread, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		backup_fail(res, PROTO_E_UNAVAILABLE, "cannot start the "
		    "backup thread: %s", strerror(rc));
		goto fail;
	}
	srv->srv_backup = b;
	log_info("backup to %s started", b->b_path);
	return 0;

fail:
	log_warnx("backup to %s: %s", res->br_path, res->br_msg);
	if (created)
		unlinkat(b->b_dirfd, b->b_part, 0);
	backup_free(b);
	return -1;
}

/* The copy, then the file and its directory entry on disk. */
static void *
backup_thread(void *arg)
{
	struct backup	*b = arg;
	char		 c = 1;
	int		 rc;

	if ((rc = store_copy_fd(b->b_store, b->b_fd)) != 0)
		b->b_what = "copy the store";
	else if (fsync(b->b_fd) == -1) {
		rc = errno;
		b->b_what = "sync the copy";
	} else if (renameat2(b->b_dirfd, b->b_part, b->b_dirfd, b->b_name,
	    RENAME_NOREPLACE) == -1) {
		rc = errno;
		b->b_what = "give the copy its name";
	} else if (fsync(b->b_dirfd) == -1) {
		rc = errno;
		b->b_what = "sync backup_dir";
	}
	b->b_rc = rc;
	/* The pipe is empty: one byte always fits. */
	while (write(b->b_pipe[1], &c, 1) == -1 && errno == EINTR)
		;
	return NULL;
}

static void
backup_finished(evutil_socket_t fd, short ev, void *arg)
{
	struct backup		*b = arg;
	struct server		*srv = b->b_srv;
	struct backup_result	 res;
	void			(*done)(struct server *, struct rpc_write *,
				    const struct backup_result *);
	struct rpc_write	*darg;
	ssize_t			 n;
	char			 c;

	/* Only a wakeup: the result is in b. */
	n = read(fd, &c, 1);
	(void)n;
	pthread_join(b->b_thread, NULL);
	done = b->b_done;
	darg = b->b_arg;
	/* Gone before done runs: done may start the next backup. */
	backup_end(b, &res);
	done(srv, darg, &res);
}

/* After the thread ended: the result, and the backup freed. */
static void
backup_end(struct backup *b, struct backup_result *res)
{
	struct stat	 st;

	memset(res, 0, sizeof(*res));
	snprintf(res->br_path, sizeof(res->br_path), "%s", b->b_path);
	if (b->b_rc == 0 && fstat(b->b_fd, &st) == -1) {
		b->b_rc = errno;
		b->b_what = "stat the copy";
	}
	if (b->b_rc == 0) {
		res->br_bytes = (uint64_t)st.st_size;
		log_info("backup written to %s (%llu bytes)", b->b_path,
		    (unsigned long long)res->br_bytes);
	} else {
		unlinkat(b->b_dirfd, b->b_part, 0);
		log_warnx("backup to %s failed: cannot %s: %s", b->b_path,
		    b->b_what, mdb_strerror(b->b_rc));
		backup_fail(res, PROTO_E_UNAVAILABLE, "the backup failed: "
		    "cannot %s: %s%s; the partial copy was removed",
		    b->b_what, mdb_strerror(b->b_rc), b->b_rc == ENOSPC ?
		    " (free some space in backup_dir)" : "");
	}
	b->b_srv->srv_backup = NULL;
	backup_free(b);
}

static void
backup_free(struct backup *b)
{
	if (b == NULL)
		return;
	if (b->b_ev != NULL)
		event_free(b->b_ev);
	if (b->b_pipe[0] != -1)
		close(b->b_pipe[0]);
	if (b->b_pipe[1] != -1)
		close(b->b_pipe[1]);
	if (b->b_fd != -1)
		close(b->b_fd);
	if (b->b_dirfd != -1)
		close(b->b_dirfd);
	free(b);
}

struct rpc_write *
backup_pending(struct server *srv)
{
	return srv->srv_backup != NULL ? srv->srv_backup->b_arg : NULL;
}

void
backup_release(struct server *srv)
{
	struct backup		*b = srv->srv_backup;
	struct backup_result	 res;
	void			(*done)(struct server *, struct rpc_write *,
				    const struct backup_result *);
	struct rpc_write	*darg;

	if (b == NULL)
		return;
	/* The copy cannot be cut short; the store must outlive it. */
	log_info("waiting for the backup to %s to finish", b->b_path);
	pthread_join(b->b_thread, NULL);
	done = b->b_done;
	darg = b->b_arg;
	backup_end(b, &res);
	done(srv, darg, &res);
}

/*
 * Every process that has an LMDB environment open holds a shared lock on
 * the first byte of its lock.mdb (LMDB's own test for "am I the only
 * user?"), so an exclusive lock on that byte means nobody has it open; and
 * while we hold it, a wfvaultd that starts waits in mdb_env_open.
 */
int
backup_exclusive(const struct daemon_conf *conf, int *lockfd, char *err,
    size_t errlen)
{
	struct sockaddr_un	 sun;
	struct flock		 fl;
	struct stat		 st;
	char			 path[BACKUP_PATH_MAX];
	int			 fd;

	*lockfd = -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(conf->dc_socket) < sizeof(sun.sun_path)) {
		memcpy(sun.sun_path, conf->dc_socket,
		    strlen(conf->dc_socket));
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
		    0)) != -1) {
			if (connect(fd, (struct sockaddr *)&sun,
			    sizeof(sun)) == 0) {
				close(fd);
				snprintf(err, errlen, "a wfvaultd is running "
				    "on %s; stop it first", conf->dc_socket);
				return -1;
			}
			close(fd);
		}
	}

	if (backup_path(path, sizeof(path), conf->dc_data_dir,
	    "lock.mdb") == -1) {
		snprintf(err, errlen, "data_dir is too long a path");
		return -1;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600)) == -1) {
		/* No data_dir: no environment, nobody using it. */
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 1;
	if (fcntl(fd, F_SETLK, &fl) == -1) {
		if (errno == EACCES || errno == EAGAIN) {
			memset(&fl, 0, sizeof(fl));
			fl.l_type = F_WRLCK;
			fl.l_whence = SEEK_SET;
			fl.l_len = 1;
			if (fcntl(fd, F_GETLK, &fl) == 0 &&
			    fl.l_type != F_UNLCK)
				snprintf(err, errlen, "process %d has the "
				    "store in %s open (a wfvaultd on another "
				    "socket?); stop it first", (int)fl.l_pid,
				    conf->dc_data_dir);
			else
				snprintf(err, errlen, "another process has "
				    "the store in %s open; stop it first",
				    conf->dc_data_dir);
		} else
			snprintf(err, errlen, "cannot lock %s: %s", path,
			    strerror(errno));
		close(fd);
		return -1;
	}
	if (stat(conf->dc_data_dir, &st) == 0)
		backup_give(fd, &st);
	*lockfd = fd;
	return 0;
}

void
backup_exclusive_end(int lockfd)
{
	if (lockfd != -1)
		close(lockfd);
}

/*
 * Run as root, files made in data_dir go to data_dir's owner, so the
 * daemon's own user can open them.
 */
static void
backup_give(int fd, const struct stat *dirst)
{
	if (geteuid() == 0 && dirst->st_uid != 0 &&
	    fchown(fd, dirst->st_uid, dirst->st_gid) == -1)
		log_warn("cannot give a file in data_dir to uid %u",
		    (unsigned)dirst->st_uid);
}

/* Copies src into a new file dst (0600), synced. */
static int
backup_copy_file(const char *src, const char *dst, const struct stat *dirst,
    char *err, size_t errlen)
{
	struct stat	 st;
	char		*buf = NULL;
	ssize_t		 n, w;
	size_t		 off;
	int		 in, out = -1, rc = -1;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", src,
		    strerror(errno));
		return -1;
	}
	if (fstat(in, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", src);
		goto done;
	}
	if ((buf = malloc(BACKUP_COPY_CHUNK)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	/* A leftover of an interrupted restore is ours to replace. */
	if (unlink(dst) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove %s: %s", dst,
		    strerror(errno));
		goto done;
	}
	if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "cannot create %s: %s", dst,
		    strerror(errno));
		goto done;
	}
	backup_give(out, dirst);
	for (;;) {
		if ((n = read(in, buf, BACKUP_COPY_CHUNK)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "cannot read %s: %s", src,
			    strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		for (off = 0; off < (size_t)n; off += (size_t)w) {
			if ((w = write(out, buf + off, (size_t)n - off)) ==
			    -1) {
				if (errno == EINTR) {
					w = 0;
					continue;
				}
				snprintf(err, errlen, "cannot write %s: %s",
				    dst, strerror(errno));
				goto done;
			}
		}
	}
	if (fsync(out) == -1) {
		snprintf(err, errlen, "cannot sync %s: %s", dst,
		    strerror(errno));
		goto done;
	}
	rc = 0;
done:
	if (out != -1 && close(out) == -1 && rc == 0) {
		snprintf(err, errlen, "cannot write %s: %s", dst,
		    strerror(errno));
		rc = -1;
	}
	if (rc == -1 && out != -1)
		unlink(dst);
	close(in);
	free(buf);
	return rc;
}

int
backup_restore(const struct daemon_conf *conf, const char *src)
{
	const char		*dir = conf->dc_data_dir;
	struct store_params	 sp;
	struct store_verify	 sv;
	struct store		*store = NULL;
	struct stat		 dirst, st;
	struct tm		 tm;
	MDB_txn			*txn = NULL;
	unsigned char		*mk = NULL, *next = NULL;
	const unsigned char	*key;
	time_t			 now;
	char			 err[3 * BACKUP_PATH_MAX], verr[1024];
	char			 stamp[32];
	char			 tmp[BACKUP_PATH_MAX], cur[BACKUP_PATH_MAX];
	char			 old[BACKUP_PATH_MAX + 64];
	int			 lockfd = -1, dirfd = -1, copied = 0, rc, n;
	int			 status = 1, rotating = 0;

	old[0] = '\0';
	if (crypto_init(err, sizeof(err)) == -1 ||
	    keys_load(conf, KEYS_CURRENT, &mk, err, sizeof(err)) == -1)
		goto fail;
	if (backup_path(tmp, sizeof(tmp), dir, "data.mdb.restoring") == -1 ||
	    backup_path(cur, sizeof(cur), dir, "data.mdb") == -1) {
		snprintf(err, sizeof(err), "data_dir is too long a path");
		goto fail;
	}
	/* A new machine has no data_dir yet. */
	if (mkdir(dir, 0700) == -1) {
		if (errno != EEXIST) {
			snprintf(err, sizeof(err), "cannot create %s: %s", dir,
			    strerror(errno));
			goto fail;
		}
	} else if (geteuid() == 0)
		fprintf(stderr, "wfvaultd: created %s owned by root; give it "
		    "to the daemon's user (chown -R wfvault: %s) before "
		    "starting wfvaultd\n", dir, dir);
	if (backup_exclusive(conf, &lockfd, err, sizeof(err)) == -1)
		goto fail;
	if (stat(dir, &dirst) == -1 || (dirfd = open(dir, O_RDONLY |
	    O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(err, sizeof(err), "cannot open %s: %s", dir,
		    strerror(errno));
		goto fail;
	}

	/*
	 * What is verified is the copy that gets installed, so the backup
	 * changing meanwhile cannot slip anything past the check.
	 */
	if (backup_copy_file(src, tmp, &dirst, err, sizeof(err)) == -1)
		goto fail;
	copied = 1;
	key = mk;
	rc = store_open_file(&store, tmp, mk, verr, sizeof(verr));
	if (rc == STORE_E_KEY && keys_configured(conf, KEYS_NEXT)) {
		if (keys_load(conf, KEYS_NEXT, &next, err, sizeof(err)) == -1)
			goto fail;
		key = next;
		rc = store_open_file(&store, tmp, next, verr, sizeof(verr));
	}
	if (rc == STORE_E_KEY) {
		snprintf(err, sizeof(err), "%s is sealed with another master "
		    "key than the configured one%s; nothing was changed", src,
		    next != NULL ? " (or the next one)" : "");
		goto fail;
	}
	if (rc != STORE_OK) {
		snprintf(err, sizeof(err), "%s is refused: %s; nothing was "
		    "changed", src, verr);
		goto fail;
	}
	/* Taken mid-rotation: its records are under both keys. */
	rotating = store_rotating(store);
	if (keys_store_resume(store, src, conf, verr, sizeof(verr)) == -1) {
		snprintf(err, sizeof(err), "%s; nothing was changed", verr);
		goto fail;
	}
	if ((rc = store_txn_begin(store, NULL, 0, &txn)) != STORE_OK) {
		snprintf(err, sizeof(err), "cannot read %s: %s", src,
		    store_strerror(rc));
		goto fail;
	}
	if (store_verify(store, txn, &sv, verr, sizeof(verr)) != STORE_OK) {
		snprintf(err, sizeof(err), "%s failed verification: %s; "
		    "nothing was changed", src, verr);
		goto fail;
	}
	store_txn_abort(txn);
	txn = NULL;
	store_close(store);
	store = NULL;
	printf("verified %llu tenants, %llu versions\n",
	    (unsigned long long)sv.sv_tenants,
	    (unsigned long long)sv.sv_versions);

	if (stat(cur, &st) == 0) {
		now = time(NULL);
		if (gmtime_r(&now, &tm) == NULL || strftime(stamp,
		    sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
			snprintf(stamp, sizeof(stamp), "%lld",
			    (long long)now);
		/*
		 * link() below never replaces: a second restore within the
		 * same second gets the next free suffix.
		 */
		snprintf(old, sizeof(old), "%s.before-restore-%s", cur, stamp);
		for (n = 1; lstat(old, &st) == 0 && n < 100; n++)
			snprintf(old, sizeof(old), "%s.before-restore-%s-%d",
			    cur, stamp, n);
		/*
		 * A second name for the current store, then one rename over
		 * it: data.mdb is the old or the new store at every moment,
		 * never missing (wfvaultd would start an empty vault).
		 */
		if (link(cur, old) == -1) {
			snprintf(err, sizeof(err), "cannot keep %s as %s: %s; "
			    "nothing was changed", cur, old, strerror(errno));
			old[0] = '\0';
			goto fail;
		}
	}
	if (rename(tmp, cur) == -1) {
		snprintf(err, sizeof(err), "cannot rename %s to %s: %s; "
		    "nothing was changed", tmp, cur, strerror(errno));
		if (old[0] != '\0')
			unlink(old);
		goto fail;
	}
	copied = 0;
	if (fsync(dirfd) == -1) {
		snprintf(err, sizeof(err), "cannot sync %s: %s", dir,
		    strerror(errno));
		goto fail;
	}

	/*
	 * Opened once the usual way while we still hold the lock: LMDB then
	 * resets lock.mdb to the restored file, and the key is checked.
	 */
	memset(&sp, 0, sizeof(sp));
	sp.sp_dir = dir;
	sp.sp_map_size = conf->dc_map_size;
	sp.sp_keep_versions = conf->dc_keep_versions;
	if ((rc = store_open(&store, &sp, key, err, sizeof(err))) != STORE_OK)
		goto fail;
	printf("restored %s into %s\n", src, cur);
	if (old[0] != '\0')
		printf("the previous store is in %s\n", old);
	if (key == next)
		printf("the backup is sealed with the next master key: install "
		    "it as the master key\n");
	if (rotating)
		printf("the backup was taken during a master key rotation: "
		    "wfvaultd finishes it when it starts (keep both keys "
		    "configured until it logs that it did)\n");
	status = 0;
	goto done;
fail:
	fprintf(stderr, "wfvaultd: %s\n", err);
done:
	store_txn_abort(txn);
	store_close(store);
	if (copied)
		unlink(tmp);
	if (dirfd != -1)
		close(dirfd);
	backup_exclusive_end(lockfd);
	crypto_key_free(mk);
	crypto_key_free(next);
	return status;
}
