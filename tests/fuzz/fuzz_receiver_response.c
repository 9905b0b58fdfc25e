/*
 * fuzz_receiver_response.c — what PagerDuty or a webhook answers a notification.
 *
 * The steps the aggregator takes on an answer: each header line through the HTTP client's
 * header step (a status line starts a response, Retry-After in seconds or as an HTTP date), the
 * body bounded as the client keeps it, the receiver's verdict (PagerDuty and webhook), the wait
 * before a retry with the Retry-After honoured up to its bound, and the body quoted into the log
 * line of a rejection.
 *
 * Input: two bytes of HTTP status (big-endian, taken modulo 1000), then header lines ending at
 * the first empty line, then the body.
 */
#include "alert/delivery.h"
#include "alert/receiver.h"
#include "fuzz.h"
#include "http_client.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

#define MAX_RESPONSE_BYTES (64u * 1024u) /* the client's default body bound */
#define RETRY_AFTER_MAX_MS 600000

/* Feed the header lines of data[0..size) to the client's header step; returns where the body
 * starts. */
static size_t read_headers(const uint8_t *data, size_t size, int64_t *retry_after_ms)
{
    size_t i = 0;
    while (i < size) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        size_t end = nl ? (size_t)(nl - data) + 1 : size;
        const char *line = (const char *)data + i;
        size_t n = end - i;
        i = end;
        if ((n == 1 && line[0] == '\n') || (n == 2 && line[0] == '\r' && line[1] == '\n'))
            break; /* the empty line: the body follows */
        mw_http_client_response_header(line, n, retry_after_ms);
    }
    return i;
}

static void judge(const struct mw_receiver_ops *ops, const struct mw_http_client_response *resp)
{
    enum mw_receiver_verdict v = ops->classify(NULL, resp);
    if (v != MW_RECEIVER_DELIVERED && v != MW_RECEIVER_RETRY && v != MW_RECEIVER_REJECTED)
        abort();
    if (!mw_receiver_verdict_name(v))
        abort();
    if (v == MW_RECEIVER_RETRY) {
        uint64_t rng = 0x9e3779b97f4a7c15ULL;
        uint64_t wait = mw_delivery_backoff_ms(1000, 300000, 3, resp->retry_after_ms,
                                               RETRY_AFTER_MAX_MS, &rng);
        if (wait > 300000 && wait > RETRY_AFTER_MAX_MS)
            abort(); /* a receiver cannot push the retry past both bounds */
    } else if (v == MW_RECEIVER_REJECTED) {
        char quoted[600];
        mw_log_quote(resp->body, quoted, sizeof quoted);
        if (strlen(quoted) >= sizeof quoted)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_fuzz_quiet();
    if (size < 2)
        return 0;
    struct mw_http_client_response resp = {.retry_after_ms = -1, .error_text = ""};
    resp.status = ((long)data[0] << 8 | data[1]) % 1000;
    size_t body_at = 2 + read_headers(data + 2, size - 2, &resp.retry_after_ms);
    size_t body_len = size - body_at;
    if (body_len > MAX_RESPONSE_BYTES) {
        body_len = MAX_RESPONSE_BYTES;
        resp.body_truncated = true;
    }
    char *body = malloc(body_len + 1); /* the client hands the body NUL-terminated */
    if (!body)
        return 0;
    memcpy(body, data + body_at, body_len);
    body[body_len] = '\0';
    resp.body = body;
    resp.body_len = body_len;
    judge(&mw_receiver_pagerduty_ops, &resp);
    judge(&mw_receiver_webhook_ops, &resp);
    free(body);
    return 0;
}
