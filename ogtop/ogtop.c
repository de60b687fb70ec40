/*
 * ogtop.c: the monitor's entry point: options, the terminal, and the
 * loop that fetches a snapshot every interval, reads keys in between
 * and redraws after either.
 */
#include <curses.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "escape.h"
#include "ogtop.h"
#include "parse.h"
#include "ssh.h"

#define OGTOP_USAGE	"usage: ogtop [-C] [-d tenths] " \
			"[-s socket | -H ssh://[user@]host[:port] " \
			"[--remote-ogctl path]]"

static int	ogtop_usage_error(const char *, ...)
		    __attribute__((format(printf, 1, 2)));
static int	ogtop_ascii(int);
static void	ogtop_loop(struct ogtop *);

/* One line: what is wrong, then how it is used. */
static int
ogtop_usage_error(const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[512], *safe;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* It may quote an argument: escaped, it stays one line. */
	safe = escape_string(msg);
	fprintf(stderr, "ogtop: %s; %s\n", safe, OGTOP_USAGE);
	free(safe);
	return OGTOP_EXIT_USAGE;
}

void
ogtop_message(struct ogtop *o, int error, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(o->message, sizeof o->message, fmt, ap);
	va_end(ap);
	o->message_error = error;
	o->message_time = data_now();
}

/*
 * Whether to draw the graph in ASCII: with -C, which asks for a plain
 * screen; on the Linux console, whose font may lack the block
 * characters; and when the locale does not speak UTF-8.
 */
static int
ogtop_ascii(int colour)
{
	const char	*term = getenv("TERM");

	if (!colour || (term != NULL && strcmp(term, "linux") == 0))
		return 1;
	return strcmp(nl_langinfo(CODESET), "UTF-8") != 0;
}

/*
 * Fetch when the interval is up (or a key asked for it), redraw, and
 * wait for a key no longer than until the next fetch: a key redraws at
 * once, and the screen never waits on more than one call.
 */
static void
ogtop_loop(struct ogtop *o)
{
	double	next = 0.0, now;
	int	key, wait;

	while (!o->quit) {
		now = data_now();
		if (o->fetch_now || now >= next) {
			if (data_fetch(o->data) == 0)
				graph_record(o->graph, o->data, data_now());
			next = now + o->interval_ms / 1000.0;
			o->fetch_now = 0;
		}
		view_build(o);
		screen_draw(o);
		wait = (int)((next - data_now()) * 1000.0);
		timeout(wait > 0 ? wait : 0);
		if ((key = getch()) != ERR)
			keys_handle(o, key);
	}
}

int
main(int argc, char **argv)
{
	struct ogtop	 o;
	static const struct option longopts[] = {
		{ "remote-ogctl", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*socket = NULL, *host = NULL, *remote = NULL;
	struct client	*cl = NULL;
	char		*err = NULL;
	uint64_t	 tenths = 10;
	int		 ch, colour = 1, rc;

	setlocale(LC_ALL, "");
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":Cd:hH:s:", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'C':
			colour = 0;
			break;
		case 'd':
			if (parse_uint(optarg, 100, &tenths) != 0 || tenths < 1)
				return ogtop_usage_error("-d %s: the interval "
				    "is in tenths of a second, 1 to 100", optarg);
			break;
		case 'h':
			printf("%s\n", OGTOP_USAGE);
			return OGTOP_EXIT_DONE;
		case 'H':
			host = optarg;
			break;
		case 's':
			socket = optarg;
			break;
		case 'R':
			remote = optarg;
			break;
		case ':':
			if (optopt == 'R')
				return ogtop_usage_error("option "
				    "--remote-ogctl needs a value");
			return ogtop_usage_error("option -%c needs a value",
			    optopt);
		default:
			if (optopt == 0)
				return ogtop_usage_error("unknown option %s",
				    argv[optind - 1]);
			return ogtop_usage_error("unknown option -%c", optopt);
		}
	}
	if (optind < argc)
		return ogtop_usage_error("unexpected argument %s", argv[optind]);
	if (host != NULL && socket != NULL)
		return ogtop_usage_error("-s and -H cannot be used together");
	if (host != NULL) {
		struct ssh_target	t;

		/* A wrong URL is a usage error, terminal or not. */
		if (ssh_target_parse(host, &t, &err) != 0) {
			rc = ogtop_usage_error("%s", err);
			free(err);
			return rc;
		}
		ssh_target_free(&t);
	}
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "ogtop: needs a terminal\n");
		return OGTOP_EXIT_FAILED;
	}
	/*
	 * Over SSH, log in before the screen: an unknown host key or a
	 * passphrase is for the plain terminal. Later losses of the
	 * connection are shown on the screen and retried.
	 */
	if (host != NULL) {
		if ((rc = client_open_ssh(host, remote, &cl, &err)) != 0) {
			char	*safe = escape_string(err);

			free(err);
			if (rc == -2) {
				rc = ogtop_usage_error("%s", safe);
				free(safe);
				return rc;
			}
			fprintf(stderr, "ogtop: %s\n", safe);
			free(safe);
			return OGTOP_EXIT_UNREACHABLE;
		}
	} else if ((cl = client_open_unix(client_socket_path(socket))) ==
	    NULL) {
		fprintf(stderr, "ogtop: cannot start libcurl\n");
		return OGTOP_EXIT_FAILED;
	}

	memset(&o, 0, sizeof o);
	o.interval_ms = (int)tenths * 100;
	o.ascii = ogtop_ascii(colour);
	o.data = data_new(cl, o.interval_ms);
	view_init(&o);
	o.graph = graph_new(o.interval_ms, data_now());
	/* The daemon closing the socket must not end the screen. */
	signal(SIGPIPE, SIG_IGN);
	if (screen_init(colour) != 0) {
		fprintf(stderr, "ogtop: cannot use the terminal (TERM=%s)\n",
		    getenv("TERM") != NULL ? getenv("TERM") : "unset");
		data_free(o.data);
		graph_free(o.graph);
		return OGTOP_EXIT_FAILED;
	}
	ogtop_loop(&o);
	screen_end();
	view_free_rows(&o);
	graph_free(o.graph);
	data_free(o.data);
	return OGTOP_EXIT_DONE;
}
