/* front.h -- answers one request: route it, run its handler, turn errors into responses, log it.
 *
 * Used by every worker thread (FastCGI) and by CGI mode.  The struct request is the caller's, reused
 * across requests; front_handle resets it.  Thread-safe as long as each thread has its own request.
 */
#ifndef PRISM_FRONT_H
#define PRISM_FRONT_H

#include <fcgiapp.h>

#include "core/request.h"

/* fcgx NULL = CGI mode (the request comes from cgi_env, stdin and stdout). */
void front_handle(struct request *req, FCGX_Request *fcgx, char **cgi_env);

#endif
