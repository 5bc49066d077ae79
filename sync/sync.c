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

static void	usage(int) __attribute__((__noreturn__));
static void	usage_error(const char *) __attribute__((__noreturn__));

/* Help asked for goes to stdout and exits 0; a usage error, stderr and 2. */
static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: wfvault-sync -c FILE [-n] [-d] [--check] [--once] "
	    "[--dry-run] [--reconcile [--prune [--force]]]\n"
	    "       wfvault-sync -h | --help | --version\n"
	    "  -c FILE       configuration file\n"
	    "  -n            check the configuration and the token, then "
	    "exit\n"
	    "  -d            log debug messages\n"
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

/* --once and --dry-run: one pass over the feed. */
static int
run_once(struct sync_ctx *ctx)
{
	struct sync_report	rep;
	char			err[1024];
	int			rc;

	rc = sync_engine_run(ctx, &rep, err, sizeof(err));
	if (rc == SYNC_E_STOP)
		snprintf(err, sizeof(err), "interrupted");
	if (rc != 0) {
		log_warnx("%s: %s", ctx->sx_dry_run ? "dry run failed" :
		    "KV is not up to date", err);
		return exit_code(rc);
	}
	if (ctx->sx_dry_run)
		printf("dry run: %llu to write, %llu to delete (the feed is "
		    "at seq %llu; nothing was changed)\n",
		    (unsigned long long)rep.sr_written,
		    (unsigned long long)rep.sr_deleted,
		    (unsigned long long)rep.sr_seq);
	else
		printf("up to date at seq %llu (%llu written, %llu deleted, "
		    "%llu requests%s%s)\n", (unsigned long long)rep.sr_seq,
		    (unsigned long long)rep.sr_written,
		    (unsigned long long)rep.sr_deleted,
		    (unsigned long long)rep.sr_requests,
		    rep.sr_full ? "; a full pass, the feed was trimmed" : "",
		    rep.sr_repushed > 0 ? "; some written again after "
		    "settle_time" : "");
	return 0;
}

/*
 * The start of the long-running mode: the preflight of the target being
 * pushed, with its client.  Returns 0 when it passed.
 */
static int
run_check(struct sync_ctx *ctx)
{
	char	msg[1024];
	int	rc;

	rc = sync_preflight_target(ctx->sx_conf, ctx->sx_target, ctx->sx_kv,
	    msg, sizeof(msg));
	if (rc == 0)
		log_info("target '%s': %s", ctx->sx_target->st_name, msg);
	else
		log_warnx("preflight of target '%s' failed: %s",
		    ctx->sx_target->st_name, msg);
	return rc == 0 ? 0 : 1;
}

/*
 * --check: one line per target on stdout, each with its own token and
 * client (the first target's is kc).  Returns 0 when all passed.
 */
static int
run_check_all(struct sync_ctx *ctx, struct kv_client *kc)
{
	const struct sync_conf	*sc = ctx->sx_conf;
	const struct sync_target *st;
	struct kv_client	 tkc;
	char			*token;
	char			 msg[1024];
	size_t			 i;
	int			 rc, failed = 0;

	for (i = 0; i < sc->sc_ntargets && !sync_stopped(); i++) {
		st = &sc->sc_targets[i];
		if (i == 0)
			rc = sync_preflight_target(sc, st, kc, msg,
			    sizeof(msg));
		else if (sync_token_load(st, &token, msg, sizeof(msg)) == -1)
			rc = KV_E_FAIL;
		else {
			rc = kv_client_init(&tkc, sc, st, token, msg,
			    sizeof(msg));
			sync_token_free(token);
			if (rc == 0) {
				tkc.kc_sleep = kc->kc_sleep;
				tkc.kc_stopped = kc->kc_stopped;
				tkc.kc_max_attempts = kc->kc_max_attempts;
				rc = sync_preflight_target(sc, st, &tkc, msg,
				    sizeof(msg));
				kv_client_release(&tkc);
			} else
				rc = KV_E_FAIL;
		}
		if (rc == KV_E_STOP)
			snprintf(msg, sizeof(msg), "interrupted");
		if (rc == 0)
			printf("%s: %s\n", st->st_name, msg);
		else {
			printf("%s: FAILED: %s\n", st->st_name, msg);
			failed = 1;
		}
	}
	return failed || sync_stopped() ? 1 : 0;
}

static int
run_reconcile(struct sync_ctx *ctx)
{
	struct sync_report	rep;
	char			err[1024];
	int			rc;

	rc = sync_engine_reconcile(ctx, &rep, err, sizeof(err));
	if (rc == SYNC_E_STOP)
		snprintf(err, sizeof(err), "interrupted");
	if (rc != 0) {
		log_warnx("reconcile failed: %s", err);
		return exit_code(rc);
	}
	printf("reconcile%s: %llu tenants in the vault, %llu keys in KV: "
	    "%llu %s, %llu stale, %llu %s (%llu requests)\n",
	    ctx->sx_dry_run ? " (dry run)" : "",
	    (unsigned long long)rep.sr_vault_tenants,
	    (unsigned long long)rep.sr_kv_keys,
	    (unsigned long long)rep.sr_written,
	    ctx->sx_dry_run ? "to rewrite" : "rewritten",
	    (unsigned long long)rep.sr_stale,
	    (unsigned long long)rep.sr_deleted,
	    ctx->sx_dry_run ? "to delete" : "deleted",
	    (unsigned long long)rep.sr_requests);
	if (rep.sr_stale > 0 && !ctx->sx_prune)
		printf("stale keys are kept; run with --reconcile --prune to "
		    "delete them\n");
	return 0;
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
 * The service: sync, then sleep in poll() until the daemon says the feed
 * moved, sync again.  A lost daemon is retried with a growing pause; KV
 * trouble is retried inside the KV client; only refusals that need a
 * person (a bad token, a missing permission) end it.
 */
static int
run_forever(struct sync_ctx *ctx)
{
	struct proto_client	 w = PROTO_CLIENT_INIT;
	struct sync_report	 rep;
	char			 err[1024];
	uint64_t		 synced = 0, seq;
	uint64_t		 backoff = SYNC_RECONNECT_MIN_MS;
	int64_t			 started = -1, left;
	int			 rc = 0, need_sync = 1, down = 0;

	log_info("following %s for target '%s'", ctx->sx_conf->sc_socket,
	    ctx->sx_target->st_name);
	/*
	 * Proven setup before any write; only the free plan's daily limit
	 * lets it go on (the first pass then waits for 00:00 UTC).
	 */
	if (run_check(ctx) != 0 && !ctx->sx_kv->kc_daily_limit)
		return 1;
	while (!sync_stopped()) {
		if (need_sync) {
			if (started >= 0 && (left = started +
			    SYNC_PASS_MIN_MS - util_now_ms()) > 0 &&
			    sync_sleep((uint64_t)left) == -1)
				break;
			started = util_now_ms();
			rc = sync_engine_run(ctx, &rep, err, sizeof(err));
			if (rc == SYNC_E_STOP)
				break;
			if (rc == SYNC_E_DAEMON)
				goto lost;
			if (rc != 0 && ctx->sx_kv->kc_daily_limit) {
				/* Retrying all day would only burn requests. */
				left = (int64_t)sync_ms_to_utc_midnight(
				    time(NULL));
				log_warnx("KV is not up to date: %s; waiting "
				    "until 00:00 UTC (%lld min)", err,
				    (long long)(left / 60000));
				ctx->sx_kv->kc_daily_limit = 0;
				rc = 0;
				if (sync_sleep((uint64_t)left) == -1)
					break;
				continue;
			}
			if (rc != 0) {
				log_warnx("KV is not up to date: %s", err);
				break;
			}
			if (down)
				log_info("wfvaultd is reachable again");
			down = 0;
			backoff = SYNC_RECONNECT_MIN_MS;
			need_sync = 0;
			synced = rep.sr_seq;
			if (rep.sr_written > 0 || rep.sr_deleted > 0)
				log_info("up to date at seq %llu (%llu "
				    "written, %llu deleted, %llu requests)",
				    (unsigned long long)rep.sr_seq,
				    (unsigned long long)rep.sr_written,
				    (unsigned long long)rep.sr_deleted,
				    (unsigned long long)rep.sr_requests);
		}
		if (w.pc_fd == -1) {
			rc = watch_open(ctx, &w, synced, err, sizeof(err));
			if (rc == SYNC_E_DAEMON)
				goto lost;
			if (rc != 0) {
				log_warnx("%s", err);
				break;
			}
		}
		rc = sync_wait_changed(&w, -1, &seq, err, sizeof(err));
		if (rc == SYNC_E_STOP)
			break;
		if (rc == SYNC_E_DAEMON)
			goto lost;
		if (seq <= synced)
			continue;	/* already pushed in the last pass */
		log_debug("%s: the feed is at %llu", __func__,
		    (unsigned long long)seq);
		/* The pass itself waits out the rest of SYNC_PASS_MIN_MS. */
		if (sync_sleep(SYNC_DEBOUNCE_MS) == -1)
			break;
		need_sync = 1;
		continue;
lost:
		rc = 0;
		proto_client_close(&w);
		sync_disconnect(ctx);
		need_sync = 1;
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

int
main(int argc, char *argv[])
{
	enum {
		OPT_ONCE = 256, OPT_DRY_RUN, OPT_RECONCILE, OPT_PRUNE,
		OPT_VERSION, OPT_CHECK, OPT_FORCE
	};
	static const struct option longopts[] = {
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "reconcile", no_argument, NULL, OPT_RECONCILE },
		{ "prune", no_argument, NULL, OPT_PRUNE },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	struct sync_conf	 conf;
	struct kv_client	 kc;
	struct sync_ctx		 ctx;
	const char		*conf_path = NULL;
	char			*token = NULL;
	char			 err[2048];
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
		case 'h':
			usage(0);
		case OPT_VERSION:
			printf("%s %s\n", SYNC_PROG, PROTO_SERVER_VERSION);
			return 0;
		default:
			usage(EXIT_USAGE);
		}
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
	if (sync_conf_parse_file(conf_path, &conf, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		sync_conf_release(&conf);
		return EXIT_USAGE;
	}
	if (conf.sc_ca_file != NULL && access(conf.sc_ca_file, R_OK) == -1) {
		log_warn("cf_ca_file %s", conf.sc_ca_file);
		sync_conf_release(&conf);
		return EXIT_USAGE;
	}
	if (sync_token_load(&conf.sc_targets[0], &token, err,
	    sizeof(err)) == -1) {
		log_warnx("%s", err);
		sync_conf_release(&conf);
		return EXIT_USAGE;
	}
	if (check) {
		sync_token_free(token);
		sync_conf_release(&conf);
		printf("configuration OK\n");
		return 0;
	}

	rc = 1;
	if (kv_global_init(err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		sync_token_free(token);
		sync_conf_release(&conf);
		return 1;
	}
	/* From here the token lives only in the (wiped) request headers. */
	if (kv_client_init(&kc, &conf, &conf.sc_targets[0], token, err,
	    sizeof(err)) == -1) {
		log_warnx("%s", err);
		sync_token_free(token);
		goto out_global;
	}
	sync_token_free(token);
	if (sync_signals_init() == -1) {
		log_warn("cannot set up signal handling");
		goto out_kv;
	}
	kc.kc_sleep = sync_sleep;
	kc.kc_stopped = sync_stopped;
	/* A service retries for ever; a command gives up and says so. */
	kc.kc_max_attempts = once || dry_run || reconcile || preflight ?
	    KV_ONCE_ATTEMPTS : 0;

	memset(&ctx, 0, sizeof(ctx));
	ctx.sx_conf = &conf;
	ctx.sx_target = &conf.sc_targets[0];
	ctx.sx_kv = &kc;
	ctx.sx_conn = (struct proto_client)PROTO_CLIENT_INIT;
	ctx.sx_dry_run = dry_run;
	ctx.sx_prune = prune;
	ctx.sx_force = force;
	ctx.sx_out = stdout;

	if (preflight)
		rc = run_check_all(&ctx, &kc);
	else if (reconcile)
		rc = run_reconcile(&ctx);
	else if (once || dry_run)
		rc = run_once(&ctx);
	else
		rc = run_forever(&ctx);
	sync_disconnect(&ctx);
	json_decref(ctx.sx_uncertain);
out_kv:
	kv_client_release(&kc);
out_global:
	kv_global_cleanup();
	sync_conf_release(&conf);
	return rc;
}
