/*
 * admin.h: the admin API, HTTP/1.1 and JSON under /admin/v1/ on the
 * Unix socket.
 *
 * Reads are answered from memory. Changes run as store jobs: the row
 * and its audit entry commit together on the store thread, and only
 * then is the in-memory table changed and the caller answered, so a
 * change that the caller sees has taken effect for every request that
 * follows, without a reload.
 */
#ifndef OG_ADMIN_H
#define OG_ADMIN_H

#include "http.h"

struct conn;
struct admin_job;

/*
 * Match a request on the admin socket, or on metrics_listen; as
 * router_match(), NULL with *status 404 or 405 (and *allow).
 */
const struct route	*admin_match(enum http_method, const char *, size_t,
			    int *status, unsigned *allow, int metrics_only);
/* Serve the request the connection has read (c->req, c->body). */
void			 admin_start(struct conn *);
/* The connection is gone; the job must not answer it. */
void			 admin_client_gone(struct admin_job *);
/* Store token last-used times changed since the last call. */
void			 admin_flush_last_used(void);

#endif
