/*
 * graph.c: the history area of ogtop, drawn as nvtop draws its charts:
 * for the gateway, tokens/s and the depth of its queue; for each GPU,
 * utilisation and memory; each a row (or a few, when the screen has
 * room) of columns whose height is the value, newest on the right.
 *
 * The history is ogtop's own: it starts when ogtop starts and is lost
 * when it quits. Time is cut into bins of a fixed length (the refresh
 * interval, but no shorter than GRAPH_MIN_STEP, so that a fast refresh
 * still shows minutes); a bin holds the mean of the samples taken in
 * it, and a ring keeps the last GRAPH_HISTORY bins of each series. A bin
 * without a sample (the daemon away, a GPU without the sensor) stays
 * blank rather than reading zero.
 *
 * Columns are block elements (U+2581 to U+2588, eighths of a cell)
 * where the terminal shows UTF-8, and ASCII characters of growing
 * weight with -C, with TERM=linux (whose console font may lack them),
 * or in a locale that is not UTF-8.
 */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ogtop.h"
#include "xmalloc.h"

/* Bins kept per series: wider than any terminal's graph needs. */
#define GRAPH_HISTORY	256
/* The shortest bin, seconds. */
#define GRAPH_MIN_STEP	2.0
/* GPUs with a history; more are counted on the title line. */
#define GRAPH_MAX_GPUS	8
/* No series is drawn taller than this many rows. */
#define GRAPH_MAX_ROWS	3
/* A row: caption, value, the columns, the scale. */
#define GRAPH_CAPTION	9
#define GRAPH_VALUE	6
#define GRAPH_LABEL	(GRAPH_CAPTION + 1 + GRAPH_VALUE + 1)
#define GRAPH_SCALE	6

enum graph_kind {
	GRAPH_TOKENS,		/* tokens/s, scaled to the highest shown */
	GRAPH_QUEUE,		/* requests queued, scaled likewise */
	GRAPH_UTIL,		/* percent */
	GRAPH_MEMORY,		/* bytes, out of the GPU's total */
};

#define GRAPH_NSERIES	(2 + 2 * GRAPH_MAX_GPUS)

struct graph_series {
	double		 sum[GRAPH_HISTORY];
	int		 n[GRAPH_HISTORY];
	double		 last;		/* the latest sample */
	int		 have_last;	/* in the latest snapshot */
	double		 top;		/* memory: the GPU's total */
};

struct graph {
	double			 step;	/* seconds a bin spans */
	double			 start;	/* when ogtop started */
	long			 bin;	/* the current bin, from start */
	struct graph_series	 series[GRAPH_NSERIES];
};

/* Eighths of a cell, 0 to 8: UTF-8 blocks and their ASCII stand-ins. */
static const char *const graph_blocks[9] = {
	" ", "\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83", "\xe2\x96\x84",
	"\xe2\x96\x85", "\xe2\x96\x86", "\xe2\x96\x87", "\xe2\x96\x88",
};
static const char graph_ascii[9] = { ' ', '_', '.', ',', '-', '=', '+',
    '*', '#' };

static void	graph_advance(struct graph *, double);
static void	graph_sample(struct graph_series *, long, int, double);
static void	graph_add(struct graph_series *, long, json_t *);
static double	graph_mean(const struct graph_series *, long);
static void	graph_format(char *, size_t, enum graph_kind, double);
static void	graph_series_draw(struct ogtop *, int, int, int,
		    const char *, enum graph_kind, struct graph_series *);

struct graph *
graph_new(int interval_ms, double now)
{
	struct graph	*g = xcalloc(1, sizeof *g);

	g->step = (double)interval_ms / 1000.0;
	if (g->step < GRAPH_MIN_STEP)
		g->step = GRAPH_MIN_STEP;
	g->start = now;
	return g;
}

void
graph_free(struct graph *g)
{
	free(g);
}

/*
 * Move to the bin that now falls in, emptying those passed over: after
 * a long gap no more than the whole ring.
 */
static void
graph_advance(struct graph *g, double now)
{
	long	bin = (long)((now - g->start) / g->step), b;

	if (bin <= g->bin)
		return;
	b = bin - g->bin > GRAPH_HISTORY ? bin - GRAPH_HISTORY : g->bin;
	for (b++; b <= bin; b++) {
		for (int s = 0; s < GRAPH_NSERIES; s++) {
			g->series[s].sum[b % GRAPH_HISTORY] = 0.0;
			g->series[s].n[b % GRAPH_HISTORY] = 0;
		}
	}
	g->bin = bin;
}

/* A sample into the current bin, or the lack of one. */
static void
graph_sample(struct graph_series *s, long bin, int have, double v)
{
	s->have_last = have;
	if (!have)
		return;
	s->last = v > 0.0 ? v : 0.0;
	s->sum[bin % GRAPH_HISTORY] += s->last;
	s->n[bin % GRAPH_HISTORY]++;
}

/* A number of the snapshot; null or missing is no sample. */
static void
graph_add(struct graph_series *s, long bin, json_t *v)
{
	graph_sample(s, bin, json_is_number(v), json_number_value(v));
}

void
graph_record(struct graph *g, struct data *d, double now)
{
	json_t	*gpus = data_array(d, "gpus"), *gpu;
	json_t	*totals = json_object_get(d->snap, "totals");
	size_t	 i;

	graph_advance(g, now);
	/* Until two snapshots are in there is no rate: a blank, not 0. */
	graph_sample(&g->series[0], g->bin, d->have_rates, d->tokens_per_s);
	graph_add(&g->series[1], g->bin, json_object_get(totals,
	    "requests_queued"));
	for (i = 0; i < GRAPH_MAX_GPUS; i++) {
		struct graph_series	*util = &g->series[2 + 2 * i];
		struct graph_series	*mem = util + 1;

		if ((gpu = json_array_get(gpus, i)) == NULL) {
			util->have_last = mem->have_last = 0;
			continue;
		}
		graph_add(util, g->bin, json_object_get(gpu, "util_pct"));
		mem->top = json_number_value(json_object_get(gpu,
		    "mem_total_bytes"));
		if (mem->top > 0.0)
			graph_add(mem, g->bin, json_object_get(gpu,
			    "mem_used_bytes"));
		else
			mem->have_last = 0;
	}
}

/* The mean of a bin, or NAN when it had no sample. */
static double
graph_mean(const struct graph_series *s, long bin)
{
	int	k = (int)(bin % GRAPH_HISTORY);

	if (bin < 0 || s->n[k] == 0)
		return NAN;
	return s->sum[k] / s->n[k];
}

/* A value for the caption or the scale, in GRAPH_VALUE columns. */
static void
graph_format(char *buf, size_t len, enum graph_kind kind, double v)
{
	switch (kind) {
	case GRAPH_UTIL:
		snprintf(buf, len, "%.0f%%", v);
		break;
	case GRAPH_MEMORY:
		view_format_bytes(buf, len, v);
		break;
	default:
		/* Tokens/s as the meter line writes it; a queue in whole. */
		if (v < 1000.0 && (kind == GRAPH_TOKENS || v != floor(v)))
			snprintf(buf, len, "%.1f", v);
		else if (v < 100000.0)
			snprintf(buf, len, "%.0f", v);
		else
			snprintf(buf, len, "%.0fk", v / 1000.0);
		break;
	}
}

/*
 * A column's colour: for a percentage its level, as the meters' bars;
 * a count is scaled to its highest, so its height says nothing of too
 * much and it has one colour.
 */
static enum style
graph_style(enum graph_kind kind, double fill)
{
	if (kind == GRAPH_TOKENS || kind == GRAPH_QUEUE)
		return STYLE_CAPTION;
	if (fill >= 0.8)
		return STYLE_BAR_HIGH;
	if (fill >= 0.5)
		return STYLE_BAR_MID;
	return STYLE_BAR_LOW;
}

/*
 * One series in rows rows from line y: the caption and the latest value
 * on its top line, the columns, and on the right what a full column
 * stands for. Counts are scaled to the highest bin on screen (at least
 * 1), so that a quiet gateway's small numbers still show.
 */
static void
graph_series_draw(struct ogtop *o, int y, int rows, int width,
    const char *caption, enum graph_kind kind, struct graph_series *s)
{
	struct graph	*g = o->graph;
	char		 value[32], scale[32];
	double		 top = 1.0, v;
	int		 x = GRAPH_LABEL;

	if (kind == GRAPH_UTIL)
		top = 100.0;
	else if (kind == GRAPH_MEMORY)
		top = s->top;
	else
		for (int c = 0; c < width; c++) {
			v = graph_mean(s, g->bin - c);
			if (!isnan(v) && v > top)
				top = v;
		}
	if (s->have_last)
		graph_format(value, sizeof value, kind, s->last);
	else
		snprintf(value, sizeof value, "-");
	graph_format(scale, sizeof scale, kind, top);
	screen_put(y, 0, GRAPH_CAPTION, STYLE_CAPTION, caption);
	screen_putf(y, GRAPH_CAPTION + 1, GRAPH_VALUE, STYLE_VALUE, "%*s",
	    GRAPH_VALUE, value);
	screen_putf(y, x + width + 1, GRAPH_SCALE, STYLE_DIM, "%*s",
	    GRAPH_SCALE, scale);

	/* The oldest bin on the left; the current one, filling, right. */
	for (int c = 0; c < width; c++) {
		enum style	st;
		double		fill;
		int		eighths;

		v = graph_mean(s, g->bin - (width - 1 - c));
		if (isnan(v) || top <= 0.0)
			continue;
		fill = v / top > 1.0 ? 1.0 : v / top;
		eighths = (int)lround(fill * rows * 8);
		st = graph_style(kind, fill);
		/* The bottom row fills first, then the one above it. */
		for (int r = 0; r < rows; r++) {
			int	e = eighths - 8 * (rows - 1 - r);
			char	ch[2];

			if (e <= 0)
				continue;
			if (e > 8)
				e = 8;
			ch[0] = graph_ascii[e];
			ch[1] = '\0';
			screen_glyph(y + r, x + c, st, o->ascii ? ch :
			    graph_blocks[e]);
		}
	}
}

/* The series that would be drawn: the gateway's two, two per GPU. */
static int
graph_count(struct data *d, int *ngpus)
{
	json_t	*gpus = data_array(d, "gpus");

	*ngpus = gpus != NULL ? (int)json_array_size(gpus) : 0;
	return 2 + 2 * (*ngpus < GRAPH_MAX_GPUS ? *ngpus : GRAPH_MAX_GPUS);
}

/*
 * The area from line y, in no more than room lines: a title, then as
 * many series as fit, each as tall as the room allows. Returns the line
 * after it; y itself when there is no room.
 */
int
graph_draw(struct ogtop *o, int y, int room)
{
	struct graph	*g = o->graph;
	char		 caption[16], title[128];
	int		 ngpus, nseries, shown, rows, width;
	int		 secs = (int)lround(g->step);

	width = COLS - GRAPH_LABEL - 1 - GRAPH_SCALE;
	if (room < 2 || width < 8)
		return y;
	/* While the daemon is away, time goes on: blanks come in. */
	if (o->data->error != NULL)
		graph_advance(g, data_now());
	nseries = graph_count(o->data, &ngpus);
	shown = nseries < room - 1 ? nseries : room - 1;
	shown -= shown % 2;
	if (shown == 0)
		shown = 1;
	rows = (room - 1) / shown;
	if (rows > GRAPH_MAX_ROWS)
		rows = GRAPH_MAX_ROWS;
	if (ngpus > (shown - 2) / 2 && shown >= 2)
		snprintf(title, sizeof title, "History, %ds a column "
		    "(g hides)  +%d GPUs not shown", secs,
		    ngpus - (shown - 2) / 2);
	else
		snprintf(title, sizeof title, "History, %ds a column (g hides)",
		    secs);
	screen_put(y++, 0, COLS, STYLE_DIM, title);

	for (int i = 0; i < shown; i++, y += rows) {
		int	gpu = (i - 2) / 2;

		if (i == 0)
			graph_series_draw(o, y, rows, width, "Tok/s",
			    GRAPH_TOKENS, &g->series[0]);
		else if (i == 1)
			graph_series_draw(o, y, rows, width, "Queued",
			    GRAPH_QUEUE, &g->series[1]);
		else {
			snprintf(caption, sizeof caption, "GPU%lld %s",
			    (long long)json_integer_value(json_object_get(
			    json_array_get(data_array(o->data, "gpus"),
			    (size_t)gpu), "index")), i % 2 == 0 ? "util" :
			    "mem");
			graph_series_draw(o, y, rows, width, caption,
			    i % 2 == 0 ? GRAPH_UTIL : GRAPH_MEMORY,
			    &g->series[i]);
		}
	}
	return y;
}
