/*
 * fleetload.c - the load of bench/fleet.sh: one batch user and a few
 * interactive users sharing a fleet of Ollama backends.
 *
 * The batch user keeps B long streaming chats in flight on the first
 * model: as soon as one ends the next starts.  Each interactive user
 * sends a short streaming chat, to a model drawn by popularity, then
 * thinks for a random while, and again.  Every user sends its own
 * token.  The generation is shaped with the fake backend's X-Fake-*
 * headers (tokens, delay between tokens, time to first token), which
 * nginx and ogproxyd both pass along.
 *
 * What matters is what the users notice: the time an interactive user
 * waits for the first token, how many batch generations get done, and
 * every request that fails (a status other than 200, a connection
 * refused or cut, an {"error":...} line in the stream, a stream that
 * ends without "done":true).  A request still waiting when the run is
 * over cannot be left out of the percentiles, since the slowest are the
 * ones that matter: an interactive request gets a grace period after
 * the end to see its first token, and one that still has not is counted
 * as unfinished, with the time it waited as its (lower bound) time to
 * first token.  Batch streams cut at the end are neither done nor
 * errors; the tokens they received before the end count.
 *
 * Each user is one thread with blocking sockets and poll(): there are
 * a few dozen connections at most, so simplicity beats an event loop.
 * The random draws come from a fixed seed per user, so that every run
 * asks for the same models with the same lengths in the same order.
 *
 * The last line of the output is "FLEETLOAD key=value ..."; with -o
 * every request is also written to a CSV file.
 */

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_MODELS	8
#define MAX_USERS	64
#define MAX_BATCH	256
#define HEAD_MAX	16384
#define LINE_MAX_LEN	65536
#define REQ_MAX		4096
/* A failed batch request is retried after this, not in a tight loop. */
#define RETRY_MS	500

enum outcome {
	OUT_OK,		/* "done":true arrived */
	OUT_CUT,	/* batch: still streaming at the end (not an error) */
	OUT_UNFINISHED,	/* interactive: no end within the grace period */
	OUT_CONNECT,	/* could not connect */
	OUT_STATUS,	/* answered with a status other than 200 */
	OUT_BROKEN,	/* closed or reset before "done":true */
	OUT_ERRLINE,	/* an {"error":...} line inside the stream */
	OUT_PROTOCOL,	/* not HTTP/1.1 as we know it */
	OUT_COUNT
};

static const char *outcome_names[OUT_COUNT] = {
	"ok", "cut", "unfinished", "connect", "status", "broken", "errline",
	"protocol"
};

/* One request as the CSV and the summary see it. */
struct rec {
	char		 kind;		/* 'b' batch, 'i' interactive */
	int		 user;
	int		 model;
	double		 start_ms;	/* since the start of the run */
	double		 ttft_ms;	/* -1: no token */
	double		 end_ms;
	int		 status;
	long		 tokens;	/* content lines before the end */
	long		 tokens_in_run;	/* of those, before the run's end */
	enum outcome	 outcome;
};

struct user {
	pthread_t	 thread;
	char		 kind;
	int		 id;		/* 0 for batch streams, 1.. users */
	int		 lane;		/* which of the batch streams */
	const char	*token;
	uint64_t	 rng;
};

/* The settings, read-only once the threads run. */
static struct {
	const char	*host;
	const char	*port;
	struct sockaddr_storage addr;
	socklen_t	 addrlen;
	double		 duration_ms;
	double		 grace_ms;
	unsigned long	 seed;
	const char	*csv;
	const char	*models[MAX_MODELS];
	int		 weights[MAX_MODELS];
	int		 nmodels;
	int		 nbatch;
	int		 nusers;
	const char	*batch_token;
	const char	*user_tokens[MAX_USERS];
	int		 nuser_tokens;
	long		 batch_tokens;
	long		 tok_min, tok_max;
	long		 delay_min, delay_max;
	long		 ttft;
	long		 think_min, think_max;
} cfg = {
	.host = "127.0.0.1",
	.duration_ms = 60000,
	.grace_ms = 15000,
	.seed = 1,
	.nbatch = 12,
	.nusers = 6,
	.batch_tokens = 400,
	.tok_min = 20, .tok_max = 40,
	.delay_min = 10, .delay_max = 20,
	.ttft = 50,
	.think_min = 1000, .think_max = 2000,
};

struct stream;

static void	 fatal(const char *, ...);
static double	 now_ms(void);
static double	 run_ms(void);
static void	 sleep_ms(double);
static uint64_t	 rng_next(uint64_t *);
static long	 rng_range(uint64_t *, long, long);
static int	 rng_model(uint64_t *);
static void	 rec_add(const struct rec *);
static void	 stream_line(struct stream *, const char *, size_t);
static void	 stream_body_bytes(struct stream *, const char *, size_t);
static int	 stream_chunked(struct stream *, const char *, size_t);
static int	 stream_head(struct stream *, size_t);
static int	 stream_feed(struct stream *, const char *, size_t);
static int	 is_error(enum outcome);
static int	 connect_to(void);
static int	 send_all(int, const char *, size_t);
static double	 give_up_at(char);
static enum outcome request_run(struct user *, int, long, long);
static void	*user_main(void *);
static int	 cmp_double(const void *, const void *);
static double	 percentile(const double *, size_t, double);
static void	 write_csv(const char *);
static void	 summary(void);
static void	 usage(void);
static void	 parse_range(const char *, long *, long *);
static void	 parse_models(char *);
static void	 parse_tokens(char *);
static void	 resolve(void);

static double		 t0;	/* monotonic ms at the start of the run */
static pthread_mutex_t	 recs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec	*recs;
static size_t		 nrecs, caprecs;

static void
fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("fleetload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Milliseconds since the start of the run. */
static double
run_ms(void)
{
	return now_ms() - t0;
}

static void
sleep_ms(double ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000) * 1e6);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* xorshift64*: small, and the same sequence on every machine. */
static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* A whole number in [lo, hi]. */
static long
rng_range(uint64_t *s, long lo, long hi)
{
	if (hi <= lo)
		return lo;
	return lo + (long)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

static int
rng_model(uint64_t *s)
{
	int i, total = 0, r;

	for (i = 0; i < cfg.nmodels; i++)
		total += cfg.weights[i];
	r = (int)(rng_next(s) % (uint64_t)total);
	for (i = 0; i < cfg.nmodels; i++) {
		if (r < cfg.weights[i])
			return i;
		r -= cfg.weights[i];
	}
	return cfg.nmodels - 1;
}

static void
rec_add(const struct rec *r)
{
	pthread_mutex_lock(&recs_lock);
	if (nrecs == caprecs) {
		caprecs = caprecs ? caprecs * 2 : 1024;
		if ((recs = realloc(recs, caprecs * sizeof(*recs))) == NULL)
			fatal("out of memory");
	}
	recs[nrecs++] = *r;
	pthread_mutex_unlock(&recs_lock);
}

/* ---------------------------------------------------------------------
 * One streaming request over one connection.  The response is read
 * into a small state machine: head, then a body that is chunked, has a
 * length, or runs to the close; the body is cut into NDJSON lines.
 */

struct stream {
	int		 fd;
	char		 head[HEAD_MAX];
	size_t		 head_len;
	int		 in_body;
	int		 chunked;
	int		 has_length;
	uint64_t	 remaining;	/* of the chunk, or of the body */
	int		 cstate;	/* 0 size, 1 data, 2 CRLF after data */
	char		 size_line[64];
	size_t		 size_len;
	int		 body_end;	/* the framing says it is over */
	char		 line[LINE_MAX_LEN];
	size_t		 line_len;
	int		 line_long;	/* dropped a line's tail */
	struct rec	*r;
	int		 done;		/* "done":true seen */
	int		 errline;
};

/* One complete NDJSON line of the body. */
static void
stream_line(struct stream *s, const char *p, size_t n)
{
	double t = run_ms();

	if (n == 0)
		return;
	if (s->r->status != 200)
		return;
	if (memmem(p, n, "\"error\"", 7) != NULL) {
		s->errline = 1;
		return;
	}
	if (s->r->ttft_ms < 0)
		s->r->ttft_ms = t - s->r->start_ms;
	if (memmem(p, n, "\"done\":true", 11) != NULL) {
		s->done = 1;
		return;
	}
	s->r->tokens++;
	if (t <= cfg.duration_ms)
		s->r->tokens_in_run++;
}

static void
stream_body_bytes(struct stream *s, const char *p, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (s->line_len + (i - start) <= sizeof(s->line)) {
			memcpy(s->line + s->line_len, p + start, i - start);
			s->line_len += i - start;
		}
		stream_line(s, s->line, s->line_len);
		s->line_len = 0;
		start = i + 1;
	}
	if (start < n && s->line_len + (n - start) <= sizeof(s->line)) {
		memcpy(s->line + s->line_len, p + start, n - start);
		s->line_len += n - start;
	}
}

/* Undo the chunked coding; returns -1 on a framing error. */
static int
stream_chunked(struct stream *s, const char *p, size_t n)
{
	size_t take;
	char *end;

	while (n > 0 && !s->body_end) {
		switch (s->cstate) {
		case 0:
			if (*p == '\n') {
				s->size_line[s->size_len] = '\0';
				s->remaining = strtoull(s->size_line, &end, 16);
				if (end == s->size_line)
					return -1;
				s->size_len = 0;
				if (s->remaining == 0)
					s->body_end = 1;	/* trailers ignored */
				else
					s->cstate = 1;
			} else if (s->size_len < sizeof(s->size_line) - 1)
				s->size_line[s->size_len++] = *p;
			else
				return -1;
			p++, n--;
			break;
		case 1:
			take = n < s->remaining ? n : (size_t)s->remaining;
			stream_body_bytes(s, p, take);
			p += take, n -= take;
			if ((s->remaining -= take) == 0)
				s->cstate = 2;
			break;
		default:
			if (*p == '\n')
				s->cstate = 0;
			p++, n--;
			break;
		}
	}
	return 0;
}

/* Parse the head once it is complete; returns -1 when it is not HTTP. */
static int
stream_head(struct stream *s, size_t head_end)
{
	char *line, *save = NULL, *v;

	s->head[head_end] = '\0';
	if (strncmp(s->head, "HTTP/1.", 7) != 0 || strlen(s->head) < 12)
		return -1;
	s->r->status = atoi(s->head + 9);
	line = strtok_r(s->head, "\r\n", &save);
	while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
		if ((v = strchr(line, ':')) == NULL)
			continue;
		*v++ = '\0';
		while (*v == ' ' || *v == '\t')
			v++;
		if (strcasecmp(line, "Transfer-Encoding") == 0 &&
		    strcasestr(v, "chunked") != NULL)
			s->chunked = 1;
		else if (strcasecmp(line, "Content-Length") == 0) {
			s->has_length = 1;
			s->remaining = strtoull(v, NULL, 10);
		}
	}
	s->in_body = 1;
	if (!s->chunked && s->has_length && s->remaining == 0)
		s->body_end = 1;
	return 0;
}

/* Feed bytes read from the socket; returns -1 on a protocol error. */
static int
stream_feed(struct stream *s, const char *p, size_t n)
{
	size_t room, i, take;
	char *e;

	if (!s->in_body) {
		room = sizeof(s->head) - 1 - s->head_len;
		take = n < room ? n : room;
		memcpy(s->head + s->head_len, p, take);
		s->head_len += take;
		s->head[s->head_len] = '\0';
		if ((e = strstr(s->head, "\r\n\r\n")) == NULL)
			return s->head_len == sizeof(s->head) - 1 ? -1 : 0;
		i = (size_t)(e - s->head) + 4;
		/* What came after the head in this read is body. */
		p += take - (s->head_len - i);
		n = n - take + (s->head_len - i);
		if (stream_head(s, i - 4 + 2) == -1)
			return -1;
	}
	if (s->chunked)
		return stream_chunked(s, p, n);
	if (s->has_length) {
		take = n < s->remaining ? n : (size_t)s->remaining;
		stream_body_bytes(s, p, take);
		if ((s->remaining -= take) == 0)
			s->body_end = 1;
		return 0;
	}
	stream_body_bytes(s, p, n);
	return 0;
}

static int
is_error(enum outcome o)
{
	return o != OUT_OK && o != OUT_CUT && o != OUT_UNFINISHED;
}

static int
connect_to(void)
{
	int fd, one = 1;

	if ((fd = socket(cfg.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC,
	    0)) == -1)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&cfg.addr, cfg.addrlen) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = send(fd, p, n, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w, n -= (size_t)w;
	}
	return 0;
}

/*
 * When to give up on a request: a batch stream at the end of the run,
 * an interactive one at the end of the grace period.
 */
static double
give_up_at(char kind)
{
	return kind == 'b' ? cfg.duration_ms : cfg.duration_ms + cfg.grace_ms;
}

/* Run one request to its end, record it, and say how it ended. */
static enum outcome
request_run(struct user *u, int model, long tokens, long delay)
{
	struct stream s;
	char body[512], req[REQ_MAX], buf[16384];
	struct pollfd pfd;
	struct rec r;
	double limit, left;
	ssize_t n;
	int bn, rn, rc;

	memset(&r, 0, sizeof(r));
	r.kind = u->kind;
	r.user = u->kind == 'b' ? u->lane : u->id;
	r.model = model;
	r.ttft_ms = -1;
	r.start_ms = run_ms();
	limit = give_up_at(u->kind);

	bn = snprintf(body, sizeof(body), "{\"model\":\"%s\",\"messages\":"
	    "[{\"role\":\"user\",\"content\":\"%s %d\"}],\"stream\":true}",
	    cfg.models[model], u->kind == 'b' ? "summarise document" :
	    "quick question", u->lane);
	rn = snprintf(req, sizeof(req),
	    "POST /api/chat HTTP/1.1\r\nHost: %s:%s\r\n"
	    "Content-Type: application/json\r\n%s%s%s"
	    "X-Fake-Tokens: %ld\r\nX-Fake-Delay: %ld\r\nX-Fake-Ttft: %ld\r\n"
	    "Content-Length: %d\r\n\r\n%s",
	    cfg.host, cfg.port,
	    u->token ? "Authorization: Bearer " : "", u->token ? u->token : "",
	    u->token ? "\r\n" : "", tokens, delay, cfg.ttft, bn, body);
	if (bn >= (int)sizeof(body) || rn >= (int)sizeof(req))
		fatal("request too long");

	memset(&s, 0, sizeof(s));
	s.r = &r;
	if ((s.fd = connect_to()) == -1) {
		r.outcome = OUT_CONNECT;
		goto out;
	}
	if (send_all(s.fd, req, (size_t)rn) == -1) {
		r.outcome = OUT_BROKEN;
		goto out;
	}
	for (;;) {
		if (s.done || s.errline || s.body_end)
			break;
		left = limit - run_ms();
		if (left <= 0) {
			r.outcome = u->kind == 'b' ? OUT_CUT : OUT_UNFINISHED;
			goto out;
		}
		pfd.fd = s.fd;
		pfd.events = POLLIN;
		rc = poll(&pfd, 1, (int)left + 1);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc <= 0)
			continue;
		n = recv(s.fd, buf, sizeof(buf), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (stream_feed(&s, buf, (size_t)n) == -1) {
			r.outcome = OUT_PROTOCOL;
			goto out;
		}
	}
	if (!s.in_body)
		r.outcome = OUT_BROKEN;
	else if (r.status != 200)
		r.outcome = OUT_STATUS;
	else if (s.errline)
		r.outcome = OUT_ERRLINE;
	else if (s.done)
		r.outcome = OUT_OK;
	else
		r.outcome = OUT_BROKEN;
out:
	/* An unfinished wait counts with the time it has waited so far. */
	if (r.outcome == OUT_UNFINISHED && r.ttft_ms < 0)
		r.ttft_ms = run_ms() - r.start_ms;
	if (s.fd > 0)
		close(s.fd);
	r.end_ms = run_ms();
	rec_add(&r);
	return r.outcome;
}

static void *
user_main(void *arg)
{
	struct user *u = arg;
	long tokens, delay;
	enum outcome o;
	int model;

	if (u->kind == 'b')
		sleep_ms(u->lane * 100.0 - run_ms());
	else
		sleep_ms((double)rng_range(&u->rng, 0, cfg.think_max) -
		    run_ms());
	while (run_ms() < cfg.duration_ms) {
		if (u->kind == 'b') {
			model = 0;
			tokens = cfg.batch_tokens;
		} else {
			model = rng_model(&u->rng);
			tokens = rng_range(&u->rng, cfg.tok_min, cfg.tok_max);
		}
		delay = rng_range(&u->rng, cfg.delay_min, cfg.delay_max);
		o = request_run(u, model, tokens, delay);
		if (u->kind == 'i')
			sleep_ms((double)rng_range(&u->rng, cfg.think_min,
			    cfg.think_max));
		else if (is_error(o))
			/* A batch client that failed waits before again. */
			sleep_ms(RETRY_MS);
	}
	return NULL;
}

/* ---------------------------------------------------------------------
 * The summary.
 */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least q of them at or below. */
static double
percentile(const double *v, size_t n, double q)
{
	size_t k;

	if (n == 0)
		return 0;
	k = (size_t)(q * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

static void
write_csv(const char *path)
{
	FILE *f;
	size_t i;
	const struct rec *r;

	if ((f = fopen(path, "w")) == NULL)
		fatal("%s: %s", path, strerror(errno));
	fprintf(f, "kind,user,model,start_ms,ttft_ms,end_ms,status,tokens,"
	    "outcome\n");
	for (i = 0; i < nrecs; i++) {
		r = &recs[i];
		fprintf(f, "%c,%d,%s,%.1f,%.1f,%.1f,%d,%ld,%s\n", r->kind,
		    r->user, cfg.models[r->model], r->start_ms, r->ttft_ms,
		    r->end_ms, r->status, r->tokens, outcome_names[r->outcome]);
	}
	if (fclose(f) != 0)
		fatal("%s: %s", path, strerror(errno));
}

static void
summary(void)
{
	double *ttft = calloc(nrecs + 1, sizeof(double));
	long b_done = 0, b_tokens = 0, i_req = 0, i_done = 0, i_unf = 0;
	long errs[OUT_COUNT] = { 0 }, i_err = 0, b_err = 0, nerr = 0;
	size_t i, nt = 0;
	const struct rec *r;
	double secs = cfg.duration_ms / 1000;

	if (ttft == NULL)
		fatal("out of memory");
	for (i = 0; i < nrecs; i++) {
		r = &recs[i];
		if (is_error(r->outcome)) {
			errs[r->outcome]++;
			nerr++;
			if (r->kind == 'i')
				i_err++;
			else
				b_err++;
		}
		if (r->kind == 'b') {
			b_tokens += r->tokens_in_run;
			if (r->outcome == OUT_OK && r->end_ms <= cfg.duration_ms)
				b_done++;
			continue;
		}
		i_req++;
		if (r->outcome == OUT_OK)
			i_done++;
		if (r->outcome == OUT_UNFINISHED)
			i_unf++;
		if (r->ttft_ms >= 0 && !is_error(r->outcome))
			ttft[nt++] = r->ttft_ms;
	}
	qsort(ttft, nt, sizeof(double), cmp_double);
	printf("FLEETLOAD duration_s=%.0f i_requests=%ld i_done=%ld"
	    " i_unfinished=%ld i_errors=%ld ttft_n=%zu ttft_p50_ms=%.0f"
	    " ttft_p95_ms=%.0f ttft_max_ms=%.0f b_done=%ld b_per_min=%.1f"
	    " b_tokens=%ld b_tokens_per_s=%.1f b_errors=%ld errors=%ld",
	    secs, i_req, i_done, i_unf, i_err, nt, percentile(ttft, nt, 0.5),
	    percentile(ttft, nt, 0.95), nt ? ttft[nt - 1] : 0, b_done,
	    (double)b_done * 60 / secs, b_tokens, (double)b_tokens / secs,
	    b_err, nerr);
	for (i = OUT_CONNECT; i < OUT_COUNT; i++)
		printf(" err_%s=%ld", outcome_names[i], errs[i]);
	printf("\n");
	free(ttft);
}

/* ---------------------------------------------------------------------
 * Options.
 */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: fleetload [-H host] -p port [-d seconds] [-g grace-s]"
	    " [-s seed] [-o csv]\n"
	    "                 -m MODEL=WEIGHT,... [--batch N] [--users N]\n"
	    "                 [--batch-token T] [--user-tokens T1,T2,...]\n"
	    "                 [--batch-tokens N] [--tokens MIN-MAX]"
	    " [--delay MIN-MAX]\n"
	    "                 [--ttft MS] [--think MIN-MAX]\n");
	exit(2);
}

static void
parse_range(const char *s, long *lo, long *hi)
{
	char *end;

	*lo = strtol(s, &end, 10);
	if (*end == '-')
		*hi = strtol(end + 1, &end, 10);
	else
		*hi = *lo;
	if (*end != '\0' || *lo < 0 || *hi < *lo)
		usage();
}

static void
parse_models(char *s)
{
	char *p, *save = NULL, *eq;

	for (p = strtok_r(s, ",", &save); p != NULL;
	    p = strtok_r(NULL, ",", &save)) {
		if (cfg.nmodels == MAX_MODELS)
			fatal("at most %d models", MAX_MODELS);
		cfg.weights[cfg.nmodels] = 1;
		if ((eq = strchr(p, '=')) != NULL) {
			*eq = '\0';
			cfg.weights[cfg.nmodels] = atoi(eq + 1);
			if (cfg.weights[cfg.nmodels] < 0)
				usage();
		}
		cfg.models[cfg.nmodels++] = p;
	}
}

static void
parse_tokens(char *s)
{
	char *p, *save = NULL;

	for (p = strtok_r(s, ",", &save); p != NULL;
	    p = strtok_r(NULL, ",", &save)) {
		if (cfg.nuser_tokens == MAX_USERS)
			fatal("at most %d user tokens", MAX_USERS);
		cfg.user_tokens[cfg.nuser_tokens++] = p;
	}
}

static void
resolve(void)
{
	struct addrinfo hints, *res;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(cfg.host, cfg.port, &hints, &res)) != 0)
		fatal("%s:%s: %s", cfg.host, cfg.port, gai_strerror(rc));
	memcpy(&cfg.addr, res->ai_addr, res->ai_addrlen);
	cfg.addrlen = res->ai_addrlen;
	freeaddrinfo(res);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "batch", required_argument, NULL, 'B' },
		{ "users", required_argument, NULL, 'U' },
		{ "batch-token", required_argument, NULL, 'b' },
		{ "user-tokens", required_argument, NULL, 'u' },
		{ "batch-tokens", required_argument, NULL, 'N' },
		{ "tokens", required_argument, NULL, 'n' },
		{ "delay", required_argument, NULL, 'D' },
		{ "ttft", required_argument, NULL, 'T' },
		{ "think", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	static struct user users[MAX_BATCH + MAX_USERS];
	int ch, i, n = 0, total = 0;

	while ((ch = getopt_long(argc, argv, "H:p:d:g:s:o:m:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'H':
			cfg.host = optarg;
			break;
		case 'p':
			cfg.port = optarg;
			break;
		case 'd':
			cfg.duration_ms = atof(optarg) * 1000;
			break;
		case 'g':
			cfg.grace_ms = atof(optarg) * 1000;
			break;
		case 's':
			cfg.seed = strtoul(optarg, NULL, 10);
			break;
		case 'o':
			cfg.csv = optarg;
			break;
		case 'm':
			parse_models(optarg);
			break;
		case 'B':
			cfg.nbatch = atoi(optarg);
			break;
		case 'U':
			cfg.nusers = atoi(optarg);
			break;
		case 'b':
			cfg.batch_token = optarg;
			break;
		case 'u':
			parse_tokens(optarg);
			break;
		case 'N':
			cfg.batch_tokens = atol(optarg);
			break;
		case 'n':
			parse_range(optarg, &cfg.tok_min, &cfg.tok_max);
			break;
		case 'D':
			parse_range(optarg, &cfg.delay_min, &cfg.delay_max);
			break;
		case 'T':
			cfg.ttft = atol(optarg);
			break;
		case 't':
			parse_range(optarg, &cfg.think_min, &cfg.think_max);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || cfg.port == NULL || cfg.nmodels == 0 ||
	    cfg.duration_ms <= 0 || cfg.nbatch < 0 || cfg.nbatch > MAX_BATCH ||
	    cfg.nusers < 0 || cfg.nusers > MAX_USERS)
		usage();
	for (i = 0; i < cfg.nmodels; i++)
		total += cfg.weights[i];
	if (total <= 0)
		fatal("the model weights add up to nothing");
	resolve();
	signal(SIGPIPE, SIG_IGN);

	t0 = now_ms();
	for (i = 0; i < cfg.nbatch; i++, n++) {
		users[n].kind = 'b';
		users[n].lane = i;
		users[n].token = cfg.batch_token;
	}
	for (i = 0; i < cfg.nusers; i++, n++) {
		users[n].kind = 'i';
		users[n].id = i + 1;
		users[n].lane = i + 1;
		users[n].token = cfg.nuser_tokens ?
		    cfg.user_tokens[i % cfg.nuser_tokens] : NULL;
	}
	for (i = 0; i < n; i++) {
		/* Never zero: xorshift would stay at zero. */
		users[i].rng = (uint64_t)cfg.seed * 1000003 + (uint64_t)i * 7919 +
		    (users[i].kind == 'b' ? 17 : 29);
		if (pthread_create(&users[i].thread, NULL, user_main,
		    &users[i]) != 0)
			fatal("pthread_create failed");
	}
	for (i = 0; i < n; i++)
		pthread_join(users[i].thread, NULL);
	if (cfg.csv != NULL)
		write_csv(cfg.csv);
	summary();
	return 0;
}
