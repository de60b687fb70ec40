/*
 * alias.h: [alias NAME] sections: a model name that stands for another.
 *
 * A request for NAME is a request for its target from the moment its
 * body is read: allowlists (which may name either), the scheduler and
 * the usage row all see the target. Model lists show NAME beside it.
 */
#ifndef OG_ALIAS_H
#define OG_ALIAS_H

#include <stddef.h>

struct config;
struct config_alias;
struct json_t;

/* Are the names and targets model names? 0, or -1 with *err set. */
int	alias_check(const struct config *, char **err);
/* The alias a model name is (in any of its spellings), or NULL. */
const struct config_alias *alias_find(const char *model);
/*
 * Add the aliases to a model list: list holds entries whose key field
 * names the model; seen maps names to entries. An alias is shown when
 * its target is listed and allowed() says the user may use either.
 */
void	alias_list(struct json_t *list, struct json_t *seen, const char *key,
	    int (*allowed)(void *, const char *), void *arg);

#endif
