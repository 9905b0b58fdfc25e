/*
 * http_client.h — outbound HTTP(S) requests on a libuv loop, through libcurl's multi interface.
 *
 * The aggregator talks to PagerDuty and webhooks from the same loop that consumes Kafka and
 * answers /metrics, so a request must never block it: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION -> uv_poll) and when to call it back (CURLMOPT_TIMERFUNCTION ->
 * uv_timer), and every transfer ends in a callback on the loop with its status and body.
 *
 *   struct mw_http_client *c;
 *   mw_http_client_create(loop, NULL, &c);
 *   struct mw_http_client_request req = {.url = "https://...", .body = json, .body_len = n,
 *                                        .headers = (const char *[]){"Content-Type: ...", NULL},
 *                                        .timeout_ms = 10000};
 *   mw_http_client_send(c, &req, on_response, arg);
 *   ...
 *   mw_http_client_shutdown(c, 2000, on_closed, arg);   in-flight requests get 2 s to finish
 *
 * Errors are converted once, here: a transfer that produced no HTTP response ends with
 * MW_ETRANSPORT (timed_out says whether a timeout ended it), MW_EINVAL (a URL curl refuses),
 * MW_ENOMEM, or MW_ECLOSED (cancelled by shutdown). Only http and https are spoken; redirects are
 * not followed (a receiver that redirects is misconfigured, and the answer says so).
 */
#ifndef MW_COMMON_HTTP_CLIENT_H
#define MW_COMMON_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct mw_http_client;

struct mw_http_client_options {
    size_t max_response_bytes; /* body kept per response; the rest is cut off (default 64 KiB) */
    long max_connections;      /* total connections curl may open (default 16; more wait) */
    const char *ca_file;       /* CA bundle for https; NULL = the system's */
    const char *user_agent;    /* default "modelwatch/<version>" */
};

struct mw_http_client_request {
    const char *url;            /* http:// or https:// */
    const char *method;         /* NULL = "POST" */
    const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
    const char *body;           /* copied; may be NULL when body_len is 0 */
    size_t body_len;
    uint64_t timeout_ms;         /* whole transfer; 0 = 30 s */
    uint64_t connect_timeout_ms; /* TCP + TLS handshake; 0 = 10 s */
};

struct mw_http_client_response {
    int err;          /* 0: an HTTP response arrived (any status); else an MW_E* code */
    bool timed_out;   /* err == MW_ETRANSPORT because a timeout expired */
    long status;      /* HTTP status, 0 when none arrived */
    const char *body; /* NUL-terminated, borrowed for the callback only; "" when none */
    size_t body_len;
    bool body_truncated;    /* the body was longer than max_response_bytes and was cut */
    int64_t retry_after_ms; /* from a Retry-After header (seconds or HTTP date); -1 when absent */
    const char *error_text; /* what went wrong when err != 0 (curl's words), "" otherwise;
                               borrowed for the callback only */
    uint64_t elapsed_ms;
};

/* Read one header line of a response as libcurl hands it over (status lines included, CRLF
 * kept, not NUL-terminated): a status line starts a new response and forgets an earlier
 * Retry-After; a Retry-After line sets *retry_after_ms (seconds or an HTTP date; -1 when it is
 * neither). Other lines change nothing. The client's own header step, exposed for its tests. */
void mw_http_client_response_header(const char *line, size_t n, int64_t *retry_after_ms);

/* Called once per request, on the loop, never from inside mw_http_client_send(). It may send
 * further requests (they fail with MW_ECLOSED once shutdown has begun). */
typedef void (*mw_http_client_done_fn)(const struct mw_http_client_response *resp, void *arg);
typedef void (*mw_http_client_closed_fn)(void *arg);

/* Create a client on `loop`. `opts` may be NULL (defaults). Returns 0, MW_ENOMEM, or MW_EIO
 * (libcurl could not be initialised). */
int mw_http_client_create(uv_loop_t *loop, const struct mw_http_client_options *opts,
                          struct mw_http_client **out);

/* Start one request. Everything in `req` is copied; `done` will be called exactly once when this
 * returns 0. Returns 0, MW_EINVAL (no URL), MW_ENOMEM, or MW_ECLOSED after shutdown began (then
 * `done` is not called). */
int mw_http_client_send(struct mw_http_client *c, const struct mw_http_client_request *req,
                        mw_http_client_done_fn done, void *arg);

/* Number of requests started and not yet answered. */
size_t mw_http_client_in_flight(const struct mw_http_client *c);

/* Stop taking requests; let those in flight finish for up to `grace_ms` (0: cancel them now,
 * each callback getting MW_ECLOSED); then release curl and the loop handles and free the client,
 * calling `closed` (may be NULL) when the loop has closed the last handle. Calling it again is a
 * no-op. Accepts NULL. */
void mw_http_client_shutdown(struct mw_http_client *c, uint64_t grace_ms,
                             mw_http_client_closed_fn closed, void *arg);

/* mw_http_client_shutdown(c, 0, NULL, NULL): cancel everything and free once the loop has run
 * the close callbacks. */
void mw_http_client_destroy(struct mw_http_client *c);

#endif
