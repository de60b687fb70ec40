/*
 * snapshot.c: the live state of the gateway as JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth.h"
#include "backend.h"
#include "conn.h"
#include "enduser.h"
#include "gpu.h"
#include "metrics.h"
#include "models.h"
#include "proxy.h"
#include "quota.h"
#include "fleet.h"
#include "server.h"
#include "snapshot.h"
#include "usage.h"
#include "xmalloc.h"

static const char *
snapshot_backend_state(const struct backend *b)
{
	if (b->draining)
		return "draining";
	return b->unreachable || backend_down(b) ? "down" : "up";
}

json_t *
snapshot_backends(void)
{
	json_t		*list = json_array();
	struct backend	*b;

	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		json_t	*s = json_pack(
		    "{s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:o, s:o}",
		    "name", b->name, "url", b->url_shown,
		    "state", snapshot_backend_state(b),
		    "draining", b->draining,
		    "active", (json_int_t)b->active,
		    "max_concurrent", (json_int_t)b->max_concurrent,
		    "requests", (json_int_t)b->requests,
		    "failures", (json_int_t)b->failures,
		    "latency_ms", b->latency_ms >= 0 ?
		    json_integer(b->latency_ms) : json_null(),
		    "models", b->models != NULL ? json_deep_copy(b->models) :
		    json_null());

		json_t	*more = fleet_backend_json(b);

		json_object_update(s, more);
		json_decref(more);
		json_array_append_new(list, s);
	}
	return list;
}

/* A user's row, or an end user's: who, what runs and what is left. */
static json_t *
snapshot_user_row(const char *name, const char *role, int enabled,
    int64_t active, int64_t queued, const struct quota_limits *l,
    int64_t today, int64_t month)
{
	return json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I}",
	    "name", name, "role", role, "enabled", enabled,
	    "requests_active", (json_int_t)(active - queued),
	    "requests_queued", (json_int_t)queued,
	    "tokens_in_flight", (json_int_t)0,
	    "tokens_today", (json_int_t)today,
	    "tokens_this_month", (json_int_t)month,
	    "tokens_per_day", (json_int_t)l->tokens_per_day,
	    "tokens_per_month", (json_int_t)l->tokens_per_month,
	    "requests_per_minute", (json_int_t)l->requests_per_minute,
	    "max_concurrent", (json_int_t)l->max_concurrent);
}

json_t *
snapshot_user(struct auth_user *u)
{
	struct quota_limits	l;
	int64_t			today, month;

	quota_limits(u, &l);
	quota_spent(u, &today, &month);
	return snapshot_user_row(u->name, auth_role_name(u->role), u->enabled,
	    (int64_t)u->quota.active, (int64_t)u->fleet.queued, &l, today,
	    month);
}

/*
 * The end users of trusted front ends with a request in flight, as
 * users named SERVICE/END_USER: at most one a connection.
 */
static void
snapshot_end_user(struct enduser *eu, void *arg)
{
	json_t			*users = arg;
	struct auth_user	*u;
	struct quota_limits	 l;
	int64_t			 today, month;
	char			*name;

	if ((eu->quota.active <= 0 && eu->share.queued == 0) ||
	    (u = auth_user_find_id(eu->user_id)) == NULL)
		return;
	quota_end_user(eu, &l, &today, &month);
	name = xasprintf("%s/%s", u->name, eu->name);
	json_array_append_new(users, snapshot_user_row(name, "end user", 1,
	    (int64_t)eu->quota.active, (int64_t)eu->share.queued, &l, today,
	    month));
	free(name);
}

/* The entry for a model in the models object, made on first sight. */
static json_t *
snapshot_model(json_t *models, const char *name)
{
	json_t	*m = json_object_get(models, name);

	if (m == NULL) {
		m = json_pack("{s:s, s:I, s:I, s:I, s:I, s:[], s:I}",
		    "name", name, "requests_active", (json_int_t)0,
		    "requests_total", (json_int_t)0, "prompt_tokens",
		    (json_int_t)0, "completion_tokens", (json_int_t)0,
		    "loaded_on", "vram_bytes", (json_int_t)0);
		json_object_set_new(models, name, m);
	}
	return m;
}

static void
snapshot_add(json_t *m, const char *key, json_int_t n)
{
	json_object_set_new(m, key, json_integer(json_integer_value(
	    json_object_get(m, key)) + n));
}

static void
snapshot_model_totals(const char *name, const struct metrics_totals *t,
    void *arg)
{
	json_t	*m = snapshot_model(arg, name);

	snapshot_add(m, "requests_total", (json_int_t)t->requests);
	snapshot_add(m, "prompt_tokens", (json_int_t)t->prompt_tokens);
	snapshot_add(m, "completion_tokens", (json_int_t)t->completion_tokens);
}

/*
 * Models: what finished requests used, what is running now, and where
 * each is loaded, in order of first sight (ogtop sorts them).
 */
static json_t *
snapshot_models(json_t *requests)
{
	json_t		*models = json_object(), *r, *m, *list;
	struct backend	*b;
	const char	*name;
	size_t		 i;

	metrics_models(snapshot_model_totals, models);
	json_array_foreach(requests, i, r) {
		if ((name = json_string_value(json_object_get(r, "model"))) !=
		    NULL)
			snapshot_add(snapshot_model(models, models_label(name)),
			    "requests_active", 1);
	}
	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		json_array_foreach(b->models, i, r) {
			if ((name = json_string_value(json_object_get(r,
			    "name"))) == NULL)
				continue;
			m = snapshot_model(models, name);
			json_array_append_new(json_object_get(m, "loaded_on"),
			    json_string(b->name));
			snapshot_add(m, "vram_bytes", json_integer_value(
			    json_object_get(r, "vram_bytes")));
		}
	}
	list = json_array();
	json_object_foreach(models, name, m)
		json_array_append(list, m);
	json_decref(models);
	return list;
}

json_t *
snapshot_json(void)
{
	const struct metrics_totals	*t = metrics_totals();
	json_t				*requests = proxy_list_json();
	json_t				*users = json_array(), *r;
	json_t				*byname = json_object();
	struct auth_user		*u;
	json_int_t			 out = (json_int_t)t->completion_tokens;
	size_t				 i;

	for (u = auth_user_first(); u != NULL; u = auth_user_next(u))
		json_array_append_new(users, snapshot_user(u));
	enduser_foreach(snapshot_end_user, users);
	json_array_foreach(users, i, r)
		json_object_set(byname, json_string_value(json_object_get(r,
		    "name")), r);
	/*
	 * Tokens so far of requests in flight count as they arrive, in the
	 * totals and for their user, whose quota they will be charged to.
	 */
	json_array_foreach(requests, i, r) {
		json_int_t	 n = json_integer_value(json_object_get(r,
				    "tokens_out"));
		const char	*name = json_string_value(json_object_get(r,
				    "user"));
		const char	*eu = json_string_value(json_object_get(r,
				    "end_user"));
		json_t		*su;
		char		*full;

		out += n;
		if (name != NULL && (su = json_object_get(byname, name)) != NULL)
			snapshot_add(su, "tokens_in_flight", n);
		if (name == NULL || eu == NULL)
			continue;
		full = xasprintf("%s/%s", name, eu);
		if ((su = json_object_get(byname, full)) != NULL)
			snapshot_add(su, "tokens_in_flight", n);
		free(full);
	}
	json_decref(byname);
	return json_pack("{s:s, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I}, s:o, s:o, s:o, s:o, s:o, s:o}",
	    "version", PACKAGE_VERSION,
	    "uptime_s", (json_int_t)server_uptime(),
	    "totals",
	    "connections", (json_int_t)conn_count(),
	    "requests_active", (json_int_t)proxy_active(),
	    "requests_queued", (json_int_t)fleet_queued(),
	    "requests_total", (json_int_t)t->requests,
	    "errors_total", (json_int_t)t->errors,
	    "prompt_tokens_total", (json_int_t)t->prompt_tokens,
	    "tokens_out_total", out,
	    "end_users", (json_int_t)enduser_count(),
	    "requests", requests,
	    "users", users,
	    "backends", snapshot_backends(),
	    "models", snapshot_models(requests),
	    "gpus", gpu_json(),
	    "usage_store", usage_state_json());
}
