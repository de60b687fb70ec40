/*
 * main.c: ogproxyd, the ogate gateway daemon: the command line, the
 * configuration check (-t), and the run from start to exit status.
 * The server itself (start-up, signals, reload, shutdown) is server.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "privs.h"
#include "server.h"
#include "tls.h"

static void	usage(void) __attribute__((noreturn));

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: ogproxyd [-c FILE] [-t] [-v]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct config	*cfg;
	char		*err = NULL;
	const char	*config_path = NULL;
	int		 ch, test = 0, verbose = 0;

	while ((ch = getopt(argc, argv, "c:tvh")) != -1) {
		switch (ch) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("ogproxyd", verbose);

	/* Without -c, the system config if there is one, else built-ins. */
	if (config_path == NULL && access(CONFIG_DEFAULT_PATH, F_OK) == 0)
		config_path = CONFIG_DEFAULT_PATH;
	if ((cfg = server_load(config_path, &err)) == NULL) {
		fprintf(stderr, "ogproxyd: %s\n", err);
		free(err);
		return 1;
	}
	if (privs_check(cfg, &err) != 0 ||
	    (cfg->ntls_listen > 0 && tls_prepare(cfg, &err) != 0)) {
		fprintf(stderr, "ogproxyd: %s\n", err);
		free(err);
		config_free(cfg);
		return 1;
	}
	if (test) {
		tls_discard();
		printf("ogproxyd: %s is valid\n",
		    config_path ? config_path : "built-in configuration");
		config_free(cfg);
		return 0;
	}
	if (server_start(cfg, config_path) != 0)
		return 1;
	/* Until SIGTERM or SIGINT has drained or closed the connections. */
	loop_run();
	server_stop();
	return 0;
}
