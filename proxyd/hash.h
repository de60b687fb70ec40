/*
 * hash.h: the keyed hash of the daemon's tables that clients fill.
 *
 * A table whose keys a client chooses (addresses, end-user names) is
 * hashed with a seed drawn at start, so that nobody can pick keys that
 * all land in one bucket. The mixing is FNV-1a's with a final avalanche.
 */
#ifndef OG_HASH_H
#define OG_HASH_H

#include <stddef.h>
#include <stdint.h>

/* A seed from the kernel, or from what varies at worst. */
uint64_t	hash_seed(void);

static inline uint64_t
hash_keyed(uint64_t seed, const void *key, size_t len)
{
	const unsigned char	*p = key;
	uint64_t		 h = seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
		h ^= h >> 29;
	}
	h ^= h >> 32;
	h *= UINT64_C(0x9e3779b97f4a7c15);
	return h ^ (h >> 29);
}

#endif
