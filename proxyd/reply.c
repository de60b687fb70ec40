/*
 * reply.c: responses the gateway writes itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "conn.h"
#include "reply.h"
#include "xmalloc.h"

static const char *
reply_openai_type(int status)
{
	switch (status) {
	case 400: case 404: case 405: case 408: case 413: case 415: case 417:
	case 431:
		return status == 404 ? "not_found_error" : "invalid_request_error";
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 429:
		return "rate_limit_error";
	default:
		return "api_error";
	}
}

/*
 * Anthropic's types (ollama-api.md 7.2). A client's own mistake of a
 * kind the table leaves out (405, 408, 415, 431) is still an invalid
 * request, as Anthropic's API itself says; what the gateway's backends
 * did (502, 504) is an api_error.
 */
static const char *
reply_anthropic_type(int status)
{
	switch (status) {
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 413:
		return "request_too_large";
	case 429:
		return "rate_limit_error";
	case 503: case 529:
		return "overloaded_error";
	default:
		return status >= 400 && status < 500 ?
		    "invalid_request_error" : "api_error";
	}
}

char *
reply_error_json(int status, enum dialect dialect, const char *msg)
{
	json_t	*o;
	char	*s;

	if (dialect == DIALECT_ANTHROPIC) {
		o = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error",
		    "type", reply_anthropic_type(status), "message", msg);
	} else if (dialect == DIALECT_OPENAI) {
		o = json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", msg,
		    "type", reply_openai_type(status), "param", "code");
	} else
		o = json_pack("{s:s}", "error", msg);
	if (o == NULL || (s = json_dumps(o, JSON_COMPACT)) == NULL)
		s = xstrdup("{\"error\":\"internal error\"}");
	json_decref(o);
	return s;
}

char *
reply_event_error_json(const char *msg, uint64_t seq)
{
	json_t	*o;
	char	*s;

	o = json_pack("{s:s, s:I, s:s, s:s, s:n}", "type", "error",
	    "sequence_number", (json_int_t)seq, "code", "server_error",
	    "message", msg, "param");
	if (o == NULL || (s = json_dumps(o, JSON_COMPACT)) == NULL)
		s = xstrdup("{\"type\":\"error\",\"message\":\"internal error\"}");
	json_decref(o);
	return s;
}

const char *
reply_date(void)
{
	static char	date[64];
	static time_t	last;
	time_t		now = time(NULL);
	struct tm	tm;

	if (now != last) {
		gmtime_r(&now, &tm);
		strftime(date, sizeof date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n",
		    &tm);
		last = now;
	}
	return date;
}

void
reply_error(struct conn *c, int status, enum dialect dialect, const char *msg,
    const char *extra_headers)
{
	char	*body = reply_error_json(status, dialect, msg);
	size_t	 len = strlen(body);
	int	 head = c->req.method == HTTP_HEAD;

	c->status = status;
	/* OpenAI's writer ends bodies with a newline; Ollama's does not. */
	conn_printf(c, "HTTP/1.1 %d %s\r\n%s"
	    "Content-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
	    status, http_status_text(status), reply_date(),
	    dialect == DIALECT_OPENAI ? "application/json" :
	    "application/json; charset=utf-8",
	    len + (dialect == DIALECT_OPENAI),
	    c->close_after || !c->req.keep_alive ? "Connection: close\r\n" : "",
	    extra_headers != NULL ? extra_headers : "");
	if (!head) {
		conn_write(c, body, len);
		if (dialect == DIALECT_OPENAI)
			conn_write(c, "\n", 1);
		/* The gateway's own answer is what the row's bytes count. */
		if (c->rq.bytes == 0)
			c->rq.bytes = len + (dialect == DIALECT_OPENAI);
	}
	free(body);
	conn_response_done(c);
}
