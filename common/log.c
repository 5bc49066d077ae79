/*
 * The one logger of wfvaultd and wfvault-sync: plain lines on stderr, which
 * systemd sends to the journal.  Never given a secret value.  It does not
 * exit: fatal() and fatalx() belong to each program's main.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int		 log_debug_on;
static const char	*log_prog = "wfvault";
/* What this thread works for (wfvault-sync: a target's name), or NULL. */
static _Thread_local const char *log_ctx;

void
log_init(const char *prog, int debug)
{
	log_prog = prog;
	log_debug_on = debug;
}

void
log_context(const char *ctx)
{
	log_ctx = ctx;
}

void
log_vwrite(const char *suffix, const char *fmt, va_list ap)
{
	char	line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	/* One fprintf a line: lines of several threads do not mix. */
	fprintf(stderr, "%s: %s%s%s%s%s\n", log_prog,
	    log_ctx != NULL ? log_ctx : "", log_ctx != NULL ? ": " : "",
	    line, suffix != NULL ? ": " : "", suffix != NULL ? suffix : "");
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
