/*
 * peer.h: the connections each client address holds, so that one
 * address cannot take every slot of max_connections.
 */
#ifndef OG_PEER_H
#define OG_PEER_H

struct peer;

/*
 * May a new connection from this address (as inet_ntop writes it) be
 * accepted? 0 and *out set to what peer_release() takes (NULL for an
 * address that is not counted), or -1 if the address is at
 * max_connections_per_ip.
 */
int	peer_admit(const char *ip, struct peer **out);
/* One connection of the address has closed; NULL does nothing. */
void	peer_release(struct peer *);

#endif
