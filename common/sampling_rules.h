/*
 * sampling_rules.h — the part of the agent's sampling rules a client needs to know, before it
 * encodes an event, that the agent will not ship the event's payload; and the file through
 * which the agent publishes them.
 *
 * The agent counts every event exactly and ships the payload (features, output) of a sample
 * (sampler.h). An event the rate does not select needs only its head (names, id, times,
 * latency, status, error code, tokens) to be counted, so a client that knows the rules sends
 * such an event without its payload and marks it (PredictionEvent.payload_omitted): it writes
 * a third of the bytes, and the agent reads a third. Only the rate, the error keep and the slow
 * keep can be decided in the client: the agent's per-second cap depends on every client's
 * traffic, and the cap only ever drops what the rate kept, so a client never omits what the
 * agent's cap would admit.
 *
 * The file sits beside the agent's ipc:// socket, at "<socket path>.sampling"; the agent
 * writes it (write and rename) when it starts and on every reload, and removes it when it
 * stops. A client that finds no file sends every event whole, as clients did before the file
 * existed, so a new client works unchanged with an old agent. Text, so that an operator can
 * read it:
 *
 *   modelwatch-sampling 1
 *   count <bucket width, milliseconds>          (optional; only as the second line)
 *   <model or *> <rate> <keep errors: 0|1> <keep slower than, microseconds; 0 = off>
 *   ...
 *
 * The count line says the agent takes counts (ClientMessage.counts in telemetry.proto): a
 * client may then count such an event itself, in the agent's bucket width, and send the exact
 * counters of many events as one message instead of each event's head. Clients built before
 * the line existed refuse a file that has it and send every event whole, which the agent
 * takes as always.
 *
 * mw_sampler_unit() is part of the wire contract: the same prediction id gives the same u in
 * every process (client, agent of any version), so it has no seed and must never change.
 */
#ifndef MW_COMMON_SAMPLING_RULES_H
#define MW_COMMON_SAMPLING_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MW_SAMPLING_RULES_SUFFIX ".sampling"
#define MW_SAMPLING_RULES_MAGIC "modelwatch-sampling 1"
/* A file with more rules than this is refused (a client then sends every event whole). */
#define MW_SAMPLING_RULES_MAX 4096
#define MW_SAMPLING_RULES_MAX_BYTES (1u << 20)
/* The widest counter bucket a count line may name (the agent's counters.bucket_width bound). */
#define MW_SAMPLING_COUNT_BUCKET_MAX_MS 3600000
/* The most error codes one counts message may carry (ClientMessage.counts). */
#define MW_SAMPLING_COUNT_MAX_ERROR_CODES 64

struct mw_sampling_rule {
    const char *name; /* a model name, or "*" */
    double rate;      /* 0..1 */
    bool keep_errors;
    uint64_t slower_than_us; /* 0 = off */
};

/* A parsed file: rules sorted by name, names stored after them. Immutable once read. */
struct mw_sampling_rules {
    int64_t count_bucket_ms; /* > 0: the agent takes counts in buckets this wide; 0: it does not */
    size_t n;
    struct mw_sampling_rule rule[];
};

/* u in [0, 1) of a prediction id: FNV-1a 64 of its bytes, the splitmix64 finalizer, the top
 * 53 bits. NULL reads as "". */
double mw_sampler_unit(const char *prediction_id);

/* Write rules[0..n), and the count line when count_bucket_ms > 0, to `path` through a
 * temporary file renamed over it, so that a reader sees the old file or the new one, never a
 * part. Returns 0, or -1 with errno set. */
int mw_sampling_rules_write(const char *path, const struct mw_sampling_rule *rules, size_t n,
                            int64_t count_bucket_ms);

/* Parse the text of a rules file. Returns the rules (mw_free them), or NULL with `err` saying
 * what is wrong and on which line. */
struct mw_sampling_rules *mw_sampling_rules_parse(const char *text, size_t len, char *err,
                                                  size_t errsize);

/* Read and parse `path`. NULL with errno ENOENT when there is no file; NULL with `err` set
 * when it cannot be read or parsed. */
struct mw_sampling_rules *mw_sampling_rules_read(const char *path, char *err, size_t errsize);

/* The rule for `model`: its own, else "*", else NULL (the agent keeps every payload). */
const struct mw_sampling_rule *mw_sampling_rules_find(const struct mw_sampling_rules *rules,
                                                      const char *model);

/* Whether `rule` (may be NULL: keep all) leaves this event's payload unshipped for certain:
 * not an error it keeps, not slower than its threshold, and the rate does not select the id. */
bool mw_sampling_rule_omits(const struct mw_sampling_rule *rule, const char *prediction_id,
                            bool is_error, uint64_t latency_us);

#endif
