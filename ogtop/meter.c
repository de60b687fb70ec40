/*
 * meter.c: the meters at the top of ogtop's screen. One line per GPU
 * (utilisation and memory bars, temperature, power), then one line of
 * the gateway's figures, declared as a table of captions and the
 * functions that write their values (htop's meters are tables too).
 */
#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "ogtop.h"

/* No more GPU lines than this, however tall the terminal. */
#define METER_MAX_GPUS	8
/* The widths on a GPU line: caption, temperature, power. */
#define METER_CAPTION	5
#define METER_TEMP	5
#define METER_POWER	10

/* What the function of an item says of its value. */
#define METER_HIDE	0	/* leave the item out */
#define METER_SHOW	1
#define METER_WARN	2	/* draw it so that it catches the eye */

struct meter_item {
	const char	*caption;
	/* Write the value; return one of the above. */
	int		(*value)(struct data *, char *, size_t);
	int		 optional;	/* only when the line has room */
};

static int	meter_requests_rate(struct data *, char *, size_t);
static int	meter_tokens_rate(struct data *, char *, size_t);
static int	meter_active(struct data *, char *, size_t);
static int	meter_queued(struct data *, char *, size_t);
static int	meter_connections(struct data *, char *, size_t);
static int	meter_uptime(struct data *, char *, size_t);
static int	meter_served(struct data *, char *, size_t);

static const struct meter_item meter_items[] = {
	{ "Req/s: ", meter_requests_rate, 0 },
	{ "Tok/s: ", meter_tokens_rate, 0 },
	{ "Active: ", meter_active, 0 },
	{ "Queued: ", meter_queued, 0 },
	{ "Conns: ", meter_connections, 0 },
	{ "Uptime: ", meter_uptime, 0 },
	{ "Served: ", meter_served, 1 },
};

/* A rate, or a dash until two snapshots are in. */
static int
meter_rate(struct data *d, double rate, char *buf, size_t len)
{
	if (d->have_rates)
		snprintf(buf, len, "%.1f", rate);
	else
		snprintf(buf, len, "-");
	return METER_SHOW;
}

static int
meter_requests_rate(struct data *d, char *buf, size_t len)
{
	return meter_rate(d, d->requests_per_s, buf, len);
}

static int
meter_tokens_rate(struct data *d, char *buf, size_t len)
{
	return meter_rate(d, d->tokens_per_s, buf, len);
}

/*
 * One of the snapshot's totals, or a dash before the first snapshot and
 * for a total the daemon does not give.
 */
static int
meter_total(struct data *d, const char *name, char *buf, size_t len)
{
	json_t	*n = json_object_get(json_object_get(d->snap, "totals"), name);

	if (!json_is_integer(n))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%lld", (long long)json_integer_value(n));
	return METER_SHOW;
}

static int
meter_active(struct data *d, char *buf, size_t len)
{
	return meter_total(d, "requests_active", buf, len);
}

/* Requests waiting for a slot stand out: the fleet is short of room. */
static int
meter_queued(struct data *d, char *buf, size_t len)
{
	json_t	*n = json_object_get(json_object_get(d->snap, "totals"),
		    "requests_queued");

	meter_total(d, "requests_queued", buf, len);
	return json_integer_value(n) > 0 ? METER_WARN : METER_SHOW;
}

static int
meter_connections(struct data *d, char *buf, size_t len)
{
	return meter_total(d, "connections", buf, len);
}

/* As htop's: 01:02:03, or 3 days, 01:02:03. */
static int
meter_uptime(struct data *d, char *buf, size_t len)
{
	long long	s;

	if (d->snap == NULL) {
		snprintf(buf, len, "-");
		return METER_SHOW;
	}
	s = (long long)json_integer_value(json_object_get(d->snap,
	    "uptime_s"));
	if (s >= 86400)
		snprintf(buf, len, "%lld day%s, %02lld:%02lld:%02lld",
		    s / 86400, s >= 2 * 86400 ? "s" : "", s / 3600 % 24,
		    s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%02lld:%02lld:%02lld", s / 3600,
		    s / 60 % 60, s % 60);
	return METER_SHOW;
}

static int
meter_served(struct data *d, char *buf, size_t len)
{
	json_t	*totals = json_object_get(d->snap, "totals");

	if (d->snap == NULL)
		return METER_HIDE;
	snprintf(buf, len, "%lld (%lld errors)", (long long)json_integer_value(
	    json_object_get(totals, "requests_total")),
	    (long long)json_integer_value(json_object_get(totals,
	    "errors_total")));
	return METER_SHOW;
}

/* Req/s: 0.4  Tok/s: 12.5  Active: 1  Queued: 0  Conns: 2  ... */
static void
meter_totals(struct data *d, int y)
{
	const struct meter_item	*m;
	char			 value[64];
	int			 x = 0, need, how;

	for (size_t i = 0; i < sizeof meter_items / sizeof meter_items[0];
	    i++) {
		m = &meter_items[i];
		if ((how = m->value(d, value, sizeof value)) == METER_HIDE)
			continue;
		need = (int)(strlen(m->caption) + strlen(value));
		if (m->optional && x + need > COLS)
			continue;
		x = screen_put(y, x, COLS, STYLE_CAPTION, m->caption);
		x = screen_put(y, x, COLS, how == METER_WARN ? STYLE_WARN :
		    STYLE_VALUE, value) + 2;
	}
}

/*
 * The GPU's name without its vendor's, in whole words as far as they
 * fit: "NVIDIA H100 80GB HBM3" in 12 columns is "H100 80GB".
 */
static void
meter_gpu_name(json_t *gpu, char *buf, int width)
{
	static const char *const vendors[] = { "NVIDIA ", "AMD ", "Radeon " };
	const char	*name = json_string_value(json_object_get(gpu, "name"));
	char		*space;

	buf[0] = '\0';
	if (name == NULL)
		return;
	for (size_t i = 0; i < sizeof vendors / sizeof vendors[0]; i++) {
		if (strncmp(name, vendors[i], strlen(vendors[i])) == 0)
			name += strlen(vendors[i]);
	}
	snprintf(buf, (size_t)width + 1, "%s", name);
	if ((int)strlen(name) > width && name[width] != ' ' &&
	    (space = strrchr(buf, ' ')) != NULL)
		*space = '\0';
}

static void
meter_gpu_util(json_t *gpu, int y, int x, int width)
{
	json_t	*util = json_object_get(gpu, "util_pct");
	char	 text[32];

	if (!json_is_number(util)) {
		screen_bar(y, x, width, 0.0, "n/a", STYLE_NORMAL);
		return;
	}
	snprintf(text, sizeof text, "%.0f%%", json_number_value(util));
	screen_bar(y, x, width, json_number_value(util) / 100.0, text,
	    STYLE_NORMAL);
}

static void
meter_gpu_memory(json_t *gpu, int y, int x, int width)
{
	double	used = json_number_value(json_object_get(gpu,
		    "mem_used_bytes"));
	double	total = json_number_value(json_object_get(gpu,
		    "mem_total_bytes"));
	char	text[64], u[32], t[32];

	if (!json_is_number(json_object_get(gpu, "mem_used_bytes")) ||
	    total <= 0.0) {
		screen_bar(y, x, width, 0.0, "n/a", STYLE_NORMAL);
		return;
	}
	view_format_bytes(u, sizeof u, used);
	view_format_bytes(t, sizeof t, total);
	snprintf(text, sizeof text, "%s/%s", u, t);
	screen_bar(y, x, width, used / total, text, STYLE_NORMAL);
}

/* "  65C 250/700W", with dashes for what the GPU does not report. */
static void
meter_gpu_sensors(json_t *gpu, int y, int x)
{
	json_t	*temp = json_object_get(gpu, "temp_c");
	json_t	*power = json_object_get(gpu, "power_w");
	json_t	*limit = json_object_get(gpu, "power_limit_w");

	if (json_is_number(temp))
		screen_putf(y, x, METER_TEMP, STYLE_VALUE, "%4.0fC",
		    json_number_value(temp));
	else
		screen_put(y, x, METER_TEMP, STYLE_DIM, "    -");
	x += METER_TEMP + 1;
	if (!json_is_number(power))
		screen_put(y, x, METER_POWER, STYLE_DIM, "-");
	else if (json_is_number(limit))
		screen_putf(y, x, METER_POWER, STYLE_VALUE, "%.0f/%.0fW",
		    json_number_value(power), json_number_value(limit));
	else
		screen_putf(y, x, METER_POWER, STYLE_VALUE, "%.0fW",
		    json_number_value(power));
}

/* GPU0 H100 80GB    [||||      45%] [||||     12.0G/80.0G]  65C 250/700W */
static void
meter_gpu(json_t *gpu, int y)
{
	char	name[16];
	int	x = METER_CAPTION, namew, bars, uw;

	/* The name gives way first, then the bars shrink. */
	namew = COLS >= 72 ? 12 : COLS >= 56 ? 6 : 0;
	bars = COLS - METER_CAPTION - (namew > 0 ? namew + 1 : 0) -
	    (METER_TEMP + 1 + METER_POWER) - 1;
	if (bars < 8)
		bars = 8;
	uw = bars * 2 / 5;

	screen_putf(y, 0, METER_CAPTION, STYLE_CAPTION, "GPU%lld",
	    (long long)json_integer_value(json_object_get(gpu, "index")));
	if (namew > 0) {
		meter_gpu_name(gpu, name, namew);
		screen_put(y, x, namew, STYLE_NORMAL, name);
		x += namew + 1;
	}
	meter_gpu_util(gpu, y, x, uw);
	x += uw + 1;
	meter_gpu_memory(gpu, y, x, bars - uw);
	meter_gpu_sensors(gpu, y, x + bars - uw);
}

/*
 * One line per GPU, as many as leave the table room; the last line
 * counts the rest.
 */
static int
meter_gpus(struct data *d, int y)
{
	json_t	*gpus = data_array(d, "gpus");
	int	 n = gpus != NULL ? (int)json_array_size(gpus) : 0;
	int	 room = (LINES - 14) / 2, shown;

	if (d->snap == NULL || n == 0) {
		screen_put(y, 0, COLS, STYLE_CAPTION, "GPU: ");
		screen_put(y, 5, COLS, d->snap == NULL ? STYLE_DIM :
		    STYLE_NORMAL, d->snap == NULL ? "no data yet" :
		    "none detected");
		return y + 1;
	}
	if (room < 1)
		room = 1;
	if (room > METER_MAX_GPUS)
		room = METER_MAX_GPUS;
	shown = n <= room ? n : room - 1;
	if (shown == 0)
		shown = 1;	/* a tiny screen: one GPU and no more */
	for (int i = 0; i < shown; i++)
		meter_gpu(json_array_get(gpus, (size_t)i), y++);
	if (shown < n && shown < room)
		screen_putf(y++, 0, COLS, STYLE_DIM, "GPU: +%d more", n - shown);
	return y;
}

int
meter_draw(struct ogtop *o, int y)
{
	y = meter_gpus(o->data, y);
	meter_totals(o->data, y);
	return y + 1;
}
