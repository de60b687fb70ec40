/*
 * data.c: what ogtop knows about the daemon. One call per tick fetches
 * GET /admin/v1/snapshot; requests/s and tokens/s come from the steps of
 * the daemon's counters between snapshots over the real time between
 * them, averaged over a short window so that a fast refresh does not
 * make them jump.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "ogtop.h"
#include "xmalloc.h"

/* A call may take this long before the screen says so and goes on. */
#define DATA_TIMEOUT_MS	2000L
/* Rates average over at least this many seconds. */
#define DATA_WINDOW	2.0

static void	data_forget(struct data *);
static void	data_count(struct data *, json_t *);
static void	data_rates(struct data *);

double
data_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The client is the data's from now on: over a socket or SSH. */
struct data *
data_new(struct client *cl, int interval_ms)
{
	struct data	*d = xcalloc(1, sizeof *d);

	d->client = cl;
	client_set_timeout(d->client, DATA_TIMEOUT_MS);
	d->where = xstrdup(cl->where);
	d->window = (double)interval_ms / 1000.0;
	if (d->window < DATA_WINDOW)
		d->window = DATA_WINDOW;
	return d;
}

void
data_free(struct data *d)
{
	if (d == NULL)
		return;
	client_close(d->client);
	json_decref(d->snap);
	free(d->error);
	free(d->where);
	free(d);
}

json_t *
data_array(struct data *d, const char *member)
{
	json_t	*a;

	if (d->snap == NULL)
		return NULL;
	a = json_object_get(d->snap, member);
	return json_is_array(a) ? a : NULL;
}

/* Start the rates afresh: after a gap or a restart of the daemon. */
static void
data_forget(struct data *d)
{
	d->have_last = 0;
	d->nsamples = 0;
	d->have_rates = 0;
}

static json_int_t
data_counter(json_t *totals, const char *name)
{
	return json_integer_value(json_object_get(totals, name));
}

/*
 * Fold the counters of a new snapshot into the sums. A daemon that
 * restarted shows a smaller uptime or request count: that is a reset,
 * not a negative rate. Tokens of live requests can also fall back a
 * little when one is cancelled; that step counts as zero.
 */
static void
data_count(struct data *d, json_t *snap)
{
	json_t		*totals = json_object_get(snap, "totals");
	json_int_t	 requests, tokens, uptime;
	struct data_sample *s;

	requests = data_counter(totals, "requests_total");
	tokens = data_counter(totals, "tokens_out_total");
	uptime = json_integer_value(json_object_get(snap, "uptime_s"));
	if (d->have_last && (requests < d->last_requests ||
	    uptime < d->last_uptime))
		data_forget(d);
	if (d->have_last) {
		d->sum_requests += (double)(requests - d->last_requests);
		if (tokens > d->last_tokens)
			d->sum_tokens += (double)(tokens - d->last_tokens);
	}
	d->have_last = 1;
	d->last_requests = requests;
	d->last_tokens = tokens;
	d->last_uptime = uptime;

	if (d->nsamples == DATA_NSAMPLES) {
		d->first = (d->first + 1) % DATA_NSAMPLES;
		d->nsamples--;
	}
	s = &d->samples[(d->first + d->nsamples) % DATA_NSAMPLES];
	s->t = data_now();
	s->requests = d->sum_requests;
	s->tokens = d->sum_tokens;
	d->nsamples++;
	data_rates(d);
}

/* Drop samples older than the window, keeping two, and divide. */
static void
data_rates(struct data *d)
{
	struct data_sample	*old, *new;
	double			 dt;

	new = &d->samples[(d->first + d->nsamples - 1) % DATA_NSAMPLES];
	while (d->nsamples > 2 &&
	    new->t - d->samples[(d->first + 1) % DATA_NSAMPLES].t >=
	    d->window) {
		d->first = (d->first + 1) % DATA_NSAMPLES;
		d->nsamples--;
	}
	old = &d->samples[d->first];
	dt = new->t - old->t;
	if (d->nsamples < 2 || dt <= 0.0) {
		d->have_rates = 0;
		return;
	}
	d->have_rates = 1;
	d->requests_per_s = (new->requests - old->requests) / dt;
	d->tokens_per_s = (new->tokens - old->tokens) / dt;
}

/* Keep the first line of a message, without its advice in brackets. */
static char *
data_short_error(char *err)
{
	char	*p;

	if ((p = strstr(err, " (")) != NULL)
		*p = '\0';
	return err;
}

int
data_fetch(struct data *d)
{
	json_t		*doc = NULL;
	const char	*msg;
	char		*err = NULL;
	long		 status = 0;

	free(d->error);
	d->error = NULL;
	if (client_call(d->client, "GET", "/admin/v1/snapshot", NULL, &status,
	    &doc, &err) != 0) {
		d->error = data_short_error(err);
		data_forget(d);
		return -1;
	}
	if (status != 200 || !json_is_object(doc)) {
		msg = json_string_value(json_object_get(doc, "error"));
		if (status == 404)
			d->error = xasprintf("ogproxyd at %s has no snapshot "
			    "API (older than ogtop?)", d->where);
		else
			d->error = xasprintf("ogproxyd at %s answered %ld: %s",
			    d->where, status, msg != NULL ? msg :
			    "not a snapshot");
		json_decref(doc);
		data_forget(d);
		return -1;
	}
	data_count(d, doc);
	json_decref(d->snap);
	d->snap = doc;
	return 0;
}

int
data_cancel(struct data *d, json_int_t id, char *msg, size_t len)
{
	json_t		*doc = NULL;
	const char	*why;
	char		*path, *err = NULL;
	long		 status = 0;
	int		 rc = -1;

	path = xasprintf("/admin/v1/requests/%lld", (long long)id);
	if (client_call(d->client, "DELETE", path, NULL, &status, &doc,
	    &err) != 0) {
		snprintf(msg, len, "request %lld not cancelled: %s",
		    (long long)id, data_short_error(err));
		free(err);
	} else if (status >= 200 && status < 300) {
		snprintf(msg, len, "Request %lld cancelled", (long long)id);
		rc = 0;
	} else if (status == 404)
		snprintf(msg, len, "Request %lld had already ended",
		    (long long)id);
	else {
		why = json_string_value(json_object_get(doc, "error"));
		snprintf(msg, len, "request %lld not cancelled: %s",
		    (long long)id, why != NULL ? why : "the daemon refused");
	}
	json_decref(doc);
	free(path);
	return rc;
}
