/* rand.h -- cryptographically secure random bytes from the kernel (getrandom), and hex helpers.
 * Thread-safe.  Failure to get randomness is fatal to the caller's operation, never silently weak. */
#ifndef PRISM_RAND_H
#define PRISM_RAND_H

#include <stddef.h>

#include "util/err.h"

enum prism_err rand_bytes(void *out, size_t n);
/* n random bytes as 2n lowercase hex characters plus NUL; out must hold 2n+1 bytes. */
enum prism_err rand_hex(char *out, size_t nbytes);
/* Lowercase hex of `len` bytes into out (2*len+1 bytes). */
void hex_encode(const void *in, size_t len, char *out);
/* Overwrites memory in a way the compiler may not elide. */
void secure_wipe(void *p, size_t n);
/* Constant-time equality of two equal-length buffers (returns 1 when equal). */
int const_time_eq(const void *a, const void *b, size_t n);

#endif
