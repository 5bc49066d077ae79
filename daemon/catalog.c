/*
 * The integration catalog: one JSON file per provider (what credentials it
 * needs, where a person gets them, their format, an optional live test),
 * loaded strictly from the catalog directories, later directories winning
 * by id.  Pure (files in, a catalog out): main, reload and the tests call
 * it alike.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wfvaultd.h"

#define CATALOG_ID_MAX		64
#define CATALOG_FILE_MAX	(256 * 1024)

static int	catalog_dir_load(struct catalog *, const char *, int, char *,
		    size_t);
static int	catalog_file_load(struct catalog *, const char *, const char *,
		    char *, size_t);
static int	catalog_check(struct catalog_integration *, const char *,
		    json_t *, char *, size_t);
static int	catalog_check_field(struct catalog_field *, const char *,
		    size_t, json_t *, char *, size_t);
static int	catalog_check_test(const struct catalog_integration *,
		    const char *, json_t *, char *, size_t);
static int	catalog_placeholders(const struct catalog_integration *,
		    const char *, const char *, const char *, char *, size_t);
static int	catalog_members(const char *, const char *, json_t *,
		    const char *const *, char *, size_t);
static void	catalog_integration_free(struct catalog_integration *);
static int	catalog_fail(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static int
catalog_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

struct catalog *
catalog_new(void)
{
	return calloc(1, sizeof(struct catalog));
}

int
catalog_load(const struct daemon_conf *conf, struct catalog **out, char *err,
    size_t errlen)
{
	struct catalog	*cat;
	size_t		 i;

	*out = NULL;
	if ((cat = catalog_new()) == NULL)
		return catalog_fail(err, errlen, "%s", strerror(errno));
	/* The shipped files, then the site's own: both may be absent. */
	if (!conf->dc_integrations_nodefault &&
	    (catalog_dir_load(cat, CATALOG_DEFAULT_DIR, 1, err, errlen) == -1 ||
	    catalog_dir_load(cat, CATALOG_SITE_DIR, 1, err, errlen) == -1))
		goto fail;
	for (i = 0; i < conf->dc_integrations_ndirs; i++)
		if (catalog_dir_load(cat, conf->dc_integrations_dirs[i], 0, err,
		    errlen) == -1)
			goto fail;
	*out = cat;
	return 0;
fail:
	catalog_free(cat);
	return -1;
}

int
catalog_load_dir(struct catalog *cat, const char *dir, char *err,
    size_t errlen)
{
	return catalog_dir_load(cat, dir, 0, err, errlen);
}

/* Every *.json of dir in name order; optional: a missing dir is fine. */
static int
catalog_dir_load(struct catalog *cat, const char *dir, int optional,
    char *err, size_t errlen)
{
	struct dirent	**names = NULL;
	char		  path[4096];
	size_t		  len;
	int		  n, i, rc = -1;

	if ((n = scandir(dir, &names, NULL, alphasort)) == -1) {
		if (optional && errno == ENOENT)
			return 0;
		return catalog_fail(err, errlen, "integrations_dir %s: %s",
		    dir, strerror(errno));
	}
	for (i = 0; i < n; i++) {
		len = strlen(names[i]->d_name);
		/* Editors' and package managers' leftovers are not ours. */
		if (names[i]->d_name[0] == '.' || len <= 5 ||
		    strcmp(names[i]->d_name + len - 5, ".json") != 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    names[i]->d_name) >= sizeof(path)) {
			catalog_fail(err, errlen, "%s/%s: path too long", dir,
			    names[i]->d_name);
			goto done;
		}
		if (catalog_file_load(cat, path, names[i]->d_name, err,
		    errlen) == -1)
			goto done;
	}
	rc = 0;
done:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static int
catalog_file_load(struct catalog *cat, const char *path, const char *base,
    char *err, size_t errlen)
{
	struct catalog_integration	 *ci = NULL, **items;
	struct stat			  st;
	json_error_t			  jerr;
	json_t				 *root = NULL;
	size_t				  i;

	if (stat(path, &st) == -1)
		return catalog_fail(err, errlen, "%s: %s", path,
		    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return catalog_fail(err, errlen, "%s: not a regular file",
		    path);
	if (st.st_size > CATALOG_FILE_MAX)
		return catalog_fail(err, errlen, "%s: too large (%lld bytes, "
		    "at most %d)", path, (long long)st.st_size,
		    CATALOG_FILE_MAX);
	if ((root = json_load_file(path, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL)
		return catalog_fail(err, errlen, "%s:%d:%d: %s", path,
		    jerr.line, jerr.column, jerr.text);
	if ((ci = calloc(1, sizeof(*ci))) == NULL) {
		catalog_fail(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	ci->ci_json = root;
	root = NULL;
	if (catalog_check(ci, path, ci->ci_json, err, errlen) == -1)
		goto fail;
	/* The file name says which integration it is: no two in one dir. */
	if (strlen(base) != strlen(ci->ci_id) + 5 ||
	    strncmp(base, ci->ci_id, strlen(ci->ci_id)) != 0) {
		catalog_fail(err, errlen, "%s: id: '%s' must be the file's "
		    "name without .json", path, ci->ci_id);
		goto fail;
	}
	if ((ci->ci_file = strdup(path)) == NULL) {
		catalog_fail(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	/* A later directory overrides an integration of the same id. */
	for (i = 0; i < cat->cat_n; i++)
		if (strcmp(cat->cat_items[i]->ci_id, ci->ci_id) == 0) {
			catalog_integration_free(cat->cat_items[i]);
			cat->cat_items[i] = ci;
			return 0;
		}
	if ((items = reallocarray(cat->cat_items, cat->cat_n + 1,
	    sizeof(*items))) == NULL) {
		catalog_fail(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	cat->cat_items = items;
	cat->cat_items[cat->cat_n++] = ci;
	return 0;
fail:
	json_decref(root);
	catalog_integration_free(ci);
	return -1;
}

/* Refuses a member of obj not in allowed; where names obj in messages. */
static int
catalog_members(const char *path, const char *where, json_t *obj,
    const char *const *allowed, char *err, size_t errlen)
{
	const char	*key;
	json_t		*v;
	size_t		 i;

	json_object_foreach(obj, key, v) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(allowed[i], key) == 0)
				break;
		if (allowed[i] == NULL)
			return catalog_fail(err, errlen, "%s: %s%s%s: unknown "
			    "member", path, where, where[0] != '\0' ? "." : "",
			    key);
	}
	return 0;
}

/* A non-empty string member of obj, or -1 naming it. */
static int
catalog_string(const char *path, const char *where, json_t *obj,
    const char *name, int required, const char **out, char *err,
    size_t errlen)
{
	json_t	*v;

	*out = NULL;
	if ((v = json_object_get(obj, name)) == NULL) {
		if (!required)
			return 0;
		return catalog_fail(err, errlen, "%s: %s%s%s: missing", path,
		    where, where[0] != '\0' ? "." : "", name);
	}
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return catalog_fail(err, errlen, "%s: %s%s%s: must be a "
		    "non-empty string", path, where, where[0] != '\0' ? "." : "",
		    name);
	*out = json_string_value(v);
	return 0;
}

static int
catalog_check(struct catalog_integration *ci, const char *path, json_t *root,
    char *err, size_t errlen)
{
	static const char *const members[] = { "id", "title", "kind",
	    "fields", "test", NULL };
	json_t		*fields, *f, *test;
	const char	*kind, *p;
	size_t		 i, j;
	char		 where[32];

	if (!json_is_object(root))
		return catalog_fail(err, errlen, "%s: must be a JSON object",
		    path);
	if (catalog_members(path, "", root, members, err, errlen) == -1 ||
	    catalog_string(path, "", root, "id", 1, &ci->ci_id, err,
	    errlen) == -1)
		return -1;
	if (strlen(ci->ci_id) > CATALOG_ID_MAX)
		return catalog_fail(err, errlen, "%s: id: longer than %d bytes",
		    path, CATALOG_ID_MAX);
	for (p = ci->ci_id; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '_' || *p == '-'))
			return catalog_fail(err, errlen, "%s: id: only "
			    "lowercase letters, digits, '_' and '-' are "
			    "allowed", path);
	if (catalog_string(path, "", root, "title", 1, &ci->ci_title, err,
	    errlen) == -1 ||
	    catalog_string(path, "", root, "kind", 1, &kind, err,
	    errlen) == -1)
		return -1;
	if (strcmp(kind, "api_key") != 0 && strcmp(kind, "oauth") != 0 &&
	    strcmp(kind, "storage") != 0)
		return catalog_fail(err, errlen, "%s: kind: must be api_key, "
		    "oauth or storage", path);
	ci->ci_kind = kind;

	fields = json_object_get(root, "fields");
	if (fields == NULL)
		return catalog_fail(err, errlen, "%s: fields: missing", path);
	if (!json_is_array(fields) || json_array_size(fields) == 0)
		return catalog_fail(err, errlen, "%s: fields: must be a "
		    "non-empty array", path);
	if ((ci->ci_fields = calloc(json_array_size(fields),
	    sizeof(*ci->ci_fields))) == NULL)
		return catalog_fail(err, errlen, "%s", strerror(errno));
	json_array_foreach(fields, i, f) {
		snprintf(where, sizeof(where), "fields[%zu]", i);
		if (catalog_check_field(&ci->ci_fields[i], path, i, f, err,
		    errlen) == -1)
			return -1;
		ci->ci_nfields++;
		for (j = 0; j < i; j++)
			if (strcmp(ci->ci_fields[j].cf_name,
			    ci->ci_fields[i].cf_name) == 0)
				return catalog_fail(err, errlen, "%s: %s.name: "
				    "'%s' is also fields[%zu]", path, where,
				    ci->ci_fields[i].cf_name, j);
	}
	if ((test = json_object_get(root, "test")) != NULL &&
	    catalog_check_test(ci, path, test, err, errlen) == -1)
		return -1;
	return 0;
}

static int
catalog_check_field(struct catalog_field *cf, const char *path, size_t idx,
    json_t *f, char *err, size_t errlen)
{
	static const char *const members[] = { "name", "label", "secret",
	    "format", "example", "where", NULL };
	json_t		*v, *step;
	const char	*example;
	char		 where[32], why[256];
	size_t		 i;
	int		 rc;

	snprintf(where, sizeof(where), "fields[%zu]", idx);
	if (!json_is_object(f))
		return catalog_fail(err, errlen, "%s: %s: must be an object",
		    path, where);
	if (catalog_members(path, where, f, members, err, errlen) == -1 ||
	    catalog_string(path, where, f, "name", 1, &cf->cf_name, err,
	    errlen) == -1)
		return -1;
	if (proto_field_valid(cf->cf_name, why, sizeof(why)) == -1)
		return catalog_fail(err, errlen, "%s: %s.name: %s", path, where,
		    why);
	if (catalog_string(path, where, f, "label", 1, &cf->cf_label, err,
	    errlen) == -1 ||
	    catalog_string(path, where, f, "format", 1, &cf->cf_format, err,
	    errlen) == -1 ||
	    catalog_string(path, where, f, "example", 0, &example, err,
	    errlen) == -1)
		return -1;
	if ((v = json_object_get(f, "secret")) == NULL)
		return catalog_fail(err, errlen, "%s: %s.secret: missing",
		    path, where);
	if (!json_is_boolean(v))
		return catalog_fail(err, errlen, "%s: %s.secret: must be true "
		    "or false", path, where);
	cf->cf_secret = json_is_true(v);
	v = json_object_get(f, "where");
	if (v == NULL)
		return catalog_fail(err, errlen, "%s: %s.where: missing", path,
		    where);
	if (!json_is_array(v) || json_array_size(v) == 0)
		return catalog_fail(err, errlen, "%s: %s.where: must be a "
		    "non-empty array of strings", path, where);
	json_array_foreach(v, i, step)
		if (!json_is_string(step) || json_string_length(step) == 0)
			return catalog_fail(err, errlen, "%s: %s.where[%zu]: "
			    "must be a non-empty string", path, where, i);
	if ((rc = regcomp(&cf->cf_re, cf->cf_format,
	    REG_EXTENDED | REG_NOSUB)) != 0) {
		regerror(rc, NULL, why, sizeof(why));
		return catalog_fail(err, errlen, "%s: %s.format: does not "
		    "compile: %s", path, where, why);
	}
	cf->cf_compiled = 1;
	return 0;
}

/* The host of an http:// url is a loopback one (tests' stand-ins). */
static int
catalog_loopback(const char *rest)
{
	static const char *const hosts[] = { "localhost", "127.0.0.1",
	    "[::1]", NULL };
	size_t	len, i;

	len = rest[0] == '[' ? strcspn(rest, "]") + 1 : strcspn(rest, ":/?#");
	for (i = 0; hosts[i] != NULL; i++)
		if (strlen(hosts[i]) == len && strncmp(rest, hosts[i], len) == 0)
			return 1;
	return 0;
}

static int
catalog_check_test(const struct catalog_integration *ci, const char *path,
    json_t *test, char *err, size_t errlen)
{
	static const char *const members[] = { "method", "url", "headers",
	    "expect_status", NULL };
	json_t		*v, *h;
	const char	*method, *url, *key, *p;
	char		 where[300];
	size_t		 i;

	if (!json_is_object(test))
		return catalog_fail(err, errlen, "%s: test: must be an object",
		    path);
	if (catalog_members(path, "test", test, members, err, errlen) == -1 ||
	    catalog_string(path, "test", test, "method", 1, &method, err,
	    errlen) == -1 ||
	    catalog_string(path, "test", test, "url", 1, &url, err,
	    errlen) == -1)
		return -1;
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 &&
	    strcmp(method, "HEAD") != 0)
		return catalog_fail(err, errlen, "%s: test.method: must be GET, "
		    "POST or HEAD", path);
	if (strncmp(url, "https://", 8) != 0 &&
	    (strncmp(url, "http://", 7) != 0 || !catalog_loopback(url + 7)))
		return catalog_fail(err, errlen, "%s: test.url: must be "
		    "https:// (http:// only to a loopback host)", path);
	/* user@host would hide the real host behind a loopback-looking one. */
	p = strchr(url, '/') + 2;
	if (memchr(p, '@', strcspn(p, "/?#")) != NULL)
		return catalog_fail(err, errlen, "%s: test.url: no user "
		    "information (user@) allowed", path);
	if (catalog_placeholders(ci, path, "test.url", url, err, errlen) == -1)
		return -1;
	if ((v = json_object_get(test, "headers")) != NULL) {
		if (!json_is_object(v))
			return catalog_fail(err, errlen, "%s: test.headers: "
			    "must be an object of strings", path);
		json_object_foreach(v, key, h) {
			snprintf(where, sizeof(where), "test.headers.%s", key);
			if (key[0] == '\0' || strpbrk(key, ": \t\r\n") != NULL)
				return catalog_fail(err, errlen, "%s: "
				    "test.headers: '%s' is not a header name",
				    path, key);
			if (!json_is_string(h) || strpbrk(json_string_value(h),
			    "\r\n") != NULL ||
			    strlen(json_string_value(h)) !=
			    json_string_length(h))
				return catalog_fail(err, errlen, "%s: %s: must "
				    "be a one-line string", path, where);
			if (catalog_placeholders(ci, path, where,
			    json_string_value(h), err, errlen) == -1)
				return -1;
		}
	}
	if ((v = json_object_get(test, "expect_status")) == NULL)
		return catalog_fail(err, errlen, "%s: test.expect_status: "
		    "missing", path);
	if (!json_is_array(v) || json_array_size(v) == 0)
		return catalog_fail(err, errlen, "%s: test.expect_status: must "
		    "be a non-empty array of HTTP statuses", path);
	json_array_foreach(v, i, h)
		if (!json_is_integer(h) || json_integer_value(h) < 100 ||
		    json_integer_value(h) > 599)
			return catalog_fail(err, errlen, "%s: "
			    "test.expect_status[%zu]: must be an HTTP status "
			    "(100 to 599)", path, i);
	return 0;
}

/* Every {{name}} in s names a field of ci. */
static int
catalog_placeholders(const struct catalog_integration *ci, const char *path,
    const char *where, const char *s, char *err, size_t errlen)
{
	const char	*open, *close;
	char		 name[PROTO_FIELD_MAX + 1];
	size_t		 len;

	while ((open = strstr(s, "{{")) != NULL) {
		if ((close = strstr(open + 2, "}}")) == NULL)
			return catalog_fail(err, errlen, "%s: %s: '{{' without "
			    "'}}'", path, where);
		len = close - (open + 2);
		if (len >= sizeof(name))
			return catalog_fail(err, errlen, "%s: %s: a placeholder "
			    "names no field of this integration", path, where);
		memcpy(name, open + 2, len);
		name[len] = '\0';
		if (catalog_field_find(ci, name) == NULL)
			return catalog_fail(err, errlen, "%s: %s: {{%s}} names "
			    "no field of this integration", path, where, name);
		s = close + 2;
	}
	return 0;
}

const struct catalog_integration *
catalog_find(const struct catalog *cat, const char *id)
{
	size_t	i;

	for (i = 0; i < cat->cat_n; i++)
		if (strcmp(cat->cat_items[i]->ci_id, id) == 0)
			return cat->cat_items[i];
	return NULL;
}

const struct catalog_field *
catalog_field_find(const struct catalog_integration *ci, const char *name)
{
	size_t	i;

	for (i = 0; i < ci->ci_nfields; i++)
		if (strcmp(ci->ci_fields[i].cf_name, name) == 0)
			return &ci->ci_fields[i];
	return NULL;
}

int
catalog_field_match(const struct catalog_field *cf, const char *value)
{
	return regexec(&cf->cf_re, value, 0, NULL, 0) == 0;
}

static int
catalog_cmp(const void *a, const void *b)
{
	const struct catalog_integration *const *x = a, *const *y = b;

	return strcmp((*x)->ci_id, (*y)->ci_id);
}

json_t *
catalog_list_json(const struct catalog *cat)
{
	struct catalog_integration	**sorted;
	json_t				 *list;
	size_t				  i;

	if ((list = json_array()) == NULL)
		return NULL;
	if (cat->cat_n == 0)
		return list;
	if ((sorted = calloc(cat->cat_n, sizeof(*sorted))) == NULL) {
		json_decref(list);
		return NULL;
	}
	memcpy(sorted, cat->cat_items, cat->cat_n * sizeof(*sorted));
	qsort(sorted, cat->cat_n, sizeof(*sorted), catalog_cmp);
	/* The file was checked member by member: it is the listing entry. */
	for (i = 0; i < cat->cat_n; i++)
		if (json_array_append(list, sorted[i]->ci_json) == -1) {
			json_decref(list);
			list = NULL;
			break;
		}
	free(sorted);
	return list;
}

static void
catalog_integration_free(struct catalog_integration *ci)
{
	size_t	i;

	if (ci == NULL)
		return;
	for (i = 0; i < ci->ci_nfields; i++)
		if (ci->ci_fields[i].cf_compiled)
			regfree(&ci->ci_fields[i].cf_re);
	free(ci->ci_fields);
	free(ci->ci_file);
	json_decref(ci->ci_json);
	free(ci);
}

void
catalog_free(struct catalog *cat)
{
	size_t	i;

	if (cat == NULL)
		return;
	for (i = 0; i < cat->cat_n; i++)
		catalog_integration_free(cat->cat_items[i]);
	free(cat->cat_items);
	free(cat);
}
