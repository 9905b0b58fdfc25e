/*
 * spool.h — the agent's on-disk spool of sealed batches.
 *
 * When Kafka is unreachable or slow, sealed batches (opaque, already compressed byte strings,
 * each with its sequence number and an identity "key" such as "agent_id/boot_id") are appended
 * here instead, and replayed in order once Kafka is back or after a restart, kill -9 included.
 * Loss and reordering are not allowed; duplicates after a crash are (the aggregator
 * deduplicates by (agent, boot, sequence)).
 *
 * On disk the spool is a directory of segment files named by a zero-padded, increasing number
 * ("000000000042.seg"), oldest first. A segment is a sequence of entries:
 *
 *     offset size  field (integers little-endian)
 *     0      4     magic "MWSP"
 *     4      1     version (1)
 *     5      1     flags (0, reserved)
 *     6      2     key length      (<= MW_SPOOL_MAX_KEY_BYTES)
 *     8      4     payload length  (<= MW_SPOOL_MAX_PAYLOAD_BYTES)
 *     12     8     sequence
 *     20     4     CRC32C (Castagnoli) of bytes 0..19, then the key, then the payload
 *     24     ...   key, then payload
 *
 * An entry whose header or checksum does not verify is corrupt: the reader skips it and
 * resynchronises at the next magic whose entry verifies. A torn entry at the end of a segment
 * (crash mid-write) is truncated away when the spool is opened. Acknowledged progress is kept
 * per segment: a segment is deleted once all its entries are acknowledged; after a restart the
 * acknowledged entries of a partly acknowledged segment are handed out again (duplicates).
 *
 * Memory is bounded: one entry at a time is read into a reusable buffer, and the in-memory index
 * holds a few words per segment (at most MW_SPOOL_MAX_SEGMENTS). A spool is used by one thread;
 * the directory is locked (flock) against a second spool in another process or handle.
 */
#ifndef MW_AGENT_SPOOL_H
#define MW_AGENT_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MW_SPOOL_ENTRY_HEADER_BYTES 24u
#define MW_SPOOL_MAX_KEY_BYTES 1024u
#define MW_SPOOL_MAX_PAYLOAD_BYTES (64u << 20)
/* Largest accepted segment_bytes, so that every entry offset fits in an entry id. */
#define MW_SPOOL_MAX_SEGMENT_BYTES (1u << 30)
/* Most segment files kept; past it the oldest is dropped as if the byte bound were reached. */
#define MW_SPOOL_MAX_SEGMENTS 65536u

struct mw_spool; /* opaque */
struct mw_spool_entry;

/* Called for each unacknowledged entry of a segment the spool drops to respect its bounds, just
 * before the segment is deleted: `handed_out` says whether mw_spool_next had handed it out (it
 * may still be delivered; acking it later is a no-op). The entry's pointers are valid during
 * the call only. */
typedef void (*mw_spool_drop_fn)(const struct mw_spool_entry *e, bool handed_out, void *arg);

struct mw_spool_options {
    const char *dir;          /* created (with parents) if missing, mode 0750; copied */
    uint64_t max_bytes;       /* bound on all segment files together */
    uint64_t segment_bytes;   /* a new segment starts when an entry would take one past this */
    bool fsync;               /* fdatasync after each append (durability against power loss;
                                 a killed process loses nothing without it) */
    mw_spool_drop_fn on_drop; /* optional: told of every entry dropped for space */
    void *drop_arg;
};

/* Counters since open; `bytes`, `entries` and `segments` are current levels. */
struct mw_spool_stats {
    uint64_t bytes;                /* size of all segment files */
    uint64_t entries;              /* entries not yet acknowledged */
    uint64_t appended;             /* entries appended */
    uint64_t replayed;             /* entries handed out by mw_spool_next (again after rewind) */
    uint64_t dropped_full_entries; /* unacknowledged entries deleted to respect the bounds */
    uint64_t dropped_full_bytes;   /* their on-disk bytes (header + key + payload) */
    uint64_t corrupt_entries;      /* corrupt regions skipped or torn tails truncated at open */
    uint64_t corrupt_segments;     /* segments in which corruption was found, or unreadable */
    uint64_t segments;             /* segment files */
};

/* One entry handed out by mw_spool_next. key and payload point into memory owned by the spool,
 * valid until the next call to mw_spool_next, mw_spool_ack or mw_spool_close. */
struct mw_spool_entry {
    uint64_t id; /* pass to mw_spool_ack */
    uint64_t sequence;
    const void *key;
    size_t key_len;
    const void *payload;
    size_t payload_len;
};

/* Open (creating if needed) the spool in o->dir and validate every segment in it: corrupt
 * entries are skipped and torn tails truncated, counted in the stats and logged, never fatal.
 * Empty segments are removed; files that are not segments are ignored with a warning. When the
 * directory holds more than the bounds allow, the oldest segments are dropped (counted). On
 * success *out owns the spool; free it with mw_spool_close. Returns 0; MW_EINVAL for bad options
 * (no dir, max_bytes below one header, segment_bytes 0 or above MW_SPOOL_MAX_SEGMENT_BYTES);
 * MW_EAGAIN when another spool holds the directory; MW_EIO when the directory cannot be created,
 * opened or listed; MW_ENOMEM. */
int mw_spool_open(const struct mw_spool_options *o, struct mw_spool **out);

/* Close the files and free the spool. Unacknowledged entries stay on disk. Accepts NULL. */
void mw_spool_close(struct mw_spool *s);

/* Append one entry at the tail. key[0..key_len) and payload[0..len) are copied; the caller keeps
 * ownership. When the spool would exceed max_bytes, the oldest segments are deleted first (their
 * unacknowledged entries counted as dropped_full_* and logged). Returns 0; MW_EINVAL for bad
 * arguments or key_len > MW_SPOOL_MAX_KEY_BYTES; MW_ETOOBIG when the entry exceeds
 * MW_SPOOL_MAX_PAYLOAD_BYTES or could never fit in max_bytes; MW_EIO when a file cannot be
 * created or written (the partial entry is removed; nothing was spooled); MW_ENOMEM. */
int mw_spool_append(struct mw_spool *s, const void *key, size_t key_len, uint64_t sequence,
                    const void *payload, size_t len);

/* Hand out the oldest entry not yet handed out and move the read cursor past it. Returns 0 and
 * fills *e (see struct mw_spool_entry for the lifetime of its pointers); MW_ENOTFOUND when every
 * entry has been handed out; MW_EIO on a read error (the cursor stays, so a retry re-reads);
 * MW_ENOMEM; MW_EINVAL for NULL arguments. */
int mw_spool_next(struct mw_spool *s, struct mw_spool_entry *e);

/* Record that entry `id` was delivered. Acks must arrive in hand-out order, each for the oldest
 * handed-out, unacknowledged entry. A segment whose entries are all acknowledged is deleted (the
 * tail one too: the next append starts a new segment). Acking an entry that was already dropped
 * for space is a no-op returning 0. Returns 0; MW_EINVAL for an id that was not handed out or is
 * out of order; MW_ECORRUPT when the entry changed on disk; MW_EIO. */
int mw_spool_ack(struct mw_spool *s, uint64_t id);

/* Delivery failed: un-hand-out every handed-out, unacknowledged entry, so the next mw_spool_next
 * starts again from the oldest unacknowledged one. Call it once nothing is in flight: an entry
 * handed out before the rewind cannot be acknowledged until it is handed out again. */
void mw_spool_rewind(struct mw_spool *s);

/* True when no unacknowledged entry remains (handed out or not). */
bool mw_spool_empty(const struct mw_spool *s);

/* When the oldest unacknowledged entry was written, at the latest (wall-clock ms; 0 when
 * there is none): the time of the first entry of the oldest segment that holds unacknowledged
 * ones. Exact while that segment has no acknowledged entry; once some are, the oldest left is
 * younger, by at most the time the segment took to fill. */
int64_t mw_spool_oldest_ms(const struct mw_spool *s);

/* The spool's counters (s must not be NULL); the pointer stays valid until mw_spool_close. */
const struct mw_spool_stats *mw_spool_stats(const struct mw_spool *s);

/* CRC32C (Castagnoli, reflected, init and final xor 0xffffffff) continued from `crc` (0 to
 * start). Internal; exposed for tests. */
uint32_t mw__spool_crc32c(uint32_t crc, const void *data, size_t n);
/* The same, always by the byte table (what the CPU's instruction is checked against). */
uint32_t mw__spool_crc32c_by_table(uint32_t crc, const void *data, size_t n);

#endif
