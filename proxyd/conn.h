/*
 * conn.h: a client connection.
 *
 * A connection reads and parses requests one at a time (a pipelined
 * request waits in the input buffer until the response before it is
 * done), hands each to the proxy, and writes what the proxy produces.
 * Output is coalesced: writes only append to the output buffer, and
 * every connection with pending output is flushed once before the loop
 * waits, so a small response leaves in one system call.
 *
 * Byte I/O goes through a struct conn_transport, so that TLS can be put
 * underneath without the rest of the file noticing.
 */
#ifndef OG_CONN_H
#define OG_CONN_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "buf.h"
#include "http.h"
#include "loop.h"
#include "request.h"

struct admin_job;
struct listing;
struct manage;
struct auth_user;
struct conn;
struct peer;
struct proxy_req;
struct route;

/* What a transport's read or write returns besides a byte count. */
#define CONN_IO_AGAIN	(-1)	/* would block */
#define CONN_IO_ERROR	(-2)	/* fatal; errno or the TLS error logged */
#define CONN_IO_EOF	(0)

struct conn_transport {
	const char	*name;
	ssize_t		(*read)(struct conn *, void *, size_t);
	ssize_t		(*write)(struct conn *, const void *, size_t);
	/* Bytes read from the socket and not yet returned; may be NULL. */
	size_t		(*pending)(struct conn *);
	void		(*close)(struct conn *);
};

enum conn_state {
	CONN_READ_HEAD,
	CONN_READ_BODY,
	CONN_BUSY,		/* a request is being served */
	CONN_CLOSED,
};

struct conn {
	struct loop_io			 io;
	struct loop_timer		 timer;
	const struct conn_transport	*tp;
	void				*tp_data;
	enum conn_state			 state;
	uint64_t			 id;
	struct buf			 in;
	struct buf			 out;
	struct http_request		 req;
	struct buf			 body;
	struct http_chunked		 chunked;
	const struct route		*route;
	struct proxy_req		*pr;
	struct admin_job		*admin_job;
	struct listing			*listing;	/* a fleet model list */
	struct manage			*manage;	/* fleet model management */
	uid_t				 uid;		/* admin socket peer */
	int				 status;	/* of the response */
	struct request			 rq;		/* the one being served */
	char				 addr[64];	/* client address */
	char				 ip[48];
	struct peer			*peer;		/* its address's count */
	unsigned			 requests;
	uint64_t			 body_held;	/* of max_body_memory */
	/* Body bytes read, and as many at the last timer: a rate floor. */
	uint64_t			 body_seen;
	uint64_t			 body_mark;
	/* An upload streamed to its backend: body bytes not yet sent. */
	uint64_t			 upload_left;
	unsigned			 close_after:1;	/* close once out drains */
	unsigned			 flush_queued:1;
	unsigned			 resume_queued:1;
	unsigned			 read_stopped:1;
	unsigned			 upload:1;	/* the body streams */
	unsigned			 head_timer:1;	/* timer is header_timeout */
	unsigned			 kind:2;	/* enum conn_kind */
	unsigned			 tls:1;		/* on tls_listen */
	unsigned			 tls_failed:1;	/* no close_notify */
	/* The transport waits for the other direction (a TLS handshake). */
	unsigned			 tp_want_in:1;	/* a write needs input */
	unsigned			 tp_want_out:1;	/* a read needs output */
	TAILQ_ENTRY(conn)		 flush_entry;
	TAILQ_ENTRY(conn)		 entry;
};

void	 conn_init(void);
/* Where a client came in: it decides what it may ask for. */
enum conn_kind {
	CONN_PUBLIC,		/* the gateway: tokens, the Ollama API */
	CONN_ADMIN,		/* the admin socket: the admin API */
	CONN_METRICS,		/* metrics_listen: GET /metrics alone */
	CONN_NKINDS
};

void	 conn_accept(int fd, const char *addr, const char *ip,
	    enum conn_kind, int tls, uid_t uid);
/* Queue bytes of the response. */
void	 conn_write(struct conn *, const void *, size_t);
void	 conn_printf(struct conn *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* The response is complete: go on to the next request or close. */
void	 conn_response_done(struct conn *);
/* Close the connection once what is queued has been written. */
void	 conn_close_after(struct conn *);
void	 conn_close(struct conn *);
size_t	 conn_out_pending(const struct conn *);
/* Is the output buffer above the mark where producers should pause? */
int	 conn_out_full(const struct conn *);
/* Stop accepting keep-alive requests and close idle connections. */
void	 conn_drain_all(void);
/* Close every connection now (the end of a drain). */
void	 conn_close_all(void);
unsigned conn_count(void);
/* An upload's bytes: what is here now, and what was sent on. */
size_t	 conn_upload_peek(struct conn *, const char **, int *eof);
void	 conn_upload_consumed(struct conn *, size_t);
/* Called by the loop before it waits. */
void	 conn_flush_pending(void);

#endif
