/*
 * loop.h: the daemon's single epoll event loop.
 *
 * Every socket the daemon owns is a struct loop_io whose epoll data
 * points straight at it, so dispatch is one indirect call. Timers live
 * in a binary min-heap keyed on their deadline: arming, stopping and
 * finding the next deadline are O(log n) or O(1), whatever the number of
 * connections. Objects that may still be named by events in the batch
 * being dispatched are freed through loop_defer(), after the batch.
 */
#ifndef OG_LOOP_H
#define OG_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop_io;
typedef void	(*loop_io_cb)(struct loop_io *, uint32_t);

struct loop_io {
	int		 fd;
	uint32_t	 events;	/* interest currently registered */
	int		 ready;		/* has an event in the batch, unseen yet */
	loop_io_cb	 cb;
	void		*arg;
};

struct loop_timer;
typedef void	(*loop_timer_cb)(struct loop_timer *);

struct loop_timer {
	uint64_t	 when;		/* deadline, loop_now() milliseconds */
	size_t		 slot;		/* heap index + 1; 0 when not armed */
	loop_timer_cb	 cb;
	void		*arg;
};

void		 loop_init(void);
void		 loop_run(void);
void		 loop_break(void);
uint64_t	 loop_now(void);
void		 loop_update_time(void);

void		 loop_io_init(struct loop_io *, int, loop_io_cb, void *);
/* Set the epoll interest (EPOLLIN, EPOLLOUT...); 0 removes the fd. */
void		 loop_io_set(struct loop_io *, uint32_t);
void		 loop_io_del(struct loop_io *);

void		 loop_timer_init(struct loop_timer *, loop_timer_cb, void *);
void		 loop_timer_arm(struct loop_timer *, uint64_t ms);
void		 loop_timer_stop(struct loop_timer *);

static inline int
loop_timer_armed(const struct loop_timer *t)
{
	return t->slot != 0;
}

/* Run fn(arg) after the current batch of events has been dispatched. */
void		 loop_defer(void (*)(void *), void *);
/* Run what is deferred now (at shutdown, after the loop has ended). */
void		 loop_run_deferred(void);
/*
 * Called first by a thread that works for the loop (the store, GPU
 * telemetry, alert delivery): it runs below the loop's priority, so
 * that its bursts never keep the loop from a core.
 */
void		 loop_background_thread(void);
/* Run fn once before each wait, e.g. to flush coalesced writes. */
void		 loop_set_before_wait(void (*)(void));

#endif
