/*
 * test_model_totals.c — the per-model counters and latency histogram on /metrics: only the given
 * model's part of a batch is counted, `le` buckets against the raw latencies (not against the
 * histogram code), the cardinality bounds, error codes folded into "other", label values made
 * UTF-8, and promtool on the rendered text.
 */
#include "model_totals.h"

#include "alloc.h"
#include "buf.h"
#include "latency_hist.h"

#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define PROMTOOL "/usr/bin/promtool"
#define MAX_PARTS 4
#define MAX_CODES 64
#define MAX_RECORDS 64

/* A Batch built in place: counters per (model, version) and sampled records. */
struct test_batch {
    Modelwatch__V1__Batch b;
    Modelwatch__V1__MetricsSnapshot snap;
    Modelwatch__V1__ModelCounters mc[MAX_PARTS];
    Modelwatch__V1__ModelCounters *mcp[MAX_PARTS];
    Modelwatch__V1__LatencyHistogram h[MAX_PARTS];
    uint32_t index[MAX_PARTS][MW_LATENCY_BUCKETS];
    uint64_t count[MAX_PARTS][MW_LATENCY_BUCKETS];
    Modelwatch__V1__ErrorCount err[MAX_PARTS][MAX_CODES];
    Modelwatch__V1__ErrorCount *errp[MAX_PARTS][MAX_CODES];
    char codes[MAX_PARTS][MAX_CODES][16];
    Modelwatch__V1__Record rec[MAX_RECORDS];
    Modelwatch__V1__Record *recp[MAX_RECORDS];
    Modelwatch__V1__PredictionEvent ev[MAX_RECORDS];
    Modelwatch__V1__Feedback fb[MAX_RECORDS];
};

static struct test_batch *batch_new(void)
{
    struct test_batch *tb = calloc(1, sizeof *tb);
    assert_non_null(tb);
    modelwatch__v1__batch__init(&tb->b);
    modelwatch__v1__metrics_snapshot__init(&tb->snap);
    tb->b.snapshot = &tb->snap;
    tb->snap.models = tb->mcp;
    tb->b.records = tb->recp;
    return tb;
}

/* Counters of (model, version): `n` predictions with these latencies, `n_errors` of them failed
 * with code "e<i % n_codes>". Returns the part's index. */
static size_t add_part(struct test_batch *tb, const char *model, const char *version,
                       const uint64_t *latencies_us, size_t n, size_t n_errors, size_t n_codes)
{
    size_t p = tb->snap.n_models++;
    Modelwatch__V1__ModelCounters *mc = &tb->mc[p];
    modelwatch__v1__model_counters__init(mc);
    tb->mcp[p] = mc;
    mc->model = (char *)model;
    mc->version = (char *)version;
    mc->has_count = mc->has_error_count = 1;
    mc->count = n;
    mc->error_count = n_errors;
    struct mw_latency_hist *hist = calloc(1, sizeof *hist);
    assert_non_null(hist);
    for (size_t i = 0; i < n; i++)
        mw_latency_hist_add(hist, latencies_us[i]);
    Modelwatch__V1__LatencyHistogram *h = &tb->h[p];
    modelwatch__v1__latency_histogram__init(h);
    h->bucket_index = tb->index[p];
    h->bucket_count = tb->count[p];
    for (uint32_t i = 0; i < MW_LATENCY_BUCKETS; i++) {
        if (hist->counts[i]) {
            tb->index[p][h->n_bucket_index] = i;
            tb->count[p][h->n_bucket_index++] = hist->counts[i];
        }
    }
    h->n_bucket_count = h->n_bucket_index;
    h->has_sum_us = 1;
    h->sum_us = hist->sum_us;
    mc->latency = h;
    free(hist);
    for (size_t i = 0; i < n_errors && n_codes; i++) {
        size_t c = i % n_codes;
        if (c == mc->n_errors) {
            snprintf(tb->codes[p][c], sizeof tb->codes[p][c], "e%zu", c);
            modelwatch__v1__error_count__init(&tb->err[p][c]);
            tb->err[p][c].code = tb->codes[p][c];
            tb->errp[p][c] = &tb->err[p][c];
            mc->n_errors++;
        }
        tb->err[p][c].count++;
    }
    mc->errors = tb->errp[p];
    return p;
}

static void add_record(struct test_batch *tb, const char *model, const char *version)
{
    size_t r = tb->b.n_records++;
    modelwatch__v1__record__init(&tb->rec[r]);
    modelwatch__v1__prediction_event__init(&tb->ev[r]);
    tb->ev[r].model = (char *)model;
    tb->ev[r].version = (char *)version;
    tb->rec[r].body_case = MODELWATCH__V1__RECORD__BODY_EVENT;
    tb->rec[r].event = &tb->ev[r];
    tb->recp[r] = &tb->rec[r];
}

static void add_feedback(struct test_batch *tb, const char *model)
{
    size_t r = tb->b.n_records++;
    modelwatch__v1__record__init(&tb->rec[r]);
    modelwatch__v1__feedback__init(&tb->fb[r]);
    tb->fb[r].model = (char *)model;
    tb->rec[r].body_case = MODELWATCH__V1__RECORD__BODY_FEEDBACK;
    tb->rec[r].feedback = &tb->fb[r];
    tb->recp[r] = &tb->rec[r];
}

struct fixture {
    struct mw_prom_registry *reg;
    struct mw_model_totals *totals;
    char *text;
};

static int setup_with(void **state, size_t max_pairs)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->reg = mw_prom_registry_create();
    f->totals = mw_model_totals_create(f->reg, max_pairs);
    *state = f;
    return f->reg && f->totals ? 0 : -1;
}

static int setup(void **state)
{
    return setup_with(state, 1000);
}

static int setup_two_pairs(void **state)
{
    return setup_with(state, 2);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mw_model_totals_destroy(f->totals);
    mw_prom_registry_destroy(f->reg);
    mw_free(f->text);
    free(f);
    return 0;
}

static const char *render(struct fixture *f)
{
    mw_free(f->text);
    struct mw_buf out;
    mw_buf_init(&out, 1 << 22);
    assert_int_equal(mw_prom_render(f->reg, &out), 0);
    f->text = mw_buf_detach(&out, NULL);
    return f->text;
}

/* The value of the sample whose name and labels are `series`, or NaN when there is none. */
static double value_of(struct fixture *f, const char *series)
{
    const char *text = render(f);
    size_t len = strlen(series);
    for (const char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, series, len) == 0 && line[len] == ' ')
            return strtod(line + len + 1, NULL);
    }
    return NAN;
}

static void test_counts_only_the_applied_model(void **state)
{
    struct fixture *f = *state;
    struct test_batch *tb = batch_new();
    uint64_t lat[100];
    for (size_t i = 0; i < 100; i++)
        lat[i] = 1000 + 100 * i;
    add_part(tb, "churn", "v3", lat, 100, 5, 2);
    add_part(tb, "fraud", "v1", lat, 40, 0, 0);
    for (int i = 0; i < 5; i++)
        add_record(tb, "churn", "v3");
    add_record(tb, "churn", "v4"); /* a version with records only */
    add_record(tb, "fraud", "v1");
    add_feedback(tb, "churn"); /* labels are not sampled predictions */
    assert_int_equal(mw_model_totals_add_batch(f->totals, &tb->b, "churn"), 0);
    assert_true(value_of(f, "modelwatch_predictions_total{model=\"churn\",version=\"v3\"}") == 100);
    assert_true(value_of(f, "modelwatch_prediction_errors_total{model=\"churn\",version=\"v3\","
                            "code=\"e0\"}") == 3);
    assert_true(value_of(f, "modelwatch_prediction_errors_total{model=\"churn\",version=\"v3\","
                            "code=\"e1\"}") == 2);
    assert_true(value_of(f, "modelwatch_sampled_records_total{model=\"churn\",version=\"v3\"}") ==
                5);
    assert_true(value_of(f, "modelwatch_sampled_records_total{model=\"churn\",version=\"v4\"}") ==
                1);
    assert_true(value_of(f, "modelwatch_predictions_total{model=\"churn\",version=\"v4\"}") == 0);
    assert_true(value_of(f, "modelwatch_prediction_latency_seconds_count{model=\"churn\","
                            "version=\"v3\"}") == 100);
    /* sum of 1000..10900 us = 100 * 1000 + 100 * 99 * 50 us */
    assert_true(fabs(value_of(f, "modelwatch_prediction_latency_seconds_sum{model=\"churn\","
                                 "version=\"v3\"}") -
                     0.595) < 1e-12);
    assert_true(isnan(value_of(f, "modelwatch_predictions_total{model=\"fraud\",version=\"v1\"}")));
    /* the other model's part, applied later (by this replica): counted then */
    assert_int_equal(mw_model_totals_add_batch(f->totals, &tb->b, "fraud"), 0);
    assert_true(value_of(f, "modelwatch_predictions_total{model=\"fraud\",version=\"v1\"}") == 40);
    assert_true(value_of(f, "modelwatch_sampled_records_total{model=\"fraud\",version=\"v1\"}") ==
                1);
    /* counters only grow: a second batch adds */
    assert_int_equal(mw_model_totals_add_batch(f->totals, &tb->b, "churn"), 0);
    assert_true(value_of(f, "modelwatch_predictions_total{model=\"churn\",version=\"v3\"}") == 200);
    assert_true(value_of(f, "modelwatch_series_dropped_total") == 0);
    free(tb);
}

static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* How many raw latencies are <= limit_s. */
static uint64_t at_most(const uint64_t *lat_us, size_t n, double limit_s)
{
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += (double)lat_us[i] / 1e6 <= limit_s;
    return k;
}

static double bucket_value(struct fixture *f, const char *le)
{
    char series[160];
    snprintf(series, sizeof series,
             "modelwatch_prediction_latency_seconds_bucket{model=\"m\",version=\"v\",le=\"%s\"}",
             le);
    return value_of(f, series);
}

/* Latencies log-uniform over 50 us .. 30 s. Away from the bounds (not within 1 % of any) every
 * cumulative bucket equals the raw count exactly; right at and around the bounds it stays between
 * the counts at L/(1+a) and L/(1-a), as model_totals.c states. */
static void check_buckets(void **state, bool near_bounds)
{
    struct fixture *f = *state;
    enum { N = 20000 };
    static uint64_t lat[N];
    const double *bounds = mw_model_totals_latency_bounds;
    const size_t nb = mw_model_totals_n_latency_bounds;
    uint64_t rng = 88172645463325252ull;
    size_t n = 0;
    while (n < N) {
        double u = (double)(next_random(&rng) >> 11) / 9007199254740992.0;
        uint64_t v = (uint64_t)exp(log(50.0) + u * (log(30e6) - log(50.0)));
        bool near = false;
        for (size_t b = 0; b < nb; b++)
            near |= v / 1e6 >= bounds[b] / 1.0101 && v / 1e6 <= bounds[b] / 0.9899;
        if (near == near_bounds || (near_bounds && n % 4 == 0))
            lat[n++] = v;
    }
    if (near_bounds) {
        for (size_t b = 0; b < nb; b++)
            lat[b] = (uint64_t)llround(bounds[b] * 1e6); /* exactly on the bound */
    }
    struct test_batch *tb = batch_new();
    add_part(tb, "m", "v", lat, N, 0, 0);
    assert_int_equal(mw_model_totals_add_batch(f->totals, &tb->b, "m"), 0);
    const double a = MW_LATENCY_ALPHA;
    for (size_t b = 0; b < nb; b++) {
        char le[32];
        snprintf(le, sizeof le, "%g", bounds[b]);
        double got = bucket_value(f, le);
        uint64_t exact = at_most(lat, N, bounds[b]);
        uint64_t lo = at_most(lat, N, bounds[b] / (1 + a));
        uint64_t hi = at_most(lat, N, bounds[b] / (1 - a));
        if (!near_bounds && got != (double)exact)
            fail_msg("le=%s: %g, raw count %" PRIu64, le, got, exact);
        if (got < (double)lo || got > (double)hi)
            fail_msg("le=%s: %g outside [%" PRIu64 ", %" PRIu64 "]", le, got, lo, hi);
    }
    assert_true(bucket_value(f, "+Inf") == N);
    uint64_t sum_us = 0;
    for (size_t i = 0; i < N; i++)
        sum_us += lat[i];
    assert_true(
        value_of(f, "modelwatch_prediction_latency_seconds_sum{model=\"m\",version=\"v\"}") ==
        (double)sum_us / 1e6);
    free(tb);
}

static void test_buckets_exact_away_from_bounds(void **state)
{
    check_buckets(state, false);
}

static void test_buckets_within_one_percent_at_bounds(void **state)
{
    check_buckets(state, true);
}

static void test_cardinality_bound(void **state)
{
    struct fixture *f = *state; /* at most 2 pairs */
    struct test_batch *tb = batch_new();
    uint64_t lat[] = {1000};
    add_part(tb, "a", "v1", lat, 1, 0, 0);
    add_part(tb, "a", "v2", lat, 1, 0, 0);
    add_part(tb, "a", "v3", lat, 1, 1, 1); /* refused: counted once */
    add_record(tb, "a", "v3");             /* refused: counted once */
    add_record(tb, "a", "v1");
    assert_int_equal(mw_model_totals_add_batch(f->totals, &tb->b, "a"), 0);
    assert_true(value_of(f, "modelwatch_predictions_total{model=\"a\",version=\"v1\"}") == 1);
    assert_true(value_of(f, "modelwatch_predictions_total{model=\"a\",version=\"v2\"}") == 1);
    assert_true(isnan(value_of(f, "modelwatch_predictions_total{model=\"a\",version=\"v3\"}")));
    assert_null(strstr(render(f), "v3"));
    assert_true(value_of(f, "modelwatch_series_dropped_total") == 2);
    /* pairs already admitted keep counting */
    assert_int_equal(mw_model_totals_add_batch(f->totals, &tb->b, "a"), 0);
    assert_true(value_of(f, "modelwatch_predictions_total{model=\"a\",version=\"v1\"}") == 2);
    assert_true(value_of(f, "modelwatch_series_dropped_total") == 4);
    /* labels: as many models as pairs */
    mw_model_totals_add_joined(f->totals, "a", 3);
    mw_model_totals_add_joined(f->totals, "b", 1);
    mw_model_totals_add_joined(f->totals, "c", 1);
    mw_model_totals_add_joined(f->totals, "a", 2);
    mw_model_totals_add_joined(f->totals, "bad name", 2); /* not a model name: ignored */
    assert_true(value_of(f, "modelwatch_labels_joined_total{model=\"a\"}") == 5);
    assert_true(value_of(f, "modelwatch_labels_joined_total{model=\"b\"}") == 1);
    assert_true(isnan(value_of(f, "modelwatch_labels_joined_total{model=\"c\"}")));
    assert_true(value_of(f, "modelwatch_series_dropped_total") == 5);
    free(tb);
}

static void test_error_codes_folded(void **state)
{
    struct fixture *f = *state;
    struct test_batch *tb = batch_new();
    uint64_t lat[50];
    for (size_t i = 0; i < 50; i++)
        lat[i] = 2000;
    size_t p = add_part(tb, "m", "v", lat, 50, 45, 45); /* 45 codes, one error each */
    tb->mc[p].error_count = 47;                         /* two without a code */
    assert_int_equal(mw_model_totals_add_batch(f->totals, &tb->b, "m"), 0);
    const char *text = render(f);
    size_t n_series = 0;
    for (const char *s = text; (s = strstr(s, "modelwatch_prediction_errors_total{")); s++)
        n_series++;
    assert_int_equal(n_series, MW_MODEL_TOTALS_MAX_CODES);
    double total = 0;
    for (int c = 0; c < 45; c++) {
        char series[128];
        snprintf(series, sizeof series,
                 "modelwatch_prediction_errors_total{model=\"m\",version=\"v\",code=\"e%d\"}", c);
        double v = value_of(f, series);
        assert_true(c < MW_MODEL_TOTALS_MAX_CODES - 1 ? v == 1 : isnan(v));
        total += isnan(v) ? 0 : v;
    }
    double other =
        value_of(f, "modelwatch_prediction_errors_total{model=\"m\",version=\"v\",code=\"other\"}");
    /* the 14 codes past the first 31, and the two without a code (by then, "other" too) */
    assert_true(other == 16);
    assert_true(total + other == 47);
    free(tb);
}

static void test_version_made_utf8(void **state)
{
    struct fixture *f = *state;
    struct test_batch *tb = batch_new();
    uint64_t lat[] = {1000};
    add_part(tb, "m", "v\xff", lat, 1, 1, 1);
    tb->err[0][0].code = "c\xc3";
    assert_int_equal(mw_model_totals_add_batch(f->totals, &tb->b, "m"), 0);
    assert_true(
        value_of(f, "modelwatch_predictions_total{model=\"m\",version=\"v\xef\xbf\xbd\"}") == 1);
    assert_true(value_of(f,
                         "modelwatch_prediction_errors_total{model=\"m\",version=\"v\xef\xbf\xbd\","
                         "code=\"c\xef\xbf\xbd\"}") == 1);
    free(tb);
}

static void test_promtool_accepts_totals(void **state)
{
    struct fixture *f = *state;
    struct test_batch *tb = batch_new();
    uint64_t lat[] = {900, 1500, 30000, 12000000};
    add_part(tb, "churn", "v3", lat, 4, 2, 2);
    add_part(tb, "churn", "", lat, 4, 0, 0);
    add_record(tb, "churn", "v3");
    assert_int_equal(mw_model_totals_add_batch(f->totals, &tb->b, "churn"), 0);
    mw_model_totals_add_joined(f->totals, "churn", 1);
    const char *text = render(f);
    assert_int_equal(access(PROMTOOL, X_OK), 0); /* a missing tool is a failure */
    char path[] = "/tmp/test_model_totals_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s check metrics < %s", PROMTOOL, path);
    int rc = system(cmd);
    unlink(path);
    assert_int_equal(rc, 0);
    free(tb);
}

static void test_null_and_duplicates(void **state)
{
    (void)state;
    assert_int_equal(mw_model_totals_add_batch(NULL, NULL, "m"), 0);
    mw_model_totals_add_joined(NULL, "m", 1);
    mw_model_totals_destroy(NULL);
    struct mw_prom_registry *reg = mw_prom_registry_create();
    struct mw_model_totals *t = mw_model_totals_create(reg, 10);
    assert_non_null(t);
    assert_null(mw_model_totals_create(reg, 10)); /* the families exist already */
    mw_model_totals_destroy(t);
    mw_prom_registry_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts_only_the_applied_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buckets_exact_away_from_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buckets_within_one_percent_at_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cardinality_bound, setup_two_pairs, teardown),
        cmocka_unit_test_setup_teardown(test_error_codes_folded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_made_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_promtool_accepts_totals, setup, teardown),
        cmocka_unit_test(test_null_and_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
