/*
 * sshconf.c: the SSH URL, and the few keywords of ~/.ssh/config that
 * decide where an "ssh gpubox" goes, so that -H ssh://gpubox goes to
 * the same place: Host, HostName, User, Port and IdentityFile. As in
 * OpenSSH, the first value found for a keyword wins, and the URL's own
 * user and port win over the file.
 */
#include <ctype.h>
#include <fnmatch.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "parse.h"
#include "ssh.h"
#include "xmalloc.h"

/* A longer line in ~/.ssh/config is not one we understand. */
#define SSHCONF_LINE_MAX	4096

static int	sshconf_host_matches(char *patterns, const char *alias);
static void	sshconf_apply(struct ssh_target *, const char *key,
		    char *value, int *port);
static void	sshconf_read(struct ssh_target *, int *port);

const char *
ssh_home(void)
{
	const char	*home = getenv("HOME");
	struct passwd	*pw;

	if (home != NULL && *home != '\0')
		return home;
	if ((pw = getpwuid(getuid())) != NULL)
		return pw->pw_dir;
	return "/";
}

char *
ssh_expand(const char *path)
{
	if (strncmp(path, "~/", 2) == 0)
		return xasprintf("%s/%s", ssh_home(), path + 2);
	return xstrdup(path);
}

/*
 * "Host a b !c": some pattern matches and no negated one does.
 */
static int
sshconf_host_matches(char *patterns, const char *alias)
{
	char	*p, *save = NULL;
	int	 match = 0;

	for (p = strtok_r(patterns, " \t", &save); p != NULL;
	    p = strtok_r(NULL, " \t", &save)) {
		if (*p == '!') {
			if (fnmatch(p + 1, alias, FNM_CASEFOLD) == 0)
				return 0;
		} else if (fnmatch(p, alias, FNM_CASEFOLD) == 0)
			match = 1;
	}
	return match;
}

static void
sshconf_apply(struct ssh_target *t, const char *key, char *value, int *port)
{
	uint64_t	n;
	size_t		len = strlen(value);

	/* A value may be quoted, for a path with spaces. */
	if (len >= 2 && value[0] == '"' && value[len - 1] == '"') {
		value[len - 1] = '\0';
		value++;
	}
	if (strcasecmp(key, "HostName") == 0 && t->host == NULL) {
		/* %h is the name given, as in "HostName %h.example.org". */
		char	*h = strstr(value, "%h");

		t->host = h == NULL ? xstrdup(value) : xasprintf("%.*s%s%s",
		    (int)(h - value), value, t->alias, h + 2);
	} else if (strcasecmp(key, "User") == 0 && t->user == NULL)
		t->user = xstrdup(value);
	else if (strcasecmp(key, "Port") == 0 && *port == 0) {
		if (parse_uint(value, 65535, &n) == 0 && n > 0)
			*port = (int)n;
	} else if (strcasecmp(key, "IdentityFile") == 0 &&
	    t->nidentity < SSH_MAX_IDENTITIES)
		t->identity[t->nidentity++] = ssh_expand(value);
}

static void
sshconf_read(struct ssh_target *t, int *port)
{
	char	 line[SSHCONF_LINE_MAX], *path, *p, *key, *value;
	FILE	*f;
	int	 active = 1;	/* before the first Host, lines apply to all */

	path = xasprintf("%s/.ssh/config", ssh_home());
	f = fopen(path, "re");
	free(path);
	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		for (p = line; isspace((unsigned char)*p); p++)
			;
		if (*p == '\0' || *p == '#')
			continue;
		/* "Keyword value" or "Keyword=value". */
		key = p;
		p += strcspn(p, " \t=");
		if (*p != '\0')
			*p++ = '\0';
		while (isspace((unsigned char)*p) || *p == '=')
			p++;
		value = p;
		for (p = value + strlen(value); p > value &&
		    isspace((unsigned char)p[-1]); p--)
			p[-1] = '\0';
		if (strcasecmp(key, "Host") == 0)
			active = sshconf_host_matches(value, t->alias);
		else if (strcasecmp(key, "Match") == 0)
			active = 0;	/* not understood: not applied */
		else if (active && *value != '\0')
			sshconf_apply(t, key, value, port);
	}
	fclose(f);
}

int
ssh_target_parse(const char *url, struct ssh_target *t, char **err)
{
	const char	*p, *at, *end, *colon;
	struct passwd	*pw;
	uint64_t	 n;
	int		 port = 0;

	memset(t, 0, sizeof *t);
	if (strncmp(url, "ssh://", 6) != 0) {
		*err = xasprintf("-H %s: only ssh://[user@]host[:port] is "
		    "understood", url);
		return -1;
	}
	p = url + 6;
	end = p + strcspn(p, "/");
	if (*end == '/' && end[1] != '\0') {
		*err = xasprintf("-H %s: a path after the host is not "
		    "understood", url);
		return -1;
	}
	if ((at = memchr(p, '@', (size_t)(end - p))) != NULL) {
		t->user = xstrndup(p, (size_t)(at - p));
		p = at + 1;
	}
	if (*p == '[') {	/* ssh://[::1]:2222 */
		const char	*close = memchr(p, ']', (size_t)(end - p));

		if (close == NULL)
			goto bad;
		t->alias = xstrndup(p + 1, (size_t)(close - p - 1));
		colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
		if (colon == NULL && close + 1 != end)
			goto bad;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		t->alias = xstrndup(p, (size_t)((colon != NULL ? colon : end) -
		    p));
	}
	if (colon != NULL) {
		char	*ps = xstrndup(colon + 1, (size_t)(end - colon - 1));

		if (parse_uint(ps, 65535, &n) != 0 || n == 0) {
			free(ps);
			goto bad;
		}
		free(ps);
		port = (int)n;
	}
	if (*t->alias == '\0' || (t->user != NULL && *t->user == '\0'))
		goto bad;
	sshconf_read(t, &port);
	if (t->host == NULL)
		t->host = xstrdup(t->alias);
	if (t->user == NULL) {
		/* The local login name, as ssh takes it. */
		if ((pw = getpwuid(getuid())) == NULL) {
			*err = xasprintf("-H %s: who are you? (no user in the "
			    "URL and none in the password database)", url);
			ssh_target_free(t);
			return -1;
		}
		t->user = xstrdup(pw->pw_name);
	}
	t->port = port != 0 ? port : 22;
	return 0;
bad:
	*err = xasprintf("-H %s: not ssh://[user@]host[:port]", url);
	ssh_target_free(t);
	return -1;
}

void
ssh_target_free(struct ssh_target *t)
{
	free(t->alias);
	free(t->host);
	free(t->user);
	for (int i = 0; i < t->nidentity; i++)
		free(t->identity[i]);
	memset(t, 0, sizeof *t);
}
