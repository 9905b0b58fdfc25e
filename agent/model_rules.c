/*
 * model_rules.c — the `models:` config sub-table and the checks that span several rules.
 *
 * The loader validates each key on its own (types, bounds, required); what needs the whole list
 * — duplicate names, "*" versus model names, a feature in both redaction lists — is checked
 * here, with messages in the loader's "models[i].key: what is wrong" style.
 */
#include "model_rules.h"

#include "error.h"
#include "names.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define F(member) offsetof(struct mw_model_rule, member)

const struct mw_cfg_field mw_model_rule_table[] = {
    {.key = "name",
     .type = MW_CFG_STRING,
     .offset = F(name),
     .required = true,
     .reloadable = true,
     .desc = "Model the rule applies to, or \"*\" for every model without a rule of its own"},
    {.key = "sample_rate",
     .type = MW_CFG_DOUBLE,
     .offset = F(sample_rate),
     .def = "1",
     .min = 0,
     .max = 1,
     .reloadable = true,
     .desc = "Fraction of event payloads shipped, chosen by a hash of the prediction id "
             "(counters always cover all traffic)"},
    {.key = "keep_errors",
     .type = MW_CFG_BOOL,
     .offset = F(keep_errors),
     .def = "true",
     .reloadable = true,
     .desc = "Ship every error event, whatever sample_rate says"},
    {.key = "keep_slower_than",
     .type = MW_CFG_DURATION,
     .offset = F(keep_slower_than_ms),
     .def = "0",
     .min = 0,
     .max = 86400000,
     .reloadable = true,
     .desc = "Ship every event slower than this, whatever sample_rate says; 0 = off"},
    {.key = "max_events_per_second",
     .type = MW_CFG_DOUBLE,
     .offset = F(max_events_per_second),
     .def = "0",
     .min = 0,
     .max = 1000000,
     .reloadable = true,
     .desc = "Most event payloads of this model shipped per second (kept records are "
             "reweighted); 0 = unlimited"},
    {.key = "redact.drop",
     .type = MW_CFG_STRLIST,
     .offset = F(redact.drop),
     .max = 512,
     .reloadable = true,
     .desc = "Input features removed from events before they leave the pod"},
    {.key = "redact.hash",
     .type = MW_CFG_STRLIST,
     .offset = F(redact.hash),
     .max = 512,
     .reloadable = true,
     .desc = "Input features replaced by HMAC-SHA256 (redaction_key_file) of their value"},
    MW_CFG_END,
};

/* Write "models[i].key: ..." into err. Returns MW_ECONFIG. */
static int rule_error(char *err, size_t errsize, size_t i, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int rule_error(char *err, size_t errsize, size_t i, const char *key, const char *fmt, ...)
{
    if (!err || !errsize)
        return MW_ECONFIG;
    int n = snprintf(err, errsize, "models[%zu].%s: ", i, key);
    if (n >= 0 && (size_t)n < errsize) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errsize - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return MW_ECONFIG;
}

long mw_model_rules_find(const struct mw_model_rule *rules, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++) {
        if (rules[i].name && strcmp(rules[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

static bool strlist_has(const struct mw_cfg_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->items[i] && strcmp(l->items[i], s) == 0)
            return true;
    }
    return false;
}

/* Feature names must be non-empty; one list must not name a feature the other one does. */
static int check_redact(const struct mw_model_rule *r, size_t i, char *err, size_t errsize)
{
    const struct mw_cfg_strlist *lists[2] = {&r->redact.drop, &r->redact.hash};
    const char *keys[2] = {"redact.drop", "redact.hash"};
    for (size_t l = 0; l < 2; l++) {
        for (size_t k = 0; k < lists[l]->n; k++) {
            if (!lists[l]->items[k] || !lists[l]->items[k][0])
                return rule_error(err, errsize, i, keys[l], "item %zu: empty feature name", k);
        }
    }
    for (size_t k = 0; k < r->redact.hash.n; k++) {
        const char *feature = r->redact.hash.items[k];
        if (strlist_has(&r->redact.drop, feature))
            return rule_error(err, errsize, i, "redact.hash",
                              "feature \"%.64s\" is also in redact.drop (drop or hash, not both)",
                              feature);
    }
    return 0;
}

/* Values the loader bounds already; rules built in code get the same checks. */
static int check_values(const struct mw_model_rule *r, size_t i, char *err, size_t errsize)
{
    if (!(r->sample_rate >= 0 && r->sample_rate <= 1))
        return rule_error(err, errsize, i, "sample_rate", "%g is not in [0, 1]", r->sample_rate);
    if (r->keep_slower_than_ms < 0)
        return rule_error(err, errsize, i, "keep_slower_than", "must not be negative");
    if (!(r->max_events_per_second >= 0 && isfinite(r->max_events_per_second)))
        return rule_error(err, errsize, i, "max_events_per_second",
                          "%g is not a finite number >= 0", r->max_events_per_second);
    return 0;
}

static int check_name(const struct mw_model_rule *rules, size_t i, char *err, size_t errsize)
{
    const char *name = rules[i].name;
    if (!name)
        return rule_error(err, errsize, i, "name", "required key missing");
    if (strcmp(name, MW_MODEL_RULE_DEFAULT) != 0 && !mw_model_name_valid(name))
        return rule_error(err, errsize, i, "name",
                          "\"%.64s\" is neither \"*\" nor a model name "
                          "(1 to 128 characters from [A-Za-z0-9._-])",
                          name);
    long first = mw_model_rules_find(rules, i, name);
    if (first >= 0)
        return rule_error(err, errsize, i, "name", "duplicate rule for \"%s\"", name);
    return 0;
}

int mw_model_rules_check(const struct mw_model_rule *rules, size_t n, char *err, size_t errsize)
{
    if (!rules && n)
        return MW_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int rc = check_name(rules, i, err, errsize);
        if (!rc)
            rc = check_values(&rules[i], i, err, errsize);
        if (!rc)
            rc = check_redact(&rules[i], i, err, errsize);
        if (rc)
            return rc;
    }
    if (err && errsize)
        err[0] = '\0';
    return 0;
}
