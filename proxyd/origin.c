/*
 * origin.c: the gateway's own HTTP/1.1 client, for the request path.
 */
#include <sys/socket.h>
#include <sys/uio.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "backend.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "origin.h"
#include "server.h"
#include "tls.h"
#include "xmalloc.h"

#define ORIGIN_ADDRS		4	/* addresses kept for a host name */
#define ORIGIN_IDLE_MAX		256	/* idle connections per backend */
#define ORIGIN_IDLE_MS		(60 * 1000)
#define ORIGIN_CONNECT_MS	(10 * 1000)
#define ORIGIN_DNS_TTL_MS	(60 * 1000)
#define ORIGIN_HEAD_MAX		(64 * 1024)
#define ORIGIN_READ		(64 * 1024)

enum {
	FRAME_NONE,		/* no body: HEAD, 204, 304 */
	FRAME_LENGTH,
	FRAME_CHUNKED,
	FRAME_CLOSE,		/* the body ends with the connection */
};

enum oc_state {
	OC_CONNECTING,
	OC_HANDSHAKE,
	OC_BUSY,
	OC_IDLE,
	OC_CLOSED,		/* freed after the batch: events do nothing */
};

/* One backend's pool: its address, its idle connections, its session. */
struct origin {
	int			 refs;		/* the backend's, and conns' */
	int			 retired;
	char			*host;		/* for SNI and the peer check */
	char			*port;
	char			*authority;	/* for Host */
	char			*prefix;	/* the url's path, no final '/' */
	char			*credential;	/* an Authorization value */
	int			 tls;
	int			 numeric;	/* host is an address literal */
	SSL_CTX			*ctx;		/* the shared one, or its own */
	SSL_SESSION		*session;
	struct sockaddr_storage	 addr[ORIGIN_ADDRS];
	socklen_t		 addrlen[ORIGIN_ADDRS];
	int			 naddr;
	int			 next_addr;	/* where the next connect starts */
	uint64_t		 resolved_at;
	int			 resolving;
	TAILQ_HEAD(, origin_conn) idle;		/* most recent first */
	unsigned		 nidle;
	TAILQ_HEAD(, origin_xfer) waiting;	/* for an address */
};

struct origin_conn {
	struct loop_io		 io;
	struct loop_timer	 timer;		/* connect, or idle expiry */
	struct origin		*pool;
	struct origin_xfer	*x;
	SSL			*ssl;
	enum oc_state		 state;
	int			 addr;		/* which of pool->addr */
	int			 tries;		/* addresses tried */
	enum origin_error	 failed;	/* to report from the timer */
	unsigned		 reused:1;	/* it carried a request before */
	unsigned		 want_out:1;	/* TLS: a read waits to write */
	unsigned		 wfailed:1;	/* a write failed: never reused */
	struct buf		 in;		/* a head not yet whole */
	TAILQ_ENTRY(origin_conn) entry;
};

struct origin_dns {
	struct origin		*pool;
	char			*host;
	char			*port;
	int			 naddr;
	struct sockaddr_storage	 addr[ORIGIN_ADDRS];
	socklen_t		 addrlen[ORIGIN_ADDRS];
	char			 error[128];
};

static SSL_CTX		*origin_ctx;
static int		 origin_ssl_idx = -1;
static int		 origin_dns_pipe[2] = { -1, -1 };
static struct loop_io	 origin_dns_io;
static char		 origin_rbuf[ORIGIN_READ];
static struct buf	 origin_scratch;	/* a decoded chunked body */
static uint64_t		 origin_open, origin_nidle, origin_reuses;

static void	origin_conn_event(struct loop_io *, uint32_t);
static void	origin_conn_timer(struct loop_timer *);
static void	origin_connect(struct origin *, struct origin_xfer *);
static void	origin_send(struct origin_conn *);
static void	origin_read(struct origin_conn *);
static void	origin_finish(struct origin_conn *, enum origin_error);
static void	origin_close(struct origin_conn *);
static void	origin_release(struct origin *);
static void	origin_dns_start(struct origin *);
static void	origin_dns_event(struct loop_io *, uint32_t);

const char *
origin_strerror(enum origin_error e)
{
	switch (e) {
	case ORIGIN_OK:		return "ok";
	case ORIGIN_CONNECT:	return "could not connect";
	case ORIGIN_TLS:	return "TLS failed";
	case ORIGIN_RESET:	return "closed the connection before answering";
	case ORIGIN_BROKEN:	return "closed the connection mid-response";
	case ORIGIN_REFUSED:	return "sent a response that was refused";
	case ORIGIN_UPLOAD:	return "the request body could not be read";
	}
	return "failed";
}

/* OpenSSL's first error as text, and its queue cleared. */
static const char *
origin_ssl_error(void)
{
	return tls_error("the connection closed");
}

/* A new session from a backend: kept for the pool's next handshake. */
static int
origin_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct origin_conn	*oc = SSL_get_ex_data(ssl, origin_ssl_idx);
	SSL_SESSION		*copy;

	if (oc == NULL || oc->pool->retired)
		return 0;
	/*
	 * The pool keeps a copy. The session given is also the
	 * connection's own, which OpenSSL marks not resumable when the
	 * connection ends without a close_notify or with an alert, as a
	 * backend's close of an idle connection usually does.
	 */
	if ((copy = SSL_SESSION_dup(sess)) == NULL)
		return 0;
	if (oc->pool->session != NULL)
		SSL_SESSION_free(oc->pool->session);
	oc->pool->session = copy;
	return 0;	/* the caller's reference stays the caller's */
}

static SSL_CTX *
origin_make_ctx(const char *ca_file)
{
	SSL_CTX	*ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, origin_new_session);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9);
	if (ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file,
	    NULL) != 1 : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		log_warn("backend TLS: cannot load %s: %s", ca_file != NULL ?
		    ca_file : "the system's certificates", origin_ssl_error());
	}
	return ctx;
}

void
origin_init(void)
{
	if (pipe2(origin_dns_pipe, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe: %s", strerror(errno));
	loop_io_init(&origin_dns_io, origin_dns_pipe[0], origin_dns_event,
	    NULL);
	loop_io_set(&origin_dns_io, EPOLLIN);
	origin_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	buf_init(&origin_scratch);
}

void
origin_shutdown(void)
{
	loop_io_del(&origin_dns_io);
	close(origin_dns_pipe[0]);
	/* A lookup still running finds its pipe closed and frees its job. */
	close(origin_dns_pipe[1]);
	origin_dns_pipe[0] = origin_dns_pipe[1] = -1;
	if (origin_ctx != NULL)
		SSL_CTX_free(origin_ctx);
	origin_ctx = NULL;
	buf_free(&origin_scratch);
}

void
origin_counts(uint64_t *open, uint64_t *idle, uint64_t *reused)
{
	*open = origin_open;
	*idle = origin_nidle;
	*reused = origin_reuses;
}

/* Percent-decode the URL's user information in place. */
static void
origin_unescape(char *s)
{
	char	*o = s;

	for (; *s != '\0'; s++) {
		unsigned	v;

		if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1 &&
		    s[1] != '\0' && s[2] != '\0') {
			*o++ = (char)v;
			s += 2;
		} else
			*o++ = *s;
	}
	*o = '\0';
}

/* The interface of an IPv6 zone, as in [fe80::1%25eth0]; 0 if none. */
static unsigned
origin_zone(const char *host, const char *end)
{
	const char	*pct = memchr(host, '%', (size_t)(end - host));
	const char	*rb = memchr(host, ']', (size_t)(end - host));
	char		 name[IF_NAMESIZE + 1];
	size_t		 n;

	if (pct == NULL || rb == NULL || pct > rb)
		return 0;
	pct += strncmp(pct, "%25", 3) == 0 ? 3 : 1;
	if ((n = (size_t)(rb - pct)) == 0 || n > IF_NAMESIZE)
		return 0;
	memcpy(name, pct, n);
	name[n] = '\0';
	return if_nametoindex(name);
}

/* The pool for a backend's url as it was checked by the config. */
static struct origin *
origin_make(const struct backend *be)
{
	struct origin	*o = xcalloc(1, sizeof *o);
	const char	*url = be->url, *auth, *end, *at = NULL, *host, *colon;
	struct in6_addr	 a6;
	struct in_addr	 a4;

	o->refs = 1;
	TAILQ_INIT(&o->idle);
	TAILQ_INIT(&o->waiting);
	o->tls = strncmp(url, "https://", 8) == 0;
	auth = url + (o->tls ? 8 : 7);
	end = auth + strcspn(auth, "/");
	for (const char *q = auth; q < end; q++) {
		if (*q == '@')
			at = q;
	}
	host = at != NULL ? at + 1 : auth;
	o->authority = xstrndup(host, (size_t)(end - host));
	if (*host == '[') {
		const char	*rb = memchr(host, ']', (size_t)(end - host));
		size_t		 n = strcspn(host + 1, "%]");

		o->host = xstrndup(host + 1, n);
		colon = rb != NULL && rb + 1 < end ? rb + 1 : NULL;
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		o->host = xstrndup(host, (size_t)((colon != NULL ? colon : end) -
		    host));
	}
	o->port = colon != NULL ? xstrndup(colon + 1, (size_t)(end - colon -
	    1)) : xstrdup(o->tls ? "443" : "80");
	o->prefix = xstrdup(end);
	if (*o->prefix != '\0' && o->prefix[strlen(o->prefix) - 1] == '/')
		o->prefix[strlen(o->prefix) - 1] = '\0';
	if (be->api_key != NULL)
		o->credential = xasprintf("Bearer %s", be->api_key);
	else if (at != NULL) {
		char		*user = xstrndup(auth, (size_t)(at - auth));
		char		*out;
		size_t		 n;

		origin_unescape(user);
		n = strlen(user);
		out = xmalloc(4 * ((n + 2) / 3) + 1);
		EVP_EncodeBlock((unsigned char *)out, (unsigned char *)user,
		    (int)n);
		o->credential = xasprintf("Basic %s", out);
		xfree_secret(out);
		xfree_secret(user);
	}
	if (o->tls) {
		if (be->ca_file != NULL)
			o->ctx = origin_make_ctx(be->ca_file);
		else {
			if (origin_ctx == NULL)
				origin_ctx = origin_make_ctx(NULL);
			o->ctx = origin_ctx;
			SSL_CTX_up_ref(o->ctx);
		}
		if (o->ctx == NULL)
			log_warn("backend %s: no TLS context: %s", be->name,
			    origin_ssl_error());
	}
	/* An address literal needs no lookup, now or later. */
	if (inet_pton(AF_INET, o->host, &a4) == 1) {
		struct sockaddr_in	*sin = (struct sockaddr_in *)&o->addr[0];

		sin->sin_family = AF_INET;
		sin->sin_addr = a4;
		sin->sin_port = htons((uint16_t)atoi(o->port));
		o->addrlen[0] = sizeof *sin;
		o->naddr = 1;
		o->numeric = 1;
	} else if (inet_pton(AF_INET6, o->host, &a6) == 1) {
		struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&o->addr[0];

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = a6;
		sin6->sin6_port = htons((uint16_t)atoi(o->port));
		sin6->sin6_scope_id = origin_zone(host, end);
		o->addrlen[0] = sizeof *sin6;
		o->naddr = 1;
		o->numeric = 1;
	}
	return o;
}

static void
origin_release(struct origin *o)
{
	if (--o->refs > 0)
		return;
	free(o->host);
	free(o->port);
	free(o->authority);
	free(o->prefix);
	xfree_secret(o->credential);
	if (o->session != NULL)
		SSL_SESSION_free(o->session);
	if (o->ctx != NULL)
		SSL_CTX_free(o->ctx);
	free(o);
}

/* The backend's pool; backend_sync() drops it when the url changes. */
static struct origin *
origin_of(struct backend *be)
{
	if (be->origin == NULL)
		be->origin = origin_make(be);
	return be->origin;
}

void
origin_prepare(struct backend *be)
{
	origin_of(be);
}

void
origin_forget(struct backend *be)
{
	struct origin		*o = be->origin;
	struct origin_conn	*oc;
	struct origin_xfer	*x;

	if (o == NULL)
		return;
	be->origin = NULL;
	o->retired = 1;
	while ((oc = TAILQ_FIRST(&o->idle)) != NULL)
		origin_close(oc);
	/* Requests waiting for its address start over with the new pool. */
	while ((x = TAILQ_FIRST(&o->waiting)) != NULL) {
		TAILQ_REMOVE(&o->waiting, x, wait);
		x->running = 0;
		if (be->removed)
			x->on_done(x, ORIGIN_CONNECT);
		else
			origin_start(x);
	}
	origin_release(o);
}

void
origin_head(struct origin_xfer *x, const char *method, const char *target)
{
	struct origin	*o = origin_of(x->be);

	buf_printf(&x->req, "%s %s%s HTTP/1.1\r\nHost: %s\r\n", method,
	    o->prefix, target, o->authority);
	if (o->credential != NULL)
		buf_printf(&x->req, "Authorization: %s\r\n", o->credential);
}

void
origin_reset(struct origin_xfer *x)
{
	if (x->req.data != NULL)
		explicit_bzero(x->req.data, x->req.cap);
	buf_free(&x->req);
	http_response_clear(&x->resp);
	x->sent = 0;
	x->left = 0;
	x->answered = x->head_done = x->paused = x->resent = 0;
	x->source_eof = 0;
	x->why = NULL;
}

void
origin_start(struct origin_xfer *x)
{
	struct origin		*o = origin_of(x->be);
	struct origin_conn	*oc;

	x->running = 1;
	x->oc = NULL;
	x->sent = 0;
	x->answered = x->head_done = 0;
	http_response_clear(&x->resp);
	/*
	 * The most recently used idle connection: the warmest. One with
	 * an event waiting in this batch (a close, or bytes no request
	 * asked for) is not taken: its news would be read as the answer.
	 * Knowing costs no system call; the loop marks the batch.
	 */
	while ((oc = TAILQ_FIRST(&o->idle)) != NULL && oc->io.ready)
		origin_close(oc);
	if (oc != NULL) {
		TAILQ_REMOVE(&o->idle, oc, entry);
		o->nidle--;
		origin_nidle--;
		origin_reuses++;
		loop_timer_stop(&oc->timer);
		oc->state = OC_BUSY;
		oc->x = x;
		x->oc = oc;
		origin_send(oc);
		return;
	}
	if (!o->numeric && (o->naddr == 0 ||
	    loop_now() - o->resolved_at > ORIGIN_DNS_TTL_MS)) {
		if (!o->resolving)
			origin_dns_start(o);
		if (o->naddr == 0) {
			/* Nothing to connect to yet: wait for the lookup. */
			TAILQ_INSERT_TAIL(&o->waiting, x, wait);
			return;
		}
	}
	origin_connect(o, x);
}

/* A socket to the pool's next address; connect() is under way. */
static int
origin_dial(struct origin_conn *oc)
{
	struct origin	*o = oc->pool;
	int		 fd, one = 1;

	oc->addr = (o->next_addr + oc->tries) % o->naddr;
	fd = socket(o->addr[oc->addr].ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&o->addr[oc->addr],
	    o->addrlen[oc->addr]) == -1 && errno != EINPROGRESS) {
		int	e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	loop_io_init(&oc->io, fd, origin_conn_event, oc);
	loop_io_set(&oc->io, EPOLLOUT);
	return 0;
}

/*
 * A connection that fails before it could start says so from the loop,
 * never from inside origin_start(): the caller may not expect its
 * transfer to end before that returns.
 */
static void
origin_fail_soon(struct origin_conn *oc, enum origin_error e)
{
	oc->failed = e;
	loop_timer_arm(&oc->timer, 0);
}

static void
origin_connect(struct origin *o, struct origin_xfer *x)
{
	struct origin_conn	*oc = xcalloc(1, sizeof *oc);
	uint64_t		 ms = server_cfg->upstream_timeout;

	oc->pool = o;
	o->refs++;
	oc->x = x;
	x->oc = oc;
	oc->state = OC_CONNECTING;
	oc->io.fd = -1;
	buf_init(&oc->in);
	loop_timer_init(&oc->timer, origin_conn_timer, oc);
	origin_open++;
	if (o->tls && o->ctx == NULL) {
		x->why = "no TLS context for the backend";
		origin_fail_soon(oc, ORIGIN_TLS);
		return;
	}
	while (oc->tries < o->naddr) {
		if (origin_dial(oc) == 0) {
			loop_timer_arm(&oc->timer, ms < ORIGIN_CONNECT_MS ? ms :
			    ORIGIN_CONNECT_MS);
			return;
		}
		oc->tries++;
	}
	origin_fail_soon(oc, ORIGIN_CONNECT);
}

/* The connect failed: the next address, or the end. */
static void
origin_redial(struct origin_conn *oc)
{
	struct origin	*o = oc->pool;

	loop_io_del(&oc->io);
	close(oc->io.fd);
	oc->io.fd = -1;
	while (++oc->tries < o->naddr) {
		if (origin_dial(oc) == 0)
			return;
	}
	/* Names move: look again before the next try. */
	if (!o->numeric)
		o->resolved_at = 0;
	origin_finish(oc, ORIGIN_CONNECT);
}

static void
origin_handshake(struct origin_conn *oc)
{
	struct origin	*o = oc->pool;
	int		 n, e;

	if (oc->ssl == NULL) {
		struct in6_addr	a;

		if ((oc->ssl = SSL_new(o->ctx)) == NULL ||
		    SSL_set_fd(oc->ssl, oc->io.fd) != 1) {
			oc->x->why = origin_ssl_error();
			origin_finish(oc, ORIGIN_TLS);
			return;
		}
		SSL_set_ex_data(oc->ssl, origin_ssl_idx, oc);
		if (inet_pton(AF_INET, o->host, &a) == 1 ||
		    inet_pton(AF_INET6, o->host, &a) == 1)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(oc->ssl),
			    o->host);
		else {
			SSL_set_tlsext_host_name(oc->ssl, o->host);
			SSL_set1_host(oc->ssl, o->host);
		}
		if (o->session != NULL)
			SSL_set_session(oc->ssl, o->session);
		SSL_set_connect_state(oc->ssl);
	}
	ERR_clear_error();
	errno = 0;
	if ((n = SSL_do_handshake(oc->ssl)) == 1) {
		oc->state = OC_BUSY;
		loop_timer_stop(&oc->timer);
		loop_io_set(&oc->io, EPOLLIN);
		origin_send(oc);
		return;
	}
	e = SSL_get_error(oc->ssl, n);
	if (e == SSL_ERROR_WANT_READ) {
		loop_io_set(&oc->io, EPOLLIN);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		loop_io_set(&oc->io, EPOLLOUT);
		return;
	}
	{
		long	v = SSL_get_verify_result(oc->ssl);

		oc->x->why = v != X509_V_OK ? X509_verify_cert_error_string(v) :
		    origin_ssl_error();
	}
	origin_finish(oc, ORIGIN_TLS);
}

/* The TCP connection is up, or failed. */
static void
origin_connected(struct origin_conn *oc)
{
	int		 err = 0;
	socklen_t	 len = sizeof err;

	if (getsockopt(oc->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		log_debug("backend connect: %s", strerror(err));
		origin_redial(oc);
		return;
	}
	oc->pool->next_addr = oc->addr;
	if (oc->pool->tls) {
		oc->state = OC_HANDSHAKE;
		origin_handshake(oc);
		return;
	}
	oc->state = OC_BUSY;
	loop_timer_stop(&oc->timer);
	loop_io_set(&oc->io, EPOLLIN);
	origin_send(oc);
}

/* Write with the connection's transport: bytes, or -1 with errno. */
static ssize_t
origin_write(struct origin_conn *oc, const struct iovec *iov, int n)
{
	if (oc->ssl == NULL) {
		struct msghdr	msg;

		memset(&msg, 0, sizeof msg);
		msg.msg_iov = (struct iovec *)iov;
		msg.msg_iovlen = (size_t)n;
		return sendmsg(oc->io.fd, &msg, MSG_NOSIGNAL);
	}
	/* TLS writes one buffer at a time; a record each, which is fine. */
	for (int i = 0; i < n; i++) {
		int	r, e;

		if (iov[i].iov_len == 0)
			continue;
		ERR_clear_error();
		errno = 0;
		r = SSL_write(oc->ssl, iov[i].iov_base, iov[i].iov_len > INT_MAX ?
		    INT_MAX : (int)iov[i].iov_len);
		if (r > 0)
			return r;
		e = SSL_get_error(oc->ssl, r);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
			errno = EAGAIN;
			return -1;
		}
		if (errno == 0)
			errno = EPIPE;
		return -1;
	}
	return 0;
}

/* The stale-connection rule: may the request go again, on a new one? */
static int
origin_may_resend(const struct origin_conn *oc)
{
	const struct origin_xfer	*x = oc->x;

	return oc->reused && !x->resent && !x->answered &&
	    (x->source == NULL || x->sent <= buf_used(&x->req));
}

/* A reused connection turned out closed: the request goes on a new one. */
static void
origin_resend(struct origin_conn *oc)
{
	struct origin_xfer	*x = oc->x;

	log_debug("backend connection was closed; sending again on a new one");
	oc->x = NULL;
	x->oc = NULL;
	/* The pool may go with its last connection: the backend's is used. */
	origin_close(oc);
	x->resent = 1;
	x->sent = 0;
	origin_connect(origin_of(x->be), x);
}

/* Send what is left of the request. */
static void
origin_send(struct origin_conn *oc)
{
	struct origin_xfer	*x = oc->x;
	size_t			 head = buf_used(&x->req);

	while (!oc->wfailed) {
		struct iovec	 iov[2];
		int		 n = 0;
		ssize_t		 w;
		const char	*p;
		size_t		 avail;

		if (x->sent < head) {
			iov[n].iov_base = buf_ptr(&x->req) + x->sent;
			iov[n++].iov_len = head - x->sent;
		}
		if (x->source == NULL) {
			size_t	done = x->sent > head ? x->sent - head : 0;

			if (done < x->body_len) {
				iov[n].iov_base = (char *)x->body + done;
				iov[n++].iov_len = x->body_len - done;
			}
		} else if (!x->source_eof) {
			int	eof = 0;

			avail = x->source->pull(x->source->arg, &p, &eof);
			if (avail > 0) {
				iov[n].iov_base = (char *)p;
				iov[n++].iov_len = avail;
			} else if (eof)
				x->source_eof = 1;
		}
		if (n == 0)
			break;
		w = origin_write(oc, iov, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR) {
				loop_io_set(&oc->io, EPOLLIN | EPOLLOUT);
				return;
			}
			if (origin_may_resend(oc)) {
				origin_resend(oc);
				return;
			}
			/*
			 * The backend may have answered before it stopped
			 * reading (a 413, say): the answer is read first.
			 */
			log_debug("backend write: %s", strerror(errno));
			oc->wfailed = 1;
			break;
		}
		if (x->source != NULL && x->sent + (size_t)w > head) {
			size_t	from = x->sent > head ? 0 : head - x->sent;

			x->source->consumed(x->source->arg, (size_t)w - from);
		}
		x->sent += (size_t)w;
	}
	/* All sent, or waiting on the source: only the answer matters now. */
	if (oc->io.events != EPOLLIN && !x->paused)
		loop_io_set(&oc->io, EPOLLIN);
}

void
origin_body_ready(struct origin_xfer *x)
{
	if (x->running && x->oc != NULL && x->oc->state == OC_BUSY)
		origin_send(x->oc);
}

/* Read into buf: bytes, 0 at the end, -1 with errno (EAGAIN: none yet). */
static ssize_t
origin_recv(struct origin_conn *oc, char *buf, size_t len)
{
	int	n, e;

	if (oc->ssl == NULL)
		return read(oc->io.fd, buf, len);
	ERR_clear_error();
	errno = 0;
	n = SSL_read(oc->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (n > 0)
		return n;
	e = SSL_get_error(oc->ssl, n);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		oc->want_out = e == SSL_ERROR_WANT_WRITE;
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		return 0;	/* closed without close_notify */
	log_debug("backend TLS read: %s", origin_ssl_error());
	errno = ECONNRESET;
	return -1;
}

/*
 * The head is whole: decide how the body is framed, and hand it over.
 * Returns how many bytes of p the head took, or -1 if it ended the
 * transfer.
 */
static ssize_t
origin_take_head(struct origin_conn *oc, const char *p, size_t len)
{
	struct origin_xfer	*x = oc->x;
	int			 n;

	n = http_parse_response(p, len, ORIGIN_HEAD_MAX, &x->resp);
	if (n == 0)
		return 0;
	if (n < 0) {
		x->why = x->resp.why;
		origin_finish(oc, ORIGIN_REFUSED);
		return -1;
	}
	if (x->resp.status == 101) {
		x->why = "101 Switching Protocols, which the gateway does not "
		    "relay";
		origin_finish(oc, ORIGIN_REFUSED);
		return -1;
	}
	if (x->resp.status < 200) {
		/* Interim answers are the backend's business. */
		http_response_clear(&x->resp);
		return n;
	}
	if (x->no_body || x->resp.status == 204 || x->resp.status == 304)
		x->framing = FRAME_NONE;
	else if (x->resp.chunked) {
		x->framing = FRAME_CHUNKED;
		http_chunked_init(&x->chunks);
	} else if (x->resp.content_length >= 0) {
		x->framing = FRAME_LENGTH;
		x->left = (uint64_t)x->resp.content_length;
	} else {
		x->framing = FRAME_CLOSE;
		x->resp.keep_alive = 0;
	}
	x->head_done = 1;
	if (x->on_head(x, &x->resp) != 0) {
		origin_finish(oc, ORIGIN_REFUSED);
		return -1;
	}
	if (x->framing == FRAME_NONE || (x->framing == FRAME_LENGTH &&
	    x->left == 0)) {
		/* Bytes after a response that has no body are no response. */
		if ((size_t)n < len)
			x->resp.keep_alive = 0;
		origin_finish(oc, ORIGIN_OK);
		return -1;
	}
	return n;
}

/*
 * Body bytes: passed on as they are, or decoded from chunks. Returns 1
 * when the transfer ended, 0 to read on.
 */
static int
origin_take_body(struct origin_conn *oc, const char *p, size_t len)
{
	struct origin_xfer	*x = oc->x;
	int			 stop = 0;

	switch (x->framing) {
	case FRAME_LENGTH: {
		size_t	n = len < x->left ? len : (size_t)x->left;

		x->left -= n;
		if (n > 0)
			stop = x->on_body(x, p, n);
		if (x->left == 0) {
			/* More than the length said: the connection is done. */
			if (n < len)
				x->resp.keep_alive = 0;
			origin_finish(oc, ORIGIN_OK);
			return 1;
		}
		break;
	}
	case FRAME_CHUNKED: {
		ssize_t	used;
		int	done;

		buf_reset(&origin_scratch);
		used = http_chunked_feed(&x->chunks, p, len, &origin_scratch,
		    UINT64_MAX / 2, &done);
		if (used < 0) {
			/* Chunks whole before the fault go, as in an earlier read. */
			if (buf_used(&origin_scratch) > 0)
				(void)x->on_body(x, buf_ptr(&origin_scratch),
				    buf_used(&origin_scratch));
			x->why = "a malformed chunked body";
			origin_finish(oc, ORIGIN_REFUSED);
			return 1;
		}
		if (buf_used(&origin_scratch) > 0)
			stop = x->on_body(x, buf_ptr(&origin_scratch),
			    buf_used(&origin_scratch));
		if (done) {
			if ((size_t)used < len)
				x->resp.keep_alive = 0;
			origin_finish(oc, ORIGIN_OK);
			return 1;
		}
		break;
	}
	default:
		if (len > 0)
			stop = x->on_body(x, p, len);
		break;
	}
	if (stop && !x->paused) {
		x->paused = 1;
		loop_io_set(&oc->io, 0);
	}
	return 0;
}

static void
origin_read(struct origin_conn *oc)
{
	struct origin_xfer	*x;

	while ((x = oc->x) != NULL && !x->paused) {
		ssize_t		 n = origin_recv(oc, origin_rbuf, sizeof origin_rbuf);
		const char	*p = origin_rbuf;
		size_t		 len;

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR) {
				if (oc->want_out)
					loop_io_set(&oc->io, EPOLLIN | EPOLLOUT);
				return;
			}
			n = 0;	/* a reset ends it like a close, and worse */
		}
		if (n == 0) {
			if (!x->answered && origin_may_resend(oc)) {
				origin_resend(oc);
				return;
			}
			if (x->head_done && x->framing == FRAME_CLOSE) {
				origin_finish(oc, ORIGIN_OK);
				return;
			}
			if (!x->head_done && buf_used(&oc->in) > 0)
				x->why = "a response head cut short";
			origin_finish(oc, x->head_done ? ORIGIN_BROKEN :
			    buf_used(&oc->in) > 0 ? ORIGIN_REFUSED :
			    ORIGIN_RESET);
			return;
		}
		x->answered = 1;
		len = (size_t)n;
		if (!x->head_done) {
			int	gathered = buf_used(&oc->in) > 0;

			/* A head in pieces is gathered, and parsed whole. */
			if (gathered) {
				buf_add(&oc->in, p, len);
				p = buf_ptr(&oc->in);
				len = buf_used(&oc->in);
			}
			while (!x->head_done && len > 0) {
				ssize_t	took = origin_take_head(oc, p, len);

				if (took < 0)
					return;
				if (took == 0)
					break;
				p += took;
				len -= (size_t)took;
			}
			if (!x->head_done) {
				/* The parser bounds what may gather here. */
				if (gathered)
					buf_consume(&oc->in, buf_used(&oc->in) -
					    len);
				else
					buf_add(&oc->in, p, len);
				continue;
			}
			if (len > 0 && origin_take_body(oc, p, len))
				return;
			buf_reset(&oc->in);
		} else if (origin_take_body(oc, p, len))
			return;
		/* A short read took all there was; epoll says when more comes. */
		if ((size_t)n < sizeof origin_rbuf && (oc->ssl == NULL ||
		    SSL_pending(oc->ssl) == 0))
			return;
	}
}

void
origin_resume(struct origin_xfer *x)
{
	struct origin_conn	*oc = x->oc;

	if (!x->running || !x->paused || oc == NULL)
		return;
	x->paused = 0;
	loop_io_set(&oc->io, EPOLLIN);
	/* Bytes TLS already holds raise no event: read them now. */
	if (oc->ssl != NULL && SSL_pending(oc->ssl) > 0)
		origin_read(oc);
}

static void
origin_conn_event(struct loop_io *io, uint32_t events)
{
	struct origin_conn	*oc = io->arg;

	switch (oc->state) {
	case OC_IDLE:
		/*
		 * An idle connection has nothing to say: the backend closed
		 * it, or sent what no request asked for. Either way it goes.
		 * Only TLS may have business of its own, a session ticket.
		 */
		if (oc->ssl != NULL && !(events & (EPOLLHUP | EPOLLERR))) {
			char	c;
			int	n;

			ERR_clear_error();
			n = SSL_read(oc->ssl, &c, 1);
			if (n <= 0 && SSL_get_error(oc->ssl, n) ==
			    SSL_ERROR_WANT_READ)
				return;
		}
		origin_close(oc);
		return;
	case OC_CONNECTING:
		origin_connected(oc);
		return;
	case OC_HANDSHAKE:
		origin_handshake(oc);
		return;
	case OC_CLOSED:
		return;
	case OC_BUSY:
		break;
	}
	if ((events & EPOLLOUT) && !oc->want_out) {
		origin_send(oc);
		if (oc->x == NULL || oc->state != OC_BUSY)
			return;
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || oc->want_out) {
		oc->want_out = 0;
		origin_read(oc);
	}
}

static void
origin_conn_timer(struct loop_timer *t)
{
	struct origin_conn	*oc = t->arg;

	if (oc->state == OC_IDLE) {
		origin_close(oc);
		return;
	}
	if (oc->failed != ORIGIN_OK) {
		origin_finish(oc, oc->failed);
		return;
	}
	/* Connecting, or its handshake, took too long. */
	if (oc->state == OC_CONNECTING && oc->tries + 1 < oc->pool->naddr) {
		origin_redial(oc);
		loop_timer_arm(&oc->timer, ORIGIN_CONNECT_MS);
		return;
	}
	oc->x->why = "timed out connecting";
	origin_finish(oc, oc->state == OC_HANDSHAKE ? ORIGIN_TLS :
	    ORIGIN_CONNECT);
}

/*
 * The transfer ends. A connection whose exchange ended cleanly, with
 * nothing unread or unsent, goes back to the pool; any other closes.
 */
static void
origin_finish(struct origin_conn *oc, enum origin_error e)
{
	struct origin_xfer	*x = oc->x;
	struct origin		*o = oc->pool;
	int			 keep;

	keep = e == ORIGIN_OK && x->resp.keep_alive && !x->paused &&
	    !oc->wfailed && (x->source != NULL ? x->source_eof :
	    x->sent == buf_used(&x->req) + x->body_len) &&
	    !o->retired && o->nidle < ORIGIN_IDLE_MAX &&
	    (oc->ssl == NULL || SSL_pending(oc->ssl) == 0);
	x->running = 0;
	x->oc = NULL;
	oc->x = NULL;
	if (keep) {
		oc->state = OC_IDLE;
		oc->reused = 1;
		if (oc->io.events != EPOLLIN)
			loop_io_set(&oc->io, EPOLLIN);
		buf_free(&oc->in);
		TAILQ_INSERT_HEAD(&o->idle, oc, entry);
		o->nidle++;
		origin_nidle++;
		loop_timer_arm(&oc->timer, ORIGIN_IDLE_MS);
	} else
		origin_close(oc);
	x->on_done(x, e);
}

static void
origin_close(struct origin_conn *oc)
{
	struct origin	*o = oc->pool;

	if (oc->state == OC_IDLE) {
		TAILQ_REMOVE(&o->idle, oc, entry);
		o->nidle--;
		origin_nidle--;
	}
	loop_timer_stop(&oc->timer);
	if (oc->io.fd != -1) {
		loop_io_del(&oc->io);
		if (oc->ssl != NULL) {
			/* Unsent bytes are not waited for: a close_notify at most. */
			SSL_set_quiet_shutdown(oc->ssl, 1);
			SSL_free(oc->ssl);
		}
		close(oc->io.fd);
		/* Events for it may still be in the batch being dispatched. */
		oc->io.fd = -1;
	} else if (oc->ssl != NULL)
		SSL_free(oc->ssl);
	oc->ssl = NULL;
	buf_free(&oc->in);
	origin_open--;
	oc->state = OC_CLOSED;
	oc->io.cb = NULL;
	loop_defer(free, oc);
	origin_release(o);
}

void
origin_abort(struct origin_xfer *x)
{
	if (!x->running)
		return;
	x->running = 0;
	if (x->oc != NULL) {
		x->oc->x = NULL;
		origin_close(x->oc);
		x->oc = NULL;
		return;
	}
	/* Waiting for its address. */
	if (x->be->origin != NULL)
		TAILQ_REMOVE(&x->be->origin->waiting, x, wait);
}

/* On a thread of its own: the lookup, and the answer through the pipe. */
static void *
origin_dns_thread(void *arg)
{
	struct origin_dns	*d = arg;
	struct addrinfo		 hints, *res = NULL, *ai;
	int			 e;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	if ((e = getaddrinfo(d->host, d->port, &hints, &res)) != 0)
		snprintf(d->error, sizeof d->error, "%s", gai_strerror(e));
	for (ai = res; ai != NULL && d->naddr < ORIGIN_ADDRS; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof d->addr[0])
			continue;
		memcpy(&d->addr[d->naddr], ai->ai_addr, ai->ai_addrlen);
		d->addrlen[d->naddr++] = ai->ai_addrlen;
	}
	if (res != NULL)
		freeaddrinfo(res);
	if (write(origin_dns_pipe[1], &d, sizeof d) != sizeof d) {
		/* The daemon is shutting down; the pool is gone with it. */
		free(d->host);
		free(d->port);
		free(d);
	}
	return NULL;
}

static void
origin_dns_start(struct origin *o)
{
	struct origin_dns	*d = xcalloc(1, sizeof *d);
	pthread_attr_t		 attr;
	pthread_t		 t;

	d->pool = o;
	d->host = xstrdup(o->host);
	d->port = xstrdup(o->port);
	o->refs++;
	o->resolving = 1;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, origin_dns_thread, d) != 0) {
		snprintf(d->error, sizeof d->error, "cannot start a thread");
		if (write(origin_dns_pipe[1], &d, sizeof d) != sizeof d)
			fatal("dns pipe: %s", strerror(errno));
	}
	pthread_attr_destroy(&attr);
}

static void
origin_dns_event(struct loop_io *io, uint32_t events)
{
	struct origin_dns	*d;

	while (read(origin_dns_pipe[0], &d, sizeof d) == sizeof d) {
		struct origin		*o = d->pool;
		struct origin_xfer	*x;

		o->resolving = 0;
		if (d->naddr > 0) {
			memcpy(o->addr, d->addr, sizeof o->addr);
			memcpy(o->addrlen, d->addrlen, sizeof o->addrlen);
			o->naddr = d->naddr;
			o->next_addr = 0;
			o->resolved_at = loop_now();
		} else
			log_warn("backend host %s: %s", o->host, d->error);
		while ((x = TAILQ_FIRST(&o->waiting)) != NULL) {
			TAILQ_REMOVE(&o->waiting, x, wait);
			if (o->naddr == 0) {
				x->running = 0;
				x->why = "its host name could not be resolved";
				x->on_done(x, ORIGIN_CONNECT);
			} else
				origin_connect(o, x);
		}
		free(d->host);
		free(d->port);
		free(d);
		origin_release(o);
	}
}
