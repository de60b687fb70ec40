/*
 * peer.c: the connections each client address holds.
 *
 * Without a bound per address, one client could hold every slot of
 * max_connections without ever sending a token. Each address with a
 * connection open has an entry in a hash table, freed when its last
 * connection closes, so the table never has more entries than there are
 * connections. An IPv6 client is counted by its /64, since one host is
 * commonly given a whole /64 and could otherwise take a new address for
 * each connection.
 *
 * 127.0.0.1 and ::1, where a reverse proxy or a tool on the same
 * machine connects from, are not counted, nor are the networks of
 * per_ip_exempt. The other loopback addresses are counted: nothing
 * connects from them unless it asks to, and the tests need an address
 * that is counted.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hash.h"
#include "log.h"
#include "loop.h"
#include "peer.h"
#include "server.h"
#include "xmalloc.h"

/* Refusals of one address are logged at most this often. */
#define PEER_LOG_EVERY_MS	(60 * 1000)
#define PEER_MIN_BUCKETS	256

struct peer {
	unsigned char	 key[9];	/* family tag, then 4 or 8 bytes */
	uint64_t	 hash;
	unsigned	 count;
	uint64_t	 logged;	/* loop time of the last refusal logged */
	int		 ever_logged;
	char		 ip[INET6_ADDRSTRLEN];
	struct peer	*next;
};

static struct peer	**peer_buckets;
static size_t		  peer_nbuckets;
static size_t		  peer_n;
static uint64_t		  peer_seed;

/*
 * The hash is keyed with a random seed, so that a client choosing its
 * addresses (an IPv6 /48 has many /64s) cannot aim them at one bucket.
 */
static uint64_t
peer_hash(const unsigned char *key, size_t len)
{
	return hash_keyed(peer_seed, key, len);
}

static void
peer_init(void)
{
	peer_seed = hash_seed();
	peer_nbuckets = PEER_MIN_BUCKETS;
	peer_buckets = xcalloc(peer_nbuckets, sizeof *peer_buckets);
}

/* Double the table when its chains grow past two on average. */
static void
peer_grow(void)
{
	size_t		  n = peer_nbuckets * 2;
	struct peer	**b = xcalloc(n, sizeof *b);

	for (size_t i = 0; i < peer_nbuckets; i++) {
		struct peer	*p, *next;

		for (p = peer_buckets[i]; p != NULL; p = next) {
			next = p->next;
			p->next = b[p->hash & (n - 1)];
			b[p->hash & (n - 1)] = p;
		}
	}
	free(peer_buckets);
	peer_buckets = b;
	peer_nbuckets = n;
}

/* Is the address in a network of the list? */
static int
peer_in(int family, const unsigned char *addr, const struct config_net *net)
{
	unsigned	bytes = net->bits / 8, rest = net->bits % 8;

	if (net->family != family)
		return 0;
	if (memcmp(addr, net->addr, bytes) != 0)
		return 0;
	return rest == 0 ||
	    ((addr[bytes] ^ net->addr[bytes]) & (0xff << (8 - rest)) & 0xff) == 0;
}

static int
peer_exempt(int family, const unsigned char *addr)
{
	static const unsigned char	lo4[4] = { 127, 0, 0, 1 };
	struct config_net		net;

	if (family == AF_INET && memcmp(addr, lo4, 4) == 0)
		return 1;
	if (family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)(const void *)addr))
		return 1;
	for (size_t i = 0; i < server_cfg->nper_ip_exempt; i++) {
		/* Checked when the config was loaded. */
		if (config_parse_net(server_cfg->per_ip_exempt[i], &net) == 0 &&
		    peer_in(family, addr, &net))
			return 1;
	}
	return 0;
}

int
peer_admit(const char *ip, struct peer **out)
{
	unsigned char	 addr[16], key[9];
	size_t		 klen;
	int		 family;
	uint64_t	 h;
	struct peer	*p;

	*out = NULL;
	if (inet_pton(AF_INET, ip, addr) == 1) {
		family = AF_INET;
		key[0] = 4;
		memcpy(key + 1, addr, 4);
		klen = 5;
	} else if (inet_pton(AF_INET6, ip, addr) == 1) {
		family = AF_INET6;
		key[0] = 6;
		memcpy(key + 1, addr, 8);	/* the /64 */
		klen = 9;
	} else
		return 0;	/* not an IP connection: nothing to count */
	if (peer_exempt(family, addr))
		return 0;
	if (peer_buckets == NULL)
		peer_init();
	h = peer_hash(key, klen);
	for (p = peer_buckets[h & (peer_nbuckets - 1)]; p != NULL; p = p->next) {
		if (p->hash == h && memcmp(p->key, key, klen) == 0)
			break;
	}
	if (p == NULL) {
		if (peer_n >= 2 * peer_nbuckets)
			peer_grow();
		p = xcalloc(1, sizeof *p);
		memcpy(p->key, key, klen);
		p->hash = h;
		snprintf(p->ip, sizeof p->ip, "%s", ip);
		p->next = peer_buckets[h & (peer_nbuckets - 1)];
		peer_buckets[h & (peer_nbuckets - 1)] = p;
		peer_n++;
	}
	if (p->count >= server_cfg->max_connections_per_ip) {
		/* One line a minute per address, not one per connection. */
		if (!p->ever_logged || loop_now() - p->logged >=
		    PEER_LOG_EVERY_MS) {
			log_warn("client %s%s holds %u connections "
			    "(max_connections_per_ip); refusing more",
			    p->ip, family == AF_INET6 ? " (its /64)" : "",
			    p->count);
			p->logged = loop_now();
			p->ever_logged = 1;
		}
		return -1;
	}
	p->count++;
	*out = p;
	return 0;
}

void
peer_release(struct peer *p)
{
	struct peer	**pp;

	if (p == NULL || --p->count > 0)
		return;
	for (pp = &peer_buckets[p->hash & (peer_nbuckets - 1)]; *pp != p;
	    pp = &(*pp)->next)
		;
	*pp = p->next;
	peer_n--;
	free(p);
}
