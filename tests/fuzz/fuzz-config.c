/*
 * fuzz-config.c: a libFuzzer harness for the ogproxyd.conf parser.
 *
 * A config file is written by an operator, not an attacker, but the
 * parser still must not crash, leak or exit on a bad one: "ogproxyd -t"
 * and a reload both feed it whatever is on disk, and a reload must be
 * able to refuse a broken file and keep the running configuration. So
 * every input must give either a config or one error line that names
 * the file and a line of it, and an accepted config must hold what the
 * daemon takes for granted: an address to listen on, at least one
 * backend with a usable URL, limits within their bounds. Parsing the
 * same text twice must give the same answer: the parser keeps no state
 * between calls.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

#define FUZZ_NAME	"fuzz.conf"

static void	fuzz_check_error(const char *, const uint8_t *, size_t);
static void	fuzz_check_config(const struct config *);

/* "fuzz.conf:LINE: message" or "fuzz.conf: message", on one line. */
static void
fuzz_check_error(const char *err, const uint8_t *data, size_t size)
{
	const char	*p;
	unsigned long	 line, lines = 1;
	char		*end;

	FUZZ_CHECK(strchr(err, '\n') == NULL);
	FUZZ_CHECK(strncmp(err, FUZZ_NAME ":", sizeof FUZZ_NAME) == 0);
	p = err + sizeof FUZZ_NAME;
	if (*p == ' ') {
		FUZZ_CHECK(p[1] != '\0');
		return;
	}
	line = strtoul(p, &end, 10);
	FUZZ_CHECK(end != p && *end == ':' && end[1] == ' ' && end[2] != '\0');
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\n')
			lines++;
	}
	FUZZ_CHECK(line >= 1 && line <= lines);
}

static void
fuzz_check_config(const struct config *c)
{
	FUZZ_CHECK(c->path == NULL);
	FUZZ_CHECK(c->nlisten >= 1 && c->ntls_listen == 0);
	for (size_t i = 0; i < c->nlisten; i++)
		FUZZ_CHECK(c->listen[i] != NULL && strchr(c->listen[i], ':'));
	FUZZ_CHECK(c->state_dir != NULL && c->state_dir[0] != '\0');
	FUZZ_CHECK(c->admin_socket != NULL && c->admin_socket[0] != '\0');

	FUZZ_CHECK(c->header_timeout > 0 && c->idle_timeout > 0 &&
	    c->upstream_timeout > 0);
	FUZZ_CHECK(c->max_header_size >= 1024 &&
	    c->max_header_size <= 1024 * 1024);
	FUZZ_CHECK(c->max_body_size <= UINT64_C(1) << 40);
	FUZZ_CHECK(c->max_connections >= 1 && c->max_connections <= 1000000);

	/* Limits are compared as signed numbers: none may look negative. */
	FUZZ_CHECK(c->defaults.tokens_per_day <= INT64_MAX);
	FUZZ_CHECK(c->defaults.tokens_per_month <= INT64_MAX);
	FUZZ_CHECK(c->defaults.requests_per_minute <= INT64_MAX);
	FUZZ_CHECK(c->defaults.max_concurrent <= 1000000);
	FUZZ_CHECK(c->defaults.priority <= 1000);

	FUZZ_CHECK(c->nbackends >= 1);
	for (size_t i = 0; i < c->nbackends; i++) {
		const struct config_backend	*b = &c->backends[i];
		const char			*host;
		size_t				 len;

		FUZZ_CHECK(b->name != NULL && b->name[0] != '\0');
		FUZZ_CHECK(b->url != NULL);
		FUZZ_CHECK(strncmp(b->url, "http://", 7) == 0 ||
		    strncmp(b->url, "https://", 8) == 0);
		host = strstr(b->url, "://") + 3;
		FUZZ_CHECK(*host != '\0' && *host != '/');
		FUZZ_CHECK(strpbrk(host, "?# \t") == NULL);
		len = strlen(b->url);
		FUZZ_CHECK(b->url[len - 1] != '/');
		FUZZ_CHECK(b->weight <= 1000 && b->max_concurrent <= 1000000);
		if (b->api_key != NULL)
			FUZZ_CHECK(b->api_key[0] != '\0');
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(c->backends[j].name, b->name) != 0);
	}
	for (size_t i = 0; i < c->nmodels; i++) {
		const struct config_model	*m = &c->models[i];

		FUZZ_CHECK(m->pattern != NULL && m->pattern[0] != '\0');
		FUZZ_CHECK(strpbrk(m->pattern, " \t") == NULL);
		FUZZ_CHECK(m->max_num_ctx <= UINT64_C(1) << 32);
		FUZZ_CHECK(m->max_num_predict <= UINT64_C(1) << 32);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(c->models[j].pattern,
			    m->pattern) != 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	*c, *again;
	char		*err = NULL, *err_again = NULL;

	c = config_parse(FUZZ_NAME, (const char *)data, size, &err);
	FUZZ_CHECK((c == NULL) != (err == NULL));
	if (c != NULL)
		fuzz_check_config(c);
	else
		fuzz_check_error(err, data, size);

	again = config_parse(FUZZ_NAME, (const char *)data, size, &err_again);
	FUZZ_CHECK((again == NULL) == (c == NULL));
	if (err != NULL)
		FUZZ_CHECK(strcmp(err, err_again) == 0);
	if (c != NULL) {
		FUZZ_CHECK(again->nbackends == c->nbackends);
		FUZZ_CHECK(again->nlisten == c->nlisten);
		FUZZ_CHECK(again->max_body_size == c->max_body_size);
	}

	config_free(c);
	config_free(again);
	free(err);
	free(err_again);
	return 0;
}
