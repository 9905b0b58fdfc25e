/* http_request.c — HTTP/1.1 requests from bytes, bounded (see http_request.h). */
#include "http_request.h"

#include "error.h"

#include <string.h>
#include <strings.h>

/* Counted against max_header_bytes for every header line besides its name and value. */
#define HEADER_LINE_OVERHEAD 4

/* ---- percent-decoding and query strings ---------------------------------------------------- */

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The byte at s[*i] decoded (a %XX escape advances *i past it), or -1 for a bad escape. */
static int decode_at(const char *s, size_t len, size_t *i, bool plus_is_space)
{
    char ch = s[*i];
    if (ch == '+' && plus_is_space)
        return ' ';
    if (ch != '%')
        return (unsigned char)ch;
    if (len - *i < 3)
        return -1;
    int hi = hex_value(s[*i + 1]);
    int lo = hex_value(s[*i + 2]);
    if (hi < 0 || lo < 0)
        return -1;
    *i += 2;
    return hi * 16 + lo;
}

int mw_http_percent_decode(const char *s, size_t len, bool plus_is_space, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int ch = decode_at(s, len, &i, plus_is_space);
        if (ch <= 0)
            return MW_EINVAL;
        if (n + 1 >= size)
            return MW_ETOOBIG;
        out[n++] = (char)ch;
    }
    out[n] = '\0';
    return 0;
}

static bool key_equals(const char *key, size_t len, const char *name)
{
    size_t j = 0;
    for (size_t i = 0; i < len; i++, j++) {
        int ch = decode_at(key, len, &i, true);
        if (ch <= 0 || name[j] != (char)ch)
            return false;
    }
    return name[j] == '\0';
}

int mw_http_query_param(const char *query, const char *name, char *out, size_t size)
{
    if (!query || !name || !out || size == 0)
        return MW_EINVAL;
    const char *p = query;
    while (*p) {
        const char *end = strchr(p, '&');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *key_end = eq ? eq : end;
        if (key_equals(p, (size_t)(key_end - p), name)) {
            const char *value = eq ? eq + 1 : end;
            return mw_http_percent_decode(value, (size_t)(end - value), true, out, size);
        }
        p = *end ? end + 1 : end;
    }
    return MW_ENOTFOUND;
}

/* ---- the parser's callbacks ----------------------------------------------------------------- */

static int count_header_bytes(struct mw_http_request_parser *r, size_t n)
{
    r->header_bytes += n;
    if (r->header_bytes <= r->max_header_bytes)
        return 0;
    r->error_status = 431;
    return -1;
}

static int on_message_begin(http_parser *p)
{
    struct mw_http_request_parser *r = p->data;
    r->header_bytes = 0;
    r->error_status = 0;
    r->field_len = 0;
    r->in_value = false;
    r->expect_len = 0;
    r->expect_continue = false;
    r->authorization_len = 0;
    mw_buf_reset(&r->url);
    mw_buf_reset(&r->body);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct mw_http_request_parser *r = p->data;
    if (count_header_bytes(r, len))
        return -1;
    if (mw_buf_append(&r->url, at, len) == 0)
        return 0;
    r->error_status = 503; /* out of memory: the limit itself is enforced above */
    return -1;
}

/* Keep just enough of each header to recognise `Expect: 100-continue` and Authorization. */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct mw_http_request_parser *r = p->data;
    if (count_header_bytes(r, len + (r->in_value || r->field_len == 0 ? HEADER_LINE_OVERHEAD : 0)))
        return -1;
    if (r->in_value) {
        r->in_value = false;
        r->field_len = 0;
    }
    for (size_t i = 0; i < len && r->field_len < sizeof r->field; i++) {
        char ch = at[i];
        r->field[r->field_len++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct mw_http_request_parser *r = p->data;
    if (count_header_bytes(r, len))
        return -1;
    if (!r->in_value) {
        r->in_value = true;
        r->expect_len = 0;
    }
    if (r->field_len == 6 && memcmp(r->field, "expect", 6) == 0) {
        size_t n = len < sizeof r->expect - r->expect_len ? len : sizeof r->expect - r->expect_len;
        memcpy(r->expect + r->expect_len, at, n);
        r->expect_len += n;
        r->expect_continue = r->expect_len == 12 && strncasecmp(r->expect, "100-continue", 12) == 0;
    }
    if (r->field_len == 13 && memcmp(r->field, "authorization", 13) == 0) {
        if (r->authorization_len < sizeof r->authorization) {
            size_t room = sizeof r->authorization - r->authorization_len;
            memcpy(r->authorization + r->authorization_len, at, len < room ? len : room);
        }
        r->authorization_len += len; /* past the maximum: too long, read as absent */
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct mw_http_request_parser *r = p->data;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > r->max_body_bytes) {
        r->error_status = 413;
        return -1;
    }
    if (r->on_head)
        r->on_head(r, r->head_arg);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct mw_http_request_parser *r = p->data;
    int rc = mw_buf_append(&r->body, at, len);
    if (rc == 0)
        return 0;
    r->error_status = rc == MW_EFULL ? 413 : 503;
    return -1;
}

static int on_message_complete(http_parser *p)
{
    struct mw_http_request_parser *r = p->data;
    r->keep_alive = http_should_keep_alive(p) != 0;
    r->method = (enum http_method)p->method;
    r->message_done = true;
    http_parser_pause(p, 1); /* one request at a time: the caller resumes with the rest */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- the parser ------------------------------------------------------------------------------ */

void mw_http_request_parser_init(struct mw_http_request_parser *p, size_t max_header_bytes,
                                 size_t max_body_bytes, mw_http_head_fn on_head, void *head_arg)
{
    memset(p, 0, sizeof *p);
    http_parser_init(&p->parser, HTTP_REQUEST);
    p->parser.data = p;
    p->max_header_bytes = max_header_bytes;
    p->max_body_bytes = max_body_bytes;
    p->on_head = on_head;
    p->head_arg = head_arg;
    mw_buf_init(&p->url, max_header_bytes);
    mw_buf_init(&p->body, max_body_bytes);
}

void mw_http_request_parser_free(struct mw_http_request_parser *p)
{
    if (!p)
        return;
    mw_buf_free(&p->url);
    mw_buf_free(&p->body);
}

enum mw_http_parse_result mw_http_request_parser_execute(struct mw_http_request_parser *p,
                                                         const char *data, size_t len,
                                                         size_t *consumed)
{
    size_t n = http_parser_execute(&p->parser, &parser_settings, data, len);
    *consumed = n;
    enum http_errno err = HTTP_PARSER_ERRNO(&p->parser);
    if (err == HPE_PAUSED && p->message_done) {
        p->message_done = false;
        http_parser_pause(&p->parser, 0);
        return MW_HTTP_PARSE_REQUEST;
    }
    if (err != HPE_OK) {
        if (!p->error_status)
            p->error_status = err == HPE_HEADER_OVERFLOW ? 431 : 400;
        return MW_HTTP_PARSE_ERROR;
    }
    if (n < len) {
        p->error_status = 400; /* an upgrade without a complete request */
        return MW_HTTP_PARSE_ERROR;
    }
    return MW_HTTP_PARSE_MORE;
}

int mw_http_request_split_target(const struct mw_http_request_parser *p, const char **path,
                                 size_t *path_len, const char **query, size_t *query_len)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (p->url.len == 0 || http_parser_parse_url(p->url.data, p->url.len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH)))
        return MW_EPARSE;
    *path = p->url.data + u.field_data[UF_PATH].off;
    *path_len = u.field_data[UF_PATH].len;
    *query = "";
    *query_len = 0;
    if (u.field_set & (1 << UF_QUERY)) {
        *query = p->url.data + u.field_data[UF_QUERY].off;
        *query_len = u.field_data[UF_QUERY].len;
    }
    return 0;
}
