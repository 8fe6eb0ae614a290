/* netaddr.h -- IP addresses and CIDR prefixes (IPv4 and IPv6), for trusted proxies and allow-lists.
 *
 * IPv4 addresses are kept as IPv4-mapped IPv6 (::ffff:a.b.c.d) so one comparison serves both families.
 * Thread-safe; no allocation.
 */
#ifndef PRISM_NETADDR_H
#define PRISM_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct netaddr {
	uint8_t a[16];
};

struct netprefix {
	struct netaddr addr;
	int bits;             /* 0..128 over the mapped form */
};

/* Parses "192.0.2.1", "2001:db8::1" or "::ffff:192.0.2.1" (surrounding [] allowed for IPv6). */
enum prism_err netaddr_parse(const char *s, struct netaddr *out);
/* Parses "10.0.0.0/8", "2001:db8::/32" or a single address (a full-length prefix). */
enum prism_err netprefix_parse(const char *s, struct netprefix *out);
bool netprefix_contains(const struct netprefix *p, const struct netaddr *a);
bool netaddr_is_v4(const struct netaddr *a);
/* Canonical text form ("192.0.2.1", "2001:db8::1"); out must hold 46 bytes. */
void netaddr_format(const struct netaddr *a, char *out, size_t outlen);

#endif
