/*
 * cmd-alert.c: ogctl alert list|test NAME: the [alert] sections in
 * force, and a test notice through one of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ogctl.h"
#include "xmalloc.h"

static int	cmd_alert_exec(struct ogctl *, int, char **);

const struct cmd_entry cmd_alert_entry = {
	.name = "alert",
	.usage = "list\ntest NAME",
	.exec = cmd_alert_exec,
};

/* The strings of a JSON array joined by commas; "-" when empty. */
static char *
cmd_alert_join(json_t *list)
{
	json_t	*v;
	char	*s = NULL, *next, *cell;
	size_t	 i;

	json_array_foreach(list, i, v) {
		cell = table_cell(v);
		next = xasprintf("%s%s%s", s != NULL ? s : "",
		    s != NULL ? "," : "", cell);
		free(cell);
		free(s);
		s = next;
	}
	return s != NULL ? s : xstrdup("-");
}

static void
cmd_alert_print(json_t *doc)
{
	static const char *const headers[] = { "NAME", "ON", "AT", "EVERY",
	    "FIRING", "WEBHOOK", "EXEC" };
	struct table	*t = table_new(headers, 7);
	json_t		*a;
	char		*cells[7];
	size_t		 i;

	json_array_foreach(json_object_get(doc, "alerts"), i, a) {
		cells[0] = table_cell(json_object_get(a, "name"));
		cells[1] = cmd_alert_join(json_object_get(a, "on"));
		cells[2] = cmd_alert_join(json_object_get(a, "at"));
		cells[3] = xasprintf("%llds", (long long)json_integer_value(
		    json_object_get(a, "every_ms")) / 1000);
		cells[4] = table_cell(json_object_get(a, "firing"));
		cells[5] = table_cell(json_object_get(a, "webhook"));
		cells[6] = table_cell(json_object_get(a, "exec"));
		table_add(t, (const char *const *)cells);
		for (int k = 0; k < 7; k++)
			free(cells[k]);
	}
	table_print(t);
	table_free(t);
	printf("notices: %lld delivered, %lld failed, %lld dropped, "
	    "%lld queued\n",
	    (long long)json_integer_value(json_object_get(doc, "delivered")),
	    (long long)json_integer_value(json_object_get(doc, "failed")),
	    (long long)json_integer_value(json_object_get(doc, "dropped")),
	    (long long)json_integer_value(json_object_get(doc, "queued")));
}

static int
cmd_alert_exec(struct ogctl *o, int argc, char **argv)
{
	const char	*sub;
	char		*path;
	json_t		*doc = NULL, *body;
	int		 rc;

	if ((rc = ogctl_subcommand(o, &cmd_alert_entry, argc, argv, "/admin/v1/alerts",
	    cmd_alert_print, &sub)) != EXIT_CONTINUE)
		return rc;
	if (strcmp(sub, "test") != 0)
		return ogctl_usage(&cmd_alert_entry, "unknown subcommand %s",
		    sub);
	if (optind != argc - 1)
		return ogctl_usage(&cmd_alert_entry, "test needs one alert name");
	if (strpbrk(argv[optind], "/?#% ") != NULL || argv[optind][0] == '\0')
		return ogctl_usage(&cmd_alert_entry, "'%s' is not an alert name",
		    argv[optind]);
	path = xasprintf("/admin/v1/alerts/%s", argv[optind]);
	body = json_pack("{s:b}", "test", 1);
	rc = ogctl_call(o, "POST", path, body, &doc);
	if (rc == EXIT_DONE) {
		if (o->json)
			ogctl_print_json(doc);
		else
			printf("test notice of alert %s queued\n", argv[optind]);
	}
	free(path);
	json_decref(body);
	json_decref(doc);
	return rc;
}
