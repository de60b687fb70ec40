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
