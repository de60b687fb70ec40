/*
 * alias.c: [alias NAME] sections.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alias.h"
#include "auth.h"
#include "config.h"
#include "models.h"
#include "server.h"
#include "xmalloc.h"

int
alias_check(const struct config *cfg, char **err)
{
	const char	*why;

	for (size_t i = 0; i < cfg->naliases; i++) {
		const struct config_alias	*a = &cfg->aliases[i];

		if (!models_name_valid(a->name, &why)) {
			*err = xasprintf("%s:%d: [alias %s]: not a model "
			    "name: %s", cfg->path, a->line, a->name, why);
			return -1;
		}
		if (!models_name_valid(a->model, &why)) {
			*err = xasprintf("%s:%d: [alias %s]: model %s is "
			    "not a model name: %s", cfg->path, a->line, a->name,
			    a->model, why);
			return -1;
		}
	}
	return 0;
}

/* Do two spellings name one model, as Ollama normalises names? */
static int
alias_same(const char *a, const char *b)
{
	char	*na = auth_model_normalise(a), *nb = auth_model_normalise(b);
	int	 same = strcmp(na, nb) == 0;

	free(na);
	free(nb);
	return same;
}

const struct config_alias *
alias_find(const char *model)
{
	const struct config	*cfg = server_cfg;

	for (size_t i = 0; model != NULL && i < cfg->naliases; i++) {
		if (alias_same(cfg->aliases[i].name, model))
			return &cfg->aliases[i];
	}
	return NULL;
}

void
alias_list(json_t *list, json_t *seen, const char *key,
    int (*allowed)(void *, const char *), void *arg)
{
	const struct config	*cfg = server_cfg;

	for (size_t i = 0; i < cfg->naliases; i++) {
		const struct config_alias	*a = &cfg->aliases[i];
		char				*name = auth_model_normalise(a->name);
		char				*target = auth_model_normalise(a->model);
		json_t				*entry, *copy;

		entry = json_object_get(seen, target);
		if (entry == NULL)
			entry = json_object_get(seen, a->model);
		/* An alias hides a listed model of its name. */
		if (entry != NULL && json_object_get(seen, name) == NULL &&
		    (allowed(arg, name) || allowed(arg, target))) {
			copy = json_deep_copy(entry);
			json_object_set_new(copy, key, json_string(name));
			if (json_object_get(copy, "model") != NULL &&
			    strcmp(key, "name") == 0)
				json_object_set_new(copy, "model",
				    json_string(name));
			json_array_append_new(list, copy);
		}
		free(name);
		free(target);
	}
}
