/* intake.c — nanomsg PULL socket drained from the libuv loop; ClientBatches unwrapped, their
 * ClientStream handed on. */
#include "intake.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "log.h"
#include "modelwatch.h"
#include "telemetry.pb-c.h"

#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Client messages handled per wake-up before yielding to the rest of the loop. */
#define DRAIN_BATCH 4096
/* Key byte of ClientBatch.messages (field 15, wire type 2); see telemetry.proto. */
#define CLIENT_BATCH_TAG 0x7a
/* First byte of a ClientMessage whose body is a ClientStream (field 3, wire type 2). */
#define CLIENT_MESSAGE_STREAM_KEY 0x1a

struct mw_intake {
    int sock;
    uv_poll_t poll;
    int polling;
    size_t max_message_bytes;
    size_t max_batch_bytes;
    mw_intake_message_fn fn;
    mw_intake_stream_fn stream_fn;
    mw_intake_dropped_fn dropped_fn;
    void *arg;
    char *ipc_path;           /* the socket file of an ipc:// endpoint, else NULL */
    uint64_t last_message_ms; /* monotonic */
    struct mw_intake_stats stats;
};

/* Create the directory an ipc:// endpoint lives in, so a fresh pod needs no init step. */
static void ensure_ipc_dir(const char *endpoint)
{
    const char *prefix = "ipc://";
    if (strncmp(endpoint, prefix, strlen(prefix)) != 0)
        return;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", endpoint + strlen(prefix));
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0755);
            *p = '/';
        }
    }
    mkdir(dir, 0750);
}

/* Read a varint at p[*i..n); advances *i. Returns false when truncated or over 64 bits. */
static bool read_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *i < n; shift += 7) {
        uint8_t b = p[(*i)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* True when p[0..n) is, from first byte to last, a sequence of ClientBatch.messages entries
 * (key 0x7a, varint length, that many bytes). Nothing inside an entry is looked at. */
static bool is_client_batch(const uint8_t *p, size_t n)
{
    size_t i = 0;
    if (n == 0)
        return false;
    while (i < n) {
        uint64_t len = 0;
        if (p[i++] != CLIENT_BATCH_TAG || !read_varint(p, n, &i, &len) || len > n - i)
            return false;
        i += (size_t)len;
    }
    return true;
}

/* Decode the ClientStream of a ClientMessage into `out`; false when it does not decode, holds
 * something else, or names no client. */
static bool decode_stream(const uint8_t *data, size_t len, struct mw_intake_stream *out)
{
    Modelwatch__V1__ClientMessage *pb = modelwatch__v1__client_message__unpack(NULL, len, data);
    const Modelwatch__V1__ClientStream *st =
        pb && pb->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_STREAM ? pb->stream : NULL;
    bool ok = st && st->has_client_id && st->has_messages_before && st->has_events_before &&
              st->events_before <= st->messages_before;
    if (ok)
        *out = (struct mw_intake_stream){.client_id = st->client_id,
                                         .messages_before = st->messages_before,
                                         .events_before = st->events_before};
    modelwatch__v1__client_message__free_unpacked(pb, NULL);
    return ok;
}

bool mw_intake_split(const void *data, size_t len, size_t max_batch_bytes, mw_intake_message_fn fn,
                     void *arg)
{
    const uint8_t *p = data;
    if (len > max_batch_bytes || !is_client_batch(p, len)) {
        fn(p, len, arg);
        return false;
    }
    for (size_t i = 0; i < len;) {
        uint64_t entry_len = 0;
        i++; /* the key byte, checked by is_client_batch */
        read_varint(p, len, &i, &entry_len);
        fn(p + i, (size_t)entry_len, arg);
        i += (size_t)entry_len;
    }
    return true;
}

/* One client message: counted, refused when oversized, else handed to the callback. */
static void deliver(struct mw_intake *in, const uint8_t *data, size_t len)
{
    in->stats.received++;
    if (len > in->max_message_bytes) {
        in->stats.dropped_oversize++;
        if (in->dropped_fn)
            in->dropped_fn(data, len, in->arg);
    } else
        in->fn(data, len, in->arg);
}

/* Tell the stream callback where the next messages sit (NULL: nowhere known). */
static void announce_stream(struct mw_intake *in, const struct mw_intake_stream *stream)
{
    if (in->stream_fn)
        in->stream_fn(stream, in->arg);
}

/* The ClientStream that may open a ClientBatch whose first entry is data[0..len): announced
 * when there is one (true: the entry is consumed), else NULL is (false). */
static bool take_stream(struct mw_intake *in, const uint8_t *data, size_t len)
{
    if (len == 0 || data[0] != CLIENT_MESSAGE_STREAM_KEY) {
        announce_stream(in, NULL);
        return false;
    }
    struct mw_intake_stream stream;
    bool ok = decode_stream(data, len, &stream);
    in->stats.stream_errors += !ok;
    announce_stream(in, ok ? &stream : NULL);
    return true;
}

/* One nanomsg message: a ClientBatch's stream, then its entries one by one, or else the
 * message itself. */
/* The entries of one ClientBatch: the first may be its client's ClientStream. */
struct batch_entries {
    struct mw_intake *in;
    size_t index;
};

static void deliver_entry(const void *data, size_t len, void *arg)
{
    struct batch_entries *b = arg;
    if (b->index++ > 0 || !take_stream(b->in, data, len))
        deliver(b->in, data, len);
}

static void deliver_transport_message(struct mw_intake *in, const uint8_t *data, size_t len)
{
    in->stats.transport_messages++;
    if (len <= in->max_batch_bytes && is_client_batch(data, len)) {
        in->stats.client_batches++;
        struct batch_entries b = {in, 0};
        mw_intake_split(data, len, in->max_batch_bytes, deliver_entry, &b);
        return;
    }
    announce_stream(in, NULL);
    deliver(in, data, len);
}

/* Receive without waiting until `limit` client messages were handled (a ClientBatch is taken
 * whole, so a few more may be) or nothing is left. */
static void drain(struct mw_intake *in, uint64_t limit)
{
    const uint64_t stop_at = in->stats.received + limit;
    while (in->stats.received < stop_at) {
        void *msg = NULL;
        int n = nn_recv(in->sock, &msg, NN_MSG, NN_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                MW_LOG_WARN("intake", "receive failed", "error=%s", nn_strerror(errno));
            return;
        }
        in->last_message_ms = mw_clock_mono_ms();
        deliver_transport_message(in, msg, (size_t)n);
        nn_freemsg(msg);
    }
}

static void on_readable(uv_poll_t *handle, int status, int events)
{
    struct mw_intake *in = handle->data;
    (void)events;
    if (status < 0) {
        MW_LOG_WARN("intake", "poll failed", "error=%s", uv_strerror(status));
        return;
    }
    drain(in, DRAIN_BATCH);
}

/* Give an ipc:// socket file its configured mode: who may send events to this agent. */
static int set_socket_mode(const char *endpoint, unsigned mode)
{
    const char *prefix = "ipc://";
    if (strncmp(endpoint, prefix, strlen(prefix)) != 0)
        return 0;
    const char *path = endpoint + strlen(prefix);
    if (chmod(path, (mode_t)mode) != 0) {
        MW_LOG_ERROR("intake", "cannot set the socket's mode", "path=%s mode=%04o error=\"%s\"",
                     path, mode, strerror(errno));
        return MW_ESYS;
    }
    return 0;
}

int mw_intake_create(uv_loop_t *loop, const char *endpoint, size_t max_message_bytes,
                     unsigned socket_mode, mw_intake_message_fn fn, void *arg,
                     struct mw_intake **out)
{
    struct mw_intake *in = mw_calloc(1, sizeof *in);
    if (!in)
        return MW_ENOMEM;
    in->max_message_bytes = max_message_bytes;
    in->max_batch_bytes =
        (max_message_bytes > MW_MAX_COALESCED_BYTES ? max_message_bytes : MW_MAX_COALESCED_BYTES) +
        MW_CLIENT_BATCH_OVERHEAD_BYTES;
    in->fn = fn;
    in->arg = arg;
    in->last_message_ms = mw_clock_mono_ms();
    if (strncmp(endpoint, "ipc://", 6) == 0 && !(in->ipc_path = mw_strdup(endpoint + 6))) {
        mw_free(in);
        return MW_ENOMEM;
    }
    ensure_ipc_dir(endpoint);
    in->sock = nn_socket(AF_SP, NN_PULL);
    /* nanomsg drops the connection of a peer that exceeds NN_RCVMAXSIZE; keep that limit well
     * above ours so an oversized message is counted rather than silently cutting a client. */
    size_t largest = in->max_batch_bytes;
    int hard_max = (int)(largest * 4 < (1u << 30) ? largest * 4 : (1u << 30));
    int fd = -1;
    size_t fd_size = sizeof fd;
    if (in->sock < 0 ||
        nn_setsockopt(in->sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &hard_max, sizeof hard_max) < 0 ||
        nn_bind(in->sock, endpoint) < 0 ||
        nn_getsockopt(in->sock, NN_SOL_SOCKET, NN_RCVFD, &fd, &fd_size) < 0) {
        MW_LOG_ERROR("intake", "cannot listen", "endpoint=%s error=%s", endpoint,
                     nn_strerror(errno));
        if (in->sock >= 0)
            nn_close(in->sock);
        mw_free(in->ipc_path);
        mw_free(in);
        return MW_ETRANSPORT;
    }
    if (set_socket_mode(endpoint, socket_mode) != 0) {
        nn_close(in->sock);
        mw_free(in->ipc_path);
        mw_free(in);
        return MW_ESYS;
    }
    uv_poll_init(loop, &in->poll, fd);
    in->poll.data = in;
    uv_poll_start(&in->poll, UV_READABLE, on_readable);
    in->polling = 1;
    MW_LOG_INFO("intake", "listening", "endpoint=%s max_message_bytes=%zu", endpoint,
                max_message_bytes);
    *out = in;
    return 0;
}

void mw_intake_set_stream_fns(struct mw_intake *in, mw_intake_stream_fn stream_fn,
                              mw_intake_dropped_fn dropped_fn)
{
    in->stream_fn = stream_fn;
    in->dropped_fn = dropped_fn;
}

/* "<socket path>.sampling" into out[0..size); false when it does not fit. */
static bool sampling_path(const struct mw_intake *in, char *out, size_t size)
{
    return (size_t)snprintf(out, size, "%s%s", in->ipc_path, MW_SAMPLING_RULES_SUFFIX) < size;
}

void mw_intake_unlink(struct mw_intake *in)
{
    if (!in || !in->ipc_path)
        return;
    if (unlink(in->ipc_path) != 0 && errno != ENOENT)
        MW_LOG_WARN("intake", "cannot remove the socket file", "path=%s error=\"%s\"", in->ipc_path,
                    strerror(errno));
    char path[4096];
    if (sampling_path(in, path, sizeof path) && unlink(path) != 0 && errno != ENOENT)
        MW_LOG_WARN("intake", "cannot remove the sampling rules file", "path=%s error=\"%s\"",
                    path, strerror(errno));
}

int mw_intake_publish_sampling(struct mw_intake *in, const struct mw_sampling_rule *rules,
                               size_t n, int64_t count_bucket_ms)
{
    if (!in || !in->ipc_path)
        return 0;
    char path[4096];
    if (!sampling_path(in, path, sizeof path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (mw_sampling_rules_write(path, rules, n, count_bucket_ms) != 0) {
        int saved = errno;
        MW_LOG_WARN("intake", "cannot publish the sampling rules to clients",
                    "path=%s error=\"%s\"", path, strerror(saved));
        errno = saved;
        return -1;
    }
    return 0;
}

uint64_t mw_intake_idle_ms(const struct mw_intake *in)
{
    return mw_clock_mono_ms() - in->last_message_ms;
}

void mw_intake_stop(struct mw_intake *in)
{
    if (!in || !in->polling)
        return;
    uv_poll_stop(&in->poll);
    in->polling = 0;
    drain(in, 1 << 20);
}

static void on_poll_closed(uv_handle_t *handle)
{
    struct mw_intake *in = handle->data;
    nn_close(in->sock);
    mw_free(in->ipc_path);
    mw_free(in);
}

void mw_intake_destroy(struct mw_intake *in)
{
    if (!in)
        return;
    uv_close((uv_handle_t *)&in->poll, on_poll_closed);
}

const struct mw_intake_stats *mw_intake_stats(const struct mw_intake *in)
{
    return &in->stats;
}
