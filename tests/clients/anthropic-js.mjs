// anthropic-js.mjs BASEURL: the official `@anthropic-ai/sdk` npm package,
// pointed at the gateway's /v1/messages, against the fake backend.
// Environment: OG_TOKEN, the gateway key; FAKE_TOKENS, how many tokens
// the fake generates.

import Anthropic from '@anthropic-ai/sdk';
import { check, equal, step, expectThrow, fakeText, setup, finish } from './tap.mjs';

const { base, token, tokens } = setup();
// The SDK's own key variable sends x-api-key; no retries, so that an
// error shows up as the error it is.
const client = new Anthropic({ baseURL: base, apiKey: token, maxRetries: 0, timeout: 10000 });
// ANTHROPIC_AUTH_TOKEN's way: Authorization: Bearer.
const bearer = new Anthropic({ baseURL: base, apiKey: null, authToken: token, maxRetries: 0, timeout: 10000 });
const want = fakeText(tokens);
const messages = [{ role: 'user', content: 'one two three' }];

await step('messages.create', async () => {
	const r = await client.messages.create({ model: 'llama3.2', max_tokens: 100, messages });
	equal('messages.create: type', r.type, 'message');
	equal('messages.create: text', r.content?.[0]?.text, want);
	equal('messages.create: stop_reason', r.stop_reason, 'end_turn');
	equal('messages.create: usage', [r.usage?.input_tokens, r.usage?.output_tokens], [3, tokens]);
});

await step('messages.create with a bearer token', async () => {
	const r = await bearer.messages.create({ model: 'llama3.2', max_tokens: 100, messages });
	equal('messages.create with a bearer token: text', r.content?.[0]?.text, want);
});

await step('messages.create stream', async () => {
	const stream = await client.messages.create({ model: 'llama3.2', max_tokens: 100, messages, stream: true });
	const types = [];
	let text = '', usage = null;
	for await (const ev of stream) {
		types.push(ev.type);
		if (ev.type === 'content_block_delta' && ev.delta?.type === 'text_delta')
			text += ev.delta.text;
		if (ev.type === 'message_delta')
			usage = ev.usage;
	}
	equal('messages.create stream: deltas make the text', text, want);
	equal('messages.create stream: first and last events', [types[0], types[types.length - 1]],
	    ['message_start', 'message_stop']);
	equal('messages.create stream: final usage', usage?.output_tokens, tokens);
});

await step('messages.stream helper', async () => {
	let text = '';
	const stream = client.messages.stream({ model: 'llama3.2', max_tokens: 100, messages });
	stream.on('text', (t) => { text += t; });
	const msg = await stream.finalMessage();
	equal('messages.stream helper: text events', text, want);
	equal('messages.stream helper: final message', msg.content?.[0]?.text, want);
	equal('messages.stream helper: usage', [msg.usage?.input_tokens, msg.usage?.output_tokens], [3, tokens]);
});

await expectThrow('a bad key: AuthenticationError 401', () =>
    new Anthropic({ baseURL: base, apiKey: 'og_bad', maxRetries: 0 }).messages.create({
	model: 'llama3.2', max_tokens: 10, messages }),
    (e) => e instanceof Anthropic.AuthenticationError && e.status === 401 &&
	e.error?.error?.type === 'authentication_error');
await expectThrow('an unknown model: NotFoundError 404', () =>
    client.messages.create({ model: 'no-such-model', max_tokens: 10, messages }),
    (e) => e instanceof Anthropic.NotFoundError && e.status === 404);

finish();
