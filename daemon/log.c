/*
 * wfvaultd's one logger: plain lines on stderr, which systemd sends to the
 * journal.  Never given a secret value.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wfvaultd.h"

static int log_debug_on;

static void	log_vwrite(const char *, const char *, va_list)
		    __attribute__((__format__(printf, 2, 0)));

void
log_init(int debug)
{
	log_debug_on = debug;
}

static void
log_vwrite(const char *suffix, const char *fmt, va_list ap)
{
	char	line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (suffix != NULL)
		fprintf(stderr, "wfvaultd: %s: %s\n", line, suffix);
	else
		fprintf(stderr, "wfvaultd: %s\n", line);
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	char	 ebuf[128];
	int	 saved = errno;

	va_start(ap, fmt);
	log_vwrite(strerror_r(saved, ebuf, sizeof(ebuf)), fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (!log_debug_on)
		return;
	va_start(ap, fmt);
	log_vwrite(NULL, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	char	 ebuf[128];
	int	 saved = errno;

	va_start(ap, fmt);
	log_vwrite(strerror_r(saved, ebuf, sizeof(ebuf)), fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
