/*
 * alert_eval.c — what one window close costs the alert evaluator: M models x F features x 10
 * rules, the signals computed from each window's fields as the aggregator reads them, and every
 * rule stepped, as alerting.c hands a group of windows to the evaluator.
 *
 *   mw-bench-alert-eval [--models M] [--features F] [--closes N] [--drifting K]
 *
 * Each model has one version and one 1-minute window per close whose fields hold what
 * window_apply writes for 600 requests: counts, a latency histogram, and per feature the
 * profile grid's slot weights (d|F|g<slot>), observed and weighted counts, all from the same
 * distribution as the model's reference profile (uniform on [0, 100), 100 regions) — except
 * K models whose every feature is shifted by 30 (they breach, pend, fire and render pages).
 * The 10 rules: error_rate, latency_p99, availability, latency_attainment, cost_per_1k on the
 * model, and psi, js_distance, ks_p_value, missing_rate, wasserstein_normed on every feature.
 *
 * Reported, in CPU time of this process (CLOCK_PROCESS_CPUTIME_ID), median of the closes:
 *   close     mw_evaluator_step_group for every model: signals + rules (what a close costs)
 *   signals   the same windows' service, SLO, cost and drift signals alone
 *   rules     the close again with each window's drift handed over computed
 *             (mw_eval_source.drift): the rule evaluation proper, with the cheap service,
 *             SLO and cost signals, on an evaluator that has stepped one close before (the
 *             K drifting models page in it); rules_steady: the next close (they fire on)
 * and rules x models x features per CPU-second of `close` and of `rules`. Window reads from
 * Redis are not included (bench/README.md measures the read path separately).
 */
#include "alert/evaluator.h"
#include "alert/rules.h"

#include "alloc.h"
#include "buf.h"
#include "config.h"
#include "profile.h"
#include "schema.h"
#include "signals_cost.h"
#include "signals_drift.h"
#include "signals_service.h"
#include "signals_slo.h"

#include <getopt.h>
#include <stdbool.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REQUESTS 600
#define REGIONS 100

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A format-2 profile of `features` features, each uniform on [0, 100): cuts at 1..99. */
static char *profile_json(int features)
{
    struct mw_buf b;
    mw_buf_init(&b, 64u << 20);
    mw_buf_printf(&b, "{\"format\": 2, \"model\": \"m\", \"version\": \"v1\", \"created_ms\": 1, "
                      "\"rows\": 100000, \"features\": {");
    for (int f = 0; f < features; f++) {
        mw_buf_printf(&b,
                      "%s\"f%02d\": {\"type\": \"numeric\", \"count\": 100000, \"missing\": 0, "
                      "\"min\": 0, \"max\": 100, \"mean\": 50, \"std\": 28.8675, \"cuts\": [",
                      f ? ", " : "", f);
        for (int i = 1; i < REGIONS; i++)
            mw_buf_printf(&b, "%s%d", i > 1 ? ", " : "", i);
        mw_buf_append_str(&b, "], \"region_counts\": [");
        for (int i = 0; i < REGIONS; i++)
            mw_buf_printf(&b, "%s1000", i ? ", " : "");
        mw_buf_append_str(&b, "], \"region_sums\": [");
        for (int i = 0; i < REGIONS; i++)
            mw_buf_printf(&b, "%s%g", i ? ", " : "", 1000 * (i + 0.5));
        mw_buf_append_str(&b, "], \"deciles\": [10, 20, 30, 40, 50, 60, 70, 80, 90]}");
    }
    mw_buf_append_str(&b, "}}");
    return mw_buf_detach(&b, NULL);
}

/* Field names and values of one window, owned. */
struct fields {
    size_t n, cap;
    char **names, **values;
};

static void add(struct fields *f, const char *name, double v)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 256;
        f->names = realloc(f->names, f->cap * sizeof *f->names);
        f->values = realloc(f->values, f->cap * sizeof *f->values);
    }
    char text[64];
    snprintf(text, sizeof text, "%.17g", v);
    f->names[f->n] = strdup(name);
    f->values[f->n] = strdup(text);
    f->n++;
}

/* What window_apply writes for REQUESTS requests, every feature shifted by `shift`. */
static void window_fields(struct fields *out, const struct mw_profile *p, double shift, bool drift)
{
    char name[MW_SCHEMA_KEY_MAX];
    add(out, MW_FIELD_COUNT, REQUESTS);
    add(out, MW_FIELD_ERRORS, 3);
    add(out, MW_FIELD_RECORDS, REQUESTS);
    add(out, MW_FIELD_WEIGHTED_RECORDS, REQUESTS);
    add(out, MW_FIELD_LATENCY_SUM_US, REQUESTS * 4000.0);
    for (uint32_t bucket = 380; bucket < 460; bucket += 8) { /* about 2 to 8 ms */
        mw_schema_latency_field(name, sizeof name, bucket);
        add(out, name, REQUESTS / 10);
    }
    if (!drift)
        return;
    mw_schema_profile_tag_field(name, sizeof name, p->tag);
    add(out, name, REQUESTS);
    for (size_t k = 0; k < p->n_features; k++) {
        const char *feature = p->features[k].name;
        char suffix[16];
        mw_schema_drift_field(name, sizeof name, feature, MW_DRIFT_SUFFIX_VALUES);
        add(out, name, REQUESTS);
        mw_schema_drift_field(name, sizeof name, feature, MW_DRIFT_SUFFIX_OBSERVED);
        add(out, name, REQUESTS);
        /* Uniform on [shift, 100 + shift): a share of each region, the rest above the range. */
        int whole = (int)floor(shift);
        for (int r = 0; r < REGIONS; r++) {
            int from = r - whole;
            if (from < 0)
                continue;
            snprintf(suffix, sizeof suffix, "%c%d", MW_DRIFT_SUFFIX_SLOT_WEIGHT, r + 1);
            mw_schema_drift_field(name, sizeof name, feature, suffix);
            add(out, name, (double)REQUESTS / REGIONS);
        }
        if (whole > 0) {
            snprintf(suffix, sizeof suffix, "%c%d", MW_DRIFT_SUFFIX_SLOT_WEIGHT, REGIONS + 1);
            mw_schema_drift_field(name, sizeof name, feature, suffix);
            add(out, name, (double)REQUESTS * whole / REGIONS);
            snprintf(suffix, sizeof suffix, "%c%d", MW_DRIFT_SUFFIX_SLOT_SUM, REGIONS + 1);
            mw_schema_drift_field(name, sizeof name, feature, suffix);
            add(out, name, (double)REQUESTS * whole / REGIONS * (100 + whole / 2.0));
        }
    }
}

static const char *const RULES =
    "groups:\n"
    "  - name: bench\n"
    "    rules:\n"
    "      - {name: ErrorRate, signal: error_rate, comparison: \">\", threshold: 0.05,\n"
    "         for: 5m, min_samples: 100, severity: critical, annotations: {summary: e}}\n"
    "      - {name: P99, signal: latency_p99, comparison: \">\", threshold: 1, for: 5m,\n"
    "         min_samples: 100, severity: warning, annotations: {summary: p}}\n"
    "      - {name: Avail, signal: availability, comparison: \"<\", threshold: 0.99,\n"
    "         for: 5m, min_samples: 100, severity: warning, annotations: {summary: a}}\n"
    "      - {name: Attain, signal: latency_attainment, comparison: \"<\", threshold: 0.95,\n"
    "         for: 5m, min_samples: 100, severity: warning, annotations: {summary: l}}\n"
    "      - {name: Cost, signal: cost_per_1k, comparison: \">\", threshold: 1,\n"
    "         for: 5m, min_samples: 100, severity: info, annotations: {summary: c}}\n"
    "      - {name: Psi, signal: psi, feature: \"*\", comparison: \">\", threshold: 0.25,\n"
    "         for: 2m, min_samples: 100, severity: warning,\n"
    "         annotations: {summary: \"{{ $labels.feature }} {{ $value }}\"}}\n"
    "      - {name: Js, signal: js_distance, feature: \"*\", comparison: \">\", threshold: 0.1,\n"
    "         for: 2m, min_samples: 100, severity: info, annotations: {summary: j}}\n"
    "      - {name: KsP, signal: ks_p_value, feature: \"*\", comparison: \"<\",\n"
    "         threshold: 0.000001, for: 2m, min_samples: 100, severity: info,\n"
    "         annotations: {summary: k}}\n"
    "      - {name: Missing, signal: missing_rate, feature: \"*\", comparison: \">\",\n"
    "         threshold: 0.05, for: 2m, min_samples: 100, severity: warning,\n"
    "         annotations: {summary: m}}\n"
    "      - {name: Wass, signal: wasserstein_normed, feature: \"*\", comparison: \">\",\n"
    "         threshold: 0.1, for: 2m, min_samples: 100, severity: info,\n"
    "         annotations: {summary: w}}\n";

int main(int argc, char **argv)
{
    int models = 1000, features = 50, closes = 7, drifting = 10;
    static const struct option opts[] = {{"models", required_argument, NULL, 'm'},
                                         {"features", required_argument, NULL, 'f'},
                                         {"closes", required_argument, NULL, 'c'},
                                         {"drifting", required_argument, NULL, 'd'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:f:c:d:", opts, NULL)) != -1) {
        char *end;
        long v = strtol(optarg, &end, 10);
        if (*end || end == optarg || v < 0 || v > 1000000)
            v = -1;
        if (c == 'm')
            models = (int)v;
        else if (c == 'f')
            features = (int)v;
        else if (c == 'c')
            closes = (int)v;
        else if (c == 'd')
            drifting = (int)v;
        else
            return 2;
    }
    if (models < 1 || features < 0 || closes < 1 || drifting < 0 || drifting > models) {
        fprintf(stderr, "usage: mw-bench-alert-eval [--models M] [--features F] [--closes N] "
                        "[--drifting K]\n");
        return 2;
    }
    struct mw_aggregator_config cfg = {0};
    struct mw_cfg_error err;
    if (mw_config_load_string(mw_aggregator_config_table, &cfg,
                              "drift:\n  windows: both\n  min_values: 100\n", "bench", &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    struct mw_rule_set rules = {0};
    if (mw_rules_load_string(&rules, RULES, "bench-rules.yaml", &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    /* --features 0: windows without drift state (a fine window under drift.windows: coarse),
     * where only the five model rules have values. */
    char *doc = profile_json(features ? features : 1);
    struct mw_profile *profile = NULL;
    char why[256];
    if (mw_profile_parse(doc, strlen(doc), &profile, why, sizeof why)) {
        fprintf(stderr, "profile: %s\n", why);
        return 1;
    }
    struct fields healthy = {0}, shifted = {0};
    window_fields(&healthy, profile, 0, features > 0);
    window_fields(&shifted, profile, 30, features > 0);
    char **names = calloc((size_t)models, sizeof *names);
    struct mw_window *windows = calloc((size_t)models, sizeof *windows);
    for (int i = 0; i < models; i++) {
        char name[32];
        snprintf(name, sizeof name, "model-%04d", i);
        names[i] = strdup(name);
        const struct fields *f = i < drifting ? &shifted : &healthy;
        windows[i] = (struct mw_window){.model = names[i],
                                        .version = "v1",
                                        .width_ms = 60000,
                                        .fields = {.n = f->n,
                                                   .names = (const char *const *)f->names,
                                                   .values = (const char *const *)f->values},
                                        .profile = features ? profile : NULL};
        mw_window_parse(&windows[i]);
    }
    struct mw_evaluator *ev;
    struct mw_evaluator_options eopts = {
        .cfg = &cfg, .runbook_base = "https://runbooks", .external_url = "http://mw:9465"};
    if (mw_evaluator_create(&eopts, &ev)) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    mw_evaluator_set_rules(ev, &rules);
    double *close_ms = calloc((size_t)closes, sizeof *close_ms);
    double *signal_ms = calloc((size_t)closes, sizeof *signal_ms);
    double *rule_ms = calloc((size_t)closes, sizeof *rule_ms);
    double *steady_ms = calloc((size_t)closes, sizeof *steady_ms);
    size_t pages = 0;
    int64_t t0 = 1767225600000LL;
    for (int k = 0; k < closes; k++) {
        int64_t start = t0 + k * 60000LL;
        struct mw_eval_transitions tr = {0};
        double before = cpu_ms();
        for (int i = 0; i < models; i++) {
            windows[i].start_ms = start;
            struct mw_eval_source src = {.window = &windows[i]};
            struct mw_eval_group g = {
                .model = names[i], .width_ms = 60000, .start_ms = start, .n = 1, .sources = &src};
            if (mw_evaluator_step_group(ev, &g, &tr)) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
        }
        mw_evaluator_gc(ev, false);
        close_ms[k] = cpu_ms() - before;
        pages += tr.n;
        mw_eval_transitions_free(&tr);
        /* The signals alone, for the same windows. */
        before = cpu_ms();
        for (int i = 0; i < models; i++) {
            struct mw_service_signals s;
            struct mw_slo_attainment a;
            struct mw_cost_signals cost;
            struct mw_drift_signals d;
            mw_service_signals_compute(&windows[i], &s);
            mw_slo_attainment_compute(&windows[i], &cfg, &a);
            mw_cost_signals_compute(&windows[i], &cfg, &cost);
            if (features && mw_drift_signals_compute(&windows[i], profile, &cfg, &d) == 0)
                mw_drift_signals_free(&d);
        }
        signal_ms[k] = cpu_ms() - before;
        /* The rules alone: the same close with each window's drift computed beforehand. */
        struct mw_drift_signals *drift = calloc((size_t)models, sizeof *drift);
        for (int i = 0; features && i < models; i++)
            mw_drift_signals_compute(&windows[i], profile, &cfg, &drift[i]);
        struct mw_evaluator *ev2;
        mw_evaluator_create(&eopts, &ev2);
        mw_evaluator_set_rules(ev2, &rules);
        struct mw_eval_transitions tr2 = {0};
        /* Three closes: the first leaves drifting models pending, the second pages them (each
         * page rendered), the third finds them firing still (steady state). */
        for (int warm = 0; warm < 3; warm++) {
            before = cpu_ms();
            for (int i = 0; i < models; i++) {
                windows[i].start_ms = start + warm * 60000LL;
                struct mw_eval_source src = {.window = &windows[i],
                                             .drift = features ? &drift[i] : NULL};
                struct mw_eval_group g = {.model = names[i],
                                          .width_ms = 60000,
                                          .start_ms = windows[i].start_ms,
                                          .n = 1,
                                          .sources = &src};
                mw_evaluator_step_group(ev2, &g, &tr2);
            }
            if (warm == 1)
                rule_ms[k] = cpu_ms() - before;
            else if (warm == 2)
                steady_ms[k] = cpu_ms() - before;
        }
        mw_eval_transitions_free(&tr2);
        mw_evaluator_destroy(ev2);
        for (int i = 0; features && i < models; i++)
            mw_drift_signals_free(&drift[i]);
        free(drift);
    }
    double close_med = median(close_ms, closes), signal_med = median(signal_ms, closes);
    double rules_med = median(rule_ms, closes), steady_med = median(steady_ms, closes);
    double units = 10.0 * models * (features ? features : 1);
    printf("{\"models\": %d, \"features\": %d, \"rules\": 10, \"drifting_models\": %d, "
           "\"closes\": %d, \"close_cpu_ms\": %.2f, \"signals_cpu_ms\": %.2f, "
           "\"rules_cpu_ms\": %.2f, \"rules_steady_cpu_ms\": %.2f, "
           "\"rule_model_features_per_cpu_s\": %.0f, "
           "\"rule_model_features_per_cpu_s_rules_only\": %.0f, \"instances\": %zu, "
           "\"pages\": %zu, \"fields_per_window\": %zu}\n",
           models, features, drifting, closes, close_med, signal_med, rules_med, steady_med,
           units / (close_med / 1000), rules_med > 0 ? units / (rules_med / 1000) : 0,
           mw_evaluator_count(ev), pages, healthy.n);
    mw_evaluator_destroy(ev);
    mw_rule_set_free(&rules);
    mw_config_free(mw_aggregator_config_table, &cfg);
    return 0;
}
