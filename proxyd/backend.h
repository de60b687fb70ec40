/*
 * backend.h: the registry of upstream servers.
 *
 * Backends are named in the config ([backend NAME]). The registry keeps
 * one object per name across reloads, so that live state (requests in
 * flight, failures, draining) survives a SIGHUP; a backend dropped from
 * the config is unlinked at once and freed when its last request ends.
 */
#ifndef OG_BACKEND_H
#define OG_BACKEND_H

#include <stdint.h>
#include <sys/queue.h>

#include <jansson.h>

struct config;
struct probe;

struct backend {
	char			*name;
	char			*url;		/* secret: may hold a password */
	char			*url_shown;	/* the password as *** */
	char			*api_key;	/* secret, may be NULL */
	uint64_t		 max_concurrent;
	uint64_t		 weight;
	int			 refs;		/* registry + requests */
	int			 removed;
	int			 draining;
	uint64_t		 active;
	uint64_t		 requests;
	uint64_t		 failures;
	int			 unreachable;	/* the last connect failed */
	/* What the last probe of /api/ps saw (probe.c). */
	int64_t			 latency_ms;	/* -1: not probed yet */
	uint64_t		 probed_at;	/* loop time; 0: never */
	json_t			*models;	/* loaded models; NULL: unknown */
	struct probe		*probe;		/* in flight, or NULL */
	TAILQ_ENTRY(backend)	 entry;
};

void		 backend_sync(const struct config *);
void		 backend_shutdown(void);
/* Choose a backend for a new request, or NULL if none can take it. */
struct backend	*backend_pick(const char *model);
struct backend	*backend_find(const char *name);
struct backend	*backend_first(void);
struct backend	*backend_next(struct backend *);
void		 backend_ref(struct backend *);
void		 backend_unref(struct backend *);

#endif
