/*
 * view.c: the four views of ogtop as tables of columns, and the rows
 * of the current one: formatted from the snapshot, filtered, sorted,
 * with the selection following the same request, user, backend or model
 * from one refresh to the next.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ogtop.h"
#include "xmalloc.h"

static void	view_value(json_t *, const struct column *, struct cell *);
static void	view_user(json_t *, const struct column *, struct cell *);
static void	view_count(json_t *, const struct column *, struct cell *);
static void	view_ms(json_t *, const struct column *, struct cell *);
static void	view_rate(json_t *, const struct column *, struct cell *);
static void	view_bytes(json_t *, const struct column *, struct cell *);
static void	view_role(json_t *, const struct column *, struct cell *);
static void	view_active(json_t *, const struct column *, struct cell *);
static void	view_state_cell(json_t *, const struct column *,
		    struct cell *);
static void	view_wait(json_t *, const struct column *, struct cell *);
static void	view_slots(json_t *, const struct column *, struct cell *);
static void	view_quota(json_t *, const struct column *, struct cell *);
static void	view_limit(json_t *, const struct column *, struct cell *);
static void	view_backend_vram(json_t *, const struct column *,
		    struct cell *);
static void	view_backend_models(json_t *, const struct column *,
		    struct cell *);

static void	view_format_count(char *, size_t, double);
static void	view_format_ms(char *, size_t, double);

/*
 * Each column: title, JSON member, width, share of spare width, order
 * of leaving when narrow (0: stays), alignment, whether it sorts
 * descending first, and how its cells are written.
 */
static const struct column view_requests_columns[] = {
	{ "ID", "id", 5, 0, 0, ALIGN_RIGHT, 0, view_value },
	{ "USER", "user", 9, 1, 0, ALIGN_LEFT, 0, view_user },
	{ "MODEL", "model", 15, 1, 0, ALIGN_LEFT, 0, view_value },
	{ "BACKEND", "backend", 8, 0, 4, ALIGN_LEFT, 0, view_value },
	{ "ENDPOINT", "endpoint", 9, 0, 5, ALIGN_LEFT, 0, view_value },
	{ "STATE", "state", 10, 0, 0, ALIGN_LEFT, 0, view_state_cell },
	{ "WAIT", "queued_ms", 6, 0, 1, ALIGN_RIGHT, 1, view_wait },
	{ "ELAPSED", "elapsed_ms", 8, 0, 0, ALIGN_RIGHT, 1, view_ms },
	{ "TTFT", "ttft_ms", 6, 0, 3, ALIGN_RIGHT, 1, view_ms },
	{ "TOKENS", "tokens_out", 7, 0, 0, ALIGN_RIGHT, 1, view_count },
	{ "TOK/S", "tokens_per_s", 6, 0, 2, ALIGN_RIGHT, 1, view_rate },
	{ "CLIENT", "client", 15, 1, 6, ALIGN_LEFT, 0, view_value },
};

static const struct column view_users_columns[] = {
	{ "USER", "name", 10, 1, 0, ALIGN_LEFT, 0, view_value },
	{ "ROLE", "role", 8, 0, 0, ALIGN_LEFT, 0, view_role },
	{ "ACTIVE", "requests_active", 7, 0, 0, ALIGN_RIGHT, 1, view_active },
	{ "QUEUED", "requests_queued", 6, 0, 1, ALIGN_RIGHT, 1, view_count },
	{ "TODAY", "tokens_today", 16, 1, 0, ALIGN_RIGHT, 1, view_quota },
	{ "MONTH", "tokens_this_month", 16, 1, 0, ALIGN_RIGHT, 1, view_quota },
	{ "RPM", "requests_per_minute", 5, 0, 2, ALIGN_RIGHT, 1, view_limit },
};

static const struct column view_backends_columns[] = {
	{ "NAME", "name", 10, 0, 0, ALIGN_LEFT, 0, view_value },
	{ "STATE", "state", 9, 0, 0, ALIGN_LEFT, 0, view_value },
	{ "SLOTS", "active", 7, 0, 0, ALIGN_RIGHT, 1, view_slots },
	{ "REQS", "requests", 7, 0, 0, ALIGN_RIGHT, 1, view_count },
	{ "FAILS", "failures", 6, 0, 0, ALIGN_RIGHT, 1, view_count },
	{ "LATENCY", "latency_ms", 8, 0, 2, ALIGN_RIGHT, 1, view_ms },
	{ "VRAM", "models", 6, 0, 3, ALIGN_RIGHT, 1, view_backend_vram },
	{ "MODELS", "models", 12, 2, 0, ALIGN_LEFT, 0, view_backend_models },
	{ "URL", "url", 24, 1, 4, ALIGN_LEFT, 0, view_value },
};

static const struct column view_models_columns[] = {
	{ "MODEL", "name", 16, 1, 0, ALIGN_LEFT, 0, view_value },
	{ "ACTIVE", "requests_active", 7, 0, 0, ALIGN_RIGHT, 1, view_count },
	{ "REQS", "requests_total", 7, 0, 0, ALIGN_RIGHT, 1, view_count },
	{ "PROMPT", "prompt_tokens", 7, 0, 2, ALIGN_RIGHT, 1, view_count },
	{ "COMPLETION", "completion_tokens", 11, 0, 0, ALIGN_RIGHT, 1,
	    view_count },
	{ "VRAM", "vram_bytes", 6, 0, 1, ALIGN_RIGHT, 1, view_bytes },
	{ "LOADED-ON", "loaded_on", 10, 1, 0, ALIGN_LEFT, 0, view_value },
};

#define VIEW_COLUMNS(a)	a, (int)(sizeof a / sizeof a[0])

static const struct view view_requests = {
	"Requests", "requests", "id", VIEW_COLUMNS(view_requests_columns), 0
};
static const struct view view_users = {
	"Users", "users", "name", VIEW_COLUMNS(view_users_columns), 0
};
static const struct view view_backends = {
	"Backends", "backends", "name", VIEW_COLUMNS(view_backends_columns), 0
};
static const struct view view_models = {
	"Models", "models", "name", VIEW_COLUMNS(view_models_columns), 0
};

const struct view *const view_table[OGTOP_NVIEWS] = {
	&view_requests, &view_users, &view_backends, &view_models,
};

/* qsort has no argument for the column; sorting is not reentrant. */
static int	view_sort_column;
static int	view_sort_desc;

/* Numbers for people: 9999, 12.3k, 456k, 7.8M. */
static void
view_format_count(char *buf, size_t len, double n)
{
	static const char	units[] = "kMGTP";
	int			u = -1;

	if (n < 10000.0) {
		snprintf(buf, len, "%.0f", n);
		return;
	}
	while (n >= 1000.0 && u < 4) {
		n /= 1000.0;
		u++;
	}
	snprintf(buf, len, n < 100.0 ? "%.1f%c" : "%.0f%c", n, units[u]);
}

/* Sizes in powers of 1024: 512M, 2.8G, 80.0G. */
void
view_format_bytes(char *buf, size_t len, double n)
{
	static const char	units[] = "KMGTP";
	int			u = -1;

	if (n < 1024.0) {
		snprintf(buf, len, "%.0fB", n);
		return;
	}
	while (n >= 1024.0 && u < 4) {
		n /= 1024.0;
		u++;
	}
	snprintf(buf, len, n < 100.0 ? "%.1f%c" : "%.0f%c", n, units[u]);
}

/* Durations: 210ms, 5.1s, 2m05s, 1h02m. */
static void
view_format_ms(char *buf, size_t len, double ms)
{
	long long	s = (long long)(ms / 1000.0);

	if (ms < 1000.0)
		snprintf(buf, len, "%.0fms", ms);
	else if (ms < 60000.0)
		snprintf(buf, len, "%.1fs", ms / 1000.0);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s / 60 % 60);
}

static void
view_set_number(struct cell *c, double n)
{
	c->numeric = 1;
	c->number = n;
}

/* A missing or null value: a dash, sorted below every number. */
static int
view_missing(json_t *v, struct cell *c)
{
	if (v != NULL && !json_is_null(v))
		return 0;
	snprintf(c->text, sizeof c->text, "-");
	view_set_number(c, -1.0);
	return 1;
}

/* Strings as they are, numbers in full, arrays joined with commas. */
static void
view_value(json_t *o, const struct column *col, struct cell *c)
{
	json_t	*v = json_object_get(o, col->field), *e;
	size_t	 i, used = 0;

	if (view_missing(v, c))
		return;
	if (json_is_string(v))
		snprintf(c->text, sizeof c->text, "%s", json_string_value(v));
	else if (json_is_integer(v)) {
		snprintf(c->text, sizeof c->text, "%lld",
		    (long long)json_integer_value(v));
		view_set_number(c, (double)json_integer_value(v));
	} else if (json_is_number(v)) {
		snprintf(c->text, sizeof c->text, "%.1f", json_number_value(v));
		view_set_number(c, json_number_value(v));
	} else if (json_is_boolean(v))
		snprintf(c->text, sizeof c->text, "%s", json_is_true(v) ?
		    "yes" : "no");
	else if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			if (!json_is_string(e) || used >= sizeof c->text)
				continue;
			used += (size_t)snprintf(c->text + used,
			    sizeof c->text - used, "%s%s", used > 0 ? "," : "",
			    json_string_value(e));
		}
		if (used == 0)
			snprintf(c->text, sizeof c->text, "-");
	}
}

static void
view_count(json_t *o, const struct column *col, struct cell *c)
{
	json_t	*v = json_object_get(o, col->field);

	if (view_missing(v, c))
		return;
	view_format_count(c->text, sizeof c->text, json_number_value(v));
	view_set_number(c, json_number_value(v));
}

static void
view_ms(json_t *o, const struct column *col, struct cell *c)
{
	json_t	*v = json_object_get(o, col->field);

	if (view_missing(v, c))
		return;
	view_format_ms(c->text, sizeof c->text, json_number_value(v));
	view_set_number(c, json_number_value(v));
}

static void
view_rate(json_t *o, const struct column *col, struct cell *c)
{
	json_t	*v = json_object_get(o, col->field);

	if (view_missing(v, c))
		return;
	snprintf(c->text, sizeof c->text, "%.1f", json_number_value(v));
	view_set_number(c, json_number_value(v));
}

static void
view_bytes(json_t *o, const struct column *col, struct cell *c)
{
	json_t	*v = json_object_get(o, col->field);

	if (view_missing(v, c) || json_number_value(v) <= 0.0) {
		snprintf(c->text, sizeof c->text, "-");
		view_set_number(c, 0.0);
		return;
	}
	view_format_bytes(c->text, sizeof c->text, json_number_value(v));
	view_set_number(c, json_number_value(v));
}

/* A trusted front end's request names its end user: SERVICE/END_USER. */
static void
view_user(json_t *o, const struct column *col, struct cell *c)
{
	const char	*eu = json_string_value(json_object_get(o, "end_user"));

	view_value(o, col, c);
	if (eu != NULL && json_is_string(json_object_get(o, col->field))) {
		size_t	used = strlen(c->text);

		snprintf(c->text + used, sizeof c->text - used, "/%s", eu);
	}
}

/* A disabled user shows as such instead of the role. */
static void
view_role(json_t *o, const struct column *col, struct cell *c)
{
	if (json_is_false(json_object_get(o, "enabled")))
		snprintf(c->text, sizeof c->text, "disabled");
	else
		view_value(o, col, c);
}

/* A count out of its max_concurrent, if set; else as none says. */
static void
view_out_of(json_t *o, const struct column *col, struct cell *c,
    const char *none)
{
	json_int_t	n = json_integer_value(json_object_get(o, col->field));
	json_int_t	max;

	max = json_integer_value(json_object_get(o, "max_concurrent"));
	if (max > 0)
		snprintf(c->text, sizeof c->text, "%lld/%lld", (long long)n,
		    (long long)max);
	else
		snprintf(c->text, sizeof c->text, "%lld%s", (long long)n, none);
	view_set_number(c, (double)n);
}

/* Active requests, out of the limit when there is one. */
static void
view_active(json_t *o, const struct column *col, struct cell *c)
{
	view_out_of(o, col, c, "");
}

/* A backend's slots in use out of its slots: 2/4, or 2/- without a limit. */
static void
view_slots(json_t *o, const struct column *col, struct cell *c)
{
	view_out_of(o, col, c, "/-");
}

/*
 * Where a request stands; a queued one with its place in the queue. It
 * sorts in the order a request goes through, queued ones by their place
 * first, so that the head of the queue is on top: the numbers below are
 * above any place in a queue.
 */
#define VIEW_AFTER_QUEUE	1e15

static void
view_state_cell(json_t *o, const struct column *col, struct cell *c)
{
	static const char *const later[] = { "waiting", "streaming" };
	static const char *const prefixes[] = { "queued #", "queued#", "q#" };
	const char	*state;
	json_t		*pos = json_object_get(o, "position");
	json_int_t	 n;
	size_t		 i;

	state = json_string_value(json_object_get(o, col->field));
	if (state == NULL) {
		view_missing(NULL, c);
		return;
	}
	snprintf(c->text, sizeof c->text, "%s", state);
	if (strcmp(state, "queued") == 0) {
		n = json_is_integer(pos) ? json_integer_value(pos) : 0;
		/* A long queue's places are written shorter, never cut. */
		for (i = 0; i < sizeof prefixes / sizeof prefixes[0] && n > 0;
		    i++) {
			snprintf(c->text, sizeof c->text, "%s%lld",
			    prefixes[i], (long long)n);
			if ((int)strlen(c->text) <= col->width)
				break;
		}
		view_set_number(c, (double)n);
		return;
	}
	for (i = 0; i < sizeof later / sizeof later[0]; i++) {
		if (strcmp(state, later[i]) == 0)
			break;
	}
	view_set_number(c, VIEW_AFTER_QUEUE + (double)i);
}

/* How long a request waited in the gateway's queue; a dash if it did not. */
static void
view_wait(json_t *o, const struct column *col, struct cell *c)
{
	json_t	*v = json_object_get(o, col->field);

	if (view_missing(v, c))
		return;
	if (json_number_value(v) <= 0.0) {
		snprintf(c->text, sizeof c->text, "-");
		view_set_number(c, 0.0);
		return;
	}
	view_format_ms(c->text, sizeof c->text, json_number_value(v));
	view_set_number(c, json_number_value(v));
}

/* Tokens used against the day's or the month's quota, as a bar. */
static void
view_quota(json_t *o, const struct column *col, struct cell *c)
{
	const char	*limit_field;
	double		 used, limit;
	char		 u[32], l[32];

	limit_field = strcmp(col->field, "tokens_today") == 0 ?
	    "tokens_per_day" : "tokens_per_month";
	/* What requests in flight have produced will be charged too. */
	used = json_number_value(json_object_get(o, col->field)) +
	    json_number_value(json_object_get(o, "tokens_in_flight"));
	limit = json_number_value(json_object_get(o, limit_field));
	view_format_count(u, sizeof u, used);
	view_set_number(c, used);
	if (limit <= 0.0) {
		snprintf(c->text, sizeof c->text, "%s/unlimited", u);
		c->fill = 0.0;
		return;
	}
	view_format_count(l, sizeof l, limit);
	snprintf(c->text, sizeof c->text, "%s/%s", u, l);
	c->fill = used >= limit ? 1.0 : used / limit;
}

/* A limit where 0 means none. */
static void
view_limit(json_t *o, const struct column *col, struct cell *c)
{
	json_int_t	n = json_integer_value(json_object_get(o, col->field));

	if (n > 0)
		snprintf(c->text, sizeof c->text, "%lld", (long long)n);
	else
		snprintf(c->text, sizeof c->text, "-");
	view_set_number(c, n > 0 ? (double)n : 1e18);
}

static void
view_backend_vram(json_t *o, const struct column *col, struct cell *c)
{
	json_t	*m;
	size_t	 i;
	double	 sum = 0.0;

	json_array_foreach(json_object_get(o, col->field), i, m)
		sum += json_number_value(json_object_get(m, "vram_bytes"));
	if (sum > 0.0)
		view_format_bytes(c->text, sizeof c->text, sum);
	else
		snprintf(c->text, sizeof c->text, "-");
	view_set_number(c, sum);
}

/*
 * The names of the models a backend holds in memory, as its last /api/ps
 * said: a list, of which the screen shows the names that fit and counts
 * the rest (the Models view has a row for each). Unknown, before a probe
 * has answered, is not the same as none.
 */
static void
view_backend_models(json_t *o, const struct column *col, struct cell *c)
{
	json_t		*models = json_object_get(o, col->field), *m;
	const char	*name;
	size_t		 i, used = 0, left = 0;

	if (!json_is_array(models)) {
		snprintf(c->text, sizeof c->text, "unknown");
		return;
	}
	/* Names the cell has no room for are counted at its end: ",+3". */
	json_array_foreach(models, i, m) {
		if ((name = json_string_value(json_object_get(m, "name"))) ==
		    NULL)
			continue;
		if (left > 0 || used + 1 + strlen(name) + sizeof ",+99999" >
		    sizeof c->text) {
			left++;
			continue;
		}
		used += (size_t)snprintf(c->text + used, sizeof c->text - used,
		    "%s%s", used > 0 ? "," : "", name);
	}
	if (left > 0)
		snprintf(c->text + used, sizeof c->text - used, "%s+%zu",
		    used > 0 ? "," : "", left);
	else if (used == 0)
		snprintf(c->text, sizeof c->text, "-");
	c->list = 1;
}

const struct view *
view_current(struct ogtop *o)
{
	return view_table[o->view];
}

struct view_state *
view_state(struct ogtop *o)
{
	return &o->state[o->view];
}

void
view_init(struct ogtop *o)
{
	for (int i = 0; i < OGTOP_NVIEWS; i++) {
		o->state[i].sort = view_table[i]->sort;
		o->state[i].desc = view_table[i]->columns[o->state[i].sort].desc;
	}
}

/* Case-insensitive substring: what search and filter match. */
static int
view_contains(const char *hay, const char *needle)
{
	size_t	n = strlen(needle);

	for (; *hay != '\0'; hay++) {
		if (strncasecmp(hay, needle, n) == 0)
			return 1;
	}
	return n == 0;
}

static int
view_row_contains(const struct view *v, const struct row *r,
    const char *text)
{
	for (int i = 0; i < v->ncolumns; i++) {
		if (view_contains(r->cells[i].text, text))
			return 1;
	}
	return 0;
}

static void
view_row_key(const struct view *v, struct row *r)
{
	json_t	*k = json_object_get(r->obj, v->key);

	if (json_is_integer(k))
		snprintf(r->key, sizeof r->key, "%lld",
		    (long long)json_integer_value(k));
	else if (json_is_string(k))
		snprintf(r->key, sizeof r->key, "%s", json_string_value(k));
	else
		snprintf(r->key, sizeof r->key, "#%d", r->seq);
}

static int
view_compare(const void *pa, const void *pb)
{
	const struct row	*a = pa, *b = pb;
	const struct cell	*ca = &a->cells[view_sort_column];
	const struct cell	*cb = &b->cells[view_sort_column];
	int			 d;

	if (ca->numeric && cb->numeric)
		d = (ca->number > cb->number) - (ca->number < cb->number);
	else
		d = strcasecmp(ca->text, cb->text);
	if (view_sort_desc)
		d = -d;
	return d != 0 ? d : a->seq - b->seq;
}

void
view_free_rows(struct ogtop *o)
{
	free(o->rows);
	o->rows = NULL;
	o->nrows = 0;
}

static void
view_format_row(const struct view *v, struct row *r)
{
	for (int i = 0; i < v->ncolumns; i++) {
		struct cell	*c = &r->cells[i];

		c->text[0] = '\0';
		c->fill = -1.0;
		c->numeric = 0;
		c->list = 0;
		v->columns[i].format(r->obj, &v->columns[i], c);
	}
}

void
view_build(struct ogtop *o)
{
	const struct view	*v = view_current(o);
	struct view_state	*vs = view_state(o);
	json_t			*a = data_array(o->data, v->member), *e;
	size_t			 i;
	int			 sel = -1;

	view_free_rows(o);
	if (a == NULL || json_array_size(a) == 0)
		return;
	o->rows = xcalloc(json_array_size(a), sizeof *o->rows);
	json_array_foreach(a, i, e) {
		struct row	*r = &o->rows[o->nrows];

		if (!json_is_object(e))
			continue;
		r->obj = e;
		r->seq = (int)i;
		view_row_key(v, r);
		view_format_row(v, r);
		if (vs->filter[0] == '\0' ||
		    view_row_contains(v, r, vs->filter))
			o->nrows++;
	}
	view_sort_column = vs->sort;
	view_sort_desc = vs->desc;
	qsort(o->rows, (size_t)o->nrows, sizeof *o->rows, view_compare);

	/*
	 * The selection stays on the same row when it is still there;
	 * when it went, on the row that took its place.
	 */
	for (int k = 0; k < o->nrows && sel == -1; k++) {
		if (strcmp(o->rows[k].key, vs->selected) == 0)
			sel = k;
	}
	view_select(o, sel != -1 ? sel : vs->index);
}

void
view_select(struct ogtop *o, int index)
{
	struct view_state	*vs = view_state(o);

	if (o->nrows == 0) {
		vs->index = 0;
		return;
	}
	if (index >= o->nrows)
		index = o->nrows - 1;
	if (index < 0)
		index = 0;
	vs->index = index;
	snprintf(vs->selected, sizeof vs->selected, "%s", o->rows[index].key);
}

struct row *
view_selected(struct ogtop *o)
{
	struct view_state	*vs = view_state(o);

	if (o->nrows == 0 || vs->index >= o->nrows)
		return NULL;
	return &o->rows[vs->index];
}

int
view_search(struct ogtop *o, const char *text, int from)
{
	const struct view	*v = view_current(o);

	for (int i = 0; i < o->nrows; i++) {
		int	k = ((from + i) % o->nrows + o->nrows) % o->nrows;

		if (view_row_contains(v, &o->rows[k], text)) {
			view_select(o, k);
			return 0;
		}
	}
	return -1;
}

void
view_set_sort(struct ogtop *o, int column)
{
	struct view_state	*vs = view_state(o);
	const struct view	*v = view_current(o);

	if (column < 0 || column >= v->ncolumns || column == vs->sort)
		return;
	vs->sort = column;
	vs->desc = v->columns[column].desc;
}
