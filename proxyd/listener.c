/*
 * listener.c: the sockets the gateway accepts clients on.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "xmalloc.h"

/* How long to stop accepting when out of file descriptors. */
#define LISTENER_BACKOFF_MS	100

struct listener {
	struct loop_io		 io;
	struct loop_timer	 backoff;
	char			*addr;
	int			 unix_path;	/* addr is a socket file */
	enum conn_kind		 kind;
	int			 tls;
	struct listener		*next;
};

static struct listener	*listeners;

static void	listener_accept(struct loop_io *, uint32_t);
static void	listener_free(void *);
static void	listener_resume(struct loop_timer *);
static void	listener_format(const struct sockaddr_storage *, char *, size_t,
		    char *, size_t);

/* Parse "1.2.3.4:80", "[::1]:80" or "*:80" into a socket address. */
static int
listener_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 host[64];
	const char		*colon;
	long			 port;

	memset(ss, 0, sizeof *ss);
	if (*s == '[') {
		const char	*close = strchr(s, ']');

		if (close == NULL || (size_t)(close - s - 1) >= sizeof host)
			return -1;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		colon = close + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL ||
		    (size_t)(colon - s) >= sizeof host)
			return -1;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
	}
	port = strtol(colon + 1, NULL, 10);
	if (strchr(host, ':') != NULL) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		*len = sizeof *sin6;
		return 0;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	if (strcmp(host, "*") == 0)
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	*len = sizeof *sin;
	return 0;
}

int
listener_is_loopback(const char *addr)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;

	if (listener_parse(addr, &ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
	return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
}

/* Watch a bound, listening socket for new clients. */
static struct listener *
listener_add(int fd, const char *addr, enum conn_kind kind, int tls)
{
	struct listener	*l = xcalloc(1, sizeof *l);

	l->addr = xstrdup(addr);
	l->kind = kind;
	l->tls = tls;
	loop_io_init(&l->io, fd, listener_accept, l);
	loop_timer_init(&l->backoff, listener_resume, l);
	loop_io_set(&l->io, EPOLLIN);
	l->next = listeners;
	listeners = l;
	return l;
}

static int
listener_open(const char *addr, enum conn_kind kind, int tls)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd, one = 1;

	if (listener_parse(addr, &ss, &len) != 0) {
		log_error("listen %s: not a numeric ADDR:PORT", addr);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_error("listen %s: socket: %s", addr, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, 1024) == -1) {
		log_error("listen %s: %s", addr, strerror(errno));
		close(fd);
		return -1;
	}
	/* Name the port actually bound, so that port 0 is usable in tests. */
	len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
		char	bound[80], ip[INET6_ADDRSTRLEN];

		listener_format(&ss, bound, sizeof bound, ip, sizeof ip);
		log_info("%s on %s%s", kind == CONN_METRICS ? "metrics" :
		    "listening", bound, tls ? " with TLS" : "");
	}
	listener_add(fd, addr, kind, tls);
	return 0;
}

int
listener_open_all(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nlisten; i++) {
		if (listener_open(cfg->listen[i], CONN_PUBLIC, 0) != 0)
			return -1;
	}
	for (size_t i = 0; i < cfg->ntls_listen; i++) {
		if (listener_open(cfg->tls_listen[i], CONN_PUBLIC, 1) != 0)
			return -1;
	}
	if (cfg->metrics_listen != NULL &&
	    listener_open(cfg->metrics_listen, CONN_METRICS, 0) != 0)
		return -1;
	return 0;
}

/*
 * The admin socket: mode 0660 and the admin group, so that access to
 * the API is a matter of group membership. A stale socket file is
 * removed; a live one (another ogproxyd answering) is an error.
 */
int
listener_open_admin(const char *path, const char *group)
{
	struct sockaddr_un	 sun;
	struct group		*gr = NULL;
	mode_t			 old;
	int			 fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		log_error("admin_socket %s: path too long", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if (group != NULL && (gr = getgrnam(group)) == NULL) {
		log_error("admin_group %s: no such group", group);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_error("admin_socket: socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0 ||
	    errno == EAGAIN) {
		log_error("admin_socket %s: another ogproxyd is running", path);
		close(fd);
		return -1;
	}
	close(fd);
	{
		struct stat	st;

		/* Replace a stale socket, never anything else. */
		if (lstat(path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				log_error("admin_socket %s: exists and is not a "
				    "socket", path);
				return -1;
			}
			unlink(path);
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	old = umask(0117);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    listen(fd, 64) == -1) {
		umask(old);
		log_error("admin_socket %s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	umask(old);
	if (chmod(path, 0660) == -1 ||
	    (gr != NULL && chown(path, (uid_t)-1, gr->gr_gid) == -1)) {
		log_error("admin_socket %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	listener_add(fd, path, CONN_ADMIN, 0)->unix_path = 1;
	log_info("admin API on %s", path);
	return 0;
}

static void
listener_free(void *arg)
{
	struct listener	*l = arg;

	free(l->addr);
	free(l);
}

void
listener_close_all(void)
{
	struct listener	*l;

	while ((l = listeners) != NULL) {
		listeners = l->next;
		loop_io_del(&l->io);
		loop_timer_stop(&l->backoff);
		close(l->io.fd);
		/* Its event may still be in the batch being dispatched. */
		l->io.fd = -1;
		if (l->unix_path)
			unlink(l->addr);
		loop_defer(listener_free, l);
	}
}

/* Do the open listeners of one kind match a list of addresses? */
static int
listener_same(int tls, char *const *addrs, size_t n)
{
	struct listener	*l;
	size_t		 open = 0;

	for (l = listeners; l != NULL; l = l->next) {
		int	found = 0;

		if (l->kind != CONN_PUBLIC || l->tls != tls)
			continue;
		open++;
		for (size_t i = 0; i < n; i++)
			found |= strcmp(addrs[i], l->addr) == 0;
		if (!found)
			return 0;
	}
	return open == n;
}

void
listener_check_reload(const struct config *cfg)
{
	struct listener	*l;
	const char	*metrics = NULL;

	for (l = listeners; l != NULL; l = l->next) {
		if (l->kind == CONN_METRICS)
			metrics = l->addr;
	}
	if ((metrics == NULL) != (cfg->metrics_listen == NULL) ||
	    (metrics != NULL && strcmp(metrics, cfg->metrics_listen) != 0))
		log_warn("reload: metrics_listen changed; it takes effect at "
		    "the next restart");
	if (!listener_same(0, cfg->listen, cfg->nlisten) ||
	    !listener_same(1, cfg->tls_listen, cfg->ntls_listen))
		log_warn("reload: listen addresses changed; they take effect "
		    "at the next restart");
}

static void
listener_resume(struct loop_timer *t)
{
	struct listener	*l = t->arg;

	loop_io_set(&l->io, EPOLLIN);
}

static void
listener_format(const struct sockaddr_storage *ss, char *addr, size_t alen,
    char *ip, size_t iplen)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6	*s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, (socklen_t)iplen);
		snprintf(addr, alen, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in	*s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, (socklen_t)iplen);
		snprintf(addr, alen, "%s:%u", ip, ntohs(s4->sin_port));
	}
}

static void
listener_accept(struct loop_io *io, uint32_t events)
{
	struct listener	*l = io->arg;

	/* Take a bounded batch so one busy listener cannot starve the loop. */
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage	ss;
		socklen_t		len = sizeof ss;
		char			addr[80], ip[INET6_ADDRSTRLEN];
		int			fd, one = 1;

		fd = accept4(io->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE) {
				log_warn("accept on %s: %s; pausing", l->addr,
				    strerror(errno));
				loop_io_set(&l->io, 0);
				loop_timer_arm(&l->backoff, LISTENER_BACKOFF_MS);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("accept on %s: %s", l->addr,
				    strerror(errno));
			return;
		}
		if (l->unix_path) {
			struct ucred	cred;
			socklen_t	clen = sizeof cred;

			/* The peer's uid goes into the audit log. */
			if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred,
			    &clen) == -1) {
				close(fd);
				continue;
			}
			snprintf(addr, sizeof addr, "uid %u", (unsigned)cred.uid);
			conn_accept(fd, addr, "local", CONN_ADMIN, 0, cred.uid);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		listener_format(&ss, addr, sizeof addr, ip, sizeof ip);
		conn_accept(fd, addr, ip, l->kind, l->tls, 0);
	}
}
