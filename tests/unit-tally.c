/*
 * unit-tally.c: reading token counts from responses as they pass,
 * wherever the chunk boundaries fall.
 */
#include <stdlib.h>
#include <string.h>

#include "tally.h"
#include "tap.h"

struct want {
	long long	prompt;
	long long	completion;
	unsigned long	chunks;
	int		done;
	int		error;
};

static int
same(const struct tally *t, const struct want *w)
{
	return t->prompt_tokens == w->prompt &&
	    t->completion_tokens == w->completion && t->chunks == w->chunks &&
	    t->done == w->done && t->error == w->error;
}

static void
show(const struct tally *t)
{
	printf("#   got prompt %lld completion %lld chunks %llu done %d error %d\n",
	    (long long)t->prompt_tokens, (long long)t->completion_tokens,
	    (unsigned long long)t->chunks, t->done, t->error);
}

/* Whole, byte by byte, and split in two at every position. */
static void
check(const char *what, enum tally_format f, const char *in,
    struct want w)
{
	struct tally	t;
	size_t		n = strlen(in);
	int		split_ok = 1;

	tally_init(&t, f);
	tally_feed(&t, in, n);
	if (!tap_ok(same(&t, &w), "%s", what))
		show(&t);

	tally_init(&t, f);
	for (size_t i = 0; i < n; i++)
		tally_feed(&t, in + i, 1);
	if (!tap_ok(same(&t, &w), "%s, one byte at a time", what))
		show(&t);

	for (size_t cut = 1; cut < n && split_ok; cut++) {
		tally_init(&t, f);
		tally_feed(&t, in, cut);
		tally_feed(&t, in + cut, n - cut);
		if (!same(&t, &w)) {
			split_ok = 0;
			printf("# split at %zu\n", cut);
			show(&t);
		}
	}
	tap_ok(split_ok, "%s, split anywhere", what);
}

int
main(void)
{
	check("Ollama generate stream", TALLY_JSON,
	    "{\"model\":\"llama3.2\",\"created_at\":\"2026-01-01T10:00:00.1Z\","
	    "\"response\":\"The\",\"done\":false}\n"
	    "{\"model\":\"llama3.2\",\"created_at\":\"x\",\"response\":\" sky\","
	    "\"done\":false}\n"
	    "{\"model\":\"llama3.2\",\"created_at\":\"x\",\"response\":\"\","
	    "\"done\":true,\"done_reason\":\"stop\",\"context\":[1,2,3],"
	    "\"total_duration\":4935886791,\"load_duration\":534986708,"
	    "\"prompt_eval_count\":26,\"prompt_eval_duration\":107345000,"
	    "\"eval_count\":237,\"eval_duration\":4289432000}\n",
	    (struct want){ 26, 237, 2, 1, 0 });
	check("Ollama chat, not streamed", TALLY_JSON,
	    "{\"model\":\"llama3.2\",\"created_at\":\"x\",\"message\":{\"role\":"
	    "\"assistant\",\"content\":\"Hello \\\"there\\\"\"},\"done\":true,"
	    "\"done_reason\":\"stop\",\"total_duration\":1,\"prompt_eval_count\":"
	    "12,\"eval_count\":3}",
	    (struct want){ 12, 3, 0, 1, 0 });
	check("a stream cut short is counted in chunks", TALLY_JSON,
	    "{\"message\":{\"role\":\"assistant\",\"content\":\"a\"},\"done\":false}\n"
	    "{\"message\":{\"role\":\"assistant\",\"content\":\"b\"},\"done\":false}\n"
	    "{\"message\":{\"role\":\"assistant\",\"content\":\"c\"},\"done\":fa",
	    (struct want){ -1, -1, 2, 0, 0 });
	check("a mid-stream error line", TALLY_JSON,
	    "{\"response\":\"a\",\"done\":false}\n{\"error\":\"boom\"}\n",
	    (struct want){ -1, -1, 1, 0, 1 });
	check("counts inside strings and deeper objects are not counts",
	    TALLY_JSON,
	    "{\"done\":true,\"eval_count\":4,\"prompt_eval_count\":2,"
	    "\"response\":\"\\\"eval_count\\\":999, prompt_eval_count: 5\","
	    "\"options\":{\"eval_count\":7,\"prompt_eval_count\":8},"
	    "\"tool_calls\":[{\"function\":{\"arguments\":{\"eval_count\":9}}}],"
	    "\"usage\":[{\"prompt_tokens\":6}]}",
	    (struct want){ 2, 4, 0, 1, 0 });
	check("embeddings", TALLY_JSON,
	    "{\"model\":\"nomic\",\"embeddings\":[[0.1,-0.2e-3,3],[1,2]],"
	    "\"total_duration\":5,\"prompt_eval_count\":7}",
	    (struct want){ 7, -1, 0, 0, 0 });
	check("a float or negative is not a count", TALLY_JSON,
	    "{\"done\":true,\"eval_count\":1.5,\"prompt_eval_count\":-3}",
	    (struct want){ -1, -1, 0, 1, 0 });
	check("a done that is false, then null", TALLY_JSON,
	    "{\"done\":false}{\"done\":null}",
	    (struct want){ -1, -1, 0, 0, 0 });
	check("OpenAI chat stream with usage", TALLY_SSE,
	    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
	    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
	    "\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n"
	    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":"
	    "{\"content\":\" [DONE] there\"},\"finish_reason\":null}]}\n\n"
	    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{},"
	    "\"finish_reason\":\"stop\"}]}\n\n"
	    "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{"
	    "\"prompt_tokens\":11,\"completion_tokens\":2,\"total_tokens\":13}}\n\n"
	    "data: [DONE]\n\n",
	    (struct want){ 11, 2, 3, 1, 0 });
	check("OpenAI completions stream: zero usage on each chunk, then the real",
	    TALLY_SSE,
	    "data: {\"choices\":[{\"text\":\"a\"}],\"usage\":{\"prompt_tokens\":0,"
	    "\"completion_tokens\":0,\"total_tokens\":0}}\r\n\r\n"
	    ": a comment\r\nevent: message\r\n"
	    "data:{\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
	    "\"completion_tokens\":1,\"total_tokens\":6}}\r\n\r\n"
	    "data: [DONE]\r\n\r\n",
	    (struct want){ 5, 1, 1, 1, 0 });
	check("an SSE stream cut short", TALLY_SSE,
	    "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
	    "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n"
	    "data: {\"choices\":[{\"delta\":{\"cont",
	    (struct want){ -1, -1, 2, 0, 0 });
	check("an SSE error event", TALLY_SSE,
	    "data: {\"error\":{\"message\":\"x\",\"type\":\"api_error\"}}\n\n",
	    (struct want){ -1, -1, 0, 0, 1 });
	check("a data line that starts with [ but is not [DONE]", TALLY_SSE,
	    "data: [1,2]\n\ndata: [DONX]\n\n",
	    (struct want){ -1, -1, 0, 0, 0 });
	check("OpenAI reply, not streamed", TALLY_JSON,
	    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":"
	    "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"x\"},"
	    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,"
	    "\"completion_tokens\":1,\"total_tokens\":10}}\n",
	    (struct want){ 9, 1, 1, 0, 0 });
	check("OpenAI embeddings", TALLY_JSON,
	    "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"embedding\":"
	    "[0.1],\"index\":0}],\"model\":\"m\",\"usage\":{\"prompt_tokens\":4,"
	    "\"total_tokens\":4}}",
	    (struct want){ 4, -1, 0, 0, 0 });
	check("Anthropic message, not streamed", TALLY_JSON,
	    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
	    "\"model\":\"m\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"\\\"output_tokens\\\":99\"}],\"stop_reason\":\"end_turn\","
	    "\"usage\":{\"input_tokens\":11,\"output_tokens\":4}}",
	    (struct want){ 11, 4, 0, 0, 0 });
	check("Anthropic stream: message_start input, message_delta output",
	    TALLY_SSE,
	    "event: message_start\ndata: {\"type\":\"message_start\","
	    "\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"content\":[],"
	    "\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n"
	    "event: ping\ndata: {\"type\": \"ping\"}\n\n"
	    "event: content_block_start\ndata: {\"type\":\"content_block_start\","
	    "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
	    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
	    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\"}}\n\n"
	    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
	    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"b\"}}\n\n"
	    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
	    "\"index\":0}\n\n"
	    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
	    "{\"stop_reason\":\"end_turn\"},\"usage\":{\"input_tokens\":10,"
	    "\"output_tokens\":2}}\n\n"
	    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	    (struct want){ 10, 2, 3, 1, 0 });
	check("an Anthropic stream cut short: the input, output in chunks",
	    TALLY_SSE,
	    "event: message_start\r\ndata: {\"type\":\"message_start\","
	    "\"message\":{\"usage\":{\"input_tokens\":9,\"output_tokens\":0}}}"
	    "\r\n\r\n"
	    "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\","
	    "\"delta\":{\"type\":\"text_delta\",\"text\":\"a\"}}\r\n\r\n"
	    "event: message_stop_not\r\ndata: {\"delta\":{\"text\":\"b\"}}\r\n\r\n"
	    "event: message_stop_and_a_name_longer_than_kept\n\n"
	    "event: content_block_delta\ndata: {\"delta\":{\"te",
	    (struct want){ 9, -1, 2, 0, 0 });
	check("Anthropic error event", TALLY_SSE,
	    "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
	    "\"overloaded_error\",\"message\":\"x\"}}\n\n",
	    (struct want){ -1, -1, 0, 0, 1 });
	check("Responses stream: usage in response.completed", TALLY_SSE,
	    "event: response.created\ndata: {\"type\":\"response.created\","
	    "\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"status\":"
	    "\"in_progress\",\"error\":null,\"usage\":null,\"output\":[]}}\n\n"
	    "event: response.output_text.delta\ndata: {\"type\":"
	    "\"response.output_text.delta\",\"sequence_number\":1,\"delta\":"
	    "\"a\"}\n\n"
	    "event: response.output_text.delta\ndata: {\"type\":"
	    "\"response.output_text.delta\",\"sequence_number\":2,\"delta\":"
	    "\"b\"}\n\n"
	    "event: response.completed\ndata: {\"type\":\"response.completed\","
	    "\"sequence_number\":3,\"response\":{\"id\":\"resp_1\",\"status\":"
	    "\"completed\",\"output\":[{\"type\":\"message\",\"content\":[{\"type\":"
	    "\"output_text\",\"text\":\"ab\"}]}],\"usage\":{\"input_tokens\":7,"
	    "\"output_tokens\":2,\"total_tokens\":9,\"input_tokens_details\":"
	    "{\"cached_tokens\":0},\"output_tokens_details\":"
	    "{\"reasoning_tokens\":0}}}}\n\n",
	    (struct want){ 7, 2, 2, 1, 0 });
	check("Responses object, not streamed", TALLY_JSON,
	    "{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\","
	    "\"error\":null,\"incomplete_details\":null,\"output\":[{\"type\":"
	    "\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"x\"}]}],"
	    "\"usage\":{\"input_tokens\":5,\"output_tokens\":3,\"total_tokens\":8,"
	    "\"output_tokens_details\":{\"reasoning_tokens\":0,"
	    "\"output_tokens\":77}}}",
	    (struct want){ 5, 3, 0, 0, 0 });
	check("a usage deeper than a wrapper's is not read", TALLY_JSON,
	    "{\"data\":{\"usage\":{\"input_tokens\":5}},\"message\":{\"x\":"
	    "{\"usage\":{\"input_tokens\":6}}}}",
	    (struct want){ -1, -1, 1, 0, 0 });
	{
		/* A long key is skipped, not truncated into a match. */
		char	big[200];

		snprintf(big, sizeof big, "{\"%s\":5,\"eval_count\":2,"
		    "\"done\":true}", "eval_count_and_a_key_that_is_much_longer_"
		    "than_the_key_buffer");
		check("a long key", TALLY_JSON, big,
		    (struct want){ -1, 2, 0, 1, 0 });
	}
	{
		/* Nesting beyond the depth kept is followed, never indexed. */
		char	deep[100];

		memset(deep, '{', 66);
		deep[66] = '\0';
		check("objects nested deeper than the stack", TALLY_JSON, deep,
		    (struct want){ -1, -1, 0, 0, 0 });
	}
	return tap_done();
}
