/*
 * wfvaultd: start-up (arguments, configuration, master key, store, socket),
 * the event loop, and an orderly exit.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "util.h"
#include "wfvaultd.h"

static __dead void	usage(int);
static void		 harden_process(void);

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	char	 ebuf[128];
	int	 saved = errno;

	va_start(ap, fmt);
	log_vwrite(strerror_r(saved, ebuf, sizeof(ebuf)), fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

/* Help asked for goes to stdout and exits 0; a usage error, stderr and 2. */
static __dead void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: wfvaultd -c FILE [-n] [-d]\n"
	    "       wfvaultd --gen-key PATH\n"
	    "       wfvaultd -c FILE --restore BACKUP\n"
	    "       wfvaultd -c FILE --rotate-master-key\n"
	    "       wfvaultd -h | --help | --version\n"
	    "  -c FILE   configuration file\n"
	    "  -n        check the configuration and exit\n"
	    "  -d        log debug messages\n"
	    "  --gen-key PATH  create a new master key file (mode 0400)\n"
	    "  --restore BACKUP  verify BACKUP and install it as the store\n"
	    "                  (wfvaultd stopped)\n"
	    "  --rotate-master-key  re-wrap every data key under\n"
	    "                  master_key_next_file (wfvaultd stopped)\n"
	    "  -h, --help      show this help\n"
	    "  --version       print the version\n");
	exit(status);
}

/*
 * libevent's buffers hold replies with secret values in them; its memory
 * goes through these so every block is wiped when it is given back.
 */
static void *
wipe_malloc(size_t n)
{
	return malloc(n);
}

/* No core dumps and no ptrace by other users: the heap holds secrets. */
static void
harden_process(void)
{
	struct rlimit	rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) == -1)
		fatal("setrlimit RLIMIT_CORE");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl PR_SET_DUMPABLE");
}

/* Enough descriptors for max_connections, as far as the hard limit goes. */
static void
raise_nofile(uint64_t want)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	want += 32;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ?
	    want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("setrlimit RLIMIT_NOFILE");
	if (rl.rlim_cur < want)
		log_warnx("only %llu file descriptors for max_connections "
		    "%llu", (unsigned long long)rl.rlim_cur,
		    (unsigned long long)(want - 32));
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "gen-key", required_argument, NULL, 'G' },
		{ "restore", required_argument, NULL, 'R' },
		{ "rotate-master-key", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct daemon_conf	 conf;
	struct store_params	 sp;
	struct server		 srv;
	struct store		*store = NULL;
	struct audit		*audit = NULL;
	struct catalog		*catalog = NULL;
	struct event_base	*base;
	unsigned char		*mk;
	const char		*conf_path = NULL, *genkey = NULL;
	const char		*restore = NULL;
	char			 err[1024];
	int			 ch, check = 0, debug = 0, rc, rotate = 0;

	while ((ch = getopt_long(argc, argv, "c:dnh", longopts, NULL)) != -1) {
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
		case 'G':
			genkey = optarg;
			break;
		case 'R':
			restore = optarg;
			break;
		case 'K':
			rotate = 1;
			break;
		case 'h':
			usage(0);
		case 'V':
			printf("%s %s\n", PROTO_SERVER_NAME,
			    PROTO_SERVER_VERSION);
			return 0;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	log_init("wfvaultd", debug);
	proto_json_init();
	event_set_mem_functions(wipe_malloc, util_wipe_realloc,
	    proto_wipe_free);
	signal(SIGPIPE, SIG_IGN);
	harden_process();

	if (genkey != NULL) {
		if (conf_path != NULL || check || restore != NULL || rotate)
			usage(2);
		if (crypto_init(err, sizeof(err)) == -1 ||
		    crypto_key_generate_file(genkey, err, sizeof(err)) == -1) {
			fprintf(stderr, "wfvaultd: %s\n", err);
			return 1;
		}
		printf("wrote a new master key to %s (mode 0400).\n"
		    "Keep a copy somewhere safe: without it the vault cannot "
		    "be opened.\n", genkey);
		return 0;
	}
	if (conf_path == NULL)
		usage(2);
	notify_init();

	memset(&conf, 0, sizeof(conf));
	if (daemon_conf_load(conf_path, &conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "wfvaultd: %s\n", err);
		return 1;
	}
	conf.dc_acl.acl_self = geteuid();
	/*
	 * A malformed integration file stops the start (and fails -n) as a
	 * bad config does; the offline modes do not read the catalog.
	 */
	if (restore == NULL && !rotate &&
	    catalog_load(&conf, &catalog, err, sizeof(err)) == -1) {
		fprintf(stderr, "wfvaultd: %s\n", err);
		daemon_conf_release(&conf);
		return 1;
	}
	if (check) {
		/*
		 * A key file the daemon would refuse (missing, readable by
		 * others, not a key) fails the check too.  A credential can
		 * only be read under systemd, so it is checked there.
		 */
		if (conf.dc_master_key_file != NULL) {
			if (crypto_init(err, sizeof(err)) == -1 ||
			    keys_load(&conf, KEYS_CURRENT, &mk, err,
			    sizeof(err)) == -1) {
				fprintf(stderr, "wfvaultd: %s\n", err);
				catalog_free(catalog);
				daemon_conf_release(&conf);
				return 1;
			}
			crypto_key_free(mk);
		}
		printf("configuration OK (%zu integrations)\n",
		    catalog->cat_n);
		catalog_free(catalog);
		daemon_conf_release(&conf);
		return 0;
	}
	/* The offline modes: each refuses while a wfvaultd uses the store. */
	if (restore != NULL || rotate) {
		umask(077);
		if (restore != NULL && rotate)
			usage(2);
		rc = restore != NULL ? backup_restore(&conf, restore) :
		    keys_rotate_offline(&conf);
		daemon_conf_release(&conf);
		return rc;
	}

	if (crypto_init(err, sizeof(err)) == -1)
		fatalx("%s", err);

	umask(077);
	memset(&sp, 0, sizeof(sp));
	sp.sp_dir = conf.dc_data_dir;
	sp.sp_map_size = conf.dc_map_size;
	sp.sp_keep_versions = conf.dc_keep_versions;
	sp.sp_max_readers = 126;
	/* The master key, or the next one if a rotation left it in force. */
	if ((rc = keys_store_open(&store, &sp, &conf, &mk, err,
	    sizeof(err))) != STORE_OK)
		fatalx("%s", err);
	if (audit_open(&audit, conf.dc_audit_log, err, sizeof(err)) == -1)
		fatalx("%s", err);
	raise_nofile(conf.dc_max_connections);

	if ((base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	if (server_init(&srv, base, &conf, conf_path, store, audit, err,
	    sizeof(err)) == -1)
		fatalx("%s", err);
	log_info("listening on %s (data in %s)", srv.srv_bound ?
	    conf.dc_socket : "the socket systemd passed", conf.dc_data_dir);
	srv.srv_boot_mk = mk;
	srv.srv_catalog = catalog;
	/* A rotation a stop or crash interrupted goes on where it was. */
	if (store_rotating(store) && rotate_master_start(&srv, NULL, NULL,
	    NULL, err, sizeof(err)) == -1)
		fatalx("cannot resume the master key rotation: %s", err);
	if (notify_start(base, &srv) == -1)
		fatalx("cannot start the systemd watchdog timer");
	notify_send("READY=1");

	if (event_base_dispatch(base) == -1)
		log_warnx("event loop failed");

	/* Anything still queued was finished by server_stop. */
	notify_stop();
	server_release(&srv);
	/* A backup's thread still copying needs the store open. */
	backup_release(&srv);
	rotate_release(&srv);
	catalog_free(srv.srv_catalog);
	event_base_free(base);
	store_close(store);
	audit_close(audit);
	crypto_key_free(mk);
	daemon_conf_release(&conf);
	log_info("stopped");
	return 0;
}
