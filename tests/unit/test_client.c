/* test_client.c — libmodelwatch: never blocks, counts drops, refuses bad arguments, and what it
 * sends decodes to exactly the event captured. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char endpoint[256];

static int setup(void **state)
{
    (void)state;
    snprintf(endpoint, sizeof endpoint, "ipc:///tmp/mw-test-client-%d.sock", (int)getpid());
    alarm(30); /* a blocking call would hang the test: fail it instead */
    return 0;
}

static struct mw_event sample_event(const struct mw_feature *f, size_t n)
{
    return (struct mw_event){.model = "churn", .version = "v3", .prediction_id = "req-1",
                             .event_time_ms = 1700000000123, .latency_us = 830,
                             .status = MW_STATUS_OK, .features = f, .n_features = n,
                             .predicted_class = "yes", .has_score = 1, .score = 0.75};
}

static void test_no_agent_returns_at_once_and_counts_drop(void **state)
{
    (void)state;
    mw_client *c = NULL;
    assert_int_equal(mw_client_open(endpoint, &c), 0);
    struct mw_feature f[] = {MW_NUMERIC("age", 42)};
    struct mw_event ev = sample_event(f, 1);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(mw_capture(c, &ev), MW_EAGAIN);
    assert_int_equal(mw_feedback(c, "churn", "v3", "req-1", "yes"), MW_EAGAIN);
    assert_int_equal(mw_client_dropped(c), 1001);
    assert_int_equal(mw_client_sent(c), 0);
    mw_client_close(c);
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
    assert_int_equal(mw_client_dropped(c), 12); /* every refused call on a client */
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
    Modelwatch__V1__ClientMessage *cm =
        modelwatch__v1__client_message__unpack(NULL, (size_t)n, msg);
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
    cm = modelwatch__v1__client_message__unpack(NULL, (size_t)n, msg);
    assert_non_null(cm);
    assert_int_equal(cm->body_case, MODELWATCH__V1__CLIENT_MESSAGE__BODY_FEEDBACK);
    assert_string_equal(cm->feedback->prediction_id, "req-1");
    assert_true(cm->feedback->label_value == 3.25);
    modelwatch__v1__client_message__free_unpacked(cm, NULL);
    nn_freemsg(msg);
    assert_int_equal(mw_client_sent(c), 2);
    mw_client_close(c);
    nn_close(pull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_no_agent_returns_at_once_and_counts_drop, setup),
        cmocka_unit_test_setup(test_bad_arguments_are_refused, setup),
        cmocka_unit_test_setup(test_oversized_event_is_refused, setup),
        cmocka_unit_test_setup(test_sent_event_decodes_to_what_was_captured, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
