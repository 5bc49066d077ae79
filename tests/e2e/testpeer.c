/*
 * wfvault-testpeer: a raw, deliberately rude protocol client that the e2e
 * tests use to send wfvaultd what the real clients never would, and to
 * report what the daemon did about it in lines a shell test can match.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Exit statuses; each command's usage line says which it uses. */
#define TP_OK		0	/* the daemon did what the command checks */
#define TP_NO		1	/* it did not (see the printed counts) */
#define TP_USAGE	2
#define TP_IO		3	/* cannot connect, or a local failure */

#define TP_CONNECT_MS	10000	/* how long a full backlog is retried */
#define TP_REPLY_MS	5000	/* default wait for replies */

#define HELLO_FMT	"{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"hello\"," \
			"\"params\":{}}\n"

/* A growable byte buffer. */
struct buf {
	char	*b_data;
	size_t	 b_len;
	size_t	 b_cap;
};
#define BUF_INIT { NULL, 0, 0 }

/* One of many connections held open at once (idle, flood). */
struct pconn {
	int		 pc_fd;		/* -1 once closed by us */
	int		 pc_eof;	/* the daemon closed it */
	struct buf	 pc_in;
	size_t		 pc_lines;	/* complete lines in pc_in */
};

static const char	*progname = "wfvault-testpeer";

static __attribute__((__noreturn__)) void
usage(void)
{
	fprintf(stderr,
	    "usage: %s COMMAND SOCKET [ARGS]\n"
	    "  call SOCK METHOD [PARAMS]   one request, print its reply line;\n"
	    "                              exit 0 result, 1 error reply\n"
	    "  send SOCK [MS]              stdin verbatim, half-close, print\n"
	    "                              replies until EOF (exit 0) or MS\n"
	    "                              (default 5000; exit 1)\n"
	    "  fire SOCK                   stdin verbatim, then close at once\n"
	    "  lazy SOCK DELAY_MS          stdin verbatim, half-close, read\n"
	    "                              nothing for DELAY_MS, then print\n"
	    "                              replies until EOF (exit 0)\n"
	    "  dribble SOCK MS [MAX_MS]    stdin one byte per MS; prints\n"
	    "                              \"closed after_ms=T sent=N\" (exit 0)\n"
	    "                              or \"open ...\" after MAX_MS (exit 1)\n"
	    "  idle SOCK N HOLD_MS         N silent connections for HOLD_MS,\n"
	    "                              then hello on each; prints\n"
	    "                              \"opened=N\", \"open=X answered=Y\"\n"
	    "  flood SOCK N                N connections at once, hello on each;\n"
	    "                              prints \"accepted=A refused=R\n"
	    "                              pending=P\", then \"still_ok=S\"\n"
	    "  pipeline SOCK N TENANT FIELD  N get/hello requests in one write;\n"
	    "                              prints \"replies=R in_order=yes|no\n"
	    "                              errors=E\"\n"
	    "  hog SOCK N REQS HOLD_MS [TENANT FIELD]  N connections, each\n"
	    "                              sending REQS hello (or get) requests\n"
	    "                              and reading nothing for HOLD_MS;\n"
	    "                              prints \"opened=N\", then \"sent=S\"\n"
	    "                              (requests written) (exit 0)\n",
	    progname);
	exit(TP_USAGE);
}

static __attribute__((__noreturn__)) void
die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", progname, what, strerror(errno));
	exit(TP_IO);
}

static long long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
ms_left(long long deadline)
{
	long long	left = deadline - now_ms();

	if (left < 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static long
parse_num(const char *s, long min, long max, const char *what)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "%s: %s must be a number in %ld..%ld\n",
		    progname, what, min, max);
		exit(TP_USAGE);
	}
	return v;
}

static void
buf_append(struct buf *b, const void *p, size_t len)
{
	size_t	 cap;
	char	*n;

	if (b->b_len + len + 1 > b->b_cap) {
		cap = b->b_cap ? b->b_cap : 4096;
		while (cap < b->b_len + len + 1)
			cap *= 2;
		if ((n = realloc(b->b_data, cap)) == NULL)
			die("realloc");
		b->b_data = n;
		b->b_cap = cap;
	}
	memcpy(b->b_data + b->b_len, p, len);
	b->b_len += len;
	b->b_data[b->b_len] = '\0';
}

static void
buf_free(struct buf *b)
{
	free(b->b_data);
	b->b_data = NULL;
	b->b_len = b->b_cap = 0;
}

static size_t
count_lines(const char *p, size_t len)
{
	size_t	n = 0;

	while (len-- > 0)
		if (*p++ == '\n')
			n++;
	return n;
}

static void
read_stdin(struct buf *b)
{
	char	 chunk[65536];
	ssize_t	 n;

	for (;;) {
		n = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (n == 0)
			break;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("read stdin");
		}
		buf_append(b, chunk, (size_t)n);
	}
}

static void
write_stdout(const char *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(STDOUT_FILENO, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			die("write stdout");
		}
		p += n;
		len -= (size_t)n;
	}
}

/*
 * Connects to path without blocking; a full listen backlog (EAGAIN) is
 * retried for a while, since the daemon may just be busy accepting.
 * Returns the descriptor, or -1 with errno set.
 */
static int
peer_connect(const char *path)
{
	struct sockaddr_un	 sun;
	long long		 deadline = now_ms() + TP_CONNECT_MS;
	int			 fd, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
		if (fd == -1)
			return -1;
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			return fd;
		saved = errno;
		close(fd);
		errno = saved;
		if (errno != EAGAIN || now_ms() >= deadline)
			return -1;
		poll(NULL, 0, 5);
	}
}

static int
connect_or_die(const char *path)
{
	int	fd;

	if ((fd = peer_connect(path)) == -1) {
		fprintf(stderr, "%s: cannot connect to %s: %s\n", progname,
		    path, strerror(errno));
		exit(TP_IO);
	}
	return fd;
}

/*
 * Writes out[0..outlen) while reading whatever comes back into in, so a
 * daemon that answers while we still send never deadlocks us.  With shut,
 * the write side is half-closed once everything is out.  Stops at EOF (sets
 * *eof), at the deadline, or once in holds want_lines lines (0: no such
 * stop).  A daemon that stops taking our bytes (EPIPE) ends the writing
 * only.
 */
static void
pump(int fd, const char *out, size_t outlen, int shut, struct buf *in,
    size_t want_lines, long long deadline, int *eof)
{
	struct pollfd	 pfd;
	char		 chunk[65536];
	size_t		 off = 0;
	ssize_t		 n;
	int		 writing = 1;

	*eof = 0;
	if (outlen == 0) {
		writing = 0;
		if (shut)
			shutdown(fd, SHUT_WR);
	}
	for (;;) {
		if (want_lines > 0 && count_lines(in->b_data, in->b_len) >=
		    want_lines)
			return;
		pfd.fd = fd;
		pfd.events = POLLIN | (writing ? POLLOUT : 0);
		pfd.revents = 0;
		n = poll(&pfd, 1, ms_left(deadline));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (n == 0)
			return;
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
			if (n == 0 || (n == -1 && errno != EAGAIN &&
			    errno != EINTR)) {
				*eof = 1;
				return;
			}
			if (n > 0)
				buf_append(in, chunk, (size_t)n);
		}
		if (writing && (pfd.revents & POLLOUT)) {
			n = send(fd, out + off, outlen - off,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n == -1 && errno != EAGAIN && errno != EINTR)
				writing = 0;	/* the daemon closed its end */
			else if (n > 0 && (off += (size_t)n) == outlen) {
				writing = 0;
				if (shut)
					shutdown(fd, SHUT_WR);
			}
		}
	}
}

/* 1 when a reply line is a result, 0 when it is an error reply. */
static int
line_is_result(const char *line)
{
	return strstr(line, "\"result\":") != NULL &&
	    strstr(line, "\"error\":{") == NULL;
}

static int
cmd_call(int argc, char **argv)
{
	struct buf	 out = BUF_INIT, in = BUF_INIT;
	const char	*params = "{}";
	char		*nl;
	int		 fd, eof, rv;

	if (argc < 2 || argc > 3)
		usage();
	if (argc == 3)
		params = argv[2];
	buf_append(&out, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"", 34);
	buf_append(&out, argv[1], strlen(argv[1]));
	buf_append(&out, "\",\"params\":", 11);
	buf_append(&out, params, strlen(params));
	buf_append(&out, "}\n", 2);

	fd = connect_or_die(argv[0]);
	pump(fd, out.b_data, out.b_len, 0, &in, 1, now_ms() + TP_REPLY_MS,
	    &eof);
	close(fd);
	buf_free(&out);
	if (in.b_len == 0 || (nl = memchr(in.b_data, '\n', in.b_len)) ==
	    NULL) {
		fprintf(stderr, "%s: no reply to %s\n", progname, argv[1]);
		buf_free(&in);
		return TP_IO;
	}
	nl[1] = '\0';
	write_stdout(in.b_data, strlen(in.b_data));
	rv = line_is_result(in.b_data) ? TP_OK : TP_NO;
	buf_free(&in);
	return rv;
}

static int
cmd_send(int argc, char **argv)
{
	struct buf	 out = BUF_INIT, in = BUF_INIT;
	long		 ms = TP_REPLY_MS;
	int		 fd, eof;

	if (argc < 1 || argc > 2)
		usage();
	if (argc == 2)
		ms = parse_num(argv[1], 1, 600000, "MS");
	read_stdin(&out);
	fd = connect_or_die(argv[0]);
	pump(fd, out.b_data, out.b_len, 1, &in, 0, now_ms() + ms, &eof);
	close(fd);
	if (in.b_len > 0)
		write_stdout(in.b_data, in.b_len);
	buf_free(&out);
	buf_free(&in);
	return eof ? TP_OK : TP_NO;
}

/*
 * Sends stdin, half-closes, and reads nothing for DELAY_MS: a client that
 * pipelines far more than it reads.  Then prints every reply until EOF.
 */
static int
cmd_lazy(int argc, char **argv)
{
	struct buf	 out = BUF_INIT, in = BUF_INIT;
	size_t		 off = 0;
	ssize_t		 n;
	long		 delay;
	int		 fd, eof;

	if (argc != 2)
		usage();
	delay = parse_num(argv[1], 0, 600000, "DELAY_MS");
	read_stdin(&out);
	fd = connect_or_die(argv[0]);
	while (off < out.b_len) {
		n = send(fd, out.b_data + off, out.b_len - off, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	usleep((useconds_t)delay * 1000);
	pump(fd, NULL, 0, 0, &in, 0, now_ms() + TP_REPLY_MS, &eof);
	close(fd);
	if (in.b_len > 0)
		write_stdout(in.b_data, in.b_len);
	buf_free(&out);
	buf_free(&in);
	return eof ? TP_OK : TP_NO;
}

static int
cmd_fire(int argc, char **argv)
{
	struct buf	 out = BUF_INIT;
	struct pollfd	 pfd;
	size_t		 off = 0;
	ssize_t		 n;
	int		 fd;

	if (argc != 1)
		usage();
	read_stdin(&out);
	fd = connect_or_die(argv[0]);
	while (off < out.b_len) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, TP_REPLY_MS) <= 0)
			break;
		n = send(fd, out.b_data + off, out.b_len - off,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			break;
		if (n > 0)
			off += (size_t)n;
	}
	/* Gone before any reply could be read. */
	close(fd);
	printf("sent=%zu\n", off);
	buf_free(&out);
	return TP_OK;
}

static int
cmd_dribble(int argc, char **argv)
{
	struct buf	 out = BUF_INIT, in = BUF_INIT;
	struct pollfd	 pfd;
	long long	 start, until, stop;
	long		 ms, max_ms = 30000;
	size_t		 sent = 0;
	char		 chunk[4096];
	ssize_t		 n;
	int		 fd, closed = 0;

	if (argc < 2 || argc > 3)
		usage();
	ms = parse_num(argv[1], 0, 60000, "MS");
	if (argc == 3)
		max_ms = parse_num(argv[2], 1, 600000, "MAX_MS");
	read_stdin(&out);
	fd = connect_or_die(argv[0]);
	start = now_ms();
	stop = start + max_ms;
	while (!closed && now_ms() < stop) {
		if (sent < out.b_len) {
			n = send(fd, out.b_data + sent, 1,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n == -1 && errno != EAGAIN && errno != EINTR) {
				closed = 1;
				break;
			}
			if (n == 1)
				sent++;
		}
		/* Wait MS (or until the deadline once all is sent), watching. */
		until = sent < out.b_len ? now_ms() + ms : stop;
		if (until > stop)
			until = stop;
		do {
			pfd.fd = fd;
			pfd.events = POLLIN;
			pfd.revents = 0;
			if (poll(&pfd, 1, ms_left(until)) <= 0)
				continue;
			n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
			if (n == 0 || (n == -1 && errno != EAGAIN &&
			    errno != EINTR))
				closed = 1;
			else if (n > 0)
				buf_append(&in, chunk, (size_t)n);
		} while (!closed && now_ms() < until);
	}
	close(fd);
	if (in.b_len > 0)
		write_stdout(in.b_data, in.b_len);
	printf("%s after_ms=%lld sent=%zu\n", closed ? "closed" : "open",
	    now_ms() - start, sent);
	buf_free(&out);
	buf_free(&in);
	return closed ? TP_OK : TP_NO;
}

static struct pconn *
pconns_open(const char *path, size_t n, size_t *opened)
{
	struct pconn	*pc;
	size_t		 i;

	if ((pc = calloc(n, sizeof(*pc))) == NULL)
		die("calloc");
	*opened = 0;
	for (i = 0; i < n; i++) {
		pc[i].pc_fd = peer_connect(path);
		if (pc[i].pc_fd == -1)
			pc[i].pc_eof = 1;
		else
			(*opened)++;
	}
	return pc;
}

static void
pconns_close(struct pconn *pc, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (pc[i].pc_fd != -1)
			close(pc[i].pc_fd);
		buf_free(&pc[i].pc_in);
	}
	free(pc);
}

/* Sends a hello with id on every live connection. */
static void
pconns_hello(struct pconn *pc, size_t n, int id)
{
	char	msg[128];
	int	len;
	size_t	i;

	len = snprintf(msg, sizeof(msg), HELLO_FMT, id);
	for (i = 0; i < n; i++) {
		if (pc[i].pc_eof)
			continue;
		/* Small enough for any socket buffer: one send does it. */
		if (send(pc[i].pc_fd, msg, (size_t)len,
		    MSG_DONTWAIT | MSG_NOSIGNAL) != len)
			pc[i].pc_eof = 1;
	}
}

/*
 * Reads from every live connection until each has want lines (0: never
 * satisfied, so it just watches for closes) or the deadline passes.
 */
static void
pconns_wait(struct pconn *pc, size_t n, size_t want, long long deadline)
{
	struct pollfd	*pfd;
	size_t		*map, i, np;
	char		 chunk[4096];
	ssize_t		 r;

	if ((pfd = calloc(n, sizeof(*pfd))) == NULL ||
	    (map = calloc(n, sizeof(*map))) == NULL)
		die("calloc");
	for (;;) {
		np = 0;
		for (i = 0; i < n; i++) {
			if (pc[i].pc_eof || (want > 0 && pc[i].pc_lines >=
			    want))
				continue;
			pfd[np].fd = pc[i].pc_fd;
			pfd[np].events = POLLIN;
			pfd[np].revents = 0;
			map[np++] = i;
		}
		if (np == 0)
			break;
		r = poll(pfd, np, ms_left(deadline));
		if (r == -1 && errno != EINTR)
			die("poll");
		if (r == 0)
			break;
		for (i = 0; i < np; i++) {
			struct pconn	*c = &pc[map[i]];

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = recv(c->pc_fd, chunk, sizeof(chunk), MSG_DONTWAIT);
			if (r == 0 || (r == -1 && errno != EAGAIN &&
			    errno != EINTR))
				c->pc_eof = 1;
			else if (r > 0) {
				buf_append(&c->pc_in, chunk, (size_t)r);
				c->pc_lines += count_lines(chunk, (size_t)r);
			}
		}
	}
	free(pfd);
	free(map);
}

/* The n-th (0-based) line of c's input, or NULL. */
static const char *
pconn_line(struct pconn *c, size_t nth, size_t *len)
{
	const char	*p = c->pc_in.b_data, *end, *nl;

	if (p == NULL)
		return NULL;
	end = p + c->pc_in.b_len;
	for (;;) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return NULL;
		if (nth-- == 0) {
			*len = (size_t)(nl - p);
			return p;
		}
		p = nl + 1;
	}
}

static int
pconn_line_is_result(struct pconn *c, size_t nth)
{
	const char	*line;
	char		*copy;
	size_t		 len;
	int		 ok;

	if ((line = pconn_line(c, nth, &len)) == NULL)
		return 0;
	if ((copy = strndup(line, len)) == NULL)
		die("strndup");
	ok = line_is_result(copy);
	free(copy);
	return ok;
}

static int
cmd_idle(int argc, char **argv)
{
	struct pconn	*pc;
	size_t		 n, i, opened, open = 0, answered = 0;
	long		 hold;

	if (argc != 3)
		usage();
	n = (size_t)parse_num(argv[1], 1, 100000, "N");
	hold = parse_num(argv[2], 0, 600000, "HOLD_MS");
	pc = pconns_open(argv[0], n, &opened);
	printf("opened=%zu\n", opened);
	fflush(stdout);

	/* Silent: only watch which ones the daemon closes. */
	pconns_wait(pc, n, 0, now_ms() + hold);
	for (i = 0; i < n; i++)
		if (!pc[i].pc_eof)
			open++;
	pconns_hello(pc, n, 1);
	pconns_wait(pc, n, 1, now_ms() + TP_REPLY_MS);
	for (i = 0; i < n; i++)
		if (pconn_line_is_result(&pc[i], 0))
			answered++;
	printf("open=%zu answered=%zu\n", open, answered);
	pconns_close(pc, n);
	return answered == n ? TP_OK : TP_NO;
}

static int
cmd_flood(int argc, char **argv)
{
	struct pconn	*pc;
	size_t		 n, i, opened, accepted = 0, refused = 0, pending = 0;
	size_t		 still = 0;
	unsigned char	*acc;

	if (argc != 2)
		usage();
	n = (size_t)parse_num(argv[1], 1, 100000, "N");
	pc = pconns_open(argv[0], n, &opened);
	if ((acc = calloc(n, 1)) == NULL)
		die("calloc");
	pconns_hello(pc, n, 1);
	pconns_wait(pc, n, 1, now_ms() + TP_REPLY_MS);
	for (i = 0; i < n; i++) {
		if (pconn_line_is_result(&pc[i], 0)) {
			accepted++;
			acc[i] = 1;
		} else if (pc[i].pc_lines > 0 || pc[i].pc_eof)
			refused++;	/* an error reply, or a close */
		else
			pending++;
	}
	printf("accepted=%zu refused=%zu pending=%zu\n", accepted, refused,
	    pending);
	fflush(stdout);

	/* The ones in service must be unaffected by the ones turned away. */
	for (i = 0; i < n; i++)
		if (!acc[i])
			pc[i].pc_eof = 1;
	pconns_hello(pc, n, 2);
	pconns_wait(pc, n, 2, now_ms() + TP_REPLY_MS);
	for (i = 0; i < n; i++)
		if (acc[i] && pconn_line_is_result(&pc[i], 1))
			still++;
	printf("still_ok=%zu\n", still);
	free(acc);
	pconns_close(pc, n);
	return pending == 0 && still == accepted ? TP_OK : TP_NO;
}

/* The value of the first "id": member in line (our replies are flat). */
static long
reply_id(const char *line)
{
	const char	*p;
	char		*end;
	long		 v;

	if ((p = strstr(line, "\"id\":")) == NULL)
		return -1;
	p += 5;
	errno = 0;
	v = strtol(p, &end, 10);
	if (end == p || errno != 0)
		return -1;
	return v;
}

static int
cmd_pipeline(int argc, char **argv)
{
	struct buf	 out = BUF_INIT, in = BUF_INIT;
	char		 req[1024], *line, *nl;
	long		 n, i, replies = 0, errors = 0, expect = 1;
	int		 fd, eof, len, in_order = 1;

	if (argc != 4)
		usage();
	n = parse_num(argv[1], 1, 1000000, "N");
	for (i = 1; i <= n; i++) {
		if (i % 2)
			len = snprintf(req, sizeof(req), "{\"jsonrpc\":\"2.0\","
			    "\"id\":%ld,\"method\":\"get\",\"params\":"
			    "{\"tenant\":\"%s\",\"field\":\"%s\"}}\n", i,
			    argv[2], argv[3]);
		else
			len = snprintf(req, sizeof(req), HELLO_FMT, (int)i);
		if (len < 0 || (size_t)len >= sizeof(req)) {
			fprintf(stderr, "%s: tenant or field too long\n",
			    progname);
			return TP_USAGE;
		}
		buf_append(&out, req, (size_t)len);
	}
	fd = connect_or_die(argv[0]);
	pump(fd, out.b_data, out.b_len, 0, &in, (size_t)n,
	    now_ms() + 60000, &eof);
	close(fd);

	line = in.b_data;
	while (line != NULL && (nl = strchr(line, '\n')) != NULL) {
		*nl = '\0';
		replies++;
		if (reply_id(line) != expect++)
			in_order = 0;
		if (!line_is_result(line))
			errors++;
		line = nl + 1;
	}
	printf("replies=%ld in_order=%s errors=%ld\n", replies,
	    in_order ? "yes" : "no", errors);
	buf_free(&out);
	buf_free(&in);
	return replies == n && in_order && errors == 0 ? TP_OK : TP_NO;
}

/*
 * A peer that pipelines and never reads its replies, on many connections
 * at once: what the daemon queues for it must stay bounded.
 */
static int
cmd_hog(int argc, char **argv)
{
	struct buf	 req = BUF_INIT;
	struct pollfd	*pfd;
	size_t		*off, n, i, opened, np, total, sent = 0;
	long		 reqs, j;
	long long	 deadline;
	char		 one[1024];
	ssize_t		 r;
	int		*fds, len;

	if (argc != 4 && argc != 6)
		usage();
	n = (size_t)parse_num(argv[1], 1, 100000, "N");
	reqs = parse_num(argv[2], 1, 10000000, "REQS");
	deadline = now_ms() + parse_num(argv[3], 0, 600000, "HOLD_MS");
	for (j = 1; j <= reqs; j++) {
		if (argc == 6)
			len = snprintf(one, sizeof(one), "{\"jsonrpc\":\"2.0\","
			    "\"id\":%ld,\"method\":\"get\",\"params\":"
			    "{\"tenant\":\"%s\",\"field\":\"%s\"}}\n", j,
			    argv[4], argv[5]);
		else
			len = snprintf(one, sizeof(one), HELLO_FMT, (int)j);
		if (len < 0 || (size_t)len >= sizeof(one)) {
			fprintf(stderr, "%s: tenant or field too long\n",
			    progname);
			return TP_USAGE;
		}
		buf_append(&req, one, (size_t)len);
	}
	if ((fds = calloc(n, sizeof(*fds))) == NULL ||
	    (off = calloc(n, sizeof(*off))) == NULL ||
	    (pfd = calloc(n, sizeof(*pfd))) == NULL)
		die("calloc");
	opened = 0;
	for (i = 0; i < n; i++)
		if ((fds[i] = peer_connect(argv[0])) != -1)
			opened++;
	printf("opened=%zu\n", opened);
	fflush(stdout);

	/* Write as much as the daemon takes; read nothing, ever. */
	for (;;) {
		np = 0;
		for (i = 0; i < n; i++) {
			if (fds[i] == -1 || off[i] == req.b_len)
				continue;
			pfd[np].fd = fds[i];
			pfd[np].events = POLLOUT;
			pfd[np].revents = 0;
			np++;
		}
		if (np == 0 || poll(pfd, np, ms_left(deadline)) <= 0)
			break;
		for (i = 0; i < n; i++) {
			if (fds[i] == -1 || off[i] == req.b_len)
				continue;
			r = send(fds[i], req.b_data + off[i],
			    req.b_len - off[i], MSG_DONTWAIT | MSG_NOSIGNAL);
			if (r > 0)
				off[i] += (size_t)r;
			else if (r == -1 && errno != EAGAIN && errno != EINTR) {
				close(fds[i]);
				fds[i] = -1;
			}
		}
	}
	poll(NULL, 0, ms_left(deadline));
	total = 0;
	for (i = 0; i < n; i++) {
		sent += count_lines(req.b_data, off[i]);
		total += off[i];
		if (fds[i] != -1)
			close(fds[i]);
	}
	printf("sent=%zu bytes=%zu\n", sent, total);
	free(fds);
	free(off);
	free(pfd);
	buf_free(&req);
	return TP_OK;
}

int
main(int argc, char **argv)
{
	static const struct {
		const char	*name;
		int		(*run)(int, char **);
	} cmds[] = {
		{ "call", cmd_call },
		{ "send", cmd_send },
		{ "fire", cmd_fire },
		{ "lazy", cmd_lazy },
		{ "dribble", cmd_dribble },
		{ "idle", cmd_idle },
		{ "flood", cmd_flood },
		{ "pipeline", cmd_pipeline },
		{ "hog", cmd_hog },
	};
	size_t	i;

	/* Writing to a socket the daemon closed must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 3)
		usage();
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].run(argc - 2, argv + 2);
	usage();
}
