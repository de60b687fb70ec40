/*
 * cmd-usage.c: ogctl usage: token use by user, model or day.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "escape.h"
#include "ogctl.h"
#include "parse.h"
#include "xmalloc.h"

static int	cmd_usage_exec(struct ogctl *, int, char **);

const struct cmd_entry cmd_usage_entry = {
	.name = "usage",
	.usage = "[--user NAME] [--model M] [--since WHEN] [--until WHEN] "
	    "[--group-by user|end_user|model|day] [--format table|json|csv]",
	.exec = cmd_usage_exec,
};

static const struct option cmd_usage_options[] = {
	{ "user", required_argument, NULL, 'u' },
	{ "model", required_argument, NULL, 'm' },
	{ "since", required_argument, NULL, 's' + 256 },
	{ "until", required_argument, NULL, 'u' + 256 },
	{ "group-by", required_argument, NULL, 'g' },
	{ "format", required_argument, NULL, 'f' },
	{ NULL, 0, NULL, 0 },
};

/*
 * WHEN is a day (2026-11-01, UTC), a time (2026-11-01T12:00:00Z) or a
 * duration ago (7d, 12h). A day given to --until includes that day.
 * Returns Unix milliseconds, or -1.
 */
static int64_t
cmd_usage_when(const char *s, int until)
{
	struct tm	tm;
	const char	*end;
	uint64_t	ms;

	if (parse_duration_ms(s, &ms) == 0)
		return (int64_t)time(NULL) * 1000 - (int64_t)ms;
	memset(&tm, 0, sizeof tm);
	if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL)
		return -1;
	if (*end == '\0')
		return ((int64_t)timegm(&tm) + (until ? 86400 : 0)) * 1000;
	if ((end = strptime(end, "T%H:%M:%S", &tm)) == NULL ||
	    (strcmp(end, "Z") != 0 && *end != '\0'))
		return -1;
	return (int64_t)timegm(&tm) * 1000;
}

/*
 * A CSV field (RFC 4180): escaped like every field ogctl shows, since
 * CSV is read on terminals too, then quoted when it holds a comma or a
 * quote, with its quotes doubled. Escaping leaves no line break.
 */
static void
cmd_usage_csv_field(const char *s)
{
	char	*safe = escape_string(s != NULL ? s : "");

	if (strpbrk(safe, ",\"") == NULL)
		fputs(safe, stdout);
	else {
		putchar('"');
		for (const char *p = safe; *p != '\0'; p++) {
			if (*p == '"')
				putchar('"');
			putchar(*p);
		}
		putchar('"');
	}
	free(safe);
}

static int
cmd_usage_exec(struct ogctl *o, int argc, char **argv)
{
	const char	*user = NULL, *model = NULL, *group = "user";
	const char	*format = NULL, *key;
	int64_t		 since = -1, until = -1;
	struct table	*t;
	json_t		*doc = NULL, *row;
	char		*path;
	size_t		 i;
	int		 ch, rc;
	long long	 tot[5] = { 0, 0, 0, 0, 0 };

	optind = 0;	/* 0 makes GNU getopt start afresh */
	while ((ch = ogctl_getopt(o, argc, argv, "", cmd_usage_options)) != -1) {
		switch (ch) {
		case 'u':
			user = optarg;
			break;
		case 'm':
			model = optarg;
			break;
		case 's' + 256:
		case 'u' + 256:
			if ((ch == 's' + 256 ? (since = cmd_usage_when(optarg, 0)) :
			    (until = cmd_usage_when(optarg, 1))) < 0)
				return ogctl_usage(&cmd_usage_entry, "'%s' is not a "
				    "day, a time or a duration", optarg);
			break;
		case 'g':
			if (strcmp(optarg, "user") != 0 &&
			    strcmp(optarg, "model") != 0 &&
			    strcmp(optarg, "day") != 0 &&
			    strcmp(optarg, "end_user") != 0)
				return ogctl_usage(&cmd_usage_entry, "--group-by "
				    "must be user, end_user, model or day");
			group = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "table") != 0 &&
			    strcmp(optarg, "json") != 0 &&
			    strcmp(optarg, "csv") != 0)
				return ogctl_usage(&cmd_usage_entry, "--format "
				    "must be table, json or csv");
			format = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc)
		return ogctl_usage(&cmd_usage_entry, "unexpected argument %s",
		    argv[optind]);
	if (format == NULL)
		format = o->json ? "json" : "table";
	for (const char *p = user ? user : ""; *p != '\0'; p++) {
		if (strchr("&?#% ", *p) != NULL)
			return ogctl_usage(&cmd_usage_entry, "bad user name");
	}
	for (const char *p = model ? model : ""; *p != '\0'; p++) {
		if (strchr("&?#% ", *p) != NULL)
			return ogctl_usage(&cmd_usage_entry, "bad model name");
	}
	path = xasprintf("/admin/v1/usage?group_by=%s%s%s%s%s", group,
	    user ? "&user=" : "", user ? user : "", model ? "&model=" : "",
	    model ? model : "");
	if (since >= 0) {
		char	*p = xasprintf("%s&since=%lld", path, (long long)since);

		free(path);
		path = p;
	}
	if (until >= 0) {
		char	*p = xasprintf("%s&until=%lld", path, (long long)until);

		free(path);
		path = p;
	}
	rc = ogctl_call(o, "GET", path, NULL, &doc);
	free(path);
	if (rc != EXIT_DONE)
		return rc;
	key = strcmp(group, "user") == 0 ? "user" : strcmp(group, "model") == 0 ?
	    "model" : strcmp(group, "end_user") == 0 ? "end_user" : "day";
	if (strcmp(format, "json") == 0) {
		ogctl_print_json(doc);
	} else if (strcmp(format, "csv") == 0) {
		printf("%s,requests,prompt_tokens,completion_tokens,total_tokens,"
		    "cached_tokens\n", key);
		json_array_foreach(doc, i, row) {
			cmd_usage_csv_field(json_string_value(json_object_get(row,
			    key)));
			printf(",%lld,%lld,%lld,%lld,%lld\n",
			    (long long)json_integer_value(json_object_get(row,
			    "requests")),
			    (long long)json_integer_value(json_object_get(row,
			    "prompt_tokens")),
			    (long long)json_integer_value(json_object_get(row,
			    "completion_tokens")),
			    (long long)json_integer_value(json_object_get(row,
			    "total_tokens")),
			    (long long)json_integer_value(json_object_get(row,
			    "cached_tokens")));
		}
	} else {
		/* Tokens answered from the cache are apart: not charged. */
		static const char *const fields[] = { NULL, "requests",
		    "prompt_tokens", "completion_tokens", "total_tokens",
		    "cached_tokens" };
		const char	*headers[] = { key, "REQUESTS", "PROMPT",
		    "COMPLETION", "TOTAL", "CACHED" };
		const char	*names[6];
		char		 cells[5][24];

		memcpy(names, fields, sizeof names);
		names[0] = key;
		headers[0] = strcmp(key, "user") == 0 ? "USER" :
		    strcmp(key, "model") == 0 ? "MODEL" :
		    strcmp(key, "end_user") == 0 ? "END USER" : "DAY";
		t = table_new(headers, 6);
		json_array_foreach(doc, i, row) {
			table_add_json(t, row, names, NULL);
			for (int k = 0; k < 5; k++)
				tot[k] += json_integer_value(json_object_get(row,
				    fields[k + 1]));
		}
		for (int k = 0; k < 5; k++)
			snprintf(cells[k], sizeof cells[k], "%lld", tot[k]);
		table_add(t, (const char *const[]){ "(total)", cells[0], cells[1],
		    cells[2], cells[3], cells[4] });
		table_print(t);
		table_free(t);
	}
	json_decref(doc);
	return EXIT_DONE;
}
