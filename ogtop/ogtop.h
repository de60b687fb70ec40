/*
 * ogtop.h: what the files of ogtop share.
 *
 * ogtop.c runs a loop over the other parts. data.c fetches one
 * snapshot of the daemon per tick from the admin API and works out the
 * rates; view.c turns the snapshot into the sorted, filtered rows of the
 * current view (each view is a table of columns); meter.c draws the
 * meters and screen.c the rest: table, bars, message and key bar;
 * keys.c maps keys to actions and edits the line for search, filter and
 * prompts; graph.c keeps the history of a few figures and draws it.
 */
#ifndef OG_OGTOP_H
#define OG_OGTOP_H

#include <stddef.h>

#include <jansson.h>

/* Exit status, as ogctl's. */
#define OGTOP_EXIT_DONE		0
#define OGTOP_EXIT_FAILED	1
#define OGTOP_EXIT_USAGE	2
#define OGTOP_EXIT_UNREACHABLE	3

#define OGTOP_NVIEWS		4
#define VIEW_MAXCOLS		12
#define CELL_MAX		96
#define ROWKEY_MAX		64
#define TEXT_MAX		64

/*
 * The fetched state of the daemon, and the rates worked out from the
 * counters of successive snapshots.
 */
struct data_sample {
	double		 t;	/* seconds, monotonic */
	double		 requests;
	double		 tokens;
};

#define DATA_NSAMPLES	32

struct data {
	struct client		*client;
	char			*where;
	json_t			*snap;	/* latest snapshot; NULL before one */
	char			*error;	/* why the last fetch failed, or NULL */
	double			 window;	/* seconds the rates average over */

	/*
	 * The counters as last seen, and their sums of non-negative steps:
	 * rates are differences of these sums over the samples kept.
	 */
	int			 have_last;
	json_int_t		 last_requests;
	json_int_t		 last_tokens;
	json_int_t		 last_uptime;
	double			 sum_requests;
	double			 sum_tokens;
	struct data_sample	 samples[DATA_NSAMPLES];
	int			 first;
	int			 nsamples;

	int			 have_rates;
	double			 requests_per_s;
	double			 tokens_per_s;
};

struct data	*data_new(struct client *, int interval_ms);
void		 data_free(struct data *);
/* Fetch a snapshot. 0, or -1 with data->error saying why. */
int		 data_fetch(struct data *);
/*
 * Cancel a request. Returns 0 when it was cancelled, -1 otherwise; msg
 * says what happened either way.
 */
int		 data_cancel(struct data *, json_int_t, char *msg, size_t);
/* The array of the snapshot named member, or NULL. */
json_t		*data_array(struct data *, const char *member);
double		 data_now(void);

/*
 * One cell of the table: its text, for a bar how full it is, the number
 * it sorts by when it is a number, and whether the text is a list with
 * commas, which is cut between items when it does not fit.
 */
struct cell {
	char		 text[CELL_MAX];
	double		 fill;	/* 0 to 1 for a bar, < 0 for text */
	double		 number;
	int		 numeric;
	int		 list;
};

enum align {
	ALIGN_LEFT,
	ALIGN_RIGHT,
};

struct column {
	const char	*title;
	const char	*field;	/* the JSON member it shows */
	int		 width;	/* at least this wide */
	int		 grow;	/* takes a share of spare width */
	int		 drop;	/* hidden when narrow: the highest first; 0 never */
	enum align	 align;
	int		 desc;	/* sorted descending when first chosen */
	void		(*format)(json_t *, const struct column *,
			    struct cell *);
};

struct view {
	const char		*name;
	const char		*member;	/* the array in the snapshot */
	const char		*key;		/* what names a row */
	const struct column	*columns;
	int			 ncolumns;
	int			 sort;		/* the column sorted at start */
};

extern const struct view	*const view_table[OGTOP_NVIEWS];

struct row {
	json_t		*obj;	/* in the current snapshot */
	int		 seq;	/* its place there, to break ties */
	char		 key[ROWKEY_MAX];
	struct cell	 cells[VIEW_MAXCOLS];
};

/* What the user chose in each view. */
struct view_state {
	int		 sort;
	int		 desc;
	char		 selected[ROWKEY_MAX];	/* the key of the selected row */
	int		 index;			/* and where it was */
	int		 top;			/* first row on screen */
	char		 filter[TEXT_MAX];
};

enum mode {
	MODE_NORMAL,
	MODE_SEARCH,
	MODE_FILTER,
	MODE_CONFIRM,
	MODE_SORT,
	MODE_HELP,
};

struct ogtop {
	struct data		*data;
	struct graph		*graph;
	int			 show_graph;	/* the history area is on */
	int			 ascii;		/* no block characters */
	int			 interval_ms;
	int			 quit;
	int			 fetch_now;	/* fetch before the next draw */

	int			 view;
	struct view_state	 state[OGTOP_NVIEWS];
	struct row		*rows;
	int			 nrows;
	int			 page;		/* table rows on screen */

	enum mode		 mode;
	char			 search[TEXT_MAX];
	int			 search_failed;
	int			 sort_cursor;	/* in the sort menu */
	json_int_t		 cancel_id;	/* awaiting y/n */
	char			 message[256];
	int			 message_error;
	double			 message_time;	/* when it was set */
};

/* A message gives way to a daemon error after this many seconds. */
#define OGTOP_MESSAGE_S		5.0

/* ogtop.c */
void		 ogtop_message(struct ogtop *, int error, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* view.c */
const struct view *view_current(struct ogtop *);
struct view_state *view_state(struct ogtop *);
void		 view_init(struct ogtop *);
/* Rebuild the rows of the current view and place the selection. */
void		 view_build(struct ogtop *);
void		 view_free_rows(struct ogtop *);
/* Move the selection to a row index (clamped) and remember its key. */
void		 view_select(struct ogtop *, int);
struct row	*view_selected(struct ogtop *);
/* Select the next row, from index from on, that contains text. */
int		 view_search(struct ogtop *, const char *, int from);
void		 view_set_sort(struct ogtop *, int column);
/* Sizes in powers of 1024, for people. */
void		 view_format_bytes(char *, size_t, double);

/* How a piece of the screen looks: colours, or attributes without. */
enum style {
	STYLE_NORMAL,
	STYLE_CAPTION,
	STYLE_VALUE,
	STYLE_BRACKET,
	STYLE_BAR_LOW,
	STYLE_BAR_MID,
	STYLE_BAR_HIGH,
	STYLE_HEADER,
	STYLE_HEADER_SORT,
	STYLE_SELECTED,
	STYLE_FKEY,
	STYLE_FLABEL,
	STYLE_ERROR,
	STYLE_TAB,
	STYLE_DIM,
	STYLE_WARN,
	STYLE_COUNT,
};

/* meter.c */
/* Draw the meters from line y on; returns the line after them. */
int		 meter_draw(struct ogtop *, int y);

/* screen.c */
int		 screen_init(int colour);
void		 screen_end(void);
void		 screen_draw(struct ogtop *);
/* Text at (y, x), at most width long; returns where it ends. */
int		 screen_put(int y, int x, int width, enum style,
		    const char *);
int		 screen_putf(int y, int x, int width, enum style,
		    const char *, ...) __attribute__((format(printf, 5, 6)));
void		 screen_glyph(int y, int x, enum style, const char *);
/*
 * A bar of width cells with fill (0 to 1) and text inside; plain is
 * STYLE_NORMAL for colours by level, or the one style to draw it in.
 */
void		 screen_bar(int y, int x, int width, double fill,
		    const char *text, enum style plain);
/*
 * Which columns of a view fit in width, and how wide each is; the
 * column keep (the sorted one) is never left out.
 */
int		 screen_layout(const struct view *, int keep, int width,
		    int *shown, int *widths);

/* graph.c */
struct graph	*graph_new(int interval_ms, double now);
void		 graph_free(struct graph *);
/* Add the figures of the snapshot just fetched to the history. */
void		 graph_record(struct graph *, struct data *, double now);
/* Draw the area from line y in at most room lines; the line after it. */
int		 graph_draw(struct ogtop *, int y, int room);

/* keys.c */
void		 keys_handle(struct ogtop *, int key);

#endif
