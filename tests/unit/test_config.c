/*
 * Unit tests of the config parser (config/config.c) and of wfvaultd's
 * keyword table, defaults and cross-field checks (daemon/conf.c).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "support.h"
#include "wfvaultd.h"

#define KIB	((uint64_t)1 << 10)
#define MIB	((uint64_t)1 << 20)
#define GIB	((uint64_t)1 << 30)
#define TIB	((uint64_t)1 << 40)

/* A table with one keyword of each type, to test the parser alone. */
struct tconf {
	char		*tc_name;
	char		*tc_path;
	uint64_t	 tc_count;
	uint64_t	 tc_size;
	uint64_t	 tc_wait;
	uint64_t	 tc_mode;
	uint64_t	 tc_big;
	int		 tc_custom_calls;
	char		 tc_last_custom[128];
};

static int
tconf_custom(void *obj, const char *value, char *err, size_t errlen)
{
	struct tconf	*tc = obj;

	if (strcmp(value, "refuse") == 0) {
		snprintf(err, errlen, "refused on purpose");
		return -1;
	}
	tc->tc_custom_calls++;
	snprintf(tc->tc_last_custom, sizeof(tc->tc_last_custom), "%s", value);
	return 0;
}

static const struct conf_keyword tconf_table[] = {
	{ "name", CONF_STRING, offsetof(struct tconf, tc_name), 0, 0, 0,
	    NULL },
	{ "path", CONF_PATH, offsetof(struct tconf, tc_path), 0, 0,
	    CONF_ONCE, NULL },
	{ "count", CONF_UINT, offsetof(struct tconf, tc_count), 1, 65536,
	    CONF_ONCE, NULL },
	{ "size", CONF_SIZE, offsetof(struct tconf, tc_size), 0,
	    UINT64_MAX, 0, NULL },
	{ "wait", CONF_DURATION, offsetof(struct tconf, tc_wait), 1, 86400,
	    0, NULL },
	{ "mode", CONF_MODE, offsetof(struct tconf, tc_mode), 0, 0777, 0,
	    NULL },
	{ "big", CONF_UINT, offsetof(struct tconf, tc_big), 0, 0, 0, NULL },
	{ "custom", CONF_CUSTOM, 0, 0, 0, 0, tconf_custom },
	{ NULL, 0, 0, 0, 0, 0, NULL }
};

/* Parses text into *tc (zeroed first); returns the parser's result. */
static int
tparse(struct tconf *tc, const char *text, char *err, size_t errlen)
{
	memset(tc, 0, sizeof(*tc));
	err[0] = '\0';
	return conf_parse_buffer("t.conf", text, strlen(text), tconf_table,
	    tc, err, errlen);
}

/* Expects text to fail with exactly the message want. */
static void
tparse_fails(const char *text, const char *want)
{
	struct tconf	tc;
	char		err[512];

	assert_int_equal(tparse(&tc, text, err, sizeof(err)), -1);
	assert_string_equal(err, want);
	conf_free_strings(tconf_table, &tc);
}

static void
test_every_type(void **state)
{
	struct tconf	tc;
	char		err[512];

	(void)state;
	assert_int_equal(tparse(&tc,
	    "# a comment\n"
	    "\n"
	    "   \t\n"
	    "  name   hello world  \n"
	    "path /var/lib/x y\n"
	    "count 42\n"
	    "size 64K\n"
	    "wait 5m\n"
	    "mode 0640\n"
	    "big 18446744073709551615\n"
	    "custom a  b\tc\n"
	    "   # indented comment\n",
	    err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(tc.tc_name, "hello world");
	assert_string_equal(tc.tc_path, "/var/lib/x y");
	assert_int_equal(tc.tc_count, 42);
	assert_int_equal(tc.tc_size, 64 * 1024);
	assert_int_equal(tc.tc_wait, 300);
	assert_int_equal(tc.tc_mode, 0640);
	assert_true(tc.tc_big == UINT64_MAX);
	assert_int_equal(tc.tc_custom_calls, 1);
	assert_string_equal(tc.tc_last_custom, "a  b\tc");
	conf_free_strings(tconf_table, &tc);
	assert_null(tc.tc_name);
	assert_null(tc.tc_path);
}

static void
test_value_verbatim(void **state)
{
	struct tconf	tc;
	char		err[512];

	(void)state;
	/* '#' only starts a comment at the start of a line. */
	assert_int_equal(tparse(&tc, "name a # not a comment\n", err,
	    sizeof(err)), 0);
	assert_string_equal(tc.tc_name, "a # not a comment");
	conf_free_strings(tconf_table, &tc);

	/* CRLF files, and a last line without a newline. */
	assert_int_equal(tparse(&tc, "name crlf\r\ncount 7", err,
	    sizeof(err)), 0);
	assert_string_equal(tc.tc_name, "crlf");
	assert_int_equal(tc.tc_count, 7);
	conf_free_strings(tconf_table, &tc);

	/* A repeated non-ONCE string replaces (and frees) the old one. */
	assert_int_equal(tparse(&tc, "name one\nname two\ncustom x\n"
	    "custom y\n", err, sizeof(err)), 0);
	assert_string_equal(tc.tc_name, "two");
	assert_int_equal(tc.tc_custom_calls, 2);
	assert_string_equal(tc.tc_last_custom, "y");
	conf_free_strings(tconf_table, &tc);

	/* Empty input is a valid (empty) config. */
	assert_int_equal(tparse(&tc, "", err, sizeof(err)), 0);
	assert_null(tc.tc_name);
}

static void
test_line_numbers_and_keywords(void **state)
{
	char	long_kw[300];

	(void)state;
	tparse_fails("name a\n\n# c\nbogus 1\n",
	    "t.conf:4: unknown keyword 'bogus'");
	tparse_fails("Name a\n", "t.conf:1: unknown keyword 'Name'");
	tparse_fails("\xff\xfe x\n", "t.conf:1: unknown keyword (unprintable)");
	memset(long_kw, 'k', sizeof(long_kw) - 1);
	long_kw[sizeof(long_kw) - 1] = '\0';
	tparse_fails(long_kw, "t.conf:1: unknown keyword "
	    "'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	    "...'");
	tparse_fails("count 3\nname\n", "t.conf:2: 'name' needs a value");
	tparse_fails("name   \t \n", "t.conf:1: 'name' needs a value");
	tparse_fails("count 1\ncount 2\n",
	    "t.conf:2: 'count' is given twice (first on line 1)");
	tparse_fails("path /a\n\npath /a\n",
	    "t.conf:3: 'path' is given twice (first on line 1)");
	tparse_fails("name a\x01z\n",
	    "t.conf:1: control character 0x01 in line");
	tparse_fails("custom refuse\n", "t.conf:1: custom: refused on purpose");
}

static void
test_numbers(void **state)
{
	struct tconf	tc;
	char		err[512];

	(void)state;
	assert_int_equal(tparse(&tc, "count 65536\n", err, sizeof(err)), 0);
	assert_int_equal(tc.tc_count, 65536);
	assert_int_equal(tparse(&tc, "count 0001\n", err, sizeof(err)), 0);
	assert_int_equal(tc.tc_count, 1);

	tparse_fails("count 0\n",
	    "t.conf:1: count: 0 is out of range (1\xe2\x80\x93" "65536)");
	tparse_fails("count 65537\n",
	    "t.conf:1: count: 65537 is out of range (1\xe2\x80\x93" "65536)");
	tparse_fails("count 99999999999999999999\n",
	    "t.conf:1: count: 99999999999999999999 is out of range "
	    "(1\xe2\x80\x93" "65536)");
	tparse_fails("big 18446744073709551616\n",
	    "t.conf:1: big: 18446744073709551616 is out of range "
	    "(0\xe2\x80\x93" "18446744073709551615)");
	tparse_fails("count -1\n",
	    "t.conf:1: count: '-1' is not a decimal number");
	tparse_fails("count +1\n",
	    "t.conf:1: count: '+1' is not a decimal number");
	tparse_fails("count 0x10\n",
	    "t.conf:1: count: '0x10' is not a decimal number");
	tparse_fails("count 12abc\n",
	    "t.conf:1: count: '12abc' is not a decimal number");
	tparse_fails("count 1 2\n",
	    "t.conf:1: count: '1 2' is not a decimal number");
}

static void
test_sizes(void **state)
{
	static const struct {
		const char	*in;
		uint64_t	 want;
	} ok[] = {
		{ "0", 0 }, { "4096", 4096 }, { "64K", 64 * KIB },
		{ "64k", 64 * KIB }, { "64KiB", 64 * KIB },
		{ "64kib", 64 * KIB }, { "16M", 16 * MIB }, { "16 MiB", 16 * MIB },
		{ "1G", GIB }, { "2gib", 2 * GIB }, { "1T", TIB },
		{ "3TiB", 3 * TIB }, { "16777215T", 16777215 * TIB },
	};
	static const char *bad[] = {
		"1.5M", "1KB", "1Ki", "1X", "M", "-1K", "+1K", "1K1", "K1",
		"1 K B",
	};
	uint64_t	v;
	char		err[256];
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		assert_int_equal(conf_parse_size(ok[i].in, 0, UINT64_MAX, &v,
		    err, sizeof(err)), 0);
		assert_true(v == ok[i].want);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(conf_parse_size(bad[i], 0, UINT64_MAX, &v,
		    err, sizeof(err)), -1);
		assert_non_null(strstr(err, "is not a size"));
	}
	/* Overflow in the digits, and in the multiplication. */
	assert_int_equal(conf_parse_size("99999999999999999999", 0,
	    UINT64_MAX, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is out of range"));
	assert_int_equal(conf_parse_size("16777216T", 0, UINT64_MAX, &v,
	    err, sizeof(err)), -1);
	assert_string_equal(err, "16777216T is out of range "
	    "(0\xe2\x80\x93" "18446744073709551615)");
	assert_int_equal(conf_parse_size("512K", MIB, TIB, &v, err,
	    sizeof(err)), -1);
	assert_string_equal(err,
	    "512K is out of range (1M\xe2\x80\x93" "1T)");
	tparse_fails("size 1Q\n", "t.conf:1: size: '1Q' is not a size "
	    "(like 512K, 64M, 1G)");
}

static void
test_durations(void **state)
{
	static const struct {
		const char	*in;
		uint64_t	 want;
	} ok[] = {
		{ "30", 30 }, { "30s", 30 }, { "5m", 300 }, { "2h", 7200 },
		{ "1d", 86400 }, { "1D", 86400 }, { "10 s", 10 },
	};
	static const char *bad[] = { "1w", "1ms", "s", "-5s", "1.5h", "1h30m" };
	uint64_t	v;
	char		err[256];
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(conf_parse_duration(ok[i].in, 1, 86400, &v,
		    err, sizeof(err)), 0);
		assert_true(v == ok[i].want);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(conf_parse_duration(bad[i], 1, 86400, &v,
		    err, sizeof(err)), -1);
		assert_non_null(strstr(err, "is not a duration"));
	}
	tparse_fails("wait 0s\n",
	    "t.conf:1: wait: 0s is out of range (1s\xe2\x80\x93" "1d)");
	tparse_fails("wait 2d\n",
	    "t.conf:1: wait: 2d is out of range (1s\xe2\x80\x93" "1d)");
	assert_int_equal(conf_parse_duration("99999999999999999999d", 0,
	    UINT64_MAX, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is out of range"));
}

static void
test_modes(void **state)
{
	struct tconf	tc;
	char		err[512];

	(void)state;
	assert_int_equal(tparse(&tc, "mode 0660\n", err, sizeof(err)), 0);
	assert_int_equal(tc.tc_mode, 0660);
	assert_int_equal(tparse(&tc, "mode 600\n", err, sizeof(err)), 0);
	assert_int_equal(tc.tc_mode, 0600);
	assert_int_equal(tparse(&tc, "mode 0\n", err, sizeof(err)), 0);
	assert_int_equal(tc.tc_mode, 0);
	assert_int_equal(tparse(&tc, "mode 0777\n", err, sizeof(err)), 0);
	assert_int_equal(tc.tc_mode, 0777);
	tparse_fails("mode 01777\n", "t.conf:1: mode: 01777 is out of range "
	    "(0000\xe2\x80\x93" "0777)");
	tparse_fails("mode 0999\n", "t.conf:1: mode: '0999' is not an octal "
	    "file mode (like 0660)");
	tparse_fails("mode rw-r--r--\n", "t.conf:1: mode: 'rw-r--r--' is not "
	    "an octal file mode (like 0660)");
	tparse_fails("mode -0600\n", "t.conf:1: mode: '-0600' is not an octal "
	    "file mode (like 0660)");
}

static void
test_paths(void **state)
{
	(void)state;
	tparse_fails("path relative/dir\n",
	    "t.conf:1: path: must be an absolute path (starting with '/')");
	tparse_fails("path ./x\n",
	    "t.conf:1: path: must be an absolute path (starting with '/')");
	tparse_fails("path ~/x\n",
	    "t.conf:1: path: must be an absolute path (starting with '/')");
}

static void
test_long_line_and_nul(void **state)
{
	struct tconf	 tc;
	char		 err[512];
	char		*buf;
	size_t		 n;

	(void)state;
	/* Exactly 4096 bytes is fine, 4097 is not. */
	buf = malloc(8192);
	assert_non_null(buf);
	n = (size_t)snprintf(buf, 8192, "name ");
	memset(buf + n, 'x', 4096 - n);
	buf[4096] = '\n';
	buf[4097] = '\0';
	assert_int_equal(tparse(&tc, buf, err, sizeof(err)), 0);
	assert_int_equal(strlen(tc.tc_name), 4096 - n);
	conf_free_strings(tconf_table, &tc);

	n = (size_t)snprintf(buf, 8192, "count 1\nname ");
	memset(buf + n, 'x', 4097 - 5);
	buf[n + 4092] = '\0';
	tparse_fails(buf, "t.conf:2: line is longer than 4096 bytes");
	free(buf);

	/* A NUL byte anywhere is refused, even in a comment. */
	memset(&tc, 0, sizeof(tc));
	assert_int_equal(conf_parse_buffer("t.conf", "count 1\n# a\0b\n", 13,
	    tconf_table, &tc, err, sizeof(err)), -1);
	assert_string_equal(err,
	    "t.conf:2: NUL byte in line (is this a text file?)");
	/* Without the NUL the same bytes parse. */
	assert_int_equal(conf_parse_buffer("t.conf", "count 1\n# ab\n", 13,
	    tconf_table, &tc, err, sizeof(err)), 0);
	/* buf need not end in NUL: only len bytes are read. */
	assert_int_equal(conf_parse_buffer("t.conf", "count 12345", 8,
	    tconf_table, &tc, err, sizeof(err)), 0);
	assert_int_equal(tc.tc_count, 12);
}

static void
test_parse_file(void **state)
{
	struct tconf	 tc;
	char		 dir[] = "/tmp/wfvault-test-config-XXXXXX";
	char		 path[PATH_MAX], err[512], want[PATH_MAX + 64];
	FILE		*f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	memset(&tc, 0, sizeof(tc));
	assert_int_equal(conf_parse_file(path, tconf_table, &tc, err,
	    sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);

	/* A directory is not a config file either. */
	assert_int_equal(conf_parse_file(dir, tconf_table, &tc, err,
	    sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: Is a directory", dir);
	assert_string_equal(err, want);

	snprintf(path, sizeof(path), "%s/t.conf", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("name from file\ncount 9\nwhat\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(conf_parse_file(path, tconf_table, &tc, err,
	    sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: unknown keyword 'what'", path);
	assert_string_equal(err, want);
	/* The lines before the error were applied. */
	assert_string_equal(tc.tc_name, "from file");
	assert_int_equal(tc.tc_count, 9);
	conf_free_strings(tconf_table, &tc);
	unlink(path);
	rmdir(dir);
}

/* ---- daemon/conf.c ---- */

static int
dload(struct daemon_conf *dc, const char *text, char *err, size_t errlen)
{
	err[0] = '\0';
	return daemon_conf_load_buffer("d.conf", text, strlen(text), dc, err,
	    errlen);
}

static void
dload_fails(const char *text, const char *want)
{
	struct daemon_conf	dc;
	char			err[512];

	assert_int_equal(dload(&dc, text, err, sizeof(err)), -1);
	assert_string_equal(err, want);
	/* Released on failure: nothing left to free. */
	assert_null(dc.dc_socket);
	assert_null(dc.dc_data_dir);
	assert_null(dc.dc_acl.acl_rules);
}

static void
test_daemon_defaults(void **state)
{
	struct daemon_conf	dc;
	char			err[512];

	(void)state;
	assert_int_equal(dload(&dc, "master_key_file /etc/wfvault/master.key\n",
	    err, sizeof(err)), 0);
	assert_string_equal(dc.dc_socket, "/run/wfvault/wfvault.sock");
	assert_int_equal(dc.dc_socket_mode, 0660);
	assert_null(dc.dc_socket_group);
	assert_string_equal(dc.dc_data_dir, "/var/lib/wfvault");
	assert_string_equal(dc.dc_master_key_file, "/etc/wfvault/master.key");
	assert_null(dc.dc_master_key_credential);
	assert_true(dc.dc_map_size == GIB);
	assert_int_equal(dc.dc_max_connections, 1024);
	assert_true(dc.dc_max_message_bytes == MIB);
	assert_true(dc.dc_max_config_bytes == 64 * KIB);
	assert_true(dc.dc_max_output_bytes == 16 * MIB);
	assert_int_equal(dc.dc_max_connections_per_uid, 64);
	assert_true(dc.dc_max_output_total == 64 * MIB);
	assert_int_equal(dc.dc_ungranted_timeout, 10);
	assert_int_equal(dc.dc_idle_timeout, 300);
	assert_int_equal(dc.dc_message_timeout, 10);
	assert_int_equal(dc.dc_keep_versions, 10);
	assert_int_equal(dc.dc_feed_retain, 100000);
	assert_null(dc.dc_audit_log);
	assert_int_equal(dc.dc_acl.acl_nrules, 0);
	assert_int_equal(dc.dc_acl.acl_self, geteuid());
	daemon_conf_release(&dc);
	assert_null(dc.dc_socket);
	assert_null(dc.dc_master_key_file);
}

static void
test_daemon_all_keywords(void **state)
{
	struct daemon_conf	dc;
	char			err[512];

	(void)state;
	assert_int_equal(dload(&dc,
	    "socket /tmp/x/wfvault.sock\n"
	    "socket_mode 0600\n"
	    "socket_group wfvault\n"
	    "data_dir /srv/wfvault\n"
	    "master_key_credential wfvault-master-key\n"
	    "map_size 2GiB\n"
	    "max_connections 10\n"
	    "max_message_bytes 64M\n"
	    "max_config_bytes 16M\n"
	    "max_output_bytes 1G\n"
	    "max_connections_per_uid 5\n"
	    "max_output_total 2G\n"
	    "ungranted_timeout 3s\n"
	    "idle_timeout 1d\n"
	    "message_timeout 1h\n"
	    "keep_versions 1000\n"
	    "feed_retain 5\n"
	    "audit_log /var/log/wfvault/audit.log\n"
	    "allow uid:1000 read,list acme,beta-*\n"
	    "allow gid:2000 admin *\n"
	    "allow user:root sync *\n",
	    err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(dc.dc_socket, "/tmp/x/wfvault.sock");
	assert_int_equal(dc.dc_socket_mode, 0600);
	assert_string_equal(dc.dc_socket_group, "wfvault");
	assert_string_equal(dc.dc_data_dir, "/srv/wfvault");
	assert_null(dc.dc_master_key_file);
	assert_string_equal(dc.dc_master_key_credential, "wfvault-master-key");
	assert_true(dc.dc_map_size == 2 * GIB);
	assert_int_equal(dc.dc_max_connections, 10);
	assert_true(dc.dc_max_message_bytes == 64 * MIB);
	assert_true(dc.dc_max_config_bytes == 16 * MIB);
	assert_true(dc.dc_max_output_bytes == GIB);
	assert_int_equal(dc.dc_max_connections_per_uid, 5);
	assert_true(dc.dc_max_output_total == 2 * GIB);
	assert_int_equal(dc.dc_ungranted_timeout, 3);
	assert_int_equal(dc.dc_idle_timeout, 86400);
	assert_int_equal(dc.dc_message_timeout, 3600);
	assert_int_equal(dc.dc_keep_versions, 1000);
	assert_int_equal(dc.dc_feed_retain, 5);
	assert_string_equal(dc.dc_audit_log, "/var/log/wfvault/audit.log");
	assert_int_equal(dc.dc_acl.acl_nrules, 3);
	assert_int_equal(dc.dc_acl.acl_rules[0].ar_kind, ACL_USER);
	assert_int_equal(dc.dc_acl.acl_rules[0].ar_id, 1000);
	assert_int_equal(dc.dc_acl.acl_rules[0].ar_perms,
	    PERM_READ | PERM_LIST);
	assert_int_equal(dc.dc_acl.acl_rules[0].ar_npatterns, 2);
	assert_string_equal(dc.dc_acl.acl_rules[0].ar_patterns[1], "beta-*");
	assert_int_equal(dc.dc_acl.acl_rules[1].ar_kind, ACL_GROUP);
	assert_int_equal(dc.dc_acl.acl_rules[1].ar_id, 2000);
	assert_int_equal(dc.dc_acl.acl_rules[2].ar_id, 0);
	daemon_conf_release(&dc);
	assert_null(dc.dc_socket_group);
	assert_null(dc.dc_audit_log);
	assert_null(dc.dc_master_key_credential);
	assert_null(dc.dc_acl.acl_rules);
	assert_int_equal(dc.dc_acl.acl_nrules, 0);

	/* "none" switches the optional ones off. */
	assert_int_equal(dload(&dc, "master_key_file /k\nsocket_group none\n"
	    "audit_log none\n", err, sizeof(err)), 0);
	assert_null(dc.dc_socket_group);
	assert_null(dc.dc_audit_log);
	daemon_conf_release(&dc);
}

static void
test_daemon_errors(void **state)
{
	struct daemon_conf	dc;
	char			sock[256], err[512];

	(void)state;
	dload_fails("", "d.conf: set master_key_file or master_key_credential");
	dload_fails("socket /tmp/s\n",
	    "d.conf: set master_key_file or master_key_credential");
	dload_fails("master_key_file /k\nmaster_key_credential wfvault\n",
	    "d.conf: set only one of master_key_file and "
	    "master_key_credential");
	dload_fails("master_key_file /k\nmaster_key_file /k\n",
	    "d.conf:2: 'master_key_file' is given twice (first on line 1)");
	dload_fails("master_key_file k\n",
	    "d.conf:1: master_key_file: must be an absolute path "
	    "(starting with '/')");
	dload_fails("master_key_credential ../etc/x\n",
	    "d.conf:1: master_key_credential: not a credential name "
	    "(as in LoadCredentialEncrypted=NAME:...)");
	dload_fails("master_key_file /k\nmax_connections 0\n",
	    "d.conf:2: max_connections: 0 is out of range "
	    "(1\xe2\x80\x93" "65536)");
	dload_fails("master_key_file /k\nmax_connections -5\n",
	    "d.conf:2: max_connections: '-5' is not a decimal number");
	dload_fails("master_key_file /k\nmap_size 512K\n",
	    "d.conf:2: map_size: 512K is out of range (1M\xe2\x80\x93" "1T)");
	dload_fails("master_key_file /k\nmap_size 99999999999999999999\n",
	    "d.conf:2: map_size: 99999999999999999999 is out of range "
	    "(1M\xe2\x80\x93" "1T)");
	dload_fails("master_key_file /k\nmax_message_bytes 65M\n",
	    "d.conf:2: max_message_bytes: 65M is out of range "
	    "(4K\xe2\x80\x93" "64M)");
	dload_fails("master_key_file /k\nidle_timeout 0\n",
	    "d.conf:2: idle_timeout: 0 is out of range (1s\xe2\x80\x93" "1d)");
	dload_fails("master_key_file /k\nmessage_timeout 2h\n",
	    "d.conf:2: message_timeout: 2h is out of range "
	    "(1s\xe2\x80\x93" "1h)");
	dload_fails("master_key_file /k\nfeed_retain 0\n",
	    "d.conf:2: feed_retain: 0 is out of range "
	    "(1\xe2\x80\x93" "1000000000)");
	dload_fails("master_key_file /k\nkeep_versions 1001\n",
	    "d.conf:2: keep_versions: 1001 is out of range "
	    "(1\xe2\x80\x93" "1000)");
	dload_fails("master_key_file /k\nsocket_mode 1777\n",
	    "d.conf:2: socket_mode: 1777 is out of range "
	    "(0000\xe2\x80\x93" "0777)");
	dload_fails("master_key_file /k\nsocket run/s\n",
	    "d.conf:2: socket: must be an absolute path (starting with '/')");
	dload_fails("master_key_file /k\naudit_log audit.log\n",
	    "d.conf:2: audit_log: must be an absolute path or none");
	dload_fails("master_key_file /k\nsocket_group a b\n",
	    "d.conf:2: socket_group: not a group name (one word, or none)");
	dload_fails("master_key_file /k\nmax_config_bytes 1M\n",
	    "d.conf: max_config_bytes (1M) must be smaller than "
	    "max_message_bytes (1M)");
	dload_fails("master_key_file /k\nmax_message_bytes 32M\n"
	    "max_config_bytes 16M\nmax_output_bytes 8M\n",
	    "d.conf: max_config_bytes (16M) must be smaller than "
	    "max_output_bytes (8M)");
	dload_fails("master_key_file /k\nlisten 1\n",
	    "d.conf:2: unknown keyword 'listen'");
	/* A deleted account's rule is skipped (warned), not fatal. */
	assert_int_equal(dload(&dc, "master_key_file /k\n"
	    "allow uid:1 read acme\n"
	    "allow user:no-such-user-wfvault read acme\n"
	    "allow group:no-such-group-wfvault admin *\n", err,
	    sizeof(err)), 0);
	assert_int_equal(dc.dc_acl.acl_nrules, 1);
	assert_int_equal(dc.dc_acl.acl_rules[0].ar_id, 1);
	daemon_conf_release(&dc);

	/* sun_path holds 107 bytes and the NUL. */
	memset(sock, 'a', sizeof(sock));
	memcpy(sock, "master_key_file /k\nsocket /", 27);
	sock[27 + 107] = '\0';
	dload_fails(sock,
	    "d.conf: socket path too long (108 bytes, at most 107)");
}

static void
test_daemon_socket_path_limit(void **state)
{
	struct daemon_conf	dc;
	char			text[256], err[512];

	(void)state;
	memset(text, 'a', sizeof(text));
	memcpy(text, "master_key_file /k\nsocket /", 27);
	text[27 + 106] = '\0';
	assert_int_equal(dload(&dc, text, err, sizeof(err)), 0);
	assert_int_equal(strlen(dc.dc_socket), 107);
	daemon_conf_release(&dc);
}

static void
test_daemon_load_file(void **state)
{
	struct daemon_conf	 dc;
	char			 dir[] = "/tmp/wfvault-test-dconf-XXXXXX";
	char			 path[PATH_MAX], err[512], want[PATH_MAX + 64];
	FILE			*f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/wfvaultd.conf", dir);
	assert_int_equal(daemon_conf_load(path, &dc, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);
	assert_null(dc.dc_socket);

	assert_non_null(f = fopen(path, "w"));
	fputs("data_dir /srv/v\nmaster_key_file /k\nkeep_versions 3\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(daemon_conf_load(path, &dc, err, sizeof(err)), 0);
	assert_string_equal(dc.dc_data_dir, "/srv/v");
	assert_int_equal(dc.dc_keep_versions, 3);
	daemon_conf_release(&dc);

	assert_non_null(f = fopen(path, "w"));
	fputs("data_dir /srv/v\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(daemon_conf_load(path, &dc, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: set master_key_file or "
	    "master_key_credential", path);
	assert_string_equal(err, want);
	unlink(path);
	rmdir(dir);
}

/* One "#keyword<TAB>value" line of the daemon's example config. */
static void
example_line(const char *line, void *arg)
{
	struct daemon_conf	 dc;
	char			 text[1200], err[512];

	(void)arg;
	if (strncmp(line + 1, "master_key_", 11) == 0)
		snprintf(text, sizeof(text), "%s", line + 1);
	else
		snprintf(text, sizeof(text), "master_key_file /k\n%s",
		    line + 1);
	if (dload(&dc, text, err, sizeof(err)) == 0) {
		daemon_conf_release(&dc);
	} else {
		if (strstr(err, "unknown user") == NULL &&
		    strstr(err, "unknown group") == NULL)
			fail_msg("example line %s: %s", line, err);
		assert_non_null(strstr(line, "allow"));
	}
}

/*
 * The example config loads, and every commented-out "#keyword value" line
 * in it is a keyword the daemon knows with a value it accepts (allow lines
 * may only fail on users and groups this machine does not have).
 */
static void
test_example_config(void **state)
{
	struct daemon_conf	 dc;
	char			 path[PATH_MAX], err[512];

	(void)state;
	test_source_path("config/wfvaultd.conf.example", path, sizeof(path));
	assert_int_equal(daemon_conf_load(path, &dc, err, sizeof(err)), 0);
	daemon_conf_release(&dc);
	/* Every keyword of the daemon appears, plus four allow examples. */
	assert_true(test_example_lines(path, example_line, NULL) >= 19);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_type),
		cmocka_unit_test(test_value_verbatim),
		cmocka_unit_test(test_line_numbers_and_keywords),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_long_line_and_nul),
		cmocka_unit_test(test_parse_file),
		cmocka_unit_test(test_daemon_defaults),
		cmocka_unit_test(test_daemon_all_keywords),
		cmocka_unit_test(test_daemon_errors),
		cmocka_unit_test(test_daemon_socket_path_limit),
		cmocka_unit_test(test_daemon_load_file),
		cmocka_unit_test(test_example_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
