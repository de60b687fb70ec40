/*
 * log.h: one line per event on standard error.
 *
 * The daemon runs under systemd, whose journal already timestamps each
 * line, so a timestamp is added only when standard error is not the
 * journal. Every line names its program and its level.
 */
#ifndef OG_LOG_H
#define OG_LOG_H

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

void	log_init(const char *progname, int verbose);
void	log_set_verbose(int);
int	log_verbose(void);
void	log_msg(enum log_level, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#define log_error(...)	log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)	do {						\
	if (log_verbose())						\
		log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);			\
} while (0)

#endif
