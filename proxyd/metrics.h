/*
 * metrics.h: Prometheus text on GET /metrics.
 *
 * Counters are kept as requests finish (from the same figures as the
 * usage row), in small hash tables keyed by their labels, so serving
 * the page walks memory only.
 */
#ifndef OG_METRICS_H
#define OG_METRICS_H

struct buf;
struct usage_row;

/* What every finished request adds up to, since start. */
struct metrics_totals {
	uint64_t	requests;
	uint64_t	errors;		/* status 400 and above */
	uint64_t	prompt_tokens;
	uint64_t	completion_tokens;
};

/* Count a finished request; user may be NULL. */
void	metrics_observe(const struct usage_row *, const char *user);
/* The whole page, in the Prometheus text format 0.0.4. */
void	metrics_render(struct buf *);
/* A request left the queue after this long. */
void	metrics_queue_wait(double seconds);
void	metrics_free(void);
/* Append a label value, escaped as the text format wants. */
void	metrics_escape(struct buf *, const char *);
const struct metrics_totals *metrics_totals(void);
/* Call f for each model that has finished requests, with its totals. */
void	metrics_models(void (*f)(const char *model,
	    const struct metrics_totals *, void *), void *);

#endif
