/*
 * form.h: the "model" field of a multipart/form-data body.
 *
 * /v1/audio/transcriptions takes a form, not JSON, and the model the
 * allowlist and the accounting read is one of its fields. The backend
 * reads the form with Go's mime/multipart, which is lenient in ways
 * that could let two readers see two models (quoted-printable parts,
 * RFC 2231 names, the first of duplicate fields, whitespace after a
 * boundary). So this reader is strict instead of lenient: a form it
 * cannot read one way only is refused, never guessed at.
 */
#ifndef OG_FORM_H
#define OG_FORM_H

#include <stddef.h>

/*
 * Find the one "model" field of body, sent with Content-Type ctype.
 * Returns 0 with the value in out (NUL-terminated), or -1 with why in
 * err: not a form, a malformed or ambiguous one, no model field, or a
 * value longer than size - 1.
 */
int	form_model(const char *ctype, const char *body, size_t len, char *out,
	    size_t size, char *err, size_t errlen);

#endif
