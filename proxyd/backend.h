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

#include "loop.h"

struct config;
struct origin;
struct probe;

struct backend {
	char			*name;
	char			*url;		/* secret: may hold a password */
	char			*url_shown;	/* the password as *** */
	char			*api_key;	/* secret, may be NULL */
	int			 openai;	/* type = openai: only /v1 routes */
	char			*globs;		/* models = GLOB,...; NULL: any */
	char			*ca_file;	/* https: its own trust anchors */
	struct origin		*origin;	/* its connections (origin.c) */
	uint64_t		 max_concurrent;
	uint64_t		 weight;
	int			 refs;		/* registry + requests */
	int			 removed;
	int			 draining;
	uint64_t		 active;
	uint64_t		 requests;
	uint64_t		 failures;
	int			 unreachable;	/* the last connect failed */
	/*
	 * Health (backend.c): failures in a row open the circuit, and the
	 * backend takes nothing while another can; a probe after the
	 * cooldown decides whether it closes again.
	 */
	unsigned		 fails;		/* in a row */
	uint64_t		 open_until;	/* loop time; 0: closed */
	uint64_t		 cooldown_ms;	/* of the last opening */
	struct loop_timer	 heal;		/* probes it once open */
	/* What the last probe of /api/ps saw (probe.c). */
	int64_t			 latency_ms;	/* -1: not probed yet */
	uint64_t		 probed_at;	/* loop time; 0: never */
	json_t			*models;	/* loaded models; NULL: unknown */
	struct probe		*probe;		/* in flight, or NULL */
	/* What the scheduler knows (fleet.c). */
	uint64_t		 slots;		/* in use */
	char			**catalog;	/* /api/tags, sorted; NULL: unknown */
	size_t			 ncatalog;
	uint64_t		 catalog_at;	/* loop time of the last listing */
	uint64_t		 load_ms;	/* learned; 0: not yet */
	char			*loading;	/* a model sent here to load */
	unsigned		 reprobe:1;	/* look at /api/ps again, soon */
	TAILQ_ENTRY(backend)	 entry;
};

/* What became of a transfer, for the backend's health. */
enum backend_outcome {
	BACKEND_OK,		/* it answered, below 500 */
	BACKEND_UNREACHABLE,	/* the connection was refused or failed */
	BACKEND_FAILED,		/* reset, timed out, or a 5xx */
};

void		 backend_sync(const struct config *);
void		 backend_shutdown(void);
/* A request goes to the backend, and comes back with an outcome. */
void		 backend_begin(struct backend *);
void		 backend_end(struct backend *, enum backend_outcome);
/* What a request's transfer, or a probe, found. */
void		 backend_note(struct backend *, enum backend_outcome);
void		 backend_probed(struct backend *, enum backend_outcome);
/* Is its circuit open: is it down? */
int		 backend_down(const struct backend *);
/*
 * What the backend holds, by normalised name: listed in its catalogue
 * (1 if the catalogue is unknown), resident (1 if residency is unknown,
 * or the model is being loaded there, or model is NULL).
 */
int		 backend_listed(const struct backend *, const char *model);
int		 backend_resident(const struct backend *, const char *model);
int		 backend_catalogued(const struct backend *);
/* Does its models = GLOB,... (if it has one) take the model? */
int		 backend_serves(const struct backend *, const char *model);
/* A catalogue (names, normalised), taken over; a model seen resident. */
void		 backend_set_catalog(struct backend *, char **, size_t);
void		 backend_note_resident(struct backend *, const char *model);
struct backend	*backend_find(const char *name);
struct backend	*backend_first(void);
struct backend	*backend_next(struct backend *);
void		 backend_ref(struct backend *);
void		 backend_unref(struct backend *);

#endif
