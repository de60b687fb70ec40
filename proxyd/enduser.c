/*
 * enduser.c: the end users of trusted front ends, a bounded table.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "enduser.h"
#include "hash.h"
#include "log.h"
#include "loop.h"
#include "request.h"
#include "server.h"
#include "store.h"
#include "usage.h"
#include "xmalloc.h"

/* Twice ENDUSER_MAX, a power of two: chains stay short. */
#define ENDUSER_BUCKETS	8192

static struct enduser	**enduser_buckets;
static TAILQ_HEAD(enduser_list, enduser) enduser_lru =
    TAILQ_HEAD_INITIALIZER(enduser_lru);
static size_t		  enduser_n;
static uint64_t		  enduser_seed;

/* What an end user spent, read on the store thread. */
struct enduser_load {
	struct store_job	 job;
	struct enduser		*eu;
	char			*name;		/* a copy for the store thread */
	int64_t			 user_id;
	int64_t			 day;		/* the calendar it was read for */
	int64_t			 month;
	int64_t			 day_ms;	/* where they start */
	int64_t			 month_ms;
	int64_t			 day_used;	/* what the rows say */
	int64_t			 month_used;
};

/*
 * Keyed with a random seed: the names come from a client, which must
 * not be able to aim them all at one bucket.
 */
static uint64_t
enduser_hash(int64_t user_id, const char *name)
{
	return hash_keyed(enduser_seed ^ (uint64_t)user_id, name, strlen(name));
}

static void
enduser_init(void)
{
	enduser_seed = hash_seed();
	enduser_buckets = xcalloc(ENDUSER_BUCKETS, sizeof *enduser_buckets);
}

static void
enduser_remove(struct enduser *eu)
{
	struct enduser	**pp;

	for (pp = &enduser_buckets[eu->hash & (ENDUSER_BUCKETS - 1)];
	    *pp != eu; pp = &(*pp)->next)
		;
	*pp = eu->next;
	TAILQ_REMOVE(&enduser_lru, eu, lru);
	enduser_n--;
	free(eu->name);
	free(eu);
}

/*
 * Make room for one more: the end user seen least recently that no
 * request holds is forgotten. Those held are at most one a connection,
 * so the table never holds more than ENDUSER_MAX and max_connections.
 */
static void
enduser_make_room(void)
{
	struct enduser	*eu;

	TAILQ_FOREACH(eu, &enduser_lru, lru) {
		if (enduser_n < ENDUSER_MAX)
			return;
		if (eu->refs == 0) {
			enduser_remove(eu);
			return;
		}
	}
}

/* Does a token limit apply to end users, so that spending matters? */
static int
enduser_tokens_limited(void)
{
	const struct config_limits	*d = &server_cfg->defaults;

	return d->tokens_per_day > 0 || d->tokens_per_month > 0;
}

static int
enduser_load_run(sqlite3 *db, struct store_job *job)
{
	struct enduser_load	*l = job->arg;
	sqlite3_stmt		*st;
	int			 rc;

	if (sqlite3_prepare_v2(db, "SELECT "
	    "coalesce(sum(prompt_tokens + completion_tokens), 0), "
	    "coalesce(sum(CASE WHEN time_ms >= ?4 THEN prompt_tokens + "
	    "completion_tokens ELSE 0 END), 0) FROM usage "
	    "WHERE user_id = ?1 AND end_user = ?2 AND time_ms >= ?3", -1, &st,
	    NULL) != SQLITE_OK) {
		store_job_fail(job, 500, "%s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, l->user_id);
	sqlite3_bind_text(st, 2, l->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, l->month_ms);
	sqlite3_bind_int64(st, 4, l->day_ms);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		l->month_used = sqlite3_column_int64(st, 0);
		l->day_used = sqlite3_column_int64(st, 1);
	} else
		store_job_fail(job, 500, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/*
 * Back on the loop. The rows the read saw are those written before it
 * was asked for; every other row is still in memory now (the store
 * thread runs jobs in order, and their done functions run in the same
 * order), so it is added. What the end user's requests settled in the
 * meantime is among those, and is replaced, not added twice.
 */
static void
enduser_load_done(struct store_job *job)
{
	struct enduser_load	*l = job->arg;
	struct enduser		*eu = l->eu;
	struct request		*rq;
	int64_t			 month = 0, day = 0;

	eu->loading = 0;
	/* A failed read is not tried again for every request. */
	eu->loaded = 1;
	if (job->error != NULL) {
		/* Its requests go on with what was counted in memory. */
		log_error("reading what end user %s spent: %s", eu->name,
		    job->error);
	} else {
		usage_unwritten(l->user_id, l->name, l->month_ms, l->day_ms,
		    &month, &day);
		eu->quota.day = l->day;
		eu->quota.month = l->month;
		eu->quota.day_used = l->day_used + day;
		eu->quota.month_used = l->month_used + month;
	}
	free(job->error);
	free(l->name);
	free(l);
	/* Each waiting request is admitted now, or refused. */
	while ((rq = TAILQ_FIRST(&eu->waiting)) != NULL) {
		TAILQ_REMOVE(&eu->waiting, rq, wait_entry);
		rq->waiting = 0;
		rq->ready(rq);
	}
	enduser_unref(eu);
}

static void
enduser_load(struct enduser *eu)
{
	struct enduser_load	*l;
	struct tm		 tm;
	time_t			 now = time(NULL);

	l = xcalloc(1, sizeof *l);
	l->eu = eu;
	l->name = xstrdup(eu->name);
	l->user_id = eu->user_id;
	gmtime_r(&now, &tm);
	l->day = (int64_t)(now / 86400);
	l->month = (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
	l->day_ms = l->day * 86400 * 1000;
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	l->month_ms = (int64_t)timegm(&tm) * 1000;
	l->job.run = enduser_load_run;
	l->job.done = enduser_load_done;
	l->job.arg = l;
	eu->loading = 1;
	eu->refs++;
	/* Rows queued before now are written before it is read. */
	usage_flush();
	store_submit(&l->job);
}

struct enduser *
enduser_get(const struct auth_user *u, const char *name)
{
	struct enduser	*eu;
	uint64_t	 h;

	if (enduser_buckets == NULL)
		enduser_init();
	h = enduser_hash(u->id, name);
	for (eu = enduser_buckets[h & (ENDUSER_BUCKETS - 1)]; eu != NULL;
	    eu = eu->next) {
		if (eu->hash == h && eu->user_id == u->id &&
		    strcmp(eu->name, name) == 0)
			break;
	}
	if (eu == NULL) {
		enduser_make_room();
		eu = xcalloc(1, sizeof *eu);
		eu->user_id = u->id;
		eu->name = xstrdup(name);
		eu->hash = h;
		TAILQ_INIT(&eu->waiting);
		eu->next = enduser_buckets[h & (ENDUSER_BUCKETS - 1)];
		enduser_buckets[h & (ENDUSER_BUCKETS - 1)] = eu;
		enduser_n++;
	} else
		TAILQ_REMOVE(&enduser_lru, eu, lru);
	TAILQ_INSERT_TAIL(&enduser_lru, eu, lru);
	eu->refs++;
	eu->share.seen = loop_now();
	/* Read what it spent while the body comes, if that matters. */
	if (!eu->loaded && !eu->loading && enduser_tokens_limited())
		enduser_load(eu);
	return eu;
}

struct enduser *
enduser_ref(struct enduser *eu)
{
	if (eu != NULL)
		eu->refs++;
	return eu;
}

void
enduser_unref(struct enduser *eu)
{
	if (eu != NULL)
		eu->refs--;
}

int
enduser_wait(struct request *rq, void (*ready)(struct request *))
{
	struct enduser	*eu = rq->eu;

	if (eu == NULL || eu->loaded || !enduser_tokens_limited())
		return 0;
	if (!eu->loading)
		enduser_load(eu);
	rq->ready = ready;
	rq->waiting = 1;
	TAILQ_INSERT_TAIL(&eu->waiting, rq, wait_entry);
	return 1;
}

void
enduser_unwait(struct request *rq)
{
	if (!rq->waiting)
		return;
	TAILQ_REMOVE(&rq->eu->waiting, rq, wait_entry);
	rq->waiting = 0;
}

void
enduser_foreach(void (*fn)(struct enduser *, void *), void *arg)
{
	struct enduser	*eu;

	TAILQ_FOREACH(eu, &enduser_lru, lru)
		fn(eu, arg);
}

int
enduser_seen_besides(const struct enduser *not, uint64_t since)
{
	struct enduser	*eu;

	/* The most recently seen are last: stop at the first older one. */
	TAILQ_FOREACH_REVERSE(eu, &enduser_lru, enduser_list, lru) {
		if (eu->share.seen < since)
			return 0;
		if (eu != not)
			return 1;
	}
	return 0;
}

size_t
enduser_count(void)
{
	return enduser_n;
}

void
enduser_free_all(void)
{
	struct enduser	*eu;

	if (enduser_buckets == NULL)
		return;
	while ((eu = TAILQ_FIRST(&enduser_lru)) != NULL)
		enduser_remove(eu);
	free(enduser_buckets);
	enduser_buckets = NULL;
}
