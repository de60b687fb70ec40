/*
 * quota.c: per-user limits, counted in memory.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "buf.h"
#include "config.h"
#include "enduser.h"
#include "log.h"
#include "loop.h"
#include "quota.h"
#include "server.h"

/* A limit of 0 means none; a user's unset limit falls back to [defaults]. */
static int64_t
quota_limit(int64_t own, uint64_t dflt)
{
	return own != AUTH_UNSET ? own : (int64_t)dflt;
}

void
quota_limits(const struct auth_user *u, struct quota_limits *l)
{
	const struct config_limits	*d = &server_cfg->defaults;

	l->tokens_per_day = quota_limit(u->tokens_per_day, d->tokens_per_day);
	l->tokens_per_month = quota_limit(u->tokens_per_month,
	    d->tokens_per_month);
	l->requests_per_minute = quota_limit(u->requests_per_minute,
	    d->requests_per_minute);
	l->max_concurrent = quota_limit(u->max_concurrent, d->max_concurrent);
}

static void
quota_calendar(time_t now, int64_t *day, int64_t *month, long *to_day,
    long *to_month)
{
	struct tm	tm;
	time_t		next;

	gmtime_r(&now, &tm);
	*day = (int64_t)(now / 86400);
	*month = (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
	if (to_day != NULL)
		*to_day = (long)(86400 - now % 86400);
	if (to_month != NULL) {
		tm.tm_mday = 1;
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		tm.tm_mon++;
		next = timegm(&tm);
		*to_month = (long)(next - now);
	}
}

/* Start a new day or month when the calendar has moved on. */
static void
quota_roll(struct auth_quota *q, int64_t day, int64_t month)
{
	if (q->day != day) {
		q->day = day;
		q->day_used = 0;
	}
	if (q->month != month) {
		q->month = month;
		q->month_used = 0;
	}
}

int
quota_load(sqlite3 *db)
{
	sqlite3_stmt	*st;
	int64_t		 day, month;
	struct tm	 tm;
	time_t		 now = time(NULL), month_start;
	int		 rc;

	quota_calendar(now, &day, &month, NULL, NULL);
	gmtime_r(&now, &tm);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	month_start = timegm(&tm);
	for (struct auth_user *u = auth_user_first(); u != NULL;
	    u = auth_user_next(u)) {
		u->quota.day = day;
		u->quota.month = month;
	}
	/* What each user spent this month and today, from the rows. */
	if (sqlite3_prepare_v2(db, "SELECT user_id, "
	    "sum(prompt_tokens + completion_tokens), "
	    "sum(CASE WHEN time_ms >= ?2 THEN prompt_tokens + completion_tokens "
	    "ELSE 0 END) FROM usage WHERE time_ms >= ?1 AND flags & 16 = 0 "
	    "GROUP BY user_id", -1,
	    &st, NULL) != SQLITE_OK) {
		log_error("loading usage totals: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, (int64_t)month_start * 1000);
	sqlite3_bind_int64(st, 2, day * 86400 * 1000);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct auth_user	*u;

		u = auth_user_find_id(sqlite3_column_int64(st, 0));
		if (u == NULL)
			continue;
		u->quota.month_used = sqlite3_column_int64(st, 1);
		u->quota.day_used = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("loading usage totals: %s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* a - b - c, where a is a limit and b, c are counts: never overflows. */
static int64_t
quota_sub(int64_t a, int64_t b, int64_t c)
{
	if (b > a || c > a - b)
		return 0;
	return a - b - c;
}

/* The limits of an end user: [defaults], whatever its service user's. */
static void
quota_end_user_limits(struct quota_limits *l)
{
	const struct config_limits	*d = &server_cfg->defaults;

	l->tokens_per_day = (int64_t)d->tokens_per_day;
	l->tokens_per_month = (int64_t)d->tokens_per_month;
	l->requests_per_minute = (int64_t)d->requests_per_minute;
	l->max_concurrent = (int64_t)d->max_concurrent;
}

/* What is left of one budget; INT64_MAX if none applies. */
static int64_t
quota_left_of(struct auth_quota *q, const struct quota_limits *l)
{
	int64_t	day, month, month_left, left = INT64_MAX;

	quota_calendar(time(NULL), &day, &month, NULL, NULL);
	quota_roll(q, day, month);
	if (l->tokens_per_day > 0)
		left = quota_sub(l->tokens_per_day, q->day_used, q->reserved);
	if (l->tokens_per_month > 0 && (month_left = quota_sub(
	    l->tokens_per_month, q->month_used, q->reserved)) < left)
		left = month_left;
	return left;
}

int64_t
quota_left(struct auth_user *u, struct enduser *eu)
{
	struct quota_limits	l;
	int64_t			left, eu_left;

	quota_limits(u, &l);
	left = quota_left_of(&u->quota, &l);
	if (eu != NULL) {
		quota_end_user_limits(&l);
		if ((eu_left = quota_left_of(&eu->quota, &l)) < left)
			left = eu_left;
	}
	return left;
}

static void
quota_refuse(struct quota_verdict *v, const char *msg, long retry)
{
	v->status = 429;
	v->message = msg;
	v->retry_after = retry > 0 ? retry : 1;
}

/* The messages of one budget: a user's, or an end user's. */
struct quota_words {
	const char	*at_once;
	const char	*rpm;
	const char	*day;
	const char	*month;
	const char	*held;
	const char	*short_of;
};

static const struct quota_words quota_user_words = {
	"too many requests at once for this user",
	"requests per minute exceeded",
	"daily token quota exhausted",
	"monthly token quota exhausted",
	"token quota held by requests in flight",
	"not enough of the token quota is left for this request",
};

static const struct quota_words quota_end_user_words = {
	"too many requests at once for this end user",
	"requests per minute exceeded for this end user",
	"daily token quota of this end user exhausted",
	"monthly token quota of this end user exhausted",
	"token quota of this end user held by requests in flight",
	"not enough of this end user's token quota is left for this request",
};

/*
 * May one more request be charged to q? Refills the requests-per-minute
 * bucket but takes nothing: a request must pass every budget it counts
 * against before it is charged to any.
 */
static void
quota_check(struct auth_quota *q, const struct quota_limits *l,
    int64_t reserve, const struct quota_words *w, struct quota_verdict *v)
{
	int64_t		 rpm, conc, per_day, per_month, day, month, left;
	long		 to_day, to_month;
	uint64_t	 now = loop_now();

	quota_calendar(time(NULL), &day, &month, &to_day, &to_month);
	quota_roll(q, day, month);
	conc = l->max_concurrent;
	rpm = l->requests_per_minute;
	per_day = l->tokens_per_day;
	per_month = l->tokens_per_month;

	if (conc > 0 && q->active >= conc) {
		quota_refuse(v, w->at_once, 1);
		return;
	}
	if (rpm > 0) {
		/* A bucket of rpm requests, refilled at rpm per minute. */
		if (q->bucket_ms == 0)
			q->bucket = (double)rpm;
		else
			q->bucket += (double)(now - q->bucket_ms) * (double)rpm /
			    60000.0;
		if (q->bucket > (double)rpm)
			q->bucket = (double)rpm;
		q->bucket_ms = now;
		if (q->bucket < 1.0) {
			quota_refuse(v, w->rpm,
			    (long)ceil((1.0 - q->bucket) * 60.0 / (double)rpm));
			return;
		}
	}
	/*
	 * Spent is spent until the calendar moves on; a budget held only by
	 * reservations of requests in flight frees up as they settle.
	 */
	if (per_day > 0 && q->day_used >= per_day) {
		quota_refuse(v, w->day, to_day);
		return;
	}
	if (per_month > 0 && q->month_used >= per_month) {
		quota_refuse(v, w->month, to_month);
		return;
	}
	/* What the request sets aside must fit in what is left. */
	left = quota_left_of(q, l);
	if (left != INT64_MAX && (left < 1 || reserve > left)) {
		if (q->reserved > 0)
			quota_refuse(v, w->held, 1);
		else
			quota_refuse(v, w->short_of, per_day > 0 ? to_day :
			    to_month);
	}
}

static void
quota_take(struct auth_quota *q, const struct quota_limits *l,
    int64_t reserve)
{
	if (l->requests_per_minute > 0)
		q->bucket -= 1.0;
	q->active++;
	q->reserved += reserve;
}

void
quota_admit(struct auth_user *u, struct enduser *eu, int64_t reserve,
    struct quota_verdict *v)
{
	struct quota_limits	l, el;

	memset(v, 0, sizeof *v);
	quota_limits(u, &l);
	quota_check(&u->quota, &l, reserve, &quota_user_words, v);
	if (v->status == 0 && eu != NULL) {
		quota_end_user_limits(&el);
		quota_check(&eu->quota, &el, reserve, &quota_end_user_words, v);
	}
	if (v->status != 0)
		return;
	quota_take(&u->quota, &l, reserve);
	if (eu != NULL)
		quota_take(&eu->quota, &el, reserve);
}

static void
quota_count_one(struct auth_quota *q, int64_t used)
{
	int64_t	day, month;

	quota_calendar(time(NULL), &day, &month, NULL, NULL);
	quota_roll(q, day, month);
	q->day_used += used;
	q->month_used += used;
}

void
quota_count(struct auth_user *u, struct enduser *eu, int64_t used)
{
	quota_count_one(&u->quota, used);
	if (eu != NULL)
		quota_count_one(&eu->quota, used);
}

void
quota_spent(struct auth_user *u, int64_t *today, int64_t *month)
{
	int64_t	day, mon;

	quota_calendar(time(NULL), &day, &mon, NULL, NULL);
	quota_roll(&u->quota, day, mon);
	*today = u->quota.day_used;
	*month = u->quota.month_used;
}

void
quota_end_user(struct enduser *eu, struct quota_limits *l, int64_t *today,
    int64_t *month)
{
	int64_t	day, mon;

	quota_end_user_limits(l);
	quota_calendar(time(NULL), &day, &mon, NULL, NULL);
	quota_roll(&eu->quota, day, mon);
	*today = eu->quota.day_used;
	*month = eu->quota.month_used;
}

void
quota_settle(struct auth_user *u, struct enduser *eu, int64_t reserved,
    int64_t used)
{
	u->quota.active--;
	u->quota.reserved -= reserved;
	if (eu != NULL) {
		eu->quota.active--;
		eu->quota.reserved -= reserved;
	}
	quota_count(u, eu, used);
}

/* What one budget has left, of requests this minute and of tokens. */
struct quota_room {
	int64_t	rpm, requests;
	int64_t	tokens_limit, tokens;
};

static void
quota_room(const struct auth_quota *q, const struct quota_limits *l,
    struct quota_room *r)
{
	int64_t	left;

	memset(r, 0, sizeof *r);
	r->rpm = l->requests_per_minute;
	if (r->rpm > 0)
		r->requests = q->bucket_ms == 0 ? r->rpm : q->bucket < 0 ? 0 :
		    (int64_t)q->bucket;
	/* Of the token limits, the one with the least left is reported. */
	if (l->tokens_per_day > 0) {
		r->tokens_limit = l->tokens_per_day;
		r->tokens = l->tokens_per_day - q->day_used - q->reserved;
	}
	if (l->tokens_per_month > 0) {
		left = l->tokens_per_month - q->month_used - q->reserved;
		if (r->tokens_limit == 0 || left < r->tokens) {
			r->tokens_limit = l->tokens_per_month;
			r->tokens = left;
		}
	}
}

/* The headers say what binds: of two budgets, the one with less left. */
void
quota_headers(struct auth_user *u, struct enduser *eu, struct buf *b)
{
	struct quota_limits	l;
	struct quota_room	r, er;

	quota_limits(u, &l);
	quota_room(&u->quota, &l, &r);
	if (eu != NULL) {
		quota_end_user_limits(&l);
		quota_room(&eu->quota, &l, &er);
		if (er.rpm > 0 && (r.rpm == 0 || er.requests < r.requests)) {
			r.rpm = er.rpm;
			r.requests = er.requests;
		}
		if (er.tokens_limit > 0 && (r.tokens_limit == 0 ||
		    er.tokens < r.tokens)) {
			r.tokens_limit = er.tokens_limit;
			r.tokens = er.tokens;
		}
	}
	if (r.rpm > 0)
		buf_printf(b, "x-ratelimit-limit-requests: %lld\r\n"
		    "x-ratelimit-remaining-requests: %lld\r\n",
		    (long long)r.rpm, (long long)r.requests);
	if (r.tokens_limit > 0)
		buf_printf(b, "x-ratelimit-limit-tokens: %lld\r\n"
		    "x-ratelimit-remaining-tokens: %lld\r\n",
		    (long long)r.tokens_limit,
		    (long long)(r.tokens > 0 ? r.tokens : 0));
}
