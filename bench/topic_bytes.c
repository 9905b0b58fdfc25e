/*
 * topic_bytes.c — mw-bench-topic-bytes: the zstd compression ratio of the batches in a topic.
 *
 *     mw-bench-topic-bytes -b BOOTSTRAP_FILE [-t TOPIC]
 *
 * Reads every partition of TOPIC from its beginning to the end offsets it had at start and
 * prints one JSON line: records read, the sum of their payloads (compressed bytes) and of the
 * content sizes their zstd frame headers declare (uncompressed bytes); a record that is not a
 * zstd frame with a content size is only counted in without_content_size. The agent writes every
 * batch as one zstd frame with its content size (common/zframe.h), so nothing is decompressed.
 * agent_throughput.py runs it after a run, over what the mock Kafka still holds.
 */
#include <librdkafka/rdkafka.h>
#include <zstd.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PARTITIONS 1024

static int read_bootstrap(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(out, 1, size - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    return n ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *bootstrap_file = NULL, *topic = "modelwatch.telemetry";
    int c;
    while ((c = getopt(argc, argv, "b:t:")) != -1) {
        if (c == 'b')
            bootstrap_file = optarg;
        else if (c == 't')
            topic = optarg;
        else
            return 2;
    }
    char servers[1024], err[512];
    if (!bootstrap_file || read_bootstrap(bootstrap_file, servers, sizeof servers) != 0) {
        fprintf(stderr, "usage: mw-bench-topic-bytes -b BOOTSTRAP_FILE [-t TOPIC]\n");
        return 2;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", servers, err, sizeof err) ||
        rd_kafka_conf_set(conf, "group.id", "mw-bench-topic-bytes", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err)) {
        fprintf(stderr, "mw-bench-topic-bytes: %s\n", err);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "mw-bench-topic-bytes: %s\n", err);
        return 1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 0, t, &md, 10000);
    rd_kafka_topic_destroy(t);
    if (kerr || md->topic_cnt != 1 || md->topics[0].err ||
        md->topics[0].partition_cnt > MAX_PARTITIONS) {
        fprintf(stderr, "mw-bench-topic-bytes: no metadata for %s\n", topic);
        return 1;
    }
    int n_parts = md->topics[0].partition_cnt;
    int64_t high[MAX_PARTITIONS];
    int32_t ids[MAX_PARTITIONS];
    int pending = 0;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n_parts);
    for (int i = 0; i < n_parts; i++) {
        int64_t lo = 0;
        ids[i] = md->topics[0].partitions[i].id;
        if (rd_kafka_query_watermark_offsets(rk, topic, ids[i], &lo, &high[i], 10000)) {
            fprintf(stderr, "mw-bench-topic-bytes: no offsets for partition %d\n", ids[i]);
            return 1;
        }
        if (high[i] > lo) {
            rd_kafka_topic_partition_list_add(parts, topic, ids[i])->offset =
                RD_KAFKA_OFFSET_BEGINNING;
            pending++;
        }
    }
    rd_kafka_metadata_destroy(md);
    if (rd_kafka_assign(rk, parts)) {
        fprintf(stderr, "mw-bench-topic-bytes: cannot assign partitions\n");
        return 1;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    uint64_t records = 0, compressed = 0, uncompressed = 0, unknown_size = 0;
    int idle_polls = 0;
    while (pending > 0 && idle_polls < 100) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            idle_polls++;
            continue;
        }
        idle_polls = 0;
        if (!m->err) {
            records++;
            unsigned long long size = ZSTD_getFrameContentSize(m->payload, m->len);
            if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR) {
                unknown_size++;
            } else {
                compressed += m->len;
                uncompressed += size;
            }
            for (int i = 0; i < n_parts; i++)
                if (ids[i] == m->partition && m->offset + 1 == high[i])
                    pending--;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    printf("{\"records\": %" PRIu64 ", \"compressed_bytes\": %" PRIu64
           ", \"uncompressed_bytes\": %" PRIu64 ", \"without_content_size\": %" PRIu64
           ", \"complete\": %s}\n",
           records, compressed, uncompressed, unknown_size, pending ? "false" : "true");
    return 0;
}
