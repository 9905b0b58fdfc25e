/*
 * state_file.h — what the agent must know after kill -9: how many events it had accepted that
 * were never sealed into a batch, and how far it had received each client's stream.
 *
 * A small file in the spool directory is mapped shared into memory; the agent bumps
 * `accepted` for every event it takes and sets `sealed` at every seal, leaving out the batches
 * held in memory only because the spool could not take them (plain stores, no system call). The
 * kernel keeps the page when the process dies, so the next start reads accepted - sealed: exactly
 * the events lost with the unsealed interval, which it logs and exports as a metric. (A crash of
 * the whole machine may lose the last page writes; that case is out of scope.)
 *
 * The same file keeps, per client (ClientStream in telemetry.proto), how many messages and
 * events the agent has received from it, whatever became of them. A message counts as received
 * in the same step that counts it as accepted, through a one-entry redo journal, so a kill at
 * any instruction leaves each message counted in exactly one place: received and accepted
 * (then, unless sealed, lost before the next start), or not received (then, once the client's
 * next ClientStream shows it, lost in transit). The table survives restarts and clean stops
 * alike; the least recently seen client gives up its slot when the table is full.
 */
#ifndef MW_AGENT_STATE_FILE_H
#define MW_AGENT_STATE_FILE_H

#include <stdbool.h>
#include <stdint.h>

#define MW_STATE_MAX_CLIENTS 256

/* How far one client's stream has been received. */
struct mw_state_client {
    uint64_t client_id; /* 0: a free slot */
    uint64_t messages;  /* messages received: the next one expected has this many before it */
    uint64_t events;    /* of which prediction events */
    uint64_t last_seen_ms;
};

/* A slot update in progress, redone at the next open when `armed`. */
struct mw_state_journal {
    uint64_t armed;
    uint64_t slot;
    uint64_t client_id;
    uint64_t messages;
    uint64_t events;
    uint64_t accepted; /* the value `accepted` takes */
};

struct mw_state_counts {
    uint64_t magic;
    uint64_t accepted; /* events taken since the file was created */
    uint64_t sealed;   /* of those, events in sealed batches */
    struct mw_state_journal journal;
    struct mw_state_client clients[MW_STATE_MAX_CLIENTS];
};

struct mw_state_file {
    /* Mapped: the file, or memory of this process only when the file could not be used (the
     * accounting then holds within this process's life). */
    struct mw_state_counts *counts;
    int fd; /* -1 without a file */
    /* The client table comes from an earlier process: a client missing from it has sent
     * nothing this agent's predecessors received (so what it sent before is lost), rather than
     * nothing this agent knows of (a new file, or one from before the table). */
    bool has_history;
};

/*
 * Map `path` (created when missing; a file from an agent before the client table grows and gets
 * an empty one). *lost_before receives the events a previous process accepted but never sealed
 * (0 for a new file); those counters then start over, the client table stays. Returns 0, or
 * MW_EIO (logged with the path) when the file cannot be used, in which case the accounting works
 * in memory; MW_ENOMEM when not even that can be had (no accounting).
 */
int mw_state_file_open(struct mw_state_file *sf, const char *path, uint64_t *lost_before);
void mw_state_file_close(struct mw_state_file *sf); /* accepts NULL */

static inline void mw_state_file_accepted(struct mw_state_file *sf, uint64_t n)
{
    if (sf->counts)
        sf->counts->accepted += n;
}

/* `sealed` accepted messages are now in sealed batches that a kill -9 does not lose (spooled,
 * delivered, or counted lost already). */
static inline void mw_state_file_sealed(struct mw_state_file *sf, uint64_t sealed)
{
    if (sf->counts)
        sf->counts->sealed = sealed;
}

/* The slot that holds `client_id`'s progress, or -1 without a table. When the client is not in
 * the table *known is false and the slot is a free one, or the least recently seen client's
 * (*evicted_id names it, else 0); nothing is written until mw_state_file_progress. */
int mw_state_file_find_client(const struct mw_state_file *sf, uint64_t client_id, bool *known,
                              uint64_t *evicted_id);

/* Progress of the client in `slot` (zero for a client not in it). */
struct mw_state_client mw_state_file_client(const struct mw_state_file *sf, int slot,
                                            uint64_t client_id);

/* Set the progress of `client_id` in `slot` and add `accepted` to the accepted count, all or
 * nothing across a kill at any point. */
void mw_state_file_progress(struct mw_state_file *sf, int slot, uint64_t client_id,
                            uint64_t messages, uint64_t events, uint64_t accepted);

/* The client in `slot` was seen at `now_ms` (the least recently seen is evicted first). */
void mw_state_file_seen(struct mw_state_file *sf, int slot, uint64_t now_ms);

#endif
