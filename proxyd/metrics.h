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

/* Count a finished request; user may be NULL. */
void	metrics_observe(const struct usage_row *, const char *user);
/* The whole page, in the Prometheus text format 0.0.4. */
void	metrics_render(struct buf *);
void	metrics_free(void);

#endif
