/*
 * backend.c: the registry of upstream servers.
 */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "config.h"
#include "log.h"
#include "xmalloc.h"

static TAILQ_HEAD(, backend)	backends = TAILQ_HEAD_INITIALIZER(backends);

static void
backend_set_key(struct backend *b, const char *key)
{
	xfree_secret(b->api_key);
	b->api_key = key != NULL ? xstrdup(key) : NULL;
}

void
backend_sync(const struct config *cfg)
{
	struct backend	*b, *next;

	TAILQ_FOREACH(b, &backends, entry)
		b->removed = 1;
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct config_backend	*cb = &cfg->backends[i];

		if ((b = backend_find(cb->name)) == NULL) {
			b = xcalloc(1, sizeof *b);
			b->name = xstrdup(cb->name);
			b->refs = 1;
			b->latency_ms = -1;
			TAILQ_INSERT_TAIL(&backends, b, entry);
			b->url_shown = config_url_shown(cb->url);
			log_info("backend %s: %s", cb->name, b->url_shown);
		} else if (strcmp(b->url, cb->url) != 0) {
			free(b->url_shown);
			b->url_shown = config_url_shown(cb->url);
			log_info("backend %s: now %s", cb->name, b->url_shown);
		}
		b->removed = 0;
		/*
		 * In-flight requests handed their URL to libcurl, which keeps
		 * its own copy, so the string can be replaced now.
		 */
		xfree_secret(b->url);
		b->url = xstrdup(cb->url);
		backend_set_key(b, cb->api_key);
		b->max_concurrent = cb->max_concurrent;
		b->weight = cb->weight ? cb->weight : 1;
	}
	for (b = TAILQ_FIRST(&backends); b != NULL; b = next) {
		next = TAILQ_NEXT(b, entry);
		if (b->removed) {
			log_info("backend %s: removed", b->name);
			TAILQ_REMOVE(&backends, b, entry);
			backend_unref(b);
		}
	}
}

void
backend_shutdown(void)
{
	struct backend	*b;

	while ((b = TAILQ_FIRST(&backends)) != NULL) {
		TAILQ_REMOVE(&backends, b, entry);
		b->removed = 1;
		backend_unref(b);
	}
}

/*
 * The least loaded backend relative to its weight wins; ties go to the
 * one listed first. Backends at their concurrency limit are skipped
 * (the queue of a later change waits for them instead).
 */
struct backend *
backend_pick(const char *model)
{
	struct backend	*b, *best = NULL;

	(void)model;
	TAILQ_FOREACH(b, &backends, entry) {
		if (b->draining)
			continue;
		if (b->max_concurrent != 0 && b->active >= b->max_concurrent)
			continue;
		if (best == NULL || b->active * best->weight <
		    best->active * b->weight)
			best = b;
	}
	return best;
}

struct backend *
backend_find(const char *name)
{
	struct backend	*b;

	TAILQ_FOREACH(b, &backends, entry) {
		if (strcmp(b->name, name) == 0)
			return b;
	}
	return NULL;
}

struct backend *
backend_first(void)
{
	return TAILQ_FIRST(&backends);
}

struct backend *
backend_next(struct backend *b)
{
	return TAILQ_NEXT(b, entry);
}

void
backend_ref(struct backend *b)
{
	b->refs++;
}

void
backend_unref(struct backend *b)
{
	if (--b->refs > 0)
		return;
	free(b->name);
	xfree_secret(b->url);
	free(b->url_shown);
	xfree_secret(b->api_key);
	json_decref(b->models);
	free(b);
}
