/*
 * alert.c: [alert NAME] sections: deciding on the loop, delivering on a
 * worker thread.
 *
 * A condition (a backend down, a user past 80% of a quota, too many
 * 5xx answers) is keyed by the alert, its kind and its subject. When it
 * starts it "fires", when it ends it is "resolved". A firing is sent at
 * most once per "every" for the same key, so a flapping backend does
 * not flood a channel; a resolved is sent only for a firing that was
 * sent. Every decision is one log line, sent or not.
 *
 * The loop builds each notice whole (JSON body, environment) and hands
 * it to the worker's bounded queue; the worker posts it with libcurl,
 * retrying with backoff, and runs the exec program with a time limit.
 * When the queue is full the notice is dropped and counted, never
 * waited for.
 */
#include <sys/queue.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "alert.h"
#include "auth.h"
#include "config.h"
#include "gpu.h"
#include "log.h"
#include "loop.h"
#include "quota.h"
#include "server.h"
#include "xmalloc.h"

#define ALERT_TICK_MS		1000	/* how often periodic facts are read */
#define ALERT_QUEUE_MAX		64	/* notices waiting for the worker */
#define ALERT_MAX_CONDS		10000	/* conditions remembered */
#define ALERT_TRIES		4	/* webhook attempts: 1 s, 2 s, 4 s apart */
#define ALERT_BACKOFF_MS	1000
#define ALERT_POST_TIMEOUT_MS	10000
#define ALERT_RING_SECS		3600	/* error_rate's longest window */
#define ALERT_WAITS		4096	/* queue waits remembered */

/* One condition of one alert, e.g. "ops|backend_down|gpu1". */
struct alert_cond {
	char			*key;
	int			 firing;
	int			 sent;		/* its firing notice was sent */
	int			 ever;		/* a notice was ever sent */
	uint64_t		 last;		/* loop time of the last sent */
	uint64_t		 every;		/* of the alert that sent it */
	uint64_t		 seen;		/* loop time last looked at */
	int			 periodic;	/* looked at on every tick */
	TAILQ_ENTRY(alert_cond)	 entry;
};
TAILQ_HEAD(alert_conds, alert_cond);

/* A notice, built whole on the loop, delivered by the worker. */
struct alert_notice {
	char			*alert;
	char			*webhook;
	char			*exec;
	uint64_t		 exec_timeout;
	char			*body;		/* JSON for the webhook */
	char			**env;		/* for exec, NULL-terminated */
	STAILQ_ENTRY(alert_notice) entry;
};
STAILQ_HEAD(alert_queue, alert_notice);

/* Requests and 5xx answers per second, for error_rate. */
struct alert_second {
	int64_t		 sec;
	uint32_t	 total;
	uint32_t	 errors;
};

static struct alert_conds	 alert_conds = TAILQ_HEAD_INITIALIZER(alert_conds);
static size_t			 alert_nconds;
static struct alert_second	 alert_ring[ALERT_RING_SECS];
/* The latest queue waits, for queue_wait's p95. */
static struct {
	uint64_t	 at;		/* loop time it ended */
	uint64_t	 ms;
} alert_waits[ALERT_WAITS];
static size_t			 alert_nwaits;	/* ever; modulo for the slot */
static struct loop_timer	 alert_timer;
static char			 alert_host[256];

/* Shared with the worker, under alert_lock. */
static pthread_mutex_t		 alert_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 alert_wake;
static struct alert_queue	 alert_todo = STAILQ_HEAD_INITIALIZER(alert_todo);
static size_t			 alert_queued;
static int			 alert_stopping;
static uint64_t			 alert_dropped, alert_delivered, alert_failed;
static pthread_t		 alert_thread;
static int			 alert_running;

static void	*alert_main(void *);

static void	 alert_tick(struct loop_timer *);

/* The thresholds of a kind: the alert's "at", or the kind's defaults. */
static size_t
alert_thresholds(const struct config_alert *a, unsigned kind, unsigned *at)
{
	if (a->nat > 0) {
		memcpy(at, a->at, a->nat * sizeof *at);
		return a->nat;
	}
	switch (kind) {
	case ALERT_QUOTA:
		at[0] = 80;
		at[1] = 100;
		return 2;
	case ALERT_GPU_TEMP:
		at[0] = ALERT_DEFAULT_GPU_TEMP_C;
		return 1;
	case ALERT_GPU_MEMORY:
		at[0] = ALERT_DEFAULT_GPU_MEMORY_PCT;
		return 1;
	default:
		at[0] = ALERT_DEFAULT_ERROR_PCT;
		return 1;
	}
}

static void
alert_notice_free(struct alert_notice *n)
{
	free(n->alert);
	xfree_secret(n->webhook);
	free(n->exec);
	free(n->body);
	for (size_t i = 0; n->env != NULL && n->env[i] != NULL; i++)
		free(n->env[i]);
	free(n->env);
	free(n);
}

/* One log line; and unless held back, a notice for the worker. */
static void
alert_emit(const struct config_alert *a, const char *event, const char *state,
    const char *subject, const char *text, const char *value,
    const char *threshold, int deliver)
{
	struct alert_notice	*n;
	json_t			*doc;
	char			*line;
	char			 when[32];
	time_t			 now = time(NULL);
	struct tm		 tm;
	size_t			 i = 0;

	log_warn("alert %s: %s %s: %s%s", a->name, event, state, text,
	    deliver ? "" : strcmp(state, "resolved") == 0 ?
	    " (not sent: its firing was not sent)" :
	    " (not sent: repeated within 'every')");
	/* alert_running changes only on the loop thread. */
	if (!deliver || !alert_running)
		return;
	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);

	n = xcalloc(1, sizeof *n);
	n->alert = xstrdup(a->name);
	n->webhook = a->webhook != NULL ? xstrdup(a->webhook) : NULL;
	n->exec = a->exec != NULL ? xstrdup(a->exec) : NULL;
	n->exec_timeout = a->exec_timeout;
	/* A chat channel shows the text alone: it says where it is from. */
	line = xasprintf("ogate on %s: %s", alert_host, text);
	doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "text", line, "alert", a->name, "event", event, "state", state,
	    "subject", subject, "value", value, "threshold", threshold,
	    "host", alert_host, "time", when);
	n->body = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	free(line);
	if (n->body == NULL)
		n->body = xstrdup("{\"text\":\"ogate alert (unprintable)\"}");
	n->env = xcalloc(12, sizeof *n->env);
	n->env[i++] = xasprintf("OGATE_ALERT=%s", a->name);
	n->env[i++] = xasprintf("OGATE_EVENT=%s", event);
	n->env[i++] = xasprintf("OGATE_STATE=%s", state);
	n->env[i++] = xasprintf("OGATE_SUBJECT=%s", subject);
	n->env[i++] = xasprintf("OGATE_TEXT=%s", text);
	n->env[i++] = xasprintf("OGATE_VALUE=%s", value);
	n->env[i++] = xasprintf("OGATE_THRESHOLD=%s", threshold);
	n->env[i++] = xasprintf("OGATE_HOST=%s", alert_host);
	n->env[i++] = xasprintf("OGATE_TIME=%s", when);
	n->env[i++] = xstrdup("PATH=/usr/local/bin:/usr/bin:/bin");

	pthread_mutex_lock(&alert_lock);
	if (alert_queued >= ALERT_QUEUE_MAX) {
		uint64_t	dropped = ++alert_dropped;

		pthread_mutex_unlock(&alert_lock);
		log_warn("alert %s: delivery queue full, notice dropped "
		    "(%llu dropped so far)", a->name,
		    (unsigned long long)dropped);
		alert_notice_free(n);
		return;
	}
	STAILQ_INSERT_TAIL(&alert_todo, n, entry);
	alert_queued++;
	pthread_cond_signal(&alert_wake);
	pthread_mutex_unlock(&alert_lock);
}

static struct alert_cond *
alert_cond_find(const char *key)
{
	struct alert_cond	*c;

	TAILQ_FOREACH(c, &alert_conds, entry) {
		if (strcmp(c->key, key) == 0)
			return c;
	}
	return NULL;
}

static struct alert_cond *
alert_cond_get(const char *key)
{
	struct alert_cond	*c;

	if ((c = alert_cond_find(key)) != NULL)
		return c;
	/* Too many to remember: each one is treated as new. */
	if (alert_nconds >= ALERT_MAX_CONDS)
		return NULL;
	c = xcalloc(1, sizeof *c);
	c->key = xstrdup(key);
	TAILQ_INSERT_TAIL(&alert_conds, c, entry);
	alert_nconds++;
	return c;
}

/* A notice about this key may go out now: none within "every". */
static int
alert_may_send(const struct config_alert *a, struct alert_cond *c)
{
	if (c == NULL)
		return 1;
	return !c->ever || loop_now() - c->last >= a->every;
}

static void
alert_mark_sent(const struct config_alert *a, struct alert_cond *c)
{
	if (c != NULL) {
		c->ever = 1;
		c->last = loop_now();
		c->every = a->every;
	}
}

/*
 * A condition that holds (active) or not. The texts say what it is
 * when it fires and when it clears.
 */
static void
alert_condition(const struct config_alert *a, const char *event,
    const char *subject, const char *sub_key, int active, const char *firing,
    const char *resolved, const char *value, const char *threshold)
{
	struct alert_cond	*c;
	char			*key;
	int			 send;

	key = xasprintf("%s|%s|%s", a->name, event, sub_key);
	c = active ? alert_cond_get(key) : alert_cond_find(key);
	free(key);
	if (c != NULL) {
		c->seen = loop_now();
		c->periodic = strncmp(event, "backend_", 8) != 0;
	}
	if (active && (c == NULL || !c->firing)) {
		send = alert_may_send(a, c);
		if (c != NULL) {
			c->firing = 1;
			c->sent = send;
		}
		if (send)
			alert_mark_sent(a, c);
		alert_emit(a, event, "firing", subject, firing, value,
		    threshold, send);
	} else if (!active && c != NULL && c->firing) {
		c->firing = 0;
		send = c->sent;
		c->sent = 0;
		alert_emit(a, event, "resolved", subject, resolved, value,
		    threshold, send);
	}
}

void
alert_backend(const char *name, int up)
{
	const struct config_alert	*a;
	struct alert_cond		*c;
	char				*down, *back, *key;

	if (server_cfg == NULL)
		return;
	down = xasprintf("backend %s is down", name);
	back = xasprintf("backend %s is up again", name);
	for (size_t i = 0; i < server_cfg->nalerts; i++) {
		a = &server_cfg->alerts[i];
		if (a->kinds & ALERT_BACKEND_DOWN)
			alert_condition(a, "backend_down", name, name, !up, down,
			    back, up ? "up" : "down", "down");
		if ((a->kinds & ALERT_BACKEND_UP) && up) {
			/* An event, not a condition: it fires and is done. */
			key = xasprintf("%s|backend_up|%s", a->name, name);
			c = alert_cond_get(key);
			free(key);
			if (alert_may_send(a, c)) {
				alert_mark_sent(a, c);
				alert_emit(a, "backend_up", "firing", name, back,
				    "up", "up", 1);
			} else
				alert_emit(a, "backend_up", "firing", name, back,
				    "up", "up", 0);
		}
	}
	free(down);
	free(back);
}

void
alert_observe_status(int status)
{
	int64_t			 sec = (int64_t)(loop_now() / 1000);
	struct alert_second	*s = &alert_ring[sec % ALERT_RING_SECS];

	if (s->sec != sec) {
		s->sec = sec;
		s->total = s->errors = 0;
	}
	s->total++;
	if (status >= 500 && status <= 599)
		s->errors++;
}

void
alert_queue_wait(uint64_t ms)
{
	size_t	slot = alert_nwaits++ % ALERT_WAITS;

	alert_waits[slot].at = loop_now();
	alert_waits[slot].ms = ms;
}

static int
alert_cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The 95th percentile of the queue waits that ended in the window (of
 * the latest 4096), when at least min_requests did.
 */
static void
alert_check_queue_wait(const struct config_alert *a)
{
	static uint64_t	 w[ALERT_WAITS];
	uint64_t	 now = loop_now(), p95 = 0;
	size_t		 n = 0, have;
	char		*firing, *resolved, value[32], threshold[32];

	have = alert_nwaits < ALERT_WAITS ? alert_nwaits : ALERT_WAITS;
	for (size_t i = 0; i < have; i++) {
		if (now - alert_waits[i].at < a->window)
			w[n++] = alert_waits[i].ms;
	}
	if (n > 0) {
		qsort(w, n, sizeof w[0], alert_cmp_u64);
		p95 = w[(n * 95 + 99) / 100 - 1];
	}
	snprintf(value, sizeof value, "%llu", (unsigned long long)p95);
	snprintf(threshold, sizeof threshold, "%llu",
	    (unsigned long long)a->at_ms);
	firing = xasprintf("95%% of %zu queued requests in %llus waited up to "
	    "%llu ms (threshold %llu ms)", n,
	    (unsigned long long)(a->window / 1000), (unsigned long long)p95,
	    (unsigned long long)a->at_ms);
	resolved = xasprintf("queue waits are back to a p95 of %llu ms over "
	    "%zu requests (threshold %llu ms)", (unsigned long long)p95, n,
	    (unsigned long long)a->at_ms);
	alert_condition(a, "queue_wait", "gateway", "gateway",
	    n >= a->min_requests && p95 >= a->at_ms, firing, resolved, value,
	    threshold);
	free(firing);
	free(resolved);
}

static void
alert_check_error_rate(const struct config_alert *a)
{
	int64_t		 now = (int64_t)(loop_now() / 1000);
	int64_t		 secs = (int64_t)(a->window / 1000);
	uint64_t	 total = 0, errors = 0;
	unsigned	 pct, at[ALERT_MAX_AT];
	char		*firing, *resolved, value[32], threshold[16];

	alert_thresholds(a, ALERT_ERROR_RATE, at);
	for (int64_t t = now - secs + 1; t <= now; t++) {
		const struct alert_second *s = &alert_ring[t % ALERT_RING_SECS];

		if (t >= 0 && s->sec == t) {
			total += s->total;
			errors += s->errors;
		}
	}
	pct = total > 0 ? (unsigned)(errors * 100 / total) : 0;
	snprintf(value, sizeof value, "%u", pct);
	snprintf(threshold, sizeof threshold, "%u", at[0]);
	firing = xasprintf("%u%% of the last %llu requests failed with 5xx "
	    "in %llus (threshold %u%%)", pct, (unsigned long long)total,
	    (unsigned long long)secs, at[0]);
	resolved = xasprintf("5xx share back to %u%% of %llu requests in "
	    "%llus (threshold %u%%)", pct, (unsigned long long)total,
	    (unsigned long long)secs, at[0]);
	alert_condition(a, "error_rate", "gateway", "gateway",
	    total >= a->min_requests && errors * 100 >= total * at[0],
	    firing, resolved, value, threshold);
	free(firing);
	free(resolved);
}

/* One user's spending against one limit (per day or per month). */
static void
alert_check_quota_limit(const struct config_alert *a, struct auth_user *u,
    const char *period, int64_t spent, int64_t limit)
{
	char		*sub_key, *firing, *resolved, value[32], threshold[16];
	unsigned	 used, at[ALERT_MAX_AT];
	size_t		 nat;

	if (limit <= 0)
		return;
	nat = alert_thresholds(a, ALERT_QUOTA, at);
	used = (unsigned)((double)spent * 100.0 / (double)limit);
	snprintf(value, sizeof value, "%u", used);
	for (size_t i = 0; i < nat; i++) {
		snprintf(threshold, sizeof threshold, "%u", at[i]);
		sub_key = xasprintf("%s|%s|%u", u->name, period, at[i]);
		firing = xasprintf("user %s has used %u%% of tokens_per_%s "
		    "(%lld of %lld; threshold %u%%)", u->name, used, period,
		    (long long)spent, (long long)limit, at[i]);
		resolved = xasprintf("user %s is below %u%% of tokens_per_%s "
		    "again (%lld of %lld)", u->name, at[i], period,
		    (long long)spent, (long long)limit);
		alert_condition(a, "quota", u->name, sub_key,
		    (double)spent * 100.0 >= (double)limit * at[i],
		    firing, resolved, value, threshold);
		free(sub_key);
		free(firing);
		free(resolved);
	}
}

static void
alert_check_quota(const struct config_alert *a)
{
	struct auth_user	*u;
	struct quota_limits	 l;
	int64_t			 day, month;

	for (u = auth_user_first(); u != NULL; u = auth_user_next(u)) {
		if (u->deleted)
			continue;
		quota_limits(u, &l);
		if (l.tokens_per_day <= 0 && l.tokens_per_month <= 0)
			continue;
		quota_spent(u, &day, &month);
		alert_check_quota_limit(a, u, "day", day, l.tokens_per_day);
		alert_check_quota_limit(a, u, "month", month,
		    l.tokens_per_month);
	}
}

/* Each GPU's temperature, or share of memory in use, against "at". */
static void
alert_check_gpus(const struct config_alert *a, unsigned kind)
{
	struct gpu_info	 g[GPU_MAX];
	size_t		 n = gpu_read(g, GPU_MAX);
	unsigned	 at[ALERT_MAX_AT], v;
	char		 subject[16], value[16], threshold[16];
	char		*firing, *resolved;
	const char	*event = kind == ALERT_GPU_TEMP ? "gpu_temp" :
	    "gpu_memory";

	alert_thresholds(a, kind, at);
	snprintf(threshold, sizeof threshold, "%u", at[0]);
	for (size_t i = 0; i < n; i++) {
		/* A reading that is unknown changes nothing. */
		if (kind == ALERT_GPU_TEMP && g[i].temp_c < 0)
			continue;
		if (kind == ALERT_GPU_MEMORY && g[i].mem_total == 0)
			continue;
		v = kind == ALERT_GPU_TEMP ? (unsigned)g[i].temp_c :
		    (unsigned)((double)g[i].mem_used * 100.0 /
		    (double)g[i].mem_total);
		snprintf(subject, sizeof subject, "gpu%u", g[i].index);
		snprintf(value, sizeof value, "%u", v);
		if (kind == ALERT_GPU_TEMP) {
			firing = xasprintf("%s (%s) is at %u C (threshold "
			    "%u C)", subject, g[i].name, v, at[0]);
			resolved = xasprintf("%s (%s) is back to %u C "
			    "(threshold %u C)", subject, g[i].name, v, at[0]);
		} else {
			firing = xasprintf("%s (%s) has %u%% of its memory in "
			    "use (threshold %u%%)", subject, g[i].name, v,
			    at[0]);
			resolved = xasprintf("%s (%s) is back to %u%% of its "
			    "memory in use (threshold %u%%)", subject,
			    g[i].name, v, at[0]);
		}
		alert_condition(a, event, subject, subject, v >= at[0], firing,
		    resolved, value, threshold);
		free(firing);
		free(resolved);
	}
}

/* Is the alert that a condition's key starts with still configured? */
static int
alert_cond_configured(const struct alert_cond *c)
{
	size_t	len = strcspn(c->key, "|");

	for (size_t i = 0; server_cfg != NULL && i < server_cfg->nalerts; i++) {
		if (strlen(server_cfg->alerts[i].name) == len &&
		    strncmp(server_cfg->alerts[i].name, c->key, len) == 0)
			return 1;
	}
	return 0;
}

/*
 * Forget conditions that are over and could not be held back any more,
 * and, without a notice, those whose alert was removed by a reload or
 * whose subject is gone (a user deleted, a GPU lost): a periodic one
 * not looked at for a while.
 */
static void
alert_prune(void)
{
	struct alert_cond	*c, *next;
	uint64_t		 now = loop_now();
	int			 gone;

	for (c = TAILQ_FIRST(&alert_conds); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		gone = !alert_cond_configured(c) || (c->periodic &&
		    now - c->seen > 10 * ALERT_TICK_MS);
		if (!gone && (c->firing || (c->ever && now - c->last <
		    c->every)))
			continue;
		TAILQ_REMOVE(&alert_conds, c, entry);
		alert_nconds--;
		free(c->key);
		free(c);
	}
}

static void
alert_tick(struct loop_timer *t)
{
	const struct config_alert	*a;

	for (size_t i = 0; server_cfg != NULL && i < server_cfg->nalerts; i++) {
		a = &server_cfg->alerts[i];
		if (a->kinds & ALERT_ERROR_RATE)
			alert_check_error_rate(a);
		if (a->kinds & ALERT_QUOTA)
			alert_check_quota(a);
		if (a->kinds & ALERT_QUEUE_WAIT)
			alert_check_queue_wait(a);
		if (a->kinds & ALERT_GPU_TEMP)
			alert_check_gpus(a, ALERT_GPU_TEMP);
		if (a->kinds & ALERT_GPU_MEMORY)
			alert_check_gpus(a, ALERT_GPU_MEMORY);
	}
	alert_prune();
	loop_timer_arm(t, ALERT_TICK_MS);
}

const char *
alert_test(const char *name)
{
	const struct config_alert	*a;
	size_t				 before;

	for (size_t i = 0; server_cfg != NULL && i < server_cfg->nalerts; i++) {
		a = &server_cfg->alerts[i];
		if (strcmp(a->name, name) != 0)
			continue;
		pthread_mutex_lock(&alert_lock);
		before = alert_queued;
		pthread_mutex_unlock(&alert_lock);
		if (before >= ALERT_QUEUE_MAX)
			return "the delivery queue is full";
		alert_emit(a, "test", "firing", "test", "test notice from ogate",
		    "0", "0", 1);
		return NULL;
	}
	return "no such alert";
}

/* The webhook's scheme and host: its path and user may hold a token. */
static char *
alert_webhook_shown(const char *url)
{
	const char	*auth = strstr(url, "://"), *end, *at;

	if (auth == NULL)
		return xstrdup("***");
	auth += 3;
	end = auth + strcspn(auth, "/");
	at = memchr(auth, '@', (size_t)(end - auth));
	if (at != NULL)
		auth = at + 1;
	return xasprintf("%.*s%.*s/...", (int)(strstr(url, "://") + 3 - url),
	    url, (int)(end - auth), auth);
}

json_t *
alert_list_json(void)
{
	json_t		*alerts = json_array(), *doc, *on;
	uint64_t	 dropped, delivered, failed;
	size_t		 queued;
	static const struct {
		unsigned	 bit;
		const char	*name;
	} kinds[] = {
		{ ALERT_BACKEND_DOWN, "backend_down" },
		{ ALERT_BACKEND_UP, "backend_up" },
		{ ALERT_QUOTA, "quota" },
		{ ALERT_ERROR_RATE, "error_rate" },
		{ ALERT_QUEUE_WAIT, "queue_wait" },
		{ ALERT_GPU_TEMP, "gpu_temp" },
		{ ALERT_GPU_MEMORY, "gpu_memory" },
	};

	for (size_t i = 0; server_cfg != NULL && i < server_cfg->nalerts; i++) {
		const struct config_alert	*a = &server_cfg->alerts[i];
		json_t				*at = json_array();
		struct alert_cond		*c;
		size_t				 firing = 0, plen;
		char				*prefix;
		char				*shown = a->webhook != NULL ?
		    alert_webhook_shown(a->webhook) : NULL;

		on = json_array();
		for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
			if (a->kinds & kinds[k].bit)
				json_array_append_new(on,
				    json_string(kinds[k].name));
		}
		for (size_t k = 0; k < a->nat; k++)
			json_array_append_new(at, json_integer(a->at[k]));
		if ((a->kinds & ALERT_QUEUE_WAIT) && a->at_text != NULL)
			json_array_append_new(at, json_string(a->at_text));
		prefix = xasprintf("%s|", a->name);
		plen = strlen(prefix);
		TAILQ_FOREACH(c, &alert_conds, entry) {
			if (c->firing && strncmp(c->key, prefix, plen) == 0)
				firing++;
		}
		free(prefix);
		json_array_append_new(alerts, json_pack("{s:s, s:o, s:o, "
		    "s:I, s:I, s:I, s:I, s:s?, s:s?, s:I}",
		    "name", a->name, "on", on, "at", at,
		    "every_ms", (json_int_t)a->every,
		    "window_ms", (json_int_t)a->window,
		    "min_requests", (json_int_t)a->min_requests,
		    "exec_timeout_ms", (json_int_t)a->exec_timeout,
		    "webhook", shown, "exec", a->exec,
		    "firing", (json_int_t)firing));
		free(shown);
	}
	pthread_mutex_lock(&alert_lock);
	queued = alert_queued;
	dropped = alert_dropped;
	delivered = alert_delivered;
	failed = alert_failed;
	pthread_mutex_unlock(&alert_lock);
	doc = json_pack("{s:o, s:I, s:I, s:I, s:I}", "alerts", alerts,
	    "queued", (json_int_t)queued, "dropped", (json_int_t)dropped,
	    "delivered", (json_int_t)delivered, "failed", (json_int_t)failed);
	return doc;
}

/* Sleep on the worker for ms, or less if the daemon is stopping. */
static void
alert_nap(uint64_t ms)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&alert_lock);
	while (!alert_stopping &&
	    pthread_cond_timedwait(&alert_wake, &alert_lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&alert_lock);
}

static int
alert_is_stopping(void)
{
	int	stopping;

	pthread_mutex_lock(&alert_lock);
	stopping = alert_stopping;
	pthread_mutex_unlock(&alert_lock);
	return stopping;
}

static size_t
alert_discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * nmemb;
}

/* One POST; 0 on a 2xx answer, else -1 and why (never the URL). */
static int
alert_post_once(const struct alert_notice *n, char *why, size_t len)
{
	CURL			*e;
	struct curl_slist	*h;
	CURLcode		 rc;
	long			 code = 0;

	if ((e = curl_easy_init()) == NULL) {
		snprintf(why, len, "curl_easy_init failed");
		return -1;
	}
	h = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(e, CURLOPT_URL, n->webhook);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, n->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(n->body));
	curl_easy_setopt(e, CURLOPT_USERAGENT, "ogate/" PACKAGE_VERSION);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ALERT_POST_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, alert_discard);
	/* https is verified: libcurl's defaults, said here so they stay. */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	rc = curl_easy_perform(e);
	if (rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	if (rc != CURLE_OK) {
		snprintf(why, len, "%s", curl_easy_strerror(rc));
		return -1;
	}
	if (code < 200 || code > 299) {
		snprintf(why, len, "HTTP status %ld", code);
		return -1;
	}
	return 0;
}

static int
alert_post(const struct alert_notice *n)
{
	char		why[256] = "";
	uint64_t	backoff = ALERT_BACKOFF_MS;

	for (int try = 1; try <= ALERT_TRIES; try++) {
		if (alert_post_once(n, why, sizeof why) == 0)
			return 0;
		if (try == ALERT_TRIES || alert_is_stopping())
			break;
		alert_nap(backoff);
		backoff *= 2;
	}
	log_warn("alert %s: webhook delivery failed after %d tries: %s",
	    n->alert, ALERT_TRIES, why);
	return -1;
}

/* Run the program with the facts in its environment, for a limited time. */
static int
alert_exec(const struct alert_notice *n)
{
	posix_spawn_file_actions_t	 fa;
	posix_spawnattr_t		 attr;
	sigset_t			 none, dflt;
	char				*argv[] = { n->exec, NULL };
	pid_t				 pid, got;
	uint64_t			 waited = 0;
	int				 status, err;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	/* Not every descriptor of the daemon (libcurl's) is close-on-exec. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	posix_spawnattr_init(&attr);
	/* The daemon blocks and ignores signals the program must have. */
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGHUP);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGINT);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	/* Its own process group, so that its children are killed with it. */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	err = posix_spawn(&pid, n->exec, &fa, &attr, argv, n->env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (err != 0) {
		log_warn("alert %s: exec %s: %s", n->alert, n->exec,
		    strerror(err));
		return -1;
	}
	for (;;) {
		got = waitpid(pid, &status, WNOHANG);
		if (got == pid || (got == -1 && errno != EINTR))
			break;
		if (waited >= n->exec_timeout || alert_is_stopping()) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
				;
			log_warn("alert %s: exec %s killed after %llu ms "
			    "(exec_timeout %llu ms)", n->alert, n->exec,
			    (unsigned long long)waited,
			    (unsigned long long)n->exec_timeout);
			return -1;
		}
		/* Polled, as the daemon takes no SIGCHLD. */
		nanosleep(&(struct timespec){ 0, 20 * 1000000L }, NULL);
		waited += 20;
	}
	if (got == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (got == pid && WIFEXITED(status))
		log_warn("alert %s: exec %s exited with status %d", n->alert,
		    n->exec, WEXITSTATUS(status));
	else if (got == pid && WIFSIGNALED(status))
		log_warn("alert %s: exec %s killed by signal %d", n->alert,
		    n->exec, WTERMSIG(status));
	return -1;
}

static void *
alert_main(void *arg)
{
	struct alert_notice	*n;
	int			 ok;

	(void)arg;
	loop_background_thread();
	pthread_mutex_lock(&alert_lock);
	for (;;) {
		while (STAILQ_EMPTY(&alert_todo) && !alert_stopping)
			pthread_cond_wait(&alert_wake, &alert_lock);
		if (alert_stopping)
			break;
		n = STAILQ_FIRST(&alert_todo);
		STAILQ_REMOVE_HEAD(&alert_todo, entry);
		pthread_mutex_unlock(&alert_lock);

		ok = 1;
		if (n->webhook != NULL && alert_post(n) != 0)
			ok = 0;
		if (n->exec != NULL && alert_exec(n) != 0)
			ok = 0;
		if (ok)
			log_info("alert %s: notice delivered", n->alert);

		pthread_mutex_lock(&alert_lock);
		alert_queued--;
		if (ok)
			alert_delivered++;
		else
			alert_failed++;
		alert_notice_free(n);
	}
	pthread_mutex_unlock(&alert_lock);
	return NULL;
}

void
alert_start(void)
{
	pthread_condattr_t	ca;

	if (gethostname(alert_host, sizeof alert_host) != 0)
		snprintf(alert_host, sizeof alert_host, "unknown");
	alert_host[sizeof alert_host - 1] = '\0';
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&alert_wake, &ca);
	pthread_condattr_destroy(&ca);
	if ((errno = pthread_create(&alert_thread, NULL, alert_main, NULL)) != 0)
		fatal("pthread_create: %s", strerror(errno));
	alert_running = 1;
	loop_timer_init(&alert_timer, alert_tick, NULL);
	loop_timer_arm(&alert_timer, ALERT_TICK_MS);
}

void
alert_stop(void)
{
	struct alert_notice	*n;
	struct alert_cond	*c;

	loop_timer_stop(&alert_timer);
	if (alert_running) {
		pthread_mutex_lock(&alert_lock);
		alert_stopping = 1;
		pthread_cond_broadcast(&alert_wake);
		pthread_mutex_unlock(&alert_lock);
		pthread_join(alert_thread, NULL);
		alert_running = 0;
	}
	while ((n = STAILQ_FIRST(&alert_todo)) != NULL) {
		STAILQ_REMOVE_HEAD(&alert_todo, entry);
		alert_notice_free(n);
	}
	while ((c = TAILQ_FIRST(&alert_conds)) != NULL) {
		TAILQ_REMOVE(&alert_conds, c, entry);
		free(c->key);
		free(c);
	}
	alert_nconds = 0;
}
