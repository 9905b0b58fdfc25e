/*
 * fuzz_alert_rules.c — an alert rule file (aggregator rule_files), as the aggregator loads it,
 * then what it makes of each rule when an alert fires: the window text, the alert's labels and
 * the annotations rendered from the rule's templates.
 */
#include "alert/labels.h"
#include "alert/rule_state.h"
#include "alert/rules.h"
#include "config.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static void fire(const struct mw_rule *r)
{
    char window[64];
    mw_rule_window_text(r, window, sizeof window);
    struct mw_labels labels = {0}, annotations = {0};
    const char *feature = mw_rule_selects(r, "churn", "v1", "age") ? "age" : NULL;
    if (mw_rule_alert_labels(r, "churn", "v1", feature, &labels) == 0) {
        struct mw_rule_state st = {.state = MW_ALERT_FIRING, .has_value = true, .value = 0.25};
        mw_rule_annotations(r, &labels, &st, "https://runbooks.example/", &annotations);
    }
    mw_labels_free(&annotations);
    mw_labels_free(&labels);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_fuzz_quiet();
    char *text = malloc(size + 1); /* the loader takes a C string, as read from a file */
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct mw_rule_set set = {0};
    struct mw_cfg_error err = {0};
    if (mw_rules_load_string(&set, text, "rules.yaml", &err) == 0) {
        for (size_t i = 0; i < set.n; i++)
            fire(&set.rules[i]);
    } else if (!err.message[0]) {
        abort(); /* a refusal always says what and where */
    }
    mw_rule_set_free(&set);
    free(text);
    return 0;
}
