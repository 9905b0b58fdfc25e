/*
 * model_rules.h — per-model payload rules: how a model's events are sampled and redacted.
 *
 * The agent's config holds a list `models:` of these, one per model plus an optional "*" rule
 * for every model without its own. The sampler (sampler.h) reads the sampling keys, the
 * redactor (redact.h) the `redact.*` keys. The list is reloadable: on SIGHUP the agent builds a
 * new sampler and redactor from the new list and swaps them in.
 *
 *     models:
 *       - name: "*"
 *         sample_rate: 0.1
 *         redact: {hash: [email]}
 *       - name: churn
 *         sample_rate: 0.01
 *         keep_slower_than: 500ms
 *         max_events_per_second: 200
 *         redact: {drop: [ssn], hash: [customer_id]}
 */
#ifndef MW_AGENT_MODEL_RULES_H
#define MW_AGENT_MODEL_RULES_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The name of the default rule. */
#define MW_MODEL_RULE_DEFAULT "*"

/* One element of `models:`; filled by the config loader from mw_model_rule_table and released
 * with the rest of the config by mw_config_free(). */
struct mw_model_rule {
    char *name;                   /* a model name, or "*" */
    double sample_rate;           /* 0..1: fraction of event payloads shipped */
    bool keep_errors;             /* ship every error event whatever the rate */
    int64_t keep_slower_than_ms;  /* ship every event slower than this; 0 = off */
    double max_events_per_second; /* cap on shipped events of this model; 0 = unlimited */
    struct {
        struct mw_cfg_strlist drop; /* feature names removed from events */
        struct mw_cfg_strlist hash; /* feature names replaced by HMAC-SHA256 pseudonyms */
    } redact;
};

/* Table for the elements of `models:` (keys relative to the element), ended by MW_CFG_END. */
extern const struct mw_cfg_field mw_model_rule_table[];

/*
 * Check what the loader's table cannot: duplicate names, names that are neither "*" nor a valid
 * model name (names.h), a feature both dropped and hashed, values out of range (for rules built
 * in code). Returns 0, or MW_ECONFIG with `err` set to one message naming the rule and key,
 * e.g. `models[2].name: duplicate rule for "churn"`. `err` may be NULL when errsize is 0.
 */
int mw_model_rules_check(const struct mw_model_rule *rules, size_t n, char *err, size_t errsize);

/* Index of the rule named exactly `name` in rules[0..n), or -1. Linear; for setup code. */
long mw_model_rules_find(const struct mw_model_rule *rules, size_t n, const char *name);

#endif
