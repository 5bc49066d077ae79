/*
 * The audit log: one JSON line per request (who, what, which tenant and
 * field names, outcome), appended with a single write.  Never values.
 * Failures and hellos are coalesced per uid (see audit_limited), so a peer
 * that sends them in a loop cannot fill the disk or the journal.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "wfvaultd.h"

/*
 * What is counted per uid: "ok" (of hello, the one method open to every
 * peer) and each error kind, in proto_err_kind's words.
 */
static const int audit_codes[] = {
	0, PROTO_E_PARSE, PROTO_E_INVALID_REQUEST, PROTO_E_METHOD,
	PROTO_E_PARAMS, PROTO_E_INTERNAL, PROTO_E_DENIED, PROTO_E_NOT_FOUND,
	PROTO_E_CONFLICT, PROTO_E_TOO_LARGE, PROTO_E_UNAVAILABLE,
	PROTO_E_INTEGRITY,
};
#define AUDIT_KINDS	(sizeof(audit_codes) / sizeof(audit_codes[0]))

/* Requests of one uid counted, not written, since its burst ran out. */
struct audit_peer {
	uid_t		 ap_uid;
	gid_t		 ap_gid;	/* of the latest one counted */
	pid_t		 ap_pid;
	time_t		 ap_start;	/* CLOCK_MONOTONIC */
	unsigned	 ap_written;	/* full lines in this interval */
	uint64_t	 ap_counted;	/* sum of ap_count */
	uint64_t	 ap_count[AUDIT_KINDS];
	struct timespec	 ap_first[AUDIT_KINDS]; /* CLOCK_REALTIME */
};

/* Uids tracked at once; beyond that requests are written one by one. */
#define AUDIT_PEERS	256

struct audit {
	struct audit_peer a_peers[AUDIT_PEERS];
	size_t		 a_npeers;
	int		 a_fd;		/* -1: logging disabled */
	char		*a_path;	/* NULL: logging disabled */
	uint64_t	 a_failures;	/* lines lost since audit_open */
	int		 a_last_errno;	/* of the latest lost line */
	int		 a_failing;	/* the last write failed */
};

static int
audit_open_fd(const char *path, char *err, size_t errlen)
{
	struct stat	st;
	int		fd;

	/*
	 * O_NOFOLLOW: a symlink planted at the path must not redirect the
	 * log; O_NONBLOCK only so a FIFO cannot hang start-up before we
	 * refuse it.
	 */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd == -1) {
		/* What a FIFO without a reader or a socket file gives. */
		snprintf(err, errlen, "audit log %s: %s", path,
		    errno == ENXIO ? "not a regular file" : strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "audit log %s: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "audit log %s: not a regular file",
		    path);
		close(fd);
		return -1;
	}
	if (fcntl(fd, F_SETFL, O_WRONLY | O_APPEND) == -1) {
		snprintf(err, errlen, "audit log %s: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (st.st_mode & 077)
		log_warnx("audit log %s is accessible to group or others "
		    "(mode %04o); chmod 0600 it", path,
		    (unsigned)(st.st_mode & 07777));
	return fd;
}

int
audit_open(struct audit **ap, const char *path, char *err, size_t errlen)
{
	struct audit	*a;

	*ap = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	a->a_fd = -1;
	if (path != NULL) {
		if ((a->a_path = strdup(path)) == NULL) {
			snprintf(err, errlen, "%s", strerror(errno));
			free(a);
			return -1;
		}
		if ((a->a_fd = audit_open_fd(path, err, errlen)) == -1) {
			free(a->a_path);
			free(a);
			return -1;
		}
	}
	*ap = a;
	return 0;
}

int
audit_reopen(struct audit *a, char *err, size_t errlen)
{
	int	fd;

	if (a == NULL || a->a_path == NULL)
		return 0;
	if ((fd = audit_open_fd(a->a_path, err, errlen)) == -1)
		return -1;
	close(a->a_fd);
	a->a_fd = fd;
	return 0;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	/* No count is lost at exit. */
	audit_flush(a, 1);
	if (a->a_fd != -1)
		close(a->a_fd);
	free(a->a_path);
	free(a);
}

uint64_t
audit_failures(const struct audit *a, int *last_errno)
{
	if (last_errno != NULL)
		*last_errno = a != NULL ? a->a_last_errno : 0;
	return a != NULL ? a->a_failures : 0;
}

/* Counts a lost line; logs only when writes start failing, not per line. */
static void
audit_failed(struct audit *a, int error)
{
	a->a_failures++;
	a->a_last_errno = error;
	if (!a->a_failing) {
		errno = error;
		log_warn("audit log %s: lines are being lost", a->a_path);
	}
	a->a_failing = 1;
}

/* Sets key to a string, or to null when s is NULL; 0 or -1. */
static int
audit_set_string(json_t *obj, const char *key, const char *s)
{
	return json_object_set_new(obj, key, s != NULL ? json_string(s) :
	    json_null());
}

/* ts as "2026-01-02T03:04:05.678Z". */
static void
audit_stamp(const struct timespec *ts, char *buf, size_t buflen)
{
	struct tm	tm;
	size_t		len;

	gmtime_r(&ts->tv_sec, &tm);
	len = strftime(buf, buflen, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + len, buflen - len, ".%03ldZ", ts->tv_nsec / 1000000);
}

/* A new object with the time and who; NULL when out of memory. */
static json_t *
audit_head(uid_t uid, gid_t gid, pid_t pid)
{
	struct timespec	 ts;
	json_t		*obj;
	char		 stamp[64];

	clock_gettime(CLOCK_REALTIME, &ts);
	audit_stamp(&ts, stamp, sizeof(stamp));
	if ((obj = json_object()) == NULL)
		return NULL;
	if (audit_set_string(obj, "time", stamp) == -1 ||
	    json_object_set_new(obj, "uid", json_integer((json_int_t)uid)) ==
	    -1 ||
	    json_object_set_new(obj, "gid", json_integer((json_int_t)gid)) ==
	    -1 ||
	    json_object_set_new(obj, "pid", json_integer((json_int_t)pid)) ==
	    -1) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/* Appends obj as one line (a single write); counts a failure. */
static void
audit_write(struct audit *a, json_t *obj)
{
	char	*text = NULL, *line = NULL;
	size_t	 len;
	ssize_t	 n;
	int	 error = ENOMEM;

	if (obj == NULL || (text = json_dumps(obj, JSON_COMPACT)) == NULL)
		goto fail;
	len = strlen(text);
	if ((line = malloc(len + 1)) == NULL)
		goto fail;
	memcpy(line, text, len);
	line[len++] = '\n';

	/* One write, so concurrent appenders never interleave a line. */
	do {
		n = write(a->a_fd, line, len);
	} while (n == -1 && errno == EINTR);
	if (n == -1) {
		error = errno;
		goto fail;
	}
	if ((size_t)n != len) {
		error = ENOSPC;
		goto fail;
	}
	a->a_failing = 0;
	goto out;
fail:
	audit_failed(a, error);
out:
	free(line);
	free(text);
}

void
audit_log(struct audit *a, const struct peer *peer, const char *method,
    const char *tenant, json_t *fields, const char *outcome,
    uint64_t version)
{
	json_t		*obj = NULL, *names, *v;
	size_t		 i;

	if (a == NULL || a->a_fd == -1)
		return;

	if ((obj = audit_head(peer->p_uid, peer->p_gid, peer->p_pid)) ==
	    NULL ||
	    audit_set_string(obj, "method", method) == -1)
		goto fail;
	if (tenant != NULL && audit_set_string(obj, "tenant", tenant) == -1)
		goto fail;
	if (fields != NULL && json_is_array(fields)) {
		/* Copy names only: anything but a string is not a name. */
		if ((names = json_array()) == NULL ||
		    json_object_set_new(obj, "fields", names) == -1)
			goto fail;
		json_array_foreach(fields, i, v) {
			if (json_is_string(v) &&
			    json_array_append(names, v) == -1)
				goto fail;
		}
	}
	if (version != 0 && json_object_set_new(obj, "version",
	    json_integer((json_int_t)version)) == -1)
		goto fail;
	if (audit_set_string(obj, "outcome", outcome) == -1)
		goto fail;
	audit_write(a, obj);
	json_decref(obj);
	return;
fail:
	audit_failed(a, ENOMEM);
	json_decref(obj);
}

/* The slot of code in audit_codes, or -1 for a code it does not know. */
static int
audit_kind(int code)
{
	size_t	i;

	for (i = 0; i < AUDIT_KINDS; i++)
		if (audit_codes[i] == code)
			return (int)i;
	return -1;
}

/*
 * Writes the counts of ap, one audit line per outcome kind and one journal
 * line for them all, and empties them: {"time","uid","gid","pid",
 * "outcome":K,"count":N,"since":T}, N requests with outcome K from T on
 * that were not written one by one ("method":"hello" with "ok").
 */
static void
audit_peer_write(struct audit *a, struct audit_peer *ap)
{
	json_t	*obj;
	char	 since[64], kinds[512];
	size_t	 i, len = 0;
	int	 n;

	if (ap->ap_counted == 0)
		return;
	kinds[0] = '\0';
	for (i = 0; i < AUDIT_KINDS; i++) {
		if (ap->ap_count[i] == 0)
			continue;
		n = snprintf(kinds + len, sizeof(kinds) - len, "%s%s %llu",
		    len > 0 ? ", " : "", audit_codes[i] == 0 ? "hello" :
		    proto_err_kind(audit_codes[i]),
		    (unsigned long long)ap->ap_count[i]);
		if (n > 0 && (size_t)n < sizeof(kinds) - len)
			len += (size_t)n;
		if (a->a_fd == -1)
			continue;
		audit_stamp(&ap->ap_first[i], since, sizeof(since));
		obj = audit_head(ap->ap_uid, ap->ap_gid, ap->ap_pid);
		if (obj == NULL ||
		    (audit_codes[i] == 0 &&
		    audit_set_string(obj, "method", "hello") == -1) ||
		    audit_set_string(obj, "outcome", audit_codes[i] == 0 ?
		    "ok" : proto_err_kind(audit_codes[i])) == -1 ||
		    json_object_set_new(obj, "count",
		    json_integer((json_int_t)ap->ap_count[i])) == -1 ||
		    audit_set_string(obj, "since", since) == -1)
			audit_failed(a, ENOMEM);
		else
			audit_write(a, obj);
		json_decref(obj);
	}
	log_info("uid %u: %llu more requests in %d s, counted in the audit "
	    "log: %s", (unsigned)ap->ap_uid,
	    (unsigned long long)ap->ap_counted, AUDIT_INTERVAL, kinds);
	memset(ap->ap_count, 0, sizeof(ap->ap_count));
	ap->ap_counted = 0;
}

int
audit_limited(struct audit *a, const struct peer *peer, const char *method,
    const char *tenant, json_t *fields, int code)
{
	struct audit_peer	*ap = NULL;
	time_t			 now = util_now_ms() / 1000;
	const char		*outcome;
	size_t			 i;
	int			 k;

	if (a == NULL)
		return 1;
	outcome = code == 0 ? "ok" : proto_err_kind(code);
	/* The counts could not say which method or what it was. */
	if ((k = audit_kind(code)) == -1 ||
	    (code == 0 && strcmp(method, "hello") != 0)) {
		audit_log(a, peer, method, tenant, fields, outcome, 0);
		return 1;
	}
	for (i = 0; i < a->a_npeers; i++) {
		if (a->a_peers[i].ap_uid == peer->p_uid) {
			ap = &a->a_peers[i];
			break;
		}
	}
	if (ap != NULL && now - ap->ap_start < AUDIT_INTERVAL) {
		/* Once counting began, full lines wait for the next one. */
		if (ap->ap_written < AUDIT_BURST && ap->ap_counted == 0) {
			ap->ap_written++;
			audit_log(a, peer, method, tenant, fields, outcome, 0);
			return 1;
		}
		if (ap->ap_count[k]++ == 0)
			clock_gettime(CLOCK_REALTIME, &ap->ap_first[k]);
		ap->ap_counted++;
		ap->ap_gid = peer->p_gid;
		ap->ap_pid = peer->p_pid;
		return 0;
	}
	/* A full table may hold uids whose interval is over. */
	if (ap == NULL && a->a_npeers == AUDIT_PEERS)
		(void)audit_flush(a, 0);
	/* A new interval: what the last one counted goes first. */
	if (ap != NULL)
		audit_peer_write(a, ap);
	else if (a->a_npeers < AUDIT_PEERS) {
		ap = &a->a_peers[a->a_npeers++];
		memset(ap, 0, sizeof(*ap));
		ap->ap_uid = peer->p_uid;
	}
	if (ap != NULL) {
		ap->ap_start = now;
		ap->ap_written = 1;
	}
	audit_log(a, peer, method, tenant, fields, outcome, 0);
	return 1;
}

int
audit_flush(struct audit *a, int all)
{
	time_t	now = util_now_ms() / 1000;
	size_t	i;

	if (a == NULL)
		return 0;
	for (i = 0; i < a->a_npeers; ) {
		if (!all &&
		    now - a->a_peers[i].ap_start < AUDIT_INTERVAL) {
			i++;
			continue;
		}
		audit_peer_write(a, &a->a_peers[i]);
		/* Its interval is over: the uid's next request is written. */
		a->a_peers[i] = a->a_peers[--a->a_npeers];
	}
	return a->a_npeers > 0;
}
