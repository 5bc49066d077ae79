/*
 * The audit log: one JSON line per request (who, what, which tenant and
 * field names, outcome), appended with a single write.  Never values.
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

struct audit {
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

void
audit_log(struct audit *a, const struct peer *peer, const char *method,
    const char *tenant, json_t *fields, const char *outcome)
{
	struct timespec	 ts;
	struct tm	 tm;
	json_t		*obj = NULL, *names, *v;
	char		 stamp[64], *text = NULL, *line = NULL;
	size_t		 len, i;
	ssize_t		 n;
	int		 error = ENOMEM;

	if (a == NULL || a->a_fd == -1)
		return;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + len, sizeof(stamp) - len, ".%03ldZ",
	    ts.tv_nsec / 1000000);

	if ((obj = json_object()) == NULL)
		goto fail;
	if (audit_set_string(obj, "time", stamp) == -1 ||
	    json_object_set_new(obj, "uid",
	    json_integer((json_int_t)peer->p_uid)) == -1 ||
	    json_object_set_new(obj, "gid",
	    json_integer((json_int_t)peer->p_gid)) == -1 ||
	    json_object_set_new(obj, "pid",
	    json_integer((json_int_t)peer->p_pid)) == -1 ||
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

	if ((text = json_dumps(obj, JSON_COMPACT)) == NULL)
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
	json_decref(obj);
}
