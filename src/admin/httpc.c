/* httpc.c -- see httpc.h. */
#include "config.h"
#include "admin/httpc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "providers/provider.h"
#include "util/curlx.h"
#include "util/rand.h"

bool
httpc_url_ok(const char *url)
{
	if (!url)
		return false;
	const char *p;
	if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return false;
	for (const char *q = url; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f)
			return false;
	size_t host = strcspn(p, "/?#");
	if (host == 0)
		return false;
	/* user:password@host would put a credential in a field every reader of the configuration sees. */
	if (memchr(p, '@', host))
		return false;
	if (p[0] == ':')
		return false;
	return true;
}

bool
httpc_header_ok(const char *name, const char *value)
{
	if (!name || !*name || !value)
		return false;
	for (const char *p = name; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~", c)))
			return false;
	}
	for (const char *p = value; *p; p++)
		if (*p == '\r' || *p == '\n')
			return false;
	return true;
}

void
httpc_excerpt(const char *body, size_t len, const char *secret, char *out, size_t outlen)
{
	if (!outlen)
		return;
	out[0] = '\0';
	if (!body || !len)
		return;
	json_t *root = json_loadb(body, len, 0, NULL);
	const char *msg = json_is_object(root) ? provider_error_message(root) : NULL;
	const char *src = msg ? msg : body;
	size_t srclen = msg ? strlen(msg) : len;
	/* Sanitise the whole text first, redact, then cut: a cut must never leave part of a secret behind. */
	char *clean = malloc(srclen + 1);
	if (!clean) {
		json_decref(root);
		return;
	}
	size_t n = 0;
	for (size_t i = 0; i < srclen; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		if (c == ' ' && (n == 0 || clean[n - 1] == ' '))
			continue;
		clean[n++] = (char)c;
	}
	while (n && clean[n - 1] == ' ')
		n--;
	clean[n] = '\0';
	json_decref(root);

	size_t slen = secret ? strlen(secret) : 0;
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < outlen;) {
		if (slen && strncmp(clean + i, secret, slen) == 0) {
			for (const char *m = "***"; *m && o + 1 < outlen; m++)
				out[o++] = *m;
			i += slen;
			continue;
		}
		out[o++] = clean[i++];
	}
	out[o] = '\0';
	secure_wipe(clean, n);
	free(clean);
	if (o > HTTPC_EXCERPT && HTTPC_EXCERPT + 4 < outlen) {
		size_t cut = HTTPC_EXCERPT;
		while (cut > 0 && ((unsigned char)out[cut] & 0xC0) == 0x80)
			cut--;
		memcpy(out + cut, "...", 4);
	} else if (o + 1 >= outlen && outlen > 4) {
		size_t cut = outlen - 4;
		while (cut > 0 && ((unsigned char)out[cut] & 0xC0) == 0x80)
			cut--;
		memcpy(out + cut, "...", 4);
	}
}

static enum prism_err
classify(CURLcode rc, const char *curlerr, const struct httpc_opts *o, size_t max, char *err, size_t errlen)
{
	const char *detail = curlerr[0] ? curlerr : curl_easy_strerror(rc);
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(err, errlen, "timed out (%s)", detail);
		return PRISM_E_TIMEOUT;
	case CURLE_COULDNT_CONNECT:
		snprintf(err, errlen, "cannot connect (%s)", detail);
		return PRISM_E_UPSTREAM;
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(err, errlen, "cannot resolve the host name (%s)", detail);
		return PRISM_E_UPSTREAM;
	case CURLE_COULDNT_RESOLVE_PROXY:
		snprintf(err, errlen, "cannot resolve the proxy %s (%s)", o->proxy ? o->proxy : "", detail);
		return PRISM_E_UPSTREAM;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		snprintf(err, errlen, "response body larger than %zu bytes", max);
		return PRISM_E_UPSTREAM;
	case CURLE_TOO_MANY_REDIRECTS:
		snprintf(err, errlen, "more than %d redirects", HTTPC_MAX_REDIRECTS);
		return PRISM_E_UPSTREAM;
	case CURLE_UNSUPPORTED_PROTOCOL:
		snprintf(err, errlen, "refused: only http:// and https:// are fetched (%s)", detail);
		return PRISM_E_UPSTREAM;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		snprintf(err, errlen, "connection failed during the transfer (%s)", detail);
		return PRISM_E_UPSTREAM;
	default:
		if (curlx_is_tls_error(rc)) {
			snprintf(err, errlen, "TLS error (%s)%s", detail,
				 rc == CURLE_PEER_FAILED_VERIFICATION ? "; set config.options.caFile or tlsVerify" : "");
			return PRISM_E_UPSTREAM;
		}
		snprintf(err, errlen, "transfer failed (%s)", detail);
		return PRISM_E_UPSTREAM;
	}
}

static void
wipe_list(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		if (p->data)
			secure_wipe(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static enum prism_err
add_header(struct curl_slist **list, const char *name, const char *value, char *err, size_t errlen)
{
	if (!httpc_header_ok(name, value)) {
		snprintf(err, errlen, "invalid request header '%.64s'", name ? name : "");
		return PRISM_E_BAD_REQUEST;
	}
	size_t n = strlen(name) + strlen(value) + 3;
	if (n > HTTPC_MAX_HEADER_LEN) {
		snprintf(err, errlen, "request header '%.64s' longer than %d bytes", name, HTTPC_MAX_HEADER_LEN);
		return PRISM_E_BAD_REQUEST;
	}
	char *line = malloc(n);
	if (!line) {
		snprintf(err, errlen, "out of memory");
		return PRISM_E_NOMEM;
	}
	/* "Name;" is curl's way of sending a header with an empty value. */
	size_t nl = strlen(name), vl = strlen(value);
	memcpy(line, name, nl);
	if (vl) {
		memcpy(line + nl, ": ", 2);
		memcpy(line + nl + 2, value, vl + 1);
	} else {
		memcpy(line + nl, ";", 2);
	}
	struct curl_slist *l = curl_slist_append(*list, line);
	secure_wipe(line, n);
	free(line);
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return PRISM_E_NOMEM;
	}
	*list = l;
	return PRISM_OK;
}

enum prism_err
httpc_get(const struct httpc_opts *o, const char *url, long *status, struct buf *body, char *err, size_t errlen)
{
	static const struct httpc_opts defaults = { 0 };
	CURL *c = NULL;
	struct curl_slist *headers = NULL;
	char curlerr[CURL_ERROR_SIZE] = "";
	enum prism_err e = PRISM_OK;

	if (!o)
		o = &defaults;
	*status = 0;
	err[0] = '\0';
	size_t max = o->max_body && o->max_body < (size_t)HTTPC_MAX_BODY ? o->max_body : (size_t)HTTPC_MAX_BODY;
	body->max = max;
	buf_reset(body);
	if (!httpc_url_ok(url)) {
		snprintf(err, errlen, "not an http:// or https:// URL");
		return PRISM_E_BAD_REQUEST;
	}
	if (o->nheaders > HTTPC_MAX_HEADERS) {
		snprintf(err, errlen, "more than %d extra headers", HTTPC_MAX_HEADERS);
		return PRISM_E_BAD_REQUEST;
	}
	curlx_global_init();
	if (!(c = curl_easy_init())) {
		snprintf(err, errlen, "cannot start a transfer");
		return PRISM_E_INTERNAL;
	}
	if ((e = add_header(&headers, "Accept", "application/json", err, errlen)))
		goto out;
	for (size_t i = 0; i < o->nheaders; i++)
		if ((e = add_header(&headers, o->headers[i].name, o->headers[i].value, err, errlen)))
			goto out;
	if (o->bearer && *o->bearer) {
		size_t n = strlen(o->bearer) + 8;
		char *v = malloc(n);
		if (!v) {
			e = PRISM_E_NOMEM;
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		snprintf(v, n, "Bearer %s", o->bearer);
		e = add_header(&headers, "Authorization", v, err, errlen);
		secure_wipe(v, n);
		free(v);
		if (e) {
			snprintf(err, errlen, "the API key cannot be sent in a header (it contains a line break)");
			goto out;
		}
	}

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curlx_basics(c, curlerr);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms > 0 ? o->connect_timeout_ms : HTTPC_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : HTTPC_TIMEOUT_MS);
	/* Redirects are not followed: headers such as an API key would follow them to another host. */
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)HTTPC_MAX_REDIRECTS);
	curlx_http_only(c);
	/* "" disables the proxy, including one from the environment: a provider's route is its own setting. */
	curl_easy_setopt(c, CURLOPT_PROXY, o->proxy ? o->proxy : "");
	curlx_tls(c, !o->tls_insecure, o->ca_file);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curlx_on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);

	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	if (rc != CURLE_OK) {
		e = classify(rc, curlerr, o, max, err, errlen);
		goto out;
	}
	if (*status < 200 || *status > 299) {
		char excerpt[HTTPC_EXCERPT + 8];
		httpc_excerpt(body->data, body->len, o->bearer, excerpt, sizeof excerpt);
		snprintf(err, errlen, "HTTP %ld%s%s", *status, excerpt[0] ? ": " : "", excerpt);
		e = PRISM_E_UPSTREAM;
	}
out:
	wipe_list(headers);
	curl_easy_cleanup(c);
	return e;
}
