/*
 * http.c: a strict HTTP/1.1 parser, for requests from clients and for
 * responses from backends. Both directions share the head scan, the
 * field lines and the chunked decoder, so whatever one refuses the
 * other refuses too.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "xmalloc.h"

enum {
	CHUNK_SIZE,		/* hex digits of the size */
	CHUNK_SIZE_WS,		/* whitespace after the size: ';' must follow */
	CHUNK_EXT,		/* after ';' until CR */
	CHUNK_SIZE_LF,		/* LF after the size line's CR */
	CHUNK_DATA,
	CHUNK_DATA_CR,
	CHUNK_DATA_LF,
	CHUNK_TRAILER,		/* start of a trailer line or the end */
	CHUNK_TRAILER_LINE,
	CHUNK_TRAILER_LF,
	CHUNK_END_LF,
	CHUNK_DONE,
};

static const struct {
	const char		*name;
	enum http_method	 method;
} http_methods[] = {
	{ "GET", HTTP_GET },
	{ "HEAD", HTTP_HEAD },
	{ "POST", HTTP_POST },
	{ "PUT", HTTP_PUT },
	{ "DELETE", HTTP_DELETE },
	{ "OPTIONS", HTTP_OPTIONS },
	{ "PATCH", HTTP_PATCH },
};

static int	http_parse_request_line(struct http_request *, char *, char *);
static int	http_parse_field(struct http_header *, int *, char *, char *);
static int	http_check_framing(struct http_request *);
static int	http_check_response(struct http_response *);

/* tchar from RFC 9110: the characters allowed in methods and field names. */
int
http_token_char(int c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/*
 * The header arrays are only read up to their counts, so clearing a
 * request or a response leaves them be: they are kilobytes, and this
 * runs for every request.
 */
void
http_request_clear(struct http_request *r)
{
	free(r->head);
	memset(r, 0, offsetof(struct http_request, headers));
	r->nheaders = 0;
	r->content_length = -1;
	r->chunked = r->keep_alive = r->expect_continue = 0;
	r->host = NULL;
}

/*
 * Find the blank line that ends a head, refusing a bare LF or a NUL as
 * soon as it is seen, so that a smuggling attempt never gets as far as
 * being interpreted. Returns the head's length, 0 if more bytes are
 * needed, -1 for a malformed head or -2 for one over max_head.
 */
static ssize_t
http_head_end(const char *buf, size_t len, size_t max_head)
{
	size_t	scan = len < max_head ? len : max_head;

	for (size_t i = 0; i < scan; i++) {
		if (buf[i] == '\0')
			return -1;
		if (buf[i] != '\n')
			continue;
		if (i == 0 || buf[i - 1] != '\r')
			return -1;
		if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
			return (ssize_t)(i + 1);
	}
	return len >= max_head ? -2 : 0;
}

/* Split the field lines of a head copy from p to its final CRLF. */
static int
http_parse_fields(struct http_header *h, int *n, char *p, char *headend)
{
	int	status;

	while (p < headend) {
		char	*eol = strstr(p, "\r\n");

		if ((status = http_parse_field(h, n, p, eol)) != 0)
			return status;
		p = eol + 2;
	}
	return 0;
}

int
http_parse_head(const char *buf, size_t len, size_t max_head,
    struct http_request *r)
{
	ssize_t	 end;
	char	*eol;
	int	 status;

	if ((end = http_head_end(buf, len, max_head)) <= 0)
		return end == 0 ? 0 : end == -2 ? -431 : -400;

	http_request_clear(r);
	r->head = xstrndup(buf, (size_t)end);
	r->head_len = (size_t)end;
	eol = strstr(r->head, "\r\n");
	if ((status = http_parse_request_line(r, r->head, eol)) != 0)
		return status;
	if ((status = http_parse_fields(r->headers, &r->nheaders, eol + 2,
	    r->head + end - 2)) != 0)
		return status;
	if ((status = http_check_framing(r)) != 0)
		return status;
	return (int)end;
}

static int
http_parse_request_line(struct http_request *r, char *p, char *eol)
{
	char	*sp1, *sp2, *t;
	size_t	 i;

	*eol = '\0';
	if ((sp1 = strchr(p, ' ')) == NULL || sp1 == p)
		return -400;
	*sp1 = '\0';
	for (t = p; *t != '\0'; t++) {
		if (!http_token_char((unsigned char)*t))
			return -400;
	}
	r->method_str = p;
	r->method = HTTP_OTHER;
	for (i = 0; i < sizeof http_methods / sizeof http_methods[0]; i++) {
		if (strcmp(p, http_methods[i].name) == 0)
			r->method = http_methods[i].method;
	}

	t = sp1 + 1;
	if ((sp2 = strchr(t, ' ')) == NULL || sp2 == t)
		return -400;
	*sp2 = '\0';
	/* Origin form only: we are a gateway, not a forward proxy. */
	if (*t != '/')
		return -400;
	for (char *c = t; *c != '\0'; c++) {
		unsigned char	uc = (unsigned char)*c;

		if (uc <= 0x20 || uc >= 0x7f || uc == '#')
			return -400;
	}
	r->target = t;

	if (strcmp(sp2 + 1, "HTTP/1.1") == 0)
		r->minor = 1;
	else if (strcmp(sp2 + 1, "HTTP/1.0") == 0)
		r->minor = 0;
	else
		return -400;
	r->keep_alive = r->minor == 1;
	return 0;
}

static int
http_parse_field(struct http_header *fields, int *nfields, char *p, char *eol)
{
	struct http_header	*h;
	char			*colon, *v, *e;

	*eol = '\0';
	/* Obsolete line folding is refused, never unfolded. */
	if (*p == ' ' || *p == '\t')
		return -400;
	for (colon = p; *colon != ':'; colon++) {
		if (!http_token_char((unsigned char)*colon))
			return -400;	/* includes space before the colon */
	}
	if (colon == p)
		return -400;
	if (*nfields == HTTP_MAX_HEADERS)
		return -431;
	*colon = '\0';
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	for (e = v; *e != '\0'; e++) {
		unsigned char	uc = (unsigned char)*e;

		if ((uc < 0x20 && uc != '\t') || uc == 0x7f)
			return -400;
	}
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	h = &fields[(*nfields)++];
	h->name = p;
	h->name_len = (size_t)(colon - p);
	h->value = v;
	h->value_len = (size_t)(e - v);
	return 0;
}

int
http_list_has(const char *v, size_t len, const char *token)
{
	size_t	tlen = strlen(token);
	size_t	i = 0;

	while (i < len) {
		size_t	start, end;

		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < len && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start == tlen && strncasecmp(v + start, token, tlen) == 0)
			return 1;
	}
	return 0;
}

static int
http_check_framing(struct http_request *r)
{
	int	nhost = 0, ncl = 0, nte = 0;

	for (int i = 0; i < r->nheaders; i++) {
		const struct http_header	*h = &r->headers[i];

		if (strcasecmp(h->name, "content-length") == 0) {
			int64_t	v = 0;

			if (++ncl > 1 || h->value_len == 0 || h->value_len > 15)
				return -400;
			for (size_t j = 0; j < h->value_len; j++) {
				if (h->value[j] < '0' || h->value[j] > '9')
					return -400;
				v = v * 10 + (h->value[j] - '0');
			}
			r->content_length = v;
		} else if (strcasecmp(h->name, "transfer-encoding") == 0) {
			if (++nte > 1 || strcasecmp(h->value, "chunked") != 0)
				return -400;
			r->chunked = 1;
		} else if (strcasecmp(h->name, "host") == 0) {
			if (++nhost > 1)
				return -400;
			for (const char *c = h->value; *c != '\0'; c++) {
				if (*c == ' ' || *c == '\t' || *c == '/' ||
				    *c == '\\' || *c == '@' || *c == '?' ||
				    *c == '#')
					return -400;
			}
			r->host = h->value;
		} else if (strcasecmp(h->name, "connection") == 0) {
			if (http_list_has(h->value, h->value_len, "close"))
				r->keep_alive = 0;
		} else if (strcasecmp(h->name, "expect") == 0) {
			if (strcasecmp(h->value, "100-continue") != 0)
				return -417;
			r->expect_continue = 1;
		}
	}
	if (ncl > 0 && nte > 0)
		return -400;
	/* RFC 9112 6.1: chunked in an HTTP/1.0 request is faulty framing. */
	if (nte > 0 && r->minor == 0)
		return -400;
	if (r->minor == 1 && nhost != 1)
		return -400;
	if (r->minor == 0)
		r->keep_alive = 0;

	/* The target stays whole for forwarding; the path is its prefix. */
	r->path = r->target;
	r->query = strchr(r->target, '?');
	if (r->query != NULL) {
		r->path_len = (size_t)(r->query - r->target);
		r->query++;
	} else
		r->path_len = strlen(r->target);
	return 0;
}

/* The first field of that name, in a request's or a response's. */
static const struct http_header *
http_field(const struct http_header *fields, int n, const char *name)
{
	for (int i = 0; i < n; i++) {
		if (strcasecmp(fields[i].name, name) == 0)
			return &fields[i];
	}
	return NULL;
}

const struct http_header *
http_find_header(const struct http_request *r, const char *name)
{
	return http_field(r->headers, r->nheaders, name);
}

void
http_response_clear(struct http_response *r)
{
	free(r->head);
	memset(r, 0, offsetof(struct http_response, headers));
	r->nheaders = 0;
	r->content_length = -1;
	r->chunked = r->keep_alive = 0;
	r->why = NULL;
}

const struct http_header *
http_response_header(const struct http_response *r, const char *name)
{
	return http_field(r->headers, r->nheaders, name);
}

/* "HTTP/1.1 200 OK": a version, three digits, and text, perhaps none. */
static int
http_parse_status_line(struct http_response *r, char *p)
{
	if (strncmp(p, "HTTP/1.1 ", 9) == 0)
		r->minor = 1;
	else if (strncmp(p, "HTTP/1.0 ", 9) == 0)
		r->minor = 0;
	else
		return -1;
	p += 9;
	for (int i = 0; i < 3; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
	}
	r->status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	if (r->status < 100 || (p[3] != ' ' && p[3] != '\0'))
		return -1;
	for (p += 3; *p != '\0'; p++) {
		unsigned char	uc = (unsigned char)*p;

		if ((uc < 0x20 && uc != '\t') || uc == 0x7f)
			return -1;
	}
	r->keep_alive = r->minor == 1;
	return 0;
}

int
http_parse_response(const char *buf, size_t len, size_t max_head,
    struct http_response *r)
{
	ssize_t	 end;
	char	*eol;
	int	 status;

	if ((end = http_head_end(buf, len, max_head)) <= 0) {
		if (end == 0)
			return 0;
		http_response_clear(r);
		r->why = end == -2 ? "a response head over the size limit" :
		    "a malformed response head (a bare LF or a NUL)";
		return -502;
	}
	http_response_clear(r);
	r->head = xstrndup(buf, (size_t)end);
	r->head_len = (size_t)end;
	eol = strstr(r->head, "\r\n");
	*eol = '\0';
	if (http_parse_status_line(r, r->head) != 0) {
		r->why = "a malformed status line";
		return -502;
	}
	if ((status = http_parse_fields(r->headers, &r->nheaders, eol + 2,
	    r->head + end - 2)) != 0) {
		r->why = status == -431 ? "a response head with too many "
		    "fields" : "a malformed response field (folded, a name that "
		    "is not a token, or control bytes)";
		return -502;
	}
	if (http_check_response(r) != 0)
		return -502;
	return (int)end;
}

/*
 * RFC 9112 section 6.3, read strictly: one Content-Length of plain
 * digits, or Transfer-Encoding: chunked alone, or neither (the body
 * then ends when the connection does). Anything else is a response two
 * readers could frame differently, and is refused whole.
 */
static int
http_check_response(struct http_response *r)
{
	int	ncl = 0, nte = 0;

	for (int i = 0; i < r->nheaders; i++) {
		const struct http_header	*h = &r->headers[i];

		if (strcasecmp(h->name, "content-length") == 0) {
			int64_t	v = 0;

			if (++ncl > 1) {
				r->why = "an ambiguous response (more than one "
				    "Content-Length)";
				return -1;
			}
			if (h->value_len == 0 || h->value_len > 15 ||
			    strspn(h->value, "0123456789") != h->value_len) {
				r->why = "an ambiguous response (an invalid "
				    "Content-Length)";
				return -1;
			}
			for (size_t j = 0; j < h->value_len; j++)
				v = v * 10 + (h->value[j] - '0');
			r->content_length = v;
		} else if (strcasecmp(h->name, "transfer-encoding") == 0) {
			if (++nte > 1 || strcasecmp(h->value, "chunked") != 0) {
				r->why = "a Transfer-Encoding other than chunked";
				return -1;
			}
			r->chunked = 1;
		} else if (strcasecmp(h->name, "connection") == 0) {
			if (http_list_has(h->value, h->value_len, "close"))
				r->keep_alive = 0;
		}
	}
	if (ncl > 0 && nte > 0) {
		r->why = "an ambiguous response (both Transfer-Encoding and "
		    "Content-Length)";
		return -1;
	}
	if (nte > 0 && r->minor == 0) {
		r->why = "an ambiguous response (chunked in HTTP/1.0)";
		return -1;
	}
	return 0;
}

void
http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof *c);
	c->state = CHUNK_SIZE;
}

static int
http_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

ssize_t
http_chunked_feed(struct http_chunked *c, const char *in, size_t len,
    struct buf *out, uint64_t max_body, int *done)
{
	size_t	i = 0;

	*done = 0;
	while (i < len && c->state != CHUNK_DONE) {
		unsigned char	ch = (unsigned char)in[i];

		switch (c->state) {
		case CHUNK_SIZE: {
			int	h = http_hex(ch);

			if (h >= 0) {
				/* 15 hex digits is already far beyond any limit. */
				if (++c->digits > 15)
					return -400;
				c->size = c->size * 16 + (uint64_t)h;
				c->line++;
				i++;
				break;
			}
			if (c->digits == 0)
				return -400;
			if (c->size > max_body ||
			    buf_used(out) + c->size > max_body)
				return -413;
			if (ch == ';')
				c->state = CHUNK_EXT;
			else if (ch == ' ' || ch == '\t')
				c->state = CHUNK_SIZE_WS;
			else if (ch == '\r')
				c->state = CHUNK_SIZE_LF;
			else
				return -400;
			c->line++;
			i++;
			break;
		}
		case CHUNK_SIZE_WS:
			/*
			 * RFC 9112 allows whitespace before an extension only:
			 * "3 4" read as 3 here and as 0x34 elsewhere would let
			 * two parsers disagree on where the body ends.
			 */
			if (++c->line > HTTP_MAX_CHUNK_LINE)
				return -400;
			if (ch == ';')
				c->state = CHUNK_EXT;
			else if (ch != ' ' && ch != '\t')
				return -400;
			i++;
			break;
		case CHUNK_EXT:
			/* Extensions are skipped but bounded, and must be text. */
			if (++c->line > HTTP_MAX_CHUNK_LINE)
				return -400;
			if (ch == '\r')
				c->state = CHUNK_SIZE_LF;
			else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return -400;
			i++;
			break;
		case CHUNK_SIZE_LF:
			if (ch != '\n')
				return -400;
			i++;
			c->line = 0;
			c->digits = 0;
			c->state = c->size == 0 ? CHUNK_TRAILER : CHUNK_DATA;
			break;
		case CHUNK_DATA: {
			size_t	n = len - i;

			if (n > c->size)
				n = (size_t)c->size;
			buf_add(out, in + i, n);
			i += n;
			c->size -= n;
			if (c->size == 0)
				c->state = CHUNK_DATA_CR;
			break;
		}
		case CHUNK_DATA_CR:
			if (ch != '\r')
				return -400;
			c->state = CHUNK_DATA_LF;
			i++;
			break;
		case CHUNK_DATA_LF:
			if (ch != '\n')
				return -400;
			c->state = CHUNK_SIZE;
			i++;
			break;
		case CHUNK_TRAILER:
			if (ch == '\r') {
				c->state = CHUNK_END_LF;
				i++;
				break;
			}
			c->state = CHUNK_TRAILER_LINE;
			c->line = 0;
			break;
		case CHUNK_TRAILER_LINE:
			/* Trailer fields are read and dropped, never forwarded. */
			if (++c->trailer > HTTP_MAX_TRAILER)
				return -431;
			if (ch == '\r')
				c->state = CHUNK_TRAILER_LF;
			else if (ch == '\n' || (ch < 0x20 && ch != '\t') ||
			    ch == 0x7f)
				return -400;
			i++;
			break;
		case CHUNK_TRAILER_LF:
			if (ch != '\n')
				return -400;
			c->state = CHUNK_TRAILER;
			i++;
			break;
		case CHUNK_END_LF:
			if (ch != '\n')
				return -400;
			c->state = CHUNK_DONE;
			i++;
			break;
		}
	}
	if (c->state == CHUNK_DONE)
		*done = 1;
	return (ssize_t)i;
}

const char *
http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 499: return "Client Closed Request";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return status < 200 ? "Informational" : status < 300 ?
	    "Success" : status < 400 ? "Redirection" : status < 500 ?
	    "Client Error" : "Server Error";
	}
}
