/*
 * usage.c: one row of accounting for every finished request.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "server.h"
#include "store.h"
#include "usage.h"
#include "xmalloc.h"

#define USAGE_FLUSH_MS	250
#define USAGE_PRUNE_MS	(60 * 60 * 1000)

struct usage_batch {
	struct store_job	 job;
	struct usage_row	*rows;
	size_t			 n;
};

static struct usage_row	*usage_pending;
static size_t		 usage_npending, usage_cap;
static struct loop_timer usage_timer;
static struct loop_timer usage_prune_timer;
static uint64_t		 usage_written;

static void
usage_timer_fire(struct loop_timer *t)
{
	usage_flush();
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

	if (usage_npending == usage_cap) {
		usage_cap = usage_cap ? usage_cap * 2 : 256;
		usage_pending = xreallocarray(usage_pending, usage_cap,
		    sizeof *usage_pending);
	}
	p = &usage_pending[usage_npending++];
	*p = *r;
	p->model = r->model != NULL ? xstrdup(r->model) : NULL;
	p->backend = r->backend != NULL ? xstrdup(r->backend) : NULL;
	if (!loop_timer_armed(&usage_timer))
		loop_timer_arm(&usage_timer, USAGE_FLUSH_MS);
}

static int
usage_write(sqlite3 *db, struct store_job *job)
{
	struct usage_batch	*b = job->arg;
	sqlite3_stmt		*st = NULL;

	if (store_exec(db, "BEGIN") != 0)
		goto fail;
	if (sqlite3_prepare_v2(db, "INSERT INTO usage (time_ms, user_id, "
	    "token_id, model, endpoint, backend, status, prompt_tokens, "
	    "completion_tokens, ttft_ms, duration_ms, bytes, client, flags) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &st,
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
		if (sqlite3_step(st) != SQLITE_DONE)
			goto fail;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (store_exec(db, "COMMIT") != 0)
		goto fail;
	return 0;
fail:
	store_job_fail(job, 500, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	store_exec(db, "ROLLBACK");
	return -1;
}

static void
usage_written_done(struct store_job *job)
{
	struct usage_batch	*b = job->arg;

	if (job->error != NULL)
		log_error("usage: %zu rows not written: %s", b->n, job->error);
	else
		usage_written += b->n;
	for (size_t i = 0; i < b->n; i++) {
		free(b->rows[i].model);
		free(b->rows[i].backend);
	}
	free(b->rows);
	free(job->error);
	free(b);
}

void
usage_flush(void)
{
	struct usage_batch	*b;

	loop_timer_stop(&usage_timer);
	if (usage_npending == 0)
		return;
	b = xcalloc(1, sizeof *b);
	b->rows = usage_pending;
	b->n = usage_npending;
	usage_pending = NULL;
	usage_npending = usage_cap = 0;
	b->job.run = usage_write;
	b->job.done = usage_written_done;
	b->job.arg = b;
	store_submit(&b->job);
}
