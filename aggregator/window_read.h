/*
 * window_read.h — typed, asynchronous reads of windows from Redis, for the API, /metrics and
 * the alert evaluator alike.
 *
 * Two questions, each answered once with a set of struct mw_window (schema.h: the window's
 * hash parsed, its start, width, version and whether it is final under the model's watermark):
 *
 *   mw_window_read_range          the windows of a model at one width whose start lies in
 *                                 [from, to], of one version or of all, oldest or newest first
 *   mw_window_read_latest_closed  per version, the newest closed window of a model at one width
 *                                 (schema.h: final, or ended http.signals_delay ago)
 *
 * With MW_WINDOW_READ_PROFILE each version's reference profile is read and parsed as well.
 * Keys, index members, fields and the final rule all come from schema.h; the reads are
 * pipelined on the store's one connection (the watermark, the index, then every window and
 * profile at once).
 */
#ifndef MW_AGGREGATOR_WINDOW_READ_H
#define MW_AGGREGATOR_WINDOW_READ_H

#include "aggregator_config.h"
#include "profile.h"
#include "schema.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    /* Also read and parse the reference profile of every version read (and of the range's
     * version when it names one, found windows or not). */
    MW_WINDOW_READ_PROFILE = 1 << 0,
    /* Only count and errors: each window's fields are empty and its other counters 0. For
     * sums over many windows (SLO burn rates), where whole hashes would cost too much. */
    MW_WINDOW_READ_COUNTS = 1 << 1,
};

struct mw_window_range {
    const char *model;   /* borrowed for the call */
    const char *version; /* NULL: every version; borrowed for the call */
    int64_t width_ms;    /* a configured window width */
    int64_t from_ms;     /* bounds on the windows' start, inclusive; INT64_MIN and INT64_MAX */
    int64_t to_ms;       /* leave that side open */
    bool newest_first;   /* order of the windows, and the end `limit` counts from */
    size_t scan_max;     /* index members looked at, at most, from that end (0: all) */
    size_t limit;        /* windows selected, at most (0: no limit) */
    unsigned flags;      /* MW_WINDOW_READ_* */
};

/* A version's reference profile as read: `profile` NULL when the version has none, or when
 * the stored document is invalid (then `error` says what is wrong with it). */
struct mw_window_profile {
    const char *version;
    const struct mw_profile *profile;
    const char *error;
};

struct mw_window_set {
    const char *model;
    int64_t width_ms;
    int64_t watermark_ms; /* the model's when read; 0 when it has none */
    size_t n;
    const struct mw_window *windows; /* in the query's order */
    /* Selected from the index, but the hash had expired (an index entry outlives its window
     * by up to one width): counted here, not in `windows`. */
    size_t n_missing;
    size_t n_profiles; /* with MW_WINDOW_READ_PROFILE: every version looked up */
    const struct mw_window_profile *profiles;
};

/*
 * The answer to one read. Called exactly once for every read that returned 0, always from the
 * loop (a reply callback), never from inside the mw_window_read_* call. `rc` is 0, MW_EREDIS
 * (a command failed or the connection dropped) or MW_ENOMEM; `set` is NULL unless rc is 0.
 *
 * Everything `set` points to — the set, its windows and their parsed arrays, every string
 * (model, versions, field names and values, error codes, profile errors) and every profile —
 * belongs to the reader and is freed as soon as the callback returns: copy what must outlive
 * it. The callback may start new reads.
 */
typedef void (*mw_window_read_fn)(int rc, const struct mw_window_set *set, void *arg);

/* Read the windows `q` describes (`cfg` gives the allowed lateness, and must outlive the read;
 * `store` too). Returns 0 (cb will be called), or MW_EREDIS (not connected), MW_ENOMEM or
 * MW_ETOOBIG (a model or version too long for a key), and then cb is never called. */
int mw_window_read_range(struct mw_store *store, const struct mw_aggregator_config *cfg,
                         const struct mw_window_range *q, mw_window_read_fn cb, void *arg);

/* Per version, the newest closed window of `model` at `width_ms`, among the newest
 * MW_WINDOW_READ_SCAN_CLOSED windows up to the latest closed start (schema.h, by the wall clock
 * now and cfg's allowed lateness and http.signals_delay), newest first. As
 * mw_window_read_range otherwise. */
#define MW_WINDOW_READ_SCAN_CLOSED 64
int mw_window_read_latest_closed(struct mw_store *store, const struct mw_aggregator_config *cfg,
                                 const char *model, int64_t width_ms, unsigned flags,
                                 mw_window_read_fn cb, void *arg);

#endif
