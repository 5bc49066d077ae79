/*
 * systemd's service notification protocol, spoken directly (a datagram to
 * $NOTIFY_SOCKET) rather than through libsystemd: READY, STATUS, STOPPING
 * and the watchdog keep-alive.  Outside systemd every call does nothing.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "wfvaultd.h"

static int			 notify_fd = -1;
static struct sockaddr_un	 notify_sun;
static socklen_t		 notify_len;
static struct event		*notify_ev;

static void	notify_tick(evutil_socket_t, short, void *);

/* Reads $NOTIFY_SOCKET; "@name" is an abstract socket. */
void
notify_init(void)
{
	const char	*path;
	size_t		 len;

	if ((path = getenv("NOTIFY_SOCKET")) == NULL || *path == '\0')
		return;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') ||
	    len >= sizeof(notify_sun.sun_path)) {
		log_warnx("ignoring NOTIFY_SOCKET: not a usable socket path");
		return;
	}
	memset(&notify_sun, 0, sizeof(notify_sun));
	notify_sun.sun_family = AF_UNIX;
	memcpy(notify_sun.sun_path, path, len);
	if (path[0] == '@')
		notify_sun.sun_path[0] = '\0';
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	if ((notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		log_warn("notify socket");
	/* Children (there are none today) must not notify in our name. */
	unsetenv("NOTIFY_SOCKET");
}

void
notify_send(const char *fmt, ...)
{
	va_list	ap;
	char	msg[256];
	int	n;

	if (notify_fd == -1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg) - 1)
		return;
	/* systemd reads newline-separated assignments; end the last too. */
	msg[n++] = '\n';
	if (sendto(notify_fd, msg, (size_t)n, MSG_NOSIGNAL,
	    (struct sockaddr *)&notify_sun, notify_len) == -1)
		log_debug("%s: sendto: %s", __func__, strerror(errno));
}

/*
 * The watchdog interval systemd asked for ($WATCHDOG_USEC, for us when
 * $WATCHDOG_PID is unset or ours), or 0.
 */
static uint64_t
notify_watchdog_usec(void)
{
	const char		*s, *pid;
	char			*end;
	unsigned long long	 v;

	if ((s = getenv("WATCHDOG_USEC")) == NULL)
		return 0;
	if ((pid = getenv("WATCHDOG_PID")) != NULL) {
		errno = 0;
		v = strtoull(pid, &end, 10);
		if (errno != 0 || *end != '\0' || v != (unsigned long long)getpid())
			return 0;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0)
		return 0;
	return (uint64_t)v;
}

/*
 * Pings the watchdog from the event loop at half the interval, so a hung
 * loop is what systemd notices, and refreshes STATUS with it.
 */
int
notify_start(struct event_base *base, struct server *srv)
{
	struct timeval	tv;
	uint64_t	usec;

	if (notify_fd == -1)
		return 0;
	if ((usec = notify_watchdog_usec()) == 0)
		usec = 60 * 1000000ULL;	/* STATUS only: once a minute */
	usec /= 2;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	notify_ev = event_new(base, -1, EV_PERSIST, notify_tick, srv);
	if (notify_ev == NULL || event_add(notify_ev, &tv) == -1)
		return -1;
	notify_tick(-1, 0, srv);
	return 0;
}

static void
notify_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct server		*srv = arg;
	struct store_stat	 ss;
	MDB_txn			*txn;

	memset(&ss, 0, sizeof(ss));
	if (store_txn_begin(srv->srv_store, NULL, 0, &txn) == STORE_OK) {
		(void)store_stat(srv->srv_store, txn, &ss);
		store_txn_abort(txn);
	}
	notify_send("WATCHDOG=1\nSTATUS=serving %llu tenants, %zu connections",
	    (unsigned long long)ss.ss_tenants, srv->srv_nconns);
}

void
notify_stop(void)
{
	if (notify_ev != NULL)
		event_free(notify_ev);
	notify_ev = NULL;
	if (notify_fd != -1)
		close(notify_fd);
	notify_fd = -1;
}
