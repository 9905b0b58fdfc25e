/* aggregator_config.c — the aggregator's configuration table. Every key here is documented, with
 * the same words, in config/aggregator.example.yaml. */
#include "aggregator_config.h"

#include <stddef.h>

#define F(member) offsetof(struct mw_aggregator_config, member)
#define DAY_MS 86400000.0

const struct mw_cfg_field mw_aggregator_config_table[] = {
    {.key = "log_level", .type = MW_CFG_STRING, .offset = F(log_level), .def = "info",
     .reloadable = true, .desc = "debug, info, warn or error"},
    {.key = "kafka.bootstrap_servers", .type = MW_CFG_STRING,
     .offset = F(kafka.bootstrap_servers), .def = "127.0.0.1:9092",
     .desc = "Kafka bootstrap servers (host:port,...)"},
    {.key = "kafka.bootstrap_file", .type = MW_CFG_STRING, .offset = F(kafka.bootstrap_file),
     .def = "", .desc = "File holding the bootstrap servers (overrides bootstrap_servers)"},
    {.key = "kafka.topic", .type = MW_CFG_STRING, .offset = F(kafka.topic),
     .def = "modelwatch.telemetry", .desc = "Topic the agents produce batches to"},
    {.key = "kafka.properties", .type = MW_CFG_STRMAP, .offset = F(kafka.properties),
     .desc = "librdkafka properties passed through; NAME_file reads NAME's value from a file"},
    {.key = "consumer.group_id", .type = MW_CFG_STRING, .offset = F(consumer.group_id),
     .def = "modelwatch-aggregator", .desc = "Consumer group; replicas share its partitions"},
    {.key = "consumer.dlq_topic", .type = MW_CFG_STRING, .offset = F(consumer.dlq_topic),
     .def = "modelwatch.telemetry.dlq", .desc = "Where undecodable batches go, with a reason"},
    {.key = "consumer.max_batch_bytes", .type = MW_CFG_SIZE,
     .offset = F(consumer.max_batch_bytes), .def = "64MiB", .min = 1024, .max = 1073741824.0,
     .desc = "Largest decompressed batch accepted; larger ones go to the dead-letter topic"},
    {.key = "redis.host", .type = MW_CFG_STRING, .offset = F(redis.host), .def = "127.0.0.1",
     .desc = "Redis host"},
    {.key = "redis.port", .type = MW_CFG_INT, .offset = F(redis.port), .def = "6379", .min = 1,
     .max = 65535, .desc = "Redis port"},
    {.key = "redis.username", .type = MW_CFG_STRING, .offset = F(redis.username), .def = "",
     .desc = "Redis ACL user; empty = default user"},
    {.key = "redis.password_file", .type = MW_CFG_STRING, .offset = F(redis.password_file),
     .def = "", .desc = "File holding the Redis password; empty = no AUTH"},
    {.key = "redis.retry_max", .type = MW_CFG_DURATION, .offset = F(redis.retry_max_ms),
     .def = "5s", .min = 100, .max = 600000,
     .desc = "Longest pause between reconnection attempts while Redis is down"},
    {.key = "windows.fine", .type = MW_CFG_DURATION, .offset = F(windows.fine_ms), .def = "1m",
     .min = 1000, .max = 3600000, .desc = "Width of the fine tumbling windows"},
    {.key = "windows.coarse", .type = MW_CFG_DURATION, .offset = F(windows.coarse_ms),
     .def = "1h", .min = 60000, .max = DAY_MS, .desc = "Width of the coarse tumbling windows"},
    {.key = "windows.fine_retention", .type = MW_CFG_DURATION,
     .offset = F(windows.fine_retention_ms), .def = "2d", .min = 60000, .max = 90 * DAY_MS,
     .desc = "How long fine windows are kept in Redis"},
    {.key = "windows.coarse_retention", .type = MW_CFG_DURATION,
     .offset = F(windows.coarse_retention_ms), .def = "30d", .min = 3600000,
     .max = 400 * DAY_MS, .desc = "How long coarse windows are kept in Redis"},
    {.key = "windows.dedup_retention", .type = MW_CFG_DURATION,
     .offset = F(windows.dedup_retention_ms), .def = "7d", .min = 3600000, .max = 90 * DAY_MS,
     .desc = "How long applied batch ids are remembered to refuse replays"},
    {.key = "http.host", .type = MW_CFG_STRING, .offset = F(http.host), .def = "127.0.0.1",
     .desc = "Address of the API, /metrics, /healthz, /readyz"},
    {.key = "http.port", .type = MW_CFG_INT, .offset = F(http.port), .def = "9465", .min = 0,
     .max = 65535, .desc = "Port of the API, /metrics, /healthz, /readyz (0 = any free port)"},
    MW_CFG_END,
};
