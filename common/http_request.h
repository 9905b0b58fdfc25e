/*
 * http_request.h — the request side of HTTP/1.1: bytes in, one bounded request out.
 *
 * http-parser's callbacks assemble each request (target, body, and the few headers the server
 * acts on: Expect and Authorization) within the header and body bounds, refusing with the
 * status to answer (400, 413, 431, 503). It knows nothing of sockets, so the server
 * (http_server.c) and the fuzz target feed it the same way. Also here: splitting a request
 * target, percent-decoding, and query parameters.
 */
#ifndef MW_COMMON_HTTP_REQUEST_H
#define MW_COMMON_HTTP_REQUEST_H

#include "buf.h"

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>

#define MW_HTTP_AUTHORIZATION_MAX 1024

struct mw_http_request_parser;

/* Called once a request's head is whole and accepted (before its body): parser.flags,
 * parser.content_length, parser.http_major/minor and expect_continue say what follows. */
typedef void (*mw_http_head_fn)(struct mw_http_request_parser *p, void *arg);

/* One connection's parser. The fields after `parser` describe the request last parsed, for
 * reading only (valid until the next call to mw_http_request_parser_execute). */
struct mw_http_request_parser {
    http_parser parser;
    size_t max_header_bytes;
    size_t max_body_bytes;
    mw_http_head_fn on_head; /* may be NULL */
    void *head_arg;
    struct mw_buf url;     /* the request target, as sent */
    struct mw_buf body;    /* de-chunked */
    size_t header_bytes;   /* request line and headers, counted against max_header_bytes */
    int error_status;      /* the status to answer after MW_HTTP_PARSE_ERROR */
    bool message_done;     /* internal: a request ended and the parser paused */
    bool keep_alive;       /* the client keeps the connection open after this request */
    enum http_method method;
    char field[16]; /* lower-cased start of the current header name */
    size_t field_len;
    bool in_value;
    char expect[16]; /* value of Expect, when that is the current header */
    size_t expect_len;
    bool expect_continue;
    char authorization[MW_HTTP_AUTHORIZATION_MAX + 1]; /* value of Authorization, when given */
    size_t authorization_len;                          /* > MAX: too long, read as absent */
};

/* Set up `p` for requests of at most max_header_bytes of head and max_body_bytes of body.
 * Allocates nothing until bytes arrive; release with mw_http_request_parser_free. */
void mw_http_request_parser_init(struct mw_http_request_parser *p, size_t max_header_bytes,
                                 size_t max_body_bytes, mw_http_head_fn on_head, void *head_arg);
void mw_http_request_parser_free(struct mw_http_request_parser *p); /* accepts NULL */

enum mw_http_parse_result {
    MW_HTTP_PARSE_MORE,    /* every byte taken; the request is not whole yet */
    MW_HTTP_PARSE_REQUEST, /* a request is whole: read it from `p`, then call again with the
                              bytes after *consumed (pipelined requests) */
    MW_HTTP_PARSE_ERROR,   /* refused: answer p->error_status and close the connection */
};

/* Parse data[0..len); *consumed says how many bytes were taken. */
enum mw_http_parse_result mw_http_request_parser_execute(struct mw_http_request_parser *p,
                                                         const char *data, size_t len,
                                                         size_t *consumed);

/* The path and the raw query (without '?'; "" and 0 when none) of the request last parsed,
 * pointing into p->url; absolute-form targets are accepted. Returns 0 or MW_EPARSE. */
int mw_http_request_split_target(const struct mw_http_request_parser *p, const char **path,
                                 size_t *path_len, const char **query, size_t *query_len);

/* Percent-decode s[0..len) into out (NUL-terminated); with plus_is_space '+' is a space (query
 * strings). Returns 0, MW_EINVAL for a bad escape or a decoded NUL, MW_ETOOBIG when it does not
 * fit in `size` bytes. */
int mw_http_percent_decode(const char *s, size_t len, bool plus_is_space, char *out, size_t size);

/* Percent-decoded value of query parameter `name` into out; the first `name=value` pair wins,
 * `name` alone means an empty value. Returns 0, MW_ENOTFOUND, MW_EINVAL (a bad escape or an
 * encoded NUL in the value) or MW_ETOOBIG when it does not fit in `size` bytes with its NUL. */
int mw_http_query_param(const char *query, const char *name, char *out, size_t size);

#endif
