/* test_table.c — the common hash table: finds what was inserted, grows, iterates every item,
 * keeps colliding hashes apart by the equality test, and leaves the table unchanged when it
 * cannot grow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alloc.h"
#include "error.h"
#include "hash.h"
#include "table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool same_text(const void *item, const void *key)
{
    return strcmp(item, key) == 0;
}

static void test_finds_every_item_across_growth(void **state)
{
    (void)state;
    enum { N = 5000 };
    static char names[N][16];
    struct mw_table t;
    mw_table_init(&t, same_text);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "key-%d", i);
        uint64_t h = mw_hash_str(MW_HASH_INIT, names[i]);
        assert_null(mw_table_find(&t, h, names[i]));
        assert_int_equal(mw_table_insert(&t, h, names[i]), 0);
    }
    assert_int_equal(t.n, N);
    assert_true(t.n * 10 <= t.cap * 7);
    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "key-%d", i);
        assert_ptr_equal(mw_table_find(&t, mw_hash_str(MW_HASH_INIT, key), key), names[i]);
    }
    assert_null(mw_table_find(&t, mw_hash_str(MW_HASH_INIT, "key-5000"), "key-5000"));
    /* Iteration visits each item once. */
    static unsigned char seen[N];
    size_t at = 0, visited = 0;
    char *item;
    while ((item = mw_table_next(&t, &at))) {
        int i = atoi(item + 4);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        visited++;
    }
    assert_int_equal(visited, N);
    mw_table_free(&t);
    mw_table_free(&t); /* idempotent */
}

/* Every item under one hash: the equality test alone tells them apart. */
static void test_equal_hashes_are_told_apart(void **state)
{
    (void)state;
    char *items[] = {"a", "b", "c", "d"};
    struct mw_table t;
    mw_table_init(&t, same_text);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(mw_table_insert(&t, 42, items[i]), 0);
    for (size_t i = 0; i < 4; i++)
        assert_ptr_equal(mw_table_find(&t, 42, items[i]), items[i]);
    assert_null(mw_table_find(&t, 42, "e"));
    assert_null(mw_table_find(&t, 43, "a"));
    mw_table_free(&t);
}

static void test_empty_table(void **state)
{
    (void)state;
    struct mw_table t;
    mw_table_init(&t, same_text);
    size_t at = 0;
    assert_null(mw_table_find(&t, 1, "x"));
    assert_null(mw_table_next(&t, &at));
    mw_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_every_item_across_growth),
        cmocka_unit_test(test_equal_hashes_are_told_apart),
        cmocka_unit_test(test_empty_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
