/*
 * server.h: the daemon's process-wide state: the configuration in
 * force, counters, and the hooks that tie start, reload and shutdown
 * together (server.c).
 */
#ifndef OG_SERVER_H
#define OG_SERVER_H

#include <stdint.h>

struct config;

struct server_stats {
	uint64_t	requests;	/* request heads parsed */
	uint64_t	refused;	/* over max_connections or per address */
	uint64_t	timeouts;	/* 408s */
	uint64_t	upstream_errors;
	uint64_t	unauthorised;	/* 401s */
};

extern struct config		*server_cfg;
extern struct server_stats	 server_stats;

/* Load the config at a path, or the built-in defaults for NULL. */
struct config	*server_load(const char *, char **);
/* Start with a config (now the server's) read from a path; 0 or -1. */
int	 server_start(struct config *, const char *);
/* After loop_run: close everything, write what is owed, free. */
void	 server_stop(void);
/* Called when the last connection has closed during a drain. */
void	server_drained(void);
/* Reload the config; NULL, or why it failed (free it). */
char	*server_reload(void);
/* Seconds since start. */
long	 server_uptime(void);
/* The wall clock in Unix milliseconds. */
int64_t	 server_now_ms(void);

#endif
