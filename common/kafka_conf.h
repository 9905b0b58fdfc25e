/*
 * kafka_conf.h — librdkafka configuration shared by the agent's producer and the aggregator's
 * consumer.
 *
 * Both binaries take the same `kafka:` section: bootstrap servers (or a file holding them, as
 * modelwatch-devkafka writes), and free-form librdkafka properties passed through unchanged so
 * TLS and SASL work without code changes. A property whose name ends in `_file` is read from
 * that file instead (e.g. `sasl.password_file: /var/run/secrets/kafka`), so secrets stay out of
 * the config text. librdkafka's own log lines are re-emitted as logfmt.
 */
#ifndef MW_COMMON_KAFKA_CONF_H
#define MW_COMMON_KAFKA_CONF_H

#include "config.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

struct mw_kafka_settings {
    char *bootstrap_servers;
    char *bootstrap_file;
    char *topic;
    struct mw_cfg_strmap properties;
};

/*
 * The `kafka:` section's config table entries (config.h) for a config struct `cfg_struct` whose
 * member `member` is a struct mw_kafka_settings; both binaries take the same keys.
 */
#define MW_KAFKA_CFG_FIELDS(cfg_struct, member, topic_desc)                                        \
    {.key = "kafka.bootstrap_servers",                                                             \
     .type = MW_CFG_STRING,                                                                        \
     .offset = offsetof(cfg_struct, member.bootstrap_servers),                                     \
     .def = "127.0.0.1:9092",                                                                      \
     .desc = "Kafka bootstrap servers (host:port,...)"},                                           \
        {.key = "kafka.bootstrap_file",                                                            \
         .type = MW_CFG_STRING,                                                                    \
         .offset = offsetof(cfg_struct, member.bootstrap_file),                                    \
         .def = "",                                                                                \
         .path = MW_CFG_PATH_FILE,                                                                 \
         .desc = "File holding the bootstrap servers (overrides bootstrap_servers)"},              \
        {.key = "kafka.topic",                                                                     \
         .type = MW_CFG_STRING,                                                                    \
         .offset = offsetof(cfg_struct, member.topic),                                             \
         .def = "modelwatch.telemetry",                                                            \
         .desc = (topic_desc)},                                                                    \
    {                                                                                              \
        .key = "kafka.properties", .type = MW_CFG_STRMAP,                                          \
        .offset = offsetof(cfg_struct, member.properties),                                         \
        .secret_entry = mw_kafka_property_secret, .path_entry = mw_kafka_property_path,            \
        .desc = "librdkafka properties passed through; NAME_file reads NAME's value from a "       \
                "file"                                                                             \
    }

/* Whether librdkafka property `name` holds a credential (sasl.password, ssl.key.password,
 * sasl.oauthbearer.client.secret, ...): --dump-config prints it as <redacted>. The NAME_file
 * form names a file and is not one. */
bool mw_kafka_property_secret(const char *name);

/* What librdkafka property `name` set to `value` names on disk (NAME_file, the TLS and Kerberos
 * files), for --check-config. */
enum mw_cfg_path mw_kafka_property_path(const char *name, const char *value);

/*
 * Build an rd_kafka_conf_t from the settings plus `fixed` (NULL-terminated name/value pairs the
 * caller insists on, applied last). On success *out is owned by the caller (rd_kafka_new takes
 * it). Returns 0, MW_ECONFIG (message in errbuf names the property) or MW_EIO (a file).
 */
int mw_kafka_conf_build(const struct mw_kafka_settings *s, const char *const *fixed,
                        rd_kafka_conf_t **out, char *errbuf, size_t errbuf_size);

/* Read a whole small file, trailing newlines trimmed, into a new string (mw_free). NULL on error
 * with errno set. Used for bootstrap files and secrets. */
char *mw_kafka_read_small_file(const char *path);

#endif
