/*
 * hash.c: the seed of the keyed hash (hash.h).
 */
#include <sys/random.h>

#include <stdint.h>

#include "hash.h"
#include "loop.h"

uint64_t
hash_seed(void)
{
	uint64_t	seed;

	if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
		seed = (uint64_t)(uintptr_t)&seed ^ loop_now();
	return seed;
}
