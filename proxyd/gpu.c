/*
 * gpu.c: the GPU sampler. NVIDIA cards are read through NVML, AMD cards
 * from sysfs, by a thread of its own once a second.
 *
 * Each vendor is a small table of functions (find the cards, read one,
 * let go), as in nvtop. The thread finds the cards once when it starts,
 * logs what it found, then reads them every GPU_INTERVAL_MS into its own
 * array and publishes a copy under gpu_lock. Driver calls can be slow
 * and sysfs is a file system, so none of this runs on the event loop,
 * which takes the lock only to copy the published array.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "gpu.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "parse.h"
#include "xmalloc.h"

#define GPU_INTERVAL_MS		1000
#define GPU_SYSFS_DRM		"/sys/class/drm"
#define GPU_NVML_LIBRARY	"libnvidia-ml.so.1"

/*
 * NVML, declared here rather than taken from nvml.h so that building
 * needs nothing from NVIDIA. Only what this file calls is declared;
 * the layouts and values are those of NVML's public API.
 */
#define NVML_SUCCESS			0
#define NVML_ERROR_NOT_SUPPORTED	3
#define NVML_ERROR_NO_PERMISSION	4
#define NVML_ERROR_FUNCTION_NOT_FOUND	13
#define NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25
#define NVML_TEMPERATURE_GPU		0

struct nvml_utilization {
	unsigned int		gpu;	/* percent of time busy */
	unsigned int		memory;
};

/* Version 1: used is total less free, what the driver reserves included. */
struct nvml_memory {
	unsigned long long	total;	/* bytes */
	unsigned long long	free;
	unsigned long long	used;
};

/*
 * Version 2, which nvidia-smi reads: used leaves out reserved. The
 * caller sets version to the struct's size with 2 in the top byte
 * (NVML_STRUCT_VERSION), so that a driver knows which layout it is
 * given.
 */
struct nvml_memory_v2 {
	unsigned int		version;
	unsigned long long	total;	/* bytes */
	unsigned long long	reserved;
	unsigned long long	free;
	unsigned long long	used;
};
#define NVML_MEMORY_V2	\
	((unsigned int)sizeof(struct nvml_memory_v2) | 2U << 24)

typedef void	*nvml_device;
typedef int	(*nvml_void_fn)(void);
typedef const char *(*nvml_error_fn)(int);
typedef int	(*nvml_count_fn)(unsigned int *);
typedef int	(*nvml_handle_fn)(unsigned int, nvml_device *);
typedef int	(*nvml_name_fn)(nvml_device, char *, unsigned int);
typedef int	(*nvml_util_fn)(nvml_device, struct nvml_utilization *);
typedef int	(*nvml_memory_fn)(nvml_device, struct nvml_memory *);
typedef int	(*nvml_memory_v2_fn)(nvml_device, struct nvml_memory_v2 *);
typedef int	(*nvml_temp_fn)(nvml_device, int, unsigned int *);
typedef int	(*nvml_uint_fn)(nvml_device, unsigned int *);

/* The library, its entry points (NULL when missing) and its devices. */
struct gpu_nvml {
	void		*lib;
	nvml_void_fn	 init;
	nvml_void_fn	 shutdown;
	nvml_error_fn	 error_string;
	nvml_count_fn	 get_count;
	nvml_handle_fn	 get_handle;
	nvml_name_fn	 get_name;
	nvml_util_fn	 get_util;
	nvml_memory_fn	 get_memory;
	nvml_memory_v2_fn get_memory_v2;
	nvml_temp_fn	 get_temp;
	nvml_uint_fn	 get_power;
	nvml_uint_fn	 get_limit;
	nvml_device	 devices[GPU_MAX];
	int		 failing[GPU_MAX];	/* last error, 0 if none */
	int		 memory_v1[GPU_MAX];	/* v2 not answered */
	unsigned	 count;
};

/* An AMD card: its sysfs device directory and its hwmon directory. */
struct gpu_amd_card {
	unsigned	 card;		/* N of cardN */
	char		*dev;
	char		*hwmon;		/* NULL if it has none */
};

struct gpu_amd {
	struct gpu_amd_card	cards[GPU_MAX];
	unsigned		count;
};

/*
 * A vendor's functions. probe() finds the cards (at most max) and fills
 * in their names; it returns how many it found, 0 when there is no
 * card or no driver. sample() reads card i into g, whose readings
 * are all unknown beforehand.
 */
struct gpu_vendor {
	const char	*name;		/* for the log line */
	const char	*via;
	const char	*tag;		/* struct gpu_info's vendor */
	unsigned	(*probe)(struct gpu_info *, unsigned max);
	void		(*sample)(unsigned, struct gpu_info *);
	void		(*close)(void);
};

static unsigned	 gpu_nvml_probe(struct gpu_info *, unsigned);
static void	 gpu_nvml_sample(unsigned, struct gpu_info *);
static void	 gpu_nvml_close(void);
static unsigned	 gpu_amd_probe(struct gpu_info *, unsigned);
static void	 gpu_amd_sample(unsigned, struct gpu_info *);
static void	 gpu_amd_close(void);

/* In index order: NVIDIA cards first, then AMD. */
static const struct gpu_vendor gpu_vendors[] = {
	{
		.name = "NVIDIA",
		.via = "NVML",
		.tag = "nvidia",
		.probe = gpu_nvml_probe,
		.sample = gpu_nvml_sample,
		.close = gpu_nvml_close,
	},
	{
		.name = "AMD",
		.via = "sysfs",
		.tag = "amd",
		.probe = gpu_amd_probe,
		.sample = gpu_amd_sample,
		.close = gpu_amd_close,
	},
};
#define GPU_NVENDORS	(sizeof gpu_vendors / sizeof gpu_vendors[0])

/* Owned by the sampling thread while it runs. */
static struct gpu_nvml	 gpu_nvml;
static struct gpu_amd	 gpu_amd;
/* Why NVML found nothing, for the log line. */
static char		 gpu_nvml_why[128];

/* Shared with the event loop, under gpu_lock. */
static pthread_mutex_t	 gpu_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 gpu_cond;
static struct gpu_info	 gpu_latest[GPU_MAX];
static size_t		 gpu_nlatest;
static int		 gpu_stopping;

/* Only the loop thread touches these. */
static pthread_t	 gpu_thread;
static int		 gpu_running;

static void	*gpu_main(void *);

/* Mark every reading unknown. */
static void
gpu_clear(struct gpu_info *g)
{
	g->util_pct = -1;
	g->mem_used = 0;
	g->mem_total = 0;
	g->temp_c = -1;
	g->power_w = -1;
	g->power_limit_w = -1;
}

/*
 * Keep a name that came from a driver or a file to printable ASCII, so
 * that it is always a valid JSON string and a safe label value.
 */
static void
gpu_set_name(struct gpu_info *g, const char *name)
{
	size_t	i;

	for (i = 0; name[i] != '\0' && i < sizeof g->name - 1; i++) {
		if (name[i] >= 0x20 && name[i] < 0x7f)
			g->name[i] = name[i];
		else
			g->name[i] = '?';
	}
	g->name[i] = '\0';
}

/*
 * NVML. Each entry point is looked up by its newest name first, then
 * the older one that the oldest drivers still export.
 */
static void *
gpu_nvml_sym(const char *name, const char *older)
{
	void	*p;

	if ((p = dlsym(gpu_nvml.lib, name)) == NULL && older != NULL)
		p = dlsym(gpu_nvml.lib, older);
	if (p == NULL)
		log_debug("GPU telemetry: NVML has no %s", name);
	return p;
}

static const char *
gpu_nvml_error(int rc)
{
	static char	unknown[32];
	const char	*s;

	if (gpu_nvml.error_string != NULL &&
	    (s = gpu_nvml.error_string(rc)) != NULL)
		return s;
	/* Only the sampling thread calls this. */
	snprintf(unknown, sizeof unknown, "error %d", rc);
	return unknown;
}

/* Load the library and resolve its entry points; 0 on success. */
static int
gpu_nvml_load(void)
{
	struct gpu_nvml	*n = &gpu_nvml;

	if ((n->lib = dlopen(GPU_NVML_LIBRARY, RTLD_NOW | RTLD_LOCAL)) ==
	    NULL) {
		log_debug("GPU telemetry: no NVML: %s", dlerror());
		return -1;
	}
	n->init = (nvml_void_fn)gpu_nvml_sym("nvmlInit_v2", "nvmlInit");
	n->shutdown = (nvml_void_fn)gpu_nvml_sym("nvmlShutdown", NULL);
	n->error_string = (nvml_error_fn)gpu_nvml_sym("nvmlErrorString",
	    NULL);
	n->get_count = (nvml_count_fn)gpu_nvml_sym("nvmlDeviceGetCount_v2",
	    "nvmlDeviceGetCount");
	n->get_handle = (nvml_handle_fn)gpu_nvml_sym(
	    "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex");
	n->get_name = (nvml_name_fn)gpu_nvml_sym("nvmlDeviceGetName", NULL);
	n->get_util = (nvml_util_fn)gpu_nvml_sym(
	    "nvmlDeviceGetUtilizationRates", NULL);
	n->get_memory = (nvml_memory_fn)gpu_nvml_sym(
	    "nvmlDeviceGetMemoryInfo", NULL);
	n->get_memory_v2 = (nvml_memory_v2_fn)gpu_nvml_sym(
	    "nvmlDeviceGetMemoryInfo_v2", NULL);
	n->get_temp = (nvml_temp_fn)gpu_nvml_sym("nvmlDeviceGetTemperature",
	    NULL);
	n->get_power = (nvml_uint_fn)gpu_nvml_sym("nvmlDeviceGetPowerUsage",
	    NULL);
	n->get_limit = (nvml_uint_fn)gpu_nvml_sym(
	    "nvmlDeviceGetEnforcedPowerLimit", NULL);
	if (n->init == NULL || n->shutdown == NULL || n->get_count == NULL ||
	    n->get_handle == NULL) {
		snprintf(gpu_nvml_why, sizeof gpu_nvml_why,
		    "%s lacks the NVML entry points needed", GPU_NVML_LIBRARY);
		dlclose(n->lib);
		memset(n, 0, sizeof *n);
		return -1;
	}
	return 0;
}

static unsigned
gpu_nvml_probe(struct gpu_info *g, unsigned max)
{
	struct gpu_nvml	*n = &gpu_nvml;
	char		 name[96];
	unsigned	 count, i;
	int		 rc;

	if (gpu_nvml_load() != 0)
		return 0;
	if ((rc = n->init()) != NVML_SUCCESS) {
		snprintf(gpu_nvml_why, sizeof gpu_nvml_why, "NVML: %s",
		    gpu_nvml_error(rc));
		n->shutdown = NULL;	/* nothing to shut down */
		return 0;
	}
	if ((rc = n->get_count(&count)) != NVML_SUCCESS) {
		snprintf(gpu_nvml_why, sizeof gpu_nvml_why, "NVML: %s",
		    gpu_nvml_error(rc));
		return 0;
	}
	if (count > max) {
		log_warn("GPU telemetry: NVML reports %u GPUs; only the first "
		    "%u are shown", count, max);
		count = max;
	}
	for (i = 0; i < count; i++) {
		if ((rc = n->get_handle(i, &n->devices[n->count])) !=
		    NVML_SUCCESS) {
			log_warn("GPU telemetry: NVML GPU %u left out: %s", i,
			    gpu_nvml_error(rc));
			continue;
		}
		if (n->get_name == NULL || n->get_name(n->devices[n->count],
		    name, sizeof name) != NVML_SUCCESS)
			snprintf(name, sizeof name, "NVIDIA GPU %u", i);
		name[sizeof name - 1] = '\0';
		gpu_set_name(&g[n->count], name);
		n->count++;
	}
	return n->count;
}

/*
 * Remember the first error of a pass that is not merely "this card has
 * no such sensor": that one means the card is in trouble.
 */
static void
gpu_nvml_note(int *worst, int rc)
{
	if (rc != NVML_SUCCESS && rc != NVML_ERROR_NOT_SUPPORTED &&
	    rc != NVML_ERROR_NO_PERMISSION && *worst == NVML_SUCCESS)
		*worst = rc;
}

/* Say so once when a card starts failing and once when it recovers. */
static void
gpu_nvml_health(unsigned i, const struct gpu_info *g, int worst)
{
	int	*failing = &gpu_nvml.failing[i];

	if (worst != NVML_SUCCESS && *failing == NVML_SUCCESS)
		log_warn("GPU %u (%s): %s; its readings are unknown until it "
		    "answers again", g->index, g->name, gpu_nvml_error(worst));
	else if (worst == NVML_SUCCESS && *failing != NVML_SUCCESS)
		log_info("GPU %u (%s) answers again", g->index, g->name);
	*failing = worst;
}

/*
 * Memory as nvidia-smi shows it: version 2's used, which leaves out what
 * the driver reserves for itself. A driver that exports the name but not
 * this version of the struct says so with one of three errors; such a
 * card is read with version 1 from then on, whose used is total less
 * free, the reserved part included. Returns the NVML status of the call
 * that answered.
 */
static int
gpu_nvml_memory(unsigned i, struct gpu_info *g)
{
	struct gpu_nvml		*n = &gpu_nvml;
	nvml_device		 d = n->devices[i];
	struct nvml_memory_v2	 m2;
	struct nvml_memory	 m;
	int			 rc;

	if (n->get_memory_v2 != NULL && !n->memory_v1[i]) {
		memset(&m2, 0, sizeof m2);
		m2.version = NVML_MEMORY_V2;
		rc = n->get_memory_v2(d, &m2);
		if (rc == NVML_SUCCESS && m2.used <= m2.total) {
			g->mem_used = m2.used;
			g->mem_total = m2.total;
		}
		if (rc != NVML_ERROR_FUNCTION_NOT_FOUND &&
		    rc != NVML_ERROR_NOT_SUPPORTED &&
		    rc != NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
			return rc;
		n->memory_v1[i] = 1;
		log_debug("GPU %u (%s): nvmlDeviceGetMemoryInfo_v2: %s; "
		    "reading memory with version 1", g->index, g->name,
		    gpu_nvml_error(rc));
	}
	if (n->get_memory == NULL)
		return NVML_ERROR_NOT_SUPPORTED;
	if ((rc = n->get_memory(d, &m)) == NVML_SUCCESS && m.used <= m.total) {
		g->mem_used = m.used;
		g->mem_total = m.total;
	}
	return rc;
}

static void
gpu_nvml_sample(unsigned i, struct gpu_info *g)
{
	struct gpu_nvml		*n = &gpu_nvml;
	nvml_device		 d = n->devices[i];
	struct nvml_utilization	 u;
	unsigned int		 v;
	int			 rc, worst = NVML_SUCCESS;

	if (n->get_util != NULL) {
		if ((rc = n->get_util(d, &u)) == NVML_SUCCESS && u.gpu <= 100)
			g->util_pct = (int)u.gpu;
		gpu_nvml_note(&worst, rc);
	}
	gpu_nvml_note(&worst, gpu_nvml_memory(i, g));
	if (n->get_temp != NULL) {
		rc = n->get_temp(d, NVML_TEMPERATURE_GPU, &v);
		if (rc == NVML_SUCCESS && v < 1000)
			g->temp_c = (int)v;
		gpu_nvml_note(&worst, rc);
	}
	if (n->get_power != NULL) {
		if ((rc = n->get_power(d, &v)) == NVML_SUCCESS)
			g->power_w = v / 1000.0;
		gpu_nvml_note(&worst, rc);
	}
	if (n->get_limit != NULL) {
		if ((rc = n->get_limit(d, &v)) == NVML_SUCCESS && v > 0)
			g->power_limit_w = v / 1000.0;
		gpu_nvml_note(&worst, rc);
	}
	/* A card in trouble has no readings, not half of them. */
	if (worst != NVML_SUCCESS)
		gpu_clear(g);
	gpu_nvml_health(i, g, worst);
}

static void
gpu_nvml_close(void)
{
	struct gpu_nvml	*n = &gpu_nvml;

	if (n->lib == NULL)
		return;
	if (n->shutdown != NULL)
		n->shutdown();
	dlclose(n->lib);
	memset(n, 0, sizeof *n);
}

/*
 * AMD, from the amdgpu driver's files in sysfs. A file holds one value
 * on one line; read it whole, without the newline.
 */
static int
gpu_file(const char *dir, const char *file, char *out, size_t size)
{
	char	*path;
	ssize_t	 n;
	int	 fd;

	path = xasprintf("%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd == -1)
		return -1;
	n = read(fd, out, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	while (n > 0 && isspace((unsigned char)out[n - 1]))
		n--;
	out[n] = '\0';
	return 0;
}

static int
gpu_file_uint(const char *dir, const char *file, uint64_t *v)
{
	char	s[64];

	if (dir == NULL || gpu_file(dir, file, s, sizeof s) != 0)
		return -1;
	return parse_uint(s, UINT64_MAX, v);
}

/* "card" followed by digits only: connectors (card0-DP-1) are not. */
static int
gpu_amd_card_number(const char *name, unsigned *card)
{
	uint64_t	v;

	if (strncmp(name, "card", 4) != 0 ||
	    parse_uint(name + 4, UINT32_MAX, &v) != 0)
		return -1;
	*card = (unsigned)v;
	return 0;
}

/* The lowest-numbered hwmon directory of a card, or NULL. */
static char *
gpu_amd_hwmon(const char *dev)
{
	struct dirent	*de;
	DIR		*d;
	char		*path;
	uint64_t	 v, best = UINT64_MAX;

	path = xasprintf("%s/hwmon", dev);
	d = opendir(path);
	free(path);
	if (d == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "hwmon", 5) == 0 &&
		    parse_uint(de->d_name + 5, UINT32_MAX, &v) == 0 && v < best)
			best = v;
	}
	closedir(d);
	if (best == UINT64_MAX)
		return NULL;
	return xasprintf("%s/hwmon/hwmon%llu", dev, (unsigned long long)best);
}

static int
gpu_amd_compare(const void *a, const void *b)
{
	const struct gpu_amd_card	*x = a, *y = b;

	return (x->card > y->card) - (x->card < y->card);
}

static unsigned
gpu_amd_probe(struct gpu_info *g, unsigned max)
{
	struct gpu_amd		*a = &gpu_amd;
	struct dirent		*de;
	DIR			*d;
	const char		*root;
	char			*dev, vendor[16], name[96];
	unsigned		 card, i;

	if ((root = getenv("OGATE_SYSFS_DRM")) == NULL || *root == '\0')
		root = GPU_SYSFS_DRM;
	if ((d = opendir(root)) == NULL) {
		log_debug("GPU telemetry: %s: %s", root, strerror(errno));
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (gpu_amd_card_number(de->d_name, &card) != 0)
			continue;
		dev = xasprintf("%s/%s/device", root, de->d_name);
		if (gpu_file(dev, "vendor", vendor, sizeof vendor) != 0 ||
		    strcmp(vendor, "0x1002") != 0) {
			free(dev);
			continue;
		}
		if (a->count == max) {
			log_warn("GPU telemetry: too many GPUs; %s/%s is left "
			    "out", root, de->d_name);
			free(dev);
			continue;
		}
		a->cards[a->count].card = card;
		a->cards[a->count].dev = dev;
		a->cards[a->count].hwmon = gpu_amd_hwmon(dev);
		a->count++;
	}
	closedir(d);

	qsort(a->cards, a->count, sizeof a->cards[0], gpu_amd_compare);
	for (i = 0; i < a->count; i++) {
		if (gpu_file(a->cards[i].dev, "product_name", name,
		    sizeof name) != 0 || *name == '\0')
			snprintf(name, sizeof name, "AMD GPU card%u",
			    a->cards[i].card);
		gpu_set_name(&g[i], name);
	}
	return a->count;
}

static void
gpu_amd_sample(unsigned i, struct gpu_info *g)
{
	const struct gpu_amd_card	*c = &gpu_amd.cards[i];
	uint64_t			 v, total;

	if (gpu_file_uint(c->dev, "gpu_busy_percent", &v) == 0 && v <= 100)
		g->util_pct = (int)v;
	if (gpu_file_uint(c->dev, "mem_info_vram_used", &v) == 0 &&
	    gpu_file_uint(c->dev, "mem_info_vram_total", &total) == 0 &&
	    v <= total) {
		g->mem_used = v;
		g->mem_total = total;
	}
	/* Millidegrees Celsius, rounded to the nearest degree. */
	if (gpu_file_uint(c->hwmon, "temp1_input", &v) == 0 && v < 1000000)
		g->temp_c = (int)((v + 500) / 1000);
	/* Microwatts; older kernels have only the instantaneous reading. */
	if (gpu_file_uint(c->hwmon, "power1_average", &v) == 0 ||
	    gpu_file_uint(c->hwmon, "power1_input", &v) == 0)
		g->power_w = v / 1e6;
	if (gpu_file_uint(c->hwmon, "power1_cap", &v) == 0 && v > 0)
		g->power_limit_w = v / 1e6;
}

static void
gpu_amd_close(void)
{
	struct gpu_amd	*a = &gpu_amd;

	for (unsigned i = 0; i < a->count; i++) {
		free(a->cards[i].dev);
		free(a->cards[i].hwmon);
	}
	memset(a, 0, sizeof *a);
}

/*
 * The sampling thread. Finds the cards of every vendor, says in one line
 * what it found, then reads them all once a second until told to stop.
 */
struct gpu_found {
	const struct gpu_vendor	*vendor;
	unsigned		 first, count;	/* in the array */
};

static void
gpu_log_found(const struct gpu_found *found, size_t n)
{
	struct buf	 b;
	const char	*sep = "";

	buf_init(&b);
	for (size_t i = 0; i < n; i++) {
		if (found[i].count == 0)
			continue;
		buf_printf(&b, "%s%u %s GPU%s through %s", sep, found[i].count,
		    found[i].vendor->name, found[i].count == 1 ? "" : "s",
		    found[i].vendor->via);
		sep = " and ";
	}
	if (b.len == 0) {
		buf_add_str(&b, "no GPU found");
		if (gpu_nvml_why[0] != '\0')
			buf_printf(&b, " (%s)", gpu_nvml_why);
	}
	log_info("GPU telemetry: %s", buf_cstr(&b));
	buf_free(&b);
}

static size_t
gpu_probe(struct gpu_info *g, struct gpu_found *found)
{
	size_t	n = 0;

	gpu_nvml_why[0] = '\0';
	for (size_t v = 0; v < GPU_NVENDORS; v++) {
		const struct gpu_vendor	*vendor = &gpu_vendors[v];
		unsigned		 count;

		count = vendor->probe(g + n, (unsigned)(GPU_MAX - n));
		found[v].vendor = vendor;
		found[v].first = (unsigned)n;
		found[v].count = count;
		for (unsigned i = 0; i < count; i++) {
			g[n + i].index = (unsigned)(n + i);
			snprintf(g[n + i].vendor, sizeof g[n + i].vendor, "%s",
			    vendor->tag);
		}
		n += count;
	}
	gpu_log_found(found, GPU_NVENDORS);
	return n;
}

static void
gpu_sample(struct gpu_info *g, const struct gpu_found *found)
{
	for (size_t v = 0; v < GPU_NVENDORS; v++) {
		for (unsigned i = 0; i < found[v].count; i++) {
			gpu_clear(&g[found[v].first + i]);
			found[v].vendor->sample(i, &g[found[v].first + i]);
		}
	}
}

static void
gpu_close(void)
{
	for (size_t v = 0; v < GPU_NVENDORS; v++)
		gpu_vendors[v].close();
}

/* The next deadline, GPU_INTERVAL_MS after the last, never in the past. */
static void
gpu_next(struct timespec *next)
{
	struct timespec	now;

	next->tv_nsec += (long)GPU_INTERVAL_MS * 1000000;
	next->tv_sec += next->tv_nsec / 1000000000;
	next->tv_nsec %= 1000000000;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > next->tv_sec ||
	    (now.tv_sec == next->tv_sec && now.tv_nsec > next->tv_nsec))
		*next = now;
}

static void *
gpu_main(void *arg)
{
	struct gpu_info		g[GPU_MAX];
	struct gpu_found	found[GPU_NVENDORS];
	struct timespec		next;
	size_t			n;

	loop_background_thread();

	memset(g, 0, sizeof g);
	if ((n = gpu_probe(g, found)) == 0) {
		/* Nothing will ever be read: let go of the drivers now. */
		gpu_close();
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&gpu_lock);
	while (!gpu_stopping) {
		pthread_mutex_unlock(&gpu_lock);
		gpu_sample(g, found);
		pthread_mutex_lock(&gpu_lock);
		memcpy(gpu_latest, g, n * sizeof g[0]);
		gpu_nlatest = n;
		gpu_next(&next);
		while (!gpu_stopping && pthread_cond_timedwait(&gpu_cond,
		    &gpu_lock, &next) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&gpu_lock);
	gpu_close();
	return NULL;
}

void
gpu_start(void)
{
	pthread_condattr_t	attr;
	sigset_t		all, old;

	if (gpu_running)
		return;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&gpu_cond, &attr);
	pthread_condattr_destroy(&attr);
	gpu_stopping = 0;

	/* Signals are the loop's business: the thread takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	errno = pthread_create(&gpu_thread, NULL, gpu_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (errno != 0) {
		log_warn("GPU telemetry off: cannot start its thread: %s",
		    strerror(errno));
		pthread_cond_destroy(&gpu_cond);
		return;
	}
	gpu_running = 1;
}

void
gpu_stop(void)
{
	if (!gpu_running)
		return;
	pthread_mutex_lock(&gpu_lock);
	gpu_stopping = 1;
	pthread_cond_signal(&gpu_cond);
	pthread_mutex_unlock(&gpu_lock);
	pthread_join(gpu_thread, NULL);
	pthread_cond_destroy(&gpu_cond);
	gpu_running = 0;
	gpu_nlatest = 0;
}

size_t
gpu_read(struct gpu_info *g, size_t max)
{
	size_t	n;

	pthread_mutex_lock(&gpu_lock);
	n = gpu_nlatest < max ? gpu_nlatest : max;
	memcpy(g, gpu_latest, n * sizeof g[0]);
	pthread_mutex_unlock(&gpu_lock);
	return n;
}

static json_t *
gpu_json_int(int v)
{
	return v >= 0 ? json_integer(v) : json_null();
}

static json_t *
gpu_json_watts(double w)
{
	return w >= 0 ? json_real(w) : json_null();
}

json_t *
gpu_json(void)
{
	struct gpu_info	 g[GPU_MAX];
	json_t		*a = json_array(), *o;
	size_t		 n;

	n = gpu_read(g, GPU_MAX);
	for (size_t i = 0; i < n; i++) {
		o = json_object();
		json_object_set_new(o, "index", json_integer(g[i].index));
		json_object_set_new(o, "vendor", json_string(g[i].vendor));
		json_object_set_new(o, "name", json_string(g[i].name));
		json_object_set_new(o, "util_pct", gpu_json_int(g[i].util_pct));
		if (g[i].mem_total > 0) {
			json_object_set_new(o, "mem_used_bytes",
			    json_integer((json_int_t)g[i].mem_used));
			json_object_set_new(o, "mem_total_bytes",
			    json_integer((json_int_t)g[i].mem_total));
		} else {
			json_object_set_new(o, "mem_used_bytes", json_null());
			json_object_set_new(o, "mem_total_bytes", json_null());
		}
		json_object_set_new(o, "temp_c", gpu_json_int(g[i].temp_c));
		json_object_set_new(o, "power_w", gpu_json_watts(g[i].power_w));
		json_object_set_new(o, "power_limit_w",
		    gpu_json_watts(g[i].power_limit_w));
		json_array_append_new(a, o);
	}
	return a;
}

/*
 * The Prometheus gauges. Each writes its value for one GPU into a
 * string, or returns -1 when the reading is unknown.
 */
struct gpu_gauge {
	const char	*name;
	const char	*help;
	int		(*value)(const struct gpu_info *, char *, size_t);
};

static int
gpu_value_util(const struct gpu_info *g, char *s, size_t len)
{
	if (g->util_pct < 0)
		return -1;
	snprintf(s, len, "%d", g->util_pct);
	return 0;
}

static int
gpu_value_mem_used(const struct gpu_info *g, char *s, size_t len)
{
	if (g->mem_total == 0)
		return -1;
	snprintf(s, len, "%llu", (unsigned long long)g->mem_used);
	return 0;
}

static int
gpu_value_mem_total(const struct gpu_info *g, char *s, size_t len)
{
	if (g->mem_total == 0)
		return -1;
	snprintf(s, len, "%llu", (unsigned long long)g->mem_total);
	return 0;
}

static int
gpu_value_temp(const struct gpu_info *g, char *s, size_t len)
{
	if (g->temp_c < 0)
		return -1;
	snprintf(s, len, "%d", g->temp_c);
	return 0;
}

/* Watts to the microwatt, without trailing zeros. */
static int
gpu_value_watts(double w, char *s, size_t len)
{
	char	*p;

	if (w < 0)
		return -1;
	snprintf(s, len, "%.6f", w);
	p = s + strlen(s) - 1;
	while (*p == '0')
		*p-- = '\0';
	if (*p == '.')
		*p = '\0';
	return 0;
}

static int
gpu_value_power(const struct gpu_info *g, char *s, size_t len)
{
	return gpu_value_watts(g->power_w, s, len);
}

static int
gpu_value_power_limit(const struct gpu_info *g, char *s, size_t len)
{
	return gpu_value_watts(g->power_limit_w, s, len);
}

static const struct gpu_gauge gpu_gauges[] = {
	{ "ogate_gpu_utilisation_percent",
	  "Percent of recent time the GPU was busy, as its driver counts it.",
	  gpu_value_util },
	{ "ogate_gpu_memory_used_bytes",
	  "GPU memory in use, in bytes, as nvidia-smi shows it: what the "
	  "driver reserves is not counted.", gpu_value_mem_used },
	{ "ogate_gpu_memory_total_bytes", "GPU memory in all, in bytes.",
	  gpu_value_mem_total },
	{ "ogate_gpu_temperature_celsius", "GPU temperature.",
	  gpu_value_temp },
	{ "ogate_gpu_power_watts", "GPU power draw.", gpu_value_power },
	{ "ogate_gpu_power_limit_watts", "GPU power limit enforced.",
	  gpu_value_power_limit },
};

void
gpu_metrics(struct buf *b)
{
	struct gpu_info	 g[GPU_MAX];
	char		 v[64];
	size_t		 n;
	int		 head;

	n = gpu_read(g, GPU_MAX);
	buf_add_str(b, "# HELP ogate_gpus GPUs found at start.\n"
	    "# TYPE ogate_gpus gauge\n");
	buf_printf(b, "ogate_gpus %zu\n", n);
	for (size_t k = 0; k < sizeof gpu_gauges / sizeof gpu_gauges[0];
	    k++) {
		const struct gpu_gauge	*gg = &gpu_gauges[k];

		head = 0;
		for (size_t i = 0; i < n; i++) {
			if (gg->value(&g[i], v, sizeof v) != 0)
				continue;
			if (!head++)
				buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n",
				    gg->name, gg->help, gg->name);
			buf_printf(b, "%s{gpu=\"%u\",name=\"", gg->name,
			    g[i].index);
			metrics_escape(b, g[i].name);
			buf_printf(b, "\"} %s\n", v);
		}
	}
}
