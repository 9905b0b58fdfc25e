/* test_arena.c — the bump allocator: a fixed arena fails past its block; a growing one takes
 * more blocks up to its limit, keeps every allocation aligned and intact, and a reset frees
 * the extra blocks. */
#include "arena.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_fixed(void **state)
{
    (void)state;
    struct mw_arena a;
    assert_int_equal(mw_arena_init(&a, 1024), 0);
    assert_non_null(mw_arena_alloc(&a, 1000));
    assert_null(mw_arena_alloc(&a, 100)); /* a fixed arena never grows */
    mw_arena_reset(&a);
    assert_non_null(mw_arena_alloc(&a, 1024));
    mw_arena_free(&a);
}

static void test_growing(void **state)
{
    (void)state;
    struct mw_arena a;
    assert_int_equal(mw_arena_init_growing(&a, 256, 64 * 1024), 0);
    unsigned char *pieces[400];
    for (int i = 0; i < 400; i++) {
        pieces[i] = mw_arena_alloc(&a, 100);
        assert_non_null(pieces[i]);
        assert_true(((uintptr_t)pieces[i] & 15u) == 0);
        memset(pieces[i], i & 0xff, 100);
    }
    for (int i = 0; i < 400; i++)
        for (int k = 0; k < 100; k++)
            assert_int_equal(pieces[i][k], i & 0xff);
    assert_true(a.extra_bytes > 0 && a.extra_bytes + a.size <= 64 * 1024);
    assert_null(mw_arena_alloc(&a, 64 * 1024)); /* past the limit */
    mw_arena_reset(&a);
    assert_int_equal(a.extra_bytes, 0);
    assert_null(a.extra);
    assert_non_null(mw_arena_alloc(&a, 60 * 1024)); /* one large piece in a fresh block */
    mw_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_growing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
