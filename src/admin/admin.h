/* admin.h -- what every control-plane handler shares: the store, input validation, change propagation.
 *
 * Validation: handlers check each field they read with the valid_* functions.  A field that is absent
 * (or null) is not an error unless VF_REQUIRED; a field of the wrong type, length or value is, and the
 * function writes "<field>: <why>" into req->errdetail and returns PRISM_E_BAD_REQUEST, which the front
 * answers as 400 {"error": "<field>: <why>", "code": "invalid_request"}.  Unknown fields are ignored, as
 * the original's schemas did, so its web UI can send whole documents back.
 *
 * Every successful configuration write calls admin_changed(): the shared-memory caches of this host are
 * invalidated at once and the store's generation counter is bumped so that other hosts follow within
 * generation_poll.
 *
 * Thread-safe (per-request state only).
 */
#ifndef PRISM_ADMIN_ADMIN_H
#define PRISM_ADMIN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/request.h"
#include "store/store.h"
#include "util/err.h"

#define VF_REQUIRED 0x1u
#define VF_NONEMPTY 0x2u      /* strings: at least one non-blank character */

/* The process's store, or PRISM_E_STORE (503) when it is not connected. */
enum prism_err admin_store(struct request *req, struct store **out);
/* Sets req->errdetail (printf-style) and returns err: `return admin_fail(req, PRISM_E_NOT_FOUND, ...)`. */
enum prism_err admin_fail(struct request *req, enum prism_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Maps a store error to the client: CONFLICT/NOT_FOUND keep `what`, STORE keeps the store's detail for
 * the log (503), anything else becomes 500. */
enum prism_err admin_store_fail(struct request *req, enum prism_err err, const char *what, const char *detail);

/* Reads the body as a JSON object (400/413 on failure); *out new reference. */
enum prism_err admin_body(struct request *req, json_t **out);
/* Answers 200/201 with body (stolen). */
enum prism_err admin_reply(struct request *req, int status, json_t *body);

/* Field validators; *out borrowed from body (strings) or copied (numbers, bools); untouched when absent. */
enum prism_err valid_string(struct request *req, const json_t *body, const char *field, unsigned flags,
			    size_t maxlen, const char **out);
enum prism_err valid_bool(struct request *req, const json_t *body, const char *field, unsigned flags, bool *out);
enum prism_err valid_int(struct request *req, const json_t *body, const char *field, unsigned flags, long min,
			 long max, long *out);
enum prism_err valid_number(struct request *req, const json_t *body, const char *field, unsigned flags,
			    double min, double max, double *out);
/* A string that must be one of choices (NULL-terminated). */
enum prism_err valid_enum(struct request *req, const json_t *body, const char *field, unsigned flags,
			  const char *const *choices, const char **out);
/* An array of at most max_items strings of at most maxlen bytes each; *out borrowed. */
enum prism_err valid_string_array(struct request *req, const json_t *body, const char *field, unsigned flags,
				  size_t max_items, size_t maxlen, json_t **out);
/* An object; *out borrowed. */
enum prism_err valid_object(struct request *req, const json_t *body, const char *field, unsigned flags,
			    json_t **out);
/* A 24-hex id (or an array of them when `array`); *out borrowed. */
enum prism_err valid_id(struct request *req, const json_t *body, const char *field, unsigned flags, const char **out);
enum prism_err valid_id_array(struct request *req, const json_t *body, const char *field, unsigned flags,
			      size_t max_items, json_t **out);
/* A :param that must be an id: 404 `what not found` for anything else (an id that cannot exist). */
enum prism_err admin_param_id(struct request *req, const char *param, const char *what, const char **out);

/* After a successful configuration write. */
void admin_changed(struct request *req);

/* The current time as an ISO-8601 string (into out[32]) and in ms. */
void admin_now(char out[32]);
/* Copies doc without the listed top-level fields (NULL-terminated); new reference. */
json_t *admin_without(const json_t *doc, const char *const *fields);
/* The stored value of a string field or "" (borrowed). */
const char *admin_str(const json_t *doc, const char *field);

/* A collection's documents matching conds (all pages, at most max); new array in *out. */
enum prism_err admin_find_all(struct request *req, struct store *s, enum store_coll c, const struct store_cond *conds,
			      size_t nconds, const char *sort, bool desc, long max, json_t **out);
/* The first document where field == value (string), or *out NULL. */
enum prism_err admin_find_one(struct request *req, struct store *s, enum store_coll c, const char *field,
			      const char *value, json_t **out);

#endif
