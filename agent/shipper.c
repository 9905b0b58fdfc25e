/* shipper.c — spool-first delivery of sealed batches to Kafka, with in-order acknowledgement. */
#include "shipper.h"

#include "alloc.h"
#include "batch_builder.h"
#include "clock.h"
#include "error.h"
#include "log.h"
#include "producer.h"
#include "spool.h"
#include "zframe.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define BACKOFF_MIN_MS 200

enum flight_state { FLIGHT_PENDING = 0, FLIGHT_OK = 1, FLIGHT_FAILED = 2 };

/* A spooled batch handed to the producer. The window keeps them in hand-out order, which is
 * spool order: ids only grow between two rewinds, and a rewind happens with nothing in flight. */
struct flight {
    uint64_t id;
    enum flight_state state;
    bool orphan;     /* its segment was dropped for space: lost unless this delivery succeeds */
    uint64_t events; /* when orphan: the events it holds */
};
/* Ids of batches produced without passing through the spool (spool failure): this bit, which
 * no spool id has (segment numbers fit 32 bits), and the batch's slot in `unspooled`. */
#define UNSPOOLED_BIT (UINT64_C(1) << 63)

/* A sealed batch the spool could not take, held only by librdkafka until delivered. */
struct unspooled {
    bool used;
    uint64_t sequence;
    uint64_t messages; /* accepted client messages in it (state file accounting) */
    uint64_t events;   /* prediction events in it (loss accounting) */
};

struct mw_shipper {
    const struct mw_agent_config *cfg;
    struct mw_spool *spool;
    struct mw_producer *producer;
    uv_timer_t retry_timer;
    char key[512];         /* agent id, stored with each spooled batch */
    uint64_t in_flight;    /* spooled batches handed to the producer, outcome pending */
    struct flight *window; /* ring of producer.max_in_flight, oldest at window_head */
    size_t window_cap, window_head, window_len;
    uint64_t unspooled_in_flight;
    struct unspooled *unspooled; /* producer.max_in_flight slots */
    uint64_t unspooled_messages; /* messages in unspooled batches not yet settled */
    bool spool_failing;          /* the last append failed */
    bool healthy;                /* the last delivery succeeded */
    bool failure_pending;        /* a delivery failed; rewind once in_flight drains */
    bool probe_allowed;          /* unhealthy, but the backoff has passed: send one batch */
    uint64_t backoff_ms;
    bool closing;
    struct mw_zframe_ctx *zctx; /* to count the events of a lost batch */
    struct mw_shipper_stats stats;
};

static void pump(struct mw_shipper *s);

static void on_retry_timer(uv_timer_t *t)
{
    struct mw_shipper *s = t->data;
    s->probe_allowed = true;
    pump(s);
}

static void schedule_probe(struct mw_shipper *s)
{
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (s->backoff_ms > (uint64_t)s->cfg->producer.retry_backoff_max_ms)
        s->backoff_ms = (uint64_t)s->cfg->producer.retry_backoff_max_ms;
    s->probe_allowed = false;
    uv_timer_start(&s->retry_timer, on_retry_timer, s->backoff_ms, 0);
}

/* A failure is settled once nothing is in flight: go back to the oldest unacknowledged batch. */
static void settle_failure(struct mw_shipper *s)
{
    if (!s->failure_pending || s->in_flight)
        return;
    s->failure_pending = false;
    s->window_len = 0; /* what is left (failed, and delivered after it) goes again */
    mw_spool_rewind(s->spool);
    schedule_probe(s);
}

static struct flight *window_at(struct mw_shipper *s, size_t i)
{
    return &s->window[(s->window_head + i) % s->window_cap];
}

/* The in-flight entry of `id` (binary search: ids grow along the window), or NULL. */
static struct flight *window_find(struct mw_shipper *s, uint64_t id)
{
    size_t lo = 0, hi = s->window_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct flight *f = window_at(s, mid);
        if (f->id == id)
            return f;
        if (f->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Acknowledge, in spool order, every delivered batch whose older batches are all delivered. A
 * failed batch stops it: it and everything after it go again after the rewind (a duplicate of a
 * delivered one is ignored by the aggregator). */
static void ack_in_order(struct mw_shipper *s)
{
    bool acked = false;
    while (s->window_len > 0 && window_at(s, 0)->state == FLIGHT_OK) {
        uint64_t id = window_at(s, 0)->id;
        s->window_head = (s->window_head + 1) % s->window_cap;
        s->window_len--;
        int rc = mw_spool_ack(s->spool, id);
        if (rc)
            MW_LOG_ERROR("shipper", "cannot acknowledge a spooled batch", "id=%" PRIu64 " error=%s",
                         id, mw_err_name(rc));
        acked = true;
    }
    /* A spool that failed (a full disk) and has now delivered everything has freed its space.
     * Only an append can tell whether it takes batches again, and without traffic none comes:
     * an agent left unready would keep its pod's traffic away for good. The next append
     * decides. */
    if (acked && s->spool_failing && mw_spool_stats(s->spool)->entries == 0) {
        s->spool_failing = false;
        MW_LOG_INFO("shipper",
                    "the spool is empty again: the next batch will show whether it can be written",
                    "spool_write_errors=%" PRIu64, s->stats.spool_write_errors);
    }
}

/* The events of a batch that is lost, for the loss counters (0 when it cannot be read), and its
 * sequence number in *sequence. */
static uint64_t events_in(struct mw_shipper *s, const void *payload, size_t len, uint64_t *sequence)
{
    uint64_t events = 0;
    int rc = mw_batch_count_events(s->zctx, payload, len, &events, sequence);
    if (rc)
        MW_LOG_ERROR("shipper", "cannot count the events of a lost batch", "bytes=%zu error=%s",
                     len, mw_err_name(rc));
    return events;
}

/* Kafka will never take this batch: drop it, counted in batches and events. */
static void note_rejected(struct mw_shipper *s, const void *payload, size_t len, const char *reason)
{
    uint64_t sequence;
    uint64_t events = events_in(s, payload, len, &sequence);
    char quoted[300];
    s->stats.rejected_batches++;
    s->stats.rejected_events += events;
    MW_LOG_ERROR("shipper", "batch refused by Kafka as too large or invalid; dropped",
                 "sequence=%" PRIu64 " bytes=%zu events_lost=%" PRIu64 " reason=%s", sequence, len,
                 events, mw_log_quote(reason, quoted, sizeof quoted));
}

/* A batch the full spool dropped before Kafka had it. */
static void note_spool_loss(struct mw_shipper *s, uint64_t sequence, uint64_t events)
{
    s->stats.spool_full_batches++;
    s->stats.spool_full_events += events;
    MW_LOG_WARN("shipper", "spool full: batch dropped before delivery",
                "sequence=%" PRIu64 " events_lost=%" PRIu64 " events_lost_total=%" PRIu64, sequence,
                events, s->stats.spool_full_events);
}

/* The spool drops a segment for space. A batch of it that is in flight is lost only if that
 * delivery fails; one delivered already, or waiting for its ack, is not lost at all. */
static void on_spool_drop(const struct mw_spool_entry *e, bool handed_out, void *arg)
{
    struct mw_shipper *s = arg;
    uint64_t sequence;
    struct flight *f = handed_out ? window_find(s, e->id) : NULL;
    if (f && f->state == FLIGHT_OK)
        return;
    uint64_t events = events_in(s, e->payload, e->payload_len, &sequence);
    if (f && f->state == FLIGHT_PENDING) {
        f->orphan = true;
        f->events = events;
        return;
    }
    note_spool_loss(s, sequence, events);
}

static void on_delivered(uint64_t id, enum mw_delivery outcome, const char *reason,
                         const void *payload, size_t len, void *arg)
{
    struct mw_shipper *s = arg;
    bool ok = outcome == MW_DELIVERY_OK;
    if (id & UNSPOOLED_BIT) {
        struct unspooled *u = &s->unspooled[id & ~UNSPOOLED_BIT];
        s->unspooled_in_flight--;
        s->unspooled_messages -= u->messages;
        u->used = false;
        if (ok) {
            s->stats.delivered++;
            return;
        }
        s->stats.lost_unspooled++;
        s->stats.lost_unspooled_events += u->events;
        MW_LOG_ERROR("shipper", "batch the spool could not take failed delivery; lost",
                     "sequence=%" PRIu64 " events_lost=%" PRIu64 " reason=%s", u->sequence,
                     u->events, reason);
        return;
    }
    struct flight *f = window_find(s, id);
    if (!f || f->state != FLIGHT_PENDING) {
        MW_LOG_ERROR("shipper", "delivery report for a batch not in flight", "id=%" PRIu64, id);
        return;
    }
    s->in_flight--;
    if (outcome == MW_DELIVERY_REJECTED) {
        /* Settled for good: acknowledged in the spool in its turn, as a delivered one is. */
        note_rejected(s, payload, len, reason);
        f->state = FLIGHT_OK;
        ack_in_order(s);
        settle_failure(s);
        pump(s);
        return;
    }
    if (!ok && f->orphan) {
        /* Its segment is gone: it cannot go again. Lost, and settled. */
        uint64_t sequence;
        events_in(s, payload, len, &sequence);
        note_spool_loss(s, sequence, f->events);
        f->state = FLIGHT_OK;
        ack_in_order(s);
        settle_failure(s);
        pump(s);
        return;
    }
    if (!ok) {
        f->state = FLIGHT_FAILED;
        s->stats.delivery_errors++;
        s->healthy = false;
        s->failure_pending = true;
        ack_in_order(s);
        settle_failure(s);
        return;
    }
    f->state = FLIGHT_OK;
    s->stats.delivered++;
    if (!s->healthy)
        MW_LOG_INFO("shipper", "Kafka accepts batches again", "spooled_batches=%" PRIu64,
                    mw_spool_stats(s->spool)->entries);
    s->healthy = true;
    s->backoff_ms = 0;
    ack_in_order(s);
    settle_failure(s);
    pump(s);
}

/* Hand spooled batches to the producer while the in-flight bound allows. */
static void pump(struct mw_shipper *s)
{
    if (s->closing || s->failure_pending)
        return;
    uint64_t limit =
        s->healthy ? (uint64_t)s->cfg->producer.max_in_flight : (s->probe_allowed ? 1 : 0);
    while (s->in_flight < limit && s->window_len < s->window_cap) {
        struct mw_spool_entry e;
        int rc = mw_spool_next(s->spool, &e);
        if (rc == MW_ENOTFOUND)
            return;
        if (rc) {
            MW_LOG_ERROR("shipper", "cannot read the spool", "error=%s", mw_err_name(rc));
            s->failure_pending = s->in_flight > 0;
            if (!s->failure_pending)
                schedule_probe(s);
            return;
        }
        rc = mw_producer_send(s->producer, e.payload, e.payload_len, e.id);
        if (rc == MW_ETOOBIG) {
            /* Never deliverable: settled at once, acknowledged in its turn. */
            note_rejected(s, e.payload, e.payload_len, "larger than message.max.bytes");
            *window_at(s, s->window_len++) = (struct flight){.id = e.id, .state = FLIGHT_OK};
            ack_in_order(s);
            continue;
        }
        if (rc) {
            s->failure_pending = true;
            settle_failure(s);
            return;
        }
        *window_at(s, s->window_len++) = (struct flight){.id = e.id, .state = FLIGHT_PENDING};
        s->in_flight++;
        s->probe_allowed = false;
    }
}

static struct unspooled *free_unspooled_slot(struct mw_shipper *s)
{
    for (size_t i = 0; i < s->window_cap; i++)
        if (!s->unspooled[i].used)
            return &s->unspooled[i];
    return NULL;
}

int mw_shipper_submit(struct mw_shipper *s, uint64_t sequence, const void *payload, size_t len,
                      uint64_t messages, uint64_t events)
{
    s->stats.submitted++;
    int rc = mw_spool_append(s->spool, s->key, strlen(s->key), sequence, payload, len);
    if (rc == 0) {
        if (s->spool_failing)
            MW_LOG_INFO("shipper", "the spool takes batches again", "sequence=%" PRIu64, sequence);
        s->spool_failing = false;
        pump(s);
        return 0;
    }
    s->stats.spool_write_errors++;
    s->spool_failing = true;
    struct unspooled *u = free_unspooled_slot(s);
    if (!u) {
        s->stats.lost_unspooled++;
        s->stats.unspooled_full_events += events;
        MW_LOG_ERROR("shipper", "cannot spool a sealed batch and too many are held in memory; lost",
                     "sequence=%" PRIu64 " bytes=%zu events_lost=%" PRIu64 " error=%s", sequence,
                     len, events, mw_err_name(rc));
        return MW_EFULL;
    }
    MW_LOG_ERROR("shipper", "cannot spool a sealed batch; producing it directly from memory",
                 "sequence=%" PRIu64 " bytes=%zu events=%" PRIu64 " error=%s", sequence, len,
                 events, mw_err_name(rc));
    uint64_t slot = (uint64_t)(u - s->unspooled);
    rc = mw_producer_send(s->producer, payload, len, UNSPOOLED_BIT | slot);
    if (rc) {
        s->stats.lost_unspooled++;
        s->stats.lost_unspooled_events += events;
        MW_LOG_ERROR("shipper", "batch the spool could not take refused by the producer; lost",
                     "sequence=%" PRIu64 " events_lost=%" PRIu64 " error=%s", sequence, events,
                     mw_err_name(rc));
        return rc;
    }
    *u = (struct unspooled){
        .used = true, .sequence = sequence, .messages = messages, .events = events};
    s->stats.sent_unspooled++;
    s->unspooled_in_flight++;
    s->unspooled_messages += messages;
    return 0;
}

uint64_t mw_shipper_unspooled_messages(const struct mw_shipper *s)
{
    return s->unspooled_messages;
}

bool mw_shipper_idle(const struct mw_shipper *s)
{
    return mw_spool_empty(s->spool) && s->in_flight == 0 && s->unspooled_in_flight == 0;
}

/* Kafka as the agent sees it: brokers reachable, no fatal error, the last delivery succeeded. */
static bool kafka_up(const struct mw_shipper *s, const struct mw_producer_health *h)
{
    return s->healthy && h->brokers_up && !h->fatal;
}

bool mw_shipper_ready(const struct mw_shipper *s)
{
    struct mw_producer_health h;
    mw_producer_health(s->producer, &h);
    if (h.fatal || s->spool_failing || s->unspooled_in_flight)
        return false;
    if (h.down_since_ms &&
        mw_clock_mono_ms() - h.down_since_ms >= (uint64_t)s->cfg->producer.unready_after_ms)
        return false;
    return (double)mw_spool_stats(s->spool)->bytes <
           s->cfg->spool.ready_below * (double)s->cfg->spool.max_bytes;
}

void mw_shipper_stats(const struct mw_shipper *s, struct mw_shipper_stats *out)
{
    const struct mw_spool_stats *sp = mw_spool_stats(s->spool);
    *out = s->stats;
    out->in_flight = s->in_flight + s->unspooled_in_flight;
    out->unspooled_in_flight = s->unspooled_in_flight;
    out->spool_bytes = sp->bytes;
    out->spool_batches = sp->entries;
    out->spool_appended = sp->appended;
    out->spool_replayed = sp->replayed;
    out->spool_dropped_full = sp->dropped_full_entries;
    out->spool_corrupt = sp->corrupt_entries;
    out->spool_max_bytes = s->cfg->spool.max_bytes;
    out->spool_oldest_ms = mw_spool_oldest_ms(s->spool);
    struct mw_producer_health h;
    mw_producer_health(s->producer, &h);
    out->kafka_healthy = kafka_up(s, &h);
    out->kafka_errors = h.errors;
}

int mw_shipper_create(uv_loop_t *loop, const struct mw_agent_config *cfg, const char *agent_id,
                      struct mw_shipper **out)
{
    char errbuf[512];
    struct mw_shipper *s = mw_calloc(1, sizeof *s);
    if (!s)
        return MW_ENOMEM;
    s->cfg = cfg;
    s->healthy = true;
    s->window_cap = (size_t)cfg->producer.max_in_flight;
    s->window = mw_calloc(s->window_cap, sizeof *s->window);
    s->unspooled = mw_calloc(s->window_cap, sizeof *s->unspooled);
    s->zctx = mw_zframe_ctx_create(1);
    if (!s->window || !s->unspooled || !s->zctx) {
        mw_zframe_ctx_destroy(s->zctx);
        mw_free(s->unspooled);
        mw_free(s->window);
        mw_free(s);
        return MW_ENOMEM;
    }
    snprintf(s->key, sizeof s->key, "%s", agent_id);
    struct mw_spool_options so = {.dir = cfg->spool.dir,
                                  .max_bytes = cfg->spool.max_bytes,
                                  .segment_bytes = cfg->spool.segment_bytes,
                                  .fsync = cfg->spool.fsync,
                                  .on_drop = on_spool_drop,
                                  .drop_arg = s};
    int rc = mw_spool_open(&so, &s->spool);
    if (rc) {
        MW_LOG_ERROR("shipper", "cannot open the spool", "dir=%s error=%s", cfg->spool.dir,
                     mw_err_name(rc));
        mw_zframe_ctx_destroy(s->zctx);
        mw_free(s->unspooled);
        mw_free(s->window);
        mw_free(s);
        return rc;
    }
    rc = mw_producer_create(loop, &cfg->kafka, agent_id, on_delivered, s, &s->producer, errbuf,
                            sizeof errbuf);
    if (rc) {
        char quoted[600];
        MW_LOG_ERROR("shipper", "cannot create the Kafka producer", "error=%s",
                     mw_log_quote(errbuf, quoted, sizeof quoted));
        mw_spool_close(s->spool);
        mw_zframe_ctx_destroy(s->zctx);
        mw_free(s->unspooled);
        mw_free(s->window);
        mw_free(s);
        return rc;
    }
    uv_timer_init(loop, &s->retry_timer);
    s->retry_timer.data = s;
    const struct mw_spool_stats *sp = mw_spool_stats(s->spool);
    if (sp->entries)
        MW_LOG_INFO("shipper", "replaying batches left in the spool",
                    "batches=%" PRIu64 " bytes=%" PRIu64, sp->entries, sp->bytes);
    *out = s;
    pump(s);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mw_shipper *s = h->data;
    mw_spool_close(s->spool);
    mw_zframe_ctx_destroy(s->zctx);
    mw_free(s->unspooled);
    mw_free(s->window);
    mw_free(s);
}

void mw_shipper_destroy(struct mw_shipper *s)
{
    if (!s)
        return;
    s->closing = true;
    mw_producer_destroy(s->producer);
    uv_timer_stop(&s->retry_timer);
    uv_close((uv_handle_t *)&s->retry_timer, on_timer_closed);
}
