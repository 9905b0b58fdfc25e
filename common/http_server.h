/*
 * http_server.h — a small HTTP/1.1 server on libuv + http-parser for /healthz, /readyz,
 * /metrics and the aggregator's JSON API.
 *
 * Requests are parsed with http-parser; bounded header and body sizes (431 / 413), a bounded
 * number of connections, idle timeouts, keep-alive and pipelined requests answered in order.
 * Slow clients cannot hold the server (slowloris): a request must arrive within a deadline that
 * trickling bytes do not extend, one peer address holds at most its share of the connections,
 * and a full server closes the connection that has waited longest for a request to make room,
 * so /healthz keeps answering.
 * A handler gets an exchange and answers it with mw_http_respond(), at once or later (after a
 * Redis reply): the exchange stays valid until answered even if the peer has gone, in which case
 * the answer is discarded. Malformed requests get 400 and the connection is closed; the server
 * never crashes on input.
 *
 * Built in: GET /healthz (200 "ok"), GET /readyz (200 or 503 from the ready callback),
 * GET /metrics (the Prometheus registry, text/plain; version=0.0.4). Unknown paths get 404,
 * a known path with another method 405; every error the server itself answers has the JSON
 * error envelope of mw_http_respond_error.
 */
#ifndef MW_COMMON_HTTP_SERVER_H
#define MW_COMMON_HTTP_SERVER_H

#include "http_request.h" /* mw_http_query_param, MW_HTTP_AUTHORIZATION_MAX */
#include "prom.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct mw_http_server;
struct mw_http_exchange;

struct mw_http_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* percent-decoded path without the query: "/api/v1/models/churn" */
    const char *query;  /* raw query without '?', "" when none */
    const char *body;   /* NULL when empty */
    size_t body_len;
    /* Value of the Authorization header ("" when absent; one longer than
     * MW_HTTP_AUTHORIZATION_MAX bytes reads as "" too, so it never matches a credential). */
    const char *authorization;
};

typedef void (*mw_http_handler_fn)(struct mw_http_exchange *ex, const struct mw_http_request *req,
                                   void *arg);
typedef bool (*mw_http_ready_fn)(void *arg);
/* Asked before the handler of a request that writes (any method but GET and HEAD) on a known
 * route: true lets it through; false means the guard answered it (401, say) and it stops. */
typedef bool (*mw_http_guard_fn)(struct mw_http_exchange *ex, const struct mw_http_request *req,
                                 void *arg);

struct mw_http_server_options {
    const char *host;         /* "127.0.0.1" by default */
    int port;                 /* 0 picks a free port: see mw_http_server_port() */
    size_t max_header_bytes;  /* default 16 KiB */
    size_t max_body_bytes;    /* default 1 MiB */
    int max_connections;      /* default 256 */
    uint64_t idle_timeout_ms; /* default 30 s */
    /* A request's head must arrive whole within this from its first byte (default 10 s); its
     * body gets this again plus a second per 64 KiB announced. A slow sender is answered 408
     * and closed, however steadily it trickles. */
    uint64_t request_timeout_ms;
    int max_connections_per_client; /* from one peer address; default max_connections / 4 */
};

/* Connections refused or cut off by the limits, since start. */
struct mw_http_server_stats {
    uint64_t refused_full;       /* every slot busy with requests in progress */
    uint64_t refused_per_client; /* the peer address already held its share */
    uint64_t evicted;            /* waiting longest for a request when the server was full */
    uint64_t request_timeouts;   /* a request that did not arrive within request_timeout */
};

/* Listen on host:port on `loop`. Returns 0, MW_EINVAL, MW_ESYS (bind/listen failed; logged with
 * the address) or MW_ENOMEM. */
int mw_http_server_create(uv_loop_t *loop, const struct mw_http_server_options *opts,
                          struct mw_http_server **out);

/* Stop listening, close every connection, free the server once the loop has run the close
 * callbacks. Pending exchanges are answered with nothing. Accepts NULL. */
void mw_http_server_destroy(struct mw_http_server *srv);

/* The counters above; NULL-safe (all zero). */
struct mw_http_server_stats mw_http_server_stats(const struct mw_http_server *srv);

/* The port actually bound. */
int mw_http_server_port(const struct mw_http_server *srv);

/* Route `method` + `path` to `fn`. With `prefix`, every path starting with `path` matches (the
 * longest registered prefix wins). Returns 0, MW_EINVAL or MW_ENOMEM. */
int mw_http_server_route(struct mw_http_server *srv, const char *method, const char *path,
                         bool prefix, mw_http_handler_fn fn, void *arg);

/* What /metrics renders (borrowed; must outlive the server) and what /readyz asks. */
void mw_http_server_set_metrics(struct mw_http_server *srv, struct mw_prom_registry *reg);
void mw_http_server_set_ready(struct mw_http_server *srv, mw_http_ready_fn fn, void *arg);
/* One guard for every write, whoever handles it, so no write route can forget to check. */
void mw_http_server_set_write_guard(struct mw_http_server *srv, mw_http_guard_fn fn, void *arg);

/* Answer an exchange; copies `body`. Frees the exchange: call exactly once per exchange. */
void mw_http_respond(struct mw_http_exchange *ex, int status, const char *content_type,
                     const char *body, size_t body_len);
/* Answer with a JSON error body in the envelope Prometheus's HTTP API uses:
 * {"status": "error", "errorType": mw_http_error_type(status), "error": message}. */
void mw_http_respond_error(struct mw_http_exchange *ex, int status, const char *message);

/* The errorType of an error status: 401 and 403 "unauthorized", 404 "not_found", 503
 * "unavailable", any other 5xx "internal", any other 4xx "bad_data" (as Prometheus answers a
 * malformed request 400 bad_data). Static storage. */
const char *mw_http_error_type(int status);

#endif
