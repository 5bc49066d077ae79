/*
 * The configuration-file parser shared by wfvaultd and wfvault-sync:
 * "keyword value" lines, '#' comments, a keyword table per program,
 * errors as "file:line: message".  Nothing here exits or logs.
 */
#ifndef WFVAULT_CONFIG_H
#define WFVAULT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum conf_type {
	CONF_STRING,	/* char * (malloc'd) at ck_offset; non-empty */
	CONF_PATH,	/* char * at ck_offset; absolute path */
	CONF_UINT,	/* uint64_t at ck_offset; decimal, ck_min..ck_max */
	CONF_SIZE,	/* uint64_t bytes; 64K, 16M, 1G, 1T suffixes (1024) */
	CONF_DURATION,	/* uint64_t seconds; s, m, h, d suffixes */
	CONF_MODE,	/* uint64_t octal file mode 0..0777 */
	CONF_CUSTOM	/* ck_custom(obj, value, err, errlen) */
};

#define CONF_ONCE	0x01	/* a second occurrence is an error */

struct conf_keyword {
	const char	*ck_name;
	enum conf_type	 ck_type;
	size_t		 ck_offset;
	uint64_t	 ck_min;
	uint64_t	 ck_max;
	int		 ck_flags;
	/* For CONF_CUSTOM: returns 0, or -1 with a message in err. */
	int		(*ck_custom)(void *obj, const char *value, char *err,
			    size_t errlen);
};

/*
 * Parses path with table (terminated by an entry whose ck_name is NULL)
 * into obj.  Returns 0, or -1 with "path:line: message" (or
 * "path: strerror") in err.  A CONF_STRING/CONF_PATH member that already
 * holds a string is freed when the keyword sets it again.
 */
int	conf_parse_file(const char *path, const struct conf_keyword *table,
	    void *obj, char *err, size_t errlen);
/* The same over a buffer; name is used in messages.  buf need not end in NUL. */
int	conf_parse_buffer(const char *name, const char *buf, size_t len,
	    const struct conf_keyword *table, void *obj, char *err,
	    size_t errlen);
/* Frees the strings that table's CONF_STRING/CONF_PATH members hold. */
void	conf_free_strings(const struct conf_keyword *table, void *obj);

/*
 * Number helpers (strtonum style, no atoi): 0 or -1 with a reason in err.
 */
int	conf_parse_uint(const char *s, uint64_t min, uint64_t max,
	    uint64_t *out, char *err, size_t errlen);
int	conf_parse_size(const char *s, uint64_t min, uint64_t max,
	    uint64_t *out, char *err, size_t errlen);
int	conf_parse_duration(const char *s, uint64_t min, uint64_t max,
	    uint64_t *out, char *err, size_t errlen);

#endif /* WFVAULT_CONFIG_H */
