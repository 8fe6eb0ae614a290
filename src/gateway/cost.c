/* cost.c -- the one price resolution and the cost in micro-dollars; see gw.h.
 *
 * Order (the original's calcCost, reference/original-gateway.md §12.4, but with the provider's price used
 * everywhere, not only by the analytics):
 *   1. tenant.pricing[model] = {input, output}   (exact model id; a missing or bad half counts as 0);
 *   2. the provider document's discoveredModels entry with id == model whose inputPer1M is a number
 *      (outputPer1M missing or null counts as 0);
 *   3. registry_default_price (the built-in default table);
 *   4. registry_find (the model registry), when it knows an input price;
 *   5. nothing: price 0, source "none".
 *
 * Arithmetic.  A price in USD per 1M tokens is, per token, that many micro-dollars: 1 token at $1/1M costs
 * exactly 1 micro-dollar.  Prices are taken at a resolution of 1e-6 USD per 1M tokens (an integer count of
 * 1e-12 USD per token; every real price list has fewer decimals), so the cost is computed in 128-bit
 * integers as (in * p_in + out * p_out) / 1e6, rounded half up, with no binary-fraction error: a price of
 * 0.15 is 150000 units, and 10 tokens of it are exactly 1.5 micro-dollars, rounded to 2.
 */
#include "config.h"
#include "gateway/gw.h"

#include <string.h>

#include "data/registry.h"

#define PRICE_UNITS 1000000.0          /* price resolution: units per USD-per-1M */
#define PRICE_MAX 1e9                  /* USD per 1M tokens; anything above is clamped */

__extension__ typedef __int128 i128;

static double
clean_price(double p)
{
	if (!(p > 0))                       /* negative, zero, NaN */
		return 0;
	return p > PRICE_MAX ? PRICE_MAX : p;
}

static double
num_or_zero(const json_t *v)
{
	return json_is_number(v) ? clean_price(json_number_value(v)) : 0;
}

static bool
tenant_price(const json_t *tenant_doc, const char *model_id, struct price *out)
{
	const json_t *p = json_object_get(json_object_get(tenant_doc, "pricing"), model_id);
	if (!json_is_object(p))
		return false;
	out->input_per_1m = num_or_zero(json_object_get(p, "input"));
	out->output_per_1m = num_or_zero(json_object_get(p, "output"));
	out->source = "tenant";
	return true;
}

static bool
provider_price(const json_t *provider_doc, const char *model_id, struct price *out)
{
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(provider_doc, "discoveredModels"), i, m) {
		const char *id = json_string_value(json_object_get(m, "id"));
		if (!id || strcmp(id, model_id) != 0)
			continue;
		const json_t *in = json_object_get(m, "inputPer1M");
		if (!json_is_number(in))
			return false;
		out->input_per_1m = clean_price(json_number_value(in));
		out->output_per_1m = num_or_zero(json_object_get(m, "outputPer1M"));
		out->source = "provider";
		return true;
	}
	return false;
}

void
cost_price(const json_t *tenant_doc, const json_t *provider_doc, const char *model_id, struct price *out)
{
	out->input_per_1m = out->output_per_1m = 0;
	out->source = "none";
	if (!model_id || !*model_id)
		return;
	if (tenant_price(tenant_doc, model_id, out) || provider_price(provider_doc, model_id, out))
		return;
	double in, outp;
	if (registry_default_price(model_id, &in, &outp)) {
		out->input_per_1m = clean_price(in);
		out->output_per_1m = clean_price(outp);
		out->source = "default";
		return;
	}
	const struct registry_model *m = registry_find(model_id);
	if (m && m->input_per_1m >= 0) {
		out->input_per_1m = clean_price(m->input_per_1m);
		out->output_per_1m = clean_price(m->output_per_1m);
		out->source = "registry";
	}
}

static i128
price_units(double p)
{
	return (i128)(int64_t)(clean_price(p) * PRICE_UNITS + 0.5);   /* <= 1e15: exact in an int64 */
}

int64_t
cost_micro_usd(const struct price *p, long input_tokens, long output_tokens)
{
	if (!p)
		return 0;
	i128 in = input_tokens > 0 ? input_tokens : 0, out = output_tokens > 0 ? output_tokens : 0;
	i128 units = in * price_units(p->input_per_1m) + out * price_units(p->output_per_1m);
	i128 micro = (units + 500000) / 1000000;     /* half up; units >= 0 */
	return micro > (i128)INT64_MAX ? INT64_MAX : (int64_t)micro;
}

double
cost_usd(int64_t micro)
{
	return (double)micro / 1e6;
}
