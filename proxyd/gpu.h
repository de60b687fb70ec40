/*
 * gpu.h: GPU telemetry, sampled off the event loop.
 *
 * A thread of its own reads every GPU once a second: NVIDIA cards
 * through NVML, loaded with dlopen() at run time so that the daemon has
 * no build or package dependency on the driver, and AMD cards from
 * sysfs. The event loop only ever copies the latest readings, under a
 * mutex held for that copy. No GPU at all is a normal state.
 */
#ifndef OG_GPU_H
#define OG_GPU_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* The most GPUs reported; more are left out, with a warning. */
#define GPU_MAX		32

struct buf;

/*
 * One GPU's readings. Memory is a pair: when either figure cannot be
 * read, both are unknown and mem_total is 0.
 */
struct gpu_info {
	unsigned	 index;		/* NVIDIA first, then AMD */
	char		 vendor[8];	/* "nvidia" or "amd" */
	char		 name[96];
	int		 util_pct;	/* -1: unknown */
	uint64_t	 mem_used;	/* bytes */
	uint64_t	 mem_total;	/* bytes; 0: unknown */
	int		 temp_c;	/* -1: unknown */
	double		 power_w;	/* < 0: unknown */
	double		 power_limit_w;	/* < 0: unknown */
};

/* Start the sampling thread. Never fails: without it there is no GPU. */
void	 gpu_start(void);
/* Stop and join the thread, and free all that it holds. */
void	 gpu_stop(void);
/* Copy up to max of the latest readings; returns how many it copied. */
size_t	 gpu_read(struct gpu_info *, size_t max);
/* The latest readings as a JSON array, one object a GPU. */
json_t	*gpu_json(void);
/* Append the GPU gauges to a Prometheus text page. */
void	 gpu_metrics(struct buf *);

#endif
