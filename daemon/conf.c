/*
 * wfvaultd's configuration: its keyword table, the defaults, and the checks
 * that involve more than one keyword.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "wfvaultd.h"

#define KIB	((uint64_t)1 << 10)
#define MIB	((uint64_t)1 << 20)
#define GIB	((uint64_t)1 << 30)
#define TIB	((uint64_t)1 << 40)

#define DC_DEFAULT_DATA_DIR	"/var/lib/wfvault"

static int	dc_set_socket_group(void *, const char *, char *, size_t);
static int	dc_set_credential(void *, const char *, char *, size_t);
static int	dc_set_next_credential(void *, const char *, char *, size_t);
static int	dc_set_audit_log(void *, const char *, char *, size_t);
static int	dc_add_allow(void *, const char *, char *, size_t);
static int	dc_add_integrations_dir(void *, const char *, char *, size_t);

#define DC_OFF(m)	offsetof(struct daemon_conf, m)

static const struct conf_keyword daemon_conf_keywords[] = {
	{ "socket", CONF_PATH, DC_OFF(dc_socket), 0, 0, CONF_ONCE, NULL },
	{ "socket_mode", CONF_MODE, DC_OFF(dc_socket_mode), 0, 0777,
	    CONF_ONCE, NULL },
	{ "socket_group", CONF_CUSTOM, 0, 0, 0, CONF_ONCE,
	    dc_set_socket_group },
	{ "data_dir", CONF_PATH, DC_OFF(dc_data_dir), 0, 0, CONF_ONCE, NULL },
	{ "master_key_file", CONF_PATH, DC_OFF(dc_master_key_file), 0, 0,
	    CONF_ONCE, NULL },
	{ "master_key_credential", CONF_CUSTOM, 0, 0, 0, CONF_ONCE,
	    dc_set_credential },
	{ "master_key_next_file", CONF_PATH, DC_OFF(dc_master_key_next_file),
	    0, 0, CONF_ONCE, NULL },
	{ "master_key_next_credential", CONF_CUSTOM, 0, 0, 0, CONF_ONCE,
	    dc_set_next_credential },
	{ "backup_dir", CONF_PATH, DC_OFF(dc_backup_dir), 0, 0, CONF_ONCE,
	    NULL },
	{ "map_size", CONF_SIZE, DC_OFF(dc_map_size), MIB, TIB, CONF_ONCE,
	    NULL },
	{ "max_connections", CONF_UINT, DC_OFF(dc_max_connections), 1, 65536,
	    CONF_ONCE, NULL },
	{ "max_connections_per_uid", CONF_UINT,
	    DC_OFF(dc_max_connections_per_uid), 1, 65536, CONF_ONCE, NULL },
	{ "max_message_bytes", CONF_SIZE, DC_OFF(dc_max_message_bytes),
	    4 * KIB, 64 * MIB, CONF_ONCE, NULL },
	{ "max_config_bytes", CONF_SIZE, DC_OFF(dc_max_config_bytes), KIB,
	    16 * MIB, CONF_ONCE, NULL },
	{ "max_output_bytes", CONF_SIZE, DC_OFF(dc_max_output_bytes),
	    64 * KIB, GIB, CONF_ONCE, NULL },
	{ "max_output_total", CONF_SIZE, DC_OFF(dc_max_output_total),
	    64 * KIB, TIB, CONF_ONCE, NULL },
	{ "idle_timeout", CONF_DURATION, DC_OFF(dc_idle_timeout), 1, 86400,
	    CONF_ONCE, NULL },
	{ "message_timeout", CONF_DURATION, DC_OFF(dc_message_timeout), 1,
	    3600, CONF_ONCE, NULL },
	{ "ungranted_timeout", CONF_DURATION, DC_OFF(dc_ungranted_timeout),
	    1, 3600, CONF_ONCE, NULL },
	{ "keep_versions", CONF_UINT, DC_OFF(dc_keep_versions), 1, 1000,
	    CONF_ONCE, NULL },
	{ "feed_retain", CONF_UINT, DC_OFF(dc_feed_retain), 1, 1000000000,
	    CONF_ONCE, NULL },
	{ "audit_log", CONF_CUSTOM, 0, 0, 0, CONF_ONCE, dc_set_audit_log },
	{ "allow", CONF_CUSTOM, 0, 0, 0, 0, dc_add_allow },
	{ "integrations_dir", CONF_CUSTOM, 0, 0, 0, 0,
	    dc_add_integrations_dir },
	{ NULL, 0, 0, 0, 0, 0, NULL }
};

/* Replaces *sp by a copy of value, or by NULL when value is "none". */
static int
dc_set_optional(char **sp, const char *value, char *err, size_t errlen)
{
	char	*s = NULL;

	if (strcmp(value, "none") != 0 && (s = strdup(value)) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	free(*sp);
	*sp = s;
	return 0;
}

static int
dc_set_socket_group(void *obj, const char *value, char *err, size_t errlen)
{
	struct daemon_conf	*conf = obj;

	/* A group name is one word; main resolves it when it binds. */
	if (strpbrk(value, " \t:/") != NULL) {
		snprintf(err, errlen, "not a group name (one word, or none)");
		return -1;
	}
	return dc_set_optional(&conf->dc_socket_group, value, err, errlen);
}

/* A systemd credential name is a file name in $CREDENTIALS_DIRECTORY. */
static int
dc_credential(char **sp, const char *value, char *err, size_t errlen)
{
	char	*s;

	if (strchr(value, '/') != NULL || strcmp(value, ".") == 0 ||
	    strcmp(value, "..") == 0 || strlen(value) > 255) {
		snprintf(err, errlen, "not a credential name (as in "
		    "LoadCredentialEncrypted=NAME:...)");
		return -1;
	}
	if ((s = strdup(value)) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	free(*sp);
	*sp = s;
	return 0;
}

static int
dc_set_credential(void *obj, const char *value, char *err, size_t errlen)
{
	struct daemon_conf	*conf = obj;

	return dc_credential(&conf->dc_master_key_credential, value, err,
	    errlen);
}

static int
dc_set_next_credential(void *obj, const char *value, char *err,
    size_t errlen)
{
	struct daemon_conf	*conf = obj;

	return dc_credential(&conf->dc_master_key_next_credential, value, err,
	    errlen);
}

static int
dc_set_audit_log(void *obj, const char *value, char *err, size_t errlen)
{
	struct daemon_conf	*conf = obj;

	if (strcmp(value, "none") != 0 && value[0] != '/') {
		snprintf(err, errlen, "must be an absolute path or none");
		return -1;
	}
	return dc_set_optional(&conf->dc_audit_log, value, err, errlen);
}

static int
dc_add_allow(void *obj, const char *value, char *err, size_t errlen)
{
	struct daemon_conf	*conf = obj;
	int			 rc;

	if ((rc = acl_add_rule(&conf->dc_acl, value, err, errlen)) ==
	    ACL_SKIPPED) {
		/* Start-up, reload and -n alike: said, not fatal. */
		log_warnx("allow %s: %s", value, err);
		err[0] = '\0';
		return 0;
	}
	return rc;
}

/*
 * Each one adds a catalog directory after the defaults (later ones win by
 * id); "none" drops the defaults and any given before it, so a test or a
 * site can say exactly which files are read.
 */
static int
dc_add_integrations_dir(void *obj, const char *value, char *err,
    size_t errlen)
{
	struct daemon_conf	*conf = obj;
	char			**dirs, *s;
	size_t			 i;

	if (strcmp(value, "none") == 0) {
		for (i = 0; i < conf->dc_integrations_ndirs; i++)
			free(conf->dc_integrations_dirs[i]);
		conf->dc_integrations_ndirs = 0;
		conf->dc_integrations_nodefault = 1;
		return 0;
	}
	if (value[0] != '/') {
		snprintf(err, errlen, "must be an absolute path or none");
		return -1;
	}
	if ((dirs = reallocarray(conf->dc_integrations_dirs,
	    conf->dc_integrations_ndirs + 1, sizeof(*dirs))) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	conf->dc_integrations_dirs = dirs;
	if ((s = strdup(value)) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	dirs[conf->dc_integrations_ndirs++] = s;
	return 0;
}

/* A size as the config file would write it, for messages. */
static const char *
dc_size(uint64_t v, char *buf, size_t len)
{
	if (v % MIB == 0)
		snprintf(buf, len, "%" PRIu64 "M", v / MIB);
	else if (v % KIB == 0)
		snprintf(buf, len, "%" PRIu64 "K", v / KIB);
	else
		snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

static int
dc_defaults(struct daemon_conf *conf, const char *name, char *err,
    size_t errlen)
{
	memset(conf, 0, sizeof(*conf));
	conf->dc_acl = (struct acl)ACL_INIT;
	conf->dc_acl.acl_self = geteuid();
	conf->dc_socket_mode = 0660;
	conf->dc_map_size = GIB;
	conf->dc_max_connections = 1024;
	conf->dc_max_connections_per_uid = 64;
	conf->dc_max_message_bytes = PROTO_DEFAULT_MAX_MESSAGE;
	conf->dc_max_config_bytes = PROTO_DEFAULT_MAX_CONFIG;
	conf->dc_max_output_bytes = 16 * MIB;
	conf->dc_max_output_total = 64 * MIB;
	conf->dc_idle_timeout = 300;
	conf->dc_message_timeout = 10;
	conf->dc_ungranted_timeout = 10;
	conf->dc_keep_versions = 10;
	conf->dc_feed_retain = 100000;
	if ((conf->dc_socket = strdup(PROTO_DEFAULT_SOCKET)) == NULL ||
	    (conf->dc_data_dir = strdup(DC_DEFAULT_DATA_DIR)) == NULL) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

static int
dc_check(struct daemon_conf *conf, const char *name, char *err, size_t errlen)
{
	struct sockaddr_un	sun;
	char			a[32], b[32];

	if (conf->dc_master_key_file == NULL &&
	    conf->dc_master_key_credential == NULL) {
		snprintf(err, errlen, "%s: set master_key_file or "
		    "master_key_credential", name);
		return -1;
	}
	if (conf->dc_master_key_file != NULL &&
	    conf->dc_master_key_credential != NULL) {
		snprintf(err, errlen, "%s: set only one of master_key_file "
		    "and master_key_credential", name);
		return -1;
	}
	if (conf->dc_master_key_next_file != NULL &&
	    conf->dc_master_key_next_credential != NULL) {
		snprintf(err, errlen, "%s: set only one of master_key_next_file "
		    "and master_key_next_credential", name);
		return -1;
	}
	if (conf->dc_master_key_file != NULL &&
	    conf->dc_master_key_next_file != NULL &&
	    strcmp(conf->dc_master_key_file,
	    conf->dc_master_key_next_file) == 0) {
		snprintf(err, errlen, "%s: master_key_next_file must name "
		    "another file than master_key_file", name);
		return -1;
	}
	if (conf->dc_master_key_credential != NULL &&
	    conf->dc_master_key_next_credential != NULL &&
	    strcmp(conf->dc_master_key_credential,
	    conf->dc_master_key_next_credential) == 0) {
		snprintf(err, errlen, "%s: master_key_next_credential must "
		    "name another credential than master_key_credential", name);
		return -1;
	}
	if (strlen(conf->dc_socket) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long (%zu bytes, "
		    "at most %zu)", name, strlen(conf->dc_socket),
		    sizeof(sun.sun_path) - 1);
		return -1;
	}
	/* A put carries the whole config inside its envelope. */
	if (conf->dc_max_config_bytes >= conf->dc_max_message_bytes) {
		snprintf(err, errlen, "%s: max_config_bytes (%s) must be "
		    "smaller than max_message_bytes (%s)", name,
		    dc_size(conf->dc_max_config_bytes, a, sizeof(a)),
		    dc_size(conf->dc_max_message_bytes, b, sizeof(b)));
		return -1;
	}
	/* A get of a whole config must fit the connection's output queue. */
	if (conf->dc_max_config_bytes >= conf->dc_max_output_bytes) {
		snprintf(err, errlen, "%s: max_config_bytes (%s) must be "
		    "smaller than max_output_bytes (%s)", name,
		    dc_size(conf->dc_max_config_bytes, a, sizeof(a)),
		    dc_size(conf->dc_max_output_bytes, b, sizeof(b)));
		return -1;
	}
	return 0;
}

int
daemon_conf_load_buffer(const char *name, const char *buf, size_t len,
    struct daemon_conf *conf, char *err, size_t errlen)
{
	if (dc_defaults(conf, name, err, errlen) == -1 ||
	    conf_parse_buffer(name, buf, len, daemon_conf_keywords, conf, err,
	    errlen) == -1 ||
	    dc_check(conf, name, err, errlen) == -1) {
		daemon_conf_release(conf);
		return -1;
	}
	return 0;
}

int
daemon_conf_load(const char *path, struct daemon_conf *conf, char *err,
    size_t errlen)
{
	if (dc_defaults(conf, path, err, errlen) == -1 ||
	    conf_parse_file(path, daemon_conf_keywords, conf, err,
	    errlen) == -1 ||
	    dc_check(conf, path, err, errlen) == -1) {
		daemon_conf_release(conf);
		return -1;
	}
	return 0;
}

void
daemon_conf_release(struct daemon_conf *conf)
{
	size_t	i;

	conf_free_strings(daemon_conf_keywords, conf);
	free(conf->dc_socket_group);
	conf->dc_socket_group = NULL;
	free(conf->dc_master_key_credential);
	conf->dc_master_key_credential = NULL;
	free(conf->dc_master_key_next_credential);
	conf->dc_master_key_next_credential = NULL;
	free(conf->dc_audit_log);
	conf->dc_audit_log = NULL;
	for (i = 0; i < conf->dc_integrations_ndirs; i++)
		free(conf->dc_integrations_dirs[i]);
	free(conf->dc_integrations_dirs);
	conf->dc_integrations_dirs = NULL;
	conf->dc_integrations_ndirs = 0;
	acl_release(&conf->dc_acl);
}
