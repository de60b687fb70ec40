/*
 * proxy.c: forwarding one request to a backend and streaming the answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "alias.h"
#include "auth.h"
#include "backend.h"
#include "body.h"
#include "buf.h"
#include "cache.h"
#include "config.h"
#include "conn.h"
#include "enduser.h"
#include "listing.h"
#include "log.h"
#include "loop.h"
#include "manage.h"
#include "models.h"
#include "origin.h"
#include "proxy.h"
#include "reply.h"
#include "router.h"
#include "quota.h"
#include "fleet.h"
#include "form.h"
#include "server.h"
#include "tally.h"
#include "upstream.h"
#include "usage.h"
#include "xmalloc.h"

enum proxy_stream {
	STREAM_NONE,
	STREAM_NDJSON,		/* application/x-ndjson: Ollama's native API */
	STREAM_SSE,		/* text/event-stream: the /v1 API */
};

struct proxy_req {
	struct origin_xfer	 x;
	struct conn		*c;		/* NULL once the client is gone */
	struct backend		*be;
	const struct route	*route;
	struct buf		 body;		/* the request body */
	struct buf		 head;		/* the response fields to relay */
	struct loop_timer	 timer;		/* upstream_timeout */
	uint64_t		 id;
	uint64_t		 started;
	uint64_t		 last_activity;
	uint64_t		 bytes;		/* response body bytes */
	int			 status;
	enum proxy_stream	 stream;
	char			 tail[2];	/* last body bytes sent */
	unsigned		 head_done:1;	/* upstream head complete */
	unsigned		 head_sent:1;	/* our head queued to client */
	unsigned		 has_length:1;	/* upstream sent Content-Length */
	unsigned		 chunked:1;	/* we frame chunks to the client */
	unsigned		 no_body:1;
	unsigned		 paused:1;
	struct tally		 tally;		/* token counts as they pass */
	int64_t			 ttft_ms;	/* -1 until the first byte */
	unsigned		 hide_usage:1;	/* we asked for usage, not them */
	struct buf		 event;		/* the SSE event being filtered */
	const char		*refused;	/* why the response was refused */
	enum backend_outcome	 outcome;	/* for the backend's health */
	unsigned		 attempts;	/* backends tried before this */
	unsigned		 busy:1;	/* a 503 to try elsewhere */
	struct fleet_ticket	 tk;		/* its place in the fleet */
	struct origin_source	 src;		/* an upload's body */
	uint64_t		 uploaded;	/* of it, sent on */
	TAILQ_ENTRY(proxy_req)	 entry;		/* the live view */
	enum cache_status	 cache;		/* X-Cache-Status, if any */
	struct cache_fill	*fill;		/* the answer, kept on a miss */
};

static TAILQ_HEAD(, proxy_req)	proxy_live = TAILQ_HEAD_INITIALIZER(proxy_live);

/* The longest keep_alive of a user who is not an admin, by default. */
#define PROXY_KEEP_ALIVE_MAX	(30 * 60 * 1000)
/* An SSE event bigger than this is not one we filter. */
#define PROXY_EVENT_MAX	(1024 * 1024)

static uint64_t	proxy_next_id;
static unsigned	proxy_n;

static int	proxy_on_head(struct origin_xfer *,
		    const struct http_response *);
static int	proxy_on_body(struct origin_xfer *, const char *, size_t);
static void	proxy_done_cb(struct origin_xfer *, enum origin_error);
static void	proxy_timer_cb(struct loop_timer *);
static void	proxy_judge_head(struct proxy_req *,
		    const struct http_response *);
static void	proxy_send_head(struct proxy_req *);
static void	proxy_fail(struct proxy_req *, int timed_out, enum origin_error);
static void	proxy_finish(struct proxy_req *);
static void	proxy_free(struct proxy_req *);
static void	proxy_dispatch(struct proxy_req *);
static int	proxy_retry(struct proxy_req *, enum origin_error);
static void	proxy_go(struct fleet_ticket *, struct backend *);
static void	proxy_expire(struct fleet_ticket *, int, const char *);

unsigned
proxy_active(void)
{
	return proxy_n - fleet_queued();
}

/*
 * Hop-by-hop headers describe one connection and must not cross the
 * gateway; the client's credentials are for us, never for the backend.
 * Forwarding headers say who the client is, and a backend believes
 * them only because the gateway vouches for them, so none that a client
 * wrote goes through: the gateway sets X-Forwarded-For,
 * X-Forwarded-Proto and X-Real-IP itself.
 */
static int
proxy_skip_request_header(const struct http_header *h,
    const struct http_header *conn)
{
	static const char *const skip[] = {
		"host", "content-length", "transfer-encoding", "connection",
		"keep-alive", "proxy-connection", "te", "trailer", "upgrade",
		"expect", "authorization", "proxy-authorization", "x-api-key",
		"forwarded", "via", "x-real-ip", "x-client-ip", "client-ip",
		"true-client-ip", "cf-connecting-ip", "x-cluster-client-ip",
		"x-original-forwarded-for", MANAGE_HEADER,
	};

	/* Every request passes here for each field: the first letter first. */
	for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++) {
		if (h->name[0] != '\0' && (h->name[0] | 0x20) == skip[i][0] &&
		    strcasecmp(h->name, skip[i]) == 0)
			return 1;
	}
	/* X-Forwarded-For, -Proto, -Host, -Port, -Prefix, -Server, ... */
	if (strncasecmp(h->name, "x-forwarded-", 12) == 0)
		return 1;
	/* Headers the client names in Connection are hop-by-hop too. */
	if (conn != NULL) {
		const char	*v = conn->value;
		size_t		 n = h->name_len;

		while (*v != '\0') {
			size_t	len;

			while (*v == ' ' || *v == ',' || *v == '\t')
				v++;
			len = strcspn(v, ", \t");
			if (len == n && strncasecmp(v, h->name, n) == 0)
				return 1;
			v += len;
		}
	}
	return 0;
}

static int
proxy_skip_response_header(const char *name, size_t len)
{
	static const char *const skip[] = {
		"connection", "keep-alive", "proxy-connection", "transfer-encoding",
		"te", "trailer", "upgrade",
	};

	for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++) {
		if (strlen(skip[i]) == len && strncasecmp(name, skip[i], len) == 0)
			return 1;
	}
	return 0;
}


/* One field line for the backend. */
static void
proxy_field(struct buf *b, const char *name, size_t nlen, const char *value,
    size_t vlen)
{
	buf_add(b, name, nlen);
	buf_add(b, ": ", 2);
	buf_add(b, value, vlen);
	buf_add(b, "\r\n", 2);
}

/*
 * The fields that cross to a backend, one "Name: value\r\n" each: the
 * client's, less those proxy_skip_request_header() keeps back, and the
 * gateway's own forwarding fields. Both clients build on them.
 */
static void
proxy_forward_fields(const struct conn *c, struct buf *b)
{
	const struct http_header	*conn;

	conn = http_find_header(&c->req, "connection");
	for (int i = 0; i < c->req.nheaders; i++) {
		const struct http_header	*h = &c->req.headers[i];

		if (!proxy_skip_request_header(h, conn))
			proxy_field(b, h->name, h->name_len, h->value,
			    h->value_len);
	}
	proxy_field(b, "X-Forwarded-For", 15, c->ip, strlen(c->ip));
	proxy_field(b, "X-Real-IP", 9, c->ip, strlen(c->ip));
	if (c->tls)
		proxy_field(b, "X-Forwarded-Proto", 17, "https", 5);
	else
		proxy_field(b, "X-Forwarded-Proto", 17, "http", 4);
}

/* The same fields as a libcurl header list, for what goes through it. */
struct curl_slist *
proxy_headers(const struct conn *c, const struct backend *be)
{
	struct curl_slist	*hdrs = NULL;
	struct buf		 fields, line;
	const char		*p, *end;
	int			 have_ctype = 0, have_accept = 0;

	buf_init(&fields);
	buf_init(&line);
	proxy_forward_fields(c, &fields);
	p = buf_ptr(&fields);
	end = p + buf_used(&fields);
	while (p < end) {
		const char	*eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		size_t		 nlen = strcspn(p, ":");

		if (nlen == 12 && strncasecmp(p, "content-type", 12) == 0)
			have_ctype = 1;
		if (nlen == 6 && strncasecmp(p, "accept", 6) == 0)
			have_accept = 1;
		buf_reset(&line);
		/* "Name;" is how libcurl is told to send an empty value. */
		if (eol == p + nlen + 2) {
			buf_add(&line, p, nlen);
			buf_add(&line, ";", 1);
		} else
			buf_add(&line, p, (size_t)(eol - p));
		hdrs = curl_slist_append(hdrs, buf_cstr(&line));
		p = eol + 2;
	}
	buf_free(&fields);
	/* Remove what libcurl would add on its own. */
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (!have_ctype)
		hdrs = curl_slist_append(hdrs, "Content-Type:");
	if (!have_accept)
		hdrs = curl_slist_append(hdrs, "Accept:");
	if (be->api_key != NULL) {
		buf_reset(&line);
		buf_printf(&line, "Authorization: Bearer %s", be->api_key);
		hdrs = curl_slist_append(hdrs, buf_cstr(&line));
		explicit_bzero(line.data, line.cap);
	}
	buf_free(&line);
	if (hdrs == NULL)
		fatal("out of memory building request headers");
	return hdrs;
}

/*
 * The request head for the backend, assembled once: the request line,
 * Host and the backend's credential (origin.c), the client's fields
 * that may cross, the gateway's forwarding fields, and the body's
 * length, which is the body the gateway read and checked.
 */
static void
proxy_request_head(struct proxy_req *pr, struct conn *c)
{
	struct buf	*b = &pr->x.req;
	char		 len[32];
	int		 n;

	origin_head(&pr->x, c->req.method_str, c->req.target);
	proxy_forward_fields(c, b);
	if (c->upload) {
		n = snprintf(len, sizeof len, "%lld",
		    (long long)c->req.content_length);
		proxy_field(b, "Content-Length", 14, len, (size_t)n);
	} else if (c->req.method == HTTP_POST || buf_used(&pr->body) > 0) {
		n = snprintf(len, sizeof len, "%zu", buf_used(&pr->body));
		proxy_field(b, "Content-Length", 14, len, (size_t)n);
	}
	buf_add(b, "\r\n", 2);
}

/*
 * The model named in the path of /v1/models/{model}, with ':' perhaps
 * escaped as %3A, in out. Returns 0, or the status it answered with.
 */
static int
proxy_param_model(struct conn *c, char *out, size_t size)
{
	const struct route	*r = c->route;
	size_t			 plen = strlen(r->path), n = 0;
	const char		*why;

	for (size_t i = plen; i < c->req.path_len && n < size - 1; i++) {
		if (c->req.path[i] == '%' && i + 2 < c->req.path_len) {
			out[n++] = ':';
			i += 2;
		} else
			out[n++] = c->req.path[i];
	}
	out[n] = '\0';
	if (n == size - 1 || !models_name_valid(out, &why)) {
		reply_error(c, 400, r->dialect, "invalid model name", NULL);
		return 400;
	}
	return 0;
}

/* Is the model allowed to the user? Answers 403 if not. */
static int
proxy_allowed(struct conn *c, const char *model)
{
	char	msg[300];

	if (c->rq.user == NULL || c->rq.user->nglobs == 0 || model == NULL ||
	    auth_model_allowed(c->rq.user, model))
		return 0;
	snprintf(msg, sizeof msg, "model '%s' is not allowed", model);
	reply_error(c, 403, c->route->dialect, msg, NULL);
	return 403;
}

/*
 * Read the body the one way the backend will (body.c), and check the
 * model it names: a valid name, allowed to the user. Returns 0, or the
 * status it answered with.
 */
static int
proxy_read_body(struct conn *c, struct body *b)
{
	const struct route		*r = c->route;
	const struct http_header	*ce;
	const struct config_alias	*alias;
	const char			*why;
	char				 err[200], msg[260];
	int				 allowed = 0;

	if ((ce = http_find_header(&c->req, "content-encoding")) != NULL &&
	    strcasecmp(ce->value, "identity") != 0) {
		reply_error(c, 415, r->dialect, "compressed request bodies are "
		    "not accepted", NULL);
		return 415;
	}
	if (body_read(b, buf_ptr(&c->body), buf_used(&c->body), r->body, err,
	    sizeof err) != 0) {
		reply_error(c, 400, r->dialect, err, NULL);
		return 400;
	}
	if (b->model != NULL && !models_name_valid(b->model, &why)) {
		/* The name itself is not repeated: it may be anything. */
		snprintf(msg, sizeof msg, "invalid model name: %s", why);
		body_free(b);
		reply_error(c, 400, r->dialect, msg, NULL);
		return 400;
	}
	/*
	 * An alias is its target from here on; the user may use it if
	 * their allowlist names either.
	 */
	if ((alias = alias_find(b->model)) != NULL) {
		char	*asked = auth_model_normalise(b->model);

		body_set_model(b, alias->model);
		if (c->rq.user != NULL && c->rq.user->nglobs > 0 &&
		    auth_model_allowed(c->rq.user, asked))
			allowed = 1;
		free(asked);
	}
	if (b->model != NULL && c->rq.active && c->rq.model == NULL)
		c->rq.model = auth_model_normalise(b->model);
	if (!allowed && proxy_allowed(c, b->model) != 0) {
		body_free(b);
		return 403;
	}
	return 0;
}

/*
 * A multipart form names its model in a field (form.c); the body goes
 * upstream as it came. A query string is refused, since Go's FormValue
 * would read a model there before the form's. Returns 0, or the status
 * it answered with.
 */
static int
proxy_form_model(struct conn *c, char *asked, size_t size)
{
	const struct http_header	*ct;
	const char			*why;
	char				 err[200];

	ct = http_find_header(&c->req, "content-type");
	if (memchr(c->req.target, '?', strlen(c->req.target)) != NULL) {
		reply_error(c, 400, c->route->dialect, "a query string is not "
		    "accepted here", NULL);
		return 400;
	}
	if (form_model(ct != NULL ? ct->value : NULL, buf_ptr(&c->body),
	    buf_used(&c->body), asked, size, err, sizeof err) != 0) {
		reply_error(c, 400, c->route->dialect, err, NULL);
		return 400;
	}
	if (!models_name_valid(asked, &why)) {
		snprintf(err, sizeof err, "invalid model name: %s", why);
		reply_error(c, 400, c->route->dialect, err, NULL);
		return 400;
	}
	if (c->rq.active && c->rq.model == NULL)
		c->rq.model = auth_model_normalise(asked);
	return proxy_allowed(c, asked) != 0 ? 403 : 0;
}

/* The field that bounds a route's output, or -1 if it has none. */
static int
proxy_limit_field(const struct route *r)
{
	if (!(r->flags & ROUTE_GENERATES))
		return -1;
	if (r->body & BODY_F(BODY_NUM_PREDICT))
		return BODY_NUM_PREDICT;
	if (r->body & BODY_F(BODY_MAX_TOKENS))
		return BODY_MAX_TOKENS;
	if (r->body & BODY_F(BODY_MAX_OUTPUT_TOKENS))
		return BODY_MAX_OUTPUT_TOKENS;
	return -1;
}

/*
 * What a prompt may cost before the backend says: a token for every
 * three bytes of text in the body's strings, rounded up. English runs
 * at about four bytes a token and most other scripts at about three, so
 * this errs on the high side, which is the side a reservation must err
 * on.
 */
static int64_t
proxy_prompt_estimate(uint64_t text_bytes)
{
	return (int64_t)((text_bytes + 2) / 3);
}

/* What the [model PATTERN] sections that match a model say of it. */
struct proxy_policy {
	uint64_t	max_ctx;	/* 0: no bound */
	uint64_t	max_predict;
	uint64_t	num_ctx;	/* fixed; 0: the request's */
	uint64_t	max_keep_alive;	/* ms; 0: no bound */
};

/* Of two bounds where 0 is none, the one that holds. */
static uint64_t
proxy_least(uint64_t a, uint64_t b)
{
	return a == 0 || (b != 0 && b < a) ? b : a;
}

/*
 * Where several sections match, the smallest figure of each kind holds.
 * A non-admin's keep_alive is bounded by 30 minutes unless a matching
 * section says otherwise.
 */
static void
proxy_policy(const char *model, struct proxy_policy *pol)
{
	const struct config	*cfg = server_cfg;
	uint64_t		 keep = CONFIG_UNSET;

	memset(pol, 0, sizeof *pol);
	for (size_t i = 0; i < cfg->nmodels && model != NULL; i++) {
		const struct config_model	*m = &cfg->models[i];

		if (!auth_model_match(m->pattern, model))
			continue;
		pol->max_ctx = proxy_least(pol->max_ctx, m->max_num_ctx);
		pol->max_predict = proxy_least(pol->max_predict,
		    m->max_num_predict);
		pol->num_ctx = proxy_least(pol->num_ctx, m->num_ctx);
		if (m->max_keep_alive != CONFIG_UNSET)
			keep = keep == CONFIG_UNSET ? m->max_keep_alive :
			    proxy_least(keep, m->max_keep_alive);
	}
	pol->max_keep_alive = keep == CONFIG_UNSET ? PROXY_KEEP_ALIVE_MAX :
	    keep;
}

/*
 * [model PATTERN] sections: requests are clamped, not refused. A fixed
 * num_ctx replaces the request's, so that no request forces a reload; a
 * request that sets no num_ctx (or one out of bounds) gets max_num_ctx,
 * since Ollama's default context may be larger than the operator
 * allows. A user who is not an admin cannot unload a model for everyone
 * or pin it in memory: a keep_alive of 0 or below becomes null (the
 * backend's default), and a longer one than max_keep_alive is cut to
 * it. Returns the bound on output, 0 if none.
 */
static int64_t
proxy_clamp(struct conn *c, struct body *b)
{
	const struct route	*r = c->route;
	struct proxy_policy	 pol;
	int64_t			 ctx, keep;

	proxy_policy(c->rq.model, &pol);
	if (r->body & BODY_F(BODY_NUM_CTX)) {
		ctx = body_int(b, BODY_NUM_CTX, 0);
		if (pol.num_ctx != 0 && ctx != (int64_t)pol.num_ctx)
			body_set_int(b, BODY_NUM_CTX, (int64_t)pol.num_ctx);
		else if (pol.num_ctx == 0 && pol.max_ctx != 0 &&
		    (ctx <= 0 || (uint64_t)ctx > pol.max_ctx))
			body_set_int(b, BODY_NUM_CTX, (int64_t)pol.max_ctx);
	}
	if ((r->body & BODY_F(BODY_KEEP_ALIVE)) && c->rq.user != NULL &&
	    c->rq.user->role != ROLE_ADMIN &&
	    b->f[BODY_KEEP_ALIVE].type == BODY_DURATION) {
		keep = body_int(b, BODY_KEEP_ALIVE, 0);
		if (keep <= 0)
			body_set_null(b, BODY_KEEP_ALIVE);
		else if (pol.max_keep_alive != 0 &&
		    (uint64_t)keep / 1000000 >= pol.max_keep_alive)
			body_set_int(b, BODY_KEEP_ALIVE,
			    (int64_t)pol.max_keep_alive * 1000000);
	}
	return (int64_t)pol.max_predict;
}

/* The user's limits refuse the request: 429 with when to try again. */
static int
proxy_quota_refuse(struct conn *c, const struct quota_verdict *v)
{
	struct buf	hdrs;

	buf_init(&hdrs);
	buf_printf(&hdrs, "Retry-After: %ld\r\n", v->retry_after);
	quota_headers(c->rq.user, c->rq.eu, &hdrs);
	reply_error(c, v->status, c->route->dialect, v->message,
	    buf_cstr(&hdrs));
	buf_free(&hdrs);
	return v->status;
}

/*
 * Bound what the request may generate, and set aside what it may cost
 * against the user's token quotas. Each route reads the field its
 * backend reads (options.num_predict, max_tokens, max_output_tokens),
 * where a value below 1 means no limit. A request with no limit, or one
 * above the [model] bound or above what is left of the user's budget
 * once the prompt is paid for, is given that bound: so requests running
 * at once can never spend more than the budget between them. Returns 0,
 * or the status it answered with.
 */
static int
proxy_admit(struct conn *c, struct body *b)
{
	const struct route	*r = c->route;
	int			 lf = proxy_limit_field(r);
	int64_t			 limit = -1, bound = 0, left, prompt = 0;
	int64_t			 reserve = 0;
	struct quota_verdict	 v;

	if (r->body != 0) {
		prompt = proxy_prompt_estimate(b->text_bytes);
		bound = proxy_clamp(c, b);
	}
	c->rq.prompt_estimate = prompt;
	if (lf >= 0) {
		limit = body_int(b, lf, -1);
		if (limit < 1)
			limit = -1;
		if (bound > 0 && (limit < 0 || limit > bound))
			limit = bound;
	}
	left = c->rq.user != NULL && (r->flags & ROUTE_INFER) ?
	    quota_left(c->rq.user, c->rq.eu) : INT64_MAX;
	if (left != INT64_MAX) {
		/*
		 * A token quota applies: nothing may run past it. With
		 * nothing left once the prompt is paid for, the reservation
		 * of one token more than is left has the request refused.
		 */
		if (lf >= 0 && (limit < 0 || limit > left - prompt))
			limit = left - prompt < 1 ? 1 : left - prompt;
		reserve = prompt + (limit > 0 ? limit : 0);
		/*
		 * A transcription's output has no bound, neither the
		 * client's nor one the gateway could set: it sets aside all
		 * that is left, as a generation without a bound does.
		 */
		if (r->flags & ROUTE_FORM)
			reserve = left;
	}
	/*
	 * Where the client must set the bound (Anthropic's max_tokens), a
	 * request without one stays without one, and the backend refuses
	 * it as the API says: only a bound that is there is lowered.
	 */
	if (lf >= 0 && (r->flags & ROUTE_OWN_LIMIT) && body_int(b, lf, -1) < 1)
		lf = -1;
	if (lf >= 0 && limit > 0 && limit != body_int(b, lf, -1)) {
		body_set_int(b, lf, limit);
		/* An OpenAI upstream reads the newer name too. */
		if (lf == BODY_MAX_TOKENS && body_int(b,
		    BODY_MAX_COMPLETION_TOKENS, -1) != -1)
			body_set_int(b, BODY_MAX_COMPLETION_TOKENS, limit);
	}
	if (c->rq.user == NULL || !(r->flags & ROUTE_INFER))
		return 0;
	quota_admit(c->rq.user, c->rq.eu, reserve, &v);
	if (v.status != 0)
		return proxy_quota_refuse(c, &v);
	c->rq.admitted = 1;
	c->rq.reserved = reserve;
	return 0;
}

/* Hand the request's figures to its connection for the usage row. */
static void
proxy_collect(struct proxy_req *pr, struct conn *c)
{
	const struct tally	*t = &pr->tally;

	free(c->rq.backend);
	c->rq.backend = pr->be != NULL ? xstrdup(pr->be->name) : NULL;
	c->rq.bytes = pr->bytes;
	c->rq.ttft_ms = pr->ttft_ms;
	c->rq.prompt_tokens = t->prompt_tokens > 0 ? t->prompt_tokens : 0;
	c->rq.completion_tokens = t->completion_tokens > 0 ?
	    t->completion_tokens : 0;
	/*
	 * A stream that ended without its final figures is charged for the
	 * output that did pass: one chunk is one token.
	 */
	if (t->completion_tokens < 0 && !t->done && t->chunks > 0) {
		c->rq.completion_tokens = (int64_t)t->chunks;
		c->rq.flags |= USAGE_PARTIAL;
	}
	/*
	 * The backend took the prompt but never said what it cost (the
	 * client or an administrator stopped it first): charge the
	 * estimate the reservation was made with.
	 */
	if (t->prompt_tokens < 0 && !t->done && pr->head_done &&
	    (c->rq.flags & USAGE_CANCELLED) &&
	    pr->status < 300 && (pr->route->flags & ROUTE_INFER) &&
	    c->rq.prompt_estimate > 0) {
		c->rq.prompt_tokens = c->rq.prompt_estimate;
		c->rq.flags |= USAGE_ESTIMATED;
	}
}

/* Which of Ollama's not-found wordings the route's handler uses. */
static enum fleet_notfound
proxy_notfound(const struct route *r)
{
	return (r->flags & ROUTE_INFER) && !(r->flags & ROUTE_GENERATES) ?
	    NOTFOUND_PULL : NOTFOUND_QUOTED;
}

/* The request a scheduler ticket belongs to. */
static struct proxy_req *
proxy_of(struct fleet_ticket *tk)
{
	return (struct proxy_req *)((char *)tk - offsetof(struct proxy_req, tk));
}

/* The scheduler could not place the request: say why, in its dialect. */
static void
proxy_refuse(struct conn *c, const struct fleet_refusal *why)
{
	char	hdr[64];

	hdr[0] = '\0';
	if (why->retry_after > 0)
		snprintf(hdr, sizeof hdr, "Retry-After: %ld\r\n",
		    why->retry_after);
	reply_error(c, why->status, c->route->dialect, why->message,
	    hdr[0] != '\0' ? hdr : NULL);
}

/* The request leaves without a backend: its row, then the answer. */
static void
proxy_refused(struct proxy_req *pr, const struct fleet_refusal *why)
{
	struct conn	*c = pr->c;

	c->pr = NULL;
	proxy_collect(pr, c);
	proxy_free(pr);
	proxy_refuse(c, why);
}

/*
 * The backend an upload names with MANAGE_HEADER in *be, NULL if none.
 * Returns -1 if it names one that does not exist: that is answered.
 */
static int
proxy_named_backend(struct conn *c, struct backend **be)
{
	const struct http_header	*h;

	*be = NULL;
	if ((h = http_find_header(&c->req, MANAGE_HEADER)) == NULL)
		return 0;
	if ((*be = backend_find(h->value)) == NULL) {
		reply_error(c, 404, DIALECT_OLLAMA, "no backend by the name "
		    MANAGE_HEADER " gives", NULL);
		return -1;
	}
	return 0;
}

/*
 * The bound on output the [model] sections leave a request (-1: none),
 * as proxy_admit() reckons it before the user's quota has its say.
 */
static int64_t
proxy_cache_limit(struct conn *c, struct body *b)
{
	struct proxy_policy	pol;
	int			lf = proxy_limit_field(c->route);
	int64_t			limit;

	if (lf < 0)
		return -1;
	proxy_policy(c->rq.model, &pol);
	if ((limit = body_int(b, lf, -1)) < 1)
		limit = -1;
	if (pol.max_predict > 0 && (limit < 0 ||
	    (uint64_t)limit > pol.max_predict))
		limit = (int64_t)pol.max_predict;
	return limit;
}

/*
 * A hit, answered without a backend, a queue or a slot. Rate and
 * concurrency limits hold as for any request, and a spent budget is
 * spent; but nothing is reserved, and the row's tokens, flagged
 * cached, are not charged (request_end).
 */
static void
proxy_cache_reply(struct conn *c, struct body *b, struct cache_entry *e)
{
	const struct route	*r = c->route;
	struct quota_verdict	 v;
	struct buf		 out, hdrs;
	const char		*ctype;
	int			 stream;

	quota_admit(c->rq.user, c->rq.eu, 0, &v);
	if (v.status != 0) {
		proxy_quota_refuse(c, &v);
		return;
	}
	c->rq.admitted = 1;
	cache_served(e);
	stream = (r->flags & ROUTE_GENERATES) && body_bool(b, BODY_STREAM,
	    r->dialect == DIALECT_OLLAMA);
	buf_init(&out);
	cache_render(e, r->dialect, stream, body_bool(b, BODY_INCLUDE_USAGE, 0),
	    &out, &ctype);
	cache_entry_tokens(e, &c->rq.prompt_tokens, &c->rq.completion_tokens);
	c->rq.flags |= USAGE_CACHED;
	c->rq.ttft_ms = 0;
	c->rq.bytes = buf_used(&out);
	c->status = 200;
	/* The whole answer is at hand: a length frames even a stream. */
	buf_init(&hdrs);
	quota_headers(c->rq.user, c->rq.eu, &hdrs);
	conn_printf(c, "HTTP/1.1 200 OK\r\n%sContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nX-Cache-Status: HIT\r\n%s%s\r\n",
	    reply_date(), ctype, buf_used(&out), buf_cstr(&hdrs),
	    c->close_after || !c->req.keep_alive ? "Connection: close\r\n" :
	    "");
	conn_write(c, buf_ptr(&out), buf_used(&out));
	buf_free(&hdrs);
	buf_free(&out);
	conn_response_done(c);
}

/*
 * The response cache (cache.h). The key is made from the body as it
 * will go upstream, once the [model] sections have clamped it, and
 * the bound on output they leave; a quota may lower that bound for
 * this request alone, and then its answer is not kept (proxy_start).
 * Returns 1 when a hit has answered the request.
 */
static int
proxy_cache_check(struct conn *c, struct body *b, enum cache_status *st,
    unsigned char key[CACHE_KEY_LEN], int64_t *limit)
{
	struct cache_entry		*e;
	struct cache_ask		 a;
	struct buf			 body;

	*st = c->rq.user == NULL ? CACHE_NONE :
	    cache_check(c->route, c->rq.model, buf_used(&c->body));
	if (*st != CACHE_MISS)
		return 0;
	proxy_clamp(c, b);
	*limit = proxy_cache_limit(c, b);
	buf_init(&body);
	body_render(b, buf_ptr(&c->body), &body);
	memset(&a, 0, sizeof a);
	a.route = c->route;
	a.model = c->rq.model;
	a.user_id = c->rq.user->id;
	a.end_user = c->rq.end_user;
	a.body = buf_ptr(&body);
	a.len = buf_used(&body);
	a.limit = *limit;
	*st = cache_lookup(&a, key, &e);
	buf_free(&body);
	if (*st != CACHE_HIT)
		return 0;
	proxy_cache_reply(c, b, e);
	return 1;
}

/* A complete 200 whose usage is known goes into the cache. */
static void
proxy_cache_store(struct proxy_req *pr, struct conn *c)
{
	const struct tally	*t = &pr->tally;

	if (pr->fill == NULL)
		return;
	if (pr->status == 200 && !(c->rq.flags & (USAGE_PARTIAL |
	    USAGE_CANCELLED | USAGE_FAILED | USAGE_ESTIMATED)) &&
	    (!(pr->route->flags & ROUTE_GENERATES) ||
	    ((t->done || pr->stream == STREAM_NONE) && t->completion_tokens >= 0)))
		cache_fill_commit(pr->fill, pr->stream == STREAM_NDJSON ?
		    CACHE_NDJSON : pr->stream == STREAM_SSE ? CACHE_SSE :
		    CACHE_JSON, c->rq.prompt_tokens, c->rq.completion_tokens);
	cache_fill_free(pr->fill);
	pr->fill = NULL;
}

/* What its end user spent is known now: the request goes on. */
static void
proxy_resume(struct request *rq)
{
	proxy_start((struct conn *)((char *)rq - offsetof(struct conn, rq)));
}

void
proxy_start(struct conn *c)
{
	struct proxy_req	*pr;
	struct body		 b;
	struct fleet_refusal	 why;
	struct backend		*only = NULL;
	char			 asked[BODY_MODEL_MAX + 1];
	int			 have_body = 0;
	enum cache_status	 cst = CACHE_NONE;
	unsigned char		 key[CACHE_KEY_LEN];
	int64_t			 limit = -1;

	memset(&b, 0, sizeof b);
	asked[0] = '\0';
	/* An end user's first request waits to learn what it has spent. */
	if ((c->route->flags & ROUTE_INFER) && enduser_wait(&c->rq,
	    proxy_resume))
		return;
	/* Model lists are the fleet's: every backend is asked (listing.c). */
	if ((c->route->flags & ROUTE_LIST) && c->req.method == HTTP_GET) {
		if (listing_start(c) != 0)
			reply_error(c, 503, c->route->dialect, "no backend "
			    "available", "Retry-After: 5\r\n");
		return;
	}
	/*
	 * Model management may be for one named backend or all (manage.c);
	 * an upload streams to its one backend from here.
	 */
	if ((c->route->flags & ROUTE_MANAGE) && !c->upload && manage_start(c))
		return;
	if (c->upload && proxy_named_backend(c, &only) != 0)
		return;
	if ((c->route->flags & (ROUTE_MODEL | ROUTE_PARAM)) ==
	    (ROUTE_MODEL | ROUTE_PARAM)) {
		char	model[BODY_MODEL_MAX];

		if (proxy_param_model(c, model, sizeof model) != 0 ||
		    proxy_allowed(c, model) != 0)
			return;
	} else if (c->route->flags & ROUTE_FORM) {
		if (proxy_form_model(c, asked, sizeof asked) != 0)
			return;
	} else if (c->route->body != 0) {
		if (proxy_read_body(c, &b) != 0)
			return;
		have_body = 1;
		if (b.model != NULL)
			snprintf(asked, sizeof asked, "%s", b.model);
	}
	/* No room left for its usage row: refused, not served unaccounted. */
	if ((c->route->flags & ROUTE_INFER) && usage_backlogged()) {
		body_free(&b);
		usage_refuse(c);
		return;
	}
	if (have_body && proxy_cache_check(c, &b, &cst, key, &limit)) {
		body_free(&b);
		return;
	}
	if (proxy_admit(c, &b) != 0) {
		body_free(&b);
		return;
	}
	pr = xcalloc(1, sizeof *pr);
	pr->id = ++proxy_next_id;
	pr->c = c;
	pr->route = c->route;
	pr->started = pr->last_activity = loop_now();
	pr->ttft_ms = -1;
	tally_init(&pr->tally, TALLY_JSON);
	proxy_n++;
	TAILQ_INSERT_TAIL(&proxy_live, pr, entry);
	c->pr = pr;
	pr->cache = cst;
	if (cst == CACHE_MISS && proxy_cache_limit(c, &b) == limit)
		pr->fill = cache_fill_new(key, c->route, c->rq.model);
	/*
	 * What goes upstream is the body as the gateway read it: the fields
	 * it acted on in its own spelling. Other bodies move as they came.
	 */
	if (have_body) {
		/*
		 * OpenAI streams report usage only when asked, so the gateway
		 * asks on the client's behalf and hides the answer from a
		 * client that did not.
		 */
		if ((c->route->flags & ROUTE_USAGE_ASK) &&
		    body_bool(&b, BODY_STREAM, 0) &&
		    !body_bool(&b, BODY_INCLUDE_USAGE, 0)) {
			body_set_bool(&b, BODY_INCLUDE_USAGE, 1);
			pr->hide_usage = 1;
		}
		buf_init(&pr->body);
		body_render(&b, buf_ptr(&c->body), &pr->body);
		body_free(&b);
		buf_free(&c->body);
	} else
		pr->body = c->body;
	buf_init(&c->body);
	buf_init(&pr->head);
	buf_init(&pr->event);
	loop_timer_init(&pr->timer, proxy_timer_cb, pr);

	/* Where and when it runs is the scheduler's (fleet.c). */
	pr->tk.user = c->rq.user;
	pr->tk.eu = enduser_ref(c->rq.eu);
	pr->tk.model = c->rq.model;
	pr->tk.slot = (c->route->flags & ROUTE_INFER) != 0;
	pr->tk.native = c->route->dialect != DIALECT_OPENAI;
	pr->tk.go = proxy_go;
	pr->tk.expire = proxy_expire;
	if (only != NULL) {
		pr->tk.only = only;
		backend_ref(only);
	}
	if (fleet_submit(&pr->tk, asked, proxy_notfound(c->route), &why) ==
	    FLEET_REFUSED)
		proxy_refused(pr, &why);
}

/* The scheduler gives the request a backend: it goes. */
static void
proxy_go(struct fleet_ticket *tk, struct backend *be)
{
	struct proxy_req	*pr = proxy_of(tk);

	pr->be = be;
	backend_ref(be);
	backend_begin(be);
	pr->last_activity = loop_now();
	if (pr->attempts > 0)
		log_info("request %llu: tried again on %s",
		    (unsigned long long)pr->id, be->name);
	proxy_dispatch(pr);
}

/* It waited in the queue too long: the client is told, and a row says so. */
static void
proxy_expire(struct fleet_ticket *tk, int status, const char *msg)
{
	struct proxy_req	*pr = proxy_of(tk);
	struct fleet_refusal	 why;

	log_warn("request %llu %s: %s", (unsigned long long)pr->id,
	    pr->route->endpoint, msg);
	why.status = status;
	why.retry_after = (long)(server_cfg->queue_timeout / 1000 / 2);
	if (why.retry_after < 1)
		why.retry_after = 1;
	snprintf(why.message, sizeof why.message, "%s", msg);
	proxy_refused(pr, &why);
}

/* An upload's bytes come from the client's connection as they arrive. */
static size_t
proxy_upload_pull(void *arg, const char **p, int *eof)
{
	struct proxy_req	*pr = arg;

	if (pr->c == NULL) {
		*eof = 1;
		return 0;
	}
	return conn_upload_peek(pr->c, p, eof);
}

static void
proxy_upload_consumed(void *arg, size_t n)
{
	struct proxy_req	*pr = arg;

	pr->uploaded += n;
	pr->last_activity = loop_now();
	conn_upload_consumed(pr->c, n);
}

void
proxy_upload_more(struct proxy_req *pr)
{
	if (pr->be != NULL)
		origin_body_ready(&pr->x);
}

/* Send the request to pr->be: a new transfer. */
static void
proxy_dispatch(struct proxy_req *pr)
{
	struct conn		*c = pr->c;
	struct origin_xfer	*x = &pr->x;

	x->be = pr->be;
	x->on_head = proxy_on_head;
	x->on_body = proxy_on_body;
	x->on_done = proxy_done_cb;
	x->arg = pr;
	x->no_body = pr->no_body = c->req.method == HTTP_HEAD;
	x->body = buf_used(&pr->body) > 0 ? buf_ptr(&pr->body) : NULL;
	x->body_len = buf_used(&pr->body);
	if (c->upload) {
		pr->src.pull = proxy_upload_pull;
		pr->src.consumed = proxy_upload_consumed;
		pr->src.arg = pr;
		x->source = &pr->src;
	}
	proxy_request_head(pr, c);
	loop_timer_arm(&pr->timer, server_cfg->upstream_timeout);
	/* Last: a transfer may end before this returns on no account. */
	origin_start(x);
}

/* May the request be tried on a backend other than its own? */
static int
proxy_elsewhere(struct proxy_req *pr)
{
	int	can;

	if (pr->tk.not != NULL)
		return 0;
	pr->tk.not = pr->be;
	can = fleet_elsewhere(&pr->tk);
	pr->tk.not = NULL;
	return can;
}

/*
 * The backend's final response head, read by the strict parser: a 503
 * that another backend may serve instead, or a head to relay. Returning
 * nonzero ends the transfer and closes the connection, so nothing left
 * of a refused response is read as the next.
 */
static int
proxy_on_head(struct origin_xfer *x, const struct http_response *r)
{
	struct proxy_req	*pr = x->arg;

	pr->last_activity = loop_now();
	pr->status = r->status;
	if (pr->status >= 500)
		pr->outcome = BACKEND_FAILED;
	/*
	 * Ollama answers 503 when its own queue is full: before a byte of
	 * it reaches the client, another backend may serve.
	 */
	if (pr->status == 503 && pr->attempts == 0 && pr->c != NULL &&
	    proxy_elsewhere(pr)) {
		pr->busy = 1;
		return -1;
	}
	proxy_judge_head(pr, r);
	pr->head_done = 1;
	/* A backend that takes a model on shows the fleet has it. */
	if (pr->status >= 200 && pr->status < 300 && pr->c != NULL &&
	    (pr->route->flags & ROUTE_MODEL))
		models_note(pr->c->rq.model);
	tally_init(&pr->tally, pr->stream == STREAM_SSE ? TALLY_SSE :
	    TALLY_JSON);
	if (pr->c != NULL)
		proxy_send_head(pr);
	return 0;
}

/* Does a Connection field of the response name this field? */
static int
proxy_connection_names(const struct http_response *r,
    const struct http_header *f)
{
	for (int i = 0; i < r->nheaders; i++) {
		const struct http_header	*h = &r->headers[i];
		char				 name[256];

		if (strcasecmp(h->name, "connection") != 0 ||
		    f->name_len >= sizeof name)
			continue;
		memcpy(name, f->name, f->name_len);
		name[f->name_len] = '\0';
		if (http_list_has(h->value, h->value_len, name))
			return 1;
	}
	return 0;
}

/*
 * Keep what of a response head may reach the client. The parser has
 * refused every head whose framing a client could read differently
 * (RFC 9112 section 6.3); what is left to drop here is hop-by-hop:
 * the fields of the connection, and those a Connection field names.
 * The backend's length is kept only when the body reaches the client
 * byte for byte; a body the gateway may rewrite is framed anew.
 * pr->head then holds the fields to relay, each ending in CRLF.
 */
static void
proxy_judge_head(struct proxy_req *pr, const struct http_response *r)
{
	const struct http_header	*ct;
	int				 rewrite, hop;

	pr->stream = STREAM_NONE;
	pr->has_length = 0;
	if ((ct = http_response_header(r, "content-type")) != NULL) {
		if (strncasecmp(ct->value, "application/x-ndjson", 20) == 0)
			pr->stream = STREAM_NDJSON;
		else if (strncasecmp(ct->value, "text/event-stream", 17) == 0)
			pr->stream = STREAM_SSE;
	}
	/* The body proxy_on_body() changes: the usage filter's. */
	rewrite = pr->status == 200 && pr->hide_usage &&
	    pr->stream == STREAM_SSE;
	hop = http_response_header(r, "connection") != NULL;
	buf_reset(&pr->head);
	for (int i = 0; i < r->nheaders; i++) {
		const struct http_header	*h = &r->headers[i];

		if (proxy_skip_response_header(h->name, h->name_len) ||
		    (hop && proxy_connection_names(r, h)))
			continue;
		if (strcasecmp(h->name, "content-length") == 0) {
			if (rewrite)
				continue;
			pr->has_length = 1;
		}
		buf_add(&pr->head, h->name, h->name_len);
		buf_add(&pr->head, ": ", 2);
		buf_add(&pr->head, h->value, h->value_len);
		buf_add(&pr->head, "\r\n", 2);
	}
}

/* Our head for the client. */
static void
proxy_send_head(struct proxy_req *pr)
{
	struct conn	*c = pr->c;
	int		 bodyless;

	if (pr->head_sent)
		return;
	pr->head_sent = 1;
	c->status = pr->status;
	bodyless = pr->no_body || pr->status == 204 || pr->status == 304;
	conn_printf(c, "HTTP/1.1 %d %s\r\n", pr->status,
	    http_status_text(pr->status));
	conn_write(c, buf_ptr(&pr->head), buf_used(&pr->head));
	if (c->rq.admitted) {
		struct buf	rl;

		buf_init(&rl);
		quota_headers(c->rq.user, c->rq.eu, &rl);
		conn_write(c, buf_ptr(&rl), buf_used(&rl));
		buf_free(&rl);
	}
	if (pr->cache != CACHE_NONE)
		conn_printf(c, "X-Cache-Status: %s\r\n",
		    cache_status_name(pr->cache));
	if (!bodyless && !pr->has_length) {
		if (c->req.minor >= 1) {
			conn_write(c, "Transfer-Encoding: chunked\r\n", 28);
			pr->chunked = 1;
		} else
			c->close_after = 1;	/* the close ends the body */
	}
	if (c->close_after || !c->req.keep_alive)
		conn_write(c, "Connection: close\r\n", 19);
	conn_write(c, "\r\n", 2);
	buf_free(&pr->head);
}

/* Queue body bytes for the client, framed as the client needs. */
static void
proxy_emit(struct proxy_req *pr, const char *p, size_t len)
{
	struct conn	*c = pr->c;
	char		 hex[24];

	if (len == 0)
		return;
	if (pr->chunked) {
		/* The size line, by hand: this runs for every chunk. */
		char	*h = hex + sizeof hex;
		size_t	 n = len;

		*--h = '\n';
		*--h = '\r';
		do {
			*--h = "0123456789abcdef"[n & 15];
			n >>= 4;
		} while (n != 0);
		conn_write(c, h, (size_t)(hex + sizeof hex - h));
		conn_write(c, p, len);
		conn_write(c, "\r\n", 2);
	} else
		conn_write(c, p, len);
	if (pr->fill != NULL)
		cache_fill_add(pr->fill, p, len);
	pr->bytes += len;
	if (len >= 2) {
		pr->tail[0] = p[len - 2];
		pr->tail[1] = p[len - 1];
	} else {
		pr->tail[0] = pr->tail[1];
		pr->tail[1] = p[0];
	}
}

/*
 * One whole SSE event, when the client did not ask for usage: the
 * usage-only chunk is dropped, and a chunk that carries usage as well as
 * output (every chunk of /v1/completions) loses its "usage". Every other
 * event goes through byte for byte.
 */
static void
proxy_sse_event(struct proxy_req *pr, const char *ev, size_t len)
{
	struct tally	 t;
	const char	*data;
	json_t		*doc;
	char		*out;

	tally_init(&t, TALLY_SSE);
	tally_feed(&t, ev, len);
	if (t.prompt_tokens < 0 && t.completion_tokens < 0) {
		proxy_emit(pr, ev, len);
		return;
	}
	if (t.chunks == 0)
		return;		/* the usage chunk we asked for */
	data = memmem(ev, len, "data:", 5);
	doc = data != NULL ? json_loadb(data + 5, len - (size_t)(data + 5 - ev),
	    JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	if (!json_is_object(doc)) {
		json_decref(doc);
		proxy_emit(pr, ev, len);
		return;
	}
	json_object_del(doc, "usage");
	out = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (out == NULL) {
		proxy_emit(pr, ev, len);
		return;
	}
	proxy_emit(pr, "data: ", 6);
	proxy_emit(pr, out, strlen(out));
	proxy_emit(pr, "\n\n", 2);
	free(out);
}

/* Gather SSE events (they end at a blank line) and filter each. */
static void
proxy_sse_filter(struct proxy_req *pr, const char *p, size_t len)
{
	while (len > 0) {
		const char	*nl = memchr(p, '\n', len);
		size_t		 span = nl != NULL ? (size_t)(nl - p) + 1 : len;
		size_t		 n;
		const char	*e;

		if (buf_used(&pr->event) + span > PROXY_EVENT_MAX) {
			/*
			 * Not SSE as Ollama writes it: stop filtering rather than
			 * hold an unbounded event.
			 */
			proxy_emit(pr, buf_ptr(&pr->event), buf_used(&pr->event));
			buf_reset(&pr->event);
			pr->hide_usage = 0;
			proxy_emit(pr, p, len);
			return;
		}
		buf_add(&pr->event, p, span);
		p += span;
		len -= span;
		if (nl == NULL)
			break;
		n = buf_used(&pr->event);
		e = buf_ptr(&pr->event);
		if ((n >= 2 && e[n - 2] == '\n') ||
		    (n >= 3 && e[n - 2] == '\r' && e[n - 3] == '\n')) {
			proxy_sse_event(pr, e, n);
			buf_reset(&pr->event);
		}
	}
}

/*
 * Body bytes from the backend, all taken: framed for the client, counted,
 * filtered where the client did not ask for usage. When the client's
 * buffer is full, the backend is not read until it drains.
 */
static int
proxy_on_body(struct origin_xfer *x, const char *p, size_t len)
{
	struct proxy_req	*pr = x->arg;
	struct conn		*c = pr->c;

	if (c == NULL)
		return 1;
	if (!pr->head_sent)
		proxy_send_head(pr);
	pr->last_activity = loop_now();
	if (pr->ttft_ms < 0) {
		pr->ttft_ms = (int64_t)(pr->last_activity - pr->started);
		/* Its first byte: a model it was sent to load is in. */
		if (pr->status == 200)
			fleet_loaded(&pr->tk);
	}
	tally_feed(&pr->tally, p, len);
	if (pr->hide_usage && pr->stream == STREAM_SSE && pr->status == 200)
		proxy_sse_filter(pr, p, len);
	else
		proxy_emit(pr, p, len);
	if (conn_out_full(c)) {
		pr->paused = 1;
		return 1;
	}
	return 0;
}

void
proxy_client_drained(struct proxy_req *pr, int low)
{
	if (pr->paused && low) {
		pr->paused = 0;
		pr->last_activity = loop_now();
		origin_resume(&pr->x);
	}
}

static void
proxy_timer_cb(struct loop_timer *t)
{
	struct proxy_req	*pr = t->arg;
	uint64_t		 idle = loop_now() - pr->last_activity;

	/* A paused transfer waits on the client, not on the backend. */
	if (pr->paused || idle < server_cfg->upstream_timeout) {
		loop_timer_arm(t, pr->paused ? server_cfg->upstream_timeout :
		    server_cfg->upstream_timeout - idle);
		return;
	}
	origin_abort(&pr->x);
	proxy_fail(pr, 1, ORIGIN_OK);
}

static void
proxy_done_cb(struct origin_xfer *x, enum origin_error e)
{
	struct proxy_req	*pr = x->arg;

	if (e != ORIGIN_OK) {
		if (e == ORIGIN_REFUSED && pr->refused == NULL && !pr->busy)
			pr->refused = x->why;
		if (proxy_retry(pr, e))
			return;
		proxy_fail(pr, 0, e);
		return;
	}
	if (pr->c != NULL) {
		if (!pr->head_sent)
			proxy_send_head(pr);
		/* An unterminated last event goes as it is. */
		proxy_emit(pr, buf_ptr(&pr->event), buf_used(&pr->event));
		buf_reset(&pr->event);
		if (pr->chunked)
			conn_write(pr->c, "0\r\n\r\n", 5);
	}
	proxy_finish(pr);
}

/* The dialect of an error line ending a stream of this kind. */
static enum dialect
proxy_stream_dialect(const struct proxy_req *pr)
{
	if (pr->stream != STREAM_SSE)
		return DIALECT_OLLAMA;
	return pr->route->dialect == DIALECT_ANTHROPIC ? DIALECT_ANTHROPIC :
	    DIALECT_OPENAI;
}

/*
 * The backend failed. Before the response started, the client gets a
 * 502 or 504 in its dialect. After, the status is already sent, so the
 * stream ends with one last line in its own format, as Ollama itself
 * ends a stream that fails: an {"error":...} line for NDJSON, an error
 * event for SSE. Then the connection is closed. timed_out is -1 when
 * an administrator cancelled the request.
 */
static void
proxy_fail(struct proxy_req *pr, int timed_out, enum origin_error e)
{
	struct conn	*c = pr->c;
	char		 msg[256];
	int		 status = timed_out ? 504 : 502;

	if (timed_out < 0) {
		/* Not the backend's fault: an administrator stopped it. */
		status = 503;
		snprintf(msg, sizeof msg, "request cancelled by an administrator");
	} else {
		server_stats.upstream_errors++;
		pr->outcome = BACKEND_FAILED;
		if (timed_out)
			snprintf(msg, sizeof msg, "backend %s timed out",
			    pr->be->name);
		else if (pr->refused != NULL)
			snprintf(msg, sizeof msg, "backend %s sent %s",
			    pr->be->name, pr->refused);
		else if (pr->busy) {
			status = 503;
			snprintf(msg, sizeof msg, "backend %s is busy",
			    pr->be->name);
		}
		else if (e == ORIGIN_CONNECT) {
			pr->outcome = BACKEND_UNREACHABLE;
			snprintf(msg, sizeof msg, "backend %s is unreachable%s%s%s",
			    pr->be->name, pr->x.why != NULL ? " (" : "",
			    pr->x.why != NULL ? pr->x.why : "",
			    pr->x.why != NULL ? ")" : "");
		} else if (e == ORIGIN_TLS)
			snprintf(msg, sizeof msg, "backend %s failed: TLS: %s",
			    pr->be->name, pr->x.why != NULL ? pr->x.why :
			    "handshake failed");
		else
			snprintf(msg, sizeof msg, "backend %s %s", pr->be->name,
			    origin_strerror(e));
	}
	log_warn("request %llu %s %s: %s", (unsigned long long)pr->id,
	    c != NULL ? c->req.method_str : "-", pr->route->endpoint, msg);
	if (c == NULL) {
		proxy_free(pr);
		return;
	}
	if (timed_out >= 0)
		c->rq.flags |= USAGE_FAILED;
	if (!pr->head_sent) {
		c->pr = NULL;
		proxy_collect(pr, c);
		proxy_free(pr);
		reply_error(c, status, c->route->dialect, msg, NULL);
		return;
	}
	/* What was held of an unfinished SSE event goes first. */
	proxy_emit(pr, buf_ptr(&pr->event), buf_used(&pr->event));
	buf_reset(&pr->event);
	if (pr->stream != STREAM_NONE && !pr->no_body) {
		struct buf	 line;
		char		*json;

		buf_init(&line);
		json = pr->stream == STREAM_SSE && (pr->route->flags &
		    ROUTE_EVENTS) ? reply_event_error_json(msg,
		    pr->tally.events) : reply_error_json(status,
		    proxy_stream_dialect(pr), msg);
		if (pr->stream == STREAM_NDJSON) {
			if (pr->bytes > 0 && pr->tail[1] != '\n')
				buf_add(&line, "\n", 1);
			buf_printf(&line, "%s\n", json);
		} else {
			if (pr->bytes > 0 && pr->tail[1] != '\n')
				buf_add(&line, "\n\n", 2);
			else if (pr->bytes > 0 && pr->tail[0] != '\n')
				buf_add(&line, "\n", 1);
			/* Anthropic's SDK reads only an event named error. */
			buf_printf(&line, "%sdata: %s\n\n",
			    pr->route->dialect == DIALECT_ANTHROPIC ||
			    (pr->route->flags & ROUTE_EVENTS) ?
			    "event: error\n" : "", json);
		}
		free(json);
		if (pr->chunked) {
			conn_printf(c, "%zx\r\n", buf_used(&line));
			conn_write(c, buf_ptr(&line), buf_used(&line));
			conn_write(c, "\r\n0\r\n\r\n", 7);
		} else if (!pr->has_length)
			conn_write(c, buf_ptr(&line), buf_used(&line));
		buf_free(&line);
	}
	c->close_after = 1;
	proxy_finish(pr);
}

json_t *
proxy_list_json(void)
{
	struct proxy_req	*pr;
	json_t			*list = json_array();
	uint64_t		 now = loop_now();

	fleet_rank();
	TAILQ_FOREACH(pr, &proxy_live, entry) {
		struct conn	*c = pr->c;
		uint64_t	 elapsed = now - pr->started;
		/* Output chunks are tokens, until the final figures say. */
		int64_t		 out = pr->tally.completion_tokens >= 0 ?
				    pr->tally.completion_tokens :
				    (int64_t)pr->tally.chunks;
		double		 rate = 0;
		const char	*state;

		if (c == NULL)
			continue;
		if (pr->ttft_ms >= 0 && elapsed > (uint64_t)pr->ttft_ms)
			rate = (double)out * 1000.0 /
			    (double)(elapsed - (uint64_t)pr->ttft_ms);
		state = pr->tk.queued ? "queued" : pr->ttft_ms < 0 ?
		    "waiting" : "streaming";
		json_array_append_new(list, json_pack(
		    "{s:I, s:s?, s:s?, s:s?, s:s?, s:s, s:s, s:s, s:I, s:o, s:I, "
		    "s:f, s:o, s:I}",
		    "id", (json_int_t)pr->id,
		    "user", c->rq.user != NULL ? c->rq.user->name : NULL,
		    "end_user", c->rq.end_user,
		    "model", c->rq.model,
		    "backend", pr->be != NULL ? pr->be->name : NULL,
		    "endpoint", pr->route->endpoint,
		    "client", c->ip,
		    "state", state,
		    "elapsed_ms", (json_int_t)elapsed,
		    "ttft_ms", pr->ttft_ms >= 0 ? json_integer(pr->ttft_ms) :
		    json_null(),
		    "tokens_out", (json_int_t)out,
		    "tokens_per_s", rate,
		    "position", pr->tk.queued ? json_integer(pr->tk.position) :
		    json_null(),
		    "queued_ms", (json_int_t)(pr->tk.queued ? now - pr->tk.since :
		    pr->tk.waited_ms)));
	}
	return list;
}

/*
 * An administrator stops a request: the upstream transfer is aborted,
 * so the backend stops generating, and the client is told in its
 * dialect, as for a backend failure, with a message that says why.
 */
int
proxy_cancel(uint64_t id)
{
	struct proxy_req	*pr;

	TAILQ_FOREACH(pr, &proxy_live, entry) {
		if (pr->id == id && pr->c != NULL)
			break;
	}
	if (pr == NULL)
		return -1;
	log_info("request %llu cancelled by an administrator",
	    (unsigned long long)id);
	fleet_cancel(&pr->tk, 1);
	origin_abort(&pr->x);
	pr->c->rq.flags |= USAGE_CANCELLED;
	proxy_fail(pr, -1, ORIGIN_OK);
	return 0;
}

static void
proxy_finish(struct proxy_req *pr)
{
	struct conn	*c = pr->c;

	if (log_verbose() && c != NULL) {
		log_debug("request %llu %s %s %s -> %s %d %llu bytes %llu ms",
		    (unsigned long long)pr->id, c->addr, c->req.method_str,
		    c->req.target, pr->be->name, pr->status,
		    (unsigned long long)pr->bytes,
		    (unsigned long long)(loop_now() - pr->started));
	}
	if (c != NULL) {
		c->pr = NULL;
		proxy_collect(pr, c);
		proxy_cache_store(pr, c);
		proxy_free(pr);
		conn_response_done(c);
	} else
		proxy_free(pr);
}

void
proxy_client_gone(struct proxy_req *pr)
{
	log_debug("request %llu: client went away, cancelling",
	    (unsigned long long)pr->id);
	if (pr->c != NULL) {
		pr->c->rq.flags |= USAGE_CANCELLED;
		proxy_collect(pr, pr->c);
	}
	pr->c = NULL;
	origin_abort(&pr->x);
	proxy_free(pr);
}

/*
 * A request that failed before any byte of an answer reached its client
 * is tried once more, on another backend: when the connection was
 * refused, when it was reset or closed before the head came, and when
 * the backend said 503 (its own queue is full). Nothing is tried again
 * once the client has had a byte, or after a timeout, which would double
 * the wait. Returns 1 if the request went elsewhere.
 */
static int
proxy_retry(struct proxy_req *pr, enum origin_error e)
{
	struct backend		*old = pr->be;
	enum backend_outcome	 o;
	struct fleet_refusal	 why;

	/* An upload's bytes that went are gone: it cannot go again. */
	if (pr->attempts > 0 || pr->c == NULL || pr->head_sent ||
	    pr->bytes > 0 || pr->refused != NULL || pr->uploaded > 0)
		return 0;
	if (pr->busy)
		o = BACKEND_FAILED;
	else if (e == ORIGIN_CONNECT)
		o = BACKEND_UNREACHABLE;
	else if (!pr->head_done && e == ORIGIN_RESET)
		o = BACKEND_FAILED;
	else
		return 0;
	if (!proxy_elsewhere(pr))
		return 0;
	log_warn("request %llu: backend %s %s; trying another",
	    (unsigned long long)pr->id, old->name, pr->busy ?
	    "is busy (503)" : origin_strerror(e));
	server_stats.upstream_errors++;
	/* Its slot there frees; the ticket keeps the backend to avoid. */
	fleet_done(&pr->tk, 0, 0);
	backend_end(old, o);
	pr->tk.not = old;
	pr->be = NULL;
	pr->attempts++;
	/* The answer starts over, from the new backend. */
	origin_reset(&pr->x);
	buf_reset(&pr->head);
	pr->status = 0;
	pr->stream = STREAM_NONE;
	pr->head_done = pr->has_length = pr->busy = 0;
	pr->outcome = BACKEND_OK;
	pr->last_activity = loop_now();
	loop_timer_stop(&pr->timer);
	tally_init(&pr->tally, TALLY_JSON);
	if (fleet_submit(&pr->tk, pr->c->rq.model, proxy_notfound(pr->route),
	    &why) == FLEET_REFUSED)
		proxy_refused(pr, &why);
	return 1;
}

static void
proxy_free(struct proxy_req *pr)
{
	loop_timer_stop(&pr->timer);
	origin_abort(&pr->x);
	origin_reset(&pr->x);
	buf_free(&pr->body);
	buf_free(&pr->head);
	buf_free(&pr->event);
	cache_fill_free(pr->fill);
	fleet_cancel(&pr->tk, 0);
	fleet_done(&pr->tk, pr->outcome == BACKEND_OK && pr->status == 200 &&
	    pr->tally.done, pr->tally.load_ms);
	if (pr->tk.not != NULL)
		backend_unref(pr->tk.not);
	if (pr->tk.only != NULL)
		backend_unref(pr->tk.only);
	if (pr->be != NULL) {
		backend_end(pr->be, pr->outcome);
		backend_unref(pr->be);
	}
	enduser_unref(pr->tk.eu);
	proxy_n--;
	TAILQ_REMOVE(&proxy_live, pr, entry);
	free(pr);
}
