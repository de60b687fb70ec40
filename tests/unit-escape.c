/*
 * unit-escape.c: what a terminal would act on is escaped, and nothing
 * else; widths count what the screen shows; parse_model_pattern takes
 * names and globs only.
 */
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "parse.h"
#include "tap.h"

static const struct {
	const char	*in;
	const char	*want;
	const char	*what;
} escape_cases[] = {
	{ "llama3.2:latest", "llama3.2:latest", "a plain name passes" },
	{ "", "", "so does nothing" },
	{ "a\\e", "a\\e", "a backslash is not doubled" },
	{ "\x1b]0;title\x07", "\\e]0;title\\x07", "an OSC title: ESC and BEL" },
	{ "\x1b[1;1f", "\\e[1;1f", "a cursor move" },
	{ "a\r\n\tb", "a\\r\\n\\tb", "CR, LF and TAB" },
	{ "\x01\x1f\x7f", "\\x01\\x1f\\x7f", "other C0 controls and DEL" },
	{ "caf\xc3\xa9 \xe6\xa8\xa1\xe5\x9e\x8b \xf0\x9f\xa6\x99",
	    "caf\xc3\xa9 \xe6\xa8\xa1\xe5\x9e\x8b \xf0\x9f\xa6\x99",
	    "UTF-8 in other scripts and outside the BMP passes" },
	{ "\xc2\x85\xc2\x9b", "\\u0085\\u009b", "C1 controls as code points" },
	{ "a\xe2\x80\xae" "b\xe2\x80\xaa\xe2\x81\xa6\xe2\x81\xa9",
	    "a\\u202eb\\u202a\\u2066\\u2069", "bidi overrides and isolates" },
	{ "\xe2\x80\xa8\xe2\x80\xa9", "\\u2028\\u2029",
	    "line and paragraph separators" },
	{ "\xe2\x80\x8f\xe2\x80\xad", "\xe2\x80\x8f\\u202d",
	    "a right-to-left mark is no override: it passes" },
	{ "\x9b", "\\x9b", "a bare C1 byte is not UTF-8" },
	{ "bad\xffname", "bad\\xffname", "an invalid byte" },
	{ "\xc0\xaf", "\\xc0\\xaf", "an overlong '/'" },
	{ "\xe0\x80\x9b", "\\xe0\\x80\\x9b", "an overlong CSI" },
	{ "\xed\xa0\x80", "\\xed\\xa0\\x80", "a surrogate" },
	{ "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80", "past U+10FFFF" },
	{ "ab\xe2\x80", "ab\\xe2\\x80", "a sequence cut at the end" },
	{ "\xe2\x1b", "\\xe2\\e", "a sequence cut by ESC" },
};

static const struct {
	const char	*in;
	const char	*want;
} json_cases[] = {
	{ "{\n  \"a\": \"x\\u001by\"\n}", "{\n  \"a\": \"x\\u001by\"\n}" },
	{ "[\"\x7f\xc2\x9b\xe2\x80\xae\"]", "[\"\\u007f\\u009b\\u202e\"]" },
	{ "[\"caf\xc3\xa9\"]", "[\"caf\xc3\xa9\"]" },
};

static const struct {
	const char	*pattern;
	int		 ok;
} pattern_cases[] = {
	{ "llama3.2", 1 },
	{ "qwen2.5:0.5b", 1 },
	{ "registry.ollama.ai/library/mistral:7b-instruct_q4", 1 },
	{ "llama3*", 1 },
	{ "qwen2.5:[0-9]?b", 1 },
	{ "[!x]*", 1 },
	{ "", 0 },
	{ "a b", 0 },
	{ "a,b", 0 },
	{ "a\x1b[2J", 0 },
	{ "a\x07", 0 },
	{ "a\n", 0 },
	{ "a\\b", 0 },
	{ "caf\xc3\xa9", 0 },
	{ "a\xe2\x80\xae", 0 },
};

int
main(void)
{
	char	*s, *again;
	size_t	 n;
	int	 used;

	for (size_t i = 0; i < sizeof escape_cases / sizeof escape_cases[0];
	    i++) {
		s = escape_string(escape_cases[i].in);
		tap_is_str(s, escape_cases[i].want, "escape: %s",
		    escape_cases[i].what);
		again = escape_string(s);
		tap_is_str(again, s, "escaping it again changes nothing");
		free(again);
		free(s);
	}
	for (size_t i = 0; i < sizeof json_cases / sizeof json_cases[0]; i++) {
		s = escape_json(json_cases[i].in);
		tap_is_str(s, json_cases[i].want, "escape_json, case %zu", i);
		free(s);
	}

	/* Widths: one column a character where the locale does not know. */
	tap_is_int(escape_width("abc"), 3, "ASCII: a column each");
	tap_is_int(escape_width("caf\xc3\xa9"), 4, "two bytes, one character");
	n = escape_fit("abcdef", 4, &used);
	tap_ok(n == 4 && used == 4, "fit: four of six columns");
	n = escape_fit("ab\xc3\xa9z", 3, &used);
	tap_ok(n == 4 && used == 3, "fit: a character is never cut (%zu)", n);
	if (setlocale(LC_CTYPE, "C.UTF-8") != NULL) {
		tap_is_int(escape_width("\xe6\xa8\xa1\xe5\x9e\x8b"), 4,
		    "C.UTF-8: CJK takes two columns a character");
		n = escape_fit("a\xe6\xa8\xa1\xe5\x9e\x8b", 4, &used);
		tap_ok(n == 4 && used == 3, "fit: a wide character that "
		    "does not fit is left out (%zu bytes, %d columns)", n, used);
		tap_is_int(escape_width("e\xcc\x81"), 1,
		    "a combining accent takes no column");
	} else
		tap_ok(1, "# SKIP no C.UTF-8 locale");

	for (size_t i = 0; i < sizeof pattern_cases / sizeof pattern_cases[0];
	    i++) {
		s = escape_string(pattern_cases[i].pattern);
		tap_is_int(parse_model_pattern(pattern_cases[i].pattern) == 0,
		    pattern_cases[i].ok, "pattern '%s' %s", s,
		    pattern_cases[i].ok ? "taken" : "refused");
		free(s);
	}
	return tap_done();
}
