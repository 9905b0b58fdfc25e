/*
 * test_http.c — the HTTP server over real sockets on 127.0.0.1.
 *
 * The server runs on a libuv loop in the test's thread; a client thread speaks to it with plain
 * blocking sockets (5 s receive timeout, so nothing hangs), records the raw bytes it got, and
 * wakes the loop through a uv_async when done. The loop then destroys the server and must run
 * dry: every test ends with uv_loop_close() succeeding, i.e. no handle left behind. Assertions
 * happen only in the test's thread, after the client thread has been joined.
 */
#include "http_server.h"

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "prom.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define CAPTURE_BYTES (512 * 1024)
#define N_CAPTURES 4
#define CLIENT_TIMEOUT_S 5

struct capture {
    char data[CAPTURE_BYTES];
    size_t len;
    bool eof;       /* the server closed the connection */
    bool reset;     /* ... with a reset */
    bool timed_out; /* neither data nor EOF within the timeout */
};

struct fixture {
    uv_loop_t loop;
    uv_async_t done;
    pthread_t thread;
    struct mw_http_server *srv;
    int port;
    void (*client)(struct fixture *);
    struct capture cap[N_CAPTURES];
    /* server side */
    _Atomic bool ready;
    uint64_t delay_ms;
    int n_async_answers;
    struct mw_http_exchange *stashed;
    struct mw_prom_registry *reg;
    /* client side extras */
    int n_random_sent;
    double elapsed_s;
    int open_fd; /* a connection the client thread leaves open for the test to check */
    size_t n_bytes_received;
};

/* ---- responses --------------------------------------------------------------------------- */

struct response {
    int status;
    const char *head; /* status line and headers, for header lookup */
    size_t head_len;
    const char *body;
    size_t body_len;
};

static const char *find_bytes(const char *hay, size_t hay_len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n <= hay_len && i <= hay_len - n; i++) {
        if (memcmp(hay + i, needle, n) == 0)
            return hay + i;
    }
    return NULL;
}

/* Value of header `name` in `r` into out ("" and false when absent). */
static bool header_value(const struct response *r, const char *name, char *out, size_t size)
{
    size_t name_len = strlen(name);
    const char *p = r->head;
    const char *end = r->head + r->head_len;
    out[0] = '\0';
    while (p < end) {
        const char *eol = find_bytes(p, (size_t)(end - p), "\r\n");
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > name_len + 1 && strncasecmp(p, name, name_len) == 0 &&
            p[name_len] == ':') {
            const char *v = p + name_len + 1;
            while (v < eol && *v == ' ')
                v++;
            snprintf(out, size, "%.*s", (int)(eol - v), v);
            return true;
        }
        p = eol + 2;
    }
    return false;
}

/* Parse one response at buf; returns the bytes it takes, 0 when incomplete. 100 Continue
 * counts as a (bodiless) response. */
static size_t parse_response(const char *buf, size_t len, struct response *r)
{
    const char *end = find_bytes(buf, len, "\r\n\r\n");
    if (!end || len < 12)
        return 0;
    memset(r, 0, sizeof *r);
    r->status = (int)strtol(buf + 9, NULL, 10);
    r->head = buf;
    r->head_len = (size_t)(end - buf) + 2;
    char cl[32];
    size_t body_len = 0;
    if (header_value(r, "Content-Length", cl, sizeof cl))
        body_len = (size_t)strtoul(cl, NULL, 10);
    size_t head_total = (size_t)(end - buf) + 4;
    if (len - head_total < body_len)
        return 0;
    r->body = buf + head_total;
    r->body_len = body_len;
    return head_total + body_len;
}

static int count_responses(const char *buf, size_t len)
{
    int n = 0;
    struct response r;
    size_t used;
    while ((used = parse_response(buf, len, &r)) > 0) {
        n++;
        buf += used;
        len -= used;
    }
    return n;
}

/* The i-th response captured in slot `slot`; fails the test when there is none. */
static struct response nth_response(const struct fixture *fx, int slot, int i)
{
    const char *buf = fx->cap[slot].data;
    size_t len = fx->cap[slot].len;
    struct response r;
    for (int k = 0;; k++) {
        size_t used = parse_response(buf, len, &r);
        assert_true(used > 0);
        if (k == i)
            return r;
        buf += used;
        len -= used;
    }
}

static void assert_body(const struct response *r, const char *expected)
{
    assert_int_equal(r->body_len, strlen(expected));
    assert_memory_equal(r->body, expected, r->body_len);
}

static void assert_header(const struct response *r, const char *name, const char *expected)
{
    char value[256];
    assert_true(header_value(r, name, value, sizeof value));
    assert_string_equal(value, expected);
}

/* ---- client side (runs in the client thread: no cmocka calls here) ----------------------- */

static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void client_send(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the server may have closed on us: what we got is checked later */
        p += n;
        len -= (size_t)n;
    }
}

/* Read into the capture until it holds `n_responses` responses, then (with `until_eof`) until
 * the server closes. */
static void client_read(int fd, struct capture *cap, int n_responses, bool until_eof)
{
    while (cap->len < sizeof cap->data) {
        if (!until_eof && count_responses(cap->data, cap->len) >= n_responses)
            return;
        ssize_t n = recv(fd, cap->data + cap->len, sizeof cap->data - cap->len, 0);
        if (n > 0) {
            cap->len += (size_t)n;
            continue;
        }
        if (n == 0)
            cap->eof = true;
        else if (errno == ECONNRESET)
            cap->eof = cap->reset = true;
        else
            cap->timed_out = true;
        return;
    }
}

/* One connection: send `req`, read `n_responses`, then maybe wait for EOF, close. */
static void transact(struct fixture *fx, int slot, const char *req, int n_responses, bool until_eof)
{
    int fd = client_connect(fx->port);
    if (fd < 0)
        return;
    client_send(fd, req, strlen(req));
    client_read(fd, &fx->cap[slot], n_responses, until_eof);
    close(fd);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- harness ----------------------------------------------------------------------------- */

static void *client_main(void *arg)
{
    struct fixture *fx = arg;
    fx->client(fx);
    uv_async_send(&fx->done);
    return NULL;
}

static void on_client_done(uv_async_t *async)
{
    struct fixture *fx = async->data;
    mw_http_server_destroy(fx->srv);
    fx->srv = NULL;
    uv_close((uv_handle_t *)async, NULL);
}

/* Run `client` in a thread against the server until it is done; the loop must then drain. */
static void run_client(struct fixture *fx, void (*client)(struct fixture *))
{
    fx->client = client;
    assert_int_equal(uv_async_init(&fx->loop, &fx->done, on_client_done), 0);
    fx->done.data = fx;
    assert_int_equal(pthread_create(&fx->thread, NULL, client_main, fx), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    pthread_join(fx->thread, NULL);
    assert_null(fx->srv);
}

static void echo_handler(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    (void)arg;
    char text[8192];
    int n = snprintf(text, sizeof text, "%s %s ?%s [%.*s]", req->method, req->path, req->query,
                     (int)req->body_len, req->body ? req->body : "");
    mw_http_respond(ex, 200, "text/plain", text, (size_t)n);
}

struct delayed {
    uv_timer_t timer;
    struct mw_http_exchange *ex;
    struct fixture *fx;
};

static void on_delayed_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void on_delay_expired(uv_timer_t *timer)
{
    struct delayed *d = timer->data;
    mw_http_respond(d->ex, 200, "text/plain", "slow", 4);
    d->fx->n_async_answers++;
    uv_close((uv_handle_t *)timer, on_delayed_closed);
}

/* Answers "slow" after fx->delay_ms, from a uv timer. */
static void slow_handler(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    struct fixture *fx = arg;
    (void)req;
    struct delayed *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->ex = ex;
    d->fx = fx;
    uv_timer_init(&fx->loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, on_delay_expired, fx->delay_ms, 0);
}

/* Keeps the exchange without answering; the test answers after the server is gone. */
static void stash_handler(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    struct fixture *fx = arg;
    (void)req;
    fx->stashed = ex;
}

static void tag_handler(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    (void)req;
    mw_http_respond(ex, 200, "text/plain", arg, strlen(arg));
}

/* Misuses the API: a status out of range and a content type that tries to add a header. */
static void evil_handler(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    (void)arg;
    if (strcmp(req->path, "/evil/status") == 0)
        mw_http_respond(ex, 42, "text/plain\r\nX-Evil: 1", "x", 1);
    else if (strcmp(req->path, "/evil/empty") == 0)
        mw_http_respond(ex, 204, "text/plain", "dropped", 7);
    else
        mw_http_respond_error(ex, 422, "bad \"x\"\n\\");
}

static bool ready_cb(void *arg)
{
    return ((struct fixture *)arg)->ready;
}

static void start_server(struct fixture *fx, const struct mw_http_server_options *opts)
{
    struct mw_http_server_options defaults = {.host = "127.0.0.1"};
    assert_int_equal(mw_http_server_create(&fx->loop, opts ? opts : &defaults, &fx->srv), 0);
    fx->port = mw_http_server_port(fx->srv);
    assert_true(fx->port > 0);
    mw_http_server_set_ready(fx->srv, ready_cb, fx);
    assert_int_equal(mw_http_server_route(fx->srv, "GET", "/echo/", true, echo_handler, NULL), 0);
    assert_int_equal(mw_http_server_route(fx->srv, "POST", "/echo/", true, echo_handler, NULL), 0);
    assert_int_equal(mw_http_server_route(fx->srv, "GET", "/slow", false, slow_handler, fx), 0);
    assert_int_equal(mw_http_server_route(fx->srv, "GET", "/stash", false, stash_handler, fx), 0);
    assert_int_equal(mw_http_server_route(fx->srv, "HEAD", "/echo/", true, echo_handler, NULL), 0);
    assert_int_equal(mw_http_server_route(fx->srv, "GET", "/evil/", true, evil_handler, NULL), 0);
    fx->delay_ms = 50;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || uv_loop_init(&fx->loop) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    mw_http_server_destroy(fx->srv);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&fx->loop);
    mw_http_respond(fx->stashed, 200, NULL, NULL, 0);
    mw_prom_registry_destroy(fx->reg);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* ---- tests: built-ins -------------------------------------------------------------------- */

static void client_healthz(struct fixture *fx)
{
    transact(fx, 0, "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 1, true);
}

static void test_healthz(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    run_client(fx, client_healthz);
    struct response r = nth_response(fx, 0, 0);
    assert_int_equal(r.status, 200);
    assert_body(&r, "ok");
    assert_header(&r, "Content-Length", "2");
    assert_header(&r, "Content-Type", "text/plain; charset=utf-8");
    assert_header(&r, "Connection", "close");
    assert_true(fx->cap[0].eof);
}

static void client_readyz_twice(struct fixture *fx)
{
    fx->ready = true;
    transact(fx, 0, "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
    fx->ready = false;
    transact(fx, 1, "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
}

static void test_readyz(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    run_client(fx, client_readyz_twice);
    struct response r = nth_response(fx, 0, 0);
    assert_int_equal(r.status, 200);
    r = nth_response(fx, 1, 0);
    assert_int_equal(r.status, 503);
    assert_header(&r, "Connection", "keep-alive");
}

static void client_metrics(struct fixture *fx)
{
    transact(fx, 0, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
}

static void test_metrics(void **state)
{
    struct fixture *fx = *state;
    fx->reg = mw_prom_registry_create();
    struct mw_prom_series *s =
        mw_prom_simple(fx->reg, "mw_http_test_total", "Test counter.", MW_PROM_COUNTER);
    mw_prom_series_add(s, 42);
    start_server(fx, NULL);
    mw_http_server_set_metrics(fx->srv, fx->reg);
    run_client(fx, client_metrics);
    struct response r = nth_response(fx, 0, 0);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    assert_body(&r, "# HELP mw_http_test_total Test counter.\n"
                    "# TYPE mw_http_test_total counter\n"
                    "mw_http_test_total 42\n");
}

static void client_not_found_and_wrong_method(struct fixture *fx)
{
    transact(fx, 0, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
    transact(fx, 1, "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 1, false);
    transact(fx, 2, "DELETE /echo/x HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
}

static void test_404_405(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    run_client(fx, client_not_found_and_wrong_method);
    struct response r = nth_response(fx, 0, 0);
    assert_int_equal(r.status, 404);
    assert_header(&r, "Content-Type", "application/json");
    assert_body(&r, "{\"status\":\"error\",\"errorType\":\"not_found\",\"error\":\"not found\"}\n");
    r = nth_response(fx, 1, 0);
    assert_int_equal(r.status, 405);
    assert_header(&r, "Allow", "GET");
    r = nth_response(fx, 2, 0);
    assert_int_equal(r.status, 405);
    assert_header(&r, "Allow", "GET, POST, HEAD");
}

/* ---- tests: the write guard -------------------------------------------------------------- */

static int guard_calls;

/* Lets a write through with "Authorization: Bearer ok", answers 401 otherwise. */
static bool bearer_ok_guard(struct mw_http_exchange *ex, const struct mw_http_request *req,
                            void *arg)
{
    (void)arg;
    guard_calls++;
    if (strcmp(req->authorization, "Bearer ok") == 0)
        return true;
    mw_http_respond_error(ex, 401, "token");
    return false;
}

static void client_writes_guarded(struct fixture *fx)
{
    transact(fx, 0, "GET /echo/a HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
    transact(fx, 1, "POST /echo/a HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi", 1, false);
    transact(fx, 2,
             "POST /echo/a HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ok\r\n"
             "Content-Length: 2\r\n\r\nhi",
             1, false);
    transact(fx, 3, "POST /nope HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 1, false);
}

static void test_write_guard(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    guard_calls = 0;
    mw_http_server_set_write_guard(fx->srv, bearer_ok_guard, NULL);
    run_client(fx, client_writes_guarded);
    assert_int_equal(nth_response(fx, 0, 0).status, 200); /* a read: never asked */
    struct response r = nth_response(fx, 1, 0);
    assert_int_equal(r.status, 401);
    assert_body(&r, "{\"status\":\"error\",\"errorType\":\"unauthorized\",\"error\":\"token\"}\n");
    r = nth_response(fx, 2, 0);
    assert_int_equal(r.status, 200);
    assert_body(&r, "POST /echo/a ? [hi]");
    assert_int_equal(nth_response(fx, 3, 0).status, 404); /* no route: nothing to guard */
    assert_int_equal(guard_calls, 2);
}

/* ---- tests: refusals --------------------------------------------------------------------- */

static void client_malformed(struct fixture *fx)
{
    transact(fx, 0, "GARBAGE\r\n\r\n", 1, true);
    transact(fx, 1, "GET /echo/a%zzb HTTP/1.1\r\nHost: t\r\n\r\n", 1, true);
    transact(fx, 2, "GET /echo/a%00b HTTP/1.1\r\nHost: t\r\n\r\n", 1, true);
    transact(fx, 3, "GET /echo/a%4 HTTP/1.1\r\nHost: t\r\n\r\n", 1, true);
}

static void test_malformed_400_and_close(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    run_client(fx, client_malformed);
    for (int i = 0; i < 4; i++) {
        struct response r = nth_response(fx, i, 0);
        assert_int_equal(r.status, 400);
        assert_header(&r, "Connection", "close");
        assert_true(fx->cap[i].eof);
        assert_false(fx->cap[i].reset);
    }
}

static void client_big_header(struct fixture *fx)
{
    char req[4096];
    char filler[2000];
    memset(filler, 'x', sizeof filler - 1);
    filler[sizeof filler - 1] = '\0';
    snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: %s\r\n\r\n", filler);
    transact(fx, 0, req, 1, true);
    /* just under the limit passes */
    filler[900] = '\0';
    snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: %s\r\n\r\n", filler);
    transact(fx, 1, req, 1, false);
}

static void test_oversized_headers_431(void **state)
{
    struct fixture *fx = *state;
    struct mw_http_server_options opts = {.max_header_bytes = 1024};
    start_server(fx, &opts);
    run_client(fx, client_big_header);
    struct response r = nth_response(fx, 0, 0);
    assert_int_equal(r.status, 431);
    assert_true(fx->cap[0].eof);
    r = nth_response(fx, 1, 0);
    assert_int_equal(r.status, 200);
}

static void client_big_body(struct fixture *fx)
{
    char req[4096];
    char body[1001];
    memset(body, 'b', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    snprintf(req, sizeof req, "POST /echo/ HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    transact(fx, 0, req, 1, true);
    /* chunked: no length announced, the limit hits while reading */
    snprintf(req, sizeof req,
             "POST /echo/ HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "64\r\n%.100s\r\n64\r\n%.100s\r\n0\r\n\r\n",
             body, body);
    transact(fx, 1, req, 1, true);
    /* within the limit */
    transact(fx, 2, "POST /echo/ HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", 1, false);
}

static void test_oversized_body_413(void **state)
{
    struct fixture *fx = *state;
    struct mw_http_server_options opts = {.max_body_bytes = 150};
    start_server(fx, &opts);
    run_client(fx, client_big_body);
    struct response r = nth_response(fx, 0, 0);
    assert_int_equal(r.status, 413);
    assert_true(fx->cap[0].eof);
    r = nth_response(fx, 1, 0);
    assert_int_equal(r.status, 413);
    r = nth_response(fx, 2, 0);
    assert_int_equal(r.status, 200);
    assert_body(&r, "POST /echo/ ? [hello]");
}

/* ---- tests: keep-alive, pipelining, paths ------------------------------------------------ */

static void client_pipelined(struct fixture *fx)
{
    /* the first is answered later from a timer: the second must still come second */
    transact(fx, 0,
             "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
             "GET /echo/second HTTP/1.1\r\nHost: t\r\n\r\n"
             "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
             3, true);
}

static void test_pipelined_in_order(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    run_client(fx, client_pipelined);
    struct response r = nth_response(fx, 0, 0);
    assert_int_equal(r.status, 200);
    assert_body(&r, "slow");
    assert_header(&r, "Connection", "keep-alive");
    r = nth_response(fx, 0, 1);
    assert_body(&r, "GET /echo/second ? []");
    r = nth_response(fx, 0, 2);
    assert_body(&r, "ok");
    assert_header(&r, "Connection", "close");
    assert_true(fx->cap[0].eof);
    assert_int_equal(fx->n_async_answers, 1);
}

static void client_keep_alive(struct fixture *fx)
{
    /* HTTP/1.1: two requests on one connection, in two writes */
    int fd = client_connect(fx->port);
    if (fd < 0)
        return;
    const char *req = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    client_send(fd, req, strlen(req));
    client_read(fd, &fx->cap[0], 1, false);
    client_send(fd, req, strlen(req));
    client_read(fd, &fx->cap[0], 2, false);
    close(fd);
    /* HTTP/1.0 closes by default, stays open with keep-alive */
    transact(fx, 1, "GET /healthz HTTP/1.0\r\n\r\n", 1, true);
    transact(fx, 2,
             "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
             "GET /healthz HTTP/1.0\r\n\r\n",
             2, true);
}

static void test_keep_alive(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    run_client(fx, client_keep_alive);
    assert_int_equal(count_responses(fx->cap[0].data, fx->cap[0].len), 2);
    assert_false(fx->cap[0].eof);
    struct response r = nth_response(fx, 1, 0);
    assert_header(&r, "Connection", "close");
    assert_true(fx->cap[1].eof);
    r = nth_response(fx, 2, 0);
    assert_header(&r, "Connection", "keep-alive");
    r = nth_response(fx, 2, 1);
    assert_header(&r, "Connection", "close");
    assert_true(fx->cap[2].eof);
}

static void client_paths(struct fixture *fx)
{
    transact(fx, 0, "GET /echo/a%20b%2fc+d?x=1%202&y HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
    transact(fx, 1, "GET http://example.com/echo/abs?q=1 HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
}

static void test_percent_decoded_path(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    run_client(fx, client_paths);
    struct response r = nth_response(fx, 0, 0);
    assert_int_equal(r.status, 200);
    assert_body(&r, "GET /echo/a b/c+d ?x=1%202&y []");
    r = nth_response(fx, 1, 0);
    assert_body(&r, "GET /echo/abs ?q=1 []");
}

static void client_prefix_routes(struct fixture *fx)
{
    transact(fx, 0, "GET /api/v1/x HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
    transact(fx, 1, "GET /api/v1/y HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
    transact(fx, 2, "GET /api/z HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
    transact(fx, 3, "GET /ap HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
}

static void test_longest_prefix_wins(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    static char a[] = "api", b[] = "api-v1", c[] = "api-v1-x";
    assert_int_equal(mw_http_server_route(fx->srv, "GET", "/api/", true, tag_handler, a), 0);
    assert_int_equal(mw_http_server_route(fx->srv, "GET", "/api/v1/x", false, tag_handler, c), 0);
    assert_int_equal(mw_http_server_route(fx->srv, "GET", "/api/v1/", true, tag_handler, b), 0);
    assert_int_equal(mw_http_server_route(fx->srv, "GET", "/api/", true, tag_handler, a),
                     MW_EINVAL);
    assert_int_equal(mw_http_server_route(fx->srv, "GET", "relative", false, tag_handler, a),
                     MW_EINVAL);
    run_client(fx, client_prefix_routes);
    struct response r = nth_response(fx, 0, 0);
    assert_body(&r, "api-v1-x");
    r = nth_response(fx, 1, 0);
    assert_body(&r, "api-v1");
    r = nth_response(fx, 2, 0);
    assert_body(&r, "api");
    r = nth_response(fx, 3, 0);
    assert_int_equal(r.status, 404);
}

static void client_expect_continue(struct fixture *fx)
{
    int fd = client_connect(fx->port);
    if (fd < 0)
        return;
    const char *head = "POST /echo/ HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                       "Expect: 100-continue\r\n\r\n";
    client_send(fd, head, strlen(head));
    client_read(fd, &fx->cap[0], 1, false); /* the 100 Continue */
    client_send(fd, "data", 4);
    client_read(fd, &fx->cap[0], 2, false);
    close(fd);
}

static void test_expect_continue(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    run_client(fx, client_expect_continue);
    struct response r = nth_response(fx, 0, 0);
    assert_int_equal(r.status, 100);
    r = nth_response(fx, 0, 1);
    assert_int_equal(r.status, 200);
    assert_body(&r, "POST /echo/ ? [data]");
}

static void client_many_pipelined(struct fixture *fx)
{
    /* more than the server's input high-water mark, in one go */
    static char reqs[128 * 1024];
    size_t len = 0;
    for (int i = 0; i < 2000; i++)
        len += (size_t)snprintf(reqs + len, sizeof reqs - len,
                                "GET /echo/%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
    int fd = client_connect(fx->port);
    if (fd < 0)
        return;
    client_send(fd, reqs, len);
    client_read(fd, &fx->cap[0], 2000, false);
    close(fd);
}

static void test_many_pipelined_in_order(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    run_client(fx, client_many_pipelined);
    assert_int_equal(count_responses(fx->cap[0].data, fx->cap[0].len), 2000);
    const char *buf = fx->cap[0].data;
    size_t len = fx->cap[0].len;
    for (int i = 0; i < 2000; i++) {
        struct response r;
        size_t used = parse_response(buf, len, &r);
        char expected[64];
        snprintf(expected, sizeof expected, "GET /echo/%d ? []", i);
        assert_body(&r, expected);
        buf += used;
        len -= used;
    }
}

#define BIG_BODY_BYTES (8u * 1024u * 1024u)

static void big_handler(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    (void)req;
    (void)arg;
    char *body = malloc(BIG_BODY_BYTES);
    assert_non_null(body);
    memset(body, 'x', BIG_BODY_BYTES);
    mw_http_respond(ex, 200, "application/octet-stream", body, BIG_BODY_BYTES);
    free(body);
}

static void client_half_close_big_answer(struct fixture *fx)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096; /* with the server's send buffer, far less than the answer */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return;
    }
    const char *req = "GET /big HTTP/1.1\r\nHost: t\r\n\r\n";
    client_send(fd, req, strlen(req));
    shutdown(fd, SHUT_WR);
    sleep_ms(200); /* the answer is stuck in the socket buffers; the server sees our EOF */
    struct capture *cap = &fx->cap[0];
    char sink[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = recv(fd, sink, sizeof sink, 0);
        if (n <= 0) {
            cap->eof = n == 0;
            break;
        }
        size_t keep = cap->len < 4096 ? 4096 - cap->len : 0;
        keep = keep < (size_t)n ? keep : (size_t)n;
        memcpy(cap->data + cap->len, sink, keep);
        cap->len += keep;
        total += (size_t)n;
    }
    fx->n_bytes_received = total;
    close(fd);
}

/* A client that half-closes after its request still gets a large answer in full. */
static void test_half_closed_peer_gets_big_answer(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    assert_int_equal(mw_http_server_route(fx->srv, "GET", "/big", false, big_handler, NULL), 0);
    run_client(fx, client_half_close_big_answer);
    const char *head_end = find_bytes(fx->cap[0].data, fx->cap[0].len, "\r\n\r\n");
    assert_non_null(head_end);
    size_t head_len = (size_t)(head_end - fx->cap[0].data) + 4;
    struct response r = {.head = fx->cap[0].data, .head_len = head_len};
    char expected[32];
    snprintf(expected, sizeof expected, "%u", BIG_BODY_BYTES);
    assert_header(&r, "Content-Length", expected);
    assert_int_equal(fx->n_bytes_received, head_len + BIG_BODY_BYTES);
    assert_true(fx->cap[0].eof);
}

static void client_metrics_big(struct fixture *fx)
{
    transact(fx, 0, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
}

static void test_metrics_many_series(void **state)
{
    struct fixture *fx = *state;
    fx->reg = mw_prom_registry_create();
    const char *labels[] = {"i", NULL};
    struct mw_prom_family *fam =
        mw_prom_family_add(fx->reg, "mw_big", "Many series.", MW_PROM_GAUGE, labels);
    char value[16];
    for (int i = 0; i < 10000; i++) {
        snprintf(value, sizeof value, "%d", i);
        const char *lv[] = {value, NULL};
        mw_prom_series_set(mw_prom_series_get(fam, lv), i);
    }
    start_server(fx, NULL);
    mw_http_server_set_metrics(fx->srv, fx->reg);
    run_client(fx, client_metrics_big);
    struct response r = nth_response(fx, 0, 0);
    assert_int_equal(r.status, 200);
    struct mw_buf expected;
    mw_buf_init(&expected, 1 << 20);
    assert_int_equal(mw_prom_render(fx->reg, &expected), 0);
    assert_int_equal(r.body_len, expected.len);
    assert_memory_equal(r.body, expected.data, expected.len);
    mw_buf_free(&expected);
}

static void client_odd_requests(struct fixture *fx)
{
    transact(fx, 0, "HEAD /echo/h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 0, true);
    transact(fx, 1, "GET /evil/status HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
    transact(fx, 2, "GET /evil/json HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
    transact(
        fx, 3,
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 1,
        true);
}

static void test_odd_requests_and_answers(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    run_client(fx, client_odd_requests);
    /* HEAD: the length of the body that was not sent */
    const struct capture *cap = &fx->cap[0];
    assert_true(cap->eof);
    assert_true(cap->len > 4);
    assert_memory_equal(cap->data + cap->len - 4, "\r\n\r\n", 4);
    struct response r = {.head = cap->data, .head_len = cap->len};
    assert_header(&r, "Content-Length", "17"); /* "HEAD /echo/h ? []" */
    /* out-of-range status and a header smuggled in the content type */
    r = nth_response(fx, 1, 0);
    assert_int_equal(r.status, 500);
    assert_header(&r, "Content-Type", "application/octet-stream");
    char value[64];
    assert_false(header_value(&r, "X-Evil", value, sizeof value));
    /* JSON error escaping */
    r = nth_response(fx, 2, 0);
    assert_int_equal(r.status, 422);
    assert_body(&r, "{\"status\":\"error\",\"errorType\":\"bad_data\","
                    "\"error\":\"bad \\\"x\\\"\\u000a\\\\\"}\n");
    /* an upgrade request is answered as plain HTTP, then the connection closes */
    r = nth_response(fx, 3, 0);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Connection", "close");
    assert_true(fx->cap[3].eof);
}

static void client_no_content(struct fixture *fx)
{
    transact(fx, 0,
             "GET /evil/empty HTTP/1.1\r\nHost: t\r\n\r\n"
             "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
             2, false);
}

static void test_204_has_no_body(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    run_client(fx, client_no_content);
    struct response r = nth_response(fx, 0, 0);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);
    r = nth_response(fx, 0, 1);
    assert_body(&r, "ok");
}

/* ---- tests: allocation failures ---------------------------------------------------------- */

static _Atomic long alloc_budget = -1; /* allocations left before failing; -1: unlimited */

static bool alloc_allowed(void)
{
    if (alloc_budget < 0)
        return true;
    return alloc_budget-- > 0;
}

static void *failing_malloc(size_t size)
{
    return alloc_allowed() ? malloc(size) : NULL;
}

static void *failing_calloc(size_t n, size_t size)
{
    return alloc_allowed() ? calloc(n, size) : NULL;
}

static void *failing_realloc(void *p, size_t size)
{
    return alloc_allowed() ? realloc(p, size) : NULL;
}

static void client_mixed(struct fixture *fx)
{
    transact(fx, 0,
             "POST /echo/a%20b?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
             "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
             "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
             "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
             4, true);
}

/* Every allocation the server makes while serving fails in turn: no crash, no leak, and the
 * loop still drains. */
static void test_allocation_failures(void **state)
{
    (void)state;
    for (long budget = 0; budget < 60; budget++) {
        struct fixture *fx = NULL;
        assert_int_equal(setup((void **)&fx), 0);
        fx->reg = mw_prom_registry_create();
        mw_prom_series_set(mw_prom_simple(fx->reg, "g", "G.", MW_PROM_GAUGE), 1);
        start_server(fx, NULL);
        mw_http_server_set_metrics(fx->srv, fx->reg);
        alloc_budget = budget;
        mw_replace_allocator(failing_malloc, failing_calloc, failing_realloc, free);
        run_client(fx, client_mixed);
        mw_replace_allocator(NULL, NULL, NULL, NULL);
        alloc_budget = -1;
        assert_int_equal(teardown((void **)&fx), 0);
    }
}

/* ---- tests: timeouts and limits ---------------------------------------------------------- */

static void client_idle(struct fixture *fx)
{
    int fd = client_connect(fx->port);
    if (fd < 0)
        return;
    double start = now_s();
    client_read(fd, &fx->cap[0], 1, true);
    fx->elapsed_s = now_s() - start;
    close(fd);
}

static void test_idle_timeout_closes(void **state)
{
    struct fixture *fx = *state;
    struct mw_http_server_options opts = {.idle_timeout_ms = 100};
    start_server(fx, &opts);
    run_client(fx, client_idle);
    assert_true(fx->cap[0].eof);
    assert_int_equal(fx->cap[0].len, 0);
    assert_true(fx->elapsed_s < 3.0);
}

static void client_too_many(struct fixture *fx)
{
    const char *req = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    int fd1 = client_connect(fx->port);
    if (fd1 < 0)
        return;
    client_send(fd1, req, strlen(req));
    client_read(fd1, &fx->cap[0], 1, false); /* fd1 is surely accepted now */
    int fd2 = client_connect(fx->port);
    if (fd2 >= 0) {
        client_send(fd2, req, strlen(req));
        client_read(fd2, &fx->cap[1], 1, true);
        close(fd2);
    }
    client_send(fd1, req, strlen(req));
    client_read(fd1, &fx->cap[0], 2, false);
    close(fd1);
}

static void test_max_connections(void **state)
{
    struct fixture *fx = *state;
    struct mw_http_server_options opts = {.max_connections = 1};
    start_server(fx, &opts);
    run_client(fx, client_too_many);
    assert_int_equal(count_responses(fx->cap[0].data, fx->cap[0].len), 2);
    assert_true(fx->cap[1].eof);
    assert_int_equal(fx->cap[1].len, 0);
}

/* ---- tests: asynchronous answers --------------------------------------------------------- */

static void client_slow(struct fixture *fx)
{
    transact(fx, 0, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
}

static void test_async_answer_from_timer(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    fx->delay_ms = 100;
    run_client(fx, client_slow);
    struct response r = nth_response(fx, 0, 0);
    assert_int_equal(r.status, 200);
    assert_body(&r, "slow");
    assert_int_equal(fx->n_async_answers, 1);
}

static void client_gone_before_answer(struct fixture *fx)
{
    int fd = client_connect(fx->port);
    if (fd < 0)
        return;
    const char *req = "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n";
    client_send(fd, req, strlen(req));
    sleep_ms(50); /* the request is being handled */
    close(fd);
    sleep_ms(400); /* the answer comes after the peer has gone */
}

static void test_peer_closes_before_async_answer(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    fx->delay_ms = 250;
    run_client(fx, client_gone_before_answer);
    assert_int_equal(fx->n_async_answers, 1);
}

static void client_stash(struct fixture *fx)
{
    fx->open_fd = client_connect(fx->port);
    const char *req = "GET /stash HTTP/1.1\r\nHost: t\r\n\r\n";
    if (fx->open_fd >= 0)
        client_send(fx->open_fd, req, strlen(req));
    sleep_ms(100); /* the server is destroyed while the connection is open */
}

/* The server goes away while a handler holds an exchange: answering it later is harmless. */
static void test_destroy_with_pending_exchange(void **state)
{
    struct fixture *fx = *state;
    start_server(fx, NULL);
    run_client(fx, client_stash);
    assert_true(fx->open_fd >= 0);
    client_read(fx->open_fd, &fx->cap[0], 1, true);
    close(fx->open_fd);
    assert_true(fx->cap[0].eof);
    assert_int_equal(fx->cap[0].len, 0); /* answered with nothing */
    assert_non_null(fx->stashed);
    mw_http_respond(fx->stashed, 200, "text/plain", "late", 4);
    fx->stashed = NULL;
}

/* ---- tests: hostile input ---------------------------------------------------------------- */

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void client_random(struct fixture *fx)
{
    static const char *prefixes[] = {
        "",
        "GET /echo/",
        "POST /echo/ HTTP/1.1\r\nContent-Length: 20\r\n",
        "GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char buf[2048];
    for (int i = 0; i < 300; i++) {
        const char *prefix = prefixes[i % 4];
        size_t plen = strlen(prefix);
        memcpy(buf, prefix, plen);
        size_t len = plen + 1 + xorshift(&seed) % (sizeof buf - plen - 1);
        for (size_t k = plen; k < len; k++)
            buf[k] = (char)(xorshift(&seed) & 0xff);
        int fd = client_connect(fx->port);
        if (fd < 0)
            continue;
        client_send(fd, buf, len);
        struct capture *scratch = &fx->cap[3];
        scratch->len = 0;
        client_read(fd, scratch, 1, true);
        close(fd);
        fx->n_random_sent++;
    }
    transact(fx, 0, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 1, false);
}

static void test_random_bytes_never_crash(void **state)
{
    struct fixture *fx = *state;
    struct mw_http_server_options opts = {.idle_timeout_ms = 50};
    start_server(fx, &opts);
    run_client(fx, client_random);
    assert_int_equal(fx->n_random_sent, 300);
    struct response r = nth_response(fx, 0, 0);
    assert_int_equal(r.status, 200);
}

/* ---- tests: creation and query parameters ------------------------------------------------ */

static void test_create_invalid(void **state)
{
    struct fixture *fx = *state;
    struct mw_http_server *srv = NULL;
    struct mw_http_server_options bad_host = {.host = "not-an-address"};
    assert_int_equal(mw_http_server_create(&fx->loop, &bad_host, &srv), MW_EINVAL);
    assert_null(srv);
    struct mw_http_server_options bad_port = {.port = 70000};
    assert_int_equal(mw_http_server_create(&fx->loop, &bad_port, &srv), MW_EINVAL);
    assert_int_equal(mw_http_server_create(NULL, NULL, &srv), MW_EINVAL);
    /* a port in use */
    start_server(fx, NULL);
    struct mw_http_server_options taken = {.port = fx->port};
    assert_int_equal(mw_http_server_create(&fx->loop, &taken, &srv), MW_ESYS);
    assert_null(srv);
    mw_http_server_destroy(NULL);
}

static void test_query_param(void **state)
{
    (void)state;
    char out[16];
    const char *q = "a=1&name=J%C3%B6rg+M%20x&empty=&flag&a=2&enc%5Fkey=v&bad=%zz&nul=a%00";
    assert_int_equal(mw_http_query_param(q, "a", out, sizeof out), 0);
    assert_string_equal(out, "1");
    assert_int_equal(mw_http_query_param(q, "name", out, sizeof out), 0);
    assert_string_equal(out, "J\xc3\xb6rg M x");
    assert_int_equal(mw_http_query_param(q, "empty", out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(mw_http_query_param(q, "flag", out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(mw_http_query_param(q, "enc_key", out, sizeof out), 0);
    assert_string_equal(out, "v");
    assert_int_equal(mw_http_query_param(q, "missing", out, sizeof out), MW_ENOTFOUND);
    assert_int_equal(mw_http_query_param(q, "nam", out, sizeof out), MW_ENOTFOUND);
    assert_int_equal(mw_http_query_param("", "a", out, sizeof out), MW_ENOTFOUND);
    assert_int_equal(mw_http_query_param(q, "bad", out, sizeof out), MW_EINVAL);
    assert_int_equal(mw_http_query_param(q, "nul", out, sizeof out), MW_EINVAL);
    /* too big: "J\xc3\xb6rg M x" is 9 bytes, needs 10 with the NUL */
    assert_int_equal(mw_http_query_param(q, "name", out, 9), MW_ETOOBIG);
    assert_int_equal(mw_http_query_param(q, "name", out, 10), 0);
    assert_int_equal(mw_http_query_param(q, "a", out, 0), MW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404_405, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_guard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_400_and_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_headers_431, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_body_413, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_pipelined_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_closed_peer_gets_big_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_many_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_requests_and_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_204_has_no_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_percent_decoded_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_longest_prefix_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_answer_from_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_closes_before_async_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_with_pending_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_bytes_never_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_invalid, setup, teardown),
        cmocka_unit_test(test_query_param),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
