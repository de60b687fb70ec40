/*
 * probe.h: what each backend has loaded, and how fast it answers.
 *
 * A probe is one GET of the backend's /api/ps through libcurl, on the
 * event loop like any other upstream transfer. It records on the
 * backend the models loaded (with their VRAM), the time the answer
 * took, and whether the backend could be reached. Probes run on
 * demand: an admin call that shows backends asks for readings no older
 * than a bound, and is answered when the probes it started have ended,
 * so nothing polls a backend while nobody is looking.
 */
#ifndef OG_PROBE_H
#define OG_PROBE_H

#include <stdint.h>

struct backend;

/* How long a probe may take before the backend counts as down. */
#define PROBE_TIMEOUT_MS	2000

/*
 * Make every backend's readings at most max_age_ms old. Returns 1 if
 * they already are (done is not called), or 0 and calls done(arg) once
 * the probes in flight have ended. With done NULL, the probes are
 * started and nobody waits.
 */
int	probe_refresh(uint64_t max_age_ms, void (*done)(void *), void *arg);
/* Probe one backend now, unless a probe of it is in flight. */
void	probe_backend(struct backend *);
/* Whether a backend has never been probed (nothing to show for it). */
int	probe_missing(void);
/* Stop what is in flight and call the waiting callbacks (at exit). */
void	probe_shutdown(void);

#endif
