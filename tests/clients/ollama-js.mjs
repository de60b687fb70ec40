// ollama-js.mjs BASEURL: the official `ollama` npm package, pointed at the
// gateway, against the fake backend. Environment: OG_TOKEN, the gateway
// key to send (none when unset); FAKE_TOKENS, how many tokens the fake
// generates (its --tokens, 5 by default).

import { Ollama } from 'ollama';
import { check, equal, step, expectThrow, fakeText, setup, finish } from './tap.mjs';

const { base, token, tokens } = setup();
// The library sets no time limit of its own; one hung request should
// fail its check, not stop the script.
const timedFetch = (url, opts = {}) => {
	const limit = AbortSignal.timeout(10000);
	const signal = opts.signal ? AbortSignal.any([opts.signal, limit]) : limit;
	return fetch(url, { ...opts, signal });
};
const client = new Ollama({
	host: base,
	headers: token ? { Authorization: `Bearer ${token}` } : {},
	fetch: timedFetch,
});
const want = fakeText(tokens);
const messages = [{ role: 'user', content: 'say something nice' }];

await step('version', async () => {
	const r = await client.version();
	check('version: a version string', /^\d+\.\d+/.test(r.version ?? ''), () => JSON.stringify(r));
});

await step('list', async () => {
	const r = await client.list();
	const names = (r.models ?? []).map((m) => m.name).sort();
	for (const m of ['llama3.2:latest', 'nomic-embed-text:latest', 'qwen2.5:0.5b'])
		check(`list: has ${m}`, names.includes(m), () => `models: ${JSON.stringify(names)}`);
	const m = (r.models ?? []).find((x) => x.name === 'llama3.2:latest');
	check('list: entries carry details', m && typeof m.details === 'object', () => JSON.stringify(m));
});

await step('show', async () => {
	const r = await client.show({ model: 'llama3.2' });
	check('show: details object', r && typeof r.details === 'object' && r.details !== null,
	    () => JSON.stringify(r));
	check('show: model_info object', r && typeof r.model_info === 'object',
	    () => JSON.stringify(r));
});

await step('ps', async () => {
	const r = await client.ps();
	check('ps: models is an array', Array.isArray(r.models), () => JSON.stringify(r));
});

await step('chat', async () => {
	const r = await client.chat({ model: 'llama3.2', messages });
	equal('chat: role', r.message?.role, 'assistant');
	equal('chat: content', r.message?.content, want);
	equal('chat: done', r.done, true);
	equal('chat: done_reason', r.done_reason, 'stop');
	equal('chat: eval_count', r.eval_count, tokens);
	check('chat: prompt_eval_count', r.prompt_eval_count > 0, () => JSON.stringify(r));
});

await step('chat stream', async () => {
	const it = await client.chat({ model: 'llama3.2', messages, stream: true });
	let text = '', pieces = 0, last = null;
	for await (const part of it) {
		if (!part.done)
			pieces++;
		text += part.message?.content ?? '';
		last = part;
	}
	check('chat stream: several pieces', pieces >= 2, `${pieces} pieces`);
	equal('chat stream: pieces concatenate to the text', text, want);
	equal('chat stream: ends with done', last?.done, true);
	equal('chat stream: eval_count on the last piece', last?.eval_count, tokens);
	check('chat stream: prompt_eval_count on the last piece', last?.prompt_eval_count > 0,
	    () => JSON.stringify(last));
});

await step('chat num_predict', async () => {
	const r = await client.chat({ model: 'qwen2.5:0.5b', messages, options: { num_predict: 2 } });
	equal('chat num_predict: content cut short', r.message?.content, fakeText(2));
	equal('chat num_predict: eval_count', r.eval_count, 2);
	equal('chat num_predict: model echoed', r.model, 'qwen2.5:0.5b');
});

await step('generate', async () => {
	const r = await client.generate({ model: 'llama3.2', prompt: 'one two three' });
	equal('generate: response', r.response, want);
	equal('generate: done', r.done, true);
	equal('generate: eval_count', r.eval_count, tokens);
	equal('generate: prompt_eval_count', r.prompt_eval_count, 3);
});

await step('generate stream', async () => {
	const it = await client.generate({ model: 'llama3.2', prompt: 'one two three four', stream: true });
	let text = '', pieces = 0, last = null;
	for await (const part of it) {
		if (!part.done)
			pieces++;
		text += part.response ?? '';
		last = part;
	}
	check('generate stream: several pieces', pieces >= 2, `${pieces} pieces`);
	equal('generate stream: pieces concatenate to the text', text, want);
	equal('generate stream: ends with done', last?.done, true);
	equal('generate stream: eval_count', last?.eval_count, tokens);
	equal('generate stream: prompt_eval_count', last?.prompt_eval_count, 4);
});

await step('embed', async () => {
	const r = await client.embed({ model: 'nomic-embed-text', input: ['first text', 'second'] });
	const e = r.embeddings ?? [];
	equal('embed: one vector per input', e.length, 2);
	check('embed: vectors of numbers',
	    e.length === 2 && e.every((v) => Array.isArray(v) && v.length > 0 &&
	    v.every((x) => typeof x === 'number')) && e[0].length === e[1].length,
	    () => JSON.stringify(r).slice(0, 200));
});

await step('embed single', async () => {
	const r = await client.embed({ model: 'nomic-embed-text:latest', input: 'just one' });
	equal('embed single: one vector', (r.embeddings ?? []).length, 1);
});

const notFound = (e) => e?.name === 'ResponseError' && e.status_code === 404 &&
    /not found/.test(e.error ?? '');
await expectThrow('chat with an unknown model: ResponseError 404', () =>
    client.chat({ model: 'no-such-model', messages }), notFound);
await expectThrow('streamed chat with an unknown model: ResponseError 404', async () => {
	const it = await client.chat({ model: 'no-such-model', messages, stream: true });
	for await (const part of it)
		void part;
}, notFound);
await expectThrow('generate with an unknown model: ResponseError 404', () =>
    client.generate({ model: 'no-such-model:7b', prompt: 'x' }), notFound);

// Stopping a stream half-way, the way the library does it: abort()
// closes the connection. The fake is asked for a long, slow stream;
// clients.test then checks that the backend saw the request cancelled.
await step('chat stream abort', async () => {
	const slow = new Ollama({
		host: base,
		headers: {
			...(token ? { Authorization: `Bearer ${token}` } : {}),
			'X-Fake-Tokens': '1000', 'X-Fake-Delay': '20',
		},
		fetch: timedFetch,
	});
	const it = await slow.chat({ model: 'llama3.2', messages, stream: true });
	let pieces = 0, error = null;
	try {
		for await (const part of it) {
			if (++pieces === 3)
				it.abort();
			void part;
		}
	} catch (e) {
		error = e;
	}
	equal('chat stream abort: stopped after the abort', pieces, 3);
	check('chat stream abort: the iterator ends with an AbortError', error?.name === 'AbortError',
	    () => `ended with ${error}`);
});

// The client still works after the errors (the connection pool is sane).
await step('chat after errors', async () => {
	const r = await client.chat({ model: 'llama3.2', messages });
	equal('chat after errors: content', r.message?.content, want);
});

finish();
