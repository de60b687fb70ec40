/*
 * cmd-dial-stdio.c: ogctl dial-stdio, the remote end of -H ssh://. It
 * joins standard input and output to the daemon's socket, byte for
 * byte, until one side is done: the client's end of the channel closing
 * is passed on as a half-close, and the daemon closing ends it. It
 * knows nothing of HTTP.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "ogctl.h"

static int	cmd_dial_stdio_exec(struct ogctl *, int, char **);

const struct cmd_entry cmd_dial_stdio_entry = {
	.name = "dial-stdio",
	.usage = "",
	.exec = cmd_dial_stdio_exec,
};

static int
cmd_dial_stdio_connect(const char *path)
{
	struct sockaddr_un	 sun;
	char			*why;
	int			 fd, error;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		ogctl_error("cannot reach ogproxyd at %s: the path is too "
		    "long for a socket", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		ogctl_error("socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		error = errno;
		close(fd);
		why = client_unix_unreachable(path, error);
		ogctl_error("%s", why);
		free(why);
		return -1;
	}
	return fd;
}

/*
 * Copy what one side has to the other: 1 while it goes on, 0 at the
 * end of the input, -1 if the output is gone.
 */
static int
cmd_dial_stdio_copy(int from, int to)
{
	char	 chunk[16384];
	ssize_t	 n, w;
	size_t	 off = 0;

	do {
		n = read(from, chunk, sizeof chunk);
	} while (n == -1 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? 0 : -1;
	while (off < (size_t)n) {
		w = write(to, chunk + off, (size_t)n - off);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 1;
}

static int
cmd_dial_stdio_exec(struct ogctl *o, int argc, char **argv)
{
	struct pollfd	pfd[2];
	int		fd, rc, in_open = 1;

	if ((rc = ogctl_noargs(&cmd_dial_stdio_entry, o, argc, argv)) !=
	    EXIT_DONE)
		return rc;
	if (o->host != NULL)
		return ogctl_usage(&cmd_dial_stdio_entry, "joins the local "
		    "socket; -H makes no sense with it");
	/* A reader that went away is the end, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	if ((fd = cmd_dial_stdio_connect(client_socket_path(o->socket))) == -1)
		return EXIT_UNREACHABLE;
	for (;;) {
		pfd[0].fd = in_open ? STDIN_FILENO : -1;
		pfd[0].events = POLLIN;
		pfd[1].fd = fd;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents != 0) {
			if (cmd_dial_stdio_copy(fd, STDOUT_FILENO) <= 0)
				break;
		}
		if (in_open && pfd[0].revents != 0) {
			rc = cmd_dial_stdio_copy(STDIN_FILENO, fd);
			if (rc == -1)
				break;
			if (rc == 0) {
				/* Let the daemon finish what it was sent. */
				shutdown(fd, SHUT_WR);
				in_open = 0;
			}
		}
	}
	close(fd);
	return EXIT_DONE;
}
