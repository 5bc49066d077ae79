/*
 * The wfvault wire contract: framing, JSON-RPC 2.0 envelope, method and
 * error tables, name validation, and the blocking client connection used by
 * wfvault and wfvault-sync.  Nothing in proto/ exits, aborts or logs.
 */
#ifndef WFVAULT_PROTO_H
#define WFVAULT_PROTO_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define PROTO_VERSION		1
#define PROTO_SERVER_NAME	"wfvaultd"
#define PROTO_SERVER_VERSION	"0.1.0"
#define PROTO_DEFAULT_SOCKET	"/run/wfvault/wfvault.sock"

/* Limits of the names (docs/protocol.md, "Requests and replies"). */
#define PROTO_TENANT_MAX	128
#define PROTO_FIELD_MAX		64

/* Defaults of the size limits both sides agree on. */
#define PROTO_DEFAULT_MAX_MESSAGE	(1024 * 1024)
#define PROTO_DEFAULT_MAX_CONFIG	(64 * 1024)

/* JSON-RPC 2.0 error codes and ours. */
#define PROTO_E_PARSE		(-32700)
#define PROTO_E_INVALID_REQUEST	(-32600)
#define PROTO_E_METHOD		(-32601)
#define PROTO_E_PARAMS		(-32602)
#define PROTO_E_INTERNAL	(-32603)
#define PROTO_E_DENIED		(-32001)
#define PROTO_E_NOT_FOUND	(-32002)
#define PROTO_E_CONFLICT	(-32003)
#define PROTO_E_TOO_LARGE	(-32004)
#define PROTO_E_UNAVAILABLE	(-32005)
#define PROTO_E_INTEGRITY	(-32006)
/* changes: the feed before the reader's position was trimmed; resync. */
#define PROTO_E_TRIMMED		(-32007)

/* Permission bits; the method table names the one each method needs. */
#define PERM_READ	0x01
#define PERM_LIST	0x02
#define PERM_WRITE	0x04
#define PERM_SYNC	0x08
#define PERM_ADMIN	0x10
#define PERM_ALL	0x1f

enum proto_method {
	PM_HELLO,
	PM_PUT,
	PM_GET,
	PM_LIST,
	PM_DELETE,
	PM_CHANGES,
	PM_SYNC_ACK,
	PM_WATCH,
	PM_STATUS,
	PM_SYNC_STATE,
	PM_BACKUP,
	PM_ROTATE_MASTER_KEY,
	PM_ROTATE_TENANT_KEY,
	PM_INTEGRATIONS,
	PM_HISTORY,
	PM_ROLLBACK,
	PM_TEST_RESULT,
	PM_CHECK,
	PM__COUNT
};

/*
 * How a method is checked: pm_perm is the permission it needs (0: any
 * peer), pm_tenant says whether the permission is per tenant (the method
 * requires params.tenant and the daemon checks pm_perm on that tenant) or
 * not (list: somewhere; the others: on every tenant), pm_write marks
 * methods that change the store (they go through group commit).
 */
struct proto_method_info {
	const char		*pm_name;
	enum proto_method	 pm_id;
	unsigned		 pm_perm;
	int			 pm_tenant;
	int			 pm_write;
};

/* Returns the entry of name, or NULL.  Borrowed from a static table. */
const struct proto_method_info *proto_method_lookup(const char *name);
/* Returns the entry of id.  Borrowed from a static table. */
const struct proto_method_info *proto_method_info(enum proto_method id);

/* "permission_denied" etc. for our codes, "parse_error" etc. for JSON-RPC's. */
const char	*proto_err_kind(int code);
/* Inverse of proto_err_kind; 0 when kind is unknown. */
int		 proto_err_code(const char *kind);

/* Permission names: "read", "list", ... Comma-separated list into buf. */
const char	*proto_perm_name(unsigned bit);
/* Parses "read,list" into bits; returns -1 (naming the bad word) if unknown. */
int		 proto_perms_parse(const char *s, unsigned *bits, char *err,
		    size_t errlen);
/* Writes the names of bits, comma-separated, into buf; returns buf. */
char		*proto_perms_format(unsigned bits, char *buf, size_t len);

/*
 * Name validation.  Both return 0 when valid, else -1 with a one-line
 * reason in err (the name itself is quoted only when it is printable).
 */
int	proto_tenant_valid(const char *s, char *err, size_t errlen);
int	proto_field_valid(const char *s, char *err, size_t errlen);
/*
 * A list prefix: at most PROTO_TENANT_MAX bytes of the tenant id alphabet
 * (empty: every tenant).  what names it in err ("param 'prefix'").
 */
int	proto_prefix_valid(const char *s, const char *what, char *err,
	    size_t errlen);
/*
 * A backup file name: 1-PROTO_BACKUP_NAME_MAX bytes of [A-Za-z0-9._-], not
 * starting with '.', so it can only ever name a plain file in backup_dir.
 */
#define PROTO_BACKUP_NAME_MAX	128
int	proto_backup_name_valid(const char *s, char *err, size_t errlen);

/*
 * Framing: one JSON object per line.  proto_frame_find looks for the end of
 * the first line in buf[0..len): it returns the line length without '\n'
 * (>= 0) when a whole line is there, PROTO_FRAME_MORE when not yet, or
 * PROTO_FRAME_TOO_LONG when no '\n' came within max bytes.
 */
#define PROTO_FRAME_MORE	(-1)
#define PROTO_FRAME_TOO_LONG	(-2)
ssize_t	proto_frame_find(const char *buf, size_t len, size_t max);

/*
 * A parsed request.  All pointers are borrowed from pr_root and live until
 * proto_request_release().  pr_id is NULL for a notification (no id).
 */
struct proto_request {
	json_t				*pr_root;
	json_t				*pr_id;
	const char			*pr_method_name;
	const struct proto_method_info	*pr_method;
	json_t				*pr_params;	/* always an object */
};
#define PROTO_REQUEST_INIT { NULL, NULL, NULL, NULL, NULL }

/*
 * Parses and checks one line as a JSON-RPC 2.0 request: valid UTF-8 JSON
 * object, no NUL, no duplicate keys, "jsonrpc":"2.0", id a number or string
 * (or absent), method a known string, params absent or an object, no other
 * members.  Returns 0, or a PROTO_E_* code with a message in err; in that
 * case pr_id may still be set (borrowed) so the error reply can carry it.
 * Call proto_request_release() in both cases.
 */
int	proto_request_parse(const char *line, size_t len,
	    struct proto_request *req, char *err, size_t errlen);
void	proto_request_release(struct proto_request *req);

/*
 * Param helpers: each checks that params has only the members named in
 * allowed (NULL-terminated) and fills err with e.g. "unknown param 'x'" or
 * "param 'tenant' must be a string".  Returns 0 or -1.
 */
int	proto_params_check(json_t *params, const char *const *allowed,
	    char *err, size_t errlen);
/* Gets a required (req != 0) or optional string; *out NULL when absent. */
int	proto_param_string(json_t *params, const char *name, int req,
	    const char **out, char *err, size_t errlen);
/* Gets a non-negative integer within [min, max]; *present 0 when absent. */
int	proto_param_uint(json_t *params, const char *name, int req,
	    uint64_t min, uint64_t max, uint64_t *out, int *present,
	    char *err, size_t errlen);
int	proto_param_bool(json_t *params, const char *name, int *out,
	    int *present, char *err, size_t errlen);

/*
 * Builders of outgoing messages.  They return new references (caller
 * decrefs) or NULL on allocation failure.  result and data are stolen.
 */
json_t	*proto_reply_result(json_t *id, json_t *result);
json_t	*proto_reply_error(json_t *id, int code, const char *message,
	    json_t *data);
json_t	*proto_notification(const char *method, json_t *params);
/*
 * Serialises msg compactly followed by '\n'.  Returns a new malloc'd buffer
 * (caller wipes and frees with proto_buf_free) and its length, or NULL.
 */
char	*proto_encode(json_t *msg, size_t *len);
void	 proto_buf_free(char *buf, size_t len);

/*
 * Makes jansson wipe every block it frees (so decrypted values do not
 * linger in the heap).  Call once at start-up, before any json_t exists.
 */
void	proto_json_init(void);
/* Frees p after zeroing malloc_usable_size(p) bytes. */
void	proto_wipe_free(void *p);

/*
 * The blocking client connection.  One request at a time; notifications
 * that arrive before a reply are queued for proto_client_next().
 */
struct proto_client {
	int		 pc_fd;
	char		*pc_buf;
	size_t		 pc_len;
	size_t		 pc_cap;
	size_t		 pc_max;	/* longest line accepted */
	int64_t		 pc_next_id;
	json_t		*pc_pending;	/* array of queued notifications */
	int		 pc_timeout_ms;	/* per read/write; -1 = none */
	pid_t		 pc_ssh_pid;	/* ssh:// forwarder; -1 = none */
};
#define PROTO_CLIENT_INIT { -1, NULL, 0, 0, 0, 1, NULL, -1, -1 }

/* An error reply from the daemon, or a transport failure. */
struct proto_error {
	int	pe_code;	/* PROTO_E_*; 0 for a transport failure */
	char	pe_kind[32];
	char	pe_message[512];
};

/* Return values of the client calls. */
#define PROTO_CALL_OK		0
#define PROTO_CALL_REMOTE	(-1)	/* the daemon answered with an error */
#define PROTO_CALL_IO		(-2)	/* connection failed or closed */

/*
 * Connects to path.  Returns 0, or PROTO_CALL_IO with err filled ("cannot
 * connect to /run/wfvault/wfvault.sock: No such file or directory").
 * A path ssh://[user@]host[:port][/socket] goes through an ssh child
 * (proto/client_ssh.c, $WFVAULT_SSH) that proto_client_close reaps; its
 * failure message ends with ssh's reason, on one line.
 */
int	proto_client_connect(struct proto_client *c, const char *path,
	    struct proto_error *err);
/*
 * Sends method(params) and waits for its reply.  params is stolen (NULL
 * means {}).  On PROTO_CALL_OK *result is a new reference; on
 * PROTO_CALL_REMOTE err holds the daemon's code, kind and message.
 */
int	proto_client_call(struct proto_client *c, const char *method,
	    json_t *params, json_t **result, struct proto_error *err);
/*
 * Waits up to timeout_ms (-1: forever) for the next notification.  Returns
 * PROTO_CALL_OK with *msg a new reference, 1 on timeout, or PROTO_CALL_IO.
 */
int	proto_client_next(struct proto_client *c, int timeout_ms, json_t **msg,
	    struct proto_error *err);
/* Closes the connection, wipes and frees the buffers.  Safe to repeat. */
void	proto_client_close(struct proto_client *c);
/* 1 when path is an ssh:// URL rather than a socket path. */
int	proto_client_is_ssh(const char *path);

#endif /* WFVAULT_PROTO_H */
