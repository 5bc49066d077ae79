/*
 * The "keyword value" configuration parser shared by wfvaultd and
 * wfvault-sync: it splits lines, finds each keyword in the caller's table
 * and stores the range-checked value into the caller's struct.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define CONF_LINE_MAX	4096		/* bytes, without the newline */
#define CONF_FILE_MAX	(16 << 20)	/* a config file is never this big */
#define CONF_QUOTE_MAX	64		/* longest word quoted in a message */

#define EN_DASH		"\xe2\x80\x93"

static const struct {
	char		su_suffix;
	uint64_t	su_mult;
} conf_size_units[] = {
	{ 'T', 1ULL << 40 },
	{ 'G', 1ULL << 30 },
	{ 'M', 1ULL << 20 },
	{ 'K', 1ULL << 10 },
}, conf_duration_units[] = {
	{ 'd', 86400 },
	{ 'h', 3600 },
	{ 'm', 60 },
	{ 's', 1 },
};

static void	conf_err(char *, size_t, const char *, ...)
		    __attribute__((__format__(printf, 3, 4)));

static void
conf_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
conf_is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * Puts s into buf as "'s'" when it is printable ASCII (truncated with
 * "..." when long), else as "(unprintable)": messages end up in terminals
 * and the journal, where raw control bytes do not belong.
 */
static const char *
conf_quote(const char *s, char *buf, size_t len)
{
	size_t	i, n;

	n = strlen(s);
	for (i = 0; i < n; i++) {
		if (!isprint((unsigned char)s[i]) || (unsigned char)s[i] > 0x7e)
			break;
	}
	if (i < n) {
		snprintf(buf, len, "(unprintable)");
		return buf;
	}
	if (n > CONF_QUOTE_MAX)
		snprintf(buf, len, "'%.*s...'", CONF_QUOTE_MAX, s);
	else
		snprintf(buf, len, "'%s'", s);
	return buf;
}

/* Parses the leading digits of s; *end points after them. */
static int
conf_digits(const char *s, int base, uint64_t *out, const char **end,
    char *err, size_t errlen, const char *what)
{
	char			 q[CONF_QUOTE_MAX + 16];
	char			*e;
	unsigned long long	 v;

	/* strtoull would accept blanks, a sign and "0x"; we want digits. */
	if (!isdigit((unsigned char)s[0])) {
		conf_err(err, errlen, "%s is not %s", conf_quote(s, q,
		    sizeof(q)), what);
		return -1;
	}
	errno = 0;
	v = strtoull(s, &e, base);
	if (errno == ERANGE) {
		*out = UINT64_MAX;
		*end = e;
		return 1;
	}
	if (errno != 0 || e == s) {
		conf_err(err, errlen, "%s is not %s", conf_quote(s, q,
		    sizeof(q)), what);
		return -1;
	}
	*out = v;
	*end = e;
	return 0;
}

/* "1M", "64K", "3" for a byte count, as the size syntax would write it. */
static void
conf_format_size(uint64_t v, char *buf, size_t len)
{
	size_t	i;

	for (i = 0; i < sizeof(conf_size_units) / sizeof(conf_size_units[0]);
	    i++) {
		if (v != 0 && v % conf_size_units[i].su_mult == 0) {
			snprintf(buf, len, "%" PRIu64 "%c",
			    v / conf_size_units[i].su_mult,
			    conf_size_units[i].su_suffix);
			return;
		}
	}
	snprintf(buf, len, "%" PRIu64, v);
}

static void
conf_format_duration(uint64_t v, char *buf, size_t len)
{
	size_t	i;

	for (i = 0; i < sizeof(conf_duration_units) /
	    sizeof(conf_duration_units[0]); i++) {
		if (v != 0 && v % conf_duration_units[i].su_mult == 0) {
			snprintf(buf, len, "%" PRIu64 "%c",
			    v / conf_duration_units[i].su_mult,
			    conf_duration_units[i].su_suffix);
			return;
		}
	}
	snprintf(buf, len, "%" PRIu64 "s", v);
}

int
conf_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    char *err, size_t errlen)
{
	char		 q[CONF_QUOTE_MAX + 16];
	const char	*end;
	uint64_t	 v;
	int		 rc;

	if ((rc = conf_digits(s, 10, &v, &end, err, errlen,
	    "a decimal number")) == -1)
		return -1;
	if (*end != '\0') {
		conf_err(err, errlen, "%s is not a decimal number",
		    conf_quote(s, q, sizeof(q)));
		return -1;
	}
	if (rc == 1 || v < min || v > max) {
		conf_err(err, errlen, "%.*s is out of range (%" PRIu64
		    EN_DASH "%" PRIu64 ")", CONF_QUOTE_MAX, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/*
 * Shared by sizes and durations: digits, optional blanks, then an optional
 * unit letter (case-insensitive); a size's letter may be followed by "iB"
 * ("KiB").  Range messages print s unquoted: by then it is known to hold
 * only digits, blanks and a unit.
 */
static int
conf_parse_scaled(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    char *err, size_t errlen, int size)
{
	char		 q[CONF_QUOTE_MAX + 16], lo[32], hi[32];
	const char	*end, *what;
	uint64_t	 v, mult = 1;
	size_t		 i, n;
	int		 rc, over;

	what = size ? "a size (like 512K, 64M, 1G)" :
	    "a duration (like 30s, 5m, 1h, 1d)";
	if ((rc = conf_digits(s, 10, &v, &end, err, errlen, what)) == -1)
		return -1;
	over = rc == 1;
	while (conf_is_space((unsigned char)*end))
		end++;
	if (*end != '\0') {
		n = size ? sizeof(conf_size_units) / sizeof(conf_size_units[0]) :
		    sizeof(conf_duration_units) / sizeof(conf_duration_units[0]);
		for (i = 0; i < n; i++) {
			char	u = size ? conf_size_units[i].su_suffix :
			    conf_duration_units[i].su_suffix;

			if (tolower((unsigned char)*end) == tolower(
			    (unsigned char)u)) {
				mult = size ? conf_size_units[i].su_mult :
				    conf_duration_units[i].su_mult;
				break;
			}
		}
		if (i == n)
			goto bad;
		end++;
		if (size && strcasecmp(end, "iB") == 0)
			end += 2;
		if (*end != '\0')
			goto bad;
	}
	if (!over && v > UINT64_MAX / mult)
		over = 1;
	if (!over)
		v *= mult;
	if (over || v < min || v > max) {
		if (size) {
			conf_format_size(min, lo, sizeof(lo));
			conf_format_size(max, hi, sizeof(hi));
		} else {
			conf_format_duration(min, lo, sizeof(lo));
			conf_format_duration(max, hi, sizeof(hi));
		}
		conf_err(err, errlen, "%.*s is out of range (%s" EN_DASH "%s)",
		    CONF_QUOTE_MAX, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
bad:
	conf_err(err, errlen, "%s is not %s", conf_quote(s, q, sizeof(q)),
	    what);
	return -1;
}

int
conf_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    char *err, size_t errlen)
{
	return conf_parse_scaled(s, min, max, out, err, errlen, 1);
}

int
conf_parse_duration(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    char *err, size_t errlen)
{
	return conf_parse_scaled(s, min, max, out, err, errlen, 0);
}

static int
conf_parse_mode(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    char *err, size_t errlen)
{
	char		 q[CONF_QUOTE_MAX + 16];
	const char	*end;
	uint64_t	 v;
	size_t		 i;
	int		 rc;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '7')
			break;
	}
	if (i == 0 || s[i] != '\0') {
		conf_err(err, errlen, "%s is not an octal file mode (like 0660)",
		    conf_quote(s, q, sizeof(q)));
		return -1;
	}
	if ((rc = conf_digits(s, 8, &v, &end, err, errlen,
	    "an octal file mode (like 0660)")) == -1)
		return -1;
	if (rc == 1 || v < min || v > max) {
		conf_err(err, errlen, "%.*s is out of range (%04" PRIo64
		    EN_DASH "%04" PRIo64 ")", CONF_QUOTE_MAX, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* Sets one keyword's member of obj from value (non-empty, trimmed). */
static int
conf_set(const struct conf_keyword *ck, void *obj, const char *value,
    char *err, size_t errlen)
{
	char		*p = (char *)obj + ck->ck_offset;
	char		*s, **sp;
	uint64_t	 v, max;
	int		 rc;

	max = ck->ck_max != 0 ? ck->ck_max : UINT64_MAX;
	switch (ck->ck_type) {
	case CONF_PATH:
		if (value[0] != '/') {
			conf_err(err, errlen, "must be an absolute path "
			    "(starting with '/')");
			return -1;
		}
		/* FALLTHROUGH */
	case CONF_STRING:
		if ((s = strdup(value)) == NULL) {
			conf_err(err, errlen, "%s", strerror(errno));
			return -1;
		}
		sp = (char **)(void *)p;
		free(*sp);
		*sp = s;
		return 0;
	case CONF_UINT:
		rc = conf_parse_uint(value, ck->ck_min, max, &v, err, errlen);
		break;
	case CONF_SIZE:
		rc = conf_parse_size(value, ck->ck_min, max, &v, err, errlen);
		break;
	case CONF_DURATION:
		rc = conf_parse_duration(value, ck->ck_min, max, &v, err,
		    errlen);
		break;
	case CONF_MODE:
		if (ck->ck_max == 0 || ck->ck_max > 0777)
			max = 0777;
		rc = conf_parse_mode(value, ck->ck_min, max, &v, err, errlen);
		break;
	case CONF_CUSTOM:
		if (ck->ck_custom == NULL) {
			conf_err(err, errlen, "no handler for this keyword");
			return -1;
		}
		return ck->ck_custom(obj, value, err, errlen);
	default:
		conf_err(err, errlen, "bad keyword table entry");
		return -1;
	}
	if (rc == 0)
		memcpy(p, &v, sizeof(v));
	return rc;
}

/*
 * One line (len bytes, no newline).  A line holds "keyword value" where the
 * value is everything after the blanks that follow the keyword, up to the
 * end of the line minus trailing blanks: '#' only starts a comment at the
 * start of a line, so values are taken verbatim.
 */
static int
conf_parse_line(const char *name, size_t lineno, const char *raw, size_t len,
    const struct conf_keyword *table, size_t *seen, void *obj, char *err,
    size_t errlen)
{
	char			 line[CONF_LINE_MAX + 1], q[CONF_QUOTE_MAX + 16];
	char			 why[512];
	char			*kw, *value, *e;
	const struct conf_keyword *ck;
	size_t			 i;

	if (len > CONF_LINE_MAX) {
		conf_err(err, errlen, "%s:%zu: line is longer than %d bytes",
		    name, lineno, CONF_LINE_MAX);
		return -1;
	}
	if (memchr(raw, '\0', len) != NULL) {
		conf_err(err, errlen, "%s:%zu: NUL byte in line (is this a "
		    "text file?)", name, lineno);
		return -1;
	}
	memcpy(line, raw, len);
	line[len] = '\0';

	kw = line;
	while (conf_is_space((unsigned char)*kw))
		kw++;
	e = kw + strlen(kw);
	while (e > kw && conf_is_space((unsigned char)e[-1]))
		*--e = '\0';
	if (*kw == '\0' || *kw == '#')
		return 0;
	for (e = kw; *e != '\0'; e++) {
		if (iscntrl((unsigned char)*e) && *e != '\t') {
			conf_err(err, errlen, "%s:%zu: control character "
			    "0x%02x in line", name, lineno, (unsigned char)*e);
			return -1;
		}
	}

	value = kw;
	while (*value != '\0' && !conf_is_space((unsigned char)*value))
		value++;
	if (*value != '\0') {
		*value++ = '\0';
		while (conf_is_space((unsigned char)*value))
			value++;
	}

	for (i = 0; table[i].ck_name != NULL; i++) {
		if (strcmp(table[i].ck_name, kw) == 0)
			break;
	}
	if (table[i].ck_name == NULL) {
		conf_err(err, errlen, "%s:%zu: unknown keyword %s", name,
		    lineno, conf_quote(kw, q, sizeof(q)));
		return -1;
	}
	ck = &table[i];
	if (*value == '\0') {
		conf_err(err, errlen, "%s:%zu: '%s' needs a value", name,
		    lineno, ck->ck_name);
		return -1;
	}
	if ((ck->ck_flags & CONF_ONCE) && seen[i] != 0) {
		conf_err(err, errlen, "%s:%zu: '%s' is given twice (first on "
		    "line %zu)", name, lineno, ck->ck_name, seen[i]);
		return -1;
	}
	seen[i] = lineno;
	why[0] = '\0';
	if (conf_set(ck, obj, value, why, sizeof(why)) == -1) {
		conf_err(err, errlen, "%s:%zu: %s: %s", name, lineno,
		    ck->ck_name, why[0] != '\0' ? why : "bad value");
		return -1;
	}
	return 0;
}

int
conf_parse_buffer(const char *name, const char *buf, size_t len,
    const struct conf_keyword *table, void *obj, char *err, size_t errlen)
{
	const char	*p, *nl;
	size_t		*seen, n, lineno, linelen;
	int		 rc = 0;

	for (n = 0; table[n].ck_name != NULL; n++)
		;
	/* Line of each keyword's first occurrence, for CONF_ONCE. */
	if ((seen = calloc(n + 1, sizeof(*seen))) == NULL) {
		conf_err(err, errlen, "%s: %s", name, strerror(errno));
		return -1;
	}
	p = buf;
	for (lineno = 1; p < buf + len; lineno++) {
		if ((nl = memchr(p, '\n', buf + len - p)) != NULL)
			linelen = nl - p;
		else
			linelen = buf + len - p;
		if (conf_parse_line(name, lineno, p, linelen, table, seen,
		    obj, err, errlen) == -1) {
			rc = -1;
			break;
		}
		p += linelen;
		if (nl != NULL)
			p++;
	}
	free(seen);
	return rc;
}

int
conf_parse_file(const char *path, const struct conf_keyword *table,
    void *obj, char *err, size_t errlen)
{
	FILE	*f;
	char	*buf = NULL, *nbuf;
	size_t	 len = 0, cap = 0, n;
	int	 rc = -1, saved;

	if ((f = fopen(path, "re")) == NULL) {
		conf_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (cap - len < 4096) {
			if (cap >= CONF_FILE_MAX) {
				conf_err(err, errlen, "%s: file is larger "
				    "than %d MiB", path, CONF_FILE_MAX >> 20);
				goto out;
			}
			cap = cap == 0 ? 8192 : cap * 2;
			if ((nbuf = realloc(buf, cap)) == NULL) {
				conf_err(err, errlen, "%s: %s", path,
				    strerror(errno));
				goto out;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		saved = errno;
		conf_err(err, errlen, "%s: %s", path,
		    strerror(saved != 0 ? saved : EIO));
		goto out;
	}
	rc = conf_parse_buffer(path, buf, len, table, obj, err, errlen);
out:
	free(buf);
	fclose(f);
	return rc;
}

void
conf_free_strings(const struct conf_keyword *table, void *obj)
{
	char	**sp;
	size_t	  i;

	for (i = 0; table[i].ck_name != NULL; i++) {
		if (table[i].ck_type != CONF_STRING &&
		    table[i].ck_type != CONF_PATH)
			continue;
		sp = (char **)(void *)((char *)obj + table[i].ck_offset);
		free(*sp);
		*sp = NULL;
	}
}
