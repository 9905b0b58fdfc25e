/*
 * modelwatch.h — the public C API of libmodelwatch, the capture library a model server links.
 *
 * A model server opens one client per process, then calls mw_capture() once per prediction and
 * mw_feedback() when a ground-truth label arrives. Each call encodes one protobuf message in the
 * calling thread, straight into the client's bounded buffer, and returns; a background thread
 * of the client coalesces what is buffered into few nanomsg messages (16 KiB each by default,
 * sent at most about a millisecond after the first of them was captured) and hands them to the
 * local modelwatch-agent. While no agent is connected yet (right after open, or while the agent
 * restarts) messages wait in the buffer for it; when the buffer is full (the agent absent for
 * long, or too slow) the message is dropped and counted (mw_client_dropped()), and the model's
 * request goes on unharmed. Calls never block, never allocate beyond a fixed per-thread buffer,
 * and return a negative MW_E* code on bad arguments instead of crashing. Each nanomsg message
 * says where it sits in the client's stream, so the agent counts what a connection lost on the
 * way (an agent killed with messages in flight) as lost in transit.
 *
 * All functions are thread-safe; one client may be shared by every thread of the process. Open
 * the client after fork(): a child does not inherit the client's background thread, so in a
 * child every call on an inherited client returns MW_EFORKED (counted as a drop) and
 * mw_client_close() only frees the child's copy.
 *
 *     mw_client *c;
 *     if (mw_client_open("ipc:///run/modelwatch/agent.sock", &c) == 0) {
 *         struct mw_feature f[] = {MW_NUMERIC("age", 42), MW_CATEGORICAL("country", "fr")};
 *         struct mw_event ev = {.model = "churn", .version = "v3", .prediction_id = "req-17",
 *                               .latency_us = 830, .status = MW_STATUS_OK,
 *                               .features = f, .n_features = 2,
 *                               .has_score = 1, .score = 0.91};
 *         mw_capture(c, &ev);
 *         mw_client_close(c);  // hands over what is still buffered, waiting at most 1 s
 *     }
 */
#ifndef MODELWATCH_H
#define MODELWATCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MW_EXTERN __attribute__((visibility("default")))
#else
#define MW_EXTERN
#endif

/* Every modelwatch function returns 0 or one of these negative codes. (The server binaries
 * use further codes of their own, in the same numbering; mw_strerror knows them all.) */
#define MW_ERRNO_MAP(XX)                                                                           \
    XX(EINVAL, -1, "invalid argument")                                                             \
    XX(ENOMEM, -2, "out of memory")                                                                \
    XX(EFULL, -3, "queue or buffer full")                                                          \
    XX(EAGAIN, -4, "resource temporarily unavailable")                                             \
    XX(ETOOBIG, -6, "message too large")                                                           \
    XX(ETRANSPORT, -13, "transport error")                                                         \
    XX(EFORKED, -17, "client inherited across fork(); open one in this process")

enum mw_errno {
#define MW__ERRNO_ENUM(name, value, msg) MW_##name = (value),
    MW_ERRNO_MAP(MW__ERRNO_ENUM)
#undef MW__ERRNO_ENUM
};

/* Human-readable text for an MW_E* code (or "unknown error"). Never NULL; static storage. */
MW_EXTERN const char *mw_strerror(int err);
/* Symbolic name of an MW_E* code ("MW_EFULL"), or "MW_UNKNOWN". Static storage. */
MW_EXTERN const char *mw_err_name(int err);

typedef struct mw_client mw_client;

enum mw_status {
    MW_STATUS_OK = 1,
    MW_STATUS_ERROR = 2,
};

enum mw_feature_kind {
    MW_FEATURE_NUMERIC = 1,
    MW_FEATURE_CATEGORICAL = 2,
    MW_FEATURE_MISSING = 3, /* the model received no value for this feature */
};

/* One input feature. Strings are borrowed for the duration of the call only. */
struct mw_feature {
    const char *name;
    enum mw_feature_kind kind;
    double numeric;          /* kind == MW_FEATURE_NUMERIC; must be finite */
    const char *categorical; /* kind == MW_FEATURE_CATEGORICAL */
};

#define MW_NUMERIC(n, v)                                                                           \
    {                                                                                              \
        .name = (n), .kind = MW_FEATURE_NUMERIC, .numeric = (v)                                    \
    }
#define MW_CATEGORICAL(n, v)                                                                       \
    {                                                                                              \
        .name = (n), .kind = MW_FEATURE_CATEGORICAL, .categorical = (v)                            \
    }
#define MW_MISSING(n)                                                                              \
    {                                                                                              \
        .name = (n), .kind = MW_FEATURE_MISSING                                                    \
    }

/* One prediction. Only model and prediction_id are required; every pointer is borrowed for the
 * duration of the call only. */
struct mw_event {
    const char *model;         /* required, non-empty */
    const char *version;       /* NULL or "" means unversioned */
    const char *prediction_id; /* required, non-empty; joins the later feedback */
    int64_t event_time_ms;     /* Unix epoch ms; 0 means now */
    uint64_t latency_us;
    enum mw_status status;  /* 0 is taken as MW_STATUS_OK */
    const char *error_code; /* when status == MW_STATUS_ERROR, e.g. "timeout" */
    const struct mw_feature *features;
    size_t n_features;           /* at most MW_MAX_FEATURES */
    const char *predicted_class; /* classification output, or NULL */
    int has_score;               /* score of the positive / predicted class, in [0, 1] */
    double score;
    const double *scores;           /* per-class scores, n_scores of them, or NULL */
    const char *const *class_names; /* parallel to scores, or NULL */
    size_t n_scores;
    int has_value; /* regression output */
    double value;
    uint64_t input_tokens;
    uint64_t output_tokens;
};

#define MW_MAX_FEATURES 512
#define MW_MAX_SCORES 1024
/* Largest encoded message the client sends; larger events are refused with MW_ETOOBIG. */
#define MW_MAX_MESSAGE_BYTES 65536
/* Largest ClientBatch (several messages in one nanomsg message, see proto/telemetry.proto) a
 * client may send. Agents accept ClientBatches up to this size whatever their
 * intake.max_message_bytes, which still bounds each message inside. */
#define MW_MAX_COALESCED_BYTES 65536
/* Room a ClientBatch takes besides that: its ClientStream, and the framing of a message that goes
 * alone. Agents accept ClientBatches up to MW_MAX_COALESCED_BYTES + this. */
#define MW_CLIENT_BATCH_OVERHEAD_BYTES 64

/* Tuning of mw_client_open_ex(). Zero-initialise it; a zero field takes its default. */
struct mw_client_options {
    /* Size of the client's buffer of encoded messages waiting for the background thread:
     * default 4 MiB, at least 256 KiB, rounded up to a power of two. Allocated once, at open. */
    size_t buffer_bytes;
    /* Size of the nanomsg messages the background thread sends: as many buffered messages as
     * fit, default 16 KiB, at most MW_MAX_COALESCED_BYTES. (A message larger than this goes
     * alone.) */
    size_t batch_bytes;
    /* Longest a captured message waits for company before it is sent: default 1000 us. As
     * soon as batch_bytes are waiting, they are sent. */
    unsigned flush_interval_us;
    /* Longest mw_client_close() waits for the agent to take what is buffered: default 1000 ms.
     * Close does not wait while no agent is connected (what is buffered is then dropped,
     * counted). */
    unsigned close_timeout_ms;
    /* Nonzero: no buffer and no background thread; each call sends its own nanomsg message
     * from the calling thread with NN_DONTWAIT (how libmodelwatch worked before it
     * coalesced; it costs the agent about twice the CPU per event, see bench/README.md). Such
     * a client refuses calls (MW_EAGAIN) until it is connected, and its messages are not
     * numbered, so the agent cannot count what is lost in transit from it. */
    int unbuffered;
};

/*
 * Open a client that sends to the agent at `endpoint` (a nanomsg address, usually
 * "ipc:///run/modelwatch/agent.sock"). Succeeds whether or not an agent listens yet; the
 * connection is made and remade in the background, and what is captured meanwhile waits in the
 * buffer (mw_client_wait_ready() waits for the connection). Allocates the client's buffer and
 * starts its background thread (should the thread not start, the client works unbuffered). On
 * success *out owns the client: release it with mw_client_close(). Returns 0, MW_EINVAL, MW_ENOMEM
 * or MW_ETRANSPORT.
 */
MW_EXTERN int mw_client_open(const char *endpoint, mw_client **out);
/* mw_client_open() with tuning; `options` may be NULL (all defaults) and is only read during
 * the call. Same returns. */
MW_EXTERN int mw_client_open_ex(const char *endpoint, const struct mw_client_options *options,
                                mw_client **out);

/*
 * Close the client and free it. Accepts NULL. Messages still buffered are handed to the agent
 * first, waiting at most options.close_timeout_ms (not at all while no agent is connected);
 * what cannot be handed over is counted in mw_client_dropped(). No other thread may use the
 * client during or after the call.
 */
MW_EXTERN void mw_client_close(mw_client *client);

/* A client's counters (mw_client_sent(), mw_client_dropped()). */
struct mw_client_counts {
    uint64_t sent;
    uint64_t dropped;
};

/* mw_client_close() that stores the client's final counters in *counts (when not NULL; zeroes
 * for a NULL client), the messages close itself could not hand over included. */
MW_EXTERN void mw_client_close_counted(mw_client *client, struct mw_client_counts *counts);

/*
 * Hand every message captured before the call to the transport, waiting at most `timeout_ms`.
 * This call blocks (it is for tests, benchmarks and orderly shutdowns, not for the request
 * path). Returns 0 when everything was handed over, MW_EAGAIN when the time ran out (the
 * messages stay buffered), MW_EINVAL for NULL, MW_EFORKED for a client inherited across
 * fork(). A no-op for an unbuffered client.
 */
MW_EXTERN int mw_client_flush(mw_client *client, unsigned timeout_ms);

/*
 * Wait until the client is connected to an agent, at most `timeout_ms`. Blocks (for start-up
 * and tests, not for the request path: captures need not wait, they are buffered). Returns 0
 * when connected, MW_EAGAIN when the time ran out, MW_EINVAL for NULL, MW_EFORKED for a client
 * inherited across fork().
 */
MW_EXTERN int mw_client_wait_ready(mw_client *client, unsigned timeout_ms);

/*
 * Capture one prediction. Never blocks. Returns 0 when the message was accepted (it reaches the
 * agent within about options.flush_interval_us once one is connected). A buffered client
 * follows the sampling rules its agent publishes beside an ipc:// socket: a prediction whose
 * payload the rate leaves out is counted in the client's own exact counters, sent with its
 * next batch, or sent without its features and output; either way the agent counts it, and
 * mw_client_flush() hands its counters over too. MW_EINVAL for bad
 * arguments (NULL, empty names, non-finite numbers, too many features); MW_ETOOBIG when the
 * encoded event exceeds MW_MAX_MESSAGE_BYTES; MW_EAGAIN when the client's buffer is full (or,
 * unbuffered, no agent is connected), in which case the event is dropped and counted;
 * MW_EFORKED in a child process that inherited the client (open a new client there).
 */
MW_EXTERN int mw_capture(mw_client *client, const struct mw_event *event);

/*
 * Report the ground-truth label of an earlier prediction: a class (mw_feedback) or a value
 * (mw_feedback_value). `version` may be NULL. The label's event time is now. Same contract as
 * mw_capture().
 */
MW_EXTERN int mw_feedback(mw_client *client, const char *model, const char *version,
                          const char *prediction_id, const char *label_class);
MW_EXTERN int mw_feedback_value(mw_client *client, const char *model, const char *version,
                                const char *prediction_id, double label_value);

/* Details of a label for mw_feedback_ex() and mw_feedback_value_ex(). Zero-initialise it; a
 * zero field takes its default. */
struct mw_feedback_options {
    /* When the ground truth became known, Unix epoch ms; 0 means now. The aggregator measures
     * a label's delay from its prediction's event time to this (label coverage and delay). */
    int64_t event_time_ms;
};

/* mw_feedback() and mw_feedback_value() with options; `options` may be NULL (all defaults) and
 * is only read during the call. MW_EINVAL also for a negative event_time_ms. */
MW_EXTERN int mw_feedback_ex(mw_client *client, const char *model, const char *version,
                             const char *prediction_id, const char *label_class,
                             const struct mw_feedback_options *options);
MW_EXTERN int mw_feedback_value_ex(mw_client *client, const char *model, const char *version,
                                   const char *prediction_id, double label_value,
                                   const struct mw_feedback_options *options);

/* Number of messages dropped so far: refused because the buffer was full (unbuffered: no agent
 * was connected) or the message was invalid, plus messages accepted but still buffered when
 * mw_client_close() gave up on the agent. Returns 0 for NULL. */
MW_EXTERN uint64_t mw_client_dropped(const mw_client *client);

/* Number of messages accepted so far (calls that returned 0). Returns 0 for NULL. */
MW_EXTERN uint64_t mw_client_sent(const mw_client *client);

#ifdef __cplusplus
}
#endif

#endif /* MODELWATCH_H */
