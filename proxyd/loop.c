/*
 * loop.c: the daemon's single epoll event loop.
 */
#include <sys/resource.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "xmalloc.h"

#define LOOP_MAX_EVENTS	256

struct loop_deferred {
	void	(*fn)(void *);
	void	 *arg;
};

static int			 loop_epfd = -1;
static int			 loop_stop;
static uint64_t			 loop_now_ms;
static struct loop_timer	**loop_heap;
static size_t			 loop_heap_len, loop_heap_cap;
static struct loop_deferred	*loop_deferred;
static size_t			 loop_deferred_len, loop_deferred_cap;
static void			(*loop_before_wait)(void);

static void	loop_heap_swap(size_t, size_t);
static void	loop_heap_up(size_t);
static void	loop_heap_down(size_t);
static void	loop_run_timers(void);

void
loop_init(void)
{
	if ((loop_epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1: %s", strerror(errno));
	loop_update_time();
}

void
loop_update_time(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	loop_now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
loop_now(void)
{
	return loop_now_ms;
}

/*
 * Nice 10 weighs a thread at a tenth of the loop's when both want a
 * core. On a busy two-core host, a batch of usage rows written at the
 * loop's priority delayed one request in a hundred by milliseconds; at
 * nice 10 it waits instead, and still gets its share under any load.
 */
void
loop_background_thread(void)
{
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), 10) == -1)
		log_debug("setpriority: %s", strerror(errno));
}

void
loop_break(void)
{
	loop_stop = 1;
}

void
loop_set_before_wait(void (*fn)(void))
{
	loop_before_wait = fn;
}

void
loop_io_init(struct loop_io *io, int fd, loop_io_cb cb, void *arg)
{
	io->fd = fd;
	io->events = 0;
	io->cb = cb;
	io->arg = arg;
}

void
loop_io_set(struct loop_io *io, uint32_t events)
{
	struct epoll_event	ev;
	int			op;

	if (events == io->events)
		return;
	if (events == 0) {
		loop_io_del(io);
		return;
	}
	op = io->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.ptr = io;
	if (epoll_ctl(loop_epfd, op, io->fd, &ev) == -1)
		fatal("epoll_ctl fd %d: %s", io->fd, strerror(errno));
	io->events = events;
}

void
loop_io_del(struct loop_io *io)
{
	if (io->events == 0)
		return;
	/* The fd may already be closed by its owner; that is harmless. */
	epoll_ctl(loop_epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->events = 0;
}

void
loop_timer_init(struct loop_timer *t, loop_timer_cb cb, void *arg)
{
	t->when = 0;
	t->slot = 0;
	t->cb = cb;
	t->arg = arg;
}

static void
loop_heap_swap(size_t a, size_t b)
{
	struct loop_timer	*t = loop_heap[a];

	loop_heap[a] = loop_heap[b];
	loop_heap[b] = t;
	loop_heap[a]->slot = a + 1;
	loop_heap[b]->slot = b + 1;
}

static void
loop_heap_up(size_t i)
{
	while (i > 0) {
		size_t	parent = (i - 1) / 2;

		if (loop_heap[parent]->when <= loop_heap[i]->when)
			break;
		loop_heap_swap(parent, i);
		i = parent;
	}
}

static void
loop_heap_down(size_t i)
{
	for (;;) {
		size_t	l = 2 * i + 1, r = l + 1, min = i;

		if (l < loop_heap_len && loop_heap[l]->when < loop_heap[min]->when)
			min = l;
		if (r < loop_heap_len && loop_heap[r]->when < loop_heap[min]->when)
			min = r;
		if (min == i)
			break;
		loop_heap_swap(i, min);
		i = min;
	}
}

void
loop_timer_arm(struct loop_timer *t, uint64_t ms)
{
	uint64_t	old = t->when;

	t->when = loop_now_ms + ms;
	if (t->slot != 0) {
		if (t->when < old)
			loop_heap_up(t->slot - 1);
		else
			loop_heap_down(t->slot - 1);
		return;
	}
	if (loop_heap_len == loop_heap_cap) {
		loop_heap_cap = loop_heap_cap ? loop_heap_cap * 2 : 64;
		loop_heap = xreallocarray(loop_heap, loop_heap_cap,
		    sizeof *loop_heap);
	}
	loop_heap[loop_heap_len] = t;
	t->slot = ++loop_heap_len;
	loop_heap_up(loop_heap_len - 1);
}

void
loop_timer_stop(struct loop_timer *t)
{
	size_t	i;

	if (t->slot == 0)
		return;
	i = t->slot - 1;
	t->slot = 0;
	loop_heap_len--;
	if (i == loop_heap_len)
		return;
	loop_heap[i] = loop_heap[loop_heap_len];
	loop_heap[i]->slot = i + 1;
	loop_heap_up(i);
	loop_heap_down(loop_heap[i]->slot - 1);
}

static void
loop_run_timers(void)
{
	while (loop_heap_len > 0 && loop_heap[0]->when <= loop_now_ms) {
		struct loop_timer	*t = loop_heap[0];

		loop_timer_stop(t);
		t->cb(t);
	}
}

void
loop_defer(void (*fn)(void *), void *arg)
{
	if (loop_deferred_len == loop_deferred_cap) {
		loop_deferred_cap = loop_deferred_cap ? loop_deferred_cap * 2 : 32;
		loop_deferred = xreallocarray(loop_deferred, loop_deferred_cap,
		    sizeof *loop_deferred);
	}
	loop_deferred[loop_deferred_len].fn = fn;
	loop_deferred[loop_deferred_len].arg = arg;
	loop_deferred_len++;
}

void
loop_run_deferred(void)
{
	/* A deferred function may defer more; run until none are left. */
	for (size_t i = 0; i < loop_deferred_len; i++)
		loop_deferred[i].fn(loop_deferred[i].arg);
	loop_deferred_len = 0;
}

void
loop_run(void)
{
	struct epoll_event	events[LOOP_MAX_EVENTS];
	int			n, timeout;

	loop_stop = 0;
	while (!loop_stop) {
		if (loop_before_wait != NULL)
			loop_before_wait();
		loop_run_deferred();
		timeout = -1;
		if (loop_heap_len > 0) {
			uint64_t	when = loop_heap[0]->when;

			timeout = when <= loop_now_ms ? 0 :
			    (int)(when - loop_now_ms > 3600000 ? 3600000 :
			    when - loop_now_ms);
		}
		n = epoll_wait(loop_epfd, events, LOOP_MAX_EVENTS, timeout);
		if (n == -1 && errno != EINTR)
			fatal("epoll_wait: %s", strerror(errno));
		loop_update_time();
		/* Handlers may ask whether another socket has news waiting. */
		for (int i = 0; i < n; i++)
			((struct loop_io *)events[i].data.ptr)->ready = 1;
		for (int i = 0; i < n; i++) {
			struct loop_io	*io = events[i].data.ptr;

			io->ready = 0;
			/* An earlier handler in this batch may have closed it. */
			if (io->fd < 0 || io->events == 0)
				continue;
			io->cb(io, events[i].events);
		}
		loop_run_deferred();
		loop_run_timers();
	}
}
