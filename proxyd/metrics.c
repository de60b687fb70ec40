/*
 * metrics.c: Prometheus text on GET /metrics.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "backend.h"
#include "buf.h"
#include "cache.h"
#include "conn.h"
#include "gpu.h"
#include "metrics.h"
#include "origin.h"
#include "models.h"
#include "proxy.h"
#include "fleet.h"
#include "server.h"
#include "usage.h"
#include "xmalloc.h"

#define METRICS_BUCKETS	256	/* hash buckets, a power of two */

static const double metrics_bounds[] = {
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
};
#define METRICS_NBOUNDS	(sizeof metrics_bounds / sizeof metrics_bounds[0])

/* One labelled series: its label text and its counters. */
struct metrics_series {
	char			*labels;	/* name="value",... */
	uint64_t		 a, b, c;	/* meaning depends on the table */
	struct metrics_series	*next;
};

struct metrics_histogram {
	uint64_t	buckets[METRICS_NBOUNDS];
	uint64_t	count;
	double		sum;
};

/*
 * requests: a = count; tokens: a = prompt, b = completion, c = requests;
 * models (keyed by the bare model name, for the live view): the same.
 */
static struct metrics_series	*metrics_requests[METRICS_BUCKETS];
static struct metrics_series	*metrics_tokens[METRICS_BUCKETS];
static struct metrics_series	*metrics_by_model[METRICS_BUCKETS];
static struct metrics_totals	 metrics_total;
static struct metrics_histogram	 metrics_ttft, metrics_duration;
static struct metrics_histogram	 metrics_queue;

static unsigned
metrics_hash(const char *s)
{
	uint32_t	h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h & (METRICS_BUCKETS - 1);
}

void
metrics_escape(struct buf *b, const char *v)
{
	for (; v != NULL && *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			buf_add_str(b, "\\n");
		else
			buf_add(b, v, 1);
	}
}

static struct metrics_series *
metrics_get(struct metrics_series **table, const char *labels)
{
	unsigned		 h = metrics_hash(labels);
	struct metrics_series	*s;

	for (s = table[h]; s != NULL; s = s->next) {
		if (strcmp(s->labels, labels) == 0)
			return s;
	}
	s = xcalloc(1, sizeof *s);
	s->labels = xstrdup(labels);
	s->next = table[h];
	table[h] = s;
	return s;
}

static void
metrics_histogram_add(struct metrics_histogram *h, double v)
{
	for (size_t i = 0; i < METRICS_NBOUNDS; i++) {
		if (v <= metrics_bounds[i])
			h->buckets[i]++;
	}
	h->count++;
	h->sum += v;
}

/*
 * a, b, c of a series take a request's prompt, completion and count.
 * Tokens of an answer from the cache are no backend's work and are not
 * counted (the cache's own metrics show its hits).
 */
static void
metrics_tokens_add(struct metrics_series *s, const struct usage_row *r)
{
	if (!(r->flags & USAGE_CACHED)) {
		s->a += (uint64_t)r->prompt_tokens;
		s->b += (uint64_t)r->completion_tokens;
	}
	s->c++;
}

void
metrics_observe(const struct usage_row *r, const char *user)
{
	const char	*model = r->model != NULL ? models_label(r->model) : NULL;
	struct buf	 l;

	alert_observe_status(r->status);
	metrics_total.requests++;
	if (r->status >= 400)
		metrics_total.errors++;
	if (!(r->flags & USAGE_CACHED)) {
		metrics_total.prompt_tokens += (uint64_t)r->prompt_tokens;
		metrics_total.completion_tokens +=
		    (uint64_t)r->completion_tokens;
	}
	/* A series a model the fleet knows; every other name is one "other". */
	if (model != NULL)
		metrics_tokens_add(metrics_get(metrics_by_model, model), r);
	buf_init(&l);
	buf_add_str(&l, "endpoint=\"");
	metrics_escape(&l, r->endpoint);
	buf_printf(&l, "\",code=\"%d\"", r->status);
	metrics_get(metrics_requests, buf_cstr(&l))->a++;
	buf_reset(&l);
	buf_add_str(&l, "user=\"");
	metrics_escape(&l, user);
	buf_add_str(&l, "\",model=\"");
	metrics_escape(&l, model);
	buf_add_str(&l, "\"");
	metrics_tokens_add(metrics_get(metrics_tokens, buf_cstr(&l)), r);
	buf_free(&l);
	if (r->ttft_ms >= 0)
		metrics_histogram_add(&metrics_ttft, (double)r->ttft_ms / 1000.0);
	metrics_histogram_add(&metrics_duration, (double)r->duration_ms / 1000.0);
}

void
metrics_queue_wait(double seconds)
{
	metrics_histogram_add(&metrics_queue, seconds);
	alert_queue_wait((uint64_t)(seconds * 1000.0));
}

static void
metrics_head(struct buf *b, const char *name, const char *type,
    const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metrics_histogram_render(struct buf *b, const char *name, const char *help,
    const struct metrics_histogram *h)
{
	metrics_head(b, name, "histogram", help);
	for (size_t i = 0; i < METRICS_NBOUNDS; i++)
		buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name,
		    metrics_bounds[i], (unsigned long long)h->buckets[i]);
	buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n",
	    name, (unsigned long long)h->count, name, h->sum, name,
	    (unsigned long long)h->count);
}

static void	metrics_scalar(struct buf *, const char *, const char *,
		    const char *, uint64_t);

/* The fleet queue (fleet.c): depth, waits, and why requests left it. */
static void
metrics_queue_render(struct buf *b)
{
	const struct fleet_stats	*s = fleet_stats();

	metrics_scalar(b, "ogate_requests_queued", "gauge",
	    "Requests waiting for a backend slot.", fleet_queued());
	metrics_histogram_render(b, "ogate_queue_wait_seconds",
	    "Time requests waited in the queue, whether they were then "
	    "served, timed out or left.", &metrics_queue);
	metrics_head(b, "ogate_queue_exits_total", "counter",
	    "Requests that left the queue without a backend, by reason.");
	buf_printf(b, "ogate_queue_exits_total{reason=\"timeout\"} %llu\n"
	    "ogate_queue_exits_total{reason=\"queue_full\"} %llu\n"
	    "ogate_queue_exits_total{reason=\"user_full\"} %llu\n"
	    "ogate_queue_exits_total{reason=\"client_left\"} %llu\n"
	    "ogate_queue_exits_total{reason=\"cancelled\"} %llu\n",
	    (unsigned long long)s->timeouts, (unsigned long long)s->full,
	    (unsigned long long)s->user_full, (unsigned long long)s->left,
	    (unsigned long long)s->killed);
	metrics_scalar(b, "ogate_model_loads_routed_total", "counter",
	    "Requests sent to a backend where their model was not resident.",
	    s->cold);
}

static uint64_t
metrics_backend_up(const struct backend *be)
{
	return be->unreachable || backend_down(be) ? 0 : 1;
}

static uint64_t
metrics_backend_active(const struct backend *be)
{
	return be->active;
}

static uint64_t
metrics_backend_slots(const struct backend *be)
{
	return be->slots;
}

static uint64_t
metrics_backend_failures(const struct backend *be)
{
	return be->failures;
}

/* A metric of one series, without labels. */
static void
metrics_scalar(struct buf *b, const char *name, const char *type,
    const char *help, uint64_t value)
{
	metrics_head(b, name, type, help);
	buf_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

/* One series a backend, labelled with its name. */
static void
metrics_backends(struct buf *b, const char *name, const char *type,
    const char *help, uint64_t (*value)(const struct backend *))
{
	struct backend	*be;

	metrics_head(b, name, type, help);
	for (be = backend_first(); be != NULL; be = backend_next(be)) {
		buf_printf(b, "%s{backend=\"", name);
		metrics_escape(b, be->name);
		buf_printf(b, "\"} %llu\n", (unsigned long long)value(be));
	}
}

/* How the writing of usage rows goes; see usage.h. */
static void
metrics_usage(struct buf *b)
{
	struct usage_state	s;

	usage_state(&s);
	metrics_scalar(b, "ogate_usage_store_ok", "gauge",
	    "1 while usage rows are written, 0 while writes fail.", s.ok);
	metrics_scalar(b, "ogate_usage_rows_pending", "gauge",
	    "Usage rows waiting in memory to be written.", s.pending);
	metrics_scalar(b, "ogate_usage_write_failures_total", "counter",
	    "Writes of usage rows that failed and will be retried.",
	    s.failures);
	metrics_scalar(b, "ogate_usage_rows_dropped_total", "counter",
	    "Usage rows dropped over twice max_usage_backlog.", s.dropped);
	metrics_scalar(b, "ogate_usage_requests_refused_total", "counter",
	    "Inference requests refused because usage cannot be recorded.",
	    s.refused);
}

void
metrics_render(struct buf *b)
{
	uint64_t	open, idle, reused;

	metrics_head(b, "ogate_requests_total", "counter",
	    "Requests finished, by endpoint and HTTP status.");
	for (size_t i = 0; i < METRICS_BUCKETS; i++) {
		for (struct metrics_series *s = metrics_requests[i]; s != NULL;
		    s = s->next)
			buf_printf(b, "ogate_requests_total{%s} %llu\n", s->labels,
			    (unsigned long long)s->a);
	}
	metrics_head(b, "ogate_tokens_total", "counter",
	    "Tokens counted, by user, model and direction.");
	for (size_t i = 0; i < METRICS_BUCKETS; i++) {
		for (struct metrics_series *s = metrics_tokens[i]; s != NULL;
		    s = s->next) {
			buf_printf(b, "ogate_tokens_total{%s,direction=\"prompt\"} "
			    "%llu\n", s->labels, (unsigned long long)s->a);
			buf_printf(b, "ogate_tokens_total{%s,direction=\"completion\"}"
			    " %llu\n", s->labels, (unsigned long long)s->b);
		}
	}
	metrics_head(b, "ogate_user_requests_total", "counter",
	    "Requests finished, by user and model.");
	for (size_t i = 0; i < METRICS_BUCKETS; i++) {
		for (struct metrics_series *s = metrics_tokens[i]; s != NULL;
		    s = s->next)
			buf_printf(b, "ogate_user_requests_total{%s} %llu\n",
			    s->labels, (unsigned long long)s->c);
	}
	metrics_scalar(b, "ogate_requests_active", "gauge",
	    "Requests being forwarded now.", proxy_active());
	metrics_queue_render(b);
	metrics_scalar(b, "ogate_connections_refused_total", "counter",
	    "Connections closed at accept: over max_connections or "
	    "max_connections_per_ip, or while draining.",
	    server_stats.refused);
	metrics_scalar(b, "ogate_connections", "gauge",
	    "Open client connections.", conn_count());
	metrics_histogram_render(b, "ogate_time_to_first_token_seconds",
	    "Time from a request to the first byte of its answer.",
	    &metrics_ttft);
	metrics_histogram_render(b, "ogate_request_duration_seconds",
	    "Time from a request to the end of its answer.", &metrics_duration);
	metrics_backends(b, "ogate_backend_up", "gauge",
	    "1 unless the last attempt to reach the backend failed.",
	    metrics_backend_up);
	metrics_backends(b, "ogate_backend_requests_active", "gauge",
	    "Requests in flight to each backend.", metrics_backend_active);
	metrics_backends(b, "ogate_backend_slots_used", "gauge",
	    "Slots of each backend held by requests (max_concurrent bounds "
	    "them).", metrics_backend_slots);
	metrics_backends(b, "ogate_backend_failures_total", "counter",
	    "Transfers to each backend that failed.", metrics_backend_failures);
	origin_counts(&open, &idle, &reused);
	metrics_scalar(b, "ogate_backend_connections", "gauge",
	    "Connections to backends, in use or idle in the pools.", open);
	metrics_scalar(b, "ogate_backend_connections_idle", "gauge",
	    "Idle connections to backends, kept for reuse.", idle);
	metrics_scalar(b, "ogate_backend_connection_reuses_total", "counter",
	    "Requests sent over a kept connection instead of a new one.",
	    reused);
	metrics_scalar(b, "ogate_unauthorised_total", "counter",
	    "Requests refused for a missing or bad token.",
	    server_stats.unauthorised);
	metrics_scalar(b, "ogate_usage_rows_written_total", "counter",
	    "Usage rows committed to the database.", usage_rows_written());
	metrics_usage(b);
	cache_metrics(b);
	gpu_metrics(b);
}

const struct metrics_totals *
metrics_totals(void)
{
	return &metrics_total;
}

void
metrics_models(void (*f)(const char *, const struct metrics_totals *,
    void *), void *arg)
{
	for (size_t i = 0; i < METRICS_BUCKETS; i++) {
		for (struct metrics_series *s = metrics_by_model[i]; s != NULL;
		    s = s->next) {
			struct metrics_totals	t = { .requests = s->c,
						    .prompt_tokens = s->a,
						    .completion_tokens = s->b };

			f(s->labels, &t, arg);
		}
	}
}

void
metrics_free(void)
{
	struct metrics_series	**tables[] = { metrics_requests, metrics_tokens,
				    metrics_by_model };

	for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
		for (size_t i = 0; i < METRICS_BUCKETS; i++) {
			struct metrics_series	*s, *next;

			for (s = tables[t][i]; s != NULL; s = next) {
				next = s->next;
				free(s->labels);
				free(s);
			}
			tables[t][i] = NULL;
		}
	}
}
