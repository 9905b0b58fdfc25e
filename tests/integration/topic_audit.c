/*
 * topic_audit.c — reads a telemetry topic from the beginning, as it is being written, and
 * reports which batches it holds: per (agent id, boot id) the sequence numbers seen, the
 * duplicates and the gaps, and the exact prediction count the batches' snapshots carry.
 *
 * Tests run it next to the pipeline (the mock cluster keeps only the last few MB of each
 * partition, so the audit consumes while the agent produces) and stop it with SIGTERM or let it
 * end after -i IDLE_MS without new records; it then prints one JSON document on stdout. With
 * -s FILE it keeps FILE holding the number of records consumed so far, so a test can wait until
 * the audit has caught up with the topic's end offsets before stopping it. With -g HEX (up to 16
 * times) it also counts the batches whose decompressed bytes contain that byte string, which
 * is how tests prove that a redacted value never left the agent.
 */
#include "batch_decode.h"
#include "kafka_conf.h"
#include "zframe.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

struct origin {
    char *name;    /* "agent_id/boot_id" */
    uint8_t *seen; /* count per sequence, grown on demand */
    uint64_t cap;
    uint64_t max_seq;
    uint64_t batches;
    uint64_t predictions;
    uint64_t records;
};

#define MAX_PATTERNS 16

struct pattern {
    const char *hex;
    unsigned char bytes[256];
    size_t len;
    uint64_t batches; /* batches holding it */
};

struct audit {
    struct origin *origins;
    size_t n_origins;
    uint64_t kafka_records;
    uint64_t undecodable;
    struct pattern patterns[MAX_PATTERNS];
    size_t n_patterns;
};

static int parse_hex(struct pattern *p, const char *hex)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > sizeof p->bytes)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        p->bytes[i] = (unsigned char)v;
    }
    p->hex = hex;
    p->len = n / 2;
    return 0;
}

static void scan_patterns(struct audit *a, const struct mw_buf *plain)
{
    for (size_t i = 0; i < a->n_patterns; i++)
        if (memmem(plain->data, plain->len, a->patterns[i].bytes, a->patterns[i].len))
            a->patterns[i].batches++;
}

static struct origin *origin_for(struct audit *a, const char *agent, const char *boot)
{
    char name[600];
    snprintf(name, sizeof name, "%s/%s", agent, boot);
    for (size_t i = 0; i < a->n_origins; i++)
        if (strcmp(a->origins[i].name, name) == 0)
            return &a->origins[i];
    a->origins = realloc(a->origins, (a->n_origins + 1) * sizeof *a->origins);
    struct origin *o = &a->origins[a->n_origins++];
    memset(o, 0, sizeof *o);
    o->name = strdup(name);
    return o;
}

static void note_batch(struct audit *a, const Modelwatch__V1__Batch *b)
{
    struct origin *o = origin_for(a, b->identity->agent_id, b->identity->boot_id);
    if (b->sequence >= o->cap) {
        uint64_t cap = o->cap ? o->cap : 1024;
        while (cap <= b->sequence)
            cap *= 2;
        o->seen = realloc(o->seen, cap);
        memset(o->seen + o->cap, 0, cap - o->cap);
        o->cap = cap;
    }
    if (o->seen[b->sequence] < 255)
        o->seen[b->sequence]++;
    if (b->sequence > o->max_seq)
        o->max_seq = b->sequence;
    o->batches++;
    o->records += b->n_records;
    for (size_t i = 0; b->snapshot && i < b->snapshot->n_models; i++)
        o->predictions += b->snapshot->models[i]->count;
}

static void audit_free(struct audit *a)
{
    for (size_t i = 0; i < a->n_origins; i++) {
        free(a->origins[i].name);
        free(a->origins[i].seen);
    }
    free(a->origins);
}

static json_t *report(const struct audit *a)
{
    json_t *origins = json_object();
    for (size_t i = 0; i < a->n_origins; i++) {
        const struct origin *o = &a->origins[i];
        json_t *missing = json_array(), *dups = json_array();
        uint64_t distinct = 0;
        for (uint64_t s = 1; s <= o->max_seq; s++) {
            if (o->seen[s] == 0 && json_array_size(missing) < 1000)
                json_array_append_new(missing, json_integer((json_int_t)s));
            if (o->seen[s] > 1 && json_array_size(dups) < 1000)
                json_array_append_new(dups, json_integer((json_int_t)s));
            distinct += o->seen[s] != 0;
        }
        json_object_set_new(origins, o->name,
                            json_pack("{s:I, s:I, s:I, s:o, s:o, s:I, s:I}", "batches",
                                      (json_int_t)o->batches, "distinct", (json_int_t)distinct,
                                      "max_sequence", (json_int_t)o->max_seq, "missing", missing,
                                      "duplicates", dups, "predictions", (json_int_t)o->predictions,
                                      "records", (json_int_t)o->records));
    }
    json_t *patterns = json_object();
    for (size_t i = 0; i < a->n_patterns; i++)
        json_object_set_new(patterns, a->patterns[i].hex,
                            json_integer((json_int_t)a->patterns[i].batches));
    return json_pack("{s:I, s:I, s:o, s:o}", "kafka_records", (json_int_t)a->kafka_records,
                     "undecodable", (json_int_t)a->undecodable, "origins", origins, "patterns",
                     patterns);
}

static rd_kafka_t *make_consumer(const char *bootstrap_file)
{
    struct mw_kafka_settings s = {.bootstrap_servers = "",
                                  .bootstrap_file = (char *)bootstrap_file};
    static const char *const fixed[] = {"group.id", "modelwatch-topic-audit", "enable.auto.commit",
                                        "false",    "auto.offset.reset",      "earliest",
                                        NULL};
    rd_kafka_conf_t *conf = NULL;
    char err[512];
    if (mw_kafka_conf_build(&s, fixed, &conf, err, sizeof err) != 0) {
        fprintf(stderr, "topic-audit: %s\n", err);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk)
        fprintf(stderr, "topic-audit: %s\n", err);
    return rk;
}

/* Assign every partition of the topic from its beginning (no group coordination needed). */
static int assign_all(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, t, &md, 10000);
    rd_kafka_topic_destroy(t);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "topic-audit: no metadata for %s\n", topic);
        if (md)
            rd_kafka_metadata_destroy(md);
        return -1;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    return err ? -1 : 0;
}

/* Replace `path` with the count, atomically (write a temporary file, rename). */
static void write_status(const char *path, uint64_t n)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "%" PRIu64 "\n", n);
    fclose(f);
    rename(tmp, path);
}

static void consume(rd_kafka_t *rk, struct audit *a, long idle_ms, const char *status_path)
{
    struct mw_zframe_ctx *z = mw_zframe_ctx_create(3);
    struct mw_buf scratch;
    mw_buf_init(&scratch, 256u << 20);
    long idle = 0;
    while (!stop && (idle_ms <= 0 || idle < idle_ms)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            idle += 100;
            continue;
        }
        if (!m->err && status_path)
            write_status(status_path, a->kafka_records + 1);
        if (!m->err) {
            idle = 0;
            a->kafka_records++;
            Modelwatch__V1__Batch *b = NULL;
            enum mw_dlq_reason why;
            if (mw_batch_decode(z, m->payload, m->len, NULL, 256u << 20, &scratch, &b, &why) == 0) {
                scan_patterns(a, &scratch);
                note_batch(a, b);
                modelwatch__v1__batch__free_unpacked(b, NULL);
            } else {
                a->undecodable++;
            }
        }
        rd_kafka_message_destroy(m);
    }
    mw_buf_free(&scratch);
    mw_zframe_ctx_destroy(z);
}

int main(int argc, char **argv)
{
    const char *bootstrap_file = NULL, *topic = "modelwatch.telemetry", *status_path = NULL;
    long idle_ms = 0;
    int c;
    struct audit a = {0};
    while ((c = getopt(argc, argv, "b:t:i:s:g:")) != -1) {
        if (c == 'g') {
            if (a.n_patterns == MAX_PATTERNS || parse_hex(&a.patterns[a.n_patterns++], optarg))
                return 2;
        } else if (c == 's')
            status_path = optarg;
        else if (c == 'b')
            bootstrap_file = optarg;
        else if (c == 't')
            topic = optarg;
        else if (c == 'i')
            idle_ms = strtol(optarg, NULL, 10);
        else
            return 2;
    }
    if (!bootstrap_file) {
        fprintf(stderr,
                "usage: mw-topic-audit -b BOOTSTRAP_FILE [-t TOPIC] [-i IDLE_MS] [-s FILE]\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    rd_kafka_t *rk = make_consumer(bootstrap_file);
    if (!rk || assign_all(rk, topic) != 0)
        return 1;
    if (status_path)
        write_status(status_path, 0);
    consume(rk, &a, idle_ms, status_path);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    json_t *doc = report(&a);
    json_dumpf(doc, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(doc);
    audit_free(&a);
    return 0;
}
