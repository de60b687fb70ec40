/*
 * listing.c: the fleet's model lists.
 *
 * GET /api/tags, /api/ps and /v1/models are asked of every backend at
 * once, and answered with the union: each model once, in the order the
 * backends are listed, filtered by the user's allowlist. An entry of
 * /api/ps also says which backends hold the model ("backends"). A
 * backend that fails or does not answer in time is left out; when none
 * answers, the client gets 502.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alias.h"
#include "auth.h"
#include "backend.h"
#include "buf.h"
#include "conn.h"
#include "listing.h"
#include "log.h"
#include "proxy.h"
#include "reply.h"
#include "router.h"
#include "upstream.h"
#include "xmalloc.h"

/* A list bigger than this is not a model list. */
#define LISTING_BODY_MAX	(16 * 1024 * 1024)
/* A backend that takes longer to list its models is left out. */
#define LISTING_TIMEOUT_MS	5000
#define LISTING_MAX		64	/* backends asked at once */

struct listing_part {
	struct upstream_xfer	 x;
	struct listing		*l;
	struct backend		*be;
	struct curl_slist	*hdrs;		/* may hold the backend's key */
	struct buf		 body;
	long			 status;
	int			 ok;		/* a 200 that ended well */
};

struct listing {
	struct conn		*c;		/* NULL once the client left */
	struct listing_part	 parts[LISTING_MAX];
	size_t			 n;
	size_t			 pending;
};

static void	listing_done_cb(struct upstream_xfer *, CURLcode);
static void	listing_answer(struct listing *);
static void	listing_free(struct listing *);

static size_t
listing_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct listing_part	*part = arg;
	size_t			 len = size * n;

	if (buf_used(&part->body) + len > LISTING_BODY_MAX)
		return 0;
	buf_add(&part->body, p, len);
	return len;
}

static void
listing_part_start(struct listing *l, struct backend *be,
    const char *target)
{
	struct listing_part	*part = &l->parts[l->n++];
	CURL			*e;

	part->l = l;
	part->be = be;
	backend_ref(be);
	backend_begin(be);
	buf_init(&part->body);
	e = part->x.easy = upstream_easy_to(be->url, target);
	/* An https backend's own trust anchors, as origin.c uses them. */
	if (be->ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, be->ca_file);
	part->x.on_done = listing_done_cb;
	part->x.arg = part;
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)LISTING_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, listing_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, part);
	part->hdrs = proxy_headers(l->c, be);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, part->hdrs);
	l->pending++;
	upstream_start(&part->x);
}

int
listing_start(struct conn *c)
{
	struct listing	*l;
	struct backend	*b;
	int		 any_up = 0;

	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		if (!b->draining && !backend_down(b))
			any_up = 1;
	}
	l = xcalloc(1, sizeof *l);
	l->c = c;
	/* Backends that are down are asked only when none is up. */
	for (b = backend_first(); b != NULL && l->n < LISTING_MAX;
	    b = backend_next(b)) {
		if (b->draining || (any_up && backend_down(b)))
			continue;
		/* Ollama's own lists are asked only of Ollama backends. */
		if (b->openai && c->route->dialect == DIALECT_OLLAMA)
			continue;
		listing_part_start(l, b, c->req.target);
	}
	if (l->n == 0) {
		free(l);
		return -1;
	}
	c->listing = l;
	return 0;
}

static void
listing_done_cb(struct upstream_xfer *x, CURLcode rc)
{
	struct listing_part	*part = x->arg;
	struct listing		*l = part->l;
	enum backend_outcome	 o;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &part->status);
	o = upstream_outcome(rc, part->status);
	part->ok = rc == CURLE_OK && part->status == 200;
	if (!part->ok)
		log_warn("backend %s: listing %s", part->be->name,
		    rc != CURLE_OK ? curl_easy_strerror(rc) : "not answered "
		    "with 200");
	backend_end(part->be, o);
	upstream_easy_release(x->easy);
	x->easy = NULL;
	if (--l->pending > 0)
		return;
	if (l->c != NULL)
		listing_answer(l);
	listing_free(l);
}

static int
listing_allowed(const struct auth_user *u, const char *name)
{
	return u == NULL || u->nglobs == 0 || auth_model_allowed(u, name);
}

static int
listing_allowed_cb(void *arg, const char *name)
{
	return listing_allowed(arg, name);
}

static void
listing_answer(struct listing *l)
{
	struct conn		*c = l->c;
	struct auth_user	*u = c->rq.user;
	json_t			*out = NULL, *list = NULL, *doc, *arr, *m;
	json_t			*held;
	json_t			*seen = json_object();	/* name: entry */
	const char		*field = "models", *key = "name", *name;
	char			*text;
	size_t			 i, j;
	int			 ps = (c->route->flags & ROUTE_HOLDERS) != 0;

	for (i = 0; i < l->n; i++) {
		struct listing_part	*part = &l->parts[i];

		if (!part->ok || (doc = json_loadb(buf_ptr(&part->body),
		    buf_used(&part->body), 0, NULL)) == NULL)
			continue;
		if (json_object_get(doc, "data") != NULL) {
			field = "data";
			key = "id";
		}
		if (!json_is_array(arr = json_object_get(doc, field))) {
			json_decref(doc);
			continue;
		}
		if (out == NULL) {
			/* The first answer's other fields are kept. */
			out = json_deep_copy(doc);
			list = json_array();
			json_object_set_new(out, field, list);
		}
		json_array_foreach(arr, j, m) {
			json_t	*entry;

			if ((name = json_string_value(json_object_get(m,
			    key))) == NULL || !backend_serves(part->be, name))
				continue;
			/*
			 * By name: a long list costs its length, no more. A
			 * model the user may not use is still seen, since an
			 * alias they may use can stand for it.
			 */
			if ((entry = json_object_get(seen, name)) == NULL) {
				entry = json_deep_copy(m);
				if (ps)
					json_object_set_new(entry, "backends",
					    json_array());
				if (listing_allowed(u, name))
					json_array_append(list, entry);
				json_object_set_new(seen, name, entry);
			}
			if (ps && json_is_array(held = json_object_get(entry,
			    "backends")))
				json_array_append_new(held,
				    json_string(part->be->name));
		}
		json_decref(doc);
	}
	if (out != NULL && !ps)
		alias_list(list, seen, key, listing_allowed_cb, u);
	json_decref(seen);
	if (out == NULL) {
		reply_error(c, 502, c->route->dialect, "no backend listed its "
		    "models", NULL);
		return;
	}
	text = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	if (text == NULL) {
		reply_error(c, 502, c->route->dialect, "the model list could "
		    "not be written", NULL);
		return;
	}
	c->status = 200;
	conn_printf(c, "HTTP/1.1 200 OK\r\n"
	    "Content-Type: application/json; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n%s\r\n", strlen(text),
	    c->close_after || !c->req.keep_alive ? "Connection: close\r\n" :
	    "");
	conn_write(c, text, strlen(text));
	c->rq.bytes = strlen(text);
	free(text);
	c->listing = NULL;
	conn_response_done(c);
}

void
listing_client_gone(struct listing *l)
{
	l->c = NULL;
	for (size_t i = 0; i < l->n; i++) {
		struct listing_part	*part = &l->parts[i];

		if (part->x.easy != NULL && part->x.running) {
			upstream_abort(&part->x);
			backend_end(part->be, BACKEND_OK);
			upstream_easy_release(part->x.easy);
			part->x.easy = NULL;
			l->pending--;
		}
	}
	if (l->pending == 0)
		listing_free(l);
}

static void
listing_free(struct listing *l)
{
	if (l->c != NULL)
		l->c->listing = NULL;
	for (size_t i = 0; i < l->n; i++) {
		struct listing_part	*part = &l->parts[i];

		upstream_headers_free(part->hdrs);
		buf_free(&part->body);
		backend_unref(part->be);
	}
	free(l);
}
