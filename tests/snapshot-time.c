/*
 * snapshot-time: how long ogtop's refresh takes, the call it makes each
 * tick (GET /admin/v1/snapshot), over one client: the local socket or
 * SSH. Prints the mean of N calls in microseconds, after one call to
 * connect.
 *
 *	snapshot-time N -s SOCKET | -H ssh://... [PAUSE_MS]
 *
 * With PAUSE_MS it waits that long between calls, to outlast the
 * daemon's idle timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
snap(struct client *cl)
{
	json_t	*doc = NULL;
	char	*err = NULL;
	long	 status = 0;

	if (client_call(cl, "GET", "/admin/v1/snapshot", NULL, &status, &doc,
	    &err) != 0 || status != 200) {
		fprintf(stderr, "snapshot-time: %s\n", err != NULL ? err :
		    "not 200");
		free(err);
		json_decref(doc);
		return -1;
	}
	json_decref(doc);
	return 0;
}

int
main(int argc, char **argv)
{
	struct client	*cl = NULL;
	char		*err = NULL;
	struct timespec	 pause = { 0, 0 };
	double		 t0;
	int		 n, i, ms = 0;

	if (argc == 5)
		ms = atoi(argv[4]);
	pause.tv_sec = ms / 1000;
	pause.tv_nsec = (long)(ms % 1000) * 1000000L;
	if (argc < 4 || argc > 5 || (n = atoi(argv[1])) < 1) {
		fprintf(stderr, "usage: snapshot-time N -s SOCKET | -H URL "
		    "[PAUSE_MS]\n");
		return 2;
	}
	if (strcmp(argv[2], "-H") == 0) {
		if (client_open_ssh(argv[3], NULL, &cl, &err) != 0) {
			fprintf(stderr, "snapshot-time: %s\n", err);
			free(err);
			return 3;
		}
	} else
		cl = client_open_unix(argv[3]);
	if (cl == NULL || snap(cl) != 0)
		return 3;
	t0 = now();
	for (i = 0; i < n; i++) {
		if (ms > 0)
			nanosleep(&pause, NULL);
		if (snap(cl) != 0)
			return 3;
	}
	printf("%.0f\n", (now() - t0) / n * 1e6);
	client_close(cl);
	return 0;
}
