/*
 * tap.h: the Test Anything Protocol for the C unit tests, which run
 * under automake's TAP driver like the integration scripts.
 */
#ifndef OG_TAP_H
#define OG_TAP_H

#include <stdio.h>
#include <string.h>

static int	tap_n, tap_failed;

static inline int
tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>

static inline int
tap_ok(int cond, const char *fmt, ...)
{
	va_list	ap;

	printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		tap_failed++;
	return cond;
}

static inline int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#define tap_is_int(got, want, ...) do {					\
	long long _g = (got), _w = (want);				\
	if (!tap_ok(_g == _w, __VA_ARGS__))				\
		printf("#   got %lld, want %lld\n", _g, _w);		\
} while (0)

#define tap_is_str(got, want, ...) do {					\
	const char *_g = (got), *_w = (want);				\
	if (!tap_ok(_g != NULL && _w != NULL && strcmp(_g, _w) == 0,	\
	    __VA_ARGS__))						\
		printf("#   got '%s', want '%s'\n", _g ? _g : "(null)",	\
		    _w ? _w : "(null)");				\
} while (0)

#endif
