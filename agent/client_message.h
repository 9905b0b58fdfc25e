/*
 * client_message.h — one client message, from bytes to a checked ClientMessage.
 *
 * The decoding step of the agent's intake, apart from the socket and from the agent's state, so
 * that it is one function the agent and its fuzz target both call. It checks what any message
 * must carry to be counted; what depends on the agent (its clock, its counter table) is checked
 * by the agent afterwards.
 */
#ifndef MW_AGENT_CLIENT_MESSAGE_H
#define MW_AGENT_CLIENT_MESSAGE_H

#include "telemetry.pb-c.h"

#include <stddef.h>

/*
 * Decode data[0..len) with `alloc` (the message and everything in it belong to the allocator)
 * and check it: an event needs a prediction id, an event time and a valid model name and
 * version; a feedback needs a prediction id, a label and valid names. Returns 0 with *out set;
 * MW_EPARSE when the bytes are not a ClientMessage or it lacks a required field (malformed);
 * MW_EINVAL when its model name or version is not valid. *out is NULL on error.
 */
int mw_client_message_decode(ProtobufCAllocator *alloc, const void *data, size_t len,
                             Modelwatch__V1__ClientMessage **out);

#endif
