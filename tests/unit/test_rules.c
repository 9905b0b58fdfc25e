/* test_rules.c — rule files: a good file loads into the rules it says; each kind of mistake is
 * refused with FILE:LINE: KEY and a reason; templates render labels and values and refuse
 * unknown variables; selectors, alert labels and annotations; globs of files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alert/rules.h"
#include "alert/template.h"
#include "alert/yaml_lines.h"
#include "error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char good[] =
    "groups:\n"                                   /* 1 */
    "  - name: service\n"                         /* 2 */
    "    rules:\n"                                /* 3 */
    "      - name: ErrorRateHigh\n"               /* 4 */
    "        signal: error_rate\n"                /* 5 */
    "        model: \"fraud-*\"\n"                /* 6 */
    "        comparison: \">\"\n"                 /* 7 */
    "        threshold: 0.05\n"                   /* 8 */
    "        resolve_threshold: 0.03\n"           /* 9 */
    "        for: 5m\n"                           /* 10 */
    "        keep_firing_for: 10m\n"              /* 11 */
    "        min_samples: 100\n"                  /* 12 */
    "        severity: critical\n"                /* 13 */
    "        labels: {team: ml, page: \"yes\"}\n" /* 14 */
    "        annotations:\n"                      /* 15 */
    "          summary: \"{{ $labels.model }} {{ $labels.version }} fails "
    "{{ $value | percent }} of {{ $samples }} (> {{ $threshold | percent }})\"\n"
    "          runbook_url: \"{{ $runbook_base }}/deploy/runbooks/x.md\"\n"
    "  - name: drift\n"               /* 18 */
    "    interval: 30s\n"             /* 19 */
    "    rules:\n"                    /* 20 */
    "      - name: ModelDrift\n"      /* 21 */
    "        signal: drift_verdict\n" /* 22 */
    "        resolution: 1h\n"        /* 23 */
    "        comparison: \">=\"\n"    /* 24 */
    "        threshold: drift\n"      /* 25 */
    "        severity: warning\n"     /* 26 */
    "        flap_max_changes: 2\n"   /* 27 */
    "        flap_period: 6h\n"       /* 28 */
    "        annotations: {summary: \"{{ $labels.model }} drifted\"}\n"
    "      - name: FeaturePsi\n"  /* 30 */
    "        signal: psi\n"       /* 31 */
    "        comparison: \">\"\n" /* 32 */
    "        threshold: 0.25\n"   /* 33 */
    "        severity: info\n"    /* 34 */
    "        annotations: {summary: \"{{ $labels.feature }}\"}\n"
    "      - name: Burn\n"         /* 36 */
    "        signal: burn_rate\n"  /* 37 */
    "        long_window: 1h\n"    /* 38 */
    "        short_window: 5m\n"   /* 39 */
    "        factor: 14.4\n"       /* 40 */
    "        comparison: \">\"\n"  /* 41 */
    "        severity: critical\n" /* 42 */
    "        annotations: {summary: \"{{ $value }} over {{ $window }}\"}\n"
    "      - name: Absent\n"      /* 44 */
    "        signal: absence\n"   /* 45 */
    "        comparison: \">\"\n" /* 46 */
    "        threshold: 600\n"    /* 47 */
    "        severity: error\n"   /* 48 */
    "        annotations: {summary: \"silent {{ $value | duration }}\"}\n";

static void test_good_file_loads(void **state)
{
    (void)state;
    struct mw_rule_set set = {0};
    struct mw_cfg_error err = {{0}};
    assert_int_equal(mw_rules_load_string(&set, good, "good.yaml", &err), 0);
    assert_int_equal(set.n, 5);
    assert_int_equal(set.n_files, 1);

    const struct mw_rule *r = &set.rules[0];
    assert_string_equal(r->name, "ErrorRateHigh");
    assert_string_equal(r->group, "service");
    assert_string_equal(r->file, "good.yaml");
    assert_int_equal(r->line, 4);
    assert_int_equal(r->signal, MW_SIGNAL_ERROR_RATE);
    assert_string_equal(r->model, "fraud-*");
    assert_string_equal(r->version, "*");
    assert_null(r->feature);
    assert_int_equal(r->resolution, MW_RESOLUTION_FINE);
    assert_int_equal(r->cond.cmp, MW_CMP_GT);
    assert_true(r->cond.threshold == 0.05);
    assert_true(r->cond.resolve_threshold == 0.03);
    assert_int_equal(r->cond.for_ms, 300000);
    assert_int_equal(r->cond.keep_firing_for_ms, 600000);
    assert_int_equal(r->cond.min_samples, 100);
    assert_int_equal(r->cond.flap_max_changes, 4); /* defaults */
    assert_int_equal(r->cond.flap_period_ms, 3600000);
    assert_int_equal(r->severity, MW_SEVERITY_CRITICAL);
    assert_int_equal(r->interval_ms, 60000);
    assert_string_equal(mw_labels_get(&r->labels, "team"), "ml");
    assert_string_equal(mw_labels_get(&r->labels, "page"), "yes");
    assert_non_null(r->runbook_url);
    assert_null(r->description);

    r = &set.rules[1];
    assert_int_equal(r->signal, MW_SIGNAL_DRIFT_VERDICT);
    assert_int_equal(r->resolution, MW_RESOLUTION_COARSE);
    assert_true(r->cond.threshold == 2); /* "drift" */
    assert_true(r->cond.resolve_threshold == 2);
    assert_null(r->feature); /* the model's verdict */
    assert_int_equal(r->interval_ms, 30000);
    assert_int_equal(r->cond.flap_max_changes, 2);
    assert_int_equal(r->cond.flap_period_ms, 6 * 3600000);

    r = &set.rules[2];
    assert_string_equal(r->feature, "*"); /* a statistic: every feature */

    r = &set.rules[3];
    assert_int_equal(r->signal, MW_SIGNAL_BURN_RATE);
    assert_int_equal(r->long_window_ms, 3600000);
    assert_int_equal(r->short_window_ms, 300000);
    assert_true(r->cond.threshold == 14.4);
    char window[32];
    mw_rule_window_text(r, window, sizeof window);
    assert_string_equal(window, "1h/5m");
    mw_rule_set_free(&set);
    mw_rule_set_free(&set); /* idempotent */
    mw_rule_set_free(NULL);
}

/* A rule in a file, with `extra` lines in the rule (8 spaces indented, rule at line 4). */
static char *one_rule(const char *body)
{
    static char text[4096];
    snprintf(text, sizeof text,
             "groups:\n"
             "  - name: g\n"
             "    rules:\n"
             "      - name: R\n"
             "%s",
             body);
    return text;
}

struct bad_case {
    const char *body;
    const char *message; /* the whole message after "bad.yaml:" */
};

static const struct bad_case bad_cases[] = {
    {"        signal: error_rat\n        comparison: \">\"\n        threshold: 1\n"
     "        severity: info\n        annotations: {summary: s}\n",
     "5: groups[0].rules[0].signal: unknown signal \"error_rat\""},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 1\n"
     "        severity: info\n        sumary: s\n",
     "9: groups[0].rules[0].sumary: unknown key"},
    {"        signal: error_rate\n        comparison: \"=>\"\n        threshold: 1\n"
     "        severity: info\n        annotations: {summary: s}\n",
     "6: groups[0].rules[0].comparison: invalid value \"=>\""},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: lots\n"
     "        severity: info\n        annotations: {summary: s}\n",
     "7: groups[0].rules[0].threshold: expected a finite number"},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 1\n"
     "        severity: page\n        annotations: {summary: s}\n",
     "8: groups[0].rules[0].severity: invalid value \"page\""},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 1\n"
     "        for: soon\n        severity: info\n        annotations: {summary: s}\n",
     "8: groups[0].rules[0].for: invalid duration \"soon\""},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 0.05\n"
     "        resolve_threshold: 0.08\n        severity: info\n        annotations: {summary: s}\n",
     "8: groups[0].rules[0].resolve_threshold: 0.08 is on the wrong side of threshold 0.05"},
    {"        signal: availability\n        comparison: \"<\"\n        threshold: 0.99\n"
     "        resolve_threshold: 0.98\n        severity: info\n        annotations: {summary: s}\n",
     "8: groups[0].rules[0].resolve_threshold: 0.98 is on the wrong side of threshold 0.99"},
    {"        signal: error_rate\n        comparison: \"==\"\n        threshold: 0\n"
     "        resolve_threshold: 0\n        severity: info\n        annotations: {summary: s}\n",
     "8: groups[0].rules[0].resolve_threshold: no hysteresis with comparison \"==\""},
    {"        signal: error_rate\n        comparison: \">\"\n        severity: info\n"
     "        annotations: {summary: s}\n",
     "4: groups[0].rules[0].threshold: required key missing"},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 1\n"
     "        severity: info\n",
     "4: groups[0].rules[0].annotations.summary: required key missing"},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 1\n"
     "        severity: info\n        annotations: {summary: \"{{ $valeu }}\"}\n",
     "9: groups[0].rules[0].annotations.summary: unknown variable $valeu"},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 1\n"
     "        severity: info\n        annotations: {summary: \"{{ $value \"}\n",
     "9: groups[0].rules[0].annotations.summary: \"{{\" without \"}}\""},
    {"        signal: error_rate\n        feature: amount\n        comparison: \">\"\n"
     "        threshold: 1\n        severity: info\n        annotations: {summary: s}\n",
     "6: groups[0].rules[0].feature: signal error_rate is not per feature"},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: drift\n"
     "        severity: info\n        annotations: {summary: s}\n",
     "7: groups[0].rules[0].threshold: a verdict name is a threshold for drift_verdict only"},
    {"        signal: burn_rate\n        comparison: \">\"\n        long_window: 1h\n"
     "        factor: 2\n        severity: info\n        annotations: {summary: s}\n",
     "4: groups[0].rules[0].short_window: required key missing (signal burn_rate)"},
    {"        signal: burn_rate\n        comparison: \">\"\n        long_window: 1h\n"
     "        short_window: 2h\n        factor: 2\n        severity: info\n"
     "        annotations: {summary: s}\n",
     "8: groups[0].rules[0].short_window: must be shorter than long_window"},
    {"        signal: burn_rate\n        comparison: \">\"\n        long_window: 1h\n"
     "        short_window: 5m\n        factor: 2\n        threshold: 2\n"
     "        severity: info\n        annotations: {summary: s}\n",
     "10: groups[0].rules[0].threshold: not for burn_rate"},
    {"        signal: burn_rate\n        comparison: \"<\"\n        long_window: 1h\n"
     "        short_window: 5m\n        factor: 2\n        severity: info\n"
     "        annotations: {summary: s}\n",
     "6: groups[0].rules[0].comparison: burn_rate takes \">\" or \">=\""},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 1\n"
     "        factor: 2\n        severity: info\n        annotations: {summary: s}\n",
     "8: groups[0].rules[0].factor: only for signal burn_rate"},
    {"        signal: dlq_rate\n        model: fraud\n        comparison: \">\"\n"
     "        threshold: 0\n        severity: info\n        annotations: {summary: s}\n",
     "6: groups[0].rules[0].model: signal dlq_rate is of the pipeline, not of a model"},
    {"        signal: absence\n        comparison: \"<\"\n        threshold: 60\n"
     "        severity: info\n        annotations: {summary: s}\n",
     "6: groups[0].rules[0].comparison: absence takes \">\" or \">=\""},
    {"        signal: absence\n        comparison: \">\"\n        threshold: 60\n"
     "        min_samples: 5\n        severity: info\n        annotations: {summary: s}\n",
     "8: groups[0].rules[0].min_samples: signal absence has no sample count"},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 1\n"
     "        severity: info\n        labels: {severity: low}\n        annotations: {summary: s}\n",
     "9: groups[0].rules[0].labels.severity: the rule sets this label itself"},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 1\n"
     "        severity: info\n        labels: {\"bad-name\": x}\n        annotations: {summary: "
     "s}\n",
     "9: groups[0].rules[0].labels.bad-name: invalid label name"},
    {"        signal: error_rate\n        model: \"\"\n        comparison: \">\"\n"
     "        threshold: 1\n        severity: info\n        annotations: {summary: s}\n",
     "6: groups[0].rules[0].model: empty pattern"},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 1\n"
     "        severity: info\n        flap_max_changes: 0\n        annotations: {summary: s}\n",
     "9: groups[0].rules[0].flap_max_changes: 0 is below the minimum 1"},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 1\n"
     "        severity: info\n        annotations: {summary: s}\n"
     "      - name: R\n        signal: error_rate\n        comparison: \">\"\n"
     "        threshold: 2\n        severity: info\n        annotations: {summary: s}\n",
     "10: groups[0].rules[1].name: rule \"R\" is already defined on line 4"},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 1\n"
     "        severity: info\n        annotations: {summary: s}\n"
     "  - name: g\n    rules: []\n",
     "10: groups[1].name: group \"g\" is already defined on line 2"},
    {"        signal: error_rate\n        comparison: \">\"\n        threshold: 1\n"
     "        severity: info\n        annotations: {summary: s}\n        for: 1m\n        for: "
     "2m\n",
     "11: groups[0].rules[0].for: duplicate key (first on line 10)"},
};

static void test_bad_files_name_line_and_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        struct mw_rule_set set = {0};
        struct mw_cfg_error err = {{0}};
        int rc = mw_rules_load_string(&set, one_rule(bad_cases[i].body), "bad.yaml", &err);
        char expected[512];
        snprintf(expected, sizeof expected, "bad.yaml:%s", bad_cases[i].message);
        if (rc != MW_ECONFIG || strncmp(err.message, expected, strlen(expected))) {
            print_error("case %zu: rc %d\n  got      %s\n  expected %s...\n", i, rc, err.message,
                        expected);
            fail();
        }
        assert_int_equal(set.n, 0);
        mw_rule_set_free(&set);
    }
}

/* A file that fails leaves the rules loaded before it alone. */
static void test_failed_file_leaves_set_unchanged(void **state)
{
    (void)state;
    struct mw_rule_set set = {0};
    struct mw_cfg_error err = {{0}};
    assert_int_equal(mw_rules_load_string(&set, good, "a.yaml", &err), 0);
    assert_int_equal(mw_rules_load_string(&set, one_rule(bad_cases[0].body), "b.yaml", &err),
                     MW_ECONFIG);
    assert_int_equal(set.n, 5);
    assert_int_equal(set.n_files, 1);
    /* Names are unique per file: the same file's rules again, as another file, load. */
    assert_int_equal(mw_rules_load_string(&set, good, "c.yaml", &err), 0);
    assert_int_equal(set.n, 10);
    assert_string_equal(set.rules[7].file, "c.yaml");
    mw_rule_set_free(&set);
}

static void test_empty_and_flat_files(void **state)
{
    (void)state;
    struct mw_rule_set set = {0};
    struct mw_cfg_error err = {{0}};
    assert_int_equal(mw_rules_load_string(&set, "", "empty.yaml", &err), 0);
    assert_int_equal(mw_rules_load_string(&set, "groups: []\n", "none.yaml", &err), 0);
    assert_int_equal(set.n, 0);
    assert_int_equal(mw_rules_load_string(&set, "rules: []\n", "flat.yaml", &err), MW_ECONFIG);
    assert_string_equal(err.message, "flat.yaml:1: rules: unknown key");
    assert_int_equal(mw_rules_load_string(&set, "groups: [1]\n", "x.yaml", &err), MW_ECONFIG);
    assert_string_equal(err.message, "x.yaml:1: groups[0]: expected a mapping, got \"1\"");
    mw_rule_set_free(&set);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_glob_loads_every_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/mw-rules-XXXXXX", path[256], pattern[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a.yaml", dir);
    write_file(path, good);
    snprintf(path, sizeof path, "%s/b.yaml", dir);
    write_file(path, one_rule("        signal: error_rate\n        comparison: \">\"\n"
                              "        threshold: 1\n        severity: info\n"
                              "        annotations: {summary: s}\n"));
    struct mw_rule_set set = {0};
    struct mw_cfg_error err = {{0}};
    snprintf(pattern, sizeof pattern, "%s/*.yaml", dir);
    assert_int_equal(mw_rules_load_glob(&set, pattern, &err), 0);
    assert_int_equal(set.n, 6);
    assert_int_equal(set.n_files, 2);
    assert_string_equal(set.rules[5].name, "R");
    mw_rule_set_free(&set);

    snprintf(pattern, sizeof pattern, "%s/*.yml", dir);
    assert_int_equal(mw_rules_load_glob(&set, pattern, &err), MW_ECONFIG);
    assert_non_null(strstr(err.message, "no rule file matches"));

    snprintf(path, sizeof path, "%s/c.yaml", dir);
    write_file(path, one_rule(bad_cases[0].body));
    snprintf(pattern, sizeof pattern, "%s/*.yaml", dir);
    assert_int_equal(mw_rules_load_glob(&set, pattern, &err), MW_ECONFIG);
    assert_non_null(strstr(err.message, "/c.yaml:5: groups[0].rules[0].signal: unknown signal"));
    mw_rule_set_free(&set);

    assert_int_equal(mw_rules_load_file(&set, "/nonexistent/rules.yaml", &err), MW_EIO);
    for (const char *name = "abc"; *name; name++) {
        snprintf(path, sizeof path, "%s/%c.yaml", dir, *name);
        unlink(path);
    }
    rmdir(dir);
}

static void test_selects(void **state)
{
    (void)state;
    struct mw_rule_set set = {0};
    struct mw_cfg_error err = {{0}};
    assert_int_equal(mw_rules_load_string(&set, good, "good.yaml", &err), 0);
    const struct mw_rule *rate = &set.rules[0], *verdict = &set.rules[1], *psi = &set.rules[2];
    assert_true(mw_rule_selects(rate, "fraud-eu", "v3", NULL));
    assert_false(mw_rule_selects(rate, "churn", "v3", NULL));
    assert_false(mw_rule_selects(rate, "fraud-eu", "v3", "amount")); /* not per feature */
    assert_true(mw_rule_selects(verdict, "churn", "", NULL));
    assert_false(mw_rule_selects(verdict, "churn", "", "amount"));
    assert_true(mw_rule_selects(psi, "churn", "v1", "amount"));
    assert_false(mw_rule_selects(psi, "churn", "v1", NULL));
    mw_rule_set_free(&set);
}

static void test_alert_labels_and_annotations(void **state)
{
    (void)state;
    struct mw_rule_set set = {0};
    struct mw_cfg_error err = {{0}};
    assert_int_equal(mw_rules_load_string(&set, good, "good.yaml", &err), 0);
    const struct mw_rule *r = &set.rules[0];
    struct mw_labels labels = {0}, ann = {0};
    assert_int_equal(mw_rule_alert_labels(r, "fraud-eu", "v4", NULL, &labels), 0);
    assert_int_equal(labels.n, 7);
    assert_string_equal(mw_labels_get(&labels, "alertname"), "ErrorRateHigh");
    assert_string_equal(mw_labels_get(&labels, "severity"), "critical");
    assert_string_equal(mw_labels_get(&labels, "signal"), "error_rate");
    assert_string_equal(mw_labels_get(&labels, "model"), "fraud-eu");
    assert_string_equal(mw_labels_get(&labels, "version"), "v4");
    assert_string_equal(mw_labels_get(&labels, "team"), "ml");
    assert_null(mw_labels_get(&labels, "feature"));

    struct mw_rule_state st;
    mw_rule_state_init(&st);
    st.has_value = true;
    st.value = 0.0913;
    st.samples = 5120;
    assert_int_equal(mw_rule_annotations(r, &labels, &st, "https://runbooks.example", &ann), 0);
    assert_int_equal(ann.n, 2);
    assert_string_equal(mw_labels_get(&ann, "summary"), "fraud-eu v4 fails 9.13% of 5120 (> 5%)");
    assert_string_equal(mw_labels_get(&ann, "runbook_url"),
                        "https://runbooks.example/deploy/runbooks/x.md");
    mw_labels_free(&ann);

    /* Burn rate: $window is the pair; no value prints n/a. */
    mw_rule_state_init(&st);
    assert_int_equal(mw_rule_annotations(&set.rules[3], &labels, &st, NULL, &ann), 0);
    assert_string_equal(mw_labels_get(&ann, "summary"), "n/a over 1h/5m");
    mw_labels_free(&ann);
    /* Absence in seconds as a duration. */
    st.has_value = true;
    st.value = 5430;
    assert_int_equal(mw_rule_annotations(&set.rules[4], &labels, &st, NULL, &ann), 0);
    assert_string_equal(mw_labels_get(&ann, "summary"), "silent 1h30m30s");
    mw_labels_free(&ann);
    mw_labels_free(&labels);
    mw_rule_set_free(&set);
}

static char *render(const char *text, const struct mw_template_ctx *ctx)
{
    static char out[1024];
    struct mw_template *t;
    char why[256];
    struct mw_buf b;
    assert_int_equal(mw_template_parse(text, &t, why, sizeof why), 0);
    mw_buf_init(&b, sizeof out - 1);
    assert_int_equal(mw_template_render(t, ctx, &b), 0);
    snprintf(out, sizeof out, "%s", b.data ? b.data : "");
    mw_buf_free(&b);
    mw_template_free(t);
    return out;
}

static void test_templates(void **state)
{
    (void)state;
    struct mw_labels labels = {0};
    assert_int_equal(mw_labels_set(&labels, "model", "churn"), 0);
    struct mw_template_ctx ctx = {.labels = &labels,
                                  .has_value = true,
                                  .value = 0.021361,
                                  .threshold = 14.4,
                                  .resolve_threshold = 10,
                                  .samples = 42,
                                  .window = "1h",
                                  .for_text = "5m",
                                  .rule = "R",
                                  .group = "G",
                                  .signal = "psi",
                                  .runbook_base = "http://x"};
    assert_string_equal(render("plain", &ctx), "plain");
    assert_string_equal(render("", &ctx), "");
    assert_string_equal(render("{{$labels.model}}/{{ $labels.nope }}/", &ctx), "churn//");
    assert_string_equal(render("{{ $value }} {{ $value | percent }} {{ $value|fixed2 }}", &ctx),
                        "0.02136 2.136% 0.02");
    assert_string_equal(render("{{ $threshold }} {{ $resolve_threshold }} {{ $samples }}", &ctx),
                        "14.4 10 42");
    assert_string_equal(render("{{ $window }} {{ $for }} {{ $rule }} {{ $group }} {{ $signal }} "
                               "{{ $runbook_base }}",
                               &ctx),
                        "1h 5m R G psi http://x");
    assert_string_equal(render("a {{ \"{{\" }} b", &ctx), "a {{ b");
    ctx.value = 90061;
    assert_string_equal(render("{{ $value | duration }}", &ctx), "1d1h1m1s");
    ctx.has_value = false;
    assert_string_equal(render("{{ $value }}", &ctx), "n/a");

    static const char *const bad[][2] = {
        {"{{ $valu }}", "unknown variable $valu"},
        {"{{ value }}", "{{ value }} is not a variable"},
        {"{{ }}", "empty {{ }}"},
        {"{{ $value", "\"{{\" without \"}}\""},
        {"{{ $value | upper }}", "unknown filter \"upper\""},
        {"{{ $labels.model | percent }}", "filter percent applies to numbers"},
        {"{{ $window | percent }}", "filter percent applies to numbers, not to $window"},
        {"{{ $labels.bad-name }}", "invalid label name \"bad-name\""},
        {"{{ \"unterminated }}", "bad string literal"},
        {"{{ printf \"%s\" $value }}", "is not a variable"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mw_template *t = NULL;
        char why[256] = "";
        assert_int_equal(mw_template_parse(bad[i][0], &t, why, sizeof why), MW_ECONFIG);
        assert_null(t);
        if (!strstr(why, bad[i][1])) {
            print_error("%s: got \"%s\", expected \"%s\"\n", bad[i][0], why, bad[i][1]);
            fail();
        }
    }
    mw_labels_free(&labels);
}

static void test_yaml_lines(void **state)
{
    (void)state;
    struct mw_yaml_lines idx;
    assert_int_equal(mw_yaml_lines_build(&idx, good, strlen(good)), 0);
    assert_int_equal(mw_yaml_lines_find(&idx, "groups"), 1);
    assert_int_equal(mw_yaml_lines_find(&idx, "groups[0]"), 2);
    assert_int_equal(mw_yaml_lines_find(&idx, "groups[0].rules[0].threshold"), 8);
    assert_int_equal(mw_yaml_lines_find(&idx, "groups[0].rules[0].labels.team"), 14);
    assert_int_equal(mw_yaml_lines_find(&idx, "groups[0].rules[0].annotations.summary"), 16);
    assert_int_equal(mw_yaml_lines_find(&idx, "groups[1].rules[2].factor"), 40);
    assert_int_equal(mw_yaml_lines_find2(&idx, "groups[1].rules[3].", "threshold"), 47);
    assert_int_equal(mw_yaml_lines_find(&idx, "groups[1].rules[3].for"), 0);
    assert_int_equal(mw_yaml_lines_find(&idx, "groups[2]"), 0);
    mw_yaml_lines_free(&idx);
    /* Broken YAML: what came before the error. */
    assert_int_equal(mw_yaml_lines_build(&idx, "a: 1\nb: [\n", 10), 0);
    assert_int_equal(mw_yaml_lines_find(&idx, "a"), 1);
    mw_yaml_lines_free(&idx);
    mw_yaml_lines_free(NULL);
}

static void test_catalogue(void **state)
{
    (void)state;
    enum mw_signal s;
    for (int i = 0; i < MW_SIGNAL_COUNT; i++) {
        const struct mw_signal_info *info = mw_signal_info((enum mw_signal)i);
        assert_non_null(info);
        assert_int_equal(mw_signal_parse(info->name, &s), 0);
        assert_int_equal(s, i);
    }
    assert_null(mw_signal_info(MW_SIGNAL_COUNT));
    assert_int_equal(mw_signal_parse("nope", &s), MW_ENOTFOUND);
    static const char *const required[] = {"error_rate",
                                           "latency_p50",
                                           "latency_p90",
                                           "latency_p95",
                                           "latency_p99",
                                           "availability",
                                           "latency_attainment",
                                           "burn_rate",
                                           "drift_verdict",
                                           "psi",
                                           "js_distance",
                                           "ks",
                                           "ks_p_value",
                                           "wasserstein_normed",
                                           "chi2_p_value",
                                           "unseen_share",
                                           "out_of_range_rate",
                                           "missing_rate",
                                           "accuracy",
                                           "precision",
                                           "recall",
                                           "f1",
                                           "log_loss",
                                           "roc_auc",
                                           "mae",
                                           "rmse",
                                           "mape",
                                           "label_coverage",
                                           "cost_per_1k",
                                           "late_rate",
                                           "dlq_rate",
                                           "agent_drops",
                                           "spool_use",
                                           "consumer_lag",
                                           "absence"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        assert_int_equal(mw_signal_parse(required[i], &s), 0);
}

static void test_labels(void **state)
{
    (void)state;
    struct mw_labels a = {0}, b = {0};
    assert_int_equal(mw_labels_set(&a, "b", "2"), 0);
    assert_int_equal(mw_labels_set(&a, "a", "1"), 0);
    assert_int_equal(mw_labels_set(&b, "a", "1"), 0);
    assert_int_equal(mw_labels_set(&b, "b", "x"), 0);
    assert_false(mw_labels_equal(&a, &b));
    assert_int_equal(mw_labels_set(&b, "b", "2"), 0); /* replace */
    assert_true(mw_labels_equal(&a, &b));
    assert_true(mw_labels_hash(&a) == mw_labels_hash(&b));
    assert_string_equal(a.items[0].name, "a");
    assert_int_equal(mw_labels_set(&a, "9x", "1"), MW_EINVAL);
    assert_int_equal(mw_labels_set(&a, "", "1"), MW_EINVAL);
    struct mw_labels c = {0}, d = {0};
    assert_int_equal(mw_labels_set(&c, "ab", "c"), 0);
    assert_int_equal(mw_labels_set(&d, "a", "bc"), 0);
    assert_true(mw_labels_hash(&c) != mw_labels_hash(&d));
    struct mw_labels copy;
    assert_int_equal(mw_labels_copy(&copy, &a), 0);
    assert_true(mw_labels_equal(&copy, &a));
    char name[8];
    for (int i = 0; i < MW_LABELS_MAX; i++) {
        snprintf(name, sizeof name, "l%d", i);
        int rc = mw_labels_set(&copy, name, "v");
        assert_int_equal(rc, i < MW_LABELS_MAX - 2 ? 0 : MW_EFULL);
    }
    mw_labels_free(&copy);
    mw_labels_free(&a);
    mw_labels_free(&b);
    mw_labels_free(&c);
    mw_labels_free(&d);
    mw_labels_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file_loads),
        cmocka_unit_test(test_bad_files_name_line_and_key),
        cmocka_unit_test(test_failed_file_leaves_set_unchanged),
        cmocka_unit_test(test_empty_and_flat_files),
        cmocka_unit_test(test_glob_loads_every_file),
        cmocka_unit_test(test_selects),
        cmocka_unit_test(test_alert_labels_and_annotations),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_yaml_lines),
        cmocka_unit_test(test_catalogue),
        cmocka_unit_test(test_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
