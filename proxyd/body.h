/*
 * body.h: reading a request body as the backend will read it.
 *
 * Ollama decodes request bodies with Go's encoding/json, which matches
 * an object's keys to a struct's fields without regard to case (Unicode
 * folds included: "ſtream" is "stream"), keeps the last of keys that
 * match the same field, and reads "options" as a map whose keys match
 * exactly. A gateway that read the same bytes another way could check
 * one value and let the backend act on another. So a body is read once,
 * by this one reader, which finds every field the gateway acts on as Go
 * would, refuses a body it cannot read with certainty (bad JSON, bad
 * UTF-8, a field given twice in any spelling, a value of the wrong type
 * or out of range), and writes the body that goes upstream with those
 * fields in its own canonical form: what was checked is what is sent.
 *
 * The reader is a scanner that builds no tree: its memory does not grow
 * with the body, whatever the body holds.
 */
#ifndef OG_BODY_H
#define OG_BODY_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/* The fields a route's backend reads and the gateway acts on. */
enum body_field {
	BODY_MODEL,		/* "model" */
	BODY_NAME,		/* "name": /api/show's older spelling of model */
	BODY_STREAM,		/* "stream" */
	BODY_STREAM_OPTIONS,	/* "stream_options", an object */
	BODY_INCLUDE_USAGE,	/* "stream_options"."include_usage" */
	BODY_OPTIONS,		/* "options", a map */
	BODY_NUM_PREDICT,	/* "options"."num_predict" */
	BODY_NUM_CTX,		/* "options"."num_ctx" */
	BODY_MAX_TOKENS,	/* "max_tokens" */
	BODY_MAX_COMPLETION_TOKENS, /* "max_completion_tokens" */
	BODY_MAX_OUTPUT_TOKENS,	/* "max_output_tokens" */
	BODY_KEEP_ALIVE,	/* "keep_alive": seconds, or a Go duration */
	BODY_NFIELDS
};

#define BODY_F(f)	(1u << (f))

/* The longest model name the reader keeps; longer ones are invalid. */
#define BODY_MODEL_MAX	1024
/* Go's decoder refuses deeper nesting than this; so does the reader. */
#define BODY_MAX_DEPTH	10000

enum body_type {
	BODY_ABSENT,
	BODY_NULL,
	BODY_BOOL,
	BODY_INT,
	BODY_STRING,
	BODY_OBJECT,
	BODY_DURATION,		/* num in nanoseconds; below 0 is forever */
};

struct body_value {
	enum body_type	 type;		/* what the body holds */
	size_t		 key, key_end;	/* the key's bytes, quotes included */
	size_t		 val, val_end;	/* the value's bytes */
	int64_t		 num;		/* BODY_BOOL (0, 1) and BODY_INT */
	/* A value the gateway sets: written in place of, or in addition to, it. */
	unsigned	 set:1;
	unsigned	 set_null:1;	/* null: the backend's default */
	int64_t		 set_num;
};

struct body {
	unsigned		 fields;	/* BODY_F() of those looked for */
	struct body_value	 f[BODY_NFIELDS];
	char			*model;		/* "model" (or "name"), decoded */
	size_t			 start, end;	/* the top-level object */
	unsigned		 top_members;	/* members of the object */
	unsigned		 options_members, stream_options_members;
	uint64_t		 text_bytes;	/* of string values: a size hint */
};

/*
 * Read a body, looking for the fields in mask (BODY_F bits). Returns 0,
 * or -1 with a one-line reason in err, fit for a 400.
 */
int		 body_read(struct body *, const char *, size_t, unsigned mask,
		    char *err, size_t errsize);
void		 body_free(struct body *);
/* The value the backend will act on; def where the body gives none. */
int64_t		 body_int(const struct body *, enum body_field, int64_t def);
int		 body_bool(const struct body *, enum body_field, int def);
/* Have the body that goes upstream say field = value. */
void		 body_set_int(struct body *, enum body_field, int64_t);
void		 body_set_bool(struct body *, enum body_field, int);
/* Have the body that goes upstream name another model (an alias's). */
void		 body_set_model(struct body *, const char *);
/* Have the body that goes upstream say null (the backend's default). */
void		 body_set_null(struct body *, enum body_field);
/* Write the body that goes upstream: the one read, canonical, with edits. */
void		 body_render(const struct body *, const char *, struct buf *);

#endif
