/*
 * sampler.h — which event payloads the agent ships (DESIGN.md step 4).
 *
 * Exact counters cover 100% of the traffic elsewhere (counters.h); the sampler only decides
 * which PredictionEvent and Feedback payloads go into batches, and with what weight, from the
 * per-model rules of model_rules.h (a model's own rule, else the "*" rule, else keep all).
 *
 * Decision for an event, in this order:
 *   1. error and the rule keeps errors           -> kept_error, weight 1
 *   2. latency above the rule's keep_slower_than -> kept_slow,  weight 1
 *   3. mw_sampler_unit(prediction_id) < rate     -> kept_rate,  weight 1/rate
 *      otherwise                                 -> dropped_rate
 *   4. the model's events/s cap (token bucket, capacity one second of tokens, at least one)
 *      drops what steps 1-3 kept beyond the cap  -> dropped_cap
 *      Each model has its own bucket, also under the "*" rule's cap (for the first 256 models
 *      that fall back to "*"; any beyond those, or with invalid names, share one more bucket).
 * Forced keeps (1, 2) have inclusion probability 1, hence weight 1; they are not rate-sampled
 * but the cap still bounds them, so an error storm cannot flood Kafka.
 *
 * Cap weighting. Records that pass the cap stand for those it dropped: per model and per
 * one-second period (now_ms / 1000), the sampler counts events that reached the cap
 * (`eligible`) and those it admitted; records admitted in period p+1 carry weight
 * base_weight * eligible(p) / admitted(p). A period that admitted nothing carries its eligible
 * count into the next one. Bias: this is exact in expectation only while the overload is steady
 * from one second to the next. At the onset of an overload the first second is weighted with
 * the previous (usually 1:1) ratio, so estimates count low by that second's excess; the second
 * after an overload is weighted with the overload's ratio, so estimates count high; an excess
 * followed by a second without events is never repaid. Counts and error rates come from the
 * exact counters anyway; the weights matter for payload statistics (drift, performance).
 *
 * Determinism. mw_sampler_unit() is part of the wire contract: the same id gives the same u
 * in every process, restart and agent version (a prediction and its feedback may pass through
 * different agents), so it has no seed and must never change.
 *
 * Threads: a sampler is used by one thread at a time (the agent's loop): the cap state and the
 * counters change on every call. On SIGHUP the agent creates a new sampler (passing the old one
 * as `prev`) and swaps it in.
 */
#ifndef MW_AGENT_SAMPLER_H
#define MW_AGENT_SAMPLER_H

#include "model_rules.h"
#include "sampling_rules.h" /* mw_sampler_unit: the id's position in [0, 1) */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mw_sample_reason {
    MW_SAMPLE_KEPT_RATE = 0, /* kept by the rate (or no rule applies: kept with weight 1) */
    MW_SAMPLE_KEPT_ERROR,    /* kept because it is an error and the rule keeps errors */
    MW_SAMPLE_KEPT_SLOW,     /* kept because latency_us > keep_slower_than */
    MW_SAMPLE_DROPPED_RATE,  /* not selected by the rate */
    MW_SAMPLE_DROPPED_CAP,   /* selected, but over the model's events/s cap */
    MW_SAMPLE_REASON_COUNT,
};

/* "kept_rate", "kept_error", "kept_slow", "dropped_rate", "dropped_cap" (metric labels);
 * "unknown" for anything else. Static storage. */
const char *mw_sample_reason_name(enum mw_sample_reason why);

/* Counters since the first sampler of the chain (a sampler created with `prev` continues
 * prev's counters, so they stay monotonic across reloads). */
struct mw_sampler_stats {
    uint64_t events[MW_SAMPLE_REASON_COUNT]; /* events decided, by reason */
    uint64_t feedback_kept;
    uint64_t feedback_dropped;
};

struct mw_sampler;

/*
 * Build a sampler from rules[0..n) (n == 0: keep everything). The rules are copied; the caller
 * keeps ownership of `rules`. `prev` (may be NULL) is the sampler being replaced: its counters
 * and the cap state of models whose new rule still has a cap carry over. It is only read.
 * Returns 0 with *out set (free it with mw_sampler_destroy), MW_ECONFIG when the rules fail
 * mw_model_rules_check (message in err, may be NULL), or MW_ENOMEM.
 */
int mw_sampler_create(const struct mw_model_rule *rules, size_t n, const struct mw_sampler *prev,
                      struct mw_sampler **out, char *err, size_t errsize);

/* Free the sampler. Accepts NULL. */
void mw_sampler_destroy(struct mw_sampler *s);

/*
 * Decide whether to ship one event of `model` (NULL or unknown: the "*" rule).
 * `prediction_id` NULL counts as "". `now_ms` is a monotonic clock in milliseconds, used by the
 * cap only. On return *why (may be NULL) says why, and *weight (may be NULL) is the number of
 * events the shipped record stands for (see above), 0 when dropped. Allocates nothing.
 */
bool mw_sampler_keep_event(struct mw_sampler *s, const char *model, const char *prediction_id,
                           bool is_error, uint64_t latency_us, uint64_t now_ms, double *weight,
                           enum mw_sample_reason *why);

/*
 * Whether to ship a feedback (label) for `prediction_id`: the rate decision of step 3 alone,
 * so a label is kept exactly when its prediction was rate-kept. Not subject to the cap (a
 * label whose prediction the cap dropped arrives alone), and a label of an error or slow
 * prediction kept by force is kept only if the rate also selects it. Its weight is
 * 1 / mw_sampler_rate(s, model).
 */
bool mw_sampler_keep_feedback(struct mw_sampler *s, const char *model, const char *prediction_id);

/* Count n events a client left unsent by the rate it read from the agent's rules (their
 * counts came as one message, sampling_rules.h) among the events dropped by the rate. */
void mw_sampler_count_dropped_by_client(struct mw_sampler *s, uint64_t n);

/* The sample rate that applies to `model` (1 when no rule applies). */
double mw_sampler_rate(const struct mw_sampler *s, const char *model);

/* Copy the counters into *out. */
void mw_sampler_stats(const struct mw_sampler *s, struct mw_sampler_stats *out);

#endif
