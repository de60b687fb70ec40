/*
 * log.c: one line per event on standard error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char	*log_progname = "ogate";
static int		 log_verbosity;
static int		 log_timestamps = 1;

static const char *const log_level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void
log_init(const char *progname, int verbose)
{
	log_progname = progname;
	log_verbosity = verbose;
	/* The journal stamps lines itself; do not print the time twice. */
	log_timestamps = getenv("JOURNAL_STREAM") == NULL;
}

void
log_set_verbose(int verbose)
{
	log_verbosity = verbose;
}

int
log_verbose(void)
{
	return log_verbosity;
}

static void	log_vmsg(enum log_level, const char *, va_list)
		    __attribute__((format(printf, 2, 0)));

static void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char		 line[2048], stamp[40] = "";
	struct timespec	 ts;
	struct tm	 tm;
	int		 n, len;

	if (log_timestamps) {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = (int)strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(stamp + n, sizeof stamp - n, ".%03ldZ ",
		    ts.tv_nsec / 1000000);
	}
	len = snprintf(line, sizeof line, "%s%s: %s: ", stamp, log_progname,
	    log_level_names[level]);
	n = vsnprintf(line + len, sizeof line - len - 1, fmt, ap);
	if (n < 0)
		n = 0;
	len += n;
	if (len > (int)sizeof line - 2)
		len = sizeof line - 2;
	/* A message must stay one line whatever it quotes. */
	for (int i = 0; i < len; i++) {
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	}
	line[len++] = '\n';
	/* One write per line, so lines from several processes never mix. */
	if (write(STDERR_FILENO, line, len) < 0) {
		/* Nowhere left to report it. */
	}
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
