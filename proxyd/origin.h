/*
 * origin.h: the gateway's own HTTP/1.1 client, for the request path.
 *
 * Requests to backends go out on ogproxyd's event loop as nginx and
 * HAProxy send them: over per-backend pools of keep-alive connections,
 * reused last in, first out, with the request head and an in-memory
 * body in one writev(), and responses read by the strict parser of
 * http.c. A connection that sits idle is watched by epoll, so one the
 * backend closes is dropped when it does, at no cost to the next
 * request; a request that still meets a closed one (the close raced
 * it) is sent again once on a fresh connection, because the backend
 * never answered it. https:// backends are TLS clients on the same
 * loop: SNI, the peer verified against the system store or the
 * backend's ca_file, sessions resumed. Host names are looked up on a
 * thread, never on the loop.
 *
 * libcurl stays for what is not on the request path: probes, model
 * lists, management fan-out, alerts.
 */
#ifndef OG_ORIGIN_H
#define OG_ORIGIN_H

#include <stdint.h>
#include <sys/queue.h>

#include "buf.h"
#include "http.h"

struct backend;
struct origin;
struct origin_conn;

enum origin_error {
	ORIGIN_OK,
	ORIGIN_CONNECT,		/* no connection: refused, unreachable, DNS */
	ORIGIN_TLS,		/* the TLS handshake or the peer check failed */
	ORIGIN_RESET,		/* closed or reset before a response head */
	ORIGIN_BROKEN,		/* closed or reset in the middle of a body */
	ORIGIN_REFUSED,		/* a response refused: see why */
	ORIGIN_UPLOAD,		/* the request body's source failed */
};

/*
 * Where a request body comes from when it is not all in memory: the
 * transfer asks for more with pull(), which returns what it has (0 when
 * nothing is ready yet: origin_body_ready() says when there is), and
 * reports the end through *eof.
 */
struct origin_source {
	size_t	(*pull)(void *arg, const char **p, int *eof);
	void	(*consumed)(void *arg, size_t n);
	void	 *arg;
};

struct origin_xfer {
	/* Set by the caller before origin_start(). */
	struct backend		*be;
	struct buf		 req;		/* the request head, secret */
	const char		*body;		/* an in-memory body, or NULL */
	size_t			 body_len;
	struct origin_source	*source;	/* or a streamed one */
	int			 no_body;	/* a HEAD: no response body */
	/* A final response head: nonzero refuses it (why says why). */
	int			(*on_head)(struct origin_xfer *,
				    const struct http_response *);
	/* Body bytes, all consumed; nonzero asks to stop reading. */
	int			(*on_body)(struct origin_xfer *, const char *,
				    size_t);
	/* The end, called once; the transfer is not touched after it. */
	void			(*on_done)(struct origin_xfer *,
				    enum origin_error);
	void			*arg;
	const char		*why;		/* a refusal, in words */

	/* The transfer's own state. */
	struct origin_conn	*oc;
	struct http_response	 resp;
	struct http_chunked	 chunks;
	uint64_t		 left;		/* Content-Length still to come */
	size_t			 sent;		/* request bytes written */
	int			 framing;
	unsigned		 running:1;
	unsigned		 answered:1;	/* a response byte came */
	unsigned		 head_done:1;
	unsigned		 paused:1;
	unsigned		 resent:1;	/* once, after a stale connection */
	unsigned		 source_eof:1;
	TAILQ_ENTRY(origin_xfer) wait;		/* for the address */
};

void	 origin_init(void);
void	 origin_shutdown(void);
/*
 * Begin the request head: the request line with the backend's path
 * prefix, Host, and the backend's own credential (api_key as a Bearer
 * token, or the URL's user and password as Basic). The caller adds its
 * fields and the blank line.
 */
void	 origin_head(struct origin_xfer *, const char *method,
	    const char *target);
void	 origin_start(struct origin_xfer *);
/* Stop now: the connection is closed, on_done is not called. */
void	 origin_abort(struct origin_xfer *);
/* The caller can take body bytes again. */
void	 origin_resume(struct origin_xfer *);
/* A streamed body's source has bytes (or its end) to give. */
void	 origin_body_ready(struct origin_xfer *);
/* Wipe and free what the transfer holds; it may be started again. */
void	 origin_reset(struct origin_xfer *);
const char *origin_strerror(enum origin_error);
/* Make the backend's pool, reading its trust anchors (at config time). */
void	 origin_prepare(struct backend *);
/* A backend goes, or its url changed: its pool is closed. */
void	 origin_forget(struct backend *);
/* For /metrics: connections open and idle, all backends together. */
void	 origin_counts(uint64_t *open, uint64_t *idle, uint64_t *reused);

#endif
