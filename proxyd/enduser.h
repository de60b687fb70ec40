/*
 * enduser.h: the end users of trusted front ends, as the limits and the
 * fleet queue see them.
 *
 * A front end that calls with one key for all its users may name the
 * user of each request ([server] end_user_header, request.c). Each such
 * end user then has limits of its own ([defaults] requests_per_minute,
 * max_concurrent, tokens_per_day, tokens_per_month) and its own share of
 * the fleet, as well as counting towards its service user's. The names
 * come from a client, so the table is bounded: it keeps the
 * ENDUSER_MAX end users seen most recently, and forgets the one seen
 * least recently to make room, never one a request in flight holds.
 *
 * What an end user has spent today and this month is read from the
 * usage rows on the store thread when it is first seen (and again after
 * it was forgotten), only while [defaults] sets a token limit; a
 * request of its waits for that read before it is admitted.
 */
#ifndef OG_ENDUSER_H
#define OG_ENDUSER_H

#include <stdint.h>
#include <sys/queue.h>

#include "auth.h"

/* The most end users remembered at once, besides those in flight. */
#define ENDUSER_MAX	4096

struct request;

struct enduser {
	int64_t			 user_id;	/* its service user */
	char			*name;		/* as the front end sent it */
	uint64_t		 hash;
	struct auth_quota	 quota;
	struct auth_share	 share;		/* of the fleet */
	int			 refs;		/* requests, and a load */
	unsigned		 loading:1;	/* its spending is being read */
	unsigned		 loaded:1;	/* its spending is known */
	/* Requests waiting for the load, to be admitted after it. */
	TAILQ_HEAD(, request)	 waiting;
	struct enduser		*next;		/* hash chain */
	TAILQ_ENTRY(enduser)	 lru;		/* least recently seen first */
};

/* The end user NAME of user u, made if need be; the caller holds a ref. */
struct enduser	*enduser_get(const struct auth_user *u, const char *name);
/* Another holder (the fleet queue's ticket); NULL stays NULL. */
struct enduser	*enduser_ref(struct enduser *);
void		 enduser_unref(struct enduser *);
/*
 * Must the request wait before it is admitted, for its end user's
 * spending to be read? Then 1, and ready(rq) is called once it is; or
 * 0 and the request goes on. request_clear() takes it off the list.
 */
int		 enduser_wait(struct request *, void (*ready)(struct request *));
void		 enduser_unwait(struct request *);
/* Call fn for each end user remembered (for the live view). */
void		 enduser_foreach(void (*fn)(struct enduser *, void *), void *);
size_t		 enduser_count(void);
/* Has an end user other than this one made a request since then? */
int		 enduser_seen_besides(const struct enduser *, uint64_t since);
void		 enduser_free_all(void);

#endif
