/*
 * intake.h — the agent's nanomsg PULL socket, polled by libuv.
 *
 * Clients PUSH one ClientMessage per nanomsg message, or a ClientBatch of several (libmodelwatch
 * coalesces; telemetry.proto says how the two are told apart). The socket's receive descriptor
 * (NN_RCVFD) is watched with uv_poll; each wake-up drains a bounded number of nanomsg messages
 * so the loop stays responsive. A ClientBatch is unwrapped here by walking its wire framing,
 * without decoding what it carries, and the callback sees each ClientMessage as if it had
 * arrived alone, pointing into the received buffer (no copy). Only a first entry that is a
 * ClientStream (libmodelwatch numbers its batches so) is decoded here, and handed to the stream
 * callback instead. Oversized client messages are
 * dropped and counted here; the rest go to the message callback, which owns validation. A
 * message that starts like a ClientBatch but whose framing is broken is handed to the callback
 * whole, as one ClientMessage, which the callback then counts as malformed: one drop for one
 * message whose boundaries cannot be trusted.
 */
#ifndef MW_AGENT_INTAKE_H
#define MW_AGENT_INTAKE_H

#include "sampling_rules.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct mw_intake;

/* Called for each client message; `data` is valid only during the call. */
typedef void (*mw_intake_message_fn)(const void *data, size_t len, void *arg);

/* Where the messages of one nanomsg message sit in their client's stream (ClientStream). */
struct mw_intake_stream {
    uint64_t client_id;
    uint64_t messages_before; /* messages the client sent before the first of these */
    uint64_t events_before;   /* of which prediction events */
};
/* Called once per nanomsg message, before its client messages: with its ClientStream, or with
 * NULL when it has none (an unbuffered or older client; a ClientStream that does not decode,
 * counted in stream_errors). `stream` is valid only during the call. */
typedef void (*mw_intake_stream_fn)(const struct mw_intake_stream *stream, void *arg);

struct mw_intake_stats {
    uint64_t received;           /* client messages, alone or inside a ClientBatch */
    uint64_t dropped_oversize;   /* of which larger than max_message_bytes */
    uint64_t transport_messages; /* nanomsg messages read */
    uint64_t client_batches;     /* of which ClientBatches unwrapped */
    uint64_t stream_errors;      /* ClientStreams that did not decode */
};

/* The framing step alone, without a socket: hand each client message of one transport message
 * to `fn` — a ClientBatch's entries one by one, pointing into `data`, when `data` is a
 * well-framed ClientBatch of at most `max_batch_bytes`; else `data` whole, as one message.
 * Returns true when `data` was unwrapped as a ClientBatch. */
bool mw_intake_split(const void *data, size_t len, size_t max_batch_bytes, mw_intake_message_fn fn,
                     void *arg);

/* Bind `endpoint` (creating the directory of an ipc:// path, whose socket file then gets
 * `socket_mode`) and start polling. `max_message_bytes` bounds each client message; a
 * ClientBatch may be as large as MW_MAX_COALESCED_BYTES (modelwatch.h) when that is larger, plus
 * MW_CLIENT_BATCH_OVERHEAD_BYTES.
 * nanomsg itself refuses messages above 4 x the larger of the two by dropping the sender's
 * connection; between the limits messages are received and counted as oversize. On error
 * returns MW_ETRANSPORT/MW_ESYS/MW_ENOMEM, logged with the endpoint. */
int mw_intake_create(uv_loop_t *loop, const char *endpoint, size_t max_message_bytes,
                     unsigned socket_mode, mw_intake_message_fn fn, void *arg,
                     struct mw_intake **out);
/* Called for each client message the intake drops itself (oversize), so that a message's
 * place in its client's stream is accounted for whatever became of it. */
typedef void (*mw_intake_dropped_fn)(const void *data, size_t len, void *arg);

/* Also tell `stream_fn` where each nanomsg message's client messages sit in their client's
 * stream, and `dropped_fn` (optional) of the messages dropped here; both get the create call's
 * `arg`. */
void mw_intake_set_stream_fns(struct mw_intake *in, mw_intake_stream_fn stream_fn,
                              mw_intake_dropped_fn dropped_fn);
/* Shutdown, first step: remove an ipc:// socket's file, so that no new client connects and
 * libmodelwatch clients hold what they have for the next agent; connected clients may still
 * send what they were sending, and it is still received. The sampling rules file goes too. */
void mw_intake_unlink(struct mw_intake *in);
/* Publish the sampling rules clients may apply before they encode (common/sampling_rules.h)
 * in the file beside an ipc:// socket, with the count line when count_bucket_ms > 0 (clients
 * may then send counts); nothing for another transport (clients there send every event whole).
 * Returns 0, or -1 with errno set (logged: clients then go on with the rules they read before,
 * or send every event whole). */
int mw_intake_publish_sampling(struct mw_intake *in, const struct mw_sampling_rule *rules,
                               size_t n, int64_t count_bucket_ms);
/* Milliseconds since a message last arrived (since creation when none did). */
uint64_t mw_intake_idle_ms(const struct mw_intake *in);
/* Stop taking messages (messages still queued in the socket are received first, up to a
 * bound, so that what clients already sent is not lost). */
void mw_intake_stop(struct mw_intake *in);
/* Close the socket and free. Accepts NULL. The loop must run once more to close the poll. */
void mw_intake_destroy(struct mw_intake *in);
const struct mw_intake_stats *mw_intake_stats(const struct mw_intake *in);

#endif
