/* xalloc.h -- allocation wrappers for fixed-size internal allocations.
 *
 * These abort the process with a message on out-of-memory: use them only for sizes the program chooses,
 * never for sizes that come from a request (those are bounded and checked by the caller).
 */
#ifndef PRISM_XALLOC_H
#define PRISM_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
