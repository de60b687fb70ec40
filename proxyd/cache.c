/*
 * cache.c: the response cache.
 *
 * A hash table of entries by key, one list of them from the most to the
 * least recently used (eviction) and one in the order they were stored
 * (expiry: every entry lives ttl, so the oldest is always first).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <jansson.h>

#include "alias.h"
#include "auth.h"
#include "buf.h"
#include "cache.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "server.h"
#include "xmalloc.h"

/*
 * An entry (or a capture, or a request body looked up) larger than this
 * share of [cache] size is not kept: one answer cannot push out all the
 * others, and the work of reading a body for its key stays in proportion.
 */
#define CACHE_ENTRY_SHARE	8
#define CACHE_BUCKETS_MIN	64

struct cache_entry {
	unsigned char			 key[CACHE_KEY_LEN];
	char				*model;		/* normalised */
	char				*doc;		/* the answer, one document */
	size_t				 len;
	size_t				 size;		/* what it counts for */
	int64_t				 prompt_tokens;
	int64_t				 completion_tokens;
	uint64_t			 stored;	/* loop time */
	unsigned			 generates:1;
	struct cache_entry		*hnext;
	TAILQ_ENTRY(cache_entry)	 lru;
	TAILQ_ENTRY(cache_entry)	 age;
};

struct cache_fill {
	unsigned char		 key[CACHE_KEY_LEN];
	char			*model;
	const struct route	*route;
	struct buf		 data;
	unsigned		 overflow:1;
};

TAILQ_HEAD(cache_list, cache_entry);

static struct cache_entry	**cache_buckets;
static size_t			  cache_nbuckets;
static size_t			  cache_n;
static uint64_t			  cache_used;		/* bytes of entries */
static uint64_t			  cache_filling;	/* bytes of captures */
static struct cache_list	  cache_lru = TAILQ_HEAD_INITIALIZER(cache_lru);
static struct cache_list	  cache_age = TAILQ_HEAD_INITIALIZER(cache_age);
/* What the entries were made under; a change of scope empties the cache. */
static int			  cache_configured, cache_shared;

static struct {
	uint64_t	hits, misses, bypasses, stores, evictions, expired;
} cache_stats;

static uint64_t
cache_size(void)
{
	return server_cfg != NULL ? server_cfg->cache_size : 0;
}

static uint64_t
cache_entry_max(void)
{
	return cache_size() / CACHE_ENTRY_SHARE;
}

const char *
cache_status_name(enum cache_status st)
{
	switch (st) {
	case CACHE_BYPASS:
		return "BYPASS";
	case CACHE_MISS:
		return "MISS";
	case CACHE_HIT:
		return "HIT";
	default:
		return NULL;
	}
}

/*
 * The mode of a model: of the [model] sections that match it and say,
 * the one that keeps least holds (as the smallest bound holds for the
 * other keys); off when none says.
 */
static enum config_cache_mode
cache_mode(const struct config *cfg, const char *model)
{
	enum config_cache_mode	mode = CACHE_UNSET;

	for (size_t i = 0; i < cfg->nmodels && model != NULL; i++) {
		const struct config_model	*m = &cfg->models[i];

		if (m->cache_mode == CACHE_UNSET ||
		    !auth_model_match(m->pattern, model))
			continue;
		if (mode == CACHE_UNSET || m->cache_mode < mode)
			mode = m->cache_mode;
	}
	return mode == CACHE_UNSET ? CACHE_OFF : mode;
}

static size_t
cache_bucket(const unsigned char *key)
{
	uint64_t	h;

	memcpy(&h, key, sizeof h);
	return (size_t)h & (cache_nbuckets - 1);
}

static struct cache_entry *
cache_find(const unsigned char *key)
{
	struct cache_entry	*e;

	if (cache_nbuckets == 0)
		return NULL;
	for (e = cache_buckets[cache_bucket(key)]; e != NULL; e = e->hnext) {
		if (memcmp(e->key, key, CACHE_KEY_LEN) == 0)
			return e;
	}
	return NULL;
}

static void
cache_remove(struct cache_entry *e)
{
	struct cache_entry	**pp = &cache_buckets[cache_bucket(e->key)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	TAILQ_REMOVE(&cache_lru, e, lru);
	TAILQ_REMOVE(&cache_age, e, age);
	cache_n--;
	cache_used -= e->size;
	free(e->model);
	free(e->doc);
	free(e);
}

static void
cache_grow(void)
{
	struct cache_entry	**old = cache_buckets, *e, *next;
	size_t			  n = cache_nbuckets;

	cache_nbuckets = n == 0 ? CACHE_BUCKETS_MIN : n * 2;
	cache_buckets = xcalloc(cache_nbuckets, sizeof *cache_buckets);
	for (size_t i = 0; i < n; i++) {
		for (e = old[i]; e != NULL; e = next) {
			size_t	b = cache_bucket(e->key);

			next = e->hnext;
			e->hnext = cache_buckets[b];
			cache_buckets[b] = e;
		}
	}
	free(old);
}

/* Entries older than ttl go, oldest first. */
static void
cache_expire(void)
{
	struct cache_entry	*e;
	uint64_t		 now = loop_now();

	while ((e = TAILQ_FIRST(&cache_age)) != NULL && server_cfg != NULL &&
	    now - e->stored >= server_cfg->cache_ttl) {
		cache_stats.expired++;
		cache_remove(e);
	}
}

/* Make room for size more bytes: the least recently used go. */
static void
cache_evict(uint64_t size, uint64_t limit)
{
	struct cache_entry	*e;

	while (cache_used + size > limit &&
	    (e = TAILQ_LAST(&cache_lru, cache_list)) != NULL) {
		cache_stats.evictions++;
		cache_remove(e);
	}
}

void
cache_configure(const struct config *cfg)
{
	struct cache_entry	*e, *next;

	if (cache_configured && cfg->cache_shared != cache_shared &&
	    cache_n > 0) {
		/* A shared entry must not answer per user, nor the reverse. */
		log_info("cache: scope is now %s: %zu entries dropped",
		    cfg->cache_shared ? "shared" : "user", cache_n);
		cache_clear(NULL, NULL);
	}
	cache_configured = 1;
	cache_shared = cfg->cache_shared;
	/* What the models no longer let the cache keep goes now. */
	for (e = TAILQ_FIRST(&cache_lru); e != NULL; e = next) {
		enum config_cache_mode	mode = cache_mode(cfg, e->model);

		next = TAILQ_NEXT(e, lru);
		if (mode == CACHE_OFF ||
		    (e->generates && mode != CACHE_DETERMINISTIC))
			cache_remove(e);
	}
	/* A smaller size evicts down to it at once. */
	cache_evict(0, cfg->cache_size);
}

void
cache_free_all(void)
{
	cache_clear(NULL, NULL);
	free(cache_buckets);
	cache_buckets = NULL;
	cache_nbuckets = 0;
}

static int
cache_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return 0;
	}
	return 1;
}

/*
 * Is a generation reproducible? Its sampling temperature is 0 and it
 * sets a seed (in "options" on Ollama's routes, at the top on /v1), and
 * it asks for no log probabilities, which the cache does not keep.
 */
static int
cache_reproducible(json_t *doc, enum dialect dialect)
{
	json_t		*where = doc, *t, *s, *lp;
	const char	*k;

	if (dialect == DIALECT_OLLAMA &&
	    !json_is_object(where = json_object_get(doc, "options")))
		return 0;
	/*
	 * On /v1 these are members of a Go struct, which Go matches without
	 * regard to case (and folds a few non-ASCII letters to ASCII ones):
	 * another spelling could be the one the backend acts on.
	 */
	json_object_foreach(doc, k, t) {
		if (dialect == DIALECT_OLLAMA)
			break;
		if (strcmp(k, "temperature") != 0 && strcmp(k, "seed") != 0 &&
		    (strcasecmp(k, "temperature") == 0 ||
		    strcasecmp(k, "seed") == 0 || !cache_ascii(k)))
			return 0;
	}
	t = json_object_get(where, "temperature");
	s = json_object_get(where, "seed");
	if (!json_is_number(t) || json_number_value(t) != 0.0 ||
	    !json_is_integer(s))
		return 0;
	lp = json_object_get(doc, "logprobs");
	if (json_is_true(lp) || (json_is_integer(lp) &&
	    json_integer_value(lp) > 0))
		return 0;
	lp = json_object_get(doc, "top_logprobs");
	if (json_is_integer(lp) && json_integer_value(lp) > 0)
		return 0;
	return 1;
}

static int
cache_key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
cache_dump(struct buf *out, json_t *v)
{
	char	*s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (s == NULL)
		fatal("out of memory encoding JSON");
	buf_add_str(out, s);
	free(s);
}

/* How the members of an object are written into a key. */
enum cache_canon {
	CANON_ORDERED,		/* as they came */
	CANON_SORTED,		/* by name */
	CANON_TOP,		/* by name; "options" and "messages" sorted too */
};

/*
 * The key's form of a value. Ollama reads the request's own members,
 * "options" and each message into Go structs and maps, where order means
 * nothing, so those are sorted. Deeper down order may mean something:
 * Ollama keeps it in a format's schema, in tools and in tool calls'
 * arguments, and it can show in the answer. There two orders are two
 * entries, which costs a miss and never a wrong answer.
 */
static void
cache_canon(struct buf *out, json_t *v, enum cache_canon how)
{
	const char	**keys;
	const char	 *k;
	json_t		 *m;
	size_t		  n = 0, i;

	if (how == CANON_ORDERED || !json_is_object(v)) {
		cache_dump(out, v);
		return;
	}
	keys = xreallocarray(NULL, json_object_size(v) + 1, sizeof *keys);
	json_object_foreach(v, k, m)
		keys[n++] = k;
	qsort(keys, n, sizeof *keys, cache_key_cmp);
	buf_add_str(out, "{");
	for (i = 0; i < n; i++) {
		json_t	*name = json_string(keys[i]);

		m = json_object_get(v, keys[i]);
		if (i > 0)
			buf_add_str(out, ",");
		cache_dump(out, name);
		json_decref(name);
		buf_add_str(out, ":");
		if (how == CANON_TOP && strcmp(keys[i], "options") == 0)
			cache_canon(out, m, CANON_SORTED);
		else if (how == CANON_TOP && strcmp(keys[i], "messages") == 0 &&
		    json_is_array(m)) {
			json_t	*msg;
			size_t	 j;

			buf_add_str(out, "[");
			json_array_foreach(m, j, msg) {
				if (j > 0)
					buf_add_str(out, ",");
				cache_canon(out, msg, CANON_SORTED);
			}
			buf_add_str(out, "]");
		} else
			cache_canon(out, m, CANON_ORDERED);
	}
	buf_add_str(out, "}");
	free(keys);
}

/*
 * The key of a request. Besides the body, it holds the route (the
 * answer's format), the bound on output the gateway set (the body may
 * say none), and with scope = user who asked: the user, and the front
 * end's user they speak for, so that a hit never shows anyone what
 * another person asked.
 */
static void
cache_key(const struct cache_ask *a, json_t *doc,
    unsigned char key[CACHE_KEY_LEN])
{
	struct buf	m;

	buf_init(&m);
	buf_printf(&m, "ogate cache 1\n%s\n", a->route->endpoint);
	if (server_cfg->cache_shared)
		buf_add_str(&m, "shared\n");
	else
		buf_printf(&m, "user %lld %s\n", (long long)a->user_id,
		    a->end_user != NULL ? a->end_user : "");
	buf_printf(&m, "limit %lld\n", (long long)a->limit);
	/* Members that shape only the delivery, or the backend's memory. */
	json_object_del(doc, "stream");
	json_object_del(doc, "stream_options");
	json_object_del(doc, "keep_alive");
	cache_canon(&m, doc, CANON_TOP);
	auth_hash(buf_ptr(&m), buf_used(&m), key);
	buf_free(&m);
}

enum cache_status
cache_check(const struct route *r, const char *model, size_t len)
{
	enum config_cache_mode	mode;

	if (!(r->flags & ROUTE_CACHE))
		return CACHE_NONE;
	mode = cache_mode(server_cfg, model);
	if (cache_entry_max() == 0 || mode == CACHE_OFF ||
	    ((r->flags & ROUTE_GENERATES) && mode != CACHE_DETERMINISTIC) ||
	    len > cache_entry_max()) {
		cache_stats.bypasses++;
		return CACHE_BYPASS;
	}
	return CACHE_MISS;
}

enum cache_status
cache_lookup(const struct cache_ask *a, unsigned char key[CACHE_KEY_LEN],
    struct cache_entry **hit)
{
	const struct route	*r = a->route;
	struct cache_entry	*e;
	json_t			*doc;

	*hit = NULL;
	doc = json_loadb(a->body, a->len, 0, NULL);
	if (!json_is_object(doc) || ((r->flags & ROUTE_GENERATES) &&
	    !cache_reproducible(doc, r->dialect))) {
		json_decref(doc);
		cache_stats.bypasses++;
		return CACHE_BYPASS;
	}
	cache_key(a, doc, key);
	json_decref(doc);
	cache_expire();
	if ((e = cache_find(key)) == NULL) {
		cache_stats.misses++;
		return CACHE_MISS;
	}
	*hit = e;
	return CACHE_HIT;
}

void
cache_served(struct cache_entry *e)
{
	TAILQ_REMOVE(&cache_lru, e, lru);
	TAILQ_INSERT_HEAD(&cache_lru, e, lru);
	cache_stats.hits++;
}

void
cache_entry_tokens(const struct cache_entry *e, int64_t *prompt,
    int64_t *completion)
{
	*prompt = e->prompt_tokens;
	*completion = e->completion_tokens;
}

struct cache_fill *
cache_fill_new(const unsigned char key[CACHE_KEY_LEN], const struct route *r,
    const char *model)
{
	struct cache_fill	*f = xcalloc(1, sizeof *f);

	memcpy(f->key, key, CACHE_KEY_LEN);
	f->route = r;
	f->model = xstrdup(model != NULL ? model : "");
	buf_init(&f->data);
	return f;
}

static void
cache_fill_drop(struct cache_fill *f)
{
	cache_filling -= buf_used(&f->data);
	buf_free(&f->data);
}

/*
 * Each capture is bounded by the largest entry, and all of them
 * together by [cache] size: past either, the capture stops and the
 * answer is not kept.
 */
void
cache_fill_add(struct cache_fill *f, const char *p, size_t len)
{
	if (f->overflow)
		return;
	if (buf_used(&f->data) + len > cache_entry_max() ||
	    cache_filling + len > cache_size()) {
		f->overflow = 1;
		cache_fill_drop(f);
		return;
	}
	buf_add(&f->data, p, len);
	cache_filling += len;
}

void
cache_fill_free(struct cache_fill *f)
{
	if (f == NULL)
		return;
	cache_fill_drop(f);
	free(f->model);
	free(f);
}

/* Append a string member's text, if it is one. */
static void
cache_append(struct buf *b, json_t *v)
{
	if (json_is_string(v))
		buf_add(b, json_string_value(v), json_string_length(v));
}

/* Append the elements of an array member to *list. */
static void
cache_extend(json_t **list, json_t *v)
{
	if (!json_is_array(v))
		return;
	if (*list == NULL)
		*list = json_array();
	json_array_extend(*list, v);
}

static int
cache_is(const char *k, const char *const *names)
{
	for (; *names != NULL; names++) {
		if (strcmp(k, *names) == 0)
			return 1;
	}
	return 0;
}

/*
 * Ollama's stream as its one document: the text, thinking and tool
 * calls of every line gathered into the last line, which has done:true
 * and the statistics, as Ollama itself gathers them with stream:false.
 * A line with anything else (log probabilities, say) is not something
 * the cache can give back, and NULL says so.
 */
static json_t *
cache_merge_ndjson(const char *p, size_t len)
{
	static const char *const top[] = { "model", "created_at", "done",
	    "remote_model", "remote_host", "response", "thinking",
	    "tool_calls", "message", NULL };
	static const char *const msg_keys[] = { "role", "content", "thinking",
	    "tool_calls", NULL };
	struct buf	 text, think;
	json_t		*final = NULL, *tools = NULL, *out = NULL, *o, *v, *mv;
	const char	*k, *mk, *end = p + len, *role;
	int		 ok = 1, last;

	buf_init(&text);
	buf_init(&think);
	while (p < end && ok) {
		const char	*nl = memchr(p, '\n', (size_t)(end - p));
		size_t		 n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		if (strspn(p, " \t\r") >= n) {
			p += n + 1;
			continue;
		}
		/* json_is_object() is a macro: the load goes first. */
		o = final == NULL ? json_loadb(p, n, 0, NULL) : NULL;
		if (!json_is_object(o)) {
			json_decref(o);
			ok = 0;
			break;
		}
		p += n + 1;
		last = json_is_true(json_object_get(o, "done"));
		json_object_foreach(o, k, v) {
			if (!last && !cache_is(k, top)) {
				ok = 0;
				break;
			}
			if (strcmp(k, "response") == 0)
				cache_append(&text, v);
			else if (strcmp(k, "thinking") == 0)
				cache_append(&think, v);
			else if (strcmp(k, "tool_calls") == 0)
				cache_extend(&tools, v);
			else if (strcmp(k, "message") == 0 && json_is_object(v)) {
				json_object_foreach(v, mk, mv) {
					if (!cache_is(mk, msg_keys)) {
						ok = 0;
						break;
					}
					if (strcmp(mk, "content") == 0)
						cache_append(&text, mv);
					else if (strcmp(mk, "thinking") == 0)
						cache_append(&think, mv);
					else if (strcmp(mk, "tool_calls") == 0)
						cache_extend(&tools, mv);
				}
			}
		}
		if (last)
			final = o;
		else
			json_decref(o);
	}
	if (ok && final != NULL) {
		/* The last line's members, in its order, with the whole text. */
		out = json_object();
		json_object_foreach(final, k, v) {
			if (strcmp(k, "response") == 0) {
				json_object_set_new(out, k, json_stringn(
				    buf_ptr(&text), buf_used(&text)));
				if (buf_used(&think) > 0)
					json_object_set_new(out, "thinking",
					    json_stringn(buf_ptr(&think),
					    buf_used(&think)));
			} else if (strcmp(k, "message") == 0) {
				json_t	*m = json_object();

				role = json_string_value(json_object_get(v,
				    "role"));
				json_object_set_new(m, "role", json_string(
				    role != NULL ? role : "assistant"));
				json_object_set_new(m, "content", json_stringn(
				    buf_ptr(&text), buf_used(&text)));
				if (buf_used(&think) > 0)
					json_object_set_new(m, "thinking",
					    json_stringn(buf_ptr(&think),
					    buf_used(&think)));
				if (tools != NULL)
					json_object_set(m, "tool_calls", tools);
				json_object_set_new(out, k, m);
			} else if (strcmp(k, "thinking") != 0 &&
			    strcmp(k, "tool_calls") != 0)
				json_object_set(out, k, v);
		}
		if (tools != NULL && json_object_get(out, "message") == NULL)
			json_object_set(out, "tool_calls", tools);
		/* A string holding a NUL, or bad UTF-8, made no string. */
		if (json_object_get(out, "response") == NULL &&
		    json_object_get(out, "message") == NULL) {
			json_decref(out);
			out = NULL;
		}
	}
	json_decref(final);
	json_decref(tools);
	buf_free(&text);
	buf_free(&think);
	return out;
}

/* The members every chunk of a /v1 stream repeats, in their order. */
static json_t *
cache_v1_base(json_t *from, const char *object)
{
	json_t	*o = json_object(), *v;

	json_object_set(o, "id", json_object_get(from, "id"));
	json_object_set_new(o, "object", json_string(object));
	if ((v = json_object_get(from, "created")) != NULL)
		json_object_set(o, "created", v);
	if ((v = json_object_get(from, "model")) != NULL)
		json_object_set(o, "model", v);
	if ((v = json_object_get(from, "system_fingerprint")) != NULL)
		json_object_set(o, "system_fingerprint", v);
	return o;
}

/*
 * A /v1 stream as its one document. Deltas are gathered into one
 * message (chat) or one text (completions); the usage is the one the
 * row has, since a client that did not ask for it never saw it. Tool
 * calls, which OpenAI-style upstreams send in pieces, log probabilities
 * and more than one choice are not gathered: NULL.
 */
static json_t *
cache_merge_sse(const char *p, size_t len, int64_t prompt, int64_t completion)
{
	static const char *const delta_keys[] = { "role", "content",
	    "reasoning", NULL };
	struct buf	 text, reason;
	json_t		*first = NULL, *finish = NULL, *out = NULL, *o, *ch, *c;
	json_t		*d, *v;
	const char	*end = p + len, *k;
	int		 ok = 1, done = 0, chat = 0, completions = 0;

	buf_init(&text);
	buf_init(&reason);
	while (p < end && ok) {
		const char	*nl = memchr(p, '\n', (size_t)(end - p));
		size_t		 n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		const char	*line = p;

		p += n + 1;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n == 0 || line[0] == ':')
			continue;
		if (n < 5 || memcmp(line, "data:", 5) != 0 || done) {
			ok = 0;
			break;
		}
		line += 5;
		n -= 5;
		if (n > 0 && line[0] == ' ') {
			line++;
			n--;
		}
		if (n == 6 && memcmp(line, "[DONE]", 6) == 0) {
			done = 1;
			continue;
		}
		o = json_loadb(line, n, 0, NULL);
		if (!json_is_object(o)) {
			json_decref(o);
			ok = 0;
			break;
		}
		if (first == NULL)
			first = json_incref(o);
		ch = json_object_get(o, "choices");
		if (!json_is_array(ch) || json_array_size(ch) > 1 ||
		    json_object_get(o, "error") != NULL)
			ok = 0;
		else if (json_array_size(ch) == 1) {
			c = json_array_get(ch, 0);
			v = json_object_get(c, "index");
			if (!json_is_object(c) || (v != NULL &&
			    json_integer_value(v) != 0))
				ok = 0;
			v = json_object_get(c, "logprobs");
			if (v != NULL && !json_is_null(v))
				ok = 0;
			if (json_is_string(v = json_object_get(c,
			    "finish_reason"))) {
				json_decref(finish);
				finish = json_incref(v);
			}
			if (json_is_object(d = json_object_get(c, "delta"))) {
				chat = 1;
				json_object_foreach(d, k, v) {
					if (!cache_is(k, delta_keys) &&
					    !json_is_null(v))
						ok = 0;
					else if (strcmp(k, "content") == 0)
						cache_append(&text, v);
					else if (strcmp(k, "reasoning") == 0)
						cache_append(&reason, v);
				}
			} else if (json_is_string(v = json_object_get(c,
			    "text"))) {
				completions = 1;
				cache_append(&text, v);
			}
		}
		json_decref(o);
	}
	if (ok && done && first != NULL && finish != NULL &&
	    chat != completions) {
		json_t	*choice = json_object(), *usage;

		out = cache_v1_base(first, chat ? "chat.completion" :
		    "text_completion");
		if (chat) {
			json_t	*m = json_object();

			json_object_set_new(choice, "index", json_integer(0));
			json_object_set_new(m, "role", json_string("assistant"));
			json_object_set_new(m, "content", json_stringn(
			    buf_ptr(&text), buf_used(&text)));
			if (buf_used(&reason) > 0)
				json_object_set_new(m, "reasoning", json_stringn(
				    buf_ptr(&reason), buf_used(&reason)));
			json_object_set_new(choice, "message", m);
		} else {
			json_object_set_new(choice, "text", json_stringn(
			    buf_ptr(&text), buf_used(&text)));
			json_object_set_new(choice, "index", json_integer(0));
		}
		json_object_set(choice, "finish_reason", finish);
		json_object_set_new(out, "choices", json_pack("[o]", choice));
		usage = json_pack("{s:I, s:I, s:I}", "prompt_tokens",
		    (json_int_t)prompt, "completion_tokens",
		    (json_int_t)completion, "total_tokens",
		    (json_int_t)(prompt + completion));
		json_object_set_new(out, "usage", usage);
	}
	json_decref(first);
	json_decref(finish);
	buf_free(&text);
	buf_free(&reason);
	return out;
}

/*
 * Is a document an answer the cache may give again? No error; for a
 * generation, a finished one that is not a load or unload (which must
 * reach a backend to mean anything), with one choice on /v1 and no log
 * probabilities.
 */
static int
cache_doc_ok(json_t *doc, const struct route *r)
{
	json_t		*v, *c;
	const char	*reason;

	if (!json_is_object(doc) || json_object_get(doc, "error") != NULL)
		return 0;
	if (!(r->flags & ROUTE_GENERATES))
		return 1;
	if (r->dialect == DIALECT_OLLAMA) {
		reason = json_string_value(json_object_get(doc, "done_reason"));
		if (!json_is_true(json_object_get(doc, "done")) ||
		    (reason != NULL && (strcmp(reason, "load") == 0 ||
		    strcmp(reason, "unload") == 0)) ||
		    json_object_get(doc, "logprobs") != NULL)
			return 0;
		return json_is_string(json_object_get(doc, "response")) ||
		    json_is_object(json_object_get(doc, "message"));
	}
	v = json_object_get(doc, "choices");
	if (!json_is_array(v) || json_array_size(v) != 1 ||
	    !json_is_object(c = json_array_get(v, 0)))
		return 0;
	v = json_object_get(c, "logprobs");
	if (v != NULL && !json_is_null(v))
		return 0;
	return json_is_object(json_object_get(c, "message")) ||
	    json_is_string(json_object_get(c, "text"));
}

void
cache_fill_commit(struct cache_fill *f, enum cache_format fmt, int64_t prompt,
    int64_t completion)
{
	const struct route	*r = f->route;
	struct cache_entry	*e, *old;
	json_t			*doc = NULL;
	char			*text = NULL;
	size_t			 len = 0, size;

	if (f->overflow || buf_used(&f->data) == 0 || cache_entry_max() == 0)
		return;
	if (fmt == CACHE_JSON) {
		/* Kept as it came, but for the space after it. */
		len = buf_used(&f->data);
		while (len > 0 && strchr(" \t\r\n", buf_ptr(&f->data)[len - 1]))
			len--;
		doc = json_loadb(buf_ptr(&f->data), len, 0, NULL);
		if (cache_doc_ok(doc, r))
			text = xstrndup(buf_ptr(&f->data), len);
	} else if (r->flags & ROUTE_GENERATES) {
		if (fmt == CACHE_NDJSON && r->dialect == DIALECT_OLLAMA)
			doc = cache_merge_ndjson(buf_ptr(&f->data),
			    buf_used(&f->data));
		else if (fmt == CACHE_SSE && r->dialect == DIALECT_OPENAI)
			doc = cache_merge_sse(buf_ptr(&f->data),
			    buf_used(&f->data), prompt, completion);
		if (cache_doc_ok(doc, r) && (text = json_dumps(doc,
		    JSON_COMPACT)) != NULL)
			len = strlen(text);
	}
	json_decref(doc);
	cache_fill_drop(f);
	if (text == NULL)
		return;
	size = sizeof *e + len + strlen(f->model) + 1;
	if (size > cache_entry_max()) {
		free(text);
		return;
	}
	cache_expire();
	if ((old = cache_find(f->key)) != NULL)
		cache_remove(old);
	cache_evict(size, cache_size());
	e = xcalloc(1, sizeof *e);
	memcpy(e->key, f->key, CACHE_KEY_LEN);
	e->model = xstrdup(f->model);
	e->doc = text;
	e->len = len;
	e->size = size;
	e->prompt_tokens = prompt;
	e->completion_tokens = completion;
	e->stored = loop_now();
	e->generates = (r->flags & ROUTE_GENERATES) != 0;
	if (cache_n >= cache_nbuckets)
		cache_grow();
	e->hnext = cache_buckets[cache_bucket(e->key)];
	cache_buckets[cache_bucket(e->key)] = e;
	TAILQ_INSERT_HEAD(&cache_lru, e, lru);
	TAILQ_INSERT_TAIL(&cache_age, e, age);
	cache_n++;
	cache_used += size;
	cache_stats.stores++;
}

static void
cache_line(struct buf *out, json_t *o, int sse)
{
	if (sse)
		buf_add_str(out, "data: ");
	cache_dump(out, o);
	buf_add_str(out, sse ? "\n\n" : "\n");
	json_decref(o);
}

/*
 * Ollama's stream of a document: a line with all of the output, then
 * the document itself with its text emptied, done:true and the
 * statistics, as Ollama's own last line.
 */
static void
cache_render_ndjson(json_t *doc, struct buf *out)
{
	json_t	*first = json_object(), *last = json_copy(doc), *v, *msg;
	int	 output = 0;

	if ((v = json_object_get(doc, "model")) != NULL)
		json_object_set(first, "model", v);
	if ((v = json_object_get(doc, "created_at")) != NULL)
		json_object_set(first, "created_at", v);
	if (json_is_object(msg = json_object_get(doc, "message"))) {
		json_object_set(first, "message", msg);
		output = json_string_length(json_object_get(msg, "content")) > 0 ||
		    json_object_get(msg, "thinking") != NULL ||
		    json_object_get(msg, "tool_calls") != NULL;
		json_object_set_new(last, "message", json_pack("{s:O?, s:s}",
		    "role", json_object_get(msg, "role"), "content", ""));
	} else {
		v = json_object_get(doc, "response");
		json_object_set(first, "response", v);
		output = json_string_length(v) > 0;
		if ((v = json_object_get(doc, "thinking")) != NULL) {
			json_object_set(first, "thinking", v);
			output = 1;
		}
		if ((v = json_object_get(doc, "tool_calls")) != NULL) {
			json_object_set(first, "tool_calls", v);
			output = 1;
		}
		json_object_set_new(last, "response", json_string(""));
		json_object_del(last, "thinking");
		json_object_del(last, "tool_calls");
	}
	json_object_set_new(first, "done", json_false());
	if (output)
		cache_line(out, first, 0);
	else
		json_decref(first);
	cache_line(out, last, 0);
}

/*
 * The /v1 stream of a document: a chunk with all of the output, the
 * finish chunk, the usage chunk if the client asked for it, [DONE].
 */
static void
cache_render_sse(json_t *doc, int include_usage, struct buf *out)
{
	json_t	*c = json_array_get(json_object_get(doc, "choices"), 0);
	json_t	*msg = json_object_get(c, "message"), *o;
	json_t	*finish = json_object_get(c, "finish_reason");
	int	 chat = json_is_object(msg);
	const char *object = chat ? "chat.completion.chunk" : "text_completion";

	o = cache_v1_base(doc, object);
	if (chat)
		json_object_set_new(o, "choices", json_pack("[{s:i, s:O, s:n}]",
		    "index", 0, "delta", msg, "finish_reason"));
	else
		json_object_set_new(o, "choices", json_pack("[{s:O, s:i, s:n}]",
		    "text", json_object_get(c, "text"), "index", 0,
		    "finish_reason"));
	cache_line(out, o, 1);
	o = cache_v1_base(doc, object);
	if (chat)
		json_object_set_new(o, "choices", json_pack("[{s:i, s:{}, s:O?}]",
		    "index", 0, "delta", "finish_reason", finish));
	else
		json_object_set_new(o, "choices", json_pack("[{s:s, s:i, s:O?}]",
		    "text", "", "index", 0, "finish_reason", finish));
	cache_line(out, o, 1);
	if (include_usage && json_object_get(doc, "usage") != NULL) {
		o = cache_v1_base(doc, object);
		json_object_set_new(o, "choices", json_array());
		json_object_set(o, "usage", json_object_get(doc, "usage"));
		cache_line(out, o, 1);
	}
	buf_add_str(out, "data: [DONE]\n\n");
}

void
cache_render(const struct cache_entry *e, enum dialect dialect, int stream,
    int include_usage, struct buf *out, const char **ctype)
{
	json_t	*doc;

	if (stream && e->generates &&
	    (doc = json_loadb(e->doc, e->len, 0, NULL)) != NULL) {
		if (dialect == DIALECT_OLLAMA) {
			*ctype = "application/x-ndjson";
			cache_render_ndjson(doc, out);
		} else {
			*ctype = "text/event-stream";
			cache_render_sse(doc, include_usage, out);
		}
		json_decref(doc);
		return;
	}
	/* Ollama's OpenAI writer ends a body with a newline; its own does not. */
	buf_add(out, e->doc, e->len);
	if (dialect == DIALECT_OLLAMA)
		*ctype = "application/json; charset=utf-8";
	else {
		*ctype = "application/json";
		buf_add_str(out, "\n");
	}
}

size_t
cache_clear(const char *model, uint64_t *bytes)
{
	const struct config_alias	*alias;
	struct cache_entry		*e, *next;
	char				*name = NULL;
	size_t				 n = 0;
	uint64_t			 before = cache_used;

	if (model != NULL) {
		alias = alias_find(model);
		name = auth_model_normalise(alias != NULL ? alias->model : model);
	}
	for (e = TAILQ_FIRST(&cache_lru); e != NULL; e = next) {
		next = TAILQ_NEXT(e, lru);
		if (name != NULL && strcmp(e->model, name) != 0)
			continue;
		cache_remove(e);
		n++;
	}
	free(name);
	if (bytes != NULL)
		*bytes = before - cache_used;
	return n;
}

json_t *
cache_stats_json(void)
{
	struct cache_entry	*e;
	json_t			*models = json_object(), *list = json_array();
	json_t			*m;
	const char		*k;

	cache_expire();
	TAILQ_FOREACH(e, &cache_lru, lru) {
		if ((m = json_object_get(models, e->model)) == NULL) {
			m = json_pack("{s:s, s:I, s:I}", "model", e->model,
			    "entries", (json_int_t)0, "bytes", (json_int_t)0);
			json_object_set_new(models, e->model, m);
		}
		json_object_set_new(m, "entries", json_integer(json_integer_value(
		    json_object_get(m, "entries")) + 1));
		json_object_set_new(m, "bytes", json_integer(json_integer_value(
		    json_object_get(m, "bytes")) + (json_int_t)e->size));
	}
	json_object_foreach(models, k, m)
		json_array_append(list, m);
	json_decref(models);
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:o}",
	    "size", (json_int_t)cache_size(),
	    "bytes", (json_int_t)cache_used,
	    "entries", (json_int_t)cache_n,
	    "max_entry_bytes", (json_int_t)cache_entry_max(),
	    "ttl_ms", (json_int_t)(server_cfg != NULL ? server_cfg->cache_ttl : 0),
	    "scope", server_cfg != NULL && server_cfg->cache_shared ? "shared" :
	    "user",
	    "hits", (json_int_t)cache_stats.hits,
	    "misses", (json_int_t)cache_stats.misses,
	    "bypasses", (json_int_t)cache_stats.bypasses,
	    "stores", (json_int_t)cache_stats.stores,
	    "evictions", (json_int_t)cache_stats.evictions,
	    "expired", (json_int_t)cache_stats.expired,
	    "models", list);
}

void
cache_metrics(struct buf *b)
{
	static const struct {
		const char	*name, *type, *help;
	} m[] = {
		{ "ogate_cache_hits_total", "counter",
		    "Requests answered from the response cache." },
		{ "ogate_cache_misses_total", "counter",
		    "Cacheable requests the response cache did not hold." },
		{ "ogate_cache_bypasses_total", "counter",
		    "Requests on cacheable routes that the cache could not "
		    "answer (cache off, or not reproducible)." },
		{ "ogate_cache_evictions_total", "counter",
		    "Entries evicted to make room." },
		{ "ogate_cache_entries", "gauge",
		    "Answers held by the response cache." },
		{ "ogate_cache_bytes", "gauge",
		    "Memory held by the response cache's entries." },
	};
	uint64_t	v[6];

	cache_expire();
	v[0] = cache_stats.hits;
	v[1] = cache_stats.misses;
	v[2] = cache_stats.bypasses;
	v[3] = cache_stats.evictions;
	v[4] = cache_n;
	v[5] = cache_used;
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", m[i].name,
		    m[i].help, m[i].name, m[i].type, m[i].name,
		    (unsigned long long)v[i]);
}
