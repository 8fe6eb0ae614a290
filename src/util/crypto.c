/* crypto.c -- see crypto.h. */
#include "config.h"
#include "util/crypto.h"

#include <crypt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "util/parse.h"
#include "util/rand.h"
#include "util/xalloc.h"

#define IV_LEN 16
#define TAG_LEN 16
#define PREFIX "enc:"

/* OpenSSL 3 looks an algorithm up by name (a locked table and a property query) on every SHA256() call and
 * every init with EVP_aes_256_gcm(), and a gateway request makes three such calls (its key's hash, its
 * provider credential's key and cipher): 1 % of a worker's CPU.  They are fetched once per process instead
 * (the objects are plain memory: a fork keeps them); the built-in getters remain the fallback. */
static EVP_MD *sha256_md;
static EVP_CIPHER *gcm_cipher;
static pthread_once_t fetched = PTHREAD_ONCE_INIT;

/* Each thread keeps its digest and cipher contexts (a new one is two allocations and an algorithm context
 * each time), and the key derived from the last encryption key it decrypted with. */
struct thread_ctx {
	EVP_MD_CTX *md;
	EVP_CIPHER_CTX *cipher;
	char *key_of;                   /* the encryption key `derived` comes from (a copy) */
	unsigned char derived[32];
};
static pthread_key_t ctx_key;
static bool ctx_key_ok;

static void
thread_ctx_free(void *p)
{
	struct thread_ctx *t = p;
	EVP_MD_CTX_free(t->md);
	EVP_CIPHER_CTX_free(t->cipher);
	if (t->key_of) {
		secure_wipe(t->key_of, strlen(t->key_of));
		free(t->key_of);
	}
	secure_wipe(t->derived, sizeof t->derived);
	free(t);
}

static void
fetch_algorithms(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	ctx_key_ok = pthread_key_create(&ctx_key, thread_ctx_free) == 0;
}

/* The calling thread's contexts; NULL without memory (the callers then make their own). */
static struct thread_ctx *
thread_ctx(void)
{
	pthread_once(&fetched, fetch_algorithms);
	if (!ctx_key_ok)
		return NULL;
	struct thread_ctx *t = pthread_getspecific(ctx_key);
	if (t)
		return t;
	t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->md = EVP_MD_CTX_new();
	t->cipher = EVP_CIPHER_CTX_new();
	if (!t->md || !t->cipher || pthread_setspecific(ctx_key, t) != 0) {
		thread_ctx_free(t);
		return NULL;
	}
	return t;
}

static const EVP_MD *
md_sha256(void)
{
	pthread_once(&fetched, fetch_algorithms);
	return sha256_md ? sha256_md : EVP_sha256();
}

static const EVP_CIPHER *
cipher_gcm(void)
{
	pthread_once(&fetched, fetch_algorithms);
	return gcm_cipher ? gcm_cipher : EVP_aes_256_gcm();
}

void
crypto_sha256(const void *data, size_t len, unsigned char out[32])
{
	const EVP_MD *md = md_sha256();
	struct thread_ctx *t = thread_ctx();
	if (t && EVP_DigestInit_ex(t->md, md, NULL) == 1 && EVP_DigestUpdate(t->md, data, len) == 1 &&
	    EVP_DigestFinal_ex(t->md, out, NULL) == 1)
		return;
	if (EVP_Digest(data, len, out, NULL, md, NULL) != 1)
		SHA256(data, len, out);
}

void
crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_SHA256_HEX])
{
	unsigned char d[32];
	crypto_sha256(data, len, d);
	hex_encode(d, sizeof d, out);
}

void
crypto_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len, char out[CRYPTO_SHA256_HEX])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	HMAC(md_sha256(), key, (int)keylen, data, len, d, &dlen);
	hex_encode(d, dlen, out);
}

bool
crypto_is_encrypted(const char *s)
{
	return s && strncmp(s, PREFIX, strlen(PREFIX)) == 0;
}

static void
derive_key(const char *key, unsigned char out[32])
{
	crypto_sha256(key, strlen(key), out);
}

static bool
hex_decode(const char *s, size_t n, unsigned char *out)
{
	if (n % 2)
		return false;
	for (size_t i = 0; i < n; i += 2) {
		int hi = parse_hexval(s[i]), lo = parse_hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i / 2] = (unsigned char)(hi * 16 + lo);
	}
	return true;
}

enum prism_err
crypto_encrypt(const char *key, const char *plaintext, char **out)
{
	*out = NULL;
	if (!key || !*key)
		return PRISM_E_CONFIG;
	if (crypto_is_encrypted(plaintext))
		return PRISM_E_BAD_REQUEST;
	size_t len = strlen(plaintext);
	if (len > CRYPTO_MAX_SECRET)
		return PRISM_E_TOO_LARGE;
	unsigned char k[32], iv[IV_LEN], tag[TAG_LEN];
	unsigned char *ct = xmalloc(len + 1);
	enum prism_err err = PRISM_E_INTERNAL;
	EVP_CIPHER_CTX *ctx = NULL;
	derive_key(key, k);
	if (rand_bytes(iv, sizeof iv) != PRISM_OK)
		goto out;
	ctx = EVP_CIPHER_CTX_new();
	int n = 0, fin = 0;
	if (!ctx || EVP_EncryptInit_ex(ctx, cipher_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, IV_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, k, iv) != 1 ||
	    EVP_EncryptUpdate(ctx, ct, &n, (const unsigned char *)plaintext, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, ct + n, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
		goto out;
	size_t ctlen = (size_t)n + (size_t)fin;
	char *s = xmalloc(strlen(PREFIX) + 2 * IV_LEN + 1 + 2 * TAG_LEN + 1 + 2 * ctlen + 1);
	char *p = s;
	memcpy(p, PREFIX, strlen(PREFIX));
	p += strlen(PREFIX);
	hex_encode(iv, IV_LEN, p);
	p += 2 * IV_LEN;
	*p++ = ':';
	hex_encode(tag, TAG_LEN, p);
	p += 2 * TAG_LEN;
	*p++ = ':';
	hex_encode(ct, ctlen, p);
	*out = s;
	err = PRISM_OK;
out:
	EVP_CIPHER_CTX_free(ctx);
	secure_wipe(k, sizeof k);
	free(ct);
	return err;
}

/* PRISM_OK, PRISM_E_CONFIG (tag mismatch: wrong key) or PRISM_E_INTERNAL. */
static enum prism_err
decrypt_with(const char *key, const unsigned char *iv, const unsigned char *tag, const unsigned char *ct,
	     size_t ctlen, char **out)
{
	unsigned char k[32];
	struct thread_ctx *t = thread_ctx();
	if (t && t->key_of && strcmp(t->key_of, key) == 0) {
		memcpy(k, t->derived, sizeof k);
	} else {
		derive_key(key, k);
		if (t) {
			if (t->key_of) {
				secure_wipe(t->key_of, strlen(t->key_of));
				free(t->key_of);
			}
			t->key_of = strdup(key);
			memcpy(t->derived, k, sizeof k);
		}
	}
	char *pt = xmalloc(ctlen + 1);
	enum prism_err err = PRISM_E_INTERNAL;
	EVP_CIPHER_CTX *ctx = t ? t->cipher : EVP_CIPHER_CTX_new();
	int n = 0, fin = 0;
	if (!ctx || EVP_DecryptInit_ex(ctx, cipher_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, IV_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, k, iv) != 1 ||
	    EVP_DecryptUpdate(ctx, (unsigned char *)pt, &n, ct, (int)ctlen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)tag) != 1)
		goto out;
	if (EVP_DecryptFinal_ex(ctx, (unsigned char *)pt + n, &fin) != 1) {
		err = PRISM_E_CONFIG;
		goto out;
	}
	pt[n + fin] = '\0';
	*out = pt;
	pt = NULL;
	err = PRISM_OK;
out:
	if (t)
		EVP_CIPHER_CTX_reset(ctx);      /* no key material left in it */
	else
		EVP_CIPHER_CTX_free(ctx);
	secure_wipe(k, sizeof k);
	if (pt) {
		secure_wipe(pt, ctlen + 1);
		free(pt);
	}
	return err;
}

enum prism_err
crypto_decrypt(const char *key, const char *previous, const char *value, char **out, bool *used_previous)
{
	*out = NULL;
	if (used_previous)
		*used_previous = false;
	if (!value)
		return PRISM_E_BAD_REQUEST;
	if (!crypto_is_encrypted(value)) {
		*out = xstrdup(value);
		return PRISM_OK;
	}
	const char *p = value + strlen(PREFIX);
	const char *c1 = strchr(p, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c1 || !c2 || strchr(c2 + 1, ':') || c1 - p != 2 * IV_LEN || c2 - c1 - 1 != 2 * TAG_LEN)
		return PRISM_E_BAD_REQUEST;
	size_t cthex = strlen(c2 + 1);
	if (cthex / 2 > CRYPTO_MAX_SECRET)
		return PRISM_E_TOO_LARGE;
	unsigned char iv[IV_LEN], tag[TAG_LEN];
	unsigned char *ct = xmalloc(cthex / 2 + 1);
	enum prism_err err = PRISM_E_BAD_REQUEST;
	if (!hex_decode(p, 2 * IV_LEN, iv) || !hex_decode(c1 + 1, 2 * TAG_LEN, tag) || !hex_decode(c2 + 1, cthex, ct))
		goto out;
	err = PRISM_E_CONFIG;
	if (key && *key)
		err = decrypt_with(key, iv, tag, ct, cthex / 2, out);
	if (err == PRISM_E_CONFIG && previous && *previous) {
		err = decrypt_with(previous, iv, tag, ct, cthex / 2, out);
		if (err == PRISM_OK && used_previous)
			*used_previous = true;
	}
out:
	free(ct);
	return err;
}

void
crypto_free_secret(char *s)
{
	if (!s)
		return;
	secure_wipe(s, strlen(s));
	free(s);
}

enum prism_err
crypto_password_hash(const char *password, char **out)
{
	*out = NULL;
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	if (!crypt_gensalt_rn("$2b$", CRYPTO_BCRYPT_COST, NULL, 0, setting, sizeof setting))
		return PRISM_E_INTERNAL;
	struct crypt_data *cd = xcalloc(1, sizeof *cd);
	const char *h = crypt_rn(password, setting, cd, sizeof *cd);
	enum prism_err err = PRISM_E_INTERNAL;
	if (h && h[0] == '$') {
		*out = xstrdup(h);
		err = PRISM_OK;
	}
	secure_wipe(cd, sizeof *cd);
	free(cd);
	return err;
}

/* A valid cost-12 hash of a random string nobody knows; verifying against it costs what a real one does. */
static const char dummy_hash[] = "$2b$12$C6UzMDM.H6dfI/f/IKxGhuQt.vFXWLnbpxjhyNVhy1utC88zx3T5G";

bool
crypto_password_verify(const char *password, const char *hash)
{
	bool real = hash && (strncmp(hash, "$2a$", 4) == 0 || strncmp(hash, "$2b$", 4) == 0 ||
			     strncmp(hash, "$2y$", 4) == 0);
	const char *setting = real ? hash : dummy_hash;
	struct crypt_data *cd = xcalloc(1, sizeof *cd);
	const char *h = crypt_rn(password ? password : "", setting, cd, sizeof *cd);
	bool ok = real && h && h[0] == '$' && crypto_str_eq(h, hash);
	secure_wipe(cd, sizeof *cd);
	free(cd);
	return ok;
}

bool
crypto_str_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);
	size_t n = la < lb ? la : lb;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}
