/*
 * aggregator_throughput.c — how many sampled records per second one aggregator decodes,
 * windows and applies, and how many Redis commands that takes.
 *
 * It builds realistic batches (1,000 records of 10 numeric + 2 categorical features each, with
 * their exact counters, zstd-compressed as agents produce them) and a reference profile for the
 * model, then:
 *   1. cpu:   decodes every batch and builds its exactly-once apply plan (decompress, protobuf,
 *             windows, drift histograms, label-join specs) — the aggregator's own work, timed in
 *             process CPU time; run under callgrind for instructions per record;
 *   2. redis: does the same and applies each plan to a real redis-server (pipelined, as the
 *             aggregator does), counting the commands, timed by the wall clock.
 *
 *   aggregator_throughput [-b BATCHES] [-r RECORDS] [-p REDIS_PORT] [-f] [-s] [-n]
 *     -f drift on fine windows too, -s drift.sketch_always, -n no profile in force
 */
#include "arena.h"
#include "batch_decode.h"
#include "clock.h"
#include "profile.h"
#include "window_apply.h"
#include "zframe.h"

/* Only the measured loop is instrumented under callgrind (--instr-atstart=no); without
 * valgrind's headers the macros are no-ops. */
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_NUMERIC 10

static const char *const countries[] = {"fr", "de", "us", "jp", "br"};
static const char *const plans[] = {"free", "pro", "team"};

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_seconds(void)
{
    return (double)mw_clock_mono_ns() / 1e9;
}

static double uniform(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return ((*s >> 8) & 0xffffff) / 16777216.0;
}

/* One compressed batch of `n_records` records from one agent boot. */
static void make_batch(struct mw_zframe_ctx *z, uint64_t seq, size_t n_records, int64_t t0,
                       unsigned *rng, struct mw_buf *out)
{
    static const char *const names[N_NUMERIC] = {"f0", "f1", "f2", "f3", "f4",
                                                 "f5", "f6", "f7", "f8", "f9"};
    Modelwatch__V1__Feature *feats = calloc(n_records * 12, sizeof *feats);
    Modelwatch__V1__Feature **fptrs = calloc(n_records * 12, sizeof *fptrs);
    Modelwatch__V1__PredictionEvent *evs = calloc(n_records, sizeof *evs);
    Modelwatch__V1__Output *outs = calloc(n_records, sizeof *outs);
    Modelwatch__V1__Record *recs = calloc(n_records, sizeof *recs);
    Modelwatch__V1__Record **rptrs = calloc(n_records, sizeof *rptrs);
    char(*ids)[48] = calloc(n_records, sizeof *ids);
    for (size_t i = 0; i < n_records; i++) {
        for (size_t k = 0; k < 12; k++) {
            Modelwatch__V1__Feature *f = &feats[i * 12 + k];
            modelwatch__v1__feature__init(f);
            if (k < N_NUMERIC) {
                f->name = (char *)names[k];
                f->value_case = MODELWATCH__V1__FEATURE__VALUE_NUMERIC;
                f->numeric = uniform(rng) * 100 + (double)k;
            } else {
                f->name = k == 10 ? "country" : "plan";
                f->value_case = MODELWATCH__V1__FEATURE__VALUE_CATEGORICAL;
                f->categorical = (char *)(k == 10 ? countries[i % 5] : plans[i % 3]);
            }
            fptrs[i * 12 + k] = f;
        }
        modelwatch__v1__output__init(&outs[i]);
        outs[i].has_score = 1;
        outs[i].score = uniform(rng);
        outs[i].predicted_class = outs[i].score >= 0.5 ? "1" : "0";
        Modelwatch__V1__PredictionEvent *ev = &evs[i];
        modelwatch__v1__prediction_event__init(ev);
        snprintf(ids[i], sizeof ids[i], "b%" PRIu64 "-%u", seq, (unsigned)i);
        ev->model = "churn";
        ev->version = "v3";
        ev->prediction_id = ids[i];
        ev->has_event_time_ms = ev->has_latency_us = ev->has_status = 1;
        ev->event_time_ms = t0 + (int64_t)(i * 50);
        ev->latency_us = 1000 + i;
        ev->status = MODELWATCH__V1__STATUS__STATUS_OK;
        ev->n_features = 12;
        ev->features = &fptrs[i * 12];
        ev->output = &outs[i];
        modelwatch__v1__record__init(&recs[i]);
        recs[i].body_case = MODELWATCH__V1__RECORD__BODY_EVENT;
        recs[i].event = ev;
        recs[i].has_weight = 1;
        recs[i].weight = 10; /* 10 % sampling */
        rptrs[i] = &recs[i];
    }
    Modelwatch__V1__ModelCounters mc = MODELWATCH__V1__MODEL_COUNTERS__INIT;
    Modelwatch__V1__ModelCounters *mcp = &mc;
    mc.model = "churn";
    mc.version = "v3";
    mc.has_bucket_start_ms = mc.has_bucket_width_ms = mc.has_count = 1;
    mc.bucket_start_ms = t0 - t0 % 60000;
    mc.bucket_width_ms = 60000;
    mc.count = n_records * 10;
    Modelwatch__V1__MetricsSnapshot snap = MODELWATCH__V1__METRICS_SNAPSHOT__INIT;
    snap.n_models = 1;
    snap.models = &mcp;
    Modelwatch__V1__Identity id = MODELWATCH__V1__IDENTITY__INIT;
    id.agent_id = "bench-agent";
    id.boot_id = "bench-boot";
    Modelwatch__V1__Batch b = MODELWATCH__V1__BATCH__INIT;
    b.has_schema_version = b.has_sequence = 1;
    b.schema_version = 1;
    b.sequence = seq;
    b.identity = &id;
    b.n_records = n_records;
    b.records = rptrs;
    b.snapshot = &snap;
    size_t n = modelwatch__v1__batch__get_packed_size(&b);
    uint8_t *wire = malloc(n);
    modelwatch__v1__batch__pack(&b, wire);
    mw_buf_init(out, 64u << 20);
    mw_zframe_compress(z, wire, n, out);
    free(wire);
    free(feats);
    free(fptrs);
    free(evs);
    free(outs);
    free(recs);
    free(rptrs);
    free(ids);
}

/* A numeric feature uniform on [lo, lo + 100]: 99 percentile cuts, 100 values per region. */
static int numeric_entry(char *out, size_t size, const char *name, int lo)
{
    int at = snprintf(out, size,
                      "\"%s\":{\"type\":\"numeric\",\"count\":10000,\"min\":%d,"
                      "\"max\":%d,\"mean\":%d,\"std\":28.87,\"cuts\":[",
                      name, lo, lo + 100, lo + 50);
    for (int i = 1; i < 100; i++)
        at += snprintf(out + at, size - (size_t)at, "%s%d", i > 1 ? "," : "", lo + i);
    at += snprintf(out + at, size - (size_t)at, "],\"region_counts\":[");
    for (int i = 0; i < 100; i++)
        at += snprintf(out + at, size - (size_t)at, "%s100", i ? "," : "");
    at += snprintf(out + at, size - (size_t)at, "],\"region_sums\":[");
    for (int i = 0; i < 100; i++)
        at += snprintf(out + at, size - (size_t)at, "%s%d", i ? "," : "", 100 * (lo + i) + 50);
    at += snprintf(out + at, size - (size_t)at, "],\"deciles\":[");
    for (int i = 1; i < 10; i++)
        at += snprintf(out + at, size - (size_t)at, "%s%d", i > 1 ? "," : "", lo + 10 * i);
    return at + snprintf(out + at, size - (size_t)at, "]}");
}

/* The profile the benchmark bins by: f0 and f5 numeric (fine grids), country categorical. */
static int profile_json(char *out, size_t size)
{
    int at = snprintf(out, size,
                      "{\"format\":2,\"model\":\"churn\",\"version\":\"v3\","
                      "\"features\":{");
    at += numeric_entry(out + at, size - (size_t)at, "f0", 0);
    at += snprintf(out + at, size - (size_t)at, ",");
    at += numeric_entry(out + at, size - (size_t)at, "f5", 5);
    return at + snprintf(out + at, size - (size_t)at,
                         ",\"country\":{\"type\":\"categorical\",\"categories\":{\"fr\":0.4,"
                         "\"de\":0.3,\"us\":0.3},\"other\":0}}}");
}

static struct mw_profile *profile;

static const struct mw_profile *lookup(void *ctx, const char *model, const char *version)
{
    if (ctx)
        return NULL; /* -n: no profile in force, every numeric feature goes to its sketch */
    (void)model;
    (void)version;
    return profile;
}

int main(int argc, char **argv)
{
    long batches = 200, records = 1000, redis_port = 0;
    bool drift_fine = false, sketch_always = false, no_profile = false;
    int c;
    while ((c = getopt(argc, argv, "b:r:p:fsn")) != -1) {
        if (c == 'f')
            drift_fine = true;
        else if (c == 's')
            sketch_always = true;
        else if (c == 'n')
            no_profile = true;
        else if (c == 'b')
            batches = strtol(optarg, NULL, 10);
        else if (c == 'r')
            records = strtol(optarg, NULL, 10);
        else if (c == 'p')
            redis_port = strtol(optarg, NULL, 10);
        else
            return 2;
    }
    char err[256], profile_text[8192];
    int profile_len = profile_json(profile_text, sizeof profile_text);
    if (mw_profile_parse(profile_text, (size_t)profile_len, &profile, err, sizeof err) != 0) {
        fprintf(stderr, "profile: %s\n", err);
        return 1;
    }
    struct mw_zframe_ctx *z = mw_zframe_ctx_create(3);
    struct mw_buf *wire = calloc((size_t)batches, sizeof *wire);
    unsigned rng = 1;
    int64_t t0 = 1795700000000;
    size_t compressed = 0;
    for (long i = 0; i < batches; i++) {
        make_batch(z, (uint64_t)i + 1, (size_t)records, t0 + i * records * 50, &rng, &wire[i]);
        compressed += wire[i].len;
    }
    /* drift.windows: coarse (the default), or both with -f; -s: drift.sketch_always; -n: no
     * profile in force */
    struct mw_window_spec specs[] = {{60000, 172800000, drift_fine}, {3600000, 2592000000, true}};
    struct mw_apply_options opt = {.specs = specs,
                                   .n_specs = 2,
                                   .dedup_retention_ms = 604800000,
                                   .watermark_ms = INT64_MIN,
                                   .allowed_lateness_ms = 300000,
                                   .out_of_orderness_ms = 300000,
                                   .label_horizon_ms = 604800000,
                                   .now_ms = t0 + batches * records * 50,
                                   .profile = lookup,
                                   .profile_ctx = no_profile ? &no_profile : NULL,
                                   .sketch_always = sketch_always};
    redisContext *rc = redis_port ? redisConnect("127.0.0.1", (int)redis_port) : NULL;
    if (redis_port && (!rc || rc->err)) {
        fprintf(stderr, "cannot connect to redis on %ld\n", redis_port);
        return 1;
    }
    if (rc) { /* the plans run apply.lua by EVALSHA, as the aggregator does after loading it */
        redisReply *loaded =
            redisCommand(rc, "SCRIPT LOAD %b", MW_APPLY_SCRIPT, (size_t)MW_APPLY_SCRIPT_LEN);
        if (!loaded || loaded->type != REDIS_REPLY_STRING) {
            fprintf(stderr, "redis: cannot load apply.lua\n");
            return 1;
        }
        freeReplyObject(loaded);
    }
    struct mw_buf scratch;
    mw_buf_init(&scratch, 256u << 20);
    struct mw_arena batch_memory; /* as the consumer decodes: into an arena reset per batch */
    if (mw_arena_init_growing(&batch_memory, 4u << 20, 1u << 30) != 0)
        return 1;
    uint64_t commands = 0;
    double cpu0 = cpu_seconds(), wall0 = wall_seconds();
    CALLGRIND_START_INSTRUMENTATION;
    for (long i = 0; i < batches; i++) {
        Modelwatch__V1__Batch *b = NULL;
        enum mw_dlq_reason why;
        mw_arena_reset(&batch_memory);
        if (mw_batch_decode_with(z, wire[i].data, wire[i].len, "1", 256u << 20, &scratch,
                                 &batch_memory.pb_allocator, &b, &why) != 0)
            return 1;
        struct mw_apply_plan plan;
        if (mw_apply_plan_build(b, &opt, &plan) != 0)
            return 1;
        for (size_t k = 0; rc && k < plan.n_cmds; k++)
            redisAppendCommandArgv(rc, (int)plan.cmds[k].argc, (const char **)plan.cmds[k].argv,
                                   plan.cmds[k].argvlen);
        for (size_t k = 0; rc && k < plan.n_cmds; k++) {
            void *reply = NULL;
            if (redisGetReply(rc, &reply) != REDIS_OK ||
                ((redisReply *)reply)->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "redis: %s\n", reply ? ((redisReply *)reply)->str : rc->errstr);
                return 1;
            }
            freeReplyObject(reply);
        }
        commands += plan.n_cmds;
        mw_apply_plan_free(&plan);
    }
    CALLGRIND_STOP_INSTRUMENTATION;
    double cpu = cpu_seconds() - cpu0, wall = wall_seconds() - wall0;
    double n = (double)batches * (double)records;
    printf("{\"mode\": \"%s\", \"batches\": %ld, \"records_per_batch\": %ld, \"records\": %.0f,\n"
           " \"compressed_bytes_per_record\": %.1f,\n"
           " \"aggregator_cpu_seconds\": %.3f, \"records_per_cpu_second\": %.0f,\n"
           " \"wall_seconds\": %.3f, \"records_per_second_wall\": %.0f,\n"
           " \"redis_commands\": %" PRIu64 ", \"redis_commands_per_1k_records\": %.2f}\n",
           rc ? "redis" : "cpu", batches, records, n, (double)compressed / n, cpu, n / cpu, wall,
           n / wall, commands, rc ? (double)commands / n * 1000 : 0.0);
    if (rc)
        redisFree(rc);
    for (long i = 0; i < batches; i++)
        mw_buf_free(&wire[i]);
    free(wire);
    mw_buf_free(&scratch);
    mw_arena_free(&batch_memory);
    mw_zframe_ctx_destroy(z);
    mw_profile_free(profile);
    return 0;
}
