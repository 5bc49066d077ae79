/*
 * Unit tests of the audit log (daemon/audit.c): JSON lines, file mode,
 * no values, reopening for rotation, refusing symlinks, counting failures.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "wfvaultd.h"

struct tdir {
	char	td_dir[64];
	char	td_log[PATH_MAX];
};

static int
setup_dir(void **state)
{
	struct tdir	*td;

	if ((td = calloc(1, sizeof(*td))) == NULL)
		return -1;
	snprintf(td->td_dir, sizeof(td->td_dir), "/tmp/wfvault-test-audit-XXXXXX");
	if (mkdtemp(td->td_dir) == NULL) {
		free(td);
		return -1;
	}
	snprintf(td->td_log, sizeof(td->td_log), "%s/audit.log", td->td_dir);
	*state = td;
	return 0;
}

static int
teardown_dir(void **state)
{
	struct tdir	*td = *state;
	char		 cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", td->td_dir);
	if (system(cmd) != 0)
		return -1;
	free(td);
	return 0;
}

/* Reads path's lines as JSON objects into a new array. */
static json_t *
read_lines(const char *path)
{
	json_t		*arr, *obj;
	json_error_t	 jerr;
	FILE		*f;
	char		 line[4096];
	size_t		 n;

	arr = json_array();
	assert_non_null(arr);
	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		n = strlen(line);
		assert_true(n > 0 && line[n - 1] == '\n');
		obj = json_loads(line, 0, &jerr);
		if (obj == NULL)
			fail_msg("not JSON: %s (%s)", line, jerr.text);
		assert_true(json_is_object(obj));
		json_array_append_new(arr, obj);
	}
	fclose(f);
	return arr;
}

static void
test_lines(void **state)
{
	struct tdir	*td = *state;
	struct audit	*a;
	struct peer	 p = PEER_INIT;
	struct stat	 st;
	json_t		*fields, *lines, *l;
	const char	*t;
	char		 err[256];

	p.p_uid = 1000;
	p.p_gid = 1001;
	p.p_pid = 4321;
	assert_int_equal(audit_open(&a, td->td_log, err, sizeof(err)), 0);
	assert_int_equal(stat(td->td_log, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	fields = json_pack("[ss]", "openai_api_key", "stripe_key");
	assert_non_null(fields);
	audit_log(a, &p, "put", "acme", fields, "ok", 7);
	audit_log(a, &p, "status", NULL, NULL, "permission_denied", 0);
	/* Only names get through, even if a caller passes something else. */
	json_array_append_new(fields, json_pack("{ss}", "value", "sk-secret"));
	json_array_append_new(fields, json_integer(7));
	audit_log(a, &p, "get", "acme", fields, "ok", 0);
	json_decref(fields);
	assert_int_equal(audit_failures(a, NULL), 0);
	audit_close(a);

	lines = read_lines(td->td_log);
	assert_int_equal(json_array_size(lines), 3);

	l = json_array_get(lines, 0);
	t = json_string_value(json_object_get(l, "time"));
	assert_non_null(t);
	/* 2026-11-25T17:09:45.123Z */
	assert_int_equal(strlen(t), 24);
	assert_int_equal(t[4], '-');
	assert_int_equal(t[10], 'T');
	assert_int_equal(t[19], '.');
	assert_int_equal(t[23], 'Z');
	assert_int_equal(json_integer_value(json_object_get(l, "uid")), 1000);
	assert_int_equal(json_integer_value(json_object_get(l, "gid")), 1001);
	assert_int_equal(json_integer_value(json_object_get(l, "pid")), 4321);
	assert_string_equal(json_string_value(json_object_get(l, "method")),
	    "put");
	assert_string_equal(json_string_value(json_object_get(l, "tenant")),
	    "acme");
	assert_string_equal(json_string_value(json_object_get(l, "outcome")),
	    "ok");
	assert_int_equal(json_array_size(json_object_get(l, "fields")), 2);
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(l, "fields"), 1)), "stripe_key");
	assert_null(json_object_get(l, "value"));
	/* The version the write made. */
	assert_int_equal(json_integer_value(json_object_get(l, "version")), 7);
	assert_int_equal(json_object_size(l), 9);

	l = json_array_get(lines, 1);
	assert_null(json_object_get(l, "tenant"));
	assert_null(json_object_get(l, "fields"));
	assert_null(json_object_get(l, "value"));
	assert_string_equal(json_string_value(json_object_get(l, "outcome")),
	    "permission_denied");
	assert_int_equal(json_object_size(l), 6);

	l = json_array_get(lines, 2);
	assert_int_equal(json_array_size(json_object_get(l, "fields")), 2);
	json_decref(lines);

	/* Reopening appends; it never truncates. */
	assert_int_equal(audit_open(&a, td->td_log, err, sizeof(err)), 0);
	audit_log(a, &p, "hello", NULL, NULL, "ok", 0);
	audit_close(a);
	lines = read_lines(td->td_log);
	assert_int_equal(json_array_size(lines), 4);
	json_decref(lines);
}

/*
 * Denials of one uid within an interval: the first few are written in full,
 * the rest counted into one line that audit_close writes; another uid has
 * its own count.  (Fast enough to stay within one interval.)
 */
static void
test_denials_coalesced(void **state)
{
	struct tdir	*td = *state;
	struct audit	*a;
	struct peer	 p = PEER_INIT, q = PEER_INIT;
	json_t		*lines, *l;
	json_int_t	 total = 0, full = 0;
	char		 err[256];
	size_t		 i;
	int		 rc, written = 0;

	p.p_uid = 4260;
	p.p_gid = 4260;
	p.p_pid = 11;
	q.p_uid = 4261;
	q.p_gid = 4261;
	q.p_pid = 12;
	assert_int_equal(audit_open(&a, td->td_log, err, sizeof(err)), 0);
	for (i = 0; i < 1000; i++) {
		rc = audit_limited(a, &p, "get", "acme", NULL,
		    PROTO_E_DENIED);
		written += rc;
	}
	assert_int_equal(audit_limited(a, &q, "get", "beta", NULL,
	    PROTO_E_DENIED), 1);
	/* A burst per interval: a second boundary may fall in the loop. */
	assert_true(written >= AUDIT_BURST &&
	    written <= 2 * AUDIT_BURST);
	/* Nothing is lost at exit: audit_close writes what is counted. */
	audit_close(a);

	lines = read_lines(td->td_log);
	json_array_foreach(lines, i, l) {
		if (json_integer_value(json_object_get(l, "uid")) != 4260)
			continue;
		assert_string_equal(json_string_value(json_object_get(l,
		    "outcome")), "permission_denied");
		if (json_object_get(l, "count") != NULL) {
			assert_non_null(json_object_get(l, "since"));
			total += json_integer_value(json_object_get(l,
			    "count"));
		} else {
			assert_string_equal(json_string_value(
			    json_object_get(l, "method")), "get");
			full++;
			total++;
		}
	}
	assert_int_equal(full, written);
	assert_int_equal(total, 1000);
	assert_true(json_array_size(lines) <= 2 * AUDIT_BURST + 3);
	json_decref(lines);
}

/*
 * Every failure and hello of one uid shares the burst; past it each
 * outcome is counted on its own line and the counts add up exactly.  A
 * successful data operation is still written in full in between.
 */
static void
test_failures_coalesced(void **state)
{
	static const int codes[] = { PROTO_E_PARSE, PROTO_E_METHOD,
	    PROTO_E_PARAMS, PROTO_E_NOT_FOUND, 0 };
	struct tdir	*td = *state;
	struct audit	*a;
	struct peer	 p = PEER_INIT;
	json_t		*lines, *l;
	json_int_t	 got[5] = { 0 };
	const char	*outcome, *method;
	char		 err[256];
	size_t		 i, j;
	int		 written = 0, oks = 0;

	p.p_uid = 4260;
	p.p_gid = 4260;
	p.p_pid = 11;
	assert_int_equal(audit_open(&a, td->td_log, err, sizeof(err)), 0);
	for (i = 0; i < 1000; i++) {
		for (j = 0; j < 5; j++)
			written += audit_limited(a, &p, codes[j] == 0 ?
			    "hello" : "invalid", NULL, NULL, codes[j]);
		if (i == 500)
			audit_log(a, &p, "get", "acme", NULL, "ok", 0);
	}
	/* A burst per interval: a second boundary may fall in the loop. */
	assert_true(written >= AUDIT_BURST && written <= 2 * AUDIT_BURST);
	audit_close(a);

	lines = read_lines(td->td_log);
	assert_true(json_array_size(lines) <= 2 * AUDIT_BURST + 11);
	json_array_foreach(lines, i, l) {
		assert_int_equal(json_integer_value(json_object_get(l, "uid")),
		    4260);
		outcome = json_string_value(json_object_get(l, "outcome"));
		method = json_string_value(json_object_get(l, "method"));
		assert_non_null(outcome);
		if (method != NULL && strcmp(method, "get") == 0) {
			oks++;
			continue;
		}
		for (j = 0; j < 5; j++)
			if (strcmp(outcome, codes[j] == 0 ? "ok" :
			    proto_err_kind(codes[j])) == 0)
				break;
		assert_true(j < 5);
		if (codes[j] == 0)
			assert_string_equal(method, "hello");
		if (json_object_get(l, "count") != NULL) {
			assert_non_null(json_object_get(l, "since"));
			got[j] += json_integer_value(json_object_get(l,
			    "count"));
		} else
			got[j]++;
	}
	assert_int_equal(oks, 1);
	for (j = 0; j < 5; j++)
		assert_int_equal(got[j], 1000);
	json_decref(lines);
}

static void
test_no_secret_in_file(void **state)
{
	struct tdir	*td = *state;
	struct audit	*a;
	struct peer	 p = PEER_INIT;
	json_t		*fields;
	char		 err[256], buf[4096];
	FILE		*f;
	size_t		 n;

	p.p_uid = 1;
	p.p_gid = 1;
	assert_int_equal(audit_open(&a, td->td_log, err, sizeof(err)), 0);
	fields = json_pack("[s{ss}]", "api_key", "api_key", "sk-live-SECRET");
	assert_non_null(fields);
	audit_log(a, &p, "put", "acme", fields, "ok", 0);
	json_decref(fields);
	audit_close(a);
	assert_non_null(f = fopen(td->td_log, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_true(n > 0);
	assert_null(strstr(buf, "SECRET"));
	assert_non_null(strstr(buf, "\"fields\":[\"api_key\"]"));
}

static void
test_disabled(void **state)
{
	struct audit	*a = NULL;
	struct peer	 p = PEER_INIT;
	char		 err[256];

	(void)state;
	assert_int_equal(audit_open(&a, NULL, err, sizeof(err)), 0);
	assert_non_null(a);
	audit_log(a, &p, "get", "acme", NULL, "ok", 0);
	assert_int_equal(audit_reopen(a, err, sizeof(err)), 0);
	assert_int_equal(audit_failures(a, NULL), 0);
	audit_close(a);
	audit_close(NULL);
}

static void
test_reopen_rotation(void **state)
{
	struct tdir	*td = *state;
	struct audit	*a;
	struct peer	 p = PEER_INIT;
	char		 err[256], rotated[PATH_MAX + 8];
	json_t		*lines;

	assert_int_equal(audit_open(&a, td->td_log, err, sizeof(err)), 0);
	audit_log(a, &p, "get", "one", NULL, "ok", 0);
	snprintf(rotated, sizeof(rotated), "%s.1", td->td_log);
	assert_int_equal(rename(td->td_log, rotated), 0);
	/* Until the reopen the old file still gets the lines. */
	audit_log(a, &p, "get", "two", NULL, "ok", 0);
	assert_int_equal(audit_reopen(a, err, sizeof(err)), 0);
	audit_log(a, &p, "get", "three", NULL, "ok", 0);

	lines = read_lines(rotated);
	assert_int_equal(json_array_size(lines), 2);
	json_decref(lines);
	lines = read_lines(td->td_log);
	assert_int_equal(json_array_size(lines), 1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(lines, 0), "tenant")), "three");
	json_decref(lines);

	/* A failed reopen keeps the old file. */
	assert_int_equal(unlink(td->td_log), 0);
	assert_int_equal(mkdir(td->td_log, 0700), 0);
	assert_int_equal(audit_reopen(a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, td->td_log));
	audit_log(a, &p, "get", "four", NULL, "ok", 0);
	assert_int_equal(audit_failures(a, NULL), 0);
	audit_close(a);
	assert_int_equal(rmdir(td->td_log), 0);
}

static void
test_refuses_symlink_and_nonfile(void **state)
{
	struct tdir	*td = *state;
	struct audit	*a = NULL;
	char		 err[256], target[PATH_MAX + 8];
	struct stat	 st;

	snprintf(target, sizeof(target), "%s.target", td->td_log);
	assert_int_equal(symlink(target, td->td_log), 0);
	assert_int_equal(audit_open(&a, td->td_log, err, sizeof(err)), -1);
	assert_null(a);
	assert_non_null(strstr(err, td->td_log));
	/* Nothing was created behind the link. */
	assert_int_equal(lstat(target, &st), -1);
	assert_int_equal(unlink(td->td_log), 0);

	assert_int_equal(mkfifo(td->td_log, 0600), 0);
	assert_int_equal(audit_open(&a, td->td_log, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(unlink(td->td_log), 0);

	assert_int_equal(audit_open(&a, "/nonexistent-dir-wfvault/a.log", err,
	    sizeof(err)), -1);
	assert_string_equal(err, "audit log /nonexistent-dir-wfvault/a.log: "
	    "No such file or directory");
}

/* A full disk (here: a file size limit) loses lines but never fails. */
static void
test_failures_counted(void **state)
{
	struct tdir	*td = *state;
	struct audit	*a;
	struct peer	 p = PEER_INIT;
	struct rlimit	 old, small;
	struct stat	 st;
	char		 err[256];
	int		 last = 0;
	void		(*oldsig)(int);

	assert_int_equal(audit_open(&a, td->td_log, err, sizeof(err)), 0);
	audit_log(a, &p, "get", "one", NULL, "ok", 0);
	assert_int_equal(stat(td->td_log, &st), 0);

	oldsig = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = (rlim_t)st.st_size;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	audit_log(a, &p, "get", "two", NULL, "ok", 0);
	audit_log(a, &p, "get", "three", NULL, "ok", 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, oldsig);

	assert_int_equal(audit_failures(a, &last), 2);
	assert_int_equal(last, EFBIG);
	audit_log(a, &p, "get", "four", NULL, "ok", 0);
	assert_int_equal(audit_failures(a, NULL), 2);
	audit_close(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lines, setup_dir,
		    teardown_dir),
		cmocka_unit_test_setup_teardown(test_no_secret_in_file,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_denials_coalesced,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_failures_coalesced,
		    setup_dir, teardown_dir),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test_setup_teardown(test_reopen_rotation,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_refuses_symlink_and_nonfile,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_failures_counted,
		    setup_dir, teardown_dir),
	};

	/* Files are created 0600 by the code, not by a lucky umask. */
	umask(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
