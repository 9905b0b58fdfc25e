/*
 * delivery.c — per-receiver queues, concurrency, retries and results (see delivery.h).
 *
 * Each receiver has a FIFO of items (encoded requests with their state) bounded by queue_max
 * notifications and queue_max_bytes of request bodies,
 * and one uv_timer that wakes dispatch() when the earliest retry falls due. dispatch() walks the
 * FIFO and sends what is due and not blocked, up to max_in_flight. Group order is kept by the
 * `blocked` flag: an item whose group already has an attempted item in the FIFO waits until
 * that one ends. Queues are short (queue_max, and at most two items per group), so finding a
 * group's items is a walk of the FIFO rather than a second index.
 *
 * Results are never reported from inside a caller's call: an ended item moves to a done list
 * that a zero-delay timer drains. Memory is freed only after the HTTP client and every timer
 * have closed.
 */
#include "delivery.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "http_client.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct rq;

struct item {
    struct item *prev, *next; /* the receiver's FIFO, or the done list (next only) */
    struct rq *rq;
    uint64_t id;
    void *user;
    char *group_key;
    enum mw_notify_status status;
    struct mw_receiver_request req;
    int attempts;
    bool in_flight;
    bool blocked;          /* an earlier, attempted item of the same group is still in the FIFO */
    uint64_t submitted_ms; /* loop time */
    int64_t submitted_wall_ms;
    uint64_t due_ms; /* loop time of the next attempt */
    long last_status;
    int last_err;
    enum mw_delivery_outcome outcome;
    char reason[160];
};

struct rq {
    struct mw_delivery *d;
    struct mw_receiver *recv;
    uint64_t timeout_ms;
    uint64_t connect_timeout_ms;
    size_t queue_max;
    uint64_t queue_max_bytes;
    size_t max_in_flight;
    uint64_t backoff_initial_ms;
    uint64_t backoff_max_ms;
    int max_attempts;
    uint64_t max_age_ms;
    uint64_t retry_after_max_ms;
    struct item *head, *tail;
    size_t n_items;
    uint64_t bytes_queued; /* request bodies in the FIFO */
    size_t n_in_flight;
    struct mw_delivery_counters counters;
    uv_timer_t timer;
};

struct mw_delivery {
    uv_loop_t *loop;
    struct mw_http_client *http;
    struct rq *rqs;
    size_t n_rqs;
    size_t n_timers_inited;
    struct mw_delivery_options opts;
    uint64_t rng;
    uint64_t next_id;
    struct item *done_head, *done_tail;
    uv_timer_t kick; /* drains the done list */
    bool closing;
    bool http_closed;
    int n_open_handles;
    mw_delivery_closed_fn closed;
    void *closed_arg;
};

const char *mw_delivery_outcome_name(enum mw_delivery_outcome outcome)
{
    switch (outcome) {
    case MW_DELIVERY_DELIVERED:
        return "delivered";
    case MW_DELIVERY_FAILED:
        return "failed";
    case MW_DELIVERY_DROPPED:
        return "dropped";
    case MW_DELIVERY_SUPERSEDED:
    default:
        return "superseded";
    }
}

/* ---- backoff ----------------------------------------------------------------------------------
 */

static uint64_t next_random(uint64_t *state)
{
    /* xorshift64*: plenty for jitter, and reproducible from a seed in tests. */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ULL;
}

uint64_t mw_delivery_backoff_ms(uint64_t initial_ms, uint64_t max_ms, int attempt,
                                int64_t retry_after_ms, uint64_t retry_after_max_ms, uint64_t *rng)
{
    uint64_t cap = initial_ms < max_ms ? initial_ms : max_ms;
    for (int i = 1; i < attempt && cap < max_ms; i++)
        cap = cap > max_ms / 2 ? max_ms : cap * 2;
    uint64_t wait = next_random(rng) % (cap + 1);
    if (retry_after_ms >= 0) {
        uint64_t asked = (uint64_t)retry_after_ms;
        if (asked > retry_after_max_ms)
            asked = retry_after_max_ms;
        if (asked > wait)
            wait = asked;
    }
    return wait;
}

/* ---- ending items -------------------------------------------------------------------------------
 */

static void dispatch(struct rq *rq);

static void unlink_item(struct rq *rq, struct item *it)
{
    if (it->prev)
        it->prev->next = it->next;
    else
        rq->head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        rq->tail = it->prev;
    it->prev = it->next = NULL;
    rq->n_items--;
    rq->bytes_queued -= it->req.body_len;
}

static void free_item(struct item *it)
{
    if (!it)
        return;
    mw_receiver_request_free(&it->req);
    mw_free(it->group_key);
    mw_free(it);
}

static void drain_done(struct mw_delivery *d)
{
    while (d->done_head) {
        struct item *it = d->done_head;
        d->done_head = it->next;
        if (!d->done_head)
            d->done_tail = NULL;
        if (d->opts.on_result) {
            struct mw_delivery_result r = {
                .id = it->id,
                .user = it->user,
                .receiver = it->rq->recv->name,
                .group_key = it->group_key,
                .status = it->status,
                .outcome = it->outcome,
                .attempts = it->attempts,
                .last_http_status = it->last_status,
                .last_err = it->last_err,
                .reason = it->reason,
                .submitted_wall_ms = it->submitted_wall_ms,
                .finished_wall_ms = mw_clock_wall_ms(),
            };
            d->opts.on_result(&r, d->opts.arg);
        }
        free_item(it);
    }
}

static void on_kick(uv_timer_t *t)
{
    drain_done(t->data);
}

/* Take `it` out of its FIFO, count it, let the next item of its group go, and queue its result. */
static void end_item(struct item *it, enum mw_delivery_outcome outcome, const char *reason_fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void end_item(struct item *it, enum mw_delivery_outcome outcome, const char *reason_fmt, ...)
{
    struct rq *rq = it->rq;
    struct mw_delivery *d = rq->d;
    bool was_attempted = it->attempts > 0;
    unlink_item(rq, it);
    it->outcome = outcome;
    va_list ap;
    va_start(ap, reason_fmt);
    vsnprintf(it->reason, sizeof it->reason, reason_fmt, ap);
    va_end(ap);
    switch (outcome) {
    case MW_DELIVERY_DELIVERED:
        rq->counters.delivered++;
        break;
    case MW_DELIVERY_FAILED:
        rq->counters.failed++;
        break;
    case MW_DELIVERY_DROPPED:
        rq->counters.dropped++;
        break;
    case MW_DELIVERY_SUPERSEDED:
        rq->counters.superseded++;
        break;
    }
    if (was_attempted) {
        for (struct item *x = rq->head; x; x = x->next) {
            if (x->blocked && strcmp(x->group_key, it->group_key) == 0) {
                x->blocked = false;
                break;
            }
        }
    }
    if (d->done_tail)
        d->done_tail->next = it;
    else
        d->done_head = it;
    d->done_tail = it;
    if (!d->closing || !d->http_closed)
        uv_timer_start(&d->kick, on_kick, 0, 0);
}

/* ---- sending
 * -------------------------------------------------------------------------------------- */

static void schedule_retry(struct item *it, int64_t retry_after_ms, const char *what)
{
    struct rq *rq = it->rq;
    struct mw_delivery *d = rq->d;
    uint64_t now = uv_now(d->loop);
    if (it->attempts >= rq->max_attempts) {
        MW_LOG_ERROR("delivery", "notification failed: out of attempts",
                     "receiver=%s attempts=%d "
                     "last=%s",
                     rq->recv->name, it->attempts, what);
        end_item(it, MW_DELIVERY_FAILED, "gave up after %d attempts (last: %s)", it->attempts,
                 what);
        return;
    }
    uint64_t wait = mw_delivery_backoff_ms(rq->backoff_initial_ms, rq->backoff_max_ms, it->attempts,
                                           retry_after_ms, rq->retry_after_max_ms, &d->rng);
    if (now + wait > it->submitted_ms + rq->max_age_ms) {
        MW_LOG_ERROR("delivery", "notification failed: too old to retry",
                     "receiver=%s attempts=%d last=%s", rq->recv->name, it->attempts, what);
        end_item(it, MW_DELIVERY_FAILED,
                 "gave up after %d attempts: the next would exceed retry.max_age (last: %s)",
                 it->attempts, what);
        return;
    }
    it->due_ms = now + wait;
    MW_LOG_WARN("delivery", "attempt failed, will retry",
                "receiver=%s attempt=%d last=%s retry_in_ms=%llu", rq->recv->name, it->attempts,
                what, (unsigned long long)wait);
}

static void on_response(const struct mw_http_client_response *resp, void *arg)
{
    struct item *it = arg;
    struct rq *rq = it->rq;
    struct mw_delivery *d = rq->d;
    rq->n_in_flight--;
    it->in_flight = false;
    it->last_status = resp->status;
    it->last_err = resp->err;
    enum mw_receiver_verdict verdict = rq->recv->ops->classify(rq->recv->ctx, resp);
    char what[96];
    if (resp->err)
        snprintf(what, sizeof what, "%s", resp->timed_out ? "timeout" : mw_err_name(resp->err));
    else
        snprintf(what, sizeof what, "HTTP_%ld", resp->status);

    if (verdict == MW_RECEIVER_DELIVERED) {
        MW_LOG_INFO("delivery", "notification delivered", "receiver=%s attempts=%d status=%ld",
                    rq->recv->name, it->attempts, resp->status);
        end_item(it, MW_DELIVERY_DELIVERED, "%s", "");
    } else if (d->closing) {
        end_item(it, MW_DELIVERY_DROPPED, "shut down during attempt %d (%s)", it->attempts, what);
    } else if (verdict == MW_RECEIVER_REJECTED) {
        /* The receiver's own words say what is wrong with the request (PagerDuty's 400 lists
         * the invalid fields); they hold no secret of ours. */
        char body[600];
        MW_LOG_ERROR("delivery", "receiver rejected notification, not retrying",
                     "receiver=%s status=%ld body=%s", rq->recv->name, resp->status,
                     mw_log_quote(resp->body, body, sizeof body));
        end_item(it, MW_DELIVERY_FAILED, "rejected with HTTP %ld", resp->status);
    } else {
        if (resp->err)
            MW_LOG_DEBUG("delivery", "transport error", "receiver=%s error=%s", rq->recv->name,
                         resp->error_text);
        schedule_retry(it, resp->retry_after_ms, what);
    }
    dispatch(rq);
}

static void send_item(struct rq *rq, struct item *it)
{
    struct mw_delivery *d = rq->d;
    if (it->attempts > 0)
        rq->counters.retried++;
    it->attempts++;
    struct mw_http_client_request req = {
        .url = it->req.url,
        .method = "POST",
        .headers = (const char *const *)it->req.headers,
        .body = it->req.body,
        .body_len = it->req.body_len,
        .timeout_ms = rq->timeout_ms,
        .connect_timeout_ms = rq->connect_timeout_ms,
    };
    int rc = mw_http_client_send(d->http, &req, on_response, it);
    if (rc) {
        it->last_status = 0;
        it->last_err = rc;
        schedule_retry(it, -1, mw_err_name(rc));
        return;
    }
    it->in_flight = true;
    rq->n_in_flight++;
}

static void on_rq_timer(uv_timer_t *t)
{
    dispatch(t->data);
}

static void dispatch(struct rq *rq)
{
    struct mw_delivery *d = rq->d;
    if (d->closing)
        return;
    uint64_t now = uv_now(d->loop);
    uint64_t next_due = UINT64_MAX;
    struct item *next;
    for (struct item *it = rq->head; it; it = next) {
        next = it->next; /* send_item may end `it` */
        if (it->in_flight || it->blocked)
            continue;
        if (it->due_ms > now) {
            if (it->due_ms < next_due)
                next_due = it->due_ms;
            continue;
        }
        if (rq->n_in_flight >= rq->max_in_flight)
            break; /* a response will dispatch again */
        send_item(rq, it);
        if (!it->in_flight && rq->head && it->due_ms > now && it->due_ms < next_due)
            next_due = it->due_ms; /* could not send: retry scheduled */
    }
    if (next_due != UINT64_MAX)
        uv_timer_start(&rq->timer, on_rq_timer, next_due - now, 0);
    else
        uv_timer_stop(&rq->timer);
}

/* ---- submit
 * ------------------------------------------------------------------------------------------- */

int mw_delivery_submit(struct mw_delivery *d, const struct mw_notify_group *n, void *user,
                       uint64_t *id)
{
    if (!d || !n || !n->receiver || !n->group_key)
        return MW_EINVAL;
    if (d->closing)
        return MW_ECLOSED;
    struct rq *rq = NULL;
    for (size_t i = 0; i < d->n_rqs && !rq; i++) {
        if (strcmp(d->rqs[i].recv->name, n->receiver) == 0)
            rq = &d->rqs[i];
    }
    if (!rq) {
        MW_LOG_ERROR("delivery", "notification for an unknown receiver", "receiver=%s",
                     n->receiver);
        return MW_ENOTFOUND;
    }
    struct item *waiting = NULL, *active = NULL;
    for (struct item *it = rq->head; it; it = it->next) {
        if (strcmp(it->group_key, n->group_key) != 0)
            continue;
        if (it->attempts == 0)
            waiting = it;
        else
            active = it;
    }
    if (!waiting && rq->n_items >= rq->queue_max) {
        rq->counters.dropped++;
        MW_LOG_WARN("delivery", "queue full, notification dropped", "receiver=%s queue_max=%zu",
                    rq->recv->name, rq->queue_max);
        return MW_EFULL;
    }
    struct item *it = mw_calloc(1, sizeof *it);
    if (!it)
        return MW_ENOMEM;
    int rc = rq->recv->ops->encode(rq->recv->ctx, n, &it->req);
    if (rc) {
        MW_LOG_ERROR("delivery", "cannot encode notification", "receiver=%s error=%s",
                     rq->recv->name, mw_err_name(rc));
        mw_free(it);
        return rc;
    }
    if (!(it->group_key = mw_strdup(n->group_key))) {
        free_item(it);
        return MW_ENOMEM;
    }
    uint64_t bytes_after =
        rq->bytes_queued - (waiting ? waiting->req.body_len : 0) + it->req.body_len;
    if (bytes_after > rq->queue_max_bytes) {
        rq->counters.dropped++;
        MW_LOG_WARN("delivery", "queue full, notification dropped",
                    "receiver=%s queue_max_bytes=%llu body_bytes=%zu", rq->recv->name,
                    (unsigned long long)rq->queue_max_bytes, it->req.body_len);
        free_item(it);
        return MW_EFULL;
    }
    if (waiting)
        end_item(waiting, MW_DELIVERY_SUPERSEDED, "replaced by a newer notification of its group");
    it->rq = rq;
    it->id = ++d->next_id;
    it->user = user;
    it->status = n->status;
    it->blocked = active != NULL;
    it->submitted_ms = uv_now(d->loop);
    it->submitted_wall_ms = mw_clock_wall_ms();
    it->due_ms = it->submitted_ms;
    it->prev = rq->tail;
    if (rq->tail)
        rq->tail->next = it;
    else
        rq->head = it;
    rq->tail = it;
    rq->n_items++;
    rq->bytes_queued += it->req.body_len;
    rq->counters.submitted++;
    if (id)
        *id = it->id;
    dispatch(rq);
    return 0;
}

/* ---- create / counters / shutdown
 * ---------------------------------------------------------------- */

size_t mw_delivery_n_receivers(const struct mw_delivery *d)
{
    return d ? d->n_rqs : 0;
}

const char *mw_delivery_receiver_name(const struct mw_delivery *d, size_t i)
{
    return d && i < d->n_rqs ? d->rqs[i].recv->name : NULL;
}

int mw_delivery_counters(const struct mw_delivery *d, size_t i, struct mw_delivery_counters *out)
{
    if (!d || i >= d->n_rqs)
        return MW_ENOTFOUND;
    *out = d->rqs[i].counters;
    out->queued = d->rqs[i].n_items;
    out->in_flight = d->rqs[i].n_in_flight;
    out->queued_bytes = d->rqs[i].bytes_queued;
    return 0;
}

static void free_delivery(struct mw_delivery *d)
{
    for (size_t i = 0; i < d->n_rqs; i++)
        mw_receiver_destroy(d->rqs[i].recv);
    mw_free(d->rqs);
    mw_free(d);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct mw_delivery *d = h->data;
    if (--d->n_open_handles > 0)
        return;
    mw_delivery_closed_fn closed = d->closed;
    void *arg = d->closed_arg;
    free_delivery(d);
    if (closed)
        closed(arg);
}

static void on_http_closed(void *arg)
{
    struct mw_delivery *d = arg;
    d->http_closed = true;
    d->http = NULL;
    drain_done(d); /* every in-flight item has ended by now */
    uv_timer_stop(&d->kick);
    uv_close((uv_handle_t *)&d->kick, on_handle_closed);
    for (size_t i = 0; i < d->n_rqs; i++) {
        uv_timer_stop(&d->rqs[i].timer);
        d->rqs[i].timer.data = d;
        uv_close((uv_handle_t *)&d->rqs[i].timer, on_handle_closed);
    }
}

void mw_delivery_shutdown(struct mw_delivery *d, uint64_t grace_ms, mw_delivery_closed_fn closed,
                          void *arg)
{
    if (!d || d->closing)
        return;
    d->closing = true;
    d->closed = closed;
    d->closed_arg = arg;
    for (size_t i = 0; i < d->n_rqs; i++) {
        struct rq *rq = &d->rqs[i];
        uv_timer_stop(&rq->timer);
        struct item *next;
        for (struct item *it = rq->head; it; it = next) {
            next = it->next;
            if (!it->in_flight)
                end_item(it, MW_DELIVERY_DROPPED, "shut down while waiting (%d attempts)",
                         it->attempts);
        }
    }
    mw_http_client_shutdown(d->http, grace_ms, on_http_closed, d);
}

int mw_delivery_create(uv_loop_t *loop, const struct mw_cfg_list *receivers,
                       const struct mw_delivery_options *opts, struct mw_delivery **out, char *err,
                       size_t errsize)
{
    *out = NULL;
    int rc = mw_receivers_config_check(receivers, err, errsize);
    if (rc)
        return rc;
    struct mw_delivery *d = mw_calloc(1, sizeof *d);
    if (!d)
        return MW_ENOMEM;
    d->loop = loop;
    if (opts)
        d->opts = *opts;
    d->rng = d->opts.seed ? d->opts.seed : (mw_clock_mono_ns() ^ ((uint64_t)getpid() << 32)) | 1u;
    size_t n = receivers ? receivers->n : 0;
    const struct mw_receiver_config *cfgs = receivers ? receivers->items : NULL;
    if (n && !(d->rqs = mw_calloc(n, sizeof *d->rqs))) {
        mw_free(d);
        return MW_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct mw_receiver_config *c = &cfgs[i];
        struct rq *rq = &d->rqs[i];
        if ((rc = mw_receiver_create(c, &rq->recv, err, errsize))) {
            free_delivery(d);
            return rc;
        }
        d->n_rqs = i + 1;
        rq->d = d;
        rq->timeout_ms = (uint64_t)c->timeout_ms;
        rq->connect_timeout_ms = (uint64_t)c->connect_timeout_ms;
        rq->queue_max = (size_t)c->queue_max;
        rq->queue_max_bytes = c->queue_max_bytes;
        rq->max_in_flight = (size_t)c->max_in_flight;
        rq->backoff_initial_ms = (uint64_t)c->retry.initial_ms;
        rq->backoff_max_ms = (uint64_t)c->retry.max_ms;
        rq->max_attempts = (int)c->retry.max_attempts;
        rq->max_age_ms = (uint64_t)c->retry.max_age_ms;
        rq->retry_after_max_ms = (uint64_t)c->retry.retry_after_max_ms;
    }
    struct mw_http_client_options http_opts = {.ca_file = d->opts.ca_file};
    if ((rc = mw_http_client_create(loop, &http_opts, &d->http))) {
        snprintf(err, errsize, "delivery: cannot create the HTTP client: %s", mw_strerror(rc));
        free_delivery(d);
        return rc;
    }
    uv_timer_init(loop, &d->kick);
    d->kick.data = d;
    for (size_t i = 0; i < d->n_rqs; i++) {
        uv_timer_init(loop, &d->rqs[i].timer);
        d->rqs[i].timer.data = &d->rqs[i];
    }
    d->n_open_handles = 1 + (int)d->n_rqs;
    *out = d;
    return 0;
}
