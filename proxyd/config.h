/*
 * config.h: ogproxyd.conf, the daemon's configuration.
 *
 * INI style: "key = value" lines, "#" comments, "[section]" and
 * "[section NAME]" headers. The key names are part of the contract in
 * DESIGN.md. Unknown keys, bad values and duplicates are errors that
 * name the file and line, because a typo in a gateway's config must not
 * silently open or close a door.
 */
#ifndef OG_CONFIG_H
#define OG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PATH	"/etc/ogate/ogproxyd.conf"
#define CONFIG_DEFAULT_LISTEN	"127.0.0.1:11435"

struct config_limits {
	uint64_t	 tokens_per_day;
	uint64_t	 tokens_per_month;
	uint64_t	 requests_per_minute;
	uint64_t	 max_concurrent;
	uint64_t	 priority;
	uint64_t	 max_queued;
};

struct config_backend {
	char		*name;
	char		*url;		/* may hold a password: wiped when freed */
	uint64_t	 max_concurrent;
	uint64_t	 weight;
	char		*api_key;	/* a secret: wiped when freed */
	char		*type;		/* "ollama" (NULL) or "openai" */
	char		*models;	/* globs of the models it serves */
	char		*ca_file;	/* https: trust these, not the system's */
	int		 line;
};

/* max_keep_alive of a section that does not set it. */
#define CONFIG_UNSET	UINT64_MAX

/* [model] cache: which of a model's answers the response cache keeps. */
enum config_cache_mode {
	CACHE_UNSET,		/* the section does not say */
	CACHE_OFF,
	CACHE_EMBEDDINGS,	/* embedding routes */
	CACHE_DETERMINISTIC,	/* those, and reproducible generations */
};

struct config_model {
	char		*pattern;
	uint64_t	 max_num_ctx;
	uint64_t	 max_num_predict;
	uint64_t	 num_ctx;	/* fixed; 0: the request's */
	uint64_t	 max_keep_alive; /* ms; CONFIG_UNSET */
	char		*cache;		/* as written; parsed into cache_mode */
	enum config_cache_mode cache_mode;
	int		 line;
};

/* [alias NAME]: a model name that stands for another. */
struct config_alias {
	char		*name;		/* as written */
	char		*model;		/* the target */
	int		 line;
};

/* What an [alert NAME] watches: bits of config_alert.kinds. */
#define ALERT_BACKEND_DOWN	0x01
#define ALERT_BACKEND_UP	0x02
#define ALERT_QUOTA		0x04
#define ALERT_ERROR_RATE	0x08
#define ALERT_GPU_TEMP		0x10
#define ALERT_GPU_MEMORY	0x20
#define ALERT_QUEUE_WAIT	0x40
/* The kinds that take a threshold ("at"). */
#define ALERT_THRESHOLDED	(ALERT_QUOTA | ALERT_ERROR_RATE | \
				    ALERT_GPU_TEMP | ALERT_GPU_MEMORY | \
				    ALERT_QUEUE_WAIT)
#define ALERT_MAX_AT		8	/* thresholds in one "at" */
#define ALERT_DEFAULT_EVERY_MS		(10 * 60 * 1000)
#define ALERT_DEFAULT_WINDOW_MS		(5 * 60 * 1000)
#define ALERT_MAX_WINDOW_MS		(60 * 60 * 1000)
#define ALERT_DEFAULT_MIN_REQUESTS	10
#define ALERT_DEFAULT_ERROR_PCT		20
#define ALERT_DEFAULT_GPU_TEMP_C	85
#define ALERT_DEFAULT_GPU_MEMORY_PCT	95
#define ALERT_DEFAULT_QUEUE_WAIT_MS	(10 * 1000)
#define ALERT_DEFAULT_EXEC_TIMEOUT_MS	(10 * 1000)

struct config_alert {
	char		*name;
	char		*on;		/* as written; parsed into kinds */
	char		*at_text;	/* as written; parsed into at[] */
	char		*webhook;	/* may hold a token: never shown */
	char		*exec;		/* an absolute path */
	uint64_t	 every;		/* ms between repeats of one condition */
	uint64_t	 window;	/* ms, for error_rate */
	uint64_t	 min_requests;	/* in the window, for error_rate */
	uint64_t	 exec_timeout;	/* ms */
	unsigned	 kinds;
	unsigned	 at[ALERT_MAX_AT];	/* ascending; nat 0: defaults */
	size_t		 nat;
	uint64_t	 at_ms;		/* queue_wait's p95 threshold */
	int		 line;
};

struct config {
	char			*path;	/* NULL: built-in defaults */
	char			**listen;
	size_t			 nlisten;
	char			**tls_listen;
	size_t			 ntls_listen;
	char			*tls_cert;
	char			*tls_key;
	char			*admin_socket;
	char			*admin_group;
	char			*state_dir;
	char			*metrics_listen;
	char			*user;
	uint64_t		 header_timeout;	/* milliseconds */
	uint64_t		 idle_timeout;
	uint64_t		 upstream_timeout;
	uint64_t		 queue_timeout;
	uint64_t		 max_header_size;	/* bytes */
	uint64_t		 max_body_size;
	uint64_t		 max_connections;
	uint64_t		 max_connections_per_ip;
	char			**per_ip_exempt;	/* ADDR or ADDR/BITS */
	size_t			 nper_ip_exempt;
	uint64_t		 max_body_memory;	/* all bodies held */
	uint64_t		 usage_retention;	/* ms; 0: forever */
	uint64_t		 max_usage_backlog;	/* rows; see usage.h */
	uint64_t		 max_queue;		/* requests waiting */
	char			*end_user_header;	/* names a front end's user */
	/* [cache]: the response cache (cache.h). */
	uint64_t		 cache_size;		/* bytes; 0: none */
	uint64_t		 cache_ttl;		/* ms */
	char			*cache_scope;		/* as written */
	int			 cache_shared;		/* scope = shared */
	struct config_limits	 defaults;
	struct config_backend	*backends;
	size_t			 nbackends;
	struct config_model	*models;
	size_t			 nmodels;
	struct config_alias	*aliases;
	size_t			 naliases;
	struct config_alert	*alerts;
	size_t			 nalerts;
};

/* A network of per_ip_exempt: an address and how many leading bits count. */
struct config_net {
	int		 family;	/* AF_INET or AF_INET6 */
	unsigned char	 addr[16];
	unsigned	 bits;
};

/* Parse "ADDR" or "ADDR/BITS" (IPv4 or IPv6); 0, or -1 if malformed. */
int		 config_parse_net(const char *, struct config_net *);

/*
 * Load a config file. On failure returns NULL and sets *err to a
 * one-line message naming the file and line (free it).
 */
struct config	*config_load(const char *path, char **err);
/* Parse a config from memory; name is used in messages. */
struct config	*config_parse(const char *name, const char *text, size_t len,
		    char **err);
/* The built-in defaults, used when no config file exists. */
struct config	*config_builtin(void);
void		 config_free(struct config *);
/* A backend URL as it may be shown: its password replaced by ***. */
char		*config_url_shown(const char *);

#endif
