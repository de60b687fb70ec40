/*
 * listener.h: the sockets the gateway accepts clients on.
 */
#ifndef OG_LISTENER_H
#define OG_LISTENER_H

struct config;

/* Open every listen address of the config; -1 (logged) on failure. */
int	listener_open_all(const struct config *);
int	listener_open_admin(const char *path, const char *group);
void	listener_close_all(void);
/* Is ADDR:PORT on the loopback interface only? */
int	listener_is_loopback(const char *);
/* Warn about listen addresses a reload cannot change. */
void	listener_check_reload(const struct config *);

#endif
