/*
 * The audit log: one JSON line per request (who, what, which tenant and
 * field names, outcome), appended with a single write.  Never values.
 * Denials are coalesced per uid (see audit_denied), so a peer that is
 * refused in a loop cannot fill the disk or the journal.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wfvaultd.h"

/* Denials of one uid counted, not written, since the line of the first. */
struct audit_denials {
	uid_t		 ad_uid;
	gid_t		 ad_gid;	/* of the latest one counted */
	pid_t		 ad_pid;
	time_t		 ad_start;	/* CLOCK_MONOTONIC: interval start */
	unsigned	 ad_written;	/* full lines in this interval */
	struct timespec	 ad_first;	/* CLOCK_REALTIME: first counted */
	uint64_t	 ad_count;
};

/* Uids tracked at once; beyond that denials are written one by one. */
#define AUDIT_DENIAL_UIDS	256

struct audit {
	struct audit_denials a_denials[AUDIT_DENIAL_UIDS];
	size_t		 a_ndenials;
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
    const char *tenant, json_t *fields, const char *outcome)
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
	if (audit_set_string(obj, "outcome", outcome) == -1)
		goto fail;
	audit_write(a, obj);
	json_decref(obj);
	return;
fail:
	audit_failed(a, ENOMEM);
	json_decref(obj);
}

static time_t
audit_monotonic(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/*
 * Writes the count of ad as one line (and one journal line) and empties
 * it: {"time","uid","gid","pid","outcome":"permission_denied","count":N,
 * "since":T}, N denials from T on that were not written one by one.
 */
static void
audit_denials_write(struct audit *a, struct audit_denials *ad)
{
	json_t	*obj;
	char	 since[64];

	if (ad->ad_count == 0)
		return;
	log_info("denied: uid %u: %llu more denied requests in %d s, "
	    "counted in the audit log", (unsigned)ad->ad_uid,
	    (unsigned long long)ad->ad_count, AUDIT_DENIAL_INTERVAL);
	if (a->a_fd != -1) {
		audit_stamp(&ad->ad_first, since, sizeof(since));
		obj = audit_head(ad->ad_uid, ad->ad_gid, ad->ad_pid);
		if (obj == NULL ||
		    audit_set_string(obj, "outcome",
		    proto_err_kind(PROTO_E_DENIED)) == -1 ||
		    json_object_set_new(obj, "count",
		    json_integer((json_int_t)ad->ad_count)) == -1 ||
		    audit_set_string(obj, "since", since) == -1)
			audit_failed(a, ENOMEM);
		else
			audit_write(a, obj);
		json_decref(obj);
	}
	ad->ad_count = 0;
}

int
audit_denied(struct audit *a, const struct peer *peer, const char *method,
    const char *tenant, json_t *fields)
{
	struct audit_denials	*ad = NULL;
	time_t			 now = audit_monotonic();
	size_t			 i;

	if (a == NULL)
		return 1;
	for (i = 0; i < a->a_ndenials; i++) {
		if (a->a_denials[i].ad_uid == peer->p_uid) {
			ad = &a->a_denials[i];
			break;
		}
	}
	if (ad != NULL && now - ad->ad_start < AUDIT_DENIAL_INTERVAL) {
		if (ad->ad_written < AUDIT_DENIAL_BURST && ad->ad_count == 0) {
			ad->ad_written++;
			audit_log(a, peer, method, tenant, fields,
			    proto_err_kind(PROTO_E_DENIED));
			return 1;
		}
		if (ad->ad_count++ == 0)
			clock_gettime(CLOCK_REALTIME, &ad->ad_first);
		ad->ad_gid = peer->p_gid;
		ad->ad_pid = peer->p_pid;
		return 0;
	}
	/* A full table may hold uids whose interval is over. */
	if (ad == NULL && a->a_ndenials == AUDIT_DENIAL_UIDS)
		(void)audit_flush(a, 0);
	/* A new interval: what the last one counted goes first. */
	if (ad != NULL)
		audit_denials_write(a, ad);
	else if (a->a_ndenials < AUDIT_DENIAL_UIDS) {
		ad = &a->a_denials[a->a_ndenials++];
		memset(ad, 0, sizeof(*ad));
		ad->ad_uid = peer->p_uid;
	}
	if (ad != NULL) {
		ad->ad_start = now;
		ad->ad_written = 1;
	}
	audit_log(a, peer, method, tenant, fields,
	    proto_err_kind(PROTO_E_DENIED));
	return 1;
}

int
audit_flush(struct audit *a, int all)
{
	time_t	now = audit_monotonic();
	size_t	i;

	if (a == NULL)
		return 0;
	for (i = 0; i < a->a_ndenials; ) {
		if (!all &&
		    now - a->a_denials[i].ad_start < AUDIT_DENIAL_INTERVAL) {
			i++;
			continue;
		}
		audit_denials_write(a, &a->a_denials[i]);
		/* Its interval is over: the uid's next denial is written. */
		a->a_denials[i] = a->a_denials[--a->a_ndenials];
	}
	return a->a_ndenials > 0;
}
