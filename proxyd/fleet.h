/*
 * fleet.h: the fleet scheduler: which backend serves a request, and
 * when.
 *
 * A request that generates or embeds holds one of a backend's slots
 * ([backend] max_concurrent) while it runs. When none is free where its
 * model can run, it waits here, never at the backend: a hot Ollama
 * queues without limit and without fairness, so the gateway keeps the
 * queue itself. When a slot frees, the next request comes from the
 * highest priority class that has one waiting, and within the class
 * from the user who has had the least GPU time recently; the end users
 * of a trusted front end (enduser.h) each have a share of their own. A request goes
 * where its model is resident; it goes where the model must be loaded
 * only when no warm slot is expected to free sooner than the load would
 * take. See ogproxyd(8), SCHEDULING.
 */
#ifndef OG_FLEET_H
#define OG_FLEET_H

#include <stdint.h>
#include <sys/queue.h>

struct auth_user;
struct backend;
struct buf;
struct enduser;
struct json_t;

/* One request, as the scheduler sees it. */
struct fleet_ticket {
	struct auth_user	*user;		/* NULL: nobody's share */
	struct enduser		*eu;		/* its own share, or NULL */
	const char		*model;		/* normalised; NULL: any */
	unsigned		 slot:1;	/* holds a slot while it runs */
	unsigned		 queued:1;
	unsigned		 running:1;
	unsigned		 cold:1;	/* sent where it must load, not in */
	unsigned		 loads:1;	/* it was sent to load */
	unsigned		 native:1;	/* an /api route: Ollama only */
	struct backend		*not;		/* tried already, or NULL */
	struct backend		*only;		/* named by the client, or NULL */
	struct backend		*be;		/* where it runs */
	uint64_t		 seq;		/* arrival order */
	uint64_t		 since;		/* loop time it was submitted */
	uint64_t		 waited_ms;	/* in the queue, once dispatched */
	uint64_t		 started;	/* loop time it was dispatched */
	double			 charge;	/* provisional share, see fleet.c */
	unsigned		 position;	/* in the queue, by fleet_rank */
	/* It may go to be now: the owner starts the transfer. */
	void			(*go)(struct fleet_ticket *, struct backend *);
	/* It waited too long: the owner answers status with msg. */
	void			(*expire)(struct fleet_ticket *, int status,
				    const char *msg);
	TAILQ_ENTRY(fleet_ticket) entry;
};

/* Why a request cannot be scheduled: the owner answers this. */
struct fleet_refusal {
	int		status;		/* 404, 429, 503 */
	char		message[300];
	long		retry_after;	/* seconds, or 0 */
};

enum fleet_verdict {
	FLEET_STARTED,		/* go() has been called */
	FLEET_QUEUED,		/* go() or expire() will be called later */
	FLEET_REFUSED,		/* see the refusal */
};

/* Not-found wordings, as Ollama's handlers write them. */
enum fleet_notfound {
	NOTFOUND_QUOTED,	/* model 'NAME' not found */
	NOTFOUND_PULL,		/* model "NAME" not found, try pulling it first */
};

/*
 * Schedule a request for the model (shown to the client as asked, in
 * the wording given). The ticket must stay put until go(), expire() or
 * fleet_cancel().
 */
enum fleet_verdict fleet_submit(struct fleet_ticket *, const char *asked,
		    enum fleet_notfound, struct fleet_refusal *);
/* Is there a backend it may go to (other than tk->not)? */
int		fleet_elsewhere(const struct fleet_ticket *);
/*
 * The request left the queue without being served: its client went,
 * or an administrator killed it.
 */
void		fleet_cancel(struct fleet_ticket *, int killed);
/*
 * The request that ran is over: its slot frees. ok says it was served;
 * load_ms is the load the backend reported (0 if none).
 */
void		fleet_done(struct fleet_ticket *, int ok, uint64_t load_ms);
/* The backend has started answering a request sent where it loads. */
void		fleet_loaded(struct fleet_ticket *);
/* Something changed (config, a backend's state): look at the queue. */
void		fleet_kick(void);
/* Number the queued tickets' positions (1 first) for the live view. */
void		fleet_rank(void);
unsigned	fleet_queued(void);
/* What became of requests that queued, for /metrics. */
struct fleet_stats {
	uint64_t	timeouts;	/* waited queue_timeout */
	uint64_t	full;		/* refused: max_queue */
	uint64_t	user_full;	/* refused: the user's max_queued */
	uint64_t	left;		/* the client went away */
	uint64_t	killed;		/* an administrator cancelled it */
	uint64_t	cold;		/* sent where the model must load */
};
const struct fleet_stats *fleet_stats(void);
/* The backend's slots and what the scheduler learned of it. */
struct json_t	*fleet_backend_json(const struct backend *);
void		fleet_shutdown(void);

#endif
