/*
 * store.c: the SQLite database and the thread that owns it.
 */
#include <sys/eventfd.h>
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "store.h"
#include "xmalloc.h"

STAILQ_HEAD(store_queue, store_job);

static sqlite3		*store_handle;
static pthread_t	 store_thread;
static pthread_mutex_t	 store_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 store_cond = PTHREAD_COND_INITIALIZER;
static struct store_queue store_todo = STAILQ_HEAD_INITIALIZER(store_todo);
static struct store_queue store_done = STAILQ_HEAD_INITIALIZER(store_done);
static int		 store_stopping;
static int		 store_running;
static struct loop_io	 store_io;

/*
 * Each migration takes the schema from its index to the next. They run
 * in one transaction at start, so a database is never half-migrated.
 */
static const char *const store_migrations[] = {
	/* 0 -> 1: identity. */
	"CREATE TABLE users ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL UNIQUE,"
	"  role TEXT NOT NULL CHECK (role IN ('admin', 'user', 'readonly')),"
	"  enabled INTEGER NOT NULL DEFAULT 1,"
	"  models TEXT NOT NULL DEFAULT '',"
	"  priority INTEGER,"
	"  tokens_per_day INTEGER,"
	"  tokens_per_month INTEGER,"
	"  requests_per_minute INTEGER,"
	"  max_concurrent INTEGER,"
	"  created INTEGER NOT NULL);"
	/* Token ids are never reused: a revoke by an old id must miss. */
	"CREATE TABLE tokens ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
	"  label TEXT NOT NULL DEFAULT '',"
	"  hash BLOB NOT NULL UNIQUE,"
	"  prefix TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER,"
	"  revoked INTEGER,"
	"  last_used INTEGER);"
	"CREATE INDEX tokens_user ON tokens (user_id);"
	"CREATE TABLE audit ("
	"  id INTEGER PRIMARY KEY,"
	"  time INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  action TEXT NOT NULL,"
	"  target TEXT NOT NULL,"
	"  detail TEXT NOT NULL DEFAULT '');",
	/* 1 -> 2: accounting. Times are Unix milliseconds. */
	"CREATE TABLE usage ("
	"  id INTEGER PRIMARY KEY,"
	"  time_ms INTEGER NOT NULL,"
	"  user_id INTEGER NOT NULL,"
	"  token_id INTEGER NOT NULL,"
	"  model TEXT,"
	"  endpoint TEXT NOT NULL,"
	"  backend TEXT,"
	"  status INTEGER NOT NULL,"
	"  prompt_tokens INTEGER NOT NULL,"
	"  completion_tokens INTEGER NOT NULL,"
	"  ttft_ms INTEGER,"
	"  duration_ms INTEGER NOT NULL,"
	"  bytes INTEGER NOT NULL,"
	"  client TEXT NOT NULL,"
	"  flags INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX usage_time ON usage (time_ms);"
	"CREATE INDEX usage_user_time ON usage (user_id, time_ms);",
	/* 2 -> 3: the fleet queue. */
	"ALTER TABLE users ADD COLUMN max_queued INTEGER;",
	/* 3 -> 4: the users of a shared front end. */
	"ALTER TABLE users ADD COLUMN trust_end_user INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE usage ADD COLUMN end_user TEXT;",
};

#define STORE_SCHEMA_VERSION \
	((int)(sizeof store_migrations / sizeof store_migrations[0]))

static void	*store_main(void *);
static void	 store_event(struct loop_io *, uint32_t);

int
store_exec(sqlite3 *db, const char *sql)
{
	char	*err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_error("database: %s", err != NULL ? err : sqlite3_errmsg(db));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

void
store_bind_text(sqlite3_stmt *st, int col, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, col);
}

void
store_bind_int(sqlite3_stmt *st, int col, int64_t v, int64_t unset)
{
	if (v == unset)
		sqlite3_bind_null(st, col);
	else
		sqlite3_bind_int64(st, col, v);
}

int
store_rollback(sqlite3 *db)
{
	/* A failed statement may already have rolled the transaction back. */
	if (sqlite3_get_autocommit(db))
		return 0;
	return sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK ?
	    0 : -1;
}

const char *
store_reason(sqlite3 *db)
{
	switch (sqlite3_errcode(db)) {
	case SQLITE_FULL:
		return "disk full";
	case SQLITE_READONLY:
		return "read-only";
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return "locked by another process";
	case SQLITE_IOERR:
		return "I/O error";
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
		return "cannot open its files";
	default:
		return "database error";
	}
}

void
store_job_fail(struct store_job *job, int status, const char *fmt, ...)
{
	va_list	ap;

	free(job->error);
	va_start(ap, fmt);
	if (vasprintf(&job->error, fmt, ap) < 0)
		job->error = NULL;
	va_end(ap);
	job->status = status;
}

static int
store_migrate(sqlite3 *db)
{
	sqlite3_stmt	*st;
	int		 version = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > STORE_SCHEMA_VERSION) {
		log_error("database schema %d is newer than this ogproxyd (%d)",
		    version, STORE_SCHEMA_VERSION);
		return -1;
	}
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	if (store_exec(db, "BEGIN IMMEDIATE") != 0)
		return -1;
	for (int v = version; v < STORE_SCHEMA_VERSION; v++) {
		char	sql[64];

		log_info("database: migrating schema %d to %d", v, v + 1);
		if (store_exec(db, store_migrations[v]) != 0) {
			store_exec(db, "ROLLBACK");
			return -1;
		}
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
		if (store_exec(db, sql) != 0) {
			store_exec(db, "ROLLBACK");
			return -1;
		}
	}
	return store_exec(db, "COMMIT");
}

/*
 * The journal: a rollback journal, not the write-ahead log. In WAL mode
 * every connection maps the wal-index (ogate.db-shm) into memory and
 * writes to it through the mapping. SQLite writes a byte to each page
 * of that file before mapping it, which makes a fault unlikely but not
 * impossible: where the file system must find room when a mapped page
 * is written again (copy-on-write ones such as btrfs), a full disk is
 * answered with SIGBUS, which kills the daemon instead of failing one
 * transaction. Holding the wal-index in our own memory instead
 * (locking_mode = EXCLUSIVE) would lock out sqlite3(1), which the
 * manual and the tests use to read the database while the daemon runs.
 * A rollback journal uses plain writes only, so a full disk is an
 * error code (SQLITE_FULL) and the usage rows wait in memory; readers
 * in other processes still work, waiting out the few milliseconds of
 * each commit. TRUNCATE keeps the journal file from being created and
 * deleted at every commit. mmap_size = 0 keeps SQLite from mapping the
 * database file itself, for the same reason.
 */
static int
store_set_journal(sqlite3 *db, const char *path)
{
	sqlite3_stmt	*st;
	const char	*mode;
	int		 ok = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = TRUNCATE", -1, &st,
	    NULL) != SQLITE_OK) {
		log_error("database %s: %s", path, sqlite3_errmsg(db));
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW &&
	    (mode = (const char *)sqlite3_column_text(st, 0)) != NULL)
		ok = strcmp(mode, "truncate") == 0;
	sqlite3_finalize(st);
	if (!ok) {
		/* Leaving WAL mode needs the database to itself. */
		log_error("database %s: cannot leave write-ahead-log mode: %s",
		    path, sqlite3_errcode(db) != SQLITE_OK ?
		    sqlite3_errmsg(db) : "another process has it open");
		return -1;
	}
	return 0;
}

/*
 * Refuse a database that cannot be written now rather than find out at
 * the first usage row. It runs as the account the daemon has become. A
 * read-only file or file system is caught at open; a directory in which
 * the journal cannot be created shows only at the first write, so one
 * is tried: the header is changed in a transaction, which opens the
 * journal, and rolled back. A full disk is not refused: usage rows wait
 * in memory until there is room.
 */
static int
store_check_writable(sqlite3 *db, const char *path, const char *state_dir)
{
	char	 sql[80];
	int	 rc;

	snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; PRAGMA user_version = %d",
	    STORE_SCHEMA_VERSION);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		rc = SQLITE_OK;
	else if ((rc = sqlite3_errcode(db)) == SQLITE_FULL)
		log_warn("database %s: the disk is full; usage rows will wait "
		    "in memory until there is room", path);
	else if (access(state_dir, W_OK) == -1)
		log_error("database %s cannot be written: state_dir %s: %s",
		    path, state_dir, strerror(errno));
	else
		log_error("database %s cannot be written: %s", path,
		    sqlite3_errmsg(db));
	store_rollback(db);
	return rc == SQLITE_OK || rc == SQLITE_FULL ? 0 : -1;
}

int
store_open(const char *state_dir)
{
	char	*path;
	mode_t	 old;
	int	 rc;

	path = xasprintf("%s/ogate.db", state_dir);
	/* The database holds token hashes and usage: owner-only. */
	old = umask(077);
	rc = sqlite3_open_v2(path, &store_handle, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	umask(old);
	if (rc != SQLITE_OK) {
		log_error("database %s: %s", path, store_handle != NULL ?
		    sqlite3_errmsg(store_handle) : sqlite3_errstr(rc));
		goto fail;
	}
	/* SQLite falls back to read-only without a word: say why. */
	if (sqlite3_db_readonly(store_handle, "main") == 1) {
		log_error("database %s is read-only: %s", path,
		    access(path, W_OK) == -1 ? strerror(errno) :
		    "SQLite could not open it for writing");
		goto fail;
	}
	sqlite3_busy_timeout(store_handle, 5000);
	if (store_exec(store_handle, "PRAGMA mmap_size = 0") != 0 ||
	    store_set_journal(store_handle, path) != 0 ||
	    store_exec(store_handle, "PRAGMA synchronous = NORMAL") != 0 ||
	    store_exec(store_handle, "PRAGMA foreign_keys = ON") != 0 ||
	    store_migrate(store_handle) != 0 ||
	    store_check_writable(store_handle, path, state_dir) != 0)
		goto fail;
	free(path);
	return 0;
fail:
	free(path);
	return -1;
}

sqlite3 *
store_db(void)
{
	return store_handle;
}

int
store_schema_version(void)
{
	return STORE_SCHEMA_VERSION;
}

void
store_start(void)
{
	int	fd;

	if ((fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("eventfd: %s", strerror(errno));
	loop_io_init(&store_io, fd, store_event, NULL);
	loop_io_set(&store_io, EPOLLIN);
	if ((errno = pthread_create(&store_thread, NULL, store_main, NULL)) != 0)
		fatal("pthread_create: %s", strerror(errno));
	store_running = 1;
}

void
store_submit(struct store_job *job)
{
	job->status = 0;
	pthread_mutex_lock(&store_lock);
	STAILQ_INSERT_TAIL(&store_todo, job, entry);
	pthread_cond_signal(&store_cond);
	pthread_mutex_unlock(&store_lock);
}

static void *
store_main(void *arg)
{
	struct store_job	*job;
	uint64_t		 one = 1;

	loop_background_thread();
	pthread_mutex_lock(&store_lock);
	for (;;) {
		while (STAILQ_EMPTY(&store_todo) && !store_stopping)
			pthread_cond_wait(&store_cond, &store_lock);
		if ((job = STAILQ_FIRST(&store_todo)) == NULL)
			break;
		STAILQ_REMOVE_HEAD(&store_todo, entry);
		pthread_mutex_unlock(&store_lock);

		job->run(store_handle, job);

		pthread_mutex_lock(&store_lock);
		STAILQ_INSERT_TAIL(&store_done, job, entry);
		if (write(store_io.fd, &one, sizeof one) < 0) {
			/* The counter cannot overflow in practice. */
		}
	}
	pthread_mutex_unlock(&store_lock);
	return NULL;
}

/* Run the done functions of finished jobs on the loop thread. */
static void
store_finish(void)
{
	struct store_queue	 done = STAILQ_HEAD_INITIALIZER(done);
	struct store_job	*job;

	pthread_mutex_lock(&store_lock);
	STAILQ_CONCAT(&done, &store_done);
	pthread_mutex_unlock(&store_lock);
	while ((job = STAILQ_FIRST(&done)) != NULL) {
		STAILQ_REMOVE_HEAD(&done, entry);
		job->done(job);
	}
}

static void
store_event(struct loop_io *io, uint32_t events)
{
	uint64_t	n;

	while (read(io->fd, &n, sizeof n) == (ssize_t)sizeof n)
		;
	store_finish();
}

void
store_stop(void)
{
	if (store_running) {
		pthread_mutex_lock(&store_lock);
		store_stopping = 1;
		pthread_cond_signal(&store_cond);
		pthread_mutex_unlock(&store_lock);
		pthread_join(store_thread, NULL);
		store_running = 0;
		store_finish();
		loop_io_del(&store_io);
		close(store_io.fd);
	}
	if (store_handle != NULL) {
		sqlite3_close(store_handle);
		store_handle = NULL;
	}
}
