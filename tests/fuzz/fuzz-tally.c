/*
 * fuzz-tally.c: a libFuzzer harness for the streaming token counter.
 *
 * The counter sees a response the way the network delivers it, in
 * pieces of any size, and must reach the same counts wherever the
 * pieces begin and end: a boundary that moved a count would bill a user
 * for tokens they did not use, or let them use tokens unbilled. Each
 * input is therefore read as NDJSON and as server-sent events, and in
 * each format three ways: whole, one byte at a time, and in pieces of
 * sizes drawn from a hash of the input (empty pieces included). The
 * three must agree on every count and on the state of the scanner.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"
#include "fuzz.h"

static void	fuzz_check_tally(const struct tally *, size_t);
static void	fuzz_same_tally(const struct tally *, const struct tally *);
static void	fuzz_format(enum tally_format, const char *, size_t,
		    uint64_t *);

/* What the accounting relies on, whatever the bytes were. */
static void
fuzz_check_tally(const struct tally *t, size_t n)
{
	FUZZ_CHECK(t->prompt_tokens >= -1);
	FUZZ_CHECK(t->completion_tokens >= -1);
	/* Each counted document ends with a byte of its own. */
	FUZZ_CHECK(t->chunks <= n);
	FUZZ_CHECK(t->depth >= 0);
	FUZZ_CHECK(t->keylen <= TALLY_KEY_MAX);
	FUZZ_CHECK(strlen(t->lastkey) < TALLY_KEY_MAX);
	FUZZ_CHECK(t->plen < sizeof t->prefix);
}

static void
fuzz_same_tally(const struct tally *a, const struct tally *b)
{
	FUZZ_CHECK(a->prompt_tokens == b->prompt_tokens);
	FUZZ_CHECK(a->completion_tokens == b->completion_tokens);
	FUZZ_CHECK(a->chunks == b->chunks);
	FUZZ_CHECK(a->done == b->done);
	FUZZ_CHECK(a->error == b->error);
	/* The scanner must be in the same place, or later counts differ. */
	FUZZ_CHECK(a->depth == b->depth);
	FUZZ_CHECK(a->in_string == b->in_string);
	FUZZ_CHECK(a->in_number == b->in_number);
	FUZZ_CHECK(a->literal == b->literal);
	FUZZ_CHECK(a->in_key == b->in_key);
	FUZZ_CHECK(strcmp(a->lastkey, b->lastkey) == 0);
}

static void
fuzz_format(enum tally_format f, const char *p, size_t n, uint64_t *rng)
{
	struct tally	whole, bytes, pieces;
	size_t		i, piece;

	tally_init(&whole, f);
	tally_feed(&whole, p, n);
	fuzz_check_tally(&whole, n);

	tally_init(&bytes, f);
	for (i = 0; i < n; i++)
		tally_feed(&bytes, p + i, 1);
	fuzz_check_tally(&bytes, n);
	fuzz_same_tally(&whole, &bytes);

	/* Mostly short pieces, where boundaries fall inside tokens. */
	tally_init(&pieces, f);
	for (i = 0; i < n; i += piece) {
		uint64_t	r = fuzz_next(rng);

		piece = (r & 0xf) == 0 ? (size_t)(r >> 8) % 4096 :
		    (size_t)(r >> 8) % 12;
		if (piece > n - i)
			piece = n - i;
		tally_feed(&pieces, p + i, piece);
	}
	fuzz_check_tally(&pieces, n);
	fuzz_same_tally(&whole, &pieces);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t	rng = fuzz_hash(data, size) | 1;

	fuzz_format(TALLY_JSON, (const char *)data, size, &rng);
	fuzz_format(TALLY_SSE, (const char *)data, size, &rng);
	return 0;
}
