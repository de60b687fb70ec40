/*
 * cmd-model.c: ogctl model pull: fetch a model onto one backend or onto
 * every backend, with each backend's progress as it goes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "ogctl.h"
#include "xmalloc.h"

/* Backends whose progress is followed; more share the last slot. */
#define CMD_MODEL_MAX	64

static int	cmd_model_exec(struct ogctl *, int, char **);

const struct cmd_entry cmd_model_entry = {
	.name = "model",
	.usage = "pull NAME [--backend B]",
	.exec = cmd_model_exec,
};

/* What was last printed for one backend. */
struct cmd_model_seen {
	char	*name;
	char	*status;
	int	 step;		/* tenths done; -1 without a size */
};

struct cmd_model_pull {
	struct ogctl		*o;
	struct cmd_model_seen	 seen[CMD_MODEL_MAX];
	size_t			 n;
	json_t			*last;		/* the line without a backend */
};

static struct cmd_model_seen *
cmd_model_find(struct cmd_model_pull *p, const char *name)
{
	size_t	i;

	for (i = 0; i < p->n; i++) {
		if (strcmp(p->seen[i].name, name) == 0)
			return &p->seen[i];
	}
	if (p->n == CMD_MODEL_MAX)
		return NULL;
	p->seen[p->n].name = xstrdup(name);
	p->seen[p->n].step = -1;
	return &p->seen[p->n++];
}

static void
cmd_model_say(const char *backend, const char *text)
{
	char	*b = escape_string(backend), *t = escape_string(text);

	printf("%s: %s\n", b, t);
	fflush(stdout);
	free(b);
	free(t);
}

/*
 * One progress line. A line is printed when its backend's status text
 * changes, or its download passes another tenth: a pull's thousands of
 * byte counts come out as a dozen lines.
 */
static void
cmd_model_line(json_t *line, void *arg)
{
	struct cmd_model_pull	*p = arg;
	struct cmd_model_seen	*s;
	const char		*be, *status, *err;
	json_t			*total, *done;
	char			*text;
	int			 step = -1;

	if ((be = json_string_value(json_object_get(line, "backend"))) == NULL) {
		json_decref(p->last);
		p->last = json_incref(line);
		return;
	}
	if (p->o->json || (s = cmd_model_find(p, be)) == NULL)
		return;
	if ((err = json_string_value(json_object_get(line, "error"))) != NULL) {
		text = xasprintf("error: %s", err);
		cmd_model_say(be, text);
		free(text);
		return;
	}
	/* The summary says which backends succeeded. */
	if ((status = json_string_value(json_object_get(line, "status"))) ==
	    NULL || strcmp(status, "success") == 0)
		return;
	total = json_object_get(line, "total");
	done = json_object_get(line, "completed");
	if (json_integer_value(total) > 0 && json_is_integer(done))
		step = (int)(json_integer_value(done) * 10 /
		    json_integer_value(total));
	if (s->status != NULL && strcmp(s->status, status) == 0 &&
	    s->step == step)
		return;
	free(s->status);
	s->status = xstrdup(status);
	s->step = step;
	if (step >= 0) {
		text = xasprintf("%s %d%%", status, step * 10);
		cmd_model_say(be, text);
		free(text);
	} else
		cmd_model_say(be, status);
}

/* "b1: success" or "b2: failed: why", one line per backend. */
static void
cmd_model_summary(json_t *backends)
{
	const char	*name, *err;
	json_t		*r;
	char		*text;

	json_object_foreach(backends, name, r) {
		if ((err = json_string_value(json_object_get(r, "error"))) ==
		    NULL) {
			cmd_model_say(name, "success");
			continue;
		}
		text = xasprintf("failed: %s", err);
		cmd_model_say(name, text);
		free(text);
	}
}

static int
cmd_model_pull(struct ogctl *o, const char *model, const char *backend)
{
	struct cmd_model_pull	 p;
	json_t			*body, *doc = NULL, *last;
	const char		*err;
	int			 rc;

	memset(&p, 0, sizeof p);
	p.o = o;
	body = json_pack("{s:s}", "model", model);
	if (backend != NULL)
		json_object_set_new(body, "backend", json_string(backend));
	rc = ogctl_stream(o, "POST", "/admin/v1/models/pull", body,
	    cmd_model_line, &p, &doc);
	json_decref(body);
	/* Answered whole when nothing came to stream. */
	last = doc != NULL ? doc : p.last;
	if (rc == EXIT_DONE && last == NULL) {
		ogctl_error("the daemon's answer ended before the pull did");
		rc = EXIT_REFUSED;
	} else if (rc == EXIT_DONE) {
		if (o->json)
			ogctl_print_json(last);
		else
			cmd_model_summary(json_object_get(last, "backends"));
		if ((err = json_string_value(json_object_get(last, "error"))) !=
		    NULL) {
			ogctl_error("%s", err);
			rc = EXIT_REFUSED;
		}
	}
	json_decref(doc);
	json_decref(p.last);
	for (size_t i = 0; i < p.n; i++) {
		free(p.seen[i].name);
		free(p.seen[i].status);
	}
	return rc;
}

static int
cmd_model_exec(struct ogctl *o, int argc, char **argv)
{
	const char	*backend = NULL, *sub;
	int		 ch;

	optind = 0;
	while ((ch = ogctl_getopt(o, argc, argv, "b:", (const struct option[]){
	    { "backend", required_argument, NULL, 'b' },
	    { NULL, 0, NULL, 0 } })) != -1) {
		if (ch != 'b')
			return EXIT_USAGE;
		backend = optarg;
	}
	if (optind >= argc)
		return ogctl_usage(&cmd_model_entry, "missing subcommand");
	sub = argv[optind++];
	if (strcmp(sub, "pull") != 0)
		return ogctl_usage(&cmd_model_entry, "unknown subcommand %s",
		    sub);
	if (optind != argc - 1)
		return ogctl_usage(&cmd_model_entry, "pull needs one model "
		    "name");
	if (argv[optind][0] == '\0')
		return ogctl_usage(&cmd_model_entry, "the model name is empty");
	if (backend != NULL && backend[0] == '\0')
		return ogctl_usage(&cmd_model_entry, "the backend name is "
		    "empty");
	return cmd_model_pull(o, argv[optind], backend);
}
