/*
 * cmd-backend.c: ogctl backend list|drain|undrain: the upstream
 * servers, what they have loaded, and taking one out of service.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ogctl.h"
#include "xmalloc.h"

#define GIB	(1024.0 * 1024.0 * 1024.0)

static int	cmd_backend_exec(struct ogctl *, int, char **);

const struct cmd_entry cmd_backend_entry = {
	.name = "backend",
	.usage = "list\ndrain NAME\nundrain NAME",
	.exec = cmd_backend_exec,
};

/* "llama3.2:latest (2.4 GiB)", comma-separated; "-" when unknown. */
static char *
cmd_backend_models(json_t *models)
{
	json_t	*m;
	char	*s = NULL, *next;
	size_t	 i;

	if (!json_is_array(models))
		return xstrdup("-");
	json_array_foreach(models, i, m) {
		next = xasprintf("%s%s%s (%.1f GiB)", s != NULL ? s : "",
		    s != NULL ? ", " : "",
		    json_string_value(json_object_get(m, "name")),
		    (double)json_integer_value(json_object_get(m, "vram_bytes")) /
		    GIB);
		free(s);
		s = next;
	}
	return s != NULL ? s : xstrdup("none");
}

static void
cmd_backend_print(json_t *doc)
{
	static const char *const headers[] = { "NAME", "STATE", "ACTIVE",
	    "REQUESTS", "FAILURES", "LATENCY", "URL", "MODELS" };
	static const char *const fields[] = { "name", "state", "active",
	    "requests", "failures" };
	struct table	*t = table_new(headers, 8);
	json_t		*b, *lat;
	char		*cells[8];
	size_t		 i;

	json_array_foreach(doc, i, b) {
		for (int k = 0; k < 5; k++)
			cells[k] = table_cell(json_object_get(b, fields[k]));
		lat = json_object_get(b, "latency_ms");
		cells[5] = json_is_integer(lat) ? xasprintf("%lldms",
		    (long long)json_integer_value(lat)) : xstrdup("-");
		cells[6] = table_cell(json_object_get(b, "url"));
		cells[7] = cmd_backend_models(json_object_get(b, "models"));
		table_add(t, (const char *const *)cells);
		for (int k = 0; k < 8; k++)
			free(cells[k]);
	}
	table_print(t);
	table_free(t);
}

static int
cmd_backend_exec(struct ogctl *o, int argc, char **argv)
{
	const char	*sub;
	char		*path;
	json_t		*doc = NULL, *body;
	int		 rc;

	if ((rc = ogctl_subcommand(o, &cmd_backend_entry, argc, argv, "/admin/v1/backends",
	    cmd_backend_print, &sub)) != EXIT_CONTINUE)
		return rc;
	if (strcmp(sub, "drain") != 0 && strcmp(sub, "undrain") != 0)
		return ogctl_usage(&cmd_backend_entry, "unknown subcommand %s",
		    sub);
	if (optind != argc - 1)
		return ogctl_usage(&cmd_backend_entry, "%s needs one backend "
		    "name", sub);
	if (strpbrk(argv[optind], "/?#% ") != NULL || argv[optind][0] == '\0')
		return ogctl_usage(&cmd_backend_entry, "'%s' is not a backend "
		    "name", argv[optind]);
	path = xasprintf("/admin/v1/backends/%s", argv[optind]);
	body = json_pack("{s:b}", "draining", sub[0] == 'd');
	rc = ogctl_call(o, "PATCH", path, body, &doc);
	if (rc == EXIT_DONE && o->json)
		ogctl_print_json(doc);
	free(path);
	json_decref(body);
	json_decref(doc);
	return rc;
}
