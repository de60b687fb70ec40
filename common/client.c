/*
 * client.c: the admin-API client that ogctl and ogtop share.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "buf.h"
#include "client.h"
#include "xmalloc.h"

struct client_unix {
	CURL		*easy;
	char		*path;
	char		 error[CURL_ERROR_SIZE];
};

static size_t
client_collect(char *p, size_t size, size_t n, void *arg)
{
	buf_add(arg, p, size * n);
	return size * n;
}

/*
 * One request over the socket, its response body handed to write;
 * timeout_ms 0 lets it take as long as it takes.
 */
static int
client_unix_perform(struct client *cl, const char *method, const char *path,
    const char *body, size_t len, long timeout_ms, long *status,
    size_t (*write)(char *, size_t, size_t, void *), void *arg, char **err)
{
	struct client_unix	*u = cl->data;
	struct curl_slist	*hdrs = NULL;
	char			*url;
	CURLcode		 rc;

	curl_easy_reset(u->easy);
	/* The host part is only for the Host header; the socket is fixed. */
	url = xasprintf("http://localhost%s", path);
	curl_easy_setopt(u->easy, CURLOPT_URL, url);
	curl_easy_setopt(u->easy, CURLOPT_UNIX_SOCKET_PATH, u->path);
	curl_easy_setopt(u->easy, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(u->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(u->easy, CURLOPT_ERRORBUFFER, u->error);
	curl_easy_setopt(u->easy, CURLOPT_WRITEFUNCTION, write);
	curl_easy_setopt(u->easy, CURLOPT_WRITEDATA, arg);
	curl_easy_setopt(u->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (body != NULL) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(u->easy, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(u->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)len);
		curl_easy_setopt(u->easy, CURLOPT_POSTFIELDS, body);
	} else if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(u->easy, CURLOPT_NOBODY, 1L);
	u->error[0] = '\0';
	rc = curl_easy_perform(u->easy);
	curl_slist_free_all(hdrs);
	free(url);
	if (rc != CURLE_OK) {
		struct stat	st;

		/* Say what is wrong with the socket, not with "localhost". */
		if (stat(u->path, &st) == -1 || !S_ISSOCK(st.st_mode) ||
		    rc == CURLE_COULDNT_CONNECT)
			*err = client_unix_unreachable(u->path, ECONNREFUSED);
		else
			*err = xasprintf("ogproxyd at %s: %s", u->path,
			    u->error[0] != '\0' ? u->error :
			    curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

static int
client_unix_request(struct client *cl, const char *method, const char *path,
    const char *body, size_t len, long *status, char **resp, size_t *resplen,
    char **err)
{
	struct buf	b;

	buf_init(&b);
	if (client_unix_perform(cl, method, path, body, len, cl->timeout_ms,
	    status, client_collect, &b, err) != 0) {
		buf_free(&b);
		return -1;
	}
	*resplen = buf_used(&b);
	buf_cstr(&b);
	*resp = b.data;
	return 0;
}

struct client_unix_writer {
	struct client	*cl;
	int		(*write)(const char *, const char *, size_t, void *);
	void		*arg;
};

static size_t
client_unix_write(char *p, size_t size, size_t n, void *arg)
{
	struct client_unix_writer	*w = arg;
	struct client_unix		*u = w->cl->data;
	char				*ct = NULL;

	curl_easy_getinfo(u->easy, CURLINFO_CONTENT_TYPE, &ct);
	return w->write(ct, p, size * n, w->arg) == 0 ? size * n : 0;
}

static int
client_unix_stream(struct client *cl, const char *method, const char *path,
    const char *body, size_t len, long *status,
    int (*write)(const char *, const char *, size_t, void *), void *arg,
    char **err)
{
	struct client_unix_writer	w = { cl, write, arg };

	return client_unix_perform(cl, method, path, body, len, 0, status,
	    client_unix_write, &w, err);
}

static void
client_unix_close(struct client *cl)
{
	struct client_unix	*u = cl->data;

	curl_easy_cleanup(u->easy);
	free(u->path);
	free(u);
}

static const struct client_transport client_unix = {
	.name = "unix",
	.request = client_unix_request,
	.stream = client_unix_stream,
	.close = client_unix_close,
};

char *
client_unix_unreachable(const char *path, int error)
{
	struct stat	st;

	if (stat(path, &st) == -1)
		return xasprintf("cannot reach ogproxyd at %s: %s (is it "
		    "running? -s or $OGATE_SOCKET name the socket)", path,
		    strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return xasprintf("cannot reach ogproxyd at %s: not a socket",
		    path);
	if (error == ECONNREFUSED || error == EACCES)
		return xasprintf("cannot reach ogproxyd at %s: %s", path,
		    access(path, W_OK) == 0 ? "connection refused" :
		    "permission denied (are you in the admin group?)");
	return xasprintf("cannot reach ogproxyd at %s: %s", path,
	    strerror(error));
}

const char *
client_socket_path(const char *arg)
{
	const char	*env;

	if (arg != NULL)
		return arg;
	if ((env = getenv("OGATE_SOCKET")) != NULL && *env != '\0')
		return env;
	return CLIENT_DEFAULT_SOCKET;
}

struct client *
client_open_unix(const char *path)
{
	struct client		*cl = xcalloc(1, sizeof *cl);
	struct client_unix	*u = xcalloc(1, sizeof *u);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((u->easy = curl_easy_init()) == NULL) {
		free(u);
		free(cl);
		return NULL;
	}
	u->path = xstrdup(path);
	cl->tp = &client_unix;
	cl->data = u;
	cl->where = xstrdup(path);
	cl->timeout_ms = CLIENT_DEFAULT_TIMEOUT_MS;
	return cl;
}

void
client_set_timeout(struct client *cl, long ms)
{
	cl->timeout_ms = ms;
}

void
client_close(struct client *cl)
{
	if (cl == NULL)
		return;
	cl->tp->close(cl);
	free(cl->where);
	free(cl);
	curl_global_cleanup();
}

int
client_call(struct client *cl, const char *method, const char *path,
    json_t *body, long *status, json_t **doc, char **err)
{
	char		*text = NULL, *resp = NULL;
	size_t		 len = 0, rlen = 0;
	int		 rc;

	*doc = NULL;
	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		len = text != NULL ? strlen(text) : 0;
	}
	rc = cl->tp->request(cl, method, path, text, len, status, &resp, &rlen,
	    err);
	if (text != NULL) {
		/* A request body may name a token or a key. */
		explicit_bzero(text, len);
		free(text);
	}
	if (rc != 0)
		return -1;
	*doc = json_loadb(resp, rlen, 0, NULL);
	if (resp != NULL) {
		explicit_bzero(resp, rlen);
		free(resp);
	}
	return 0;
}

/* A line longer than this is not a progress line. */
#define CLIENT_LINE_MAX	(1024 * 1024)

struct client_lines {
	struct buf	 line;		/* a partial line */
	struct buf	 whole;		/* an answer that is not a stream */
	int		 ndjson;	/* -1 until the head is known */
	void		(*on_line)(json_t *, void *);
	void		*arg;
	int		 too_long;
};

static void
client_line(struct client_lines *cs, const char *p, size_t len)
{
	json_t	*o;

	if (len == 0)
		return;
	if ((o = json_loadb(p, len, 0, NULL)) != NULL)
		cs->on_line(o, cs->arg);
	json_decref(o);
}

static int
client_lines_cb(const char *ct, const char *p, size_t len, void *arg)
{
	struct client_lines	*cs = arg;
	const char		*nl;
	size_t			 span;

	if (cs->ndjson < 0)
		cs->ndjson = ct != NULL &&
		    strncmp(ct, "application/x-ndjson", 20) == 0;
	if (!cs->ndjson) {
		if (buf_used(&cs->whole) + len > CLIENT_LINE_MAX) {
			cs->too_long = 1;
			return -1;
		}
		buf_add(&cs->whole, p, len);
		return 0;
	}
	while ((nl = memchr(p, '\n', len)) != NULL) {
		span = (size_t)(nl - p);
		buf_add(&cs->line, p, span);
		client_line(cs, buf_ptr(&cs->line), buf_used(&cs->line));
		buf_reset(&cs->line);
		p += span + 1;
		len -= span + 1;
	}
	if (buf_used(&cs->line) + len > CLIENT_LINE_MAX) {
		cs->too_long = 1;
		return -1;
	}
	buf_add(&cs->line, p, len);
	return 0;
}

int
client_stream(struct client *cl, const char *method, const char *path,
    json_t *body, long *status, void (*on_line)(json_t *, void *),
    void *arg, json_t **doc, char **err)
{
	struct client_lines	 cs;
	char			*text = NULL;
	size_t			 len = 0;
	int			 rc;

	*doc = NULL;
	if (cl->tp->stream == NULL) {
		*err = xasprintf("%s: the %s transport cannot stream", cl->where,
		    cl->tp->name);
		return -1;
	}
	memset(&cs, 0, sizeof cs);
	cs.ndjson = -1;
	cs.on_line = on_line;
	cs.arg = arg;
	buf_init(&cs.line);
	buf_init(&cs.whole);
	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		len = text != NULL ? strlen(text) : 0;
	}
	rc = cl->tp->stream(cl, method, path, text, len, status,
	    client_lines_cb, &cs, err);
	free(text);
	if (rc != 0 && cs.too_long) {
		free(*err);
		*err = xasprintf("ogproxyd at %s sent a line longer than %d "
		    "bytes", cl->where, CLIENT_LINE_MAX);
	}
	if (rc == 0) {
		/* The last line may lack its newline. */
		client_line(&cs, buf_ptr(&cs.line), buf_used(&cs.line));
		if (buf_used(&cs.whole) > 0)
			*doc = json_loadb(buf_ptr(&cs.whole), buf_used(&cs.whole),
			    0, NULL);
	}
	buf_free(&cs.line);
	buf_free(&cs.whole);
	return rc;
}
