/* The static tables of the wire contract, name validation and framing. */

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "proto_priv.h"

static const struct proto_method_info proto_methods[PM__COUNT] = {
	{ "hello",	PM_HELLO,	0,		0, 0 },
	{ "put",	PM_PUT,		PERM_WRITE,	1, 1 },
	{ "get",	PM_GET,		PERM_READ,	1, 0 },
	/* list filters tenant by tenant: no single tenant to check up front. */
	{ "list",	PM_LIST,	PERM_LIST,	0, 0 },
	{ "delete",	PM_DELETE,	PERM_WRITE,	1, 1 },
	{ "changes",	PM_CHANGES,	PERM_SYNC,	0, 0 },
	/* sync_ack records the target's position in the store. */
	{ "sync_ack",	PM_SYNC_ACK,	PERM_SYNC,	0, 1 },
	{ "watch",	PM_WATCH,	PERM_SYNC,	0, 0 },
	{ "status",	PM_STATUS,	PERM_ADMIN,	0, 0 },
	/* Where a sync target stands, so an agent resumes from there. */
	{ "sync_state",	PM_SYNC_STATE,	PERM_SYNC,	0, 0 },
	/* Copies the whole store: admin on every tenant, not a write. */
	{ "backup",	PM_BACKUP,	PERM_ADMIN,	0, 0 },
	{ "rotate_master_key", PM_ROTATE_MASTER_KEY, PERM_ADMIN, 0, 1 },
	/* Re-seals one tenant's versions: values unchanged, a write. */
	{ "rotate_tenant_key", PM_ROTATE_TENANT_KEY, PERM_WRITE, 1, 1 },
	/* The catalog holds no secret: any peer that may connect reads it. */
	{ "integrations", PM_INTEGRATIONS, 0,	0, 0 },
	/*
	 * A live test's outcome: whoever may read the values could run the
	 * test, so read records it; it is stored, so a write.
	 */
	{ "test_result", PM_TEST_RESULT, PERM_READ,	1, 1 },
	/* Says what is missing or malformed, never a value: list. */
	{ "check",	PM_CHECK,	PERM_LIST,	1, 0 },
};

static const struct {
	int		 pk_code;
	const char	*pk_kind;
} proto_kinds[] = {
	{ PROTO_E_PARSE,		"parse_error" },
	{ PROTO_E_INVALID_REQUEST,	"invalid_request" },
	{ PROTO_E_METHOD,		"method_not_found" },
	{ PROTO_E_PARAMS,		"invalid_params" },
	{ PROTO_E_INTERNAL,		"internal_error" },
	{ PROTO_E_DENIED,		"permission_denied" },
	{ PROTO_E_NOT_FOUND,		"not_found" },
	{ PROTO_E_CONFLICT,		"conflict" },
	{ PROTO_E_TOO_LARGE,		"too_large" },
	{ PROTO_E_UNAVAILABLE,		"unavailable" },
	{ PROTO_E_INTEGRITY,		"integrity" },
	{ PROTO_E_TRIMMED,		"feed_trimmed" },
};

static const struct {
	unsigned	 pp_bit;
	const char	*pp_name;
} proto_perms[] = {
	{ PERM_READ,	"read" },
	{ PERM_LIST,	"list" },
	{ PERM_WRITE,	"write" },
	{ PERM_SYNC,	"sync" },
	{ PERM_ADMIN,	"admin" },
};

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

const struct proto_method_info *
proto_method_lookup(const char *name)
{
	size_t	i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < NITEMS(proto_methods); i++)
		if (strcmp(proto_methods[i].pm_name, name) == 0)
			return &proto_methods[i];
	return NULL;
}

const struct proto_method_info *
proto_method_info(enum proto_method id)
{
	if ((unsigned)id >= PM__COUNT)
		return NULL;
	return &proto_methods[id];
}

const char *
proto_err_kind(int code)
{
	size_t	i;

	for (i = 0; i < NITEMS(proto_kinds); i++)
		if (proto_kinds[i].pk_code == code)
			return proto_kinds[i].pk_kind;
	/* A code from a newer daemon: callers still get a usable word. */
	return "error";
}

int
proto_err_code(const char *kind)
{
	size_t	i;

	if (kind == NULL)
		return 0;
	for (i = 0; i < NITEMS(proto_kinds); i++)
		if (strcmp(proto_kinds[i].pk_kind, kind) == 0)
			return proto_kinds[i].pk_code;
	return 0;
}

const char *
proto_perm_name(unsigned bit)
{
	size_t	i;

	for (i = 0; i < NITEMS(proto_perms); i++)
		if (proto_perms[i].pp_bit == bit)
			return proto_perms[i].pp_name;
	return NULL;
}

int
proto_quotable(const char *s, size_t len, size_t max)
{
	size_t	i;

	if (len == 0 || len > max)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

void
proto_line_copy(char *dst, size_t dstlen, const char *src)
{
	size_t		 i;
	unsigned char	 ch;

	if (dstlen == 0)
		return;
	for (i = 0; src[i] != '\0' && i < dstlen - 1; i++) {
		ch = (unsigned char)src[i];
		if (ch == '\t' || ch == '\n' || ch == '\r')
			dst[i] = ' ';
		else if (ch < 0x20 || ch > 0x7e)
			dst[i] = '?';
		else
			dst[i] = (char)ch;
	}
	dst[i] = '\0';
	if (src[i] != '\0' && dstlen > 4)
		memcpy(dst + dstlen - 4, "...", 4);
}

int
proto_perms_parse(const char *s, unsigned *bits, char *err, size_t errlen)
{
	const char	*p, *end;
	size_t		 len, i;
	unsigned	 acc = 0;

	if (s == NULL || *s == '\0') {
		snprintf(err, errlen, "no permissions given (expected a "
		    "comma-separated list of read, list, write, sync, admin)");
		return -1;
	}
	for (p = s;; p = end + 1) {
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		for (i = 0; i < NITEMS(proto_perms); i++)
			if (strlen(proto_perms[i].pp_name) == len &&
			    memcmp(proto_perms[i].pp_name, p, len) == 0)
				break;
		if (i == NITEMS(proto_perms)) {
			if (len == 0)
				snprintf(err, errlen, "empty permission name "
				    "in list");
			else if (proto_quotable(p, len, PROTO_TENANT_MAX))
				snprintf(err, errlen, "unknown permission "
				    "'%.*s' (expected read, list, write, sync "
				    "or admin)", (int)len, p);
			else
				snprintf(err, errlen, "unknown permission "
				    "(expected read, list, write, sync or "
				    "admin)");
			return -1;
		}
		acc |= proto_perms[i].pp_bit;
		if (*end == '\0')
			break;
	}
	*bits = acc;
	return 0;
}

char *
proto_perms_format(unsigned bits, char *buf, size_t len)
{
	size_t	i, used = 0, n;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (i = 0; i < NITEMS(proto_perms); i++) {
		if ((bits & proto_perms[i].pp_bit) == 0)
			continue;
		n = strlen(proto_perms[i].pp_name) + (used > 0);
		/* Only whole names: a cut word would read as another one. */
		if (used + n >= len)
			break;
		if (used > 0)
			buf[used++] = ',';
		memcpy(buf + used, proto_perms[i].pp_name,
		    strlen(proto_perms[i].pp_name));
		used += strlen(proto_perms[i].pp_name);
		buf[used] = '\0';
	}
	return buf;
}

static int
proto_tenant_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static int
proto_field_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

int
proto_tenant_valid(const char *s, char *err, size_t errlen)
{
	size_t	len, i;

	if (s == NULL || *s == '\0') {
		snprintf(err, errlen, "tenant id is empty");
		return -1;
	}
	len = strlen(s);
	if (len > PROTO_TENANT_MAX) {
		snprintf(err, errlen, "tenant id is too long (%zu bytes; at "
		    "most %d are allowed)", len, PROTO_TENANT_MAX);
		return -1;
	}
	for (i = 0; i < len; i++)
		if (!proto_tenant_char((unsigned char)s[i]))
			break;
	if (i < len) {
		if (proto_quotable(s, len, PROTO_TENANT_MAX))
			snprintf(err, errlen, "invalid tenant id '%s': only "
			    "letters, digits, '.', '_' and '-' are allowed", s);
		else
			snprintf(err, errlen, "invalid tenant id: only "
			    "letters, digits, '.', '_' and '-' are allowed");
		return -1;
	}
	if (s[0] == '.' || s[0] == '-') {
		snprintf(err, errlen, "invalid tenant id '%s': it must not "
		    "start with '.' or '-'", s);
		return -1;
	}
	return 0;
}

/* The same alphabet and bound as a tenant id; empty matches every one. */
int
proto_prefix_valid(const char *s, const char *what, char *err, size_t errlen)
{
	const char	*p;

	if (strlen(s) > PROTO_TENANT_MAX) {
		snprintf(err, errlen, "%s is longer than a tenant id can be",
		    what);
		return -1;
	}
	for (p = s; *p != '\0'; p++) {
		if (!proto_tenant_char((unsigned char)*p)) {
			snprintf(err, errlen, "%s may hold only letters, "
			    "digits, '.', '_' and '-'", what);
			return -1;
		}
	}
	return 0;
}

int
proto_field_valid(const char *s, char *err, size_t errlen)
{
	size_t	len, i;

	if (s == NULL || *s == '\0') {
		snprintf(err, errlen, "field name is empty");
		return -1;
	}
	len = strlen(s);
	if (len > PROTO_FIELD_MAX) {
		snprintf(err, errlen, "field name is too long (%zu bytes; at "
		    "most %d are allowed)", len, PROTO_FIELD_MAX);
		return -1;
	}
	for (i = 0; i < len; i++)
		if (!proto_field_char((unsigned char)s[i]))
			break;
	if (i < len) {
		if (proto_quotable(s, len, PROTO_TENANT_MAX))
			snprintf(err, errlen, "invalid field name '%s': only "
			    "lowercase letters, digits and '_' are allowed", s);
		else
			snprintf(err, errlen, "invalid field name: only "
			    "lowercase letters, digits and '_' are allowed");
		return -1;
	}
	if (s[0] >= '0' && s[0] <= '9') {
		snprintf(err, errlen, "invalid field name '%s': it must start "
		    "with a lowercase letter or '_'", s);
		return -1;
	}
	return 0;
}

int
proto_backup_name_valid(const char *s, char *err, size_t errlen)
{
	size_t	len, i;

	if (s == NULL || *s == '\0') {
		snprintf(err, errlen, "backup name is empty");
		return -1;
	}
	len = strlen(s);
	if (len > PROTO_BACKUP_NAME_MAX) {
		snprintf(err, errlen, "backup name is too long (%zu bytes; at "
		    "most %d are allowed)", len, PROTO_BACKUP_NAME_MAX);
		return -1;
	}
	/* The tenant id alphabet has no '/': a name is never a path. */
	for (i = 0; i < len; i++)
		if (!proto_tenant_char((unsigned char)s[i]))
			break;
	if (i < len || s[0] == '.') {
		if (proto_quotable(s, len, PROTO_BACKUP_NAME_MAX))
			snprintf(err, errlen, "invalid backup name '%s': a "
			    "plain file name of letters, digits, '.', '_' and "
			    "'-', not starting with '.'", s);
		else
			snprintf(err, errlen, "invalid backup name: a plain "
			    "file name of letters, digits, '.', '_' and '-', "
			    "not starting with '.'");
		return -1;
	}
	return 0;
}

ssize_t
proto_frame_find(const char *buf, size_t len, size_t max)
{
	const char	*nl;
	size_t		 n;

	/* A returned length must fit in ssize_t. */
	if (max > (size_t)SSIZE_MAX)
		max = (size_t)SSIZE_MAX;
	n = len < max ? len : max;
	if (n > 0 && (nl = memchr(buf, '\n', n)) != NULL)
		return (ssize_t)(nl - buf);
	if (len >= max)
		return PROTO_FRAME_TOO_LONG;
	return PROTO_FRAME_MORE;
}
