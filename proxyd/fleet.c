/*
 * fleet.c: the fleet scheduler.
 *
 * Fair share. Each user has a figure of service, the GPU time their
 * requests have held slots, divided by their weight and decaying with a
 * half-life of FLEET_HALF_LIFE_MS so that it means "recently". Time is
 * what is counted, not requests or tokens: a slot is what users share,
 * and a token of a large model holds it far longer than one of a small
 * one, while a long prompt costs time but few output tokens. The figure
 * grows by the number of the user's requests running, continuously, so
 * it needs no update but at a change: s(t) = s0 e^-kt + (r/w)(1-e^-kt)/k.
 * A request dispatched is charged FLEET_TURN_MS at once, so that one
 * user does not take every slot that frees in the same instant; the
 * charge, decayed, is given back when the request ends.
 *
 * The end users a trusted front end names (enduser.h) each have a
 * figure of their own, so that one busy person behind a shared front
 * end does not take its other users' turns; the front end's own
 * requests, naming nobody, have its user's figure.
 *
 * Priority. A user's priority (0 to 1000, [defaults] priority, 100 when
 * nothing says) gives a class, its hundreds, and a weight, itself: a
 * class is served strictly before those below it; within a class,
 * shares are in proportion to weight.
 *
 * Placement. A request goes where its model is resident and a slot is
 * free. When every such slot is taken, it may go where the model must
 * first be loaded, but only if the wait for a warm slot is expected to
 * be longer than the load: the wait is the soonest expected end of a
 * request running where the model is resident (each model's mean time
 * in a slot, learned), plus the turns of those queued ahead of it; the
 * load time is learned from the load_duration backends report. A
 * request that has already waited as long as a load would have taken
 * stops trusting the estimate and goes. Backends busy loading one model
 * take no request for another, since Ollama would make it wait behind
 * the load.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth.h"
#include "backend.h"
#include "config.h"
#include "enduser.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "probe.h"
#include "fleet.h"
#include "server.h"
#include "xmalloc.h"

#define FLEET_HALF_LIFE_MS	60000.0
#define FLEET_TURN_MS		1000.0
/* The load time assumed before any backend has reported one. */
#define FLEET_LOAD_GUESS_MS	10000
/* A reported load_duration shorter than this was no load. */
#define FLEET_LOAD_SEEN_MS	200
/* While requests come, residency is looked at this often. */
#define FLEET_PS_REFRESH_MS	5000
/* Models whose time in a slot is remembered. */
#define FLEET_STATS_MAX		256
#define FLEET_DEFAULT_PRIORITY	100
/* Users who sent a request this recently are sharing the fleet. */
#define FLEET_ACTIVE_MS		(60 * 1000)

static TAILQ_HEAD(, fleet_ticket) fleet_queue =
    TAILQ_HEAD_INITIALIZER(fleet_queue);
static TAILQ_HEAD(, fleet_ticket) fleet_running =
    TAILQ_HEAD_INITIALIZER(fleet_running);
static unsigned			 fleet_nqueued;
static uint64_t			 fleet_seq;
static struct loop_timer	 fleet_timer;
static int			 fleet_timer_ready;
static struct fleet_stats	 fleet_counts;

/* A model's mean time in a slot, for the expected wait. */
struct fleet_model {
	char		*name;
	double		 serve_ms;
	uint64_t	 used;		/* loop time, to choose which to forget */
};
static struct fleet_model	 fleet_models[FLEET_STATS_MAX];

static void	fleet_run(void);

static double
fleet_decay_rate(void)
{
	return M_LN2 / FLEET_HALF_LIFE_MS;
}

static int64_t
fleet_priority(const struct auth_user *u)
{
	if (u == NULL)
		return FLEET_DEFAULT_PRIORITY;
	if (u->priority != AUTH_UNSET)
		return u->priority;
	return (int64_t)server_cfg->defaults.priority;
}

static double
fleet_weight(const struct auth_user *u)
{
	int64_t	p = fleet_priority(u);

	return p < 1 ? 1.0 : (double)p;
}

/*
 * Whose share a request is: its end user's, if a trusted front end
 * named one, else its user's. An end user is weighed as its service
 * user is.
 */
static struct auth_share *
fleet_share(const struct fleet_ticket *tk)
{
	if (tk->eu != NULL)
		return &tk->eu->share;
	return tk->user != NULL ? &tk->user->fleet : NULL;
}

/* Bring the service of a ticket's share up to now. */
static void
fleet_share_advance(const struct fleet_ticket *tk, uint64_t now)
{
	struct auth_share	*s = fleet_share(tk);
	double			 k = fleet_decay_rate(), d, rate;

	if (s == NULL || now <= s->at)
		return;
	d = exp(-k * (double)(now - s->at));
	rate = (double)s->running * FLEET_DEFAULT_PRIORITY /
	    fleet_weight(tk->user);
	s->served = s->served * d + rate * (1.0 - d) / k;
	s->at = now;
}

static struct fleet_model *
fleet_model_find(const char *name, int make)
{
	struct fleet_model	*m, *old = &fleet_models[0];

	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < FLEET_STATS_MAX; i++) {
		m = &fleet_models[i];
		if (m->name != NULL && strcmp(m->name, name) == 0) {
			m->used = loop_now();
			return m;
		}
		if (m->used < old->used)
			old = m;
	}
	if (!make)
		return NULL;
	free(old->name);
	old->name = xstrdup(name);
	old->serve_ms = 0;
	old->used = loop_now();
	return old;
}

/* How long a request for the model holds a slot; 0 if not known. */
static double
fleet_serve_ms(const char *model)
{
	struct fleet_model	*m = fleet_model_find(model, 0);

	return m != NULL ? m->serve_ms : 0;
}

static void
fleet_ewma(double *v, double sample)
{
	*v = *v == 0 ? sample : *v * 0.7 + sample * 0.3;
}

/* How long a load takes on b, as far as is known. */
static uint64_t
fleet_load_ms(const struct backend *b)
{
	const struct backend	*o;
	uint64_t		 sum = 0, n = 0;

	if (b->load_ms != 0)
		return b->load_ms;
	for (o = backend_first(); o != NULL; o = backend_next((struct backend *)o)) {
		if (o->load_ms != 0) {
			sum += o->load_ms;
			n++;
		}
	}
	return n != 0 ? sum / n : FLEET_LOAD_GUESS_MS;
}

static int
fleet_free(const struct backend *b)
{
	return b->max_concurrent == 0 || b->slots < b->max_concurrent;
}

/* May the backend serve the model at all (as far as is known)? */
static int
fleet_has(const struct backend *b, const char *model)
{
	if (model == NULL)
		return 1;
	if (!backend_serves(b, model))
		return 0;
	/* An OpenAI upstream serves what it lists, or what its globs say. */
	if (b->openai && b->globs == NULL && !backend_catalogued(b))
		return 0;
	return backend_listed(b, model) != 0 ||
	    backend_resident(b, model) != 0;
}

/* Can it be asked at all: in the config, not drained, not excluded? */
static int
fleet_usable(const struct backend *b, const struct fleet_ticket *tk)
{
	/* A backend the client named is asked, drained or not. */
	if (tk->only != NULL)
		return b == tk->only && !b->removed;
	return !b->removed && !b->draining && b != tk->not &&
	    !(tk->native && b->openai) && fleet_has(b, tk->model);
}

/*
 * Down backends are asked only when every backend that could serve the
 * request is down: a gateway with one backend then answers as it does,
 * and notices at once when it is back.
 */
static int
fleet_all_down(const struct fleet_ticket *tk)
{
	struct backend	*b;

	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		if (fleet_usable(b, tk) && !backend_down(b))
			return 0;
	}
	return 1;
}

/*
 * Headroom. A user who already holds half the fleet's slots or more
 * does not take a backend's last free one while others are using the
 * fleet: there is no taking a slot back from a long generation, so
 * without a slot kept free, everyone else's next request would wait for
 * one to end. The queue itself stays work-conserving: alone, a user may
 * fill every slot.
 */
static int
fleet_headroom(const struct fleet_ticket *tk)
{
	const struct backend	*o;
	struct auth_user	*u;
	struct auth_share	*s = fleet_share(tk);
	uint64_t		 total = 0, now = loop_now();

	if (s == NULL)
		return 0;
	for (o = backend_first(); o != NULL;
	    o = backend_next((struct backend *)o)) {
		if (o->removed || o->draining || backend_down(o))
			continue;
		if (o->max_concurrent == 0)
			return 0;
		total += o->max_concurrent;
	}
	if ((uint64_t)s->running * 2 < total)
		return 0;
	/* A user's own share is seen only by its own requests. */
	for (u = auth_user_first(); u != NULL; u = auth_user_next(u)) {
		if (&u->fleet != s && u->fleet.seen != 0 &&
		    now - u->fleet.seen < FLEET_ACTIVE_MS)
			return 1;
	}
	return enduser_seen_besides(tk->eu, now > FLEET_ACTIVE_MS ?
	    now - FLEET_ACTIVE_MS : 0);
}

/*
 * May the ticket take a slot of b? With headroom kept, not its last.
 * *headroom is -1 until a last slot makes it worth finding out, which
 * is done once for all the backends of one choice.
 */
static int
fleet_takes(const struct fleet_ticket *tk, const struct backend *b,
    int *headroom)
{
	if (!fleet_free(b))
		return 0;
	if (b->max_concurrent < 2 || b->slots + 1 < b->max_concurrent)
		return 1;
	if (*headroom < 0)
		*headroom = fleet_headroom(tk);
	return !*headroom;
}

/* Is a over b, by slots used relative to weight? */
static int
fleet_less_busy(const struct backend *a, const struct backend *b)
{
	return b == NULL || a->slots * b->weight < b->slots * a->weight ||
	    (a->slots * b->weight == b->slots * a->weight &&
	    a->active * b->weight < b->active * a->weight);
}

/*
 * The soonest a warm slot for the model is expected to free, in ms from
 * now, with ahead requests for it queued before this one.
 */
static double
fleet_warm_wait(const struct fleet_ticket *tk, unsigned ahead)
{
	struct fleet_ticket	*r;
	uint64_t		 now = loop_now(), slots = 0;
	double			 soonest = -1, rest;
	struct backend		*b;

	TAILQ_FOREACH(r, &fleet_running, entry) {
		if (!fleet_usable(r->be, tk) ||
		    !backend_resident(r->be, tk->model))
			continue;
		rest = fleet_serve_ms(r->model) - (double)(now - r->started);
		if (rest < 0)
			rest = 0;
		if (soonest < 0 || rest < soonest)
			soonest = rest;
	}
	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		if (fleet_usable(b, tk) && backend_resident(b, tk->model))
			slots += b->max_concurrent;
	}
	if (soonest < 0)
		soonest = 0;
	return soonest + (double)ahead * fleet_serve_ms(tk->model) /
	    (double)(slots ? slots : 1);
}

/*
 * Is a backend that may serve the ticket being looked at for the first
 * time? Until the look ends (PROBE_TIMEOUT_MS at most), where models are
 * resident is not known, and a request routed blind may force a load.
 */
static int
fleet_first_look(const struct fleet_ticket *tk)
{
	struct backend	*b;

	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		if (fleet_usable(b, tk) && b->probed_at == 0 &&
		    b->probe != NULL)
			return 1;
	}
	return 0;
}

/*
 * Where the ticket should go now, or NULL to wait. *recheck is set to
 * the loop time at which waiting should be reconsidered, if any.
 */
static struct backend *
fleet_choose(struct fleet_ticket *tk, unsigned ahead, uint64_t *recheck)
{
	struct backend	*b, *warm = NULL, *cold = NULL;
	int		 all_down = fleet_all_down(tk), warm_full = 0;
	int		 headroom = -1;
	uint64_t	 now = loop_now(), load, waited;

	if (tk->slot && tk->model != NULL && fleet_first_look(tk) &&
	    now - tk->since < PROBE_TIMEOUT_MS) {
		*recheck = tk->since + PROBE_TIMEOUT_MS;
		return NULL;
	}
	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		if (!fleet_usable(b, tk) || (backend_down(b) && !all_down))
			continue;
		if (!tk->slot) {
			/* Where it is resident answers at once; then the least busy. */
			if (warm == NULL || (backend_resident(b, tk->model) &&
			    !backend_resident(warm, tk->model)) ||
			    (backend_resident(b, tk->model) ==
			    backend_resident(warm, tk->model) &&
			    fleet_less_busy(b, warm)))
				warm = b;
			continue;
		}
		/* A backend loading another model would make it wait. */
		if (b->loading != NULL && (tk->model == NULL ||
		    strcmp(b->loading, tk->model) != 0))
			continue;
		if (backend_resident(b, tk->model)) {
			if (!fleet_takes(tk, b, &headroom))
				warm_full = 1;
			else if (fleet_less_busy(b, warm))
				warm = b;
			continue;
		}
		/* Not resident: it must load. */
		if (!fleet_takes(tk, b, &headroom))
			continue;
		if (cold == NULL || fleet_less_busy(b, cold))
			cold = b;
	}
	if (warm != NULL || cold == NULL || !warm_full)
		return warm != NULL ? warm : cold;
	load = fleet_load_ms(cold);
	waited = now - tk->since;
	if (waited >= load || fleet_warm_wait(tk, ahead) > (double)load)
		return cold;
	*recheck = tk->since + load;
	return NULL;
}

/* The order of the queue: class, then share, then arrival. */
static int
fleet_before(const struct fleet_ticket *a, const struct fleet_ticket *b)
{
	int64_t	ca = fleet_priority(a->user) / 100;
	int64_t	cb = fleet_priority(b->user) / 100;
	double	sa = fleet_share(a) != NULL ? fleet_share(a)->served : 0;
	double	sb = fleet_share(b) != NULL ? fleet_share(b)->served : 0;

	if (ca != cb)
		return ca > cb;
	if (sa != sb)
		return sa < sb;
	return a->seq < b->seq;
}

static int
fleet_cmp(const void *pa, const void *pb)
{
	const struct fleet_ticket *a = *(const struct fleet_ticket *const *)pa;
	const struct fleet_ticket *b = *(const struct fleet_ticket *const *)pb;

	return fleet_before(a, b) ? -1 : fleet_before(b, a) ? 1 : 0;
}

/* The queued tickets in the order they are served; free the array. */
static struct fleet_ticket **
fleet_sorted(void)
{
	struct fleet_ticket	**v, *tk;
	uint64_t		  now = loop_now();
	size_t			  n = 0;

	v = xcalloc(fleet_nqueued + 1, sizeof *v);
	TAILQ_FOREACH(tk, &fleet_queue, entry) {
		fleet_share_advance(tk, now);
		v[n++] = tk;
	}
	qsort(v, n, sizeof *v, fleet_cmp);
	return v;
}

static void
fleet_dequeue(struct fleet_ticket *tk)
{
	TAILQ_REMOVE(&fleet_queue, tk, entry);
	tk->queued = 0;
	fleet_nqueued--;
	if (tk->user != NULL)
		tk->user->fleet.queued--;
	if (tk->eu != NULL)
		tk->eu->share.queued--;
}

/* The ticket takes a slot on b, and its owner starts the transfer. */
static void
fleet_start(struct fleet_ticket *tk, struct backend *b)
{
	struct auth_share	*s;
	uint64_t		 now = loop_now();

	if (tk->queued) {
		fleet_dequeue(tk);
		metrics_queue_wait((double)(now - tk->since) / 1000.0);
	}
	tk->waited_ms = now - tk->since;
	tk->cold = tk->loads = 0;
	tk->be = b;
	tk->started = now;
	if (tk->slot) {
		backend_ref(b);
		tk->running = 1;
		b->slots++;
		TAILQ_INSERT_TAIL(&fleet_running, tk, entry);
		if ((s = fleet_share(tk)) != NULL) {
			fleet_share_advance(tk, now);
			s->running++;
			tk->charge = FLEET_TURN_MS * FLEET_DEFAULT_PRIORITY /
			    fleet_weight(tk->user);
			s->served += tk->charge;
		}
		if (tk->model != NULL && !backend_resident(b, tk->model)) {
			/* It loads here: others of it may follow. */
			tk->cold = tk->loads = 1;
			fleet_counts.cold++;
			free(b->loading);
			b->loading = xstrdup(tk->model);
			log_info("%s: not resident where a slot is free; "
			    "loading it on %s", tk->model, b->name);
		}
	}
	tk->go(tk, b);
}

/* A queued request waited too long: 503, or 429 if its user holds slots. */
static void
fleet_expire(struct fleet_ticket *tk)
{
	struct auth_share	*s = fleet_share(tk);
	char			 msg[300];
	int			 status = 503;

	fleet_dequeue(tk);
	fleet_counts.timeouts++;
	metrics_queue_wait((double)(loop_now() - tk->since) / 1000.0);
	if (s != NULL && s->running > 0) {
		status = 429;
		snprintf(msg, sizeof msg, "the request waited %llu s in the "
		    "queue while %u of your requests held your share of the "
		    "backends", (unsigned long long)(server_cfg->queue_timeout /
		    1000), s->running);
	} else
		snprintf(msg, sizeof msg, "the request waited %llu s in the "
		    "queue: every backend that serves %s is busy",
		    (unsigned long long)(server_cfg->queue_timeout / 1000),
		    tk->model != NULL ? tk->model : "it");
	tk->expire(tk, status, msg);
}

static int
fleet_any_free(void)
{
	struct backend	*b;

	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		if (!b->removed && !b->draining && fleet_free(b))
			return 1;
	}
	return 0;
}

/* Requests for a model queued ahead in this pass, counted as they wait. */
struct fleet_ahead {
	const char	*model;
	unsigned	 n;
};

static unsigned *
fleet_ahead_of(struct fleet_ahead *a, size_t max, const char *model)
{
	if (model == NULL)
		return NULL;	/* any backend will do: no warm slot to wait for */
	for (size_t i = 0; i < max; i++) {
		if (a[i].model == NULL) {
			a[i].model = model;
			return &a[i].n;
		}
		if (strcmp(a[i].model, model) == 0)
			return &a[i].n;
	}
	return NULL;
}

/*
 * One look at the queue: what has waited too long goes; then, while a
 * slot is free, the first ticket in order that may take one starts.
 * The order is taken again after each start, since a start changes its
 * user's share.
 */
static void
fleet_run(void)
{
	struct fleet_ticket	**v, *tk, *next;
	struct fleet_ahead	  ahead[32];
	struct backend		 *b;
	uint64_t		  now = loop_now(), wake = 0, recheck;
	uint64_t		  limit = server_cfg->queue_timeout;
	int			  started;

	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		if (b->reprobe) {
			b->reprobe = 0;
			probe_backend(b);
		}
	}
	for (tk = TAILQ_FIRST(&fleet_queue); tk != NULL; tk = next) {
		next = TAILQ_NEXT(tk, entry);
		if (limit != 0 && now - tk->since >= limit)
			fleet_expire(tk);
	}
	do {
		started = 0;
		if (fleet_nqueued == 0 || !fleet_any_free())
			break;
		memset(ahead, 0, sizeof ahead);
		v = fleet_sorted();
		for (size_t i = 0; v[i] != NULL; i++) {
			unsigned	*n;

			tk = v[i];
			recheck = 0;
			n = fleet_ahead_of(ahead, 32, tk->model);
			if ((b = fleet_choose(tk, n != NULL ? *n : 0,
			    &recheck)) != NULL) {
				fleet_start(tk, b);
				started = 1;
				break;
			}
			if (n != NULL)
				(*n)++;
			if (recheck != 0 && (wake == 0 || recheck < wake))
				wake = recheck;
		}
		free(v);
	} while (started);
	TAILQ_FOREACH(tk, &fleet_queue, entry) {
		if (limit != 0 && (wake == 0 || tk->since + limit < wake))
			wake = tk->since + limit;
	}
	if (wake != 0)
		loop_timer_arm(&fleet_timer, wake > now ? wake - now : 0);
	else
		loop_timer_stop(&fleet_timer);
}

static void
fleet_timer_cb(struct loop_timer *t)
{
	(void)t;
	fleet_run();
}

static void
fleet_init(void)
{
	if (!fleet_timer_ready) {
		loop_timer_init(&fleet_timer, fleet_timer_cb, NULL);
		fleet_timer_ready = 1;
	}
}

void
fleet_kick(void)
{
	fleet_init();
	loop_timer_arm(&fleet_timer, 0);
}

/* While requests come, what each backend holds is kept current. */
static void
fleet_refresh(void)
{
	struct backend	*b;
	uint64_t	 now = loop_now();

	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		if (!b->removed && (b->probed_at == 0 ||
		    now - b->probed_at >= FLEET_PS_REFRESH_MS))
			probe_backend(b);
	}
}

static void
fleet_unavailable(struct fleet_refusal *why)
{
	why->status = 503;
	why->retry_after = 5;
	snprintf(why->message, sizeof why->message, "no backend available");
}

/*
 * Is there a backend that may have the model? If none, say why: the
 * model is on none of them (Ollama's own 404), or those that have it
 * are drained, excluded or gone (503).
 */
static int
fleet_possible(struct fleet_ticket *tk, const char *asked,
    enum fleet_notfound nf, struct fleet_refusal *why)
{
	struct backend	*b;
	int		 known = 1;

	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		if (fleet_usable(b, tk))
			return 1;
		if (!b->removed && !backend_catalogued(b))
			known = 0;
	}
	memset(why, 0, sizeof *why);
	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		if (b->removed || !fleet_has(b, tk->model))
			continue;
		if (tk->native && b->openai && tk->model != NULL) {
			why->status = 400;
			snprintf(why->message, sizeof why->message, "model '%s' "
			    "is served by an OpenAI-compatible backend: use "
			    "/v1/chat/completions, /v1/completions or "
			    "/v1/embeddings", asked);
			return 0;
		}
		known = 0;
	}
	if (tk->model != NULL && known && backend_first() != NULL) {
		why->status = 404;
		if (nf == NOTFOUND_PULL)
			snprintf(why->message, sizeof why->message, "model "
			    "\"%s\" not found, try pulling it first", asked);
		else
			snprintf(why->message, sizeof why->message, "model "
			    "'%s' not found", asked);
		return 0;
	}
	fleet_unavailable(why);
	return 0;
}

/* The queue, or the user's share of it, is full: the ticket leaves. */
static enum fleet_verdict
fleet_overflow(struct fleet_ticket *tk, struct fleet_refusal *why,
    int status)
{
	fleet_dequeue(tk);
	why->status = status;
	why->retry_after = 5;
	return FLEET_REFUSED;
}

int
fleet_elsewhere(const struct fleet_ticket *tk)
{
	struct backend	*b;

	for (b = backend_first(); b != NULL; b = backend_next(b)) {
		if (fleet_usable(b, tk))
			return 1;
	}
	return 0;
}

enum fleet_verdict
fleet_submit(struct fleet_ticket *tk, const char *asked,
    enum fleet_notfound nf, struct fleet_refusal *why)
{
	const struct config	*cfg = server_cfg;
	struct backend		*b;
	uint64_t		 ignored = 0, max_user;

	fleet_init();
	if (tk->model != NULL)
		fleet_refresh();
	if (!fleet_possible(tk, asked != NULL ? asked : "", nf, why))
		return FLEET_REFUSED;
	if (tk->seq == 0)
		tk->seq = ++fleet_seq;
	if (tk->since == 0)
		tk->since = loop_now();
	if (!tk->slot) {
		/* Nothing to wait for: it holds no slot. */
		if ((b = fleet_choose(tk, 0, &ignored)) == NULL) {
			fleet_unavailable(why);
			return FLEET_REFUSED;
		}
		fleet_start(tk, b);
		return FLEET_STARTED;
	}
	max_user = tk->user != NULL && tk->user->max_queued != AUTH_UNSET ?
	    (uint64_t)tk->user->max_queued : cfg->defaults.max_queued;
	TAILQ_INSERT_TAIL(&fleet_queue, tk, entry);
	tk->queued = 1;
	fleet_nqueued++;
	if (tk->user != NULL) {
		tk->user->fleet.queued++;
		if (tk->eu == NULL)
			tk->user->fleet.seen = loop_now();
	}
	/* An end user was seen when it was named (enduser_get). */
	if (tk->eu != NULL)
		tk->eu->share.queued++;
	fleet_run();
	if (!tk->queued)
		return FLEET_STARTED;
	/*
	 * A wait for the first look at the backends is the gateway's, not
	 * a share of the queue: the burst that meets a fresh gateway is not
	 * refused for it (max_connections bounds it, PROBE_TIMEOUT_MS ends
	 * it).
	 */
	if (fleet_first_look(tk))
		return FLEET_QUEUED;
	if (cfg->max_queue != 0 && fleet_nqueued > cfg->max_queue) {
		fleet_counts.full++;
		snprintf(why->message, sizeof why->message, "the queue is "
		    "full: %llu requests are waiting for a backend",
		    (unsigned long long)cfg->max_queue);
		return fleet_overflow(tk, why, 503);
	}
	if (tk->user != NULL && max_user != 0 &&
	    tk->user->fleet.queued > max_user) {
		fleet_counts.user_full++;
		snprintf(why->message, sizeof why->message, "you have %llu "
		    "requests waiting for a backend already (max_queued)",
		    (unsigned long long)max_user);
		return fleet_overflow(tk, why, 429);
	}
	return FLEET_QUEUED;
}

void
fleet_cancel(struct fleet_ticket *tk, int killed)
{
	if (!tk->queued)
		return;
	fleet_dequeue(tk);
	if (killed)
		fleet_counts.killed++;
	else
		fleet_counts.left++;
	metrics_queue_wait((double)(loop_now() - tk->since) / 1000.0);
}

/* The load the ticket was sent to is over, in or failed. */
static void
fleet_load_over(struct fleet_ticket *tk)
{
	struct backend	*b = tk->be;

	tk->cold = 0;
	if (b->loading != NULL && tk->model != NULL &&
	    strcmp(b->loading, tk->model) == 0) {
		free(b->loading);
		b->loading = NULL;
	}
}

void
fleet_loaded(struct fleet_ticket *tk)
{
	struct backend	*b = tk->be;

	if (!tk->cold || b == NULL)
		return;
	fleet_load_over(tk);
	backend_note_resident(b, tk->model);
	/*
	 * What did the load push out? Asked on the next turn of the loop:
	 * this may run inside libcurl's callback, where no transfer starts.
	 */
	b->reprobe = 1;
	fleet_kick();
}

void
fleet_done(struct fleet_ticket *tk, int ok, uint64_t load_ms)
{
	struct backend		*b = tk->be;
	struct fleet_model	*m;
	struct auth_share	*s;
	uint64_t		 now = loop_now();

	if (!tk->running)
		return;
	if (tk->cold && ok)
		fleet_loaded(tk);
	else if (tk->cold)
		fleet_load_over(tk);
	TAILQ_REMOVE(&fleet_running, tk, entry);
	tk->running = 0;
	b->slots--;
	if ((s = fleet_share(tk)) != NULL) {
		fleet_share_advance(tk, now);
		s->running--;
		s->served -= tk->charge *
		    exp(-fleet_decay_rate() * (double)(now - tk->started));
		if (s->served < 0)
			s->served = 0;
	}
	if (ok && tk->model != NULL) {
		if ((m = fleet_model_find(tk->model, 1)) != NULL)
			fleet_ewma(&m->serve_ms, (double)(now - tk->started));
		backend_note_resident(b, tk->model);
		/*
		 * A load it was sent to is a measure of loads there, however
		 * short; elsewhere only a long load_duration says one happened.
		 */
		if (tk->loads || load_ms >= FLEET_LOAD_SEEN_MS) {
			double	l = (double)b->load_ms;

			fleet_ewma(&l, (double)(load_ms > 0 ? load_ms : 1));
			b->load_ms = (uint64_t)l;
		}
	}
	backend_unref(b);
	tk->be = NULL;
	fleet_kick();
}

unsigned
fleet_queued(void)
{
	return fleet_nqueued;
}

void
fleet_rank(void)
{
	struct fleet_ticket	**v;

	v = fleet_sorted();
	for (size_t i = 0; v[i] != NULL; i++)
		v[i]->position = (unsigned)i + 1;
	free(v);
}

const struct fleet_stats *
fleet_stats(void)
{
	return &fleet_counts;
}

json_t *
fleet_backend_json(const struct backend *b)
{
	return json_pack("{s:I, s:I, s:s?, s:o}",
	    "slots_used", (json_int_t)b->slots,
	    "load_ms", (json_int_t)fleet_load_ms(b),
	    "loading", b->loading,
	    "learned", json_boolean(b->load_ms != 0));
}

void
fleet_shutdown(void)
{
	if (fleet_timer_ready)
		loop_timer_stop(&fleet_timer);
	for (size_t i = 0; i < FLEET_STATS_MAX; i++) {
		free(fleet_models[i].name);
		fleet_models[i].name = NULL;
	}
}
