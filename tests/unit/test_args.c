/*
 * Unit tests of rpc_args.c, the parameter checks of every method, called
 * as the daemon calls them, and of their agreement with proto.c's method
 * table (pm_tenant decides which access check rpc.c makes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wfvaultd.h"

/* The params of the last ta_check: a's strings borrow from them. */
static json_t	*ta_params;

/* Checks params (JSON text) for method; fills a and err. */
static int
ta_check(enum proto_method id, const char *text, struct rpc_args *a,
    char *err, size_t errlen)
{
	json_error_t	 je;

	json_decref(ta_params);
	ta_params = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	assert_non_null(ta_params);
	err[0] = '\0';
	return rpc_args_check(id, ta_params, a, err, errlen);
}

static int
ta_teardown(void **state)
{
	json_decref(ta_params);
	ta_params = NULL;
	return 0;
}

/* Params every method accepts, one example each. */
static const char *const ta_valid[PM__COUNT] = {
	[PM_HELLO] = "{}",
	[PM_PUT] = "{\"tenant\":\"acme\",\"fields\":{\"api_key\":\"x\"}}",
	[PM_GET] = "{\"tenant\":\"acme\"}",
	[PM_LIST] = "{}",
	[PM_DELETE] = "{\"tenant\":\"acme\"}",
	[PM_CHANGES] = "{\"since\":0}",
	[PM_SYNC_ACK] = "{\"target\":\"kv\",\"seq\":1}",
	[PM_WATCH] = "{\"since\":0}",
	[PM_STATUS] = "{}",
	[PM_SYNC_STATE] = "{\"target\":\"kv\"}",
	[PM_BACKUP] = "{}",
	[PM_ROTATE_MASTER_KEY] = "{}",
	[PM_ROTATE_TENANT_KEY] = "{\"tenant\":\"acme\"}",
	[PM_INTEGRATIONS] = "{}",
	[PM_TEST_RESULT] = "{\"tenant\":\"acme\",\"integration\":\"openai\","
	    "\"result\":\"pass\",\"status\":200,\"reason\":\"200 OK\","
	    "\"version\":1}",
	[PM_CHECK] = "{\"tenant\":\"acme\"}",
};

/*
 * pm_tenant is what rpc_allowed checks per tenant: every method marked so
 * must get a valid tenant id from its checker (or be refused), and no
 * other may, so the access decision never looks at a tenant the method
 * does not act on.
 */
static void
test_tenant_methods(void **state)
{
	const struct proto_method_info	*mi;
	struct rpc_args			 a;
	char				 err[256];
	int				 i;

	for (i = 0; i < PM__COUNT; i++) {
		mi = proto_method_info((enum proto_method)i);
		assert_non_null(ta_valid[i]);
		assert_int_equal(ta_check(mi->pm_id, ta_valid[i], &a, err,
		    sizeof(err)), 0);
		if (mi->pm_tenant) {
			assert_non_null(a.ra_tenant);
			assert_string_equal(a.ra_tenant, "acme");
			/* Without a tenant, or with a bad one: refused. */
			assert_int_equal(ta_check(mi->pm_id, "{}", &a, err,
			    sizeof(err)), -1);
			assert_non_null(strstr(err, "tenant"));
		} else
			assert_null(a.ra_tenant);
	}
	assert_int_equal(ta_check(PM_GET, "{\"tenant\":\"-x\"}", &a, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "must not start"));
	assert_int_equal(ta_check(PM_ROTATE_TENANT_KEY,
	    "{\"tenant\":\"a/b\"}", &a, err, sizeof(err)), -1);
}

static void
test_unknown_params(void **state)
{
	struct rpc_args	a;
	char		err[256];
	int		i;

	for (i = 0; i < PM__COUNT; i++) {
		assert_int_equal(ta_check((enum proto_method)i,
		    "{\"nonsense\":1}", &a, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "nonsense"));
	}
	assert_int_equal(ta_check(PM__COUNT, "{}", &a, err, sizeof(err)), -1);
}

static void
test_put(void **state)
{
	struct rpc_args	a;
	char		err[256];

	assert_int_equal(ta_check(PM_PUT, "{\"tenant\":\"acme\",\"fields\":"
	    "{\"a\":1,\"b\":null},\"cas\":3,\"replace\":true}", &a, err,
	    sizeof(err)), 0);
	assert_int_equal(json_object_size(a.ra_fields), 2);
	assert_true(a.ra_has_cas);
	assert_int_equal(a.ra_cas, 3);
	assert_true(a.ra_replace);

	assert_int_equal(ta_check(PM_PUT, "{\"tenant\":\"acme\"}", &a, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "missing param 'fields'");
	assert_int_equal(ta_check(PM_PUT, "{\"tenant\":\"acme\",\"fields\":"
	    "[]}", &a, err, sizeof(err)), -1);
	assert_string_equal(err, "param 'fields' must be an object");
	assert_int_equal(ta_check(PM_PUT, "{\"tenant\":\"acme\",\"fields\":"
	    "{}}", &a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is empty"));
	assert_int_equal(ta_check(PM_PUT, "{\"tenant\":\"acme\",\"fields\":"
	    "{\"Bad\":1}}", &a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "field name"));
	assert_int_equal(ta_check(PM_PUT, "{\"tenant\":\"acme\",\"fields\":"
	    "{\"a\":1},\"cas\":-1}", &a, err, sizeof(err)), -1);
	assert_int_equal(ta_check(PM_PUT, "{\"tenant\":\"acme\",\"fields\":"
	    "{\"a\":1},\"replace\":1}", &a, err, sizeof(err)), -1);
}

static void
test_get_delete(void **state)
{
	struct rpc_args	a;
	char		err[256];

	assert_int_equal(ta_check(PM_GET, "{\"tenant\":\"acme\",\"field\":"
	    "\"api_key\",\"version\":2}", &a, err, sizeof(err)), 0);
	assert_string_equal(a.ra_field, "api_key");
	assert_int_equal(a.ra_version, 2);
	/* Versions start at 1. */
	assert_int_equal(ta_check(PM_GET, "{\"tenant\":\"acme\",\"version\":"
	    "0}", &a, err, sizeof(err)), -1);
	assert_int_equal(ta_check(PM_GET, "{\"tenant\":\"acme\",\"field\":"
	    "\"9x\"}", &a, err, sizeof(err)), -1);

	assert_int_equal(ta_check(PM_DELETE, "{\"tenant\":\"acme\",\"purge\":"
	    "true}", &a, err, sizeof(err)), 0);
	assert_true(a.ra_purge);
	assert_int_equal(ta_check(PM_DELETE, "{\"tenant\":\"acme\",\"purge\":"
	    "true,\"field\":\"a\"}", &a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot go with 'field'"));
}

static void
test_list(void **state)
{
	struct rpc_args	a;
	char		err[256], text[512];

	assert_int_equal(ta_check(PM_LIST, "{}", &a, err, sizeof(err)), 0);
	assert_int_equal(a.ra_limit, 100);
	assert_null(a.ra_prefix);
	assert_int_equal(ta_check(PM_LIST, "{\"prefix\":\"\",\"limit\":1000,"
	    "\"cursor\":\"acme\"}", &a, err, sizeof(err)), 0);
	assert_string_equal(a.ra_prefix, "");
	assert_string_equal(a.ra_cursor, "acme");
	assert_int_equal(a.ra_limit, 1000);
	assert_int_equal(ta_check(PM_LIST, "{\"limit\":1001}", &a, err,
	    sizeof(err)), -1);
	assert_int_equal(ta_check(PM_LIST, "{\"limit\":0}", &a, err,
	    sizeof(err)), -1);

	/* The prefix rule is proto_prefix_valid's, as the CLI's is. */
	assert_int_equal(ta_check(PM_LIST, "{\"prefix\":\"b-\"}", &a, err,
	    sizeof(err)), 0);
	assert_int_equal(ta_check(PM_LIST, "{\"prefix\":\"a/\"}", &a, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "param 'prefix' may hold only letters, "
	    "digits, '.', '_' and '-'");
	snprintf(text, sizeof(text), "{\"prefix\":\"%0129d\"}", 0);
	assert_int_equal(ta_check(PM_LIST, text, &a, err, sizeof(err)), -1);
	assert_string_equal(err, "param 'prefix' is longer than a tenant id "
	    "can be");
	snprintf(text, sizeof(text), "{\"prefix\":\"%0128d\"}", 0);
	assert_int_equal(ta_check(PM_LIST, text, &a, err, sizeof(err)), 0);
	assert_int_equal(proto_prefix_valid("a b", "it", err, sizeof(err)),
	    -1);
	assert_string_equal(err, "it may hold only letters, digits, '.', '_' "
	    "and '-'");
}

static void
test_feed(void **state)
{
	struct rpc_args	a;
	char		err[256];

	assert_int_equal(ta_check(PM_CHANGES, "{}", &a, err, sizeof(err)), -1);
	assert_int_equal(ta_check(PM_CHANGES, "{\"since\":5}", &a, err,
	    sizeof(err)), 0);
	assert_int_equal(a.ra_since, 5);
	assert_int_equal(a.ra_limit, 1000);
	assert_int_equal(ta_check(PM_CHANGES, "{\"since\":5,\"limit\":10001}",
	    &a, err, sizeof(err)), -1);
	assert_int_equal(ta_check(PM_WATCH, "{}", &a, err, sizeof(err)), -1);

	assert_int_equal(ta_check(PM_SYNC_ACK, "{\"target\":\"kv\",\"seq\":"
	    "7}", &a, err, sizeof(err)), 0);
	assert_string_equal(a.ra_target, "kv");
	assert_int_equal(a.ra_seq, 7);
	assert_int_equal(ta_check(PM_SYNC_ACK, "{\"target\":\"kv\"}", &a, err,
	    sizeof(err)), -1);
	assert_int_equal(ta_check(PM_SYNC_STATE, "{\"target\":\"k v\"}", &a,
	    err, sizeof(err)), -1);
	assert_string_equal(err, "param 'target' must be 1-128 letters, "
	    "digits, '.', '_' or '-'");
}

/* test_result: every member required, each held to its shape. */
static void
test_test_result(void **state)
{
	static const char *const bad[] = {
		/* each lacks or spoils one member */
		"\"integration\":\"openai\",\"result\":\"pass\","
		    "\"status\":200,\"reason\":\"\"",
		"\"integration\":\"openai\",\"result\":\"pass\","
		    "\"reason\":\"\",\"version\":1",
		"\"integration\":\"\",\"result\":\"pass\",\"status\":200,"
		    "\"reason\":\"\",\"version\":1",
		"\"integration\":\"openai\",\"result\":\"skipped\","
		    "\"status\":200,\"reason\":\"\",\"version\":1",
		"\"integration\":\"openai\",\"result\":\"pass\","
		    "\"status\":99,\"reason\":\"\",\"version\":1",
		"\"integration\":\"openai\",\"result\":\"pass\","
		    "\"status\":600,\"reason\":\"\",\"version\":1",
		"\"integration\":\"openai\",\"result\":\"pass\","
		    "\"status\":\"200\",\"reason\":\"\",\"version\":1",
		"\"integration\":\"openai\",\"result\":\"pass\","
		    "\"status\":200,\"reason\":\"a\\nb\",\"version\":1",
		"\"integration\":\"openai\",\"result\":\"pass\","
		    "\"status\":200,\"reason\":\"caf\\u00e9\",\"version\":1",
		"\"integration\":\"openai\",\"result\":\"pass\","
		    "\"status\":200,\"reason\":\"\",\"version\":0",
		"\"integration\":\"openai\",\"result\":\"pass\","
		    "\"status\":200,\"reason\":7,\"version\":1",
	};
	struct rpc_args	a;
	char		err[256], text[1024], reason[RPC_REASON_MAX + 2];
	size_t		i;

	assert_int_equal(ta_check(PM_TEST_RESULT, "{\"tenant\":\"acme\","
	    "\"integration\":\"openai\",\"result\":\"fail\",\"status\":null,"
	    "\"reason\":\"connection refused\",\"version\":4}", &a, err,
	    sizeof(err)), 0);
	assert_string_equal(a.ra_integration, "openai");
	assert_string_equal(a.ra_result, "fail");
	assert_string_equal(a.ra_reason, "connection refused");
	assert_int_equal(a.ra_has_status, 0);
	assert_int_equal(a.ra_version, 4);
	assert_int_equal(ta_check(PM_TEST_RESULT, ta_valid[PM_TEST_RESULT], &a,
	    err, sizeof(err)), 0);
	assert_int_equal(a.ra_has_status, 1);
	assert_int_equal(a.ra_status, 200);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "{\"tenant\":\"acme\",%s}", bad[i]);
		assert_int_equal(ta_check(PM_TEST_RESULT, text, &a, err,
		    sizeof(err)), -1);
		assert_null(a.ra_tenant);
	}
	/* 160 bytes pass, 161 do not. */
	memset(reason, 'r', sizeof(reason));
	reason[RPC_REASON_MAX] = '\0';
	snprintf(text, sizeof(text), "{\"tenant\":\"acme\",\"integration\":"
	    "\"openai\",\"result\":\"pass\",\"status\":200,\"reason\":\"%s\","
	    "\"version\":1}", reason);
	assert_int_equal(ta_check(PM_TEST_RESULT, text, &a, err,
	    sizeof(err)), 0);
	reason[RPC_REASON_MAX] = 'r';
	reason[RPC_REASON_MAX + 1] = '\0';
	snprintf(text, sizeof(text), "{\"tenant\":\"acme\",\"integration\":"
	    "\"openai\",\"result\":\"pass\",\"status\":200,\"reason\":\"%s\","
	    "\"version\":1}", reason);
	assert_int_equal(ta_check(PM_TEST_RESULT, text, &a, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "reason"));
}

static void
test_backup(void **state)
{
	struct rpc_args	a;
	char		err[256];

	assert_int_equal(ta_check(PM_BACKUP, "{\"name\":\"nightly.mdb\"}", &a,
	    err, sizeof(err)), 0);
	assert_string_equal(a.ra_name, "nightly.mdb");
	assert_int_equal(ta_check(PM_BACKUP, "{\"name\":\"../x\"}", &a, err,
	    sizeof(err)), -1);
	assert_int_equal(ta_check(PM_BACKUP, "{\"name\":\".hidden\"}", &a, err,
	    sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tenant_methods),
		cmocka_unit_test(test_unknown_params),
		cmocka_unit_test(test_put),
		cmocka_unit_test(test_get_delete),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_feed),
		cmocka_unit_test(test_backup),
		cmocka_unit_test(test_test_result),
	};

	return cmocka_run_group_tests(tests, NULL, ta_teardown);
}
