/* log.c — logfmt or JSON lines to stderr, one write(2) per line so concurrent lines never
 * interleave. A line is always formatted as logfmt first; the JSON form is a translation of it,
 * so both carry the same fields whatever a caller wrote. */
#include "log.h"

#include "clock.h"
#include "error.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum mw_log_level mw__log_threshold = MW_LOG_LEVEL_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

const char *const mw_log_format_names[] = {"logfmt", "json", NULL};
static enum mw_log_format log_format = MW_LOG_FORMAT_LOGFMT;

void mw_log_set_format(enum mw_log_format format)
{
    log_format = format == MW_LOG_FORMAT_JSON ? MW_LOG_FORMAT_JSON : MW_LOG_FORMAT_LOGFMT;
}

void mw_log_set_level(enum mw_log_level level)
{
    mw__log_threshold = level;
}

int mw_log_level_parse(const char *text, enum mw_log_level *out)
{
    for (int i = 0; text && i < 4; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *out = (enum mw_log_level)i;
            return 0;
        }
    }
    return MW_EINVAL;
}

const char *mw_log_level_name(enum mw_log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "unknown";
}

const char *mw_log_quote(const char *value, char *buf, size_t size)
{
    if (size == 0)
        return "";
    if (!value)
        value = "";
    bool plain = *value != '\0' && strpbrk(value, " \"=\\\t\n") == NULL;
    if (plain) {
        snprintf(buf, size, "%s", value);
        return buf;
    }
    size_t out = 0;
    buf[out++] = '"';
    for (const char *p = value; *p && out + 3 < size; p++) {
        if (*p == '"' || *p == '\\') {
            buf[out++] = '\\';
            buf[out++] = *p;
        } else if (*p == '\n') {
            buf[out++] = '\\';
            buf[out++] = 'n';
        } else {
            buf[out++] = *p;
        }
    }
    if (out < size - 1)
        buf[out++] = '"';
    buf[out] = '\0';
    return buf;
}

/* ---- JSON lines ---------------------------------------------------------------------------- */

/* A line being written: content stops at `limit`, leaving room for the closing `"}` and
 * newline, so a cut line is still one valid JSON object. */
struct json_line {
    char *data;
    size_t len, limit;
    bool full;
};

static void put(struct json_line *l, const char *s, size_t n)
{
    if (l->full || l->len + n > l->limit) {
        l->full = true;
        return;
    }
    memcpy(l->data + l->len, s, n);
    l->len += n;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 when invalid. */
static size_t utf8_length(const unsigned char *p, size_t n)
{
    size_t len = p[0] < 0x80 ? 1 : p[0] >= 0xC2 && p[0] <= 0xDF ? 2
                               : p[0] >= 0xE0 && p[0] <= 0xEF   ? 3
                               : p[0] >= 0xF0 && p[0] <= 0xF4   ? 4
                                                                : 0;
    if (!len || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] > 0x9F) ||
        (p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] > 0x8F))
        return 0; /* overlong, surrogate or beyond U+10FFFF */
    return len;
}

/* `s` (n bytes) as a JSON string; invalid UTF-8 becomes U+FFFD. When the content has to be
 * cut, the closing quote still goes into the reserved room. False when not even the opening
 * quote fitted. */
static bool put_json_string(struct json_line *l, const char *s, size_t n)
{
    put(l, "\"", 1);
    if (l->full)
        return false;
    for (size_t i = 0; i < n && !l->full;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = utf8_length((const unsigned char *)s + i, n - i);
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(l, esc, 6);
        } else if (!len) {
            put(l, "\\ufffd", 6);
        } else {
            put(l, s + i, len);
        }
        i += len ? len : 1;
    }
    l->data[l->len++] = '"';
    return true;
}

/* `,"key":value` (no comma for the first field); a field whose key does not fit is left out
 * whole, a value that does not fit is cut. */
static void put_field(struct json_line *l, bool first, const char *key, size_t key_len,
                      const char *value, size_t value_len, bool as_number)
{
    if (l->full)
        return;
    size_t mark = l->len;
    if (!first)
        put(l, ",", 1);
    bool ok = put_json_string(l, key, key_len) && !l->full;
    if (ok)
        put(l, ":", 1);
    ok = ok && !l->full;
    if (ok && as_number) {
        put(l, value, value_len);
        ok = !l->full;
    } else if (ok) {
        ok = put_json_string(l, value, value_len); /* a cut value is kept, closed */
    }
    if (!ok) {
        l->len = mark;
        l->full = true;
    }
}

/* Whether `s` (n bytes) reads as a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_json_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || !isdigit((unsigned char)s[i]) || (s[i] == '0' && i + 1 < n &&
                                                    isdigit((unsigned char)s[i + 1])))
        return false;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    if (i < n && s[i] == '.') {
        if (++i >= n || !isdigit((unsigned char)s[i]))
            return false;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !isdigit((unsigned char)s[i]))
            return false;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    }
    return i == n;
}

/* One logfmt value at *p: "quoted" (mw_log_quote's escapes undone into buf) or a bare token.
 * Points *out at it (*n bytes), moves *p past it; returns whether it was quoted. */
static bool take_value(const char **p, char *buf, size_t size, const char **out, size_t *n)
{
    const char *s = *p;
    if (*s != '"') {
        size_t len = strcspn(s, " ");
        *out = s;
        *n = len;
        *p = s + len;
        return false;
    }
    size_t len = 0;
    for (s++; *s && *s != '"'; s++) {
        char c = *s;
        if (c == '\\' && s[1]) {
            s++;
            c = *s == 'n' ? '\n' : *s;
        }
        if (len < size)
            buf[len++] = c;
    }
    *out = buf;
    *n = len;
    *p = *s == '"' ? s + 1 : s;
    return true;
}

/* A field read from the logfmt text, not yet written. */
struct pending_field {
    const char *key, *value;
    size_t key_len, value_len;
    bool quoted, present;
};

static void flush_field(struct json_line *l, struct pending_field *f)
{
    if (f->present)
        put_field(l, false, f->key, f->key_len, f->value, f->value_len,
                  !f->quoted && is_json_number(f->value, f->value_len));
    f->present = false;
}

/* ,"key":value for each key=value of a logfmt field list. A word without `=` continues the
 * bare value before it (a caller printed a value with spaces unquoted: "error=no route"), or
 * else stands under the key "_", so no word is lost. */
static void put_json_fields(struct json_line *l, const char *fields)
{
    char unquoted[1024];
    struct pending_field f = {0};
    const char *p = fields;
    while (*p && !l->full) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        size_t key_len = strcspn(p, "= ");
        bool keyed = p[key_len] == '=' && key_len > 0;
        if (!keyed && f.present && !f.quoted && *p != '"') {
            const char *word;
            size_t word_len;
            take_value(&p, unquoted, sizeof unquoted, &word, &word_len);
            f.value_len = (size_t)(word + word_len - f.value);
            continue;
        }
        flush_field(l, &f);
        f.key = keyed ? p : "_";
        f.key_len = keyed ? key_len : 1;
        if (keyed)
            p += key_len + 1;
        f.quoted = take_value(&p, unquoted, sizeof unquoted, &f.value, &f.value_len);
        f.present = true;
    }
    flush_field(l, &f);
}

static size_t format_json(char *out, size_t size, const char *ts, enum mw_log_level level,
                          const char *comp, const char *msg, const char *fields)
{
    struct json_line l = {.data = out, .len = 0, .limit = size - 4};
    const char *level_name = mw_log_level_name(level);
    put(&l, "{", 1);
    put_field(&l, true, "ts", 2, ts, strlen(ts), false);
    put_field(&l, false, "level", 5, level_name, strlen(level_name), false);
    put_field(&l, false, "comp", 4, comp, strlen(comp), false);
    put_field(&l, false, "msg", 3, msg, strlen(msg), false);
    put_json_fields(&l, fields);
    out[l.len++] = '}';
    out[l.len++] = '\n';
    return l.len;
}

/* ---- writing a line ----------------------------------------------------------------------- */

void mw__log(enum mw_log_level level, const char *comp, const char *msg, const char *fields_fmt,
             ...)
{
    char fields[2048];
    char ts[32];
    fields[0] = '\0';
    if (fields_fmt && *fields_fmt) {
        va_list ap;
        va_start(ap, fields_fmt);
        vsnprintf(fields, sizeof fields, fields_fmt, ap);
        va_end(ap);
    }
    mw_clock_format_rfc3339(mw_clock_wall_ms(), ts, sizeof ts);
    if (log_format == MW_LOG_FORMAT_JSON) {
        char line[4096];
        size_t len = format_json(line, sizeof line, ts, level, comp, msg ? msg : "", fields);
        ssize_t ignored = write(STDERR_FILENO, line, len);
        (void)ignored;
        return;
    }
    char line[2048];
    char quoted[512];
    int len = snprintf(line, sizeof line, "ts=%s level=%s comp=%s msg=%s%s%s", ts,
                       mw_log_level_name(level), comp, mw_log_quote(msg, quoted, sizeof quoted),
                       fields[0] ? " " : "", fields);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof line - 1)
        len = (int)sizeof line - 2;
    line[len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, (size_t)len);
    (void)ignored;
}
