/*
 * http_client.c — libcurl's multi interface driven by a libuv loop.
 *
 * curl owns the connections; we own one uv_poll per socket curl asks us to watch (created on its
 * first CURL_POLL_* and closed on CURL_POLL_REMOVE) and one uv_timer for curl's own timeouts.
 * Readiness and timer expiry go back to curl_multi_socket_action(), after which finished
 * transfers are collected with curl_multi_info_read() and answered. User callbacks run only from
 * libuv callbacks, never from inside a curl callback, so they may start new requests.
 *
 * Shutdown never tears curl down inside the caller's stack: it arms a grace timer, and the
 * teardown (cancel what is left, curl_multi_cleanup, close the handles) runs from that timer.
 * Memory is freed in libuv close callbacks once the last handle has closed.
 */
#include "http_client.h"

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "log.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_MAX_RESPONSE_BYTES (64u * 1024u)
#define DEFAULT_MAX_CONNECTIONS 16
#define DEFAULT_TIMEOUT_MS 30000u
#define DEFAULT_CONNECT_TIMEOUT_MS 10000u

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct mw_http_client *c;
    struct sock_ctx *prev, *next;
    bool closing;
};

struct call {
    struct mw_http_client *c;
    struct call *prev, *next;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    struct mw_buf resp;
    bool truncated;
    int64_t retry_after_ms;
    uint64_t started_ms;
    mw_http_client_done_fn done;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
};

struct mw_http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t curl_timer;  /* curl's CURLMOPT_TIMERFUNCTION */
    uv_timer_t grace_timer; /* shutdown: how long in-flight requests may still run */
    struct call *calls;     /* in flight */
    size_t n_calls;
    struct sock_ctx *socks; /* polled sockets, including closing ones */
    size_t max_response_bytes;
    long max_connections;
    char *ca_file;
    char *user_agent;
    int n_open_handles;
    bool shutting_down;
    bool torn_down;
    mw_http_client_closed_fn closed;
    void *closed_arg;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void init_curl(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void check_done(struct mw_http_client *c);
static void teardown(uv_timer_t *t);

/* ---- handle lifetime ----------------------------------------------------------------------- */

static void maybe_free(struct mw_http_client *c)
{
    if (!c->torn_down || c->n_open_handles > 0)
        return;
    mw_http_client_closed_fn closed = c->closed;
    void *arg = c->closed_arg;
    mw_free(c->ca_file);
    mw_free(c->user_agent);
    mw_free(c);
    if (closed)
        closed(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mw_http_client *c = h->data;
    c->n_open_handles--;
    maybe_free(c);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct sock_ctx *sc = h->data;
    struct mw_http_client *c = sc->c;
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        c->socks = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    mw_free(sc);
    c->n_open_handles--;
    maybe_free(c);
}

static void close_sock(struct sock_ctx *sc)
{
    if (sc->closing)
        return;
    sc->closing = true;
    uv_poll_stop(&sc->poll);
    uv_close((uv_handle_t *)&sc->poll, on_sock_closed);
}

/* ---- curl -> libuv --------------------------------------------------------------------------- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock_ctx *sc = h->data;
    struct mw_http_client *c = sc->c;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    int running = 0;
    curl_multi_socket_action(c->multi, sc->fd, flags, &running);
    check_done(c);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct mw_http_client *c = userp;
    struct sock_ctx *sc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            curl_multi_assign(c->multi, fd, NULL);
            close_sock(sc);
        }
        return 0;
    }
    if (!sc) {
        sc = mw_calloc(1, sizeof *sc);
        if (!sc)
            return -1;
        if (uv_poll_init_socket(c->loop, &sc->poll, fd) != 0) {
            MW_LOG_ERROR("http_client", "cannot poll socket", "fd=%d", (int)fd);
            mw_free(sc);
            return -1;
        }
        sc->fd = fd;
        sc->c = c;
        sc->poll.data = sc;
        sc->next = c->socks;
        if (c->socks)
            c->socks->prev = sc;
        c->socks = sc;
        c->n_open_handles++;
        curl_multi_assign(c->multi, fd, sc);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&sc->poll, events, on_poll);
    return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
    struct mw_http_client *c = t->data;
    int running = 0;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct mw_http_client *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->curl_timer);
    else
        uv_timer_start(&c->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- one transfer -----------------------------------------------------------------------------
 */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct call *call = userp;
    size_t n = size * nmemb;
    size_t room = call->resp.max_bytes - call->resp.len;
    if (n > room) {
        /* Keep what fits and stop the transfer: the status is known, the rest is not needed. */
        if (room)
            mw_buf_append(&call->resp, data, room);
        call->truncated = true;
        return 0;
    }
    if (mw_buf_append(&call->resp, data, n) != 0) {
        call->truncated = true;
        return 0;
    }
    return n;
}

/* Longest wait a Retry-After may ask for before it reads as nonsense; the delivery caps what
 * it honours far lower (retry.retry_after_max). */
#define RETRY_AFTER_MAX_S (86400LL * 365)

/* Seconds ("120") or an HTTP date; -1 when neither, or when further away than
 * RETRY_AFTER_MAX_S (a date in the year 5555555 would overflow the milliseconds). */
static int64_t parse_retry_after(const char *value)
{
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value >= '0' && *value <= '9') {
        char *end = NULL;
        long long seconds = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end || seconds < 0 || seconds > RETRY_AFTER_MAX_S)
            return -1;
        return (int64_t)seconds * 1000;
    }
    time_t when = curl_getdate(value, NULL);
    if (when == (time_t)-1)
        return -1;
    time_t now = time(NULL);
    if (when <= now)
        return 0;
    if (when - now > RETRY_AFTER_MAX_S)
        return -1;
    return (int64_t)(when - now) * 1000;
}

void mw_http_client_response_header(const char *line, size_t n, int64_t *retry_after_ms)
{
    static const char name[] = "retry-after:";
    if (n > 5 && strncmp(line, "HTTP/", 5) == 0) {
        *retry_after_ms = -1; /* a new response (after a 100 Continue, say) */
    } else if (n > sizeof name - 1 && n < 256 && strncasecmp(line, name, sizeof name - 1) == 0) {
        char value[256];
        memcpy(value, line + sizeof name - 1, n - (sizeof name - 1));
        value[n - (sizeof name - 1)] = '\0';
        *retry_after_ms = parse_retry_after(value);
    }
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct call *call = userp;
    size_t n = size * nmemb;
    mw_http_client_response_header(data, n, &call->retry_after_ms);
    return n;
}

static void free_call(struct call *call)
{
    if (!call)
        return;
    if (call->easy)
        curl_easy_cleanup(call->easy);
    curl_slist_free_all(call->headers);
    mw_free(call->body);
    mw_buf_free(&call->resp);
    mw_free(call);
}

static void unlink_call(struct mw_http_client *c, struct call *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    c->n_calls--;
}

static int convert_curl_error(CURLcode result, bool *timed_out)
{
    *timed_out = false;
    switch (result) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        *timed_out = true;
        return MW_ETRANSPORT;
    case CURLE_OUT_OF_MEMORY:
        return MW_ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return MW_EINVAL;
    default:
        return MW_ETRANSPORT;
    }
}

/* Take `call` out of curl and the list, answer it, free it. `err_override` (MW_ECLOSED) stands
 * for a transfer that was cancelled rather than finished. */
static void finish(struct mw_http_client *c, struct call *call, CURLcode result, int err_override)
{
    struct mw_http_client_response resp = {.retry_after_ms = -1, .error_text = ""};
    long status = 0;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(c->multi, call->easy);
    unlink_call(c, call);

    if (err_override) {
        resp.err = err_override;
        resp.error_text = "cancelled by shutdown";
    } else if (result == CURLE_WRITE_ERROR && call->truncated && status > 0) {
        resp.err = 0; /* we stopped reading a body that was too long */
    } else {
        resp.err = convert_curl_error(result, &resp.timed_out);
        if (resp.err)
            resp.error_text = call->errbuf[0] ? call->errbuf : curl_easy_strerror(result);
    }
    resp.status = resp.err ? 0 : status;
    resp.body = call->resp.data ? call->resp.data : "";
    resp.body_len = call->resp.len;
    resp.body_truncated = call->truncated;
    resp.retry_after_ms = resp.err ? -1 : call->retry_after_ms;
    uint64_t now_ms = uv_now(c->loop);
    resp.elapsed_ms = now_ms > call->started_ms ? now_ms - call->started_ms : 0;
    call->done(&resp, call->arg);
    free_call(call);

    if (c->shutting_down && !c->calls && !c->torn_down)
        uv_timer_start(&c->grace_timer, teardown, 0, 0); /* nothing left to wait for */
}

static void check_done(struct mw_http_client *c)
{
    CURLMsg *msg;
    int pending = 0;
    while (c->multi && (msg = curl_multi_info_read(c->multi, &pending))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct call *call = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        finish(c, call, msg->data.result, 0);
    }
}

int mw_http_client_send(struct mw_http_client *c, const struct mw_http_client_request *req,
                        mw_http_client_done_fn done, void *arg)
{
    if (!c || !req || !req->url || !*req->url || !done)
        return MW_EINVAL;
    if (c->shutting_down)
        return MW_ECLOSED;
    int rc = MW_ENOMEM;
    struct call *call = mw_calloc(1, sizeof *call);
    if (!call)
        return MW_ENOMEM;
    call->c = c;
    call->done = done;
    call->arg = arg;
    call->retry_after_ms = -1;
    call->started_ms = uv_now(c->loop);
    mw_buf_init(&call->resp, c->max_response_bytes);
    if (req->body_len) {
        if (!(call->body = mw_malloc(req->body_len)))
            goto fail;
        memcpy(call->body, req->body, req->body_len);
    }
    for (const char *const *h = req->headers; h && *h; h++) {
        struct curl_slist *l = curl_slist_append(call->headers, *h);
        if (!l)
            goto fail;
        call->headers = l;
    }
    /* No "Expect: 100-continue" round trip before large bodies. */
    struct curl_slist *l = curl_slist_append(call->headers, "Expect:");
    if (!l)
        goto fail;
    call->headers = l;
    if (!(call->easy = curl_easy_init()))
        goto fail;

    CURL *e = call->easy;
    const char *method = req->method ? req->method : "POST";
    uint64_t timeout_ms = req->timeout_ms ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    uint64_t connect_ms =
        req->connect_timeout_ms ? req->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    CURLcode set = CURLE_OK;
#define SET(opt, value)                                                                            \
    do {                                                                                           \
        if (set == CURLE_OK)                                                                       \
            set = curl_easy_setopt(e, opt, value);                                                 \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
    SET(CURLOPT_HTTPHEADER, call->headers);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, call);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, call);
    SET(CURLOPT_PRIVATE, call);
    SET(CURLOPT_ERRORBUFFER, call->errbuf);
    SET(CURLOPT_USERAGENT, c->user_agent);
    if (c->ca_file)
        SET(CURLOPT_CAINFO, c->ca_file);
    if (strcmp(method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SET(CURLOPT_POSTFIELDS, call->body ? call->body : "");
        if (strcmp(method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
    }
#undef SET
    if (set != CURLE_OK) {
        rc = set == CURLE_OUT_OF_MEMORY ? MW_ENOMEM : MW_EINVAL;
        MW_LOG_ERROR("http_client", "cannot set up request", "curl_error=%d", (int)set);
        goto fail;
    }
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
        goto fail;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->n_calls++;
    return 0;

fail:
    free_call(call);
    return rc;
}

size_t mw_http_client_in_flight(const struct mw_http_client *c)
{
    return c ? c->n_calls : 0;
}

/* ---- create / shutdown
 * --------------------------------------------------------------------------- */

int mw_http_client_create(uv_loop_t *loop, const struct mw_http_client_options *opts,
                          struct mw_http_client **out)
{
    *out = NULL;
    pthread_once(&curl_once, init_curl);
    if (curl_init_result != CURLE_OK) {
        MW_LOG_ERROR("http_client", "curl_global_init failed", "curl_error=%d",
                     (int)curl_init_result);
        return MW_EIO;
    }
    struct mw_http_client *c = mw_calloc(1, sizeof *c);
    if (!c)
        return MW_ENOMEM;
    c->loop = loop;
    c->max_response_bytes =
        opts && opts->max_response_bytes ? opts->max_response_bytes : DEFAULT_MAX_RESPONSE_BYTES;
    c->max_connections =
        opts && opts->max_connections > 0 ? opts->max_connections : DEFAULT_MAX_CONNECTIONS;
    char ua[64];
    snprintf(ua, sizeof ua, "modelwatch/%s", MW_VERSION);
    c->user_agent = mw_strdup(opts && opts->user_agent ? opts->user_agent : ua);
    if (!c->user_agent)
        goto fail_strings;
    if (opts && opts->ca_file && !(c->ca_file = mw_strdup(opts->ca_file)))
        goto fail_strings;
    if (!(c->multi = curl_multi_init()))
        goto fail_strings;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, c->max_connections);
    uv_timer_init(loop, &c->curl_timer);
    uv_timer_init(loop, &c->grace_timer);
    c->curl_timer.data = c;
    c->grace_timer.data = c;
    c->n_open_handles = 2;
    *out = c;
    return 0;

fail_strings:
    mw_free(c->ca_file);
    mw_free(c->user_agent);
    mw_free(c);
    return MW_ENOMEM;
}

/* Cancel what is still in flight, release curl, close the handles. Runs from the grace timer. */
static void teardown(uv_timer_t *t)
{
    struct mw_http_client *c = t->data;
    if (c->torn_down)
        return;
    while (c->calls)
        finish(c, c->calls, CURLE_OK, MW_ECLOSED);
    curl_multi_cleanup(c->multi); /* may still report sockets removed */
    c->multi = NULL;
    for (struct sock_ctx *sc = c->socks; sc; sc = sc->next)
        close_sock(sc);
    c->torn_down = true;
    uv_timer_stop(&c->curl_timer);
    uv_timer_stop(&c->grace_timer);
    uv_close((uv_handle_t *)&c->curl_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->grace_timer, on_timer_closed);
}

void mw_http_client_shutdown(struct mw_http_client *c, uint64_t grace_ms,
                             mw_http_client_closed_fn closed, void *arg)
{
    if (!c || c->shutting_down)
        return;
    c->shutting_down = true;
    c->closed = closed;
    c->closed_arg = arg;
    uv_timer_start(&c->grace_timer, teardown, c->calls ? grace_ms : 0, 0);
}

void mw_http_client_destroy(struct mw_http_client *c)
{
    mw_http_client_shutdown(c, 0, NULL, NULL);
}
