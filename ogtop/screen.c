/*
 * screen.c: the terminal and what ogtop draws on it, top to bottom: the
 * meters (meter.c), the line of views, the message line, the table with
 * its header and selection bar, and the function-key bar; the help page
 * and the sort menu over them. Each tick erases stdscr, draws it all
 * and refreshes once, so that curses sends only what changed.
 *
 * Output is ASCII (bars are '|' between '[' and ']') so that any
 * terminal, TERM=linux included, shows the same screen; colour is an
 * extra when the terminal has it and -C was not given. The history
 * graphs (graph.c), when shown, are the exception: block characters
 * where the terminal has them.
 */
#include <curses.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "ogtop.h"

/* Each style in colour, and without (htop's monochrome scheme). */
static const struct {
	short	fg;
	short	bg;
	attr_t	colour;
	attr_t	mono;
} screen_styles[STYLE_COUNT] = {
	[STYLE_NORMAL] = { -1, -1, A_NORMAL, A_NORMAL },
	[STYLE_CAPTION] = { COLOR_CYAN, -1, A_NORMAL, A_NORMAL },
	[STYLE_VALUE] = { -1, -1, A_BOLD, A_BOLD },
	[STYLE_BRACKET] = { -1, -1, A_BOLD, A_BOLD },
	[STYLE_BAR_LOW] = { COLOR_GREEN, -1, A_NORMAL, A_NORMAL },
	[STYLE_BAR_MID] = { COLOR_YELLOW, -1, A_NORMAL, A_NORMAL },
	[STYLE_BAR_HIGH] = { COLOR_RED, -1, A_BOLD, A_BOLD },
	[STYLE_HEADER] = { COLOR_BLACK, COLOR_GREEN, A_NORMAL, A_REVERSE },
	[STYLE_HEADER_SORT] = { COLOR_BLACK, COLOR_CYAN, A_NORMAL,
	    A_REVERSE | A_BOLD },
	[STYLE_SELECTED] = { COLOR_BLACK, COLOR_CYAN, A_NORMAL,
	    A_REVERSE | A_BOLD },
	[STYLE_FKEY] = { -1, -1, A_BOLD, A_BOLD },
	[STYLE_FLABEL] = { COLOR_BLACK, COLOR_CYAN, A_NORMAL, A_REVERSE },
	[STYLE_ERROR] = { COLOR_RED, -1, A_BOLD, A_BOLD },
	[STYLE_TAB] = { COLOR_BLACK, COLOR_GREEN, A_BOLD, A_REVERSE },
	[STYLE_DIM] = { COLOR_BLUE, -1, A_BOLD, A_DIM },
	[STYLE_WARN] = { COLOR_YELLOW, -1, A_BOLD, A_BOLD | A_UNDERLINE },
};

static const char *const screen_help[] = {
	"ogtop: a live view of the ogate gateway",
	"Views",
	"  Tab 1 2 3 4    the next view; Requests, Users, Backends, Models",
	"Selection",
	"  Up Down PgUp PgDn Home End   move the selection bar",
	"Sorting",
	"  F6             choose the sort column from a menu",
	"  < >            sort by the column to the left or right",
	"  I              invert the order",
	"Finding",
	"  / F3           search: select the next row that contains the text;",
	"                 n or F3 again for the next one",
	"  \\ F4           filter: show only the rows that contain the text;",
	"                 Esc clears it",
	"Acting",
	"  k F9           cancel the selected request (Requests view), asks y/n",
	"Other",
	"  g              show or hide the history graphs",
	"  h ? F1         this help         Ctrl-L   redraw the screen",
	"  q F10          quit",
	"",
	"  Req/s and Tok/s: the steps of the daemon's counters between",
	"  snapshots over the time between them, averaged over 2 s or more.",
	"  Press any key to return.",
};

struct screen_key {
	const char	*key;
	const char	*label;
};

static const struct screen_key screen_keys_normal[] = {
	{ "F1", "Help" }, { "F3", "Search" }, { "F4", "Filter" },
	{ "F6", "SortBy" }, { "F9", "Kill" }, { "F10", "Quit" }, { NULL, NULL },
};
static const struct screen_key screen_keys_search[] = {
	{ "Enter", "Done" }, { "Esc", "Cancel" }, { "F3", "Next" },
	{ NULL, NULL },
};
static const struct screen_key screen_keys_filter[] = {
	{ "Enter", "Done" }, { "Esc", "Clear" }, { NULL, NULL },
};
static const struct screen_key screen_keys_confirm[] = {
	{ "y", "Yes" }, { "n", "No" }, { NULL, NULL },
};
static const struct screen_key screen_keys_sort[] = {
	{ "Enter", "Sort" }, { "Esc", "Cancel" }, { NULL, NULL },
};

static SCREEN	*screen_term;
static int	 screen_colour;

static attr_t
screen_attr(enum style s)
{
	if (!screen_colour)
		return screen_styles[s].mono;
	return screen_styles[s].colour | COLOR_PAIR(s);
}

int
screen_init(int colour)
{
	if ((screen_term = newterm(NULL, stdout, stdin)) == NULL)
		return -1;
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	set_escdelay(25);
	if (colour && has_colors() && start_color() == OK) {
		/* -1 is the terminal's own colour, where it has one. */
		int	dflt = use_default_colors() == OK;

		screen_colour = 1;
		for (int s = 1; s < STYLE_COUNT; s++) {
			short	fg = screen_styles[s].fg;
			short	bg = screen_styles[s].bg;

			if (!dflt && fg == -1)
				fg = COLOR_WHITE;
			if (!dflt && bg == -1)
				bg = COLOR_BLACK;
			init_pair((short)s, fg, bg);
		}
	}
	return 0;
}

void
screen_end(void)
{
	if (screen_term == NULL)
		return;
	endwin();
	delscreen(screen_term);
	screen_term = NULL;
}

/*
 * Write what fits of text in width columns at (y, x), clipped to the
 * screen. Every string ogtop draws passes here, escaped: a name from
 * the daemon holding ESC or a newline must neither reach the terminal
 * nor break a row.
 */
int
screen_put(int y, int x, int width, enum style s, const char *text)
{
	char	*safe;
	size_t	 n;
	int	 used;

	if (y < 0 || y >= LINES || x < 0 || x >= COLS || width <= 0)
		return x;
	if (width > COLS - x)
		width = COLS - x;
	safe = escape_string(text);
	n = escape_fit(safe, width, &used);
	attrset(screen_attr(s));
	mvaddnstr(y, x, safe, (int)n);
	attrset(A_NORMAL);
	free(safe);
	return x + used;
}

/*
 * One character of ogtop's own (a block of the graph) at (y, x): not
 * escaped, so never a string from the daemon.
 */
void
screen_glyph(int y, int x, enum style s, const char *glyph)
{
	if (y < 0 || y >= LINES || x < 0 || x >= COLS)
		return;
	attrset(screen_attr(s));
	mvaddstr(y, x, glyph);
	attrset(A_NORMAL);
}

/* The columns text takes when screen_put draws it. */
static int
screen_width(const char *text)
{
	char	*safe = escape_string(text);
	int	 w = escape_width(safe);

	free(safe);
	return w;
}

int
screen_putf(int y, int x, int width, enum style s, const char *fmt, ...)
{
	char	buf[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return screen_put(y, x, width, s, buf);
}

/* Paint width cells from x with a style: the ground for bars of text. */
static void
screen_fill(int y, int x, int width, enum style s)
{
	if (y < 0 || y >= LINES || x >= COLS)
		return;
	if (width > COLS - x)
		width = COLS - x;
	attrset(screen_attr(s));
	for (int i = 0; i < width; i++)
		mvaddch(y, x + i, ' ');
	attrset(A_NORMAL);
}

static enum style
screen_level(double fill)
{
	if (fill >= 0.8)
		return STYLE_BAR_HIGH;
	if (fill >= 0.5)
		return STYLE_BAR_MID;
	return STYLE_BAR_LOW;
}

/*
 * A bar, htop's way: '[', a '|' for each filled cell, the value's text
 * right-aligned inside, ']'. With plain set, it is drawn in one style
 * (on the selection bar).
 */
void
screen_bar(int y, int x, int width, double fill, const char *text,
    enum style plain)
{
	int	inner = width - 2, n, len = (int)strlen(text), at;
	char	ch[2] = { 0, 0 };

	if (inner < 1)
		return;
	if (fill < 0.0)
		fill = 0.0;
	if (fill > 1.0)
		fill = 1.0;
	n = (int)lround(fill * inner);
	if (fill > 0.0 && n == 0)
		n = 1;
	/* Short of room, "12.0G/80.0G" becomes "12.0G", then is cut. */
	if (len > inner && strchr(text, '/') != NULL &&
	    strchr(text, '/') - text <= inner)
		len = (int)(strchr(text, '/') - text);
	if (len > inner)
		len = inner;
	at = inner - len;
	screen_put(y, x, 1, plain != STYLE_NORMAL ? plain : STYLE_BRACKET, "[");
	for (int i = 0; i < inner; i++) {
		enum style	s = plain;

		if (i >= at)
			ch[0] = text[i - at];
		else
			ch[0] = i < n ? '|' : ' ';
		if (plain == STYLE_NORMAL && i < n && i < at)
			s = screen_level(fill);
		screen_put(y, x + 1 + i, 1, s, ch);
	}
	screen_put(y, x + 1 + inner, 1, plain != STYLE_NORMAL ? plain :
	    STYLE_BRACKET, "]");
}

/* [Requests] Users Backends Models            ogproxyd 0.1.0 */
static int
screen_tabs(struct ogtop *o, int y)
{
	const char	*version;
	int		 x = 0;

	for (int i = 0; i < OGTOP_NVIEWS; i++) {
		if (i == o->view)
			x = screen_putf(y, x, COLS, STYLE_TAB, "[%s]",
			    view_table[i]->name);
		else
			x = screen_putf(y, x, COLS, STYLE_NORMAL, " %s ",
			    view_table[i]->name);
		x = screen_put(y, x, COLS, STYLE_NORMAL, " ");
	}
	version = json_string_value(json_object_get(o->data->snap, "version"));
	if (version != NULL && x + 10 + screen_width(version) < COLS)
		screen_putf(y, COLS - 10 - screen_width(version), COLS,
		    STYLE_DIM, "ogproxyd %s", version);
	return y + 1;
}

/*
 * Why the daemon cannot be reached, and that ogtop keeps trying. A
 * long socket path gives way to the reason: ".../ogproxyd.sock".
 */
static void
screen_error(struct data *d, int y)
{
	const char	*at, *base;
	char		 text[512];

	snprintf(text, sizeof text, "%s - retrying", d->error);
	/* ssh://host is not a path to shorten. */
	if ((int)strlen(text) > COLS && strncmp(d->where, "ssh://", 6) != 0 &&
	    (at = strstr(d->error, d->where)) != NULL &&
	    (base = strrchr(d->where, '/')) != NULL && base != d->where)
		snprintf(text, sizeof text, "%.*s...%s%s - retrying",
		    (int)(at - d->error), d->error, base,
		    at + strlen(d->where));
	screen_put(y, 0, COLS, STYLE_ERROR, text);
}

/* What the user types, what went wrong, or what is set. */
static void
screen_message(struct ogtop *o, int y)
{
	struct view_state	*vs = view_state(o);
	int			 x;

	switch (o->mode) {
	case MODE_SEARCH:
		x = screen_put(y, 0, COLS, STYLE_CAPTION, "Search: ");
		x = screen_put(y, x, COLS, STYLE_VALUE, o->search);
		x = screen_put(y, x, 1, STYLE_SELECTED, " ");
		if (o->search_failed)
			screen_put(y, x + 1, COLS, STYLE_ERROR, "not found");
		return;
	case MODE_FILTER:
		x = screen_put(y, 0, COLS, STYLE_CAPTION, "Filter: ");
		x = screen_put(y, x, COLS, STYLE_VALUE, vs->filter);
		screen_put(y, x, 1, STYLE_SELECTED, " ");
		return;
	case MODE_CONFIRM:
		screen_put(y, 0, COLS, STYLE_ERROR, o->message);
		return;
	default:
		break;
	}
	/* What a key just did first, then why there is no fresh data. */
	if (o->message[0] != '\0' && (o->data->error == NULL ||
	    data_now() - o->message_time < OGTOP_MESSAGE_S))
		screen_put(y, 0, COLS, o->message_error ? STYLE_ERROR :
		    STYLE_VALUE, o->message);
	else if (o->data->error != NULL)
		screen_error(o->data, y);
	else if (vs->filter[0] != '\0') {
		x = screen_put(y, 0, COLS, STYLE_CAPTION, "Filter: ");
		x = screen_put(y, x, COLS, STYLE_VALUE, vs->filter);
		screen_put(y, x, COLS, STYLE_DIM, "  (\\ to change, Esc clears)");
	}
}

int
screen_layout(const struct view *v, int keep, int width, int *shown,
    int *widths)
{
	int	on[VIEW_MAXCOLS], total, n, grow, spare, worst;

	for (int i = 0; i < v->ncolumns; i++)
		on[i] = 1;
	for (;;) {
		total = -1;
		worst = -1;
		for (int i = 0; i < v->ncolumns; i++) {
			if (!on[i])
				continue;
			total += v->columns[i].width + 1;
			if (i != keep && v->columns[i].drop > 0 && (worst == -1 ||
			    v->columns[i].drop >= v->columns[worst].drop))
				worst = i;
		}
		if (total <= width || worst == -1)
			break;
		on[worst] = 0;
	}
	n = 0;
	grow = 0;
	for (int i = 0; i < v->ncolumns; i++) {
		if (!on[i])
			continue;
		shown[n] = i;
		widths[n++] = v->columns[i].width;
		grow += v->columns[i].grow;
	}
	spare = width - total;
	for (int k = 0; k < n && spare > 0 && grow > 0; k++) {
		int	g = v->columns[shown[k]].grow, add;

		if (g == 0)
			continue;
		add = spare * g / grow;
		widths[k] += add;
		spare -= add;
		grow -= g;
	}
	return n;
}

/* A cell's text, aligned in its width. */
static void
screen_cell(int y, int x, int width, enum align a, enum style s,
    const char *text)
{
	int	len = screen_width(text);

	if (a == ALIGN_RIGHT && len < width)
		x += width - len;
	screen_put(y, x, width, s, text);
}

static void
screen_header(struct ogtop *o, int y, int n, const int *shown,
    const int *widths)
{
	const struct view	*v = view_current(o);
	struct view_state	*vs = view_state(o);
	char			 title[32];
	int			 x = 0;

	screen_fill(y, 0, COLS, STYLE_HEADER);
	for (int k = 0; k < n; k++) {
		const struct column	*c = &v->columns[shown[k]];

		if (shown[k] == vs->sort) {
			snprintf(title, sizeof title, "%s%s", c->title,
			    vs->desc ? "v" : "^");
			screen_fill(y, x, widths[k], STYLE_HEADER_SORT);
			screen_cell(y, x, widths[k], c->align,
			    STYLE_HEADER_SORT, title);
		} else
			screen_cell(y, x, widths[k], c->align, STYLE_HEADER,
			    c->title);
		x += widths[k] + 1;
	}
}

/*
 * A list that does not fit its width: as many of its first items as fit
 * with a count of the others, "llama3.2:latest,+2"; when not even one
 * item fits with the count, the list is cut as any text. A list may end
 * in such a count already, of the items its cell had no room for.
 */
static const char *
screen_list(char *out, size_t len, const char *list, int width)
{
	char		 buf[CELL_MAX + 16];
	const char	*last;
	int		 n = 1, k, more = 0;

	snprintf(out, len, "%s", list);
	if (screen_width(list) <= width)
		return out;
	for (const char *p = list; *p != '\0'; p++)
		n += *p == ',';
	last = strrchr(list, ',') != NULL ? strrchr(list, ',') + 1 : list;
	if (last[0] == '+' && last[1] != '\0' &&
	    strspn(last + 1, "0123456789") == strlen(last + 1)) {
		more = atoi(last + 1);
		n--;
	}
	for (k = n - 1; k > 0; k--) {
		const char	*end = list;

		for (int i = 0; i < k; i++)
			end = strchr(end, ',') + 1;
		snprintf(buf, sizeof buf, "%.*s+%d", (int)(end - list), list,
		    n - k + more);
		if (screen_width(buf) <= width) {
			snprintf(out, len, "%s", buf);
			break;
		}
	}
	return out;
}

static void
screen_row(struct ogtop *o, int y, const struct row *r, int selected,
    int n, const int *shown, const int *widths)
{
	const struct view	*v = view_current(o);
	enum style		 s = selected ? STYLE_SELECTED : STYLE_NORMAL;
	const char		*text;
	char			 list[CELL_MAX + 16];
	int			 x = 0;

	if (selected)
		screen_fill(y, 0, COLS, STYLE_SELECTED);
	for (int k = 0; k < n; k++) {
		const struct cell	*c = &r->cells[shown[k]];

		if (c->fill >= 0.0)
			screen_bar(y, x, widths[k], c->fill, c->text, s);
		else {
			text = c->list ? screen_list(list, sizeof list,
			    c->text, widths[k]) : c->text;
			screen_cell(y, x, widths[k],
			    v->columns[shown[k]].align, s, text);
		}
		x += widths[k] + 1;
	}
}

static void
screen_empty(struct ogtop *o, int y)
{
	const struct view	*v = view_current(o);
	char			 text[128];

	if (o->data->snap == NULL)
		return;
	if (view_state(o)->filter[0] != '\0')
		snprintf(text, sizeof text, "no %s match the filter",
		    v->member);
	else if (o->view == 0)
		snprintf(text, sizeof text, "no requests in flight");
	else
		snprintf(text, sizeof text, "no %s", v->member);
	screen_put(y, 1, COLS - 1, STYLE_DIM, text);
}

/* The header and as many rows as fit, scrolled to keep the selection. */
static void
screen_table(struct ogtop *o, int y, int height)
{
	struct view_state	*vs = view_state(o);
	int			 shown[VIEW_MAXCOLS], widths[VIEW_MAXCOLS], n;

	o->page = height - 1;
	if (height < 1)
		return;
	n = screen_layout(view_current(o), vs->sort, COLS, shown, widths);
	screen_header(o, y++, n, shown, widths);
	if (o->page < 1)
		return;
	if (vs->index < vs->top)
		vs->top = vs->index;
	if (vs->index >= vs->top + o->page)
		vs->top = vs->index - o->page + 1;
	if (vs->top > o->nrows - o->page)
		vs->top = o->nrows - o->page;
	if (vs->top < 0)
		vs->top = 0;
	if (o->nrows == 0)
		screen_empty(o, y);
	for (int i = vs->top; i < o->nrows && i < vs->top + o->page; i++)
		screen_row(o, y++, &o->rows[i], i == vs->index, n, shown,
		    widths);
}

/* F1Help  F3Search ... */
static void
screen_fkeys(struct ogtop *o, int y)
{
	const struct screen_key	*keys;
	int			 x = 0;

	switch (o->mode) {
	case MODE_SEARCH:
		keys = screen_keys_search;
		break;
	case MODE_FILTER:
		keys = screen_keys_filter;
		break;
	case MODE_CONFIRM:
		keys = screen_keys_confirm;
		break;
	case MODE_SORT:
		keys = screen_keys_sort;
		break;
	default:
		keys = screen_keys_normal;
		break;
	}
	screen_fill(y, 0, COLS, STYLE_FLABEL);
	for (; keys->key != NULL; keys++) {
		x = screen_put(y, x, COLS, STYLE_FKEY, keys->key);
		x = screen_putf(y, x, COLS, STYLE_FLABEL, "%-6s ", keys->label);
	}
}

/* F6's menu: the columns of the view, over the left of the table. */
static void
screen_sort_menu(struct ogtop *o, int y, int height)
{
	const struct view	*v = view_current(o);
	int			 width = 16;

	if (height < 2)
		return;
	screen_fill(y, 0, width, STYLE_HEADER);
	screen_put(y++, 1, width - 1, STYLE_HEADER, "Sort by");
	for (int i = 0; i < v->ncolumns && i < height - 1; i++, y++) {
		enum style	s = i == o->sort_cursor ? STYLE_SELECTED :
				    STYLE_NORMAL;

		screen_fill(y, 0, width, s);
		screen_putf(y, 0, width, s, "%c %s",
		    i == view_state(o)->sort ? '*' : ' ', v->columns[i].title);
	}
}

static void
screen_help_page(void)
{
	int	n = (int)(sizeof screen_help / sizeof screen_help[0]);

	/* Headings are the lines that start in the first column. */
	for (int i = 0; i < n && i < LINES; i++)
		screen_put(i, 1, COLS - 1, screen_help[i][0] != ' ' ?
		    STYLE_CAPTION : STYLE_NORMAL, screen_help[i]);
}

void
screen_draw(struct ogtop *o)
{
	int	y = 0, table;

	erase();
	if (o->mode == MODE_HELP) {
		screen_help_page();
		refresh();
		return;
	}
	y = meter_draw(o, y);
	/* The graphs take no more than half of what the table would get. */
	if (o->show_graph)
		y = graph_draw(o, y, (LINES - y - 3) / 2);
	y = screen_tabs(o, y);
	screen_message(o, y++);
	table = y;
	screen_table(o, table, LINES - 1 - table);
	if (o->mode == MODE_SORT)
		screen_sort_menu(o, table, LINES - 1 - table);
	if (LINES > 1)
		screen_fkeys(o, LINES - 1);
	refresh();
}
