/*
 * auth.c: users, tokens, roles and model allowlists, in memory.
 */
#include <ctype.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth.h"
#include "http.h"
#include "log.h"
#include "router.h"
#include "xmalloc.h"

#define AUTH_BUCKETS	4096	/* a power of two */

static TAILQ_HEAD(, auth_user)	auth_users = TAILQ_HEAD_INITIALIZER(auth_users);
static TAILQ_HEAD(, auth_token)	auth_tokens = TAILQ_HEAD_INITIALIZER(auth_tokens);
static struct auth_token	*auth_buckets[AUTH_BUCKETS];
static size_t			 auth_nusers, auth_ntokens;

static const char *const auth_role_names[] = {
	[ROLE_READONLY] = "readonly",
	[ROLE_USER] = "user",
	[ROLE_ADMIN] = "admin",
};

const char *
auth_role_name(enum auth_role r)
{
	return auth_role_names[r];
}

int
auth_role_parse(const char *s, enum auth_role *r)
{
	for (int i = ROLE_READONLY; i <= ROLE_ADMIN; i++) {
		if (strcmp(s, auth_role_names[i]) == 0) {
			*r = (enum auth_role)i;
			return 0;
		}
	}
	return -1;
}

/*
 * OpenSSL 3 looks the algorithm up and allocates a context on every
 * one-shot EVP_Digest(); that was most of the cost of checking a token.
 * Hashing happens on the loop thread only, so one fetched algorithm and
 * one context serve every call.
 */
void
auth_hash(const char *s, size_t len, unsigned char out[AUTH_HASH_LEN])
{
	static EVP_MD		*md;
	static EVP_MD_CTX	*ctx;
	unsigned int		 n = AUTH_HASH_LEN;

	if (md == NULL && ((md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (ctx = EVP_MD_CTX_new()) == NULL))
		fatal("SHA-256 is not available");
	if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, s, len) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, &n) != 1)
		fatal("SHA-256 failed");
}

static unsigned
auth_bucket(const unsigned char *hash)
{
	/* The hash is uniform, so its first bytes make a fine index. */
	return ((unsigned)hash[0] | (unsigned)hash[1] << 8) & (AUTH_BUCKETS - 1);
}

void
auth_token_generate(char out[AUTH_TOKEN_LEN + 1],
    unsigned char hash[AUTH_HASH_LEN])
{
	static const char	alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char		rnd[AUTH_TOKEN_RANDOM];

	/*
	 * Each character takes 6 random bits (a byte masked to 0..63, which
	 * keeps the distribution uniform): 43 characters are 258 bits.
	 */
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		fatal("RAND_bytes failed");
	memcpy(out, AUTH_TOKEN_PREFIX, 3);
	for (int i = 0; i < AUTH_TOKEN_RANDOM; i++)
		out[3 + i] = alphabet[rnd[i] & 63];
	out[AUTH_TOKEN_LEN] = '\0';
	explicit_bzero(rnd, sizeof rnd);
	auth_hash(out, AUTH_TOKEN_LEN, hash);
}

/* Lower-case, without the default registry and namespace. */
static char *
auth_model_base(const char *name)
{
	char	*s, *p;

	if (strncasecmp(name, "registry.ollama.ai/", 19) == 0)
		name += 19;
	if (strncasecmp(name, "library/", 8) == 0)
		name += 8;
	s = xstrdup(name);
	for (p = s; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

char *
auth_model_normalise(const char *name)
{
	char	*s = auth_model_base(name), *slash, *t;

	slash = strrchr(s, '/');
	if (strchr(slash != NULL ? slash : s, ':') == NULL) {
		t = xasprintf("%s:latest", s);
		free(s);
		return t;
	}
	return s;
}

void
auth_user_set_models(struct auth_user *u, const char *models)
{
	char	*copy, *tok, *save = NULL;

	for (int i = 0; i < u->nglobs; i++)
		free(u->globs[i]);
	free(u->globs);
	free(u->models);
	u->globs = NULL;
	u->nglobs = 0;
	u->models = xstrdup(models != NULL ? models : "");
	copy = xstrdup(u->models);
	for (tok = strtok_r(copy, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		u->globs = xreallocarray(u->globs, u->nglobs + 1, sizeof *u->globs);
		/* A plain name means what Ollama means by it; a glob is literal. */
		if (strpbrk(tok, "*?[") == NULL)
			u->globs[u->nglobs++] = auth_model_normalise(tok);
		else
			u->globs[u->nglobs++] = auth_model_base(tok);
	}
	free(copy);
}

int
auth_model_match(const char *pattern, const char *model)
{
	char	*p;
	int	 ok;

	/* The same reading of patterns as allowlists use. */
	if (strpbrk(pattern, "*?[") == NULL)
		p = auth_model_normalise(pattern);
	else
		p = auth_model_base(pattern);
	ok = fnmatch(p, model, 0) == 0;
	free(p);
	return ok;
}

int
auth_model_allowed(const struct auth_user *u, const char *model)
{
	char	*name;
	int	 ok = 0;

	if (u->nglobs == 0)
		return 1;
	if (model == NULL || *model == '\0')
		return 0;
	name = auth_model_normalise(model);
	for (int i = 0; i < u->nglobs && !ok; i++)
		ok = fnmatch(u->globs[i], name, 0) == 0;
	free(name);
	return ok;
}

int
auth_role_allows(enum auth_role role, const struct route *r)
{
	if (r->flags & ROUTE_PUBLIC)
		return 1;
	if (r->flags & (ROUTE_MANAGE | ROUTE_ADMIN))
		return role == ROLE_ADMIN;
	if (r->flags & ROUTE_INFER)
		return role >= ROLE_USER;
	return 1;
}

/* Standard base64, for Basic credentials; returns the length or -1. */
static int
auth_base64_decode(const char *in, size_t len, char *out, size_t outlen)
{
	unsigned	acc = 0;
	int		bits = 0;
	size_t		n = 0;

	for (size_t i = 0; i < len; i++) {
		int	c = (unsigned char)in[i], v;

		if (c == '=')
			break;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == outlen)
				return -1;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	return (int)n;
}

static int
auth_token_syntax_ok(const char *t, size_t len)
{
	if (len != AUTH_TOKEN_LEN || memcmp(t, AUTH_TOKEN_PREFIX, 3) != 0)
		return 0;
	for (size_t i = 3; i < len; i++) {
		if (!isalnum((unsigned char)t[i]) && t[i] != '-' && t[i] != '_')
			return 0;
	}
	return 1;
}

static void
auth_refuse(struct auth_result *res, int status, const char *msg)
{
	res->status = status;
	res->message = msg;
	res->user = NULL;
	res->token = NULL;
}

void
auth_check(const struct http_request *req, struct auth_result *res)
{
	const struct http_header	*h;
	const char			*cred = NULL;
	size_t				 len = 0;
	char				 basic[256];
	unsigned char			 hash[AUTH_HASH_LEN];
	struct auth_token		*t;
	time_t				 now;

	memset(res, 0, sizeof *res);
	/* Two credentials leave it unclear who asks: refuse, never choose. */
	for (int i = 0, n = 0; i < req->nheaders; i++) {
		if ((strcasecmp(req->headers[i].name, "authorization") == 0 ||
		    strcasecmp(req->headers[i].name, "x-api-key") == 0) &&
		    ++n > 1) {
			auth_refuse(res, 401, "more than one credential in the "
			    "request; send one API token");
			return;
		}
	}
	if ((h = http_find_header(req, "authorization")) != NULL) {
		if (h->value_len > 7 && strncasecmp(h->value, "Bearer ", 7) == 0) {
			cred = h->value + 7;
			while (*cred == ' ')
				cred++;
			len = strlen(cred);
		} else if (h->value_len > 6 &&
		    strncasecmp(h->value, "Basic ", 6) == 0) {
			/* https://user:TOKEN@host: the token is the password. */
			const char	*v = h->value + 6;
			int		 n;
			char		*colon;

			while (*v == ' ')
				v++;
			n = auth_base64_decode(v, strlen(v), basic,
			    sizeof basic - 1);
			if (n < 0) {
				auth_refuse(res, 401, "malformed Basic credentials");
				return;
			}
			basic[n] = '\0';
			if ((colon = memchr(basic, ':', (size_t)n)) == NULL) {
				explicit_bzero(basic, sizeof basic);
				auth_refuse(res, 401, "malformed Basic credentials");
				return;
			}
			cred = colon + 1;
			len = (size_t)(basic + n - cred);
		} else {
			auth_refuse(res, 401, "unsupported authorization scheme; "
			    "use Bearer with an API token");
			return;
		}
	} else if ((h = http_find_header(req, "x-api-key")) != NULL) {
		cred = h->value;
		len = h->value_len;
	}
	if (cred == NULL || len == 0) {
		auth_refuse(res, 401, "missing API token");
		return;
	}
	if (!auth_token_syntax_ok(cred, len)) {
		explicit_bzero(basic, sizeof basic);
		auth_refuse(res, 401, "malformed API token");
		return;
	}
	auth_hash(cred, len, hash);
	explicit_bzero(basic, sizeof basic);
	for (t = auth_buckets[auth_bucket(hash)]; t != NULL; t = t->next) {
		if (CRYPTO_memcmp(t->hash, hash, AUTH_HASH_LEN) == 0)
			break;
	}
	if (t == NULL) {
		auth_refuse(res, 401, "invalid API token");
		return;
	}
	now = time(NULL);
	if (t->revoked != 0) {
		auth_refuse(res, 401, "API token revoked");
		return;
	}
	if (t->expires != 0 && t->expires <= now) {
		auth_refuse(res, 401, "API token expired");
		return;
	}
	if (!t->user->enabled) {
		auth_refuse(res, 401, "user disabled");
		return;
	}
	if (t->last_used != now) {
		t->last_used = now;
		t->used_dirty = 1;
	}
	res->user = t->user;
	res->token = t;
}

struct auth_user *
auth_user_find(const char *name)
{
	struct auth_user	*u;

	TAILQ_FOREACH(u, &auth_users, entry) {
		if (strcmp(u->name, name) == 0)
			return u;
	}
	return NULL;
}

struct auth_user *
auth_user_find_id(int64_t id)
{
	struct auth_user	*u;

	TAILQ_FOREACH(u, &auth_users, entry) {
		if (u->id == id)
			return u;
	}
	return NULL;
}

struct auth_user *
auth_user_first(void)
{
	return TAILQ_FIRST(&auth_users);
}

struct auth_user *
auth_user_next(struct auth_user *u)
{
	return TAILQ_NEXT(u, entry);
}

size_t
auth_user_count(void)
{
	return auth_nusers;
}

size_t
auth_token_count(void)
{
	return auth_ntokens;
}

void
auth_user_ref(struct auth_user *u)
{
	u->refs++;
}

void
auth_user_unref(struct auth_user *u)
{
	if (--u->refs > 0)
		return;
	free(u->name);
	for (int i = 0; i < u->nglobs; i++)
		free(u->globs[i]);
	free(u->globs);
	free(u->models);
	free(u);
}

void
auth_user_copy_fields(struct auth_user *dst, const struct auth_user *src)
{
	dst->role = src->role;
	dst->enabled = src->enabled;
	auth_user_set_models(dst, src->models);
	dst->priority = src->priority;
	dst->tokens_per_day = src->tokens_per_day;
	dst->tokens_per_month = src->tokens_per_month;
	dst->requests_per_minute = src->requests_per_minute;
	dst->max_concurrent = src->max_concurrent;
	dst->max_queued = src->max_queued;
	dst->trust_end_user = src->trust_end_user;
}

/* Add a user, or replace the fields of the one with the same id. */
void
auth_user_put(struct auth_user *nu)
{
	struct auth_user	*u = auth_user_find_id(nu->id);

	if (u == NULL) {
		nu->refs = 1;
		TAILQ_INSERT_TAIL(&auth_users, nu, entry);
		auth_nusers++;
		return;
	}
	/* Requests in flight hold the old object; update it in place. */
	free(u->name);
	u->name = nu->name;
	nu->name = NULL;
	auth_user_copy_fields(u, nu);
	nu->refs = 1;
	auth_user_unref(nu);
}

static void
auth_token_unlink(struct auth_token *t)
{
	struct auth_token	**pp = &auth_buckets[auth_bucket(t->hash)];

	while (*pp != NULL && *pp != t)
		pp = &(*pp)->next;
	if (*pp == t)
		*pp = t->next;
	TAILQ_REMOVE(&auth_tokens, t, entry);
	auth_ntokens--;
	free(t->label);
	explicit_bzero(t->hash, sizeof t->hash);
	free(t);
}

void
auth_user_remove(struct auth_user *u)
{
	struct auth_token	*t, *next;

	for (t = TAILQ_FIRST(&auth_tokens); t != NULL; t = next) {
		next = TAILQ_NEXT(t, entry);
		if (t->user == u)
			auth_token_unlink(t);
	}
	TAILQ_REMOVE(&auth_users, u, entry);
	auth_nusers--;
	u->deleted = 1;
	u->enabled = 0;
	auth_user_unref(u);
}

void
auth_token_add(struct auth_token *t)
{
	unsigned	b = auth_bucket(t->hash);

	t->next = auth_buckets[b];
	auth_buckets[b] = t;
	TAILQ_INSERT_TAIL(&auth_tokens, t, entry);
	auth_ntokens++;
}

struct auth_token *
auth_token_find_id(int64_t id)
{
	struct auth_token	*t;

	TAILQ_FOREACH(t, &auth_tokens, entry) {
		if (t->id == id)
			return t;
	}
	return NULL;
}

struct auth_token *
auth_token_first(void)
{
	return TAILQ_FIRST(&auth_tokens);
}

struct auth_token *
auth_token_next(struct auth_token *t)
{
	return TAILQ_NEXT(t, entry);
}

static int64_t
auth_col_int(sqlite3_stmt *st, int col, int64_t unset)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return unset;
	return sqlite3_column_int64(st, col);
}

int
auth_load(sqlite3 *db)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(db, "SELECT id, name, role, enabled, models, "
	    "priority, tokens_per_day, tokens_per_month, requests_per_minute, "
	    "max_concurrent, created, max_queued, trust_end_user FROM users "
	    "ORDER BY id", -1, &st,
	    NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct auth_user	*u = xcalloc(1, sizeof *u);

		u->id = sqlite3_column_int64(st, 0);
		u->name = xstrdup((const char *)sqlite3_column_text(st, 1));
		if (auth_role_parse((const char *)sqlite3_column_text(st, 2),
		    &u->role) != 0)
			u->role = ROLE_READONLY;
		u->enabled = sqlite3_column_int(st, 3);
		auth_user_set_models(u, (const char *)sqlite3_column_text(st, 4));
		u->priority = auth_col_int(st, 5, AUTH_UNSET);
		u->tokens_per_day = auth_col_int(st, 6, AUTH_UNSET);
		u->tokens_per_month = auth_col_int(st, 7, AUTH_UNSET);
		u->requests_per_minute = auth_col_int(st, 8, AUTH_UNSET);
		u->max_concurrent = auth_col_int(st, 9, AUTH_UNSET);
		u->created = sqlite3_column_int64(st, 10);
		u->max_queued = auth_col_int(st, 11, AUTH_UNSET);
		u->trust_end_user = sqlite3_column_int(st, 12);
		auth_user_put(u);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;

	if (sqlite3_prepare_v2(db, "SELECT id, user_id, label, hash, prefix, "
	    "created, expires, revoked, last_used FROM tokens ORDER BY id", -1,
	    &st, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct auth_token	*t;
		struct auth_user	*u;

		u = auth_user_find_id(sqlite3_column_int64(st, 1));
		if (u == NULL || sqlite3_column_bytes(st, 3) != AUTH_HASH_LEN)
			continue;
		t = xcalloc(1, sizeof *t);
		t->id = sqlite3_column_int64(st, 0);
		t->user = u;
		t->label = xstrdup((const char *)sqlite3_column_text(st, 2));
		memcpy(t->hash, sqlite3_column_blob(st, 3), AUTH_HASH_LEN);
		snprintf(t->prefix, sizeof t->prefix, "%s",
		    (const char *)sqlite3_column_text(st, 4));
		t->created = sqlite3_column_int64(st, 5);
		t->expires = auth_col_int(st, 6, 0);
		t->revoked = auth_col_int(st, 7, 0);
		t->last_used = auth_col_int(st, 8, 0);
		auth_token_add(t);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	log_info("identity: %zu users, %zu tokens", auth_nusers, auth_ntokens);
	return 0;
fail:
	log_error("loading users and tokens: %s", sqlite3_errmsg(db));
	return -1;
}

void
auth_free_all(void)
{
	struct auth_token	*t;
	struct auth_user	*u;

	while ((t = TAILQ_FIRST(&auth_tokens)) != NULL)
		auth_token_unlink(t);
	while ((u = TAILQ_FIRST(&auth_users)) != NULL)
		auth_user_remove(u);
}
