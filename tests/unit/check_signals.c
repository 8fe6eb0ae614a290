/* check_signals.c -- the router's request signals (routing/signals.h): domains on word boundaries, code
 * languages, FIM tokens and rules, tool agents, tool-output continuations, turns, images, tools, the
 * summary, truncation at code points, the opt-out token, frustration, and hostile input (unicode, invalid
 * UTF-8, wrong types, 10 MB messages, 10,000 messages, inputs built to make a backtracking scan quadratic). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "gateway/gw.h"
#include "routing/signals.h"

#define SEC (1u << ROUTE_DOM_SECURITY)
#define LEG (1u << ROUTE_DOM_LEGAL)
#define MED (1u << ROUTE_DOM_MEDICAL)
#define FIN (1u << ROUTE_DOM_FINANCE)
#define PY (1u << ROUTE_LANG_PYTHON)
#define JS (1u << ROUTE_LANG_JAVASCRIPT)
#define TS (1u << ROUTE_LANG_TYPESCRIPT)
#define SQL (1u << ROUTE_LANG_SQL)
#define GO (1u << ROUTE_LANG_GO)
#define RS (1u << ROUTE_LANG_RUST)
#define SOL (1u << ROUTE_LANG_SOLIDITY)
#define SH (1u << ROUTE_LANG_BASH)
#define DOCK (1u << ROUTE_LANG_DOCKER)
#define YML (1u << ROUTE_LANG_YAML)
#define TF (1u << ROUTE_LANG_TERRAFORM)

/* JSON written with ' for " (a real apostrophe is \u0027). */
static json_t *
J(const char *text)
{
	char *t = strdup(text);
	for (char *p = t; *p; p++)
		if (*p == '\'')
			*p = '"';
	json_error_t e;
	json_t *j = json_loads(t, JSON_ALLOW_NUL, &e);
	ck_assert_msg(j != NULL, "bad test JSON: %s: %s", e.text, t);
	free(t);
	return j;
}

static bool
valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t l = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 0;
		if (l == 0 || (l == 2 && *p < 0xC2))
			return false;
		for (size_t i = 1; i < l; i++)
			if ((p[i] & 0xC0) != 0x80)
				return false;
		p += l;
	}
	return true;
}

static size_t
codepoints(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* --- domains ------------------------------------------------------------------------------------------- */

static const struct {
	const char *text;
	unsigned want;
} dom_cases[] = {
	/* the original's false positives (§5.2, §17.13) */
	{ "We follow the standard process", 0 },
	{ "See you on Monday, check the calendar", 0 },
	{ "Read the source and the resource files", 0 },
	{ "An Android app", 0 },
	{ "the agenda for today", 0 },
	{ "a heroic effort", 0 },
	{ "run npm audit and fix the audit log", 0 },
	/* legal */
	{ "Please review the NDA", LEG },
	{ "Is this covered by the NDA.", LEG },
	{ "We signed two NDAs", LEG },
	{ "GDPR compliance for our app", LEG },
	{ "According to Article 6 of the regulation", LEG },
	{ "an indemnification clause", LEG },
	{ "limit our liabilities", LEG },
	/* medical */
	{ "How many patients were enrolled?", MED },
	{ "the patient's chart", MED },
	{ "Die Patientin klagt", 0 },
	{ "ICD-10 code for migraine", MED },
	{ "what dosage is safe", MED },
	/* finance */
	{ "ROI of the project", FIN },
	{ "our P&L statement", FIN },
	{ "an amortization schedule", FIN },
	{ "straight-line depreciation", FIN },
	{ "EBITDA margin", FIN },
	/* security: two distinct keywords */
	{ "my password", 0 },
	{ "count the tokens", 0 },
	{ "my password and the token", SEC },
	{ "CVE-2024-1234 exploit", SEC },
	{ "they exploited CVE-2021-44228", SEC },
	{ "RCE via a buffer overflow", SEC },
	{ "Use OAuth2 with a JWT", SEC },
	{ "-----BEGIN RSA PRIVATE KEY-----", SEC },
	{ "encryption of passwords", SEC },
	{ "rotate tokens and credentials", SEC },
	{ "set max_tokens and the password", 0 },          /* max_tokens is one word */
	{ "password password password", 0 },                /* one keyword counts once */
	{ "private\n  key and an api key", SEC },           /* a space matches any whitespace run */
	/* case, unicode */
	{ "PASSWORD and TOKEN", SEC },
	{ "\xC3\x9C" "ber password und Token", SEC },
	{ "\xF0\x9F\x94\xA5password token", 0 },            /* an emoji is part of the word */
	{ "\xF0\x9F\x94\xA5 password token", SEC },
	{ "\xE6\x82\xA3\xE8\x80\x85\xE3\x81\xAE\xE8\xA8\xBA\xE6\x96\xAD", 0 },   /* CJK */
	{ "GDPR, patients, ROI and password token", SEC | LEG | MED | FIN },
	{ "", 0 },
};

START_TEST(domains_table)
{
	for (size_t i = 0; i < sizeof dom_cases / sizeof dom_cases[0]; i++) {
		unsigned got = signals_domains(dom_cases[i].text, strlen(dom_cases[i].text));
		ck_assert_msg(got == dom_cases[i].want, "'%s': domains %#x, want %#x", dom_cases[i].text, got,
			      dom_cases[i].want);
	}
	ck_assert_uint_eq(signals_domains(NULL, 5), 0);
}
END_TEST

/* --- languages ----------------------------------------------------------------------------------------- */

static const struct {
	const char *text;
	unsigned want;
} lang_cases[] = {
	{ "Hello", 0 },
	{ "def foo(x):\n    return x", PY },
	{ "import os", PY },
	{ "from os import path", PY },
	{ "run main.py now", PY },
	{ "define foo(x)", 0 },
	{ "main.pyc", 0 },
	{ "function add(a, b) { return a + b }", JS },
	{ "const x = 1", JS },
	{ "xs.map(x => { return x })", JS },
	{ "require('fs')", JS },
	{ "interface Foo {", TS },
	{ "type Foo = string", TS },
	{ "items: string[]", TS },
	{ "edit app.ts", TS },
	{ "SELECT id FROM users", SQL },
	{ "select * from t", SQL },
	{ "SELECT id\nFROM users", DOCK },                   /* .* stays on its line; FROM starts one */
	{ "SELECT id\n  FROM users", 0 },
	{ "a selection from the list", 0 },
	{ "CREATE TABLE t (id int)", SQL },
	{ "insert into t values (1)", SQL },
	{ "ALTER TABLE t ADD c int", SQL },
	{ "func main() {", GO },
	{ "package main", GO },
	{ "x := 1", GO },
	{ "open main.go", GO },
	{ "fn main() {", RS },
	{ "let mut x = 0;", RS },
	{ "impl Display for Foo", RS },
	{ "src/lib.rs", RS },
	{ "pragma solidity ^0.8.0;", SOL },
	{ "contract Token {", SOL },
	{ "mapping(address => uint) balances;", SOL },
	{ "Token.sol", SOL },
	{ "#!/bin/bash\necho hi", SH },
	{ "echo $HOME", SH },
	{ "echo ${PATH}", SH },
	{ "ls | grep foo", SH },
	{ "It costs $5 or $100", 0 },                         /* the fixed false positive */
	{ "$ 10", 0 },
	{ "FROM ubuntu:22.04\nRUN apt-get update", DOCK },
	{ "EXPOSE 8080", DOCK },
	{ "WORKDIR /app", DOCK },
	{ "copy it FROM ubuntu", 0 },
	{ "---\nname: x", YML },
	{ "services:\n  web:\n    image: nginx", YML },
	{ "items:\r\n  - one", YML },
	{ "list\n  - item", YML },
	{ "resource \"aws_instance\" \"web\" {", TF },
	{ "provider \"aws\" {", TF },
	{ "main.tf", TF },
	{ "import os\nx := 1\nfn main() {", PY | GO | RS },
};

START_TEST(langs_table)
{
	for (size_t i = 0; i < sizeof lang_cases / sizeof lang_cases[0]; i++) {
		unsigned got = signals_langs(lang_cases[i].text, strlen(lang_cases[i].text));
		ck_assert_msg(got == lang_cases[i].want, "'%s': langs %#x, want %#x", lang_cases[i].text, got,
			      lang_cases[i].want);
	}
}
END_TEST

/* --- signals_extract ------------------------------------------------------------------------------------- */

#define X (-1)   /* not checked */

static const struct {
	const char *name;
	const char *req;
	int fim, agent, cont, turns, images, tools;
	long domains, langs;
} ex_cases[] = {
	/* the original's worked example (§5.17) */
	{ "hello", "{'messages':[{'role':'user','content':'Hello'}]}", 0, 0, 0, 1, 0, 0, 0, 0 },
	{ "empty body", "{}", 0, 0, 0, 0, 0, 0, 0, 0 },
	{ "messages not an array", "{'messages':'hi'}", 0, 0, 0, 0, 0, 0, 0, 0 },
	{ "message not an object", "{'messages':[42,null,'x']}", 0, 0, 0, 0, 0, 0, 0, 0 },
	{ "null content", "{'messages':[{'role':'user','content':null}]}", 0, 0, 0, 1, 0, 0, 0, 0 },
	{ "number content", "{'messages':[{'role':'user','content':42}]}", 0, 0, 0, 1, 0, 0, 0, 0 },
	{ "object content is no text", "{'messages':[{'role':'user','content':{'text':'password token'}}]}",
	  0, 0, 0, 1, 0, 0, 0, 0 },
	{ "text block text not a string",
	  "{'messages':[{'role':'user','content':[{'type':'text','text':5},{'type':'text'}]}]}", 0, 0, 0, 1, 0, 0, 0, 0 },
	{ "images only", "{'messages':[{'role':'user','content':[{'type':'image_url','image_url':{'url':'data:x'}}]}]}",
	  0, 0, 0, 1, 1, 0, 0, 0 },
	{ "input_image", "{'messages':[{'role':'user','content':[{'type':'input_image','image_url':'x'}]}]}",
	  0, 0, 0, 1, 1, 0, 0, 0 },
	{ "image block", "{'messages':[{'role':'system','content':'s'},{'role':'user','content':[{'type':'image'}]}]}",
	  0, 0, 0, 1, 1, 0, 0, 0 },
	{ "image in a string is no image", "{'messages':[{'role':'user','content':'image_url'}]}", 0, 0, 0, 1, 0, 0, 0, 0 },
	{ "tools", "{'tools':[{'type':'function'}],'messages':[{'role':'user','content':'x'}]}", 0, 0, 0, 1, 0, 1, 0, 0 },
	{ "empty tools", "{'tools':[],'messages':[{'role':'user','content':'x'}]}", 0, 0, 0, 1, 0, 0, 0, 0 },
	{ "tool_choice auto", "{'tool_choice':'auto','messages':[]}", 0, 0, 0, 0, 0, 1, 0, 0 },
	{ "tool_choice object", "{'tool_choice':{'type':'function'},'messages':[]}", 0, 0, 0, 0, 0, 1, 0, 0 },
	{ "tool_choice none", "{'tool_choice':'none','messages':[]}", 0, 0, 0, 0, 0, 0, 0, 0 },
	{ "tool_choice null", "{'tool_choice':null,'messages':[]}", 0, 0, 0, 0, 0, 0, 0, 0 },
	{ "tool_choice false", "{'tool_choice':false,'messages':[]}", 0, 0, 0, 0, 0, 0, 0, 0 },
	/* FIM */
	{ "fim tokens", "{'messages':[{'role':'user','content':'<fim_prefix>def f():<fim_suffix>\\n<fim_middle>'}]}",
	  1, 0, 0, 1, 0, 0, X, X },
	{ "fim token in an assistant message",
	  "{'messages':[{'role':'user','content':'x'},{'role':'assistant','content':'a <CURSOR> b'}]}", 1, 0, 0, 1, 0, 0, X, X },
	{ "fim token in a text block",
	  "{'messages':[{'role':'user','content':[{'type':'image'},{'type':'text','text':'a [SUFFIX] b'}]}]}", 1, 0, 0, 1, 1, 0, X, X },
	{ "// END is no FIM", "{'messages':[{'role':'user','content':'print(1)\\n// END'}]}", 0, 0, 0, 1, 0, 0, X, X },
	{ "lozenge in prose is no FIM", "{'messages':[{'role':'user','content':'Der Rhombus \xE2\x97\x8A ist h\xC3\xBC" "bsch'}]}",
	  0, 0, 0, 1, 0, 0, 0, 0 },
	{ "lozenge in code is FIM", "{'messages':[{'role':'user','content':'def add(a, b):\\n    return \xE2\x97\x8A'}]}",
	  1, 0, 0, 1, 0, 0, X, PY },
	{ "short system autocomplete", "{'messages':[{'role':'system','content':'Provide autocomplete suggestions.'},"
	  "{'role':'user','content':'x'}]}", 1, 0, 0, 1, 0, 0, X, X },
	{ "system hole filler", "{'messages':[{'role':'system','content':'You are a HOLE FILLER.'},{'role':'user','content':'x'}]}",
	  1, 0, 0, 1, 0, 0, X, X },
	{ "system fill in the middle", "{'messages':[{'role':'system','content':'Fill in the middle of the code'},"
	  "{'role':'user','content':'x'}]}", 1, 0, 0, 1, 0, 0, X, X },
	{ "system code completion", "{'messages':[{'role':'system','content':'You do code   completion.'},"
	  "{'role':'user','content':'x'}]}", 1, 0, 0, 1, 0, 0, X, X },
	{ "system {{HOLE}} is case-sensitive", "{'messages':[{'role':'system','content':'replace {{hole}}'},"
	  "{'role':'user','content':'x'}]}", 0, 0, 0, 1, 0, 0, X, X },
	{ "first user fill in the blank", "{'messages':[{'role':'user','content':'Fill in the blank: a ___ b'},"
	  "{'role':'assistant','content':'ok'},{'role':'user','content':'next'}]}", 1, 0, 0, 2, 0, 0, X, X },
	{ "fim phrase only in a later user message", "{'messages':[{'role':'user','content':'hi'},"
	  "{'role':'assistant','content':'ok'},{'role':'user','content':'what is fim'}]}", 0, 0, 0, 2, 0, 0, X, X },
	{ "user asks about autocomplete", "{'messages':[{'role':'user','content':'How do I build autocomplete in React?'}]}",
	  0, 0, 0, 1, 0, 0, X, X },
	{ "user autocomplete engine phrase", "{'messages':[{'role':'user','content':'You are an autocomplete engine. Complete:'}]}",
	  1, 0, 0, 1, 0, 0, X, X },
	/* "```python" is also a continuation: the original's ^```[\w./\\] */
	{ "fenced only", "{'messages':[{'role':'user','content':'```python\\ndef f():\\n    pass\\n```'}]}", 1, 0, 1, 1, 0, 0, X, X },
	{ "fenced with a short request", "{'messages':[{'role':'user','content':'  ```js\\nconst x = 1\\n```\\nplease complete'}]}",
	  1, 0, 1, 1, 0, 0, X, X },
	{ "fenced with a real question", "{'messages':[{'role':'user','content':'```js\\nconst x = 1\\n```\\n"
	  "please explain what this code does in detail'}]}", 0, 0, 1, 1, 0, 0, X, JS },
	{ "fence without a line break", "{'messages':[{'role':'user','content':'```python def f(): pass```'}]}",
	  0, 0, 1, 1, 0, 0, X, X },
	{ "fenced, two user messages", "{'messages':[{'role':'user','content':'a'},"
	  "{'role':'user','content':'```python\\ndef f():\\n    pass\\n```'}]}", 0, 0, X, 2, 0, 0, X, X },
	/* tool agents */
	{ "claude code style", "{'messages':[{'role':'system','content':'You are Claude Code. You have access to a set of tools "
	  "you can use to answer the question.'},{'role':'user','content':'fix the bug'}]}", 0, 1, 0, 1, 0, 0, X, X },
	{ "claude code explore agent", "{'messages':[{'role':'system','content':'You are a file search specialist for Claude Code. "
	  "You excel at thoroughly navigating and exploring codebases.'},{'role':'user','content':'find x'}]}", 0, 1, 0, 1, 0, 0, X, X },
	{ "cline style", "{'messages':[{'role':'system','content':'You are Cline, a highly skilled software engineer.\\n"
	  "TOOL USE\\nYou have access to a set of tools that are executed upon approval.'},{'role':'user','content':'x'}]}",
	  0, 1, 0, 1, 0, 0, X, X },
	{ "opencode style", "{'messages':[{'role':'system','content':'You are opencode, an expert software engineer.'},"
	  "{'role':'user','content':'x'}]}", 0, 1, 0, 1, 0, 0, X, X },
	{ "you excel at grep ... codebase", "{'messages':[{'role':'system','content':'You excel at using grep to navigate any codebase'},"
	  "{'role':'user','content':'x'}]}", 0, 1, 0, 1, 0, 0, X, X },
	{ "codebase on another line", "{'messages':[{'role':'system','content':'You excel at grep.\\nThe codebase is large'},"
	  "{'role':'user','content':'x'}]}", 0, 0, 0, 1, 0, 0, X, X },
	{ "continue tool instructions", "{'messages':[{'role':'system','content':'<TOOL_USE_INSTRUCTIONS>use them'},"
	  "{'role':'user','content':'x'}]}", 0, 1, 0, 1, 0, 0, X, X },
	{ "TOOL_NAME", "{'messages':[{'role':'user','content':'TOOL_NAME: read_file'}]}", 0, 1, 0, 1, 0, 0, X, X },
	{ "in agent mode", "{'messages':[{'role':'system','content':'You are in agent mode.'},{'role':'user','content':'x'}]}",
	  0, 1, 0, 1, 0, 0, X, X },
	{ "helpful assistant", "{'messages':[{'role':'system','content':'You are a helpful assistant. You are at home.'},"
	  "{'role':'user','content':'x'}]}", 0, 0, 0, 1, 0, 0, X, X },
	{ "role tool", "{'messages':[{'role':'user','content':'x'},{'role':'tool','tool_call_id':'1','content':'out'}]}",
	  0, 1, 0, 1, 0, 0, X, X },
	{ "assistant tool_calls", "{'messages':[{'role':'assistant','tool_calls':[{'id':'1'}]},{'role':'user','content':'x'}]}",
	  0, 1, 0, 1, 0, 0, X, X },
	{ "empty tool_calls", "{'messages':[{'role':'assistant','tool_calls':[]},{'role':'user','content':'x'}]}",
	  0, 0, 0, 1, 0, 0, X, X },
	{ "fim wins over agent", "{'messages':[{'role':'tool','content':'x'},{'role':'user','content':'<|fim_hole|>'}]}",
	  1, 0, 0, 1, 0, 0, X, X },
	/* tool-output continuations and turns */
	{ "tool output for", "{'messages':[{'role':'user','content':'list files'},{'role':'assistant','content':'ok'},"
	  "{'role':'user','content':'Tool output for ls:\\na.c b.c'}]}", 0, 0, 1, 1, 0, 0, X, X },
	{ "[tool result for", "{'messages':[{'role':'user','content':'go'},{'role':'user','content':' [Tool result for x]'}]}",
	  0, 0, 0, 1, 0, 0, X, X },
	{ "tool_call_result after whitespace", "{'messages':[{'role':'user','content':'go'},"
	  "{'role':'user','content':'\\n\\t tool_call_result: {}'}]}", 0, 0, 1, 1, 0, 0, X, X },
	{ "tool output after NBSP", "{'messages':[{'role':'user','content':'go'},"
	  "{'role':'user','content':'\xC2\xA0Tool output for x: 1'}]}", 0, 0, 1, 1, 0, 0, X, X },
	{ "tool output in text blocks", "{'messages':[{'role':'user','content':'go'},"
	  "{'role':'user','content':[{'type':'text','text':'  '},{'type':'text','text':'tool output for\\tx'}]}]}",
	  0, 0, 1, 1, 0, 0, X, X },
	{ "tool output for without space", "{'messages':[{'role':'user','content':'Tool output for'}]}", 0, 0, 1, 1, 0, 0, X, X },
	{ "function_results", "{'messages':[{'role':'user','content':'<function_results>x</function_results>'}]}",
	  0, 0, 1, 1, 0, 0, X, X },
	{ "fenced path", "{'messages':[{'role':'user','content':'```src/main.c\\nint x;'},{'role':'user','content':'```src/main.c\\nint x;'}]}",
	  0, 0, 1, 2, 0, 0, X, X },
	{ "windows exe", "{'messages':[{'role':'user','content':'C:\\\\Program Files\\\\nodejs\\\\node.exe app.js'}]}",
	  0, 0, 1, 1, 0, 0, X, X },
	{ "unix path", "{'messages':[{'role':'user','content':'/home/u/app/main.py:12: error'}]}", 0, 0, 1, 1, 0, 0, X, PY },
	{ "git prompt", "{'messages':[{'role':'user','content':'(my-repo) |git:main'}]}", 0, 0, 1, 1, 0, 0, X, X },
	{ "Output: (", "{'messages':[{'role':'user','content':'output: (0 rows)'}]}", 0, 0, 1, 1, 0, 0, X, X },
	{ "tool_call_id", "{'messages':[{'role':'user','content':'x','tool_call_id':'c1'}]}", 0, 0, 1, 1, 0, 0, X, X },
	{ "tool_result block", "{'messages':[{'role':'user','content':[{'type':'tool_result','content':'x'}]}]}",
	  0, 1, 1, 1, 0, 0, X, X },
	{ "no continuation mid-text", "{'messages':[{'role':'user','content':'Please explain the output of this'}]}",
	  0, 0, 0, 1, 0, 0, X, X },
	{ "only the last user message", "{'messages':[{'role':'user','content':'Tool output for a: 1'},"
	  "{'role':'user','content':'thanks'}]}", 0, 0, 0, 1, 0, 0, X, X },
	/* classifyText = last user + system */
	{ "domains across user and system", "{'messages':[{'role':'system','content':'mind the token budget'},"
	  "{'role':'user','content':'my password'}]}", 0, 0, 0, 1, 0, 0, SEC, 0 },
	{ "domains not from earlier messages", "{'messages':[{'role':'user','content':'GDPR'},{'role':'assistant','content':'ok'},"
	  "{'role':'user','content':'thanks'}]}", 0, 0, 0, 2, 0, 0, 0, 0 },
	{ "only the first system message", "{'messages':[{'role':'system','content':'a'},{'role':'system','content':'GDPR'},"
	  "{'role':'user','content':'x'}]}", 0, 0, 0, 1, 0, 0, 0, 0 },
	{ "text blocks joined by a space", "{'messages':[{'role':'user','content':[{'type':'text','text':'private'},"
	  "{'type':'input_text','text':'key'},{'type':'text','text':'leak; api key'}]}]}", 0, 0, 0, 1, 0, 0, SEC, X },
};

static void
extract(const char *text, struct route_signals *s)
{
	json_t *r = J(text);
	signals_extract(r, s);
	json_decref(r);
}

START_TEST(extract_table)
{
	struct route_signals s;
	for (size_t i = 0; i < sizeof ex_cases / sizeof ex_cases[0]; i++) {
		extract(ex_cases[i].req, &s);
		const char *n = ex_cases[i].name;
#define CHK(field, want) \
	if ((want) != X) \
		ck_assert_msg((long)(field) == (long)(want), "%s: " #field " = %ld, want %ld (%s)", n, (long)(field), \
			      (long)(want), s.summary)
		CHK(s.is_fim, ex_cases[i].fim);
		CHK(s.is_tool_agent, ex_cases[i].agent);
		CHK(s.tool_output_continuation, ex_cases[i].cont);
		CHK(s.conversation_turns, ex_cases[i].turns);
		CHK(s.has_images, ex_cases[i].images);
		CHK(s.has_tool_calls, ex_cases[i].tools);
		CHK(s.domains, ex_cases[i].domains);
		CHK(s.langs, ex_cases[i].langs);
#undef CHK
		ck_assert_msg(valid_utf8(s.system_prompt) && valid_utf8(s.last_user) && valid_utf8(s.summary), "%s: utf-8", n);
	}
}
END_TEST

/* Every literal FIM token makes a request FIM on its own, anywhere in any message. */
static const char *const fim_token_cases[] = {
	"<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<|fim_begin|>", "<|fim_hole|>", "<|fim_end|>",
	"<fim\xE2\x96\x81prefix>", "<fim\xE2\x96\x81suffix>", "<fim\xE2\x96\x81middle>",
	"<|fim\xE2\x96\x81" "begin|>", "<|fim\xE2\x96\x81hole|>", "<|fim\xE2\x96\x81" "end|>",
	"<PRE>", "<SUF>", "<MID>", "[PREFIX]", "[SUFFIX]", "[MIDDLE]", "<|prefix|>", "<|suffix|>", "<|middle|>",
	"<FILL_ME>", "<FILL>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
	"<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>", "{{HOLE}}", "<CURSOR>", "<cursor>",
};

START_TEST(fim_tokens)
{
	const char *tok = fim_token_cases[_i];
	json_t *r = json_pack("{s:[{s:s,s:s},{s:s,s:s++}]}", "messages", "role", "user", "content", "hello",
			      "role", "assistant", "content", "x = 1 ", tok, " + 2");
	ck_assert_ptr_nonnull(r);
	struct route_signals s;
	signals_extract(r, &s);
	ck_assert_msg(s.is_fim, "token %s", tok);
	ck_assert(!s.is_tool_agent);
	ck_assert(strstr(s.summary, "fim_autocomplete") != NULL);

	/* Cut short, it is nothing (outside the first user message, where "<fim" would be \bfim\b). */
	size_t l = strlen(tok);
	json_t *half = json_pack("{s:[{s:s,s:s},{s:s,s:s#}]}", "messages", "role", "user", "content", "hi",
				 "role", "assistant", "content", tok, l - 1);
	signals_extract(half, &s);
	ck_assert_msg(!s.is_fim, "half token %s", tok);
	json_decref(half);
	json_decref(r);
}
END_TEST

/* A bare "autocomplete" in a long system prompt does not force FIM; the specific phrases do. */
START_TEST(fim_long_system)
{
	char sys[1200];
	char body[2000];
	struct route_signals s;
	memset(sys, 0, sizeof sys);
	strcpy(sys, "You are a helpful coding assistant. The app has an autocomplete widget. ");
	while (strlen(sys) < 500)
		strcat(sys, "Answer precisely. ");
	snprintf(body, sizeof body, "{'messages':[{'role':'system','content':'%s'},{'role':'user','content':'hi'}]}", sys);
	extract(body, &s);
	ck_assert(!s.is_fim);
	ck_assert_int_gt(s.system_chars, 400);

	strcat(sys, "You are an autocomplete engine.");
	snprintf(body, sizeof body, "{'messages':[{'role':'system','content':'%s'},{'role':'user','content':'hi'}]}", sys);
	extract(body, &s);
	ck_assert(s.is_fim);

	/* Exactly 400 code points (multi-byte ones) is still short. */
	char shortsys[1600] = "autocomplete ";
	size_t cp = codepoints(shortsys);
	while (cp < 400) {
		strcat(shortsys, "\xC3\xA4");
		cp++;
	}
	snprintf(body, sizeof body, "{'messages':[{'role':'system','content':'%s'},{'role':'user','content':'hi'}]}", shortsys);
	extract(body, &s);
	ck_assert_int_eq(s.system_chars, 400);
	ck_assert(s.is_fim);
	strcat(shortsys, "x");
	snprintf(body, sizeof body, "{'messages':[{'role':'system','content':'%s'},{'role':'user','content':'hi'}]}", shortsys);
	extract(body, &s);
	ck_assert(!s.is_fim);
}
END_TEST

/* --- texts, summary, truncation -------------------------------------------------------------------------- */

START_TEST(summary_format)
{
	struct route_signals s;
	json_t *r = J("{'messages':[{'role':'user','content':'Hello'}]}");
	signals_extract(r, &s);
	char want[160];
	snprintf(want, sizeof want, "tokens\xE2\x89\x88%ld", tokens_estimate_messages(json_object_get(r, "messages")));
	ck_assert_str_eq(s.summary, want);
	ck_assert_str_eq(s.last_user, "Hello");
	ck_assert_str_eq(s.system_prompt, "");
	ck_assert_int_eq(s.system_chars, 0);
	ck_assert_str_eq(signals_infer_domain(&s), "general");
	json_decref(r);

	r = J("{'tools':[{'type':'function'}],'messages':[{'role':'user','content':'hi'},{'role':'assistant','content':'ok'},"
	      "{'role':'user','content':[{'type':'text','text':'def foo(x): check the password and the jwt'},"
	      "{'type':'image_url','image_url':{'url':'x'}}]}],'tool_choice':'auto'}");
	signals_extract(r, &s);
	snprintf(want, sizeof want, "tokens\xE2\x89\x88%ld, has_images, has_tools, turns=2, domains=[security], langs=[python]",
		 tokens_estimate_messages(json_object_get(r, "messages")));
	ck_assert_str_eq(s.summary, want);
	ck_assert_str_eq(s.last_user, "def foo(x): check the password and the jwt");
	ck_assert_str_eq(signals_infer_domain(&s), "security");
	json_decref(r);

	r = J("{'messages':[{'role':'system','content':'You have access to these tools: grep'},"
	      "{'role':'user','content':'GDPR? see SELECT a FROM b and main.go'},{'role':'tool','content':'x'},"
	      "{'role':'user','content':'Tool output for q: ok'}]}");
	signals_extract(r, &s);
	snprintf(want, sizeof want, "tokens\xE2\x89\x88%ld, tool_agent, tool_output_continuation",
		 tokens_estimate_messages(json_object_get(r, "messages")));
	ck_assert_str_eq(s.summary, want);
	json_decref(r);

	r = J("{'messages':[{'role':'user','content':'<PRE> x'},{'role':'user','content':'GDPR and the patients; x := 1'}]}");
	signals_extract(r, &s);
	snprintf(want, sizeof want, "tokens\xE2\x89\x88%ld, fim_autocomplete, turns=2, domains=[legal,medical], langs=[go]",
		 tokens_estimate_messages(json_object_get(r, "messages")));
	ck_assert_str_eq(s.summary, want);
	ck_assert_str_eq(signals_infer_domain(&s), "legal");
	s.domains = 0;
	ck_assert_str_eq(signals_infer_domain(&s), "tech");
	json_decref(r);
}
END_TEST

/* text(content): text blocks joined with one space, even after an empty one; other blocks skipped. */
static const struct {
	const char *content;
	const char *want;
} text_cases[] = {
	{ "'plain'", "plain" },
	{ "[{'type':'text','text':''},{'type':'text','text':'b'}]", " b" },
	{ "[{'type':'text','text':'a'},{'type':'image_url'},{'type':'input_text','text':'c'}]", "a c" },
	{ "[{'type':'text','text':'a'},{'type':'text','text':null},{'type':'text','text':'c'}]", "a  c" },
	{ "[{'type':'tool_result','text':'x'}]", "" },
	{ "[]", "" },
	{ "{'type':'text','text':'x'}", "" },
	{ "true", "" },
	{ "null", "" },
};

START_TEST(text_join)
{
	for (size_t i = 0; i < sizeof text_cases / sizeof text_cases[0]; i++) {
		char body[512];
		snprintf(body, sizeof body, "{'messages':[{'role':'user','content':%s}]}", text_cases[i].content);
		struct route_signals s;
		extract(body, &s);
		ck_assert_msg(strcmp(s.last_user, text_cases[i].want) == 0, "%s: '%s'", text_cases[i].content, s.last_user);
		ck_assert_int_eq(s.conversation_turns, 1);
	}
	struct route_signals s;
	memset(&s, 0x5A, sizeof s);
	signals_extract(NULL, &s);
	ck_assert_int_eq(s.total_tokens, 0);
	ck_assert(!s.is_fim && !s.has_images && !s.has_tool_calls && s.conversation_turns == 0);
	ck_assert_str_eq(s.last_user, "");
	ck_assert_str_eq(s.summary, "tokens\xE2\x89\x88" "0");
}
END_TEST

/* System prompt, last user message: cut at code points, never inside a sequence. */
static const struct {
	const char *what;
	const char *fill;       /* repeated to make the text */
	size_t reps;
	const char *tail;
	size_t want_cp;         /* code points kept */
	const char *want_end;   /* the last bytes kept */
} trunc_cases[] = {
	{ "system", "a", 999, "\xE2\x82\xAC" "b", 1000, "a\xE2\x82\xAC" },
	{ "system", "a", 998, "\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80", 1000, "\xF0\x9F\x98\x80\xF0\x9F\x98\x80" },
	{ "system", "\xE4\xB8\xAD", 1200, "", 1000, "\xE4\xB8\xAD" },
	{ "system", "a", 1000, "", 1000, "aa" },
	{ "user", "a", 799, "\xF0\x9F\x98\x80" "b", 800, "a\xF0\x9F\x98\x80" },
	{ "user", "\xC3\xA4", 801, "", 800, "\xC3\xA4" },
	{ "user", "a", 10, "", 10, "a" },
};

START_TEST(truncation)
{
	for (size_t i = 0; i < sizeof trunc_cases / sizeof trunc_cases[0]; i++) {
		size_t fl = strlen(trunc_cases[i].fill), tl = strlen(trunc_cases[i].tail);
		size_t n = fl * trunc_cases[i].reps + tl;
		char *text = malloc(n + 1);
		for (size_t k = 0; k < trunc_cases[i].reps; k++)
			memcpy(text + k * fl, trunc_cases[i].fill, fl);
		memcpy(text + fl * trunc_cases[i].reps, trunc_cases[i].tail, tl + 1);
		bool sys = strcmp(trunc_cases[i].what, "system") == 0;
		json_t *r = json_pack("{s:[{s:s,s:s},{s:s,s:s}]}", "messages", "role", sys ? "system" : "assistant",
				      "content", text, "role", "user", "content", sys ? "u" : text);
		struct route_signals s;
		signals_extract(r, &s);
		const char *got = sys ? s.system_prompt : s.last_user;
		ck_assert_msg(valid_utf8(got), "case %zu: invalid UTF-8", i);
		ck_assert_uint_eq(codepoints(got), trunc_cases[i].want_cp);
		size_t el = strlen(trunc_cases[i].want_end), gl = strlen(got);
		ck_assert_msg(gl >= el && memcmp(got + gl - el, trunc_cases[i].want_end, el) == 0, "case %zu: end", i);
		if (sys)
			ck_assert_int_eq(s.system_chars, (long)codepoints(text));
		json_decref(r);
		free(text);
	}
}
END_TEST

/* Invalid UTF-8 and NUL bytes (jansson lets a program build them): no crash, valid output. */
START_TEST(invalid_utf8)
{
	static const char bad[] = "\xFF\xFE password \xC3 token \xED\xA0\x80 \xF0\x9F\x98 end\0nul \xE2\x97\x8A";
	json_t *r = json_object();
	json_t *ms = json_array();
	json_t *m1 = json_object(), *m2 = json_object();
	json_object_set_new(m1, "role", json_string("system"));
	json_object_set_new(m1, "content", json_stringn_nocheck(bad, sizeof bad - 1));
	json_object_set_new(m2, "role", json_string("user"));
	json_object_set_new(m2, "content", json_stringn_nocheck(bad, sizeof bad - 1));
	json_array_append_new(ms, m1);
	json_array_append_new(ms, m2);
	json_object_set_new(r, "messages", ms);
	struct route_signals s;
	signals_extract(r, &s);
	ck_assert(valid_utf8(s.system_prompt));
	ck_assert(valid_utf8(s.last_user));
	ck_assert(valid_utf8(s.summary));
	ck_assert(strstr(s.last_user, "\xEF\xBF\xBD" "\xEF\xBF\xBD password") == s.last_user);
	ck_assert(strstr(s.last_user, "end\xEF\xBF\xBDnul") != NULL);        /* the NUL is replaced, not a cut */
	ck_assert_uint_eq(s.domains, SEC);
	ck_assert(!s.is_fim);                                                 /* the lozenge, no code */
	ck_assert_int_eq(s.conversation_turns, 1);
	json_decref(r);
}
END_TEST

/* --- hostile sizes -------------------------------------------------------------------------------------- */

static char *
repeat(const char *unit, size_t total, size_t *len)
{
	size_t ul = strlen(unit), n = total / ul * ul;
	char *t = malloc(n + 1);
	for (size_t i = 0; i < n; i += ul)
		memcpy(t + i, unit, ul);
	t[n] = '\0';
	*len = n;
	return t;
}

/* 10 MB messages built to make the original's `.*` patterns, the fence rule and the continuation
 * pattern backtrack: they must complete (linear scans) with sane fields. */
static const char *const huge_units[] = {
	"you are at grep ",             /* tool agent: .*\b(grep)\b.*codebase, no codebase */
	"SELECT a ",                    /* sql: \bSELECT\b.*\bFROM\b, no FROM */
	"you have access to ",          /* .*\btools\b */
	"agent mode ",                  /* .*\btool */
	"fill ",                        /* .{0,20}middle */
	"```",                          /* fences */
	"/aaaa/bbbb",                   /* /[\w/.-]+\.(py|...) on one huge path */
	"def a",                        /* \w+\s*\( */
	"\xC3\xA4",                     /* one long non-ASCII word */
	"a ",
};

START_TEST(huge_message)
{
	size_t n;
	char *text = repeat(huge_units[_i], 10u << 20, &n);
	json_t *r = json_pack("{s:[{s:s,s:s#},{s:s,s:s#}]}", "messages", "role", "system", "content", text, n,
			      "role", "user", "content", text, n);
	ck_assert_ptr_nonnull(r);
	struct route_signals s;
	signals_extract(r, &s);
	ck_assert_int_eq(s.total_tokens, tokens_estimate_messages(json_object_get(r, "messages")));
	ck_assert_int_gt(s.total_tokens, 1000000);
	ck_assert_int_eq(s.system_chars, (long)codepoints(text));
	ck_assert_uint_le(codepoints(s.system_prompt), ROUTE_SYSTEM_CHARS);
	ck_assert_uint_le(codepoints(s.last_user), ROUTE_USER_CHARS);
	ck_assert(valid_utf8(s.last_user) && valid_utf8(s.system_prompt));
	ck_assert_int_eq(s.conversation_turns, 1);
	ck_assert(!s.is_tool_agent);                 /* none of the .* patterns completes */
	ck_assert(!(s.langs & SQL));
	json_decref(r);
	free(text);
}
END_TEST

START_TEST(many_messages)
{
	json_t *ms = json_array();
	for (int i = 0; i < 10000; i++)
		json_array_append_new(ms, json_pack("{s:s,s:s}", "role", i % 2 ? "assistant" : "user", "content",
						    i == 9998 ? "the last one: GDPR" : "hello there"));
	json_t *r = json_pack("{s:o}", "messages", ms);
	struct route_signals s;
	signals_extract(r, &s);
	ck_assert_int_eq(s.conversation_turns, 5000);
	ck_assert_int_eq(s.total_tokens, tokens_estimate_messages(ms));
	ck_assert_str_eq(s.last_user, "the last one: GDPR");
	ck_assert_uint_eq(s.domains, LEG);
	ck_assert(strstr(s.summary, "turns=5000") != NULL);
	json_decref(r);
}
END_TEST

/* --- opt-out --------------------------------------------------------------------------------------------- */

static const struct {
	const char *req;
	bool found;
	const char *want;        /* the request afterwards */
} optout_cases[] = {
	{ "{'messages':[{'role':'user','content':'Please use this --model-prism-accept-model'}]}", true,
	  "{'messages':[{'role':'user','content':'Please use this'}]}" },
	{ "{'messages':[{'role':'user','content':'--model-prism-accept-model please'}]}", true,
	  "{'messages':[{'role':'user','content':'please'}]}" },
	{ "{'messages':[{'role':'user','content':'fix --model-prism-accept-model this'}]}", true,
	  "{'messages':[{'role':'user','content':'fix this'}]}" },
	{ "{'messages':[{'role':'user','content':'fix\\n--model-prism-accept-model\\nthis'}]}", true,
	  "{'messages':[{'role':'user','content':'fix\\nthis'}]}" },
	{ "{'messages':[{'role':'user','content':'a --model-prism-accept-model b --model-prism-accept-model  '}]}", true,
	  "{'messages':[{'role':'user','content':'a b'}]}" },
	{ "{'messages':[{'role':'user','content':'  --model-prism-accept-model --model-prism-accept-model  '}]}", true,
	  "{'messages':[{'role':'user','content':''}]}" },
	{ "{'messages':[{'role':'user','content':'x--model-prism-accept-model y'}]}", true,
	  "{'messages':[{'role':'user','content':'x y'}]}" },
	{ "{'messages':[{'role':'user','content':[{'type':'text','text':'a --model-prism-accept-model'},"
	  "{'type':'image_url','image_url':{'url':'u'}},{'type':'text','text':'--model-prism-accept-model b'},"
	  "{'type':'text','text':'c'}]}]}", true,
	  "{'messages':[{'role':'user','content':[{'type':'text','text':'a'},{'type':'image_url','image_url':{'url':'u'}},"
	  "{'type':'text','text':'b'},{'type':'text','text':'c'}]}]}" },
	/* only in an earlier message: not removed */
	{ "{'messages':[{'role':'user','content':'x --model-prism-accept-model'},{'role':'assistant','content':'ok'},"
	  "{'role':'user','content':'y'}]}", false,
	  "{'messages':[{'role':'user','content':'x --model-prism-accept-model'},{'role':'assistant','content':'ok'},"
	  "{'role':'user','content':'y'}]}" },
	/* the last user message, not a later assistant one */
	{ "{'messages':[{'role':'user','content':'hi --model-prism-accept-model'},"
	  "{'role':'assistant','content':'--model-prism-accept-model'}]}", true,
	  "{'messages':[{'role':'user','content':'hi'},{'role':'assistant','content':'--model-prism-accept-model'}]}" },
	{ "{'messages':[{'role':'user','content':'nothing here'}]}", false, "{'messages':[{'role':'user','content':'nothing here'}]}" },
	{ "{'messages':[{'role':'user','content':'--model-prism-accept'}]}", false,
	  "{'messages':[{'role':'user','content':'--model-prism-accept'}]}" },
	{ "{'messages':[{'role':'user','content':{'text':'--model-prism-accept-model'}}]}", false,
	  "{'messages':[{'role':'user','content':{'text':'--model-prism-accept-model'}}]}" },
	{ "{'messages':[{'role':'user','content':[{'type':'image','text':'--model-prism-accept-model'}]}]}", false,
	  "{'messages':[{'role':'user','content':[{'type':'image','text':'--model-prism-accept-model'}]}]}" },
	{ "{'messages':'x'}", false, "{'messages':'x'}" },
	{ "{}", false, "{}" },
};

START_TEST(optout_table)
{
	for (size_t i = 0; i < sizeof optout_cases / sizeof optout_cases[0]; i++) {
		json_t *r = J(optout_cases[i].req), *want = J(optout_cases[i].want);
		bool found = signals_take_opt_out(r);
		ck_assert_msg(found == optout_cases[i].found, "case %zu: found %d", i, found);
		char *got = json_dumps(r, JSON_SORT_KEYS);
		ck_assert_msg(json_equal(r, want), "case %zu: got %s", i, got);
		free(got);
		json_decref(r);
		json_decref(want);
	}
	ck_assert(!signals_take_opt_out(NULL));
}
END_TEST

/* The same message object twice in the array: only the last position changes. */
START_TEST(optout_shared_message)
{
	json_t *m = J("{'role':'user','content':[{'type':'text','text':'go --model-prism-accept-model'}]}");
	json_t *ms = json_array();
	json_array_append(ms, m);
	json_array_append_new(ms, J("{'role':'assistant','content':'ok'}"));
	json_array_append(ms, m);
	json_t *r = json_pack("{s:o}", "messages", ms);
	ck_assert(signals_take_opt_out(r));
	json_t *first = json_array_get(ms, 0), *last = json_array_get(ms, 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(first, "content"), 0), "text")),
			 "go --model-prism-accept-model");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(last, "content"), 0), "text")),
			 "go");
	ck_assert(!signals_take_opt_out(r));
	json_decref(m);
	json_decref(r);
}
END_TEST

/* --- frustration ---------------------------------------------------------------------------------------- */

static const struct {
	const char *text;
	int turns;
	bool continuation;
	bool want;
} frust_cases[] = {
	{ "It's still not working", 2, false, true },
	{ "still doesn't work", 1, false, true },
	{ "this is wrong again", 3, false, true },
	{ "You keep making the same mistake", 2, false, true },
	{ "Try again!!", 2, false, true },
	{ "why?! what?!", 2, false, true },
	{ "WHY?!?", 2, false, true },
	{ "WHY DOES THIS NEVER WORK", 2, false, true },
	{ "I already told you to use tabs", 2, false, true },
	{ "how many times do I have to say it", 2, false, true },
	{ "That's not what I asked for", 2, false, true },
	{ "Es funktioniert immer noch nicht", 2, false, true },
	{ "Das ist schon wieder falsch", 2, false, true },
	{ "Wie oft noch?", 2, false, true },
	{ "Du machst das st\xC3\xA4ndig kaputt", 2, false, true },
	{ "doesn't work", 2, false, true },
	{ "it doesn\xE2\x80\x99t work", 3, false, true },
	{ "funktioniert nicht", 2, false, true },
	{ "the build is still failing", 2, false, true },
	{ "doesn't work", 1, false, false },                  /* a first message: a bug report */
	{ "My script doesn't work, can you help?", 1, false, false },
	{ "Die Funktion geht nicht", 1, false, false },
	{ "Hello, can you help me with Python?", 2, false, false },
	{ "Thanks!!!", 2, false, false },
	{ "What?!", 2, false, false },
	{ "Use the AWS API JSON output from the S3 bucket please", 2, false, false },
	{ "SELECT NAME FROM USERS WHERE ID", 2, false, false },
	{ "MAX_SIZE DEFAULT_TIMEOUT HTTP_PORT", 2, false, false },
	{ "still not working", 2, true, false },              /* tool output, not the user */
	{ "you keep the state in redux?", 2, false, false },
	{ "how many times does this loop run?", 2, false, false },
	{ "I told you about the server earlier", 2, false, false },
	{ "", 2, false, false },
};

START_TEST(frustration_table)
{
	for (size_t i = 0; i < sizeof frust_cases / sizeof frust_cases[0]; i++) {
		struct route_signals s;
		memset(&s, 0, sizeof s);
		snprintf(s.last_user, sizeof s.last_user, "%s", frust_cases[i].text);
		s.conversation_turns = frust_cases[i].turns;
		s.tool_output_continuation = frust_cases[i].continuation;
		ck_assert_msg(signals_frustrated(&s) == frust_cases[i].want, "'%s' (turns %d)", frust_cases[i].text,
			      frust_cases[i].turns);
	}
	ck_assert(!signals_frustrated(NULL));
}
END_TEST

/* Through signals_extract: turns and continuation come from the request. */
START_TEST(frustration_extract)
{
	struct route_signals s;
	extract("{'messages':[{'role':'user','content':'fix it'},{'role':'assistant','content':'done'},"
		"{'role':'user','content':'it doesn\\u0027t work'}]}", &s);
	ck_assert(signals_frustrated(&s));
	extract("{'messages':[{'role':'user','content':'it doesn\\u0027t work'}]}", &s);
	ck_assert(!signals_frustrated(&s));
	extract("{'messages':[{'role':'user','content':'fix it'},{'role':'user','content':'Tool output for t: still not working'}]}", &s);
	ck_assert(!signals_frustrated(&s));
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("signals");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, domains_table);
	tcase_add_test(tc, langs_table);
	tcase_add_test(tc, extract_table);
	tcase_add_loop_test(tc, fim_tokens, 0, sizeof fim_token_cases / sizeof fim_token_cases[0]);
	tcase_add_test(tc, fim_long_system);
	tcase_add_test(tc, summary_format);
	tcase_add_test(tc, text_join);
	tcase_add_test(tc, truncation);
	tcase_add_test(tc, invalid_utf8);
	tcase_add_test(tc, many_messages);
	tcase_add_test(tc, optout_table);
	tcase_add_test(tc, optout_shared_message);
	tcase_add_test(tc, frustration_table);
	tcase_add_test(tc, frustration_extract);
	suite_add_tcase(s, tc);

	/* Linear scans finish 10 MB in well under a second; the timeout only stops a quadratic one (and
	 * leaves room for sanitizer builds on a busy machine). */
	TCase *huge = tcase_create("huge");
	tcase_set_timeout(huge, 120);
	tcase_add_loop_test(huge, huge_message, 0, sizeof huge_units / sizeof huge_units[0]);
	suite_add_tcase(s, huge);
	return s;
}

CHECK_MAIN(suite)
