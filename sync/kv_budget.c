/*
 * The request budget every target's KV client draws from: at most N API
 * requests in any WINDOW (request_budget), and a pause when Cloudflare's
 * Ratelimit header says the account's own allowance is used up.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sync.h"

int
kv_budget_init(struct kv_budget *kb, uint64_t requests, uint64_t window_s)
{
	memset(kb, 0, sizeof(*kb));
	if (requests == 0 || window_s == 0)
		return -1;
	if ((kb->kb_starts = calloc(requests, sizeof(*kb->kb_starts))) ==
	    NULL)
		return -1;
	if ((errno = pthread_mutex_init(&kb->kb_lock, NULL)) != 0) {
		free(kb->kb_starts);
		kb->kb_starts = NULL;
		return -1;
	}
	kb->kb_max = requests;
	kb->kb_window_ms = (int64_t)window_s * 1000;
	return 0;
}

void
kv_budget_release(struct kv_budget *kb)
{
	if (kb->kb_starts == NULL)
		return;
	pthread_mutex_destroy(&kb->kb_lock);
	free(kb->kb_starts);
	memset(kb, 0, sizeof(*kb));
}

/*
 * The ring holds the starts of the last kb_max requests; the oldest of
 * them must be a window ago before another may start.
 */
uint64_t
kv_budget_delay(const struct kv_budget *kb, int64_t now)
{
	int64_t	until = kb->kb_blocked_until, free_at;

	if (kb->kb_max > 0 && kb->kb_n == kb->kb_max) {
		free_at = kb->kb_starts[kb->kb_head] + kb->kb_window_ms;
		if (free_at > until)
			until = free_at;
	}
	return until > now ? (uint64_t)(until - now) : 0;
}

void
kv_budget_note(struct kv_budget *kb, int64_t now)
{
	if (kb->kb_max == 0)
		return;
	kb->kb_starts[kb->kb_head] = now;
	kb->kb_head = (kb->kb_head + 1) % kb->kb_max;
	if (kb->kb_n < kb->kb_max)
		kb->kb_n++;
	kb->kb_requests++;
}

void
kv_budget_block(struct kv_budget *kb, int64_t until)
{
	pthread_mutex_lock(&kb->kb_lock);
	if (until > kb->kb_blocked_until)
		kb->kb_blocked_until = until;
	pthread_mutex_unlock(&kb->kb_lock);
}

/* Deciding and counting under one lock: two targets never share a slot. */
uint64_t
kv_budget_take(struct kv_budget *kb, int64_t now, int waited,
    int *ratelimited, size_t *slot)
{
	uint64_t	ms;

	pthread_mutex_lock(&kb->kb_lock);
	if ((ms = kv_budget_delay(kb, now)) > 0) {
		*ratelimited = kb->kb_blocked_until > now;
		kb->kb_waited_ms += ms;
	} else {
		*slot = kb->kb_head;
		kv_budget_note(kb, now);
		if (waited)
			kb->kb_waits++;
	}
	pthread_mutex_unlock(&kb->kb_lock);
	return ms;
}

/*
 * A request counts from its end: it reached Cloudflare somewhere between
 * its start and its end, and how long after the start differs from one
 * request (one target's thread) to the next, so the start alone could
 * let one more than the budget arrive in some window.  Never earlier:
 * once the ring has come round the slot is a later request's, and a
 * later time only makes the next start wait longer.
 */
void
kv_budget_done(struct kv_budget *kb, size_t slot, int64_t now)
{
	pthread_mutex_lock(&kb->kb_lock);
	if (slot < kb->kb_max && kb->kb_starts[slot] < now)
		kb->kb_starts[slot] = now;
	pthread_mutex_unlock(&kb->kb_lock);
}

/* A non-negative decimal of at most 9 digits at *p; -1 when none. */
static int64_t
kv_rl_number(const char **p)
{
	int64_t	v = 0;
	int	n = 0;

	while (**p >= '0' && **p <= '9') {
		if (++n > 9)
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	return n == 0 ? -1 : v;
}

/*
 * The Ratelimit field of the IETF draft Cloudflare sends: a list of
 * items like "default";r=0;t=30 (r: requests left, t: seconds until
 * the allowance is back).  An item whose r is 0 asks for a pause of t
 * seconds; with several, the longest wins.  Parameters we do not know
 * are skipped.
 */
int
kv_ratelimit_parse(const char *value, uint64_t *wait_ms)
{
	const char	*p = value;
	int64_t		 r, t, v, wait = -1;
	int		 items = 0;

	for (;;) {
		r = t = -1;
		while (*p == ' ' || *p == '\t')
			p++;
		/* The item: a quoted string or a token. */
		if (*p == '"') {
			for (p++; *p != '\0' && *p != '"'; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			if (*p != '"')
				return -1;
			p++;
		} else {
			while (*p != '\0' && *p != ';' && *p != ',' &&
			    *p != ' ' && *p != '\t')
				p++;
		}
		while (*p == ';') {
			p++;
			while (*p == ' ')
				p++;
			if ((p[0] == 'r' || p[0] == 't') && p[1] == '=') {
				char	k = p[0];

				p += 2;
				if ((v = kv_rl_number(&p)) == -1)
					return -1;
				if (k == 'r')
					r = v;
				else
					t = v;
			} else {
				while (*p != '\0' && *p != ';' && *p != ',')
					p++;
			}
		}
		items++;
		if (r == 0 && t >= 0 && t > wait)
			wait = t;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (*p != ',')
			return -1;
		p++;
	}
	if (wait < 0)
		return 0;
	*wait_ms = (uint64_t)wait * 1000;
	if (*wait_ms > KV_RETRY_AFTER_MAX_MS)
		*wait_ms = KV_RETRY_AFTER_MAX_MS;
	return 1;
}
