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
static void
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
 * Prompts on the terminal with echo off and reads one line.  A signal
 * restores the terminal first and is then delivered again; after a stop
 * (^Z) and a continue the prompt starts over, as readpassphrase(3) does.
 */
static int
value_read_tty(struct value *v, const char *tenant, const char *field,
    struct cli_error *err)
{
	struct sigaction	 sa, saved_sa[NTTY_SIGNALS];
	struct termios		 saved, noecho;
	char			 prompt[PROTO_TENANT_MAX + PROTO_FIELD_MAX + 32];
	char			*nl;
	ssize_t			 n;
	size_t			 i, max = CLI_VALUE_MAX + 1;
	struct pollfd		 pfd;
	sigset_t		 block, unblocked;
	int			 fd, ofd, opened, termios_set, restart;
	int			 interrupted, read_errno;

	if (value_alloc(v, max, err) == -1)
		return -1;
	snprintf(prompt, sizeof(prompt), "Value for %s.%s: ", tenant, field);

again:
	restart = interrupted = 0;
	read_errno = 0;
	v->v_len = 0;
	termios_set = 0;
	if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) != -1) {
		opened = 1;
		ofd = fd;
	} else {
		opened = 0;
		fd = STDIN_FILENO;
		ofd = STDERR_FILENO;
	}

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: read() must return EINTR */
	sa.sa_handler = tty_catch;
	/*
	 * Blocked but while waiting in ppoll: a signal caught after a check
	 * of tty_caught and before read() would leave the read waiting.
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
		noecho = saved;
		noecho.c_lflag &= ~(ECHO | ECHONL);
		noecho.c_lflag |= ICANON;
		if (tcsetattr(fd, TCSAFLUSH, &noecho) == 0)
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
		n = read(fd, v->v_buf + v->v_len, max + 1 - v->v_len);
		if (n == -1) {
			if (errno == EINTR) {
				for (i = 0; i < NTTY_SIGNALS; i++)
					if (tty_caught[i])
						break;
				if (i == NTTY_SIGNALS)
					continue;
			} else
				read_errno = errno;
			break;
		}
		if (n == 0)
			break;
		nl = memchr(v->v_buf + v->v_len, '\n', n);
		v->v_len += n;
		if (nl != NULL) {
			v->v_len = nl - v->v_buf;
			break;
		}
		if (v->v_len > max)
			break;
	}
	/* Echo was off: the user's Enter did not move to the next line. */
	tty_write(ofd, "\n");

	if (termios_set)
		(void)tcsetattr(fd, TCSAFLUSH, &saved);
	/* One still pending reaches tty_catch, not its old action. */
	(void)sigprocmask(SIG_SETMASK, &unblocked, NULL);
	for (i = 0; i < NTTY_SIGNALS; i++)
		(void)sigaction(tty_signals[i], &saved_sa[i], NULL);
	if (opened)
		close(fd);

	for (i = 0; i < NTTY_SIGNALS; i++) {
		if (!tty_caught[i])
			continue;
		explicit_bzero(v->v_buf, v->v_cap);
		v->v_len = 0;
		(void)kill(getpid(), tty_signals[i]);
		if (tty_signals[i] == SIGTSTP || tty_signals[i] == SIGTTIN ||
		    tty_signals[i] == SIGTTOU)
			restart = 1;
		else
			interrupted = 1;
	}
	/* Still here after SIGINT: it was ignored when we started. */
	if (interrupted)
		return cli_fail(err, CLI_EXIT_ERROR,
		    "interrupted; nothing stored");
	if (restart)
		goto again;

	if (read_errno != 0)
		return cli_fail(err, CLI_EXIT_ERROR,
		    "cannot read from the terminal: %s", strerror(read_errno));
	if (v->v_len > max)
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
