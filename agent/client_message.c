/* client_message.c — decode and check one client message (see client_message.h). */
#include "client_message.h"

#include "error.h"
#include "names.h"

#include <stdbool.h>

static bool names_ok(const char *model, const char *version)
{
    return mw_model_name_valid(model) && mw_version_valid(version);
}

static int check_event(const Modelwatch__V1__PredictionEvent *ev)
{
    if (!ev->prediction_id || !*ev->prediction_id || !ev->has_event_time_ms)
        return MW_EPARSE;
    return names_ok(ev->model, ev->version) ? 0 : MW_EINVAL;
}

static int check_feedback(const Modelwatch__V1__Feedback *fb)
{
    if (!fb->prediction_id || !*fb->prediction_id ||
        fb->label_case == MODELWATCH__V1__FEEDBACK__LABEL__NOT_SET)
        return MW_EPARSE;
    return names_ok(fb->model, fb->version) ? 0 : MW_EINVAL;
}

int mw_client_message_decode(ProtobufCAllocator *alloc, const void *data, size_t len,
                             Modelwatch__V1__ClientMessage **out)
{
    *out = NULL;
    Modelwatch__V1__ClientMessage *msg = modelwatch__v1__client_message__unpack(alloc, len, data);
    if (!msg)
        return MW_EPARSE;
    int rc;
    if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT)
        rc = check_event(msg->event);
    else if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_FEEDBACK)
        rc = check_feedback(msg->feedback);
    else
        rc = MW_EPARSE;
    if (rc) {
        modelwatch__v1__client_message__free_unpacked(msg, alloc);
        return rc;
    }
    *out = msg;
    return 0;
}
