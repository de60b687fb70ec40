/*
 * fake-nvml.c: a stand-in for NVIDIA's libnvidia-ml.so.1, so that the
 * daemon's NVML code runs in the tests without a GPU or a driver. It
 * exports the NVML calls that proxyd/gpu.c makes, with NVML's
 * signatures and return codes.
 *
 * The readings come from the file named by FAKE_NVML_STATE, read again
 * on every call, so a test changes them while the daemon runs by
 * writing a new file and renaming it over the old one. One GPU a line,
 * in index order; blank lines and lines starting with '#' are skipped:
 *
 *	name=NVIDIA H100 80GB HBM3 util=45 mem_used=12884901888 \
 *	    mem_total=85899345920 temp=65 power_mw=250000 limit_mw=700000
 *
 * (on one line). Each field is KEY=VALUE; a value runs up to the next
 * word that starts with a known key and '=', so a name may hold spaces.
 * The keys:
 *
 *	name		nvmlDeviceGetName
 *	util		nvmlDeviceGetUtilizationRates, percent
 *	mem_used	nvmlDeviceGetMemoryInfo_v2, bytes (with mem_total)
 *	mem_total
 *	mem_reserved	bytes the driver keeps for itself (0 if missing):
 *			nvmlDeviceGetMemoryInfo_v2 reports it apart,
 *			while nvmlDeviceGetMemoryInfo counts it in used,
 *			which is total less free, as a real driver does
 *	temp		nvmlDeviceGetTemperature, degrees Celsius
 *	power_mw	nvmlDeviceGetPowerUsage, milliwatts
 *	limit_mw	nvmlDeviceGetEnforcedPowerLimit, milliwatts
 *	lost		any value: every call about this GPU fails with
 *			NVML_ERROR_GPU_IS_LOST, as when a card falls off
 *			the bus
 *
 * A call whose field is missing fails with NVML_ERROR_NOT_SUPPORTED, as
 * for a sensor the card does not have. A GPU whose line is gone fails
 * with NVML_ERROR_GPU_IS_LOST. Without FAKE_NVML_STATE, or when the
 * file cannot be read, there are no GPUs.
 *
 * FAKE_NVML_FAIL=init makes nvmlInit_v2 fail with
 * NVML_ERROR_DRIVER_NOT_LOADED, as on a machine without the driver.
 * FAKE_NVML_FAIL=memory_v2 makes nvmlDeviceGetMemoryInfo_v2 fail with
 * NVML_ERROR_FUNCTION_NOT_FOUND, as an older driver that exports the
 * name but not the call does. nvmlDeviceGetMemoryInfo_v2 also checks
 * the struct's version and answers NVML_ERROR_ARGUMENT_VERSION_MISMATCH
 * to a wrong one (driver 580 answers NVML_ERROR_FUNCTION_NOT_FOUND
 * there; the daemon takes either as "not this version").
 */
/* strtok_r: the library is built without the project's feature macros. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NVML_SUCCESS			0
#define NVML_ERROR_UNINITIALIZED	1
#define NVML_ERROR_INVALID_ARGUMENT	2
#define NVML_ERROR_NOT_SUPPORTED	3
#define NVML_ERROR_INSUFFICIENT_SIZE	7
#define NVML_ERROR_DRIVER_NOT_LOADED	9
#define NVML_ERROR_FUNCTION_NOT_FOUND	13
#define NVML_ERROR_GPU_IS_LOST		15
#define NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25
#define NVML_ERROR_UNKNOWN		999

#define FAKE_MAX_GPUS	64
#define FAKE_LINE	1024

struct nvml_utilization {
	unsigned int		gpu;
	unsigned int		memory;
};

struct nvml_memory {
	unsigned long long	total;
	unsigned long long	free;
	unsigned long long	used;
};

/* nvmlMemory_v2_t, and the version a caller must set in it. */
struct nvml_memory_v2 {
	unsigned int		version;
	unsigned long long	total;
	unsigned long long	reserved;
	unsigned long long	free;
	unsigned long long	used;
};
#define NVML_MEMORY_V2	\
	((unsigned int)sizeof(struct nvml_memory_v2) | 2U << 24)

/* A device handle points at one of these. */
struct fake_device {
	unsigned int	index;
};

enum fake_key {
	FAKE_NAME,
	FAKE_UTIL,
	FAKE_MEM_USED,
	FAKE_MEM_TOTAL,
	FAKE_MEM_RESERVED,
	FAKE_TEMP,
	FAKE_POWER,
	FAKE_LIMIT,
	FAKE_LOST,
	FAKE_NKEYS
};

static const char *const fake_keys[FAKE_NKEYS] = {
	[FAKE_NAME] = "name",
	[FAKE_UTIL] = "util",
	[FAKE_MEM_USED] = "mem_used",
	[FAKE_MEM_TOTAL] = "mem_total",
	[FAKE_MEM_RESERVED] = "mem_reserved",
	[FAKE_TEMP] = "temp",
	[FAKE_POWER] = "power_mw",
	[FAKE_LIMIT] = "limit_mw",
	[FAKE_LOST] = "lost",
};

/* One GPU's line, split into its fields. */
struct fake_gpu {
	int	set[FAKE_NKEYS];
	char	value[FAKE_NKEYS][FAKE_LINE];
};

static struct fake_device	fake_devices[FAKE_MAX_GPUS];
static int			fake_initialised;

int		 nvmlInit_v2(void);
int		 nvmlShutdown(void);
const char	*nvmlErrorString(int);
int		 nvmlDeviceGetCount_v2(unsigned int *);
int		 nvmlDeviceGetHandleByIndex_v2(unsigned int,
		    struct fake_device **);
int		 nvmlDeviceGetName(struct fake_device *, char *,
		    unsigned int);
int		 nvmlDeviceGetUtilizationRates(struct fake_device *,
		    struct nvml_utilization *);
int		 nvmlDeviceGetMemoryInfo(struct fake_device *,
		    struct nvml_memory *);
int		 nvmlDeviceGetMemoryInfo_v2(struct fake_device *,
		    struct nvml_memory_v2 *);
int		 nvmlDeviceGetTemperature(struct fake_device *, int,
		    unsigned int *);
int		 nvmlDeviceGetPowerUsage(struct fake_device *,
		    unsigned int *);
int		 nvmlDeviceGetEnforcedPowerLimit(struct fake_device *,
		    unsigned int *);

/* Which key a word starts with ("key="), or -1. */
static int
fake_key_of(const char *word)
{
	for (int k = 0; k < FAKE_NKEYS; k++) {
		size_t	len = strlen(fake_keys[k]);

		if (strncmp(word, fake_keys[k], len) == 0 && word[len] == '=')
			return k;
	}
	return -1;
}

static void
fake_parse(char *line, struct fake_gpu *g)
{
	char	*word, *last;
	int	 k, cur = -1;

	memset(g, 0, sizeof *g);
	for (word = strtok_r(line, " \t\r\n", &last); word != NULL;
	    word = strtok_r(NULL, " \t\r\n", &last)) {
		if ((k = fake_key_of(word)) != -1) {
			cur = k;
			g->set[k] = 1;
			snprintf(g->value[k], sizeof g->value[k], "%s",
			    word + strlen(fake_keys[k]) + 1);
		} else if (cur != -1) {
			size_t	len = strlen(g->value[cur]);

			snprintf(g->value[cur] + len,
			    sizeof g->value[cur] - len, " %s", word);
		}
	}
}

/*
 * Read the state file: the number of GPUs, and if g is not NULL the
 * fields of GPU index. Returns the count; g is zeroed when the GPU is
 * not in the file.
 */
static unsigned int
fake_load(unsigned int index, struct fake_gpu *g)
{
	const char	*path = getenv("FAKE_NVML_STATE");
	char		 line[FAKE_LINE];
	unsigned int	 n = 0;
	FILE		*f;

	if (g != NULL)
		memset(g, 0, sizeof *g);
	if (path == NULL || (f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[strspn(line, " \t")] == '\0' ||
		    line[strspn(line, " \t")] == '#')
			continue;
		if (g != NULL && n == index)
			fake_parse(line, g);
		if (++n == FAKE_MAX_GPUS)
			break;
	}
	fclose(f);
	return n;
}

/*
 * The fields of a device for a call, or an NVML error: not initialised,
 * a bad handle, or a GPU that is lost.
 */
static int
fake_get(struct fake_device *d, struct fake_gpu *g)
{
	if (!fake_initialised)
		return NVML_ERROR_UNINITIALIZED;
	if (d == NULL || d < fake_devices || d >= fake_devices + FAKE_MAX_GPUS)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (d->index >= fake_load(d->index, g) || g->set[FAKE_LOST])
		return NVML_ERROR_GPU_IS_LOST;
	return NVML_SUCCESS;
}

/* A numeric field as an unsigned int, or NVML_ERROR_NOT_SUPPORTED. */
static int
fake_uint(struct fake_device *d, enum fake_key k, unsigned int *out)
{
	struct fake_gpu	g;
	int		rc;

	if (out == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if ((rc = fake_get(d, &g)) != NVML_SUCCESS)
		return rc;
	if (!g.set[k])
		return NVML_ERROR_NOT_SUPPORTED;
	*out = (unsigned int)strtoul(g.value[k], NULL, 10);
	return NVML_SUCCESS;
}

int
nvmlInit_v2(void)
{
	const char	*fail = getenv("FAKE_NVML_FAIL");

	if (fail != NULL && strcmp(fail, "init") == 0)
		return NVML_ERROR_DRIVER_NOT_LOADED;
	fake_initialised++;
	return NVML_SUCCESS;
}

int
nvmlShutdown(void)
{
	if (!fake_initialised)
		return NVML_ERROR_UNINITIALIZED;
	fake_initialised--;
	return NVML_SUCCESS;
}

const char *
nvmlErrorString(int rc)
{
	switch (rc) {
	case NVML_SUCCESS:
		return "Success";
	case NVML_ERROR_UNINITIALIZED:
		return "Uninitialized";
	case NVML_ERROR_INVALID_ARGUMENT:
		return "Invalid Argument";
	case NVML_ERROR_NOT_SUPPORTED:
		return "Not Supported";
	case NVML_ERROR_INSUFFICIENT_SIZE:
		return "Insufficient Size";
	case NVML_ERROR_DRIVER_NOT_LOADED:
		return "Driver Not Loaded";
	case NVML_ERROR_FUNCTION_NOT_FOUND:
		return "Function Not Found";
	case NVML_ERROR_GPU_IS_LOST:
		return "GPU is lost";
	case NVML_ERROR_ARGUMENT_VERSION_MISMATCH:
		return "Argument Version Mismatch";
	default:
		return "Unknown Error";
	}
}

int
nvmlDeviceGetCount_v2(unsigned int *count)
{
	if (!fake_initialised)
		return NVML_ERROR_UNINITIALIZED;
	if (count == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*count = fake_load(0, NULL);
	return NVML_SUCCESS;
}

int
nvmlDeviceGetHandleByIndex_v2(unsigned int index, struct fake_device **d)
{
	if (!fake_initialised)
		return NVML_ERROR_UNINITIALIZED;
	if (d == NULL || index >= fake_load(0, NULL))
		return NVML_ERROR_INVALID_ARGUMENT;
	fake_devices[index].index = index;
	*d = &fake_devices[index];
	return NVML_SUCCESS;
}

int
nvmlDeviceGetName(struct fake_device *d, char *name, unsigned int length)
{
	struct fake_gpu	g;
	int		rc;

	if (name == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if ((rc = fake_get(d, &g)) != NVML_SUCCESS)
		return rc;
	if (!g.set[FAKE_NAME])
		return NVML_ERROR_NOT_SUPPORTED;
	if (strlen(g.value[FAKE_NAME]) >= length)
		return NVML_ERROR_INSUFFICIENT_SIZE;
	strcpy(name, g.value[FAKE_NAME]);
	return NVML_SUCCESS;
}

int
nvmlDeviceGetUtilizationRates(struct fake_device *d,
    struct nvml_utilization *u)
{
	unsigned int	v;
	int		rc;

	if (u == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if ((rc = fake_uint(d, FAKE_UTIL, &v)) != NVML_SUCCESS)
		return rc;
	u->gpu = v;
	u->memory = 0;
	return NVML_SUCCESS;
}

/*
 * A GPU's memory as version 2 sees it: used, reserved apart, and free,
 * which add up to total.
 */
static int
fake_memory(struct fake_device *d, struct nvml_memory_v2 *m)
{
	struct fake_gpu	g;
	int		rc;

	if ((rc = fake_get(d, &g)) != NVML_SUCCESS)
		return rc;
	if (!g.set[FAKE_MEM_USED] || !g.set[FAKE_MEM_TOTAL])
		return NVML_ERROR_NOT_SUPPORTED;
	m->used = strtoull(g.value[FAKE_MEM_USED], NULL, 10);
	m->total = strtoull(g.value[FAKE_MEM_TOTAL], NULL, 10);
	m->reserved = 0;
	if (g.set[FAKE_MEM_RESERVED])
		m->reserved = strtoull(g.value[FAKE_MEM_RESERVED], NULL, 10);
	m->free = m->total > m->used + m->reserved ?
	    m->total - m->used - m->reserved : 0;
	return NVML_SUCCESS;
}

/* Version 1 has no reserved: what is not free is used. */
int
nvmlDeviceGetMemoryInfo(struct fake_device *d, struct nvml_memory *m)
{
	struct nvml_memory_v2	m2;
	int			rc;

	if (m == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if ((rc = fake_memory(d, &m2)) != NVML_SUCCESS)
		return rc;
	m->total = m2.total;
	m->free = m2.free;
	m->used = m2.total - m2.free;
	return NVML_SUCCESS;
}

int
nvmlDeviceGetMemoryInfo_v2(struct fake_device *d, struct nvml_memory_v2 *m)
{
	const char	*fail = getenv("FAKE_NVML_FAIL");

	if (fail != NULL && strcmp(fail, "memory_v2") == 0)
		return NVML_ERROR_FUNCTION_NOT_FOUND;
	if (m == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (m->version != NVML_MEMORY_V2)
		return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
	return fake_memory(d, m);
}

int
nvmlDeviceGetTemperature(struct fake_device *d, int sensor, unsigned int *t)
{
	if (sensor != 0)	/* NVML_TEMPERATURE_GPU is the only one */
		return NVML_ERROR_INVALID_ARGUMENT;
	return fake_uint(d, FAKE_TEMP, t);
}

int
nvmlDeviceGetPowerUsage(struct fake_device *d, unsigned int *mw)
{
	return fake_uint(d, FAKE_POWER, mw);
}

int
nvmlDeviceGetEnforcedPowerLimit(struct fake_device *d, unsigned int *mw)
{
	return fake_uint(d, FAKE_LIMIT, mw);
}
