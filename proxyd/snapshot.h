/*
 * snapshot.h: the live state of the gateway as JSON, for the admin API.
 *
 * GET /admin/v1/snapshot returns in one document all that ogtop draws:
 * totals, the requests in flight, users against their quotas, backends
 * with their loaded models, models, and GPUs. Everything comes from
 * memory; nothing here touches the disk.
 */
#ifndef OG_SNAPSHOT_H
#define OG_SNAPSHOT_H

#include <jansson.h>

struct auth_user;

/* The whole snapshot. */
json_t	*snapshot_json(void);
/* The backends, with what their last probe saw. */
json_t	*snapshot_backends(void);
/* One user against its quota. */
json_t	*snapshot_user(struct auth_user *);

#endif
