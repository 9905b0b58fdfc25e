/*
 * yaml_lines.c — a path → line index of a YAML document (yaml_lines.h), from libyaml's event
 * stream: a stack of open collections, each mapping alternating between expecting a key and a
 * value, each sequence counting its items.
 */
#include "yaml_lines.h"

#include "alloc.h"
#include "error.h"
#include "buf.h"
#include "hash.h"

#include <yaml.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_PATH 512
#define MAX_DEPTH 64

struct yaml_line_entry {
    char *path;
    size_t line;
};

struct frame {
    bool is_map;
    bool want_key; /* map: the next node is a key */
    size_t index;  /* seq: items so far */
    size_t plen;   /* path length of this collection */
};

static bool same_path(const void *item, const void *key)
{
    return strcmp(((const struct yaml_line_entry *)item)->path, key) == 0;
}

static int add(struct mw_yaml_lines *idx, const char *path, size_t line)
{
    uint64_t h = mw_hash_str(MW_HASH_INIT, path);
    if (mw_table_find(&idx->paths, h, path))
        return 0; /* a duplicate key: the loader reports it; keep the first */
    if (idx->n == idx->cap) {
        size_t cap = idx->cap ? 2 * idx->cap : 64;
        struct yaml_line_entry *grown = mw_realloc(idx->entries, cap * sizeof *grown);
        if (!grown)
            return MW_ENOMEM;
        /* Entries moved: the table points at them, so rebuild it. */
        mw_table_free(&idx->paths);
        mw_table_init(&idx->paths, same_path);
        for (size_t i = 0; i < idx->n; i++)
            if (mw_table_insert(&idx->paths, mw_hash_str(MW_HASH_INIT, grown[i].path), &grown[i]))
                return MW_ENOMEM;
        idx->entries = grown;
        idx->cap = cap;
    }
    struct yaml_line_entry *e = (struct yaml_line_entry *)idx->entries + idx->n;
    e->path = mw_strdup(path);
    e->line = line;
    if (!e->path)
        return MW_ENOMEM;
    idx->n++;
    return mw_table_insert(&idx->paths, h, e);
}

/* The path of the node that starts now under the innermost frame, written at path[plen]. */
static size_t child_path(char *path, const struct frame *top, const char *key)
{
    int n;
    if (top->is_map)
        n = snprintf(path + top->plen, MAX_PATH - top->plen, "%s%s", top->plen ? "." : "", key);
    else
        n = snprintf(path + top->plen, MAX_PATH - top->plen, "[%zu]", top->index);
    size_t len = top->plen + (n > 0 ? (size_t)n : 0);
    return len < MAX_PATH ? len : MAX_PATH - 1;
}

int mw_yaml_lines_build(struct mw_yaml_lines *idx, const char *text, size_t len)
{
    yaml_parser_t parser;
    struct frame stack[MAX_DEPTH];
    char path[MAX_PATH] = "";
    size_t depth = 0, value_plen = 0; /* path length of the value a map key announced */
    int rc = 0;
    *idx = (struct mw_yaml_lines){0};
    mw_table_init(&idx->paths, same_path);
    if (!yaml_parser_initialize(&parser))
        return MW_ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (bool done = false; !done && !rc;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev))
            break;
        size_t line = ev.start_mark.line + 1;
        struct frame *top = depth ? &stack[depth - 1] : NULL;
        bool is_key = top && top->is_map && top->want_key;
        size_t plen = 0; /* path length of the node starting here (values, items) */
        if (top && !is_key &&
            (ev.type == YAML_SCALAR_EVENT || ev.type == YAML_ALIAS_EVENT ||
             ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT)) {
            if (top->is_map) {
                plen = value_plen;
                top->want_key = true;
            } else {
                plen = child_path(path, top, "");
                path[plen] = '\0';
                rc = add(idx, path, line);
                top->index++;
            }
        }
        switch (ev.type) {
        case YAML_SCALAR_EVENT:
            if (is_key) {
                value_plen = child_path(path, top, (const char *)ev.data.scalar.value);
                path[value_plen] = '\0';
                rc = add(idx, path, line);
                top->want_key = false;
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (is_key || depth == MAX_DEPTH) { /* complex keys and deep nesting: stop here */
                done = true;
                break;
            }
            stack[depth++] = (struct frame){.is_map = ev.type == YAML_MAPPING_START_EVENT,
                                            .want_key = true,
                                            .plen = top ? plen : 0};
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth)
                depth--;
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return rc;
}

size_t mw_yaml_lines_find(const struct mw_yaml_lines *idx, const char *path)
{
    if (!idx || !path)
        return 0;
    const struct yaml_line_entry *e =
        mw_table_find(&idx->paths, mw_hash_str(MW_HASH_INIT, path), path);
    return e ? e->line : 0;
}

size_t mw_yaml_lines_find2(const struct mw_yaml_lines *idx, const char *prefix, const char *key)
{
    char path[MAX_PATH];
    snprintf(path, sizeof path, "%s%s", prefix, key);
    return mw_yaml_lines_find(idx, path);
}

void mw_yaml_lines_free(struct mw_yaml_lines *idx)
{
    if (!idx)
        return;
    for (size_t i = 0; i < idx->n; i++)
        mw_free(((struct yaml_line_entry *)idx->entries)[i].path);
    mw_free(idx->entries);
    mw_table_free(&idx->paths);
    *idx = (struct mw_yaml_lines){0};
}

/* The whole file at `path` (at most 1 MiB, like the configuration), or NULL. */
static char *slurp(const char *path, size_t *len)
{
    struct mw_buf b;
    char chunk[4096];
    size_t n;
    int rc = 0;
    FILE *fp = path ? fopen(path, "rb") : NULL;
    if (!fp)
        return NULL;
    mw_buf_init(&b, 1u << 20);
    while (!rc && (n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        rc = mw_buf_append(&b, chunk, n);
    fclose(fp);
    if (rc) {
        mw_buf_free(&b);
        return NULL;
    }
    return mw_buf_detach(&b, len);
}

int mw_yaml_lines_fail(struct mw_cfg_error *err, const char *file, const char *text,
                       const char *key, const char *near_key, const char *fmt, ...)
{
    struct mw_yaml_lines idx = {0};
    size_t len = 0, line = 0;
    char *owned = text ? NULL : slurp(file, &len);
    if (text)
        len = strlen(text);
    if ((text || owned) && !mw_yaml_lines_build(&idx, text ? text : owned, len)) {
        line = mw_yaml_lines_find(&idx, key);
        if (!line && near_key)
            line = mw_yaml_lines_find(&idx, near_key);
    }
    mw_yaml_lines_free(&idx);
    mw_free(owned);
    va_list ap;
    va_start(ap, fmt);
    int rc = mw_yaml_lines_vformat(err, file, line, key, fmt, ap);
    va_end(ap);
    return rc;
}

int mw_yaml_lines_vformat(struct mw_cfg_error *err, const char *file, size_t line, const char *key,
                          const char *fmt, va_list ap)
{
    if (!file)
        file = "<config>";
    int used = line ? snprintf(err->message, sizeof err->message, "%s:%zu: %s: ", file, line, key)
                    : snprintf(err->message, sizeof err->message, "%s: %s: ", file, key);
    if (used > 0 && (size_t)used < sizeof err->message)
        vsnprintf(err->message + used, sizeof err->message - (size_t)used, fmt, ap);
    /* Keys and values come from the file: keep the message on one printable line. */
    for (char *p = err->message; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return MW_ECONFIG;
}
