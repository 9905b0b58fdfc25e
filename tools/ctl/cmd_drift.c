/* cmd_drift.c — `drift`: each feature's drift against the reference profile in one window. */
#include "ctl.h"

#include <string.h>

/* -o wide: the weighted count, each side of the reference range, type violations and what the
 * statistics were computed on. */
static void print_wide_cells(const json_t *f)
{
    ctl_print_cell(json_object_get(f, "weighted_count"), 10, 1, false);
    ctl_print_cell(json_object_get(f, "below_range_rate"), 8, 2, true);
    ctl_print_cell(json_object_get(f, "above_range_rate"), 8, 2, true);
    ctl_print_cell(json_object_get(f, "type_violation_rate"), 9, 2, true);
    const char *basis = json_string_value(json_object_get(f, "basis"));
    printf(" %-12s", basis ? basis : "-");
}

int ctl_cmd_drift(const struct options *o, const char *model)
{
    struct path p = {0};
    ctl_model_path(&p, model, "/drift");
    ctl_path_param(&p, "version", o->version);
    ctl_path_param_ms(&p, "window", o->has_window, o->window_ms);
    ctl_path_param(&p, "resolution", o->resolution);
    if (!ctl_path_ok(&p))
        return 1;
    json_t *doc = ctl_get(o, p.text);
    if (!doc)
        return 1;
    if (o->format == CTL_JSON)
        return ctl_print_json(doc);
    char start[32] = "-";
    const json_t *start_ms = json_object_get(doc, "start_ms");
    if (json_is_integer(start_ms))
        ctl_format_time((int64_t)json_integer_value(start_ms), start, sizeof start);
    const char *version = json_string_value(json_object_get(doc, "version"));
    const char *profile_version = json_string_value(json_object_get(doc, "profile_version"));
    printf("drift of %s %s against profile %s, window %s (%" JSON_INTEGER_FORMAT " s, %s)\n", model,
           version ? version : "-", profile_version ? profile_version : "-", start,
           json_integer_value(json_object_get(doc, "resolution_s")),
           json_is_true(json_object_get(doc, "final")) ? "final" : "still open");
    const json_t *features = json_object_get(doc, "features");
    if (json_array_size(features) == 0) {
        printf("no feature values in this window\n");
        json_decref(doc);
        return 0;
    }
    printf("PSI and JS on the reference deciles plus below/above its range; KS_D on its "
           "percentiles;\nP_VALUE: Kolmogorov-Smirnov (numeric) or chi-squared (categorical) on "
           "the values observed;\nW_NORMED: Wasserstein-1 in reference standard deviations.\n");
    int w = ctl_name_width(features);
    bool wide = o->format == CTL_WIDE;
    printf("%-*s %-11s %9s %9s %8s %8s %8s %10s %9s %9s %9s", w, "FEATURE", "TYPE", "OBSERVED",
           "MISSING%", "PSI", "JS", "KS_D", "P_VALUE", "W_NORMED", "OUTSIDE%", "UNSEEN%");
    if (wide)
        printf(" %10s %8s %8s %9s %-12s", "WEIGHTED", "BELOW%", "ABOVE%", "TYPE_ERR%", "BASIS");
    printf("  %s\n", "VERDICT");
    static const char *const verdicts[] = {"drift", "possible", "none", "insufficient_data",
                                           "unknown"};
    size_t i, n_verdict[5] = {0};
    json_t *f;
    json_array_foreach(features, i, f)
    {
        const char *type = json_string_value(json_object_get(f, "type"));
        bool numeric = type && strcmp(type, "numeric") == 0;
        const char *name = json_string_value(json_object_get(f, "feature"));
        const char *verdict = json_string_value(json_object_get(f, "verdict"));
        for (size_t k = 0; verdict && k < 5; k++)
            n_verdict[k] += strcmp(verdict, verdicts[k]) == 0;
        printf("%-*s %-11s", w, name ? name : "?", type ? type : "?");
        ctl_print_cell(json_object_get(f, "observed"), 9, 0, false);
        ctl_print_cell(json_object_get(f, "missing_rate"), 9, 2, true);
        ctl_print_cell(json_object_get(f, "psi"), 8, 4, false);
        ctl_print_cell(json_object_get(f, "js_distance"), 8, 4, false);
        ctl_print_cell(json_object_get(f, "ks"), 8, 4, false);
        ctl_print_cell(json_object_get(f, numeric ? "ks_p_value" : "chi2_p_value"), 10, 4, false);
        ctl_print_cell(json_object_get(f, "wasserstein_normed"), 9, 4, false);
        ctl_print_cell(json_object_get(f, "out_of_range_rate"), 9, 2, true);
        ctl_print_cell(json_object_get(f, "unseen_share"), 9, 2, true);
        if (wide)
            print_wide_cells(f);
        printf("  %s\n", verdict ? verdict : "-");
    }
    printf("%zu features:", json_array_size(features));
    for (size_t k = 0; k < 5; k++)
        printf("%s %zu %s", k ? "," : "", n_verdict[k], verdicts[k]);
    printf("\n");
    const char *verdict = json_string_value(json_object_get(doc, "verdict"));
    if (verdict)
        printf("model verdict (the aggregator's thresholds, tests Bonferroni-corrected): %s\n",
               verdict);
    json_decref(doc);
    return 0;
}
