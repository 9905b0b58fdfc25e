/* window_apply.c — a Batch as exactly-once Redis scripts, one per model. */
#include "window_apply.h"

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "drift.h"
#include "hash.h"
#include "error.h"
#include "latency_hist.h"
#include "names.h"
#include "perf_metrics.h"
#include "schema.h"
#include "table.h"
#include "value_sketch.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- field accumulator: name -> increment, in common/table ------------------------------- */

struct field {
    uint64_t hash;
    int64_t i;
    double f;
    char name[]; /* NUL-terminated */
};

/* A window's fields, zero-initialised ready to use (same_name is set on first use). */
struct fields {
    struct mw_table table; /* struct field by name */
    size_t n_float;
    uint64_t id; /* of its window, unique in a plan (the struct moves as windows are added) */
};

static bool same_name(const void *item, const void *key)
{
    return strcmp(((const struct field *)item)->name, key) == 0;
}

/* Float fields are told apart by name (schema.h). */
static int is_float_field(const char *name)
{
    return strncmp(name, MW_FIELD_FLOAT_PREFIX, sizeof MW_FIELD_FLOAT_PREFIX - 1) == 0;
}

/* The field `name`, whose hash is `h` (mw_hash_str from MW_HASH_INIT), made when new. */
static struct field *fields_slot_hashed(struct fields *fl, const char *name, uint64_t h)
{
    if (!fl->table.equal)
        mw_table_init(&fl->table, same_name);
    struct field *f = mw_table_find(&fl->table, h, name);
    if (f)
        return f;
    size_t len = strlen(name);
    f = mw_calloc(1, sizeof *f + len + 1);
    if (!f)
        return NULL;
    memcpy(f->name, name, len + 1);
    f->hash = h;
    if (mw_table_insert(&fl->table, h, f) != 0) {
        mw_free(f);
        return NULL;
    }
    fl->n_float += is_float_field(name) != 0;
    return f;
}

static struct field *fields_slot(struct fields *fl, const char *name)
{
    return fields_slot_hashed(fl, name, mw_hash_str(MW_HASH_INIT, name));
}

static int add_int(struct fields *fl, const char *name, int64_t incr)
{
    if (incr == 0)
        return 0;
    struct field *s = fields_slot(fl, name);
    if (!s)
        return MW_ENOMEM;
    s->i += incr;
    return 0;
}

static int add_float(struct fields *fl, const char *name, double incr)
{
    if (incr == 0 || !isfinite(incr))
        return 0;
    struct field *s = fields_slot(fl, name);
    if (!s)
        return MW_ENOMEM;
    s->f += incr;
    return 0;
}

/* add_int and add_float for a field kept at *slot once found. */
static int add_int_kept(struct fields *fl, struct field **slot, const char *name, int64_t incr)
{
    if (incr == 0)
        return 0;
    if (!*slot && !(*slot = fields_slot(fl, name)))
        return MW_ENOMEM;
    (*slot)->i += incr;
    return 0;
}

static int add_float_kept(struct fields *fl, struct field **slot, const char *name, double incr)
{
    if (incr == 0 || !isfinite(incr))
        return 0;
    if (!*slot && !(*slot = fields_slot(fl, name)))
        return MW_ENOMEM;
    (*slot)->f += incr;
    return 0;
}

static void fields_free(struct fields *fl)
{
    size_t at = 0;
    struct field *f;
    while ((f = mw_table_next(&fl->table, &at)))
        mw_free(f);
    mw_table_free(&fl->table);
    memset(fl, 0, sizeof *fl);
}

/* ---- the plan of one batch ----------------------------------------------------------------- */

struct window_fields {
    char *version;
    size_t spec;
    int64_t start_ms;
    int late; /* as judged by the plan: 0 no, 1 yes, 2 nothing depended on it */
    struct fields fields;
    /* The fields every record adds to, found once (fields never move). */
    struct field *records, *perf_predictions, *weighted_records;
};

/* Every window one model touches in this batch, and its sides of label joins. */
struct model_plan {
    const char *model;
    bool expects_labels;
    double binary_threshold;
    int64_t watermark_ms; /* the model's watermark the plan assumes */
    int64_t latest_ms;    /* its newest counter bucket start in the batch (INT64_MIN: none) */
    struct mw_apply_counts counts;
    struct window_fields *windows;
    size_t n_windows;
    struct mw_redis_cmd predictions; /* bucket, field, value; ... */
    struct mw_redis_cmd labels;
};

/* Where each feature position of the last record was found in its profile: the records of a
 * batch mostly carry their features in one order, so one comparison replaces a search. */
#define FEATURE_HINTS 64

#define ABSENT_NAME_MAX 32 /* bytes of a name remembered as not in the profile */
#define HINT_ABSENT (SIZE_MAX - 1)

/* What the records of a batch so far found in the profile, by feature position: agents send a
 * model's features in the same order, most of them not profiled. */
struct feature_hints {
    const struct mw_profile *profile;
    size_t index[FEATURE_HINTS];                 /* SIZE_MAX: no hint; HINT_ABSENT: below */
    char absent[FEATURE_HINTS][ABSENT_NAME_MAX]; /* the name found not to be in the profile */
    const struct mw_profile_feature *prediction; /* the profile's "prediction", or NULL */
};

static void hints_reset(struct feature_hints *h, const struct mw_profile *p)
{
    h->profile = p;
    memset(h->index, 0xff, sizeof h->index);
    h->prediction = mw_profile_find(p, "prediction");
}

#define DRIFT_NAMES 8 /* features whose drift field names a plan keeps ready */

/* A feature's drift field name up to its suffix ("d|<feature>|") and the hash of that much:
 * each record names three or four fields of each profiled feature, the same features record
 * after record. The suffix is written after the prefix for each field. */
struct drift_name {
    const char *feature; /* the name it was made of (NULL: none); names do not move in a plan */
    size_t prefix_len;
    uint64_t prefix_hash;
    /* The feature's "n" and "obs" fields (KEPT_N, KEPT_OBS) in the windows of the record last
     * counted, by sink position: every record adds to them. */
    uint64_t kept_window[2][2]; /* fields.id, 0: none */
    struct field *kept[2][2];
    char name[MW_SCHEMA_KEY_MAX];
};

enum { KEPT_NONE = -1, KEPT_N = 0, KEPT_OBS = 1 };

struct planner {
    const Modelwatch__V1__Batch *batch;
    const struct mw_apply_options *opt;
    struct model_plan *models;
    size_t n_models;
    struct feature_hints hints;
    struct drift_name drift_names[DRIFT_NAMES];
    uint64_t n_windows; /* made so far: the last fields.id */
};

static struct window_fields *find_window(struct planner *pl, struct model_plan *mp,
                                         const char *version, size_t spec, int64_t start_ms)
{
    for (size_t i = 0; i < mp->n_windows; i++) {
        struct window_fields *w = &mp->windows[i];
        if (w->spec == spec && w->start_ms == start_ms && strcmp(w->version, version) == 0)
            return w;
    }
    struct window_fields *grown = mw_realloc(mp->windows, (mp->n_windows + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    mp->windows = grown;
    struct window_fields *w = &mp->windows[mp->n_windows];
    memset(w, 0, sizeof *w);
    w->version = mw_strdup(version);
    if (!w->version)
        return NULL;
    w->spec = spec;
    w->start_ms = start_ms;
    w->late = 2;
    w->fields.id = ++pl->n_windows;
    mp->n_windows++;
    return w;
}

static struct model_plan *find_model(struct planner *pl, const char *model)
{
    for (size_t i = 0; i < pl->n_models; i++)
        if (strcmp(pl->models[i].model, model) == 0)
            return &pl->models[i];
    struct model_plan *grown = mw_realloc(pl->models, (pl->n_models + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    pl->models = grown;
    struct model_plan *mp = &grown[pl->n_models++];
    memset(mp, 0, sizeof *mp);
    mp->model = model;
    struct mw_label_policy policy = {.expects_labels = true,
                                     .binary_threshold = MW_PERF_THRESHOLD_DEFAULT};
    if (pl->opt->label_policy)
        pl->opt->label_policy(pl->opt->label_policy_ctx, model, &policy);
    mp->expects_labels = policy.expects_labels;
    mp->binary_threshold = policy.binary_threshold;
    mp->watermark_ms = pl->opt->watermark ? pl->opt->watermark(pl->opt->watermark_ctx, model)
                                          : pl->opt->watermark_ms;
    mp->latest_ms = INT64_MIN;
    mw_redis_cmd_init(&mp->predictions);
    mw_redis_cmd_init(&mp->labels);
    return mp;
}

/* Whether window `w` of `mp` is final under the watermark the plan assumes (recorded in the
 * window: the script checks it against the model's watermark in Redis). */
static bool is_late(const struct planner *pl, const struct model_plan *mp, struct window_fields *w)
{
    const struct mw_window_spec *spec = &pl->opt->specs[w->spec];
    bool late = mp->watermark_ms != INT64_MIN &&
                mw_schema_window_final(w->start_ms, spec->width_ms, mp->watermark_ms,
                                       pl->opt->allowed_lateness_ms);
    w->late = late;
    return late;
}

static int add_counters(struct fields *fl, const Modelwatch__V1__ModelCounters *mc)
{
    int rc = add_int(fl, MW_FIELD_COUNT, (int64_t)mc->count);
    rc = rc ? rc : add_int(fl, MW_FIELD_ERRORS, (int64_t)mc->error_count);
    rc = rc ? rc : add_int(fl, MW_FIELD_TOKENS_IN, (int64_t)mc->input_tokens);
    rc = rc ? rc : add_int(fl, MW_FIELD_TOKENS_OUT, (int64_t)mc->output_tokens);
    rc = rc ? rc : add_int(fl, MW_FIELD_FEEDBACK, (int64_t)mc->feedback_count);
    char name[96];
    for (size_t i = 0; !rc && i < mc->n_errors; i++) {
        /* A code too long for the name is counted under its first bytes. */
        mw_schema_error_field(name, sizeof name, mc->errors[i]->code);
        rc = add_int(fl, name, (int64_t)mc->errors[i]->count);
    }
    const Modelwatch__V1__LatencyHistogram *h = mc->latency;
    for (size_t i = 0; !rc && h && i < h->n_bucket_index; i++) {
        mw_schema_latency_field(name, sizeof name, h->bucket_index[i]);
        rc = add_int(fl, name, (int64_t)h->bucket_count[i]);
    }
    if (!rc && h)
        rc = add_int(fl, MW_FIELD_LATENCY_SUM_US, (int64_t)h->sum_us);
    return rc;
}

static int plan_counters(struct planner *pl, const Modelwatch__V1__ModelCounters *mc)
{
    struct model_plan *mp = find_model(pl, mc->model);
    if (!mp)
        return MW_ENOMEM;
    mp->counts.predictions += mc->count;
    /* The watermark follows predictions only: ground truth is dated when it is known, hours or
     * days after its prediction, and a replay's labels dated now would make the rest of the
     * replay late. */
    if (mc->count > 0 && mc->bucket_start_ms > mp->latest_ms)
        mp->latest_ms = mc->bucket_start_ms;
    for (size_t s = 0; s < pl->opt->n_specs; s++) {
        const struct mw_window_spec *spec = &pl->opt->specs[s];
        if (spec->width_ms % mc->bucket_width_ms != 0)
            return MW_EINVAL;
        int64_t start = mw_clock_window_start(mc->bucket_start_ms, spec->width_ms);
        struct window_fields *w = find_window(pl, mp, mc->version ? mc->version : "", s, start);
        if (!w)
            return MW_ENOMEM;
        int rc;
        if (is_late(pl, mp, w)) {
            rc = add_int(&w->fields, MW_FIELD_LATE, (int64_t)mc->count);
            if (s == 0)
                mp->counts.late_predictions += mc->count;
        } else {
            rc = add_counters(&w->fields, mc);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Resources of the batch's interval, shared among its (model, version)s by prediction count. */
static int plan_resources(struct planner *pl)
{
    const Modelwatch__V1__MetricsSnapshot *snap = pl->batch->snapshot;
    const Modelwatch__V1__ResourceUsage *u = snap ? snap->resources : NULL;
    if (!u || !u->cgroup_available || u->interval_end_ms <= u->interval_start_ms)
        return 0;
    uint64_t total = 0;
    for (size_t i = 0; i < snap->n_models; i++)
        total += snap->models[i]->count;
    double seconds = (double)(u->interval_end_ms - u->interval_start_ms) / 1000.0;
    for (size_t i = 0; total && i < snap->n_models; i++) {
        const Modelwatch__V1__ModelCounters *mc = snap->models[i];
        double share = (double)mc->count / (double)total;
        struct model_plan *mp = find_model(pl, mc->model);
        if (!mp)
            return MW_ENOMEM;
        for (size_t s = 0; s < pl->opt->n_specs; s++) {
            int64_t start = mw_clock_window_start(u->interval_end_ms, pl->opt->specs[s].width_ms);
            struct window_fields *w = find_window(pl, mp, mc->version ? mc->version : "", s, start);
            if (!w)
                return MW_ENOMEM;
            /* Billed: the request when it is larger than the use, per interval. */
            double req_cpu_s = u->has_requested_cores ? u->requested_cores * seconds : 0;
            double mem_gib_s = (double)u->memory_bytes / 1073741824.0 * seconds;
            double req_mem_gib_s = u->has_requested_memory_bytes
                                       ? (double)u->requested_memory_bytes / 1073741824.0 * seconds
                                       : 0;
            int rc = add_float(&w->fields, MW_FIELD_CPU_S, u->cpu_seconds * share);
            rc = rc ? rc : add_float(&w->fields, MW_FIELD_CPU_REQUESTED_S, req_cpu_s * share);
            rc = rc ? rc
                    : add_float(&w->fields, MW_FIELD_CPU_BILLED_S,
                                (req_cpu_s > u->cpu_seconds ? req_cpu_s : u->cpu_seconds) * share);
            rc = rc ? rc
                    : add_float(&w->fields, MW_FIELD_MEMORY_BILLED_GIB_S,
                                (req_mem_gib_s > mem_gib_s ? req_mem_gib_s : mem_gib_s) * share);
            rc = rc ? rc : add_float(&w->fields, MW_FIELD_GPU_S, u->gpu_seconds * share);
            rc = rc ? rc : add_float(&w->fields, MW_FIELD_POD_S, seconds * share);
            rc = rc ? rc
                    : add_float(&w->fields, MW_FIELD_MEMORY_GIB_S,
                                (double)u->memory_bytes / 1073741824.0 * seconds * share);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- drift fields of one record ------------------------------------------------------------- */

/* Field names are built per record and feature, so without printf: it dominated the cost. */
static size_t put(char *out, size_t at, size_t size, const char *text)
{
    size_t n = strlen(text);
    if (at + n >= size)
        n = at < size - 1 ? size - 1 - at : 0;
    memcpy(out + at, text, n);
    out[at + n] = '\0';
    return at + n;
}

static size_t put_uint(char *out, size_t at, size_t size, uint64_t v)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && at + 1 < size)
        out[at++] = digits[--n];
    out[at] = '\0';
    return at;
}

/* The windows (fine and coarse) that one record's drift fields go to: names are built once. */
struct sink {
    struct fields *to[2];
    size_t n;
    struct drift_name *names; /* DRIFT_NAMES, by feature pointer, kept across records */
};

/* Add `weight` to the drift field `suffix` of `feature` in the sink's windows; `kept` names
 * the fields kept per feature (KEPT_N, KEPT_OBS) or is KEPT_NONE. */
static int drift_add_as(struct sink *fl, const char *feature, const char *suffix, int kept,
                        double weight)
{
    if (weight == 0 || !isfinite(weight))
        return 0; /* as add_float */
    /* By the feature name's address (Fibonacci hashing: its low bits are alignment). */
    uint64_t slot = ((uint64_t)(uintptr_t)feature * 0x9e3779b97f4a7c15u) >> 32;
    struct drift_name *dn = &fl->names[slot % DRIFT_NAMES];
    if (dn->feature != feature) {
        dn->feature = NULL;
        memset(dn->kept_window, 0, sizeof dn->kept_window);
        if (mw_schema_drift_field(dn->name, sizeof dn->name, feature, "") == 0) {
            dn->feature = feature;
            dn->prefix_len = strlen(dn->name);
            dn->prefix_hash = mw_hash_bytes(MW_HASH_INIT, dn->name, dn->prefix_len);
        }
    }
    if (kept != KEPT_NONE && dn->feature) {
        size_t i = 0;
        while (i < fl->n && dn->kept_window[kept][i] == fl->to[i]->id)
            i++;
        if (i == fl->n) { /* the same windows as the record before */
            for (i = 0; i < fl->n; i++)
                dn->kept[kept][i]->f += weight;
            return 0;
        }
    }
    uint64_t h;
    if (dn->feature &&
        mw_schema_drift_field_suffix(dn->name, sizeof dn->name, dn->prefix_len, suffix) == 0) {
        h = mw_hash_str(dn->prefix_hash, suffix); /* FNV-1a goes on where the prefix ended */
    } else {
        /* A name too long for the buffer is counted under its first bytes. */
        mw_schema_drift_field(dn->name, sizeof dn->name, feature, suffix);
        h = mw_hash_str(MW_HASH_INIT, dn->name);
        dn->feature = NULL;
    }
    for (size_t i = 0; i < fl->n; i++) {
        struct field *s = fields_slot_hashed(fl->to[i], dn->name, h);
        if (!s)
            return MW_ENOMEM;
        s->f += weight;
        if (kept != KEPT_NONE && dn->feature) {
            dn->kept_window[kept][i] = fl->to[i]->id;
            dn->kept[kept][i] = s;
        }
    }
    return 0;
}

static int drift_add(struct sink *fl, const char *feature, const char *suffix, double weight)
{
    return drift_add_as(fl, feature, suffix, KEPT_NONE, weight);
}

/* A slot's weighted count and, for the outer slots whose mass a profile cannot place, the
 * weighted sum of its values (signals.c reads both). */
static int drift_numeric(struct sink *fl, const struct mw_profile_feature *f, double x,
                         double weight)
{
    size_t slot = mw_grid_slot(f->cuts, f->n_cuts, f->min, f->max, x);
    if (slot == MW_GRID_NONE || !isfinite(x))
        return drift_add(fl, f->name, "miss", weight);
    char suffix[32] = "g";
    put_uint(suffix, 1, sizeof suffix, slot);
    int rc = drift_add_as(fl, f->name, "n", KEPT_N, weight);
    rc = rc ? rc : drift_add_as(fl, f->name, "obs", KEPT_OBS, 1.0);
    rc = rc ? rc : drift_add(fl, f->name, suffix, weight);
    if (!rc && (slot <= 1 || slot >= f->n_cuts + 1)) {
        suffix[0] = 's';
        rc = drift_add(fl, f->name, suffix, weight * x);
    }
    return rc;
}

static int drift_categorical(struct sink *fl, const struct mw_profile_feature *f, const char *value,
                             double weight)
{
    int rc = drift_add_as(fl, f->name, "n", KEPT_N, weight);
    rc = rc ? rc : drift_add_as(fl, f->name, "obs", KEPT_OBS, 1.0);
    if (rc)
        return rc;
    long idx = mw_profile_category(f, value);
    if (idx < 0)
        return drift_add(fl, f->name, "unseen", weight);
    char suffix[300] = "c|";
    put(suffix, 2, sizeof suffix, f->categories[idx]);
    return drift_add(fl, f->name, suffix, weight);
}

/* One feature's value against its profile entry. A number where the profile has categories is
 * taken as its text; text where the profile has numbers is a type violation. */
static int drift_feature(struct sink *fl, const struct mw_profile_feature *pf,
                         const Modelwatch__V1__Feature *v, double weight)
{
    if (v->value_case == MODELWATCH__V1__FEATURE__VALUE_CATEGORICAL && pf->numeric)
        return drift_add(fl, pf->name, "type", weight);
    if (v->value_case == MODELWATCH__V1__FEATURE__VALUE_NUMERIC && pf->numeric)
        return drift_numeric(fl, pf, v->numeric, weight);
    if (v->value_case == MODELWATCH__V1__FEATURE__VALUE_CATEGORICAL && !pf->numeric)
        return drift_categorical(fl, pf, v->categorical, weight);
    if (v->value_case == MODELWATCH__V1__FEATURE__VALUE_NUMERIC && !pf->numeric) {
        char text[64];
        snprintf(text, sizeof text, "%.17g", v->numeric);
        return drift_categorical(fl, pf, text, weight);
    }
    return drift_add(fl, pf->name, "miss", weight);
}

/* The prediction itself, as the profile's feature "prediction" when it has one. */
static int drift_prediction(struct sink *fl, const struct mw_profile *p,
                            const Modelwatch__V1__PredictionEvent *ev, double weight,
                            struct feature_hints *hints)
{
    if (hints->profile != p)
        hints_reset(hints, p);
    const struct mw_profile_feature *pf = hints->prediction;
    const Modelwatch__V1__Output *o = ev->output;
    if (!pf)
        return 0;
    if (o && pf->numeric && (o->has_score || o->has_value))
        return drift_numeric(fl, pf, o->has_score ? o->score : o->value, weight);
    if (o && !pf->numeric && o->predicted_class && *o->predicted_class)
        return drift_categorical(fl, pf, o->predicted_class, weight);
    return drift_add(fl, pf->name, "miss", weight);
}

#define MAX_TRACKED_FEATURES 1024

static const struct mw_profile_feature *
find_feature(struct feature_hints *h, const struct mw_profile *p, size_t position, const char *name)
{
    if (h->profile != p)
        hints_reset(h, p);
    size_t *hint = position < FEATURE_HINTS ? &h->index[position] : NULL;
    if (hint && *hint < p->n_features && strcmp(p->features[*hint].name, name) == 0)
        return &p->features[*hint];
    if (hint && *hint == HINT_ABSENT && strcmp(h->absent[position], name) == 0)
        return NULL;
    const struct mw_profile_feature *pf = mw_profile_find(p, name);
    if (hint) {
        *hint = pf ? (size_t)(pf - p->features) : SIZE_MAX;
        size_t len = strlen(name);
        if (!pf && len < ABSENT_NAME_MAX) {
            memcpy(h->absent[position], name, len + 1);
            *hint = HINT_ABSENT;
        }
    }
    return pf;
}

static int drift_record(struct sink *fl, const struct mw_profile *p,
                        const Modelwatch__V1__PredictionEvent *ev, double weight,
                        struct feature_hints *hints)
{
    uint8_t seen[MAX_TRACKED_FEATURES]; /* by profile feature: only those are cleared */
    memset(seen, 0, p->n_features < MAX_TRACKED_FEATURES ? p->n_features : MAX_TRACKED_FEATURES);
    int rc = 0;
    for (size_t i = 0; !rc && i < ev->n_features; i++) {
        const Modelwatch__V1__Feature *v = ev->features[i];
        const struct mw_profile_feature *pf = v->name ? find_feature(hints, p, i, v->name) : NULL;
        if (!pf)
            continue;
        size_t idx = (size_t)(pf - p->features);
        if (idx < MAX_TRACKED_FEATURES) {
            if (seen[idx])
                continue; /* a repeated feature counts once */
            seen[idx] = 1;
        }
        rc = drift_feature(fl, pf, v, weight);
    }
    /* Profiled features the event did not carry are missing. */
    for (size_t i = 0; !rc && i < p->n_features && i < MAX_TRACKED_FEATURES; i++)
        if (!seen[i] && strcmp(p->features[i].name, "prediction") != 0)
            rc = drift_add(fl, p->features[i].name, "miss", weight);
    return rc ? rc : drift_prediction(fl, p, ev, weight, hints);
}

/* Longer feature names are not sketched (a field name stays well under 512 bytes). */
#define MW_FEATURE_NAME_MAX 256

/* One numeric value into the feature's profile-independent sketch (value_sketch.h). */
static int sketch_value(struct sink *fl, const char *feature, double x, double weight)
{
    if (!isfinite(x) || strchr(feature, '|') || strlen(feature) > MW_FEATURE_NAME_MAX)
        return 0;
    char suffix[24];
    mw_sketch_bucket_name(mw_sketch_bucket_of(x), suffix, sizeof suffix);
    return drift_add(fl, feature, suffix, weight);
}

/* Whether features[i]'s name came earlier in the record: a repeated feature counts once.
 * Names are compared only when their first bytes and lengths agree (most never do). */
static bool repeated(const Modelwatch__V1__PredictionEvent *ev, size_t i, const size_t *lens)
{
    const char *name = ev->features[i]->name;
    for (size_t j = 0; j < i; j++) {
        const char *other = ev->features[j]->name;
        if (other && lens[j] == lens[i] && other[0] == name[0] && strcmp(other, name) == 0)
            return true;
    }
    return false;
}

/* Every numeric feature of the record (and a numeric prediction, as "prediction") into its
 * sketch, whatever profile is in force, so a profile pushed later can read the window. */
static int sketch_record(struct sink *fl, const Modelwatch__V1__PredictionEvent *ev, double weight)
{
    int rc = 0;
    size_t lens[MW_SKETCH_MAX_FEATURES];
    for (size_t i = 0, n = 0; !rc && i < ev->n_features && n < MW_SKETCH_MAX_FEATURES; i++) {
        const Modelwatch__V1__Feature *v = ev->features[i];
        lens[i < MW_SKETCH_MAX_FEATURES ? i : 0] = v->name ? strlen(v->name) : 0;
        if (i >= MW_SKETCH_MAX_FEATURES)
            break;
        if (!v->name || v->value_case != MODELWATCH__V1__FEATURE__VALUE_NUMERIC ||
            repeated(ev, i, lens))
            continue;
        rc = sketch_value(fl, v->name, v->numeric, weight);
        n++;
    }
    const Modelwatch__V1__Output *o = ev->output;
    if (!rc && o && (o->has_score || o->has_value))
        rc = sketch_value(fl, "prediction", o->has_score ? o->score : o->value, weight);
    return rc;
}

/* ---- label joins ----------------------------------------------------------------------------- */

/*
 * Each side of a join waits in Redis as one field of a hash (see window_apply.h): the field is
 * a 64-bit hash of the prediction id, the value a packed record of what the join needs, and
 * the hash one of `shards` of an event-time bucket. Both layouts are read by apply.lua
 * (unpack_prediction, unpack_label); integers and doubles little-endian.
 *
 *   prediction: u8 flags (JOIN_BINARY, JOIN_POSITIVE, JOIN_REGRESSION, JOIN_FINAL_FINE,
 *               JOIN_FINAL_COARSE), u32 event ms - bucket start, [binary: u16 score bin,
 *               f64 score], [regression: f64 value], u8 n + version, u8 n + predicted class
 *   label:      u8 flags (LABEL_BINARY, LABEL_ONE, LABEL_VALUE), u32 label ms - bucket start,
 *               [value: f64 value] [class: u8 n + class]
 */
enum {
    JOIN_BINARY = 1,       /* a score in [0, 1] */
    JOIN_POSITIVE = 2,     /* the model predicted the positive class */
    JOIN_REGRESSION = 4,   /* a finite predicted value */
    JOIN_FINAL_FINE = 8,   /* the fine window was final when the prediction came: not joined */
    JOIN_FINAL_COARSE = 16 /* the same for the coarse window */
};
enum {
    LABEL_BINARY = 1, /* the label reads as 0 or 1 ... */
    LABEL_ONE = 2,    /* ... and it is 1 */
    LABEL_VALUE = 4   /* a value (regression); otherwise a class */
};

#define MAX_PACKED 600 /* flags, offset, numbers and two strings of at most 255 bytes */

struct packer {
    uint8_t bytes[MAX_PACKED];
    size_t n;
};

static void pack_u(struct packer *p, uint64_t v, size_t width)
{
    for (size_t i = 0; i < width; i++)
        p->bytes[p->n++] = (uint8_t)(v >> (8 * i));
}

static void pack_f64(struct packer *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    pack_u(p, bits, 8);
}

/* A string of at most 255 bytes; a longer one is packed as "" (no class). */
static void pack_str(struct packer *p, const char *text)
{
    size_t n = text ? strlen(text) : 0;
    if (n > 255)
        n = 0;
    p->bytes[p->n++] = (uint8_t)n;
    memcpy(p->bytes + p->n, text, n);
    p->n += n;
}

/* The id's hash: FNV-1a 64 from another basis than the sampler's (whose hash chose the ids
 * kept, so its high bits are skewed), then splitmix64's finalizer. Two ids of one model
 * waiting at once collide with probability about n^2 / 2^65. */
#define JOIN_HASH_SEED 0x84222325cbf29ce4u

static uint64_t join_hash(const char *id)
{
    /* Seeded apart from the sampler's hash of the same id, so that shards are independent of
     * which ids the rate selected. */
    return mw_hash_mix(mw_hash_str(JOIN_HASH_SEED, id));
}

static int64_t bucket_width(const struct mw_apply_options *opt)
{
    return opt->pending_bucket_ms > 0 ? opt->pending_bucket_ms : MW_APPLY_PENDING_BUCKET_MS;
}

/* Append one side to `side`: bucket start, field (the id's hash, whose first 4 bytes are the
 * shard selector: apply.lua reads them), packed value.
 * `event_ms` is clamped to [0, ...) like window starts. */
static int add_join_side(const struct planner *pl, struct mw_redis_cmd *side, const char *id,
                         int64_t event_ms, struct packer *value)
{
    int64_t ms = event_ms > 0 ? event_ms : 0;
    int64_t bucket = mw_clock_window_start(ms, bucket_width(pl->opt));
    uint32_t offset = (uint32_t)(ms - bucket); /* buckets are at most 30 days wide */
    for (size_t i = 0; i < 4; i++)
        value->bytes[1 + i] = (uint8_t)(offset >> (8 * i));
    uint64_t h = join_hash(id);
    uint8_t field[8];
    for (size_t i = 0; i < 8; i++)
        field[i] = (uint8_t)(h >> (8 * i));
    /* As an integer, not through printf. */
    int rc = mw_redis_cmd_add_int(side, bucket);
    rc = rc ? rc : mw_redis_cmd_addb(side, field, sizeof field);
    return rc ? rc : mw_redis_cmd_addb(side, value->bytes, value->n);
}

/* Binary reading of a class name: 1, 0, or -1 when it is neither. */
static int binary_class(const char *c)
{
    if (!c)
        return -1;
    if (!strcmp(c, "1") || !strcasecmp(c, "true") || !strcasecmp(c, "yes"))
        return 1;
    if (!strcmp(c, "0") || !strcasecmp(c, "false") || !strcasecmp(c, "no"))
        return 0;
    return -1;
}

/* Binary reading of a label: 1, 0, or -1 when it is neither. */
static int binary_label(const Modelwatch__V1__Feedback *fb)
{
    if (fb->label_case == MODELWATCH__V1__FEEDBACK__LABEL_LABEL_VALUE)
        return fb->label_value == 1.0 ? 1 : fb->label_value == 0.0 ? 0 : -1;
    return binary_class(fb->label_class ? fb->label_class : "");
}

static int plan_feedback(struct planner *pl, const Modelwatch__V1__Feedback *fb)
{
    if (!mw_model_name_valid(fb->model) || !fb->prediction_id || !*fb->prediction_id ||
        fb->label_case == MODELWATCH__V1__FEEDBACK__LABEL__NOT_SET)
        return 0;
    struct model_plan *mp = find_model(pl, fb->model);
    if (!mp)
        return MW_ENOMEM;
    if (!mp->expects_labels)
        return 0;
    struct packer v;
    v.n = 0; /* bytes are written before they are read */
    int y = binary_label(fb);
    bool is_class = fb->label_case == MODELWATCH__V1__FEEDBACK__LABEL_LABEL_CLASS;
    pack_u(&v,
           (y >= 0 ? LABEL_BINARY : 0) | (y == 1 ? LABEL_ONE : 0) | (is_class ? 0 : LABEL_VALUE),
           1);
    pack_u(&v, 0, 4); /* the offset, set by add_join_side */
    if (is_class)
        pack_str(&v, fb->label_class);
    else
        pack_f64(&v, isfinite(fb->label_value) ? fb->label_value : 0.0);
    return add_join_side(pl, &mp->labels, fb->prediction_id, fb->event_time_ms, &v);
}

/* Keep the prediction for its label (or join it with a label that came first). What the model
 * predicted, for the binary metrics: the class it names when that reads as binary (so that
 * binary and multi-class metrics agree), else score >= its threshold. */
static int plan_prediction(struct planner *pl, struct model_plan *mp,
                           const Modelwatch__V1__PredictionEvent *ev, const char *version,
                           const bool *late)
{
    if (!ev->prediction_id || !*ev->prediction_id)
        return 0;
    const Modelwatch__V1__Output *o = ev->output;
    bool binary = o && o->has_score && o->score >= 0 && o->score <= 1;
    bool regression = o && o->has_value && isfinite(o->value);
    const char *cls = o && o->predicted_class ? o->predicted_class : "";
    int named = binary_class(cls);
    bool positive = binary && (named >= 0 ? named == 1 : o->score >= mp->binary_threshold);
    struct packer v;
    v.n = 0; /* bytes are written before they are read */
    pack_u(&v,
           (binary ? JOIN_BINARY : 0) | (positive ? JOIN_POSITIVE : 0) |
               (regression ? JOIN_REGRESSION : 0) | (late[0] ? JOIN_FINAL_FINE : 0) |
               (late[1] ? JOIN_FINAL_COARSE : 0),
           1);
    pack_u(&v, 0, 4); /* the offset, set by add_join_side */
    if (binary) {
        pack_u(&v, mw_perf_score_bin(o->score, MW_PERF_AUC_BINS_DEFAULT), 2);
        pack_f64(&v, o->score);
    }
    if (regression)
        pack_f64(&v, o->value);
    pack_str(&v, version);
    pack_str(&v, cls);
    return add_join_side(pl, &mp->predictions, ev->prediction_id, ev->event_time_ms, &v);
}

static double record_weight(const Modelwatch__V1__Record *rec)
{
    return rec->has_weight && isfinite(rec->weight) && rec->weight > 0 ? rec->weight : 1.0;
}

static int plan_record(struct planner *pl, const Modelwatch__V1__Record *rec)
{
    if (rec->body_case == MODELWATCH__V1__RECORD__BODY_FEEDBACK)
        return plan_feedback(pl, rec->feedback);
    if (rec->body_case != MODELWATCH__V1__RECORD__BODY_EVENT)
        return 0;
    const Modelwatch__V1__PredictionEvent *ev = rec->event;
    if (!mw_model_name_valid(ev->model) || !mw_version_valid(ev->version))
        return 0; /* mw_batch_bound refused and counted these */
    const char *version = ev->version ? ev->version : "";
    struct model_plan *mp = find_model(pl, ev->model);
    if (!mp)
        return MW_ENOMEM;
    mp->counts.records++;
    const struct mw_profile *profile =
        pl->opt->profile ? pl->opt->profile(pl->opt->profile_ctx, ev->model, version) : NULL;
    double weight = record_weight(rec);
    /* A prediction kept only as an error or a slow request gets no label: not waited for. */
    bool label_sampled = !rec->has_label_sampled || rec->label_sampled;
    bool late[2] = {true, true};
    /* Both windows first: creating one may move mp->windows, so pointers are taken after. */
    size_t at[2];
    size_t n_specs = pl->opt->n_specs < 2 ? pl->opt->n_specs : 2;
    for (size_t s = 0; s < n_specs; s++) {
        int64_t start = mw_clock_window_start(ev->event_time_ms, pl->opt->specs[s].width_ms);
        struct window_fields *w = find_window(pl, mp, version, s, start);
        if (!w)
            return MW_ENOMEM;
        at[s] = (size_t)(w - mp->windows);
    }
    struct sink sink = {.n = 0, .names = pl->drift_names};
    for (size_t s = 0; s < n_specs; s++) {
        const struct mw_window_spec *spec = &pl->opt->specs[s];
        struct window_fields *w = &mp->windows[at[s]];
        if (is_late(pl, mp, w)) {
            if (s == 0)
                mp->counts.late_records++;
            int rc = add_int(&w->fields, MW_FIELD_LATE_RECORDS, 1);
            if (rc)
                return rc;
            continue;
        }
        late[s] = false;
        int rc = add_int_kept(&w->fields, &w->records, MW_FIELD_RECORDS, 1);
        if (!rc && label_sampled && mp->expects_labels)
            rc = add_int_kept(&w->fields, &w->perf_predictions, MW_FIELD_PERF_PREDICTIONS, 1);
        rc = rc ? rc
                : add_float_kept(&w->fields, &w->weighted_records, MW_FIELD_WEIGHTED_RECORDS,
                                 weight);
        if (rc)
            return rc;
        if (spec->drift)
            sink.to[sink.n++] = &w->fields;
    }
    if (profile && sink.n) {
        char tag[32];
        mw_schema_profile_tag_field(tag, sizeof tag, profile->tag);
        int rc = 0;
        for (size_t i = 0; !rc && i < sink.n; i++)
            rc = add_int(sink.to[i], tag, 1);
        rc = rc ? rc : drift_record(&sink, profile, ev, weight, &pl->hints);
        if (rc)
            return rc;
    }
    if (sink.n && (!profile || pl->opt->sketch_always)) {
        int rc = sketch_record(&sink, ev, weight);
        if (rc)
            return rc;
    }
    if ((late[0] && late[1]) || !label_sampled || !mp->expects_labels)
        return 0;
    return plan_prediction(pl, mp, ev, version, late);
}

/* ---- commands ------------------------------------------------------------------------------- */

static int add_field_args(struct mw_redis_cmd *cmd, const struct fields *fl, int floats)
{
    int rc = 0;
    size_t at = 0;
    const struct field *s;
    while (!rc && (s = mw_table_next(&fl->table, &at))) {
        if (is_float_field(s->name) != floats)
            continue;
        rc = mw_redis_cmd_add(cmd, s->name);
        if (!rc && floats)
            rc = mw_redis_cmd_add_double(cmd, s->f);
        else if (!rc)
            rc = mw_redis_cmd_add_int(cmd, s->i);
    }
    return rc;
}

static int add_window_args(struct mw_redis_cmd *cmd, const struct window_fields *w,
                           const struct mw_window_spec *spec)
{
    /* Keep a window for its retention counted from its end. */
    int64_t ttl_ms = spec->retention_ms + spec->width_ms;
    size_t n_float = w->fields.n_float, n_int = w->fields.table.n - n_float;
    int rc = mw_redis_cmd_addf(cmd, "%zu", w->spec + 1);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%d", w->late);
    char member[MW_SCHEMA_KEY_MAX];
    rc = rc ? rc : mw_schema_index_member(member, sizeof member, w->start_ms, w->version);
    rc = rc ? rc : mw_redis_cmd_add(cmd, member);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRId64, w->start_ms);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRId64, ttl_ms);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%zu", n_int);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%zu", n_float);
    rc = rc ? rc : add_field_args(cmd, &w->fields, 0);
    return rc ? rc : add_field_args(cmd, &w->fields, 1);
}

/* ln(gamma) of the latency histogram: the script puts label delays in its buckets. */
static double latency_log_gamma(void)
{
    return log((1.0 + MW_LATENCY_ALPHA) / (1.0 - MW_LATENCY_ALPHA));
}

/* One EVALSHA of apply.lua (its arguments are documented at the top of apply.lua). */
static int build_eval(struct model_plan *mp, const struct planner *pl, struct mw_redis_cmd *cmd)
{
    const Modelwatch__V1__Batch *b = pl->batch;
    const struct mw_apply_options *opt = pl->opt;
    const char *m = mp->model, *agent = b->identity->agent_id, *boot = b->identity->boot_id;
    int64_t wm_ttl_ms = 0;
    for (size_t s = 0; s < opt->n_specs; s++)
        if (opt->specs[s].retention_ms + opt->specs[s].width_ms > wm_ttl_ms)
            wm_ttl_ms = opt->specs[s].retention_ms + opt->specs[s].width_ms;
    int64_t candidate =
        mp->latest_ms == INT64_MIN ? INT64_MIN : mp->latest_ms - opt->out_of_orderness_ms;
    char key[MW_SCHEMA_KEY_MAX];
    int rc = mw_redis_cmd_add(cmd, "EVALSHA");
    rc = rc ? rc : mw_redis_cmd_add(cmd, MW_APPLY_SCRIPT_SHA1);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%zu", 3 + opt->n_specs + mp->n_windows);
    rc = rc ? rc : mw_schema_dedup_chunk_key(key, sizeof key, m, agent, boot, b->sequence);
    rc = rc ? rc : mw_redis_cmd_add(cmd, key);
    rc = rc ? rc : mw_schema_watermark_key(key, sizeof key, m);
    rc = rc ? rc : mw_redis_cmd_add(cmd, key);
    rc = rc ? rc : mw_schema_dedup_key(key, sizeof key, m, agent, boot);
    rc = rc ? rc : mw_redis_cmd_add(cmd, key);
    for (size_t s = 0; !rc && s < opt->n_specs; s++) {
        rc = mw_schema_index_key(key, sizeof key, m, opt->specs[s].width_ms);
        rc = rc ? rc : mw_redis_cmd_add(cmd, key);
    }
    for (size_t i = 0; !rc && i < mp->n_windows; i++) {
        const struct window_fields *w = &mp->windows[i];
        rc = mw_schema_window_key(key, sizeof key, m, opt->specs[w->spec].width_ms, w->start_ms,
                                  w->version);
        rc = rc ? rc : mw_redis_cmd_add(cmd, key);
    }
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRIu64, b->sequence % MW_SCHEMA_DEDUP_CHUNK_BITS);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRId64, opt->dedup_retention_ms);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%zu", opt->n_specs);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRId64, candidate);
    rc = rc ? rc : mw_schema_model_prefix(key, sizeof key, m);
    rc = rc ? rc : mw_redis_cmd_add(cmd, key);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRId64, opt->label_horizon_ms);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%.17g", latency_log_gamma());
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%d", MW_LATENCY_BUCKETS - 1);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRId64, opt->now_ms);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRId64, bucket_width(opt));
    rc =
        rc ? rc
           : mw_redis_cmd_addf(cmd, "%" PRIu32,
                               opt->pending_shards ? opt->pending_shards : MW_APPLY_PENDING_SHARDS);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRIu64, b->sequence);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRId64, opt->allowed_lateness_ms);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRId64, wm_ttl_ms);
    for (size_t s = 0; !rc && s < opt->n_specs; s++)
        rc = mw_redis_cmd_addf(cmd, "%" PRId64, opt->specs[s].width_ms);
    for (size_t s = 0; !rc && s < opt->n_specs; s++)
        rc = mw_redis_cmd_addf(cmd, "%" PRId64, opt->specs[s].retention_ms);
    for (size_t i = 0; !rc && i < mp->n_windows; i++)
        rc = add_window_args(cmd, &mp->windows[i], &opt->specs[mp->windows[i].spec]);
    /* The join sides' arguments move into the command (their bytes are not copied). */
    struct mw_redis_cmd *sides[] = {&mp->predictions, &mp->labels};
    for (size_t k = 0; !rc && k < 2; k++) {
        rc = mw_redis_cmd_addf(cmd, "%zu", sides[k]->argc / 3);
        rc = rc ? rc : mw_redis_cmd_take_args(cmd, sides[k]);
    }
    return rc;
}

static void free_planner(struct planner *pl)
{
    for (size_t i = 0; i < pl->n_models; i++) {
        for (size_t w = 0; w < pl->models[i].n_windows; w++) {
            mw_free(pl->models[i].windows[w].version);
            fields_free(&pl->models[i].windows[w].fields);
        }
        mw_free(pl->models[i].windows);
        mw_redis_cmd_free(&pl->models[i].predictions);
        mw_redis_cmd_free(&pl->models[i].labels);
    }
    mw_free(pl->models);
}

static int emit_commands(struct planner *pl, struct mw_apply_plan *out)
{
    out->cmds = mw_calloc(pl->n_models + 1, sizeof *out->cmds);
    out->models = mw_calloc(pl->n_models + 1, sizeof *out->models);
    out->counts = mw_calloc(pl->n_models + 1, sizeof *out->counts);
    if (!out->cmds || !out->models || !out->counts)
        return MW_ENOMEM;
    int rc = 0;
    for (size_t i = 0; !rc && i < pl->n_models; i++) {
        mw_redis_cmd_init(&out->cmds[i]);
        out->n_cmds++;
        out->counts[i] = pl->models[i].counts;
        out->late_predictions += pl->models[i].counts.late_predictions;
        out->late_records += pl->models[i].counts.late_records;
        out->models[i] = mw_strdup(pl->models[i].model);
        rc = out->models[i] ? build_eval(&pl->models[i], pl, &out->cmds[i]) : MW_ENOMEM;
        out->n_models += out->models[i] != NULL;
    }
    if (!rc && pl->n_models) {
        struct mw_redis_cmd *sadd = &out->cmds[out->n_cmds++];
        mw_redis_cmd_init(sadd);
        rc = mw_redis_cmd_add(sadd, "SADD");
        rc = rc ? rc : mw_redis_cmd_add(sadd, MW_SCHEMA_MODELS_KEY);
        for (size_t i = 0; !rc && i < pl->n_models; i++)
            rc = mw_redis_cmd_add(sadd, pl->models[i].model);
    }
    return rc;
}

int mw_apply_plan_build(const Modelwatch__V1__Batch *b, const struct mw_apply_options *opt,
                        struct mw_apply_plan *out)
{
    struct planner pl = {.batch = b, .opt = opt};
    int rc = 0;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; !rc && b->snapshot && i < b->snapshot->n_models; i++)
        rc = plan_counters(&pl, b->snapshot->models[i]);
    rc = rc ? rc : plan_resources(&pl);
    for (size_t i = 0; !rc && i < b->n_records; i++)
        rc = plan_record(&pl, b->records[i]);
    rc = rc ? rc : emit_commands(&pl, out);
    free_planner(&pl);
    if (rc)
        mw_apply_plan_free(out);
    return rc;
}

void mw_apply_plan_free(struct mw_apply_plan *plan)
{
    if (!plan)
        return;
    for (size_t i = 0; i < plan->n_cmds; i++)
        mw_redis_cmd_free(&plan->cmds[i]);
    for (size_t i = 0; i < plan->n_models; i++)
        mw_free(plan->models[i]);
    mw_free(plan->cmds);
    mw_free(plan->models);
    mw_free(plan->counts);
    plan->cmds = NULL;
    plan->models = NULL;
    plan->counts = NULL;
    plan->n_cmds = plan->n_models = 0;
}

static bool is_int(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_INTEGER;
}

int mw_apply_reply_parse(const redisReply *reply, struct mw_apply_result *out)
{
    memset(out, 0, sizeof *out);
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        !is_int(reply->element[0]))
        return MW_EPARSE;
    const redisReply *second = reply->element[1];
    switch (reply->element[0]->integer) {
    case 1:
    case 0:
        if (reply->elements != 3 || !is_int(second) || second->integer < 0 ||
            !is_int(reply->element[2]))
            return MW_EPARSE;
        out->outcome = reply->element[0]->integer ? MW_APPLY_APPLIED : MW_APPLY_REPLAY;
        out->applied = out->outcome == MW_APPLY_APPLIED;
        out->labels_joined = (uint64_t)second->integer;
        out->watermark_ms = reply->element[2]->integer;
        return 0;
    case -1:
        if (second->type != REDIS_REPLY_STRING)
            return MW_EPARSE;
        out->outcome = MW_APPLY_REFUSED;
        snprintf(out->reason, sizeof out->reason, "%.*s", (int)second->len, second->str);
        return 0;
    case -2:
        if (!is_int(second))
            return MW_EPARSE;
        out->outcome = MW_APPLY_STALE;
        out->watermark_ms = second->integer;
        return 0;
    default:
        return MW_EPARSE;
    }
}
