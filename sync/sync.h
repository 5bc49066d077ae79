/*
 * wfvault-sync's private header: the agent's configuration, the Cloudflare
 * Workers KV REST client with its one retry decision, and the engine that
 * turns the daemon's change feed into bulk KV writes.
 */
#ifndef WFVAULT_SYNC_H
#define WFVAULT_SYNC_H

#include <sys/types.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "proto.h"

#define SYNC_PROG		"wfvault-sync"
#define SYNC_DEFAULT_TARGET	"default"
#define SYNC_DEFAULT_API_BASE	"https://api.cloudflare.com/client/v4"

/* Cloudflare's limits (see the KV API reference). */
#define KV_ID_LEN		32		/* account and namespace ids */
#define KV_KEY_MAX		512
#define KV_PREFIX_MAX		(KV_KEY_MAX - PROTO_TENANT_MAX)
#define KV_BULK_MAX_ITEMS	10000
#define KV_BULK_MAX_BYTES	100000000ULL	/* 100 MB, decimal */
#define KV_LIST_LIMIT		1000

/* Our own bounds. */
#define KV_REPLY_MAX		(64 * 1024 * 1024)	/* reply body bytes */
#define KV_TOKEN_MAX		4096
#define KV_ONCE_ATTEMPTS	8	/* per request in the one-shot modes */
#define KV_CONNECT_TIMEOUT	10L	/* seconds */
#define KV_LOW_SPEED_TIME	30L	/* seconds below 1 byte/s */
#define KV_SLOW_MIN_ITEMS	100	/* 524s and timeouts shrink to here */
#define KV_GROW_AFTER		10	/* successes before the limit doubles */
/*
 * Pages a listing may take beyond one per KV_LIST_LIMIT keys it brought:
 * KV hands out short and empty pages (expired keys), but not endlessly.
 */
#define KV_LIST_SLACK_PAGES	1000

/* Retry timing (milliseconds). */
#define KV_BACKOFF_BASE_MS	500
#define KV_BACKOFF_CAP_MS	60000
#define KV_RETRY_AFTER_MIN_MS	1000
#define KV_RETRY_AFTER_MAX_MS	300000
#define KV_RETRY_AFTER_DEF_MS	5000

/* sync_conf.c */

enum sync_kind {
	SYNC_KIND_KV,			/* a Workers KV namespace */
	SYNC_KIND_WORKER_SECRETS	/* one tenant as a script's secrets */
};

#define SYNC_TARGET_NAME_MAX	PROTO_TENANT_MAX
#define SYNC_TARGETS_MAX	64	/* target blocks in one file */
#define SYNC_SEAL_KEY_LEN	32	/* AES-256 */

/*
 * One place the agent pushes to, with its own acknowledged position in
 * the daemon's feed (under st_name).  Every string is malloc'd, NULL when
 * not set; a target block inherits each key it does not set from the
 * keys before the first "target" line (not the kv-only keys for a
 * worker_secrets target).
 */
struct sync_target {
	char		*st_name;
	enum sync_kind	 st_kind;
	char		*st_account_id;		/* 32 lowercase hex */
	char		*st_namespace_id;	/* kv */
	char		*st_token_file;
	char		*st_token_credential;
	char		*st_key_prefix;		/* kv; NULL: no prefix */
	/* tenants: "*", "PREFIX*" or ids; NULL (none given): every tenant. */
	char		**st_tenants;
	size_t		 st_ntenants;
	char		*st_seal_key_file;	/* kv; NULL: values in clear */
	/* sodium_malloc'd SYNC_SEAL_KEY_LEN bytes (sync_seal_key_load). */
	unsigned char	*st_seal_key;
	char		*st_script_name;	/* worker_secrets */
	char		*st_secrets_tenant;	/* worker_secrets */
	uint64_t	 st_batch_max_items;
	uint64_t	 st_batch_max_bytes;
	uint64_t	 st_request_timeout;	/* seconds */
	uint64_t	 st_settle_time;	/* seconds */
	uint32_t	 st_set;	/* SYNC_SET_* given in this block */
};

struct sync_conf {
	char		*sc_socket;
	char		*sc_api_base;	/* no trailing '/' */
	char		*sc_ca_file;
	int		 sc_api_plain_http;	/* http:// to a loopback host */
	unsigned	 sc_prune_max_share;	/* percent of marked keys */
	uint64_t	 sc_budget_requests;	/* request_budget N/... */
	uint64_t	 sc_budget_window;	/* .../WINDOW, seconds */
	struct sync_target *sc_targets;	/* in the order of the file */
	size_t		 sc_ntargets;
	/* While parsing: the keys before the first target, the block. */
	struct sync_target sc_defaults;
	struct sync_target *sc_cur;
	const char	*sc_global_in_block;	/* a global key after target */
};

#define SYNC_DEFAULT_BATCH_ITEMS	KV_BULK_MAX_ITEMS
#define SYNC_DEFAULT_BATCH_BYTES	(95ULL * 1024 * 1024)
/* Cloudflare's edge gives up on a request after 100 s (a 524). */
#define SYNC_DEFAULT_REQUEST_TIMEOUT	150
#define SYNC_DEFAULT_SETTLE_TIME	130
#define SYNC_SETTLE_TIME_MAX		3600
#define SYNC_DEFAULT_PRUNE_MAX_SHARE	10	/* percent */
/* Half of Cloudflare's 1,200 requests per 5 minutes per user. */
#define SYNC_DEFAULT_BUDGET_REQUESTS	600
#define SYNC_DEFAULT_BUDGET_WINDOW	300
#define SYNC_BUDGET_REQUESTS_MAX	1000000
#define SYNC_BUDGET_WINDOW_MAX		86400

/* Sets the defaults; every string member NULL until parsed. */
void	sync_conf_init(struct sync_conf *);
/*
 * Parses a config file (or a buffer; name is used in messages), then
 * checks what no single line can: required keys per target and kind,
 * exactly one token source, defaults.  At least one target results: a
 * file without a "target" line is one target named "default".  Returns
 * 0, or -1 with "file:line: message" (or "file: target 'x': message")
 * in err.
 */
int	sync_conf_parse_file(const char *path, struct sync_conf *, char *err,
	    size_t errlen);
int	sync_conf_parse_buffer(const char *name, const char *buf, size_t len,
	    struct sync_conf *, char *err, size_t errlen);
/* Frees every string and seal key of the config.  Safe to repeat. */
void	sync_conf_release(struct sync_conf *);
/* The target named name, or NULL. */
struct sync_target *sync_conf_target(const struct sync_conf *,
	    const char *name);
/* Non-zero when the target's tenants list covers tenant. */
int	sync_target_wants(const struct sync_target *, const char *tenant);
/*
 * Reads st_seal_key_file into st_seal_key (sodium_malloc'd, released by
 * sync_conf_release): one line holding the base64 of 32 bytes.  The file
 * is checked as the token file is.  No-op without seal_key_file.  The
 * key never appears in err.  Returns 0 or -1.
 */
int	sync_seal_key_load(struct sync_target *, char *err, size_t errlen);
/*
 * Checks an API base URL: https://HOST[:PORT][/PATH], or http:// when HOST
 * is 127.0.0.1, [::1] or localhost (*plain_http set then).  Returns 0 or -1
 * with a reason in err.
 */
int	sync_api_base_check(const char *url, int *plain_http, char *err,
	    size_t errlen);
/*
 * Reads the API token from cf_api_token_file or the systemd credential.
 * Refuses a symbolic link, a file owned by anyone but root or the
 * effective uid, and a token file group or others may access (for a
 * credential: others).  On 0, *token is a new NUL-terminated buffer the
 * caller releases with sync_token_free (which wipes it).  The token never
 * appears in err.
 */
int	sync_token_load(const struct sync_target *, char **token, char *err,
	    size_t errlen);
void	sync_token_free(char *token);

/* kv_retry.c */

/* What one attempt of a request came to. */
struct kv_outcome {
	CURLcode	 ko_curl;
	const char	*ko_curl_error;	/* curl's error buffer, or NULL */
	long		 ko_status;	/* HTTP status; 0 without a reply */
	int		 ko_sent;	/* bytes of the request went out */
	int		 ko_envelope;	/* the body is a Cloudflare envelope */
	int		 ko_success;	/* its "success" */
	long		 ko_error_code;	/* errors[0].code, 0 when none */
	const char	*ko_error_message; /* errors[0].message, or NULL */
	/* Every errors[].code and error_chain code (ko_error_code if none). */
	const long	*ko_codes;
	size_t		 ko_ncodes;
	int		 ko_challenge;	/* cf-mitigated: challenge */
	const char	*ko_retry_after; /* the header's value, or NULL */
	time_t		 ko_now;	/* to resolve an HTTP-date */
	size_t		 ko_unsuccessful; /* unsuccessful_keys of a bulk */
	size_t		 ko_items;	/* items in the request */
	unsigned	 ko_attempt;	/* 0 for the first attempt */
	unsigned	 ko_max_attempts; /* 0: retry forever */
	/* The target's kind: which permission a refusal names. */
	enum sync_kind	 ko_kind;
	/*
	 * Where the target's token comes from ("cf_api_token_file PATH",
	 * "cf_api_token_credential NAME"), never the token; NULL: both
	 * settings are named.
	 */
	const char	*ko_token_source;
};

enum kv_verdict {
	KV_OK,		/* done */
	KV_RETRY,	/* the same request again after kd_delay_ms */
	KV_SPLIT,	/* too large: send each half on its own */
	KV_FATAL	/* stop; kd_reason names the setting to fix */
};

struct kv_decision {
	enum kv_verdict	 kd_verdict;
	uint64_t	 kd_delay_ms;
	/*
	 * The server may have carried the request out, or may still do so
	 * (a timeout or a transport error after sending, a 5xx, a 408),
	 * whatever later attempts come to: see settle_time.
	 */
	int		 kd_uncertain;
	/* Too slow for its size (a 524, a timeout): send smaller batches. */
	int		 kd_slow;
	/* Cloudflare error classes (kd_reason names the setting). */
	int		 kd_auth;	/* 1000, 9109, 10000: the token */
	int		 kd_daily_limit; /* 10048: no writes until 00:00 UTC */
	int		 kd_not_found;	/* 10009: no such key */
	int		 kd_no_route;	/* 7003, 7000: no such account (path) */
	char		 kd_reason[768];
	/* The refusal alone, " HTTP 403: message [code 10000]" style. */
	char		 kd_detail[384];
};

/*
 * The one place that decides what to do after an attempt.  rnd is a
 * random number for the jitter of the exponential backoff.  A refusal
 * is classified by Cloudflare's error codes first (any of ko_codes), the
 * HTTP status only after: a 429 with 10048 is the daily write limit of
 * the free plan, not a rate limit to retry.
 */
void		kv_retry_decide(const struct kv_outcome *, uint32_t rnd,
		    struct kv_decision *);
/* base * 2^attempt capped, then a random point in [50%, 100%] of it. */
uint64_t	kv_backoff_ms(unsigned attempt, uint32_t rnd);
/*
 * Parses a Retry-After value (delta-seconds or an HTTP-date) into a wait
 * clamped to [1 s, 300 s].  Returns 0, or -1 when value is garbage.
 */
int		kv_retry_after_ms(const char *value, time_t now, uint64_t *ms);

/* kv_batch.c */

/*
 * How many of the items with serialised sizes[0..n) go into the next bulk
 * request: at most max_items, and the JSON array "[a,b,...]" of them at
 * most max_bytes.  Returns 0 only when sizes[0] alone does not fit.
 */
size_t		kv_batch_split(const size_t *sizes, size_t n, size_t max_items,
		    size_t max_bytes);
/* The bytes of the JSON array holding items of sizes[0..n). */
size_t		kv_batch_bytes(const size_t *sizes, size_t n);

/*
 * The most items one bulk request carries, adapted for the life of the
 * process: a 413 halves it (down to 1), a 524 or a timeout halves it down
 * to KV_SLOW_MIN_ITEMS, and KV_GROW_AFTER successes in a row double it
 * again, never past kl_max (batch_max_items).
 */
struct kv_limit {
	size_t		 kl_items;
	size_t		 kl_max;
	unsigned	 kl_streak;	/* successes in a row */
};

enum kv_limit_event {
	KV_LIMIT_OK,		/* a request succeeded */
	KV_LIMIT_TOO_LARGE,	/* 413 */
	KV_LIMIT_SLOW,		/* 524, timeout */
	KV_LIMIT_FAILED		/* any other failure */
};

void	kv_limit_init(struct kv_limit *, size_t max_items);
/* sent: the items in the request the event is about. */
void	kv_limit_update(struct kv_limit *, enum kv_limit_event, size_t sent);

/* One item of a bulk request, serialised. */
struct kv_item {
	char		*ki_key;	/* the KV key */
	char		*ki_json;	/* {"key":..,"value":..,..} or "key" */
	size_t		 ki_len;
	uint64_t	 ki_version;
	int		 ki_uncertain;	/* sent in a request of unknown fate */
};

struct kv_items {
	struct kv_item	*kis_v;
	size_t		 kis_n;
	size_t		 kis_cap;
	size_t		 kis_bytes;	/* sum of ki_len */
};
#define KV_ITEMS_INIT { NULL, 0, 0, 0 }

/*
 * The ownership mark in the metadata of every value the agent writes:
 * --reconcile --prune and the full pass delete only keys carrying it.
 */
#define KV_MARK_NAME	"wfvault"
#define KV_MARK_VALUE	1

/*
 * A write: key, the config (an object) as compact JSON with sorted keys,
 * metadata {"version": N, "wfvault": 1}.  kid: config is a sealed
 * value's envelope (seal_config) and kid its key id, noted in the
 * metadata as "kid"; NULL for an unsealed value.  A delete: the key as
 * a JSON string.  Both copy
 * what they need.  Return 0 or -1 (out of memory).
 */
int	kv_items_add_put(struct kv_items *, const char *key, json_t *config,
	    uint64_t version, const char *kid);
int	kv_items_add_delete(struct kv_items *, const char *key);
/* Drops (wiping) the first n items. */
void	kv_items_drop(struct kv_items *, size_t n);
void	kv_items_release(struct kv_items *);
/* kv_batch_split over the items. */
size_t	kv_items_split(const struct kv_items *, size_t max_items,
	    size_t max_bytes);

/* kv_budget.c */

/*
 * request_budget: at most kb_max requests start in any kb_window_ms, for
 * the clients of every target together; and none before
 * kb_blocked_until (CLOCK_MONOTONIC ms) once Cloudflare's Ratelimit
 * header says its allowance is used up.  The targets run in threads of
 * their own: kv_budget_take and kv_budget_block hold kb_lock; the other
 * functions are for one thread (and the unit tests).
 */
struct kv_budget {
	pthread_mutex_t	 kb_lock;
	int64_t		*kb_starts;	/* ring of the last kb_max starts */
	size_t		 kb_max;
	size_t		 kb_n;
	size_t		 kb_head;	/* the oldest start, once full */
	int64_t		 kb_window_ms;
	int64_t		 kb_blocked_until;
	uint64_t	 kb_requests;	/* started */
	uint64_t	 kb_waits;	/* requests that had to wait */
	uint64_t	 kb_waited_ms;
};

/* Returns 0, or -1 (out of memory, or a zero argument). */
int	kv_budget_init(struct kv_budget *, uint64_t requests,
	    uint64_t window_s);
void	kv_budget_release(struct kv_budget *);
/* How long from now (ms) until a request may start; 0: at once. */
uint64_t kv_budget_delay(const struct kv_budget *, int64_t now);
/* A request starts now. */
void	kv_budget_note(struct kv_budget *, int64_t now);
/* No request before until.  Takes kb_lock. */
void	kv_budget_block(struct kv_budget *, int64_t until);
/*
 * Takes kb_lock: when a request may start now, counts it (a start, and
 * one that had to wait when waited is set) in *slot and returns 0; else
 * returns how long to wait (ms), added to kb_waited_ms, with
 * *ratelimited set when Cloudflare's Ratelimit header is the reason.
 */
uint64_t kv_budget_take(struct kv_budget *, int64_t now, int waited,
	    int *ratelimited, size_t *slot);
/* The request of slot ended at now: it counts from then.  Takes kb_lock. */
void	kv_budget_done(struct kv_budget *, size_t slot, int64_t now);
/*
 * A Ratelimit header's value ("default";r=0;t=30): 1 with the pause in
 * *wait_ms (capped at KV_RETRY_AFTER_MAX_MS) when an item's r is 0, 0
 * when requests are left, -1 when it cannot be parsed.
 */
int	kv_ratelimit_parse(const char *value, uint64_t *wait_ms);

/* kv_http.c */

#define KV_CODES_MAX	16	/* error codes of one reply we look at */

/* A parsed reply body. */
struct kv_envelope {
	json_t		*ke_root;	/* new reference or NULL */
	int		 ke_parsed;	/* an object with a boolean "success" */
	int		 ke_success;
	long		 ke_code;	/* errors[0].code */
	char		 ke_message[256]; /* errors[0].message, printable */
	/* Every errors[].code, then their error_chain codes, in order. */
	long		 ke_codes[KV_CODES_MAX];
	size_t		 ke_ncodes;
};
#define KV_ENVELOPE_INIT { NULL, 0, 0, 0, "", { 0 }, 0 }

/* Never fails: a body that is not an envelope leaves ke_parsed 0. */
void	kv_envelope_parse(const char *body, size_t len, struct kv_envelope *);
void	kv_envelope_release(struct kv_envelope *);
/*
 * The unsuccessful_keys of a bulk reply's result as a borrowed array (lives
 * as long as env), or NULL when there are none.
 */
json_t	*kv_envelope_unsuccessful(const struct kv_envelope *);

/* The reply of the last request. */
struct kv_reply {
	long		 kr_status;
	char		*kr_body;
	size_t		 kr_len;
	size_t		 kr_cap;
	char		 kr_retry_after[64];
	int		 kr_has_retry_after;
	int		 kr_challenge;	/* cf-mitigated: challenge */
	char		 kr_ratelimit[128];	/* the Ratelimit header */
	int		 kr_has_ratelimit;
	char		 kr_curl_error[CURL_ERROR_SIZE];
};

struct kv_client {
	CURL			*kc_curl;
	struct curl_slist	*kc_headers;	/* holds the token */
	char			*kc_ns_url;	/* .../namespaces/{id} */
	char			*kc_ca_file;
	const char		*kc_protocols;
	enum sync_kind		 kc_kind;	/* the target's, for kd_reason */
	/* The target's token source, for kd_reason: see ko_token_source. */
	char			*kc_token_source;
	long			 kc_timeout;	/* for the reply, seconds */
	/* What set kc_timeout, for messages; NULL: request_timeout. */
	const char		*kc_timeout_what;
	/* Shared by every target's client (borrowed); NULL: none. */
	struct kv_budget	*kc_budget;
	size_t			 kc_budget_slot;	/* the attempt's */
	/* The attempt under way (CLOCK_MONOTONIC ms): see kv_progress_cb. */
	int64_t			 kc_start_ms;
	int64_t			 kc_progress_ms;	/* last body byte out */
	int64_t			 kc_sent_ms;	/* body all out; 0: not yet */
	curl_off_t		 kc_ulnow;
	curl_off_t		 kc_body_len;	/* bytes of the body */
	int			 kc_abort;	/* KV_ABORT_* */
	unsigned		 kc_max_attempts; /* 0: retry forever */
	uint64_t		 kc_requests;	/* HTTP requests made */
	struct kv_limit		 kc_limit;	/* items per bulk request */
	/* CLOCK_MONOTONIC ms when the last request of unknown fate ended. */
	int64_t			 kc_uncertain_ms;
	/* Set when a reply said 10048: the day's free-plan writes are used. */
	int			 kc_daily_limit;
	struct kv_reply		 kc_reply;
	/* Waits ms; -1 when the agent is told to stop.  NULL: nanosleep. */
	int			(*kc_sleep)(uint64_t ms);
	/* Non-zero when the agent is told to stop.  NULL: never. */
	int			(*kc_stopped)(void);
};

/* Why kv_progress_cb ended a transfer. */
#define KV_ABORT_STOP		1	/* the agent is told to stop */
#define KV_ABORT_STALLED	2	/* the body stalled while being sent */
#define KV_ABORT_TIMEOUT	3	/* no reply within request_timeout */

/* Return codes of the requests. */
#define KV_E_FAIL	(-1)	/* gave up; err says why and what to fix */
#define KV_E_STOP	(-2)	/* interrupted by a signal */

/*
 * Installs libcurl's allocator (every block it frees is wiped, so copies
 * of the token and of request bodies do not linger) and initialises it.
 */
int	kv_global_init(char *err, size_t errlen);
void	kv_global_cleanup(void);
/*
 * A client for one target (the global settings from sc); token is copied
 * into the request headers.  kc_ns_url is NULL for a target without a
 * namespace (worker_secrets).
 */
int	kv_client_init(struct kv_client *, const struct sync_conf *,
	    const struct sync_target *, const char *token, char *err,
	    size_t errlen);
void	kv_client_release(struct kv_client *);
/*
 * One attempt: performs the request, parses the reply into env (the
 * caller releases it) and decides.  *bad is the borrowed
 * unsuccessful_keys array of a successful bulk reply, or NULL.
 */
CURLcode kv_attempt(struct kv_client *, const char *method, const char *url,
	    const char *body, size_t len, size_t items, unsigned attempt,
	    struct kv_envelope *env, json_t **bad, struct kv_decision *);
/* Waits ms with kc_sleep (or nanosleep): 0, or -1 when told to stop. */
int	kv_wait(struct kv_client *, uint64_t ms);
/* Non-zero when kc_stopped says the agent is told to stop. */
int	kv_is_stopped(struct kv_client *);

/* kv.c */

/*
 * Writes (PUT .../bulk) or deletes (POST .../bulk/delete) items[0..n)
 * with retries, in requests of at most kc_limit.kl_items items;
 * unsuccessful_keys are sent again.  Each item sent in a request whose
 * fate is unknown gets ki_uncertain set (even when a retry succeeded),
 * and kc_uncertain_ms the time.  Returns 0, KV_E_FAIL or KV_E_STOP.
 */
int	kv_bulk_put(struct kv_client *, struct kv_item *items, size_t n,
	    char *err, size_t errlen);
int	kv_bulk_delete(struct kv_client *, struct kv_item *items, size_t n,
	    char *err, size_t errlen);
/*
 * Which items of v[0..m) to send again after a bulk reply listing bad as
 * unsuccessful_keys: those it names, moved to the front of v in order;
 * returns how many.  When an entry is not a string or names none of the
 * sent keys, the reply cannot be trusted and every item is kept (m).
 */
size_t	kv_unsuccessful_keep(struct kv_item **v, size_t m, json_t *bad);
/*
 * The keys written in requests of unknown fate, in fates (KV key ->
 * integer): what went out (a version, or KV_FATE_DELETE) while every
 * write of the key since carried the same, else KV_FATE_MIXED.  A late
 * landing of a request is harmless in the first case and can undo a
 * newer write in the second.  kv_fate_note records one write of key
 * (uncertain or known to be done); a known write of a key not in fates
 * changes nothing.  Returns 0, or -1 when out of memory.
 */
#define KV_FATE_DELETE	(-1)
#define KV_FATE_MIXED	(-2)
int	kv_fate_note(json_t *fates, const char *key, json_int_t wrote,
	    int uncertain);
/*
 * Lists every key under prefix (NULL: all) into keys: name -> the
 * metadata's version as an integer when the metadata carries the
 * ownership mark (KV_MARK_NAME), else null; and, unless kids is NULL,
 * into kids: name -> the metadata's "kid" (a sealed value's key id).
 * Follows the cursor, past empty pages too, and fails when a page hands
 * back a cursor seen before or the pages outnumber what the keys they
 * brought explain (see KV_LIST_SLACK_PAGES).  Returns 0, KV_E_FAIL or KV_E_STOP.
 */
int	kv_list_keys(struct kv_client *, const char *prefix, json_t *keys,
	    json_t *kids, char *err, size_t errlen);

/* sync_daemon.c, sync_engine.c, sync_repair.c: the state they share */

/*
 * The one connection to wfvaultd every target's thread makes its requests
 * on, one request at a time (sl_lock): they are short, and the daemon
 * bounds the connections a uid may hold.
 */
struct sync_link {
	pthread_mutex_t		 sl_lock;
	struct proto_client	 sl_conn;
	int			 sl_connected_once;
};

/* One target's pass: each target's thread has its own. */
struct sync_ctx {
	const struct sync_conf	*sx_conf;
	const struct sync_target *sx_target;	/* the one being pushed */
	struct kv_client	*sx_kv;		/* sx_target's client */
	struct sync_link	*sx_link;	/* shared */
	int			 sx_dry_run;
	int			 sx_prune;
	int			 sx_force;	/* --force: prune past the share */
	FILE			*sx_out;	/* dry-run and report lines */
	/* Before each of those lines: "NAME: " with several targets. */
	const char		*sx_pfx;
	/*
	 * The KV keys written in requests of unknown fate (kv_fate_note):
	 * settle_time must pass before the feed is acknowledged, and mixed
	 * ones are written again then.  NULL when there are none.
	 */
	json_t			*sx_uncertain;
};

struct sync_report {
	uint64_t	sr_seq;		/* the feed is pushed up to here */
	uint64_t	sr_written;
	uint64_t	sr_deleted;
	uint64_t	sr_requests;
	uint64_t	sr_vault_tenants;	/* reconcile */
	uint64_t	sr_kv_keys;
	uint64_t	sr_stale;
	uint64_t	sr_prunable;	/* of those, --prune would delete */
	uint64_t	sr_repushed;	/* again after settle_time */
	int		sr_full;	/* a full pass: the feed was trimmed */
};

/* Return codes of the engine. */
#define SYNC_E_FAIL	(-1)	/* KV or the daemon refused; err says why */
#define SYNC_E_DAEMON	(-2)	/* wfvaultd unreachable or connection lost */
#define SYNC_E_STOP	(-3)	/* a signal asked us to stop */
#define SYNC_E_TRIMMED	(-4)	/* internal: the feed is trimmed past us */

/* sync_daemon.c */

/*
 * SIGTERM, SIGINT: stop; SIGPIPE ignored.  Returns 0 or -1 (errno).
 * Every thread sees the stop: sync_stopped(), and sync_sleep() and
 * sync_wait_changed() return at once.
 */
int	sync_signals_init(void);
int	sync_stopped(void);
/* The same stop as a signal's, from the agent itself. */
void	sync_stop(void);
/* Sleeps ms unless told to stop: 0, or -1 when stopping. */
int	sync_sleep(uint64_t ms);

/* Returns 0, or -1 (errno). */
int	sync_link_init(struct sync_link *);
void	sync_link_release(struct sync_link *);
/*
 * Connects ctx's link unless it is connected, and checks the peer.
 * Returns 0 or SYNC_E_*.
 */
int	sync_reach(struct sync_ctx *, char *err, size_t errlen);
void	sync_disconnect(struct sync_ctx *);
/*
 * Waits up to timeout_ms (-1: forever) on a watching connection for a
 * "changed" notification.  Returns 0 with *seq, 1 on timeout, SYNC_E_DAEMON
 * (err filled) or SYNC_E_STOP.
 */
int	sync_wait_changed(struct proto_client *, int timeout_ms, uint64_t *seq,
	    char *err, size_t errlen);
/*
 * One request to the daemon, reconnecting once after a lost connection.
 * params is stolen.  Returns 0 with *result (new reference),
 * SYNC_E_DAEMON, or SYNC_E_FAIL (pe->pe_code the daemon's error, or 0).
 */
int	sync_call(struct sync_ctx *, const char *method, json_t *params,
	    json_t **result, struct proto_error *pe, char *err, size_t errlen);
/* A non-negative integer member of obj into *out: 0, or -1. */
int	sync_get_uint(json_t *obj, const char *name, uint64_t *out);
/*
 * Reads a tenant's current config.  Returns 0 with *fields (new reference)
 * and *version, 1 when the tenant no longer exists, or SYNC_E_*.
 */
int	sync_fetch(struct sync_ctx *, const char *tenant, json_t **fields,
	    uint64_t *version, char *err, size_t errlen);

/* sync_engine.c */

/*
 * Pushes everything the feed holds past the target's acknowledged seq,
 * then acknowledges it (not in dry-run).  When the daemon has trimmed
 * the feed past that seq, first a full pass: every live tenant's config
 * is written, and KV keys the vault wrote (the ownership mark)
 * whose tenant is gone are deleted; then the feed's last seq at its
 * start is acknowledged.  Returns 0 or SYNC_E_*.
 */
int	sync_engine_run(struct sync_ctx *, struct sync_report *, char *err,
	    size_t errlen);
/*
 * ctx's target's acknowledged seq and the feed's last (sync_state).
 * Returns 0 or SYNC_E_*.
 */
int	sync_state(struct sync_ctx *, uint64_t *acked, uint64_t *last,
	    char *err, size_t errlen);
/* The KV key of tenant (prefix + id) into key[len]. */
void	sync_key(const struct sync_target *, const char *tenant, char *key,
	    size_t len);
/* Writes s for a terminal: KV keys from a listing may hold anything. */
void	sync_print_key(FILE *out, const char *s);
/* A KV_E_* code as the engine's SYNC_E_*. */
int	sync_kv_rc(int rc);
/*
 * Queue a write or a delete in kis and send the batches that are full;
 * sync_flush(..., all = 1) sends the rest (or prints it in dry-run).
 * Return 0 or SYNC_E_*.
 */
int	sync_flush(struct sync_ctx *, struct kv_items *kis, int del, int all,
	    struct sync_report *, char *err, size_t errlen);
int	sync_add_put(struct sync_ctx *, struct kv_items *puts, const char *key,
	    json_t *fields, uint64_t version, struct sync_report *, char *err,
	    size_t errlen);
int	sync_add_delete(struct sync_ctx *, struct kv_items *dels,
	    const char *key, struct sync_report *, char *err, size_t errlen);
/*
 * Waits settle_time after the last request of unknown fate, then writes
 * the mixed keys again.  Returns 0 or SYNC_E_*.
 */
int	sync_settle(struct sync_ctx *, struct sync_report *, char *err,
	    size_t errlen);

/* sync_runner.c: the targets at work, each in a thread of its own */

/* One target in this process. */
struct sync_runner {
	struct sync_runners	*ru_set;
	struct sync_target	*ru_target;
	struct kv_client	 ru_kv;		/* its own: batch limit, fates */
	int			 ru_kv_ready;
	struct sync_ctx		 ru_ctx;	/* its passes */
	char			*ru_setup_err;	/* --check: no client, why */
	pthread_t		 ru_thread;
	int			 ru_started;
	int			 ru_start_err;	/* pthread_create's */
	int			 ru_rc;		/* a one-shot pass's SYNC_E_* */
	int			 ru_checked;	/* its preflight passed */
	/* The service: under rs_lock. */
	int			 ru_need;	/* a pass is due */
	int			 ru_failing;
	uint64_t		 ru_synced;	/* pushed up to this seq */
	uint64_t		 ru_want;	/* the feed is at least here */
	int64_t			 ru_due_at;	/* no pass before (ms) */
	int64_t			 ru_retry_at;	/* after a failure (ms) */
	uint64_t		 ru_backoff;	/* ms */
	uint64_t		 ru_reconnect;	/* ms, the daemon lost */
};

struct sync_runners {
	struct sync_runner	*rs_v;
	size_t			 rs_n;
	/* The settings every runner's ru_ctx starts from; the main thread's. */
	struct sync_ctx		 rs_base;
	int			 rs_reconcile;
	pthread_mutex_t		 rs_lock;
	pthread_cond_t		 rs_cond;	/* CLOCK_MONOTONIC */
	int			 rs_ready;	/* lock and cond made */
	int			 rs_quit;
	int			 rs_down;	/* "cannot reach wfvaultd" said */
};

/* Room for n runners (the caller fills rs_v and rs_n).  0 or -1. */
int	runners_init(struct sync_runners *, size_t n);
/* Releases the runners' clients and state: after they have ended. */
void	runners_release(struct sync_runners *);
/*
 * The modes, every target in a thread of its own; each returns the exit
 * status.  runners_check: --check, a line per target.  runners_passes:
 * --once and --dry-run (reconcile 0) or --reconcile, each target's lines
 * together when it is done.  runners_serve: following the vault until
 * SIGTERM.
 */
int	runners_check(struct sync_runners *);
int	runners_passes(struct sync_runners *, int reconcile);
int	runners_serve(struct sync_runners *);

/* sync_check.c */

/* The key the write check deletes: '.' cannot start a tenant id. */
#define SYNC_PREFLIGHT_KEY	".wfvault-preflight"
/*
 * The Worker secret the write check of a worker_secrets target deletes:
 * secrets_name upper-cases every field name, so no field's secret has a
 * lowercase letter.  The check never deletes it when the script has it.
 */
#define SYNC_PREFLIGHT_SECRET	"wfvault_preflight"
/* Cloudflare's code for a secret the script does not have. */
#define CF_E_BINDING_NOT_FOUND	10056
/* Cloudflare's code for a Worker script the account does not have. */
#define CF_E_SCRIPT_NOT_FOUND	10007
/*
 * Proves one KV target's setup with real requests before any write: the
 * token is valid (GET /user/tokens/verify, then for an account-owned
 * token /accounts/{account}/tokens/verify), the namespace exists in the
 * account, and the token may write there (a bulk delete of prefix +
 * SYNC_PREFLIGHT_KEY, which no tenant key can be; deleting a missing key
 * changes nothing).  kc is the target's client (its kc_ns_url names the
 * namespace); prefix may be NULL.  Returns 0 with what was proven in msg,
 * KV_E_FAIL with the failure naming the one setting to fix, or KV_E_STOP.
 */
int	sync_preflight(struct kv_client *kc, const char *api_base,
	    const char *account_id, const char *namespace_id,
	    const char *prefix, char *msg, size_t msglen);
/*
 * A worker_secrets target's preflight: the token as above, the script's
 * secrets can be listed (GET /accounts/{account}/workers/scripts/
 * {script}/secrets), and the token may change them: a DELETE of
 * SYNC_PREFLIGHT_SECRET, which no field maps to, answered 10056 (no such
 * secret) proves it without writing one (a write deploys a new version
 * of the Worker).  When the script has a secret by that name, it is not
 * deleted: the check passes saying write was not proven.  Returns as
 * sync_preflight.
 */
int	sync_preflight_secrets(struct kv_client *kc, const char *api_base,
	    const char *account_id, const char *script, char *msg,
	    size_t msglen);
/* The preflight st's kind needs, with st's client kc. */
int	sync_preflight_target(const struct sync_conf *,
	    const struct sync_target *st, struct kv_client *kc, char *msg,
	    size_t msglen);
/*
 * Whether --prune may delete stale of the marked keys without --force:
 * at most share_pct percent of them (rounded down, but at least one key
 * when share_pct > 0).
 */
int	sync_prune_allowed(size_t marked, size_t stale, unsigned share_pct);
/* Milliseconds from now until the next 00:00 UTC (at least 1 s). */
uint64_t sync_ms_to_utc_midnight(time_t now);

/* sync_repair.c */

/* Lists KV and the vault and repairs drift.  Returns 0 or SYNC_E_*. */
int	sync_engine_reconcile(struct sync_ctx *, struct sync_report *,
	    char *err, size_t errlen);
/* What sync_repair does with keys of tenants the vault does not have. */
#define SYNC_REPAIR_RECONCILE	0	/* report; delete with --prune */
#define SYNC_REPAIR_RESYNC	1	/* delete those the vault wrote */
/*
 * Lists KV and the vault, writes what is missing or older in KV, and
 * deals with stale keys as mode says.  Returns 0 or SYNC_E_*.
 */
int	sync_repair(struct sync_ctx *, struct sync_report *, int mode,
	    char *err, size_t errlen);

/* seal.c */

#define SEAL_NONCE_LEN	12
#define SEAL_KID_LEN	16	/* hex characters */

/*
 * The keys are SYNC_SEAL_KEY_LEN bytes (sync_seal_key_load reads them).
 * Initialises libsodium and refuses (-1, err says so) where AES-256-GCM
 * is not available (a CPU without AES-NI and CLMUL).
 */
int	seal_init(char *err, size_t errlen);
/*
 * The key id: the first 16 hex characters of
 * SHA-256("wfvault-seal-key-id" || key), NUL-terminated.
 */
void	seal_key_id(const unsigned char *key, char kid[SEAL_KID_LEN + 1]);
/*
 * Seals config (an object; its compact JSON with sorted keys, the bytes an
 * unsealed value holds) for tenant at version with a random nonce.
 * Returns the value's envelope as a new object
 * {"wfvault_sealed":1,"kid":..,"v":..,"nonce":B64,"ct":B64}, or NULL.
 */
json_t	*seal_config(const unsigned char *key, const char *tenant,
	    uint64_t version, json_t *config);
/* The same with a given nonce: for the known-answer tests only. */
json_t	*seal_config_nonce(const unsigned char *key, const char *tenant,
	    uint64_t version, json_t *config, const unsigned char *nonce);
/*
 * Opens an envelope sealed with key for tenant at version: 0 with *plain
 * a new string (the caller wipes and frees it with proto_wipe_free), or
 * -1 when it does not open.
 */
int	seal_open(const unsigned char *key, const char *tenant,
	    uint64_t version, json_t *env, char **plain);
/*
 * Writes a new random key to path (O_EXCL, mode 0400) and its id to kid.
 * Returns 0 or -1 with err.
 */
int	seal_key_generate(const char *path, char kid[SEAL_KID_LEN + 1],
	    char *err, size_t errlen);

/* secrets.c: the worker_secrets target */

#define SECRETS_CHANGES_LIMIT	10000	/* feed changes read at once */

/*
 * What a worker_secrets target knows, in memory only: a keyed hash of
 * each value it pushed (never the value), so a change sends only the
 * fields that differ.
 */
struct secrets_state {
	char		*ss_url;	/* .../workers/scripts/{s}/secrets */
	json_t		*ss_pushed;	/* field -> hex hash of its text */
	json_t		*ss_uncertain;	/* fields sent in requests of unknown fate */
	int		 ss_synced;	/* one push went through */
	unsigned char	 ss_key[32];	/* keys the hashes: random a process */
};

int	secrets_state_init(struct secrets_state *, const char *api_base,
	    const char *account, const char *script, char *err, size_t errlen);
void	secrets_state_release(struct secrets_state *);
/* A field's secret name, upper-cased (openai_api_key -> OPENAI_API_KEY). */
void	secrets_name(const char *field, char *name, size_t len);
/*
 * The secrets API of one script (url: ss_url), each request retried by
 * kv_retry_decide's verdicts.  secrets_list adds every secret name to
 * names; secrets_delete of a secret the script lacks (10056) is done.
 * *uncertain (may be NULL) is set when an attempt's fate is unknown.
 * Return 0, KV_E_FAIL (err names the setting to fix) or KV_E_STOP.
 */
int	secrets_list(struct kv_client *, const char *url, json_t *names,
	    char *err, size_t errlen);
int	secrets_put(struct kv_client *, const char *url, const char *name,
	    const char *text, size_t textlen, int *uncertain, char *err,
	    size_t errlen);
int	secrets_delete(struct kv_client *, const char *url, const char *name,
	    int *uncertain, char *err, size_t errlen);
/*
 * One pass of ctx's worker_secrets target: when the feed past the
 * target's acknowledged seq holds a change of its secrets_tenant (or is
 * trimmed past it), the changed fields go out (all of them at the first
 * push of a process) and removed ones are deleted; then the feed is
 * acknowledged.  What each target pushed is
 * kept (by target name) until secrets_release_all.  Returns 0 or
 * SYNC_E_*.
 */
int	secrets_engine_run(struct sync_ctx *, struct sync_report *, char *err,
	    size_t errlen);
/*
 * --reconcile of ctx's worker_secrets target: every field of its tenant
 * again and the deletes a start makes (the feed is not touched).
 */
int	secrets_engine_reconcile(struct sync_ctx *, struct sync_report *,
	    char *err, size_t errlen);
void	secrets_release_all(void);

#endif /* WFVAULT_SYNC_H */
