/* check_request.c -- filling a request from FastCGI params, client address, ids, query, body limits. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "core/request.h"
#include "util/config.h"

static struct config *cfg;
static struct request *req;
static char *env[64];

static void
setup(void)
{
	struct buf err;
	buf_init(&err, 4096);
	cfg = config_load(NULL, NULL, &err);
	ck_assert_ptr_nonnull(cfg);
	config_set(cfg, "trusted_proxies", "10.0.0.0/8, 192.168.1.1", &err);
	config_set(cfg, "max_body_size", "1k", &err);
	buf_free(&err);
	req = calloc(1, sizeof *req);
	memset(env, 0, sizeof env);
}

static void
teardown(void)
{
	request_end(req);
	buf_free(&req->arena);
	free(req);
	config_release(cfg);
}

/* Begins a request whose body comes from `body` (CGI-style stdin). */
static enum prism_err
begin(const char *body)
{
	FILE *in = fmemopen((void *)(body ? body : ""), body ? strlen(body) : 0, "r");
	enum prism_err err = request_begin(req, NULL, env, cfg);
	req->cgi_in = in;
	return err;
}

START_TEST(basic_fields)
{
	env[0] = "REQUEST_METHOD=POST";
	env[1] = "REQUEST_URI=/api/team-a/v1/chat/completions?x=1&name=a%20b+c";
	env[2] = "SCRIPT_NAME=/ignored";
	env[3] = "PATH_INFO=/also/ignored";
	env[4] = "HTTP_AUTHORIZATION=Bearer omp-abc";
	env[5] = "HTTP_X_CUSTOM_HEADER=v1";
	env[6] = "CONTENT_TYPE=application/json";
	env[7] = "REMOTE_ADDR=203.0.113.9";
	ck_assert_int_eq(begin(NULL), PRISM_OK);
	ck_assert_str_eq(req->method, "POST");
	ck_assert_str_eq(req->path, "/api/team-a/v1/chat/completions");
	ck_assert_str_eq(req->query, "x=1&name=a%20b+c");
	ck_assert_str_eq(request_header(req, "authorization"), "Bearer omp-abc");
	ck_assert_str_eq(request_header(req, "x-custom-header"), "v1");
	ck_assert_str_eq(request_header(req, "content-type"), "application/json");
	ck_assert_ptr_null(request_header(req, "missing"));
	ck_assert_str_eq(req->client_ip, "203.0.113.9");
	char v[32];
	ck_assert(request_query(req, "name", v, sizeof v));
	ck_assert_str_eq(v, "a b c");
	ck_assert(request_query(req, "x", v, sizeof v));
	ck_assert_str_eq(v, "1");
	ck_assert(!request_query(req, "n", v, sizeof v));
	ck_assert(!request_query(req, "name", v, 3));      /* too long for the buffer */
	ck_assert_uint_eq(strlen(req->request_id), 32);
}
END_TEST

START_TEST(many_headers_bounded)
{
	static char storage[200][40];
	int k = 0;
	env[k++] = "REQUEST_URI=/health";
	for (int i = 0; i < 60; i++) {
		snprintf(storage[i], sizeof storage[i], "HTTP_X_H%d=value%d", i, i);
		env[k++] = storage[i];
	}
	ck_assert_int_eq(begin(NULL), PRISM_OK);
	ck_assert_uint_eq(req->nheaders, 60);
	ck_assert_str_eq(request_header(req, "x-h0"), "value0");
	ck_assert_str_eq(request_header(req, "x-h59"), "value59");   /* arena growth kept names valid */
}
END_TEST

START_TEST(request_id_kept_or_replaced)
{
	env[0] = "REQUEST_URI=/health";
	env[1] = "HTTP_X_REQUEST_ID=abc-123_DEF.9:1";
	begin(NULL);
	ck_assert_str_eq(req->request_id, "abc-123_DEF.9:1");
	request_end(req);
	env[1] = "HTTP_X_REQUEST_ID=evil\r\nSet-Cookie: x";
	begin(NULL);
	ck_assert_uint_eq(strlen(req->request_id), 32);
	request_end(req);
	char longid[100];
	memset(longid, 'a', sizeof longid - 1);
	longid[99] = '\0';
	char hdr[128];
	snprintf(hdr, sizeof hdr, "HTTP_X_REQUEST_ID=%s", longid);
	env[1] = hdr;
	begin(NULL);
	ck_assert_uint_eq(strlen(req->request_id), 32);
	ck_assert(!request_id_acceptable(""));
	ck_assert(!request_id_acceptable("a b"));
	ck_assert(request_id_acceptable("0af7651916cd43dd8448eb211c80319c"));
}
END_TEST

static const struct {
	const char *remote, *xff, *want;
} client_cases[] = {
	{ "203.0.113.9", "1.2.3.4", "203.0.113.9" },              /* untrusted peer: XFF ignored */
	{ "10.1.1.1", "1.2.3.4", "1.2.3.4" },                     /* trusted proxy */
	{ "10.1.1.1", "9.9.9.9, 1.2.3.4", "1.2.3.4" },            /* rightmost untrusted hop */
	{ "10.1.1.1", "1.2.3.4, 10.9.9.9", "1.2.3.4" },           /* chained trusted proxies */
	{ "10.1.1.1", "1.2.3.4, 192.168.1.1", "1.2.3.4" },
	{ "10.1.1.1", "garbage, 1.2.3.4", "1.2.3.4" },
	{ "10.1.1.1", "1.2.3.4, garbage", "10.1.1.1" },           /* a malformed hop ends the walk */
	{ "10.1.1.1", "10.2.2.2, 10.3.3.3", "10.2.2.2" },         /* all trusted: leftmost */
	{ "10.1.1.1", "", "10.1.1.1" },
	{ "10.1.1.1", "[2001:db8::1]", "2001:db8::1" },
	{ "::ffff:10.1.1.1", "2001:db8::2", "2001:db8::2" },
	{ "not-an-ip", "1.2.3.4", "not-an-ip" },
};

START_TEST(client_address)
{
	char out[64];
	request_resolve_client(client_cases[_i].remote, client_cases[_i].xff, cfg->proxy_prefixes,
			       cfg->trusted_proxies.n, out, sizeof out);
	ck_assert_str_eq(out, client_cases[_i].want);
}
END_TEST

START_TEST(body_with_length)
{
	env[0] = "REQUEST_METHOD=POST";
	env[1] = "REQUEST_URI=/x";
	env[2] = "CONTENT_LENGTH=13";
	begin("{\"a\": \"bcd\"}\nEXTRA");
	ck_assert_int_eq(request_read_body(req), PRISM_OK);
	ck_assert_uint_eq(req->body.len, 13);
	json_t *j = NULL;
	ck_assert_int_eq(request_json_body(req, &j), PRISM_OK);
	ck_assert_str_eq(json_string_value(json_object_get(j, "a")), "bcd");
	json_decref(j);
	fclose(req->cgi_in);
}
END_TEST

START_TEST(body_without_length_reads_to_eof)
{
	env[0] = "REQUEST_METHOD=POST";
	env[1] = "REQUEST_URI=/x";
	begin("{\"chunked\":true}");
	json_t *j = NULL;
	ck_assert_int_eq(request_json_body(req, &j), PRISM_OK);
	ck_assert(json_is_true(json_object_get(j, "chunked")));
	json_decref(j);
	fclose(req->cgi_in);
}
END_TEST

START_TEST(body_limits)
{
	static char big[2048];
	memset(big, 'x', sizeof big - 1);
	env[0] = "REQUEST_METHOD=POST";
	env[1] = "REQUEST_URI=/x";
	env[2] = "CONTENT_LENGTH=5000";              /* announced too large: refused before reading */
	begin(big);
	ck_assert_int_eq(request_read_body(req), PRISM_E_TOO_LARGE);
	fclose(req->cgi_in);
	request_end(req);
	env[2] = NULL;                               /* no length, too long a stream */
	begin(big);
	ck_assert_int_eq(request_read_body(req), PRISM_E_TOO_LARGE);
	fclose(req->cgi_in);
	request_end(req);
	big[1024] = '\0';                            /* no length, exactly max_body_size: it fits */
	begin(big);
	ck_assert_int_eq(request_read_body(req), PRISM_OK);
	ck_assert_uint_eq(req->body.len, 1024);
	ck_assert_int_eq(memcmp(req->body.data, big, 1024), 0);
	fclose(req->cgi_in);
	request_end(req);
	big[1024] = 'x';                             /* one byte more: too large */
	big[1025] = '\0';
	begin(big);
	ck_assert_int_eq(request_read_body(req), PRISM_E_TOO_LARGE);
	fclose(req->cgi_in);
	request_end(req);
	env[2] = "CONTENT_LENGTH=1024";              /* announced and exactly max */
	begin(big);
	ck_assert_int_eq(request_read_body(req), PRISM_OK);
	ck_assert_uint_eq(req->body.len, 1024);
	fclose(req->cgi_in);
	request_end(req);
	env[2] = "CONTENT_LENGTH=100";               /* shorter than announced */
	begin("{}");
	ck_assert_int_eq(request_read_body(req), PRISM_E_BAD_REQUEST);
	fclose(req->cgi_in);
	request_end(req);
	env[2] = "CONTENT_LENGTH=abc";
	ck_assert_int_eq(begin("{}"), PRISM_E_BAD_REQUEST);
	fclose(req->cgi_in);
}
END_TEST

static const struct {
	const char *body;
	const char *detail;
} bad_json[] = {
	{ "", "request body is empty" },
	{ "{", "invalid JSON at line 1" },
	{ "[1,2]", "must be a JSON object" },
	{ "\"str\"", "invalid JSON" },
	{ "{\"a\":\"\xff\xfe\"}", "invalid JSON" },       /* invalid UTF-8 */
	{ "{\"a\":1}garbage", "invalid JSON" },
};

START_TEST(json_body_errors)
{
	env[0] = "REQUEST_METHOD=POST";
	env[1] = "REQUEST_URI=/x";
	begin(bad_json[_i].body);
	json_t *j = (json_t *)1;
	ck_assert_int_eq(request_json_body(req, &j), PRISM_E_BAD_JSON);
	ck_assert_ptr_null(j);
	ck_assert_msg(strstr(req->errdetail, bad_json[_i].detail) != NULL, "%s", req->errdetail);
	fclose(req->cgi_in);
}
END_TEST

START_TEST(bad_request_lines)
{
	env[0] = "REQUEST_METHOD=GET";
	ck_assert_int_eq(begin(NULL), PRISM_E_BAD_REQUEST);     /* no REQUEST_URI */
	ck_assert_str_eq(req->path, "/");
	request_end(req);
	static char uri[PRISM_MAX_URI + 64];
	strcpy(uri, "REQUEST_URI=/");
	memset(uri + 13, 'a', PRISM_MAX_URI + 10);
	env[1] = uri;
	ck_assert_int_eq(begin(NULL), PRISM_E_URI_TOO_LONG);
}
END_TEST

static Suite *
request_suite(void)
{
	Suite *s = suite_create("request");
	TCase *tc = tcase_create("request");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, basic_fields);
	tcase_add_test(tc, many_headers_bounded);
	tcase_add_test(tc, request_id_kept_or_replaced);
	tcase_add_loop_test(tc, client_address, 0, sizeof client_cases / sizeof client_cases[0]);
	tcase_add_test(tc, body_with_length);
	tcase_add_test(tc, body_without_length_reads_to_eof);
	tcase_add_test(tc, body_limits);
	tcase_add_loop_test(tc, json_body_errors, 0, sizeof bad_json / sizeof bad_json[0]);
	tcase_add_test(tc, bad_request_lines);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(request_suite)
