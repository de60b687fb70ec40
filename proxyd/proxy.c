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
#include "config.h"
#include "conn.h"
#include "enduser.h"
#include "listing.h"
#include "log.h"
#include "loop.h"
#include "manage.h"
#include "models.h"
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
	struct upstream_xfer	 x;
	struct conn		*c;		/* NULL once the client is gone */
	struct backend		*be;
	const struct route	*route;
	struct curl_slist	*hdrs;
	struct buf		 body;		/* the request body */
	struct buf		 head;		/* response head being built */
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
	TAILQ_ENTRY(proxy_req)	 entry;		/* the live view */
};

static TAILQ_HEAD(, proxy_req)	proxy_live = TAILQ_HEAD_INITIALIZER(proxy_live);

/* The longest keep_alive of a user who is not an admin, by default. */
#define PROXY_KEEP_ALIVE_MAX	(30 * 60 * 1000)
/* An SSE event bigger than this is not one we filter. */
#define PROXY_EVENT_MAX	(1024 * 1024)
/*
 * A response head bigger than this, or with more fields, is refused
 * (the limits on request heads are alike); they also bound the time the
 * Connection names take to check, since each field is matched with each.
 */
#define PROXY_HEAD_MAX		(64 * 1024)
#define PROXY_HEAD_FIELDS	100

static uint64_t	proxy_next_id;
static unsigned	proxy_n;

static size_t	proxy_header_cb(char *, size_t, size_t, void *);
static size_t	proxy_write_cb(char *, size_t, size_t, void *);
static void	proxy_done_cb(struct upstream_xfer *, CURLcode);
static void	proxy_timer_cb(struct loop_timer *);
static int	proxy_judge_head(struct proxy_req *);
static void	proxy_send_head(struct proxy_req *);
static void	proxy_fail(struct proxy_req *, int timed_out, CURLcode);
static void	proxy_finish(struct proxy_req *);
static void	proxy_free(struct proxy_req *);
static void	proxy_build_headers(struct proxy_req *, struct conn *);
static void	proxy_free_headers(struct proxy_req *);
static void	proxy_dispatch(struct proxy_req *);
static int	proxy_retry(struct proxy_req *, CURLcode);
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
    const struct http_request *req)
{
	static const char *const skip[] = {
		"host", "content-length", "transfer-encoding", "connection",
		"keep-alive", "proxy-connection", "te", "trailer", "upgrade",
		"expect", "authorization", "proxy-authorization", "x-api-key",
		"forwarded", "via", "x-real-ip", "x-client-ip", "client-ip",
		"true-client-ip", "cf-connecting-ip", "x-cluster-client-ip",
		"x-original-forwarded-for", MANAGE_HEADER,
	};
	const struct http_header	*conn;

	for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++) {
		if (strcasecmp(h->name, skip[i]) == 0)
			return 1;
	}
	/* X-Forwarded-For, -Proto, -Host, -Port, -Prefix, -Server, ... */
	if (strncasecmp(h->name, "x-forwarded-", 12) == 0)
		return 1;
	/* Headers the client names in Connection are hop-by-hop too. */
	if ((conn = http_find_header(req, "connection")) != NULL) {
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

struct curl_slist *
proxy_headers(const struct conn *c, const struct backend *be)
{
	struct curl_slist	*hdrs = NULL;
	struct buf		 line;
	int			 have_ctype = 0, have_accept = 0;

	buf_init(&line);
	for (int i = 0; i < c->req.nheaders; i++) {
		const struct http_header	*h = &c->req.headers[i];

		if (proxy_skip_request_header(h, &c->req))
			continue;
		if (strcasecmp(h->name, "content-type") == 0)
			have_ctype = 1;
		if (strcasecmp(h->name, "accept") == 0)
			have_accept = 1;
		buf_reset(&line);
		/* "Name;" is how libcurl is told to send an empty value. */
		if (h->value_len == 0)
			buf_printf(&line, "%s;", h->name);
		else
			buf_printf(&line, "%s: %s", h->name, h->value);
		hdrs = curl_slist_append(hdrs, buf_cstr(&line));
	}
	/* Remove what libcurl would add on its own. */
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (!have_ctype)
		hdrs = curl_slist_append(hdrs, "Content-Type:");
	if (!have_accept)
		hdrs = curl_slist_append(hdrs, "Accept:");
	buf_reset(&line);
	buf_printf(&line, "X-Forwarded-For: %s", c->ip);
	hdrs = curl_slist_append(hdrs, buf_cstr(&line));
	buf_reset(&line);
	buf_printf(&line, "X-Real-IP: %s", c->ip);
	hdrs = curl_slist_append(hdrs, buf_cstr(&line));
	hdrs = curl_slist_append(hdrs, c->tls ?
	    "X-Forwarded-Proto: https" : "X-Forwarded-Proto: http");
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

static void
proxy_build_headers(struct proxy_req *pr, struct conn *c)
{
	pr->hdrs = proxy_headers(c, pr->be);
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
	if (v.status != 0) {
		struct buf	hdrs;

		buf_init(&hdrs);
		buf_printf(&hdrs, "Retry-After: %ld\r\n", v.retry_after);
		quota_headers(c->rq.user, c->rq.eu, &hdrs);
		reply_error(c, v.status, r->dialect, v.message,
		    buf_cstr(&hdrs));
		buf_free(&hdrs);
		return v.status;
	}
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
	char			 asked[BODY_MODEL_MAX + 1];
	int			 have_body = 0;

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
	/* Model management may be for one named backend or all (manage.c). */
	if ((c->route->flags & ROUTE_MANAGE) && manage_start(c))
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

/* Send the request to pr->be: a new transfer. */
static void
proxy_dispatch(struct proxy_req *pr)
{
	struct conn	*c = pr->c;
	CURL		*e;

	e = upstream_easy_to(pr->be->url, c->req.target);
	pr->x.easy = e;
	pr->x.on_done = proxy_done_cb;
	pr->x.arg = pr;
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(
	    server_cfg->upstream_timeout < 10000 ? server_cfg->upstream_timeout :
	    10000));
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, proxy_header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, pr);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, proxy_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, pr);

	switch (c->req.method) {
	case HTTP_GET:
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		break;
	case HTTP_HEAD:
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		pr->no_body = 1;
		break;
	default:
		/* POST, and DELETE with its JSON body. */
		if (c->req.method != HTTP_POST)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->req.method_str);
		if (c->req.method == HTTP_POST || buf_used(&pr->body) > 0) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)buf_used(&pr->body));
			curl_easy_setopt(e, CURLOPT_POSTFIELDS,
			    buf_used(&pr->body) ? buf_ptr(&pr->body) : "");
		}
		break;
	}
	proxy_build_headers(pr, c);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, pr->hdrs);

	loop_timer_arm(&pr->timer, server_cfg->upstream_timeout);
	upstream_start(&pr->x);
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
 * libcurl hands over the response head one line at a time. The lines
 * are gathered and judged together once the head is complete, since a
 * field's fate can depend on a later one (Connection names hop-by-hop
 * fields, a second Content-Length contradicts the first). Returning 0
 * fails the transfer, and libcurl then closes the connection rather than
 * reuse it, so nothing left of a refused response is read as the next.
 */
static size_t
proxy_header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct proxy_req	*pr = arg;
	size_t			 len = size * n, end = len;

	pr->last_activity = loop_now();
	if (pr->head_done)
		return len;	/* the trailers of a chunked body: dropped */
	while (end > 0 && (p[end - 1] == '\n' || p[end - 1] == '\r'))
		end--;
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new status line: interim responses start over. */
		const char	*sp = memchr(p, ' ', end);

		buf_reset(&pr->head);
		pr->has_length = 0;
		pr->stream = STREAM_NONE;
		pr->status = sp != NULL ? atoi(sp + 1) : 0;
		if (pr->status < 100 || pr->status > 999) {
			pr->refused = "a malformed status line";
			return 0;
		}
		return len;
	}
	if (end == 0) {
		/*
		 * The blank line. The gateway never asks to switch protocols,
		 * so a 101 is a backend gone wrong; other interim responses
		 * are the backend's business and never reach the client.
		 */
		if (pr->status == 101) {
			pr->refused = "101 Switching Protocols, which the gateway "
			    "does not relay";
			return 0;
		}
		if (pr->status >= 100 && pr->status < 200) {
			buf_reset(&pr->head);
			return len;
		}
		if (pr->status >= 500)
			pr->outcome = BACKEND_FAILED;
		/*
		 * Ollama answers 503 when its own queue is full: before a
		 * byte of it reaches the client, another backend may serve.
		 */
		if (pr->status == 503 && pr->attempts == 0 && pr->c != NULL &&
		    proxy_elsewhere(pr)) {
			pr->busy = 1;
			return 0;
		}
		if (proxy_judge_head(pr) != 0)
			return 0;
		pr->head_done = 1;
		/* A backend that takes a model on shows the fleet has it. */
		if (pr->status >= 200 && pr->status < 300 && pr->c != NULL &&
		    (pr->route->flags & ROUTE_MODEL))
			models_note(pr->c->rq.model);
		tally_init(&pr->tally, pr->stream == STREAM_SSE ? TALLY_SSE :
		    TALLY_JSON);
		if (pr->c != NULL)
			proxy_send_head(pr);
		return len;
	}
	if (buf_used(&pr->head) + end + 1 > PROXY_HEAD_MAX) {
		pr->refused = "a response head over 64K";
		return 0;
	}
	/* Lines are kept as they came, without their ends, for the judge. */
	buf_add(&pr->head, p, end);
	buf_add(&pr->head, "\n", 1);
	return len;
}

/* Is this byte allowed in a field name (an RFC 9110 token)? */
static int
proxy_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z') || (ch != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* One field line of a gathered head, split into name and trimmed value. */
struct proxy_field {
	const char	*line;
	size_t		 len;
	const char	*name;
	size_t		 name_len;
	const char	*value;
	size_t		 value_len;
	int		 fold;		/* a continuation of the line before */
	int		 valid;		/* a token name and no control bytes */
};

/* Split the line at *pos (lines end in '\n'); 0 at the end of the head. */
static int
proxy_next_field(const struct buf *head, size_t *pos, struct proxy_field *f)
{
	const char	*h = buf_ptr(head), *nl;
	size_t		 used = buf_used(head);

	if (*pos >= used)
		return 0;
	memset(f, 0, sizeof *f);
	f->line = h + *pos;
	nl = memchr(f->line, '\n', used - *pos);
	f->len = (size_t)(nl - f->line);
	*pos += f->len + 1;
	if (f->len > 0 && (f->line[0] == ' ' || f->line[0] == '\t')) {
		f->fold = 1;
		return 1;
	}
	f->name = f->line;
	while (f->name_len < f->len && proxy_tchar((unsigned char)
	    f->name[f->name_len]))
		f->name_len++;
	if (f->name_len == 0 || f->name_len == f->len ||
	    f->line[f->name_len] != ':') {
		f->name_len = 0;
		return 1;	/* no token before the colon: not valid */
	}
	f->value = f->line + f->name_len + 1;
	f->value_len = f->len - f->name_len - 1;
	while (f->value_len > 0 && (*f->value == ' ' || *f->value == '\t')) {
		f->value++;
		f->value_len--;
	}
	while (f->value_len > 0 && (f->value[f->value_len - 1] == ' ' ||
	    f->value[f->value_len - 1] == '\t'))
		f->value_len--;
	f->valid = 1;
	for (size_t i = 0; i < f->value_len; i++) {
		unsigned char	ch = (unsigned char)f->value[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			f->valid = 0;
	}
	return 1;
}

static int
proxy_field_is(const struct proxy_field *f, const char *name)
{
	return f->name_len == strlen(name) &&
	    strncasecmp(f->name, name, f->name_len) == 0;
}

/* Does a Connection field of the head name this field as hop-by-hop? */
static int
proxy_connection_names(const struct buf *head, const struct proxy_field *f)
{
	struct proxy_field	 c;
	size_t			 pos = 0;

	while (proxy_next_field(head, &pos, &c)) {
		const char	*v = c.value, *vend = c.value + c.value_len;

		if (!c.valid || !proxy_field_is(&c, "connection"))
			continue;
		while (v < vend) {
			size_t	tok = 0;

			while (v < vend && (*v == ' ' || *v == '\t' || *v == ','))
				v++;
			while (v + tok < vend && v[tok] != ',' && v[tok] != ' ' &&
			    v[tok] != '\t')
				tok++;
			if (tok == f->name_len &&
			    strncasecmp(v, f->name, tok) == 0)
				return 1;
			v += tok;
		}
	}
	return 0;
}

/*
 * Judge a complete response head as RFC 9112 section 6.3 asks and keep
 * what may reach the client. A head whose framing a client could read
 * differently from libcurl is refused: Transfer-Encoding together with
 * Content-Length, lengths that disagree or are not plain numbers, or a
 * framing field folded over lines. Then fields that are no fields (a
 * name that is not a token, a value with control bytes, folded lines)
 * are dropped, and so are hop-by-hop ones. The backend's length is kept
 * only when the body reaches the client byte for byte; a body the
 * gateway may rewrite is framed anew. pr->head then holds the fields to
 * relay, each ending in CRLF.
 */
static int
proxy_judge_head(struct proxy_req *pr)
{
	struct proxy_field	 f, prev;
	struct buf		 out;
	size_t			 pos = 0, next;
	uint64_t		 length = 0;
	int			 te = 0, lengths = 0, rewrite, nfields = 0;
	int			 hop = 0;

	memset(&prev, 0, sizeof prev);
	while (proxy_next_field(&pr->head, &pos, &f)) {
		if (++nfields > PROXY_HEAD_FIELDS) {
			pr->refused = "a response head with over 100 fields";
			return -1;
		}
		if (f.fold) {
			if ((proxy_field_is(&prev, "content-length") ||
			    proxy_field_is(&prev, "transfer-encoding"))) {
				pr->refused = "an ambiguous response (a folded "
				    "framing header)";
				return -1;
			}
			continue;
		}
		prev = f;
		if (f.valid && proxy_field_is(&f, "connection"))
			hop = 1;
		if (proxy_field_is(&f, "transfer-encoding"))
			te = 1;
		else if (proxy_field_is(&f, "content-length")) {
			uint64_t	n = 0;

			if (f.value_len == 0 || f.value_len > 18) {
				pr->refused = "an ambiguous response (an invalid "
				    "Content-Length)";
				return -1;
			}
			for (size_t i = 0; i < f.value_len; i++) {
				if (f.value[i] < '0' || f.value[i] > '9') {
					pr->refused = "an ambiguous response (an "
					    "invalid Content-Length)";
					return -1;
				}
				n = n * 10 + (uint64_t)(f.value[i] - '0');
			}
			if (lengths++ > 0 && n != length) {
				pr->refused = "an ambiguous response (conflicting "
				    "Content-Length values)";
				return -1;
			}
			length = n;
		} else if (f.valid && proxy_field_is(&f, "content-type")) {
			if (f.value_len >= 20 &&
			    strncasecmp(f.value, "application/x-ndjson", 20) == 0)
				pr->stream = STREAM_NDJSON;
			else if (f.value_len >= 17 &&
			    strncasecmp(f.value, "text/event-stream", 17) == 0)
				pr->stream = STREAM_SSE;
		}
	}
	if (te && lengths > 0) {
		pr->refused = "an ambiguous response (both Transfer-Encoding "
		    "and Content-Length)";
		return -1;
	}
	/* The body proxy_write_cb changes: the usage filter's. */
	rewrite = pr->status == 200 && pr->hide_usage &&
	    pr->stream == STREAM_SSE;

	buf_init(&out);
	pos = 0;
	while (proxy_next_field(&pr->head, &pos, &f)) {
		struct proxy_field	after;

		next = pos;
		if (f.fold || !f.valid)
			continue;
		/* A field folded over lines is dropped with its folds. */
		if (proxy_next_field(&pr->head, &next, &after) && after.fold)
			continue;
		if (proxy_skip_response_header(f.name, f.name_len) ||
		    (hop && proxy_connection_names(&pr->head, &f)))
			continue;
		if (proxy_field_is(&f, "content-length")) {
			if (rewrite || pr->has_length)
				continue;
			pr->has_length = 1;
		}
		buf_add(&out, f.line, f.len);
		buf_add(&out, "\r\n", 2);
	}
	buf_free(&pr->head);
	pr->head = out;
	return 0;
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
		int	hl = snprintf(hex, sizeof hex, "%zx\r\n", len);

		conn_write(c, hex, (size_t)hl);
		conn_write(c, p, len);
		conn_write(c, "\r\n", 2);
	} else
		conn_write(c, p, len);
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

static size_t
proxy_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct proxy_req	*pr = arg;
	struct conn		*c = pr->c;
	size_t			 len = size * n;

	if (c == NULL)
		return 0;
	if (len == 0)
		return 0;
	if (!pr->head_done) {
		/* A body after a 1xx head, such as libcurl passes on for 101. */
		pr->refused = "a body without a final response head";
		return 0;
	}
	if (conn_out_full(c)) {
		/* libcurl keeps these bytes and offers them again on resume. */
		pr->paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
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
	return len;
}

void
proxy_client_drained(struct proxy_req *pr, int low)
{
	if (pr->paused && low) {
		pr->paused = 0;
		pr->last_activity = loop_now();
		upstream_resume(&pr->x);
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
	upstream_abort(&pr->x);
	proxy_fail(pr, 1, CURLE_OPERATION_TIMEDOUT);
}

static void
proxy_done_cb(struct upstream_xfer *x, CURLcode rc)
{
	struct proxy_req	*pr = x->arg;

	if (rc != CURLE_OK) {
		if (proxy_retry(pr, rc))
			return;
		proxy_fail(pr, rc == CURLE_OPERATION_TIMEDOUT, rc);
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
proxy_fail(struct proxy_req *pr, int timed_out, CURLcode rc)
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
		else if (rc == CURLE_COULDNT_CONNECT ||
		    rc == CURLE_COULDNT_RESOLVE_HOST) {
			pr->outcome = BACKEND_UNREACHABLE;
			snprintf(msg, sizeof msg, "backend %s is unreachable",
			    pr->be->name);
		}
		else
			snprintf(msg, sizeof msg, "backend %s failed: %s",
			    pr->be->name, curl_easy_strerror(rc));
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
	upstream_abort(&pr->x);
	pr->c->rq.flags |= USAGE_CANCELLED;
	proxy_fail(pr, -1, CURLE_ABORTED_BY_CALLBACK);
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
	upstream_abort(&pr->x);
	proxy_free(pr);
}

/* The request's headers go; the backend's key in them is wiped first. */
static void
proxy_free_headers(struct proxy_req *pr)
{
	upstream_headers_free(pr->hdrs);
	pr->hdrs = NULL;
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
proxy_retry(struct proxy_req *pr, CURLcode rc)
{
	struct backend		*old = pr->be;
	enum backend_outcome	 o;
	struct fleet_refusal	 why;

	if (pr->attempts > 0 || pr->c == NULL || pr->head_sent ||
	    pr->bytes > 0 || pr->refused != NULL)
		return 0;
	if (pr->busy)
		o = BACKEND_FAILED;
	else if (rc == CURLE_COULDNT_CONNECT)
		o = BACKEND_UNREACHABLE;
	else if (!pr->head_done && (rc == CURLE_GOT_NOTHING ||
	    rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR))
		o = BACKEND_FAILED;
	else
		return 0;
	if (!proxy_elsewhere(pr))
		return 0;
	log_warn("request %llu: backend %s %s; trying another",
	    (unsigned long long)pr->id, old->name, pr->busy ?
	    "is busy (503)" : curl_easy_strerror(rc));
	server_stats.upstream_errors++;
	/* Its slot there frees; the ticket keeps the backend to avoid. */
	fleet_done(&pr->tk, 0, 0);
	backend_end(old, o);
	pr->tk.not = old;
	pr->be = NULL;
	pr->attempts++;
	/* The answer starts over, from the new backend. */
	upstream_easy_release(pr->x.easy);
	pr->x.easy = NULL;
	proxy_free_headers(pr);
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
	upstream_abort(&pr->x);
	proxy_free_headers(pr);
	if (pr->x.easy != NULL)
		upstream_easy_release(pr->x.easy);
	buf_free(&pr->body);
	buf_free(&pr->head);
	buf_free(&pr->event);
	fleet_cancel(&pr->tk, 0);
	fleet_done(&pr->tk, pr->outcome == BACKEND_OK && pr->status == 200 &&
	    pr->tally.done, pr->tally.load_ms);
	if (pr->tk.not != NULL)
		backend_unref(pr->tk.not);
	if (pr->be != NULL) {
		backend_end(pr->be, pr->outcome);
		backend_unref(pr->be);
	}
	enduser_unref(pr->tk.eu);
	proxy_n--;
	TAILQ_REMOVE(&proxy_live, pr, entry);
	free(pr);
}
