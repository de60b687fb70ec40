/*
 * admin.c: the admin API on the Unix socket.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "admin.h"
#include "alert.h"
#include "auth.h"
#include "backend.h"
#include "cache.h"
#include "config.h"
#include "conn.h"
#include "escape.h"
#include "gpu.h"
#include "log.h"
#include "manage.h"
#include "metrics.h"
#include "models.h"
#include "parse.h"
#include "probe.h"
#include "proxy.h"
#include "quota.h"
#include "reply.h"
#include "router.h"
#include "fleet.h"
#include "server.h"
#include "snapshot.h"
#include "store.h"
#include "usage.h"
#include "xmalloc.h"

#define M(m)	(1u << (m))

/* The route part of an admin table entry; errors are in Ollama's dialect. */
#define ROUTE(p, m, f, e)	{ .path = (p), .methods = (m), \
				.dialect = DIALECT_OLLAMA, .flags = (f), \
				.endpoint = (e) }

/*
 * An admin route is a struct route and the function that serves it, as
 * a tmux cmd_entry holds its exec. The route comes first, so that
 * router_match_table() walks this table with its stride as it walks the
 * public one, and the struct route it returns (c->route) is the start
 * of the admin route around it. The handler is not a member of struct
 * route itself: every public route would leave it NULL (their requests
 * all go to proxy_start()), and router.h would have to know the JSON
 * body the admin handlers take.
 *
 * Where a path does different things by method, each method is an
 * entry of its own with its own handler; the router still answers 405
 * with every method of the path in Allow, as it gathers them from all
 * the entries with that path.
 */
struct admin_route {
	struct route	  route;
	/* Serve the request; body is its JSON object, borrowed. */
	void		(*serve)(struct conn *, json_t *body);
};

static void	admin_status(struct conn *, json_t *);
static void	admin_users_list(struct conn *, json_t *);
static void	admin_users_add(struct conn *, json_t *);
static void	admin_user_show(struct conn *, json_t *);
static void	admin_user_set(struct conn *, json_t *);
static void	admin_user_delete(struct conn *, json_t *);
static void	admin_tokens_list(struct conn *, json_t *);
static void	admin_tokens_create(struct conn *, json_t *);
static void	admin_token_revoke(struct conn *, json_t *);
static void	admin_reload(struct conn *, json_t *);
static void	admin_usage(struct conn *, json_t *);
static void	admin_requests(struct conn *, json_t *);
static void	admin_request_cancel(struct conn *, json_t *);
static void	admin_snapshot(struct conn *, json_t *);
static void	admin_backends(struct conn *, json_t *);
static void	admin_backend_set(struct conn *, json_t *);
static void	admin_gpu(struct conn *, json_t *);
static void	admin_model_pull(struct conn *, json_t *);
static void	admin_metrics(struct conn *, json_t *);
static void	admin_alerts(struct conn *, json_t *);
static void	admin_alert_test(struct conn *, json_t *);
static void	admin_cache(struct conn *, json_t *);
static void	admin_cache_clear(struct conn *, json_t *);

static const struct admin_route admin_routes[] = {
	{ ROUTE("/admin/v1/status", M(HTTP_GET), 0, "admin/status"),
	    admin_status },
	{ ROUTE("/admin/v1/users", M(HTTP_GET), 0, "admin/users"),
	    admin_users_list },
	{ ROUTE("/admin/v1/users", M(HTTP_POST), 0, "admin/users"),
	    admin_users_add },
	{ ROUTE("/admin/v1/users/", M(HTTP_GET), ROUTE_PARAM, "admin/user"),
	    admin_user_show },
	{ ROUTE("/admin/v1/users/", M(HTTP_PATCH), ROUTE_PARAM, "admin/user"),
	    admin_user_set },
	{ ROUTE("/admin/v1/users/", M(HTTP_DELETE), ROUTE_PARAM, "admin/user"),
	    admin_user_delete },
	{ ROUTE("/admin/v1/tokens", M(HTTP_GET), 0, "admin/tokens"),
	    admin_tokens_list },
	{ ROUTE("/admin/v1/tokens", M(HTTP_POST), 0, "admin/tokens"),
	    admin_tokens_create },
	{ ROUTE("/admin/v1/tokens/", M(HTTP_DELETE), ROUTE_PARAM,
	    "admin/token"), admin_token_revoke },
	{ ROUTE("/admin/v1/reload", M(HTTP_POST), 0, "admin/reload"),
	    admin_reload },
	{ ROUTE("/admin/v1/usage", M(HTTP_GET), 0, "admin/usage"),
	    admin_usage },
	{ ROUTE("/admin/v1/requests", M(HTTP_GET), 0, "admin/requests"),
	    admin_requests },
	{ ROUTE("/admin/v1/requests/", M(HTTP_DELETE), ROUTE_PARAM,
	    "admin/request"), admin_request_cancel },
	{ ROUTE("/admin/v1/snapshot", M(HTTP_GET), 0, "admin/snapshot"),
	    admin_snapshot },
	{ ROUTE("/admin/v1/backends", M(HTTP_GET), 0, "admin/backends"),
	    admin_backends },
	{ ROUTE("/admin/v1/backends/", M(HTTP_PATCH), ROUTE_PARAM,
	    "admin/backend"), admin_backend_set },
	{ ROUTE("/admin/v1/gpu", M(HTTP_GET), 0, "admin/gpu"), admin_gpu },
	{ ROUTE("/admin/v1/models/pull", M(HTTP_POST), 0, "admin/models/pull"),
	    admin_model_pull },
	{ ROUTE("/admin/v1/alerts", M(HTTP_GET), 0, "admin/alerts"),
	    admin_alerts },
	{ ROUTE("/admin/v1/alerts/", M(HTTP_POST), ROUTE_PARAM, "admin/alert"),
	    admin_alert_test },
	{ ROUTE("/admin/v1/cache", M(HTTP_GET), 0, "admin/cache"),
	    admin_cache },
	{ ROUTE("/admin/v1/cache/clear", M(HTTP_POST), 0, "admin/cache/clear"),
	    admin_cache_clear },
};

/*
 * The metrics page is a table of its own: metrics_listen serves it and
 * nothing else, and the admin socket serves it beside its API.
 */
static const struct admin_route admin_metrics_routes[] = {
	{ ROUTE("/metrics", M(HTTP_GET), 0, "metrics"), admin_metrics },
};

/* How old the backends' probes may be when they are listed. */
#define ADMIN_PROBE_AGE_MS	1000

struct admin_job {
	struct store_job	 sj;
	struct conn		*c;		/* NULL once the caller is gone */
	uid_t			 uid;
	int			 method;
	struct auth_user	*user;		/* the new state of a user */
	struct auth_token	*token;		/* a token being created */
	char			 clear[AUTH_TOKEN_LEN + 1];
	int64_t			 id;		/* user or token acted on */
	char			*target;	/* for the audit log */
	char			*action;	/* an audit entry alone */
	int64_t			 now;
	/* Token last-used times to store. */
	int64_t			*used;
	size_t			 nused;
	/* A usage report. */
	int			 group;		/* 'u', 'm' or 'd' */
	int64_t			 since_ms, until_ms;
	int64_t			 user_id;	/* 0: all */
	char			*model;
	json_t			*report;
	/* A reply built once the backends' probes are in. */
	json_t			*(*build)(void);
};

static void	admin_reply(struct conn *, int, json_t *);
static void	admin_error(struct conn *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

const struct route *
admin_match(enum http_method m, const char *path, size_t len, int *status,
    unsigned *allow, int metrics_only)
{
	const struct route	*r;

	/* The metrics address serves the one page and nothing else. */
	if (!metrics_only) {
		r = router_match_table(&admin_routes[0].route,
		    sizeof admin_routes / sizeof admin_routes[0],
		    sizeof admin_routes[0], m, path, len, status, allow);
		if (r != NULL || *status != 404)
			return r;
	}
	return router_match_table(&admin_metrics_routes[0].route,
	    sizeof admin_metrics_routes / sizeof admin_metrics_routes[0],
	    sizeof admin_metrics_routes[0], m, path, len, status, allow);
}

/* Copy the path's parameter, what follows the route's prefix, into buf. */
static void
admin_param(struct conn *c, char *buf, size_t size)
{
	size_t	plen = strlen(c->route->path);

	snprintf(buf, size, "%.*s", (int)(c->req.path_len - plen),
	    c->req.path + plen);
}

/* Send a JSON document (stolen) with the status. */
static void
admin_reply(struct conn *c, int status, json_t *doc)
{
	char	*s = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY |
	    JSON_REAL_PRECISION(10));
	size_t	 len = s != NULL ? strlen(s) : 0;

	json_decref(doc);
	conn_printf(c, "HTTP/1.1 %d %s\r\n%sContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n%s\r\n", status, http_status_text(status),
	    reply_date(), len + 1, c->req.keep_alive ? "" : "Connection: close\r\n");
	conn_write(c, s != NULL ? s : "", len);
	conn_write(c, "\n", 1);
	free(s);
	conn_response_done(c);
}

static void
admin_error(struct conn *c, int status, const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	admin_reply(c, status, json_pack("{s:s}", "error", msg));
}

static json_t *
admin_time(int64_t t)
{
	char		buf[32];
	struct tm	tm;
	time_t		tt = (time_t)t;

	if (t == 0)
		return json_null();
	gmtime_r(&tt, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

static json_t *
admin_limit(int64_t v)
{
	return v == AUTH_UNSET ? json_null() : json_integer(v);
}

static json_t *
admin_user_json(const struct auth_user *u)
{
	json_t	*models = json_array();
	char	*copy = xstrdup(u->models), *tok, *save = NULL;

	for (tok = strtok_r(copy, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save))
		json_array_append_new(models, json_string(tok));
	free(copy);
	return json_pack("{s:I, s:s, s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
	    "s:o, s:b}",
	    "id", (json_int_t)u->id, "name", u->name,
	    "role", auth_role_name(u->role), "enabled", u->enabled,
	    "models", models, "priority", admin_limit(u->priority),
	    "tokens_per_day", admin_limit(u->tokens_per_day),
	    "tokens_per_month", admin_limit(u->tokens_per_month),
	    "requests_per_minute", admin_limit(u->requests_per_minute),
	    "max_concurrent", admin_limit(u->max_concurrent),
	    "max_queued", admin_limit(u->max_queued),
	    "created", admin_time(u->created),
	    "trust_end_user", u->trust_end_user);
}

static json_t *
admin_token_json(const struct auth_token *t)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:o, s:o}",
	    "id", (json_int_t)t->id, "user", t->user->name, "name", t->label,
	    "prefix", t->prefix, "created", admin_time(t->created),
	    "expires", admin_time(t->expires), "revoked", admin_time(t->revoked),
	    "last_used", admin_time(t->last_used));
}

static void
admin_job_free(struct admin_job *j)
{
	if (j->user != NULL) {
		j->user->refs = 1;
		auth_user_unref(j->user);
	}
	if (j->token != NULL) {
		free(j->token->label);
		free(j->token);
	}
	explicit_bzero(j->clear, sizeof j->clear);
	free(j->target);
	free(j->action);
	free(j->used);
	free(j->model);
	json_decref(j->report);
	free(j->sj.error);
	free(j);
}

void
admin_client_gone(struct admin_job *j)
{
	j->c = NULL;
}

static struct admin_job *
admin_job_new(struct conn *c, int (*run)(sqlite3 *, struct store_job *),
    void (*done)(struct store_job *))
{
	struct admin_job	*j = xcalloc(1, sizeof *j);

	j->sj.run = run;
	j->sj.done = done;
	j->sj.arg = j;
	j->c = c;
	j->uid = c != NULL ? c->uid : 0;
	j->now = (int64_t)time(NULL);
	if (c != NULL) {
		j->method = c->req.method;
		c->admin_job = j;
	}
	return j;
}

/* The job's connection, detached, or NULL if the caller left. */
static struct conn *
admin_job_conn(struct admin_job *j)
{
	struct conn	*c = j->c;

	if (c != NULL)
		c->admin_job = NULL;
	return c;
}

static int
admin_audit(sqlite3 *db, struct admin_job *j, const char *action,
    const char *detail)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(db, "INSERT INTO audit (time, uid, action, "
	    "target, detail) VALUES (?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, j->now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)j->uid);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, j->target ? j->target : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, detail ? detail : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * A change that could not be committed is answered as such, in one line
 * saying why (a full disk is 503: it may work later), and the caller
 * applies nothing of it.
 */
static void
admin_commit_fail(sqlite3 *db, struct admin_job *j)
{
	switch (sqlite3_errcode(db)) {
	case SQLITE_FULL:
	case SQLITE_READONLY:
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		store_job_fail(&j->sj, 503, "not saved: the database is not "
		    "writable (%s)", store_reason(db));
		break;
	default:
		store_job_fail(&j->sj, 500, "not saved: database: %s",
		    sqlite3_errmsg(db));
		break;
	}
	store_rollback(db);
}

/*
 * Run one statement and its audit entry in a transaction. The statement
 * is prepared by the caller; it is finalised here.
 */
static int
admin_commit(sqlite3 *db, struct admin_job *j, sqlite3_stmt *st,
    const char *action, const char *detail)
{
	int	rc;

	store_rollback(db);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		admin_commit_fail(db, j);
		sqlite3_finalize(st);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		if (rc == SQLITE_CONSTRAINT) {
			store_job_fail(&j->sj, 409, "%s conflicts with an existing "
			    "entry", j->target);
			store_rollback(db);
		} else
			admin_commit_fail(db, j);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	j->id = j->id != 0 ? j->id : sqlite3_last_insert_rowid(db);
	if (admin_audit(db, j, action, detail) != 0 ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		admin_commit_fail(db, j);
		return -1;
	}
	return 0;
}

/* Apply a JSON object of user fields; 0 or -1 with the reply sent. */
static int
admin_user_fields(struct conn *c, json_t *body, struct auth_user *u)
{
	/* The same bounds as the config's [defaults]. */
	static const struct {
		const char	*name;
		size_t		 offset;
		json_int_t	 max;
	} limits[] = {
		{ "priority", offsetof(struct auth_user, priority), 1000 },
		{ "tokens_per_day", offsetof(struct auth_user, tokens_per_day),
		    INT64_MAX },
		{ "tokens_per_month", offsetof(struct auth_user, tokens_per_month),
		    INT64_MAX },
		{ "requests_per_minute",
		    offsetof(struct auth_user, requests_per_minute), INT64_MAX },
		{ "max_concurrent", offsetof(struct auth_user, max_concurrent),
		    1000000 },
		{ "max_queued", offsetof(struct auth_user, max_queued),
		    1000000 },
	};
	const char	*key;
	json_t		*v;

	json_object_foreach(body, key, v) {
		size_t	i;

		if (strcmp(key, "name") == 0)
			continue;
		if (strcmp(key, "role") == 0) {
			if (!json_is_string(v) ||
			    auth_role_parse(json_string_value(v), &u->role) != 0) {
				admin_error(c, 400, "role must be admin, user or "
				    "readonly");
				return -1;
			}
			continue;
		}
		if (strcmp(key, "trust_end_user") == 0) {
			if (!json_is_boolean(v)) {
				admin_error(c, 400, "trust_end_user must be true "
				    "or false");
				return -1;
			}
			u->trust_end_user = json_is_true(v);
			continue;
		}
		if (strcmp(key, "enabled") == 0) {
			if (!json_is_boolean(v)) {
				admin_error(c, 400, "enabled must be true or false");
				return -1;
			}
			u->enabled = json_is_true(v);
			continue;
		}
		if (strcmp(key, "models") == 0) {
			struct buf	b;
			size_t		idx;
			json_t		*m;

			if (!json_is_array(v)) {
				admin_error(c, 400, "models must be an array of "
				    "patterns");
				return -1;
			}
			buf_init(&b);
			json_array_foreach(v, idx, m) {
				const char	*p = json_string_value(m);

				if (p == NULL || parse_model_pattern(p) != 0) {
					buf_free(&b);
					admin_error(c, 400, "models: a pattern holds "
					    "only " PARSE_MODEL_PATTERN_HELP);
					return -1;
				}
				buf_printf(&b, "%s%s", idx ? "," : "", p);
			}
			auth_user_set_models(u, buf_used(&b) ? buf_cstr(&b) : "");
			buf_free(&b);
			continue;
		}
		for (i = 0; i < sizeof limits / sizeof limits[0]; i++) {
			if (strcmp(key, limits[i].name) == 0)
				break;
		}
		if (i == sizeof limits / sizeof limits[0]) {
			admin_error(c, 400, "unknown field %s", key);
			return -1;
		}
		if (json_is_null(v))
			*(int64_t *)((char *)u + limits[i].offset) = AUTH_UNSET;
		else if (json_is_integer(v) && json_integer_value(v) >= 0 &&
		    json_integer_value(v) <= limits[i].max)
			*(int64_t *)((char *)u + limits[i].offset) =
			    json_integer_value(v);
		else {
			admin_error(c, 400, "%s must be an integer from 0 to %lld, "
			    "or null", key, (long long)limits[i].max);
			return -1;
		}
	}
	return 0;
}

static struct auth_user *
admin_user_copy(const struct auth_user *o)
{
	struct auth_user	*u = xcalloc(1, sizeof *u);

	u->id = o->id;
	u->name = xstrdup(o->name);
	u->created = o->created;
	auth_user_copy_fields(u, o);
	return u;
}

static int
admin_user_save_run(sqlite3 *db, struct store_job *sj)
{
	struct admin_job	*j = sj->arg;
	struct auth_user	*u = j->user;
	sqlite3_stmt		*st;
	const char		*sql;
	int			 create = u->id == 0;

	sql = create ?
	    "INSERT INTO users (role, enabled, models, priority, tokens_per_day, "
	    "tokens_per_month, requests_per_minute, max_concurrent, created, "
	    "max_queued, trust_end_user, name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?)" :
	    "UPDATE users SET role = ?, enabled = ?, models = ?, priority = ?, "
	    "tokens_per_day = ?, tokens_per_month = ?, requests_per_minute = ?, "
	    "max_concurrent = ?, created = ?, max_queued = ?, "
	    "trust_end_user = ? WHERE name = ?";
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		store_job_fail(sj, 500, "database: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_text(st, 1, auth_role_name(u->role), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, u->enabled);
	sqlite3_bind_text(st, 3, u->models, -1, SQLITE_STATIC);
	store_bind_int(st, 4, u->priority, AUTH_UNSET);
	store_bind_int(st, 5, u->tokens_per_day, AUTH_UNSET);
	store_bind_int(st, 6, u->tokens_per_month, AUTH_UNSET);
	store_bind_int(st, 7, u->requests_per_minute, AUTH_UNSET);
	store_bind_int(st, 8, u->max_concurrent, AUTH_UNSET);
	sqlite3_bind_int64(st, 9, u->created);
	store_bind_int(st, 10, u->max_queued, AUTH_UNSET);
	sqlite3_bind_int(st, 11, u->trust_end_user);
	sqlite3_bind_text(st, 12, u->name, -1, SQLITE_STATIC);
	j->id = u->id;
	if (admin_commit(db, j, st, create ? "user add" : "user set",
	    auth_role_name(u->role)) != 0)
		return -1;
	u->id = j->id;
	return 0;
}

static void
admin_user_save_done(struct store_job *sj)
{
	struct admin_job	*j = sj->arg;
	struct conn		*c = admin_job_conn(j);
	int			 create = j->method == HTTP_POST;

	if (sj->error == NULL) {
		struct auth_user	*u = j->user;

		j->user = NULL;
		log_info("admin uid %u: %s user %s", (unsigned)j->uid,
		    create ? "added" : "changed", u->name);
		auth_user_put(u);
		if (c != NULL) {
			u = auth_user_find_id(j->id);
			admin_reply(c, create ? 201 : 200, admin_user_json(u));
		}
	} else if (c != NULL)
		admin_error(c, sj->status, "%s", sj->error);
	admin_job_free(j);
}

static void
admin_user_delete_done(struct store_job *sj)
{
	struct admin_job	*j = sj->arg;
	struct conn		*c = admin_job_conn(j);
	struct auth_user	*u;

	if (sj->error == NULL) {
		if ((u = auth_user_find_id(j->id)) != NULL)
			auth_user_remove(u);
		log_info("admin uid %u: deleted user %s", (unsigned)j->uid,
		    j->target);
		if (c != NULL)
			admin_reply(c, 200, json_pack("{s:s}", "deleted",
			    j->target));
	} else if (c != NULL)
		admin_error(c, sj->status, "%s", sj->error);
	admin_job_free(j);
}

static int
admin_user_delete_run(sqlite3 *db, struct store_job *sj)
{
	struct admin_job	*j = sj->arg;
	sqlite3_stmt		*st;

	if (sqlite3_prepare_v2(db, "DELETE FROM users WHERE id = ?", -1, &st,
	    NULL) != SQLITE_OK) {
		store_job_fail(sj, 500, "database: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, j->id);
	return admin_commit(db, j, st, "user delete", "");
}

static void
admin_users_list(struct conn *c, json_t *body)
{
	struct auth_user	*u;
	json_t			*list = json_array();

	for (u = auth_user_first(); u != NULL; u = auth_user_next(u))
		json_array_append_new(list, admin_user_json(u));
	admin_reply(c, 200, list);
}

static void
admin_users_add(struct conn *c, json_t *body)
{
	struct auth_user	*u;
	struct admin_job	*j;
	const char		*name;

	name = json_string_value(json_object_get(body, "name"));
	if (name == NULL || parse_user_name(name) != 0) {
		admin_error(c, 400, "name must be " PARSE_USER_NAME_HELP);
		return;
	}
	if (auth_user_find(name) != NULL) {
		admin_error(c, 409, "user %s already exists", name);
		return;
	}
	u = xcalloc(1, sizeof *u);
	u->name = xstrdup(name);
	u->role = ROLE_USER;
	u->enabled = 1;
	auth_user_set_models(u, "");
	u->priority = u->tokens_per_day = u->tokens_per_month =
	    u->requests_per_minute = u->max_concurrent = u->max_queued =
	    AUTH_UNSET;
	u->created = (int64_t)time(NULL);
	if (admin_user_fields(c, body, u) != 0) {
		u->refs = 1;
		auth_user_unref(u);
		return;
	}
	j = admin_job_new(c, admin_user_save_run, admin_user_save_done);
	j->user = u;
	j->target = xstrdup(u->name);
	store_submit(&j->sj);
}

/* The user the path names (copied into name), or NULL with 404 sent. */
static struct auth_user *
admin_user_param(struct conn *c, char *name, size_t size)
{
	struct auth_user	*u;

	admin_param(c, name, size);
	if ((u = auth_user_find(name)) == NULL)
		admin_error(c, 404, "no user %s", name);
	return u;
}

static void
admin_user_show(struct conn *c, json_t *body)
{
	struct auth_user	*u;
	char			 name[128];
	json_t			*doc;
	int64_t			 today, month;

	if ((u = admin_user_param(c, name, sizeof name)) == NULL)
		return;
	doc = admin_user_json(u);
	/* Use against quota, from the in-memory counters. */
	quota_spent(u, &today, &month);
	json_object_set_new(doc, "tokens_today", json_integer(today));
	json_object_set_new(doc, "tokens_this_month", json_integer(month));
	json_object_set_new(doc, "requests_active",
	    json_integer(u->quota.active - (int64_t)u->fleet.queued));
	json_object_set_new(doc, "requests_queued",
	    json_integer((json_int_t)u->fleet.queued));
	admin_reply(c, 200, doc);
}

static void
admin_user_set(struct conn *c, json_t *body)
{
	struct auth_user	*u, *nu;
	struct admin_job	*j;
	char			 name[128];
	json_t			*n;

	if ((u = admin_user_param(c, name, sizeof name)) == NULL)
		return;
	nu = admin_user_copy(u);
	n = json_object_get(body, "name");
	if (n != NULL && (!json_is_string(n) ||
	    strcmp(json_string_value(n), name) != 0)) {
		nu->refs = 1;
		auth_user_unref(nu);
		admin_error(c, 400, "a user cannot be renamed");
		return;
	}
	if (admin_user_fields(c, body, nu) != 0) {
		nu->refs = 1;
		auth_user_unref(nu);
		return;
	}
	j = admin_job_new(c, admin_user_save_run, admin_user_save_done);
	j->user = nu;
	j->target = xstrdup(name);
	store_submit(&j->sj);
}

static void
admin_user_delete(struct conn *c, json_t *body)
{
	struct auth_user	*u;
	struct admin_job	*j;
	char			 name[128];

	if ((u = admin_user_param(c, name, sizeof name)) == NULL)
		return;
	j = admin_job_new(c, admin_user_delete_run, admin_user_delete_done);
	j->id = u->id;
	j->target = xstrdup(name);
	store_submit(&j->sj);
}

static int
admin_token_create_run(sqlite3 *db, struct store_job *sj)
{
	struct admin_job	*j = sj->arg;
	struct auth_token	*t = j->token;
	sqlite3_stmt		*st;

	if (sqlite3_prepare_v2(db, "INSERT INTO tokens (user_id, label, hash, "
	    "prefix, created, expires) VALUES (?, ?, ?, ?, ?, ?)", -1, &st,
	    NULL) != SQLITE_OK) {
		store_job_fail(sj, 500, "database: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, t->user->id);
	sqlite3_bind_text(st, 2, t->label, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, t->hash, AUTH_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, t->prefix, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, t->created);
	store_bind_int(st, 6, t->expires, 0);
	if (admin_commit(db, j, st, "token create", t->label) != 0)
		return -1;
	t->id = j->id;
	return 0;
}

static void
admin_token_create_done(struct store_job *sj)
{
	struct admin_job	*j = sj->arg;
	struct conn		*c = admin_job_conn(j);
	struct auth_user	*u;

	u = j->token != NULL ? auth_user_find_id(j->token->user->id) : NULL;
	if (sj->error == NULL && u != NULL) {
		struct auth_token	*t = j->token;
		json_t			*doc;

		j->token = NULL;
		auth_user_unref(t->user);	/* the job's reference */
		t->user = u;
		auth_token_add(t);
		log_info("admin uid %u: created token %lld (%s) for %s",
		    (unsigned)j->uid, (long long)t->id, t->prefix, u->name);
		if (c != NULL) {
			doc = admin_token_json(t);
			json_object_set_new(doc, "token", json_string(j->clear));
			admin_reply(c, 201, doc);
		}
	} else if (c != NULL)
		admin_error(c, sj->status ? sj->status : 404, "%s",
		    sj->error ? sj->error : "the user was deleted");
	if (j->token != NULL)
		auth_user_unref(j->token->user);
	admin_job_free(j);
}

static int
admin_token_revoke_run(sqlite3 *db, struct store_job *sj)
{
	struct admin_job	*j = sj->arg;
	sqlite3_stmt		*st;

	if (sqlite3_prepare_v2(db, "UPDATE tokens SET revoked = ? WHERE id = ?",
	    -1, &st, NULL) != SQLITE_OK) {
		store_job_fail(sj, 500, "database: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, j->now);
	sqlite3_bind_int64(st, 2, j->id);
	return admin_commit(db, j, st, "token revoke", "");
}

static void
admin_token_revoke_done(struct store_job *sj)
{
	struct admin_job	*j = sj->arg;
	struct conn		*c = admin_job_conn(j);
	struct auth_token	*t = auth_token_find_id(j->id);

	if (sj->error == NULL && t != NULL) {
		t->revoked = j->now;
		log_info("admin uid %u: revoked token %lld (%s) of %s",
		    (unsigned)j->uid, (long long)t->id, t->prefix, t->user->name);
		if (c != NULL)
			admin_reply(c, 200, admin_token_json(t));
	} else if (c != NULL)
		admin_error(c, sj->status ? sj->status : 404, "%s",
		    sj->error ? sj->error : "no such token");
	admin_job_free(j);
}

static void
admin_tokens_list(struct conn *c, json_t *body)
{
	struct auth_token	*t;
	json_t			*list;
	const char		*q = c->req.query;
	char			 want[80] = "";

	/* ?user=NAME is the one filter. */
	if (q != NULL && strncmp(q, "user=", 5) == 0)
		snprintf(want, sizeof want, "%.*s", (int)strcspn(q + 5, "&"),
		    q + 5);
	if (*want != '\0' && auth_user_find(want) == NULL) {
		admin_error(c, 404, "no user %s", want);
		return;
	}
	list = json_array();
	for (t = auth_token_first(); t != NULL; t = auth_token_next(t)) {
		if (*want == '\0' || strcmp(t->user->name, want) == 0)
			json_array_append_new(list, admin_token_json(t));
	}
	admin_reply(c, 200, list);
}

static void
admin_tokens_create(struct conn *c, json_t *body)
{
	struct auth_user	*u;
	struct auth_token	*t;
	struct admin_job	*j;
	const char		*name, *label;
	json_t			*exp;

	name = json_string_value(json_object_get(body, "user"));
	if (name == NULL || (u = auth_user_find(name)) == NULL) {
		admin_error(c, 404, "no user %s", name ? name : "(none given)");
		return;
	}
	label = json_string_value(json_object_get(body, "name"));
	if (label != NULL && (strlen(label) > 128 ||
	    strpbrk(label, "\r\n\t") != NULL)) {
		admin_error(c, 400, "name must be at most 128 characters on one "
		    "line");
		return;
	}
	exp = json_object_get(body, "expires_in");
	if (exp != NULL && !json_is_null(exp) && (!json_is_integer(exp) ||
	    json_integer_value(exp) <= 0)) {
		admin_error(c, 400, "expires_in must be a positive number of "
		    "seconds");
		return;
	}
	j = admin_job_new(c, admin_token_create_run, admin_token_create_done);
	t = xcalloc(1, sizeof *t);
	t->user = u;
	auth_user_ref(u);
	t->label = xstrdup(label != NULL ? label : "");
	t->created = j->now;
	if (exp != NULL && json_is_integer(exp))
		t->expires = j->now + json_integer_value(exp);
	auth_token_generate(j->clear, t->hash);
	snprintf(t->prefix, sizeof t->prefix, "%.*s", AUTH_DISPLAY_LEN, j->clear);
	j->token = t;
	j->target = xstrdup(u->name);
	store_submit(&j->sj);
}

static void
admin_token_revoke(struct conn *c, json_t *body)
{
	struct auth_token	*t;
	struct admin_job	*j;
	char			 idstr[32], *end;
	long long		 id;

	admin_param(c, idstr, sizeof idstr);
	id = strtoll(idstr, &end, 10);
	if (*idstr == '\0' || *end != '\0' || id <= 0 ||
	    (t = auth_token_find_id(id)) == NULL) {
		admin_error(c, 404, "no token %s", idstr);
		return;
	}
	if (t->revoked != 0) {
		/* Revoking twice is harmless and says so. */
		admin_reply(c, 200, admin_token_json(t));
		return;
	}
	j = admin_job_new(c, admin_token_revoke_run, admin_token_revoke_done);
	j->id = t->id;
	j->target = xasprintf("%lld", id);
	store_submit(&j->sj);
}

static void
admin_status(struct conn *c, json_t *body)
{
	json_t	*doc;

	doc = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:o}",
	    "version", PACKAGE_VERSION,
	    "uptime_s", (json_int_t)server_uptime(),
	    "connections", (json_int_t)conn_count(),
	    "requests_active", (json_int_t)proxy_active(),
	    "requests_total", (json_int_t)server_stats.requests,
	    "users", (json_int_t)auth_user_count(),
	    "tokens", (json_int_t)auth_token_count(),
	    "config", server_cfg->path ? server_cfg->path : "built-in defaults",
	    "backends", snapshot_backends());
	json_object_set_new(doc, "usage_store", usage_state_json());
	admin_reply(c, 200, doc);
}

/* An action that changes no table is still written to the audit log. */
static int
admin_audit_run(sqlite3 *db, struct store_job *sj)
{
	struct admin_job	*j = sj->arg;

	if (admin_audit(db, j, j->action, NULL) != 0)
		store_job_fail(sj, 500, "database: %s", sqlite3_errmsg(db));
	return 0;
}

static void
admin_audit_done(struct store_job *sj)
{
	struct admin_job	*j = sj->arg;

	/* The entry is not in the database: the log keeps what it said. */
	if (sj->error != NULL)
		log_warn("audit log: %s %s by uid %u not recorded: %s",
		    j->action, j->target, (unsigned)j->uid, sj->error);
	admin_job_free(j);
}

static void
admin_audit_later(struct conn *c, const char *action, const char *target)
{
	struct admin_job	*j = admin_job_new(NULL, admin_audit_run,
				    admin_audit_done);

	j->uid = c->uid;
	j->action = xstrdup(action);
	j->target = xstrdup(target);
	store_submit(&j->sj);
}

static void
admin_probed(void *arg)
{
	struct admin_job	*j = arg;
	struct conn		*c = admin_job_conn(j);

	if (c != NULL)
		admin_reply(c, 200, j->build());
	admin_job_free(j);
}

/* Reply with build() once no backend's probe is older than max_age_ms. */
static void
admin_after_probes(struct conn *c, uint64_t max_age_ms, json_t *(*build)(void))
{
	struct admin_job	*j = admin_job_new(c, NULL, NULL);

	j->build = build;
	if (probe_refresh(max_age_ms, admin_probed, j))
		admin_probed(j);
}

/*
 * The snapshot does not wait for probes it starts: ogtop asks often and
 * draws what the last probe saw. Only a backend never probed holds the
 * answer, so that the first screen already shows loaded models.
 */
static void
admin_snapshot(struct conn *c, json_t *body)
{
	probe_refresh(ADMIN_PROBE_AGE_MS, NULL, NULL);
	if (probe_missing())
		admin_after_probes(c, UINT64_MAX, snapshot_json);
	else
		admin_reply(c, 200, snapshot_json());
}

static void
admin_backends(struct conn *c, json_t *body)
{
	admin_after_probes(c, ADMIN_PROBE_AGE_MS, snapshot_backends);
}

/* PATCH a backend: {"draining": true} stops new requests going to it. */
static void
admin_backend_set(struct conn *c, json_t *body)
{
	struct backend	*b;
	json_t		*d = json_object_get(body, "draining");
	char		 name[128];

	admin_param(c, name, sizeof name);
	if ((b = backend_find(name)) == NULL) {
		admin_error(c, 404, "no backend %s", name);
		return;
	}
	if (!json_is_boolean(d) || json_object_size(body) != 1) {
		admin_error(c, 400, "the body must be {\"draining\": true|false}");
		return;
	}
	if (b->draining != json_is_true(d)) {
		b->draining = json_is_true(d);
		fleet_kick();
		log_info("backend %s: %s by an administrator", b->name,
		    b->draining ? "draining" : "back in service");
		admin_audit_later(c, b->draining ? "backend drain" :
		    "backend undrain", b->name);
	}
	admin_reply(c, 200, json_pack("{s:s, s:b, s:I}", "name", b->name,
	    "draining", b->draining, "active", (json_int_t)b->active));
}

static void
admin_requests(struct conn *c, json_t *body)
{
	admin_reply(c, 200, proxy_list_json());
}

static void
admin_request_cancel(struct conn *c, json_t *body)
{
	char			 id[32], *end;
	unsigned long long	 n;

	admin_param(c, id, sizeof id);
	n = strtoull(id, &end, 10);
	if (*end != '\0' || n == 0 || proxy_cancel(n) != 0)
		admin_error(c, 404, "no request %s in flight", id);
	else {
		admin_audit_later(c, "request cancel", id);
		admin_reply(c, 200, json_pack("{s:I}", "cancelled",
		    (json_int_t)n));
	}
}

static void
admin_reload(struct conn *c, json_t *body)
{
	char	*err = server_reload();

	if (err != NULL) {
		admin_error(c, 400, "%s", err);
		free(err);
	} else
		admin_reply(c, 200, json_pack("{s:b}", "reloaded", 1));
}

static void
admin_gpu(struct conn *c, json_t *body)
{
	admin_reply(c, 200, gpu_json());
}

static void
admin_alerts(struct conn *c, json_t *body)
{
	admin_reply(c, 200, alert_list_json());
}

/* POST /admin/v1/alerts/NAME {"test": true}: queue a test notice. */
static void
admin_alert_test(struct conn *c, json_t *body)
{
	char		 name[128];
	const char	*why;

	admin_param(c, name, sizeof name);
	if (!json_is_true(json_object_get(body, "test")) ||
	    json_object_size(body) != 1) {
		admin_error(c, 400, "the body must be {\"test\": true}");
		return;
	}
	if ((why = alert_test(name)) != NULL) {
		admin_error(c, strcmp(why, "no such alert") == 0 ? 404 : 503,
		    "alert %s: %s", name, why);
		return;
	}
	admin_reply(c, 202, json_pack("{s:s, s:s}", "alert", name, "test",
	    "queued"));
}

/*
 * Pull a model to one backend ({"model": M, "backend": B}) or to all
 * ({"model": M}); the progress streams back as /api/pull's does from a
 * fleet (manage.c).
 */
static void
admin_model_pull(struct conn *c, json_t *body)
{
	const char	*model = json_string_value(json_object_get(body, "model"));
	json_t		*b = json_object_get(body, "backend");
	const char	*why;

	if (model == NULL || (b != NULL && !json_is_string(b))) {
		admin_error(c, 400, "the body must be {\"model\": NAME, "
		    "\"backend\": NAME?}");
		return;
	}
	if (!models_name_valid(model, &why)) {
		admin_error(c, 400, "invalid model name: %s", why);
		return;
	}
	if (b != NULL && backend_find(json_string_value(b)) == NULL) {
		admin_error(c, 404, "no backend named '%.64s'",
		    json_string_value(b));
		return;
	}
	if (manage_pull(c, model, json_string_value(b)) != 0) {
		admin_error(c, 503, "no backend available");
		return;
	}
	admin_audit_later(c, "model pull", model);
}

static void
admin_cache(struct conn *c, json_t *body)
{
	admin_reply(c, 200, cache_stats_json());
}

/* Drop the cache's entries: all of them, or those of one model. */
static void
admin_cache_clear(struct conn *c, json_t *body)
{
	json_t		*m = json_object_get(body, "model");
	const char	*model = json_string_value(m), *why;
	uint64_t	 bytes;
	size_t		 n;

	if ((m != NULL && !json_is_string(m)) ||
	    json_object_size(body) != (m != NULL ? 1u : 0u)) {
		admin_error(c, 400, "the body must be {} or {\"model\": NAME}");
		return;
	}
	if (model != NULL && !models_name_valid(model, &why)) {
		admin_error(c, 400, "invalid model name: %s", why);
		return;
	}
	n = cache_clear(model, &bytes);
	log_info("cache: %zu entries%s%s cleared by an administrator", n,
	    model != NULL ? " of " : "", model != NULL ? model : "");
	admin_audit_later(c, "cache clear", model != NULL ? model : "*");
	admin_reply(c, 200, json_pack("{s:s?, s:I, s:I}", "model", model,
	    "cleared", (json_int_t)n, "bytes", (json_int_t)bytes));
}

static void
admin_metrics(struct conn *c, json_t *body)
{
	struct buf	page;

	buf_init(&page);
	metrics_render(&page);
	conn_printf(c, "HTTP/1.1 200 OK\r\n%sContent-Type: text/plain; "
	    "version=0.0.4; charset=utf-8\r\nContent-Length: %zu\r\n%s"
	    "\r\n", reply_date(), buf_used(&page), c->req.keep_alive ? "" :
	    "Connection: close\r\n");
	conn_write(c, buf_ptr(&page), buf_used(&page));
	buf_free(&page);
	conn_response_done(c);
}

void
admin_start(struct conn *c)
{
	const struct admin_route	*ar;
	json_t				*body;
	json_error_t			 jerr;

	/* The route came from admin_match(): it begins an admin route. */
	ar = (const struct admin_route *)c->route;

	if (buf_used(&c->body) > 0) {
		body = json_loadb(buf_ptr(&c->body), buf_used(&c->body),
		    JSON_REJECT_DUPLICATES, &jerr);
		if (body == NULL || !json_is_object(body)) {
			json_decref(body);
			admin_error(c, 400, "the body must be a JSON object");
			return;
		}
	} else
		body = json_object();
	ar->serve(c, body);
	json_decref(body);
}

/*
 * A usage report, on the store thread: the loop never waits for it.
 * The rows are found by the (user_id, time_ms) or (time_ms) index.
 */
static int
admin_usage_run(sqlite3 *db, struct store_job *sj)
{
	struct admin_job	*j = sj->arg;
	sqlite3_stmt		*st;
	const char		*key;
	char			*sql;
	int			 rc;

	/* A front end's users are NAME/END_USER; the rest, NAME. */
	key = j->group == 'm' ? "coalesce(u.model, '')" : j->group == 'd' ?
	    "strftime('%Y-%m-%d', u.time_ms / 1000, 'unixepoch')" :
	    j->group == 'e' ? "coalesce(users.name, '#' || u.user_id) || "
	    "coalesce('/' || u.end_user, '')" :
	    "coalesce(users.name, '#' || u.user_id)";
	/* Answers from the cache (flag 16) are counted apart: not charged. */
	sql = xasprintf("SELECT %s AS k, count(*), "
	    "sum(CASE WHEN u.flags & 16 THEN 0 ELSE u.prompt_tokens END), "
	    "sum(CASE WHEN u.flags & 16 THEN 0 ELSE u.completion_tokens END), "
	    "sum(CASE WHEN u.flags & 16 THEN u.prompt_tokens + "
	    "u.completion_tokens ELSE 0 END) FROM usage u LEFT JOIN users ON "
	    "users.id = u.user_id WHERE u.time_ms >= ?1 AND u.time_ms < ?2 "
	    "AND (?3 = 0 OR u.user_id = ?3) AND (?4 IS NULL OR u.model = ?4) "
	    "GROUP BY k ORDER BY k", key);
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	free(sql);
	if (rc != SQLITE_OK) {
		store_job_fail(sj, 500, "database: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, j->since_ms);
	sqlite3_bind_int64(st, 2, j->until_ms);
	sqlite3_bind_int64(st, 3, j->user_id);
	if (j->model != NULL)
		sqlite3_bind_text(st, 4, j->model, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	j->report = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char	*k = (const char *)sqlite3_column_text(st, 0);
		json_t		*name = json_string(k != NULL ? k : "");
		int64_t		 p = sqlite3_column_int64(st, 2);
		int64_t		 c = sqlite3_column_int64(st, 3);

		/*
		 * A name that is not UTF-8 (from an old database) cannot be
		 * a JSON string: its row keeps its place, with the bad bytes
		 * escaped.
		 */
		if (name == NULL) {
			char	*e = escape_string(k);

			name = json_string(e);
			free(e);
		}
		json_array_append_new(j->report, json_pack(
		    "{s:o, s:I, s:I, s:I, s:I, s:I}",
		    j->group == 'm' ? "model" : j->group == 'd' ? "day" :
		    j->group == 'e' ? "end_user" : "user",
		    name,
		    "requests", (json_int_t)sqlite3_column_int64(st, 1),
		    "prompt_tokens", (json_int_t)p,
		    "completion_tokens", (json_int_t)c,
		    "total_tokens", (json_int_t)(p + c),
		    "cached_tokens", (json_int_t)sqlite3_column_int64(st, 4)));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_job_fail(sj, 500, "database: %s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

static void
admin_usage_done(struct store_job *sj)
{
	struct admin_job	*j = sj->arg;
	struct conn		*c = admin_job_conn(j);

	if (c != NULL && sj->error == NULL) {
		admin_reply(c, 200, j->report);
		j->report = NULL;
	} else if (c != NULL)
		admin_error(c, sj->status, "%s", sj->error);
	admin_job_free(j);
}

/* The value of NAME in a query string, copied into out; 0 if absent. */
static int
admin_query(const char *q, const char *name, char *out, size_t size)
{
	size_t	n = strlen(name);

	while (q != NULL && *q != '\0') {
		size_t	len = strcspn(q, "&");

		if (len > n && strncmp(q, name, n) == 0 && q[n] == '=') {
			snprintf(out, size, "%.*s", (int)(len - n - 1), q + n + 1);
			return 1;
		}
		q += len + (q[len] == '&');
	}
	return 0;
}

static void
admin_usage(struct conn *c, json_t *body)
{
	struct admin_job	*j;
	struct auth_user	*u = NULL;
	char			 v[160];
	int			 group = 'u';
	int64_t			 since = 0, until = INT64_MAX, model_set;
	char			 model[160];

	if (admin_query(c->req.query, "group_by", v, sizeof v)) {
		if (strcmp(v, "user") != 0 && strcmp(v, "model") != 0 &&
		    strcmp(v, "day") != 0 && strcmp(v, "end_user") != 0) {
			admin_error(c, 400, "group_by must be user, end_user, "
			    "model or day");
			return;
		}
		group = v[0];
	}
	if (admin_query(c->req.query, "user", v, sizeof v) &&
	    (u = auth_user_find(v)) == NULL) {
		admin_error(c, 404, "no user %s", v);
		return;
	}
	if (admin_query(c->req.query, "since", v, sizeof v))
		since = strtoll(v, NULL, 10);
	if (admin_query(c->req.query, "until", v, sizeof v))
		until = strtoll(v, NULL, 10);
	model_set = admin_query(c->req.query, "model", model, sizeof model);
	j = admin_job_new(c, admin_usage_run, admin_usage_done);
	j->group = group;
	j->since_ms = since;
	j->until_ms = until;
	j->user_id = u != NULL ? u->id : 0;
	/* Rows hold normalised names: "llama3.2" means llama3.2:latest. */
	if (model_set) {
		for (char *p = model; *p != '\0'; p++) {
			if (p[0] == '%' && p[1] == '3' &&
			    (p[2] == 'A' || p[2] == 'a')) {
				*p = ':';
				memmove(p + 1, p + 3, strlen(p + 3) + 1);
			}
		}
		j->model = auth_model_normalise(model);
	}
	store_submit(&j->sj);
}

/* All the times or none; nothing is logged here but in the done. */
static int
admin_last_used_run(sqlite3 *db, struct store_job *sj)
{
	struct admin_job	*j = sj->arg;
	sqlite3_stmt		*st = NULL;

	store_rollback(db);
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE tokens SET last_used = ? WHERE "
	    "id = ?", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < j->nused; i++) {
		sqlite3_bind_int64(st, 1, j->used[2 * i + 1]);
		sqlite3_bind_int64(st, 2, j->used[2 * i]);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto fail;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	store_job_fail(sj, 503, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	store_rollback(db);
	return -1;
}

/*
 * Times that could not be stored are marked to be stored again at the
 * next flush, so they are not lost while the disk is full; the failure
 * is logged when it starts and when it ends, not every ten seconds.
 */
static void
admin_last_used_done(struct store_job *sj)
{
	struct admin_job	*j = sj->arg;
	struct auth_token	*t;
	static int		 failing;

	if (sj->error != NULL) {
		for (size_t i = 0; i < j->nused; i++) {
			if ((t = auth_token_find_id(j->used[2 * i])) != NULL)
				t->used_dirty = 1;
		}
		if (!failing)
			log_warn("token last-use times not saved: %s",
			    sj->error);
		failing = 1;
	} else if (failing) {
		log_info("token last-use times saved again");
		failing = 0;
	}
	admin_job_free(j);
}

void
admin_flush_last_used(void)
{
	struct auth_token	*t;
	struct admin_job	*j = NULL;

	for (t = auth_token_first(); t != NULL; t = auth_token_next(t)) {
		if (!t->used_dirty)
			continue;
		if (j == NULL)
			j = admin_job_new(NULL, admin_last_used_run,
			    admin_last_used_done);
		j->used = xreallocarray(j->used, 2 * (j->nused + 1),
		    sizeof *j->used);
		j->used[2 * j->nused] = t->id;
		j->used[2 * j->nused + 1] = t->last_used;
		j->nused++;
		t->used_dirty = 0;
	}
	if (j != NULL)
		store_submit(&j->sj);
}
