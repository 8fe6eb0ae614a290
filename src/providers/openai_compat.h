/* openai_compat.h -- the adapter for every provider that speaks the OpenAI HTTP API: OpenAI, OpenRouter,
 * vLLM, LiteLLM, custom servers, the *-proxy types, and Ollama's OpenAI-compatible API.
 *
 * Requests: POST <base_url><api_path or "/v1">/chat/completions, /completions, /embeddings with the
 * OpenAI-shaped body (the client's fields pass through); streaming adds "stream": true and
 * "stream_options.include_usage" (keeping the client's other stream_options), non-streaming sets "stream":
 * false.  Headers: Content-Type, Accept, User-Agent "model-prism/<version>", "Authorization: Bearer <key>"
 * when auth_type is api_key, bearer or unset and a key is configured (never for "none"), then the extra
 * headers (those with CR/LF, and Host, Content-Length, Transfer-Encoding, Connection and -- when we send our
 * own -- Authorization, are skipped).  No redirects are followed; only http:// and https://.
 *
 * Models: GET <base><api_path>/models → data[].id.  The ollama ops ask GET <base>/api/tags first (names),
 * then the OpenAI path.
 *
 * Connections: a call takes a curl easy handle from the process's pool of idle handles (the most recently
 * used first; reset for every call but keeping its connection cache) and returns it, so calls to one
 * provider reuse TCP (and TLS) connections whichever thread makes them, and the connections outlive the
 * request threads.  At most 64 idle handles are kept; openai_compat_pool_clear frees them.
 *
 * Timeouts: connect and total through curl; first byte (counted from the moment the request is on its way)
 * and the idle gap between received bytes are checked by the transfer's progress callback, which curl calls
 * at least about once a second, so these two fire up to ~1 s late.
 *
 * Thread-safety: any thread.
 */
#ifndef PRISM_PROVIDERS_OPENAI_COMPAT_H
#define PRISM_PROVIDERS_OPENAI_COMPAT_H

#include "providers/provider.h"

extern const struct provider_ops openai_compat_ops;
extern const struct provider_ops ollama_compat_ops;

/* Frees the idle handles (and with them their kept-alive connections). */
void openai_compat_pool_clear(void);

#endif
