/*
 * table.c: aligned tables for people reading ogctl's output. Every
 * cell is escaped (escape.h) as it is added, whatever it holds, and
 * columns are as wide as the escaped text is on the screen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "ogctl.h"
#include "xmalloc.h"

struct table {
	int	  ncols;
	size_t	  nrows;
	char	**cells;	/* row-major, the header first, escaped */
	int	 *width;	/* in columns of the terminal */
};

struct table *
table_new(const char *const *headers, int ncols)
{
	struct table	*t = xcalloc(1, sizeof *t);

	t->ncols = ncols;
	t->width = xcalloc((size_t)ncols, sizeof *t->width);
	table_add(t, headers);
	return t;
}

void
table_add(struct table *t, const char *const *cells)
{
	t->cells = xreallocarray(t->cells, (t->nrows + 1) * (size_t)t->ncols,
	    sizeof *t->cells);
	for (int i = 0; i < t->ncols; i++) {
		char	*c = escape_string(cells[i] != NULL ? cells[i] : "-");
		int	 w = escape_width(c);

		t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = c;
		if (w > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
}

void
table_add_json(struct table *t, json_t *obj, const char *const *fields,
    const char *last)
{
	char	**cells = xcalloc((size_t)t->ncols, sizeof *cells);
	int	  n = last != NULL ? t->ncols - 1 : t->ncols;

	for (int c = 0; c < n; c++)
		cells[c] = table_cell(json_object_get(obj, fields[c]));
	if (last != NULL)
		cells[n] = xstrdup(last);
	table_add(t, (const char *const *)cells);
	for (int c = 0; c < t->ncols; c++)
		free(cells[c]);
	free(cells);
}

void
table_print(struct table *t)
{
	for (size_t r = 0; r < t->nrows; r++) {
		for (int i = 0; i < t->ncols; i++) {
			const char	*c = t->cells[r * (size_t)t->ncols + (size_t)i];

			if (i == t->ncols - 1)
				printf("%s\n", c);
			else
				printf("%s%*s", c, t->width[i] -
				    escape_width(c) + 2, "");
		}
	}
}

void
table_pad(const char *s, int width)
{
	char	*c = escape_string(s != NULL ? s : "-");
	int	 w = escape_width(c);

	printf("%s%*s", c, w < width ? width - w : 0, "");
	free(c);
}

void
table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t);
}

char *
table_cell(json_t *v)
{
	if (v == NULL || json_is_null(v))
		return xstrdup("-");
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_true(v))
		return xstrdup("yes");
	if (json_is_false(v))
		return xstrdup("no");
	if (json_is_integer(v))
		return xasprintf("%lld", (long long)json_integer_value(v));
	if (json_is_array(v)) {
		size_t	 i;
		json_t	*e;
		char	*s = xstrdup("");

		json_array_foreach(v, i, e) {
			char	*c = table_cell(e), *n;

			n = xasprintf("%s%s%s", s, i ? "," : "", c);
			free(s);
			free(c);
			s = n;
		}
		if (*s == '\0') {
			free(s);
			return xstrdup("*");
		}
		return s;
	}
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}
