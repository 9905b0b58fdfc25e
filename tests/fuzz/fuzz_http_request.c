/*
 * fuzz_http_request.c — the bytes a client sends the HTTP server (/metrics, /healthz, the
 * aggregator's API).
 *
 * The server's steps on a connection's input: mw_http_request_parser_execute over the bytes
 * as they arrive (in pieces, pipelined requests one after the other), and for each whole
 * request the target split and its path percent-decoded as an exchange is built, then the
 * query parameters the API reads.
 *
 * Input: one byte giving the size of the pieces the bytes arrive in (0: all at once), then
 * the bytes. Small bounds make 413 and 431 reachable.
 */
#include "error.h"
#include "fuzz.h"
#include "http_request.h"

#include <stdlib.h>
#include <string.h>

#define MAX_HEADER_BYTES 2048
#define MAX_BODY_BYTES 8192

static const char *const params[] = {"version", "from", "to", "resolution", "limit", "state"};

/* What the server does with a whole request before a handler sees it. */
static void take_request(const struct mw_http_request_parser *p)
{
    const char *path, *query;
    size_t path_len, query_len;
    if (p->body.len > MAX_BODY_BYTES || p->header_bytes > MAX_HEADER_BYTES)
        abort(); /* the bounds hold for every request let through */
    if (mw_http_request_split_target(p, &path, &path_len, &query, &query_len) != 0)
        return; /* answered 400 */
    char *decoded = malloc(path_len + 1);
    char *query_text = malloc(query_len + 1);
    if (!decoded || !query_text)
        abort();
    if (mw_http_percent_decode(path, path_len, false, decoded, path_len + 1) == 0 &&
        strlen(decoded) > path_len)
        abort();
    memcpy(query_text, query, query_len);
    query_text[query_len] = '\0';
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        char value[64];
        int rc = mw_http_query_param(query_text, params[i], value, sizeof value);
        if (rc == 0 && strlen(value) >= sizeof value)
            abort();
    }
    free(query_text);
    free(decoded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_fuzz_quiet();
    if (size < 1)
        return 0;
    size_t piece = data[0] ? data[0] : size;
    const char *in = (const char *)data + 1;
    size_t left = size - 1;
    struct mw_http_request_parser p;
    mw_http_request_parser_init(&p, MAX_HEADER_BYTES, MAX_BODY_BYTES, NULL, NULL);
    /* Bytes arrive `piece` at a time; what the parser leaves after a request is fed again. */
    size_t offered = 0, at = 0;
    bool failed = false;
    while (!failed && at < left) {
        if (offered == at)
            offered = at + (left - at < piece ? left - at : piece);
        size_t n = 0;
        enum mw_http_parse_result res = mw_http_request_parser_execute(&p, in + at, offered - at, &n);
        if (n > offered - at)
            abort();
        at += n;
        if (res == MW_HTTP_PARSE_REQUEST) {
            take_request(&p);
        } else if (res == MW_HTTP_PARSE_ERROR) {
            int s = p.error_status;
            if (s != 400 && s != 413 && s != 431 && s != 503)
                abort(); /* refusals are answered with one of these */
            failed = true;
        } else if (at != offered) {
            abort(); /* "more" takes every byte */
        }
    }
    mw_http_request_parser_free(&p);
    return 0;
}
