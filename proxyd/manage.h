/*
 * manage.h: model management across the fleet (/api/pull, /api/push,
 * /api/create, /api/copy, /api/delete, /api/blobs/:digest).
 */
#ifndef OG_MANAGE_H
#define OG_MANAGE_H

struct conn;
struct manage;

/* The request header that names the one backend a request is for. */
#define MANAGE_HEADER	"x-ogate-backend"

/*
 * Take a management request if the gateway routes it itself: it names
 * a backend (MANAGE_HEADER), or more than one backend can take it.
 * Returns 1 if it was taken (started or answered), 0 if it goes to one
 * backend the ordinary way.
 */
int	manage_start(struct conn *);
/* Does a management request go to more than one backend? */
int	manage_fanout(const struct conn *);
/*
 * Pull model to the backend named, or to every backend if backend is
 * NULL, answering with the progress stream (the admin API's pull).
 * Returns -1, having answered nothing, if no backend can be asked.
 */
int	manage_pull(struct conn *, const char *model, const char *backend);
/* The client went away: the backends' transfers stop. */
void	manage_client_gone(struct manage *);
/* The client's output has drained (below the low mark if low). */
void	manage_client_drained(struct manage *, int low);

#endif
