/*
 * request.c: one request, from its authentication to its usage row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "loop.h"
#include "metrics.h"
#include "quota.h"
#include "request.h"
#include "router.h"
#include "server.h"
#include "usage.h"

void
request_clear(struct request *rq)
{
	if (rq->user != NULL)
		auth_user_unref(rq->user);
	free(rq->model);
	free(rq->backend);
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
	if (rq->admitted)
		quota_settle(rq->user, rq->reserved,
		    r.prompt_tokens + r.completion_tokens);
	else
		quota_count(rq->user, r.prompt_tokens + r.completion_tokens);
	request_clear(rq);
}
