/* agent_config.c — the agent's configuration table. Every key here is documented, with the same
 * words, in config/agent.example.yaml. */
#include "agent_config.h"

#include "error.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* librdkafka's default message.max.bytes. */
#define RDKAFKA_MESSAGE_MAX_BYTES 1000000

#define F(member) offsetof(struct mw_agent_config, member)

static const char *check_octal_mode(const void *value)
{
    const char *text = *(char *const *)value;
    char *end = NULL;
    if (!text || !*text)
        return "expected an octal file mode such as \"0660\"";
    long mode = strtol(text, &end, 8);
    if (*end || mode < 0 || mode > 0777)
        return "expected an octal file mode such as \"0660\"";
    return NULL;
}

/* The producer's message.max.bytes: kafka.properties' value, else librdkafka's default. A value
 * librdkafka would refuse is left for it to report; here it counts as the default. */
static uint64_t message_max_bytes(const struct mw_agent_config *cfg)
{
    const struct mw_cfg_strmap *props = &cfg->kafka.properties;
    for (size_t i = 0; i < props->n; i++) {
        if (strcmp(props->keys[i], "message.max.bytes") != 0)
            continue;
        char *end = NULL;
        errno = 0;
        long long v = strtoll(props->values[i], &end, 10);
        if (!errno && end != props->values[i] && !*end && v > 0)
            return (uint64_t)v;
    }
    return RDKAFKA_MESSAGE_MAX_BYTES;
}

int mw_agent_config_validate(const struct mw_agent_config *cfg, const char *path, char *err,
                             size_t err_size)
{
    uint64_t max_message = message_max_bytes(cfg);
    if (cfg->batch.max_bytes > max_message) {
        snprintf(err, err_size,
                 "%s: batch.max_bytes: %" PRIu64 " bytes is above the producer's "
                 "message.max.bytes (%" PRIu64 "): Kafka would refuse such batches; lower it or "
                 "raise kafka.properties.message.max.bytes (and the topic's max.message.bytes)",
                 path, cfg->batch.max_bytes, max_message);
        return MW_ECONFIG;
    }
    if (cfg->spool.max_bytes < 2 * cfg->spool.segment_bytes) {
        snprintf(err, err_size,
                 "%s: spool.max_bytes: %" PRIu64 " bytes is below two segments of "
                 "spool.segment_bytes (%" PRIu64 "): the spool drops whole segments, so one drop "
                 "would empty it; raise spool.max_bytes or lower spool.segment_bytes",
                 path, cfg->spool.max_bytes, cfg->spool.segment_bytes);
        return MW_ECONFIG;
    }
    return 0;
}

unsigned mw_agent_config_socket_mode(const struct mw_agent_config *cfg)
{
    return (unsigned)strtol(cfg->intake.socket_mode, NULL, 8);
}

const struct mw_cfg_field mw_agent_config_table[] = {
    {.key = "agent_id",
     .type = MW_CFG_STRING,
     .offset = F(agent_id),
     .def = "",
     .desc = "Stable id of this agent (Kafka key, dedup identity); empty = host name"},
    {.key = "log_level",
     .type = MW_CFG_STRING,
     .offset = F(log_level),
     .def = "info",
     .reloadable = true,
     .desc = "debug, info, warn or error"},
    MW_LOG_FORMAT_CFG_FIELD(struct mw_agent_config, log_format),
    {.key = "identity.pod",
     .type = MW_CFG_STRING,
     .offset = F(identity.pod),
     .def = "",
     .desc = "Pod name stamped on every batch; empty = $POD_NAME"},
    {.key = "identity.namespace",
     .type = MW_CFG_STRING,
     .offset = F(identity.namespace_),
     .def = "",
     .desc = "Namespace stamped on every batch; empty = $POD_NAMESPACE"},
    {.key = "identity.node",
     .type = MW_CFG_STRING,
     .offset = F(identity.node),
     .def = "",
     .desc = "Node name stamped on every batch; empty = $NODE_NAME"},
    {.key = "intake.endpoint",
     .type = MW_CFG_STRING,
     .offset = F(intake.endpoint),
     .def = "ipc:///run/modelwatch/agent.sock",
     .desc = "nanomsg address the agent's PULL socket binds; clients connect to it"},
    {.key = "intake.socket_mode",
     .type = MW_CFG_STRING,
     .offset = F(intake.socket_mode),
     .def = "0660",
     .check = check_octal_mode,
     .desc = "File mode of an ipc:// socket (octal): who may send events to this agent"},
    {.key = "intake.max_message_bytes",
     .type = MW_CFG_SIZE,
     .offset = F(intake.max_message_bytes),
     .def = "64KiB",
     .min = 256,
     .max = 16777216,
     .desc = "Largest client message accepted; larger ones are dropped and counted"},
    {.key = "intake.max_future_skew",
     .type = MW_CFG_DURATION,
     .offset = F(intake.max_future_skew_ms),
     .def = "5m",
     .min = 0,
     .max = 86400000,
     .desc = "Events and labels timed further ahead of the agent's clock are dropped and counted "
             "invalid"},
    {.key = "intake.count_at_source",
     .type = MW_CFG_BOOL,
     .offset = F(intake.count_at_source),
     .def = "true",
     .desc = "Let clients count the events whose payload the rate leaves out and send their "
             "counters, instead of each event's head"},
    {.key = "batch.max_records",
     .type = MW_CFG_INT,
     .offset = F(batch.max_records),
     .def = "10000",
     .min = 1,
     .max = 1000000,
     .desc = "Seal a batch at this many records"},
    {.key = "batch.max_bytes",
     .type = MW_CFG_SIZE,
     .offset = F(batch.max_bytes),
     .def = "960KiB",
     .min = 1024,
     .max = 67108864,
     .desc = "Seal a batch at this many uncompressed bytes; at most kafka's message.max.bytes"},
    {.key = "batch.max_age",
     .type = MW_CFG_DURATION,
     .offset = F(batch.max_age_ms),
     .def = "1s",
     .min = 10,
     .max = 600000,
     .desc = "Seal a batch this long after its first record"},
    {.key = "batch.compression_level",
     .type = MW_CFG_INT,
     .offset = F(batch.compression_level),
     .def = "1",
     .min = 1,
     .max = 19,
     .desc = "zstd level for sealed batches (1: on telemetry both cheaper and smaller than 3)"},
    {.key = "counters.bucket_width",
     .type = MW_CFG_DURATION,
     .offset = F(counters.bucket_width_ms),
     .def = "60s",
     .min = 1000,
     .max = 3600000,
     .desc = "Event-time width of the exact counters; must divide the aggregator's windows"},
    {.key = "counters.max_series",
     .type = MW_CFG_INT,
     .offset = F(counters.max_series),
     .def = "4096",
     .min = 1,
     .max = 1000000,
     .desc = "Most (model, version, bucket) counter sets held between flushes"},
    MW_KAFKA_CFG_FIELDS(struct mw_agent_config, kafka, "Topic batches are produced to"),
    {.key = "models",
     .type = MW_CFG_LIST,
     .offset = F(models),
     .sub = mw_model_rule_table,
     .elem_size = sizeof(struct mw_model_rule),
     .max = 1024,
     .reloadable = true,
     .desc = "Per-model sampling and redaction rules; name \"*\" is the default rule"},
    {.key = "redaction_key_file",
     .type = MW_CFG_STRING,
     .offset = F(redaction_key_file),
     .def = "",
     .path = MW_CFG_PATH_FILE,
     .desc = "File holding the HMAC-SHA256 key for redact.hash; never in this file"},
    {.key = "producer.max_in_flight",
     .type = MW_CFG_INT,
     .offset = F(producer.max_in_flight),
     .def = "16",
     .min = 1,
     .max = 100000,
     .desc = "Most batches handed to Kafka and not yet acknowledged; the rest wait in the spool"},
    {.key = "producer.retry_backoff_max",
     .type = MW_CFG_DURATION,
     .offset = F(producer.retry_backoff_max_ms),
     .def = "10s",
     .min = 100,
     .max = 600000,
     .desc = "Longest pause between delivery attempts while Kafka is unreachable"},
    {.key = "producer.unready_after",
     .type = MW_CFG_DURATION,
     .offset = F(producer.unready_after_ms),
     .def = "30s",
     .min = 0,
     .max = 86400000,
     .desc = "/readyz fails once no Kafka broker has been reachable for this long"},
    {.key = "spool.dir",
     .type = MW_CFG_STRING,
     .offset = F(spool.dir),
     .def = "/var/lib/modelwatch/spool",
     .desc = "Directory of the on-disk spool every sealed batch passes through"},
    {.key = "spool.max_bytes",
     .type = MW_CFG_SIZE,
     .offset = F(spool.max_bytes),
     .def = "1GiB",
     .min = 1048576,
     .max = 1099511627776.0,
     .desc = "Bound of the spool, at least two segments; when full the oldest batches are "
             "dropped and counted"},
    {.key = "spool.segment_bytes",
     .type = MW_CFG_SIZE,
     .offset = F(spool.segment_bytes),
     .def = "16MiB",
     .min = 65536,
     .max = 1073741824.0,
     .desc = "Size of one spool segment file"},
    {.key = "spool.fsync",
     .type = MW_CFG_BOOL,
     .offset = F(spool.fsync),
     .def = "true",
     .desc = "fdatasync each sealed batch (survives power loss, not only process death)"},
    {.key = "spool.ready_below",
     .type = MW_CFG_DOUBLE,
     .offset = F(spool.ready_below),
     .def = "0.5",
     .min = 0.01,
     .max = 1,
     .desc = "/readyz fails while the spool holds more than this share of spool.max_bytes"},
    {.key = "resources.cgroup_dir",
     .type = MW_CFG_STRING,
     .offset = F(resources.cgroup_dir),
     .def = "",
     .path = MW_CFG_PATH_DIR,
     .desc = "cgroup v2 directory of the pod; empty = this process's own cgroup"},
    {.key = "resources.requested_cores",
     .type = MW_CFG_DOUBLE,
     .offset = F(resources.requested_cores),
     .def = "0",
     .min = 0,
     .max = 4096,
     .desc = "CPU cores the pod requests (0 = unknown); cost bills max(requested, used)"},
    {.key = "resources.requested_memory",
     .type = MW_CFG_SIZE,
     .offset = F(resources.requested_memory_bytes),
     .def = "0",
     .desc = "Memory the pod requests (0 = unknown); cost bills max(requested, used)"},
    {.key = "http.host",
     .type = MW_CFG_STRING,
     .offset = F(http.host),
     .def = "127.0.0.1",
     .desc = "Address of /metrics, /healthz, /readyz"},
    {.key = "http.port",
     .type = MW_CFG_INT,
     .offset = F(http.port),
     .def = "9464",
     .min = 0,
     .max = 65535,
     .desc = "Port of /metrics, /healthz, /readyz (0 = any free port)"},
    {.key = "shutdown_grace",
     .type = MW_CFG_DURATION,
     .offset = F(shutdown_grace_ms),
     .def = "15s",
     .min = 0,
     .max = 600000,
     .desc = "Longest time SIGTERM may take to seal and deliver everything"},
    MW_CFG_END,
};
