/* check_ruleset.c -- routing rule sets (routing/ruleset.h): the admin body validation and its defaults, the
 * PUT merge, the word-boundary keyword matcher, the PCRE2 role patterns and their limits, and every step of
 * the pre-routing with the seeded default rule set and with hand-written ones.  Signals are built by hand
 * (struct route_signals), so these tests do not depend on the signal extractor. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"

#include "routing/ruleset.h"
#include "util/clock.h"

static json_t *
J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	ck_assert_msg(j != NULL, "bad JSON in the test: %s (%s)", text, e.text);
	return j;
}

/* --- normalise: every validation error names its field ---------------------------------------------------- */

#define X64 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define R1 "{\"name\":\"r\",\"keywords\":[\"a\"]}"
#define ROLE1 "{\"name\":\"x\",\"pattern\":\"a\"}"

static const struct {
	const char *body;
	const char *want;               /* the exact start of the message */
} bad_bodies[] = {
	{ "{}", "name: is required" },
	{ "{\"name\":\"  \"}", "name: must not be empty" },
	{ "{\"name\":7}", "name: must be a string" },
	{ "{\"name\":\"" X64 X64 "x\"}",
	  "name: must be at most 128 bytes long" },
	{ "{\"name\":\"n\",\"description\":5}", "description: must be a string" },
	{ "{\"name\":\"n\",\"isGlobalDefault\":\"yes\"}", "isGlobalDefault: must be a boolean" },
	{ "{\"name\":\"n\",\"tenantId\":\"abc\"}", "tenantId: must be a 24-hex id or null" },
	{ "{\"name\":\"n\",\"tenantId\":12}", "tenantId: must be a 24-hex id or null" },
	{ "{\"name\":\"n\",\"tenantId\":\"0123456789abcdef01234567\",\"isGlobalDefault\":true}",
	  "isGlobalDefault: a tenant's rule set cannot be the global default (clear tenantId)" },
	{ "{\"name\":\"n\",\"tokenThresholds\":[]}", "tokenThresholds: must be an object" },
	{ "{\"name\":\"n\",\"tokenThresholds\":{\"low\":\"x\"}}", "tokenThresholds.low: must be a non-negative integer" },
	{ "{\"name\":\"n\",\"tokenThresholds\":{\"low\":-1}}", "tokenThresholds.low: must be a non-negative integer" },
	{ "{\"name\":\"n\",\"tokenThresholds\":{\"low\":2.5}}", "tokenThresholds.low: must be a non-negative integer" },
	{ "{\"name\":\"n\",\"tokenThresholds\":{\"micro\":600}}", "tokenThresholds.minimal: must not be below tokenThresholds.micro (600)" },
	{ "{\"name\":\"n\",\"tokenThresholds\":{\"alwaysHigh\":100}}",
	  "tokenThresholds.alwaysHigh: must not be below tokenThresholds.medium (15000)" },
	{ "{\"name\":\"n\",\"signalWeights\":{\"tokenCount\":1.5}}", "signalWeights.tokenCount: must be a number between 0 and 1" },
	{ "{\"name\":\"n\",\"signalWeights\":{\"contentKeywords\":\"high\"}}",
	  "signalWeights.contentKeywords: must be a number between 0 and 1" },
	{ "{\"name\":\"n\",\"signalWeights\":{\"conversationTurns\":-0.1}}",
	  "signalWeights.conversationTurns: must be a number between 0 and 1" },
	{ "{\"name\":\"n\",\"turnUpgrade\":{\"enabled\":1}}", "turnUpgrade.enabled: must be a boolean" },
	{ "{\"name\":\"n\",\"turnUpgrade\":{\"threshold\":0}}", "turnUpgrade.threshold: must be an integer between 1 and 1000" },
	{ "{\"name\":\"n\",\"turnUpgrade\":{\"threshold\":1001}}", "turnUpgrade.threshold: must be an integer between 1 and 1000" },
	{ "{\"name\":\"n\",\"keywordRules\":{}}", "keywordRules: must be an array" },
	{ "{\"name\":\"n\",\"keywordRules\":[5]}", "keywordRules[0]: must be an object" },
	{ "{\"name\":\"n\",\"keywordRules\":[" R1 ",{\"keywords\":[\"a\"]}]}", "keywordRules[1].name: is required" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\"}]}", "keywordRules[0].keywords: must be an array of 1 to 200 keywords" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\",\"keywords\":[]}]}",
	  "keywordRules[0].keywords: must be an array of 1 to 200 keywords" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"a\",\" \"]}]}",
	  "keywordRules[0].keywords[1]: must not be empty" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"*\"]}]}",
	  "keywordRules[0].keywords[0]: must have more than a '*'" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\",\"keywords\":[3]}]}", "keywordRules[0].keywords[0]: must be a string" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"a\"],\"match\":\"some\"}]}",
	  "keywordRules[0].match: must be one of any, all" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"a\"],\"minMatches\":0}]}",
	  "keywordRules[0].minMatches: must be an integer between 1 and 200" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"a\"],\"minMatches\":2}]}",
	  "keywordRules[0].minMatches: must not exceed the number of keywords (1)" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"a\"],\"searchIn\":\"assistant\"}]}",
	  "keywordRules[0].searchIn: must be one of all, user, system" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"a\"],\"effect\":{\"tierMin\":\"premium\"}}]}",
	  "keywordRules[0].effect.tierMin: must be one of \"\", micro, minimal, low, medium, advanced, high, ultra, critical" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"a\"],\"effect\":{\"tierMax\":\"High\"}}]}",
	  "keywordRules[0].effect.tierMax: must be one of" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"a\"],\"effect\":{\"category\":\"Legal Analysis\"}}]}",
	  "keywordRules[0].effect.category: may contain only lowercase letters, digits and underscores" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"a\"],\"effect\":\"legal\"}]}",
	  "keywordRules[0].effect: must be an object" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"a\"],\"_id\":\"nope\"}]}",
	  "keywordRules[0]._id: must be a 24-hex id" },
	{ "{\"name\":\"n\",\"keywordRules\":[{\"_id\":\"0123456789abcdef01234567\",\"name\":\"r\",\"keywords\":[\"a\"]},"
	  "{\"_id\":\"0123456789abcdef01234567\",\"name\":\"s\",\"keywords\":[\"b\"]}]}",
	  "keywordRules[1]._id: duplicate id" },
	{ "{\"name\":\"n\",\"systemPromptRoles\":[{\"name\":\"x\"}]}", "systemPromptRoles[0].pattern: is required" },
	{ "{\"name\":\"n\",\"systemPromptRoles\":[" ROLE1 ",{\"name\":\"y\",\"pattern\":\"security.*(auditor\"}]}",
	  "systemPromptRoles[1].pattern: invalid regular expression at offset 18: missing closing parenthesis" },
	{ "{\"name\":\"n\",\"systemPromptRoles\":[{\"name\":\"y\",\"pattern\":\"a**\"}]}",
	  "systemPromptRoles[0].pattern: invalid regular expression at offset 2:" },
	{ "{\"name\":\"n\",\"systemPromptRoles\":[{\"pattern\":\"a\"}]}", "systemPromptRoles[0].name: is required" },
	{ "{\"name\":\"n\",\"systemPromptRoles\":[{\"name\":\"y\",\"pattern\":\"a\",\"effect\":{\"tierMin\":\"x\"}}]}",
	  "systemPromptRoles[0].effect.tierMin: must be one of" },
	{ "{\"name\":\"n\",\"classifier\":{\"confidenceThreshold\":2}}", "classifier.confidenceThreshold: must be a number between 0 and 1" },
	{ "{\"name\":\"n\",\"classifier\":{\"contextLimitTokens\":100}}",
	  "classifier.contextLimitTokens: must be an integer between 500 and 2000000" },
	{ "{\"name\":\"n\",\"classifier\":{\"contextStrategy\":\"all\"}}",
	  "classifier.contextStrategy: must be one of truncate, metadata_only, summary" },
	{ "{\"name\":\"n\",\"costMode\":\"cheap\"}", "costMode: must be one of balanced, economy, quality" },
	{ "{\"name\":\"n\",\"tierBoost\":3}", "tierBoost: must be an integer between -2 and 2" },
	{ "{\"name\":\"n\",\"tierBoost\":-3}", "tierBoost: must be an integer between -2 and 2" },
	{ "{\"name\":\"n\",\"tierBoost\":1.5}", "tierBoost: must be an integer between -2 and 2" },
	{ "{\"name\":\"n\",\"tierBoost\":\"1\"}", "tierBoost: must be an integer between -2 and 2" },
	{ "[1]", "body: must be a JSON object" },
};

START_TEST(normalise_rejects)
{
	json_t *body = J(bad_bodies[_i].body);
	char err[512] = "";
	json_t *doc = ruleset_normalise(body, NULL, err, sizeof err);
	ck_assert_msg(doc == NULL, "accepted: %s", bad_bodies[_i].body);
	ck_assert_msg(strncmp(err, bad_bodies[_i].want, strlen(bad_bodies[_i].want)) == 0, "%s\n  got:  %s\n  want: %s",
		      bad_bodies[_i].body, err, bad_bodies[_i].want);
	json_decref(body);
}
END_TEST

START_TEST(normalise_too_many)
{
	/* 201 rules, 101 roles, 201 keywords, a 2001-byte pattern, a 201-byte keyword */
	char err[512];
	json_t *body = J("{\"name\":\"n\"}"), *rules = json_array(), *roles = json_array(), *kws = json_array();
	for (int i = 0; i < 201; i++)
		json_array_append_new(rules, J(R1));
	json_object_set_new(body, "keywordRules", rules);
	ck_assert_ptr_null(ruleset_normalise(body, NULL, err, sizeof err));
	ck_assert_str_eq(err, "keywordRules: must have at most 200 entries");
	json_array_remove(rules, 200);
	json_t *doc = ruleset_normalise(body, NULL, err, sizeof err);
	ck_assert_msg(doc != NULL, "200 rules: %s", err);
	json_decref(doc);
	json_object_del(body, "keywordRules");

	for (int i = 0; i < 101; i++)
		json_array_append_new(roles, J(ROLE1));
	json_object_set_new(body, "systemPromptRoles", roles);
	ck_assert_ptr_null(ruleset_normalise(body, NULL, err, sizeof err));
	ck_assert_str_eq(err, "systemPromptRoles: must have at most 100 entries");
	json_object_del(body, "systemPromptRoles");

	for (int i = 0; i < 201; i++)
		json_array_append_new(kws, json_string("k"));
	json_t *rule = J(R1);
	json_object_set_new(rule, "keywords", kws);
	json_object_set_new(body, "keywordRules", json_pack("[o]", rule));
	ck_assert_ptr_null(ruleset_normalise(body, NULL, err, sizeof err));
	ck_assert_str_eq(err, "keywordRules[0].keywords: must be an array of 1 to 200 keywords");

	char big[2100];
	memset(big, 'a', sizeof big);
	big[201] = '\0';
	json_object_set_new(rule, "keywords", json_pack("[s]", big));
	ck_assert_ptr_null(ruleset_normalise(body, NULL, err, sizeof err));
	ck_assert_str_eq(err, "keywordRules[0].keywords[0]: must be at most 200 bytes long");
	json_object_del(body, "keywordRules");

	memset(big, 'a', sizeof big);
	big[2001] = '\0';
	json_object_set_new(body, "systemPromptRoles", json_pack("[{s:s, s:s}]", "name", "big", "pattern", big));
	ck_assert_ptr_null(ruleset_normalise(body, NULL, err, sizeof err));
	ck_assert_str_eq(err, "systemPromptRoles[0].pattern: must be at most 2000 bytes long");
	big[2000] = '\0';
	json_object_set_new(body, "systemPromptRoles", json_pack("[{s:s, s:s}]", "name", "big", "pattern", big));
	doc = ruleset_normalise(body, NULL, err, sizeof err);
	ck_assert_msg(doc != NULL, "2000-byte pattern: %s", err);
	json_decref(doc);
	json_decref(body);
}
END_TEST

static const char *
sget(const json_t *doc, const char *path)
{
	char buf[128];
	snprintf(buf, sizeof buf, "%s", path);
	const json_t *v = doc;
	for (char *tok = strtok(buf, "."); tok && v; tok = strtok(NULL, "."))
		v = json_object_get(v, tok);
	static char out[256];
	char *s = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
	snprintf(out, sizeof out, "%s", s ? s : "<absent>");
	free(s);
	return out;
}

START_TEST(normalise_defaults)
{
	char err[256];
	json_t *body = J("{\"name\":\"Mine\",\"unknown\":1,\"_id\":\"0123456789abcdef01234567\",\"isDefault\":true,"
			 "\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"x\"]}],"
			 "\"systemPromptRoles\":[{\"name\":\"p\",\"pattern\":\"x\",\"effect\":{\"tierMax\":\"low\"}}]}");
	json_t *doc = ruleset_normalise(body, NULL, err, sizeof err);
	ck_assert_msg(doc != NULL, "%s", err);
	static const struct {
		const char *path, *want;
	} want[] = {
		{ "name", "\"Mine\"" }, { "description", "\"\"" }, { "isGlobalDefault", "false" }, { "tenantId", "null" },
		{ "tokenThresholds.micro", "150" }, { "tokenThresholds.minimal", "500" }, { "tokenThresholds.low", "2000" },
		{ "tokenThresholds.medium", "15000" }, { "tokenThresholds.alwaysHigh", "50000" },
		{ "signalWeights.tokenCount", "0.80000000000000004" }, { "signalWeights.contentKeywords", "0.84999999999999998" },
		{ "signalWeights.conversationTurns", "0.40000000000000002" }, { "turnUpgrade.enabled", "true" },
		{ "turnUpgrade.threshold", "4" }, { "classifier.confidenceThreshold", "0.65000000000000002" },
		{ "classifier.contextLimitTokens", "4000" }, { "classifier.contextStrategy", "\"truncate\"" },
		{ "costMode", "\"balanced\"" }, { "tierBoost", "0" }, { "isDefault", "false" }, { "unknown", "<absent>" },
		{ "_id", "<absent>" },
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		ck_assert_msg(strcmp(sget(doc, want[i].path), want[i].want) == 0, "%s: %s, want %s", want[i].path,
			      sget(doc, want[i].path), want[i].want);
	json_t *rule = json_array_get(json_object_get(doc, "keywordRules"), 0);
	ck_assert_str_eq(sget(rule, "enabled"), "true");
	ck_assert_str_eq(sget(rule, "match"), "\"any\"");
	ck_assert_str_eq(sget(rule, "minMatches"), "1");
	ck_assert_str_eq(sget(rule, "searchIn"), "\"all\"");
	ck_assert_str_eq(sget(rule, "effect"), "{\"category\": \"\", \"tierMin\": \"\", \"tierMax\": \"\", \"domain\": \"\"}");
	ck_assert_int_eq((int)strlen(json_string_value(json_object_get(rule, "_id"))), 24);
	json_t *role = json_array_get(json_object_get(doc, "systemPromptRoles"), 0);
	ck_assert_str_eq(sget(role, "effect"), "{\"category\": \"\", \"tierMin\": \"\", \"domain\": \"\"}");
	ck_assert_int_eq((int)strlen(json_string_value(json_object_get(role, "_id"))), 24);
	ck_assert_str_ne(json_string_value(json_object_get(rule, "_id")), json_string_value(json_object_get(role, "_id")));
	json_decref(doc);
	json_decref(body);

	/* "" for tenantId is "no tenant", as the original's UI sends it */
	body = J("{\"name\":\"n\",\"tenantId\":\"\"}");
	doc = ruleset_normalise(body, NULL, err, sizeof err);
	ck_assert_msg(doc != NULL, "%s", err);
	ck_assert_str_eq(sget(doc, "tenantId"), "null");
	json_decref(doc);
	json_decref(body);

	/* null thresholds are "not used"; an integral real is an integer */
	body = J("{\"name\":\"n\",\"tokenThresholds\":{\"micro\":null,\"minimal\":null,\"low\":3000.0}}");
	doc = ruleset_normalise(body, NULL, err, sizeof err);
	ck_assert_msg(doc != NULL, "%s", err);
	ck_assert_str_eq(sget(doc, "tokenThresholds"),
			 "{\"micro\": null, \"minimal\": null, \"low\": 3000, \"medium\": 15000, \"alwaysHigh\": 50000}");
	json_decref(doc);
	json_decref(body);
}
END_TEST

START_TEST(normalise_put_merge)
{
	char err[256];
	json_t *create = J("{\"name\":\"Old\",\"description\":\"d\",\"isGlobalDefault\":false,"
			   "\"tenantId\":\"0123456789abcdef01234567\",\"costMode\":\"economy\",\"tierBoost\":-2,"
			   "\"tokenThresholds\":{\"micro\":100},\"signalWeights\":{\"contentKeywords\":0.5},"
			   "\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"x\"]}]}");
	json_t *stored = ruleset_normalise(create, NULL, err, sizeof err);
	ck_assert_msg(stored != NULL, "%s", err);
	json_object_set_new(stored, "isDefault", json_true());   /* as the seed stores it */
	const char *rid = json_string_value(json_object_get(json_array_get(json_object_get(stored, "keywordRules"), 0), "_id"));

	/* A PUT with only a name and one threshold keeps everything else, isDefault included (the original
	 * reset isGlobalDefault, tenantId, costMode and tierBoost). */
	json_t *put = J("{\"name\":\"New\",\"tokenThresholds\":{\"low\":2500},\"isDefault\":false}");
	json_t *doc = ruleset_normalise(put, stored, err, sizeof err);
	ck_assert_msg(doc != NULL, "%s", err);
	ck_assert_str_eq(sget(doc, "name"), "\"New\"");
	ck_assert_str_eq(sget(doc, "description"), "\"d\"");
	ck_assert_str_eq(sget(doc, "isGlobalDefault"), "false");
	ck_assert_str_eq(sget(doc, "tenantId"), "\"0123456789abcdef01234567\"");
	ck_assert_str_eq(sget(doc, "costMode"), "\"economy\"");
	ck_assert_str_eq(sget(doc, "tierBoost"), "-2");
	ck_assert_str_eq(sget(doc, "tokenThresholds.micro"), "100");
	ck_assert_str_eq(sget(doc, "tokenThresholds.low"), "2500");
	ck_assert_str_eq(sget(doc, "signalWeights.contentKeywords"), "0.5");
	ck_assert_str_eq(sget(doc, "isDefault"), "true");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(doc, "keywordRules"), 0), "_id")), rid);
	json_decref(doc);
	json_decref(put);

	/* explicit values replace; a rule sent back keeps its _id, a new one gets one; null tenant clears */
	char body[512];
	snprintf(body, sizeof body,
		 "{\"tenantId\":null,\"isGlobalDefault\":false,\"tierBoost\":1,\"keywordRules\":["
		 "{\"_id\":\"%s\",\"name\":\"r2\",\"keywords\":[\"y\"]},{\"name\":\"new\",\"keywords\":[\"z\"]}]}", rid);
	put = J(body);
	doc = ruleset_normalise(put, stored, err, sizeof err);
	ck_assert_msg(doc != NULL, "%s", err);
	ck_assert_str_eq(sget(doc, "name"), "\"Old\"");
	ck_assert_str_eq(sget(doc, "tenantId"), "null");
	ck_assert_str_eq(sget(doc, "isGlobalDefault"), "false");
	ck_assert_str_eq(sget(doc, "tierBoost"), "1");
	json_t *rules = json_object_get(doc, "keywordRules");
	ck_assert_int_eq((int)json_array_size(rules), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(rules, 0), "_id")), rid);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(rules, 0), "name")), "r2");
	const char *nid = json_string_value(json_object_get(json_array_get(rules, 1), "_id"));
	ck_assert_ptr_nonnull(nid);
	ck_assert_int_eq((int)strlen(nid), 24);
	ck_assert_str_ne(nid, rid);
	json_decref(doc);
	json_decref(put);

	/* the merged result is validated: a PUT that makes the thresholds decrease is refused */
	put = J("{\"tokenThresholds\":{\"minimal\":50}}");
	ck_assert_ptr_null(ruleset_normalise(put, stored, err, sizeof err));
	ck_assert_str_eq(err, "tokenThresholds.minimal: must not be below tokenThresholds.micro (100): the thresholds must not "
			      "decrease from micro to alwaysHigh");
	json_decref(put);
	json_decref(stored);
	json_decref(create);
}
END_TEST

/* --- the keyword matcher --------------------------------------------------------------------------------- */

static const struct {
	const char *keyword, *text;
	bool hit;
	const char *why;
} kw_cases[] = {
	{ "NDA", "Please sign the NDA today", true, "a whole word, any case" },
	{ "NDA", "this is the standard procedure", false, "§17.13: not inside 'standard'" },
	{ "nda", "see you Monday for the calendar", false, "not inside 'Monday' or 'calendar'" },
	{ "NDA", "two NDAs were signed", true, "plural s" },
	{ "NDA", "NDA.", true, "followed by punctuation" },
	{ "nda", "(nda)", true, "between parentheses" },
	{ "patch", "apply the patches now", true, "plural es" },
	{ "exploit", "known exploits exist", true, "plural s" },
	{ "exploit", "the exploitation of", false, "no stem without '*'" },
	{ "exploit*", "the exploitation of", true, "a '*' keyword is a word prefix" },
	{ "exploit*", "unexploited", false, "a prefix still needs its start boundary" },
	{ "cryptograph*", "Cryptographic keys", true, "prefix, case-insensitive" },
	{ "rce", "read the source", false, "not inside 'source'" },
	{ "rce", "an RCE in the parser", true, "the word itself" },
	{ "roi", "android phones", false, "not inside 'android'" },
	{ "ICD-", "code ICD-10 applies", true, "ends in '-': no end boundary" },
	{ "ICD-", "xICD-10", false, "but a start boundary" },
	{ "CVE", "CVE-2021-44228", true, "'-' is a boundary" },
	{ "P&L statement", "our p&l statement for Q3", true, "punctuation inside" },
	{ "penetration test", "a penetration\n  test of", true, "whitespace runs match any whitespace" },
	{ "penetration test", "a penetrationtest", false, "but whitespace is needed" },
	{ "title for this chat", "Generate a title for this chat", true, "multi-word" },
	{ "diagnosis", "überdiagnosis", false, "non-ASCII letters are word characters" },
	{ "diagnosis", "\xc3\xbc" "diagnosis", false, "a byte >= 0x80 before is a word character" },
	{ "diagnosis", "diagnosis\xc3\xa9", false, "and after" },
	{ "diagnosis", "\xe2\x86\x92 diagnosis \xe2\x86\x90", true, "unicode around, separated by spaces" },
	{ "\xc3\x84rzte", "die \xc3\xa4rzte sagen", true, "Latin-1 letters fold (\xc3\x84 = \xc3\xa4)" },
	{ "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2", "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 world", true,
	  "Cyrillic folds" },
	{ "gdpr", "GDPR_compliance", false, "'_' is a word character" },
	{ "gdpr", "gdpr2", false, "a digit is a word character" },
	{ "symptoms", "symptom", false, "a shorter text does not match" },
	{ "key", "", false, "empty text" },
	{ "  private key  ", "my Private Key leaked", true, "the keyword is trimmed" },
	{ "xss", "\xff\xfe xss \xc3", true, "invalid UTF-8 around is tolerated" },
	{ "aa", "aaa aa", true, "a later occurrence after a failed one" },
	{ "-----begin", "-----BEGIN RSA", true, "starts with punctuation: no start boundary" },
};

START_TEST(keyword_match)
{
	ck_assert_msg(ruleset_keyword_match(kw_cases[_i].keyword, kw_cases[_i].text, strlen(kw_cases[_i].text)) ==
			      kw_cases[_i].hit,
		      "'%s' in '%s': want %s (%s)", kw_cases[_i].keyword, kw_cases[_i].text, kw_cases[_i].hit ? "hit" : "miss",
		      kw_cases[_i].why);
}
END_TEST

START_TEST(keyword_edges)
{
	ck_assert(!ruleset_keyword_match("*", "anything", 8));
	ck_assert(!ruleset_keyword_match(NULL, "x", 1));
	ck_assert(!ruleset_keyword_match("x", NULL, 0));
	/* the length is explicit: a keyword after the given length does not count */
	ck_assert(!ruleset_keyword_match("nda", "the nda", 5));
	ck_assert(ruleset_keyword_match("nda", "the nda", 7));
	/* a keyword at the very end of a huge text */
	size_t n = 1 << 20;
	char *big = malloc(n + 8);
	memset(big, 'x', n);
	memcpy(big + n, " nda", 5);
	ck_assert(ruleset_keyword_match("nda", big, n + 4));
	ck_assert(!ruleset_keyword_match("xnda", big, n + 4));
	free(big);
}
END_TEST

/* --- role patterns ------------------------------------------------------------------------------------------ */

START_TEST(pattern_basic)
{
	char err[256] = "";
	ck_assert_int_eq(ruleset_pattern_match("security.*(auditor|analyst)", "You are a SECURITY Auditor.", 27, err, sizeof err), 1);
	ck_assert_int_eq(ruleset_pattern_match("security.*(auditor|analyst)", "security only", 13, err, sizeof err), 0);
	ck_assert_int_eq(ruleset_pattern_match("\xc3\xa4rzte", "\xc3\x84RZTE", 6, err, sizeof err), 1);   /* UTF caseless */
	ck_assert_int_eq(ruleset_pattern_match("^a.c$", "a\xe2\x82\xac" "c", 5, err, sizeof err), 1);      /* '.' is a code point */
	ck_assert_int_eq(ruleset_pattern_match("x", "\xff\xfex", 3, err, sizeof err), 1);                     /* invalid UTF-8 */
	ck_assert_int_eq(ruleset_pattern_match("ab$", "ab\n", 3, err, sizeof err), 0);                        /* '$' as in JS */
	ck_assert_int_eq(ruleset_pattern_match("(a", "a", 1, err, sizeof err), -1);
	ck_assert_str_eq(err, "invalid regular expression at offset 2: missing closing parenthesis");
}
END_TEST

START_TEST(pattern_catastrophic)
{
	size_t n = 100 * 1024;
	char *text = malloc(n + 1);
	memset(text, 'a', n - 1);
	text[n - 1] = '!';
	text[n] = '\0';
	char err[256];
	int64_t t0 = clock_monotonic_us();
	ck_assert_int_eq(ruleset_pattern_match("(a+)+$", text, n, err, sizeof err), 0);
	int64_t us = clock_monotonic_us() - t0;
	ck_assert_msg(us < 1000000, "(a+)+$ on 100 KB took %lld us", (long long)us);
	/* 20 KB of runs just short of the limit at every start position (the worst case: ~0.1 s; a role sees
	 * at most 4 KB) */
	n = 20 * 1024;
	text[n] = '\0';
	for (size_t i = 0; i < n; i++)
		text[i] = i % 13 == 12 || i == n - 1 ? '!' : 'a';
	t0 = clock_monotonic_us();
	ck_assert_int_eq(ruleset_pattern_match("(a+)+$", text, n, err, sizeof err), 0);
	us = clock_monotonic_us() - t0;
	ck_assert_msg(us < 2000000, "(a+)+$ on short runs took %lld us", (long long)us);
	free(text);
}
END_TEST

/* --- the default rule set ------------------------------------------------------------------------------------ */

START_TEST(default_doc)
{
	json_t *doc = ruleset_default_doc();
	ck_assert_str_eq(sget(doc, "name"), "\"Default Rule Set\"");
	ck_assert_str_eq(sget(doc, "isGlobalDefault"), "true");
	ck_assert_str_eq(sget(doc, "isDefault"), "true");
	ck_assert_str_eq(sget(doc, "signalWeights.contentKeywords"), "0.62");
	ck_assert_str_eq(sget(doc, "turnUpgrade.enabled"), "false");
	ck_assert_str_eq(sget(doc, "classifier.contextLimitTokens"), "6000");
	ck_assert_int_eq((int)json_array_size(json_object_get(doc, "keywordRules")), 5);
	ck_assert_int_eq((int)json_array_size(json_object_get(doc, "systemPromptRoles")), 6);
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(doc, "keywordRules"), i, r) {
		ck_assert_str_eq(sget(r, "searchIn"), "\"user\"");
		ck_assert_int_eq((int)strlen(json_string_value(json_object_get(r, "_id"))), 24);
	}
	ck_assert_str_eq(sget(json_array_get(json_object_get(doc, "keywordRules"), 4), "effect.tierMax"), "\"micro\"");
	ck_assert_str_eq(sget(json_array_get(json_object_get(doc, "systemPromptRoles"), 0), "effect.tierMin"), "\"high\"");
	/* the seed survives its own validation unchanged (but for isDefault, which a body cannot set) */
	char err[256];
	json_t *n = ruleset_normalise(doc, NULL, err, sizeof err);
	ck_assert_msg(n != NULL, "%s", err);
	json_object_set_new(n, "isDefault", json_true());
	ck_assert_msg(json_equal(n, doc), "normalised seed differs");
	json_decref(n);
	json_decref(doc);

	const struct ruleset *b = ruleset_builtin();
	ck_assert_ptr_eq(b, ruleset_builtin());
	ck_assert_str_eq(b->name, "Default Rule Set");
	ck_assert(b->global_default && b->is_default);
	ck_assert_int_eq(b->thr_micro, 150);
	ck_assert_int_eq(b->thr_always_high, 50000);
	ck_assert_double_eq_tol(b->w_content_keywords, 0.62, 1e-9);
	ck_assert_double_eq_tol(b->confidence_threshold, 0.65, 1e-9);
	ck_assert_int_eq(b->context_limit_tokens, 6000);
	ck_assert_int_eq(b->context_strategy, RS_CTX_TRUNCATE);
	ck_assert(!b->turn_upgrade);
	ck_assert_int_eq(b->cost_mode, ROUTE_COST_BALANCED);
	ck_assert_int_eq(b->tier_boost, 0);
	ck_assert_str_eq(b->id, "");
}
END_TEST

/* --- ruleset_apply with the default rule set ------------------------------------------------------------ */

static void
sig(struct route_signals *s, long tokens, const char *system, const char *user)
{
	memset(s, 0, sizeof *s);
	s->total_tokens = tokens;
	s->conversation_turns = 1;
	snprintf(s->system_prompt, sizeof s->system_prompt, "%s", system ? system : "");
	snprintf(s->last_user, sizeof s->last_user, "%s", user ? user : "");
}

static const struct {
	const char *why;
	long tokens;
	const char *system, *user;
	bool images;
	unsigned domains;
	const char *tier, *category, *domain, *source;
	double confidence;
	bool prerouted;
} apply_cases[] = {
	{ "'Hello': the original's example", 11, NULL, "Hello", false, 0, "micro", "", "", "token_threshold", 0.28, false },
	{ "minimal band", 400, NULL, "x", false, 0, "minimal", "", "", "token_threshold", 0.28, false },
	{ "low band", 2000, NULL, "x", false, 0, "low", "", "", "token_threshold", 0.28, false },
	{ "medium band", 15000, NULL, "x", false, 0, "medium", "", "", "token_threshold", 0.28, false },
	{ "over medium: advanced", 15001, NULL, "x", false, 0, "advanced", "", "", "token_threshold", 0.28, false },
	{ "always-high", 50000, NULL, "x", false, 0, "high", "", "", "token_threshold_high", 0.4, false },
	{ "chat title", 20, NULL, "generate a title for this chat", false, 0, "micro", "chat_title_generation", "",
	  "keyword_rule:Chat Title Generation", 0.62, false },
	{ "chat title with many tokens: always-high never lowers", 60000, NULL, "Reply with a title", false, 0, "high",
	  "chat_title_generation", "", "keyword_rule:Chat Title Generation", 0.62, false },
	{ "security auditor: a hint", 30, "You are a security auditor reviewing code.", "check this", false, 0, "high",
	  "code_security_review", "security", "system_prompt_role:Security Auditor", 0.5, false },
	{ "customer support role", 30, "You are a friendly customer support agent", "hi", false, 0, "minimal",
	  "smalltalk_simple", "", "system_prompt_role:Customer Support", 0.5, false },
	{ "coding agent role", 30, "You are opencode, an interactive CLI tool", "fix it", false, 0, "medium", "swe_agentic",
	  "tech", "system_prompt_role:Coding Agent / SWE", 0.5, false },
	{ "image: vision_simple, low, not pre-routed", 300, NULL, "what is this?", true, 0, "low", "vision_simple", "",
	  "image_input", 0.5, false },
	{ "big image request: vision_complex", 2500, NULL, "describe", true, 0, "low", "vision_complex", "", "image_input",
	  0.5, false },
	{ "image + role: the role's 0.5 is not above the image's 0.5", 300, "You are a security auditor", "look", true, 0,
	  "low", "vision_simple", "", "image_input", 0.5, false },
	{ "security keywords (2 of them)", 100, NULL, "Is this XSS a vulnerability?", false, 0, "high",
	  "code_security_review", "security", "keyword_rule:Security Escalation", 0.62, false },
	{ "one security keyword is not enough", 100, NULL, "Is this XSS bad?", false, 0, "micro", "", "", "token_threshold",
	  0.28, false },
	{ "keyword beats role (0.62 > 0.5)", 100, "You are a security auditor", "generate a title for the chat", false, 0,
	  "micro", "chat_title_generation", "security", "keyword_rule:Chat Title Generation", 0.62, false },
	{ "NDA in 'standard' is not legal (§17.13)", 100, NULL, "the standard regulation", false, 0, "micro", "", "",
	  "token_threshold", 0.28, false },
	{ "NDA + regulation is legal", 100, NULL, "an NDA and a regulation", false, 0, "advanced", "legal_analysis", "legal",
	  "keyword_rule:Legal / Compliance", 0.62, false },
	{ "medical: ICD-10 and dosage", 100, NULL, "ICD-10 code and the dosage", false, 0, "critical", "medical_analysis",
	  "medical", "keyword_rule:Medical / Clinical", 0.62, false },
	{ "keyword rules search the user message only", 100, "diagnosis and dosage", "hi", false, 0, "micro", "", "",
	  "token_threshold", 0.28, false },
	{ "the domain from the signals", 100, NULL, "hi", false, (1u << ROUTE_DOM_LEGAL) | (1u << ROUTE_DOM_FINANCE), "micro",
	  "", "legal", "token_threshold", 0.28, false },
	{ "a rule's domain wins over the signals'", 100, NULL, "XSS and CSRF", false, 1u << ROUTE_DOM_FINANCE, "high",
	  "code_security_review", "security", "keyword_rule:Security Escalation", 0.62, false },
	{ "empty request", 0, NULL, NULL, false, 0, "micro", "", "", "token_threshold", 0.28, false },
};

START_TEST(apply_default)
{
	struct route_signals s;
	struct route_preroute r;
	sig(&s, apply_cases[_i].tokens, apply_cases[_i].system, apply_cases[_i].user);
	s.has_images = apply_cases[_i].images;
	s.domains = apply_cases[_i].domains;
	ruleset_apply(ruleset_builtin(), &s, &r);
	const char *why = apply_cases[_i].why;
	ck_assert_msg(r.tier == route_tier_index(apply_cases[_i].tier), "%s: tier %s", why,
		      r.tier >= 0 ? route_tier_name(r.tier) : "none");
	ck_assert_msg(strcmp(r.category, apply_cases[_i].category) == 0, "%s: category '%s'", why, r.category);
	ck_assert_msg(strcmp(r.domain, apply_cases[_i].domain) == 0, "%s: domain '%s'", why, r.domain);
	ck_assert_msg(strcmp(r.source, apply_cases[_i].source) == 0, "%s: source '%s'", why, r.source);
	ck_assert_msg(r.confidence > apply_cases[_i].confidence - 1e-9 && r.confidence < apply_cases[_i].confidence + 1e-9,
		      "%s: confidence %g", why, r.confidence);
	ck_assert_msg(r.prerouted == apply_cases[_i].prerouted, "%s: prerouted %d", why, r.prerouted);
}
END_TEST

/* --- ruleset_apply with rule sets of our own ------------------------------------------------------------- */

static struct ruleset *
compile(const char *body)
{
	char err[256];
	json_t *b = J(body);
	json_t *doc = ruleset_normalise(b, NULL, err, sizeof err);
	ck_assert_msg(doc != NULL, "%s: %s", body, err);
	struct ruleset *rs = ruleset_compile(doc, err, sizeof err);
	ck_assert_msg(rs != NULL, "%s: %s", body, err);
	json_decref(doc);
	json_decref(b);
	return rs;
}

START_TEST(apply_custom)
{
	struct route_signals s;
	struct route_preroute r;

	/* schema default weights: keywords (0.85) pre-route; first matching rule wins; searchIn all / system */
	struct ruleset *rs = compile("{\"name\":\"k\",\"keywordRules\":["
				     "{\"name\":\"off\",\"enabled\":false,\"keywords\":[\"alpha\"],\"effect\":{\"category\":\"off\"}},"
				     "{\"name\":\"sys\",\"keywords\":[\"beta\"],\"searchIn\":\"system\",\"effect\":{\"tierMin\":\"ultra\"}},"
				     "{\"name\":\"first\",\"keywords\":[\"alpha\"],\"effect\":{\"category\":\"a1\",\"tierMin\":\"low\"}},"
				     "{\"name\":\"second\",\"keywords\":[\"alpha\"],\"effect\":{\"category\":\"a2\"}},"
				     "{\"name\":\"both\",\"match\":\"all\",\"keywords\":[\"gamma\",\"delta*\"],"
				     "\"effect\":{\"tierMin\":\"medium\",\"tierMax\":\"medium\",\"domain\":\"science\"}}]}");
	sig(&s, 10, "beta in system", "alpha");
	ruleset_apply(rs, &s, &r);
	ck_assert_str_eq(r.source, "keyword_rule:sys");
	ck_assert_int_eq(r.tier, route_tier_index("ultra"));
	ck_assert(r.prerouted);
	ck_assert_double_eq_tol(r.confidence, 0.85, 1e-9);
	sig(&s, 10, "", "alpha beta");
	ruleset_apply(rs, &s, &r);
	ck_assert_str_eq(r.source, "keyword_rule:first");
	ck_assert_str_eq(r.category, "a1");
	ck_assert_int_eq(r.tier, route_tier_index("low"));
	sig(&s, 10, "delta-force", "gamma only");   /* searchIn all: user + " " + system */
	ruleset_apply(rs, &s, &r);
	ck_assert_str_eq(r.source, "keyword_rule:both");
	ck_assert_str_eq(r.domain, "science");
	ck_assert_int_eq(r.tier, route_tier_index("medium"));
	sig(&s, 10, "", "gamma only");              /* match all needs both */
	ruleset_apply(rs, &s, &r);
	ck_assert_str_eq(r.source, "token_threshold");
	ck_assert(!r.prerouted);
	ruleset_free(rs);

	/* turn upgrade, thresholds not used, cost mode and boost carried, a low confidence threshold */
	rs = compile("{\"name\":\"t\",\"turnUpgrade\":{\"enabled\":true,\"threshold\":3},\"tokenThresholds\":{\"micro\":null,"
		     "\"minimal\":null},\"classifier\":{\"confidenceThreshold\":0.2,\"contextStrategy\":\"metadata_only\"},"
		     "\"costMode\":\"quality\",\"tierBoost\":-1}");
	ck_assert_int_eq(rs->cost_mode, ROUTE_COST_QUALITY);
	ck_assert_int_eq(rs->tier_boost, -1);
	ck_assert_int_eq(rs->context_strategy, RS_CTX_METADATA_ONLY);
	ck_assert_int_eq(rs->thr_micro, -1);
	sig(&s, 10, NULL, "hi");
	s.conversation_turns = 3;
	ruleset_apply(rs, &s, &r);
	ck_assert_int_eq(r.tier, route_tier_index("medium"));   /* low (micro, minimal unused) + 1 turn */
	ck_assert(r.prerouted);                                  /* 0.28 >= 0.2 */
	s.conversation_turns = 2;
	ruleset_apply(rs, &s, &r);
	ck_assert_int_eq(r.tier, route_tier_index("low"));
	ruleset_free(rs);

	/* no thresholds at all and few tokens: no tier; a zero token weight never sets one */
	rs = compile("{\"name\":\"z\",\"tokenThresholds\":{\"micro\":null,\"minimal\":null,\"low\":null,\"medium\":null,"
		     "\"alwaysHigh\":null}}");
	sig(&s, 100, NULL, "hi");
	ruleset_apply(rs, &s, &r);
	ck_assert_int_eq(r.tier, ROUTE_TIER_NONE);
	ck_assert_str_eq(r.source, "");
	sig(&s, 20000, NULL, "hi");
	ruleset_apply(rs, &s, &r);
	ck_assert_int_eq(r.tier, route_tier_index("advanced"));   /* over the default medium (15000) */
	ruleset_free(rs);
	rs = compile("{\"name\":\"w\",\"signalWeights\":{\"tokenCount\":0}}");
	sig(&s, 10, NULL, "hi");
	ruleset_apply(rs, &s, &r);
	ck_assert_int_eq(r.tier, ROUTE_TIER_NONE);
	ruleset_free(rs);

	/* turn upgrade of critical stays critical; role with weight below the cap */
	rs = compile("{\"name\":\"c\",\"turnUpgrade\":{\"threshold\":1},\"signalWeights\":{\"systemPromptRole\":0.3},"
		     "\"systemPromptRoles\":[{\"name\":\"doc\",\"pattern\":\"\\\\bdoctor\\\\b\",\"effect\":{\"tierMin\":\"critical\"}}]}");
	sig(&s, 10, "You are a Doctor.", "hi");
	ruleset_apply(rs, &s, &r);
	ck_assert_int_eq(r.tier, route_tier_index("critical"));
	ck_assert_double_eq_tol(r.confidence, 0.3, 1e-9);
	ck_assert_str_eq(r.source, "system_prompt_role:doc");
	sig(&s, 10, "You are a doctors' aide", "hi");               /* \b: no match, token threshold */
	ruleset_apply(rs, &s, &r);
	ck_assert_str_eq(r.source, "token_threshold");
	ck_assert_int_eq(r.tier, route_tier_index("minimal"));     /* micro + 1 turn */
	ruleset_free(rs);

	ruleset_apply(NULL, &s, &r);
	ck_assert_int_eq(r.tier, ROUTE_TIER_NONE);
	ck_assert(!r.prerouted);
}
END_TEST

START_TEST(apply_catastrophic_role)
{
	/* a hostile role pattern on the longest system prompt the signals keep: no hang, no match */
	struct ruleset *rs = compile("{\"name\":\"h\",\"systemPromptRoles\":[{\"name\":\"evil\",\"pattern\":\"(a+)+$\"},"
				     "{\"name\":\"evil2\",\"pattern\":\"(x+x+)+y\"}]}");
	struct route_signals s;
	struct route_preroute r;
	sig(&s, 10, NULL, "hi");
	memset(s.system_prompt, 'a', sizeof s.system_prompt - 2);
	s.system_prompt[sizeof s.system_prompt - 2] = '!';
	s.system_prompt[sizeof s.system_prompt - 1] = '\0';
	int64_t t0 = clock_monotonic_us();
	ruleset_apply(rs, &s, &r);
	ck_assert_msg(clock_monotonic_us() - t0 < 500000, "took %lld us", (long long)(clock_monotonic_us() - t0));
	ck_assert_str_eq(r.source, "token_threshold");
	ruleset_free(rs);
}
END_TEST

START_TEST(compile_rejects)
{
	char err[256] = "";
	json_t *doc = J("{\"name\":\"x\",\"systemPromptRoles\":[{\"name\":\"r\",\"pattern\":\"[\"}]}");
	ck_assert_ptr_null(ruleset_compile(doc, err, sizeof err));
	ck_assert_str_eq(err, "systemPromptRoles[0].pattern: invalid regular expression at offset 1: missing terminating ] "
			      "for character class");
	json_decref(doc);
	ck_assert_ptr_null(ruleset_compile(NULL, err, sizeof err));
	/* a stored document keeps its _id and isDefault; no sub-_ids are invented when compiling */
	doc = J("{\"_id\":\"0123456789abcdef01234567\",\"name\":\"s\",\"isDefault\":true,\"tenantId\":\"aaaaaaaaaaaaaaaaaaaaaaaa\","
		"\"keywordRules\":[{\"name\":\"r\",\"keywords\":[\"k\"]}],\"createdAt\":\"2026-01-01T00:00:00.000Z\"}");
	struct ruleset *rs = ruleset_compile(doc, err, sizeof err);
	ck_assert_msg(rs != NULL, "%s", err);
	ck_assert_str_eq(rs->id, "0123456789abcdef01234567");
	ck_assert_str_eq(rs->tenant_id, "aaaaaaaaaaaaaaaaaaaaaaaa");
	ck_assert(rs->is_default);
	ck_assert(!rs->global_default);
	ck_assert_double_eq_tol(rs->w_content_keywords, 0.85, 1e-9);
	ck_assert(rs->turn_upgrade);
	ruleset_free(rs);
	ruleset_free(NULL);
	json_decref(doc);
}
END_TEST

START_TEST(apply_speed)
{
	/* the default rule set on the longest texts the signals keep (1000 and 800 characters), with "you are"
	 * 36 times for the role patterns to backtrack over: well inside the router's budget */
	struct route_signals s;
	struct route_preroute r;
	sig(&s, 3000, NULL, NULL);
	for (size_t i = 0; i < ROUTE_SYSTEM_CHARS; i++)
		s.system_prompt[i] = "You are a helpful engineer. "[i % 28];
	for (size_t i = 0; i < ROUTE_USER_CHARS; i++)
		s.last_user[i] = "please review this code for me "[i % 31];
	const struct ruleset *b = ruleset_builtin();
	ruleset_apply(b, &s, &r);
	int64_t t0 = clock_monotonic_us();
	for (int i = 0; i < 200; i++)
		ruleset_apply(b, &s, &r);
	int64_t per = (clock_monotonic_us() - t0) / 200;
	ck_assert_msg(per < 200, "%lld us per apply", (long long)per);   /* ~20 us here; generous for sanitizers */
	ck_assert_str_eq(r.source, "token_threshold");
}
END_TEST

static Suite *
ruleset_suite(void)
{
	Suite *s = suite_create("ruleset");
	TCase *tc = tcase_create("normalise");
	tcase_add_loop_test(tc, normalise_rejects, 0, (int)(sizeof bad_bodies / sizeof bad_bodies[0]));
	tcase_add_test(tc, normalise_too_many);
	tcase_add_test(tc, normalise_defaults);
	tcase_add_test(tc, normalise_put_merge);
	suite_add_tcase(s, tc);
	tc = tcase_create("match");
	tcase_add_loop_test(tc, keyword_match, 0, (int)(sizeof kw_cases / sizeof kw_cases[0]));
	tcase_add_test(tc, keyword_edges);
	tcase_add_test(tc, pattern_basic);
	tcase_add_test(tc, pattern_catastrophic);
	suite_add_tcase(s, tc);
	tc = tcase_create("apply");
	tcase_add_test(tc, default_doc);
	tcase_add_loop_test(tc, apply_default, 0, (int)(sizeof apply_cases / sizeof apply_cases[0]));
	tcase_add_test(tc, apply_custom);
	tcase_add_test(tc, apply_catastrophic_role);
	tcase_add_test(tc, compile_rejects);
	tcase_add_test(tc, apply_speed);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(ruleset_suite)
