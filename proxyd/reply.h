/*
 * reply.h: responses the gateway writes itself, in the dialect of the
 * route they answer: Ollama's {"error":"..."}, OpenAI's
 * {"error":{"message":..,"type":..,"param":null,"code":..}} or
 * Anthropic's {"type":"error","error":{"type":..,"message":..}}.
 */
#ifndef OG_REPLY_H
#define OG_REPLY_H

#include <stdint.h>

#include "router.h"

struct conn;

/* A complete error response; extra_headers ends each line with CRLF. */
void	reply_error(struct conn *, int status, enum dialect, const char *msg,
	    const char *extra_headers);
/* The error object for a line in the middle of a stream (no framing). */
char	*reply_error_json(int status, enum dialect, const char *msg);
/*
 * The Responses API's error event, for a stream that fails after it
 * started: seq is its sequence_number, the number of events before it.
 */
char	*reply_event_error_json(const char *msg, uint64_t seq);
/* "Date: ..." for now, cached per second. */
const char *reply_date(void);

#endif
