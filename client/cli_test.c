/*
 * wfvault test: runs the catalog's live tests for a tenant.  The request
 * itself is made by wfvault-test, a helper program that links libcurl, so
 * that this CLI (and every other command's start-up) does not; the helper
 * gets the test and the field values on a pipe, never in argv.  Each
 * outcome is recorded in wfvaultd (test_result) for wfvault check.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "wfvault.h"

#ifndef WFVAULT_LIBEXECDIR
#define WFVAULT_LIBEXECDIR	"/usr/local/libexec/wfvault"
#endif
#define TEST_HELPER		"wfvault-test"
#define TEST_CONNECT_TIMEOUT	10	/* seconds */
#define TEST_TIMEOUT		20
#define TEST_TIMEOUT_MAX	600
#define TEST_ANSWER_MAX		4096
#define TEST_JSON_FLAGS		(JSON_INDENT(2) | JSON_SORT_KEYS)
/* The longest reason test_result takes (docs/protocol.md). */
#define TEST_REASON_MAX		160

/*
 * The helper: $WFVAULT_TEST_HELPER, else wfvault-test next to this
 * program (a build tree), else in ../libexec/wfvault from it (an install
 * under any PREFIX), else in the LIBEXECDIR this was built for.
 */
static int
test_helper_path(char *path, size_t len, struct cli_error *err)
{
	static const char *const rel[] = { "", "/../libexec/wfvault" };
	const char	*env;
	char		 self[PATH_MAX], *slash;
	ssize_t		 n;
	size_t		 i;

	if ((env = getenv("WFVAULT_TEST_HELPER")) != NULL && *env != '\0') {
		snprintf(path, len, "%s", env);
		return 0;
	}
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++)
				if ((size_t)snprintf(path, len, "%s%s/"
				    TEST_HELPER, self, rel[i]) < len &&
				    access(path, X_OK) == 0)
					return 0;
		}
	}
	snprintf(path, len, "%s/" TEST_HELPER, WFVAULT_LIBEXECDIR);
	if (access(path, X_OK) == 0)
		return 0;
	return cli_fail(err, CLI_EXIT_ERROR, "cannot find %s (looked next "
	    "to wfvault, in ../libexec/wfvault from it and in %s; "
	    "WFVAULT_TEST_HELPER names another)", TEST_HELPER,
	    WFVAULT_LIBEXECDIR);
}

/* WFVAULT_TEST_TIMEOUT seconds (1..600), for a request's whole time. */
static int
test_timeout(long *total, struct cli_error *err)
{
	const char	*env;
	char		*end;
	long		 n;

	*total = TEST_TIMEOUT;
	if ((env = getenv("WFVAULT_TEST_TIMEOUT")) == NULL || *env == '\0')
		return 0;
	errno = 0;
	n = strtol(env, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > TEST_TIMEOUT_MAX)
		return cli_fail(err, CLI_EXIT_USAGE, "WFVAULT_TEST_TIMEOUT is "
		    "a number of seconds, 1 to %d", TEST_TIMEOUT_MAX);
	*total = n;
	return 0;
}

/* Writes all of buf to fd; a helper that exits early is not our error. */
static void
test_write_all(int fd, const char *buf, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= n;
	}
}

/*
 * Runs the helper with job on its stdin; *answer is a new reference to
 * its outcome object.  The job's text is wiped once written.
 */
static int
test_spawn(const char *helper, json_t *job, json_t **answer,
    struct cli_error *err)
{
	int	 in[2] = { -1, -1 }, out[2] = { -1, -1 }, st, rv = -1;
	char	*text, buf[TEST_ANSWER_MAX];
	size_t	 len = 0, tlen;
	ssize_t	 n;
	pid_t	 pid;

	*answer = NULL;
	if ((text = json_dumps(job, JSON_COMPACT)) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	tlen = strlen(text);
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1) {
		cli_fail(err, CLI_EXIT_ERROR, "pipe: %s", strerror(errno));
		goto done;
	}
	if ((pid = fork()) == -1) {
		cli_fail(err, CLI_EXIT_ERROR, "fork: %s", strerror(errno));
		goto done;
	}
	if (pid == 0) {
		if (dup2(in[0], STDIN_FILENO) == -1 ||
		    dup2(out[1], STDOUT_FILENO) == -1)
			_exit(127);
		execl(helper, TEST_HELPER, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	/* The job is far below a pipe's buffer, so this cannot deadlock. */
	test_write_all(in[1], text, tlen);
	close(in[1]);
	in[1] = -1;
	while (len < sizeof(buf) - 1) {
		if ((n = read(out[0], buf + len, sizeof(buf) - 1 - len)) ==
		    -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n == 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && len == 0) {
		cli_fail(err, CLI_EXIT_ERROR, "cannot run %s", helper);
		goto done;
	}
	if ((*answer = json_loads(buf, 0, NULL)) == NULL ||
	    !json_is_object(*answer)) {
		json_decref(*answer);
		*answer = NULL;
		cli_fail(err, CLI_EXIT_ERROR, "%s failed (exit status %d)",
		    TEST_HELPER, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		goto done;
	}
	rv = 0;
done:
	if (in[0] != -1)
		close(in[0]);
	if (in[1] != -1)
		close(in[1]);
	if (out[0] != -1)
		close(out[0]);
	if (out[1] != -1)
		close(out[1]);
	proto_wipe_free(text);
	return rv;
}

/* The integration's field values the tenant holds; NULL if one is missing. */
static json_t *
test_fields_of(json_t *integ, json_t *tenant_fields, const char **missing)
{
	json_t		*fields, *f, *v;
	const char	*name;
	size_t		 i;

	if ((fields = json_object()) == NULL)
		return NULL;
	json_array_foreach(json_object_get(integ, "fields"), i, f) {
		name = json_string_value(json_object_get(f, "name"));
		if (name == NULL)
			continue;
		if (!json_is_string(v = json_object_get(tenant_fields,
		    name))) {
			*missing = name;
			json_decref(fields);
			return NULL;
		}
		json_object_set(fields, name, v);
	}
	return fields;
}

static json_t *
test_find(json_t *list, const char *id)
{
	json_t	*it;
	size_t	 i;

	json_array_foreach(list, i, it)
		if (strcmp(json_string_value(json_object_get(it, "id")) ?
		    json_string_value(json_object_get(it, "id")) : "", id) ==
		    0)
			return it;
	return NULL;
}

/* One integration's outcome, as {integration, result, status, reason}. */
static json_t *
test_one(const char *helper, json_t *integ, json_t *tenant_fields,
    long timeout, struct cli_error *err)
{
	json_t		*test, *fields, *job, *answer;
	const char	*id, *missing = NULL;
	char		 reason[160];

	id = json_string_value(json_object_get(integ, "id"));
	if ((test = json_object_get(integ, "test")) == NULL)
		return json_pack("{s:s,s:s,s:n,s:s}", "integration", id,
		    "result", "skipped", "status", "reason", "no live test");
	if ((fields = test_fields_of(integ, tenant_fields, &missing)) ==
	    NULL) {
		if (missing == NULL)
			return NULL;
		snprintf(reason, sizeof(reason), "the tenant has no field "
		    "'%s'", missing);
		return json_pack("{s:s,s:s,s:n,s:s}", "integration", id,
		    "result", "fail", "status", "reason", reason);
	}
	job = json_pack("{s:O,s:o,s:i,s:i}", "test", test, "fields", fields,
	    "connect_timeout", (int)(timeout < TEST_CONNECT_TIMEOUT ? timeout :
	    TEST_CONNECT_TIMEOUT), "timeout", (int)timeout);
	if (job == NULL) {
		cli_fail(err, CLI_EXIT_ERROR, "out of memory");
		return NULL;
	}
	if (test_spawn(helper, job, &answer, err) == -1) {
		json_decref(job);
		return NULL;
	}
	json_decref(job);
	if (json_object_set_new(answer, "integration", json_string(id)) == -1) {
		json_decref(answer);
		cli_fail(err, CLI_EXIT_ERROR, "out of memory");
		return NULL;
	}
	return answer;
}

/*
 * The integrations to test: those named in ids (an array of strings),
 * else every one with a test whose fields the tenant all has.  *out is a
 * new array of borrowed entries.
 */
static int
test_pick(const char *tenant, json_t *ids, json_t *list,
    json_t *tenant_fields, json_t **out, struct cli_error *err)
{
	json_t		*picked, *it, *f, *idv;
	const char	*id, *missing;
	size_t		 i;

	if ((*out = picked = json_array()) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	json_array_foreach(ids, i, idv) {
		id = json_string_value(idv);
		if (id == NULL || (it = test_find(list, id)) == NULL) {
			if (id != NULL && cli_id_echoable(id))
				return cli_fail(err, CLI_EXIT_USAGE, "no "
				    "integration '%s' in the catalog (see "
				    "'wfvault integrations')", id);
			return cli_fail(err, CLI_EXIT_USAGE, "no such "
			    "integration in the catalog (see 'wfvault "
			    "integrations')");
		}
		json_array_append(picked, it);
	}
	if (json_array_size(ids) > 0)
		return 0;
	json_array_foreach(list, i, it) {
		if (json_object_get(it, "test") == NULL)
			continue;
		missing = NULL;
		if ((f = test_fields_of(it, tenant_fields, &missing)) == NULL)
			continue;
		json_decref(f);
		json_array_append(picked, it);
	}
	if (json_array_size(picked) == 0)
		return cli_fail(err, CLI_EXIT_NOT_FOUND, "tenant '%s' holds "
		    "the fields of no integration with a live test; name the "
		    "integrations to test", tenant);
	return 0;
}

/*
 * Records r, a pass or a fail, as the outcome of testing version of
 * tenant (test_result).  The reason is made printable ASCII within the
 * daemon's limit; a status outside HTTP's range goes as null.
 */
static int
test_record(struct proto_client *c, const char *tenant, json_int_t version,
    json_t *r, struct cli_error *err)
{
	json_t		*status, *params, *res = NULL;
	const char	*src;
	char		 reason[TEST_REASON_MAX + 1];
	size_t		 i;

	src = json_string_value(json_object_get(r, "reason"));
	for (i = 0; src != NULL && src[i] != '\0' && i < TEST_REASON_MAX; i++)
		reason[i] = (src[i] >= 0x20 && src[i] <= 0x7e) ? src[i] : '?';
	reason[i] = '\0';
	status = json_object_get(r, "status");
	if (!json_is_integer(status) || json_integer_value(status) < 100 ||
	    json_integer_value(status) > 599)
		status = NULL;
	params = json_pack("{s:s,s:O,s:O,s:o,s:s,s:I}", "tenant", tenant,
	    "integration", json_object_get(r, "integration"), "result",
	    json_object_get(r, "result"), "status", status != NULL ?
	    json_incref(status) : json_null(), "reason", reason, "version",
	    version);
	if (params == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	if (conn_call(c, "test_result", params, &res, err) == -1)
		return -1;
	json_decref(res);
	return 0;
}

int
test_run(struct proto_client *c, const char *tenant, json_t *ids,
    json_t **results, struct cli_error *err)
{
	struct cli_error	 rerr;
	json_t			*cat = NULL, *got = NULL, *picked = NULL;
	json_t			*it, *r, *list, *tf;
	char			 helper[PATH_MAX];
	const char		*result;
	json_int_t		 version;
	long			 timeout;
	size_t			 i;
	int			 failed = 0, rv = -1, record = 1;

	*results = NULL;
	if (test_timeout(&timeout, err) == -1 ||
	    test_helper_path(helper, sizeof(helper), err) == -1)
		return -1;
	if (conn_call(c, "integrations", json_object(), &cat, err) == -1 ||
	    conn_call(c, "get", json_pack("{s:s}", "tenant", tenant), &got,
	    err) == -1)
		goto done;
	list = json_object_get(cat, "integrations");
	tf = json_object_get(got, "fields");
	version = json_integer_value(json_object_get(got, "version"));
	if (!json_is_array(list) || !json_is_object(tf) || version < 1) {
		cli_fail(err, CLI_EXIT_ERROR, "wfvaultd's reply has no "
		    "integrations, fields or version");
		goto done;
	}
	if (test_pick(tenant, ids, list, tf, &picked, err) == -1 ||
	    (*results = json_array()) == NULL)
		goto done;
	json_array_foreach(picked, i, it) {
		if ((r = test_one(helper, it, tf, timeout, err)) == NULL)
			goto done;
		json_array_append_new(*results, r);
		result = json_string_value(json_object_get(r, "result"));
		if (result != NULL && strcmp(result, "fail") == 0)
			failed++;
		else if (result == NULL || strcmp(result, "pass") != 0)
			continue;
		/*
		 * Not being able to record (no read permission, a daemon
		 * gone) changes nothing of the tests: said once, then left.
		 */
		if (record && test_record(c, tenant, version, r,
		    &rerr) == -1) {
			fprintf(stderr, "wfvault: warning: the live test "
			    "outcomes were not recorded: %s\n", rerr.ce_msg);
			record = 0;
		}
	}
	rv = failed;
done:
	if (rv == -1) {
		json_decref(*results);
		*results = NULL;
	}
	json_decref(picked);
	json_decref(got);	/* the values: wiped by the JSON allocator */
	json_decref(cat);
	return rv;
}

static int
test_print(json_t *r, struct cli_error *err)
{
	const char	*result, *reason;

	result = json_string_value(json_object_get(r, "result"));
	reason = json_string_value(json_object_get(r, "reason"));
	return out_printf(err, "%s: %s (%s)\n",
	    json_string_value(json_object_get(r, "integration")),
	    strcmp(result, "pass") == 0 ? "pass" :
	    strcmp(result, "fail") == 0 ? "FAIL" : "skipped",
	    reason != NULL ? reason : "");
}

int
cmd_test(struct cli_args *args, struct cli_error *err)
{
	struct proto_client	 c = PROTO_CLIENT_INIT;
	json_t			*ids = NULL, *results = NULL, *r;
	const char		*tenant = args->ca_operands[0];
	size_t			 i;
	int			 failed, n, rv = -1;

	if (cli_tenant_check(tenant, err) == -1)
		return -1;
	if ((ids = json_array()) == NULL)
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	for (n = 1; n < args->ca_noperands; n++)
		if (json_array_append_new(ids,
		    json_string(args->ca_operands[n])) == -1) {
			json_decref(ids);
			return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
		}
	if (conn_open(args, &c, err) == -1)
		goto done;
	if ((failed = test_run(&c, tenant, ids, &results, err)) == -1)
		goto done;
	proto_client_close(&c);
	if (args->ca_json) {
		if (out_json(results, TEST_JSON_FLAGS, err) == -1)
			goto done;
	} else
		json_array_foreach(results, i, r)
			if (test_print(r, err) == -1)
				goto done;
	if (failed > 0) {
		(void)out_flush(err);
		/* The lines above said which; exit 7 says that one did. */
		cli_fail(err, CLI_EXIT_TEST_FAILED, "%s", "");
		goto done;
	}
	rv = 0;
done:
	proto_client_close(&c);
	json_decref(results);
	json_decref(ids);
	return rv;
}
