/*
 * event_wire.h — a prediction event, written as the ClientMessage mw_capture() sends, without
 * protobuf-c.
 *
 * Sizing and packing the message through protobuf-c's generic, descriptor-driven code was most
 * of mw_capture's cost (~9,500 of ~10,300 instructions for loadgen's event). These functions
 * write the same bytes protobuf-c's pack writes for the message mw_capture describes, field by
 * field in field-number order (proto/telemetry.proto), sizes first: test_client checks them
 * byte for byte against protobuf-c over events of every shape.
 *
 * The event must have been checked as mw_capture checks it (names present, values finite,
 * class names present for every score); nothing is checked here.
 */
#ifndef MW_CLIENT_EVENT_WIRE_H
#define MW_CLIENT_EVENT_WIRE_H

#include "modelwatch.h"
#include "varint.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What mw_event_wire_size computes for mw_event_wire_write. */
struct mw_event_wire {
    const struct mw_event *ev;
    const char *version; /* ev->version, or "" */
    int64_t event_time_ms;
    size_t event_bytes;  /* the PredictionEvent */
    size_t output_bytes; /* its Output */
    size_t total_bytes;  /* the ClientMessage */
    bool payload_omitted; /* head only: no features, no output, payload_omitted = true */
};

/* Size `ev` (with its event time resolved to `event_time_ms`) as a ClientMessage; returns the
 * byte count, also in w->total_bytes. With `payload_omitted` the message is the event's head
 * (the fields the agent counts) and PredictionEvent.payload_omitted, as protobuf-c packs an
 * event without features and output. */
size_t mw_event_wire_size(const struct mw_event *ev, int64_t event_time_ms, bool payload_omitted,
                          struct mw_event_wire *w);

/* Write the message sized by mw_event_wire_size to out[0..w->total_bytes). */
void mw_event_wire_write(const struct mw_event_wire *w, uint8_t *out);

#endif
