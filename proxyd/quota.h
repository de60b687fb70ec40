/*
 * quota.h: per-user limits: requests per minute, requests at once, and
 * tokens per day and per month (calendar, UTC).
 *
 * Counters live in memory, rebuilt from the usage rows at start, so a
 * check costs no I/O. A request of a user with a token quota reserves
 * its worst case (its prompt, reckoned from the body, and the limit on
 * its output, which proxy.c holds to what is left) when it is admitted
 * and settles to what it really used when it ends, so that requests
 * running at the same time cannot spend more than the budget.
 * The end users of a trusted front end (enduser.h) have budgets of
 * their own, under the [defaults] limits, besides their service user's.
 */
#ifndef OG_QUOTA_H
#define OG_QUOTA_H

#include <stdint.h>

#include <sqlite3.h>

struct auth_user;
struct enduser;
struct buf;

struct quota_verdict {
	int		 status;	/* 0: admitted; 429 */
	const char	*message;
	long		 retry_after;	/* seconds */
};

/* The limits that apply to a user: its own, else [defaults]; 0: none. */
struct quota_limits {
	int64_t		 tokens_per_day;
	int64_t		 tokens_per_month;
	int64_t		 requests_per_minute;
	int64_t		 max_concurrent;
};

int	 quota_load(sqlite3 *);
void	 quota_limits(const struct auth_user *, struct quota_limits *);
/*
 * Each function that takes an end user (NULL: none) applies to both its
 * budget, under the [defaults] limits, and its service user's.
 */
/* What is left of the token budgets; INT64_MAX if none applies. */
int64_t	 quota_left(struct auth_user *, struct enduser *);
/* Admit an inference request and reserve tokens for it, or refuse. */
void	 quota_admit(struct auth_user *, struct enduser *, int64_t reserve,
	    struct quota_verdict *);
/* The request has ended: free its reservation, count what it used. */
void	 quota_settle(struct auth_user *, struct enduser *, int64_t reserved,
	    int64_t used);
/* Count tokens of a request that was not admitted (not inference). */
void	 quota_count(struct auth_user *, struct enduser *, int64_t used);
/* Tokens a user has spent today and this month (calendar, UTC). */
void	 quota_spent(struct auth_user *, int64_t *today, int64_t *month);
/* An end user's limits, and what it has spent today and this month. */
void	 quota_end_user(struct enduser *, struct quota_limits *,
	    int64_t *today, int64_t *month);
/* The x-ratelimit-* header lines: of two budgets, what binds. */
void	 quota_headers(struct auth_user *, struct enduser *, struct buf *);

#endif
