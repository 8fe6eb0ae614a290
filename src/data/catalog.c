/* catalog.c -- see catalog.h.  The strings are the original program's seeds, verbatim. */
#include "config.h"
#include "data/catalog.h"

#include <string.h>

const char *const catalog_tiers[CATALOG_NTIERS] = {
	"micro", "minimal", "low", "medium", "advanced", "high", "ultra", "critical",
};

int
catalog_tier_index(const char *tier)
{
	if (!tier)
		return -1;
	for (int i = 0; i < CATALOG_NTIERS; i++)
		if (strcmp(catalog_tiers[i], tier) == 0)
			return i;
	return -1;
}

/* A NULL-terminated list of strings with static storage. */
#define LIST(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define EMPTY ((const char *const[]){ NULL })

/* order, key, name, tier, requires vision, description, examples, target system prompt */
const struct catalog_category catalog_categories[] = {
	{ 1, "coding_autocomplete", "Code Autocomplete / FIM", "micro", false,
	  "Fill-in-the-middle (FIM) code completions, inline suggestions, autocomplete. Purely mechanical — no "
	  "reasoning required.",
	  LIST("Complete the function body", "Fill in the missing code", "Inline suggestion"),
	  "" },
	{ 2, "chat_title_generation", "Chat Title Generation", "micro", false,
	  "Generate a short title or label for a conversation (2–5 words). Trivial regardless of conversation "
	  "content.",
	  LIST("Generate a title for this chat", "Reply with a 3-word title", "What should I call this conversation?"),
	  "" },
	{ 10, "smalltalk_simple", "Smalltalk & Simple Questions", "minimal", false,
	  NULL,
	  LIST("Hallo!", "Wie geht's?", "Danke"),
	  "" },
	{ 11, "translation", "Translation", "minimal", false,
	  NULL,
	  LIST("Translate to English", "Was heißt bonjour?"),
	  "" },
	{ 12, "summarization_short", "Short Summarization", "minimal", false,
	  NULL,
	  LIST("Summarize this paragraph", "Key points (< 2000 chars)"),
	  "" },
	{ 13, "classification_extraction", "Classification & Extraction", "minimal", false,
	  NULL,
	  LIST("Extract all names", "Is this positive or negative?"),
	  "" },
	{ 14, "creative_writing_short", "Short Creative Writing", "minimal", false,
	  NULL,
	  LIST("Write a tweet", "Product tagline"),
	  "" },
	{ 15, "vision_simple", "Simple Vision", "minimal", true,
	  NULL,
	  LIST("What does this image show?", "Read text on screenshot"),
	  "" },
	{ 16, "email_professional", "Professional Email", "minimal", false,
	  NULL,
	  LIST("Rewrite email", "Reply to customer"),
	  "" },
	{ 17, "brainstorming", "Brainstorming & Ideation", "minimal", false,
	  "Creative brainstorming, idea generation, quick suggestions",
	  LIST("10 startup ideas", "Blog topics for DevOps", "Names for a product"),
	  "" },
	{ 18, "proofreading", "Proofreading & Grammar", "minimal", false,
	  "Spelling, grammar, punctuation, and style correction",
	  LIST("Fix grammar errors", "Improve sentence flow", "Correct typos"),
	  "" },
	{ 19, "format_convert", "Format & Convert", "minimal", false,
	  "Format conversion between structured data formats",
	  LIST("JSON to YAML", "Markdown to HTML", "XML to CSV"),
	  "" },
	{ 20, "summarization_long", "Long Summarization", "low", false,
	  NULL,
	  LIST("Summarize 10-page report", "Meeting minutes (text >= 2000)"),
	  "" },
	{ 21, "analysis_simple", "Simple Analysis", "low", false,
	  NULL,
	  LIST("Pro/con comparison", "Compare two options"),
	  "" },
	{ 22, "math_simple", "Simple Math", "low", false,
	  NULL,
	  LIST("Calculate compound interest", "Solve equation"),
	  "" },
	{ 23, "fact_check_verification", "Fact Check & Verification", "low", false,
	  NULL,
	  LIST("Is this claim correct?", "Verify this information"),
	  "" },
	{ 24, "conversation_roleplay", "Conversation & Roleplay", "low", false,
	  NULL,
	  LIST("Play customer advisor", "Simulate interview"),
	  "" },
	{ 25, "coding_simple", "Simple Coding", "low", false,
	  NULL,
	  LIST("Python sort function", "RegEx for email (< 30 lines)"),
	  "You are an expert software engineer. Write clean, idiomatic code. Be concise — show the solution, "
	  "not a lecture." },
	{ 26, "coding_medium", "Medium Coding", "medium", false,
	  NULL,
	  LIST("Code review", "Write unit tests", "Fix bug"),
	  "You are an expert software engineer. Prefer idiomatic code, call out edge cases, and include "
	  "minimal but complete examples. When reviewing code, focus on correctness and maintainability." },
	{ 27, "sql_generation", "SQL Generation", "low", false,
	  NULL,
	  LIST("Write SQL query", "JOINs across 3 tables"),
	  "" },
	{ 28, "data_transformation", "Data Transformation", "low", false,
	  NULL,
	  LIST("CSV to JSON", "Normalize data"),
	  "" },
	{ 29, "instruction_following", "Instruction Following", "low", false,
	  "Tasks requiring precise multi-step instruction adherence",
	  LIST("Follow this exact format", "Apply these 5 rules to each item", "Fill in the template"),
	  "" },
	{ 30, "function_calling", "Function Calling & Structured Output", "low", false,
	  "Generate structured JSON/tool call outputs from natural language",
	  LIST("Extract fields as JSON", "Call the search_web function", "Return typed object"),
	  "" },
	{ 31, "devops_infrastructure", "DevOps & Infrastructure", "medium", false,
	  "CI/CD configs, Dockerfiles, Kubernetes manifests, shell scripts",
	  LIST("Write a Dockerfile", "GitHub Actions workflow", "Helm chart values"),
	  "" },
	{ 32, "qa_testing", "QA & Test Writing", "medium", false,
	  "Test cases, QA scripts, test plans, assertions",
	  LIST("Write Playwright test", "Unit test for this function", "Test plan for login flow"),
	  "" },
	{ 33, "code_explanation", "Code Explanation", "low", false,
	  "Explain what code does — reading/understanding only, no generation or modification",
	  LIST("What does this function do?", "Explain this algorithm", "Walk me through this class"),
	  "" },
	{ 34, "error_debugging", "Error & Debug Analysis", "medium", false,
	  "Analyzing error messages, stack traces, and runtime failures to identify root cause",
	  LIST("Why does this throw a NullPointerException?", "Analyze this stack trace",
	       "What does this error mean?"),
	  "You are a senior debugging specialist. Analyze the error systematically: identify root cause, "
	  "explain why it happens, and provide a concrete fix. If the stack trace points to a library issue, "
	  "say so." },
	{ 40, "creative_writing_long", "Long Creative Writing", "medium", false,
	  NULL,
	  LIST("1000-word blog post", "Product story", "Whitepaper"),
	  "" },
	{ 41, "tool_use_agentic", "Tool Use & Agentic", "medium", false,
	  NULL,
	  LIST("Orchestrate API calls", "Autonomous research"),
	  "" },
	{ 42, "vision_complex", "Complex Vision", "medium", true,
	  NULL,
	  LIST("Analyze chart trends", "Evaluate architecture diagram"),
	  "" },
	{ 43, "document_qa", "Document Q&A", "medium", false,
	  NULL,
	  LIST("Question about PDF", "Explain contract clause"),
	  "" },
	{ 44, "planning_scheduling", "Planning & Scheduling", "medium", false,
	  NULL,
	  LIST("Create project plan", "Sprint planning"),
	  "" },
	{ 45, "prompt_engineering", "Prompt Engineering", "medium", false,
	  NULL,
	  LIST("Improve system prompt", "Create few-shot examples"),
	  "" },
	{ 46, "multilingual_complex", "Complex Multilingual", "medium", false,
	  NULL,
	  LIST("Localization with cultural context", "Simultaneous translation"),
	  "" },
	{ 47, "data_analysis", "Data Analysis & Statistics", "medium", false,
	  "Statistical analysis, pattern detection, data interpretation",
	  LIST("Analyze sales trends", "Find anomalies in dataset", "Interpret A/B test results"),
	  "" },
	{ 48, "stem_science", "STEM & Science", "medium", false,
	  "Physics, chemistry, biology, engineering problem solving",
	  LIST("Explain quantum entanglement", "Calculate reaction kinetics", "Solve thermodynamics problem"),
	  "" },
	{ 49, "api_integration", "API & Integration Design", "medium", false,
	  "API design, OpenAPI specs, integration patterns, webhooks",
	  LIST("Design REST API for e-commerce", "OpenAPI spec for auth service", "Webhook integration guide"),
	  "" },
	{ 60, "analysis_complex", "Complex Analysis", "advanced", false,
	  NULL,
	  LIST("Go-to-market strategy", "Market analysis"),
	  "" },
	{ 61, "coding_complex", "Complex Coding", "advanced", false,
	  NULL,
	  LIST("Architecture design", "Refactoring", "Complex bug fix"),
	  "You are a principal-level software engineer. Think through architecture trade-offs, consider "
	  "scalability and maintainability, and write production-grade code. Call out potential pitfalls "
	  "before they become problems." },
	{ 62, "math_complex", "Complex Math", "advanced", false,
	  NULL,
	  LIST("Optimization with constraints", "Linear algebra proof"),
	  "" },
	{ 63, "reasoning_deep", "Deep Reasoning", "advanced", false,
	  NULL,
	  LIST("Multi-step logic puzzle", "Complex ethical reasoning"),
	  "" },
	{ 64, "long_context_processing", "Long Context Processing", "advanced", false,
	  "Tasks requiring 50k+ token context windows (large codebases, long documents)",
	  LIST("Analyze this 200-page report", "Review entire codebase", "Summarize long meeting transcript"),
	  "" },
	{ 65, "system_design", "System Design", "advanced", false,
	  NULL,
	  LIST("Architecture for 1M users", "Tech stack decision"),
	  "You are a systems architect. Consider scalability, reliability, cost, and operational complexity. "
	  "Use diagrams or structured lists when they clarify trade-offs. Be opinionated — recommend a "
	  "concrete path, not just options." },
	{ 66, "research_scientific", "Scientific Research", "advanced", false,
	  NULL,
	  LIST("Analyze 3 papers for contradictions", "Research design"),
	  "" },
	{ 67, "legal_analysis", "Legal Analysis", "advanced", false,
	  "Legal questions, contract analysis, compliance, regulatory interpretation",
	  LIST("Review NDA clause", "GDPR compliance check", "Liability assessment"),
	  "You are a careful legal analyst. Cite jurisdiction where relevant and explicitly flag when a "
	  "question requires a licensed attorney. Distinguish between general legal information and specific "
	  "legal advice." },
	{ 68, "financial_analysis", "Financial Analysis", "advanced", false,
	  "Financial modeling, investment analysis, portfolio evaluation, risk assessment",
	  LIST("DCF valuation", "Portfolio risk", "P&L interpretation"),
	  "" },
	{ 70, "swe_agentic", "Agentic Software Engineering", "high", false,
	  "Autonomous multi-step software engineering (entire features, refactors, bug triage)",
	  LIST("Implement full CRUD feature", "Autonomous bug fix across files", "Refactor module with tests"),
	  "You are an autonomous software engineering agent. Plan before coding, break complex tasks into "
	  "steps, write tests alongside implementation, and verify your own output. Prefer small, reviewable "
	  "changes over monolithic rewrites." },
	{ 71, "code_security_review", "Security & Code Audit", "high", false,
	  "Security vulnerability detection, threat modeling, SAST-style review",
	  LIST("Find SQL injection vulnerabilities", "Threat model for auth system", "OWASP audit of codebase"),
	  "" },
	{ 72, "vision_critical", "Critical Vision", "high", true,
	  NULL,
	  LIST("Medical image analysis", "Technical drawing review"),
	  "" },
	{ 80, "reasoning_formal", "Formal Reasoning & Proofs", "ultra", false,
	  "Formal logic, mathematical proofs, deductive reasoning chains",
	  LIST("Prove correctness of algorithm", "Formal verification", "Complex logic puzzle"),
	  "" },
	{ 90, "sensitive_critical", "Sensitive & Critical", "critical", false,
	  NULL,
	  LIST("Legal contract review", "Tax implications"),
	  "This request has been classified as sensitive or critical. Prioritize accuracy over speed. State "
	  "your confidence level, flag assumptions, and recommend human review for high-stakes decisions." },
	{ 91, "medical_analysis", "Medical & Clinical Analysis", "critical", false,
	  "Clinical analysis, medical literature, diagnoses, drug interactions — requires high accuracy",
	  LIST("Drug interaction check", "Differential diagnosis", "Clinical trial interpretation"),
	  "You are a medical information assistant. Cite sources and evidence levels where possible. Always "
	  "include the disclaimer that your output is informational, not a substitute for professional medical "
	  "advice, and recommend consulting a qualified healthcare provider for clinical decisions." },
};
const size_t catalog_ncategories = sizeof catalog_categories / sizeof catalog_categories[0];

/* id, name, description, color, icon, categories */
const struct catalog_preset catalog_presets[] = {
	{ "software_development", "Software Development",
	  "Optimize routing for coding, debugging, code review, SQL, DevOps, and architecture tasks",
	  "blue", "code",
	  LIST("coding_complex", "coding_medium", "coding_simple", "swe_agentic", "sql_generation",
	       "devops_infrastructure", "qa_testing", "code_security_review", "system_design", "function_calling",
	       "data_transformation", "api_integration") },
	{ "customer_support", "Customer Support",
	  "Fast, friendly responses for chat support, email, FAQ, ticket triage, and classification",
	  "green", "headset",
	  LIST("smalltalk_simple", "email_professional", "classification_extraction", "conversation_roleplay",
	       "fact_check_verification", "translation", "summarization_short", "brainstorming", "proofreading") },
	{ "research_analysis", "Research & Analysis",
	  "Deep document analysis, scientific research, complex reasoning, and data interpretation",
	  "violet", "flask",
	  LIST("research_scientific", "document_qa", "analysis_complex", "analysis_simple", "summarization_long",
	       "long_context_processing", "data_analysis", "stem_science", "reasoning_deep", "reasoning_formal",
	       "sensitive_critical", "math_complex") },
	{ "creative_content", "Creative Content",
	  "Marketing copy, blog posts, storytelling, brainstorming, and multilingual content",
	  "orange", "pencil",
	  LIST("creative_writing_long", "creative_writing_short", "brainstorming", "email_professional",
	       "conversation_roleplay", "multilingual_complex", "summarization_short", "proofreading",
	       "prompt_engineering") },
	{ "data_operations", "Data & Operations",
	  "SQL generation, data transformation, statistics, math, and format conversion",
	  "teal", "chart",
	  LIST("sql_generation", "data_transformation", "data_analysis", "math_complex", "math_simple",
	       "format_convert", "classification_extraction", "instruction_following", "function_calling") },
	{ "agentic_workflows", "Agentic Workflows",
	  "Autonomous agents, tool use, multi-step planning, and API integrations",
	  "red", "robot",
	  LIST("tool_use_agentic", "swe_agentic", "planning_scheduling", "api_integration", "function_calling",
	       "reasoning_formal", "coding_complex", "system_design") },
	{ "general_all", "General (All Categories)",
	  "Balanced coverage for all business use cases — enables all 45 categories",
	  "gray", "building",
	  EMPTY },
};
const size_t catalog_npresets = sizeof catalog_presets / sizeof catalog_presets[0];

const struct catalog_category *
catalog_category_find(const char *key)
{
	if (!key)
		return NULL;
	for (size_t i = 0; i < catalog_ncategories; i++)
		if (strcmp(catalog_categories[i].key, key) == 0)
			return &catalog_categories[i];
	return NULL;
}

static json_t *
string_list_json(const char *const *list)
{
	json_t *a = json_array();
	for (; list && *list; list++)
		json_array_append_new(a, json_string(*list));
	return a;
}

json_t *
catalog_category_json(const struct catalog_category *c)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:s, s:b, s:i}",
			 "key", c->key,
			 "name", c->name,
			 "description", c->description ? c->description : "",
			 "costTier", c->tier,
			 "examples", string_list_json(c->examples),
			 "requiresVision", c->requires_vision,
			 "targetSystemPrompt", c->system_prompt,
			 "isBuiltIn", 1,
			 "order", c->order);
}

json_t *
catalog_presets_json(void)
{
	json_t *a = json_array();
	for (size_t i = 0; i < catalog_npresets; i++) {
		const struct catalog_preset *p = &catalog_presets[i];
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}",
						   "id", p->id,
						   "name", p->name,
						   "description", p->description,
						   "color", p->color,
						   "icon", p->icon,
						   "categories", string_list_json(p->categories)));
	}
	return a;
}
