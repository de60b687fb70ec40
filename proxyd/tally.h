/*
 * tally.h: token counts read from responses as they pass through.
 *
 * Counts come from what the backend reports: Ollama's final chunk
 * ("prompt_eval_count", "eval_count", also in a non-streamed reply),
 * OpenAI's "usage" object, Anthropic's ("input_tokens", "output_tokens"
 * in a reply or a message_delta event, the input also in message_start's
 * "message") and the Responses API's (in response.completed's
 * "response"); and Ollama's "load_duration", which tells the
 * scheduler how long a load takes. The response is never buffered or re-parsed
 * whole: a small state machine follows the JSON syntax byte by byte, so
 * it does not care where chunk boundaries fall, and looks only at the
 * few keys that matter. What it keeps per response is a key name of at
 * most 32 bytes, an SSE event name of at most 24 and the number being
 * read.
 */
#ifndef OG_TALLY_H
#define OG_TALLY_H

#include <stddef.h>
#include <stdint.h>

enum tally_format {
	TALLY_JSON,		/* one JSON document, or NDJSON */
	TALLY_SSE,		/* "data: {...}" events */
};

#define TALLY_KEY_MAX	32
#define TALLY_DEPTH_MAX	64
#define TALLY_EVENT_MAX	24	/* the longest event name that matters */

struct tally {
	enum tally_format	 format;
	/* What was read; -1 when the backend did not say. */
	int64_t			 prompt_tokens;
	int64_t			 completion_tokens;
	/* Ollama's load_duration, when a model had to be loaded. */
	uint64_t		 load_ms;
	/* Documents (NDJSON lines, SSE events) that carried output. */
	uint64_t		 chunks;
	uint64_t		 events;	/* SSE data lines, of any kind */
	/* done:true, [DONE], or a last event (message_stop and such). */
	unsigned		 done:1;
	unsigned		 error:1;	/* an {"error":...} document */

	/* The JSON scanner. */
	int			 depth;
	unsigned char		 stack[TALLY_DEPTH_MAX]; /* '{' or '[' */
	unsigned		 in_string:1;
	unsigned		 escape:1;
	unsigned		 want_key:1;	/* next string is a key */
	unsigned		 in_key:1;
	unsigned		 in_number:1;
	unsigned		 in_usage:1;	/* inside the "usage" object */
	unsigned		 in_wrap:1;	/* in "message" or "response" */
	unsigned		 wrap_message:1; /* ...and it is "message" */
	unsigned		 doc_wrapped:1;	/* the wrapper held a "usage" */
	int			 usage_depth;	/* depth inside that "usage" */
	unsigned		 in_choices:1;	/* inside the "choices" array */
	unsigned		 empty:1;	/* the array just opened is empty */
	unsigned		 doc_done:1;
	unsigned		 doc_usage:1;
	unsigned		 doc_content:1;
	int			 literal;	/* 't', 'f', 'n' being read */
	int			 target;	/* which count a number goes to */
	int64_t			 number;
	char			 key[TALLY_KEY_MAX];
	size_t			 keylen;
	char			 lastkey[TALLY_KEY_MAX];

	/* SSE lines. */
	unsigned		 in_data:1;	/* the rest of the line is data */
	unsigned		 data_begun:1;
	unsigned		 holding:1;	/* prefix may be "[DONE]" */
	unsigned		 skip_line:1;
	unsigned		 in_event:1;	/* the line is "event: NAME" */
	char			 prefix[8];
	size_t			 plen;
	char			 event[TALLY_EVENT_MAX];
	size_t			 elen;
};

void	tally_init(struct tally *, enum tally_format);
void	tally_feed(struct tally *, const char *, size_t);

#endif
