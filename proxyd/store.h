/*
 * store.h: the SQLite database and the thread that owns it.
 *
 * The event loop never touches the disk. Work on the database is a
 * struct store_job: its run function executes on the store thread, in
 * order of submission; its done function then runs back on the loop
 * thread, woken through an eventfd. Start-up (opening, migrating and
 * loading what the loop keeps in memory) happens before the loop runs,
 * so it may use the database directly.
 */
#ifndef OG_STORE_H
#define OG_STORE_H

#include <sys/queue.h>
#include <sqlite3.h>

struct store_job {
	/* On the store thread; returns 0 or an HTTP-like status. */
	int			(*run)(sqlite3 *, struct store_job *);
	/* On the loop thread, once run has returned. */
	void			(*done)(struct store_job *);
	void			*arg;
	int			 status;
	char			*error;		/* message for a failed job */
	void			*result;	/* job-defined */
	STAILQ_ENTRY(store_job)	 entry;
};

/* Open (creating if needed) and migrate the database; -1 on failure. */
int	 store_open(const char *state_dir);
/* The database, for start-up work before store_start(). */
sqlite3	*store_db(void);
void	 store_start(void);
void	 store_submit(struct store_job *);
/* Finish the queued jobs, stop the thread and close the database. */
void	 store_stop(void);
int	 store_schema_version(void);

/* Helpers for job code. */
int	 store_exec(sqlite3 *, const char *sql);
/* Bind a string, or NULL for a NULL pointer (kept until the step). */
void	 store_bind_text(sqlite3_stmt *, int, const char *);
/* Bind an integer, or NULL when it equals unset. */
void	 store_bind_int(sqlite3_stmt *, int, int64_t v, int64_t unset);
/* Roll back the transaction if one is still open; quietly. */
int	 store_rollback(sqlite3 *);
/* Why the last statement failed, in a few words ("disk full"). */
const char *store_reason(sqlite3 *);
void	 store_job_fail(struct store_job *, int status, const char *, ...)
	    __attribute__((format(printf, 3, 4)));

#endif
