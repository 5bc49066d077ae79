/*
 * wfvault-sync: options and start-up, then one of the modes: one pass
 * (--once, --dry-run), --reconcile, or following the daemon's change feed
 * until SIGTERM.
 */
#include <sys/prctl.h>
#include <sys/resource.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "sync.h"
#include "util.h"

#define EXIT_USAGE	2
#define EXIT_DAEMON	6

#define SYNC_DEBOUNCE_MS	100	/* let a burst of writes land first */
/*
 * Between the starts of two passes: Cloudflare takes one write a second
 * to a key and 1,200 requests in 5 minutes, so changes that arrive
 * meanwhile go out together in the next pass.
 */
#define SYNC_PASS_MIN_MS	1000
#define SYNC_RECONNECT_MIN_MS	100
#define SYNC_RECONNECT_MAX_MS	5000
/* A target whose pass failed waits this long, doubling, to try again. */
#define SYNC_TARGET_RETRY_MIN_MS	5000
#define SYNC_TARGET_RETRY_MAX_MS	300000

static void	usage(int) __attribute__((__noreturn__));
static void	usage_error(const char *) __attribute__((__noreturn__));

/* Help asked for goes to stdout and exits 0; a usage error, stderr and 2. */
static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: wfvault-sync -c FILE [-n] [-d] [--target NAME] [--check] "
	    "[--once]\n"
	    "                    [--dry-run] [--reconcile [--prune "
	    "[--force]]]\n"
	    "       wfvault-sync --gen-seal-key FILE\n"
	    "       wfvault-sync -h | --help | --version\n"
	    "  -c FILE       configuration file\n"
	    "  -n            check the configuration and the token, then "
	    "exit\n"
	    "  -d            log debug messages\n"
	    "  --target NAME only this target of the configuration (default: "
	    "all)\n"
	    "  --check       prove token, account, namespace and write "
	    "access with API requests\n"
	    "  --once        push everything pending, then exit (0: KV is "
	    "up to date)\n"
	    "  --dry-run     print what would be written or deleted; change "
	    "nothing\n"
	    "  --reconcile   compare KV with the vault and repair drift\n"
	    "  --prune       with --reconcile: delete KV keys the vault does "
	    "not have (only keys wfvault wrote)\n"
	    "  --force       with --prune: delete more than prune_max_share "
	    "of them\n"
	    "  --gen-seal-key FILE  write a new key for sealed values to FILE "
	    "(mode 0400)\n"
	    "  -h, --help    show this help\n"
	    "  --version     print the version\n"
	    "Without --once, --dry-run or --reconcile it follows the vault "
	    "until SIGTERM.  --dry-run also goes with --reconcile [--prune] "
	    "(report only).\n");
	exit(status);
}

static void
usage_error(const char *why)
{
	fprintf(stderr, "%s: %s\n", SYNC_PROG, why);
	usage(EXIT_USAGE);
}

/* No core dumps and no ptrace by other users: the heap holds secrets. */
static int
harden_process(void)
{
	struct rlimit	rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) == -1 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		return -1;
	return 0;
}

static int
exit_code(int rc)
{
	if (rc == 0)
		return 0;
	return rc == SYNC_E_DAEMON ? EXIT_DAEMON : 1;
}

/*
 * One target's state in this process: its own KV client (and so its own
 * batch limit and uncertain writes), position and retry pause.
 */
struct sync_runner {
	struct sync_target	*ru_target;
	struct kv_client	 ru_kv;
	int			 ru_kv_ready;
	json_t			*ru_uncertain;	/* the engine's sx_uncertain */
	uint64_t		 ru_synced;	/* pushed up to this seq */
	int			 ru_need;	/* a pass is due */
	int			 ru_failing;
	int64_t			 ru_retry_at;	/* CLOCK_MONOTONIC ms */
	uint64_t		 ru_backoff;	/* ms */
	int			 ru_skipped_said;
	int			 ru_checked;	/* its preflight passed */
	char			*ru_setup_err;	/* --check: no client, why */
};

struct sync_runners {
	struct sync_runner	*rs_v;
	size_t			 rs_n;
	int			 rs_registered;
};

/* "staging: " before a target's lines when there are several. */
static const char *
target_prefix(const struct sync_runners *rs, const struct sync_runner *ru,
    char *buf, size_t len)
{
	if (rs->rs_n < 2)
		return "";
	snprintf(buf, len, "%s: ", ru->ru_target->st_name);
	return buf;
}

/*
 * The daemon trims its feed up to what every target it knows has
 * acknowledged.  A target it has not heard of yet (new in the file)
 * would find the feed trimmed past it by the time its turn comes after
 * the others' acks, and need a full pass: so each is made known, at seq
 * 0, before any target acknowledges anything.
 */
static int
runners_register(struct sync_ctx *ctx, struct sync_runners *rs, char *err,
    size_t errlen)
{
	struct proto_error	 pe;
	json_t			*res;
	uint64_t		 acked;
	size_t			 i;
	int			 rc;

	for (i = 0; i < rs->rs_n; i++) {
		if (rs->rs_v[i].ru_target->st_kind != SYNC_KIND_KV)
			continue;
		if ((rc = sync_call(ctx, "sync_state", json_pack("{s:s}",
		    "target", rs->rs_v[i].ru_target->st_name), &res, &pe, err,
		    errlen)) != 0)
			return rc;
		rc = sync_get_uint(res, "acked_seq", &acked);
		json_decref(res);
		if (rc == -1) {
			snprintf(err, errlen, "wfvaultd sent a malformed reply "
			    "to sync_state");
			return SYNC_E_FAIL;
		}
		if (acked > 0)
			continue;
		if ((rc = sync_call(ctx, "sync_ack", json_pack("{s:s,s:i}",
		    "target", rs->rs_v[i].ru_target->st_name, "seq", 0), &res,
		    &pe, err, errlen)) != 0)
			return rc;
		json_decref(res);
	}
	rs->rs_registered = 1;
	return 0;
}

/*
 * One pass of one target: the feed (or a reconcile) pushed by the engine
 * of the target's kind.  Returns 0, SYNC_E_*, or SYNC_SKIPPED.
 */
#define SYNC_SKIPPED	1
static int
target_pass(struct sync_ctx *ctx, struct sync_runners *rs,
    struct sync_runner *ru, int reconcile, struct sync_report *rep,
    char *err, size_t errlen)
{
	int	rc;

	memset(rep, 0, sizeof(*rep));
	if (rs->rs_n > 1 && !rs->rs_registered && !reconcile &&
	    !ctx->sx_dry_run &&
	    (rc = runners_register(ctx, rs, err, errlen)) != 0)
		return rc;
	ctx->sx_target = ru->ru_target;
	ctx->sx_kv = &ru->ru_kv;
	ctx->sx_uncertain = ru->ru_uncertain;
	switch (ru->ru_target->st_kind) {
	case SYNC_KIND_KV:
		rc = reconcile ? sync_engine_reconcile(ctx, rep, err, errlen) :
		    sync_engine_run(ctx, rep, err, errlen);
		break;
	case SYNC_KIND_WORKER_SECRETS:
		/* One tenant's fields as a Worker script's secrets. */
		rc = reconcile ? secrets_engine_reconcile(ctx, rep, err,
		    errlen) : secrets_engine_run(ctx, rep, err, errlen);
		break;
	default:
		snprintf(err, errlen, "unknown kind of target");
		rc = SYNC_E_FAIL;
		break;
	}
	ru->ru_uncertain = ctx->sx_uncertain;
	ctx->sx_uncertain = NULL;
	ctx->sx_target = NULL;
	ctx->sx_kv = NULL;
	return rc;
}

/* What --once or --dry-run did for one target, on stdout. */
static void
print_pass(const struct sync_ctx *ctx, const char *pfx,
    const struct sync_report *rep)
{
	if (ctx->sx_dry_run)
		printf("%sdry run: %llu to write, %llu to delete (the "
		    "feed is at seq %llu; nothing was changed)\n", pfx,
		    (unsigned long long)rep->sr_written,
		    (unsigned long long)rep->sr_deleted,
		    (unsigned long long)rep->sr_seq);
	else
		printf("%sup to date at seq %llu (%llu written, %llu "
		    "deleted, %llu requests%s%s)\n", pfx,
		    (unsigned long long)rep->sr_seq,
		    (unsigned long long)rep->sr_written,
		    (unsigned long long)rep->sr_deleted,
		    (unsigned long long)rep->sr_requests,
		    rep->sr_full ? "; a full pass, the feed was "
		    "trimmed" : "",
		    rep->sr_repushed > 0 ? "; some written again after "
		    "settle_time" : "");
}

/* What --reconcile did (or would do) for one target, on stdout. */
static void
print_reconcile(const struct sync_ctx *ctx, const char *pfx,
    const struct sync_report *rep)
{
	printf("%sreconcile%s: %llu tenants in the vault, %llu keys in "
	    "KV: %llu %s, %llu stale, %llu %s (%llu requests)\n", pfx,
	    ctx->sx_dry_run ? " (dry run)" : "",
	    (unsigned long long)rep->sr_vault_tenants,
	    (unsigned long long)rep->sr_kv_keys,
	    (unsigned long long)rep->sr_written,
	    ctx->sx_dry_run ? "to rewrite" : "rewritten",
	    (unsigned long long)rep->sr_stale,
	    (unsigned long long)rep->sr_deleted,
	    ctx->sx_dry_run ? "to delete" : "deleted",
	    (unsigned long long)rep->sr_requests);
	if (rep->sr_stale > 0 && !ctx->sx_prune)
		printf("%sstale keys are kept; run with --reconcile "
		    "--prune to delete them\n", pfx);
}

/*
 * --once, --dry-run and --reconcile: one pass (over the feed, or a
 * reconcile) for each target; one that fails does not keep the others
 * from theirs.
 */
static int
run_passes(struct sync_ctx *ctx, struct sync_runners *rs, int reconcile)
{
	struct sync_report	 rep;
	struct sync_runner	*ru;
	char			 err[1024], pb[SYNC_TARGET_NAME_MAX + 4];
	const char		*pfx, *what;
	size_t			 i;
	int			 rc, worst = 0;

	what = reconcile ? "reconcile failed" : ctx->sx_dry_run ?
	    "dry run failed" : "KV is not up to date";
	for (i = 0; i < rs->rs_n; i++) {
		ru = &rs->rs_v[i];
		pfx = target_prefix(rs, ru, pb, sizeof(pb));
		rc = target_pass(ctx, rs, ru, reconcile, &rep, err,
		    sizeof(err));
		if (rc == SYNC_SKIPPED) {
			log_warnx("%s%s", pfx, err);
			continue;
		}
		/* A failure names its target, even when it is the only one. */
		if (rc == SYNC_E_STOP) {
			log_warnx("%s: %s: interrupted", ru->ru_target->st_name,
			    what);
			return 1;
		}
		if (rc != 0) {
			log_warnx("%s: %s: %s", ru->ru_target->st_name, what,
			    err);
			if (worst != SYNC_E_DAEMON)
				worst = rc;
			continue;
		}
		if (reconcile)
			print_reconcile(ctx, pfx, &rep);
		else
			print_pass(ctx, pfx, &rep);
	}
	return exit_code(worst);
}

/*
 * --check: the preflight of every target, each with its own client and
 * token, one line each on stdout.  Returns 0 when all passed.
 */
static int
run_check_all(struct sync_ctx *ctx, struct sync_runners *rs)
{
	struct sync_runner	*ru;
	char			 msg[1024];
	size_t			 i;
	int			 rc, failed = 0;

	for (i = 0; i < rs->rs_n && !sync_stopped(); i++) {
		ru = &rs->rs_v[i];
		if (ru->ru_setup_err != NULL) {
			snprintf(msg, sizeof(msg), "%s", ru->ru_setup_err);
			rc = KV_E_FAIL;
		} else
			rc = sync_preflight_target(ctx->sx_conf, ru->ru_target,
			    &ru->ru_kv, msg, sizeof(msg));
		if (rc == KV_E_STOP)
			snprintf(msg, sizeof(msg), "interrupted");
		if (rc == 0)
			printf("%s: %s\n", ru->ru_target->st_name, msg);
		else {
			printf("%s: FAILED: %s\n", ru->ru_target->st_name, msg);
			failed = 1;
		}
	}
	return failed || sync_stopped() ? 1 : 0;
}

/* Opens the watching connection: notifications for changes past since. */
static int
watch_open(struct sync_ctx *ctx, struct proto_client *w, uint64_t since,
    char *err, size_t errlen)
{
	struct proto_error	 pe;
	json_t			*res;
	int			 r;

	if (proto_client_connect(w, ctx->sx_conf->sc_socket, &pe) !=
	    PROTO_CALL_OK) {
		snprintf(err, errlen, "%s", pe.pe_message);
		return SYNC_E_DAEMON;
	}
	w->pc_timeout_ms = 60000;
	r = proto_client_call(w, "watch", json_pack("{s:I}", "since",
	    (json_int_t)since), &res, &pe);
	if (r == PROTO_CALL_OK) {
		json_decref(res);
		return 0;
	}
	snprintf(err, errlen, "%s%s", r == PROTO_CALL_REMOTE ?
	    "wfvaultd refused watch: " : "", pe.pe_message);
	proto_client_close(w);
	return r == PROTO_CALL_REMOTE ? SYNC_E_FAIL : SYNC_E_DAEMON;
}

/* The earliest seq some target has not pushed: where watching starts. */
static uint64_t
runners_synced(const struct sync_runners *rs)
{
	uint64_t	m = UINT64_MAX;
	size_t		i;

	for (i = 0; i < rs->rs_n; i++)
		if (!rs->rs_v[i].ru_skipped_said && rs->rs_v[i].ru_synced < m)
			m = rs->rs_v[i].ru_synced;
	return m == UINT64_MAX ? 0 : m;
}

/*
 * Milliseconds until the next target whose pass failed may try again
 * (0: one is due now), or -1 when none waits.
 */
static int
runners_due_in(const struct sync_runners *rs, int64_t now)
{
	const struct sync_runner	*ru;
	int64_t				 best = -1, d;
	size_t				 i;

	for (i = 0; i < rs->rs_n; i++) {
		ru = &rs->rs_v[i];
		if (!ru->ru_need)
			continue;
		d = ru->ru_retry_at > now ? ru->ru_retry_at - now : 0;
		if (best == -1 || d < best)
			best = d;
	}
	return best > INT32_MAX ? INT32_MAX : (int)best;
}

/*
 * A target's preflight or pass failed (what says which, err why): it
 * waits while the others go on, doubling up to SYNC_TARGET_RETRY_MAX_MS;
 * at the free plan's daily limit until 00:00 UTC, as trying before then
 * would only be refused again.
 */
static void
runner_failed(struct sync_runner *ru, const char *what, const char *err)
{
	uint64_t	wait;

	if (ru->ru_kv.kc_daily_limit) {
		ru->ru_kv.kc_daily_limit = 0;
		wait = sync_ms_to_utc_midnight(time(NULL));
		ru->ru_retry_at = util_now_ms() + (int64_t)wait;
		ru->ru_failing = 1;
		log_warnx("%s: %s; waiting until 00:00 UTC (%llu min)", what,
		    err, (unsigned long long)(wait / 60000));
		return;
	}
	ru->ru_backoff = ru->ru_backoff == 0 ? SYNC_TARGET_RETRY_MIN_MS :
	    ru->ru_backoff * 2;
	if (ru->ru_backoff > SYNC_TARGET_RETRY_MAX_MS)
		ru->ru_backoff = SYNC_TARGET_RETRY_MAX_MS;
	ru->ru_retry_at = util_now_ms() + (int64_t)ru->ru_backoff;
	ru->ru_failing = 1;
	log_warnx("%s: %s; trying again in %llu s", what, err,
	    (unsigned long long)ru->ru_backoff / 1000);
}

/*
 * A target's setup proven before its first write (at start-up, and again
 * after each failure until it passes).  Returns 0, SYNC_E_STOP, or
 * SYNC_E_FAIL after runner_failed().
 */
static int
runner_preflight(struct sync_ctx *ctx, struct sync_runner *ru)
{
	char	msg[1024], what[SYNC_TARGET_NAME_MAX + 32];
	int	rc;

	rc = sync_preflight_target(ctx->sx_conf, ru->ru_target, &ru->ru_kv,
	    msg, sizeof(msg));
	if (rc == KV_E_STOP)
		return SYNC_E_STOP;
	if (rc != 0) {
		snprintf(what, sizeof(what), "preflight of target '%s' failed",
		    ru->ru_target->st_name);
		runner_failed(ru, what, msg);
		return SYNC_E_FAIL;
	}
	log_info("target '%s': %s", ru->ru_target->st_name, msg);
	ru->ru_checked = 1;
	return 0;
}

/*
 * One round of the service: a pass for every target that is due, after
 * its preflight has passed.  A target that fails is logged and waits
 * (runner_failed) while the others go on.  Returns 0, SYNC_E_STOP, or
 * SYNC_E_DAEMON (err filled).
 */
static int
run_round(struct sync_ctx *ctx, struct sync_runners *rs, char *err,
    size_t errlen)
{
	struct sync_report	 rep;
	struct sync_runner	*ru;
	char			 pb[SYNC_TARGET_NAME_MAX + 4];
	char			 what[SYNC_TARGET_NAME_MAX + 32];
	const char		*pfx;
	int64_t			 now;
	size_t			 i;
	int			 rc;

	for (i = 0; i < rs->rs_n && !sync_stopped(); i++) {
		ru = &rs->rs_v[i];
		now = util_now_ms();
		if (!ru->ru_need || ru->ru_retry_at > now)
			continue;
		pfx = target_prefix(rs, ru, pb, sizeof(pb));
		if (!ru->ru_checked && (rc = runner_preflight(ctx, ru)) != 0) {
			if (rc == SYNC_E_STOP)
				return rc;
			continue;
		}
		rc = target_pass(ctx, rs, ru, 0, &rep, err, errlen);
		if (rc == SYNC_E_STOP || rc == SYNC_E_DAEMON)
			return rc;
		if (rc == SYNC_SKIPPED) {
			if (!ru->ru_skipped_said)
				log_warnx("%s%s", pfx, err);
			ru->ru_skipped_said = 1;
			ru->ru_need = 0;
			continue;
		}
		if (rc != 0) {
			snprintf(what, sizeof(what), "%s: KV is not up to date",
			    ru->ru_target->st_name);
			runner_failed(ru, what, err);
			continue;
		}
		if (ru->ru_failing)
			log_info("%sup to date again", pfx);
		ru->ru_failing = 0;
		ru->ru_backoff = 0;
		ru->ru_retry_at = 0;
		ru->ru_need = 0;
		ru->ru_synced = rep.sr_seq;
		if (rep.sr_written > 0 || rep.sr_deleted > 0)
			log_info("%sup to date at seq %llu (%llu written, %llu "
			    "deleted, %llu requests)", pfx,
			    (unsigned long long)rep.sr_seq,
			    (unsigned long long)rep.sr_written,
			    (unsigned long long)rep.sr_deleted,
			    (unsigned long long)rep.sr_requests);
	}
	return sync_stopped() ? SYNC_E_STOP : 0;
}

/*
 * The service: a pass for every target, then sleep in poll() until the
 * daemon says the feed moved (or a failed target's pause is over), and
 * again.  A lost daemon is retried with a growing pause; KV trouble is
 * retried inside the KV client, then the target waits and tries again;
 * only a refused watch, which needs a person, ends it.
 */
static int
run_forever(struct sync_ctx *ctx, struct sync_runners *rs)
{
	struct proto_client	 w = PROTO_CLIENT_INIT;
	char			 err[1024];
	uint64_t		 seq;
	uint64_t		 backoff = SYNC_RECONNECT_MIN_MS;
	int64_t			 started = -1, left;
	size_t			 i;
	int			 rc = 0, down = 0, due;

	for (i = 0; i < rs->rs_n; i++) {
		rs->rs_v[i].ru_need = 1;
		log_info("following %s for target '%s'", ctx->sx_conf->sc_socket,
		    rs->rs_v[i].ru_target->st_name);
	}
	while (!sync_stopped()) {
		if (runners_due_in(rs, util_now_ms()) == 0) {
			if (started >= 0 && (left = started +
			    SYNC_PASS_MIN_MS - util_now_ms()) > 0 &&
			    sync_sleep((uint64_t)left) == -1)
				break;
			started = util_now_ms();
			rc = run_round(ctx, rs, err, sizeof(err));
			if (rc == SYNC_E_STOP)
				break;
			if (rc == SYNC_E_DAEMON)
				goto lost;
			if (down)
				log_info("wfvaultd is reachable again");
			down = 0;
			backoff = SYNC_RECONNECT_MIN_MS;
		}
		if (w.pc_fd == -1) {
			rc = watch_open(ctx, &w, runners_synced(rs), err,
			    sizeof(err));
			if (rc == SYNC_E_DAEMON)
				goto lost;
			if (rc != 0) {
				log_warnx("%s", err);
				break;
			}
		}
		due = runners_due_in(rs, util_now_ms());
		rc = sync_wait_changed(&w, due, &seq, err, sizeof(err));
		if (rc == SYNC_E_STOP)
			break;
		if (rc == SYNC_E_DAEMON)
			goto lost;
		if (rc == 1)
			continue;	/* a failed target's pause is over */
		due = 0;
		for (i = 0; i < rs->rs_n; i++) {
			if (seq > rs->rs_v[i].ru_synced &&
			    !rs->rs_v[i].ru_skipped_said) {
				rs->rs_v[i].ru_need = 1;
				due = 1;
			}
		}
		if (!due)
			continue;	/* already pushed in the last pass */
		log_debug("%s: the feed is at %llu", __func__,
		    (unsigned long long)seq);
		/* The pass itself waits out the rest of SYNC_PASS_MIN_MS. */
		if (sync_sleep(SYNC_DEBOUNCE_MS) == -1)
			break;
		continue;
lost:
		rc = 0;
		proto_client_close(&w);
		sync_disconnect(ctx);
		for (i = 0; i < rs->rs_n; i++)
			if (!rs->rs_v[i].ru_skipped_said)
				rs->rs_v[i].ru_need = 1;
		if (!down)
			log_warnx("cannot reach wfvaultd (%s); retrying", err);
		else
			log_debug("%s: %s", __func__, err);
		down = 1;
		if (sync_sleep(backoff) == -1)
			break;
		backoff = backoff * 2 > SYNC_RECONNECT_MAX_MS ?
		    SYNC_RECONNECT_MAX_MS : backoff * 2;
	}
	proto_client_close(&w);
	if (rc == SYNC_E_STOP || (rc == 0 && sync_stopped())) {
		log_info("stopping");
		return 0;
	}
	return exit_code(rc);
}

/*
 * The seal key of st, if it has one, where AES-256-GCM is there (-n
 * checks it too).  Returns 0 or -1 with err naming the target.
 */
static int
sync_seal_target_load(struct sync_target *st, char *err, size_t errlen)
{
	char	why[1024];

	if (st->st_seal_key_file == NULL)
		return 0;
	if (seal_init(why, sizeof(why)) == -1 ||
	    sync_seal_key_load(st, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "target %s: %s", st->st_name, why);
		return -1;
	}
	return 0;
}

/*
 * --gen-seal-key: a new key, and how to hand it to the Worker without it
 * passing through argv or a terminal.
 */
static int
gen_seal_key(const char *path)
{
	char	kid[SEAL_KID_LEN + 1], err[1024];

	if (seal_key_generate(path, kid, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", SYNC_PROG, err);
		return 1;
	}
	printf("wrote a new seal key to %s (key id %s)\n"
	    "give it to the Worker as a secret (the key stays out of argv):\n"
	    "  wrangler secret put WFVAULT_SEAL_KEY < %s\n"
	    "then name it in the target: seal_key_file %s\n",
	    path, kid, path, path);
	return 0;
}

int
main(int argc, char *argv[])
{
	enum {
		OPT_ONCE = 256, OPT_DRY_RUN, OPT_RECONCILE, OPT_PRUNE,
		OPT_VERSION, OPT_TARGET, OPT_CHECK, OPT_FORCE, OPT_GEN_SEAL_KEY
	};
	static const struct option longopts[] = {
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "reconcile", no_argument, NULL, OPT_RECONCILE },
		{ "prune", no_argument, NULL, OPT_PRUNE },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "gen-seal-key", required_argument, NULL, OPT_GEN_SEAL_KEY },
		{ NULL, 0, NULL, 0 }
	};
	struct sync_conf	 conf;
	struct sync_runners	 rs;
	struct sync_runner	*ru;
	struct sync_target	*st;
	struct kv_budget	 budget;
	struct sync_ctx		 ctx;
	const char		*conf_path = NULL, *only = NULL, *seal_path = NULL;
	char			*tokens[SYNC_TARGETS_MAX] = { NULL };
	char			 err[2048];
	size_t			 i;
	int			 ch, check = 0, debug = 0, once = 0;
	int			 dry_run = 0, reconcile = 0, prune = 0, rc;
	int			 preflight = 0, force = 0;

	while ((ch = getopt_long(argc, argv, "c:dnh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 'n':
			check = 1;
			break;
		case OPT_ONCE:
			once = 1;
			break;
		case OPT_DRY_RUN:
			dry_run = 1;
			break;
		case OPT_RECONCILE:
			reconcile = 1;
			break;
		case OPT_PRUNE:
			prune = 1;
			break;
		case OPT_FORCE:
			force = 1;
			break;
		case OPT_CHECK:
			preflight = 1;
			break;
		case OPT_TARGET:
			only = optarg;
			break;
		case 'h':
			usage(0);
		case OPT_VERSION:
			printf("%s %s\n", SYNC_PROG, PROTO_SERVER_VERSION);
			return 0;
		case OPT_GEN_SEAL_KEY:
			seal_path = optarg;
			break;
		default:
			usage(EXIT_USAGE);
		}
	}
	if (seal_path != NULL) {
		if (optind != argc || conf_path != NULL || check || once ||
		    dry_run || reconcile || prune)
			usage_error("--gen-seal-key FILE takes no other "
			    "option");
		return gen_seal_key(seal_path);
	}
	if (optind != argc || conf_path == NULL)
		usage(EXIT_USAGE);
	/* Options that would be ignored are refused, not guessed at. */
	if (check && (once || dry_run || reconcile || prune))
		usage_error("-n only checks the configuration and the token; "
		    "it takes no --once, --dry-run, --reconcile or --prune");
	if (prune && !reconcile)
		usage_error("--prune works only with --reconcile");
	if (force && !prune)
		usage_error("--force works only with --reconcile --prune");
	if (preflight && (check || once || dry_run || reconcile))
		usage_error("--check only proves the setup; it takes no -n, "
		    "--once, --dry-run or --reconcile");
	if (once && reconcile)
		usage_error("--reconcile is a single pass already and does not "
		    "push the change feed; run --once and --reconcile apart");
	log_init(SYNC_PROG, debug);
	setvbuf(stdout, NULL, _IOLBF, 0);
	proto_json_init();
	if (harden_process() == -1)
		log_warn("cannot disable core dumps");

	sync_conf_init(&conf);
	memset(&rs, 0, sizeof(rs));
	if (sync_conf_parse_file(conf_path, &conf, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		sync_conf_release(&conf);
		return EXIT_USAGE;
	}
	if (only != NULL && sync_conf_target(&conf, only) == NULL) {
		log_warnx("--target %s: %s has no such target", only,
		    conf_path);
		sync_conf_release(&conf);
		return EXIT_USAGE;
	}
	if (conf.sc_ca_file != NULL && access(conf.sc_ca_file, R_OK) == -1) {
		log_warn("cf_ca_file %s", conf.sc_ca_file);
		sync_conf_release(&conf);
		return EXIT_USAGE;
	}
	if ((rs.rs_v = calloc(conf.sc_ntargets, sizeof(*rs.rs_v))) == NULL ||
	    kv_budget_init(&budget, conf.sc_budget_requests,
	    conf.sc_budget_window) == -1) {
		log_warn("cannot set up the targets");
		free(rs.rs_v);
		sync_conf_release(&conf);
		return 1;
	}
	/*
	 * Every token and seal key is checked before anything is sent;
	 * --check reports a target that fails here on its line instead.
	 */
	rc = EXIT_USAGE;
	for (i = 0; i < conf.sc_ntargets; i++) {
		st = &conf.sc_targets[i];
		if (only != NULL && strcmp(st->st_name, only) != 0)
			continue;
		if (sync_token_load(st, &tokens[rs.rs_n], err,
		    sizeof(err)) == -1 ||
		    sync_seal_target_load(st, err, sizeof(err)) == -1) {
			if (preflight) {
				rs.rs_v[rs.rs_n].ru_target = st;
				if ((rs.rs_v[rs.rs_n++].ru_setup_err =
				    strdup(err)) == NULL) {
					log_warn("%s", __func__);
					goto out_tokens;
				}
				continue;
			}
			/* A seal key's error names its target already. */
			if (conf.sc_ntargets > 1 &&
			    strncmp(err, "target ", 7) != 0)
				log_warnx("target '%s': %s", st->st_name, err);
			else
				log_warnx("%s", err);
			goto out_tokens;
		}
		rs.rs_v[rs.rs_n++].ru_target = st;
	}
	if (check) {
		printf("configuration OK\n");
		rc = 0;
		goto out_tokens;
	}

	rc = 1;
	if (kv_global_init(err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		goto out_tokens;
	}
	if (sync_signals_init() == -1) {
		log_warn("cannot set up signal handling");
		goto out_kv;
	}
	/* From here each token lives only in its (wiped) request headers. */
	for (i = 0; i < rs.rs_n; i++) {
		ru = &rs.rs_v[i];
		if (ru->ru_setup_err != NULL)
			continue;
		if (kv_client_init(&ru->ru_kv, &conf, ru->ru_target, tokens[i],
		    err, sizeof(err)) == -1) {
			if (preflight &&
			    (ru->ru_setup_err = strdup(err)) != NULL)
				continue;
			log_warnx("target '%s': %s", ru->ru_target->st_name,
			    err);
			goto out_kv;
		}
		ru->ru_kv_ready = 1;
		sync_token_free(tokens[i]);
		tokens[i] = NULL;
		ru->ru_kv.kc_sleep = sync_sleep;
		ru->ru_kv.kc_stopped = sync_stopped;
		ru->ru_kv.kc_budget = &budget;
		/*
		 * A command gives up and says so; a service with one target
		 * retries for ever, with several a target gives up after as
		 * many attempts and waits, so the others go on meanwhile.
		 */
		ru->ru_kv.kc_max_attempts = once || dry_run || reconcile ||
		    preflight || rs.rs_n > 1 ? KV_ONCE_ATTEMPTS : 0;
	}

	memset(&ctx, 0, sizeof(ctx));
	ctx.sx_conf = &conf;
	ctx.sx_conn = (struct proto_client)PROTO_CLIENT_INIT;
	ctx.sx_dry_run = dry_run;
	ctx.sx_prune = prune;
	ctx.sx_force = force;
	ctx.sx_out = stdout;

	if (preflight)
		rc = run_check_all(&ctx, &rs);
	else if (reconcile)
		rc = run_passes(&ctx, &rs, 1);
	else if (once || dry_run)
		rc = run_passes(&ctx, &rs, 0);
	else
		rc = run_forever(&ctx, &rs);
	if (budget.kb_waits > 0)
		log_info("request budget: %llu of %llu API requests waited "
		    "for it, %.1f s in all",
		    (unsigned long long)budget.kb_waits,
		    (unsigned long long)budget.kb_requests,
		    (double)budget.kb_waited_ms / 1000);
	sync_disconnect(&ctx);
	secrets_release_all();
out_kv:
	for (i = 0; i < rs.rs_n; i++) {
		if (rs.rs_v[i].ru_kv_ready)
			kv_client_release(&rs.rs_v[i].ru_kv);
		json_decref(rs.rs_v[i].ru_uncertain);
	}
	kv_global_cleanup();
out_tokens:
	for (i = 0; i < SYNC_TARGETS_MAX; i++)
		if (tokens[i] != NULL)
			sync_token_free(tokens[i]);
	for (i = 0; i < rs.rs_n; i++)
		free(rs.rs_v[i].ru_setup_err);
	kv_budget_release(&budget);
	free(rs.rs_v);
	sync_conf_release(&conf);
	return rc;
}
