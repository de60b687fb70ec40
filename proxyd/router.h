/*
 * router.h: the table of endpoints the gateway serves.
 *
 * A path is matched exactly, after one strict check instead of a
 * normalisation: a path with "//", "." or ".." segments, or a percent
 * escape outside a model or digest parameter, matches nothing. So no
 * spelling of a path can reach a route other than the one it names.
 */
#ifndef OG_ROUTER_H
#define OG_ROUTER_H

#include <stddef.h>

#include "http.h"

enum dialect {
	DIALECT_OLLAMA,		/* {"error":"..."} */
	DIALECT_OPENAI,		/* {"error":{"message":..,"type":..}} */
	DIALECT_ANTHROPIC,	/* {"type":"error","error":{"type":..,..}} */
};

/* Route flags. */
#define ROUTE_PUBLIC	0x01	/* no token needed (health checks) */
#define ROUTE_MANAGE	0x02	/* model management: admin role */
#define ROUTE_INFER	0x04	/* inference: rate-limited and accounted */
#define ROUTE_PARAM	0x08	/* path is a prefix plus one parameter */
#define ROUTE_LIST	0x10	/* lists models: filtered per user */
#define ROUTE_MODEL	0x20	/* names a model: allowlists apply */
#define ROUTE_GENERATES	0x40	/* generates tokens: takes generation bounds */
#define ROUTE_USAGE_ASK	0x80	/* SSE usage is asked for for the client */
#define ROUTE_HOLDERS	0x100	/* a fleet list says where each model is */
#define ROUTE_PROGRESS	0x200	/* answers with a stream of progress lines */
#define ROUTE_ADMIN	0x400	/* the server's own ollama.com account: admin */
#define ROUTE_FORM	0x800	/* the model is a multipart/form-data field */
#define ROUTE_OWN_LIMIT	0x1000	/* the client must set the output bound */
#define ROUTE_UPLOAD	0x2000	/* a raw body that streams to one backend */
#define ROUTE_CACHE	0x4000	/* the response cache may answer (cache.h) */
#define ROUTE_EVENTS	0x8000	/* numbered SSE events: errors are events */

struct route {
	const char	*path;
	unsigned	 methods;	/* 1 << enum http_method */
	enum dialect	 dialect;
	unsigned	 flags;
	const char	*endpoint;	/* short name for logs and usage */
	unsigned	 body;		/* BODY_F(): fields its backend reads */
};

/*
 * Find the route for a request. Returns NULL and sets *status to 404
 * (no such path) or 405 (path exists, method does not; *allow then
 * names the methods).
 */
const struct route	*router_match(enum http_method, const char *path,
			    size_t len, int *status, unsigned *allow);
/*
 * The same over another table of n entries, stride bytes apart, the
 * first at table: a table whose entries hold a struct route as their
 * first member and more after it (the admin API's holds its handlers)
 * is matched by the same code, as bsearch(3) walks any array.
 */
const struct route	*router_match_table(const struct route *table,
			    size_t n, size_t stride, enum http_method,
			    const char *path, size_t len, int *status,
			    unsigned *allow);
/* The dialect for errors on a path that matched no route. */
enum dialect		 router_dialect(const char *path, size_t len);
/* Format an Allow header value from a method mask. */
void			 router_allow_string(unsigned, char *, size_t);

#endif
