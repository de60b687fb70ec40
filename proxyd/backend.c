/*
 * backend.c: the registry of upstream servers, and their health.
 *
 * A backend's health is a circuit breaker. A refused connection opens
 * it at once; resets, timeouts and 5xx answers open it when they come
 * BACKEND_FAILS_OPEN times in a row. While open, the backend takes no
 * request while another can; when the cooldown ends a probe is the
 * trial, rather than a client's request: success closes the circuit,
 * failure opens it again for twice as long, up to
 * BACKEND_COOLDOWN_MAX_MS. Probes start a little after the cooldown, at
 * a random moment, so that gateways sharing a backend do not all knock
 * at once.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "alert.h"
#include "auth.h"
#include "backend.h"
#include "config.h"
#include "log.h"
#include "origin.h"
#include "probe.h"
#include "fleet.h"
#include "xmalloc.h"

#define BACKEND_FAILS_OPEN		3
#define BACKEND_COOLDOWN_MIN_MS		1000
#define BACKEND_COOLDOWN_MAX_MS		(60 * 1000)

static TAILQ_HEAD(, backend)	backends = TAILQ_HEAD_INITIALIZER(backends);

static void	backend_heal(struct loop_timer *);

/* Two optional strings, the same? */
static int
backend_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL &&
	    strcmp(a, b) == 0);
}

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
		int				 changed;

		if ((b = backend_find(cb->name)) == NULL) {
			b = xcalloc(1, sizeof *b);
			b->name = xstrdup(cb->name);
			b->refs = 1;
			b->latency_ms = -1;
			loop_timer_init(&b->heal, backend_heal, b);
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
		 * Connections made with the old url, key or trust anchors are
		 * not reused; those in flight finish, then close.
		 */
		/* A ca_file is read again: a certificate may have rotated. */
		changed = b->url == NULL || strcmp(b->url, cb->url) != 0 ||
		    !backend_same(b->api_key, cb->api_key) ||
		    cb->ca_file != NULL || b->ca_file != NULL;
		xfree_secret(b->url);
		b->url = xstrdup(cb->url);
		backend_set_key(b, cb->api_key);
		free(b->ca_file);
		b->ca_file = cb->ca_file != NULL ? xstrdup(cb->ca_file) : NULL;
		if (changed)
			origin_forget(b);
		/* Its trust anchors are read now, not on the request path. */
		origin_prepare(b);
		b->openai = cb->type != NULL && strcmp(cb->type, "openai") == 0;
		free(b->globs);
		b->globs = cb->models != NULL ? xstrdup(cb->models) : NULL;
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

int
backend_down(const struct backend *b)
{
	return b->open_until != 0;
}

static int
backend_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
backend_catalogued(const struct backend *b)
{
	return b->catalog != NULL;
}

int
backend_serves(const struct backend *b, const char *model)
{
	char	*copy, *tok, *save = NULL;
	int	 yes = 0;

	if (b->globs == NULL || model == NULL)
		return 1;
	copy = xstrdup(b->globs);
	for (tok = strtok_r(copy, ", ", &save); tok != NULL && !yes;
	    tok = strtok_r(NULL, ", ", &save))
		yes = auth_model_match(tok, model);
	free(copy);
	return yes;
}

int
backend_listed(const struct backend *b, const char *model)
{
	if (b->catalog == NULL || model == NULL)
		return 1;
	return bsearch(&model, b->catalog, b->ncatalog, sizeof *b->catalog,
	    backend_name_cmp) != NULL;
}

int
backend_resident(const struct backend *b, const char *model)
{
	json_t		*m;
	const char	*name;
	size_t		 i;

	if (b == NULL)
		return 0;
	if (model == NULL || b->models == NULL)
		return 1;
	if (b->loading != NULL && strcmp(b->loading, model) == 0)
		return 1;
	json_array_foreach(b->models, i, m) {
		name = json_string_value(json_object_get(m, "name"));
		if (name != NULL && strcmp(name, model) == 0)
			return 1;
	}
	return 0;
}

static void
backend_free_catalog(struct backend *b)
{
	for (size_t i = 0; i < b->ncatalog; i++)
		free(b->catalog[i]);
	free(b->catalog);
	b->catalog = NULL;
	b->ncatalog = 0;
}

void
backend_set_catalog(struct backend *b, char **names, size_t n)
{
	backend_free_catalog(b);
	qsort(names, n, sizeof *names, backend_name_cmp);
	b->catalog = names;
	b->ncatalog = n;
	b->catalog_at = loop_now();
}

/*
 * A request for the model was served: it is resident now, until a probe
 * says otherwise. A catalogue that did not list it is out of date.
 */
void
backend_note_resident(struct backend *b, const char *model)
{
	if (model == NULL)
		return;
	if (!backend_listed(b, model))
		b->catalog_at = 0;
	if (b->models != NULL && !backend_resident(b, model))
		json_array_append_new(b->models, json_pack("{s:s}", "name",
		    model));
}

void
backend_begin(struct backend *b)
{
	b->active++;
	b->requests++;
}

void
backend_end(struct backend *b, enum backend_outcome o)
{
	b->active--;
	if (o != BACKEND_OK)
		b->failures++;
	backend_note(b, o);
}

/* When the cooldown is over, probe: a quarter of it at random later. */
static void
backend_arm_heal(struct backend *b)
{
	uint32_t	r = 0;

	RAND_bytes((unsigned char *)&r, sizeof r);
	loop_timer_arm(&b->heal, b->cooldown_ms + r % (b->cooldown_ms / 4 + 1));
}

static void
backend_heal(struct loop_timer *t)
{
	struct backend	*b = t->arg;

	if (b->open_until != 0 && !b->removed)
		probe_backend(b);
}

void
backend_probed(struct backend *b, enum backend_outcome o)
{
	/*
	 * A probe that answers before the cooldown is over (one that ogctl
	 * asked for) does not close the circuit: a backend that hangs on
	 * generation can still answer /api/ps at once. The probe after the
	 * cooldown decides.
	 */
	if (o == BACKEND_OK && b->open_until != 0 &&
	    loop_now() < b->open_until)
		return;
	backend_note(b, o);
}

void
backend_note(struct backend *b, enum backend_outcome o)
{
	const char	*why;

	if (o == BACKEND_OK) {
		b->unreachable = 0;
		b->fails = 0;
		if (b->open_until != 0) {
			log_info("backend %s: up again", b->name);
			alert_backend(b->name, 1);
			b->open_until = 0;
			b->cooldown_ms = 0;
			loop_timer_stop(&b->heal);
			fleet_kick();
		}
		return;
	}
	if (o == BACKEND_UNREACHABLE)
		b->unreachable = 1;
	b->fails++;
	if (o != BACKEND_UNREACHABLE && b->fails < BACKEND_FAILS_OPEN &&
	    b->open_until == 0)
		return;
	/* Open, or open again for longer: the trial failed. */
	why = o == BACKEND_UNREACHABLE ? "unreachable" : "failing";
	b->cooldown_ms = b->cooldown_ms == 0 ? BACKEND_COOLDOWN_MIN_MS :
	    b->cooldown_ms * 2 > BACKEND_COOLDOWN_MAX_MS ?
	    BACKEND_COOLDOWN_MAX_MS : b->cooldown_ms * 2;
	if (b->open_until == 0) {
		log_warn("backend %s: %s; down, tried again in %llu ms",
		    b->name, why, (unsigned long long)b->cooldown_ms);
		alert_backend(b->name, 0);
	}
	b->open_until = loop_now() + b->cooldown_ms;
	backend_arm_heal(b);
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
	loop_timer_stop(&b->heal);
	origin_forget(b);
	free(b->name);
	free(b->ca_file);
	xfree_secret(b->url);
	free(b->url_shown);
	xfree_secret(b->api_key);
	json_decref(b->models);
	free(b->globs);
	backend_free_catalog(b);
	free(b->loading);
	free(b);
}
