/*
 * Helpers the files of proto/ share with each other; nothing outside
 * proto/ includes this header.
 */
#ifndef WFVAULT_PROTO_PRIV_H
#define WFVAULT_PROTO_PRIV_H

#include <sys/types.h>

#include <stddef.h>

/*
 * 1 if s[0..len) may be quoted back in a message: 1..max bytes of
 * printable ASCII, so the message stays one harmless line.
 */
int	proto_quotable(const char *s, size_t len, size_t max);
/*
 * Copies src into dst (dstlen > 0) as one line of printable ASCII: other
 * bytes become '?' (controls ' '), and a cut copy ends in "...".
 */
void	proto_line_copy(char *dst, size_t dstlen, const char *src);

/* client_ssh.c */
/*
 * Starts ssh forwarding a private local socket to the one url names, and
 * connects to it: 0 with *fd and *pid (the child, for
 * proto_client_ssh_reap), or -1 with a one-line reason in msg.
 */
int	proto_client_ssh_connect(const char *url, int timeout_ms, int *fd,
	    pid_t *pid, char *msg, size_t msglen);
/* Stops and reaps the ssh child pid (<= 0: none). */
void	proto_client_ssh_reap(pid_t pid);

#endif /* WFVAULT_PROTO_PRIV_H */
