/*
 * template.h — annotation templates: the summary, description and links of an alert, filled
 * from its labels and values when it fires.
 *
 * A deliberately small language, parsed once when the rule file loads (so a typo is a load
 * error naming file, line and key, not an empty page at 3 a.m.), rendered with no code
 * execution, no loops and no I/O:
 *
 *   text {{ VARIABLE }} text {{ VARIABLE | FILTER }} ...
 *
 * Variables:
 *   $labels.NAME        the alert's label NAME ("" when it has none): model, version, feature,
 *                       signal, severity, alertname and the rule's own labels
 *   $value              the signal's value in the window that was evaluated
 *   $threshold          the rule's threshold (the factor of a burn-rate rule)
 *   $resolve_threshold  the threshold the value must cross back for the alert to resolve
 *   $samples            the number of values behind $value (requests, labelled predictions,
 *                       observed feature values)
 *   $window             the window's resolution or, for a burn rate, its pair ("1h/5m")
 *   $for                the rule's `for` duration
 *   $rule               the rule's name;  $group  its group's name;  $signal  the signal's name
 *   $runbook_base       the base URL of the runbooks (aggregator config), no trailing "/"
 * Filters:
 *   percent             a share as a percentage: 0.0213 -> "2.13%"
 *   duration            seconds as a duration: 5400 -> "1h30m"
 *   fixed2              two decimals: 3.14159 -> "3.14"
 * Numbers print with up to 4 significant digits ("0.02134", "14.4", "1.235e+06"), no value as
 * "n/a". `{{` always opens a variable; a literal "{{" is written {{ "{{" }}.
 */
#ifndef MW_ALERT_TEMPLATE_H
#define MW_ALERT_TEMPLATE_H

#include "buf.h"
#include "labels.h"

#include <stdbool.h>
#include <stdint.h>

#define MW_TEMPLATE_MAX_BYTES 4096 /* of a template's text, and of what one renders to */

struct mw_template; /* opaque: the parsed parts */

/* Everything a template can read; pointers are borrowed for the call. */
struct mw_template_ctx {
    const struct mw_labels *labels;
    bool has_value;
    double value;
    double threshold;
    double resolve_threshold;
    uint64_t samples;
    const char *window;
    const char *for_text;
    const char *rule;
    const char *group;
    const char *signal;
    const char *runbook_base;
};

/*
 * Parse `text` into *out (the caller frees it with mw_template_free). Returns 0, MW_ENOMEM, or
 * MW_ECONFIG with why[] saying what is wrong ("unknown variable $valeu (use $labels.NAME,
 * $value, ...)").
 */
int mw_template_parse(const char *text, struct mw_template **out, char *why, size_t why_size);

/* Append the rendering of `t` to `out`. Returns 0, MW_EFULL or MW_ENOMEM. */
int mw_template_render(const struct mw_template *t, const struct mw_template_ctx *ctx,
                       struct mw_buf *out);

void mw_template_free(struct mw_template *t); /* accepts NULL */

/*
 * For common/config.c's `check` hook of a STRING field holding a template: NULL when the text
 * (a char ** at `value`; NULL = unset) parses, else why not. The reason lives in thread-local
 * storage until the next call.
 */
const char *mw_template_check(const void *value);

#endif
