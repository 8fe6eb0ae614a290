/* registry.c -- see registry.h.  The table values are the original program's registry and price lists. */
#include "config.h"
#include "data/registry.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "util/xalloc.h"

/* A NULL-terminated list of strings with static storage. */
#define LIST(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define BENCH(i, c, m, s) i, c, m, s, true
#define NO_BENCH 0, 0, 0, 0, false

/* id, family, vendor, tier,
 * input, output, context window, max output tokens (0 = unknown), priority,
 * categories, openrouter id, patterns, benchmarks (intelligence, coding, math, speed) */
const struct registry_model registry_models[] = {
	{ "claude-opus-4-6", "Claude Opus 4.6", "Anthropic", "ultra",
	  5.0, 25.0, 1000000, 32000, 90,
	  LIST("reasoning_deep", "system_design", "research", "coding_complex", "sensitive_critical", "math_complex",
	       "vision_critical"),
	  "anthropic/claude-opus-4",
	  LIST("claude-opus-4-6", "claude-opus-4.6", "claude-opus46", "anthropic-claude-opus-4-6",
	       "anthropic/claude-opus-4-6", "opus-4-6", "opus46", "opus4-6"),
	  BENCH(93, 89, 88, 25) },
	{ "claude-sonnet-4-6", "Claude Sonnet 4.6", "Anthropic", "high",
	  3.0, 15.0, 1000000, 16000, 75,
	  LIST("analysis_complex", "coding_complex", "tool_use", "creative_long", "document_qa", "planning",
	       "prompt_engineering"),
	  "anthropic/claude-sonnet-4-6",
	  LIST("claude-sonnet-4-6", "claude-sonnet-4.6", "claude-sonnet46", "anthropic/claude-sonnet-4-6",
	       "sonnet-4-6"),
	  BENCH(88, 85, 82, 45) },
	{ "claude-opus-4-5", "Claude Opus 4.5", "Anthropic", "ultra",
	  5.0, 25.0, 1000000, 32000, 88,
	  LIST("reasoning_deep", "system_design", "research", "coding_complex", "sensitive_critical", "math_complex",
	       "vision_critical"),
	  "anthropic/claude-opus-4-5",
	  LIST("claude-opus-4-5", "claude-opus-4.5", "claude-opus45", "anthropic/claude-opus-4-5", "opus-4-5",
	       "claude-opus-4-5-20251101"),
	  BENCH(92, 88, 87, 27) },
	{ "claude-sonnet-4-5", "Claude Sonnet 4.5", "Anthropic", "high",
	  3.0, 15.0, 1000000, 16000, 74,
	  LIST("analysis_complex", "coding_complex", "tool_use", "creative_long", "document_qa", "planning",
	       "prompt_engineering"),
	  NULL,
	  LIST("claude-sonnet-4-5", "claude-sonnet-4.5", "claude-sonnet45", "anthropic/claude-sonnet-4-5",
	       "claude-sonnet-4-5-20250929"),
	  NO_BENCH },
	{ "claude-sonnet-4", "Claude Sonnet 4", "Anthropic", "high",
	  3.0, 15.0, 1000000, 16000, 73,
	  LIST("analysis_complex", "coding_complex", "tool_use", "document_qa", "planning"),
	  NULL,
	  LIST("claude-sonnet-4-20250514", "claude-sonnet-4"),
	  NO_BENCH },
	{ "claude-3-7-sonnet", "Claude 3.7 Sonnet", "Anthropic", "high",
	  3.0, 15.0, 200000, 16000, 73,
	  LIST("analysis_complex", "coding_complex", "tool_use", "document_qa", "planning"),
	  "anthropic/claude-3-7-sonnet",
	  LIST("claude-3-7-sonnet", "claude-3.7-sonnet", "claude37sonnet", "anthropic/claude-3-7-sonnet",
	       "claude-3-7-sonnet-20250219"),
	  BENCH(87, 84, 83, 42) },
	{ "claude-3-haiku", "Claude 3 Haiku", "Anthropic", "minimal",
	  0.25, 1.25, 200000, 4096, 30,
	  LIST("smalltalk", "summarization_short", "classification_extraction", "email", "translation"),
	  "anthropic/claude-3-haiku",
	  LIST("claude-3-haiku", "claude3haiku", "anthropic/claude-3-haiku", "claude-3-haiku-20240307"),
	  BENCH(64, 60, 55, 95) },
	{ "claude-haiku-4-5", "Claude Haiku 4.5", "Anthropic", "low",
	  0.8, 4.0, 200000, 8192, 60,
	  LIST("summarization_long", "classification_extraction", "coding_simple", "translation", "sql", "email",
	       "creative_short"),
	  "anthropic/claude-haiku-4-5",
	  LIST("claude-haiku-4-5", "claude-haiku-4.5", "claude-haiku45", "anthropic/claude-haiku-4-5", "haiku-4-5"),
	  BENCH(73, 69, 65, 92) },
	{ "claude-3-5-sonnet", "Claude 3.5 Sonnet", "Anthropic", "medium",
	  3.0, 15.0, 200000, 8192, 72,
	  LIST("analysis_complex", "coding_complex", "tool_use", "document_qa", "planning"),
	  "anthropic/claude-3.5-sonnet",
	  LIST("claude-3-5-sonnet", "claude-3.5-sonnet", "claude35sonnet", "anthropic/claude-3.5-sonnet",
	       "claude-3-5-sonnet-20241022"),
	  BENCH(86, 87, 79, 55) },
	{ "claude-3-5-haiku", "Claude 3.5 Haiku", "Anthropic", "low",
	  0.8, 4.0, 200000, 8192, 55,
	  LIST("summarization_short", "classification_extraction", "email", "translation"),
	  "anthropic/claude-3.5-haiku",
	  LIST("claude-3-5-haiku", "claude-3.5-haiku", "claude35haiku", "anthropic/claude-3.5-haiku"),
	  BENCH(74, 72, 68, 88) },
	{ "claude-3-opus", "Claude 3 Opus", "Anthropic", "high",
	  15.0, 75.0, 200000, 4096, 80,
	  LIST("reasoning_deep", "research", "system_design", "sensitive_critical"),
	  "anthropic/claude-3-opus",
	  LIST("claude-3-opus", "claude3opus", "anthropic/claude-3-opus", "claude-3-opus-20240229"),
	  BENCH(82, 78, 75, 20) },
	{ "gpt-5", "GPT-5", "OpenAI", "high",
	  1.75, 14.0, 1000000, 100000, 92,
	  LIST("reasoning_deep", "system_design", "research", "coding_complex", "sensitive_critical", "math_complex",
	       "vision_critical", "tool_use"),
	  NULL,
	  LIST("gpt-5", "gpt5", "openai/gpt-5", "gpt-5.2", "gpt-5.3-chat", "gpt-5.3", "gpt-5.1", "gpt-5.2-chat",
	       "gpt-5.3-chat-latest", "gpt-5.2-chat-latest"),
	  NO_BENCH },
	{ "gpt-5.4", "GPT-5.4", "OpenAI", "ultra",
	  2.5, 15.0, 1000000, 100000, 95,
	  LIST("reasoning_deep", "system_design", "research", "coding_complex", "sensitive_critical", "math_complex",
	       "vision_critical"),
	  NULL,
	  LIST("gpt-5.4", "gpt-5-4"),
	  NO_BENCH },
	{ "gpt-5.4-mini", "GPT-5.4 Mini", "OpenAI", "medium",
	  0.75, 4.5, 1000000, 0, 78,
	  LIST("analysis_complex", "coding_complex", "tool_use", "document_qa", "creative_long", "planning"),
	  NULL,
	  LIST("gpt-5.4-mini", "gpt-5-4-mini"),
	  NO_BENCH },
	{ "gpt-5.4-nano", "GPT-5.4 Nano", "OpenAI", "low",
	  0.2, 1.25, 131072, 0, 65,
	  LIST("coding_simple", "summarization_short", "classification_extraction", "translation", "smalltalk_simple"),
	  NULL,
	  LIST("gpt-5.4-nano", "gpt-5-4-nano"),
	  NO_BENCH },
	{ "gpt-5-mini", "GPT-5 Mini", "OpenAI", "medium",
	  1.5, 6.0, 1000000, 0, 74,
	  LIST("analysis_complex", "coding_complex", "tool_use", "document_qa", "creative_long", "planning"),
	  NULL,
	  LIST("gpt-5-mini", "gpt5-mini", "openai/gpt-5-mini", "codex-mini", "codex-mini-latest"),
	  NO_BENCH },
	{ "gpt-5-codex", "GPT-5 Codex", "OpenAI", "ultra",
	  1.75, 14.0, 1000000, 0, 85,
	  LIST("coding_complex", "coding_simple", "tool_use", "system_design"),
	  NULL,
	  LIST("gpt-5.3-codex", "gpt-5.2-codex", "gpt-5.1-codex", "gpt-5-codex", "gpt5-codex", "codex-5"),
	  NO_BENCH },
	{ "gpt-4.1", "GPT-4.1", "OpenAI", "medium",
	  2.0, 8.0, 1000000, 0, 71,
	  LIST("analysis_complex", "coding_complex", "tool_use", "document_qa", "creative_long"),
	  NULL,
	  LIST("gpt-4.1", "gpt-4-1", "gpt41", "openai/gpt-4.1"),
	  NO_BENCH },
	{ "gpt-4.1-mini", "GPT-4.1 Mini", "OpenAI", "low",
	  0.4, 1.6, 1000000, 0, 62,
	  LIST("classification_extraction", "coding_simple", "translation", "summarization_long", "email"),
	  NULL,
	  LIST("gpt-4.1-mini", "gpt-4-1-mini", "gpt41-mini", "openai/gpt-4.1-mini"),
	  NO_BENCH },
	{ "gpt-4.1-nano", "GPT-4.1 Nano", "OpenAI", "minimal",
	  0.1, 0.4, 1000000, 0, 55,
	  LIST("classification_extraction", "translation", "email", "summarization_short"),
	  NULL,
	  LIST("gpt-4.1-nano", "gpt-4-1-nano", "gpt41-nano", "openai/gpt-4.1-nano"),
	  NO_BENCH },
	{ "codex-mini", "Codex Mini", "OpenAI", "medium",
	  1.5, 6.0, 200000, 0, 73,
	  LIST("coding_complex", "coding_simple", "tool_use"),
	  NULL,
	  LIST("codex-mini", "openai/codex-mini"),
	  NO_BENCH },
	{ "gpt-4o", "GPT-4o", "OpenAI", "medium",
	  2.5, 10.0, 128000, 0, 70,
	  LIST("analysis_complex", "coding_complex", "tool_use", "vision_complex", "document_qa", "creative_long"),
	  "openai/gpt-4o",
	  LIST("gpt-4o", "gpt4o", "openai/gpt-4o", "gpt-4o-2024-11-20", "gpt-4o-2024-08-06", "gpt-4o-2024-05-13"),
	  BENCH(87, 90, 77, 60) },
	{ "gpt-4o-mini", "GPT-4o Mini", "OpenAI", "low",
	  0.15, 0.6, 128000, 0, 55,
	  LIST("summarization_long", "classification_extraction", "coding_simple", "sql", "email", "translation"),
	  "openai/gpt-4o-mini",
	  LIST("gpt-4o-mini", "gpt4omini", "openai/gpt-4o-mini"),
	  BENCH(78, 82, 70, 80) },
	{ "o1", "OpenAI o1", "OpenAI", "high",
	  15.0, 60.0, 200000, 0, 85,
	  LIST("reasoning_deep", "math_complex", "coding_complex", "research"),
	  "openai/o1",
	  LIST("openai/o1", "o1-2024-12-17", "o1-preview"),
	  BENCH(92, 91, 96, 12) },
	{ "o1-mini", "OpenAI o1-mini", "OpenAI", "medium",
	  1.1, 4.4, 128000, 0, 65,
	  LIST("reasoning_deep", "math_simple", "coding_medium"),
	  "openai/o1-mini",
	  LIST("o1-mini", "openai/o1-mini"),
	  BENCH(87, 88, 90, 30) },
	{ "o3", "OpenAI o3", "OpenAI", "high",
	  10.0, 40.0, 200000, 0, 88,
	  LIST("reasoning_deep", "math_complex", "system_design", "research"),
	  "openai/o3",
	  LIST("openai/o3", "o3-2025-04-16"),
	  BENCH(95, 94, 98, 8) },
	{ "o3-mini", "OpenAI o3-mini", "OpenAI", "medium",
	  1.1, 4.4, 200000, 0, 67,
	  LIST("reasoning_deep", "math_simple", "coding_medium"),
	  "openai/o3-mini",
	  LIST("o3-mini", "openai/o3-mini"),
	  BENCH(91, 91, 94, 35) },
	{ "o4-mini", "OpenAI o4-mini", "OpenAI", "medium",
	  1.1, 4.4, 200000, 0, 68,
	  LIST("reasoning_deep", "math_complex", "coding_complex"),
	  "openai/o4-mini",
	  LIST("o4-mini", "openai/o4-mini"),
	  BENCH(90, 92, 93, 40) },
	{ "gpt-4-turbo", "GPT-4 Turbo", "OpenAI", "high",
	  10.0, 30.0, 128000, 0, 78,
	  LIST("analysis_complex", "coding_complex", "document_qa", "tool_use"),
	  "openai/gpt-4-turbo",
	  LIST("gpt-4-turbo", "gpt4turbo", "openai/gpt-4-turbo", "gpt-4-turbo-preview", "gpt-4-1106-preview"),
	  BENCH(84, 87, 74, 48) },
	{ "gpt-3.5-turbo", "GPT-3.5 Turbo", "OpenAI", "minimal",
	  0.5, 1.5, 16000, 0, 30,
	  LIST("smalltalk", "summarization_short", "classification_extraction", "email"),
	  "openai/gpt-3.5-turbo",
	  LIST("gpt-3.5-turbo", "gpt35turbo", "openai/gpt-3.5-turbo"),
	  BENCH(68, 70, 58, 90) },
	{ "gemini-2.5-pro", "Gemini 2.5 Pro", "Google", "high",
	  1.25, 10.0, 1000000, 0, 85,
	  LIST("reasoning_deep", "research", "document_qa", "vision_critical", "system_design", "coding_complex",
	       "multilingual"),
	  "google/gemini-2.5-pro-preview",
	  LIST("gemini-2.5-pro", "gemini25pro", "google/gemini-2.5-pro", "gemini-2.5-pro-preview",
	       "gemini-2.5-pro-exp"),
	  BENCH(91, 88, 90, 30) },
	{ "gemini-2.5-flash", "Gemini 2.5 Flash", "Google", "low",
	  0.15, 0.6, 1000000, 0, 60,
	  LIST("summarization_long", "translation", "classification_extraction", "vision_simple", "coding_simple"),
	  "google/gemini-2.5-flash-preview",
	  LIST("gemini-2.5-flash", "gemini25flash", "google/gemini-2.5-flash", "gemini-2.5-flash-preview"),
	  BENCH(83, 82, 82, 75) },
	{ "gemini-2.0-flash", "Gemini 2.0 Flash", "Google", "low",
	  0.1, 0.4, 1000000, 0, 55,
	  LIST("summarization_short", "translation", "classification_extraction", "email"),
	  "google/gemini-2.0-flash-001",
	  LIST("gemini-2.0-flash", "gemini20flash", "google/gemini-2.0-flash", "gemini-2.0-flash-001",
	       "gemini-2.0-flash-exp"),
	  BENCH(80, 78, 75, 85) },
	{ "gemini-1.5-pro", "Gemini 1.5 Pro", "Google", "medium",
	  1.25, 5.0, 2000000, 0, 70,
	  LIST("document_qa", "research", "analysis_complex", "vision_complex"),
	  "google/gemini-pro-1.5",
	  LIST("gemini-1.5-pro", "gemini15pro", "google/gemini-pro-1.5", "gemini-1.5-pro-002",
	       "gemini-1.5-pro-latest"),
	  BENCH(82, 80, 78, 45) },
	{ "gemini-1.5-flash", "Gemini 1.5 Flash", "Google", "minimal",
	  0.075, 0.3, 1000000, 0, 35,
	  LIST("smalltalk", "summarization_short", "translation", "email"),
	  "google/gemini-flash-1.5",
	  LIST("gemini-1.5-flash", "gemini15flash", "google/gemini-flash-1.5", "gemini-1.5-flash-002"),
	  BENCH(75, 73, 70, 85) },
	{ "llama-4-maverick", "Llama 4 Maverick", "Meta", "medium",
	  0.19, 0.85, 1000000, 0, 65,
	  LIST("analysis_complex", "coding_medium", "document_qa", "creative_long"),
	  "meta-llama/llama-4-maverick",
	  LIST("llama-4-maverick", "llama4maverick", "meta-llama/llama-4-maverick", "llama-4-maverick-17b",
	       "llama-4-maverick-instruct"),
	  BENCH(86, 85, 80, 50) },
	{ "llama-4-scout", "Llama 4 Scout", "Meta", "low",
	  0.11, 0.34, 1000000, 0, 50,
	  LIST("summarization_long", "translation", "classification_extraction"),
	  "meta-llama/llama-4-scout",
	  LIST("llama-4-scout", "llama4scout", "meta-llama/llama-4-scout"),
	  BENCH(79, 78, 73, 70) },
	{ "llama-3.3-70b", "Llama 3.3 70B", "Meta", "medium",
	  0.59, 0.79, 128000, 0, 62,
	  LIST("analysis_complex", "coding_medium", "document_qa", "reasoning_deep"),
	  "meta-llama/llama-3.3-70b-instruct",
	  LIST("llama-3.3-70b", "llama33-70b", "meta-llama/llama-3.3-70b", "llama-3.3-70b-instruct"),
	  BENCH(80, 82, 72, 55) },
	{ "llama-3.1-405b", "Llama 3.1 405B", "Meta", "high",
	  3.0, 3.0, 128000, 0, 82,
	  LIST("research", "reasoning_deep", "system_design", "coding_complex"),
	  "meta-llama/llama-3.1-405b-instruct",
	  LIST("llama-3.1-405b", "llama31-405b", "meta-llama/llama-3.1-405b", "llama-3.1-405b-instruct"),
	  BENCH(84, 89, 73, 20) },
	{ "llama-3.1-70b", "Llama 3.1 70B", "Meta", "low",
	  0.35, 0.4, 128000, 0, 50,
	  LIST("analysis_simple", "coding_simple", "summarization_long", "translation"),
	  "meta-llama/llama-3.1-70b-instruct",
	  LIST("llama-3.1-70b", "llama31-70b", "meta-llama/llama-3.1-70b", "llama-3.1-70b-instruct"),
	  BENCH(79, 80, 68, 50) },
	{ "llama-3.1-8b", "Llama 3.1 8B", "Meta", "minimal",
	  0.05, 0.08, 128000, 0, 25,
	  LIST("smalltalk", "summarization_short", "classification_extraction", "email"),
	  "meta-llama/llama-3.1-8b-instruct",
	  LIST("llama-3.1-8b", "llama31-8b", "meta-llama/llama-3.1-8b", "llama-3.1-8b-instruct"),
	  BENCH(66, 70, 57, 92) },
	{ "llama-3.2-90b", "Llama 3.2 90B", "Meta", "medium",
	  0.9, 0.9, 128000, 0, 63,
	  LIST("analysis_complex", "vision_complex", "coding_medium"),
	  "meta-llama/llama-3.2-90b-vision-instruct",
	  LIST("llama-3.2-90b", "llama32-90b", "meta-llama/llama-3.2-90b", "llama-3.2-90b-vision"),
	  BENCH(77, 78, 66, 30) },
	{ "llama-3.2-11b", "Llama 3.2 11B", "Meta", "minimal",
	  0.055, 0.055, 128000, 0, 28,
	  LIST("smalltalk", "vision_simple", "classification_extraction"),
	  "meta-llama/llama-3.2-11b-vision-instruct",
	  LIST("llama-3.2-11b", "llama32-11b", "llama3-2-11b", "meta-llama/llama-3.2-11b"),
	  BENCH(63, 66, 54, 78) },
	{ "llama-3.2-3b", "Llama 3.2 3B", "Meta", "minimal",
	  0.19, 0.19, 128000, 0, 25,
	  LIST("smalltalk", "classification_extraction", "email"),
	  NULL,
	  LIST("llama-3.2-3b", "llama32-3b", "llama3-2-3b", "llama3-2-3b-instruct"),
	  NO_BENCH },
	{ "llama-3.2-1b", "Llama 3.2 1B", "Meta", "minimal",
	  0.13, 0.13, 128000, 0, 20,
	  LIST("smalltalk", "classification_extraction"),
	  NULL,
	  LIST("llama-3.2-1b", "llama32-1b", "llama3-2-1b", "llama3-2-1b-instruct"),
	  NO_BENCH },
	{ "mistral-large-2", "Mistral Large 2", "Mistral", "medium",
	  2.0, 6.0, 128000, 0, 68,
	  LIST("analysis_complex", "coding_complex", "document_qa", "multilingual"),
	  "mistralai/mistral-large",
	  LIST("mistral-large-2", "mistral-large", "mistralai/mistral-large", "mistral-large-2407",
	       "mistral-large-2411"),
	  BENCH(81, 83, 74, 48) },
	{ "mistral-medium-3", "Mistral Medium 3", "Mistral", "low",
	  0.4, 2.0, 128000, 0, 52,
	  LIST("summarization_long", "analysis_simple", "coding_simple", "translation"),
	  "mistralai/mistral-medium-3",
	  LIST("mistral-medium-3", "mistral-medium", "mistralai/mistral-medium"),
	  BENCH(75, 78, 68, 62) },
	{ "mistral-small-3", "Mistral Small 3", "Mistral", "minimal",
	  0.1, 0.3, 32000, 0, 30,
	  LIST("smalltalk", "email", "classification_extraction", "summarization_short"),
	  "mistralai/mistral-small",
	  LIST("mistral-small-3", "mistral-small", "mistralai/mistral-small", "mistral-small-2503",
	       "mistral-small-2409"),
	  BENCH(69, 73, 62, 80) },
	{ "codestral", "Codestral", "Mistral", "low",
	  0.3, 0.9, 256000, 0, 55,
	  LIST("coding_simple", "coding_medium", "sql", "data_transformation"),
	  "mistralai/codestral-2501",
	  LIST("codestral", "mistralai/codestral", "codestral-2501", "codestral-latest"),
	  BENCH(72, 92, 65, 75) },
	{ "mixtral-8x22b", "Mixtral 8x22B", "Mistral", "medium",
	  0.9, 0.9, 64000, 0, 60,
	  LIST("analysis_complex", "coding_medium", "document_qa", "multilingual"),
	  "mistralai/mixtral-8x22b-instruct",
	  LIST("mixtral-8x22b", "mistralai/mixtral-8x22b", "mixtral-8x22b-instruct"),
	  BENCH(77, 80, 70, 40) },
	{ "mixtral-8x7b", "Mixtral 8x7B", "Mistral", "low",
	  0.24, 0.24, 32000, 0, 40,
	  LIST("summarization_long", "translation", "coding_simple", "analysis_simple"),
	  "mistralai/mixtral-8x7b-instruct",
	  LIST("mixtral-8x7b", "mistralai/mixtral-8x7b", "mixtral-8x7b-instruct"),
	  BENCH(72, 74, 62, 60) },
	{ "mistral-nemo", "Mistral Nemo", "Mistral", "minimal",
	  0.15, 0.15, 128000, 0, 28,
	  LIST("smalltalk", "summarization_short", "email", "classification_extraction"),
	  "mistralai/mistral-nemo",
	  LIST("mistral-nemo", "mistralai/mistral-nemo", "mistral-nemo-2407"),
	  BENCH(67, 70, 60, 85) },
	{ "deepseek-v3", "DeepSeek V3", "DeepSeek", "medium",
	  0.27, 1.1, 64000, 0, 65,
	  LIST("coding_complex", "analysis_complex", "math_complex", "reasoning_deep"),
	  "deepseek/deepseek-chat",
	  LIST("deepseek-v3", "deepseek/deepseek-v3", "deepseek-v3-0324", "deepseek-chat", "deepseek/deepseek-chat"),
	  BENCH(88, 91, 89, 42) },
	{ "deepseek-r1", "DeepSeek R1", "DeepSeek", "high",
	  0.55, 2.19, 64000, 0, 83,
	  LIST("reasoning_deep", "math_complex", "coding_complex", "research"),
	  "deepseek/deepseek-r1",
	  LIST("deepseek-r1", "deepseek/deepseek-r1", "deepseek-r1-0528", "deepseek-r1-distill", "deepseek-reasoner"),
	  BENCH(90, 90, 94, 20) },
	{ "deepseek-r1-distill-qwen-32b", "DeepSeek R1 Distill 32B", "DeepSeek", "medium",
	  0.18, 0.18, 64000, 0, 60,
	  LIST("reasoning_deep", "math_simple", "coding_medium"),
	  "deepseek/deepseek-r1-distill-qwen-32b",
	  LIST("deepseek-r1-distill-qwen-32b", "r1-distill-qwen-32b", "deepseek/deepseek-r1-distill-qwen-32b"),
	  BENCH(85, 86, 90, 45) },
	{ "deepseek-v2.5", "DeepSeek V2.5", "DeepSeek", "low",
	  0.14, 0.28, 32000, 0, 48,
	  LIST("coding_simple", "analysis_simple", "summarization_long"),
	  "deepseek/deepseek-chat-v2.5",
	  LIST("deepseek-v2.5", "deepseek-v2-5", "deepseek/deepseek-chat-v2.5"),
	  BENCH(82, 84, 82, 48) },
	{ "qwen3-235b", "Qwen3 235B", "Alibaba", "advanced",
	  0.29, 1.16, 262144, 0, 82,
	  LIST("reasoning_deep", "research", "coding_complex", "multilingual", "math_complex"),
	  "qwen/qwen3-235b-a22b",
	  LIST("qwen3-235b", "qwen/qwen3-235b", "qwen3-235b-a22b", "qwen3-235b-instruct"),
	  BENCH(87, 90, 87, 22) },
	{ "qwen3-32b", "Qwen3 32B", "Alibaba", "low",
	  0.2, 0.79, 16384, 0, 50,
	  LIST("coding_simple", "analysis_simple", "summarization_long", "multilingual"),
	  "qwen/qwen3-32b",
	  LIST("qwen3-32b", "qwen/qwen3-32b", "qwen3-32b-instruct"),
	  BENCH(83, 87, 84, 55) },
	{ "qwq-32b", "QwQ 32B", "Alibaba", "medium",
	  0.2, 0.79, 32768, 0, 62,
	  LIST("reasoning_deep", "math_complex", "coding_medium"),
	  "qwen/qwq-32b",
	  LIST("qwq-32b", "qwen/qwq-32b", "qwq-32b-preview"),
	  BENCH(85, 88, 91, 30) },
	{ "qwen3-coder", "Qwen3 Coder", "Alibaba", "low",
	  0.2, 0.6, 262144, 0, 63,
	  LIST("coding_complex", "coding_medium", "sql", "data_transformation"),
	  "qwen/qwen3-coder",
	  LIST("qwen3-coder", "qwen/qwen3-coder", "qwen3-coder-30b", "qwen3-coder-30b-a3b", "qwen3-coder-480b"),
	  BENCH(80, 93, 78, 38) },
	{ "qwen2.5-72b", "Qwen 2.5 72B", "Alibaba", "medium",
	  0.2, 0.79, 128000, 0, 60,
	  LIST("coding_medium", "analysis_simple", "multilingual", "translation"),
	  "qwen/qwen-2.5-72b-instruct",
	  LIST("qwen2.5-72b", "qwen-2.5-72b", "qwen/qwen-2.5-72b", "qwen2-5-72b"),
	  BENCH(81, 85, 83, 42) },
	{ "command-r-plus", "Command R+", "Cohere", "medium",
	  2.5, 10.0, 128000, 0, 65,
	  LIST("document_qa", "analysis_complex", "research", "tool_use"),
	  "cohere/command-r-plus-08-2024",
	  LIST("command-r-plus", "cohere/command-r-plus", "command-r-plus-08-2024"),
	  BENCH(78, 75, 68, 52) },
	{ "command-r", "Command R", "Cohere", "low",
	  0.15, 0.6, 128000, 0, 48,
	  LIST("summarization_long", "analysis_simple", "document_qa"),
	  "cohere/command-r-08-2024",
	  LIST("command-r", "cohere/command-r", "command-r-08-2024"),
	  BENCH(72, 70, 62, 70) },
	{ "phi-4", "Phi-4", "Microsoft", "low",
	  0.07, 0.14, 16000, 0, 42,
	  LIST("coding_simple", "math_simple", "analysis_simple"),
	  "microsoft/phi-4",
	  LIST("phi-4", "microsoft/phi-4", "phi4"),
	  BENCH(78, 82, 80, 78) },
	{ "phi-3-medium", "Phi-3 Medium", "Microsoft", "minimal",
	  0.17, 0.17, 128000, 0, 28,
	  LIST("smalltalk", "email", "summarization_short"),
	  "microsoft/phi-3-medium-128k-instruct",
	  LIST("phi-3-medium", "microsoft/phi-3-medium", "phi-3-medium-128k"),
	  BENCH(70, 73, 68, 82) },
	{ "nova-pro", "Amazon Nova Pro", "Amazon", "medium",
	  0.26, 4.2, 300000, 5120, 65,
	  LIST("analysis_complex", "coding_complex", "document_qa", "creative_long"),
	  NULL,
	  LIST("nova-pro", "amazon-nova-pro"),
	  NO_BENCH },
	{ "nova-lite", "Amazon Nova Lite", "Amazon", "low",
	  0.078, 0.31, 300000, 5120, 55,
	  LIST("summarization_long", "classification_extraction", "translation", "email"),
	  NULL,
	  LIST("nova-lite", "amazon-nova-lite"),
	  NO_BENCH },
	{ "nova-micro", "Amazon Nova Micro", "Amazon", "minimal",
	  0.046, 0.18, 128000, 5120, 40,
	  LIST("smalltalk", "summarization_short", "classification_extraction", "email"),
	  NULL,
	  LIST("nova-micro", "amazon-nova-micro"),
	  NO_BENCH },
	{ "nova-2-pro", "Amazon Nova 2.0 Pro", "Amazon", "high",
	  1.63, 13.08, 300000, 10000, 78,
	  LIST("reasoning_deep", "analysis_complex", "coding_complex", "vision_complex"),
	  NULL,
	  LIST("nova-2-pro", "nova-2-0-pro", "amazon-nova-2-pro"),
	  NO_BENCH },
	{ "nova-2-lite", "Amazon Nova 2.0 Lite", "Amazon", "low",
	  0.049, 1.64, 300000, 10000, 52,
	  LIST("summarization_long", "classification_extraction", "translation"),
	  NULL,
	  LIST("nova-2-lite", "nova-2-0-lite", "amazon-nova-2-lite"),
	  NO_BENCH },
	{ "nova-2-omni", "Amazon Nova 2.0 Omni", "Amazon", "medium",
	  0.2, 26.0, 300000, 10000, 60,
	  LIST("vision_complex", "vision_critical", "creative_long"),
	  NULL,
	  LIST("nova-2-omni", "nova-2-0-omni", "amazon-nova-2-omni"),
	  NO_BENCH },
	{ "minimax-m2.5", "Minimax M2.5", "Minimax AI", "low",
	  0.18, 0.72, 196000, 0, 48,
	  LIST("creative_long", "translation", "summarization_long"),
	  NULL,
	  LIST("minimax-m2.5", "minimax-m2-5"),
	  NO_BENCH },
	{ "minimax-m2.1", "Minimax M2.1", "Minimax AI", "low",
	  0.36, 0.72, 128000, 0, 45,
	  LIST("creative_long", "translation", "summarization_long"),
	  NULL,
	  LIST("minimax-m2.1", "minimax-m2-1"),
	  NO_BENCH },
	{ "minimax-m2", "Minimax M2", "Minimax AI", "low",
	  0.36, 0.72, 128000, 0, 42,
	  LIST("creative_long", "translation"),
	  NULL,
	  LIST("minimax-m2"),
	  NO_BENCH },
	{ "glm-5", "GLM 5", "Z AI", "high",
	  0.6, 3.84, 128000, 0, 72,
	  LIST("reasoning_deep", "coding_complex", "analysis_complex"),
	  NULL,
	  LIST("glm-5", "glm5"),
	  NO_BENCH },
	{ "glm-4.7", "GLM 4.7", "Z AI", "medium",
	  0.36, 1.32, 128000, 0, 55,
	  LIST("analysis_complex", "coding_simple", "creative_long"),
	  NULL,
	  LIST("glm-4.7", "glm-4-7", "glm47"),
	  NO_BENCH },
	{ "glm-4.7-flash", "GLM 4.7 Flash", "Z AI", "low",
	  0.04, 0.48, 128000, 0, 45,
	  LIST("classification_extraction", "summarization_short", "email"),
	  NULL,
	  LIST("glm-4.7-flash", "glm-4-7-flash", "glm47-flash"),
	  NO_BENCH },
	{ "gpt-oss-120b", "GPT OSS 120B", "OpenAI", "medium",
	  0.1, 0.4, 128000, 0, 58,
	  LIST("analysis_complex", "coding_simple", "document_qa"),
	  NULL,
	  LIST("gpt-oss-120b"),
	  NO_BENCH },
	{ "gpt-oss-20b", "GPT OSS 20B", "OpenAI", "low",
	  0.045, 0.4, 128000, 0, 48,
	  LIST("classification_extraction", "summarization_short", "email"),
	  NULL,
	  LIST("gpt-oss-20b"),
	  NO_BENCH },
	{ "devstral", "Devstral", "Mistral", "medium",
	  0.48, 1.2, 128000, 0, 65,
	  LIST("coding_complex", "coding_simple", "tool_use"),
	  NULL,
	  LIST("devstral", "mistral-devstral", "devstral-2", "devstral-2-123b"),
	  NO_BENCH },
	{ "pixtral-large", "Pixtral Large", "Mistral", "high",
	  2.0, 6.0, 128000, 0, 70,
	  LIST("vision_complex", "vision_critical", "document_qa"),
	  NULL,
	  LIST("pixtral-large", "mistral-pixtral-large"),
	  NO_BENCH },
	{ "kimi-k2", "Kimi K2", "Moonshot AI", "medium",
	  0.72, 1.8, 128000, 0, 60,
	  LIST("analysis_complex", "coding_complex", "creative_long"),
	  NULL,
	  LIST("kimi-k2.5", "kimi-k2", "kimi-k2-5"),
	  NO_BENCH },
	{ "kimi-k2-thinking", "Kimi K2 Thinking", "Moonshot AI", "high",
	  0.72, 3.0, 128000, 0, 72,
	  LIST("reasoning_deep", "math_complex", "coding_complex"),
	  NULL,
	  LIST("kimi-k2-thinking", "kimi-k2.5-thinking"),
	  NO_BENCH },
	{ "nemotron-nano-2", "Nemotron Nano 2", "Nvidia", "minimal",
	  0.036, 0.28, 128000, 0, 35,
	  LIST("classification_extraction", "smalltalk", "email"),
	  NULL,
	  LIST("nemotron-nano-2", "nemotron-nano-2-vl"),
	  NO_BENCH },
	{ "nemotron-3-super", "Nemotron 3 Super 120B", "Nvidia", "low",
	  0.15, 0.65, 128000, 0, 55,
	  LIST("reasoning_deep", "tool_use"),
	  NULL,
	  LIST("nemotron-3-super", "nemotron-super-120b", "nemotron-super-3-120b"),
	  NO_BENCH },
	{ "gemma-3-27b", "Gemma 3 27B", "Google", "low",
	  0.28, 0.46, 128000, 0, 50,
	  LIST("coding_simple", "classification_extraction", "translation"),
	  NULL,
	  LIST("gemma-3-27b", "gemma3-27b"),
	  NO_BENCH },
	{ "gemma-3-12b", "Gemma 3 12B", "Google", "low",
	  0.11, 0.17, 128000, 0, 45,
	  LIST("classification_extraction", "email", "summarization_short"),
	  NULL,
	  LIST("gemma-3-12b", "gemma3-12b"),
	  NO_BENCH },
	{ "gemma-3-4b", "Gemma 3 4B", "Google", "minimal",
	  0.024, 0.048, 128000, 0, 30,
	  LIST("smalltalk", "classification_extraction"),
	  NULL,
	  LIST("gemma-3-4b", "gemma3-4b"),
	  NO_BENCH },
};
const size_t registry_nmodels = sizeof registry_models / sizeof registry_models[0];

/* --- normalisation ------------------------------------------------------------------------------------ */

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Removes s[from, to). */
static void
cut(char *s, size_t from, size_t to)
{
	memmove(s + from, s + to, strlen(s + to) + 1);
}

/* Collapses runs of '-' and trims '-' from both ends. */
static void
collapse_dashes(char *s)
{
	size_t w = 0;
	for (size_t r = 0; s[r]; r++) {
		if (s[r] == '-' && (w == 0 || s[w - 1] == '-'))
			continue;
		s[w++] = s[r];
	}
	if (w > 0 && s[w - 1] == '-')
		w--;
	s[w] = '\0';
}

/* True when a stamp ending at s[i] is followed by '-' or the end. */
static bool
stamp_end(const char *s, size_t i)
{
	return s[i] == '-' || s[i] == '\0';
}

/* Removes the first "-<exactly n digits>" followed by '-' or the end. */
static void
cut_digit_stamp(char *s, size_t n)
{
	for (size_t i = 0; s[i]; i++) {
		if (s[i] != '-')
			continue;
		size_t d = 0;
		while (d < n && is_digit(s[i + 1 + d]))
			d++;
		if (d == n && stamp_end(s, i + 1 + n)) {
			cut(s, i, i + 1 + n);
			return;
		}
	}
}

/* Removes the first "-v<digits>" or "-v<digits>-<digits>" followed by '-' or the end; the longer form
 * when both fit. */
static void
cut_version_tag(char *s)
{
	for (size_t i = 0; s[i]; i++) {
		if (s[i] != '-' || s[i + 1] != 'v' || !is_digit(s[i + 2]))
			continue;
		size_t j = i + 2;
		while (is_digit(s[j]))
			j++;
		if (s[j] == '-' && is_digit(s[j + 1])) {
			size_t k = j + 1;
			while (is_digit(s[k]))
				k++;
			if (stamp_end(s, k)) {
				cut(s, i, k);
				return;
			}
		}
		if (stamp_end(s, j)) {
			cut(s, i, j);
			return;
		}
	}
}

static const char *const region_prefixes[] = { "eu.", "us.", "ap.", "us-gov.", "global.", NULL };
static const char *const vendor_prefixes[] = {
	"anthropic.", "amazon.", "meta.", "mistralai.", "mistral.", "qwen.", "cohere.", "google.", "microsoft.",
	"deepseek.", "openai.", "minimax.", "zai.", "twelvelabs.", "nvidia.", "moonshot.", "writer.", NULL
};

static void
cut_one_prefix(char *s, const char *const *prefixes)
{
	for (; *prefixes; prefixes++) {
		if (starts_with(s, *prefixes)) {
			cut(s, 0, strlen(*prefixes));
			return;
		}
	}
}

/* Every step only removes or replaces characters, so it works in place. */
static void
normalise_inplace(char *s)
{
	size_t len = strlen(s);
	for (size_t i = 0; i < len; i++)
		s[i] = ascii_lower(s[i]);

	/* a Bedrock variant suffix ":0" */
	size_t d = len;
	while (d > 0 && is_digit(s[d - 1]))
		d--;
	if (d < len && d > 0 && s[d - 1] == ':')
		s[d - 1] = '\0';

	cut_one_prefix(s, region_prefixes);
	cut_one_prefix(s, vendor_prefixes);

	for (char *p = s; *p; p++)
		if (strchr(" \t\n\v\f\r._/", *p))
			*p = '-';
	collapse_dashes(s);

	cut_digit_stamp(s, 8);
	cut_digit_stamp(s, 4);
	cut_version_tag(s);
	len = strlen(s);
	if (len >= 7 && strcmp(s + len - 7, "-latest") == 0)
		s[len - 7] = '\0';
	collapse_dashes(s);
}

void
registry_normalise(const char *id, char *out, size_t outlen)
{
	if (outlen == 0)
		return;
	if (!id) {
		out[0] = '\0';
		return;
	}
	size_t len = strlen(id);
	if (len < outlen) {
		memcpy(out, id, len + 1);
		normalise_inplace(out);
		return;
	}
	/* Longer than the output: normalise the whole id, then truncate the result. */
	char *tmp = xstrdup(id);
	normalise_inplace(tmp);
	size_t n = strlen(tmp);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, tmp, n);
	out[n] = '\0';
	free(tmp);
}

/* --- lookup ------------------------------------------------------------------------------------------- */

/* The normalised patterns in table order, computed once. */
struct norm_pattern {
	const struct registry_model *model;
	char norm[REGISTRY_MAX_NORM];
};

static struct norm_pattern *patterns;
static size_t npatterns;
static pthread_once_t patterns_once = PTHREAD_ONCE_INIT;

static void
patterns_init(void)
{
	size_t n = 0;
	for (size_t i = 0; i < registry_nmodels; i++)
		for (const char *const *p = registry_models[i].patterns; *p; p++)
			n++;
	patterns = xcalloc(n, sizeof *patterns);
	for (size_t i = 0; i < registry_nmodels; i++) {
		for (const char *const *p = registry_models[i].patterns; *p; p++) {
			patterns[npatterns].model = &registry_models[i];
			registry_normalise(*p, patterns[npatterns].norm, sizeof patterns[npatterns].norm);
			npatterns++;
		}
	}
}

static const struct registry_model *find_uncached(const char *model_id);

/* The lookup is a scan of every pattern (strstr over all of them for ids the table does not know), and the
 * router asks it for every candidate model of every routed request: the process remembers recent answers
 * (one cache for all threads: a per-thread one would sit, zeroed, in every thread's static TLS block, 28 KB
 * of every thread's stack).  The table is immutable, so an answer never goes stale. */
#define FIND_SLOTS 256
#define FIND_KEY 96

struct find_slot {
	char id[FIND_KEY];
	const struct registry_model *m;
	bool used;
};

static struct find_slot find_cache[FIND_SLOTS];
static pthread_mutex_t find_lock = PTHREAD_MUTEX_INITIALIZER;

const struct registry_model *
registry_find(const char *model_id)
{
	if (!model_id || !*model_id)
		return NULL;
	size_t len = strlen(model_id);
	if (len >= FIND_KEY)
		return find_uncached(model_id);
	uint32_t h = 2166136261u;                 /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)model_id[i]) * 16777619u;
	struct find_slot *slot = &find_cache[h % FIND_SLOTS];
	pthread_mutex_lock(&find_lock);
	bool hit = slot->used && memcmp(slot->id, model_id, len + 1) == 0;
	const struct registry_model *m = hit ? slot->m : NULL;
	pthread_mutex_unlock(&find_lock);
	if (hit)
		return m;
	m = find_uncached(model_id);
	pthread_mutex_lock(&find_lock);
	memcpy(slot->id, model_id, len + 1);
	slot->m = m;
	slot->used = true;
	pthread_mutex_unlock(&find_lock);
	return m;
}

static const struct registry_model *
find_uncached(const char *model_id)
{
	pthread_once(&patterns_once, patterns_init);
	char n[REGISTRY_MAX_NORM];
	registry_normalise(model_id, n, sizeof n);

	for (size_t i = 0; i < npatterns; i++)
		if (strcmp(patterns[i].norm, n) == 0)
			return patterns[i].model;

	const struct registry_model *best = NULL;
	size_t best_len = 0;
	for (size_t i = 0; i < npatterns; i++) {
		size_t len = strlen(patterns[i].norm);
		if (len > best_len && strstr(n, patterns[i].norm)) {
			best = patterns[i].model;
			best_len = len;
		}
	}
	if (best)
		return best;

	if (strlen(n) >= 2)
		for (size_t i = 0; i < npatterns; i++)
			if (strstr(patterns[i].norm, n))
				return patterns[i].model;
	return NULL;
}

/* Integral values as JSON integers, the way the original's JSON shows them ("10", not "10.0"). */
static json_t *
number_json(double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		return json_integer((json_int_t)v);
	return json_real(v);
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
registry_suggestion_json(const struct registry_model *m)
{
	json_t *o = json_object();
	json_object_set_new(o, "family", json_string(m->family));
	json_object_set_new(o, "vendor", json_string(m->vendor));
	json_object_set_new(o, "tier", json_string(m->tier));
	json_object_set_new(o, "inputPer1M", m->input_per_1m >= 0 ? number_json(m->input_per_1m) : json_null());
	json_object_set_new(o, "outputPer1M", m->output_per_1m >= 0 ? number_json(m->output_per_1m) : json_null());
	json_object_set_new(o, "contextWindow", m->context_window > 0 ? json_integer(m->context_window) : json_null());
	json_object_set_new(o, "maxOutputTokens",
			    m->max_output_tokens > 0 ? json_integer(m->max_output_tokens) : json_null());
	json_object_set_new(o, "categories", string_list_json(m->categories));
	json_object_set_new(o, "priority", json_integer(m->priority));
	if (m->openrouter_id)
		json_object_set_new(o, "openrouterId", json_string(m->openrouter_id));
	json_object_set_new(o, "benchmarks",
			    m->has_bench ? json_pack("{s:i, s:i, s:i, s:i}", "intelligence", m->bench_intelligence,
						     "coding", m->bench_coding, "math", m->bench_math,
						     "speed", m->bench_speed)
					 : json_null());
	json_object_set_new(o, "source", json_string("local_registry"));
	return o;
}

/* --- static price tables ------------------------------------------------------------------------------ */

struct price_row {
	const char *key;
	double in, out;                      /* USD per 1M tokens */
};

static const struct price_row default_prices[] = {
	{ "claude-opus-4-6", 5.0, 25.0 },
	{ "claude-sonnet-4-6", 3.0, 15.0 },
	{ "claude-opus-4-5", 5.0, 25.0 },
	{ "claude-sonnet-4-5", 3.0, 15.0 },
	{ "claude-haiku-4-5", 0.8, 4.0 },
	{ "claude-sonnet-4", 3.0, 15.0 },
	{ "claude-3-7-sonnet", 3.0, 15.0 },
	{ "claude-3-5-sonnet", 3.0, 15.0 },
	{ "claude-3-5-haiku", 0.8, 4.0 },
	{ "claude-3-haiku", 0.25, 1.25 },
	{ "gpt-5", 10.0, 40.0 },
	{ "gpt-5-mini", 1.5, 6.0 },
	{ "gpt-5-codex", 3.0, 12.0 },
	{ "gpt-4.1", 2.0, 8.0 },
	{ "gpt-4.1-mini", 0.4, 1.6 },
	{ "gpt-4.1-nano", 0.1, 0.4 },
	{ "codex-mini", 1.5, 6.0 },
	{ "gpt-4o", 2.5, 10.0 },
	{ "gpt-4o-mini", 0.15, 0.6 },
	{ "gpt-4-turbo", 10.0, 30.0 },
	{ "gpt-4", 30.0, 60.0 },
	{ "gpt-3.5-turbo", 0.5, 1.5 },
	{ "o1", 15.0, 60.0 },
	{ "o1-mini", 1.1, 4.4 },
	{ "o3", 10.0, 40.0 },
	{ "o3-mini", 1.1, 4.4 },
	{ "o4-mini", 1.1, 4.4 },
	{ "qwen3-32b", 0.2, 0.79 },
	{ "qwen3-coder-30b", 0.2, 0.6 },
	{ "qwen3-235b", 0.29, 1.16 },
	{ "gemini-2.5-pro", 1.25, 10.0 },
	{ "gemini-2.5-flash", 0.15, 0.6 },
	{ "gemini-2.0-flash", 0.1, 0.4 },
	{ "llama-3.3-70b", 0.59, 0.79 },
	{ "llama-3.1-8b", 0.05, 0.08 },
	{ "llama-3.1-405b", 3.0, 3.0 },
	{ "mistral-large", 2.0, 6.0 },
	{ "mistral-small", 0.1, 0.3 },
	{ "codestral", 0.3, 0.9 },
	{ "deepseek-v3", 0.27, 1.1 },
	{ "deepseek-r1", 0.55, 2.19 },
};
static const struct price_row bedrock_prices[] = {
	{ "claude-sonnet-4-6", 3.0, 15.0 },
	{ "claude-opus-4-6", 5.0, 25.0 },
	{ "claude-opus-4-5", 5.0, 25.0 },
	{ "claude-haiku-4-5", 1.0, 5.0 },
	{ "claude-sonnet-4-5", 3.0, 15.0 },
	{ "claude-sonnet-4", 3.0, 15.0 },
	{ "claude-3-7-sonnet", 3.0, 15.0 },
	{ "claude-3-5-sonnet", 3.0, 15.0 },
	{ "claude-3-haiku", 0.25, 1.25 },
	{ "claude-3-sonnet", 3.0, 15.0 },
	{ "nova-2-lite", 0.39, 3.27 },
	{ "nova-2-omni", 0.4, 3.3 },
	{ "nova-2-pro", 1.63, 13.08 },
	{ "nova-lite", 0.078, 0.31 },
	{ "nova-micro", 0.046, 0.18 },
	{ "nova-pro", 0.26, 4.2 },
	{ "deepseek-v3-1", 0.7, 2.02 },
	{ "deepseek-v3-2", 0.37, 1.11 },
	{ "deepseek-r1", 0.7, 2.02 },
	{ "gemma-3-12b", 0.11, 0.17 },
	{ "gemma-3-27b", 0.28, 0.46 },
	{ "gemma-3-4b", 0.024, 0.048 },
	{ "llama-3-2-1b", 0.13, 0.13 },
	{ "llama-3-2-3b", 0.19, 0.19 },
	{ "llama3-2-1b", 0.13, 0.13 },
	{ "llama3-2-3b", 0.19, 0.19 },
	{ "minimax-m2.5", 0.36, 1.44 },
	{ "minimax-m2.1", 0.36, 1.44 },
	{ "magistral-small", 0.6, 1.8 },
	{ "ministral-14b", 0.12, 0.12 },
	{ "ministral-3b", 0.06, 0.06 },
	{ "ministral-8b", 0.18, 0.09 },
	{ "mistral-large", 0.3, 1.8 },
	{ "pixtral-large", 2.0, 6.0 },
	{ "devstral", 0.48, 1.2 },
	{ "voxtral-mini", 0.048, 0.024 },
	{ "voxtral-small", 0.06, 0.36 },
	{ "kimi-k2-thinking", 0.73, 3.03 },
	{ "kimi-k2.5", 0.72, 3.6 },
	{ "nemotron-nano-3", 0.072, 0.14 },
	{ "nemotron-3-super", 0.09, 0.78 },
	{ "nemotron-nano-2-vl", 0.12, 0.36 },
	{ "nemotron-nano-2", 0.036, 0.28 },
	{ "gpt-oss-120b", 0.2, 0.79 },
	{ "gpt-oss-20b", 0.09, 0.4 },
	{ "gpt-oss-safeguard-120b", 0.09, 0.72 },
	{ "gpt-oss-safeguard-20b", 0.042, 0.24 },
	{ "qwen3-235b", 0.29, 1.16 },
	{ "qwen3-32b", 0.2, 0.79 },
	{ "qwen3-coder-480b", 0.27, 2.16 },
	{ "qwen3-coder-30b", 0.2, 0.79 },
	{ "qwen3-coder-next", 0.6, 0.72 },
	{ "qwen3-next-80b", 0.084, 0.72 },
	{ "qwen3-vl-235b", 0.64, 1.6 },
	{ "palmyra-vision", 0.09, 0.36 },
	{ "glm-5", 1.2, 3.84 },
	{ "glm-4-7", 0.72, 2.64 },
};
static const struct price_row azure_prices[] = {
	{ "gpt-5.4", 2.5, 15.0 },
	{ "gpt-5.4-mini", 0.75, 4.5 },
	{ "gpt-5.4-nano", 0.2, 1.25 },
	{ "gpt-5.3-chat", 1.75, 14.0 },
	{ "gpt-5.3-chat-latest", 1.75, 14.0 },
	{ "gpt-5.3-codex", 1.75, 14.0 },
	{ "gpt-5.2", 1.75, 14.0 },
	{ "gpt-5.2-chat-latest", 1.75, 14.0 },
	{ "gpt-5.2-codex", 1.75, 14.0 },
	{ "gpt-5.1", 1.25, 10.0 },
	{ "gpt-5.1-chat-latest", 1.25, 10.0 },
	{ "gpt-5.1-codex", 1.25, 10.0 },
	{ "gpt-5.1-codex-max", 1.25, 10.0 },
	{ "gpt-5.1-codex-mini", 0.25, 2.0 },
	{ "gpt-5", 1.25, 10.0 },
	{ "gpt-5-chat-latest", 1.25, 10.0 },
	{ "gpt-5-codex", 1.25, 10.0 },
	{ "codex-mini", 1.5, 6.0 },
	{ "codex-mini-latest", 1.5, 6.0 },
	{ "chatgpt-4o-latest", 5.0, 15.0 },
	{ "gpt-4.1", 2.0, 8.0 },
	{ "gpt-4-1", 2.0, 8.0 },
	{ "gpt-4.1-mini", 0.4, 1.6 },
	{ "gpt-4-1-mini", 0.4, 1.6 },
	{ "gpt-4.1-nano", 0.1, 0.4 },
	{ "gpt-4-1-nano", 0.1, 0.4 },
	{ "gpt-4o", 2.5, 10.0 },
	{ "gpt-4o-2024", 2.5, 10.0 },
	{ "gpt-4o-mini", 0.15, 0.6 },
	{ "gpt-5-search-api", 1.25, 10.0 },
	{ "gpt-4o-search-preview", 2.5, 10.0 },
	{ "gpt-4o-mini-search-preview", 0.15, 0.6 },
	{ "o3-deep-research", 10.0, 40.0 },
	{ "o4-mini-deep-research", 2.0, 8.0 },
	{ "computer-use-preview", 3.0, 12.0 },
	{ "o3", 10.0, 40.0 },
	{ "o3-mini", 1.1, 4.4 },
	{ "o4-mini", 1.1, 4.4 },
	{ "o1", 15.0, 60.0 },
	{ "o1-mini", 1.1, 4.4 },
	{ "gpt-4-turbo", 10.0, 30.0 },
	{ "gpt-4", 30.0, 60.0 },
	{ "gpt-3.5-turbo", 0.5, 1.5 },
};
static const struct price_row gemini_prices[] = {
	{ "gemini-3.1-pro", 2.0, 12.0 },
	{ "gemini-3-1-pro", 2.0, 12.0 },
	{ "gemini-3.1-flash-lite", 0.25, 1.5 },
	{ "gemini-3-flash", 0.5, 3.0 },
	{ "gemini-2.5-pro", 1.25, 10.0 },
	{ "gemini-2-5-pro", 1.25, 10.0 },
	{ "gemini-2.5-flash", 0.3, 2.5 },
	{ "gemini-2-5-flash", 0.3, 2.5 },
	{ "gemini-2.5-flash-lite", 0.1, 0.4 },
	{ "gemini-2.0-flash", 0.1, 0.4 },
	{ "gemini-2-0-flash", 0.1, 0.4 },
	{ "gemini-1.5-pro", 1.25, 5.0 },
	{ "gemini-1.5-flash", 0.075, 0.3 },
};
static const struct price_row openai_prices[] = {
	{ "gpt-5", 10.0, 40.0 },
	{ "gpt-5-mini", 1.5, 6.0 },
	{ "gpt-4.1", 2.0, 8.0 },
	{ "gpt-4-1", 2.0, 8.0 },
	{ "gpt-4.1-mini", 0.4, 1.6 },
	{ "gpt-4-1-mini", 0.4, 1.6 },
	{ "gpt-4.1-nano", 0.1, 0.4 },
	{ "gpt-4-1-nano", 0.1, 0.4 },
	{ "gpt-4o-mini", 0.15, 0.6 },
	{ "gpt-4o", 2.5, 10.0 },
	{ "gpt-4-turbo", 10.0, 30.0 },
	{ "gpt-4", 30.0, 60.0 },
	{ "gpt-3.5-turbo", 0.5, 1.5 },
	{ "o3", 10.0, 40.0 },
	{ "o3-mini", 1.1, 4.4 },
	{ "o4-mini", 1.1, 4.4 },
	{ "o1", 15.0, 60.0 },
	{ "o1-mini", 1.1, 4.4 },
	{ "codex-mini", 1.5, 6.0 },
	{ "codex", 3.0, 12.0 },
};
static const struct price_row anthropic_prices[] = {
	{ "claude-opus-4", 15.0, 75.0 },
	{ "claude-sonnet-4", 3.0, 15.0 },
	{ "claude-haiku-4", 1.0, 5.0 },
	{ "claude-3-5-sonnet", 3.0, 15.0 },
	{ "claude-3-5-haiku", 0.8, 4.0 },
	{ "claude-3-opus", 15.0, 75.0 },
	{ "claude-3-sonnet", 3.0, 15.0 },
	{ "claude-3-haiku", 0.25, 1.25 },
};

#define NROWS(t) (sizeof t / sizeof t[0])

/* How a table's lookup maps the characters of a model id before comparing them with the keys. */
static char
map_lower(char c)
{
	return ascii_lower(c);
}

static char
map_provider(char c)
{
	c = ascii_lower(c);
	return c == '_' || c == '.' || c == ':' || c == '/' ? '-' : c;
}

/* Whether key occurs in id at position at, comparing mapped id characters. */
static bool
mapped_match_at(const char *id, size_t at, const char *key, char (*map)(char))
{
	for (size_t k = 0; key[k]; k++)
		if (!id[at + k] || map(id[at + k]) != key[k])
			return false;
	return true;
}

static bool
mapped_contains(const char *id, size_t idlen, const char *key, size_t keylen, char (*map)(char))
{
	for (size_t at = 0; at + keylen <= idlen; at++)
		if (mapped_match_at(id, at, key, map))
			return true;
	return false;
}

/* The exact key, else the longest contained key (the first on a tie). */
static bool
price_lookup(const struct price_row *rows, size_t nrows, const char *id, char (*map)(char), double *in,
	     double *out)
{
	if (!id || !*id)
		return false;
	size_t idlen = strlen(id);
	const struct price_row *best = NULL;
	size_t best_len = 0;
	for (size_t i = 0; i < nrows; i++) {
		size_t keylen = strlen(rows[i].key);
		if (keylen == idlen && mapped_match_at(id, 0, rows[i].key, map)) {
			best = &rows[i];
			break;
		}
		if (keylen > best_len && mapped_contains(id, idlen, rows[i].key, keylen, map)) {
			best = &rows[i];
			best_len = keylen;
		}
	}
	if (!best)
		return false;
	*in = best->in;
	*out = best->out;
	return true;
}

bool
registry_default_price(const char *model_id, double *in_per_1m, double *out_per_1m)
{
	return price_lookup(default_prices, NROWS(default_prices), model_id, map_lower, in_per_1m, out_per_1m);
}

struct provider_table {
	const char *const *keywords;
	const struct price_row *rows;
	size_t nrows;
};

static const struct provider_table provider_tables[] = {
	{ LIST("bedrock"), bedrock_prices, NROWS(bedrock_prices) },
	{ LIST("azure", "az-openai"), azure_prices, NROWS(azure_prices) },
	{ LIST("gemini", "google", "vertex"), gemini_prices, NROWS(gemini_prices) },
	{ LIST("anthropic", "claude"), anthropic_prices, NROWS(anthropic_prices) },
	{ LIST("openai", "openrouter"), openai_prices, NROWS(openai_prices) },
};

/* Case-insensitive substring test.  No keyword contains a space, so testing the type and the name
 * separately is the same as testing the original's "<type> <name>". */
static bool
contains_lower(const char *s, const char *kw)
{
	return s && mapped_contains(s, strlen(s), kw, strlen(kw), map_lower);
}

bool
registry_provider_type_price(const char *provider_type, const char *provider_name, const char *model_id,
			     double *in_per_1m, double *out_per_1m)
{
	for (size_t t = 0; t < NROWS(provider_tables); t++) {
		for (const char *const *kw = provider_tables[t].keywords; *kw; kw++) {
			if (contains_lower(provider_type, *kw) || contains_lower(provider_name, *kw))
				return price_lookup(provider_tables[t].rows, provider_tables[t].nrows, model_id,
						    map_provider, in_per_1m, out_per_1m);
		}
	}
	return false;
}

static json_t *
price_rows_json(const struct price_row *rows, size_t nrows)
{
	json_t *a = json_array();
	for (size_t i = 0; i < nrows; i++)
		json_array_append_new(a, json_pack("{s:s, s:o, s:o}", "model", rows[i].key, "input",
						   number_json(rows[i].in), "output", number_json(rows[i].out)));
	return a;
}

json_t *
registry_prices_json(void)
{
	json_t *types = json_array();
	for (size_t t = 0; t < NROWS(provider_tables); t++) {
		const struct provider_table *pt = &provider_tables[t];
		json_array_append_new(types, json_pack("{s:o, s:o}", "keywords", string_list_json(pt->keywords),
						       "prices", price_rows_json(pt->rows, pt->nrows)));
	}
	return json_pack("{s:o, s:o}", "default", price_rows_json(default_prices, NROWS(default_prices)),
			 "providerTypes", types);
}
