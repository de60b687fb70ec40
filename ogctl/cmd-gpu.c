/*
 * cmd-gpu.c: ogctl gpu: the daemon's latest readings of each GPU.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ogctl.h"
#include "xmalloc.h"

#define GIB	(1024.0 * 1024.0 * 1024.0)

static int	cmd_gpu_exec(struct ogctl *, int, char **);

const struct cmd_entry cmd_gpu_entry = {
	.name = "gpu",
	.usage = "",
	.exec = cmd_gpu_exec,
};

/* A number field, or NULL when it is null (unknown) or missing. */
static json_t *
cmd_gpu_number(json_t *gpu, const char *field)
{
	json_t	*v = json_object_get(gpu, field);

	return json_is_number(v) ? v : NULL;
}

static char *
cmd_gpu_memory(json_t *gpu)
{
	json_t	*used = cmd_gpu_number(gpu, "mem_used_bytes");
	json_t	*total = cmd_gpu_number(gpu, "mem_total_bytes");

	if (used == NULL || total == NULL)
		return xstrdup("-");
	return xasprintf("%.1f/%.1f GiB", json_number_value(used) / GIB,
	    json_number_value(total) / GIB);
}

/* "250/700 W", "250 W" without a limit, "-/700 W" without a reading. */
static char *
cmd_gpu_power(json_t *gpu)
{
	json_t	*power = cmd_gpu_number(gpu, "power_w");
	json_t	*limit = cmd_gpu_number(gpu, "power_limit_w");

	if (power == NULL && limit == NULL)
		return xstrdup("-");
	if (limit == NULL)
		return xasprintf("%.0f W", json_number_value(power));
	if (power == NULL)
		return xasprintf("-/%.0f W", json_number_value(limit));
	return xasprintf("%.0f/%.0f W", json_number_value(power),
	    json_number_value(limit));
}

/* A whole number with a unit after it, or "-". */
static char *
cmd_gpu_unit(json_t *gpu, const char *field, const char *unit)
{
	json_t	*v = cmd_gpu_number(gpu, field);

	if (v == NULL)
		return xstrdup("-");
	return xasprintf("%.0f%s", json_number_value(v), unit);
}

static void
cmd_gpu_table(json_t *doc)
{
	static const char *const headers[] = { "GPU", "VENDOR", "NAME", "UTIL",
	    "MEMORY", "TEMP", "POWER" };
	struct table	*t;
	json_t		*gpu;
	char		*cells[7];
	size_t		 i;

	t = table_new(headers, 7);
	json_array_foreach(doc, i, gpu) {
		cells[0] = table_cell(json_object_get(gpu, "index"));
		cells[1] = table_cell(json_object_get(gpu, "vendor"));
		cells[2] = table_cell(json_object_get(gpu, "name"));
		cells[3] = cmd_gpu_unit(gpu, "util_pct", "%");
		cells[4] = cmd_gpu_memory(gpu);
		cells[5] = cmd_gpu_unit(gpu, "temp_c", "C");
		cells[6] = cmd_gpu_power(gpu);
		table_add(t, (const char *const *)cells);
		for (int k = 0; k < 7; k++)
			free(cells[k]);
	}
	table_print(t);
	table_free(t);
}

static int
cmd_gpu_exec(struct ogctl *o, int argc, char **argv)
{
	json_t	*doc;
	int	 rc;

	if ((rc = ogctl_noargs(&cmd_gpu_entry, o, argc, argv)) != EXIT_DONE)
		return rc;
	if ((rc = ogctl_call(o, "GET", "/admin/v1/gpu", NULL, &doc)) !=
	    EXIT_DONE)
		return rc;
	if (!json_is_array(doc)) {
		ogctl_error("the daemon's answer is not a list of GPUs");
		json_decref(doc);
		return EXIT_REFUSED;
	}
	if (o->json)
		ogctl_print_json(doc);
	else if (json_array_size(doc) == 0)
		printf("no GPU found\n");
	else
		cmd_gpu_table(doc);
	json_decref(doc);
	return EXIT_DONE;
}
