/* test_pb_read.c — the batch reader (common/pb_read.c) against protobuf-c's unpacker.
 *
 * Each case hand-builds the wire bytes of a Batch at one of protobuf-c's reading rules (last
 * one wins, oneofs, merging, strings with NUL, unknown fields, wire types, packed and unpacked
 * runs, malformed framing) and checks that mw_pb_read, from malloc and from an arena, refuses
 * what protobuf-c refuses and otherwise gives a Batch equal to protobuf-c's (mw_pb_equal), then
 * what the rule says the Batch holds. The fuzz target kafka_batch checks the same on every
 * input it makes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arena.h"
#include "error.h"
#include "pb_read.h"
#include "telemetry.pb-c.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing wire bytes by hand -------------------------------------------------------------- */

struct wire {
    uint8_t b[8192];
    size_t n;
};

static void raw(struct wire *w, const void *data, size_t len)
{
    assert_true(w->n + len <= sizeof w->b);
    memcpy(w->b + w->n, data, len);
    w->n += len;
}

static void varint(struct wire *w, uint64_t v)
{
    do {
        uint8_t byte = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        raw(w, &byte, 1);
        v >>= 7;
    } while (v);
}

static void key(struct wire *w, uint32_t tag, unsigned type)
{
    varint(w, (uint64_t)tag << 3 | type);
}

static void u(struct wire *w, uint32_t tag, uint64_t v)
{
    key(w, tag, 0);
    varint(w, v);
}

static void f64(struct wire *w, uint32_t tag, double v)
{
    key(w, tag, 1);
    raw(w, &v, 8);
}

static void bytes(struct wire *w, uint32_t tag, const void *data, size_t len)
{
    key(w, tag, 2);
    varint(w, len);
    raw(w, data, len);
}

static void str(struct wire *w, uint32_t tag, const char *s)
{
    bytes(w, tag, s, strlen(s));
}

static void sub(struct wire *w, uint32_t tag, const struct wire *m)
{
    bytes(w, tag, m->b, m->n);
}

/* ---- the comparison -------------------------------------------------------------------------- */

struct fixture {
    struct mw_arena arena;
    Modelwatch__V1__Batch *expect; /* protobuf-c's, malloc */
    Modelwatch__V1__Batch *got;    /* mw_pb_read's, malloc */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || mw_arena_init_growing(&f->arena, 4096, 1u << 24) != 0)
        return -1;
    *state = f;
    return 0;
}

static void release(struct fixture *f)
{
    modelwatch__v1__batch__free_unpacked(f->expect, NULL);
    modelwatch__v1__batch__free_unpacked(f->got, NULL);
    f->expect = f->got = NULL;
    mw_arena_reset(&f->arena);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    release(f);
    mw_arena_free(&f->arena);
    free(f);
    return 0;
}

/* Read `w` both ways (and from the arena); they must agree. Returns whether it was accepted;
 * f->expect and f->got hold the Batches until the next call. */
static bool same(struct fixture *f, const struct wire *w)
{
    release(f);
    f->expect = modelwatch__v1__batch__unpack(NULL, w->n, w->b);
    ProtobufCMessage *got = NULL;
    int rc = mw_pb_read(&modelwatch__v1__batch__descriptor, NULL, w->b, w->n, &got);
    assert_int_not_equal(rc, MW_PB_READ_NOT_MINE);
    assert_int_equal(rc == 0, f->expect != NULL);
    f->got = (Modelwatch__V1__Batch *)got;
    if (rc == 0)
        assert_true(mw_pb_equal(&f->expect->base, got));
    else
        assert_int_equal(rc, MW_EPARSE);

    ProtobufCMessage *in_arena = NULL;
    rc = mw_pb_read(&modelwatch__v1__batch__descriptor, &f->arena.pb_allocator, w->b, w->n,
                    &in_arena);
    assert_int_equal(rc == 0, f->expect != NULL);
    if (rc == 0)
        assert_true(mw_pb_equal(&f->expect->base, in_arena));
    return f->expect != NULL;
}

static void refused(struct fixture *f, const struct wire *w)
{
    assert_false(same(f, w));
}

/* ---- cases ----------------------------------------------------------------------------------- */

/* What an agent sends: protobuf-c's own packing of a full batch. */
static void test_agent_batch(void **state)
{
    struct fixture *f = *state;
    Modelwatch__V1__Batch b = MODELWATCH__V1__BATCH__INIT;
    Modelwatch__V1__Identity id = MODELWATCH__V1__IDENTITY__INIT;
    id.agent_id = "agent-a";
    id.boot_id = "boot-1";
    id.pod = "pod-0";
    b.identity = &id;
    b.has_schema_version = b.has_sequence = b.has_sealed_at_ms = 1;
    b.schema_version = 1;
    b.sequence = 42;
    b.sealed_at_ms = 1700000000123;

    Modelwatch__V1__Feature feats[3] = {MODELWATCH__V1__FEATURE__INIT,
                                        MODELWATCH__V1__FEATURE__INIT,
                                        MODELWATCH__V1__FEATURE__INIT};
    Modelwatch__V1__Feature *fp[3] = {&feats[0], &feats[1], &feats[2]};
    feats[0].name = "age";
    feats[0].value_case = MODELWATCH__V1__FEATURE__VALUE_NUMERIC;
    feats[0].numeric = -0.0;
    feats[1].name = "country";
    feats[1].value_case = MODELWATCH__V1__FEATURE__VALUE_CATEGORICAL;
    feats[1].categorical = "";
    feats[2].name = "income";
    feats[2].has_missing = feats[2].missing = 1;
    double scores[] = {0.25, NAN, 0.75};
    char *classes[] = {"a", "b", "c"};
    Modelwatch__V1__Output out = MODELWATCH__V1__OUTPUT__INIT;
    out.predicted_class = "c";
    out.has_score = 1;
    out.score = 0.75;
    out.n_scores = 3;
    out.scores = scores;
    out.n_class_names = 3;
    out.class_names = classes;
    Modelwatch__V1__PredictionEvent ev = MODELWATCH__V1__PREDICTION_EVENT__INIT;
    ev.model = "churn";
    ev.version = "v3";
    ev.prediction_id = "p-1";
    ev.has_event_time_ms = ev.has_latency_us = ev.has_status = 1;
    ev.event_time_ms = 1700000000000;
    ev.latency_us = 1234;
    ev.status = MODELWATCH__V1__STATUS__STATUS_OK;
    ev.n_features = 3;
    ev.features = fp;
    ev.output = &out;
    Modelwatch__V1__Feedback fb = MODELWATCH__V1__FEEDBACK__INIT;
    fb.model = "churn";
    fb.prediction_id = "p-0";
    fb.label_case = MODELWATCH__V1__FEEDBACK__LABEL_LABEL_VALUE;
    fb.label_value = 1.0;
    Modelwatch__V1__Record recs[2] = {MODELWATCH__V1__RECORD__INIT, MODELWATCH__V1__RECORD__INIT};
    Modelwatch__V1__Record *rp[2] = {&recs[0], &recs[1]};
    recs[0].body_case = MODELWATCH__V1__RECORD__BODY_EVENT;
    recs[0].event = &ev;
    recs[0].has_weight = recs[0].has_label_sampled = 1;
    recs[0].weight = 10;
    recs[0].label_sampled = 1;
    recs[1].body_case = MODELWATCH__V1__RECORD__BODY_FEEDBACK;
    recs[1].feedback = &fb;
    b.n_records = 2;
    b.records = rp;

    uint32_t idx[] = {0, 5, 300};
    uint64_t cnt[] = {1, 2, 1ull << 40};
    Modelwatch__V1__LatencyHistogram h = MODELWATCH__V1__LATENCY_HISTOGRAM__INIT;
    h.n_bucket_index = h.n_bucket_count = 3;
    h.bucket_index = idx;
    h.bucket_count = cnt;
    Modelwatch__V1__ErrorCount e = MODELWATCH__V1__ERROR_COUNT__INIT;
    Modelwatch__V1__ErrorCount *ep = &e;
    e.code = "timeout";
    e.has_count = 1;
    e.count = 2;
    Modelwatch__V1__ModelCounters mc = MODELWATCH__V1__MODEL_COUNTERS__INIT;
    Modelwatch__V1__ModelCounters *mcp = &mc;
    mc.model = "churn";
    mc.has_count = 1;
    mc.count = 7;
    mc.n_errors = 1;
    mc.errors = &ep;
    mc.latency = &h;
    Modelwatch__V1__ResourceUsage ru = MODELWATCH__V1__RESOURCE_USAGE__INIT;
    ru.has_cpu_seconds = ru.has_cgroup_available = 1;
    ru.cpu_seconds = 1.5;
    ru.cgroup_available = 1;
    Modelwatch__V1__MetricsSnapshot snap = MODELWATCH__V1__METRICS_SNAPSHOT__INIT;
    snap.n_models = 1;
    snap.models = &mcp;
    snap.resources = &ru;
    b.snapshot = &snap;

    struct wire w = {.n = modelwatch__v1__batch__get_packed_size(&b)};
    assert_true(w.n <= sizeof w.b);
    modelwatch__v1__batch__pack(&b, w.b);
    assert_true(same(f, &w));
    assert_int_equal(f->got->n_records, 2);
    assert_string_equal(f->got->records[0]->event->features[1]->categorical, "");
    assert_true(isnan(f->got->records[0]->event->output->scores[1]));
    assert_int_equal(f->got->snapshot->models[0]->latency->bucket_count[2], 1ull << 40);
}

static void test_empty(void **state)
{
    struct fixture *f = *state;
    struct wire w = {0};
    assert_true(same(f, &w));
    assert_null(f->got->identity);
    assert_int_equal(f->got->n_records, 0);
}

/* Optional scalars and strings, and oneof members: the last occurrence wins. */
static void test_last_one_wins(void **state)
{
    struct fixture *f = *state;
    struct wire w = {0}, id1 = {0}, feat = {0}, rec = {0}, ev = {0}, fb = {0};
    u(&w, 3, 5);
    u(&w, 3, 6);
    str(&id1, 1, "first");
    str(&id1, 1, "second");
    sub(&w, 2, &id1);
    str(&feat, 1, "x");
    str(&feat, 3, "cat");
    f64(&feat, 2, 2.5);
    sub(&ev, 8, &feat);
    feat.n = 0;
    str(&feat, 1, "y");
    f64(&feat, 2, 2.5);
    str(&feat, 3, "dog");
    sub(&ev, 8, &feat);
    u(&ev, 6, 99); /* an enum value the schema does not name is kept as it is */
    str(&fb, 3, "p-1");
    sub(&rec, 2, &fb); /* a feedback first... */
    sub(&rec, 1, &ev); /* ...replaced by an event, not merged with it */
    sub(&w, 5, &rec);
    assert_true(same(f, &w));
    assert_int_equal(f->got->sequence, 6);
    assert_string_equal(f->got->identity->agent_id, "second");
    Modelwatch__V1__PredictionEvent *e = f->got->records[0]->event;
    assert_int_equal(f->got->records[0]->body_case, MODELWATCH__V1__RECORD__BODY_EVENT);
    assert_int_equal(e->features[0]->value_case, MODELWATCH__V1__FEATURE__VALUE_NUMERIC);
    assert_string_equal(e->features[1]->categorical, "dog");
    assert_int_equal(e->status, 99);
}

/* protobuf-c copies a string with its NUL bytes: as a C string it ends at the first. */
static void test_nul_in_string(void **state)
{
    struct fixture *f = *state;
    struct wire w = {0}, id = {0};
    bytes(&id, 1, "ab\0cd", 5);
    bytes(&id, 2, "\0", 1);
    sub(&w, 2, &id);
    assert_true(same(f, &w));
    assert_string_equal(f->got->identity->agent_id, "ab");
    assert_string_equal(f->got->identity->boot_id, "");
}

/* An optional message given twice is merged: scalars replace, repeated fields append, inner
 * messages merge, and only the last occurrence's unknown fields stay. */
static void test_merge(void **state)
{
    struct fixture *f = *state;
    struct wire w = {0}, s1 = {0}, s2 = {0}, m = {0}, r = {0}, id = {0};
    str(&id, 1, "agent");
    u(&id, 40, 1); /* unknown, dropped by the merge */
    sub(&w, 2, &id);
    id.n = 0;
    str(&id, 2, "boot");
    u(&id, 41, 2);
    sub(&w, 2, &id);

    str(&m, 1, "m1");
    sub(&s1, 1, &m);
    u(&r, 1, 100);
    f64(&r, 3, 1.0);
    sub(&s1, 2, &r);
    m.n = 0;
    str(&m, 1, "m2");
    sub(&s2, 1, &m);
    r.n = 0;
    u(&r, 2, 200);
    f64(&r, 3, 2.0);
    sub(&s2, 2, &r);
    sub(&w, 6, &s1);
    sub(&w, 6, &s2);
    assert_true(same(f, &w));
    assert_string_equal(f->got->identity->agent_id, "agent");
    assert_string_equal(f->got->identity->boot_id, "boot");
    assert_int_equal(f->got->identity->base.n_unknown_fields, 1);
    assert_int_equal(f->got->identity->base.unknown_fields[0].tag, 41);
    assert_int_equal(f->got->snapshot->n_models, 2);
    assert_string_equal(f->got->snapshot->models[1]->model, "m2");
    Modelwatch__V1__ResourceUsage *ru = f->got->snapshot->resources;
    assert_int_equal(ru->interval_start_ms, 100);
    assert_int_equal(ru->interval_end_ms, 200);
    assert_true(ru->cpu_seconds == 2.0);

    /* A merged occurrence without unknown fields leaves none. */
    w.n = 0;
    id.n = 0;
    u(&id, 40, 1);
    sub(&w, 2, &id);
    id.n = 0;
    str(&id, 1, "a");
    sub(&w, 2, &id);
    assert_true(same(f, &w));
    assert_int_equal(f->got->identity->base.n_unknown_fields, 0);
}

/* Unknown fields of every wire type are kept, with a length-delimited one's length. */
static void test_unknown_fields(void **state)
{
    struct fixture *f = *state;
    struct wire w = {0}, rec = {0};
    u(&w, 99, 300);
    bytes(&w, 100, "xyz", 3);
    key(&w, 101, 5);
    raw(&w, "\x01\x02\x03\x04", 4);
    f64(&w, 102, 1.0);
    u(&w, 1, 1);
    u(&w, 1u << 28, 1);         /* a five-byte key */
    raw(&w, "\x80\x00\x00", 3); /* a two-byte key of field 0, then a varint */
    u(&rec, 7, 1);
    sub(&w, 5, &rec);
    assert_true(same(f, &w));
    assert_int_equal(f->got->base.n_unknown_fields, 6);
    assert_int_equal(f->got->base.unknown_fields[1].len, 4);
    assert_memory_equal(f->got->base.unknown_fields[1].data, "\x03xyz", 4);
    assert_int_equal(f->got->records[0]->base.n_unknown_fields, 1);
}

/* A known field of another wire type refuses the batch; a bool takes any. */
static void test_wire_types(void **state)
{
    struct fixture *f = *state;
    struct wire w = {0}, feat = {0}, ev = {0}, rec = {0};
    str(&w, 3, "1");
    refused(f, &w);
    w.n = 0;
    f64(&w, 1, 1.0);
    refused(f, &w);
    w.n = 0;
    u(&w, 2, 1); /* a message as a varint */
    refused(f, &w);
    w.n = 0;
    u(&feat, 2, 1); /* Feature.numeric as a varint */
    sub(&ev, 8, &feat);
    sub(&rec, 1, &ev);
    sub(&w, 5, &rec);
    refused(f, &w);

    /* Record.label_sampled from each wire type. */
    static const struct {
        const char *bytes;
        size_t len;
        int value;
    } bools[] = {
        {"\x20\x00", 2, 0},
        {"\x20\x80\x00", 3, 0},
        {"\x20\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11, 1}, /* beyond 64 bits */
        {"\x21\x80\x80\x80\x80\x80\x80\x80\x80", 9, 0},          /* 64-bit, high bits only */
        {"\x21\x00\x00\x00\x00\x00\x00\x00\x02", 9, 1},
        {"\x25\x80\x00\x00\x80", 5, 0}, /* 32-bit */
        {"\x22\x00", 2, 0},             /* empty, length-delimited */
        {"\x22\x80\x00", 3, 0},         /* empty, with a two-byte length */
        {"\x22\x01\x00", 3, 1},
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        w.n = rec.n = 0;
        raw(&rec, bools[i].bytes, bools[i].len);
        sub(&w, 5, &rec);
        assert_true(same(f, &w));
        assert_int_equal(f->got->records[0]->has_label_sampled, 1);
        assert_int_equal(f->got->records[0]->label_sampled, bools[i].value);
    }
}

/* Over-long varints read as protobuf-c reads them: a uint32's fifth byte whole, a uint64's
 * bits beyond 64 dropped. */
static void test_long_varints(void **state)
{
    struct fixture *f = *state;
    struct wire w = {0};
    key(&w, 1, 0); /* schema_version, uint32 */
    raw(&w, "\xff\xff\xff\xff\x7f", 5);
    key(&w, 3, 0); /* sequence, uint64, ten bytes */
    raw(&w, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10);
    key(&w, 4, 0); /* sealed_at_ms, int64 */
    raw(&w, "\x81\x80\x80\x80\x80\x80\x80\x80\x80\x00", 10);
    assert_true(same(f, &w));
    assert_int_equal(f->got->schema_version, 0xffffffffu);
    assert_int_equal(f->got->sequence, UINT64_MAX);
    assert_int_equal(f->got->sealed_at_ms, 1);
    w.n = 0;
    key(&w, 3, 0);
    raw(&w, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11); /* eleven bytes */
    refused(f, &w);
}

/* Repeated scalars take packed runs and single values alike, in order. */
static void test_packed_and_unpacked(void **state)
{
    struct fixture *f = *state;
    struct wire w = {0}, snap = {0}, mc = {0}, h = {0}, run = {0};
    u(&h, 2, 7);
    varint(&run, 1);
    varint(&run, 300);
    varint(&run, 1ull << 35); /* a uint32 keeps its low 32 bits and the fifth byte whole */
    bytes(&h, 2, run.b, run.n);
    u(&h, 2, 9);
    bytes(&h, 3, "", 0); /* an empty run */
    u(&h, 3, 5);
    sub(&mc, 8, &h);
    h.n = 0;
    u(&h, 2, 11); /* merged: appended */
    sub(&mc, 8, &h);
    sub(&snap, 1, &mc);
    sub(&w, 6, &snap);

    struct wire out = {0}, ev = {0}, rec = {0};
    double d[2] = {0.5, -1.0};
    f64(&out, 3, 0.25);
    bytes(&out, 3, d, sizeof d);
    str(&out, 4, "a");
    str(&out, 4, "b");
    sub(&ev, 9, &out);
    sub(&rec, 1, &ev);
    sub(&w, 5, &rec);
    assert_true(same(f, &w));
    Modelwatch__V1__LatencyHistogram *lh = f->got->snapshot->models[0]->latency;
    assert_int_equal(lh->n_bucket_index, 6);
    assert_int_equal(lh->bucket_index[2], 300);
    assert_int_equal(lh->bucket_index[5], 11);
    assert_int_equal(lh->n_bucket_count, 1);
    Modelwatch__V1__Output *o = f->got->records[0]->event->output;
    assert_int_equal(o->n_scores, 3);
    assert_true(o->scores[2] == -1.0);
    assert_int_equal(o->n_class_names, 2);

    /* Empty runs alone: nothing to append to. */
    w.n = out.n = ev.n = rec.n = 0;
    bytes(&out, 3, "", 0);
    sub(&ev, 9, &out);
    sub(&rec, 1, &ev);
    sub(&w, 5, &rec);
    assert_true(same(f, &w));
    assert_int_equal(f->got->records[0]->event->output->n_scores, 0);

    /* A packed double run whose length is not a multiple of 8, an unterminated varint run. */
    w.n = out.n = ev.n = rec.n = 0;
    bytes(&out, 3, d, 7);
    sub(&ev, 9, &out);
    sub(&rec, 1, &ev);
    sub(&w, 5, &rec);
    refused(f, &w);
    w.n = snap.n = mc.n = h.n = 0;
    bytes(&h, 2, "\x01\x80", 2);
    sub(&mc, 8, &h);
    sub(&snap, 1, &mc);
    sub(&w, 6, &snap);
    refused(f, &w);
    w.n = snap.n = mc.n = h.n = 0;
    bytes(&h, 2, "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11); /* eleven bytes */
    sub(&mc, 8, &h);
    sub(&snap, 1, &mc);
    sub(&w, 6, &snap);
    refused(f, &w);
}

/* Framing protobuf-c refuses: truncated values, a zero key, groups, lengths beyond the end. */
static void test_bad_framing(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"\x00\x01", 2},                 /* field 0 */
        {"\x08", 1},                     /* a key without its varint */
        {"\x08\x80", 2},                 /* an unterminated varint */
        {"\x19\x01\x02", 3},             /* a 64-bit value cut short */
        {"\x1d\x01", 2},                 /* a 32-bit value cut short */
        {"\x12\x05\x0a\x01", 4},         /* a length beyond the end */
        {"\x12\x80\x80\x80\x80\x80", 6}, /* a length of more than five bytes */
        {"\x12\xff\xff\xff\xff\x0f", 6}, /* a length over INT_MAX */
        {"\x13\x14", 2},                 /* a group */
        {"\x0e\x00", 2},                 /* wire type 6 */
        {"\x88\x80\x80\x80\x80\x00", 6}, /* a key of more than five bytes */
        {"\x2a\x02\x12\x05", 4},         /* a record whose event's length is beyond it */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct wire w = {0};
        raw(&w, bad[i].bytes, bad[i].len);
        refused(f, &w);
    }
}

/* The arena runs out: the reader says so and leaves nothing behind. */
static void test_out_of_memory(void **state)
{
    (void)state;
    struct mw_arena small;
    assert_int_equal(mw_arena_init(&small, 64), 0);
    struct wire w = {0}, id = {0};
    str(&id, 1, "an agent id longer than what is left of the arena");
    sub(&w, 2, &id);
    ProtobufCMessage *m = (ProtobufCMessage *)&w; /* set to NULL on failure */
    assert_int_equal(
        mw_pb_read(&modelwatch__v1__batch__descriptor, &small.pb_allocator, w.b, w.n, &m),
        MW_ENOMEM);
    assert_null(m);
    mw_arena_free(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agent_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_one_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_in_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wire_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_varints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_packed_and_unpacked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_framing, setup, teardown),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
