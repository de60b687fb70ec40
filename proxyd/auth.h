/*
 * auth.h: who may do what: users, their tokens, roles and model
 * allowlists, held in memory.
 *
 * The table is loaded from the database at start and changed only by
 * the admin API once its change has committed, so checking a request is
 * a SHA-256, a hash-table lookup and a constant-time compare: no SQL,
 * no disk. Clear tokens exist only in the request that carries them and
 * in the one response that creates them.
 */
#ifndef OG_AUTH_H
#define OG_AUTH_H

#include <stdint.h>
#include <sys/queue.h>

#include <sqlite3.h>

#define AUTH_HASH_LEN		32
#define AUTH_TOKEN_PREFIX	"og_"
#define AUTH_TOKEN_RANDOM	43	/* url-safe characters after og_ */
#define AUTH_TOKEN_LEN		(3 + AUTH_TOKEN_RANDOM)
#define AUTH_DISPLAY_LEN	10	/* "og_" and 7 characters */

struct http_request;
struct route;

enum auth_role {
	ROLE_READONLY,
	ROLE_USER,
	ROLE_ADMIN,
};

/* A per-user limit that is not set falls back to [defaults]. */
#define AUTH_UNSET	(-1)

/* A user's spending, kept in memory (quota.c). */
struct auth_quota {
	int64_t			 day;		/* UTC day of day_used */
	int64_t			 day_used;
	int64_t			 month;		/* year * 12 + month */
	int64_t			 month_used;
	int64_t			 reserved;	/* by requests in flight */
	int64_t			 active;	/* requests in flight */
	double			 bucket;	/* requests-per-minute allowance */
	uint64_t		 bucket_ms;	/* when it was last filled */
};

/* A share of the backends (fleet.c): a user's, or an end user's. */
struct auth_share {
	double			 served;	/* weighted slot-ms, decaying */
	uint64_t		 at;		/* loop time served is of */
	unsigned		 running;
	unsigned		 queued;
	uint64_t		 seen;		/* loop time of its last request */
};

struct auth_user {
	int64_t			 id;
	char			*name;
	enum auth_role		 role;
	int			 enabled;
	char			*models;	/* comma-separated globs */
	char			**globs;	/* models, split and normalised */
	int			 nglobs;
	int64_t			 priority;
	int64_t			 tokens_per_day;
	int64_t			 tokens_per_month;
	int64_t			 requests_per_minute;
	int64_t			 max_concurrent;
	int64_t			 max_queued;
	int			 trust_end_user; /* its end_user_header counts */
	int64_t			 created;
	struct auth_quota	 quota;
	struct auth_share	 fleet;		/* its share of the backends */
	int			 refs;
	int			 deleted;
	TAILQ_ENTRY(auth_user)	 entry;
};

struct auth_token {
	int64_t			 id;
	struct auth_user	*user;
	unsigned char		 hash[AUTH_HASH_LEN];
	char			 prefix[AUTH_DISPLAY_LEN + 1];
	char			*label;
	int64_t			 created;
	int64_t			 expires;	/* 0: never */
	int64_t			 revoked;	/* 0: not revoked */
	int64_t			 last_used;
	int			 used_dirty;	/* last_used not yet stored */
	struct auth_token	*next;		/* hash chain */
	TAILQ_ENTRY(auth_token)	 entry;
};

/* Why a request was refused (the message a client reads). */
struct auth_result {
	struct auth_user	*user;
	struct auth_token	*token;
	int			 status;	/* 0, 401 or 403 */
	const char		*message;
};

int			 auth_load(sqlite3 *);
void			 auth_free_all(void);

/* Authenticate a request from its headers; sets result. */
void			 auth_check(const struct http_request *,
			    struct auth_result *);
/* May this role use this route? */
int			 auth_role_allows(enum auth_role, const struct route *);
/* May this user use this model (after Ollama's name normalisation)? */
int			 auth_model_allowed(const struct auth_user *,
			    const char *model);
/* Normalise a model name as Ollama does: "llama3.2" -> "llama3.2:latest". */
char			*auth_model_normalise(const char *);
/* Does a pattern (a name, or a glob) match a normalised model name? */
int			 auth_model_match(const char *pattern, const char *model);

const char		*auth_role_name(enum auth_role);
int			 auth_role_parse(const char *, enum auth_role *);

/* The in-memory table, kept current by the admin API. */
struct auth_user	*auth_user_find(const char *name);
struct auth_user	*auth_user_find_id(int64_t);
struct auth_user	*auth_user_first(void);
struct auth_user	*auth_user_next(struct auth_user *);
void			 auth_user_put(struct auth_user *);	/* add/replace */
void			 auth_user_remove(struct auth_user *);
void			 auth_user_ref(struct auth_user *);
void			 auth_user_unref(struct auth_user *);
void			 auth_user_set_models(struct auth_user *, const char *);
/* Copy what an admin may change: role, enabled, models, limits. */
void			 auth_user_copy_fields(struct auth_user *,
			    const struct auth_user *);
struct auth_token	*auth_token_find_id(int64_t);
struct auth_token	*auth_token_first(void);
struct auth_token	*auth_token_next(struct auth_token *);
void			 auth_token_add(struct auth_token *);
size_t			 auth_user_count(void);
size_t			 auth_token_count(void);

/* Make a new token: the clear text (caller wipes it) and its hash. */
void			 auth_token_generate(char out[AUTH_TOKEN_LEN + 1],
			    unsigned char hash[AUTH_HASH_LEN]);
void			 auth_hash(const char *, size_t,
			    unsigned char out[AUTH_HASH_LEN]);

#endif
