/*
 * escape.h: strings from elsewhere (the daemon, a backend, an old
 * database, a user) made safe to show on a terminal.
 *
 * A terminal acts on control characters: ESC starts sequences that
 * move the cursor, retitle the window or redefine keys, and CR, LF and
 * BS rewrite what is on the screen. So every string that ogctl and
 * ogtop show passes through escape_string, which writes what a
 * terminal would act on as C-style escapes:
 *
 *	ESC \e, LF \n, CR \r, TAB \t
 *	other C0 controls and DEL		\xNN
 *	C1 controls (U+0080 to U+009F), the bidirectional embeddings,
 *	overrides and isolates (U+202A to U+202E, U+2066 to U+2069), and
 *	the line and paragraph separators (U+2028, U+2029)	\uNNNN
 *	each byte that is not part of valid UTF-8	\xNN
 *
 * Everything else, printable UTF-8 in any script included, passes as
 * it is. A backslash is not doubled: the escape is for the eye, not to
 * be undone, and so escaping an escaped string changes nothing.
 */
#ifndef OG_ESCAPE_H
#define OG_ESCAPE_H

#include <stddef.h>

/* A new string: s with what a terminal acts on escaped. */
char	*escape_string(const char *s);
/*
 * The columns an escaped string takes on a terminal: wcwidth's answer
 * where the locale knows the character, one column where it does not.
 */
int	 escape_width(const char *s);
/*
 * How many bytes of an escaped string fill at most width columns,
 * never cutting a character in two; *used gets the columns they take.
 */
size_t	 escape_fit(const char *s, int width, int *used);
/*
 * A JSON text with the characters a terminal acts on that a JSON
 * encoder leaves alone (DEL, C1 controls, the bidirectional and the
 * separator characters) written as \u escapes: the same document, safe
 * to print.
 */
char	*escape_json(const char *json);

#endif
