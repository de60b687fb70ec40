/*
 * request.h: one request, from its authentication to its usage row.
 *
 * A connection moves bytes; what a request is lives here: who made it
 * with which token, what it was admitted to, and what it cost. Its
 * stages are begin (authenticate), admit (proxy.c: the body, clamps,
 * quota), dispatch (proxy.c: a backend) and end, which writes the one
 * usage row it owes, feeds the metrics and settles its user's quota.
 */
#ifndef OG_REQUEST_H
#define OG_REQUEST_H

#include <stdint.h>
#include <sys/queue.h>

struct auth_user;
struct enduser;
struct http_request;
struct route;

/* The longest end user's name a front end may give. */
#define REQUEST_END_USER_MAX	128

struct request {
	struct auth_user	*user;		/* NULL until authenticated */
	int64_t			 token_id;
	unsigned		 active:1;	/* authenticated: a row is owed */
	unsigned		 admitted:1;	/* holds a quota reservation */
	int64_t			 start_ms;	/* wall clock, for the row */
	uint64_t		 start_mono;	/* loop time, for durations */
	int64_t			 reserved;	/* tokens set aside at admission */
	int64_t			 prompt_estimate; /* if the backend never says */
	/* What the row says, filled in as the request goes. */
	char			*model;
	char			*backend;
	char			*end_user;	/* a front end's user, or NULL */
	struct enduser		*eu;		/* its limits and share */
	/* Waiting for what its end user spent (enduser.c). */
	unsigned		 waiting:1;
	void			(*ready)(struct request *);
	TAILQ_ENTRY(request)	 wait_entry;
	int64_t			 prompt_tokens;
	int64_t			 completion_tokens;
	int64_t			 ttft_ms;
	uint64_t		 bytes;
	unsigned		 flags;		/* USAGE_* */
};

/* A new request: its clock starts now. */
void	request_begin(struct request *);
/*
 * Who is asking, and may their role use the route? Returns 0, or the
 * status to answer (401, 403) with a message in msg.
 */
int	request_authenticate(struct request *, const struct http_request *,
	    const struct route *, char *msg, size_t msgsize);
/*
 * The request is over, answered with status on route from client: its
 * row, metrics and quota settlement, once; then it holds nothing.
 */
void	request_end(struct request *, const struct route *, int status,
	    const char *client);
/* Let go of what the request holds, without a row. */
void	request_clear(struct request *);

#endif
