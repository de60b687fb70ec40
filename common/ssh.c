/*
 * ssh.c: the admin API over SSH. One libssh2 session per client runs
 * "ogctl dial-stdio" on the remote host, and the requests are the same
 * HTTP/1.1 the local socket gets, kept alive on that channel: ogtop
 * logs in once for its whole run. The daemon closing an idle channel
 * costs a new channel, not a new login; a lost connection costs a new
 * login on the next call.
 *
 * libssh2 is used in blocking mode with its session timeout: this is a
 * client doing one thing at a time, and a timeout bounds every wait.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <libssh2.h>

#include "buf.h"
#include "client.h"
#include "http.h"
#include "ssh.h"
#include "xmalloc.h"

/* Connecting and logging in take no longer than this. */
#define SSH_LOGIN_MS		10000L
/* Bounds on what the remote end may send us besides a body. */
#define SSH_HEAD_MAX		(64 * 1024)
#define SSH_STDERR_MAX		4096
#define SSH_KEYFILE_MAX		(64 * 1024)
#define SSH_CHUNK_MAX		((uint64_t)1 << 40)

struct client_ssh {
	struct ssh_target	 t;
	char			*where;		/* ssh://alias[:port] */
	char			*command;	/* run remotely */
	int			 fd;
	LIBSSH2_SESSION		*session;
	LIBSSH2_CHANNEL		*channel;
	int			 used;		/* the channel had a reply */
	int			 interactive;	/* may ask and tell */
	char			*keyfile;	/* the key that logged in */
	char			*passphrase;	/* ...and its passphrase */
	struct buf		 in;		/* read, not yet parsed */
};

/* A response head, parsed. */
struct ssh_head {
	long	 status;
	char	 ctype[128];
	int64_t	 length;	/* -1: none */
	int	 chunked;
	int	 close;
};

static double	ssh_now(void);
static int	ssh_tcp(struct client_ssh *, double deadline, char **err);
static int	ssh_hostkey(struct client_ssh *, char **err);
static int	ssh_auth(struct client_ssh *, double deadline, char **err);
static int	ssh_login(struct client_ssh *, char **err);
static int	ssh_open_channel(struct client_ssh *, long timeout_ms,
		    char **err);
static void	ssh_drop_channel(struct client_ssh *);
static void	ssh_drop_session(struct client_ssh *);
static char	*ssh_lost(struct client_ssh *, const char *what);
static char	*ssh_remote_error(struct client_ssh *);

static double
ssh_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Milliseconds to the deadline, at least 1: 0 means "no limit". */
static long
ssh_left(double deadline)
{
	double	left = (deadline - ssh_now()) * 1000.0;

	return left < 1.0 ? 1L : (long)left;
}

static const char *
ssh_errmsg(LIBSSH2_SESSION *s)
{
	char	*msg = NULL;

	libssh2_session_last_error(s, &msg, NULL, 0);
	return msg != NULL && *msg != '\0' ? msg : "unknown error";
}

/* A connect that gives up at the deadline, address by address. */
static int
ssh_tcp(struct client_ssh *c, double deadline, char **err)
{
	struct addrinfo	 hints, *res, *ai;
	struct pollfd	 pfd;
	char		 port[8];
	int		 fd = -1, rc, soerr = 0, saved = 0;
	socklen_t	 len;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof port, "%d", c->t.port);
	if ((rc = getaddrinfo(c->t.host, port, &hints, &res)) != 0) {
		*err = xasprintf("cannot reach ogproxyd over %s: %s%s%s",
		    c->where, strcmp(c->t.host, c->t.alias) != 0 ? c->t.host :
		    "", strcmp(c->t.host, c->t.alias) != 0 ? ": " : "",
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1) {
			saved = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			rc = poll(&pfd, 1, (int)ssh_left(deadline));
			len = sizeof soerr;
			if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR,
			    &soerr, &len) == 0 && soerr == 0)
				break;
			saved = rc == 0 ? ETIMEDOUT : soerr != 0 ? soerr :
			    errno;
		} else
			saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		*err = xasprintf("cannot reach ogproxyd over %s: %s%s%s",
		    c->where, saved == ETIMEDOUT ? "no answer within 10 s" :
		    strerror(saved), strcmp(c->t.host, c->t.alias) != 0 ?
		    " at " : "", strcmp(c->t.host, c->t.alias) != 0 ?
		    c->t.host : "");
		return -1;
	}
	/* libssh2 waits itself, with its own timeout. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	c->fd = fd;
	return 0;
}

static void
ssh_base64(const unsigned char *p, size_t len, char *out, size_t outlen)
{
	static const char	 abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t			 o = 0;
	unsigned int		 v;

	/* Unpadded, as OpenSSH writes fingerprints. */
	for (size_t i = 0; i < len && o + 5 < outlen; i += 3) {
		v = (unsigned)p[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = abc[(v >> 18) & 63];
		out[o++] = abc[(v >> 12) & 63];
		if (i + 1 < len)
			out[o++] = abc[(v >> 6) & 63];
		if (i + 2 < len)
			out[o++] = abc[v & 63];
	}
	out[o] = '\0';
}

static int
ssh_keytype(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		return LIBSSH2_KNOWNHOST_KEY_ED25519;
	}
	return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
}

/* The name known_hosts gives the host: "[host]:port" but for port 22. */
static char *
ssh_known_name(struct client_ssh *c)
{
	return c->t.port == 22 ? xstrdup(c->t.host) :
	    xasprintf("[%s]:%d", c->t.host, c->t.port);
}

/*
 * A key of a type against ~/.ssh/known_hosts, one line at a time so
 * that a changed key can be named by its line. A port other than 22 is
 * written "[host]:port" there, hashed or not, and only that form
 * counts, as in OpenSSH. Returns 1 on a match; else *changed is the
 * first line with another key of that type for the host (0 if none).
 */
static int
ssh_known_scan(struct client_ssh *c, const char *path, const char *name,
    const char *key, size_t keylen, int keytype, int *changed)
{
	LIBSSH2_KNOWNHOSTS	*kh;
	char			*line = NULL;
	size_t			 cap = 0;
	ssize_t			 n;
	int			 r, lineno = 0, ok = 0;
	FILE			*f;

	*changed = 0;
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (!ok && (n = getline(&line, &cap, f)) != -1) {
		lineno++;
		/* Markers (@revoked, @cert-authority) are not read. */
		if (n < 2 || line[0] == '#' || line[0] == '@')
			continue;
		if ((kh = libssh2_knownhost_init(c->session)) == NULL)
			break;
		if (libssh2_knownhost_readline(kh, line, (size_t)n,
		    LIBSSH2_KNOWNHOST_FILE_OPENSSH) == 0) {
			r = libssh2_knownhost_check(kh, name, key, keylen,
			    LIBSSH2_KNOWNHOST_TYPE_PLAIN |
			    LIBSSH2_KNOWNHOST_KEYENC_RAW | keytype, NULL);
			if (r == LIBSSH2_KNOWNHOST_CHECK_MATCH)
				ok = 1;
			else if (*changed == 0 &&
			    r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
				*changed = lineno;
		}
		libssh2_knownhost_free(kh);
	}
	fclose(f);
	free(line);
	return ok;
}

/*
 * Before the handshake: ask first for the types of host key that
 * known_hosts holds for the host, as OpenSSH does. Otherwise libssh2's
 * own order (ECDSA first) would meet a host known by its Ed25519 key
 * as a stranger. A type is known if a made-up key of it is "changed".
 */
static void
ssh_hostkey_order(struct client_ssh *c)
{
	static const struct {
		const char	*method;
		int		 keytype;
	} types[] = {
		{ "ssh-ed25519", LIBSSH2_KNOWNHOST_KEY_ED25519 },
		{ "ecdsa-sha2-nistp256", LIBSSH2_KNOWNHOST_KEY_ECDSA_256 },
		{ "ecdsa-sha2-nistp384", LIBSSH2_KNOWNHOST_KEY_ECDSA_384 },
		{ "ecdsa-sha2-nistp521", LIBSSH2_KNOWNHOST_KEY_ECDSA_521 },
		{ "ssh-rsa", LIBSSH2_KNOWNHOST_KEY_SSHRSA },
	};
	struct buf	 known, rest;
	char		*path, *name;
	int		 line;
	size_t		 i;

	path = xasprintf("%s/.ssh/known_hosts", ssh_home());
	name = ssh_known_name(c);
	buf_init(&known);
	buf_init(&rest);
	for (i = 0; i < sizeof types / sizeof types[0]; i++) {
		ssh_known_scan(c, path, name, "?", 1, types[i].keytype, &line);
		buf_printf(line != 0 ? &known : &rest, ",%s", types[i].method);
	}
	if (buf_used(&known) > 0) {
		buf_add(&known, buf_ptr(&rest), buf_used(&rest));
		/* Only a name libssh2 was built without can make this fail. */
		(void)libssh2_session_method_pref(c->session,
		    LIBSSH2_METHOD_HOSTKEY, buf_cstr(&known) + 1);
	}
	buf_free(&known);
	buf_free(&rest);
	free(name);
	free(path);
}

/* The host key the server showed against ~/.ssh/known_hosts. */
static int
ssh_hostkey(struct client_ssh *c, char **err)
{
	const char	*key, *hash;
	char		*path, *name, fp[64];
	size_t		 keylen;
	int		 type, changed, ok;

	key = libssh2_session_hostkey(c->session, &keylen, &type);
	if (key == NULL) {
		*err = xasprintf("%s: no host key", c->where);
		return -1;
	}
	hash = libssh2_hostkey_hash(c->session, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (hash != NULL)
		ssh_base64((const unsigned char *)hash, 32, fp, sizeof fp);
	else
		snprintf(fp, sizeof fp, "?");
	name = ssh_known_name(c);
	path = xasprintf("%s/.ssh/known_hosts", ssh_home());
	ok = ssh_known_scan(c, path, name, key, keylen, ssh_keytype(type),
	    &changed);
	if (!ok && changed != 0)
		*err = xasprintf("WARNING: %s: THE HOST KEY OF %s HAS "
		    "CHANGED: %s:%d holds another key; someone may be "
		    "listening in, or the host was reinstalled; refusing to "
		    "connect (the key offered is SHA256:%s; if the change is "
		    "expected, remove that line)", c->where, name, path,
		    changed, fp);
	else if (!ok)
		*err = xasprintf("%s: the host key of %s is not known "
		    "(SHA256:%s, not in %s); after checking it, add it with "
		    "'ssh-keyscan -p %d %s >> ~/.ssh/known_hosts' or log in "
		    "once with 'ssh -p %d %s'", c->where, name, fp, path,
		    c->t.port, c->t.host, c->t.port, c->t.host);
	free(name);
	free(path);
	return ok ? 0 : -1;
}

/*
 * Whether a private key file is encrypted: PEM says so in its head; an
 * OpenSSH key names its cipher ("none" if not) after its magic.
 */
static int
ssh_key_encrypted(const char *path)
{
	static const char	 magic[] = "openssh-key-v1";
	char			 text[SSH_KEYFILE_MAX], *p;
	unsigned char		 bin[128];
	size_t			 len, nb = 0;
	unsigned int		 v = 0, bits = 0;
	uint32_t		 clen;
	FILE			*f;

	if ((f = fopen(path, "re")) == NULL)
		return 0;
	len = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[len] = '\0';
	if (strstr(text, "ENCRYPTED") != NULL)
		return 1;
	if ((p = strstr(text, "-----BEGIN OPENSSH PRIVATE KEY-----")) == NULL)
		return 0;
	p += strlen("-----BEGIN OPENSSH PRIVATE KEY-----");
	for (; *p != '\0' && *p != '-' && *p != '=' && nb < sizeof bin; p++) {
		const char	*abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz0123456789+/";
		const char	*d = strchr(abc, *p);

		if (d == NULL)
			continue;	/* line breaks */
		v = (v << 6) | (unsigned)(d - abc);
		if ((bits += 6) >= 8) {
			bits -= 8;
			bin[nb++] = (unsigned char)(v >> bits);
		}
	}
	if (nb < sizeof magic + 4 || memcmp(bin, magic, sizeof magic) != 0)
		return 0;
	clen = (uint32_t)bin[15] << 24 | (uint32_t)bin[16] << 16 |
	    (uint32_t)bin[17] << 8 | bin[18];
	return !(clen == 4 && nb >= 23 && memcmp(bin + 19, "none", 4) == 0);
}

/* Ask on the terminal, never on standard input: NULL if there is none. */
static char *
ssh_ask(const char *prompt)
{
	struct termios	 old, quiet;
	char		 line[1024];
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd;

	if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) == -1)
		return NULL;
	if (tcgetattr(fd, &old) == -1) {
		close(fd);
		return NULL;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	(void)write(fd, prompt, strlen(prompt));
	tcsetattr(fd, TCSAFLUSH, &quiet);
	while (len < sizeof line - 1 && (n = read(fd, line + len, 1)) == 1 &&
	    line[len] != '\n')
		len++;
	line[len] = '\0';
	tcsetattr(fd, TCSAFLUSH, &old);
	(void)write(fd, "\n", 1);
	close(fd);
	{
		char	*p = xstrdup(line);

		explicit_bzero(line, sizeof line);
		return p;
	}
}

static int
ssh_auth_agent(struct client_ssh *c, struct buf *tried)
{
	LIBSSH2_AGENT			*agent;
	struct libssh2_agent_publickey	*id = NULL;
	int				 ok = 0;

	if (getenv("SSH_AUTH_SOCK") == NULL ||
	    (agent = libssh2_agent_init(c->session)) == NULL)
		return 0;
	if (libssh2_agent_connect(agent) == 0 &&
	    libssh2_agent_list_identities(agent) == 0) {
		buf_add_str(tried, ", the agent's keys");
		while (!ok && libssh2_agent_get_identity(agent, &id, id) == 0)
			ok = libssh2_agent_userauth(agent, c->t.user, id) == 0;
		libssh2_agent_disconnect(agent);
	}
	libssh2_agent_free(agent);
	return ok;
}

static int
ssh_auth_file(struct client_ssh *c, const char *path, struct buf *tried)
{
	char	*pass = NULL, *prompt;
	int	 ok;

	if (access(path, R_OK) != 0)
		return 0;
	if (ssh_key_encrypted(path)) {
		if (c->passphrase != NULL && c->keyfile != NULL &&
		    strcmp(c->keyfile, path) == 0)
			pass = xstrdup(c->passphrase);
		else if (c->interactive) {
			prompt = xasprintf("Enter passphrase for key '%s': ",
			    path);
			pass = ssh_ask(prompt);
			free(prompt);
			if (pass == NULL)
				fprintf(stderr, "note: %s is encrypted and "
				    "there is no terminal to ask its "
				    "passphrase on: skipped\n", path);
		}
		if (pass == NULL)
			return 0;
	}
	buf_printf(tried, ", %s", path);
	ok = libssh2_userauth_publickey_fromfile_ex(c->session, c->t.user,
	    (unsigned int)strlen(c->t.user), NULL, path,
	    pass != NULL ? pass : "") == 0;
	if (ok) {
		/* For logging in again when the connection is lost. */
		free(c->keyfile);
		c->keyfile = xstrdup(path);
		xfree_secret(c->passphrase);
		c->passphrase = pass;
	} else
		xfree_secret(pass);
	return ok;
}

/* OpenSSH's order: the agent, then the configured or usual key files. */
static int
ssh_auth(struct client_ssh *c, double deadline, char **err)
{
	static const char *const defaults[] = { "~/.ssh/id_ed25519",
	    "~/.ssh/id_ecdsa", "~/.ssh/id_rsa" };
	struct buf	 tried;
	char		*path;
	int		 ok, i;

	libssh2_session_set_timeout(c->session, ssh_left(deadline));
	/* Asking for the methods tries "none", which may be enough. */
	if (libssh2_userauth_list(c->session, c->t.user,
	    (unsigned int)strlen(c->t.user)) == NULL) {
		if (libssh2_userauth_authenticated(c->session))
			return 0;
		if (libssh2_session_last_errno(c->session) !=
		    LIBSSH2_ERROR_EAGAIN) {
			*err = xasprintf("cannot reach ogproxyd over %s: %s",
			    c->where, libssh2_session_last_errno(c->session) ==
			    LIBSSH2_ERROR_TIMEOUT ? "no answer within 10 s" :
			    ssh_errmsg(c->session));
			return -1;
		}
	}
	buf_init(&tried);
	ok = ssh_auth_agent(c, &tried);
	for (i = 0; !ok && i < c->t.nidentity; i++)
		ok = ssh_auth_file(c, c->t.identity[i], &tried);
	for (i = 0; !ok && c->t.nidentity == 0 && i < 3; i++) {
		path = ssh_expand(defaults[i]);
		ok = ssh_auth_file(c, path, &tried);
		free(path);
	}
	if (!ok)
		*err = xasprintf("cannot reach ogproxyd over %s: "
		    "permission denied for %s (tried: %s)", c->where,
		    c->t.user, buf_used(&tried) > 0 ? buf_cstr(&tried) + 2 :
		    "no agent, no key file");
	buf_free(&tried);
	return ok ? 0 : -1;
}

/* Connect, check the host and log in, all within SSH_LOGIN_MS. */
static int
ssh_login(struct client_ssh *c, char **err)
{
	double	deadline = ssh_now() + SSH_LOGIN_MS / 1000.0;
	int	rc, timeout;

	if (ssh_tcp(c, deadline, err) != 0)
		return -1;
	if ((c->session = libssh2_session_init()) == NULL) {
		*err = xasprintf("%s: cannot start libssh2", c->where);
		ssh_drop_session(c);
		return -1;
	}
	libssh2_session_set_blocking(c->session, 1);
	libssh2_session_set_timeout(c->session, ssh_left(deadline));
	ssh_hostkey_order(c);
	if ((rc = libssh2_session_handshake(c->session, c->fd)) != 0) {
		timeout = rc == LIBSSH2_ERROR_TIMEOUT ||
		    rc == LIBSSH2_ERROR_SOCKET_TIMEOUT ||
		    ssh_now() >= deadline - 0.1;
		*err = xasprintf("cannot reach ogproxyd over %s: %s",
		    c->where, timeout ? "no SSH greeting within 10 s" :
		    ssh_errmsg(c->session));
		ssh_drop_session(c);
		return -1;
	}
	if (ssh_hostkey(c, err) != 0 || ssh_auth(c, deadline, err) != 0) {
		ssh_drop_session(c);
		return -1;
	}
	return 0;
}

static int
ssh_open_channel(struct client_ssh *c, long timeout_ms, char **err)
{
	int	code;

	/* A call's own limit if shorter: ogtop waits 2 s, not 10. */
	libssh2_session_set_timeout(c->session, timeout_ms > 0 &&
	    timeout_ms < SSH_LOGIN_MS ? timeout_ms : SSH_LOGIN_MS);
	if ((c->channel = libssh2_channel_open_session(c->session)) != NULL &&
	    libssh2_channel_exec(c->channel, c->command) == 0) {
		c->used = 0;
		buf_reset(&c->in);
		return 0;
	}
	/*
	 * A session that cannot open a channel in time is not trusted
	 * with the next call either (a network gone quiet looks like
	 * this): the next call logs in again.
	 */
	code = libssh2_session_last_errno(c->session);
	if (code == LIBSSH2_ERROR_TIMEOUT)
		*err = xasprintf("cannot reach ogproxyd over %s: no answer "
		    "in time", c->where);
	else
		*err = xasprintf("cannot reach ogproxyd over %s: cannot run "
		    "%s: %s", c->where, c->command, ssh_errmsg(c->session));
	ssh_drop_session(c);
	return -1;
}

static void
ssh_drop_channel(struct client_ssh *c)
{
	if (c->channel != NULL) {
		libssh2_session_set_timeout(c->session, 1000);
		libssh2_channel_close(c->channel);
		libssh2_channel_free(c->channel);
		c->channel = NULL;
	}
	buf_reset(&c->in);
}

static void
ssh_drop_session(struct client_ssh *c)
{
	if (c->session != NULL) {
		libssh2_session_set_timeout(c->session, 1000);
		libssh2_session_disconnect(c->session, "done");
		/*
		 * Nothing more is said after that. A peer that is gone or
		 * stopped must not keep libssh2 waiting to close the
		 * channel as it frees the session: a wait that times out
		 * frees nothing.
		 */
		if (c->fd != -1)
			shutdown(c->fd, SHUT_RDWR);
		c->channel = NULL;	/* freed with the session */
		libssh2_session_free(c->session);
		c->session = NULL;
	}
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	buf_reset(&c->in);
}

/*
 * Why a call failed on the connection, before it is dropped: a timeout
 * leaves the session usable, anything else does not.
 */
static char *
ssh_lost(struct client_ssh *c, const char *what)
{
	int	 code = libssh2_session_last_errno(c->session);
	char	*msg;

	if (code == LIBSSH2_ERROR_TIMEOUT) {
		ssh_drop_channel(c);
		return xasprintf("cannot reach ogproxyd over %s: no answer in "
		    "time", c->where);
	}
	msg = xasprintf("cannot reach ogproxyd over %s: %s: %s",
	    c->where, what, ssh_errmsg(c->session));
	ssh_drop_session(c);
	return msg;
}

/*
 * The channel ended before an answer: dial-stdio said why on its
 * standard error (one line, "ogctl: ..."), which is passed on as it is
 * but for the program's name.
 */
static char *
ssh_remote_error(struct client_ssh *c)
{
	char	 text[SSH_STDERR_MAX], *line, *msg;
	size_t	 len = 0;
	ssize_t	 n;
	int	 status;

	libssh2_session_set_timeout(c->session, 2000);
	while (len < sizeof text - 1 && (n = libssh2_channel_read_stderr(
	    c->channel, text + len, sizeof text - 1 - len)) > 0)
		len += (size_t)n;
	text[len] = '\0';
	libssh2_channel_close(c->channel);
	libssh2_channel_wait_closed(c->channel);
	status = libssh2_channel_get_exit_status(c->channel);
	libssh2_channel_free(c->channel);
	c->channel = NULL;
	buf_reset(&c->in);
	line = text;
	line[strcspn(line, "\r\n")] = '\0';
	if (strncmp(line, "ogctl: ", 7) == 0)
		line += 7;
	if (*line == '\0')
		msg = xasprintf("cannot reach ogproxyd over %s: %s ended "
		    "without an answer (exit %d)", c->where, c->command,
		    status);
	else if (status == 127 || status == 126)
		msg = xasprintf("cannot reach ogproxyd over %s: %s (exit "
		    "%d; --remote-ogctl or OGATE_REMOTE_OGCTL name the remote "
		    "ogctl)", c->where, line, status);
	else
		msg = xasprintf("%s: %s", c->t.alias, line);
	return msg;
}

static int
ssh_write_all(struct client_ssh *c, const char *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = libssh2_channel_write(c->channel, p, len)) < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* More bytes into c->in: >0, 0 at the end of the channel, -1. */
static ssize_t
ssh_fill(struct client_ssh *c)
{
	char	chunk[16384];
	ssize_t	n;

	n = libssh2_channel_read(c->channel, chunk, sizeof chunk);
	if (n > 0)
		buf_add(&c->in, chunk, (size_t)n);
	return n;
}

/* Whether the header name from p to colon is name. */
static int
ssh_is(const char *p, const char *colon, const char *name)
{
	size_t	len = strlen(name);

	return (size_t)(colon - p) == len && strncasecmp(p, name, len) == 0;
}

static int
ssh_parse_head(const char *p, size_t len, struct ssh_head *h)
{
	const char	*end = p + len, *eol, *colon, *v;
	size_t		 vlen;

	memset(h, 0, sizeof *h);
	h->length = -1;
	if (len < 12 || strncmp(p, "HTTP/1.", 7) != 0)
		return -1;
	h->status = strtol(p + 9, NULL, 10);
	if (h->status < 100 || h->status > 999)
		return -1;
	if (p[7] == '0')
		h->close = 1;
	if ((eol = memchr(p, '\n', len)) == NULL)
		return -1;
	for (p = eol + 1; p < end; p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		if ((colon = memchr(p, ':', (size_t)(eol - p))) == NULL)
			continue;
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		vlen = (size_t)(eol - v);
		while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
			vlen--;
		if (ssh_is(p, colon, "Content-Length"))
			h->length = strtoll(v, NULL, 10);
		else if (ssh_is(p, colon, "Transfer-Encoding"))
			h->chunked = vlen >= 7 &&
			    strncasecmp(v + vlen - 7, "chunked", 7) == 0;
		else if (ssh_is(p, colon, "Connection"))
			h->close = vlen == 5 && strncasecmp(v, "close", 5) == 0;
		else if (ssh_is(p, colon, "Content-Type"))
			snprintf(h->ctype, sizeof h->ctype, "%.*s", (int)vlen,
			    v);
	}
	return h->length < -1 ? -1 : 0;
}

/*
 * The body, as its head frames it, handed to write as it comes.
 * Returns 0, -1 on the channel (err unset), -2 if write stopped or the
 * framing is broken (err set).
 */
static int
ssh_body(struct client_ssh *c, struct ssh_head *h, int head_only,
    int (*write)(const char *, const char *, size_t, void *), void *arg,
    char **err)
{
	struct http_chunked	 ck;
	struct buf		 out;
	const char		*ct = h->ctype[0] != '\0' ? h->ctype : NULL;
	int64_t			 left = h->length;
	ssize_t			 used, n;
	size_t			 take;
	int			 done = 0, rc = 0;

	if (head_only || h->status == 204 || h->status == 304 ||
	    h->status < 200)
		return 0;
	if (h->chunked) {
		http_chunked_init(&ck);
		buf_init(&out);
		while (!done) {
			if (buf_used(&c->in) == 0 && (n = ssh_fill(c)) <= 0) {
				rc = -1;
				break;
			}
			used = http_chunked_feed(&ck, buf_ptr(&c->in),
			    buf_used(&c->in), &out, SSH_CHUNK_MAX, &done);
			if (used < 0) {
				*err = xasprintf("%s: a broken chunked "
				    "answer", c->where);
				rc = -2;
				break;
			}
			buf_consume(&c->in, (size_t)used);
			if (buf_used(&out) > 0 && write(ct, buf_ptr(&out),
			    buf_used(&out), arg) != 0) {
				rc = -2;
				break;
			}
			buf_reset(&out);
		}
		buf_free(&out);
		if (rc == -2 && *err == NULL)
			*err = xasprintf("%s: the answer was cut short",
			    c->where);
		return rc;
	}
	/* Content-Length, or until the end when there is none. */
	for (;;) {
		take = buf_used(&c->in);
		if (left >= 0 && (int64_t)take > left)
			take = (size_t)left;
		if (take > 0 && write(ct, buf_ptr(&c->in), take, arg) != 0) {
			*err = xasprintf("%s: the answer was cut short",
			    c->where);
			return -2;
		}
		buf_consume(&c->in, take);
		if (left >= 0 && (left -= (int64_t)take) == 0)
			return 0;
		if ((n = ssh_fill(c)) == 0 && left < 0) {
			h->close = 1;
			return 0;
		}
		if (n <= 0)
			return -1;
	}
}

/* The end of the response head in c->in, if it is all there. */
static const char *
ssh_head_end(struct client_ssh *c)
{
	if (buf_used(&c->in) < 4)
		return NULL;
	return memmem(buf_ptr(&c->in), buf_used(&c->in), "\r\n\r\n", 4);
}

/*
 * One exchange on the channel. A channel that answered before and is
 * found closed (the daemon ends idle connections) is replaced once.
 */
static int
ssh_exchange(struct client *cl, const char *method, const char *path,
    const char *body, size_t len, long timeout_ms, long *status,
    int (*write)(const char *, const char *, size_t, void *), void *arg,
    char **err)
{
	struct client_ssh	*c = cl->data;
	struct ssh_head		 h;
	struct buf		 req;
	const char		*end;
	ssize_t			 n;
	int			 tries, rc;

	*err = NULL;
	for (tries = 0; tries < 2; tries++) {
		if (c->session == NULL && ssh_login(c, err) != 0)
			return -1;
		/* Closed while idle: the daemon ended the connection. */
		if (c->channel != NULL && c->used &&
		    libssh2_channel_eof(c->channel))
			ssh_drop_channel(c);
		if (c->channel == NULL &&
		    ssh_open_channel(c, timeout_ms, err) != 0)
			return -1;
		libssh2_session_set_timeout(c->session, timeout_ms);
		buf_init(&req);
		buf_printf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\n",
		    method, path);
		if (body != NULL)
			buf_printf(&req, "Content-Type: application/json\r\n"
			    "Content-Length: %zu\r\n", len);
		buf_add_str(&req, "\r\n");
		if (body != NULL)
			buf_add(&req, body, len);
		rc = ssh_write_all(c, buf_ptr(&req), buf_used(&req));
		explicit_bzero(req.data, buf_used(&req));
		buf_free(&req);
		if (rc != 0 && (libssh2_session_last_errno(c->session) ==
		    LIBSSH2_ERROR_CHANNEL_CLOSED ||
		    libssh2_channel_eof(c->channel))) {
			/*
			 * The remote end was gone before the request: the
			 * daemon ended an idle connection, or dial-stdio
			 * could not reach it and said why.
			 */
			if (c->used) {
				ssh_drop_channel(c);
				continue;
			}
			*err = ssh_remote_error(c);
			return -1;
		}
		if (rc != 0) {
			*err = ssh_lost(c, "sending");
			return -1;
		}
		/* The head: read until its blank line. */
		while ((end = ssh_head_end(c)) == NULL) {
			if (buf_used(&c->in) > SSH_HEAD_MAX) {
				*err = xasprintf("%s: the answer's head "
				    "is too long", c->where);
				ssh_drop_channel(c);
				return -1;
			}
			if ((n = ssh_fill(c)) < 0) {
				*err = ssh_lost(c, "waiting for the answer");
				return -1;
			}
			if (n == 0)
				break;
		}
		if (end != NULL)
			break;
		if (c->used && buf_used(&c->in) == 0) {
			ssh_drop_channel(c);
			continue;
		}
		*err = ssh_remote_error(c);
		return -1;
	}
	if (end == NULL) {
		*err = xasprintf("%s: the remote end keeps closing",
		    c->where);
		return -1;
	}
	if (ssh_parse_head(buf_ptr(&c->in), (size_t)(end + 4 -
	    buf_ptr(&c->in)), &h) != 0) {
		*err = xasprintf("%s: not an HTTP answer", c->where);
		ssh_drop_channel(c);
		return -1;
	}
	buf_consume(&c->in, (size_t)(end + 4 - buf_ptr(&c->in)));
	rc = ssh_body(c, &h, strcmp(method, "HEAD") == 0, write, arg, err);
	if (rc == -1) {
		*err = ssh_lost(c, "reading the answer");
		return -1;
	}
	if (rc != 0 || h.close)
		ssh_drop_channel(c);
	else
		c->used = 1;
	if (rc != 0)
		return -1;
	*status = h.status;
	return 0;
}

static int
ssh_collect(const char *ctype, const char *p, size_t len, void *arg)
{
	(void)ctype;
	buf_add(arg, p, len);
	return 0;
}

static int
client_ssh_request(struct client *cl, const char *method, const char *path,
    const char *body, size_t len, long *status, char **resp, size_t *resplen,
    char **err)
{
	struct buf	b;

	buf_init(&b);
	if (ssh_exchange(cl, method, path, body, len, cl->timeout_ms, status,
	    ssh_collect, &b, err) != 0) {
		buf_free(&b);
		return -1;
	}
	*resplen = buf_used(&b);
	buf_cstr(&b);
	*resp = b.data;
	return 0;
}

static int
client_ssh_stream(struct client *cl, const char *method, const char *path,
    const char *body, size_t len, long *status,
    int (*write)(const char *, const char *, size_t, void *), void *arg,
    char **err)
{
	return ssh_exchange(cl, method, path, body, len, 0, status, write, arg,
	    err);
}

static void
client_ssh_close(struct client *cl)
{
	struct client_ssh	*c = cl->data;

	ssh_drop_session(c);
	ssh_target_free(&c->t);
	free(c->where);
	free(c->command);
	free(c->keyfile);
	xfree_secret(c->passphrase);
	buf_free(&c->in);
	free(c);
	libssh2_exit();
}

static const struct client_transport client_ssh = {
	.name = "ssh",
	.request = client_ssh_request,
	.stream = client_ssh_stream,
	.close = client_ssh_close,
};

/* A word for the remote shell, quoted unless it needs none. */
static char *
ssh_quote(const char *s)
{
	struct buf	b;

	if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789/._-+") == strlen(s) && *s != '\0')
		return xstrdup(s);
	buf_init(&b);
	buf_add_str(&b, "'");
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			buf_add_str(&b, "'\\''");
		else
			buf_add(&b, s, 1);
	}
	buf_add_str(&b, "'");
	buf_cstr(&b);
	return b.data;
}

int
client_open_ssh(const char *url, const char *remote_ogctl,
    struct client **out, char **err)
{
	struct client		*cl;
	struct client_ssh	*c;
	char			*q;

	*out = NULL;
	c = xcalloc(1, sizeof *c);
	if (ssh_target_parse(url, &c->t, err) != 0) {
		free(c);
		return -2;
	}
	if (remote_ogctl == NULL || *remote_ogctl == '\0')
		remote_ogctl = getenv("OGATE_REMOTE_OGCTL");
	if (remote_ogctl == NULL || *remote_ogctl == '\0')
		remote_ogctl = "ogctl";
	c->where = c->t.port == 22 ? xasprintf("ssh://%s", c->t.alias) :
	    xasprintf("ssh://%s:%d", c->t.alias, c->t.port);
	q = ssh_quote(remote_ogctl);
	c->command = xasprintf("%s dial-stdio", q);
	free(q);
	c->fd = -1;
	buf_init(&c->in);
	/* A connection lost under a write must be an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	libssh2_init(0);
	cl = xcalloc(1, sizeof *cl);
	cl->tp = &client_ssh;
	cl->data = c;
	cl->where = xstrdup(c->where);
	cl->timeout_ms = CLIENT_DEFAULT_TIMEOUT_MS;
	/* Log in now: what is wrong with the host is said before anything. */
	c->interactive = 1;
	if (ssh_login(c, err) != 0) {
		client_close(cl);
		return -1;
	}
	c->interactive = 0;
	*out = cl;
	return 0;
}
