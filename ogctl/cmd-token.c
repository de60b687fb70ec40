/*
 * cmd-token.c: ogctl token create|list|revoke.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ogctl.h"
#include "parse.h"
#include "xmalloc.h"

static int	cmd_token_exec(struct ogctl *, int, char **);

const struct cmd_entry cmd_token_entry = {
	.name = "token",
	.usage = "create USER [--name LABEL] [--expires DURATION]\n"
	    "list [USER] | revoke ID",
	.exec = cmd_token_exec,
};

static const struct option cmd_token_options[] = {
	{ "name", required_argument, NULL, 'n' },
	{ "expires", required_argument, NULL, 'e' },
	{ NULL, 0, NULL, 0 },
};

/* Revoked, expired or active: times are ISO 8601 UTC, so they sort. */
static const char *
cmd_token_state(json_t *tok)
{
	const char	*exp = json_string_value(json_object_get(tok, "expires"));
	char		 now[32];
	time_t		 t = time(NULL);
	struct tm	 tm;

	if (!json_is_null(json_object_get(tok, "revoked")))
		return "revoked";
	gmtime_r(&t, &tm);
	strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (exp != NULL && strcmp(exp, now) <= 0)
		return "expired";
	return "active";
}

static void
cmd_token_print_list(json_t *list)
{
	static const char *const headers[] = { "ID", "USER", "NAME", "PREFIX",
	    "CREATED", "EXPIRES", "LAST-USED", "STATE" };
	static const char *const fields[] = { "id", "user", "name", "prefix",
	    "created", "expires", "last_used" };
	struct table	*t = table_new(headers, 8);
	size_t		 i;
	json_t		*tok;

	json_array_foreach(list, i, tok)
		table_add_json(t, tok, fields, cmd_token_state(tok));
	table_print(t);
	table_free(t);
}

static int
cmd_token_exec(struct ogctl *o, int argc, char **argv)
{
	const char	*sub, *label = NULL, *expires = NULL;
	char		*path = NULL;
	json_t		*doc = NULL, *body = NULL;
	int		 ch, rc;

	optind = 0;	/* 0 makes GNU getopt start afresh */
	while ((ch = ogctl_getopt(o, argc, argv, "", cmd_token_options)) != -1) {
		if (ch == 'n')
			label = optarg;
		else if (ch == 'e')
			expires = optarg;
		else
			return EXIT_USAGE;
	}
	if (optind >= argc)
		return ogctl_usage(&cmd_token_entry, "missing subcommand");
	sub = argv[optind++];
	if (strcmp(sub, "create") == 0) {
		uint64_t	ms;

		if (optind != argc - 1)
			return ogctl_usage(&cmd_token_entry, "create needs one "
			    "user name");
		body = json_pack("{s:s, s:s}", "user", argv[optind], "name",
		    label != NULL ? label : "");
		if (expires != NULL) {
			if (parse_duration_ms(expires, &ms) != 0 || ms < 1000) {
				json_decref(body);
				return ogctl_usage(&cmd_token_entry, "--expires "
				    "needs a duration such as 12h, 30d");
			}
			json_object_set_new(body, "expires_in",
			    json_integer((json_int_t)(ms / 1000)));
		}
		rc = ogctl_call(o, "POST", "/admin/v1/tokens", body, &doc);
		if (rc == EXIT_DONE) {
			const char	*token = json_string_value(json_object_get(doc,
					    "token"));

			if (token == NULL) {
				ogctl_error("the daemon sent no token");
				rc = EXIT_REFUSED;
				goto out;
			}
			/* The only time the token is shown: alone, for $(...). */
			if (o->json)
				ogctl_print_json(doc);
			else
				printf("%s\n", token);
			explicit_bzero((char *)token, strlen(token));
		}
		goto out;
	}
	if (label != NULL || expires != NULL)
		return ogctl_usage(&cmd_token_entry, "--name and --expires are "
		    "for create");
	if (strcmp(sub, "list") == 0) {
		if (optind < argc - 1)
			return ogctl_usage(&cmd_token_entry, "list takes at most a "
			    "user name");
		if (optind == argc - 1)
			path = xasprintf("/admin/v1/tokens?user=%s", argv[optind]);
		else
			path = xstrdup("/admin/v1/tokens");
		rc = ogctl_call(o, "GET", path, NULL, &doc);
		if (rc == EXIT_DONE) {
			if (o->json)
				ogctl_print_json(doc);
			else
				cmd_token_print_list(doc);
		}
		goto out;
	}
	if (strcmp(sub, "revoke") == 0) {
		uint64_t	id;

		if (optind != argc - 1 ||
		    parse_uint(argv[optind], INT64_MAX, &id) != 0)
			return ogctl_usage(&cmd_token_entry, "revoke needs a token "
			    "ID (a number, from 'ogctl token list')");
		path = xasprintf("/admin/v1/tokens/%llu", (unsigned long long)id);
		rc = ogctl_call(o, "DELETE", path, NULL, &doc);
		if (rc == EXIT_DONE && o->json)
			ogctl_print_json(doc);
		goto out;
	}
	return ogctl_usage(&cmd_token_entry, "unknown subcommand %s", sub);
out:
	free(path);
	json_decref(body);
	json_decref(doc);
	return rc;
}
