/*
 * test_schema.c — the Redis layout: keys as the apply script and readers spell them, window
 * keys and index members back to what they name, field names both ways, a window hash parsed,
 * and the "final" and "closed" rules at their boundaries.
 */
#include "schema.h"

#include "error.h"
#include "latency_hist.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_keys_as_spelled(void **state)
{
    (void)state;
    char key[MW_SCHEMA_KEY_MAX];
    assert_int_equal(mw_schema_window_key(key, sizeof key, "churn", 60000, 1700000040000, "v1"), 0);
    assert_string_equal(key, "mw:{churn}:w:60:1700000040000:v1");
    assert_int_equal(mw_schema_index_key(key, sizeof key, "churn", 3600000), 0);
    assert_string_equal(key, "mw:{churn}:idx:3600");
    assert_int_equal(mw_schema_watermark_key(key, sizeof key, "churn"), 0);
    assert_string_equal(key, "mw:{churn}:wm");
    assert_int_equal(mw_schema_dedup_key(key, sizeof key, "churn", "agent-1", "b00t"), 0);
    assert_string_equal(key, "mw:{churn}:dedup:agent-1:b00t");
    assert_int_equal(mw_schema_join_bucket_key(key, sizeof key, "churn", MW_SCHEMA_JOIN_PREDICTIONS,
                                               1700000040000, 3),
                     0);
    assert_string_equal(key, "mw:{churn}:jp:1700000040000:3");
    assert_int_equal(
        mw_schema_join_bucket_key(key, sizeof key, "churn", MW_SCHEMA_JOIN_LABELS, 60000, 0), 0);
    assert_string_equal(key, "mw:{churn}:jl:60000:0");
    assert_int_equal(mw_schema_join_index_key(key, sizeof key, "churn", MW_SCHEMA_JOIN_LABELS), 0);
    assert_string_equal(key, "mw:{churn}:jli");
    assert_int_equal(mw_schema_join_index_key(key, sizeof key, "churn", MW_SCHEMA_JOIN_PREDICTIONS),
                     0);
    assert_string_equal(key, "mw:{churn}:jpi");
    assert_int_equal(mw_schema_join_index_member(key, sizeof key, 1700000040000, 16), 0);
    assert_string_equal(key, "1700000040000:16");
    assert_int_equal(mw_schema_profile_key(key, sizeof key, "churn", "v1"), 0);
    assert_string_equal(key, "mw:{churn}:profile:v1");
    assert_int_equal(mw_schema_profiles_key(key, sizeof key, "churn"), 0);
    assert_string_equal(key, "mw:{churn}:profiles");
    assert_int_equal(mw_schema_model_prefix(key, sizeof key, "churn"), 0);
    assert_string_equal(key, "mw:{churn}:");
    assert_string_equal(MW_SCHEMA_MODELS_KEY, "mw:models");
}

static void test_key_too_long_for_buffer(void **state)
{
    (void)state;
    char key[16];
    assert_int_equal(mw_schema_window_key(key, sizeof key, "churn", 60000, 0, "v1"), MW_ETOOBIG);
    assert_int_equal(strlen(key), sizeof key - 1); /* truncated, terminated */
    /* the longest model and version the names module accepts fit */
    char big[MW_SCHEMA_KEY_MAX], model[129], version[129];
    memset(model, 'm', 128);
    model[128] = '\0';
    memset(version, 'v', 128);
    version[128] = '\0';
    assert_int_equal(mw_schema_window_key(big, sizeof big, model, 3600000, INT64_MAX, version), 0);
    assert_int_equal(mw_schema_dedup_key(big, sizeof big, model, version, version), 0);
}

static void test_window_key_round_trip(void **state)
{
    (void)state;
    const struct {
        const char *model, *version;
        int64_t width_ms, start_ms;
    } cases[] = {{"churn", "v1", 60000, 1700000040000},
                 {"fraud.v2-x_y", "", 3600000, 0},
                 {"m", "2024:rc:1", 60000, 120000}, /* a version with colons */
                 {"m", "v}:w:1", 60000, 60000}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char key[MW_SCHEMA_KEY_MAX];
        struct mw_schema_window_id id;
        assert_int_equal(mw_schema_window_key(key, sizeof key, cases[i].model, cases[i].width_ms,
                                              cases[i].start_ms, cases[i].version),
                         0);
        assert_int_equal(mw_schema_window_key_parse(key, &id), 0);
        assert_string_equal(id.model, cases[i].model);
        assert_string_equal(id.version, cases[i].version);
        assert_int_equal(id.width_ms, cases[i].width_ms);
        assert_int_equal(id.start_ms, cases[i].start_ms);
    }
    struct mw_schema_window_id id;
    const char *bad[] = {"mw:{churn}:idx:60",
                         "mw:{churn}:w:60",
                         "mw:{churn}:w:x:0:v",
                         "mw:{churn}:w:60:1e3:v",
                         "mw:churn:w:60:0:v",
                         "mw:{churn}:w:0:0:v",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mw_schema_window_key_parse(bad[i], &id), MW_EPARSE);
}

static void test_index_members(void **state)
{
    (void)state;
    char member[64];
    int64_t start = 0;
    const char *version = NULL;
    assert_int_equal(mw_schema_index_member(member, sizeof member, 1700000040000, "v1"), 0);
    assert_string_equal(member, "1700000040000:v1");
    assert_int_equal(mw_schema_index_member_parse(member, &start, &version), 0);
    assert_int_equal(start, 1700000040000);
    assert_string_equal(version, "v1");
    assert_ptr_equal(version, member + 14); /* borrowed from the member */
    /* only the first colon separates; an empty version is a version */
    assert_int_equal(mw_schema_index_member_parse("60000:a:b", &start, &version), 0);
    assert_int_equal(start, 60000);
    assert_string_equal(version, "a:b");
    assert_int_equal(mw_schema_index_member_parse("0:", &start, &version), 0);
    assert_int_equal(start, 0);
    assert_string_equal(version, "");
    const char *bad[] = {"", ":v1", "v1", "60000", "60000v1:x", " 60000:v1", "+5:v", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mw_schema_index_member_parse(bad[i], &start, &version), MW_EPARSE);
}

static void test_field_names_both_ways(void **state)
{
    (void)state;
    char name[128];
    uint32_t bucket = 0;
    uint64_t tag = 0;
    assert_int_equal(mw_schema_error_field(name, sizeof name, "timeout"), 0);
    assert_string_equal(name, "err:timeout");
    assert_string_equal(mw_schema_error_code(name), "timeout");
    assert_null(mw_schema_error_code("errors"));
    assert_int_equal(mw_schema_latency_field(name, sizeof name, 1279), 0);
    assert_string_equal(name, "lat:1279");
    assert_true(mw_schema_latency_bucket(name, &bucket) && bucket == 1279);
    assert_false(mw_schema_latency_bucket("lat:1280", &bucket)); /* past the last bucket */
    assert_false(mw_schema_latency_bucket("lat:-1", &bucket));
    assert_false(mw_schema_latency_bucket("lat_sum_us", &bucket));
    assert_false(mw_schema_latency_bucket("lat:", &bucket));
    assert_int_equal(mw_schema_profile_tag_field(name, sizeof name, 0xab12), 0);
    assert_string_equal(name, "pf|000000000000ab12");
    assert_true(mw_schema_profile_tag(name, &tag) && tag == 0xab12);
    assert_int_equal(mw_schema_profile_tag_field(name, sizeof name, 0xfedcba9876543210ull), 0);
    assert_string_equal(name, "pf|fedcba9876543210");
    assert_int_equal(mw_schema_profile_tag_field(name, 19, 1), MW_ETOOBIG); /* no room for NUL */
    assert_false(mw_schema_profile_tag("pf|", &tag));
    assert_false(mw_schema_profile_tag("pf|xyz", &tag));
    assert_int_equal(mw_schema_drift_field(name, sizeof name, "age", MW_DRIFT_SUFFIX_OBSERVED), 0);
    assert_string_equal(name, "d|age|obs");
    /* The same names from the prefix, one suffix after another. */
    assert_int_equal(mw_schema_drift_field(name, sizeof name, "age", ""), 0);
    size_t prefix_len = strlen(name);
    assert_int_equal(mw_schema_drift_field_suffix(name, sizeof name, prefix_len, "g12"), 0);
    assert_string_equal(name, "d|age|g12");
    assert_int_equal(mw_schema_drift_field_suffix(name, sizeof name, prefix_len, "n"), 0);
    assert_string_equal(name, "d|age|n");
    assert_int_equal(mw_schema_drift_field_suffix(name, prefix_len + 2, prefix_len, "n"), 0);
    assert_int_equal(mw_schema_drift_field_suffix(name, prefix_len + 2, prefix_len, "ab"),
                     MW_ETOOBIG); /* no room for the NUL */
    assert_int_equal(mw_schema_drift_field(name, sizeof name, "age", MW_DRIFT_SUFFIX_OBSERVED), 0);
    size_t at = 0, len = 0;
    const char *suffix = NULL;
    assert_true(mw_schema_drift_field_parse(name, &at, &len, &suffix));
    assert_int_equal(at, 2);
    assert_int_equal(len, 3);
    assert_string_equal(suffix, "obs");
    assert_true(mw_schema_drift_field_parse("d|country|c|fr", &at, &len, &suffix));
    assert_int_equal(len, 7);
    assert_string_equal(suffix, "c|fr");
    assert_false(mw_schema_drift_field_parse(MW_FIELD_WEIGHTED_RECORDS, &at, &len, &suffix));
    assert_false(mw_schema_drift_field_parse(MW_FIELD_CPU_S, &at, &len, &suffix));
    assert_false(mw_schema_drift_field_parse("count", &at, &len, &suffix));
}

static void test_window_parse(void **state)
{
    (void)state;
    const char *names[] = {"count",
                           "errors",
                           "err:timeout",
                           "lat:10",
                           "lat:12",
                           "lat:0",
                           "lat_sum_us",
                           "records",
                           "d|wrecords",
                           "d|cpu_s",
                           "d|pod_s",
                           "err:oom",
                           "late",
                           "pb:tp",
                           "d|age|n",
                           "tokens_in",
                           "tokens_out",
                           "feedback",
                           "late_records",
                           "d|cpu_req_s",
                           "d|cpu_billed_s",
                           "d|mem_gib_s",
                           "d|mem_billed_gib_s",
                           "d|gpu_s"};
    const char *values[] = {"100",  "7",    "5",  "60",  "40",   "0",   "123456", "50",
                            "75.5", "1.25", "60", "2",   "3",    "9",   "4.5",    "11",
                            "22",   "33",   "4",  "2.5", "2.75", "0.5", "1.5",    "0.125"};
    struct mw_window w = {.fields = {sizeof names / sizeof names[0], names, values}};
    assert_int_equal(mw_window_parse(&w), 0);
    assert_int_equal(w.count, 100);
    assert_int_equal(w.errors, 7);
    assert_int_equal(w.records, 50);
    assert_int_equal(w.late, 3);
    assert_int_equal(w.late_records, 4);
    assert_int_equal(w.tokens_in, 11);
    assert_int_equal(w.tokens_out, 22);
    assert_int_equal(w.feedback, 33);
    assert_int_equal(w.latency_sum_us, 123456);
    assert_true(w.weighted_records == 75.5);
    assert_true(w.resources.cpu_s == 1.25 && w.resources.pod_s == 60);
    assert_true(w.resources.cpu_requested_s == 2.5 && w.resources.cpu_billed_s == 2.75);
    assert_true(w.resources.memory_gib_s == 0.5 && w.resources.memory_billed_gib_s == 1.5);
    assert_true(w.resources.gpu_s == 0.125);
    assert_int_equal(w.n_latency, 2); /* the empty bucket is left out */
    assert_int_equal(w.latency[0].bucket, 10);
    assert_int_equal(w.latency[0].count, 60);
    assert_int_equal(w.latency[1].bucket, 12);
    assert_int_equal(w.n_error_codes, 2);
    assert_string_equal(w.error_codes[0].code, "timeout");
    assert_int_equal(w.error_codes[0].count, 5);
    assert_string_equal(w.error_codes[1].code, "oom");
    assert_true(mw_window_field(&w.fields, "d|age|n") == 4.5);
    assert_true(mw_window_field(&w.fields, "nosuch") == 0);
    mw_window_clear(&w);
    assert_null(w.latency);
    assert_int_equal(w.count, 0);
    mw_window_clear(NULL);
}

/* Width 60 s, lateness 30 s: the window [60 s, 120 s) is final at watermark 150 s, not before. */
static void test_final_at_its_boundary(void **state)
{
    (void)state;
    assert_false(mw_schema_window_final(60000, 60000, 149999, 30000));
    assert_true(mw_schema_window_final(60000, 60000, 150000, 30000));
    assert_true(mw_schema_window_final(60000, 60000, 150001, 30000));
    assert_true(mw_schema_window_final(60000, 60000, 120000, 0)); /* no lateness: at its end */
    assert_false(mw_schema_window_final(60000, 60000, 119999, 0));
    assert_false(mw_schema_window_final(0, 60000, 0, 0)); /* no watermark yet */
}

/* Closed: final, or ended `delay` ago by the clock, whichever comes first. */
static void test_closed_by_watermark_or_clock(void **state)
{
    (void)state;
    /* the watermark stands still at 150 s: by the clock at 200 s with a 20 s delay the latest
     * closed start is 200 - 20 - 60 = 120 s */
    assert_int_equal(mw_schema_closed_start_max(60000, 150000, 30000, 200000, 20000), 120000);
    assert_true(mw_schema_window_closed(120000, 60000, 150000, 30000, 200000, 20000));
    assert_false(mw_schema_window_closed(120001, 60000, 150000, 30000, 200000, 20000));
    assert_false(mw_schema_window_closed(120000, 60000, 150000, 30000, 199999, 20000));
    /* the watermark ahead of the clock: final windows are closed */
    assert_int_equal(mw_schema_closed_start_max(60000, 400000, 30000, 200000, 20000), 310000);
    for (int64_t start = 0; start <= 600000; start += 60000)
        if (mw_schema_window_final(start, 60000, 400000, 30000))
            assert_true(mw_schema_window_closed(start, 60000, 400000, 30000, 0, 20000));
}

/* The alerting state's fields, and the latest final start the evaluator reads up to. */
static void test_alert_fields(void **state)
{
    (void)state;
    char out[256], model[64];
    assert_int_equal(mw_schema_alert_instance_field(out, sizeof out, "g/R", "churn", "v1", "f3"),
                     0);
    assert_memory_equal(out,
                        "g/R\x1f"
                        "churn\x1f"
                        "v1\x1f"
                        "f:f3",
                        17);
    assert_int_equal(mw_schema_alert_instance_field(out, sizeof out, "g/R", "churn", "", NULL), 0);
    assert_string_equal(out, "g/R\x1f"
                             "churn\x1f"
                             "\x1f"
                             "-");
    assert_int_equal(mw_schema_alert_instance_field(out, 8, "g/R", "churn", "", NULL), MW_ETOOBIG);
    char kind;
    int64_t width = 0, delay = -1;
    assert_int_equal(mw_schema_alert_cursor_field(out, sizeof out, "churn", 60000, 0), 0);
    assert_string_equal(out, "c|60000|churn");
    assert_int_equal(
        mw_schema_alert_cursors_field_parse(out, &kind, &width, &delay, model, sizeof model), 0);
    assert_true(kind == 'c' && width == 60000 && delay == 0 && strcmp(model, "churn") == 0);
    /* The cursor of the rules with a delay; a model may hold '|' and '+'. */
    assert_int_equal(mw_schema_alert_cursor_field(out, sizeof out, "a|b+c", 60000, 3600000), 0);
    assert_string_equal(out, "c|60000+3600000|a|b+c");
    assert_int_equal(
        mw_schema_alert_cursors_field_parse(out, &kind, &width, &delay, model, sizeof model), 0);
    assert_true(kind == 'c' && width == 60000 && delay == 3600000 && strcmp(model, "a|b+c") == 0);
    assert_int_equal(mw_schema_alert_seen_field(out, sizeof out, "fraud"), 0);
    assert_int_equal(
        mw_schema_alert_cursors_field_parse(out, &kind, &width, &delay, model, sizeof model), 0);
    assert_true(kind == 's' && strcmp(model, "fraud") == 0);
    const char *bad[] = {"c|x|m", "s|", "c|60000+|m", "c|60000+0|m", "c|60000+x|m", "c|60000-5|m"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mw_schema_alert_cursors_field_parse(bad[i], &kind, &width, &delay, model,
                                                             64),
                         MW_EPARSE);
    /* Final: start + width + lateness <= watermark. */
    assert_int_equal(mw_schema_final_start_max(60000, 185000, 5000), 120000);
    assert_true(mw_schema_window_final(120000, 60000, 185000, 5000));
    assert_false(mw_schema_window_final(180000, 60000, 185000, 5000));
    assert_int_equal(mw_schema_final_start_max(60000, 184999, 5000), 60000);
    assert_int_equal(mw_schema_final_start_max(60000, -1, 0), -120000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_as_spelled),
        cmocka_unit_test(test_key_too_long_for_buffer),
        cmocka_unit_test(test_window_key_round_trip),
        cmocka_unit_test(test_index_members),
        cmocka_unit_test(test_field_names_both_ways),
        cmocka_unit_test(test_window_parse),
        cmocka_unit_test(test_final_at_its_boundary),
        cmocka_unit_test(test_closed_by_watermark_or_clock),
        cmocka_unit_test(test_alert_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
