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

struct mw_kafka_settings {
    char *bootstrap_servers;
    char *bootstrap_file;
    char *topic;
    struct mw_cfg_strmap properties;
};

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
