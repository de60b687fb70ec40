/*
 * ogctl.c: the command line for operators and scripts: option parsing,
 * command dispatch, and the helpers the commands share.
 */
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "escape.h"
#include "ogctl.h"
#include "xmalloc.h"

static const struct cmd_entry *const ogctl_commands[] = {
	&cmd_status_entry,
	&cmd_user_entry,
	&cmd_token_entry,
	&cmd_usage_entry,
	&cmd_requests_entry,
	&cmd_kill_entry,
	&cmd_backend_entry,
	&cmd_model_entry,
	&cmd_gpu_entry,
	&cmd_alert_entry,
	&cmd_cache_entry,
	&cmd_reload_entry,
	&cmd_dial_stdio_entry,
};

/* The long options without a letter. */
#define OGCTL_OPT_REMOTE	0x100

#define OGCTL_NCOMMANDS	(sizeof ogctl_commands / sizeof ogctl_commands[0])

static void
ogctl_print_usage(FILE *f)
{
	fprintf(f, "usage: ogctl [-s SOCKET | -H ssh://[user@]host[:port] "
	    "[--remote-ogctl PATH]] [--json] COMMAND ...\n");
	for (size_t i = 0; i < OGCTL_NCOMMANDS; i++) {
		const char	*u = ogctl_commands[i]->usage;

		if (*u == '\0')
			fprintf(f, "       ogctl %s\n", ogctl_commands[i]->name);
		while (*u != '\0') {
			size_t	n = strcspn(u, "\n");

			fprintf(f, "       ogctl %s %.*s\n", ogctl_commands[i]->name,
			    (int)n, u);
			u += n + (u[n] == '\n');
		}
	}
}

/*
 * An error message, escaped: it may quote the daemon, which may quote
 * a name someone chose, and it stays one line on the terminal. A usage
 * error names its command and says where to look.
 */
static void	ogctl_verror(const struct cmd_entry *, const char *, va_list)
		    __attribute__((format(printf, 2, 0)));

static void
ogctl_verror(const struct cmd_entry *cmd, const char *fmt, va_list ap)
{
	char	msg[1024], *safe;

	vsnprintf(msg, sizeof msg, fmt, ap);
	safe = escape_string(msg);
	if (cmd != NULL)
		fprintf(stderr, "ogctl: %s: %s; try 'ogctl -h'\n", cmd->name,
		    safe);
	else
		fprintf(stderr, "ogctl: %s\n", safe);
	free(safe);
}

void
ogctl_error(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	ogctl_verror(NULL, fmt, ap);
	va_end(ap);
}

int
ogctl_usage(const struct cmd_entry *cmd, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	ogctl_verror(cmd, fmt, ap);
	va_end(ap);
	return EXIT_USAGE;
}

int
ogctl_getopt(struct ogctl *o, int argc, char **argv, const char *shortopts,
    const struct option *longopts)
{
	static struct option	 all[32];
	static char		 so[64];
	size_t			 n = 0;
	int			 ch;

	/*
	 * A leading '+' (main's) stops at the command name; commands let
	 * options and operands mix. ':' reports missing values to us.
	 */
	if (*shortopts == '+')
		snprintf(so, sizeof so, "+:s:H:%s", shortopts + 1);
	else
		snprintf(so, sizeof so, ":s:H:%s", shortopts);
	for (; longopts != NULL && longopts[n].name != NULL && n < 27; n++)
		all[n] = longopts[n];
	all[n++] = (struct option){ "json", no_argument, NULL, 'J' };
	all[n++] = (struct option){ "socket", required_argument, NULL, 's' };
	all[n++] = (struct option){ "host", required_argument, NULL, 'H' };
	all[n++] = (struct option){ "remote-ogctl", required_argument, NULL,
	    OGCTL_OPT_REMOTE };
	all[n] = (struct option){ NULL, 0, NULL, 0 };
	for (;;) {
		ch = getopt_long(argc, argv, so, all, NULL);
		switch (ch) {
		case 'J':
			o->json = 1;
			continue;
		case 's':
			o->socket = optarg;
			continue;
		case 'H':
			o->host = optarg;
			continue;
		case OGCTL_OPT_REMOTE:
			o->remote_ogctl = optarg;
			continue;
		case ':':
			ogctl_error("option %s needs a value; try 'ogctl -h'",
			    argv[optind - 1]);
			return '?';
		case '?':
			ogctl_error("unknown option %s; try 'ogctl -h'",
			    argv[optind - 1]);
			return '?';
		default:
			return ch;
		}
	}
}

int
ogctl_noargs(const struct cmd_entry *cmd, struct ogctl *o, int argc,
    char **argv)
{
	optind = 0;	/* 0 makes GNU getopt start afresh */
	if (ogctl_getopt(o, argc, argv, "", NULL) != -1)
		return EXIT_USAGE;
	if (optind != argc)
		return ogctl_usage(cmd, "%s takes no arguments", cmd->name);
	return EXIT_DONE;
}

int
ogctl_subcommand(struct ogctl *o, const struct cmd_entry *cmd, int argc,
    char **argv, const char *path, void (*print)(json_t *), const char **sub)
{
	json_t	*doc = NULL;
	int	 rc;

	optind = 0;
	if (ogctl_getopt(o, argc, argv, "", NULL) != -1)
		return EXIT_USAGE;
	if (optind >= argc)
		return ogctl_usage(cmd, "missing subcommand");
	*sub = argv[optind++];
	if (strcmp(*sub, "list") != 0)
		return EXIT_CONTINUE;
	if (optind != argc)
		return ogctl_usage(cmd, "list takes no arguments");
	if ((rc = ogctl_call(o, "GET", path, NULL, &doc)) != EXIT_DONE)
		return rc;
	if (o->json)
		ogctl_print_json(doc);
	else
		print(doc);
	json_decref(doc);
	return EXIT_DONE;
}

/* Connect to the daemon, once: EXIT_DONE or the exit status to use. */
static int
ogctl_client(struct ogctl *o)
{
	if (o->client != NULL)
		return EXIT_DONE;
	if (o->host != NULL && o->socket != NULL) {
		ogctl_error("-s and -H cannot be used together");
		return EXIT_USAGE;
	}
	if (o->host != NULL) {
		char	*err = NULL;
		int	 rc;

		rc = client_open_ssh(o->host, o->remote_ogctl, &o->client,
		    &err);
		if (rc != 0) {
			ogctl_error("%s", err);
			free(err);
			return rc == -2 ? EXIT_USAGE : EXIT_UNREACHABLE;
		}
		return EXIT_DONE;
	}
	o->client = client_open_unix(client_socket_path(o->socket));
	if (o->client == NULL) {
		ogctl_error("cannot start libcurl");
		return EXIT_UNREACHABLE;
	}
	return EXIT_DONE;
}

/* The exit status for an answer, printing the daemon's error if any. */
static int
ogctl_answered(long status, json_t **doc)
{
	if (status >= 200 && status < 300)
		return EXIT_DONE;
	{
		const char	*msg = json_string_value(json_object_get(*doc,
				    "error"));

		ogctl_error("%s", msg != NULL ? msg : "the daemon answered an "
		    "unexpected error");
	}
	json_decref(*doc);
	*doc = NULL;
	return EXIT_REFUSED;
}

int
ogctl_call(struct ogctl *o, const char *method, const char *path,
    json_t *body, json_t **doc)
{
	long	 status = 0;
	char	*err = NULL;
	int	 rc;

	*doc = NULL;
	if ((rc = ogctl_client(o)) != EXIT_DONE)
		return rc;
	if (client_call(o->client, method, path, body, &status, doc,
	    &err) != 0) {
		ogctl_error("%s", err);
		free(err);
		return EXIT_UNREACHABLE;
	}
	return ogctl_answered(status, doc);
}

int
ogctl_stream(struct ogctl *o, const char *method, const char *path,
    json_t *body, void (*on_line)(json_t *, void *), void *arg,
    json_t **doc)
{
	long	 status = 0;
	char	*err = NULL;
	int	 rc;

	*doc = NULL;
	if ((rc = ogctl_client(o)) != EXIT_DONE)
		return rc;
	if (client_stream(o->client, method, path, body, &status, on_line,
	    arg, doc, &err) != 0) {
		ogctl_error("%s", err);
		free(err);
		return EXIT_UNREACHABLE;
	}
	return ogctl_answered(status, doc);
}

/*
 * The encoder escapes C0 controls but not DEL, C1 controls or bidi
 * overrides, which a terminal acts on too: they are written as \u
 * escapes, which mean the same to whatever reads the JSON.
 */
void
ogctl_print_json(json_t *doc)
{
	char	*text, *safe;

	if ((text = json_dumps(doc, JSON_INDENT(2) | JSON_ENCODE_ANY |
	    JSON_REAL_PRECISION(10))) == NULL) {
		ogctl_error("cannot write the answer as JSON");
		return;
	}
	safe = escape_json(text);
	printf("%s\n", safe);
	free(safe);
	free(text);
}

int
main(int argc, char **argv)
{
	struct ogctl	 o;
	const char	*name;
	int		 ch, rc;

	/* Only to know how wide characters are on the terminal. */
	setlocale(LC_CTYPE, "");
	memset(&o, 0, sizeof o);
	opterr = 0;
	while ((ch = ogctl_getopt(&o, argc, argv, "+h", (const struct option[]){
	    { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } })) != -1) {
		if (ch == 'h') {
			ogctl_print_usage(stdout);
			return EXIT_DONE;
		}
		return EXIT_USAGE;
	}
	if (optind >= argc) {
		ogctl_error("missing command; try 'ogctl -h'");
		return EXIT_USAGE;
	}
	name = argv[optind];
	for (size_t i = 0; i < OGCTL_NCOMMANDS; i++) {
		if (strcmp(ogctl_commands[i]->name, name) != 0)
			continue;
		/* The command parses its own arguments, from its name on. */
		argc -= optind;
		argv += optind;
		optind = 0;
		rc = ogctl_commands[i]->exec(&o, argc, argv);
		client_close(o.client);
		return rc;
	}
	ogctl_error("unknown command %s; try 'ogctl -h'", name);
	return EXIT_USAGE;
}
