/* test_proto.c — the wire schema end to end in one process: ClientMessage round trip, a Batch
 * assembled by the agent's builder and decoded by the aggregator, and the Redis plan it yields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "batch_builder.h"
#include "batch_decode.h"
#include "buf.h"
#include "alloc.h"
#include "counters.h"
#include "error.h"
#include "latency_hist.h"
#include "profile.h"
#include "telemetry.pb-c.h"
#include "value_sketch.h"
#include "window_apply.h"
#include "zframe.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_MS 60000

/* Pack one prediction as the client library does. Caller frees *out. */
static size_t pack_event(const char *model, const char *id, int64_t t_ms, uint64_t latency_us,
                         int error, uint8_t **out)
{
    Modelwatch__V1__Feature f = MODELWATCH__V1__FEATURE__INIT;
    Modelwatch__V1__Feature *fp = &f;
    f.name = "age";
    f.value_case = MODELWATCH__V1__FEATURE__VALUE_NUMERIC;
    f.numeric = 42.0;
    Modelwatch__V1__PredictionEvent ev = MODELWATCH__V1__PREDICTION_EVENT__INIT;
    ev.model = (char *)model;
    ev.version = "v1";
    ev.prediction_id = (char *)id;
    ev.has_event_time_ms = ev.has_latency_us = ev.has_status = 1;
    ev.event_time_ms = t_ms;
    ev.latency_us = latency_us;
    ev.status = error ? MODELWATCH__V1__STATUS__STATUS_ERROR : MODELWATCH__V1__STATUS__STATUS_OK;
    ev.error_code = error ? "timeout" : NULL;
    ev.n_features = 1;
    ev.features = &fp;
    Modelwatch__V1__ClientMessage msg = MODELWATCH__V1__CLIENT_MESSAGE__INIT;
    msg.body_case = MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT;
    msg.event = &ev;
    size_t n = modelwatch__v1__client_message__get_packed_size(&msg);
    *out = malloc(n);
    modelwatch__v1__client_message__pack(&msg, *out);
    return n;
}

static void test_client_message_round_trip(void **state)
{
    (void)state;
    uint8_t *wire = NULL;
    size_t n = pack_event("churn", "id-1", 1700000000000, 1234, 1, &wire);
    Modelwatch__V1__ClientMessage *m = modelwatch__v1__client_message__unpack(NULL, n, wire);
    assert_non_null(m);
    assert_string_equal(m->event->model, "churn");
    assert_string_equal(m->event->prediction_id, "id-1");
    assert_int_equal(m->event->event_time_ms, 1700000000000);
    assert_int_equal(m->event->latency_us, 1234);
    assert_string_equal(m->event->error_code, "timeout");
    assert_true(m->event->features[0]->numeric == 42.0);
    modelwatch__v1__client_message__free_unpacked(m, NULL);
    /* Every truncation either fails to decode or decodes to a prefix; never crashes. */
    for (size_t cut = 0; cut < n; cut++) {
        m = modelwatch__v1__client_message__unpack(NULL, cut, wire);
        if (m)
            modelwatch__v1__client_message__free_unpacked(m, NULL);
    }
    free(wire);
}

struct sealed {
    struct mw_buf batch;
    struct mw_buf compressed;
};

/* Three events of two models in two minutes, plus counters, sealed and compressed. */
static void build_batch(struct sealed *out, uint64_t sequence)
{
    const int64_t t0 = 1700000040000; /* a minute boundary */
    struct mw_counters *counters = mw_counters_create(16, MINUTE_MS);
    struct mw_batch_builder b;
    assert_int_equal(mw_batch_builder_init(&b, 100, 1 << 20), 0);
    const struct {
        const char *model;
        int64_t t;
        uint64_t lat;
        int err;
    } evs[] = {{"churn", t0 + 5, 1000, 0},
               {"churn", t0 + MINUTE_MS + 1, 2000, 1},
               {"fraud", t0 + 10, 500, 0}};
    for (size_t i = 0; i < 3; i++) {
        uint8_t *wire = NULL;
        char id[16];
        snprintf(id, sizeof id, "id-%zu", i);
        size_t n = pack_event(evs[i].model, id, evs[i].t, evs[i].lat, evs[i].err, &wire);
        Modelwatch__V1__ClientMessage *m = modelwatch__v1__client_message__unpack(NULL, n, wire);
        assert_int_equal(mw_counters_add_event(counters, m->event), 0);
        modelwatch__v1__client_message__free_unpacked(m, NULL);
        assert_int_equal(mw_batch_builder_add(&b, wire, n, 2.5, i != 1), 0);
        free(wire);
    }
    struct mw_buf snapshot;
    mw_buf_init(&snapshot, 1 << 20);
    assert_int_equal(mw_counters_flush(counters, NULL, NULL, &snapshot), 0);
    assert_int_equal(mw_counters_series(counters), 0);
    Modelwatch__V1__Identity id = MODELWATCH__V1__IDENTITY__INIT;
    id.agent_id = "agent-a";
    id.boot_id = "boot-1";
    id.pod = "pod-1";
    struct mw_zframe_ctx *z = mw_zframe_ctx_create(3);
    const void *frame = NULL;
    size_t frame_len = 0;
    assert_int_equal(mw_batch_builder_seal(&b, z, &id, sequence, 1700000100000, &snapshot, &frame,
                                           &frame_len),
                     0);
    assert_int_equal(b.n_records, 0);
    mw_buf_init(&out->compressed, 1 << 20);
    assert_int_equal(mw_buf_append(&out->compressed, frame, frame_len), 0);
    /* The uncompressed batch, for the tests that read it: the frame decompressed. */
    mw_buf_init(&out->batch, 1 << 20);
    assert_int_equal(mw_zframe_decompress(z, frame, frame_len, 1 << 20, &out->batch), 0);
    mw_zframe_ctx_destroy(z);
    mw_buf_free(&snapshot);
    mw_batch_builder_free(&b);
    mw_counters_destroy(counters);
}

static void free_sealed(struct sealed *s)
{
    mw_buf_free(&s->batch);
    mw_buf_free(&s->compressed);
}

static const Modelwatch__V1__ModelCounters *find_counters(const Modelwatch__V1__Batch *b,
                                                          const char *model, int64_t start)
{
    for (size_t i = 0; i < b->snapshot->n_models; i++) {
        const Modelwatch__V1__ModelCounters *mc = b->snapshot->models[i];
        if (strcmp(mc->model, model) == 0 && mc->bucket_start_ms == start)
            return mc;
    }
    return NULL;
}

static void test_builder_batch_decodes_with_records_and_counters(void **state)
{
    (void)state;
    struct sealed s;
    build_batch(&s, 7);
    Modelwatch__V1__Batch *b =
        modelwatch__v1__batch__unpack(NULL, s.batch.len, (uint8_t *)s.batch.data);
    assert_non_null(b);
    assert_int_equal(b->schema_version, MW_SCHEMA_VERSION);
    assert_int_equal(b->sequence, 7);
    assert_string_equal(b->identity->agent_id, "agent-a");
    assert_string_equal(b->identity->pod, "pod-1");
    assert_int_equal(b->n_records, 3);
    assert_int_equal(b->records[0]->body_case, MODELWATCH__V1__RECORD__BODY_EVENT);
    assert_string_equal(b->records[1]->event->prediction_id, "id-1");
    assert_true(b->records[2]->weight == 2.5);
    assert_true(b->records[0]->has_label_sampled && b->records[0]->label_sampled);
    assert_true(b->records[1]->has_label_sampled && !b->records[1]->label_sampled);
    assert_int_equal(b->snapshot->n_models, 3);
    const Modelwatch__V1__ModelCounters *late = find_counters(b, "churn", 1700000100000);
    assert_non_null(late);
    assert_int_equal(late->count, 1);
    assert_int_equal(late->error_count, 1);
    assert_string_equal(late->errors[0]->code, "timeout");
    assert_int_equal(late->latency->n_bucket_index, 1);
    assert_int_equal(late->latency->bucket_index[0], mw_latency_bucket(2000));
    assert_int_equal(late->latency->sum_us, 2000);
    modelwatch__v1__batch__free_unpacked(b, NULL);
    free_sealed(&s);
}

/* The builder seals batch after batch in the same memory: each frame holds its own records and
 * header only, and a frame is untouched by the records added after it was sealed. */
static void test_builder_reuses_its_buffers_across_batches(void **state)
{
    (void)state;
    struct mw_batch_builder b;
    assert_int_equal(mw_batch_builder_init(&b, 100, 1 << 20), 0);
    struct mw_zframe_ctx *z = mw_zframe_ctx_create(1);
    Modelwatch__V1__Identity id = MODELWATCH__V1__IDENTITY__INIT;
    id.agent_id = "agent-a";
    struct mw_buf snapshot;
    mw_buf_init(&snapshot, 1 << 20);
    const char *wire_data = NULL;
    for (uint64_t seq = 1; seq <= 3; seq++) {
        for (size_t i = 0; i < seq; i++) {
            uint8_t *wire = NULL;
            char pid[32];
            snprintf(pid, sizeof pid, "b%" PRIu64 "-%zu", seq, i);
            size_t n = pack_event("churn", pid, 1700000000000, 100, 0, &wire);
            assert_int_equal(mw_batch_builder_add(&b, wire, n, 1.0, -1), 0);
            free(wire);
        }
        const void *frame = NULL;
        size_t frame_len = 0;
        assert_int_equal(
            mw_batch_builder_seal(&b, z, &id, seq, 1700000100000, &snapshot, &frame, &frame_len),
            0);
        /* The same buffer every time: no allocation per batch. */
        if (wire_data)
            assert_ptr_equal(b.wire.data, wire_data);
        wire_data = b.wire.data;
        assert_int_equal(b.n_records, 0);
        assert_int_equal(b.wire.len, 0);
        struct mw_buf copy, raw;
        mw_buf_init(&copy, 1 << 20);
        mw_buf_init(&raw, 1 << 20);
        assert_int_equal(mw_buf_append(&copy, frame, frame_len), 0);
        /* Records of the next batch do not disturb the sealed frame. */
        uint8_t *wire = NULL;
        size_t n = pack_event("fraud", "later", 1700000000000, 100, 0, &wire);
        assert_int_equal(mw_batch_builder_add(&b, wire, n, 1.0, -1), 0);
        free(wire);
        assert_memory_equal(frame, copy.data, frame_len);
        assert_int_equal(mw_zframe_decompress(z, copy.data, copy.len, 1 << 20, &raw), 0);
        Modelwatch__V1__Batch *batch =
            modelwatch__v1__batch__unpack(NULL, raw.len, (uint8_t *)raw.data);
        assert_non_null(batch);
        assert_int_equal(batch->sequence, seq);
        assert_int_equal(batch->n_records, seq);
        char want[32];
        snprintf(want, sizeof want, "b%" PRIu64 "-0", seq);
        assert_string_equal(batch->records[0]->event->prediction_id, want);
        modelwatch__v1__batch__free_unpacked(batch, NULL);
        mw_buf_free(&copy);
        mw_buf_free(&raw);
        /* Forget the "later" record: the next round starts from a sealed, empty builder. */
        frame = NULL;
        assert_int_equal(
            mw_batch_builder_seal(&b, z, &id, 100 + seq, 1700000100000, &snapshot, &frame,
                                  &frame_len),
            0);
    }
    mw_buf_free(&snapshot);
    mw_zframe_ctx_destroy(z);
    mw_batch_builder_free(&b);
}

static void test_decode_accepts_good_and_refuses_bad(void **state)
{
    (void)state;
    struct sealed s;
    build_batch(&s, 1);
    struct mw_zframe_ctx *z = mw_zframe_ctx_create(3);
    struct mw_buf scratch;
    mw_buf_init(&scratch, 1 << 20);
    Modelwatch__V1__Batch *b = NULL;
    enum mw_dlq_reason why;
    assert_int_equal(
        mw_batch_decode(z, s.compressed.data, s.compressed.len, "1", 1 << 20, &scratch, &b, &why),
        0);
    assert_int_equal(b->n_records, 3);
    modelwatch__v1__batch__free_unpacked(b, NULL);
    assert_int_equal(
        mw_batch_decode(z, s.compressed.data, s.compressed.len, "2", 1 << 20, &scratch, &b, &why),
        MW_EPARSE);
    assert_int_equal(why, MW_DLQ_SCHEMA);
    assert_int_equal(mw_batch_decode(z, s.compressed.data, s.compressed.len - 1, NULL, 1 << 20,
                                     &scratch, &b, &why),
                     MW_EPARSE);
    assert_int_equal(why, MW_DLQ_DECOMPRESS);
    assert_int_equal(
        mw_batch_decode(z, s.compressed.data, s.compressed.len, NULL, 10, &scratch, &b, &why),
        MW_EPARSE);
    assert_int_equal(why, MW_DLQ_TOO_BIG);
    /* Valid zstd holding garbage protobuf. */
    struct mw_buf junk;
    mw_buf_init(&junk, 1 << 20);
    assert_int_equal(mw_zframe_compress(z, "\xff\xff\xff\xff\xff", 5, &junk), 0);
    assert_int_equal(mw_batch_decode(z, junk.data, junk.len, NULL, 1 << 20, &scratch, &b, &why),
                     MW_EPARSE);
    assert_int_equal(why, MW_DLQ_DECODE);
    /* A decodable batch without identity. */
    Modelwatch__V1__Batch empty = MODELWATCH__V1__BATCH__INIT;
    empty.has_schema_version = 1;
    empty.schema_version = 1;
    uint8_t wire[64];
    size_t n = modelwatch__v1__batch__pack(&empty, wire);
    mw_buf_reset(&junk);
    assert_int_equal(mw_zframe_compress(z, wire, n, &junk), 0);
    assert_int_equal(mw_batch_decode(z, junk.data, junk.len, NULL, 1 << 20, &scratch, &b, &why),
                     MW_EPARSE);
    assert_int_equal(why, MW_DLQ_IDENTITY);
    mw_buf_free(&junk);
    mw_buf_free(&scratch);
    mw_zframe_ctx_destroy(z);
    free_sealed(&s);
}

/* Index of argument `text` in cmd, or -1. */
static long find_arg(const struct mw_redis_cmd *cmd, const char *text)
{
    for (size_t i = 0; i < cmd->argc; i++)
        if (strcmp(cmd->argv[i], text) == 0)
            return (long)i;
    return -1;
}

static void test_apply_plan_has_one_script_per_model(void **state)
{
    (void)state;
    struct sealed s;
    build_batch(&s, 9);
    Modelwatch__V1__Batch *b =
        modelwatch__v1__batch__unpack(NULL, s.batch.len, (uint8_t *)s.batch.data);
    struct mw_window_spec specs[] = {{MINUTE_MS, 3600000, true}, {3600000, 86400000, true}};
    struct mw_apply_options opt = {.specs = specs,
                                   .n_specs = 2,
                                   .dedup_retention_ms = 604800000,
                                   .watermark_ms = INT64_MIN,
                                   .out_of_orderness_ms = 60000};
    struct mw_apply_plan plan;
    assert_int_equal(mw_apply_plan_build(b, &opt, &plan), 0);
    assert_int_equal(plan.n_cmds, 3); /* churn, fraud, SADD */
    const struct mw_redis_cmd *churn = &plan.cmds[0];
    assert_string_equal(churn->argv[0], "EVALSHA");
    assert_string_equal(churn->argv[1], MW_APPLY_SCRIPT_SHA1);
    /* dedup chunk + watermark + dedup of earlier versions + 2 indexes + 2 minute windows +
     * 1 hour window */
    assert_string_equal(churn->argv[2], "8");
    assert_string_equal(churn->argv[3], "mw:{churn}:dedup:agent-a:boot-1:0");
    assert_string_equal(churn->argv[4], "mw:{churn}:wm");
    assert_string_equal(churn->argv[5], "mw:{churn}:dedup:agent-a:boot-1");
    assert_string_equal(churn->argv[6], "mw:{churn}:idx:60");
    assert_string_equal(churn->argv[7], "mw:{churn}:idx:3600");
    assert_true(find_arg(churn, "mw:{churn}:w:60:1700000040000:v1") > 0);
    assert_true(find_arg(churn, "mw:{churn}:w:60:1700000100000:v1") > 0);
    assert_true(find_arg(churn, "mw:{churn}:w:3600:1699999200000:v1") > 0);
    assert_string_equal(churn->argv[11], "9"); /* the sequence's bit in its chunk */
    /* The watermark candidate: the newest counter bucket start less out_of_orderness. */
    assert_string_equal(churn->argv[14], "1700000040000");
    /* The hour window folds both minutes: count 2, records 2, one error. */
    long hour_member = find_arg(churn, "1699999200000:v1");
    assert_true(hour_member > 0);
    long n_int = strtol(churn->argv[hour_member + 3], NULL, 10);
    int64_t count = -1, records = -1, errors = -1;
    for (long f = 0; f < n_int; f++) {
        const char *name = churn->argv[hour_member + 5 + 2 * f];
        long long v = strtoll(churn->argv[hour_member + 6 + 2 * f], NULL, 10);
        if (strcmp(name, "count") == 0)
            count = v;
        else if (strcmp(name, "records") == 0)
            records = v;
        else if (strcmp(name, "errors") == 0)
            errors = v;
    }
    assert_int_equal(count, 2);
    assert_int_equal(records, 2);
    assert_int_equal(errors, 1);
    assert_string_equal(plan.cmds[2].argv[0], "SADD");
    assert_int_equal(plan.cmds[2].argc, 4);
    mw_apply_plan_free(&plan);
    modelwatch__v1__batch__free_unpacked(b, NULL);
    free_sealed(&s);
}

/* Value of integer field `name` of the window whose member is `member`, or -1. */
static long long window_int_field(const struct mw_redis_cmd *cmd, const char *member,
                                  const char *name)
{
    long at = find_arg(cmd, member);
    if (at < 0)
        return -1;
    long n_int = strtol(cmd->argv[at + 3], NULL, 10);
    for (long f = 0; f < n_int; f++)
        if (strcmp(cmd->argv[at + 5 + 2 * f], name) == 0)
            return strtoll(cmd->argv[at + 6 + 2 * f], NULL, 10);
    return -1;
}

static const struct mw_profile *profile_from_ctx(void *ctx, const char *model, const char *version)
{
    (void)model;
    (void)version;
    return ctx;
}

/* Whether any window of the first model's script has float field `name`. */
static bool has_field(const struct mw_apply_plan *plan, const char *name)
{
    return find_arg(&plan->cmds[0], name) > 0;
}

/* Numeric values go to the profile's grid, and to the profile-independent sketch only while no
 * profile is in force, unless drift.sketch_always asks for both. */
static void test_sketch_only_without_profile_unless_always(void **state)
{
    (void)state;
    static const char profile_json[] =
        "{\"format\":2,\"model\":\"churn\",\"version\":\"v1\",\"features\":{\"age\":{"
        "\"type\":\"numeric\",\"count\":2,\"min\":30,\"max\":50,\"mean\":40,\"std\":10,"
        "\"cuts\":[40],\"region_counts\":[1,1],\"region_sums\":[30,50],\"deciles\":[40]}}}";
    struct mw_profile *profile = NULL;
    char err[256];
    assert_int_equal(
        mw_profile_parse(profile_json, sizeof profile_json - 1, &profile, err, sizeof err), 0);
    struct sealed s;
    build_batch(&s, 5);
    Modelwatch__V1__Batch *b =
        modelwatch__v1__batch__unpack(NULL, s.batch.len, (uint8_t *)s.batch.data);
    struct mw_window_spec specs[] = {{MINUTE_MS, 3600000, true}, {3600000, 86400000, true}};
    struct mw_apply_options opt = {.specs = specs,
                                   .n_specs = 2,
                                   .dedup_retention_ms = 604800000,
                                   .watermark_ms = INT64_MIN,
                                   .profile = profile_from_ctx};
    char bucket[24], sketch[64];
    mw_sketch_bucket_name(mw_sketch_bucket_of(42.0), bucket, sizeof bucket);
    snprintf(sketch, sizeof sketch, "d|age|%s", bucket);
    const char *grid = "d|age|g2"; /* 42 in [40, 50]: region 1, slot 2 */
    struct {
        void *profile;
        bool always;
        bool want_grid, want_sketch;
    } cases[] = {
        {NULL, false, false, true}, {profile, false, true, false}, {profile, true, true, true}};
    for (size_t i = 0; i < 3; i++) {
        opt.profile_ctx = cases[i].profile;
        opt.sketch_always = cases[i].always;
        struct mw_apply_plan plan;
        assert_int_equal(mw_apply_plan_build(b, &opt, &plan), 0);
        assert_int_equal(has_field(&plan, grid), cases[i].want_grid);
        assert_int_equal(has_field(&plan, sketch), cases[i].want_sketch);
        mw_apply_plan_free(&plan);
    }
    modelwatch__v1__batch__free_unpacked(b, NULL);
    free_sealed(&s);
    mw_profile_free(profile);
}

static void test_late_counters_are_counted_not_merged(void **state)
{
    (void)state;
    struct sealed s;
    build_batch(&s, 3); /* churn: one event in minute t0, one in t0 + 1 min; fraud: one in t0 */
    Modelwatch__V1__Batch *b =
        modelwatch__v1__batch__unpack(NULL, s.batch.len, (uint8_t *)s.batch.data);
    struct mw_window_spec specs[] = {{MINUTE_MS, 3600000, true}, {3600000, 86400000, true}};
    /* The first minute [t0, t0 + 1 min) is final once the watermark reaches its end plus the
     * allowed lateness (30 s): put the watermark exactly there. The second minute is not. */
    const int64_t t0 = 1700000040000;
    struct mw_apply_options opt = {.specs = specs,
                                   .n_specs = 1,
                                   .dedup_retention_ms = 604800000,
                                   .watermark_ms = t0 + MINUTE_MS + 30000,
                                   .allowed_lateness_ms = 30000};
    struct mw_apply_plan plan;
    assert_int_equal(mw_apply_plan_build(b, &opt, &plan), 0);
    assert_int_equal(plan.late_predictions, 2); /* churn's and fraud's first-minute events */
    assert_int_equal(plan.late_records, 2);
    const struct mw_redis_cmd *churn = &plan.cmds[0];
    assert_int_equal(window_int_field(churn, "1700000040000:v1", "late"), 1);
    assert_int_equal(window_int_field(churn, "1700000040000:v1", "count"), -1);
    assert_int_equal(window_int_field(churn, "1700000040000:v1", "late_records"), 1);
    assert_int_equal(window_int_field(churn, "1700000100000:v1", "count"), 1);
    assert_int_equal(window_int_field(churn, "1700000100000:v1", "late"), -1);
    mw_apply_plan_free(&plan);
    /* One millisecond earlier, nothing is late. */
    opt.watermark_ms -= 1;
    assert_int_equal(mw_apply_plan_build(b, &opt, &plan), 0);
    assert_int_equal(plan.late_predictions, 0);
    assert_int_equal(window_int_field(&plan.cmds[0], "1700000040000:v1", "count"), 1);
    mw_apply_plan_free(&plan);
    modelwatch__v1__batch__free_unpacked(b, NULL);
    free_sealed(&s);
}

/* A realloc that always moves the block, so that a pointer kept across it is caught. */
static void *moving_realloc(void *ptr, size_t size)
{
    void *moved = malloc(size ? size : 1);
    if (moved && ptr) {
        size_t old = malloc_usable_size(ptr);
        memcpy(moved, ptr, old < size ? old : size);
        memset(ptr, 0xa5, old);
        free(ptr);
    }
    return moved;
}

static const struct mw_profile *one_profile(void *ctx, const char *model, const char *version)
{
    (void)model;
    (void)version;
    return ctx;
}

/* Regression: plan_record kept the fine window's pointer while creating the coarse window,
 * whose realloc could move the model's window array; the fine window's float count then
 * missed the drift fields and the script read its arguments misaligned. */
static void test_drift_fields_survive_the_window_array_moving(void **state)
{
    (void)state;
    static const char profile_json[] =
        "{\"format\":2,\"model\":\"m\",\"version\":\"v1\",\"features\":{\"age\":{\"type\":"
        "\"numeric\",\"count\":10,\"min\":0,\"max\":99,\"mean\":40,\"std\":20,\"cuts\":[20,40],"
        "\"region_counts\":[3,4,3],\"region_sums\":[30,120,210],\"deciles\":[20,40]}}}";
    struct mw_profile *profile = NULL;
    char err[128];
    assert_int_equal(
        mw_profile_parse(profile_json, sizeof profile_json - 1, &profile, err, sizeof err), 0);
    Modelwatch__V1__Feature age = MODELWATCH__V1__FEATURE__INIT, *agep = &age;
    age.name = "age";
    age.value_case = MODELWATCH__V1__FEATURE__VALUE_NUMERIC;
    age.numeric = 30;
    Modelwatch__V1__PredictionEvent ev = MODELWATCH__V1__PREDICTION_EVENT__INIT;
    ev.model = "m";
    ev.version = "v1";
    ev.prediction_id = "p-1";
    ev.has_event_time_ms = 1;
    ev.event_time_ms = 1700000040000;
    ev.n_features = 1;
    ev.features = &agep;
    Modelwatch__V1__Record rec = MODELWATCH__V1__RECORD__INIT, *recp = &rec;
    rec.body_case = MODELWATCH__V1__RECORD__BODY_EVENT;
    rec.event = &ev;
    Modelwatch__V1__Identity id = MODELWATCH__V1__IDENTITY__INIT;
    id.agent_id = "a";
    id.boot_id = "b";
    Modelwatch__V1__Batch b = MODELWATCH__V1__BATCH__INIT;
    b.identity = &id;
    b.n_records = 1;
    b.records = &recp;
    struct mw_window_spec specs[] = {{MINUTE_MS, 3600000, true}, {3600000, 86400000, true}};
    struct mw_apply_options opt = {.specs = specs,
                                   .n_specs = 2,
                                   .dedup_retention_ms = 604800000,
                                   .watermark_ms = INT64_MIN,
                                   .profile = one_profile,
                                   .profile_ctx = profile};
    struct mw_apply_plan plan;
    mw_replace_allocator(malloc, calloc, moving_realloc, free);
    int rc = mw_apply_plan_build(&b, &opt, &plan);
    mw_replace_allocator(malloc, calloc, realloc, free);
    assert_int_equal(rc, 0);
    const struct mw_redis_cmd *cmd = &plan.cmds[0];
    const char *members[] = {"1700000040000:v1", "1699999200000:v1"};
    for (size_t k = 0; k < 2; k++) {
        long at = find_arg(cmd, members[k]);
        assert_true(at > 0);
        long n_int = strtol(cmd->argv[at + 3], NULL, 10);
        long n_float = strtol(cmd->argv[at + 4], NULL, 10);
        long floats_listed = 0;
        for (long f = 0; f < n_int + n_float; f++)
            floats_listed += strncmp(cmd->argv[at + 5 + 2 * f], "d|", 2) == 0;
        assert_int_equal(n_float, 4); /* d|wrecords, d|age|n, d|age|obs, d|age|g2 */
        assert_int_equal(floats_listed, n_float);
    }
    mw_apply_plan_free(&plan);
    mw_profile_free(profile);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_message_round_trip),
        cmocka_unit_test(test_builder_batch_decodes_with_records_and_counters),
        cmocka_unit_test(test_builder_reuses_its_buffers_across_batches),
        cmocka_unit_test(test_decode_accepts_good_and_refuses_bad),
        cmocka_unit_test(test_apply_plan_has_one_script_per_model),
        cmocka_unit_test(test_late_counters_are_counted_not_merged),
        cmocka_unit_test(test_sketch_only_without_profile_unless_always),
        cmocka_unit_test(test_drift_fields_survive_the_window_array_moving),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
