/* check_response.c -- status line, header hygiene, security and CORS headers, error shapes, SSE framing. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "core/response.h"
#include "util/config.h"

static struct config *cfg;
static struct request *req;
static char *env[16];
static char *out;
static size_t outlen;

static void
setup(void)
{
	struct buf err;
	buf_init(&err, 1024);
	cfg = config_load(NULL, NULL, &err);
	buf_free(&err);
	req = calloc(1, sizeof *req);
	memset(env, 0, sizeof env);
	env[0] = "REQUEST_METHOD=GET";
	env[1] = "REQUEST_URI=/x";
	out = NULL;
	outlen = 0;
}

static void
teardown(void)
{
	request_end(req);
	buf_free(&req->arena);
	free(req);
	free(out);
	config_release(cfg);
}

static void
begin(void)
{
	request_begin(req, NULL, env, cfg);
	req->cgi_out = open_memstream(&out, &outlen);
}

static void
finish(void)
{
	fclose(req->cgi_out);
	req->cgi_out = NULL;
}

static const char *
body_of(void)
{
	const char *b = strstr(out, "\r\n\r\n");
	return b ? b + 4 : "";
}

static const struct {
	const char *name, *value;
	int ok;
} header_cases[] = {
	{ "X-Test", "plain value", 1 },
	{ "Retry-After", "30", 1 },
	{ "X-Test", "bad\r\nSet-Cookie: evil=1", 0 },
	{ "X-Test", "bad\nvalue", 0 },
	{ "X-Test", "bad\rvalue", 0 },
	{ "Bad Name", "v", 0 },
	{ "Bad:Name", "v", 0 },
	{ "", "v", 0 },
	{ "X-Unicode", "caf\xc3\xa9", 1 },
};

START_TEST(header_validation)
{
	begin();
	enum prism_err r = resp_header(req, header_cases[_i].name, header_cases[_i].value);
	ck_assert_int_eq(r == PRISM_OK, header_cases[_i].ok);
	resp_body(req, "text/plain", "ok", 2);
	finish();
	ck_assert_ptr_null(strstr(out, "evil"));
	ck_assert_ptr_null(strstr(out, "Set-Cookie"));
}
END_TEST

START_TEST(status_and_standard_headers)
{
	env[2] = "HTTP_X_REQUEST_ID=req-42";
	begin();
	req->kind = RK_ADMIN;
	resp_json(req, 201, json_pack("{s:s}", "a", "b"));
	finish();
	ck_assert(strncmp(out, "Status: 201 Created\r\n", 21) == 0);
	ck_assert_ptr_nonnull(strstr(out, "\r\nX-Request-Id: req-42\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "\r\nX-Content-Type-Options: nosniff\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "\r\nX-Frame-Options: DENY\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "\r\nContent-Type: application/json; charset=utf-8\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "\r\nContent-Length: 9\r\n"));
	ck_assert_str_eq(body_of(), "{\"a\":\"b\"}");
	ck_assert_uint_eq(req->bytes_out, 9);
}
END_TEST

START_TEST(head_has_no_body)
{
	env[0] = "REQUEST_METHOD=HEAD";
	begin();
	resp_json(req, 200, json_pack("{s:s}", "a", "b"));
	finish();
	ck_assert_ptr_nonnull(strstr(out, "Content-Length: 9\r\n"));
	ck_assert_str_eq(body_of(), "");
}
END_TEST

START_TEST(error_shapes)
{
	begin();
	req->kind = RK_GATEWAY;
	resp_error(req, PRISM_E_BAD_JSON, "invalid JSON at line 1");
	finish();
	ck_assert(strncmp(out, "Status: 400 Bad Request\r\n", 25) == 0);
	json_t *j = json_loads(body_of(), 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "invalid JSON at line 1");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "type")), "invalid_request_error");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "invalid_json");
	json_decref(j);
	ck_assert_ptr_null(strstr(out, "X-Frame-Options"));   /* gateway answers are not pages */
	request_end(req);
	free(out);
	out = NULL;

	begin();
	req->kind = RK_ADMIN;
	resp_error(req, PRISM_E_TOO_LARGE, NULL);
	finish();
	ck_assert(strncmp(out, "Status: 413 Payload Too Large\r\n", 31) == 0);
	j = json_loads(body_of(), 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "Request body too large");
	ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "request_too_large");
	json_decref(j);
}
END_TEST

START_TEST(error_message_escaped)
{
	begin();
	req->kind = RK_ADMIN;
	resp_error(req, PRISM_E_BAD_REQUEST, "quote \" and newline \n and <script>");
	finish();
	json_t *j = json_loads(body_of(), 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "quote \" and newline \n and <script>");
	json_decref(j);
}
END_TEST

static const struct {
	const char *allowed;
	const char *origin;
	const char *want_acao;      /* NULL: no CORS headers */
	int credentials;
} cors_cases[] = {
	{ "", "https://a.example", NULL, 0 },
	{ "https://a.example", "https://a.example", "https://a.example", 1 },
	{ "https://a.example", "https://evil.example", NULL, 0 },
	{ "https://a.example", "https://a.example.evil.com", NULL, 0 },
	{ "https://a.example,https://b.example", "https://b.example", "https://b.example", 1 },
	{ "*", "https://anything.example", "*", 0 },
	{ "*", NULL, NULL, 0 },
};

START_TEST(cors)
{
	struct buf err;
	buf_init(&err, 1024);
	config_set(cfg, "cors_origins", cors_cases[_i].allowed, &err);
	buf_free(&err);
	static char origin[128];
	if (cors_cases[_i].origin) {
		snprintf(origin, sizeof origin, "HTTP_ORIGIN=%s", cors_cases[_i].origin);
		env[2] = origin;
	}
	begin();
	resp_json(req, 200, json_object());
	finish();
	char want[256];
	if (cors_cases[_i].want_acao) {
		snprintf(want, sizeof want, "\r\nAccess-Control-Allow-Origin: %s\r\n", cors_cases[_i].want_acao);
		ck_assert_ptr_nonnull(strstr(out, want));
	} else {
		ck_assert_ptr_null(strstr(out, "Access-Control-Allow-Origin"));
	}
	ck_assert_int_eq(strstr(out, "Access-Control-Allow-Credentials: true") != NULL, cors_cases[_i].credentials);
}
END_TEST

START_TEST(sse_framing)
{
	begin();
	req->kind = RK_GATEWAY;
	ck_assert(sse_begin(req));
	ck_assert(sse_data(req, "{\"x\":1}", 7));
	ck_assert(sse_raw(req, "data: [DONE]\n\n", 14));
	finish();
	ck_assert_ptr_nonnull(strstr(out, "Content-Type: text/event-stream; charset=utf-8\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "X-Accel-Buffering: no\r\n"));
	ck_assert_ptr_null(strstr(out, "Content-Length"));
	ck_assert_str_eq(body_of(), "data: {\"x\":1}\n\ndata: [DONE]\n\n");
	/* once streaming, an error cannot change the status any more */
	ck_assert(!resp_error(req, PRISM_E_UPSTREAM, "late"));
}
END_TEST

static Suite *
response_suite(void)
{
	Suite *s = suite_create("response");
	TCase *tc = tcase_create("response");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, header_validation, 0, sizeof header_cases / sizeof header_cases[0]);
	tcase_add_test(tc, status_and_standard_headers);
	tcase_add_test(tc, head_has_no_body);
	tcase_add_test(tc, error_shapes);
	tcase_add_test(tc, error_message_escaped);
	tcase_add_loop_test(tc, cors, 0, sizeof cors_cases / sizeof cors_cases[0]);
	tcase_add_test(tc, sse_framing);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(response_suite)
