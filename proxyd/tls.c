/*
 * tls.c: HTTPS with OpenSSL, non-blocking, on the event loop.
 *
 * TLS 1.2 and 1.3 only; for 1.2, ECDHE with AEAD ciphers only. ALPN
 * offers http/1.1, the one protocol spoken here. Renegotiation is off,
 * so after the handshake a read never needs to write and a write never
 * needs to read; during it, either may, and the connection says which
 * way it waits through its tp_want_in and tp_want_out bits.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "tls.h"
#include "xmalloc.h"

/* For TLS 1.2: forward secrecy and authenticated encryption only. */
#define TLS_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static SSL_CTX	*tls_ctx;	/* what new connections get */
static SSL_CTX	*tls_next;	/* prepared, not yet committed */

static ssize_t	tls_read(struct conn *, void *, size_t);
static ssize_t	tls_write(struct conn *, const void *, size_t);
static size_t	tls_pending(struct conn *);
static void	tls_close(struct conn *);

static const struct conn_transport tls_transport = {
	.name = "tls",
	.read = tls_read,
	.write = tls_write,
	.pending = tls_pending,
	.close = tls_close,
};

const char *
tls_error(const char *none)
{
	static char	msg[256];
	unsigned long	e = ERR_get_error();

	if (e == 0)
		snprintf(msg, sizeof msg, "%s", errno != 0 ? strerror(errno) :
		    none);
	else
		ERR_error_string_n(e, msg, sizeof msg);
	ERR_clear_error();
	return msg;
}

/* Choose http/1.1 from the client's ALPN list, or end the handshake. */
static int
tls_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	static const char	proto[] = "http/1.1";
	unsigned int		i = 0;

	while (i < inlen) {
		unsigned int	n = in[i++];

		if (n > inlen - i)
			break;
		if (n == sizeof proto - 1 && memcmp(in + i, proto, n) == 0) {
			*out = in + i;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += n;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int
tls_prepare(const struct config *cfg, char **err)
{
	SSL_CTX		*ctx;
	struct stat	 st;

	tls_discard();
	if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
		*err = xstrdup("tls_listen needs tls_cert and tls_key");
		return -1;
	}
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		*err = xasprintf("TLS: %s", tls_error("unknown error"));
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* HTTP frames its own messages: a missing close_notify is an EOF. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	/* conn.c may retry a write from a buffer that has moved. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn, NULL);
	if (SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS) != 1) {
		*err = xasprintf("TLS ciphers: %s", tls_error("unknown error"));
		goto fail;
	}
	/* The leaf first, then the intermediates, as web servers take it. */
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		*err = xasprintf("tls_cert %s: %s", cfg->tls_cert,
		    tls_error("unknown error"));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key,
	    SSL_FILETYPE_PEM) != 1) {
		*err = xasprintf("tls_key %s: %s", cfg->tls_key,
		    tls_error("unknown error"));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*err = xasprintf("tls_key %s does not match tls_cert %s",
		    cfg->tls_key, cfg->tls_cert);
		ERR_clear_error();
		goto fail;
	}
	if (stat(cfg->tls_key, &st) == 0 && (st.st_mode & S_IROTH))
		log_warn("tls_key %s is readable by every user", cfg->tls_key);
	tls_next = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return -1;
}

void
tls_commit(void)
{
	if (tls_next == NULL)
		return;
	/* Connections that use the old context hold their own reference. */
	SSL_CTX_free(tls_ctx);
	tls_ctx = tls_next;
	tls_next = NULL;
}

void
tls_discard(void)
{
	SSL_CTX_free(tls_next);
	tls_next = NULL;
}

void
tls_shutdown(void)
{
	tls_discard();
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
}

int
tls_accept(struct conn *c)
{
	SSL	*ssl;

	ERR_clear_error();
	if (tls_ctx == NULL || (ssl = SSL_new(tls_ctx)) == NULL ||
	    SSL_set_fd(ssl, c->io.fd) != 1) {
		log_warn("conn %llu: TLS: %s", (unsigned long long)c->id,
		    tls_error("unknown error"));
		return -1;
	}
	SSL_set_accept_state(ssl);
	c->tp = &tls_transport;
	c->tp_data = ssl;
	c->tls = 1;
	return 0;
}

/*
 * What an SSL_read or SSL_write that did not move bytes means for the
 * connection: wait for a direction, the end of the stream, or failure.
 */
static ssize_t
tls_result(struct conn *c, int n, int reading)
{
	SSL	*ssl = c->tp_data;
	int	 e = SSL_get_error(ssl, n);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		if (!reading)
			c->tp_want_in = 1;
		return CONN_IO_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		if (reading)
			c->tp_want_out = 1;
		return CONN_IO_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return CONN_IO_EOF;
	case SSL_ERROR_SYSCALL:
		/* The peer went away without close_notify, or a reset. */
		c->tls_failed = 1;
		if (ERR_peek_error() == 0 && (errno == 0 || errno == ECONNRESET ||
		    errno == EPIPE))
			return reading ? CONN_IO_EOF : CONN_IO_ERROR;
		break;
	default:
		c->tls_failed = 1;
		break;
	}
	/* Scanners fail handshakes all day: not worth a line each. */
	log_debug("conn %llu %s: TLS %s: %s", (unsigned long long)c->id,
	    c->addr, SSL_is_init_finished(ssl) ? (reading ? "read" : "write") :
	    "handshake", tls_error("unknown error"));
	return CONN_IO_ERROR;
}

static ssize_t
tls_read(struct conn *c, void *p, size_t len)
{
	int	n;

	c->tp_want_out = 0;
	ERR_clear_error();
	errno = 0;
	n = SSL_read(c->tp_data, p, len > INT_MAX ? INT_MAX : (int)len);
	if (n > 0)
		return n;
	return tls_result(c, n, 1);
}

static ssize_t
tls_write(struct conn *c, const void *p, size_t len)
{
	int	n;

	c->tp_want_in = 0;
	ERR_clear_error();
	errno = 0;
	n = SSL_write(c->tp_data, p, len > INT_MAX ? INT_MAX : (int)len);
	if (n > 0)
		return n;
	return tls_result(c, n, 0);
}

static size_t
tls_pending(struct conn *c)
{
	return (size_t)SSL_pending(c->tp_data);
}

static void
tls_close(struct conn *c)
{
	SSL	*ssl = c->tp_data;

	/* A close_notify if we can, without waiting for the peer's. */
	if (!c->tls_failed && SSL_is_init_finished(ssl)) {
		ERR_clear_error();
		SSL_shutdown(ssl);
	}
	ERR_clear_error();
	SSL_free(ssl);
	c->tp_data = NULL;
	close(c->io.fd);
}
