/*
 * fuzz-response.c: a libFuzzer harness for the HTTP/1.1 response parser
 * and the chunked decoder as origin.c uses them on a backend's answer.
 *
 * An input is what one backend sends on one connection. It is read the
 * way origin.c reads it: interim heads are skipped, a final head says
 * how its body is framed, the body is taken by its length or decoded
 * from chunks, and whatever follows is the next response on a kept-alive
 * connection. Each head is parsed whole and from a prefix cut at a point
 * drawn from the input, since a read may end anywhere and the answer
 * must not depend on where.
 *
 * Beyond memory errors, the checks catch answers that are wrong without
 * being unsafe: a head length beyond the input, a refusal without a
 * reason, an accepted head whose framing two readers could disagree
 * on, a field that holds a CR or LF, a status that is not three digits.
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

/* Responses read from one input, at most. */
#define FUZZ_MAX_RESPONSES	8

static int
fuzz_inside(const struct http_response *r, const char *p, size_t len)
{
	return p != NULL && p >= r->head && p + len <= r->head + r->head_len;
}

/* What origin.c and proxy.c rely on in a head the parser accepted. */
static void
fuzz_check_response(const struct http_response *r, const char *raw, int n)
{
	int	ncl = 0, nte = 0;

	FUZZ_CHECK(r->head != NULL && r->head_len == (size_t)n);
	FUZZ_CHECK(r->why == NULL);
	FUZZ_CHECK(n >= 4 && memcmp(raw + n - 4, "\r\n\r\n", 4) == 0);
	FUZZ_CHECK(memcmp(raw, "HTTP/1.1 ", 9) == 0 ||
	    memcmp(raw, "HTTP/1.0 ", 9) == 0);
	FUZZ_CHECK(memchr(raw, '\0', (size_t)n) == NULL);
	FUZZ_CHECK(r->minor == raw[7] - '0');
	FUZZ_CHECK(r->status >= 100 && r->status <= 999);
	FUZZ_CHECK(r->status == (raw[9] - '0') * 100 + (raw[10] - '0') * 10 +
	    (raw[11] - '0'));
	FUZZ_CHECK(raw[12] == ' ' || raw[12] == '\r');
	FUZZ_CHECK(r->nheaders >= 0 && r->nheaders <= HTTP_MAX_HEADERS);
	for (int i = 0; i < r->nheaders; i++) {
		const struct http_header	*h = &r->headers[i];

		FUZZ_CHECK(fuzz_inside(r, h->name, h->name_len));
		FUZZ_CHECK(fuzz_inside(r, h->value, h->value_len));
		fuzz_check_field(h);
		if (strcasecmp(h->name, "content-length") == 0)
			ncl++;
		if (strcasecmp(h->name, "transfer-encoding") == 0)
			nte++;
		FUZZ_CHECK(http_response_header(r, h->name) != NULL);
	}
	/* One framing at most, and each field of it once. */
	FUZZ_CHECK(ncl <= 1 && nte <= 1 && !(ncl && nte));
	FUZZ_CHECK(r->chunked == (nte == 1));
	FUZZ_CHECK((r->content_length >= 0) == (ncl == 1));
	FUZZ_CHECK(r->content_length >= -1 &&
	    r->content_length < INT64_C(1000000000000000));
	if (r->minor == 0)
		FUZZ_CHECK(!r->chunked && !r->keep_alive);
}

static void
fuzz_same_response(const struct http_response *a,
    const struct http_response *b)
{
	FUZZ_CHECK(a->head_len == b->head_len);
	FUZZ_CHECK(memcmp(a->head, b->head, a->head_len) == 0);
	FUZZ_CHECK(a->minor == b->minor && a->status == b->status);
	FUZZ_CHECK(a->nheaders == b->nheaders);
	for (int i = 0; i < a->nheaders; i++) {
		FUZZ_CHECK(strcmp(a->headers[i].name, b->headers[i].name) == 0);
		FUZZ_CHECK(strcmp(a->headers[i].value,
		    b->headers[i].value) == 0);
	}
	FUZZ_CHECK(a->content_length == b->content_length);
	FUZZ_CHECK(a->chunked == b->chunked);
	FUZZ_CHECK(a->keep_alive == b->keep_alive);
}

/*
 * A chunked body as origin.c decodes it: each read's output taken and
 * the scratch buffer reset, with no limit that matters. Decoded whole
 * and in reads cut where the input says; both must agree on the bytes
 * used, the end, the error and the data. Returns the bytes the body
 * took when it ended within the input, or -1.
 */
static ssize_t
fuzz_chunked(const char *p, size_t len, uint64_t *rng)
{
	struct http_chunked	 c;
	struct buf		 whole, parts, scratch;
	ssize_t			 n, m = 0;
	size_t			 off = 0;
	int			 done, done_parts = 0;

	buf_init(&whole);
	buf_init(&parts);
	buf_init(&scratch);

	http_chunked_init(&c);
	n = http_chunked_feed(&c, p, len, &whole, UINT64_MAX / 2, &done);
	FUZZ_CHECK(n == -400 || n == -431 || (n >= 0 && (size_t)n <= len));
	if (n < 0)
		FUZZ_CHECK(!done);
	if (n >= 0 && !done)
		FUZZ_CHECK((size_t)n == len);
	if (n >= 0)
		FUZZ_CHECK(buf_used(&whole) <= (size_t)n);

	http_chunked_init(&c);
	while (off < len && !done_parts) {
		size_t	step = 1 + (size_t)(fuzz_next(rng) % 64);
		ssize_t	k;

		if (step > len - off)
			step = len - off;
		buf_reset(&scratch);
		k = http_chunked_feed(&c, p + off, step, &scratch,
		    UINT64_MAX / 2, &done_parts);
		if (k < 0) {
			m = k;
			break;
		}
		if (!done_parts)
			FUZZ_CHECK((size_t)k == step);
		if (buf_used(&scratch) > 0)
			buf_add(&parts, buf_ptr(&scratch), buf_used(&scratch));
		off += (size_t)k;
		m = (ssize_t)off;
	}
	FUZZ_CHECK(m == n || (len == 0 && n == 0));
	if (n >= 0) {
		FUZZ_CHECK(done_parts == done);
		FUZZ_CHECK(buf_used(&parts) == buf_used(&whole));
		FUZZ_CHECK(buf_used(&whole) == 0 || memcmp(buf_ptr(&parts),
		    buf_ptr(&whole), buf_used(&whole)) == 0);
	}
	buf_free(&whole);
	buf_free(&parts);
	buf_free(&scratch);
	return n >= 0 && done ? n : -1;
}

/* Read one backend connection's worth of responses, as origin.c would. */
static void
fuzz_connection(const char *data, size_t size, uint64_t *rng)
{
	static const size_t	 max_heads[] = { 64 * 1024, 8192, 512, 40 };
	struct http_response	 whole, part;
	size_t			 off = 0, len, max_head, cut;
	int			 n, m;

	memset(&whole, 0, sizeof whole);
	memset(&part, 0, sizeof part);
	http_response_clear(&whole);
	http_response_clear(&part);

	for (int i = 0; i < FUZZ_MAX_RESPONSES && off < size; i++) {
		const char	*p = data + off;

		len = size - off;
		max_head = max_heads[fuzz_next(rng) % 4];
		n = http_parse_response(p, len, max_head, &whole);
		FUZZ_CHECK(n == 0 || n == -502 ||
		    (n > 0 && (size_t)n <= len && (size_t)n <= max_head));
		if (n == 0)
			FUZZ_CHECK(len < max_head);
		if (n == -502)
			FUZZ_CHECK(whole.why != NULL && whole.why[0] != '\0');
		if (n > 0)
			fuzz_check_response(&whole, p, n);

		/* A prefix needs more, or already gives the same answer. */
		cut = fuzz_next(rng) % (len + 1);
		m = http_parse_response(p, cut, max_head, &part);
		FUZZ_CHECK(m == 0 || m == n);
		if (n > 0 && cut >= (size_t)n)
			FUZZ_CHECK(m == n);
		if (m > 0)
			fuzz_same_response(&whole, &part);
		if (n > 0) {
			FUZZ_CHECK(http_parse_response(p, (size_t)n - 1,
			    max_head, &part) == 0);
		}
		if (n <= 0)
			break;
		off += (size_t)n;

		/* Interim heads carry no body; the final one follows. */
		if (whole.status < 200 || whole.status == 204 ||
		    whole.status == 304)
			continue;
		if (whole.chunked) {
			ssize_t	used = fuzz_chunked(data + off, size - off, rng);

			if (used < 0)
				break;
			off += (size_t)used;
		} else if (whole.content_length >= 0) {
			if ((uint64_t)whole.content_length > size - off)
				break;
			off += (size_t)whole.content_length;
		} else
			break;		/* the body runs to the close */
		if (!whole.keep_alive)
			break;
	}
	http_response_clear(&whole);
	http_response_clear(&part);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t	rng = fuzz_hash(data, size) | 1;

	fuzz_connection((const char *)data, size, &rng);
	fuzz_chunked((const char *)data, size, &rng);
	return 0;
}
