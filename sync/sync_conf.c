/*
 * wfvault-sync's configuration: the keyword table, the checks each value
 * gets, the target blocks and what they inherit, and reading the
 * Cloudflare API token and the seal keys from their files.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "log.h"
#include "proto.h"
#include "sync.h"

/* st_set: the keys given in a target's own block (or before any). */
#define SYNC_SET_KIND		0x0001
#define SYNC_SET_ACCOUNT	0x0002
#define SYNC_SET_NAMESPACE	0x0004
#define SYNC_SET_TOKEN		0x0008	/* cf_api_token_file or _credential */
#define SYNC_SET_PREFIX		0x0010
#define SYNC_SET_TENANTS	0x0020
#define SYNC_SET_SEAL		0x0040
#define SYNC_SET_SCRIPT		0x0080
#define SYNC_SET_SECRETS_TENANT	0x0100
#define SYNC_SET_BATCH_ITEMS	0x0200
#define SYNC_SET_BATCH_BYTES	0x0400
#define SYNC_SET_TIMEOUT	0x0800
#define SYNC_SET_SETTLE		0x1000
/* Keys a kv target has and a worker_secrets one does not. */
#define SYNC_SET_KV_ONLY	(SYNC_SET_NAMESPACE | SYNC_SET_PREFIX | \
				    SYNC_SET_TENANTS | SYNC_SET_SEAL)
#define SYNC_SET_WS_ONLY	(SYNC_SET_SCRIPT | SYNC_SET_SECRETS_TENANT)

#define SYNC_SEAL_FILE_MAX	256	/* bytes of a seal key file */

static int	sync_conf_socket(void *, const char *, char *, size_t);
static int	sync_conf_target_kw(void *, const char *, char *, size_t);
static int	sync_conf_api_base(void *, const char *, char *, size_t);
static int	sync_conf_ca_file(void *, const char *, char *, size_t);
static int	sync_conf_budget(void *, const char *, char *, size_t);
static int	sync_conf_kind(void *, const char *, char *, size_t);
static int	sync_conf_account_id(void *, const char *, char *, size_t);
static int	sync_conf_namespace_id(void *, const char *, char *, size_t);
static int	sync_conf_token_file(void *, const char *, char *, size_t);
static int	sync_conf_token_credential(void *, const char *, char *,
		    size_t);
static int	sync_conf_key_prefix(void *, const char *, char *, size_t);
static int	sync_conf_tenants(void *, const char *, char *, size_t);
static int	sync_conf_seal_key_file(void *, const char *, char *, size_t);
static int	sync_conf_script_name(void *, const char *, char *, size_t);
static int	sync_conf_secrets_tenant(void *, const char *, char *,
		    size_t);
static int	sync_conf_batch_items(void *, const char *, char *, size_t);
static int	sync_conf_batch_bytes(void *, const char *, char *, size_t);
static int	sync_conf_request_timeout(void *, const char *, char *,
		    size_t);
static int	sync_conf_settle_time(void *, const char *, char *, size_t);
static int	sync_file_check(const struct stat *, const char *,
		    const char *, int, char *, size_t);
static int	sync_conf_prune_max_share(void *, const char *, char *,
		    size_t);

/*
 * Per-target keys may come once per block, so they are not CONF_ONCE:
 * st_set catches a repeat within one block.
 */
static const struct conf_keyword sync_keywords[] = {
	{ "socket", CONF_CUSTOM, 0, 0, 0, CONF_ONCE, sync_conf_socket },
	{ "target", CONF_CUSTOM, 0, 0, 0, 0, sync_conf_target_kw },
	{ "cf_api_base", CONF_CUSTOM, 0, 0, 0, CONF_ONCE, sync_conf_api_base },
	{ "cf_ca_file", CONF_CUSTOM, 0, 0, 0, CONF_ONCE, sync_conf_ca_file },
	{ "request_budget", CONF_CUSTOM, 0, 0, 0, CONF_ONCE,
	    sync_conf_budget },
	{ "kind", CONF_CUSTOM, 0, 0, 0, 0, sync_conf_kind },
	{ "cf_account_id", CONF_CUSTOM, 0, 0, 0, 0, sync_conf_account_id },
	{ "cf_namespace_id", CONF_CUSTOM, 0, 0, 0, 0,
	    sync_conf_namespace_id },
	{ "cf_api_token_file", CONF_CUSTOM, 0, 0, 0, 0,
	    sync_conf_token_file },
	{ "cf_api_token_credential", CONF_CUSTOM, 0, 0, 0, 0,
	    sync_conf_token_credential },
	{ "kv_key_prefix", CONF_CUSTOM, 0, 0, 0, 0, sync_conf_key_prefix },
	{ "tenants", CONF_CUSTOM, 0, 0, 0, 0, sync_conf_tenants },
	{ "seal_key_file", CONF_CUSTOM, 0, 0, 0, 0, sync_conf_seal_key_file },
	{ "cf_script_name", CONF_CUSTOM, 0, 0, 0, 0, sync_conf_script_name },
	{ "secrets_tenant", CONF_CUSTOM, 0, 0, 0, 0,
	    sync_conf_secrets_tenant },
	{ "batch_max_items", CONF_CUSTOM, 0, 0, 0, 0, sync_conf_batch_items },
	{ "batch_max_bytes", CONF_CUSTOM, 0, 0, 0, 0, sync_conf_batch_bytes },
	{ "request_timeout", CONF_CUSTOM, 0, 0, 0, 0,
	    sync_conf_request_timeout },
	{ "settle_time", CONF_CUSTOM, 0, 0, 0, 0, sync_conf_settle_time },
	{ "prune_max_share", CONF_CUSTOM, 0, 0, 0, CONF_ONCE,
	    sync_conf_prune_max_share },
	{ NULL, 0, 0, 0, 0, 0, NULL }
};

/* Replaces *dst with a copy of value. */
static int
sync_conf_store(char **dst, const char *value, char *err, size_t errlen)
{
	char	*s;

	if ((s = strdup(value)) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	free(*dst);
	*dst = s;
	return 0;
}

/*
 * A global key: before the first target line, or anywhere in a file with
 * one target (as before there were target blocks).  Once a second block
 * starts it would look like that block's own setting.
 */
static int
sync_conf_global(struct sync_conf *sc, const char *kw, char *err,
    size_t errlen)
{
	if (sc->sc_cur == &sc->sc_defaults)
		return 0;
	if (sc->sc_ntargets > 1) {
		snprintf(err, errlen, "is global (shared by every target): "
		    "put it before the first 'target' line");
		return -1;
	}
	sc->sc_global_in_block = kw;
	return 0;
}

/*
 * The target being filled in (the defaults before any target line), or
 * NULL with an error when this block already set the key.
 */
static struct sync_target *
sync_conf_cur(struct sync_conf *sc, uint32_t bit, char *err, size_t errlen)
{
	struct sync_target	*st = sc->sc_cur;

	if (st->st_set & bit) {
		if (st == &sc->sc_defaults)
			snprintf(err, errlen, "is given twice");
		else
			snprintf(err, errlen, "is given twice in target '%s'",
			    st->st_name);
		return NULL;
	}
	st->st_set |= bit;
	return st;
}

static int
sync_conf_socket(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_conf	*sc = obj;
	struct sockaddr_un	 sun;

	if (sync_conf_global(sc, "socket", err, errlen) == -1)
		return -1;
	/* proto/ checks an ssh:// URL when it connects. */
	if (proto_client_is_ssh(value))
		return sync_conf_store(&sc->sc_socket, value, err, errlen);
	if (value[0] != '/') {
		snprintf(err, errlen, "must be an absolute path (starting "
		    "with '/') or ssh://[user@]host[:port][/path]");
		return -1;
	}
	if (strlen(value) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "is %zu bytes; a socket path has at "
		    "most %zu", strlen(value), sizeof(sun.sun_path) - 1);
		return -1;
	}
	return sync_conf_store(&sc->sc_socket, value, err, errlen);
}

static int
sync_conf_target_kw(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_conf	*sc = obj;
	struct sync_target	*nt;

	/* The daemon keeps each target's position under its name. */
	if (proto_tenant_valid(value, err, errlen) == -1) {
		snprintf(err, errlen, "must be 1-%d letters, digits, '.', '_' "
		    "or '-', not starting with '.' or '-'", PROTO_TENANT_MAX);
		return -1;
	}
	if (sync_conf_target(sc, value) != NULL) {
		snprintf(err, errlen, "'%s' is given twice: each target needs "
		    "its own name", value);
		return -1;
	}
	if (sc->sc_global_in_block != NULL) {
		snprintf(err, errlen, "a second target, but '%s' (a global "
		    "key) is inside target '%s': put it before the first "
		    "'target' line", sc->sc_global_in_block,
		    sc->sc_targets[0].st_name);
		return -1;
	}
	if (sc->sc_ntargets >= SYNC_TARGETS_MAX) {
		snprintf(err, errlen, "more than %d targets",
		    SYNC_TARGETS_MAX);
		return -1;
	}
	nt = reallocarray(sc->sc_targets, sc->sc_ntargets + 1, sizeof(*nt));
	if (nt == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	sc->sc_targets = nt;
	memset(&nt[sc->sc_ntargets], 0, sizeof(*nt));
	if ((nt[sc->sc_ntargets].st_name = strdup(value)) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	sc->sc_cur = &nt[sc->sc_ntargets++];
	return 0;
}

static int
sync_conf_is_loopback(const char *host, size_t len)
{
	static const char *const names[] = { "127.0.0.1", "[::1]",
	    "localhost", NULL };
	size_t	i;

	for (i = 0; names[i] != NULL; i++) {
		if (strlen(names[i]) == len &&
		    strncasecmp(names[i], host, len) == 0)
			return 1;
	}
	return 0;
}

int
sync_api_base_check(const char *url, int *plain_http, char *err,
    size_t errlen)
{
	const char	*host, *p, *end;
	size_t		 i, hostlen;
	unsigned long	 port;
	int		 http;

	for (i = 0; url[i] != '\0'; i++) {
		if ((unsigned char)url[i] <= 0x20 ||
		    (unsigned char)url[i] >= 0x7f) {
			snprintf(err, errlen, "must not contain blanks, "
			    "control or non-ASCII characters");
			return -1;
		}
	}
	if (strncmp(url, "https://", 8) == 0) {
		http = 0;
		host = url + 8;
	} else if (strncmp(url, "http://", 7) == 0) {
		http = 1;
		host = url + 7;
	} else {
		snprintf(err, errlen, "must start with https:// (like %s)",
		    SYNC_DEFAULT_API_BASE);
		return -1;
	}
	if (strpbrk(url, "?#@") != NULL) {
		snprintf(err, errlen, "must be a plain https://HOST/PATH URL "
		    "(no user, query or fragment)");
		return -1;
	}
	end = host + strcspn(host, "/");
	if (*host == '[') {
		if ((p = memchr(host, ']', end - host)) == NULL) {
			snprintf(err, errlen, "unterminated '[' in the host");
			return -1;
		}
		p++;
	} else
		p = host + strcspn(host, ":/");
	hostlen = p - host;
	if (hostlen == 0 || (*host == '[' && hostlen == 2)) {
		snprintf(err, errlen, "has no host name");
		return -1;
	}
	if (*host != '[' && memchr(host, ']', hostlen) != NULL) {
		snprintf(err, errlen, "has a bad host name");
		return -1;
	}
	if (*p == ':') {
		port = 0;
		for (p++; p < end; p++) {
			if (*p < '0' || *p > '9' || port > 65535)
				break;
			port = port * 10 + (unsigned long)(*p - '0');
		}
		if (p != end || port == 0 || port > 65535) {
			snprintf(err, errlen, "has a bad port (1-65535)");
			return -1;
		}
	} else if (p != end) {
		snprintf(err, errlen, "has a bad host name");
		return -1;
	}
	if (http && !sync_conf_is_loopback(host, hostlen)) {
		snprintf(err, errlen, "plain http:// is allowed only when the "
		    "host is 127.0.0.1, ::1 or localhost (a local emulator); "
		    "use https://");
		return -1;
	}
	if (plain_http != NULL)
		*plain_http = http;
	return 0;
}


static int
sync_conf_api_base(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_conf	*sc = obj;
	size_t			 len;
	int			 http;

	if (sync_conf_global(sc, "cf_api_base", err, errlen) == -1)
		return -1;
	if (sync_api_base_check(value, &http, err, errlen) == -1)
		return -1;
	if (sync_conf_store(&sc->sc_api_base, value, err, errlen) == -1)
		return -1;
	/* Paths are appended with their own '/'. */
	len = strlen(sc->sc_api_base);
	while (len > 0 && sc->sc_api_base[len - 1] == '/')
		sc->sc_api_base[--len] = '\0';
	sc->sc_api_plain_http = http;
	return 0;
}

static int
sync_conf_ca_file(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_conf	*sc = obj;

	if (sync_conf_global(sc, "cf_ca_file", err, errlen) == -1)
		return -1;
	if (value[0] != '/') {
		snprintf(err, errlen, "must be an absolute path (starting "
		    "with '/')");
		return -1;
	}
	return sync_conf_store(&sc->sc_ca_file, value, err, errlen);
}

/* REQUESTS/WINDOW, like 600/5m. */
static int
sync_conf_budget(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_conf	*sc = obj;
	const char		*slash;
	char			 num[32], why[256];
	uint64_t		 n, w;

	if (sync_conf_global(sc, "request_budget", err, errlen) == -1)
		return -1;
	if ((slash = strchr(value, '/')) == NULL ||
	    (size_t)(slash - value) >= sizeof(num)) {
		snprintf(err, errlen, "must be REQUESTS/WINDOW (like 600/5m: "
		    "at most 600 API requests in any 5 minutes)");
		return -1;
	}
	memcpy(num, value, slash - value);
	num[slash - value] = '\0';
	if (conf_parse_uint(num, 1, SYNC_BUDGET_REQUESTS_MAX, &n, why,
	    sizeof(why)) == -1) {
		snprintf(err, errlen, "requests: %s", why);
		return -1;
	}
	if (conf_parse_duration(slash + 1, 1, SYNC_BUDGET_WINDOW_MAX, &w, why,
	    sizeof(why)) == -1) {
		snprintf(err, errlen, "window: %s", why);
		return -1;
	}
	sc->sc_budget_requests = n;
	sc->sc_budget_window = w;
	return 0;
}

static int
sync_conf_kind(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_target	*st;
	enum sync_kind		 kind;

	if (strcmp(value, "kv") == 0)
		kind = SYNC_KIND_KV;
	else if (strcmp(value, "worker_secrets") == 0)
		kind = SYNC_KIND_WORKER_SECRETS;
	else {
		snprintf(err, errlen, "must be kv (a Workers KV namespace) or "
		    "worker_secrets (a Worker script's secrets)");
		return -1;
	}
	if ((st = sync_conf_cur(obj, SYNC_SET_KIND, err, errlen)) == NULL)
		return -1;
	st->st_kind = kind;
	return 0;
}

/* Account and namespace ids: 32 hex digits, kept in lowercase. */
static int
sync_conf_hex_id(char **dst, const char *value, char *err, size_t errlen)
{
	char	buf[KV_ID_LEN + 1];
	size_t	i;

	for (i = 0; value[i] != '\0' && i <= KV_ID_LEN; i++) {
		if (!((value[i] >= '0' && value[i] <= '9') ||
		    (value[i] >= 'a' && value[i] <= 'f') ||
		    (value[i] >= 'A' && value[i] <= 'F')))
			break;
		if (i < KV_ID_LEN)
			buf[i] = value[i] >= 'A' && value[i] <= 'F' ?
			    value[i] - 'A' + 'a' : value[i];
	}
	if (i != KV_ID_LEN || value[i] != '\0') {
		snprintf(err, errlen, "must be exactly %d hex characters (as "
		    "shown in the Cloudflare dashboard)", KV_ID_LEN);
		return -1;
	}
	buf[KV_ID_LEN] = '\0';
	return sync_conf_store(dst, buf, err, errlen);
}

static int
sync_conf_account_id(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_target	*st;

	if ((st = sync_conf_cur(obj, SYNC_SET_ACCOUNT, err, errlen)) == NULL)
		return -1;
	return sync_conf_hex_id(&st->st_account_id, value, err, errlen);
}

static int
sync_conf_namespace_id(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_target	*st;

	if ((st = sync_conf_cur(obj, SYNC_SET_NAMESPACE, err, errlen)) ==
	    NULL)
		return -1;
	return sync_conf_hex_id(&st->st_namespace_id, value, err, errlen);
}

static int
sync_conf_token_file(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_conf	*sc = obj;
	struct sync_target	*st = sc->sc_cur;

	if (st->st_token_credential != NULL) {
		snprintf(err, errlen, "cf_api_token_credential is already "
		    "given; set only one of the two");
		return -1;
	}
	if ((st = sync_conf_cur(sc, SYNC_SET_TOKEN, err, errlen)) == NULL)
		return -1;
	if (value[0] != '/') {
		snprintf(err, errlen, "must be an absolute path (starting "
		    "with '/')");
		return -1;
	}
	return sync_conf_store(&st->st_token_file, value, err, errlen);
}

static int
sync_conf_token_credential(void *obj, const char *value, char *err,
    size_t errlen)
{
	struct sync_conf	*sc = obj;
	struct sync_target	*st = sc->sc_cur;
	size_t			 i;

	if (st->st_token_file != NULL) {
		snprintf(err, errlen, "cf_api_token_file is already given; "
		    "set only one of the two");
		return -1;
	}
	if ((st = sync_conf_cur(sc, SYNC_SET_TOKEN, err, errlen)) == NULL)
		return -1;
	for (i = 0; value[i] != '\0'; i++) {
		if ((unsigned char)value[i] <= 0x20 ||
		    (unsigned char)value[i] >= 0x7f || value[i] == '/')
			break;
	}
	if (value[i] != '\0' || strcmp(value, ".") == 0 ||
	    strcmp(value, "..") == 0 || i > 255) {
		snprintf(err, errlen, "must be a credential name (a file name "
		    "in $CREDENTIALS_DIRECTORY, without '/')");
		return -1;
	}
	return sync_conf_store(&st->st_token_credential, value, err, errlen);
}

static int
sync_conf_key_prefix(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_target	*st;
	size_t			 i;
	char			 c;

	if ((st = sync_conf_cur(obj, SYNC_SET_PREFIX, err, errlen)) == NULL)
		return -1;
	for (i = 0; (c = value[i]) != '\0'; i++) {
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == ':' || c == '/' || c == '-')) {
			snprintf(err, errlen, "may hold only letters, digits "
			    "and '.', '_', ':', '/', '-'");
			return -1;
		}
	}
	if (i > KV_PREFIX_MAX) {
		snprintf(err, errlen, "is %zu bytes; at most %d, so that "
		    "prefix and tenant id fit in a %d-byte KV key", i,
		    KV_PREFIX_MAX, KV_KEY_MAX);
		return -1;
	}
	return sync_conf_store(&st->st_key_prefix, value, err, errlen);
}

static void
sync_tenants_free(char **v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * A comma list of "*", "PREFIX*" and tenant ids: the syntax of the
 * TENANTS of wfvaultd's allow lines.  Blanks around an entry are
 * ignored.
 */
static int
sync_conf_tenants(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_target	*st;
	char			 word[PROTO_TENANT_MAX + 2], why[256];
	char			**v = NULL, **nv;
	const char		*p, *e, *comma;
	size_t			 n = 0, len;
	int			 star;

	if ((st = sync_conf_cur(obj, SYNC_SET_TENANTS, err, errlen)) == NULL)
		return -1;
	for (p = value; p != NULL; p = comma != NULL ? comma + 1 : NULL) {
		comma = strchr(p, ',');
		e = comma != NULL ? comma : p + strlen(p);
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		len = e - p;
		if (len == 0) {
			snprintf(err, errlen, "empty entry in the list (use "
			    "\"a,b-*\", no blank entries)");
			goto fail;
		}
		if (len >= sizeof(word)) {
			snprintf(err, errlen, "an entry is longer than a "
			    "tenant id (%d bytes)", PROTO_TENANT_MAX);
			goto fail;
		}
		memcpy(word, p, len);
		word[len] = '\0';
		if (strcmp(word, "*") != 0) {
			/* "acme*": the part before '*' is an id's prefix. */
			if ((star = word[len - 1] == '*'))
				word[len - 1] = '\0';
			if (proto_tenant_valid(word, why, sizeof(why)) == -1) {
				snprintf(err, errlen, "bad entry '%.*s' (use *, "
				    "PREFIX* or a tenant id): %s", (int)len,
				    p, why);
				goto fail;
			}
			if (star)
				word[len - 1] = '*';
		}
		if ((nv = reallocarray(v, n + 1, sizeof(*v))) == NULL)
			goto nomem;
		v = nv;
		if ((v[n] = strdup(word)) == NULL)
			goto nomem;
		n++;
	}
	sync_tenants_free(st->st_tenants, st->st_ntenants);
	st->st_tenants = v;
	st->st_ntenants = n;
	return 0;
nomem:
	snprintf(err, errlen, "%s", strerror(errno));
fail:
	sync_tenants_free(v, n);
	return -1;
}

static int
sync_conf_seal_key_file(void *obj, const char *value, char *err,
    size_t errlen)
{
	struct sync_target	*st;

	if ((st = sync_conf_cur(obj, SYNC_SET_SEAL, err, errlen)) == NULL)
		return -1;
	if (value[0] != '/') {
		snprintf(err, errlen, "must be an absolute path (starting "
		    "with '/')");
		return -1;
	}
	return sync_conf_store(&st->st_seal_key_file, value, err, errlen);
}

/* A Worker script's name: what wrangler.toml's "name" may be. */
static int
sync_conf_script_name(void *obj, const char *value, char *err,
    size_t errlen)
{
	struct sync_target	*st;
	size_t			 i;
	char			 c;

	if ((st = sync_conf_cur(obj, SYNC_SET_SCRIPT, err, errlen)) == NULL)
		return -1;
	for (i = 0; (c = value[i]) != '\0'; i++) {
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_'))
			break;
	}
	if (c != '\0' || i > 63 || value[0] == '-') {
		snprintf(err, errlen, "must be a Worker's name: 1-63 "
		    "lowercase letters, digits, '-' or '_', not starting "
		    "with '-'");
		return -1;
	}
	return sync_conf_store(&st->st_script_name, value, err, errlen);
}

static int
sync_conf_secrets_tenant(void *obj, const char *value, char *err,
    size_t errlen)
{
	struct sync_target	*st;
	char			 why[256];

	if ((st = sync_conf_cur(obj, SYNC_SET_SECRETS_TENANT, err, errlen)) ==
	    NULL)
		return -1;
	if (proto_tenant_valid(value, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "must be one tenant id: %s", why);
		return -1;
	}
	return sync_conf_store(&st->st_secrets_tenant, value, err, errlen);
}

static int
sync_conf_batch_items(void *obj, const char *value, char *err,
    size_t errlen)
{
	struct sync_target	*st;

	if ((st = sync_conf_cur(obj, SYNC_SET_BATCH_ITEMS, err, errlen)) ==
	    NULL)
		return -1;
	return conf_parse_uint(value, 1, KV_BULK_MAX_ITEMS,
	    &st->st_batch_max_items, err, errlen);
}

static int
sync_conf_batch_bytes(void *obj, const char *value, char *err,
    size_t errlen)
{
	struct sync_target	*st;

	if ((st = sync_conf_cur(obj, SYNC_SET_BATCH_BYTES, err, errlen)) ==
	    NULL)
		return -1;
	return conf_parse_size(value, 1024, KV_BULK_MAX_BYTES,
	    &st->st_batch_max_bytes, err, errlen);
}

static int
sync_conf_request_timeout(void *obj, const char *value, char *err,
    size_t errlen)
{
	struct sync_target	*st;

	if ((st = sync_conf_cur(obj, SYNC_SET_TIMEOUT, err, errlen)) == NULL)
		return -1;
	return conf_parse_duration(value, 1, 3600, &st->st_request_timeout,
	    err, errlen);
}

static int
sync_conf_settle_time(void *obj, const char *value, char *err,
    size_t errlen)
{
	struct sync_target	*st;

	if ((st = sync_conf_cur(obj, SYNC_SET_SETTLE, err, errlen)) == NULL)
		return -1;
	return conf_parse_duration(value, 0, SYNC_SETTLE_TIME_MAX,
	    &st->st_settle_time, err, errlen);
}

/* A percentage, 0-100, with or without '%'. */
static int
sync_conf_prune_max_share(void *obj, const char *value, char *err,
    size_t errlen)
{
	struct sync_conf	*sc = obj;
	unsigned		 n = 0;
	size_t			 i;

	if (sync_conf_global(sc, "prune_max_share", err, errlen) == -1)
		return -1;
	for (i = 0; value[i] >= '0' && value[i] <= '9' && n <= 100; i++)
		n = n * 10 + (unsigned)(value[i] - '0');
	if (i == 0 || n > 100 || (value[i] != '\0' &&
	    strcmp(value + i, "%") != 0)) {
		snprintf(err, errlen, "must be a percentage from 0%% to 100%% "
		    "(of the keys wfvault wrote)");
		return -1;
	}
	sc->sc_prune_max_share = n;
	return 0;
}

void
sync_conf_init(struct sync_conf *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->sc_budget_requests = SYNC_DEFAULT_BUDGET_REQUESTS;
	sc->sc_budget_window = SYNC_DEFAULT_BUDGET_WINDOW;
	sc->sc_prune_max_share = SYNC_DEFAULT_PRUNE_MAX_SHARE;
	sc->sc_defaults.st_kind = SYNC_KIND_KV;
	sc->sc_defaults.st_batch_max_items = SYNC_DEFAULT_BATCH_ITEMS;
	sc->sc_defaults.st_batch_max_bytes = SYNC_DEFAULT_BATCH_BYTES;
	sc->sc_defaults.st_request_timeout = SYNC_DEFAULT_REQUEST_TIMEOUT;
	sc->sc_defaults.st_settle_time = SYNC_DEFAULT_SETTLE_TIME;
	sc->sc_cur = &sc->sc_defaults;
}

static int
sync_conf_dup(char **dst, const char *src)
{
	if (*dst != NULL || src == NULL)
		return 0;
	return (*dst = strdup(src)) == NULL ? -1 : 0;
}

/* The target takes what its block does not set from the defaults. */
static int
sync_target_inherit(struct sync_target *st, const struct sync_target *d)
{
	size_t	i;

	if (!(st->st_set & SYNC_SET_KIND))
		st->st_kind = d->st_kind;
	if (!(st->st_set & SYNC_SET_TOKEN) &&
	    (sync_conf_dup(&st->st_token_file, d->st_token_file) == -1 ||
	    sync_conf_dup(&st->st_token_credential,
	    d->st_token_credential) == -1))
		return -1;
	if (sync_conf_dup(&st->st_account_id, d->st_account_id) == -1)
		return -1;
	if (!(st->st_set & SYNC_SET_BATCH_ITEMS))
		st->st_batch_max_items = d->st_batch_max_items;
	if (!(st->st_set & SYNC_SET_BATCH_BYTES))
		st->st_batch_max_bytes = d->st_batch_max_bytes;
	if (!(st->st_set & SYNC_SET_TIMEOUT))
		st->st_request_timeout = d->st_request_timeout;
	if (!(st->st_set & SYNC_SET_SETTLE))
		st->st_settle_time = d->st_settle_time;
	if (st->st_kind == SYNC_KIND_WORKER_SECRETS)
		return sync_conf_dup(&st->st_script_name,
		    d->st_script_name) == -1 ||
		    sync_conf_dup(&st->st_secrets_tenant,
		    d->st_secrets_tenant) == -1 ? -1 : 0;
	if (sync_conf_dup(&st->st_namespace_id, d->st_namespace_id) == -1 ||
	    sync_conf_dup(&st->st_key_prefix, d->st_key_prefix) == -1 ||
	    sync_conf_dup(&st->st_seal_key_file, d->st_seal_key_file) == -1)
		return -1;
	if (!(st->st_set & SYNC_SET_TENANTS) && d->st_ntenants > 0) {
		if ((st->st_tenants = calloc(d->st_ntenants,
		    sizeof(*st->st_tenants))) == NULL)
			return -1;
		for (i = 0; i < d->st_ntenants; i++) {
			if ((st->st_tenants[i] = strdup(d->st_tenants[i])) ==
			    NULL)
				return -1;
			st->st_ntenants = i + 1;
		}
	}
	return 0;
}

/* What one target needs, by kind, once it has inherited. */
static int
sync_target_check(const char *name, const struct sync_target *st,
    char *err, size_t errlen)
{
	static const struct {
		uint32_t	 bit;
		const char	*kw;
	} kv_only[] = {
		{ SYNC_SET_NAMESPACE, "cf_namespace_id" },
		{ SYNC_SET_PREFIX, "kv_key_prefix" },
		{ SYNC_SET_TENANTS, "tenants" },
		{ SYNC_SET_SEAL, "seal_key_file" },
	}, ws_only[] = {
		{ SYNC_SET_SCRIPT, "cf_script_name" },
		{ SYNC_SET_SECRETS_TENANT, "secrets_tenant" },
	};
	char	where[PROTO_TENANT_MAX + 32];
	size_t	i;

	snprintf(where, sizeof(where), "target '%s': ", st->st_name);
	if (st->st_account_id == NULL) {
		snprintf(err, errlen, "%s: %scf_account_id is required (the "
		    "Cloudflare account id, %d hex characters)", name, where,
		    KV_ID_LEN);
		return -1;
	}
	if (st->st_token_file == NULL && st->st_token_credential == NULL) {
		snprintf(err, errlen, "%s: %sthe API token is not configured: "
		    "set cf_api_token_file or cf_api_token_credential", name,
		    where);
		return -1;
	}
	if (st->st_kind == SYNC_KIND_WORKER_SECRETS) {
		for (i = 0; i < sizeof(kv_only) / sizeof(kv_only[0]); i++) {
			if (st->st_set & kv_only[i].bit) {
				snprintf(err, errlen, "%s: %s%s is for kind kv; "
				    "a worker_secrets target writes the "
				    "fields of secrets_tenant as secrets of "
				    "cf_script_name", name, where,
				    kv_only[i].kw);
				return -1;
			}
		}
		if (st->st_script_name == NULL) {
			snprintf(err, errlen, "%s: %scf_script_name is "
			    "required for kind worker_secrets (the Worker "
			    "whose secrets are written)", name, where);
			return -1;
		}
		if (st->st_secrets_tenant == NULL) {
			snprintf(err, errlen, "%s: %ssecrets_tenant is "
			    "required for kind worker_secrets (the one tenant "
			    "whose fields become the Worker's secrets)", name,
			    where);
			return -1;
		}
		return 0;
	}
	for (i = 0; i < sizeof(ws_only) / sizeof(ws_only[0]); i++) {
		if (st->st_set & ws_only[i].bit) {
			snprintf(err, errlen, "%s: %s%s is only for kind "
			    "worker_secrets (add \"kind worker_secrets\" to "
			    "the target)", name, where, ws_only[i].kw);
			return -1;
		}
	}
	if (st->st_namespace_id == NULL) {
		snprintf(err, errlen, "%s: %scf_namespace_id is required (the "
		    "Workers KV namespace id, %d hex characters)", name,
		    where, KV_ID_LEN);
		return -1;
	}
	return 0;
}

/* Whether pattern p ("*", "PREFIX*" or an id) and q match a tenant both. */
static int
sync_pattern_overlap(const char *p, const char *q)
{
	size_t	lp = strlen(p), lq = strlen(q);
	int	wp = lp > 0 && p[lp - 1] == '*', wq = lq > 0 && q[lq - 1] == '*';

	if (wp && wq)
		return strncmp(p, q, (lp < lq ? lp : lq) - 1) == 0;
	if (wp)
		return strncmp(p, q, lp - 1) == 0;
	if (wq)
		return strncmp(q, p, lq - 1) == 0;
	return strcmp(p, q) == 0;
}

/* Whether two kv targets' tenants (none given: all) have one in common. */
static int
sync_tenants_overlap(const struct sync_target *a, const struct sync_target *b)
{
	size_t	i, j;

	if (a->st_ntenants == 0 || b->st_ntenants == 0)
		return 1;
	for (i = 0; i < a->st_ntenants; i++)
		for (j = 0; j < b->st_ntenants; j++)
			if (sync_pattern_overlap(a->st_tenants[i],
			    b->st_tenants[j]))
				return 1;
	return 0;
}

/*
 * Two kv targets on one namespace that would write or delete each
 * other's keys: the same prefix with tenants in common (both write those
 * keys, one maybe sealed and the other in clear), or b's prefix being
 * a's followed by what can start a tenant id ("t:" and "t:eu."), where a
 * takes b's key "t:eu.acme" for its tenant "eu.acme"'s and a full pass
 * or --prune of a deletes it.  Returns -1 with err set then.
 */
static int
sync_conf_prefixes_check(const char *name, const struct sync_target *a,
    const struct sync_target *b, char *err, size_t errlen)
{
	const char	*pa, *pb;
	size_t		 la;

	if (a->st_kind != SYNC_KIND_KV || b->st_kind != SYNC_KIND_KV ||
	    strcmp(a->st_namespace_id, b->st_namespace_id) != 0)
		return 0;
	pa = a->st_key_prefix != NULL ? a->st_key_prefix : "";
	pb = b->st_key_prefix != NULL ? b->st_key_prefix : "";
	if (strlen(pa) > strlen(pb)) {
		const struct sync_target *t = a;

		a = b;
		b = t;
		pa = a->st_key_prefix != NULL ? a->st_key_prefix : "";
		pb = b->st_key_prefix != NULL ? b->st_key_prefix : "";
	}
	la = strlen(pa);
	if (strcmp(pa, pb) == 0) {
		if (!sync_tenants_overlap(a, b))
			return 0;
		snprintf(err, errlen, "%s: targets '%s' and '%s' share "
		    "cf_namespace_id and kv_key_prefix, and their tenants "
		    "have some in common: both would write those keys (one "
		    "sealed, the other in clear, say); make their tenants "
		    "disjoint or give them different prefixes", name,
		    a->st_name, b->st_name);
		return -1;
	}
	if (strncmp(pa, pb, la) != 0 ||
	    proto_tenant_valid(pb + la, NULL, 0) != 0)
		return 0;
	snprintf(err, errlen, "%s: targets '%s' and '%s' share "
	    "cf_namespace_id, and the kv_key_prefix of '%s' is that of '%s' "
	    "followed by what can start a tenant id: '%s' would take the "
	    "other's keys for keys of its tenants and could delete them; end "
	    "the longer prefix's extra part with ':' or '/' (say \"t:\" "
	    "and \"t:eu:\")", name, a->st_name, b->st_name, b->st_name,
	    a->st_name, a->st_name);
	return -1;
}

/*
 * Two worker_secrets targets on one Worker script: each pushes its
 * tenant's fields as the script's secrets and deletes the secrets it
 * pushed that its tenant no longer has, so they would overwrite and
 * delete each other's.  Returns -1 with err set then.
 */
static int
sync_conf_scripts_check(const char *name, const struct sync_target *a,
    const struct sync_target *b, char *err, size_t errlen)
{
	if (a->st_kind != SYNC_KIND_WORKER_SECRETS ||
	    b->st_kind != SYNC_KIND_WORKER_SECRETS ||
	    strcmp(a->st_account_id, b->st_account_id) != 0 ||
	    strcmp(a->st_script_name, b->st_script_name) != 0)
		return 0;
	snprintf(err, errlen, "%s: targets '%s' and '%s' are both "
	    "worker_secrets targets of Worker script '%s' in cf_account_id "
	    "%s: each would overwrite and delete the other's secrets; give "
	    "each target its own cf_script_name (one Worker per tenant)",
	    name, a->st_name, b->st_name, a->st_script_name,
	    a->st_account_id);
	return -1;
}

/* What no single line can check, and the defaults of the strings. */
static int
sync_conf_finish(const char *name, struct sync_conf *sc, char *err,
    size_t errlen)
{
	struct sync_target	*d = &sc->sc_defaults;
	size_t			 i, j;

	sc->sc_cur = NULL;
	if (sc->sc_ntargets == 0) {
		/* No target line: the keys describe the one target. */
		if ((sc->sc_targets = calloc(1, sizeof(*sc->sc_targets))) ==
		    NULL || (sc->sc_targets[0].st_name =
		    strdup(SYNC_DEFAULT_TARGET)) == NULL)
			goto nomem;
		sc->sc_ntargets = 1;
	}
	for (i = 0; i < sc->sc_ntargets; i++) {
		if (sync_target_inherit(&sc->sc_targets[i], d) == -1)
			goto nomem;
		/*
		 * A block that is the whole file's one target is judged
		 * with what came before it (a worker_secrets target may not
		 * take a namespace from there either).
		 */
		if (sc->sc_ntargets == 1)
			sc->sc_targets[i].st_set |= d->st_set;
		if (sync_target_check(name, &sc->sc_targets[i], err,
		    errlen) == -1)
			return -1;
	}
	for (i = 0; i < sc->sc_ntargets; i++)
		for (j = i + 1; j < sc->sc_ntargets; j++)
			if (sync_conf_prefixes_check(name, &sc->sc_targets[i],
			    &sc->sc_targets[j], err, errlen) == -1 ||
			    sync_conf_scripts_check(name, &sc->sc_targets[i],
			    &sc->sc_targets[j], err, errlen) == -1)
				return -1;
	if ((sc->sc_socket == NULL && sync_conf_store(&sc->sc_socket,
	    PROTO_DEFAULT_SOCKET, err, errlen) == -1) ||
	    (sc->sc_api_base == NULL && sync_conf_store(&sc->sc_api_base,
	    SYNC_DEFAULT_API_BASE, err, errlen) == -1))
		return -1;
	return 0;
nomem:
	snprintf(err, errlen, "%s: %s", name, strerror(errno));
	return -1;
}

int
sync_conf_parse_buffer(const char *name, const char *buf, size_t len,
    struct sync_conf *sc, char *err, size_t errlen)
{
	if (conf_parse_buffer(name, buf, len, sync_keywords, sc, err,
	    errlen) == -1)
		return -1;
	return sync_conf_finish(name, sc, err, errlen);
}

int
sync_conf_parse_file(const char *path, struct sync_conf *sc, char *err,
    size_t errlen)
{
	if (conf_parse_file(path, sync_keywords, sc, err, errlen) == -1)
		return -1;
	return sync_conf_finish(path, sc, err, errlen);
}

static void
sync_target_release(struct sync_target *st)
{
	free(st->st_name);
	free(st->st_account_id);
	free(st->st_namespace_id);
	free(st->st_token_file);
	free(st->st_token_credential);
	free(st->st_key_prefix);
	sync_tenants_free(st->st_tenants, st->st_ntenants);
	free(st->st_seal_key_file);
	if (st->st_seal_key != NULL)
		sodium_free(st->st_seal_key);
	free(st->st_script_name);
	free(st->st_secrets_tenant);
	memset(st, 0, sizeof(*st));
}

void
sync_conf_release(struct sync_conf *sc)
{
	size_t	i;

	free(sc->sc_socket);
	free(sc->sc_api_base);
	free(sc->sc_ca_file);
	sc->sc_socket = sc->sc_api_base = sc->sc_ca_file = NULL;
	for (i = 0; i < sc->sc_ntargets; i++)
		sync_target_release(&sc->sc_targets[i]);
	free(sc->sc_targets);
	sc->sc_targets = NULL;
	sc->sc_ntargets = 0;
	sync_target_release(&sc->sc_defaults);
	sc->sc_cur = NULL;
	sc->sc_global_in_block = NULL;
}

struct sync_target *
sync_conf_target(const struct sync_conf *sc, const char *name)
{
	size_t	i;

	for (i = 0; i < sc->sc_ntargets; i++) {
		if (strcmp(sc->sc_targets[i].st_name, name) == 0)
			return &sc->sc_targets[i];
	}
	return NULL;
}

int
sync_target_wants(const struct sync_target *st, const char *tenant)
{
	size_t	i, n;

	if (st->st_kind == SYNC_KIND_WORKER_SECRETS)
		return st->st_secrets_tenant != NULL &&
		    strcmp(st->st_secrets_tenant, tenant) == 0;
	if (st->st_ntenants == 0)
		return 1;
	for (i = 0; i < st->st_ntenants; i++) {
		n = strlen(st->st_tenants[i]);
		if (n > 0 && st->st_tenants[i][n - 1] == '*') {
			if (strncmp(st->st_tenants[i], tenant, n - 1) == 0)
				return 1;
		} else if (strcmp(st->st_tenants[i], tenant) == 0)
			return 1;
	}
	return 0;
}

void
sync_token_free(char *token)
{
	proto_wipe_free(token);
}

/*
 * Whose a secret file is and who else may touch it, judged as the daemon
 * judges its master key.  A systemd credential is 0400 and owned by root
 * with an ACL for the service's user (the ACL shows in the group bits) or
 * owned by that user, so there only others' bits count.
 */
static int
sync_file_check(const struct stat *st, const char *what, const char *path,
    int credential, char *err, size_t errlen)
{
	mode_t	mask = credential ? 007 : 077;

	if (st->st_uid != geteuid() && st->st_uid != 0) {
		snprintf(err, errlen, "the %s %s belongs to uid %u, neither "
		    "root nor the user wfvault-sync runs as (uid %u): chown it "
		    "to that user", what, path, (unsigned)st->st_uid,
		    (unsigned)geteuid());
		return -1;
	}
	if ((st->st_mode & mask) == 0)
		return 0;
	if (credential)
		snprintf(err, errlen, "the %s credential %s is open to others "
		    "(mode %04o), which systemd never does: check "
		    "$CREDENTIALS_DIRECTORY", what, path,
		    (unsigned)(st->st_mode & 07777));
	else
		snprintf(err, errlen, "the %s %s can be read or written by "
		    "group or others (mode %04o): chmod 600 %s", what, path,
		    (unsigned)(st->st_mode & 07777), path);
	return -1;
}

/*
 * Reads the secret file path (what names it in messages) into a new
 * buffer of max + 2 bytes, NUL-terminated, without its one trailing
 * newline (and CR): no link, no FIFO, a regular file of at most max
 * bytes that passes sync_file_check.  The caller wipes and frees *out.
 */
static int
sync_secret_read(const char *what, const char *path, int credential,
    size_t max, char **out, size_t *outlen, char *err, size_t errlen)
{
	struct stat	 st;
	char		*buf = NULL;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd = -1, rc = -1;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW |
	    O_NONBLOCK)) == -1) {
		if (errno == ELOOP)
			snprintf(err, errlen, "the %s %s is a symbolic link: "
			    "name the file itself", what, path);
		else
			snprintf(err, errlen, "cannot open the %s %s: %s",
			    what, path, strerror(errno));
		goto done;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "the %s %s is not a regular file", what,
		    path);
		goto done;
	}
	if (st.st_size > (off_t)max) {
		snprintf(err, errlen, "the %s %s is larger than %zu bytes: is "
		    "it the right file?", what, path, max);
		goto done;
	}
	if (sync_file_check(&st, what, path, credential, err, errlen) == -1)
		goto done;
	if ((buf = malloc(max + 2)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	for (;;) {
		n = read(fd, buf + len, max + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "cannot read the %s %s: %s",
			    what, path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			snprintf(err, errlen, "the %s %s is larger than %zu "
			    "bytes: is it the right file?", what, path, max);
			goto done;
		}
	}
	/* Files written by editors and echo end in a newline. */
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	buf[len] = '\0';
	if (len == 0) {
		snprintf(err, errlen, "the %s %s is empty", what, path);
		goto done;
	}
	*out = buf;
	*outlen = len;
	buf = NULL;
	rc = 0;
done:
	if (buf != NULL) {
		explicit_bzero(buf, max + 2);
		free(buf);
	}
	if (fd != -1)
		close(fd);
	return rc;
}

int
sync_token_load(const struct sync_target *st, char **token, char *err,
    size_t errlen)
{
	const char	*dir;
	char		 path[4096];
	char		*buf;
	size_t		 len, i;

	*token = NULL;
	if (st->st_token_file != NULL) {
		if (strlen(st->st_token_file) >= sizeof(path)) {
			snprintf(err, errlen, "cf_api_token_file: path too "
			    "long");
			return -1;
		}
		snprintf(path, sizeof(path), "%s", st->st_token_file);
	} else if (st->st_token_credential != NULL) {
		dir = getenv("CREDENTIALS_DIRECTORY");
		if (dir == NULL || dir[0] == '\0') {
			snprintf(err, errlen, "cf_api_token_credential is set "
			    "but $CREDENTIALS_DIRECTORY is not (run under "
			    "systemd with LoadCredential=%s:... or use "
			    "cf_api_token_file)", st->st_token_credential);
			return -1;
		}
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    st->st_token_credential) >= sizeof(path)) {
			snprintf(err, errlen, "cf_api_token_credential: path "
			    "too long");
			return -1;
		}
	} else {
		snprintf(err, errlen, "no API token configured");
		return -1;
	}
	if (sync_secret_read("API token", path, st->st_token_file == NULL,
	    KV_TOKEN_MAX, &buf, &len, err, errlen) == -1)
		return -1;
	/* It goes into an HTTP header: no blanks or control characters. */
	for (i = 0; i < len; i++) {
		if ((unsigned char)buf[i] <= 0x20 ||
		    (unsigned char)buf[i] >= 0x7f) {
			snprintf(err, errlen, "the API token %s holds a blank, "
			    "control or non-ASCII character (byte %zu); it "
			    "must be the token alone on one line", path, i + 1);
			explicit_bzero(buf, KV_TOKEN_MAX + 2);
			free(buf);
			return -1;
		}
	}
	*token = buf;
	return 0;
}

int
sync_seal_key_load(struct sync_target *st, char *err, size_t errlen)
{
	unsigned char	*key = NULL;
	char		*buf = NULL;
	const char	*end;
	size_t		 len, klen;
	int		 rc = -1;

	if (st->st_seal_key_file == NULL || st->st_seal_key != NULL)
		return 0;
	if (sodium_init() < 0) {
		snprintf(err, errlen, "cannot initialise libsodium");
		return -1;
	}
	if (sync_secret_read("seal key", st->st_seal_key_file, 0,
	    SYNC_SEAL_FILE_MAX, &buf, &len, err, errlen) == -1)
		return -1;
	if ((key = sodium_malloc(SYNC_SEAL_KEY_LEN)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	/* Exactly 32 bytes, and nothing after them but the one newline. */
	if (sodium_base642bin(key, SYNC_SEAL_KEY_LEN, buf, len, NULL, &klen,
	    &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    klen != SYNC_SEAL_KEY_LEN || end != buf + len) {
		snprintf(err, errlen, "the seal key %s must hold one line: the "
		    "base64 of %d random bytes (make one with wfvault-sync "
		    "--gen-seal-key FILE)", st->st_seal_key_file,
		    SYNC_SEAL_KEY_LEN);
		goto done;
	}
	sodium_mprotect_readonly(key);
	st->st_seal_key = key;
	key = NULL;
	rc = 0;
done:
	if (key != NULL)
		sodium_free(key);
	explicit_bzero(buf, SYNC_SEAL_FILE_MAX + 2);
	free(buf);
	return rc;
}
