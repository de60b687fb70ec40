/*
 * client.h: the admin-API client that ogctl and ogtop share.
 *
 * The API is HTTP/1.1 and JSON. How the bytes travel is a transport:
 * libcurl over the daemon's Unix socket here; SSH (running
 * "ogctl dial-stdio" on the remote host) plugs in behind the same
 * interface.
 */
#ifndef OG_CLIENT_H
#define OG_CLIENT_H

#include <jansson.h>

#define CLIENT_DEFAULT_SOCKET	"/run/ogate/ogproxyd.sock"
#define CLIENT_DEFAULT_TIMEOUT_MS 60000L

struct client;

struct client_transport {
	const char	*name;
	/*
	 * Send one request and read the whole response. Returns 0 with
	 * *status and *body set, or -1 with *err set if the daemon could
	 * not be reached.
	 */
	int		(*request)(struct client *, const char *method,
			    const char *path, const char *body, size_t len,
			    long *status, char **resp, size_t *resplen,
			    char **err);
	/*
	 * The same, handing the response body to write as it arrives, with
	 * no limit on the time it takes; ctype is the response's
	 * Content-Type (NULL if none). write returns -1 to stop.
	 */
	int		(*stream)(struct client *, const char *method,
			    const char *path, const char *body, size_t len,
			    long *status, int (*write)(const char *ctype,
			    const char *, size_t, void *), void *arg,
			    char **err);
	void		(*close)(struct client *);
};

struct client {
	const struct client_transport	*tp;
	char				*where;	/* for messages */
	long				 timeout_ms;	/* per call */
	void				*data;
};

/* The socket: the argument, else $OGATE_SOCKET, else the default. */
const char	*client_socket_path(const char *);
struct client	*client_open_unix(const char *path);
/*
 * Log in to ssh://[user@]host[:port] and run remote_ogctl (NULL:
 * $OGATE_REMOTE_OGCTL, else "ogctl" from the remote PATH) dial-stdio
 * there. Returns 0 with *out set, -1 with *err if the host cannot be
 * reached or refuses, -2 with *err if the URL is wrong. A passphrase
 * may be asked for on the terminal.
 */
int		 client_open_ssh(const char *url, const char *remote_ogctl,
		    struct client **out, char **err);
/*
 * Why the daemon's socket at path cannot be reached, errno being what
 * connect() said: one line, to be freed.
 */
char		*client_unix_unreachable(const char *path, int error);
void		 client_close(struct client *);
/*
 * How long one call may take, in milliseconds (60 s unless set): a
 * screen that redraws every second cannot wait a minute for an answer.
 */
void		 client_set_timeout(struct client *, long ms);

/*
 * Call the API. body may be NULL. Returns 0 and sets *status and *doc
 * (the parsed JSON reply, NULL if it was not JSON), or -1 with *err if
 * the daemon could not be reached.
 */
int		 client_call(struct client *, const char *method,
		    const char *path, json_t *body, long *status, json_t **doc,
		    char **err);

/*
 * Call an API that may answer with a stream of JSON lines
 * (application/x-ndjson), as a pull does: on_line gets each object as
 * it arrives (borrowed). Any other answer, such as an error, is parsed
 * whole into *doc. Returns as client_call does.
 */
int		 client_stream(struct client *, const char *method,
		    const char *path, json_t *body, long *status,
		    void (*on_line)(json_t *, void *), void *arg, json_t **doc,
		    char **err);

#endif
