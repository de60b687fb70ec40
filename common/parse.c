/*
 * parse.c: strict parsers for numbers, durations, sizes and booleans.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "parse.h"

int
parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t	v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * Split "123unit" into the number and the unit; the unit is compared by
 * the callers. Returns -1 if there are no digits or the number overflows.
 */
static int
parse_number_unit(const char *s, uint64_t *num, const char **unit)
{
	uint64_t	v = 0;
	const char	*p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p == s)
		return -1;
	*num = v;
	*unit = p;
	return 0;
}

static int
parse_scaled(uint64_t v, uint64_t scale, uint64_t *out)
{
	if (scale != 0 && v > UINT64_MAX / scale)
		return -1;
	*out = v * scale;
	return 0;
}

int
parse_duration_ms(const char *s, uint64_t *out)
{
	static const struct {
		const char	*unit;
		uint64_t	 ms;
	} units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	uint64_t	 v;
	const char	*unit;

	if (parse_number_unit(s, &v, &unit) != 0)
		return -1;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(unit, units[i].unit) == 0)
			return parse_scaled(v, units[i].ms, out);
	}
	return -1;
}

int
parse_size(const char *s, uint64_t *out)
{
	uint64_t	 v, scale;
	const char	*unit;

	if (parse_number_unit(s, &v, &unit) != 0)
		return -1;
	if (strcmp(unit, "") == 0 || strcmp(unit, "B") == 0)
		scale = 1;
	else if (strcasecmp(unit, "K") == 0)
		scale = 1024;
	else if (strcasecmp(unit, "M") == 0)
		scale = 1024 * 1024;
	else if (strcasecmp(unit, "G") == 0)
		scale = 1024 * 1024 * 1024;
	else
		return -1;
	return parse_scaled(v, scale, out);
}

int
parse_bool(const char *s, int *out)
{
	if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0 ||
	    strcasecmp(s, "on") == 0 || strcmp(s, "1") == 0) {
		*out = 1;
		return 0;
	}
	if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 ||
	    strcasecmp(s, "off") == 0 || strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	return -1;
}

int
parse_user_name(const char *s)
{
	size_t	n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '.' || s[0] == '-')
		return -1;
	for (; *s != '\0'; s++) {
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && strchr("._-", *s) == NULL)
			return -1;
	}
	return 0;
}

int
parse_model_pattern(const char *s)
{
	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && strchr("._-:/*?[]!", *s) == NULL)
			return -1;
	}
	return 0;
}
