/*
 * fuzz_client_message.c — what a client sends the agent: one nanomsg message, a ClientMessage
 * or a ClientBatch of them.
 *
 * The agent's own steps, in its order: the intake's framing (mw_intake_split), then each
 * message decoded and checked (mw_client_message_decode, from the agent's arena as in the
 * agent), counted in the exact counters, and the counters packed as the batch's snapshot.
 */
#include "arena.h"
#include "buf.h"
#include "client_message.h"
#include "counters.h"
#include "fuzz.h"
#include "intake.h"
#include "modelwatch.h"

#include <stdlib.h>

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

static void on_message(const void *data, size_t len, void *arg)
{
    struct state *st = arg;
    if (len > MAX_MESSAGE_BYTES)
        return; /* the intake drops it as oversize before decoding */
    mw_arena_reset(st->arena);
    Modelwatch__V1__ClientMessage *msg = NULL;
    if (mw_client_message_decode(&st->arena->pb_allocator, data, len, &msg) != 0)
        return;
    /* A full table refuses (MW_EFULL) and the agent counts the drop; either way is fine here. */
    if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT)
        mw_counters_add_event(st->counters, msg->event);
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
