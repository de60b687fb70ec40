/*
 * models.h: model names: which are valid, and which the fleet knows.
 *
 * A model name comes from a client, so it is checked as Ollama checks
 * one before it goes anywhere, and it becomes a metrics label or a line
 * of the live view only once the fleet has shown that it knows the
 * model: a backend listed it, or served a request for it. Every other
 * name is counted as "other", so that no client can grow the daemon's
 * tables by inventing names. The set of known names has a bound too.
 */
#ifndef OG_MODELS_H
#define OG_MODELS_H

#include <stddef.h>

/* How many names the fleet may make known; later ones count as other. */
#define MODELS_KNOWN_MAX	1024
#define MODELS_OTHER		"other"

/*
 * Is name a model name as Ollama reads one:
 * [http[s]://][host/][namespace/]model[:tag], parts 1 to 80 characters
 * (the host up to 350) of letters, digits, '_', '-' and '.', each
 * starting with a letter, digit or '_', no '.' in a namespace, ':' only
 * before the tag or in the host's port. On failure *why says which rule
 * failed.
 */
int		 models_name_valid(const char *name, const char **why);
/* The fleet knows this model (a backend served or listed it). */
void		 models_note(const char *name);
/* The label to count a model under: its normal name, or "other". */
const char	*models_label(const char *name);
void		 models_free(void);

#endif
