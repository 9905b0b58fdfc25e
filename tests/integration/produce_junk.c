/*
 * produce_junk.c — writes bad records into a telemetry topic, as a broken or hostile producer
 * would: random bytes, truncated copies of a valid batch, valid batches with an unknown schema
 * version, and zstd frames holding garbage; and, with -j FILE, well-formed batches carrying
 * whatever values FILE describes (a JSON array of batch_json.h descriptions, each with optional
 * "partition", "key" (default: the agent id), "schema" (the mw-schema header, default "1") and
 * "copies" (how many times to produce it, default 1)), in order. Prints how many records it
 * delivered, as JSON.
 */
#include "batch_json.h"
#include "kafka_conf.h"
#include "telemetry.pb-c.h"
#include "zframe.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        failed++;
    else
        delivered++;
}

/* A valid compressed batch to cut up. */
static void valid_batch(struct mw_buf *out)
{
    Modelwatch__V1__Identity id = MODELWATCH__V1__IDENTITY__INIT;
    id.agent_id = "junk-agent";
    id.boot_id = "junk-boot";
    Modelwatch__V1__ModelCounters mc = MODELWATCH__V1__MODEL_COUNTERS__INIT;
    Modelwatch__V1__ModelCounters *mcp = &mc;
    mc.model = "junk";
    mc.version = "v1";
    mc.has_bucket_start_ms = mc.has_bucket_width_ms = mc.has_count = 1;
    mc.bucket_start_ms = 1700000040000;
    mc.bucket_width_ms = 60000;
    mc.count = 5;
    Modelwatch__V1__MetricsSnapshot snap = MODELWATCH__V1__METRICS_SNAPSHOT__INIT;
    snap.n_models = 1;
    snap.models = &mcp;
    Modelwatch__V1__Batch b = MODELWATCH__V1__BATCH__INIT;
    b.has_schema_version = b.has_sequence = 1;
    b.schema_version = 1;
    b.sequence = 1;
    b.identity = &id;
    b.snapshot = &snap;
    uint8_t wire[4096];
    size_t n = modelwatch__v1__batch__pack(&b, wire);
    struct mw_zframe_ctx *z = mw_zframe_ctx_create(3);
    mw_zframe_compress(z, wire, n, out);
    mw_zframe_ctx_destroy(z);
}

static void produce_to(rd_kafka_t *rk, const char *topic, int32_t partition, const char *key,
                       const void *data, size_t len, const char *schema)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    if (schema)
        rd_kafka_header_add(h, "mw-schema", -1, schema, -1);
    while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                             RD_KAFKA_V_VALUE((void *)data, len), RD_KAFKA_V_HEADERS(h),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(rk, 10);
}

static void produce(rd_kafka_t *rk, const char *topic, const void *data, size_t len,
                    const char *schema)
{
    produce_to(rk, topic, RD_KAFKA_PARTITION_UA, NULL, data, len, schema);
}

/* Every batch `path` describes, in order. Returns 0, or 1 with a message on stderr. */
static int produce_crafted(rd_kafka_t *rk, const char *topic, const char *path)
{
    json_error_t jerr;
    json_t *all = json_load_file(path, 0, &jerr);
    if (!json_is_array(all)) {
        fprintf(stderr, "mw-produce-junk: %s: %s (line %d)\n", path, jerr.text, jerr.line);
        return 1;
    }
    struct mw_zframe_ctx *z = mw_zframe_ctx_create(3);
    size_t i;
    json_t *spec;
    json_array_foreach(all, i, spec)
    {
        Modelwatch__V1__Batch *b = mw_batch_json(spec);
        size_t n = b ? modelwatch__v1__batch__get_packed_size(b) : 0;
        uint8_t *wire = b ? malloc(n + 1) : NULL;
        if (!wire) {
            fprintf(stderr, "mw-produce-junk: out of memory\n");
            mw_batch_json_free(b);
            mw_zframe_ctx_destroy(z);
            json_decref(all);
            return 1;
        }
        modelwatch__v1__batch__pack(b, wire);
        struct mw_buf frame;
        mw_buf_init(&frame, n + (1 << 20));
        mw_zframe_compress(z, wire, n, &frame);
        const char *key = json_string_value(json_object_get(spec, "key"));
        const char *schema = json_string_value(json_object_get(spec, "schema"));
        json_t *partition = json_object_get(spec, "partition");
        long copies = (long)mw_json_i64(spec, "copies", 1);
        for (long c = 0; c < copies; c++)
            produce_to(rk, topic,
                       json_is_integer(partition) ? (int32_t)json_integer_value(partition)
                                                  : RD_KAFKA_PARTITION_UA,
                       key ? key : b->identity->agent_id, frame.data, frame.len,
                       schema ? schema : "1");
        mw_buf_free(&frame);
        free(wire);
        mw_batch_json_free(b);
    }
    mw_zframe_ctx_destroy(z);
    json_decref(all);
    return 0;
}

int main(int argc, char **argv)
{
    const char *bootstrap_file = NULL, *topic = "modelwatch.telemetry", *crafted = NULL;
    long n_random = 0, n_truncated = 0, n_schema = 0, n_garbage = 0;
    int c;
    while ((c = getopt(argc, argv, "b:t:r:c:s:g:j:")) != -1) {
        switch (c) {
        case 'b':
            bootstrap_file = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'r':
            n_random = strtol(optarg, NULL, 10);
            break;
        case 'c':
            n_truncated = strtol(optarg, NULL, 10);
            break;
        case 's':
            n_schema = strtol(optarg, NULL, 10);
            break;
        case 'g':
            n_garbage = strtol(optarg, NULL, 10);
            break;
        case 'j':
            crafted = optarg;
            break;
        default:
            return 2;
        }
    }
    if (!bootstrap_file) {
        fprintf(stderr, "usage: mw-produce-junk -b BOOTSTRAP_FILE [-t TOPIC] [-r RANDOM] "
                        "[-c TRUNCATED] [-s BAD_SCHEMA] [-g ZSTD_GARBAGE] [-j BATCHES.json]\n");
        return 2;
    }
    struct mw_kafka_settings s = {.bootstrap_servers = "",
                                  .bootstrap_file = (char *)bootstrap_file};
    static const char *const fixed[] = {"acks", "all", NULL};
    rd_kafka_conf_t *conf = NULL;
    char err[512];
    if (mw_kafka_conf_build(&s, fixed, &conf, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk)
        return 1;
    struct mw_buf good;
    mw_buf_init(&good, 1 << 20);
    valid_batch(&good);
    unsigned seed = 42;
    unsigned char junk[2048];
    for (long i = 0; i < n_random; i++) {
        size_t len = (size_t)(rand_r(&seed) % (int)sizeof junk);
        for (size_t k = 0; k < len; k++)
            junk[k] = (unsigned char)rand_r(&seed);
        produce(rk, topic, junk, len, i % 2 ? "1" : NULL);
    }
    for (long i = 0; i < n_truncated; i++)
        produce(rk, topic, good.data, (size_t)(i % (long)(good.len - 1)), "1");
    for (long i = 0; i < n_schema; i++)
        produce(rk, topic, good.data, good.len, "99");
    struct mw_zframe_ctx *z = mw_zframe_ctx_create(3);
    for (long i = 0; i < n_garbage; i++) {
        struct mw_buf frame;
        mw_buf_init(&frame, 1 << 20);
        size_t len = 1 + (size_t)(rand_r(&seed) % 512);
        for (size_t k = 0; k < len; k++)
            junk[k] = (unsigned char)rand_r(&seed);
        mw_zframe_compress(z, junk, len, &frame);
        produce(rk, topic, frame.data, frame.len, "1");
        mw_buf_free(&frame);
    }
    mw_zframe_ctx_destroy(z);
    if (crafted && produce_crafted(rk, topic, crafted) != 0)
        return 1;
    rd_kafka_flush(rk, 30000);
    rd_kafka_destroy(rk);
    mw_buf_free(&good);
    printf("{\"delivered\": %ld, \"failed\": %ld}\n", delivered, failed);
    return failed ? 1 : 0;
}
