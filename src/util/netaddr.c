/* netaddr.c -- see netaddr.h. */
#include "config.h"
#include "util/netaddr.h"

#include <arpa/inet.h>
#include <string.h>

#include "util/parse.h"

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

enum prism_err
netaddr_parse(const char *s, struct netaddr *out)
{
	char tmp[64];
	size_t n = strlen(s);
	if (n >= sizeof tmp || n == 0)
		return PRISM_E_BAD_REQUEST;
	if (s[0] == '[' && s[n - 1] == ']') {
		memcpy(tmp, s + 1, n - 2);
		tmp[n - 2] = '\0';
	} else {
		memcpy(tmp, s, n + 1);
	}
	struct in_addr v4;
	if (inet_pton(AF_INET, tmp, &v4) == 1) {
		memcpy(out->a, v4mapped, 12);
		memcpy(out->a + 12, &v4, 4);
		return PRISM_OK;
	}
	if (inet_pton(AF_INET6, tmp, out->a) == 1)
		return PRISM_OK;
	return PRISM_E_BAD_REQUEST;
}

enum prism_err
netprefix_parse(const char *s, struct netprefix *out)
{
	char tmp[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof tmp)
		return PRISM_E_BAD_REQUEST;
	memcpy(tmp, s, alen);
	tmp[alen] = '\0';
	if (netaddr_parse(tmp, &out->addr))
		return PRISM_E_BAD_REQUEST;
	bool v4 = netaddr_is_v4(&out->addr) && !strchr(tmp, ':');
	long bits = v4 ? 32 : 128;
	if (slash && parse_long(slash + 1, 0, bits, &bits))
		return PRISM_E_BAD_REQUEST;
	out->bits = (int)(v4 ? bits + 96 : bits);
	/* Clear host bits so that "10.1.2.3/8" means 10.0.0.0/8. */
	for (int i = 0; i < 16; i++) {
		int keep = out->bits - i * 8;
		if (keep <= 0)
			out->addr.a[i] = 0;
		else if (keep < 8)
			out->addr.a[i] &= (uint8_t)(0xff << (8 - keep));
	}
	return PRISM_OK;
}

bool
netprefix_contains(const struct netprefix *p, const struct netaddr *a)
{
	int full = p->bits / 8, rest = p->bits % 8;
	if (memcmp(p->addr.a, a->a, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (p->addr.a[full] & mask) == (a->a[full] & mask);
}

bool
netaddr_is_v4(const struct netaddr *a)
{
	return memcmp(a->a, v4mapped, 12) == 0;
}

void
netaddr_format(const struct netaddr *a, char *out, size_t outlen)
{
	if (netaddr_is_v4(a))
		inet_ntop(AF_INET, a->a + 12, out, (socklen_t)outlen);
	else
		inet_ntop(AF_INET6, a->a, out, (socklen_t)outlen);
}
