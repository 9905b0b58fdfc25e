/*
 * client_sampling.h — the agent's sampling rules as a client sees them: read from the file the
 * agent publishes beside its socket (common/sampling_rules.h), followed as it changes, and
 * applied to an event before it is encoded.
 *
 * The sender thread re-reads the file when its identity, size or time changes, at most once per
 * CHECK interval (a stat in the sender's thread, never in a caller's); callers read the current
 * rules with one acquire load. Rules older than the socket file are stale (left by an agent
 * killed before it removed them) and count as none. A replaced set of rules stays allocated until the client closes,
 * since a caller may still be reading it: one set per agent start or reload.
 */
#ifndef MW_CLIENT_SAMPLING_H
#define MW_CLIENT_SAMPLING_H

#include "modelwatch.h"
#include "sampling_rules.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct retired_rules;

struct mw_client_sampling {
    _Atomic(struct mw_sampling_rules *) current; /* NULL: send every event whole */
    char *path;                                   /* NULL: no file to follow (not ipc://) */
    char *socket_path;                            /* the agent's socket file beside it */
    struct retired_rules *retired;
    /* What the file was when last read (sender thread only). */
    bool seen;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    uint64_t checked_ns;
};

/* Follow the rules published beside the ipc:// socket file `ipc_path` (NULL: none to follow),
 * reading them now. Returns 0 or MW_ENOMEM. */
int mw_client_sampling_init(struct mw_client_sampling *s, const char *ipc_path);

/* The sender's periodic look at the file (rate-limited internally): picks up a new file,
 * changed rules, or their removal. */
void mw_client_sampling_refresh(struct mw_client_sampling *s, uint64_t now_ns);

/* Whether the current rules leave the payload of `ev` out: the agent will not ship it. */
bool mw_client_sampling_omits(const struct mw_client_sampling *s, const struct mw_event *ev);

/* mw_client_sampling_omits, and when it does, *count_bucket_ms tells whether the same rules
 * let the client count the event instead of sending its head: their count line's width, or 0
 * (one load of the rules for both answers). */
bool mw_client_sampling_decide(const struct mw_client_sampling *s, const struct mw_event *ev,
                               int64_t *count_bucket_ms);

/* Free the current and every replaced set of rules. */
void mw_client_sampling_free(struct mw_client_sampling *s);

#endif
