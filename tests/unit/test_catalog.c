/*
 * Unit tests of the integration catalog (daemon/catalog.c): every shipped
 * file loads, a malformed file is refused naming the file and the member,
 * and a later directory overrides an integration by id.
 */
#include <sys/stat.h>

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support.h"
#include "wfvaultd.h"

/* One well-formed file; the malformed ones below each change one thing. */
#define GOOD_FIELDS							\
	"\"fields\": [{\"name\": \"acme_key\", \"label\": \"Key\", "	\
	"\"secret\": true, \"format\": \"^ak_[a-z0-9]{8,}$\", "		\
	"\"example\": \"ak_…\", \"where\": [\"Ask Acme\"]}, "		\
	"{\"name\": \"acme_region\", \"label\": \"Region\", "		\
	"\"secret\": false, \"format\": \"^[a-z]+$\", "			\
	"\"where\": [\"The account page\"]}]"

static void
write_file(const char *dir, const char *name, const char *text)
{
	char	 path[PATH_MAX];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
test_shipped(void **state)
{
	const struct catalog_integration	*ci;
	const struct catalog_field		*cf;
	struct catalog				*cat;
	json_t					*list;
	char					 dir[PATH_MAX], err[1024];
	static const char *const ids[] = { "openai", "stripe", "sendgrid",
	    "linkedin", "github", "twitter", "s3", NULL };
	size_t					 i;

	(void)state;
	test_source_path("integrations", dir, sizeof(dir));
	assert_non_null(cat = catalog_new());
	if (catalog_load_dir(cat, dir, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	for (i = 0; ids[i] != NULL; i++)
		if (catalog_find(cat, ids[i]) == NULL)
			fail_msg("no %s in %s", ids[i], dir);

	/* Formats say what a value looks like, and secret is right. */
	ci = catalog_find(cat, "openai");
	assert_non_null(cf = catalog_field_find(ci, "openai_api_key"));
	assert_true(cf->cf_secret);
	assert_true(catalog_field_match(cf,
	    "sk-proj-abcdefghijklmnopqrstuvwxyz0123"));
	assert_false(catalog_field_match(cf, "pk-abcdefghijklmnopqrstuvwxyz"));
	ci = catalog_find(cat, "stripe");
	cf = catalog_field_find(ci, "stripe_secret_key");
	assert_true(catalog_field_match(cf, "sk_test_4eC39HqLyjWDarjtT1zdp7dc"));
	assert_false(catalog_field_match(cf, "pk_test_4eC39HqLyjWDarjtT1zdp7dc"));
	ci = catalog_find(cat, "sendgrid");
	cf = catalog_field_find(ci, "sendgrid_api_key");
	assert_true(catalog_field_match(cf, "SG.abcdefghijklmnopqrstuv."
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"));
	ci = catalog_find(cat, "s3");
	assert_false(catalog_field_find(ci, "s3_bucket")->cf_secret);
	assert_false(catalog_field_find(ci, "s3_region")->cf_secret);
	assert_false(catalog_field_find(ci, "s3_endpoint")->cf_secret);
	assert_true(catalog_field_find(ci, "s3_secret_access_key")->cf_secret);
	assert_true(catalog_field_match(catalog_field_find(ci, "s3_region"),
	    "auto"));
	assert_true(catalog_field_match(catalog_field_find(ci,
	    "s3_endpoint"), "https://0123abcd.r2.cloudflarestorage.com"));
	ci = catalog_find(cat, "github");
	assert_false(catalog_field_find(ci, "github_client_id")->cf_secret);
	assert_true(catalog_field_find(ci,
	    "github_client_secret")->cf_secret);

	assert_non_null(list = catalog_list_json(cat));
	assert_int_equal(json_array_size(list), cat->cat_n);
	/* Sorted by id. */
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(list, 0), "id")), "github");
	json_decref(list);
	catalog_free(cat);
}

/*
 * The one file acme.json holding text is refused, err naming the file and
 * want (the member and the reason).
 */
static void
refused(const char *text, const char *want)
{
	struct catalog	*cat;
	char		 dir[PATH_MAX], path[PATH_MAX + 16], err[1024];

	assert_int_equal(test_tmpdir(dir, sizeof(dir), "catalog"), 0);
	write_file(dir, "acme.json", text);
	assert_non_null(cat = catalog_new());
	if (catalog_load_dir(cat, dir, err, sizeof(err)) == 0)
		fail_msg("accepted: %s", text);
	snprintf(path, sizeof(path), "%s/acme.json", dir);
	if (strstr(err, path) == NULL || strstr(err, want) == NULL)
		fail_msg("'%s' does not say '%s%s'", err, path, want);
	assert_int_equal(cat->cat_n, 0);
	catalog_free(cat);
	test_rmtree(dir);
}

static void
test_malformed(void **state)
{
	(void)state;
	refused("{\"id\": \"acme\", \"title\": \"Acme\", \"kind\": \"api_key\", "
	    GOOD_FIELDS ", \"colour\": \"red\"}", "colour: unknown member");
	refused("{\"id\": \"acme\", \"title\": \"Acme\", \"kind\": \"token\", "
	    GOOD_FIELDS "}", "kind: must be api_key, oauth or storage");
	refused("{\"id\": \"acme\", \"title\": \"Acme\", \"kind\": \"api_key\", "
	    "\"fields\": [{\"name\": \"k\", \"label\": \"K\", \"secret\": true, "
	    "\"format\": \"^[a-z\", \"where\": [\"x\"]}]}",
	    "fields[0].format: does not compile: ");
	refused("{\"id\": \"acme\", \"title\": \"Acme\", \"kind\": \"api_key\", "
	    "\"fields\": [{\"name\": \"Api-Key\", \"label\": \"K\", "
	    "\"secret\": true, \"format\": \"x\", \"where\": [\"x\"]}]}",
	    "fields[0].name: invalid field name");
	refused("{\"id\": \"acme\", \"title\": \"Acme\", \"kind\": \"api_key\", "
	    "\"fields\": [{\"name\": \"k\", \"label\": \"K\", \"secret\": true, "
	    "\"format\": \"x\", \"where\": [\"x\"]}, {\"name\": \"k\", "
	    "\"label\": \"K2\", \"secret\": false, \"format\": \"x\", "
	    "\"where\": [\"x\"]}]}", "fields[1].name: 'k' is also fields[0]");
	refused("{\"id\": \"acme\", \"title\": \"Acme\", \"kind\": \"api_key\", "
	    "\"fields\": [{\"name\": \"k\", \"label\": \"K\", \"secret\": "
	    "\"yes\", \"format\": \"x\", \"where\": [\"x\"]}]}",
	    "fields[0].secret: must be true or false");
	refused("{\"id\": \"acme\", \"title\": \"Acme\", \"kind\": \"api_key\", "
	    "\"fields\": [{\"name\": \"k\", \"label\": \"K\", \"secret\": true, "
	    "\"format\": \"x\", \"where\": \"x\"}]}",
	    "fields[0].where: must be a non-empty array of strings");
	refused("{\"id\": \"acme\", \"title\": \"Acme\", \"kind\": \"api_key\", "
	    GOOD_FIELDS ", \"test\": {\"method\": \"GET\", "
	    "\"url\": \"http://api.acme.example/v1\", "
	    "\"expect_status\": [200]}}", "test.url: must be https://");
	refused("{\"id\": \"acme\", \"title\": \"Acme\", \"kind\": \"api_key\", "
	    GOOD_FIELDS ", \"test\": {\"method\": \"GET\", "
	    "\"url\": \"http://localhost.acme.example/v1\", "
	    "\"expect_status\": [200]}}", "test.url: must be https://");
	refused("{\"id\": \"acme\", \"title\": \"Acme\", \"kind\": \"api_key\", "
	    GOOD_FIELDS ", \"test\": {\"method\": \"GET\", "
	    "\"url\": \"http://127.0.0.1:80@acme.example/v1\", "
	    "\"expect_status\": [200]}}", "test.url: no user information");
	refused("{\"id\": \"acme\", \"title\": \"Acme\", \"kind\": \"api_key\", "
	    GOOD_FIELDS ", \"test\": {\"method\": \"GET\", "
	    "\"url\": \"https://api.acme.example/v1\", \"headers\": "
	    "{\"Authorization\": \"Bearer {{acme_token}}\"}, "
	    "\"expect_status\": [200]}}",
	    "test.headers.Authorization: {{acme_token}} names no field");
	refused("{\"id\": \"acme\", \"title\": \"Acme\", \"kind\": \"api_key\", "
	    GOOD_FIELDS ", \"test\": {\"method\": \"DELETE\", "
	    "\"url\": \"https://api.acme.example/v1\", "
	    "\"expect_status\": [200]}}", "test.method: must be GET");
	refused("{\"id\": \"acme\", \"title\": \"Acme\", \"kind\": \"api_key\", "
	    GOOD_FIELDS ", \"test\": {\"method\": \"GET\", "
	    "\"url\": \"https://api.acme.example/v1\", "
	    "\"expect_status\": [\"200\"]}}", "test.expect_status[0]: must be");
	refused("{\"id\": \"Acme!\", \"title\": \"Acme\", \"kind\": "
	    "\"api_key\", " GOOD_FIELDS "}", "id: only lowercase");
	refused("{\"id\": \"other\", \"title\": \"Acme\", \"kind\": "
	    "\"api_key\", " GOOD_FIELDS "}", "id: 'other' must be the file's");
	refused("{\"title\": \"Acme\", \"kind\": \"api_key\", " GOOD_FIELDS "}",
	    "id: missing");
	refused("[]", "must be a JSON object");
	/* jansson names line and column. */
	refused("{\"id\": \"acme\",", "acme.json:1:14: ");
}

static void
test_loopback_and_override(void **state)
{
	const struct catalog_integration	*ci;
	struct daemon_conf			 conf;
	struct catalog				*cat;
	char					 a[PATH_MAX], b[PATH_MAX];
	char					 missing[PATH_MAX + 16];
	char					*dirs[2];
	char					 err[1024];

	(void)state;
	assert_int_equal(test_tmpdir(a, sizeof(a), "catalog-a"), 0);
	assert_int_equal(test_tmpdir(b, sizeof(b), "catalog-b"), 0);
	/* http:// to a loopback host is for the tests' stand-ins. */
	write_file(a, "acme.json", "{\"id\": \"acme\", \"title\": \"Acme A\", "
	    "\"kind\": \"api_key\", " GOOD_FIELDS ", \"test\": {\"method\": "
	    "\"GET\", \"url\": \"http://127.0.0.1:8080/v1?r={{acme_region}}\", "
	    "\"headers\": {\"Authorization\": \"Bearer {{acme_key}}\"}, "
	    "\"expect_status\": [200, 204]}}");
	write_file(a, "beta.json", "{\"id\": \"beta\", \"title\": \"Beta\", "
	    "\"kind\": \"storage\", " GOOD_FIELDS "}");
	write_file(a, "notes.txt", "not a catalog file");
	write_file(b, "acme.json", "{\"id\": \"acme\", \"title\": \"Acme B\", "
	    "\"kind\": \"oauth\", " GOOD_FIELDS ", \"test\": {\"method\": "
	    "\"HEAD\", \"url\": \"http://[::1]/\", \"expect_status\": [200]}}");

	memset(&conf, 0, sizeof(conf));
	conf.dc_integrations_nodefault = 1;
	dirs[0] = a;
	dirs[1] = b;
	conf.dc_integrations_dirs = dirs;
	conf.dc_integrations_ndirs = 2;
	if (catalog_load(&conf, &cat, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_int_equal(cat->cat_n, 2);
	/* The later directory wins by id. */
	assert_non_null(ci = catalog_find(cat, "acme"));
	assert_string_equal(ci->ci_title, "Acme B");
	assert_string_equal(ci->ci_kind, "oauth");
	assert_non_null(strstr(ci->ci_file, b));
	assert_non_null(catalog_find(cat, "beta"));
	assert_null(catalog_find(cat, "gamma"));
	catalog_free(cat);

	/* A configured directory that is missing is an error. */
	snprintf(missing, sizeof(missing), "%s/nope", a);
	dirs[1] = missing;
	assert_int_equal(catalog_load(&conf, &cat, err, sizeof(err)), -1);
	assert_null(cat);
	assert_non_null(strstr(err, missing));

	test_rmtree(a);
	test_rmtree(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_loopback_and_override),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
