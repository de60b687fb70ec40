/*
 * fuzz-http.c: a libFuzzer harness for the HTTP/1.1 request parser and
 * the chunked body decoder.
 *
 * An input is what one client sends on one connection. It is read the
 * way the daemon reads it: a head, then the body the head announces,
 * then the next head, and so on. Every step is done twice, once with all
 * the bytes at hand and once with them arriving in pieces, because a
 * read may end anywhere and the parser must give the same answer
 * whatever the boundaries. The raw input is also fed straight to the
 * chunked decoder, so that the decoder is explored without first
 * needing a valid head in front of it.
 *
 * The sanitizers catch memory errors; the checks here catch answers
 * that are wrong without being unsafe: a length beyond the input, a
 * status outside the documented set, or a request whose fields disagree
 * with the rules the parser is there to enforce. The read boundaries
 * and limits are drawn from a hash of the input, so that a crash found
 * once replays exactly from its file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "buf.h"
#include "fuzz.h"
#include "http.h"

/* Requests read from one input, at most. */
#define FUZZ_MAX_REQUESTS	8

static int	fuzz_inside(const struct http_request *, const char *,
		    size_t);
static void	fuzz_check_request(const struct http_request *, const char *,
		    int);
static void	fuzz_same_request(const struct http_request *,
		    const struct http_request *);
static int	fuzz_same_buf(const struct buf *, const struct buf *);
static ssize_t	fuzz_chunked(const char *, size_t, uint64_t, uint64_t *);
static void	fuzz_connection(const char *, size_t, uint64_t *);

/* Does [p, p + len] lie within the request's copy of its head? */
static int
fuzz_inside(const struct http_request *r, const char *p, size_t len)
{
	return p != NULL && p >= r->head && p + len <= r->head + r->head_len;
}

/*
 * What the daemon relies on in a request the parser accepted from the
 * n bytes at raw. The head is a copy, split in place with NULs.
 */
static void
fuzz_check_request(const struct http_request *r, const char *raw, int n)
{
	const char	*c;

	FUZZ_CHECK(r->head != NULL && r->head_len == (size_t)n);
	FUZZ_CHECK(n >= 4 && memcmp(raw + n - 4, "\r\n\r\n", 4) == 0);
	FUZZ_CHECK(memchr(raw, '\0', (size_t)n) == NULL);

	FUZZ_CHECK(fuzz_inside(r, r->method_str, strlen(r->method_str)));
	FUZZ_CHECK(r->method_str[0] != '\0');
	for (c = r->method_str; *c != '\0'; c++)
		FUZZ_CHECK(http_token_char((unsigned char)*c));
	FUZZ_CHECK(r->method >= HTTP_GET && r->method <= HTTP_OTHER);
	if (r->method == HTTP_GET)
		FUZZ_CHECK(strcmp(r->method_str, "GET") == 0);
	if (r->method == HTTP_POST)
		FUZZ_CHECK(strcmp(r->method_str, "POST") == 0);

	/* Origin form, nothing a second parser could read differently. */
	FUZZ_CHECK(fuzz_inside(r, r->target, strlen(r->target)));
	FUZZ_CHECK(r->target[0] == '/');
	for (c = r->target; *c != '\0'; c++) {
		unsigned char	uc = (unsigned char)*c;

		FUZZ_CHECK(uc > 0x20 && uc < 0x7f && uc != '#');
	}
	FUZZ_CHECK(r->path == r->target);
	FUZZ_CHECK(r->path_len >= 1 && r->path_len <= strlen(r->target));
	FUZZ_CHECK(memchr(r->path, '?', r->path_len) == NULL);
	if (r->query != NULL)
		FUZZ_CHECK(r->query == r->target + r->path_len + 1);
	else
		FUZZ_CHECK(r->path_len == strlen(r->target));

	FUZZ_CHECK(r->minor == 0 || r->minor == 1);
	FUZZ_CHECK(r->nheaders >= 0 && r->nheaders <= HTTP_MAX_HEADERS);
	for (int i = 0; i < r->nheaders; i++) {
		const struct http_header	*h = &r->headers[i];

		FUZZ_CHECK(fuzz_inside(r, h->name, h->name_len));
		FUZZ_CHECK(fuzz_inside(r, h->value, h->value_len));
		fuzz_check_field(h);
		FUZZ_CHECK(http_find_header(r, h->name) != NULL);
		FUZZ_CHECK(strcasecmp(http_find_header(r, h->name)->name,
		    h->name) == 0);
	}
	/* A name with a colon can never have been sent. */
	FUZZ_CHECK(http_find_header(r, "Host:") == NULL);

	/* The framing: one of the two, never both, never in HTTP/1.0. */
	FUZZ_CHECK(!(r->chunked && r->content_length >= 0));
	FUZZ_CHECK(r->content_length >= -1 &&
	    r->content_length < INT64_C(1000000000000000));
	if (r->minor == 0)
		FUZZ_CHECK(!r->chunked && !r->keep_alive);
	if (r->minor == 1)
		FUZZ_CHECK(fuzz_inside(r, r->host, strlen(r->host)));
	if (r->host != NULL)
		FUZZ_CHECK(strpbrk(r->host, " \t/\\@?#") == NULL);
}

/* The same request, whether its head came in one read or several. */
static void
fuzz_same_request(const struct http_request *a, const struct http_request *b)
{
	FUZZ_CHECK(a->head_len == b->head_len);
	FUZZ_CHECK(memcmp(a->head, b->head, a->head_len) == 0);
	FUZZ_CHECK(a->method == b->method);
	FUZZ_CHECK(strcmp(a->method_str, b->method_str) == 0);
	FUZZ_CHECK(strcmp(a->target, b->target) == 0);
	FUZZ_CHECK(a->path_len == b->path_len);
	FUZZ_CHECK((a->query == NULL) == (b->query == NULL));
	FUZZ_CHECK(a->minor == b->minor);
	FUZZ_CHECK(a->nheaders == b->nheaders);
	for (int i = 0; i < a->nheaders; i++) {
		FUZZ_CHECK(strcmp(a->headers[i].name, b->headers[i].name) == 0);
		FUZZ_CHECK(strcmp(a->headers[i].value,
		    b->headers[i].value) == 0);
	}
	FUZZ_CHECK(a->content_length == b->content_length);
	FUZZ_CHECK(a->chunked == b->chunked);
	FUZZ_CHECK(a->keep_alive == b->keep_alive);
	FUZZ_CHECK(a->expect_continue == b->expect_continue);
	FUZZ_CHECK((a->host == NULL) == (b->host == NULL));
	if (a->host != NULL)
		FUZZ_CHECK(strcmp(a->host, b->host) == 0);
}

/*
 * Do two buffers hold the same bytes? An empty buf has no data pointer
 * at all, and NULL plus an offset is undefined, so it is not asked for.
 */
static int
fuzz_same_buf(const struct buf *a, const struct buf *b)
{
	if (buf_used(a) != buf_used(b))
		return 0;
	return buf_used(a) == 0 ||
	    memcmp(buf_ptr(a), buf_ptr(b), buf_used(a)) == 0;
}

/*
 * Decode a chunked body three ways: whole, in two pieces, and one byte
 * at a time. All three must use the same bytes, give the same status
 * and the same data. Returns the bytes the body took when it ended
 * within the input, or -1.
 */
static ssize_t
fuzz_chunked(const char *p, size_t len, uint64_t max_body, uint64_t *rng)
{
	struct http_chunked	 c;
	struct buf		 whole, split, bytes;
	ssize_t			 n, a, b;
	size_t			 cut, used;
	int			 done, done_split, done_bytes;

	buf_init(&whole);
	buf_init(&split);
	buf_init(&bytes);

	http_chunked_init(&c);
	n = http_chunked_feed(&c, p, len, &whole, max_body, &done);
	FUZZ_CHECK(n == -400 || n == -413 || n == -431 ||
	    (n >= 0 && (size_t)n <= len));
	if (n < 0)
		FUZZ_CHECK(!done);
	/* Short of the end, it stops only when the body is done. */
	if (n >= 0 && !done)
		FUZZ_CHECK((size_t)n == len);
	FUZZ_CHECK(buf_used(&whole) <= max_body);
	if (n >= 0)
		FUZZ_CHECK(buf_used(&whole) <= (size_t)n);
	if (n >= 0 && done) {
		/* A finished body takes nothing of the next request. */
		FUZZ_CHECK(http_chunked_feed(&c, p + n, len - (size_t)n, &whole,
		    max_body, &done) == 0 && done);
	}

	cut = len == 0 ? 0 : fuzz_next(rng) % (len + 1);
	http_chunked_init(&c);
	a = http_chunked_feed(&c, p, cut, &split, max_body, &done_split);
	if (a >= 0 && !done_split) {
		FUZZ_CHECK((size_t)a == cut);
		b = http_chunked_feed(&c, p + cut, len - cut, &split, max_body,
		    &done_split);
		a = b < 0 ? b : a + b;
	}
	FUZZ_CHECK(a == n);
	FUZZ_CHECK(done_split == done);
	FUZZ_CHECK(fuzz_same_buf(&split, &whole));

	http_chunked_init(&c);
	done_bytes = 0;
	b = 0;
	for (used = 0; used < len && !done_bytes; used++) {
		b = http_chunked_feed(&c, p + used, 1, &bytes, max_body,
		    &done_bytes);
		if (b < 0)
			break;
		FUZZ_CHECK(b == 1);
	}
	if (b < 0)
		FUZZ_CHECK(b == n);
	else
		FUZZ_CHECK((ssize_t)used == n && done_bytes == done);
	FUZZ_CHECK(fuzz_same_buf(&bytes, &whole));

	buf_free(&whole);
	buf_free(&split);
	buf_free(&bytes);
	return n >= 0 && done ? n : -1;
}

/* Read one connection's worth of requests, as the daemon would. */
static void
fuzz_connection(const char *data, size_t size, uint64_t *rng)
{
	static const size_t	 max_heads[] = { 8192, 8192, 1024, 64 };
	static const uint64_t	 max_bodies[] = { 1 << 20, 1 << 20, 100,
				     0 };
	struct http_request	 whole, part;
	size_t			 off = 0, len, max_head, cut;
	uint64_t		 max_body;
	ssize_t			 used;
	int			 n, m;

	memset(&whole, 0, sizeof whole);
	memset(&part, 0, sizeof part);
	http_request_clear(&whole);
	http_request_clear(&part);

	for (int i = 0; i < FUZZ_MAX_REQUESTS && off < size; i++) {
		const char	*p = data + off;

		len = size - off;
		max_head = max_heads[fuzz_next(rng) % 4];
		max_body = max_bodies[fuzz_next(rng) % 4];

		n = http_parse_head(p, len, max_head, &whole);
		FUZZ_CHECK(n == 0 || n == -400 || n == -417 || n == -431 ||
		    (n > 0 && (size_t)n <= len && (size_t)n <= max_head));
		if (n == 0)
			FUZZ_CHECK(len < max_head);
		if (n > 0)
			fuzz_check_request(&whole, p, n);

		/*
		 * A shorter read either needs more bytes or already has the
		 * whole answer; once a prefix gives an answer, every longer
		 * one gives the same.
		 */
		cut = fuzz_next(rng) % (len + 1);
		m = http_parse_head(p, cut, max_head, &part);
		FUZZ_CHECK(m == 0 || m == n);
		if (n > 0 && cut >= (size_t)n)
			FUZZ_CHECK(m == n);
		if (m > 0)
			fuzz_same_request(&whole, &part);
		if (n > 0) {
			FUZZ_CHECK(http_parse_head(p, (size_t)n - 1, max_head,
			    &part) == 0);
			FUZZ_CHECK(http_parse_head(p, (size_t)n, max_head,
			    &part) == n);
			fuzz_same_request(&whole, &part);
		}
		if (n <= 0)
			break;
		off += (size_t)n;

		if (whole.chunked) {
			used = fuzz_chunked(data + off, size - off, max_body,
			    rng);
			if (used < 0)
				break;
			off += (size_t)used;
		} else if (whole.content_length > 0) {
			if ((uint64_t)whole.content_length > size - off)
				break;
			off += (size_t)whole.content_length;
		}
	}
	http_request_clear(&whole);
	http_request_clear(&part);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t	rng = fuzz_hash(data, size) | 1;

	fuzz_connection((const char *)data, size, &rng);
	fuzz_chunked((const char *)data, size, 1 << 20, &rng);
	return 0;
}
