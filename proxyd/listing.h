/*
 * listing.h: the fleet's model lists (/api/tags, /api/ps, /v1/models).
 */
#ifndef OG_LISTING_H
#define OG_LISTING_H

struct conn;
struct listing;

/*
 * Ask every backend for the list the request names, and answer with
 * the union. Returns -1, having answered nothing, if no backend can be
 * asked.
 */
int	listing_start(struct conn *);
/* The client went away: the backends' transfers stop. */
void	listing_client_gone(struct listing *);

#endif
