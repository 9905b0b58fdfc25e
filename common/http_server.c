/*
 * http_server.c — a small HTTP/1.1 server on libuv and http-parser.
 *
 * Each connection runs one exchange at a time: bytes are buffered and fed to http-parser, which
 * is paused at the end of every request; the request goes to its handler, and parsing resumes
 * (with whatever was pipelined behind it) only once the answer has been written. So answers
 * always leave in request order, and a slow (asynchronous) handler holds up only its own
 * connection. While an exchange is out, the connection keeps reading, up to a high-water mark,
 * so that a peer hanging up is noticed: the connection then closes and the exchange is detached
 * (its answer will be discarded).
 *
 * Connection states: READING (parsing; idle timer armed) -> HANDLING (a handler owns the
 * exchange; no timer) -> WRITING (answer queued; the idle timer bounds the write) -> READING
 * again, or LINGERING when the connection must close: our side is shut down and input is
 * drained for a short while before closing, so the peer gets the answer rather than a reset.
 *
 * Memory is freed only in libuv close callbacks, so a connection or the server stays valid for
 * the rest of any callback that closes it.
 */
#include "http_server.h"

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define READ_CHUNK_BYTES (64u * 1024u)
/* Unparsed input beyond which a connection stops reading until its exchange is answered. */
#define INPUT_HIGH_WATER_BYTES (64u * 1024u)
#define METRICS_MAX_BYTES (64u * 1024u * 1024u)
#define LINGER_MAX_MS 2000u
#define LISTEN_BACKLOG 128

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_MAX_HEADER_BYTES (16u * 1024u)
#define DEFAULT_MAX_BODY_BYTES (1024u * 1024u)
#define DEFAULT_MAX_CONNECTIONS 256
#define DEFAULT_IDLE_TIMEOUT_MS 30000u
#define DEFAULT_REQUEST_TIMEOUT_MS 10000u
/* A body may take request_timeout plus a second per this many bytes announced. */
#define MIN_BODY_BYTES_PER_S (64u * 1024u)

#define TEXT_PLAIN "text/plain; charset=utf-8"
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum conn_state {
    CONN_READING,
    CONN_HANDLING,
    CONN_WRITING,
    CONN_LINGERING,
};

struct route {
    char *method;
    char *path;
    size_t path_len;
    bool prefix;
    mw_http_handler_fn fn;
    void *arg;
};

struct mw_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    size_t max_header_bytes;
    size_t max_body_bytes;
    int max_connections;
    uint64_t idle_timeout_ms;
    uint64_t request_timeout_ms;
    int max_connections_per_client;
    struct mw_http_server_stats stats;
    struct route *routes;
    size_t n_routes;
    size_t cap_routes;
    struct conn *conns; /* every open or closing connection */
    int n_conns;
    struct mw_prom_registry *metrics;
    mw_http_ready_fn ready_fn;
    void *ready_arg;
    mw_http_guard_fn write_guard;
    void *write_guard_arg;
    bool closing;
    bool listener_closed;
    char read_buf[READ_CHUNK_BYTES]; /* shared: libuv hands it back before the next read */
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write_req;
    uv_write_t continue_req;
    uv_shutdown_t shutdown_req;
    struct mw_http_server *srv;
    struct conn *prev;
    struct conn *next;
    struct mw_http_request_parser req; /* the request being parsed */
    enum conn_state state;
    int n_open_handles;
    bool closing;
    bool reading;
    bool peer_eof;
    bool close_after_write;
    bool continue_in_flight;
    bool request_started;         /* bytes of a request not yet dispatched have arrived */
    uint64_t request_deadline_ms; /* loop time by which that request must be whole */
    uint64_t waiting_since_ms;    /* loop time it last began waiting for a request */
    struct sockaddr_storage peer; /* family 0 when unknown */
    struct mw_buf in;             /* received, not yet parsed: [in_off, in.len) */
    size_t in_off;
    /* the exchange a handler holds, and the answer being written */
    struct mw_http_exchange *pending;
    struct mw_buf out_head;
    char *out_body;
};

struct mw_http_exchange {
    struct conn *conn; /* NULL once the connection is gone: the answer is discarded */
    bool keep_alive;
    bool head;
    struct mw_http_request req;
    char strings[]; /* method, path, query and body, each NUL-terminated */
};

static const char continue_response[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void conn_close(struct conn *c);
static void conn_process(struct conn *c);

/* ---- connections: lifetime --------------------------------------------------------------- */

static void server_maybe_free(struct mw_http_server *srv)
{
    if (!srv->closing || !srv->listener_closed || srv->conns)
        return;
    for (size_t i = 0; i < srv->n_routes; i++) {
        mw_free(srv->routes[i].method);
        mw_free(srv->routes[i].path);
    }
    mw_free(srv->routes);
    mw_free(srv);
}

static void on_conn_handle_closed(uv_handle_t *handle)
{
    struct conn *c = handle->data;
    if (--c->n_open_handles > 0)
        return;
    struct mw_http_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    mw_buf_free(&c->in);
    mw_http_request_parser_free(&c->req);
    mw_buf_free(&c->out_head);
    mw_free(c->out_body);
    mw_free(c);
    server_maybe_free(srv);
}

/* Close now: pending writes are cancelled and a held exchange is detached. Idempotent. */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->pending) {
        c->pending->conn = NULL;
        c->pending = NULL;
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void conn_fail(struct conn *c, int status);

static void on_timer(uv_timer_t *timer)
{
    struct conn *c = timer->data;
    if (c->state == CONN_READING && c->request_started &&
        uv_now(c->srv->loop) >= c->request_deadline_ms) {
        c->srv->stats.request_timeouts++;
        MW_LOG_DEBUG("http", "request timed out", "request_timeout_ms=%llu",
                     (unsigned long long)c->srv->request_timeout_ms);
        conn_fail(c, 408);
        return;
    }
    conn_close(c);
}

static void conn_arm_timer(struct conn *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* While reading: the idle timeout, cut short by the deadline of a request in progress. */
static void conn_arm_read_timer(struct conn *c)
{
    uint64_t ms = c->srv->idle_timeout_ms;
    if (c->request_started) {
        uint64_t now = uv_now(c->srv->loop);
        uint64_t left = c->request_deadline_ms > now ? c->request_deadline_ms - now : 0;
        ms = left < ms ? left : ms;
    }
    conn_arm_timer(c, ms ? ms : 1);
}

/* Input of a new request is here: its deadline starts now, and trickling does not move it. */
static void conn_start_request_clock(struct conn *c)
{
    if (c->request_started || c->in_off >= c->in.len)
        return;
    c->request_started = true;
    c->request_deadline_ms = uv_now(c->srv->loop) + c->srv->request_timeout_ms;
}

/* ---- connections: reading ---------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested_size, uv_buf_t *buf)
{
    struct conn *c = handle->data;
    (void)suggested_size;
    *buf = uv_buf_init(c->srv->read_buf, sizeof c->srv->read_buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* Read while there is room for more input (or while draining a closing connection). */
static void conn_update_reading(struct conn *c)
{
    bool want = !c->closing && !c->peer_eof &&
                (c->state == CONN_LINGERING || c->in.len - c->in_off < INPUT_HIGH_WATER_BYTES);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    c->reading = want;
}

static void conn_read_ended(struct conn *c, ssize_t nread)
{
    if (nread == UV_EOF && c->state == CONN_WRITING) {
        c->peer_eof = true; /* half-closed: finish the answer, then close */
        conn_update_reading(c);
        return;
    }
    conn_close(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        conn_read_ended(c, nread);
        return;
    }
    if (c->state == CONN_LINGERING)
        return; /* drained and dropped */
    if (mw_buf_append(&c->in, buf->base, (size_t)nread) != 0) {
        MW_LOG_WARN("http", "input buffer allocation failed", "bytes=%zd", nread);
        conn_close(c);
        return;
    }
    if (c->state == CONN_READING) {
        conn_start_request_clock(c);
        conn_arm_read_timer(c);
        conn_process(c);
    } else {
        conn_update_reading(c);
    }
}

/* ---- connections: writing ---------------------------------------------------------------- */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    if (status < 0 || c->peer_eof)
        conn_close(c);
}

/* Our answer is out and the connection must close: shut down our side and drain the peer's
 * input until it closes or the linger time passes, so unread input does not reset the answer. */
static void conn_linger(struct conn *c)
{
    c->state = CONN_LINGERING;
    if (c->peer_eof) {
        conn_close(c);
        return;
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    uint64_t linger_ms = c->srv->idle_timeout_ms;
    conn_arm_timer(c, linger_ms < LINGER_MAX_MS ? linger_ms : LINGER_MAX_MS);
    conn_update_reading(c);
}

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    mw_buf_free(&c->out_head);
    mw_free(c->out_body);
    c->out_body = NULL;
    if (c->closing)
        return;
    if (status < 0 || c->srv->closing) {
        conn_close(c);
        return;
    }
    if (c->close_after_write || c->peer_eof) {
        conn_linger(c);
        return;
    }
    c->state = CONN_READING;
    c->waiting_since_ms = uv_now(c->srv->loop);
    conn_start_request_clock(c); /* a pipelined request already here */
    conn_arm_read_timer(c);
    conn_process(c);
}

static bool safe_header_value(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

static int write_head(struct conn *c, int status, const char *content_type,
                      const char *extra_headers, size_t body_len, bool with_length)
{
    const char *reason = http_status_str((enum http_status)status);
    int rc = mw_buf_printf(&c->out_head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n", status, reason,
                           content_type);
    if (!rc && with_length)
        rc = mw_buf_printf(&c->out_head, "Content-Length: %zu\r\n", body_len);
    if (!rc)
        rc = mw_buf_printf(&c->out_head, "Connection: %s\r\n%s\r\n",
                           c->close_after_write ? "close" : "keep-alive",
                           extra_headers ? extra_headers : "");
    return rc;
}

/*
 * Queue an answer on `c` and move it to WRITING. Takes ownership of `body` (mw_malloc'ed or
 * NULL). `send_body` is false for HEAD, 204 and 304, which carry no body. On failure the
 * connection is closed.
 */
static void conn_send(struct conn *c, int status, const char *content_type,
                      const char *extra_headers, char *body, size_t body_len, bool send_body)
{
    if (status < 200 || status > 599)
        status = 500;
    if (status == 204 || status == 304)
        send_body = false;
    if (!safe_header_value(content_type))
        content_type = content_type ? "application/octet-stream" : TEXT_PLAIN;
    if (c->srv->closing || c->peer_eof)
        c->close_after_write = true;
    mw_buf_init(&c->out_head,
                256 + strlen(content_type) + (extra_headers ? strlen(extra_headers) : 0));
    if (write_head(c, status, content_type, extra_headers, body_len, status != 204) != 0) {
        mw_free(body);
        conn_close(c);
        return;
    }
    c->out_body = body;
    uv_buf_t bufs[2] = {
        uv_buf_init(c->out_head.data, (unsigned int)c->out_head.len),
        uv_buf_init(body, send_body ? (unsigned int)body_len : 0),
    };
    c->state = CONN_WRITING;
    conn_arm_timer(c, c->srv->idle_timeout_ms); /* bounds a peer that never reads */
    c->write_req.data = c;
    int n_bufs = send_body && body_len ? 2 : 1;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, (unsigned int)n_bufs, on_write)) {
        conn_close(c); /* on_conn_handle_closed frees the buffers */
        return;
    }
    conn_update_reading(c);
}

const char *mw_http_error_type(int status)
{
    switch (status) {
    case 401:
    case 403:
        return "unauthorized";
    case 404:
        return "not_found";
    case 503:
        return "unavailable";
    default:
        return status >= 500 ? "internal" : "bad_data";
    }
}

static char *json_error_body(int status, const char *message, size_t *len)
{
    struct mw_buf b;
    mw_buf_init(&b, 4096);
    int rc = mw_buf_printf(&b, "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":\"",
                           mw_http_error_type(status));
    for (const unsigned char *p = (const unsigned char *)(message ? message : ""); *p && !rc; p++) {
        if (*p == '"' || *p == '\\')
            rc = mw_buf_printf(&b, "\\%c", *p);
        else if (*p < 0x20)
            rc = mw_buf_printf(&b, "\\u%04x", *p);
        else
            rc = mw_buf_append(&b, p, 1);
    }
    if (!rc)
        rc = mw_buf_append_str(&b, "\"}\n");
    if (rc) {
        mw_buf_free(&b);
        *len = 0;
        return NULL;
    }
    return mw_buf_detach(&b, len);
}

/* Refuse the request being parsed with `status` and close once that is written. */
static void conn_fail(struct conn *c, int status)
{
    MW_LOG_DEBUG("http", "request refused", "status=%d", status);
    c->close_after_write = true;
    size_t len;
    char *body = json_error_body(status, http_status_str((enum http_status)status), &len);
    conn_send(c, status, "application/json", NULL, body, len, true);
}

/* ---- exchanges --------------------------------------------------------------------------- */

/* Answer `ex` (taking ownership of `body`) and free it; a detached exchange is only freed. */
static void exchange_finish(struct mw_http_exchange *ex, int status, const char *content_type,
                            const char *extra_headers, char *body, size_t body_len)
{
    struct conn *c = ex->conn;
    if (c && !c->closing) {
        c->pending = NULL;
        if (!ex->keep_alive)
            c->close_after_write = true;
        conn_send(c, status, content_type, extra_headers, body, body_len, !ex->head);
    } else {
        mw_free(body);
    }
    mw_free(ex);
}

void mw_http_respond(struct mw_http_exchange *ex, int status, const char *content_type,
                     const char *body, size_t body_len)
{
    if (!ex)
        return;
    char *copy = NULL;
    if (ex->conn && body && body_len) {
        copy = mw_malloc(body_len);
        if (!copy) {
            MW_LOG_WARN("http", "response allocation failed", "bytes=%zu", body_len);
            conn_close(ex->conn);
            mw_free(ex);
            return;
        }
        memcpy(copy, body, body_len);
    }
    exchange_finish(ex, status, content_type, NULL, copy, copy ? body_len : 0);
}

void mw_http_respond_error(struct mw_http_exchange *ex, int status, const char *message)
{
    if (!ex)
        return;
    size_t len = 0;
    char *body = ex->conn ? json_error_body(status, message, &len) : NULL;
    exchange_finish(ex, status, "application/json", NULL, body, len);
}

static char *copy_into(char *dst, const char *src, size_t len)
{
    memcpy(dst, src, len);
    dst[len] = '\0';
    return dst + len + 1;
}

/* Build the exchange for the request just parsed. Returns 0, MW_EPARSE (bad target or path
 * escape: answer 400) or MW_ENOMEM. */
static int exchange_new(struct conn *c, struct mw_http_exchange **out)
{
    const char *path, *query;
    size_t path_len, query_len;
    const struct mw_http_request_parser *r = &c->req;
    if (mw_http_request_split_target(r, &path, &path_len, &query, &query_len) != 0)
        return MW_EPARSE;
    const char *method = http_method_str(r->method);
    size_t method_len = strlen(method);
    struct mw_http_exchange *ex = mw_malloc(sizeof *ex + method_len + path_len + query_len +
                                            r->body.len + MW_HTTP_AUTHORIZATION_MAX + 5);
    if (!ex)
        return MW_ENOMEM;
    char *p = ex->strings;
    ex->req.method = p;
    p = copy_into(p, method, method_len);
    if (mw_http_percent_decode(path, path_len, false, p, path_len + 1) != 0) {
        mw_free(ex);
        return MW_EPARSE;
    }
    ex->req.path = p;
    p += strlen(p) + 1;
    ex->req.query = p;
    p = copy_into(p, query, query_len);
    ex->req.body = r->body.len ? p : NULL;
    ex->req.body_len = r->body.len;
    p = copy_into(p, r->body.len ? r->body.data : "", r->body.len);
    size_t auth_len = r->authorization_len <= MW_HTTP_AUTHORIZATION_MAX ? r->authorization_len : 0;
    ex->req.authorization = p;
    copy_into(p, r->authorization, auth_len);
    ex->conn = c;
    ex->keep_alive = r->keep_alive && !r->parser.upgrade;
    ex->head = r->method == HTTP_HEAD;
    *out = ex;
    return 0;
}

/* ---- routing ----------------------------------------------------------------------------- */

static bool route_matches_path(const struct route *r, const char *path)
{
    if (r->prefix)
        return strncmp(path, r->path, r->path_len) == 0;
    return strcmp(path, r->path) == 0;
}

/* An exact route beats any prefix route; among prefixes the longest wins. */
static size_t route_rank(const struct route *r)
{
    return r->prefix ? r->path_len : SIZE_MAX;
}

static bool method_listed_before(const struct mw_http_server *srv, size_t i, const char *path)
{
    for (size_t j = 0; j < i; j++) {
        const struct route *r = &srv->routes[j];
        if (strcmp(r->method, srv->routes[i].method) == 0 && route_matches_path(r, path))
            return true;
    }
    return false;
}

/* The best route for method + path, or NULL; then `allow` lists the methods the path does
 * have ("" when none: 404). */
static const struct route *find_route(const struct mw_http_server *srv, const char *method,
                                      const char *path, char *allow, size_t allow_size)
{
    const struct route *best = NULL;
    size_t allow_len = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < srv->n_routes; i++) {
        const struct route *r = &srv->routes[i];
        if (!route_matches_path(r, path))
            continue;
        if (strcmp(r->method, method) == 0) {
            if (!best || route_rank(r) > route_rank(best))
                best = r;
        } else if (allow_len < allow_size && !method_listed_before(srv, i, path)) {
            int n = snprintf(allow + allow_len, allow_size - allow_len, "%s%s",
                             allow_len ? ", " : "", r->method);
            if (n > 0)
                allow_len += (size_t)n;
        }
    }
    return best;
}

static void dispatch(struct mw_http_server *srv, struct mw_http_exchange *ex)
{
    char allow[256];
    const struct route *r = find_route(srv, ex->req.method, ex->req.path, allow, sizeof allow);
    bool writes = strcmp(ex->req.method, "GET") != 0 && strcmp(ex->req.method, "HEAD") != 0;
    if (r && writes && srv->write_guard && !srv->write_guard(ex, &ex->req, srv->write_guard_arg))
        return;
    if (r) {
        r->fn(ex, &ex->req, r->arg);
        return;
    }
    if (!allow[0]) {
        mw_http_respond_error(ex, 404, "not found");
        return;
    }
    char header[300];
    snprintf(header, sizeof header, "Allow: %s\r\n", allow);
    size_t len;
    char *body = json_error_body(405, "method not allowed", &len);
    exchange_finish(ex, 405, "application/json", header, body, len);
}

/* The parser has a whole request: hand it to its handler, which may answer now or later. */
static void conn_dispatch(struct conn *c)
{
    struct mw_http_exchange *ex = NULL;
    int rc = exchange_new(c, &ex);
    if (rc) {
        conn_fail(c, rc == MW_EPARSE ? 400 : 503);
        return;
    }
    if (!ex->keep_alive)
        c->close_after_write = true;
    c->request_started = false;
    c->pending = ex;
    c->state = CONN_HANDLING;
    uv_timer_stop(&c->timer);
    dispatch(c->srv, ex);
}

/* ---- parsing ----------------------------------------------------------------------------- */

static void on_continue_written(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    c->continue_in_flight = false;
    if (status < 0)
        conn_close(c);
}

/* A client that waits for `100 Continue` before sending its body gets it (unless one is still
 * being written, in which case it sends the body after its own timeout). */
static void send_continue(struct conn *c)
{
    if (c->continue_in_flight)
        return;
    uv_buf_t buf = uv_buf_init((char *)continue_response, sizeof continue_response - 1);
    c->continue_req.data = c;
    if (uv_write(&c->continue_req, (uv_stream_t *)&c->tcp, &buf, 1, on_continue_written) == 0)
        c->continue_in_flight = true;
}

/* The head of a request is whole: its body gets its own time, in proportion to what is
 * announced (a chunked one: the most it may be), and a client that waits for `100 Continue`
 * gets it. */
static void on_request_head(struct mw_http_request_parser *r, void *arg)
{
    struct conn *c = arg;
    const http_parser *p = &r->parser;
    bool has_length = (p->flags & F_CONTENTLENGTH) != 0;
    uint64_t body_bytes = has_length               ? p->content_length
                          : (p->flags & F_CHUNKED) ? c->srv->max_body_bytes
                                                   : 0;
    if (body_bytes && c->state == CONN_READING) {
        c->request_deadline_ms = uv_now(c->srv->loop) + c->srv->request_timeout_ms +
                                 body_bytes * 1000u / MIN_BODY_BYTES_PER_S;
        conn_arm_read_timer(c);
    }
    if (r->expect_continue && p->http_major == 1 && p->http_minor >= 1 &&
        ((has_length && p->content_length > 0) || (p->flags & F_CHUNKED)))
        send_continue(c);
}

static void conn_compact_input(struct conn *c)
{
    if (c->in_off == c->in.len) {
        if (c->in.cap > READ_CHUNK_BYTES)
            mw_buf_free(&c->in); /* do not keep a big buffer for an idle connection */
        else
            mw_buf_reset(&c->in);
        c->in_off = 0;
    } else if (c->in_off > 0) {
        memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in.data[c->in.len] = '\0';
        c->in_off = 0;
    }
}

/* Parse buffered input while the connection is free to take a request; stops at the first
 * complete request (dispatched), at an error (answered, then closed) or when input runs out. */
static void conn_process(struct conn *c)
{
    while (!c->closing && c->state == CONN_READING && c->in_off < c->in.len) {
        size_t n = 0;
        enum mw_http_parse_result res = mw_http_request_parser_execute(
            &c->req, c->in.data + c->in_off, c->in.len - c->in_off, &n);
        c->in_off += n;
        if (res == MW_HTTP_PARSE_REQUEST)
            conn_dispatch(c);
        else if (res == MW_HTTP_PARSE_ERROR)
            conn_fail(c, c->req.error_status);
    }
    if (c->closing)
        return;
    if (c->state == CONN_LINGERING)
        return;
    conn_compact_input(c);
    conn_update_reading(c);
}

/* ---- accepting --------------------------------------------------------------------------- */

static void free_handle(uv_handle_t *handle)
{
    mw_free(handle);
}

/* Out of memory for a connection: accept and close at once, so the peer is told rather than
 * left waiting in the backlog. */
static void reject_connection(struct mw_http_server *srv)
{
    uv_tcp_t *tcp = mw_malloc(sizeof *tcp);
    if (!tcp) {
        MW_LOG_WARN("http", "cannot reject connection", "err=%s", mw_strerror(MW_ENOMEM));
        return;
    }
    uv_tcp_init(srv->loop, tcp);
    uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)tcp);
    uv_close((uv_handle_t *)tcp, free_handle);
}

static struct conn *conn_new(struct mw_http_server *srv)
{
    struct conn *c = mw_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->n_open_handles = 2;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    mw_http_request_parser_init(&c->req, srv->max_header_bytes, srv->max_body_bytes,
                                on_request_head, c);
    mw_buf_init(&c->in, INPUT_HIGH_WATER_BYTES + READ_CHUNK_BYTES);
    mw_buf_init(&c->out_head, 0);
    c->state = CONN_READING;
    return c;
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return false;
}

/* Open connections of the same peer address as `c`, besides `c`. */
static int connections_of_peer(const struct mw_http_server *srv, const struct conn *c)
{
    int n = 0;
    for (const struct conn *o = srv->conns; o; o = o->next)
        if (o != c && !o->closing && same_address(&o->peer, &c->peer))
            n++;
    return n;
}

/* Make room on a full server for `c`: close the connection that has waited longest for a
 * request (an idle keep-alive one, or one trickling its request in). Exchanges being handled or
 * answered are left alone. Returns false when there is none. */
static bool evict_one(struct mw_http_server *srv, const struct conn *c)
{
    struct conn *oldest = NULL;
    for (struct conn *o = srv->conns; o; o = o->next)
        if (o != c && !o->closing && o->state == CONN_READING &&
            (!oldest || o->waiting_since_ms < oldest->waiting_since_ms))
            oldest = o;
    if (!oldest)
        return false;
    srv->stats.evicted++;
    conn_close(oldest);
    return true;
}

/* Whether `c`, just accepted, may stay: its address under its share, and a slot free or made
 * free. */
static bool admit(struct mw_http_server *srv, struct conn *c)
{
    if (c->peer.ss_family && connections_of_peer(srv, c) >= srv->max_connections_per_client) {
        srv->stats.refused_per_client++;
        MW_LOG_DEBUG("http", "connection refused: too many from one address",
                     "max_connections_per_client=%d", srv->max_connections_per_client);
        return false;
    }
    int open = 0;
    for (const struct conn *o = srv->conns; o; o = o->next)
        open += o != c && !o->closing;
    if (open >= srv->max_connections && !evict_one(srv, c)) {
        srv->stats.refused_full++;
        MW_LOG_DEBUG("http", "connection refused", "max_connections=%d", srv->max_connections);
        return false;
    }
    return true;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct mw_http_server *srv = listener->data;
    if (status < 0) {
        MW_LOG_WARN("http", "accept failed", "err=%s", uv_strerror(status));
        return;
    }
    if (srv->closing)
        return;
    struct conn *c = conn_new(srv);
    if (!c) {
        reject_connection(srv);
        return;
    }
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    int len = sizeof c->peer;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len) != 0)
        memset(&c->peer, 0, sizeof c->peer);
    c->waiting_since_ms = uv_now(srv->loop);
    if (!admit(srv, c)) {
        conn_close(c); /* the peer is told at once rather than left waiting */
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_arm_read_timer(c);
    conn_update_reading(c);
}

/* ---- built-in routes --------------------------------------------------------------------- */

static void handle_healthz(struct mw_http_exchange *ex, const struct mw_http_request *req,
                           void *arg)
{
    (void)req;
    (void)arg;
    mw_http_respond(ex, 200, TEXT_PLAIN, "ok", 2);
}

static void handle_readyz(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    const struct mw_http_server *srv = arg;
    (void)req;
    if (!srv->ready_fn || srv->ready_fn(srv->ready_arg))
        mw_http_respond(ex, 200, TEXT_PLAIN, "ready", 5);
    else
        mw_http_respond(ex, 503, TEXT_PLAIN, "not ready", 9);
}

static void handle_metrics(struct mw_http_exchange *ex, const struct mw_http_request *req,
                           void *arg)
{
    const struct mw_http_server *srv = arg;
    (void)req;
    struct mw_buf out;
    mw_buf_init(&out, METRICS_MAX_BYTES);
    int rc = srv->metrics ? mw_prom_render(srv->metrics, &out) : 0;
    if (rc) {
        MW_LOG_WARN("http", "metrics render failed", "err=%s", mw_strerror(rc));
        mw_buf_free(&out);
        mw_http_respond_error(ex, 500, "metrics render failed");
        return;
    }
    size_t len;
    char *body = mw_buf_detach(&out, &len);
    exchange_finish(ex, 200, PROM_CONTENT_TYPE, NULL, body, len);
}

/* ---- server ------------------------------------------------------------------------------ */

int mw_http_server_route(struct mw_http_server *srv, const char *method, const char *path,
                         bool prefix, mw_http_handler_fn fn, void *arg)
{
    if (!srv || !method || !*method || !path || path[0] != '/' || !fn)
        return MW_EINVAL;
    for (size_t i = 0; i < srv->n_routes; i++) {
        const struct route *r = &srv->routes[i];
        if (r->prefix == prefix && strcmp(r->method, method) == 0 && strcmp(r->path, path) == 0)
            return MW_EINVAL;
    }
    if (srv->n_routes == srv->cap_routes) {
        size_t cap = srv->cap_routes ? srv->cap_routes * 2 : 8;
        struct route *routes = mw_realloc(srv->routes, cap * sizeof *routes);
        if (!routes)
            return MW_ENOMEM;
        srv->routes = routes;
        srv->cap_routes = cap;
    }
    struct route r = {mw_strdup(method), mw_strdup(path), strlen(path), prefix, fn, arg};
    if (!r.method || !r.path) {
        mw_free(r.method);
        mw_free(r.path);
        return MW_ENOMEM;
    }
    srv->routes[srv->n_routes++] = r;
    return 0;
}

static void on_listener_closed(uv_handle_t *handle)
{
    struct mw_http_server *srv = handle->data;
    srv->listener_closed = true;
    server_maybe_free(srv);
}

static void apply_defaults(struct mw_http_server_options *o)
{
    if (!o->host || !*o->host)
        o->host = DEFAULT_HOST;
    if (!o->max_header_bytes)
        o->max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
    if (!o->max_body_bytes)
        o->max_body_bytes = DEFAULT_MAX_BODY_BYTES;
    if (o->max_connections <= 0)
        o->max_connections = DEFAULT_MAX_CONNECTIONS;
    if (!o->idle_timeout_ms)
        o->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
    if (!o->request_timeout_ms)
        o->request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_MS;
    if (o->max_connections_per_client <= 0)
        o->max_connections_per_client =
            o->max_connections >= 4 ? o->max_connections / 4 : o->max_connections;
}

static int parse_address(const char *host, int port, struct sockaddr_storage *addr)
{
    memset(addr, 0, sizeof *addr);
    if (strchr(host, ':'))
        return uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr);
    return uv_ip4_addr(host, port, (struct sockaddr_in *)addr);
}

static int bound_port(const uv_tcp_t *tcp)
{
    struct sockaddr_storage addr;
    int len = sizeof addr;
    if (uv_tcp_getsockname(tcp, (struct sockaddr *)&addr, &len) != 0)
        return -1;
    if (addr.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

/* Writing to a socket the peer has reset raises SIGPIPE, which would kill the process: ignore
 * it unless the program has installed its own handler. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

static int add_builtin_routes(struct mw_http_server *srv)
{
    int rc = mw_http_server_route(srv, "GET", "/healthz", false, handle_healthz, srv);
    if (!rc)
        rc = mw_http_server_route(srv, "GET", "/readyz", false, handle_readyz, srv);
    if (!rc)
        rc = mw_http_server_route(srv, "GET", "/metrics", false, handle_metrics, srv);
    return rc;
}

static int server_listen(struct mw_http_server *srv, const char *host, int port)
{
    struct sockaddr_storage addr;
    if (parse_address(host, port, &addr) != 0) {
        MW_LOG_ERROR("http", "invalid listen address", "host=%s port=%d", host, port);
        return MW_EINVAL;
    }
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    int err = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
    if (!err)
        err = uv_listen((uv_stream_t *)&srv->listener, LISTEN_BACKLOG, on_connection);
    if (!err)
        srv->port = bound_port(&srv->listener);
    if (err || srv->port < 0) {
        MW_LOG_ERROR("http", "listen failed", "host=%s port=%d err=%s", host, port,
                     err ? uv_strerror(err) : "getsockname");
        return MW_ESYS;
    }
    return 0;
}

/* On MW_ESYS and MW_ENOMEM after the listener exists, the memory is released by the loop when
 * it runs the listener's close callback. */
int mw_http_server_create(uv_loop_t *loop, const struct mw_http_server_options *opts,
                          struct mw_http_server **out)
{
    if (!out)
        return MW_EINVAL;
    *out = NULL;
    struct mw_http_server_options o = {0};
    if (opts)
        o = *opts;
    apply_defaults(&o);
    if (!loop || o.port < 0 || o.port > 65535)
        return MW_EINVAL;
    struct mw_http_server *srv = mw_calloc(1, sizeof *srv);
    if (!srv)
        return MW_ENOMEM;
    srv->loop = loop;
    srv->max_header_bytes = o.max_header_bytes;
    srv->max_body_bytes = o.max_body_bytes;
    srv->max_connections = o.max_connections;
    srv->idle_timeout_ms = o.idle_timeout_ms;
    srv->request_timeout_ms = o.request_timeout_ms;
    srv->max_connections_per_client = o.max_connections_per_client;
    int rc = add_builtin_routes(srv);
    if (rc) {
        srv->closing = srv->listener_closed = true;
        server_maybe_free(srv);
        return rc;
    }
    rc = server_listen(srv, o.host, o.port);
    if (rc == MW_EINVAL) {
        srv->closing = srv->listener_closed = true;
        server_maybe_free(srv);
        return rc;
    }
    if (rc) {
        srv->closing = true;
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
        return rc;
    }
    ignore_sigpipe();
    *out = srv;
    return 0;
}

void mw_http_server_destroy(struct mw_http_server *srv)
{
    if (!srv || srv->closing)
        return;
    srv->closing = true;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    for (struct conn *c = srv->conns; c; c = c->next)
        conn_close(c);
}

struct mw_http_server_stats mw_http_server_stats(const struct mw_http_server *srv)
{
    struct mw_http_server_stats none = {0};
    return srv ? srv->stats : none;
}

int mw_http_server_port(const struct mw_http_server *srv)
{
    return srv ? srv->port : -1;
}

void mw_http_server_set_metrics(struct mw_http_server *srv, struct mw_prom_registry *reg)
{
    if (srv)
        srv->metrics = reg;
}

void mw_http_server_set_ready(struct mw_http_server *srv, mw_http_ready_fn fn, void *arg)
{
    if (!srv)
        return;
    srv->ready_fn = fn;
    srv->ready_arg = arg;
}

void mw_http_server_set_write_guard(struct mw_http_server *srv, mw_http_guard_fn fn, void *arg)
{
    if (!srv)
        return;
    srv->write_guard = fn;
    srv->write_guard_arg = arg;
}
