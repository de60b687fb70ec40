/*
 * cmd-cache.c: ogctl cache stats|clear [--model M]: what the response
 * cache holds, and emptying it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ogctl.h"
#include "xmalloc.h"

static int	cmd_cache_exec(struct ogctl *, int, char **);

const struct cmd_entry cmd_cache_entry = {
	.name = "cache",
	.usage = "stats\nclear [--model M]",
	.exec = cmd_cache_exec,
};

static const struct option cmd_cache_options[] = {
	{ "model", required_argument, NULL, 'm' },
	{ NULL, 0, NULL, 0 },
};

static long long
cmd_cache_int(json_t *doc, const char *name)
{
	return (long long)json_integer_value(json_object_get(doc, name));
}

static void
cmd_cache_print(json_t *doc)
{
	static const char *const headers[] = { "MODEL", "ENTRIES", "BYTES" };
	static const char *const fields[] = { "model", "entries", "bytes" };
	struct table	*t;
	json_t		*m;
	size_t		 i;

	printf("entries: %lld, %lld bytes of %lld (largest entry %lld); "
	    "ttl %llds; scope %s\n", cmd_cache_int(doc, "entries"),
	    cmd_cache_int(doc, "bytes"), cmd_cache_int(doc, "size"),
	    cmd_cache_int(doc, "max_entry_bytes"),
	    cmd_cache_int(doc, "ttl_ms") / 1000,
	    json_string_value(json_object_get(doc, "scope")));
	printf("hits: %lld, misses: %lld, bypasses: %lld, stores: %lld, "
	    "evictions: %lld, expired: %lld\n", cmd_cache_int(doc, "hits"),
	    cmd_cache_int(doc, "misses"), cmd_cache_int(doc, "bypasses"),
	    cmd_cache_int(doc, "stores"), cmd_cache_int(doc, "evictions"),
	    cmd_cache_int(doc, "expired"));
	if (json_array_size(json_object_get(doc, "models")) == 0)
		return;
	t = table_new(headers, 3);
	json_array_foreach(json_object_get(doc, "models"), i, m)
		table_add_json(t, m, fields, NULL);
	table_print(t);
	table_free(t);
}

static int
cmd_cache_exec(struct ogctl *o, int argc, char **argv)
{
	const char	*sub, *model = NULL;
	json_t		*doc = NULL, *body;
	int		 ch, rc;

	optind = 0;	/* 0 makes GNU getopt start afresh */
	while ((ch = ogctl_getopt(o, argc, argv, "", cmd_cache_options)) !=
	    -1) {
		if (ch != 'm')
			return EXIT_USAGE;
		model = optarg;
	}
	if (optind != argc - 1)
		return ogctl_usage(&cmd_cache_entry, optind >= argc ?
		    "missing subcommand" : "unexpected argument %s",
		    argv[argc - 1]);
	sub = argv[optind];
	if (strcmp(sub, "stats") == 0) {
		if (model != NULL)
			return ogctl_usage(&cmd_cache_entry, "--model is for "
			    "clear");
		if ((rc = ogctl_call(o, "GET", "/admin/v1/cache", NULL, &doc)) !=
		    EXIT_DONE)
			return rc;
		if (o->json)
			ogctl_print_json(doc);
		else
			cmd_cache_print(doc);
		json_decref(doc);
		return EXIT_DONE;
	}
	if (strcmp(sub, "clear") != 0)
		return ogctl_usage(&cmd_cache_entry, "unknown subcommand %s", sub);
	body = model != NULL ? json_pack("{s:s}", "model", model) : json_object();
	rc = ogctl_call(o, "POST", "/admin/v1/cache/clear", body, &doc);
	json_decref(body);
	if (rc != EXIT_DONE)
		return rc;
	if (o->json)
		ogctl_print_json(doc);
	else
		printf("%lld entries cleared (%lld bytes)\n",
		    cmd_cache_int(doc, "cleared"), cmd_cache_int(doc, "bytes"));
	json_decref(doc);
	return EXIT_DONE;
}
