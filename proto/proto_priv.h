/*
 * Helpers the files of proto/ share with each other; nothing outside
 * proto/ includes this header.
 */
#ifndef WFVAULT_PROTO_PRIV_H
#define WFVAULT_PROTO_PRIV_H

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

#endif /* WFVAULT_PROTO_PRIV_H */
