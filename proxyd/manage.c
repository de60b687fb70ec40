/*
 * manage.c: model management across the fleet.
 *
 * A pull, push, create, copy, delete or blob upload is about the models
 * one server stores, so the gateway cannot pick a backend for it the
 * way it picks one for a generation. The client names the backend with
 * the X-Ogate-Backend header, or the request goes to every backend that
 * is not draining (down ones too: they fail, and the answer says so,
 * rather than the fleet silently diverging). With a single backend and
 * no header, proxy.c forwards the request as before.
 *
 * The same bytes go to each backend at once. A progress stream (pull,
 * push and create, unless "stream" is false) is relayed line by line as
 * the lines arrive, each object tagged with "backend", and ends with one
 * line of our own: {"status":"success"}, or {"error":...} naming the
 * backends that failed. Anything else is answered with one document
 * once every backend has answered: its "backends" object holds each
 * one's status and error. A delete succeeds if the model was deleted
 * somewhere; the backends that did not have it are listed in "absent".
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "backend.h"
#include "buf.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "manage.h"
#include "proxy.h"
#include "reply.h"
#include "router.h"
#include "server.h"
#include "upstream.h"
#include "utf8.h"
#include "xmalloc.h"

#define MANAGE_MAX		64	/* backends asked at once */
/* A progress line, or a whole answer, longer than this is an error. */
#define MANAGE_LINE_MAX		(64 * 1024)
/* How much of a backend's error is repeated to the client. */
#define MANAGE_ERROR_MAX	512

struct manage_part {
	struct upstream_xfer	 x;
	struct manage		*m;
	struct backend		*be;
	struct curl_slist	*hdrs;		/* may hold the backend's key */
	struct buf		 line;		/* a partial line, or the answer */
	long			 status;
	char			*error;		/* why it failed; NULL if not */
	unsigned		 done:1;
	unsigned		 paused:1;
};

struct manage {
	struct conn		*c;		/* NULL once the client left */
	struct buf		 body;		/* what each backend is sent */
	const char		*what;		/* "pull": for messages */
	enum http_method	 method;
	const char		*method_str;	/* c->req's: read at the start */
	unsigned		 stream:1;	/* relay the progress lines */
	unsigned		 head_sent:1;
	uint64_t		 bytes;		/* sent to the client */
	size_t			 n;
	size_t			 pending;
	struct manage_part	 parts[MANAGE_MAX];
};

static void	manage_done_cb(struct upstream_xfer *, CURLcode);
static void	manage_answer(struct manage *);
static void	manage_free(struct manage *);

/* Backends a request for the whole fleet goes to. */
static int
manage_eligible(const struct backend *b)
{
	/* Model management is Ollama's: OpenAI upstreams have none. */
	return !b->draining && !b->openai;
}

static void
manage_fail(struct manage_part *part, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * End s before its first byte that is not valid UTF-8: a message cut
 * to size may end inside a character, and a JSON string cannot hold
 * half of one.
 */
static void
manage_utf8_cut(char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 cp;
	size_t			 len;

	while (*p != '\0' && (len = utf8_decode(p, SIZE_MAX, &cp)) > 0)
		p += len;
	s[p - (const unsigned char *)s] = '\0';
}

/* Note why a backend failed; the first reason is the one kept. */
static void
manage_fail(struct manage_part *part, const char *fmt, ...)
{
	va_list	ap;
	char	msg[MANAGE_ERROR_MAX];

	if (part->error != NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	manage_utf8_cut(msg);
	part->error = xstrdup(msg);
}

/* Write obj as one line of the stream, in a chunk of its own; stolen. */
static void
manage_emit_json(struct manage *m, json_t *obj)
{
	struct conn	*c = m->c;
	char		*s = json_dumps(obj, JSON_COMPACT);
	size_t		 len;

	json_decref(obj);
	if (s == NULL) {
		log_warn("a progress line could not be written");
		return;
	}
	if (!m->head_sent) {
		m->head_sent = 1;
		c->status = 200;
		conn_printf(c, "HTTP/1.1 200 OK\r\n%sContent-Type: "
		    "application/x-ndjson\r\nTransfer-Encoding: chunked\r\n%s"
		    "\r\n", reply_date(), c->req.keep_alive ? "" :
		    "Connection: close\r\n");
	}
	len = strlen(s);
	conn_printf(c, "%zx\r\n", len + 1);
	conn_write(c, s, len);
	conn_write(c, "\n\r\n", 3);
	m->bytes += len + 1;
	free(s);
}

/*
 * One whole progress line from a backend: relayed with its name. A line
 * that is not a JSON object ends that backend's transfer; one that
 * reports an error is relayed, and is that backend's failure.
 */
static int
manage_line(struct manage_part *part, const char *p, size_t len)
{
	json_t		*o;
	const char	*err;

	while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' '))
		len--;
	if (len == 0)
		return 0;
	if ((o = json_loadb(p, len, 0, NULL)) == NULL || !json_is_object(o)) {
		json_decref(o);
		manage_fail(part, "%s answered a line that is not JSON",
		    part->be->name);
		return -1;
	}
	if ((err = json_string_value(json_object_get(o, "error"))) != NULL)
		manage_fail(part, "%.*s", MANAGE_ERROR_MAX - 1, err);
	json_object_set_new(o, "backend", json_string(part->be->name));
	manage_emit_json(part->m, o);
	return 0;
}

/* Split what arrived into lines; a partial one waits for the rest. */
static int
manage_lines(struct manage_part *part, const char *p, size_t len)
{
	const char	*nl;
	size_t		 span;

	while ((nl = memchr(p, '\n', len)) != NULL) {
		span = (size_t)(nl - p);
		if (buf_used(&part->line) > 0) {
			if (buf_used(&part->line) + span > MANAGE_LINE_MAX)
				goto long_line;
			buf_add(&part->line, p, span);
			if (manage_line(part, buf_ptr(&part->line),
			    buf_used(&part->line)) != 0)
				return -1;
			buf_reset(&part->line);
		} else if (span > MANAGE_LINE_MAX)
			goto long_line;
		else if (manage_line(part, p, span) != 0)
			return -1;
		p += span + 1;
		len -= span + 1;
	}
	if (buf_used(&part->line) + len > MANAGE_LINE_MAX)
		goto long_line;
	buf_add(&part->line, p, len);
	return 0;
long_line:
	manage_fail(part, "%s answered a line longer than %d bytes",
	    part->be->name, MANAGE_LINE_MAX);
	return -1;
}

static size_t
manage_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct manage_part	*part = arg;
	struct manage		*m = part->m;
	size_t			 len = size * n;

	if (m->c == NULL || len == 0)
		return 0;
	if (part->status == 0)
		curl_easy_getinfo(part->x.easy, CURLINFO_RESPONSE_CODE,
		    &part->status);
	/* An answer other than a stream is kept whole, for its error. */
	if (!m->stream || part->status != 200) {
		if (buf_used(&part->line) + len > MANAGE_LINE_MAX) {
			manage_fail(part, "%s answered more than %d bytes",
			    part->be->name, MANAGE_LINE_MAX);
			return 0;
		}
		buf_add(&part->line, p, len);
		return len;
	}
	if (conn_out_full(m->c)) {
		/* libcurl keeps these bytes and offers them again on resume. */
		part->paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	return manage_lines(part, p, len) == 0 ? len : 0;
}

static void
manage_part_start(struct manage *m, struct backend *be, const char *target)
{
	struct manage_part	*part = &m->parts[m->n++];
	CURL			*e;
	uint64_t		 t = server_cfg->upstream_timeout;

	part->m = m;
	part->be = be;
	backend_ref(be);
	backend_begin(be);
	buf_init(&part->line);
	e = part->x.easy = upstream_easy_to(be->url, target);
	/* An https backend's own trust anchors, as origin.c uses them. */
	if (be->ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, be->ca_file);
	part->x.on_done = manage_done_cb;
	part->x.arg = part;
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(t < 10000 ?
	    t : 10000));
	/*
	 * A pull takes as long as the download: no limit on the whole, but
	 * a backend that sends nothing for upstream_timeout has stalled.
	 */
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)(t < 1000 ? 1 :
	    t / 1000));
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, manage_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, part);
	if (m->method == HTTP_HEAD)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else {
		if (m->method != HTTP_POST)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
			    m->method_str);
		/* Every transfer reads the one copy, which outlives them. */
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)buf_used(&m->body));
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, buf_used(&m->body) ?
		    buf_ptr(&m->body) : "");
	}
	part->hdrs = proxy_headers(m->c, be);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, part->hdrs);
	m->pending++;
	upstream_start(&part->x);
}

/*
 * Start the transfers: to be if not NULL, else to every backend that
 * can take them. The body is taken from c. Returns -1 if there is none.
 */
static int
manage_run(struct conn *c, struct backend *be, const char *target,
    const char *what, int stream)
{
	struct manage	*m;
	struct backend	*b;

	m = xcalloc(1, sizeof *m);
	m->c = c;
	m->method = c->req.method;
	m->method_str = c->req.method_str;
	m->what = what;
	m->stream = stream;
	m->body = c->body;
	buf_init(&c->body);
	if (be != NULL)
		manage_part_start(m, be, target);
	for (b = backend_first(); be == NULL && b != NULL && m->n < MANAGE_MAX;
	    b = backend_next(b)) {
		if (manage_eligible(b))
			manage_part_start(m, b, target);
	}
	if (m->n == 0) {
		buf_free(&m->body);
		free(m);
		return -1;
	}
	free(c->rq.backend);
	c->rq.backend = xstrdup(m->n == 1 ? m->parts[0].be->name : "*");
	c->manage = m;
	return 0;
}

/* Does the body ask for the answer as a stream? Ollama's default is yes. */
static int
manage_wants_stream(const struct buf *body)
{
	json_t	*o, *s;
	int	 yes = 1;

	if ((o = json_loadb(buf_ptr(body), buf_used(body), 0, NULL)) == NULL)
		return 1;
	if ((s = json_object_get(o, "stream")) != NULL && json_is_false(s))
		yes = 0;
	json_decref(o);
	return yes;
}

int
manage_fanout(const struct conn *c)
{
	struct backend	*b;
	int		 n = 0;

	if (http_find_header(&c->req, MANAGE_HEADER) != NULL)
		return 0;
	for (b = backend_first(); b != NULL; b = backend_next(b))
		n += manage_eligible(b);
	return n >= 2;
}

int
manage_start(struct conn *c)
{
	const struct http_header	*h;
	struct backend			*be = NULL, *b;
	char				 msg[200], name[65];
	int				 n = 0, stream;

	h = http_find_header(&c->req, MANAGE_HEADER);
	if (h == NULL) {
		for (b = backend_first(); b != NULL; b = backend_next(b))
			n += manage_eligible(b);
		if (n < 2)
			return 0;
	} else if ((be = backend_find(h->value)) == NULL) {
		snprintf(name, sizeof name, "%s", h->value);
		manage_utf8_cut(name);
		snprintf(msg, sizeof msg, "no backend named '%s'", name);
		reply_error(c, 404, DIALECT_OLLAMA, msg, NULL);
		return 1;
	}
	/* A stream needs chunks, which an HTTP/1.0 client cannot read. */
	stream = (c->route->flags & ROUTE_PROGRESS) && c->req.minor >= 1 &&
	    manage_wants_stream(&c->body);
	if (manage_run(c, be, c->req.target, c->route->endpoint, stream) != 0)
		reply_error(c, 503, DIALECT_OLLAMA, "no backend available",
		    "Retry-After: 5\r\n");
	return 1;
}

int
manage_pull(struct conn *c, const char *model, const char *backend)
{
	struct backend	*be = NULL;
	json_t		*o;
	char		*s;

	if (backend != NULL && (be = backend_find(backend)) == NULL)
		return -1;
	o = json_pack("{s:s}", "model", model);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		fatal("out of memory writing a pull request");
	buf_reset(&c->body);
	buf_add(&c->body, s, strlen(s));
	free(s);
	/* The admin API's request is a POST; the pull is one too. */
	return manage_run(c, be, "/api/pull", "pull", c->req.minor >= 1);
}

static void
manage_done_cb(struct upstream_xfer *x, CURLcode rc)
{
	struct manage_part	*part = x->arg;
	struct manage		*m = part->m;
	enum backend_outcome	 o = BACKEND_OK;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &part->status);
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
		o = BACKEND_UNREACHABLE;
	else if ((rc != CURLE_OK && part->error == NULL) || part->status >= 500)
		o = BACKEND_FAILED;
	if (rc != CURLE_OK)
		manage_fail(part, "%s", curl_easy_strerror(rc));
	else if (m->stream && part->status == 200 && buf_used(&part->line) > 0)
		manage_lines(part, "\n", 1);	/* a last line without its end */
	if (rc == CURLE_OK && part->status >= 300) {
		json_t		*doc = json_loadb(buf_ptr(&part->line),
				    buf_used(&part->line), 0, NULL);
		const char	*err = json_string_value(json_object_get(doc,
				    "error"));

		if (err != NULL)
			manage_fail(part, "%.*s", MANAGE_ERROR_MAX - 1, err);
		else
			manage_fail(part, "answered %ld", part->status);
		json_decref(doc);
	}
	if (part->error != NULL)
		log_warn("backend %s: %s failed: %s", part->be->name, m->what,
		    part->error);
	backend_end(part->be, o);
	upstream_easy_release(x->easy);
	x->easy = NULL;
	part->done = 1;
	if (--m->pending > 0)
		return;
	if (m->c != NULL)
		manage_answer(m);
	manage_free(m);
}

/* The status a failed backend stands for in the answer. */
static long
manage_part_status(const struct manage_part *part)
{
	if (part->error == NULL)
		return part->status;
	if (part->status >= 400)
		return part->status;
	return 502;
}

/* {"a": {"status": 200}, "b": {"status": 404, "error": "..."}} */
static json_t *
manage_backends_json(const struct manage *m)
{
	json_t	*all = json_object(), *one;

	for (size_t i = 0; i < m->n; i++) {
		const struct manage_part	*part = &m->parts[i];

		one = json_pack("{s:I}", "status",
		    (json_int_t)manage_part_status(part));
		if (part->error != NULL)
			json_object_set_new(one, "error",
			    json_string(part->error));
		json_object_set_new(all, part->be->name, one);
	}
	return all;
}

/* "pull failed on b2: why; b3: why", from the backends that failed. */
static char *
manage_failures(const struct manage *m)
{
	struct buf	 b;
	const char	*sep = "";
	char		*s;

	buf_init(&b);
	buf_printf(&b, "%s failed on ", m->what);
	for (size_t i = 0; i < m->n; i++) {
		if (m->parts[i].error == NULL)
			continue;
		buf_printf(&b, "%s%s: %s", sep, m->parts[i].be->name,
		    m->parts[i].error);
		sep = "; ";
	}
	s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

/*
 * The one document: 200 (or the status every backend agreed on, as 201
 * for a blob) when all succeeded, else the worst status. A delete that
 * found the model somewhere has succeeded; with it nowhere, it is 404
 * as from Ollama.
 */
static void
manage_document(struct manage *m)
{
	struct conn	*c = m->c;
	json_t		*doc, *absent = NULL;
	long		 status = 0, worst = 0, deleted = 0;
	const char	*first404 = NULL;
	char		*text, *why;
	size_t		 i, failed = 0;

	for (i = 0; i < m->n; i++) {
		struct manage_part	*part = &m->parts[i];
		long			 s = manage_part_status(part);

		if (m->method == HTTP_DELETE && s == 404) {
			if (absent == NULL)
				absent = json_array();
			json_array_append_new(absent, json_string(
			    part->be->name));
			if (first404 == NULL)
				first404 = part->error;
			continue;
		}
		if (part->error != NULL) {
			failed++;
			if (s > worst)
				worst = s;
			continue;
		}
		deleted++;
		status = status == 0 || status == s ? s : 200;
	}
	if (failed > 0) {
		why = manage_failures(m);
		doc = json_pack("{s:s}", "error", why);
		free(why);
		status = worst;
	} else if (deleted == 0 && m->method == HTTP_DELETE) {
		doc = json_pack("{s:s}", "error", first404 != NULL ? first404 :
		    "model not found");
		status = 404;
	} else {
		doc = json_pack("{s:s}", "status", "success");
		if (status < 200 || status > 299)
			status = 200;
	}
	if (absent != NULL)
		json_object_set_new(doc, "absent", absent);
	json_object_set_new(doc, "backends", manage_backends_json(m));
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (text == NULL)
		text = xstrdup("{\"error\":\"internal error\"}");
	c->status = (int)status;
	conn_printf(c, "HTTP/1.1 %d %s\r\n%sContent-Type: application/json; "
	    "charset=utf-8\r\nContent-Length: %zu\r\n%s\r\n", c->status,
	    http_status_text(c->status), reply_date(), strlen(text),
	    c->req.keep_alive ? "" : "Connection: close\r\n");
	if (m->method != HTTP_HEAD) {
		conn_write(c, text, strlen(text));
		m->bytes += strlen(text);
	}
	free(text);
}

static void
manage_answer(struct manage *m)
{
	struct conn	*c = m->c;
	json_t		*last;
	size_t		 i;
	int		 failed = 0;
	char		*why;

	for (i = 0; i < m->n; i++)
		failed |= m->parts[i].error != NULL;
	if (!m->stream || !m->head_sent)
		/* Nothing was streamed: the answer can still say its status. */
		manage_document(m);
	else {
		if (failed) {
			why = manage_failures(m);
			last = json_pack("{s:s}", "error", why);
			free(why);
		} else
			last = json_pack("{s:s}", "status", "success");
		json_object_set_new(last, "backends", manage_backends_json(m));
		manage_emit_json(m, last);
		conn_write(c, "0\r\n\r\n", 5);
	}
	c->rq.bytes = m->bytes;
	c->manage = NULL;
	m->c = NULL;
	conn_response_done(c);
}

void
manage_client_drained(struct manage *m, int low)
{
	if (!low)
		return;
	for (size_t i = 0; i < m->n && m->c != NULL; i++) {
		struct manage_part	*part = &m->parts[i];

		if (part->paused && part->x.easy != NULL) {
			part->paused = 0;
			upstream_resume(&part->x);
		}
	}
}

void
manage_client_gone(struct manage *m)
{
	m->c = NULL;
	for (size_t i = 0; i < m->n; i++) {
		struct manage_part	*part = &m->parts[i];

		if (part->x.easy != NULL && part->x.running) {
			/* The connection closes, and Ollama stops pulling. */
			upstream_abort(&part->x);
			backend_end(part->be, BACKEND_OK);
			upstream_easy_release(part->x.easy);
			part->x.easy = NULL;
			m->pending--;
		}
	}
	if (m->pending == 0)
		manage_free(m);
}

static void
manage_free(struct manage *m)
{
	if (m->c != NULL)
		m->c->manage = NULL;
	for (size_t i = 0; i < m->n; i++) {
		struct manage_part	*part = &m->parts[i];

		upstream_headers_free(part->hdrs);
		buf_free(&part->line);
		free(part->error);
		backend_unref(part->be);
	}
	buf_free(&m->body);
	free(m);
}
