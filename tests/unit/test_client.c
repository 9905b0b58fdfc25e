/* test_client.c — libmodelwatch: never blocks, counts drops, refuses bad arguments, and what it
 * sends decodes to exactly the event captured; coalesced ClientBatches carry every message once,
 * in order, from any number of threads, numbered by their ClientStream; what is captured before
 * the agent listens waits for it; a lone event goes out without waiting for company; a full
 * buffer refuses and counts; close hands over what is buffered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "modelwatch.h"
#include "telemetry.pb-c.h"

#include <math.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static char endpoint[256];

static int setup(void **state)
{
    (void)state;
    static int n_test;
    /* A socket of its own per test: one that failed half-way cannot disturb the next. */
    snprintf(endpoint, sizeof endpoint, "ipc:///tmp/mw-test-client-%d-%d.sock", (int)getpid(),
             ++n_test);
    alarm(30); /* a blocking call would hang the test: fail it instead */
    return 0;
}

static struct mw_event sample_event(const struct mw_feature *f, size_t n)
{
    return (struct mw_event){.model = "churn",
                             .version = "v3",
                             .prediction_id = "req-1",
                             .event_time_ms = 1700000000123,
                             .latency_us = 830,
                             .status = MW_STATUS_OK,
                             .features = f,
                             .n_features = n,
                             .predicted_class = "yes",
                             .has_score = 1,
                             .score = 0.75};
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Without an agent the buffer keeps what is captured, without blocking, until it is full; then
 * calls are refused and counted, and close counts what it could not hand over. */
static void test_no_agent_buffers_until_full_then_counts_drops(void **state)
{
    (void)state;
    /* The minimum buffer (256 KiB); a close timeout long enough that giving up "at once" and
     * waiting it out cannot be mistaken for each other on a loaded machine. A capture that
     * blocked would hang the loop below until the test's own timeout. */
    struct mw_client_options opts = {.buffer_bytes = 1, .close_timeout_ms = 20000};
    mw_client *c = NULL;
    assert_int_equal(mw_client_open_ex(endpoint, &opts, &c), 0);
    struct mw_feature f[] = {MW_NUMERIC("age", 42)};
    struct mw_event ev = sample_event(f, 1);
    long accepted = 0, refused = 0;
    for (int i = 0; i < 20000; i++) {
        int rc = mw_capture(c, &ev);
        assert_true(rc == 0 || rc == MW_EAGAIN);
        accepted += rc == 0;
        refused += rc == MW_EAGAIN;
    }
    assert_true(accepted > 1000 && refused > 1000); /* ~100 bytes an event in 256 KiB */
    /* A label is smaller than an event: it may still fit where the last event did not, and
     * the sender may have taken a batch out of the ring meanwhile. Fill up with labels too. */
    long labels_accepted = 0, labels_refused = 0;
    for (int i = 0; i < 100000 && labels_refused == 0; i++) {
        int rc = mw_feedback(c, "churn", "v3", "req-1", "yes");
        assert_true(rc == 0 || rc == MW_EAGAIN);
        labels_accepted += rc == 0;
        labels_refused += rc == MW_EAGAIN;
    }
    assert_int_equal(labels_refused, 1);
    accepted += labels_accepted;
    refused += labels_refused;
    assert_int_equal(mw_client_sent(c), (uint64_t)accepted);
    assert_int_equal(mw_client_dropped(c), (uint64_t)refused);
    assert_int_equal(mw_client_wait_ready(c, 50), MW_EAGAIN);
    double closing = now_s();
    struct mw_client_counts counts;
    mw_client_close_counted(c, &counts); /* at once: no agent to wait for */
    assert_true(now_s() - closing < 10.0); /* far from the 20 s close timeout */
    assert_int_equal(counts.sent, (uint64_t)accepted);
    assert_int_equal(counts.dropped, (uint64_t)(refused + accepted));
    mw_client_close_counted(NULL, &counts);
    assert_int_equal(counts.sent + counts.dropped, 0);
}

static void test_bad_arguments_are_refused(void **state)
{
    (void)state;
    mw_client *c = NULL;
    assert_int_equal(mw_client_open(NULL, &c), MW_EINVAL);
    assert_int_equal(mw_client_open("", &c), MW_EINVAL);
    assert_int_equal(mw_client_open("nonsense://x", &c), MW_EINVAL);
    assert_int_equal(mw_client_open(endpoint, &c), 0);
    struct mw_feature good[] = {MW_NUMERIC("age", 42)};
    struct mw_feature nan_feature[] = {MW_NUMERIC("age", NAN)};
    struct mw_feature unnamed[] = {MW_NUMERIC("", 1)};
    struct mw_feature null_cat[] = {{.name = "country", .kind = MW_FEATURE_CATEGORICAL}};
    struct mw_event ev = sample_event(good, 1);
    assert_int_equal(mw_capture(NULL, &ev), MW_EINVAL);
    assert_int_equal(mw_capture(c, NULL), MW_EINVAL);
    ev.model = "";
    assert_int_equal(mw_capture(c, &ev), MW_EINVAL);
    ev = sample_event(good, 1);
    ev.prediction_id = NULL;
    assert_int_equal(mw_capture(c, &ev), MW_EINVAL);
    ev = sample_event(nan_feature, 1);
    assert_int_equal(mw_capture(c, &ev), MW_EINVAL);
    ev = sample_event(unnamed, 1);
    assert_int_equal(mw_capture(c, &ev), MW_EINVAL);
    ev = sample_event(null_cat, 1);
    assert_int_equal(mw_capture(c, &ev), MW_EINVAL);
    ev = sample_event(good, MW_MAX_FEATURES + 1);
    assert_int_equal(mw_capture(c, &ev), MW_EINVAL);
    ev = sample_event(good, 1);
    ev.score = 1.5;
    assert_int_equal(mw_capture(c, &ev), MW_EINVAL);
    ev = sample_event(good, 1);
    ev.status = 7;
    assert_int_equal(mw_capture(c, &ev), MW_EINVAL);
    assert_int_equal(mw_feedback(c, "churn", NULL, NULL, "yes"), MW_EINVAL);
    assert_int_equal(mw_feedback(c, "churn", NULL, "id", NULL), MW_EINVAL);
    assert_int_equal(mw_feedback_value(c, "churn", NULL, "id", INFINITY), MW_EINVAL);
    struct mw_feedback_options before_epoch = {.event_time_ms = -1};
    assert_int_equal(mw_feedback_ex(c, "churn", NULL, "id", "yes", &before_epoch), MW_EINVAL);
    assert_int_equal(mw_feedback_value_ex(c, "churn", NULL, "id", 1.0, &before_epoch), MW_EINVAL);
    assert_int_equal(mw_client_dropped(c), 14); /* every refused call on a client */
    assert_int_equal(mw_client_dropped(NULL), 0);
    mw_client_close(c);
    mw_client_close(NULL);
}

static void test_oversized_event_is_refused(void **state)
{
    (void)state;
    mw_client *c = NULL;
    assert_int_equal(mw_client_open(endpoint, &c), 0);
    static char big[MW_MAX_MESSAGE_BYTES];
    memset(big, 'x', sizeof big - 1);
    struct mw_feature f[] = {MW_CATEGORICAL("blob", big)};
    struct mw_event ev = sample_event(f, 1);
    assert_int_equal(mw_capture(c, &ev), MW_ETOOBIG);
    assert_int_equal(mw_client_dropped(c), 1);
    mw_client_close(c);
}

static int unwrap(const uint8_t *p, size_t n, Modelwatch__V1__ClientMessage **out, int max,
                  Modelwatch__V1__ClientStream *stream);

/* The one ClientMessage of a nanomsg message of n bytes (a ClientBatch of one). */
static Modelwatch__V1__ClientMessage *unwrap_one(const void *msg, int n)
{
    Modelwatch__V1__ClientMessage *out[2] = {NULL, NULL};
    int k = unwrap(msg, (size_t)n, out, 2, NULL);
    assert_int_equal(k, 1);
    return out[0];
}

/* Receive one message from the PULL socket, waiting up to 5 s. */
static int receive(int sock, void **msg)
{
    int timeout_ms = 5000;
    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    return nn_recv(sock, msg, NN_MSG, 0);
}

static void test_sent_event_decodes_to_what_was_captured(void **state)
{
    (void)state;
    int pull = nn_socket(AF_SP, NN_PULL);
    assert_true(pull >= 0);
    assert_true(nn_bind(pull, endpoint) >= 0);
    mw_client *c = NULL;
    assert_int_equal(mw_client_open(endpoint, &c), 0);
    struct mw_feature f[] = {MW_NUMERIC("age", 42.5), MW_CATEGORICAL("country", "fr"),
                             MW_MISSING("income")};
    struct mw_event ev = sample_event(f, 3);
    ev.input_tokens = 12;
    int rc;
    for (int tries = 0; (rc = mw_capture(c, &ev)) == MW_EAGAIN && tries < 5000; tries++)
        usleep(1000); /* the connection is made in the background */
    assert_int_equal(rc, 0);
    void *msg = NULL;
    int n = receive(pull, &msg);
    assert_true(n > 0);
    Modelwatch__V1__ClientMessage *cm = unwrap_one(msg, n);
    assert_non_null(cm);
    assert_int_equal(cm->body_case, MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT);
    const Modelwatch__V1__PredictionEvent *pe = cm->event;
    assert_string_equal(pe->model, "churn");
    assert_string_equal(pe->version, "v3");
    assert_string_equal(pe->prediction_id, "req-1");
    assert_int_equal(pe->event_time_ms, 1700000000123);
    assert_int_equal(pe->latency_us, 830);
    assert_int_equal(pe->status, MODELWATCH__V1__STATUS__STATUS_OK);
    assert_int_equal(pe->n_features, 3);
    assert_string_equal(pe->features[0]->name, "age");
    assert_true(pe->features[0]->numeric == 42.5);
    assert_string_equal(pe->features[1]->categorical, "fr");
    assert_true(pe->features[2]->missing);
    assert_string_equal(pe->output->predicted_class, "yes");
    assert_true(pe->output->has_score && pe->output->score == 0.75);
    assert_int_equal(pe->input_tokens, 12);
    modelwatch__v1__client_message__free_unpacked(cm, NULL);
    nn_freemsg(msg);

    assert_int_equal(mw_feedback_value(c, "churn", "v3", "req-1", 3.25), 0);
    n = receive(pull, &msg);
    assert_true(n > 0);
    cm = unwrap_one(msg, n);
    assert_non_null(cm);
    assert_int_equal(cm->body_case, MODELWATCH__V1__CLIENT_MESSAGE__BODY_FEEDBACK);
    assert_string_equal(cm->feedback->prediction_id, "req-1");
    assert_true(cm->feedback->label_value == 3.25);
    assert_true(cm->feedback->has_event_time_ms && cm->feedback->event_time_ms > 1700000000000);
    modelwatch__v1__client_message__free_unpacked(cm, NULL);
    nn_freemsg(msg);

    /* A label with its own event time carries it; NULL options mean now. */
    struct mw_feedback_options at = {.event_time_ms = 1700000090123};
    assert_int_equal(mw_feedback_ex(c, "churn", "v3", "req-1", "yes", &at), 0);
    n = receive(pull, &msg);
    assert_true(n > 0);
    cm = unwrap_one(msg, n);
    assert_non_null(cm);
    assert_string_equal(cm->feedback->label_class, "yes");
    assert_int_equal(cm->feedback->event_time_ms, 1700000090123);
    modelwatch__v1__client_message__free_unpacked(cm, NULL);
    nn_freemsg(msg);
    assert_int_equal(mw_feedback_value_ex(c, "churn", "v3", "req-1", 2.0, &at), 0);
    n = receive(pull, &msg);
    assert_true(n > 0);
    cm = unwrap_one(msg, n);
    assert_non_null(cm);
    assert_int_equal(cm->feedback->event_time_ms, 1700000090123);
    modelwatch__v1__client_message__free_unpacked(cm, NULL);
    nn_freemsg(msg);
    assert_int_equal(mw_client_sent(c), 4);
    mw_client_close(c);
    nn_close(pull);
}

/* --- coalescing ------------------------------------------------------------------------- */

static uint64_t read_varint(const uint8_t *p, size_t n, size_t *i)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *i < n; shift += 7) {
        v |= (uint64_t)(p[*i] & 0x7f) << shift;
        if (!(p[(*i)++] & 0x80))
            break;
    }
    return v;
}

/* Split one nanomsg message into ClientMessages: the entries of a ClientBatch (key 0x7a, field
 * 15), the first one a ClientStream (stored in *stream when given), or the message itself.
 * Returns how many were stored in out[] (each to be freed with
 * modelwatch__v1__client_message__free_unpacked), or -1 when one does not decode. */
static int unwrap(const uint8_t *p, size_t n, Modelwatch__V1__ClientMessage **out, int max,
                  Modelwatch__V1__ClientStream *stream)
{
    if (stream)
        *stream = (Modelwatch__V1__ClientStream)MODELWATCH__V1__CLIENT_STREAM__INIT;
    if (n == 0 || p[0] != 0x7a) {
        out[0] = modelwatch__v1__client_message__unpack(NULL, n, p);
        return out[0] ? 1 : -1;
    }
    int count = 0;
    for (size_t i = 0; i < n && count < max;) {
        size_t entry_start = i;
        if (p[i++] != 0x7a)
            return -1;
        uint64_t len = read_varint(p, n, &i);
        if (len > n - i)
            return -1;
        Modelwatch__V1__ClientMessage *m =
            modelwatch__v1__client_message__unpack(NULL, (size_t)len, p + i);
        if (!m)
            return -1;
        i += (size_t)len;
        if (m->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_STREAM) {
            if (entry_start != 0)
                return -1; /* only the first entry may be one */
            if (stream)
                *stream = *m->stream;
            modelwatch__v1__client_message__free_unpacked(m, NULL);
            continue;
        }
        out[count++] = m;
    }
    return count;
}

struct tally {
    long messages;
    long transport_messages;
    long batches;
    long out_of_order;
    long unnumbered;    /* nanomsg messages without a ClientStream */
    long stream_gaps;   /* ClientStreams whose messages_before is not the messages so far */
    uint64_t client_id; /* of the first ClientStream */
    long next_seq[8];   /* per capturing thread: the prediction ids are "t<thread>-<seq>" */
};

/* Receive until `want` ClientMessages arrived (or 5 s pass without any), checking that each
 * thread's ids arrive in order, once. */
static void receive_all(int pull, long want, struct tally *t)
{
    static Modelwatch__V1__ClientMessage *msgs[70000];
    while (t->messages < want) {
        void *buf = NULL;
        int n = receive(pull, &buf);
        if (n < 0)
            break;
        Modelwatch__V1__ClientStream stream;
        int k = unwrap(buf, (size_t)n, msgs, (int)(sizeof msgs / sizeof msgs[0]), &stream);
        assert_true(k > 0);
        t->transport_messages++;
        t->batches += k > 1;
        if (!stream.has_client_id) {
            t->unnumbered++;
        } else {
            if (!t->client_id)
                t->client_id = stream.client_id;
            t->stream_gaps += stream.client_id != t->client_id ||
                              stream.messages_before != (uint64_t)t->messages ||
                              stream.events_before != (uint64_t)t->messages;
        }
        for (int i = 0; i < k; i++) {
            assert_int_equal(msgs[i]->body_case, MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT);
            int thread = 0;
            long seq = 0;
            assert_int_equal(sscanf(msgs[i]->event->prediction_id, "t%d-%ld", &thread, &seq), 2);
            assert_true(thread >= 0 && thread < 8);
            if (seq != t->next_seq[thread])
                t->out_of_order++;
            t->next_seq[thread] = seq + 1;
            assert_int_equal(msgs[i]->event->n_features, 12);
            modelwatch__v1__client_message__free_unpacked(msgs[i], NULL);
        }
        t->messages += k;
        nn_freemsg(buf);
    }
}

struct capturer {
    mw_client *client;
    int thread;
    long events;
    long refused;
};

/* Capture `events` events with 12 features; retry while the client refuses (not yet connected
 * or buffer full), so every event is eventually accepted once. */
static void *capture_main(void *arg)
{
    struct capturer *cap = arg;
    struct mw_feature f[12];
    static const char *const names[] = {"f0", "f1", "f2", "f3", "f4",      "f5",
                                        "f6", "f7", "f8", "f9", "country", "plan"};
    for (int k = 0; k < 10; k++)
        f[k] = (struct mw_feature)MW_NUMERIC(names[k], k * 1.5);
    f[10] = (struct mw_feature)MW_CATEGORICAL(names[10], "fr");
    f[11] = (struct mw_feature)MW_CATEGORICAL(names[11], "pro");
    for (long i = 0; i < cap->events; i++) {
        char id[32];
        snprintf(id, sizeof id, "t%d-%ld", cap->thread, i);
        struct mw_event ev = sample_event(f, 12);
        ev.prediction_id = id;
        int rc;
        while ((rc = mw_capture(cap->client, &ev)) == MW_EAGAIN) {
            cap->refused++;
            usleep(200);
        }
        assert_int_equal(rc, 0);
    }
    return NULL;
}

static int bind_pull(void)
{
    int pull = nn_socket(AF_SP, NN_PULL);
    assert_true(pull >= 0);
    assert_true(nn_bind(pull, endpoint) >= 0);
    return pull;
}

static void test_events_from_many_threads_arrive_once_in_order_and_coalesced(void **state)
{
    (void)state;
    enum { THREADS = 4, EVENTS = 20000 };
    int pull = bind_pull();
    mw_client *c = NULL;
    assert_int_equal(mw_client_open(endpoint, &c), 0);
    pthread_t threads[THREADS];
    struct capturer caps[THREADS];
    for (int i = 0; i < THREADS; i++) {
        caps[i] = (struct capturer){.client = c, .thread = i, .events = EVENTS};
        assert_int_equal(pthread_create(&threads[i], NULL, capture_main, &caps[i]), 0);
    }
    struct tally t = {0};
    receive_all(pull, (long)THREADS * EVENTS, &t);
    long refused = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        refused += caps[i].refused;
    }
    assert_int_equal(t.messages, (long)THREADS * EVENTS);
    assert_int_equal(t.out_of_order, 0);
    assert_int_equal(t.unnumbered, 0);
    assert_int_equal(t.stream_gaps, 0); /* each batch starts where the one before ended */
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(t.next_seq[i], EVENTS);
    /* Coalesced: far fewer nanomsg messages than events. */
    assert_true(t.batches > 0);
    assert_true(t.transport_messages * 4 < t.messages);
    assert_int_equal(mw_client_sent(c), (uint64_t)THREADS * EVENTS);
    assert_int_equal(mw_client_dropped(c), (uint64_t)refused);
    mw_client_close(c);
    nn_close(pull);
}

static struct mw_event numbered_event(struct mw_feature *f, char *id, size_t id_size, long seq)
{
    for (int k = 0; k < 10; k++)
        f[k] = (struct mw_feature)MW_NUMERIC("x", k);
    f[10] = (struct mw_feature)MW_CATEGORICAL("country", "fr");
    f[11] = (struct mw_feature)MW_CATEGORICAL("plan", "pro");
    snprintf(id, id_size, "t0-%ld", seq);
    struct mw_event ev = sample_event(f, 12);
    ev.prediction_id = id;
    return ev;
}

/* Wait for the connection, then capture event t0-0. */
static void wait_connected(mw_client *c)
{
    struct mw_feature f[12];
    char id[32];
    struct mw_event ev = numbered_event(f, id, sizeof id, 0);
    assert_int_equal(mw_client_wait_ready(c, 5000), 0);
    assert_int_equal(mw_capture(c, &ev), 0);
}

static void test_lone_event_is_sent_without_more_traffic_or_flush(void **state)
{
    (void)state;
    int pull = bind_pull();
    mw_client *c = NULL;
    assert_int_equal(mw_client_open(endpoint, &c), 0);
    wait_connected(c); /* event t0-0, then nothing more: it must not wait for company */
    struct tally t = {0};
    receive_all(pull, 1, &t);
    assert_int_equal(t.messages, 1);
    assert_int_equal(t.transport_messages, 1);
    assert_int_equal(t.batches, 0); /* alone: a ClientBatch of one, numbered */
    assert_int_equal(t.unnumbered, 0);
    assert_int_equal(t.stream_gaps, 0);
    mw_client_close(c);
    nn_close(pull);
}

/* A client's first captures, made before any agent listens, wait in its buffer and all arrive,
 * in order, once the agent binds: nothing is refused while the connection forms. */
static void test_captures_before_the_agent_listens_all_arrive(void **state)
{
    (void)state;
    enum { EVENTS = 1100 };
    mw_client *c = NULL;
    assert_int_equal(mw_client_open(endpoint, &c), 0);
    struct mw_feature f[12];
    char id[32];
    for (long i = 0; i < EVENTS; i++) {
        struct mw_event ev = numbered_event(f, id, sizeof id, i);
        assert_int_equal(mw_capture(c, &ev), 0);
    }
    assert_int_equal(mw_client_wait_ready(c, 20), MW_EAGAIN);
    int pull = bind_pull();
    assert_int_equal(mw_client_wait_ready(c, 5000), 0);
    struct tally t = {0};
    receive_all(pull, EVENTS, &t);
    assert_int_equal(t.messages, EVENTS);
    assert_int_equal(t.out_of_order, 0);
    assert_int_equal(t.stream_gaps, 0);
    assert_int_equal(mw_client_sent(c), EVENTS);
    assert_int_equal(mw_client_dropped(c), 0);
    assert_int_equal(mw_client_wait_ready(NULL, 0), MW_EINVAL);
    mw_client_close(c);
    nn_close(pull);
}

struct receiver {
    int pull;
    long want;
    struct tally tally;
};

static void *receive_main(void *arg)
{
    struct receiver *r = arg;
    receive_all(r->pull, r->want, &r->tally);
    return NULL;
}

static void test_close_hands_over_what_is_buffered(void **state)
{
    (void)state;
    enum { EVENTS = 5000 };
    struct receiver r = {.pull = bind_pull(), .want = EVENTS};
    struct mw_client_options opts = {.flush_interval_us = 500000}; /* linger long */
    mw_client *c = NULL;
    assert_int_equal(mw_client_open_ex(endpoint, &opts, &c), 0);
    wait_connected(c);
    struct mw_feature f[12];
    char id[32];
    for (long i = 1; i < EVENTS; i++) {
        struct mw_event ev = numbered_event(f, id, sizeof id, i);
        assert_int_equal(mw_capture(c, &ev), 0);
    }
    /* An agent reads all the time; nanomsg drops what a receiver has not taken yet when the
     * sender's connection closes, so this one reads while the client closes. */
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, receive_main, &r), 0);
    mw_client_close(c); /* no flush, no wait: close itself hands everything over */
    pthread_join(reader, NULL);
    assert_int_equal(r.tally.messages, EVENTS);
    assert_int_equal(r.tally.out_of_order, 0);
    nn_close(r.pull);
}

static void test_flush_hands_over_everything_captured_before(void **state)
{
    (void)state;
    int pull = bind_pull();
    struct mw_client_options opts = {.flush_interval_us = 10000000}; /* 10 s: only flush sends */
    mw_client *c = NULL;
    assert_int_equal(mw_client_open_ex(endpoint, &opts, &c), 0);
    wait_connected(c);
    struct mw_feature f[12];
    char id[32];
    for (long i = 1; i < 100; i++) {
        struct mw_event ev = numbered_event(f, id, sizeof id, i);
        assert_int_equal(mw_capture(c, &ev), 0);
    }
    assert_int_equal(mw_client_flush(c, 5000), 0);
    struct tally t = {0};
    receive_all(pull, 100, &t);
    assert_int_equal(t.messages, 100);
    assert_int_equal(mw_client_flush(NULL, 0), MW_EINVAL);
    mw_client_close(c);
    nn_close(pull);
}

static void test_full_buffer_refuses_and_counts_without_blocking(void **state)
{
    (void)state;
    int pull = bind_pull();                              /* connected, but nobody receives */
    struct mw_client_options opts = {.buffer_bytes = 1}; /* the minimum: 256 KiB */
    mw_client *c = NULL;
    assert_int_equal(mw_client_open_ex(endpoint, &opts, &c), 0);
    wait_connected(c);
    uint64_t dropped_before = mw_client_dropped(c); /* refusals until connected */
    struct mw_feature f[12];
    char id[32];
    long accepted = 1, refused = 0;
    /* ~400 bytes an event: the ring and nanomsg's and the kernel's buffers hold a few MiB. */
    for (long i = 1; i < 200000 && refused < 1000; i++) {
        struct mw_event ev = numbered_event(f, id, sizeof id, i);
        int rc = mw_capture(c, &ev);
        assert_true(rc == 0 || rc == MW_EAGAIN);
        accepted += rc == 0;
        refused += rc == MW_EAGAIN;
    }
    assert_int_equal(refused, 1000);
    assert_int_equal(mw_client_sent(c), (uint64_t)accepted);
    assert_int_equal(mw_client_dropped(c) - dropped_before, (uint64_t)refused);
    /* Once the agent reads again, the buffer drains and captures are accepted again. */
    struct tally t = {0};
    receive_all(pull, accepted, &t);
    assert_int_equal(t.messages, accepted);
    assert_int_equal(t.out_of_order, 0);
    struct mw_event ev = numbered_event(f, id, sizeof id, accepted);
    assert_int_equal(mw_capture(c, &ev), 0);
    mw_client_close(c);
    nn_close(pull);
}

static void test_close_gives_up_on_an_agent_that_went_away(void **state)
{
    (void)state;
    int pull = bind_pull();
    struct mw_client_options opts = {.buffer_bytes = 1, .close_timeout_ms = 200};
    mw_client *c = NULL;
    assert_int_equal(mw_client_open_ex(endpoint, &opts, &c), 0);
    wait_connected(c);
    struct mw_feature f[12];
    char id[32];
    for (long i = 1, refused = 0; i < 200000 && refused < 10; i++) {
        struct mw_event ev = numbered_event(f, id, sizeof id, i);
        refused += mw_capture(c, &ev) == MW_EAGAIN;
    }
    nn_close(pull); /* the agent goes away with the client's buffer full */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mw_client_close(c); /* bounded: the timeout, or at once once no agent is connected */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 10);
}

/* A forked child (gunicorn --preload workers) inherits the client but not its sender thread:
 * closing it there used to hang in pthread_join forever. The child's calls are refused and
 * counted instead, and its close returns at once; the parent's client is untouched. */
static void test_fork_then_close_of_an_inherited_client_does_not_hang(void **state)
{
    (void)state;
    int pull = bind_pull();
    mw_client *c = NULL;
    assert_int_equal(mw_client_open(endpoint, &c), 0);
    wait_connected(c);
    struct mw_feature f[12];
    char id[32];
    struct mw_event ev = numbered_event(f, id, sizeof id, 1);
    assert_int_equal(mw_capture(c, &ev), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        alarm(5);
        uint64_t dropped_before = mw_client_dropped(c);
        int rc_capture = mw_capture(c, &ev);
        int rc_feedback = mw_feedback(c, "churn", "v3", "req-1", "yes");
        int rc_flush = mw_client_flush(c, 100);
        int rc_ready = mw_client_wait_ready(c, 100);
        uint64_t dropped = mw_client_dropped(c) - dropped_before;
        mw_client_close(c);
        _exit(rc_capture == MW_EFORKED && rc_feedback == MW_EFORKED && rc_flush == MW_EFORKED &&
                      rc_ready == MW_EFORKED && dropped == 2
                  ? 0
                  : 1);
    }
    int status = 0;
    for (int waited_ms = 0; waited_ms < 10000; waited_ms += 10) {
        if (waitpid(child, &status, WNOHANG) == child)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(WIFSIGNALED(status) ? WTERMSIG(status) : 0, 0); /* SIGALRM: it hung */
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent's client still works. */
    struct mw_event ev2 = numbered_event(f, id, sizeof id, 2);
    assert_int_equal(mw_capture(c, &ev2), 0);
    struct tally t = {0};
    receive_all(pull, 2, &t);
    assert_int_equal(t.messages, 2);
    mw_client_close(c);
    nn_close(pull);
}

static void test_unbuffered_client_sends_one_message_per_event(void **state)
{
    (void)state;
    int pull = bind_pull();
    struct mw_client_options opts = {.unbuffered = 1};
    mw_client *c = NULL;
    assert_int_equal(mw_client_open_ex(endpoint, &opts, &c), 0);
    wait_connected(c);
    struct mw_feature f[12];
    char id[32];
    for (long i = 1; i < 50; i++) {
        struct mw_event ev = numbered_event(f, id, sizeof id, i);
        int rc;
        while ((rc = mw_capture(c, &ev)) == MW_EAGAIN)
            usleep(100);
        assert_int_equal(rc, 0);
    }
    struct tally t = {0};
    receive_all(pull, 50, &t);
    assert_int_equal(t.messages, 50);
    assert_int_equal(t.transport_messages, 50);
    assert_int_equal(t.batches, 0);
    assert_int_equal(t.unnumbered, 50); /* plain ClientMessages */
    assert_int_equal(mw_client_flush(c, 0), 0);
    mw_client_close(c);
    nn_close(pull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_no_agent_buffers_until_full_then_counts_drops, setup),
        cmocka_unit_test_setup(test_captures_before_the_agent_listens_all_arrive, setup),
        cmocka_unit_test_setup(test_bad_arguments_are_refused, setup),
        cmocka_unit_test_setup(test_oversized_event_is_refused, setup),
        cmocka_unit_test_setup(test_sent_event_decodes_to_what_was_captured, setup),
        cmocka_unit_test_setup(test_events_from_many_threads_arrive_once_in_order_and_coalesced,
                               setup),
        cmocka_unit_test_setup(test_lone_event_is_sent_without_more_traffic_or_flush, setup),
        cmocka_unit_test_setup(test_close_hands_over_what_is_buffered, setup),
        cmocka_unit_test_setup(test_flush_hands_over_everything_captured_before, setup),
        cmocka_unit_test_setup(test_full_buffer_refuses_and_counts_without_blocking, setup),
        cmocka_unit_test_setup(test_close_gives_up_on_an_agent_that_went_away, setup),
        cmocka_unit_test_setup(test_unbuffered_client_sends_one_message_per_event, setup),
        cmocka_unit_test_setup(test_fork_then_close_of_an_inherited_client_does_not_hang, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
