/*
 * intake.h — the agent's nanomsg PULL socket, polled by libuv.
 *
 * Clients PUSH one ClientMessage per nanomsg message. The socket's receive descriptor
 * (NN_RCVFD) is watched with uv_poll; each wake-up drains a bounded number of messages so the
 * loop stays responsive. Oversized messages are dropped and counted here; the rest go to the
 * message callback, which owns validation.
 */
#ifndef MW_AGENT_INTAKE_H
#define MW_AGENT_INTAKE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct mw_intake;

/* Called for each message; `data` is valid only during the call. */
typedef void (*mw_intake_message_fn)(const void *data, size_t len, void *arg);

struct mw_intake_stats {
    uint64_t received;
    uint64_t dropped_oversize;
};

/* Bind `endpoint` (creating the directory of an ipc:// path, whose socket file then gets
 * `socket_mode`) and start polling. nanomsg itself refuses messages above 4 x
 * max_message_bytes by dropping the sender's connection; between the two limits messages are
 * received and counted as oversize. On error returns MW_ETRANSPORT/MW_ESYS/MW_ENOMEM, logged
 * with the endpoint. */
int mw_intake_create(uv_loop_t *loop, const char *endpoint, size_t max_message_bytes,
                     unsigned socket_mode, mw_intake_message_fn fn, void *arg,
                     struct mw_intake **out);
/* Stop taking messages (messages still queued in the socket are received first, up to a
 * bound, so that what clients already sent is not lost). */
void mw_intake_stop(struct mw_intake *in);
/* Close the socket and free. Accepts NULL. The loop must run once more to close the poll. */
void mw_intake_destroy(struct mw_intake *in);
const struct mw_intake_stats *mw_intake_stats(const struct mw_intake *in);

#endif
