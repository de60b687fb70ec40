/*
 * unit-config.c: the config parser: values, defaults, and errors that
 * name the file and line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "tap.h"

static struct config *
parse(const char *text, char **err)
{
	*err = NULL;
	return config_parse("test.conf", text, strlen(text), err);
}

static void
expect_error(const char *text, const char *want, const char *what)
{
	struct config	*c;
	char		*err;

	c = parse(text, &err);
	tap_ok(c == NULL && err != NULL && strstr(err, want) != NULL,
	    "error: %s", what);
	if (c != NULL || err == NULL || strstr(err, want) == NULL)
		printf("#   got '%s', want '%s'\n", err ? err : "(no error)", want);
	config_free(c);
	free(err);
}

int
main(void)
{
	struct config	*c;
	char		*err;

	c = parse("", &err);
	tap_ok(c != NULL, "an empty file is valid");
	tap_is_str(c->listen[0], "127.0.0.1:11435", "default listen");
	tap_is_str(c->backends[0].url, "http://127.0.0.1:11434",
	    "default backend is local Ollama");
	tap_is_str(c->admin_socket, "ogate-state/ogproxyd.sock",
	    "admin socket defaults into state_dir");
	tap_is_int(c->header_timeout, 10000, "header_timeout default");
	config_free(c);

	c = parse("# comment\n[server]\nlisten = 127.0.0.1:8080\n"
	    "listen = [::1]:8080\nheader_timeout = 500ms\nidle_timeout = 2m\n"
	    "upstream_timeout = 1h\nmax_header_size = 8K\n"
	    "max_body_size = 2M   # inline comment\nstate_dir = \"/var/lib/og\"\n"
	    "[defaults]\ntokens_per_day = 100000\n"
	    "[backend gpu1]\nurl = http://10.0.0.1:11434/\nweight = 3\n"
	    "api_key = sk-secret#1\n"
	    "[backend gpu2]\nurl = https://gpu2.example:443\n"
	    "[model llama3*]\nmax_num_ctx = 8192\n", &err);
	tap_ok(c != NULL, "a full config parses");
	if (c == NULL) {
		printf("# %s\n", err);
		return tap_done();
	}
	tap_is_int(c->nlisten, 2, "listen is repeatable");
	tap_is_str(c->listen[1], "[::1]:8080", "IPv6 listen");
	tap_is_int(c->header_timeout, 500, "ms duration");
	tap_is_int(c->idle_timeout, 120000, "m duration");
	tap_is_int(c->upstream_timeout, 3600000, "h duration");
	tap_is_int(c->max_header_size, 8192, "K size");
	tap_is_int(c->max_body_size, 2 * 1024 * 1024, "M size, inline comment");
	tap_is_str(c->state_dir, "/var/lib/og", "quoted value");
	tap_is_int(c->defaults.tokens_per_day, 100000, "defaults section");
	tap_is_int(c->nbackends, 2, "two backends");
	tap_is_str(c->backends[0].url, "http://10.0.0.1:11434",
	    "trailing slash dropped from backend url");
	tap_is_int(c->backends[0].weight, 3, "weight");
	tap_is_str(c->backends[0].api_key, "sk-secret#1",
	    "'#' inside a value is not a comment");
	tap_is_int(c->nmodels, 1, "model section");
	tap_is_int(c->models[0].max_num_ctx, 8192, "max_num_ctx");
	config_free(c);

	expect_error("[server]\nlisten = 1.2.3.4:80\nbogus = 1\n",
	    "test.conf:3: unknown key bogus", "unknown key names file and line");
	expect_error("[server]\nheader_timeout = 10x\n", "test.conf:2:",
	    "bad duration");
	expect_error("[server]\nmax_body_size = lots\n", "not a size",
	    "bad size");
	expect_error("[server]\nmax_connections = -1\n", "non-negative integer",
	    "negative number");
	expect_error("[server]\nmax_usage_backlog = 0\n",
	    "max_usage_backlog must be at least 1", "an empty usage backlog");
	expect_error("[server]\nidle_timeout = 1s\nidle_timeout = 2s\n",
	    "test.conf:3: duplicate key idle_timeout", "duplicate key");
	expect_error("listen = 1.2.3.4:80\n", "outside any section",
	    "key before any section");
	expect_error("[nonsense]\n", "unknown section", "unknown section");
	expect_error("[server\n", "malformed section header", "broken header");
	expect_error("[server]\nlisten = localhost:80\n", "numeric address",
	    "listen needs a numeric address (no DNS at start)");
	expect_error("[server]\nlisten = 1.2.3.4:99999\n", "ADDR:PORT",
	    "port out of range");
	expect_error("[server]\nmetrics_listen = localhost:9100\n",
	    "numeric address", "metrics_listen needs a numeric address");
	expect_error("[server]\nmetrics_listen = 127.0.0.1:9100\n"
	    "metrics_listen = 127.0.0.1:9101\n", "duplicate key metrics_listen",
	    "metrics_listen is a single address");
	expect_error("[backend a]\nweight = 1\n", "backend a has no url",
	    "backend without url");
	expect_error("[backend a]\nurl = ftp://x\n", "http:// or https://",
	    "backend url scheme");
	expect_error("[backend a]\nurl = http://x\n[backend a]\nurl = http://y\n",
	    "already defined on line 1", "duplicate backend");
	expect_error("[backend]\n", "needs a name", "backend without a name");
	expect_error("[server]\njust words\n", "expected 'key = value'",
	    "line without '='");
	expect_error("[defaults]\nlisten = 1.2.3.4:80\n", "unknown key listen",
	    "key in the wrong section");
	expect_error("[server]\nheader_timeout = 0\n", "greater than zero",
	    "zero timeout");
	expect_error("[backend a]\nurl = http://x\napi_key = \n",
	    "api_key needs a value", "empty value");

	expect_error("[backend a]\nurl = http://\n", "url has no host",
	    "backend url without a host");
	expect_error("[server]\nlisten = 999.1.1.1:80\n", "numeric address",
	    "an IPv4 address out of range");
	expect_error("[server]\nidle_timeout = 1s\n[server]\nidle_timeout = 2s\n",
	    "duplicate key idle_timeout", "a key set again in a second [server]");
	expect_error("[model a*]\nmax_num_ctx = 1\n[model a*]\n",
	    "already defined on line 1", "duplicate model pattern");
	expect_error("[server]\nstate_dir = \"/x\n", "unterminated quote",
	    "unterminated quote");
	c = parse("[server]\nstate_dir = \"/x #y\"  # comment\n", &err);
	tap_ok(c != NULL && strcmp(c->state_dir, "/x #y") == 0,
	    "a quoted value keeps its '#'");
	config_free(c);
	c = parse("[backend a]\nurl = http://x\n[backend b]\nurl = http://y\n",
	    &err);
	tap_ok(c != NULL && c->nbackends == 2, "keys may repeat across "
	    "named sections");
	config_free(c);

	/* Backend URLs are checked at their own line, and never quoted. */
	{
		static const struct {
			const char	*url;
			const char	*want;
		} bad[] = {
			{ "http://x:", "url has an empty port" },
			{ "http://x:0", "not a number from 1 to 65535" },
			{ "http://x:65536", "not a number from 1 to 65535" },
			{ "http://x:99999999999999999999", "from 1 to 65535" },
			{ "http://x:8o", "not a number from 1 to 65535" },
			{ "http://x:-1", "not a number from 1 to 65535" },
			{ "http://[::1:11434", "url has an unclosed '['" },
			{ "http://[::1", "url has an unclosed '['" },
			{ "http://::1]:11434", "outside an IPv6 address" },
			{ "http://a[b]:1", "outside an IPv6 address" },
			{ "http://[]:1", "no valid IPv6 address" },
			{ "http://[zz::1]:1", "no valid IPv6 address" },
			{ "http://[::1]x", "text after ']'" },
			{ "http://:11434", "url has no host" },
			{ "http:///x", "url has no host" },
			{ "http://u:p@:1", "url has no host" },
			{ "http://x:1:2", "not a number from 1 to 65535" },
			{ "http://x/?a=1", "query, fragment" },
			{ "http://x/#top", "query, fragment" },
			{ "http://x/a\tb", "query, fragment" },
			{ "http://x\001y", "query, fragment" },
			{ "gopher://x", "http:// or https://" },
			{ "HTTP2://x", "http:// or https://" },
			{ "http://a@b@x", "more than one '@'" },
			{ "http://x,y:1", "characters a host name cannot have" },
		};
		static const char *const good[] = {
			"http://x:1", "http://x:65535", "https://[::1]:11434",
			"http://[fe80::1%25eth0]:1", "http://10.0.0.1",
			"http://gpu-1.example_x.internal:11434/ollama",
			"https://u:p%40ss@x:443",
		};
		char	text[256];

		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			snprintf(text, sizeof text, "[backend a]\nweight = 1\n"
			    "url = %s\n", bad[i].url);
			c = parse(text, &err);
			tap_ok(c == NULL && err != NULL &&
			    strncmp(err, "test.conf:3: ", 13) == 0 &&
			    strstr(err, bad[i].want) != NULL &&
			    strstr(err, bad[i].url) == NULL,
			    "url %s is refused at its line", bad[i].url);
			if (c != NULL || err == NULL ||
			    strstr(err, bad[i].want) == NULL)
				printf("#   got '%s', want '%s'\n",
				    err ? err : "(no error)", bad[i].want);
			config_free(c);
			free(err);
		}
		for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
			snprintf(text, sizeof text, "[backend a]\nurl = %s\n",
			    good[i]);
			c = parse(text, &err);
			tap_ok(c != NULL, "url %s is accepted", good[i]);
			if (c == NULL)
				printf("#   got '%s'\n", err);
			config_free(c);
			free(err);
		}
	}
	c = parse("[backend a]\nurl = https://ann:pa55w0rd@x:443/o/\n", &err);
	tap_ok(c != NULL, "a url with a password is accepted");
	if (c != NULL) {
		char	*shown = config_url_shown(c->backends[0].url);

		tap_is_str(c->backends[0].url, "https://ann:pa55w0rd@x:443/o",
		    "the url keeps its password for libcurl");
		tap_is_str(shown, "https://ann:***@x:443/o",
		    "the url is shown with the password as ***");
		free(shown);
	}
	config_free(c);
	c = parse("[backend a]\nurl = http://tok3n@x\n", &err);
	if (c != NULL) {
		char	*shown = config_url_shown(c->backends[0].url);

		tap_is_str(shown, "http://***@x", "a lone user is shown as ***");
		free(shown);
	} else
		tap_ok(0, "a lone user is shown as ***");
	config_free(c);
	{
		char	*shown = config_url_shown("http://x:1/a@b");

		tap_is_str(shown, "http://x:1/a@b", "an '@' in the path is no user");
		free(shown);
	}
	expect_error("[backend a]\nurl = http://u:p@x\napi_key = k\n",
	    "a url with a user and an api_key cannot both be used",
	    "a url with a user and an api_key");
	/* Host bounds derived from other keys when not set. */
	c = parse("", &err);
	tap_is_int(c->max_connections_per_ip, 512,
	    "max_connections_per_ip defaults to an eighth of max_connections");
	tap_is_int(c->max_body_memory, 1 << 30, "max_body_memory defaults to 1G");
	config_free(c);
	c = parse("[server]\nmax_connections = 10\nmax_body_size = 2G\n", &err);
	tap_is_int(c->max_connections_per_ip, 2, "an eighth, rounded up");
	tap_is_int(c->max_body_memory, 2LL << 30,
	    "or room for one body of max_body_size");
	config_free(c);
	c = parse("[server]\nmax_connections_per_ip = 7\nmax_body_memory = 2G\n"
	    "per_ip_exempt = 192.0.2.1\nper_ip_exempt = 2001:db8::/32\n", &err);
	tap_ok(c != NULL && c->max_connections_per_ip == 7 &&
	    c->max_body_memory == 2LL << 30 && c->nper_ip_exempt == 2,
	    "host bounds and a repeatable per_ip_exempt are read");
	config_free(c);
	expect_error("[server]\nmax_connections_per_ip = 0\n", "at least 1",
	    "max_connections_per_ip of 0");
	expect_error("[server]\nmax_body_memory = 1M\n",
	    "max_body_memory must be at least max_body_size",
	    "max_body_memory below max_body_size");
	expect_error("[server]\nper_ip_exempt = 10.0.0.0/8/8\n",
	    "test.conf:2: per_ip_exempt", "a malformed per_ip_exempt");
	expect_error("[server]\nper_ip_exempt = ::1/129\n",
	    "not a numeric address or ADDRESS/BITS", "a prefix too long");
	{
		struct config_net	net;

		tap_ok(config_parse_net("10.1.0.0/16", &net) == 0 &&
		    net.bits == 16 && net.addr[0] == 10 && net.addr[1] == 1,
		    "an IPv4 network");
		tap_ok(config_parse_net("::1", &net) == 0 && net.bits == 128 &&
		    net.addr[15] == 1, "an IPv6 address is a /128");
		tap_ok(config_parse_net("host.example", &net) != 0 &&
		    config_parse_net("/8", &net) != 0 &&
		    config_parse_net("10.0.0.1/", &net) != 0,
		    "names and empty parts are refused");
	}

	/* [alert NAME]: kinds, thresholds and defaults. */
	c = parse("[alert ops]\non = backend_down, quota gpu_temp\n"
	    "webhook = https://chat.example/hook\n"
	    "[alert slow]\non = queue_wait\nat = 2s\nexec = /bin/true\n"
	    "every = 1m\nwindow = 30s\n", &err);
	tap_ok(c != NULL && c->nalerts == 2, "two alerts");
	if (c != NULL) {
		const struct config_alert	*a = &c->alerts[0];

		tap_ok(a->kinds == (ALERT_BACKEND_DOWN | ALERT_QUOTA |
		    ALERT_GPU_TEMP), "kinds separated by commas or blanks");
		tap_ok(a->nat == 0 && a->every == 10 * 60 * 1000 &&
		    a->window == 5 * 60 * 1000 && a->min_requests == 10 &&
		    a->exec_timeout == 10 * 1000,
		    "defaults: every 10m, window 5m, 10 requests, exec 10s");
		a = &c->alerts[1];
		tap_ok(a->kinds == ALERT_QUEUE_WAIT && a->at_ms == 2000 &&
		    a->every == 60000 && a->window == 30000,
		    "queue_wait's at is a duration");
	}
	config_free(c);
	c = parse("[alert q]\non = quota\nat = 50, 75,100\nexec = /x\n",
	    &err);
	tap_ok(c != NULL && c->alerts[0].nat == 3 && c->alerts[0].at[0] == 50 &&
	    c->alerts[0].at[2] == 100, "quota thresholds");
	config_free(c);
	expect_error("[alert q]\non = quota\nat = ,\nexec = /x\n",
	    "'at' has no number", "an empty threshold list");
	expect_error("[alert q]\non = quota\nat = 1,2,3,4,5,6,7,8,9\n"
	    "exec = /x\n", "more than 8", "too many thresholds");
	expect_error("[alert q]\non = error_rate\nat = 10, 20\nexec = /x\n",
	    "takes one number", "error_rate takes one threshold");
	expect_error("[alert q]\non = error_rate\nwindow = 2h\nexec = /x\n",
	    "window must be from 1s to 1h", "a window over an hour");
	expect_error("[alert q]\non = error_rate\nexec = /x\n[alert q]\n",
	    "alert q is already defined on line 1", "a duplicate alert");
	expect_error("[alert]\non = quota\n", "[alert NAME] needs a name",
	    "an alert without a name");

	c = config_load("/nonexistent/ogproxyd.conf", &err);
	tap_ok(c == NULL && strstr(err, "/nonexistent/ogproxyd.conf: No such file")
	    != NULL, "missing file is named");
	free(err);

	/* [cache] and [model] cache. */
	c = parse("", &err);
	tap_is_int(c->cache_size, 256 * 1024 * 1024, "cache size: 256M");
	tap_is_int(c->cache_ttl, 3600000, "cache ttl: 1h");
	tap_ok(!c->cache_shared, "cache scope: user");
	config_free(c);
	c = parse("[cache]\nsize = 1G\nttl = 5m\nscope = shared\n"
	    "[model a]\ncache = embeddings\n[model b]\ncache = deterministic\n"
	    "[model c]\ncache = off\n[model d]\nmax_num_ctx = 1\n", &err);
	tap_ok(c != NULL && c->cache_size == 1024 * 1024 * 1024 &&
	    c->cache_ttl == 300000 && c->cache_shared, "[cache] is read");
	tap_ok(c != NULL && c->models[0].cache_mode == CACHE_EMBEDDINGS &&
	    c->models[1].cache_mode == CACHE_DETERMINISTIC &&
	    c->models[2].cache_mode == CACHE_OFF &&
	    c->models[3].cache_mode == CACHE_UNSET, "[model] cache is read");
	config_free(c);
	expect_error("[model a]\ncache = yes\n", "test.conf:1: [model a] cache "
	    "is off, embeddings or deterministic", "a bad cache mode");
	expect_error("[cache]\nscope = all\n", "[cache] scope is user or shared",
	    "a bad scope");
	expect_error("[cache]\nttl = 0\n", "[cache] ttl must be greater",
	    "a ttl of 0");
	expect_error("[cache x]\n", "section [cache] takes no name",
	    "[cache] has no name");
	expect_error("[cache]\nsize = 2048G\n", "larger than the maximum",
	    "a size over 1T");
	expect_error("[cache]\nlisten = 1.2.3.4:5\n", "unknown key listen",
	    "[cache] has its own keys");
	return tap_done();
}
