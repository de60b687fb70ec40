// openai-js.mjs BASEURL: the official `openai` npm package, pointed at
// the gateway's /v1 routes, against the fake backend. Environment:
// OG_TOKEN, the gateway key (the SDK insists on some key, so "unused"
// when unset); FAKE_TOKENS, how many tokens the fake generates.

import OpenAI from 'openai';
import { check, equal, step, expectThrow, fakeText, setup, finish } from './tap.mjs';

const { base, token, tokens } = setup();
// No retries: a gateway error should show up as the error it is, not as
// a timeout after the SDK's backoff.
const client = new OpenAI({
	baseURL: `${base}/v1`,
	apiKey: token || 'unused',
	maxRetries: 0,
	timeout: 10000,
});
const want = fakeText(tokens);
const messages = [{ role: 'user', content: 'say something nice' }];

await step('models.list', async () => {
	const ids = [];
	for await (const m of client.models.list()) {
		ids.push(m.id);
		check(`models.list: ${m.id} is a model object`, m.object === 'model', () => JSON.stringify(m));
	}
	for (const m of ['llama3.2:latest', 'nomic-embed-text:latest', 'qwen2.5:0.5b'])
		check(`models.list: has ${m}`, ids.includes(m), () => `ids: ${JSON.stringify(ids)}`);
});

await step('models.retrieve', async () => {
	const m = await client.models.retrieve('llama3.2:latest');
	equal('models.retrieve: id', m.id, 'llama3.2:latest');
	equal('models.retrieve: object', m.object, 'model');
});

await step('chat.completions', async () => {
	const r = await client.chat.completions.create({ model: 'llama3.2', messages });
	equal('chat.completions: object', r.object, 'chat.completion');
	equal('chat.completions: content', r.choices?.[0]?.message?.content, want);
	equal('chat.completions: role', r.choices?.[0]?.message?.role, 'assistant');
	equal('chat.completions: finish_reason', r.choices?.[0]?.finish_reason, 'stop');
	equal('chat.completions: usage.completion_tokens', r.usage?.completion_tokens, tokens);
	check('chat.completions: usage.total_tokens adds up',
	    r.usage && r.usage.prompt_tokens > 0 &&
	    r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens,
	    () => JSON.stringify(r.usage));
});

await step('chat.completions max_tokens', async () => {
	const r = await client.chat.completions.create({ model: 'qwen2.5:0.5b', messages, max_tokens: 2 });
	equal('chat.completions max_tokens: content cut short', r.choices?.[0]?.message?.content, fakeText(2));
	equal('chat.completions max_tokens: finish_reason', r.choices?.[0]?.finish_reason, 'length');
	equal('chat.completions max_tokens: model echoed', r.model, 'qwen2.5:0.5b');
});

// A stream read with `for await`: the deltas, the finish reason and any
// usage it carried.
async function readChatStream(params) {
	const stream = await client.chat.completions.create({ ...params, stream: true });
	const out = { text: '', chunks: 0, finish: null, usage: [], roles: [], last: null };
	for await (const chunk of stream) {
		out.chunks++;
		out.last = chunk;
		if (chunk.usage)
			out.usage.push(chunk.usage);
		for (const c of chunk.choices ?? []) {
			if (c.delta?.role)
				out.roles.push(c.delta.role);
			out.text += c.delta?.content ?? '';
			if (c.finish_reason)
				out.finish = c.finish_reason;
		}
	}
	return out;
}

await step('chat.completions stream', async () => {
	const s = await readChatStream({ model: 'llama3.2', messages });
	check('chat.completions stream: several chunks', s.chunks >= 2, `${s.chunks} chunks`);
	equal('chat.completions stream: deltas concatenate to the text', s.text, want);
	check('chat.completions stream: the role is assistant',
	    s.roles.length >= 1 && s.roles.every((r) => r === 'assistant'), () => JSON.stringify(s.roles));
	equal('chat.completions stream: finish_reason', s.finish, 'stop');
	check('chat.completions stream: no usage when not asked for', s.usage.length === 0,
	    () => JSON.stringify(s.usage));
});

await step('chat.completions stream include_usage', async () => {
	const s = await readChatStream({
		model: 'llama3.2', messages, stream_options: { include_usage: true },
	});
	equal('chat.completions stream include_usage: deltas concatenate', s.text, want);
	equal('chat.completions stream include_usage: finish_reason', s.finish, 'stop');
	const u = s.usage.filter((x) => x.completion_tokens > 0);
	equal('chat.completions stream include_usage: one usage chunk', u.length, 1);
	equal('chat.completions stream include_usage: completion_tokens', u[0]?.completion_tokens, tokens);
	check('chat.completions stream include_usage: usage chunk is last, with no choices',
	    s.last?.usage?.completion_tokens === tokens && (s.last?.choices ?? []).length === 0,
	    () => JSON.stringify(s.last));
});

await step('completions', async () => {
	const r = await client.completions.create({ model: 'llama3.2', prompt: 'one two three' });
	equal('completions: object', r.object, 'text_completion');
	equal('completions: text', r.choices?.[0]?.text, want);
	equal('completions: finish_reason', r.choices?.[0]?.finish_reason, 'stop');
	equal('completions: usage.prompt_tokens', r.usage?.prompt_tokens, 3);
	equal('completions: usage.completion_tokens', r.usage?.completion_tokens, tokens);
});

await step('completions stream', async () => {
	const stream = await client.completions.create({
		model: 'llama3.2', prompt: 'one two', stream: true,
		stream_options: { include_usage: true },
	});
	let text = '', finish = null, usage = null;
	for await (const chunk of stream) {
		for (const c of chunk.choices ?? []) {
			text += c.text ?? '';
			if (c.finish_reason)
				finish = c.finish_reason;
		}
		if (chunk.usage && chunk.usage.completion_tokens > 0)
			usage = chunk.usage;
	}
	equal('completions stream: text', text, want);
	equal('completions stream: finish_reason', finish, 'stop');
	equal('completions stream: usage', [usage?.prompt_tokens, usage?.completion_tokens], [2, tokens]);
});

const isVector = (v) => v && v.length > 0 && Array.from(v).every((x) => typeof x === 'number' && isFinite(x));

await step('embeddings', async () => {
	// The SDK asks for base64 unless told otherwise, and decodes it.
	const r = await client.embeddings.create({ model: 'nomic-embed-text', input: ['first text', 'second'] });
	equal('embeddings: one vector per input', r.data?.length, 2);
	check('embeddings: decoded vectors of numbers',
	    r.data?.length === 2 && r.data.every((d) => isVector(d.embedding)),
	    () => JSON.stringify(r).slice(0, 200));
	equal('embeddings: indexes', r.data?.map((d) => d.index), [0, 1]);
	check('embeddings: usage', r.usage?.prompt_tokens > 0, () => JSON.stringify(r.usage));
});

await step('embeddings float', async () => {
	const r = await client.embeddings.create({
		model: 'nomic-embed-text:latest', input: 'just one', encoding_format: 'float',
	});
	equal('embeddings float: one vector', r.data?.length, 1);
	check('embeddings float: an array of numbers', Array.isArray(r.data?.[0]?.embedding) &&
	    isVector(r.data[0].embedding), () => JSON.stringify(r).slice(0, 200));
});

await step('responses.create', async () => {
	const r = await client.responses.create({ model: 'llama3.2', input: 'one two three' });
	equal('responses.create: object', r.object, 'response');
	equal('responses.create: output_text', r.output_text, want);
	equal('responses.create: usage', [r.usage?.input_tokens, r.usage?.output_tokens], [3, tokens]);
});

await step('responses.create stream', async () => {
	const stream = await client.responses.create({ model: 'llama3.2', input: 'one two', stream: true });
	let text = '', done = null;
	for await (const ev of stream) {
		if (ev.type === 'response.output_text.delta')
			text += ev.delta;
		if (ev.type === 'response.completed')
			done = ev.response;
	}
	equal('responses.create stream: deltas make the text', text, want);
	equal('responses.create stream: usage in response.completed',
	    [done?.usage?.input_tokens, done?.usage?.output_tokens], [2, tokens]);
});

await expectThrow('chat.completions with an unknown model: NotFoundError 404', () =>
    client.chat.completions.create({ model: 'no-such-model', messages }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
await expectThrow('streamed chat.completions with an unknown model: NotFoundError 404', async () => {
	const s = await client.chat.completions.create({ model: 'no-such-model', messages, stream: true });
	for await (const chunk of s)
		void chunk;
}, (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
await expectThrow('models.retrieve of an unknown model: NotFoundError 404', () =>
    client.models.retrieve('no-such-model:latest'),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404);

// Stopping a stream half-way: the SDK's abort closes the connection;
// clients.test checks that the backend saw the request cancelled.
await step('chat.completions stream abort', async () => {
	const stream = await client.chat.completions.create({ model: 'llama3.2', messages, stream: true },
	    { headers: { 'X-Fake-Tokens': '1000', 'X-Fake-Delay': '20' } });
	let chunks = 0, error = null;
	try {
		for await (const chunk of stream) {
			if (++chunks === 3)
				stream.controller.abort();
			void chunk;
		}
	} catch (e) {
		error = e;
	}
	check('chat.completions stream abort: stopped after the abort', chunks >= 3 && chunks < 10,
	    `${chunks} chunks`);
	check('chat.completions stream abort: ends quietly or with an abort error',
	    error === null || /abort/i.test(`${error?.name} ${error?.message}`), () => `ended with ${error}`);
});

await step('chat.completions after errors', async () => {
	const r = await client.chat.completions.create({ model: 'llama3.2', messages });
	equal('chat.completions after errors: content', r.choices?.[0]?.message?.content, want);
});

finish();
