/*
 * tally.c: token counts read from responses as they pass through.
 */
#include <string.h>

#include "tally.h"

enum {
	TARGET_NONE,
	TARGET_PROMPT,
	TARGET_COMPLETION,
	TARGET_LOAD,
};

/* Counts larger than this are not counts; they are ignored. */
#define TALLY_NUMBER_MAX	((int64_t)1 << 48)

static void	tally_json(struct tally *, unsigned char);

void
tally_init(struct tally *t, enum tally_format format)
{
	memset(t, 0, sizeof *t);
	t->format = format;
	t->prompt_tokens = -1;
	t->completion_tokens = -1;
}

/* Each key of every line is tried against several: first letters first. */
static inline int
tally_key_is(const struct tally *t, const char *key)
{
	return t->lastkey[0] == key[0] && strcmp(t->lastkey, key) == 0;
}

static void
tally_doc_begin(struct tally *t)
{
	t->doc_done = t->doc_usage = t->doc_content = t->doc_wrapped = 0;
	t->in_usage = t->in_choices = t->in_wrap = 0;
}

static void
tally_doc_end(struct tally *t)
{
	if (t->doc_done)
		t->done = 1;
	else if (t->doc_content && !t->doc_wrapped)
		t->chunks++;
}

/* Forget a document cut short (an SSE line that ended inside JSON). */
static void
tally_reset_doc(struct tally *t)
{
	t->depth = 0;
	t->in_string = t->escape = t->in_key = t->in_number = 0;
	t->in_usage = t->in_wrap = 0;
	t->literal = 0;
	t->target = TARGET_NONE;
}

/* A value starts, right after "key":; note what it is for. */
static void
tally_value_begin(struct tally *t, unsigned char c)
{
	t->target = TARGET_NONE;
	if (t->depth == 1) {
		if (tally_key_is(t, "prompt_eval_count"))
			t->target = TARGET_PROMPT;
		else if (tally_key_is(t, "eval_count"))
			t->target = TARGET_COMPLETION;
		else if (tally_key_is(t, "load_duration"))
			t->target = TARGET_LOAD;
		else if (tally_key_is(t, "error") && c != 'n')
			t->error = 1;	/* "error":null says there is none */
		else if (tally_key_is(t, "response") ||
		    tally_key_is(t, "message") || tally_key_is(t, "delta"))
			t->doc_content = 1;
		else if (tally_key_is(t, "choices") && c == '[')
			t->in_choices = 1;	/* output, unless it is [] */
	} else if (t->in_usage && t->depth == t->usage_depth) {
		if (tally_key_is(t, "prompt_tokens") ||
		    tally_key_is(t, "input_tokens"))
			t->target = TARGET_PROMPT;
		else if (tally_key_is(t, "completion_tokens") ||
		    tally_key_is(t, "output_tokens"))
			t->target = TARGET_COMPLETION;
		/*
		 * message_start says 0 or 1 output tokens before any are
		 * made; the count comes with message_delta.
		 */
		if (t->target == TARGET_COMPLETION && t->wrap_message)
			t->target = TARGET_NONE;
	} else if (t->depth == 2 && t->in_wrap && tally_key_is(t, "usage"))
		t->doc_wrapped = 1;	/* an envelope, not output */
}

/*
 * An object opens at t->depth: is it a "usage" the counts are in? At
 * the top of a document (OpenAI, Anthropic), or one level down in
 * Anthropic's message_start "message" and the Responses API's
 * "response".
 */
static void
tally_object_open(struct tally *t)
{
	if (t->depth == 1 && (tally_key_is(t, "message") ||
	    tally_key_is(t, "response"))) {
		t->in_wrap = 1;
		t->wrap_message = tally_key_is(t, "message");
	}
	if (!tally_key_is(t, "usage") ||
	    (t->depth != 1 && !(t->depth == 2 && t->in_wrap)))
		return;
	t->in_usage = 1;
	t->usage_depth = t->depth + 1;
	if (t->depth == 1) {
		t->doc_usage = 1;
		t->wrap_message = 0;
	}
}

static void
tally_number_end(struct tally *t)
{
	t->in_number = 0;
	if (t->target == TARGET_PROMPT)
		t->prompt_tokens = t->number;
	else if (t->target == TARGET_COMPLETION)
		t->completion_tokens = t->number;
	else if (t->target == TARGET_LOAD)
		t->load_ms = (uint64_t)(t->number / 1000000);
	t->target = TARGET_NONE;
}

static void
tally_json(struct tally *t, unsigned char c)
{
	if (t->in_string) {
		if (t->escape) {
			t->escape = 0;
			/* An escaped key is never one we look for. */
			if (t->in_key)
				t->keylen = TALLY_KEY_MAX;
		} else if (c == '\\')
			t->escape = 1;
		else if (c == '"') {
			t->in_string = 0;
			if (t->in_key) {
				t->in_key = 0;
				if (t->keylen < TALLY_KEY_MAX) {
					memcpy(t->lastkey, t->key, t->keylen);
					t->lastkey[t->keylen] = '\0';
				} else
					t->lastkey[0] = '\0';
			}
		} else if (t->in_key && t->keylen < TALLY_KEY_MAX) {
			if (t->keylen == TALLY_KEY_MAX - 1)
				t->keylen = TALLY_KEY_MAX;	/* too long */
			else
				t->key[t->keylen++] = (char)c;
		}
		return;
	}
	if (t->in_number) {
		if (c >= '0' && c <= '9') {
			if (t->number < TALLY_NUMBER_MAX)
				t->number = t->number * 10 + (c - '0');
			else
				t->target = TARGET_NONE;
			return;
		}
		if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			t->target = TARGET_NONE;	/* not a count */
			return;
		}
		tally_number_end(t);
	}
	if (t->literal != 0) {
		if (c >= 'a' && c <= 'z')
			return;
		if (t->literal == 't' && t->depth == 1 && tally_key_is(t, "done"))
			t->doc_done = 1;
		t->literal = 0;
	}
	switch (c) {
	case ' ': case '\t': case '\r': case '\n':
		return;
	case '{':
	case '[':
		t->empty = 0;
		if (t->depth == 0)
			tally_doc_begin(t);
		else if (!t->want_key || (t->depth <= TALLY_DEPTH_MAX &&
		    t->stack[t->depth - 1] == '['))
			tally_value_begin(t, c);
		if (c == '{')
			tally_object_open(t);
		if (t->depth < TALLY_DEPTH_MAX)
			t->stack[t->depth] = c;
		t->depth++;
		t->want_key = c == '{';
		t->empty = c == '[';
		t->lastkey[0] = '\0';
		return;
	case ']':
	case '}':
		if (t->depth == 0)
			return;
		t->depth--;
		if (t->in_usage && t->depth < t->usage_depth)
			t->in_usage = 0;
		if (t->depth == 1) {
			/* "choices":[] carries no output (OpenAI's usage chunk). */
			if (t->in_choices && !t->empty)
				t->doc_content = 1;
			t->in_choices = 0;
			t->in_wrap = 0;
		}
		t->empty = 0;
		if (t->depth == 0) {
			tally_doc_end(t);
			return;
		}
		t->want_key = 0;
		t->lastkey[0] = '\0';
		return;
	case ',':
		if (t->depth > 0 && t->depth <= TALLY_DEPTH_MAX &&
		    t->stack[t->depth - 1] == '{')
			t->want_key = 1;
		return;
	case ':':
		t->want_key = 0;
		return;
	case '"':
		t->empty = 0;
		t->in_string = 1;
		if (t->depth > 0 && t->depth <= TALLY_DEPTH_MAX &&
		    t->stack[t->depth - 1] == '{' && t->want_key) {
			t->in_key = 1;
			t->keylen = 0;
		} else
			tally_value_begin(t, c);
		return;
	default:
		t->empty = 0;
		if (c == '-' || (c >= '0' && c <= '9')) {
			tally_value_begin(t, c);
			t->in_number = 1;
			t->number = c == '-' ? 0 : c - '0';
			if (c == '-')
				t->target = TARGET_NONE;
			return;
		}
		if (c == 't' || c == 'f' || c == 'n') {
			tally_value_begin(t, c);
			t->literal = c;
		}
		return;
	}
}

/*
 * Anthropic's and the Responses API's streams end with no [DONE]: their
 * last event's name says the answer is whole.
 */
static void
tally_event(struct tally *t)
{
	static const char *const last[] = {
		"message_stop", "response.completed",
	};

	for (size_t i = 0; i < sizeof last / sizeof last[0]; i++) {
		if (t->elen == strlen(last[i]) &&
		    memcmp(t->event, last[i], t->elen) == 0)
			t->done = 1;
	}
}

/*
 * Server-sent events: "data:" lines hold the JSON; [DONE] ends the
 * stream; other fields and comments are skipped. The first bytes of a
 * payload that starts with '[' are held back until it is clear whether
 * they spell [DONE].
 */
static void
tally_sse(struct tally *t, unsigned char c)
{
	static const char	done[] = "[DONE]";

	if (c == '\n') {
		if (t->in_number)
			tally_number_end(t);
		if (t->depth != 0 || t->in_string)
			tally_reset_doc(t);
		if (t->in_event)
			tally_event(t);
		t->in_data = t->skip_line = t->data_begun = t->holding = 0;
		t->in_event = 0;
		t->plen = t->elen = 0;
		return;
	}
	if (c == '\r' || t->skip_line)
		return;
	if (t->in_event) {
		if (t->elen == 0 && c == ' ')
			return;		/* the one optional space */
		if (t->elen < sizeof t->event)
			t->event[t->elen++] = (char)c;
		return;
	}
	if (!t->in_data) {
		t->prefix[t->plen++] = (char)c;
		if (t->plen == 5 && memcmp(t->prefix, "data:", 5) == 0) {
			t->plen = 0;
			t->in_data = 1;
			t->events++;
		} else if (t->plen == 6) {
			t->plen = 0;
			if (memcmp(t->prefix, "event:", 6) == 0)
				t->in_event = 1;
			else
				t->skip_line = 1;
		}
		return;
	}
	if (!t->data_begun) {
		t->data_begun = 1;
		if (c == ' ')
			return;		/* the one optional space */
		if (c == '[') {
			t->holding = 1;
			t->prefix[0] = (char)c;
			t->plen = 1;
			return;
		}
	} else if (t->holding) {
		t->prefix[t->plen++] = (char)c;
		if (c == (unsigned char)done[t->plen - 1]) {
			if (t->plen == 6) {
				t->done = 1;
				t->skip_line = 1;
			}
			return;
		}
		/* Not [DONE]: the held bytes are JSON after all. */
		t->holding = 0;
		for (size_t i = 0; i < t->plen; i++)
			tally_json(t, (unsigned char)t->prefix[i]);
		t->plen = 0;
		return;
	} else if (t->plen == 0 && c == '[' && t->depth == 0 &&
	    !t->in_string) {
		t->holding = 1;
		t->prefix[0] = (char)c;
		t->plen = 1;
		return;
	}
	tally_json(t, c);
}

/*
 * Most of a chunk is the inside of string values ("created_at", the
 * text itself). Nothing there matters until the closing quote, so the
 * scanner jumps to the next byte that does: a quote, a backslash, or,
 * in SSE, the end of the line.
 */
static size_t
tally_skip(const unsigned char *s, size_t n, int sse)
{
	const unsigned char	*end = s + n, *q, *b;

	q = memchr(s, '"', n);
	if (q != NULL)
		end = q;
	b = memchr(s, '\\', (size_t)(end - s));
	if (b != NULL)
		end = b;
	if (sse && (b = memchr(s, '\n', (size_t)(end - s))) != NULL)
		end = b;
	return (size_t)(end - s);
}

void
tally_feed(struct tally *t, const char *p, size_t n)
{
	const unsigned char	*s = (const unsigned char *)p;
	int			 sse = t->format == TALLY_SSE;
	size_t			 i = 0;

	while (i < n) {
		if (sse && t->skip_line) {
			const unsigned char	*nl = memchr(s + i, '\n', n - i);

			if (nl == NULL)
				return;
			i = (size_t)(nl - s);
		} else if (t->in_string && !t->escape &&
		    (!sse || (t->in_data && !t->holding))) {
			size_t	span = tally_skip(s + i, n - i, sse);

			/* A key's characters are kept; a value's are not. */
			if (t->in_key && span > 0) {
				if (t->keylen + span < TALLY_KEY_MAX) {
					memcpy(t->key + t->keylen, s + i, span);
					t->keylen += span;
				} else
					t->keylen = TALLY_KEY_MAX;
			}
			i += span;
			if (i == n)
				return;
		}
		if (sse)
			tally_sse(t, s[i]);
		else
			tally_json(t, s[i]);
		i++;
	}
}
