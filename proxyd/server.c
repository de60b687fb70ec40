/*
 * server.c: the daemon's process-wide state and its life: the
 * configuration in force and the counters, start-up in the order that
 * keeps root's part short, reload on SIGHUP or from the admin API, the
 * drain on SIGTERM, and the teardown once the loop has returned.
 *
 * main.c reads the command line and hands a checked configuration to
 * server_start; everything after that is here.
 */
#include <sys/signalfd.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "auth.h"
#include "backend.h"
#include "alert.h"
#include "cache.h"
#include "config.h"
#include "enduser.h"
#include "conn.h"
#include "gpu.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "models.h"
#include "privs.h"
#include "origin.h"
#include "probe.h"
#include "proxy.h"
#include "quota.h"
#include "alias.h"
#include "fleet.h"
#include "server.h"
#include "store.h"
#include "tls.h"
#include "upstream.h"
#include "usage.h"
#include "xmalloc.h"

/* How long SIGTERM waits for requests in flight before closing them. */
#define DRAIN_TIMEOUT_MS	(30 * 1000)
/* How often token last-used times are written to the database. */
#define LAST_USED_FLUSH_MS	(10 * 1000)

struct config		*server_cfg;
struct server_stats	 server_stats;

static const char	*config_path;	/* NULL: built-in defaults */
static struct loop_io	 signal_io;
static struct loop_timer drain_timer;
static struct loop_timer flush_timer;
static int		 draining;
static time_t		 started;

static int	make_dirs(const char *, mode_t);
static void	state_dir_prepare(const struct config *);
static void	flush_last_used(struct loop_timer *);
static void	drain_expired(struct loop_timer *);
static void	shutdown_begin(const char *);
static void	signal_event(struct loop_io *, uint32_t);
static void	signals_init(void);

struct config *
server_load(const char *path, char **err)
{
	struct config	*cfg;

	if (path == NULL)
		return config_builtin();
	if ((cfg = config_load(path, err)) != NULL &&
	    alias_check(cfg, err) != 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/*
 * mkdir -p: the directories above are made searchable (0755), so that
 * the account the daemon becomes can reach the last one, made private.
 */
static int
make_dirs(const char *path, mode_t mode)
{
	char	*p = xstrdup(path);

	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) == -1 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	if (mkdir(p, mode) == -1 && errno != EEXIST) {
		free(p);
		return -1;
	}
	free(p);
	return 0;
}

static void
state_dir_prepare(const struct config *cfg)
{
	int	fd;

	if (make_dirs(cfg->state_dir, 0700) == -1)
		fatal("state_dir %s: %s", cfg->state_dir, strerror(errno));
	/*
	 * State is private whoever created the directory. Root changes the
	 * directory itself, never what a link there points to: the link's
	 * directory may be writable by the account.
	 */
	if ((fd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    (geteuid() == 0 ? O_NOFOLLOW : 0))) == -1 ||
	    fchmod(fd, 0700) == -1) {
		struct stat	st;

		if (lstat(cfg->state_dir, &st) == 0 && S_ISLNK(st.st_mode))
			fatal("state_dir %s: a symbolic link, which root does "
			    "not follow: name the directory itself",
			    cfg->state_dir);
		fatal("state_dir %s: %s", cfg->state_dir, strerror(errno));
	}
	close(fd);
}

char *
server_reload(void)
{
	struct config	*cfg;
	char		*err = NULL;

	log_info("reloading %s",
	    config_path ? config_path : "built-in defaults");
	if ((cfg = server_load(config_path, &err)) == NULL) {
		log_error("reload failed, keeping the running config: %s", err);
		return err;
	}
	/* A certificate that will not load keeps the old one, and all else. */
	if (cfg->ntls_listen > 0 && tls_prepare(cfg, &err) != 0) {
		log_error("reload failed, keeping the running config and "
		    "certificate: %s", err);
		config_free(cfg);
		return err;
	}
	listener_check_reload(cfg);
	if (strcmp(cfg->state_dir, server_cfg->state_dir) != 0 ||
	    strcmp(cfg->admin_socket, server_cfg->admin_socket) != 0)
		log_warn("reload: state_dir and admin_socket take effect at "
		    "the next restart");
	config_free(server_cfg);
	server_cfg = cfg;
	cache_configure(cfg);
	tls_commit();
	backend_sync(cfg);
	fleet_kick();
	/* A shorter usage_retention takes effect now. */
	usage_prune();
	log_info("reloaded");
	return NULL;
}

int64_t
server_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long
server_uptime(void)
{
	return (long)(time(NULL) - started);
}

static void
flush_last_used(struct loop_timer *t)
{
	admin_flush_last_used();
	loop_timer_arm(t, LAST_USED_FLUSH_MS);
}

void
server_drained(void)
{
	if (draining)
		loop_break();
}

static void
drain_expired(struct loop_timer *t)
{
	log_warn("shutdown: %u connections still open after %d s; closing them",
	    conn_count(), DRAIN_TIMEOUT_MS / 1000);
	conn_close_all();
	loop_break();
}

static void
shutdown_begin(const char *why)
{
	if (draining) {
		/* Asked twice: the operator does not want to wait. */
		log_warn("%s again: closing %u connections now", why,
		    conn_count());
		conn_close_all();
		loop_break();
		return;
	}
	draining = 1;
	log_info("%s: no longer accepting; %u requests in flight", why,
	    proxy_active());
	listener_close_all();
	loop_timer_init(&drain_timer, drain_expired, NULL);
	loop_timer_arm(&drain_timer, DRAIN_TIMEOUT_MS);
	conn_drain_all();
}

/*
 * The signals live here rather than in main.c: they arrive as loop
 * events through a signalfd, so the table is part of the running
 * server, and what each one does (reload, drain) is server state that
 * main.c never sees. The descriptor must also be made after loop_init
 * and before the first connection, which only server_start can order.
 */
static void
signal_event(struct loop_io *io, uint32_t events)
{
	struct signalfd_siginfo	si;

	while (read(io->fd, &si, sizeof si) == (ssize_t)sizeof si) {
		switch (si.ssi_signo) {
		case SIGHUP:
			free(server_reload());
			break;
		case SIGTERM:
		case SIGINT:
			shutdown_begin(si.ssi_signo == SIGTERM ? "SIGTERM" :
			    "SIGINT");
			break;
		}
	}
}

static void
signals_init(void)
{
	sigset_t	set;
	int		fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* The loop takes signals as events, so nothing runs in a handler. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		fatal("sigprocmask: %s", strerror(errno));
	if ((fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd: %s", strerror(errno));
	loop_io_init(&signal_io, fd, signal_event, NULL);
	loop_io_set(&signal_io, EPOLLIN);
}

/*
 * Take over a checked configuration (its key already read by
 * tls_prepare) and bring the daemon up to "ready"; -1 if it cannot.
 * The order matters: the sockets are bound while the daemon may still
 * be root, privileges are dropped at once after, and the database is
 * opened only by the account the daemon has become, so that its files
 * belong to that account.
 */
int
server_start(struct config *cfg, const char *path)
{
	config_path = path;
	server_cfg = cfg;
	cache_configure(cfg);
	log_info("ogate %s starting with %s", PACKAGE_VERSION,
	    config_path ? config_path : "built-in defaults");

	started = time(NULL);
	state_dir_prepare(cfg);
	/* Whatever the daemon creates from now on is its own alone. */
	umask(077);
	loop_init();
	signals_init();
	conn_init();
	upstream_init();
	origin_init();
	backend_sync(cfg);
	tls_commit();
	if (listener_open_all(cfg) != 0 ||
	    listener_open_admin(cfg->admin_socket, cfg->admin_group) != 0)
		return -1;
	/* Bound and keyed: root is not needed from here on. */
	privs_raise_nofile(cfg->max_connections);
	if (privs_drop(cfg) != 0)
		return -1;
	if (store_open(cfg->state_dir) != 0 || auth_load(store_db()) != 0 ||
	    quota_load(store_db()) != 0)
		return -1;
	if (auth_user_count() == 0)
		log_info("no users yet; make an admin and its token with: "
		    "ogctl -s %s user add admin --role admin && "
		    "ogctl -s %s token create admin", cfg->admin_socket,
		    cfg->admin_socket);
	store_start();
	usage_init();
	gpu_start();
	alert_start();
	loop_timer_init(&flush_timer, flush_last_used, NULL);
	loop_timer_arm(&flush_timer, LAST_USED_FLUSH_MS);
	log_info("ready");
	return 0;
}

/*
 * After the loop has returned: close what clients can reach first, let
 * the store write every finished request, then free the rest.
 */
void
server_stop(void)
{
	alert_stop();
	listener_close_all();
	conn_close_all();
	loop_run_deferred();
	tls_shutdown();
	loop_timer_stop(&flush_timer);
	admin_flush_last_used();
	/* Every row of a finished request is written, or said lost. */
	usage_stop();
	store_stop();
	usage_free();
	enduser_free_all();
	auth_free_all();
	metrics_free();
	cache_free_all();
	models_free();
	probe_shutdown();
	fleet_shutdown();
	gpu_stop();
	backend_shutdown();
	origin_shutdown();
	upstream_shutdown();
	loop_run_deferred();
	loop_timer_stop(&drain_timer);
	close(signal_io.fd);
	config_free(server_cfg);
	log_info("stopped");
}
