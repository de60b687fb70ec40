/*
 * form.c: the "model" field of a multipart/form-data body.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "form.h"

/* RFC 2046: a boundary is 1 to 70 characters. */
#define FORM_BOUNDARY_MAX	70
/* A part's header block, and the number of parts, are bounded too. */
#define FORM_HEAD_MAX		8192
#define FORM_PARTS_MAX		64

static int
form_fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -1;
}

/* An RFC 2045 token character: printable, not a space or a tspecial. */
static int
form_tchar(char ch)
{
	unsigned char	c = (unsigned char)ch;

	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static const char *
form_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/*
 * One parameter, "; name=value", of a header value at *pp: the value a
 * token or a quoted string. Quoted strings with escapes and RFC 2231
 * names ("name*=") are read differently by different readers, so they
 * are not accepted. Returns 1 for a parameter, 0 at the end, -1 for
 * anything else.
 */
static int
form_param(const char **pp, const char *end, const char **name,
    size_t *nlen, const char **val, size_t *vlen)
{
	const char	*p = form_ws(*pp, end);

	if (p == end)
		return 0;
	if (*p != ';')
		return -1;
	p = form_ws(p + 1, end);
	*name = p;
	while (p < end && form_tchar(*p) && *p != '*')
		p++;
	*nlen = (size_t)(p - *name);
	if (*nlen == 0 || p == end || *p != '=')
		return -1;
	p++;
	if (p < end && *p == '"') {
		*val = ++p;
		while (p < end && *p != '"') {
			if (*p == '\\' || (unsigned char)*p < 0x20)
				return -1;
			p++;
		}
		if (p == end)
			return -1;
		*vlen = (size_t)(p - *val);
		p++;
	} else {
		*val = p;
		while (p < end && form_tchar(*p))
			p++;
		*vlen = (size_t)(p - *val);
		if (*vlen == 0)
			return -1;
	}
	*pp = p;
	return 1;
}

static int
form_is(const char *s, size_t len, const char *word)
{
	return len == strlen(word) && strncasecmp(s, word, len) == 0;
}

/* The boundary named by a "multipart/form-data; boundary=..." type. */
static int
form_boundary(const char *ctype, const char **b, size_t *blen)
{
	static const char	 mt[] = "multipart/form-data";
	const char		*end = ctype + strlen(ctype), *p, *name, *val;
	size_t			 nlen, vlen;
	int			 r;

	p = form_ws(ctype, end);
	if ((size_t)(end - p) < sizeof mt - 1 ||
	    strncasecmp(p, mt, sizeof mt - 1) != 0)
		return -1;
	p += sizeof mt - 1;
	*b = NULL;
	while ((r = form_param(&p, end, &name, &nlen, &val, &vlen)) == 1) {
		if (!form_is(name, nlen, "boundary"))
			continue;
		if (*b != NULL)
			return -1;
		*b = val;
		*blen = vlen;
	}
	if (r < 0 || *b == NULL || *blen == 0 || *blen > FORM_BOUNDARY_MAX ||
	    (*b)[*blen - 1] == ' ')
		return -1;
	return 0;
}

/*
 * A part's Content-Disposition: "form-data" and its parameters. Sets
 * *is_model for a field named "model", *has_file when it names a file.
 */
static int
form_disposition(const char *p, const char *end, int *is_model,
    int *has_file)
{
	const char	*name, *val;
	size_t		 nlen, vlen;
	int		 r, named = 0;

	p = form_ws(p, end);
	if ((size_t)(end - p) < 9 || strncasecmp(p, "form-data", 9) != 0)
		return -1;
	p += 9;
	while ((r = form_param(&p, end, &name, &nlen, &val, &vlen)) == 1) {
		if (form_is(name, nlen, "name")) {
			if (named++)
				return -1;
			/* Go's FormValue matches the name exactly. */
			*is_model = vlen == 5 && memcmp(val, "model", 5) == 0;
		} else if (form_is(name, nlen, "filename"))
			*has_file = 1;
	}
	return r < 0 ? -1 : 0;
}

/*
 * The header lines of one part, each ended by CRLF. Folded lines, bare
 * line feeds and repeated dispositions are refused.
 */
static int
form_part_head(const char *p, const char *end, int *is_model)
{
	int	disp = 0, has_file = 0, encoded = 0;

	*is_model = 0;
	while (p < end) {
		const char	*eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		const char	*colon;

		if (eol == NULL || *p == ' ' || *p == '\t')
			return -1;
		for (const char *q = p; q < eol; q++) {
			if ((unsigned char)*q < 0x20 && *q != '\t')
				return -1;
		}
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL || colon == p)
			return -1;
		for (const char *q = p; q < colon; q++) {
			if (!form_tchar(*q))
				return -1;
		}
		if (form_is(p, (size_t)(colon - p), "content-disposition")) {
			if (disp++ || form_disposition(colon + 1, eol, is_model,
			    &has_file) != 0)
				return -1;
		} else if (form_is(p, (size_t)(colon - p),
		    "content-transfer-encoding"))
			encoded = 1;
		p = eol + 2;
	}
	/* A model sent as a file, or encoded, is one more way to misread. */
	if (*is_model && (has_file || encoded))
		return -1;
	return 0;
}

int
form_model(const char *ctype, const char *body, size_t len, char *out,
    size_t size, char *err, size_t errlen)
{
	const char	*b, *p, *q, *end = body + len, *content;
	char		 delim[4 + FORM_BOUNDARY_MAX];
	size_t		 blen, dlen;
	int		 parts = 0, found = 0, is_model;

	if (ctype == NULL || form_boundary(ctype, &b, &blen) != 0)
		return form_fail(err, errlen, "expected a multipart/form-data "
		    "body with a boundary");
	memcpy(delim, "\r\n--", 4);
	memcpy(delim + 4, b, blen);
	dlen = 4 + blen;
	/* The first delimiter may open the body, without a CRLF before it. */
	if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0)
		p = body + dlen - 2;
	else if ((q = memmem(body, len, delim, dlen)) != NULL)
		p = q + dlen;
	else
		return form_fail(err, errlen, "no parts in the form");
	for (;;) {
		/* After a delimiter, "--" closes the form; CRLF, a part. */
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			break;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return form_fail(err, errlen,
			    "malformed form boundary");
		p += 2;
		if (++parts > FORM_PARTS_MAX)
			return form_fail(err, errlen, "too many form parts");
		if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
			is_model = 0;	/* no headers: not a named field */
			content = p + 2;
		} else {
			size_t	 n = (size_t)(end - p);
			const char	*h;

			h = memmem(p, n < FORM_HEAD_MAX ? n : FORM_HEAD_MAX,
			    "\r\n\r\n", 4);
			if (h == NULL ||
			    form_part_head(p, h + 2, &is_model) != 0)
				return form_fail(err, errlen,
				    "malformed form part headers");
			content = h + 4;
		}
		q = memmem(content, (size_t)(end - content), delim, dlen);
		if (q == NULL)
			return form_fail(err, errlen, "unterminated form part");
		if (is_model) {
			if (found++)
				return form_fail(err, errlen,
				    "more than one model field");
			if ((size_t)(q - content) >= size)
				return form_fail(err, errlen,
				    "model name too long");
			memcpy(out, content, (size_t)(q - content));
			out[q - content] = '\0';
			if (strlen(out) != (size_t)(q - content))
				return form_fail(err, errlen,
				    "invalid model name");
		}
		p = q + dlen;
	}
	if (!found)
		return form_fail(err, errlen, "model is required");
	return 0;
}
