/* test_counters.c — the agent's exact counters (agent/counters.c): one set per (model,
 * version, event-time bucket), every event counted in its set, the snapshot holding each set
 * once, the table bound, and a table that opens many sets in one interval without copying
 * itself once per new set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alloc.h"
#include "buf.h"
#include "counters.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH_MS 60000
#define T0_MS 1700000040000LL /* a bucket boundary */

static long n_reallocs;

static void *counting_realloc(void *ptr, size_t size)
{
    n_reallocs++;
    return realloc(ptr, size);
}

static Modelwatch__V1__PredictionEvent event(const char *model, int64_t t_ms, uint64_t latency_us)
{
    Modelwatch__V1__PredictionEvent ev = MODELWATCH__V1__PREDICTION_EVENT__INIT;
    ev.model = (char *)model;
    ev.version = "v1";
    ev.has_event_time_ms = 1;
    ev.event_time_ms = t_ms;
    ev.has_latency_us = 1;
    ev.latency_us = latency_us;
    return ev;
}

static Modelwatch__V1__MetricsSnapshot *flush(struct mw_counters *c, struct mw_buf *out)
{
    assert_int_equal(mw_counters_flush(c, NULL, NULL, out), 0);
    Modelwatch__V1__MetricsSnapshot *snap = modelwatch__v1__metrics_snapshot__unpack(
        NULL, out->len, (const uint8_t *)out->data);
    assert_non_null(snap);
    return snap;
}

/* 16 models x 40 buckets opened in one interval, 5 events each: 640 sets, each counted
 * exactly; the table grows geometrically (a realloc per new set copied about 12 KiB per set
 * already open: 2.5 GB copied for these 640, seconds of the agent's loop). */
static void test_many_sets_in_one_interval(void **state)
{
    (void)state;
    enum { MODELS = 16, BUCKETS = 40, PER_SET = 5 };
    struct mw_counters *c = mw_counters_create(10000, WIDTH_MS);
    assert_non_null(c);
    n_reallocs = 0;
    mw_replace_allocator(NULL, NULL, counting_realloc, NULL);
    char names[MODELS][8];
    for (int m = 0; m < MODELS; m++)
        snprintf(names[m], sizeof names[m], "m%d", m);
    for (int k = 0; k < PER_SET; k++)
        for (int b = 0; b < BUCKETS; b++)
            for (int m = 0; m < MODELS; m++) {
                Modelwatch__V1__PredictionEvent ev =
                    event(names[m], T0_MS + (int64_t)b * WIDTH_MS + k, 1000);
                assert_int_equal(mw_counters_add_event(c, &ev), 0);
            }
    mw_replace_allocator(NULL, NULL, NULL, NULL);
    assert_int_equal(mw_counters_series(c), MODELS * BUCKETS);
    print_message("# %ld reallocs for %d sets\n", n_reallocs, MODELS * BUCKETS);
    assert_true(n_reallocs <= 8); /* 8, 16, ..., 1024 */

    struct mw_buf out;
    mw_buf_init(&out, 64u << 20);
    Modelwatch__V1__MetricsSnapshot *snap = flush(c, &out);
    assert_int_equal(snap->n_models, MODELS * BUCKETS);
    int seen[MODELS][BUCKETS] = {{0}};
    for (size_t i = 0; i < snap->n_models; i++) {
        const Modelwatch__V1__ModelCounters *mc = snap->models[i];
        int m = atoi(mc->model + 1);
        int64_t b = (mc->bucket_start_ms - T0_MS) / WIDTH_MS;
        assert_true(m >= 0 && m < MODELS && b >= 0 && b < BUCKETS);
        assert_int_equal(mc->count, PER_SET);
        assert_int_equal(mc->bucket_width_ms, WIDTH_MS);
        assert_int_equal(mc->latency->sum_us, PER_SET * 1000);
        seen[m][b]++;
    }
    for (int m = 0; m < MODELS; m++)
        for (int b = 0; b < BUCKETS; b++)
            assert_int_equal(seen[m][b], 1);
    modelwatch__v1__metrics_snapshot__free_unpacked(snap, NULL);
    assert_int_equal(mw_counters_series(c), 0);
    mw_buf_free(&out);
    mw_counters_destroy(c);
}

/* The bound: the set past max_series is refused with MW_EFULL, the sets already open still
 * count, and after a flush there is room again. */
static void test_table_bound(void **state)
{
    (void)state;
    struct mw_counters *c = mw_counters_create(3, WIDTH_MS);
    assert_non_null(c);
    for (int b = 0; b < 3; b++) {
        Modelwatch__V1__PredictionEvent ev = event("m", T0_MS + (int64_t)b * WIDTH_MS, 10);
        assert_int_equal(mw_counters_add_event(c, &ev), 0);
    }
    Modelwatch__V1__PredictionEvent over = event("m", T0_MS + 3 * WIDTH_MS, 10);
    assert_int_equal(mw_counters_add_event(c, &over), MW_EFULL);
    Modelwatch__V1__PredictionEvent again = event("m", T0_MS + 1, 10);
    assert_int_equal(mw_counters_add_event(c, &again), 0);
    struct mw_buf out;
    mw_buf_init(&out, 1u << 20);
    Modelwatch__V1__MetricsSnapshot *snap = flush(c, &out);
    assert_int_equal(snap->n_models, 3);
    uint64_t total = 0;
    for (size_t i = 0; i < snap->n_models; i++)
        total += snap->models[i]->count;
    assert_int_equal(total, 4);
    modelwatch__v1__metrics_snapshot__free_unpacked(snap, NULL);
    assert_int_equal(mw_counters_add_event(c, &over), 0);
    mw_buf_free(&out);
    mw_counters_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_sets_in_one_interval),
        cmocka_unit_test(test_table_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
