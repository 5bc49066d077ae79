/*
 * The logger shared by wfvaultd and wfvault-sync.  Lines go to stderr
 * prefixed with the program name; log_warn appends the errno text.
 */
#ifndef WFVAULT_LOG_H
#define WFVAULT_LOG_H

#include <stdarg.h>

/* prog is borrowed for the life of the process; debug enables log_debug. */
void	log_init(const char *prog, int debug);
void	log_warn(const char *, ...) __attribute__((__format__(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((__format__(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((__format__(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((__format__(printf, 1, 2)));
/*
 * Lines this thread logs from now on read "prog: ctx: ..." (ctx borrowed
 * for as long as it is set); NULL: no context.
 */
void	log_context(const char *ctx);
/* One line: fmt, then ": suffix" when suffix is not NULL. */
void	log_vwrite(const char *suffix, const char *fmt, va_list ap)
	    __attribute__((__format__(printf, 2, 0)));

#endif /* WFVAULT_LOG_H */
