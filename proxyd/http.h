/*
 * http.h: a strict HTTP/1.1 parser, for requests and for responses.
 *
 * The parser is pure: it reads bytes and fills a struct, with no I/O,
 * so it is unit-tested and fuzzed on its own. It accepts only what
 * RFC 9112 allows a server to accept and refuses everything a request
 * smuggler relies on: both Content-Length and Transfer-Encoding, a
 * duplicate or malformed Content-Length, obsolete line folding, a bare
 * LF, control characters, absolute-form targets, oversized chunk sizes
 * and extensions. A refusal carries the status to answer with; the
 * caller answers it and closes the connection, because after a framing
 * error nothing later on the connection can be trusted.
 */
#ifndef OG_HTTP_H
#define OG_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define HTTP_MAX_HEADERS	100
#define HTTP_MAX_CHUNK_LINE	1024	/* chunk size plus extensions */
#define HTTP_MAX_TRAILER	8192

enum http_method {
	HTTP_GET,
	HTTP_HEAD,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_OPTIONS,
	HTTP_PATCH,
	HTTP_OTHER,	/* a valid token we do not serve */
};

struct http_header {
	const char	*name;
	size_t		 name_len;
	const char	*value;
	size_t		 value_len;
};

struct http_request {
	char			*head;		/* owned copy, split in place */
	size_t			 head_len;
	enum http_method	 method;
	const char		*method_str;
	const char		*target;	/* path and query as received */
	const char		*path;		/* the target... */
	size_t			 path_len;	/* ...up to the query */
	const char		*query;		/* after '?', or NULL */
	int			 minor;		/* HTTP/1.minor */
	struct http_header	 headers[HTTP_MAX_HEADERS];
	int			 nheaders;
	int64_t			 content_length; /* -1: none */
	int			 chunked;
	int			 keep_alive;
	int			 expect_continue;
	const char		*host;
};

/*
 * Parse a request head from buf. Returns the number of bytes the head
 * took (its blank line included), 0 if more bytes are needed, or a
 * negative HTTP status (-400, -431, -417) if the request must be
 * refused. max_head bounds the head's size.
 */
int	 http_parse_head(const char *buf, size_t len, size_t max_head,
	    struct http_request *);
void	 http_request_clear(struct http_request *);
const struct http_header *http_find_header(const struct http_request *,
	    const char *name);

/*
 * A response head from a backend. The same rules apply as to requests,
 * plus those of RFC 9112 section 6.3 for reading a response's framing:
 * a head whose body two readers could delimit differently is refused.
 */
struct http_response {
	char			*head;		/* owned copy, split in place */
	size_t			 head_len;
	int			 minor;		/* HTTP/1.minor */
	int			 status;
	struct http_header	 headers[HTTP_MAX_HEADERS];
	int			 nheaders;
	int64_t			 content_length; /* -1: none */
	int			 chunked;
	int			 keep_alive;	/* the connection may be reused */
	const char		*why;		/* why it was refused */
};

/*
 * Parse a response head from buf. Returns the number of bytes the head
 * took, 0 if more bytes are needed, or -502 if the response must be
 * refused, with r->why saying why in words.
 */
int	 http_parse_response(const char *buf, size_t len, size_t max_head,
	    struct http_response *r);
void	 http_response_clear(struct http_response *);
const struct http_header *http_response_header(const struct http_response *,
	    const char *name);
/* Does the comma-separated list hold the token (case-insensitive)? */
int	 http_list_has(const char *, size_t, const char *token);

struct http_chunked {
	int		 state;
	uint64_t	 size;		/* of the chunk being read */
	size_t		 line;		/* bytes of the current size/trailer line */
	int		 digits;
	size_t		 trailer;	/* bytes of trailer section so far */
};

void	 http_chunked_init(struct http_chunked *);
/*
 * Decode chunked body bytes into out. Returns the number of input bytes
 * used (the rest belongs to the next request), or a negative status
 * (-400 malformed, -413 over max_body). *done is set when the final
 * chunk and trailers have been read.
 */
ssize_t	 http_chunked_feed(struct http_chunked *, const char *, size_t,
	    struct buf *out, uint64_t max_body, int *done);

const char *http_status_text(int);
int	 http_token_char(int);

#endif
