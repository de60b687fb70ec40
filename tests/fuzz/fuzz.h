/*
 * fuzz.h: what the libFuzzer harnesses share: a check that aborts with
 * its line (so libFuzzer keeps the input), and a reproducible stream of
 * numbers drawn from the input itself, so that a failure replays
 * exactly from the saved file.
 */
#ifndef OG_FUZZ_H
#define OG_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define FUZZ_CHECK(e) do {						\
	if (!(e))							\
		fuzz_fail(__FILE__, __LINE__, #e);			\
} while (0)

int		LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static inline void __attribute__((noreturn))
fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
	abort();
}

/*
 * What proxy.c and origin.c rely on in a field either parser accepted:
 * a token for a name, no byte in the value that could end a line early,
 * and no space around it.
 */
static inline void
fuzz_check_field(const struct http_header *h)
{
	FUZZ_CHECK(h->name_len > 0 && strlen(h->name) == h->name_len);
	FUZZ_CHECK(strlen(h->value) == h->value_len);
	for (size_t j = 0; j < h->name_len; j++)
		FUZZ_CHECK(http_token_char((unsigned char)h->name[j]));
	for (size_t j = 0; j < h->value_len; j++) {
		unsigned char	uc = (unsigned char)h->value[j];

		FUZZ_CHECK(uc >= 0x20 || uc == '\t');
		FUZZ_CHECK(uc != 0x7f);
	}
	if (h->value_len > 0) {
		FUZZ_CHECK(h->value[0] != ' ' && h->value[0] != '\t');
		FUZZ_CHECK(h->value[h->value_len - 1] != ' ' &&
		    h->value[h->value_len - 1] != '\t');
	}
}

/* FNV-1a of the input: it decides its own boundaries and limits. */
static inline uint64_t
fuzz_hash(const uint8_t *p, size_t n)
{
	uint64_t	h = UINT64_C(14695981039346656037);

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

/* xorshift64*, seeded from the hash; the state is never zero. */
static inline uint64_t
fuzz_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

#endif
