/*
 * unit-http.c: the HTTP/1.1 parser against good requests and responses
 * and the ambiguous ones request smugglers and hostile backends use.
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

static int
parse_resp_len(const char *raw, size_t len, size_t max, struct http_response *r)
{
	http_response_clear(r);
	return http_parse_response(raw, len, max, r);
}

static int
parse_resp(const char *raw, struct http_response *r)
{
	return parse_resp_len(raw, strlen(raw), 8192, r);
}

static void
test_response_good(void)
{
	struct http_response	 r;
	const char		*raw = "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: 5\r\nX-Empty:\r\n\r\nhello";
	int			 n;

	memset(&r, 0, sizeof r);
	n = parse_resp(raw, &r);
	tap_is_int(n, (int)(strstr(raw, "hello") - raw),
	    "response: head length returned, the body left alone");
	tap_ok(r.status == 200 && r.minor == 1 && r.keep_alive,
	    "response: 200, HTTP/1.1, kept alive by default");
	tap_is_int(r.content_length, 5, "response: Content-Length");
	tap_ok(!r.chunked, "response: not chunked");
	tap_is_str(http_response_header(&r, "content-type")->value,
	    "application/json", "response: header lookup ignores case");
	tap_ok(r.why == NULL, "response: no why for a good head");

	tap_ok(parse_resp("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", &r) > 0 &&
	    r.status == 200, "response: no reason phrase");
	tap_ok(parse_resp("HTTP/1.1 200 \r\n\r\n", &r) > 0 && r.status == 200,
	    "response: an empty reason phrase after its space");
	tap_ok(parse_resp("HTTP/1.1 404 Not\tFound here\r\n\r\n", &r) > 0 &&
	    r.status == 404, "response: a reason with spaces and a tab");
	tap_ok(parse_resp("HTTP/1.1 100 Continue\r\n\r\n", &r) > 0 &&
	    r.status == 100, "response: an interim 100");
	tap_ok(parse_resp("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
	    &r) > 0 && r.status == 103, "response: an interim 103 with a field");
	tap_ok(parse_resp("HTTP/1.1 204 No Content\r\n\r\n", &r) > 0 &&
	    r.status == 204 && r.content_length == -1 && !r.chunked,
	    "response: 204 without framing");
	tap_ok(parse_resp("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\n"
	    "Content-Length: 2\r\n\r\n", &r) > 0 && !r.keep_alive,
	    "response: Connection: close is not kept alive");
	tap_ok(parse_resp("HTTP/1.1 200 OK\r\nConnection: closed\r\n"
	    "Content-Length: 2\r\n\r\n", &r) > 0 && r.keep_alive,
	    "response: a Connection token that only starts with close");
	tap_ok(parse_resp("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
	    &r) > 0 && r.minor == 0 && !r.keep_alive,
	    "response: HTTP/1.0 is not kept alive");
	tap_ok(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked \r\n"
	    "\r\n", &r) > 0 && r.chunked && r.content_length == -1,
	    "response: chunked, case and trailing space ignored");
	tap_ok(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 000000000000042"
	    "\r\n\r\n", &r) > 0 && r.content_length == 42,
	    "response: 15 digits of Content-Length, leading zeros");
	tap_ok(parse_resp("HTTP/1.1 200 OK\r\n\r\n", &r) > 0 &&
	    r.content_length == -1 && !r.chunked,
	    "response: no framing (the close ends the body)");

	/* A head in pieces needs more until its blank line is there. */
	{
		const char	*h = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
		size_t		 len = strlen(h);
		int		 all_zero = 1;

		for (size_t i = 0; i < len; i++) {
			if (parse_resp_len(h, i, 8192, &r) != 0)
				all_zero = 0;
		}
		tap_ok(all_zero, "response: every prefix of a head needs more");
		tap_is_int(parse_resp_len(h, len, 8192, &r), (int)len,
		    "response: the whole head parses");
	}
	http_response_clear(&r);
}

static void
test_response_refused(void)
{
	static const struct {
		const char	*raw;
		const char	*why;	/* a word the reason must hold */
		const char	*what;
	} cases[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n", "both Transfer-Encoding",
		  "Content-Length with Transfer-Encoding" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		  "Content-Length: 5\r\n\r\n", "both Transfer-Encoding",
		  "Transfer-Encoding with Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
		  "Content-Length: 5\r\n\r\n", "more than one",
		  "two equal Content-Lengths" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
		  "Content-Length: 6\r\n\r\n", "more than one",
		  "two different Content-Lengths" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
		  "invalid Content-Length", "a list-valued Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		  "invalid Content-Length", "a negative Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
		  "invalid Content-Length", "a signed Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
		  "invalid Content-Length", "a hex Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\n",
		  "invalid Content-Length", "a space inside a Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n",
		  "invalid Content-Length", "an exponent in a Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
		  "invalid Content-Length", "an empty Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\n\r\n",
		  "invalid Content-Length", "a 16-digit Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: "
		  "99999999999999999999999\r\n\r\n", "invalid Content-Length",
		  "an overflowing Content-Length" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		  "other than chunked", "gzip, chunked" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n"
		  "\r\n", "other than chunked", "chunked twice in one field" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n", "other than chunked",
		  "two Transfer-Encoding fields" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",
		  "other than chunked", "identity" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n",
		  "other than chunked", "a coding that ends in chunked" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n",
		  "other than chunked", "an empty Transfer-Encoding" },
		{ "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		  "HTTP/1.0", "chunked in HTTP/1.0" },
		{ "HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n", "folded",
		  "obsolete line folding (space)" },
		{ "HTTP/1.1 200 OK\r\nX: y\r\n\tz\r\n\r\n", "folded",
		  "obsolete line folding (tab)" },
		{ "HTTP/1.1 200 OK\r\n Content-Length: 5\r\n\r\n", "folded",
		  "a first field line starting with a space" },
		{ "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare LF",
		  "a bare LF after the status line" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", "bare LF",
		  "a bare LF after a field" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", "bare LF",
		  "a bare LF ending the head" },
		{ "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", "control",
		  "a bare CR in a value" },
		{ "HTTP/1.1 200 OK\r\nX: a\x01" "b\r\n\r\n", "control",
		  "a control byte in a value" },
		{ "HTTP/1.1 200 OK\r\nX: a\x7f" "b\r\n\r\n", "control",
		  "DEL in a value" },
		{ "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", "token",
		  "a space before the colon" },
		{ "HTTP/1.1 200 OK\r\nContent-Length\t: 5\r\n\r\n", "token",
		  "a tab before the colon" },
		{ "HTTP/1.1 200 OK\r\n: y\r\n\r\n", "token", "an empty name" },
		{ "HTTP/1.1 200 OK\r\nBad Name: y\r\n\r\n", "token",
		  "a space in a name" },
		{ "HTTP/1.1 200 OK\r\nBad(Name): y\r\n\r\n", "token",
		  "parentheses in a name" },
		{ "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "token",
		  "a field line without a colon" },
		{ "HTTP/1.1 200 OK\r\n\xc3\xa9: y\r\n\r\n", "token",
		  "a name that is not ASCII" },
		{ "HTTP/1.1 20 OK\r\n\r\n", "status line", "a 2-digit code" },
		{ "HTTP/1.1 2000 OK\r\n\r\n", "status line", "a 4-digit code" },
		{ "HTTP/1.1 OK\r\n\r\n", "status line", "no code" },
		{ "HTTP/1.1\r\n\r\n", "status line", "only a version" },
		{ "HTTP/1.1 \r\n\r\n", "status line", "a version and a space" },
		{ "HTTP/1.1 099 Low\r\n\r\n", "status line", "a code below 100" },
		{ "HTTP/1.1 2x0 OK\r\n\r\n", "status line",
		  "a letter in the code" },
		{ "HTTP/1.1 -20 OK\r\n\r\n", "status line", "a signed code" },
		{ "HTTP/1.1 200OK\r\n\r\n", "status line",
		  "no space after the code" },
		{ "HTTP/1.1  200 OK\r\n\r\n", "status line",
		  "two spaces before the code" },
		{ "HTTP/1.1\t200 OK\r\n\r\n", "status line",
		  "a tab before the code" },
		{ "HTTP/2.0 200 OK\r\n\r\n", "status line", "HTTP/2.0" },
		{ "HTTP/2 200 OK\r\n\r\n", "status line", "HTTP/2" },
		{ "HTTP/1.2 200 OK\r\n\r\n", "status line", "HTTP/1.2" },
		{ "HTTP/0.9 200 OK\r\n\r\n", "status line", "HTTP/0.9" },
		{ "http/1.1 200 OK\r\n\r\n", "status line", "lower-case http/1.1" },
		{ "ICY 200 OK\r\n\r\n", "status line", "not HTTP at all" },
		{ " HTTP/1.1 200 OK\r\n\r\n", "status line",
		  "a space before the version" },
		{ "HTTP/1.1 200 O\x01K\r\n\r\n", "status line",
		  "a control byte in the reason" },
		{ "HTTP/1.1 200 O\rK\r\n\r\n", "status line",
		  "a bare CR in the reason" },
		{ "HTTP/1.1 200 O\x7fK\r\n\r\n", "status line",
		  "DEL in the reason" },
		{ "\r\n\r\n", "status line", "an empty head" },
		{ "\r\nHTTP/1.1 200 OK\r\n\r\n", "status line",
		  "an empty line before the status line" },
	};
	struct http_response	r;

	memset(&r, 0, sizeof r);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int	n = parse_resp(cases[i].raw, &r);

		tap_ok(n == -502 && r.why != NULL &&
		    strstr(r.why, cases[i].why) != NULL,
		    "response refused: %s (%d: %s)", cases[i].what, n,
		    r.why != NULL ? r.why : "no why");
	}
	tap_ok(parse_resp_len("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", 27, 8192,
	    &r) == -502 && r.why != NULL && strstr(r.why, "NUL") != NULL,
	    "response refused: a NUL in a value");
	tap_ok(parse_resp_len("HTTP/1.1 200\0OK\r\n\r\n", 19, 8192, &r) ==
	    -502 && r.why != NULL, "response refused: a NUL in the status line");
	/* A NUL is refused at once, before the head is whole. */
	tap_ok(parse_resp_len("HTTP/1.1 200 OK\r\nX: \0", 21, 8192, &r) == -502,
	    "response refused: a NUL before the head is whole");
	tap_ok(parse_resp_len("HTTP/1.1 200 OK\nX", 17, 8192, &r) == -502,
	    "response refused: a bare LF before the head is whole");
	{
		static char	big[70 * 1024];

		memset(big, 'a', sizeof big);
		memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
		tap_ok(parse_resp_len(big, sizeof big, 64 * 1024, &r) == -502 &&
		    r.why != NULL && strstr(r.why, "size limit") != NULL,
		    "response refused: a head over the limit");
		/* Exactly at the limit and still open: over it too. */
		tap_ok(parse_resp_len(big, 64 * 1024, 64 * 1024, &r) == -502,
		    "response refused: a head that fills the limit unended");
		tap_is_int(parse_resp_len(big, 64 * 1024 - 1, 64 * 1024, &r), 0,
		    "response: one byte under the limit still needs more");
	}
	{
		static char	many[8192];
		size_t		off;

		off = (size_t)snprintf(many, sizeof many, "HTTP/1.1 200 OK\r\n");
		for (int i = 0; i < HTTP_MAX_HEADERS; i++)
			off += (size_t)snprintf(many + off, sizeof many - off,
			    "H%d: v\r\n", i);
		snprintf(many + off, sizeof many - off, "\r\n");
		tap_ok(parse_resp(many, &r) > 0 &&
		    r.nheaders == HTTP_MAX_HEADERS,
		    "response: as many fields as the limit");
		snprintf(many + off, sizeof many - off, "H: v\r\n\r\n");
		tap_ok(parse_resp(many, &r) == -502 && r.why != NULL &&
		    strstr(r.why, "too many") != NULL,
		    "response refused: too many fields");
	}
	http_response_clear(&r);
}

/* A response body, as origin.c decodes it: no limit that matters. */
static ssize_t
resp_chunked(const char *in, size_t len, struct buf *out, int *done)
{
	struct http_chunked	c;

	http_chunked_init(&c);
	buf_reset(out);
	return http_chunked_feed(&c, in, len, out, UINT64_MAX / 2, done);
}

static void
test_response_chunked(void)
{
	static const struct {
		const char	*body;
		const char	*what;
	} bad[] = {
		{ "g\r\n", "a non-hex chunk size" },
		{ "-5\r\nhello\r\n0\r\n\r\n", "a signed chunk size" },
		{ "0x5\r\nhello\r\n0\r\n\r\n", "a 0x prefix" },
		{ " 5\r\nhello\r\n0\r\n\r\n", "a space before the size" },
		{ "5 5\r\nhello\r\n0\r\n\r\n", "a space inside the size" },
		{ "5\t5\r\nhello\r\n0\r\n\r\n", "a tab inside the size" },
		{ "5 \r\nhello\r\n0\r\n\r\n", "a space after the size alone" },
		{ "1000000000000000\r\n", "a 16-digit size" },
		{ "ffffffffffffffffffff\r\n", "an overflowing size" },
		{ "0000000000000005\r\nhello\r\n0\r\n\r\n",
		  "16 digits of leading zeros" },
		{ "\r\n", "an empty size" },
		{ "5\nhello\r\n0\r\n\r\n", "a bare LF after the size" },
		{ "5\rhello\r\n0\r\n\r\n", "a bare CR after the size" },
		{ "5\r\nhelloX\r\n0\r\n\r\n", "data longer than its size" },
		{ "5\r\nhello0\r\n\r\n", "no CRLF after the data" },
		{ "5\r\nhello\n0\r\n\r\n", "a bare LF after the data" },
		{ "5\r\nhello\r0\r\n\r\n", "a bare CR after the data" },
		{ "5;a=\x01\r\nhello\r\n0\r\n\r\n", "a control byte in an "
		  "extension" },
		{ "0\r\nX: \x01\r\n\r\n", "a control byte in a trailer" },
		{ "0\r\nX: y\n\r\n", "a bare LF in a trailer" },
		{ "0\r\n\n", "a bare LF ending the trailers" },
		{ "0\r\nX: y\r\r\n", "a bare CR in a trailer" },
	};
	struct buf		 out;
	const char		*body = "5\r\nhello\r\n6;ext=1\r\n world\r\n"
	    "A\r\n0123456789\r\n0\r\nX-Trailer: x\r\nY: z\r\n\r\n"
	    "HTTP/1.1 200 OK\r\n";
	int			 done;
	ssize_t			 n;

	buf_init(&out);
	n = resp_chunked(body, strlen(body), &out, &done);
	tap_ok(done && n == (ssize_t)(strstr(body, "HTTP/") - body),
	    "response chunks: the body ends before the bytes after it");
	tap_ok(buf_used(&out) == 21 && memcmp(buf_ptr(&out),
	    "hello world0123456789", 21) == 0,
	    "response chunks: data joined, trailers dropped");
	tap_ok(resp_chunked("0\r\n\r\n", 5, &out, &done) == 5 && done &&
	    buf_used(&out) == 0, "response chunks: an empty body");
	tap_ok(resp_chunked("fffffffffffffff\r\n", 17, &out, &done) == 17 &&
	    !done, "response chunks: a 15-digit size waits for its data");
	tap_ok(resp_chunked("5\r\nhel", 6, &out, &done) == 6 && !done &&
	    buf_used(&out) == 3, "response chunks: a chunk cut short waits");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		tap_is_int(resp_chunked(bad[i].body, strlen(bad[i].body), &out,
		    &done), -400, "response chunks refused: %s", bad[i].what);
	tap_is_int(resp_chunked("5\r\nhe\0lo\r\n0\r\n\r\n", 15, &out, &done),
	    15, "response chunks: a NUL inside the data is data");
	tap_is_int(resp_chunked("0\r\nX: \0\r\n\r\n", 11, &out, &done), -400,
	    "response chunks refused: a NUL in a trailer");
	{
		static char	trailer[HTTP_MAX_TRAILER + 64];
		size_t		len;

		memset(trailer, 'a', sizeof trailer);
		memcpy(trailer, "0\r\nX: ", 6);
		len = sizeof trailer;
		tap_is_int(resp_chunked(trailer, len, &out, &done), -431,
		    "response chunks refused: trailers over the limit");
	}
	buf_free(&out);
}

int
main(void)
{
	test_good();
	test_refused();
	test_chunked();
	test_response_good();
	test_response_refused();
	test_response_chunked();
	return tap_done();
}
