/*
 * privs.c: running as root as briefly as possible.
 *
 * Started as root, ogproxyd binds its addresses, reads its certificate
 * and key, hands the state directory to the `user` account, then
 * becomes that account for good before it opens the database or serves
 * anyone. Without `user` it refuses to face the network as root: an
 * address that is not loopback needs `user` (or `user = root`, said
 * out loud). A gateway on loopback alone starts with a warning, so
 * that trying it out as root on a fresh machine works.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "listener.h"
#include "log.h"
#include "privs.h"
#include "xmalloc.h"

/*
 * Descriptors beyond two a client connection: admin and metrics
 * connections, listeners, SQLite, the loop.
 */
#define PRIVS_FD_SPARE	256

/* The first address that is not loopback, or NULL. */
static const char *
privs_public_address(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nlisten; i++) {
		if (!listener_is_loopback(cfg->listen[i]))
			return cfg->listen[i];
	}
	for (size_t i = 0; i < cfg->ntls_listen; i++) {
		if (!listener_is_loopback(cfg->tls_listen[i]))
			return cfg->tls_listen[i];
	}
	if (cfg->metrics_listen != NULL &&
	    !listener_is_loopback(cfg->metrics_listen))
		return cfg->metrics_listen;
	return NULL;
}

int
privs_check(const struct config *cfg, char **err)
{
	const char	*addr;
	struct passwd	*pw;

	if (cfg->user != NULL) {
		if ((pw = getpwnam(cfg->user)) == NULL) {
			*err = xasprintf("user %s: no such account", cfg->user);
			return -1;
		}
		if (geteuid() != 0 && pw->pw_uid != 0 &&
		    pw->pw_uid != geteuid()) {
			*err = xasprintf("user %s: only root can become "
			    "another account", cfg->user);
			return -1;
		}
		return 0;
	}
	if (geteuid() != 0)
		return 0;
	if ((addr = privs_public_address(cfg)) != NULL) {
		*err = xasprintf("refusing to serve %s as root: set user in "
		    "[server] to the account to run as (user = root to insist)",
		    addr);
		return -1;
	}
	return 0;
}

/*
 * Hand one entry of the state directory to the account. The account
 * owns the directory and may swap any name in it for a link at any
 * moment, so nothing here goes by name twice: the entry is opened as a
 * path without following a link (O_PATH opens no device and blocks on
 * no FIFO), and the descriptor that was checked is the one changed.
 * A symbolic link, or a file with another name elsewhere, is refused:
 * the daemon never makes either, and handing over what it points to
 * could hand the account a file of root's.
 */
static int
privs_give_entry(int dfd, const char *dir, const char *name, uid_t uid,
    gid_t gid)
{
	struct stat	st;
	int		fd, rc = 0;

	if ((fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;	/* gone since it was listed */
		log_error("state_dir %s: %s: %s", dir, name, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		log_error("state_dir %s: %s: %s", dir, name, strerror(errno));
		rc = -1;
	} else if (S_ISLNK(st.st_mode)) {
		log_error("state_dir %s: %s is a symbolic link; refusing to "
		    "hand it to the account (remove it, or move the file it "
		    "names into state_dir)", dir, name);
		rc = -1;
	} else if (!S_ISREG(st.st_mode)) {
		/* Directories and the admin socket are left as they are. */
	} else if (st.st_nlink != 1) {
		log_error("state_dir %s: %s has %ju hard links; refusing to "
		    "hand it to the account (remove the other names)", dir,
		    name, (uintmax_t)st.st_nlink);
		rc = -1;
	} else if ((st.st_uid != uid || st.st_gid != gid) &&
	    fchownat(fd, "", uid, gid, AT_EMPTY_PATH) == -1) {
		log_error("state_dir %s: %s: chown: %s", dir, name,
		    strerror(errno));
		rc = -1;
	}
	close(fd);
	return rc;
}

/*
 * Hand the state directory and the files in it to the account. The
 * directory itself is opened without following a link, so that a link
 * put in its place cannot send the walk somewhere else.
 */
static int
privs_give_state(const char *dir, uid_t uid, gid_t gid)
{
	DIR		*d;
	struct dirent	*de;
	int		 dfd, rc = 0;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd == -1) {
		if (errno == ELOOP || errno == ENOTDIR)
			log_error("state_dir %s: not a directory (a symbolic "
			    "link is refused: name the directory itself)", dir);
		else
			log_error("state_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (fchown(dfd, uid, gid) == -1) {
		log_error("state_dir %s: chown: %s", dir, strerror(errno));
		close(dfd);
		return -1;
	}
	if ((d = fdopendir(dfd)) == NULL) {
		log_error("state_dir %s: %s", dir, strerror(errno));
		close(dfd);
		return -1;
	}
	/* Every entry is looked at, so that the log names each refusal. */
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (privs_give_entry(dfd, dir, de->d_name, uid, gid) != 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

/*
 * Give the admin socket to the account, keeping its group. It is
 * opened as a path without following a link, and changed only if it
 * is still a socket: its directory may be the account's.
 */
static int
privs_give_socket(const char *path, uid_t uid)
{
	struct stat	st;
	int		fd, rc = 0;

	if ((fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		log_error("admin_socket %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode)) {
		log_error("admin_socket %s: no longer a socket; refusing to hand "
		    "it to the account", path);
		rc = -1;
	} else if (fchownat(fd, "", uid, (gid_t)-1, AT_EMPTY_PATH) == -1) {
		log_error("admin_socket %s: chown: %s", path, strerror(errno));
		rc = -1;
	}
	close(fd);
	return rc;
}

int
privs_drop(const struct config *cfg)
{
	struct passwd	*pw;

	if (cfg->user == NULL) {
		if (geteuid() == 0)
			log_warn("running as root: set user in [server] to the "
			    "account ogproxyd should run as");
		return 0;
	}
	if ((pw = getpwnam(cfg->user)) == NULL) {
		log_error("user %s: no such account", cfg->user);
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_uid == geteuid())
		return 0;	/* told to stay root, or already the account */
	if (privs_give_state(cfg->state_dir, pw->pw_uid, pw->pw_gid) != 0)
		return -1;
	/* The account may use its own admin socket; the group is kept. */
	if (privs_give_socket(cfg->admin_socket, pw->pw_uid) != 0)
		return -1;
	if (setgroups(0, NULL) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1) {
		log_error("user %s: cannot become it: %s", cfg->user,
		    strerror(errno));
		return -1;
	}
	/* Make sure there is no way back. */
	if (setuid(0) != -1 || geteuid() == 0) {
		log_error("user %s: root could be regained", cfg->user);
		return -1;
	}
	log_info("running as %s (uid %u)", cfg->user, (unsigned)pw->pw_uid);
	return 0;
}

void
privs_raise_nofile(uint64_t max_connections)
{
	struct rlimit	rl;
	rlim_t		need = (rlim_t)(2 * max_connections + PRIVS_FD_SPARE);

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= need)
		return;
	/* Root may raise the hard limit too; others only up to it. */
	if (rl.rlim_max < need && rl.rlim_max != RLIM_INFINITY) {
		struct rlimit	want = { need, need };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			return;
		rl.rlim_cur = rl.rlim_max;
	} else
		rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur < need)
		log_warn("max_connections %llu needs %llu file descriptors; "
		    "the limit is %llu", (unsigned long long)max_connections,
		    (unsigned long long)need, (unsigned long long)rl.rlim_cur);
}
