/*
 * streamload.c - a one-thread epoll load client for streaming chat.
 *
 * The benchmark needs to hold hundreds of long-lived streaming responses
 * open at once and count what flows through them.  wrk cannot do that
 * (it measures request latency, not streams), so this small client opens
 * N connections at the same moment, sends one streaming POST /api/chat on
 * each, decodes the HTTP/1.1 framing (chunked, Content-Length or
 * close-delimited) and counts body chunks, NDJSON lines and bytes.  For a
 * body that is not chunked a "chunk" is whatever one read() returned, so
 * lines are the figure to compare across proxies.  It reports completed
 * and failed streams, wall time, lines per second and the median and 99th
 * percentile time to first byte; the last line of its output is one
 * machine-readable "STREAMLOAD key=value ..." record that bench/run.sh
 * parses.
 *
 * Everything runs in one thread over one epoll set with non-blocking
 * sockets, so the client costs little CPU and never becomes the limit on
 * a two-core machine where the proxy under test needs the other core.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/*
 * Response headers larger than this are treated as a failure; Ollama and
 * any sane proxy in front of it send a few hundred bytes.
 */
#define HEAD_MAX 16384

/* The literal that marks the last NDJSON object of an Ollama stream. */
#define DONE_MARK "\"done\":true"

enum conn_state {
	CONN_CONNECTING,
	CONN_SENDING,
	CONN_HEADERS,
	CONN_BODY,
	CONN_FINISHED
};

enum body_mode {
	BODY_CHUNKED,
	BODY_LENGTH,
	BODY_CLOSE
};

/* States of the chunked transfer-coding decoder. */
enum chunk_state {
	CHUNK_SIZE,
	CHUNK_EXT,
	CHUNK_SIZE_LF,
	CHUNK_DATA,
	CHUNK_DATA_CR,
	CHUNK_DATA_LF,
	CHUNK_TRAILER_START,
	CHUNK_TRAILER_LINE,
	CHUNK_END_LF,
	CHUNK_COMPLETE
};

/* Why a stream did not complete; each has its own counter in the report. */
enum fail_reason {
	FAIL_NONE,
	FAIL_CONNECT,
	FAIL_IO,
	FAIL_STATUS,
	FAIL_PROTOCOL,
	FAIL_TRUNCATED,
	FAIL_NODONE,
	FAIL_TIMEOUT,
	FAIL_COUNT
};

static const char *fail_names[FAIL_COUNT] = {
	"none", "connect", "io", "status", "protocol", "truncated", "nodone",
	"timeout"
};

struct conn {
	int			 fd;
	enum conn_state		 state;
	size_t			 sent;

	char			 head[HEAD_MAX];
	size_t			 head_len;
	int			 status;

	enum body_mode		 mode;
	enum chunk_state	 cstate;
	uint64_t		 remaining;	/* Of the chunk or the body. */
	int			 size_digits;

	uint64_t		 chunks;
	uint64_t		 lines;
	uint64_t		 bytes;
	int			 line_open;	/* Bytes since the last '\n'. */
	size_t			 done_match;	/* Prefix of DONE_MARK seen. */
	int			 saw_done;

	double			 t_start;
	double			 t_first;	/* Zero until a byte arrives. */
	double			 t_end;
	enum fail_reason	 fail;
};

struct load {
	const char		*host;
	const char		*port;
	const char		*auth;
	const char		*model;
	const char		*path;
	const char		*vhost;
	int			 nconns;
	double			 timeout;
	int			 quiet;
	int			 check_done;

	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	char			*request;
	size_t			 request_len;

	int			 epfd;
	struct conn		*conns;
	int			 active;

	uint64_t		 fails[FAIL_COUNT];
	int			 first_bad_status;
};

static double	 clock_now(void);
static void	 fatal(const char *, ...);
static void	 load_usage(void);
static void	 load_resolve(struct load *);
static void	 load_build_request(struct load *);
static void	 load_raise_nofile(int);
static void	 conn_open(struct load *, struct conn *);
static void	 conn_finish(struct load *, struct conn *, enum fail_reason);
static void	 conn_handle(struct load *, struct conn *, uint32_t);
static int	 conn_send(struct load *, struct conn *);
static int	 conn_read(struct load *, struct conn *);
static int	 conn_parse_head(struct load *, struct conn *);
static int	 conn_body(struct conn *, const char *, size_t);
static void	 conn_count_data(struct conn *, const char *, size_t);
static int	 compare_double(const void *, const void *);
static double	 percentile(double *, size_t, double);

/* Returns a monotonic timestamp in seconds. */
static double
clock_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("streamload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void
load_usage(void)
{
	fprintf(stderr,
	    "usage: streamload [-q] [-N] [-c conns] [-H host] -p port"
	    " [-a authorization]\n"
	    "                  [-m model] [-P path] [-s host-header]"
	    " [-T timeout-s]\n");
	exit(2);
}

static void
load_resolve(struct load *ld)
{
	struct addrinfo hints, *res;
	int error;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	error = getaddrinfo(ld->host, ld->port, &hints, &res);
	if (error != 0)
		fatal("%s:%s: %s", ld->host, ld->port, gai_strerror(error));
	memcpy(&ld->addr, res->ai_addr, res->ai_addrlen);
	ld->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
}

/*
 * Every connection sends the same bytes, so the request is formatted once.
 * "Connection: close" tells the proxy that this client will not reuse the
 * connection, which is what a chat client holding a stream open does.
 */
static void
load_build_request(struct load *ld)
{
	char body[512], auth[1024];
	int blen, rlen;

	blen = snprintf(body, sizeof body,
	    "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}],\"stream\":true}", ld->model);
	if (blen < 0 || (size_t)blen >= sizeof body)
		fatal("model name too long");
	auth[0] = '\0';
	if (ld->auth != NULL && *ld->auth != '\0') {
		rlen = snprintf(auth, sizeof auth, "Authorization: %s\r\n",
		    ld->auth);
		if (rlen < 0 || (size_t)rlen >= sizeof auth)
			fatal("authorization value too long");
	}
	rlen = snprintf(NULL, 0,
	    "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: streamload\r\n"
	    "Accept: application/x-ndjson\r\n"
	    "Content-Type: application/json\r\nContent-Length: %d\r\n"
	    "%sConnection: close\r\n\r\n%s",
	    ld->path, ld->vhost, blen, auth, body);
	if (rlen < 0)
		fatal("cannot format request");
	ld->request = malloc((size_t)rlen + 1);
	if (ld->request == NULL)
		fatal("out of memory");
	snprintf(ld->request, (size_t)rlen + 1,
	    "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: streamload\r\n"
	    "Accept: application/x-ndjson\r\n"
	    "Content-Type: application/json\r\nContent-Length: %d\r\n"
	    "%sConnection: close\r\n\r\n%s",
	    ld->path, ld->vhost, blen, auth, body);
	ld->request_len = (size_t)rlen;
}

/*
 * Each stream needs one descriptor, and the default soft limit of 1024 is
 * too low for a few thousand streams, so raise it towards the hard limit.
 */
static void
load_raise_nofile(int want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur >= (rlim_t)want)
		return;
	rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY ||
	    rl.rlim_max >= (rlim_t)want) ? (rlim_t)want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/*
 * Starts a non-blocking connect.  Interest in EPOLLOUT tells us when the
 * connection is established (or has failed) and the request can go out.
 */
static void
conn_open(struct load *ld, struct conn *c)
{
	struct epoll_event ev;
	int one = 1;

	c->t_start = clock_now();
	c->fd = socket(ld->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		conn_finish(ld, c, FAIL_CONNECT);
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, (struct sockaddr *)&ld->addr, ld->addrlen) == -1 &&
	    errno != EINPROGRESS) {
		conn_finish(ld, c, FAIL_CONNECT);
		return;
	}
	c->state = CONN_CONNECTING;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLOUT | EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(ld->epfd, EPOLL_CTL_ADD, c->fd, &ev) == -1)
		fatal("epoll_ctl: %s", strerror(errno));
	ld->active++;
}

/*
 * Closes a connection and records its outcome.  The caller keeps the count
 * of active connections, because a stream whose connect failed at once was
 * never part of the active set.
 */
static void
conn_finish(struct load *ld, struct conn *c, enum fail_reason why)
{
	if (c->state == CONN_FINISHED)
		return;
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	c->t_end = clock_now();
	c->fail = why;
	ld->fails[why]++;
	if (why == FAIL_STATUS && ld->first_bad_status == 0)
		ld->first_bad_status = c->status;
	c->state = CONN_FINISHED;
}

/* Writes as much of the request as the socket takes. */
static int
conn_send(struct load *ld, struct conn *c)
{
	struct epoll_event ev;
	ssize_t n;

	while (c->sent < ld->request_len) {
		n = write(c->fd, ld->request + c->sent,
		    ld->request_len - c->sent);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->sent += (size_t)n;
	}

	/* The request is out; from now on only readability matters. */
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(ld->epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		fatal("epoll_ctl: %s", strerror(errno));
	c->state = CONN_HEADERS;
	return 0;
}

/*
 * Parses the status line and the two framing headers once the blank line
 * ending the header block has arrived.  Returns the number of header bytes
 * consumed, 0 if the block is incomplete, or -1 on a malformed response.
 */
static int
conn_parse_head(struct load *ld, struct conn *c)
{
	char *end, *line, *next, *colon, *value;
	int have_length = 0;

	(void)ld;
	c->head[c->head_len] = '\0';
	end = strstr(c->head, "\r\n\r\n");
	if (end == NULL)
		return 0;
	*end = '\0';

	if (strncmp(c->head, "HTTP/1.", 7) != 0 || strlen(c->head) < 12)
		return -1;
	c->status = atoi(c->head + 9);
	c->mode = BODY_CLOSE;
	c->cstate = CHUNK_SIZE;

	line = strstr(c->head, "\r\n");
	while (line != NULL) {
		line += 2;
		next = strstr(line, "\r\n");
		if (next != NULL)
			*next = '\0';
		colon = strchr(line, ':');
		if (colon != NULL) {
			*colon = '\0';
			value = colon + 1;
			while (*value == ' ' || *value == '\t')
				value++;
			if (strcasecmp(line, "Transfer-Encoding") == 0 &&
			    strcasestr(value, "chunked") != NULL)
				c->mode = BODY_CHUNKED;
			else if (strcasecmp(line, "Content-Length") == 0) {
				c->remaining = strtoull(value, NULL, 10);
				have_length = 1;
			}
		}
		line = next;
	}
	/* Chunked framing wins over a Content-Length (RFC 9112, 6.3). */
	if (c->mode != BODY_CHUNKED && have_length)
		c->mode = BODY_LENGTH;
	return (int)(end - c->head) + 4;
}

/*
 * Counts NDJSON lines and bytes in a piece of body data and looks for the
 * "done":true marker.  The marker may be split across reads or chunks, so
 * the matcher keeps how much of it has been seen so far; the only repeated
 * character in the marker is the quote, which is enough to restart on.
 */
static void
conn_count_data(struct conn *c, const char *p, size_t len)
{
	static const char mark[] = DONE_MARK;
	size_t i;

	c->bytes += len;
	for (i = 0; i < len; i++) {
		if (p[i] == '\n') {
			c->lines++;
			c->line_open = 0;
		} else
			c->line_open = 1;
		if (p[i] == mark[c->done_match]) {
			if (++c->done_match == sizeof mark - 1) {
				c->saw_done = 1;
				c->done_match = 0;
			}
		} else
			c->done_match = (p[i] == '"') ? 1 : 0;
	}
}

/*
 * Feeds body bytes through the framing decoder.  Returns 1 when the body
 * is complete, 0 when more is needed and -1 on a framing error.
 */
static int
conn_body(struct conn *c, const char *p, size_t len)
{
	size_t i = 0, take;
	int digit;
	char ch;

	if (c->mode == BODY_CLOSE) {
		if (len > 0)
			c->chunks++;
		conn_count_data(c, p, len);
		return 0;
	}
	if (c->mode == BODY_LENGTH) {
		take = len < c->remaining ? len : (size_t)c->remaining;
		if (take > 0)
			c->chunks++;
		conn_count_data(c, p, take);
		c->remaining -= take;
		return c->remaining == 0 ? 1 : 0;
	}

	while (i < len) {
		ch = p[i];
		switch (c->cstate) {
		case CHUNK_SIZE:
			if (ch >= '0' && ch <= '9')
				digit = ch - '0';
			else if (ch >= 'a' && ch <= 'f')
				digit = ch - 'a' + 10;
			else if (ch >= 'A' && ch <= 'F')
				digit = ch - 'A' + 10;
			else
				digit = -1;
			if (digit >= 0) {
				if (++c->size_digits > 15)
					return -1;
				c->remaining = c->remaining * 16 +
				    (uint64_t)digit;
			} else if (c->size_digits == 0)
				return -1;
			else if (ch == ';' || ch == ' ' || ch == '\t')
				c->cstate = CHUNK_EXT;
			else if (ch == '\r')
				c->cstate = CHUNK_SIZE_LF;
			else if (ch == '\n')
				goto size_done;
			else
				return -1;
			i++;
			break;
		case CHUNK_EXT:
			if (ch == '\r')
				c->cstate = CHUNK_SIZE_LF;
			else if (ch == '\n')
				goto size_done;
			i++;
			break;
		case CHUNK_SIZE_LF:
			if (ch != '\n')
				return -1;
		size_done:
			i++;
			c->size_digits = 0;
			if (c->remaining == 0)
				c->cstate = CHUNK_TRAILER_START;
			else {
				c->chunks++;
				c->cstate = CHUNK_DATA;
			}
			break;
		case CHUNK_DATA:
			take = len - i;
			if (take > c->remaining)
				take = (size_t)c->remaining;
			conn_count_data(c, p + i, take);
			c->remaining -= take;
			i += take;
			if (c->remaining == 0)
				c->cstate = CHUNK_DATA_CR;
			break;
		case CHUNK_DATA_CR:
			if (ch == '\r')
				c->cstate = CHUNK_DATA_LF;
			else if (ch == '\n')
				c->cstate = CHUNK_SIZE;
			else
				return -1;
			i++;
			break;
		case CHUNK_DATA_LF:
			if (ch != '\n')
				return -1;
			c->cstate = CHUNK_SIZE;
			i++;
			break;
		case CHUNK_TRAILER_START:
			if (ch == '\r')
				c->cstate = CHUNK_END_LF;
			else if (ch == '\n') {
				c->cstate = CHUNK_COMPLETE;
				return 1;
			} else
				c->cstate = CHUNK_TRAILER_LINE;
			i++;
			break;
		case CHUNK_TRAILER_LINE:
			if (ch == '\n')
				c->cstate = CHUNK_TRAILER_START;
			i++;
			break;
		case CHUNK_END_LF:
			if (ch != '\n')
				return -1;
			c->cstate = CHUNK_COMPLETE;
			return 1;
		case CHUNK_COMPLETE:
			return 1;
		}
	}
	return 0;
}

/*
 * Reads everything the socket has.  Returns 1 when the stream has finished
 * (successfully or not; conn_finish has then been called), 0 otherwise.
 */
static int
conn_read(struct load *ld, struct conn *c)
{
	static char buf[65536];
	ssize_t n;
	size_t off, room, prev;
	int used, rv;

	for (;;) {
		n = read(c->fd, buf, sizeof buf);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			conn_finish(ld, c, c->state == CONN_BODY ?
			    FAIL_TRUNCATED : FAIL_IO);
			return 1;
		}
		if (n > 0 && c->t_first == 0)
			c->t_first = clock_now();
		if (n == 0) {
			/*
			 * End of file completes only a close-delimited body;
			 * anywhere else the stream was cut short.
			 */
			if (c->state == CONN_BODY && c->mode == BODY_CLOSE) {
				if (c->line_open)
					c->lines++;
				conn_finish(ld, c, (ld->check_done &&
				    !c->saw_done) ? FAIL_NODONE : FAIL_NONE);
			} else
				conn_finish(ld, c, c->state == CONN_BODY ?
				    FAIL_TRUNCATED : FAIL_IO);
			return 1;
		}

		off = 0;
		if (c->state == CONN_HEADERS) {
			prev = c->head_len;
			room = HEAD_MAX - 1 - c->head_len;
			if ((size_t)n < room)
				room = (size_t)n;
			memcpy(c->head + c->head_len, buf, room);
			c->head_len += room;
			used = conn_parse_head(ld, c);
			if (used == -1) {
				conn_finish(ld, c, FAIL_PROTOCOL);
				return 1;
			}
			if (used == 0) {
				if (c->head_len >= HEAD_MAX - 1) {
					conn_finish(ld, c, FAIL_PROTOCOL);
					return 1;
				}
				continue;
			}
			if (c->status != 200) {
				conn_finish(ld, c, FAIL_STATUS);
				return 1;
			}
			/* Bytes after the header block belong to the body. */
			off = (size_t)used - prev;
			c->state = CONN_BODY;
			if (c->mode == BODY_LENGTH && c->remaining == 0) {
				conn_finish(ld, c, ld->check_done ?
				    FAIL_NODONE : FAIL_NONE);
				return 1;
			}
		}

		rv = conn_body(c, buf + off, (size_t)n - off);
		if (rv == -1) {
			conn_finish(ld, c, FAIL_PROTOCOL);
			return 1;
		}
		if (rv == 1) {
			if (c->line_open)
				c->lines++;
			conn_finish(ld, c, (ld->check_done && !c->saw_done) ?
			    FAIL_NODONE : FAIL_NONE);
			return 1;
		}
	}
}

/* Dispatches one epoll event for a connection. */
static void
conn_handle(struct load *ld, struct conn *c, uint32_t events)
{
	int error = 0;
	socklen_t len = sizeof error;

	if (c->state == CONN_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error,
		    &len) == -1 || error != 0) {
			conn_finish(ld, c, FAIL_CONNECT);
			ld->active--;
			return;
		}
		c->state = CONN_SENDING;
	}
	if (c->state == CONN_SENDING && (events & (EPOLLOUT | EPOLLERR))) {
		if (conn_send(ld, c) == -1) {
			conn_finish(ld, c, FAIL_IO);
			ld->active--;
			return;
		}
	}
	if ((c->state == CONN_HEADERS || c->state == CONN_BODY) &&
	    (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		if (conn_read(ld, c))
			ld->active--;
	} else if (c->state == CONN_SENDING &&
	    (events & (EPOLLHUP | EPOLLERR))) {
		conn_finish(ld, c, FAIL_IO);
		ld->active--;
	}
}

static int
compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array; 0 for an empty one. */
static double
percentile(double *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (size_t)(p * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

int
main(int argc, char *argv[])
{
	struct load ld;
	struct epoll_event events[256];
	struct conn *c;
	double t0, t1, wall, deadline, *ttfb, *dur;
	uint64_t lines = 0, chunks = 0, bytes = 0, completed = 0, failed;
	size_t nttfb = 0, ndur = 0;
	int ch, i, n, timeout_ms;
	char *end;

	memset(&ld, 0, sizeof ld);
	ld.host = "127.0.0.1";
	ld.model = "llama3.2";
	ld.path = "/api/chat";
	ld.vhost = "localhost";
	ld.nconns = 500;
	ld.timeout = 120;
	ld.check_done = 1;

	while ((ch = getopt(argc, argv, "a:c:H:m:Np:P:qs:T:")) != -1) {
		switch (ch) {
		case 'a':
			ld.auth = optarg;
			break;
		case 'c':
			ld.nconns = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || ld.nconns < 1 ||
			    ld.nconns > 1000000)
				fatal("bad connection count: %s", optarg);
			break;
		case 'H':
			ld.host = optarg;
			break;
		case 'm':
			ld.model = optarg;
			break;
		case 'N':
			ld.check_done = 0;
			break;
		case 'p':
			ld.port = optarg;
			break;
		case 'P':
			ld.path = optarg;
			break;
		case 'q':
			ld.quiet = 1;
			break;
		case 's':
			ld.vhost = optarg;
			break;
		case 'T':
			ld.timeout = strtod(optarg, &end);
			if (*end != '\0' || ld.timeout <= 0)
				fatal("bad timeout: %s", optarg);
			break;
		default:
			load_usage();
		}
	}
	if (ld.port == NULL || optind != argc)
		load_usage();

	load_raise_nofile(ld.nconns + 64);
	load_resolve(&ld);
	load_build_request(&ld);
	ld.conns = calloc((size_t)ld.nconns, sizeof *ld.conns);
	ttfb = calloc((size_t)ld.nconns, sizeof *ttfb);
	dur = calloc((size_t)ld.nconns, sizeof *dur);
	if (ld.conns == NULL || ttfb == NULL || dur == NULL)
		fatal("out of memory");
	ld.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ld.epfd == -1)
		fatal("epoll_create1: %s", strerror(errno));

	/*
	 * All connections start at once: the point is to see how the proxy
	 * copes with a burst of streams, not to pace them politely.
	 */
	t0 = clock_now();
	for (i = 0; i < ld.nconns; i++) {
		ld.conns[i].fd = -1;
		conn_open(&ld, &ld.conns[i]);
	}

	deadline = t0 + ld.timeout;
	while (ld.active > 0) {
		timeout_ms = (int)((deadline - clock_now()) * 1000);
		if (timeout_ms <= 0)
			break;
		n = epoll_wait(ld.epfd, events, 256, timeout_ms);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fatal("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++) {
			c = events[i].data.ptr;
			if (c->state != CONN_FINISHED)
				conn_handle(&ld, c, events[i].events);
		}
	}
	for (i = 0; i < ld.nconns; i++) {
		if (ld.conns[i].state != CONN_FINISHED)
			conn_finish(&ld, &ld.conns[i], FAIL_TIMEOUT);
	}
	t1 = clock_now();

	/* Wall time ends when the last stream ended, not at the deadline. */
	wall = 0;
	for (i = 0; i < ld.nconns; i++) {
		c = &ld.conns[i];
		lines += c->lines;
		chunks += c->chunks;
		bytes += c->bytes;
		if (c->t_end - t0 > wall)
			wall = c->t_end - t0;
		if (c->t_first != 0)
			ttfb[nttfb++] = (c->t_first - c->t_start) * 1000;
		if (c->fail == FAIL_NONE) {
			completed++;
			dur[ndur++] = (c->t_end - c->t_start) * 1000;
		}
	}
	if (wall <= 0)
		wall = t1 - t0;
	failed = (uint64_t)ld.nconns - completed;
	qsort(ttfb, nttfb, sizeof *ttfb, compare_double);
	qsort(dur, ndur, sizeof *dur, compare_double);

	if (!ld.quiet) {
		printf("streams    %d to %s:%s%s\n", ld.nconns, ld.host,
		    ld.port, ld.path);
		printf("completed  %llu\n", (unsigned long long)completed);
		printf("failed     %llu", (unsigned long long)failed);
		for (i = 1; i < FAIL_COUNT; i++) {
			if (ld.fails[i] != 0)
				printf("  %s=%llu", fail_names[i],
				    (unsigned long long)ld.fails[i]);
		}
		if (ld.first_bad_status != 0)
			printf("  (first bad status %d)", ld.first_bad_status);
		printf("\n");
		printf("lines      %llu (%llu chunks, %llu bytes)\n",
		    (unsigned long long)lines, (unsigned long long)chunks,
		    (unsigned long long)bytes);
		printf("wall       %.3f s\n", wall);
		printf("lines/s    %.0f\n", (double)lines / wall);
		printf("ttfb       p50 %.2f ms  p99 %.2f ms\n",
		    percentile(ttfb, nttfb, 0.50),
		    percentile(ttfb, nttfb, 0.99));
		printf("duration   p50 %.1f ms  p99 %.1f ms\n",
		    percentile(dur, ndur, 0.50), percentile(dur, ndur, 0.99));
	}
	printf("STREAMLOAD streams=%d completed=%llu failed=%llu lines=%llu"
	    " chunks=%llu bytes=%llu wall_s=%.3f lines_per_s=%.0f"
	    " chunks_per_s=%.0f ttfb_p50_ms=%.3f ttfb_p99_ms=%.3f"
	    " dur_p50_ms=%.1f dur_p99_ms=%.1f",
	    ld.nconns, (unsigned long long)completed,
	    (unsigned long long)failed, (unsigned long long)lines,
	    (unsigned long long)chunks, (unsigned long long)bytes, wall,
	    (double)lines / wall, (double)chunks / wall,
	    percentile(ttfb, nttfb, 0.50), percentile(ttfb, nttfb, 0.99),
	    percentile(dur, ndur, 0.50), percentile(dur, ndur, 0.99));
	for (i = 1; i < FAIL_COUNT; i++)
		printf(" fail_%s=%llu", fail_names[i],
		    (unsigned long long)ld.fails[i]);
	printf(" first_bad_status=%d\n", ld.first_bad_status);

	free(ld.request);
	free(ld.conns);
	free(ttfb);
	free(dur);
	close(ld.epfd);
	return failed == 0 ? 0 : 1;
}
