/*
 * proxy.h: forwarding one request to a backend and streaming the answer.
 *
 * The response is passed through as libcurl delivers it: each piece is
 * queued for the client at once (re-framed as a chunk when the client
 * speaks HTTP/1.1 and the backend sent no length), and nothing is ever
 * held back to be sent whole. When the client cannot keep up, the
 * transfer is paused; when the client goes away, it is aborted, which
 * closes the backend connection and so stops Ollama generating.
 */
#ifndef OG_PROXY_H
#define OG_PROXY_H

#include <stdint.h>

struct backend;
struct conn;
struct curl_slist;
struct proxy_req;

/* Forward the request the connection has parsed (c->req, c->body). */
void	proxy_start(struct conn *);
/* The client has gone: cancel the upstream transfer and free. */
void	proxy_client_gone(struct proxy_req *);
/* The client's output buffer has drained (below the low mark if low). */
void	proxy_client_drained(struct proxy_req *, int low);
/* More of an upload's body arrived from the client. */
void	proxy_upload_more(struct proxy_req *);
unsigned proxy_active(void);
/*
 * The live view: every request being forwarded, as JSON objects (id,
 * user, model, backend, endpoint, client, state, elapsed_ms, ttft_ms,
 * tokens_out, tokens_per_s), oldest first.
 */
struct json_t;
struct json_t	*proxy_list_json(void);
/* Cancel a request as an administrator; -1 if there is no such id. */
int	 proxy_cancel(uint64_t);

/*
 * The headers of a request to backend be: the client's, less what is
 * hop-by-hop or its credentials, with the forwarding headers the gateway
 * vouches for and the backend's key: free it with upstream_headers_free.
 */
struct curl_slist	*proxy_headers(const struct conn *,
			    const struct backend *);

#endif
