/*
 * Unit tests of access control (daemon/acl.c): parsing "allow" rules,
 * matching peers and tenants, and reading peer credentials from a socket.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wfvaultd.h"

/* Rules built from lines; any parse failure fails the test. */
static void
acl_build(struct acl *acl, const char *const *lines)
{
	char	err[512];

	*acl = (struct acl)ACL_INIT;
	/* Tests play unprivileged peers; the daemon "is" uid 4242. */
	acl->acl_self = 4242;
	for (; *lines != NULL; lines++) {
		err[0] = '\0';
		if (acl_add_rule(acl, *lines, err, sizeof(err)) != 0)
			fail_msg("rule '%s': %s", *lines, err);
	}
}

static struct peer
peer_make(uid_t uid, gid_t gid, gid_t *groups, int ngroups)
{
	struct peer	p = PEER_INIT;

	p.p_uid = uid;
	p.p_gid = gid;
	p.p_pid = 1;
	p.p_groups = groups;
	p.p_ngroups = ngroups;
	return p;
}

static void
add_fails(const char *line, const char *want)
{
	struct acl	acl = ACL_INIT;
	char		err[512];

	err[0] = '\0';
	assert_int_equal(acl_add_rule(&acl, line, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("rule '%s': got '%s', want '%s'", line, err, want);
	assert_int_equal(acl.acl_nrules, 0);
	assert_null(acl.acl_rules);
	acl_release(&acl);
}

static void
test_default_deny(void **state)
{
	const char *const lines[] = { NULL };
	struct acl	acl;
	struct peer	p = peer_make(1000, 1000, NULL, 0);

	(void)state;
	acl_build(&acl, lines);
	assert_int_equal(acl_perms(&acl, &p, "acme"), 0);
	assert_int_equal(acl_perms_any(&acl, &p), 0);
	assert_int_equal(acl_perms_all(&acl, &p, PERM_READ), 0);
	acl_release(&acl);
}

static void
test_principals(void **state)
{
	const char *const lines[] = {
		"uid:1000 read acme",
		"gid:2000 list acme",
		"user:root write acme",
		"group:root sync beta",
		NULL
	};
	struct acl	acl;
	struct peer	u1000 = peer_make(1000, 1000, NULL, 0);
	struct peer	u1001 = peer_make(1001, 1001, NULL, 0);
	struct peer	g2000 = peer_make(1002, 2000, NULL, 0);
	struct peer	gid0 = peer_make(1003, 0, NULL, 0);
	struct peer	gid1000 = peer_make(5, 1000, NULL, 0);

	(void)state;
	acl_build(&acl, lines);
	assert_int_equal(acl.acl_nrules, 4);
	/* user:root and group:root resolve to 0 on any Unix. */
	assert_int_equal(acl.acl_rules[2].ar_kind, ACL_USER);
	assert_int_equal(acl.acl_rules[2].ar_id, 0);
	assert_int_equal(acl.acl_rules[3].ar_kind, ACL_GROUP);
	assert_int_equal(acl.acl_rules[3].ar_id, 0);

	assert_int_equal(acl_perms(&acl, &u1000, "acme"), PERM_READ);
	assert_int_equal(acl_perms(&acl, &u1001, "acme"), 0);
	assert_int_equal(acl_perms(&acl, &g2000, "acme"), PERM_LIST);
	/* A uid rule does not match a gid of the same number. */
	assert_int_equal(acl_perms(&acl, &gid1000, "acme"), 0);
	assert_int_equal(acl_perms(&acl, &gid0, "beta"),
	    PERM_SYNC | PERM_READ | PERM_LIST);
	assert_int_equal(acl_perms(&acl, &gid0, "acme"), 0);
	acl_release(&acl);
	assert_int_equal(acl.acl_nrules, 0);
	assert_int_equal(acl.acl_self, 4242);
}

static void
test_supplementary_groups(void **state)
{
	const char *const lines[] = { "gid:3000 write,read team-*", NULL };
	gid_t		groups[] = { 10, 3000, 20 };
	gid_t		other[] = { 10, 20 };
	struct acl	acl;
	struct peer	in = peer_make(1000, 1000, groups, 3);
	struct peer	out = peer_make(1000, 1000, other, 2);

	(void)state;
	acl_build(&acl, lines);
	assert_int_equal(acl_perms(&acl, &in, "team-a"),
	    PERM_WRITE | PERM_READ);
	assert_int_equal(acl_perms(&acl, &out, "team-a"), 0);
	acl_release(&acl);
}

static void
test_patterns(void **state)
{
	const char *const lines[] = {
		"uid:1000 read acme,beta-*",
		"uid:1001 list *",
		NULL
	};
	struct acl	acl;
	struct peer	a = peer_make(1000, 1000, NULL, 0);
	struct peer	b = peer_make(1001, 1001, NULL, 0);

	(void)state;
	acl_build(&acl, lines);
	assert_int_equal(acl_perms(&acl, &a, "acme"), PERM_READ);
	/* An exact id is not a prefix. */
	assert_int_equal(acl_perms(&acl, &a, "acme2"), 0);
	assert_int_equal(acl_perms(&acl, &a, "acm"), 0);
	assert_int_equal(acl_perms(&acl, &a, "ACME"), 0);
	assert_int_equal(acl_perms(&acl, &a, "beta-"), PERM_READ);
	assert_int_equal(acl_perms(&acl, &a, "beta-x.y"), PERM_READ);
	assert_int_equal(acl_perms(&acl, &a, "beta"), 0);
	assert_int_equal(acl_perms(&acl, &a, "xbeta-1"), 0);
	assert_int_equal(acl_perms(&acl, &b, "anything"), PERM_LIST);
	assert_int_equal(acl_perms(&acl, &b, "acme"), PERM_LIST);

	assert_true(acl_pattern_match("*", "x"));
	assert_true(acl_pattern_match("a*", "a"));
	assert_true(acl_pattern_match("a*", "abc"));
	assert_false(acl_pattern_match("a*", "ba"));
	assert_true(acl_pattern_match("acme", "acme"));
	assert_false(acl_pattern_match("acme", "acme2"));
	assert_false(acl_pattern_match("acme2", "acme"));
	acl_release(&acl);
}

static void
test_union_and_implications(void **state)
{
	const char *const lines[] = {
		"uid:1000 read acme",
		"uid:1000 write acme,other",
		"gid:1000 list acme",
		"uid:1000 write,read,read other",
		"uid:1001 admin acme",
		"uid:1002 sync *",
		"uid:1003 read *",
		"uid:1003 list,write *",
		NULL
	};
	struct acl	acl;
	struct peer	p = peer_make(1000, 1000, NULL, 0);
	struct peer	adm = peer_make(1001, 1, NULL, 0);
	struct peer	syn = peer_make(1002, 1, NULL, 0);
	struct peer	rw = peer_make(1003, 1, NULL, 0);

	(void)state;
	acl_build(&acl, lines);
	assert_int_equal(acl_perms(&acl, &p, "acme"),
	    PERM_READ | PERM_WRITE | PERM_LIST);
	assert_int_equal(acl_perms(&acl, &p, "other"), PERM_READ | PERM_WRITE);
	assert_int_equal(acl_perms_any(&acl, &p),
	    PERM_READ | PERM_WRITE | PERM_LIST);
	assert_false(acl_perms_all(&acl, &p, PERM_READ));

	assert_int_equal(acl_perms(&acl, &adm, "acme"), PERM_ALL);
	assert_int_equal(acl_perms(&acl, &adm, "beta"), 0);
	assert_int_equal(acl_perms_any(&acl, &adm), PERM_ALL);
	/* Admin of one tenant is not admin of the whole store. */
	assert_false(acl_perms_all(&acl, &adm, PERM_ADMIN));

	assert_int_equal(acl_perms(&acl, &syn, "acme"),
	    PERM_SYNC | PERM_READ | PERM_LIST);
	assert_true(acl_perms_all(&acl, &syn, PERM_SYNC));
	assert_true(acl_perms_all(&acl, &syn, PERM_READ | PERM_LIST));
	assert_false(acl_perms_all(&acl, &syn, PERM_WRITE));
	assert_false(acl_perms_all(&acl, &syn, PERM_ADMIN));

	/* Two "*" rules add up for acl_perms_all too. */
	assert_true(acl_perms_all(&acl, &rw, PERM_READ | PERM_WRITE));
	assert_false(acl_perms_all(&acl, &rw, PERM_READ | PERM_SYNC));
	acl_release(&acl);
}

static void
test_superusers(void **state)
{
	const char *const lines[] = { NULL };
	struct acl	acl;
	struct peer	root = peer_make(0, 0, NULL, 0);
	struct peer	self = peer_make(4242, 4242, NULL, 0);
	struct peer	other = peer_make(4243, 0, NULL, 0);

	(void)state;
	acl_build(&acl, lines);
	assert_int_equal(acl_perms(&acl, &root, "acme"), PERM_ALL);
	assert_int_equal(acl_perms_any(&acl, &root), PERM_ALL);
	assert_true(acl_perms_all(&acl, &root, PERM_ALL));
	assert_int_equal(acl_perms(&acl, &self, "acme"), PERM_ALL);
	assert_int_equal(acl_perms_any(&acl, &self), PERM_ALL);
	assert_true(acl_perms_all(&acl, &self, PERM_ADMIN));
	/* gid 0 alone is nobody special. */
	assert_int_equal(acl_perms(&acl, &other, "acme"), 0);
	assert_false(acl_perms_all(&acl, &other, PERM_READ));
	acl_release(&acl);
}

/* A rule naming an account that does not exist is left out, with why. */
static void
add_skipped(const char *line, const char *want)
{
	struct acl	acl = ACL_INIT;
	char		err[512];

	err[0] = '\0';
	assert_int_equal(acl_add_rule(&acl, line, err, sizeof(err)),
	    ACL_SKIPPED);
	if (strstr(err, want) == NULL)
		fail_msg("rule '%s': got '%s', want '%s'", line, err, want);
	assert_int_equal(acl.acl_nrules, 0);
	acl_release(&acl);
}

static void
test_parse_errors(void **state)
{
	(void)state;
	add_skipped("user:no-such-user-wfvault read acme",
	    "unknown user 'no-such-user-wfvault'; rule skipped");
	add_skipped("group:no-such-group-wfvault read acme",
	    "unknown group 'no-such-group-wfvault'; rule skipped");
	/* The rest of a skipped rule is still checked. */
	add_fails("user:no-such-user-wfvault read,bogus acme", "bogus");
	add_fails("user:no-such-user-wfvault read bad/tenant",
	    "bad tenant pattern");
	add_fails("person:bob read acme", "bad principal 'person:bob'");
	add_fails("user: read acme", "bad principal 'user:'");
	add_fails("uid:abc read acme", "bad user id in 'uid:abc'");
	add_fails("uid:-1 read acme", "bad user id in 'uid:-1'");
	add_fails("uid:4294967295 read acme", "bad user id in 'uid:4294967295'");
	add_fails("gid:99999999999999999999 read acme",
	    "bad group id in 'gid:99999999999999999999'");
	add_fails("uid:1 reed acme", "'reed'");
	add_fails("uid:1 read,,list acme", "empty permission");
	add_fails("uid:1 read acme,,beta", "empty tenant pattern");
	add_fails("uid:1 read acme,", "empty tenant pattern");
	add_fails("uid:1 read a*b", "bad tenant pattern 'a*b'");
	add_fails("uid:1 read **", "bad tenant pattern '**'");
	add_fails("uid:1 read .hidden", "bad tenant pattern '.hidden'");
	add_fails("uid:1 read -x*", "bad tenant pattern '-x*'");
	add_fails("uid:1 read acme/x", "bad tenant pattern 'acme/x'");
	add_fails("uid:1 read", "expected three words");
	add_fails("uid:1", "got 1");
	add_fails("", "got 0");
	add_fails("uid:1 read acme extra", "got more than 3");
}

static void
test_rule_contents_and_move(void **state)
{
	const char *const lines[] = { "uid:7 read,list  acme,b-*,*", NULL };
	struct acl	a, b = ACL_INIT;
	struct peer	p = peer_make(7, 7, NULL, 0);
	char		err[256];

	(void)state;
	acl_build(&a, lines);
	assert_int_equal(a.acl_rules[0].ar_npatterns, 3);
	assert_string_equal(a.acl_rules[0].ar_patterns[0], "acme");
	assert_string_equal(a.acl_rules[0].ar_patterns[1], "b-*");
	assert_string_equal(a.acl_rules[0].ar_patterns[2], "*");
	assert_int_equal(a.acl_rules[0].ar_perms, PERM_READ | PERM_LIST);

	/* dst's old rules are released; src is left empty. */
	assert_int_equal(acl_add_rule(&b, "uid:7 admin *", err, sizeof(err)),
	    0);
	acl_move(&b, &a);
	assert_int_equal(a.acl_nrules, 0);
	assert_null(a.acl_rules);
	assert_int_equal(b.acl_nrules, 1);
	assert_int_equal(b.acl_self, 4242);
	assert_int_equal(acl_perms(&b, &p, "zzz"), PERM_READ | PERM_LIST);
	assert_int_equal(acl_perms(&a, &p, "zzz"), 0);
	acl_release(&b);
	acl_release(&a);
}

static void
test_peer_from_fd(void **state)
{
	struct peer	p = PEER_INIT;
	gid_t		mine[256];
	int		sv[2], n, i, j;
	char		err[256];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(peer_from_fd(sv[0], &p, err, sizeof(err)), 0);
	assert_int_equal(p.p_uid, geteuid());
	assert_int_equal(p.p_gid, getegid());
	assert_int_equal(p.p_pid, getpid());
	/* The kernel reports our supplementary groups. */
	n = getgroups(256, mine);
	assert_true(n >= 0);
	assert_int_equal(p.p_ngroups, n);
	for (i = 0; i < n; i++) {
		for (j = 0; j < p.p_ngroups; j++)
			if (p.p_groups[j] == mine[i])
				break;
		assert_true(j < p.p_ngroups);
	}
	peer_release(&p);
	assert_null(p.p_groups);
	assert_int_equal(p.p_ngroups, 0);
	assert_int_equal(p.p_uid, (uid_t)-1);
	close(sv[0]);
	close(sv[1]);

	/* Not a socket: an error, and peer left empty. */
	assert_int_equal(peer_from_fd(-1, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "SO_PEERCRED"));
	assert_null(p.p_groups);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_deny),
		cmocka_unit_test(test_principals),
		cmocka_unit_test(test_supplementary_groups),
		cmocka_unit_test(test_patterns),
		cmocka_unit_test(test_union_and_implications),
		cmocka_unit_test(test_superusers),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_rule_contents_and_move),
		cmocka_unit_test(test_peer_from_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
