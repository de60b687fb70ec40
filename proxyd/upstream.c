/*
 * upstream.c: libcurl's multi_socket interface driven by our event loop.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "upstream.h"
#include "xmalloc.h"

#define UPSTREAM_POOL_MAX	256

struct upstream_sock {
	struct loop_io	io;
};

static CURLM		*upstream_multi;
static struct loop_timer upstream_timer;
static CURL		**upstream_pool;
static size_t		 upstream_pool_len;
static int		 upstream_running;	/* libcurl reports it; unread */

static int	upstream_socket_cb(CURL *, curl_socket_t, int, void *, void *);
static int	upstream_timer_cb(CURLM *, long, void *);
static void	upstream_timer_fire(struct loop_timer *);
static void	upstream_sock_event(struct loop_io *, uint32_t);
static void	upstream_check_done(void);

void
upstream_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatal("curl_global_init failed");
	if ((upstream_multi = curl_multi_init()) == NULL)
		fatal("curl_multi_init failed");
	curl_multi_setopt(upstream_multi, CURLMOPT_SOCKETFUNCTION,
	    upstream_socket_cb);
	curl_multi_setopt(upstream_multi, CURLMOPT_TIMERFUNCTION,
	    upstream_timer_cb);
	/* Keep plenty of idle backend connections for reuse. */
	curl_multi_setopt(upstream_multi, CURLMOPT_MAXCONNECTS, 1024L);
	loop_timer_init(&upstream_timer, upstream_timer_fire, NULL);
	upstream_pool = xcalloc(UPSTREAM_POOL_MAX, sizeof *upstream_pool);
}

void
upstream_shutdown(void)
{
	for (size_t i = 0; i < upstream_pool_len; i++)
		curl_easy_cleanup(upstream_pool[i]);
	upstream_pool_len = 0;
	free(upstream_pool);
	upstream_pool = NULL;
	curl_multi_cleanup(upstream_multi);
	upstream_multi = NULL;
	loop_timer_stop(&upstream_timer);
	curl_global_cleanup();
}

/* A clean easy handle, from a small pool. */
static CURL *
upstream_easy(void)
{
	CURL	*e;

	if (upstream_pool_len > 0)
		return upstream_pool[--upstream_pool_len];
	if ((e = curl_easy_init()) == NULL)
		fatal("curl_easy_init failed");
	return e;
}

CURL *
upstream_easy_to(const char *base, const char *target)
{
	CURL	*e = upstream_easy();
	char	*url = xasprintf("%s%s", base, target);

	curl_easy_setopt(e, CURLOPT_URL, url);
	xfree_secret(url);	/* the URL may hold a password */
	/* The path was checked by the router; send it exactly as it came. */
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	/*
	 * Backends are reached directly: a proxy named in the environment
	 * (http_proxy and friends) must not see prompts, and looking the
	 * variables up costs time on every request.
	 */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	return e;
}

void
upstream_headers_free(struct curl_slist *hdrs)
{
	for (struct curl_slist *h = hdrs; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(hdrs);
}

void
upstream_easy_release(CURL *e)
{
	if (upstream_pool_len == UPSTREAM_POOL_MAX) {
		curl_easy_cleanup(e);
		return;
	}
	curl_easy_reset(e);
	upstream_pool[upstream_pool_len++] = e;
}

/* libcurl asks us to watch (or stop watching) one of its sockets. */
static int
upstream_socket_cb(CURL *e, curl_socket_t s, int what, void *userp,
    void *sockp)
{
	struct upstream_sock	*us = sockp;
	uint32_t		 events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (us != NULL) {
			loop_io_del(&us->io);
			/* Events for it may still be in the current batch. */
			us->io.fd = -1;
			loop_defer(free, us);
			curl_multi_assign(upstream_multi, s, NULL);
		}
		return 0;
	}
	if (us == NULL) {
		us = xcalloc(1, sizeof *us);
		loop_io_init(&us->io, s, upstream_sock_event, us);
		curl_multi_assign(upstream_multi, s, us);
	}
	if (what & CURL_POLL_IN)
		events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		events |= EPOLLOUT;
	loop_io_set(&us->io, events);
	return 0;
}

/*
 * libcurl wants to be woken after timeout_ms. Calling back into libcurl
 * from here is not allowed, so even "now" (0) goes through the timer.
 */
static int
upstream_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	if (timeout_ms < 0)
		loop_timer_stop(&upstream_timer);
	else
		loop_timer_arm(&upstream_timer, (uint64_t)timeout_ms);
	return 0;
}

static void
upstream_timer_fire(struct loop_timer *t)
{
	curl_multi_socket_action(upstream_multi, CURL_SOCKET_TIMEOUT, 0,
	    &upstream_running);
	upstream_check_done();
}

static void
upstream_sock_event(struct loop_io *io, uint32_t events)
{
	int	flags = 0;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & EPOLLERR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(upstream_multi, io->fd, flags,
	    &upstream_running);
	upstream_check_done();
}

static void
upstream_check_done(void)
{
	CURLMsg	*msg;
	int	 left;

	while ((msg = curl_multi_info_read(upstream_multi, &left)) != NULL) {
		struct upstream_xfer	*x;
		CURLcode		 rc;

		if (msg->msg != CURLMSG_DONE)
			continue;
		rc = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(upstream_multi, msg->easy_handle);
		x->running = 0;
		x->on_done(x, rc);
	}
}

void
upstream_start(struct upstream_xfer *x)
{
	CURLMcode	rc;

	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	if ((rc = curl_multi_add_handle(upstream_multi, x->easy)) != CURLM_OK)
		fatal("curl_multi_add_handle: %s", curl_multi_strerror(rc));
	x->running = 1;
}

void
upstream_abort(struct upstream_xfer *x)
{
	if (!x->running)
		return;
	curl_multi_remove_handle(upstream_multi, x->easy);
	x->running = 0;
}

void
upstream_resume(struct upstream_xfer *x)
{
	if (x->running)
		curl_easy_pause(x->easy, CURLPAUSE_CONT);
}

enum backend_outcome
upstream_outcome(CURLcode rc, long status)
{
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
		return BACKEND_UNREACHABLE;
	if (rc != CURLE_OK || status >= 500)
		return BACKEND_FAILED;
	return BACKEND_OK;
}
