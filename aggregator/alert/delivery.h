/*
 * delivery.h — getting notifications to their receivers: a bounded queue per receiver, a limit
 * on concurrent requests, retries with exponential backoff and full jitter on the loop's timers,
 * and one result per notification for the notification log.
 *
 *   mw_delivery_create(loop, &receivers_cfg, &opts, &d, err, sizeof err);
 *   mw_delivery_submit(d, &notification, user, &id);     0: exactly one result callback follows
 *   ...
 *   mw_delivery_shutdown(d, 2000, on_closed, arg);
 *
 * The notification is encoded by its receiver at submit time (the bytes are then sent as often
 * as needed; nothing borrowed is kept). Per alert group, order holds: a group has at most one
 * notification being attempted (sent, or waiting to be retried), and a newer notification of the
 * group waits behind it, so a resolve never overtakes its trigger. Notifications carry the whole
 * state of their group, so a newer one replaces a waiting, never-attempted one of the same group
 * (reported as superseded); a flapping group holds at most two entries.
 *
 * A retry waits a random time in [0, min(retry.max, retry.initial * 2^(attempt-1))] (full
 * jitter), or what the receiver's Retry-After says (up to retry.retry_after_max) when it says
 * so. A notification fails after retry.max_attempts attempts, or when the next attempt would come
 * later than retry.max_age after submit. A hanging receiver costs one slot of max_in_flight until
 * its timeout; other groups and other receivers go on.
 */
#ifndef MW_ALERT_DELIVERY_H
#define MW_ALERT_DELIVERY_H

#include "alert/receiver.h"
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct mw_delivery;

enum mw_delivery_outcome {
    MW_DELIVERY_DELIVERED,  /* the receiver accepted it */
    MW_DELIVERY_FAILED,     /* rejected, or out of attempts or time */
    MW_DELIVERY_DROPPED,    /* never completed: shut down while waiting */
    MW_DELIVERY_SUPERSEDED, /* replaced by a newer notification of its group before any attempt */
};

const char *mw_delivery_outcome_name(enum mw_delivery_outcome outcome);

/* Borrowed for the callback only. */
struct mw_delivery_result {
    uint64_t id; /* as returned by mw_delivery_submit */
    void *user;  /* as given to mw_delivery_submit */
    const char *receiver;
    const char *group_key;
    enum mw_notify_status status;
    enum mw_delivery_outcome outcome;
    int attempts;
    long last_http_status; /* 0 when none */
    int last_err;          /* MW_E* of the last attempt's transport, 0 when none */
    const char *reason;    /* why, for FAILED / DROPPED / SUPERSEDED; "" when delivered */
    int64_t submitted_wall_ms;
    int64_t finished_wall_ms;
};

typedef void (*mw_delivery_result_fn)(const struct mw_delivery_result *result, void *arg);
typedef void (*mw_delivery_closed_fn)(void *arg);

struct mw_delivery_options {
    mw_delivery_result_fn on_result; /* may be NULL */
    void *arg;
    uint64_t seed;       /* jitter; 0 = from the clock and pid */
    const char *ca_file; /* CA bundle for https receivers; NULL = the system's */
};

/* Plain numbers per receiver for /metrics. Counters only grow; queued and in_flight are now. */
struct mw_delivery_counters {
    uint64_t submitted;
    uint64_t delivered;
    uint64_t failed;
    uint64_t retried; /* attempts after the first */
    uint64_t dropped; /* queue full at submit, or shut down before completion */
    uint64_t superseded;
    uint64_t queued;    /* waiting, retrying or in flight */
    uint64_t in_flight; /* requests on the wire */
    uint64_t queued_bytes;
};

/*
 * One queue per element of `receivers` (struct mw_receiver_config; borrowed, copied). Key files
 * are read here. Returns 0, MW_ECONFIG / MW_EIO (err names the receiver and the file, never a
 * secret), or MW_ENOMEM.
 */
int mw_delivery_create(uv_loop_t *loop, const struct mw_cfg_list *receivers,
                       const struct mw_delivery_options *opts, struct mw_delivery **out, char *err,
                       size_t errsize);

/*
 * Queue `n` (borrowed; encoded before this returns) for the receiver it names. On 0, *id (may be
 * NULL) identifies it and exactly one result callback follows, never from inside this call.
 * Otherwise no callback: MW_ENOTFOUND (no receiver of that name), MW_EFULL (queue_max or
 * queue_max_bytes reached: counted as dropped and logged), MW_ETOOBIG / MW_EINVAL (the receiver
 * cannot encode it), MW_ECLOSED (shutting down) or MW_ENOMEM.
 */
int mw_delivery_submit(struct mw_delivery *d, const struct mw_notify_group *n, void *user,
                       uint64_t *id);

size_t mw_delivery_n_receivers(const struct mw_delivery *d);
/* Name of receiver i (borrowed; lives as long as d), or NULL past the end. */
const char *mw_delivery_receiver_name(const struct mw_delivery *d, size_t i);
/* Counters of receiver i. Returns 0 or MW_ENOTFOUND. */
int mw_delivery_counters(const struct mw_delivery *d, size_t i, struct mw_delivery_counters *out);

/*
 * Stop taking notifications. Those waiting (queued or between retries) end DROPPED now; requests
 * in flight get up to `grace_ms` to be answered (then DELIVERED or DROPPED; no more retries).
 * When the last one has ended and every handle has closed, `closed` (may be NULL) is called and
 * the delivery is freed. A second call is a no-op. Accepts NULL.
 */
void mw_delivery_shutdown(struct mw_delivery *d, uint64_t grace_ms, mw_delivery_closed_fn closed,
                          void *arg);

/* ---- exposed for tests ---------------------------------------------------------------------- */

/* The wait before attempt `attempt` + 1, after `attempt` (>= 1) attempts failed: a uniform draw
 * from [0, min(max_ms, initial_ms * 2^(attempt-1))] using *rng (xorshift state, not 0); or, when
 * retry_after_ms >= 0, max(that draw, min(retry_after_ms, retry_after_max_ms)). */
uint64_t mw_delivery_backoff_ms(uint64_t initial_ms, uint64_t max_ms, int attempt,
                                int64_t retry_after_ms, uint64_t retry_after_max_ms, uint64_t *rng);

#endif
