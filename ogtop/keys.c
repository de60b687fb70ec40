/*
 * keys.c: what each key does. The keys of the main screen are one
 * table of bindings (htop's Action.c); search, filter, the y/n prompt
 * and the sort menu each read keys in their own mode, and search and
 * filter share the line editor.
 */
#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "ogtop.h"

#define KEY_ESC		27
#define KEY_CTRL_L	12

struct keys_binding {
	int	  key;
	void	(*fn)(struct ogtop *, int);
};

static void	keys_quit(struct ogtop *, int);
static void	keys_help(struct ogtop *, int);
static void	keys_view(struct ogtop *, int);
static void	keys_next_view(struct ogtop *, int);
static void	keys_sort_menu(struct ogtop *, int);
static void	keys_sort_step(struct ogtop *, int);
static void	keys_invert(struct ogtop *, int);
static void	keys_search_start(struct ogtop *, int);
static void	keys_search_next(struct ogtop *, int);
static void	keys_filter_start(struct ogtop *, int);
static void	keys_filter_clear(struct ogtop *, int);
static void	keys_cancel(struct ogtop *, int);
static void	keys_redraw(struct ogtop *, int);
static void	keys_graph(struct ogtop *, int);

static const struct keys_binding keys_bindings[] = {
	{ 'q', keys_quit },
	{ KEY_F(10), keys_quit },
	{ 'h', keys_help },
	{ '?', keys_help },
	{ KEY_F(1), keys_help },
	{ '\t', keys_next_view },
	{ KEY_BTAB, keys_next_view },
	{ '1', keys_view },
	{ '2', keys_view },
	{ '3', keys_view },
	{ '4', keys_view },
	{ KEY_F(6), keys_sort_menu },
	{ '<', keys_sort_step },
	{ '>', keys_sort_step },
	{ 'I', keys_invert },
	{ '/', keys_search_start },
	{ KEY_F(3), keys_search_next },
	{ 'n', keys_search_next },
	{ '\\', keys_filter_start },
	{ KEY_F(4), keys_filter_start },
	{ KEY_ESC, keys_filter_clear },
	{ 'k', keys_cancel },
	{ KEY_F(9), keys_cancel },
	{ KEY_CTRL_L, keys_redraw },
	{ 'g', keys_graph },
};

static void
keys_quit(struct ogtop *o, int key)
{
	(void)key;
	o->quit = 1;
}

static void
keys_help(struct ogtop *o, int key)
{
	(void)key;
	o->mode = MODE_HELP;
}

static void
keys_view(struct ogtop *o, int key)
{
	o->view = key - '1';
}

/* Tab goes right, Shift-Tab left, both round. */
static void
keys_next_view(struct ogtop *o, int key)
{
	o->view = (o->view + (key == KEY_BTAB ? OGTOP_NVIEWS - 1 : 1)) %
	    OGTOP_NVIEWS;
}

static void
keys_sort_menu(struct ogtop *o, int key)
{
	(void)key;
	o->sort_cursor = view_state(o)->sort;
	o->mode = MODE_SORT;
}

/* < and >: sort by the column left or right of the sorted one on screen. */
static void
keys_sort_step(struct ogtop *o, int key)
{
	int	shown[VIEW_MAXCOLS], widths[VIEW_MAXCOLS], n, at = -1;

	n = screen_layout(view_current(o), view_state(o)->sort, COLS, shown,
	    widths);
	if (n == 0)
		return;
	for (int k = 0; k < n; k++) {
		if (shown[k] == view_state(o)->sort)
			at = k;
	}
	if (at == -1)
		at = key == '>' ? -1 : n;
	at += key == '>' ? 1 : -1;
	if (at < 0 || at >= n)
		return;
	view_set_sort(o, shown[at]);
}

static void
keys_invert(struct ogtop *o, int key)
{
	(void)key;
	view_state(o)->desc = !view_state(o)->desc;
}

static void
keys_search_start(struct ogtop *o, int key)
{
	(void)key;
	o->search[0] = '\0';
	o->search_failed = 0;
	o->mode = MODE_SEARCH;
}

/* The next row with the text searched last; a new search if none. */
static void
keys_search_next(struct ogtop *o, int key)
{
	if (o->search[0] == '\0') {
		if (key == KEY_F(3))
			keys_search_start(o, key);
		return;
	}
	if (view_search(o, o->search, view_state(o)->index + 1) != 0)
		ogtop_message(o, 1, "\"%s\" not found", o->search);
}

static void
keys_filter_start(struct ogtop *o, int key)
{
	(void)key;
	o->mode = MODE_FILTER;
}

static void
keys_filter_clear(struct ogtop *o, int key)
{
	(void)key;
	view_state(o)->filter[0] = '\0';
}

/* Ask before cancelling, naming the request. */
static void
keys_cancel(struct ogtop *o, int key)
{
	struct row	*r;
	const char	*user, *model;

	(void)key;
	if (o->view != 0) {
		ogtop_message(o, 1, "Requests are cancelled in the Requests "
		    "view (1)");
		return;
	}
	if ((r = view_selected(o)) == NULL) {
		ogtop_message(o, 1, "No request selected");
		return;
	}
	user = json_string_value(json_object_get(r->obj, "user"));
	model = json_string_value(json_object_get(r->obj, "model"));
	o->cancel_id = json_integer_value(json_object_get(r->obj, "id"));
	ogtop_message(o, 0, "Cancel request %lld (%s, %s)? y/n",
	    (long long)o->cancel_id, user != NULL ? user : "-",
	    model != NULL ? model : "-");
	o->mode = MODE_CONFIRM;
}

static void
keys_redraw(struct ogtop *o, int key)
{
	(void)o;
	(void)key;
	clearok(curscr, TRUE);
}

static void
keys_graph(struct ogtop *o, int key)
{
	(void)key;
	o->show_graph = !o->show_graph;
}

/* Keys that move the selection, in every mode that shows the table. */
static int
keys_move(struct ogtop *o, int key)
{
	int	index = view_state(o)->index;
	int	page = o->page > 1 ? o->page : 1;

	switch (key) {
	case KEY_UP:
		index--;
		break;
	case KEY_DOWN:
		index++;
		break;
	case KEY_PPAGE:
		index -= page;
		break;
	case KEY_NPAGE:
		index += page;
		break;
	case KEY_HOME:
		index = 0;
		break;
	case KEY_END:
		index = o->nrows - 1;
		break;
	default:
		return 0;
	}
	view_select(o, index);
	return 1;
}

/*
 * Edit a line of text: add a printable character or take the last one
 * back. Returns 1 when the text changed.
 */
static int
keys_edit(char *text, size_t size, int key)
{
	size_t	len = strlen(text);

	if (key == KEY_BACKSPACE || key == 127 || key == 8) {
		if (len == 0)
			return 0;
		text[len - 1] = '\0';
		return 1;
	}
	if (key < 32 || key > 126 || len + 1 >= size)
		return 0;
	text[len] = (char)key;
	text[len + 1] = '\0';
	return 1;
}

static int
keys_is_enter(int key)
{
	return key == '\n' || key == '\r' || key == KEY_ENTER;
}

/* Incremental search: each key moves to the first row that matches. */
static void
keys_search(struct ogtop *o, int key)
{
	int	index = view_state(o)->index;

	if (keys_is_enter(key) || key == KEY_ESC) {
		o->mode = MODE_NORMAL;
		return;
	}
	if (keys_move(o, key))
		return;
	if (key == KEY_F(3))
		index++;
	else if (!keys_edit(o->search, sizeof o->search, key))
		return;
	if (o->search[0] != '\0')
		o->search_failed = view_search(o, o->search, index) != 0;
	else
		o->search_failed = 0;
}

/* The filter applies as it is typed; Esc drops it. */
static void
keys_filter(struct ogtop *o, int key)
{
	struct view_state	*vs = view_state(o);

	if (keys_is_enter(key)) {
		o->mode = MODE_NORMAL;
		return;
	}
	if (key == KEY_ESC) {
		vs->filter[0] = '\0';
		o->mode = MODE_NORMAL;
		return;
	}
	if (!keys_move(o, key))
		keys_edit(vs->filter, sizeof vs->filter, key);
}

static void
keys_confirm(struct ogtop *o, int key)
{
	char	msg[256];
	int	rc;

	o->mode = MODE_NORMAL;
	if (key != 'y' && key != 'Y') {
		ogtop_message(o, 0, "Request %lld not cancelled",
		    (long long)o->cancel_id);
		return;
	}
	rc = data_cancel(o->data, o->cancel_id, msg, sizeof msg);
	ogtop_message(o, rc != 0, "%s", msg);
	o->fetch_now = 1;
}

static void
keys_sort(struct ogtop *o, int key)
{
	int	n = view_current(o)->ncolumns;

	switch (key) {
	case KEY_UP:
		if (o->sort_cursor > 0)
			o->sort_cursor--;
		break;
	case KEY_DOWN:
		if (o->sort_cursor < n - 1)
			o->sort_cursor++;
		break;
	case KEY_HOME:
		o->sort_cursor = 0;
		break;
	case KEY_END:
		o->sort_cursor = n - 1;
		break;
	case KEY_ESC:
	case KEY_F(6):
	case KEY_F(10):
	case 'q':
		o->mode = MODE_NORMAL;
		break;
	default:
		if (keys_is_enter(key)) {
			view_set_sort(o, o->sort_cursor);
			o->mode = MODE_NORMAL;
		}
		break;
	}
}

void
keys_handle(struct ogtop *o, int key)
{
	/* A resize only redraws; it answers no prompt. */
	if (key == KEY_RESIZE)
		return;
	switch (o->mode) {
	case MODE_HELP:
		o->mode = MODE_NORMAL;
		return;
	case MODE_SEARCH:
		keys_search(o, key);
		return;
	case MODE_FILTER:
		keys_filter(o, key);
		return;
	case MODE_CONFIRM:
		keys_confirm(o, key);
		return;
	case MODE_SORT:
		keys_sort(o, key);
		return;
	case MODE_NORMAL:
		break;
	}
	o->message[0] = '\0';
	if (keys_move(o, key))
		return;
	for (size_t i = 0; i < sizeof keys_bindings / sizeof keys_bindings[0];
	    i++) {
		if (keys_bindings[i].key == key) {
			keys_bindings[i].fn(o, key);
			return;
		}
	}
}
