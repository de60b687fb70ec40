/*
 * ogctl.h: what the command files of ogctl share.
 *
 * Each command lives in its own file and exports one struct cmd_entry
 * (tmux's pattern): its name, its usage line and the function that runs
 * it. Commands talk to the daemon through the admin-API client.
 */
#ifndef OG_OGCTL_H
#define OG_OGCTL_H

#include <getopt.h>

#include <jansson.h>

/* Exit status: the contract in DESIGN.md. */
#define EXIT_DONE	0
#define EXIT_REFUSED	1	/* the daemon refused or failed */
#define EXIT_USAGE	2
#define EXIT_UNREACHABLE 3

struct client;

struct ogctl {
	const char	*socket;
	const char	*host;		/* ssh://... */
	const char	*remote_ogctl;	/* run there for -H */
	int		 json;
	struct client	*client;
};

struct cmd_entry {
	const char	*name;
	const char	*usage;		/* lines after "ogctl NAME " */
	int		(*exec)(struct ogctl *, int, char **);
};

extern const struct cmd_entry	cmd_status_entry;
extern const struct cmd_entry	cmd_user_entry;
extern const struct cmd_entry	cmd_token_entry;
extern const struct cmd_entry	cmd_reload_entry;
extern const struct cmd_entry	cmd_usage_entry;
extern const struct cmd_entry	cmd_requests_entry;
extern const struct cmd_entry	cmd_kill_entry;
extern const struct cmd_entry	cmd_backend_entry;
extern const struct cmd_entry	cmd_gpu_entry;
extern const struct cmd_entry	cmd_model_entry;
extern const struct cmd_entry	cmd_dial_stdio_entry;
extern const struct cmd_entry	cmd_alert_entry;
extern const struct cmd_entry	cmd_cache_entry;

/*
 * getopt_long over a command's arguments, with the global options
 * (-s, -H, --json, --remote-ogctl) accepted among them. Returns the option character,
 * -1 at the end, or '?' after printing the usage error.
 */
int	 ogctl_getopt(struct ogctl *, int, char **, const char *,
	    const struct option *);
/* For commands without arguments: EXIT_DONE, or the usage error. */
int	 ogctl_noargs(const struct cmd_entry *, struct ogctl *, int, char **);
/*
 * A command of subcommands whose "list" GETs path and prints it with
 * print (or as JSON): runs "list", else sets *sub (argv[optind] the next)
 * and returns EXIT_CONTINUE.
 */
#define EXIT_CONTINUE	(-1)
struct json_t;
int	 ogctl_subcommand(struct ogctl *, const struct cmd_entry *, int,
	    char **, const char *path, void (*print)(struct json_t *),
	    const char **sub);
/* Report a usage error for a command and return EXIT_USAGE. */
int	 ogctl_usage(const struct cmd_entry *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/*
 * Call the API. Returns EXIT_DONE with *doc set, or prints the
 * daemon's error (or why it cannot be reached) and returns the exit
 * status to use.
 */
int	 ogctl_call(struct ogctl *, const char *method, const char *path,
	    json_t *body, json_t **doc);
/*
 * The same for an API that answers with a stream of JSON lines: on_line
 * gets each as it arrives; *doc is set only if the answer was not a
 * stream (NULL otherwise).
 */
int	 ogctl_stream(struct ogctl *, const char *method, const char *path,
	    json_t *body, void (*on_line)(json_t *, void *), void *arg,
	    json_t **doc);
/* Print a JSON document for scripts. */
void	 ogctl_print_json(json_t *);
void	 ogctl_error(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Tables for people: add cells row by row, then print aligned. */
struct table;
struct table	*table_new(const char *const *headers, int ncols);
void		 table_add(struct table *, const char *const *cells);
/*
 * A row from the named fields of a JSON object, and after them, if last
 * is not NULL, one more cell.
 */
void		 table_add_json(struct table *, json_t *,
		    const char *const *fields, const char *last);
void		 table_print(struct table *);
/* One field outside a table: escaped, padded to width columns. */
void		 table_pad(const char *, int width);
void		 table_free(struct table *);
/* A JSON value as a short cell: "-" for null, dates kept as they are. */
char		*table_cell(json_t *);

#endif
