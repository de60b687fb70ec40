/*
 * request.c: one request, from its authentication to its usage row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "enduser.h"
#include "http.h"
#include "loop.h"
#include "metrics.h"
#include "quota.h"
#include "request.h"
#include "router.h"
#include "server.h"
#include "usage.h"
#include "xmalloc.h"

void
request_clear(struct request *rq)
{
	if (rq->user != NULL)
		auth_user_unref(rq->user);
	free(rq->model);
	free(rq->backend);
	free(rq->end_user);
	enduser_unwait(rq);
	enduser_unref(rq->eu);
	memset(rq, 0, sizeof *rq);
	rq->ttft_ms = -1;
}

void
request_begin(struct request *rq)
{
	request_clear(rq);
	rq->start_ms = server_now_ms();
	rq->start_mono = loop_now();
}

/*
 * A front end that calls with one key for all its users may say which
 * of them a request is for ([server] end_user_header), but it is
 * believed only of a user flagged trust_end_user; from anyone else the
 * header means nothing. The name is kept as it came, if it is one line
 * of at most REQUEST_END_USER_MAX bytes of printable text; anything
 * else is refused, since a row must not name someone it cannot show.
 */
static int
request_end_user(struct request *rq, const struct http_request *req,
    const struct auth_user *u, char *msg, size_t msgsize)
{
	const char			*name = server_cfg->end_user_header;
	const struct http_header	*h;

	if (name == NULL || !u->trust_end_user ||
	    (h = http_find_header(req, name)) == NULL)
		return 0;
	if (h->value_len == 0 || h->value_len > REQUEST_END_USER_MAX) {
		snprintf(msg, msgsize, "%s must be 1 to %d bytes", name,
		    REQUEST_END_USER_MAX);
		return -1;
	}
	for (size_t i = 0; i < h->value_len; i++) {
		if ((unsigned char)h->value[i] < 0x20 ||
		    (unsigned char)h->value[i] == 0x7f) {
			snprintf(msg, msgsize, "%s holds a control character",
			    name);
			return -1;
		}
	}
	rq->end_user = xstrdup(h->value);
	rq->eu = enduser_get(u, rq->end_user);
	return 0;
}

int
request_authenticate(struct request *rq, const struct http_request *req,
    const struct route *r, char *msg, size_t msgsize)
{
	struct auth_result	res;

	auth_check(req, &res);
	if (res.status != 0) {
		server_stats.unauthorised++;
		snprintf(msg, msgsize, "%s", res.message);
		return 401;
	}
	if (!auth_role_allows(res.user->role, r)) {
		snprintf(msg, msgsize, "the %s role may not use %s",
		    auth_role_name(res.user->role), r->endpoint);
		return 403;
	}
	if (request_end_user(rq, req, res.user, msg, msgsize) != 0)
		return 400;
	rq->user = res.user;
	auth_user_ref(rq->user);
	rq->token_id = res.token->id;
	rq->active = 1;
	return 0;
}

void
request_end(struct request *rq, const struct route *route, int status,
    const char *client)
{
	struct usage_row	r;
	int64_t			used;

	if (!rq->active || rq->user == NULL) {
		request_clear(rq);
		return;
	}
	memset(&r, 0, sizeof r);
	r.time_ms = rq->start_ms;
	r.user_id = rq->user->id;
	r.token_id = rq->token_id;
	r.model = rq->model;
	r.endpoint = route != NULL ? route->endpoint : "unknown";
	r.backend = rq->backend;
	r.end_user = rq->end_user;
	r.status = status;
	r.prompt_tokens = rq->prompt_tokens;
	r.completion_tokens = rq->completion_tokens;
	r.ttft_ms = rq->ttft_ms;
	r.duration_ms = (int64_t)(loop_now() - rq->start_mono);
	r.bytes = rq->bytes;
	snprintf(r.client, sizeof r.client, "%s", client);
	r.flags = rq->flags;
	usage_record(&r);
	metrics_observe(&r, rq->user->name);
	/* An answer from the cache cost no backend work: its tokens are free. */
	used = (r.flags & USAGE_CACHED) ? 0 :
	    r.prompt_tokens + r.completion_tokens;
	if (rq->admitted)
		quota_settle(rq->user, rq->eu, rq->reserved, used);
	else
		quota_count(rq->user, rq->eu, used);
	request_clear(rq);
}
