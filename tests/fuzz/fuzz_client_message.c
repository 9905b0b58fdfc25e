/*
 * fuzz_client_message.c — what a client sends the agent: one nanomsg message, a ClientMessage
 * or a ClientBatch of them.
 *
 * The agent's own steps, in its order: the intake's framing (mw_intake_split), then each
 * message decoded and checked (mw_client_message_decode, from the agent's arena as in the
 * agent), counted in the exact counters (an event, a feedback, or a client's counts added to
 * them), and the counters packed as the batch's snapshot.
 *
 * Each message is also read by mw_client_message_decode_head, the agent's first step: it must
 * accept whatever the whole decode accepts, with the same values in every field it reads. And
 * a message mw_client_message_event_payload_ok passes must unpack.
 */
#include "arena.h"
#include "buf.h"
#include "client_message.h"
#include "counters.h"
#include "fuzz.h"
#include "intake.h"
#include "modelwatch.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_BYTES (1u << 20)
#define MAX_MESSAGE_BYTES (16u * 1024u) /* intake.max_message_bytes by default */
#define MAX_SERIES 64
#define BUCKET_WIDTH_MS 10000

struct state {
    struct mw_arena *arena;
    struct mw_counters *counters;
};

/* One arena for the process, reset before each message, as the agent keeps it. */
static struct mw_arena *arena(void)
{
    static struct mw_arena a;
    if (!a.block && mw_arena_init(&a, ARENA_BYTES) != 0)
        abort();
    return &a;
}

static bool same_string(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* The head reader took the message as the whole decode did. */
static void check_head(const Modelwatch__V1__ClientMessage *whole, const void *data, size_t len,
                       struct mw_arena *arena)
{
    Modelwatch__V1__ClientMessage *head = NULL;
    bool is_whole = false;
    if (mw_client_message_decode_head(&arena->pb_allocator, data, len, &head, &is_whole) != 0 ||
        head->body_case != whole->body_case)
        abort();
    if (is_whole || head->body_case != MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT)
        return;
    const Modelwatch__V1__PredictionEvent *h = head->event, *w = whole->event;
    if (!same_string(h->model, w->model) || !same_string(h->version, w->version) ||
        !same_string(h->prediction_id, w->prediction_id) ||
        !same_string(h->error_code, w->error_code) ||
        h->has_event_time_ms != w->has_event_time_ms || h->event_time_ms != w->event_time_ms ||
        h->has_latency_us != w->has_latency_us || h->latency_us != w->latency_us ||
        h->has_status != w->has_status || h->status != w->status ||
        h->has_input_tokens != w->has_input_tokens || h->input_tokens != w->input_tokens ||
        h->has_output_tokens != w->has_output_tokens || h->output_tokens != w->output_tokens ||
        h->has_payload_omitted != w->has_payload_omitted ||
        h->payload_omitted != w->payload_omitted || h->n_features != 0 || h->output != NULL)
        abort();
}

static void on_message(const void *data, size_t len, void *arg)
{
    struct state *st = arg;
    if (len > MAX_MESSAGE_BYTES)
        return; /* the intake drops it as oversize before decoding */
    mw_arena_reset(st->arena);
    if (mw_client_message_event_payload_ok(data, len) &&
        !modelwatch__v1__client_message__unpack(&st->arena->pb_allocator, len, data))
        abort();
    mw_arena_reset(st->arena);
    Modelwatch__V1__ClientMessage *msg = NULL;
    if (mw_client_message_decode(&st->arena->pb_allocator, data, len, &msg) != 0) {
        /* It may still pass the head reader (an event whose payload is refused); never crash. */
        bool is_whole;
        mw_client_message_decode_head(&st->arena->pb_allocator, data, len, &msg, &is_whole);
        return;
    }
    check_head(msg, data, len, st->arena);
    /* A full table refuses (MW_EFULL) and the agent counts the drop; either way is fine here. */
    if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT)
        mw_counters_add_event(st->counters, msg->event);
    else if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_COUNTS)
        mw_counters_add_counts(st->counters, msg->counts);
    else
        mw_counters_add_feedback(st->counters, msg->feedback);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct state st = {.arena = arena()};
    mw_fuzz_quiet();
    st.counters = mw_counters_create(MAX_SERIES, BUCKET_WIDTH_MS);
    if (!st.counters)
        abort();
    mw_intake_split(data, size, MW_MAX_COALESCED_BYTES, on_message, &st);
    struct mw_buf snapshot;
    mw_buf_init(&snapshot, 64u * 1024 * 1024);
    if (mw_counters_flush(st.counters, NULL, NULL, &snapshot) == 0 &&
        mw_counters_series(st.counters) != 0)
        abort(); /* a flush clears every set */
    mw_buf_free(&snapshot);
    mw_counters_destroy(st.counters);
    return 0;
}
