/*
 * test_http_client.c — the libcurl-on-libuv client against a tiny HTTP server on the same loop.
 *
 * The server is a few dozen lines of uv_tcp: it reads one request per connection, records it,
 * and answers according to the path (/ok, /echo, /retry-after-*, /slow, /hang, /big), always with
 * "Connection: close". Client and server share the test's loop, so nothing runs on another
 * thread; every test ends by closing both and checking that uv_loop_close() succeeds, i.e. that
 * the client left no handle behind.
 */
#include "http_client.h"

#include "alloc.h"
#include "error.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>

#define CONN_BUF_BYTES (256 * 1024)
#define MAX_CONNS 128
#define BIG_BODY_BYTES (200 * 1024)

/* ---- the tiny server ---------------------------------------------------------------------- */

struct srv;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t delay;
    struct srv *s;
    char buf[CONN_BUF_BYTES];
    size_t len;
    bool answered;
    bool closing;
    int open_handles;
    char *reply;
};

struct srv {
    uv_tcp_t tcp;
    int port;
    int n_requests;
    char last_request[8192];
    struct conn *conns[MAX_CONNS];
    int n_conns;
    bool closing;
};

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->open_handles == 0) {
        mw_free(c->reply);
        mw_free(c);
    }
}

static void close_conn(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    for (int i = 0; i < c->s->n_conns; i++) {
        if (c->s->conns[i] == c) {
            c->s->conns[i] = c->s->conns[--c->s->n_conns];
            break;
        }
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->delay, on_conn_closed);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    struct conn *c = w->data;
    mw_free(w);
    close_conn(c);
}

static void send_reply(struct conn *c)
{
    uv_write_t *w = mw_calloc(1, sizeof *w);
    assert_non_null(w);
    w->data = c;
    uv_buf_t b = uv_buf_init(c->reply, (unsigned)strlen(c->reply));
    assert_int_equal(uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written), 0);
}

static void on_delay(uv_timer_t *t)
{
    send_reply(t->data);
}

static char *format_reply(int status, const char *extra_headers, const char *body, size_t body_len)
{
    size_t size = body_len + 512 + strlen(extra_headers);
    char *r = mw_malloc(size);
    assert_non_null(r);
    int n = snprintf(r, size, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                     status, body_len, extra_headers);
    memcpy(r + n, body, body_len);
    r[n + body_len] = '\0';
    return r;
}

static void answer(struct conn *c, const char *path, const char *body, size_t body_len)
{
    char headers[256] = "";
    if (strcmp(path, "/ok") == 0) {
        c->reply = format_reply(202, "", "{\"status\":\"success\"}", 20);
    } else if (strcmp(path, "/echo") == 0) {
        c->reply = format_reply(200, "", body, body_len);
    } else if (strcmp(path, "/retry-after-seconds") == 0) {
        c->reply = format_reply(429, "Retry-After: 7\r\n", "", 0);
    } else if (strcmp(path, "/retry-after-date") == 0) {
        time_t when = time(NULL) + 120;
        struct tm tm;
        gmtime_r(&when, &tm);
        strftime(headers, sizeof headers, "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        c->reply = format_reply(503, headers, "", 0);
    } else if (strcmp(path, "/slow") == 0) {
        c->reply = format_reply(200, "", "late", 4);
        uv_timer_start(&c->delay, on_delay, 300, 0);
        return;
    } else if (strcmp(path, "/hang") == 0) {
        return; /* never answer */
    } else if (strcmp(path, "/big") == 0) {
        char *big = mw_malloc(BIG_BODY_BYTES);
        assert_non_null(big);
        memset(big, 'x', BIG_BODY_BYTES);
        c->reply = format_reply(200, "", big, BIG_BODY_BYTES);
        mw_free(big);
    } else {
        c->reply = format_reply(404, "", "", 0);
    }
    send_reply(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct conn *c = h->data;
    b->base = c->buf + c->len;
    b->len = CONN_BUF_BYTES - c->len - 1;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    struct conn *c = stream->data;
    if (nread < 0) {
        close_conn(c);
        return;
    }
    c->len += (size_t)nread;
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end || c->answered)
        return;
    size_t head_len = (size_t)(end - c->buf) + 4;
    size_t content_length = 0;
    const char *cl = strcasestr(c->buf, "\r\nContent-Length:");
    if (cl && cl < end)
        content_length = strtoul(cl + 17, NULL, 10);
    if (c->len < head_len + content_length)
        return;
    c->answered = true;
    struct srv *s = c->s;
    s->n_requests++;
    size_t keep = c->len < sizeof s->last_request - 1 ? c->len : sizeof s->last_request - 1;
    memcpy(s->last_request, c->buf, keep);
    s->last_request[keep] = '\0';
    char path[128] = "";
    const char *sp = strchr(c->buf, ' ');
    if (sp) {
        size_t n = strcspn(sp + 1, " ");
        snprintf(path, sizeof path, "%.*s", (int)n, sp + 1);
    }
    answer(c, path, c->buf + head_len, content_length);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct srv *s = server->data;
    assert_int_equal(status, 0);
    struct conn *c = mw_calloc(1, sizeof *c);
    assert_non_null(c);
    c->s = s;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->delay);
    c->tcp.data = c;
    c->delay.data = c;
    c->open_handles = 2;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
    assert_true(s->n_conns < MAX_CONNS);
    s->conns[s->n_conns++] = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void srv_start(uv_loop_t *loop, struct srv *s)
{
    memset(s, 0, sizeof *s);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s;
    assert_int_equal(uv_tcp_bind(&s->tcp, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->tcp, 128, on_connection), 0);
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&bound, &len);
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void srv_stop(struct srv *s)
{
    while (s->n_conns)
        close_conn(s->conns[0]);
    uv_close((uv_handle_t *)&s->tcp, NULL);
}

/* ---- fixture ------------------------------------------------------------------------------- */

struct result {
    bool done;
    struct mw_http_client_response resp;
    char body[BIG_BODY_BYTES + 1];
    char error_text[256];
    uint64_t at_ms;
};

struct fixture {
    uv_loop_t loop;
    struct srv srv;
    struct mw_http_client *client;
    bool closed;
    char url[256];
};

static void on_done(const struct mw_http_client_response *resp, void *arg)
{
    struct result *r = arg;
    assert_false(r->done);
    r->done = true;
    r->resp = *resp;
    memcpy(r->body, resp->body, resp->body_len);
    r->body[resp->body_len] = '\0';
    r->resp.body = r->body;
    snprintf(r->error_text, sizeof r->error_text, "%s", resp->error_text);
    r->resp.error_text = r->error_text;
    r->at_ms = uv_hrtime() / 1000000;
}

static void on_closed(void *arg)
{
    struct fixture *f = arg;
    f->closed = true;
}

static int setup(void **state)
{
    struct fixture *f = mw_calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    srv_start(&f->loop, &f->srv);
    struct mw_http_client_options opts = {.max_response_bytes = 4096};
    assert_int_equal(mw_http_client_create(&f->loop, &opts, &f->client), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->client)
        mw_http_client_shutdown(f->client, 0, on_closed, f);
    srv_stop(&f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->closed);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    mw_free(f);
    return 0;
}

static const char *url(struct fixture *f, const char *path)
{
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", f->srv.port, path);
    return f->url;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until every result is done. A ticking timer makes each UV_RUN_ONCE return soon
 * even when a result was set from a timer callback, before the loop blocks in poll. */
static void run_until(struct fixture *f, struct result **results, size_t n)
{
    uv_timer_t tick;
    uv_timer_init(&f->loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < n; i++)
            all = all && results[i]->done;
        if (all)
            break;
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static int post(struct fixture *f, const char *path, const char *body, uint64_t timeout_ms,
                struct result *r)
{
    const char *headers[] = {"Content-Type: application/json", "X-Test: yes", NULL};
    struct mw_http_client_request req = {.url = url(f, path),
                                         .headers = headers,
                                         .body = body,
                                         .body_len = body ? strlen(body) : 0,
                                         .timeout_ms = timeout_ms,
                                         .connect_timeout_ms = 1000};
    return mw_http_client_send(f->client, &req, on_done, r);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_post_with_headers_and_body(void **state)
{
    struct fixture *f = *state;
    static struct result r;
    memset(&r, 0, sizeof r);
    assert_int_equal(post(f, "/echo", "{\"hello\":\"world\"}", 5000, &r), 0);
    assert_int_equal(mw_http_client_in_flight(f->client), 1);
    assert_false(r.done); /* never answered from inside send */
    run_until(f, (struct result *[]){&r}, 1);
    assert_int_equal(r.resp.err, 0);
    assert_int_equal(r.resp.status, 200);
    assert_string_equal(r.body, "{\"hello\":\"world\"}");
    assert_int_equal(r.resp.retry_after_ms, -1);
    assert_false(r.resp.body_truncated);
    assert_non_null(strstr(f->srv.last_request, "POST /echo HTTP/1.1\r\n"));
    assert_non_null(strstr(f->srv.last_request, "\r\nX-Test: yes\r\n"));
    assert_non_null(strstr(f->srv.last_request, "\r\nContent-Type: application/json\r\n"));
    assert_null(strcasestr(f->srv.last_request, "Expect:"));
    assert_int_equal(mw_http_client_in_flight(f->client), 0);
}

static void test_status_and_retry_after(void **state)
{
    struct fixture *f = *state;
    static struct result ok, secs, date, missing;
    memset(&ok, 0, sizeof ok);
    memset(&secs, 0, sizeof secs);
    memset(&date, 0, sizeof date);
    memset(&missing, 0, sizeof missing);
    assert_int_equal(post(f, "/ok", "{}", 5000, &ok), 0);
    assert_int_equal(post(f, "/retry-after-seconds", "{}", 5000, &secs), 0);
    assert_int_equal(post(f, "/retry-after-date", "{}", 5000, &date), 0);
    assert_int_equal(post(f, "/nothing-here", "{}", 5000, &missing), 0);
    run_until(f, (struct result *[]){&ok, &secs, &date, &missing}, 4);
    assert_int_equal(ok.resp.status, 202);
    assert_string_equal(ok.body, "{\"status\":\"success\"}");
    assert_int_equal(secs.resp.err, 0);
    assert_int_equal(secs.resp.status, 429);
    assert_int_equal(secs.resp.retry_after_ms, 7000);
    assert_int_equal(date.resp.status, 503);
    assert_in_range(date.resp.retry_after_ms, 118000, 120000);
    assert_int_equal(missing.resp.status, 404);
    assert_int_equal(missing.resp.retry_after_ms, -1);
}

/* A receiver that never answers ends in a timeout, and other requests finish meanwhile. */
/* A Retry-After date so far ahead that its wait in milliseconds overflowed int64 (undefined
 * behaviour) reads as unreadable, like a number of seconds beyond a year. */
static void test_retry_after_far_future_date(void **state)
{
    (void)state;
    static const char far_date[] = "Retry-After: Wed, 21 Oct 555555570 07:28:00 GMT\r\n";
    static const char far_seconds[] = "Retry-After: 31536001\r\n";
    static const char year_seconds[] = "Retry-After: 31536000\r\n";
    static const char past_date[] = "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n";
    static const char status_line[] = "HTTP/1.1 200 OK\r\n";
    int64_t ms = 5;
    mw_http_client_response_header(far_date, sizeof far_date - 1, &ms);
    assert_int_equal(ms, -1);
    mw_http_client_response_header(year_seconds, sizeof year_seconds - 1, &ms);
    assert_int_equal(ms, 31536000000LL);
    mw_http_client_response_header(far_seconds, sizeof far_seconds - 1, &ms);
    assert_int_equal(ms, -1);
    mw_http_client_response_header(past_date, sizeof past_date - 1, &ms);
    assert_int_equal(ms, 0);
    mw_http_client_response_header(status_line, sizeof status_line - 1, &ms);
    assert_int_equal(ms, -1);
}

static void test_hang_times_out_without_stalling_others(void **state)
{
    struct fixture *f = *state;
    static struct result hang, fast;
    memset(&hang, 0, sizeof hang);
    memset(&fast, 0, sizeof fast);
    uint64_t start_ms = uv_hrtime() / 1000000;
    assert_int_equal(post(f, "/hang", "{}", 400, &hang), 0);
    assert_int_equal(post(f, "/ok", "{}", 5000, &fast), 0);
    run_until(f, (struct result *[]){&hang, &fast}, 2);
    assert_int_equal(fast.resp.status, 202);
    assert_true(fast.at_ms < hang.at_ms);
    assert_int_equal(hang.resp.err, MW_ETRANSPORT);
    assert_true(hang.resp.timed_out);
    assert_int_equal(hang.resp.status, 0);
    assert_in_range(hang.at_ms - start_ms, 350, 3000);
    assert_true(hang.resp.error_text[0] != '\0');
}

static void test_connection_refused(void **state)
{
    struct fixture *f = *state;
    /* A port nobody listens on: bind one, note it, close it. */
    struct srv gone;
    srv_start(&f->loop, &gone);
    int port = gone.port;
    srv_stop(&gone);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    static struct result r;
    memset(&r, 0, sizeof r);
    char u[128];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/x", port);
    struct mw_http_client_request req = {.url = u, .body = "{}", .body_len = 2};
    assert_int_equal(mw_http_client_send(f->client, &req, on_done, &r), 0);
    run_until(f, (struct result *[]){&r}, 1);
    assert_int_equal(r.resp.err, MW_ETRANSPORT);
    assert_false(r.resp.timed_out);
}

static void test_bad_urls(void **state)
{
    struct fixture *f = *state;
    static struct result r;
    memset(&r, 0, sizeof r);
    struct mw_http_client_request req = {.url = "ftp://127.0.0.1/x"};
    assert_int_equal(mw_http_client_send(f->client, &req, on_done, &r), 0);
    run_until(f, (struct result *[]){&r}, 1);
    assert_int_equal(r.resp.err, MW_EINVAL);
    struct mw_http_client_request none = {.url = NULL};
    assert_int_equal(mw_http_client_send(f->client, &none, on_done, &r), MW_EINVAL);
}

static void test_long_body_is_cut(void **state)
{
    struct fixture *f = *state;
    static struct result r;
    memset(&r, 0, sizeof r);
    assert_int_equal(post(f, "/big", NULL, 5000, &r), 0);
    run_until(f, (struct result *[]){&r}, 1);
    assert_int_equal(r.resp.err, 0);
    assert_int_equal(r.resp.status, 200);
    assert_true(r.resp.body_truncated);
    assert_int_equal(r.resp.body_len, 4096);
}

static void test_many_at_once(void **state)
{
    struct fixture *f = *state;
    enum { N = 40 };
    static struct result r[N];
    struct result *all[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        all[i] = &r[i];
        assert_int_equal(post(f, "/ok", "{}", 5000, &r[i]), 0);
    }
    run_until(f, all, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].resp.status, 202);
    assert_int_equal(f->srv.n_requests, N);
}

/* Shutdown with a grace period lets a slow answer arrive; a hanging one is cancelled at its
 * end; nothing can be sent once shutdown began. */
static void test_shutdown_completes_or_cancels(void **state)
{
    struct fixture *f = *state;
    static struct result slow, hang, late;
    memset(&slow, 0, sizeof slow);
    memset(&hang, 0, sizeof hang);
    memset(&late, 0, sizeof late);
    assert_int_equal(post(f, "/slow", "{}", 10000, &slow), 0);
    assert_int_equal(post(f, "/hang", "{}", 10000, &hang), 0);
    uint64_t start_ms = uv_hrtime() / 1000000;
    mw_http_client_shutdown(f->client, 1000, on_closed, f);
    assert_int_equal(post(f, "/ok", "{}", 1000, &late), MW_ECLOSED);
    run_until(f, (struct result *[]){&slow, &hang}, 2);
    assert_int_equal(slow.resp.err, 0);
    assert_string_equal(slow.body, "late");
    assert_int_equal(hang.resp.err, MW_ECLOSED);
    assert_in_range(hang.at_ms - start_ms, 900, 5000);
    assert_false(late.done);
    while (!f->closed)
        uv_run(&f->loop, UV_RUN_ONCE);
    f->client = NULL;
}

/* With nothing in flight, shutdown closes at once. */
static void test_shutdown_idle(void **state)
{
    struct fixture *f = *state;
    mw_http_client_shutdown(f->client, 60000, on_closed, f);
    mw_http_client_shutdown(f->client, 60000, on_closed, f); /* again: no-op */
    uint64_t start_ms = uv_hrtime() / 1000000;
    while (!f->closed)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(uv_hrtime() / 1000000 - start_ms < 1000);
    f->client = NULL;
    mw_http_client_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_post_with_headers_and_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_and_retry_after, setup, teardown),
        cmocka_unit_test(test_retry_after_far_future_date),
        cmocka_unit_test_setup_teardown(test_hang_times_out_without_stalling_others, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_body_is_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_completes_or_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_idle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
