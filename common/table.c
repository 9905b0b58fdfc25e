/* table.c — open-addressing hash table over caller-owned items (see table.h). */
#include "table.h"

#include "alloc.h"
#include "error.h"

#include <string.h>

#define INITIAL_SLOTS 16

void mw_table_init(struct mw_table *t, mw_table_equal_fn equal)
{
    memset(t, 0, sizeof *t);
    t->equal = equal;
}

void mw_table_free(struct mw_table *t)
{
    if (!t)
        return;
    mw_free(t->slots);
    t->slots = NULL;
    t->cap = t->n = 0;
}

void *mw_table_find(const struct mw_table *t, uint64_t hash, const void *key)
{
    if (!t->cap)
        return NULL;
    for (size_t i = hash & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        const struct mw_table_slot *s = &t->slots[i];
        if (!s->item)
            return NULL;
        if (s->hash == hash && t->equal(s->item, key))
            return s->item;
    }
}

static void place(struct mw_table_slot *slots, size_t cap, uint64_t hash, void *item)
{
    size_t i = hash & (cap - 1);
    while (slots[i].item)
        i = (i + 1) & (cap - 1);
    slots[i] = (struct mw_table_slot){hash, item};
}

static int grow(struct mw_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : INITIAL_SLOTS;
    struct mw_table_slot *slots = mw_calloc(cap, sizeof *slots);
    if (!slots)
        return MW_ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].item)
            place(slots, cap, t->slots[i].hash, t->slots[i].item);
    mw_free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

int mw_table_insert(struct mw_table *t, uint64_t hash, void *item)
{
    if ((t->n + 1) * 10 > t->cap * 7) {
        int rc = grow(t);
        if (rc)
            return rc;
    }
    place(t->slots, t->cap, hash, item);
    t->n++;
    return 0;
}

void *mw_table_next(const struct mw_table *t, size_t *at)
{
    for (; *at < t->cap; (*at)++) {
        if (t->slots[*at].item)
            return t->slots[(*at)++].item;
    }
    return NULL;
}
