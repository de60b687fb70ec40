/*
 * cache.h: the response cache.
 *
 * A [model] section may let the gateway keep answers of its model in
 * memory ("cache =" in ogproxyd.conf(5)): those of the embedding routes,
 * and with "deterministic" also generations that are reproducible. A
 * request that matches a kept answer is answered from memory, without
 * a backend, a queue or a slot; one that does not goes to a backend as
 * usual, and its answer is captured as it passes to the client (up to
 * the largest entry the cache takes) and kept once it is complete.
 *
 * An entry is one JSON document, the answer as its route gives it when
 * not streaming, with the token counts its usage row had. A stream is
 * merged into that form when it is captured; a request that asks for a
 * stream has the document rendered as one, in its route's format
 * (NDJSON for /api, SSE for /v1) with the final statistics or usage. So
 * one entry serves both kinds of request and "stream" does not split
 * it, and the merge is where an answer the cache could not give back
 * faithfully (log probabilities, tool calls sent in pieces) is found
 * and not kept.
 *
 * The key is a SHA-256 digest of the route, the user (with scope =
 * user), the bound on output and the body as it goes upstream with its
 * members in a canonical order and the members that do not change the
 * answer (stream, stream_options, keep_alive) left out. Everything runs
 * on the loop thread; the whole table and every entry are bounded by
 * [cache] size.
 */
#ifndef OG_CACHE_H
#define OG_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "router.h"

struct buf;
struct config;
struct cache_entry;
struct cache_fill;

/* What the cache made of a request; X-Cache-Status says it. */
enum cache_status {
	CACHE_NONE,		/* a route the cache never answers: no header */
	CACHE_BYPASS,		/* the model's cache is off, or not reproducible */
	CACHE_MISS,
	CACHE_HIT,
};

/* How an answer came from the backend. */
enum cache_format {
	CACHE_JSON,		/* one document */
	CACHE_NDJSON,		/* Ollama's stream */
	CACHE_SSE,		/* the /v1 stream */
};

#define CACHE_KEY_LEN	32

/* A request as the cache sees it. */
struct cache_ask {
	const struct route	*route;
	const char		*model;		/* normalised, after aliasing */
	int64_t			 user_id;
	const char		*end_user;	/* a front end's user, or NULL */
	const char		*body;		/* as it will go upstream */
	size_t			 len;
	int64_t			 limit;		/* bound on output; -1: none */
};

/* Take the [cache] settings, at start and after every reload. */
void		 cache_configure(const struct config *);
void		 cache_free_all(void);
/*
 * May the cache answer a request on this route for this model, with a
 * body this long? CACHE_NONE (the route is not the cache's),
 * CACHE_BYPASS, or CACHE_MISS: look it up.
 */
enum cache_status cache_check(const struct route *, const char *model,
		    size_t len);
/*
 * Look a request up (after cache_check). A hit sets *hit (valid until
 * the loop next runs a handler); a miss fills key for cache_fill_new().
 */
enum cache_status cache_lookup(const struct cache_ask *,
		    unsigned char key[CACHE_KEY_LEN],
		    struct cache_entry **hit);
/* A hit was served (not refused by the user's limits): count and keep it. */
void		 cache_served(struct cache_entry *);
const char	*cache_status_name(enum cache_status);
/*
 * An entry's answer for a request: the document, or for a generation
 * asked as a stream, the stream of the route's dialect. *ctype is its
 * Content-Type.
 */
void		 cache_render(const struct cache_entry *, enum dialect,
		    int stream, int include_usage, struct buf *,
		    const char **ctype);
void		 cache_entry_tokens(const struct cache_entry *,
		    int64_t *prompt, int64_t *completion);

/* The capture of an answer on a miss. */
struct cache_fill *cache_fill_new(const unsigned char key[CACHE_KEY_LEN],
		    const struct route *, const char *model);
/* Body bytes as the client gets them; past the bound, capture stops. */
void		 cache_fill_add(struct cache_fill *, const char *, size_t);
/*
 * The answer was complete, a 200 whose usage is known: keep it, if it
 * is one the cache can give back.
 */
void		 cache_fill_commit(struct cache_fill *, enum cache_format,
		    int64_t prompt, int64_t completion);
void		 cache_fill_free(struct cache_fill *);

/* The admin API: figures, and dropping entries (of a model, or all). */
json_t		*cache_stats_json(void);
size_t		 cache_clear(const char *model, uint64_t *bytes);
void		 cache_metrics(struct buf *);

#endif
