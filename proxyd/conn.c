/*
 * conn.c: a client connection.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "conn.h"
#include "listing.h"
#include "log.h"
#include "manage.h"
#include "proxy.h"
#include "reply.h"
#include "router.h"
#include "peer.h"
#include "server.h"
#include "tls.h"
#include "usage.h"
#include "xmalloc.h"

#define CONN_READ_SIZE		16384
/*
 * A body must arrive at this many bytes a second or more, measured over
 * each header_timeout: a client that drips a byte at a time is cut off
 * rather than held for days.
 */
#define CONN_BODY_MIN_RATE	1024
/*
 * Output above the high mark pauses the upstream transfer; it resumes
 * when the client has taken the buffer below the low mark. The marks
 * bound the memory a slow client can pin to about 256 KiB.
 */
#define CONN_OUT_HIGH		(256 * 1024)
#define CONN_OUT_LOW		(64 * 1024)
/* What an upload may hold in memory on its way to the backend. */
#define CONN_UPLOAD_HIGH	(256 * 1024)
#define CONN_UPLOAD_LOW		(64 * 1024)

static TAILQ_HEAD(, conn)	conn_all = TAILQ_HEAD_INITIALIZER(conn_all);
static TAILQ_HEAD(, conn)	conn_flushq = TAILQ_HEAD_INITIALIZER(conn_flushq);
/*
 * Each kind of connection has its own ceiling, so that a flood of
 * clients can neither lock the operator out of the admin socket nor be
 * helped by a flood on the metrics address.
 */
static unsigned			conn_kind_n[CONN_NKINDS];
#define CONN_ADMIN_MAX		64
#define CONN_METRICS_MAX	16
static uint64_t			conn_next_id;
static int			conn_draining;
/*
 * The request bodies all public connections hold at once, bounded by
 * max_body_memory: each is counted from its head (its Content-Length)
 * or as its chunks arrive, until its response is done.
 */
static uint64_t			conn_body_total;
static uint64_t			conn_body_logged;	/* loop time */
#define CONN_BODY_LOG_EVERY_MS	(60 * 1000)

static ssize_t	conn_plain_read(struct conn *, void *, size_t);
static ssize_t	conn_plain_write(struct conn *, const void *, size_t);
static void	conn_plain_close(struct conn *);
static void	conn_event(struct loop_io *, uint32_t);
static void	conn_timeout(struct loop_timer *);
static void	conn_read(struct conn *);
static void	conn_process(struct conn *);
static void	conn_resume(void *);
static int	conn_begin_request(struct conn *);
static int	conn_authorise(struct conn *, const struct route *, int);
static int	conn_read_body(struct conn *);
static int	conn_body_reserve(struct conn *, uint64_t);
static void	conn_body_release(struct conn *);
static void	conn_flush(struct conn *);
static void	conn_update_events(struct conn *, int);
static void	conn_free(void *);

static const struct conn_transport conn_plain = {
	.name = "tcp",
	.read = conn_plain_read,
	.write = conn_plain_write,
	.close = conn_plain_close,
};

static ssize_t
conn_plain_read(struct conn *c, void *p, size_t len)
{
	ssize_t	n = read(c->io.fd, p, len);

	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return CONN_IO_AGAIN;
	if (errno != ECONNRESET)
		log_debug("conn %llu: read: %s", (unsigned long long)c->id,
		    strerror(errno));
	return CONN_IO_ERROR;
}

static ssize_t
conn_plain_write(struct conn *c, const void *p, size_t len)
{
	ssize_t	n = write(c->io.fd, p, len);

	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return CONN_IO_AGAIN;
	if (errno != EPIPE && errno != ECONNRESET)
		log_debug("conn %llu: write: %s", (unsigned long long)c->id,
		    strerror(errno));
	return CONN_IO_ERROR;
}

static void
conn_plain_close(struct conn *c)
{
	close(c->io.fd);
}

void
conn_init(void)
{
	loop_set_before_wait(conn_flush_pending);
}

unsigned
conn_count(void)
{
	return conn_kind_n[CONN_PUBLIC] + conn_kind_n[CONN_ADMIN] +
	    conn_kind_n[CONN_METRICS];
}

void
conn_accept(int fd, const char *addr, const char *ip, enum conn_kind kind,
    int tls, uid_t uid)
{
	struct conn	*c;
	struct peer	*peer = NULL;
	const unsigned	 limit[CONN_NKINDS] = {
		[CONN_PUBLIC] = (unsigned)server_cfg->max_connections,
		[CONN_ADMIN] = CONN_ADMIN_MAX,
		[CONN_METRICS] = CONN_METRICS_MAX,
	};

	if (conn_draining || conn_kind_n[kind] >= limit[kind] ||
	    (kind == CONN_PUBLIC && peer_admit(ip, &peer) != 0)) {
		/*
		 * Refusing at once keeps a flood of idle sockets from
		 * starving the connections already being served.
		 */
		close(fd);
		server_stats.refused++;
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->id = ++conn_next_id;
	c->tp = &conn_plain;
	c->state = CONN_READ_HEAD;
	c->kind = kind;
	c->uid = uid;
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	snprintf(c->ip, sizeof c->ip, "%s", ip);
	c->peer = peer;
	loop_io_init(&c->io, fd, conn_event, c);
	if (tls && tls_accept(c) != 0) {
		peer_release(peer);
		close(fd);
		free(c);
		return;
	}
	buf_init(&c->in);
	buf_init(&c->out);
	buf_init(&c->body);
	http_request_clear(&c->req);
	loop_timer_init(&c->timer, conn_timeout, c);
	loop_timer_arm(&c->timer, server_cfg->header_timeout);
	c->head_timer = 1;
	TAILQ_INSERT_TAIL(&conn_all, c, entry);
	conn_kind_n[kind]++;
	conn_update_events(c, 0);
}

/*
 * Interest: always EPOLLRDHUP, so a client that goes away while its
 * request is served is noticed at once; EPOLLIN unless reading is
 * stopped; EPOLLOUT only while a write is blocked.
 */
static void
conn_update_events(struct conn *c, int want_write)
{
	uint32_t	ev = EPOLLRDHUP;

	if (!c->read_stopped || c->tp_want_in)
		ev |= EPOLLIN;
	if (want_write || c->tp_want_out)
		ev |= EPOLLOUT;
	loop_io_set(&c->io, ev);
}

static void
conn_event(struct loop_io *io, uint32_t events)
{
	struct conn	*c = io->arg;

	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	/* A TLS handshake may make a read wait to write, or the reverse. */
	if ((events & EPOLLOUT) && c->tp_want_out)
		conn_read(c);
	if ((events & (EPOLLIN | EPOLLHUP)) && c->tp_want_in &&
	    c->state != CONN_CLOSED)
		conn_flush(c);
	if (c->state == CONN_CLOSED)
		return;
	if (events & EPOLLOUT)
		conn_flush(c);
	if (c->state == CONN_CLOSED)
		return;
	if ((events & (EPOLLIN | EPOLLHUP)) && !c->read_stopped)
		conn_read(c);
	else if (events & (EPOLLRDHUP | EPOLLHUP))
		conn_close(c);	/* peer gone while reading was stopped */
}

static void
conn_read(struct conn *c)
{
	ssize_t	n;

	do {
		buf_reserve(&c->in, CONN_READ_SIZE);
		n = c->tp->read(c, buf_tail(&c->in), c->in.cap - c->in.len);
		if (n == CONN_IO_AGAIN) {
			if (c->tp_want_out)
				conn_update_events(c, c->io.events & EPOLLOUT);
			return;
		}
		if (n == CONN_IO_EOF || n == CONN_IO_ERROR) {
			/*
			 * A client that goes away mid-request cancels it:
			 * closing aborts the upstream transfer, which stops
			 * generation.
			 */
			conn_close(c);
			return;
		}
		c->in.len += (size_t)n;
		/* TLS may hold decrypted bytes the socket will not signal. */
	} while (c->tp->pending != NULL && c->tp->pending(c) > 0);
	if (c->upload && c->state == CONN_BUSY) {
		/* An upload moves on as it comes, and is read as it moves. */
		if (buf_used(&c->in) >= CONN_UPLOAD_HIGH) {
			c->read_stopped = 1;
			conn_update_events(c, c->io.events & EPOLLOUT);
		}
		if (c->pr != NULL)
			proxy_upload_more(c->pr);
		return;
	}
	if (c->state == CONN_BUSY || c->close_after) {
		/* Hold at most one pipelined head while we are busy. */
		if (buf_used(&c->in) > server_cfg->max_header_size) {
			c->read_stopped = 1;
			conn_update_events(c, c->io.events & EPOLLOUT);
		}
		return;
	}
	conn_process(c);
}

static void
conn_error(struct conn *c, int status, const char *msg)
{
	/* After a framing error the rest of the input cannot be trusted. */
	c->close_after = 1;
	reply_error(c, status, router_dialect(c->req.path ? c->req.path : "",
	    c->req.path ? c->req.path_len : 0), msg, NULL);
}

static void
conn_process(struct conn *c)
{
	int	rc;

	for (;;) {
		if (c->state == CONN_CLOSED || c->close_after)
			return;
		if (c->state == CONN_READ_HEAD) {
			/* Tolerate blank lines between requests (RFC 9112 2.2). */
			while (buf_used(&c->in) >= 2 && buf_ptr(&c->in)[0] == '\r' &&
			    buf_ptr(&c->in)[1] == '\n')
				buf_consume(&c->in, 2);
			if (buf_used(&c->in) == 0)
				return;
			/*
			 * The first byte of a head starts its clock, so a client
			 * cannot stretch a head over the longer idle timeout.
			 */
			if (!c->head_timer) {
				loop_timer_arm(&c->timer, server_cfg->header_timeout);
				c->head_timer = 1;
			}
			rc = http_parse_head(buf_ptr(&c->in), buf_used(&c->in),
			    server_cfg->max_header_size, &c->req);
			if (rc == 0)
				return;
			if (rc < 0) {
				conn_error(c, -rc, rc == -431 ?
				    "request headers too large" : rc == -417 ?
				    "unsupported expectation" : "malformed request");
				return;
			}
			buf_consume(&c->in, (size_t)rc);
			c->head_timer = 0;
			c->requests++;
			request_begin(&c->rq);
			c->status = 0;
			server_stats.requests++;
			if (conn_begin_request(c) != 0)
				return;
		}
		if (c->state == CONN_READ_BODY) {
			if ((rc = conn_read_body(c)) <= 0)
				return;
		}
		if (c->state == CONN_BUSY) {
			loop_timer_stop(&c->timer);
			if (c->kind != CONN_PUBLIC)
				admin_start(c);
			else
				proxy_start(c);
			return;
		}
	}
}

/*
 * Who is asking, and may their role use this route? Refused requests
 * are answered here and never reach a backend. Model allowlists need
 * the body and are checked by the proxy.
 */
static int
conn_authorise(struct conn *c, const struct route *r, int has_body)
{
	char	msg[160];
	int	status;

	if ((status = request_authenticate(&c->rq, &c->req, r, msg,
	    sizeof msg)) == 0)
		return 0;
	if (has_body)
		c->close_after = 1;
	reply_error(c, status, r->dialect, msg, status != 401 ? NULL :
	    "WWW-Authenticate: Bearer realm=\"ogate\"\r\n"
	    "WWW-Authenticate: Basic realm=\"ogate\"\r\n");
	return -1;
}

/* Route the request; returns 0 to go on, -1 if it was answered. */
static int
conn_begin_request(struct conn *c)
{
	const struct route	*r;
	int			 status;
	unsigned		 allow;
	int			 has_body = c->req.chunked || c->req.content_length > 0;

	if (c->kind != CONN_PUBLIC)
		r = admin_match(c->req.method, c->req.path, c->req.path_len,
		    &status, &allow, c->kind == CONN_METRICS);
	else
		r = router_match(c->req.method, c->req.path, c->req.path_len,
		    &status, &allow);
	if (r == NULL) {
		char	hdr[128], methods[96];

		/* An unread body would be taken for the next request. */
		if (has_body)
			c->close_after = 1;
		if (status == 405) {
			router_allow_string(allow, methods, sizeof methods);
			snprintf(hdr, sizeof hdr, "Allow: %s\r\n", methods);
			reply_error(c, 405, router_dialect(c->req.path,
			    c->req.path_len), "method not allowed", hdr);
		} else
			reply_error(c, 404, router_dialect(c->req.path,
			    c->req.path_len), "not found", NULL);
		return -1;
	}
	c->route = r;
	if (c->kind == CONN_PUBLIC && !(r->flags & ROUTE_PUBLIC) &&
	    conn_authorise(c, r, has_body) != 0)
		return -1;
	/*
	 * A blob is no JSON the gateway must read: it streams to the one
	 * backend it is for as it arrives, whatever its size, so a model
	 * upload holds a bounded buffer, not the model. A blob for every
	 * backend at once is read whole, within max_body_size.
	 */
	if ((r->flags & ROUTE_UPLOAD) && c->kind == CONN_PUBLIC &&
	    c->req.method == HTTP_POST && c->req.content_length > 0 &&
	    !manage_fanout(c)) {
		c->upload = 1;
		c->upload_left = (uint64_t)c->req.content_length;
		if (c->req.expect_continue && buf_used(&c->in) == 0)
			conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		c->state = CONN_BUSY;
		return 0;
	}
	if (c->req.content_length >= 0 &&
	    (uint64_t)c->req.content_length > server_cfg->max_body_size) {
		c->close_after = 1;
		reply_error(c, 413, r->dialect, "request body too large", NULL);
		return -1;
	}
	buf_reset(&c->body);
	if (!has_body) {
		c->state = CONN_BUSY;
		return 0;
	}
	if (c->req.content_length > 0 &&
	    conn_body_reserve(c, (uint64_t)c->req.content_length) != 0)
		return -1;
	if (c->req.chunked)
		http_chunked_init(&c->chunked);
	c->state = CONN_READ_BODY;
	if (c->req.expect_continue && buf_used(&c->in) == 0)
		conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	c->body_seen = c->body_mark = 0;
	loop_timer_arm(&c->timer, server_cfg->header_timeout);
	return 0;
}

/* Returns 1 when the body is complete, 0 for more, -1 if answered. */
static int
conn_read_body(struct conn *c)
{
	size_t	avail = buf_used(&c->in);

	if (c->req.chunked) {
		ssize_t	used;
		int	done;

		used = http_chunked_feed(&c->chunked, buf_ptr(&c->in), avail,
		    &c->body, server_cfg->max_body_size, &done);
		if (used < 0) {
			conn_error(c, (int)-used, used == -413 ?
			    "request body too large" : "malformed chunked body");
			return -1;
		}
		buf_consume(&c->in, (size_t)used);
		c->body_seen += (uint64_t)used;
		if (conn_body_reserve(c, buf_used(&c->body)) != 0)
			return -1;
		if (!done)
			return 0;
	} else {
		size_t	want = (size_t)c->req.content_length - buf_used(&c->body);

		if (avail > want)
			avail = want;
		buf_add(&c->body, buf_ptr(&c->in), avail);
		buf_consume(&c->in, avail);
		c->body_seen += avail;
		if (buf_used(&c->body) < (size_t)c->req.content_length)
			return 0;
	}
	c->state = CONN_BUSY;
	return 1;
}

/*
 * Count a body of n bytes against max_body_memory (it only grows). Over
 * the bound the request is answered 503 and the connection closed, as
 * the rest of the body is not read; 0 to go on, -1 if answered.
 */
static int
conn_body_reserve(struct conn *c, uint64_t n)
{
	uint64_t	more;

	/* The admin socket is never kept out by a flood on the gateway. */
	if (c->kind != CONN_PUBLIC || n <= c->body_held)
		return 0;
	more = n - c->body_held;
	if (conn_body_total + more > server_cfg->max_body_memory) {
		if (conn_body_logged == 0 || loop_now() - conn_body_logged >=
		    CONN_BODY_LOG_EVERY_MS) {
			log_warn("request bodies hold %llu bytes "
			    "(max_body_memory); answering 503 to more",
			    (unsigned long long)conn_body_total);
			conn_body_logged = loop_now() | 1;
		}
		c->close_after = 1;
		reply_error(c, 503, c->route->dialect, "the gateway is holding "
		    "too many request bodies; try again", "Retry-After: 5\r\n");
		return -1;
	}
	conn_body_total += more;
	c->body_held = n;
	return 0;
}

/* The body is freed (the response is done, or the client gone). */
static void
conn_body_release(struct conn *c)
{
	conn_body_total -= c->body_held;
	c->body_held = 0;
}

static void
conn_timeout(struct loop_timer *t)
{
	struct conn	*c = t->arg;

	switch (c->state) {
	case CONN_READ_HEAD:
		if (buf_used(&c->in) == 0) {
			/* Idle keep-alive, or a connection that never spoke. */
			conn_close(c);
			return;
		}
		/* FALLTHROUGH */
	case CONN_READ_BODY:
		if (c->state == CONN_READ_BODY && c->body_seen - c->body_mark >=
		    CONN_BODY_MIN_RATE * server_cfg->header_timeout / 1000) {
			/* Still coming at a fair rate: another period. */
			c->body_mark = c->body_seen;
			loop_timer_arm(&c->timer, server_cfg->header_timeout);
			return;
		}
		server_stats.timeouts++;
		log_debug("conn %llu %s: client too slow, 408",
		    (unsigned long long)c->id, c->addr);
		c->close_after = 1;
		reply_error(c, 408, router_dialect(c->req.path ? c->req.path : "",
		    c->req.path ? c->req.path_len : 0), "request timed out", NULL);
		return;
	default:
		/* The client stopped reading its response. */
		log_debug("conn %llu %s: client stopped reading, closing",
		    (unsigned long long)c->id, c->addr);
		conn_close(c);
	}
}

void
conn_write(struct conn *c, const void *p, size_t len)
{
	if (c->state == CONN_CLOSED)
		return;
	buf_add(&c->out, p, len);
	if (!c->flush_queued) {
		c->flush_queued = 1;
		TAILQ_INSERT_TAIL(&conn_flushq, c, flush_entry);
	}
}

void
conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list	ap;
	char	stack[1024];
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(stack, sizeof stack, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof stack) {
		conn_write(c, stack, (size_t)n);
		return;
	}
	{
		char	*big = xmalloc((size_t)n + 1);

		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		conn_write(c, big, (size_t)n);
		free(big);
	}
}

size_t
conn_out_pending(const struct conn *c)
{
	return buf_used(&c->out);
}

int
conn_out_full(const struct conn *c)
{
	return buf_used(&c->out) >= CONN_OUT_HIGH;
}

void
conn_flush_pending(void)
{
	struct conn	*c;

	while ((c = TAILQ_FIRST(&conn_flushq)) != NULL) {
		TAILQ_REMOVE(&conn_flushq, c, flush_entry);
		c->flush_queued = 0;
		conn_flush(c);
	}
}

static void
conn_flush(struct conn *c)
{
	ssize_t	n;
	int	progress = 0;

	while (buf_used(&c->out) > 0) {
		n = c->tp->write(c, buf_ptr(&c->out), buf_used(&c->out));
		if (n == CONN_IO_AGAIN)
			break;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		buf_consume(&c->out, (size_t)n);
		progress = 1;
	}
	if (buf_used(&c->out) > 0) {
		/* A write that waits for input must not spin on EPOLLOUT. */
		conn_update_events(c, !c->tp_want_in);
		/* A client that takes nothing for idle_timeout is dropped. */
		if (c->state == CONN_BUSY && (progress ||
		    !loop_timer_armed(&c->timer)))
			loop_timer_arm(&c->timer, server_cfg->idle_timeout);
		return;
	}
	if (c->io.events & EPOLLOUT)
		conn_update_events(c, 0);
	if (c->close_after && c->pr == NULL) {
		conn_close(c);
		return;
	}
	if (c->state == CONN_BUSY)
		loop_timer_stop(&c->timer);
	if (c->pr != NULL)
		proxy_client_drained(c->pr, buf_used(&c->out) < CONN_OUT_LOW);
	if (c->manage != NULL)
		manage_client_drained(c->manage,
		    buf_used(&c->out) < CONN_OUT_LOW);
}

static void
conn_resume(void *arg)
{
	struct conn	*c = arg;

	c->resume_queued = 0;
	if (c->state == CONN_READ_HEAD && !c->close_after)
		conn_process(c);
}

size_t
conn_upload_peek(struct conn *c, const char **p, int *eof)
{
	size_t	n = buf_used(&c->in);

	if (n > c->upload_left)
		n = (size_t)c->upload_left;
	*p = buf_ptr(&c->in);
	*eof = c->upload_left == 0;
	return n;
}

void
conn_upload_consumed(struct conn *c, size_t n)
{
	buf_consume(&c->in, n);
	c->upload_left -= n;
	c->body_seen += n;
	if (c->read_stopped && buf_used(&c->in) < CONN_UPLOAD_LOW) {
		c->read_stopped = 0;
		conn_update_events(c, c->io.events & EPOLLOUT);
	}
}

void
conn_close_after(struct conn *c)
{
	c->close_after = 1;
	if (buf_used(&c->out) == 0 && c->pr == NULL)
		conn_close(c);
}

void
conn_response_done(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	c->pr = NULL;
	conn_body_release(c);
	request_end(&c->rq, c->route, c->status, c->ip);
	c->route = NULL;
	if (!c->req.keep_alive || conn_draining)
		c->close_after = 1;
	/* An upload answered before its end: the rest is not a request. */
	if (c->upload && c->upload_left > 0)
		c->close_after = 1;
	c->upload = 0;
	c->upload_left = 0;
	http_request_clear(&c->req);
	buf_reset(&c->body);
	if (buf_used(&c->body) == 0 && c->body.cap > 65536)
		buf_free(&c->body);
	c->state = CONN_READ_HEAD;
	if (c->close_after) {
		/* Flushed before the loop waits, then closed. */
		if (!c->flush_queued)
			conn_flush(c);
		return;
	}
	loop_timer_arm(&c->timer, server_cfg->idle_timeout);
	c->head_timer = 0;
	if (c->read_stopped) {
		c->read_stopped = 0;
		conn_update_events(c, c->io.events & EPOLLOUT);
	}
	/* A pipelined request may be waiting; serve it from the loop. */
	if (buf_used(&c->in) > 0 && !c->resume_queued) {
		c->resume_queued = 1;
		loop_defer(conn_resume, c);
	}
}

void
conn_close(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	c->state = CONN_CLOSED;
	if (c->pr != NULL) {
		struct proxy_req	*pr = c->pr;

		c->pr = NULL;
		proxy_client_gone(pr);
	}
	if (c->admin_job != NULL) {
		admin_client_gone(c->admin_job);
		c->admin_job = NULL;
	}
	if (c->listing != NULL) {
		struct listing	*l = c->listing;

		c->listing = NULL;
		listing_client_gone(l);
	}
	if (c->manage != NULL) {
		struct manage	*m = c->manage;

		c->manage = NULL;
		manage_client_gone(m);
	}
	if (c->rq.active) {
		/* The client left before its answer was complete. */
		c->rq.flags |= USAGE_CANCELLED;
		c->status = 499;
		request_end(&c->rq, c->route, c->status, c->ip);
	}
	loop_timer_stop(&c->timer);
	loop_io_del(&c->io);
	c->tp->close(c);
	c->io.fd = -1;
	if (c->flush_queued) {
		TAILQ_REMOVE(&conn_flushq, c, flush_entry);
		c->flush_queued = 0;
	}
	TAILQ_REMOVE(&conn_all, c, entry);
	conn_kind_n[c->kind]--;
	conn_body_release(c);
	peer_release(c->peer);
	c->peer = NULL;
	/* Events for it may still be in the batch being dispatched. */
	loop_defer(conn_free, c);
}

static void
conn_free(void *arg)
{
	struct conn	*c = arg;

	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->body);
	http_request_clear(&c->req);
	request_clear(&c->rq);
	free(c);
	if (conn_draining && conn_count() == 0)
		server_drained();
}

void
conn_drain_all(void)
{
	struct conn	*c, *next;

	conn_draining = 1;
	for (c = TAILQ_FIRST(&conn_all); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->state == CONN_READ_HEAD && buf_used(&c->in) == 0 &&
		    buf_used(&c->out) == 0)
			conn_close(c);
		else
			c->req.keep_alive = 0;
	}
	if (conn_count() == 0)
		server_drained();
}

void
conn_close_all(void)
{
	struct conn	*c;

	while ((c = TAILQ_FIRST(&conn_all)) != NULL)
		conn_close(c);
}
