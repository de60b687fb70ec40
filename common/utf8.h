/*
 * utf8.h: decoding one UTF-8 sequence, strictly.
 */
#ifndef OG_UTF8_H
#define OG_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * The length of the valid UTF-8 sequence at p, reading at most n bytes,
 * with its code point in *cp; 0 when p does not start one. Overlong
 * forms, surrogates and code points past U+10FFFF are not valid (RFC
 * 3629). Reading stops at the first byte that is not a continuation,
 * so a NUL-terminated string may be passed with n = SIZE_MAX.
 */
size_t	utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);

#endif
