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

#include <stdbool.h>
#include <stddef.h>

/*
 * Decode data[0..len) with `alloc` (the message and everything in it belong to the allocator)
 * and check it: an event needs a prediction id, an event time and a valid model name and
 * version; a feedback needs a prediction id, a label and valid names; counts need valid names,
 * one aligned bucket, at least one event, and error and latency counts that add up to it. Returns 0 with *out set;
 * MW_EPARSE when the bytes are not a ClientMessage or it lacks a required field (malformed);
 * MW_EINVAL when its model name or version is not valid. *out is NULL on error.
 */
int mw_client_message_decode(ProtobufCAllocator *alloc, const void *data, size_t len,
                             Modelwatch__V1__ClientMessage **out);

/*
 * mw_client_message_decode without decoding an event's payload. For an event, *out holds what
 * the agent counts and samples by (model, version, prediction_id, event time, latency, status,
 * error code, tokens: the values protobuf-c gives them) and no features and no output; they are
 * skipped by their length, not decoded, so a message whose features or output protobuf-c would
 * refuse may pass here: decode the event whole (mw_client_message_decode) before its payload is
 * used or shipped. Anything else (a feedback, or an event this reader cannot take) is decoded
 * whole. *whole tells which: a head-only event is one allocation from `alloc`, released with
 * alloc->free(alloc->allocator_data, *out), not with free_unpacked.
 *
 * Every message mw_client_message_decode accepts is accepted here with the same result code;
 * the fuzz target client_message checks that the fields agree.
 */
int mw_client_message_decode_head(ProtobufCAllocator *alloc, const void *data, size_t len,
                                  Modelwatch__V1__ClientMessage **out, bool *whole);

/*
 * Whether the event message data[0..len) would decode whole (mw_client_message_decode), told
 * without decoding it: every field of the message, of each event in it and of their features
 * and output reads, and each known field has the wire type protobuf-c needs. true means
 * protobuf-c takes the message (the fuzz target client_message checks that); false means only
 * that this check cannot tell (a feedback in the message, a field of the wrong type): decode it
 * whole to know.
 */
bool mw_client_message_event_payload_ok(const void *data, size_t len);

#endif
