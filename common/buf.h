/*
 * buf.h: a growable byte buffer with a read offset.
 *
 * Bytes are appended at the end and consumed from the front. Consuming
 * only moves an offset; the space is reclaimed lazily when appending
 * would otherwise grow the allocation, so a buffer used as a queue does
 * not memmove on every read.
 */
#ifndef OG_BUF_H
#define OG_BUF_H

#include <stddef.h>

struct buf {
	char	*data;
	size_t	 off;	/* first unconsumed byte */
	size_t	 len;	/* end of valid bytes */
	size_t	 cap;
};

void	 buf_init(struct buf *);
void	 buf_free(struct buf *);
void	 buf_reset(struct buf *);
void	 buf_reserve(struct buf *, size_t);
void	 buf_add(struct buf *, const void *, size_t);
void	 buf_add_str(struct buf *, const char *);
void	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 buf_consume(struct buf *, size_t);
/* Append a NUL after the data without counting it. */
const char *buf_cstr(struct buf *);

static inline char *
buf_ptr(const struct buf *b)
{
	/* An empty buffer may have no storage: no arithmetic on NULL. */
	return b->data != NULL ? b->data + b->off : NULL;
}

static inline size_t
buf_used(const struct buf *b)
{
	return b->len - b->off;
}

/* Free space at the end, after buf_reserve(). */
static inline char *
buf_tail(const struct buf *b)
{
	return b->data + b->len;
}

#endif
