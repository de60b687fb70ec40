// tap.mjs: the few helpers the client scripts share. Each check prints
// one line, "ok - NAME" or "not ok - NAME : DETAIL", which
// tests/clients.test turns into TAP; the process exits non-zero when any
// check failed.

let failures = 0;

// One line, so that the shell side can read the output line by line.
function oneLine(s) {
	return String(s).replace(/\s*\n\s*/g, ' ').slice(0, 400);
}

export function describe(value) {
	if (value instanceof Error) {
		const kind = value.constructor?.name && value.constructor.name !== value.name
		    ? `${value.constructor.name} (${value.name})` : value.name;
		let s = `${kind}: ${value.message}`;
		if (value.status !== undefined)
			s += ` (status ${value.status})`;
		if (value.status_code !== undefined)
			s += ` (status_code ${value.status_code})`;
		if (value.cause)
			s += ` caused by ${describe(value.cause)}`;
		return s;
	}
	try {
		return JSON.stringify(value);
	} catch {
		return String(value);
	}
}

// check(NAME, CONDITION, DETAIL): DETAIL is shown only on failure and
// may be a function, so that it is computed only then.
export function check(name, cond, detail = '') {
	if (cond) {
		console.log(`ok - ${name}`);
	} else {
		failures++;
		if (typeof detail === 'function')
			detail = detail();
		console.log(`not ok - ${name} : ${oneLine(detail)}`);
	}
}

// equal(NAME, GOT, WANT): compares with JSON, which is enough for the
// strings, numbers and small arrays these scripts look at.
export function equal(name, got, want) {
	check(name, JSON.stringify(got) === JSON.stringify(want),
	    () => `got ${describe(got)}, want ${describe(want)}`);
}

// step(NAME, FN): runs one group of checks; an exception (a failed
// request, a malformed answer) becomes a failed check of its own
// instead of ending the script.
export async function step(name, fn) {
	try {
		await fn();
	} catch (e) {
		check(name, false, () => `threw ${describe(e)}`);
	}
}

// expectThrow(NAME, FN, TEST): FN must throw, and TEST(error) must hold.
export async function expectThrow(name, fn, test) {
	let result;
	try {
		result = await fn();
	} catch (e) {
		check(name, test(e), () => `threw ${describe(e)}`);
		return;
	}
	check(name, false, () => `did not throw; returned ${describe(result)}`);
}

// The text the fake backend generates: token i is "tok<i> ".
export function fakeText(n) {
	let s = '';
	for (let i = 0; i < n; i++)
		s += `tok${i} `;
	return s;
}

// The arguments and environment every script takes.
export function setup() {
	const base = process.argv[2];
	if (!base) {
		console.error(`usage: node ${process.argv[1]} BASEURL`);
		process.exit(2);
	}
	return {
		base: base.replace(/\/+$/, ''),
		token: process.env.OG_TOKEN || '',
		tokens: Number(process.env.FAKE_TOKENS || 5),
	};
}

export function finish() {
	process.exitCode = failures ? 1 : 0;
}
