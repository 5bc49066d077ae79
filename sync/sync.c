/*
 * wfvault-sync: options and start-up (the configuration, each target's
 * token, seal key and KV client), then one of the modes of
 * sync_runner.c: --check, one pass (--once, --dry-run), --reconcile, or
 * following the daemon's change feed until SIGTERM.
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
	    "  --once        push everything pending, then exit (0: every "
	    "target is up to date)\n"
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
	struct sync_link	 link;
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
	memset(&budget, 0, sizeof(budget));
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
	if (runners_init(&rs, conf.sc_ntargets) == -1 ||
	    kv_budget_init(&budget, conf.sc_budget_requests,
	    conf.sc_budget_window) == -1) {
		log_warn("cannot set up the targets");
		runners_release(&rs);
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
		 * many attempts, says so and waits (runner_failed): each
		 * runs in its own thread, so the others go on meanwhile.
		 */
		ru->ru_kv.kc_max_attempts = once || dry_run || reconcile ||
		    preflight || rs.rs_n > 1 ? KV_ONCE_ATTEMPTS : 0;
	}

	if (sync_link_init(&link) == -1) {
		log_warn("cannot set up the daemon connection");
		goto out_kv;
	}
	rs.rs_base.sx_conf = &conf;
	rs.rs_base.sx_link = &link;
	rs.rs_base.sx_dry_run = dry_run;
	rs.rs_base.sx_prune = prune;
	rs.rs_base.sx_force = force;
	rs.rs_base.sx_out = stdout;
	rs.rs_base.sx_pfx = "";
	for (i = 0; i < rs.rs_n; i++) {
		ru = &rs.rs_v[i];
		ru->ru_ctx = rs.rs_base;
		ru->ru_ctx.sx_target = ru->ru_target;
		ru->ru_ctx.sx_kv = &ru->ru_kv;
	}

	if (preflight)
		rc = runners_check(&rs);
	else if (reconcile)
		rc = runners_passes(&rs, 1);
	else if (once || dry_run)
		rc = runners_passes(&rs, 0);
	else
		rc = runners_serve(&rs);
	if (budget.kb_waits > 0)
		log_info("request budget: %llu of %llu API requests waited "
		    "for it, %.1f s in all",
		    (unsigned long long)budget.kb_waits,
		    (unsigned long long)budget.kb_requests,
		    (double)budget.kb_waited_ms / 1000);
	sync_link_release(&link);
	secrets_release_all();
out_kv:
	runners_release(&rs);
	kv_global_cleanup();
out_tokens:
	for (i = 0; i < SYNC_TARGETS_MAX; i++)
		if (tokens[i] != NULL)
			sync_token_free(tokens[i]);
	runners_release(&rs);
	kv_budget_release(&budget);
	sync_conf_release(&conf);
	return rc;
}
