/* curlx.h -- the libcurl pieces every HTTP client of the program shares: one global init, the common options
 * (User-Agent, no signals, error buffer, http/https only, TLS settings), a bounded body sink and the
 * classification of TLS failures.
 *
 * The callers keep their own error messages, timeouts, proxy rules and handle lifetimes.  Thread-safe
 * (curlx_global_init runs curl_global_init once per process). */
#ifndef PRISM_CURLX_H
#define PRISM_CURLX_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

/* curl_global_init, once per process; call before the first curl_easy_init. */
void curlx_global_init(void);

/* User-Agent "model-prism/<version>", CURLOPT_NOSIGNAL and the error buffer (CURL_ERROR_SIZE bytes, borrowed:
 * it must outlive the transfer). */
void curlx_basics(CURL *c, char *errbuf);

/* Restricts the transfer and any redirect it follows to http:// and https://. */
void curlx_http_only(CURL *c);

/* verify false: no peer or host name check.  ca_file (NULL or "": the system store): the CA bundle. */
void curlx_tls(CURL *c, bool verify, const char *ca_file);

/* CURLOPT_WRITEFUNCTION appending to the struct buf in CURLOPT_WRITEDATA; past the buffer's maximum it fails
 * the transfer with CURLE_WRITE_ERROR. */
size_t curlx_on_body(char *data, size_t size, size_t nmemb, void *ud);

/* Whether rc is a TLS failure (handshake, certificate, CA file, engine). */
bool curlx_is_tls_error(CURLcode rc);

#endif
