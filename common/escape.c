/*
 * escape.c: strings made safe to show on a terminal (see escape.h for
 * what is escaped and how).
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "escape.h"
#include "xmalloc.h"

static size_t	escape_decode(const unsigned char *, uint32_t *);
static int	escape_unsafe(uint32_t);

/*
 * The length of the valid UTF-8 sequence at s, with its code point in
 * *cp; 0 when s does not start one. Overlong forms, surrogates and code
 * points past U+10FFFF are not valid: a terminal may still decode them.
 * A NUL is never a continuation byte, so nothing past the end is read.
 */
static size_t
escape_decode(const unsigned char *s, uint32_t *cp)
{
	uint32_t	c, min;
	size_t		n;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		c = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		c = s[0] & 0x0f;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		c = s[0] & 0x07;
		min = 0x10000;
	} else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* What a terminal acts on instead of showing. */
static int
escape_unsafe(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f) ||
	    (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) ||
	    c == 0x2028 || c == 0x2029;
}

char *
escape_string(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	char			*out, *o;
	uint32_t		 c;
	size_t			 n;

	/* The most a byte becomes is \xNN. */
	out = o = xmalloc(4 * strlen(s) + 1);
	while (*p != '\0') {
		if ((n = escape_decode(p, &c)) == 0) {
			o += sprintf(o, "\\x%02x", *p++);
			continue;
		}
		if (!escape_unsafe(c)) {
			memcpy(o, p, n);
			o += n;
		} else if (c == 0x1b)
			o += sprintf(o, "\\e");
		else if (c == '\n')
			o += sprintf(o, "\\n");
		else if (c == '\r')
			o += sprintf(o, "\\r");
		else if (c == '\t')
			o += sprintf(o, "\\t");
		else if (c < 0x80)
			o += sprintf(o, "\\x%02x", (unsigned)c);
		else
			o += sprintf(o, "\\u%04x", (unsigned)c);
		p += n;
	}
	*o = '\0';
	return out;
}

size_t
escape_fit(const char *s, int width, int *used)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 c;
	size_t			 n;
	int			 cols = 0, w;

	while (*p != '\0') {
		if ((n = escape_decode(p, &c)) == 0) {
			n = 1;
			w = 1;
		} else if ((w = wcwidth((wchar_t)c)) < 0)
			w = 1;
		if (cols > width - w)
			break;
		cols += w;
		p += n;
	}
	if (used != NULL)
		*used = cols;
	return (size_t)(p - (const unsigned char *)s);
}

int
escape_width(const char *s)
{
	int	cols;

	escape_fit(s, INT_MAX, &cols);
	return cols;
}

char *
escape_json(const char *json)
{
	const unsigned char	*p = (const unsigned char *)json;
	char			*out, *o;
	uint32_t		 c;
	size_t			 n;

	/*
	 * Outside strings a JSON text is ASCII without DEL, and the
	 * encoder already escaped the C0 controls inside them (those left
	 * are the layout's newlines): what is rewritten here lies inside a
	 * string, where \u means the same character. DEL, the most a byte
	 * can become, is \u007f.
	 */
	out = o = xmalloc(6 * strlen(json) + 1);
	while (*p != '\0') {
		if ((n = escape_decode(p, &c)) == 0) {
			o += sprintf(o, "\\ufffd");
			p++;
			continue;
		}
		if (c >= 0x7f && escape_unsafe(c))
			o += sprintf(o, "\\u%04x", (unsigned)c);
		else {
			memcpy(o, p, n);
			o += n;
		}
		p += n;
	}
	*o = '\0';
	return out;
}
