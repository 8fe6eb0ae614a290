/* crypto.h -- hashing, secret encryption at rest and password hashes.
 *
 * Encryption uses the original program's format so that its data decrypts here and ours there:
 * AES-256-GCM, key = SHA-256 of the encryption_key string, a random 16-byte IV, a 16-byte tag, no AAD,
 * serialised as "enc:<iv hex>:<tag hex>:<ciphertext hex>".  Values without the "enc:" prefix are legacy
 * plaintext and pass through crypto_decrypt unchanged.  Decryption tries the current key and then the
 * previous one (encryption_key_previous), which is what makes key rotation safe to interrupt.
 *
 * Passwords: bcrypt through libxcrypt, "$2b$" at cost CRYPTO_BCRYPT_COST; "$2a$"/"$2b$"/"$2y$" verify.
 *
 * Thread-safe; no global state.  Returned strings are malloc'd (free them; wipe the plaintext ones with
 * crypto_free_secret).
 */
#ifndef PRISM_CRYPTO_H
#define PRISM_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

#define CRYPTO_BCRYPT_COST 12
#define CRYPTO_SHA256_HEX 65                 /* 64 hex + NUL */
#define CRYPTO_MAX_SECRET (64 * 1024)        /* one encrypted value, plaintext bytes */
#define CRYPTO_PASSWORD_MAX 72               /* bcrypt uses no more; longer ones are refused, not cut */

/* SHA-256 of len bytes as lowercase hex. */
void crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_SHA256_HEX]);
void crypto_sha256(const void *data, size_t len, unsigned char out[32]);
/* HMAC-SHA256 as lowercase hex. */
void crypto_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len,
			    char out[CRYPTO_SHA256_HEX]);

/* True when s is in the encrypted format (its prefix, not that it decrypts). */
bool crypto_is_encrypted(const char *s);
/* Encrypts plaintext with `key` (the encryption_key string).  A value that already looks encrypted is
 * refused (PRISM_E_BAD_REQUEST) rather than stored in clear as the original did. */
enum prism_err crypto_encrypt(const char *key, const char *plaintext, char **out);
/* Decrypts with key, then with previous (may be NULL or ""); plaintext input is returned as it is.
 * PRISM_E_CONFIG when no key opens it (a changed encryption_key), PRISM_E_BAD_REQUEST when malformed.
 * *used_previous (may be NULL) tells whether only the previous key opened it. */
enum prism_err crypto_decrypt(const char *key, const char *previous, const char *value, char **out,
			      bool *used_previous);
/* Wipes and frees a plaintext secret. */
void crypto_free_secret(char *s);

/* bcrypt hash of password (cost CRYPTO_BCRYPT_COST); *out malloc'd. */
enum prism_err crypto_password_hash(const char *password, char **out);
/* True when password matches hash.  With hash NULL, spends the same time on a fixed dummy hash and
 * returns false, so unknown users cost what wrong passwords cost. */
bool crypto_password_verify(const char *password, const char *hash);

/* Equality of two NUL-terminated strings in time independent of where they differ. */
bool crypto_str_eq(const char *a, const char *b);

#endif
