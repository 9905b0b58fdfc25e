/*
 * agent_config.h — modelwatch-agent's configuration: the struct and the table that drives
 * parsing, defaults, --check-config, --dump-config and config/agent.example.yaml.
 */
#ifndef MW_AGENT_CONFIG_H
#define MW_AGENT_CONFIG_H

#include "config.h"
#include "kafka_conf.h"
#include "model_rules.h"

#include <stdint.h>

struct mw_agent_config {
    char *agent_id; /* "" means the host name */
    char *log_level;
    int log_format; /* enum mw_log_format */
    struct {
        char *pod;
        char *namespace_;
        char *node;
    } identity;
    struct {
        char *endpoint;
        char *socket_mode; /* octal text, checked by the table */
        uint64_t max_message_bytes;
        int64_t max_future_skew_ms;
        bool count_at_source;
    } intake;
    struct mw_cfg_list models; /* struct mw_model_rule */
    char *redaction_key_file;
    struct {
        int64_t max_records;
        uint64_t max_bytes;
        int64_t max_age_ms;
        int64_t compression_level;
    } batch;
    struct {
        int64_t bucket_width_ms;
        int64_t max_series;
    } counters;
    struct mw_kafka_settings kafka;
    struct {
        int64_t max_in_flight;
        int64_t retry_backoff_max_ms;
        int64_t unready_after_ms;
    } producer;
    struct {
        char *dir;
        uint64_t max_bytes;
        uint64_t segment_bytes;
        bool fsync;
        double ready_below;
    } spool;
    struct {
        char *cgroup_dir;
        double requested_cores;
        uint64_t requested_memory_bytes;
    } resources;
    struct {
        char *host;
        int64_t port;
    } http;
    int64_t shutdown_grace_ms;
};

extern const struct mw_cfg_field mw_agent_config_table[];

/* Checks that span several keys, after the table has checked each one: batch.max_bytes fits
 * the producer's message.max.bytes; spool.max_bytes holds at least two segments. Returns 0, or
 * MW_ECONFIG with a message naming `path` and the keys in err. */
int mw_agent_config_validate(const struct mw_agent_config *cfg, const char *path, char *err,
                             size_t err_size);

/* The socket mode as a number (the table has already checked the text). */
unsigned mw_agent_config_socket_mode(const struct mw_agent_config *cfg);

#endif
