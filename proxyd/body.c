/*
 * body.c: reading a request body as the backend will read it.
 *
 * One pass over the bytes checks the whole body against JSON's grammar
 * (RFC 8259, as strict as Go's scanner), refuses what is not UTF-8, and
 * notes where each field the gateway acts on is, as Go's decoder would
 * find it. Nesting is tracked with one bit a level, so the memory used
 * is the same for a body of two bytes and one of a gigabyte.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "buf.h"
#include "utf8.h"
#include "xmalloc.h"

/* Which object a key belongs to, for the fields looked for. */
enum body_ctx {
	CTX_NONE,
	CTX_TOP,
	CTX_OPTIONS,
	CTX_STREAM_OPTIONS,
};

static const struct body_field_info {
	const char	*name;		/* the key, as the backend spells it */
	const char	*path;		/* for messages */
	enum body_ctx	 ctx;		/* the object it is a member of */
	enum body_type	 type;		/* what it must hold, besides null */
} body_fields[BODY_NFIELDS] = {
	[BODY_MODEL] = { "model", "model", CTX_TOP, BODY_STRING },
	[BODY_NAME] = { "name", "name", CTX_TOP, BODY_STRING },
	[BODY_STREAM] = { "stream", "stream", CTX_TOP, BODY_BOOL },
	[BODY_STREAM_OPTIONS] = { "stream_options", "stream_options", CTX_TOP,
	    BODY_OBJECT },
	[BODY_INCLUDE_USAGE] = { "include_usage",
	    "stream_options.include_usage", CTX_STREAM_OPTIONS, BODY_BOOL },
	[BODY_OPTIONS] = { "options", "options", CTX_TOP, BODY_OBJECT },
	[BODY_NUM_PREDICT] = { "num_predict", "options.num_predict",
	    CTX_OPTIONS, BODY_INT },
	[BODY_NUM_CTX] = { "num_ctx", "options.num_ctx", CTX_OPTIONS,
	    BODY_INT },
	[BODY_MAX_TOKENS] = { "max_tokens", "max_tokens", CTX_TOP, BODY_INT },
	[BODY_MAX_COMPLETION_TOKENS] = { "max_completion_tokens",
	    "max_completion_tokens", CTX_TOP, BODY_INT },
	[BODY_MAX_OUTPUT_TOKENS] = { "max_output_tokens", "max_output_tokens",
	    CTX_TOP, BODY_INT },
	[BODY_KEEP_ALIVE] = { "keep_alive", "keep_alive", CTX_TOP,
	    BODY_DURATION },
};

/* Longer keys match no field, so they need not be folded. */
#define BODY_KEY_MAX	32

struct body_scan {
	const char	*p;
	size_t		 len;
	size_t		 pos;
	struct body	*b;
	char		*err;
	size_t		 errsize;
	unsigned	 depth;
	/* Whether each level is an array (1) or an object, a bit a level. */
	unsigned char	 arrays[BODY_MAX_DEPTH / 8 + 1];
	/* For the first levels: the object's kind, and the field being read. */
	enum body_ctx	 ctx[3];
	int		 pending[3];
	size_t		 val_start[3];
	char		 model[BODY_MODEL_MAX + 1], name[BODY_MODEL_MAX + 1];
};

static int
body_fail(struct body_scan *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
body_fail(struct body_scan *s, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(s->err, s->errsize, fmt, ap);
	va_end(ap);
	return -1;
}

static int
body_syntax(struct body_scan *s)
{
	if (s->pos >= s->len)
		return body_fail(s, "the request body is not valid JSON: it "
		    "ends too soon");
	return body_fail(s, "the request body is not valid JSON (at byte %zu)",
	    s->pos);
}

static void
body_skip_ws(struct body_scan *s)
{
	while (s->pos < s->len && strchr(" \t\n\r", s->p[s->pos]) != NULL &&
	    s->p[s->pos] != '\0')
		s->pos++;
}

static int
body_hex(const char *p, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char	c = p[i];

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

/*
 * Check the string that starts at the quote at s->pos and move past it.
 * Its contents (between the quotes) are [*start, *end).
 */
static int
body_scan_string(struct body_scan *s, size_t *start, size_t *end)
{
	const unsigned char	*p = (const unsigned char *)s->p;
	uint32_t		 cp;
	size_t			 n;

	*start = ++s->pos;
	while (s->pos < s->len) {
		unsigned char	c = p[s->pos];

		if (c == '"') {
			*end = s->pos++;
			return 0;
		}
		if (c == '\\') {
			if (s->pos + 1 >= s->len)
				return body_syntax(s);
			switch (p[s->pos + 1]) {
			case '"': case '\\': case '/': case 'b': case 'f':
			case 'n': case 'r': case 't':
				s->pos += 2;
				continue;
			case 'u':
				if (s->pos + 6 > s->len ||
				    body_hex(s->p + s->pos + 2, &cp) != 0)
					return body_syntax(s);
				s->pos += 6;
				continue;
			default:
				return body_syntax(s);
			}
		}
		if (c < 0x20)
			return body_syntax(s);
		if ((n = utf8_decode(p + s->pos, s->len - s->pos, &cp)) == 0)
			return body_fail(s, "the request body is not valid "
			    "UTF-8 (at byte %zu)", s->pos);
		s->pos += n;
	}
	return body_syntax(s);
}

/*
 * The next code point of a checked string's contents, as Go decodes it:
 * a lone surrogate escape becomes U+FFFD.
 */
static uint32_t
body_next_rune(const char *p, size_t *i, size_t end)
{
	uint32_t	cp, lo;
	size_t		n;

	if (p[*i] != '\\') {
		n = utf8_decode((const unsigned char *)p + *i, end - *i, &cp);
		*i += n;
		return cp;
	}
	switch (p[*i + 1]) {
	case 'b': *i += 2; return '\b';
	case 'f': *i += 2; return '\f';
	case 'n': *i += 2; return '\n';
	case 'r': *i += 2; return '\r';
	case 't': *i += 2; return '\t';
	case 'u':
		break;
	default:
		*i += 2;
		return (unsigned char)p[*i - 1];
	}
	body_hex(p + *i + 2, &cp);
	*i += 6;
	if (cp >= 0xd800 && cp < 0xdc00 && *i + 6 <= end && p[*i] == '\\' &&
	    p[*i + 1] == 'u' && body_hex(p + *i + 2, &lo) == 0 &&
	    lo >= 0xdc00 && lo <= 0xdfff) {
		*i += 6;
		return 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (cp >= 0xd800 && cp <= 0xdfff)
		return 0xfffd;
	return cp;
}

/*
 * Fold a code point as Go's encoding/json folds a key: ASCII letters to
 * upper case, and any other rune r to ToUpper(ToLower(r)). Of all of
 * Unicode, four runes fold to ASCII that way: U+0130 and U+0131 to 'I',
 * U+017F to 'S', U+212A to 'K'. Returns 0 for a rune that folds to
 * something outside ASCII (it can match no field of ours).
 */
static int
body_fold(uint32_t r)
{
	if (r >= 'a' && r <= 'z')
		return (int)(r - 'a' + 'A');
	if (r > 0 && r < 0x80)
		return (int)r;
	switch (r) {
	case 0x130:
	case 0x131:
		return 'I';
	case 0x17f:
		return 'S';
	case 0x212a:
		return 'K';
	}
	return 0;
}

/*
 * A key's folded form in out (BODY_KEY_MAX + 1 bytes); *exact says if it
 * was spelled as ASCII with no escape. Returns -1 if it can match no
 * field.
 */
static int
body_key_fold(const char *p, size_t start, size_t end, char *out, int *exact)
{
	size_t	i = start, n = 0;

	*exact = 1;
	while (i < end) {
		uint32_t	r;
		int		c;

		if ((unsigned char)p[i] >= 0x80 || p[i] == '\\')
			*exact = 0;
		r = body_next_rune(p, &i, end);
		if ((c = body_fold(r)) == 0 || n == BODY_KEY_MAX)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

/*
 * Decode a checked string's contents into out (size bytes). Returns 0,
 * -1 if it does not fit, or -2 if it holds a NUL.
 */
static int
body_decode(const char *p, size_t start, size_t end, char *out, size_t size)
{
	size_t	i = start, n = 0;

	while (i < end) {
		uint32_t	r = body_next_rune(p, &i, end);
		char		u[4];
		size_t		len;

		if (r == 0)
			return -2;
		if (r < 0x80) {
			u[0] = (char)r;
			len = 1;
		} else if (r < 0x800) {
			u[0] = (char)(0xc0 | (r >> 6));
			u[1] = (char)(0x80 | (r & 0x3f));
			len = 2;
		} else if (r < 0x10000) {
			u[0] = (char)(0xe0 | (r >> 12));
			u[1] = (char)(0x80 | ((r >> 6) & 0x3f));
			u[2] = (char)(0x80 | (r & 0x3f));
			len = 3;
		} else {
			u[0] = (char)(0xf0 | (r >> 18));
			u[1] = (char)(0x80 | ((r >> 12) & 0x3f));
			u[2] = (char)(0x80 | ((r >> 6) & 0x3f));
			u[3] = (char)(0x80 | (r & 0x3f));
			len = 4;
		}
		if (n + len >= size)
			return -1;
		memcpy(out + n, u, len);
		n += len;
	}
	out[n] = '\0';
	return 0;
}

static int
body_scan_number(struct body_scan *s)
{
	const char	*p = s->p;
	size_t		 start = s->pos;

	if (s->pos < s->len && p[s->pos] == '-')
		s->pos++;
	if (s->pos >= s->len)
		return body_syntax(s);
	if (p[s->pos] == '0')
		s->pos++;
	else if (p[s->pos] >= '1' && p[s->pos] <= '9') {
		while (s->pos < s->len && p[s->pos] >= '0' && p[s->pos] <= '9')
			s->pos++;
	} else
		return body_syntax(s);
	if (s->pos < s->len && p[s->pos] == '.') {
		s->pos++;
		if (s->pos >= s->len || p[s->pos] < '0' || p[s->pos] > '9')
			return body_syntax(s);
		while (s->pos < s->len && p[s->pos] >= '0' && p[s->pos] <= '9')
			s->pos++;
	}
	if (s->pos < s->len && (p[s->pos] == 'e' || p[s->pos] == 'E')) {
		s->pos++;
		if (s->pos < s->len && (p[s->pos] == '+' || p[s->pos] == '-'))
			s->pos++;
		if (s->pos >= s->len || p[s->pos] < '0' || p[s->pos] > '9')
			return body_syntax(s);
		while (s->pos < s->len && p[s->pos] >= '0' && p[s->pos] <= '9')
			s->pos++;
	}
	return s->pos > start ? 0 : body_syntax(s);
}

/* The double a checked number literal stands for; -1 if out of range. */
static int
body_number_double(const char *p, size_t start, size_t end, double *d)
{
	char	tmp[64], *ep;

	if (end - start >= sizeof tmp)
		return -1;
	memcpy(tmp, p + start, end - start);
	tmp[end - start] = '\0';
	errno = 0;
	*d = strtod(tmp, &ep);
	return errno != 0 || *ep != '\0' ? -1 : 0;
}

/*
 * The integer a checked number literal stands for. Integers must fit in
 * 64 bits; a literal with a fraction or exponent is taken if its value
 * is a whole number that a double holds exactly (as Ollama reads
 * "options" through float64), since 1e3 tokens is a fair way to say 1000.
 */
static int
body_number_int(const char *p, size_t start, size_t end, int64_t *v)
{
	double	 d;
	int	 neg = p[start] == '-';
	uint64_t u = 0;
	size_t	 i;
	int	 whole = 1;

	for (i = start; i < end; i++) {
		if (p[i] == '.' || p[i] == 'e' || p[i] == 'E')
			whole = 0;
	}
	if (whole) {
		for (i = start + (size_t)neg; i < end; i++) {
			unsigned	digit = (unsigned)(p[i] - '0');

			if (u > (UINT64_C(1) << 63) / 10 ||
			    u * 10 + digit < u * 10)
				return -1;
			u = u * 10 + digit;
		}
		if (neg ? u > (UINT64_C(1) << 63) : u > (uint64_t)INT64_MAX)
			return -1;
		*v = neg ? (int64_t)(0 - u) : (int64_t)u;
		return 0;
	}
	/* 2^53: past it, not every whole number is a double. */
	if (body_number_double(p, start, end, &d) != 0 || d != floor(d) ||
	    fabs(d) > 9007199254740992.0)
		return -1;
	*v = (int64_t)d;
	return 0;
}

/*
 * A Go duration ("300ms", "1h30m", "-1m", "0"), as time.ParseDuration
 * reads one, in nanoseconds. Returns -1 for what Go refuses.
 */
static int
body_go_duration(const char *s, int64_t *ns)
{
	static const struct {
		const char	*unit;
		uint64_t	 ns;
	} units[] = {
		{ "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 },
		{ "\xce\xbcs", 1000 }, { "ms", 1000000 }, { "s", 1000000000 },
		{ "m", UINT64_C(60000000000) },
		{ "h", UINT64_C(3600000000000) },
	};
	uint64_t	total = 0;
	int		neg = 0;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	if (*s == '\0')
		return -1;
	while (*s != '\0') {
		uint64_t	whole = 0, frac = 0, scale = 1, part;
		size_t		i, n = 0;
		int		digits = 0;

		for (; *s >= '0' && *s <= '9'; s++, digits++) {
			if (whole > (UINT64_MAX - 9) / 10)
				return -1;
			whole = whole * 10 + (uint64_t)(*s - '0');
		}
		if (*s == '.') {
			for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
				/* Digits past nanoseconds add nothing. */
				if (scale < UINT64_C(1000000000000000000)) {
					frac = frac * 10 + (uint64_t)(*s - '0');
					scale *= 10;
				}
			}
		}
		if (digits == 0)
			return -1;
		/* The unit runs to the next digit or '.', as Go reads it. */
		n = strcspn(s, "0123456789.");
		for (i = 0; i < sizeof units / sizeof units[0]; i++) {
			if (strlen(units[i].unit) == n &&
			    strncmp(s, units[i].unit, n) == 0)
				break;
		}
		if (i == sizeof units / sizeof units[0])
			return -1;
		s += n;
		if (whole > (uint64_t)INT64_MAX / units[i].ns)
			return -1;
		part = whole * units[i].ns + (uint64_t)((double)frac *
		    (double)units[i].ns / (double)scale);
		if (part > (uint64_t)INT64_MAX - total)
			return -1;
		total += part;
	}
	*ns = neg ? -(int64_t)total : (int64_t)total;
	return 0;
}

/*
 * keep_alive as Ollama reads it: a number of seconds (a fraction too),
 * or a Go duration string. Returns -1 for what Ollama refuses.
 */
static int
body_duration(const char *p, size_t start, size_t end, int64_t *ns)
{
	char	 tmp[64];
	double	 d;

	if (p[start] == '"') {
		/* Durations are ASCII; an escape or a long one is none. */
		if (end - start - 2 >= sizeof tmp ||
		    memchr(p + start + 1, '\\', end - start - 2) != NULL)
			return -1;
		memcpy(tmp, p + start + 1, end - start - 2);
		tmp[end - start - 2] = '\0';
		return body_go_duration(tmp, ns);
	}
	if (p[start] != '-' && (p[start] < '0' || p[start] > '9'))
		return -1;
	/* Past about 292 years, nanoseconds do not fit in 64 bits. */
	if (body_number_double(p, start, end, &d) != 0 || fabs(d) > 9.2e9)
		return -1;
	*ns = (int64_t)(d * 1e9);
	return 0;
}

/* Which field a key of an object of kind ctx names, or -1. */
static int
body_match_key(struct body_scan *s, enum body_ctx ctx, size_t start,
    size_t end)
{
	char	folded[BODY_KEY_MAX + 1];
	int	exact;

	if (ctx == CTX_NONE ||
	    body_key_fold(s->p, start, end, folded, &exact) != 0)
		return -1;
	for (int f = 0; f < BODY_NFIELDS; f++) {
		const struct body_field_info	*fi = &body_fields[f];
		size_t				 n = strlen(fi->name);

		if (fi->ctx != ctx || !(s->b->fields & BODY_F(f)) ||
		    strlen(folded) != n)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (body_fold((unsigned char)fi->name[i]) != folded[i])
				goto next;
		}
		/*
		 * "options" is a map: Ollama looks its keys up exactly, so
		 * "NUM_PREDICT" is not num_predict to it, though it may be
		 * to another reader. Refuse the doubt.
		 */
		if (ctx == CTX_OPTIONS && (!exact || end - start != n ||
		    memcmp(s->p + start, fi->name, n) != 0))
			return body_fail(s, "\"options\" has a key that only "
			    "differs in case from \"%s\"", fi->name), -2;
		return f;
	next:
		;
	}
	return -1;
}

/* A field's value is complete: check its type and note what it says. */
static int
body_field_done(struct body_scan *s, int f, size_t val, size_t val_end)
{
	const struct body_field_info	*fi = &body_fields[f];
	struct body_value		*v = &s->b->f[f];
	char				 c = s->p[val];

	v->val = val;
	v->val_end = val_end;
	if (c == 'n') {
		v->type = BODY_NULL;
		return 0;
	}
	switch (fi->type) {
	case BODY_STRING:
		if (c != '"')
			return body_fail(s, "\"%s\" must be a string",
			    fi->path);
		switch (body_decode(s->p, val + 1, val_end - 1, f == BODY_NAME ?
		    s->name : s->model, sizeof s->model)) {
		case -1:
			return body_fail(s, "\"%s\" is too long", fi->path);
		case -2:
			/* A C string would end at a NUL that Go reads past. */
			return body_fail(s, "\"%s\" holds a NUL character",
			    fi->path);
		}
		break;
	case BODY_BOOL:
		if (c != 't' && c != 'f')
			return body_fail(s, "\"%s\" must be true or false",
			    fi->path);
		v->num = c == 't';
		break;
	case BODY_INT:
		if (c != '-' && (c < '0' || c > '9'))
			return body_fail(s, "\"%s\" must be a number",
			    fi->path);
		if (body_number_int(s->p, val, val_end, &v->num) != 0)
			return body_fail(s, "\"%s\" must be a whole number "
			    "that fits in 64 bits", fi->path);
		break;
	case BODY_OBJECT:
		if (c != '{')
			return body_fail(s, "\"%s\" must be an object",
			    fi->path);
		break;
	case BODY_DURATION:
		if (body_duration(s->p, val, val_end, &v->num) != 0)
			return body_fail(s, "\"%s\" must be a number of "
			    "seconds or a duration such as \"5m\"", fi->path);
		break;
	default:
		break;
	}
	v->type = fi->type;
	return 0;
}

static void
body_push(struct body_scan *s, int array)
{
	unsigned	d = s->depth++;

	if (array)
		s->arrays[d / 8] |= (unsigned char)(1u << (d % 8));
	else
		s->arrays[d / 8] &= (unsigned char)~(1u << (d % 8));
}

static int
body_in_array(const struct body_scan *s)
{
	unsigned	d = s->depth - 1;

	return (s->arrays[d / 8] >> (d % 8)) & 1;
}

/* The scanner's states: what it expects next. */
enum body_state {
	S_VALUE,
	S_KEY,
	S_AFTER,	/* a value just ended, at this depth */
	S_DONE,		/* the top-level object closed */
	S_ERROR,
};

/* What kind of object one opening at the depth after this one is. */
static void
body_note_ctx(struct body_scan *s, int object)
{
	enum body_ctx	ctx = CTX_NONE;
	int		f = s->depth > 0 ? s->pending[s->depth] : -1;

	if (s->depth == 0)
		ctx = CTX_TOP;
	else if (f == BODY_OPTIONS)
		ctx = CTX_OPTIONS;
	else if (f == BODY_STREAM_OPTIONS)
		ctx = CTX_STREAM_OPTIONS;
	s->ctx[s->depth + 1] = object ? ctx : CTX_NONE;
	s->pending[s->depth + 1] = -1;
}

/* The '}' or ']' at s->pos closes the innermost object or array. */
static enum body_state
body_close(struct body_scan *s)
{
	if ((s->p[s->pos] == ']') != body_in_array(s))
		return body_syntax(s), S_ERROR;
	s->pos++;
	return --s->depth == 0 ? S_DONE : S_AFTER;
}

static enum body_state
body_value(struct body_scan *s)
{
	const char	*lit;
	size_t		 start, end, n;
	char		 c;

	body_skip_ws(s);
	if (s->pos >= s->len)
		return body_syntax(s), S_ERROR;
	switch ((c = s->p[s->pos])) {
	case '{':
	case '[':
		if (s->depth >= BODY_MAX_DEPTH)
			return body_fail(s, "the request body is nested too "
			    "deeply"), S_ERROR;
		if (s->depth < 2)
			body_note_ctx(s, c == '{');
		body_push(s, c == '[');
		s->pos++;
		body_skip_ws(s);
		if (s->pos < s->len && (s->p[s->pos] == '}' ||
		    s->p[s->pos] == ']'))
			return body_close(s);
		return body_in_array(s) ? S_VALUE : S_KEY;
	case '"':
		if (body_scan_string(s, &start, &end) != 0)
			return S_ERROR;
		/* Text, unless it is a field of ours (the model). */
		if (s->depth > 2 || s->pending[s->depth] < 0)
			s->b->text_bytes += end - start;
		return S_AFTER;
	case 't':
	case 'f':
	case 'n':
		lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
		n = strlen(lit);
		if (s->len - s->pos < n || memcmp(s->p + s->pos, lit, n) != 0)
			return body_syntax(s), S_ERROR;
		s->pos += n;
		return S_AFTER;
	default:
		return body_scan_number(s) == 0 ? S_AFTER : S_ERROR;
	}
}

static enum body_state
body_key(struct body_scan *s)
{
	struct body	*b = s->b;
	enum body_ctx	 ctx = s->depth <= 2 ? s->ctx[s->depth] : CTX_NONE;
	size_t		 start, end;
	int		 f;

	body_skip_ws(s);
	if (s->pos >= s->len || s->p[s->pos] != '"')
		return body_syntax(s), S_ERROR;
	if (body_scan_string(s, &start, &end) != 0)
		return S_ERROR;
	if (ctx == CTX_TOP)
		b->top_members++;
	else if (ctx == CTX_OPTIONS)
		b->options_members++;
	else if (ctx == CTX_STREAM_OPTIONS)
		b->stream_options_members++;
	if ((f = body_match_key(s, ctx, start, end)) == -2)
		return S_ERROR;
	if (f >= 0) {
		if (b->f[f].type != BODY_ABSENT)
			return body_fail(s, "\"%s\" is given twice",
			    body_fields[f].path), S_ERROR;
		b->f[f].key = start - 1;
		b->f[f].key_end = end + 1;
		/* Marked now, so that a second spelling is seen. */
		b->f[f].type = BODY_NULL;
	}
	body_skip_ws(s);
	if (s->pos >= s->len || s->p[s->pos] != ':')
		return body_syntax(s), S_ERROR;
	s->pos++;
	body_skip_ws(s);
	if (s->depth <= 2) {
		s->pending[s->depth] = f;
		s->val_start[s->depth] = s->pos;
	}
	return S_VALUE;
}

static enum body_state
body_after(struct body_scan *s)
{
	int	f;

	/* Before the space after it: a field's value ends where it does. */
	if (s->depth <= 2 && (f = s->pending[s->depth]) >= 0) {
		s->pending[s->depth] = -1;
		if (body_field_done(s, f, s->val_start[s->depth], s->pos) != 0)
			return S_ERROR;
	}
	body_skip_ws(s);
	if (s->pos >= s->len)
		return body_syntax(s), S_ERROR;
	switch (s->p[s->pos]) {
	case ',':
		s->pos++;
		return body_in_array(s) ? S_VALUE : S_KEY;
	case '}':
	case ']':
		return body_close(s);
	default:
		return body_syntax(s), S_ERROR;
	}
}

/*
 * The scanner proper: values, keys and the punctuation after a value,
 * as states of one loop, so that nesting costs a bit, not a stack
 * frame.
 */
static int
body_scan(struct body_scan *s)
{
	enum body_state	state = S_VALUE;

	while (state != S_DONE) {
		switch (state) {
		case S_VALUE:
			state = body_value(s);
			break;
		case S_KEY:
			state = body_key(s);
			break;
		case S_AFTER:
			state = body_after(s);
			break;
		default:
			return -1;
		}
	}
	s->b->end = s->pos;
	return 0;
}

int
body_read(struct body *b, const char *p, size_t len, unsigned mask,
    char *err, size_t errsize)
{
	struct body_scan	*s;
	int			 rc = -1;

	memset(b, 0, sizeof *b);
	b->fields = mask;
	s = xcalloc(1, sizeof *s);
	s->p = p;
	s->len = len;
	s->b = b;
	s->err = err;
	s->errsize = errsize;
	s->pending[0] = -1;
	body_skip_ws(s);
	if (s->pos >= len) {
		body_fail(s, "the request body is empty");
		goto out;
	}
	if (p[s->pos] != '{') {
		body_fail(s, "the request body must be a JSON object");
		goto out;
	}
	b->start = s->pos;
	if (body_scan(s) != 0)
		goto out;
	body_skip_ws(s);
	if (s->pos != len) {
		body_fail(s, "the request body has data after its JSON object");
		goto out;
	}
	/* "model" names the model; on /api/show, "name" may instead. */
	if (b->f[BODY_MODEL].type == BODY_STRING && s->model[0] != '\0' &&
	    b->f[BODY_NAME].type == BODY_STRING && s->name[0] != '\0') {
		body_fail(s, "the request must name one model, in \"model\"");
		goto out;
	}
	if (b->f[BODY_MODEL].type == BODY_STRING && s->model[0] != '\0')
		b->model = xstrdup(s->model);
	else if (b->f[BODY_NAME].type == BODY_STRING && s->name[0] != '\0')
		b->model = xstrdup(s->name);
	rc = 0;
out:
	free(s);
	if (rc != 0)
		body_free(b);
	return rc;
}

void
body_free(struct body *b)
{
	free(b->model);
	b->model = NULL;
}

int64_t
body_int(const struct body *b, enum body_field f, int64_t def)
{
	if (b->f[f].set)
		return b->f[f].set_null ? def : b->f[f].set_num;
	return b->f[f].type == BODY_INT || b->f[f].type == BODY_DURATION ?
	    b->f[f].num : def;
}

int
body_bool(const struct body *b, enum body_field f, int def)
{
	if (b->f[f].set)
		return (int)b->f[f].set_num;
	return b->f[f].type == BODY_BOOL ? (int)b->f[f].num : def;
}

void
body_set_int(struct body *b, enum body_field f, int64_t v)
{
	b->f[f].set = 1;
	b->f[f].set_num = v;
}

void
body_set_bool(struct body *b, enum body_field f, int v)
{
	body_set_int(b, f, v != 0);
}

void
body_set_model(struct body *b, const char *model)
{
	free(b->model);
	b->model = xstrdup(model);
}

void
body_set_null(struct body *b, enum body_field f)
{
	b->f[f].set = 1;
	b->f[f].set_null = 1;
}

/* One change to the bytes read: [start, end) becomes text. */
struct body_edit {
	size_t	start, end;
	size_t	text, text_len;		/* in the edit texts buffer */
};

#define BODY_EDITS_MAX	(BODY_NFIELDS * 3)

struct body_render {
	struct body_edit	 e[BODY_EDITS_MAX];
	size_t			 n;
	struct buf		 texts;
};

static struct buf *
body_edit_begin(struct body_render *r, size_t start, size_t end)
{
	struct body_edit	*e = &r->e[r->n++];

	e->start = start;
	e->end = end;
	e->text = buf_used(&r->texts);
	return &r->texts;
}

static void
body_edit_end(struct body_render *r)
{
	struct body_edit	*e = &r->e[r->n - 1];

	e->text_len = buf_used(&r->texts) - e->text;
}

/* A field's value as the gateway writes it. */
static void
body_put_value(struct buf *t, const struct body *b, enum body_field f)
{
	const struct body_value	*v = &b->f[f];
	int64_t			 n = v->set ? v->set_num : v->num;

	if (v->set && v->set_null)
		buf_add_str(t, "null");
	else if (body_fields[f].type == BODY_BOOL)
		buf_add_str(t, n ? "true" : "false");
	else if (body_fields[f].type == BODY_DURATION) {
		/* A Go duration, in the largest unit that is exact. */
		if (n % 1000000000 == 0)
			buf_printf(t, "\"%llds\"", (long long)(n / 1000000000));
		else if (n % 1000000 == 0)
			buf_printf(t, "\"%lldms\"", (long long)(n / 1000000));
		else
			buf_printf(t, "\"%lldns\"", (long long)n);
	} else
		buf_printf(t, "%lld", (long long)n);
}

/* The members set but not in the body, for an object of kind ctx. */
static int
body_put_members(struct buf *t, const struct body *b, enum body_ctx ctx,
    int comma)
{
	int	n = 0;

	for (int f = 0; f < BODY_NFIELDS; f++) {
		if (body_fields[f].ctx != ctx || !b->f[f].set ||
		    b->f[f].type != BODY_ABSENT)
			continue;
		buf_printf(t, "%s\"%s\":", comma || n > 0 ? "," : "",
		    body_fields[f].name);
		body_put_value(t, b, f);
		n++;
	}
	return n;
}

static int
body_children_set(const struct body *b, enum body_ctx ctx)
{
	for (int f = 0; f < BODY_NFIELDS; f++) {
		if (body_fields[f].ctx == ctx && b->f[f].set &&
		    b->f[f].type == BODY_ABSENT)
			return 1;
	}
	return 0;
}

/* The object field f stands for as a map of its members. */
static enum body_ctx
body_object_ctx(enum body_field f)
{
	return f == BODY_OPTIONS ? CTX_OPTIONS : f == BODY_STREAM_OPTIONS ?
	    CTX_STREAM_OPTIONS : CTX_NONE;
}

/* The object's key and braces with the members set in it. */
static void
body_put_object(struct buf *t, const struct body *b, enum body_field f)
{
	buf_add_str(t, "{");
	body_put_members(t, b, body_object_ctx(f), 0);
	buf_add_str(t, "}");
}

void
body_render(const struct body *b, const char *p, struct buf *out)
{
	struct body_render	 r;
	struct buf		*t;
	const char		*m;
	size_t			 at;
	int			 top_comma = b->top_members > 0;

	r.n = 0;
	buf_init(&r.texts);
	for (int f = 0; f < BODY_NFIELDS; f++) {
		const struct body_value	*v = &b->f[f];
		enum body_ctx		 octx = body_object_ctx(f);

		if (v->type != BODY_ABSENT) {
			/* The key, spelled as the backend spells it. */
			t = body_edit_begin(&r, v->key, v->key_end);
			buf_printf(t, "\"%s\"", body_fields[f].name);
			body_edit_end(&r);
		}
		if (octx != CTX_NONE) {
			/* An object field: members are added inside it. */
			if (!body_children_set(b, octx))
				continue;
			if (v->type == BODY_OBJECT) {
				unsigned	members = octx == CTX_OPTIONS ?
						    b->options_members :
						    b->stream_options_members;

				at = v->val_end - 1;
				t = body_edit_begin(&r, at, at);
				body_put_members(t, b, octx, members > 0);
			} else if (v->type == BODY_NULL) {
				t = body_edit_begin(&r, v->val, v->val_end);
				body_put_object(t, b, f);
			} else {
				at = b->end - 1;
				t = body_edit_begin(&r, at, at);
				buf_printf(t, "%s\"%s\":", top_comma ? "," : "",
				    body_fields[f].name);
				body_put_object(t, b, f);
				top_comma = 1;
			}
			body_edit_end(&r);
			continue;
		}
		switch (v->type) {
		case BODY_STRING:
			if (f != BODY_MODEL && f != BODY_NAME)
				break;
			/*
			 * The model as read, in plain JSON. Of "model" and
			 * "name", an empty one is sent empty, so that the
			 * backend takes the other, as the gateway did.
			 */
			t = body_edit_begin(&r, v->val, v->val_end);
			buf_add_str(t, "\"");
			m = v->val_end - v->val > 2 ? b->model : NULL;
			for (; m != NULL && *m; m++) {
				unsigned char	c = (unsigned char)*m;

				if (c == '"' || c == '\\')
					buf_printf(t, "\\%c", c);
				else if (c < 0x20)
					buf_printf(t, "\\u%04x", c);
				else
					buf_add(t, m, 1);
			}
			buf_add_str(t, "\"");
			body_edit_end(&r);
			break;
		case BODY_BOOL:
		case BODY_INT:
		case BODY_NULL:
		case BODY_DURATION:
			/* A duration is sent as it came unless it was set. */
			if (!v->set && (v->type == BODY_NULL ||
			    v->type == BODY_DURATION))
				break;
			t = body_edit_begin(&r, v->val, v->val_end);
			body_put_value(t, b, f);
			body_edit_end(&r);
			break;
		case BODY_ABSENT:
			if (!v->set || body_fields[f].ctx != CTX_TOP)
				break;
			at = b->end - 1;
			t = body_edit_begin(&r, at, at);
			buf_printf(t, "%s\"%s\":", top_comma ? "," : "",
			    body_fields[f].name);
			body_put_value(t, b, f);
			body_edit_end(&r);
			top_comma = 1;
			break;
		default:
			break;
		}
	}
	/* In order of position; insertions at one place keep their order. */
	for (size_t i = 1; i < r.n; i++) {
		struct body_edit	e = r.e[i];
		size_t			j = i;

		while (j > 0 && r.e[j - 1].start > e.start) {
			r.e[j] = r.e[j - 1];
			j--;
		}
		r.e[j] = e;
	}
	/* Only the object is sent: space around it is dropped. */
	at = b->start;
	for (size_t i = 0; i < r.n; i++) {
		buf_add(out, p + at, r.e[i].start - at);
		buf_add(out, buf_ptr(&r.texts) + r.e[i].text, r.e[i].text_len);
		at = r.e[i].end;
	}
	buf_add(out, p + at, b->end - at);
	buf_free(&r.texts);
}
