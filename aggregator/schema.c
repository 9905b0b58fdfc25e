/* schema.c — Redis keys, index members and window fields of the aggregator (schema.h). */
#include "schema.h"

#include "alloc.h"
#include "decimal.h"
#include "error.h"
#include "latency_hist.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- keys ----------------------------------------------------------------------------------- */

static int format(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int format(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= size ? MW_ETOOBIG : 0;
}

int mw_schema_window_key(char *out, size_t size, const char *model, int64_t width_ms,
                         int64_t start_ms, const char *version)
{
    return format(out, size, "mw:{%s}:w:%" PRId64 ":%" PRId64 ":%s", model, width_ms / 1000,
                  start_ms, version);
}

int mw_schema_index_key(char *out, size_t size, const char *model, int64_t width_ms)
{
    return format(out, size, "mw:{%s}:idx:%" PRId64, model, width_ms / 1000);
}

int mw_schema_watermark_key(char *out, size_t size, const char *model)
{
    return format(out, size, "mw:{%s}:wm", model);
}

int mw_schema_dedup_key(char *out, size_t size, const char *model, const char *agent_id,
                        const char *boot_id)
{
    return format(out, size, "mw:{%s}:dedup:%s:%s", model, agent_id, boot_id);
}

int mw_schema_dedup_chunk_key(char *out, size_t size, const char *model, const char *agent_id,
                              const char *boot_id, uint64_t sequence)
{
    return format(out, size, "mw:{%s}:dedup:%s:%s:%" PRIu64, model, agent_id, boot_id,
                  sequence / MW_SCHEMA_DEDUP_CHUNK_BITS);
}

static const char *join_kind(enum mw_schema_join_side side)
{
    return side == MW_SCHEMA_JOIN_PREDICTIONS ? "jp" : "jl";
}

int mw_schema_join_bucket_key(char *out, size_t size, const char *model,
                              enum mw_schema_join_side side, int64_t bucket_ms, uint32_t shard)
{
    return format(out, size, "mw:{%s}:%s:%" PRId64 ":%" PRIu32, model, join_kind(side), bucket_ms,
                  shard);
}

int mw_schema_join_index_key(char *out, size_t size, const char *model,
                             enum mw_schema_join_side side)
{
    return format(out, size, "mw:{%s}:%si", model, join_kind(side));
}

int mw_schema_join_index_member(char *out, size_t size, int64_t bucket_ms, uint32_t shards)
{
    return format(out, size, "%" PRId64 ":%" PRIu32, bucket_ms, shards);
}

int mw_schema_profile_key(char *out, size_t size, const char *model, const char *version)
{
    return format(out, size, "mw:{%s}:profile:%s", model, version);
}

int mw_schema_profiles_key(char *out, size_t size, const char *model)
{
    return format(out, size, "mw:{%s}:profiles", model);
}

int mw_schema_model_prefix(char *out, size_t size, const char *model)
{
    return format(out, size, "mw:{%s}:", model);
}

/* A decimal integer at *p up to `stop`; advances *p past it. */
static bool parse_decimal(const char **p, char stop, int64_t *out)
{
    const char *s = *p;
    char *end = NULL;
    if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != stop)
        return false;
    *out = v;
    *p = end;
    return true;
}

int mw_schema_window_key_parse(const char *key, struct mw_schema_window_id *out)
{
    if (strncmp(key, "mw:{", 4) != 0)
        return MW_EPARSE;
    const char *model = key + 4, *close = strstr(model, "}:w:");
    if (!close || (size_t)(close - model) >= sizeof out->model)
        return MW_EPARSE;
    const char *p = close + 4;
    int64_t res_s, start_ms;
    if (!parse_decimal(&p, ':', &res_s) || res_s <= 0 || res_s > INT64_MAX / 1000)
        return MW_EPARSE;
    p++;
    if (!parse_decimal(&p, ':', &start_ms) || strlen(p + 1) >= sizeof out->version)
        return MW_EPARSE;
    memcpy(out->model, model, (size_t)(close - model));
    out->model[close - model] = '\0';
    snprintf(out->version, sizeof out->version, "%s", p + 1);
    out->width_ms = res_s * 1000;
    out->start_ms = start_ms;
    return 0;
}

/* ---- index members -------------------------------------------------------------------------- */

int mw_schema_index_member(char *out, size_t size, int64_t start_ms, const char *version)
{
    return format(out, size, "%" PRId64 ":%s", start_ms, version);
}

int mw_schema_index_member_parse(const char *member, int64_t *start_ms, const char **version)
{
    const char *p = member;
    int64_t start;
    if (!member || !parse_decimal(&p, ':', &start))
        return MW_EPARSE;
    *start_ms = start;
    *version = p + 1;
    return 0;
}

/* ---- window fields -------------------------------------------------------------------------- */

int mw_schema_error_field(char *out, size_t size, const char *code)
{
    return format(out, size, MW_FIELD_ERROR_PREFIX "%s", code);
}

int mw_schema_latency_field(char *out, size_t size, uint32_t bucket)
{
    return format(out, size, MW_FIELD_LATENCY_PREFIX "%" PRIu32, bucket);
}

int mw_schema_pipeline_dlq_key(char *out, size_t size, int64_t minute_start_ms)
{
    return format(out, size, "mw:{pipeline}:dlq:%" PRId64, minute_start_ms);
}

int mw_schema_profile_tag_field(char *out, size_t size, uint64_t tag)
{
    /* "%016" PRIx64 without printf: the apply path names this field once per record. */
    static const char prefix[] = MW_FIELD_PROFILE_TAG_PREFIX, hex[] = "0123456789abcdef";
    size_t n = sizeof prefix - 1;
    if (size < n + 16 + 1)
        return MW_ETOOBIG;
    memcpy(out, prefix, n);
    for (size_t i = 0; i < 16; i++)
        out[n + i] = hex[(tag >> (60 - 4 * i)) & 0xf];
    out[n + 16] = '\0';
    return 0;
}

/* Without printf: the apply path names a drift field per feature value. */
int mw_schema_drift_field(char *out, size_t size, const char *feature, const char *suffix)
{
    const char *parts[] = {MW_FIELD_DRIFT_PREFIX, feature, "|", suffix};
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i < 4; i++) {
        size_t n = strlen(parts[i]);
        if (at + n >= size) {
            n = size > at + 1 ? size - at - 1 : 0;
            rc = MW_ETOOBIG;
        }
        memcpy(out + at, parts[i], n);
        at += n;
    }
    if (size)
        out[at < size ? at : size - 1] = '\0';
    return rc;
}

int mw_schema_drift_field_suffix(char *out, size_t size, size_t prefix_len, const char *suffix)
{
    /* Byte by byte: suffixes are a few bytes ("n", "obs", "g12"), shorter than a call. */
    for (size_t at = prefix_len;; at++, suffix++) {
        if (at >= size)
            return MW_ETOOBIG;
        out[at] = *suffix;
        if (!*suffix)
            return 0;
    }
}

static const char *after_prefix(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(name, prefix, n) == 0 ? name + n : NULL;
}

const char *mw_schema_error_code(const char *name)
{
    return after_prefix(name, MW_FIELD_ERROR_PREFIX);
}

bool mw_schema_latency_bucket(const char *name, uint32_t *bucket)
{
    const char *p = after_prefix(name, MW_FIELD_LATENCY_PREFIX);
    int64_t v;
    if (!p || !parse_decimal(&p, '\0', &v) || v < 0 || v >= MW_LATENCY_BUCKETS)
        return false;
    *bucket = (uint32_t)v;
    return true;
}

bool mw_schema_profile_tag(const char *name, uint64_t *tag)
{
    const char *p = after_prefix(name, MW_FIELD_PROFILE_TAG_PREFIX);
    char *end = NULL;
    if (!p || !*p)
        return false;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 16);
    if (errno || *end)
        return false;
    *tag = v;
    return true;
}

bool mw_schema_drift_field_parse(const char *name, size_t *feature_at, size_t *feature_len,
                                 const char **suffix)
{
    const char *feature = after_prefix(name, MW_FIELD_DRIFT_PREFIX);
    const char *bar = feature ? strchr(feature, '|') : NULL;
    if (!bar)
        return false;
    *feature_at = (size_t)(feature - name);
    *feature_len = (size_t)(bar - feature);
    *suffix = bar + 1;
    return true;
}

double mw_window_field(const struct mw_window_fields *w, const char *name)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->names[i], name) == 0)
            return strtod(w->values[i], NULL);
    return 0;
}

static int64_t int_value(const char *text)
{
    return strtoll(text, NULL, 10);
}

/* The field's destination among w's counters, or NULL. */
static int64_t *int_counter(struct mw_window *w, const char *name)
{
    const struct {
        const char *name;
        int64_t *to;
    } ints[] = {
        {MW_FIELD_COUNT, &w->count},
        {MW_FIELD_ERRORS, &w->errors},
        {MW_FIELD_RECORDS, &w->records},
        {MW_FIELD_FEEDBACK, &w->feedback},
        {MW_FIELD_TOKENS_IN, &w->tokens_in},
        {MW_FIELD_TOKENS_OUT, &w->tokens_out},
        {MW_FIELD_LATE, &w->late},
        {MW_FIELD_LATE_RECORDS, &w->late_records},
        {MW_FIELD_LATENCY_SUM_US, &w->latency_sum_us},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (strcmp(name, ints[i].name) == 0)
            return ints[i].to;
    return NULL;
}

static double *float_counter(struct mw_window *w, const char *name)
{
    struct mw_window_resources *r = &w->resources;
    const struct {
        const char *name;
        double *to;
    } floats[] = {
        {MW_FIELD_WEIGHTED_RECORDS, &w->weighted_records},
        {MW_FIELD_CPU_S, &r->cpu_s},
        {MW_FIELD_CPU_REQUESTED_S, &r->cpu_requested_s},
        {MW_FIELD_CPU_BILLED_S, &r->cpu_billed_s},
        {MW_FIELD_MEMORY_GIB_S, &r->memory_gib_s},
        {MW_FIELD_MEMORY_BILLED_GIB_S, &r->memory_billed_gib_s},
        {MW_FIELD_GPU_S, &r->gpu_s},
        {MW_FIELD_POD_S, &r->pod_s},
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
        if (strcmp(name, floats[i].name) == 0)
            return floats[i].to;
    return NULL;
}

static void clear_parsed(struct mw_window *w)
{
    w->count = w->errors = w->records = w->feedback = 0;
    w->tokens_in = w->tokens_out = w->late = w->late_records = w->latency_sum_us = 0;
    w->weighted_records = 0;
    memset(&w->resources, 0, sizeof w->resources);
    w->n_latency = w->n_error_codes = 0;
    w->latency = NULL;
    w->error_codes = NULL;
}

/* A feature's drift field (d|F|suffix): most of a profiled window's fields, none of them a
 * counter, so the counter lookups below skip them first. */
static bool is_feature_drift_field(const char *name)
{
    size_t at, len;
    const char *suffix;
    return mw_schema_drift_field_parse(name, &at, &len, &suffix);
}

int mw_window_parse(struct mw_window *w)
{
    const struct mw_window_fields *f = &w->fields;
    clear_parsed(w);
    size_t n_latency = 0, n_errors = 0;
    for (size_t i = 0; i < f->n; i++) {
        uint32_t bucket;
        if (is_feature_drift_field(f->names[i]))
            continue;
        n_latency += mw_schema_latency_bucket(f->names[i], &bucket);
        n_errors += mw_schema_error_code(f->names[i]) != NULL;
    }
    /* One block for both arrays. */
    size_t latency_bytes = n_latency * sizeof *w->latency;
    size_t align = _Alignof(struct mw_window_error_code);
    latency_bytes = (latency_bytes + align - 1) / align * align;
    char *block = mw_malloc(latency_bytes + n_errors * sizeof *w->error_codes + 1);
    if (!block)
        return MW_ENOMEM;
    w->latency = (struct mw_window_latency_bucket *)block;
    w->error_codes = (struct mw_window_error_code *)(block + latency_bytes);
    for (size_t i = 0; i < f->n; i++) {
        const char *name = f->names[i], *value = f->values[i];
        int64_t *to_int;
        double *to_float;
        uint32_t bucket;
        const char *code;
        if (is_feature_drift_field(name))
            continue;
        if ((to_int = int_counter(w, name)) != NULL) {
            *to_int = int_value(value);
        } else if ((to_float = float_counter(w, name)) != NULL) {
            *to_float = mw_decimal_parse(value);
        } else if (mw_schema_latency_bucket(name, &bucket)) {
            int64_t count = int_value(value);
            if (count > 0)
                w->latency[w->n_latency++] =
                    (struct mw_window_latency_bucket){bucket, (uint64_t)count};
        } else if ((code = mw_schema_error_code(name)) != NULL) {
            w->error_codes[w->n_error_codes++] =
                (struct mw_window_error_code){code, int_value(value)};
        }
    }
    return 0;
}

void mw_window_clear(struct mw_window *w)
{
    if (!w)
        return;
    mw_free(w->latency); /* the block holds the error codes too */
    clear_parsed(w);
}

/* ---- state ---------------------------------------------------------------------------------- */

bool mw_schema_window_final(int64_t start_ms, int64_t width_ms, int64_t watermark_ms,
                            int64_t allowed_lateness_ms)
{
    return start_ms + width_ms + allowed_lateness_ms <= watermark_ms;
}

int64_t mw_schema_final_start_max(int64_t width_ms, int64_t watermark_ms,
                                  int64_t allowed_lateness_ms)
{
    int64_t t = watermark_ms - allowed_lateness_ms - width_ms;
    int64_t r = t % width_ms;
    return t - (r < 0 ? r + width_ms : r);
}

/* ---- alerting ------------------------------------------------------------------------------- */

static int fits(int n, size_t size)
{
    return n < 0 || (size_t)n >= size ? MW_ETOOBIG : 0;
}

int mw_schema_alert_instance_field(char *out, size_t size, const char *rule_id, const char *model,
                                   const char *version, const char *feature)
{
    return fits(snprintf(out, size, "%s\x1f%s\x1f%s\x1f%s%s", rule_id, model, version,
                         feature ? "f:" : "-", feature ? feature : ""),
                size);
}

int mw_schema_alert_cursor_field(char *out, size_t size, const char *model, int64_t width_ms,
                                 int64_t delay_ms)
{
    if (delay_ms > 0)
        return fits(snprintf(out, size, "c|%lld+%lld|%s", (long long)width_ms,
                             (long long)delay_ms, model),
                    size);
    return fits(snprintf(out, size, "c|%lld|%s", (long long)width_ms, model), size);
}

int mw_schema_alert_seen_field(char *out, size_t size, const char *model)
{
    return fits(snprintf(out, size, "s|%s", model), size);
}

int mw_schema_alert_cursors_field_parse(const char *field, char *kind, int64_t *width_ms,
                                        int64_t *delay_ms, char *model, size_t size)
{
    const char *rest;
    *delay_ms = 0;
    if (field[0] == 's' && field[1] == '|') {
        *kind = 's';
        rest = field + 2;
    } else if (field[0] == 'c' && field[1] == '|') {
        char *end;
        errno = 0;
        long long w = strtoll(field + 2, &end, 10), d = 0;
        if (errno || end == field + 2 || w <= 0)
            return MW_EPARSE;
        if (*end == '+') {
            const char *at = end + 1;
            d = strtoll(at, &end, 10);
            if (errno || end == at || d <= 0)
                return MW_EPARSE;
        }
        if (*end != '|')
            return MW_EPARSE;
        *kind = 'c';
        *width_ms = w;
        *delay_ms = d;
        rest = end + 1;
    } else {
        return MW_EPARSE;
    }
    if (!*rest || strlen(rest) >= size)
        return MW_EPARSE;
    snprintf(model, size, "%s", rest);
    return 0;
}

int64_t mw_schema_closed_start_max(int64_t width_ms, int64_t watermark_ms,
                                   int64_t allowed_lateness_ms, int64_t now_ms, int64_t delay_ms)
{
    int64_t by_watermark = watermark_ms - allowed_lateness_ms - width_ms;
    int64_t by_clock = now_ms - delay_ms - width_ms;
    return by_watermark > by_clock ? by_watermark : by_clock;
}

bool mw_schema_window_closed(int64_t start_ms, int64_t width_ms, int64_t watermark_ms,
                             int64_t allowed_lateness_ms, int64_t now_ms, int64_t delay_ms)
{
    return start_ms <= mw_schema_closed_start_max(width_ms, watermark_ms, allowed_lateness_ms,
                                                  now_ms, delay_ms);
}
