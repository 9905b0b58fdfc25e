/*
 * receiver_int.h — what the receivers share and nobody else needs (as SQLite pairs btree.h with
 * btreeInt.h): secrets from files, SHA-256 and HMAC, and the JSON pieces both encodings use.
 */
#ifndef MW_ALERT_RECEIVER_INT_H
#define MW_ALERT_RECEIVER_INT_H

#include "receiver.h"

#include <jansson.h>

/* Read a secret from `path` into buf (at most size - 1 bytes, NUL-terminated), its length in
 * *len. `trim` drops trailing whitespace (a token); otherwise the exact bytes count (a key).
 * Messages name `what` and the file, never the content. Returns 0, MW_EIO or MW_ECONFIG (empty or
 * too large). */
int mw__receiver_read_secret(const char *path, const char *what, bool trim, char *buf, size_t size,
                             size_t *len, char *err, size_t errsize);

/* Lower-case hex of SHA-256(data) into hex (65 bytes). Returns 0 or MW_EIO. */
int mw__receiver_sha256_hex(const void *data, size_t len, char hex[65]);

/* Lower-case hex of HMAC-SHA256(key, data) into hex (65 bytes). Returns 0 or MW_EIO. */
int mw__receiver_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len,
                                 char hex[65]);

/* A JSON string of `text` (NULL = "") made valid UTF-8 (bad bytes become U+FFFD). NULL only when
 * memory runs out. */
json_t *mw__receiver_json_string(const char *text);

/* {"name": "value", ...} of `labels`, values made valid UTF-8. NULL when memory runs out. */
json_t *mw__receiver_json_labels(const struct mw_notify_labels *labels);

/* {"name": number, ...}; NaN and infinities become the strings "NaN", "+Inf", "-Inf". */
json_t *mw__receiver_json_values(const struct mw_notify_value *values, size_t n);

/* RFC 3339 UTC text of a Unix ms time; 0 is Go's zero time "0001-01-01T00:00:00Z", which
 * Alertmanager sends for an alert that has not ended. */
json_t *mw__receiver_json_time(int64_t unix_ms);

/* Serialise `root` compactly into out->body. Returns 0 or MW_ENOMEM. */
int mw__receiver_json_body(json_t *root, struct mw_receiver_request *out);

/* Append "Name: value" to out->headers. Returns 0, MW_EFULL or MW_ENOMEM. */
int mw__receiver_add_header(struct mw_receiver_request *out, const char *name, const char *value);

/* The verdict both receivers give an HTTP answer: 2xx delivered; 429, 5xx and transport errors
 * retried; any other status rejected (the request itself is wrong, or the receiver is
 * misconfigured: retrying would not help). */
enum mw_receiver_verdict mw__receiver_http_verdict(const struct mw_http_client_response *resp);

#endif
