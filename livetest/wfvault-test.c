/*
 * wfvault-test, the helper `wfvault test` runs for one live test: it reads
 * a job (the catalog's test block and the tenant's field values) as JSON
 * on stdin, never argv, sends the one request with libcurl and prints the
 * outcome as one JSON object on stdout.  It is a program of its own so the
 * CLI never links libcurl and its TLS stack (README.md "Live tests").
 *
 * Job:    {"test":{method,url,headers?,expect_status}, "fields":{name:value},
 *          "connect_timeout":S, "timeout":S}
 * Answer: {"result":"pass"|"fail", "status":N|null, "reason":"..."}
 * Exit:   0 pass, 1 fail, 2 a malformed job or another local error.
 */
#include <sys/prctl.h>
#include <sys/resource.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "proto.h"
#include "util.h"

#define LT_JOB_MAX	(1024 * 1024)
#define LT_URL_MAX	8192
#define LT_REASON_MAX	256
#define LT_EXIT_PASS	0
#define LT_EXIT_FAIL	1
#define LT_EXIT_ERROR	2

/* What the request came to: a status (0 when none) and a reason. */
struct lt_outcome {
	int	lo_pass;
	long	lo_status;
	char	lo_reason[LT_REASON_MAX];
};

/* The response body is never kept nor shown: it may echo the secret. */
static size_t
lt_discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
	return size * nmemb;
}

static const char *
lt_status_text(long status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return NULL;
}

static int	lt_fail(struct lt_outcome *, const char *, ...)
		    __attribute__((__format__(printf, 2, 3)));

static int
lt_fail(struct lt_outcome *o, const char *fmt, ...)
{
	va_list	ap;

	o->lo_pass = 0;
	va_start(ap, fmt);
	vsnprintf(o->lo_reason, sizeof(o->lo_reason), fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Appends to *buf (a wiped, growing string) template t with each {{name}}
 * replaced by the field's value, percent-encoded when encode is set.
 */
static int
lt_fill(CURL *curl, const char *t, json_t *fields, int encode, char **buf,
    struct lt_outcome *o)
{
	const char	*p, *end, *val;
	char		 name[128], *enc = NULL;
	size_t		 len = 0, n, add;
	char		*out = NULL, *nb;

	for (p = t; *p != '\0'; p = end) {
		if (strncmp(p, "{{", 2) == 0 &&
		    (end = strstr(p + 2, "}}")) != NULL &&
		    (size_t)(end - p - 2) < sizeof(name)) {
			memcpy(name, p + 2, end - p - 2);
			name[end - p - 2] = '\0';
			end += 2;
			if ((val = json_string_value(json_object_get(fields,
			    name))) == NULL) {
				proto_wipe_free(out);
				return lt_fail(o, "the tenant has no field '%s'",
				    name);
			}
			if (encode && (enc = curl_easy_escape(curl, val, 0)) ==
			    NULL)
				goto oom;
			if (encode)
				val = enc;
			add = strlen(val);
		} else {
			end = p + 1;
			val = p;
			add = 1;
		}
		n = len + add + 1;
		if (n > LT_URL_MAX * 8 || (nb = util_wipe_realloc(out, n)) ==
		    NULL)
			goto oom;
		out = nb;
		memcpy(out + len, val, add);
		len += add;
		out[len] = '\0';
		if (enc != NULL) {
			curl_free(enc);
			enc = NULL;
		}
	}
	if (out == NULL && (out = util_wipe_realloc(NULL, 1)) != NULL)
		out[0] = '\0';
	if (out == NULL)
		goto oom;
	*buf = out;
	return 0;
oom:
	if (enc != NULL)
		curl_free(enc);
	proto_wipe_free(out);
	return lt_fail(o, "%s", "out of memory");
}

static int
lt_loopback(const char *host)
{
	return strcmp(host, "127.0.0.1") == 0 ||
	    strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0;
}

/*
 * The filled URL is checked again (a value could have changed its shape):
 * https, or http to a loopback host; no user or password.  *http is set
 * for a loopback http URL.
 */
static int
lt_url_check(const char *url, int *http, struct lt_outcome *o)
{
	CURLU	*u;
	char	*scheme = NULL, *host = NULL, *user = NULL, *pw = NULL;
	int	 rv = -1;

	if ((u = curl_url()) == NULL)
		return lt_fail(o, "%s", "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		lt_fail(o, "%s", "the test's url is not a valid URL once "
		    "filled in");
		goto done;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		lt_fail(o, "%s", "the test's url has no scheme or host");
		goto done;
	}
	(void)curl_url_get(u, CURLUPART_USER, &user, 0);
	(void)curl_url_get(u, CURLUPART_PASSWORD, &pw, 0);
	if (user != NULL || pw != NULL)
		lt_fail(o, "%s", "the test's url holds a user name once "
		    "filled in");
	else if (strcmp(scheme, "https") == 0) {
		*http = 0;
		rv = 0;
	} else if (strcmp(scheme, "http") == 0 && lt_loopback(host)) {
		*http = 1;
		rv = 0;
	} else
		lt_fail(o, "%s", "the test's url must be https (http only to "
		    "a loopback host)");
done:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(pw);
	curl_url_cleanup(u);
	return rv;
}

/* The host a redirect pointed at, never its path or query. */
static void
lt_redirect_reason(CURL *curl, struct lt_outcome *o)
{
	CURLU	*u;
	char	*loc = NULL, *host = NULL;

	(void)curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &loc);
	if (loc != NULL && (u = curl_url()) != NULL) {
		if (curl_url_set(u, CURLUPART_URL, loc, 0) == CURLUE_OK)
			(void)curl_url_get(u, CURLUPART_HOST, &host, 0);
		curl_url_cleanup(u);
	}
	o->lo_pass = 0;
	snprintf(o->lo_reason, sizeof(o->lo_reason), "%ld %s, redirect to "
	    "%.100s not followed", o->lo_status,
	    lt_status_text(o->lo_status) != NULL ?
	    lt_status_text(o->lo_status) : "Redirect",
	    host != NULL ? host : "an unparsable location");
	curl_free(host);
}

/* Headers, each "Name: filled value" on one line. */
static int
lt_headers(CURL *curl, json_t *headers, json_t *fields,
    struct curl_slist **list, struct lt_outcome *o)
{
	const char		*name;
	json_t			*v;
	char			*val = NULL, *line;
	size_t			 n;
	struct curl_slist	*nl;

	json_object_foreach(headers, name, v) {
		if (!json_is_string(v))
			return lt_fail(o, "header '%.64s' is not a string",
			    name);
		if (lt_fill(curl, json_string_value(v), fields, 0, &val, o) ==
		    -1)
			return -1;
		if (strpbrk(val, "\r\n") != NULL) {
			proto_wipe_free(val);
			return lt_fail(o, "a field in header '%.64s' holds a "
			    "line break", name);
		}
		n = strlen(name) + strlen(val) + 3;
		if ((line = util_wipe_realloc(NULL, n)) == NULL) {
			proto_wipe_free(val);
			return lt_fail(o, "%s", "out of memory");
		}
		snprintf(line, n, "%s: %s", name, val);
		proto_wipe_free(val);
		nl = curl_slist_append(*list, line);
		proto_wipe_free(line);
		if (nl == NULL)
			return lt_fail(o, "%s", "out of memory");
		*list = nl;
	}
	return 0;
}

static int
lt_expected(json_t *expect, long status)
{
	json_t	*v;
	size_t	 i;

	json_array_foreach(expect, i, v)
		if (json_is_integer(v) && json_integer_value(v) == status)
			return 1;
	return 0;
}

/* Runs the job's request; o says how it went. */
static void
lt_run(json_t *job, struct lt_outcome *o)
{
	json_t			*test, *fields, *expect, *headers;
	const char		*method, *url_t;
	char			*url = NULL;
	struct curl_slist	*hdrs = NULL;
	CURL			*curl;
	CURLcode		 cc;
	long			 cto, to;
	int			 http = 0;

	test = json_object_get(job, "test");
	fields = json_object_get(job, "fields");
	method = json_string_value(json_object_get(test, "method"));
	url_t = json_string_value(json_object_get(test, "url"));
	expect = json_object_get(test, "expect_status");
	headers = json_object_get(test, "headers");
	cto = (long)json_integer_value(json_object_get(job,
	    "connect_timeout"));
	to = (long)json_integer_value(json_object_get(job, "timeout"));
	if (!json_is_object(fields) || method == NULL || url_t == NULL ||
	    !json_is_array(expect) || (headers != NULL &&
	    !json_is_object(headers)) || cto <= 0 || to <= 0) {
		lt_fail(o, "%s", "malformed job");
		return;
	}
	if ((curl = curl_easy_init()) == NULL) {
		lt_fail(o, "%s", "cannot initialise libcurl");
		return;
	}
	if (lt_fill(curl, url_t, fields, 1, &url, o) == -1 ||
	    lt_url_check(url, &http, o) == -1 ||
	    (headers != NULL && lt_headers(curl, headers, fields, &hdrs,
	    o) == -1))
		goto done;

	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
	} else if (strcmp(method, "GET") != 0) {
		lt_fail(o, "%s", "the test's method is not GET, POST or HEAD");
		goto done;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	/* A redirect is reported, never followed: it would carry the key. */
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, http ? "http" : "https");
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, cto);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, to);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	/* A loopback stand-in is never reached through a proxy. */
	if (http)
		curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_USERAGENT,
	    "wfvault-test/" PROTO_SERVER_VERSION);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, lt_discard);

	cc = curl_easy_perform(curl);
	(void)curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &o->lo_status);
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		o->lo_status = 0;
		o->lo_pass = 0;
		snprintf(o->lo_reason, sizeof(o->lo_reason),
		    "timeout after %ld s", to);
	} else if (cc != CURLE_OK) {
		/* The generic text: the error buffer may quote the URL. */
		o->lo_status = 0;
		lt_fail(o, "%s", curl_easy_strerror(cc));
	} else if (lt_expected(expect, o->lo_status)) {
		o->lo_pass = 1;
		snprintf(o->lo_reason, sizeof(o->lo_reason), "%ld%s%s",
		    o->lo_status, lt_status_text(o->lo_status) ? " " : "",
		    lt_status_text(o->lo_status) ? lt_status_text(o->lo_status) :
		    "");
	} else if (o->lo_status >= 300 && o->lo_status < 400)
		lt_redirect_reason(curl, o);
	else {
		o->lo_pass = 0;
		snprintf(o->lo_reason, sizeof(o->lo_reason), "%ld%s%s",
		    o->lo_status, lt_status_text(o->lo_status) ? " " : "",
		    lt_status_text(o->lo_status) ? lt_status_text(o->lo_status) :
		    "");
	}
done:
	curl_slist_free_all(hdrs);
	proto_wipe_free(url);
	curl_easy_cleanup(curl);
}

/* Reads all of stdin, at most LT_JOB_MAX bytes, into a wiped buffer. */
static char *
lt_read_job(size_t *lenp)
{
	char	*buf = NULL, *nb;
	size_t	 len = 0, cap = 0;
	ssize_t	 n;

	for (;;) {
		if (len == cap) {
			if (cap >= LT_JOB_MAX ||
			    (nb = util_wipe_realloc(buf, cap + 65536)) == NULL)
				goto fail;
			buf = nb;
			cap += 65536;
		}
		if ((n = read(STDIN_FILENO, buf + len, cap - len)) == -1)
			goto fail;
		if (n == 0)
			break;
		len += n;
	}
	*lenp = len;
	return buf;
fail:
	proto_wipe_free(buf);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct rlimit		 rl = { 0, 0 };
	struct lt_outcome	 o;
	json_t			*job = NULL, *answer;
	char			*buf;
	size_t			 len = 0;
	int			 rv = LT_EXIT_ERROR;

	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)signal(SIGPIPE, SIG_IGN);
	proto_json_init();
	memset(&o, 0, sizeof(o));
	if (argc != 1) {
		fprintf(stderr, "usage: wfvault-test <JOB (run by wfvault "
		    "test, see wfvault(1))\n");
		return LT_EXIT_ERROR;
	}
	if (util_curl_init(o.lo_reason, sizeof(o.lo_reason)) == -1) {
		fprintf(stderr, "wfvault-test: %s\n", o.lo_reason);
		return LT_EXIT_ERROR;
	}
	if ((buf = lt_read_job(&len)) == NULL) {
		fprintf(stderr, "wfvault-test: cannot read the job\n");
		goto done;
	}
	job = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	proto_wipe_free(buf);
	if (!json_is_object(job)) {
		fprintf(stderr, "wfvault-test: the job is not a JSON object\n");
		goto done;
	}
	lt_run(job, &o);
	json_decref(job);
	job = NULL;
	answer = json_pack("{s:s,s:o,s:s}", "result", o.lo_pass ? "pass" :
	    "fail", "status", o.lo_status > 0 ? json_integer(o.lo_status) :
	    json_null(), "reason", o.lo_reason);
	if (answer == NULL || json_dumpf(answer, stdout, JSON_COMPACT) == -1 ||
	    fputc('\n', stdout) == EOF || fflush(stdout) == EOF) {
		fprintf(stderr, "wfvault-test: cannot write the outcome\n");
		json_decref(answer);
		goto done;
	}
	json_decref(answer);
	rv = o.lo_pass ? LT_EXIT_PASS : LT_EXIT_FAIL;
done:
	json_decref(job);
	curl_global_cleanup();
	return rv;
}
