/*
 * models.c: model names: which are valid, and which the fleet knows.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "models.h"
#include "xmalloc.h"

#define MODELS_BUCKETS	256	/* a power of two */

struct models_name {
	char			*name;
	struct models_name	*next;
};

static struct models_name	*models_table[MODELS_BUCKETS];
static size_t			 models_n;

/* Ollama looks names up without regard to case, so the hash ignores it. */
static unsigned
models_hash(const char *s)
{
	uint32_t	h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)tolower((unsigned char)*s);
		h *= 16777619u;
	}
	return h & (MODELS_BUCKETS - 1);
}

static int
models_part_char(char c, int namespace)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' ||
	    (c == '.' && !namespace);
}

/* One part of a name, [p, p + n). */
static int
models_part_valid(const char *p, size_t n, size_t max, int namespace,
    int host, const char **why)
{
	if (n == 0) {
		*why = "a part of the name is empty";
		return 0;
	}
	if (n > max) {
		*why = "a part of the name is too long";
		return 0;
	}
	if (!isalnum((unsigned char)p[0]) || (unsigned char)p[0] >= 0x80) {
		if (p[0] != '_') {
			*why = "a part of the name starts with a character "
			    "that is not a letter, digit or '_'";
			return 0;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)p[i] >= 0x80 ||
		    (!models_part_char(p[i], namespace) &&
		    !(host && p[i] == ':'))) {
			*why = "the name holds a character other than letters, "
			    "digits, '_', '-', '.', '/' and ':'";
			return 0;
		}
	}
	return 1;
}

int
models_name_valid(const char *name, const char **why)
{
	const char	*s = name, *slash, *colon, *end;
	const char	*parts[3];
	size_t		 lens[3], nparts = 0;

	if (strncmp(s, "http://", 7) == 0)
		s += 7;
	else if (strncmp(s, "https://", 8) == 0)
		s += 8;
	end = s + strlen(s);
	/* The tag follows the last ':' after the last '/'. */
	slash = strrchr(s, '/');
	colon = strrchr(slash != NULL ? slash : s, ':');
	if (colon != NULL) {
		if (!models_part_valid(colon + 1, (size_t)(end - colon - 1), 80,
		    0, 0, why))
			return 0;
		end = colon;
	}
	/* Then model, namespace and host, from the right. */
	while (nparts < 3) {
		const char	*start = end;

		while (start > s && (nparts == 2 || start[-1] != '/'))
			start--;
		parts[nparts] = start;
		lens[nparts] = (size_t)(end - start);
		nparts++;
		if (start == s)
			break;
		end = start - 1;
	}
	if (nparts == 3 && memchr(parts[2], '/', lens[2]) != NULL) {
		*why = "the name has more than three parts";
		return 0;
	}
	for (size_t i = 0; i < nparts; i++) {
		if (!models_part_valid(parts[i], lens[i], i == 2 ? 350 : 80,
		    i == 1, i == 2, why))
			return 0;
	}
	return 1;
}

static struct models_name *
models_find(const char *name)
{
	struct models_name	*m;

	for (m = models_table[models_hash(name)]; m != NULL; m = m->next) {
		if (strcasecmp(m->name, name) == 0)
			return m;
	}
	return NULL;
}

void
models_note(const char *name)
{
	struct models_name	*m;
	unsigned		 h;

	if (name == NULL || models_n >= MODELS_KNOWN_MAX ||
	    models_find(name) != NULL)
		return;
	m = xcalloc(1, sizeof *m);
	m->name = xstrdup(name);
	h = models_hash(name);
	m->next = models_table[h];
	models_table[h] = m;
	models_n++;
}

const char *
models_label(const char *name)
{
	struct models_name	*m;

	if (name == NULL || (m = models_find(name)) == NULL)
		return MODELS_OTHER;
	return m->name;
}

void
models_free(void)
{
	for (size_t i = 0; i < MODELS_BUCKETS; i++) {
		struct models_name	*m, *next;

		for (m = models_table[i]; m != NULL; m = next) {
			next = m->next;
			free(m->name);
			free(m);
		}
		models_table[i] = NULL;
	}
	models_n = 0;
}
