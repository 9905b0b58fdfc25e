/* redis_uv.c — hiredis event hooks on a uv_poll handle, errors included. */
#include "redis_uv.h"

#include "alloc.h"
#include "error.h"

struct redis_uv {
    redisAsyncContext *context; /* NULL once hiredis has cleaned up */
    uv_poll_t handle;
    int events;
    uint64_t waiting_since_ms; /* loop time replies became awaited with nothing read; 0: none */
};

static void on_poll(uv_poll_t *handle, int status, int events)
{
    struct redis_uv *p = handle->data;
    if (status < 0) {
        /* libuv stopped the poll: let hiredis read the socket error and fail or close. */
        if (p->context && !(p->context->c.flags & REDIS_CONNECTED))
            redisAsyncHandleWrite(p->context);
        else if (p->context)
            redisAsyncHandleRead(p->context);
        return;
    }
    if (p->context && (events & UV_READABLE)) {
        redisAsyncHandleRead(p->context);
        /* Something came: the wait for what is still pending starts over. */
        p->waiting_since_ms = p->context && p->context->replies.head ? uv_now(handle->loop) : 0;
    }
    if (p->context && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->context);
}

static void update(struct redis_uv *p)
{
    if (p->events)
        uv_poll_start(&p->handle, p->events, on_poll);
    else
        uv_poll_stop(&p->handle);
}

static void add_read(void *data)
{
    struct redis_uv *p = data;
    p->events |= UV_READABLE;
    update(p);
}

static void del_read(void *data)
{
    struct redis_uv *p = data;
    p->events &= ~UV_READABLE;
    update(p);
}

static void add_write(void *data)
{
    struct redis_uv *p = data;
    if (!p->waiting_since_ms) /* hiredis asks to write once per command it queues */
        p->waiting_since_ms = uv_now(p->handle.loop);
    p->events |= UV_WRITABLE;
    update(p);
}

static void del_write(void *data)
{
    struct redis_uv *p = data;
    p->events &= ~UV_WRITABLE;
    update(p);
}

static void on_closed(uv_handle_t *handle)
{
    mw_free(handle->data);
}

static void cleanup(void *data)
{
    struct redis_uv *p = data;
    p->context = NULL;
    uv_close((uv_handle_t *)&p->handle, on_closed);
}

uint64_t mw_redis_uv_waiting_ms(const redisAsyncContext *ac, uint64_t now_ms)
{
    const struct redis_uv *p = ac->ev.data;
    if (!p || !ac->replies.head || !p->waiting_since_ms || now_ms < p->waiting_since_ms)
        return 0;
    return now_ms - p->waiting_since_ms;
}

int mw_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data)
        return MW_EINVAL;
    struct redis_uv *p = mw_calloc(1, sizeof *p);
    if (!p)
        return MW_ENOMEM;
    if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
        mw_free(p);
        return MW_ESYS;
    }
    p->handle.data = p;
    p->context = ac;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = p;
    return 0;
}
