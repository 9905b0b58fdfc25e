/*
 * schema.h — the aggregator's layout in Redis, in one place: every key, the window index's
 * members, the names of a window hash's fields, and the rules about a window's state.
 *
 * Keys (every key of a model shares the hash tag {M}, so a Redis Cluster keeps a model's keys
 * and its scripts on one shard):
 *
 *   mw:models                                set of model names
 *   mw:epoch                                 the id of this Redis's modelwatch data
 *   mw:{M}:w:<res_s>:<start_ms>:<version>    hash of one window's counters (fields below)
 *   mw:{M}:idx:<res_s>                       sorted set of "<start_ms>:<version>" by start_ms
 *   mw:{M}:wm                                the model's watermark (ms), highest seen; it expires
 *                                            with the longest-lived window
 *   mw:{M}:dedup:<agent_id>:<boot_id>:<c>    bitmap of the batch sequence numbers already
 *                                            applied in chunk c = sequence / 65,536 (8 KiB at
 *                                            most); ...:<boot_id> without a chunk is the older
 *                                            single bitmap, still read so that batches applied
 *                                            before it was split stay no-ops
 *   mw:{M}:jp:<bucket_ms>:<shard>            hash of sampled predictions waiting for their
 *                                            labels (field: the prediction id's hash)
 *   mw:{M}:jl:<bucket_ms>:<shard>            hash of labels that came before their prediction
 *   mw:{M}:jpi, mw:{M}:jli                   sorted sets of the live buckets of each, members
 *                                            "<bucket_ms>:<shards>" scored by bucket_ms
 *   mw:{M}:profile:<version>                 a reference profile document (profile.h)
 *   mw:{M}:profiles                          set of the versions that have a profile
 *
 * <res_s> is the window width in whole seconds. The key builders write NUL-terminated text
 * into `out` (MW_SCHEMA_KEY_MAX bytes are enough for any model and version the names module
 * accepts) and return 0, or MW_ETOOBIG when `size` is too small (out then holds a truncated,
 * still terminated, key that must not be used).
 *
 * Window fields (window_apply.h says how each is counted): integers count, errors,
 * err:<code>, lat:<bucket>, lat_sum_us, tokens_in, tokens_out, feedback, records, late,
 * late_records, pf|<tag>; floats (their names start with "d|") d|wrecords, the pod's resources
 * d|cpu_s ... d|pod_s, and per profiled feature F the drift fields d|F|<suffix>; performance
 * fields under pb:, pm:, pr:, pc: (their names within are perf_metrics.h's).
 *
 * A window is final once the model's watermark has reached its end plus the allowed lateness:
 * from then on the apply path counts its traffic in `late` instead of merging it.
 */
#ifndef MW_AGGREGATOR_SCHEMA_H
#define MW_AGGREGATOR_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MW_SCHEMA_KEY_MAX 512

struct mw_profile;

/* ---- keys ----------------------------------------------------------------------------------- */

#define MW_SCHEMA_MODELS_KEY "mw:models"
/* A random id set once in an empty Redis: a different or missing one means Redis lost
 * modelwatch's data (store.c checks it on every connection). */
#define MW_SCHEMA_EPOCH_KEY "mw:epoch"

int mw_schema_window_key(char *out, size_t size, const char *model, int64_t width_ms,
                         int64_t start_ms, const char *version);
int mw_schema_index_key(char *out, size_t size, const char *model, int64_t width_ms);
int mw_schema_watermark_key(char *out, size_t size, const char *model);
/* Sequence numbers per dedup bitmap chunk. */
#define MW_SCHEMA_DEDUP_CHUNK_BITS 65536u
int mw_schema_dedup_chunk_key(char *out, size_t size, const char *model, const char *agent_id,
                              const char *boot_id, uint64_t sequence);
/* The older, unchunked bitmap of a boot (read only). */
int mw_schema_dedup_key(char *out, size_t size, const char *model, const char *agent_id,
                        const char *boot_id);
/* The two sides of a label join waiting for the other (apply.lua keeps them). */
enum mw_schema_join_side {
    MW_SCHEMA_JOIN_PREDICTIONS, /* "jp" */
    MW_SCHEMA_JOIN_LABELS,      /* "jl" */
};
int mw_schema_join_bucket_key(char *out, size_t size, const char *model,
                              enum mw_schema_join_side side, int64_t bucket_ms, uint32_t shard);
int mw_schema_join_index_key(char *out, size_t size, const char *model,
                             enum mw_schema_join_side side);
/* A join index member "<bucket_ms>:<shards>"; 0 or MW_ETOOBIG. */
int mw_schema_join_index_member(char *out, size_t size, int64_t bucket_ms, uint32_t shards);
int mw_schema_profile_key(char *out, size_t size, const char *model, const char *version);
int mw_schema_profiles_key(char *out, size_t size, const char *model);
/* "mw:{M}:", the prefix the apply script builds the label-join keys on. */
int mw_schema_model_prefix(char *out, size_t size, const char *model);

/* What a window key names. */
struct mw_schema_window_id {
    char model[MW_SCHEMA_KEY_MAX];
    char version[MW_SCHEMA_KEY_MAX];
    int64_t width_ms;
    int64_t start_ms;
};

/* Parse a window key into *out. Returns 0 or MW_EPARSE (not a window key). */
int mw_schema_window_key_parse(const char *key, struct mw_schema_window_id *out);

/* ---- index members -------------------------------------------------------------------------- */

/* "<start_ms>:<version>" into out; 0 or MW_ETOOBIG. */
int mw_schema_index_member(char *out, size_t size, int64_t start_ms, const char *version);
/* Split a member: *start_ms, and *version pointing into `member` (borrowed: valid as long as
 * member is). Returns 0 or MW_EPARSE (no decimal start followed by ':'). The version may itself
 * contain ':'; only the first one separates. */
int mw_schema_index_member_parse(const char *member, int64_t *start_ms, const char **version);

/* ---- window fields -------------------------------------------------------------------------- */

#define MW_FIELD_COUNT "count"
#define MW_FIELD_ERRORS "errors"
#define MW_FIELD_LATENCY_SUM_US "lat_sum_us"
#define MW_FIELD_TOKENS_IN "tokens_in"
#define MW_FIELD_TOKENS_OUT "tokens_out"
#define MW_FIELD_FEEDBACK "feedback"
#define MW_FIELD_RECORDS "records"
#define MW_FIELD_LATE "late"
#define MW_FIELD_LATE_RECORDS "late_records"
#define MW_FIELD_WEIGHTED_RECORDS "d|wrecords"
#define MW_FIELD_CPU_S "d|cpu_s"
#define MW_FIELD_CPU_REQUESTED_S "d|cpu_req_s"
#define MW_FIELD_CPU_BILLED_S "d|cpu_billed_s"
#define MW_FIELD_MEMORY_GIB_S "d|mem_gib_s"
#define MW_FIELD_MEMORY_BILLED_GIB_S "d|mem_billed_gib_s"
#define MW_FIELD_GPU_S "d|gpu_s"
#define MW_FIELD_POD_S "d|pod_s"
/* err:<code>, lat:<bucket> (common/latency_hist.h's bucket index) */
#define MW_FIELD_ERROR_PREFIX "err:"
#define MW_FIELD_LATENCY_PREFIX "lat:"
/* Floats are told apart by this prefix; drift fields are d|<feature>|<suffix>. */
#define MW_FIELD_FLOAT_PREFIX "d|"
#define MW_FIELD_DRIFT_PREFIX "d|"
/* pf|<tag>: records whose drift fields the profile with that tag (16 hex digits) binned. */
#define MW_FIELD_PROFILE_TAG_PREFIX "pf|"
/* Performance accumulators (perf_metrics.h names the fields under each prefix). */
#define MW_FIELD_PERF_BINARY_PREFIX "pb:"
#define MW_FIELD_PERF_MULTICLASS_PREFIX "pm:"
#define MW_FIELD_PERF_REGRESSION_PREFIX "pr:"
#define MW_FIELD_PERF_COVERAGE_PREFIX "pc:"
/* Sampled predictions of a model that expects labels: what label coverage divides by. */
#define MW_FIELD_PERF_PREDICTIONS MW_FIELD_PERF_COVERAGE_PREFIX "pred"

/* Suffixes of a feature's drift fields d|F|<suffix> (drift.h explains the slots). */
#define MW_DRIFT_SUFFIX_VALUES "n"        /* weighted values seen */
#define MW_DRIFT_SUFFIX_OBSERVED "obs"    /* values seen, unweighted */
#define MW_DRIFT_SUFFIX_MISSING "miss"    /* weighted missing values */
#define MW_DRIFT_SUFFIX_TYPE "type"       /* weighted values of the wrong type */
#define MW_DRIFT_SUFFIX_UNSEEN "unseen"   /* weighted categories the profile does not know */
#define MW_DRIFT_SUFFIX_CATEGORY "c|"     /* c|<category>: weighted values of one category */
#define MW_DRIFT_SUFFIX_SLOT_WEIGHT 'g'   /* g<slot>: weighted values in a slot of the grid */
#define MW_DRIFT_SUFFIX_SLOT_SUM 's'      /* s<slot>: their weighted sum (outer slots) */
#define MW_DRIFT_SUFFIX_SKETCH_BUCKET 'k' /* k...: value_sketch.h's bucket names */

/* "err:<code>" / "lat:<bucket>" / "pf|<tag>" / "d|<feature>|<suffix>" into out; 0 or
 * MW_ETOOBIG. */
int mw_schema_error_field(char *out, size_t size, const char *code);
int mw_schema_latency_field(char *out, size_t size, uint32_t bucket);
int mw_schema_profile_tag_field(char *out, size_t size, uint64_t tag);
int mw_schema_drift_field(char *out, size_t size, const char *feature, const char *suffix);
/* The drift field of one more suffix of a feature, for callers that name several: out[0,
 * prefix_len) holds what mw_schema_drift_field wrote for the feature and an empty suffix (it
 * returned 0); the suffix is replaced. MW_ETOOBIG where the name would not fit: out[0,
 * prefix_len) is left, what follows is not a name (mw_schema_drift_field writes what fits). */
int mw_schema_drift_field_suffix(char *out, size_t size, size_t prefix_len, const char *suffix);

/* The code of an err:<code> field (pointing into name), or NULL for any other field. */
const char *mw_schema_error_code(const char *name);
/* The bucket of a lat:<bucket> field inside [0, MW_LATENCY_BUCKETS); false for anything else. */
bool mw_schema_latency_bucket(const char *name, uint32_t *bucket);
/* The tag of a pf|<tag> field; false for anything else. */
bool mw_schema_profile_tag(const char *name, uint64_t *tag);
/* Split d|<feature>|<suffix>: the feature is name[*feature_at, *feature_at + *feature_len), the
 * suffix *suffix (pointing into name). False for anything else, d|wrecords and the resource
 * fields (no second '|') included. */
bool mw_schema_drift_field_parse(const char *name, size_t *feature_at, size_t *feature_len,
                                 const char **suffix);

/* ---- windows as read ------------------------------------------------------------------------ */

/* The fields of one window hash, as name/value text pairs (borrowed). */
struct mw_window_fields {
    size_t n;
    const char *const *names;
    const char *const *values;
};

/* Numeric value of field `name` (0 when absent or not a number). */
double mw_window_field(const struct mw_window_fields *w, const char *name);

struct mw_window_latency_bucket {
    uint32_t bucket; /* common/latency_hist.h's index */
    uint64_t count;
};

struct mw_window_error_code {
    const char *code; /* borrowed from the window's fields */
    int64_t count;
};

/* The pod's resources the window's predictions used (window_apply.h says how they are shared
 * among models): core-seconds and GiB-seconds used, requested and billed, GPU- and
 * pod-seconds. */
struct mw_window_resources {
    double cpu_s, cpu_requested_s, cpu_billed_s;
    double memory_gib_s, memory_billed_gib_s;
    double gpu_s, pod_s;
};

/*
 * One window of one model version: what it is, and its fields parsed. The families that read
 * fields by prefix (drift, performance) read `fields`; the rest is parsed once by
 * mw_window_parse. Strings are borrowed from whoever filled the struct (window_read.h states
 * for how long).
 */
struct mw_window {
    const char *model;
    const char *version;
    int64_t start_ms;
    int64_t width_ms;
    bool final; /* mw_schema_window_final under the model's watermark when it was read */
    int64_t count, errors, records, feedback, tokens_in, tokens_out, late, late_records;
    int64_t latency_sum_us;
    double weighted_records; /* sum of the sampled records' weights */
    struct mw_window_resources resources;
    size_t n_latency; /* nonzero buckets, in field order */
    struct mw_window_latency_bucket *latency;
    size_t n_error_codes; /* in field order */
    struct mw_window_error_code *error_codes;
    struct mw_window_fields fields;   /* every field, as text */
    const struct mw_profile *profile; /* the version's reference profile, when asked for and
                                         there is one; else NULL */
};

/* Parse w->fields into w's counters, resources, latency buckets and error codes (other members
 * are left alone). The two arrays are allocated here: free them with mw_window_clear. Returns
 * 0 or MW_ENOMEM (w's parsed members then empty). */
int mw_window_parse(struct mw_window *w);
/* Free what mw_window_parse allocated and empty the parsed members. Accepts NULL. */
void mw_window_clear(struct mw_window *w);

/* ---- alerting -------------------------------------------------------------------------------- */

/*
 * The alerting state (aggregator/alert/alerting.h). Every key shares the hash tag {alert}, so
 * the fenced writes of alert_state.lua touch one slot of a Redis Cluster:
 *
 *   mw:{alert}:lease      the evaluate-and-deliver lease: its holder's id, with a TTL (PX)
 *   mw:{alert}:rules      hash: alert instance -> its rule state and alert (JSON)
 *   mw:{alert}:cursors    hash: "c|<width_ms>|<model>" -> start of the last window evaluated
 *                         ("c|<width_ms>+<delay_ms>|<model>" for the rules with that delay);
 *                         "s|<model>" -> "<watermark_ms> <wall_ms>": when the model's watermark
 *                         last moved, by the wall clock (absence)
 *   mw:{alert}:nlog       hash: group key -> the notification log of that alert group (JSON):
 *                         what was last sent, when, its result, and what was last delivered
 *   mw:{alert}:silences   hash: silence id -> silence (JSON)
 */
#define MW_SCHEMA_ALERT_LEASE_KEY "mw:{alert}:lease"
#define MW_SCHEMA_ALERT_RULES_KEY "mw:{alert}:rules"
#define MW_SCHEMA_ALERT_CURSORS_KEY "mw:{alert}:cursors"
#define MW_SCHEMA_ALERT_NLOG_KEY "mw:{alert}:nlog"
#define MW_SCHEMA_ALERT_SILENCES_KEY "mw:{alert}:silences"

/* The field of one alert instance in mw:{alert}:rules: rule id, model, version and feature
 * (NULL: none) joined by 0x1f, which none of them may hold. 0 or MW_ETOOBIG. */
int mw_schema_alert_instance_field(char *out, size_t size, const char *rule_id, const char *model,
                                   const char *version, const char *feature);
/* "c|<width_ms>|<model>" (or "c|<width_ms>+<delay_ms>|<model>" for the cursor of the rules
 * with that `delay`) and "s|<model>" of mw:{alert}:cursors. 0 or MW_ETOOBIG. */
int mw_schema_alert_cursor_field(char *out, size_t size, const char *model, int64_t width_ms,
                                 int64_t delay_ms);
int mw_schema_alert_seen_field(char *out, size_t size, const char *model);
/* Parse a cursors field: *kind 'c' (with *width_ms and *delay_ms, 0 without one) or 's', the
 * model into model[size]. 0 or MW_EPARSE. */
int mw_schema_alert_cursors_field_parse(const char *field, char *kind, int64_t *width_ms,
                                        int64_t *delay_ms, char *model, size_t size);

/* ---- the pipeline's own signals ------------------------------------------------------------ */

/*
 * What the pipeline rules read (aggregator/pipeline_health.h). Every key shares the hash tag
 * {pipeline}:
 *
 *   mw:{pipeline}:agents      hash: agent id -> "boot|sealed_at_ms|sequence|dropped|spool|max":
 *                             the newest health sample a batch of the agent carried
 *   mw:{pipeline}:lag         hash: partition -> "lag|at_ms|holder": records a replica had
 *                             not consumed yet, as it last reported them
 *   mw:{pipeline}:dlq:<ms>    records sent to the dead-letter topic in the minute starting at
 *                             <ms> (wall clock), by every replica; expires after 2 h
 */
#define MW_SCHEMA_PIPELINE_AGENTS_KEY "mw:{pipeline}:agents"
#define MW_SCHEMA_PIPELINE_LAG_KEY "mw:{pipeline}:lag"
#define MW_SCHEMA_PIPELINE_DLQ_TTL_S 7200
/* "mw:{pipeline}:dlq:<minute_start_ms>". 0 or MW_ETOOBIG. */
int mw_schema_pipeline_dlq_key(char *out, size_t size, int64_t minute_start_ms);

/* ---- state ---------------------------------------------------------------------------------- */

/* A window is final — its counts can no longer change — once the watermark has reached its
 * end plus the allowed lateness: start + width + lateness <= watermark. */
bool mw_schema_window_final(int64_t start_ms, int64_t width_ms, int64_t watermark_ms,
                            int64_t allowed_lateness_ms);
/* The latest start of a final window at `width_ms` (aligned to the width). */
int64_t mw_schema_final_start_max(int64_t width_ms, int64_t watermark_ms,
                                  int64_t allowed_lateness_ms);

/* A window is closed — complete enough to publish as "the latest" — when it is final, or when
 * it ended at least `delay_ms` ago by the wall clock (`now_ms`): agents seal every second, so
 * a window is complete long before the watermark makes it final, and a model whose traffic
 * stopped has a watermark that stands still. The latest start of a closed window: */
int64_t mw_schema_closed_start_max(int64_t width_ms, int64_t watermark_ms,
                                   int64_t allowed_lateness_ms, int64_t now_ms, int64_t delay_ms);
bool mw_schema_window_closed(int64_t start_ms, int64_t width_ms, int64_t watermark_ms,
                             int64_t allowed_lateness_ms, int64_t now_ms, int64_t delay_ms);

#endif
