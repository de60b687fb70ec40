/*
 * cmd-user.c: ogctl user add|list|show|set|disable|enable|delete.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "ogctl.h"
#include "parse.h"
#include "xmalloc.h"

static int	cmd_user_exec(struct ogctl *, int, char **);

const struct cmd_entry cmd_user_entry = {
	.name = "user",
	.usage = "add NAME [--role admin|user|readonly] [--models GLOB,...] "
	    "[--priority N] [--tokens-per-day N] [--tokens-per-month N] "
	    "[--rpm N] [--max-concurrent N] [--max-queued N]\n"
	    "    [--trust-end-user | --no-trust-end-user]\n"
	    "list | show NAME | set NAME [options as for add] | disable NAME "
	    "| enable NAME | delete NAME",
	.exec = cmd_user_exec,
};

static const struct option cmd_user_options[] = {
	{ "role", required_argument, NULL, 'r' },
	{ "models", required_argument, NULL, 'm' },
	{ "priority", required_argument, NULL, 'p' },
	{ "tokens-per-day", required_argument, NULL, 'd' },
	{ "tokens-per-month", required_argument, NULL, 'M' },
	{ "rpm", required_argument, NULL, 'R' },
	{ "max-concurrent", required_argument, NULL, 'c' },
	{ "max-queued", required_argument, NULL, 'Q' },
	{ "trust-end-user", no_argument, NULL, 'T' },
	{ "no-trust-end-user", no_argument, NULL, 'N' },
	{ NULL, 0, NULL, 0 },
};

/* The quota fields, as options and as API fields. */
static const struct {
	int		 ch;
	const char	*option;
	const char	*field;
} cmd_user_limits[] = {
	{ 'p', "--priority", "priority" },
	{ 'd', "--tokens-per-day", "tokens_per_day" },
	{ 'M', "--tokens-per-month", "tokens_per_month" },
	{ 'R', "--rpm", "requests_per_minute" },
	{ 'c', "--max-concurrent", "max_concurrent" },
	{ 'Q', "--max-queued", "max_queued" },
};

/* Fill the request body from options; returns EXIT_DONE or EXIT_USAGE. */
static int
cmd_user_options_parse(struct ogctl *o, int argc, char **argv, json_t *body)
{
	int	ch;

	while ((ch = ogctl_getopt(o, argc, argv, "", cmd_user_options)) != -1) {
		size_t	i;

		switch (ch) {
		case 'T':
		case 'N':
			json_object_set_new(body, "trust_end_user",
			    json_boolean(ch == 'T'));
			continue;
		case 'r':
			if (strcmp(optarg, "admin") != 0 &&
			    strcmp(optarg, "user") != 0 &&
			    strcmp(optarg, "readonly") != 0)
				return ogctl_usage(&cmd_user_entry, "--role must "
				    "be admin, user or readonly");
			json_object_set_new(body, "role", json_string(optarg));
			continue;
		case 'm': {
			json_t	*models = json_array();
			char	*copy = xstrdup(optarg), *tok, *save = NULL;

			for (tok = strtok_r(copy, ",", &save); tok != NULL;
			    tok = strtok_r(NULL, ",", &save)) {
				/* The daemon refuses them too; say so here. */
				if (parse_model_pattern(tok) != 0) {
					ogctl_usage(&cmd_user_entry, "--models: "
					    "'%s' is not a model pattern: use "
					    PARSE_MODEL_PATTERN_HELP, tok);
					free(copy);
					json_decref(models);
					return EXIT_USAGE;
				}
				json_array_append_new(models, json_string(tok));
			}
			free(copy);
			json_object_set_new(body, "models", models);
			continue;
		}
		case '?':
			return EXIT_USAGE;
		}
		for (i = 0; i < sizeof cmd_user_limits / sizeof cmd_user_limits[0];
		    i++) {
			if (cmd_user_limits[i].ch == ch)
				break;
		}
		if (i == sizeof cmd_user_limits / sizeof cmd_user_limits[0])
			return EXIT_USAGE;
		if (strcmp(optarg, "default") == 0) {
			/* Fall back to the config's [defaults] again. */
			json_object_set_new(body, cmd_user_limits[i].field,
			    json_null());
		} else {
			uint64_t	v;

			if (parse_uint(optarg, INT64_MAX, &v) != 0)
				return ogctl_usage(&cmd_user_entry, "%s needs a "
				    "non-negative number or 'default'",
				    cmd_user_limits[i].option);
			json_object_set_new(body, cmd_user_limits[i].field,
			    json_integer((json_int_t)v));
		}
	}
	return EXIT_DONE;
}

static void
cmd_user_print_list(json_t *list)
{
	static const char *const headers[] = { "NAME", "ROLE", "ENABLED",
	    "MODELS", "PRIORITY", "TOKENS/DAY", "TOKENS/MONTH", "RPM",
	    "CONCURRENT", "QUEUED" };
	static const char *const fields[] = { "name", "role", "enabled",
	    "models", "priority", "tokens_per_day", "tokens_per_month",
	    "requests_per_minute", "max_concurrent", "max_queued" };
	struct table	*t = table_new(headers, 10);
	size_t		 i;
	json_t		*u;

	json_array_foreach(list, i, u)
		table_add_json(t, u, fields, NULL);
	table_print(t);
	table_free(t);
}

static void
cmd_user_print_one(json_t *u, json_t *tokens)
{
	const char	*key;
	json_t		*v;
	size_t		 i;

	json_object_foreach(u, key, v) {
		char	*cell;

		if (strcmp(key, "tokens") == 0)
			continue;
		cell = table_cell(v);
		table_pad(key, 20);
		putchar(' ');
		table_pad(cell, 0);
		putchar('\n');
		free(cell);
	}
	printf("tokens:\n");
	json_array_foreach(tokens, i, v) {
		char	*created = table_cell(json_object_get(v, "created"));
		char	*last = table_cell(json_object_get(v, "last_used"));

		printf("  %-6lld ",
		    (long long)json_integer_value(json_object_get(v, "id")));
		table_pad(json_string_value(json_object_get(v, "prefix")), 12);
		putchar(' ');
		table_pad(json_string_value(json_object_get(v, "name")), 24);
		printf(" created ");
		table_pad(created, 0);
		printf(" last used ");
		table_pad(last, 0);
		printf("%s\n", json_is_null(json_object_get(v, "revoked")) ? "" :
		    " (revoked)");
		free(created);
		free(last);
	}
}

static int
cmd_user_exec(struct ogctl *o, int argc, char **argv)
{
	const char	*sub;
	char		*path = NULL;
	json_t		*body = json_object(), *doc = NULL, *tokens = NULL;
	int		 rc;

	optind = 0;	/* 0 makes GNU getopt start afresh */
	if ((rc = cmd_user_options_parse(o, argc, argv, body)) != EXIT_DONE)
		goto out;
	if (optind >= argc) {
		rc = ogctl_usage(&cmd_user_entry, "missing subcommand");
		goto out;
	}
	sub = argv[optind++];
	if (strcmp(sub, "list") == 0) {
		if (optind != argc || json_object_size(body) != 0) {
			rc = ogctl_usage(&cmd_user_entry, "list takes no arguments");
			goto out;
		}
		if ((rc = ogctl_call(o, "GET", "/admin/v1/users", NULL,
		    &doc)) != EXIT_DONE)
			goto out;
		if (o->json)
			ogctl_print_json(doc);
		else
			cmd_user_print_list(doc);
		goto out;
	}
	if (optind != argc - 1) {
		rc = ogctl_usage(&cmd_user_entry, "%s needs one user name", sub);
		goto out;
	}
	path = xasprintf("/admin/v1/users/%s", argv[optind]);
	if (parse_user_name(argv[optind]) != 0) {
		rc = ogctl_usage(&cmd_user_entry, "'%s' is not a user name: "
		    "a name is " PARSE_USER_NAME_HELP, argv[optind]);
		goto out;
	}
	if (strcmp(sub, "add") == 0) {
		json_object_set_new(body, "name", json_string(argv[optind]));
		rc = ogctl_call(o, "POST", "/admin/v1/users", body, &doc);
	} else if (strcmp(sub, "set") == 0) {
		if (json_object_size(body) == 0) {
			rc = ogctl_usage(&cmd_user_entry, "set needs an option to "
			    "change");
			goto out;
		}
		rc = ogctl_call(o, "PATCH", path, body, &doc);
	} else if (strcmp(sub, "enable") == 0 || strcmp(sub, "disable") == 0) {
		if (json_object_size(body) != 0) {
			rc = ogctl_usage(&cmd_user_entry, "%s takes no options",
			    sub);
			goto out;
		}
		json_object_set_new(body, "enabled", json_boolean(sub[0] == 'e'));
		rc = ogctl_call(o, "PATCH", path, body, &doc);
	} else if (strcmp(sub, "delete") == 0 || strcmp(sub, "show") == 0) {
		if (json_object_size(body) != 0) {
			rc = ogctl_usage(&cmd_user_entry, "%s takes no options",
			    sub);
			goto out;
		}
		if (sub[0] == 'd') {
			rc = ogctl_call(o, "DELETE", path, NULL, &doc);
			goto print;
		}
		if ((rc = ogctl_call(o, "GET", path, NULL, &doc)) != EXIT_DONE)
			goto out;
		free(path);
		path = xasprintf("/admin/v1/tokens?user=%s", argv[optind]);
		if ((rc = ogctl_call(o, "GET", path, NULL, &tokens)) != EXIT_DONE)
			goto out;
		if (o->json) {
			json_object_set(doc, "tokens", tokens);
			ogctl_print_json(doc);
		} else
			cmd_user_print_one(doc, tokens);
		goto out;
	} else {
		rc = ogctl_usage(&cmd_user_entry, "unknown subcommand %s", sub);
		goto out;
	}
print:
	/* Changes print nothing for people, the new state for scripts. */
	if (rc == EXIT_DONE && o->json)
		ogctl_print_json(doc);
out:
	free(path);
	json_decref(body);
	json_decref(doc);
	json_decref(tokens);
	return rc;
}
