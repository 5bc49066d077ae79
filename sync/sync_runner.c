/*
 * wfvault-sync's targets at work.  Each target runs in a thread of its
 * own, with its own KV client: a target whose endpoint hangs until
 * request_timeout, that backs off after a failure, or that waits out
 * settle_time after a write of unknown outcome never holds the others
 * back.  What the threads share is small and locked: the daemon
 * connection (sync_link), the request budget (kv_budget) and the state
 * below (rs_lock).
 *
 * The service: the main thread follows the daemon's change feed and
 * tells the targets (rs_cond); each target's thread makes its passes.
 * The one-shot modes (--check, --once, --dry-run, --reconcile) run every
 * target's pass at once and print each target's lines together, when
 * it is done.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "proto.h"
#include "sync.h"
#include "util.h"

#define EXIT_DAEMON	6

#define SYNC_DEBOUNCE_MS	100	/* let a burst of writes land first */
/*
 * Between the starts of two passes of a target: Cloudflare takes one
 * write a second to a key and 1,200 requests in 5 minutes, so changes
 * that arrive meanwhile go out together in the next pass.
 */
#define SYNC_PASS_MIN_MS	1000
#define SYNC_RECONNECT_MIN_MS	100
#define SYNC_RECONNECT_MAX_MS	5000
/* A target whose pass failed waits this long, doubling, to try again. */
#define SYNC_TARGET_RETRY_MIN_MS	5000
#define SYNC_TARGET_RETRY_MAX_MS	300000

int
runners_init(struct sync_runners *rs, size_t n)
{
	pthread_condattr_t	ca;

	memset(rs, 0, sizeof(*rs));
	if ((rs->rs_v = calloc(n, sizeof(*rs->rs_v))) == NULL)
		return -1;
	/* Deadlines are util_now_ms()'s: CLOCK_MONOTONIC. */
	if ((errno = pthread_condattr_init(&ca)) != 0)
		goto fail;
	if ((errno = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) != 0 ||
	    (errno = pthread_cond_init(&rs->rs_cond, &ca)) != 0) {
		pthread_condattr_destroy(&ca);
		goto fail;
	}
	pthread_condattr_destroy(&ca);
	if ((errno = pthread_mutex_init(&rs->rs_lock, NULL)) != 0) {
		pthread_cond_destroy(&rs->rs_cond);
		goto fail;
	}
	rs->rs_ready = 1;
	return 0;
fail:
	free(rs->rs_v);
	rs->rs_v = NULL;
	return -1;
}

void
runners_release(struct sync_runners *rs)
{
	size_t	i;

	for (i = 0; i < rs->rs_n; i++) {
		if (rs->rs_v[i].ru_kv_ready)
			kv_client_release(&rs->rs_v[i].ru_kv);
		json_decref(rs->rs_v[i].ru_ctx.sx_uncertain);
		free(rs->rs_v[i].ru_setup_err);
	}
	if (rs->rs_ready) {
		pthread_cond_destroy(&rs->rs_cond);
		pthread_mutex_destroy(&rs->rs_lock);
	}
	free(rs->rs_v);
	memset(rs, 0, sizeof(*rs));
}

static int
exit_code(int rc)
{
	if (rc == 0)
		return 0;
	return rc == SYNC_E_DAEMON ? EXIT_DAEMON : 1;
}

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
 * Log lines of a target's thread start with its name when there are
 * several targets (log_context).  With one, the lines that must name it
 * anyway (a failure) start with runner_self's "NAME: ".
 */
static void
runner_log_context(const struct sync_runner *ru)
{
	if (ru->ru_set->rs_n > 1)
		log_context(ru->ru_target->st_name);
}

static const char *
runner_self(const struct sync_runner *ru, char *buf, size_t len)
{
	if (ru->ru_set->rs_n > 1)
		return "";
	snprintf(buf, len, "%s: ", ru->ru_target->st_name);
	return buf;
}

/* What a failed pass leaves behind, by the target's kind. */
static const char *
target_behind(const struct sync_target *st)
{
	return st->st_kind == SYNC_KIND_WORKER_SECRETS ?
	    "the Worker's secrets are not up to date" : "KV is not up to date";
}

/*
 * The daemon trims its feed up to what every target it knows has
 * acknowledged.  A target it has not heard of yet (new in the file)
 * could find the feed trimmed past it by the time its first pass comes
 * after the others' acks, and need a full pass: so each is made known,
 * at seq 0, before any target's thread starts.
 */
static int
runners_register(struct sync_runners *rs, char *err, size_t errlen)
{
	struct sync_ctx		*ctx = &rs->rs_base;
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
	return 0;
}

/*
 * One pass of one target, in its thread: the feed (or a reconcile)
 * pushed by the engine of the target's kind.  Returns 0 or SYNC_E_*.
 */
static int
runner_pass(struct sync_runner *ru, int reconcile, struct sync_report *rep,
    char *err, size_t errlen)
{
	struct sync_ctx	*ctx = &ru->ru_ctx;

	memset(rep, 0, sizeof(*rep));
	switch (ru->ru_target->st_kind) {
	case SYNC_KIND_KV:
		return reconcile ? sync_engine_reconcile(ctx, rep, err,
		    errlen) : sync_engine_run(ctx, rep, err, errlen);
	case SYNC_KIND_WORKER_SECRETS:
		/* One tenant's fields as a Worker script's secrets. */
		return reconcile ? secrets_engine_reconcile(ctx, rep, err,
		    errlen) : secrets_engine_run(ctx, rep, err, errlen);
	}
	snprintf(err, errlen, "unknown kind of target");
	return SYNC_E_FAIL;
}

/*
 * Starts fn on every runner, each in a thread of its own.  The signals
 * that stop the agent stay with the main thread, which sees them in
 * poll(); the targets' threads see the stop through sync_stopped() and
 * the wake-up pipe.  A runner whose thread cannot start gets
 * ru_start_err.  Returns how many started.
 */
static size_t
runners_spawn(struct sync_runners *rs, void *(*fn)(void *))
{
	sigset_t	block, old;
	size_t		i, started = 0;
	int		e;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (i = 0; i < rs->rs_n; i++) {
		rs->rs_v[i].ru_set = rs;
		if ((e = pthread_create(&rs->rs_v[i].ru_thread, NULL, fn,
		    &rs->rs_v[i])) != 0) {
			rs->rs_v[i].ru_start_err = e;
			continue;
		}
		rs->rs_v[i].ru_started = 1;
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return started;
}

static void
runners_join(struct sync_runners *rs)
{
	size_t	i;

	for (i = 0; i < rs->rs_n; i++) {
		if (!rs->rs_v[i].ru_started)
			continue;
		pthread_join(rs->rs_v[i].ru_thread, NULL);
		rs->rs_v[i].ru_started = 0;
	}
}

/* The one-shot modes */

/*
 * A target's lines go to a buffer of its own when there are several
 * targets, written out in one piece when it is done: the targets run
 * at once, and their lines must not interleave.
 */
struct runner_out {
	FILE	*ro_mem;
	char	*ro_buf;
	size_t	 ro_len;
};

static FILE *
runner_out_open(const struct sync_runners *rs, struct runner_out *ro)
{
	memset(ro, 0, sizeof(*ro));
	if (rs->rs_n < 2 ||
	    (ro->ro_mem = open_memstream(&ro->ro_buf, &ro->ro_len)) == NULL)
		return stdout;
	return ro->ro_mem;
}

static void
runner_out_flush(struct runner_out *ro)
{
	if (ro->ro_mem == NULL)
		return;
	if (fclose(ro->ro_mem) == 0 && ro->ro_len > 0) {
		flockfile(stdout);
		fwrite(ro->ro_buf, 1, ro->ro_len, stdout);
		fflush(stdout);
		funlockfile(stdout);
	}
	free(ro->ro_buf);
	memset(ro, 0, sizeof(*ro));
}

/* What --once or --dry-run did for one target. */
static void
print_pass(FILE *out, const struct sync_ctx *ctx, const char *pfx,
    const struct sync_report *rep)
{
	if (ctx->sx_dry_run)
		fprintf(out, "%sdry run: %llu to write, %llu to delete (the "
		    "feed is at seq %llu; nothing was changed)\n", pfx,
		    (unsigned long long)rep->sr_written,
		    (unsigned long long)rep->sr_deleted,
		    (unsigned long long)rep->sr_seq);
	else
		fprintf(out, "%sup to date at seq %llu (%llu written, %llu "
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

/* What --reconcile did (or would do) for one target. */
static void
print_reconcile(FILE *out, const struct sync_ctx *ctx, const char *pfx,
    const struct sync_report *rep)
{
	const struct sync_target	*st = ctx->sx_target;

	if (st->st_kind == SYNC_KIND_WORKER_SECRETS) {
		fprintf(out, "%sreconcile%s: tenant '%s' as the secrets of "
		    "Worker script '%s': %llu %s, %llu %s (%llu requests)\n",
		    pfx, ctx->sx_dry_run ? " (dry run)" : "",
		    st->st_secrets_tenant, st->st_script_name,
		    (unsigned long long)rep->sr_written,
		    ctx->sx_dry_run ? "to write" : "written",
		    (unsigned long long)rep->sr_deleted,
		    ctx->sx_dry_run ? "to delete" : "deleted",
		    (unsigned long long)rep->sr_requests);
		return;
	}
	fprintf(out, "%sreconcile%s: %llu tenants in the vault, %llu keys in "
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
	if (rep->sr_prunable > 0 && !ctx->sx_prune)
		fprintf(out, "%s%llu stale keys wfvault wrote are kept; run "
		    "with --reconcile --prune to delete them\n", pfx,
		    (unsigned long long)rep->sr_prunable);
}

/* --once, --dry-run or --reconcile of one target, in its thread. */
static void *
runner_once(void *arg)
{
	struct sync_runner	*ru = arg;
	struct sync_runners	*rs = ru->ru_set;
	struct sync_report	 rep;
	struct runner_out	 ro;
	char			 err[1024], pb[SYNC_TARGET_NAME_MAX + 4];
	char			 sb[SYNC_TARGET_NAME_MAX + 4];
	const char		*pfx, *what;
	FILE			*out;
	int			 rc;

	runner_log_context(ru);
	out = runner_out_open(rs, &ro);
	ru->ru_ctx.sx_out = out;
	pfx = target_prefix(rs, ru, pb, sizeof(pb));
	ru->ru_ctx.sx_pfx = pfx;
	what = rs->rs_reconcile ? "reconcile failed" :
	    ru->ru_ctx.sx_dry_run ? "dry run failed" :
	    target_behind(ru->ru_target);
	rc = runner_pass(ru, rs->rs_reconcile, &rep, err, sizeof(err));
	if (rc == 0) {
		if (rs->rs_reconcile)
			print_reconcile(out, &ru->ru_ctx, pfx, &rep);
		else
			print_pass(out, &ru->ru_ctx, pfx, &rep);
	}
	runner_out_flush(&ro);
	ru->ru_ctx.sx_out = stdout;
	ru->ru_ctx.sx_pfx = "";
	/* A failure names its target, even when it is the only one. */
	if (rc == SYNC_E_STOP)
		log_warnx("%s%s: interrupted", runner_self(ru, sb, sizeof(sb)),
		    what);
	else if (rc != 0)
		log_warnx("%s%s: %s", runner_self(ru, sb, sizeof(sb)), what,
		    err);
	ru->ru_rc = rc;
	return NULL;
}

/* --check of one target, in its thread: one line on stdout. */
static void *
runner_check(void *arg)
{
	struct sync_runner	*ru = arg;
	char			 msg[1024];
	int			 rc;

	runner_log_context(ru);
	if (ru->ru_setup_err != NULL) {
		snprintf(msg, sizeof(msg), "%s", ru->ru_setup_err);
		rc = KV_E_FAIL;
	} else
		rc = sync_preflight_target(ru->ru_ctx.sx_conf, ru->ru_target,
		    &ru->ru_kv, msg, sizeof(msg));
	if (rc == KV_E_STOP)
		snprintf(msg, sizeof(msg), "interrupted");
	if (rc == 0)
		printf("%s: %s\n", ru->ru_target->st_name, msg);
	else
		printf("%s: FAILED: %s\n", ru->ru_target->st_name, msg);
	ru->ru_rc = rc == 0 ? 0 : SYNC_E_FAIL;
	return NULL;
}

/* The exit status of a one-shot run: 6 when the daemon was the trouble. */
static int
runners_status(const struct sync_runners *rs)
{
	const struct sync_runner	*ru;
	size_t				 i;
	int				 worst = 0;

	for (i = 0; i < rs->rs_n; i++) {
		ru = &rs->rs_v[i];
		if (ru->ru_start_err != 0) {
			log_warnx("%s: cannot start its thread: %s",
			    ru->ru_target->st_name, strerror(ru->ru_start_err));
			worst = worst == 0 ? SYNC_E_FAIL : worst;
		} else if (ru->ru_rc == SYNC_E_DAEMON)
			worst = SYNC_E_DAEMON;
		else if (ru->ru_rc != 0 && worst == 0)
			worst = ru->ru_rc;
	}
	if (sync_stopped() && worst == 0)
		worst = SYNC_E_STOP;
	return exit_code(worst);
}

int
runners_check(struct sync_runners *rs)
{
	runners_spawn(rs, runner_check);
	runners_join(rs);
	return runners_status(rs);
}

int
runners_passes(struct sync_runners *rs, int reconcile)
{
	char	err[1024];
	int	rc;

	rs->rs_reconcile = reconcile;
	/* The daemon first: an ssh:// transport starts from this thread. */
	if ((rc = sync_reach(&rs->rs_base, err, sizeof(err))) != 0) {
		log_warnx("%s", err);
		return exit_code(rc);
	}
	if (rs->rs_n > 1 && !reconcile && !rs->rs_base.sx_dry_run &&
	    (rc = runners_register(rs, err, sizeof(err))) != 0) {
		log_warnx("%s", err);
		return exit_code(rc);
	}
	runners_spawn(rs, runner_once);
	runners_join(rs);
	return runners_status(rs);
}

/* The service */

/* Waits on rs_cond (rs_lock held) until at (ms; -1: until woken). */
static void
runners_wait(struct sync_runners *rs, int64_t at)
{
	struct timespec	ts;

	if (at < 0) {
		pthread_cond_wait(&rs->rs_cond, &rs->rs_lock);
		return;
	}
	ts.tv_sec = at / 1000;
	ts.tv_nsec = (at % 1000) * 1000000;
	pthread_cond_timedwait(&rs->rs_cond, &rs->rs_lock, &ts);
}

/*
 * A target's preflight or pass failed (what says which, err why): it
 * waits while the others go on, doubling up to SYNC_TARGET_RETRY_MAX_MS;
 * at the free plan's daily limit until 00:00 UTC, as trying before then
 * would only be refused again.  rs_lock held.
 */
static void
runner_failed(struct sync_runner *ru, const char *what, const char *err)
{
	char		sb[SYNC_TARGET_NAME_MAX + 4];
	const char	*self = runner_self(ru, sb, sizeof(sb));
	uint64_t	wait;

	ru->ru_need = 1;
	ru->ru_failing = 1;
	if (ru->ru_kv.kc_daily_limit) {
		ru->ru_kv.kc_daily_limit = 0;
		wait = sync_ms_to_utc_midnight(time(NULL));
		ru->ru_retry_at = util_now_ms() + (int64_t)wait;
		log_warnx("%s%s: %s; waiting until 00:00 UTC (%llu min)", self,
		    what, err, (unsigned long long)(wait / 60000));
		return;
	}
	ru->ru_backoff = ru->ru_backoff == 0 ? SYNC_TARGET_RETRY_MIN_MS :
	    ru->ru_backoff * 2;
	if (ru->ru_backoff > SYNC_TARGET_RETRY_MAX_MS)
		ru->ru_backoff = SYNC_TARGET_RETRY_MAX_MS;
	ru->ru_retry_at = util_now_ms() + (int64_t)ru->ru_backoff;
	log_warnx("%s%s: %s; trying again in %llu s", self, what, err,
	    (unsigned long long)ru->ru_backoff / 1000);
}

/*
 * The daemon could not be reached (err why): said once for all targets
 * until it is reachable again; the target tries again soon.  rs_lock
 * held.
 */
static void
runners_daemon_lost(struct sync_runners *rs, const char *err)
{
	if (!rs->rs_down)
		log_warnx("cannot reach wfvaultd (%s); retrying", err);
	else
		log_debug("%s: %s", __func__, err);
	rs->rs_down = 1;
}

static void
runners_daemon_back(struct sync_runners *rs)
{
	if (rs->rs_down)
		log_info("wfvaultd is reachable again");
	rs->rs_down = 0;
}

/*
 * One pass of the service for ru, after its preflight has passed
 * (proven at start-up, and again after each failure until it passes).
 * Runs without rs_lock.  Returns 0, SYNC_E_*, or
 * SYNC_PREFLIGHT_FAILED with the reason in err.
 */
#define SYNC_PREFLIGHT_FAILED	2
static int
runner_serve_pass(struct sync_runner *ru, struct sync_report *rep,
    char *err, size_t errlen)
{
	char	sb[SYNC_TARGET_NAME_MAX + 4];
	int	rc;

	if (!ru->ru_checked) {
		rc = sync_preflight_target(ru->ru_ctx.sx_conf, ru->ru_target,
		    &ru->ru_kv, err, errlen);
		if (rc == KV_E_STOP)
			return SYNC_E_STOP;
		if (rc != 0)
			return SYNC_PREFLIGHT_FAILED;
		log_info("%s%s", runner_self(ru, sb, sizeof(sb)), err);
		ru->ru_checked = 1;
	}
	return runner_pass(ru, 0, rep, err, errlen);
}

/* What a service pass came to (rc), for the next.  rs_lock held. */
static void
runner_settle_pass(struct sync_runner *ru, int rc,
    const struct sync_report *rep, const char *err)
{
	struct sync_runners	*rs = ru->ru_set;
	char			 sb[SYNC_TARGET_NAME_MAX + 4];
	const char		*self = runner_self(ru, sb, sizeof(sb));

	switch (rc) {
	case 0:
		if (ru->ru_reconnect != 0)
			runners_daemon_back(rs);
		ru->ru_reconnect = 0;
		if (ru->ru_failing)
			log_info("%sup to date again", self);
		ru->ru_failing = 0;
		ru->ru_backoff = 0;
		ru->ru_retry_at = 0;
		ru->ru_synced = rep->sr_seq;
		/* Only a change told of during the pass, and past it. */
		ru->ru_need = ru->ru_want > ru->ru_synced;
		if (rep->sr_written > 0 || rep->sr_deleted > 0)
			log_info("%sup to date at seq %llu (%llu written, %llu "
			    "deleted, %llu requests)", self,
			    (unsigned long long)rep->sr_seq,
			    (unsigned long long)rep->sr_written,
			    (unsigned long long)rep->sr_deleted,
			    (unsigned long long)rep->sr_requests);
		else
			log_debug("%snothing to push at seq %llu", self,
			    (unsigned long long)rep->sr_seq);
		break;
	case SYNC_E_STOP:
		break;
	case SYNC_E_DAEMON:
		/* Each target says once that its pass was cut short. */
		if (ru->ru_reconnect == 0)
			log_warnx("%spass cut short: cannot reach wfvaultd "
			    "(%s); trying again", self, err);
		else
			log_debug("%s: %s: %s", __func__,
			    ru->ru_target->st_name, err);
		ru->ru_reconnect = ru->ru_reconnect == 0 ?
		    SYNC_RECONNECT_MIN_MS : ru->ru_reconnect * 2;
		if (ru->ru_reconnect > SYNC_RECONNECT_MAX_MS)
			ru->ru_reconnect = SYNC_RECONNECT_MAX_MS;
		ru->ru_retry_at = util_now_ms() + (int64_t)ru->ru_reconnect;
		ru->ru_need = 1;
		break;
	case SYNC_PREFLIGHT_FAILED:
		runner_failed(ru, "preflight failed", err);
		break;
	default:
		runner_failed(ru, target_behind(ru->ru_target), err);
		break;
	}
}

/*
 * A target's thread in the service: a pass whenever one is due (told of
 * a change, or its pause after a failure is over), until the agent
 * stops.
 */
static void *
runner_serve(void *arg)
{
	struct sync_runner	*ru = arg;
	struct sync_runners	*rs = ru->ru_set;
	struct sync_report	 rep;
	char			 err[1024];
	int64_t			 now, at;
	int			 rc;

	runner_log_context(ru);
	pthread_mutex_lock(&rs->rs_lock);
	while (!rs->rs_quit && !sync_stopped()) {
		if (!ru->ru_need) {
			runners_wait(rs, -1);
			continue;
		}
		now = util_now_ms();
		at = ru->ru_due_at > ru->ru_retry_at ? ru->ru_due_at :
		    ru->ru_retry_at;
		if (at > now) {
			runners_wait(rs, at);
			continue;
		}
		ru->ru_need = 0;
		ru->ru_due_at = now + SYNC_PASS_MIN_MS;
		pthread_mutex_unlock(&rs->rs_lock);
		rc = runner_serve_pass(ru, &rep, err, sizeof(err));
		pthread_mutex_lock(&rs->rs_lock);
		runner_settle_pass(ru, rc, &rep, err);
		if (rc == SYNC_E_STOP)
			break;
	}
	pthread_mutex_unlock(&rs->rs_lock);
	return NULL;
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

/*
 * The earliest seq some target has not pushed: where watching starts.
 * rs_lock held.
 */
static uint64_t
runners_synced(const struct sync_runners *rs)
{
	uint64_t	m = UINT64_MAX;
	size_t		i;

	for (i = 0; i < rs->rs_n; i++)
		if (rs->rs_v[i].ru_synced < m)
			m = rs->rs_v[i].ru_synced;
	return m == UINT64_MAX ? 0 : m;
}

/*
 * The feed is at seq (0: unknown, after the daemon was lost): every
 * target behind it gets a pass, after SYNC_DEBOUNCE_MS so a burst of
 * writes goes out together.
 */
static void
runners_tell(struct sync_runners *rs, uint64_t seq)
{
	struct sync_runner	*ru;
	int64_t			 at = util_now_ms() + SYNC_DEBOUNCE_MS;
	size_t			 i;

	pthread_mutex_lock(&rs->rs_lock);
	for (i = 0; i < rs->rs_n; i++) {
		ru = &rs->rs_v[i];
		if (seq != 0 && seq <= ru->ru_synced)
			continue;
		if (seq > ru->ru_want)
			ru->ru_want = seq;
		if (!ru->ru_need && ru->ru_due_at < at)
			ru->ru_due_at = at;
		ru->ru_need = 1;
	}
	pthread_cond_broadcast(&rs->rs_cond);
	pthread_mutex_unlock(&rs->rs_lock);
}

/*
 * Every target known to the daemon before any acknowledges, retried
 * until it works: the daemon may be down, or not grant sync until its
 * configuration is reloaded.  Returns 0 or SYNC_E_STOP.
 */
static int
runners_register_serve(struct sync_runners *rs)
{
	char		err[1024];
	uint64_t	wait, backoff = SYNC_RECONNECT_MIN_MS, refused = 0;
	int		rc;

	if (rs->rs_n < 2)
		return 0;
	while ((rc = runners_register(rs, err, sizeof(err))) != 0) {
		if (rc == SYNC_E_DAEMON) {
			runners_daemon_lost(rs, err);
			wait = backoff;
			backoff = backoff * 2 > SYNC_RECONNECT_MAX_MS ?
			    SYNC_RECONNECT_MAX_MS : backoff * 2;
		} else {
			refused = refused == 0 ? SYNC_TARGET_RETRY_MIN_MS :
			    refused * 2 > SYNC_TARGET_RETRY_MAX_MS ?
			    SYNC_TARGET_RETRY_MAX_MS : refused * 2;
			wait = refused;
			log_warnx("cannot register the targets: %s; trying "
			    "again in %llu s", err,
			    (unsigned long long)wait / 1000);
		}
		if (sync_sleep(wait) == -1)
			return SYNC_E_STOP;
	}
	runners_daemon_back(rs);
	return 0;
}

/*
 * The service: each target's thread makes its passes while this one
 * follows the daemon's change feed and tells them.  A lost daemon is
 * retried with a growing pause; KV trouble is retried inside the KV
 * client, then the target waits and tries again; only a refused watch,
 * which needs a person, ends it.
 */
int
runners_serve(struct sync_runners *rs)
{
	struct sync_ctx		*ctx = &rs->rs_base;
	struct proto_client	 w = PROTO_CLIENT_INIT;
	char			 err[1024];
	uint64_t		 seq, since;
	uint64_t		 backoff = SYNC_RECONNECT_MIN_MS;
	size_t			 i, started;
	int			 rc = 0, refused = 0;

	for (i = 0; i < rs->rs_n; i++) {
		rs->rs_v[i].ru_need = 1;
		log_info("following %s for target '%s'", ctx->sx_conf->sc_socket,
		    rs->rs_v[i].ru_target->st_name);
	}
	/* The daemon first: an ssh:// transport starts from this thread. */
	if (sync_reach(ctx, err, sizeof(err)) != 0)
		log_debug("%s: %s", __func__, err);
	if (runners_register_serve(rs) != 0)
		goto out;
	started = runners_spawn(rs, runner_serve);
	for (i = 0; i < rs->rs_n; i++)
		if (rs->rs_v[i].ru_start_err != 0)
			log_warnx("target '%s': cannot start its thread: %s",
			    rs->rs_v[i].ru_target->st_name,
			    strerror(rs->rs_v[i].ru_start_err));
	if (started < rs->rs_n) {
		refused = 1;
		goto stop;
	}
	while (!sync_stopped()) {
		if (w.pc_fd == -1) {
			pthread_mutex_lock(&rs->rs_lock);
			since = runners_synced(rs);
			pthread_mutex_unlock(&rs->rs_lock);
			rc = watch_open(ctx, &w, since, err, sizeof(err));
			if (rc == SYNC_E_DAEMON)
				goto lost;
			if (rc != 0) {
				log_warnx("%s", err);
				refused = 1;
				break;
			}
			backoff = SYNC_RECONNECT_MIN_MS;
			pthread_mutex_lock(&rs->rs_lock);
			runners_daemon_back(rs);
			pthread_mutex_unlock(&rs->rs_lock);
		}
		rc = sync_wait_changed(&w, -1, &seq, err, sizeof(err));
		if (rc == SYNC_E_STOP)
			break;
		if (rc == SYNC_E_DAEMON)
			goto lost;
		if (rc == 0) {
			log_debug("%s: the feed is at %llu", __func__,
			    (unsigned long long)seq);
			runners_tell(rs, seq);
		}
		continue;
lost:
		proto_client_close(&w);
		pthread_mutex_lock(&rs->rs_lock);
		runners_daemon_lost(rs, err);
		pthread_mutex_unlock(&rs->rs_lock);
		/* Whatever came meanwhile: every target looks again. */
		runners_tell(rs, 0);
		if (sync_sleep(backoff) == -1)
			break;
		backoff = backoff * 2 > SYNC_RECONNECT_MAX_MS ?
		    SYNC_RECONNECT_MAX_MS : backoff * 2;
	}
stop:
	/* The targets' requests and waits end at once too. */
	if (!sync_stopped())
		sync_stop();
	pthread_mutex_lock(&rs->rs_lock);
	rs->rs_quit = 1;
	pthread_cond_broadcast(&rs->rs_cond);
	pthread_mutex_unlock(&rs->rs_lock);
	runners_join(rs);
out:
	proto_client_close(&w);
	if (refused)
		return 1;
	log_info("stopping");
	return 0;
}
