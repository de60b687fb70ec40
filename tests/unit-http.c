/*
 * unit-http.c: the HTTP/1.1 request parser against good requests and
 * the ambiguous ones request smugglers use.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http.h"
#include "tap.h"

static int
parse(const char *raw, struct http_request *r)
{
	http_request_clear(r);
	return http_parse_head(raw, strlen(raw), 8192, r);
}

static int
parse_len(const char *raw, size_t len, struct http_request *r)
{
	http_request_clear(r);
	return http_parse_head(raw, len, 8192, r);
}

static void
test_good(void)
{
	struct http_request	r;
	const char		*raw = "POST /api/chat?x=1 HTTP/1.1\r\n"
	    "Host: localhost:11435\r\nContent-Length: 12\r\n"
	    "X-Empty:\r\nUser-Agent:  curl/8  \r\n\r\nbody follows";
	int			n;

	memset(&r, 0, sizeof r);
	n = parse(raw, &r);
	tap_is_int(n, (int)(strstr(raw, "body") - raw), "head length returned");
	tap_ok(r.method == HTTP_POST, "method POST");
	tap_is_str(r.target, "/api/chat?x=1", "target kept whole");
	tap_ok(r.path_len == 9 && strncmp(r.path, "/api/chat", 9) == 0,
	    "path stops at the query");
	tap_is_str(r.query, "x=1", "query");
	tap_is_int(r.content_length, 12, "content length");
	tap_ok(r.keep_alive, "HTTP/1.1 keeps alive by default");
	tap_is_str(http_find_header(&r, "user-agent")->value, "curl/8",
	    "header lookup is case-insensitive and trims OWS");
	tap_is_int(http_find_header(&r, "x-empty")->value_len, 0,
	    "empty header value");
	tap_is_str(r.host, "localhost:11435", "host");

	tap_is_int(parse("GET / HTTP/1.1\r\nHost: a\r\n", &r), 0,
	    "incomplete head needs more");
	tap_ok(parse("GET / HTTP/1.0\r\n\r\n", &r) > 0 && !r.keep_alive,
	    "HTTP/1.0 without Host is accepted, not kept alive");
	tap_ok(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n",
	    &r) > 0 && !r.keep_alive, "Connection: close");
	tap_ok(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED"
	    "\r\n\r\n", &r) > 0 && r.chunked, "chunked, case-insensitive");
	tap_ok(parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
	    "Content-Length: 5\r\n\r\n", &r) > 0 && r.expect_continue,
	    "Expect: 100-continue");
	tap_ok(parse("FOO / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0 &&
	    r.method == HTTP_OTHER, "an unknown but valid method token parses");
	http_request_clear(&r);
}

static void
test_refused(void)
{
	static const struct {
		const char	*raw;
		int		 status;
		const char	*what;
	} cases[] = {
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n", 400,
		  "Content-Length with Transfer-Encoding" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
		  "Content-Length: 5\r\n\r\n", 400, "duplicate Content-Length" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
		  400, "list-valued Content-Length" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400,
		  "negative Content-Length" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
		  400, "hex Content-Length" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "
		  "99999999999999999999\r\n\r\n", 400, "huge Content-Length" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400,
		  "empty Content-Length" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked"
		  "\r\n\r\n", 400, "transfer coding other than chunked" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n", 400, "duplicate TE" },
		{ "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
		  "chunked in HTTP/1.0" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n", 400,
		  "obsolete line folding" },
		{ "GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare LF" },
		{ "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400,
		  "bare LF in a header" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400,
		  "bare CR in a value" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01" "b\r\n\r\n", 400,
		  "control character in a value" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n", 400,
		  "space before the colon" },
		{ "GET / HTTP/1.1\r\nHost: a\r\n: y\r\n\r\n", 400,
		  "empty header name" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nBad Name: y\r\n\r\n", 400,
		  "space in a header name" },
		{ "GET / HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 without Host" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
		  "two Host headers" },
		{ "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad Host" },
		{ "GET http://evil/ HTTP/1.1\r\nHost: a\r\n\r\n", 400,
		  "absolute-form target" },
		{ "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "asterisk target" },
		{ "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "fragment" },
		{ "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "space in target" },
		{ "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "double space" },
		{ "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400, "HTTP/2.0" },
		{ "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 400, "HTTP/1.2" },
		{ "GET / http/1.1\r\nHost: a\r\n\r\n", 400, "lower-case version" },
		{ "GET /\r\n\r\n", 400, "HTTP/0.9 request line" },
		{ "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid method" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", 417,
		  "unknown expectation" },
		{ "\xff\xfe / HTTP/1.1\r\nHost: a\r\n\r\n", 400,
		  "binary method" },
	};
	struct http_request	r;

	memset(&r, 0, sizeof r);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		tap_is_int(parse(cases[i].raw, &r), -cases[i].status,
		    "refused: %s", cases[i].what);
	tap_is_int(parse_len("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", 29, &r), -400,
	    "refused: NUL byte");
	{
		char	big[9000];

		memset(big, 'a', sizeof big);
		memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
		tap_is_int(parse_len(big, sizeof big, &r), -431,
		    "a head over the limit is 431");
	}
	{
		static char	many[8192];
		size_t		off;

		off = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\n");
		for (int i = 0; i < HTTP_MAX_HEADERS + 1; i++)
			off += (size_t)snprintf(many + off, sizeof many - off,
			    "H%d: v\r\n", i);
		snprintf(many + off, sizeof many - off, "\r\n");
		tap_is_int(parse(many, &r), -431, "too many header fields is 431");
	}
	http_request_clear(&r);
}

static ssize_t
chunked(const char *in, struct buf *out, int *done)
{
	struct http_chunked	c;

	http_chunked_init(&c);
	buf_reset(out);
	return http_chunked_feed(&c, in, strlen(in), out, 1 << 20, done);
}

static void
test_chunked(void)
{
	struct buf		out;
	struct http_chunked	c;
	const char		*body = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n"
	    "Trailer: x\r\n\r\nNEXT";
	int			done;
	ssize_t			n;

	buf_init(&out);
	n = chunked(body, &out, &done);
	tap_ok(done && n == (ssize_t)(strlen(body) - 4), "chunked body decoded, "
	    "stops before the next request");
	tap_ok(buf_used(&out) == 11 && memcmp(buf_ptr(&out), "hello world", 11) == 0,
	    "chunk data joined");

	/* Fed one byte at a time, the result is the same. */
	http_chunked_init(&c);
	buf_reset(&out);
	done = 0;
	for (size_t i = 0; i < strlen(body) - 4 && !done; i++)
		n = http_chunked_feed(&c, body + i, 1, &out, 1 << 20, &done);
	tap_ok(done && buf_used(&out) == 11, "byte-at-a-time decoding");

	tap_is_int(chunked("fffffffffffffffff\r\n", &out, &done), -400,
	    "oversized chunk size refused");
	tap_is_int(chunked("200000\r\n", &out, &done), -413,
	    "chunk larger than max body is 413");
	tap_is_int(chunked("g\r\n", &out, &done), -400, "non-hex chunk size");
	tap_is_int(chunked("\r\n", &out, &done), -400, "empty chunk size");
	tap_is_int(chunked("5\nhello\r\n", &out, &done), -400,
	    "bare LF after chunk size");
	tap_is_int(chunked("5\r\nhelloXX", &out, &done), -400,
	    "chunk data longer than its size");
	tap_is_int(chunked("3 4\r\nabc\r\n0\r\n\r\n", &out, &done), -400,
	    "whitespace inside a chunk size");
	tap_is_int(chunked("3 \r\nabc\r\n0\r\n\r\n", &out, &done), -400,
	    "whitespace after a chunk size without an extension");
	buf_reset(&out);
	tap_ok(chunked("3 \t;x=1\r\nabc\r\n0\r\n\r\n", &out, &done) > 0 &&
	    done && buf_used(&out) == 3, "whitespace before an extension");
	{
		char	ext[2000];

		memset(ext, 'a', sizeof ext);
		memcpy(ext, "1;", 2);
		ext[sizeof ext - 1] = '\0';
		tap_is_int(chunked(ext, &out, &done), -400,
		    "huge chunk extension refused");
	}
	tap_is_int(chunked("0\r\nX: \x01\r\n\r\n", &out, &done), -400,
	    "control character in a trailer");
	buf_free(&out);
}

int
main(void)
{
	test_good();
	test_refused();
	test_chunked();
	return tap_done();
}
