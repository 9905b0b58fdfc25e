/* aggregator_config.c — the aggregator's configuration table. Every key here is documented, with
 * the same words, in config/aggregator.example.yaml. */
#include "aggregator_config.h"

#include "alert/inhibit.h"
#include "alert/receiver.h"
#include "alert/route.h"

#include "log.h"

#include <fnmatch.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define F(member) offsetof(struct mw_aggregator_config, member)
#define DAY_MS 86400000.0

#define O(member) offsetof(struct mw_drift_feature_override, member)

static const struct mw_cfg_field drift_override_table[] = {
    {.key = "feature",
     .type = MW_CFG_STRING,
     .offset = O(feature),
     .required = true,
     .desc = "Feature name (as in the profile; \"prediction\" for the model's output)"},
    {.key = "psi_possible",
     .type = MW_CFG_DOUBLE,
     .offset = O(thresholds.psi_possible),
     .def = "-1",
     .min = -1,
     .max = 100,
     .desc = "PSI from which drift is possible"},
    {.key = "psi_drift",
     .type = MW_CFG_DOUBLE,
     .offset = O(thresholds.psi_drift),
     .def = "-1",
     .min = -1,
     .max = 100,
     .desc = "PSI from which the feature has drifted"},
    {.key = "js",
     .type = MW_CFG_DOUBLE,
     .offset = O(thresholds.js),
     .def = "-1",
     .min = -1,
     .max = 1,
     .desc = "Jensen-Shannon distance from which the feature has drifted"},
    {.key = "p_value",
     .type = MW_CFG_DOUBLE,
     .offset = O(thresholds.p_value),
     .def = "-1",
     .min = -1,
     .max = 1,
     .desc = "Test p-value below which drift is possible"},
    {.key = "wasserstein",
     .type = MW_CFG_DOUBLE,
     .offset = O(thresholds.wasserstein),
     .def = "-1",
     .min = -1,
     .max = 1000,
     .desc = "Normed Wasserstein distance from which the feature has drifted"},
    {.key = "min_values",
     .type = MW_CFG_INT,
     .offset = O(thresholds.min_values),
     .def = "-1",
     .min = -1,
     .max = 1000000000,
     .desc = "Values a window must have observed for a verdict on the feature"},
    MW_CFG_END,
};

/* One source for the Redis password: two would leave which one is used to the reader. */
static bool one_redis_password(const void *obj, char *why, size_t size)
{
    const struct mw_aggregator_config *c = obj;
    if (!c->redis.password || !*c->redis.password || !c->redis.password_file ||
        !*c->redis.password_file)
        return true;
    snprintf(why, size, "set redis.password or redis.password_file, not both");
    return false;
}

static const char *const drift_windows_choices[] = {"coarse", "fine", "both", NULL};

bool mw_drift_kept_at(const struct mw_aggregator_config *cfg, int64_t width_ms)
{
    if (width_ms == cfg->windows.coarse_ms && cfg->drift.windows != MW_DRIFT_WINDOWS_FINE)
        return true;
    return width_ms == cfg->windows.fine_ms && cfg->drift.windows != MW_DRIFT_WINDOWS_COARSE;
}

int64_t mw_drift_default_width_ms(const struct mw_aggregator_config *cfg)
{
    return cfg->drift.windows == MW_DRIFT_WINDOWS_FINE ? cfg->windows.fine_ms
                                                       : cfg->windows.coarse_ms;
}

struct mw_drift_thresholds mw_drift_thresholds_for(const struct mw_aggregator_config *cfg,
                                                   const char *feature)
{
    struct mw_drift_thresholds t = cfg->drift;
    const struct mw_drift_feature_override *o = cfg->drift_features.items;
    for (size_t i = 0; i < cfg->drift_features.n; i++) {
        if (!o[i].feature || strcmp(o[i].feature, feature) != 0)
            continue;
        const struct mw_drift_thresholds *x = &o[i].thresholds;
        t.psi_possible = x->psi_possible >= 0 ? x->psi_possible : t.psi_possible;
        t.psi_drift = x->psi_drift >= 0 ? x->psi_drift : t.psi_drift;
        t.js = x->js >= 0 ? x->js : t.js;
        t.p_value = x->p_value >= 0 ? x->p_value : t.p_value;
        t.wasserstein = x->wasserstein >= 0 ? x->wasserstein : t.wasserstein;
        t.min_values = x->min_values >= 0 ? x->min_values : t.min_values;
    }
    return t;
}

#undef O
#define O(member) offsetof(struct mw_binary_threshold_override, member)

static const struct mw_cfg_field binary_threshold_table[] = {
    {.key = "model",
     .type = MW_CFG_STRING,
     .offset = O(model),
     .required = true,
     .desc = "Model name or glob (fnmatch: *, ?, [...])"},
    {.key = "threshold",
     .type = MW_CFG_DOUBLE,
     .offset = O(threshold),
     .required = true,
     .min = 0,
     .max = 1,
     .desc = "A score at or above it predicts the positive class"},
    MW_CFG_END,
};

bool mw_labels_expected(const struct mw_aggregator_config *cfg, const char *model)
{
    for (size_t i = 0; i < cfg->labels.models.n; i++)
        if (fnmatch(cfg->labels.models.items[i], model, 0) == 0)
            return true;
    return false;
}

double mw_binary_threshold_for(const struct mw_aggregator_config *cfg, const char *model)
{
    const struct mw_binary_threshold_override *o = cfg->labels.binary_thresholds.items;
    for (size_t i = 0; i < cfg->labels.binary_thresholds.n; i++)
        if (o[i].model && fnmatch(o[i].model, model, 0) == 0)
            return o[i].threshold;
    return cfg->labels.binary_threshold;
}

/* ---- rules between window keys ------------------------------------------------------------
 * What apply and read paths assume of the windows, checked at load (so --check-config refuses
 * it) rather than discovered in Redis: keys name a window by its width in whole seconds; the
 * agents' counter buckets must tile every window (a batch whose buckets do not goes to the
 * dead-letter topic); a coarse window must be made of whole fine windows, and the two must
 * differ (equal widths would write every count twice into the same keys); and a batch's dedup
 * bit must outlive every window the batch wrote, or a replay after it expired counts again. */

#define CFG_OF(obj) ((const struct mw_aggregator_config *)(obj))

/* `ms` as duration text the config accepts, in the largest unit that holds it exactly: "1500ms",
 * "90s", "43270m", "31d". */
static const char *duration_text(int64_t ms, char *buf, size_t size)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms && ms % units[i].ms == 0) {
            snprintf(buf, size, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return buf;
        }
    }
    snprintf(buf, size, "%lldms", (long long)ms);
    return buf;
}

static const char *whole_seconds(const void *value)
{
    return *(const int64_t *)value % 1000 ? "must be a whole number of seconds (windows are named "
                                            "by their width in seconds)"
                                          : NULL;
}

static bool fine_tiles(const void *obj, char *why, size_t size)
{
    const struct mw_aggregator_config *c = CFG_OF(obj);
    char a[32], b[32];
    if (c->windows.fine_ms % c->windows.counter_bucket_ms == 0)
        return true;
    snprintf(why, size,
             "%s is not a multiple of windows.counter_bucket (%s, the agents' "
             "counters.bucket_width): every batch would go to the dead-letter topic",
             duration_text(c->windows.fine_ms, a, sizeof a),
             duration_text(c->windows.counter_bucket_ms, b, sizeof b));
    return false;
}

static bool coarse_of_fine(const void *obj, char *why, size_t size)
{
    const struct mw_aggregator_config *c = CFG_OF(obj);
    char a[32], b[32];
    duration_text(c->windows.fine_ms, a, sizeof a);
    duration_text(c->windows.coarse_ms, b, sizeof b);
    if (c->windows.coarse_ms == c->windows.fine_ms) {
        snprintf(why, size,
                 "windows.fine and windows.coarse are both %s: each count would be written "
                 "twice into the same windows",
                 a);
        return false;
    }
    if (c->windows.coarse_ms % c->windows.fine_ms != 0) {
        snprintf(why, size, "windows.coarse (%s) must be a multiple of windows.fine (%s)", b, a);
        return false;
    }
    return true;
}

/* windows.fine against both keys it relates to, so a bad fine width is reported where it is set. */
static bool fine_rules(const void *obj, char *why, size_t size)
{
    return fine_tiles(obj, why, size) && coarse_of_fine(obj, why, size);
}

int64_t mw_dedup_retention_needed_ms(const struct mw_aggregator_config *cfg)
{
    int64_t fine = cfg->windows.fine_retention_ms + cfg->windows.fine_ms;
    int64_t coarse = cfg->windows.coarse_retention_ms + cfg->windows.coarse_ms;
    return (fine > coarse ? fine : coarse) + cfg->windows.allowed_lateness_ms +
           cfg->windows.out_of_orderness_ms;
}

static bool dedup_outlives_windows(const void *obj, char *why, size_t size)
{
    const struct mw_aggregator_config *c = CFG_OF(obj);
    int64_t needed = mw_dedup_retention_needed_ms(c);
    char a[32], b[32];
    if (c->windows.dedup_retention_ms >= needed)
        return true;
    snprintf(why, size,
             "windows.dedup_retention (%s) is shorter than the windows it protects: it must be at "
             "least %s (the longer of fine_retention + fine and coarse_retention + coarse, plus "
             "allowed_lateness + out_of_orderness), or a replay after it expires counts again",
             duration_text(c->windows.dedup_retention_ms, a, sizeof a),
             duration_text(needed, b, sizeof b));
    return false;
}

static const char *const redis_durability_choices[] = {"warn", "refuse", "off", NULL};

const struct mw_cfg_field mw_aggregator_config_table[] = {
    {.key = "log_level",
     .type = MW_CFG_STRING,
     .offset = F(log_level),
     .def = "info",
     .reloadable = true,
     .desc = "debug, info, warn or error"},
    MW_LOG_FORMAT_CFG_FIELD(struct mw_aggregator_config, log_format),
    MW_KAFKA_CFG_FIELDS(struct mw_aggregator_config, kafka, "Topic the agents produce batches to"),
    {.key = "consumer.group_id",
     .type = MW_CFG_STRING,
     .offset = F(consumer.group_id),
     .def = "modelwatch-aggregator",
     .desc = "Consumer group; replicas share its partitions"},
    {.key = "consumer.dlq_topic",
     .type = MW_CFG_STRING,
     .offset = F(consumer.dlq_topic),
     .def = "modelwatch.telemetry.dlq",
     .desc = "Where undecodable batches go, with a reason"},
    {.key = "consumer.max_batch_bytes",
     .type = MW_CFG_SIZE,
     .offset = F(consumer.max_batch_bytes),
     .def = "64MiB",
     .min = 1024,
     .max = 1073741824.0,
     .desc = "Largest decompressed batch accepted; larger ones go to the dead-letter topic"},
    {.key = "redis.host",
     .type = MW_CFG_STRING,
     .offset = F(redis.host),
     .def = "127.0.0.1",
     .desc = "Redis host"},
    {.key = "redis.port",
     .type = MW_CFG_INT,
     .offset = F(redis.port),
     .def = "6379",
     .min = 1,
     .max = 65535,
     .desc = "Redis port"},
    {.key = "redis.username",
     .type = MW_CFG_STRING,
     .offset = F(redis.username),
     .def = "",
     .desc = "Redis ACL user; empty = default user"},
    {.key = "redis.password_file",
     .type = MW_CFG_STRING,
     .offset = F(redis.password_file),
     .def = "",
     .path = MW_CFG_PATH_FILE,
     .desc = "File holding the Redis password; empty = no AUTH (or redis.password)"},
    {.key = "redis.password",
     .type = MW_CFG_STRING,
     .offset = F(redis.password),
     .def = "",
     .secret = true,
     .relate = one_redis_password,
     .desc = "The Redis password itself, best as ${REDIS_PASSWORD} from the environment (never "
             "printed); empty = redis.password_file or no AUTH"},
    {.key = "redis.retry_max",
     .type = MW_CFG_DURATION,
     .offset = F(redis.retry_max_ms),
     .def = "5s",
     .min = 100,
     .max = 600000,
     .desc = "Longest pause between reconnection attempts while Redis is down"},
    {.key = "redis.command_timeout",
     .type = MW_CFG_DURATION,
     .offset = F(redis.command_timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 600000,
     .desc = "Replies awaited this long with nothing read from Redis (a hung Redis, or a "
             "network that drops everything, with the connection still open): the connection "
             "is closed, Redis counts as down, and what was pending is retried on the next one "
             "(applying a batch twice is a no-op)"},
    {.key = "redis.durability",
     .type = MW_CFG_ENUM,
     .offset = F(redis.durability),
     .def = "warn",
     .choices = redis_durability_choices,
     .desc = "When Redis would lose what was applied (appendonly no, appendfsync no, or a "
             "maxmemory-policy that evicts): warn (log and /metrics), refuse (also apply "
             "nothing and fail /readyz until it is fixed) or off; checked on every connection "
             "and every 5 s"},
    {.key = "redis.data_loss_unready",
     .type = MW_CFG_DURATION,
     .offset = F(redis.data_loss_unready_ms),
     .def = "10m",
     .min = 0,
     .max = 7 * DAY_MS,
     .desc = "How long /readyz fails after Redis is found to have lost modelwatch's data (its "
             "epoch key gone or replaced); 0 = until the aggregator restarts"},
    {.key = "redis.wait_replicas",
     .type = MW_CFG_INT,
     .offset = F(redis.wait_replicas),
     .def = "0",
     .min = 0,
     .max = 64,
     .desc = "Replicas that must acknowledge a batch's writes (Redis WAIT) before its Kafka "
             "offset is committed; 0 = do not wait"},
    {.key = "redis.wait_timeout",
     .type = MW_CFG_DURATION,
     .offset = F(redis.wait_timeout_ms),
     .def = "1s",
     .min = 10,
     .max = 60000,
     .desc = "How long WAIT waits for redis.wait_replicas; fewer acknowledgements leave the "
             "batch uncommitted, retried later"},
    {.key = "windows.fine",
     .type = MW_CFG_DURATION,
     .offset = F(windows.fine_ms),
     .def = "1m",
     .min = 1000,
     .max = 3600000,
     .check = whole_seconds,
     .relate = fine_rules,
     .desc = "Width of the fine tumbling windows: whole seconds, a multiple of "
             "windows.counter_bucket"},
    {.key = "windows.coarse",
     .type = MW_CFG_DURATION,
     .offset = F(windows.coarse_ms),
     .def = "1h",
     .min = 60000,
     .max = DAY_MS,
     .check = whole_seconds,
     .relate = coarse_of_fine,
     .desc = "Width of the coarse tumbling windows: whole seconds, a multiple of windows.fine "
             "and longer"},
    {.key = "windows.counter_bucket",
     .type = MW_CFG_DURATION,
     .offset = F(windows.counter_bucket_ms),
     .def = "60s",
     .min = 1000,
     .max = 3600000,
     .check = whole_seconds,
     .relate = fine_tiles,
     .desc = "The agents' counters.bucket_width: windows.fine must be a multiple of it"},
    {.key = "windows.fine_retention",
     .type = MW_CFG_DURATION,
     .offset = F(windows.fine_retention_ms),
     .def = "2d",
     .min = 60000,
     .max = 90 * DAY_MS,
     .relate = dedup_outlives_windows,
     .desc = "How long fine windows are kept in Redis"},
    {.key = "windows.coarse_retention",
     .type = MW_CFG_DURATION,
     .offset = F(windows.coarse_retention_ms),
     .def = "30d",
     .min = 3600000,
     .max = 400 * DAY_MS,
     .relate = dedup_outlives_windows,
     .desc = "How long coarse windows are kept in Redis"},
    {.key = "windows.dedup_retention",
     .type = MW_CFG_DURATION,
     .offset = F(windows.dedup_retention_ms),
     .def = "31d",
     .min = 3600000,
     .max = 410 * DAY_MS,
     .relate = dedup_outlives_windows,
     .desc = "How long applied batch ids are remembered to refuse replays: at least the "
             "longest window lifetime (retention + width) plus allowed_lateness + "
             "out_of_orderness, and at least Kafka's retention of the topic"},
    {.key = "windows.allowed_lateness",
     .type = MW_CFG_DURATION,
     .offset = F(windows.allowed_lateness_ms),
     .def = "5m",
     .min = 0,
     .max = DAY_MS,
     .desc = "How long after its end a window still takes data; later data is counted as late"},
    {.key = "windows.out_of_orderness",
     .type = MW_CFG_DURATION,
     .offset = F(windows.out_of_orderness_ms),
     .def = "5m",
     .min = 0,
     .max = DAY_MS,
     .desc = "How far a model's watermark trails the newest event time applied for it"},
    {.key = "windows.max_clock_skew",
     .type = MW_CFG_DURATION,
     .offset = F(windows.max_clock_skew_ms),
     .def = "1m",
     .min = 0,
     .max = DAY_MS,
     .desc = "How far ahead of the aggregator's clock an event time may be; later ones are "
             "clamped to the clock and counted (modelwatch_aggregator_clamped_values_total)"},
    {.key = "profiles.refresh",
     .type = MW_CFG_DURATION,
     .offset = F(profiles.refresh_ms),
     .def = "30s",
     .min = 1000,
     .max = DAY_MS,
     .desc = "How often reference profiles are re-read from Redis (pushes elsewhere show up)"},
    {.key = "performance.label_horizon",
     .type = MW_CFG_DURATION,
     .offset = F(performance.label_horizon_ms),
     .def = "14d",
     .min = 60000,
     .max = 90 * DAY_MS,
     .desc = "How long a sampled prediction waits for its label (and a label for its prediction)"},
    {.key = "labels.models",
     .type = MW_CFG_STRLIST,
     .offset = F(labels.models),
     .def = "[\"*\"]",
     .max = 1024,
     .desc = "Models whose sampled predictions wait for labels (names or fnmatch globs); other "
             "models' predictions and labels are not kept for a join"},
    {.key = "labels.pending_bucket",
     .type = MW_CFG_DURATION,
     .offset = F(labels.pending_bucket_ms),
     .def = "1d",
     .min = 60000,
     .max = 30 * DAY_MS,
     .desc = "Width of the event-time buckets that predictions (and labels that come first) "
             "wait in; each waits from its event time at least label_horizon, at most one "
             "bucket more"},
    {.key = "labels.pending_shards",
     .type = MW_CFG_INT,
     .offset = F(labels.pending_shards),
     .def = "256",
     .min = 1,
     .max = 65536,
     .desc = "Hashes a bucket is split into; keep a model's waiting predictions per bucket "
             "under about 400 x this, so each hash stays compact"},
    {.key = "labels.binary_threshold",
     .type = MW_CFG_DOUBLE,
     .offset = F(labels.binary_threshold),
     .def = "0.5",
     .min = 0,
     .max = 1,
     .desc = "Binary classifiers: a score at or above it predicts the positive class (unless "
             "the prediction names its class)"},
    {.key = "labels.binary_thresholds",
     .type = MW_CFG_LIST,
     .offset = F(labels.binary_thresholds),
     .sub = binary_threshold_table,
     .elem_size = sizeof(struct mw_binary_threshold_override),
     .max = 4096,
     .desc = "Per-model binary thresholds (model glob and threshold); the first match wins"},
    {.key = "drift.psi_possible",
     .type = MW_CFG_DOUBLE,
     .offset = F(drift.psi_possible),
     .def = "0.1",
     .min = 0,
     .max = 100,
     .desc = "PSI from which a feature's drift is possible"},
    {.key = "drift.psi_drift",
     .type = MW_CFG_DOUBLE,
     .offset = F(drift.psi_drift),
     .def = "0.2",
     .min = 0,
     .max = 100,
     .desc = "PSI from which a feature has drifted"},
    {.key = "drift.js",
     .type = MW_CFG_DOUBLE,
     .offset = F(drift.js),
     .def = "0.1",
     .min = 0,
     .max = 1,
     .desc = "Jensen-Shannon distance from which a feature has drifted"},
    {.key = "drift.p_value",
     .type = MW_CFG_DOUBLE,
     .offset = F(drift.p_value),
     .def = "0.05",
     .min = 0,
     .max = 1,
     .desc = "KS / chi-squared p-value below which drift is possible (Bonferroni-corrected "
             "across features for the model's verdict)"},
    {.key = "drift.wasserstein",
     .type = MW_CFG_DOUBLE,
     .offset = F(drift.wasserstein),
     .def = "0.1",
     .min = 0,
     .max = 1000,
     .desc = "Wasserstein distance, in reference standard deviations, from which a numeric "
             "feature has drifted"},
    {.key = "drift.min_values",
     .type = MW_CFG_INT,
     .offset = F(drift.min_values),
     .def = "100",
     .min = 1,
     .max = 1000000000,
     .desc = "Values (observed, not weighted) a window must hold before a feature gets a "
             "verdict; fewer give insufficient_data"},
    {.key = "drift.windows",
     .type = MW_CFG_ENUM,
     .offset = F(drift.windows),
     .def = "coarse",
     .choices = drift_windows_choices,
     .desc = "Window resolutions that keep drift state (coarse, fine or both): each window "
             "with drift holds a grid and a sketch per feature, so fine windows multiply "
             "Redis memory (bench/README.md)"},
    {.key = "drift.sketch_always",
     .type = MW_CFG_BOOL,
     .offset = F(drift.sketch_always),
     .def = "false",
     .desc = "Keep the profile-independent sketch of numeric features even while a profile is "
             "in force, so a profile corrected later reads those windows too (about 3x the "
             "Redis memory and 25 % more ingest CPU; without it, only windows applied while no "
             "profile existed can be read by a profile pushed later)"},
    {.key = "drift_features",
     .type = MW_CFG_LIST,
     .offset = F(drift_features),
     .sub = drift_override_table,
     .elem_size = sizeof(struct mw_drift_feature_override),
     .max = 4096,
     .desc = "Per-feature thresholds overriding drift.* (feature, and any of its keys)"},
    {.key = "slo.availability",
     .type = MW_CFG_DOUBLE,
     .offset = F(slo.availability),
     .def = "0.999",
     .min = 0.5,
     .max = 0.999999,
     .desc = "Availability objective: the share of predictions that must succeed"},
    {.key = "slo.latency_threshold",
     .type = MW_CFG_DURATION,
     .offset = F(slo.latency_threshold_ms),
     .def = "500ms",
     .min = 1,
     .max = 3600000,
     .desc = "A prediction slower than this misses the latency objective"},
    {.key = "slo.latency_target",
     .type = MW_CFG_DOUBLE,
     .offset = F(slo.latency_target),
     .def = "0.99",
     .min = 0.5,
     .max = 0.999999,
     .desc = "Latency objective: the share of predictions that must be faster than the threshold"},
    {.key = "cost.cpu_core_hour",
     .type = MW_CFG_DOUBLE,
     .offset = F(cost.cpu_core_hour),
     .def = "0",
     .min = 0,
     .max = 1e6,
     .desc = "Price of one CPU core for one hour"},
    {.key = "cost.memory_gib_hour",
     .type = MW_CFG_DOUBLE,
     .offset = F(cost.memory_gib_hour),
     .def = "0",
     .min = 0,
     .max = 1e6,
     .desc = "Price of one GiB of memory for one hour"},
    {.key = "cost.gpu_hour",
     .type = MW_CFG_DOUBLE,
     .offset = F(cost.gpu_hour),
     .def = "0",
     .min = 0,
     .max = 1e6,
     .desc = "Price of one GPU for one hour"},
    {.key = "cost.pod_hour",
     .type = MW_CFG_DOUBLE,
     .offset = F(cost.pod_hour),
     .def = "0",
     .min = 0,
     .max = 1e6,
     .desc = "Fixed price of one pod for one hour"},
    {.key = "cost.input_tokens_per_1k",
     .type = MW_CFG_DOUBLE,
     .offset = F(cost.input_tokens_per_1k),
     .def = "0",
     .min = 0,
     .max = 1e6,
     .desc = "Price of 1,000 input tokens"},
    {.key = "cost.output_tokens_per_1k",
     .type = MW_CFG_DOUBLE,
     .offset = F(cost.output_tokens_per_1k),
     .def = "0",
     .min = 0,
     .max = 1e6,
     .desc = "Price of 1,000 output tokens"},
    {.key = "http.host",
     .type = MW_CFG_STRING,
     .offset = F(http.host),
     .def = "127.0.0.1",
     .desc = "Address of the API, /metrics, /healthz, /readyz"},
    {.key = "http.port",
     .type = MW_CFG_INT,
     .offset = F(http.port),
     .def = "9465",
     .min = 0,
     .max = 65535,
     .desc = "Port of the API, /metrics, /healthz, /readyz (0 = any free port)"},
    {.key = "http.signals_refresh",
     .type = MW_CFG_DURATION,
     .offset = F(http.signals_refresh_ms),
     .def = "15s",
     .min = 1000,
     .max = 3600000,
     .desc = "How often /metrics' per-model signals (the latest closed window) are recomputed"},
    {.key = "http.signals_delay",
     .type = MW_CFG_DURATION,
     .offset = F(http.signals_delay_ms),
     .def = "1m",
     .min = 0,
     .max = DAY_MS,
     .desc = "/metrics shows a window once it is final or ended at least this long ago"},
    {.key = "http.request_timeout",
     .type = MW_CFG_DURATION,
     .offset = F(http.request_timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 600000,
     .desc = "A request's head must arrive whole within this of its first byte, however "
             "steadily it trickles (its body gets as long again plus 1 s per 64 KiB); slower "
             "clients get 408"},
    {.key = "http.max_connections",
     .type = MW_CFG_INT,
     .offset = F(http.max_connections),
     .def = "256",
     .min = 4,
     .max = 65536,
     .desc = "Open HTTP connections at most; when full, the one waiting longest for a request "
             "is closed to make room"},
    {.key = "http.max_connections_per_client",
     .type = MW_CFG_INT,
     .offset = F(http.max_connections_per_client),
     .def = "64",
     .min = 1,
     .max = 65536,
     .desc = "Open HTTP connections from one client address at most (raise it when a proxy "
             "fronts the API)"},
    {.key = "metrics.max_model_versions",
     .type = MW_CFG_INT,
     .offset = F(metrics.max_model_versions),
     .def = "1000",
     .min = 1,
     .max = 1000000,
     .desc = "Most (model, version) pairs with series on /metrics; updates for more are counted "
             "in modelwatch_series_dropped_total"},
    {.key = "metrics.drift_features",
     .type = MW_CFG_STRLIST,
     .offset = F(metrics.drift_features),
     .max = 4096,
     .desc = "Features whose drift gauges /metrics exports; empty = every feature"},
    {.key = "metrics.drift_top_k",
     .type = MW_CFG_INT,
     .offset = F(metrics.drift_top_k),
     .def = "20",
     .min = 0,
     .max = 100000,
     .desc = "Per (model, version), export drift gauges of the k features that drifted most "
             "(by verdict, then PSI); 0 = no limit"},
    {.key = "rule_files",
     .type = MW_CFG_STRLIST,
     .offset = F(rule_files),
     .max = 1024,
     .reloadable = true,
     .desc = "Alert rule files: globs (relative ones from the config file's directory); each "
             "must match a file; empty = no alerting"},
    MW_ROUTE_CFG_FIELDS("route.", F(route)),
    MW_INHIBIT_CFG_FIELD("inhibit_rules", F(inhibit_rules)),
    MW_RECEIVERS_CFG_FIELD(struct mw_aggregator_config, receivers),
    {.key = "alerting.runbook_base_url",
     .type = MW_CFG_STRING,
     .offset = F(alerting.runbook_base_url),
     .def = "",
     .reloadable = true,
     .desc = "Base URL of the runbooks, $runbook_base in annotations (no trailing /)"},
    {.key = "alerting.external_url",
     .type = MW_CFG_STRING,
     .offset = F(alerting.external_url),
     .def = "",
     .reloadable = true,
     .desc = "URL people reach this aggregator's API at, for links in pages; empty = "
             "http://<http.host>:<http.port>"},
    {.key = "alerting.evaluation_interval",
     .type = MW_CFG_DURATION,
     .offset = F(alerting.evaluation_interval_ms),
     .def = "10s",
     .min = 100,
     .max = 600000,
     .desc = "How often the evaluator looks for windows that became final (rules run in event "
             "time, once per final window) and runs wall-clock rules that are due"},
    {.key = "alerting.lease_ttl",
     .type = MW_CFG_DURATION,
     .offset = F(alerting.lease_ttl_ms),
     .def = "15s",
     .min = 1000,
     .max = 600000,
     .desc = "The evaluate-and-deliver lease in Redis: one replica holds it and renews it every "
             "third of this; when it dies another takes over this long after"},
    {.key = "alerting.catch_up",
     .type = MW_CFG_DURATION,
     .offset = F(alerting.catch_up_ms),
     .def = "1d",
     .min = 0,
     .max = 30 * DAY_MS,
     .desc = "When a model is first evaluated, how far before its watermark evaluation starts"},
    {.key = "alerting.api_token_file",
     .type = MW_CFG_STRING,
     .offset = F(alerting.api_token_file),
     .def = "",
     .path = MW_CFG_PATH_FILE,
     .desc = "File holding the bearer token every API write (profile pushes, silences) "
             "needs; empty = silences are read-only and profile pushes open"},
    {.key = "alerting.retention",
     .type = MW_CFG_DURATION,
     .offset = F(alerting.retention_ms),
     .def = "5d",
     .min = 3600000,
     .max = 90 * DAY_MS,
     .desc = "How long expired silences and the notification log of resolved groups are kept"},
    MW_CFG_END,
};
