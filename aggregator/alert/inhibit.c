/* inhibit.c — inhibition rules (inhibit.h). */
#include "inhibit.h"

#include "alloc.h"
#include "error.h"
#include "yaml_lines.h"

#include <stdio.h>
#include <string.h>

#define C(member) offsetof(struct mw_inhibit_rule_cfg, member)
const struct mw_cfg_field mw_inhibit_rule_cfg_table[] = {
    {.key = "source_matchers",
     .type = MW_CFG_STRLIST,
     .offset = C(source_matchers),
     .required = true,
     .min = 1,
     .max = 32,
     .reloadable = true,
     .desc = "Matchers of the alerts that inhibit"},
    {.key = "target_matchers",
     .type = MW_CFG_STRLIST,
     .offset = C(target_matchers),
     .required = true,
     .min = 1,
     .max = 32,
     .reloadable = true,
     .desc = "Matchers of the alerts that are inhibited"},
    {.key = "equal",
     .type = MW_CFG_STRLIST,
     .offset = C(equal),
     .max = 32,
     .reloadable = true,
     .desc = "Labels whose values source and target must share"},
    MW_CFG_END,
};
#undef C

static void rule_free(struct mw_inhibit_rule *r)
{
    mw_matchers_free(&r->source);
    mw_matchers_free(&r->target);
    for (size_t i = 0; i < r->n_equal; i++)
        mw_free(r->equal[i]);
    mw_free(r->equal);
    memset(r, 0, sizeof *r);
}

void mw_inhibitor_free(struct mw_inhibitor *inh)
{
    if (!inh)
        return;
    for (size_t i = 0; i < inh->n; i++)
        rule_free(&inh->rules[i]);
    mw_free(inh->rules);
    *inh = (struct mw_inhibitor){0};
}

static int build_matchers(const struct mw_cfg_strlist *list, struct mw_matchers *out,
                          const char *key, const char *file, const char *text,
                          struct mw_cfg_error *err)
{
    size_t bad;
    char why[256], where[320];
    int rc =
        mw_matchers_parse((const char *const *)list->items, list->n, out, &bad, why, sizeof why);
    if (rc == MW_ECONFIG) {
        snprintf(where, sizeof where, "%s[%zu]", key, bad);
        return mw_yaml_lines_fail(err, file, text, where, key, "%s", why);
    }
    if (rc)
        snprintf(err->message, sizeof err->message, "%s: out of memory", file ? file : "");
    return rc;
}

static int build_rule(const struct mw_inhibit_rule_cfg *c, const char *prefix, const char *file,
                      const char *text, struct mw_inhibit_rule *r, struct mw_cfg_error *err)
{
    char key[256];
    snprintf(key, sizeof key, "%s.source_matchers", prefix);
    int rc = build_matchers(&c->source_matchers, &r->source, key, file, text, err);
    snprintf(key, sizeof key, "%s.target_matchers", prefix);
    if (!rc)
        rc = build_matchers(&c->target_matchers, &r->target, key, file, text, err);
    if (!rc && c->equal.n && !(r->equal = mw_calloc(c->equal.n, sizeof *r->equal)))
        rc = MW_ENOMEM;
    for (size_t i = 0; !rc && i < c->equal.n; i++) {
        snprintf(key, sizeof key, "%s.equal[%zu]", prefix, i);
        if (!mw_label_name_valid(c->equal.items[i]))
            return mw_yaml_lines_fail(err, file, text, key, prefix, "invalid label name \"%.64s\"",
                                      c->equal.items[i]);
        if (!(r->equal[i] = mw_strdup(c->equal.items[i])))
            rc = MW_ENOMEM;
        else
            r->n_equal = i + 1;
    }
    if (rc == MW_ENOMEM)
        snprintf(err->message, sizeof err->message, "%s: out of memory", file ? file : "");
    return rc;
}

int mw_inhibitor_build(const struct mw_cfg_list *cfg, const char *key, const char *file,
                       const char *text, struct mw_inhibitor *out, struct mw_cfg_error *err)
{
    char prefix[160];
    int rc = 0;
    *out = (struct mw_inhibitor){0};
    if (!cfg || !cfg->n)
        return 0;
    out->rules = mw_calloc(cfg->n, sizeof *out->rules);
    if (!out->rules) {
        snprintf(err->message, sizeof err->message, "%s: out of memory", file ? file : "");
        return MW_ENOMEM;
    }
    out->n = cfg->n;
    const struct mw_inhibit_rule_cfg *items = cfg->items;
    for (size_t i = 0; !rc && i < cfg->n; i++) {
        snprintf(prefix, sizeof prefix, "%s[%zu]", key, i);
        rc = build_rule(&items[i], prefix, file, text, &out->rules[i], err);
    }
    if (rc)
        mw_inhibitor_free(out);
    return rc;
}

static bool same_values(const struct mw_inhibit_rule *r, const struct mw_labels *a,
                        const struct mw_labels *b)
{
    for (size_t i = 0; i < r->n_equal; i++) {
        const char *va = mw_labels_get(a, r->equal[i]), *vb = mw_labels_get(b, r->equal[i]);
        if (strcmp(va ? va : "", vb ? vb : ""))
            return false;
    }
    return true;
}

bool mw_inhibited(const struct mw_inhibitor *inh, const struct mw_labels *target,
                  const struct mw_labels *const *firing, size_t n_firing)
{
    for (size_t i = 0; inh && i < inh->n; i++) {
        const struct mw_inhibit_rule *r = &inh->rules[i];
        if (!mw_matchers_match(&r->target, target))
            continue;
        for (size_t j = 0; j < n_firing; j++) {
            const struct mw_labels *src = firing[j];
            if (src == target || mw_labels_equal(src, target))
                continue; /* never itself */
            if (mw_matchers_match(&r->source, src) && same_values(r, src, target))
                return true;
        }
    }
    return false;
}
