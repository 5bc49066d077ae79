/*
 * The JSON-RPC 2.0 envelope: request parsing, param helpers, reply
 * builders, encoding, and the allocator that wipes what jansson frees.
 */

#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "proto_priv.h"

/* Longest method, member or param name quoted back in a message. */
#define PROTO_NAME_QUOTE_MAX	64
/* Longest error message put on the wire. */
#define PROTO_MESSAGE_MAX	512

/*
 * Describes a jansson load error without jansson's own text: that text
 * quotes the input near the error, which may be part of a secret value.
 */
static void
proto_json_error(const json_error_t *je, char *err, size_t errlen)
{
	const char	*what;

	switch (json_error_code(je)) {
	case json_error_stack_overflow:
		what = "nested too deeply";
		break;
	case json_error_invalid_utf8:
		what = "invalid UTF-8";
		break;
	case json_error_premature_end_of_input:
		what = "unexpected end of the line";
		break;
	case json_error_end_of_input_expected:
		what = "data after the JSON value";
		break;
	case json_error_duplicate_key:
		what = "duplicate object key";
		break;
	case json_error_null_character:
	case json_error_null_byte_in_key:
		what = "NUL character in a string";
		break;
	case json_error_numeric_overflow:
		what = "number out of range";
		break;
	case json_error_out_of_memory:
		what = "out of memory";
		break;
	default:
		what = "syntax error";
		break;
	}
	snprintf(err, errlen, "invalid JSON: %s at byte %d", what,
	    je->position);
}

int
proto_request_parse(const char *line, size_t len, struct proto_request *req,
    char *err, size_t errlen)
{
	json_error_t	 je;
	json_t		*root, *v;
	const char	*key, *name;

	req->pr_root = NULL;
	req->pr_id = NULL;
	req->pr_method_name = NULL;
	req->pr_method = NULL;
	req->pr_params = NULL;

	/* jansson would stop at a NUL; the whole line must be the value. */
	if (len > 0 && memchr(line, '\0', len) != NULL) {
		snprintf(err, errlen, "invalid JSON: NUL byte in the message");
		return PROTO_E_PARSE;
	}
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	    &je);
	if (root == NULL) {
		proto_json_error(&je, err, errlen);
		return PROTO_E_PARSE;
	}
	req->pr_root = root;
	if (json_is_array(root)) {
		snprintf(err, errlen, "batches are not supported: send one "
		    "request object per line");
		return PROTO_E_INVALID_REQUEST;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "a request must be a JSON object");
		return PROTO_E_INVALID_REQUEST;
	}

	/* Read the id first so that every later error can carry it. */
	if ((v = json_object_get(root, "id")) != NULL) {
		if (!json_is_integer(v) && !json_is_string(v)) {
			snprintf(err, errlen, "id must be an integer or a "
			    "string");
			return PROTO_E_INVALID_REQUEST;
		}
		req->pr_id = v;
	}

	json_object_foreach(root, key, v) {
		if (strcmp(key, "jsonrpc") == 0 || strcmp(key, "id") == 0 ||
		    strcmp(key, "method") == 0 || strcmp(key, "params") == 0)
			continue;
		if (proto_quotable(key, strlen(key), PROTO_NAME_QUOTE_MAX))
			snprintf(err, errlen, "unknown member '%s' in the "
			    "request", key);
		else
			snprintf(err, errlen, "unknown member in the request");
		return PROTO_E_INVALID_REQUEST;
	}

	v = json_object_get(root, "jsonrpc");
	if (v == NULL || !json_is_string(v) ||
	    strcmp(json_string_value(v), "2.0") != 0) {
		snprintf(err, errlen, "the request must have \"jsonrpc\": "
		    "\"2.0\"");
		return PROTO_E_INVALID_REQUEST;
	}

	if ((v = json_object_get(root, "method")) == NULL) {
		snprintf(err, errlen, "the request has no method");
		return PROTO_E_INVALID_REQUEST;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "method must be a string");
		return PROTO_E_INVALID_REQUEST;
	}
	name = json_string_value(v);
	req->pr_method_name = name;
	if ((req->pr_method = proto_method_lookup(name)) == NULL) {
		if (proto_quotable(name, json_string_length(v),
		    PROTO_NAME_QUOTE_MAX))
			snprintf(err, errlen, "unknown method '%s'", name);
		else
			snprintf(err, errlen, "unknown method");
		return PROTO_E_METHOD;
	}

	if ((v = json_object_get(root, "params")) == NULL) {
		/* Stored in the root so it lives exactly as long. */
		if ((v = json_object()) == NULL ||
		    json_object_set_new(root, "params", v) == -1) {
			snprintf(err, errlen, "out of memory");
			return PROTO_E_INTERNAL;
		}
	} else if (!json_is_object(v)) {
		snprintf(err, errlen, "params must be an object");
		return PROTO_E_PARAMS;
	}
	req->pr_params = v;
	return 0;
}

void
proto_request_release(struct proto_request *req)
{
	json_decref(req->pr_root);
	req->pr_root = NULL;
	req->pr_id = NULL;
	req->pr_method_name = NULL;
	req->pr_method = NULL;
	req->pr_params = NULL;
}

int
proto_params_check(json_t *params, const char *const *allowed, char *err,
    size_t errlen)
{
	const char	*key;
	json_t		*v;
	size_t		 i;

	if (!json_is_object(params)) {
		snprintf(err, errlen, "params must be an object");
		return -1;
	}
	json_object_foreach(params, key, v) {
		for (i = 0; allowed != NULL && allowed[i] != NULL; i++)
			if (strcmp(allowed[i], key) == 0)
				break;
		if (allowed != NULL && allowed[i] != NULL)
			continue;
		if (proto_quotable(key, strlen(key), PROTO_NAME_QUOTE_MAX))
			snprintf(err, errlen, "unknown param '%s'", key);
		else
			snprintf(err, errlen, "unknown param");
		return -1;
	}
	return 0;
}

int
proto_param_string(json_t *params, const char *name, int req,
    const char **out, char *err, size_t errlen)
{
	json_t	*v;

	*out = NULL;
	if ((v = json_object_get(params, name)) == NULL) {
		if (req) {
			snprintf(err, errlen, "missing param '%s'", name);
			return -1;
		}
		return 0;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "param '%s' must be a string", name);
		return -1;
	}
	/* Callers use it as a C string: an embedded NUL would cut it. */
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		snprintf(err, errlen, "param '%s' must not contain NUL "
		    "characters", name);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/*
 * *out is left alone when the param is absent, so a caller may store its
 * default there first.  present may be NULL.
 */
int
proto_param_uint(json_t *params, const char *name, int req, uint64_t min,
    uint64_t max, uint64_t *out, int *present, char *err, size_t errlen)
{
	json_t		*v;
	json_int_t	 iv;

	if (present != NULL)
		*present = 0;
	if ((v = json_object_get(params, name)) == NULL) {
		if (req) {
			snprintf(err, errlen, "missing param '%s'", name);
			return -1;
		}
		return 0;
	}
	if (!json_is_integer(v) || (iv = json_integer_value(v)) < 0 ||
	    (uint64_t)iv < min || (uint64_t)iv > max) {
		if (max >= (uint64_t)LLONG_MAX && min == 0)
			snprintf(err, errlen, "param '%s' must be a "
			    "non-negative integer", name);
		else if (max >= (uint64_t)LLONG_MAX)
			snprintf(err, errlen, "param '%s' must be an integer "
			    "of at least %ju", name, (uintmax_t)min);
		else
			snprintf(err, errlen, "param '%s' must be an integer "
			    "from %ju to %ju", name, (uintmax_t)min,
			    (uintmax_t)max);
		return -1;
	}
	*out = (uint64_t)iv;
	if (present != NULL)
		*present = 1;
	return 0;
}

/* As proto_param_uint: *out is left alone when absent. */
int
proto_param_bool(json_t *params, const char *name, int *out, int *present,
    char *err, size_t errlen)
{
	json_t	*v;

	if (present != NULL)
		*present = 0;
	if ((v = json_object_get(params, name)) == NULL)
		return 0;
	if (!json_is_boolean(v)) {
		snprintf(err, errlen, "param '%s' must be true or false", name);
		return -1;
	}
	*out = json_is_true(v);
	if (present != NULL)
		*present = 1;
	return 0;
}

/* {"jsonrpc":"2.0","id":id} with id borrowed; JSON null when id is NULL. */
static json_t *
proto_envelope(json_t *id)
{
	json_t	*msg;

	if ((msg = json_object()) == NULL)
		return NULL;
	if (json_object_set_new(msg, "jsonrpc", json_string("2.0")) == -1 ||
	    json_object_set(msg, "id", id != NULL ? id : json_null()) == -1) {
		json_decref(msg);
		return NULL;
	}
	return msg;
}

/*
 * A NULL result is taken as the caller's allocation failure, never as an
 * empty result: answering {} instead would mislead the client.
 */
json_t *
proto_reply_result(json_t *id, json_t *result)
{
	json_t	*msg;

	if (result == NULL)
		return NULL;
	if ((msg = proto_envelope(id)) == NULL) {
		json_decref(result);
		return NULL;
	}
	if (json_object_set_new(msg, "result", result) == -1) {
		json_decref(msg);
		return NULL;
	}
	return msg;
}

/*
 * data NULL becomes {"kind":K}; an object without "kind" gets one.  The
 * message is made one printable line, as clients print it.
 */
json_t *
proto_reply_error(json_t *id, int code, const char *message, json_t *data)
{
	char	 line[PROTO_MESSAGE_MAX];
	json_t	*msg = NULL, *error = NULL;

	proto_line_copy(line, sizeof(line),
	    message != NULL ? message : proto_err_kind(code));
	if (data == NULL && (data = json_object()) == NULL)
		return NULL;
	if (json_is_object(data) && json_object_get(data, "kind") == NULL &&
	    json_object_set_new(data, "kind",
	    json_string(proto_err_kind(code))) == -1)
		goto fail;
	if ((error = json_object()) == NULL)
		goto fail;
	if (json_object_set_new(error, "code", json_integer(code)) == -1 ||
	    json_object_set_new(error, "message", json_string(line)) == -1)
		goto fail;
	if (json_object_set_new(error, "data", data) == -1) {
		data = NULL;
		goto fail;
	}
	data = NULL;
	if ((msg = proto_envelope(id)) == NULL)
		goto fail;
	if (json_object_set_new(msg, "error", error) == -1) {
		error = NULL;
		goto fail;
	}
	return msg;

fail:
	json_decref(msg);
	json_decref(error);
	json_decref(data);
	return NULL;
}

/* params NULL means {}, as for proto_client_call. */
json_t *
proto_notification(const char *method, json_t *params)
{
	json_t	*msg;

	if (params == NULL && (params = json_object()) == NULL)
		return NULL;
	if (method == NULL || (msg = json_object()) == NULL) {
		json_decref(params);
		return NULL;
	}
	if (json_object_set_new(msg, "jsonrpc", json_string("2.0")) == -1 ||
	    json_object_set_new(msg, "method", json_string(method)) == -1) {
		json_decref(params);
		json_decref(msg);
		return NULL;
	}
	if (json_object_set_new(msg, "params", params) == -1) {
		json_decref(msg);
		return NULL;
	}
	return msg;
}

/*
 * Dumps straight into a buffer of the right size (json_dumpb counts first)
 * so no unwiped intermediate copy of a value is left behind.  The buffer
 * also ends in a NUL after the '\n', not counted in *len.
 */
char *
proto_encode(json_t *msg, size_t *len)
{
	char	*buf;
	size_t	 need;

	*len = 0;
	if (msg == NULL)
		return NULL;
	if ((need = json_dumpb(msg, NULL, 0, JSON_COMPACT)) == 0 ||
	    need > SIZE_MAX - 2)
		return NULL;
	if ((buf = malloc(need + 2)) == NULL)
		return NULL;
	if (json_dumpb(msg, buf, need, JSON_COMPACT) != need) {
		proto_buf_free(buf, need + 2);
		return NULL;
	}
	buf[need] = '\n';
	buf[need + 1] = '\0';
	*len = need + 1;
	return buf;
}

void
proto_buf_free(char *buf, size_t len)
{
	if (buf == NULL)
		return;
	explicit_bzero(buf, len);
	proto_wipe_free(buf);
}

void
proto_json_init(void)
{
	json_set_alloc_funcs(malloc, proto_wipe_free);
}

void
proto_wipe_free(void *p)
{
	if (p == NULL)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}
