/*
 * config.c: ogproxyd.conf, the daemon's configuration.
 *
 * A table maps each (section, key) to a field and a value type, so that
 * adding a key is one line and every key gets the same checks.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "parse.h"
#include "xmalloc.h"

#define CONFIG_MAX_FILE		(1024 * 1024)

enum config_section {
	SECTION_NONE,
	SECTION_SERVER,
	SECTION_DEFAULTS,
	SECTION_BACKEND,
	SECTION_MODEL,
	SECTION_ALIAS,
	SECTION_ALERT,
	SECTION_CACHE,
};

enum config_type {
	TYPE_STRING,
	TYPE_SECRET,		/* a string never echoed in messages */
	TYPE_URL,		/* a backend URL: checked, never echoed */
	TYPE_LIST,		/* repeatable string */
	TYPE_DURATION,
	TYPE_SIZE,
	TYPE_UINT,
	TYPE_ADDR,		/* ADDR:PORT, repeatable */
	TYPE_ADDR_ONCE,		/* ADDR:PORT, a single one */
	TYPE_NET,		/* ADDR or ADDR/BITS, repeatable */
};

struct config_key {
	enum config_section	 section;
	const char		*name;
	enum config_type	 type;
	size_t			 offset;	/* into the section's struct */
	size_t			 count_offset;	/* for lists: the count field */
	uint64_t		 max;		/* for numbers */
};

#define SRV(f)	offsetof(struct config, f)
#define DEF(f)	(offsetof(struct config, defaults) + offsetof(struct config_limits, f))
#define BE(f)	offsetof(struct config_backend, f)
#define MOD(f)	offsetof(struct config_model, f)
#define ALI(f)	offsetof(struct config_alias, f)
#define AL(f)	offsetof(struct config_alert, f)

static const struct config_key config_keys[] = {
	{ SECTION_SERVER, "listen", TYPE_ADDR, SRV(listen), SRV(nlisten), 0 },
	{ SECTION_SERVER, "tls_listen", TYPE_ADDR, SRV(tls_listen),
	    SRV(ntls_listen), 0 },
	{ SECTION_SERVER, "tls_cert", TYPE_STRING, SRV(tls_cert), 0, 0 },
	{ SECTION_SERVER, "tls_key", TYPE_STRING, SRV(tls_key), 0, 0 },
	{ SECTION_SERVER, "admin_socket", TYPE_STRING, SRV(admin_socket), 0, 0 },
	{ SECTION_SERVER, "admin_group", TYPE_STRING, SRV(admin_group), 0, 0 },
	{ SECTION_SERVER, "state_dir", TYPE_STRING, SRV(state_dir), 0, 0 },
	{ SECTION_SERVER, "metrics_listen", TYPE_ADDR_ONCE, SRV(metrics_listen),
	    0, 0 },
	{ SECTION_SERVER, "header_timeout", TYPE_DURATION, SRV(header_timeout),
	    0, 0 },
	{ SECTION_SERVER, "idle_timeout", TYPE_DURATION, SRV(idle_timeout), 0, 0 },
	{ SECTION_SERVER, "upstream_timeout", TYPE_DURATION,
	    SRV(upstream_timeout), 0, 0 },
	{ SECTION_SERVER, "queue_timeout", TYPE_DURATION, SRV(queue_timeout),
	    0, 0 },
	{ SECTION_SERVER, "max_header_size", TYPE_SIZE, SRV(max_header_size),
	    0, 1024 * 1024 },
	{ SECTION_SERVER, "max_body_size", TYPE_SIZE, SRV(max_body_size), 0,
	    UINT64_C(1) << 40 },
	{ SECTION_SERVER, "max_connections", TYPE_UINT, SRV(max_connections),
	    0, 1000000 },
	{ SECTION_SERVER, "max_connections_per_ip", TYPE_UINT,
	    SRV(max_connections_per_ip), 0, 1000000 },
	{ SECTION_SERVER, "per_ip_exempt", TYPE_NET, SRV(per_ip_exempt),
	    SRV(nper_ip_exempt), 0 },
	{ SECTION_SERVER, "max_body_memory", TYPE_SIZE, SRV(max_body_memory), 0,
	    UINT64_C(1) << 40 },
	{ SECTION_SERVER, "user", TYPE_STRING, SRV(user), 0, 0 },
	{ SECTION_SERVER, "usage_retention", TYPE_DURATION, SRV(usage_retention),
	    0, 0 },
	{ SECTION_SERVER, "max_usage_backlog", TYPE_UINT,
	    SRV(max_usage_backlog), 0, 10000000 },
	{ SECTION_SERVER, "max_queue", TYPE_UINT, SRV(max_queue), 0, 1000000 },
	{ SECTION_SERVER, "end_user_header", TYPE_STRING, SRV(end_user_header),
	    0, 0 },
	/* Limits are compared as signed 64-bit numbers. */
	{ SECTION_DEFAULTS, "tokens_per_day", TYPE_UINT, DEF(tokens_per_day),
	    0, INT64_MAX },
	{ SECTION_DEFAULTS, "tokens_per_month", TYPE_UINT, DEF(tokens_per_month),
	    0, INT64_MAX },
	{ SECTION_DEFAULTS, "requests_per_minute", TYPE_UINT,
	    DEF(requests_per_minute), 0, INT64_MAX },
	{ SECTION_DEFAULTS, "max_concurrent", TYPE_UINT, DEF(max_concurrent),
	    0, 1000000 },
	{ SECTION_DEFAULTS, "priority", TYPE_UINT, DEF(priority), 0, 1000 },
	{ SECTION_DEFAULTS, "max_queued", TYPE_UINT, DEF(max_queued), 0,
	    1000000 },
	{ SECTION_BACKEND, "url", TYPE_URL, BE(url), 0, 0 },
	{ SECTION_BACKEND, "max_concurrent", TYPE_UINT, BE(max_concurrent), 0,
	    1000000 },
	{ SECTION_BACKEND, "weight", TYPE_UINT, BE(weight), 0, 1000 },
	{ SECTION_BACKEND, "api_key", TYPE_SECRET, BE(api_key), 0, 0 },
	{ SECTION_BACKEND, "type", TYPE_STRING, BE(type), 0, 0 },
	{ SECTION_BACKEND, "models", TYPE_STRING, BE(models), 0, 0 },
	{ SECTION_BACKEND, "ca_file", TYPE_STRING, BE(ca_file), 0, 0 },
	{ SECTION_ALIAS, "model", TYPE_STRING, ALI(model), 0, 0 },
	{ SECTION_MODEL, "max_num_ctx", TYPE_UINT, MOD(max_num_ctx), 0,
	    UINT64_C(1) << 32 },
	{ SECTION_MODEL, "max_num_predict", TYPE_UINT, MOD(max_num_predict), 0,
	    UINT64_C(1) << 32 },
	{ SECTION_MODEL, "num_ctx", TYPE_UINT, MOD(num_ctx), 0,
	    UINT64_C(1) << 32 },
	{ SECTION_MODEL, "max_keep_alive", TYPE_DURATION, MOD(max_keep_alive),
	    0, 0 },
	{ SECTION_MODEL, "cache", TYPE_STRING, MOD(cache), 0, 0 },
	{ SECTION_CACHE, "size", TYPE_SIZE, SRV(cache_size), 0,
	    UINT64_C(1) << 40 },
	{ SECTION_CACHE, "ttl", TYPE_DURATION, SRV(cache_ttl), 0, 0 },
	{ SECTION_CACHE, "scope", TYPE_STRING, SRV(cache_scope), 0, 0 },
	{ SECTION_ALERT, "on", TYPE_STRING, AL(on), 0, 0 },
	{ SECTION_ALERT, "at", TYPE_STRING, AL(at_text), 0, 0 },
	{ SECTION_ALERT, "webhook", TYPE_SECRET, AL(webhook), 0, 0 },
	{ SECTION_ALERT, "exec", TYPE_STRING, AL(exec), 0, 0 },
	{ SECTION_ALERT, "every", TYPE_DURATION, AL(every), 0, 0 },
	{ SECTION_ALERT, "window", TYPE_DURATION, AL(window), 0, 0 },
	{ SECTION_ALERT, "min_requests", TYPE_UINT, AL(min_requests), 0,
	    1000000 },
	{ SECTION_ALERT, "exec_timeout", TYPE_DURATION, AL(exec_timeout), 0, 0 },
};

struct config_parser {
	const char		*name;
	int			 line;
	enum config_section	 section;
	void			*target;	/* struct the section fills */
	unsigned char		*seen;		/* non-repeatable keys set */
	char			*err;
};

static int	config_error(struct config_parser *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	config_header(struct config_parser *, struct config *, char *);
static int	config_value(struct config_parser *, struct config *, char *,
		    char *);
static int	config_check(struct config_parser *, struct config *);
static int	config_check_alert(struct config_parser *,
		    struct config_alert *);
static int	config_check_addr(const char *);
static const char *config_check_url(const char *);
static void	config_fill_defaults(struct config *);

static int
config_error(struct config_parser *p, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	if (p->err != NULL)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (p->line > 0)
		p->err = xasprintf("%s:%d: %s", p->name, p->line,
		    msg != NULL ? msg : "error");
	else
		p->err = xasprintf("%s: %s", p->name, msg != NULL ? msg : "error");
	free(msg);
	return -1;
}

static char *
config_trim(char *s)
{
	char	*e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int
config_name_ok(const char *s, const char *extra)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return 0;
	}
	return 1;
}

/* Forget which keys of a named section were set: a new one starts. */
static void
config_reset_seen(struct config_parser *p, enum config_section section)
{
	for (size_t i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
		if (config_keys[i].section == section)
			p->seen[i] = 0;
	}
}

static int
config_header(struct config_parser *p, struct config *c, char *line)
{
	char	*end, *name, *arg;

	if ((end = strchr(line, ']')) == NULL || config_trim(end + 1)[0] != '\0')
		return config_error(p, "malformed section header");
	*end = '\0';
	name = config_trim(line + 1);
	arg = name + strcspn(name, " \t");
	if (*arg != '\0') {
		*arg++ = '\0';
		arg = config_trim(arg);
	}
	if (strcmp(name, "server") == 0 || strcmp(name, "defaults") == 0) {
		/*
		 * A second [server] block may add keys but not set one twice,
		 * so "seen" is kept; it is reset for each named section.
		 */
		if (*arg != '\0')
			return config_error(p, "section [%s] takes no name", name);
		p->section = name[0] == 's' ? SECTION_SERVER : SECTION_DEFAULTS;
		p->target = c;
		return 0;
	}
	if (strcmp(name, "cache") == 0) {
		if (*arg != '\0')
			return config_error(p, "section [cache] takes no name");
		p->section = SECTION_CACHE;
		p->target = c;
		return 0;
	}
	if (strcmp(name, "backend") == 0) {
		struct config_backend	*b;

		if (!config_name_ok(arg, "_.-"))
			return config_error(p, "[backend NAME] needs a name of "
			    "letters, digits, '_', '.' or '-'");
		for (size_t i = 0; i < c->nbackends; i++) {
			if (strcmp(c->backends[i].name, arg) == 0)
				return config_error(p, "backend %s is already "
				    "defined on line %d", arg, c->backends[i].line);
		}
		c->backends = xreallocarray(c->backends, c->nbackends + 1,
		    sizeof *c->backends);
		config_reset_seen(p, SECTION_BACKEND);
		b = &c->backends[c->nbackends++];
		memset(b, 0, sizeof *b);
		b->name = xstrdup(arg);
		b->weight = 1;
		b->max_concurrent = 1;	/* as Ollama's OLLAMA_NUM_PARALLEL */
		b->line = p->line;
		p->section = SECTION_BACKEND;
		p->target = b;
		return 0;
	}
	if (strcmp(name, "model") == 0) {
		struct config_model	*m;

		if (*arg == '\0' || strpbrk(arg, " \t") != NULL)
			return config_error(p, "[model PATTERN] needs a pattern");
		for (size_t i = 0; i < c->nmodels; i++) {
			if (strcmp(c->models[i].pattern, arg) == 0)
				return config_error(p, "[model %s] is already "
				    "defined on line %d", arg, c->models[i].line);
		}
		config_reset_seen(p, SECTION_MODEL);
		c->models = xreallocarray(c->models, c->nmodels + 1,
		    sizeof *c->models);
		m = &c->models[c->nmodels++];
		memset(m, 0, sizeof *m);
		m->pattern = xstrdup(arg);
		m->line = p->line;
		m->max_keep_alive = CONFIG_UNSET;
		p->section = SECTION_MODEL;
		p->target = m;
		return 0;
	}
	if (strcmp(name, "alias") == 0) {
		struct config_alias	*a;

		if (*arg == '\0' || strpbrk(arg, " \t") != NULL)
			return config_error(p, "[alias NAME] needs a name");
		for (size_t i = 0; i < c->naliases; i++) {
			if (strcmp(c->aliases[i].name, arg) == 0)
				return config_error(p, "[alias %s] is already "
				    "defined on line %d", arg, c->aliases[i].line);
		}
		config_reset_seen(p, SECTION_ALIAS);
		c->aliases = xreallocarray(c->aliases, c->naliases + 1,
		    sizeof *c->aliases);
		a = &c->aliases[c->naliases++];
		memset(a, 0, sizeof *a);
		a->name = xstrdup(arg);
		a->line = p->line;
		p->section = SECTION_ALIAS;
		p->target = a;
		return 0;
	}
	if (strcmp(name, "alert") == 0) {
		struct config_alert	*a;

		if (!config_name_ok(arg, "_.-") || strlen(arg) > 64)
			return config_error(p, "[alert NAME] needs a name of up "
			    "to 64 letters, digits, '_', '.' or '-'");
		for (size_t i = 0; i < c->nalerts; i++) {
			if (strcmp(c->alerts[i].name, arg) == 0)
				return config_error(p, "alert %s is already "
				    "defined on line %d", arg, c->alerts[i].line);
		}
		c->alerts = xreallocarray(c->alerts, c->nalerts + 1,
		    sizeof *c->alerts);
		a = &c->alerts[c->nalerts++];
		memset(a, 0, sizeof *a);
		a->name = xstrdup(arg);
		a->line = p->line;
		a->every = ALERT_DEFAULT_EVERY_MS;
		a->window = ALERT_DEFAULT_WINDOW_MS;
		a->min_requests = ALERT_DEFAULT_MIN_REQUESTS;
		a->exec_timeout = ALERT_DEFAULT_EXEC_TIMEOUT_MS;
		config_reset_seen(p, SECTION_ALERT);
		p->target = a;
		p->section = SECTION_ALERT;
		return 0;
	}
	return config_error(p, "unknown section [%s]", name);
}

static int
config_value(struct config_parser *p, struct config *c, char *key, char *value)
{
	const struct config_key	*k = NULL;
	size_t			 idx = 0;
	char			*field;
	uint64_t		 n;
	int			 rc;

	for (idx = 0; idx < sizeof config_keys / sizeof config_keys[0]; idx++) {
		if (config_keys[idx].section == p->section &&
		    strcmp(config_keys[idx].name, key) == 0) {
			k = &config_keys[idx];
			break;
		}
	}
	if (p->section == SECTION_NONE)
		return config_error(p, "key %s outside any section", key);
	if (k == NULL)
		return config_error(p, "unknown key %s", key);
	if (k->type != TYPE_LIST && k->type != TYPE_ADDR && k->type != TYPE_NET) {
		if (p->seen[idx])
			return config_error(p, "duplicate key %s", key);
		p->seen[idx] = 1;
	}
	if (*value == '\0')
		return config_error(p, "%s needs a value", key);
	field = (char *)p->target + k->offset;

	if ((k->type == TYPE_ADDR || k->type == TYPE_ADDR_ONCE) &&
	    config_check_addr(value) != 0)
		return config_error(p, "%s: '%s' is not ADDR:PORT with a "
		    "numeric address", key, value);
	if (k->type == TYPE_URL) {
		const char	*why = config_check_url(value);
		size_t		 len = strlen(value);

		/* The URL may hold a password: the message never quotes it. */
		if (why != NULL)
			return config_error(p, "%s %s", key, why);
		/* Paths are appended to the URL: keep exactly one slash. */
		while (len > 0 && value[len - 1] == '/')
			value[--len] = '\0';
		xfree_secret(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	}
	if (k->type == TYPE_NET) {
		struct config_net	net;

		if (config_parse_net(value, &net) != 0)
			return config_error(p, "%s: '%s' is not a numeric "
			    "address or ADDRESS/BITS", key, value);
	}
	switch (k->type) {
	case TYPE_STRING:
	case TYPE_SECRET:
	case TYPE_ADDR_ONCE:
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case TYPE_ADDR:
	case TYPE_NET:
	case TYPE_LIST: {
		char	***list = (char ***)field;
		size_t	 *count = (size_t *)((char *)c + k->count_offset);

		*list = xreallocarray(*list, *count + 1, sizeof **list);
		(*list)[(*count)++] = xstrdup(value);
		return 0;
	}
	case TYPE_DURATION:
		rc = parse_duration_ms(value, &n);
		if (rc != 0)
			return config_error(p, "%s: '%s' is not a duration "
			    "(e.g. 500ms, 30s, 5m, 1h, 1d)", key, value);
		break;
	case TYPE_SIZE:
		rc = parse_size(value, &n);
		if (rc != 0)
			return config_error(p, "%s: '%s' is not a size "
			    "(e.g. 512, 16K, 64M, 1G)", key, value);
		break;
	case TYPE_UINT:
		rc = parse_uint(value, UINT64_MAX, &n);
		if (rc != 0)
			return config_error(p, "%s: '%s' is not a non-negative "
			    "integer", key, value);
		break;
	default:
		return config_error(p, "internal error: key type");
	}
	if (k->max != 0 && n > k->max)
		return config_error(p, "%s: %s is larger than the maximum %llu",
		    key, value, (unsigned long long)k->max);
	*(uint64_t *)field = n;
	return 0;
}

/* A listen address: IPv4 "a.b.c.d:port", IPv6 "[addr]:port", "*:port". */
static int
config_check_addr(const char *s)
{
	const char	*colon;
	uint64_t	 port;
	char		 host[64];
	size_t		 hlen;
	struct in_addr	 a4;
	struct in6_addr	 a6;

	if (*s == '[') {
		const char	*close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		colon = close + 1;
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof host)
			return -1;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return -1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		hlen = (size_t)(colon - s);
		if (hlen == 0 || hlen >= sizeof host)
			return -1;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		if (strcmp(host, "*") != 0 && inet_pton(AF_INET, host, &a4) != 1)
			return -1;
	}
	if (parse_uint(colon + 1, 65535, &port) != 0)
		return -1;
	return 0;
}

int
config_parse_net(const char *s, struct config_net *net)
{
	char		 host[64];
	const char	*slash = strchr(s, '/');
	size_t		 hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	uint64_t	 bits;

	memset(net, 0, sizeof *net);
	if (hlen == 0 || hlen >= sizeof host)
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, net->addr) == 1) {
		net->family = AF_INET;
		net->bits = 32;
	} else if (inet_pton(AF_INET6, host, net->addr) == 1) {
		net->family = AF_INET6;
		net->bits = 128;
	} else
		return -1;
	if (slash != NULL) {
		if (parse_uint(slash + 1, net->bits, &bits) != 0)
			return -1;
		net->bits = (unsigned)bits;
	}
	return 0;
}

static void
config_fill_defaults(struct config *c)
{
	c->header_timeout = 10 * 1000;
	c->idle_timeout = 75 * 1000;
	c->upstream_timeout = 10 * 60 * 1000;
	c->queue_timeout = 60 * 1000;
	c->max_header_size = 16 * 1024;
	c->max_body_size = 64 * 1024 * 1024;
	c->max_connections = 4096;
	c->max_usage_backlog = 100000;
	c->max_queue = 1000;
	c->defaults.max_queued = 100;
	c->defaults.priority = 100;
	c->cache_size = UINT64_C(256) * 1024 * 1024;
	c->cache_ttl = 60 * 60 * 1000;
	/* Unset until config_check, which derives them from others. */
	c->max_connections_per_ip = UINT64_MAX;
	c->max_body_memory = UINT64_MAX;
}

static int
config_check(struct config_parser *p, struct config *c)
{
	for (size_t i = 0; i < c->nmodels; i++) {
		struct config_model	*m = &c->models[i];

		p->line = m->line;
		if (m->num_ctx != 0 && m->max_num_ctx != 0 &&
		    m->num_ctx > m->max_num_ctx)
			return config_error(p, "[model %s] num_ctx is larger than "
			    "its max_num_ctx", m->pattern);
		if (m->cache == NULL)
			m->cache_mode = CACHE_UNSET;
		else if (strcmp(m->cache, "off") == 0)
			m->cache_mode = CACHE_OFF;
		else if (strcmp(m->cache, "embeddings") == 0)
			m->cache_mode = CACHE_EMBEDDINGS;
		else if (strcmp(m->cache, "deterministic") == 0)
			m->cache_mode = CACHE_DETERMINISTIC;
		else
			return config_error(p, "[model %s] cache is off, "
			    "embeddings or deterministic, not %.64s",
			    m->pattern, m->cache);
	}
	p->line = 0;
	if (c->cache_scope != NULL && strcmp(c->cache_scope, "user") != 0 &&
	    strcmp(c->cache_scope, "shared") != 0)
		return config_error(p, "[cache] scope is user or shared, not "
		    "%.64s", c->cache_scope);
	c->cache_shared = c->cache_scope != NULL &&
	    strcmp(c->cache_scope, "shared") == 0;
	if (c->cache_ttl == 0)
		return config_error(p, "[cache] ttl must be greater than zero");
	for (size_t i = 0; i < c->nalerts; i++) {
		p->line = c->alerts[i].line;
		if (config_check_alert(p, &c->alerts[i]) != 0)
			return -1;
	}
	p->line = 0;
	if (c->end_user_header != NULL && (c->end_user_header[0] == '\0' ||
	    c->end_user_header[strspn(c->end_user_header,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")]
	    != '\0'))
		return config_error(p, "end_user_header must be a header name "
		    "of letters, digits, '-' and '_'");
	for (size_t i = 0; i < c->nbackends; i++) {
		const struct config_backend	*b = &c->backends[i];

		p->line = b->line;
		if (b->type != NULL && strcmp(b->type, "ollama") != 0 &&
		    strcmp(b->type, "openai") != 0)
			return config_error(p, "[backend %s] type is ollama or "
			    "openai, not %s", b->name, b->type);
	}
	for (size_t i = 0; i < c->naliases; i++) {
		const struct config_alias	*a = &c->aliases[i];

		p->line = a->line;
		if (a->model == NULL)
			return config_error(p, "[alias %s] needs a model", a->name);
		for (size_t k = 0; k < c->naliases; k++) {
			if (strcmp(c->aliases[k].name, a->model) == 0)
				return config_error(p, "[alias %s] names another "
				    "alias; an alias names a model", a->name);
		}
	}
	p->line = 0;
	if (c->nlisten == 0 && c->ntls_listen == 0) {
		c->listen = xcalloc(1, sizeof *c->listen);
		c->listen[c->nlisten++] = xstrdup(CONFIG_DEFAULT_LISTEN);
	}
	if (c->ntls_listen > 0 && (c->tls_cert == NULL || c->tls_key == NULL))
		return config_error(p, "tls_listen needs tls_cert and tls_key");
	if (c->state_dir == NULL)
		c->state_dir = xstrdup("ogate-state");
	if (c->admin_socket == NULL)
		c->admin_socket = xasprintf("%s/ogproxyd.sock", c->state_dir);
	if (c->max_header_size < 1024)
		return config_error(p, "max_header_size must be at least 1K");
	if (c->header_timeout == 0 || c->idle_timeout == 0 ||
	    c->upstream_timeout == 0)
		return config_error(p, "timeouts must be greater than zero");
	if (c->max_connections == 0)
		return config_error(p, "max_connections must be at least 1");
	if (c->max_usage_backlog == 0)
		return config_error(p, "max_usage_backlog must be at least 1");
	/* It takes eight addresses to fill every slot. */
	if (c->max_connections_per_ip == UINT64_MAX)
		c->max_connections_per_ip = (c->max_connections + 7) / 8;
	if (c->max_connections_per_ip == 0)
		return config_error(p, "max_connections_per_ip must be at "
		    "least 1");
	/* 1G, or room for one body of the largest size allowed. */
	if (c->max_body_memory == UINT64_MAX)
		c->max_body_memory = c->max_body_size > (UINT64_C(1) << 30) ?
		    c->max_body_size : UINT64_C(1) << 30;
	if (c->max_body_memory < c->max_body_size)
		return config_error(p, "max_body_memory must be at least "
		    "max_body_size, or no body of that size could be read");
	if (c->nbackends == 0) {
		/* Ollama's own default address. */
		c->backends = xcalloc(1, sizeof *c->backends);
		c->backends[0].name = xstrdup("local");
		c->backends[0].url = xstrdup("http://127.0.0.1:11434");
		c->backends[0].weight = 1;
		c->backends[0].max_concurrent = 1;
		c->nbackends = 1;
	}
	for (size_t i = 0; i < c->nbackends; i++) {
		struct config_backend	*b = &c->backends[i];

		p->line = b->line;
		if (b->url == NULL)
			return config_error(p, "backend %s has no url", b->name);
		/* Both would be sent as the one Authorization header. */
		if (b->api_key != NULL && strchr(b->url, '@') != NULL)
			return config_error(p, "backend %s: a url with a user "
			    "and an api_key cannot both be used", b->name);
	}
	return 0;
}

/* The kinds of [alert] "on". */
static const struct {
	const char	*name;
	unsigned	 bit;
} config_alert_kinds[] = {
	{ "backend_down", ALERT_BACKEND_DOWN },
	{ "backend_up", ALERT_BACKEND_UP },
	{ "quota", ALERT_QUOTA },
	{ "error_rate", ALERT_ERROR_RATE },
	{ "gpu_temp", ALERT_GPU_TEMP },
	{ "gpu_memory", ALERT_GPU_MEMORY },
	{ "queue_wait", ALERT_QUEUE_WAIT },
};

/* "on = a, b c": the kinds, comma- or space-separated. */
static int
config_alert_on(struct config_parser *p, struct config_alert *a)
{
	char	*list, *word, *save = NULL;
	size_t	 i, n = sizeof config_alert_kinds / sizeof config_alert_kinds[0];

	list = xstrdup(a->on);
	for (word = strtok_r(list, ", \t", &save); word != NULL;
	    word = strtok_r(NULL, ", \t", &save)) {
		for (i = 0; i < n; i++) {
			if (strcmp(config_alert_kinds[i].name, word) == 0)
				break;
		}
		if (i == n) {
			config_error(p, "on = %.64s: not a kind of alert "
			    "(backend_down, backend_up, quota, error_rate, "
			    "queue_wait, gpu_temp, gpu_memory)", word);
			free(list);
			return -1;
		}
		a->kinds |= config_alert_kinds[i].bit;
	}
	free(list);
	return 0;
}

/* "at = 80, 100": numbers from 1 to 200, in ascending order. */
static int
config_alert_at(struct config_parser *p, struct config_alert *a)
{
	char		*list, *word, *save = NULL;
	uint64_t	 n;
	int		 rc = 0;

	list = xstrdup(a->at_text);
	for (word = strtok_r(list, ", \t", &save); word != NULL && rc == 0;
	    word = strtok_r(NULL, ", \t", &save)) {
		if (parse_uint(word, 200, &n) != 0 || n == 0)
			rc = config_error(p, "at: '%.64s' is not a number from "
			    "1 to 200", word);
		else if (a->nat == ALERT_MAX_AT)
			rc = config_error(p, "at: more than %d thresholds",
			    ALERT_MAX_AT);
		else if (a->nat > 0 && n <= a->at[a->nat - 1])
			rc = config_error(p, "at: thresholds must be given in "
			    "ascending order");
		else
			a->at[a->nat++] = (unsigned)n;
	}
	free(list);
	return rc;
}

static int
config_check_alert(struct config_parser *p, struct config_alert *a)
{
	if (a->on == NULL)
		return config_error(p, "[alert %s] has no 'on'", a->name);
	if (a->webhook == NULL && a->exec == NULL)
		return config_error(p, "[alert %s] needs a webhook or an exec",
		    a->name);
	if (config_alert_on(p, a) != 0)
		return -1;
	if (a->kinds == 0)
		return config_error(p, "[alert %s] has an empty 'on'", a->name);
	if (a->at_text != NULL) {
		unsigned	t = a->kinds & ALERT_THRESHOLDED;

		if (t == 0)
			return config_error(p, "[alert %s]: 'at' applies only to "
			    "quota, error_rate, queue_wait, gpu_temp and "
			    "gpu_memory", a->name);
		/* One list cannot be both a share of quota and a heat. */
		if ((t & (t - 1)) != 0)
			return config_error(p, "[alert %s]: 'at' cannot serve "
			    "more than one kind; use one alert for each",
			    a->name);
		if (t == ALERT_QUEUE_WAIT) {
			if (parse_duration_ms(a->at_text, &a->at_ms) != 0 ||
			    a->at_ms == 0)
				return config_error(p, "[alert %s]: queue_wait's "
				    "'at' is a duration (e.g. 500ms, 10s)",
				    a->name);
		} else if (config_alert_at(p, a) != 0)
			return -1;
		if (a->nat == 0 && t != ALERT_QUEUE_WAIT)
			return config_error(p, "[alert %s]: 'at' has no number",
			    a->name);
		if (t != ALERT_QUOTA && a->nat > 1)
			return config_error(p, "[alert %s]: 'at' takes one "
			    "number but for quota", a->name);
		if (t != ALERT_GPU_TEMP && a->nat > 0 &&
		    a->at[a->nat - 1] > 100)
			return config_error(p, "[alert %s]: 'at' is a percent, "
			    "at most 100", a->name);
	}
	if (a->webhook != NULL && strncmp(a->webhook, "http://", 7) != 0 &&
	    strncmp(a->webhook, "https://", 8) != 0)
		return config_error(p, "[alert %s]: webhook must start with "
		    "http:// or https://", a->name);
	if (a->webhook != NULL) {
		for (const char *q = a->webhook; *q != '\0'; q++) {
			if ((unsigned char)*q <= ' ' || *q == 0x7f)
				return config_error(p, "[alert %s]: webhook must "
				    "not have spaces or control characters",
				    a->name);
		}
	}
	if (a->exec != NULL && a->exec[0] != '/')
		return config_error(p, "[alert %s]: exec must be an absolute "
		    "path", a->name);
	if (a->at_ms == 0)
		a->at_ms = ALERT_DEFAULT_QUEUE_WAIT_MS;
	if (a->window < 1000 || a->window > ALERT_MAX_WINDOW_MS)
		return config_error(p, "[alert %s]: window must be from 1s to "
		    "1h", a->name);
	if (a->exec_timeout == 0)
		return config_error(p, "[alert %s]: exec_timeout must be greater "
		    "than zero", a->name);
	if (a->min_requests == 0)
		a->min_requests = 1;
	return 0;
}

/*
 * Where the authority of a checked URL starts and ends, and where its
 * user information ends ('@'), if it has any.
 */
static void
config_url_parts(const char *url, const char **auth, const char **auth_end,
    const char **at)
{
	*auth = strstr(url, "://") + 3;
	*auth_end = *auth + strcspn(*auth, "/");
	*at = NULL;
	for (const char *q = *auth; q < *auth_end; q++) {
		if (*q == '@')
			*at = q;
	}
}

/*
 * A backend URL: http or https, a host (a name, an IPv4 address or an
 * IPv6 one in brackets), an optional port from 1 to 65535, a path, and
 * perhaps user:password for a backend behind Basic authentication. The
 * reason it is not one, or NULL.
 */
static const char *
config_check_url(const char *url)
{
	const char	*auth, *end, *at, *host, *q;
	char		 addr[INET6_ADDRSTRLEN + 1];
	struct in6_addr	 a6;
	uint64_t	 port;
	size_t		 n;

	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return "must start with http:// or https://";
	for (q = url; *q != '\0'; q++) {
		if ((unsigned char)*q <= ' ' || *q == 0x7f || *q == '?' ||
		    *q == '#')
			return "must not have a query, fragment, spaces or "
			    "control characters";
	}
	config_url_parts(url, &auth, &end, &at);
	if (at != NULL && memchr(auth, '@', (size_t)(at - auth)) != NULL)
		return "has more than one '@' (write one in a password as %40)";
	host = at != NULL ? at + 1 : auth;
	if (*host == '[') {
		if ((q = memchr(host, ']', (size_t)(end - host))) == NULL)
			return "has an unclosed '['";
		/* An IPv6 address, perhaps with a zone: [fe80::1%25eth0]. */
		n = strcspn(host + 1, "%]");
		if (n == 0 || n >= sizeof addr)
			return "has no valid IPv6 address between '[' and ']'";
		memcpy(addr, host + 1, n);
		addr[n] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1)
			return "has no valid IPv6 address between '[' and ']'";
		q++;
		if (q != end && *q != ':')
			return "has text after ']' that is not a port";
	} else {
		if (memchr(host, '[', (size_t)(end - host)) != NULL ||
		    memchr(host, ']', (size_t)(end - host)) != NULL)
			return "has a '[' or ']' outside an IPv6 address";
		for (q = host; q < end && *q != ':'; q++) {
			if (!isalnum((unsigned char)*q) && strchr("-._~", *q) ==
			    NULL)
				return "has a host name with characters a host "
				    "name cannot have";
		}
		if (q == host)
			return "has no host";
	}
	if (q == end)
		return NULL;
	/* q is at the ':' before the port. */
	n = (size_t)(end - q - 1);
	if (n == 0)
		return "has an empty port";
	if (n > 5 || strspn(q + 1, "0123456789") < n)
		return "has a port that is not a number from 1 to 65535";
	memcpy(addr, q + 1, n);
	addr[n] = '\0';
	if (parse_uint(addr, 65535, &port) != 0 || port == 0)
		return "has a port that is not a number from 1 to 65535";
	return NULL;
}

char *
config_url_shown(const char *url)
{
	const char	*auth, *end, *at, *colon;
	struct buf	 b;
	char		*s;

	if (strstr(url, "://") == NULL)
		return xstrdup(url);
	config_url_parts(url, &auth, &end, &at);
	if (at == NULL)
		return xstrdup(url);
	/*
	 * The password becomes ***. A user without a password may be a
	 * token, as some services take one, so it goes the same way.
	 */
	buf_init(&b);
	colon = memchr(auth, ':', (size_t)(at - auth));
	if (colon != NULL)
		buf_add(&b, url, (size_t)(colon + 1 - url));
	else
		buf_add(&b, url, (size_t)(auth - url));
	buf_add_str(&b, "***");
	buf_add_str(&b, at);
	s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

struct config *
config_parse(const char *name, const char *text, size_t len, char **err)
{
	struct config_parser	 p;
	struct config		*c;
	unsigned char		 seen[sizeof config_keys / sizeof config_keys[0]];
	const char		*pos = text, *end = text + len;

	memset(&p, 0, sizeof p);
	memset(seen, 0, sizeof seen);
	p.name = name;
	p.seen = seen;
	c = xcalloc(1, sizeof *c);
	config_fill_defaults(c);

	while (pos < end && p.err == NULL) {
		const char	*nl = memchr(pos, '\n', (size_t)(end - pos));
		size_t		 n = nl != NULL ? (size_t)(nl - pos) : (size_t)(end - pos);
		char		*line, *s, *eq;

		p.line++;
		if (memchr(pos, '\0', n) != NULL) {
			config_error(&p, "NUL byte in line");
			break;
		}
		line = xstrndup(pos, n);
		pos += n + (nl != NULL);
		s = config_trim(line);
		if (*s == '\0' || *s == '#' || *s == ';') {
			free(line);
			continue;
		}
		if (*s == '[') {
			config_header(&p, c, s);
			free(line);
			continue;
		}
		if ((eq = strchr(s, '=')) == NULL) {
			config_error(&p, "expected 'key = value' or '[section]'");
			free(line);
			break;
		}
		*eq = '\0';
		{
			char	*key = config_trim(s), *value = config_trim(eq + 1);
			char	*hash;

			if (*value == '"') {
				/* A quoted value may hold '#'; a comment may follow. */
				char	*close = strchr(value + 1, '"');
				char	*rest;

				if (close == NULL) {
					config_error(&p, "unterminated quote");
					free(line);
					break;
				}
				*close = '\0';
				rest = config_trim(close + 1);
				if (*rest != '\0' && *rest != '#') {
					config_error(&p, "text after a quoted value");
					free(line);
					break;
				}
				value++;
			} else {
				/* A '#' after whitespace starts a comment. */
				for (hash = value; (hash = strchr(hash, '#')) != NULL;
				    hash++) {
					if (hash > value && (hash[-1] == ' ' ||
					    hash[-1] == '\t')) {
						*hash = '\0';
						value = config_trim(value);
						break;
					}
				}
			}
			if (*key == '\0')
				config_error(&p, "missing key before '='");
			else
				config_value(&p, c, key, value);
		}
		explicit_bzero(line, n);
		free(line);
	}
	if (p.err == NULL)
		config_check(&p, c);
	if (p.err != NULL) {
		*err = p.err;
		config_free(c);
		return NULL;
	}
	return c;
}

struct config *
config_load(const char *path, char **err)
{
	FILE		*f;
	struct buf	 b;
	struct config	*c;
	char		 chunk[8192];
	size_t		 n;

	if ((f = fopen(path, "r")) == NULL) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		buf_add(&b, chunk, n);
		if (buf_used(&b) > CONFIG_MAX_FILE) {
			fclose(f);
			buf_free(&b);
			*err = xasprintf("%s: file is larger than 1M", path);
			return NULL;
		}
	}
	if (ferror(f)) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		fclose(f);
		buf_free(&b);
		return NULL;
	}
	fclose(f);
	c = config_parse(path, buf_ptr(&b), buf_used(&b), err);
	if (c != NULL)
		c->path = xstrdup(path);
	explicit_bzero(b.data, b.cap);
	buf_free(&b);
	return c;
}

struct config *
config_builtin(void)
{
	char	*err = NULL;

	return config_parse("built-in defaults", "", 0, &err);
}

static void
config_free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	config_free_list(c->listen, c->nlisten);
	config_free_list(c->tls_listen, c->ntls_listen);
	config_free_list(c->per_ip_exempt, c->nper_ip_exempt);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->admin_socket);
	free(c->admin_group);
	free(c->state_dir);
	free(c->metrics_listen);
	free(c->user);
	free(c->end_user_header);
	for (size_t i = 0; i < c->nbackends; i++) {
		free(c->backends[i].name);
		xfree_secret(c->backends[i].url);
		xfree_secret(c->backends[i].api_key);
		free(c->backends[i].type);
		free(c->backends[i].models);
		free(c->backends[i].ca_file);
	}
	free(c->backends);
	for (size_t i = 0; i < c->nmodels; i++) {
		free(c->models[i].pattern);
		free(c->models[i].cache);
	}
	free(c->models);
	free(c->cache_scope);
	for (size_t i = 0; i < c->naliases; i++) {
		free(c->aliases[i].name);
		free(c->aliases[i].model);
	}
	free(c->aliases);
	for (size_t i = 0; i < c->nalerts; i++) {
		free(c->alerts[i].name);
		free(c->alerts[i].on);
		free(c->alerts[i].at_text);
		xfree_secret(c->alerts[i].webhook);
		free(c->alerts[i].exec);
	}
	free(c->alerts);
	free(c);
}
