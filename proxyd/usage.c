/*
 * usage.c: one row of accounting for every finished request.
 *
 * Rows wait in a queue in memory, oldest first. One batch at a time is
 * taken from its head and written by the store thread; a batch that
 * cannot be written (a full disk, a database locked too long) stays the
 * head and is tried again with a growing delay, so no row is lost and
 * the order is kept. While writes fail, the queue grows: at
 * max_usage_backlog rows, inference is refused (usage_refuse) rather
 * than served unaccounted; at twice that, rows of the requests still
 * served (those already under way, and routes that are not inference)
 * are dropped and counted, so that memory stays bounded.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "loop.h"
#include "reply.h"
#include "server.h"
#include "store.h"
#include "usage.h"
#include "xmalloc.h"

/*
 * Rows are written 50 ms after the first of a batch arrived. Longer
 * batches cost more CPU at once: at 250 ms, on a busy two-core host,
 * each write kept the loop or its backend from a core for milliseconds
 * and showed in the small-request p99 (bench/run.sh); a commit more
 * often is I/O on the store thread, not work for the loop.
 */
#define USAGE_FLUSH_MS	50
#define USAGE_PRUNE_MS	(60 * 60 * 1000)
/*
 * The most rows one transaction writes. A backlog drains in batches of
 * this size, so admin jobs queued behind it wait for one batch only.
 */
#define USAGE_BATCH_MAX	5000
/* The first retry of a failed write; the delay doubles up to the last. */
#define USAGE_RETRY_MIN_MS	250
#define USAGE_RETRY_MAX_MS	(30 * 1000)
/* A queue array this large is freed once it is empty. */
#define USAGE_KEEP_CAP	1024

struct usage_batch {
	struct store_job	 job;
	struct usage_row	*rows;
	size_t			 n;
	const char		*reason;	/* why it failed, briefly */
};

/* The queue: rows [usage_head, usage_n) of usage_rows. */
static struct usage_row	*usage_rows;
static size_t		 usage_head, usage_n, usage_cap;
/* The head batch: on the store thread (usage_busy) or waiting to retry. */
static struct usage_batch *usage_batch;
static int		 usage_busy;
/* The next flush, or the next retry of the head batch. */
static struct loop_timer usage_timer;
static struct loop_timer usage_prune_timer;
static int		 usage_stopping;

/* The state shown by status, the snapshot and /metrics. */
static uint64_t		 usage_retry_ms;	/* 0: the last write worked */
static int64_t		 usage_failing_since;	/* wall ms; 0: not failing */
static char		*usage_error;		/* of the last failed write */
static const char	*usage_why;		/* the same in a few words */
static int		 usage_full_logged;
static int		 usage_drop_logged;
static uint64_t		 usage_written;
static uint64_t		 usage_failures;
static uint64_t		 usage_dropped;
static uint64_t		 usage_refused;
static size_t		 usage_lost;		/* at shutdown */

static void	usage_submit(void);

static size_t
usage_pending(void)
{
	return (usage_n - usage_head) + (usage_batch != NULL ?
	    usage_batch->n : 0);
}

static void
usage_timer_fire(struct loop_timer *t)
{
	if (!usage_busy)
		usage_submit();
}

static void
usage_prune_fire(struct loop_timer *t)
{
	usage_prune();
	loop_timer_arm(t, USAGE_PRUNE_MS);
}

void
usage_init(void)
{
	loop_timer_init(&usage_timer, usage_timer_fire, NULL);
	loop_timer_init(&usage_prune_timer, usage_prune_fire, NULL);
	usage_prune_fire(&usage_prune_timer);
}

struct usage_prune_job {
	struct store_job	job;
	int64_t			before_ms;
	int			deleted;
};

static int
usage_prune_run(sqlite3 *db, struct store_job *job)
{
	struct usage_prune_job	*p = job->arg;
	sqlite3_stmt		*st;

	if (sqlite3_prepare_v2(db, "DELETE FROM usage WHERE time_ms < ?", -1,
	    &st, NULL) != SQLITE_OK) {
		store_job_fail(job, 500, "%s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, p->before_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		store_job_fail(job, 500, "%s", sqlite3_errmsg(db));
	else
		p->deleted = sqlite3_changes(db);
	sqlite3_finalize(st);
	return 0;
}

static void
usage_prune_done(struct store_job *job)
{
	struct usage_prune_job	*p = job->arg;

	if (job->error != NULL)
		log_error("usage: pruning old rows: %s", job->error);
	else if (p->deleted > 0)
		log_info("usage: %d rows older than usage_retention deleted",
		    p->deleted);
	free(job->error);
	free(p);
}

void
usage_prune(void)
{
	struct usage_prune_job	*p;

	if (server_cfg->usage_retention == 0)
		return;
	p = xcalloc(1, sizeof *p);
	p->before_ms = server_now_ms() - (int64_t)server_cfg->usage_retention;
	p->job.run = usage_prune_run;
	p->job.done = usage_prune_done;
	p->job.arg = p;
	store_submit(&p->job);
}

uint64_t
usage_rows_written(void)
{
	return usage_written;
}

void
usage_record(const struct usage_row *r)
{
	struct usage_row	*p;
	size_t			 bound = server_cfg->max_usage_backlog;

	if (usage_failing_since != 0 && usage_pending() >= 2 * bound) {
		usage_dropped++;
		if (!usage_drop_logged)
			log_error("usage: %zu rows waiting, twice "
			    "max_usage_backlog: rows are dropped until the "
			    "database can be written", usage_pending());
		usage_drop_logged = 1;
		return;
	}
	if (usage_n == usage_cap && usage_head > 0) {
		memmove(usage_rows, usage_rows + usage_head,
		    (usage_n - usage_head) * sizeof *usage_rows);
		usage_n -= usage_head;
		usage_head = 0;
	}
	if (usage_n == usage_cap) {
		usage_cap = usage_cap ? usage_cap * 2 : 256;
		usage_rows = xreallocarray(usage_rows, usage_cap,
		    sizeof *usage_rows);
	}
	p = &usage_rows[usage_n++];
	*p = *r;
	p->model = r->model != NULL ? xstrdup(r->model) : NULL;
	p->backend = r->backend != NULL ? xstrdup(r->backend) : NULL;
	p->end_user = r->end_user != NULL ? xstrdup(r->end_user) : NULL;
	if (usage_failing_since != 0 && usage_pending() >= bound &&
	    !usage_full_logged) {
		log_warn("usage: %zu rows waiting (max_usage_backlog): "
		    "inference is refused until the database can be written",
		    usage_pending());
		usage_full_logged = 1;
	}
	if (usage_batch == NULL && !loop_timer_armed(&usage_timer))
		loop_timer_arm(&usage_timer, USAGE_FLUSH_MS);
}

/*
 * On the store thread. Every failure ends with the transaction rolled
 * back, so a batch is written whole or not at all, and the statement is
 * finalised exactly once. Nothing is logged here: a failing disk would
 * log at every retry; the loop thread logs when the state changes.
 */
static int
usage_write(sqlite3 *db, struct store_job *job)
{
	struct usage_batch	*b = job->arg;
	sqlite3_stmt		*st = NULL;

	store_rollback(db);
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_prepare_v2(db, "INSERT INTO usage (time_ms, user_id, "
	    "token_id, model, endpoint, backend, status, prompt_tokens, "
	    "completion_tokens, ttft_ms, duration_ms, bytes, client, flags, "
	    "end_user) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1,
	    &st,
	    NULL) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < b->n; i++) {
		const struct usage_row	*r = &b->rows[i];

		sqlite3_bind_int64(st, 1, r->time_ms);
		sqlite3_bind_int64(st, 2, r->user_id);
		sqlite3_bind_int64(st, 3, r->token_id);
		store_bind_text(st, 4, r->model);
		store_bind_text(st, 5, r->endpoint);
		store_bind_text(st, 6, r->backend);
		sqlite3_bind_int(st, 7, r->status);
		sqlite3_bind_int64(st, 8, r->prompt_tokens);
		sqlite3_bind_int64(st, 9, r->completion_tokens);
		store_bind_int(st, 10, r->ttft_ms, -1);
		sqlite3_bind_int64(st, 11, r->duration_ms);
		sqlite3_bind_int64(st, 12, (sqlite3_int64)r->bytes);
		sqlite3_bind_text(st, 13, r->client, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 14, (int)r->flags);
		store_bind_text(st, 15, r->end_user);
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
	/* The message and reason first: finalising resets them. */
	store_job_fail(job, 503, "%s", sqlite3_errmsg(db));
	b->reason = store_reason(db);
	sqlite3_finalize(st);
	store_rollback(db);
	return -1;
}

static void
usage_batch_free(struct usage_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->rows[i].model);
		free(b->rows[i].backend);
		free(b->rows[i].end_user);
	}
	free(b->rows);
	free(b->job.error);
	free(b);
}

/* A batch of up to USAGE_BATCH_MAX rows from the head of the queue. */
static struct usage_batch *
usage_take(void)
{
	struct usage_batch	*b;
	size_t			 n = usage_n - usage_head;

	if (n == 0)
		return NULL;
	if (n > USAGE_BATCH_MAX)
		n = USAGE_BATCH_MAX;
	b = xcalloc(1, sizeof *b);
	b->rows = xreallocarray(NULL, n, sizeof *b->rows);
	memcpy(b->rows, usage_rows + usage_head, n * sizeof *b->rows);
	b->n = n;
	usage_head += n;
	if (usage_head == usage_n) {
		usage_head = usage_n = 0;
		/* Give back what a backlog took. */
		if (usage_cap > USAGE_KEEP_CAP) {
			free(usage_rows);
			usage_rows = NULL;
			usage_cap = 0;
		}
	}
	return b;
}

static void
usage_failed(struct usage_batch *b)
{
	usage_failures++;
	free(usage_error);
	usage_error = b->job.error;
	b->job.error = NULL;
	usage_why = b->reason;
	if (usage_failing_since == 0) {
		usage_failing_since = server_now_ms();
		log_error("usage: rows cannot be written to the database (%s); "
		    "they wait in memory and the write is retried",
		    usage_error != NULL ? usage_error : usage_why);
	}
	usage_retry_ms = usage_retry_ms == 0 ? USAGE_RETRY_MIN_MS :
	    usage_retry_ms * 2;
	if (usage_retry_ms > USAGE_RETRY_MAX_MS)
		usage_retry_ms = USAGE_RETRY_MAX_MS;
	loop_timer_arm(&usage_timer, usage_retry_ms);
}

static void
usage_recovered(void)
{
	int64_t	s = (server_now_ms() - usage_failing_since + 999) / 1000;

	log_info("usage: the database can be written again after %lld s; "
	    "%zu rows waiting are being written", (long long)s,
	    usage_pending());
	usage_failing_since = 0;
	usage_retry_ms = 0;
	usage_full_logged = usage_drop_logged = 0;
	free(usage_error);
	usage_error = NULL;
	usage_why = NULL;
}

static void
usage_written_done(struct store_job *job)
{
	struct usage_batch	*b = job->arg;

	if (usage_stopping) {
		/* The last try: what fails now is lost, and said so once. */
		if (job->error != NULL) {
			usage_lost += b->n;
			free(usage_error);
			usage_error = job->error;
			job->error = NULL;
		} else
			usage_written += b->n;
		if (b == usage_batch)
			usage_batch = NULL;
		usage_batch_free(b);
		return;
	}
	usage_busy = 0;
	if (job->error != NULL) {
		/* The batch stays the head of the queue, for the retry. */
		usage_failed(b);
		return;
	}
	usage_written += b->n;
	usage_batch = NULL;
	usage_batch_free(b);
	if (usage_failing_since != 0)
		usage_recovered();
	/* A backlog drains at once; a few rows wait for the next batch. */
	if (usage_n - usage_head >= USAGE_BATCH_MAX)
		usage_submit();
	else if (usage_n > usage_head)
		loop_timer_arm(&usage_timer, USAGE_FLUSH_MS);
}

/* Hand the head batch (taking one if there is none) to the store. */
static void
usage_submit(void)
{
	loop_timer_stop(&usage_timer);
	if (usage_batch == NULL && (usage_batch = usage_take()) == NULL)
		return;
	usage_batch->job.run = usage_write;
	usage_batch->job.done = usage_written_done;
	usage_batch->job.arg = usage_batch;
	usage_busy = 1;
	store_submit(&usage_batch->job);
}

void
usage_flush(void)
{
	if (!usage_busy)
		usage_submit();
}

void
usage_stop(void)
{
	struct usage_batch	*b;

	loop_timer_stop(&usage_timer);
	loop_timer_stop(&usage_prune_timer);
	usage_flush();
	usage_stopping = 1;
	/* Behind the head batch, the rest of the queue, in order. */
	while ((b = usage_take()) != NULL) {
		b->job.run = usage_write;
		b->job.done = usage_written_done;
		b->job.arg = b;
		store_submit(&b->job);
	}
}

void
usage_free(void)
{
	if (usage_lost > 0)
		log_error("usage: %zu rows could not be written before exit "
		    "and are lost: %s", usage_lost, usage_error != NULL ?
		    usage_error : "unknown error");
	free(usage_rows);
	usage_rows = NULL;
	usage_head = usage_n = usage_cap = 0;
	free(usage_error);
	usage_error = NULL;
}

/* Add a row's tokens to the sums it falls in. */
static void
usage_sum_row(const struct usage_row *r, int64_t user_id,
    const char *end_user, int64_t month_ms, int64_t day_ms, int64_t *month,
    int64_t *day)
{
	int64_t	n = r->prompt_tokens + r->completion_tokens;

	if (r->user_id != user_id || r->end_user == NULL ||
	    strcmp(r->end_user, end_user) != 0 || r->time_ms < month_ms)
		return;
	*month += n;
	if (r->time_ms >= day_ms)
		*day += n;
}

void
usage_unwritten(int64_t user_id, const char *end_user, int64_t month_ms,
    int64_t day_ms, int64_t *month, int64_t *day)
{
	*month = *day = 0;
	for (size_t i = usage_head; i < usage_n; i++)
		usage_sum_row(&usage_rows[i], user_id, end_user, month_ms,
		    day_ms, month, day);
	for (size_t i = 0; usage_batch != NULL && i < usage_batch->n; i++)
		usage_sum_row(&usage_batch->rows[i], user_id, end_user,
		    month_ms, day_ms, month, day);
}

int
usage_backlogged(void)
{
	return usage_failing_since != 0 &&
	    usage_pending() >= server_cfg->max_usage_backlog;
}

void
usage_refuse(struct conn *c)
{
	char	msg[160], hdr[40];

	usage_refused++;
	/* It was not served: it owes no row, and has none to add. */
	c->rq.active = 0;
	snprintf(msg, sizeof msg, "usage cannot be recorded: the database is "
	    "not writable (%s); try again later", usage_why != NULL ?
	    usage_why : "database error");
	snprintf(hdr, sizeof hdr, "Retry-After: %llu\r\n",
	    (unsigned long long)(usage_retry_ms + 999) / 1000);
	reply_error(c, 503, c->route->dialect, msg, hdr);
}

void
usage_state(struct usage_state *s)
{
	memset(s, 0, sizeof *s);
	s->ok = usage_failing_since == 0;
	s->refusing = usage_backlogged();
	s->failing_since_ms = usage_failing_since;
	s->pending = usage_pending();
	s->max_backlog = server_cfg->max_usage_backlog;
	s->written = usage_written;
	s->failures = usage_failures;
	s->dropped = usage_dropped;
	s->refused = usage_refused;
	s->error = usage_error;
}

json_t *
usage_state_json(void)
{
	struct usage_state	s;
	json_t			*since = json_null();

	usage_state(&s);
	if (!s.ok) {
		char		buf[32];
		struct tm	tm;
		time_t		t = (time_t)(s.failing_since_ms / 1000);

		gmtime_r(&t, &tm);
		strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
		since = json_string(buf);
	}
	return json_pack("{s:s, s:o, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
	    "state", s.ok ? "ok" : "failing",
	    "failing_since", since,
	    "refusing_inference", s.refusing,
	    "rows_pending", (json_int_t)s.pending,
	    "max_backlog", (json_int_t)s.max_backlog,
	    "rows_written", (json_int_t)s.written,
	    "write_failures", (json_int_t)s.failures,
	    "rows_dropped", (json_int_t)s.dropped,
	    "requests_refused", (json_int_t)s.refused,
	    "last_error", s.error != NULL ? json_string(s.error) : json_null());
}
