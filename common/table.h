/*
 * table.h — the one hash table of modelwatch: open addressing with linear probing over items
 * the caller owns, keyed by a 64-bit hash (hash.h) the caller computes and an equality test
 * the caller supplies, so one table serves string keys, label tuples and (model, version) pairs
 * alike without copying them.
 *
 *   struct mw_table t;
 *   mw_table_init(&t, same_name);                      equal(item, key): item matches key?
 *   item = mw_table_find(&t, h, key);                   NULL when absent
 *   rc = mw_table_insert(&t, h, item);                  0 or MW_ENOMEM (the table is unchanged)
 *   for (size_t at = 0; (item = mw_table_next(&t, &at));)   every item, in slot order
 *   mw_table_free(&t);                                  the slots; the items stay the caller's
 *
 * The table grows (doubles) before it is 70 % full, so a find always ends at an empty slot.
 * Items are never removed: the users build a table, read it, and drop it whole.
 */
#ifndef MW_COMMON_TABLE_H
#define MW_COMMON_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef bool (*mw_table_equal_fn)(const void *item, const void *key);

struct mw_table_slot {
    uint64_t hash;
    void *item; /* NULL: empty */
};

struct mw_table {
    struct mw_table_slot *slots; /* cap slots, a power of two (0 before the first insert) */
    size_t cap;
    size_t n;
    mw_table_equal_fn equal;
};

void mw_table_init(struct mw_table *t, mw_table_equal_fn equal);
void mw_table_free(struct mw_table *t); /* accepts a zeroed table; items are not freed */

/* The item stored under `hash` that equal(item, key) accepts, or NULL. */
void *mw_table_find(const struct mw_table *t, uint64_t hash, const void *key);

/* Store `item` (not NULL) under `hash`; the caller has checked it is not there yet. Returns 0,
 * or MW_ENOMEM when the table cannot grow (then nothing changed). */
int mw_table_insert(struct mw_table *t, uint64_t hash, void *item);

/* The next item at or after slot *at, advancing *at past it; NULL at the end. Start at 0. */
void *mw_table_next(const struct mw_table *t, size_t *at);

#endif
