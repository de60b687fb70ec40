/*
 * probe.c: probes of each backend's /api/ps (what is resident, and
 * whether it answers at all) and, when the last is a minute old, its
 * /api/tags (what it has), on demand and while requests come.
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "auth.h"
#include "backend.h"
#include "buf.h"
#include "log.h"
#include "loop.h"
#include "models.h"
#include "probe.h"
#include "fleet.h"
#include "upstream.h"
#include "xmalloc.h"

#define PROBE_MAX_BODY	(1024 * 1024)
/* A catalogue is read again after this long, or when found wrong. */
#define PROBE_TAGS_MAX_AGE_MS	(60 * 1000)
/* The most models of one backend the scheduler keeps names of. */
#define PROBE_CATALOG_MAX	4096

struct probe {
	struct upstream_xfer	 x;
	struct backend		*be;
	struct curl_slist	*hdrs;	/* may hold the backend's key */
	struct buf		 body;
	int			 tags;	/* the second stage: /api/tags */
	TAILQ_ENTRY(probe)	 entry;
};

struct probe_waiter {
	void				(*done)(void *);
	void				*arg;
	TAILQ_ENTRY(probe_waiter)	 entry;
};

static TAILQ_HEAD(, probe)		probes = TAILQ_HEAD_INITIALIZER(probes);
static TAILQ_HEAD(, probe_waiter)	probe_waiters =
    TAILQ_HEAD_INITIALIZER(probe_waiters);

static size_t
probe_write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct probe	*p = arg;

	if (buf_used(&p->body) + n > PROBE_MAX_BODY)
		return 0;	/* libcurl ends the transfer with an error */
	buf_add(&p->body, data, n);
	return n;
}

/* The loaded models from an /api/ps answer, in our own field names. */
static json_t *
probe_models(struct buf *body)
{
	json_t		*doc, *list, *m, *out;
	const char	*why;
	size_t		 i;

	doc = json_loadb(buf_ptr(body), buf_used(body), 0, NULL);
	list = json_object_get(doc, "models");
	if (!json_is_array(list)) {
		json_decref(doc);
		return NULL;
	}
	out = json_array();
	json_array_foreach(list, i, m) {
		json_t	*name = json_object_get(m, "name");
		char	*norm;

		if (!json_is_string(name))
			name = json_object_get(m, "model");
		if (!json_is_string(name))
			continue;
		/*
		 * A model loaded on a backend is one the fleet knows. A name
		 * no request could use is shown as it came, escaped by who
		 * shows it.
		 */
		if (models_name_valid(json_string_value(name), &why)) {
			norm = auth_model_normalise(json_string_value(name));
			models_note(norm);
		} else
			norm = xstrdup(json_string_value(name));
		json_array_append_new(out, json_pack("{s:s%, s:I, s:I, s:O?}",
		    "name", norm, strlen(norm),
		    "size_bytes", json_integer_value(json_object_get(m, "size")),
		    "vram_bytes", json_integer_value(json_object_get(m,
		    "size_vram")),
		    "expires_at", json_object_get(m, "expires_at")));
		free(norm);
	}
	json_decref(doc);
	return out;
}

/* The catalogue from an /api/tags answer: names, normalised. */
static void
probe_catalog(struct backend *b, struct buf *body)
{
	json_t		*doc, *list, *m, *name;
	const char	*why;
	char		**names;
	size_t		 i, n = 0;

	doc = json_loadb(buf_ptr(body), buf_used(body), 0, NULL);
	/* Ollama's /api/tags, or an OpenAI-style /v1/models. */
	if (!json_is_array(list = json_object_get(doc, "models")))
		list = json_object_get(doc, "data");
	if (!json_is_array(list)) {
		json_decref(doc);
		return;
	}
	names = xcalloc(json_array_size(list) + 1, sizeof *names);
	json_array_foreach(list, i, m) {
		name = json_object_get(m, "name");
		if (!json_is_string(name))
			name = json_object_get(m, "model");
		if (!json_is_string(name))
			name = json_object_get(m, "id");
		if (n == PROBE_CATALOG_MAX || !json_is_string(name) ||
		    !models_name_valid(json_string_value(name), &why))
			continue;
		names[n++] = auth_model_normalise(json_string_value(name));
	}
	json_decref(doc);
	backend_set_catalog(b, names, n);
}

static void
probe_free(struct probe *p)
{
	TAILQ_REMOVE(&probes, p, entry);
	if (p->x.easy != NULL)
		upstream_easy_release(p->x.easy);
	upstream_headers_free(p->hdrs);
	buf_free(&p->body);
	p->be->probe = NULL;
	backend_unref(p->be);
	free(p);
}

/* Answer everyone who was waiting, once nothing is in flight. */
static void
probe_wake(void)
{
	struct probe_waiter	*w;

	if (!TAILQ_EMPTY(&probes))
		return;
	while ((w = TAILQ_FIRST(&probe_waiters)) != NULL) {
		TAILQ_REMOVE(&probe_waiters, w, entry);
		w->done(w->arg);
		free(w);
	}
}

static void	probe_send(struct probe *, const char *);

static void
probe_done_cb(struct upstream_xfer *x, CURLcode rc)
{
	struct probe	*p = x->arg;
	struct backend	*b = p->be;
	curl_off_t	 us = 0;
	long		 code = 0;

	curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &us);
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	if (p->tags) {
		/* /api/tags, or an OpenAI upstream's one probe, /v1/models. */
		if (rc == CURLE_OK && code == 200)
			probe_catalog(b, &p->body);
		if (b->openai) {
			b->probed_at = loop_now();
			b->latency_ms = rc == CURLE_OK ? (int64_t)(us / 1000) : -1;
			backend_probed(b, upstream_outcome(rc, code));
		}
		probe_free(p);
		probe_wake();
		fleet_kick();
		return;
	}
	b->probed_at = loop_now();
	json_decref(b->models);
	b->models = NULL;
	if (rc == CURLE_OK) {
		b->latency_ms = (int64_t)(us / 1000);
		/* A backend without /api/ps is up, its models unknown. */
		if (code == 200)
			b->models = probe_models(&p->body);
		backend_probed(b, upstream_outcome(rc, code));
		/* An Ollama that answered: is its catalogue current? */
		if (code == 200 && (b->catalog_at == 0 ||
		    loop_now() - b->catalog_at >= PROBE_TAGS_MAX_AGE_MS)) {
			upstream_easy_release(p->x.easy);
			p->x.easy = NULL;
			buf_reset(&p->body);
			p->tags = 1;
			probe_send(p, "/api/tags");
			return;
		}
	} else {
		b->latency_ms = -1;
		if (!b->unreachable && b->open_until == 0)
			log_warn("backend %s: %s", b->name,
			    curl_easy_strerror(rc));
		backend_probed(b, upstream_outcome(rc, code));
	}
	probe_free(p);
	probe_wake();
	fleet_kick();
}

static void
probe_start(struct backend *b)
{
	struct probe	*p = xcalloc(1, sizeof *p);

	p->be = b;
	backend_ref(b);
	b->probe = p;
	buf_init(&p->body);
	TAILQ_INSERT_TAIL(&probes, p, entry);
	/* An OpenAI-compatible upstream says only what it serves. */
	if (b->openai) {
		p->tags = 1;
		probe_send(p, "/v1/models");
	} else
		probe_send(p, "/api/ps");
}

static void
probe_send(struct probe *p, const char *path)
{
	struct backend	*b = p->be;
	CURL		*e;
	char		*s;

	e = p->x.easy = upstream_easy_to(b->url, path);
	/* An https backend's own trust anchors, as origin.c uses them. */
	if (b->ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, b->ca_file);
	p->x.on_done = probe_done_cb;
	p->x.arg = p;
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)PROBE_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, probe_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
	if (p->hdrs == NULL) {
		p->hdrs = curl_slist_append(NULL, "User-Agent: ogproxyd-probe");
		if (b->api_key != NULL) {
			s = xasprintf("Authorization: Bearer %s", b->api_key);
			p->hdrs = curl_slist_append(p->hdrs, s);
			xfree_secret(s);
		}
		if (p->hdrs == NULL)
			fatal("out of memory building probe headers");
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->hdrs);
	upstream_start(&p->x);
}

void
probe_backend(struct backend *b)
{
	if (b->probe == NULL)
		probe_start(b);
}

int
probe_refresh(uint64_t max_age_ms, void (*done)(void *), void *arg)
{
	struct backend		*b;
	struct probe_waiter	*w;
	uint64_t		 now = loop_now();

	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		if (b->probe == NULL && (b->probed_at == 0 ||
		    now - b->probed_at > max_age_ms))
			probe_start(b);
	}
	if (TAILQ_EMPTY(&probes))
		return 1;
	if (done == NULL)
		return 0;
	w = xcalloc(1, sizeof *w);
	w->done = done;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&probe_waiters, w, entry);
	return 0;
}

int
probe_missing(void)
{
	struct backend	*b;

	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		if (b->probed_at == 0)
			return 1;
	}
	return 0;
}

void
probe_shutdown(void)
{
	struct probe	*p;

	while ((p = TAILQ_FIRST(&probes)) != NULL) {
		upstream_abort(&p->x);
		probe_free(p);
	}
	probe_wake();
}
