/*
 * wfvault-sync's configuration: the keyword table, the checks each value
 * gets, and reading the Cloudflare API token from a file or a systemd
 * credential.
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

#include "config.h"
#include "log.h"
#include "proto.h"
#include "sync.h"

#define SC_OFF(m)	offsetof(struct sync_conf, m)

static int	sync_conf_socket(void *, const char *, char *, size_t);
static int	sync_conf_target(void *, const char *, char *, size_t);
static int	sync_conf_api_base(void *, const char *, char *, size_t);
static int	sync_conf_account_id(void *, const char *, char *, size_t);
static int	sync_conf_namespace_id(void *, const char *, char *, size_t);
static int	sync_conf_token_file(void *, const char *, char *, size_t);
static int	sync_token_check(const struct stat *, const char *, int, char *,
		    size_t);
static int	sync_conf_token_credential(void *, const char *, char *,
		    size_t);
static int	sync_conf_key_prefix(void *, const char *, char *, size_t);
static int	sync_conf_prune_max_share(void *, const char *, char *,
		    size_t);

static const struct conf_keyword sync_keywords[] = {
	{ "socket", CONF_CUSTOM, 0, 0, 0, CONF_ONCE, sync_conf_socket },
	{ "target", CONF_CUSTOM, 0, 0, 0, CONF_ONCE, sync_conf_target },
	{ "cf_api_base", CONF_CUSTOM, 0, 0, 0, CONF_ONCE, sync_conf_api_base },
	{ "cf_account_id", CONF_CUSTOM, 0, 0, 0, CONF_ONCE,
	    sync_conf_account_id },
	{ "cf_namespace_id", CONF_CUSTOM, 0, 0, 0, CONF_ONCE,
	    sync_conf_namespace_id },
	{ "cf_api_token_file", CONF_CUSTOM, 0, 0, 0, CONF_ONCE,
	    sync_conf_token_file },
	{ "cf_api_token_credential", CONF_CUSTOM, 0, 0, 0, CONF_ONCE,
	    sync_conf_token_credential },
	{ "kv_key_prefix", CONF_CUSTOM, 0, 0, 0, CONF_ONCE,
	    sync_conf_key_prefix },
	{ "cf_ca_file", CONF_PATH, SC_OFF(sc_ca_file), 0, 0, CONF_ONCE,
	    NULL },
	{ "batch_max_items", CONF_UINT, SC_OFF(sc_batch_max_items), 1,
	    KV_BULK_MAX_ITEMS, CONF_ONCE, NULL },
	{ "batch_max_bytes", CONF_SIZE, SC_OFF(sc_batch_max_bytes), 1024,
	    KV_BULK_MAX_BYTES, CONF_ONCE, NULL },
	{ "request_timeout", CONF_DURATION, SC_OFF(sc_request_timeout), 1,
	    3600, CONF_ONCE, NULL },
	{ "settle_time", CONF_DURATION, SC_OFF(sc_settle_time), 0,
	    SYNC_SETTLE_TIME_MAX, CONF_ONCE, NULL },
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

static int
sync_conf_socket(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_conf	*sc = obj;
	struct sockaddr_un	 sun;

	if (value[0] != '/') {
		snprintf(err, errlen, "must be an absolute path (starting "
		    "with '/')");
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
sync_conf_target(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_conf	*sc = obj;

	if (proto_tenant_valid(value, err, errlen) == -1) {
		snprintf(err, errlen, "must be 1-%d letters, digits, '.', '_' "
		    "or '-', not starting with '.' or '-'", PROTO_TENANT_MAX);
		return -1;
	}
	return sync_conf_store(&sc->sc_target, value, err, errlen);
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
	struct sync_conf	*sc = obj;

	return sync_conf_hex_id(&sc->sc_account_id, value, err, errlen);
}

static int
sync_conf_namespace_id(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_conf	*sc = obj;

	return sync_conf_hex_id(&sc->sc_namespace_id, value, err, errlen);
}

static int
sync_conf_token_file(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_conf	*sc = obj;

	if (sc->sc_token_credential != NULL) {
		snprintf(err, errlen, "cf_api_token_credential is already "
		    "given; set only one of the two");
		return -1;
	}
	if (value[0] != '/') {
		snprintf(err, errlen, "must be an absolute path (starting "
		    "with '/')");
		return -1;
	}
	return sync_conf_store(&sc->sc_token_file, value, err, errlen);
}

static int
sync_conf_token_credential(void *obj, const char *value, char *err,
    size_t errlen)
{
	struct sync_conf	*sc = obj;
	size_t			 i;

	if (sc->sc_token_file != NULL) {
		snprintf(err, errlen, "cf_api_token_file is already given; "
		    "set only one of the two");
		return -1;
	}
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
	return sync_conf_store(&sc->sc_token_credential, value, err, errlen);
}

static int
sync_conf_key_prefix(void *obj, const char *value, char *err, size_t errlen)
{
	struct sync_conf	*sc = obj;
	size_t			 i;
	char			 c;

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
	return sync_conf_store(&sc->sc_key_prefix, value, err, errlen);
}

/* A percentage, 0-100, with or without '%'. */
static int
sync_conf_prune_max_share(void *obj, const char *value, char *err,
    size_t errlen)
{
	struct sync_conf	*sc = obj;
	unsigned		 n = 0;
	size_t			 i;

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
	sc->sc_batch_max_items = SYNC_DEFAULT_BATCH_ITEMS;
	sc->sc_batch_max_bytes = SYNC_DEFAULT_BATCH_BYTES;
	sc->sc_request_timeout = SYNC_DEFAULT_REQUEST_TIMEOUT;
	sc->sc_settle_time = SYNC_DEFAULT_SETTLE_TIME;
	sc->sc_prune_max_share = SYNC_DEFAULT_PRUNE_MAX_SHARE;
}

/* What no single line can check, and the defaults of the strings. */
static int
sync_conf_finish(const char *name, struct sync_conf *sc, char *err,
    size_t errlen)
{
	if (sc->sc_account_id == NULL) {
		snprintf(err, errlen, "%s: cf_account_id is required (the "
		    "Cloudflare account id, %d hex characters)", name,
		    KV_ID_LEN);
		return -1;
	}
	if (sc->sc_namespace_id == NULL) {
		snprintf(err, errlen, "%s: cf_namespace_id is required (the "
		    "Workers KV namespace id, %d hex characters)", name,
		    KV_ID_LEN);
		return -1;
	}
	if (sc->sc_token_file == NULL && sc->sc_token_credential == NULL) {
		snprintf(err, errlen, "%s: the API token is not configured: "
		    "set cf_api_token_file or cf_api_token_credential", name);
		return -1;
	}
	if ((sc->sc_socket == NULL && sync_conf_store(&sc->sc_socket,
	    PROTO_DEFAULT_SOCKET, err, errlen) == -1) ||
	    (sc->sc_target == NULL && sync_conf_store(&sc->sc_target,
	    SYNC_DEFAULT_TARGET, err, errlen) == -1) ||
	    (sc->sc_api_base == NULL && sync_conf_store(&sc->sc_api_base,
	    SYNC_DEFAULT_API_BASE, err, errlen) == -1))
		return -1;
	return 0;
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

void
sync_conf_release(struct sync_conf *sc)
{
	conf_free_strings(sync_keywords, sc);
	free(sc->sc_socket);
	free(sc->sc_target);
	free(sc->sc_api_base);
	free(sc->sc_account_id);
	free(sc->sc_namespace_id);
	free(sc->sc_token_file);
	free(sc->sc_token_credential);
	free(sc->sc_key_prefix);
	sc->sc_socket = sc->sc_target = sc->sc_api_base = NULL;
	sc->sc_account_id = sc->sc_namespace_id = NULL;
	sc->sc_token_file = sc->sc_token_credential = NULL;
	sc->sc_key_prefix = NULL;
}

void
sync_token_free(char *token)
{
	proto_wipe_free(token);
}

/*
 * Whose the token file is and who else may touch it, judged as the daemon
 * judges its master key.  A systemd credential is 0400 and owned by root
 * with an ACL for the service's user (the ACL shows in the group bits) or
 * owned by that user, so there only others' bits count.
 */
static int
sync_token_check(const struct stat *st, const char *path, int credential,
    char *err, size_t errlen)
{
	mode_t	mask = credential ? 007 : 077;

	if (st->st_uid != geteuid() && st->st_uid != 0) {
		snprintf(err, errlen, "the API token %s belongs to uid %u, "
		    "neither root nor the user wfvault-sync runs as (uid %u): "
		    "chown it to that user", path, (unsigned)st->st_uid,
		    (unsigned)geteuid());
		return -1;
	}
	if ((st->st_mode & mask) == 0)
		return 0;
	if (credential)
		snprintf(err, errlen, "the API token credential %s is open to "
		    "others (mode %04o), which systemd never does: check "
		    "$CREDENTIALS_DIRECTORY", path,
		    (unsigned)(st->st_mode & 07777));
	else
		snprintf(err, errlen, "the API token %s can be read or "
		    "written by group or others (mode %04o): chmod 600 %s",
		    path, (unsigned)(st->st_mode & 07777), path);
	return -1;
}

int
sync_token_load(const struct sync_conf *sc, char **token, char *err,
    size_t errlen)
{
	struct stat	 st;
	const char	*dir;
	char		 path[4096];
	char		*buf = NULL;
	size_t		 len = 0, i;
	ssize_t		 n;
	int		 fd = -1, rc = -1;

	*token = NULL;
	if (sc->sc_token_file != NULL) {
		if (strlen(sc->sc_token_file) >= sizeof(path)) {
			snprintf(err, errlen, "cf_api_token_file: path too "
			    "long");
			return -1;
		}
		snprintf(path, sizeof(path), "%s", sc->sc_token_file);
	} else if (sc->sc_token_credential != NULL) {
		dir = getenv("CREDENTIALS_DIRECTORY");
		if (dir == NULL || dir[0] == '\0') {
			snprintf(err, errlen, "cf_api_token_credential is set "
			    "but $CREDENTIALS_DIRECTORY is not (run under "
			    "systemd with LoadCredential=%s:... or use "
			    "cf_api_token_file)", sc->sc_token_credential);
			return -1;
		}
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    sc->sc_token_credential) >= sizeof(path)) {
			snprintf(err, errlen, "cf_api_token_credential: path "
			    "too long");
			return -1;
		}
	} else {
		snprintf(err, errlen, "no API token configured");
		return -1;
	}

	/* No link (the file it points to is not the one checked), no FIFO. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW |
	    O_NONBLOCK)) == -1) {
		if (errno == ELOOP)
			snprintf(err, errlen, "the API token %s is a symbolic "
			    "link: name the file itself", path);
		else
			snprintf(err, errlen, "cannot open the API token %s: "
			    "%s", path, strerror(errno));
		goto done;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "the API token %s is not a regular file",
		    path);
		goto done;
	}
	if (st.st_size > KV_TOKEN_MAX) {
		snprintf(err, errlen, "the API token %s is larger than %d "
		    "bytes: is it the right file?", path, KV_TOKEN_MAX);
		goto done;
	}
	if (sync_token_check(&st, path, sc->sc_token_file == NULL, err,
	    errlen) == -1)
		goto done;
	if ((buf = malloc(KV_TOKEN_MAX + 2)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	for (;;) {
		n = read(fd, buf + len, KV_TOKEN_MAX + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "cannot read the API token %s: "
			    "%s", path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > KV_TOKEN_MAX) {
			snprintf(err, errlen, "the API token %s is larger than "
			    "%d bytes: is it the right file?", path,
			    KV_TOKEN_MAX);
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
		snprintf(err, errlen, "the API token %s is empty", path);
		goto done;
	}
	/* It goes into an HTTP header: no blanks or control characters. */
	for (i = 0; i < len; i++) {
		if ((unsigned char)buf[i] <= 0x20 ||
		    (unsigned char)buf[i] >= 0x7f) {
			snprintf(err, errlen, "the API token %s holds a blank, "
			    "control or non-ASCII character (byte %zu); it "
			    "must be the token alone on one line", path, i + 1);
			goto done;
		}
	}
	*token = buf;
	buf = NULL;
	rc = 0;
done:
	if (buf != NULL) {
		explicit_bzero(buf, KV_TOKEN_MAX + 2);
		free(buf);
	}
	if (fd != -1)
		close(fd);
	return rc;
}
