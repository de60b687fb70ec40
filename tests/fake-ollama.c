/*
 * fake-ollama.c: a fake Ollama server for the integration tests and the
 * benchmark. It speaks enough of Ollama's HTTP API (see ollama-api.md)
 * to stand in for the real thing behind the gateway, records every
 * request it receives so that tests can see what reached it, and can be
 * told to misbehave in the ways a real backend does.
 *
 * It is one single-threaded epoll loop with non-blocking sockets and a
 * min-heap of per-connection timers, so that it can hold many slow
 * streams and serve many small requests without threads. A stream's
 * next token is produced only when its connection's output buffer has
 * room, so a stalled reader costs a bounded amount of memory.
 *
 * By default every known model serves at once, with no limit on
 * parallel requests, which is what most tests want. The scheduler
 * options make it behave like Ollama's scheduler (ollama-api.md, 4 and
 * 9) instead:
 *
 *	--num-parallel N	slots per resident model (default 1; 0 is
 *				no limit); more requests for a resident
 *				model wait for a slot without limit
 *	--max-loaded K		models resident at once (default 3; 0 is
 *				no limit); the least recently used idle
 *				one is evicted to make room, and a load
 *				waits while none is idle
 *	--load-ms [MODEL=]MS	how long a load takes (default 0), for all
 *				models or, repeated, for one
 *	--max-queue N		requests that may wait behind the one being
 *				scheduled (default 512); more get Ollama's
 *				503 "server busy"
 *	--keep-alive DURATION	how long an idle model stays (default 5m;
 *				a number is seconds, negative is forever)
 *	--ps-blocks		/api/ps waits while a load runs
 *	--preload MODEL,...	these models are resident from the start,
 *				idle, as if loaded just before; that is not
 *				counted as a load, so /_fake/sched counts
 *				only the loads that requests caused
 *
 * Any of them turns the scheduler on, and the others then take
 * Ollama's defaults. Requests are scheduled one at a time in arrival
 * order, so one waiting for a load holds up those behind it; loads
 * happen one at a time; a change of options.num_ctx reloads the model;
 * keep_alive sets how long the model stays once its last request has
 * finished. load_duration is then the time a request waited in the
 * queue, and /_fake/sched shows the scheduler's state and counts loads.
 *
 * With --openai-key KEY it is an OpenAI-compatible upstream instead:
 * only the /v1 routes, and only with "Authorization: Bearer KEY".
 *
 * Requests with "User-Agent: ogproxyd-probe" (the gateway's probes of
 * /api/ps and /api/tags) are listed at /_fake/probes, not /_fake/log,
 * and are not counted in /_fake/stats.
 */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

/* Limits that keep a misbehaving client from taking all our memory. */
#define MAX_HEAD	(64 * 1024)
#define MAX_HEADERS	200
#define MAX_BODY	(256 * 1024 * 1024)
#define LOG_KEEP	10000
#define LOG_BODY_MAX	(1024 * 1024)
/* Produce more stream output only while less than this is unsent. */
#define OUT_HIGH	(64 * 1024)
/* Stop reading pipelined input past this while a request is served. */
#define IN_HIGH		(4 * 1024 * 1024)
#define EMBED_DIM	8
/* The context length of a runner when the request names none. */
#define DEFAULT_CTX	4096
/* Go's longest duration, in seconds: a keep_alive of "forever". */
#define FOREVER_S	9223372036LL

enum fault {
	FAULT_NONE,
	FAULT_HANG,
	FAULT_CLOSE,
	FAULT_ERROR,
	FAULT_500,
	FAULT_503,
	FAULT_SLOW_HEADERS,
	FAULT_GARBAGE,
	/* Hostile framing, which a gateway must refuse or repair. */
	FAULT_TE_CL,		/* Transfer-Encoding and Content-Length */
	FAULT_CL_CL,		/* two different Content-Lengths */
	FAULT_CL_LIST,		/* Content-Length: N, N */
	FAULT_SWITCH,		/* 101 Switching Protocols, then bytes */
	FAULT_INTERIM,		/* 100 and 103 before the real answer */
	FAULT_BAD_HEADERS,	/* invalid names, CTLs, folds */
	FAULT_LENGTH,		/* a stream held and sent with a length */
	FAULT_HOP_HEADERS	/* fields the Connection header names */
};

enum req_state {
	REQ_READING,	/* Not yet complete; not in the log. */
	REQ_ACTIVE,
	REQ_DONE,
	REQ_CANCELLED
};

/* Where the parser of a connection is in the current request. */
enum parse_state {
	PS_HEAD,
	PS_BODY,
	PS_CHUNK_SIZE,
	PS_CHUNK_DATA,
	PS_CHUNK_END,
	PS_TRAILER,
	PS_SERVING
};

/* What a generation produces, which decides its framing and shapes. */
enum gen_kind {
	GEN_GENERATE,
	GEN_CHAT,
	GEN_V1CHAT,
	GEN_V1COMPLETION,
	GEN_MESSAGES,	/* Anthropic's /v1/messages. */
	GEN_RESPONSES,	/* OpenAI's /v1/responses. */
	GEN_PROGRESS,	/* Pull, push and create status lines. */
	GEN_CANNED,	/* A prepared response sent after the ttft. */
	GEN_LOAD,	/* A load request: its reply once the model is in. */
	GEN_PS		/* An /api/ps held while a load runs. */
};

enum gen_phase {
	PHASE_QUEUED,	/* Waiting for the scheduler: a load or a slot. */
	PHASE_START,	/* Admitted: starts when its timer fires. */
	PHASE_WAIT,	/* Before the first token. */
	PHASE_RUN,
	PHASE_HANG
};

/* Where a request stands with the scheduler (see sched_submit). */
enum sched_state {
	SCHED_NONE,	/* Not scheduled, or no longer. */
	SCHED_QUEUED,	/* In the scheduler's queue, in arrival order. */
	SCHED_SLOT,	/* Handed to its runner, waiting for a slot. */
	SCHED_RUNNING,	/* Holding its runner (and a slot, unless a load). */
	SCHED_PS	/* An /api/ps waiting for the load to end. */
};

/* A growable byte buffer; off is where unconsumed data starts. */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 off;
	size_t	 cap;
};

/* Whatever epoll reports on: data.ptr points at one of these. */
struct handler {
	void	(*fn)(struct handler *, uint32_t);
};

struct settings {
	long		ttft_ms;
	long		delay_ms;
	long		tokens;
	enum fault	fault;
	long		progress_pad;	/* bytes of padding in a pull's first line */
};

struct model {
	char	*name;		/* Normalised, always with a tag. */
	int	 embed;		/* Embedding-only. */
	time_t	 modified;
	time_t	 loaded_until;	/* For /api/ps; 0 when not loaded. */
};

struct hdr {
	const char	*name;
	const char	*value;
};

/*
 * One request, from its head to its end. It is also the entry in the
 * request log, so it is reference counted: the connection serving it
 * holds one reference and the log another.
 */
struct req {
	int		 refs;
	enum req_state	 state;
	uint64_t	 seq;
	unsigned	 epoch;		/* The log generation it belongs to. */
	int		 logged;	/* Counted in the log and stats. */
	int		 probe;		/* ogproxyd's probe: /_fake/probes */
	long		 tokens_sent;
	int		 status;
	char		*head;		/* The request head, split in place. */
	const char	*method;
	const char	*target;
	int		 minor;		/* HTTP/1.minor */
	struct hdr	*hdrs;
	size_t		 nhdrs;
	struct buf	 body;
	int		 keepalive;
	int		 head_only;	/* HEAD: headers but no body. */
	int		 chunked_out;	/* The response is chunked. */
	int		 openai;	/* Errors in OpenAI's dialect. */
	int		 anthropic;	/* ...or in Anthropic's. */
	struct settings	 set;		/* Settings with header overrides. */
	long		 drip_ms;	/* slow_headers: ms between bytes. */
	uint64_t	 t_start;
	unsigned long	 conn_id;	/* Which connection brought it. */
	int		 holding;	/* length: the body waits in held. */
	int		 held_status;
	char		*held_ctype;
	struct buf	 held;
};

/* The connections waiting in one of the scheduler's queues. */
TAILQ_HEAD(connq, conn);

/* The state of a response that takes time: a stream or a delay. */
struct gen {
	enum gen_kind	 kind;
	enum gen_phase	 phase;
	int		 stream;
	long		 ntok;		/* Tokens to produce. */
	long		 produced;
	int		 length_cut;	/* Cut short by a token limit. */
	int		 include_usage;
	long		 prompt_count;
	long		 seq;		/* Responses: the next sequence_number. */
	char		*model_json;	/* The model as sent, JSON-quoted. */
	char		*name;		/* Pull, push and create: the model. */
	int		 progress_op;	/* 0 pull, 1 push, 2 create. */
	long		 pad;		/* progress_pad when it started */
	int		 embed_from;	/* Create: the new model embeds. */
	long		 created;
	unsigned	 id;
	struct buf	 text;		/* Non-streamed text so far. */
	struct buf	 canned;	/* GEN_CANNED: the whole body. */
	int		 canned_status;
	const char	*canned_type;
	json_t		*canned_json;	/* GEN_CANNED: serialised when sent. */
	int		 load_chat;	/* GEN_LOAD: answer as chat does. */
	uint64_t	 t_first;
	/* What the scheduler needs; unused while it is off. */
	enum sched_state sstate;
	struct runner	*runner;	/* Held from hand-over to the end. */
	int		 slot;		/* One of the runner's slots is ours. */
	char		*sname;		/* The model, normalised. */
	int		 embed;
	long		 num_ctx;
	double		 keep_alive;	/* Seconds; negative is forever. */
	uint64_t	 t_submit;	/* ns */
	uint64_t	 t_begin;	/* Admitted, in ns. */
	uint64_t	 load_ns;	/* Waited in the queue; 0 if not. */
};

struct conn {
	struct handler	 h;
	int		 fd;
	struct buf	 in;
	struct buf	 out;
	uint32_t	 events;	/* The interest registered with epoll. */
	enum parse_state ps;
	size_t		 remaining;	/* Body or chunk bytes still due. */
	struct req	*req;
	struct gen	*gen;
	uint64_t	 deadline;	/* Timer, in ms of CLOCK_MONOTONIC. */
	size_t		 hidx;		/* Index in the heap, or SIZE_MAX. */
	size_t		 drip_skip;	/* Bytes to send before dripping. */
	size_t		 drip;		/* Bytes to send one per tick. */
	long		 drip_ms;
	int		 close_after;	/* Close once the output is flushed. */
	int		 eof;
	int		 dead;
	unsigned long	 id;		/* Numbered as accepted, from 1. */
	struct conn	*prev;
	struct conn	*next;
	TAILQ_ENTRY(conn) qentry;	/* In one scheduler queue at most. */
};

/*
 * A model in memory, Ollama's runner: loading, or resident with its
 * slots. Requests handed to it (running or waiting for a slot) keep it
 * from being evicted; once the last has finished it stays for its
 * keep_alive, and is then unloaded.
 */
struct runner {
	char		*name;		/* Normalised. */
	int		 embed;
	long		 num_ctx;
	int		 loading;
	uint64_t	 load_done;	/* When the load ends, ns. */
	int		 running;	/* Requests holding a slot. */
	int		 refs;		/* And those waiting for one. */
	struct connq	 waiting;	/* For a slot, in arrival order. */
	double		 keep_alive;	/* From its last request. */
	int		 idle;		/* Its keep_alive has started. */
	uint64_t	 expires;	/* When idle: unload at, in ms. */
	uint64_t	 used;		/* Last handed a request, for LRU. */
	TAILQ_ENTRY(runner) entry;
};

/* A --load-ms for one model, or for all when name is NULL. */
struct load_time {
	char	*name;
	long	 ms;
};

/* How often a model was loaded since the last reset. */
struct load_count {
	char	*name;
	long	 n;
};

static void	 buf_reserve(struct buf *, size_t);
static void	 buf_add(struct buf *, const void *, size_t);
static void	 buf_addstr(struct buf *, const char *);
static void	 buf_printf(struct buf *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	 buf_free(struct buf *);
static size_t	 buf_pending(const struct buf *);
static void	*xmalloc(size_t);
static void	*xcalloc(size_t, size_t);
static char	*xstrdup(const char *);
static void	 fatal(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));
static uint64_t	 now_ms(void);
static uint64_t	 now_ns(void);
static void	 heap_swap(size_t, size_t);
static void	 heap_up(size_t);
static void	 heap_down(size_t);
static void	 timer_set(struct conn *, long);
static void	 timer_clear(struct conn *);
static void	 timers_run(void);
static void	 listener_event(struct handler *, uint32_t);
static void	 signal_event(struct handler *, uint32_t);
static void	 conn_event(struct handler *, uint32_t);
static void	 conn_timer(struct conn *);
static void	 conn_accept(int);
static void	 conn_free(struct conn *);
static void	 conn_interest(struct conn *, uint32_t);
static int	 conn_flush(struct conn *);
static int	 conn_read(struct conn *);
static void	 conn_drive(struct conn *);
static void	 conn_process(struct conn *);
static int	 conn_parse_head(struct conn *);
static int	 conn_parse_body(struct conn *);
static void	 conn_fail(struct conn *, int, const char *);
static void	 req_unref(struct req *);
static const char *req_header(const struct req *, const char *);
static void	 req_finish(struct req *, enum req_state);
static void	 log_add(struct req *);
static void	 log_clear(void);
static json_t	*log_json(int);
static json_t	*str_json(const char *, size_t);
static const char *status_text(int);
static const char *date_now(void);
static void	 resp_head(struct conn *, int, const char *, long long);
static void	 resp_body(struct conn *, const void *, size_t);
static void	 resp_end(struct conn *);
static void	 reply(struct conn *, int, const char *, const char *,
		    size_t);
static void	 reply_json(struct conn *, int, json_t *);
static void	 reply_error(struct conn *, int, const char *);
static void	 reply_errorf(struct conn *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	 reply_empty(struct conn *, int);
static int	 host_allowed(const char *);
static int	 parse_fault(const char *, enum fault *);
static long	 parse_ms(const char *, long);
static void	 route(struct conn *);
static int	 route_control(struct conn *, const char *);
static int	 apply_fault(struct conn *, int);
static int	 hostile_reply(struct conn *);
static void	 hostile_headers(struct buf *);
static json_t	*body_json(struct conn *);
static void	 models_set(const char *);
static void	 models_free(void);
static struct model *model_find(const char *);
static struct model *model_add(const char *, int);
static char	*model_normalise(const char *);
static void	 usage(void);
static void	 gen_free(struct gen *);
static size_t	 utf8_seq(const char *, size_t);
static int	 utf8_ok(const char *, size_t);
static int	 token_in(const char *, const char *);
static char	*head_end(char *, size_t);
static uint64_t	 hash_str(const char *, size_t, uint64_t);
static uint64_t	 mix64(uint64_t);
static void	 hex_digest(const char *, char [65]);
static void	 model_remove(struct model *);
static void	 time_local(time_t, char *, size_t);
static void	 time_utc_now(char *, size_t);
static json_t	*model_details(const struct model *);
static json_int_t	 model_size(const struct model *);
static json_t	*model_caps(const struct model *);
static const char *jstr(json_t *, const char *);
static const char *jstr2(json_t *, const char *, const char *);
static int	 jbool(json_t *, const char *, int);
static long	 words(const char *);
static long	 content_words(json_t *);
static int	 keep_alive_zero(json_t *);
static char	*json_quote(const char *);
static void	 model_touch(struct model *, int);
static void	 gen_limit(struct gen *, json_t *);
static struct gen *gen_new(struct conn *, enum gen_kind, const char *);
static void	 gen_start(struct conn *, struct gen *);
static void	 gen_begin(struct conn *);
static const char *gen_reason(const struct gen *);
static void	 gen_ready(struct conn *);
static void	 gen_timer(struct conn *);
static void	 gen_emit(struct conn *, struct buf *);
static void	 sse_prefix(struct gen *, struct buf *, const char *);
static void	 progress_line(struct gen *, long, struct buf *);
static void	 gen_token(struct conn *, struct buf *);
static void	 gen_metrics(struct conn *, struct buf *);
static void	 gen_context(struct gen *, struct buf *);
static void	 usage_json(struct gen *, struct buf *);
static void	 gen_final(struct conn *, struct buf *);
static void	 gen_break(struct conn *, struct buf *);
static void	 gen_pump(struct conn *);
static void	 family_open(struct conn *);
static void	 family_final(struct conn *, struct buf *);
static void	 v1_messages(struct conn *);
static void	 v1_responses(struct conn *);
static void	 v1_transcriptions(struct conn *);
static void	 api_status(struct conn *);
static void	 account_route(struct conn *);
static void	 api_root(struct conn *);
static void	 api_version(struct conn *);
static void	 api_tags(struct conn *);
static void	 api_ps(struct conn *);
static void	 ps_reply(struct conn *);
static void	 api_show(struct conn *);
static void	 load_reply(struct conn *, const char *, int, int);
static void	 load_start(struct conn *, struct model *, json_t *,
		    const char *, int);
static void	 api_generate(struct conn *);
static void	 api_chat(struct conn *);
static void	 v1_chat(struct conn *);
static void	 v1_completions(struct conn *);
static double	 square_root(double);
static json_t	*embed_vector(const char *, size_t, double);
static void	 canned_start(struct conn *, struct model *, json_t *,
		    const char *, json_t *);
static void	 canned_ready(struct conn *);
static json_t	*embed_inputs(json_t *);
static void	 api_embed(struct conn *);
static void	 api_embeddings(struct conn *);
static json_t	*vector_base64(json_t *);
static void	 v1_embeddings(struct conn *);
static void	 api_progress(struct conn *, int);
static void	 api_pull(struct conn *);
static void	 api_push(struct conn *);
static void	 api_create(struct conn *);
static void	 api_copy(struct conn *);
static void	 api_delete(struct conn *);
static int	 digest_ok(const char *);
static void	 api_blobs(struct conn *, const char *, size_t);
static void	 v1_models(struct conn *);
static int	 hexval(int);
static void	 v1_model(struct conn *, const char *, size_t);
static unsigned	 method_bit(const char *);
static void	 listen_on(const char *);
static void	 write_portfile(const char *);
static int	 duration_parse(const char *, double *, char *, size_t);
static int	 keep_alive_parse(json_t *, double *, char *, size_t);
static void	 load_time_set(const char *);
static long	 load_time_for(const char *);
static void	 load_count_add(const char *);
static void	 load_counts_clear(void);
static struct runner *runner_find(const char *);
static void	 runner_load(struct conn *);
static void	 runners_preload(const char *);
static void	 runner_unload(struct runner *);
static void	 runner_take(struct runner *, struct conn *);
static time_t	 runner_expires_at(const struct runner *, time_t, uint64_t);
static void	 sched_event(struct handler *, uint32_t);
static void	 sched_submit(struct conn *, struct gen *, json_t *,
		    struct model *);
static void	 sched_admit(struct conn *);
static void	 sched_leave(struct conn *);
static void	 sched_expire(const char *);
static void	 sched_dispatch(void);
static int	 sched_sweep(void);
static void	 sched_run(void);
static void	 sched_arm(void);
static json_t	*sched_json(void);

static int		 epfd = -1;
static int		 listen_fd = -1;
static int		 sig_fd = -1;
static int		 running = 1;
static int		 quiet;
static int		 host_check;	/* Bound to loopback: check Host. */
static const char	*openai_key;	/* --openai-key: an OpenAI upstream */
static char		 hostname[256];
static struct handler	 listener_handler = { listener_event };
static struct handler	 signal_handler = { signal_event };
static struct conn	*conns;
static struct buf	 scratch;	/* For one stream line at a time. */
static struct settings	 cfg = { 0, 0, 8, FAULT_NONE, 0 };

static struct conn	**heap;
static size_t		 heap_len;
static size_t		 heap_cap;

static struct req	*log_ring[LOG_KEEP];
static size_t		 log_start;
static size_t		 log_count;
static uint64_t		 log_seq;
static unsigned		 log_epoch;
static long		 stat_requests;
static long		 stat_active;
static long		 stat_done;
static long		 stat_cancelled;
static unsigned long	 conn_seq;

static struct model	*models;
static size_t		 nmodels;
static char		**blobs;
static size_t		 nblobs;

/* The scheduler, when an option turns it on (see the top). */
static int		 sched_on;
static long		 sched_parallel = 1;
static long		 sched_max_loaded = 3;
static long		 sched_max_queue = 512;
static double		 sched_keep_alive = 300;
static int		 sched_ps_blocks;
static struct load_time	*load_times;
static size_t		 nload_times;
static struct load_count *load_counts;
static size_t		 nload_counts;
static long		 stat_unloads;
static int		 sched_fd = -1;
static struct handler	 sched_handler = { sched_event };
static struct connq	 sched_queue = TAILQ_HEAD_INITIALIZER(sched_queue);
static size_t		 sched_queued;
static struct connq	 ps_waiting = TAILQ_HEAD_INITIALIZER(ps_waiting);
static TAILQ_HEAD(, runner) runners = TAILQ_HEAD_INITIALIZER(runners);
static size_t		 nrunners;
static struct runner	*sched_loading;	/* At most one load at a time. */
static struct conn	*sched_submitting;

static const char *fault_names[] = {
	"none", "hang", "close", "error", "500", "503", "slow_headers",
	"garbage", "te_cl", "cl_cl", "cl_list", "101", "interim",
	"bad_headers", "length", "hop_headers"
};

static void
fatal(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fake-ollama: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *
xmalloc(size_t n)
{
	void *p;

	if ((p = malloc(n ? n : 1)) == NULL)
		fatal("out of memory");
	return p;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n ? n : 1, size ? size : 1)) == NULL)
		fatal("out of memory");
	return p;
}

static char *
xstrdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL)
		fatal("out of memory");
	return p;
}

/*
 * Make room for n more bytes. Consumed bytes at the front are dropped
 * first, so that a buffer used as a queue does not creep upwards.
 */
static void
buf_reserve(struct buf *b, size_t n)
{
	size_t want;

	if (b->off > 0 && (b->off == b->len || b->len + n > b->cap)) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n <= b->cap)
		return;
	want = b->cap ? b->cap : 1024;
	while (want < b->len + n + 1)
		want *= 2;
	if ((b->data = realloc(b->data, want)) == NULL)
		fatal("out of memory");
	b->cap = want;
}

static void
buf_add(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n + 1);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
buf_addstr(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	buf_reserve(b, 256);
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("vsnprintf failed");
	if ((size_t)n >= b->cap - b->len) {
		buf_reserve(b, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

static void
buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static size_t
buf_pending(const struct buf *b)
{
	return b->len - b->off;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
now_ms(void)
{
	return now_ns() / 1000000u;
}

/*
 * The timers: a binary min-heap of connections ordered by deadline.
 * Each connection has at most one timer, because at any moment it waits
 * for one thing only (the first token, the next token, the next byte of
 * dribbled headers), and it remembers its index so that it can leave
 * the heap in O(log n) when it closes.
 */
static void
heap_swap(size_t a, size_t b)
{
	struct conn *t = heap[a];

	heap[a] = heap[b];
	heap[b] = t;
	heap[a]->hidx = a;
	heap[b]->hidx = b;
}

static void
heap_up(size_t i)
{
	while (i > 0 && heap[(i - 1) / 2]->deadline > heap[i]->deadline) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(size_t i)
{
	size_t l, r, m;

	for (;;) {
		l = 2 * i + 1;
		r = l + 1;
		m = i;
		if (l < heap_len && heap[l]->deadline < heap[m]->deadline)
			m = l;
		if (r < heap_len && heap[r]->deadline < heap[m]->deadline)
			m = r;
		if (m == i)
			return;
		heap_swap(i, m);
		i = m;
	}
}

static void
timer_set(struct conn *c, long ms)
{
	timer_clear(c);
	if (heap_len == heap_cap) {
		heap_cap = heap_cap ? heap_cap * 2 : 64;
		if ((heap = realloc(heap, heap_cap * sizeof(*heap))) == NULL)
			fatal("out of memory");
	}
	c->deadline = now_ms() + (uint64_t)(ms > 0 ? ms : 0);
	c->hidx = heap_len;
	heap[heap_len++] = c;
	heap_up(c->hidx);
}

static void
timer_clear(struct conn *c)
{
	size_t i = c->hidx;

	if (i == SIZE_MAX)
		return;
	c->hidx = SIZE_MAX;
	heap_len--;
	if (i == heap_len)
		return;
	heap[i] = heap[heap_len];
	heap[i]->hidx = i;
	heap_up(i);
	heap_down(heap[i]->hidx);
}

static void
timers_run(void)
{
	struct conn *c;
	uint64_t now = now_ms();

	while (heap_len > 0 && heap[0]->deadline <= now) {
		c = heap[0];
		timer_clear(c);
		conn_timer(c);
		if (c->dead)
			conn_free(c);
	}
}

static const char *
status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Request Entity Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

/* The Date header's value, formatted again only once a second. */
static const char *
date_now(void)
{
	static char cached[64];
	static time_t cached_at;
	time_t t = time(NULL);
	struct tm tm;

	if (t != cached_at) {
		gmtime_r(&t, &tm);
		strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT",
		    &tm);
		cached_at = t;
	}
	return cached;
}

static void
listener_event(struct handler *h, uint32_t ev)
{
	(void)h;
	(void)ev;
	conn_accept(listen_fd);
}

static void
signal_event(struct handler *h, uint32_t ev)
{
	struct signalfd_siginfo si;

	(void)h;
	(void)ev;
	while (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		running = 0;
}

static void
conn_accept(int fd)
{
	struct epoll_event ev;
	struct conn *c;
	int cfd, one = 1;

	for (;;) {
		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd == -1)
			return;
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = xcalloc(1, sizeof(*c));
		c->h.fn = conn_event;
		c->fd = cfd;
		c->id = ++conn_seq;
		c->hidx = SIZE_MAX;
		c->events = EPOLLIN | EPOLLRDHUP;
		ev.events = c->events;
		ev.data.ptr = &c->h;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &ev) == -1) {
			close(cfd);
			free(c);
			continue;
		}
		c->next = conns;
		if (conns != NULL)
			conns->prev = c;
		conns = c;
	}
}

static void
gen_free(struct gen *g)
{
	if (g == NULL)
		return;
	free(g->model_json);
	free(g->name);
	free(g->sname);
	json_decref(g->canned_json);
	buf_free(&g->text);
	buf_free(&g->canned);
	free(g);
}

/*
 * Close a connection. A request it was still serving was cut off by the
 * client (or by us, which the fault modes arrange to mark done first),
 * so it is recorded as cancelled.
 */
static void
conn_free(struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	timer_clear(c);
	if (c->req != NULL) {
		if (c->req->state == REQ_ACTIVE)
			req_finish(c->req, REQ_CANCELLED);
		req_unref(c->req);
	}
	sched_leave(c);
	gen_free(c->gen);
	close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

static void
conn_interest(struct conn *c, uint32_t events)
{
	struct epoll_event ev;

	if (events == c->events)
		return;
	c->events = events;
	ev.events = events;
	ev.data.ptr = &c->h;
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/*
 * Write what the socket takes. While headers are being dribbled, only
 * the bytes before them go out here; the timer sends the rest. Returns
 * -1 when the peer is gone.
 */
static int
conn_flush(struct conn *c)
{
	size_t want;
	ssize_t n;

	for (;;) {
		want = buf_pending(&c->out);
		if (c->drip > 0 && want > c->drip_skip)
			want = c->drip_skip;
		if (want == 0)
			break;
		n = send(c->fd, c->out.data + c->out.off, want, MSG_NOSIGNAL);
		if (n > 0) {
			c->out.off += (size_t)n;
			if (c->drip > 0)
				c->drip_skip -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		return -1;
	}
	if (buf_pending(&c->out) == 0) {
		c->out.off = c->out.len = 0;
		conn_interest(c, c->events & ~(uint32_t)EPOLLOUT);
		if (c->close_after)
			return -1;
	} else if (c->drip > 0 && c->drip_skip == 0)
		conn_interest(c, c->events & ~(uint32_t)EPOLLOUT);
	else
		conn_interest(c, c->events | EPOLLOUT);
	return 0;
}

/* Read what has arrived; -1 when the peer closed or failed. */
static int
conn_read(struct conn *c)
{
	ssize_t n;

	for (;;) {
		if (c->req != NULL && c->ps == PS_SERVING &&
		    buf_pending(&c->in) >= IN_HIGH) {
			/*
			 * Enough is queued behind the request being served;
			 * EPOLLRDHUP still tells us if the client leaves.
			 */
			conn_interest(c, c->events & ~(uint32_t)EPOLLIN);
			return 0;
		}
		buf_reserve(&c->in, 16384);
		n = recv(c->fd, c->in.data + c->in.len,
		    c->in.cap - c->in.len - 1, 0);
		if (n > 0) {
			c->in.len += (size_t)n;
			c->in.data[c->in.len] = '\0';
			continue;
		}
		if (n == 0)
			return -1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return -1;
	}
}

static void
req_unref(struct req *r)
{
	if (r == NULL || --r->refs > 0)
		return;
	free(r->head);
	free(r->hdrs);
	buf_free(&r->body);
	buf_free(&r->held);
	free(r->held_ctype);
	free(r);
}

/* The value of the first header with this name, or NULL. */
static const char *
req_header(const struct req *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nhdrs; i++)
		if (strcasecmp(r->hdrs[i].name, name) == 0)
			return r->hdrs[i].value;
	return NULL;
}

/* Settle a logged request and count it, once. */
static void
req_finish(struct req *r, enum req_state state)
{
	if (r->state != REQ_ACTIVE)
		return;
	r->state = state;
	if (!r->logged)
		return;
	stat_active--;
	if (r->epoch == log_epoch) {
		if (state == REQ_DONE)
			stat_done++;
		else
			stat_cancelled++;
	}
	if (!quiet)
		fprintf(stderr, "fake-ollama: #%llu %s %s %d %s tokens=%ld\n",
		    (unsigned long long)r->seq, r->method, r->target,
		    r->status, state == REQ_DONE ? "done" : "cancelled",
		    r->tokens_sent);
}

static int
req_is_probe(struct req *r)
{
	const char *ua = req_header(r, "User-Agent");

	return ua != NULL && strcmp(ua, "ogproxyd-probe") == 0;
}

static void
log_add(struct req *r)
{
	size_t i;

	if (log_count == LOG_KEEP) {
		req_unref(log_ring[log_start]);
		log_start = (log_start + 1) % LOG_KEEP;
		log_count--;
	}
	i = (log_start + log_count) % LOG_KEEP;
	log_ring[i] = r;
	r->refs++;
	log_count++;
	r->seq = ++log_seq;
	r->epoch = log_epoch;
	/*
	 * The gateway's own probes of /api/ps and /api/tags come while
	 * requests do: they are kept apart, so that what a test sent is
	 * what /_fake/log and /_fake/stats show.
	 */
	if ((r->probe = req_is_probe(r)))
		return;
	r->logged = 1;
	stat_requests++;
	stat_active++;
}

static void
log_clear(void)
{
	while (log_count > 0) {
		req_unref(log_ring[log_start]);
		log_start = (log_start + 1) % LOG_KEEP;
		log_count--;
	}
	log_start = 0;
	log_seq = 0;
	log_epoch++;
	stat_requests = stat_done = stat_cancelled = 0;
}

/*
 * A JSON string of arbitrary bytes. Jansson insists on UTF-8, and a body
 * may be anything, so invalid sequences become U+FFFD.
 */
static json_t *
str_json(const char *s, size_t len)
{
	struct buf b = { NULL, 0, 0, 0 };
	json_t *j;
	size_t i = 0, n;

	if (utf8_ok(s, len))
		return json_stringn(s, len);
	while (i < len) {
		if ((n = utf8_seq(s + i, len - i)) == 0) {
			buf_add(&b, "\xef\xbf\xbd", 3);
			i++;
		} else {
			buf_add(&b, s + i, n);
			i += n;
		}
	}
	j = json_stringn(b.data, b.len);
	buf_free(&b);
	return j;
}

/* The length of the valid UTF-8 sequence at s, or 0 if it is invalid. */
static size_t
utf8_seq(const char *p, size_t len)
{
	const unsigned char *s = (const unsigned char *)p;
	uint32_t cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

static int
utf8_ok(const char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		if ((n = utf8_seq(s + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

static json_t *
log_json(int probes)
{
	json_t *arr = json_array(), *o, *hs;
	const char *state;
	struct req *r;
	size_t i, k;

	for (i = 0; i < log_count; i++) {
		r = log_ring[(log_start + i) % LOG_KEEP];
		if (r->probe != probes)
			continue;
		hs = json_array();
		for (k = 0; k < r->nhdrs; k++)
			json_array_append_new(hs, json_pack("[oo]",
			    str_json(r->hdrs[k].name, strlen(r->hdrs[k].name)),
			    str_json(r->hdrs[k].value,
			    strlen(r->hdrs[k].value))));
		state = r->state == REQ_ACTIVE ? "active" :
		    r->state == REQ_DONE ? "done" : "cancelled";
		o = json_pack("{sIsoso}", "seq", (json_int_t)r->seq,
		    "method", str_json(r->method, strlen(r->method)),
		    "target", str_json(r->target, strlen(r->target)));
		json_object_set_new(o, "headers", hs);
		json_object_set_new(o, "body",
		    str_json(r->body.data ? r->body.data : "", r->body.len));
		json_object_set_new(o, "state", json_string(state));
		json_object_set_new(o, "tokens_sent",
		    json_integer(r->tokens_sent));
		json_object_set_new(o, "conn", json_integer(
		    (json_int_t)r->conn_id));
		json_array_append_new(arr, o);
	}
	return arr;
}

/*
 * Start a response. A negative length means a body of unknown length:
 * chunked for HTTP/1.1 clients, delimited by the close for HTTP/1.0.
 */
static void
resp_head(struct conn *c, int status, const char *ctype, long long len)
{
	struct req *r = c->req;
	size_t before = buf_pending(&c->out);

	r->status = status;
	r->chunked_out = 0;
	if (len < 0 && !r->head_only && r->set.fault == FAULT_LENGTH) {
		/* The whole body is gathered first, to be sent with a length. */
		r->holding = 1;
		r->held_status = status;
		free(r->held_ctype);
		r->held_ctype = ctype != NULL ? xstrdup(ctype) : NULL;
		return;
	}
	if (len < 0 && !r->head_only) {
		if (r->minor >= 1)
			r->chunked_out = 1;
		else
			r->keepalive = 0;
	}
	buf_printf(&c->out, "HTTP/1.1 %d %s\r\n", status, status_text(status));
	if (ctype != NULL)
		buf_printf(&c->out, "Content-Type: %s\r\n", ctype);
	buf_printf(&c->out, "Date: %s\r\n", date_now());
	if (r->set.fault == FAULT_BAD_HEADERS)
		hostile_headers(&c->out);
	if (r->set.fault == FAULT_HOP_HEADERS)
		buf_addstr(&c->out, "Connection: X-Hop, X-Hop2\r\n"
		    "X-Hop: secret\r\nX-Hop2: secret\r\nX-Kept: yes\r\n");
	if (len >= 0)
		buf_printf(&c->out, "Content-Length: %lld\r\n", len);
	else if (r->chunked_out)
		buf_addstr(&c->out, "Transfer-Encoding: chunked\r\n");
	if (!r->keepalive)
		buf_addstr(&c->out, "Connection: close\r\n");
	else if (r->minor == 0)
		buf_addstr(&c->out, "Connection: keep-alive\r\n");
	buf_addstr(&c->out, "\r\n");
	if (r->set.fault == FAULT_SLOW_HEADERS) {
		c->drip_skip = before;
		c->drip = buf_pending(&c->out) - before;
		c->drip_ms = r->drip_ms;
		timer_set(c, c->drip_ms);
	}
}

static void
resp_body(struct conn *c, const void *p, size_t len)
{
	struct req *r = c->req;

	if (r->head_only || len == 0)
		return;
	if (r->holding) {
		buf_add(&r->held, p, len);
		return;
	}
	if (r->chunked_out) {
		buf_printf(&c->out, "%zx\r\n", len);
		buf_add(&c->out, p, len);
		buf_add(&c->out, "\r\n", 2);
	} else
		buf_add(&c->out, p, len);
}

/* The response is complete: the request is done. */
static void
resp_end(struct conn *c)
{
	struct req *r = c->req;

	if (r->holding) {
		r->holding = 0;
		resp_head(c, r->held_status, r->held_ctype, (long long)r->held.len);
		resp_body(c, r->held.data, r->held.len);
	}
	if (r->chunked_out)
		buf_add(&c->out, "0\r\n\r\n", 5);
	if (!r->keepalive)
		c->close_after = 1;
	req_finish(r, REQ_DONE);
	sched_leave(c);
	gen_free(c->gen);
	c->gen = NULL;
	req_unref(r);
	c->req = NULL;
	c->ps = PS_HEAD;
	conn_interest(c, c->events | EPOLLIN);
}

static void
reply(struct conn *c, int status, const char *ctype, const char *body,
    size_t len)
{
	resp_head(c, status, ctype, (long long)len);
	resp_body(c, body, len);
	resp_end(c);
}

/*
 * A JSON body, in the dialect of the route: gin's compact JSON with a
 * charset for native routes, json.Encoder's trailing newline and plain
 * content type for the OpenAI ones. Takes the reference to obj.
 */
static void
reply_json(struct conn *c, int status, json_t *obj)
{
	char *s;
	size_t len;

	s = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY |
	    JSON_REAL_PRECISION(9));
	json_decref(obj);
	if (s == NULL)
		fatal("json_dumps failed");
	len = strlen(s);
	if (c->req->openai) {
		s = realloc(s, len + 2);
		if (s == NULL)
			fatal("out of memory");
		s[len++] = '\n';
		s[len] = '\0';
		reply(c, status, "application/json", s, len);
	} else
		reply(c, status, "application/json; charset=utf-8", s, len);
	free(s);
}

/* Anthropic's shape, written by gin: a charset and no newline. */
static void
anthropic_error(struct conn *c, int status, const char *msg)
{
	const char *type;
	json_t *o;
	char *s;

	type = status == 400 ? "invalid_request_error" :
	    status == 401 ? "authentication_error" :
	    status == 403 ? "permission_error" :
	    status == 404 ? "not_found_error" :
	    status == 429 ? "rate_limit_error" :
	    status == 503 || status == 529 ? "overloaded_error" : "api_error";
	o = json_pack("{sss{ssss}ss}", "type", "error", "error",
	    "type", type, "message", msg, "request_id",
	    "req_0123456789abcdef01234567");
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		fatal("json_dumps failed");
	reply(c, status, "application/json; charset=utf-8", s, strlen(s));
	free(s);
}

static void
reply_error(struct conn *c, int status, const char *msg)
{
	const char *type;

	if (c->req->anthropic) {
		anthropic_error(c, status, msg);
		return;
	}
	if (!c->req->openai) {
		reply_json(c, status, json_pack("{ss}", "error", msg));
		return;
	}
	type = status == 400 ? "invalid_request_error" :
	    status == 404 ? "not_found_error" : "api_error";
	reply_json(c, status, json_pack("{s{sssssnsn}}", "error",
	    "message", msg, "type", type, "param", "code"));
}

static void
reply_errorf(struct conn *c, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply_error(c, status, msg);
}

static void
reply_empty(struct conn *c, int status)
{
	reply(c, status, NULL, "", 0);
}

/*
 * Refuse a request we cannot parse and close the connection, since we
 * no longer know where the next request would start.
 */
static void
conn_fail(struct conn *c, int status, const char *msg)
{
	struct req *r = c->req;

	if (r == NULL) {
		r = c->req = xcalloc(1, sizeof(*r));
		r->refs = 1;
		r->method = r->target = "";
		r->minor = 1;
	}
	r->keepalive = 0;
	r->head_only = 0;
	r->set.fault = FAULT_NONE;
	reply(c, status, "text/plain; charset=utf-8", msg, strlen(msg));
	c->close_after = 1;
}

static int
token_in(const char *list, const char *tok)
{
	size_t n = strlen(tok);
	const char *p = list;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncasecmp(p, tok, n) == 0 &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' ' ||
		    p[n] == '\t' || p[n] == ';'))
			return 1;
		while (*p != '\0' && *p != ',')
			p++;
	}
	return 0;
}

/*
 * Where a request head ends: just past its empty line, which ends in
 * CRLF or (leniently) in a bare LF. NULL when it has not arrived yet.
 */
static char *
head_end(char *s, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i++) {
		if (s[i] != '\n')
			continue;
		if (s[i + 1] == '\n')
			return s + i + 2;
		if (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n')
			return s + i + 3;
	}
	return NULL;
}

/*
 * Parse a request head if a whole one has arrived: 1 when done (the
 * request then waits in c->req for its body), 0 when more is needed,
 * -1 after refusing it.
 */
static int
conn_parse_head(struct conn *c)
{
	char *start, *end, *p, *line, *next, *colon;
	const char *v;
	size_t avail, hlen, cap = 16;
	struct req *r;
	char *e;
	unsigned long long cl;

	if (c->in.data == NULL)
		return 0;
	start = c->in.data + c->in.off;
	avail = buf_pending(&c->in);
	/* Tolerate the empty lines some clients send between requests. */
	while (avail > 0 && (*start == '\r' || *start == '\n')) {
		start++;
		avail--;
		c->in.off++;
	}
	if (avail == 0)
		return 0;
	end = head_end(start, avail);
	if (end == NULL) {
		if (avail > MAX_HEAD) {
			conn_fail(c, 431, "431 Request Header Fields Too Large");
			return -1;
		}
		return 0;
	}
	hlen = (size_t)(end - start);
	if (hlen > MAX_HEAD) {
		conn_fail(c, 431, "431 Request Header Fields Too Large");
		return -1;
	}

	r = xcalloc(1, sizeof(*r));
	r->refs = 1;
	r->state = REQ_READING;
	r->t_start = now_ns();
	r->conn_id = c->id;
	r->set = cfg;
	r->head = xmalloc(hlen + 1);
	memcpy(r->head, start, hlen);
	r->head[hlen] = '\0';
	r->hdrs = xmalloc(cap * sizeof(*r->hdrs));
	r->method = r->target = "";
	c->req = r;
	c->in.off += hlen;

	/* The request line: METHOD SP TARGET SP HTTP/1.x */
	line = r->head;
	next = strchr(line, '\n');
	*next++ = '\0';
	if (next - line >= 2 && next[-2] == '\r')
		next[-2] = '\0';
	if ((p = strchr(line, ' ')) == NULL)
		goto bad;
	*p++ = '\0';
	r->method = line;
	r->target = p;
	if ((p = strchr(p, ' ')) == NULL)
		goto bad;
	*p++ = '\0';
	if (strncmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
	    p[8] != '\0' || *r->method == '\0' || *r->target == '\0')
		goto bad;
	r->minor = p[7] - '0';
	r->head_only = strcmp(r->method, "HEAD") == 0;

	for (line = next; *line != '\0' && *line != '\r' && *line != '\n';
	    line = next) {
		if ((next = strchr(line, '\n')) == NULL)
			goto bad;
		*next++ = '\0';
		if (next - line >= 2 && next[-2] == '\r')
			next[-2] = '\0';
		if ((colon = strchr(line, ':')) == NULL || colon == line)
			goto bad;
		*colon++ = '\0';
		while (*colon == ' ' || *colon == '\t')
			colon++;
		p = colon + strlen(colon);
		while (p > colon && (p[-1] == ' ' || p[-1] == '\t'))
			*--p = '\0';
		if (r->nhdrs == MAX_HEADERS) {
			conn_fail(c, 431, "431 Request Header Fields Too Large");
			return -1;
		}
		if (r->nhdrs == cap) {
			cap *= 2;
			r->hdrs = realloc(r->hdrs, cap * sizeof(*r->hdrs));
			if (r->hdrs == NULL)
				fatal("out of memory");
		}
		r->hdrs[r->nhdrs].name = line;
		r->hdrs[r->nhdrs].value = colon;
		r->nhdrs++;
	}

	v = req_header(r, "Connection");
	if (r->minor >= 1)
		r->keepalive = v == NULL || !token_in(v, "close");
	else
		r->keepalive = v != NULL && token_in(v, "keep-alive");

	if ((v = req_header(r, "Transfer-Encoding")) != NULL &&
	    token_in(v, "chunked")) {
		c->ps = PS_CHUNK_SIZE;
	} else if ((v = req_header(r, "Content-Length")) != NULL) {
		errno = 0;
		cl = strtoull(v, &e, 10);
		if (*v < '0' || *v > '9' || *e != '\0' || errno != 0)
			goto bad;
		if (cl > MAX_BODY) {
			conn_fail(c, 413, "413 Request Entity Too Large");
			return -1;
		}
		c->remaining = (size_t)cl;
		c->ps = PS_BODY;
	} else {
		c->remaining = 0;
		c->ps = PS_BODY;
	}
	if ((v = req_header(r, "Expect")) != NULL &&
	    strcasecmp(v, "100-continue") == 0 && r->minor >= 1 &&
	    (c->ps != PS_BODY || c->remaining > buf_pending(&c->in)))
		buf_addstr(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
	return 1;

bad:
	conn_fail(c, 400, "400 Bad Request");
	return -1;
}

/*
 * Collect the body of c->req: 1 when it is complete, 0 when more is
 * needed, -1 after refusing the request.
 */
static int
conn_parse_body(struct conn *c)
{
	struct req *r = c->req;
	char *p, *nl, *e;
	size_t n, avail;
	unsigned long long size;

	if (c->in.data == NULL)
		return c->ps == PS_BODY && c->remaining == 0 ? 1 : 0;
	for (;;) {
		p = c->in.data + c->in.off;
		avail = buf_pending(&c->in);
		switch (c->ps) {
		case PS_BODY:
		case PS_CHUNK_DATA:
			n = avail < c->remaining ? avail : c->remaining;
			buf_add(&r->body, p, n);
			c->in.off += n;
			c->remaining -= n;
			if (c->remaining > 0)
				return 0;
			if (c->ps == PS_BODY)
				return 1;
			c->ps = PS_CHUNK_END;
			break;
		case PS_CHUNK_SIZE:
			if ((nl = memchr(p, '\n', avail)) == NULL) {
				if (avail > 4096)
					goto bad;
				return 0;
			}
			errno = 0;
			size = strtoull(p, &e, 16);
			if (e == p || errno != 0 || size > MAX_BODY ||
			    r->body.len + size > MAX_BODY ||
			    (*e != ';' && *e != '\r' && *e != '\n' &&
			    *e != ' ' && *e != '\t'))
				goto bad;
			c->in.off += (size_t)(nl - p) + 1;
			if (size == 0)
				c->ps = PS_TRAILER;
			else {
				c->remaining = (size_t)size;
				c->ps = PS_CHUNK_DATA;
			}
			break;
		case PS_CHUNK_END:
			if (avail < 1 || (p[0] == '\r' && avail < 2))
				return 0;
			if (p[0] == '\n')
				c->in.off += 1;
			else if (p[0] == '\r' && p[1] == '\n')
				c->in.off += 2;
			else
				goto bad;
			c->ps = PS_CHUNK_SIZE;
			break;
		case PS_TRAILER:
			if ((nl = memchr(p, '\n', avail)) == NULL) {
				if (avail > MAX_HEAD)
					goto bad;
				return 0;
			}
			c->in.off += (size_t)(nl - p) + 1;
			if (nl == p || (nl == p + 1 && p[0] == '\r'))
				return 1;
			break;
		default:
			return 1;
		}
	}

bad:
	conn_fail(c, 400, "400 Bad Request");
	return -1;
}

/*
 * Serve every complete request in the input buffer, in order. A
 * request whose response takes time stops the loop; the next one is
 * read once it has ended, which is what makes pipelining work.
 */
static void
conn_process(struct conn *c)
{
	int rc;

	while (!c->dead && !c->close_after && c->drip == 0) {
		if (c->req == NULL) {
			if ((rc = conn_parse_head(c)) <= 0)
				return;
		} else if (c->ps == PS_SERVING)
			return;
		if ((rc = conn_parse_body(c)) <= 0)
			return;
		c->ps = PS_SERVING;
		c->req->state = REQ_ACTIVE;
		route(c);
	}
}

/*
 * Move a connection forward as far as it will go: serve what has been
 * read, produce stream output while there is room for it, and write.
 */
static void
conn_drive(struct conn *c)
{
	int had_gen;

	for (;;) {
		conn_process(c);
		if (c->dead)
			return;
		had_gen = c->gen != NULL;
		if (c->gen != NULL && c->gen->phase == PHASE_RUN)
			gen_pump(c);
		if (conn_flush(c) == -1) {
			c->dead = 1;
			return;
		}
		/*
		 * Go round again only if the socket took everything and
		 * there is more to produce, or a stream has just ended and
		 * a pipelined request may be waiting behind it.
		 */
		if (buf_pending(&c->out) > 0)
			return;
		if (c->gen != NULL && c->gen->phase == PHASE_RUN &&
		    c->hidx == SIZE_MAX && c->drip == 0)
			continue;
		if (had_gen && c->gen == NULL && c->req == NULL &&
		    buf_pending(&c->in) > 0)
			continue;
		return;
	}
}

static void
conn_event(struct handler *h, uint32_t ev)
{
	struct conn *c = (struct conn *)h;

	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		if (conn_read(c) == -1) {
			/* Level-triggered: stop asking, or it repeats. */
			c->eof = 1;
			conn_interest(c, c->events &
			    ~(uint32_t)(EPOLLIN | EPOLLRDHUP));
		}
	}
	if (!c->dead)
		conn_drive(c);
	if (c->eof && !c->dead) {
		/*
		 * The client has gone (or at least stopped sending). Like
		 * Go's server, take that as cancelling what it asked for;
		 * only answers already made are still written.
		 */
		if (c->req != NULL || buf_pending(&c->out) == 0)
			c->dead = 1;
		else
			c->close_after = 1;
	}
	if (c->dead)
		conn_free(c);
}

static void
conn_timer(struct conn *c)
{
	ssize_t n;

	if (c->drip > 0) {
		if (c->drip_skip == 0) {
			n = send(c->fd, c->out.data + c->out.off, 1,
			    MSG_NOSIGNAL);
			if (n == 1) {
				c->out.off++;
				c->drip--;
			} else if (n == -1 && errno != EAGAIN &&
			    errno != EWOULDBLOCK && errno != EINTR) {
				c->dead = 1;
				return;
			}
		}
		if (c->drip > 0) {
			timer_set(c, c->drip_ms);
			return;
		}
	} else if (c->gen != NULL)
		gen_timer(c);
	if (!c->dead)
		conn_drive(c);
}

/*
 * Ollama's allowedHostsMiddleware, which applies when it listens on a
 * loopback address: a Host naming this machine or a private address
 * passes, anything else is refused, whatever the port.
 */
static int
host_allowed(const char *hostport)
{
	char host[256];
	const char *end;
	size_t n;
	struct in_addr a4;
	struct in6_addr a6;
	uint32_t ip;

	if (hostport == NULL || *hostport == '\0')
		return 1;
	if (hostport[0] == '[') {
		if ((end = strchr(hostport, ']')) == NULL)
			return 0;
		hostport++;
	} else if ((end = strchr(hostport, ':')) == NULL ||
	    strchr(end + 1, ':') != NULL)
		end = hostport + strlen(hostport);
	n = (size_t)(end - hostport);
	if (n == 0)
		return 1;
	if (n >= sizeof(host))
		return 0;
	memcpy(host, hostport, n);
	host[n] = '\0';

	if (inet_pton(AF_INET, host, &a4) == 1) {
		ip = ntohl(a4.s_addr);
		return (ip >> 24) == 127 || (ip >> 24) == 10 || ip == 0 ||
		    (ip >> 20) == (172 << 4 | 1) || (ip >> 16) == (192 << 8 | 168);
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6) ||
		    (a6.s6_addr[0] & 0xfe) == 0xfc)
			return 1;
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			ip = (uint32_t)a6.s6_addr[12] << 24 |
			    (uint32_t)a6.s6_addr[13] << 16 |
			    (uint32_t)a6.s6_addr[14] << 8 | a6.s6_addr[15];
			return (ip >> 24) == 127 || (ip >> 24) == 10 ||
			    (ip >> 20) == (172 << 4 | 1) ||
			    (ip >> 16) == (192 << 8 | 168);
		}
		return 0;
	}
	if (strcasecmp(host, "localhost") == 0 ||
	    strcasecmp(host, hostname) == 0)
		return 1;
	if (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0)
		return 1;
	if (n > 6 && strcasecmp(host + n - 6, ".local") == 0)
		return 1;
	if (n > 9 && strcasecmp(host + n - 9, ".internal") == 0)
		return 1;
	return 0;
}

static int
parse_fault(const char *s, enum fault *f)
{
	size_t i;

	for (i = 0; i < sizeof(fault_names) / sizeof(fault_names[0]); i++)
		if (strcasecmp(s, fault_names[i]) == 0) {
			*f = (enum fault)i;
			return 0;
		}
	return -1;
}

/* A non-negative number, or the fallback when s is not one. */
static long
parse_ms(const char *s, long fallback)
{
	char *e;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return fallback;
	errno = 0;
	v = strtol(s, &e, 10);
	if (errno != 0 || *e != '\0')
		return fallback;
	return v;
}

/* FNV-1a, so that the fake's digests and vectors are deterministic. */
static uint64_t
hash_str(const char *s, size_t len, uint64_t seed)
{
	uint64_t h = 1469598103934665603ull ^ seed;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* 64 hex digits derived from a name, for digests. */
static void
hex_digest(const char *s, char out[65])
{
	uint64_t h = hash_str(s, strlen(s), 0);
	int i;

	for (i = 0; i < 4; i++) {
		h = mix64(h + (uint64_t)i);
		snprintf(out + 16 * i, 17, "%016llx", (unsigned long long)h);
	}
}

/*
 * The canonical form of a model name: the default registry and
 * namespace dropped, and the tag ":latest" added when there is none.
 */
static char *
model_normalise(const char *name)
{
	const char *slash, *base = name;
	size_t n;
	char *out;

	if (strncasecmp(base, "registry.ollama.ai/", 19) == 0)
		base += 19;
	if (strncasecmp(base, "library/", 8) == 0)
		base += 8;
	slash = strrchr(base, '/');
	if (strchr(slash ? slash : base, ':') != NULL)
		return xstrdup(base);
	n = strlen(base);
	out = xmalloc(n + 8);
	memcpy(out, base, n);
	memcpy(out + n, ":latest", 8);
	return out;
}

static struct model *
model_find(const char *name)
{
	char *norm;
	size_t i;

	if (name == NULL || *name == '\0')
		return NULL;
	norm = model_normalise(name);
	for (i = 0; i < nmodels; i++)
		if (strcasecmp(models[i].name, norm) == 0) {
			free(norm);
			return &models[i];
		}
	free(norm);
	return NULL;
}

static struct model *
model_add(const char *name, int embed)
{
	struct model *m;

	if ((m = model_find(name)) != NULL) {
		m->modified = time(NULL);
		return m;
	}
	models = realloc(models, (nmodels + 1) * sizeof(*models));
	if (models == NULL)
		fatal("out of memory");
	m = &models[nmodels++];
	memset(m, 0, sizeof(*m));
	m->name = model_normalise(name);
	m->embed = embed;
	m->modified = time(NULL);
	return m;
}

static void
model_remove(struct model *m)
{
	size_t i = (size_t)(m - models);

	free(m->name);
	memmove(&models[i], &models[i + 1],
	    (nmodels - i - 1) * sizeof(*models));
	nmodels--;
}

static void
models_free(void)
{
	size_t i;

	for (i = 0; i < nmodels; i++)
		free(models[i].name);
	free(models);
	models = NULL;
	nmodels = 0;
}

/* Replace the models with a comma-separated list, oldest last. */
static void
models_set(const char *list)
{
	char *copy = xstrdup(list), *p, *save = NULL;
	struct model *m;
	time_t t = time(NULL);
	size_t i;

	models_free();
	for (p = strtok_r(copy, ",", &save); p != NULL;
	    p = strtok_r(NULL, ",", &save)) {
		while (*p == ' ')
			p++;
		if (*p != '\0')
			model_add(p, strstr(p, "embed") != NULL);
	}
	for (i = 0; i < nmodels; i++) {
		m = &models[i];
		m->modified = t - (time_t)i * 3600;
	}
	free(copy);
}

/* RFC 3339 in local time with Go's "+hh:mm" offset, as /api/tags has. */
static void
time_local(time_t t, char *out, size_t len)
{
	struct tm tm;
	long off;
	size_t n;

	localtime_r(&t, &tm);
	n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	off = tm.tm_gmtoff;
	if (off == 0)
		snprintf(out + n, len - n, "Z");
	else
		snprintf(out + n, len - n, "%c%02ld:%02ld", off < 0 ? '-' : '+',
		    labs(off) / 3600, labs(off) % 3600 / 60);
}

/* Now in UTC with nanoseconds, trailing zeros trimmed, as created_at. */
static void
time_utc_now(char *out, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;
	char frac[16];
	int i;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(frac, sizeof(frac), "%09ld", ts.tv_nsec);
	for (i = 8; i >= 0 && frac[i] == '0'; i--)
		frac[i] = '\0';
	if (frac[0] != '\0')
		snprintf(out + n, len - n, ".%sZ", frac);
	else
		snprintf(out + n, len - n, "Z");
}

/* The details object that /api/tags, /api/ps and /api/show share. */
static json_t *
model_details(const struct model *m)
{
	char family[32], psize[16];
	const char *base = m->name, *tag, *p;
	size_t n = 0;

	if ((p = strrchr(base, '/')) != NULL)
		base = p + 1;
	if (m->embed)
		snprintf(family, sizeof(family), "nomic-bert");
	else {
		while (n < sizeof(family) - 1 && isalpha((unsigned char)base[n]))
			n++;
		memcpy(family, base, n);
		family[n] = '\0';
		if (n == 0)
			snprintf(family, sizeof(family), "llama");
	}
	snprintf(psize, sizeof(psize), m->embed ? "137M" : "3.2B");
	if ((tag = strrchr(base, ':')) != NULL) {
		tag++;
		n = strspn(tag, "0123456789.");
		if (n > 0 && n < 8 && (tag[n] == 'b' || tag[n] == 'B' ||
		    tag[n] == 'm' || tag[n] == 'M') && tag[n + 1] == '\0')
			snprintf(psize, sizeof(psize), "%.*s%c", (int)n, tag,
			    toupper((unsigned char)tag[n]));
	}
	return json_pack("{sssssss[s]ssss}", "parent_model", "",
	    "format", "gguf", "family", family, "families", family,
	    "parameter_size", psize,
	    "quantization_level", m->embed ? "F16" : "Q4_K_M");
}

static json_int_t
model_size(const struct model *m)
{
	return (json_int_t)(300000000 +
	    hash_str(m->name, strlen(m->name), 7) % 3000000000ull);
}

static json_t *
model_caps(const struct model *m)
{
	if (m->embed)
		return json_pack("[s]", "embedding");
	return json_pack("[ss]", "completion", "tools");
}

/*
 * The body of a request as a JSON object, or NULL after answering with
 * the error Ollama gives for an empty or malformed body.
 */
static json_t *
body_json(struct conn *c)
{
	struct req *r = c->req;
	json_error_t err;
	json_t *o;

	if (r->body.len == 0) {
		reply_error(c, 400, "missing request body");
		return NULL;
	}
	o = json_loadb(r->body.data, r->body.len,
	    JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL, &err);
	if (o == NULL) {
		reply_error(c, 400, err.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		reply_errorf(c, 400, "json: cannot unmarshal %s into Go value",
		    json_is_array(o) ? "array" : json_is_string(o) ? "string" :
		    json_is_number(o) ? "number" : json_is_boolean(o) ? "bool" :
		    "null");
		json_decref(o);
		return NULL;
	}
	return o;
}

static const char *
jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A string field with a deprecated alias, as "model" and "name". */
static const char *
jstr2(json_t *o, const char *key, const char *alias)
{
	const char *s = jstr(o, key);

	if (s == NULL || *s == '\0')
		s = jstr(o, alias);
	return s != NULL ? s : "";
}

static int
jbool(json_t *o, const char *key, int fallback)
{
	json_t *v = json_object_get(o, key);

	return json_is_boolean(v) ? json_is_true(v) : fallback;
}

static long
words(const char *s)
{
	long n = 0;
	int in = 0;

	for (; s != NULL && *s != '\0'; s++) {
		if (isspace((unsigned char)*s))
			in = 0;
		else if (!in) {
			in = 1;
			n++;
		}
	}
	return n;
}

/* The words in a message's content, a string or an array of parts. */
static long
content_words(json_t *content)
{
	json_t *part;
	size_t i;
	long n = 0;

	if (json_is_string(content))
		return words(json_string_value(content));
	json_array_foreach(content, i, part)
		n += words(jstr(part, "text"));
	return n;
}

/* keep_alive 0 (or "0", "0s", "0m"...) asks for an unload. */
static int
keep_alive_zero(json_t *o)
{
	json_t *v = json_object_get(o, "keep_alive");
	const char *s;

	if (json_is_number(v))
		return json_number_value(v) == 0;
	if ((s = json_string_value(v)) != NULL)
		return strtod(s, NULL) == 0 && strspn(s, "0.") > 0;
	return 0;
}

static char *
json_quote(const char *s)
{
	json_t *j = json_string(s);
	char *out;

	if (j == NULL)
		return xstrdup("\"\"");
	out = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
	json_decref(j);
	if (out == NULL)
		fatal("json_dumps failed");
	return out;
}

static void
model_touch(struct model *m, int unload)
{
	m->loaded_until = unload ? 0 : time(NULL) + 300;
}

/* Apply the token limit of a request, if it has one. */
static void
gen_limit(struct gen *g, json_t *limit)
{
	json_int_t n;

	if (!json_is_integer(limit) && !json_is_real(limit))
		return;
	n = json_is_integer(limit) ? json_integer_value(limit) :
	    (json_int_t)json_real_value(limit);
	if (n >= 0 && n < g->ntok) {
		g->ntok = (long)n;
		g->length_cut = 1;
	}
}

static struct gen *
gen_new(struct conn *c, enum gen_kind kind, const char *model)
{
	static unsigned next_id;
	struct gen *g = xcalloc(1, sizeof(*g));

	g->kind = kind;
	g->ntok = c->req->set.tokens;
	g->model_json = json_quote(model != NULL ? model : "");
	g->created = (long)time(NULL);
	g->id = next_id++ % 999;
	g->prompt_count = 1;
	return g;
}

/*
 * Begin a response that takes time. Nothing is written before the first
 * token is ready, as with Ollama, whose headers wait for the model.
 */
static void
gen_start(struct conn *c, struct gen *g)
{
	c->gen = g;
	gen_begin(c);
}

/* The generation of a connection may start: it has its model. */
static void
gen_begin(struct conn *c)
{
	struct gen *g = c->gen;
	struct req *r = c->req;

	g->t_begin = now_ns();
	if (g->kind == GEN_LOAD) {
		load_reply(c, g->name, g->load_chat, 0);
		return;
	}
	if (g->kind == GEN_PS) {
		ps_reply(c);
		return;
	}
	if (r->set.fault == FAULT_HANG) {
		g->phase = PHASE_HANG;
		return;
	}
	g->phase = PHASE_WAIT;
	if (r->set.ttft_ms > 0)
		timer_set(c, r->set.ttft_ms);
	else
		gen_ready(c);
}

static const char *
gen_reason(const struct gen *g)
{
	return g->length_cut ? "length" : "stop";
}

/* The first token is ready: start the response. */
static void
gen_ready(struct conn *c)
{
	struct gen *g = c->gen;
	struct req *r = c->req;

	g->t_first = now_ns();
	if (r->set.fault == FAULT_SLOW_HEADERS) {
		/* The dribbled headers are the slowness; tokens come fast. */
		r->set.delay_ms = 0;
	}
	if (!g->stream) {
		if (r->set.fault == FAULT_CLOSE) {
			req_finish(r, REQ_DONE);
			g->phase = PHASE_HANG;
			c->close_after = 1;
			return;
		}
		if (r->set.fault == FAULT_ERROR) {
			reply_error(c, 500, "fake error");
			return;
		}
		if (g->kind == GEN_CANNED) {
			canned_ready(c);
			reply(c, g->canned_status, g->canned_type,
			    g->canned.data, g->canned.len);
			return;
		}
	} else {
		resp_head(c, 200, g->kind == GEN_V1CHAT ||
		    g->kind == GEN_V1COMPLETION || g->kind == GEN_MESSAGES ||
		    g->kind == GEN_RESPONSES ? "text/event-stream" :
		    "application/x-ndjson", -1);
		family_open(c);
	}
	g->phase = PHASE_RUN;
	gen_pump(c);
}

static void
gen_timer(struct conn *c)
{
	if (c->gen->phase == PHASE_START)
		gen_begin(c);
	else if (c->gen->phase == PHASE_WAIT)
		gen_ready(c);
	/* In PHASE_RUN the delay between tokens is over: conn_drive pumps. */
}

/* One stream line or SSE event, framed for the response. */
static void
gen_emit(struct conn *c, struct buf *line)
{
	resp_body(c, line->data, line->len);
	line->len = line->off = 0;
}

static void
sse_prefix(struct gen *g, struct buf *b, const char *object)
{
	buf_printf(b, "data: {\"id\":\"%s-%u\",\"object\":\"%s\","
	    "\"created\":%ld,\"model\":%s,\"system_fingerprint\":\"fp_ollama\",",
	    g->kind == GEN_V1CHAT ? "chatcmpl" : "cmpl", g->id, object,
	    g->created, g->model_json);
}

static void
progress_line(struct gen *g, long i, struct buf *b)
{
	char dig[65];
	long total = 1000000 + (long)(hash_str(g->name, strlen(g->name), 3) %
	    1000000000);

	hex_digest(g->name, dig);
	if (g->progress_op == 0) {
		switch (i) {
		case 0:
			/* A line as long as a test asks for, to test bounds. */
			buf_addstr(b, "{\"status\":\"pulling manifest\"");
			if (g->pad > 0) {
				buf_addstr(b, ",\"pad\":\"");
				for (long k = 0; k < g->pad; k++)
					buf_addstr(b, "x");
				buf_addstr(b, "\"");
			}
			buf_addstr(b, "}\n");
			break;
		case 1: case 2: case 3:
			buf_printf(b, "{\"status\":\"pulling %.12s\","
			    "\"digest\":\"sha256:%s\",\"total\":%ld,"
			    "\"completed\":%ld}\n", dig + 7, dig, total,
			    i == 1 ? 0 : i == 2 ? total / 2 : total);
			break;
		case 4:
			buf_addstr(b,
			    "{\"status\":\"verifying sha256 digest\"}\n");
			break;
		default:
			buf_addstr(b, "{\"status\":\"writing manifest\"}\n");
			break;
		}
	} else if (g->progress_op == 1) {
		switch (i) {
		case 0:
			buf_addstr(b, "{\"status\":\"retrieving manifest\"}\n");
			break;
		case 1: case 2:
			buf_printf(b, "{\"status\":\"pushing %.12s\","
			    "\"digest\":\"sha256:%s\",\"total\":%ld,"
			    "\"completed\":%ld}\n", dig, dig, total,
			    i == 1 ? 0 : total);
			break;
		default:
			buf_addstr(b, "{\"status\":\"pushing manifest\"}\n");
			break;
		}
	} else {
		switch (i) {
		case 0:
			buf_printf(b, "{\"status\":\"using existing layer "
			    "sha256:%s\"}\n", dig);
			break;
		case 1:
			hex_digest(g->model_json, dig);
			buf_printf(b, "{\"status\":\"creating new layer "
			    "sha256:%s\"}\n", dig);
			break;
		default:
			buf_addstr(b, "{\"status\":\"writing manifest\"}\n");
			break;
		}
	}
}

static void
gen_token(struct conn *c, struct buf *b)
{
	struct gen *g = c->gen;
	long i = g->produced;
	char ts[64];

	g->produced++;
	c->req->tokens_sent++;
	if (g->kind == GEN_PROGRESS) {
		if (g->stream) {
			progress_line(g, i, b);
			gen_emit(c, b);
		}
		return;
	}
	if (!g->stream) {
		buf_printf(&g->text, "tok%ld ", i);
		return;
	}
	switch (g->kind) {
	case GEN_GENERATE:
		time_utc_now(ts, sizeof(ts));
		buf_printf(b, "{\"model\":%s,\"created_at\":\"%s\","
		    "\"response\":\"tok%ld \",\"done\":false}\n",
		    g->model_json, ts, i);
		break;
	case GEN_CHAT:
		time_utc_now(ts, sizeof(ts));
		buf_printf(b, "{\"model\":%s,\"created_at\":\"%s\","
		    "\"message\":{\"role\":\"assistant\",\"content\":"
		    "\"tok%ld \"},\"done\":false}\n", g->model_json, ts, i);
		break;
	case GEN_V1CHAT:
		sse_prefix(g, b, "chat.completion.chunk");
		buf_printf(b, "\"choices\":[{\"index\":0,\"delta\":{\"role\":"
		    "\"assistant\",\"content\":\"tok%ld \"},"
		    "\"finish_reason\":null}]}\n\n", i);
		break;
	case GEN_MESSAGES:
		buf_printf(b, "event: content_block_delta\ndata: {\"type\":"
		    "\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
		    "\"text_delta\",\"text\":\"tok%ld \"}}\n\n", i);
		break;
	case GEN_RESPONSES:
		buf_printf(b, "event: response.output_text.delta\ndata: {\"type\":"
		    "\"response.output_text.delta\",\"sequence_number\":%ld,"
		    "\"item_id\":\"msg_%u\",\"output_index\":0,"
		    "\"content_index\":0,\"delta\":\"tok%ld \"}\n\n", g->seq++,
		    g->id, i);
		break;
	case GEN_V1COMPLETION:
		sse_prefix(g, b, "text_completion");
		buf_printf(b, "\"choices\":[{\"text\":\"tok%ld \",\"index\":0,"
		    "\"finish_reason\":null}]%s}\n\n", i, g->include_usage ?
		    ",\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,"
		    "\"total_tokens\":0}" : "");
		break;
	default:
		break;
	}
	gen_emit(c, b);
}

/* Ollama's final statistics, each left out when it is zero. */
static void
gen_metrics(struct conn *c, struct buf *b)
{
	struct gen *g = c->gen;
	uint64_t now = now_ns(), start = c->req->t_start;
	long long v[6];
	static const char *names[6] = {
		"total_duration", "load_duration", "prompt_eval_count",
		"prompt_eval_duration", "eval_count", "eval_duration"
	};
	int i;

	if (sched_on) {
		/* The real wait for a load, and real time overall. */
		v[1] = (long long)g->load_ns;
		v[0] = (long long)(now - start);
		v[3] = (long long)(g->t_first - g->t_begin);
	} else {
		/* The load is pretend, so it is added on top of real time. */
		v[1] = 1000000;
		v[0] = (long long)(now - start) + v[1];
		v[3] = (long long)(g->t_first - start);
	}
	v[2] = g->prompt_count;
	v[4] = g->produced;
	v[5] = g->produced > 0 ? (long long)(now - g->t_first) : 0;
	for (i = 0; i < 6; i++)
		if (v[i] != 0)
			buf_printf(b, ",\"%s\":%lld", names[i], v[i]);
}

static void
gen_context(struct gen *g, struct buf *b)
{
	long i, n = g->prompt_count + g->produced;

	/* Real contexts hold every token; a few stand in for them. */
	if (n > 16)
		n = 16;
	buf_addstr(b, ",\"context\":[");
	for (i = 0; i < n; i++)
		buf_printf(b, "%s%ld", i ? "," : "", 100 + i);
	buf_addstr(b, "]");
}

static void
usage_json(struct gen *g, struct buf *b)
{
	buf_printf(b, "\"usage\":{\"prompt_tokens\":%ld,"
	    "\"completion_tokens\":%ld,\"total_tokens\":%ld}",
	    g->prompt_count, g->produced, g->prompt_count + g->produced);
}

/* The end of a generation: the final line, or the whole body. */
static void
gen_final(struct conn *c, struct buf *b)
{
	struct gen *g = c->gen;
	char ts[64];
	struct model *m;

	switch (g->kind) {
	case GEN_GENERATE:
	case GEN_CHAT:
		time_utc_now(ts, sizeof(ts));
		buf_printf(b, "{\"model\":%s,\"created_at\":\"%s\",",
		    g->model_json, ts);
		if (g->kind == GEN_GENERATE)
			buf_printf(b, "\"response\":\"%s\"",
			    g->stream ? "" : g->text.data ? g->text.data : "");
		else
			buf_printf(b, "\"message\":{\"role\":\"assistant\","
			    "\"content\":\"%s\"}", g->stream ? "" :
			    g->text.data ? g->text.data : "");
		buf_printf(b, ",\"done\":true,\"done_reason\":\"%s\"",
		    gen_reason(g));
		if (g->kind == GEN_GENERATE)
			gen_context(g, b);
		gen_metrics(c, b);
		buf_addstr(b, "}");
		if (g->stream) {
			buf_addstr(b, "\n");
			gen_emit(c, b);
			resp_end(c);
		} else {
			reply(c, 200, "application/json; charset=utf-8",
			    b->data, b->len);
			b->len = 0;
		}
		return;
	case GEN_V1CHAT:
		if (g->stream) {
			sse_prefix(g, b, "chat.completion.chunk");
			buf_printf(b, "\"choices\":[{\"index\":0,\"delta\":{},"
			    "\"finish_reason\":\"%s\"}]}\n\n", gen_reason(g));
			if (g->include_usage) {
				sse_prefix(g, b, "chat.completion.chunk");
				buf_addstr(b, "\"choices\":[],");
				usage_json(g, b);
				buf_addstr(b, "}\n\n");
			}
			buf_addstr(b, "data: [DONE]\n\n");
			gen_emit(c, b);
			resp_end(c);
			return;
		}
		buf_printf(b, "{\"id\":\"chatcmpl-%u\",\"object\":"
		    "\"chat.completion\",\"created\":%ld,\"model\":%s,"
		    "\"system_fingerprint\":\"fp_ollama\",\"choices\":[{"
		    "\"index\":0,\"message\":{\"role\":\"assistant\","
		    "\"content\":\"%s\"},\"finish_reason\":\"%s\"}],", g->id,
		    g->created, g->model_json, g->text.data ? g->text.data : "",
		    gen_reason(g));
		usage_json(g, b);
		buf_addstr(b, "}\n");
		reply(c, 200, "application/json", b->data, b->len);
		b->len = 0;
		return;
	case GEN_V1COMPLETION:
		if (g->stream) {
			sse_prefix(g, b, "text_completion");
			buf_printf(b, "\"choices\":[{\"text\":\"\",\"index\":0,"
			    "\"finish_reason\":\"%s\"}]%s}\n\n", gen_reason(g),
			    g->include_usage ? ",\"usage\":{\"prompt_tokens\":0,"
			    "\"completion_tokens\":0,\"total_tokens\":0}" : "");
			if (g->include_usage) {
				sse_prefix(g, b, "text_completion");
				buf_addstr(b, "\"choices\":[],");
				usage_json(g, b);
				buf_addstr(b, "}\n\n");
			}
			buf_addstr(b, "data: [DONE]\n\n");
			gen_emit(c, b);
			resp_end(c);
			return;
		}
		buf_printf(b, "{\"id\":\"cmpl-%u\",\"object\":"
		    "\"text_completion\",\"created\":%ld,\"model\":%s,"
		    "\"system_fingerprint\":\"fp_ollama\",\"choices\":[{"
		    "\"text\":\"%s\",\"index\":0,\"finish_reason\":\"%s\"}],",
		    g->id, g->created, g->model_json,
		    g->text.data ? g->text.data : "", gen_reason(g));
		usage_json(g, b);
		buf_addstr(b, "}\n");
		reply(c, 200, "application/json", b->data, b->len);
		b->len = 0;
		return;
	case GEN_MESSAGES:
	case GEN_RESPONSES:
		family_final(c, b);
		return;
	case GEN_PROGRESS:
		if (g->progress_op == 0)
			model_add(g->name, strstr(g->name, "embed") != NULL);
		else if (g->progress_op == 2) {
			m = model_add(g->name, g->embed_from);
			m->embed = g->embed_from;
		}
		if (g->stream) {
			buf_addstr(b, "{\"status\":\"success\"}\n");
			gen_emit(c, b);
			resp_end(c);
		} else
			reply(c, 200, "application/json; charset=utf-8",
			    "{\"status\":\"success\"}", 20);
		return;
	default:
		return;
	}
}

/*
 * A fault that strikes halfway through a stream: either the connection
 * is cut without the end of the chunked body, or an error is reported
 * the way Ollama reports one once the status line has gone.
 */
static void
gen_break(struct conn *c, struct buf *b)
{
	struct gen *g = c->gen;
	struct req *r = c->req;

	if (r->set.fault == FAULT_CLOSE) {
		req_finish(r, REQ_DONE);
		g->phase = PHASE_HANG;
		c->close_after = 1;
		return;
	}
	switch (g->kind) {
	case GEN_V1CHAT:
		/*
		 * Ollama's SSE writer decodes the error line as an empty
		 * chunk, sends that, and ends without a finish or [DONE].
		 */
		sse_prefix(g, b, "chat.completion.chunk");
		buf_addstr(b, "\"choices\":[{\"index\":0,\"delta\":{\"role\":"
		    "\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}"
		    "\n\n");
		break;
	case GEN_V1COMPLETION:
		sse_prefix(g, b, "text_completion");
		buf_addstr(b, "\"choices\":[{\"text\":\"\",\"index\":0,"
		    "\"finish_reason\":null}]}\n\n");
		break;
	case GEN_MESSAGES:
	case GEN_RESPONSES:
		/* Like the OpenAI writer: the stream just stops, unfinished. */
		break;
	default:
		buf_addstr(b, "{\"error\":\"fake mid-stream error\"}\n");
		break;
	}
	gen_emit(c, b);
	resp_end(c);
}

/*
 * Produce as much of a generation as is due: everything at once when
 * there is no delay, one token per timer tick otherwise, and never more
 * while the client has not taken what it was already sent.
 */
static void
gen_pump(struct conn *c)
{
	struct buf *line = &scratch;
	struct gen *g = c->gen;
	struct req *r = c->req;
	long half = (g->ntok + 1) / 2;
	int breaks;

	breaks = g->stream && (r->set.fault == FAULT_CLOSE ||
	    r->set.fault == FAULT_ERROR);
	while (c->gen == g && g->phase == PHASE_RUN && c->hidx == SIZE_MAX &&
	    c->drip == 0 && !c->close_after &&
	    buf_pending(&c->out) < OUT_HIGH) {
		if (breaks && g->produced == half) {
			gen_break(c, line);
			return;
		}
		if (g->produced >= g->ntok) {
			gen_final(c, line);
			return;
		}
		gen_token(c, line);
		if (r->set.delay_ms > 0 && g->produced < g->ntok)
			timer_set(c, r->set.delay_ms);
	}
}

/*
 * The scheduler, on when one of its options is given: Ollama's, in
 * small. A request that needs a model joins one queue in arrival
 * order. The request at its head is handed to its model's runner if
 * that is in memory with the same context length; otherwise it waits
 * while the model is loaded, after evicting the least recently used
 * idle runner if there is no room, and everything behind it waits too.
 * A request handed to its runner takes one of its slots, or waits for
 * one without limit. Only the queue itself is bounded (--max-queue).
 * A client that leaves gives up its place at once; a load it started
 * goes on, and the model then idles for its keep_alive.
 */

/*
 * A Go duration ("300ms", "1h30m", "-5m", "0"), in seconds. Returns 0,
 * or -1 with Go's complaint in err.
 */
static int
duration_parse(const char *str, double *secs, char *err, size_t errlen)
{
	static const struct {
		const char	*unit;
		double		 scale;
	} units[] = {
		{ "ns", 1e-9 }, { "us", 1e-6 }, { "\xc2\xb5s", 1e-6 },
		{ "\xce\xbcs", 1e-6 }, { "ms", 1e-3 }, { "s", 1 },
		{ "m", 60 }, { "h", 3600 }
	};
	const char *s = str;
	double total = 0, v, frac;
	int neg = 0, digits;
	size_t i, n;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (strcmp(s, "0") == 0) {
		*secs = 0;
		return 0;
	}
	if (*s == '\0')
		goto invalid;
	while (*s != '\0') {
		if (*s != '.' && !isdigit((unsigned char)*s))
			goto invalid;
		v = 0;
		digits = 0;
		for (; isdigit((unsigned char)*s); s++, digits++)
			v = v * 10 + (*s - '0');
		if (*s == '.') {
			s++;
			for (frac = 0.1; isdigit((unsigned char)*s);
			    s++, digits++, frac /= 10)
				v += (*s - '0') * frac;
		}
		if (digits == 0)
			goto invalid;
		for (n = 0; s[n] != '\0' && s[n] != '.' &&
		    !isdigit((unsigned char)s[n]); n++)
			;
		if (n == 0) {
			snprintf(err, errlen, "time: missing unit in duration "
			    "\"%s\"", str);
			return -1;
		}
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strlen(units[i].unit) == n &&
			    strncmp(s, units[i].unit, n) == 0)
				break;
		if (i == sizeof(units) / sizeof(units[0])) {
			snprintf(err, errlen, "time: unknown unit \"%.*s\" in "
			    "duration \"%s\"", (int)n, s, str);
			return -1;
		}
		total += v * units[i].scale;
		s += n;
	}
	*secs = neg ? -total : total;
	return 0;
invalid:
	snprintf(err, errlen, "time: invalid duration \"%s\"", str);
	return -1;
}

/*
 * A request's keep_alive: absent or null is the default, a number is
 * seconds, a string is a Go duration; anything negative is forever.
 * Returns -1 with Ollama's message when it cannot be read.
 */
static int
keep_alive_parse(json_t *v, double *secs, char *err, size_t errlen)
{
	const char *s;

	*secs = sched_keep_alive;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_number(v)) {
		*secs = json_number_value(v);
	} else if ((s = json_string_value(v)) != NULL) {
		if (duration_parse(s, secs, err, errlen) == -1)
			return -1;
	} else {
		snprintf(err, errlen, "Unsupported type: '%s'",
		    json_is_boolean(v) ? "bool" : json_is_array(v) ?
		    "[]interface {}" : "map[string]interface {}");
		return -1;
	}
	if (*secs < 0 || *secs > (double)FOREVER_S)
		*secs = -1;
	return 0;
}

/* --load-ms MS for every model, or --load-ms MODEL=MS for one. */
static void
load_time_set(const char *arg)
{
	const char *eq = strrchr(arg, '=');
	char *name = NULL, *tmp;
	long ms;

	if ((ms = parse_ms(eq != NULL ? eq + 1 : arg, -1)) < 0)
		usage();
	if (eq != NULL) {
		if (eq == arg)
			usage();
		tmp = xstrdup(arg);
		tmp[eq - arg] = '\0';
		name = model_normalise(tmp);
		free(tmp);
	}
	load_times = realloc(load_times, (nload_times + 1) *
	    sizeof(*load_times));
	if (load_times == NULL)
		fatal("out of memory");
	load_times[nload_times].name = name;
	load_times[nload_times++].ms = ms;
}

/* The load time of a model: its own, else the general one, else 0. */
static long
load_time_for(const char *name)
{
	long ms = 0;
	size_t i;

	for (i = 0; i < nload_times; i++) {
		if (load_times[i].name == NULL)
			ms = load_times[i].ms;
		else if (strcasecmp(load_times[i].name, name) == 0)
			return load_times[i].ms;
	}
	return ms;
}

static void
load_count_add(const char *name)
{
	size_t i;

	for (i = 0; i < nload_counts; i++)
		if (strcmp(load_counts[i].name, name) == 0) {
			load_counts[i].n++;
			return;
		}
	load_counts = realloc(load_counts, (nload_counts + 1) *
	    sizeof(*load_counts));
	if (load_counts == NULL)
		fatal("out of memory");
	load_counts[nload_counts].name = xstrdup(name);
	load_counts[nload_counts++].n = 1;
}

static void
load_counts_clear(void)
{
	size_t i;

	for (i = 0; i < nload_counts; i++)
		free(load_counts[i].name);
	free(load_counts);
	load_counts = NULL;
	nload_counts = 0;
	stat_unloads = 0;
}

static struct runner *
runner_find(const char *name)
{
	struct runner *r;

	TAILQ_FOREACH(r, &runners, entry)
		if (strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

/* Start loading the model of the request at the head of the queue. */
static void
runner_load(struct conn *c)
{
	struct gen *g = c->gen;
	struct runner *r = xcalloc(1, sizeof(*r));

	r->name = xstrdup(g->sname);
	r->embed = g->embed;
	r->num_ctx = g->num_ctx;
	r->keep_alive = g->keep_alive;
	r->loading = 1;
	r->load_done = now_ns() + (uint64_t)load_time_for(r->name) * 1000000;
	r->used = now_ms();
	TAILQ_INIT(&r->waiting);
	TAILQ_INSERT_TAIL(&runners, r, entry);
	nrunners++;
	sched_loading = r;
	load_count_add(r->name);
	if (!quiet)
		fprintf(stderr, "fake-ollama: loading %s num_ctx=%ld\n",
		    r->name, r->num_ctx);
}

/*
 * Make models resident before the first request, as a server that was
 * warmed up before the benchmark or test began: idle, with the default
 * keep_alive running from now, and not counted as loads.
 */
static void
runners_preload(const char *list)
{
	char *copy = xstrdup(list), *p, *save = NULL;
	struct model *m;
	struct runner *r;

	for (p = strtok_r(copy, ",", &save); p != NULL;
	    p = strtok_r(NULL, ",", &save)) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			continue;
		if ((m = model_find(p)) == NULL)
			fatal("--preload: %s is not one of the models (-m)", p);
		if (runner_find(m->name) != NULL)
			continue;
		if (sched_max_loaded > 0 &&
		    nrunners >= (size_t)sched_max_loaded)
			fatal("--preload: more models than --max-loaded %ld",
			    sched_max_loaded);
		r = xcalloc(1, sizeof(*r));
		r->name = xstrdup(m->name);
		r->embed = m->embed;
		r->num_ctx = DEFAULT_CTX;
		r->keep_alive = sched_keep_alive;
		r->idle = 1;
		r->used = now_ms();
		if (r->keep_alive >= 0)
			r->expires = r->used + (uint64_t)(r->keep_alive * 1000);
		TAILQ_INIT(&r->waiting);
		TAILQ_INSERT_TAIL(&runners, r, entry);
		nrunners++;
	}
	free(copy);
}

/* Only an idle runner is unloaded: nothing refers to it. */
static void
runner_unload(struct runner *r)
{
	TAILQ_REMOVE(&runners, r, entry);
	nrunners--;
	stat_unloads++;
	if (!quiet)
		fprintf(stderr, "fake-ollama: unloaded %s\n", r->name);
	free(r->name);
	free(r);
}

/*
 * Hand a request to its runner, which it then holds until it ends. If
 * it had to wait in the queue, that wait is its load_duration.
 */
static void
runner_take(struct runner *r, struct conn *c)
{
	struct gen *g = c->gen;

	g->runner = r;
	if (c != sched_submitting)
		g->load_ns = now_ns() - g->t_submit;
	r->refs++;
	r->idle = 0;
	r->used = now_ms();
	r->keep_alive = g->keep_alive;
	if (g->kind == GEN_LOAD || sched_parallel == 0 ||
	    r->running < sched_parallel)
		sched_admit(c);
	else {
		g->sstate = SCHED_SLOT;
		TAILQ_INSERT_TAIL(&r->waiting, c, qentry);
	}
}

/*
 * When a runner expires, as /api/ps shows it: when its idle time
 * is up, or while it is busy or loading, now plus its keep_alive.
 */
static time_t
runner_expires_at(const struct runner *r, time_t now, uint64_t mono)
{
	if (r->keep_alive < 0)
		return now + (time_t)FOREVER_S;
	if (!r->idle)
		return now + (time_t)r->keep_alive;
	return now + (time_t)((r->expires > mono ? r->expires - mono : 0) +
	    999) / 1000;
}

/* The scheduler's timer: a load has ended, or an idle model expires. */
static void
sched_event(struct handler *h, uint32_t ev)
{
	struct runner *r = sched_loading;
	struct conn *c;
	uint64_t n;

	(void)h;
	(void)ev;
	if (read(sched_fd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		fatal("timerfd: %s", strerror(errno));
	if (r != NULL && r->load_done <= now_ns()) {
		r->loading = 0;
		sched_loading = NULL;
		if (!quiet)
			fprintf(stderr, "fake-ollama: loaded %s\n", r->name);
		while ((c = TAILQ_FIRST(&ps_waiting)) != NULL) {
			TAILQ_REMOVE(&ps_waiting, c, qentry);
			c->gen->sstate = SCHED_NONE;
			c->gen->phase = PHASE_START;
			timer_set(c, 0);
		}
	}
	sched_run();
}

/*
 * Take a request that needs a model: answer it at once when the
 * scheduler is off, as the fake always did; otherwise queue it, or
 * refuse it as Ollama does when the queue is full. o is the request,
 * or NULL where its keep_alive and options do not count.
 */
static void
sched_submit(struct conn *c, struct gen *g, json_t *o, struct model *m)
{
	json_t *ctx;
	char err[256];

	if (!sched_on) {
		model_touch(m, o != NULL && keep_alive_zero(o));
		gen_start(c, g);
		return;
	}
	if (keep_alive_parse(json_object_get(o, "keep_alive"),
	    &g->keep_alive, err, sizeof(err)) == -1) {
		gen_free(g);
		reply_error(c, 400, err);
		return;
	}
	ctx = json_object_get(json_object_get(o, "options"), "num_ctx");
	if (ctx != NULL && !json_is_null(ctx) && !json_is_number(ctx)) {
		gen_free(g);
		reply_error(c, 500, "option \"num_ctx\" must be of type "
		    "integer");
		return;
	}
	g->num_ctx = ctx != NULL ? (long)json_number_value(ctx) : 0;
	if (g->num_ctx <= 0)
		g->num_ctx = DEFAULT_CTX;
	/* The head is being scheduled; the rest wait behind it. */
	if (sched_queued > 0 && sched_queued - 1 >= (size_t)sched_max_queue) {
		gen_free(g);
		reply_error(c, 503, "server busy, please try again.  "
		    "maximum pending requests exceeded");
		return;
	}
	g->sname = xstrdup(m->name);
	g->embed = m->embed;
	g->t_submit = now_ns();
	g->phase = PHASE_QUEUED;
	g->sstate = SCHED_QUEUED;
	c->gen = g;
	TAILQ_INSERT_TAIL(&sched_queue, c, qentry);
	sched_queued++;
	sched_submitting = c;
	sched_run();
	sched_submitting = NULL;
}

/*
 * A request may start, on its connection's timer rather than here, so
 * that the scheduler never runs a connection from inside another.
 */
static void
sched_admit(struct conn *c)
{
	struct gen *g = c->gen;

	g->sstate = SCHED_RUNNING;
	if (g->kind != GEN_LOAD) {
		g->slot = 1;
		g->runner->running++;
	}
	g->phase = PHASE_START;
	timer_set(c, 0);
}

/* A request ends, or its client has gone: it gives up its place. */
static void
sched_leave(struct conn *c)
{
	struct gen *g = c->gen;
	struct runner *r;

	if (g == NULL || g->sstate == SCHED_NONE)
		return;
	r = g->runner;
	switch (g->sstate) {
	case SCHED_QUEUED:
		TAILQ_REMOVE(&sched_queue, c, qentry);
		sched_queued--;
		break;
	case SCHED_PS:
		TAILQ_REMOVE(&ps_waiting, c, qentry);
		break;
	case SCHED_SLOT:
		TAILQ_REMOVE(&r->waiting, c, qentry);
		r->refs--;
		break;
	case SCHED_RUNNING:
		if (g->slot)
			r->running--;
		r->refs--;
		break;
	default:
		break;
	}
	g->sstate = SCHED_NONE;
	g->runner = NULL;
	g->slot = 0;
	sched_run();
}

/* keep_alive 0 with nothing to do: unload once its requests are done. */
static void
sched_expire(const char *name)
{
	struct runner *r;

	TAILQ_FOREACH(r, &runners, entry)
		if (strcmp(r->name, name) == 0 && !r->loading) {
			r->keep_alive = 0;
			r->expires = now_ms();
		}
	sched_run();
}

/* Move the queue on as far as it goes; see the comment above. */
static void
sched_dispatch(void)
{
	struct conn *c;
	struct gen *g;
	struct runner *r, *victim;

	while (sched_loading == NULL &&
	    (c = TAILQ_FIRST(&sched_queue)) != NULL) {
		g = c->gen;
		if ((r = runner_find(g->sname)) != NULL &&
		    r->num_ctx == g->num_ctx) {
			TAILQ_REMOVE(&sched_queue, c, qentry);
			sched_queued--;
			runner_take(r, c);
			continue;
		}
		if (r != NULL) {
			/* Another context length: reload it once it is idle. */
			if (r->refs > 0)
				return;
			runner_unload(r);
			continue;
		}
		if (sched_max_loaded > 0 &&
		    nrunners >= (size_t)sched_max_loaded) {
			victim = NULL;
			TAILQ_FOREACH(r, &runners, entry)
				if (r->refs == 0 && (victim == NULL ||
				    r->used < victim->used))
					victim = r;
			if (victim == NULL)
				return;
			runner_unload(victim);
			continue;
		}
		runner_load(c);
	}
}

/*
 * Give free slots to the requests waiting for them, start the idle
 * time of runners that have just become idle, and unload those whose
 * time is up. Returns 1 when it unloaded one, which may make room.
 */
static int
sched_sweep(void)
{
	struct runner *r, *next;
	struct conn *c;
	uint64_t now = now_ms();
	int freed = 0;

	for (r = TAILQ_FIRST(&runners); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		if (r->loading)
			continue;
		while ((c = TAILQ_FIRST(&r->waiting)) != NULL &&
		    (sched_parallel == 0 || r->running < sched_parallel)) {
			TAILQ_REMOVE(&r->waiting, c, qentry);
			sched_admit(c);
		}
		if (r->refs > 0)
			continue;
		if (!r->idle) {
			r->idle = 1;
			if (r->keep_alive >= 0)
				r->expires = now +
				    (uint64_t)(r->keep_alive * 1000);
		}
		if (r->keep_alive >= 0 && r->expires <= now) {
			runner_unload(r);
			freed = 1;
		}
	}
	return freed;
}

static void
sched_run(void)
{
	do
		sched_dispatch();
	while (sched_sweep());
	sched_arm();
}

/* Wake for the end of the load or the next expiry, whichever is first. */
static void
sched_arm(void)
{
	struct itimerspec its;
	struct runner *r;
	uint64_t when = 0;	/* ns */

	if (sched_fd == -1)
		return;
	if (sched_loading != NULL)
		when = sched_loading->load_done;
	TAILQ_FOREACH(r, &runners, entry)
		if (!r->loading && r->idle && r->keep_alive >= 0 &&
		    (when == 0 || r->expires * 1000000 < when))
			when = r->expires * 1000000;
	memset(&its, 0, sizeof(its));
	if (when > 0) {
		its.it_value.tv_sec = (time_t)(when / 1000000000);
		its.it_value.tv_nsec = (long)(when % 1000000000);
	}
	if (timerfd_settime(sched_fd, TFD_TIMER_ABSTIME, &its, NULL) == -1)
		fatal("timerfd_settime: %s", strerror(errno));
}

/* The scheduler as the tests and the benchmark see it. */
static json_t *
sched_json(void)
{
	json_t *o, *rs = json_array(), *loads = json_object(), *exp;
	struct runner *r;
	struct conn *c;
	uint64_t now = now_ms();
	size_t i;

	TAILQ_FOREACH(r, &runners, entry) {
		if (r->refs > 0 || r->loading)
			exp = json_null();
		else if (r->keep_alive < 0)
			exp = json_integer(-1);
		else
			exp = json_integer((json_int_t)(r->expires > now ?
			    r->expires - now : 0));
		i = 0;
		TAILQ_FOREACH(c, &r->waiting, qentry)
			i++;
		json_array_append_new(rs, json_pack("{sssIsbsIsIso}",
		    "model", r->name, "num_ctx", (json_int_t)r->num_ctx,
		    "loading", r->loading, "running", (json_int_t)r->running,
		    "waiting", (json_int_t)i, "expires_in_ms", exp));
	}
	for (i = 0; i < nload_counts; i++)
		json_object_set_new(loads, load_counts[i].name,
		    json_integer(load_counts[i].n));
	o = json_pack("{sbsIsIsIsIsosIso}", "on", sched_on,
	    "num_parallel", (json_int_t)sched_parallel,
	    "max_loaded", (json_int_t)sched_max_loaded,
	    "max_queue", (json_int_t)sched_max_queue,
	    "queued", (json_int_t)sched_queued,
	    "loading", sched_loading != NULL ?
	    json_string(sched_loading->name) : json_null(),
	    "unloads", (json_int_t)stat_unloads,
	    "runners", rs);
	json_object_set_new(o, "loads", loads);
	return o;
}

static void
api_root(struct conn *c)
{
	reply(c, 200, "text/plain; charset=utf-8", "Ollama is running", 17);
}

static void
api_version(struct conn *c)
{
	reply(c, 200, "application/json; charset=utf-8",
	    "{\"version\":\"0.12.6\"}", 20);
}

static void
api_tags(struct conn *c)
{
	json_t *arr = json_array(), *o;
	char digest[65], when[64];
	size_t i, k, *order = xcalloc(nmodels, sizeof(*order));
	struct model *m;

	/* Newest first, as Ollama lists them. */
	for (i = 0; i < nmodels; i++)
		order[i] = i;
	for (i = 1; i < nmodels; i++)
		for (k = i; k > 0 && models[order[k]].modified >
		    models[order[k - 1]].modified; k--) {
			size_t t = order[k];

			order[k] = order[k - 1];
			order[k - 1] = t;
		}
	for (i = 0; i < nmodels; i++) {
		m = &models[order[i]];
		hex_digest(m->name, digest);
		time_local(m->modified, when, sizeof(when));
		o = json_pack("{sssssssIssso}", "name", m->name, "model",
		    m->name, "modified_at", when, "size", model_size(m),
		    "digest", digest, "details", model_details(m));
		json_object_set_new(o, "capabilities", model_caps(m));
		json_array_append_new(arr, o);
	}
	free(order);
	reply_json(c, 200, json_pack("{so}", "models", arr));
}

static void
api_ps(struct conn *c)
{
	struct gen *g;

	if (sched_ps_blocks && sched_loading != NULL) {
		/* Like Ollama's, which the scheduler keeps busy. */
		g = gen_new(c, GEN_PS, "");
		g->phase = PHASE_QUEUED;
		g->sstate = SCHED_PS;
		c->gen = g;
		TAILQ_INSERT_TAIL(&ps_waiting, c, qentry);
		return;
	}
	ps_reply(c);
}

/* The models in memory, the latest to expire first, as Ollama sorts. */
static void
ps_reply(struct conn *c)
{
	json_t *arr = json_array(), *d;
	char digest[65], when[64];
	time_t now = time(NULL), *exp;
	uint64_t mono = now_ms();
	size_t i, k, n;
	struct model *m, stub;
	struct runner *r, **list;

	if (sched_on) {
		list = xcalloc(nrunners, sizeof(*list));
		exp = xcalloc(nrunners, sizeof(*exp));
		n = 0;
		TAILQ_FOREACH(r, &runners, entry) {
			for (k = n++; k > 0 && exp[k - 1] <
			    runner_expires_at(r, now, mono); k--) {
				list[k] = list[k - 1];
				exp[k] = exp[k - 1];
			}
			list[k] = r;
			exp[k] = runner_expires_at(r, now, mono);
		}
		for (i = 0; i < n; i++) {
			r = list[i];
			memset(&stub, 0, sizeof(stub));
			stub.name = r->name;
			stub.embed = r->embed;
			hex_digest(r->name, digest);
			time_local(exp[i], when, sizeof(when));
			json_array_append_new(arr, json_pack(
			    "{sssssIsssosssIsI}", "name", r->name, "model",
			    r->name, "size", model_size(&stub), "digest",
			    digest, "details", model_details(&stub),
			    "expires_at", when, "size_vram", model_size(&stub),
			    "context_length", (json_int_t)r->num_ctx));
		}
		free(list);
		free(exp);
		reply_json(c, 200, json_pack("{so}", "models", arr));
		return;
	}
	for (i = 0; i < nmodels; i++) {
		m = &models[i];
		if (m->loaded_until <= now)
			continue;
		hex_digest(m->name, digest);
		time_local(m->loaded_until, when, sizeof(when));
		d = model_details(m);
		json_array_append_new(arr, json_pack(
		    "{sssssIsssosssIsi}", "name", m->name, "model", m->name,
		    "size", model_size(m), "digest", digest, "details", d,
		    "expires_at", when, "size_vram", model_size(m),
		    "context_length", 4096));
	}
	reply_json(c, 200, json_pack("{so}", "models", arr));
}

static void
api_show(struct conn *c)
{
	json_t *o, *res;
	const char *name;
	struct model *m;
	char *norm, when[64];

	if ((o = body_json(c)) == NULL)
		return;
	name = jstr2(o, "model", "name");
	if (*name == '\0') {
		reply_error(c, 400, "model is required");
	} else if ((m = model_find(name)) == NULL) {
		norm = model_normalise(name);
		reply_errorf(c, 404, "model '%s' not found", norm);
		free(norm);
	} else {
		time_local(m->modified, when, sizeof(when));
		res = json_pack("{sssssssssososo}",
		    "license", "fake license",
		    "modelfile", "# Modelfile generated by fake-ollama\n"
		    "FROM fake\n",
		    "parameters", "stop                           \"<|eot|>\"",
		    "template", "{{ .Prompt }}",
		    "details", model_details(m),
		    "model_info", json_pack("{sssIsI}",
		    "general.architecture", m->embed ? "nomic-bert" : "llama",
		    "general.parameter_count", (json_int_t)3212749888,
		    "llama.context_length", (json_int_t)131072),
		    "capabilities", model_caps(m));
		json_object_set_new(res, "modified_at", json_string(when));
		reply_json(c, 200, res);
	}
	json_decref(o);
}

/* The load or unload reply for a request with nothing to generate. */
static void
load_reply(struct conn *c, const char *model, int chat, int unload)
{
	char ts[64];
	json_t *o;

	time_utc_now(ts, sizeof(ts));
	o = json_pack("{ssss}", "model", model, "created_at", ts);
	if (chat)
		json_object_set_new(o, "message", json_pack("{ssss}",
		    "role", "assistant", "content", ""));
	else
		json_object_set_new(o, "response", json_string(""));
	json_object_set_new(o, "done", json_true());
	json_object_set_new(o, "done_reason",
	    json_string(unload ? "unload" : "load"));
	reply_json(c, 200, o);
}

/*
 * A generate or chat with nothing to generate. Ollama loads the model
 * through its scheduler and answers once it is in; with keep_alive 0 it
 * unloads the model (once its requests have finished) and answers at
 * once.
 */
static void
load_start(struct conn *c, struct model *m, json_t *o, const char *model,
    int chat)
{
	int unload = keep_alive_zero(o);
	struct gen *g;

	if (!sched_on || unload) {
		model_touch(m, unload);
		if (sched_on)
			sched_expire(m->name);
		load_reply(c, model, chat, unload);
		return;
	}
	g = gen_new(c, GEN_LOAD, model);
	g->name = xstrdup(model);
	g->load_chat = chat;
	sched_submit(c, g, o, m);
}

static void
api_generate(struct conn *c)
{
	json_t *o;
	const char *model, *prompt;
	struct model *m;
	struct gen *g;

	if ((o = body_json(c)) == NULL)
		return;
	model = jstr(o, "model");
	if (model == NULL)
		model = "";
	prompt = jstr(o, "prompt");
	if ((m = model_find(model)) == NULL)
		reply_errorf(c, 404, "model '%s' not found", model);
	else if (m->embed)
		reply_errorf(c, 400, "\"%s\" does not support generate", model);
	else if (prompt == NULL || *prompt == '\0')
		load_start(c, m, o, model, 0);
	else {
		g = gen_new(c, GEN_GENERATE, model);
		g->stream = jbool(o, "stream", 1);
		g->prompt_count = words(prompt) + words(jstr(o, "system"));
		if (g->prompt_count < 1)
			g->prompt_count = 1;
		gen_limit(g, json_object_get(json_object_get(o, "options"),
		    "num_predict"));
		sched_submit(c, g, o, m);
	}
	json_decref(o);
}

static void
api_chat(struct conn *c)
{
	json_t *o, *msgs, *msg;
	const char *model;
	struct model *m;
	struct gen *g;
	size_t i;
	long n = 0;

	if ((o = body_json(c)) == NULL)
		return;
	model = jstr(o, "model");
	msgs = json_object_get(o, "messages");
	if (model == NULL || *model == '\0')
		reply_error(c, 400, "model is required");
	else if ((m = model_find(model)) == NULL)
		reply_errorf(c, 404, "model '%s' not found", model);
	else if (m->embed)
		reply_errorf(c, 400, "\"%s\" does not support chat", model);
	else if (json_array_size(msgs) == 0)
		load_start(c, m, o, model, 1);
	else {
		json_array_foreach(msgs, i, msg)
			n += content_words(json_object_get(msg, "content"));
		g = gen_new(c, GEN_CHAT, model);
		g->stream = jbool(o, "stream", 1);
		g->prompt_count = n > 0 ? n : 1;
		gen_limit(g, json_object_get(json_object_get(o, "options"),
		    "num_predict"));
		sched_submit(c, g, o, m);
	}
	json_decref(o);
}

static void
v1_chat(struct conn *c)
{
	json_t *o, *msgs, *msg;
	const char *model;
	struct model *m;
	struct gen *g;
	size_t i;
	long n = 0;

	if ((o = body_json(c)) == NULL)
		return;
	model = jstr(o, "model");
	msgs = json_object_get(o, "messages");
	if (json_array_size(msgs) == 0)
		reply_error(c, 400, "[] is too short - 'messages'");
	else if (model == NULL || *model == '\0')
		reply_error(c, 400, "model is required");
	else if ((m = model_find(model)) == NULL)
		reply_errorf(c, 404, "model '%s' not found", model);
	else if (m->embed)
		reply_errorf(c, 400, "\"%s\" does not support chat", model);
	else {
		json_array_foreach(msgs, i, msg)
			n += content_words(json_object_get(msg, "content"));
		g = gen_new(c, GEN_V1CHAT, model);
		g->stream = jbool(o, "stream", 0);
		g->include_usage = jbool(json_object_get(o, "stream_options"),
		    "include_usage", 0);
		g->prompt_count = n > 0 ? n : 1;
		gen_limit(g, json_object_get(o, "max_tokens"));
		sched_submit(c, g, NULL, m);
	}
	json_decref(o);
}

static void
v1_completions(struct conn *c)
{
	json_t *o, *prompt;
	const char *model;
	struct model *m;
	struct gen *g;

	if ((o = body_json(c)) == NULL)
		return;
	model = jstr(o, "model");
	if (model == NULL)
		model = "";
	prompt = json_object_get(o, "prompt");
	if (prompt != NULL && !json_is_string(prompt) && !json_is_null(prompt))
		reply_error(c, 400, "invalid type for 'prompt' field");
	else if ((m = model_find(model)) == NULL)
		reply_errorf(c, 404, "model '%s' not found", model);
	else if (m->embed)
		reply_errorf(c, 400, "\"%s\" does not support generate", model);
	else {
		g = gen_new(c, GEN_V1COMPLETION, model);
		g->stream = jbool(o, "stream", 0);
		g->include_usage = jbool(json_object_get(o, "stream_options"),
		    "include_usage", 0);
		g->prompt_count = words(json_string_value(prompt));
		if (g->prompt_count < 1)
			g->prompt_count = 1;
		gen_limit(g, json_object_get(o, "max_tokens"));
		sched_submit(c, g, NULL, m);
	}
	json_decref(o);
}

/*
 * The first events of an Anthropic or Responses stream, sent with the
 * head: Ollama's converters open the message before the first token.
 */
static void
family_open(struct conn *c)
{
	struct gen *g = c->gen;
	struct buf *b = &scratch;

	if (g->kind == GEN_MESSAGES) {
		buf_printf(b, "event: message_start\ndata: {\"type\":"
		    "\"message_start\",\"message\":{\"id\":\"msg_%024u\","
		    "\"type\":\"message\",\"role\":\"assistant\",\"model\":%s,"
		    "\"content\":[],\"stop_reason\":null,\"usage\":{"
		    "\"input_tokens\":%ld,\"output_tokens\":0}}}\n\n"
		    "event: content_block_start\ndata: {\"type\":"
		    "\"content_block_start\",\"index\":0,\"content_block\":{"
		    "\"type\":\"text\",\"text\":\"\"}}\n\n", g->id,
		    g->model_json, g->prompt_count);
	} else if (g->kind == GEN_RESPONSES) {
		static const char *const first[] = {
			"response.created", "response.in_progress",
		};

		for (size_t i = 0; i < 2; i++)
			buf_printf(b, "event: %s\ndata: {\"type\":\"%s\","
			    "\"sequence_number\":%ld,\"response\":{\"id\":"
			    "\"resp_%u\",\"object\":\"response\",\"created_at\":"
			    "%ld,\"status\":\"in_progress\",\"model\":%s,"
			    "\"output\":[],\"error\":null,\"usage\":null}}\n\n",
			    first[i], first[i], g->seq++, g->id, g->created,
			    g->model_json);
		buf_printf(b, "event: response.output_item.added\ndata: {"
		    "\"type\":\"response.output_item.added\",\"sequence_number\":"
		    "%ld,\"output_index\":0,\"item\":{\"id\":\"msg_%u\",\"type\":"
		    "\"message\",\"status\":\"in_progress\",\"role\":\"assistant\","
		    "\"content\":[]}}\n\n", g->seq++, g->id);
		buf_printf(b, "event: response.content_part.added\ndata: {"
		    "\"type\":\"response.content_part.added\",\"sequence_number\":"
		    "%ld,\"item_id\":\"msg_%u\",\"output_index\":0,"
		    "\"content_index\":0,\"part\":{\"type\":\"output_text\","
		    "\"text\":\"\",\"annotations\":[]}}\n\n", g->seq++, g->id);
	} else
		return;
	gen_emit(c, b);
}

/* The Responses API's usage object. */
static void
responses_usage(struct gen *g, struct buf *b)
{
	buf_printf(b, "\"usage\":{\"input_tokens\":%ld,\"output_tokens\":%ld,"
	    "\"total_tokens\":%ld,\"input_tokens_details\":{\"cached_tokens\":0},"
	    "\"output_tokens_details\":{\"reasoning_tokens\":0}}",
	    g->prompt_count, g->produced, g->prompt_count + g->produced);
}

/* The end of an Anthropic or Responses answer, streamed or whole. */
static void
family_final(struct conn *c, struct buf *b)
{
	struct gen *g = c->gen;
	const char *text = g->text.data ? g->text.data : "";

	if (g->kind == GEN_MESSAGES && g->stream) {
		buf_printf(b, "event: content_block_stop\ndata: {\"type\":"
		    "\"content_block_stop\",\"index\":0}\n\n"
		    "event: message_delta\ndata: {\"type\":\"message_delta\","
		    "\"delta\":{\"stop_reason\":\"%s\",\"stop_sequence\":null},"
		    "\"usage\":{\"input_tokens\":%ld,\"output_tokens\":%ld}}\n\n"
		    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
		    g->length_cut ? "max_tokens" : "end_turn", g->prompt_count,
		    g->produced);
	} else if (g->kind == GEN_MESSAGES) {
		buf_printf(b, "{\"id\":\"msg_%024u\",\"type\":\"message\","
		    "\"role\":\"assistant\",\"model\":%s,\"content\":[{\"type\":"
		    "\"text\",\"text\":\"%s\"}],\"stop_reason\":\"%s\","
		    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":%ld,"
		    "\"output_tokens\":%ld}}", g->id, g->model_json, text,
		    g->length_cut ? "max_tokens" : "end_turn", g->prompt_count,
		    g->produced);
		reply(c, 200, "application/json; charset=utf-8", b->data,
		    b->len);
		b->len = 0;
		return;
	} else if (g->stream) {
		buf_printf(b, "event: response.output_text.done\ndata: {\"type\":"
		    "\"response.output_text.done\",\"sequence_number\":%ld,"
		    "\"item_id\":\"msg_%u\",\"output_index\":0,\"content_index\":0,"
		    "\"text\":\"\"}\n\n", g->seq++, g->id);
		buf_printf(b, "event: response.output_item.done\ndata: {\"type\":"
		    "\"response.output_item.done\",\"sequence_number\":%ld,"
		    "\"output_index\":0,\"item\":{\"id\":\"msg_%u\",\"type\":"
		    "\"message\",\"status\":\"completed\",\"role\":\"assistant\","
		    "\"content\":[]}}\n\n", g->seq++, g->id);
		buf_printf(b, "event: response.completed\ndata: {\"type\":"
		    "\"response.completed\",\"sequence_number\":%ld,\"response\":{"
		    "\"id\":\"resp_%u\",\"object\":\"response\",\"created_at\":%ld,"
		    "\"status\":\"completed\",\"model\":%s,\"output\":[],"
		    "\"error\":null,", g->seq++, g->id, g->created, g->model_json);
		responses_usage(g, b);
		buf_addstr(b, "}}\n\n");
	} else {
		buf_printf(b, "{\"id\":\"resp_%u\",\"object\":\"response\","
		    "\"created_at\":%ld,\"status\":\"completed\",\"error\":null,"
		    "\"incomplete_details\":null,\"model\":%s,\"output\":[{\"id\":"
		    "\"msg_%u\",\"type\":\"message\",\"status\":\"completed\","
		    "\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\","
		    "\"text\":\"%s\",\"annotations\":[]}]}],", g->id, g->created,
		    g->model_json, g->id, text);
		responses_usage(g, b);
		buf_addstr(b, "}\n");
		reply(c, 200, "application/json", b->data, b->len);
		b->len = 0;
		return;
	}
	gen_emit(c, b);
	resp_end(c);
}

/* POST /v1/messages: Ollama's Anthropic layer over chat (7.1). */
static void
v1_messages(struct conn *c)
{
	json_t *o, *msgs, *msg, *max;
	const char *model;
	struct model *m;
	struct gen *g;
	size_t i;
	long n = 0;

	if ((o = body_json(c)) == NULL)
		return;
	model = jstr(o, "model");
	msgs = json_object_get(o, "messages");
	max = json_object_get(o, "max_tokens");
	if (model == NULL || *model == '\0')
		reply_error(c, 400, "model is required");
	else if (!json_is_integer(max) || json_integer_value(max) <= 0)
		reply_error(c, 400, "max_tokens is required and must be positive");
	else if (json_array_size(msgs) == 0)
		reply_error(c, 400, "messages is required");
	else if ((m = model_find(model)) == NULL)
		reply_errorf(c, 404, "model '%s' not found", model);
	else {
		json_array_foreach(msgs, i, msg)
			n += content_words(json_object_get(msg, "content"));
		g = gen_new(c, GEN_MESSAGES, model);
		g->stream = jbool(o, "stream", 0);
		g->prompt_count = n > 0 ? n : 1;
		gen_limit(g, max);
		sched_submit(c, g, NULL, m);
	}
	json_decref(o);
}

/* POST /v1/responses: stateless, over chat (6.6). */
static void
v1_responses(struct conn *c)
{
	json_t *o, *input, *item;
	const char *model;
	struct model *m;
	struct gen *g;
	size_t i;
	long n = 0;

	if ((o = body_json(c)) == NULL)
		return;
	model = jstr(o, "model");
	input = json_object_get(o, "input");
	if (model == NULL || *model == '\0')
		reply_error(c, 400, "model is required");
	else if ((m = model_find(model)) == NULL)
		reply_errorf(c, 404, "model '%s' not found", model);
	else {
		if (json_is_string(input))
			n = words(json_string_value(input));
		json_array_foreach(input, i, item)
			n += content_words(json_object_get(item, "content"));
		n += words(jstr(o, "instructions"));
		g = gen_new(c, GEN_RESPONSES, model);
		g->stream = jbool(o, "stream", 0);
		g->prompt_count = n > 0 ? n : 1;
		gen_limit(g, json_object_get(o, "max_output_tokens"));
		sched_submit(c, g, NULL, m);
	}
	json_decref(o);
}

/*
 * POST /v1/audio/transcriptions: a multipart form with a "model" field;
 * a canned transcript. Only as much of the form is read as the fake
 * needs: the field's value up to the next line end.
 */
static void
v1_transcriptions(struct conn *c)
{
	static const char key[] = "name=\"model\"\r\n\r\n";
	struct req *r = c->req;
	const char *ct = req_header(r, "Content-Type"), *v, *end;
	char model[256];
	size_t n;

	if (ct == NULL || strncasecmp(ct, "multipart/form-data", 19) != 0) {
		reply_error(c, 400, "expected a multipart form");
		return;
	}
	v = r->body.data ? memmem(r->body.data, r->body.len, key,
	    sizeof(key) - 1) : NULL;
	if (v == NULL) {
		reply_error(c, 400, "model is required");
		return;
	}
	v += sizeof(key) - 1;
	end = memmem(v, r->body.len - (size_t)(v - r->body.data), "\r\n", 2);
	n = end != NULL ? (size_t)(end - v) : 0;
	if (n == 0 || n >= sizeof(model)) {
		reply_error(c, 400, "model is required");
		return;
	}
	memcpy(model, v, n);
	model[n] = '\0';
	if (model_find(model) == NULL) {
		reply_errorf(c, 404, "model '%s' not found", model);
		return;
	}
	reply_json(c, 200, json_pack("{ss}", "text", "fake transcript"));
}

static void
api_status(struct conn *c)
{
	static const char body[] =
	    "{\"cloud\":{\"disabled\":false,\"source\":\"none\"}}";

	reply(c, 200, "application/json; charset=utf-8", body,
	    sizeof(body) - 1);
}

/*
 * The account and web routes act with an ollama.com account the fake
 * does not have: each answers as a server that is not signed in, or
 * with an empty result, and says which route it was.
 */
static void
account_route(struct conn *c)
{
	const char *t = c->req->target;

	if (strcmp(t, "/api/me") == 0)
		reply_json(c, 401, json_pack("{ssss}", "error", "unauthorized",
		    "signin_url", "https://ollama.com/connect?name=fake"));
	else if (strcmp(t, "/api/experimental/web_search") == 0)
		reply_json(c, 200, json_pack("{s[]}", "results"));
	else if (strcmp(t, "/api/experimental/web_fetch") == 0)
		reply_json(c, 200, json_pack("{ssss s[]}", "title", "fake",
		    "content", "", "links"));
	else if (strncmp(t, "/api/experimental/model-recommendations", 39) == 0)
		reply_json(c, 200, json_pack("{s[]}", "recommendations"));
	else
		reply_json(c, 401, json_pack("{ss}", "error",
		    "you are not currently signed in"));
}

/* Newton's method, since the build does not link libm. */
static double
square_root(double x)
{
	double r = x > 1 ? x : 1;
	int i;

	if (x <= 0)
		return 0;
	for (i = 0; i < 60; i++)
		r = (r + x / r) / 2;
	return r;
}

/* A deterministic unit vector for a text; scale 0 leaves it unscaled. */
static json_t *
embed_vector(const char *s, size_t dims, double scale)
{
	double v[EMBED_DIM], norm = 0;
	uint64_t h = hash_str(s, strlen(s), 11);
	json_t *arr = json_array();
	size_t i;

	if (dims == 0 || dims > EMBED_DIM)
		dims = EMBED_DIM;
	for (i = 0; i < dims; i++) {
		v[i] = (double)(mix64(h + i) >> 11) / 9007199254740992.0 * 2 -
		    1;
		norm += v[i] * v[i];
	}
	norm = square_root(norm);
	for (i = 0; i < dims; i++)
		json_array_append_new(arr, json_real((double)(float)
		    (v[i] / (norm > 0 ? norm : 1) * (scale > 0 ? scale : 1))));
	return arr;
}

/*
 * Send a prepared body once the model is in and the ttft has passed,
 * as the model would. Takes the reference to body; o is the request,
 * or NULL where its keep_alive and options do not count.
 */
static void
canned_start(struct conn *c, struct model *m, json_t *o, const char *model,
    json_t *body)
{
	struct gen *g = gen_new(c, GEN_CANNED, model);

	g->canned_json = body;
	if (c->req->openai)
		g->canned_type = "application/json";
	else
		g->canned_type = "application/json; charset=utf-8";
	g->canned_status = 200;
	sched_submit(c, g, o, m);
}

/*
 * The prepared body, serialised now that its timings are known: with
 * the scheduler on, the real wait for a load (left out when there was
 * none, as Ollama leaves out zero metrics) and the real total.
 */
static void
canned_ready(struct conn *c)
{
	struct gen *g = c->gen;
	json_t *body = g->canned_json;
	char *s;

	if (body == NULL)
		return;
	if (sched_on && json_object_get(body, "load_duration") != NULL) {
		if (g->load_ns > 0)
			json_object_set_new(body, "load_duration",
			    json_integer((json_int_t)g->load_ns));
		else
			json_object_del(body, "load_duration");
		json_object_set_new(body, "total_duration", json_integer(
		    (json_int_t)(now_ns() - c->req->t_start)));
	}
	s = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9));
	if (s == NULL)
		fatal("json_dumps failed");
	buf_addstr(&g->canned, s);
	free(s);
	if (c->req->openai)
		buf_addstr(&g->canned, "\n");
	json_decref(body);
	g->canned_json = NULL;
}

/*
 * The inputs of an embedding request as an array of strings, or NULL
 * when the input is neither a string nor an array of strings.
 */
static json_t *
embed_inputs(json_t *in)
{
	json_t *v;
	size_t i;

	if (json_is_string(in))
		return json_pack("[O]", in);
	if (!json_is_array(in))
		return NULL;
	json_array_foreach(in, i, v)
		if (!json_is_string(v))
			return NULL;
	return json_incref(in);
}

static void
api_embed(struct conn *c)
{
	json_t *o, *in, *inputs, *vecs, *v;
	const char *model;
	struct model *m;
	size_t i;
	long n = 0;
	json_int_t dims;

	if ((o = body_json(c)) == NULL)
		return;
	model = jstr(o, "model");
	in = json_object_get(o, "input");
	dims = json_integer_value(json_object_get(o, "dimensions"));
	inputs = in != NULL && !json_is_null(in) ? embed_inputs(in) : NULL;
	if (model == NULL || *model == '\0')
		reply_error(c, 400, "model is required");
	else if ((m = model_find(model)) == NULL)
		reply_errorf(c, 404,
		    "model \"%s\" not found, try pulling it first", model);
	else if (in != NULL && !json_is_null(in) && inputs == NULL)
		reply_error(c, 400, "invalid input type");
	else if (json_array_size(inputs) == 0 || (json_is_string(in) &&
	    *json_string_value(in) == '\0')) {
		model_touch(m, keep_alive_zero(o));
		reply_json(c, 200, json_pack("{sss[]}", "model", model,
		    "embeddings"));
	} else {
		vecs = json_array();
		json_array_foreach(inputs, i, v) {
			n += words(json_string_value(v));
			json_array_append_new(vecs, embed_vector(
			    json_string_value(v), dims > 0 ? (size_t)dims : 0,
			    0));
		}
		canned_start(c, m, o, model, json_pack("{sssosIsIsI}",
		    "model", model, "embeddings", vecs,
		    "total_duration", (json_int_t)14000000,
		    "load_duration", (json_int_t)1000000,
		    "prompt_eval_count", (json_int_t)(n > 0 ? n : 1)));
	}
	json_decref(inputs);
	json_decref(o);
}

static void
api_embeddings(struct conn *c)
{
	json_t *o;
	const char *model, *prompt;
	struct model *m;

	if ((o = body_json(c)) == NULL)
		return;
	model = jstr(o, "model");
	prompt = jstr(o, "prompt");
	if (model == NULL || *model == '\0')
		reply_error(c, 400, "model is required");
	else if ((m = model_find(model)) == NULL)
		reply_errorf(c, 404,
		    "model \"%s\" not found, try pulling it first", model);
	else if (prompt == NULL || *prompt == '\0') {
		model_touch(m, keep_alive_zero(o));
		reply_json(c, 200, json_pack("{s[]}", "embedding"));
	} else
		canned_start(c, m, o, model, json_pack("{so}", "embedding",
		    embed_vector(prompt, 0, 3.5)));
	json_decref(o);
}

/* Standard base64 of little-endian float32s, as encoding_format asks. */
static json_t *
vector_base64(json_t *vec)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char raw[EMBED_DIM * 4];
	char out[EMBED_DIM * 4 / 3 * 4 + 8];
	size_t i, n = 0, o = 0;
	json_t *v;
	float f;
	uint32_t bits, w;

	json_array_foreach(vec, i, v) {
		f = (float)json_real_value(v);
		memcpy(&bits, &f, 4);
		raw[n++] = (unsigned char)bits;
		raw[n++] = (unsigned char)(bits >> 8);
		raw[n++] = (unsigned char)(bits >> 16);
		raw[n++] = (unsigned char)(bits >> 24);
	}
	for (i = 0; i < n; i += 3) {
		w = (uint32_t)raw[i] << 16;
		if (i + 1 < n)
			w |= (uint32_t)raw[i + 1] << 8;
		if (i + 2 < n)
			w |= raw[i + 2];
		out[o++] = tab[w >> 18 & 63];
		out[o++] = tab[w >> 12 & 63];
		out[o++] = i + 1 < n ? tab[w >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[w & 63] : '=';
	}
	out[o] = '\0';
	return json_string(out);
}

static void
v1_embeddings(struct conn *c)
{
	json_t *o, *in, *inputs = NULL, *data, *v, *vec;
	const char *model, *fmt;
	struct model *m;
	size_t i;
	long n = 0;
	int b64;
	json_int_t dims;

	if ((o = body_json(c)) == NULL)
		return;
	model = jstr(o, "model");
	in = json_object_get(o, "input");
	fmt = jstr(o, "encoding_format");
	b64 = fmt != NULL && strcasecmp(fmt, "base64") == 0;
	dims = json_integer_value(json_object_get(o, "dimensions"));
	if (in == NULL || json_is_null(in) || (inputs = embed_inputs(in)) ==
	    NULL || json_array_size(inputs) == 0)
		reply_error(c, 400, "invalid input");
	else if (fmt != NULL && *fmt != '\0' && !b64 &&
	    strcasecmp(fmt, "float") != 0)
		reply_errorf(c, 400, "invalid encoding format: %s", fmt);
	else if (model == NULL || *model == '\0')
		reply_error(c, 400, "model is required");
	else if ((m = model_find(model)) == NULL)
		reply_errorf(c, 404,
		    "model \"%s\" not found, try pulling it first", model);
	else {
		data = json_array();
		json_array_foreach(inputs, i, v) {
			n += words(json_string_value(v));
			vec = embed_vector(json_string_value(v),
			    dims > 0 ? (size_t)dims : 0, 0);
			if (b64) {
				json_t *enc = vector_base64(vec);

				json_decref(vec);
				vec = enc;
			}
			json_array_append_new(data, json_pack("{sssosI}",
			    "object", "embedding", "embedding", vec,
			    "index", (json_int_t)i));
		}
		if (n < 1)
			n = 1;
		canned_start(c, m, NULL, model, json_pack("{sssosss{sIsI}}",
		    "object", "list", "data", data, "model", model, "usage",
		    "prompt_tokens", (json_int_t)n,
		    "total_tokens", (json_int_t)n));
	}
	json_decref(inputs);
	json_decref(o);
}

/* Pull, push and create: status lines, then the model exists. */
static void
api_progress(struct conn *c, int op)
{
	json_t *o;
	const char *name, *from;
	struct model *src = NULL;
	struct gen *g;

	if ((o = body_json(c)) == NULL)
		return;
	name = jstr2(o, "model", "name");
	from = jstr(o, "from");
	if (*name == '\0')
		reply_error(c, 400, op == 2 ? "invalid model name" :
		    "model is required");
	else if (op == 1 && model_find(name) == NULL)
		reply_errorf(c, 404, "model '%s' not found", name);
	else if (op == 2 && from != NULL && *from != '\0' &&
	    (src = model_find(from)) == NULL)
		reply_errorf(c, 404, "model '%s' not found", from);
	else {
		g = gen_new(c, GEN_PROGRESS, name);
		g->progress_op = op;
		g->pad = c->req->set.progress_pad;
		g->name = model_normalise(name);
		g->stream = jbool(o, "stream", 1);
		g->ntok = op == 0 ? 6 : op == 1 ? 4 : 3;
		g->embed_from = src != NULL ? src->embed :
		    strstr(name, "embed") != NULL;
		gen_start(c, g);
	}
	json_decref(o);
}

static void
api_pull(struct conn *c)
{
	api_progress(c, 0);
}

static void
api_push(struct conn *c)
{
	api_progress(c, 1);
}

static void
api_create(struct conn *c)
{
	api_progress(c, 2);
}

static void
api_copy(struct conn *c)
{
	json_t *o;
	const char *src, *dst;
	struct model *m;
	int embed;

	if ((o = body_json(c)) == NULL)
		return;
	src = jstr(o, "source");
	dst = jstr(o, "destination");
	if (src == NULL || *src == '\0')
		reply_errorf(c, 400, "source \"%s\" is invalid", src ? src : "");
	else if (dst == NULL || *dst == '\0')
		reply_errorf(c, 400, "destination \"%s\" is invalid",
		    dst ? dst : "");
	else if ((m = model_find(src)) == NULL)
		reply_errorf(c, 404, "model \"%s\" not found", src);
	else {
		embed = m->embed;
		model_add(dst, embed)->embed = embed;
		reply_empty(c, 200);
	}
	json_decref(o);
}

static void
api_delete(struct conn *c)
{
	json_t *o;
	const char *name;
	struct model *m;

	if ((o = body_json(c)) == NULL)
		return;
	name = jstr2(o, "model", "name");
	if (*name == '\0')
		reply_errorf(c, 400, "name \"%s\" is invalid", name);
	else if ((m = model_find(name)) == NULL)
		reply_errorf(c, 404, "model '%s' not found", name);
	else {
		model_remove(m);
		reply_empty(c, 200);
	}
	json_decref(o);
}

/* ^sha256[:-][0-9a-fA-F]{64}$, as Ollama checks blob digests. */
static int
digest_ok(const char *d)
{
	return strncmp(d, "sha256", 6) == 0 && (d[6] == ':' || d[6] == '-') &&
	    strlen(d + 7) == 64 && strspn(d + 7, "0123456789abcdefABCDEF") == 64;
}

static void
api_blobs(struct conn *c, const char *digest, size_t len)
{
	char d[80];
	size_t i;

	if (len >= sizeof(d)) {
		reply_error(c, 400, "invalid digest format");
		return;
	}
	memcpy(d, digest, len);
	d[len] = '\0';
	if (!digest_ok(d)) {
		reply_error(c, 400, "invalid digest format");
		return;
	}
	d[6] = ':';
	for (i = 7; d[i] != '\0'; i++)
		d[i] = (char)tolower((unsigned char)d[i]);
	for (i = 0; i < nblobs; i++)
		if (strcmp(blobs[i], d) == 0)
			break;
	if (c->req->head_only) {
		if (i < nblobs)
			reply_empty(c, 200);
		else
			reply_errorf(c, 404, "blob %s not found", d);
		return;
	}
	if (i < nblobs) {
		reply_empty(c, 200);
		return;
	}
	blobs = realloc(blobs, (nblobs + 1) * sizeof(*blobs));
	if (blobs == NULL)
		fatal("out of memory");
	blobs[nblobs++] = xstrdup(d);
	reply_empty(c, 201);
}

static void
v1_models(struct conn *c)
{
	json_t *data = nmodels ? json_array() : json_null();
	size_t i;

	for (i = 0; i < nmodels; i++)
		json_array_append_new(data, json_pack("{sssssIss}",
		    "id", models[i].name, "object", "model",
		    "created", (json_int_t)models[i].modified,
		    "owned_by", "library"));
	reply_json(c, 200, json_pack("{ssso}", "object", "list", "data",
	    data));
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static void
v1_model(struct conn *c, const char *seg, size_t len)
{
	char *name = xmalloc(len + 1);
	size_t i, n = 0;
	struct model *m;

	for (i = 0; i < len; i++) {
		if (seg[i] == '%' && i + 2 < len &&
		    hexval(seg[i + 1]) >= 0 && hexval(seg[i + 2]) >= 0) {
			name[n++] = (char)(hexval(seg[i + 1]) * 16 +
			    hexval(seg[i + 2]));
			i += 2;
		} else
			name[n++] = seg[i];
	}
	name[n] = '\0';
	if (n == 0 || strchr(name, '/') != NULL || memchr(name, 0, n) != NULL)
		reply(c, 404, "text/plain", "404 page not found", 18);
	else if ((m = model_find(name)) == NULL)
		reply_errorf(c, 404, "model '%s' not found", name);
	else
		reply_json(c, 200, json_pack("{sssssIss}", "id", name,
		    "object", "model", "created", (json_int_t)m->modified,
		    "owned_by", "library"));
	free(name);
}

/* The control interface the tests use; none of it is logged. */
static int
route_control(struct conn *c, const char *path)
{
	struct req *r = c->req;
	int get = strcmp(r->method, "GET") == 0;
	int post = strcmp(r->method, "POST") == 0;
	json_t *o, *v;
	size_t i;
	struct settings s;
	enum fault f;
	struct buf list = { NULL, 0, 0, 0 };

	r->set.fault = FAULT_NONE;
	if (strcmp(path, "/_fake/log") == 0 && get)
		reply_json(c, 200, log_json(0));
	else if (strcmp(path, "/_fake/probes") == 0 && get)
		reply_json(c, 200, log_json(1));
	else if (strcmp(path, "/_fake/stats") == 0 && get)
		reply_json(c, 200, json_pack("{sIsIsIsI}",
		    "requests", (json_int_t)stat_requests,
		    "active", (json_int_t)stat_active,
		    "done", (json_int_t)stat_done,
		    "cancelled", (json_int_t)stat_cancelled));
	else if (strcmp(path, "/_fake/sched") == 0 && get)
		reply_json(c, 200, sched_json());
	else if (strcmp(path, "/_fake/reset") == 0 && post) {
		log_clear();
		load_counts_clear();
		reply_json(c, 200, json_object());
	} else if (strcmp(path, "/_fake/config") == 0 && post) {
		if ((o = body_json(c)) == NULL)
			return 1;
		s = cfg;
		if (json_is_integer(v = json_object_get(o, "ttft_ms")))
			s.ttft_ms = (long)json_integer_value(v);
		if (json_is_integer(v = json_object_get(o, "delay_ms")))
			s.delay_ms = (long)json_integer_value(v);
		if (json_is_integer(v = json_object_get(o, "tokens")))
			s.tokens = (long)json_integer_value(v);
		if (json_is_integer(v = json_object_get(o, "progress_pad")))
			s.progress_pad = (long)json_integer_value(v);
		if ((v = json_object_get(o, "fault")) != NULL &&
		    (!json_is_string(v) ||
		    parse_fault(json_string_value(v), &f) == -1)) {
			reply_error(c, 400, "unknown fault");
			json_decref(o);
			return 1;
		} else if (v != NULL)
			s.fault = f;
		if (json_is_array(v = json_object_get(o, "models"))) {
			for (i = 0; i < json_array_size(v); i++) {
				const char *name = json_string_value(
				    json_array_get(v, i));

				if (name != NULL) {
					buf_addstr(&list, name);
					buf_addstr(&list, ",");
				}
			}
			models_set(list.data ? list.data : "");
			buf_free(&list);
		}
		if (s.ttft_ms < 0 || s.delay_ms < 0 || s.tokens < 0 ||
		    s.progress_pad < 0 || s.progress_pad > 1024 * 1024) {
			reply_error(c, 400, "negative setting");
			json_decref(o);
			return 1;
		}
		cfg = s;
		json_decref(o);
		reply_json(c, 200, json_object());
	} else
		return 0;
	return 1;
}

/* Faults that strike before a route's own logic has a say. */
static int
apply_fault(struct conn *c, int streams)
{
	struct req *r = c->req;
	struct gen *g;

	if (hostile_reply(c))
		return 1;
	switch (r->set.fault) {
	case FAULT_HANG:
		if (streams)
			return 0;
		g = gen_new(c, GEN_CANNED, "");
		g->phase = PHASE_HANG;
		c->gen = g;
		return 1;
	case FAULT_GARBAGE:
		buf_addstr(&c->out, "this is not http\r\n\r\n");
		req_finish(r, REQ_DONE);
		c->close_after = 1;
		return 1;
	case FAULT_500:
		reply_error(c, 500, "fake error");
		return 1;
	case FAULT_503:
		reply_error(c, 503, "server busy, please try again.  "
		    "maximum pending requests exceeded");
		return 1;
	case FAULT_CLOSE:
		if (streams)
			return 0;
		req_finish(r, REQ_DONE);
		c->close_after = 1;
		return 1;
	case FAULT_ERROR:
		if (streams)
			return 0;
		reply_error(c, 500, "fake error");
		return 1;
	default:
		return 0;
	}
}

/*
 * A version answer whose body carries a whole second response, and
 * which a client that trusts the wrong framing reads as the answer to
 * its next request.
 */
#define HOSTILE_BODY	"{\"version\":\"0.12.6\"}"
#define HOSTILE_FORGED	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" \
			"Content-Length: 18\r\n\r\n{\"forged\":\"yes!!\"}"

/* The hostile framings that replace the route's answer. */
static int
hostile_reply(struct conn *c)
{
	struct req *r = c->req;
	const char *body = HOSTILE_BODY HOSTILE_FORGED;
	size_t short_len = strlen(HOSTILE_BODY), len = strlen(body);

	switch (r->set.fault) {
	case FAULT_TE_CL:
		r->status = 200;
		buf_printf(&c->out, "HTTP/1.1 200 OK\r\nContent-Type: "
		    "application/json; charset=utf-8\r\nContent-Length: %zu\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", short_len);
		r->chunked_out = 1;
		resp_body(c, body, len);
		resp_end(c);
		return 1;
	case FAULT_CL_CL:
		/* Whoever reads the first length leaves the forgery unread. */
		r->status = 200;
		buf_printf(&c->out, "HTTP/1.1 200 OK\r\nContent-Type: "
		    "application/json; charset=utf-8\r\nContent-Length: %zu\r\n"
		    "Content-Length: %zu\r\n\r\n", short_len, len);
		r->chunked_out = 0;
		resp_body(c, body, len);
		resp_end(c);
		return 1;
	case FAULT_CL_LIST:
		r->status = 200;
		buf_printf(&c->out, "HTTP/1.1 200 OK\r\nContent-Type: "
		    "application/json; charset=utf-8\r\nContent-Length: %zu, "
		    "%zu\r\n\r\n", short_len, short_len);
		r->chunked_out = 0;
		resp_body(c, body, short_len);
		resp_end(c);
		return 1;
	case FAULT_SWITCH:
		r->status = 101;
		buf_addstr(&c->out, "HTTP/1.1 101 Switching Protocols\r\n"
		    "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
		buf_addstr(&c->out, HOSTILE_FORGED);
		req_finish(r, REQ_DONE);
		c->close_after = 1;
		return 1;
	case FAULT_INTERIM:
		/* Interim answers first; the route then answers as usual. */
		buf_addstr(&c->out, "HTTP/1.1 100 Continue\r\n\r\n"
		    "HTTP/1.1 103 Early Hints\r\nLink: </forged>; rel=preload\r\n"
		    "X-Interim: yes\r\n\r\n");
		return 0;
	default:
		return 0;
	}
}

/*
 * Header fields no HTTP/1.1 reader may take: a name that is no token, a
 * value with a control character, an obsolete line fold.
 */
static void
hostile_headers(struct buf *b)
{
	buf_addstr(b, "Bad Name: forged\r\n"
	    "X-Ctl: a\001b\r\n"
	    "X-Folded: first\r\n second\r\n"
	    "X-Kept: yes\r\n");
}

#define M_GET		0x1
#define M_HEAD		0x2
#define M_POST		0x4
#define M_DELETE	0x8

/* The routes: path, methods, whether faults wait for the generation. */
static const struct route_entry {
	const char	*path;
	unsigned	 methods;
	int		 streams;
	void		(*fn)(struct conn *);
} routes[] = {
	{ "/", M_GET | M_HEAD, 0, api_root },
	{ "/api/version", M_GET | M_HEAD, 0, api_version },
	{ "/api/tags", M_GET | M_HEAD, 0, api_tags },
	{ "/api/ps", M_GET, 0, api_ps },
	{ "/api/show", M_POST, 0, api_show },
	{ "/api/generate", M_POST, 1, api_generate },
	{ "/api/chat", M_POST, 1, api_chat },
	{ "/api/embed", M_POST, 1, api_embed },
	{ "/api/embeddings", M_POST, 1, api_embeddings },
	{ "/api/pull", M_POST, 1, api_pull },
	{ "/api/push", M_POST, 1, api_push },
	{ "/api/create", M_POST, 1, api_create },
	{ "/api/copy", M_POST, 0, api_copy },
	{ "/api/delete", M_DELETE, 0, api_delete },
	{ "/api/blobs/", M_HEAD | M_POST, 0, NULL },
	{ "/v1/chat/completions", M_POST, 1, v1_chat },
	{ "/v1/completions", M_POST, 1, v1_completions },
	{ "/v1/embeddings", M_POST, 1, v1_embeddings },
	{ "/v1/models", M_GET, 0, v1_models },
	{ "/v1/models/", M_GET, 0, NULL },
	{ "/v1/messages", M_POST, 1, v1_messages },
	{ "/v1/responses", M_POST, 1, v1_responses },
	{ "/v1/audio/transcriptions", M_POST, 0, v1_transcriptions },
	{ "/api/status", M_GET, 0, api_status },
	{ "/api/me", M_POST, 0, account_route },
	{ "/api/signout", M_POST, 0, account_route },
	{ "/api/user/keys/", M_DELETE, 0, account_route },
	{ "/api/experimental/web_search", M_POST, 0, account_route },
	{ "/api/experimental/web_fetch", M_POST, 0, account_route },
	{ "/api/experimental/model-recommendations", M_GET, 0, account_route },
};

static unsigned
method_bit(const char *m)
{
	if (strcmp(m, "GET") == 0)
		return M_GET;
	if (strcmp(m, "HEAD") == 0)
		return M_HEAD;
	if (strcmp(m, "POST") == 0)
		return M_POST;
	if (strcmp(m, "DELETE") == 0)
		return M_DELETE;
	return 0x100;
}

/* A request is complete: answer it, or start answering it. */
static void
route(struct conn *c)
{
	struct req *r = c->req;
	const struct route_entry *e = NULL;
	const char *q, *v, *seg = NULL;
	char path[1024];
	size_t plen, i, n;

	q = strchr(r->target, '?');
	plen = q ? (size_t)(q - r->target) : strlen(r->target);
	if (plen >= sizeof(path))
		plen = sizeof(path) - 1;
	memcpy(path, r->target, plen);
	path[plen] = '\0';

	if (strncmp(path, "/_fake/", 7) == 0 && route_control(c, path))
		return;
	log_add(r);
	if ((v = req_header(r, "X-Fake-Ttft")) != NULL)
		r->set.ttft_ms = parse_ms(v, r->set.ttft_ms);
	if ((v = req_header(r, "X-Fake-Delay")) != NULL)
		r->set.delay_ms = parse_ms(v, r->set.delay_ms);
	if ((v = req_header(r, "X-Fake-Tokens")) != NULL)
		r->set.tokens = parse_ms(v, r->set.tokens);
	if ((v = req_header(r, "X-Fake-Fault")) != NULL)
		parse_fault(v, &r->set.fault);

	r->drip_ms = r->set.delay_ms > 0 ? r->set.delay_ms : 100;

	if (host_check && !host_allowed(req_header(r, "Host"))) {
		r->set.fault = FAULT_NONE;
		reply_empty(c, 403);
		goto out;
	}
	r->openai = strncmp(path, "/v1/", 4) == 0;
	r->anthropic = strcmp(path, "/v1/messages") == 0;
	if (openai_key != NULL) {
		/* An OpenAI-compatible upstream: /v1, with its own key. */
		if (!r->openai || r->anthropic) {
			r->set.fault = FAULT_NONE;
			reply_empty(c, 404);
			goto out;
		}
		v = req_header(r, "Authorization");
		if (v == NULL || strncmp(v, "Bearer ", 7) != 0 ||
		    strcmp(v + 7, openai_key) != 0) {
			r->set.fault = FAULT_NONE;
			reply_error(c, 401, "Incorrect API key provided");
			goto out;
		}
	}
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		n = strlen(routes[i].path);
		if (routes[i].path[n - 1] == '/' && n > 1) {
			if (strncmp(path, routes[i].path, n) == 0 &&
			    path[n] != '\0' && strchr(path + n, '/') == NULL) {
				e = &routes[i];
				seg = path + n;
				break;
			}
		} else if (strcmp(path, routes[i].path) == 0) {
			e = &routes[i];
			break;
		}
	}
	if (e == NULL) {
		r->set.fault = FAULT_NONE;
		reply(c, 404, "text/plain", "404 page not found", 18);
		goto out;
	}
	if ((e->methods & method_bit(r->method)) == 0) {
		r->set.fault = FAULT_NONE;
		reply(c, 405, "text/plain", "405 method not allowed", 22);
		goto out;
	}
	if (apply_fault(c, e->streams && e->fn != NULL))
		goto out;
	if (e->fn != NULL)
		e->fn(c);
	else if (strcmp(e->path, "/api/blobs/") == 0)
		api_blobs(c, seg, strlen(seg));
	else
		v1_model(c, seg, strlen(seg));
out:
	/* The handlers have taken what they need from a long body. */
	if (r->body.len > LOG_BODY_MAX) {
		r->body.len = LOG_BODY_MAX;
		r->body.data = realloc(r->body.data, LOG_BODY_MAX + 1);
		r->body.data[LOG_BODY_MAX] = '\0';
		r->body.cap = LOG_BODY_MAX + 1;
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: fake-ollama [-q] [-l ADDR:PORT] [-p PORTFILE] "
	    "[-m MODEL,...] [--ttft MS] [--delay MS]\n"
	    "                   [--tokens N] [--fault MODE] "
	    "[--num-parallel N] [--max-loaded K]\n"
	    "                   [--load-ms [MODEL=]MS] [--max-queue N] "
	    "[--keep-alive DURATION]\n"
	    "                   [--ps-blocks] [--preload MODEL,...]\n");
	exit(2);
}

/* Bind the listening socket; remembers whether to check Host. */
static void
listen_on(const char *spec)
{
	struct addrinfo hints, *res;
	char host[256];
	const char *colon, *port;
	size_t n;
	int one = 1, rc;

	if (spec[0] == '[') {
		if ((colon = strstr(spec, "]:")) == NULL)
			fatal("bad listen address: %s", spec);
		n = (size_t)(colon - spec - 1);
		port = colon + 2;
		spec++;
	} else {
		if ((colon = strrchr(spec, ':')) == NULL)
			fatal("bad listen address: %s", spec);
		n = (size_t)(colon - spec);
		port = colon + 1;
	}
	if (n >= sizeof(host))
		fatal("bad listen address: %s", spec);
	memcpy(host, spec, n);
	host[n] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(n ? host : NULL, port, &hints, &res)) != 0)
		fatal("%s: %s", spec, gai_strerror(rc));
	listen_fd = socket(res->ai_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (listen_fd == -1)
		fatal("socket: %s", strerror(errno));
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(listen_fd, res->ai_addr, res->ai_addrlen) == -1)
		fatal("bind %s: %s", spec, strerror(errno));
	if (listen(listen_fd, 4096) == -1)
		fatal("listen: %s", strerror(errno));
	if (res->ai_family == AF_INET)
		host_check = ntohl(((struct sockaddr_in *)res->ai_addr)->
		    sin_addr.s_addr) >> 24 == 127;
	else
		host_check = IN6_IS_ADDR_LOOPBACK(
		    &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr);
	freeaddrinfo(res);
}

/* Write the port we got, atomically, for whoever started us. */
static void
write_portfile(const char *file)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char tmp[PATH_MAX];
	FILE *f;
	int port;

	if (getsockname(listen_fd, (struct sockaddr *)&ss, &len) == -1)
		fatal("getsockname: %s", strerror(errno));
	port = ss.ss_family == AF_INET ?
	    ntohs(((struct sockaddr_in *)&ss)->sin_port) :
	    ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	if ((f = fopen(tmp, "w")) == NULL)
		fatal("%s: %s", tmp, strerror(errno));
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0 || rename(tmp, file) == -1)
		fatal("%s: %s", file, strerror(errno));
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ttft", required_argument, NULL, 'T' },
		{ "delay", required_argument, NULL, 'D' },
		{ "tokens", required_argument, NULL, 'N' },
		{ "fault", required_argument, NULL, 'F' },
		{ "num-parallel", required_argument, NULL, 'P' },
		{ "max-loaded", required_argument, NULL, 'K' },
		{ "load-ms", required_argument, NULL, 'L' },
		{ "max-queue", required_argument, NULL, 'Q' },
		{ "keep-alive", required_argument, NULL, 'A' },
		{ "ps-blocks", no_argument, NULL, 'B' },
		{ "openai-key", required_argument, NULL, 'O' },
		{ "preload", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 }
	};
	struct epoll_event ev, events[256];
	const char *listen_spec = "127.0.0.1:11434", *portfile = NULL;
	const char *preload = NULL;
	const char *model_list =
	    "llama3.2:latest,qwen2.5:0.5b,nomic-embed-text:latest";
	struct handler *hp;
	struct runner *r;
	sigset_t mask;
	uint64_t now;
	char *end, err[256];
	int i, n, ch, timeout;

	while ((ch = getopt_long(argc, argv, "l:p:m:q", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			listen_spec = optarg;
			break;
		case 'p':
			portfile = optarg;
			break;
		case 'm':
			model_list = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'T':
			if ((cfg.ttft_ms = parse_ms(optarg, -1)) < 0)
				usage();
			break;
		case 'D':
			if ((cfg.delay_ms = parse_ms(optarg, -1)) < 0)
				usage();
			break;
		case 'N':
			if ((cfg.tokens = parse_ms(optarg, -1)) < 0)
				usage();
			break;
		case 'F':
			if (parse_fault(optarg, &cfg.fault) == -1)
				usage();
			break;
		case 'P':
			if ((sched_parallel = parse_ms(optarg, -1)) < 0)
				usage();
			sched_on = 1;
			break;
		case 'K':
			if ((sched_max_loaded = parse_ms(optarg, -1)) < 0)
				usage();
			sched_on = 1;
			break;
		case 'L':
			load_time_set(optarg);
			sched_on = 1;
			break;
		case 'Q':
			if ((sched_max_queue = parse_ms(optarg, -1)) < 0)
				usage();
			sched_on = 1;
			break;
		case 'A':
			/* As OLLAMA_KEEP_ALIVE: a bare number is seconds. */
			sched_keep_alive = strtod(optarg, &end);
			if ((end == optarg || *end != '\0') &&
			    duration_parse(optarg, &sched_keep_alive, err,
			    sizeof(err)) == -1)
				fatal("--keep-alive: %s", err);
			if (sched_keep_alive < 0)
				sched_keep_alive = -1;
			sched_on = 1;
			break;
		case 'B':
			sched_ps_blocks = 1;
			sched_on = 1;
			break;
		case 'O':
			openai_key = optarg;
			break;
		case 'R':
			preload = optarg;
			sched_on = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	models_set(model_list);
	if (gethostname(hostname, sizeof(hostname) - 1) == -1)
		hostname[0] = '\0';

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd: %s", strerror(errno));

	listen_on(listen_spec);
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1: %s", strerror(errno));
	ev.events = EPOLLIN;
	ev.data.ptr = &listener_handler;
	epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev);
	ev.data.ptr = &signal_handler;
	epoll_ctl(epfd, EPOLL_CTL_ADD, sig_fd, &ev);
	if (sched_on) {
		sched_fd = timerfd_create(CLOCK_MONOTONIC,
		    TFD_NONBLOCK | TFD_CLOEXEC);
		if (sched_fd == -1)
			fatal("timerfd_create: %s", strerror(errno));
		ev.data.ptr = &sched_handler;
		epoll_ctl(epfd, EPOLL_CTL_ADD, sched_fd, &ev);
		/* Their keep_alive needs the timer. */
		if (preload != NULL) {
			runners_preload(preload);
			sched_arm();
		}
	}
	if (portfile != NULL)
		write_portfile(portfile);
	if (!quiet)
		fprintf(stderr, "fake-ollama: listening on %s\n", listen_spec);

	while (running) {
		timeout = -1;
		if (heap_len > 0) {
			now = now_ms();
			timeout = heap[0]->deadline <= now ? 0 :
			    (int)(heap[0]->deadline - now);
		}
		n = epoll_wait(epfd, events, 256, timeout);
		if (n == -1 && errno != EINTR)
			fatal("epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			hp = events[i].data.ptr;
			hp->fn(hp, events[i].events);
		}
		timers_run();
	}

	/* Free everything, so that leak checkers see a clean exit. */
	while (conns != NULL)
		conn_free(conns);
	log_clear();
	models_free();
	while ((r = TAILQ_FIRST(&runners)) != NULL)
		runner_unload(r);
	load_counts_clear();
	for (i = 0; i < (int)nload_times; i++)
		free(load_times[i].name);
	free(load_times);
	for (i = 0; i < (int)nblobs; i++)
		free(blobs[i]);
	free(blobs);
	free(heap);
	buf_free(&scratch);
	close(listen_fd);
	close(sig_fd);
	if (sched_fd != -1)
		close(sched_fd);
	close(epfd);
	return 0;
}
