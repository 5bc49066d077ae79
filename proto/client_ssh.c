/*
 * The ssh:// transport of the client connection: an OpenSSH child forwards
 * a private local Unix socket to the daemon's socket on another host, so
 * the daemon sees the ssh login user's uid and its access rules apply.
 *
 * Why -L and not -W: OpenSSH before 9.5 (Debian 12 ships 9.2) parses
 * "ssh -W /path" but opens no channel, so stdio forwarding cannot reach a
 * Unix socket there.  A local stream forward (-N -L local:remote) can, and
 * needs nothing on the remote host (no shell, no helper command): sshd
 * connects to the socket as the login user.
 */

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "proto_priv.h"
#include "util.h"

#define SSH_URL_PREFIX	"ssh://"
/* Most words taken from $WFVAULT_SSH, and of the whole ssh command line. */
#define SSH_ARGV_MAX	64
/* How long a non-interactive ssh may take to set up the forward. */
#define SSH_SETUP_MS	60000

/*
 * The parts of an ssh:// URL, copied into caller-owned buffers.  Every
 * part is checked against a plain alphabet so none can read as an ssh
 * option or break the -L specification.
 */
struct ssh_url {
	char	su_user[64];
	char	su_host[256];
	char	su_port[8];
	char	su_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

int
proto_client_is_ssh(const char *path)
{
	return path != NULL && strncmp(path, SSH_URL_PREFIX,
	    strlen(SSH_URL_PREFIX)) == 0;
}

static int
ssh_chars_ok(const char *s, size_t len, const char *extra)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    strchr(extra, s[i]) != NULL) || s[i] == '\0')
			return 0;
	return 1;
}

static int
ssh_copy(char *dst, size_t dstlen, const char *s, size_t len)
{
	if (len >= dstlen)
		return -1;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/* Parses ssh://[user@]host[:port][/path]; -1 with a reason in why. */
static int
ssh_url_parse(const char *url, struct ssh_url *u, const char **why)
{
	const char	*p, *at, *end, *colon, *slash;
	long		 port;
	char		*ep;

	memset(u, 0, sizeof(*u));
	p = url + strlen(SSH_URL_PREFIX);
	slash = strchr(p, '/');
	end = slash != NULL ? slash : p + strlen(p);
	if ((at = memchr(p, '@', (size_t)(end - p))) != NULL) {
		if (at == p || !ssh_chars_ok(p, (size_t)(at - p), "._-") ||
		    *p == '-' || ssh_copy(u->su_user, sizeof(u->su_user), p,
		    (size_t)(at - p)) == -1) {
			*why = "the user name is not [A-Za-z0-9._-]";
			return -1;
		}
		p = at + 1;
	}
	if (*p == '[') {
		/* An IPv6 address in brackets, as in other URLs. */
		if ((colon = memchr(p, ']', (size_t)(end - p))) == NULL) {
			*why = "a '[' without ']' in the host";
			return -1;
		}
		if (colon == p + 1 || !ssh_chars_ok(p + 1,
		    (size_t)(colon - p - 1), ":.") || ssh_copy(u->su_host,
		    sizeof(u->su_host), p + 1, (size_t)(colon - p - 1)) == -1) {
			*why = "the host is not an IPv6 address";
			return -1;
		}
		colon++;
		if (colon != end && *colon != ':') {
			*why = "junk after ']' in the host";
			return -1;
		}
		if (colon == end)
			colon = NULL;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		if ((colon != NULL ? colon : end) == p || *p == '-' ||
		    !ssh_chars_ok(p, (size_t)((colon != NULL ? colon : end) -
		    p), "._-") || ssh_copy(u->su_host, sizeof(u->su_host), p,
		    (size_t)((colon != NULL ? colon : end) - p)) == -1) {
			*why = "the host is not a name or an address "
			    "([A-Za-z0-9.-])";
			return -1;
		}
	}
	if (colon != NULL) {
		errno = 0;
		port = strtol(colon + 1, &ep, 10);
		if (ep != end || ep == colon + 1 || errno != 0 || port < 1 ||
		    port > 65535) {
			*why = "the port is not a number in 1..65535";
			return -1;
		}
		snprintf(u->su_port, sizeof(u->su_port), "%ld", port);
	}
	if (slash == NULL || slash[1] == '\0')
		slash = PROTO_DEFAULT_SOCKET;
	/* ':' would split ssh's -L specification. */
	if (!ssh_chars_ok(slash, strlen(slash), "/._-+@,=") ||
	    ssh_copy(u->su_path, sizeof(u->su_path), slash,
	    strlen(slash)) == -1) {
		*why = "the socket path is not [A-Za-z0-9/._-+@,=] or is "
		    "too long";
		return -1;
	}
	return 0;
}

/*
 * Splits $WFVAULT_SSH (or "ssh") into words at blanks, without a shell
 * and without quoting, into buf; returns the number of words or -1.
 */
static int
ssh_command(char *buf, size_t buflen, char **argv, int max)
{
	const char	*env;
	char		*w, *save = NULL;
	int		 n = 0;

	env = getenv("WFVAULT_SSH");
	if (env == NULL || env[strspn(env, " \t")] == '\0')
		env = "ssh";
	if (snprintf(buf, buflen, "%s", env) >= (int)buflen)
		return -1;
	for (w = strtok_r(buf, " \t", &save); w != NULL;
	    w = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return -1;
		argv[n++] = w;
	}
	return n;
}

/* Reads what ssh wrote to stderr so far (non-blocking) into the buffer. */
static int
ssh_drain(int fd, char *buf, size_t len, size_t *off)
{
	char	tmp[512];
	ssize_t	n;
	size_t	k;

	for (;;) {
		n = read(fd, tmp, sizeof(tmp));
		if (n == 0)
			return 0;
		if (n == -1)
			return errno == EINTR ? 1 : (errno == EAGAIN ? 1 : -1);
		k = (size_t)n;
		if (*off + 1 < len) {
			if (k > len - 1 - *off)
				k = len - 1 - *off;
			memcpy(buf + *off, tmp, k);
			*off += k;
			buf[*off] = '\0';
		}
	}
}

/*
 * The line of ssh's stderr that says why: the last non-empty one that is
 * not a "Warning:" (ssh warns about added host keys before failing).
 */
static const char *
ssh_reason(char *buf)
{
	char	*line, *save = NULL;
	char	*best = NULL, *any = NULL;

	for (line = strtok_r(buf, "\r\n", &save); line != NULL;
	    line = strtok_r(NULL, "\r\n", &save)) {
		if (line[strspn(line, " \t")] == '\0')
			continue;
		any = line;
		if (strncmp(line, "Warning:", 8) != 0)
			best = line;
	}
	if (best != NULL)
		return best;
	return any != NULL ? any : "ssh exited without saying why";
}

/* Stops the ssh child (it may have exited already) and reaps it. */
void
proto_client_ssh_reap(pid_t pid)
{
	int	st;

	if (pid <= 0)
		return;
	(void)kill(pid, SIGTERM);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
}

int
proto_client_ssh_connect(const char *url, int timeout_ms, int *fdp,
    pid_t *pidp, char *msg, size_t msglen)
{
	struct ssh_url		 u;
	struct sockaddr_un	 sun;
	struct pollfd		 pfd;
	struct stat		 st;
	const char		*why, *tmp;
	char			 cmdbuf[1024], errbuf[2048], dir[96];
	char			 local[sizeof(sun.sun_path)];
	char			 fwd[2 * sizeof(sun.sun_path) + 2];
	char			*argv[SSH_ARGV_MAX + 24];
	int64_t			 deadline;
	int			 setup_ms;
	size_t			 errlen = 0;
	pid_t			 pid = -1, parent;
	int			 errp[2] = { -1, -1 }, devnull = -1;
	int			 fd = -1, n, r, rv = -1, eof = 0, st_code;

	*fdp = -1;
	*pidp = -1;
	errbuf[0] = '\0';
	dir[0] = local[0] = '\0';
	if (ssh_url_parse(url, &u, &why) == -1) {
		snprintf(msg, msglen, "bad ssh:// URL: %s (ssh://[user@]host"
		    "[:port][/path/to/socket])", why);
		return -1;
	}
	if ((n = ssh_command(cmdbuf, sizeof(cmdbuf), argv,
	    SSH_ARGV_MAX)) <= 0) {
		snprintf(msg, msglen, "$WFVAULT_SSH is too long");
		return -1;
	}

	/* The local end lives in a private directory nobody else enters. */
	tmp = getenv("TMPDIR");
	if (tmp == NULL || tmp[0] != '/' || strchr(tmp, ':') != NULL ||
	    strlen(tmp) > 60)
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/wfvault-ssh.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL) {
		snprintf(msg, msglen, "cannot reach %s: mkdtemp %s: %s",
		    u.su_host, dir, strerror(errno));
		dir[0] = '\0';
		goto done;
	}
	snprintf(local, sizeof(local), "%s/s", dir);
	snprintf(fwd, sizeof(fwd), "%s:%s", local, u.su_path);

	/*
	 * -n: ssh must not eat our stdin (put reads the value from it).
	 * BatchMode off a terminal: fail rather than wait for a prompt.
	 */
	argv[n++] = "-n";
	argv[n++] = "-N";
	argv[n++] = "-o";
	argv[n++] = "ExitOnForwardFailure=yes";
	argv[n++] = "-o";
	argv[n++] = "ClearAllForwardings=no";
	argv[n++] = "-o";
	argv[n++] = "StreamLocalBindMask=0177";
	if (!isatty(STDIN_FILENO)) {
		argv[n++] = "-o";
		argv[n++] = "BatchMode=yes";
	}
	argv[n++] = "-L";
	argv[n++] = fwd;
	if (u.su_user[0] != '\0') {
		argv[n++] = "-l";
		argv[n++] = u.su_user;
	}
	if (u.su_port[0] != '\0') {
		argv[n++] = "-p";
		argv[n++] = u.su_port;
	}
	argv[n++] = "--";
	argv[n++] = u.su_host;
	argv[n] = NULL;

	if (pipe2(errp, O_CLOEXEC) == -1 ||
	    (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1) {
		snprintf(msg, msglen, "cannot reach %s: %s", u.su_host,
		    strerror(errno));
		goto done;
	}
	parent = getpid();
	if ((pid = fork()) == -1) {
		snprintf(msg, msglen, "cannot reach %s: fork: %s", u.su_host,
		    strerror(errno));
		goto done;
	}
	if (pid == 0) {
		/* We may ignore SIGPIPE; ssh should not inherit that. */
		(void)signal(SIGPIPE, SIG_DFL);
		/*
		 * ssh -N outlives its forwarded connection: should we be
		 * killed before proto_client_close, it must not linger.
		 */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 ||
		    getppid() != parent)
			_exit(127);
		if (dup2(devnull, STDIN_FILENO) == -1 ||
		    dup2(devnull, STDOUT_FILENO) == -1 ||
		    dup2(errp[1], STDERR_FILENO) == -1)
			_exit(127);
		execvp(argv[0], argv);
		dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0],
		    strerror(errno));
		_exit(127);
	}
	close(errp[1]);
	errp[1] = -1;
	(void)fcntl(errp[0], F_SETFL, O_NONBLOCK);

	/*
	 * Wait until ssh has authenticated and listens on the local end,
	 * or has exited; on a terminal a person may be typing a passphrase.
	 */
	setup_ms = timeout_ms > SSH_SETUP_MS ? timeout_ms : SSH_SETUP_MS;
	deadline = isatty(STDIN_FILENO) ? -1 : util_now_ms() + setup_ms;
	for (;;) {
		if (stat(local, &st) == 0 && S_ISSOCK(st.st_mode))
			break;
		if (!eof) {
			pfd.fd = errp[0];
			pfd.events = POLLIN;
			if (poll(&pfd, 1, 10) > 0 && ssh_drain(errp[0], errbuf,
			    sizeof(errbuf), &errlen) == 0)
				eof = 1;
		} else
			(void)poll(NULL, 0, 10);
		r = waitpid(pid, &st_code, WNOHANG);
		if (r == pid) {
			pid = -1;
			(void)ssh_drain(errp[0], errbuf, sizeof(errbuf),
			    &errlen);
			snprintf(msg, msglen, "cannot reach %s: %s",
			    u.su_host, ssh_reason(errbuf));
			goto done;
		}
		if (deadline >= 0 && util_now_ms() >= deadline) {
			snprintf(msg, msglen, "cannot reach %s: ssh did not "
			    "set up the forward within %d s", u.su_host,
			    setup_ms / 1000);
			goto done;
		}
	}

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, local, strlen(local) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		snprintf(msg, msglen, "cannot reach %s: connect to ssh's "
		    "forward: %s", u.su_host, strerror(errno));
		goto done;
	}
	*fdp = fd;
	*pidp = pid;
	fd = -1;
	pid = -1;
	rv = 0;

done:
	/* Once connected, nobody needs the local end any more. */
	if (local[0] != '\0')
		(void)unlink(local);
	if (dir[0] != '\0')
		(void)rmdir(dir);
	if (fd != -1)
		close(fd);
	proto_client_ssh_reap(pid);
	if (errp[0] != -1)
		close(errp[0]);
	if (errp[1] != -1)
		close(errp[1]);
	if (devnull != -1)
		close(devnull);
	explicit_bzero(errbuf, sizeof(errbuf));
	return rv;
}
