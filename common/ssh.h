/*
 * ssh.h: the SSH transport of the admin-API client, and the parts of
 * OpenSSH's client configuration it honours.
 */
#ifndef OG_SSH_H
#define OG_SSH_H

#include <stddef.h>

#define SSH_MAX_IDENTITIES	16

/* Where to log in: the URL, completed from ~/.ssh/config. */
struct ssh_target {
	char	*alias;		/* the host as the user wrote it */
	char	*host;		/* the name or address to connect to */
	char	*user;
	int	 port;
	char	*identity[SSH_MAX_IDENTITIES];	/* IdentityFile, in order */
	int	 nidentity;
};

/*
 * Parse ssh://[user@]host[:port] and apply the matching Host blocks of
 * ~/.ssh/config. Returns 0, or -1 with *err set if the URL is wrong.
 */
int	 ssh_target_parse(const char *url, struct ssh_target *, char **err);
void	 ssh_target_free(struct ssh_target *);
/* $HOME, else the password database's idea of it. */
const char *ssh_home(void);
/* ~/x as $HOME/x; anything else copied. */
char	*ssh_expand(const char *);

#endif
