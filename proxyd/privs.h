/*
 * privs.h: dropping root after binding, and the descriptor limit.
 */
#ifndef OG_PRIVS_H
#define OG_PRIVS_H

#include <stdint.h>

struct config;

/* May this config run as the current user? -1 with *err if not. */
int	privs_check(const struct config *, char **err);
/* Become cfg->user, handing it the state directory; -1 (logged). */
int	privs_drop(const struct config *);
/* Raise RLIMIT_NOFILE to what max_connections needs, or warn. */
void	privs_raise_nofile(uint64_t max_connections);

#endif
