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
#include "utf8.h"
#include "xmalloc.h"

static int	escape_unsafe(uint32_t);

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
		if ((n = utf8_decode(p, SIZE_MAX, &c)) == 0) {
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
		if ((n = utf8_decode(p, SIZE_MAX, &c)) == 0) {
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
		if ((n = utf8_decode(p, SIZE_MAX, &c)) == 0) {
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
