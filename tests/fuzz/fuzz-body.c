/*
 * fuzz-body.c: a libFuzzer harness for the request body reader.
 *
 * The gateway checks the fields it acts on in the body it read, and
 * sends the body that body_render() writes: if the two could disagree,
 * a client could pass a check with one value and have the backend act
 * on another. So each input is read, both looking for every field and
 * for a set of fields drawn from a hash of the input (as a route does),
 * and every body accepted is rendered, read back and compared: as it
 * is, the rendered body must say the same and render to itself; with
 * edits, it must say what was set and keep what was not. The spans the
 * reader notes must frame what they claim to, and its messages must be
 * one line.
 *
 * Beside that, jansson is a second, independent reader of the grammar:
 * a body one accepts the other must accept too, save for the few
 * things on which they knowingly differ (jansson's limits on numbers
 * and depth, its refusal of lone surrogate escapes, and its taking a
 * NUL byte after a number for the number's end).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "body.h"
#include "buf.h"
#include "fuzz.h"

#define FUZZ_ALL	(BODY_F(BODY_NFIELDS) - 1)
#define FUZZ_ERRSIZE	200

static unsigned	fuzz_mask(uint64_t *);
static void	fuzz_check_error(const char *);
static void	fuzz_check_body(const struct body *, const char *, size_t);
static void	fuzz_same_field(const struct body *, const struct body *,
		    enum body_field);
static void	fuzz_same_body(const struct body *, const struct body *);
static void	fuzz_render(const struct body *, const char *, unsigned,
		    uint64_t *);
static void	fuzz_jansson(const char *, size_t);

/*
 * A set of fields as a route asks for them: a member of an object only
 * with the object, since the reader finds members inside it alone.
 */
static unsigned
fuzz_mask(uint64_t *rng)
{
	unsigned	m = (unsigned)fuzz_next(rng) & FUZZ_ALL;

	if (m & (BODY_F(BODY_NUM_PREDICT) | BODY_F(BODY_NUM_CTX)))
		m |= BODY_F(BODY_OPTIONS);
	if (m & BODY_F(BODY_INCLUDE_USAGE))
		m |= BODY_F(BODY_STREAM_OPTIONS);
	return m;
}

/* A refusal's reason goes into a 400 as it is: one line, not empty. */
static void
fuzz_check_error(const char *err)
{
	size_t	len = strnlen(err, FUZZ_ERRSIZE);

	FUZZ_CHECK(len > 0);
	FUZZ_CHECK(len < FUZZ_ERRSIZE);
	FUZZ_CHECK(strchr(err, '\n') == NULL);
	FUZZ_CHECK(strchr(err, '\r') == NULL);
}

/* What the gateway relies on in a body that was read from n bytes at p. */
static void
fuzz_check_body(const struct body *b, const char *p, size_t n)
{
	FUZZ_CHECK(b->end <= n);
	FUZZ_CHECK(b->start < b->end);
	FUZZ_CHECK(p[b->start] == '{');
	FUZZ_CHECK(p[b->end - 1] == '}');
	if (b->model != NULL) {
		FUZZ_CHECK(b->model[0] != '\0');
		/* BODY_MODEL_MAX is the longest kept, not the size kept in. */
		FUZZ_CHECK(strlen(b->model) <= BODY_MODEL_MAX);
	}
	for (int f = 0; f < BODY_NFIELDS; f++) {
		const struct body_value	*v = &b->f[f];
		const struct body_value	*o = NULL;
		size_t			 vlen = v->val_end - v->val;

		if (!(b->fields & BODY_F(f))) {
			FUZZ_CHECK(v->type == BODY_ABSENT);
			continue;
		}
		if (v->type == BODY_ABSENT)
			continue;
		FUZZ_CHECK(!v->set);
		FUZZ_CHECK(b->start < v->key && v->key < v->key_end);
		FUZZ_CHECK(v->key_end < v->val && v->val < v->val_end);
		FUZZ_CHECK(v->val_end < b->end);
		FUZZ_CHECK(p[v->key] == '"' && p[v->key_end - 1] == '"');
		/* The value's span is the value, no more and no less. */
		switch (v->type) {
		case BODY_NULL:
			FUZZ_CHECK(vlen == 4 &&
			    memcmp(p + v->val, "null", 4) == 0);
			break;
		case BODY_BOOL:
			FUZZ_CHECK(v->num == 0 || v->num == 1);
			FUZZ_CHECK(memcmp(p + v->val, v->num ? "true" : "false",
			    vlen) == 0 && vlen == (v->num ? 4u : 5u));
			break;
		case BODY_INT:
			FUZZ_CHECK(p[v->val] == '-' ||
			    (p[v->val] >= '0' && p[v->val] <= '9'));
			FUZZ_CHECK(p[v->val_end - 1] >= '0' &&
			    p[v->val_end - 1] <= '9');
			break;
		case BODY_STRING:
			FUZZ_CHECK(f == BODY_MODEL || f == BODY_NAME);
			FUZZ_CHECK(vlen >= 2 && p[v->val] == '"' &&
			    p[v->val_end - 1] == '"');
			break;
		case BODY_OBJECT:
			FUZZ_CHECK(f == BODY_OPTIONS ||
			    f == BODY_STREAM_OPTIONS);
			FUZZ_CHECK(p[v->val] == '{' &&
			    p[v->val_end - 1] == '}');
			break;
		default:
			FUZZ_CHECK(!"a type a field cannot have");
		}
		/* A member of an object lies inside that object's value. */
		if (f == BODY_NUM_PREDICT || f == BODY_NUM_CTX)
			o = &b->f[BODY_OPTIONS];
		else if (f == BODY_INCLUDE_USAGE)
			o = &b->f[BODY_STREAM_OPTIONS];
		if (o != NULL) {
			FUZZ_CHECK(o->type == BODY_OBJECT);
			FUZZ_CHECK(o->val < v->key && v->val_end < o->val_end);
		}
	}
	/* The model is the one of "model" or "name" that names one. */
	if (b->model != NULL)
		FUZZ_CHECK(b->f[BODY_MODEL].type == BODY_STRING ||
		    b->f[BODY_NAME].type == BODY_STRING);
}

/* Both say the same of field f. */
static void
fuzz_same_field(const struct body *a, const struct body *b, enum body_field f)
{
	FUZZ_CHECK(a->f[f].type == b->f[f].type);
	FUZZ_CHECK(body_int(a, f, -42) == body_int(b, f, -42));
	FUZZ_CHECK(body_bool(a, f, 7) == body_bool(b, f, 7));
}

static void
fuzz_same_body(const struct body *a, const struct body *b)
{
	FUZZ_CHECK(a->fields == b->fields);
	for (int f = 0; f < BODY_NFIELDS; f++)
		fuzz_same_field(a, b, f);
	FUZZ_CHECK((a->model == NULL) == (b->model == NULL));
	FUZZ_CHECK(a->model == NULL || strcmp(a->model, b->model) == 0);
	FUZZ_CHECK(a->top_members == b->top_members);
	FUZZ_CHECK(a->options_members == b->options_members);
	FUZZ_CHECK(a->stream_options_members == b->stream_options_members);
}

/*
 * Render the body b read from p, as it is and then with edits drawn
 * from rng, and read back what was rendered.
 */
static void
fuzz_render(const struct body *b, const char *p, unsigned mask,
    uint64_t *rng)
{
	static const enum body_field	ints[] = { BODY_NUM_PREDICT,
					    BODY_NUM_CTX, BODY_MAX_TOKENS,
					    BODY_MAX_COMPLETION_TOKENS,
					    BODY_MAX_OUTPUT_TOKENS };
	static const enum body_field	bools[] = { BODY_STREAM,
					    BODY_INCLUDE_USAGE };
	struct body			 r, again, e;
	struct buf			 out, out2;
	char				 err[FUZZ_ERRSIZE];
	size_t				 i;

	/* As it is: the rendered body says the same and renders to itself. */
	buf_init(&out);
	buf_init(&out2);
	body_render(b, p, &out);
	if (body_read(&r, buf_ptr(&out), buf_used(&out), mask, err,
	    sizeof err) != 0) {
		fprintf(stderr, "rendered: %.*s\nrefused: %s\n",
		    (int)buf_used(&out), buf_ptr(&out), err);
		FUZZ_CHECK(!"the rendered body is read");
	}
	fuzz_check_body(&r, buf_ptr(&out), buf_used(&out));
	FUZZ_CHECK(r.start == 0 && r.end == buf_used(&out));
	fuzz_same_body(b, &r);
	body_render(&r, buf_ptr(&out), &out2);
	FUZZ_CHECK(buf_used(&out2) == buf_used(&out));
	FUZZ_CHECK(memcmp(buf_ptr(&out2), buf_ptr(&out), buf_used(&out)) == 0);
	body_free(&r);
	buf_reset(&out);
	buf_reset(&out2);

	/* With edits, of the fields the route reads, as the gateway makes. */
	e = *b;
	for (i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		uint64_t	x = fuzz_next(rng);

		if (!(mask & BODY_F(ints[i])) || (x & 1))
			continue;
		/* Small limits mostly, and now and then the extremes. */
		switch ((x >> 1) & 7) {
		case 0:
			body_set_int(&e, ints[i], INT64_MIN);
			break;
		case 1:
			body_set_int(&e, ints[i], INT64_MAX);
			break;
		default:
			body_set_int(&e, ints[i],
			    (int64_t)(x >> 8) % 100000 - 10);
			break;
		}
	}
	for (i = 0; i < sizeof bools / sizeof bools[0]; i++) {
		uint64_t	x = fuzz_next(rng);

		if ((mask & BODY_F(bools[i])) && !(x & 1))
			body_set_bool(&e, bools[i], (int)((x >> 1) & 1));
	}
	body_render(&e, p, &out);
	if (body_read(&r, buf_ptr(&out), buf_used(&out), mask, err,
	    sizeof err) != 0) {
		fprintf(stderr, "edited: %.*s\nrefused: %s\n",
		    (int)buf_used(&out), buf_ptr(&out), err);
		FUZZ_CHECK(!"the edited body is read");
	}
	fuzz_check_body(&r, buf_ptr(&out), buf_used(&out));
	for (int f = 0; f < BODY_NFIELDS; f++) {
		if (e.f[f].set && r.f[f].type == BODY_BOOL) {
			FUZZ_CHECK(body_bool(&r, f, 7) == (int)e.f[f].set_num);
			continue;
		}
		if (e.f[f].set) {
			FUZZ_CHECK(r.f[f].type == BODY_INT);
			FUZZ_CHECK(body_int(&r, f, -42) == e.f[f].set_num);
			continue;
		}
		/* An object a member was set in may have been made for it. */
		if ((f == BODY_OPTIONS && (e.f[BODY_NUM_PREDICT].set ||
		    e.f[BODY_NUM_CTX].set)) || (f == BODY_STREAM_OPTIONS &&
		    e.f[BODY_INCLUDE_USAGE].set)) {
			FUZZ_CHECK(r.f[f].type == BODY_OBJECT);
			continue;
		}
		fuzz_same_field(b, &r, f);
	}
	FUZZ_CHECK((b->model == NULL) == (r.model == NULL));
	FUZZ_CHECK(b->model == NULL || strcmp(b->model, r.model) == 0);
	/* What was rendered with edits is canonical too. */
	body_render(&r, buf_ptr(&out), &out2);
	FUZZ_CHECK(buf_used(&out2) == buf_used(&out));
	FUZZ_CHECK(memcmp(buf_ptr(&out2), buf_ptr(&out), buf_used(&out)) == 0);
	FUZZ_CHECK(body_read(&again, buf_ptr(&out2), buf_used(&out2), mask, err,
	    sizeof err) == 0);
	body_free(&again);
	body_free(&r);
	buf_free(&out);
	buf_free(&out2);
}

/*
 * jansson and the reader (looking for no field, so judging the grammar
 * alone) must agree on which bytes are a JSON object.
 */
static void
fuzz_jansson(const char *p, size_t n)
{
	struct body	b;
	char		err[FUZZ_ERRSIZE];
	json_error_t	jerr;
	json_t		*j;
	int		ours;

	ours = body_read(&b, p, n, 0, err, sizeof err) == 0;
	if (ours)
		body_free(&b);
	j = json_loadb(p, n, JSON_ALLOW_NUL, &jerr);
	if (j != NULL) {
		/*
		 * jansson 2.14 takes a NUL byte just after a number for
		 * the number's end, and reads on: that laxness is its own.
		 */
		if (json_is_object(j) && !ours && memchr(p, '\0', n) == NULL) {
			fprintf(stderr, "jansson reads it; we say: %s\n", err);
			FUZZ_CHECK(!"a body jansson reads is read");
		}
		json_decref(j);
		return;
	}
	if (!ours)
		return;
	switch (json_error_code(&jerr)) {
	case json_error_numeric_overflow:
	case json_error_stack_overflow:
	case json_error_null_byte_in_key:
		return;
	default:
		break;
	}
	/* Go reads a lone surrogate escape as U+FFFD; jansson refuses it. */
	if (strstr(jerr.text, "invalid Unicode") != NULL)
		return;
	fprintf(stderr, "jansson: %s (at %d)\n", jerr.text, jerr.position);
	FUZZ_CHECK(!"a body we read, jansson reads");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*p = (const char *)data;
	uint64_t	 rng = fuzz_hash(data, size) | 1;
	struct body	 all, some;
	char		 err[FUZZ_ERRSIZE];
	unsigned	 mask = fuzz_mask(&rng);
	int		 rc_all, rc_some;

	memset(err, 'X', sizeof err);
	rc_all = body_read(&all, p, size, FUZZ_ALL, err, sizeof err);
	if (rc_all != 0)
		fuzz_check_error(err);
	else {
		fuzz_check_body(&all, p, size);
		fuzz_render(&all, p, FUZZ_ALL, &rng);
	}

	memset(err, 'X', sizeof err);
	rc_some = body_read(&some, p, size, mask, err, sizeof err);
	if (rc_some != 0) {
		fuzz_check_error(err);
		/* Looking for fewer fields never refuses more. */
		FUZZ_CHECK(rc_all != 0);
	} else {
		fuzz_check_body(&some, p, size);
		fuzz_render(&some, p, mask, &rng);
		if (rc_all == 0) {
			FUZZ_CHECK(some.start == all.start &&
			    some.end == all.end);
			for (int f = 0; f < BODY_NFIELDS; f++) {
				if (mask & BODY_F(f))
					fuzz_same_field(&all, &some, f);
			}
		}
		body_free(&some);
	}
	if (rc_all == 0)
		body_free(&all);

	fuzz_jansson(p, size);
	return 0;
}
