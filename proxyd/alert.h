/*
 * alert.h: [alert NAME] sections: notices of conditions an operator
 * should hear about, sent to a webhook and/or a program.
 *
 * The facts come from small hooks in the modules that see them
 * (backend.c, metrics.c) and from a look at the users' quotas on a loop
 * timer. Deciding happens on the loop and costs no I/O; delivering
 * (libcurl, fork and exec, waiting) happens on a worker thread fed by a
 * bounded queue, so a slow or dead receiver never holds up a request.
 */
#ifndef OG_ALERT_H
#define OG_ALERT_H

#include <stdint.h>

#include <jansson.h>

void	 alert_start(void);
void	 alert_stop(void);
/* A backend has gone down (up = 0) or come back (up = 1). */
void	 alert_backend(const char *name, int up);
/* A request has finished with this HTTP status. */
void	 alert_observe_status(int status);
/* A request waited this long in the fleet's queue. */
void	 alert_queue_wait(uint64_t ms);
/* The alerts configured, for the admin API. */
json_t	*alert_list_json(void);
/* Queue a test notice of the named alert; NULL, or why not (static). */
const char *alert_test(const char *name);

#endif
