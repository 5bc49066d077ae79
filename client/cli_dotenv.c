/*
 * The .env reader of wfvault import: the grammar dotenv reads (export
 * prefixes, comments, single and double quotes), with errors that name
 * the line and never what is on it.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "wfvault.h"

/*
 * .env parsing, as dotenv reads it.  The parser keeps a position in the
 * buffer and the line number, so an error can name the line without
 * repeating what is on it.
 */
struct env_parse {
	const char	*ep_p;
	const char	*ep_end;
	int		 ep_line;
};

static int
env_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static void
env_skip_blanks(struct env_parse *ep)
{
	while (ep->ep_p < ep->ep_end && env_blank(*ep->ep_p))
		ep->ep_p++;
}

/* Skips to after the end of the current line. */
static void
env_skip_line(struct env_parse *ep)
{
	while (ep->ep_p < ep->ep_end && *ep->ep_p != '\n')
		ep->ep_p++;
	if (ep->ep_p < ep->ep_end) {
		ep->ep_p++;
		ep->ep_line++;
	}
}

/* A growing value buffer that is wiped whenever it moves or goes. */
struct env_buf {
	char	*eb_buf;
	size_t	 eb_len;
	size_t	 eb_cap;
};

static void
env_buf_free(struct env_buf *eb)
{
	if (eb->eb_buf != NULL) {
		explicit_bzero(eb->eb_buf, eb->eb_cap);
		free(eb->eb_buf);
	}
	eb->eb_buf = NULL;
	eb->eb_len = eb->eb_cap = 0;
}

/*
 * One buffer for every value, as large as the whole input (which bounds
 * any value), so it never moves and leaves no copy behind.
 */
static int
env_buf_init(struct env_buf *eb, size_t cap)
{
	eb->eb_len = 0;
	eb->eb_cap = cap + 1;
	if ((eb->eb_buf = calloc(1, eb->eb_cap)) == NULL)
		return -1;
	return 0;
}

static void
env_buf_add(struct env_buf *eb, char c)
{
	/* A value is never longer than the input: nothing is dropped. */
	if (eb->eb_len + 1 < eb->eb_cap)
		eb->eb_buf[eb->eb_len++] = c;
}

/* After a closing quote: blanks, maybe a comment, then the line's end. */
static int
env_after_quote(struct env_parse *ep, int line, struct cli_error *err)
{
	env_skip_blanks(ep);
	if (ep->ep_p < ep->ep_end && *ep->ep_p == '#')
		env_skip_line(ep);
	else if (ep->ep_p < ep->ep_end && *ep->ep_p != '\n')
		return cli_fail(err, CLI_EXIT_USAGE, "line %d: unexpected text "
		    "after a quoted value; nothing stored", line);
	else
		env_skip_line(ep);
	return 0;
}

/*
 * One value, after the '=' and the blanks that follow it: single quotes
 * are literal; double quotes take \n \r \t \" \\ \$ \` (any other
 * backslash stays, as in sh) and may span lines; an unquoted value ends
 * at the line's end or at a '#' after a blank, trailing blanks trimmed.
 */
static int
env_value(struct env_parse *ep, struct env_buf *eb, int line,
    struct cli_error *err)
{
	char	q, c;

	if (ep->ep_p < ep->ep_end && (*ep->ep_p == '\'' || *ep->ep_p == '"')) {
		q = *ep->ep_p++;
		for (;;) {
			if (ep->ep_p >= ep->ep_end)
				return cli_fail(err, CLI_EXIT_USAGE,
				    "line %d: the quote is never closed; "
				    "nothing stored", line);
			c = *ep->ep_p++;
			if (c == q)
				break;
			if (c == '\n')
				ep->ep_line++;
			if (c == '\\' && q == '"' && ep->ep_p < ep->ep_end) {
				switch (*ep->ep_p) {
				case 'n':
					c = '\n';
					break;
				case 'r':
					c = '\r';
					break;
				case 't':
					c = '\t';
					break;
				case '"':
				case '\\':
				case '$':
				case '`':
					c = *ep->ep_p;
					break;
				default:
					env_buf_add(eb, c);
					continue;
				}
				ep->ep_p++;
			}
			env_buf_add(eb, c);
		}
		return env_after_quote(ep, line, err);
	}
	while (ep->ep_p < ep->ep_end && *ep->ep_p != '\n') {
		c = *ep->ep_p;
		/* '#' after '=' itself is text: KEY=#abc is "#abc". */
		if (c == '#' && env_blank(ep->ep_p[-1]))
			break;
		env_buf_add(eb, c);
		ep->ep_p++;
	}
	while (eb->eb_len > 0 && env_blank(eb->eb_buf[eb->eb_len - 1]))
		eb->eb_len--;
	env_skip_line(ep);
	return 0;
}

/*
 * Parses an .env text into a new object of string fields.  A name is
 * lower-cased and must then be a field name; one given twice is refused
 * (OPENAI_KEY and openai_key would silently collide).
 */
int
env_parse(const char *buf, size_t len, json_t **out, struct cli_error *err)
{
	struct env_parse	 ep = { buf, buf + len, 1 };
	struct env_buf		 eb = { NULL, 0, 0 };
	json_t			*obj, *s;
	char			 name[PROTO_FIELD_MAX + 2], msg[256];
	size_t			 n;
	int			 line, rv = -1;

	*out = NULL;
	if ((obj = json_object()) == NULL || env_buf_init(&eb, len) == -1) {
		json_decref(obj);
		return cli_fail(err, CLI_EXIT_ERROR, "out of memory");
	}
	while (ep.ep_p < ep.ep_end) {
		env_skip_blanks(&ep);
		line = ep.ep_line;
		if (ep.ep_p >= ep.ep_end)
			break;
		if (*ep.ep_p == '\n' || *ep.ep_p == '#') {
			env_skip_line(&ep);
			continue;
		}
		if (ep.ep_end - ep.ep_p > 6 &&
		    strncmp(ep.ep_p, "export", 6) == 0 &&
		    env_blank(ep.ep_p[6])) {
			ep.ep_p += 6;
			env_skip_blanks(&ep);
		}
		for (n = 0; ep.ep_p < ep.ep_end && (isalnum((unsigned char)
		    *ep.ep_p) || *ep.ep_p == '_' || *ep.ep_p == '.' ||
		    *ep.ep_p == '-'); ep.ep_p++)
			if (n < sizeof(name) - 1)
				name[n++] = tolower((unsigned char)*ep.ep_p);
		name[n] = '\0';
		env_skip_blanks(&ep);
		if (n == 0 || ep.ep_p >= ep.ep_end || *ep.ep_p != '=') {
			cli_fail(err, CLI_EXIT_USAGE, "line %d: expected "
			    "NAME=value; nothing stored", line);
			goto out;
		}
		ep.ep_p++;
		if (proto_field_valid(name, msg, sizeof(msg)) == -1) {
			cli_fail(err, CLI_EXIT_USAGE, "line %d: the name is "
			    "not a valid field name once lower-cased "
			    "([a-z_][a-z0-9_]{0,63}); nothing stored", line);
			goto out;
		}
		if (json_object_get(obj, name) != NULL) {
			cli_fail(err, CLI_EXIT_USAGE, "line %d: %s is given "
			    "twice; nothing stored", line, name);
			goto out;
		}
		env_skip_blanks(&ep);
		explicit_bzero(eb.eb_buf, eb.eb_len);
		eb.eb_len = 0;
		if (env_value(&ep, &eb, line, err) == -1)
			goto out;
		if (!value_utf8_valid(eb.eb_buf, eb.eb_len)) {
			cli_fail(err, CLI_EXIT_USAGE, "line %d: the value is "
			    "not valid UTF-8 text (or holds a NUL byte); "
			    "nothing stored", line);
			goto out;
		}
		if ((s = json_stringn(eb.eb_buf, eb.eb_len)) == NULL ||
		    json_object_set_new(obj, name, s) == -1) {
			cli_fail(err, CLI_EXIT_ERROR, "out of memory");
			goto out;
		}
	}
	if (json_object_size(obj) == 0) {
		cli_fail(err, CLI_EXIT_USAGE, "no NAME=value lines in the "
		    "input; nothing stored");
		goto out;
	}
	*out = obj;
	obj = NULL;
	rv = 0;
out:
	env_buf_free(&eb);
	json_decref(obj);
	return rv;
}

