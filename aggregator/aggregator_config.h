/*
 * aggregator_config.h — modelwatch-aggregator's configuration: the struct and the table that
 * drives parsing, defaults, --check-config, --dump-config and config/aggregator.example.yaml.
 */
#ifndef MW_AGGREGATOR_CONFIG_H
#define MW_AGGREGATOR_CONFIG_H

#include "alert/route.h"
#include "config.h"
#include "kafka_conf.h"

#include <stdbool.h>
#include <stdint.h>

struct mw_aggregator_config {
    char *log_level;
    int log_format; /* enum mw_log_format */
    struct mw_kafka_settings kafka;
    struct {
        char *group_id;
        char *dlq_topic;
        uint64_t max_batch_bytes;
    } consumer;
    struct {
        char *host;
        int64_t port;
        char *username;
        char *password_file;
        char *password; /* secret: from the environment, never printed */
        int64_t retry_max_ms;
        int64_t command_timeout_ms; /* replies awaited this long with nothing read: reconnect */
        int durability;               /* enum mw_redis_durability */
        int64_t data_loss_unready_ms; /* /readyz fails this long after an emptied Redis */
        int64_t wait_replicas;        /* WAIT for this many replicas before a commit; 0 = off */
        int64_t wait_timeout_ms;
    } redis;
    struct {
        int64_t fine_ms;
        int64_t coarse_ms;
        int64_t counter_bucket_ms; /* the agents' counters.bucket_width */
        int64_t fine_retention_ms;
        int64_t coarse_retention_ms;
        int64_t dedup_retention_ms;
        int64_t allowed_lateness_ms;
        int64_t out_of_orderness_ms;
        int64_t max_clock_skew_ms;
    } windows;
    struct {
        int64_t refresh_ms;
    } profiles;
    struct {
        int64_t label_horizon_ms;
    } performance;
    struct {
        struct mw_cfg_strlist models; /* globs (fnmatch) of models that expect labels */
        int64_t pending_bucket_ms;
        int64_t pending_shards;
        double binary_threshold;
        struct mw_cfg_list binary_thresholds; /* struct mw_binary_threshold_override */
    } labels;
    struct mw_drift_thresholds {
        double psi_possible;
        double psi_drift;
        double js;
        double p_value;
        double wasserstein;
        int64_t min_values; /* fewer values observed: insufficient_data, no verdict */
        int windows;        /* enum mw_drift_windows: which resolutions keep drift state */
        bool sketch_always; /* sketch numeric features even when a profile is in force */
    } drift;
    struct mw_cfg_list drift_features; /* struct mw_drift_feature_override */
    struct {
        double availability;
        int64_t latency_threshold_ms;
        double latency_target;
    } slo;
    struct {
        double cpu_core_hour;
        double memory_gib_hour;
        double gpu_hour;
        double pod_hour;
        double input_tokens_per_1k;
        double output_tokens_per_1k;
    } cost;
    struct {
        char *host;
        int64_t port;
        int64_t signals_refresh_ms;
        int64_t signals_delay_ms;
        int64_t request_timeout_ms;
        int64_t max_connections;
        int64_t max_connections_per_client;
    } http;
    struct {
        int64_t max_model_versions;
        struct mw_cfg_strlist drift_features;
        int64_t drift_top_k;
    } metrics;
    /* Alerting (aggregator/alert/alerting.h): rules, routing, inhibition, receivers. */
    struct mw_cfg_strlist rule_files; /* globs; relative ones from the config file's directory */
    struct mw_route_cfg route;
    struct mw_cfg_list inhibit_rules; /* struct mw_inhibit_rule_cfg */
    struct mw_cfg_list receivers;     /* struct mw_receiver_config */
    struct {
        char *runbook_base_url;
        char *external_url;
        int64_t evaluation_interval_ms;
        int64_t lease_ttl_ms;
        int64_t catch_up_ms;
        char *api_token_file;
        int64_t retention_ms;
    } alerting;
};

/* What the aggregator does about a Redis that would lose what it applied (redis.durability). */
enum mw_redis_durability {
    MW_REDIS_DURABILITY_WARN = 0,   /* say so: log, /metrics */
    MW_REDIS_DURABILITY_REFUSE = 1, /* also apply nothing (and fail /readyz) until it is fixed */
    MW_REDIS_DURABILITY_OFF = 2,    /* do not check */
};

/* Which window resolutions keep drift state (the profile grid and the value sketches). */
enum mw_drift_windows {
    MW_DRIFT_WINDOWS_COARSE = 0,
    MW_DRIFT_WINDOWS_FINE = 1,
    MW_DRIFT_WINDOWS_BOTH = 2,
};

/* Whether windows of `width_ms` keep drift state under `cfg`. */
bool mw_drift_kept_at(const struct mw_aggregator_config *cfg, int64_t width_ms);

/* The resolution drift is read at when a query names none: the coarse one where it is kept. */
int64_t mw_drift_default_width_ms(const struct mw_aggregator_config *cfg);

/* One element of `drift_features:`: a feature's own thresholds; a negative value keeps the
 * global one from `drift:`. */
struct mw_drift_feature_override {
    char *feature;
    struct mw_drift_thresholds thresholds;
};

/* One element of `labels.binary_thresholds:`: the threshold of the models matching a glob. */
struct mw_binary_threshold_override {
    char *model;
    double threshold;
};

extern const struct mw_cfg_field mw_aggregator_config_table[];

/* How long a batch's applied id must be remembered so that no window it wrote outlives it: the
 * longest window lifetime in Redis (retention + width) plus the time a window keeps taking data
 * after its end (allowed_lateness + out_of_orderness). windows.dedup_retention must reach it. */
int64_t mw_dedup_retention_needed_ms(const struct mw_aggregator_config *cfg);

/* Whether `model`'s sampled predictions wait for labels: it matches a glob of labels.models. */
bool mw_labels_expected(const struct mw_aggregator_config *cfg, const char *model);

/* The binary threshold of `model`: the first labels.binary_thresholds entry whose glob matches
 * it, else labels.binary_threshold. */
double mw_binary_threshold_for(const struct mw_aggregator_config *cfg, const char *model);

/* The thresholds that apply to `feature`: its override merged over the global ones. */
struct mw_drift_thresholds mw_drift_thresholds_for(const struct mw_aggregator_config *cfg,
                                                   const char *feature);

#endif
