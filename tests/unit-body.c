/*
 * unit-body.c: the request body reader finds each field as Go's
 * encoding/json would, refuses what it cannot read with certainty, and
 * writes the canonical body that goes upstream.
 */
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "buf.h"
#include "tap.h"

#define NATIVE	(BODY_F(BODY_MODEL) | BODY_F(BODY_STREAM) | \
		BODY_F(BODY_OPTIONS) | BODY_F(BODY_NUM_PREDICT) | \
		BODY_F(BODY_NUM_CTX))
#define OPENAI	(BODY_F(BODY_MODEL) | BODY_F(BODY_STREAM) | \
		BODY_F(BODY_STREAM_OPTIONS) | BODY_F(BODY_INCLUDE_USAGE) | \
		BODY_F(BODY_MAX_TOKENS) | BODY_F(BODY_MAX_COMPLETION_TOKENS))
#define SHOW	(BODY_F(BODY_MODEL) | BODY_F(BODY_NAME))

static int
rd(struct body *b, const char *s, unsigned mask, char *err)
{
	return body_read(b, s, strlen(s), mask, err, 200);
}

/* The body is refused, with a message that contains want. */
static void
refused(const char *what, const char *s, size_t len, unsigned mask,
    const char *want)
{
	struct body	b;
	char		err[200] = "";
	int		rc = body_read(&b, s, len, mask, err, sizeof err);

	if (!tap_ok(rc == -1 && strstr(err, want) != NULL, "refused: %s", what))
		printf("#   rc %d, message '%s', want '%s'\n", rc, err, want);
	if (rc == 0)
		body_free(&b);
}

#define REFUSED(what, s, mask, want) refused(what, s, strlen(s), mask, want)

/* Read s, apply nothing, and compare the rendered body with want. */
static void
renders(const char *what, const char *s, unsigned mask, const char *want)
{
	struct body	b;
	struct buf	out;
	char		err[200] = "";

	buf_init(&out);
	if (!tap_ok(rd(&b, s, mask, err) == 0, "read: %s", what)) {
		printf("#   %s\n", err);
		return;
	}
	body_render(&b, s, &out);
	tap_is_str(buf_cstr(&out), want, "canonical: %s", what);
	buf_free(&out);
	body_free(&b);
}

static void
test_folding(void)
{
	struct body	b;
	char		err[200];

	/* Go matches keys without regard to case, Unicode folds included. */
	tap_ok(rd(&b, "{\"model\":\"m\",\"\xc5\xbftream\":true}", NATIVE,
	    err) == 0 && body_bool(&b, BODY_STREAM, 0) == 1,
	    "U+017F long s spells stream");
	body_free(&b);
	tap_ok(rd(&b, "{\"\\u017ftream\":false}", NATIVE, err) == 0 &&
	    body_bool(&b, BODY_STREAM, 1) == 0,
	    "an escaped long s spells stream too");
	body_free(&b);
	tap_ok(rd(&b, "{\"max_to\xe2\x84\xaa" "ens\":7}", OPENAI, err) == 0 &&
	    body_int(&b, BODY_MAX_TOKENS, -1) == 7,
	    "the Kelvin sign is a k");
	body_free(&b);
	tap_ok(rd(&b, "{\"MODEL\":\"x\"}", NATIVE, err) == 0 &&
	    b.model != NULL && strcmp(b.model, "x") == 0, "MODEL is model");
	body_free(&b);
	tap_ok(rd(&b, "{\"mo\\u0064el\":\"x\"}", NATIVE, err) == 0 &&
	    b.model != NULL && strcmp(b.model, "x") == 0,
	    "an escape in a key is decoded before matching");
	body_free(&b);
	tap_ok(rd(&b, "{\"stream_options\":{\"Include_Usage\":true}}", OPENAI,
	    err) == 0 && body_bool(&b, BODY_INCLUDE_USAGE, 0) == 1,
	    "Include_Usage is include_usage");
	body_free(&b);
	tap_ok(rd(&b, "{\"\xc4\xb0nclude\":1,\"max_tokens\":2}", OPENAI,
	    err) == 0 && body_int(&b, BODY_MAX_TOKENS, -1) == 2,
	    "a dotted capital I folds to I and matches nothing here");
	body_free(&b);

	REFUSED("a key twice in two spellings",
	    "{\"stream\":true,\"Stream\":false}", NATIVE, "\"stream\" is given twice");
	REFUSED("a long s and a plain s",
	    "{\"stream\":false,\"\xc5\xbftream\":true}", NATIVE, "given twice");
	REFUSED("include_usage twice",
	    "{\"stream_options\":{\"include_usage\":true,\"INCLUDE_USAGE\":false}}",
	    OPENAI, "\"stream_options.include_usage\" is given twice");
	REFUSED("stream_options twice",
	    "{\"stream_options\":{},\"STREAM_OPTIONS\":null}", OPENAI,
	    "given twice");
	REFUSED("the same key twice", "{\"model\":\"a\",\"model\":\"b\"}",
	    NATIVE, "\"model\" is given twice");
	REFUSED("options twice", "{\"options\":{},\"Options\":{}}", NATIVE,
	    "\"options\" is given twice");
	REFUSED("num_predict twice", "{\"options\":{\"num_predict\":1,"
	    "\"num_predict\":-1}}", NATIVE, "given twice");
	REFUSED("a map key in another case",
	    "{\"options\":{\"NUM_PREDICT\":5}}", NATIVE, "differs in case");
	REFUSED("model and name both", "{\"model\":\"a\",\"name\":\"b\"}", SHOW,
	    "one model");

	/* Fields the route's backend does not read are not ours to judge. */
	tap_ok(rd(&b, "{\"max_tokens\":1,\"MAX_TOKENS\":2,\"model\":\"m\"}",
	    NATIVE, err) == 0, "keys the route does not read may repeat");
	body_free(&b);
	tap_ok(rd(&b, "{\"x\":{\"stream\":1,\"stream\":2},\"y\":[{\"model\":1}]}",
	    NATIVE, err) == 0 && b.f[BODY_STREAM].type == BODY_ABSENT &&
	    b.model == NULL, "nested keys are not top-level fields");
	body_free(&b);
	tap_ok(rd(&b, "{\"name\":\"n\"}", SHOW, err) == 0 && b.model != NULL &&
	    strcmp(b.model, "n") == 0, "name names the model on show");
	body_free(&b);
	tap_ok(rd(&b, "{\"model\":\"\",\"name\":\"n\"}", SHOW, err) == 0 &&
	    b.model != NULL && strcmp(b.model, "n") == 0,
	    "an empty model leaves name");
	body_free(&b);
}

static void
test_values(void)
{
	struct body	b;
	char		err[200];

	tap_ok(rd(&b, "{\"options\":{\"num_predict\":1e3}}", NATIVE, err) == 0 &&
	    body_int(&b, BODY_NUM_PREDICT, 0) == 1000, "1e3 is 1000");
	body_free(&b);
	tap_ok(rd(&b, "{\"options\":{\"num_predict\":-1}}", NATIVE, err) == 0 &&
	    body_int(&b, BODY_NUM_PREDICT, 0) == -1, "-1 is read");
	body_free(&b);
	tap_ok(rd(&b, "{\"max_tokens\":9223372036854775807}", OPENAI, err) ==
	    0 && body_int(&b, BODY_MAX_TOKENS, 0) == INT64_MAX,
	    "the largest 64-bit integer is read");
	body_free(&b);
	tap_ok(rd(&b, "{\"max_tokens\":null,\"stream\":null}", OPENAI, err) ==
	    0 && body_int(&b, BODY_MAX_TOKENS, -5) == -5 &&
	    body_bool(&b, BODY_STREAM, 1) == 1, "null is the default");
	body_free(&b);

	REFUSED("20 digits", "{\"max_tokens\":99999999999999999999}", OPENAI,
	    "\"max_tokens\" must be a whole number");
	REFUSED("1e400", "{\"options\":{\"num_predict\":1e400}}", NATIVE,
	    "\"options.num_predict\" must be a whole number");
	REFUSED("a fraction", "{\"options\":{\"num_ctx\":2048.5}}", NATIVE,
	    "whole number");
	REFUSED("a string for a number", "{\"max_tokens\":\"5\"}", OPENAI,
	    "must be a number");
	REFUSED("a string for stream", "{\"stream\":\"true\"}", NATIVE,
	    "\"stream\" must be true or false");
	REFUSED("a number for model", "{\"model\":5}", NATIVE,
	    "\"model\" must be a string");
	REFUSED("an array for options", "{\"options\":[1]}", NATIVE,
	    "\"options\" must be an object");
}

/* {"a":[[...]]} with depth arrays: one level more than that in all. */
static size_t
nest(char *p, int depth)
{
	size_t	n = 0;

	memcpy(p, "{\"a\":", 5);
	n = 5;
	for (int i = 0; i < depth; i++)
		p[n++] = '[';
	for (int i = 0; i < depth; i++)
		p[n++] = ']';
	p[n++] = '}';
	return n;
}

static void
test_grammar(void)
{
	struct body	b;
	char		err[200];
	static char	deep[2 * BODY_MAX_DEPTH + 16];
	size_t		n;

	REFUSED("empty", "", NATIVE, "empty");
	REFUSED("an array", "[{}]", NATIVE, "must be a JSON object");
	REFUSED("data after the object", "{\"model\":\"m\"} {\"model\":\"x\"}",
	    NATIVE, "data after");
	REFUSED("a raw 0xFF byte", "{\"prompt\":\"a\xff\"}", NATIVE,
	    "not valid UTF-8");
	REFUSED("an overlong slash", "{\"p\":\"\xc0\xaf\"}", NATIVE, "UTF-8");
	REFUSED("an encoded surrogate", "{\"p\":\"\xed\xa0\x80\"}", NATIVE,
	    "UTF-8");
	REFUSED("a control character", "{\"p\":\"a\nb\"}", NATIVE,
	    "not valid JSON");
	REFUSED("a bad escape", "{\"p\":\"\\x41\"}", NATIVE, "not valid JSON");
	REFUSED("a leading zero", "{\"p\":012}", NATIVE, "not valid JSON");
	REFUSED("a plus sign", "{\"p\":+1}", NATIVE, "not valid JSON");
	REFUSED("a bare dot", "{\"p\":1.}", NATIVE, "not valid JSON");
	REFUSED("a trailing comma", "{\"p\":1,}", NATIVE, "not valid JSON");
	REFUSED("a mismatched bracket", "{\"p\":[1}", NATIVE, "not valid JSON");
	REFUSED("a single quote", "{'p':1}", NATIVE, "not valid JSON");
	REFUSED("truncated", "{\"p\":[1,2", NATIVE, "ends too soon");
	REFUSED("TRUE", "{\"p\":TRUE}", NATIVE, "not valid JSON");
	refused("a NUL byte", "{\"p\":1\0}", 8, NATIVE, "not valid JSON");

	tap_ok(rd(&b, "{\"p\":\"\\u0000\",\"q\":\"\\ud800\",\"model\":\"m\"}",
	    NATIVE, err) == 0, "NUL escapes and lone surrogates read as Go does");
	body_free(&b);
	tap_ok(rd(&b, " \r\n\t{\"a\":[1,-0.5e+3,true,false,null,{},[],\"\\/\"]}"
	    " \n", NATIVE, err) == 0, "the whole grammar, with space around");
	body_free(&b);
	tap_ok(rd(&b, "{\"model\":\"\\ud83d\\ude00\"}", NATIVE, err) == 0 &&
	    strcmp(b.model, "\xf0\x9f\x98\x80") == 0,
	    "a surrogate pair decodes to one code point");
	body_free(&b);

	/* As deep as Go goes, and one more. */
	n = nest(deep, BODY_MAX_DEPTH - 1);
	tap_ok(body_read(&b, deep, n, NATIVE, err, sizeof err) == 0,
	    "nesting %d deep is read", BODY_MAX_DEPTH);
	body_free(&b);
	n = nest(deep, BODY_MAX_DEPTH);
	refused("one level deeper", deep, n, NATIVE, "nested too deeply");
}

static void
test_render(void)
{
	struct body	b;
	struct buf	out;
	char		err[200];
	const char	*s;

	renders("keys spelled canonically",
	    " {\"\xc5\xbftream\":true,\"MODEL\":\"m\",\"x\":1} ", NATIVE,
	    "{\"stream\":true,\"model\":\"m\",\"x\":1}");
	renders("numbers written as integers",
	    "{\"options\":{\"num_predict\":1E2,\"temperature\":0.5}}", NATIVE,
	    "{\"options\":{\"num_predict\":100,\"temperature\":0.5}}");
	renders("the model without escapes", "{\"model\":\"ll\\u0061ma\"}",
	    NATIVE, "{\"model\":\"llama\"}");
	renders("nothing else changes",
	    "{\"messages\":[{\"role\":\"user\",\"content\":\"\\u00e9 \\\"q\\\"\"}]}",
	    NATIVE,
	    "{\"messages\":[{\"role\":\"user\",\"content\":\"\\u00e9 \\\"q\\\"\"}]}");

	struct {
		const char	*what, *in, *want;
	} sets[] = {
		{ "options added", "{\"model\":\"m\"}",
		    "{\"model\":\"m\",\"options\":{\"num_predict\":5}}" },
		{ "to an empty body", "{}", "{\"options\":{\"num_predict\":5}}" },
		{ "options null", "{\"options\":null,\"model\":\"m\"}",
		    "{\"options\":{\"num_predict\":5},\"model\":\"m\"}" },
		{ "options empty", "{\"options\":{ }}",
		    "{\"options\":{ \"num_predict\":5}}" },
		{ "options with others", "{\"options\":{\"seed\":1}}",
		    "{\"options\":{\"seed\":1,\"num_predict\":5}}" },
		{ "num_predict replaced", "{\"options\":{\"num_predict\":-1,"
		    "\"seed\":1}}", "{\"options\":{\"num_predict\":5,\"seed\":1}}" },
		{ "num_predict null", "{\"options\":{\"num_predict\":null}}",
		    "{\"options\":{\"num_predict\":5}}" },
	};
	for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
		buf_init(&out);
		if (rd(&b, sets[i].in, NATIVE, err) != 0) {
			tap_ok(0, "set: %s (%s)", sets[i].what, err);
			continue;
		}
		body_set_int(&b, BODY_NUM_PREDICT, 5);
		body_render(&b, sets[i].in, &out);
		tap_is_str(buf_cstr(&out), sets[i].want, "set: %s", sets[i].what);
		body_free(&b);
		buf_free(&out);
	}

	/* Two members added to the top and one to a nested object. */
	s = "{\"model\":\"m\",\"stream\":true,\"options\":{}}";
	buf_init(&out);
	rd(&b, s, NATIVE, err);
	body_set_int(&b, BODY_NUM_PREDICT, 9);
	body_set_int(&b, BODY_NUM_CTX, 2048);
	body_set_bool(&b, BODY_STREAM, 0);
	body_render(&b, s, &out);
	tap_is_str(buf_cstr(&out), "{\"model\":\"m\",\"stream\":false,\"options\":"
	    "{\"num_predict\":9,\"num_ctx\":2048}}", "several edits at once");
	body_free(&b);
	buf_free(&out);

	s = "{\"model\":\"m\",\"stream\":true}";
	buf_init(&out);
	rd(&b, s, OPENAI, err);
	body_set_bool(&b, BODY_INCLUDE_USAGE, 1);
	body_set_int(&b, BODY_MAX_TOKENS, 100);
	body_render(&b, s, &out);
	tap_is_str(buf_cstr(&out), "{\"model\":\"m\",\"stream\":true,"
	    "\"stream_options\":{\"include_usage\":true},\"max_tokens\":100}",
	    "usage asked for and a limit set");
	body_free(&b);
	buf_free(&out);

	s = "{\"stream_options\":{\"INCLUDE_USAGE\":false},\"stream\":true}";
	buf_init(&out);
	rd(&b, s, OPENAI, err);
	body_set_bool(&b, BODY_INCLUDE_USAGE, 1);
	body_render(&b, s, &out);
	tap_is_str(buf_cstr(&out), "{\"stream_options\":{\"include_usage\":true},"
	    "\"stream\":true}", "a spelling the backend folds is replaced");
	body_free(&b);
	buf_free(&out);
}

/* Inputs the fuzz harness (tests/fuzz/fuzz-body.c) found wrong. */
static void
test_found(void)
{
	struct body	b;
	struct buf	out;
	char		err[200];
	const char	*s;

	/* A field's value ends where it does, not after the space after it. */
	tap_ok(rd(&b, "{\"max_tokens\":5 }", OPENAI, err) == 0 &&
	    body_int(&b, BODY_MAX_TOKENS, -1) == 5,
	    "a number before a space reads as itself");
	body_free(&b);
	tap_ok(rd(&b, "{\"model\":\"m\"\n,\"stream\":true\t}", NATIVE,
	    err) == 0 && b.model != NULL && strcmp(b.model, "m") == 0 &&
	    body_bool(&b, BODY_STREAM, 0) == 1,
	    "a string and a literal before a space read as themselves");
	body_free(&b);
	s = "{\"options\":{\"seed\":1} }";
	buf_init(&out);
	rd(&b, s, NATIVE, err);
	body_set_int(&b, BODY_NUM_PREDICT, 5);
	body_render(&b, s, &out);
	tap_is_str(buf_cstr(&out), "{\"options\":{\"seed\":1,\"num_predict\":5} }",
	    "a member is added inside an object followed by a space");
	body_free(&b);
	buf_free(&out);

	/* The empty one of model and name stays empty upstream. */
	renders("an empty model beside name", "{\"model\":\"\",\"name\":\"n\"}",
	    SHOW, "{\"model\":\"\",\"name\":\"n\"}");
	REFUSED("a NUL in a model", "{\"name\":\"\\u0000x\",\"model\":\"m\"}",
	    SHOW, "\"name\" holds a NUL character");
}

/* keep_alive read as Ollama reads it: seconds, or a Go duration. */
static void
test_keep_alive(void)
{
	static const struct {
		const char	*value;
		long long	 ns;
	} good[] = {
		{ "\"5m\"", 300000000000LL }, { "\"1h30m\"", 5400000000000LL },
		{ "\"1.5h\"", 5400000000000LL }, { "\"300ms\"", 300000000LL },
		{ "\"0\"", 0 }, { "\"-1m\"", -60000000000LL },
		{ "\"+2s\"", 2000000000LL }, { "\"1\xc2\xb5s\"", 1000 },
		{ "\"1h1m1s1ms1us1ns\"", 3661001001001LL }, { "300", 300000000000LL },
		{ "0.5", 500000000LL }, { "0", 0 }, { "-1", -1000000000LL },
		{ "1e2", 100000000000LL }, { "\".5s\"", 500000000LL },
	};
	static const char *const bad[] = {
		"\"-1\"", "\"5\"", "\"\"", "\"5mss\"", "\"m\"", "\".s\"",
		"\"1d\"", "1e300", "true", "[1]", "\"9999999999h\"",
		"\"5\\u006d\"",
	};
	struct body	b;
	struct buf	out;
	char		in[128], err[200];
	const char	*s;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		snprintf(in, sizeof in, "{\"keep_alive\":%s}", good[i].value);
		if (!tap_ok(rd(&b, in, NATIVE | BODY_F(BODY_KEEP_ALIVE), err) == 0,
		    "keep_alive %s is read", good[i].value)) {
			printf("#   %s\n", err);
			continue;
		}
		tap_is_int(body_int(&b, BODY_KEEP_ALIVE, 7), good[i].ns,
		    "keep_alive %s in nanoseconds", good[i].value);
		body_free(&b);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(in, sizeof in, "{\"keep_alive\":%s}", bad[i]);
		refused(bad[i], in, strlen(in), NATIVE | BODY_F(BODY_KEEP_ALIVE),
		    "\"keep_alive\" must be a number of seconds or a duration");
	}
	tap_ok(rd(&b, "{\"keep_alive\":null}", NATIVE | BODY_F(BODY_KEEP_ALIVE),
	    err) == 0 && body_int(&b, BODY_KEEP_ALIVE, 7) == 7,
	    "a null keep_alive is the default");
	body_free(&b);

	s = "{\"keep_alive\":\"2h\",\"model\":\"m\"}";
	buf_init(&out);
	rd(&b, s, NATIVE | BODY_F(BODY_KEEP_ALIVE), err);
	body_set_int(&b, BODY_KEEP_ALIVE, 1800000000000LL);
	body_render(&b, s, &out);
	tap_is_str(buf_cstr(&out), "{\"keep_alive\":\"1800s\",\"model\":\"m\"}",
	    "a keep_alive cut to a bound is written as a duration");
	body_free(&b);
	buf_free(&out);
	s = "{\"KEEP_ALIVE\":-1}";
	buf_init(&out);
	rd(&b, s, NATIVE | BODY_F(BODY_KEEP_ALIVE), err);
	body_set_null(&b, BODY_KEEP_ALIVE);
	body_render(&b, s, &out);
	tap_is_str(buf_cstr(&out), "{\"keep_alive\":null}",
	    "a keep_alive dropped is null, the backend's default");
	body_free(&b);
	buf_free(&out);
}

int
main(void)
{
	test_folding();
	test_values();
	test_grammar();
	test_render();
	test_keep_alive();
	test_found();
	return tap_done();
}
