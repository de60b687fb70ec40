// ai-sdk.mjs BASEURL: the Vercel AI SDK (`ai`) through the gateway, with
// its two ways to an Ollama: `@ai-sdk/openai`, whose default model speaks
// the Responses API (/v1/responses), and `ollama-ai-provider-v2`, which
// speaks the native /api/chat. Environment: OG_TOKEN, the gateway key;
// FAKE_TOKENS, how many tokens the fake generates.

import { generateText, streamText } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createOllama } from 'ollama-ai-provider-v2';
import { check, equal, step, fakeText, setup, finish } from './tap.mjs';

const { base, token, tokens } = setup();
// OPENAI_API_KEY's way: Authorization: Bearer.
const openai = createOpenAI({ baseURL: `${base}/v1`, apiKey: token });
// The provider has no key of its own: the token goes in its headers.
const ollama = createOllama({
	baseURL: `${base}/api`,
	headers: { Authorization: `Bearer ${token}` },
});
const want = fakeText(tokens);
const prompt = 'one two three';

async function generate(name, model) {
	await step(`${name} generateText`, async () => {
		const r = await generateText({ model, prompt, maxRetries: 0 });
		equal(`${name} generateText: text`, r.text, want);
		equal(`${name} generateText: usage`,
		    [r.usage?.inputTokens, r.usage?.outputTokens], [3, tokens]);
	});
}

async function stream(name, model) {
	await step(`${name} streamText`, async () => {
		let error = null;
		const r = streamText({ model, prompt, maxRetries: 0,
		    onError: ({ error: e }) => { error = e; } });
		const parts = [];
		for await (const t of r.textStream)
			parts.push(t);
		check(`${name} streamText: several parts`, parts.length >= 2,
		    () => `${parts.length} parts`);
		equal(`${name} streamText: text`, parts.join(''), want);
		const usage = await r.usage;
		equal(`${name} streamText: usage`,
		    [usage?.inputTokens, usage?.outputTokens], [3, tokens]);
		check(`${name} streamText: no error`, error === null, () => `${error}`);
	});
}

// openai(MODEL) is the Responses API since AI SDK 5.
await generate('openai', openai('llama3.2'));
await stream('openai', openai('llama3.2'));
// A backend that fails mid-way: the gateway ends the stream with the
// Responses API's error event, which the SDK reports as the error it is.
await step('openai streamText broken', async () => {
	let error = null;
	const r = streamText({ model: openai('llama3.2'), prompt, maxRetries: 0,
	    headers: { 'X-Fake-Fault': 'close', 'X-Fake-Tokens': '10' },
	    onError: ({ error: e }) => { error = e; } });
	let text = '';
	for await (const t of r.textStream)
		text += t;
	check('openai streamText broken: some text came first', text.length > 0, 'none');
	check('openai streamText broken: the error is the gateway\'s',
	    /^backend local closed the connection mid-response/.test(`${error?.message}`), () => `${error}`);
});
await generate('ollama', ollama('llama3.2'));
await stream('ollama', ollama('llama3.2'));

finish();
