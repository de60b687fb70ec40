/*
 * cmd-status.c: ogctl status and ogctl reload.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ogctl.h"

static int	cmd_status_exec(struct ogctl *, int, char **);
static int	cmd_reload_exec(struct ogctl *, int, char **);

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.usage = "",
	.exec = cmd_status_exec,
};

const struct cmd_entry cmd_reload_entry = {
	.name = "reload",
	.usage = "",
	.exec = cmd_reload_exec,
};

/* A string field of an object, or a stand-in when it is absent. */
static const char *
cmd_status_str(json_t *obj, const char *key, const char *none)
{
	const char	*s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : none;
}

/*
 * One line for the writing of usage rows: "ok", or since when it fails,
 * how many rows wait, whether inference is refused, and the last error.
 */
static void
cmd_status_usage(json_t *u)
{
	long long	pending, dropped, max;

	if (u == NULL)
		return;
	pending = json_integer_value(json_object_get(u, "rows_pending"));
	dropped = json_integer_value(json_object_get(u, "rows_dropped"));
	max = json_integer_value(json_object_get(u, "max_backlog"));
	printf("%-16s ", "usage_store");
	if (strcmp(cmd_status_str(u, "state", ""), "ok") == 0) {
		if (pending > 0)
			printf("ok, %lld rows waiting\n", pending);
		else
			printf("ok\n");
		return;
	}
	printf("failing since %s, %lld rows waiting (max %lld)",
	    cmd_status_str(u, "failing_since", "-"), pending, max);
	if (json_is_true(json_object_get(u, "refusing_inference")))
		printf(", inference refused");
	if (dropped > 0)
		printf(", %lld rows dropped", dropped);
	printf(": %s\n", cmd_status_str(u, "last_error", "unknown error"));
}

static int
cmd_status_exec(struct ogctl *o, int argc, char **argv)
{
	json_t		*doc, *v, *b;
	const char	*key;
	size_t		 i;
	int		 rc;

	if ((rc = ogctl_noargs(&cmd_status_entry, o, argc, argv)) != EXIT_DONE)
		return rc;
	if ((rc = ogctl_call(o, "GET", "/admin/v1/status", NULL, &doc)) !=
	    EXIT_DONE)
		return rc;
	if (o->json) {
		ogctl_print_json(doc);
		json_decref(doc);
		return EXIT_DONE;
	}
	json_object_foreach(doc, key, v) {
		char	*cell;

		if (json_is_array(v) || json_is_object(v))
			continue;
		cell = table_cell(v);
		table_pad(key, 16);
		putchar(' ');
		table_pad(cell, 0);
		putchar('\n');
		free(cell);
	}
	cmd_status_usage(json_object_get(doc, "usage_store"));
	printf("backends:\n");
	json_array_foreach(json_object_get(doc, "backends"), i, b) {
		printf("  ");
		table_pad(json_string_value(json_object_get(b, "name")), 12);
		putchar(' ');
		table_pad(json_string_value(json_object_get(b, "url")), 32);
		printf(" active %lld, %lld requests, %lld failures%s\n",
		    (long long)json_integer_value(json_object_get(b, "active")),
		    (long long)json_integer_value(json_object_get(b, "requests")),
		    (long long)json_integer_value(json_object_get(b, "failures")),
		    json_is_true(json_object_get(b, "draining")) ?
		    ", draining" : "");
	}
	json_decref(doc);
	return EXIT_DONE;
}

static int
cmd_reload_exec(struct ogctl *o, int argc, char **argv)
{
	json_t	*doc;
	int	 rc;

	if ((rc = ogctl_noargs(&cmd_reload_entry, o, argc, argv)) != EXIT_DONE)
		return rc;
	if ((rc = ogctl_call(o, "POST", "/admin/v1/reload", NULL, &doc)) ==
	    EXIT_DONE && o->json)
		ogctl_print_json(doc);
	json_decref(doc);
	return rc;
}
