/*
 * Unit tests of wfvault-sync's configuration (sync/sync_conf.c): the
 * keyword table, the checks of each value, the cross-field checks, the
 * API token file and credential, and the example config.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "proto.h"
#include "support.h"
#include "sync.h"

#define ACCT	"0123456789abcdef0123456789abcdef"
#define NSID	"fedcba9876543210fedcba9876543210"
#define BASE	"cf_account_id " ACCT "\ncf_namespace_id " NSID "\n" \
		"cf_api_token_file /etc/wfvault/token\n"

/* Parses text; on success sc holds the result (caller releases). */
static int
load(struct sync_conf *sc, const char *text, char *err, size_t errlen)
{
	int	rc;

	sync_conf_init(sc);
	err[0] = '\0';
	rc = sync_conf_parse_buffer("t.conf", text, strlen(text), sc, err,
	    errlen);
	if (rc != 0)
		sync_conf_release(sc);
	return rc;
}

/* text must be refused with a message holding each of the words. */
static void
refuse(const char *text, const char *const *words)
{
	struct sync_conf	sc;
	char			err[1024];

	if (load(&sc, text, err, sizeof(err)) == 0) {
		sync_conf_release(&sc);
		fail_msg("accepted: %s", text);
	}
	for (; *words != NULL; words++) {
		if (strstr(err, *words) == NULL)
			fail_msg("'%s' not in \"%s\" (for %s)", *words, err,
			    text);
	}
}

static void
accept_text(const char *text, struct sync_conf *sc)
{
	char	err[1024];

	if (load(sc, text, err, sizeof(err)) != 0)
		fail_msg("refused: %s: %s", text, err);
}

static void
test_defaults(void **state)
{
	struct sync_conf	sc;

	(void)state;
	accept_text(BASE, &sc);
	assert_string_equal(sc.sc_socket, PROTO_DEFAULT_SOCKET);
	assert_string_equal(sc.sc_targets[0].st_name, "default");
	assert_string_equal(sc.sc_api_base,
	    "https://api.cloudflare.com/client/v4");
	assert_string_equal(sc.sc_targets[0].st_account_id, ACCT);
	assert_string_equal(sc.sc_targets[0].st_namespace_id, NSID);
	assert_string_equal(sc.sc_targets[0].st_token_file, "/etc/wfvault/token");
	assert_null(sc.sc_targets[0].st_token_credential);
	assert_null(sc.sc_targets[0].st_key_prefix);
	assert_null(sc.sc_ca_file);
	assert_int_equal(sc.sc_targets[0].st_batch_max_items, 10000);
	assert_int_equal(sc.sc_targets[0].st_batch_max_bytes, 95 * 1024 * 1024);
	assert_int_equal(sc.sc_targets[0].st_request_timeout, 150);
	assert_int_equal(sc.sc_targets[0].st_settle_time, 130);
	assert_int_equal(sc.sc_api_plain_http, 0);
	sync_conf_release(&sc);
	/* Releasing twice is harmless. */
	sync_conf_release(&sc);
}

static void
test_every_keyword(void **state)
{
	struct sync_conf	sc;

	(void)state;
	accept_text("# comment\n"
	    "socket /tmp/w.sock\n"
	    "target prod-kv.1\n"
	    "cf_api_base https://api.example.net/client/v4/\n"
	    "cf_account_id 0123456789ABCDEF0123456789abcdef\n"
	    "cf_namespace_id " NSID "\n"
	    "cf_api_token_credential cf-token\n"
	    "kv_key_prefix tenants/v1:\n"
	    "cf_ca_file /etc/ssl/ca.pem\n"
	    "batch_max_items 1000\n"
	    "batch_max_bytes 10M\n"
	    "request_timeout 2m\n"
	    "settle_time 45s\n", &sc);
	assert_string_equal(sc.sc_socket, "/tmp/w.sock");
	assert_string_equal(sc.sc_targets[0].st_name, "prod-kv.1");
	/* The trailing '/' goes: paths are appended with their own. */
	assert_string_equal(sc.sc_api_base,
	    "https://api.example.net/client/v4");
	/* Ids are kept in lowercase. */
	assert_string_equal(sc.sc_targets[0].st_account_id, ACCT);
	assert_string_equal(sc.sc_targets[0].st_token_credential, "cf-token");
	assert_null(sc.sc_targets[0].st_token_file);
	assert_string_equal(sc.sc_targets[0].st_key_prefix, "tenants/v1:");
	assert_string_equal(sc.sc_ca_file, "/etc/ssl/ca.pem");
	assert_int_equal(sc.sc_targets[0].st_batch_max_items, 1000);
	assert_int_equal(sc.sc_targets[0].st_batch_max_bytes, 10 * 1024 * 1024);
	assert_int_equal(sc.sc_targets[0].st_request_timeout, 120);
	assert_int_equal(sc.sc_targets[0].st_settle_time, 45);
	sync_conf_release(&sc);
}

static void
test_hex_ids(void **state)
{
	static const char *const acct[] = { "t.conf:1:", "cf_account_id",
	    "32 hex", NULL };
	static const char *const ns[] = { "t.conf:2:", "cf_namespace_id",
	    "32 hex", NULL };
	static const char *const missing_acct[] = { "cf_account_id",
	    "required", NULL };
	static const char *const missing_ns[] = { "cf_namespace_id",
	    "required", NULL };
	const char		*tok = "cf_api_token_file /t\n";
	char			 text[512];

	(void)state;
	/* 31, 33, non-hex, blank inside. */
	snprintf(text, sizeof(text), "cf_account_id %.31s\n"
	    "cf_namespace_id " NSID "\n%s", ACCT, tok);
	refuse(text, acct);
	snprintf(text, sizeof(text), "cf_account_id %s0\n"
	    "cf_namespace_id " NSID "\n%s", ACCT, tok);
	refuse(text, acct);
	snprintf(text, sizeof(text), "cf_account_id %.31sg\n"
	    "cf_namespace_id " NSID "\n%s", ACCT, tok);
	refuse(text, acct);
	snprintf(text, sizeof(text), "cf_account_id %.16s %.15s\n"
	    "cf_namespace_id " NSID "\n%s", ACCT, ACCT, tok);
	refuse(text, acct);
	snprintf(text, sizeof(text), "cf_account_id " ACCT "\n"
	    "cf_namespace_id 0x%.30s\n%s", NSID, tok);
	refuse(text, ns);
	refuse("cf_namespace_id " NSID "\ncf_api_token_file /t\n",
	    missing_acct);
	refuse("cf_account_id " ACCT "\ncf_api_token_file /t\n",
	    missing_ns);
}

static void
test_api_base(void **state)
{
	static const char *const good[] = {
		"https://api.cloudflare.com/client/v4",
		"https://api.cloudflare.com",
		"https://10.1.2.3:8443/cf",
		"https://[2001:db8::1]:443/x",
		"http://127.0.0.1:8787/client/v4",
		"http://localhost:1/client/v4",
		"http://LOCALHOST/client/v4",
		"http://[::1]:9000/client/v4",
		"http://127.0.0.1",
	};
	static const char *const plain[] = { "http://", "127.0.0.1", "::1",
	    "localhost", NULL };
	static const char *const loop_refused[] = {
		"http://api.cloudflare.com/client/v4",
		"http://127.0.0.2:8787/client/v4",
		"http://localhost.example.com/client/v4",
		"http://10.0.0.1/",
		"http://[::2]:80/",
		"http://127.0.0.1.nip.io/",
	};
	static const char *const bad[] = {
		"ftp://api.cloudflare.com/",
		"api.cloudflare.com/client/v4",
		"HTTPS://api.cloudflare.com/",
		"https://",
		"https:///client/v4",
		"https://user:pw@api.cloudflare.com/",
		"https://api.cloudflare.com/client/v4?x=1",
		"https://api.cloudflare.com/#frag",
		"https://api.cloudflare.com:0/",
		"https://api.cloudflare.com:65536/",
		"https://api.cloudflare.com:x/",
		"https://[::1/",
		"https://[]/",
		"https://api.cloud\001flare.com/",
	};
	char		 err[512];
	size_t		 i;
	int		 http;
	const char	*const *w;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		http = -1;
		if (sync_api_base_check(good[i], &http, err, sizeof(err)) != 0)
			fail_msg("%s refused: %s", good[i], err);
		assert_int_equal(http, strncmp(good[i], "http:", 5) == 0);
	}
	for (i = 0; i < sizeof(loop_refused) / sizeof(loop_refused[0]); i++) {
		if (sync_api_base_check(loop_refused[i], &http, err,
		    sizeof(err)) == 0)
			fail_msg("%s accepted", loop_refused[i]);
		for (w = plain; *w != NULL; w++)
			if (strstr(err, *w) == NULL)
				fail_msg("'%s' not in \"%s\"", *w, err);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sync_api_base_check(bad[i], &http, err, sizeof(err)) == 0)
			fail_msg("%s accepted", bad[i]);
	}
}

static void
test_api_base_keyword(void **state)
{
	static const char *const loop[] = { "t.conf:4:", "cf_api_base",
	    "127.0.0.1, ::1 or localhost", NULL };
	struct sync_conf	sc;

	(void)state;
	accept_text(BASE "cf_api_base http://127.0.0.1:8787/client/v4\n",
	    &sc);
	assert_int_equal(sc.sc_api_plain_http, 1);
	assert_string_equal(sc.sc_api_base,
	    "http://127.0.0.1:8787/client/v4");
	sync_conf_release(&sc);
	refuse(BASE "cf_api_base http://kv.example.com/client/v4\n", loop);
}

static void
test_token_sources(void **state)
{
	static const char *const none[] = { "cf_api_token_file",
	    "cf_api_token_credential", NULL };
	static const char *const both1[] = { "t.conf:4:",
	    "cf_api_token_credential", "only one", NULL };
	static const char *const both2[] = { "t.conf:4:",
	    "cf_api_token_file", "only one", NULL };
	static const char *const rel[] = { "t.conf:3:", "absolute", NULL };
	static const char *const cred[] = { "t.conf:3:",
	    "cf_api_token_credential", NULL };

	(void)state;
	refuse("cf_account_id " ACCT "\ncf_namespace_id " NSID "\n", none);
	refuse(BASE "cf_api_token_credential tok\n", both1);
	refuse("cf_account_id " ACCT "\ncf_namespace_id " NSID "\n"
	    "cf_api_token_credential tok\ncf_api_token_file /t\n", both2);
	refuse("cf_account_id " ACCT "\ncf_namespace_id " NSID "\n"
	    "cf_api_token_file etc/token\n", rel);
	refuse("cf_account_id " ACCT "\ncf_namespace_id " NSID "\n"
	    "cf_api_token_credential ../token\n", cred);
	refuse("cf_account_id " ACCT "\ncf_namespace_id " NSID "\n"
	    "cf_api_token_credential ..\n", cred);
}

static void
test_key_prefix(void **state)
{
	static const char *const chars[] = { "t.conf:4:", "kv_key_prefix",
	    NULL };
	static const char *const len[] = { "t.conf:4:", "kv_key_prefix",
	    "384", NULL };
	static const char *const bad[] = { "a b", "a?b", "a#", "a\\b",
	    "t\xc3\xa9", "a%2f", "a*" };
	struct sync_conf	 sc;
	char			 text[1024], prefix[400];
	size_t			 i;

	(void)state;
	accept_text(BASE "kv_key_prefix prod/tenants:A-Z_0.9-\n", &sc);
	assert_string_equal(sc.sc_targets[0].st_key_prefix, "prod/tenants:A-Z_0.9-");
	sync_conf_release(&sc);

	/* 384 bytes + a 128-byte tenant id = 512, KV's key limit. */
	memset(prefix, 'p', 384);
	prefix[384] = '\0';
	snprintf(text, sizeof(text), BASE "kv_key_prefix %s\n", prefix);
	accept_text(text, &sc);
	assert_int_equal(strlen(sc.sc_targets[0].st_key_prefix), 384);
	assert_int_equal(strlen(sc.sc_targets[0].st_key_prefix) + PROTO_TENANT_MAX,
	    KV_KEY_MAX);
	sync_conf_release(&sc);
	prefix[384] = 'p';
	prefix[385] = '\0';
	snprintf(text, sizeof(text), BASE "kv_key_prefix %s\n", prefix);
	refuse(text, len);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), BASE "kv_key_prefix %s\n",
		    bad[i]);
		refuse(text, chars);
	}
}

static void
test_numbers_and_words(void **state)
{
	static const char *const items[] = { "t.conf:4:", "batch_max_items",
	    "range", NULL };
	static const char *const notnum[] = { "t.conf:4:",
	    "batch_max_items", "decimal", NULL };
	static const char *const bytes[] = { "t.conf:4:", "batch_max_bytes",
	    "range", NULL };
	static const char *const tmo[] = { "t.conf:4:", "request_timeout",
	    NULL };
	static const char *const settle[] = { "t.conf:4:", "settle_time",
	    NULL };
	static const char *const settle_twice[] = { "t.conf:5:",
	    "settle_time", "twice", NULL };
	static const char *const unknown[] = { "t.conf:4:", "unknown",
	    "cf_api_key", NULL };
	static const char *const twice[] = { "t.conf:5:", "socket", "twice",
	    NULL };
	static const char *const target[] = { "t.conf:4:", "target", NULL };
	static const char *const value[] = { "t.conf:4:", "needs a value",
	    NULL };
	static const char *const sock_rel[] = { "t.conf:4:", "socket",
	    "absolute", NULL };
	static const char *const sock_long[] = { "t.conf:4:", "socket",
	    "at most 107", NULL };
	struct sync_conf	sc;
	char			text[512], longpath[109];

	(void)state;
	refuse(BASE "batch_max_items 0\n", items);
	refuse(BASE "batch_max_items 10001\n", items);
	refuse(BASE "batch_max_items -1\n", notnum);
	accept_text(BASE "batch_max_items 1\n", &sc);
	assert_int_equal(sc.sc_targets[0].st_batch_max_items, 1);
	sync_conf_release(&sc);

	refuse(BASE "batch_max_bytes 1023\n", bytes);
	refuse(BASE "batch_max_bytes 100000001\n", bytes);
	refuse(BASE "batch_max_bytes 96M\n", bytes);
	accept_text(BASE "batch_max_bytes 1K\n", &sc);
	assert_int_equal(sc.sc_targets[0].st_batch_max_bytes, 1024);
	sync_conf_release(&sc);
	accept_text(BASE "batch_max_bytes 100000000\n", &sc);
	assert_int_equal(sc.sc_targets[0].st_batch_max_bytes, 100000000);
	sync_conf_release(&sc);

	refuse(BASE "request_timeout 0\n", tmo);
	refuse(BASE "request_timeout 2d\n", tmo);
	refuse(BASE "request_timeout soon\n", tmo);

	/* settle_time: 0s (push again at once) to 1h. */
	refuse(BASE "settle_time 61m\n", settle);
	refuse(BASE "settle_time 3601\n", settle);
	refuse(BASE "settle_time -1s\n", settle);
	refuse(BASE "settle_time 2s\nsettle_time 3s\n", settle_twice);
	accept_text(BASE "settle_time 0s\n", &sc);
	assert_int_equal(sc.sc_targets[0].st_settle_time, 0);
	sync_conf_release(&sc);
	accept_text(BASE "settle_time 1h\n", &sc);
	assert_int_equal(sc.sc_targets[0].st_settle_time, 3600);
	sync_conf_release(&sc);
	accept_text(BASE "settle_time 3\n", &sc);
	assert_int_equal(sc.sc_targets[0].st_settle_time, 3);
	sync_conf_release(&sc);

	refuse(BASE "cf_api_key abc\n", unknown);
	refuse(BASE "socket /a\nsocket /b\n", twice);
	refuse(BASE "target a/b\n", target);
	refuse(BASE "target .hidden\n", target);
	refuse(BASE "socket\n", value);
	refuse(BASE "socket run/w.sock\n", sock_rel);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	snprintf(text, sizeof(text), BASE "socket %s\n", longpath);
	refuse(text, sock_long);
	longpath[107] = '\0';
	snprintf(text, sizeof(text), BASE "socket %s\n", longpath);
	accept_text(text, &sc);
	assert_int_equal(strlen(sc.sc_socket), 107);
	sync_conf_release(&sc);
}


/* Keys before the first target are defaults; a block overrides them. */
static void
test_target_blocks(void **state)
{
	struct sync_conf	 sc;
	struct sync_target	*st, *pr, *w;

	(void)state;
	accept_text("socket /tmp/w.sock\n"
	    "request_budget 100/1m\n"
	    "cf_account_id " ACCT "\n"
	    "cf_api_token_file /etc/wfvault/token\n"
	    "settle_time 5s\n"
	    "kv_key_prefix tenant:\n"
	    "\n"
	    "target staging\n"
	    "cf_namespace_id " NSID "\n"
	    "tenants staging-*, demo\n"
	    "\n"
	    "target production\n"
	    "cf_api_token_credential prod-token\n"
	    "cf_account_id 00000000000000000000000000000001\n"
	    "cf_namespace_id 0000000000000000000000000000000A\n"
	    "kv_key_prefix p/\n"
	    "tenants *\n"
	    "seal_key_file /etc/wfvault/seal.key\n"
	    "request_timeout 3m\n"
	    "batch_max_items 50\n"
	    "\n"
	    "target worker\n"
	    "kind worker_secrets\n"
	    "cf_script_name my-worker\n"
	    "secrets_tenant global\n", &sc);
	assert_string_equal(sc.sc_socket, "/tmp/w.sock");
	assert_int_equal(sc.sc_budget_requests, 100);
	assert_int_equal(sc.sc_budget_window, 60);
	assert_int_equal(sc.sc_ntargets, 3);

	st = &sc.sc_targets[0];
	assert_ptr_equal(sync_conf_target(&sc, "staging"), st);
	assert_string_equal(st->st_name, "staging");
	assert_int_equal(st->st_kind, SYNC_KIND_KV);
	assert_string_equal(st->st_account_id, ACCT);
	assert_string_equal(st->st_namespace_id, NSID);
	assert_string_equal(st->st_token_file, "/etc/wfvault/token");
	assert_null(st->st_token_credential);
	assert_string_equal(st->st_key_prefix, "tenant:");
	assert_int_equal(st->st_ntenants, 2);
	assert_string_equal(st->st_tenants[0], "staging-*");
	assert_string_equal(st->st_tenants[1], "demo");
	assert_null(st->st_seal_key_file);
	assert_null(st->st_seal_key);
	assert_int_equal(st->st_settle_time, 5);
	assert_int_equal(st->st_request_timeout, 150);
	assert_int_equal(st->st_batch_max_items, 10000);

	pr = &sc.sc_targets[1];
	assert_ptr_equal(sync_conf_target(&sc, "production"), pr);
	/* The block's token source replaces the default one. */
	assert_null(pr->st_token_file);
	assert_string_equal(pr->st_token_credential, "prod-token");
	assert_string_equal(pr->st_account_id,
	    "00000000000000000000000000000001");
	assert_string_equal(pr->st_namespace_id,
	    "0000000000000000000000000000000a");
	assert_string_equal(pr->st_key_prefix, "p/");
	assert_int_equal(pr->st_ntenants, 1);
	assert_string_equal(pr->st_seal_key_file, "/etc/wfvault/seal.key");
	assert_int_equal(pr->st_request_timeout, 180);
	assert_int_equal(pr->st_batch_max_items, 50);
	assert_int_equal(pr->st_settle_time, 5);

	w = &sc.sc_targets[2];
	assert_int_equal(w->st_kind, SYNC_KIND_WORKER_SECRETS);
	assert_string_equal(w->st_script_name, "my-worker");
	assert_string_equal(w->st_secrets_tenant, "global");
	assert_string_equal(w->st_account_id, ACCT);
	assert_string_equal(w->st_token_file, "/etc/wfvault/token");
	/* The kv-only defaults do not reach a worker_secrets target. */
	assert_null(w->st_key_prefix);
	assert_null(w->st_namespace_id);
	assert_int_equal(w->st_ntenants, 0);
	assert_null(sync_conf_target(&sc, "default"));
	sync_conf_release(&sc);
	sync_conf_release(&sc);
}

/* The forms before target blocks mean what they meant. */
static void
test_target_old_forms(void **state)
{
	static const char *const global_late[] = { "t.conf:9:", "socket",
	    "global", "before the first 'target'", NULL };
	static const char *const global_first[] = { "t.conf:6:", "target",
	    "'cf_ca_file'", "inside target 'a'", NULL };
	struct sync_conf	sc;

	(void)state;
	/* No target line: one target named "default". */
	accept_text(BASE, &sc);
	assert_int_equal(sc.sc_ntargets, 1);
	assert_string_equal(sc.sc_targets[0].st_name, "default");
	assert_int_equal(sc.sc_budget_requests, 600);
	assert_int_equal(sc.sc_budget_window, 300);
	sync_conf_release(&sc);
	/* A target line at the end names the one target. */
	accept_text(BASE "target prod\n", &sc);
	assert_int_equal(sc.sc_ntargets, 1);
	assert_string_equal(sc.sc_targets[0].st_name, "prod");
	assert_string_equal(sc.sc_targets[0].st_namespace_id, NSID);
	sync_conf_release(&sc);
	/* With one target, global keys may follow its line. */
	accept_text("target prod\n" BASE "socket /tmp/s\n"
	    "cf_ca_file /etc/ca.pem\n", &sc);
	assert_int_equal(sc.sc_ntargets, 1);
	assert_string_equal(sc.sc_socket, "/tmp/s");
	assert_string_equal(sc.sc_ca_file, "/etc/ca.pem");
	sync_conf_release(&sc);
	/* Not once a second target makes it look like a block's own. */
	refuse(BASE "target a\ntarget b\n" "cf_namespace_id " NSID "\n"
	    "tenants x\n" "cf_account_id " ACCT "\nsocket /tmp/s\n",
	    global_late);
	refuse(BASE "target a\ncf_ca_file /etc/ca.pem\ntarget b\n",
	    global_first);
}

static void
test_target_errors(void **state)
{
	static const char *const dup[] = { "t.conf:5:", "target",
	    "'a' is given twice", NULL };
	static const char *const twice[] = { "t.conf:6:", "cf_namespace_id",
	    "twice in target 'a'", NULL };
	static const char *const twice_def[] = { "t.conf:4:",
	    "cf_account_id", "twice", NULL };
	static const char *const no_ns[] = { "target 'b'",
	    "cf_namespace_id is required", NULL };
	static const char *const no_acct[] = { "target 'a'",
	    "cf_account_id is required", NULL };
	static const char *const no_tok[] = { "target 'b'",
	    "API token is not configured", NULL };
	static const char *const kind[] = { "t.conf:5:", "kind",
	    "worker_secrets", NULL };
	static const char *const kind_twice[] = { "t.conf:6:", "kind",
	    "twice", NULL };
	static const char *const name[] = { "t.conf:4:", "target", NULL };
	static const char *const both[] = { "t.conf:6:",
	    "only one of the two", NULL };
	static const char *const overlap[] = { "targets 'a' and 'b'",
	    "kv_key_prefix", NULL };
	static const char *const same[] = { "targets 'a' and 'b'",
	    "tenants", NULL };
	struct sync_conf	sc;

	(void)state;
	refuse(BASE "target a\ntarget a\n", dup);
	refuse(BASE "target a\ncf_namespace_id " NSID "\n"
	    "cf_namespace_id " NSID "\n", twice);
	refuse(BASE "cf_account_id " ACCT "\n", twice_def);
	/* The same key in two blocks is fine. */
	accept_text(BASE "target a\ncf_namespace_id " NSID "\n"
	    "tenants a*\ntarget b\ncf_namespace_id " NSID "\n"
	    "tenants b*\n", &sc);
	assert_int_equal(sc.sc_ntargets, 2);
	sync_conf_release(&sc);
	refuse("cf_account_id " ACCT "\ncf_api_token_file /t\n"
	    "target a\ncf_namespace_id " NSID "\ntarget b\n", no_ns);
	refuse("cf_namespace_id " NSID "\ncf_api_token_file /t\n"
	    "target a\n", no_acct);
	refuse("cf_account_id " ACCT "\ncf_namespace_id " NSID "\n"
	    "target a\ncf_api_token_file /t\ntarget b\n", no_tok);
	refuse(BASE "target a\nkind d1\n", kind);
	refuse(BASE "target a\nkind kv\nkind kv\n", kind_twice);
	refuse(BASE "target a/b\n", name);
	refuse(BASE "target a\ncf_api_token_credential c\n"
	    "cf_api_token_file /t\n", both);
	/*
	 * One namespace, and b's prefix is a's plus what starts a tenant id:
	 * a would take b's key "t:eu.acme" for its tenant "eu.acme" and
	 * prune it.  Prefixes that cannot be read so are fine.
	 */
	refuse(BASE "target a\nkv_key_prefix t:\n"
	    "target b\nkv_key_prefix t:eu.\n", overlap);
	refuse(BASE "target b\nkv_key_prefix t:eu.\n"
	    "target a\nkv_key_prefix t:\n", overlap);
	refuse(BASE "target a\ntarget b\nkv_key_prefix eu\n", overlap);
	accept_text(BASE "target a\nkv_key_prefix t:\n"
	    "target b\nkv_key_prefix t:eu:\n", &sc);
	sync_conf_release(&sc);
	accept_text(BASE "target a\ntarget b\nkv_key_prefix t:\n", &sc);
	sync_conf_release(&sc);
	accept_text(BASE "target a\nkv_key_prefix t:\ntarget b\n", &sc);
	sync_conf_release(&sc);
	accept_text(BASE "target a\nkv_key_prefix t:\ntarget b\n"
	    "cf_namespace_id 00112233445566778899aabbccddeeff\n"
	    "kv_key_prefix t:eu.\n", &sc);
	sync_conf_release(&sc);
	/*
	 * One namespace and prefix, tenants in common: both would write
	 * those keys, one sealed and one in clear, say.  Disjoint is fine.
	 */
	refuse(BASE "target a\ntenants prod-*\ntarget b\n", same);
	refuse(BASE "target a\ntenants prod-*\n"
	    "target b\ntenants demo,prod-eu*\n", same);
	refuse(BASE "target a\ntenants prod-eu*\n"
	    "target b\ntenants prod-*\n", same);
	refuse(BASE "target a\ntenants x,prod-eu1\n"
	    "target b\ntenants prod-*\n", same);
	refuse(BASE "target a\ntenants demo\ntarget b\ntenants demo\n",
	    same);
	accept_text(BASE "target a\ntenants staging-*,demo\n"
	    "target b\ntenants prod-*,demo2\n", &sc);
	sync_conf_release(&sc);
	/* A block's own source may differ from the default one. */
	accept_text(BASE "target a\ncf_api_token_credential c\n", &sc);
	assert_string_equal(sc.sc_targets[0].st_token_credential, "c");
	assert_null(sc.sc_targets[0].st_token_file);
	sync_conf_release(&sc);
}

static void
test_worker_secrets_kind(void **state)
{
	static const char *const no_script[] = { "target 'w'",
	    "cf_script_name is required", NULL };
	static const char *const no_tenant[] = { "target 'w'",
	    "secrets_tenant is required", NULL };
	static const char *const ns[] = { "target 'w'", "cf_namespace_id",
	    "is for kind kv", NULL };
	static const char *const prefix[] = { "target 'w'", "kv_key_prefix",
	    "is for kind kv", NULL };
	static const char *const seal[] = { "target 'w'", "seal_key_file",
	    "is for kind kv", NULL };
	static const char *const tenants[] = { "target 'w'", "tenants",
	    "is for kind kv", NULL };
	static const char *const in_kv[] = { "target 'k'", "cf_script_name",
	    "only for kind worker_secrets", NULL };
	static const char *const in_kv2[] = { "target 'k'", "secrets_tenant",
	    "only for kind worker_secrets", NULL };
	static const char *const script[] = { "t.conf:", "cf_script_name",
	    "Worker's name", NULL };
	static const char *const tenant[] = { "t.conf:", "secrets_tenant",
	    "one tenant id", NULL };
	static const char *const same_script[] = { "targets 'w' and 'v'",
	    "Worker script 's'", "cf_script_name", NULL };
#define W	"cf_account_id " ACCT "\ncf_api_token_file /t\n" \
		"target w\nkind worker_secrets\n"
	struct sync_conf	 sc;
	struct sync_target	*st;

	(void)state;
	accept_text(W "cf_script_name a_b-1\nsecrets_tenant global\n", &sc);
	st = &sc.sc_targets[0];
	assert_int_equal(st->st_kind, SYNC_KIND_WORKER_SECRETS);
	assert_null(st->st_namespace_id);
	/* Its one tenant is secrets_tenant. */
	assert_true(sync_target_wants(st, "global"));
	assert_false(sync_target_wants(st, "globalx"));
	assert_false(sync_target_wants(st, "acme"));
	sync_conf_release(&sc);
	/* Without a target line, kind works for the one target too. */
	accept_text("cf_account_id " ACCT "\ncf_api_token_file /t\n"
	    "kind worker_secrets\ncf_script_name w\nsecrets_tenant g\n", &sc);
	assert_int_equal(sc.sc_targets[0].st_kind, SYNC_KIND_WORKER_SECRETS);
	assert_string_equal(sc.sc_targets[0].st_name, "default");
	sync_conf_release(&sc);

	refuse(W "secrets_tenant global\n", no_script);
	refuse(W "cf_script_name s\n", no_tenant);
	refuse(W "cf_script_name s\nsecrets_tenant g\ncf_namespace_id "
	    NSID "\n", ns);
	refuse(W "cf_script_name s\nsecrets_tenant g\nkv_key_prefix p\n",
	    prefix);
	refuse(W "cf_script_name s\nsecrets_tenant g\n"
	    "seal_key_file /k\n", seal);
	refuse(W "cf_script_name s\nsecrets_tenant g\ntenants *\n", tenants);
	/* One target: what came before its line is its own too. */
	refuse("cf_namespace_id " NSID "\n" W "cf_script_name s\n"
	    "secrets_tenant g\n", ns);
	refuse(BASE "target k\ncf_script_name s\n", in_kv);
	refuse(BASE "target k\nsecrets_tenant g\n", in_kv2);
	refuse(W "cf_script_name My-Worker\nsecrets_tenant g\n", script);
	refuse(W "cf_script_name -w\nsecrets_tenant g\n", script);
	refuse(W "cf_script_name s\nsecrets_tenant a,b\n", tenant);
	refuse(W "cf_script_name s\nsecrets_tenant *\n", tenant);
	/*
	 * Two targets on one script would overwrite and delete each
	 * other's secrets; another script or account is fine.
	 */
	refuse(W "cf_script_name s\nsecrets_tenant a\n"
	    "target v\nkind worker_secrets\ncf_script_name s\n"
	    "secrets_tenant b\n", same_script);
	accept_text(W "cf_script_name s\nsecrets_tenant a\n"
	    "target v\nkind worker_secrets\ncf_script_name t\n"
	    "secrets_tenant b\n", &sc);
	sync_conf_release(&sc);
	accept_text(W "cf_script_name s\nsecrets_tenant a\n"
	    "target v\nkind worker_secrets\ncf_script_name s\n"
	    "secrets_tenant b\ncf_account_id " NSID "\n", &sc);
	sync_conf_release(&sc);
#undef W
}

static void
test_tenants(void **state)
{
	static const char *const empty[] = { "t.conf:4:", "tenants",
	    "empty entry", NULL };
	static const char *const bad[] = { "t.conf:4:", "tenants",
	    "bad entry", NULL };
	static const char *const bads[] = { "a b", "*a", "a**", ".x",
	    "a/b", "-*", "a,*b" };
	struct sync_conf	 sc;
	struct sync_target	*st;
	char			 text[512];
	size_t			 i;

	(void)state;
	accept_text(BASE "tenants staging-*,demo,acme.eu\n", &sc);
	st = &sc.sc_targets[0];
	assert_true(sync_target_wants(st, "staging-a"));
	assert_true(sync_target_wants(st, "staging-"));
	assert_true(sync_target_wants(st, "demo"));
	assert_true(sync_target_wants(st, "acme.eu"));
	assert_false(sync_target_wants(st, "demo2"));
	assert_false(sync_target_wants(st, "staging"));
	assert_false(sync_target_wants(st, "acme"));
	assert_false(sync_target_wants(st, "prod-x"));
	sync_conf_release(&sc);
	accept_text(BASE "tenants *\n", &sc);
	assert_true(sync_target_wants(&sc.sc_targets[0], "anything"));
	sync_conf_release(&sc);
	/* No tenants line: every tenant, as before. */
	accept_text(BASE, &sc);
	assert_int_equal(sc.sc_targets[0].st_ntenants, 0);
	assert_true(sync_target_wants(&sc.sc_targets[0], "x"));
	sync_conf_release(&sc);
	accept_text(BASE "tenants a*\n", &sc);
	assert_true(sync_target_wants(&sc.sc_targets[0], "a"));
	assert_true(sync_target_wants(&sc.sc_targets[0], "ab"));
	assert_false(sync_target_wants(&sc.sc_targets[0], "ba"));
	sync_conf_release(&sc);

	refuse(BASE "tenants a,,b\n", empty);
	refuse(BASE "tenants a,\n", empty);
	refuse(BASE "tenants ,a\n", empty);
	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		snprintf(text, sizeof(text), BASE "tenants %s\n", bads[i]);
		refuse(text, bad);
	}
}

static void
test_request_budget(void **state)
{
	static const char *const form[] = { "t.conf:4:", "request_budget",
	    "REQUESTS/WINDOW", NULL };
	static const char *const req[] = { "t.conf:4:", "request_budget",
	    "requests", NULL };
	static const char *const win[] = { "t.conf:4:", "request_budget",
	    "window", NULL };
	static const char *const late[] = { "request_budget", "global",
	    NULL };
	struct sync_conf	sc;

	(void)state;
	accept_text(BASE "request_budget 1200/5m\n", &sc);
	assert_int_equal(sc.sc_budget_requests, 1200);
	assert_int_equal(sc.sc_budget_window, 300);
	sync_conf_release(&sc);
	accept_text(BASE "request_budget 3/1s\n", &sc);
	assert_int_equal(sc.sc_budget_requests, 3);
	assert_int_equal(sc.sc_budget_window, 1);
	sync_conf_release(&sc);
	accept_text(BASE "request_budget 10/60\n", &sc);
	assert_int_equal(sc.sc_budget_window, 60);
	sync_conf_release(&sc);
	refuse(BASE "request_budget 600\n", form);
	refuse(BASE "request_budget 0/5m\n", req);
	refuse(BASE "request_budget x/5m\n", req);
	refuse(BASE "request_budget /5m\n", req);
	refuse(BASE "request_budget 5/0s\n", win);
	refuse(BASE "request_budget 5/2d\n", win);
	refuse(BASE "request_budget 5/\n", win);
	refuse(BASE "target a\ntarget b\nrequest_budget 5/1m\n", late);
}

/* A token file with content; returns its path in buf. */
static void
token_file(const char *dir, const char *name, const char *content,
    size_t len, mode_t mode, char *buf, size_t buflen)
{
	int	fd;

	snprintf(buf, buflen, "%s/%s", dir, name);
	fd = open(buf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int
token_load(const char *file, const char *credential, char **tok,
    char *err, size_t errlen)
{
	struct sync_target	st;
	int			rc;

	memset(&st, 0, sizeof(st));
	st.st_token_file = file != NULL ? strdup(file) : NULL;
	st.st_token_credential = credential != NULL ? strdup(credential) :
	    NULL;
	err[0] = '\0';
	rc = sync_token_load(&st, tok, err, errlen);
	free(st.st_token_file);
	free(st.st_token_credential);
	return rc;
}

static void
test_token_file(void **state)
{
	char	dir[] = "/tmp/wfvault-test-sync.XXXXXX";
	char	path[PATH_MAX], lnk[PATH_MAX], err[1024];
	char	big[KV_TOKEN_MAX + 2];
	char	*tok;

	(void)state;
	assert_non_null(mkdtemp(dir));

	token_file(dir, "t1", "abc.DEF-123_x\n", 14, 0600, path,
	    sizeof(path));
	assert_int_equal(token_load(path, NULL, &tok, err, sizeof(err)), 0);
	assert_string_equal(tok, "abc.DEF-123_x");
	sync_token_free(tok);
	unlink(path);

	/* Only one newline goes (with its CR). */
	token_file(dir, "t2", "tok\r\n", 5, 0600, path, sizeof(path));
	assert_int_equal(token_load(path, NULL, &tok, err, sizeof(err)), 0);
	assert_string_equal(tok, "tok");
	sync_token_free(tok);
	unlink(path);
	token_file(dir, "t3", "tok\n\n", 5, 0600, path, sizeof(path));
	assert_int_equal(token_load(path, NULL, &tok, err, sizeof(err)), -1);
	assert_null(tok);
	unlink(path);

	/* Empty, or only a newline. */
	token_file(dir, "t4", "\n", 1, 0600, path, sizeof(path));
	assert_int_equal(token_load(path, NULL, &tok, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty"));
	unlink(path);

	/* A blank or control character: refused, never quoted. */
	token_file(dir, "t5", "secret_part o_ther\n", 18, 0600, path,
	    sizeof(path));
	assert_int_equal(token_load(path, NULL, &tok, err, sizeof(err)), -1);
	assert_null(strstr(err, "secret_part"));
	assert_null(strstr(err, "o_ther"));
	assert_non_null(strstr(err, path));
	unlink(path);
	token_file(dir, "t6", "k_e.y\x01" "def", 9, 0600, path,
	    sizeof(path));
	assert_int_equal(token_load(path, NULL, &tok, err, sizeof(err)), -1);
	assert_null(strstr(err, "k_e.y"));
	unlink(path);

	/* Too large to be a token. */
	memset(big, 'a', sizeof(big));
	token_file(dir, "t7", big, sizeof(big), 0600, path, sizeof(path));
	assert_int_equal(token_load(path, NULL, &tok, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger"));
	unlink(path);
	/* KV_TOKEN_MAX exactly is fine. */
	token_file(dir, "t8", big, KV_TOKEN_MAX, 0600, path, sizeof(path));
	assert_int_equal(token_load(path, NULL, &tok, err, sizeof(err)), 0);
	assert_int_equal(strlen(tok), KV_TOKEN_MAX);
	sync_token_free(tok);
	unlink(path);

	/* Open to group or others: refused, saying how to fix it. */
	token_file(dir, "t9", "tok", 3, 0644, path, sizeof(path));
	assert_int_equal(token_load(path, NULL, &tok, err, sizeof(err)), -1);
	assert_null(tok);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "mode 0644"));
	assert_non_null(strstr(err, "chmod 600"));
	unlink(path);
	token_file(dir, "t10", "tok", 3, 0640, path, sizeof(path));
	assert_int_equal(token_load(path, NULL, &tok, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "group or others"));
	unlink(path);
	token_file(dir, "t11", "tok", 3, 0620, path, sizeof(path));
	assert_int_equal(token_load(path, NULL, &tok, err, sizeof(err)), -1);
	unlink(path);
	token_file(dir, "t12", "tok", 3, 0400, path, sizeof(path));
	assert_int_equal(token_load(path, NULL, &tok, err, sizeof(err)), 0);
	assert_string_equal(tok, "tok");
	sync_token_free(tok);
	unlink(path);

	/* A link, even to a good file: what is checked must be what is read. */
	token_file(dir, "t13", "tok", 3, 0600, path, sizeof(path));
	snprintf(lnk, sizeof(lnk), "%s/link", dir);
	assert_int_equal(symlink(path, lnk), 0);
	assert_int_equal(token_load(lnk, NULL, &tok, err, sizeof(err)), -1);
	assert_null(tok);
	assert_non_null(strstr(err, "symbolic link"));
	assert_non_null(strstr(err, lnk));
	unlink(lnk);

	/* Someone else's file (only root can make one to test with). */
	if (geteuid() == 0) {
		assert_int_equal(chown(path, 65534, 65534), 0);
		assert_int_equal(token_load(path, NULL, &tok, err,
		    sizeof(err)), -1);
		assert_null(tok);
		assert_non_null(strstr(err, "belongs to uid 65534"));
		assert_non_null(strstr(err, path));
	}
	unlink(path);

	/* Missing, or a directory. */
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(token_load(path, NULL, &tok, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(token_load(dir, NULL, &tok, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "regular file"));

	assert_int_equal(rmdir(dir), 0);
}

static void
test_token_credential(void **state)
{
	char	 dir[] = "/tmp/wfvault-test-cred.XXXXXX";
	char	 path[PATH_MAX], err[1024];
	char	*tok, *saved;
	const char *old;

	(void)state;
	old = getenv("CREDENTIALS_DIRECTORY");
	saved = old != NULL ? strdup(old) : NULL;
	assert_non_null(mkdtemp(dir));
	token_file(dir, "cf-token", "cred-token\n", 11, 0400, path,
	    sizeof(path));

	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", dir, 1), 0);
	assert_int_equal(token_load(NULL, "cf-token", &tok, err, sizeof(err)),
	    0);
	assert_string_equal(tok, "cred-token");
	sync_token_free(tok);
	assert_int_equal(token_load(NULL, "other", &tok, err, sizeof(err)),
	    -1);
	/* systemd's ACL for the service's user shows as group bits. */
	assert_int_equal(chmod(path, 0440), 0);
	assert_int_equal(token_load(NULL, "cf-token", &tok, err, sizeof(err)),
	    0);
	sync_token_free(tok);
	/* Others' bits, never systemd's doing, are refused. */
	assert_int_equal(chmod(path, 0404), 0);
	assert_int_equal(token_load(NULL, "cf-token", &tok, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "open to others"));
	assert_int_equal(chmod(path, 0400), 0);

	assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
	assert_int_equal(token_load(NULL, "cf-token", &tok, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "CREDENTIALS_DIRECTORY"));
	assert_null(tok);

	if (saved != NULL) {
		setenv("CREDENTIALS_DIRECTORY", saved, 1);
		free(saved);
	}
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* Loads the seal key of a target with seal_key_file path. */
static int
seal_load(const char *path, struct sync_target *st, char *err,
    size_t errlen)
{
	memset(st, 0, sizeof(*st));
	st->st_seal_key_file = strdup(path);
	err[0] = '\0';
	return sync_seal_key_load(st, err, errlen);
}

static void
seal_release(struct sync_target *st)
{
	free(st->st_seal_key_file);
	if (st->st_seal_key != NULL)
		sodium_free(st->st_seal_key);
	memset(st, 0, sizeof(*st));
}

/* prune_max_share: a global percentage, 10% unless given. */
static void
test_prune_max_share(void **state)
{
	static const char *const range[] = { "t.conf:4:", "prune_max_share",
	    "0% to 100%", NULL };
	static const char *const late[] = { "prune_max_share", "global",
	    NULL };
	struct sync_conf	sc;

	(void)state;
	accept_text(BASE, &sc);
	assert_int_equal(sc.sc_prune_max_share, 10);
	sync_conf_release(&sc);
	accept_text(BASE "prune_max_share 25%\n", &sc);
	assert_int_equal(sc.sc_prune_max_share, 25);
	sync_conf_release(&sc);
	accept_text(BASE "prune_max_share 0\n", &sc);
	assert_int_equal(sc.sc_prune_max_share, 0);
	sync_conf_release(&sc);
	accept_text(BASE "prune_max_share 100%\n", &sc);
	assert_int_equal(sc.sc_prune_max_share, 100);
	sync_conf_release(&sc);
	refuse(BASE "prune_max_share 101%\n", range);
	refuse(BASE "prune_max_share 1000000000000\n", range);
	refuse(BASE "prune_max_share -1\n", range);
	refuse(BASE "prune_max_share 10 %\n", range);
	refuse(BASE "prune_max_share %\n", range);
	refuse(BASE "prune_max_share 5.5%\n", range);
	refuse(BASE "target a\ntarget b\nprune_max_share 5\n", late);
}

static void
test_seal_key_file(void **state)
{
	/* base64 of bytes 0..31, and of 31 and 33 bytes. */
	static const char good[] =
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
	static const char short31[] =
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n";
	static const char long33[] =
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\n";
	char			 dir[] = "/tmp/wfvault-test-seal.XXXXXX";
	char			 path[PATH_MAX], lnk[PATH_MAX], err[1024];
	struct sync_target	 st;
	size_t			 i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	token_file(dir, "k1", good, strlen(good), 0400, path, sizeof(path));
	assert_int_equal(seal_load(path, &st, err, sizeof(err)), 0);
	assert_non_null(st.st_seal_key);
	for (i = 0; i < SYNC_SEAL_KEY_LEN; i++)
		assert_int_equal(st.st_seal_key[i], i);
	seal_release(&st);

	/* Without seal_key_file there is nothing to load. */
	memset(&st, 0, sizeof(st));
	assert_int_equal(sync_seal_key_load(&st, err, sizeof(err)), 0);
	assert_null(st.st_seal_key);

	/* Open to group or others: refused, like the token. */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(seal_load(path, &st, err, sizeof(err)), -1);
	assert_null(st.st_seal_key);
	assert_non_null(strstr(err, "seal key"));
	assert_non_null(strstr(err, "group or others"));
	assert_non_null(strstr(err, "chmod 600"));
	seal_release(&st);
	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(seal_load(path, &st, err, sizeof(err)), -1);
	seal_release(&st);
	assert_int_equal(chmod(path, 0600), 0);

	snprintf(lnk, sizeof(lnk), "%s/link", dir);
	assert_int_equal(symlink(path, lnk), 0);
	assert_int_equal(seal_load(lnk, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "symbolic link"));
	seal_release(&st);
	unlink(lnk);
	unlink(path);

	/* Not 32 bytes, not base64, or more than one line. */
	token_file(dir, "k2", short31, strlen(short31), 0600, path,
	    sizeof(path));
	assert_int_equal(seal_load(path, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "base64 of 32"));
	assert_null(strstr(err, "AAEC"));
	seal_release(&st);
	unlink(path);
	token_file(dir, "k3", long33, strlen(long33), 0600, path,
	    sizeof(path));
	assert_int_equal(seal_load(path, &st, err, sizeof(err)), -1);
	assert_null(strstr(err, "AAEC"));
	seal_release(&st);
	unlink(path);
	token_file(dir, "k4", "not a key!\n", 11, 0600, path, sizeof(path));
	assert_int_equal(seal_load(path, &st, err, sizeof(err)), -1);
	assert_null(strstr(err, "not a key"));
	seal_release(&st);
	unlink(path);
	token_file(dir, "k5", good, strlen(good) - 1, 0600, path,
	    sizeof(path));
	assert_int_equal(seal_load(path, &st, err, sizeof(err)), 0);
	seal_release(&st);
	unlink(path);
	{
		char	two[128];

		snprintf(two, sizeof(two), "%s%s", good, good);
		token_file(dir, "k6", two, strlen(two), 0600, path,
		    sizeof(path));
		assert_int_equal(seal_load(path, &st, err, sizeof(err)), -1);
		seal_release(&st);
		unlink(path);
	}
	token_file(dir, "k7", "\n", 1, 0600, path, sizeof(path));
	assert_int_equal(seal_load(path, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty"));
	seal_release(&st);
	unlink(path);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(seal_load(path, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
	seal_release(&st);
	assert_int_equal(rmdir(dir), 0);
}

/* One "#keyword<TAB>value" line of the agent's example config. */
static void
example_line(const char *line, void *arg)
{
	/* A worker_secrets target's keys, each with the other two. */
	static const char *const ws[] = { "kind\tworker_secrets",
	    "cf_script_name\tw", "secrets_tenant\tg" };
	struct sync_conf	*sc = arg;
	char			 text[1400], err[1024];
	size_t			 i, n;
	int			 worker = 0;

	for (i = 1; i < sizeof(ws) / sizeof(ws[0]); i++)
		if (strncmp(line + 1, ws[i], strcspn(ws[i], "\t") + 1) == 0)
			worker = 1;
	if (strncmp(line + 1, "kind\t", 5) == 0 &&
	    strstr(line, "worker_secrets") != NULL)
		worker = 1;
	if (worker) {
		n = (size_t)snprintf(text, sizeof(text), "cf_account_id " ACCT
		    "\ncf_api_token_file /t\n");
		for (i = 0; i < sizeof(ws) / sizeof(ws[0]); i++)
			if (strncmp(line + 1, ws[i], strcspn(ws[i], "\t") +
			    1) != 0)
				n += (size_t)snprintf(text + n, sizeof(text) - n,
				    "%s\n", ws[i]);
		snprintf(text + n, sizeof(text) - n, "%s", line + 1);
	} else if (strncmp(line + 1, "cf_api_token_", 13) == 0)
		snprintf(text, sizeof(text), "cf_account_id " ACCT
		    "\ncf_namespace_id " NSID "\n%s", line + 1);
	else
		snprintf(text, sizeof(text), BASE "%s", line + 1);
	if (load(sc, text, err, sizeof(err)) != 0)
		fail_msg("example line %s: %s", line, err);
	sync_conf_release(sc);
}

/*
 * The example loads, and each commented-out "#keyword<TAB>value" line in
 * it is accepted as well (one token source at a time).
 */
static void
test_example_config(void **state)
{
	struct sync_conf	 sc;
	char			 path[PATH_MAX], err[1024];

	(void)state;
	test_source_path("config/wfvault-sync.conf.example", path,
	    sizeof(path));
	sync_conf_init(&sc);
	if (sync_conf_parse_file(path, &sc, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	sync_conf_release(&sc);
	assert_true(test_example_lines(path, example_line, &sc) >= 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_keyword),
		cmocka_unit_test(test_hex_ids),
		cmocka_unit_test(test_api_base),
		cmocka_unit_test(test_api_base_keyword),
		cmocka_unit_test(test_token_sources),
		cmocka_unit_test(test_key_prefix),
		cmocka_unit_test(test_numbers_and_words),
		cmocka_unit_test(test_target_blocks),
		cmocka_unit_test(test_target_old_forms),
		cmocka_unit_test(test_target_errors),
		cmocka_unit_test(test_worker_secrets_kind),
		cmocka_unit_test(test_tenants),
		cmocka_unit_test(test_request_budget),
		cmocka_unit_test(test_prune_max_share),
		cmocka_unit_test(test_seal_key_file),
		cmocka_unit_test(test_token_file),
		cmocka_unit_test(test_token_credential),
		cmocka_unit_test(test_example_config),
	};

	proto_json_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
