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

int64_t
quota_left(struct auth_user *u)
{
	struct auth_quota	*q = &u->quota;
	struct quota_limits	 l;
	int64_t			 day, month, month_left, left = INT64_MAX;

	quota_calendar(time(NULL), &day, &month, NULL, NULL);
	quota_roll(q, day, month);
	quota_limits(u, &l);
	if (l.tokens_per_day > 0)
		left = quota_sub(l.tokens_per_day, q->day_used, q->reserved);
	if (l.tokens_per_month > 0 && (month_left = quota_sub(
	    l.tokens_per_month, q->month_used, q->reserved)) < left)
		left = month_left;
	return left;
}

static void
quota_refuse(struct quota_verdict *v, const char *msg, long retry)
{
	v->status = 429;
	v->message = msg;
	v->retry_after = retry > 0 ? retry : 1;
}

void
quota_admit(struct auth_user *u, int64_t reserve, int64_t left,
    struct quota_verdict *v)
{
	struct auth_quota	*q = &u->quota;
	struct quota_limits	 l;
	int64_t			 rpm, conc, per_day, per_month, day, month;
	long			 to_day, to_month;
	uint64_t		 now = loop_now();

	memset(v, 0, sizeof *v);
	quota_calendar(time(NULL), &day, &month, &to_day, &to_month);
	quota_roll(q, day, month);
	quota_limits(u, &l);
	conc = l.max_concurrent;
	rpm = l.requests_per_minute;
	per_day = l.tokens_per_day;
	per_month = l.tokens_per_month;

	if (conc > 0 && q->active >= conc) {
		quota_refuse(v, "too many requests at once for this user", 1);
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
			quota_refuse(v, "requests per minute exceeded",
			    (long)ceil((1.0 - q->bucket) * 60.0 / (double)rpm));
			return;
		}
	}
	/*
	 * Spent is spent until the calendar moves on; a budget held only by
	 * reservations of requests in flight frees up as they settle.
	 */
	if (per_day > 0 && q->day_used >= per_day) {
		quota_refuse(v, "daily token quota exhausted", to_day);
		return;
	}
	if (per_month > 0 && q->month_used >= per_month) {
		quota_refuse(v, "monthly token quota exhausted", to_month);
		return;
	}
	/* What the request sets aside must fit in what is left. */
	if (left != INT64_MAX && (left < 1 || reserve > left)) {
		if (q->reserved > 0)
			quota_refuse(v, "token quota held by requests in "
			    "flight", 1);
		else
			quota_refuse(v, "not enough of the token quota is left "
			    "for this request", per_day > 0 ? to_day : to_month);
		return;
	}
	if (rpm > 0)
		q->bucket -= 1.0;
	q->active++;
	q->reserved += reserve;
}

void
quota_count(struct auth_user *u, int64_t used)
{
	int64_t	day, month;

	quota_calendar(time(NULL), &day, &month, NULL, NULL);
	quota_roll(&u->quota, day, month);
	u->quota.day_used += used;
	u->quota.month_used += used;
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
quota_settle(struct auth_user *u, int64_t reserved, int64_t used)
{
	u->quota.active--;
	u->quota.reserved -= reserved;
	quota_count(u, used);
}

void
quota_headers(struct auth_user *u, struct buf *b)
{
	const struct auth_quota	*q = &u->quota;
	struct quota_limits	 l;
	int64_t			 rpm, per_day, per_month, left;
	int64_t			 limit = 0, remaining = 0;

	quota_limits(u, &l);
	rpm = l.requests_per_minute;
	if (rpm > 0)
		buf_printf(b, "x-ratelimit-limit-requests: %lld\r\n"
		    "x-ratelimit-remaining-requests: %lld\r\n", (long long)rpm,
		    (long long)(q->bucket_ms == 0 ? rpm : q->bucket < 0 ? 0 :
		    (int64_t)q->bucket));
	/* Of the token limits, the one with the least left is reported. */
	per_day = l.tokens_per_day;
	per_month = l.tokens_per_month;
	if (per_day > 0) {
		limit = per_day;
		remaining = per_day - q->day_used - q->reserved;
	}
	if (per_month > 0) {
		left = per_month - q->month_used - q->reserved;
		if (limit == 0 || left < remaining) {
			limit = per_month;
			remaining = left;
		}
	}
	if (limit > 0)
		buf_printf(b, "x-ratelimit-limit-tokens: %lld\r\n"
		    "x-ratelimit-remaining-tokens: %lld\r\n", (long long)limit,
		    (long long)(remaining > 0 ? remaining : 0));
}
