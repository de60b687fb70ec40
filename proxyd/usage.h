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
 */
#ifndef OG_USAGE_H
#define OG_USAGE_H

#include <stdint.h>

/* Row flags. */
#define USAGE_PARTIAL	0x01	/* no final figures: counted from chunks */
#define USAGE_CANCELLED	0x02	/* the client went away */
#define USAGE_FAILED	0x04	/* the backend failed */
#define USAGE_ESTIMATED	0x08	/* prompt tokens estimated from the body */

struct usage_row {
	int64_t		 time_ms;	/* when the request started */
	int64_t		 user_id;
	int64_t		 token_id;
	char		*model;		/* normalised; may be NULL */
	const char	*endpoint;
	char		*backend;	/* may be NULL */
	int		 status;
	int64_t		 prompt_tokens;
	int64_t		 completion_tokens;
	int64_t		 ttft_ms;	/* -1: no output */
	int64_t		 duration_ms;
	uint64_t	 bytes;
	char		 client[48];
	unsigned	 flags;
};

void	usage_init(void);
/* Queue a row; the strings are copied. */
void	usage_record(const struct usage_row *);
/* Hand what is queued to the store thread now. */
void	usage_flush(void);
uint64_t usage_rows_written(void);
/* Delete rows older than usage_retention (on the store thread). */
void	usage_prune(void);

#endif
