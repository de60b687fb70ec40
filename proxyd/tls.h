/*
 * tls.h: HTTPS on the tls_listen addresses, with OpenSSL.
 *
 * The context (certificate chain, key, protocol versions, ciphers,
 * ALPN) is made in two steps, so that a reload can check a new
 * certificate before anything depends on it: tls_prepare() builds it
 * from a config and keeps it aside, tls_commit() makes it the one new
 * connections get. Connections already open keep the context they
 * started with (OpenSSL counts its references), so a reload never
 * drops a stream.
 *
 * Each TLS connection is a conn_transport: the rest of conn.c reads and
 * writes plaintext and never sees a record.
 */
#ifndef OG_TLS_H
#define OG_TLS_H

struct config;
struct conn;

/* Build a context from cfg's tls_cert and tls_key; -1 with *err. */
int	tls_prepare(const struct config *, char **err);
/* The prepared context serves new connections from now on. */
void	tls_commit(void);
/* Forget a prepared context (after ogproxyd -t, or a failed reload). */
void	tls_discard(void);
/* Put a new connection under TLS; -1 if it cannot be (logged). */
int	tls_accept(struct conn *);
void	tls_shutdown(void);
/*
 * The first error on OpenSSL's queue as text, and the queue cleared;
 * with nothing queued, errno's text, or none when errno is 0.
 */
const char *tls_error(const char *none);

#endif
