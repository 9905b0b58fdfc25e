/*
 * state_file.h — what the agent must know after kill -9: how many events it had accepted that
 * were never sealed into a batch.
 *
 * A small file in the spool directory is mapped shared into memory; the agent bumps
 * `accepted` for every event it takes and sets `sealed` at every seal, leaving out the batches
 * held in memory only because the spool could not take them (plain stores, no system call). The
 * kernel keeps the page when the process dies, so the next start reads accepted - sealed: exactly
 * the events lost with the unsealed interval, which it logs and exports as a metric. (A crash of
 * the whole machine may lose the last page writes; that case is out of scope.)
 */
#ifndef MW_AGENT_STATE_FILE_H
#define MW_AGENT_STATE_FILE_H

#include <stdint.h>

struct mw_state_counts {
    uint64_t magic;
    uint64_t accepted; /* events taken since the file was created */
    uint64_t sealed;   /* of those, events in sealed batches */
};

struct mw_state_file {
    struct mw_state_counts *counts; /* mapped; NULL when the file could not be used */
    int fd;
};

/*
 * Map `path` (created when missing). *lost_before receives the events a previous process
 * accepted but never sealed (0 for a new file); the counters then start over. Returns 0 or
 * MW_EIO (logged with the path); on error the agent runs without the accounting.
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

#endif
