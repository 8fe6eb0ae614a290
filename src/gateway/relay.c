/* relay.c -- see relay.h. */
#include "config.h"
#include "gateway/relay.h"

#include <stdlib.h>
#include <string.h>

#include "core/response.h"
#include "gateway/gw.h"
#include "util/clock.h"
#include "util/jtext.h"
#include "util/xalloc.h"

/* --- the thinking filter ---------------------------------------------------------------------------------- */

static const char *const open_tags[] = { "<think>", "<thinking>", NULL };
static const char *const close_tags[] = { "</think>", "</thinking>", NULL };

enum tag_match { TAG_NONE = 0, TAG_FULL, TAG_PARTIAL };

/* Does s (n bytes, s[0] == '<') start with one of tags (*len its length), or is it the beginning of one? */
static enum tag_match
tag_at(const char *s, size_t n, const char *const *tags, size_t *len)
{
	enum tag_match m = TAG_NONE;
	for (size_t i = 0; tags[i]; i++) {
		size_t tl = strlen(tags[i]);
		if (n >= tl && memcmp(s, tags[i], tl) == 0) {
			*len = tl;
			return TAG_FULL;
		}
		if (n < tl && memcmp(s, tags[i], n) == 0)
			m = TAG_PARTIAL;
	}
	return m;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static enum prism_err
emit(struct think_filter *f, const char *s, size_t n, struct buf *out)
{
	if (f->skip_ws) {
		while (n && is_space(*s)) {
			s++;
			n--;
		}
		if (!n)
			return PRISM_OK;
		f->skip_ws = false;
	}
	for (size_t i = 0; i < n && !f->visible; i++)
		f->visible = !is_space(s[i]);
	return buf_append(out, s, n);
}

void
think_filter_init(struct think_filter *f)
{
	memset(f, 0, sizeof *f);
}

enum prism_err
think_filter_feed(struct think_filter *f, const char *s, size_t n, struct buf *out)
{
	char *joined = NULL;
	const char *p = s;
	size_t len = n;
	if (f->nhold) {
		joined = xmalloc(f->nhold + n + 1);
		memcpy(joined, f->hold, f->nhold);
		memcpy(joined + f->nhold, s, n);
		p = joined;
		len = f->nhold + n;
		f->nhold = 0;
	}
	enum prism_err e = PRISM_OK;
	size_t i = 0, start = 0;
	while (i < len && !e) {
		if (p[i] != '<') {
			i++;
			continue;
		}
		size_t tl = 0;
		enum tag_match m = tag_at(p + i, len - i, f->in_block ? close_tags : open_tags, &tl);
		if (m == TAG_NONE) {
			i++;
			continue;
		}
		if (!f->in_block)
			e = emit(f, p + start, i - start, out);
		if (m == TAG_PARTIAL) {
			/* The rest is shorter than the longest tag: hold it for the next chunk to decide. */
			f->nhold = len - i;
			memcpy(f->hold, p + i, f->nhold);
			free(joined);
			return e;
		}
		i += tl;
		start = i;
		if (f->in_block) {
			f->in_block = false;
			f->skip_ws = !f->visible;
		} else {
			f->in_block = true;
		}
	}
	if (!e && !f->in_block)
		e = emit(f, p + start, len - start, out);
	free(joined);
	return e;
}

enum prism_err
think_filter_finish(struct think_filter *f, struct buf *out)
{
	enum prism_err e = PRISM_OK;
	if (f->nhold && !f->in_block)
		e = emit(f, f->hold, f->nhold, out);
	f->nhold = 0;
	return e;
}

char *
think_strip_text(const char *s)
{
	struct think_filter f;
	struct buf out;
	think_filter_init(&f);
	buf_init(&out, (size_t)-1);
	think_filter_feed(&f, s, strlen(s), &out);
	think_filter_finish(&f, &out);
	return buf_take(&out, NULL);
}

void
relay_utf8_fix(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		size_t need = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : 4;
		if (need == 4 || (*p & 0xfe) == 0xc0 || *p > 0xf4) {
			*p++ = '?';
			continue;
		}
		size_t k = 1;
		while (k <= need && (p[k] & 0xc0) == 0x80)
			k++;
		if (k <= need) {
			if (!p[k]) {         /* cut at the end of the buffer */
				*p = '\0';
				return;
			}
			*p++ = '?';
			continue;
		}
		/* overlong forms, surrogates and code points beyond U+10FFFF (jansson refuses them too) */
		if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) || (p[0] == 0xf0 && p[1] < 0x90) ||
		    (p[0] == 0xf4 && p[1] >= 0x90)) {
			*p++ = '?';
			continue;
		}
		p += k;
	}
}

static bool
is_thinking_block(const json_t *b)
{
	const char *t = json_string_value(json_object_get(b, "type"));
	return t && (strcmp(t, "thinking") == 0 || strcmp(t, "reasoning") == 0 || strcmp(t, "redacted_thinking") == 0);
}

void
relay_strip_completion(json_t *body)
{
	size_t i;
	json_t *ch;
	json_array_foreach(json_object_get(body, "choices"), i, ch) {
		json_t *msg = json_object_get(ch, "message");
		if (!json_is_object(msg))
			continue;
		json_object_del(msg, "reasoning_content");
		json_object_del(msg, "reasoning");
		json_t *content = json_object_get(msg, "content");
		if (json_is_string(content) && strchr(json_string_value(content), '<')) {
			char *clean = think_strip_text(json_string_value(content));
			json_object_set_new(msg, "content", json_string(clean));
			free(clean);
		} else if (json_is_array(content)) {
			for (size_t k = json_array_size(content); k-- > 0;)
				if (is_thinking_block(json_array_get(content, k)))
					json_array_remove(content, k);
		}
	}
}

/* --- the relay ------------------------------------------------------------------------------------------- */

void
relay_init(struct relay *r, struct request *req, enum relay_kind kind, bool strip_thinking, bool include_usage)
{
	memset(r, 0, sizeof *r);
	r->req = req;
	r->kind = kind;
	r->strip_thinking = strip_thinking;
	r->include_usage = include_usage;
	buf_init(&r->text, RELAY_MAX_TEXT);
	relay_attempt(r);
}

void
relay_free(struct relay *r)
{
	buf_free(&r->text);
	json_decref(r->trailer);
	r->trailer = NULL;
}

void
relay_attempt(struct relay *r)
{
	for (size_t i = 0; i < RELAY_MAX_CHOICES; i++)
		think_filter_init(&r->tf[i]);
	r->usage_seen = false;
	r->prompt_tokens = r->completion_tokens = 0;
	r->finished = false;
	r->finish_reason[0] = '\0';
	buf_reset(&r->text);
	r->text_overflow = 0;
	if (!r->started) {
		/* The synthetic chunks name the attempt that answers, not one that failed unseen. */
		r->id[0] = r->object[0] = r->model[0] = '\0';
		r->created = 0;
	}
}

static void
keep_text(struct relay *r, const char *s)
{
	if (!s || !*s)
		return;
	size_t n = strlen(s);
	if (buf_append(&r->text, s, n))
		r->text_overflow += (long)n;
}

long
relay_estimate_output(const struct relay *r)
{
	long est = tokens_estimate_text(buf_cstr(&r->text), r->text.len);
	/* Beyond the kept text, the plain 3.5 characters per token of the estimator. */
	return est + (r->text_overflow * 2 + 6) / 7;
}

static long
usage_int(const json_t *u, const char *k)
{
	const json_t *v = json_object_get(u, k);
	if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < (json_int_t)1 << 40)
		return (long)json_integer_value(v);
	if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 1e12)
		return (long)json_real_value(v);
	return 0;
}

static void
take_identity(struct relay *r, const json_t *chunk)
{
	const char *s;
	if (!r->id[0] && (s = json_string_value(json_object_get(chunk, "id"))))
		snprintf(r->id, sizeof r->id, "%s", s);
	if (!r->object[0] && (s = json_string_value(json_object_get(chunk, "object"))))
		snprintf(r->object, sizeof r->object, "%s", s);
	if (!r->model[0] && (s = json_string_value(json_object_get(chunk, "model"))))
		snprintf(r->model, sizeof r->model, "%s", s);
	relay_utf8_fix(r->id);
	relay_utf8_fix(r->object);
	relay_utf8_fix(r->model);
	if (!r->created && json_is_integer(json_object_get(chunk, "created")))
		r->created = json_integer_value(json_object_get(chunk, "created"));
}

/* Replaces delta.content by what the filter lets through (and, at the choice's end, what it held back). */
static void
filter_content(struct think_filter *f, json_t *delta, bool at_end)
{
	const char *s = json_string_value(json_object_get(delta, "content"));
	if (!s && !at_end)
		return;
	if (!s && !f->nhold)
		return;
	struct buf out;
	buf_init(&out, (size_t)-1);
	if (s)
		think_filter_feed(f, s, strlen(s), &out);
	if (at_end)
		think_filter_finish(f, &out);
	json_object_set_new(delta, "content", json_stringn(buf_cstr(&out), out.len));
	buf_free(&out);
}

/* A choice with nothing to tell the client: no delta field but an empty content, no finish_reason. */
static bool
choice_empty(const json_t *ch, enum relay_kind kind)
{
	const json_t *fr = json_object_get(ch, "finish_reason");
	if (fr && !json_is_null(fr))
		return false;
	const json_t *lp = json_object_get(ch, "logprobs");
	if (lp && !json_is_null(lp))
		return false;
	if (kind == RELAY_COMPLETIONS) {
		const char *t = json_string_value(json_object_get(ch, "text"));
		return !t || !*t;
	}
	const json_t *delta = json_object_get(ch, "delta");
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)delta, k, v) {
		if (strcmp(k, "content") == 0 && (json_is_null(v) || (json_is_string(v) && !*json_string_value(v))))
			continue;
		return false;
	}
	return true;
}

static bool
relay_begin(struct relay *r)
{
	if (r->client_gone)
		return false;
	if (!r->started) {
		if (!sse_begin(r->req)) {
			r->client_gone = true;
			return false;
		}
		r->started = true;
	}
	return true;
}

static bool
relay_write(struct relay *r, const json_t *obj)
{
	if (!relay_begin(r))
		return false;
	size_t len = 0;
	char *s = obj ? jtext_dump(obj, 17, &len) : NULL;
	if (!s)
		return true;         /* nothing to write (a chunk that could not be built) */
	bool ok = sse_data(r->req, s, len);
	free(s);
	if (!ok)
		r->client_gone = true;
	else
		r->events_out++;
	return ok;
}

bool
relay_on_event(void *arg, json_t *chunk)
{
	struct relay *r = arg;
	if (r->client_gone)
		return false;
	r->events_in++;
	if (!json_is_object(chunk))
		return true;
	take_identity(r, chunk);
	json_t *usage = json_object_get(chunk, "usage");
	if (json_is_object(usage)) {
		r->usage_seen = true;
		r->prompt_tokens = usage_int(usage, "prompt_tokens");
		r->completion_tokens = usage_int(usage, "completion_tokens");
	}
	if (usage)
		json_object_del(chunk, "usage");

	json_t *choices = json_object_get(chunk, "choices");
	size_t i, nonempty = 0;
	json_t *ch;
	json_array_foreach(choices, i, ch) {
		json_t *idx = json_object_get(ch, "index");
		size_t k = json_is_integer(idx) && json_integer_value(idx) >= 0 ? (size_t)json_integer_value(idx) : i;
		const char *fr = json_string_value(json_object_get(ch, "finish_reason"));
		if (fr) {
			r->finished = true;
			snprintf(r->finish_reason, sizeof r->finish_reason, "%s", fr);
		}
		if (r->kind == RELAY_COMPLETIONS) {
			keep_text(r, json_string_value(json_object_get(ch, "text")));
		} else {
			json_t *delta = json_object_get(ch, "delta");
			if (json_is_object(delta)) {
				keep_text(r, json_string_value(json_object_get(delta, "content")));
				keep_text(r, json_string_value(json_object_get(delta, "reasoning_content")));
				keep_text(r, json_string_value(json_object_get(delta, "reasoning")));
				size_t t;
				json_t *tc;
				json_array_foreach(json_object_get(delta, "tool_calls"), t, tc)
					keep_text(r, json_string_value(json_object_get(json_object_get(tc, "function"),
											"arguments")));
				if (r->strip_thinking) {
					json_object_del(delta, "reasoning_content");
					json_object_del(delta, "reasoning");
					if (k < RELAY_MAX_CHOICES)
						filter_content(&r->tf[k], delta, fr != NULL);
				}
			}
		}
		if (!choice_empty(ch, r->kind))
			nonempty++;
	}
	/* Usage-only chunks (the usage goes out once, at the end) and chunks the filter emptied. */
	if (nonempty == 0 && !json_object_get(chunk, "error"))
		return true;
	return relay_write(r, chunk);
}

static json_t *
synthetic_chunk(struct relay *r, const char *model)
{
	char id[160];
	if (r->id[0])
		snprintf(id, sizeof id, "%s", r->id);
	else
		snprintf(id, sizeof id, "%s-%s", r->kind == RELAY_CHAT ? "chatcmpl" : "cmpl", r->req->request_id);
	const char *object = r->object[0] ? r->object
					  : r->kind == RELAY_CHAT ? "chat.completion.chunk" : "text_completion";
	json_int_t created = r->created ? r->created : (json_int_t)(clock_realtime_ms() / 1000);
	return json_pack("{s:s, s:s, s:I, s:s, s:[]}", "id", id, "object", object, "created", created, "model",
			 r->model[0] ? r->model : model ? model : "", "choices");
}

bool
relay_finish(struct relay *r, const char *model, long prompt_tokens, long completion_tokens)
{
	if (r->client_gone)
		return false;
	/* Text a choice held back as the possible start of a tag, when no finish_reason released it. */
	if (r->kind == RELAY_CHAT && r->strip_thinking) {
		for (size_t k = 0; k < RELAY_MAX_CHOICES; k++) {
			if (!r->tf[k].nhold || r->tf[k].in_block)
				continue;
			struct buf out;
			buf_init(&out, (size_t)-1);
			think_filter_finish(&r->tf[k], &out);
			json_t *c = synthetic_chunk(r, model);
			json_array_append_new(json_object_get(c, "choices"),
					      json_pack("{s:I, s:{s:s%}, s:n}", "index", (json_int_t)k, "delta", "content",
							buf_cstr(&out), out.len, "finish_reason"));
			buf_free(&out);
			bool ok = relay_write(r, c);
			json_decref(c);
			if (!ok)
				return false;
		}
	}
	if (r->include_usage) {
		json_t *c = synthetic_chunk(r, model);
		json_object_set_new(c, "usage", json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)prompt_tokens,
							  "completion_tokens", (json_int_t)completion_tokens,
							  "total_tokens", (json_int_t)(prompt_tokens + completion_tokens)));
		bool ok = relay_write(r, c);
		json_decref(c);
		if (!ok)
			return false;
	}
	if (r->trailer) {
		json_t *c = synthetic_chunk(r, model);
		json_object_update(c, r->trailer);
		bool ok = relay_write(r, c);
		json_decref(c);
		if (!ok)
			return false;
	}
	if (!relay_begin(r))
		return false;
	return sse_data(r->req, "[DONE]", 6) || (r->client_gone = true, false);
}

bool
relay_error(struct relay *r, const char *type, const char *code, const char *message)
{
	if (r->client_gone)
		return false;
	json_t *e = json_pack("{s:{s:s, s:s, s:s}}", "error", "message", message ? message : "upstream error", "type",
			      type ? type : "provider_error", "code", code ? code : "upstream_error");
	bool ok = relay_write(r, e);
	json_decref(e);
	if (!ok)
		return false;
	return sse_data(r->req, "[DONE]", 6) || (r->client_gone = true, false);
}
