/*
 * usage.h: one row of accounting for every finished request.
 *
 * A request that got past authentication ends in exactly one row: its
 * user and token, model, endpoint, backend, status, prompt and
 * completion tokens, time to first token, duration, bytes and client.
 * Rows wait in memory and are written by the store thread in one
 * transaction every quarter of a second, so the hot path never waits
 * for the disk, a clean stop loses nothing, and a kill -9 loses at most
 * the last fraction of a second.
 *
 * When the database cannot be written (a full disk), rows keep waiting
 * and the write is retried, from 250 ms doubling to 30 s, until it
 * works. At max_usage_backlog rows waiting ([server], 100000 by
 * default, some 20 MB), inference is refused with 503 rather than
 * served unaccounted; at twice that, further rows are dropped and
 * counted, so memory stays bounded.
 */
#ifndef OG_USAGE_H
#define OG_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct conn;

/* Row flags. */
#define USAGE_PARTIAL	0x01	/* no final figures: counted from chunks */
#define USAGE_CANCELLED	0x02	/* the client went away */
#define USAGE_FAILED	0x04	/* the backend failed */
#define USAGE_ESTIMATED	0x08	/* prompt tokens estimated from the body */
#define USAGE_CACHED	0x10	/* answered by the response cache: not charged */

struct usage_row {
	int64_t		 time_ms;	/* when the request started */
	int64_t		 user_id;
	int64_t		 token_id;
	char		*model;		/* normalised; may be NULL */
	const char	*endpoint;
	char		*backend;	/* may be NULL */
	char		*end_user;	/* of a front end's user; may be NULL */
	int		 status;
	int64_t		 prompt_tokens;
	int64_t		 completion_tokens;
	int64_t		 ttft_ms;	/* -1: no output */
	int64_t		 duration_ms;
	uint64_t	 bytes;
	char		 client[48];
	unsigned	 flags;
};

/* How the writing of rows goes, for status, the snapshot and /metrics. */
struct usage_state {
	int		 ok;		/* the last write worked */
	int		 refusing;	/* inference refused: backlog full */
	int64_t		 failing_since_ms;
	size_t		 pending;	/* rows waiting in memory */
	uint64_t	 max_backlog;
	uint64_t	 written;	/* rows committed since start */
	uint64_t	 failures;	/* writes that failed */
	uint64_t	 dropped;	/* rows over twice the backlog */
	uint64_t	 refused;	/* requests refused for the backlog */
	const char	*error;		/* of the last failed write, or NULL */
};

void	usage_init(void);
/* Queue a row; the strings are copied. */
void	usage_record(const struct usage_row *);
/* Hand what is queued to the store thread now. */
void	usage_flush(void);
/*
 * At shutdown, before store_stop(): hand every row to the store thread
 * for one last try. After store_stop(), usage_free() logs how many rows
 * could not be written, if any.
 */
void	usage_stop(void);
void	usage_free(void);
uint64_t usage_rows_written(void);
/*
 * The tokens of an end user's rows that are not written yet: since
 * month_ms, and of those, since day_ms.
 */
void	usage_unwritten(int64_t user_id, const char *end_user,
	    int64_t month_ms, int64_t day_ms, int64_t *month, int64_t *day);
/* True while rows cannot be written and max_usage_backlog are waiting. */
int	usage_backlogged(void);
/* Answer an inference request 503 for the backlog; it leaves no row. */
void	usage_refuse(struct conn *);
void	usage_state(struct usage_state *);
json_t	*usage_state_json(void);
/* Delete rows older than usage_retention (on the store thread). */
void	usage_prune(void);

#endif
