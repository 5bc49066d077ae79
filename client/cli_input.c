/*
 * Where wfvault put gets its value: stdin, a file, or a prompt without echo
 * on the terminal.  Every buffer that held a value is wiped before it is
 * freed.
 */
#include <poll.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "wfvault.h"

/* Signals that would leave the terminal without echo if they hit us. */
static const int tty_signals[] = {
	SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU
};
#define NTTY_SIGNALS	(sizeof(tty_signals) / sizeof(tty_signals[0]))

static volatile sig_atomic_t	tty_caught[NTTY_SIGNALS];

void
value_free(struct value *v)
{
	if (v->v_buf != NULL) {
		explicit_bzero(v->v_buf, v->v_cap);
		free(v->v_buf);
	}
	v->v_buf = NULL;
	v->v_len = v->v_cap = 0;
}

/* One buffer of its final size: growing it would leave copies behind. */
static int
value_alloc(struct value *v, size_t max, struct cli_error *err)
{
	value_free(v);
	/* max bytes, one more to notice an overflow, and a NUL. */
	v->v_cap = max + 2;
	if ((v->v_buf = malloc(v->v_cap)) == NULL) {
		v->v_cap = 0;
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	}
	memset(v->v_buf, 0, v->v_cap);
	return 0;
}

/*
 * Reads fd to its end, at most max bytes.  Returns 0, 1 when there was
 * more than max, or -1 with errno set.
 */
static int
value_read_fd(struct value *v, int fd, size_t max)
{
	ssize_t	n;

	v->v_len = 0;
	while (v->v_len <= max) {
		n = read(fd, v->v_buf + v->v_len, max + 1 - v->v_len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		v->v_len += n;
	}
	if (v->v_len > max)
		return 1;
	v->v_buf[v->v_len] = '\0';
	return 0;
}

int
value_read_stdin(struct value *v, size_t max, struct cli_error *err)
{
	int	rv;

	if (value_alloc(v, max, err) == -1)
		return -1;
	if ((rv = value_read_fd(v, STDIN_FILENO, max)) == -1)
		return cli_fail(err, CLI_EXIT_ERROR,
		    "cannot read standard input: %s", strerror(errno));
	if (rv == 1)
		return cli_fail(err, CLI_EXIT_ERROR,
		    "stdin holds more than %zu KiB; nothing stored",
		    max / 1024);
	return 0;
}

int
value_read_file(struct value *v, const char *path, size_t max,
    struct cli_error *err)
{
	int	fd, rv, saved_errno;

	if (value_alloc(v, max, err) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		return cli_fail(err, CLI_EXIT_ERROR, "cannot open %s: %s", path,
		    strerror(errno));
	rv = value_read_fd(v, fd, max);
	saved_errno = errno;
	close(fd);
	if (rv == -1)
		return cli_fail(err, CLI_EXIT_ERROR, "cannot read %s: %s", path,
		    strerror(saved_errno));
	if (rv == 1)
		return cli_fail(err, CLI_EXIT_ERROR,
		    "%s holds more than %zu KiB; nothing stored", path,
		    max / 1024);
	return 0;
}

static void
tty_catch(int signo)
{
	size_t	i;

	for (i = 0; i < NTTY_SIGNALS; i++)
		if (tty_signals[i] == signo)
			tty_caught[i] = 1;
}

/* Best effort: a prompt that cannot be shown does not stop the read. */
void
tty_write(int fd, const char *s)
{
	size_t	len = strlen(s);
	ssize_t	n;

	while (len > 0) {
		if ((n = write(fd, s, len)) == -1) {
			if (errno == EINTR)
				continue;
			return;
		}
		s += n;
		len -= n;
	}
}

/*
 * Prompts on the terminal and reads one line into buf (NUL-terminated,
 * without the newline), echo off unless echo.  Echo goes off before the
 * prompt is shown, so nothing typed after it is echoed; the terminal and
 * the signal handlers are restored before returning, whatever happens.
 * A stop (^Z) restores the terminal, stops, and prompts again.  Returns
 * TTY_LINE_* (TTY_LINE_SIGNAL with *signo: the caller wipes and re-raises
 * it), or -1 with errno set.  Used by put's prompt and by onboard.
 */
int
tty_read_line(int fd, int ofd, const char *prompt, int echo, char *buf,
    size_t cap, size_t *lenp, int *signo)
{
	struct sigaction	 sa, saved_sa[NTTY_SIGNALS];
	struct termios		 saved, mode;
	struct pollfd		 pfd;
	sigset_t		 block, unblocked;
	size_t			 i, len;
	ssize_t			 n;
	char			*nl, junk[256];
	int			 termios_set, rv, restart, read_errno;

again:
	len = 0;
	rv = TTY_LINE_OK;
	restart = 0;
	read_errno = 0;
	*signo = 0;
	termios_set = 0;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: read() must return EINTR */
	sa.sa_handler = tty_catch;
	/*
	 * The signals stay blocked but while waiting in ppoll: one caught
	 * between a check of tty_caught and a read would leave the read
	 * waiting for a line after the user pressed ^C or ^Z.
	 */
	sigemptyset(&block);
	for (i = 0; i < NTTY_SIGNALS; i++)
		sigaddset(&block, tty_signals[i]);
	(void)sigprocmask(SIG_BLOCK, &block, &unblocked);
	for (i = 0; i < NTTY_SIGNALS; i++) {
		tty_caught[i] = 0;
		(void)sigaction(tty_signals[i], &sa, &saved_sa[i]);
	}
	if (tcgetattr(fd, &saved) == 0) {
		mode = saved;
		if (echo)
			mode.c_lflag |= ECHO;
		else
			mode.c_lflag &= ~(ECHO | ECHONL);
		mode.c_lflag |= ICANON;
		if (tcsetattr(fd, TCSAFLUSH, &mode) == 0)
			termios_set = 1;
	}

	tty_write(ofd, prompt);
	for (;;) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (ppoll(&pfd, 1, NULL, &unblocked) == -1) {
			if (errno != EINTR) {
				read_errno = errno;
				break;
			}
			for (i = 0; i < NTTY_SIGNALS; i++)
				if (tty_caught[i])
					break;
			if (i == NTTY_SIGNALS)
				continue;
			break;
		}
		if (len < cap - 1)
			n = read(fd, buf + len, cap - 1 - len);
		else
			/* Too long: read on to the line's end, keep nothing. */
			n = read(fd, junk, sizeof(junk));
		if (n == -1) {
			if (errno == EINTR) {
				/* Which one and what next: decided below. */
				for (i = 0; i < NTTY_SIGNALS; i++)
					if (tty_caught[i])
						break;
				if (i == NTTY_SIGNALS)
					continue;
			} else
				read_errno = errno;
			break;
		}
		if (n == 0) {
			/* ^D on an empty line; after text it ends the line. */
			if (len == 0 && rv != TTY_LINE_LONG)
				rv = TTY_LINE_EOF;
			break;
		}
		if (len >= cap - 1) {
			rv = TTY_LINE_LONG;
			nl = memchr(junk, '\n', n);
			explicit_bzero(junk, sizeof(junk));
			if (nl != NULL)
				break;
			continue;
		}
		nl = memchr(buf + len, '\n', n);
		len += n;
		if (nl != NULL) {
			len = nl - buf;
			break;
		}
		if (len >= cap - 1) {
			explicit_bzero(buf, cap);
			rv = TTY_LINE_LONG;
		}
	}
	explicit_bzero(junk, sizeof(junk));
	/* Echo was off: the user's Enter did not move to the next line. */
	if (!echo || rv == TTY_LINE_EOF)
		tty_write(ofd, "\n");
	if (termios_set)
		(void)tcsetattr(fd, TCSAFLUSH, &saved);
	/* One still pending reaches tty_catch, not its old action. */
	(void)sigprocmask(SIG_SETMASK, &unblocked, NULL);
	for (i = 0; i < NTTY_SIGNALS; i++)
		(void)sigaction(tty_signals[i], &saved_sa[i], NULL);

	for (i = 0; i < NTTY_SIGNALS; i++) {
		if (!tty_caught[i])
			continue;
		explicit_bzero(buf, cap);
		len = 0;
		if (tty_signals[i] == SIGTSTP ||
		    tty_signals[i] == SIGTTIN ||
		    tty_signals[i] == SIGTTOU) {
			(void)kill(getpid(), tty_signals[i]);
			restart = 1;
		} else {
			*signo = tty_signals[i];
			rv = TTY_LINE_SIGNAL;
		}
	}
	if (rv == TTY_LINE_SIGNAL)
		return rv;
	/* Stopped and continued, or the stop was discarded: ask again. */
	if (restart)
		goto again;
	if (read_errno != 0) {
		explicit_bzero(buf, cap);
		errno = read_errno;
		return -1;
	}
	if (rv == TTY_LINE_LONG) {
		explicit_bzero(buf, cap);
		len = 0;
	}
	buf[len] = '\0';
	*lenp = len;
	return rv;
}

/*
 * Prompts on the terminal (/dev/tty, else stdin and stderr) with echo off
 * and reads one line.  A signal restores the terminal first and is then
 * delivered again; after a stop (^Z) and a continue the prompt starts
 * over, as readpassphrase(3) does.
 */
static int
value_read_tty(struct value *v, const char *tenant, const char *field,
    struct cli_error *err)
{
	char	 prompt[PROTO_TENANT_MAX + PROTO_FIELD_MAX + 32];
	size_t	 len = 0, max = CLI_VALUE_MAX + 1;
	int	 fd, ofd, opened, r, signo = 0, saved_errno;

	if (value_alloc(v, max, err) == -1)
		return -1;
	snprintf(prompt, sizeof(prompt), "Value for %s.%s: ", tenant, field);
	if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) != -1) {
		opened = 1;
		ofd = fd;
	} else {
		opened = 0;
		fd = STDIN_FILENO;
		ofd = STDERR_FILENO;
	}
	r = tty_read_line(fd, ofd, prompt, 0, v->v_buf, max, &len,
	    &signo);
	saved_errno = errno;
	if (opened)
		close(fd);
	v->v_len = r == TTY_LINE_OK ? len : 0;
	if (r == TTY_LINE_SIGNAL) {
		explicit_bzero(v->v_buf, v->v_cap);
		(void)kill(getpid(), signo);
		/* Still here: it was ignored when we started. */
		return cli_fail(err, CLI_EXIT_ERROR,
		    "interrupted; nothing stored");
	}
	if (r == -1)
		return cli_fail(err, CLI_EXIT_ERROR,
		    "cannot read from the terminal: %s", strerror(saved_errno));
	if (r == TTY_LINE_LONG)
		return cli_fail(err, CLI_EXIT_ERROR,
		    "value is over 1 MiB; nothing stored");
	v->v_buf[v->v_len] = '\0';
	return 0;
}

int
value_read(struct value *v, const char *path, const char *tenant,
    const char *field, struct cli_error *err)
{
	int	fd, rv, saved_errno;

	if (path != NULL) {
		if (value_alloc(v, CLI_VALUE_MAX + 1, err) == -1)
			return -1;
		if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
			return cli_fail(err, CLI_EXIT_ERROR,
			    "cannot open %s: %s", path, strerror(errno));
		rv = value_read_fd(v, fd, CLI_VALUE_MAX + 1);
		saved_errno = errno;
		close(fd);
		if (rv == -1)
			return cli_fail(err, CLI_EXIT_ERROR,
			    "cannot read %s: %s", path, strerror(saved_errno));
		if (rv == 1)
			return cli_fail(err, CLI_EXIT_ERROR,
			    "value in %s is over 1 MiB; nothing stored", path);
	} else if (isatty(STDIN_FILENO)) {
		if (value_read_tty(v, tenant, field, err) == -1)
			return -1;
	} else {
		if (value_alloc(v, CLI_VALUE_MAX + 1, err) == -1)
			return -1;
		if ((rv = value_read_fd(v, STDIN_FILENO,
		    CLI_VALUE_MAX + 1)) == -1)
			return cli_fail(err, CLI_EXIT_ERROR,
			    "cannot read standard input: %s", strerror(errno));
		if (rv == 1)
			return cli_fail(err, CLI_EXIT_ERROR,
			    "value is over 1 MiB; nothing stored");
	}

	/* Exactly one trailing newline goes: editors and echo add one. */
	if (v->v_len > 0 && v->v_buf[v->v_len - 1] == '\n')
		v->v_buf[--v->v_len] = '\0';
	if (v->v_len > CLI_VALUE_MAX)
		return cli_fail(err, CLI_EXIT_ERROR,
		    "value is over 1 MiB; nothing stored");
	if (v->v_len == 0)
		return cli_fail(err, CLI_EXIT_USAGE,
		    "empty value; nothing stored");
	if (!value_utf8_valid(v->v_buf, v->v_len))
		return cli_fail(err, CLI_EXIT_USAGE,
		    "value is not valid UTF-8 text (or contains a NUL byte); "
		    "nothing stored");
	return 0;
}

int
value_utf8_valid(const char *buf, size_t len)
{
	const unsigned char	*s = (const unsigned char *)buf;
	uint32_t		 cp, min;
	size_t			 i = 0, k, n;

	while (i < len) {
		if (s[i] == 0)
			return 0;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = s[i] & 0x1f;
			min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
			min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* Overlong forms, UTF-16 surrogates, beyond Unicode. */
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}
