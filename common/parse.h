/*
 * parse.h: strict parsers for the values people type into config files
 * and on command lines: numbers, durations, sizes, booleans, model
 * patterns.
 *
 * Each returns 0 on success and -1 when the whole string is not a valid
 * value; partial matches ("10x", "") are errors, never silently cut.
 */
#ifndef OG_PARSE_H
#define OG_PARSE_H

#include <stdint.h>

/* A non-negative decimal integer no larger than max. */
int	parse_uint(const char *, uint64_t max, uint64_t *);
/* A duration with unit ms, s, m, h or d (bare numbers are seconds), in ms. */
int	parse_duration_ms(const char *, uint64_t *);
/* A size with optional suffix K, M or G (powers of 1024), in bytes. */
int	parse_size(const char *, uint64_t *);
/* yes/no, true/false, on/off, 1/0. */
int	parse_bool(const char *, int *);
/*
 * A pattern of a model allowlist: what an Ollama model name holds
 * ([host/][namespace/]model[:tag]) and the glob characters that
 * fnmatch reads. Nothing else, so no control character or space ever
 * reaches a list, a log or a terminal.
 */
int	parse_model_pattern(const char *);
/* A user name: 1 to 64 letters, digits, '.', '_', '-', not led by '.' or '-'. */
int	parse_user_name(const char *);
#define PARSE_USER_NAME_HELP "1 to 64 letters, digits, '.', '_' or '-', " \
	"not starting with '.' or '-'"
#define PARSE_MODEL_PATTERN_HELP "letters, digits, '.', '_', '-', ':', " \
	"'/' and the globs '*', '?', '[', ']', '!'"

#endif
