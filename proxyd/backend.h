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

struct config;

struct backend {
	char			*name;
	char			*url;		/* without a trailing slash */
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
	TAILQ_ENTRY(backend)	 entry;
};

void		 backend_sync(const struct config *);
void		 backend_shutdown(void);
/* Choose a backend for a new request, or NULL if none can take it. */
struct backend	*backend_pick(const char *model);
struct backend	*backend_first(void);
struct backend	*backend_next(struct backend *);
void		 backend_ref(struct backend *);
void		 backend_unref(struct backend *);

#endif
