/*
 * client.c — libmodelwatch: encode a prediction or a label as one protobuf ClientMessage and
 * hand it to the local agent over a nanomsg PUSH socket, never waiting.
 *
 * The request path of the model must not notice telemetry. A call validates its arguments and
 * encodes the message, in the calling thread, straight into the client's ring: a lock-free
 * multi-producer byte ring in which a caller reserves space with one compare-and-swap on `head`,
 * packs the message there and publishes it with a release store of the record's header. One
 * background thread per client, the sender, reads the ring in order and coalesces what it finds
 * into a ClientBatch of up to options.batch_bytes, which it sends with a blocking nn_send: the
 * agent's back-pressure stops the sender, never a caller, and the agent's per-message cost (a
 * nanomsg message, a few system calls) is paid once per batch instead of once per event. While
 * no agent is connected (the connection forms in the background after open, or an agent
 * restarts) the ring keeps what is captured for the next one; when the ring is full the call
 * drops the message and counts it.
 *
 * nanomsg acknowledges nothing, so what the sender handed to a connection that then died is
 * gone. Every ClientBatch opens with a ClientStream (telemetry.proto): the client's random id
 * and how many messages and events it sent before; the agent counts a jump as lost in transit.
 *
 * The sender waits on a futex. While traffic flows it wakes by itself every flush_interval
 * and sends what accumulated, so callers make no system call; once the ring has been empty for
 * IDLE_NAP_NS it sleeps until the first caller to find it asleep wakes it (one system call). It
 * then lingers up to flush_interval so that messages are rarely sent alone.
 *
 * A record in the ring is an 8-byte header (length, state) and the message, padded to 8 bytes;
 * a record that would straddle the end of the ring is preceded by a padding record that fills
 * the rest. The sender zeroes what it consumed before it moves `tail`, so a header not yet
 * written reads as REC_EMPTY and the sender waits for it.
 *
 * An agent that stops (SIGTERM) removes its ipc:// socket file first and reads until its
 * clients are quiet. The sender looks for the file before each send (a stat in the sender's
 * thread, never in a caller's) and, while it is gone, holds what it has for the next agent
 * instead of handing it to one that is about to close its socket with it unread.
 *
 * A child of fork() inherits the client's memory and nanomsg socket but neither the sender
 * thread nor nanomsg's worker threads. A pthread_atfork handler bumps a process-wide fork
 * generation in the child; a client opened in an older generation refuses every call with
 * MW_EFORKED (a relaxed load on the request path, no system call), and its close only frees
 * memory: joining the absent sender or closing the socket would hang.
 *
 * When the agent's rules let clients count (common/sampling_rules.h), an event whose payload
 * the rate leaves out is not written into the ring at all: the call adds it to the client's
 * counters (client_tally.h) and the sender puts their ClientMessage.counts entries first in
 * its next batch. In the stream's numbering such an entry stands for the events it counts.
 *
 * With options.unbuffered there is no ring and no thread: each call sends its own nanomsg
 * message with NN_DONTWAIT from a per-thread buffer, as libmodelwatch first did.
 */
#include "modelwatch.h"

#include "alloc.h"
#include "buf.h"
#include "client_tally.h"
#include "client_sampling.h"
#include "clock.h"
#include "event_wire.h"
#include "telemetry.pb-c.h"

#include <errno.h>
#include <linux/futex.h>
#include <math.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RING_DEFAULT_BYTES (4u << 20)
#define RING_MIN_BYTES (256u << 10)
#define RING_MAX_BYTES (1u << 30)
/* At about 50 events a message the agent's per-message cost no longer shows: 16 and 64 KiB cost
 * it the same CPU, and 64 KiB messages hold about 0.6 MiB more of its memory (bench/README.md). */
#define BATCH_DEFAULT_BYTES 16384u
#define FLUSH_INTERVAL_DEFAULT_US 1000u
#define CLOSE_TIMEOUT_DEFAULT_MS 1000u
/* A blocked nn_send in the sender returns this often to look at the clock and the connection. */
#define SEND_TIMEOUT_MS 10
/* nanomsg acknowledges nothing, and a receiver drops what it has not yet taken from a
 * connection that closes: mw_client_close keeps the connection this long after its last send,
 * so that an agent that is reading takes everything. */
#define CLOSE_GRACE_NS (100u * 1000 * 1000)
/* After data stops, the sender naps flush_interval at a time this long before it sleeps until a
 * caller wakes it (see sender_main). */
#define IDLE_NAP_NS (100u * 1000 * 1000)
/* How often an idle sender asks nanomsg whether the agent is (still) connected. */
#define IDLE_POLL_CONNECTED_NS (100u * 1000 * 1000)
#define IDLE_POLL_DISCONNECTED_NS (2u * 1000 * 1000)
/* ClientBatch.messages (telemetry.proto): field 15, wire type 2 (length-delimited). */
#define CLIENT_BATCH_TAG 0x7a
/* The first byte of an encoded ClientMessage whose body is an event (field 1, wire type 2) and
 * of one whose body is a ClientStream (field 3). */
#define CLIENT_MESSAGE_EVENT_KEY 0x0a
#define CLIENT_MESSAGE_STREAM_KEY 0x1a
/* A ClientStream (at most 9 + 11 + 11 bytes) in a ClientMessage, framed as a ClientBatch entry:
 * 1 + 1 + 1 + 1 + 31 bytes. */
#define STREAM_MAX_BYTES 35u
/* Counts entries the sender holds between taking them and sending them: a table's worth. */
#define COUNTS_OUT_MAX_BYTES (4u << 20)

enum rec_state { REC_EMPTY = 0, REC_MESSAGE = 1, REC_PADDING = 2 };
enum sender_state { SENDER_RUNNING = 0, SENDER_IDLE = 1, SENDER_LINGER = 2 };

struct ring_hdr {
    uint32_t len;   /* message bytes after the header (padding: bytes to the ring's end) */
    uint32_t state; /* enum rec_state, written last with release semantics */
};
#define HDR_BYTES ((uint64_t)sizeof(struct ring_hdr))

struct mw_client {
    int sock;
    bool buffered;
    unsigned fork_generation; /* fork_generation when opened */
    atomic_uint_fast64_t n_sent;
    atomic_uint_fast64_t n_dropped;
    /* Producers' side: bytes of the ring reserved so far (a position that only grows). */
    char pad0[64];
    atomic_uint_fast64_t head;
    /* Sender's side. */
    char pad1[64];
    atomic_uint_fast64_t tail;   /* bytes released so far */
    atomic_uint_fast64_t handed; /* position up to which everything went to nn_send */
    atomic_bool connected;       /* nanomsg has a pipe to an agent */
    char pad2[64];
    atomic_uint wake_seq; /* futex word the sender sleeps on */
    atomic_int sender_state;
    atomic_bool flush_now; /* skip the linger (mw_client_flush) */
    atomic_bool closing;
    uint8_t *ring;
    uint64_t ring_mask;   /* ring bytes - 1; the size is a power of two */
    uint64_t batch_bytes; /* send once this much is waiting; at most MW_MAX_COALESCED_BYTES */
    uint64_t flush_interval_ns;
    uint64_t close_timeout_ns;
    char *ipc_path; /* the agent's socket file for an ipc:// endpoint, else NULL */
    /* The agent's sampling rules, followed by the sender: an event whose payload they leave out
     * goes as its head (client_sampling.h). Unbuffered clients have no sender: whole events. */
    struct mw_client_sampling sampling;
    /* Events counted instead of sent (buffered clients only), how many of those went out or
     * were given up, and the sender's entries taken from the table and not yet sent: each an
     * event count and a framed length (two uint64_t), then the framed entry. */
    struct mw_client_tally *tally;
    atomic_uint_fast64_t counted;
    atomic_uint_fast64_t counted_handed;
    struct mw_buf counts_out;
    pthread_t sender;
    /* The sender's numbering of what it sent (ClientStream in telemetry.proto). */
    uint64_t client_id;
    uint64_t stream_messages; /* messages handed to nn_send so far */
    uint64_t stream_events;   /* of which prediction events */
};

/* Per-thread scratch: an encoded message of an unbuffered client, sized for the maximum in
 * modelwatch.h, so a capture never allocates. */
struct encode_scratch {
    uint8_t wire[MW_MAX_MESSAGE_BYTES];
};
static _Thread_local struct encode_scratch scratch;

/* Bumped in every child of fork(); see the file comment. */
static atomic_uint fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_relaxed);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

/* True in a child of fork() that inherited the client from its parent. */
static bool inherited(const mw_client *c)
{
    return atomic_load_explicit(&fork_generation, memory_order_relaxed) != c->fork_generation;
}

static bool nonempty(const char *s)
{
    return s && *s;
}

static uint64_t align8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

static void futex_wait(atomic_uint *word, unsigned expected, uint64_t timeout_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000u),
                          .tv_nsec = (long)(timeout_ns % 1000000000u)};
    syscall(SYS_futex, (void *)word, FUTEX_WAIT_PRIVATE, expected, &ts, NULL, 0);
}

static void futex_wake(atomic_uint *word)
{
    syscall(SYS_futex, (void *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Wake the sender whatever it is doing (close, flush). */
static void kick_sender(mw_client *c)
{
    atomic_fetch_add(&c->wake_seq, 1);
    futex_wake(&c->wake_seq);
}

/* After a caller published a record: wake the sender if it is asleep for want of data, or if
 * it lingers while the ring is half full (a small ring at a high rate). `used` is the ring's
 * fill after the reservation. While traffic flows the sender is never asleep in IDLE, so calls
 * make no system call. */
static void wake_sender(mw_client *c, uint64_t used)
{
    int state = atomic_load(&c->sender_state);
    if (state == SENDER_RUNNING || (state == SENDER_LINGER && used < (c->ring_mask + 1) / 2))
        return;
    if (atomic_compare_exchange_strong(&c->sender_state, &state, SENDER_RUNNING))
        kick_sender(c);
}

/* Ask nanomsg whether a pipe to an agent exists, and publish the answer to callers. */
static bool update_connected(mw_client *c)
{
    uint64_t n = nn_get_statistic(c->sock, NN_STAT_CURRENT_CONNECTIONS);
    bool up = n != (uint64_t)-1 && n > 0;
    atomic_store_explicit(&c->connected, up, memory_order_relaxed);
    return up;
}

/*
 * Reserve room for a message of `len` bytes. On success *pos is the ring position of its
 * header and *used the ring's fill afterwards; returns 0, or MW_EFULL. A record that would
 * straddle the end of the ring is placed at its start, after a padding record.
 */
static int ring_reserve(mw_client *c, uint64_t len, uint64_t *pos, uint64_t *used)
{
    const uint64_t size = c->ring_mask + 1;
    const uint64_t need = HDR_BYTES + align8(len);
    uint64_t head = atomic_load_explicit(&c->head, memory_order_relaxed);
    for (;;) {
        uint64_t to_end = size - (head & c->ring_mask);
        uint64_t total = need <= to_end ? need : to_end + need;
        uint64_t tail = atomic_load_explicit(&c->tail, memory_order_acquire);
        if (head + total - tail > size)
            return MW_EFULL;
        /* seq_cst: pairs with the sender's store of its state before it reads `head`. */
        if (atomic_compare_exchange_weak(&c->head, &head, head + total)) {
            if (total != need) {
                struct ring_hdr *pad = (struct ring_hdr *)(c->ring + (head & c->ring_mask));
                pad->len = (uint32_t)(to_end - HDR_BYTES);
                __atomic_store_n(&pad->state, REC_PADDING, __ATOMIC_RELEASE);
            }
            *pos = head + total - need;
            *used = head + total - tail;
            return 0;
        }
    }
}

/* Zero the records in [from, to) and give their room back to callers. */
static void ring_release(mw_client *c, uint64_t from, uint64_t to)
{
    const uint64_t size = c->ring_mask + 1;
    uint64_t off = from & c->ring_mask, n = to - from;
    uint64_t first = n < size - off ? n : size - off;
    memset(c->ring + off, 0, first);
    memset(c->ring, 0, n - first);
    atomic_store_explicit(&c->tail, to, memory_order_release);
}

static const struct ring_hdr *ring_hdr_at(const mw_client *c, uint64_t pos)
{
    return (const struct ring_hdr *)(c->ring + (pos & c->ring_mask));
}

/* Encode the ClientMessage holding the ClientStream that opens a batch, framed as its first
 * ClientBatch entry, into out[0..STREAM_MAX_BYTES). Returns its length. */
static size_t put_stream(const mw_client *c, uint8_t *out)
{
    Modelwatch__V1__ClientStream stream = MODELWATCH__V1__CLIENT_STREAM__INIT;
    stream.has_client_id = 1;
    stream.client_id = c->client_id;
    stream.has_messages_before = 1;
    stream.messages_before = c->stream_messages;
    stream.has_events_before = 1;
    stream.events_before = c->stream_events;
    size_t body = modelwatch__v1__client_stream__get_packed_size(&stream);
    size_t n = 0;
    out[n++] = CLIENT_BATCH_TAG;
    n += mw_put_varint(out + n, 1 + mw_varint_size(body) + body);
    out[n++] = CLIENT_MESSAGE_STREAM_KEY;
    n += mw_put_varint(out + n, body);
    modelwatch__v1__client_stream__pack(&stream, out + n);
    return n + body;
}

/* What one take_batch put into a nanomsg message. */
struct batch_taken {
    void *msg; /* NULL: nothing in hand */
    uint64_t messages; /* as numbered in the stream: a counts entry as its events */
    uint64_t events;   /* of which prediction events, counted ones included */
    uint64_t counted;  /* of which counted ones */
    uint64_t end;      /* the ring position after the records taken */
};

/* The counts entry at `off` of the sender's held entries: its events, framed length, bytes. */
static const uint8_t *counts_entry(const mw_client *c, size_t off, uint64_t *events,
                                   uint64_t *framed)
{
    uint64_t head[2];
    memcpy(head, c->counts_out.data + off, sizeof head);
    *events = head[0];
    *framed = head[1];
    return (const uint8_t *)c->counts_out.data + off + sizeof head;
}

/* Forget the first `bytes` of the held counts entries (they went into a message). */
static void counts_consumed(mw_client *c, size_t bytes)
{
    struct mw_buf *b = &c->counts_out;
    if (bytes == 0)
        return;
    memmove(b->data, b->data + bytes, b->len - bytes);
    b->len -= bytes;
}

/*
 * Take what waits, in order, into one nanomsg message: a ClientBatch opened by the client's
 * ClientStream that holds the counts entries held (the counters are taken first when none
 * are), then the published messages at the ring's tail, as many as fit in batch_bytes (a
 * message larger than that goes alone). Their room in the ring is released. Returns false
 * when nothing was taken: the next record is still being written, or memory is short.
 */
static bool take_batch(mw_client *c, struct batch_taken *t)
{
    *t = (struct batch_taken){0};
    if (c->tally && c->counts_out.len == 0)
        mw_client_tally_take(c->tally, &c->counts_out);
    const uint64_t tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
    const uint64_t head = atomic_load_explicit(&c->head, memory_order_acquire);
    uint8_t stream[STREAM_MAX_BYTES];
    size_t stream_len = put_stream(c, stream);
    uint64_t n = 0, wire = stream_len;
    size_t counts_bytes = 0;
    while (counts_bytes < c->counts_out.len) {
        uint64_t events, framed;
        counts_entry(c, counts_bytes, &events, &framed);
        if (n > 0 && wire + framed > c->batch_bytes)
            break;
        wire += framed;
        n++;
        t->counted += events;
        counts_bytes += 2 * sizeof(uint64_t) + framed;
    }
    uint64_t pos = tail, ring_events = 0, ring_messages = 0;
    while (pos < head) {
        const struct ring_hdr *h = ring_hdr_at(c, pos);
        uint32_t state = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
        if (state == REC_EMPTY)
            break;
        if (state == REC_PADDING) {
            pos += HDR_BYTES + h->len;
            continue;
        }
        uint64_t framed = 1 + mw_varint_size(h->len) + h->len;
        if (n > 0 && wire + framed > c->batch_bytes)
            break;
        wire += framed;
        n++;
        ring_messages++;
        ring_events += ((const uint8_t *)h)[HDR_BYTES] == CLIENT_MESSAGE_EVENT_KEY;
        pos += HDR_BYTES + align8(h->len);
    }
    if (n == 0) {
        if (pos != tail)
            ring_release(c, tail, pos); /* padding only */
        return false;
    }
    uint8_t *msg = nn_allocmsg((size_t)wire, 0);
    if (!msg)
        return false;
    memcpy(msg, stream, stream_len);
    uint8_t *out = msg + stream_len;
    for (size_t off = 0; off < counts_bytes;) {
        uint64_t events, framed;
        const uint8_t *entry = counts_entry(c, off, &events, &framed);
        memcpy(out, entry, framed);
        out += framed;
        off += 2 * sizeof(uint64_t) + framed;
    }
    counts_consumed(c, counts_bytes);
    for (uint64_t p = tail; p < pos;) {
        const struct ring_hdr *h = ring_hdr_at(c, p);
        if (h->state == REC_PADDING) {
            p += HDR_BYTES + h->len;
            continue;
        }
        *out++ = CLIENT_BATCH_TAG;
        out += mw_put_varint(out, h->len);
        memcpy(out, (const uint8_t *)h + HDR_BYTES, h->len);
        out += h->len;
        p += HDR_BYTES + align8(h->len);
    }
    ring_release(c, tail, pos);
    t->msg = msg;
    t->messages = ring_messages + t->counted;
    t->events = ring_events + t->counted;
    t->end = pos;
    return true;
}

/* Events counted and not yet in a message: in the table, or held by the sender. */
static bool counts_waiting(const mw_client *c)
{
    return c->tally && (c->counts_out.len > 0 || mw_client_tally_pending(c->tally) > 0);
}

/* Drop what is left (close gave up on the agent): the message in hand and every published
 * record in the ring, counted. */
static void discard_all(mw_client *c, struct batch_taken *t)
{
    uint64_t lost = 0, counted = 0;
    if (t->msg) {
        nn_freemsg(t->msg);
        t->msg = NULL;
        lost += t->messages;
        counted += t->counted;
    }
    for (size_t off = 0; off < c->counts_out.len;) {
        uint64_t events, framed;
        counts_entry(c, off, &events, &framed);
        counted += events;
        lost += events;
        off += 2 * sizeof(uint64_t) + framed;
    }
    mw_buf_reset(&c->counts_out);
    if (c->tally) {
        uint64_t in_table = mw_client_tally_discard(c->tally);
        counted += in_table;
        lost += in_table;
    }
    atomic_fetch_add(&c->counted_handed, counted);
    const uint64_t tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
    const uint64_t head = atomic_load_explicit(&c->head, memory_order_acquire);
    uint64_t pos = tail;
    while (pos < head) {
        const struct ring_hdr *h = ring_hdr_at(c, pos);
        uint32_t state = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
        if (state == REC_EMPTY)
            break;
        lost += state == REC_MESSAGE;
        pos += HDR_BYTES + (state == REC_MESSAGE ? align8(h->len) : h->len);
    }
    if (pos != tail)
        ring_release(c, tail, pos);
    atomic_store(&c->handed, pos);
    atomic_fetch_add(&c->n_dropped, lost);
}

/*
 * Sleep until a caller wakes the sender or `timeout_ns` passes. IDLE: woken by the first
 * record; LINGER: woken only when the ring is half full. The state is stored before the ring is
 * looked at, and callers look at the state after they reserved (both seq_cst), so one of the two
 * always sees the other.
 */
static void sender_sleep(mw_client *c, int state, uint64_t timeout_ns)
{
    unsigned seq = atomic_load(&c->wake_seq);
    atomic_store(&c->sender_state, state);
    uint64_t used = atomic_load(&c->head) - atomic_load_explicit(&c->tail, memory_order_relaxed);
    bool go = state == SENDER_IDLE ? used != 0 || counts_waiting(c)
                                   : used >= (c->ring_mask + 1) / 2;
    if (!go && !atomic_load(&c->closing) && !atomic_load(&c->flush_now))
        futex_wait(&c->wake_seq, seq, timeout_ns);
    atomic_store(&c->sender_state, SENDER_RUNNING);
}

/* A caller has reserved a record and not yet published it: give it a moment. */
static void pause_briefly(void)
{
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
}

/* False while the agent's ipc:// socket file is missing: it is stopping (or not started). */
static bool agent_socket_present(const mw_client *c)
{
    struct stat st;
    return !c->ipc_path || stat(c->ipc_path, &st) == 0 || errno != ENOENT;
}

/* Closing: keep the connection CLOSE_GRACE_NS after the last send, within the close timeout. */
static void linger_after_last_send(uint64_t last_send_ns, uint64_t close_deadline_ns)
{
    uint64_t until_ns = last_send_ns + CLOSE_GRACE_NS;
    if (close_deadline_ns < until_ns)
        until_ns = close_deadline_ns;
    uint64_t now_ns = mw_clock_mono_ns();
    if (!last_send_ns || now_ns >= until_ns)
        return;
    struct timespec ts = {.tv_sec = (time_t)((until_ns - now_ns) / 1000000000u),
                          .tv_nsec = (long)((until_ns - now_ns) % 1000000000u)};
    nanosleep(&ts, NULL);
}

/*
 * The sender. With data waiting it lingers until flush_interval after it first saw it (or a
 * batch is full), takes a batch and sends it. With none, it naps flush_interval at a time for
 * IDLE_NAP_NS after the last data, callers not waking it (a steady stream costs them no system
 * call, and what they capture during a nap goes out at its end); then it sleeps until a caller
 * wakes it, looking at the connection now and then.
 */
static void *sender_main(void *arg)
{
    mw_client *c = arg;
    struct batch_taken batch = {0};
    uint64_t first_seen_ns = 0, close_deadline_ns = 0, last_send_ns = 0, last_data_ns = 0;
    bool napped = false;
    update_connected(c);
    for (;;) {
        bool closing = atomic_load(&c->closing);
        uint64_t now_ns = mw_clock_mono_ns();
        mw_client_sampling_refresh(&c->sampling, now_ns);
        if (closing && !close_deadline_ns)
            close_deadline_ns = now_ns + c->close_timeout_ns;
        if (closing && now_ns >= close_deadline_ns) {
            discard_all(c, &batch); /* the agent did not take it in time */
            break;
        }
        if (!batch.msg) {
            uint64_t used = atomic_load(&c->head) - atomic_load(&c->tail);
            if (used == 0 && !counts_waiting(c)) {
                first_seen_ns = 0;
                if (closing) {
                    linger_after_last_send(last_send_ns, close_deadline_ns);
                    break;
                }
                atomic_store(&c->flush_now, false);
                napped = now_ns - last_data_ns < IDLE_NAP_NS &&
                         atomic_load_explicit(&c->connected, memory_order_relaxed);
                if (napped) {
                    sender_sleep(c, SENDER_LINGER, c->flush_interval_ns);
                } else {
                    bool up = update_connected(c);
                    sender_sleep(c, SENDER_IDLE,
                                 up ? IDLE_POLL_CONNECTED_NS : IDLE_POLL_DISCONNECTED_NS);
                }
                continue;
            }
            last_data_ns = now_ns;
            if (!first_seen_ns)
                first_seen_ns = napped ? now_ns - c->flush_interval_ns : now_ns;
            napped = false;
            uint64_t due_ns = first_seen_ns + c->flush_interval_ns;
            if (!closing && !atomic_load(&c->flush_now) && used < c->batch_bytes &&
                now_ns < due_ns) {
                sender_sleep(c, SENDER_LINGER, due_ns - now_ns);
                continue;
            }
            if (!take_batch(c, &batch)) {
                pause_briefly();
                continue;
            }
            first_seen_ns = 0; /* what is left waits its own interval, from now */
        }
        if (!agent_socket_present(c)) {
            /* The agent is stopping: hold the message for the next one (close gives up on it
             * at its deadline, counted; at once when no agent is connected at all). */
            if (!update_connected(c) && closing) {
                discard_all(c, &batch);
                break;
            }
            struct timespec ts = {0, (long)SEND_TIMEOUT_MS * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (nn_send(c->sock, &batch.msg, NN_MSG, 0) >= 0) {
            last_send_ns = mw_clock_mono_ns();
            batch.msg = NULL;
            c->stream_messages += batch.messages;
            c->stream_events += batch.events;
            atomic_fetch_add(&c->counted_handed, batch.counted);
            atomic_store(&c->handed, batch.end);
            if (!atomic_load_explicit(&c->connected, memory_order_relaxed))
                atomic_store_explicit(&c->connected, true, memory_order_relaxed);
            continue;
        }
        int err = errno;
        bool up = update_connected(c);
        bool retry = err == EAGAIN || err == ETIMEDOUT || err == EINTR;
        if (!retry || (closing && (!up || mw_clock_mono_ns() >= close_deadline_ns))) {
            discard_all(c, &batch);
            if (!retry)
                break; /* the socket is gone (ETERM, EBADF): nothing can be sent any more */
        }
    }
    if (batch.msg || counts_waiting(c))
        discard_all(c, &batch);
    return NULL;
}

/* Start the sender with every signal blocked: the process's handlers run on its own threads. */
static int start_sender(mw_client *c)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&c->sender, NULL, sender_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        pthread_setname_np(c->sender, "mw-sender");
    return rc;
}

/* A random, nonzero client id (ClientStream.client_id): the agent keeps its progress per id. */
static uint64_t new_client_id(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, GRND_NONBLOCK) != (ssize_t)sizeof id)
        id = mw_clock_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)mw_clock_wall_ms();
    return id ? id : 1;
}

static uint64_t ring_size_for(size_t requested)
{
    uint64_t want = requested ? requested : RING_DEFAULT_BYTES;
    if (want < RING_MIN_BYTES)
        want = RING_MIN_BYTES;
    if (want > RING_MAX_BYTES)
        want = RING_MAX_BYTES;
    uint64_t size = RING_MIN_BYTES;
    while (size < want)
        size <<= 1;
    return size;
}

int mw_client_open_ex(const char *endpoint, const struct mw_client_options *options,
                      mw_client **out)
{
    if (!nonempty(endpoint) || !out)
        return MW_EINVAL;
    *out = NULL;
    struct mw_client_options opts = options ? *options : (struct mw_client_options){0};
    pthread_once(&atfork_once, register_atfork);
    mw_client *c = mw_calloc(1, sizeof *c);
    if (!c)
        return MW_ENOMEM;
    c->fork_generation = atomic_load(&fork_generation);
    c->client_id = new_client_id();
    int err = 0;
    c->buffered = !opts.unbuffered;
    uint64_t ring_bytes = ring_size_for(opts.buffer_bytes);
    if (c->buffered) {
        c->ring = mw_calloc(1, (size_t)ring_bytes);
        if (!c->ring) {
            mw_free(c);
            return MW_ENOMEM;
        }
    }
    c->ring_mask = ring_bytes - 1;
    c->batch_bytes = opts.batch_bytes ? opts.batch_bytes : BATCH_DEFAULT_BYTES;
    if (c->batch_bytes > MW_MAX_COALESCED_BYTES)
        c->batch_bytes = MW_MAX_COALESCED_BYTES;
    c->flush_interval_ns =
        1000ull * (opts.flush_interval_us ? opts.flush_interval_us : FLUSH_INTERVAL_DEFAULT_US);
    c->close_timeout_ns =
        1000000ull * (opts.close_timeout_ms ? opts.close_timeout_ms : CLOSE_TIMEOUT_DEFAULT_MS);
    if (strncmp(endpoint, "ipc://", 6) == 0 && !(c->ipc_path = mw_strdup(endpoint + 6))) {
        mw_free(c->ring);
        mw_free(c);
        return MW_ENOMEM;
    }
    if (mw_client_sampling_init(&c->sampling, c->buffered ? c->ipc_path : NULL) != 0 ||
        (c->buffered && !(c->tally = mw_client_tally_create()))) {
        err = ENOMEM;
        goto fail_free;
    }
    mw_buf_init(&c->counts_out, COUNTS_OUT_MAX_BYTES);
    c->sock = nn_socket(AF_SP, NN_PUSH);
    if (c->sock < 0) {
        err = errno;
        goto fail_free;
    }
    /* Unbuffered calls never wait (NN_DONTWAIT); the sender waits in slices. */
    int send_timeout_ms = c->buffered ? SEND_TIMEOUT_MS : 0;
    int linger_ms = 100;
    nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_SNDTIMEO, &send_timeout_ms, sizeof send_timeout_ms);
    nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_LINGER, &linger_ms, sizeof linger_ms);
    if (nn_connect(c->sock, endpoint) < 0) {
        err = errno;
        goto fail_close;
    }
    atomic_init(&c->n_sent, 0);
    atomic_init(&c->n_dropped, 0);
    atomic_init(&c->head, 0);
    atomic_init(&c->tail, 0);
    atomic_init(&c->handed, 0);
    atomic_init(&c->counted, 0);
    atomic_init(&c->counted_handed, 0);
    atomic_init(&c->connected, false);
    atomic_init(&c->wake_seq, 0);
    atomic_init(&c->sender_state, SENDER_RUNNING);
    atomic_init(&c->flush_now, false);
    atomic_init(&c->closing, false);
    if (c->buffered && start_sender(c) != 0) {
        /* No thread to spare: work as the unbuffered client does rather than not at all. */
        c->buffered = false;
        mw_free(c->ring);
        c->ring = NULL;
        mw_client_sampling_free(&c->sampling); /* nobody to follow the rules */
        mw_client_tally_destroy(c->tally);
        c->tally = NULL;
        int zero = 0;
        nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_SNDTIMEO, &zero, sizeof zero);
    }
    *out = c;
    return 0;
fail_close:
    nn_close(c->sock);
fail_free:
    mw_client_sampling_free(&c->sampling);
    mw_client_tally_destroy(c->tally);
    mw_free(c->ipc_path);
    mw_free(c->ring);
    mw_free(c);
    /* A malformed address or an unknown transport is the caller's mistake, not the network's. */
    return err == EINVAL || err == EPROTONOSUPPORT || err == ENAMETOOLONG ? MW_EINVAL
                                                                          : MW_ETRANSPORT;
}

int mw_client_open(const char *endpoint, mw_client **out)
{
    return mw_client_open_ex(endpoint, NULL, out);
}

void mw_client_close_counted(mw_client *client, struct mw_client_counts *counts)
{
    if (counts)
        *counts = (struct mw_client_counts){0, 0};
    if (!client)
        return;
    /* In a child that inherited the client the parent's sender and nanomsg's threads are not
     * there: it frees its copy only. */
    if (!inherited(client)) {
        if (client->buffered) {
            atomic_store(&client->closing, true);
            kick_sender(client);
            pthread_join(client->sender, NULL);
        }
        nn_close(client->sock);
    }
    if (counts)
        *counts = (struct mw_client_counts){.sent = atomic_load(&client->n_sent),
                                            .dropped = atomic_load(&client->n_dropped)};
    mw_client_sampling_free(&client->sampling);
    mw_client_tally_destroy(client->tally);
    mw_buf_free(&client->counts_out);
    mw_free(client->ipc_path);
    mw_free(client->ring);
    mw_free(client);
}

void mw_client_close(mw_client *client)
{
    mw_client_close_counted(client, NULL);
}

int mw_client_flush(mw_client *client, unsigned timeout_ms)
{
    if (!client)
        return MW_EINVAL;
    if (inherited(client))
        return MW_EFORKED;
    if (!client->buffered)
        return 0;
    uint64_t target = atomic_load(&client->head);
    uint64_t counted_target = atomic_load(&client->counted);
    uint64_t deadline_ns = mw_clock_mono_ns() + 1000000ull * timeout_ms;
    while (atomic_load(&client->handed) < target ||
           atomic_load(&client->counted_handed) < counted_target) {
        atomic_store(&client->flush_now, true);
        kick_sender(client);
        if (mw_clock_mono_ns() >= deadline_ns)
            return MW_EAGAIN;
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int mw_client_wait_ready(mw_client *client, unsigned timeout_ms)
{
    if (!client)
        return MW_EINVAL;
    if (inherited(client))
        return MW_EFORKED;
    uint64_t deadline_ns = mw_clock_mono_ns() + 1000000ull * timeout_ms;
    for (;;) {
        if (update_connected(client) && agent_socket_present(client))
            return 0;
        if (mw_clock_mono_ns() >= deadline_ns)
            return MW_EAGAIN;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

uint64_t mw_client_dropped(const mw_client *client)
{
    return client ? atomic_load(&client->n_dropped) : 0;
}

uint64_t mw_client_sent(const mw_client *client)
{
    return client ? atomic_load(&client->n_sent) : 0;
}

static int drop(mw_client *c, int rc)
{
    atomic_fetch_add(&c->n_dropped, 1);
    return rc;
}

/* Writes an encoded message of the size its caller computed to `out`. */
typedef void (*encode_fn)(const void *src, uint8_t *out);

/* Encode one message into the ring and publish it, without blocking. Connected or not: the
 * sender hands it over once an agent is there, and the ring bounds what waits. */
static int enqueue(mw_client *c, size_t size, encode_fn encode, const void *src)
{
    uint64_t pos = 0, used = 0;
    if (ring_reserve(c, size, &pos, &used) != 0)
        return drop(c, MW_EAGAIN);
    struct ring_hdr *h = (struct ring_hdr *)(c->ring + (pos & c->ring_mask));
    h->len = (uint32_t)size;
    encode(src, (uint8_t *)h + HDR_BYTES);
    __atomic_store_n(&h->state, REC_MESSAGE, __ATOMIC_RELEASE);
    atomic_fetch_add_explicit(&c->n_sent, 1, memory_order_relaxed);
    wake_sender(c, used);
    return 0;
}

/* Encode and send one message of `size` bytes without blocking. */
static int send_encoded(mw_client *c, size_t size, encode_fn encode, const void *src)
{
    if (inherited(c))
        return drop(c, MW_EFORKED);
    if (size > MW_MAX_MESSAGE_BYTES)
        return drop(c, MW_ETOOBIG);
    if (c->buffered)
        return enqueue(c, size, encode, src);
    encode(src, scratch.wire);
    if (nn_send(c->sock, scratch.wire, size, NN_DONTWAIT) < 0)
        return drop(c, errno == EAGAIN ? MW_EAGAIN : MW_ETRANSPORT);
    atomic_fetch_add(&c->n_sent, 1);
    return 0;
}

static void pack_client_message(const void *msg, uint8_t *out)
{
    modelwatch__v1__client_message__pack(msg, out);
}

/* Pack (protobuf-c) and send one message without blocking. */
static int send_message(mw_client *c, const Modelwatch__V1__ClientMessage *msg)
{
    return send_encoded(c, modelwatch__v1__client_message__get_packed_size(msg),
                        pack_client_message, msg);
}

static void write_event(const void *wire, uint8_t *out)
{
    mw_event_wire_write(wire, out);
}

static bool feature_ok(const struct mw_feature *f)
{
    if (!nonempty(f->name))
        return false;
    switch (f->kind) {
    case MW_FEATURE_NUMERIC:
        return isfinite(f->numeric);
    case MW_FEATURE_CATEGORICAL:
        return f->categorical != NULL;
    case MW_FEATURE_MISSING:
        return true;
    }
    return false;
}

static bool output_ok(const struct mw_event *ev)
{
    if (ev->has_score && !(ev->score >= 0.0 && ev->score <= 1.0))
        return false;
    if (ev->has_value && !isfinite(ev->value))
        return false;
    if (ev->n_scores > MW_MAX_SCORES || (ev->n_scores && !ev->scores))
        return false;
    for (size_t i = 0; i < ev->n_scores; i++) {
        if (!isfinite(ev->scores[i]))
            return false;
        if (ev->class_names && !ev->class_names[i])
            return false;
    }
    return true;
}

/* Count an event the agent will not ship instead of sending it; false when the counters
 * have no room for it (or refuse its names): then its head goes, as without them. */
static bool count_event(mw_client *c, const struct mw_event *ev, int64_t event_time_ms,
                        int64_t count_bucket_ms)
{
    if (mw_client_tally_add(c->tally, ev, event_time_ms, count_bucket_ms) != 0)
        return false;
    atomic_fetch_add_explicit(&c->counted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->n_sent, 1, memory_order_relaxed);
    wake_sender(c, 0); /* only a sender asleep for want of data needs it */
    return true;
}

int mw_capture(mw_client *client, const struct mw_event *ev)
{
    if (!client)
        return MW_EINVAL;
    if (!ev || !nonempty(ev->model) || !nonempty(ev->prediction_id) ||
        ev->n_features > MW_MAX_FEATURES || (ev->n_features && !ev->features) ||
        (ev->status != 0 && ev->status != MW_STATUS_OK && ev->status != MW_STATUS_ERROR))
        return drop(client, MW_EINVAL);
    for (size_t i = 0; i < ev->n_features; i++)
        if (!feature_ok(&ev->features[i]))
            return drop(client, MW_EINVAL);
    if (!output_ok(ev))
        return drop(client, MW_EINVAL);
    int64_t event_time_ms = ev->event_time_ms ? ev->event_time_ms : (int64_t)mw_clock_wall_ms();
    int64_t count_bucket_ms = 0;
    bool omit = mw_client_sampling_decide(&client->sampling, ev, &count_bucket_ms);
    if (omit && count_bucket_ms > 0 && event_time_ms >= 0 && !inherited(client) &&
        count_event(client, ev, event_time_ms, count_bucket_ms))
        return 0;
    /* Written directly (event_wire.h): the bytes protobuf-c would pack, for a tenth of the
     * instructions; only the head when the agent's rules leave the payload out. */
    struct mw_event_wire wire;
    size_t size = mw_event_wire_size(ev, event_time_ms, omit, &wire);
    return send_encoded(client, size, write_event, &wire);
}

static int send_feedback(mw_client *client, Modelwatch__V1__Feedback *fb,
                         const struct mw_feedback_options *options)
{
    if (!nonempty(fb->model) || !nonempty(fb->prediction_id))
        return drop(client, MW_EINVAL);
    int64_t event_time_ms = options ? options->event_time_ms : 0;
    if (event_time_ms < 0)
        return drop(client, MW_EINVAL);
    if (!fb->version)
        fb->version = "";
    fb->has_event_time_ms = 1;
    fb->event_time_ms = event_time_ms ? event_time_ms : mw_clock_wall_ms();
    Modelwatch__V1__ClientMessage msg = MODELWATCH__V1__CLIENT_MESSAGE__INIT;
    msg.body_case = MODELWATCH__V1__CLIENT_MESSAGE__BODY_FEEDBACK;
    msg.feedback = fb;
    return send_message(client, &msg);
}

int mw_feedback_ex(mw_client *client, const char *model, const char *version,
                   const char *prediction_id, const char *label_class,
                   const struct mw_feedback_options *options)
{
    if (!client)
        return MW_EINVAL;
    if (!label_class)
        return drop(client, MW_EINVAL);
    Modelwatch__V1__Feedback fb = MODELWATCH__V1__FEEDBACK__INIT;
    fb.model = (char *)model;
    fb.version = (char *)version;
    fb.prediction_id = (char *)prediction_id;
    fb.label_case = MODELWATCH__V1__FEEDBACK__LABEL_LABEL_CLASS;
    fb.label_class = (char *)label_class;
    return send_feedback(client, &fb, options);
}

int mw_feedback_value_ex(mw_client *client, const char *model, const char *version,
                         const char *prediction_id, double label_value,
                         const struct mw_feedback_options *options)
{
    if (!client)
        return MW_EINVAL;
    if (!isfinite(label_value))
        return drop(client, MW_EINVAL);
    Modelwatch__V1__Feedback fb = MODELWATCH__V1__FEEDBACK__INIT;
    fb.model = (char *)model;
    fb.version = (char *)version;
    fb.prediction_id = (char *)prediction_id;
    fb.label_case = MODELWATCH__V1__FEEDBACK__LABEL_LABEL_VALUE;
    fb.label_value = label_value;
    return send_feedback(client, &fb, options);
}

int mw_feedback(mw_client *client, const char *model, const char *version,
                const char *prediction_id, const char *label_class)
{
    return mw_feedback_ex(client, model, version, prediction_id, label_class, NULL);
}

int mw_feedback_value(mw_client *client, const char *model, const char *version,
                      const char *prediction_id, double label_value)
{
    return mw_feedback_value_ex(client, model, version, prediction_id, label_value, NULL);
}
