/*
 * xmalloc.h: allocation wrappers that never return NULL.
 *
 * Running out of memory is not a condition any of our programs can
 * recover from in a useful way, so every allocation goes through these
 * and a failure ends the process with a clear message.
 */
#ifndef OG_XMALLOC_H
#define OG_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Wipe a secret from memory and free it; NULL is accepted. */
void	 xfree_secret(char *);

#endif
