/*
 * Access control: the "allow" rules of the config file, and the peer
 * credentials (SO_PEERCRED, SO_PEERGROUPS) they are matched against.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "wfvaultd.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS	59	/* Linux 4.13; older headers lack the name */
#endif

#define ACL_QUOTE_MAX		64
#define ACL_LOOKUP_MAX		(1 << 20)	/* getpw*_r buffer limit */
#define ACL_GROUPS_MAX		65536		/* NGROUPS_MAX on Linux */

static void	acl_err(char *, size_t, const char *, ...)
		    __attribute__((__format__(printf, 3, 4)));

static void
acl_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* "'word'" when printable ASCII (truncated), else "(unprintable)". */
static const char *
acl_quote(const char *s, char *buf, size_t len)
{
	size_t	i, n = strlen(s);

	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
			snprintf(buf, len, "(unprintable)");
			return buf;
		}
	}
	if (n > ACL_QUOTE_MAX)
		snprintf(buf, len, "'%.*s...'", ACL_QUOTE_MAX, s);
	else
		snprintf(buf, len, "'%s'", s);
	return buf;
}

/*
 * Resolves a user (group == 0) or group name to its id.  Returns 0, 1 when
 * there is no such name, or -1 on a lookup failure (errno set).
 */
static int
acl_lookup(const char *name, int group, uint32_t *id)
{
	struct passwd	 pw, *pwp;
	struct group	 gr, *grp;
	char		*buf = NULL, *nbuf;
	long		 hint;
	size_t		 len;
	int		 rc;

	hint = sysconf(group ? _SC_GETGR_R_SIZE_MAX : _SC_GETPW_R_SIZE_MAX);
	len = hint > 0 && hint < ACL_LOOKUP_MAX ? (size_t)hint : 1024;
	for (;;) {
		if ((nbuf = realloc(buf, len)) == NULL) {
			free(buf);
			return -1;
		}
		buf = nbuf;
		if (group) {
			rc = getgrnam_r(name, &gr, buf, len, &grp);
			if (rc == 0 && grp != NULL)
				*id = gr.gr_gid;
		} else {
			rc = getpwnam_r(name, &pw, buf, len, &pwp);
			if (rc == 0 && pwp != NULL)
				*id = pw.pw_uid;
		}
		if (rc != ERANGE || len >= ACL_LOOKUP_MAX)
			break;
		len *= 2;
	}
	free(buf);
	if (rc == 0)
		return (group ? grp != NULL : pwp != NULL) ? 0 : 1;
	/* What some NSS modules say for "no such name". */
	if (rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
		return 1;
	errno = rc;
	return -1;
}

static int
acl_parse_principal(const char *word, struct acl_rule *rule, char *err,
    size_t errlen)
{
	static const struct {
		const char	*ap_prefix;
		int		 ap_kind;
		int		 ap_numeric;
	} kinds[] = {
		{ "user:", ACL_USER, 0 },
		{ "uid:", ACL_USER, 1 },
		{ "group:", ACL_GROUP, 0 },
		{ "gid:", ACL_GROUP, 1 },
	};
	char		 q[ACL_QUOTE_MAX + 16], why[256];
	const char	*what, *name = NULL;
	uint64_t	 v;
	uint32_t	 id;
	size_t		 i, n;
	int		 rc;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		n = strlen(kinds[i].ap_prefix);
		if (strncmp(word, kinds[i].ap_prefix, n) == 0) {
			name = word + n;
			break;
		}
	}
	if (name == NULL || *name == '\0') {
		acl_err(err, errlen, "bad principal %s (use user:NAME, uid:N, "
		    "group:NAME or gid:N)", acl_quote(word, q, sizeof(q)));
		return -1;
	}
	rule->ar_kind = kinds[i].ap_kind;
	what = rule->ar_kind == ACL_USER ? "user" : "group";
	if (kinds[i].ap_numeric) {
		/* (uid_t)-1 means "no id" to the kernel; never a real one. */
		if (conf_parse_uint(name, 0, UINT32_MAX - 1, &v, why,
		    sizeof(why)) == -1) {
			acl_err(err, errlen, "bad %s id in %s: %s",
			    what, acl_quote(word, q, sizeof(q)), why);
			return -1;
		}
		rule->ar_id = (uint32_t)v;
		return 0;
	}
	/*
	 * An account deleted after the rule was written must not keep the
	 * daemon from starting (or a reload from dropping its old id): the
	 * rule is skipped, which grants nothing.
	 */
	if ((rc = acl_lookup(name, rule->ar_kind == ACL_GROUP, &id)) == 1) {
		acl_err(err, errlen, "unknown %s %s; rule skipped, it grants "
		    "nothing", what, acl_quote(name, q, sizeof(q)));
		return ACL_SKIPPED;
	}
	if (rc == -1) {
		acl_err(err, errlen, "cannot look up %s %s: %s; rule skipped, "
		    "it grants nothing", what, acl_quote(name, q, sizeof(q)),
		    strerror(errno));
		return ACL_SKIPPED;
	}
	rule->ar_id = id;
	return 0;
}

/* One comma-separated list of "*", "prefix*" and exact tenant ids. */
static int
acl_parse_patterns(char *word, struct acl_rule *rule, char *err,
    size_t errlen)
{
	char	 q[ACL_QUOTE_MAX + 16], why[256];
	char	*p, *comma, *pat, **np;
	size_t	 n;
	int	 bad, star;

	for (p = word; p != NULL; p = comma) {
		if ((comma = strchr(p, ',')) != NULL)
			*comma++ = '\0';
		if (*p == '\0') {
			acl_err(err, errlen, "empty tenant pattern in the "
			    "list (use \"a,b\", no blank entries)");
			return -1;
		}
		n = strlen(p);
		bad = 0;
		if (strcmp(p, "*") != 0) {
			/* "acme*": the part before '*' is an id's prefix. */
			if ((star = p[n - 1] == '*'))
				p[n - 1] = '\0';
			bad = proto_tenant_valid(p, why, sizeof(why)) == -1;
			if (star)
				p[n - 1] = '*';
		}
		if (bad) {
			acl_err(err, errlen, "bad tenant pattern %s (use *, "
			    "PREFIX* or a tenant id): %s",
			    acl_quote(p, q, sizeof(q)), why);
			return -1;
		}
		if ((pat = strdup(p)) == NULL)
			goto nomem;
		np = reallocarray(rule->ar_patterns, rule->ar_npatterns + 1,
		    sizeof(*np));
		if (np == NULL) {
			free(pat);
			goto nomem;
		}
		rule->ar_patterns = np;
		rule->ar_patterns[rule->ar_npatterns++] = pat;
	}
	return 0;
nomem:
	acl_err(err, errlen, "%s", strerror(errno));
	return -1;
}

static void
acl_rule_release(struct acl_rule *rule)
{
	size_t	i;

	for (i = 0; i < rule->ar_npatterns; i++)
		free(rule->ar_patterns[i]);
	free(rule->ar_patterns);
	rule->ar_patterns = NULL;
	rule->ar_npatterns = 0;
}

int
acl_add_rule(struct acl *acl, const char *line, char *err, size_t errlen)
{
	struct acl_rule	 rule, *nr;
	char		*copy, *words[4], *save = NULL, *w;
	size_t		 n = 0;
	int		 rc = -1, principal;

	memset(&rule, 0, sizeof(rule));
	if ((copy = strdup(line)) == NULL) {
		acl_err(err, errlen, "%s", strerror(errno));
		return -1;
	}
	for (w = strtok_r(copy, " \t", &save); w != NULL;
	    w = strtok_r(NULL, " \t", &save)) {
		if (n == 4)
			break;
		words[n++] = w;
	}
	if (n != 3) {
		acl_err(err, errlen, "expected three words: PRINCIPAL PERMS "
		    "TENANTS (like \"user:deploy read,list acme,beta-*\"), "
		    "got %s%zu", n > 3 ? "more than " : "", n > 3 ? 3 : n);
		goto out;
	}
	/* The rest is checked before a skipped rule is reported. */
	if ((principal = acl_parse_principal(words[0], &rule, err,
	    errlen)) == -1)
		goto out;
	if (proto_perms_parse(words[1], &rule.ar_perms, err, errlen) == -1)
		goto out;
	if (rule.ar_perms == 0) {
		acl_err(err, errlen, "no permission named (use read, list, "
		    "write, sync or admin)");
		goto out;
	}
	if (acl_parse_patterns(words[2], &rule, err, errlen) == -1)
		goto out;
	if (principal == ACL_SKIPPED) {
		/* err still holds acl_parse_principal's message. */
		rc = ACL_SKIPPED;
		goto out;
	}
	nr = reallocarray(acl->acl_rules, acl->acl_nrules + 1, sizeof(*nr));
	if (nr == NULL) {
		acl_err(err, errlen, "%s", strerror(errno));
		goto out;
	}
	acl->acl_rules = nr;
	acl->acl_rules[acl->acl_nrules++] = rule;
	memset(&rule, 0, sizeof(rule));
	rc = 0;
out:
	acl_rule_release(&rule);
	free(copy);
	return rc;
}

void
acl_release(struct acl *acl)
{
	size_t	i;

	for (i = 0; i < acl->acl_nrules; i++)
		acl_rule_release(&acl->acl_rules[i]);
	free(acl->acl_rules);
	acl->acl_rules = NULL;
	acl->acl_nrules = 0;
}

void
acl_move(struct acl *dst, struct acl *src)
{
	if (dst == src)
		return;
	acl_release(dst);
	dst->acl_rules = src->acl_rules;
	dst->acl_nrules = src->acl_nrules;
	dst->acl_self = src->acl_self;
	src->acl_rules = NULL;
	src->acl_nrules = 0;
}

int
acl_pattern_match(const char *pattern, const char *tenant)
{
	size_t	n;

	if (pattern == NULL || tenant == NULL)
		return 0;
	n = strlen(pattern);
	if (n > 0 && pattern[n - 1] == '*')
		return strncmp(pattern, tenant, n - 1) == 0;
	return strcmp(pattern, tenant) == 0;
}

static int
acl_is_superuser(const struct acl *acl, const struct peer *peer)
{
	return peer->p_uid == 0 || peer->p_uid == acl->acl_self;
}

static int
acl_principal_match(const struct acl_rule *rule, const struct peer *peer)
{
	int	i;

	if (rule->ar_kind == ACL_USER)
		return rule->ar_id == (uint32_t)peer->p_uid;
	if (rule->ar_kind != ACL_GROUP)
		return 0;
	if (rule->ar_id == (uint32_t)peer->p_gid)
		return 1;
	for (i = 0; i < peer->p_ngroups; i++) {
		if (rule->ar_id == (uint32_t)peer->p_groups[i])
			return 1;
	}
	return 0;
}

static unsigned
acl_implied(unsigned perms)
{
	if (perms & PERM_ADMIN)
		return PERM_ALL;
	if (perms & PERM_SYNC)
		perms |= PERM_READ | PERM_LIST;
	return perms;
}

/*
 * The union of the rules naming peer whose patterns match tenant; with
 * tenant NULL any pattern counts, with only_star only "*" does.
 */
static unsigned
acl_collect(const struct acl *acl, const struct peer *peer,
    const char *tenant, int any, int only_star)
{
	const struct acl_rule	*r;
	unsigned		 perms = 0;
	size_t			 i, j;

	for (i = 0; i < acl->acl_nrules; i++) {
		r = &acl->acl_rules[i];
		if (!acl_principal_match(r, peer))
			continue;
		for (j = 0; j < r->ar_npatterns; j++) {
			if (any ||
			    (only_star && strcmp(r->ar_patterns[j], "*") == 0) ||
			    (!only_star && acl_pattern_match(r->ar_patterns[j],
			    tenant))) {
				perms |= r->ar_perms;
				break;
			}
		}
	}
	return acl_implied(perms);
}

unsigned
acl_perms(const struct acl *acl, const struct peer *peer, const char *tenant)
{
	if (acl_is_superuser(acl, peer))
		return PERM_ALL;
	if (tenant == NULL)
		return 0;
	return acl_collect(acl, peer, tenant, 0, 0);
}

unsigned
acl_perms_any(const struct acl *acl, const struct peer *peer)
{
	if (acl_is_superuser(acl, peer))
		return PERM_ALL;
	return acl_collect(acl, peer, NULL, 1, 0);
}

int
acl_perms_all(const struct acl *acl, const struct peer *peer, unsigned perm)
{
	if (acl_is_superuser(acl, peer))
		return 1;
	return (acl_collect(acl, peer, NULL, 0, 1) & perm) == perm;
}

/*
 * The supplementary groups of uid's passwd entry, for kernels without
 * SO_PEERGROUPS.  A uid with no entry (or a failed lookup) has none, which
 * can only grant less.
 */
static void
peer_groups_from_passwd(struct peer *peer)
{
	struct passwd	 pw, *pwp = NULL;
	char		*buf = NULL, *nbuf;
	gid_t		*groups = NULL, *ng;
	size_t		 len = 4096;
	int		 n = 32, have, rc;

	for (;;) {
		if ((nbuf = realloc(buf, len)) == NULL)
			goto out;
		buf = nbuf;
		rc = getpwuid_r(peer->p_uid, &pw, buf, len, &pwp);
		if (rc != ERANGE || len >= ACL_LOOKUP_MAX)
			break;
		len *= 2;
	}
	if (rc != 0 || pwp == NULL)
		goto out;
	for (;;) {
		if ((ng = reallocarray(groups, n, sizeof(*ng))) == NULL)
			goto out;
		groups = ng;
		have = n;
		if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) != -1)
			break;
		/* n is now the count needed. */
		if (n <= have || n > ACL_GROUPS_MAX)
			goto out;
	}
	peer->p_groups = groups;
	peer->p_ngroups = n;
	groups = NULL;
out:
	free(groups);
	free(buf);
}

int
peer_from_fd(int fd, struct peer *peer, char *err, size_t errlen)
{
	struct ucred	 uc;
	socklen_t	 len;
	gid_t		*groups = NULL, *ng;
	size_t		 n = 16;

	*peer = (struct peer)PEER_INIT;
	len = sizeof(uc);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == -1) {
		acl_err(err, errlen, "getsockopt SO_PEERCRED: %s",
		    strerror(errno));
		return -1;
	}
	if (len != sizeof(uc)) {
		acl_err(err, errlen, "getsockopt SO_PEERCRED: short answer");
		return -1;
	}
	peer->p_uid = uc.uid;
	peer->p_gid = uc.gid;
	peer->p_pid = uc.pid;

	for (;;) {
		if ((ng = reallocarray(groups, n, sizeof(*ng))) == NULL) {
			acl_err(err, errlen, "%s", strerror(errno));
			goto fail;
		}
		groups = ng;
		len = n * sizeof(*groups);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups,
		    &len) == 0) {
			n = len / sizeof(*groups);
			break;
		}
		if (errno == ERANGE && len > n * sizeof(*groups) &&
		    len / sizeof(*groups) <= ACL_GROUPS_MAX) {
			/* The kernel told us how much it needs. */
			n = len / sizeof(*groups);
			continue;
		}
		if (errno == ENOPROTOOPT) {
			free(groups);
			peer_groups_from_passwd(peer);
			return 0;
		}
		acl_err(err, errlen, "getsockopt SO_PEERGROUPS: %s",
		    strerror(errno));
		goto fail;
	}
	if (n == 0) {
		free(groups);
		groups = NULL;
	}
	peer->p_groups = groups;
	peer->p_ngroups = (int)n;
	return 0;
fail:
	free(groups);
	peer_release(peer);
	return -1;
}

void
peer_release(struct peer *peer)
{
	free(peer->p_groups);
	*peer = (struct peer)PEER_INIT;
}
