/* config_expand.c — `${VAR}` and `${VAR:-default}` in configuration values (config_expand.h). */
#include "config_expand.h"

#include "alloc.h"
#include "buf.h"
#include "error.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME_BYTES 255 /* longer names are refused: no real variable is that long */

bool mw__config_expand_needed(const char *text, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (text[i] == '$' && (text[i + 1] == '{' || text[i + 1] == '$'))
            return true;
    return false;
}

static bool name_start(char c)
{
    return c == '_' || isalpha((unsigned char)c);
}

static bool name_char(char c)
{
    return c == '_' || isalnum((unsigned char)c);
}

/*
 * Expand the reference that starts at text[*i] ("${..."), appending its value to `out` and
 * moving *i past its closing brace. 0, MW_ECONFIG (why set), MW_EFULL or MW_ENOMEM.
 */
static int expand_reference(const char *text, size_t len, size_t *i, struct mw_buf *out, char *why,
                            size_t why_size)
{
    size_t start = *i + 2, p = start;
    while (p < len && name_char(text[p]))
        p++;
    size_t name_len = p - start;
    if (name_len == 0 || !name_start(text[start]) || name_len > MAX_NAME_BYTES ||
        (p < len && text[p] != '}' && !(text[p] == ':' && p + 1 < len && text[p + 1] == '-'))) {
        snprintf(why, why_size,
                 "malformed variable reference at byte %zu (use ${NAME}, "
                 "${NAME:-default}, or $$ for a literal $)",
                 *i + 1);
        return MW_ECONFIG;
    }
    const char *close = p < len ? memchr(text + p, '}', len - p) : NULL;
    if (!close) {
        snprintf(why, why_size, "${%.*s has no closing }", (int)name_len, text + start);
        return MW_ECONFIG;
    }
    char name[MAX_NAME_BYTES + 1];
    snprintf(name, sizeof name, "%.*s", (int)name_len, text + start);
    const char *value = getenv(name);
    bool has_default = text[p] == ':';
    *i = (size_t)(close - text) + 1;
    if (has_default && (!value || !*value))
        return mw_buf_append(out, text + p + 2, (size_t)(close - (text + p + 2)));
    if (!value) {
        snprintf(why, why_size,
                 "environment variable %s is not set (set it, or write ${%s:-default})", name,
                 name);
        return MW_ECONFIG;
    }
    return mw_buf_append(out, value, strlen(value));
}

int mw__config_expand(const char *text, size_t len, char **out, size_t *out_len, char *why,
                      size_t why_size)
{
    struct mw_buf buf;
    int rc = 0;
    mw_buf_init(&buf, MW_CONFIG_EXPAND_MAX_BYTES);
    for (size_t i = 0; !rc && i < len;) {
        if (text[i] == '$' && i + 1 < len && text[i + 1] == '$') {
            rc = mw_buf_append(&buf, "$", 1);
            i += 2;
        } else if (text[i] == '$' && i + 1 < len && text[i + 1] == '{') {
            rc = expand_reference(text, len, &i, &buf, why, why_size);
        } else {
            size_t run = 1;
            while (i + run < len && text[i + run] != '$')
                run++;
            rc = mw_buf_append(&buf, text + i, run);
            i += run;
        }
    }
    if (rc == MW_EFULL) {
        snprintf(why, why_size, "value longer than %u bytes once expanded",
                 MW_CONFIG_EXPAND_MAX_BYTES);
        rc = MW_ECONFIG;
    }
    if (!rc)
        rc = mw_buf_append(&buf, "", 1); /* the terminating NUL */
    if (rc) {
        if (buf.data)
            explicit_bzero(buf.data, buf.len);
        mw_buf_free(&buf);
        return rc == MW_ECONFIG ? rc : MW_ENOMEM;
    }
    *out = mw_malloc(buf.len); /* a copy of exactly its size: values are kept for the run */
    if (*out) {
        memcpy(*out, buf.data, buf.len);
        *out_len = buf.len - 1;
    }
    if (buf.data) /* the value may be a credential */
        explicit_bzero(buf.data, buf.len);
    mw_buf_free(&buf);
    return *out ? 0 : MW_ENOMEM;
}
