/*
 * router.c: the table of endpoints the gateway serves.
 */
#include <stdio.h>
#include <string.h>

#include "body.h"
#include "router.h"

#define M(m)	(1u << (m))
#define GET	(M(HTTP_GET) | M(HTTP_HEAD))
#define POST	M(HTTP_POST)

/* The fields of a body each kind of backend reads and the gateway acts on. */
#define B_SHOW		(BODY_F(BODY_MODEL) | BODY_F(BODY_NAME))
#define B_NATIVE	(BODY_F(BODY_MODEL) | BODY_F(BODY_STREAM) | \
			BODY_F(BODY_OPTIONS) | BODY_F(BODY_NUM_PREDICT) | \
			BODY_F(BODY_NUM_CTX) | BODY_F(BODY_KEEP_ALIVE))
#define B_EMBED		BODY_F(BODY_MODEL)
#define B_NATIVE_EMBED	(BODY_F(BODY_MODEL) | BODY_F(BODY_KEEP_ALIVE))
#define B_COMPLETIONS	(BODY_F(BODY_MODEL) | BODY_F(BODY_STREAM) | \
			BODY_F(BODY_STREAM_OPTIONS) | \
			BODY_F(BODY_INCLUDE_USAGE) | BODY_F(BODY_MAX_TOKENS))
#define B_CHAT		(B_COMPLETIONS | BODY_F(BODY_MAX_COMPLETION_TOKENS))
#define B_MESSAGES	(BODY_F(BODY_MODEL) | BODY_F(BODY_STREAM) | \
			BODY_F(BODY_MAX_TOKENS))
#define B_RESPONSES	(BODY_F(BODY_MODEL) | BODY_F(BODY_STREAM) | \
			BODY_F(BODY_MAX_OUTPUT_TOKENS))

#define INFER		(ROUTE_INFER | ROUTE_MODEL)
#define GENERATE	(INFER | ROUTE_GENERATES)

static const struct route router_routes[] = {
	{ "/", GET, DIALECT_OLLAMA, ROUTE_PUBLIC, "root", 0 },
	{ "/api/version", GET, DIALECT_OLLAMA, ROUTE_PUBLIC, "version", 0 },
	{ "/api/tags", GET, DIALECT_OLLAMA, ROUTE_LIST, "tags", 0 },
	{ "/api/ps", M(HTTP_GET), DIALECT_OLLAMA, ROUTE_LIST | ROUTE_HOLDERS,
	    "ps", 0 },
	{ "/api/show", POST, DIALECT_OLLAMA, ROUTE_MODEL, "show", B_SHOW },
	{ "/api/generate", POST, DIALECT_OLLAMA, GENERATE | ROUTE_CACHE,
	    "generate", B_NATIVE },
	{ "/api/chat", POST, DIALECT_OLLAMA, GENERATE | ROUTE_CACHE, "chat",
	    B_NATIVE },
	{ "/api/embed", POST, DIALECT_OLLAMA, INFER | ROUTE_CACHE, "embed",
	    B_NATIVE_EMBED },
	{ "/api/embeddings", POST, DIALECT_OLLAMA, INFER | ROUTE_CACHE,
	    "embeddings", B_NATIVE_EMBED },
	{ "/api/pull", POST, DIALECT_OLLAMA, ROUTE_MANAGE | ROUTE_PROGRESS,
	    "pull", 0 },
	{ "/api/push", POST, DIALECT_OLLAMA, ROUTE_MANAGE | ROUTE_PROGRESS,
	    "push", 0 },
	{ "/api/create", POST, DIALECT_OLLAMA, ROUTE_MANAGE | ROUTE_PROGRESS,
	    "create", 0 },
	{ "/api/copy", POST, DIALECT_OLLAMA, ROUTE_MANAGE, "copy", 0 },
	{ "/api/delete", M(HTTP_DELETE), DIALECT_OLLAMA, ROUTE_MANAGE, "delete",
	    0 },
	{ "/api/blobs/", M(HTTP_HEAD) | POST, DIALECT_OLLAMA,
	    ROUTE_MANAGE | ROUTE_PARAM | ROUTE_UPLOAD, "blobs", 0 },
	/* Which backend is up and what it runs: as readable as /api/tags. */
	{ "/api/status", M(HTTP_GET), DIALECT_OLLAMA, 0, "status", 0 },
	/*
	 * These act with the backend's own ollama.com account (its plan,
	 * its web search quota, its sign-in): for administrators only.
	 * The key is URL-safe base64, so the strict parameter check holds.
	 */
	{ "/api/me", POST, DIALECT_OLLAMA, ROUTE_ADMIN, "me", 0 },
	{ "/api/signout", POST, DIALECT_OLLAMA, ROUTE_ADMIN, "signout", 0 },
	{ "/api/user/keys/", M(HTTP_DELETE), DIALECT_OLLAMA,
	    ROUTE_ADMIN | ROUTE_PARAM, "user/keys", 0 },
	{ "/api/experimental/web_search", POST, DIALECT_OLLAMA, ROUTE_ADMIN,
	    "web_search", 0 },
	{ "/api/experimental/web_fetch", POST, DIALECT_OLLAMA, ROUTE_ADMIN,
	    "web_fetch", 0 },
	{ "/api/experimental/model-recommendations", M(HTTP_GET),
	    DIALECT_OLLAMA, ROUTE_ADMIN, "model-recommendations", 0 },
	{ "/v1/chat/completions", POST, DIALECT_OPENAI,
	    GENERATE | ROUTE_USAGE_ASK | ROUTE_CACHE, "v1/chat/completions",
	    B_CHAT },
	{ "/v1/completions", POST, DIALECT_OPENAI,
	    GENERATE | ROUTE_USAGE_ASK | ROUTE_CACHE, "v1/completions",
	    B_COMPLETIONS },
	{ "/v1/embeddings", POST, DIALECT_OPENAI, INFER | ROUTE_CACHE,
	    "v1/embeddings", B_EMBED },
	/*
	 * No [DONE] and no include_usage: the final event has the usage.
	 * A stream that fails ends with the API's own error event.
	 */
	{ "/v1/responses", POST, DIALECT_OPENAI, GENERATE | ROUTE_EVENTS,
	    "v1/responses", B_RESPONSES },
	{ "/v1/audio/transcriptions", POST, DIALECT_OPENAI, INFER | ROUTE_FORM,
	    "v1/audio/transcriptions", 0 },
	/* Anthropic's API demands max_tokens: the gateway never adds it. */
	{ "/v1/messages", POST, DIALECT_ANTHROPIC, GENERATE | ROUTE_OWN_LIMIT,
	    "v1/messages", B_MESSAGES },
	{ "/v1/models", M(HTTP_GET), DIALECT_OPENAI, ROUTE_LIST, "v1/models",
	    0 },
	{ "/v1/models/", M(HTTP_GET), DIALECT_OPENAI,
	    ROUTE_PARAM | ROUTE_MODEL, "v1/models/model", 0 },
};

/*
 * A path is acceptable if it is made of unreserved characters, ':' and
 * '/', with no empty, "." or ".." segment. Percent escapes are allowed
 * only where the caller says so (in a parameter), and only for
 * characters a model name or digest may hold.
 */
static int
router_path_ok(const char *p, size_t len, int allow_escapes)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char	c = (unsigned char)p[i];

		if (c == '/') {
			if (i + 1 < len && p[i + 1] == '/')
				return 0;
			if (i + 1 < len && p[i + 1] == '.') {
				size_t	dots = 1;

				while (i + 1 + dots < len && p[i + 1 + dots] == '.')
					dots++;
				if (i + 1 + dots == len || p[i + 1 + dots] == '/')
					return 0;
			}
			continue;
		}
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~' || c == ':')
			continue;
		if (c == '%' && allow_escapes && i + 2 < len) {
			/* Only %3A (':') is used by clients in model names. */
			if (p[i + 1] == '3' && (p[i + 2] == 'A' || p[i + 2] == 'a')) {
				i += 2;
				continue;
			}
		}
		return 0;
	}
	return 1;
}

const struct route *
router_match(enum http_method method, const char *path, size_t len,
    int *status, unsigned *allow)
{
	return router_match_table(router_routes,
	    sizeof router_routes / sizeof router_routes[0],
	    sizeof router_routes[0], method, path, len, status, allow);
}

const struct route *
router_match_table(const struct route *table, size_t n, size_t stride,
    enum http_method method, const char *path, size_t len, int *status,
    unsigned *allow)
{
	const struct route	*r;
	size_t			 i, plen;

	*status = 404;
	*allow = 0;
	for (i = 0; i < n; i++) {
		r = (const struct route *)((const char *)table + i * stride);
		plen = strlen(r->path);
		if (r->flags & ROUTE_PARAM) {
			/* One non-empty segment after the prefix. */
			if (len <= plen || strncmp(path, r->path, plen) != 0)
				continue;
			if (memchr(path + plen, '/', len - plen) != NULL)
				continue;
			if (!router_path_ok(path, plen, 0) ||
			    !router_path_ok(path + plen, len - plen, 1))
				continue;
			if (path[plen] == '.')
				continue;
		} else {
			if (len != plen || memcmp(path, r->path, len) != 0)
				continue;
		}
		if (r->methods & (1u << method)) {
			*status = 0;
			return r;
		}
		*status = 405;
		*allow |= r->methods;
	}
	return NULL;
}

enum dialect
router_dialect(const char *path, size_t len)
{
	static const char	msgs[] = "/v1/messages";
	size_t			mlen = sizeof msgs - 1;

	/* Anthropic's SDK also calls /v1/messages/count_tokens and such. */
	if (len >= mlen && memcmp(path, msgs, mlen) == 0 &&
	    (len == mlen || path[mlen] == '/'))
		return DIALECT_ANTHROPIC;
	if (len >= 4 && memcmp(path, "/v1/", 4) == 0)
		return DIALECT_OPENAI;
	return DIALECT_OLLAMA;
}

void
router_allow_string(unsigned mask, char *out, size_t size)
{
	static const char *const names[] = {
		[HTTP_GET] = "GET", [HTTP_HEAD] = "HEAD", [HTTP_POST] = "POST",
		[HTTP_PUT] = "PUT", [HTTP_DELETE] = "DELETE",
		[HTTP_OPTIONS] = "OPTIONS", [HTTP_PATCH] = "PATCH",
	};
	size_t	used = 0;

	out[0] = '\0';
	for (int m = HTTP_GET; m <= HTTP_PATCH; m++) {
		if (!(mask & (1u << m)))
			continue;
		used += (size_t)snprintf(out + used, size - used, "%s%s",
		    used ? ", " : "", names[m]);
		if (used >= size)
			break;
	}
}
