/*
 * upstream.h: libcurl's multi_socket interface driven by our event loop.
 *
 * This is curl's ephiperfifo pattern: libcurl tells us which sockets to
 * watch and when to wake it; the loop calls curl_multi_socket_action()
 * when one is ready. What is not on the request path goes through
 * here: probes, model lists, management sent to several backends.
 * Requests from clients go through origin.c, the gateway's own client.
 */
#ifndef OG_UPSTREAM_H
#define OG_UPSTREAM_H

#include <curl/curl.h>

#include "backend.h"

struct upstream_xfer {
	CURL	*easy;
	/* Called once, outside any libcurl callback, when the transfer ends. */
	void	(*on_done)(struct upstream_xfer *, CURLcode);
	void	*arg;
	int	 running;
};

void	upstream_init(void);
void	upstream_shutdown(void);
/* A handle for base followed by target, as every transfer to a backend. */
CURL	*upstream_easy_to(const char *base, const char *target);
/* Free a header list wiped first: it may hold a backend's key. */
void	 upstream_headers_free(struct curl_slist *);
/*
 * What a finished transfer says of its backend's health: unreachable
 * if it could not connect, failed on any other error or a 5xx.
 */
enum backend_outcome upstream_outcome(CURLcode, long status);
void	 upstream_easy_release(CURL *);
void	 upstream_start(struct upstream_xfer *);
/*
 * Stop a transfer now. Removing a handle mid-transfer makes libcurl
 * close its connection, which is what makes Ollama stop generating.
 * on_done is not called.
 */
void	 upstream_abort(struct upstream_xfer *);
void	 upstream_resume(struct upstream_xfer *);

#endif
