/* rand.c -- see rand.h. */
#include "config.h"
#include "util/rand.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

enum prism_err
rand_bytes(void *out, size_t n)
{
	unsigned char *p = out;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return PRISM_E_INTERNAL;
		}
		p += r;
		n -= (size_t)r;
	}
	return PRISM_OK;
}

void
hex_encode(const void *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = in;
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = '\0';
}

enum prism_err
rand_hex(char *out, size_t nbytes)
{
	unsigned char tmp[128];
	if (nbytes > sizeof tmp)
		return PRISM_E_INTERNAL;
	enum prism_err err = rand_bytes(tmp, nbytes);
	if (err)
		return err;
	hex_encode(tmp, nbytes, out);
	secure_wipe(tmp, sizeof tmp);
	return PRISM_OK;
}

void
secure_wipe(void *p, size_t n)
{
#ifdef HAVE_EXPLICIT_BZERO
	explicit_bzero(p, n);
#else
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
#endif
}

int
const_time_eq(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;
	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}
