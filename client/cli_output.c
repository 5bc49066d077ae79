/*
 * wfvault's standard output: writes go through a buffer of our own (not
 * stdio's) so the values that pass through it can be wiped, and every
 * write error is reported.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wfvault.h"

static int	out_json_nl(json_t *, size_t, int, struct cli_error *);

static char	out_buf[16384];
static size_t	out_len;

/* Writes all of buf to fd 1; EPIPE (the reader went away) exits quietly. */
static int
out_fd_write(const char *buf, size_t len, struct cli_error *err)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(STDOUT_FILENO, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EPIPE)
				return cli_fail(err, CLI_EXIT_ERROR, "%s", "");
			return cli_fail(err, CLI_EXIT_ERROR,
			    "cannot write to standard output: %s",
			    strerror(errno));
		}
		buf += n;
		len -= n;
	}
	return 0;
}

int
out_flush(struct cli_error *err)
{
	int	rv;

	rv = out_fd_write(out_buf, out_len, err);
	explicit_bzero(out_buf, out_len);
	out_len = 0;
	return rv;
}

void
out_wipe(void)
{
	explicit_bzero(out_buf, sizeof(out_buf));
	out_len = 0;
}

int
out_write(const void *buf, size_t len, struct cli_error *err)
{
	if (len > sizeof(out_buf) - out_len) {
		if (out_flush(err) == -1)
			return -1;
		if (len > sizeof(out_buf))
			return out_fd_write(buf, len, err);
	}
	memcpy(out_buf + out_len, buf, len);
	out_len += len;
	return 0;
}

int
out_puts(const char *s, struct cli_error *err)
{
	return out_write(s, strlen(s), err);
}

int
out_printf(struct cli_error *err, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;
	int	 len, rv;

	va_start(ap, fmt);
	len = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (len == -1)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	rv = out_write(s, len, err);
	explicit_bzero(s, len);
	free(s);
	return rv;
}

int
out_json(json_t *json, size_t flags, struct cli_error *err)
{
	return out_json_nl(json, flags, 1, err);
}

int
out_json_raw(json_t *json, size_t flags, struct cli_error *err)
{
	return out_json_nl(json, flags, 0, err);
}

static int
out_json_nl(json_t *json, size_t flags, int nl, struct cli_error *err)
{
	char	*s;
	size_t	 len, got;
	int	 rv;

	/* json_dumpb into our own buffer, so we can wipe it afterwards. */
	if ((len = json_dumpb(json, NULL, 0, flags)) == 0)
		return cli_fail(err, CLI_EXIT_ERROR,
		    "cannot format the reply as JSON");
	if ((s = malloc(len + 1)) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	got = json_dumpb(json, s, len, flags);
	if (got != len) {
		rv = cli_fail(err, CLI_EXIT_ERROR,
		    "cannot format the reply as JSON");
		goto out;
	}
	if (nl)
		s[len++] = '\n';
	rv = out_write(s, len, err);
out:
	explicit_bzero(s, len);
	free(s);
	return rv;
}
