/* Unit tests of proto/: names, framing, the envelope, tables and the client. */

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto.h"
#include "util.h"

#define ERRLEN	256

/* A string of n copies of c (caller frees). */
static char *
repeat(char c, size_t n)
{
	char	*s;

	s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* 1 if s is one line of printable ASCII. */
static int
printable_line(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* Names */

static void
test_tenant_valid(void **state)
{
	char	 err[ERRLEN];
	char	*s;

	(void)state;
	assert_int_equal(proto_tenant_valid("acme", err, sizeof(err)), 0);
	assert_int_equal(proto_tenant_valid("a", err, sizeof(err)), 0);
	assert_int_equal(proto_tenant_valid("Acme.Corp_2-eu", err,
	    sizeof(err)), 0);
	assert_int_equal(proto_tenant_valid("0start", err, sizeof(err)), 0);
	assert_int_equal(proto_tenant_valid("_under", err, sizeof(err)), 0);
	assert_int_equal(proto_tenant_valid("a.", err, sizeof(err)), 0);
	assert_int_equal(proto_tenant_valid("a-", err, sizeof(err)), 0);
	s = repeat('t', PROTO_TENANT_MAX);
	assert_int_equal(proto_tenant_valid(s, err, sizeof(err)), 0);
	free(s);
}

static void
test_tenant_invalid(void **state)
{
	char	 err[ERRLEN];
	char	*s;

	(void)state;
	assert_int_equal(proto_tenant_valid("", err, sizeof(err)), -1);
	assert_string_equal(err, "tenant id is empty");
	assert_int_equal(proto_tenant_valid(NULL, err, sizeof(err)), -1);

	s = repeat('t', PROTO_TENANT_MAX + 1);
	assert_int_equal(proto_tenant_valid(s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long (129 bytes"));
	assert_null(strstr(err, "ttttt"));
	free(s);

	assert_int_equal(proto_tenant_valid("bad/x", err, sizeof(err)), -1);
	assert_string_equal(err, "invalid tenant id 'bad/x': only letters, "
	    "digits, '.', '_' and '-' are allowed");
	assert_int_equal(proto_tenant_valid(".hidden", err, sizeof(err)), -1);
	assert_string_equal(err, "invalid tenant id '.hidden': it must not "
	    "start with '.' or '-'");
	assert_int_equal(proto_tenant_valid("-opt", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "must not start with"));
	assert_int_equal(proto_tenant_valid("a b", err, sizeof(err)), -1);
	assert_int_equal(proto_tenant_valid("a:b", err, sizeof(err)), -1);
	assert_int_equal(proto_tenant_valid("a*", err, sizeof(err)), -1);

	/* Non-printable names are never echoed. */
	assert_int_equal(proto_tenant_valid("a\x1b[31mb", err, sizeof(err)),
	    -1);
	assert_true(printable_line(err));
	assert_null(strstr(err, "[31m"));
	assert_int_equal(proto_tenant_valid("caf\xc3\xa9", err, sizeof(err)),
	    -1);
	assert_true(printable_line(err));
	assert_int_equal(proto_tenant_valid("a\nb", err, sizeof(err)), -1);
	assert_true(printable_line(err));

	/* A small buffer still gets a terminated message. */
	assert_int_equal(proto_tenant_valid("bad/x", err, 8), -1);
	assert_int_equal(strlen(err), 7);
}

static void
test_field_names(void **state)
{
	char	 err[ERRLEN];
	char	*s;

	(void)state;
	assert_int_equal(proto_field_valid("openai_api_key", err,
	    sizeof(err)), 0);
	assert_int_equal(proto_field_valid("a", err, sizeof(err)), 0);
	assert_int_equal(proto_field_valid("_", err, sizeof(err)), 0);
	assert_int_equal(proto_field_valid("_9", err, sizeof(err)), 0);
	assert_int_equal(proto_field_valid("k2", err, sizeof(err)), 0);
	s = repeat('f', PROTO_FIELD_MAX);
	assert_int_equal(proto_field_valid(s, err, sizeof(err)), 0);
	free(s);

	s = repeat('f', PROTO_FIELD_MAX + 1);
	assert_int_equal(proto_field_valid(s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long (65 bytes"));
	assert_null(strstr(err, "fffff"));
	free(s);
	assert_int_equal(proto_field_valid("", err, sizeof(err)), -1);
	assert_string_equal(err, "field name is empty");
	assert_int_equal(proto_field_valid(NULL, err, sizeof(err)), -1);
	assert_int_equal(proto_field_valid("ApiKey", err, sizeof(err)), -1);
	assert_string_equal(err, "invalid field name 'ApiKey': only "
	    "lowercase letters, digits and '_' are allowed");
	assert_int_equal(proto_field_valid("1key", err, sizeof(err)), -1);
	assert_string_equal(err, "invalid field name '1key': it must start "
	    "with a lowercase letter or '_'");
	assert_int_equal(proto_field_valid("a-b", err, sizeof(err)), -1);
	assert_int_equal(proto_field_valid("a.b", err, sizeof(err)), -1);
	assert_int_equal(proto_field_valid("a b", err, sizeof(err)), -1);
	assert_int_equal(proto_field_valid("\xff", err, sizeof(err)), -1);
	assert_true(printable_line(err));
	assert_null(strstr(err, "name '"));
}

/* Framing */

static void
test_framing(void **state)
{
	(void)state;
	assert_int_equal(proto_frame_find("abc\n", 4, 10), 3);
	assert_int_equal(proto_frame_find("\n", 1, 10), 0);
	assert_int_equal(proto_frame_find("ab\ncd\n", 6, 10), 2);
	assert_int_equal(proto_frame_find("abc", 3, 10), PROTO_FRAME_MORE);
	assert_int_equal(proto_frame_find("", 0, 10), PROTO_FRAME_MORE);
	assert_int_equal(proto_frame_find(NULL, 0, 10), PROTO_FRAME_MORE);

	/* The '\n' must come within max bytes. */
	assert_int_equal(proto_frame_find("abc\n", 4, 4), 3);
	assert_int_equal(proto_frame_find("abc", 3, 4), PROTO_FRAME_MORE);
	assert_int_equal(proto_frame_find("abcd", 4, 4),
	    PROTO_FRAME_TOO_LONG);
	assert_int_equal(proto_frame_find("abcd\n", 5, 4),
	    PROTO_FRAME_TOO_LONG);
	assert_int_equal(proto_frame_find("abcdefgh", 8, 4),
	    PROTO_FRAME_TOO_LONG);
	/* A later line does not matter once the first one is whole. */
	assert_int_equal(proto_frame_find("a\nbcdefgh", 9, 4), 1);
	assert_int_equal(proto_frame_find("x", 1, 0), PROTO_FRAME_TOO_LONG);
}

/* Requests */

static void
test_request_good(void **state)
{
	struct proto_request	 req = PROTO_REQUEST_INIT;
	char			 err[ERRLEN];
	const char		*line;

	(void)state;
	line = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"get\",\"params\":"
	    "{\"tenant\":\"acme\",\"field\":\"openai_api_key\"}}";
	assert_int_equal(proto_request_parse(line, strlen(line), &req, err,
	    sizeof(err)), 0);
	assert_non_null(req.pr_method);
	assert_int_equal(req.pr_method->pm_id, PM_GET);
	assert_string_equal(req.pr_method_name, "get");
	assert_true(json_is_integer(req.pr_id));
	assert_int_equal(json_integer_value(req.pr_id), 1);
	assert_true(json_is_object(req.pr_params));
	assert_string_equal(json_string_value(json_object_get(req.pr_params,
	    "tenant")), "acme");
	proto_request_release(&req);
	assert_null(req.pr_root);
	assert_null(req.pr_params);

	/* String id, no params, members in any order, blanks around. */
	line = " {\"method\":\"hello\",\"id\":\"abc\",\"jsonrpc\":\"2.0\"}\r";
	assert_int_equal(proto_request_parse(line, strlen(line), &req, err,
	    sizeof(err)), 0);
	assert_string_equal(json_string_value(req.pr_id), "abc");
	assert_int_equal(req.pr_method->pm_id, PM_HELLO);
	assert_true(json_is_object(req.pr_params));
	assert_int_equal(json_object_size(req.pr_params), 0);
	proto_request_release(&req);

	/* A notification has no id. */
	line = "{\"jsonrpc\":\"2.0\",\"method\":\"status\",\"params\":{}}";
	assert_int_equal(proto_request_parse(line, strlen(line), &req, err,
	    sizeof(err)), 0);
	assert_null(req.pr_id);
	assert_int_equal(req.pr_method->pm_id, PM_STATUS);
	proto_request_release(&req);

	/* Only len bytes are read: what follows the line is not part of it. */
	line = "{\"jsonrpc\":\"2.0\",\"id\":-5,\"method\":\"list\"}\ngarbage";
	assert_int_equal(proto_request_parse(line, strchr(line, '\n') - line,
	    &req, err, sizeof(err)), 0);
	assert_int_equal(json_integer_value(req.pr_id), -5);
	proto_request_release(&req);

	/* Values may be nested well below jansson's limit. */
	{
		char	*deep, *p;
		size_t	 n = 1000, len;

		len = strlen("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"put\","
		    "\"params\":{\"v\":") + 2 * n + 2;
		deep = malloc(len + 1);
		assert_non_null(deep);
		p = deep + sprintf(deep, "{\"jsonrpc\":\"2.0\",\"id\":1,"
		    "\"method\":\"put\",\"params\":{\"v\":");
		memset(p, '[', n);
		memset(p + n, ']', n);
		memcpy(p + 2 * n, "}}", 3);
		assert_int_equal(proto_request_parse(deep, strlen(deep), &req,
		    err, sizeof(err)), 0);
		proto_request_release(&req);
		free(deep);
	}
	/* Release is safe to repeat. */
	proto_request_release(&req);
}

struct reject_case {
	const char	*rc_line;
	int		 rc_code;
	int		 rc_id;		/* 0 none, 1 integer 7, 2 string "s" */
	const char	*rc_msg;	/* expected in the message */
};

static const struct reject_case reject_cases[] = {
	{ "", PROTO_E_PARSE, 0, "invalid JSON" },
	{ "not json", PROTO_E_PARSE, 0, "invalid JSON" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"hello\"", PROTO_E_PARSE,
	    0, "unexpected end" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"hello\"}x",
	    PROTO_E_PARSE, 0, "invalid JSON" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"hello\"} {}",
	    PROTO_E_PARSE, 0, "data after the JSON value" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"id\":8,\"method\":\"hello\"}",
	    PROTO_E_PARSE, 0, "duplicate object key" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"put\",\"params\":"
	    "{\"a\":1,\"a\":2}}", PROTO_E_PARSE, 0, "duplicate" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"get\",\"params\":"
	    "{\"tenant\":\"a\\u0000b\"}}", PROTO_E_PARSE, 0, "NUL" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":99999999999999999999999,\"method\":"
	    "\"hello\"}", PROTO_E_PARSE, 0, "number out of range" },
	{ "[{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"hello\"}]",
	    PROTO_E_INVALID_REQUEST, 0, "batches are not supported" },
	{ "[]", PROTO_E_INVALID_REQUEST, 0, "batches are not supported" },
	{ "1", PROTO_E_INVALID_REQUEST, 0, "must be a JSON object" },
	{ "\"hello\"", PROTO_E_INVALID_REQUEST, 0, "must be a JSON object" },
	{ "null", PROTO_E_INVALID_REQUEST, 0, "must be a JSON object" },
	{ "{\"id\":7,\"method\":\"hello\"}", PROTO_E_INVALID_REQUEST, 1,
	    "jsonrpc" },
	{ "{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"hello\"}",
	    PROTO_E_INVALID_REQUEST, 1, "jsonrpc" },
	{ "{\"jsonrpc\":2.0,\"id\":\"s\",\"method\":\"hello\"}",
	    PROTO_E_INVALID_REQUEST, 2, "jsonrpc" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"hello\"}",
	    PROTO_E_INVALID_REQUEST, 0, "id must be" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"hello\"}",
	    PROTO_E_INVALID_REQUEST, 0, "id must be" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"hello\"}",
	    PROTO_E_INVALID_REQUEST, 0, "id must be" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"hello\"}",
	    PROTO_E_INVALID_REQUEST, 0, "id must be" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"hello\",\"extra\":1}",
	    PROTO_E_INVALID_REQUEST, 1, "unknown member 'extra'" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"hello\","
	    "\"\\u001b[31m\":1}", PROTO_E_INVALID_REQUEST, 1,
	    "unknown member in" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7}", PROTO_E_INVALID_REQUEST, 1,
	    "no method" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":1}",
	    PROTO_E_INVALID_REQUEST, 2, "method must be a string" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":null}",
	    PROTO_E_INVALID_REQUEST, 1, "method must be a string" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"nope\"}",
	    PROTO_E_METHOD, 1, "unknown method 'nope'" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"GET\"}",
	    PROTO_E_METHOD, 1, "unknown method 'GET'" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"a\\nb\"}",
	    PROTO_E_METHOD, 1, "unknown method" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"get\",\"params\":[1]}",
	    PROTO_E_PARAMS, 1, "params must be an object" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"get\",\"params\":"
	    "\"x\"}", PROTO_E_PARAMS, 2, "params must be an object" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"get\",\"params\":null}",
	    PROTO_E_PARAMS, 1, "params must be an object" },
};

static void
test_request_rejects(void **state)
{
	struct proto_request	 req = PROTO_REQUEST_INIT;
	const struct reject_case *rc;
	char			 err[ERRLEN];
	size_t			 i;
	int			 r;

	(void)state;
	for (i = 0; i < sizeof(reject_cases) / sizeof(reject_cases[0]); i++) {
		rc = &reject_cases[i];
		err[0] = '\0';
		r = proto_request_parse(rc->rc_line, strlen(rc->rc_line), &req,
		    err, sizeof(err));
		if (r != rc->rc_code || strstr(err, rc->rc_msg) == NULL)
			fail_msg("case %zu <%s>: got %d '%s', want %d '%s'", i,
			    rc->rc_line, r, err, rc->rc_code, rc->rc_msg);
		assert_true(printable_line(err));
		switch (rc->rc_id) {
		case 0:
			assert_null(req.pr_id);
			break;
		case 1:
			assert_true(json_is_integer(req.pr_id));
			assert_int_equal(json_integer_value(req.pr_id), 7);
			break;
		case 2:
			assert_string_equal(json_string_value(req.pr_id), "s");
			break;
		}
		proto_request_release(&req);
	}
}

static void
test_request_long_method_not_echoed(void **state)
{
	struct proto_request	 req = PROTO_REQUEST_INIT;
	char			 err[ERRLEN], line[512];
	char			*name;

	(void)state;
	name = repeat('m', 200);
	snprintf(line, sizeof(line), "{\"jsonrpc\":\"2.0\",\"id\":1,"
	    "\"method\":\"%s\"}", name);
	assert_int_equal(proto_request_parse(line, strlen(line), &req, err,
	    sizeof(err)), PROTO_E_METHOD);
	assert_string_equal(err, "unknown method");
	proto_request_release(&req);
	free(name);
}

static void
test_request_nul_byte(void **state)
{
	struct proto_request	 req = PROTO_REQUEST_INIT;
	char			 err[ERRLEN];
	/* Without the memchr jansson would see only what precedes the NUL. */
	static const char	 line[] = "{\"jsonrpc\":\"2.0\",\"id\":1,"
	    "\"method\":\"hello\"}\0{\"x\":1}";

	(void)state;
	assert_int_equal(proto_request_parse(line, sizeof(line) - 1, &req,
	    err, sizeof(err)), PROTO_E_PARSE);
	assert_non_null(strstr(err, "NUL byte"));
	assert_null(req.pr_id);
	proto_request_release(&req);

	assert_int_equal(proto_request_parse("{\"a\":\"\0\"}", 9, &req, err,
	    sizeof(err)), PROTO_E_PARSE);
	proto_request_release(&req);
}

static void
test_request_deep_nesting(void **state)
{
	struct proto_request	 req = PROTO_REQUEST_INIT;
	char			 err[ERRLEN];
	char			*s;
	size_t			 n = 100000, i;

	(void)state;
	/* A parser that recursed per level would crash here (no time limit:
	 * a slow machine is not a bug; a hang meets run.sh's timeout). */
	s = repeat('[', n);
	assert_int_equal(proto_request_parse(s, n, &req, err, sizeof(err)),
	    PROTO_E_PARSE);
	assert_non_null(strstr(err, "nested too deeply"));
	proto_request_release(&req);
	free(s);

	/* Objects nest the same way. */
	s = malloc(n * 5 + 1);
	assert_non_null(s);
	for (i = 0; i < n; i++)
		memcpy(s + i * 5, "{\"a\":", 5);
	s[n * 5] = '\0';
	assert_int_equal(proto_request_parse(s, n * 5, &req, err,
	    sizeof(err)), PROTO_E_PARSE);
	assert_non_null(strstr(err, "nested too deeply"));
	proto_request_release(&req);
	free(s);
}

static void
test_request_invalid_utf8(void **state)
{
	static const char *const lines[] = {
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}",
		/* Overlong '/', a lone surrogate, a cut sequence. */
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xc0\xaf\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xed\xa0\x80\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xe2\x82\"}",
		("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"put\",\"params\":"
		    "{\"\xfe\":1}}"),
	};
	struct proto_request	 req = PROTO_REQUEST_INIT;
	char			 err[ERRLEN];
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		assert_int_equal(proto_request_parse(lines[i],
		    strlen(lines[i]), &req, err, sizeof(err)), PROTO_E_PARSE);
		assert_non_null(strstr(err, "invalid UTF-8"));
		proto_request_release(&req);
	}
}

/* jansson's own error text quotes the input; ours must not. */
static void
test_request_error_hides_input(void **state)
{
	struct proto_request	 req = PROTO_REQUEST_INIT;
	char			 err[ERRLEN];
	const char		*line;

	(void)state;
	line = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"put\",\"params\":"
	    "{\"fields\":{\"k\":\"sk-SECRETVALUE\\q\"}}}";
	assert_int_equal(proto_request_parse(line, strlen(line), &req, err,
	    sizeof(err)), PROTO_E_PARSE);
	assert_null(strstr(err, "SECRET"));
	assert_non_null(strstr(err, "at byte"));
	proto_request_release(&req);

	line = "{\"fields\":{\"k\":sk-SECRETVALUE}}";
	assert_int_equal(proto_request_parse(line, strlen(line), &req, err,
	    sizeof(err)), PROTO_E_PARSE);
	assert_null(strstr(err, "SECRET"));
	proto_request_release(&req);
}

/* Params */

static json_t *
params_of(const char *text)
{
	json_error_t	 je;
	json_t		*p;

	p = json_loads(text, 0, &je);
	assert_non_null(p);
	return p;
}

static void
test_params_check(void **state)
{
	static const char *const allowed[] = { "tenant", "field", NULL };
	char	 err[ERRLEN];
	json_t	*p;

	(void)state;
	p = params_of("{\"tenant\":\"a\",\"field\":\"b\"}");
	assert_int_equal(proto_params_check(p, allowed, err, sizeof(err)), 0);
	json_decref(p);

	p = params_of("{}");
	assert_int_equal(proto_params_check(p, allowed, err, sizeof(err)), 0);
	assert_int_equal(proto_params_check(p, NULL, err, sizeof(err)), 0);
	json_decref(p);

	p = params_of("{\"tenant\":\"a\",\"fields\":{}}");
	assert_int_equal(proto_params_check(p, allowed, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown param 'fields'");
	json_decref(p);

	p = params_of("{\"x\":1}");
	assert_int_equal(proto_params_check(p, NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown param 'x'");
	json_decref(p);

	p = params_of("{\"bad\\u0007key\":1}");
	assert_int_equal(proto_params_check(p, allowed, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown param");
	json_decref(p);

	p = params_of("[1]");
	assert_int_equal(proto_params_check(p, allowed, err, sizeof(err)), -1);
	assert_string_equal(err, "params must be an object");
	json_decref(p);
	assert_int_equal(proto_params_check(NULL, allowed, err, sizeof(err)),
	    -1);
}

static void
test_param_string(void **state)
{
	char		 err[ERRLEN];
	const char	*s;
	json_t		*p;

	(void)state;
	p = params_of("{\"tenant\":\"acme\",\"n\":1,\"z\":null,\"o\":{}}");
	assert_int_equal(proto_param_string(p, "tenant", 1, &s, err,
	    sizeof(err)), 0);
	assert_string_equal(s, "acme");
	assert_int_equal(proto_param_string(p, "field", 0, &s, err,
	    sizeof(err)), 0);
	assert_null(s);
	assert_int_equal(proto_param_string(p, "field", 1, &s, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "missing param 'field'");
	assert_int_equal(proto_param_string(p, "n", 0, &s, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "param 'n' must be a string");
	assert_int_equal(proto_param_string(p, "z", 0, &s, err, sizeof(err)),
	    -1);
	assert_int_equal(proto_param_string(p, "o", 1, &s, err, sizeof(err)),
	    -1);
	/* A string built with an embedded NUL would be cut in C. */
	assert_int_equal(json_object_set_new(p, "nul",
	    json_stringn("a\0b", 3)), 0);
	assert_int_equal(proto_param_string(p, "nul", 1, &s, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "NUL"));
	json_decref(p);
}

static void
test_param_uint(void **state)
{
	char		 err[ERRLEN];
	uint64_t	 v;
	int		 present;
	json_t		*p;

	(void)state;
	p = params_of("{\"limit\":10,\"zero\":0,\"neg\":-1,\"real\":5.0,"
	    "\"str\":\"5\",\"bool\":true,\"big\":9223372036854775807}");

	assert_int_equal(proto_param_uint(p, "limit", 1, 1, 1000, &v,
	    &present, err, sizeof(err)), 0);
	assert_int_equal(v, 10);
	assert_int_equal(present, 1);
	/* Bounds are inclusive. */
	assert_int_equal(proto_param_uint(p, "limit", 1, 10, 10, &v, NULL,
	    err, sizeof(err)), 0);
	assert_int_equal(proto_param_uint(p, "limit", 1, 11, 1000, &v,
	    &present, err, sizeof(err)), -1);
	assert_string_equal(err, "param 'limit' must be an integer from 11 "
	    "to 1000");
	assert_int_equal(proto_param_uint(p, "limit", 1, 1, 9, &v, &present,
	    err, sizeof(err)), -1);
	assert_int_equal(proto_param_uint(p, "zero", 1, 0, 5, &v, &present,
	    err, sizeof(err)), 0);
	assert_int_equal(v, 0);
	assert_int_equal(proto_param_uint(p, "zero", 1, 1, 5, &v, &present,
	    err, sizeof(err)), -1);

	assert_int_equal(proto_param_uint(p, "neg", 1, 0, UINT64_MAX, &v,
	    &present, err, sizeof(err)), -1);
	assert_string_equal(err, "param 'neg' must be a non-negative "
	    "integer");
	assert_int_equal(proto_param_uint(p, "real", 1, 0, UINT64_MAX, &v,
	    &present, err, sizeof(err)), -1);
	assert_int_equal(proto_param_uint(p, "str", 1, 0, UINT64_MAX, &v,
	    &present, err, sizeof(err)), -1);
	assert_int_equal(proto_param_uint(p, "bool", 1, 0, UINT64_MAX, &v,
	    &present, err, sizeof(err)), -1);
	assert_int_equal(proto_param_uint(p, "big", 1, 0, UINT64_MAX, &v,
	    &present, err, sizeof(err)), 0);
	assert_true(v == 9223372036854775807ULL);
	assert_int_equal(proto_param_uint(p, "big", 1, 1, UINT64_MAX, &v,
	    &present, err, sizeof(err)), 0);

	/* Absent: the default stays, present says so. */
	v = 100;
	present = -1;
	assert_int_equal(proto_param_uint(p, "cas", 0, 0, UINT64_MAX, &v,
	    &present, err, sizeof(err)), 0);
	assert_int_equal(v, 100);
	assert_int_equal(present, 0);
	assert_int_equal(proto_param_uint(p, "since", 1, 0, UINT64_MAX, &v,
	    &present, err, sizeof(err)), -1);
	assert_string_equal(err, "missing param 'since'");
	json_decref(p);
}

static void
test_param_bool(void **state)
{
	char	 err[ERRLEN];
	int	 b, present;
	json_t	*p;

	(void)state;
	p = params_of("{\"t\":true,\"f\":false,\"n\":1,\"s\":\"true\","
	    "\"z\":null}");
	assert_int_equal(proto_param_bool(p, "t", &b, &present, err,
	    sizeof(err)), 0);
	assert_int_equal(b, 1);
	assert_int_equal(present, 1);
	assert_int_equal(proto_param_bool(p, "f", &b, &present, err,
	    sizeof(err)), 0);
	assert_int_equal(b, 0);
	b = 7;
	assert_int_equal(proto_param_bool(p, "replace", &b, &present, err,
	    sizeof(err)), 0);
	assert_int_equal(present, 0);
	assert_int_equal(b, 7);
	assert_int_equal(proto_param_bool(p, "n", &b, &present, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "param 'n' must be true or false");
	assert_int_equal(proto_param_bool(p, "s", &b, NULL, err,
	    sizeof(err)), -1);
	assert_int_equal(proto_param_bool(p, "z", &b, NULL, err,
	    sizeof(err)), -1);
	json_decref(p);
}

/* Builders and encoding */

/* Encodes msg (stolen), checks it is one line equal to want. */
static void
check_encoded(json_t *msg, const char *want)
{
	char	*buf;
	size_t	 len;

	assert_non_null(msg);
	buf = proto_encode(msg, &len);
	assert_non_null(buf);
	assert_int_equal(len, strlen(want) + 1);
	assert_memory_equal(buf, want, len - 1);
	assert_int_equal(buf[len - 1], '\n');
	assert_ptr_equal(memchr(buf, '\n', len), buf + len - 1);
	proto_buf_free(buf, len);
	json_decref(msg);
}

static void
test_builders(void **state)
{
	json_t	*id, *id2;

	(void)state;
	id = json_integer(1);
	id2 = json_string("x");
	check_encoded(proto_reply_result(id,
	    json_pack("{s:s}", "tenant", "acme")),
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tenant\":\"acme\"}}");
	check_encoded(proto_reply_result(id2, json_object()),
	    "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{}}");
	/* The id is borrowed, not stolen. */
	assert_int_equal(id->refcount, 1);
	check_encoded(proto_reply_result(NULL, json_object()),
	    "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}");
	assert_null(proto_reply_result(id, NULL));

	check_encoded(proto_reply_error(id, PROTO_E_NOT_FOUND,
	    "tenant 'acme' has no field 'x'", NULL),
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32002,"
	    "\"message\":\"tenant 'acme' has no field 'x'\",\"data\":"
	    "{\"kind\":\"not_found\"}}}");
	check_encoded(proto_reply_error(NULL, PROTO_E_PARSE, NULL, NULL),
	    "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
	    "\"message\":\"parse_error\",\"data\":{\"kind\":\"parse_error\"}}}");
	/* data keeps its members and gains the kind. */
	check_encoded(proto_reply_error(id, PROTO_E_CONFLICT, "cas",
	    json_pack("{s:i}", "version", 4)),
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32003,"
	    "\"message\":\"cas\",\"data\":{\"version\":4,\"kind\":"
	    "\"conflict\"}}}");
	/* A message is always one printable line. */
	check_encoded(proto_reply_error(id, PROTO_E_INTERNAL,
	    "two\nlines\x1b[0m\xc3\xa9", NULL),
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32603,"
	    "\"message\":\"two lines?[0m??\",\"data\":{\"kind\":"
	    "\"internal_error\"}}}");

	/* An overlong message is cut, and says so. */
	{
		json_t		*msg;
		const char	*m;
		char		*lng;

		lng = repeat('m', 2000);
		msg = proto_reply_error(id, PROTO_E_INTERNAL, lng, NULL);
		assert_non_null(msg);
		m = json_string_value(json_object_get(json_object_get(msg,
		    "error"), "message"));
		assert_int_equal(strlen(m), 511);
		assert_string_equal(m + 508, "...");
		assert_int_equal(strspn(m, "m"), 508);
		json_decref(msg);
		free(lng);
	}

	check_encoded(proto_notification("changed",
	    json_pack("{s:i}", "seq", 5)),
	    "{\"jsonrpc\":\"2.0\",\"method\":\"changed\",\"params\":"
	    "{\"seq\":5}}");
	check_encoded(proto_notification("changed", NULL),
	    "{\"jsonrpc\":\"2.0\",\"method\":\"changed\",\"params\":{}}");
	json_decref(id);
	json_decref(id2);
}

static void
test_encode_round_trip(void **state)
{
	struct proto_request	 req = PROTO_REQUEST_INIT;
	char			 err[ERRLEN];
	json_t			*msg, *params;
	char			*buf;
	size_t			 len;

	(void)state;
	/* UTF-8 stays as it is; a newline inside a value is escaped. */
	params = json_pack("{s:s,s:{s:s,s:i,s:b}}", "tenant", "acme",
	    "fields", "k", "caf\xc3\xa9\nline2\t\"q\"", "n", 42, "t", 1);
	assert_non_null(params);
	msg = json_pack("{s:s,s:i,s:s,s:O}", "jsonrpc", "2.0", "id", 9,
	    "method", "put", "params", params);
	assert_non_null(msg);
	buf = proto_encode(msg, &len);
	assert_non_null(buf);
	assert_non_null(strstr(buf, "caf\xc3\xa9\\nline2\\t\\\"q\\\""));
	assert_ptr_equal(memchr(buf, '\n', len), buf + len - 1);
	assert_int_equal(proto_frame_find(buf, len, len), (ssize_t)len - 1);

	assert_int_equal(proto_request_parse(buf, len - 1, &req, err,
	    sizeof(err)), 0);
	assert_int_equal(req.pr_method->pm_id, PM_PUT);
	assert_int_equal(json_integer_value(req.pr_id), 9);
	assert_true(json_equal(req.pr_params, params));
	proto_request_release(&req);
	proto_buf_free(buf, len);
	json_decref(msg);
	json_decref(params);

	/* Only objects and arrays are messages. */
	msg = json_integer(1);
	assert_null(proto_encode(msg, &len));
	assert_int_equal(len, 0);
	json_decref(msg);
	assert_null(proto_encode(NULL, &len));
	proto_buf_free(NULL, 0);
}

/* Tables */

static void
test_err_kinds(void **state)
{
	static const struct {
		int		 code;
		const char	*kind;
	} kinds[] = {
		{ PROTO_E_PARSE, "parse_error" },
		{ PROTO_E_INVALID_REQUEST, "invalid_request" },
		{ PROTO_E_METHOD, "method_not_found" },
		{ PROTO_E_PARAMS, "invalid_params" },
		{ PROTO_E_INTERNAL, "internal_error" },
		{ PROTO_E_DENIED, "permission_denied" },
		{ PROTO_E_NOT_FOUND, "not_found" },
		{ PROTO_E_CONFLICT, "conflict" },
		{ PROTO_E_TOO_LARGE, "too_large" },
		{ PROTO_E_UNAVAILABLE, "unavailable" },
		{ PROTO_E_INTEGRITY, "integrity" },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		assert_string_equal(proto_err_kind(kinds[i].code),
		    kinds[i].kind);
		assert_int_equal(proto_err_code(kinds[i].kind), kinds[i].code);
	}
	assert_string_equal(proto_err_kind(-31999), "error");
	assert_string_equal(proto_err_kind(0), "error");
	assert_int_equal(proto_err_code("error"), 0);
	assert_int_equal(proto_err_code("NOT_FOUND"), 0);
	assert_int_equal(proto_err_code(""), 0);
	assert_int_equal(proto_err_code(NULL), 0);
}

static void
test_perms(void **state)
{
	char		 err[ERRLEN], buf[64];
	unsigned	 bits, b;

	(void)state;
	assert_string_equal(proto_perm_name(PERM_READ), "read");
	assert_string_equal(proto_perm_name(PERM_LIST), "list");
	assert_string_equal(proto_perm_name(PERM_WRITE), "write");
	assert_string_equal(proto_perm_name(PERM_SYNC), "sync");
	assert_string_equal(proto_perm_name(PERM_ADMIN), "admin");
	assert_null(proto_perm_name(PERM_READ | PERM_LIST));
	assert_null(proto_perm_name(0));

	assert_int_equal(proto_perms_parse("read,list", &bits, err,
	    sizeof(err)), 0);
	assert_int_equal(bits, PERM_READ | PERM_LIST);
	assert_int_equal(proto_perms_parse("admin", &bits, err, sizeof(err)),
	    0);
	assert_int_equal(bits, PERM_ADMIN);
	assert_int_equal(proto_perms_parse("sync,write,admin,list,read",
	    &bits, err, sizeof(err)), 0);
	assert_int_equal(bits, PERM_ALL);
	assert_int_equal(proto_perms_parse("read,read", &bits, err,
	    sizeof(err)), 0);
	assert_int_equal(bits, PERM_READ);

	bits = 77;
	assert_int_equal(proto_perms_parse("read,bogus", &bits, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown permission 'bogus'"));
	assert_int_equal(bits, 77);
	assert_int_equal(proto_perms_parse("READ", &bits, err, sizeof(err)),
	    -1);
	assert_int_equal(proto_perms_parse("", &bits, err, sizeof(err)), -1);
	assert_int_equal(proto_perms_parse("read,", &bits, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "empty permission"));
	assert_int_equal(proto_perms_parse(",read", &bits, err, sizeof(err)),
	    -1);
	assert_int_equal(proto_perms_parse("read list", &bits, err,
	    sizeof(err)), -1);
	assert_int_equal(proto_perms_parse("readx", &bits, err, sizeof(err)),
	    -1);
	assert_int_equal(proto_perms_parse("rea", &bits, err, sizeof(err)),
	    -1);
	assert_int_equal(proto_perms_parse("re\x01", &bits, err, sizeof(err)),
	    -1);
	assert_true(printable_line(err));

	assert_string_equal(proto_perms_format(PERM_READ | PERM_LIST, buf,
	    sizeof(buf)), "read,list");
	assert_string_equal(proto_perms_format(PERM_ALL, buf, sizeof(buf)),
	    "read,list,write,sync,admin");
	assert_string_equal(proto_perms_format(0, buf, sizeof(buf)), "");
	assert_string_equal(proto_perms_format(PERM_SYNC | 0x100, buf,
	    sizeof(buf)), "sync");
	/* A short buffer holds whole names only. */
	assert_string_equal(proto_perms_format(PERM_ALL, buf, 10),
	    "read,list");
	assert_string_equal(proto_perms_format(PERM_ALL, buf, 4), "");

	for (b = 1; b <= PERM_ALL; b++) {
		proto_perms_format(b, buf, sizeof(buf));
		assert_int_equal(proto_perms_parse(buf, &bits, err,
		    sizeof(err)), 0);
		assert_int_equal(bits, b);
	}
}

static void
test_methods(void **state)
{
	const struct proto_method_info	*mi;
	int				 i;

	(void)state;
	for (i = 0; i < PM__COUNT; i++) {
		mi = proto_method_info((enum proto_method)i);
		assert_non_null(mi);
		assert_int_equal(mi->pm_id, i);
		assert_ptr_equal(proto_method_lookup(mi->pm_name), mi);
	}
	assert_null(proto_method_info(PM__COUNT));
	assert_null(proto_method_lookup("HELLO"));
	assert_null(proto_method_lookup("changed"));
	assert_null(proto_method_lookup(""));
	assert_null(proto_method_lookup(NULL));

	mi = proto_method_lookup("hello");
	assert_int_equal(mi->pm_perm, 0);
	mi = proto_method_lookup("put");
	assert_int_equal(mi->pm_perm, PERM_WRITE);
	assert_true(mi->pm_tenant && mi->pm_write);
	mi = proto_method_lookup("get");
	assert_int_equal(mi->pm_perm, PERM_READ);
	assert_true(mi->pm_tenant && !mi->pm_write);
	mi = proto_method_lookup("delete");
	assert_true(mi->pm_tenant && mi->pm_write);
	mi = proto_method_lookup("changes");
	assert_int_equal(mi->pm_perm, PERM_SYNC);
	assert_false(mi->pm_tenant);
	mi = proto_method_lookup("sync_ack");
	assert_true(mi->pm_write);
	mi = proto_method_lookup("status");
	assert_int_equal(mi->pm_perm, PERM_ADMIN);
}

static void
test_json_init(void **state)
{
	json_malloc_t	 m;
	json_free_t	 f;
	json_t		*v;

	(void)state;
	/* main() called proto_json_init() before any json_t existed. */
	json_get_alloc_funcs(&m, &f);
	assert_ptr_equal(m, malloc);
	assert_ptr_equal(f, proto_wipe_free);
	v = json_pack("{s:s}", "secret", "hunter2");
	assert_non_null(v);
	json_decref(v);
	proto_wipe_free(NULL);
	proto_wipe_free(malloc(100));
}

/*
 * The client, against a real Unix socket served by a fork()ed responder
 * that answers each method in a scripted way.
 */

struct server {
	char	 sv_dir[64];
	char	 sv_path[96];
	pid_t	 sv_pid;
};

/* Errors end the writing only: the read loop then sees the close. */
static void
child_write(int fd, const char *buf, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void
child_send(int fd, json_t *msg)
{
	char	*buf;
	size_t	 len;

	if ((buf = proto_encode(msg, &len)) == NULL)
		_exit(4);
	child_write(fd, buf, len);
	proto_buf_free(buf, len);
	json_decref(msg);
}

static void
child_notify(int fd, int seq)
{
	child_send(fd, proto_notification("changed",
	    json_pack("{s:i}", "seq", seq)));
}

/* Answers one request; returns 0 to go on, -1 to drop the connection. */
static int
child_answer(int fd, struct proto_request *req)
{
	const char	*tenant = NULL;
	json_t		*wrong;
	char		 big[200];

	json_unpack(req->pr_params, "{s?s}", "tenant", &tenant);
	switch (req->pr_method->pm_id) {
	case PM_HELLO:
		child_send(fd, proto_reply_result(req->pr_id,
		    json_pack("{s:s,s:O}", "server", "wfvaultd", "echo_id",
		    req->pr_id)));
		break;
	case PM_STATUS:
		child_notify(fd, 1);
		child_notify(fd, 2);
		child_send(fd, proto_reply_result(req->pr_id,
		    json_pack("{s:b}", "ok", 1)));
		break;
	case PM_PUT:
		/* Echo the params so the test sees what arrived. */
		child_send(fd, proto_reply_result(req->pr_id,
		    json_deep_copy(req->pr_params)));
		break;
	case PM_GET:
		if (tenant != NULL && strcmp(tenant, "ctl") == 0)
			child_send(fd, proto_reply_error(req->pr_id,
			    PROTO_E_NOT_FOUND, NULL, json_pack("{s:s}",
			    "kind", "Not Found")));
		else if (tenant != NULL && strcmp(tenant, "nokind") == 0) {
			/* Written by hand: a message our builder cleans. */
			snprintf(big, sizeof(big), "{\"jsonrpc\":\"2.0\","
			    "\"id\":%lld,\"error\":{\"code\":-32003,"
			    "\"message\":\"bad\\nline\\u001b[31m\"}}\n",
			    (long long)json_integer_value(req->pr_id));
			child_write(fd, big, strlen(big));
		} else if (tenant != NULL && strcmp(tenant, "nullid") == 0)
			child_send(fd, proto_reply_error(NULL,
			    PROTO_E_TOO_LARGE, "message too long", NULL));
		else
			child_send(fd, proto_reply_error(req->pr_id,
			    PROTO_E_NOT_FOUND, "tenant 'acme' has no field "
			    "'x'", NULL));
		break;
	case PM_DELETE:
		wrong = json_integer(json_integer_value(req->pr_id) + 100);
		child_send(fd, proto_reply_result(wrong, json_object()));
		json_decref(wrong);
		break;
	case PM_LIST:
		child_write(fd, "not json\n", 9);
		break;
	case PM_CHANGES:
		return -1;
	case PM_SYNC_ACK:
		/* Never answers: the client times out. */
		break;
	case PM_WATCH:
		child_send(fd, proto_reply_result(req->pr_id, json_object()));
		child_notify(fd, 7);
		child_notify(fd, 8);
		break;
	default:
		child_send(fd, proto_reply_error(req->pr_id, PROTO_E_METHOD,
		    "unexpected method", NULL));
		break;
	}
	return 0;
}

static void
child_serve_conn(int fd)
{
	struct proto_request	 req = PROTO_REQUEST_INIT;
	char			 err[256];
	char			*buf;
	size_t			 len = 0, cap = 4 * 1024 * 1024;
	ssize_t			 n, line;
	int			 r;

	if ((buf = malloc(cap)) == NULL)
		_exit(5);
	for (;;) {
		while ((line = proto_frame_find(buf, len, cap)) >= 0) {
			r = proto_request_parse(buf, (size_t)line, &req, err,
			    sizeof(err));
			if (r != 0)
				child_send(fd, proto_reply_error(req.pr_id, r,
				    err, NULL));
			else if (child_answer(fd, &req) == -1) {
				proto_request_release(&req);
				goto done;
			}
			proto_request_release(&req);
			memmove(buf, buf + line + 1, len - (size_t)line - 1);
			len -= (size_t)line + 1;
		}
		if (line == PROTO_FRAME_TOO_LONG)
			break;
		if ((n = read(fd, buf + len, cap - len)) <= 0)
			break;
		len += (size_t)n;
	}
done:
	free(buf);
	close(fd);
}

static int
server_setup(void **state)
{
	struct server		*sv;
	struct sockaddr_un	 sun;
	int			 lfd, fd;

	sv = calloc(1, sizeof(*sv));
	assert_non_null(sv);
	snprintf(sv->sv_dir, sizeof(sv->sv_dir), "/tmp/test_proto.XXXXXX");
	assert_non_null(mkdtemp(sv->sv_dir));
	snprintf(sv->sv_path, sizeof(sv->sv_path), "%s/s.sock", sv->sv_dir);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sv->sv_path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(lfd != -1);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(lfd, 8), 0);

	sv->sv_pid = fork();
	assert_true(sv->sv_pid != -1);
	if (sv->sv_pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		for (;;) {
			if ((fd = accept(lfd, NULL, NULL)) == -1) {
				if (errno == EINTR)
					continue;
				_exit(2);
			}
			child_serve_conn(fd);
		}
	}
	close(lfd);
	*state = sv;
	return 0;
}

static int
server_teardown(void **state)
{
	struct server	*sv = *state;
	int		 status;

	kill(sv->sv_pid, SIGTERM);
	waitpid(sv->sv_pid, &status, 0);
	unlink(sv->sv_path);
	rmdir(sv->sv_dir);
	free(sv);
	return 0;
}

static void
client_connect(struct server *sv, struct proto_client *c)
{
	struct proto_error	err;

	c->pc_timeout_ms = 5000;
	if (proto_client_connect(c, sv->sv_path, &err) != PROTO_CALL_OK)
		fail_msg("connect: %s", err.pe_message);
}

static void
test_client_call(void **state)
{
	struct server		*sv = *state;
	struct proto_client	 c = PROTO_CLIENT_INIT;
	struct proto_error	 err;
	json_t			*res;
	int			 flags;

	client_connect(sv, &c);
	flags = fcntl(c.pc_fd, F_GETFD);
	assert_true(flags != -1 && (flags & FD_CLOEXEC));
	assert_int_equal(c.pc_max, PROTO_DEFAULT_MAX_MESSAGE * 16);

	assert_int_equal(proto_client_call(&c, "hello", NULL, &res, &err),
	    PROTO_CALL_OK);
	assert_string_equal(json_string_value(json_object_get(res, "server")),
	    "wfvaultd");
	assert_int_equal(json_integer_value(json_object_get(res, "echo_id")),
	    1);
	json_decref(res);
	assert_int_equal(proto_client_call(&c, "hello", json_object(), &res,
	    &err), PROTO_CALL_OK);
	assert_int_equal(json_integer_value(json_object_get(res, "echo_id")),
	    2);
	json_decref(res);
	assert_int_equal(c.pc_next_id, 3);
	assert_null(c.pc_pending);

	proto_client_close(&c);
	assert_int_equal(c.pc_fd, -1);
	assert_null(c.pc_buf);
	proto_client_close(&c);
	assert_int_equal(proto_client_call(&c, "hello", NULL, &res, &err),
	    PROTO_CALL_IO);
	assert_null(res);
	assert_string_equal(err.pe_message, "not connected to wfvaultd");
}

static void
test_client_params_arrive(void **state)
{
	struct server		*sv = *state;
	struct proto_client	 c = PROTO_CLIENT_INIT;
	struct proto_error	 err;
	json_t			*params, *res;
	char			*big;

	client_connect(sv, &c);
	/* Larger than the first buffer, with characters framing must keep. */
	big = repeat('v', 300000);
	big[10] = '\n';
	big[20] = '"';
	params = json_pack("{s:s,s:{s:s,s:s}}", "tenant", "acme", "fields",
	    "k", big, "u", "caf\xc3\xa9");
	assert_non_null(params);
	json_incref(params);
	assert_int_equal(proto_client_call(&c, "put", params, &res, &err),
	    PROTO_CALL_OK);
	assert_true(json_equal(res, params));
	json_decref(res);
	proto_client_close(&c);

	/* The same reply is too long for a small pc_max. */
	c.pc_max = 1000;
	client_connect(sv, &c);
	assert_int_equal(c.pc_max, 1000);
	assert_int_equal(proto_client_call(&c, "put", params, &res, &err),
	    PROTO_CALL_IO);
	assert_int_equal(err.pe_code, 0);
	assert_string_equal(err.pe_message, "protocol error: a message from "
	    "wfvaultd is longer than 1000 bytes");
	assert_int_equal(c.pc_fd, -1);
	proto_client_close(&c);
	free(big);
}

static void
test_client_notifications(void **state)
{
	struct server		*sv = *state;
	struct proto_client	 c = PROTO_CLIENT_INIT;
	struct proto_error	 err;
	json_t			*res, *msg;
	int64_t			 t0;

	client_connect(sv, &c);
	/* Two notifications come before the reply: they are queued. */
	assert_int_equal(proto_client_call(&c, "status", NULL, &res, &err),
	    PROTO_CALL_OK);
	assert_true(json_is_true(json_object_get(res, "ok")));
	json_decref(res);
	assert_int_equal(json_array_size(c.pc_pending), 2);

	assert_int_equal(proto_client_next(&c, 0, &msg, &err), PROTO_CALL_OK);
	assert_string_equal(json_string_value(json_object_get(msg, "method")),
	    "changed");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    msg, "params"), "seq")), 1);
	json_decref(msg);
	assert_int_equal(proto_client_next(&c, 0, &msg, &err), PROTO_CALL_OK);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    msg, "params"), "seq")), 2);
	json_decref(msg);

	t0 = util_now_ms();
	assert_int_equal(proto_client_next(&c, 100, &msg, &err), 1);
	assert_null(msg);
	assert_true(util_now_ms() - t0 >= 90);

	/* watch: the reply, then notifications read from the socket. */
	assert_int_equal(proto_client_call(&c, "watch", NULL, &res, &err),
	    PROTO_CALL_OK);
	json_decref(res);
	assert_int_equal(proto_client_next(&c, 5000, &msg, &err),
	    PROTO_CALL_OK);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    msg, "params"), "seq")), 7);
	json_decref(msg);
	assert_int_equal(proto_client_next(&c, 5000, &msg, &err),
	    PROTO_CALL_OK);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    msg, "params"), "seq")), 8);
	json_decref(msg);

	assert_int_equal(proto_client_next(&c, 50, &msg, &err), 1);
	assert_int_equal(c.pc_fd != -1, 1);
	proto_client_close(&c);
	assert_null(c.pc_pending);
}

static void
test_client_remote_error(void **state)
{
	struct server		*sv = *state;
	struct proto_client	 c = PROTO_CLIENT_INIT;
	struct proto_error	 err;
	json_t			*res;

	client_connect(sv, &c);
	assert_int_equal(proto_client_call(&c, "get",
	    json_pack("{s:s,s:s}", "tenant", "acme", "field", "x"), &res,
	    &err), PROTO_CALL_REMOTE);
	assert_null(res);
	assert_int_equal(err.pe_code, PROTO_E_NOT_FOUND);
	assert_string_equal(err.pe_kind, "not_found");
	assert_string_equal(err.pe_message, "tenant 'acme' has no field 'x'");

	/* The connection is still good after a remote error. */
	assert_int_equal(proto_client_call(&c, "hello", NULL, &res, &err),
	    PROTO_CALL_OK);
	json_decref(res);

	/* No data.kind: derived from the code; the message made one line. */
	assert_int_equal(proto_client_call(&c, "get",
	    json_pack("{s:s}", "tenant", "nokind"), &res, &err),
	    PROTO_CALL_REMOTE);
	assert_int_equal(err.pe_code, PROTO_E_CONFLICT);
	assert_string_equal(err.pe_kind, "conflict");
	assert_string_equal(err.pe_message, "bad line?[31m");

	/* A kind that is not a plain word is not trusted. */
	assert_int_equal(proto_client_call(&c, "get",
	    json_pack("{s:s}", "tenant", "ctl"), &res, &err),
	    PROTO_CALL_REMOTE);
	assert_string_equal(err.pe_kind, "not_found");

	/* An error with a null id answers the one request in flight. */
	assert_int_equal(proto_client_call(&c, "get",
	    json_pack("{s:s}", "tenant", "nullid"), &res, &err),
	    PROTO_CALL_REMOTE);
	assert_int_equal(err.pe_code, PROTO_E_TOO_LARGE);
	assert_string_equal(err.pe_kind, "too_large");
	assert_string_equal(err.pe_message, "message too long");

	/* The responder's parser rejects what proto_request_parse rejects. */
	assert_int_equal(proto_client_call(&c, "frobnicate", NULL, &res,
	    &err), PROTO_CALL_REMOTE);
	assert_int_equal(err.pe_code, PROTO_E_METHOD);
	assert_string_equal(err.pe_message, "unknown method 'frobnicate'");
	assert_int_equal(proto_client_call(&c, "put", json_array(), &res,
	    &err), PROTO_CALL_REMOTE);
	assert_int_equal(err.pe_code, PROTO_E_PARAMS);
	assert_string_equal(err.pe_kind, "invalid_params");
	proto_client_close(&c);
}

static void
test_client_protocol_errors(void **state)
{
	struct server		*sv = *state;
	struct proto_client	 c = PROTO_CLIENT_INIT;
	struct proto_error	 err;
	json_t			*res;

	client_connect(sv, &c);
	assert_int_equal(proto_client_call(&c, "delete", NULL, &res, &err),
	    PROTO_CALL_IO);
	assert_null(res);
	assert_int_equal(err.pe_code, 0);
	assert_string_equal(err.pe_message, "protocol error: reply to "
	    "request 101 while waiting for 1");
	assert_int_equal(c.pc_fd, -1);

	client_connect(sv, &c);
	assert_int_equal(proto_client_call(&c, "list", NULL, &res, &err),
	    PROTO_CALL_IO);
	assert_int_equal(strncmp(err.pe_message, "protocol error: ", 16), 0);

	client_connect(sv, &c);
	assert_int_equal(proto_client_call(&c, "changes", NULL, &res, &err),
	    PROTO_CALL_IO);
	assert_string_equal(err.pe_message, "connection closed by wfvaultd");
	assert_int_equal(proto_client_next(&c, 0, &res, &err),
	    PROTO_CALL_IO);
	proto_client_close(&c);
}

static void
test_client_timeout(void **state)
{
	struct server		*sv = *state;
	struct proto_client	 c = PROTO_CLIENT_INIT;
	struct proto_error	 err;
	json_t			*res;
	int64_t			 t0, dt;

	client_connect(sv, &c);
	c.pc_timeout_ms = 200;
	t0 = util_now_ms();
	assert_int_equal(proto_client_call(&c, "sync_ack", NULL, &res, &err),
	    PROTO_CALL_IO);
	/* Not before the timeout; how long after depends on the load. */
	dt = util_now_ms() - t0;
	assert_true(dt >= 190);
	assert_string_equal(err.pe_message, "timed out after 200 ms waiting "
	    "for wfvaultd");
	assert_string_equal(err.pe_kind, "io_error");
	proto_client_close(&c);
}

static void
test_client_connect_errors(void **state)
{
	struct server		*sv = *state;
	struct proto_client	 c = PROTO_CLIENT_INIT;
	struct proto_error	 err;
	char			 path[200], want[300];
	char			*lng;

	lng = repeat('p', 150);
	lng[0] = '/';
	assert_int_equal(proto_client_connect(&c, lng, &err), PROTO_CALL_IO);
	assert_non_null(strstr(err.pe_message, "socket path too long"));
	assert_int_equal(err.pe_code, 0);
	assert_int_equal(c.pc_fd, -1);
	free(lng);

	snprintf(path, sizeof(path), "%s/absent.sock", sv->sv_dir);
	assert_int_equal(proto_client_connect(&c, path, &err), PROTO_CALL_IO);
	snprintf(want, sizeof(want), "cannot connect to %s: %s", path,
	    strerror(ENOENT));
	assert_string_equal(err.pe_message, want);
	assert_int_equal(c.pc_fd, -1);
	proto_client_close(&c);
}

/* Hand-written peers over a socketpair. */
static void
test_client_socketpair(void **state)
{
	static const char	 stray[] = "{\"jsonrpc\":\"2.0\",\"method\":"
	    "\"changed\",\"params\":{\"seq\":3}}\n"
	    "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}\n";
	struct proto_client	 c = PROTO_CLIENT_INIT;
	struct proto_error	 err;
	json_t			*res;
	int			 sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	c.pc_fd = sv[0];
	c.pc_timeout_ms = 1000;
	assert_int_equal(proto_client_call(&c, "hello", NULL, &res, &err),
	    PROTO_CALL_IO);
	assert_string_equal(err.pe_message, "connection closed by wfvaultd");
	assert_int_equal(c.pc_fd, -1);
	proto_client_close(&c);

	/* A partial line then EOF. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], "{\"jsonrpc\"", 10), 10);
	c.pc_fd = sv[0];
	assert_int_equal(proto_client_next(&c, 100, &res, &err), 1);
	shutdown(sv[1], SHUT_WR);
	assert_int_equal(proto_client_next(&c, 1000, &res, &err),
	    PROTO_CALL_IO);
	assert_string_equal(err.pe_message, "connection closed by wfvaultd");
	close(sv[1]);
	proto_client_close(&c);

	/* A reply when no request is outstanding breaks the protocol. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], stray, sizeof(stray) - 1),
	    sizeof(stray) - 1);
	c.pc_fd = sv[0];
	assert_int_equal(proto_client_next(&c, 1000, &res, &err),
	    PROTO_CALL_OK);
	json_decref(res);
	assert_int_equal(proto_client_next(&c, 1000, &res, &err),
	    PROTO_CALL_IO);
	assert_string_equal(err.pe_message, "protocol error: wfvaultd sent a "
	    "reply while no request was outstanding");
	assert_int_equal(c.pc_fd, -1);
	close(sv[1]);
	proto_client_close(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tenant_valid),
		cmocka_unit_test(test_tenant_invalid),
		cmocka_unit_test(test_field_names),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_request_good),
		cmocka_unit_test(test_request_rejects),
		cmocka_unit_test(test_request_long_method_not_echoed),
		cmocka_unit_test(test_request_nul_byte),
		cmocka_unit_test(test_request_deep_nesting),
		cmocka_unit_test(test_request_invalid_utf8),
		cmocka_unit_test(test_request_error_hides_input),
		cmocka_unit_test(test_params_check),
		cmocka_unit_test(test_param_string),
		cmocka_unit_test(test_param_uint),
		cmocka_unit_test(test_param_bool),
		cmocka_unit_test(test_builders),
		cmocka_unit_test(test_encode_round_trip),
		cmocka_unit_test(test_err_kinds),
		cmocka_unit_test(test_perms),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_json_init),
		cmocka_unit_test_setup_teardown(test_client_call,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_client_params_arrive,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_client_notifications,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_client_remote_error,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_client_protocol_errors,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_client_timeout,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_client_connect_errors,
		    server_setup, server_teardown),
		cmocka_unit_test(test_client_socketpair),
	};

	proto_json_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
