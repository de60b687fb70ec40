/*
 * cmd-requests.c: ogctl requests and ogctl kill: the requests being
 * served right now, and stopping one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ogctl.h"
#include "parse.h"
#include "xmalloc.h"

static int	cmd_requests_exec(struct ogctl *, int, char **);
static int	cmd_kill_exec(struct ogctl *, int, char **);

const struct cmd_entry cmd_requests_entry = {
	.name = "requests",
	.usage = "",
	.exec = cmd_requests_exec,
};

const struct cmd_entry cmd_kill_entry = {
	.name = "kill",
	.usage = "REQUEST_ID",
	.exec = cmd_kill_exec,
};

static int
cmd_requests_exec(struct ogctl *o, int argc, char **argv)
{
	static const char *const headers[] = { "ID", "USER", "MODEL",
	    "BACKEND", "ENDPOINT", "STATE", "WAIT", "ELAPSED", "TOKENS",
	    "TOK/S" };
	static const char *const fields[] = { "id", "user", "model", "backend",
	    "endpoint" };
	struct table	*t;
	json_t		*doc, *r;
	size_t		 i;
	int		 rc;

	if ((rc = ogctl_noargs(&cmd_requests_entry, o, argc, argv)) != EXIT_DONE)
		return rc;
	if ((rc = ogctl_call(o, "GET", "/admin/v1/requests", NULL, &doc)) !=
	    EXIT_DONE)
		return rc;
	if (o->json) {
		ogctl_print_json(doc);
		json_decref(doc);
		return EXIT_DONE;
	}
	t = table_new(headers, 10);
	json_array_foreach(doc, i, r) {
		char		*cells[10];
		json_t		*pos = json_object_get(r, "position");
		json_int_t	 wait = json_integer_value(json_object_get(r,
				    "queued_ms"));

		for (int k = 0; k < 5; k++)
			cells[k] = table_cell(json_object_get(r, fields[k]));
		/* A front end's user is shown as its service user's. */
		if (json_is_string(json_object_get(r, "end_user"))) {
			char	*e = table_cell(json_object_get(r, "end_user"));
			char	*both = xasprintf("%s/%s", cells[1], e);

			free(cells[1]);
			free(e);
			cells[1] = both;
		}
		/* A queued request shows its place in line and its wait so far. */
		cells[5] = json_is_integer(pos) ? xasprintf("queued #%lld",
		    (long long)json_integer_value(pos)) :
		    table_cell(json_object_get(r, "state"));
		cells[6] = wait > 0 ? xasprintf("%.1fs", (double)wait / 1000.0) :
		    xstrdup("-");
		cells[7] = xasprintf("%.1fs", (double)json_integer_value(
		    json_object_get(r, "elapsed_ms")) / 1000.0);
		cells[8] = table_cell(json_object_get(r, "tokens_out"));
		cells[9] = xasprintf("%.1f", json_real_value(json_object_get(r,
		    "tokens_per_s")));
		table_add(t, (const char *const *)cells);
		for (int k = 0; k < 10; k++)
			free(cells[k]);
	}
	table_print(t);
	table_free(t);
	json_decref(doc);
	return EXIT_DONE;
}

static int
cmd_kill_exec(struct ogctl *o, int argc, char **argv)
{
	json_t		*doc = NULL;
	char		*path;
	uint64_t	 id;
	int		 ch, rc;

	optind = 0;
	while ((ch = ogctl_getopt(o, argc, argv, "", NULL)) != -1)
		return EXIT_USAGE;
	if (optind != argc - 1 || parse_uint(argv[optind], INT64_MAX, &id) != 0)
		return ogctl_usage(&cmd_kill_entry, "needs one request ID (a "
		    "number, from 'ogctl requests')");
	path = xasprintf("/admin/v1/requests/%llu", (unsigned long long)id);
	rc = ogctl_call(o, "DELETE", path, NULL, &doc);
	free(path);
	if (rc == EXIT_DONE && o->json)
		ogctl_print_json(doc);
	json_decref(doc);
	return rc;
}
