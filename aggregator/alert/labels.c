/* labels.c — sorted label sets with a stable fingerprint (labels.h). */
#include "labels.h"

#include "alloc.h"
#include "error.h"
#include "hash.h"

#include <string.h>

bool mw_label_name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > MW_LABEL_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* Index of `name`, or where it would go (*found false). */
static size_t position(const struct mw_labels *l, const char *name, bool *found)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int diff = strcmp(l->items[mid].name, name);
        if (diff == 0) {
            *found = true;
            return mid;
        }
        if (diff < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

int mw_labels_set(struct mw_labels *l, const char *name, const char *value)
{
    bool found;
    if (!l || !mw_label_name_valid(name) || !value || strlen(value) > MW_LABEL_VALUE_MAX)
        return MW_EINVAL;
    size_t at = position(l, name, &found);
    char *copy = mw_strdup(value);
    if (!copy)
        return MW_ENOMEM;
    if (found) {
        mw_free(l->items[at].value);
        l->items[at].value = copy;
        return 0;
    }
    if (l->n >= MW_LABELS_MAX) {
        mw_free(copy);
        return MW_EFULL;
    }
    char *name_copy = mw_strdup(name);
    struct mw_label *items = name_copy ? mw_realloc(l->items, (l->n + 1) * sizeof *items) : NULL;
    if (!items) {
        mw_free(name_copy);
        mw_free(copy);
        return MW_ENOMEM;
    }
    memmove(items + at + 1, items + at, (l->n - at) * sizeof *items);
    items[at] = (struct mw_label){.name = name_copy, .value = copy};
    l->items = items;
    l->n++;
    return 0;
}

const char *mw_labels_get(const struct mw_labels *l, const char *name)
{
    bool found;
    if (!l || !name || !l->n)
        return NULL;
    size_t at = position(l, name, &found);
    return found ? l->items[at].value : NULL;
}

int mw_labels_copy(struct mw_labels *dst, const struct mw_labels *src)
{
    *dst = (struct mw_labels){0};
    if (!src || !src->n)
        return 0;
    dst->items = mw_calloc(src->n, sizeof *dst->items);
    if (!dst->items)
        return MW_ENOMEM;
    for (size_t i = 0; i < src->n; i++) {
        dst->items[i].name = mw_strdup(src->items[i].name);
        dst->items[i].value = mw_strdup(src->items[i].value);
        dst->n = i + 1;
        if (!dst->items[i].name || !dst->items[i].value) {
            mw_labels_free(dst);
            return MW_ENOMEM;
        }
    }
    return 0;
}

void mw_labels_free(struct mw_labels *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        mw_free(l->items[i].name);
        mw_free(l->items[i].value);
    }
    mw_free(l->items);
    *l = (struct mw_labels){0};
}

uint64_t mw_labels_hash(const struct mw_labels *l)
{
    uint64_t h = MW_HASH_INIT;
    for (size_t i = 0; l && i < l->n; i++) {
        h = mw_hash_str(h, l->items[i].name);
        h = mw_hash_byte(h, 0xff); /* bytes no UTF-8 text holds: ("a","bc") != ("ab","c") */
        h = mw_hash_str(h, l->items[i].value);
        h = mw_hash_byte(h, 0xfe);
    }
    return mw_hash_mix(h);
}

bool mw_labels_equal(const struct mw_labels *a, const struct mw_labels *b)
{
    size_t na = a ? a->n : 0, nb = b ? b->n : 0;
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a->items[i].name, b->items[i].name) ||
            strcmp(a->items[i].value, b->items[i].value))
            return false;
    return true;
}
