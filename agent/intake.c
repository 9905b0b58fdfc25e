/* intake.c — nanomsg PULL socket drained from the libuv loop. */
#include "intake.h"

#include "alloc.h"
#include "error.h"
#include "log.h"

#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <string.h>
#include <sys/stat.h>

/* Messages taken per wake-up before yielding to the rest of the loop. */
#define DRAIN_BATCH 4096

struct mw_intake {
    int sock;
    uv_poll_t poll;
    int polling;
    size_t max_message_bytes;
    mw_intake_message_fn fn;
    void *arg;
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

/* Receive up to `limit` messages without waiting. */
static void drain(struct mw_intake *in, int limit)
{
    for (int i = 0; i < limit; i++) {
        void *msg = NULL;
        int n = nn_recv(in->sock, &msg, NN_MSG, NN_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                MW_LOG_WARN("intake", "receive failed", "error=%s", nn_strerror(errno));
            return;
        }
        in->stats.received++;
        if ((size_t)n > in->max_message_bytes)
            in->stats.dropped_oversize++;
        else
            in->fn(msg, (size_t)n, in->arg);
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
    in->fn = fn;
    in->arg = arg;
    ensure_ipc_dir(endpoint);
    in->sock = nn_socket(AF_SP, NN_PULL);
    /* nanomsg drops the connection of a peer that exceeds NN_RCVMAXSIZE; keep that limit well
     * above ours so an oversized message is counted rather than silently cutting a client. */
    int hard_max = (int)(max_message_bytes * 4 < (1u << 30) ? max_message_bytes * 4 : (1u << 30));
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
        mw_free(in);
        return MW_ETRANSPORT;
    }
    if (set_socket_mode(endpoint, socket_mode) != 0) {
        nn_close(in->sock);
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
