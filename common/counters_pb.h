/*
 * counters_pb.h — one set of exact counters as the protobuf ModelCounters that carries it.
 *
 * The agent's batch snapshot (agent/counters.c) and a client's counts (agent/client/
 * client_tally.c) hold a set the same way (counts, error codes in slots, a latency histogram of
 * latency_hist.h) and build the message alike, here. Header-only: the core library
 * libmodelwatch links does not link the generated protobuf code; each user does.
 */
#ifndef MW_COMMON_COUNTERS_PB_H
#define MW_COMMON_COUNTERS_PB_H

#include "latency_hist.h"
#include "sampling_rules.h" /* MW_SAMPLING_COUNT_MAX_ERROR_CODES */
#include "telemetry.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* The longest error code a set keeps (longer ones count as "other"), with its NUL. */
#define MW_ERROR_CODE_BYTES 64
/* The most error codes any set holds: the agent's cap is lower, a client's counts' is this. */
#define MW_COUNTERS_PB_MAX_ERROR_CODES MW_SAMPLING_COUNT_MAX_ERROR_CODES

struct mw_error_slot {
    char code[MW_ERROR_CODE_BYTES];
    uint64_t count;
};

/* A counter set as its holder keeps it; the pointers are borrowed until the message is packed. */
struct mw_counter_set {
    const char *model;
    const char *version;
    int64_t bucket_start_ms;
    int64_t bucket_width_ms;
    uint64_t count;
    uint64_t error_count;
    uint64_t input_tokens;
    uint64_t output_tokens;
    uint64_t feedback_count;
    const struct mw_error_slot *errors;
    size_t n_errors;                /* at most MW_COUNTERS_PB_MAX_ERROR_CODES */
    const uint64_t *latency;        /* MW_LATENCY_BUCKETS counts */
    uint32_t latency_lo, latency_hi; /* only buckets in [lo, hi] can be non-zero */
    uint64_t latency_sum_us;
};

/* The message and the arrays it points into. */
struct mw_counters_pb {
    Modelwatch__V1__ModelCounters mc;
    Modelwatch__V1__LatencyHistogram hist;
    Modelwatch__V1__ErrorCount errors[MW_COUNTERS_PB_MAX_ERROR_CODES];
    Modelwatch__V1__ErrorCount *error_ptrs[MW_COUNTERS_PB_MAX_ERROR_CODES];
    uint32_t bucket_index[MW_LATENCY_BUCKETS];
    uint64_t bucket_count[MW_LATENCY_BUCKETS];
};

/* Fill p->mc with `set`: every scalar present, the non-zero latency buckets in order. */
static inline void mw_counters_pb_fill(struct mw_counters_pb *p, const struct mw_counter_set *set)
{
    modelwatch__v1__model_counters__init(&p->mc);
    modelwatch__v1__latency_histogram__init(&p->hist);
    p->mc.model = (char *)set->model;
    p->mc.version = (char *)set->version;
    p->mc.has_bucket_start_ms = p->mc.has_bucket_width_ms = 1;
    p->mc.bucket_start_ms = set->bucket_start_ms;
    p->mc.bucket_width_ms = set->bucket_width_ms;
    p->mc.has_count = p->mc.has_error_count = 1;
    p->mc.count = set->count;
    p->mc.error_count = set->error_count;
    p->mc.has_input_tokens = p->mc.has_output_tokens = p->mc.has_feedback_count = 1;
    p->mc.input_tokens = set->input_tokens;
    p->mc.output_tokens = set->output_tokens;
    p->mc.feedback_count = set->feedback_count;
    for (size_t i = 0; i < set->n_errors; i++) {
        modelwatch__v1__error_count__init(&p->errors[i]);
        p->errors[i].code = (char *)set->errors[i].code;
        p->errors[i].has_count = 1;
        p->errors[i].count = set->errors[i].count;
        p->error_ptrs[i] = &p->errors[i];
    }
    p->mc.n_errors = set->n_errors;
    p->mc.errors = p->error_ptrs;
    size_t n = 0;
    for (uint32_t i = set->latency_lo; i <= set->latency_hi && i < MW_LATENCY_BUCKETS; i++) {
        if (set->latency[i]) {
            p->bucket_index[n] = i;
            p->bucket_count[n++] = set->latency[i];
        }
    }
    p->hist.has_alpha = p->hist.has_sum_us = 1;
    p->hist.alpha = MW_LATENCY_ALPHA;
    p->hist.sum_us = set->latency_sum_us;
    p->hist.n_bucket_index = p->hist.n_bucket_count = n;
    p->hist.bucket_index = p->bucket_index;
    p->hist.bucket_count = p->bucket_count;
    p->mc.latency = &p->hist;
}

#endif
