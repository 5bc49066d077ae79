/*
 * wfvault-ptyrun: runs a command on a pseudo-terminal and follows a
 * script of what to expect on it and what to type, so the e2e tests can
 * talk to a prompt as a person would and keep the whole transcript.
 *
 * usage: wfvault-ptyrun [-e] [-t SECONDS] SCRIPT TRANSCRIPT CMD [ARGS...]
 *
 * SCRIPT has one step a line:
 *   expect TEXT   wait until TEXT is output (after the previous match)
 *   send TEXT     type TEXT and Enter
 *   eof           type the terminal's end-of-file character (^D)
 *   intr          type the interrupt character (^C)
 *   susp          type the suspend character (^Z)
 * Blank lines and lines starting with '#' are skipped.
 *
 * Each expect waits at most SECONDS (default 30): a bound against a hang,
 * never a measurement.  After the script, the output is read until the
 * command closes the terminal.  TRANSCRIPT gets every byte the command
 * wrote to the terminal (with what the terminal echoed).  The exit status
 * is the command's (128 + N for a signal N), or 124 when an expect or the
 * end timed out and 125 for ptyrun's own errors.  With -e, ptyrun prints
 * "echo on" or "echo off" at the end: the terminal's echo as the command
 * left it.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PR_TIMEOUT	124
#define PR_ERROR	125

static const char	*progname = "wfvault-ptyrun";

/* All the command wrote, and how far the last expect matched. */
struct transcript {
	char	*t_buf;
	size_t	 t_len;
	size_t	 t_cap;
	size_t	 t_mark;
	int	 t_eof;
};

static __attribute__((__noreturn__)) void
usage(void)
{
	fprintf(stderr, "usage: %s [-e] [-t SECONDS] SCRIPT TRANSCRIPT CMD "
	    "[ARGS...]\n", progname);
	exit(PR_ERROR);
}

static long long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Reads what the command wrote, waiting until deadline at most.  0 when
 * something came (or the terminal closed), 1 on timeout, -1 on error.
 */
static int
transcript_read(struct transcript *t, int fd, long long deadline)
{
	struct pollfd	 pfd = { fd, POLLIN, 0 };
	long long	 left;
	ssize_t		 n;
	char		*p;
	int		 r;

	if (t->t_eof)
		return 0;
	if ((left = deadline - now_ms()) < 0)
		left = 0;
	if ((r = poll(&pfd, 1, (int)left)) == -1)
		return errno == EINTR ? 0 : -1;
	if (r == 0)
		return 1;
	if (t->t_cap - t->t_len < 4096) {
		if ((p = realloc(t->t_buf, t->t_cap * 2 + 4096)) == NULL)
			return -1;
		t->t_buf = p;
		t->t_cap = t->t_cap * 2 + 4096;
	}
	n = read(fd, t->t_buf + t->t_len, t->t_cap - t->t_len - 1);
	/* Linux answers EIO once the last slave side has closed. */
	if (n == 0 || (n == -1 && errno == EIO)) {
		t->t_eof = 1;
		return 0;
	}
	if (n == -1)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	t->t_len += n;
	t->t_buf[t->t_len] = '\0';
	return 0;
}

/* Waits for text after the mark; 0 found, 1 timeout or EOF, -1 error. */
static int
transcript_expect(struct transcript *t, int fd, const char *text,
    int timeout_s)
{
	long long	 deadline = now_ms() + (long long)timeout_s * 1000;
	char		*hit;
	int		 r;

	for (;;) {
		if (t->t_buf != NULL && (hit = memmem(t->t_buf + t->t_mark,
		    t->t_len - t->t_mark, text, strlen(text))) != NULL) {
			t->t_mark = hit - t->t_buf + strlen(text);
			return 0;
		}
		if (t->t_eof)
			return 1;
		if ((r = transcript_read(t, fd, deadline)) != 0)
			return r;
	}
}

static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

static int
transcript_save(struct transcript *t, const char *path)
{
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	if (t->t_len > 0)
		fwrite(t->t_buf, 1, t->t_len, f);
	return fclose(f) == 0 ? 0 : -1;
}

/* One step of the script; 0 done, 1 timeout, -1 error. */
static int
step_run(struct transcript *t, int fd, char *line, int timeout_s,
    int lineno)
{
	struct termios	tio;
	char		c;

	if (strncmp(line, "expect ", 7) == 0)
		return transcript_expect(t, fd, line + 7, timeout_s);
	if (strncmp(line, "send ", 5) == 0 || strcmp(line, "send") == 0) {
		line += line[4] == ' ' ? 5 : 4;
		if (write_all(fd, line, strlen(line)) == -1 ||
		    write_all(fd, "\n", 1) == -1)
			return -1;
		return 0;
	}
	if (strcmp(line, "eof") == 0 || strcmp(line, "intr") == 0 ||
	    strcmp(line, "susp") == 0) {
		if (tcgetattr(fd, &tio) == -1)
			return -1;
		c = tio.c_cc[line[0] == 'e' ? VEOF : line[0] == 'i' ? VINTR :
		    VSUSP];
		return write_all(fd, &c, 1);
	}
	fprintf(stderr, "%s: script line %d: unknown step\n", progname,
	    lineno);
	return -1;
}

int
main(int argc, char **argv)
{
	struct transcript	 t = { NULL, 0, 0, 0, 0 };
	struct termios		 tio;
	FILE			*script;
	char			*line = NULL, *end;
	size_t			 cap = 0;
	ssize_t			 n;
	long			 v;
	pid_t			 pid;
	int			 ch, fd, st, r, lineno = 0, timeout_s = 30;
	int			 show_echo = 0;
	int			 rv = PR_ERROR;

	while ((ch = getopt(argc, argv, "+et:")) != -1) {
		switch (ch) {
		case 'e':
			show_echo = 1;
			break;
		case 't':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || v < 1 || v > 3600)
				usage();
			timeout_s = (int)v;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 3)
		usage();
	if ((script = fopen(argv[0], "r")) == NULL) {
		fprintf(stderr, "%s: %s: %s\n", progname, argv[0],
		    strerror(errno));
		return PR_ERROR;
	}

	if ((pid = forkpty(&fd, NULL, NULL, NULL)) == -1) {
		fprintf(stderr, "%s: forkpty: %s\n", progname, strerror(errno));
		return PR_ERROR;
	}
	if (pid == 0) {
		/* bats waits for fd 3: the command must not hold it. */
		closefrom(3);
		execvp(argv[2], argv + 2);
		fprintf(stderr, "%s: cannot run %s: %s\n", progname, argv[2],
		    strerror(errno));
		_exit(127);
	}
	fclose(stdin);

	while ((n = getline(&line, &cap, script)) != -1) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if ((r = step_run(&t, fd, line, timeout_s, lineno)) == 0)
			continue;
		if (r == 1) {
			fprintf(stderr, "%s: script line %d: %s within %d s: "
			    "%s\n", progname, lineno, t.t_eof ? "the command "
			    "closed the terminal before the text came" :
			    "the text did not come", timeout_s, line);
			rv = PR_TIMEOUT;
		} else
			fprintf(stderr, "%s: script line %d: %s\n", progname,
			    lineno, strerror(errno));
		goto kill;
	}
	/* The rest of the output, until the command closes the terminal. */
	{
		long long deadline = now_ms() + (long long)timeout_s * 1000;

		while (!t.t_eof) {
			if ((r = transcript_read(&t, fd, deadline)) == 0)
				continue;
			fprintf(stderr, "%s: the command did not finish within "
			    "%d s after the script\n", progname, timeout_s);
			rv = r == 1 ? PR_TIMEOUT : PR_ERROR;
			goto kill;
		}
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR) {
			st = -1;
			break;
		}
	/* The pair's settings outlive the command while we hold the master. */
	if (show_echo) {
		if (tcgetattr(fd, &tio) == -1)
			printf("echo unknown\n");
		else
			printf("echo %s\n", tio.c_lflag & ECHO ? "on" : "off");
	}
	if (st == -1)
		rv = PR_ERROR;
	else if (WIFEXITED(st))
		rv = WEXITSTATUS(st);
	else
		rv = 128 + WTERMSIG(st);
	goto save;
kill:
	(void)kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
save:
	if (transcript_save(&t, argv[1]) == -1) {
		fprintf(stderr, "%s: %s: %s\n", progname, argv[1],
		    strerror(errno));
		rv = PR_ERROR;
	}
	free(line);
	free(t.t_buf);
	fclose(script);
	close(fd);
	return rv;
}
