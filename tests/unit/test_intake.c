/* test_intake.c — the agent's intake, in-process on its own loop, fed by a nanomsg PUSH socket:
 * a ClientBatch opened by a ClientStream announces the stream, then delivers its messages (the
 * stream entry is not one); a ClientBatch without one, and a lone ClientMessage, announce none;
 * a stream-shaped first entry that does not decode is counted and announces none; a stream
 * entry further in is an ordinary (malformed) message for the agent to count; an oversized
 * message is dropped here and reported to the dropped callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "intake.h"
#include "telemetry.pb-c.h"

#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEEN 16

/* What the callbacks saw, in order: 'S' a stream, 'N' no stream, 'M' a message, 'D' a drop. */
struct seen {
    char log[MAX_SEEN + 1];
    size_t n;
    struct mw_intake_stream streams[MAX_SEEN];
    size_t n_streams;
    size_t message_len[MAX_SEEN];
    size_t n_messages;
};

struct fixture {
    uv_loop_t loop;
    struct mw_intake *in;
    int push;
    char endpoint[128];
    struct seen seen;
};

static void note(struct seen *s, char what)
{
    if (s->n < MAX_SEEN)
        s->log[s->n++] = what;
}

static void on_message(const void *data, size_t len, void *arg)
{
    struct seen *s = arg;
    (void)data;
    note(s, 'M');
    if (s->n_messages < MAX_SEEN)
        s->message_len[s->n_messages++] = len;
}

static void on_stream(const struct mw_intake_stream *stream, void *arg)
{
    struct seen *s = arg;
    note(s, stream ? 'S' : 'N');
    if (stream && s->n_streams < MAX_SEEN)
        s->streams[s->n_streams++] = *stream;
}

static void on_dropped(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    note(arg, 'D');
}

static int setup(void **state)
{
    static struct fixture fx;
    static int n_test;
    memset(&fx, 0, sizeof fx);
    snprintf(fx.endpoint, sizeof fx.endpoint, "ipc:///tmp/mw-test-intake-%d-%d.sock", (int)getpid(),
             ++n_test);
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    assert_int_equal(
        mw_intake_create(&fx.loop, fx.endpoint, 1024, 0600, on_message, &fx.seen, &fx.in), 0);
    mw_intake_set_stream_fns(fx.in, on_stream, on_dropped);
    fx.push = nn_socket(AF_SP, NN_PUSH);
    assert_true(fx.push >= 0);
    assert_true(nn_connect(fx.push, fx.endpoint) >= 0);
    alarm(30);
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    nn_close(fx->push);
    mw_intake_destroy(fx->in);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    uv_loop_close(&fx->loop);
    unlink(fx->endpoint + strlen("ipc://"));
    return 0;
}

/* Send one nanomsg message and run the loop until the intake has read it. */
static void send_and_take(struct fixture *fx, const uint8_t *msg, size_t len)
{
    uint64_t before = mw_intake_stats(fx->in)->transport_messages;
    assert_int_equal(nn_send(fx->push, msg, len, 0), (int)len);
    for (int i = 0; i < 5000 && mw_intake_stats(fx->in)->transport_messages == before; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(mw_intake_stats(fx->in)->transport_messages, before + 1);
}

/* Append one ClientBatch entry (key 0x7a, one-byte length) holding body[0..n). */
static size_t entry(uint8_t *out, const uint8_t *body, size_t n)
{
    assert_true(n < 128);
    out[0] = 0x7a;
    out[1] = (uint8_t)n;
    memcpy(out + 2, body, n);
    return n + 2;
}

/* An encoded ClientMessage whose body is a ClientStream. */
static size_t stream_message(uint8_t *out, uint64_t id, uint64_t before, uint64_t events)
{
    Modelwatch__V1__ClientStream st = MODELWATCH__V1__CLIENT_STREAM__INIT;
    st.has_client_id = st.has_messages_before = st.has_events_before = 1;
    st.client_id = id;
    st.messages_before = before;
    st.events_before = events;
    Modelwatch__V1__ClientMessage cm = MODELWATCH__V1__CLIENT_MESSAGE__INIT;
    cm.body_case = MODELWATCH__V1__CLIENT_MESSAGE__BODY_STREAM;
    cm.stream = &st;
    return modelwatch__v1__client_message__pack(&cm, out);
}

/* Stand-ins for a client's messages: the intake does not look inside them. */
static const uint8_t EVENT[] = {0x0a, 0x03, 0x0a, 0x01, 'm'};
static const uint8_t FEEDBACK[] = {0x12, 0x03, 0x0a, 0x01, 'm', 0x00};

static void test_a_stream_opens_its_batch_and_is_not_a_message(void **state)
{
    struct fixture *fx = *state;
    uint8_t body[64], msg[256];
    size_t n = entry(msg, body, stream_message(body, 0x1122334455667788u, 10, 4));
    n += entry(msg + n, EVENT, sizeof EVENT);
    n += entry(msg + n, FEEDBACK, sizeof FEEDBACK);
    send_and_take(fx, msg, n);
    assert_string_equal(fx->seen.log, "SMM");
    assert_int_equal(fx->seen.streams[0].client_id, 0x1122334455667788u);
    assert_int_equal(fx->seen.streams[0].messages_before, 10);
    assert_int_equal(fx->seen.streams[0].events_before, 4);
    assert_int_equal(fx->seen.message_len[0], sizeof EVENT);
    assert_int_equal(fx->seen.message_len[1], sizeof FEEDBACK);
    assert_int_equal(mw_intake_stats(fx->in)->received, 2);
    assert_int_equal(mw_intake_stats(fx->in)->stream_errors, 0);
}

static void test_batches_and_messages_without_a_stream_announce_none(void **state)
{
    struct fixture *fx = *state;
    uint8_t msg[256];
    size_t n = entry(msg, EVENT, sizeof EVENT);
    n += entry(msg + n, EVENT, sizeof EVENT);
    send_and_take(fx, msg, n);
    send_and_take(fx, FEEDBACK, sizeof FEEDBACK);
    assert_string_equal(fx->seen.log, "NMMNM");
}

static void test_a_stream_that_does_not_decode_is_counted(void **state)
{
    struct fixture *fx = *state;
    uint8_t msg[256];
    static const uint8_t broken[] = {0x1a, 0x09, 0x09, 0x01}; /* truncated */
    uint8_t body[64];
    /* Events before more than messages before: not a stream a client sends. */
    size_t impossible = stream_message(body, 5, 1, 2);
    size_t n = entry(msg, broken, sizeof broken);
    n += entry(msg + n, EVENT, sizeof EVENT);
    send_and_take(fx, msg, n);
    n = entry(msg, body, impossible);
    n += entry(msg + n, EVENT, sizeof EVENT);
    send_and_take(fx, msg, n);
    assert_string_equal(fx->seen.log, "NMNM");
    assert_int_equal(mw_intake_stats(fx->in)->stream_errors, 2);
    assert_int_equal(mw_intake_stats(fx->in)->received, 2);
}

static void test_a_stream_further_in_is_an_ordinary_message(void **state)
{
    struct fixture *fx = *state;
    uint8_t body[64], msg[256];
    size_t n = entry(msg, EVENT, sizeof EVENT);
    n += entry(msg + n, body, stream_message(body, 9, 0, 0));
    send_and_take(fx, msg, n);
    assert_string_equal(fx->seen.log, "NMM");
    assert_int_equal(mw_intake_stats(fx->in)->received, 2);
}

static void test_an_oversized_message_is_reported_dropped(void **state)
{
    struct fixture *fx = *state;
    static uint8_t big[2000];
    memset(big, 0x55, sizeof big);
    big[0] = 0x0a;
    uint8_t body[64], msg[2200];
    size_t n = entry(msg, body, stream_message(body, 3, 0, 0));
    msg[n++] = 0x7a;
    msg[n++] = (uint8_t)(0x80 | (sizeof big & 0x7f));
    msg[n++] = (uint8_t)(sizeof big >> 7);
    memcpy(msg + n, big, sizeof big);
    n += sizeof big;
    send_and_take(fx, msg, n);
    assert_string_equal(fx->seen.log, "SD");
    assert_int_equal(mw_intake_stats(fx->in)->dropped_oversize, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_stream_opens_its_batch_and_is_not_a_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batches_and_messages_without_a_stream_announce_none,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_stream_that_does_not_decode_is_counted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_stream_further_in_is_an_ordinary_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_oversized_message_is_reported_dropped, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
