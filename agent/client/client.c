/*
 * client.c — libmodelwatch: encode a prediction or a label as one protobuf ClientMessage and
 * hand it to the local agent over a nanomsg PUSH socket, never waiting.
 *
 * The request path of the model must not notice telemetry: messages are packed into a
 * per-thread buffer (no allocation per call), sent with NN_DONTWAIT, and dropped and counted
 * when the agent is absent or its queue is full. Bad arguments are refused with MW_EINVAL.
 */
#include "modelwatch.h"

#include "alloc.h"
#include "clock.h"
#include "telemetry.pb-c.h"

#include <errno.h>
#include <math.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

struct mw_client {
    int sock;
    atomic_uint_fast64_t n_sent;
    atomic_uint_fast64_t n_dropped;
};

/* Per-thread scratch: encoded message and the protobuf structs that point into the caller's
 * data. Sized for the maxima in modelwatch.h, so a capture never allocates. */
struct encode_scratch {
    uint8_t wire[MW_MAX_MESSAGE_BYTES];
    Modelwatch__V1__Feature features[MW_MAX_FEATURES];
    Modelwatch__V1__Feature *feature_ptrs[MW_MAX_FEATURES];
};
static _Thread_local struct encode_scratch scratch;

static bool nonempty(const char *s)
{
    return s && *s;
}

int mw_client_open(const char *endpoint, mw_client **out)
{
    if (!nonempty(endpoint) || !out)
        return MW_EINVAL;
    *out = NULL;
    mw_client *c = mw_calloc(1, sizeof *c);
    if (!c)
        return MW_ENOMEM;
    int err = 0;
    c->sock = nn_socket(AF_SP, NN_PUSH);
    if (c->sock < 0) {
        err = errno;
        goto fail_free;
    }
    int zero = 0;
    int linger_ms = 100;
    nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_SNDTIMEO, &zero, sizeof zero);
    nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_LINGER, &linger_ms, sizeof linger_ms);
    if (nn_connect(c->sock, endpoint) < 0) {
        err = errno;
        goto fail_close;
    }
    atomic_init(&c->n_sent, 0);
    atomic_init(&c->n_dropped, 0);
    *out = c;
    return 0;
fail_close:
    nn_close(c->sock);
fail_free:
    mw_free(c);
    /* A malformed address or an unknown transport is the caller's mistake, not the network's. */
    return err == EINVAL || err == EPROTONOSUPPORT || err == ENAMETOOLONG ? MW_EINVAL
                                                                          : MW_ETRANSPORT;
}

void mw_client_close(mw_client *client)
{
    if (!client)
        return;
    nn_close(client->sock);
    mw_free(client);
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

/* Pack and send one message without blocking. */
static int send_message(mw_client *c, const Modelwatch__V1__ClientMessage *msg)
{
    size_t size = modelwatch__v1__client_message__get_packed_size(msg);
    if (size > sizeof scratch.wire)
        return drop(c, MW_ETOOBIG);
    modelwatch__v1__client_message__pack(msg, scratch.wire);
    if (nn_send(c->sock, scratch.wire, size, NN_DONTWAIT) < 0)
        return drop(c, errno == EAGAIN ? MW_EAGAIN : MW_ETRANSPORT);
    atomic_fetch_add(&c->n_sent, 1);
    return 0;
}

static int fill_feature(Modelwatch__V1__Feature *pb, const struct mw_feature *f)
{
    if (!nonempty(f->name))
        return MW_EINVAL;
    modelwatch__v1__feature__init(pb);
    pb->name = (char *)f->name;
    switch (f->kind) {
    case MW_FEATURE_NUMERIC:
        if (!isfinite(f->numeric))
            return MW_EINVAL;
        pb->value_case = MODELWATCH__V1__FEATURE__VALUE_NUMERIC;
        pb->numeric = f->numeric;
        return 0;
    case MW_FEATURE_CATEGORICAL:
        if (!f->categorical)
            return MW_EINVAL;
        pb->value_case = MODELWATCH__V1__FEATURE__VALUE_CATEGORICAL;
        pb->categorical = (char *)f->categorical;
        return 0;
    case MW_FEATURE_MISSING:
        pb->has_missing = 1;
        pb->missing = 1;
        return 0;
    }
    return MW_EINVAL;
}

static int fill_output(Modelwatch__V1__Output *out, const struct mw_event *ev)
{
    if (ev->has_score && !(ev->score >= 0.0 && ev->score <= 1.0))
        return MW_EINVAL;
    if (ev->has_value && !isfinite(ev->value))
        return MW_EINVAL;
    if (ev->n_scores > MW_MAX_SCORES || (ev->n_scores && !ev->scores))
        return MW_EINVAL;
    for (size_t i = 0; i < ev->n_scores; i++) {
        if (!isfinite(ev->scores[i]))
            return MW_EINVAL;
        if (ev->class_names && !ev->class_names[i])
            return MW_EINVAL;
    }
    out->predicted_class = (char *)ev->predicted_class;
    out->has_score = ev->has_score != 0;
    out->score = ev->score;
    out->n_scores = ev->n_scores;
    out->scores = (double *)ev->scores;
    out->n_class_names = ev->class_names ? ev->n_scores : 0;
    out->class_names = (char **)ev->class_names;
    out->has_value = ev->has_value != 0;
    out->value = ev->value;
    return 0;
}

int mw_capture(mw_client *client, const struct mw_event *ev)
{
    if (!client)
        return MW_EINVAL;
    if (!ev || !nonempty(ev->model) || !nonempty(ev->prediction_id) ||
        ev->n_features > MW_MAX_FEATURES || (ev->n_features && !ev->features) ||
        (ev->status != 0 && ev->status != MW_STATUS_OK && ev->status != MW_STATUS_ERROR))
        return drop(client, MW_EINVAL);

    for (size_t i = 0; i < ev->n_features; i++) {
        if (fill_feature(&scratch.features[i], &ev->features[i]))
            return drop(client, MW_EINVAL);
        scratch.feature_ptrs[i] = &scratch.features[i];
    }
    Modelwatch__V1__Output output = MODELWATCH__V1__OUTPUT__INIT;
    if (fill_output(&output, ev))
        return drop(client, MW_EINVAL);

    Modelwatch__V1__PredictionEvent pe = MODELWATCH__V1__PREDICTION_EVENT__INIT;
    pe.model = (char *)ev->model;
    pe.version = (char *)(ev->version ? ev->version : "");
    pe.prediction_id = (char *)ev->prediction_id;
    pe.has_event_time_ms = 1;
    pe.event_time_ms = ev->event_time_ms ? ev->event_time_ms : mw_clock_wall_ms();
    pe.has_latency_us = 1;
    pe.latency_us = ev->latency_us;
    pe.has_status = 1;
    pe.status = ev->status == MW_STATUS_ERROR ? MODELWATCH__V1__STATUS__STATUS_ERROR
                                              : MODELWATCH__V1__STATUS__STATUS_OK;
    pe.error_code = (char *)ev->error_code;
    pe.n_features = ev->n_features;
    pe.features = scratch.feature_ptrs;
    pe.output = &output;
    pe.has_input_tokens = ev->input_tokens != 0;
    pe.input_tokens = ev->input_tokens;
    pe.has_output_tokens = ev->output_tokens != 0;
    pe.output_tokens = ev->output_tokens;

    Modelwatch__V1__ClientMessage msg = MODELWATCH__V1__CLIENT_MESSAGE__INIT;
    msg.body_case = MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT;
    msg.event = &pe;
    return send_message(client, &msg);
}

static int send_feedback(mw_client *client, Modelwatch__V1__Feedback *fb)
{
    if (!nonempty(fb->model) || !nonempty(fb->prediction_id))
        return drop(client, MW_EINVAL);
    if (!fb->version)
        fb->version = "";
    fb->has_event_time_ms = 1;
    fb->event_time_ms = mw_clock_wall_ms();
    Modelwatch__V1__ClientMessage msg = MODELWATCH__V1__CLIENT_MESSAGE__INIT;
    msg.body_case = MODELWATCH__V1__CLIENT_MESSAGE__BODY_FEEDBACK;
    msg.feedback = fb;
    return send_message(client, &msg);
}

int mw_feedback(mw_client *client, const char *model, const char *version,
                const char *prediction_id, const char *label_class)
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
    return send_feedback(client, &fb);
}

int mw_feedback_value(mw_client *client, const char *model, const char *version,
                      const char *prediction_id, double label_value)
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
    return send_feedback(client, &fb);
}
