/*
 * unit-router.c: the route table and the path checks that keep odd
 * spellings of a path from reaching another route.
 */
#include <string.h>

#include "router.h"
#include "tap.h"

static const struct route *
match(enum http_method m, const char *path, int *status)
{
	unsigned	allow;

	return router_match(m, path, strlen(path), status, &allow);
}

int
main(void)
{
	const struct route	*r;
	int			 status;
	unsigned		 allow;
	char			 methods[64];
	static const char *const bad[] = {
		"/api//chat", "/api/./chat", "/api/../api/chat", "/api/chat/",
		"/api/chat/.", "/API/CHAT", "/api/ch%61t", "/api%2fchat",
		"/api/chat%00", "/v1/models/a/b", "/v1/models/..", "/api/blobs/",
		"/v1/models/", "//", "/api/tags/..", "/api/blobs/%2e%2e",
	};

	r = match(HTTP_POST, "/api/chat", &status);
	tap_ok(r != NULL && strcmp(r->endpoint, "chat") == 0 &&
	    (r->flags & ROUTE_INFER), "POST /api/chat is inference");
	r = match(HTTP_GET, "/", &status);
	tap_ok(r != NULL && (r->flags & ROUTE_PUBLIC), "GET / is public");
	r = match(HTTP_HEAD, "/", &status);
	tap_ok(r != NULL, "HEAD / is served");
	r = match(HTTP_GET, "/api/version", &status);
	tap_ok(r != NULL && (r->flags & ROUTE_PUBLIC), "version is public");
	r = match(HTTP_DELETE, "/api/delete", &status);
	tap_ok(r != NULL && (r->flags & ROUTE_MANAGE), "DELETE /api/delete");
	r = match(HTTP_POST, "/v1/chat/completions", &status);
	tap_ok(r != NULL && r->dialect == DIALECT_OPENAI, "/v1 is OpenAI");
	r = match(HTTP_GET, "/v1/models/llama3.2%3Alatest", &status);
	tap_ok(r != NULL && strcmp(r->endpoint, "v1/models/model") == 0,
	    "model parameter with an escaped colon");
	r = match(HTTP_HEAD, "/api/blobs/sha256:0123abcd", &status);
	tap_ok(r != NULL && (r->flags & ROUTE_MANAGE), "HEAD blob");

	r = match(HTTP_GET, "/api/chat", &status);
	tap_ok(r == NULL && status == 405, "GET /api/chat is 405");
	router_match(HTTP_GET, "/api/chat", 9, &status, &allow);
	router_allow_string(allow, methods, sizeof methods);
	tap_is_str(methods, "POST", "Allow names POST");
	r = match(HTTP_GET, "/nope", &status);
	tap_ok(r == NULL && status == 404, "unknown path is 404");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		r = match(HTTP_POST, bad[i], &status);
		tap_ok(r == NULL && status == 404, "no route for %s", bad[i]);
		r = match(HTTP_GET, bad[i], &status);
		tap_ok(r == NULL, "no GET route for %s", bad[i]);
	}
	r = match(HTTP_POST, "/v1/messages", &status);
	tap_ok(r != NULL && r->dialect == DIALECT_ANTHROPIC &&
	    (r->flags & ROUTE_GENERATES) && (r->flags & ROUTE_OWN_LIMIT),
	    "/v1/messages generates, in Anthropic's dialect, bound by the client");
	r = match(HTTP_POST, "/v1/responses", &status);
	tap_ok(r != NULL && r->dialect == DIALECT_OPENAI &&
	    (r->flags & ROUTE_GENERATES) && !(r->flags & ROUTE_USAGE_ASK),
	    "/v1/responses generates and needs no usage asked for");
	r = match(HTTP_POST, "/v1/audio/transcriptions", &status);
	tap_ok(r != NULL && (r->flags & ROUTE_INFER) && (r->flags & ROUTE_FORM) &&
	    r->body == 0, "transcriptions: inference, model in a form");
	r = match(HTTP_GET, "/api/status", &status);
	tap_ok(r != NULL && (r->flags & (ROUTE_PUBLIC | ROUTE_MANAGE |
	    ROUTE_ADMIN | ROUTE_INFER)) == 0, "/api/status: any role");
	{
		static const struct {
			enum http_method	 m;
			const char		*path;
		} admin[] = {
			{ HTTP_POST, "/api/me" }, { HTTP_POST, "/api/signout" },
			{ HTTP_DELETE, "/api/user/keys/c3NoLWVkMjU1MTk_AA-b" },
			{ HTTP_POST, "/api/experimental/web_search" },
			{ HTTP_POST, "/api/experimental/web_fetch" },
			{ HTTP_GET, "/api/experimental/model-recommendations" },
		};

		for (size_t i = 0; i < sizeof admin / sizeof admin[0]; i++) {
			r = match(admin[i].m, admin[i].path, &status);
			tap_ok(r != NULL && (r->flags & ROUTE_ADMIN) &&
			    !(r->flags & (ROUTE_MODEL | ROUTE_INFER)),
			    "%s is for administrators", admin[i].path);
		}
	}
	r = match(HTTP_GET, "/v1/messages", &status);
	tap_ok(r == NULL && status == 405, "GET /v1/messages is 405");
	{
		static const char *const none[] = {
			"/api/web_search", "/api/signin", "/api/user/keys",
			"/api/user/keys/a/b", "/api/experimental/nope",
			"/v1/messages/count_tokens", "/v1/audio/speech",
			"/v1/responses/resp_1", "/api/status/x",
		};

		for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
			r = match(HTTP_POST, none[i], &status);
			tap_ok(r == NULL && status == 404, "no route for %s",
			    none[i]);
		}
	}
	tap_ok(router_dialect("/v1/messages", 12) == DIALECT_ANTHROPIC &&
	    router_dialect("/v1/messages/count_tokens", 25) ==
	    DIALECT_ANTHROPIC && router_dialect("/v1/messagesx", 13) ==
	    DIALECT_OPENAI, "/v1/messages paths answer in Anthropic's dialect");
	tap_ok(router_dialect("/v1/nope", 8) == DIALECT_OPENAI,
	    "unknown /v1 paths answer in OpenAI's dialect");
	tap_ok(router_dialect("/api/nope", 9) == DIALECT_OLLAMA,
	    "others in Ollama's");
	return tap_done();
}
